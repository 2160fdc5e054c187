/*
 * bench_sse_test.c: `sluice bench sse` against a real sluiced, small: 50
 * event streams, 200 messages at 200 msg/s. Every subscriber must receive
 * every message exactly once (from the --json report), the frontends must
 * be found (from --pid, and from the HTTP port) for the memory figure, and
 * bad options are a usage error.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>

#include "harness.h"

#ifndef SLUICE_BIN
#define SLUICE_BIN "sluice"
#endif

#define BENCH_TIMEOUT_MS 60000

static struct itest_node node;

static void setup(void)
{
	cr_assert_eq(itest_node_init(&node), 0);
	cr_assert_eq(itest_node_start(&node), 0, "sluiced did not become ready");
}

static void teardown(void)
{
	itest_node_destroy(&node);
}

TestSuite(bench_sse, .init = setup, .fini = teardown, .timeout = 180);

static json_int_t jint(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	cr_assert(json_is_integer(v), "%s is not an integer", k);
	return json_integer_value(v);
}

/* Run the small bench (mode "sse" or "ws"); with_pid adds --pid (else the frontends are found from the port). */
static json_t *bench_mode(const char *mode, int with_pid)
{
	char http[64], pid[32];
	struct itest_run r;
	json_error_t e;

	snprintf(http, sizeof(http), "127.0.0.1:%u", node.http_port);
	snprintf(pid, sizeof(pid), "%d", (int)node.pid);
	const char *argv[] = {SLUICE_BIN, "--json", "bench", mode, "--subscribers", "50", "--rate", "200", "--count",
			      "200", "--http", http, with_pid ? "--pid" : NULL, pid, NULL};
	cr_assert_eq(itest_run(argv, node.addr, NULL, NULL, 0, BENCH_TIMEOUT_MS, &r), 0, "spawn");
	cr_assert_eq(r.status, 0, "sluice bench sse exited %d\nstdout: %.2000s\nstderr: %.2000s", r.status, r.out, r.err);
	json_t *j = json_loads(r.out, 0, &e);
	cr_assert_not_null(j, "bad JSON (%s): %.500s", e.text, r.out);
	itest_run_free(&r);
	return j;
}

static json_t *bench_small(int with_pid)
{
	return bench_mode("sse", with_pid);
}

Test(bench_sse, every_subscriber_gets_every_message_once)
{
	json_t *j = bench_small(1);

	cr_assert_str_eq(json_string_value(json_object_get(j, "mode")), "sse");
	cr_assert_eq(jint(j, "streaming"), 50);
	cr_assert_eq(jint(j, "failed"), 0);
	cr_assert_eq(jint(j, "dropped"), 0);
	cr_assert_eq(jint(j, "messages"), 200);
	cr_assert_eq(jint(j, "acked"), 200);
	cr_assert_eq(jint(j, "deliveries"), 50 * 200);
	cr_assert_eq(jint(j, "deliveries_expected"), 50 * 200);
	cr_assert_eq(jint(j, "missing"), 0);
	cr_assert_eq(jint(j, "duplicates"), 0);
	cr_assert_eq(jint(j, "malformed"), 0);
	cr_assert_eq(jint(j, "subscribers_complete"), 50);
	json_t *lat = json_object_get(j, "latency_ms");
	cr_assert_eq(json_integer_value(json_object_get(lat, "samples")), 50 * 200);
	double p50 = json_real_value(json_object_get(lat, "p50")), max = json_real_value(json_object_get(lat, "max"));
	cr_assert(p50 > 0 && p50 <= max, "p50 %f, max %f", p50, max);
	cr_assert_eq(json_array_size(json_object_get(j, "frontend_pids")), node.frontends, "frontends from --pid");
	cr_assert(json_is_real(json_object_get(j, "rss_bytes_per_subscriber")), "an RSS figure");
	json_decref(j);

	j = bench_small(0);
	cr_assert_eq(jint(j, "subscribers_complete"), 50);
	cr_assert_eq(json_array_size(json_object_get(j, "frontend_pids")), node.frontends, "frontends from the port");
	json_decref(j);
}

Test(bench_sse, websocket_subscribers_get_every_message_once)
{
	json_t *j = bench_mode("ws", 1);

	cr_assert_str_eq(json_string_value(json_object_get(j, "mode")), "ws");
	cr_assert_eq(jint(j, "streaming"), 50);
	cr_assert_eq(jint(j, "failed"), 0);
	cr_assert_eq(jint(j, "messages"), 200);
	cr_assert_eq(jint(j, "deliveries"), 50 * 200);
	cr_assert_eq(jint(j, "missing"), 0);
	cr_assert_eq(jint(j, "duplicates"), 0);
	cr_assert_eq(jint(j, "malformed"), 0);
	cr_assert_eq(jint(j, "subscribers_complete"), 50);
	json_decref(j);
}

Test(bench_sse, websocket_publishers_get_every_ack)
{
	char http[64];
	struct itest_run r;
	json_error_t e;

	snprintf(http, sizeof(http), "127.0.0.1:%u", node.http_port);
	const char *argv[] = {SLUICE_BIN, "--json", "bench", "ws", "--subscribers", "4", "--publish-window", "8",
			      "--count", "1000", "--http", http, NULL};
	cr_assert_eq(itest_run(argv, node.addr, NULL, NULL, 0, BENCH_TIMEOUT_MS, &r), 0, "spawn");
	cr_assert_eq(r.status, 0, "sluice bench ws exited %d\nstdout: %.2000s\nstderr: %.2000s", r.status, r.out, r.err);
	json_t *j = json_loads(r.out, 0, &e);
	cr_assert_not_null(j, "bad JSON (%s): %.500s", e.text, r.out);
	itest_run_free(&r);
	cr_assert_str_eq(json_string_value(json_object_get(j, "mode")), "ws-publish");
	cr_assert_eq(jint(j, "connections"), 4);
	cr_assert_eq(jint(j, "messages"), 1000);
	cr_assert_eq(jint(j, "acked"), 1000);
	cr_assert_eq(jint(j, "publish_failed"), 0);
	json_decref(j);
}

Test(bench_sse, bad_options_are_usage_errors)
{
	struct itest_run r;
	const char *small[] = {SLUICE_BIN, "bench", "sse", "--size", "10", NULL};
	const char *both[] = {SLUICE_BIN, "bench", "sse", "--count", "5", "--duration", "1", NULL};
	const char *http[] = {SLUICE_BIN, "bench", "sse", "--http", "nowhere", NULL};
	const char *const *cases[] = {small, both, http};

	for (size_t i = 0; i < 3; i++) {
		cr_assert_eq(itest_run(cases[i], node.addr, NULL, NULL, 0, BENCH_TIMEOUT_MS, &r), 0, "spawn");
		cr_assert_eq(r.status, EX_USAGE, "case %zu: exit %d\n%s", i, r.status, r.err);
		itest_run_free(&r);
	}
}
