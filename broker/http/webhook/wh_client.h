/*
 * wh_client.h: the HTTP/1.1 POST client that delivers webhooks, on a
 * libevent loop the caller owns (the frontend's). One wh_post is one
 * attempt: resolve, connect (refusing private addresses), TLS, send the
 * request, read the status and the headers, read and discard the body.
 * Whether and when to try again is the caller's decision (the delivery
 * scheduler); this module only reports what happened (struct wh_result).
 *
 * Connections: a pool keeps HTTP/1.1 keep-alive connections per (scheme,
 * host, port), at most conns_per_host_max of them; further requests to that
 * destination wait for a free connection (their timeout runs meanwhile). An
 * idle connection is closed after idle_ms, or as soon as the server closes
 * it or sends bytes nobody asked for. A request sent on a reused connection
 * that fails before any response byte arrives (the server closed it just
 * as it was reused) is sent once more on a new connection. Requests are not
 * pipelined. A destination entry lives while it has connections or waiting
 * requests (idle ones are swept when a new destination is added).
 *
 * SSRF guard: every address a name resolves to (and an address given in
 * the URL) is checked with wh_addr_is_private right before connecting; if
 * any is private the request fails with WH_EPRIVATE naming it, unless
 * cfg.allow_private. The check is on the resolved address, so a public name
 * that points at 127.0.0.1 is refused too. Redirects are never followed
 * (the spec counts a 3xx as a failure).
 *
 * HTTPS: OpenSSL 3 through bufferevent_openssl, TLS 1.2 or later, the peer
 * certificate verified against cfg.ca_file (or the system's store), the
 * host name (or IP address) checked against the certificate, SNI sent for
 * names. A verification failure is WH_ETLS_VERIFY with OpenSSL's reason.
 *
 * Callbacks: every request gets exactly one wh_done_cb, unless it is
 * cancelled (wh_req_cancel) or its pool is freed first; it is never called
 * from inside wh_post but from the event loop. Inside a callback, wh_post,
 * wh_req_cancel (of other requests) and wh_pool_free are allowed.
 *
 * The process must ignore SIGPIPE (the frontend does): a write to a
 * connection the server closed is then an error of that request.
 *
 * Delivery succeeded iff err == SL_OK and 200 <= status <= 299.
 */
#ifndef SLUICE_WH_CLIENT_H
#define SLUICE_WH_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "wh_url.h"

struct event_base;
struct evdns_base;
struct wh_pool;
struct wh_req;

#define WH_CONNS_PER_HOST_DEFAULT 4
#define WH_IDLE_MS_DEFAULT 30000
#define WH_RESPONSE_BYTES_DEFAULT (64 * 1024)
#define WH_TIMEOUT_MS_DEFAULT 30000  /* a timeout_ms of 0 */
#define WH_HEADERS_MAX 32            /* caller's headers per request */
#define WH_HEADER_BYTES_MAX 4096     /* one caller header, name and value */
#define WH_BODY_BYTES_MAX (16u << 20)

/* Errors of a delivery attempt beyond common/err.h (which gives SL_OK,
 * SL_ETIMEOUT: the timeout passed; SL_ECLOSED: the server closed the
 * connection before the response was complete; SL_EIO: a read or write
 * error after connecting; SL_ENOMEM). */
enum wh_err {
	WH_EDNS = 200,      /* the name did not resolve */
	WH_EPRIVATE,        /* a resolved address is private and allow_private is 0 */
	WH_ECONNECT,        /* no address accepted the TCP connection */
	WH_ETLS,            /* TLS handshake failed (protocol, version, closed) */
	WH_ETLS_VERIFY,     /* the server's certificate did not verify */
	WH_EPROTO,          /* the response is not HTTP/1.x */
};

/* Short static description of an SL_* or WH_* code; never NULL. */
const char *wh_strerror(int err);

struct wh_pool_cfg {
	int allow_private;          /* connect to private addresses too (tests, on-premises hooks) */
	const char *ca_file;        /* PEM bundle of trusted CAs; NULL: the system's default store */
	uint32_t conns_per_host_max;/* 0: WH_CONNS_PER_HOST_DEFAULT */
	uint32_t idle_ms;           /* close a keep-alive connection idle this long; 0: WH_IDLE_MS_DEFAULT */
	size_t response_bytes_max;  /* response body read (and discarded) up to this, then the
	                               connection is closed; 0: WH_RESPONSE_BYTES_DEFAULT */
	const char *user_agent;     /* NULL: "sluice-webhook/<version>" */
	struct evdns_base *dns;     /* NULL: the pool makes one on first use (resolv.conf, hosts) */
};

struct wh_header {
	const char *name;  /* a token (e.g. "webhook-id"); not Host, Content-Length,
	                      Content-Type, Connection or Transfer-Encoding */
	const char *value; /* no CR, LF or NUL */
};

struct wh_result {
	int status;             /* HTTP status, 0 if none arrived */
	int err;                /* SL_OK or the failure (enum wh_err, SL_ETIMEOUT, SL_ECLOSED, ...) */
	int64_t retry_after_ms; /* from Retry-After (delta seconds or HTTP-date), -1 if absent or invalid */
	char error[128];        /* human-readable detail, "" on success */
};

/* res is valid during the call only; the request is freed when it returns. */
typedef void (*wh_done_cb)(const struct wh_result *res, void *arg);

/* A pool on base (which must outlive it). cfg is copied (strings too).
 * NULL on allocation failure or when cfg->ca_file cannot be loaded. */
struct wh_pool *wh_pool_new(struct event_base *base, const struct wh_pool_cfg *cfg);

/* Close every connection and free the pool. Pending requests are dropped
 * without their callbacks (as with wh_req_cancel). Safe inside a callback.
 * A name lookup still in flight keeps a little memory (and the evdns base
 * the pool made) until it calls back on the loop. */
void wh_pool_free(struct wh_pool *p);

/* Start one POST of body[0..blen) to u with the caller's headers on top of
 * Host, User-Agent, Content-Type: application/json, Content-Length and
 * Connection: keep-alive. Everything is copied: u, hdrs and body may go
 * away on return. timeout_ms (0: WH_TIMEOUT_MS_DEFAULT) covers waiting for
 * a connection, resolving, connecting, TLS, writing and reading the whole
 * response. On SL_OK, cb will be called later (see above) and *out (if
 * out) is a handle for wh_req_cancel, valid until cb is called. SL_EINVAL
 * for a bad header or an over-long body, SL_ENOMEM; then cb is not called. */
int wh_post(struct wh_pool *p, const struct wh_url *u, const struct wh_header *hdrs, size_t nhdrs,
            const uint8_t *body, size_t blen, uint32_t timeout_ms, wh_done_cb cb, void *arg, struct wh_req **out);

/* Drop a request whose callback has not been called yet: its callback will
 * not be called, a connection it was using is closed. Not for a request
 * whose callback is running or has run. */
void wh_req_cancel(struct wh_req *r);

/* Open connections (idle, busy or connecting) of the pool; for tests and metrics. */
unsigned wh_pool_conns(const struct wh_pool *p);

#endif
