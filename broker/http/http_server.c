/*
 * http_server.c: HTTP/1.1 connections on the frontend's loop. Requests are
 * parsed with libhttp-parser straight from the bufferevent's input, one
 * message at a time (the parser pauses at the end of each), so pipelined
 * requests are taken in order and answered in order: each request keeps its
 * response in its own buffer until every earlier one has gone out.
 *
 * Limits (config [http]): header bytes (431), body bytes (413, checked
 * against Content-Length before the body is read, and while a chunked body
 * arrives), requests read ahead of their answers (reading pauses), a header
 * deadline from the first byte of a request (408, closes slow-header
 * clients) and an idle timeout between requests. Refusals that leave the
 * byte stream in doubt (parse errors, smuggling attempts such as both
 * Content-Length and Transfer-Encoding, or two Content-Lengths, oversized
 * headers or bodies) answer problem+json and close the connection.
 *
 * Caveats:
 * - Connections are fe_conns: closed with fe_conn_close/fe_conn_finish and
 *   freed by the frontend's reaper, never inside their own callbacks.
 * - An Upgrade request (WebSocket) reaches the router like any other; a
 *   handler that takes the connection over after 101 gets the bytes that
 *   follow the request still in the input buffer (parser.upgrade is set).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "codec.h"
#include "config.h"
#include "err.h"
#include "fe_pages.h"
#include "gql.h"
#include "http_int.h"
#include "log.h"
#include "shm.h"
#include "sl_assert.h"
#include "ws_int.h"

#define HTTP_TIMER_NONE 0
#define HTTP_TIMER_HEADERS 1
#define HTTP_TIMER_IDLE 2

static const http_parser_settings parser_settings;

static struct timeval tv_of_ms(uint32_t ms)
{
	struct timeval tv = {ms / 1000, (long)(ms % 1000) * 1000};
	return tv;
}

/* ---------- requests ---------- */

static struct http_req *req_new(struct fe_conn *c)
{
	struct http_req *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->conn = c;
	r->body = evbuffer_new();
	r->out = evbuffer_new();
	r->rh = evbuffer_new();
	if (!r->body || !r->out || !r->rh) {
		if (r->body)
			evbuffer_free(r->body);
		if (r->out)
			evbuffer_free(r->out);
		if (r->rh)
			evbuffer_free(r->rh);
		free(r);
		return NULL;
	}
	return r;
}

static void req_free(struct http_req *r)
{
	if (r->wait_ev)
		event_free(r->wait_ev);
	if (r->sse)
		http_sse_free(r->sse);
	if (r->commits)
		http_commits_free(r->commits);
	gql_req_free(r->gql);
	for (uint32_t i = 0; i < r->nparams; i++)
		free(r->params[i]);
	evbuffer_free(r->body);
	evbuffer_free(r->out);
	evbuffer_free(r->rh);
	free(r->head);
	free(r);
}

/* Append bytes to the request head (url and headers) within header_bytes_max. */
static int head_append(struct http_req *r, const char *p, size_t n, uint32_t max)
{
	if (r->head_len + n + 1 > max) {
		r->bad_status = 431;
		r->bad_detail = "request line and headers exceed header_bytes_max";
		return -1;
	}
	if (r->head_len + n + 1 > r->head_cap) {
		size_t cap = r->head_cap ? r->head_cap * 2 : 1024;
		char *nh;
		while (cap < r->head_len + n + 1)
			cap *= 2;
		if (!(nh = realloc(r->head, cap)))
			return -1;
		r->head = nh;
		r->head_cap = cap;
	}
	memcpy(r->head + r->head_len, p, n);
	r->head_len += n;
	r->head[r->head_len] = 0;
	return 0;
}

const char *http_req_header(const struct http_req *r, const char *name, size_t *len)
{
	for (uint32_t i = 0; i < r->nhdrs; i++) {
		const struct http_hdr *h = &r->hdrs[i];
		if (h->name_len == strlen(name) && strncasecmp(r->head + h->name_off, name, h->name_len) == 0) {
			if (len)
				*len = h->val_len;
			return r->head + h->val_off;
		}
	}
	return NULL;
}

/* ---------- parser callbacks ---------- */

static struct http_conn *hc_of(http_parser *p)
{
	return p->data;
}

static uint32_t header_max(const struct http_conn *h)
{
	return h->conn->fe->cfg->http_header_bytes_max;
}

static void timer_set(struct http_conn *h, int mode, uint32_t ms)
{
	struct timeval tv = tv_of_ms(ms);

	h->timer_mode = mode;
	if (mode == HTTP_TIMER_NONE)
		evtimer_del(h->timer);
	else
		evtimer_add(h->timer, &tv);
}

static int on_message_begin(http_parser *p)
{
	struct http_conn *h = hc_of(p);
	struct http_req *r = req_new(h->conn);

	if (!r)
		return -1;
	h->cur = r;
	TAILQ_INSERT_TAIL(&h->reqs, r, link);
	h->nreqs++;
	timer_set(h, HTTP_TIMER_HEADERS, h->conn->fe->cfg->http_header_timeout_ms);
	return 0;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
	struct http_conn *h = hc_of(p);
	struct http_req *r = h->cur;

	if (head_append(r, at, n, header_max(h)) < 0)
		return -1;
	r->url_len += (uint32_t)n;
	return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
	struct http_conn *h = hc_of(p);
	struct http_req *r = h->cur;

	if (r->nhdrs == 0 || r->last_was_value) {
		if (r->nhdrs >= HTTP_HEADERS_MAX) {
			r->bad_status = 431;
			r->bad_detail = "too many header fields";
			return -1;
		}
		if (head_append(r, "", 1, header_max(h)) < 0) /* NUL after the previous value or the url */
			return -1;
		r->hdrs[r->nhdrs].name_off = (uint32_t)r->head_len;
		r->nhdrs++;
		r->last_was_value = 0;
	}
	if (head_append(r, at, n, header_max(h)) < 0)
		return -1;
	r->hdrs[r->nhdrs - 1].name_len += (uint32_t)n;
	return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
	struct http_conn *h = hc_of(p);
	struct http_req *r = h->cur;
	struct http_hdr *hd = &r->hdrs[r->nhdrs - 1];

	if (!r->last_was_value) {
		if (head_append(r, "", 1, header_max(h)) < 0)
			return -1;
		hd->val_off = (uint32_t)r->head_len;
		r->last_was_value = 1;
	}
	if (head_append(r, at, n, header_max(h)) < 0)
		return -1;
	hd->val_len += (uint32_t)n;
	return 0;
}

/* Framing checks libhttp-parser leaves to us, and the body limit. */
static int headers_check(struct http_conn *h, struct http_req *r)
{
	const struct config *cfg = h->conn->fe->cfg;

	for (uint32_t i = 0; i < r->nhdrs; i++) {
		const char *n = r->head + r->hdrs[i].name_off;
		if (r->hdrs[i].name_len == 14 && strncasecmp(n, "content-length", 14) == 0)
			r->n_content_length++;
		if (r->hdrs[i].name_len == 17 && strncasecmp(n, "transfer-encoding", 17) == 0)
			r->n_transfer_encoding++;
	}
	if (r->n_content_length > 1 || (r->n_content_length && r->n_transfer_encoding)) {
		r->bad_status = 400;
		r->bad_detail = "ambiguous message length: Content-Length with Transfer-Encoding, or twice";
		return -1;
	}
	if (r->n_transfer_encoding && !(h->parser.flags & F_CHUNKED)) {
		r->bad_status = 400;
		r->bad_detail = "only Transfer-Encoding: chunked is accepted";
		return -1;
	}
	if (r->n_content_length && h->parser.content_length > cfg->http_body_bytes_max) {
		r->bad_status = 413;
		r->bad_detail = "body larger than body_bytes_max";
		return -1;
	}
	return 0;
}

static int on_headers_complete(http_parser *p)
{
	struct http_conn *h = hc_of(p);
	struct http_req *r = h->cur;
	size_t vlen;
	const char *expect;

	if (head_append(r, "", 1, header_max(h)) < 0)
		return -1;
	r->method = p->method;
	r->http_major = p->http_major;
	r->http_minor = p->http_minor;
	timer_set(h, HTTP_TIMER_NONE, 0);
	if (headers_check(h, r) < 0)
		return -1;
	expect = http_req_header(r, "expect", &vlen);
	if (expect) {
		if (vlen != 12 || strncasecmp(expect, "100-continue", 12) != 0) {
			r->bad_status = 417;
			r->bad_detail = "only Expect: 100-continue is understood";
			return -1;
		}
		/* only when nothing answered before it is still queued: answers stay in order */
		if (TAILQ_FIRST(&h->reqs) == r && r->http_minor >= 1)
			evbuffer_add(bufferevent_get_output(h->conn->bev), "HTTP/1.1 100 Continue\r\n\r\n", 25);
	}
	return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
	struct http_conn *h = hc_of(p);
	struct http_req *r = h->cur;

	if (evbuffer_get_length(r->body) + n > h->conn->fe->cfg->http_body_bytes_max) {
		r->bad_status = 413;
		r->bad_detail = "body larger than body_bytes_max";
		return -1;
	}
	return evbuffer_add(r->body, at, n) == 0 ? 0 : -1;
}

static int on_message_complete(http_parser *p)
{
	struct http_conn *h = hc_of(p);

	h->cur->complete = 1;
	h->cur->keep_alive = http_should_keep_alive(p);
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---------- answers ---------- */

static void date_header(char *buf, size_t cap)
{
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(buf, cap, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

void http_add_header(struct http_req *r, const char *name, const char *fmt, ...)
{
	va_list ap;

	evbuffer_add_printf(r->rh, "%s: ", name);
	va_start(ap, fmt);
	evbuffer_add_vprintf(r->rh, fmt, ap);
	va_end(ap);
	evbuffer_add(r->rh, "\r\n", 2);
}

static void status_line(struct http_req *r, int status, const char *ctype, int has_length, size_t len)
{
	char date[64];

	date_header(date, sizeof(date));
	if (!r->keep_alive || r->conn->fe->stopping)
		r->close_after = 1;
	evbuffer_add_printf(r->out, "HTTP/1.1 %d %s\r\nDate: %s\r\nServer: sluice/%s\r\n", status,
	                    http_status_text(status), date, SLUICE_VERSION);
	if (ctype)
		evbuffer_add_printf(r->out, "Content-Type: %s\r\n", ctype);
	if (has_length)
		evbuffer_add_printf(r->out, "Content-Length: %zu\r\n", len);
	if (r->close_after)
		evbuffer_add(r->out, "Connection: close\r\n", 19);
	else if (r->http_minor == 0)
		evbuffer_add(r->out, "Connection: keep-alive\r\n", 24);
	http_cors_response(r, r->out);
	evbuffer_add_buffer(r->out, r->rh);
	evbuffer_add(r->out, "\r\n", 2);
}

static void answered(struct http_req *r, int status)
{
	SL_ASSERT(!r->answered);
	r->answered = 1;
	r->status = status;
	r->id = 0;
	if (r->wait_ev)
		event_del(r->wait_ev);
	fe_http_observe(r->conn->fe, r->route ? r->route : "unmatched", status);
	if (!r->conn->http->in_process)
		http_flush(r->conn);
}

/* A HEAD request is answered with the headers GET would get, Content-Length
 * included, and no body (RFC 9110 9.3.2). */
void http_respond(struct http_req *r, int status, const char *ctype, const void *body, size_t len)
{
	if (r->answered)
		return;
	status_line(r, status, ctype, status != 204, len);
	if (len && status != 204 && r->method != HTTP_HEAD)
		evbuffer_add(r->out, body, len);
	answered(r, status);
}

void http_respond_buf(struct http_req *r, int status, const char *ctype, struct evbuffer *buf)
{
	if (r->answered)
		return;
	status_line(r, status, ctype, 1, evbuffer_get_length(buf));
	if (r->method == HTTP_HEAD)
		evbuffer_drain(buf, evbuffer_get_length(buf));
	else
		evbuffer_add_buffer(r->out, buf);
	answered(r, status);
}

void http_respond_stream_head(struct http_req *r, const char *ctype)
{
	SL_ASSERT(r->method == HTTP_HEAD);
	if (r->answered)
		return;
	status_line(r, 200, ctype, 0, 0);
	answered(r, 200);
}

void http_stream_start(struct http_req *r, const char *ctype)
{
	struct http_conn *h = r->conn->http;

	SL_ASSERT(!r->answered);
	status_line(r, 200, ctype, 0, 0);
	r->streaming = 1;
	h->sse = 1;
	TAILQ_INSERT_TAIL(&r->conn->fe->http->sse_conns, h, sse_link);
	r->conn->fe->http->nsse++;
	fe_metrics_conn(r->conn->fe, METRICS_PROTO_SSE, 1);
	answered(r, 200);
}

void http_conn_drop(struct fe_conn *c)
{
	fe_conn_close(c);
}

/* A read waits for the writes sent before it on its connection, so that a
 * pipelined GET sees the publishes ahead of it (writes keep their order in
 * the ring by themselves). */
static int must_wait(const struct http_conn *h, const struct http_req *r)
{
	const struct http_req *q;

	if (r->method != HTTP_GET && r->method != HTTP_HEAD)
		return 0;
	TAILQ_FOREACH(q, &h->reqs, link)
	{
		if (q == r)
			break;
		if (!q->answered && q->method != HTTP_GET && q->method != HTTP_HEAD)
			return 1;
	}
	return 0;
}

static void request_ready(struct fe_conn *c, struct http_req *r);

/* Move finished answers to the socket in request order. */
void http_flush(struct fe_conn *c)
{
	struct http_conn *h = c->http;
	struct evbuffer *out = bufferevent_get_output(c->bev);
	struct http_req *r;
	int more_room;

	if (c->dead)
		return;
	while ((r = TAILQ_FIRST(&h->reqs)) && r->answered) {
		evbuffer_add_buffer(out, r->out);
		if (r->streaming)
			return; /* the event stream owns the connection from here */
		if (r->close_after) {
			/* nothing after it will be answered: stop here */
			fe_conn_finish(c);
			return;
		}
		TAILQ_REMOVE(&h->reqs, r, link);
		h->nreqs--;
		if (h->cur == r)
			h->cur = NULL;
		req_free(r);
	}
	if (h->held && !must_wait(h, h->held) && !h->in_process) {
		r = h->held;
		h->held = NULL;
		h->in_process = 1;
		request_ready(c, r);
		h->in_process = 0;
		http_flush(c);
		return;
	}
	if (TAILQ_EMPTY(&h->reqs) && h->timer_mode == HTTP_TIMER_NONE)
		timer_set(h, HTTP_TIMER_IDLE, c->fe->cfg->http_idle_timeout_ms);
	more_room = h->nreqs < c->fe->cfg->http_pipeline_max;
	fe_conn_update_read(c);
	if (more_room && !h->in_process && evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
		fe_http_process_input(c);
}


/* A refusal decided by the server (parse error, limit): answer and close. */
static void refuse(struct fe_conn *c, struct http_req *r, int status, const char *detail)
{
	r->close_after = 1;
	r->keep_alive = 0;
	http_problem(r, status, status == 413 ? SL_ETOOLARGE : SL_EMALFORMED, detail);
}

/* ---------- frames from the native side ---------- */

void fe_http_on_frame(struct fe_conn *c, const Sluice__Frame *f)
{
	struct http_conn *h = c->http;
	struct http_req *r;

	if (h->ws) {
		ws_on_frame(h->ws, f);
		return;
	}
	TAILQ_FOREACH(r, &h->reqs, link)
	{
		if (f->id != 0 && r->id == f->id)
			break;
		if (f->id != 0 && r->kind == HK_COMMITS && !r->answered && http_commits_owns(r, f->id))
			break;
		if (f->id == 0 && r->kind == HK_SSE && r->streaming)
			break;
	}
	if (!r)
		return; /* answered already (202, timeout), or a push we did not ask for */
	if (f->body_case == SLUICE__FRAME__BODY_ERROR && f->error->retry_after_ms)
		r->retry_after_s = (f->error->retry_after_ms + 999) / 1000; /* Retry-After is in whole seconds */
	http_answer_frame(r, f);
}

int http_dispatch(struct http_req *r, enum http_kind kind, const Sluice__Frame *f)
{
	return http_dispatch_to(r, kind, f, &r->id);
}

int http_dispatch_to(struct http_req *r, enum http_kind kind, const Sluice__Frame *f, uint64_t *id)
{
	struct fe_conn *c = r->conn;
	struct http_conn *h = c->http;
	Sluice__Frame copy = *f;
	Sluice__Frame *heap = NULL;
	int rc;

	/* the native path keeps a frame it cannot queue yet (ring full) and
	 * frees it later: give it a heap frame of its own, as a decoded one */
	copy.id = ++h->next_id;
	if ((rc = codec_frame_dup(&copy, &heap)) != SL_OK)
		return rc;
	*id = copy.id;
	r->kind = kind;
	if (!fe_conn_dispatch(c, heap))
		codec_frame_free(heap);
	return SL_OK;
}

/* ---------- input ---------- */

int fe_http_read_ok(const struct fe_conn *c)
{
	const struct http_conn *h = c->http;

	return h->ws || h->sse || h->nreqs < c->fe->cfg->http_pipeline_max;
}

/* The parser stopped on an error: answer what caused it and close. */
static void parse_failed(struct fe_conn *c)
{
	struct http_conn *h = c->http;
	struct http_req *r = h->cur;
	enum http_errno e = HTTP_PARSER_ERRNO(&h->parser);

	h->broken = 1;
	if (!r || r->complete) {
		/* the error came before a request began: give it a request to answer */
		if (on_message_begin(&h->parser) != 0 || !(r = h->cur)) {
			fe_conn_close(c);
			return;
		}
	}
	if (r->bad_status)
		refuse(c, r, r->bad_status, r->bad_detail);
	else if (e == HPE_INVALID_VERSION)
		refuse(c, r, 505, "only HTTP/1.0 and HTTP/1.1 are served here");
	else
		refuse(c, r, 400, http_errno_description(e));
}

/* One complete request: route it (or answer it with its parse-time refusal). */
static void request_ready(struct fe_conn *c, struct http_req *r)
{
	c->http->cur = NULL;
	if (r->bad_status) {
		refuse(c, r, r->bad_status, r->bad_detail);
		return;
	}
	if (must_wait(c->http, r)) {
		c->http->held = r; /* parsing stops until it is routed */
		return;
	}
	http_route(r);
}

static int may_parse(const struct fe_conn *c)
{
	const struct fe *fe = c->fe;
	const struct http_conn *h = c->http;

	return !c->dead && !c->closing && !h->ws && !h->sse && !h->broken && !h->held && !fe->stall_frame && !fe->stopping &&
	       h->nreqs < fe->cfg->http_pipeline_max;
}

void fe_http_process_input(struct fe_conn *c)
{
	struct http_conn *h = c->http;
	struct evbuffer *in = bufferevent_get_input(c->bev);

	if (h->ws) {
		ws_on_input(h->ws);
		return;
	}
	if (h->in_process)
		return;
	h->in_process = 1;
	while (may_parse(c)) {
		struct evbuffer_iovec v;
		size_t done;
		enum http_errno e;
		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
			break;
		done = http_parser_execute(&h->parser, &parser_settings, v.iov_base, v.iov_len);
		e = HTTP_PARSER_ERRNO(&h->parser);
		evbuffer_drain(in, done);
		if (e == HPE_PAUSED) {
			http_parser_pause(&h->parser, 0);
			request_ready(c, h->cur);
			continue;
		}
		if (e != HPE_OK) {
			parse_failed(c);
			break;
		}
		if (h->parser.upgrade) {
			/* headers of an Upgrade request are complete; no takeover yet */
			if (h->cur && !h->cur->complete) {
				h->cur->complete = 1;
				h->cur->keep_alive = 0;
				request_ready(c, h->cur);
			}
			break;
		}
	}
	if (h->sse || h->broken)
		evbuffer_drain(in, evbuffer_get_length(in)); /* no more requests on this connection */
	h->in_process = 0;
	if (h->ws) {
		ws_on_input(h->ws); /* what the client sent after its handshake */
		return;
	}
	http_flush(c);
}

int http_req_alone(const struct http_req *r)
{
	const struct http_conn *h = r->conn->http;

	return TAILQ_FIRST(&h->reqs) == r && !TAILQ_NEXT(r, link) && !h->held;
}

void http_upgraded(struct http_req *r, struct ws_session *s)
{
	struct fe_conn *c = r->conn;
	struct http_conn *h = c->http;

	fe_http_observe(c->fe, r->route ? r->route : "unmatched", 101);
	TAILQ_REMOVE(&h->reqs, r, link);
	h->nreqs--;
	if (h->cur == r)
		h->cur = NULL;
	req_free(r);
	timer_set(h, HTTP_TIMER_NONE, 0);
	h->ws = s;
	fe_metrics_conn(c->fe, METRICS_PROTO_WS, 1);
}

void fe_http_writable(struct fe_conn *c)
{
	if (c->http->ws)
		ws_on_writable(c->http->ws);
}

/* ---------- connections ---------- */

static void http_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fe_conn *c = arg;
	struct http_conn *h = c->http;
	struct http_req *r = h->cur;

	if (c->dead)
		return;
	if (h->timer_mode == HTTP_TIMER_HEADERS && r && TAILQ_FIRST(&h->reqs) == r && !r->answered) {
		h->timer_mode = HTTP_TIMER_NONE;
		h->cur = NULL;
		h->broken = 1;
		r->route = "unmatched";
		refuse(c, r, 408, "request headers did not arrive within header_timeout_ms");
		http_flush(c);
		return;
	}
	/* headers late behind earlier answers, or idle: close without a word */
	if (h->timer_mode == HTTP_TIMER_HEADERS || TAILQ_EMPTY(&h->reqs))
		fe_conn_finish(c);
	h->timer_mode = HTTP_TIMER_NONE;
}

/* Requests that could not send all their frames at once (commits) send
 * the rest from here, outside any answer's callback. */
static void http_pump_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fe_conn *c = arg;
	struct http_conn *h = c->http;
	struct http_req *r;

	if (c->dead)
		return;
	h->in_process = 1; /* answers wait for the flush below: no request is freed in this loop */
	TAILQ_FOREACH(r, &h->reqs, link)
	{
		if (r->commits && !r->answered)
			http_commits_pump(r);
	}
	h->in_process = 0;
	http_flush(c);
}

void http_pump_later(struct fe_conn *c, uint32_t ms)
{
	struct timeval tv = tv_of_ms(ms);

	if (c->http->pump_ev && !evtimer_pending(c->http->pump_ev, NULL))
		evtimer_add(c->http->pump_ev, &tv);
}

/* Over http connections_max: a 503 with Retry-After, then close (with TLS
 * just close: a plain answer would be noise to a TLS client). Over
 * connections_per_address_max: the same with 429 (the client's doing). */
static void http_refuse_conn(const struct fe *fe, evutil_socket_t fd, int per_address)
{
	static const char msg[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/problem+json\r\n"
	                          "Retry-After: 1\r\nConnection: close\r\nContent-Length: 136\r\n\r\n"
	                          "{\"type\":\"urn:sluice:problem:too-many\",\"title\":\"Service Unavailable\","
	                          "\"status\":503,\"detail\":\"too many connections\",\"code\":\"TOO_MANY\"}";
	static const char addr_msg[] = "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/problem+json\r\n"
	                               "Retry-After: 1\r\nConnection: close\r\nContent-Length: 147\r\n\r\n"
	                               "{\"type\":\"urn:sluice:problem:too-many\",\"title\":\"Too Many Requests\","
	                               "\"status\":429,\"detail\":\"too many connections from this address\","
	                               "\"code\":\"TOO_MANY\"}";
	ssize_t n;

	if (!fe->tls_ctx) {
		if (per_address)
			n = send(fd, addr_msg, sizeof(addr_msg) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
		else
			n = send(fd, msg, sizeof(msg) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
		(void)n;
	}
	evutil_closesocket(fd);
}

static void http_accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	struct fe *fe = arg;
	struct fe_http *fh = fe->http;
	struct http_conn *h;
	struct fe_conn *c;
	char addr[FE_ADDR_BYTES];

	if (fe->stopping) {
		evutil_closesocket(fd);
		return;
	}
	if (fh->nconns >= fe->cfg->http_connections_max) {
		http_refuse_conn(fe, fd, 0);
		return;
	}
	fe_limits_addr_text(sa, addr);
	if (fe_limits_addr_full(fe, addr)) {
		http_refuse_conn(fe, fd, 1);
		return;
	}
	if (!(h = calloc(1, sizeof(*h)))) {
		evutil_closesocket(fd);
		return;
	}
	if (!(c = fe_conn_new(fe, fd))) {
		free(h);
		return;
	}
	fe_limits_conn_attach(c, addr);
	c->http = h;
	c->handshaken = 1;
	fe_metrics_conn(fe, METRICS_PROTO_HTTP, 1);
	h->conn = c;
	TAILQ_INIT(&h->reqs);
	http_parser_init(&h->parser, HTTP_REQUEST);
	h->parser.data = h;
	h->timer = evtimer_new(fe->base, http_timer_cb, c);
	h->pump_ev = evtimer_new(fe->base, http_pump_cb, c);
	fh->nconns++;
	if (!h->timer || !h->pump_ev) {
		fe_conn_close(c);
		return;
	}
	timer_set(h, HTTP_TIMER_IDLE, fe->cfg->http_idle_timeout_ms);
	bufferevent_setwatermark(c->bev, EV_READ, 0, (size_t)fe->cfg->http_header_bytes_max + 65536);
	bufferevent_setwatermark(c->bev, EV_WRITE, fe->cfg->output_low_bytes, 0);
	bufferevent_enable(c->bev, EV_WRITE);
	fe_conn_update_read(c);
}

void fe_http_conn_free(struct fe_conn *c)
{
	struct http_conn *h = c->http;
	struct fe_http *fh = c->fe->http;
	struct http_req *r;

	while ((r = TAILQ_FIRST(&h->reqs))) {
		TAILQ_REMOVE(&h->reqs, r, link);
		req_free(r);
	}
	if (h->ws) {
		ws_free(h->ws);
		h->ws = NULL;
		fe_metrics_conn(h->conn->fe, METRICS_PROTO_WS, -1);
	}
	if (h->sse) {
		TAILQ_REMOVE(&fh->sse_conns, h, sse_link);
		fh->nsse--;
		fe_metrics_conn(h->conn->fe, METRICS_PROTO_SSE, -1);
	}
	if (h->timer)
		event_free(h->timer);
	if (h->pump_ev)
		event_free(h->pump_ev);
	fh->nconns--;
	free(h);
	c->http = NULL;
}

static void http_hb_cb(evutil_socket_t fd, short what, void *arg)
{
	http_sse_heartbeat(arg);
}

int fe_http_setup(struct fe *fe, int fd)
{
	struct fe_http *fh = calloc(1, sizeof(*fh));
	struct timeval hb = tv_of_ms(fe->cfg->sse_heartbeat_ms);

	if (!fh)
		return SL_ENOMEM;
	fe->http = fh;
	TAILQ_INIT(&fh->sse_conns);
	if (getrandom(&fh->producer_id, sizeof(fh->producer_id), 0) != sizeof(fh->producer_id))
		fh->producer_id = (uint64_t)time_now_ms() * 2654435761u;
	fh->producer_id |= 1ull << 63; /* never 0 */
	fh->listener = evconnlistener_new(fe->base, http_accept_cb, fe, LEV_OPT_CLOSE_ON_FREE, -1, fd);
	fh->hb_ev = event_new(fe->base, -1, EV_PERSIST, http_hb_cb, fe);
	if (!fh->listener || !fh->hb_ev || event_add(fh->hb_ev, &hb) != 0)
		return SL_EIO;
	return SL_OK;
}

void fe_http_stop(struct fe *fe)
{
	struct fe_conn *c;

	if (fe->http && fe->http->listener)
		evconnlistener_disable(fe->http->listener);
	/* WebSocket clients are told the server is going (1001), then reconnect elsewhere */
	TAILQ_FOREACH(c, &fe->conns, link)
	{
		if (c->http && c->http->ws && !c->dead)
			ws_close(c->http->ws, WS_CLOSE_GOING_AWAY, "server shutting down");
	}
}

void fe_http_teardown(struct fe *fe)
{
	struct fe_http *fh = fe->http;

	if (!fh)
		return;
	if (fh->listener)
		evconnlistener_free(fh->listener);
	if (fh->hb_ev)
		event_free(fh->hb_ev);
	free(fh);
	fe->http = NULL;
}

void fe_http_counts(const struct fe *fe, uint32_t *http_conns, uint32_t *sse_streams)
{
	*http_conns = fe->http ? fe->http->nconns : 0;
	*sse_streams = fe->http ? fe->http->nsse : 0;
}

void fe_http_observe(struct fe *fe, const char *route, int status)
{
	fe_metrics_http(fe, route, status);
}
