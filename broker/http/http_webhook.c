/*
 * http_webhook.c: webhooks over HTTP (docs/webhooks.md). A webhook is a
 * durable consumer whose settings carry where and how to POST its messages
 * (broker/http/webhook/); each route is one native request:
 *
 *   POST   /v1/webhooks                          CreateConsumer + settings   201
 *   GET    /v1/webhooks                          ListConsumers (webhooks)    200
 *   GET    /v1/webhooks/{name}                   DescribeConsumer            200
 *   DELETE /v1/webhooks/{name}                   DeleteConsumer              204
 *   POST   /v1/webhooks/{name}/pause|resume      UpdateWebhook               200
 *   POST   /v1/webhooks/{name}/rotate-secret     UpdateWebhook               200 (the new secret)
 *   POST   /v1/webhooks/{name}/replay            SeekConsumer                200
 *
 * A secret is answered once, when it is made (create, rotate-secret);
 * descriptions carry how many secrets there are, never their value.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <jansson.h>
#include <sodium.h>

#include "err.h"
#include "http_int.h"
#include "ringmsg.h"
#include "wh_sign.h"

void http_on_webhook_post(struct http_req *r)
{
	Sluice__CreateConsumer m = SLUICE__CREATE_CONSUMER__INIT;
	Sluice__ConsumerConfig cc = SLUICE__CONSUMER_CONFIG__INIT;
	Sluice__Frame f = SLUICE__FRAME__INIT;
	struct http_consumer_in in;
	char why[200], *settings = NULL;
	size_t len;
	const char *p;
	int rc;

	if (!http_json_ctype(r))
		return;
	p = http_body_bytes(r, &len);
	rc = http_webhook_decode(p, len, &in, &settings, r->secret, sizeof(r->secret), why, sizeof(why));
	if (rc != SL_OK) {
		http_problem(r, rc == SL_ENOMEM ? 503 : 400, rc == SL_ENOMEM ? SL_EUNAVAILABLE : rc, why);
		return;
	}
	if (!in.name[0]) {
		uint8_t rnd[6];
		randombytes_buf(rnd, sizeof(rnd));
		snprintf(in.name, sizeof(in.name), "wh-%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2], rnd[3], rnd[4],
		         rnd[5]);
	}
	snprintf(r->consumer, sizeof(r->consumer), "%s", in.name);
	snprintf(r->topic, sizeof(r->topic), "%s", in.topic);
	cc.topic = in.topic;
	cc.shared = in.shared;
	cc.max_in_flight = in.max_in_flight;
	cc.max_deliveries = in.max_deliveries;
	cc.ack_timeout_ms = in.ack_timeout_ms;
	cc.n_schedule_ms = in.nschedule;
	cc.schedule_ms = in.schedule_ms;
	cc.start = (Sluice__StartAt)in.start;
	cc.offset = in.offset;
	cc.timestamp_ms = in.timestamp_ms;
	cc.webhook = settings;
	m.name = in.name;
	m.config = &cc;
	f.body_case = SLUICE__FRAME__BODY_CREATE_CONSUMER;
	f.create_consumer = &m;
	http_send_or_fail(r, HK_WEBHOOK_CREATE, &f);
	free(settings);
}

void http_on_webhook_list(struct http_req *r)
{
	http_consumer_list(r, HK_WEBHOOK_LIST);
}

void http_on_webhook_get(struct http_req *r)
{
	if (http_consumer_param(r) == 0)
		http_consumer_describe(r, HK_WEBHOOK);
}

static void update(struct http_req *r, const char *patch, const char *change)
{
	Sluice__UpdateWebhook m = SLUICE__UPDATE_WEBHOOK__INIT;
	Sluice__Frame f = SLUICE__FRAME__INIT;

	m.name = r->consumer;
	m.webhook = (char *)patch;
	f.body_case = SLUICE__FRAME__BODY_UPDATE_WEBHOOK;
	f.update_webhook = &m;
	r->change = change;
	http_send_or_fail(r, HK_WEBHOOK_UPDATE, &f);
}

void http_on_webhook_pause(struct http_req *r)
{
	if (http_consumer_param(r) == 0)
		update(r, "{\"paused\":true}", "paused");
}

void http_on_webhook_resume(struct http_req *r)
{
	if (http_consumer_param(r) == 0)
		update(r, "{\"paused\":false,\"disabled_reason\":null}", "resumed");
}

/* Body (optional): {"secret": "whsec_..."}; else a new one is made. The
 * patch is built by jansson: a given secret is the client's string and may
 * hold quotes or backslashes (wh_config_parse refuses it afterwards). */
void http_on_webhook_rotate(struct http_req *r)
{
	char *patch;
	size_t len;
	const char *p;
	json_t *j = NULL;

	if (http_consumer_param(r) < 0)
		return;
	p = http_body_bytes(r, &len);
	if (len) {
		json_error_t e;
		j = json_loadb(p, len, JSON_REJECT_DUPLICATES, &e);
		const char *s = json_string_value(json_object_get(j, "secret"));
		if (!json_is_object(j) || !s || strlen(s) >= sizeof(r->secret) || json_object_size(j) != 1) {
			json_decref(j);
			http_problem(r, 400, SL_EINVAL, "the body is empty or {\"secret\": \"whsec_...\"}");
			return;
		}
		snprintf(r->secret, sizeof(r->secret), "%s", s);
		json_decref(j);
	} else if (wh_secret_generate(r->secret, sizeof(r->secret)) != SL_OK) {
		http_problem(r, 503, SL_EUNAVAILABLE, "could not make a secret");
		return;
	}
	j = json_pack("{s:s}", "rotate_secret", r->secret);
	patch = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (!patch) {
		http_problem(r, 503, SL_EUNAVAILABLE, "out of memory");
		return;
	}
	update(r, patch, "rotated");
	free(patch);
}

/* Body: {"from": "earliest" | "latest" | offset | {"time": ms}}. */
void http_on_webhook_replay(struct http_req *r)
{
	Sluice__SeekConsumer m = SLUICE__SEEK_CONSUMER__INIT;
	Sluice__Frame f = SLUICE__FRAME__INIT;
	json_error_t e;
	size_t len;
	const char *p;

	if (http_consumer_param(r) < 0)
		return;
	p = http_body_bytes(r, &len);
	json_t *j = json_loadb(p, len, JSON_REJECT_DUPLICATES, &e), *v = json_object_get(j, "from");
	m.start = SLUICE__START_AT__EARLIEST;
	if (json_is_integer(v) && json_integer_value(v) >= 0) {
		m.start = SLUICE__START_AT__OFFSET;
		m.offset = (uint64_t)json_integer_value(v);
	} else if (json_is_object(v) && json_is_integer(json_object_get(v, "time"))) {
		m.start = SLUICE__START_AT__TIMESTAMP;
		m.timestamp_ms = json_integer_value(json_object_get(v, "time"));
	} else if (json_is_string(v) && strcmp(json_string_value(v), "latest") == 0) {
		m.start = SLUICE__START_AT__LATEST;
	} else if (!(json_is_string(v) && strcmp(json_string_value(v), "earliest") == 0)) {
		json_decref(j);
		http_problem(r, 400, SL_EINVAL, "the body is {\"from\": \"earliest\" | \"latest\" | offset | {\"time\": ms}}");
		return;
	}
	json_decref(j);
	m.name = r->consumer;
	f.body_case = SLUICE__FRAME__BODY_SEEK_CONSUMER;
	f.seek_consumer = &m;
	r->change = "replayed";
	http_send_or_fail(r, HK_WEBHOOK_UPDATE, &f);
}

/* ---------- answers ---------- */

static const char *str(const char *s)
{
	return s ? s : "";
}

/* A webhook as JSON, or NULL if the consumer is not one. */
static json_t *webhook_json(const Sluice__ConsumerInfo *ci)
{
	const Sluice__ConsumerConfig *c = ci->config;
	json_error_t e;
	json_t *o, *parts = json_array(), *sched = json_array();
	if (!c || !c->webhook || !c->webhook[0] || !(o = json_loads(c->webhook, 0, &e))) {
		json_decref(parts);
		json_decref(sched);
		return NULL;
	}
	json_array_append_new(sched, json_integer(0));
	for (size_t i = 0; i < c->n_schedule_ms; i++)
		json_array_append_new(sched, json_integer(c->schedule_ms[i]));
	for (size_t i = 0; i < ci->n_partitions; i++) {
		const Sluice__ConsumerPartition *p = ci->partitions[i];
		json_array_append_new(
		    parts, json_pack("{s:i,s:I,s:I,s:I,s:I,s:i,s:I,s:I,s:s,s:I}", "partition", (int)p->partition, "delivered",
		                     (json_int_t)p->acked, "attempts", (json_int_t)p->delivered, "retries",
		                     (json_int_t)p->redelivered, "dead_lettered", (json_int_t)p->dead_lettered, "in_flight",
		                     (int)p->in_flight, "lag", (json_int_t)p->lag, "end_offset", (json_int_t)p->end_offset,
		                     "last_error", str(p->last_error), "next_attempt_ms", (json_int_t)p->next_due_ms));
	}
	json_object_set_new(o, "name", json_string(str(ci->name)));
	json_object_set_new(o, "topic", json_string(str(c->topic)));
	json_object_set_new(o, "ordered", json_boolean(!c->shared));
	if (c->shared)
		json_object_set_new(o, "max_in_flight", json_integer(c->max_in_flight));
	json_object_set_new(o, "max_attempts", json_integer(c->max_deliveries));
	json_object_set_new(o, "schedule_ms", sched);
	json_object_set_new(o, "dead_letter_topic", json_string(str(c->dead_letter_topic)));
	json_object_set_new(o, "created_ms", json_integer(ci->created_ms));
	json_object_set_new(o, "partitions", parts);
	return o;
}

static void answer_list(struct http_req *r, const Sluice__ConsumerList *cl)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr && i < cl->n_consumers; i++) {
		json_t *w = webhook_json(cl->consumers[i]);
		if (w)
			json_array_append_new(arr, w);
	}
	http_respond_json(r, 200, json_pack("{s:o}", "webhooks", arr));
}

static void answer_ok(struct http_req *r)
{
	if (r->kind == HK_WEBHOOK_CREATE) {
		http_add_header(r, "Location", "/v1/webhooks/%s", r->consumer);
		http_respond_json(r, 201, json_pack("{s:s,s:s,s:s}", "name", r->consumer, "topic", r->topic, "secret",
		                                    r->secret));
		return;
	}
	json_t *o = json_pack("{s:s,s:s}", "name", r->consumer, "change", r->change ? r->change : "");
	if (r->change && strcmp(r->change, "rotated") == 0)
		json_object_set_new(o, "secret", json_string(r->secret));
	http_respond_json(r, 200, o);
}

void http_webhook_frame(struct http_req *r, const Sluice__Frame *f)
{
	if (f->body_case == SLUICE__FRAME__BODY_ERROR) {
		if (r->kind == HK_WEBHOOK_UPDATE && f->error->code == SLUICE__ERROR_CODE__INVALID_ARGUMENT)
			http_problem(r, 400, SL_EINVAL, "not a webhook, or the change leaves its settings invalid");
		else
			http_problem(r, 0, (int)f->error->code, f->error->message);
		return;
	}
	if (f->body_case == SLUICE__FRAME__BODY_OK && (r->kind == HK_WEBHOOK_CREATE || r->kind == HK_WEBHOOK_UPDATE)) {
		answer_ok(r);
	} else if (r->kind == HK_WEBHOOK_LIST && f->body_case == SLUICE__FRAME__BODY_CONSUMER_LIST) {
		answer_list(r, f->consumer_list);
	} else if (r->kind == HK_WEBHOOK && f->body_case == SLUICE__FRAME__BODY_CONSUMER_INFO) {
		json_t *w = webhook_json(f->consumer_info);
		if (w)
			http_respond_json(r, 200, w);
		else
			http_problem(r, 404, SL_ENOTFOUND, "a consumer of that name exists but is not a webhook");
	} else {
		http_problem(r, 500, SL_EINTERNAL, "unexpected answer from the native path");
	}
}
