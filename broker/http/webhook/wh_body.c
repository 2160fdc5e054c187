/*
 * wh_body.c: the JSON body of a webhook delivery (see wh_body.h). The
 * envelope is written member by member; strings go through jansson's
 * encoder (escapes, UTF-8 checks) and a JSON payload is copied as published
 * once jansson has accepted it as exactly one value.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <jansson.h>
#include <sodium.h>

#include "err.h"
#include "utf8.h"
#include "wh_body.h"

#define WH_JSON_WS(c) ((c) == ' ' || (c) == '\t' || (c) == '\r' || (c) == '\n')

int wh_rfc3339_ms(int64_t ts_ms, char *out, size_t cap)
{
	int64_t s = ts_ms / 1000, ms = ts_ms % 1000;
	struct tm tm;
	time_t t;

	if (ms < 0) { /* floor, so that -1 ms is 23:59:59.999 of the day before */
		ms += 1000;
		s -= 1;
	}
	t = (time_t)s;
	if (cap < WH_TS_CHARS || !gmtime_r(&t, &tm) || tm.tm_year < -1900 || tm.tm_year > 9999 - 1900)
		return SL_ERANGE;
	if (strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm) != 19)
		return SL_ERANGE;
	snprintf(out + 19, cap - 19, ".%03dZ", (int)ms);
	return SL_OK;
}

/* A JSON string of s[0..n) (valid UTF-8, checked by the caller). */
static int add_jstring(struct evbuffer *out, const void *s, size_t n)
{
	json_t *j = json_stringn_nocheck(s, n);
	char *txt;
	int rc = SL_ENOMEM;

	if (!j)
		return SL_ENOMEM;
	txt = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT);
	if (txt && evbuffer_add(out, txt, strlen(txt)) == 0)
		rc = SL_OK;
	free(txt);
	json_decref(j);
	return rc;
}

/* {"base64":"..."} of b */
static int add_base64(struct evbuffer *out, struct slice b)
{
	size_t cap = sodium_base64_ENCODED_LEN(b.len, sodium_base64_VARIANT_ORIGINAL);
	char *txt = malloc(cap);
	int rc = SL_ENOMEM;

	if (!txt)
		return SL_ENOMEM;
	sodium_bin2base64(txt, cap, b.base, b.len, sodium_base64_VARIANT_ORIGINAL);
	if (evbuffer_add_printf(out, "{\"base64\":\"%s\"}", txt) >= 0)
		rc = SL_OK;
	free(txt);
	return rc;
}

/* Bytes that are text: a JSON string; else the base64 object. */
static int add_text_or_base64(struct evbuffer *out, struct slice b)
{
	if (utf8_valid(b.base, b.len))
		return add_jstring(out, b.base, b.len);
	return add_base64(out, b);
}

/* data: the payload's own JSON when it is one JSON value. */
static int add_data(struct evbuffer *out, struct slice p)
{
	json_error_t err;
	json_t *j;
	size_t a = 0, z = p.len;

	if (p.len == 0)
		return add_jstring(out, "", 0);
	j = json_loadb((const char *)p.base, p.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
	if (!j)
		return add_text_or_base64(out, p);
	json_decref(j);
	while (a < z && WH_JSON_WS(p.base[a]))
		a++;
	while (z > a && WH_JSON_WS(p.base[z - 1]))
		z--;
	return evbuffer_add(out, p.base + a, z - a) == 0 ? SL_OK : SL_ENOMEM;
}

int wh_body_render(struct evbuffer *out, const char *topic, size_t topic_len, int64_t ts_ms, struct slice key,
                   struct slice payload)
{
	char ts[WH_TS_CHARS];
	int rc;

	if (!out || !topic || topic_len == 0 || !utf8_valid((const uint8_t *)topic, topic_len))
		return SL_EINVAL;
	if ((rc = wh_rfc3339_ms(ts_ms, ts, sizeof ts)) != SL_OK)
		return SL_EINVAL;
	if (evbuffer_add(out, "{\"type\":", 8) != 0)
		return SL_ENOMEM;
	if ((rc = add_jstring(out, topic, topic_len)) != SL_OK)
		return rc;
	if (evbuffer_add_printf(out, ",\"timestamp\":\"%s\"", ts) < 0)
		return SL_ENOMEM;
	if (key.len) {
		if (evbuffer_add(out, ",\"key\":", 7) != 0)
			return SL_ENOMEM;
		if ((rc = add_text_or_base64(out, key)) != SL_OK)
			return rc;
	}
	if (evbuffer_add(out, ",\"data\":", 8) != 0)
		return SL_ENOMEM;
	if ((rc = add_data(out, payload)) != SL_OK)
		return rc;
	return evbuffer_add(out, "}", 1) == 0 ? SL_OK : SL_ENOMEM;
}
