/*
 * bench_consume_test.c: `sluice bench consume` and `sluice bench webhook`
 * against a real sluiced (run with --webhook-allow-private true, so the
 * bench's loopback receiver is allowed), with small counts: every message
 * is acknowledged (delivered) once, the plain subscription of the same run
 * read them all, the log-bytes figures are there when the master's pid is
 * given, and bad options are usage errors. No timing is asserted.
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

#define BENCH_TIMEOUT_MS 90000

static struct itest_node node;

static void setup(void)
{
	cr_assert_eq(itest_node_init(&node), 0);
	node.extra[0] = "--webhook-allow-private";
	node.extra[1] = "true";
	cr_assert_eq(itest_node_start(&node), 0, "sluiced did not become ready");
}

static void teardown(void)
{
	itest_node_destroy(&node);
}

TestSuite(bench_consume, .init = setup, .fini = teardown, .timeout = 240);

static json_int_t jint(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	cr_assert(json_is_integer(v), "%s is not an integer", k);
	return json_integer_value(v);
}

static double jreal(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	cr_assert(json_is_real(v), "%s is not a number", k);
	return json_real_value(v);
}

/* `sluice --json bench ARGS... --pid MASTER`; the parsed report. */
static json_t *bench(const char *const *args)
{
	const char *argv[24] = {SLUICE_BIN, "--json", "bench"};
	char pid[32];
	struct itest_run r;
	json_error_t e;
	size_t n = 3;

	for (; *args && n < 20; args++)
		argv[n++] = *args;
	snprintf(pid, sizeof(pid), "%d", (int)node.pid);
	argv[n++] = "--pid";
	argv[n++] = pid;
	argv[n] = NULL;
	cr_assert_eq(itest_run(argv, node.addr, NULL, NULL, 0, BENCH_TIMEOUT_MS, &r), 0, "spawn");
	cr_assert_eq(r.status, 0, "sluice bench %s exited %d\nstdout: %.2000s\nstderr: %.2000s", argv[3], r.status,
		     r.out, r.err);
	json_t *j = json_loads(r.out, 0, &e);
	cr_assert_not_null(j, "bad JSON (%s): %.500s", e.text, r.out);
	itest_run_free(&r);
	return j;
}

static void assert_consumed(json_t *j, json_int_t count, int shared, json_int_t partitions)
{
	cr_assert_str_eq(json_string_value(json_object_get(j, "mode")), "consume");
	cr_assert_eq(json_is_true(json_object_get(j, "shared")), shared);
	cr_assert_eq(jint(j, "partitions"), partitions);
	cr_assert_eq(jint(j, "count"), count);
	cr_assert_eq(jint(j, "published"), count);
	cr_assert_eq(jint(j, "subscribed"), count, "the plain subscription read every message");
	cr_assert_eq(jint(j, "acked"), count);
	cr_assert_eq(jint(j, "redelivered"), 0);
	cr_assert(jint(j, "ack_requests") >= 1 && jint(j, "ack_requests") <= jint(j, "pulls_made"));
	cr_assert(jreal(j, "msgs_per_s") > 0 && jreal(j, "subscribe_msgs_per_s") > 0);
	cr_assert(jreal(j, "acked_vs_subscribe") > 0);
	json_t *lat = json_object_get(j, "latency_ms");
	cr_assert_eq(json_integer_value(json_object_get(lat, "samples")), count, "one sample per acked message");
	cr_assert(json_real_value(json_object_get(lat, "p50")) <= json_real_value(json_object_get(lat, "max")));
	cr_assert(jint(j, "logwriter_pid") > 0, "the logwriter found from --pid");
	cr_assert(jint(j, "log_bytes_consume") > 0, "acks are written to the log");
	cr_assert(jreal(j, "log_bytes_per_acked") > 0 && jreal(j, "log_wchar_per_acked") > 0);
	cr_assert(jreal(j, "log_bytes_per_published") > 0 && jreal(j, "log_bytes_per_request") > 0);
}

Test(bench_consume, shared_consumer_acks_every_message)
{
	const char *args[] = {"consume", "--count", "3000", "--pull-max", "500", "--pulls", "3", NULL};
	json_t *j = bench(args);
	assert_consumed(j, 3000, 1, 1);
	cr_assert_eq(jint(j, "pull_max"), 500);
	cr_assert_eq(jint(j, "pulls"), 3);
	cr_assert_eq(jint(j, "max_in_flight"), 10000);
	json_decref(j);
}

Test(bench_consume, ordered_consumer_over_partitions)
{
	const char *args[] = {"consume", "--ordered", "--partitions", "3", "--count", "150", "--pulls", "1", NULL};
	json_t *j = bench(args);
	assert_consumed(j, 150, 0, 3);
	cr_assert_eq(jint(j, "max_in_flight"), 1);
	cr_assert(jint(j, "ack_requests") >= 150 / 3, "at most one message per partition per pull");
	json_decref(j);
}

static void assert_delivered(json_t *j, json_int_t count, int ordered)
{
	cr_assert_str_eq(json_string_value(json_object_get(j, "mode")), "webhook");
	cr_assert_eq(json_is_true(json_object_get(j, "ordered")), ordered);
	cr_assert_eq(jint(j, "count"), count);
	cr_assert_eq(jint(j, "published"), count);
	cr_assert_eq(jint(j, "delivered"), count);
	cr_assert_eq(jint(j, "requests"), count, "no request was retried");
	cr_assert_eq(jint(j, "redelivered"), 0);
	cr_assert(jreal(j, "deliveries_per_s") > 0 && jreal(j, "seconds") > 0);
	cr_assert(strncmp(json_string_value(json_object_get(j, "receiver")), "127.0.0.1:", 10) == 0);
	cr_assert(jreal(j, "log_bytes_per_delivered") > 0 && jreal(j, "log_wchar_per_delivered") > 0);
}

Test(bench_consume, webhook_delivers_every_message)
{
	const char *ordered[] = {"webhook", "--count", "200", NULL};
	json_t *j = bench(ordered);
	assert_delivered(j, 200, 1);
	cr_assert_eq(jint(j, "max_in_flight"), 1);
	json_decref(j);

	const char *shared[] = {"webhook", "--count", "1000", "--max-in-flight", "50", "--partitions", "2", NULL};
	j = bench(shared);
	assert_delivered(j, 1000, 0);
	cr_assert_eq(jint(j, "max_in_flight"), 50);
	cr_assert_eq(jint(j, "partitions"), 2);
	json_decref(j);
}

Test(bench_consume, bad_options_are_usage_errors)
{
	struct itest_run r;
	const char *both[] = {SLUICE_BIN, "bench", "consume", "--ordered", "--max-in-flight", "5", NULL};
	const char *pull[] = {SLUICE_BIN, "bench", "consume", "--pull-max", "1001", NULL};
	const char *whpulls[] = {SLUICE_BIN, "bench", "webhook", "--pulls", "2", NULL};
	const char *zero[] = {SLUICE_BIN, "bench", "webhook", "--count", "0", NULL};
	const char *const *cases[] = {both, pull, whpulls, zero};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cr_assert_eq(itest_run(cases[i], node.addr, NULL, NULL, 0, BENCH_TIMEOUT_MS, &r), 0, "spawn");
		cr_assert_eq(r.status, EX_USAGE, "case %zu: exit %d\n%s", i, r.status, r.err);
		itest_run_free(&r);
	}
}
