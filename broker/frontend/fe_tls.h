/*
 * fe_tls.h: TLS on the client listeners (native and HTTP) of a frontend.
 *
 * With [tls] cert and key set, every accepted connection is wrapped in a
 * libevent OpenSSL bufferevent in the accepting state; without them the
 * frontend keeps plain socket bufferevents. The server SSL_CTX is built from
 * the files at start and again on SIGHUP: new connections take the new
 * context, connections already open keep theirs (each SSL holds a reference
 * to the context it was made from), so a reload drops nothing. The context
 * is made by tls_server_ctx_new (common/tls.h).
 */
#ifndef SLUICE_FE_TLS_H
#define SLUICE_FE_TLS_H

#include <stddef.h>

struct bufferevent;
struct config;
struct event_base;
struct ssl_ctx_st; /* OpenSSL's SSL_CTX */

/* Release a context (NULL is fine); connections made from it keep it alive. */
void fe_tls_ctx_free(struct ssl_ctx_st *ctx);

/* A bufferevent for accepted socket fd: TLS from ctx when ctx is set, else a
 * plain socket. It owns fd (closed when freed). NULL on failure; fd is then
 * still the caller's to close. */
struct bufferevent *fe_tls_bev_new(struct event_base *base, int fd, struct ssl_ctx_st *ctx);

/* Half-close the write side of bev once its output is flushed: a TLS
 * close_notify first (so the peer knows nothing was cut off), then a TCP
 * shutdown(SHUT_WR). */
void fe_tls_shutdown_write(struct bufferevent *bev);

#endif
