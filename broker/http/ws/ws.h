/*
 * ws.h: WebSocket sessions (RFC 6455) on the HTTP listener, and the
 * subprotocols that run on them.
 *
 * A GET with `Upgrade: websocket` on /v1/ws or /v1/graphql is answered
 * 101 by the HTTP server, after which the connection (a struct fe_conn) is a
 * WebSocket session: wslay does the framing on the connection's
 * bufferevent, and each complete message goes to the subprotocol the
 * handshake chose. A subprotocol turns messages into native request frames
 * (ws_dispatch, the same path HTTP uses: ring, pending table, read path,
 * limits) and renders the native frames that come back (answers, Delivery
 * pushes, errors) as messages of its own.
 *
 * Subprotocols: sluice.v1.json and sluice.v1.proto (ws_sluice.c) on
 * /v1/ws, graphql-transport-ws (broker/http/graphql/gql_ws.c) on /v1/graphql.
 */
#ifndef SLUICE_WS_H
#define SLUICE_WS_H

#include <stddef.h>
#include <stdint.h>

#include "sluice.pb-c.h"

struct ws_session;
struct evbuffer;
struct fe_conn;

enum ws_msg_type { WS_TEXT = 1, WS_BINARY = 2 };

/* RFC 6455 close codes the server uses. */
#define WS_CLOSE_NORMAL 1000
#define WS_CLOSE_GOING_AWAY 1001
#define WS_CLOSE_PROTOCOL 1002
#define WS_CLOSE_UNSUPPORTED 1003
#define WS_CLOSE_INVALID_DATA 1007 /* invalid UTF-8 in a text message */
#define WS_CLOSE_POLICY 1008
#define WS_CLOSE_TOO_BIG 1009
#define WS_CLOSE_INTERNAL 1011

struct ws_subproto {
	const char *name;  /* Sec-WebSocket-Protocol token, e.g. "graphql-transport-ws" */
	const char *path;  /* the route it is offered on: "/v1/ws" or "/v1/graphql" */
	/* After 101: allocate state (ws_set_state). 0, or an sl_err (closed with 1011). */
	int (*open)(struct ws_session *s);
	/* One complete message; text messages are valid UTF-8 already. A
	 * violation of the subprotocol is the handler's to answer (an error
	 * message, or ws_close with its own code). */
	void (*message)(struct ws_session *s, enum ws_msg_type type, const uint8_t *p, size_t n);
	/* A native frame for this session: the answer to a frame sent with
	 * ws_dispatch (same id), a Delivery push, or an Error. */
	void (*frame)(struct ws_session *s, const Sluice__Frame *f);
	/* The session's output drained below the low watermark (may be NULL). */
	void (*writable)(struct ws_session *s);
	/* The session is going away (closed, dead peer, shutdown): free state.
	 * Native subscriptions of the connection are freed by the frontend. */
	void (*close)(struct ws_session *s);
};

void *ws_state(const struct ws_session *s);
void ws_set_state(struct ws_session *s, void *state);
struct fe_conn *ws_conn(const struct ws_session *s);
/* The subprotocol the handshake chose. */
const struct ws_subproto *ws_subproto(const struct ws_session *s);

/* Send one message (copied). 0, or an sl_err (session closing). */
int ws_send(struct ws_session *s, enum ws_msg_type type, const void *p, size_t n);
/* Send j (taken: freed here) as one text message, compact JSON; NULL or
 * out of memory closes the session with 1011. */
struct json_t;
void ws_send_json(struct ws_session *s, struct json_t *j);
/* Send one message whose bytes are all of buf (drained from it). */
int ws_send_buf(struct ws_session *s, enum ws_msg_type type, struct evbuffer *buf);
/* Start the close handshake with code and reason (the reason at most 123 bytes). */
void ws_close(struct ws_session *s, uint16_t code, const char *reason);
/* Bytes queued for output and not yet written to the socket. */
size_t ws_out_pending(const struct ws_session *s);
/* 1 while the output is above the high watermark: stop producing (pushes
 * are paused at the log for native subscriptions of the connection). */
int ws_out_full(const struct ws_session *s);

/* Hand a native request frame to the frontend as if it came from a native
 * connection. The caller chooses f->id (non-zero, unique among the
 * session's outstanding requests); the answer comes to frame() with it.
 * f is not kept. 0, or an sl_err. */
int ws_dispatch(struct ws_session *s, const Sluice__Frame *f);

#endif
