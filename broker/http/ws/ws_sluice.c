/*
 * ws_sluice.c: the WebSocket subprotocols of /v1/ws (docs/websocket.md).
 *
 * sluice.v1.proto: each binary message is one native Frame (its protobuf
 * bytes, without the TCP protocol's 4-byte length), answered the same way;
 * Hello comes first, as on TCP. The frontend's native path does the rest.
 *
 * sluice.v1.json: text messages, each a JSON object naming its `op`:
 *   publish {id, topic, payload | payload+payload_encoding:"base64", key,
 *            headers {name: value}, partition, producer_id, sequence}
 *           -> ack {id, topic, partition, offset, timestamp, duplicate}
 *   subscribe {id, topic, from, partitions, group, credit}
 *           -> subscribed {id, sub, topic, partitions: [{partition, next}]},
 *              then message {sub, topic, partition, offset, timestamp, key,
 *              headers, payload[, payload_encoding]} pushes
 *   credit {sub, n}            (no answer)
 *   unsubscribe {id, sub}      -> ok {id}
 *   commit {id, group, topic, offsets: [{partition, offset}]} -> ok {id}
 *   any failure                -> error {id, code, message}; a subscription
 *                                 the server ends: error {sub, code, message}
 * `from`: "earliest", "latest", an offset, {"time": unix_ms}, or
 * {"positions": {"PARTITION": NEXT, ...}} (the next offset of each
 * partition, as a client computes it from the last message it saw), so a
 * client resumes exactly where it was, on any node. Without `credit` the
 * subscription is limited by the output watermark only.
 *
 * Each JSON request becomes native frames with ids of this session's own
 * (jreq); their answers come back to json_frame and are rendered against
 * the request. The JSON request decoder (ws_json_decode) is pure and fuzzed.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "codec.h"
#include "config.h"
#include "err.h"
#include "fe_int.h"
#include "http_int.h"
#include "ws_int.h"
#include "ws_json.h"

/* ---------- sluice.v1.proto ---------- */

static int proto_open(struct ws_session *s)
{
	ws_conn(s)->handshaken = 0; /* Hello first, as on TCP */
	return SL_OK;
}

static void proto_message(struct ws_session *s, enum ws_msg_type type, const uint8_t *p, size_t n)
{
	Sluice__Frame *f = NULL;

	if (type != WS_BINARY) {
		ws_close(s, WS_CLOSE_UNSUPPORTED, "sluice.v1.proto takes binary messages");
		return;
	}
	if (n > ws_conn(s)->fe->cfg->frame_bytes_max) {
		ws_close(s, WS_CLOSE_TOO_BIG, "frame larger than frame_bytes_max");
		return;
	}
	if (codec_frame_decode(p, n, &f) != SL_OK) {
		ws_close(s, WS_CLOSE_INVALID_DATA, "not a sluice Frame");
		return;
	}
	if (!fe_conn_dispatch(ws_conn(s), f))
		codec_frame_free(f);
}

static void proto_frame(struct ws_session *s, const Sluice__Frame *f)
{
	size_t n = codec_frame_size(f);
	struct evbuffer *b = evbuffer_new();
	struct evbuffer_iovec v;

	if (!b || evbuffer_reserve_space(b, n, &v, 1) < 1 || v.iov_len < n) {
		if (b)
			evbuffer_free(b);
		ws_close(s, WS_CLOSE_INTERNAL, "out of memory");
		return;
	}
	v.iov_len = codec_frame_encode(f, v.iov_base);
	evbuffer_commit_space(b, &v, 1);
	evbuffer_drain(b, 4); /* the message is the frame; WebSocket carries its length */
	ws_send_buf(s, WS_BINARY, b);
	evbuffer_free(b);
	if (f->body_case == SLUICE__FRAME__BODY_ERROR && f->id == 0)
		ws_close(s, WS_CLOSE_POLICY, f->error->message); /* the native path ends the connection */
}

const struct ws_subproto ws_sluice_proto = {
    .name = "sluice.v1.proto",
    .path = "/v1/ws",
    .open = proto_open,
    .message = proto_message,
    .frame = proto_frame,
};

/* ---------- sluice.v1.json ---------- */

#define JREQ_MAX 65536 /* JSON requests awaiting answers per session */

/* A JSON request with native frames out. */
struct jreq {
	struct jreq *next;
	uint64_t first, last;          /* native ids [first, last] */
	uint32_t waiting;              /* answers still to come */
	enum ws_json_op op;
	json_t *id;                    /* the client's id, echoed */
	char topic[256];
	struct ws_json_start start;    /* subscribe: positions to seek to */
	int failed;
	int sending;                   /* json_send is dispatching: answers may come at once, q stays */
	size_t count;                  /* ack, nack, in_progress: messages in it */
};

struct jsess {
	struct ws_session *s;
	uint64_t next_id;
	struct jreq *reqs;
	uint32_t nreqs;
};

static void send_error(struct ws_session *s, const char *key, json_t *id, int err, const char *msg)
{
	json_t *j = json_pack("{s:s,s:O?,s:s,s:s}", "op", "error", key, id, "code",
	                      codec_error_name(sl_err_is_wire(err) ? err : SL_EINTERNAL), "message", msg ? msg : "");
	ws_send_json(s, j);
}

static struct jreq *jreq_find(struct jsess *js, uint64_t id, struct jreq ***link)
{
	for (struct jreq **pp = &js->reqs; *pp; pp = &(*pp)->next)
		if (id >= (*pp)->first && id <= (*pp)->last) {
			*link = pp;
			return *pp;
		}
	return NULL;
}

static void jreq_free(struct jreq *q)
{
	json_decref(q->id);
	free(q->start.parts);
	free(q->start.next);
	free(q);
}

static void jreq_done(struct jsess *js, struct jreq **link)
{
	struct jreq *q = *link;

	*link = q->next;
	js->nreqs--;
	jreq_free(q);
}

static int json_open(struct ws_session *s)
{
	struct jsess *js = calloc(1, sizeof(*js));

	if (!js)
		return SL_ENOMEM;
	js->s = s;
	ws_set_state(s, js);
	return SL_OK;
}

static void json_close(struct ws_session *s)
{
	struct jsess *js = ws_state(s);
	struct jreq *q;

	if (!js)
		return;
	while ((q = js->reqs)) {
		js->reqs = q->next;
		jreq_free(q);
	}
	free(js);
	ws_set_state(s, NULL);
}

/* Send the native frames of a decoded request; 0 or an sl_err. */
static int json_send(struct jsess *js, struct ws_json_req *jr, struct jreq *q)
{
	Sluice__Frame f = SLUICE__FRAME__INIT;

	q->first = js->next_id + 1;
	q->last = q->first;
	switch (jr->op) {
	case WS_JSON_PUBLISH:
		f.body_case = SLUICE__FRAME__BODY_PUBLISH;
		f.publish = &jr->publish;
		break;
	case WS_JSON_SUBSCRIBE:
		f.body_case = SLUICE__FRAME__BODY_SUBSCRIBE;
		f.subscribe = &jr->subscribe;
		break;
	case WS_JSON_COMMIT:
		for (size_t i = 0; i < jr->ncommits; i++) {
			Sluice__Frame c = SLUICE__FRAME__INIT;
			c.body_case = SLUICE__FRAME__BODY_COMMIT_OFFSET;
			c.commit_offset = &jr->commits[i];
			c.id = ++js->next_id;
			q->last = c.id;
			q->waiting++; /* before: the answer may come inside ws_dispatch */
			int rc = ws_dispatch(js->s, &c);
			if (rc != SL_OK) {
				q->waiting--;
				return rc;
			}
		}
		return SL_OK;
	case WS_JSON_PULL:
		f.body_case = SLUICE__FRAME__BODY_PULL;
		f.pull = &jr->pull;
		break;
	case WS_JSON_SETTLE:
		f.body_case = SLUICE__FRAME__BODY_ACK_MESSAGES;
		f.ack_messages = &jr->ackm;
		q->count = jr->ackm.n_items;
		break;
	default:
		return SL_EINVAL;
	}
	f.id = ++js->next_id;
	q->last = f.id;
	q->waiting = 1; /* before: the answer may come inside ws_dispatch */
	int rc = ws_dispatch(js->s, &f);
	if (rc != SL_OK)
		q->waiting = 0;
	return rc;
}

static void json_message(struct ws_session *s, enum ws_msg_type type, const uint8_t *p, size_t n)
{
	struct jsess *js = ws_state(s);
	struct ws_json_req jr;
	const char *why = NULL;
	struct jreq *q;
	int rc;

	if (type != WS_TEXT) {
		send_error(s, "id", NULL, SL_EMALFORMED, "sluice.v1.json takes text messages");
		return;
	}
	rc = ws_json_decode(p, n, &jr, &why);
	if (rc != SL_OK) {
		send_error(s, "id", jr.id, rc, why);
		ws_json_req_free(&jr);
		return;
	}
	switch (jr.op) {
	case WS_JSON_CREDIT: {
		Sluice__Frame f = SLUICE__FRAME__INIT;
		f.body_case = SLUICE__FRAME__BODY_CREDIT;
		f.credit = &jr.credit;
		ws_dispatch(s, &f); /* id 0: never answered */
		ws_json_req_free(&jr);
		return;
	}
	case WS_JSON_UNSUBSCRIBE: {
		struct fe_sub *sub = fe_sub_find(ws_conn(s), jr.unsubscribe.subscription_id);
		if (!sub) {
			send_error(s, "id", jr.id, SL_ENOSUB, "no such subscription on this connection");
		} else {
			Sluice__Frame f = SLUICE__FRAME__INIT;
			f.body_case = SLUICE__FRAME__BODY_UNSUBSCRIBE;
			f.unsubscribe = &jr.unsubscribe;
			f.id = ++js->next_id; /* answered only on failure, which cannot happen now */
			ws_dispatch(s, &f);
			ws_send_json(s, json_pack("{s:s,s:O?}", "op", "ok", "id", jr.id));
		}
		ws_json_req_free(&jr);
		return;
	}
	default:
		break;
	}
	if (js->nreqs >= JREQ_MAX) {
		send_error(s, "id", jr.id, SL_ETOOMANY, "too many requests awaiting answers on this connection");
		ws_json_req_free(&jr);
		return;
	}
	if (!(q = calloc(1, sizeof(*q)))) {
		send_error(s, "id", jr.id, SL_ENOMEM, "out of memory");
		ws_json_req_free(&jr);
		return;
	}
	q->op = jr.op;
	q->id = json_incref(jr.id);
	snprintf(q->topic, sizeof(q->topic), "%s", jr.topic);
	q->start = jr.start; /* moved */
	memset(&jr.start, 0, sizeof(jr.start));
	q->next = js->reqs;
	js->reqs = q;
	js->nreqs++;
	if (jr.op == WS_JSON_SUBSCRIBE && !jr.has_credit)
		jr.subscribe.credit = 1; /* raised to unlimited when Subscribed comes */
	q->sending = 1;
	rc = json_send(js, &jr, q);
	q->sending = 0;
	ws_json_req_free(&jr);
	if (rc != SL_OK && !q->failed) {
		q->failed = 1;
		send_error(s, "id", q->id, rc, "could not hand the request to the log");
	}
	if (q->waiting == 0) { /* answered already, or no answer will come */
		struct jreq **link;
		if (jreq_find(js, q->first, &link) == q)
			jreq_done(js, link);
	}
}

/* Rendered pushes, shared by every subscriber that gets the same message in
 * one delivery pass (fe->run_pass): a commit fanned out to N WebSocket
 * subscribers is rendered to JSON once, not N times. Keyed by topic id,
 * partition and offset (a stored message never changes; a topic deleted and
 * made again has a new id); an entry of an earlier pass is stale. */
#define PUSH_CACHE 4096

struct push_ent {
	uint64_t pass;
	uint32_t topic_id, partition;
	uint64_t offset;
	char *json;                    /* {"topic":...}: the message without op and sub */
	size_t len;
};

static struct push_ent push_cache[PUSH_CACHE];

static const struct push_ent *push_render(struct fe *fe, uint32_t topic_id, const Sluice__Message *m)
{
	size_t h = (size_t)((m->offset * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)topic_id << 20) ^ m->partition) % PUSH_CACHE;
	struct push_ent *e = &push_cache[h];
	json_t *o;

	if (e->json && e->pass == fe->run_pass && e->topic_id == topic_id && e->partition == m->partition &&
	    e->offset == m->offset)
		return e;
	free(e->json);
	e->json = NULL;
	if (!(o = http_message_json(m)))
		return NULL;
	e->json = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!e->json || e->json[0] != '{')
		return NULL;
	e->len = strlen(e->json);
	e->pass = fe->run_pass;
	e->topic_id = topic_id;
	e->partition = m->partition;
	e->offset = m->offset;
	return e;
}

/* A pushed message: {"op":"message","sub":N, then the fields of the HTTP
 * API's JSON messages (http_message_json). */
static void json_push(struct ws_session *s, uint64_t sub, uint32_t topic_id, const Sluice__Message *m)
{
	const struct push_ent *e = push_render(ws_conn(s)->fe, topic_id, m);
	struct evbuffer *b = evbuffer_new();

	if (!e || !b) {
		if (b)
			evbuffer_free(b);
		ws_close(s, WS_CLOSE_INTERNAL, "out of memory");
		return;
	}
	evbuffer_add_printf(b, "{\"op\":\"message\",\"sub\":%llu%s", (unsigned long long)sub, e->len > 2 ? "," : "");
	evbuffer_add(b, e->json + 1, e->len - 1);
	ws_send_buf(s, WS_TEXT, b);
	evbuffer_free(b);
}

static void on_subscribed(struct jsess *js, struct jreq *q, const Sluice__Subscribed *sd)
{
	struct fe_sub *sub = fe_sub_find(ws_conn(js->s), sd->subscription_id);
	json_t *parts = json_array();

	for (size_t i = 0; i < sd->n_positions; i++) {
		uint32_t p = sd->positions[i]->partition;
		uint64_t next = sd->positions[i]->offset;
		for (size_t k = 0; k < q->start.n; k++) {
			/* resume exactly where the client was; below what retention
			 * kept, the first stored offset (the messages' offsets show it) */
			if (q->start.parts[k] == p && q->start.next[k] > next) {
				next = q->start.next[k];
				if (sub)
					fe_sub_seek(sub, p, next);
			}
		}
		json_array_append_new(parts, json_pack("{s:i,s:I}", "partition", (int)p, "next", (json_int_t)next));
	}
	if (sub && q->start.unlimited)
		sub->credit = UINT64_MAX / 2; /* flow control is the output watermark */
	ws_send_json(js->s, json_pack("{s:s,s:O?,s:I,s:s,s:o}", "op", "subscribed", "id", q->id, "sub",
	                           (json_int_t)sd->subscription_id, "topic", q->topic, "partitions", parts));
}

/* A pull's answer: {"op":"pulled","id":..,"messages":[the HTTP API's
 * message objects, each with "attempt"]}. */
static void send_pulled(struct ws_session *s, const struct jreq *q, const Sluice__PullResult *pr)
{
	json_t *arr = json_array();
	for (size_t i = 0; arr && i < pr->n_messages; i++) {
		json_t *o = pr->messages[i]->message ? http_message_json(pr->messages[i]->message) : NULL;
		if (!o)
			continue;
		json_object_set_new(o, "attempt", json_integer(pr->messages[i]->attempt));
		json_array_append_new(arr, o);
	}
	ws_send_json(s, json_pack("{s:s,s:O?,s:o}", "op", "pulled", "id", q->id, "messages", arr));
}

static void json_frame(struct ws_session *s, const Sluice__Frame *f)
{
	struct jsess *js = ws_state(s);
	struct jreq **link, *q;

	if (f->body_case == SLUICE__FRAME__BODY_DELIVERY) {
		const Sluice__Delivery *d = f->delivery;
		const struct fe_sub *sub = d->n_messages ? fe_sub_find(ws_conn(s), d->subscription_id) : NULL;
		for (size_t i = 0; sub && i < d->n_messages; i++)
			json_push(s, d->subscription_id, sub->topic_id, d->messages[i]);
		if (d->end_error) {
			json_t *j = json_pack("{s:s,s:I,s:s,s:s}", "op", "error", "sub", (json_int_t)d->subscription_id,
			                      "code", codec_error_name((int)d->end_error), "message", d->end_message ? d->end_message : "");
			ws_send_json(s, j);
		}
		return;
	}
	if (f->id == 0) {
		if (f->body_case == SLUICE__FRAME__BODY_ERROR) {
			send_error(s, "id", NULL, (int)f->error->code, f->error->message);
			ws_close(s, WS_CLOSE_POLICY, f->error->message);
		}
		return;
	}
	if (!(q = jreq_find(js, f->id, &link)))
		return; /* an unsubscribe's or a cancelled request's */
	if (q->waiting)
		q->waiting--;
	if (f->body_case == SLUICE__FRAME__BODY_ERROR) {
		if (!q->failed)
			send_error(s, "id", q->id, (int)f->error->code, f->error->message);
		q->failed = 1;
	} else if (!q->failed) {
		switch (f->body_case) {
		case SLUICE__FRAME__BODY_PUBLISH_ACK: {
			const Sluice__PublishAck *a = f->publish_ack;
			ws_send_json(s, json_pack("{s:s,s:O?,s:s,s:i,s:I,s:I,s:b}", "op", "ack", "id", q->id, "topic", q->topic,
			                       "partition", (int)a->partition, "offset", (json_int_t)a->offset, "timestamp",
			                       (json_int_t)a->timestamp_ms, "duplicate", a->duplicate));
			break;
		}
		case SLUICE__FRAME__BODY_SUBSCRIBED:
			on_subscribed(js, q, f->subscribed);
			break;
		case SLUICE__FRAME__BODY_PULL_RESULT:
			send_pulled(s, q, f->pull_result);
			break;
		case SLUICE__FRAME__BODY_OK:
			if (q->waiting == 0 && q->op == WS_JSON_SETTLE)
				ws_send_json(s, json_pack("{s:s,s:O?,s:I}", "op", "ok", "id", q->id, "count", (json_int_t)q->count));
			else if (q->waiting == 0)
				ws_send_json(s, json_pack("{s:s,s:O?}", "op", "ok", "id", q->id));
			break;
		default:
			break;
		}
	}
	if (q->waiting == 0 && !q->sending)
		jreq_done(js, link);
}

const struct ws_subproto ws_sluice_json = {
    .name = "sluice.v1.json",
    .path = "/v1/ws",
    .open = json_open,
    .message = json_message,
    .frame = json_frame,
    .close = json_close,
};
