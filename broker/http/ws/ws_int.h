/*
 * ws_int.h: how the HTTP server and the WebSocket layer (ws.c) call each
 * other, and the subprotocols ws.c lists. Private to broker/http.
 */
#ifndef SLUICE_WS_INT_H
#define SLUICE_WS_INT_H

#include "sluice.pb-c.h"
#include "ws.h"

struct http_req;

/* The subprotocols (ws_sluice.c, gql_ws.c). */
extern const struct ws_subproto ws_sluice_json;
extern const struct ws_subproto ws_sluice_proto;
extern const struct ws_subproto gql_ws_subproto;

/* 1 if the request asks for Upgrade: websocket. */
int ws_is_upgrade(const struct http_req *r);
/* GET /v1/ws, /v1/graphql with Upgrade: answer 101 and start a session, or refuse. */
void ws_on_upgrade(struct http_req *r);
/* The connection's input (after 101). */
void ws_on_input(struct ws_session *s);
/* fe_send on a session's connection. */
void ws_on_frame(struct ws_session *s, const Sluice__Frame *f);
/* The output drained below output_low_bytes. */
void ws_on_writable(struct ws_session *s);
/* The connection is being freed. */
void ws_free(struct ws_session *s);

#endif
