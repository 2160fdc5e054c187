/*
 * http_codec.c: the HTTP front door's own encodings of untrusted bytes, kept
 * apart from the server so the fuzz target runs them alone: operation ids
 * (base64url of a fixed binary layout), NDJSON publish envelopes (into the
 * PublishBatch records of common/pubbatch.h) and SSE event ids. Every
 * length is checked before anything is allocated or copied.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "err.h"
#include "http_int.h"
#include "pubbatch.h"
#include "ringmsg.h"

#define HTTP_PUB_HEADERS_MAX 64
#define HTTP_OP_VERSION 1
#define HTTP_OP_BIN_MAX (1 + 8 + 8 + 4 + 4 + 8 + 1 + RM_TOPIC_NAME_MAX)

/* ---------- operation ids ---------- */

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int http_op_encode(const struct http_op *op, char *out, size_t cap)
{
	uint8_t bin[HTTP_OP_BIN_MAX];
	size_t tl = strlen(op->topic), n = 0, i, o = 0;

	if (tl == 0 || tl > RM_TOPIC_NAME_MAX)
		return SL_EINVAL;
	bin[n++] = HTTP_OP_VERSION;
	be_put64(bin + n, op->producer_id);
	be_put64(bin + n + 8, op->sequence);
	be_put32(bin + n + 16, op->space);
	be_put32(bin + n + 20, op->count);
	be_put64(bin + n + 24, (uint64_t)op->created_ms);
	n += 32;
	bin[n++] = (uint8_t)tl;
	memcpy(bin + n, op->topic, tl);
	n += tl;
	if ((n * 4 + 2) / 3 + 1 > cap)
		return SL_ETOOLARGE;
	for (i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)bin[i] << 16 | (i + 1 < n ? (uint32_t)bin[i + 1] << 8 : 0) |
		             (i + 2 < n ? bin[i + 2] : 0);
		out[o++] = b64url[v >> 18 & 63];
		out[o++] = b64url[v >> 12 & 63];
		if (i + 1 < n)
			out[o++] = b64url[v >> 6 & 63];
		if (i + 2 < n)
			out[o++] = b64url[v & 63];
	}
	out[o] = 0;
	return SL_OK;
}

static int b64url_val(char c)
{
	const char *p = c ? strchr(b64url, c) : NULL;
	return p ? (int)(p - b64url) : -1;
}

int http_op_decode(const char *id, struct http_op *op)
{
	uint8_t bin[HTTP_OP_BIN_MAX];
	size_t len = strlen(id), n = 0, i;
	uint32_t acc = 0;
	int bits = 0;

	if (len == 0 || len > (HTTP_OP_BIN_MAX * 4 + 2) / 3 || len % 4 == 1)
		return SL_EMALFORMED;
	for (i = 0; i < len; i++) {
		int v = b64url_val(id[i]);
		if (v < 0)
			return SL_EMALFORMED;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n >= sizeof(bin))
				return SL_EMALFORMED;
			bin[n++] = (uint8_t)(acc >> bits);
		}
	}
	if (n < 34 || bin[0] != HTTP_OP_VERSION || bin[33] == 0 || (size_t)bin[33] + 34 != n ||
	    bin[33] > RM_TOPIC_NAME_MAX || memchr(bin + 34, 0, bin[33]))
		return SL_EMALFORMED; /* a topic name: 1 to 249 bytes, no NUL */
	memset(op, 0, sizeof(*op));
	op->producer_id = be_get64(bin + 1);
	op->sequence = be_get64(bin + 9);
	op->space = be_get32(bin + 17);
	op->count = be_get32(bin + 21);
	op->created_ms = (int64_t)be_get64(bin + 25);
	memcpy(op->topic, bin + 34, bin[33]);
	op->topic[bin[33]] = 0;
	if (!http_utf8_valid(bin + 34, bin[33]) || op->count == 0 || op->producer_id == 0)
		return SL_EMALFORMED;
	return SL_OK;
}

/* ---------- NDJSON batches ---------- */

struct recbuf {
	uint8_t *p;
	size_t len, cap, max;
};

static int recbuf_reserve(struct recbuf *b, size_t more)
{
	if (b->len + more > b->max)
		return SL_ETOOLARGE;
	if (b->len + more > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		uint8_t *np;
		while (cap < b->len + more)
			cap *= 2;
		if (!(np = realloc(b->p, cap)))
			return SL_ENOMEM;
		b->p = np;
		b->cap = cap;
	}
	return SL_OK;
}

/* Header blob of a JSON object of strings, appended at hb (hb_cap bytes). */
static int headers_blob(json_t *h, uint8_t *hb, size_t hb_cap, size_t *hl)
{
	const char *k;
	json_t *v;

	*hl = 0;
	if (!h || json_is_null(h))
		return SL_OK;
	if (!json_is_object(h))
		return SL_EINVAL;
	json_object_foreach(h, k, v)
	{
		size_t kl = strlen(k), vl;
		if (!json_is_string(v) || kl == 0 || kl > 255)
			return SL_EINVAL;
		vl = json_string_length(v);
		if (*hl + hdrs_entry_bytes(kl, vl) > hb_cap)
			return SL_ETOOLARGE;
		*hl += hdrs_put(hb + *hl, slice_make(k, kl), slice_make(json_string_value(v), vl));
	}
	return SL_OK;
}

/* One line {key, headers, payload} appended to b as a PublishBatch record. */
static int ndjson_line(struct recbuf *b, const char *line, size_t n, const char **why)
{
	json_error_t e;
	json_t *j = json_loadb(line, n, JSON_REJECT_DUPLICATES, &e), *k, *p;
	char *ptext = NULL;
	struct slice key = {0}, payload = {0};
	size_t hl = 0, hcap;
	int rc = SL_EMALFORMED;

	*why = "each line must be a JSON object {key, headers, payload}";
	if (!j || !json_is_object(j))
		goto out;
	k = json_object_get(j, "key");
	p = json_object_get(j, "payload");
	if (k && !json_is_null(k)) {
		if (!json_is_string(k))
			goto out;
		key = slice_make(json_string_value(k), json_string_length(k));
	}
	if (p && json_is_string(p)) {
		payload = slice_make(json_string_value(p), json_string_length(p));
	} else if (p && !json_is_null(p)) {
		/* any other JSON value is stored as its compact text */
		if (!(ptext = json_dumps(p, JSON_COMPACT | JSON_ENCODE_ANY)))
			goto out;
		payload = slice_cstr(ptext);
	}
	hcap = n + 6 * HTTP_PUB_HEADERS_MAX;
	rc = recbuf_reserve(b, PUBBATCH_REC_HDR + key.len + hcap + payload.len);
	if (rc != SL_OK) {
		*why = "batch too large";
		goto out;
	}
	/* headers first into the space after the record header and key */
	uint8_t *rec = b->p + b->len;
	uint8_t *hb = rec + PUBBATCH_REC_HDR + key.len;
	rc = headers_blob(json_object_get(j, "headers"), hb, hcap, &hl);
	if (rc != SL_OK) {
		*why = "headers must be an object of strings with keys of 1 to 255 bytes";
		rc = SL_EINVAL;
		goto out;
	}
	/* pubbatch_put writes [hdr][key][headers][payload]; headers are in place already */
	uint8_t *tmp = malloc(hl ? hl : 1);
	if (!tmp) {
		rc = SL_ENOMEM;
		goto out;
	}
	memcpy(tmp, hb, hl);
	b->len += pubbatch_put(rec, key, slice_make(tmp, hl), payload);
	free(tmp);
	rc = SL_OK;
out:
	free(ptext);
	json_decref(j);
	return rc;
}

int http_ndjson_records(const uint8_t *p, size_t n, uint8_t **recs, size_t *recs_len, uint32_t *count,
                        const char **why)
{
	struct recbuf b = {NULL, 0, 0, 2 * n + 4096};
	size_t i = 0;
	int rc = SL_OK;

	*count = 0;
	*why = NULL;
	while (i < n && rc == SL_OK) {
		const uint8_t *nl = memchr(p + i, '\n', n - i);
		size_t end = nl ? (size_t)(nl - p) : n, len = end - i;
		if (len && p[i + len - 1] == '\r')
			len--;
		if (len > 0) {
			if (*count >= PUBBATCH_COUNT_MAX) {
				*why = "more than 65536 messages in one batch";
				rc = SL_ETOOLARGE;
				break;
			}
			rc = ndjson_line(&b, (const char *)p + i, len, why);
			if (rc == SL_OK)
				(*count)++;
		}
		i = end + 1;
	}
	if (rc == SL_OK && *count == 0) {
		*why = "empty batch";
		rc = SL_EINVAL;
	}
	if (rc != SL_OK) {
		free(b.p);
		return rc;
	}
	*recs = b.p;
	*recs_len = b.len;
	return SL_OK;
}

/* ---------- SSE event ids ---------- */

int http_sse_id_parse(const char *s, uint32_t *parts, uint64_t *offs, size_t max, size_t *n)
{
	*n = 0;
	while (*s) {
		char *end;
		unsigned long long p, o;
		if (*s < '0' || *s > '9')
			return -1;
		p = strtoull(s, &end, 10);
		if (*end != ':' || p >= UINT32_MAX || end[1] < '0' || end[1] > '9')
			return -1;
		o = strtoull(end + 1, &end, 10);
		if ((*end != ',' && *end != 0) || *n >= max)
			return -1;
		for (size_t i = 0; i < *n; i++)
			if (parts[i] == p)
				return -1;
		parts[*n] = (uint32_t)p;
		offs[*n] = o;
		(*n)++;
		s = *end ? end + 1 : end;
	}
	return *n ? 0 : -1;
}
