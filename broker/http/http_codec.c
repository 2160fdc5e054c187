/*
 * http_codec.c: the HTTP front door's own encodings of untrusted bytes, kept
 * apart from the server so the fuzz target runs them alone: operation ids
 * (base64url of a fixed binary layout), SSE event ids and the body of a
 * group commit (NDJSON publish bodies are in http_ndjson.c). Every length
 * is checked before anything is allocated or copied.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "err.h"
#include "http_int.h"
#include "ringmsg.h"

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
	if (!utf8_valid(bin + 34, bin[33]) || op->count == 0 || op->producer_id == 0)
		return SL_EMALFORMED;
	return SL_OK;
}

/* ---------- group commit bodies ---------- */

/* One entry: checked, or -1 with *why set. */
static int commit_entry(json_t *e, struct http_commit_in *out, const char **why)
{
	json_t *t = json_object_get(e, "topic"), *p = json_object_get(e, "partition"), *o = json_object_get(e, "offset");
	size_t tl;

	if (!json_is_object(e) || !json_is_string(t) || (p && !json_is_integer(p)) || !json_is_integer(o)) {
		*why = "expected {\"topic\": string, \"partition\": int, \"offset\": int}";
		return -1;
	}
	tl = json_string_length(t);
	if (tl == 0 || tl > RM_TOPIC_NAME_MAX || strlen(json_string_value(t)) != tl ||
	    !utf8_valid((const uint8_t *)json_string_value(t), tl)) {
		*why = "topic name must be 1 to 249 bytes of UTF-8";
		return -1;
	}
	if ((p && (json_integer_value(p) < 0 || json_integer_value(p) > (json_int_t)UINT32_MAX - 1)) ||
	    json_integer_value(o) < 0) {
		*why = "partition must be 0..4294967294 and offset >= 0";
		return -1;
	}
	out->topic = json_string_value(t);
	out->partition = p ? (uint32_t)json_integer_value(p) : 0;
	out->offset = (uint64_t)json_integer_value(o);
	return 0;
}

int http_commits_decode(const char *p, size_t n, json_t **owner, struct http_commit_in **ins, uint32_t *count,
                        int *array, char *why, size_t why_cap)
{
	json_error_t e;
	json_t *j = json_loadb(p, n, JSON_REJECT_DUPLICATES, &e);
	const char *w = NULL;
	size_t cnt;

	*owner = NULL;
	*ins = NULL;
	if (!j || !(json_is_object(j) || json_is_array(j))) {
		json_decref(j);
		snprintf(why, why_cap, "the body is not a JSON object or array");
		return SL_EMALFORMED;
	}
	*array = json_is_array(j);
	cnt = *array ? json_array_size(j) : 1;
	if (cnt == 0 || cnt > HTTP_COMMITS_MAX) {
		json_decref(j);
		snprintf(why, why_cap, "an array of 1 to %d commits is expected", HTTP_COMMITS_MAX);
		return SL_EINVAL;
	}
	if (!(*ins = calloc(cnt, sizeof(**ins)))) {
		json_decref(j);
		snprintf(why, why_cap, "out of memory");
		return SL_ENOMEM;
	}
	for (size_t i = 0; i < cnt; i++) {
		if (commit_entry(*array ? json_array_get(j, i) : j, &(*ins)[i], &w) < 0) {
			if (*array)
				snprintf(why, why_cap, "offsets[%zu]: %s", i, w);
			else
				snprintf(why, why_cap, "%s", w);
			free(*ins);
			*ins = NULL;
			json_decref(j);
			return SL_EINVAL;
		}
	}
	*owner = j;
	*count = (uint32_t)cnt;
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
