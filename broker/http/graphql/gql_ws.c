/*
 * gql_ws.c: the graphql-transport-ws subprotocol (enisdenjo/graphql-ws,
 * PROTOCOL.md) on a WebSocket session at /v1/graphql (ws.h).
 *
 *   connection_init -> connection_ack; none within gql_ws_init_timeout_ms:
 *                      close 4408; a second one: close 4429
 *   ping -> pong (with the ping's payload); pong is ignored
 *   subscribe {id, payload: {query, variables, operationName}}:
 *                      before the ack: close 4401; an id in use: close 4409
 *     subscription  -> a native Subscribe; each delivered message is a
 *                      `next` with only the selected fields
 *     query/mutation -> executed once: `next`, then `complete`
 *     invalid GraphQL, or the native path refusing -> `error` [errors]
 *   complete {id}    -> the operation ends (native Unsubscribe)
 *   anything else, or not JSON -> close 4400
 *
 * Flow control is the session's output watermark: the native subscription
 * gets a large credit (topped up as it is used), and the WebSocket layer
 * pauses pushes at the log while the output is above the high watermark,
 * as for SSE (http_sse.c).
 *
 * An operation completed by the client while its native request is out is
 * kept, marked cancelled, until that answer comes back (a Subscribed is then
 * unsubscribed); its id is free for a new subscribe at once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <jansson.h>

#include "codec.h"
#include "err.h"
#include "fe_int.h"
#include "gql.h"
#include "ws.h"

#define GQL_WS_OPS_MAX 256            /* operations running on one session */
#define GQL_WS_CREDIT_TOPUP (1u << 31) /* messages delivered before the credit is topped up */

uint32_t gql_ws_init_timeout_ms = GQL_WS_INIT_TIMEOUT_MS;

struct gws_op {
	char id[GQL_WS_ID_BYTES_MAX + 1];
	struct gql_req *q;
	int subscription;
	int cancelled;               /* completed by the client: its id is free */
	uint64_t req_id;             /* native request out (0: none) */
	uint64_t sub_id;             /* native subscription, once Subscribed */
	uint64_t delivered;          /* since the last credit top-up */
	struct gws_op *next;
};

struct gws {
	struct ws_session *s;
	struct event *init_ev;
	int init_received;
	uint64_t next_id;
	struct gws_op *ops;
	uint32_t nops;
};

/* ---------- sending ---------- */

static void send_typed(struct ws_session *s, const char *type, const char *id, json_t *payload)
{
	json_t *m = json_pack("{s:s}", "type", type);

	if (m && id)
		json_object_set_new(m, "id", json_string(id));
	if (m && payload)
		json_object_set(m, "payload", payload);
	json_decref(payload);
	ws_send_json(s, m);
}

static void send_error(struct ws_session *s, const char *id, const char *msg, const char *code)
{
	send_typed(s, "error", id, json_pack("[o]", gql_error_json(msg, NULL, code)));
}

/* ---------- operations ---------- */

static struct gws_op *op_by_id(struct gws *g, const char *id)
{
	for (struct gws_op *o = g->ops; o; o = o->next)
		if (!o->cancelled && strcmp(o->id, id) == 0)
			return o;
	return NULL;
}

static struct gws_op *op_by_req(struct gws *g, uint64_t req_id)
{
	for (struct gws_op *o = g->ops; o; o = o->next)
		if (req_id && o->req_id == req_id)
			return o;
	return NULL;
}

static struct gws_op *op_by_sub(struct gws *g, uint64_t sub_id)
{
	for (struct gws_op *o = g->ops; o; o = o->next)
		if (o->sub_id && o->sub_id == sub_id)
			return o;
	return NULL;
}

static void op_free(struct gws *g, struct gws_op *op)
{
	for (struct gws_op **p = &g->ops; *p; p = &(*p)->next)
		if (*p == op) {
			*p = op->next;
			g->nops--;
			break;
		}
	gql_req_free(op->q);
	free(op);
}

/* Send f under a new request id remembered in *id. */
static int dispatch(struct gws *g, Sluice__Frame *f, uint64_t *id)
{
	f->id = ++g->next_id;
	if (id)
		*id = f->id;
	return ws_dispatch(g->s, f);
}

static void unsubscribe(struct gws *g, uint64_t sub_id)
{
	Sluice__Unsubscribe u = SLUICE__UNSUBSCRIBE__INIT;
	Sluice__Frame f = SLUICE__FRAME__INIT;

	u.subscription_id = sub_id;
	f.body_case = SLUICE__FRAME__BODY_UNSUBSCRIBE;
	f.unsubscribe = &u;
	dispatch(g, &f, NULL); /* its answer matches no operation and is dropped */
}

/* Query or mutation: the next root field's request, or the result. */
static void op_run(struct gws *g, struct gws_op *op)
{
	Sluice__Frame f;

	if (gql_exec_next(op->q, &f)) {
		if (dispatch(g, &f, &op->req_id) == SL_OK)
			return;
		send_error(g->s, op->id, "the node could not take the request", "UNAVAILABLE");
		op_free(g, op);
		return;
	}
	send_typed(g->s, "next", op->id, gql_exec_result(op->q));
	send_typed(g->s, "complete", op->id, NULL);
	op_free(g, op);
}

static void op_start(struct gws *g, const struct gql_ws_msg *m)
{
	struct gws_op *op;
	json_t *errors = NULL;
	Sluice__Frame f;

	if (g->nops >= GQL_WS_OPS_MAX) {
		send_error(g->s, m->id, "too many operations on this connection", "TOO_MANY");
		return;
	}
	if (!(op = calloc(1, sizeof(*op)))) {
		ws_close(g->s, WS_CLOSE_INTERNAL, "out of memory");
		return;
	}
	memcpy(op->id, m->id, sizeof(op->id));
	if (gql_prepare(m->query, m->query_len, m->operation_name, m->variables, &op->q, &errors) < 0) {
		send_typed(g->s, "error", m->id, errors);
		free(op);
		return;
	}
	op->next = g->ops;
	g->ops = op;
	g->nops++;
	if (gql_req_kind(op->q) != GQL_SUBSCRIPTION) {
		op_run(g, op);
		return;
	}
	op->subscription = 1;
	if (gql_sub_frame(op->q, &f, &errors) < 0) {
		send_typed(g->s, "error", op->id, errors);
		op_free(g, op);
	} else if (dispatch(g, &f, &op->req_id) != SL_OK) {
		send_error(g->s, op->id, "the node could not take the request", "UNAVAILABLE");
		op_free(g, op);
	}
}

static void op_complete(struct gws *g, const char *id)
{
	struct gws_op *op = op_by_id(g, id);

	if (!op)
		return; /* completed already, or never started: nothing to do */
	if (op->sub_id) {
		unsubscribe(g, op->sub_id);
		op_free(g, op);
	} else if (op->req_id) {
		op->cancelled = 1; /* freed when its answer comes */
	} else {
		op_free(g, op);
	}
}

/* ---------- the subprotocol ---------- */

static void init_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gws *g = arg;

	(void)fd;
	(void)what;
	if (!g->init_received)
		ws_close(g->s, 4408, "Connection initialisation timeout");
}

static int gws_open(struct ws_session *s)
{
	struct gws *g = calloc(1, sizeof(*g));
	struct fe_conn *c = ws_conn(s);
	struct timeval tv = {gql_ws_init_timeout_ms / 1000, (gql_ws_init_timeout_ms % 1000) * 1000};

	if (!g)
		return SL_ENOMEM;
	g->s = s;
	if (c && c->fe && c->fe->base) {
		if (!(g->init_ev = evtimer_new(c->fe->base, init_timeout_cb, g))) {
			free(g);
			return SL_ENOMEM;
		}
		evtimer_add(g->init_ev, &tv);
	}
	ws_set_state(s, g);
	return SL_OK;
}

static void on_init(struct gws *g)
{
	if (g->init_received) {
		ws_close(g->s, 4429, "Too many initialisation requests");
		return;
	}
	g->init_received = 1;
	if (g->init_ev)
		evtimer_del(g->init_ev);
	send_typed(g->s, "connection_ack", NULL, NULL);
}

static void on_subscribe(struct gws *g, const struct gql_ws_msg *m)
{
	char reason[124];

	if (!g->init_received) {
		ws_close(g->s, 4401, "Unauthorized");
		return;
	}
	if (op_by_id(g, m->id)) {
		snprintf(reason, sizeof(reason), "Subscriber for %.90s already exists", m->id);
		ws_close(g->s, 4409, reason);
		return;
	}
	op_start(g, m);
}

static void gws_message(struct ws_session *s, enum ws_msg_type type, const uint8_t *p, size_t n)
{
	struct gws *g = ws_state(s);
	struct gql_ws_msg m;
	const char *why = NULL;

	if (type != WS_TEXT) {
		ws_close(s, 4400, "Invalid message: binary messages are not part of graphql-transport-ws");
		return;
	}
	if (gql_ws_decode(p, n, &m, &why) < 0) {
		ws_close(s, 4400, why);
		return;
	}
	switch (m.type) {
	case GQL_WS_CONNECTION_INIT:
		on_init(g);
		break;
	case GQL_WS_PING:
		send_typed(s, "pong", NULL, json_incref(m.payload));
		break;
	case GQL_WS_PONG:
		break;
	case GQL_WS_SUBSCRIBE:
		on_subscribe(g, &m);
		break;
	case GQL_WS_COMPLETE:
		op_complete(g, m.id);
		break;
	default:
		ws_close(s, 4400, "Invalid message: a server message type sent by the client");
		break;
	}
	gql_ws_msg_clear(&m);
}

/* Pushed messages of a subscription: one `next` each. */
static void on_delivery(struct gws *g, const Sluice__Delivery *d)
{
	struct gws_op *op = op_by_sub(g, d->subscription_id);

	if (!op)
		return;
	for (size_t i = 0; i < d->n_messages; i++)
		send_typed(g->s, "next", op->id, gql_sub_message(op->q, d->messages[i]));
	op->delivered += d->n_messages;
	if (op->delivered >= GQL_WS_CREDIT_TOPUP) {
		Sluice__Credit c = SLUICE__CREDIT__INIT;
		Sluice__Frame f = SLUICE__FRAME__INIT;
		c.subscription_id = op->sub_id;
		c.credit = (uint32_t)op->delivered;
		f.body_case = SLUICE__FRAME__BODY_CREDIT;
		f.credit = &c;
		dispatch(g, &f, NULL);
		op->delivered = 0;
	}
	if (d->end_error) {
		/* the topic was deleted, a storage fault, or its identity may no longer read it
		 * (fe_auth_streams.c): the operation ends with an error */
		send_error(g->s, op->id, d->end_message && *d->end_message ? d->end_message : "the subscription ended",
		           codec_error_name((int)d->end_error));
		op_free(g, op);
	}
}

/* The answer to a subscription's Subscribe. */
static void on_sub_answer(struct gws *g, struct gws_op *op, const Sluice__Frame *f)
{
	if (f->body_case == SLUICE__FRAME__BODY_ERROR) {
		if (!op->cancelled)
			send_typed(g->s, "error", op->id, gql_native_errors(op->q, f->error));
		op_free(g, op);
		return;
	}
	if (f->body_case != SLUICE__FRAME__BODY_SUBSCRIBED)
		return;
	op->sub_id = f->subscribed->subscription_id;
	if (op->cancelled) {
		unsubscribe(g, op->sub_id);
		op_free(g, op);
	}
}

static void gws_frame(struct ws_session *s, const Sluice__Frame *f)
{
	struct gws *g = ws_state(s);
	struct gws_op *op;

	if (f->body_case == SLUICE__FRAME__BODY_DELIVERY) {
		on_delivery(g, f->delivery);
		return;
	}
	if (!(op = op_by_req(g, f->id)))
		return;
	op->req_id = 0;
	if (op->subscription) {
		on_sub_answer(g, op, f);
	} else if (op->cancelled) {
		op_free(g, op);
	} else {
		gql_exec_answer(op->q, f);
		op_run(g, op);
	}
}

static void gws_close(struct ws_session *s)
{
	struct gws *g = ws_state(s);

	if (!g)
		return;
	while (g->ops)
		op_free(g, g->ops);
	if (g->init_ev)
		event_free(g->init_ev);
	free(g);
	ws_set_state(s, NULL);
}

const struct ws_subproto gql_ws_subproto = {
    .name = "graphql-transport-ws",
    .path = "/v1/graphql",
    .open = gws_open,
    .message = gws_message,
    .frame = gws_frame,
    .writable = NULL,
    .close = gws_close,
};
