/*
 * wh_client.c: the webhook POST client (see wh_client.h).
 *
 *   wh_pool   the SSL_CTX, the evdns base, destinations, finished requests
 *   wh_host   one (scheme, host, port): its connections and waiting requests
 *   wh_conn   one TCP (or TLS) connection: connecting, busy with one
 *             request, or idle (keep-alive)
 *   wh_req    one attempt: the request bytes, a deadline, the result
 *
 * A request starts from a zero-delay event (never inside wh_post) and ends
 * on the pool's done list; callbacks are delivered from one event of their
 * own, so no callback runs inside a bufferevent callback and a callback may
 * post, cancel or free the pool. A connection is freed in place (libevent
 * defers freeing a bufferevent whose callback is running); after that the
 * code that freed it returns without touching it.
 *
 * Name lookups: evdns_getaddrinfo calls back at least once even when it is
 * cancelled, and sometimes before it returns (hosts file); a small ticket
 * (struct wh_lookup) lives until that call, so a cancelled lookup never
 * reaches a freed connection or pool.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <http_parser.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "err.h"
#include "wh_client.h"
#include "wh_retry.h"

#ifndef SLUICE_VERSION
#define SLUICE_VERSION "0"
#endif

enum conn_state { CS_CONNECTING, CS_BUSY, CS_IDLE };
enum req_state { RS_NEW, RS_WAITING, RS_ACTIVE, RS_DONE };

struct wh_lookup {
	struct wh_pool *pool;
	struct wh_conn *conn; /* NULL once the connection gave up on it */
	struct evdns_getaddrinfo_request *r;
	int in_call, answered; /* answered from inside evdns_getaddrinfo */
};

struct wh_host {
	TAILQ_ENTRY(wh_host) link;
	struct wh_pool *pool;
	int https, is_ip;
	uint16_t port;
	char name[WH_HOST_BYTES_MAX + 1];
	TAILQ_HEAD(, wh_conn) conns;
	unsigned nconns;
	TAILQ_HEAD(, wh_req) waiting;
};

struct wh_conn {
	TAILQ_ENTRY(wh_conn) link;
	struct wh_host *host;
	struct wh_req *req; /* NULL when idle */
	enum conn_state state;
	struct bufferevent *bev;
	SSL *ssl; /* owned by bev */
	struct wh_lookup *lookup;
	struct evutil_addrinfo *ai, *ai_next;
	struct event *idle_ev;
	char addr[WH_HOST_BYTES_MAX + 10]; /* the address being tried (or the host), for messages */
	int last_errno;
	int used;     /* has completed an exchange: the next one is on a reused connection */
	int got_byte; /* a byte of the response to the current request arrived */
	/* response parsing */
	http_parser hp;
	int complete, over_limit, in_value, hdr_is_ra;
	size_t body_bytes, hname_len, ra_len;
	char hname[16];
	char ra[64];
};

struct wh_req {
	TAILQ_ENTRY(wh_req) link; /* host->waiting or pool->done */
	TAILQ_ENTRY(wh_req) all;
	struct wh_pool *pool;
	struct wh_host *host;
	struct wh_conn *conn;
	enum req_state state;
	int https, is_ip;
	uint16_t port;
	char hostname[WH_HOST_BYTES_MAX + 1];
	uint8_t *wire;
	size_t wire_len;
	uint32_t timeout_ms;
	struct event *start_ev, *timer;
	wh_done_cb cb;
	void *arg;
	int retried, fresh_only;
	struct wh_result res;
};

struct wh_pool {
	struct event_base *base;
	struct evdns_base *dns;
	int own_dns;
	SSL_CTX *ssl;
	int allow_private;
	unsigned conns_max;
	uint32_t idle_ms;
	size_t resp_max;
	char *user_agent;
	TAILQ_HEAD(, wh_host) hosts;
	TAILQ_HEAD(, wh_req) done;
	TAILQ_HEAD(, wh_req) reqs;
	struct event *done_ev;
	int delivering, free_requested, destroying;
	unsigned lookups; /* tickets not called back yet */
	unsigned nconns;
};

static void host_pump(struct wh_host *h);
static void conn_connect_next(struct wh_conn *c);
static void req_dispatch(struct wh_req *r);

const char *wh_strerror(int err)
{
	switch (err) {
	case WH_EDNS:
		return "name resolution failed";
	case WH_EPRIVATE:
		return "private address refused";
	case WH_ECONNECT:
		return "connection failed";
	case WH_ETLS:
		return "TLS handshake failed";
	case WH_ETLS_VERIFY:
		return "TLS certificate verification failed";
	case WH_EPROTO:
		return "malformed HTTP response";
	default:
		return sl_strerror(err);
	}
}

/* ---- requests: finishing and freeing ---- */

static void req_detach(struct wh_req *r)
{
	if (r->state == RS_WAITING)
		TAILQ_REMOVE(&r->host->waiting, r, link);
	else if (r->state == RS_DONE)
		TAILQ_REMOVE(&r->pool->done, r, link);
	if (r->conn)
		r->conn->req = NULL;
	r->conn = NULL;
}

static void req_free(struct wh_req *r)
{
	req_detach(r);
	TAILQ_REMOVE(&r->pool->reqs, r, all);
	event_free(r->start_ev);
	event_free(r->timer);
	free(r->wire);
	free(r);
}

/* The result is set: queue the callback. r no longer has a connection. */
static void req_finish(struct wh_req *r, int err, int status, const char *fmt, ...)
{
	va_list ap;

	req_detach(r);
	evtimer_del(r->timer);
	r->res.err = err;
	r->res.status = status;
	r->res.error[0] = 0;
	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(r->res.error, sizeof r->res.error, fmt, ap);
		va_end(ap);
	}
	r->state = RS_DONE;
	TAILQ_INSERT_TAIL(&r->pool->done, r, link);
	event_active(r->pool->done_ev, EV_TIMEOUT, 0);
}

static void pool_destroy(struct wh_pool *p);

/* the pool's done_ev: every finished request's callback, in order */
static void pool_done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct wh_pool *p = arg;
	struct wh_req *r;

	p->delivering = 1;
	while (!p->free_requested && (r = TAILQ_FIRST(&p->done))) {
		struct wh_result res = r->res;
		wh_done_cb cb = r->cb;
		void *cb_arg = r->arg;
		req_free(r);
		cb(&res, cb_arg);
	}
	p->delivering = 0;
	if (p->free_requested)
		pool_destroy(p);
}

/* ---- connections ---- */

static void conn_close(struct wh_conn *c)
{
	struct wh_host *h = c->host;

	if (c->req)
		c->req->conn = NULL;
	if (c->lookup) {
		c->lookup->conn = NULL;
		if (c->lookup->r)
			evdns_getaddrinfo_cancel(c->lookup->r);
	}
	if (c->bev)
		bufferevent_free(c->bev);
	if (c->ai)
		evutil_freeaddrinfo(c->ai);
	event_free(c->idle_ev);
	TAILQ_REMOVE(&h->conns, c, link);
	h->nconns--;
	h->pool->nconns--;
	free(c);
}

/* Close c and let a waiting request have its slot. */
static void conn_close_pump(struct wh_conn *c)
{
	struct wh_host *h = c->host;

	conn_close(c);
	host_pump(h);
}

static void conn_idle_cb(evutil_socket_t fd, short what, void *arg)
{
	conn_close_pump(arg);
}

/* The exchange is over: keep c for the next request or close it. */
static void conn_release(struct wh_conn *c, int reusable)
{
	struct timeval tv;

	c->req = NULL;
	if (!reusable) {
		conn_close_pump(c);
		return;
	}
	c->state = CS_IDLE;
	c->used = 1;
	tv.tv_sec = c->host->pool->idle_ms / 1000;
	tv.tv_usec = (c->host->pool->idle_ms % 1000) * 1000;
	evtimer_add(c->idle_ev, &tv);
	bufferevent_enable(c->bev, EV_READ); /* to see the server close it */
	host_pump(c->host);
}

/* A failure on a connection with a request: retry once on a new
 * connection when the reused one died before answering, else report. */
static void conn_fail(struct wh_conn *c, int err, const char *what)
{
	struct wh_req *r = c->req;
	int status = c->hp.status_code && c->got_byte ? (int)c->hp.status_code : 0;

	if (r && c->used && !c->got_byte && !r->retried) {
		r->retried = 1;
		r->fresh_only = 1;
		conn_close(c);
		req_dispatch(r);
		return;
	}
	if (r)
		req_finish(r, err, status, "%s (%s)", what, c->addr);
	conn_close_pump(c);
}

/* ---- response parsing (libhttp-parser callbacks) ---- */

static int hp_message_begin(http_parser *hp)
{
	struct wh_conn *c = hp->data;

	c->in_value = c->hdr_is_ra = 0;
	c->hname_len = c->ra_len = c->body_bytes = 0;
	return 0;
}

static int hp_header_field(http_parser *hp, const char *at, size_t n)
{
	struct wh_conn *c = hp->data;

	if (c->in_value) {
		c->in_value = 0;
		c->hname_len = 0;
	}
	if (c->hname_len + n < sizeof c->hname)
		memcpy(c->hname + c->hname_len, at, n);
	c->hname_len += n;
	return 0;
}

static int hp_header_value(http_parser *hp, const char *at, size_t n)
{
	struct wh_conn *c = hp->data;

	if (!c->in_value) {
		c->in_value = 1;
		c->hdr_is_ra = c->hname_len == 11 && strncasecmp(c->hname, "retry-after", 11) == 0;
		if (c->hdr_is_ra)
			c->ra_len = 0;
	}
	if (!c->hdr_is_ra || c->ra_len >= sizeof c->ra)
		return 0;
	if (c->ra_len + n >= sizeof c->ra) {
		c->ra_len = sizeof c->ra; /* too long to be valid: marks it invalid */
		return 0;
	}
	memcpy(c->ra + c->ra_len, at, n);
	c->ra_len += n;
	return 0;
}

static int hp_body(http_parser *hp, const char *at, size_t n)
{
	struct wh_conn *c = hp->data;

	c->body_bytes += n;
	if (c->body_bytes > c->host->pool->resp_max) {
		c->over_limit = 1;
		return -1; /* stops the parser; the connection is closed */
	}
	return 0;
}

static int hp_message_complete(http_parser *hp)
{
	struct wh_conn *c = hp->data;

	if (hp->status_code >= 100 && hp->status_code < 200)
		return 0; /* an interim response (100 Continue): the real one follows */
	c->complete = 1;
	http_parser_pause(hp, 1);
	return 0;
}

static const http_parser_settings hp_settings = {
	.on_message_begin = hp_message_begin,
	.on_header_field = hp_header_field,
	.on_header_value = hp_header_value,
	.on_body = hp_body,
	.on_message_complete = hp_message_complete,
};

/* The response is in (complete, or its body over the limit). */
static void conn_response_done(struct wh_conn *c)
{
	struct wh_req *r = c->req;
	int keep = c->complete && !c->over_limit && http_should_keep_alive(&c->hp) &&
	           evbuffer_get_length(bufferevent_get_input(c->bev)) == 0 &&
	           evbuffer_get_length(bufferevent_get_output(c->bev)) == 0;
	int64_t ra = -1;
	struct timeval now;

	if (c->ra_len > 0 && c->ra_len < sizeof c->ra) {
		evutil_gettimeofday(&now, NULL);
		if (wh_retry_after_parse(c->ra, c->ra_len, (int64_t)now.tv_sec * 1000 + now.tv_usec / 1000, &ra) != SL_OK)
			ra = -1;
	}
	r->res.retry_after_ms = ra;
	req_finish(r, SL_OK, (int)c->hp.status_code, NULL);
	conn_release(c, keep);
}

static void conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct wh_conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	if (c->state != CS_BUSY || !c->req) {
		conn_close_pump(c); /* bytes nobody asked for on an idle connection */
		return;
	}
	while (evbuffer_get_length(in) > 0 && !c->complete && !c->over_limit) {
		struct evbuffer_iovec v;
		size_t used;
		evbuffer_peek(in, -1, NULL, &v, 1);
		c->got_byte = 1;
		used = http_parser_execute(&c->hp, &hp_settings, v.iov_base, v.iov_len);
		evbuffer_drain(in, used);
		if (c->complete || c->over_limit)
			break;
		if (HTTP_PARSER_ERRNO(&c->hp) != HPE_OK) {
			conn_fail(c, WH_EPROTO, http_errno_description(HTTP_PARSER_ERRNO(&c->hp)));
			return;
		}
	}
	if (c->complete || c->over_limit)
		conn_response_done(c);
}

/* The server closed a busy connection: the end of a read-until-close body,
 * or a response cut short. */
static void conn_eof(struct wh_conn *c)
{
	if (c->got_byte && HTTP_PARSER_ERRNO(&c->hp) == HPE_OK)
		http_parser_execute(&c->hp, &hp_settings, NULL, 0);
	if (c->complete) {
		conn_response_done(c);
		return;
	}
	conn_fail(c, SL_ECLOSED,
	          c->got_byte ? "connection closed before the response was complete" :
	                        "connection closed before any response");
}

/* ---- TLS ---- */

/* What went wrong in a handshake, into a result. */
static void conn_tls_fail(struct wh_conn *c, short what)
{
	struct wh_req *r = c->req;
	long v = c->ssl ? SSL_get_verify_result(c->ssl) : X509_V_OK;
	unsigned long e = bufferevent_get_openssl_error(c->bev);
	char buf[96] = "";

	if (v != X509_V_OK) {
		req_finish(r, WH_ETLS_VERIFY, 0, "TLS certificate verification failed for %s: %s", c->host->name,
		           X509_verify_cert_error_string(v));
	} else if (e) {
		ERR_error_string_n(e, buf, sizeof buf);
		req_finish(r, WH_ETLS, 0, "TLS handshake with %s failed: %s", c->addr, buf);
	} else {
		req_finish(r, WH_ETLS, 0, "TLS handshake with %s failed: %s", c->addr,
		           what & BEV_EVENT_EOF ? "connection closed" : strerror(c->last_errno));
	}
	conn_close_pump(c);
}

static SSL *conn_ssl_new(struct wh_conn *c)
{
	SSL *ssl = SSL_new(c->host->pool->ssl);
	struct wh_host *h = c->host;
	int ok;

	if (!ssl)
		return NULL;
	if (h->is_ip) {
		ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), h->name) == 1;
	} else {
		ok = SSL_set_tlsext_host_name(ssl, h->name) == 1 && SSL_set1_host(ssl, h->name) == 1;
		SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	}
	if (!ok) {
		SSL_free(ssl);
		return NULL;
	}
	return ssl;
}

/* ---- connecting ---- */

static void conn_send(struct wh_conn *c)
{
	struct wh_req *r = c->req;

	c->state = CS_BUSY;
	c->got_byte = c->complete = c->over_limit = 0;
	http_parser_init(&c->hp, HTTP_RESPONSE);
	c->hp.data = c;
	evtimer_del(c->idle_ev);
	if (bufferevent_write(c->bev, r->wire, r->wire_len) != 0) {
		conn_fail(c, SL_ENOMEM, "out of memory");
		return;
	}
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct wh_conn *c = arg;

	c->last_errno = EVUTIL_SOCKET_ERROR();
	if (what & BEV_EVENT_CONNECTED) {
		if (c->req) {
			conn_send(c);
		} else {
			conn_close_pump(c);
		}
		return;
	}
	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
		return;
	if (c->state == CS_IDLE || !c->req) {
		conn_close_pump(c);
	} else if (c->state == CS_CONNECTING) {
		/* a refused TCP connection: the next address; anything from TLS is final */
		if (c->ssl && (bufferevent_get_openssl_error(bev) || SSL_get_verify_result(c->ssl) != X509_V_OK ||
		               (what & BEV_EVENT_EOF) || c->last_errno == 0))
			conn_tls_fail(c, what);
		else
			conn_connect_next(c);
	} else if ((what & BEV_EVENT_EOF) || c->last_errno == ECONNRESET || c->last_errno == EPIPE) {
		conn_eof(c); /* a reset is a close that lost what was in flight */
	} else {
		char msg[96];
		snprintf(msg, sizeof msg, "connection error: %s", strerror(c->last_errno));
		conn_fail(c, SL_EIO, msg);
	}
}

static struct bufferevent *conn_bev_new(struct wh_conn *c)
{
	struct event_base *base = c->host->pool->base;
	struct bufferevent *bev;

	c->ssl = NULL;
	if (!c->host->https)
		return bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (!(c->ssl = conn_ssl_new(c)))
		return NULL;
	bev = bufferevent_openssl_socket_new(base, -1, c->ssl, BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
	if (!bev) {
		SSL_free(c->ssl);
		c->ssl = NULL;
		return NULL;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

static void addr_text(const struct sockaddr *sa, char *out, size_t cap)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof ip);
		snprintf(out, cap, "[%s]:%u", ip, ntohs(s6->sin6_port));
	} else if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof ip);
		snprintf(out, cap, "%s:%u", ip, ntohs(s4->sin_port));
	} else {
		snprintf(out, cap, "?");
	}
}

/* Try the next resolved address; when none is left, fail the request. */
static void conn_connect_next(struct wh_conn *c)
{
	struct evutil_addrinfo *ai;

	if (c->bev) {
		bufferevent_free(c->bev);
		c->bev = NULL;
	}
	while ((ai = c->ai_next)) {
		c->ai_next = ai->ai_next;
		addr_text(ai->ai_addr, c->addr, sizeof c->addr);
		if (!(c->bev = conn_bev_new(c))) {
			req_finish(c->req, SL_ENOMEM, 0, "out of memory");
			conn_close_pump(c);
			return;
		}
		bufferevent_setcb(c->bev, conn_read_cb, NULL, conn_event_cb, c);
		if (bufferevent_socket_connect(c->bev, ai->ai_addr, (int)ai->ai_addrlen) == 0)
			return;
		c->last_errno = EVUTIL_SOCKET_ERROR();
		bufferevent_free(c->bev);
		c->bev = NULL;
	}
	req_finish(c->req, WH_ECONNECT, 0, "connect to %s failed: %s", c->addr,
	           c->last_errno ? strerror(c->last_errno) : "no address");
	conn_close_pump(c);
}

/* Addresses are known (ai is now c's): the SSRF check, then connect. */
static void conn_addrs(struct wh_conn *c, struct evutil_addrinfo *ai)
{
	c->ai = c->ai_next = ai;
	if (!ai) {
		req_finish(c->req, WH_EDNS, 0, "%s has no address", c->host->name);
		conn_close_pump(c);
		return;
	}
	for (; ai && !c->host->pool->allow_private; ai = ai->ai_next) {
		if (!wh_addr_is_private(ai->ai_addr))
			continue;
		addr_text(ai->ai_addr, c->addr, sizeof c->addr);
		req_finish(c->req, WH_EPRIVATE, 0, "refusing private address %s of %s", c->addr, c->host->name);
		conn_close_pump(c);
		return;
	}
	conn_connect_next(c);
}

static void pool_reap_cb(evutil_socket_t fd, short what, void *arg)
{
	pool_destroy(arg);
}

static void lookup_free(struct wh_lookup *lk)
{
	struct wh_pool *p = lk->pool;
	const struct timeval zero = {0, 0};

	free(lk);
	/* the last lookup of a freed pool: finish freeing it from the loop, not
	 * from inside evdns */
	if (--p->lookups == 0 && p->destroying)
		event_base_once(p->base, -1, EV_TIMEOUT, pool_reap_cb, p, &zero);
}

static void lookup_cb(int result, struct evutil_addrinfo *res, void *arg)
{
	struct wh_lookup *lk = arg;
	struct wh_conn *c = lk->conn;

	lk->r = NULL;
	if (lk->in_call)
		lk->answered = 1;
	if (c) {
		c->lookup = NULL;
		if (result != 0) {
			req_finish(c->req, WH_EDNS, 0, "resolving %s: %s", c->host->name, evutil_gai_strerror(result));
			conn_close_pump(c);
		} else {
			conn_addrs(c, res);
			res = NULL;
		}
	}
	if (res)
		evutil_freeaddrinfo(res);
	if (!lk->in_call)
		lookup_free(lk);
}

static struct evdns_base *pool_dns(struct wh_pool *p)
{
	if (!p->dns) {
		p->dns = evdns_base_new(p->base, EVDNS_BASE_INITIALIZE_NAMESERVERS | EVDNS_BASE_DISABLE_WHEN_INACTIVE);
		if (!p->dns && (p->dns = evdns_base_new(p->base, EVDNS_BASE_DISABLE_WHEN_INACTIVE)))
			evdns_base_load_hosts(p->dns, NULL);
		p->own_dns = p->dns != NULL;
	}
	return p->dns;
}

/* Resolve c's host: at once for an address, else through evdns. */
static void conn_resolve(struct wh_conn *c)
{
	struct evutil_addrinfo hints, *ai = NULL;
	struct wh_pool *p = c->host->pool;
	struct wh_lookup *lk;
	char port[8];

	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	snprintf(port, sizeof port, "%u", (unsigned)c->host->port);
	if (c->host->is_ip) {
		hints.ai_flags = EVUTIL_AI_NUMERICHOST | EVUTIL_AI_NUMERICSERV;
		if (evutil_getaddrinfo(c->host->name, port, &hints, &ai) != 0)
			ai = NULL;
		conn_addrs(c, ai);
		return;
	}
	if (!pool_dns(p) || !(lk = calloc(1, sizeof *lk))) {
		req_finish(c->req, WH_EDNS, 0, "no resolver for %s", c->host->name);
		conn_close_pump(c);
		return;
	}
	lk->pool = p;
	lk->conn = c;
	lk->in_call = 1;
	p->lookups++;
	c->lookup = lk;
	lk->r = evdns_getaddrinfo(p->dns, c->host->name, port, &hints, lookup_cb, lk);
	lk->in_call = 0;
	if (lk->answered) {
		lk->r = NULL;
		lookup_free(lk);
	}
}

/* A new connection for r (the host has room for it). */
static void conn_new(struct wh_host *h, struct wh_req *r)
{
	struct wh_conn *c = calloc(1, sizeof *c);

	if (c && !(c->idle_ev = evtimer_new(h->pool->base, conn_idle_cb, c))) {
		free(c);
		c = NULL;
	}
	if (!c) {
		req_finish(r, SL_ENOMEM, 0, "out of memory");
		return;
	}
	c->host = h;
	c->state = CS_CONNECTING;
	snprintf(c->addr, sizeof c->addr, "%s", h->name);
	TAILQ_INSERT_TAIL(&h->conns, c, link);
	h->nconns++;
	h->pool->nconns++;
	c->req = r;
	r->conn = c;
	r->state = RS_ACTIVE;
	conn_resolve(c);
}

/* ---- hosts and dispatch ---- */

static struct wh_conn *host_idle(struct wh_host *h)
{
	struct wh_conn *c, *best = NULL;

	TAILQ_FOREACH(c, &h->conns, link) /* the most recently used: the least likely to be closed */
		if (c->state == CS_IDLE)
			best = c;
	return best;
}

/* Free the destinations with no connection and nobody waiting: callback
 * URLs make the set of destinations open-ended. No request refers to
 * such a host (a request holds its host only while it waits or is being
 * given a connection, which happens within one call). */
static void hosts_sweep(struct wh_pool *p)
{
	struct wh_host *h, *next;

	for (h = TAILQ_FIRST(&p->hosts); h; h = next) {
		next = TAILQ_NEXT(h, link);
		if (h->nconns == 0 && TAILQ_EMPTY(&h->waiting)) {
			TAILQ_REMOVE(&p->hosts, h, link);
			free(h);
		}
	}
}

static struct wh_host *host_get(struct wh_pool *p, const struct wh_req *r)
{
	struct wh_host *h;

	TAILQ_FOREACH(h, &p->hosts, link)
		if (h->https == r->https && h->port == r->port && strcmp(h->name, r->hostname) == 0)
			return h;
	hosts_sweep(p);
	if (!(h = calloc(1, sizeof *h)))
		return NULL;
	h->pool = p;
	h->https = r->https;
	h->port = r->port;
	snprintf(h->name, sizeof h->name, "%s", r->hostname);
	h->is_ip = r->is_ip;
	TAILQ_INIT(&h->conns);
	TAILQ_INIT(&h->waiting);
	TAILQ_INSERT_TAIL(&p->hosts, h, link);
	return h;
}

/* Give r a connection: an idle one, a new one, or a place in the queue. */
static void req_dispatch(struct wh_req *r)
{
	struct wh_host *h = r->host;
	struct wh_conn *c = r->fresh_only ? NULL : host_idle(h);

	if (c) {
		c->req = r;
		r->conn = c;
		r->state = RS_ACTIVE;
		conn_send(c);
		return;
	}
	if (h->nconns >= h->pool->conns_max && r->fresh_only && (c = host_idle(h)))
		conn_close(c); /* make room for the fresh connection of a retry */
	if (h->nconns < h->pool->conns_max) {
		conn_new(h, r);
		return;
	}
	r->state = RS_WAITING;
	TAILQ_INSERT_TAIL(&h->waiting, r, link);
}

static void host_pump(struct wh_host *h)
{
	struct wh_req *r;

	while ((r = TAILQ_FIRST(&h->waiting)) && (host_idle(h) || h->nconns < h->pool->conns_max)) {
		TAILQ_REMOVE(&h->waiting, r, link);
		r->state = RS_NEW;
		req_dispatch(r);
	}
}

static void req_start_cb(evutil_socket_t fd, short what, void *arg)
{
	struct wh_req *r = arg;

	if (!(r->host = host_get(r->pool, r))) {
		req_finish(r, SL_ENOMEM, 0, "out of memory");
		return;
	}
	req_dispatch(r);
}

static void req_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct wh_req *r = arg;
	struct wh_conn *c = r->conn;
	const char *where = !c ? "waiting for a connection" :
	                    c->state == CS_CONNECTING ? "connecting" :
	                    c->got_byte ? "reading the response" : "waiting for the response";

	event_del(r->start_ev);
	req_finish(r, SL_ETIMEOUT, c && c->got_byte ? (int)c->hp.status_code : 0, "timed out after %u ms %s",
	           r->timeout_ms, where);
	if (c)
		conn_close_pump(c);
}

/* ---- the request bytes ---- */

static int header_ok(const struct wh_header *hd)
{
	static const char *reserved[] = {"host", "content-length", "content-type", "connection", "transfer-encoding"};
	size_t nl, vl;

	if (!hd->name || !hd->value || !(nl = strlen(hd->name)) || (vl = strlen(hd->value)) + nl > WH_HEADER_BYTES_MAX)
		return 0;
	for (size_t i = 0; i < nl; i++)
		if (!strchr("!#$%&'*+-.^_`|~", hd->name[i]) && !((hd->name[i] >= '0' && hd->name[i] <= '9') ||
		    ((hd->name[i] | 0x20) >= 'a' && (hd->name[i] | 0x20) <= 'z')))
			return 0;
	for (size_t i = 0; i < vl; i++)
		if (hd->value[i] == '\r' || hd->value[i] == '\n')
			return 0;
	for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
		if (strcasecmp(hd->name, reserved[i]) == 0)
			return 0;
	return 1;
}

static int req_render(struct wh_req *r, struct wh_pool *p, const struct wh_url *u, const struct wh_header *hdrs,
                      size_t nhdrs, const uint8_t *body, size_t blen)
{
	struct evbuffer *b = evbuffer_new();
	char auth[WH_HOST_BYTES_MAX + 9];
	int rc = SL_ENOMEM;

	if (!b)
		return SL_ENOMEM;
	if (wh_url_authority(u, auth, sizeof auth) != SL_OK) {
		rc = SL_EINVAL;
		goto out;
	}
	if (evbuffer_add_printf(b, "POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: %s\r\n"
	                           "Content-Type: application/json\r\nContent-Length: %zu\r\nConnection: keep-alive\r\n",
	                        u->path, auth, p->user_agent, blen) < 0)
		goto out;
	for (size_t i = 0; i < nhdrs; i++)
		if (evbuffer_add_printf(b, "%s: %s\r\n", hdrs[i].name, hdrs[i].value) < 0)
			goto out;
	if (evbuffer_add(b, "\r\n", 2) != 0 || (blen && evbuffer_add(b, body, blen) != 0))
		goto out;
	r->wire_len = evbuffer_get_length(b);
	if (!(r->wire = malloc(r->wire_len)))
		goto out;
	evbuffer_remove(b, r->wire, r->wire_len);
	rc = SL_OK;
out:
	evbuffer_free(b);
	return rc;
}

int wh_post(struct wh_pool *p, const struct wh_url *u, const struct wh_header *hdrs, size_t nhdrs,
            const uint8_t *body, size_t blen, uint32_t timeout_ms, wh_done_cb cb, void *arg, struct wh_req **out)
{
	struct wh_req *r;
	struct timeval tv;
	int rc;

	if (!p || p->free_requested || !u || !cb || (nhdrs && !hdrs) || nhdrs > WH_HEADERS_MAX ||
	    blen > WH_BODY_BYTES_MAX || (blen && !body))
		return SL_EINVAL;
	for (size_t i = 0; i < nhdrs; i++)
		if (!header_ok(&hdrs[i]))
			return SL_EINVAL;
	if (!(r = calloc(1, sizeof *r)))
		return SL_ENOMEM;
	r->pool = p;
	r->https = u->https;
	r->is_ip = u->host_is_ip;
	r->port = u->port;
	snprintf(r->hostname, sizeof r->hostname, "%s", u->host);
	r->timeout_ms = timeout_ms ? timeout_ms : WH_TIMEOUT_MS_DEFAULT;
	r->cb = cb;
	r->arg = arg;
	r->res.retry_after_ms = -1;
	r->start_ev = event_new(p->base, -1, 0, req_start_cb, r);
	r->timer = evtimer_new(p->base, req_timer_cb, r);
	TAILQ_INSERT_TAIL(&p->reqs, r, all);
	if (!r->start_ev || !r->timer) {
		rc = SL_ENOMEM;
		goto fail;
	}
	if ((rc = req_render(r, p, u, hdrs, nhdrs, body, blen)) != SL_OK)
		goto fail;
	tv.tv_sec = r->timeout_ms / 1000;
	tv.tv_usec = (r->timeout_ms % 1000) * 1000;
	evtimer_add(r->timer, &tv);
	event_active(r->start_ev, EV_TIMEOUT, 0);
	if (out)
		*out = r;
	return SL_OK;
fail:
	req_free(r);
	return rc;
}

void wh_req_cancel(struct wh_req *r)
{
	struct wh_conn *c;

	if (!r)
		return;
	c = r->conn;
	req_free(r);
	if (c)
		conn_close_pump(c);
}

/* ---- the pool ---- */

static SSL_CTX *ssl_ctx_new(const char *ca_file)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (!ctx)
		return NULL;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if ((ca_file ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL) : SSL_CTX_set_default_verify_paths(ctx)) != 1) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

struct wh_pool *wh_pool_new(struct event_base *base, const struct wh_pool_cfg *cfg)
{
	static const struct wh_pool_cfg defaults;
	struct wh_pool *p;

	if (!base)
		return NULL;
	if (!cfg)
		cfg = &defaults;
	if (!(p = calloc(1, sizeof *p)))
		return NULL;
	p->base = base;
	p->dns = cfg->dns;
	p->allow_private = cfg->allow_private;
	p->conns_max = cfg->conns_per_host_max ? cfg->conns_per_host_max : WH_CONNS_PER_HOST_DEFAULT;
	p->idle_ms = cfg->idle_ms ? cfg->idle_ms : WH_IDLE_MS_DEFAULT;
	p->resp_max = cfg->response_bytes_max ? cfg->response_bytes_max : WH_RESPONSE_BYTES_DEFAULT;
	p->user_agent = strdup(cfg->user_agent ? cfg->user_agent : "sluice-webhook/" SLUICE_VERSION);
	TAILQ_INIT(&p->hosts);
	TAILQ_INIT(&p->done);
	TAILQ_INIT(&p->reqs);
	p->done_ev = event_new(base, -1, 0, pool_done_cb, p);
	p->ssl = ssl_ctx_new(cfg->ca_file);
	if (!p->user_agent || !p->done_ev || !p->ssl || strpbrk(p->user_agent, "\r\n")) {
		pool_destroy(p);
		return NULL;
	}
	return p;
}

/* Free what the pool holds; the pool itself once no lookup can call back. */
static void pool_destroy(struct wh_pool *p)
{
	struct wh_host *h;
	struct wh_req *r;

	p->free_requested = p->destroying = 1;
	while ((r = TAILQ_FIRST(&p->reqs)))
		req_free(r);
	while ((h = TAILQ_FIRST(&p->hosts))) {
		while (TAILQ_FIRST(&h->conns))
			conn_close(TAILQ_FIRST(&h->conns));
		TAILQ_REMOVE(&p->hosts, h, link);
		free(h);
	}
	if (p->lookups)
		return; /* lookup_free finishes this when the last ticket calls back */
	if (p->own_dns)
		evdns_base_free(p->dns, 0);
	if (p->done_ev)
		event_free(p->done_ev);
	if (p->ssl)
		SSL_CTX_free(p->ssl);
	free(p->user_agent);
	free(p);
}

void wh_pool_free(struct wh_pool *p)
{
	if (!p)
		return;
	p->free_requested = 1;
	if (!p->delivering)
		pool_destroy(p);
}

unsigned wh_pool_conns(const struct wh_pool *p)
{
	return p->nconns;
}
