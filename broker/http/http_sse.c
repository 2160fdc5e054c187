/*
 * http_sse.c: GET /v1/topics/{topic}/events, Server-Sent Events over a
 * native subscription of the connection (fe_read.c): the same waiter lists
 * wake it on commit, and the same output watermark (output_high_bytes)
 * stops reading the log for a slow reader until its output drains; the
 * subscription's credit is simply large.
 *
 * Event ids: "PARTITION:NEXT,PARTITION:NEXT,..." for every partition of the
 * stream, NEXT being the offset after the last event delivered from it, so
 * one id resumes the whole stream exactly, on any node: Last-Event-ID (or
 * ?lastEventId=) starts each partition at its NEXT. A partition the id does
 * not name starts at its earliest. A NEXT below what retention kept gets an
 * `event: reset` naming the first available positions, never a silent gap.
 *
 * Deliveries: the events of one read are rendered once per format for every
 * stream at that position (sse_render, into an fe_share of fe_fanout.c)
 * and each stream's output references them; a stream of one partition
 * shares the id lines too (its id is "PARTITION:NEXT"), one of several
 * writes its own id line before each shared event.
 *
 * The end: when the server ends the subscription (permission revoked,
 * token expired, topic deleted) the stream gets `event: error` with a
 * problem+json data line, then closes (sse_end).
 *
 * Failover: a stream that cannot start because this node is unavailable is
 * closed without an answer (EventSource then retries); a non-200 would stop
 * it for good.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <jansson.h>

#include "config.h"
#include "err.h"
#include "http_int.h"
#include "log.h"

#define SSE_PARTS_MAX 4096
#define SSE_CONTENT_TYPE "text/event-stream; charset=utf-8"

struct http_sse {
	int json;
	uint32_t nparts;
	uint32_t *parts;        /* partitions of the stream, as subscribed */
	uint64_t *pos;          /* next offset per partition */
	size_t nwant;           /* resume positions from Last-Event-ID */
	uint32_t *want_p;
	uint64_t *want_off;
};

void http_sse_free(struct http_sse *s)
{
	free(s->parts);
	free(s->pos);
	free(s->want_p);
	free(s->want_off);
	free(s);
}

static void sse_write_id(struct evbuffer *b, const struct http_sse *s)
{
	evbuffer_add(b, "id: ", 4);
	for (uint32_t i = 0; i < s->nparts; i++)
		evbuffer_add_printf(b, "%s%u:%llu", i ? "," : "", s->parts[i], (unsigned long long)s->pos[i]);
	evbuffer_add(b, "\n", 1);
}

/* data: lines; CR, LF and CRLF all end a line in SSE, so each becomes a new data: line. */
static void sse_write_data(struct evbuffer *b, const uint8_t *p, size_t n)
{
	size_t i = 0;

	for (;;) {
		size_t j = i;
		while (j < n && p[j] != '\n' && p[j] != '\r')
			j++;
		evbuffer_add(b, "data: ", 6);
		evbuffer_add(b, p + i, j - i);
		evbuffer_add(b, "\n", 1);
		if (j >= n)
			break;
		if (p[j] == '\r' && j + 1 < n && p[j + 1] == '\n')
			j++;
		i = j + 1;
	}
}

/* A JSON value as compact text (freed by the caller); consumes j. */
static char *json_text(json_t *j)
{
	char *txt = j ? json_dumps(j, JSON_COMPACT) : NULL;

	json_decref(j);
	return txt;
}

static void sse_reset(struct http_req *r)
{
	struct http_sse *s = r->sse;
	json_t *pos = json_object();
	char k[16], *txt;

	for (uint32_t i = 0; pos && i < s->nparts; i++) {
		snprintf(k, sizeof(k), "%u", s->parts[i]);
		json_object_set_new(pos, k, json_integer((json_int_t)s->pos[i]));
	}
	txt = json_text(json_pack("{s:s,s:o,s:s}", "topic", r->topic, "positions", pos, "reason",
	                          "the requested position is older than retention"));
	evbuffer_add(r->out, "event: reset\n", 13);
	sse_write_id(r->out, s);
	sse_write_data(r->out, (const uint8_t *)(txt ? txt : "{}"), txt ? strlen(txt) : 2);
	evbuffer_add(r->out, "\n", 1);
	free(txt);
}

static int index_of(const struct http_sse *s, uint32_t p)
{
	for (uint32_t i = 0; i < s->nparts; i++)
		if (s->parts[i] == p)
			return (int)i;
	return -1;
}

static void sse_event(struct http_req *r, const Sluice__Message *m)
{
	struct http_sse *s = r->sse;
	int i = index_of(s, m->partition);
	int named = strpbrk(r->topic, "\r\n") == NULL;

	if (i < 0)
		return;
	if (m->offset > s->pos[i]) {
		/* retention removed what this reader had not read yet */
		s->pos[i] = m->offset;
		sse_reset(r);
	}
	s->pos[i] = m->offset + 1;
	sse_write_id(r->out, s);
	evbuffer_add_printf(r->out, "event: %s\n", named ? r->topic : "message");
	if (s->json) {
		char *txt = json_text(http_message_json(m));
		sse_write_data(r->out, (const uint8_t *)(txt ? txt : "{}"), txt ? strlen(txt) : 2);
		free(txt);
	} else {
		sse_write_data(r->out, m->payload.data, m->payload.len);
	}
	evbuffer_add(r->out, "\n", 1);
}

/* ---------- shared deliveries (fe_fanout.c) ---------- */

/* e's messages as SSE events in one format, rendered once for every stream
 * that reads them: per message k its id line as a single-partition stream
 * sends it (from at[2k]), then its event, data and blank lines (from
 * at[2k+1]); at[2n] is the end. */
static int sse_render(struct fe_fanout_entry *e, int json)
{
	struct evbuffer *b = evbuffer_new();
	size_t n = e->m.n, len, *at = malloc((2 * n + 1) * sizeof(*at));
	const char *event = strpbrk(e->topic, "\r\n") == NULL ? e->topic : "message";
	struct fe_share *sh = NULL;
	int rc = SL_ENOMEM;

	if (!b || !at)
		goto out;
	for (size_t k = 0; k < n; k++) {
		const Sluice__Message *m = e->m.ptrs[k];
		at[2 * k] = evbuffer_get_length(b);
		evbuffer_add_printf(b, "id: %u:%llu\n", m->partition, (unsigned long long)m->offset + 1);
		at[2 * k + 1] = evbuffer_get_length(b);
		evbuffer_add_printf(b, "event: %s\n", event);
		if (json) {
			char *txt = json_text(http_message_json(m));
			sse_write_data(b, (const uint8_t *)(txt ? txt : "{}"), txt ? strlen(txt) : 2);
			free(txt);
		} else {
			sse_write_data(b, m->payload.data, m->payload.len);
		}
		evbuffer_add(b, "\n", 1);
	}
	len = at[2 * n] = evbuffer_get_length(b);
	if (!(sh = fe_share_new(len)) || evbuffer_remove(b, sh->data, len) != (int)len)
		goto out;
	sh->len = len;
	e->sse[json] = sh;
	e->sse_at[json] = at;
	sh = NULL;
	at = NULL;
	rc = SL_OK;
out:
	fe_share_unref(sh);
	free(at);
	if (b)
		evbuffer_free(b);
	return rc;
}

/* The stream's events for e: a single-partition stream takes runs of the
 * rendering whole, ids included; a stream of several partitions writes its
 * own id line (it names every partition's position) before each event. */
static int sse_deliver(struct http_req *r, struct fe_fanout_entry *e)
{
	struct http_sse *s = r->sse;
	const size_t *at = e->sse_at[s->json];
	struct fe_share *sh = e->sse[s->json];
	int i = index_of(s, e->m.partition), rc = SL_OK;
	size_t run = SIZE_MAX; /* start of the rendering not yet referenced */

	if (i < 0)
		return SL_OK;
	for (size_t k = 0; k < e->m.n && rc == SL_OK; k++) {
		uint64_t off = e->m.ptrs[k]->offset;
		if (off > s->pos[i]) {
			/* retention removed what this reader had not read yet */
			if (run != SIZE_MAX)
				rc = fe_share_add(r->out, sh, run, at[2 * k] - run);
			run = SIZE_MAX;
			s->pos[i] = off;
			sse_reset(r);
		}
		s->pos[i] = off + 1;
		if (s->nparts == 1) {
			if (run == SIZE_MAX)
				run = at[2 * k];
			continue;
		}
		sse_write_id(r->out, s);
		if (rc == SL_OK)
			rc = fe_share_add(r->out, sh, at[2 * k + 1], at[2 * k + 2] - at[2 * k + 1]);
	}
	if (rc == SL_OK && run != SIZE_MAX)
		rc = fe_share_add(r->out, sh, run, at[2 * e->m.n] - run);
	return rc;
}

int fe_http_sse_deliver(struct fe_conn *c, struct fe_fanout_entry *e)
{
	struct http_req *r;

	if (c->dead || c->lingering)
		return 1; /* as fe_send: nothing more goes out */
	TAILQ_FOREACH(r, &c->http->reqs, link)
	if (r->kind == HK_SSE && r->streaming && r->sse)
		break;
	if (!r)
		return 0;
	if ((!e->sse[r->sse->json] && sse_render(e, r->sse->json) != SL_OK) || sse_deliver(r, e) != SL_OK) {
		log_error("out of memory queueing server-sent events; closing connection");
		http_conn_drop(c);
		return 1;
	}
	http_flush(c);
	return 1;
}

/* Subscribed: answer 200 and place every partition where the stream resumes. */
static void sse_started(struct http_req *r, const Sluice__Subscribed *sd)
{
	struct fe_conn *c = r->conn;
	struct http_sse *s = r->sse;
	struct fe_sub *sub = fe_sub_find(c, sd->subscription_id);
	int reset = 0;

	if (!sub || !(s->parts = calloc(sd->n_positions, sizeof(*s->parts))) ||
	    !(s->pos = calloc(sd->n_positions, sizeof(*s->pos)))) {
		http_problem(r, 500, SL_EINTERNAL, "out of memory");
		return;
	}
	sub->credit = UINT64_MAX / 2; /* flow control is the output watermark */
	s->nparts = (uint32_t)sd->n_positions;
	for (uint32_t i = 0; i < s->nparts; i++) {
		s->parts[i] = sd->positions[i]->partition;
		s->pos[i] = sd->positions[i]->offset;
		for (size_t k = 0; k < s->nwant; k++) {
			if (s->want_p[k] != s->parts[i])
				continue;
			if (s->want_off[k] < s->pos[i])
				reset = 1; /* below the first stored offset: start there, and say so */
			else
				s->pos[i] = s->want_off[k];
			fe_sub_seek(sub, s->parts[i], s->pos[i]);
		}
	}
	http_add_header(r, "Cache-Control", "no-cache");
	http_add_header(r, "X-Accel-Buffering", "no");
	http_stream_start(r, SSE_CONTENT_TYPE);
	evbuffer_add_printf(r->out, "retry: %u\n\n", c->fe->cfg->sse_retry_ms);
	if (reset)
		sse_reset(r);
	http_flush(c);
}

/* The server ended the stream (its identity may no longer read, the
 * topic was deleted, a storage fault): an `event: error` whose data is the
 * problem+json a new request would be refused with, then close. An
 * EventSource that does not close() on it reconnects once, and that
 * request is refused with the same status (401, 403, 404), which ends an
 * EventSource for good: no loop with a dead token. */
static void sse_end(struct http_req *r, const Sluice__Delivery *d)
{
	int err = (int)d->end_error;
	char *p = http_problem_json(r, http_status_for_err(err), err, d->end_message);

	if (p)
		evbuffer_add_printf(r->out, "event: error\ndata: %s\n\n", p);
	free(p);
	http_flush(r->conn);
	fe_conn_finish(r->conn);
}

void http_sse_frame(struct http_req *r, const Sluice__Frame *f)
{
	struct fe_conn *c = r->conn;

	if (f->body_case == SLUICE__FRAME__BODY_ERROR) {
		if (f->error->code == SLUICE__ERROR_CODE__UNAVAILABLE)
			http_conn_drop(c); /* EventSource retries a closed stream, not a 503 */
		else
			http_problem(r, 0, (int)f->error->code, f->error->message);
		return;
	}
	if (f->body_case == SLUICE__FRAME__BODY_SUBSCRIBED && !r->streaming) {
		sse_started(r, f->subscribed);
		return;
	}
	if (f->body_case != SLUICE__FRAME__BODY_DELIVERY || !r->streaming)
		return;
	if (f->delivery->end_error) {
		sse_end(r, f->delivery);
		return;
	}
	for (size_t i = 0; i < f->delivery->n_messages; i++)
		sse_event(r, f->delivery->messages[i]);
	http_flush(c);
}

void http_sse_heartbeat(struct fe *fe)
{
	struct http_conn *h;

	TAILQ_FOREACH(h, &fe->http->sse_conns, sse_link)
	{
		struct fe_conn *c = h->conn;
		struct http_req *r = TAILQ_FIRST(&h->reqs);
		if (c->dead || c->closing || !r || !r->streaming)
			continue;
		evbuffer_add(r->out, ": heartbeat\n\n", 13);
		http_flush(c);
	}
}

struct sse_q {
	char partition[32], from[64], group[HTTP_QUERY_VALUE_MAX], format[16], last[HTTP_QUERY_VALUE_MAX];
};

static int sse_query(struct http_req *r, struct sse_q *q)
{
	memset(q, 0, sizeof(*q));
	return http_query_get(r->query, r->query_len, "partition", q->partition, sizeof(q->partition)) < 0 ||
	               http_query_get(r->query, r->query_len, "from", q->from, sizeof(q->from)) < 0 ||
	               http_query_get(r->query, r->query_len, "group", q->group, sizeof(q->group)) < 0 ||
	               http_query_get(r->query, r->query_len, "format", q->format, sizeof(q->format)) < 0 ||
	               http_query_get(r->query, r->query_len, "lastEventId", q->last, sizeof(q->last)) < 0
	           ? -1
	           : 0;
}

/* Last-Event-ID (header, else query) into the resume positions. */
static int sse_resume(struct http_req *r, struct http_sse *s, const char *qlast)
{
	size_t vl = 0;
	const char *v = http_req_header(r, "last-event-id", &vl);
	char buf[HTTP_QUERY_VALUE_MAX];

	if (v && vl > 0 && vl < sizeof(buf)) {
		memcpy(buf, v, vl);
		buf[vl] = 0;
	} else if (qlast[0]) {
		snprintf(buf, sizeof(buf), "%s", qlast);
	} else {
		return 0;
	}
	s->want_p = calloc(SSE_PARTS_MAX, sizeof(*s->want_p));
	s->want_off = calloc(SSE_PARTS_MAX, sizeof(*s->want_off));
	if (!s->want_p || !s->want_off)
		return -1;
	return http_sse_id_parse(buf, s->want_p, s->want_off, SSE_PARTS_MAX, &s->nwant);
}

/* HEAD: the headers a stream would start with, once the topic (and the
 * partition asked for) is known here; no subscription, no body. */
static void sse_head(struct http_req *r, uint32_t part)
{
	struct fe_start st = {.start = SLUICE__START_AT__EARLIEST};
	uint64_t off;
	int rc = http_resolve_start(r->conn->fe, r->topic, part, &st, &off);

	if (rc != SL_OK) {
		http_problem(r, 0, rc == SL_ECORRUPT ? SL_EINTERNAL : rc,
		             rc == SL_EINVAL ? "partition out of range" : sl_strerror(rc));
		return;
	}
	http_add_header(r, "Cache-Control", "no-cache");
	http_add_header(r, "X-Accel-Buffering", "no");
	http_respond_stream_head(r, SSE_CONTENT_TYPE);
}

void http_on_events(struct http_req *r)
{
	Sluice__Subscribe m = SLUICE__SUBSCRIBE__INIT;
	Sluice__Frame f = SLUICE__FRAME__INIT;
	struct fe_start st;
	struct sse_q q;
	uint32_t part;
	uint64_t p = 0;
	int rc;

	if (http_topic_param(r, r->params[0], r->topic, sizeof(r->topic)) < 0)
		return;
	if (r->method != HTTP_HEAD && TAILQ_FIRST(&r->conn->http->reqs) != r) {
		http_problem(r, 400, SL_EINVAL, "an event stream must not be pipelined behind other requests");
		return;
	}
	if (!(r->sse = calloc(1, sizeof(*r->sse)))) {
		http_problem(r, 500, SL_EINTERNAL, "out of memory");
		return;
	}
	if (sse_query(r, &q) < 0 || http_start_parse(q.from[0] ? q.from : "latest", &st) < 0 ||
	    (q.format[0] && strcmp(q.format, "raw") != 0 && strcmp(q.format, "json") != 0) ||
	    (q.partition[0] && (http_parse_u64(q.partition, &p) < 0 || p >= UINT32_MAX)) ||
	    strlen(q.group) > 249 || sse_resume(r, r->sse, q.last) < 0) {
		http_problem(r, 400, SL_EINVAL,
		             "bad query or Last-Event-ID: partition, from=earliest|latest|OFFSET|@UNIX_MS, group, "
		             "format=raw|json, lastEventId=PARTITION:OFFSET,...");
		return;
	}
	if (r->method == HTTP_HEAD) {
		sse_head(r, (uint32_t)p);
		return;
	}
	r->sse->json = strcmp(q.format, "json") == 0;
	memcpy(r->group, q.group, strlen(q.group) + 1); /* at most 249 bytes: checked above */
	part = (uint32_t)p;
	m.topic = r->topic;
	if (q.partition[0]) {
		m.n_partitions = 1;
		m.partitions = &part;
	}
	m.start = r->sse->nwant ? SLUICE__START_AT__EARLIEST : st.start;
	m.offset = st.offset;
	m.timestamp_ms = st.timestamp_ms;
	m.group = r->sse->nwant ? (char *)"" : r->group;
	m.credit = 1;
	f.body_case = SLUICE__FRAME__BODY_SUBSCRIBE;
	f.subscribe = &m;
	if ((rc = http_dispatch(r, HK_SSE, &f)) != SL_OK)
		http_problem(r, 500, SL_EINTERNAL, sl_strerror(rc));
}
