/*
 * http_consumer.c: durable consumers over HTTP (docs/http.md, "Durable
 * consumers"). Each route is one native request (CreateConsumer,
 * DeleteConsumer, ListConsumers, DescribeConsumer, Pull, AckMessages) sent
 * through http_dispatch, so HTTP clients share the frontend's request path,
 * limits and errors with native ones; the answer comes back through
 * http_consumer_frame.
 *
 *   POST   /v1/consumers                       create (name in the body)   201
 *   PUT    /v1/consumers/{name}                create (name in the path)   201
 *   GET    /v1/consumers                       list                        200
 *   GET    /v1/consumers/{name}                describe                    200
 *   DELETE /v1/consumers/{name}                delete                      204
 *   GET    /v1/consumers/{name}/messages       pull (max, wait_ms)         200
 *   POST   /v1/consumers/{name}/ack|nack|in_progress                      200
 *
 * Caveats: a pull takes messages (each one is recorded in the log as
 * delivered), so it is not safe in the HTTP sense even though it is a GET:
 * HEAD on it only checks the consumer exists and never pulls. A pull that
 * finds nothing answers an empty list after wait_ms, never 204, so clients
 * loop on one shape.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <jansson.h>

#include "err.h"
#include "http_int.h"
#include "ringmsg.h"

/* ---------- requests ---------- */

void http_send_or_fail(struct http_req *r, enum http_kind kind, const Sluice__Frame *f)
{
	int rc = http_dispatch(r, kind, f);

	if (rc != SL_OK)
		http_problem(r, 500, SL_EINTERNAL, sl_strerror(rc));
}

/* The {name} path parameter into r->consumer; -1 and answered if bad. */
int http_consumer_param(struct http_req *r)
{
	const char *s = r->params[0];
	size_t n = strlen(s);

	if (n == 0 || n > RM_CONSUMER_NAME_MAX || n >= sizeof(r->consumer) || !utf8_valid((const uint8_t *)s, n)) {
		http_problem(r, 400, SL_EINVAL, "consumer name must be 1 to 249 bytes of UTF-8");
		return -1;
	}
	memcpy(r->consumer, s, n + 1);
	return 0;
}

const char *http_body_bytes(struct http_req *r, size_t *len)
{
	*len = evbuffer_get_length(r->body);
	return *len ? (const char *)evbuffer_pullup(r->body, -1) : "";
}

static void consumer_create(struct http_req *r, const char *path_name)
{
	Sluice__CreateConsumer m = SLUICE__CREATE_CONSUMER__INIT;
	Sluice__ConsumerConfig cc = SLUICE__CONSUMER_CONFIG__INIT;
	Sluice__Frame f = SLUICE__FRAME__INIT;
	struct http_consumer_in in;
	char why[160];
	size_t len;
	const char *p;
	int rc;

	if (!http_json_ctype(r))
		return;
	p = http_body_bytes(r, &len);
	if ((rc = http_consumer_decode(p, len, path_name, &in, why, sizeof(why))) != SL_OK) {
		http_problem(r, 400, rc, why);
		return;
	}
	snprintf(r->consumer, sizeof(r->consumer), "%s", in.name);
	snprintf(r->topic, sizeof(r->topic), "%s", in.topic);
	cc.topic = in.topic;
	cc.shared = in.shared;
	cc.max_in_flight = in.max_in_flight;
	cc.max_deliveries = in.max_deliveries;
	cc.never_dead_letter = in.never_dead_letter;
	cc.ack_timeout_ms = in.ack_timeout_ms;
	cc.n_schedule_ms = in.nschedule;
	cc.schedule_ms = in.schedule_ms;
	cc.dead_letter_topic = in.dead_letter_topic;
	cc.start = (Sluice__StartAt)in.start;
	cc.offset = in.offset;
	cc.timestamp_ms = in.timestamp_ms;
	m.name = in.name;
	m.config = &cc;
	f.body_case = SLUICE__FRAME__BODY_CREATE_CONSUMER;
	f.create_consumer = &m;
	http_send_or_fail(r, HK_CONSUMER_CREATE, &f);
}

void http_on_consumer_post(struct http_req *r)
{
	consumer_create(r, NULL);
}

void http_on_consumer_put(struct http_req *r)
{
	if (http_consumer_param(r) == 0)
		consumer_create(r, r->consumer);
}

void http_consumer_list(struct http_req *r, enum http_kind kind)
{
	Sluice__ListConsumers m = SLUICE__LIST_CONSUMERS__INIT;
	Sluice__Frame f = SLUICE__FRAME__INIT;

	f.body_case = SLUICE__FRAME__BODY_LIST_CONSUMERS;
	f.list_consumers = &m;
	http_send_or_fail(r, kind, &f);
}

void http_on_consumer_list(struct http_req *r)
{
	http_consumer_list(r, HK_CONSUMER_LIST);
}

void http_consumer_describe(struct http_req *r, enum http_kind kind)
{
	Sluice__DescribeConsumer m = SLUICE__DESCRIBE_CONSUMER__INIT;
	Sluice__Frame f = SLUICE__FRAME__INIT;

	m.name = r->consumer;
	f.body_case = SLUICE__FRAME__BODY_DESCRIBE_CONSUMER;
	f.describe_consumer = &m;
	http_send_or_fail(r, kind, &f);
}

void http_on_consumer_get(struct http_req *r)
{
	if (http_consumer_param(r) == 0)
		http_consumer_describe(r, HK_CONSUMER);
}

void http_on_consumer_delete(struct http_req *r)
{
	Sluice__DeleteConsumer m = SLUICE__DELETE_CONSUMER__INIT;
	Sluice__Frame f = SLUICE__FRAME__INIT;

	if (http_consumer_param(r) < 0)
		return;
	m.name = r->consumer;
	f.body_case = SLUICE__FRAME__BODY_DELETE_CONSUMER;
	f.delete_consumer = &m;
	http_send_or_fail(r, HK_CONSUMER_DELETE, &f);
}

void http_on_consumer_pull(struct http_req *r)
{
	Sluice__Pull m = SLUICE__PULL__INIT;
	Sluice__Frame f = SLUICE__FRAME__INIT;
	char max_s[32] = "", wait_s[32] = "";
	uint64_t max = HTTP_PULL_DEFAULT, wait = 0;

	if (http_consumer_param(r) < 0)
		return;
	if (http_query_get(r->query, r->query_len, "max", max_s, sizeof(max_s)) < 0 ||
	    http_query_get(r->query, r->query_len, "wait_ms", wait_s, sizeof(wait_s)) < 0 ||
	    (max_s[0] && (http_parse_u64(max_s, &max) < 0 || max > HTTP_PULL_MAX)) ||
	    (wait_s[0] && (http_parse_u64(wait_s, &wait) < 0 || wait > HTTP_PULL_WAIT_MS_MAX))) {
		http_problem(r, 400, SL_EINVAL, "bad query: max must be 0..1000 (0: 100), wait_ms 0..20000");
		return;
	}
	max = max ? max : HTTP_PULL_DEFAULT; /* as in Pull: 0 is the default */
	if (r->method == HTTP_HEAD) {
		http_consumer_describe(r, HK_PULL_HEAD); /* a HEAD must not take messages */
		return;
	}
	m.consumer = r->consumer;
	m.max_messages = (uint32_t)max;
	m.wait_ms = (uint32_t)wait;
	f.body_case = SLUICE__FRAME__BODY_PULL;
	f.pull = &m;
	http_send_or_fail(r, HK_PULL, &f);
}

static void consumer_ack(struct http_req *r, Sluice__AckKind kind)
{
	Sluice__AckMessages m = SLUICE__ACK_MESSAGES__INIT;
	Sluice__Frame f = SLUICE__FRAME__INIT;
	struct http_ack_in *ins = NULL;
	Sluice__AckItem *items = NULL, **ptrs = NULL;
	uint32_t n = 0;
	char why[160];
	size_t len;
	const char *p;
	int rc;

	if (http_consumer_param(r) < 0 || !http_json_ctype(r))
		return;
	p = http_body_bytes(r, &len);
	if ((rc = http_acks_decode(p, len, kind, &ins, &n, why, sizeof(why))) != SL_OK) {
		http_problem(r, rc == SL_ENOMEM ? 500 : 400, rc, why);
		return;
	}
	items = calloc(n, sizeof(*items));
	ptrs = calloc(n, sizeof(*ptrs));
	if (!items || !ptrs) {
		http_problem(r, 500, SL_ENOMEM, "out of memory");
		goto out;
	}
	for (uint32_t i = 0; i < n; i++) {
		sluice__ack_item__init(&items[i]);
		items[i].partition = ins[i].partition;
		items[i].offset = ins[i].offset;
		items[i].kind = kind;
		items[i].delay_ms = ins[i].delay_ms;
		items[i].has_delay = ins[i].has_delay;
		items[i].error = ins[i].error;
		ptrs[i] = &items[i];
	}
	r->ack_kind = kind;
	r->count = n;
	m.consumer = r->consumer;
	m.n_items = n;
	m.items = ptrs;
	f.body_case = SLUICE__FRAME__BODY_ACK_MESSAGES;
	f.ack_messages = &m;
	http_send_or_fail(r, HK_ACKS, &f); /* the frame is copied: ours can go */
out:
	free(ptrs);
	free(items);
	free(ins);
}

void http_on_consumer_ack(struct http_req *r)
{
	consumer_ack(r, SLUICE__ACK_KIND__ACK);
}

void http_on_consumer_nack(struct http_req *r)
{
	consumer_ack(r, SLUICE__ACK_KIND__NACK);
}

void http_on_consumer_in_progress(struct http_req *r)
{
	consumer_ack(r, SLUICE__ACK_KIND__IN_PROGRESS);
}

/* ---------- answers ---------- */

static const char *str(const char *s)
{
	return s ? s : "";
}

static json_t *partition_json(const Sluice__ConsumerPartition *p)
{
	return json_pack("{s:i,s:I,s:I,s:i,s:I,s:I,s:I,s:I,s:I,s:I,s:s}", "partition", (int)p->partition, "ack_floor",
	                 (json_int_t)p->ack_floor, "next_offset", (json_int_t)p->next_offset, "in_flight",
	                 (int)p->in_flight, "end_offset", (json_int_t)p->end_offset, "lag", (json_int_t)p->lag,
	                 "delivered", (json_int_t)p->delivered, "redelivered", (json_int_t)p->redelivered, "acked",
	                 (json_int_t)p->acked, "dead_lettered", (json_int_t)p->dead_lettered, "last_error",
	                 str(p->last_error));
}

/* A consumer as JSON: its configuration (defaults filled in) and partitions. */
static json_t *consumer_json(const Sluice__ConsumerInfo *ci)
{
	static const Sluice__ConsumerConfig none = SLUICE__CONSUMER_CONFIG__INIT;
	const Sluice__ConsumerConfig *c = ci->config ? ci->config : &none;
	json_t *sched = json_array(), *parts = json_array();

	for (size_t i = 0; sched && i < c->n_schedule_ms; i++)
		json_array_append_new(sched, json_integer(c->schedule_ms[i]));
	for (size_t i = 0; parts && i < ci->n_partitions; i++)
		json_array_append_new(parts, partition_json(ci->partitions[i]));
	/* no "from": where a consumer started matters once, and ConsumerInfo does not keep it */
	return json_pack("{s:s,s:s,s:s,s:I,s:I,s:b,s:I,s:o,s:s,s:I,s:o}", "name", str(ci->name), "topic",
	                 str(c->topic), "mode", c->shared ? "shared" : "ordered", "max_in_flight",
	                 (json_int_t)c->max_in_flight, "max_deliveries", (json_int_t)c->max_deliveries,
	                 "never_dead_letter", (int)c->never_dead_letter, "ack_timeout_ms", (json_int_t)c->ack_timeout_ms,
	                 "schedule_ms", sched, "dead_letter_topic", str(c->dead_letter_topic), "created_ms",
	                 (json_int_t)ci->created_ms, "partitions", parts);
}

static void answer_list(struct http_req *r, const Sluice__ConsumerList *cl)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr && i < cl->n_consumers; i++)
		json_array_append_new(arr, consumer_json(cl->consumers[i]));
	http_respond_json(r, 200, json_pack("{s:o}", "consumers", arr));
}

/* The messages of a pull: the fetch route's message object plus "attempt". */
static void answer_pull(struct http_req *r, const Sluice__PullResult *pr)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr && i < pr->n_messages; i++) {
		const Sluice__PulledMessage *pm = pr->messages[i];
		json_t *o = pm->message ? http_message_json(pm->message) : NULL;
		if (!o)
			continue;
		json_object_set_new(o, "attempt", json_integer(pm->attempt));
		json_array_append_new(arr, o);
	}
	http_respond_json(r, 200, json_pack("{s:o}", "messages", arr));
}

/* Unreserved bytes as they are, every other one %XX (RFC 3986). */
static void pct_encode(const char *s, char *out, size_t cap)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (; *s && o + 4 <= cap; s++) {
		unsigned char ch = (unsigned char)*s;
		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' ||
		    ch == '.' || ch == '_' || ch == '~') {
			out[o++] = (char)ch;
		} else {
			out[o++] = '%';
			out[o++] = hex[ch >> 4];
			out[o++] = hex[ch & 15];
		}
	}
	out[o] = 0;
}

static void answer_ok(struct http_req *r)
{
	char loc[RM_CONSUMER_NAME_MAX * 3 + 4];

	switch (r->kind) {
	case HK_CONSUMER_CREATE:
		pct_encode(r->consumer, loc, sizeof(loc));
		http_add_header(r, "Location", "/v1/consumers/%s", loc);
		http_respond_json(r, 201, json_pack("{s:s,s:s}", "name", r->consumer, "topic", r->topic));
		return;
	case HK_CONSUMER_DELETE:
		http_respond(r, 204, NULL, NULL, 0);
		return;
	default: /* HK_ACKS */
		http_respond_json(r, 200,
		                  json_pack("{s:i}",
		                            r->ack_kind == SLUICE__ACK_KIND__ACK    ? "acked"
		                            : r->ack_kind == SLUICE__ACK_KIND__NACK ? "nacked"
		                                                                    : "in_progress",
		                            (int)r->count));
		return;
	}
}

void http_consumer_frame(struct http_req *r, const Sluice__Frame *f)
{
	int ok = f->body_case == SLUICE__FRAME__BODY_OK;

	if (f->body_case == SLUICE__FRAME__BODY_ERROR) {
		http_problem(r, 0, (int)f->error->code, f->error->message);
		return;
	}
	if (ok && (r->kind == HK_CONSUMER_CREATE || r->kind == HK_CONSUMER_DELETE || r->kind == HK_ACKS))
		answer_ok(r);
	else if (r->kind == HK_CONSUMER_LIST && f->body_case == SLUICE__FRAME__BODY_CONSUMER_LIST)
		answer_list(r, f->consumer_list);
	else if (r->kind == HK_CONSUMER && f->body_case == SLUICE__FRAME__BODY_CONSUMER_INFO)
		http_respond_json(r, 200, consumer_json(f->consumer_info));
	else if (r->kind == HK_PULL_HEAD && f->body_case == SLUICE__FRAME__BODY_CONSUMER_INFO)
		http_respond_stream_head(r, "application/json");
	else if (r->kind == HK_PULL && f->body_case == SLUICE__FRAME__BODY_PULL_RESULT)
		answer_pull(r, f->pull_result);
	else
		http_problem(r, 500, SL_EINTERNAL, "unexpected answer from the native path");
}
