/*
 * wh_post_driver.c: posts a fixed set of signed webhook deliveries to one
 * URL with the webhook module (broker/http/webhook/), for a receiver that
 * verifies them with a Standard Webhooks library nobody here wrote
 * (tests/node/webhook_verify.mjs).
 *
 * Usage: wh_post_driver URL CURRENT_SECRET PREVIOUS_SECRET
 *
 * Each delivery carries webhook-id (wh_msg_id of its position),
 * webhook-timestamp (now), webhook-signature (both secrets: a rotation),
 * and sluice-topic / sluice-partition / sluice-offset so that the receiver
 * can check that one position always has one id. The message at one
 * position is sent twice, as a retry would. Deliveries go one after the
 * other on the pool's keep-alive connection. Prints one line per delivery
 * ("<status> <webhook-id>") and exits 0 when every one got a 2xx.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "err.h"
#include "wh_body.h"
#include "wh_client.h"
#include "wh_sign.h"

struct msg {
	const char *topic;
	uint32_t partition;
	uint64_t offset;
	const char *key;
	const uint8_t *payload;
	size_t len;
};

static const uint8_t binary[] = {0x00, 0xff, 0x10, 0x80, 0xc3, 0x28};

#define TXT(s) (const uint8_t *)(s), sizeof(s) - 1
static const struct msg msgs[] = {
	{"orders", 0, 0, "", TXT("{\"id\": 1, \"total\": 12.5, \"items\": [\"a\", \"b\"]}")},
	{"orders", 0, 1, "customer-7", TXT("[1, 2, 3]")},
	{"orders", 1, 1, "", TXT("plain text, not JSON: caf\xc3\xa9")},
	{"audit.eu-west_1", 3, 42, "", binary, sizeof binary},
	{"orders", 0, 0, "", TXT("{\"id\": 1, \"total\": 12.5, \"items\": [\"a\", \"b\"]}")}, /* a retry of the first */
	{"orders", 2, 9, "k", TXT("\"a JSON string\"")},
	{"orders", 2, 10, "", TXT("")},
};
#define NMSGS (sizeof msgs / sizeof msgs[0])

struct run {
	struct event_base *base;
	struct wh_pool *pool;
	struct wh_url url;
	struct wh_key keys[2];
	size_t next, ok;
	int failed;
};

static void post_next(struct run *r);

static void done_cb(const struct wh_result *res, void *arg)
{
	struct run *r = arg;

	printf("%d %s%s\n", res->status, res->err == SL_OK ? "" : "error: ", res->error);
	if (res->err == SL_OK && res->status >= 200 && res->status <= 299)
		r->ok++;
	else
		r->failed = 1;
	post_next(r);
}

/* Render, sign and post msgs[r->next]; break the loop after the last. */
static void post_next(struct run *r)
{
	const struct msg *m;
	struct evbuffer *b;
	char id[WH_MSG_ID_CHARS], ts[24], sig[WH_SIG_HEADER_CHARS_MAX], part[16], off[24];
	int64_t now = (int64_t)time(NULL);
	int rc;

	if (r->next == NMSGS || r->failed) {
		event_base_loopbreak(r->base);
		return;
	}
	m = &msgs[r->next++];
	b = evbuffer_new();
	rc = wh_body_render(b, m->topic, strlen(m->topic), 1700000000000 + (int64_t)m->offset, slice_cstr(m->key),
	                    slice_make(m->payload, m->len));
	if (rc == SL_OK)
		rc = wh_msg_id(id, sizeof id, m->topic, m->partition, m->offset);
	snprintf(ts, sizeof ts, "%" PRId64, now);
	snprintf(part, sizeof part, "%" PRIu32, m->partition);
	snprintf(off, sizeof off, "%" PRIu64, m->offset);
	if (rc == SL_OK)
		rc = wh_signature_header(r->keys, 2, id, now, evbuffer_pullup(b, -1), evbuffer_get_length(b), sig,
		                         sizeof sig);
	if (rc == SL_OK) {
		struct wh_header h[] = {{"webhook-id", id},         {"webhook-timestamp", ts},
		                        {"webhook-signature", sig}, {"sluice-topic", m->topic},
		                        {"sluice-partition", part}, {"sluice-offset", off}};
		rc = wh_post(r->pool, &r->url, h, 6, evbuffer_pullup(b, -1), evbuffer_get_length(b), 5000, done_cb, r,
		             NULL);
	}
	evbuffer_free(b);
	if (rc != SL_OK) {
		fprintf(stderr, "message %zu: %s\n", r->next - 1, wh_strerror(rc));
		r->failed = 1;
		event_base_loopbreak(r->base);
	}
}

int main(int argc, char **argv)
{
	struct wh_pool_cfg cfg = {.allow_private = 1}; /* the receiver is on 127.0.0.1 */
	struct run r = {0};

	if (argc != 4) {
		fprintf(stderr, "usage: %s URL CURRENT_SECRET PREVIOUS_SECRET\n", argv[0]);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if (wh_url_parse(argv[1], strlen(argv[1]), &r.url) != SL_OK || wh_key_parse(argv[2], &r.keys[0]) != SL_OK ||
	    wh_key_parse(argv[3], &r.keys[1]) != SL_OK) {
		fprintf(stderr, "bad URL or secret\n");
		return 2;
	}
	r.base = event_base_new();
	r.pool = wh_pool_new(r.base, &cfg);
	if (!r.base || !r.pool)
		return 1;
	post_next(&r);
	event_base_dispatch(r.base);
	fprintf(stderr, "%zu of %zu delivered on %u connection(s) left open\n", r.ok, NMSGS, wh_pool_conns(r.pool));
	wh_pool_free(r.pool);
	event_base_free(r.base);
	return r.ok == NMSGS ? 0 : 1;
}
