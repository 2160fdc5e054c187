/*
 * http_fuzz.c: libFuzzer target for the HTTP request path's decoders of
 * untrusted bytes: libhttp-parser with the server's header accounting, the
 * URL split, percent-decoding, query strings, UTF-8 checks, Prefer, SSE
 * event ids, operation ids, NDJSON publish bodies (in up to three pieces,
 * checked with pubbatch_check as the frontend would, and the direct scanner
 * compared with jansson: the same records or the same refusal), group
 * commit bodies (one commit or an array) and the durable consumer bodies
 * (create, with and without a path name; ack, nack and in_progress items).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <http_parser.h>

#include "err.h"
#include "http_int.h"
#include "pubbatch.h"
#include "ringmsg.h"
#include "wh_config.h"

#include <jansson.h>

static size_t body_bytes;

static int on_url(http_parser *p, const char *at, size_t n)
{
	char out[HTTP_PARAM_BYTES_MAX];
	struct http_parser_url u;

	http_parser_url_init(&u);
	if (http_parser_parse_url(at, n, 0, &u) == 0 && (u.field_set & (1 << UF_QUERY))) {
		const char *q = at + u.field_data[UF_QUERY].off;
		size_t ql = u.field_data[UF_QUERY].len;
		http_query_get(q, ql, "from", out, sizeof(out));
		http_query_get(q, ql, "lastEventId", out, sizeof(out));
	}
	if (http_pct_decode(at, n, 0, out, sizeof(out), NULL) == SL_OK)
		utf8_valid((const uint8_t *)out, strlen(out));
	return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
	char v[512];
	int async;
	long wait;

	if (n < sizeof(v)) {
		memcpy(v, at, n);
		v[n] = 0;
		http_parse_prefer(v, &async, &wait);
	}
	return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
	body_bytes += n;
	return body_bytes > (1u << 20) ? -1 : 0;
}

static const http_parser_settings settings = {
    .on_url = on_url,
    .on_header_value = on_header_value,
    .on_body = on_body,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	http_parser p;
	char *s = malloc(size + 1);
	uint32_t parts[64];
	uint64_t offs[64];
	size_t n;
	struct http_op op;
	uint8_t *recs = NULL;
	size_t rl;
	uint32_t count;
	const char *why;
	char whybuf[256];
	struct slice pieces[3];

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = 0;
	/* the request parser, pausing at each message as the server does */
	http_parser_init(&p, HTTP_REQUEST);
	body_bytes = 0;
	size_t off = 0;
	while (off < size) {
		size_t done = http_parser_execute(&p, &settings, (const char *)data + off, size - off);
		off += done;
		if (HTTP_PARSER_ERRNO(&p) != HPE_OK || done == 0 || p.upgrade)
			break;
	}
	/* ids and envelopes */
	if (http_sse_id_parse(s, parts, offs, 64, &n) == 0 && n > 64)
		abort();
	if (http_op_decode(s, &op) == SL_OK) {
		char again[512];
		if (http_op_encode(&op, again, sizeof(again)) != SL_OK)
			abort();
	}
	/* NDJSON in up to three pieces, as an evbuffer's chains would hand it over */
	size_t cut1 = size ? data[0] % (size + 1) : 0, cut2 = size > 1 ? cut1 + (data[1] % (size - cut1 + 1)) : cut1;
	pieces[0] = slice_make(data, cut1);
	pieces[1] = slice_make(data + cut1, cut2 - cut1);
	pieces[2] = slice_make(data + cut2, size - cut2);
	http_ndjson_use_scanner = 1;
	int rc1 = http_ndjson_records(pieces, 3, &recs, &rl, &count, whybuf, sizeof(whybuf));
	if (rc1 == SL_OK && pubbatch_check(slice_make(recs, rl), count, &why) != SL_OK)
		abort();
	/* the scanner is only a faster way to jansson's answer: the same records, or the same refusal */
	uint8_t *recs2 = NULL;
	size_t rl2 = 0;
	uint32_t count2 = 0;
	http_ndjson_use_scanner = 0;
	int rc2 = http_ndjson_records(pieces, 3, &recs2, &rl2, &count2, whybuf, sizeof(whybuf));
	if (rc1 != rc2 || (rc1 == SL_OK && (rl != rl2 || count != count2 || memcmp(recs, recs2, rl) != 0)))
		abort();
	if (rc1 == SL_OK) {
		free(recs);
		free(recs2);
	}
	/* a group commit body (POST /v1/groups/{group}/offsets) */
	struct json_t *owner = NULL;
	struct http_commit_in *ins = NULL;
	int array = 0;
	if (http_commits_decode(s, size, &owner, &ins, &count, &array, whybuf, sizeof(whybuf)) == SL_OK) {
		if (count == 0 || count > HTTP_COMMITS_MAX || (!array && count != 1))
			abort();
		for (uint32_t i = 0; i < count; i++)
			if (!ins[i].topic[0] || strlen(ins[i].topic) > RM_TOPIC_NAME_MAX || ins[i].partition == UINT32_MAX)
				abort();
		free(ins);
		json_decref(owner);
	}
	/* durable consumer bodies (POST /v1/consumers, PUT /v1/consumers/{name}, .../ack|nack|in_progress) */
	struct http_consumer_in cin;
	if (http_consumer_decode(s, size, size && data[0] & 1 ? "path-name" : NULL, &cin, whybuf, sizeof(whybuf)) ==
	    SL_OK) {
		if (!cin.name[0] || !cin.topic[0] || strlen(cin.name) > RM_CONSUMER_NAME_MAX ||
		    cin.nschedule > RM_SCHEDULE_MAX || cin.start < SLUICE__START_AT__EARLIEST ||
		    cin.start > SLUICE__START_AT__TIMESTAMP || cin.timestamp_ms < 0)
			abort();
	}
	/* POST /v1/webhooks: consumer settings plus the webhook's JSON */
	char *wsettings = NULL, secret[160];
	if (http_webhook_decode(s, size, &cin, &wsettings, secret, sizeof(secret), whybuf, sizeof(whybuf)) == SL_OK) {
		if (!wsettings || !cin.topic[0] || cin.nschedule > RM_SCHEDULE_MAX || cin.ack_timeout_ms < WH_ACK_MARGIN_MS)
			abort();
		free(wsettings);
	} else if (wsettings) {
		abort();
	}
	for (int kind = SLUICE__ACK_KIND__ACK; kind <= SLUICE__ACK_KIND__IN_PROGRESS; kind++) {
		struct http_ack_in *acks = NULL;
		if (http_acks_decode(s, size, kind, &acks, &count, whybuf, sizeof(whybuf)) != SL_OK) {
			if (acks)
				abort();
			continue;
		}
		if (count == 0 || count > HTTP_ACKS_MAX)
			abort();
		for (uint32_t i = 0; i < count; i++)
			if (acks[i].partition == UINT32_MAX || strlen(acks[i].error) > RM_CACK_ERROR_MAX ||
			    !utf8_valid((const uint8_t *)acks[i].error, strlen(acks[i].error)) ||
			    (acks[i].has_delay && acks[i].delay_ms < 0) || (!acks[i].has_delay && acks[i].delay_ms != -1) ||
			    (kind != SLUICE__ACK_KIND__NACK && (acks[i].has_delay || acks[i].error[0])))
				abort();
		free(acks);
	}
	free(s);
	return 0;
}
