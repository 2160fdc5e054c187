/*
 * ws.c: WebSocket (RFC 6455) sessions on the HTTP listener: the opening
 * handshake, framing with wslay on the connection's bufferevent, pings,
 * the close handshake, and the subprotocol table (ws.h).
 *
 * Handshake (GET /v1/ws, GET /v1/graphql with Upgrade: websocket):
 *   no Upgrade: websocket / Connection: upgrade, or a version other than 13
 *                     -> 426 with Upgrade and Sec-WebSocket-Version: 13
 *   a key that is not 16 bytes of base64, earlier requests unanswered
 *                     -> 400
 *   an Origin not in [http] ws_origins (when that is set) -> 403
 *   Sec-WebSocket-Protocol offered but none served on the path -> 400;
 *   none offered: the path's first subprotocol
 *   -> 101 with Sec-WebSocket-Accept = base64(SHA-1(key + GUID))
 * After 101 the connection (still a struct fe_conn with its http_conn) is a
 * session: input goes to wslay, fe_send's frames to the subprotocol.
 *
 * wslay checks the framing (masking, reserved bits and opcodes, control
 * frames, fragmentation, close codes; 1002), reassembles fragmented
 * messages, answers pings and echoes a close. Here: text messages must be
 * UTF-8 (1007), messages above [http] ws_message_max are refused (1009),
 * data frames are written straight into the output buffer (one copy) and
 * control frames through wslay. Output: the subprotocol checks
 * ws_out_full(); native subscriptions of the connection pause at the log
 * above output_high_bytes like every connection's (fe_read.c), and reading
 * stops above output_pause_bytes.
 *
 * Liveness: when nothing arrived for [http] ws_ping_interval_ms the server
 * pings; nothing again for another interval closes the connection. A close
 * the peer does not answer within WS_CLOSE_WAIT_MS drops it.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <wslay/wslay.h>

#include "codec.h"
#include "config.h"
#include "err.h"
#include "fe_pages.h"
#include "http_int.h"
#include "log.h"
#include "ws.h"
#include "ws_int.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WS_CLOSE_WAIT_MS 5000

struct ws_session {
	struct fe_conn *c;
	wslay_event_context_ptr ctx;
	const struct ws_subproto *sp;
	void *state;
	struct event *timer;
	int64_t last_rx_ms;
	int64_t close_sent_ms;
	int ping_out;       /* a ping went out and nothing came back since */
	int opened;         /* sp->open succeeded: sp->close runs at the end */
	int finished;       /* fe_conn_finish called */
	/* messages wslay handed over while the frontend could take no request
	 * (pub ring full, inflight_max, output above the pause mark), in order;
	 * no more socket input is read meanwhile, so they are at most what
	 * wslay had buffered */
	struct held {
		struct held *next;
		enum ws_msg_type type;
		size_t len;
		uint8_t p[];
	} *held, **held_tail;
	struct event *retry_ev;  /* tries the held messages again */
};

static int blocked(const struct ws_session *s)
{
	const struct fe_conn *c = s->c;

	return c->fe->stall_frame || c->out_paused || c->npending >= c->fe->cfg->inflight_max;
}

/* Hand held messages to the subprotocol while the frontend takes them. */
static void held_run(struct ws_session *s)
{
	struct held *h;

	while ((h = s->held) && !s->c->dead && !s->finished && !blocked(s)) {
		s->held = h->next;
		if (!s->held)
			s->held_tail = &s->held;
		s->sp->message(s, h->type, h->p, h->len);
		free(h);
	}
	if (s->held && !s->c->dead && !s->finished) {
		struct timeval ms = {0, 1000};
		evtimer_add(s->retry_ev, &ms);
	}
}

/* One complete message: to the subprotocol now, or held behind the others. */
static void deliver(struct ws_session *s, enum ws_msg_type type, const uint8_t *p, size_t n)
{
	struct held *h;

	if (!s->held && !blocked(s)) {
		s->sp->message(s, type, p, n);
		return;
	}
	if (!(h = malloc(sizeof(*h) + n))) {
		ws_close(s, WS_CLOSE_INTERNAL, "out of memory");
		return;
	}
	h->next = NULL;
	h->type = type;
	h->len = n;
	memcpy(h->p, p, n);
	*s->held_tail = h;
	s->held_tail = &h->next;
	held_run(s);
}

/* The subprotocols, by path; the first of a path is its default. */
static const struct ws_subproto *const subprotos[] = {
    &ws_sluice_json,
    &ws_sluice_proto,
    &gql_ws_subproto,
};
#define NSUBPROTOS (sizeof(subprotos) / sizeof(subprotos[0]))

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
	return s->c;
}

const struct ws_subproto *ws_subproto(const struct ws_session *s)
{
	return s->sp;
}

static int64_t now_ms(void)
{
	return (int64_t)(time_mono_ns() / 1000000);
}

/* ---------- output ---------- */

static struct evbuffer *out_of(const struct ws_session *s)
{
	return bufferevent_get_output(s->c->bev);
}

size_t ws_out_pending(const struct ws_session *s)
{
	return evbuffer_get_length(out_of(s));
}

int ws_out_full(const struct ws_session *s)
{
	return ws_out_pending(s) >= s->c->fe->cfg->output_high_bytes;
}

static int may_send(const struct ws_session *s)
{
	return !s->c->dead && !s->finished && !wslay_event_get_close_sent(s->ctx);
}

/* A server frame header: FIN, opcode, unmasked length. */
static size_t frame_header(uint8_t *h, enum ws_msg_type type, size_t n)
{
	h[0] = 0x80 | (type == WS_TEXT ? WSLAY_TEXT_FRAME : WSLAY_BINARY_FRAME);
	if (n < 126) {
		h[1] = (uint8_t)n;
		return 2;
	}
	if (n <= 0xffff) {
		h[1] = 126;
		h[2] = (uint8_t)(n >> 8);
		h[3] = (uint8_t)n;
		return 4;
	}
	h[1] = 127;
	for (int i = 0; i < 8; i++)
		h[2 + i] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
	return 10;
}

int ws_send(struct ws_session *s, enum ws_msg_type type, const void *p, size_t n)
{
	uint8_t h[10];
	struct evbuffer *out;

	if (!may_send(s))
		return SL_ECLOSED;
	out = out_of(s);
	if (evbuffer_add(out, h, frame_header(h, type, n)) != 0 || evbuffer_add(out, p, n) != 0)
		return SL_ENOMEM;
	return SL_OK;
}

void ws_send_json(struct ws_session *s, json_t *j)
{
	char *txt = j ? json_dumps(j, JSON_COMPACT) : NULL;

	json_decref(j);
	if (!txt) {
		ws_close(s, WS_CLOSE_INTERNAL, "out of memory");
		return;
	}
	ws_send(s, WS_TEXT, txt, strlen(txt));
	free(txt);
}

int ws_send_buf(struct ws_session *s, enum ws_msg_type type, struct evbuffer *buf)
{
	uint8_t h[10];
	struct evbuffer *out;
	size_t n = evbuffer_get_length(buf);

	if (!may_send(s)) {
		evbuffer_drain(buf, n);
		return SL_ECLOSED;
	}
	out = out_of(s);
	if (evbuffer_add(out, h, frame_header(h, type, n)) != 0 || evbuffer_add_buffer(out, buf) != 0)
		return SL_ENOMEM;
	return SL_OK;
}

/* Write a close frame with code straight to the output (what wslay queued
 * is then never sent: the caller ends the connection). */
static void close_now(struct ws_session *s, uint16_t code)
{
	uint8_t f[4] = {0x80 | WSLAY_CONNECTION_CLOSE, 2, (uint8_t)(code >> 8), (uint8_t)code};

	evbuffer_add(out_of(s), f, sizeof(f));
}

/* Let wslay write what it queued (pongs, pings, closes); close the
 * connection once both closes have crossed. */
static void ws_pump(struct ws_session *s)
{
	if (s->c->dead || s->finished)
		return;
	if (wslay_event_want_write(s->ctx) && wslay_event_send(s->ctx) != 0) {
		s->finished = 1;
		fe_conn_close(s->c);
		return;
	}
	if (wslay_event_get_close_sent(s->ctx) && !s->close_sent_ms)
		s->close_sent_ms = now_ms();
	if (wslay_event_get_close_sent(s->ctx) && wslay_event_get_close_received(s->ctx)) {
		s->finished = 1;
		fe_conn_finish(s->c); /* flush the close frame, then close */
	}
}

void ws_close(struct ws_session *s, uint16_t code, const char *reason)
{
	size_t n = reason ? strlen(reason) : 0;

	if (!may_send(s))
		return;
	if (n > 123)
		n = 123;
	wslay_event_queue_close(s->ctx, code, (const uint8_t *)reason, n);
	ws_pump(s);
}

int ws_dispatch(struct ws_session *s, const Sluice__Frame *f)
{
	Sluice__Frame *heap;
	int rc;

	if (s->c->dead || s->finished)
		return SL_ECLOSED;
	/* the native path may keep a frame it cannot queue yet (ring full) and
	 * free it later: it gets a heap copy of its own */
	if ((rc = codec_frame_dup(f, &heap)) != SL_OK)
		return rc;
	if (!fe_conn_dispatch(s->c, heap))
		codec_frame_free(heap);
	return SL_OK;
}

/* ---------- wslay callbacks ---------- */

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *arg)
{
	struct ws_session *s = arg;
	int n;

	(void)flags;
	if (s->held || blocked(s)) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK); /* the frontend takes no request now */
		return -1;
	}
	n = evbuffer_remove(bufferevent_get_input(s->c->bev), buf, len);
	if (n <= 0) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	s->last_rx_ms = now_ms();
	s->ping_out = 0;
	return n;
}

static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags, void *arg)
{
	struct ws_session *s = arg;

	(void)flags;
	if (evbuffer_add(out_of(s), data, len) != 0) {
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
		return -1;
	}
	return (ssize_t)len;
}

static void msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *m, void *arg)
{
	struct ws_session *s = arg;

	(void)ctx;
	if (s->c->dead || s->finished || wslay_event_get_close_sent(s->ctx))
		return;
	switch (m->opcode) {
	case WSLAY_TEXT_FRAME:
		if (!utf8_valid(m->msg, m->msg_length)) {
			ws_close(s, WS_CLOSE_INVALID_DATA, "text message is not valid UTF-8");
			return;
		}
		deliver(s, WS_TEXT, m->msg, m->msg_length);
		return;
	case WSLAY_BINARY_FRAME:
		deliver(s, WS_BINARY, m->msg, m->msg_length);
		return;
	case WSLAY_CONNECTION_CLOSE:
		/* wslay queued an echo of this close; a 1-byte payload or a reason
		 * that is not UTF-8 is answered with the error instead */
		if (m->msg_length == 1 || (m->msg_length > 2 && !utf8_valid(m->msg + 2, m->msg_length - 2))) {
			close_now(s, m->msg_length == 1 ? WS_CLOSE_PROTOCOL : WS_CLOSE_INVALID_DATA);
			s->finished = 1;
			fe_conn_finish(s->c);
		}
		return;
	default:
		return; /* ping (answered by wslay), pong */
	}
}

static const struct wslay_event_callbacks callbacks = {
    .recv_callback = recv_cb,
    .send_callback = send_cb,
    .on_msg_recv_callback = msg_cb,
};

/* ---------- input, output, timer, end ---------- */

void ws_on_input(struct ws_session *s)
{
	struct fe_conn *c = s->c;

	if (c->dead || s->finished) {
		evbuffer_drain(bufferevent_get_input(c->bev), evbuffer_get_length(bufferevent_get_input(c->bev)));
		return;
	}
	held_run(s);
	while (!c->dead && !s->finished && !s->held && !blocked(s) && wslay_event_want_read(s->ctx) &&
	       evbuffer_get_length(bufferevent_get_input(c->bev)) > 0) {
		int r = wslay_event_recv(s->ctx);
		if (r != 0) {
			/* a frame wslay refuses outright (a control frame over 125
			 * bytes or fragmented, a length with the top bit set): it
			 * stops without a status, so the 1002 is written here */
			if (r != WSLAY_ERR_NOMEM && !wslay_event_get_close_sent(s->ctx))
				close_now(s, WS_CLOSE_PROTOCOL);
			s->finished = 1;
			fe_conn_finish(c);
			return;
		}
		ws_pump(s);
		if (evbuffer_get_length(out_of(s)) > c->fe->cfg->output_pause_bytes)
			c->out_paused = 1; /* a client that sends requests but does not read answers */
	}
	if (!wslay_event_want_read(s->ctx))
		evbuffer_drain(bufferevent_get_input(c->bev), evbuffer_get_length(bufferevent_get_input(c->bev)));
	ws_pump(s);
	fe_conn_update_read(c);
}

void ws_on_frame(struct ws_session *s, const Sluice__Frame *f)
{
	if (s->c->dead || s->finished)
		return;
	s->sp->frame(s, f);
}

void ws_on_writable(struct ws_session *s)
{
	if (!s->c->dead && !s->finished && s->sp->writable)
		s->sp->writable(s);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ws_session *s = arg;
	const struct config *cfg = s->c->fe->cfg;
	int64_t now = now_ms();

	(void)fd;
	(void)what;
	if (s->c->dead || s->finished)
		return;
	if (s->close_sent_ms && now - s->close_sent_ms >= WS_CLOSE_WAIT_MS) {
		s->finished = 1;
		fe_conn_close(s->c); /* the peer never answered our close */
		return;
	}
	if (now - s->last_rx_ms >= (int64_t)cfg->ws_ping_interval_ms) {
		if (s->ping_out) {
			s->finished = 1;
			log_debug("websocket: no answer to a ping within %u ms; closing", cfg->ws_ping_interval_ms);
			fe_conn_close(s->c);
			return;
		}
		struct wslay_event_msg ping = {WSLAY_PING, (const uint8_t *)"", 0};
		if (wslay_event_queue_msg(s->ctx, &ping) == 0) {
			s->ping_out = 1;
			s->last_rx_ms = now;
			ws_pump(s);
		}
	}
}

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ws_session *s = arg;

	(void)fd;
	(void)what;
	if (s->c->dead || s->finished)
		return;
	ws_on_input(s); /* the held messages first, then what the socket brought */
}

void ws_free(struct ws_session *s)
{
	if (!s)
		return;
	while (s->held) {
		struct held *h = s->held;
		s->held = h->next;
		free(h);
	}
	if (s->retry_ev)
		event_free(s->retry_ev);
	if (s->opened && s->sp->close)
		s->sp->close(s);
	if (s->timer)
		event_free(s->timer);
	if (s->ctx)
		wslay_event_context_free(s->ctx);
	free(s);
}

/* ---------- the handshake ---------- */

/* 1 if the comma-separated header value v holds token tok (any case). */
static int has_token(const char *v, size_t n, const char *tok)
{
	size_t tl = strlen(tok), i = 0;

	while (i < n) {
		while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		size_t j = i;
		while (j < n && v[j] != ',')
			j++;
		size_t e = j;
		while (e > i && (v[e - 1] == ' ' || v[e - 1] == '\t'))
			e--;
		if (e - i == tl && strncasecmp(v + i, tok, tl) == 0)
			return 1;
		i = j;
	}
	return 0;
}

int ws_is_upgrade(const struct http_req *r)
{
	size_t n;
	const char *v = http_req_header(r, "Upgrade", &n);

	return v && has_token(v, n, "websocket");
}

/* Origin allowed by [http] ws_origins ("" or "*": any; no Origin: not a browser). */
static int origin_allowed(const struct config *cfg, const char *o, size_t n)
{
	const char *list = cfg->http_ws_origins;
	char want[512];

	if (!o || !list[0] || has_token(list, strlen(list), "*"))
		return 1;
	if (n >= sizeof(want))
		return 0;
	memcpy(want, o, n);
	want[n] = 0;
	return has_token(list, strlen(list), want);
}

/* The subprotocol for path: the first offered one it serves, the path's
 * default when none is offered, NULL when those offered are all foreign. */
static const struct ws_subproto *choose(const char *path, size_t path_len, const char *offer, size_t n)
{
	const struct ws_subproto *dflt = NULL;

	for (size_t i = 0; i < NSUBPROTOS; i++) {
		const struct ws_subproto *sp = subprotos[i];
		if (strlen(sp->path) != path_len || memcmp(sp->path, path, path_len) != 0)
			continue;
		if (!dflt)
			dflt = sp;
	}
	if (!offer)
		return dflt;
	/* the client's order is its preference */
	size_t i = 0;
	while (i < n) {
		while (i < n && (offer[i] == ' ' || offer[i] == '\t' || offer[i] == ','))
			i++;
		size_t j = i;
		while (j < n && offer[j] != ',' && offer[j] != ' ' && offer[j] != '\t')
			j++;
		for (size_t k = 0; j > i && k < NSUBPROTOS; k++) {
			const struct ws_subproto *sp = subprotos[k];
			if (strlen(sp->path) == path_len && memcmp(sp->path, path, path_len) == 0 &&
			    strlen(sp->name) == j - i && memcmp(sp->name, offer + i, j - i) == 0)
				return sp;
		}
		i = j;
	}
	return NULL;
}

static void refuse_upgrade(struct http_req *r, int status, const char *detail)
{
	if (status == 426) {
		http_add_header(r, "Upgrade", "websocket");
		http_add_header(r, "Sec-WebSocket-Version", "13");
	}
	http_problem(r, status, status == 403 ? SL_EINVAL : SL_EMALFORMED, detail);
}

void ws_on_upgrade(struct http_req *r)
{
	struct fe_conn *c = r->conn;
	const struct config *cfg = c->fe->cfg;
	size_t n_conn = 0, n_ver = 0, n_key = 0, n_origin = 0, n_proto = 0;
	const char *conn = http_req_header(r, "Connection", &n_conn);
	const char *ver = http_req_header(r, "Sec-WebSocket-Version", &n_ver);
	const char *key = http_req_header(r, "Sec-WebSocket-Key", &n_key);
	const char *origin = http_req_header(r, "Origin", &n_origin);
	const char *offer = http_req_header(r, "Sec-WebSocket-Protocol", &n_proto);
	const struct ws_subproto *sp;
	uint8_t raw[64], digest[SHA_DIGEST_LENGTH];
	char accept[64], kbuf[64 + sizeof(WS_GUID)];
	struct ws_session *s;

	if (!ws_is_upgrade(r) || !conn || !has_token(conn, n_conn, "upgrade")) {
		refuse_upgrade(r, 426, "this resource speaks WebSocket: send Upgrade: websocket and Connection: Upgrade");
		return;
	}
	if (!ver || n_ver != 2 || memcmp(ver, "13", 2) != 0) {
		refuse_upgrade(r, 426, "only WebSocket version 13 is supported");
		return;
	}
	if (r->method != HTTP_GET) {
		refuse_upgrade(r, 400, "a WebSocket handshake is a GET");
		return;
	}
	/* a 16-byte nonce in base64 is 24 characters ending in "==" */
	if (!key || n_key != 24 || EVP_DecodeBlock(raw, (const unsigned char *)key, 24) != 18 || key[22] != '=' ||
	    key[23] != '=') {
		refuse_upgrade(r, 400, "Sec-WebSocket-Key must be 16 bytes in base64");
		return;
	}
	if (!origin_allowed(cfg, origin, n_origin)) {
		refuse_upgrade(r, 403, "this Origin is not in [http] ws_origins");
		return;
	}
	if (!(sp = choose(r->path, r->path_len, offer, n_proto))) {
		refuse_upgrade(r, 400, "none of the offered subprotocols is served here (docs/websocket.md)");
		return;
	}
	if (!http_req_alone(r)) {
		refuse_upgrade(r, 400, "a WebSocket handshake must not follow unanswered requests");
		return;
	}
	memcpy(kbuf, key, 24);
	memcpy(kbuf + 24, WS_GUID, sizeof(WS_GUID) - 1);
	SHA1((const unsigned char *)kbuf, 24 + sizeof(WS_GUID) - 1, digest);
	EVP_EncodeBlock((unsigned char *)accept, digest, SHA_DIGEST_LENGTH);

	if (!(s = calloc(1, sizeof(*s))) || wslay_event_context_server_init(&s->ctx, &callbacks, s) != 0 ||
	    !(s->timer = event_new(c->fe->base, -1, EV_PERSIST, timer_cb, s)) ||
	    !(s->retry_ev = evtimer_new(c->fe->base, retry_cb, s))) {
		ws_free(s);
		http_problem(r, 503, SL_ENOMEM, "out of memory");
		return;
	}
	s->c = c;
	s->sp = sp;
	s->held_tail = &s->held;
	s->last_rx_ms = now_ms();
	wslay_event_config_set_max_recv_msg_length(s->ctx, cfg->ws_message_max);

	struct evbuffer *out = bufferevent_get_output(c->bev);
	evbuffer_add_printf(out,
	                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
	                    "Sec-WebSocket-Accept: %s\r\n",
	                    accept);
	if (offer)
		evbuffer_add_printf(out, "Sec-WebSocket-Protocol: %s\r\n", sp->name);
	evbuffer_add(out, "\r\n", 2);
	http_upgraded(r, s); /* the request is gone; the connection is the session's */

	int tick = cfg->ws_ping_interval_ms / 4 ? (int)(cfg->ws_ping_interval_ms / 4) : 1;
	struct timeval tv = {tick / 1000, (tick % 1000) * 1000};
	event_add(s->timer, &tv);
	if (sp->open(s) != SL_OK) {
		ws_close(s, WS_CLOSE_INTERNAL, "could not start the session");
		return;
	}
	s->opened = 1;
}
