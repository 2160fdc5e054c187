/*
 * fe_http.h: the frontend's HTTP/1.1 server (REST routes and Server-Sent
 * Events), as frontend.c sees it. It runs on the frontend's own libevent
 * loop and shares its ring, pending table, read path and limits: an HTTP
 * connection is a struct fe_conn with `http` set (broker/http/http_int.h).
 *
 * Hooks for other parts of the frontend (metrics): fe_http_observe is
 * called once per answered request, fe_http_counts gives the connection
 * counts. Extending the router: add a line to the table in http_route.c.
 */
#ifndef SLUICE_FE_HTTP_H
#define SLUICE_FE_HTTP_H

#include <stdint.h>

#include "sluice.pb-c.h"

struct fe;
struct fe_conn;
struct fe_fanout_entry;

/* Accept HTTP connections on the inherited listening socket fd. */
int fe_http_setup(struct fe *fe, int fd);
/* Stop accepting (shutdown began). */
void fe_http_stop(struct fe *fe);
/* Free the listener and timers (connections are gone by then). */
void fe_http_teardown(struct fe *fe);

/* fe_send on an HTTP connection: render f as the answer of its request. */
void fe_http_on_frame(struct fe_conn *c, const Sluice__Frame *f);
/* A Delivery of e's messages on c, if c is streaming Server-Sent Events:
 * rendered once per entry and format, referenced per stream. Returns 0 if
 * c is not an event stream (the caller sends the frame with fe_send). */
int fe_http_sse_deliver(struct fe_conn *c, struct fe_fanout_entry *e);
/* Parse and handle what the connection has buffered. */
void fe_http_process_input(struct fe_conn *c);
/* 1 if the HTTP layer wants input now (pipeline room, not streaming). */
int fe_http_read_ok(const struct fe_conn *c);
/* The connection's output drained below output_low_bytes. */
void fe_http_writable(struct fe_conn *c);
/* Release the HTTP state of a connection being freed (by the reaper). */
void fe_http_conn_free(struct fe_conn *c);

/* Metrics hook: one call per answered request, with the route pattern
 * ("/v1/topics/{topic}/messages", or "unmatched") and the status sent. */
void fe_http_observe(struct fe *fe, const char *route, int status);
/* HTTP connections and event streams open on this frontend now. */
void fe_http_counts(const struct fe *fe, uint32_t *http_conns, uint32_t *sse_streams);

#endif
