/*
 * webhook_client_test.c: the webhook POST client (broker/http/webhook/
 * wh_client.c) against receivers in the same process, on 127.0.0.1 with
 * ports from the kernel: a libevent evhttp server (statuses, Retry-After, a
 * server that never answers, a large body, connection counting), a raw TCP
 * server for what evhttp will not do (a response cut short, a keep-alive
 * connection dropped on its second request), and evhttp over TLS with a
 * throwaway CA made by the openssl command at test time (verification,
 * missing CA, host name mismatch). Every wait is bounded.
 */
#define _GNU_SOURCE /* strcasestr */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "err.h"
#include "wh_client.h"

static struct event_base *base;
static struct evhttp *http;
static uint16_t http_port;
static int http_conns;     /* connections the evhttp server accepted */
static int http_requests;
static char last_ctype[64], last_hook_id[64], last_body[64];
static SSL_CTX *srv_ctx;   /* set: the evhttp server speaks TLS */

struct got {
	int calls;
	struct wh_result res;
};

static int in_post; /* a callback must never run inside wh_post */

/* ---- the evhttp receiver ---- */

static void http_cb(struct evhttp_request *req, void *arg)
{
	const char *path = evhttp_request_get_uri(req);
	struct evkeyvalq *in = evhttp_request_get_input_headers(req);
	struct evbuffer *body = evhttp_request_get_input_buffer(req);
	struct evbuffer *out = evbuffer_new();
	const char *v;
	size_t n = evbuffer_get_length(body);

	http_requests++;
	snprintf(last_ctype, sizeof last_ctype, "%s", (v = evhttp_find_header(in, "Content-Type")) ? v : "");
	snprintf(last_hook_id, sizeof last_hook_id, "%s", (v = evhttp_find_header(in, "webhook-id")) ? v : "");
	if (n >= sizeof last_body)
		n = sizeof last_body - 1;
	evbuffer_copyout(body, last_body, n);
	last_body[n] = 0;
	if (strcmp(path, "/slow") == 0) {
		evbuffer_free(out);
		return; /* never answered: evhttp_free frees it */
	}
	if (strcmp(path, "/fail") == 0) {
		evhttp_send_reply(req, 500, "Internal Server Error", NULL);
	} else if (strcmp(path, "/busy") == 0) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "7");
		evhttp_send_reply(req, 429, "Too Many Requests", NULL);
	} else if (strcmp(path, "/big") == 0) {
		static char chunk[1024];
		memset(chunk, 'x', sizeof chunk);
		for (int i = 0; i < 100; i++)
			evbuffer_add(out, chunk, sizeof chunk);
		evhttp_send_reply(req, 200, "OK", out);
	} else {
		evbuffer_add_printf(out, "ok");
		evhttp_send_reply(req, 200, "OK", out);
	}
	evbuffer_free(out);
}

static struct bufferevent *http_bevcb(struct event_base *b, void *arg)
{
	http_conns++;
	if (srv_ctx)
		return bufferevent_openssl_socket_new(b, -1, SSL_new(srv_ctx), BUFFEREVENT_SSL_ACCEPTING,
		                                      BEV_OPT_CLOSE_ON_FREE);
	return bufferevent_socket_new(b, -1, BEV_OPT_CLOSE_ON_FREE);
}

static uint16_t sock_port(evutil_socket_t fd)
{
	struct sockaddr_in sin;
	socklen_t l = sizeof sin;

	cr_assert_eq(getsockname(fd, (struct sockaddr *)&sin, &l), 0);
	return ntohs(sin.sin_port);
}

static void http_start(void)
{
	struct evhttp_bound_socket *bs;

	http = evhttp_new(base);
	evhttp_set_gencb(http, http_cb, NULL);
	evhttp_set_bevcb(http, http_bevcb, NULL);
	bs = evhttp_bind_socket_with_handle(http, "127.0.0.1", 0);
	cr_assert_not_null(bs);
	http_port = sock_port(evhttp_bound_socket_get_fd(bs));
}

static void setup(void)
{
	signal(SIGPIPE, SIG_IGN); /* as in the frontend: writes to closed sockets are errors, not deaths */
	base = event_base_new();
	http_conns = http_requests = 0;
	http_start();
}

static void teardown(void)
{
	if (http)
		evhttp_free(http);
	http = NULL;
	event_base_free(base);
	if (srv_ctx)
		SSL_CTX_free(srv_ctx);
	srv_ctx = NULL;
}

/* ---- driving the loop ---- */

static void got_cb(const struct wh_result *res, void *arg)
{
	struct got *g = arg;

	cr_assert_eq(in_post, 0, "callback inside wh_post");
	g->calls++;
	g->res = *res;
	event_base_loopbreak(base);
}

/* Run the loop until g has its callback or ms pass. */
static void run_until(struct got *g, int ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000}, end, now;

	gettimeofday(&end, NULL);
	timeradd(&end, &tv, &end);
	while (!g || g->calls == 0) {
		gettimeofday(&now, NULL);
		if (!timercmp(&now, &end, <))
			break;
		timersub(&end, &now, &tv);
		event_base_loopexit(base, &tv);
		event_base_dispatch(base);
	}
}

static void sleep_loop(int ms)
{
	run_until(NULL, ms);
}

static struct wh_url url(const char *fmt, uint16_t port)
{
	char s[256];
	struct wh_url u;

	snprintf(s, sizeof s, fmt, port);
	cr_assert_eq(wh_url_parse(s, strlen(s), &u), SL_OK, "%s", s);
	return u;
}

static void post(struct wh_pool *p, const struct wh_url *u, uint32_t timeout_ms, struct got *g, struct wh_req **out)
{
	static const struct wh_header h[] = {{"webhook-id", "msg_1"}, {"webhook-timestamp", "1"}};
	const char *body = "{\"a\":1}";

	in_post = 1;
	cr_assert_eq(wh_post(p, u, h, 2, (const uint8_t *)body, strlen(body), timeout_ms, got_cb, g, out), SL_OK);
	in_post = 0;
}

static struct wh_pool *pool_local(void)
{
	struct wh_pool_cfg cfg = {.allow_private = 1};
	struct wh_pool *p = wh_pool_new(base, &cfg);

	cr_assert_not_null(p);
	return p;
}

/* One POST, waited for. */
static struct wh_result post_wait(struct wh_pool *p, const struct wh_url *u, uint32_t timeout_ms)
{
	struct got g = {0};

	post(p, u, timeout_ms, &g, NULL);
	run_until(&g, 5000);
	cr_assert_eq(g.calls, 1);
	return g.res;
}

TestSuite(wh_client, .init = setup, .fini = teardown, .timeout = 30);

Test(wh_client, status_200_and_request_headers)
{
	struct wh_pool *p = pool_local();
	struct wh_url u = url("http://127.0.0.1:%u/ok", http_port);
	struct wh_result r = post_wait(p, &u, 2000);

	cr_assert_eq(r.err, SL_OK, "%s", r.error);
	cr_assert_eq(r.status, 200);
	cr_assert_eq(r.retry_after_ms, -1);
	cr_assert_str_eq(last_ctype, "application/json");
	cr_assert_str_eq(last_hook_id, "msg_1");
	cr_assert_str_eq(last_body, "{\"a\":1}");
	wh_pool_free(p);
}

Test(wh_client, status_500_and_429_retry_after)
{
	struct wh_pool *p = pool_local();
	struct wh_url u = url("http://127.0.0.1:%u/fail", http_port);
	struct wh_result r = post_wait(p, &u, 2000);

	cr_assert_eq(r.err, SL_OK);
	cr_assert_eq(r.status, 500);
	cr_assert_eq(r.retry_after_ms, -1);
	u = url("http://127.0.0.1:%u/busy", http_port);
	r = post_wait(p, &u, 2000);
	cr_assert_eq(r.err, SL_OK);
	cr_assert_eq(r.status, 429);
	cr_assert_eq(r.retry_after_ms, 7000);
	cr_assert_eq(http_conns, 1); /* the second went on the first's connection */
	wh_pool_free(p);
}

Test(wh_client, slow_answer_times_out)
{
	struct wh_pool *p = pool_local();
	struct wh_url u = url("http://127.0.0.1:%u/slow", http_port);
	struct timeval t0, t1;
	struct wh_result r;
	long ms;

	gettimeofday(&t0, NULL);
	r = post_wait(p, &u, 300);
	gettimeofday(&t1, NULL);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_usec - t0.tv_usec) / 1000;
	cr_assert_eq(r.err, SL_ETIMEOUT, "%d %s", r.err, r.error);
	cr_assert_eq(r.status, 0);
	cr_assert(ms >= 290 && ms < 2000, "timed out after %ld ms", ms);
	cr_assert(strstr(r.error, "timed out"), "%s", r.error);
	cr_assert_eq(wh_pool_conns(p), 0);
	wh_pool_free(p);
}

Test(wh_client, connection_refused)
{
	evutil_socket_t fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct wh_pool *p = pool_local();
	struct wh_result r;
	struct wh_url u;

	cr_assert_eq(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
	u = url("http://127.0.0.1:%u/", sock_port(fd));
	close(fd); /* nobody listens there now */
	r = post_wait(p, &u, 2000);
	cr_assert_eq(r.err, WH_ECONNECT, "%d %s", r.err, r.error);
	cr_assert(strstr(r.error, "127.0.0.1") && strstr(r.error, "refused"), "%s", r.error);
	wh_pool_free(p);
}

struct chain {
	struct wh_pool *p;
	struct wh_url u;
	int left, ok;
	struct got g;
};

static void chain_cb(const struct wh_result *res, void *arg)
{
	struct chain *c = arg;

	cr_assert_eq(in_post, 0);
	if (res->err == SL_OK && res->status == 200)
		c->ok++;
	if (--c->left == 0) {
		c->g.calls = 1;
		event_base_loopbreak(base);
		return;
	}
	/* the next one from inside the callback */
	in_post = 1;
	cr_assert_eq(wh_post(c->p, &c->u, NULL, 0, (const uint8_t *)"{}", 2, 2000, chain_cb, c, NULL), SL_OK);
	in_post = 0;
}

Test(wh_client, keep_alive_reuse)
{
	struct chain c = {.p = pool_local(), .left = 5};

	c.u = url("http://127.0.0.1:%u/ok", http_port);
	cr_assert_eq(wh_post(c.p, &c.u, NULL, 0, (const uint8_t *)"{}", 2, 2000, chain_cb, &c, NULL), SL_OK);
	run_until(&c.g, 5000);
	cr_assert_eq(c.ok, 5);
	cr_assert_eq(http_requests, 5);
	cr_assert_eq(http_conns, 1, "%d connections for 5 sequential posts", http_conns);
	cr_assert_eq(wh_pool_conns(c.p), 1);
	wh_pool_free(c.p);
}

Test(wh_client, idle_close_by_server_detected)
{
	struct wh_pool *p = pool_local();
	struct wh_url u = url("http://127.0.0.1:%u/ok", http_port);
	struct wh_result r;

	evhttp_set_timeout(http, 1); /* the server drops idle connections after 1 s */
	r = post_wait(p, &u, 2000);
	cr_assert_eq(r.status, 200);
	cr_assert_eq(wh_pool_conns(p), 1);
	sleep_loop(1600);
	cr_assert_eq(wh_pool_conns(p), 0, "the closed idle connection was not noticed");
	r = post_wait(p, &u, 2000);
	cr_assert_eq(r.status, 200, "%s", r.error);
	cr_assert_eq(http_conns, 2);
	wh_pool_free(p);
}

Test(wh_client, response_body_over_limit_closes)
{
	struct wh_pool_cfg cfg = {.allow_private = 1, .response_bytes_max = 1024};
	struct wh_pool *p = wh_pool_new(base, &cfg);
	struct wh_url u = url("http://127.0.0.1:%u/big", http_port);
	struct wh_result r = post_wait(p, &u, 2000);

	cr_assert_eq(r.err, SL_OK, "%s", r.error);
	cr_assert_eq(r.status, 200);
	cr_assert_eq(wh_pool_conns(p), 0, "a connection with an unread body was kept");
	u = url("http://127.0.0.1:%u/ok", http_port);
	r = post_wait(p, &u, 2000);
	cr_assert_eq(r.status, 200);
	cr_assert_eq(http_conns, 2);
	wh_pool_free(p);
}

Test(wh_client, private_address_refused)
{
	struct wh_pool_cfg cfg = {0};
	struct wh_pool *p = wh_pool_new(base, &cfg);
	struct wh_url u = url("http://127.0.0.1:%u/ok", http_port);
	struct wh_result r = post_wait(p, &u, 2000);

	cr_assert_eq(r.err, WH_EPRIVATE, "%d %s", r.err, r.error);
	cr_assert(strstr(r.error, "private") && strstr(r.error, "127.0.0.1"), "%s", r.error);
	/* a name is judged by what it resolves to (localhost: the hosts file) */
	u = url("http://localhost:%u/ok", http_port);
	r = post_wait(p, &u, 2000);
	cr_assert_eq(r.err, WH_EPRIVATE, "%d %s", r.err, r.error);
	cr_assert(strstr(r.error, "localhost"), "%s", r.error);
	cr_assert_eq(http_conns, 0);
	wh_pool_free(p);
}

static void cancel_cb(evutil_socket_t fd, short what, void *arg)
{
	wh_req_cancel(arg);
}

Test(wh_client, cancel_means_no_callback)
{
	struct wh_pool *p = pool_local();
	struct wh_url slow = url("http://127.0.0.1:%u/slow", http_port);
	struct wh_url ok = url("http://127.0.0.1:%u/ok", http_port);
	struct got g1 = {0}, g2 = {0}, g3 = {0};
	struct wh_req *r1, *r2;
	struct timeval tv = {0, 100000};
	struct wh_result r;

	post(p, &slow, 1000, &g1, &r1); /* cancelled while waiting for the answer */
	post(p, &ok, 1000, &g2, &r2);   /* cancelled before it started */
	wh_req_cancel(r2);
	event_base_once(base, -1, EV_TIMEOUT, cancel_cb, r1, &tv);
	sleep_loop(1500);
	cr_assert_eq(g1.calls, 0);
	cr_assert_eq(g2.calls, 0);
	cr_assert_eq(wh_pool_conns(p), 0);
	r = post_wait(p, &ok, 2000);
	cr_assert_eq(r.status, 200);
	/* freeing the pool drops a pending request without its callback */
	post(p, &slow, 1000, &g3, NULL);
	sleep_loop(100);
	wh_pool_free(p);
	sleep_loop(100);
	cr_assert_eq(g3.calls, 0);
}

Test(wh_client, refuses_bad_headers)
{
	struct wh_pool *p = pool_local();
	struct wh_url u = url("http://127.0.0.1:%u/ok", http_port);
	struct wh_header bad[] = {{"x-a", "b\r\nInjected: 1"}, {"Host", "evil"}, {"bad name", "v"}};

	for (int i = 0; i < 3; i++)
		cr_assert_eq(wh_post(p, &u, &bad[i], 1, NULL, 0, 1000, got_cb, NULL, NULL), SL_EINVAL);
	wh_pool_free(p);
}

/* ---- a raw receiver for what evhttp will not do ---- */

enum raw_mode { RAW_PARTIAL, RAW_DROP_SECOND };
static enum raw_mode raw_mode;
static int raw_conns;

struct raw_conn {
	int requests, answered;
	struct bufferevent *bev;
};
static struct raw_conn *raw_open[16]; /* freed at the end of the test if still open */

static void raw_free(struct bufferevent *bev, void *arg)
{
	for (int i = 0; i < 16; i++)
		if (raw_open[i] == arg)
			raw_open[i] = NULL;
	free(arg);
	bufferevent_free(bev);
}

static void raw_stop(struct evconnlistener *l)
{
	for (int i = 0; i < 16; i++)
		if (raw_open[i])
			raw_free(raw_open[i]->bev, raw_open[i]);
	evconnlistener_free(l);
}

static void raw_write_cb(struct bufferevent *bev, void *arg)
{
	/* flushed: end the stream mid-response (a FIN, not a close that could
	 * turn into a reset and lose the bytes in flight) */
	struct raw_conn *rc = arg;

	if (raw_mode == RAW_PARTIAL && rc->answered && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		shutdown(bufferevent_getfd(bev), SHUT_WR);
}

static void raw_read_cb(struct bufferevent *bev, void *arg)
{
	struct raw_conn *rc = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
	size_t hl, total;
	char *head, *cl;

	if (end.pos < 0)
		return;
	hl = (size_t)end.pos + 4;
	head = malloc(hl + 1);
	evbuffer_copyout(in, head, hl);
	head[hl] = 0;
	cl = strcasestr(head, "content-length:");
	total = hl + (cl ? strtoul(cl + 15, NULL, 10) : 0);
	free(head);
	if (evbuffer_get_length(in) < total)
		return;
	evbuffer_drain(in, total);
	if (++rc->requests > 1 && raw_mode == RAW_DROP_SECOND) {
		raw_free(bev, rc); /* as if it had timed out just as the request came */
		return;
	}
	rc->answered = 1;
	if (raw_mode == RAW_PARTIAL)
		bufferevent_write(bev, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc", 43);
	else
		bufferevent_write(bev, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 40);
}

static void raw_event_cb(struct bufferevent *bev, short what, void *arg)
{
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		raw_free(bev, arg);
}

static void raw_accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int n, void *arg)
{
	struct bufferevent *bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	struct raw_conn *rc = calloc(1, sizeof *rc);

	raw_conns++;
	rc->bev = bev;
	for (int i = 0; i < 16; i++)
		if (!raw_open[i]) {
			raw_open[i] = rc;
			break;
		}
	bufferevent_setcb(bev, raw_read_cb, raw_write_cb, raw_event_cb, rc);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
}

static struct evconnlistener *raw_start(enum raw_mode m, uint16_t *port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct evconnlistener *l = evconnlistener_new_bind(base, raw_accept_cb, NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE,
	                                                   16, (struct sockaddr *)&sin, sizeof sin);

	cr_assert_not_null(l);
	raw_mode = m;
	raw_conns = 0;
	*port = sock_port(evconnlistener_get_fd(l));
	return l;
}

Test(wh_client, connection_closed_mid_response)
{
	uint16_t port;
	struct evconnlistener *l = raw_start(RAW_PARTIAL, &port);
	struct wh_pool *p = pool_local();
	struct wh_url u = url("http://127.0.0.1:%u/", port);
	struct wh_result r = post_wait(p, &u, 2000);

	cr_assert_eq(r.err, SL_ECLOSED, "%d %s", r.err, r.error);
	cr_assert_eq(r.status, 200);
	cr_assert(strstr(r.error, "before the response was complete"), "%s", r.error);
	wh_pool_free(p);
	raw_stop(l);
}

Test(wh_client, reused_connection_dropped_is_retried_once)
{
	uint16_t port;
	struct evconnlistener *l = raw_start(RAW_DROP_SECOND, &port);
	struct wh_pool *p = pool_local();
	struct wh_url u = url("http://127.0.0.1:%u/", port);
	struct wh_result r = post_wait(p, &u, 2000);

	cr_assert_eq(r.status, 200, "%s", r.error);
	cr_assert_eq(wh_pool_conns(p), 1);
	r = post_wait(p, &u, 2000);
	cr_assert_eq(r.err, SL_OK, "%s", r.error);
	cr_assert_eq(r.status, 200);
	cr_assert_eq(raw_conns, 2);
	wh_pool_free(p);
	raw_stop(l);
}

/* ---- HTTPS with a throwaway CA ---- */

static char tls_dir[64];

static void sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	cr_assert_eq(system(cmd), 0, "failed: %s", cmd);
}

/* ca.pem, and a leaf NAME.pem/NAME.key signed by it with subjectAltName san */
static void tls_files(void)
{
	strcpy(tls_dir, "/tmp/wh-tls-XXXXXX");
	cr_assert_not_null(mkdtemp(tls_dir));
	sh("cd %s && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem "
	   "-days 2 -subj /CN=wh-test-ca 2>/dev/null", tls_dir);
	const char *leaf[][2] = {{"good", "DNS:localhost,IP:127.0.0.1"}, {"other", "DNS:other.example"}};
	for (int i = 0; i < 2; i++)
		sh("cd %s && openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout %s.key -out %s.csr "
		   "-subj /CN=%s 2>/dev/null && printf 'subjectAltName=%s\\n' > %s.ext && openssl x509 -req -in %s.csr "
		   "-CA ca.pem -CAkey ca.key -CAcreateserial -out %s.pem -days 2 -extfile %s.ext 2>/dev/null",
		   tls_dir, leaf[i][0], leaf[i][0], leaf[i][0], leaf[i][1], leaf[i][0], leaf[i][0], leaf[i][0], leaf[i][0]);
}

static void tls_setup(void)
{
	setup();
	tls_files();
}

static void tls_teardown(void)
{
	teardown();
	sh("rm -rf %s", tls_dir);
}

static void tls_serve(const char *leaf)
{
	char crt[128], key[128];

	snprintf(crt, sizeof crt, "%s/%s.pem", tls_dir, leaf);
	snprintf(key, sizeof key, "%s/%s.key", tls_dir, leaf);
	srv_ctx = SSL_CTX_new(TLS_server_method());
	cr_assert_eq(SSL_CTX_use_certificate_chain_file(srv_ctx, crt), 1);
	cr_assert_eq(SSL_CTX_use_PrivateKey_file(srv_ctx, key, SSL_FILETYPE_PEM), 1);
}

static struct wh_pool *pool_tls(int with_ca)
{
	char ca[128];
	struct wh_pool_cfg cfg = {.allow_private = 1, .ca_file = with_ca ? ca : NULL};
	struct wh_pool *p;

	snprintf(ca, sizeof ca, "%s/ca.pem", tls_dir);
	p = wh_pool_new(base, &cfg);
	cr_assert_not_null(p);
	return p;
}

TestSuite(wh_client_tls, .init = tls_setup, .fini = tls_teardown, .timeout = 60);

Test(wh_client_tls, verifies_with_the_ca)
{
	struct wh_pool *p;
	struct wh_url u = url("https://127.0.0.1:%u/ok", http_port);
	struct wh_result r;

	tls_serve("good");
	p = pool_tls(1);
	r = post_wait(p, &u, 3000);
	cr_assert_eq(r.err, SL_OK, "%d %s", r.err, r.error);
	cr_assert_eq(r.status, 200);
	cr_assert_str_eq(last_body, "{\"a\":1}");
	/* by name (SNI, host name check), on a new connection to the same server */
	u = url("https://localhost:%u/busy", http_port);
	r = post_wait(p, &u, 3000);
	cr_assert_eq(r.err, SL_OK, "%d %s", r.err, r.error);
	cr_assert_eq(r.status, 429);
	/* keep-alive over TLS */
	r = post_wait(p, &u, 3000);
	cr_assert_eq(r.status, 429);
	cr_assert_eq(http_conns, 2);
	wh_pool_free(p);
}

Test(wh_client_tls, fails_without_the_ca)
{
	struct wh_pool *p;
	struct wh_url u = url("https://127.0.0.1:%u/ok", http_port);
	struct wh_result r;

	tls_serve("good");
	p = pool_tls(0);
	r = post_wait(p, &u, 3000);
	cr_assert_eq(r.err, WH_ETLS_VERIFY, "%d %s", r.err, r.error);
	cr_assert_eq(r.status, 0);
	cr_assert(strstr(r.error, "verification failed") && strstr(r.error, "issuer"), "%s", r.error);
	cr_assert_eq(http_requests, 0);
	wh_pool_free(p);
}

Test(wh_client_tls, fails_on_host_mismatch)
{
	struct wh_pool *p;
	struct wh_url u = url("https://127.0.0.1:%u/ok", http_port);
	struct wh_result r;

	tls_serve("other");
	p = pool_tls(1);
	r = post_wait(p, &u, 3000);
	cr_assert_eq(r.err, WH_ETLS_VERIFY, "%d %s", r.err, r.error);
	cr_assert(strstr(r.error, "mismatch"), "%s", r.error);
	u = url("https://localhost:%u/ok", http_port);
	r = post_wait(p, &u, 3000);
	cr_assert_eq(r.err, WH_ETLS_VERIFY, "%d %s", r.err, r.error);
	cr_assert(strstr(r.error, "mismatch"), "%s", r.error);
	cr_assert_eq(http_requests, 0);
	wh_pool_free(p);
}
