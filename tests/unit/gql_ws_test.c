/*
 * gql_ws_test.c: the graphql-transport-ws state machine (broker/http/graphql/gql_ws.c)
 * on a fake WebSocket layer: the ws.h functions are defined here, record
 * what the subprotocol sends, closes and dispatches, and the test answers
 * the dispatched native frames itself (Subscribed, Delivery, TopicList,
 * Error), as the frontend would.
 */
#include <criterion/criterion.h>
#include <event2/event.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "fe_int.h"
#include "gql.h"
#include "ws.h"

#define SENT_MAX 64
#define DISPATCHED_MAX 16

struct ws_session {
	void *state;
	struct fe fe;
	struct fe_conn conn;
	json_t *sent[SENT_MAX];
	size_t nsent, nread;
	int close_code;
	char close_reason[128];
	struct {
		uint64_t id;
		Sluice__Frame__BodyCase body;
		char topic[256];
		uint64_t sub_id;
		uint32_t credit;
	} d[DISPATCHED_MAX];
	size_t nd;
};

void *ws_state(const struct ws_session *s)
{
	return s->state;
}

void ws_set_state(struct ws_session *s, void *state)
{
	s->state = state;
}

struct fe_conn *ws_conn(const struct ws_session *s)
{
	return (struct fe_conn *)&s->conn;
}

const struct ws_subproto *ws_subproto(const struct ws_session *s)
{
	(void)s;
	return &gql_ws_subproto;
}

int ws_send(struct ws_session *s, enum ws_msg_type type, const void *p, size_t n)
{
	json_t *j = json_loadb(p, n, 0, NULL);

	cr_assert_eq(type, WS_TEXT);
	cr_assert_not_null(j, "sent a message that is not JSON: %.*s", (int)n, (const char *)p);
	cr_assert_lt(s->nsent, SENT_MAX);
	s->sent[s->nsent++] = j;
	return 0;
}

int ws_send_buf(struct ws_session *s, enum ws_msg_type type, struct evbuffer *buf)
{
	(void)s;
	(void)type;
	(void)buf;
	cr_assert_fail("not used by gql_ws.c");
	return -1;
}

void ws_send_json(struct ws_session *s, json_t *j)
{
	char *txt = j ? json_dumps(j, JSON_COMPACT) : NULL;

	json_decref(j);
	cr_assert_not_null(txt);
	ws_send(s, WS_TEXT, txt, strlen(txt));
	free(txt);
}

void ws_close(struct ws_session *s, uint16_t code, const char *reason)
{
	cr_assert(strlen(reason) <= 123);
	if (!s->close_code) {
		s->close_code = code;
		snprintf(s->close_reason, sizeof(s->close_reason), "%s", reason);
	}
}

size_t ws_out_pending(const struct ws_session *s)
{
	(void)s;
	return 0;
}

int ws_out_full(const struct ws_session *s)
{
	(void)s;
	return 0;
}

int ws_dispatch(struct ws_session *s, const Sluice__Frame *f)
{
	cr_assert_lt(s->nd, DISPATCHED_MAX);
	cr_assert_neq(f->id, 0);
	for (size_t i = 0; i < s->nd; i++)
		cr_assert_neq(s->d[i].id, f->id, "request id reused");
	s->d[s->nd].id = f->id;
	s->d[s->nd].body = f->body_case;
	if (f->body_case == SLUICE__FRAME__BODY_SUBSCRIBE) {
		snprintf(s->d[s->nd].topic, sizeof(s->d[s->nd].topic), "%s", f->subscribe->topic);
		s->d[s->nd].credit = f->subscribe->credit;
	}
	if (f->body_case == SLUICE__FRAME__BODY_UNSUBSCRIBE)
		s->d[s->nd].sub_id = f->unsubscribe->subscription_id;
	s->nd++;
	return 0;
}

/* ---------- helpers ---------- */

static struct ws_session *open_session(void)
{
	struct ws_session *s = calloc(1, sizeof(*s));

	cr_assert_not_null(s);
	s->fe.base = event_base_new();
	s->conn.fe = &s->fe;
	cr_assert_eq(gql_ws_subproto.open(s), 0);
	return s;
}

static void close_session(struct ws_session *s)
{
	gql_ws_subproto.close(s);
	cr_assert_null(s->state);
	for (size_t i = 0; i < s->nsent; i++)
		json_decref(s->sent[i]);
	event_base_free(s->fe.base);
	free(s);
}

static void msg(struct ws_session *s, const char *txt)
{
	gql_ws_subproto.message(s, WS_TEXT, (const uint8_t *)txt, strlen(txt));
}

/* The next message sent, which must be of this type (and id). */
static json_t *next_sent(struct ws_session *s, const char *type, const char *id)
{
	json_t *m;

	cr_assert_lt(s->nread, s->nsent, "nothing sent, expected %s", type);
	m = s->sent[s->nread++];
	cr_assert_str_eq(json_string_value(json_object_get(m, "type")), type);
	if (id)
		cr_assert_str_eq(json_string_value(json_object_get(m, "id")), id);
	return m;
}

static void nothing_more(struct ws_session *s)
{
	cr_assert_eq(s->nread, s->nsent, "unexpected message sent");
}

static void acked(struct ws_session *s)
{
	msg(s, "{\"type\":\"connection_init\",\"payload\":{\"token\":\"x\"}}");
	next_sent(s, "connection_ack", NULL);
}

static void answer(struct ws_session *s, Sluice__Frame *f)
{
	gql_ws_subproto.frame(s, f);
}

/* ---------- tests ---------- */

Test(gql_ws, init_ack_and_ping_pong)
{
	struct ws_session *s = open_session();
	json_t *m;

	msg(s, "{\"type\":\"ping\",\"payload\":{\"n\":1}}"); /* allowed before the ack */
	m = next_sent(s, "pong", NULL);
	cr_assert_eq(json_integer_value(json_object_get(json_object_get(m, "payload"), "n")), 1);
	acked(s);
	msg(s, "{\"type\":\"ping\"}");
	m = next_sent(s, "pong", NULL);
	cr_assert_null(json_object_get(m, "payload"));
	msg(s, "{\"type\":\"pong\"}");
	nothing_more(s);
	cr_assert_eq(s->close_code, 0);
	msg(s, "{\"type\":\"connection_init\"}");
	cr_assert_eq(s->close_code, 4429);
	cr_assert_str_eq(s->close_reason, "Too many initialisation requests");
	close_session(s);
}

Test(gql_ws, subscribe_before_init_is_4401)
{
	struct ws_session *s = open_session();

	msg(s, "{\"type\":\"subscribe\",\"id\":\"1\",\"payload\":{\"query\":\"{ topics { name } }\"}}");
	cr_assert_eq(s->close_code, 4401);
	cr_assert_str_eq(s->close_reason, "Unauthorized");
	cr_assert_eq(s->nd, 0);
	close_session(s);
}

Test(gql_ws, invalid_messages_are_4400)
{
	const char *bad[] = {"not json", "{\"type\":\"nope\"}", "{\"type\":\"next\",\"id\":\"1\",\"payload\":{}}",
	                     "{\"type\":\"connection_ack\"}", "{\"type\":\"subscribe\",\"id\":\"1\",\"payload\":{}}"};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct ws_session *s = open_session();
		acked(s);
		msg(s, bad[i]);
		cr_assert_eq(s->close_code, 4400, "%s: closed %d", bad[i], s->close_code);
		cr_assert(strstr(s->close_reason, "Invalid message"), "%s", s->close_reason);
		close_session(s);
	}
	struct ws_session *s = open_session();
	gql_ws_subproto.message(s, WS_BINARY, (const uint8_t *)"{}", 2);
	cr_assert_eq(s->close_code, 4400);
	close_session(s);
}

Test(gql_ws, init_timeout_is_4408)
{
	struct ws_session *s;
	struct timeval bound = {5, 0};

	gql_ws_init_timeout_ms = 50;
	s = open_session();
	event_base_loopexit(s->fe.base, &bound); /* bounded: the close comes long before */
	while (!s->close_code && event_base_loop(s->fe.base, EVLOOP_ONCE) == 0)
		;
	cr_assert_eq(s->close_code, 4408);
	cr_assert_str_eq(s->close_reason, "Connection initialisation timeout");
	close_session(s);
	gql_ws_init_timeout_ms = GQL_WS_INIT_TIMEOUT_MS;
}

Test(gql_ws, subscription_next_complete_and_duplicate_id)
{
	struct ws_session *s = open_session();
	Sluice__Frame f = SLUICE__FRAME__INIT;
	Sluice__Subscribed sd = SLUICE__SUBSCRIBED__INIT;
	Sluice__Delivery d = SLUICE__DELIVERY__INIT;
	Sluice__Message m1 = SLUICE__MESSAGE__INIT, m2 = SLUICE__MESSAGE__INIT, *ms[2] = {&m1, &m2};
	json_t *n;
	char *txt;

	acked(s);
	msg(s, "{\"type\":\"subscribe\",\"id\":\"s1\",\"payload\":{\"query\":\"subscription ($t: String!) { messages(topic: "
	       "$t, from: \\\"earliest\\\") { offset p: payload } }\",\"variables\":{\"t\":\"orders\"}}}");
	cr_assert_eq(s->nd, 1);
	cr_assert_eq(s->d[0].body, SLUICE__FRAME__BODY_SUBSCRIBE);
	cr_assert_str_eq(s->d[0].topic, "orders");
	cr_assert_geq(s->d[0].credit, 1u << 31);
	nothing_more(s);

	/* the same id again while it runs */
	msg(s, "{\"type\":\"subscribe\",\"id\":\"s1\",\"payload\":{\"query\":\"{ topics { name } }\"}}");
	cr_assert_eq(s->close_code, 4409);
	cr_assert_str_eq(s->close_reason, "Subscriber for s1 already exists");
	s->close_code = 0; /* the fake keeps the session: go on with the first one */

	sd.subscription_id = 7;
	f.id = s->d[0].id;
	f.body_case = SLUICE__FRAME__BODY_SUBSCRIBED;
	f.subscribed = &sd;
	answer(s, &f);
	nothing_more(s);

	m1.topic = m2.topic = "orders";
	m1.offset = 0;
	m1.payload.data = (uint8_t *)"a";
	m1.payload.len = 1;
	m2.offset = 1;
	m2.partition = 0;
	m2.payload.data = (uint8_t *)"b";
	m2.payload.len = 1;
	d.subscription_id = 7;
	d.n_messages = 2;
	d.messages = ms;
	sluice__frame__init(&f);
	f.body_case = SLUICE__FRAME__BODY_DELIVERY;
	f.delivery = &d;
	answer(s, &f);
	n = next_sent(s, "next", "s1");
	txt = json_dumps(json_object_get(n, "payload"), JSON_COMPACT);
	cr_assert_str_eq(txt, "{\"data\":{\"messages\":{\"offset\":\"0\",\"p\":\"a\"}}}");
	free(txt);
	n = next_sent(s, "next", "s1");
	txt = json_dumps(json_object_get(n, "payload"), JSON_COMPACT);
	cr_assert_str_eq(txt, "{\"data\":{\"messages\":{\"offset\":\"1\",\"p\":\"b\"}}}");
	free(txt);

	/* the client completes: native Unsubscribe, and later pushes are dropped */
	msg(s, "{\"type\":\"complete\",\"id\":\"s1\"}");
	cr_assert_eq(s->nd, 2);
	cr_assert_eq(s->d[1].body, SLUICE__FRAME__BODY_UNSUBSCRIBE);
	cr_assert_eq(s->d[1].sub_id, 7);
	answer(s, &f);
	nothing_more(s);
	/* the id is free again */
	msg(s, "{\"type\":\"subscribe\",\"id\":\"s1\",\"payload\":{\"query\":\"subscription { messages(topic: \\\"x\\\") "
	       "{ offset } }\"}}");
	cr_assert_eq(s->close_code, 0);
	cr_assert_eq(s->nd, 3);
	close_session(s);
}

Test(gql_ws, query_over_subscribe_is_next_then_complete)
{
	struct ws_session *s = open_session();
	Sluice__Frame f = SLUICE__FRAME__INIT;
	Sluice__TopicList tl = SLUICE__TOPIC_LIST__INIT;
	Sluice__TopicInfo ti = SLUICE__TOPIC_INFO__INIT, *tis[1] = {&ti};
	json_t *n;
	char *txt;

	acked(s);
	msg(s, "{\"type\":\"subscribe\",\"id\":\"q\",\"payload\":{\"query\":\"query Q { topics { name } }\","
	       "\"operationName\":\"Q\"}}");
	cr_assert_eq(s->nd, 1);
	cr_assert_eq(s->d[0].body, SLUICE__FRAME__BODY_LIST_TOPICS);
	ti.name = "orders";
	tl.n_topics = 1;
	tl.topics = tis;
	f.id = s->d[0].id;
	f.body_case = SLUICE__FRAME__BODY_TOPIC_LIST;
	f.topic_list = &tl;
	answer(s, &f);
	n = next_sent(s, "next", "q");
	txt = json_dumps(json_object_get(n, "payload"), JSON_COMPACT);
	cr_assert_str_eq(txt, "{\"data\":{\"topics\":[{\"name\":\"orders\"}]}}");
	free(txt);
	next_sent(s, "complete", "q");
	nothing_more(s);
	close_session(s);
}

Test(gql_ws, invalid_graphql_and_native_errors_are_error_messages)
{
	struct ws_session *s = open_session();
	Sluice__Frame f = SLUICE__FRAME__INIT;
	Sluice__Error e = SLUICE__ERROR__INIT;
	json_t *m, *err;

	acked(s);
	msg(s, "{\"type\":\"subscribe\",\"id\":\"a\",\"payload\":{\"query\":\"{ topics { nope } }\"}}");
	m = next_sent(s, "error", "a");
	err = json_array_get(json_object_get(m, "payload"), 0);
	cr_assert_str_eq(json_string_value(json_object_get(err, "message")), "Cannot query field \"nope\" on type \"Topic\".");
	cr_assert_eq(s->nd, 0);
	msg(s, "{\"type\":\"subscribe\",\"id\":\"b\",\"payload\":{\"query\":\"subscription { messages(topic: \\\"t\\\") "
	       "{ offset } }\"}}");
	cr_assert_eq(s->nd, 1);
	e.code = SLUICE__ERROR_CODE__NO_SUCH_TOPIC;
	e.message = "no such topic";
	f.id = s->d[0].id;
	f.body_case = SLUICE__FRAME__BODY_ERROR;
	f.error = &e;
	answer(s, &f);
	m = next_sent(s, "error", "b");
	err = json_array_get(json_object_get(m, "payload"), 0);
	cr_assert_str_eq(json_string_value(json_object_get(json_object_get(err, "extensions"), "code")), "NO_SUCH_TOPIC");
	nothing_more(s);
	/* a and b are both over: their ids can be used again */
	msg(s, "{\"type\":\"subscribe\",\"id\":\"b\",\"payload\":{\"query\":\"{ cluster { leader } }\"}}");
	cr_assert_eq(s->close_code, 0);
	close_session(s);
}
