#define _GNU_SOURCE
/*
 * http_test.c: the HTTP/1.1 front door of a real sluiced, over raw sockets
 * so every byte on the wire is ours: routes and statuses, payloads, offsets
 * and order, pipelining, chunked bodies, 100-continue, refusals (smuggling,
 * oversized or slow headers, bodies over the limit, bad encodings, bad
 * JSON), Idempotency-Key, 202 operations, SSE resume by Last-Event-ID, HEAD
 * on every GET route, and group commits of one offset or an array of them.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static struct itest_node node;

static void setup(void)
{
	cr_assert_eq(itest_node_init(&node), 0);
	node.extra[0] = "--http-header-timeout-ms";
	node.extra[1] = "500";
	node.extra[2] = "--http-body-bytes-max";
	node.extra[3] = "4096";
	cr_assert_eq(itest_node_start(&node), 0);
}

static void teardown(void)
{
	itest_node_destroy(&node);
}

TestSuite(http, .init = setup, .fini = teardown, .timeout = 120);

/* Assertions around the harness's HTTP helpers, on this suite's node. */
static void hc_open(struct itest_http_conn *c)
{
	cr_assert_eq(itest_http_open(c, node.http_port), 0);
}

static void hc_send(struct itest_http_conn *c, const char *s, size_t n)
{
	cr_assert_eq(itest_http_send(c, s, n), 0);
}

static void simple(const char *method, const char *path, const char *hdrs, const char *body,
                   struct itest_http_resp *r)
{
	cr_assert_eq(itest_http_simple(node.http_port, method, path, hdrs, body, r), 0, "no response to %s %s", method,
	             path);
}

static void create_topic(const char *name, int parts)
{
	char path[256], body[64];
	struct itest_http_resp r;

	snprintf(path, sizeof(path), "/v1/topics/%s", name);
	snprintf(body, sizeof(body), "{\"partitions\":%d}", parts);
	simple("PUT", path, "Content-Type: application/json\r\n", body, &r);
	cr_assert_eq(r.status, 201, "%s", r.body);
	itest_http_resp_free(&r);
}

static long long json_num(const char *body, const char *field)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\":", field);
	p = strstr(body, pat);
	cr_assert(p, "no %s in %s", field, body);
	return strtoll(p + strlen(pat), NULL, 10);
}

Test(http, routes_statuses_payloads_and_order)
{
	struct itest_http_resp r;

	simple("GET", "/healthz", "", "", &r);
	cr_assert_eq(r.status, 200);
	itest_http_resp_free(&r);
	create_topic("t1", 1);
	simple("PUT", "/v1/topics/t1", "Content-Type: application/json\r\n", "{}", &r);
	cr_assert_eq(r.status, 409);
	cr_assert(strstr(r.head, "application/problem+json") && strstr(r.body, "\"code\":\"TOPIC_EXISTS\""));
	itest_http_resp_free(&r);
	for (int i = 0; i < 3; i++) {
		char body[16];
		snprintf(body, sizeof(body), "m%d", i);
		simple("POST", "/v1/topics/t1/messages", "Content-Type: text/plain\r\nSluice-Key: k\r\n", body, &r);
		cr_assert_eq(r.status, 201, "%s", r.body);
		cr_assert_eq(json_num(r.body, "offset"), i);
		cr_assert(strstr(r.head, "Location: /v1/topics/t1/messages/0/"));
		itest_http_resp_free(&r);
	}
	simple("GET", "/v1/topics/t1/messages?from=earliest&max=10", "", "", &r);
	cr_assert_eq(r.status, 200);
	const char *a = strstr(r.body, "\"payload\":\"m0\""), *b = strstr(r.body, "\"payload\":\"m1\""),
	           *c = strstr(r.body, "\"payload\":\"m2\"");
	cr_assert(a && b && c && a < b && b < c, "%s", r.body);
	cr_assert_eq(json_num(r.body, "next_offset"), 3);
	itest_http_resp_free(&r);
	simple("GET", "/v1/topics/t1/messages/0/1", "", "", &r);
	cr_assert_eq(r.status, 200);
	cr_assert_str_eq(r.body, "m1");
	cr_assert(strstr(r.head, "Content-Type: text/plain") && strstr(r.head, "Sluice-Offset: 1"));
	itest_http_resp_free(&r);
	simple("GET", "/v1/topics/t1/messages/0/9", "", "", &r);
	cr_assert_eq(r.status, 404);
	itest_http_resp_free(&r);
	simple("POST", "/v1/topics/nope/messages", "", "x", &r);
	cr_assert_eq(r.status, 404);
	cr_assert(strstr(r.body, "NO_SUCH_TOPIC"));
	itest_http_resp_free(&r);
	simple("PATCH", "/v1/topics/t1", "", "", &r);
	cr_assert_eq(r.status, 405);
	cr_assert(strstr(r.head, "Allow: PUT, GET, DELETE"));
	itest_http_resp_free(&r);
	simple("GET", "/v2/whatever", "", "", &r);
	cr_assert_eq(r.status, 404);
	itest_http_resp_free(&r);
	simple("GET", "/v1/topics/%ZZ", "", "", &r);
	cr_assert_eq(r.status, 400);
	itest_http_resp_free(&r);
	simple("GET", "/v1/topics/%C3%28", "", "", &r);
	cr_assert_eq(r.status, 400);
	itest_http_resp_free(&r);
	simple("POST", "/v1/groups/g/offsets", "Content-Type: application/json\r\n", "{nope", &r);
	cr_assert_eq(r.status, 400);
	itest_http_resp_free(&r);
	simple("PUT", "/v1/topics/t2", "Content-Type: text/plain\r\n", "x", &r);
	cr_assert_eq(r.status, 415);
	itest_http_resp_free(&r);
	simple("POST", "/v1/groups/g/offsets", "Content-Type: application/json\r\n",
	       "{\"topic\":\"t1\",\"partition\":0,\"offset\":2}", &r);
	cr_assert_eq(r.status, 200);
	itest_http_resp_free(&r);
	simple("GET", "/v1/groups/g", "", "", &r);
	cr_assert(strstr(r.body, "\"committed\":2") && strstr(r.body, "\"lag\":1"), "%s", r.body);
	itest_http_resp_free(&r);
	simple("GET", "/v1/topics/t1/messages?group=g", "", "", &r);
	cr_assert(strstr(r.body, "\"payload\":\"m2\"") && !strstr(r.body, "\"payload\":\"m1\""), "%s", r.body);
	itest_http_resp_free(&r);
	simple("DELETE", "/v1/topics/t1", "", "", &r);
	cr_assert_eq(r.status, 204);
	itest_http_resp_free(&r);
}

Test(http, pipelined_chunked_and_continue)
{
	struct itest_http_conn c;
	struct itest_http_resp r;
	char raw[4096] = "";

	create_topic("p", 1);
	hc_open(&c);
	for (int i = 0; i < 5; i++)
		snprintf(raw + strlen(raw), sizeof(raw) - strlen(raw),
		         "POST /v1/topics/p/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nm%d", i);
	strcat(raw, "GET /v1/topics/p/messages/0/4 HTTP/1.1\r\nHost: x\r\n\r\n");
	hc_send(&c, raw, strlen(raw));
	for (int i = 0; i < 5; i++) {
		cr_assert_eq(itest_http_response(&c, &r), 0);
		cr_assert_eq(r.status, 201);
		cr_assert_eq(json_num(r.body, "offset"), i, "answers out of order: %s", r.body);
		itest_http_resp_free(&r);
	}
	cr_assert_eq(itest_http_response(&c, &r), 0);
	cr_assert_str_eq(r.body, "m4");
	itest_http_resp_free(&r);
	/* chunked */
	const char *ch = "POST /v1/topics/p/messages HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
	                 "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
	hc_send(&c, ch, strlen(ch));
	cr_assert_eq(itest_http_response(&c, &r), 0);
	cr_assert_eq(r.status, 201);
	cr_assert_eq(json_num(r.body, "offset"), 5);
	itest_http_resp_free(&r);
	/* 100-continue: the interim answer comes before the body is sent */
	const char *ex = "POST /v1/topics/p/messages HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
	                 "Content-Length: 4\r\n\r\n";
	hc_send(&c, ex, strlen(ex));
	cr_assert_eq(itest_http_response(&c, &r), 0);
	cr_assert_eq(r.status, 100);
	itest_http_resp_free(&r);
	hc_send(&c, "body", 4);
	cr_assert_eq(itest_http_response(&c, &r), 0);
	cr_assert_eq(r.status, 201);
	itest_http_resp_free(&r);
	close(c.fd);
	simple("GET", "/v1/topics/p/messages/0/5", "", "", &r);
	cr_assert_str_eq(r.body, "hello world");
	itest_http_resp_free(&r);
	simple("GET", "/v1/topics/p/messages/0/6", "", "", &r);
	cr_assert_str_eq(r.body, "body");
	itest_http_resp_free(&r);
}

static void refused(const char *raw, int status)
{
	struct itest_http_conn c;
	struct itest_http_resp r;

	hc_open(&c);
	hc_send(&c, raw, strlen(raw));
	cr_assert_eq(itest_http_response(&c, &r), 0);
	cr_assert_eq(r.status, status, "expected %d, got %d for %.60s", status, r.status, raw);
	cr_assert(strstr(r.head, "application/problem+json"));
	cr_assert(itest_http_closed(&c), "connection left open after %d", status);
	itest_http_resp_free(&r);
	close(c.fd);
}

Test(http, refusals_close_the_connection)
{
	char big[20000];
	struct itest_http_resp r;

	create_topic("s", 1);
	refused("POST /v1/topics/s/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
	        "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	        400);
	refused("POST /v1/topics/s/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
	        400);
	refused("POST /v1/topics/s/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n", 413);
	refused("GARBAGE\r\n\r\n", 400);
	snprintf(big, sizeof(big), "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: %0*d\r\n\r\n", 17000, 0);
	refused(big, 431);
	/* slow headers: the deadline (500 ms here) answers 408 and closes */
	refused("GET /healthz HTTP/1.1\r\nHost: x\r\n", 408);
	/* the node still serves everyone else */
	simple("GET", "/healthz", "", "", &r);
	cr_assert_eq(r.status, 200);
	itest_http_resp_free(&r);
	/* nothing refused was stored */
	simple("GET", "/v1/topics/s", "", "", &r);
	cr_assert(strstr(r.body, "\"end_offset\":0"), "%s", r.body);
	itest_http_resp_free(&r);
}

Test(http, idempotency_key_stores_once)
{
	struct itest_http_resp r;
	long long off;

	create_topic("i", 1);
	simple("POST", "/v1/topics/i/messages", "Idempotency-Key: order-1\r\n", "pay", &r);
	cr_assert_eq(r.status, 201);
	off = json_num(r.body, "offset");
	itest_http_resp_free(&r);
	simple("POST", "/v1/topics/i/messages", "Idempotency-Key: order-1\r\n", "pay", &r);
	cr_assert_eq(r.status, 201);
	cr_assert_eq(json_num(r.body, "offset"), off);
	cr_assert(strstr(r.body, "\"duplicate\":true"));
	itest_http_resp_free(&r);
	simple("GET", "/v1/topics/i", "", "", &r);
	cr_assert(strstr(r.body, "\"end_offset\":1"), "%s", r.body);
	itest_http_resp_free(&r);
	/* NDJSON: one result per message, in order */
	simple("POST", "/v1/topics/i/messages", "Content-Type: application/x-ndjson\r\n",
	       "{\"key\":\"a\",\"payload\":\"x\"}\n{\"payload\":\"y\",\"headers\":{\"h\":\"v\"}}\n", &r);
	cr_assert_eq(r.status, 201, "%s", r.body);
	const char *o1 = strstr(r.body, "\"offset\":1"), *o2 = strstr(r.body, "\"offset\":2");
	cr_assert(o1 && o2 && o1 < o2, "%s", r.body);
	itest_http_resp_free(&r);
}

Test(http, accepted_then_polled)
{
	struct itest_http_resp r;
	char loc[600] = "";
	const char *l;

	create_topic("a", 1);
	simple("POST", "/v1/topics/a/messages", "Prefer: respond-async\r\n", "later", &r);
	cr_assert_eq(r.status, 202);
	cr_assert(strstr(r.head, "Preference-Applied: respond-async") && strstr(r.head, "Vary: Prefer") &&
	          strstr(r.head, "Retry-After:"));
	l = strstr(r.head, "Location: ");
	cr_assert(l);
	sscanf(l + 10, "%599[^\r]", loc);
	itest_http_resp_free(&r);
	int committed = 0;
	for (int i = 0; i < 100 && !committed; i++) {
		simple("GET", loc, "", "", &r);
		cr_assert_eq(r.status, 200);
		committed = strstr(r.body, "\"status\":\"committed\"") != NULL;
		if (!committed) {
			cr_assert(strstr(r.body, "\"status\":\"pending\""), "%s", r.body);
			itest_sleep_ms(50);
		} else {
			cr_assert_eq(json_num(r.body, "offset"), 0);
		}
		itest_http_resp_free(&r);
	}
	cr_assert(committed);
	simple("GET", "/v1/operations/garbage", "", "", &r);
	cr_assert_eq(r.status, 404);
	itest_http_resp_free(&r);
	simple("POST", "/v1/topics/a/messages", "Prefer: respond-async, wait=10\r\n", "soon", &r);
	cr_assert_eq(r.status, 201);
	cr_assert_eq(json_num(r.body, "offset"), 1);
	itest_http_resp_free(&r);
}

/* Read SSE events until n data lines came; returns the ids and data seen. */
static int sse_read(struct itest_http_conn *c, int n, char ids[][128], char data[][64])
{
	long long deadline = itest_now_ms() + 10000;
	int got = 0;
	char id[128] = "";

	while (got < n && itest_now_ms() < deadline) {
		char *nl;
		c->buf[c->len] = 0;
		while ((nl = strchr(c->buf, '\n'))) {
			*nl = 0;
			if (strncmp(c->buf, "id: ", 4) == 0)
				snprintf(id, sizeof(id), "%s", c->buf + 4);
			else if (strncmp(c->buf, "data: ", 6) == 0 && got < n) {
				snprintf(ids[got], 128, "%s", id);
				snprintf(data[got], 64, "%s", c->buf + 6);
				got++;
			}
			itest_http_consume(c, (size_t)(nl - c->buf) + 1);
			c->buf[c->len] = 0;
		}
		if (got < n)
			itest_http_fill(c, 200);
	}
	return got;
}

static void sse_open(struct itest_http_conn *c, const char *extra)
{
	char raw[512];

	hc_open(c);
	snprintf(raw, sizeof(raw), "GET /v1/topics/e/events?from=earliest HTTP/1.1\r\nHost: x\r\n%s\r\n", extra);
	hc_send(c, raw, strlen(raw));
	long long deadline = itest_now_ms() + 10000;
	char *end;
	for (;;) {
		c->buf[c->len] = 0;
		if ((end = strstr(c->buf, "\r\n\r\n")))
			break;
		cr_assert(itest_now_ms() < deadline && itest_http_fill(c, 1000));
	}
	cr_assert(strncmp(c->buf, "HTTP/1.1 200", 12) == 0);
	cr_assert(strstr(c->buf, "text/event-stream") && strstr(c->buf, "Cache-Control: no-cache"));
	itest_http_consume(c, (size_t)(end - c->buf) + 4);
}

Test(http, sse_resumes_exactly)
{
	struct itest_http_conn c;
	struct itest_http_resp r;
	char ids[8][128], data[8][64], hdr[200];
	int seen[8] = {0};

	create_topic("e", 2);
	for (int i = 0; i < 6; i++) {
		char h[64], b[8];
		snprintf(h, sizeof(h), "Sluice-Partition: %d\r\n", i % 2);
		snprintf(b, sizeof(b), "e%d", i);
		simple("POST", "/v1/topics/e/messages", h, b, &r);
		cr_assert_eq(r.status, 201);
		itest_http_resp_free(&r);
	}
	sse_open(&c, "");
	cr_assert_eq(sse_read(&c, 3, ids, data), 3);
	close(c.fd);
	snprintf(hdr, sizeof(hdr), "Last-Event-ID: %s\r\n", ids[2]);
	sse_open(&c, hdr);
	cr_assert_eq(sse_read(&c, 3, ids + 3, data + 3), 3);
	simple("POST", "/v1/topics/e/messages", "Sluice-Partition: 1\r\n", "e6", &r);
	itest_http_resp_free(&r);
	cr_assert_eq(sse_read(&c, 1, ids + 6, data + 6), 1);
	close(c.fd);
	/* every message exactly once over the two streams */
	for (int i = 0; i < 7; i++) {
		int k;
		cr_assert_eq(sscanf(data[i], "e%d", &k), 1, "%s", data[i]);
		cr_assert(k >= 0 && k < 7 && !seen[k], "duplicate or unknown %s", data[i]);
		seen[k] = 1;
	}
	cr_assert_str_eq(data[6], "e6");
}

/* The head of a response, consumed without a body (HEAD). */
static int hc_head_only(struct itest_http_conn *c, struct itest_http_resp *r)
{
	long long deadline = itest_now_ms() + 10000;
	char *end;
	size_t hl;

	memset(r, 0, sizeof(*r));
	for (;;) {
		c->buf[c->len < sizeof(c->buf) ? c->len : sizeof(c->buf) - 1] = 0;
		if ((end = strstr(c->buf, "\r\n\r\n")))
			break;
		if (itest_now_ms() > deadline || !itest_http_fill(c, 1000))
			return -1;
	}
	hl = (size_t)(end - c->buf) + 4;
	cr_assert(hl < sizeof(r->head));
	memcpy(r->head, c->buf, hl);
	r->head[hl] = 0;
	sscanf(r->head, "HTTP/1.1 %d", &r->status);
	itest_http_consume(c, hl);
	return 0;
}

/* The value of a response header ("" when absent). */
static void hdr(const struct itest_http_resp *r, const char *name, char *out, size_t cap)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\r\n%s: ", name);
	out[0] = 0;
	if ((p = strcasestr(r->head, pat)))
		sscanf(p + strlen(pat), "%255[^\r]", out);
	(void)cap;
}

/* HEAD path on a connection, then GET /healthz pipelined behind it: the
 * healthz answer must come next, so the HEAD answer carried no body. */
static void head(const char *path, struct itest_http_resp *r)
{
	char raw[1024];
	struct itest_http_conn c;
	struct itest_http_resp next;

	hc_open(&c);
	snprintf(raw, sizeof(raw), "HEAD %s HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", path);
	hc_send(&c, raw, strlen(raw));
	cr_assert_eq(hc_head_only(&c, r), 0, "no answer to HEAD %s", path);
	cr_assert_eq(itest_http_response(&c, &next), 0, "nothing after HEAD %s", path);
	cr_assert_eq(next.status, 200, "HEAD %s left bytes before the next answer: %s", path, next.head);
	cr_assert_str_eq(next.body, "{\"status\":\"ok\"}");
	itest_http_resp_free(&next);
	close(c.fd);
}

Test(http, head_answers_every_get_route_without_a_body)
{
	static const char *const exact[] = {
	    "/healthz", "/readyz", "/v1/topics", "/v1/topics/h", "/v1/topics/h/messages?partition=0&from=earliest",
	    "/v1/topics/h/messages/0/0", "/v1/topics/h/messages/0/9", "/v1/topics/nope", "/v1/groups/hg", "/v1/cluster",
	    "/v1/asyncapi.json", "/", "/index.html", "/console.js", "/console.css", "/v1/operations/garbage"};
	static const char *const names[] = {"Content-Type", "Content-Length", "Sluice-Offset", "Sluice-Key",
	                                    "Allow", "Location"};
	struct itest_http_resp g, h;
	char a[256], b[256];

	create_topic("h", 2);
	simple("POST", "/v1/topics/h/messages", "Content-Type: text/plain\r\nSluice-Partition: 0\r\nSluice-Key: k\r\n",
	       "hm", &g);
	cr_assert_eq(g.status, 201);
	itest_http_resp_free(&g);
	simple("POST", "/v1/groups/hg/offsets", "Content-Type: application/json\r\n",
	       "{\"topic\":\"h\",\"partition\":0,\"offset\":1}", &g);
	cr_assert_eq(g.status, 200);
	itest_http_resp_free(&g);
	for (size_t i = 0; i < sizeof(exact) / sizeof(exact[0]); i++) {
		simple("GET", exact[i], "", "", &g);
		head(exact[i], &h);
		cr_assert_eq(h.status, g.status, "HEAD %s: %d, GET: %d", exact[i], h.status, g.status);
		for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
			hdr(&g, names[k], a, sizeof(a));
			hdr(&h, names[k], b, sizeof(b));
			cr_assert_str_eq(b, a, "HEAD %s: %s differs from GET's", exact[i], names[k]);
		}
		hdr(&g, "Content-Length", a, sizeof(a));
		cr_assert(a[0] && g.body_len == strtoul(a, NULL, 10), "GET %s", exact[i]);
		itest_http_resp_free(&g);
	}
	/* /metrics changes with every request it counts: the same kind of answer */
	head("/metrics", &h);
	cr_assert_eq(h.status, 200);
	cr_assert(strstr(h.head, "Content-Type: text/plain; version=0.0.4") && strstr(h.head, "Content-Length: "));
	/* an event stream: its headers, no Content-Length, and the connection goes on */
	head("/v1/topics/h/events?partition=1&format=json", &h);
	cr_assert_eq(h.status, 200);
	cr_assert(strstr(h.head, "Content-Type: text/event-stream") && strstr(h.head, "Cache-Control: no-cache") &&
	          strstr(h.head, "X-Accel-Buffering: no") && !strstr(h.head, "Content-Length"),
	          "%s", h.head);
	head("/v1/topics/nope/events", &h);
	cr_assert_eq(h.status, 404);
	cr_assert(strstr(h.head, "application/problem+json") && strstr(h.head, "Content-Length: "));
	head("/v1/topics/h/events?partition=7", &h);
	cr_assert_eq(h.status, 400);
	/* HEAD is listed wherever GET is; other methods stay 405 */
	simple("OPTIONS", "/v1/topics/h", "", "", &g);
	cr_assert_eq(g.status, 204);
	cr_assert(strstr(g.head, "Allow: PUT, GET, DELETE, HEAD, OPTIONS\r\n"), "%s", g.head);
	itest_http_resp_free(&g);
	simple("POST", "/v1/cluster", "", "", &g);
	cr_assert_eq(g.status, 405);
	cr_assert(strstr(g.head, "Allow: GET, HEAD, OPTIONS\r\n"), "%s", g.head);
	itest_http_resp_free(&g);
	head("/v1/groups/hg/offsets", &h);
	cr_assert_eq(h.status, 405);
	cr_assert(strstr(h.head, "Allow: POST, OPTIONS\r\n"), "%s", h.head);
}

static void commit(const char *group, const char *body, struct itest_http_resp *r)
{
	char path[128];

	snprintf(path, sizeof(path), "/v1/groups/%s/offsets", group);
	simple("POST", path, "Content-Type: application/json\r\n", body, r);
}

/* 1 if GET /v1/groups/{group} says that partition has that committed offset. */
static int committed_is(const char *group, const char *topic, int part, int off)
{
	char path[128], pat[128];
	struct itest_http_resp r;
	int ok;

	snprintf(path, sizeof(path), "/v1/groups/%s", group);
	snprintf(pat, sizeof(pat), "\"topic\":\"%s\",\"partition\":%d,\"committed\":%d,", topic, part, off);
	simple("GET", path, "", "", &r);
	ok = r.status == 200 && strstr(r.body, pat) != NULL;
	if (!ok)
		cr_log_error("%s: no %s in %s", path, pat, r.body);
	itest_http_resp_free(&r);
	return ok;
}

Test(http, group_offsets_commits_an_array)
{
	struct itest_http_resp r;
	char body[4096];
	size_t n = 0;

	create_topic("c1", 2);
	create_topic("c2", 1);
	/* the array form: every entry committed, answered with all of them in order */
	commit("ga",
	       "[{\"topic\":\"c1\",\"partition\":0,\"offset\":2},{\"topic\":\"c1\",\"partition\":1,\"offset\":1},"
	       "{\"topic\":\"c2\",\"partition\":0,\"offset\":5}]",
	       &r);
	cr_assert_eq(r.status, 200, "%s", r.body);
	cr_assert_str_eq(r.body, "{\"group\":\"ga\",\"offsets\":[{\"topic\":\"c1\",\"partition\":0,\"offset\":2},"
	                         "{\"topic\":\"c1\",\"partition\":1,\"offset\":1},{\"topic\":\"c2\",\"partition\":0,"
	                         "\"offset\":5}]}");
	itest_http_resp_free(&r);
	cr_assert(committed_is("ga", "c1", 0, 2) && committed_is("ga", "c1", 1, 1) && committed_is("ga", "c2", 0, 5));
	/* the single object form is answered as before */
	commit("ga", "{\"topic\":\"c2\",\"partition\":0,\"offset\":6}", &r);
	cr_assert_eq(r.status, 200, "%s", r.body);
	cr_assert_str_eq(r.body, "{\"group\":\"ga\",\"topic\":\"c2\",\"partition\":0,\"offset\":6}");
	itest_http_resp_free(&r);
	cr_assert(committed_is("ga", "c2", 0, 6));
	/* a native error: the first failing entry in array order is the answer; the others are committed */
	commit("ga",
	       "[{\"topic\":\"c1\",\"partition\":0,\"offset\":3},{\"topic\":\"gone\",\"partition\":0,\"offset\":1},"
	       "{\"topic\":\"c1\",\"partition\":9,\"offset\":1},{\"topic\":\"c1\",\"partition\":1,\"offset\":4}]",
	       &r);
	cr_assert_eq(r.status, 404, "%s", r.body);
	cr_assert(strstr(r.head, "application/problem+json") && strstr(r.body, "\"code\":\"NO_SUCH_TOPIC\"") &&
	          strstr(r.body, "offsets[1]"),
	          "%s", r.body);
	itest_http_resp_free(&r);
	cr_assert(committed_is("ga", "c1", 0, 3) && committed_is("ga", "c1", 1, 4));
	commit("ga", "[{\"topic\":\"c1\",\"partition\":9,\"offset\":1},{\"topic\":\"gone\",\"partition\":0,\"offset\":1}]",
	       &r);
	cr_assert_eq(r.status, 400, "%s", r.body);
	cr_assert(strstr(r.body, "offsets[0]"), "%s", r.body);
	itest_http_resp_free(&r);
	/* a malformed entry refuses the whole body before anything is sent */
	commit("ga", "[{\"topic\":\"c1\",\"partition\":0,\"offset\":7},{\"topic\":5,\"offset\":1}]", &r);
	cr_assert_eq(r.status, 400, "%s", r.body);
	cr_assert(strstr(r.body, "offsets[1]"), "%s", r.body);
	itest_http_resp_free(&r);
	cr_assert(committed_is("ga", "c1", 0, 3));
	commit("ga", "[{\"topic\":\"c1\",\"partition\":0,\"offset\":-1}]", &r);
	cr_assert_eq(r.status, 400, "%s", r.body);
	itest_http_resp_free(&r);
	commit("ga", "[]", &r);
	cr_assert_eq(r.status, 400, "%s", r.body);
	itest_http_resp_free(&r);
	commit("ga", "[1,2]", &r);
	cr_assert_eq(r.status, 400, "%s", r.body);
	itest_http_resp_free(&r);
	/* many at once: all answered, the last commit of a partition is the one that stays */
	n += (size_t)snprintf(body + n, sizeof(body) - n, "[");
	for (int i = 0; i < 80; i++)
		n += (size_t)snprintf(body + n, sizeof(body) - n, "%s{\"topic\":\"c1\",\"partition\":%d,\"offset\":%d}",
		                      i ? "," : "", i % 2, 10 + i);
	snprintf(body + n, sizeof(body) - n, "]");
	cr_assert(strlen(body) < 4000);
	commit("gb", body, &r);
	cr_assert_eq(r.status, 200, "%s", r.body);
	cr_assert(strstr(r.body, "{\"topic\":\"c1\",\"partition\":1,\"offset\":89}]}"), "%s", r.body);
	itest_http_resp_free(&r);
	cr_assert(committed_is("gb", "c1", 0, 88) && committed_is("gb", "c1", 1, 89));
	/* pipelined behind the commits, a read sees them */
	struct itest_http_conn c;
	const char *two = "POST /v1/groups/gc/offsets HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
	                  "Content-Length: 81\r\n\r\n"
	                  "[{\"topic\":\"c1\",\"partition\":0,\"offset\":1},{\"topic\":\"c2\",\"partition\":0,\"offset\":1}]"
	                  "GET /v1/groups/gc HTTP/1.1\r\nHost: x\r\n\r\n";
	hc_open(&c);
	hc_send(&c, two, strlen(two));
	cr_assert_eq(itest_http_response(&c, &r), 0);
	cr_assert_eq(r.status, 200, "%s", r.body);
	itest_http_resp_free(&r);
	cr_assert_eq(itest_http_response(&c, &r), 0);
	cr_assert(strstr(r.body, "\"topic\":\"c1\",\"partition\":0,\"committed\":1,") &&
	          strstr(r.body, "\"topic\":\"c2\",\"partition\":0,\"committed\":1,"),
	          "%s", r.body);
	itest_http_resp_free(&r);
	close(c.fd);
}

/* ---------- NDJSON batches (a node with a 256 KiB body limit) ---------- */

static void setup_big(void)
{
	cr_assert_eq(itest_node_init(&node), 0);
	node.extra[0] = "--http-body-bytes-max";
	node.extra[1] = "256k";
	cr_assert_eq(itest_node_start(&node), 0);
}

TestSuite(http_ndjson, .init = setup_big, .fini = teardown, .timeout = 120);

/* POST an NDJSON body of n bytes to topic t. */
static void post_ndjson(const char *t, const char *body, size_t n, struct itest_http_resp *r)
{
	char head[512];
	int hl = snprintf(head, sizeof(head),
	                  "POST /v1/topics/%s/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\n"
	                  "Content-Length: %zu\r\n\r\n",
	                  t, n);
	struct itest_http_conn c;

	hc_open(&c);
	hc_send(&c, head, (size_t)hl);
	hc_send(&c, body, n);
	cr_assert_eq(itest_http_response(&c, r), 0, "no response to an NDJSON POST of %zu bytes", n);
	close(c.fd);
}

/* GET one message: its payload must be want[0..wn), its key and header as given. */
static void read_back(const char *t, long long off, const char *want, size_t wn, const char *key_hdr,
                      const char *hdr)
{
	char path[256];
	struct itest_http_resp r;

	snprintf(path, sizeof(path), "/v1/topics/%s/messages/0/%lld", t, off);
	simple("GET", path, "", "", &r);
	cr_assert_eq(r.status, 200, "offset %lld: %s", off, r.body);
	cr_assert_eq(r.body_len, wn, "offset %lld: %zu bytes, want %zu", off, r.body_len, wn);
	cr_assert_eq(memcmp(r.body, want, wn), 0, "offset %lld: payload differs", off);
	if (key_hdr)
		cr_assert(strstr(r.head, key_hdr), "offset %lld: no %s in %s", off, key_hdr, r.head);
	else
		cr_assert_null(strstr(r.head, "Sluice-Key:"), "%s", r.head);
	if (hdr)
		cr_assert(strstr(r.head, hdr), "offset %lld: no %s in %s", off, hdr, r.head);
	itest_http_resp_free(&r);
}

static long long end_offset(const char *t)
{
	char path[256];
	struct itest_http_resp r;
	long long e;

	snprintf(path, sizeof(path), "/v1/topics/%s", t);
	simple("GET", path, "", "", &r);
	e = json_num(r.body, "end_offset");
	itest_http_resp_free(&r);
	return e;
}

Test(http_ndjson, payloads_keys_headers_escapes_read_back_in_order)
{
	static const char body[] =
	    "{\"key\":\"k1\",\"headers\":{\"h\":\"v1\",\"trace\":\"t\"},\"payload\":\"one\"}\n"
	    "\n"                                                        /* empty: skipped, still counted */
	    "  { \"payload\" : \"a\\u0000b\\\"c\\\\d\\/e\\n\" , \"key\" : null }\r\n" /* NUL, escapes, CRLF */
	    "{\"payload\":\"\\ud83d\\ude00 \\u00e9 \xc3\xa9\",\"headers\":{\"h\":\"\\u0041\"}}\n" /* surrogate pair, UTF-8 */
	    "{\"payload\":{\"n\":[1,2]},\"key\":\"k4\"}\n"              /* a JSON value: its compact text */
	    "{\"other\":1,\"payload\":\"p5\"}\n"                        /* unknown members are ignored */
	    "{}";                                                        /* no newline at the end */
	struct itest_http_resp r;
	const char *p;
	int n = 0;

	create_topic("nd", 1);
	post_ndjson("nd", body, sizeof(body) - 1, &r);
	cr_assert_eq(r.status, 201, "%s", r.body);
	cr_assert(strstr(r.head, "Location: /v1/topics/nd/messages/0/0\r\n"), "%s", r.head);
	/* one result per message, offsets in order */
	for (p = r.body; (p = strstr(p, "\"offset\":")); p++, n++)
		cr_assert_eq(strtoll(p + 9, NULL, 10), n, "%s", r.body);
	cr_assert_eq(n, 6, "%s", r.body);
	cr_assert(strncmp(r.body, "{\"results\":[{\"topic\":\"nd\",\"partition\":0,\"offset\":0,\"timestamp\":", 63) == 0,
	          "%s", r.body);
	cr_assert(strstr(r.body, ",\"duplicate\":false}]}"), "%s", r.body);
	itest_http_resp_free(&r);
	read_back("nd", 0, "one", 3, "Sluice-Key: k1\r\n", "Sluice-Header-trace: t\r\n");
	read_back("nd", 0, "one", 3, "Sluice-Key: k1\r\n", "Sluice-Header-h: v1\r\n");
	read_back("nd", 1, "a\0b\"c\\d/e\n", 10, NULL, NULL);
	read_back("nd", 2, "\xf0\x9f\x98\x80 \xc3\xa9 \xc3\xa9", 10, NULL, "Sluice-Header-h: A\r\n");
	read_back("nd", 3, "{\"n\":[1,2]}", 11, "Sluice-Key: k4\r\n", NULL);
	read_back("nd", 4, "p5", 2, NULL, NULL);
	read_back("nd", 5, "", 0, NULL, NULL);
	cr_assert_eq(end_offset("nd"), 6);
}

/* A refused body names the line (counted from 1, empty lines included) and stores nothing. */
static void refused_line(const char *body, int line)
{
	char want[32];
	struct itest_http_resp r;

	post_ndjson("ne", body, strlen(body), &r);
	cr_assert_eq(r.status, 400, "%s -> %s", body, r.body);
	cr_assert(strstr(r.head, "Content-Type: application/problem+json"), "%s", r.head);
	snprintf(want, sizeof(want), "\"detail\":\"line %d: ", line);
	cr_assert(strstr(r.body, want), "%s -> %s (want line %d)", body, r.body, line);
	itest_http_resp_free(&r);
}

Test(http_ndjson, errors_name_their_line_and_store_nothing)
{
	struct itest_http_resp r;

	create_topic("ne", 1);
	refused_line("{\"payload\":\"ok\"}\n{\"payload\":\"bad \\x escape\"}\n", 2);
	refused_line("{\"payload\":\"ok\"}\n\n{\"payload\":\"\\ud800 lone\"}\n", 3);
	refused_line("{\"payload\":\"\\udc00\"}", 1);
	refused_line("{\"payload\":\"\\u12\"}", 1);
	refused_line("{\"payload\":\"ok\"}\n{\"payload\":\"\xff\"}\n", 2);
	refused_line("{\"payload\":\"raw \t tab\"}", 1);
	refused_line("[1,2]", 1);
	refused_line("{\"payload\":\"x\"} trailing", 1);
	refused_line("{\"payload\":\"x\",\"payload\":\"y\"}", 1);
	refused_line("{\"payload\":\"x\"}\n{\"headers\":{\"a\":\"1\",\"a\":\"2\"}}", 2);
	refused_line("{\"headers\":{\"a\":1}}", 1);
	refused_line("{\"headers\":{\"\":\"v\"}}", 1);
	refused_line("{\"headers\":{\"a\\u0000b\":\"v\"}}", 1);
	refused_line("{\"key\":5}", 1);
	refused_line("{\"payload\":\"x\"", 1);
	post_ndjson("ne", "\n\r\n\n", 4, &r);
	cr_assert_eq(r.status, 400, "%s", r.body);
	cr_assert(strstr(r.body, "empty batch"), "%s", r.body);
	itest_http_resp_free(&r);
	cr_assert_eq(end_offset("ne"), 0);
}

Test(http_ndjson, long_lines_many_lines_and_the_body_limit)
{
	size_t big = 60000, cap = 250000, n = 0;
	char *body = malloc(cap), *want = malloc(big);
	struct itest_http_resp r;
	long long base;

	cr_assert(body && want);
	create_topic("nl", 1);
	/* a line far longer than a socket read or a buffer chain, with escapes across it */
	for (size_t i = 0; i < big; i++)
		want[i] = (char)('a' + i % 26);
	n += (size_t)snprintf(body + n, cap - n, "{\"key\":\"long\",\"payload\":\"");
	for (size_t i = 0; i < big; i++) {
		if (i % 1000 == 999) {
			want[i] = '\n';
			n += (size_t)snprintf(body + n, cap - n, "\\n");
		} else {
			body[n++] = want[i];
		}
	}
	n += (size_t)snprintf(body + n, cap - n, "\"}\n");
	/* then 400 short lines, each its own payload (the answer must fit the test's 64 KiB buffer) */
	for (int i = 0; i < 400; i++)
		n += (size_t)snprintf(body + n, cap - n, "{\"payload\":\"m%d\"}\n", i);
	cr_assert(n < cap);
	post_ndjson("nl", body, n, &r);
	cr_assert_eq(r.status, 201, "%.300s", r.body);
	cr_assert(strstr(r.body, "\"offset\":400,") && !strstr(r.body, "\"offset\":401,"), "%.300s", r.body);
	itest_http_resp_free(&r);
	read_back("nl", 0, want, big, "Sluice-Key: long\r\n", NULL);
	base = 1;
	for (int i = 0; i < 400; i += 133) {
		char p[16];
		int pl = snprintf(p, sizeof(p), "m%d", i);
		read_back("nl", base + i, p, (size_t)pl, NULL, NULL);
	}
	read_back("nl", 400, "m399", 4, NULL, NULL);
	/* over body_bytes_max (256 KiB): 413, problem+json, nothing stored */
	char *over = malloc(300000);
	cr_assert(over);
	memset(over, ' ', 300000);
	memcpy(over, "{\"payload\":\"x\"}\n", 16);
	post_ndjson("nl", over, 300000, &r);
	cr_assert_eq(r.status, 413, "%s", r.body);
	cr_assert(strstr(r.head, "application/problem+json") && strstr(r.body, "\"status\":413"), "%s", r.body);
	itest_http_resp_free(&r);
	cr_assert_eq(end_offset("nl"), 401);
	free(over);
	free(body);
	free(want);
}

/* ---------- OPTIONS and CORS ---------- */

Test(http, options_and_no_cors_by_default)
{
	struct itest_http_resp r;

	simple("OPTIONS", "/v1/topics/o/messages", "Origin: https://app.example\r\n", "", &r);
	cr_assert_eq(r.status, 204, "%s", r.head);
	cr_assert(strstr(r.head, "Allow: POST, GET, HEAD, OPTIONS\r\n"), "%s", r.head);
	cr_assert_null(strcasestr(r.head, "Access-Control-"), "%s", r.head);
	itest_http_resp_free(&r);
	simple("OPTIONS", "/v1/nothing/here", "", "", &r);
	cr_assert_eq(r.status, 404, "%s", r.head);
	cr_assert(strstr(r.head, "Content-Type: application/problem+json"), "%s", r.head);
	itest_http_resp_free(&r);
	simple("GET", "/healthz", "Origin: https://app.example\r\n", "", &r);
	cr_assert_null(strcasestr(r.head, "Access-Control-"), "%s", r.head);
	itest_http_resp_free(&r);
}

static void setup_cors(void)
{
	cr_assert_eq(itest_node_init(&node), 0);
	node.extra[0] = "--http-cors-origins";
	node.extra[1] = "https://app.example, http://localhost:3000";
	cr_assert_eq(itest_node_start(&node), 0);
}

TestSuite(http_cors, .init = setup_cors, .fini = teardown, .timeout = 120);

Test(http_cors, preflight_and_actual_responses)
{
	struct itest_http_resp r;

	create_topic("co", 1);
	/* a preflight from an allowed origin */
	simple("OPTIONS", "/v1/topics/co/messages",
	       "Origin: https://app.example\r\nAccess-Control-Request-Method: POST\r\n"
	       "Access-Control-Request-Headers: content-type, idempotency-key\r\n",
	       "", &r);
	cr_assert_eq(r.status, 204, "%s", r.head);
	cr_assert(strstr(r.head, "Allow: POST, GET, HEAD, OPTIONS\r\n"), "%s", r.head);
	cr_assert(strstr(r.head, "Access-Control-Allow-Origin: https://app.example\r\n"), "%s", r.head);
	cr_assert(strstr(r.head, "Access-Control-Allow-Methods: POST, GET, HEAD, OPTIONS\r\n"), "%s", r.head);
	cr_assert(strstr(r.head, "Access-Control-Allow-Headers: content-type, idempotency-key\r\n"), "%s", r.head);
	cr_assert(strstr(r.head, "Access-Control-Max-Age: 600\r\n") && strstr(r.head, "Vary: Origin\r\n"), "%s", r.head);
	itest_http_resp_free(&r);
	/* an origin not in the list: no CORS header, the browser refuses */
	simple("OPTIONS", "/v1/topics/co/messages", "Origin: https://evil.example\r\nAccess-Control-Request-Method: POST\r\n",
	       "", &r);
	cr_assert_eq(r.status, 204);
	cr_assert_null(strcasestr(r.head, "Access-Control-"), "%s", r.head);
	itest_http_resp_free(&r);
	/* actual responses: the origin and the headers a script may read */
	simple("POST", "/v1/topics/co/messages", "Origin: http://localhost:3000\r\n", "hello", &r);
	cr_assert_eq(r.status, 201, "%s", r.body);
	cr_assert(strstr(r.head, "Access-Control-Allow-Origin: http://localhost:3000\r\n"), "%s", r.head);
	cr_assert(strstr(r.head, "Access-Control-Expose-Headers: Location, Retry-After, Preference-Applied"), "%s", r.head);
	itest_http_resp_free(&r);
	simple("GET", "/v1/nothing", "Origin: https://app.example\r\n", "", &r);
	cr_assert_eq(r.status, 404);
	cr_assert(strstr(r.head, "Access-Control-Allow-Origin: https://app.example\r\n"), "%s", r.head);
	itest_http_resp_free(&r);
	/* an event stream */
	struct itest_http_conn c;
	const char *get = "GET /v1/topics/co/events?from=earliest HTTP/1.1\r\nHost: x\r\nOrigin: https://app.example\r\n\r\n";
	long long deadline = itest_now_ms() + 10000;
	hc_open(&c);
	hc_send(&c, get, strlen(get));
	for (;;) {
		c.buf[c.len < sizeof(c.buf) ? c.len : sizeof(c.buf) - 1] = 0;
		if (strstr(c.buf, "\r\n\r\n") || itest_now_ms() > deadline || !itest_http_fill(&c, 1000))
			break;
	}
	cr_assert(strstr(c.buf, "HTTP/1.1 200") && strstr(c.buf, "text/event-stream"), "%s", c.buf);
	cr_assert(strstr(c.buf, "Access-Control-Allow-Origin: https://app.example\r\n"), "%s", c.buf);
	close(c.fd);
}
