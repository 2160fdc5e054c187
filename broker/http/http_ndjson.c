/*
 * http_ndjson.c: an application/x-ndjson publish body into the records of
 * one PublishBatch (common/pubbatch.h), line by line, with each line's
 * number in the error that refuses it.
 *
 * Two decoders give the same bytes. The common envelope, a flat object
 * whose members are only "key" (string or null), "headers" (an object of
 * strings, or null) and "payload" (string or null), is read by a direct
 * scanner that writes the record in place: the decoded key, header blob and
 * payload are never longer than their JSON text, so a line of n bytes
 * needs at most PUBBATCH_REC_HDR + n bytes, reserved before it is read.
 * Anything else (another member or payload type, a member name with an
 * escape, a duplicate, a lone surrogate, malformed JSON) leaves nothing
 * written and goes to jansson, which decides: it is the reference, the
 * scanner only a faster way to the same answer (tests/fuzz/http_fuzz.c
 * checks that on every line the scanner accepts).
 *
 * Strings may hold \u0000 (a key, a payload and header values are bytes);
 * header names may not (they are C strings further on). The body arrives as
 * an evbuffer's chains: a line that spans two of them is copied into a
 * scratch buffer, the rest is read where it lies.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "err.h"
#include "http_int.h"
#include "pubbatch.h"
#include "ringmsg.h"

#define NDJ_HEADERS_MAX 64        /* headers the scanner takes; more go to jansson */
#define NDJ_FALLBACK (-1)         /* the scanner declines the line: nothing written */
#define NDJ_WHY_BAD "each line must be a JSON object {key, headers, payload}"

int http_ndjson_use_scanner = 1;

struct ndj {
	uint8_t *p;
	size_t len, cap, max;
	uint32_t count, line;
	char *why;
	size_t why_cap;
};

static int ndj_reserve(struct ndj *b, size_t more)
{
	if (more > b->max - b->len)
		return SL_ETOOLARGE;
	if (b->len + more > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		uint8_t *np;
		while (cap < b->len + more)
			cap *= 2;
		if (cap > b->max)
			cap = b->max;
		if (!(np = realloc(b->p, cap)))
			return SL_ENOMEM;
		b->p = np;
		b->cap = cap;
	}
	return SL_OK;
}

static int ndj_fail(struct ndj *b, int rc, const char *why, const char *more)
{
	snprintf(b->why, b->why_cap, "line %u: %s%s%s", b->line, why, more ? ": " : "", more ? more : "");
	return rc;
}

/* ---------- the scanner ---------- */

static size_t skip_ws(const uint8_t *s, size_t i, size_t n)
{
	while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n'))
		i++;
	return i;
}

/* Bytes a string scan stops at: '"', '\\', control bytes and non-ASCII. */
static const uint8_t stop[256] = {
    [0 ... 0x1f] = 1, ['"'] = 1, ['\\'] = 1, [0x80 ... 0xff] = 1,
};

/* A string whose opening quote is at s[i]: *end is its closing quote. 0, or
 * -1 if it is not one the scanner takes (unterminated, a raw control byte,
 * invalid UTF-8). */
static int scan_string(const uint8_t *s, size_t i, size_t n, size_t *end, int *esc)
{
	size_t j = i + 1;
	int high = 0;

	*esc = 0;
	for (;;) {
		while (j < n && !stop[s[j]])
			j++;
		if (j >= n || s[j] == '"')
			break;
		if (s[j] == '\\') {
			*esc = 1;
			j += 2;
		} else if (s[j] < 0x20) {
			return -1;
		} else {
			high = 1;
			j++;
		}
	}
	if (j >= n || (high && !utf8_valid(s + i + 1, j - i - 1)))
		return -1;
	*end = j;
	return 0;
}

static int hex4(const uint8_t *s, uint32_t *v)
{
	*v = 0;
	for (int k = 0; k < 4; k++) {
		uint8_t c = s[k];
		uint32_t d;
		if (c >= '0' && c <= '9')
			d = (uint32_t)(c - '0');
		else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
			d = (uint32_t)((c | 0x20) - 'a' + 10);
		else
			return -1;
		*v = *v << 4 | d;
	}
	return 0;
}

static size_t put_utf8(uint8_t *o, uint32_t cp)
{
	if (cp < 0x80) {
		o[0] = (uint8_t)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (uint8_t)(0xc0 | cp >> 6);
		o[1] = (uint8_t)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (uint8_t)(0xe0 | cp >> 12);
		o[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3f));
		o[2] = (uint8_t)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (uint8_t)(0xf0 | cp >> 18);
	o[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3f));
	o[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3f));
	o[3] = (uint8_t)(0x80 | (cp & 0x3f));
	return 4;
}

/* One escape at s[i] (the backslash), i + 1 < end: decoded at o. Returns
 * the bytes written and advances *i past it; 0 if it is not valid JSON (or
 * a lone surrogate, which jansson refuses). */
static size_t unescape(const uint8_t *s, size_t *i, size_t end, uint8_t *o)
{
	static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
	const char *e = memchr(from, s[*i + 1], sizeof(from) - 1);
	uint32_t cp, lo;

	if (s[*i + 1] != 'u') {
		if (!e)
			return 0;
		*o = (uint8_t)to[e - from];
		*i += 2;
		return 1;
	}
	if (*i + 6 > end || hex4(s + *i + 2, &cp) < 0)
		return 0;
	*i += 6;
	if (cp >= 0xdc00 && cp <= 0xdfff)
		return 0;
	if (cp >= 0xd800 && cp <= 0xdbff) {
		if (*i + 6 > end || s[*i] != '\\' || s[*i + 1] != 'u' || hex4(s + *i + 2, &lo) < 0 || lo < 0xdc00 ||
		    lo > 0xdfff)
			return 0;
		*i += 6;
		cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
	}
	return put_utf8(o, cp);
}

/* The string between the quotes at a and b, decoded at o; its length, or
 * -1 on a bad escape. Never longer than b - a - 1. */
static long decode_string(const uint8_t *s, size_t a, size_t b, int esc, uint8_t *o)
{
	size_t i = a + 1, w = 0;

	if (!esc) {
		memcpy(o, s + i, b - i);
		return (long)(b - i);
	}
	while (i < b) {
		size_t run = i;
		while (run < b && s[run] != '\\')
			run++;
		memcpy(o + w, s + i, run - i);
		w += run - i;
		i = run;
		if (i < b) {
			size_t k = unescape(s, &i, b, o + w);
			if (k == 0)
				return -1;
			w += k;
		}
	}
	return (long)w;
}

/* Where a member's value lies: [a, b] are the quotes of a string (a == 0
 * and b == 0: absent or null), or the braces of the headers object. */
struct span {
	size_t a, b;
	int esc, seen;
};

/* A string or null value at s[*i]; advances *i past it. */
static int scan_str_or_null(const uint8_t *s, size_t *i, size_t n, struct span *v)
{
	if (*i + 4 <= n && memcmp(s + *i, "null", 4) == 0) {
		*i += 4;
		return 0;
	}
	if (*i >= n || s[*i] != '"' || scan_string(s, *i, n, &v->b, &v->esc) < 0)
		return -1;
	v->a = *i;
	*i = v->b + 1;
	return 0;
}

/* {"name": "value", ...} or null at s[*i]: only strings; advances *i. */
static int scan_headers(const uint8_t *s, size_t *i, size_t n, struct span *v)
{
	size_t j = *i, e;
	int esc;

	if (j + 4 <= n && memcmp(s + j, "null", 4) == 0) {
		*i += 4;
		return 0;
	}
	if (j >= n || s[j] != '{')
		return -1;
	v->a = j;
	j = skip_ws(s, j + 1, n);
	if (j < n && s[j] == '}') {
		v->b = j;
		*i = j + 1;
		return 0;
	}
	for (;;) {
		if (j >= n || s[j] != '"' || scan_string(s, j, n, &e, &esc) < 0)
			return -1;
		j = skip_ws(s, e + 1, n);
		if (j >= n || s[j] != ':')
			return -1;
		j = skip_ws(s, j + 1, n);
		if (j >= n || s[j] != '"' || scan_string(s, j, n, &e, &esc) < 0)
			return -1;
		j = skip_ws(s, e + 1, n);
		if (j < n && s[j] == '}')
			break;
		if (j >= n || s[j] != ',')
			return -1;
		j = skip_ws(s, j + 1, n);
	}
	v->b = j;
	*i = j + 1;
	return 0;
}

/* The member name at s[i] (a quote): which of key, headers, payload (0, 1,
 * 2), or -1; *end is its closing quote. */
static int member_name(const uint8_t *s, size_t i, size_t n, size_t *end)
{
	static const char *const names[] = {"key", "headers", "payload"};

	for (int m = 0; m < 3; m++) {
		size_t l = strlen(names[m]);
		if (i + l + 2 <= n && memcmp(s + i + 1, names[m], l) == 0 && s[i + 1 + l] == '"') {
			*end = i + 1 + l;
			return m;
		}
	}
	return -1;
}

/* The envelope's three members located; -1 if the line is not the plain form. */
static int scan_envelope(const uint8_t *s, size_t n, struct span v[3])
{
	size_t i = skip_ws(s, 0, n), e;

	memset(v, 0, 3 * sizeof(v[0]));
	if (i >= n || s[i] != '{')
		return -1;
	i = skip_ws(s, i + 1, n);
	if (i < n && s[i] == '}')
		return skip_ws(s, i + 1, n) == n ? 0 : -1;
	for (;;) {
		int m = i < n && s[i] == '"' ? member_name(s, i, n, &e) : -1;
		if (m < 0 || v[m].seen)
			return -1;
		v[m].seen = 1;
		i = skip_ws(s, e + 1, n);
		if (i >= n || s[i] != ':')
			return -1;
		i = skip_ws(s, i + 1, n);
		if ((m == 1 ? scan_headers(s, &i, n, &v[m]) : scan_str_or_null(s, &i, n, &v[m])) < 0)
			return -1;
		i = skip_ws(s, i, n);
		if (i < n && s[i] == '}')
			break;
		if (i >= n || s[i] != ',')
			return -1;
		i = skip_ws(s, i + 1, n);
	}
	return skip_ws(s, i + 1, n) == n ? 0 : -1;
}

/* The header blob of the object at v, decoded at o; its length, or -1. */
static long decode_headers(const uint8_t *s, const struct span *v, uint8_t *o)
{
	size_t i = v->a + 1, w = 0, e;
	int esc, nh = 0;

	if (v->a == 0)
		return 0;
	for (i = skip_ws(s, i, v->b); i < v->b; nh++) {
		long kl, vl;
		if (nh >= NDJ_HEADERS_MAX)
			return -1;
		scan_string(s, i, v->b, &e, &esc); /* checked by scan_headers */
		kl = decode_string(s, i, e, esc, o + w + 2);
		if (kl <= 0 || kl > 255 || memchr(o + w + 2, 0, (size_t)kl))
			return -1;
		/* a name seen before: jansson refuses duplicates */
		for (size_t q = 0; q < w;) {
			size_t ql = (size_t)o[q] | (size_t)o[q + 1] << 8, qv;
			if (ql == (size_t)kl && memcmp(o + q + 2, o + w + 2, ql) == 0)
				return -1;
			qv = (size_t)o[q + 2 + ql] | (size_t)o[q + 3 + ql] << 8 | (size_t)o[q + 4 + ql] << 16 |
			     (size_t)o[q + 5 + ql] << 24;
			q += 6 + ql + qv;
		}
		i = skip_ws(s, skip_ws(s, e + 1, v->b) + 1, v->b); /* past ':' */
		scan_string(s, i, v->b, &e, &esc);
		vl = decode_string(s, i, e, esc, o + w + 6 + (size_t)kl);
		if (vl < 0)
			return -1;
		o[w] = (uint8_t)kl; /* [u16 name_len][name][u32 value_len][value], little-endian */
		o[w + 1] = (uint8_t)(kl >> 8);
		o[w + 2 + kl] = (uint8_t)vl;
		o[w + 3 + kl] = (uint8_t)((uint32_t)vl >> 8);
		o[w + 4 + kl] = (uint8_t)((uint32_t)vl >> 16);
		o[w + 5 + kl] = (uint8_t)((uint32_t)vl >> 24);
		w += hdrs_entry_bytes((size_t)kl, (size_t)vl);
		i = skip_ws(s, e + 1, v->b);
		if (i < v->b && s[i] == ',')
			i = skip_ws(s, i + 1, v->b);
	}
	return (long)w;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

/* The plain envelope, written as a record at the end of b; NDJ_FALLBACK
 * (nothing written) for anything else. The room is reserved by the caller. */
static int scan_line(struct ndj *b, const uint8_t *s, size_t n)
{
	struct span v[3];
	uint8_t *rec = b->p + b->len, *q = rec + PUBBATCH_REC_HDR;
	long kl = 0, hl, pl = 0;

	if (scan_envelope(s, n, v) < 0)
		return NDJ_FALLBACK;
	if (v[0].a && (kl = decode_string(s, v[0].a, v[0].b, v[0].esc, q)) < 0)
		return NDJ_FALLBACK;
	if ((hl = decode_headers(s, &v[1], q + kl)) < 0)
		return NDJ_FALLBACK;
	if (v[2].a && (pl = decode_string(s, v[2].a, v[2].b, v[2].esc, q + kl + hl)) < 0)
		return NDJ_FALLBACK;
	put_le32(rec, (uint32_t)kl);
	put_le32(rec + 4, (uint32_t)hl);
	put_le32(rec + 8, (uint32_t)pl);
	b->len += PUBBATCH_REC_HDR + (size_t)(kl + hl + pl);
	return SL_OK;
}

/* ---------- jansson, for every other line ---------- */

/* Header blob of a JSON object of strings, at hb (hb_cap bytes). */
static int headers_blob(json_t *h, uint8_t *hb, size_t hb_cap, size_t *hl)
{
	const char *k;
	size_t kl;
	json_t *v;

	*hl = 0;
	if (!h || json_is_null(h))
		return SL_OK;
	if (!json_is_object(h))
		return SL_EINVAL;
	json_object_keylen_foreach(h, k, kl, v)
	{
		size_t vl;
		if (!json_is_string(v) || kl == 0 || kl > 255 || memchr(k, 0, kl))
			return SL_EINVAL;
		vl = json_string_length(v);
		if (*hl + hdrs_entry_bytes(kl, vl) > hb_cap)
			return SL_ETOOLARGE;
		*hl += hdrs_put(hb + *hl, slice_make(k, kl), slice_make(json_string_value(v), vl));
	}
	return SL_OK;
}

/* The line through jansson: appended to b, or an error naming the line. */
static int json_line(struct ndj *b, const uint8_t *line, size_t n)
{
	json_error_t e;
	json_t *j = json_loadb((const char *)line, n, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &e), *k, *p;
	char *ptext = NULL;
	struct slice key = {0}, payload = {0};
	size_t hl = 0, hcap;
	uint8_t *rec;
	int rc;

	if (!j) {
		rc = ndj_fail(b, SL_EMALFORMED, NDJ_WHY_BAD, e.text);
		goto out;
	}
	k = json_object_get(j, "key");
	p = json_object_get(j, "payload");
	if (!json_is_object(j) || (k && !json_is_null(k) && !json_is_string(k))) {
		rc = ndj_fail(b, SL_EMALFORMED, NDJ_WHY_BAD, json_is_object(j) ? "key must be a string" : NULL);
		goto out;
	}
	if (k && json_is_string(k))
		key = slice_make(json_string_value(k), json_string_length(k));
	if (p && json_is_string(p)) {
		payload = slice_make(json_string_value(p), json_string_length(p));
	} else if (p && !json_is_null(p)) {
		/* any other JSON value is stored as its compact text */
		if (!(ptext = json_dumps(p, JSON_COMPACT | JSON_ENCODE_ANY))) {
			rc = ndj_fail(b, SL_ENOMEM, "out of memory", NULL);
			goto out;
		}
		payload = slice_cstr(ptext);
	}
	hcap = n + 6 * NDJ_HEADERS_MAX;
	if ((rc = ndj_reserve(b, PUBBATCH_REC_HDR + key.len + hcap + payload.len)) != SL_OK) {
		rc = ndj_fail(b, rc, rc == SL_ETOOLARGE ? "batch too large" : "out of memory", NULL);
		goto out;
	}
	/* the header blob goes after the record header and the key, where pubbatch_put puts it */
	rec = b->p + b->len;
	if ((rc = headers_blob(json_object_get(j, "headers"), rec + PUBBATCH_REC_HDR + key.len, hcap, &hl)) != SL_OK) {
		rc = ndj_fail(b, SL_EINVAL, "headers must be an object of strings with names of 1 to 255 bytes", NULL);
		goto out;
	}
	if (key.len)
		memcpy(rec + PUBBATCH_REC_HDR, key.base, key.len);
	put_le32(rec, (uint32_t)key.len);
	put_le32(rec + 4, (uint32_t)hl);
	put_le32(rec + 8, (uint32_t)payload.len);
	if (payload.len)
		memcpy(rec + PUBBATCH_REC_HDR + key.len + hl, payload.base, payload.len);
	b->len += PUBBATCH_REC_HDR + key.len + hl + payload.len;
	rc = SL_OK;
out:
	free(ptext);
	json_decref(j);
	return rc;
}

/* ---------- lines ---------- */

/* One physical line (its '\n' removed); empty ones are skipped. */
static int ndj_line(struct ndj *b, const uint8_t *s, size_t n)
{
	int rc;

	b->line++;
	if (n && s[n - 1] == '\r')
		n--;
	if (n == 0)
		return SL_OK;
	if (b->count >= PUBBATCH_COUNT_MAX)
		return ndj_fail(b, SL_ETOOLARGE, "more than 65536 messages in one batch", NULL);
	if ((rc = ndj_reserve(b, PUBBATCH_REC_HDR + n)) != SL_OK)
		return ndj_fail(b, rc, rc == SL_ETOOLARGE ? "batch too large" : "out of memory", NULL);
	if (!http_ndjson_use_scanner || (rc = scan_line(b, s, n)) == NDJ_FALLBACK)
		rc = json_line(b, s, n);
	if (rc == SL_OK)
		b->count++;
	return rc;
}

/* Append to the carried part of a line that spans two pieces. */
static int carry_add(uint8_t **c, size_t *len, size_t *cap, const uint8_t *p, size_t n)
{
	if (*len + n > *cap) {
		size_t nc = *cap ? *cap : 256;
		uint8_t *np;
		while (nc < *len + n)
			nc *= 2;
		if (!(np = realloc(*c, nc)))
			return SL_ENOMEM;
		*c = np;
		*cap = nc;
	}
	memcpy(*c + *len, p, n);
	*len += n;
	return SL_OK;
}

/* Every line of the pieces in order, a line that spans pieces carried over. */
static int ndj_pieces(struct ndj *b, const struct slice *parts, size_t nparts)
{
	uint8_t *carry = NULL;
	size_t cl = 0, ccap = 0;
	int rc = SL_OK;

	for (size_t k = 0; k < nparts && rc == SL_OK; k++) {
		const uint8_t *p = parts[k].base;
		size_t n = parts[k].len, i = 0;
		while (i < n && rc == SL_OK) {
			const uint8_t *nl = memchr(p + i, '\n', n - i);
			size_t end = nl ? (size_t)(nl - p) : n;
			if (!nl) {
				rc = carry_add(&carry, &cl, &ccap, p + i, n - i);
			} else if (cl) {
				if ((rc = carry_add(&carry, &cl, &ccap, p + i, end - i)) == SL_OK)
					rc = ndj_line(b, carry, cl);
				cl = 0;
			} else {
				rc = ndj_line(b, p + i, end - i);
			}
			i = end + 1;
		}
	}
	if (rc == SL_ENOMEM && !b->why[0])
		ndj_fail(b, rc, "out of memory", NULL);
	if (rc == SL_OK && cl)
		rc = ndj_line(b, carry, cl);
	free(carry);
	return rc;
}

int http_ndjson_records(const struct slice *parts, size_t nparts, uint8_t **recs, size_t *recs_len,
                        uint32_t *count, char *why, size_t why_cap)
{
	struct ndj b = {0};
	size_t total = 0;
	int rc;

	for (size_t k = 0; k < nparts; k++)
		total += parts[k].len;
	/* a record is at most 12 bytes longer than its line, and a JSON payload
	 * re-rendered by jansson may be longer than its text: a bound, not what
	 * is allocated (that grows with what is written) */
	b.max = 2 * total + 16 * (size_t)PUBBATCH_COUNT_MAX + 4096;
	b.why = why;
	b.why_cap = why_cap;
	why[0] = 0;
	*count = 0;
	if ((rc = ndj_reserve(&b, total + total / 8 + 64)) != SL_OK) {
		snprintf(why, why_cap, "out of memory");
		return rc;
	}
	rc = ndj_pieces(&b, parts, nparts);
	if (rc == SL_OK && b.count == 0) {
		snprintf(why, why_cap, "empty batch");
		rc = SL_EINVAL;
	}
	if (rc != SL_OK) {
		free(b.p);
		return rc;
	}
	*recs = b.p;
	*recs_len = b.len;
	*count = b.count;
	return SL_OK;
}
