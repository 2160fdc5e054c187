/*
 * lw_callback.c: a publish's commit callback (RM_CALLBACK), applied at
 * commit on every node alike (docs/webhooks.md#callbacks).
 *
 * The frontend pushes the callback right after its publish into the same
 * ring, so the publish was resolved first: in this entry or an earlier one.
 * Applying the callback looks the publish's dedup entry up (producer id,
 * topic, partition space, sequence): found, the publish is committed (this
 * entry commits, and it is at or after the publish's); not found, it was not
 * stored (refused, or lost with a leader before it reached the log) and
 * never will be under that key within the dedup window. Either outcome is
 * appended to the topic sluice.callbacks as one message: key the operation
 * id, headers sluice-callback-url and sluice-event-type, payload the
 * operation's JSON (as GET /v1/operations/{id} answers it). The webhook
 * sluice.callbacks (settings {"callback": true}: each message names its
 * own URL) delivers it, signed, retried, dead-lettered like any webhook.
 *
 * The topic and the webhook are made on first use, here, from what the
 * record carries (the secret comes from the frontend: applying must not
 * draw random numbers, every node must make the same webhook). A callback
 * appends when it applies, so the leader ends its entry after it (a barrier,
 * lw_cluster.c), as for topic changes and dead-lettering pulls.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "err.h"
#include "log.h"
#include "lw_int.h"
#include "utf8.h"
#include "wh_config.h"
#include "wh_create.h"

#define CB_PARTITIONS 1
#define CB_MAX_IN_FLIGHT 64 /* per partition: one slow endpoint does not hold back the others */
#define CB_EVENT_COMMITTED "operation.committed"
#define CB_EVENT_FAILED "operation.failed"

/* Printable ASCII without spaces: URLs (wh_url.h refuses the rest) and operation ids. */
static int visible(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] <= ' ' || s[i] > '~')
			return 0;
	return 1;
}

struct cb_view {
	struct rm_callback m;
	const char *topic, *url, *id, *secret;
};

static int cb_parse(const struct lw_req *rq, struct cb_view *v)
{
	if (rq->len < sizeof(v->m))
		return SL_EMALFORMED;
	memcpy(&v->m, rq->p, sizeof(v->m));
	const struct rm_callback *m = &v->m;
	if (sizeof(*m) + (size_t)m->topic_len + m->url_len + m->id_len + m->secret_len != rq->len)
		return SL_EMALFORMED;
	if (!m->topic_len || m->topic_len > RM_TOPIC_NAME_MAX || !m->url_len || m->url_len > RM_CALLBACK_URL_MAX ||
	    !m->id_len || m->id_len > RM_CALLBACK_ID_MAX || m->secret_len > RM_CALLBACK_SECRET_MAX)
		return SL_EINVAL;
	v->topic = (const char *)rq->p + sizeof(*m);
	v->url = v->topic + m->topic_len;
	v->id = v->url + m->url_len;
	v->secret = v->id + m->id_len;
	/* what goes into JSON must be text: the frontend checked it, this keeps the log safe from any other writer */
	if (!utf8_valid((const uint8_t *)v->topic, m->topic_len) || !visible(v->url, m->url_len) ||
	    !visible(v->id, m->id_len) || !visible(v->secret, m->secret_len))
		return SL_EINVAL;
	return SL_OK;
}

/* The consumer record of the webhook sluice.callbacks (malloc'd). */
static uint8_t *webhook_record(const struct cb_view *v, uint32_t *len)
{
	char secret[RM_CALLBACK_SECRET_MAX + 1], sec[RM_CALLBACK_SECRET_MAX + 1], why[160], *settings = NULL;
	struct wh_create c;
	memcpy(secret, v->secret, v->m.secret_len);
	secret[v->m.secret_len] = 0;
	json_t *d = json_pack("{s:s,s:s,s:b,s:s,s:s,s:i}", "topic", RM_CALLBACK_TOPIC, "name", RM_CALLBACK_TOPIC,
			      "callback", 1, "secret", secret, "from", "earliest", "max_in_flight", CB_MAX_IN_FLIGHT);
	char *desc = d ? json_dumps(d, JSON_COMPACT) : NULL;
	json_decref(d);
	int rc = desc ? wh_create_decode(desc, strlen(desc), &c, &settings, sec, sizeof(sec), why, sizeof(why))
		      : SL_ENOMEM;
	free(desc);
	struct wh_config *cfg = rc == SL_OK ? malloc(sizeof(*cfg)) : NULL;
	if (rc == SL_OK)
		rc = cfg ? wh_config_parse(settings, strlen(settings), cfg, why, sizeof(why)) : SL_ENOMEM;
	free(cfg);
	if (rc) {
		free(settings);
		log_error("callbacks: webhook %s not made (%s)", RM_CALLBACK_TOPIC, rc == SL_ENOMEM ? "out of memory" : why);
		return NULL;
	}
	struct rm_consumer_create m = {0};
	size_t nl = strlen(RM_CALLBACK_TOPIC), sl = strlen(settings);
	m.start = RM_START_EARLIEST;
	m.shared = 1;
	m.max_in_flight = c.max_in_flight;
	m.max_deliveries = c.max_deliveries;
	m.ack_timeout_ms = c.ack_timeout_ms;
	m.nschedule = c.nschedule;
	memcpy(m.schedule_ms, c.schedule_ms, c.nschedule * sizeof(uint32_t));
	m.name_len = m.topic_len = (uint16_t)nl;
	m.webhook_len = (uint32_t)sl;
	*len = (uint32_t)(sizeof(m) + 2 * nl + sl);
	uint8_t *rec = malloc(*len);
	if (rec) {
		memcpy(rec, &m, sizeof(m));
		memcpy(rec + sizeof(m), RM_CALLBACK_TOPIC, nl);
		memcpy(rec + sizeof(m) + nl, RM_CALLBACK_TOPIC, nl);
		memcpy(rec + sizeof(m) + 2 * nl, settings, sl);
	}
	free(settings);
	return rec;
}

/* The topic and webhook sluice.callbacks, made if missing; NULL if they cannot be. */
static const struct lw_topic *cb_target(struct lw *w, const struct cb_view *v)
{
	int made = 0;
	const struct lw_topic *t = lw_topic_ensure(w, RM_CALLBACK_TOPIC, CB_PARTITIONS, &made);
	if (!t || !made)
		return t;
	uint32_t len = 0;
	uint8_t *rec = webhook_record(v, &len);
	if (!rec)
		return t; /* the messages wait in the topic for a webhook an operator makes */
	struct lw_req rq = {0, 0, 0, RM_CONSUMER_CREATE, rec, len};
	struct lw_answers tmp = {0};
	int rc = lw_record_apply(w, &rq, &tmp);
	if (rc == SL_OK && tmp.n && tmp.v[0].a.err)
		log_error("callbacks: webhook %s not made (%s)", RM_CALLBACK_TOPIC, sl_strerror((int)tmp.v[0].a.err));
	else if (rc == SL_OK)
		log_info("callbacks: topic and webhook %s made", RM_CALLBACK_TOPIC);
	free(tmp.v);
	free(rec);
	return rc == SL_OK ? t : NULL;
}

/* The operation's JSON, as GET /v1/operations/{id} answers it (malloc'd). */
static char *outcome_json(struct lw *w, const struct cb_view *v, int *committed)
{
	const struct lw_topic *t = lw_topic_by_name(w, v->topic, v->m.topic_len);
	struct store_dedup d;
	uint64_t off = 0;
	int rc = t ? store_dedup_get(w->txn, v->m.producer_id, t->meta.topic_id, v->m.space, v->m.sequence, &d, &off)
		   : SL_ENOTOPIC;
	*committed = rc == SL_OK;
	json_t *j = json_pack("{s:s%,s:s,s:s%,s:n,s:n,s:n,s:i,s:I,s:I}", "id", v->id, (size_t)v->m.id_len, "status",
			      *committed ? "committed" : "failed", "topic", v->topic, (size_t)v->m.topic_len,
			      "partition", "offset", "error", "count", (int)v->m.count, "created",
			      (json_int_t)v->m.created_ms, "updated", (json_int_t)(*committed ? d.ts_ms : w->batch_ts));
	if (j && *committed) {
		json_object_set_new(j, "partition", json_integer(d.partition));
		json_object_set_new(j, "offset", json_integer((json_int_t)off));
	} else if (j) {
		json_object_set_new(j, "error", json_string(rc == SL_ENOTOPIC ? "topic does not exist"
										 : "the publish was not stored"));
	}
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (rc != SL_OK && rc != SL_ENOTFOUND && rc != SL_ENOTOPIC)
		log_warn("callbacks: operation %.*s looked up with %s: reported failed", (int)v->m.id_len, v->id,
			 sl_strerror(rc));
	return s;
}

/* The RM_PUBLISH record of the callback message (malloc'd). */
static uint8_t *message_record(const struct cb_view *v, const char *body, int committed, uint32_t *len)
{
	const char *event = committed ? CB_EVENT_COMMITTED : CB_EVENT_FAILED;
	struct slice kv[2][2] = {
	    {slice_cstr("sluice-callback-url"), slice_make(v->url, v->m.url_len)},
	    {slice_cstr("sluice-event-type"), slice_cstr(event)},
	};
	size_t tl = strlen(RM_CALLBACK_TOPIC), hl = 0, bl = strlen(body);
	for (int i = 0; i < 2; i++)
		hl += hdrs_entry_bytes(kv[i][0].len, kv[i][1].len);
	struct rm_publish h = {0};
	h.partition = 0;
	h.key_len = v->m.id_len;
	h.headers_len = (uint32_t)hl;
	h.payload_len = (uint32_t)bl;
	h.topic_len = (uint16_t)tl;
	*len = (uint32_t)(sizeof(h) + tl + v->m.id_len + hl + bl);
	uint8_t *rec = malloc(*len), *q = rec;
	if (!rec)
		return NULL;
	memcpy(q, &h, sizeof(h));
	q += sizeof(h);
	memcpy(q, RM_CALLBACK_TOPIC, tl);
	q += tl;
	memcpy(q, v->id, v->m.id_len);
	q += v->m.id_len;
	for (int i = 0; i < 2; i++)
		q += hdrs_put(q, kv[i][0], kv[i][1]);
	memcpy(q, body, bl);
	return rec;
}

int lw_callback_apply(struct lw *w, const struct lw_req *rq, struct lw_answers *out)
{
	struct cb_view v;
	int rc = cb_parse(rq, &v), committed = 0;
	if (rc)
		return lw_answer_add(w, rq, out, (uint32_t)rc, 0, 0, 0, 0, 0, 0, 0);
	if (!cb_target(w, &v)) {
		log_error("callbacks: topic %s cannot be made; the callback of %.*s is dropped", RM_CALLBACK_TOPIC,
			  (int)v.m.id_len, v.id);
		return lw_answer_add(w, rq, out, SL_EINTERNAL, 0, 0, 0, 0, 0, 0, 0);
	}
	char *body = outcome_json(w, &v, &committed);
	uint32_t len = 0;
	uint8_t *rec = body ? message_record(&v, body, committed, &len) : NULL;
	free(body);
	if (!rec)
		return SL_ENOMEM;
	rc = lw_append(w, rec, len);
	free(rec);
	if (rc)
		return rc;
	return lw_answer_add(w, rq, out, SL_OK, 0, 0, 0, 0, 0, 0, 0);
}
