#define _GNU_SOURCE
/*
 * http_consumer_test.c: durable consumers over HTTP on a real sluiced:
 * create (201, Location), a duplicate (409), list and describe fields,
 * pulls in offset order with attempt 1 and the fetch route's message
 * envelope, acks moving the ack floor, redelivery after ack_timeout_ms,
 * nacks with delay_ms not coming back early, bad bodies and queries (400
 * with a problem code), an unknown consumer (404 NO_SUCH_CONSUMER), HEAD on
 * a pull taking nothing, and delete (204, then 404).
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static struct itest_node node;

static void setup(void)
{
	cr_assert_eq(itest_node_init(&node), 0);
	cr_assert_eq(itest_node_start(&node), 0);
}

static void teardown(void)
{
	itest_node_destroy(&node);
}

TestSuite(http_consumer, .init = setup, .fini = teardown, .timeout = 120);

/* method path with a JSON body (or none when body is NULL); the status must
 * be want. Returns the parsed JSON body (NULL for an empty one); the caller
 * json_decref()s it. */
static json_t *call(const char *method, const char *path, const char *body, int want)
{
	struct itest_http_resp r;
	json_error_t e;
	json_t *j = NULL;

	cr_assert_eq(itest_http_simple(node.http_port, method, path, body ? "Content-Type: application/json\r\n" : "",
	                               body ? body : "", &r),
	             0, "no response to %s %s", method, path);
	cr_assert_eq(r.status, want, "%s %s: %d, not %d: %s", method, path, r.status, want, r.body);
	if (r.body_len) {
		j = json_loadb(r.body, r.body_len, 0, &e);
		cr_assert(j, "%s %s: not JSON: %s", method, path, r.body);
	}
	itest_http_resp_free(&r);
	return j;
}

/* A problem+json answer with this status and code. */
static void problem(const char *method, const char *path, const char *body, int status, const char *code)
{
	json_t *j = call(method, path, body, status);

	cr_assert(j && json_is_string(json_object_get(j, "code")), "%s %s: no problem code", method, path);
	cr_assert_str_eq(json_string_value(json_object_get(j, "code")), code, "%s %s", method, path);
	json_decref(j);
}

static long long num(json_t *o, const char *field)
{
	json_t *v = json_object_get(o, field);

	cr_assert(json_is_integer(v), "no integer %s in %s", field, json_dumps(o, JSON_COMPACT));
	return json_integer_value(v);
}

static void topic(const char *name, int parts)
{
	char path[128], body[64];

	snprintf(path, sizeof(path), "/v1/topics/%s", name);
	snprintf(body, sizeof(body), "{\"partitions\":%d}", parts);
	json_decref(call("PUT", path, body, 201));
}

/* Publish payload to topic/partition with a key and a header; its offset. */
static long long publish(const char *t, int part, const char *payload)
{
	char path[128], hdrs[256];
	struct itest_http_resp r;
	long long off;
	json_t *j;

	snprintf(path, sizeof(path), "/v1/topics/%s/messages", t);
	snprintf(hdrs, sizeof(hdrs), "Content-Type: text/plain\r\nSluice-Partition: %d\r\nSluice-Key: k-%s\r\n"
	         "Sluice-Header-trace: tr-%s\r\n", part, payload, payload);
	cr_assert_eq(itest_http_simple(node.http_port, "POST", path, hdrs, payload, &r), 0);
	cr_assert_eq(r.status, 201, "%s", r.body);
	j = json_loads(r.body, 0, NULL);
	off = num(j, "offset");
	json_decref(j);
	itest_http_resp_free(&r);
	return off;
}

static json_t *pull(const char *consumer, int max, int wait_ms)
{
	char path[256];
	json_t *j, *m;

	snprintf(path, sizeof(path), "/v1/consumers/%s/messages?max=%d&wait_ms=%d", consumer, max, wait_ms);
	j = call("GET", path, NULL, 200);
	m = json_object_get(j, "messages");
	cr_assert(json_is_array(m), "pull: no messages array");
	json_incref(m);
	json_decref(j);
	return m;
}

static json_t *describe(const char *consumer)
{
	char path[256];

	snprintf(path, sizeof(path), "/v1/consumers/%s", consumer);
	return call("GET", path, NULL, 200);
}

static json_t *part_of(json_t *info, int p)
{
	json_t *parts = json_object_get(info, "partitions"), *e;
	size_t i;

	json_array_foreach(parts, i, e)
	{
		if (num(e, "partition") == p)
			return e;
	}
	cr_assert_fail("no partition %d", p);
	return NULL;
}

Test(http_consumer, create_duplicate_list_describe_delete)
{
	struct itest_http_resp r;
	json_t *j, *p;

	topic("orders", 2);
	cr_assert_eq(itest_http_simple(node.http_port, "POST", "/v1/consumers", "Content-Type: application/json\r\n",
	                               "{\"name\":\"billing\",\"topic\":\"orders\"}", &r),
	             0);
	cr_assert_eq(r.status, 201, "%s", r.body);
	cr_assert(strstr(r.head, "\r\nLocation: /v1/consumers/billing\r\n"), "%s", r.head);
	cr_assert(strstr(r.body, "\"name\":\"billing\""), "%s", r.body);
	itest_http_resp_free(&r);
	problem("POST", "/v1/consumers", "{\"name\":\"billing\",\"topic\":\"orders\"}", 409, "CONSUMER_EXISTS");
	problem("PUT", "/v1/consumers/billing", "{\"topic\":\"orders\"}", 409, "CONSUMER_EXISTS");
	json_decref(call("PUT", "/v1/consumers/audit",
	                 "{\"topic\":\"orders\",\"mode\":\"shared\",\"max_in_flight\":5,\"max_deliveries\":3,"
	                 "\"ack_timeout_ms\":1234,\"schedule_ms\":[10,20],\"dead_letter_topic\":\"orders.bad\","
	                 "\"from\":\"latest\"}",
	                 201));
	problem("POST", "/v1/consumers", "{\"name\":\"x\",\"topic\":\"nope\"}", 404, "NO_SUCH_TOPIC");

	j = call("GET", "/v1/consumers", NULL, 200);
	cr_assert_eq(json_array_size(json_object_get(j, "consumers")), 2, "%s", json_dumps(j, 0));
	json_decref(j);

	j = describe("audit");
	cr_assert_str_eq(json_string_value(json_object_get(j, "name")), "audit");
	cr_assert_str_eq(json_string_value(json_object_get(j, "topic")), "orders");
	cr_assert_str_eq(json_string_value(json_object_get(j, "mode")), "shared");
	cr_assert_eq(num(j, "max_in_flight"), 5);
	cr_assert_eq(num(j, "max_deliveries"), 3);
	cr_assert_eq(num(j, "ack_timeout_ms"), 1234);
	cr_assert_eq(json_array_size(json_object_get(j, "schedule_ms")), 2);
	cr_assert_eq(json_integer_value(json_array_get(json_object_get(j, "schedule_ms"), 1)), 20);
	cr_assert_str_eq(json_string_value(json_object_get(j, "dead_letter_topic")), "orders.bad");
	cr_assert(num(j, "created_ms") > 0);
	cr_assert_eq(json_array_size(json_object_get(j, "partitions")), 2);
	p = part_of(j, 1);
	static const char *const fields[] = {"ack_floor", "next_offset", "in_flight", "end_offset", "lag",
	                                     "delivered", "redelivered", "acked", "dead_lettered"};
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		cr_assert_eq(num(p, fields[i]), 0, "%s", fields[i]);
	cr_assert(json_is_string(json_object_get(p, "last_error")));
	json_decref(j);
	/* the defaults are filled in */
	j = describe("billing");
	cr_assert_str_eq(json_string_value(json_object_get(j, "mode")), "ordered");
	cr_assert(num(j, "ack_timeout_ms") > 0 && num(j, "max_deliveries") > 0);
	json_decref(j);

	cr_assert_null(call("DELETE", "/v1/consumers/audit", NULL, 204));
	problem("GET", "/v1/consumers/audit", NULL, 404, "NO_SUCH_CONSUMER");
	problem("DELETE", "/v1/consumers/audit", NULL, 404, "NO_SUCH_CONSUMER");
	j = call("GET", "/v1/consumers", NULL, 200);
	cr_assert_eq(json_array_size(json_object_get(j, "consumers")), 1);
	json_decref(j);
}

Test(http_consumer, pull_in_order_with_the_fetch_envelope_then_ack)
{
	json_t *m, *page, *fetched, *j;
	size_t i;

	topic("t", 1);
	for (int k = 0; k < 5; k++) {
		char p[16];
		snprintf(p, sizeof(p), "m%d", k);
		cr_assert_eq(publish("t", 0, p), k);
	}
	json_decref(call("POST", "/v1/consumers",
	                 "{\"name\":\"c\",\"topic\":\"t\",\"mode\":\"shared\",\"max_in_flight\":100}", 201));
	m = pull("c", 10, 1000);
	cr_assert_eq(json_array_size(m), 5, "%s", json_dumps(m, 0));
	page = call("GET", "/v1/topics/t/messages?partition=0&from=earliest", NULL, 200);
	fetched = json_object_get(page, "messages");
	json_array_foreach(m, i, j)
	{
		cr_assert_eq(num(j, "offset"), (long long)i);
		cr_assert_eq(num(j, "attempt"), 1);
		/* the same object as the fetch route's, plus "attempt" */
		json_t *copy = json_deep_copy(j);
		json_object_del(copy, "attempt");
		cr_assert(json_equal(copy, json_array_get(fetched, i)), "pulled %s, fetched %s",
		          json_dumps(copy, JSON_COMPACT), json_dumps(json_array_get(fetched, i), JSON_COMPACT));
		json_decref(copy);
	}
	json_decref(page);
	json_decref(m);
	/* nothing more is due: an empty list after wait_ms, not 204 */
	m = pull("c", 10, 200);
	cr_assert_eq(json_array_size(m), 0);
	json_decref(m);
	/* the three body forms: object with messages, bare array, one item */
	j = call("POST", "/v1/consumers/c/ack", "{\"messages\":[{\"partition\":0,\"offset\":0},{\"offset\":1}]}", 200);
	cr_assert_eq(num(j, "acked"), 2);
	json_decref(j);
	j = call("POST", "/v1/consumers/c/ack", "[{\"partition\":0,\"offset\":2},{\"partition\":0,\"offset\":3}]", 200);
	cr_assert_eq(num(j, "acked"), 2);
	json_decref(j);
	j = describe("c");
	cr_assert_eq(num(part_of(j, 0), "ack_floor"), 4, "%s", json_dumps(j, 0));
	cr_assert_eq(num(part_of(j, 0), "in_flight"), 1);
	json_decref(j);
	j = call("POST", "/v1/consumers/c/ack", "{\"partition\":0,\"offset\":4}", 200);
	cr_assert_eq(num(j, "acked"), 1);
	json_decref(j);
	j = describe("c");
	cr_assert_eq(num(part_of(j, 0), "ack_floor"), 5);
	cr_assert_eq(num(part_of(j, 0), "acked"), 5);
	cr_assert_eq(num(part_of(j, 0), "lag"), 0);
	json_decref(j);
}

Test(http_consumer, ordered_one_at_a_time)
{
	json_t *m;

	topic("o", 1);
	publish("o", 0, "a");
	publish("o", 0, "b");
	json_decref(call("PUT", "/v1/consumers/ord", "{\"topic\":\"o\"}", 201));
	m = pull("ord", 10, 500);
	cr_assert_eq(json_array_size(m), 1);
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(m, 0), "payload")), "a");
	json_decref(m);
	m = pull("ord", 10, 200);
	cr_assert_eq(json_array_size(m), 0, "ordered: b before a is acked");
	json_decref(m);
	json_decref(call("POST", "/v1/consumers/ord/ack", "{\"offset\":0}", 200));
	m = pull("ord", 10, 1000);
	cr_assert_eq(json_array_size(m), 1);
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(m, 0), "payload")), "b");
	json_decref(m);
}

Test(http_consumer, unacked_comes_back_after_the_ack_timeout)
{
	json_t *m, *j;

	topic("r", 1);
	publish("r", 0, "x");
	json_decref(call("POST", "/v1/consumers", "{\"name\":\"slow\",\"topic\":\"r\",\"ack_timeout_ms\":300}", 201));
	m = pull("slow", 1, 1000);
	cr_assert_eq(json_array_size(m), 1);
	cr_assert_eq(num(json_array_get(m, 0), "attempt"), 1);
	json_decref(m);
	m = pull("slow", 1, 5000);
	cr_assert_eq(json_array_size(m), 1, "no redelivery after the ack timeout");
	cr_assert_eq(num(json_array_get(m, 0), "offset"), 0);
	cr_assert_eq(num(json_array_get(m, 0), "attempt"), 2);
	json_decref(m);
	j = describe("slow");
	cr_assert_eq(num(part_of(j, 0), "redelivered"), 1);
	cr_assert_eq(num(part_of(j, 0), "delivered"), 2);
	json_decref(j);
}

Test(http_consumer, nack_with_delay_not_before_the_delay)
{
	json_t *m, *j;
	long long t0;

	topic("n", 1);
	publish("n", 0, "y");
	json_decref(call("POST", "/v1/consumers", "{\"name\":\"nk\",\"topic\":\"n\"}", 201));
	m = pull("nk", 1, 1000);
	cr_assert_eq(json_array_size(m), 1);
	json_decref(m);
	t0 = itest_now_ms();
	j = call("POST", "/v1/consumers/nk/nack", "{\"messages\":[{\"offset\":0}],\"delay_ms\":1500,\"error\":\"db down\"}",
	         200);
	cr_assert_eq(num(j, "nacked"), 1);
	json_decref(j);
	m = pull("nk", 0, 500); /* max=0: the default */
	cr_assert_eq(json_array_size(m), 0, "redelivered before delay_ms");
	json_decref(m);
	m = pull("nk", 1, 5000);
	cr_assert_eq(json_array_size(m), 1);
	cr_assert_eq(num(json_array_get(m, 0), "attempt"), 2);
	cr_assert(itest_now_ms() - t0 >= 1400, "back after %lld ms", itest_now_ms() - t0);
	json_decref(m);
	j = describe("nk");
	cr_assert_str_eq(json_string_value(json_object_get(part_of(j, 0), "last_error")), "db down");
	json_decref(j);
	/* in_progress has the same shape */
	j = call("POST", "/v1/consumers/nk/in_progress", "[{\"partition\":0,\"offset\":0}]", 200);
	cr_assert_eq(num(j, "in_progress"), 1);
	json_decref(j);
	/* an error over 200 bytes is cut on a character boundary: 150 two-byte characters become 100 */
	char body[1024], want[256];
	size_t n = (size_t)snprintf(body, sizeof(body), "{\"offset\":0,\"delay_ms\":0,\"error\":\"");
	for (int i = 0; i < 150; i++)
		n += (size_t)snprintf(body + n, sizeof(body) - n, "\xc3\xa9");
	snprintf(body + n, sizeof(body) - n, "\"}");
	for (int i = 0; i < 100; i++)
		memcpy(want + 2 * i, "\xc3\xa9", 2);
	want[200] = 0;
	json_decref(call("POST", "/v1/consumers/nk/nack", body, 200));
	j = describe("nk");
	cr_assert_str_eq(json_string_value(json_object_get(part_of(j, 0), "last_error")), want);
	json_decref(j);
}

Test(http_consumer, head_on_a_pull_takes_nothing)
{
	struct itest_http_resp r;
	json_t *m;

	topic("h", 1);
	publish("h", 0, "z");
	json_decref(call("POST", "/v1/consumers", "{\"name\":\"hc\",\"topic\":\"h\"}", 201));
	cr_assert_eq(itest_http_request(node.http_port, "HEAD /v1/consumers/hc/messages HTTP/1.1\r\nHost: x\r\n\r\n", &r),
	             0);
	cr_assert_eq(r.status, 200, "%s", r.head);
	cr_assert(strstr(r.head, "application/json"), "%s", r.head);
	itest_http_resp_free(&r);
	m = pull("hc", 1, 1000);
	cr_assert_eq(json_array_size(m), 1);
	cr_assert_eq(num(json_array_get(m, 0), "attempt"), 1, "HEAD took the message");
	json_decref(m);
}

Test(http_consumer, unknown_consumer_is_404)
{
	problem("GET", "/v1/consumers/nope", NULL, 404, "NO_SUCH_CONSUMER");
	problem("GET", "/v1/consumers/nope/messages?max=1", NULL, 404, "NO_SUCH_CONSUMER");
	problem("POST", "/v1/consumers/nope/ack", "{\"offset\":0}", 404, "NO_SUCH_CONSUMER");
	problem("DELETE", "/v1/consumers/nope", NULL, 404, "NO_SUCH_CONSUMER");
}

Test(http_consumer, bad_bodies_and_queries_are_400)
{
	struct itest_http_resp r;
	char *big;
	size_t n = 0;

	/* create */
	cr_assert_eq(itest_http_simple(node.http_port, "POST", "/v1/consumers", "", "{}", &r), 0);
	cr_assert_eq(r.status, 415);
	itest_http_resp_free(&r);
	problem("POST", "/v1/consumers", "{", 400, "MALFORMED");
	problem("POST", "/v1/consumers", "[]", 400, "MALFORMED");
	problem("POST", "/v1/consumers", "{\"name\":\"x\"}", 400, "INVALID_ARGUMENT");
	problem("POST", "/v1/consumers", "{\"topic\":\"t\"}", 400, "INVALID_ARGUMENT");
	problem("POST", "/v1/consumers", "{\"name\":\"\",\"topic\":\"t\"}", 400, "INVALID_ARGUMENT");
	problem("POST", "/v1/consumers", "{\"name\":\"x\",\"topic\":\"t\",\"ack_timeout\":5}", 400, "INVALID_ARGUMENT");
	problem("POST", "/v1/consumers", "{\"name\":\"x\",\"topic\":\"t\",\"mode\":\"fifo\"}", 400, "INVALID_ARGUMENT");
	problem("POST", "/v1/consumers", "{\"name\":\"x\",\"topic\":\"t\",\"max_in_flight\":-1}", 400, "INVALID_ARGUMENT");
	problem("POST", "/v1/consumers", "{\"name\":\"x\",\"topic\":\"t\",\"from\":\"soon\"}", 400, "INVALID_ARGUMENT");
	problem("POST", "/v1/consumers", "{\"name\":\"x\",\"topic\":\"t\",\"schedule_ms\":[1,\"2\"]}", 400,
	        "INVALID_ARGUMENT");
	problem("PUT", "/v1/consumers/a", "{\"name\":\"b\",\"topic\":\"t\"}", 400, "INVALID_ARGUMENT");
	/* ack, nack, in_progress */
	problem("POST", "/v1/consumers/c/ack", "nope", 400, "MALFORMED");
	problem("POST", "/v1/consumers/c/ack", "[]", 400, "INVALID_ARGUMENT");
	problem("POST", "/v1/consumers/c/ack", "{\"messages\":{}}", 400, "INVALID_ARGUMENT");
	problem("POST", "/v1/consumers/c/ack", "{\"partition\":0}", 400, "INVALID_ARGUMENT");
	problem("POST", "/v1/consumers/c/ack", "[{\"offset\":-1}]", 400, "INVALID_ARGUMENT");
	problem("POST", "/v1/consumers/c/nack", "{\"offset\":1,\"delay_ms\":-5}", 400, "INVALID_ARGUMENT");
	problem("POST", "/v1/consumers/c/nack", "{\"offset\":1,\"error\":7}", 400, "INVALID_ARGUMENT");
	problem("POST", "/v1/consumers/c/in_progress", "[1]", 400, "INVALID_ARGUMENT");
	big = malloc(1001 * 16 + 2);
	big[n++] = '[';
	for (int i = 0; i < 1001; i++)
		n += (size_t)sprintf(big + n, "%s{\"offset\":%d}", i ? "," : "", i);
	big[n++] = ']';
	big[n] = 0;
	problem("POST", "/v1/consumers/c/ack", big, 400, "INVALID_ARGUMENT");
	free(big);
	/* pull */
	problem("GET", "/v1/consumers/c/messages?max=-1", NULL, 400, "INVALID_ARGUMENT");
	problem("GET", "/v1/consumers/c/messages?max=1001", NULL, 400, "INVALID_ARGUMENT");
	problem("GET", "/v1/consumers/c/messages?wait_ms=20001", NULL, 400, "INVALID_ARGUMENT");
	problem("GET", "/v1/consumers/c/messages?max=x", NULL, 400, "INVALID_ARGUMENT");
}
