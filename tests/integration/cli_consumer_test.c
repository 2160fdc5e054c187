/*
 * cli_consumer_test.c: durable consumers through the real `sluice` CLI (and,
 * for two concurrent pullers, libsluice) against a real single sluiced:
 * consumer admin and its errors, pull + ack in offset order and exactly
 * once, redelivery after the ack timeout with attempt 2, nack with a delay,
 * dead-lettering after max deliveries with the sluice-dlq-* headers,
 * `dlq replay` back into the topic, and shared mode handing disjoint
 * messages to two pullers.
 * Messages name their own position: payload "m-PARTITION-OFFSET".
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <event2/event.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "harness.h"
#include "sluice/sluice.h"

#ifndef SLUICE_BIN
#define SLUICE_BIN "sluice"
#endif

#define CLI_TIMEOUT_MS 30000
#define ARGS_MAX 24
#define WAIT_MS 10000

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

TestSuite(cli_consumer, .init = setup, .fini = teardown, .timeout = 180);

/* Run `sluice ARGS... NULL` with stdin from the string in (may be NULL). */
static void cli_run(struct itest_run *r, const char *in, ...)
{
	const char *argv[ARGS_MAX + 2] = {SLUICE_BIN};
	va_list ap;
	int n = 1;

	va_start(ap, in);
	for (const char *a; (a = va_arg(ap, const char *)) != NULL;) {
		cr_assert_lt(n, ARGS_MAX);
		argv[n++] = a;
	}
	va_end(ap);
	argv[n] = NULL;
	cr_assert_eq(itest_run(argv, node.addr, NULL, in, in ? strlen(in) : 0, CLI_TIMEOUT_MS, r), 0, "spawn");
}

#define CLI_OK(r, in, ...)                                                                                             \
	do {                                                                                                           \
		cli_run((r), (in), __VA_ARGS__, NULL);                                                                 \
		cr_assert_eq((r)->status, 0, "sluice exited %d\nstdout: %.2000s\nstderr: %.2000s", (r)->status,        \
		             (r)->out, (r)->err);                                                                      \
	} while (0)

/* The command must fail with exit code want, saying `says` on stderr. */
#define CLI_FAILS(want, says, ...)                                                                                     \
	do {                                                                                                           \
		struct itest_run r_;                                                                                   \
		cli_run(&r_, NULL, __VA_ARGS__, NULL);                                                                 \
		cr_assert_eq(r_.status, (want), "exit %d, want %d\nstderr: %.2000s", r_.status, (want), r_.err);      \
		cr_assert(strstr(r_.err, (says)) != NULL, "stderr lacks \"%s\": %s", (says), r_.err);                \
		itest_run_free(&r_);                                                                                   \
	} while (0)

static json_t *parse_json(const char *s)
{
	json_error_t e;
	json_t *j = json_loads(s, 0, &e);

	cr_assert_not_null(j, "bad JSON (%s at line %d): %.500s", e.text, e.line, s);
	return j;
}

static json_int_t jint(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	cr_assert(json_is_integer(v), "no integer \"%s\" in %s", key, json_dumps(o, JSON_COMPACT));
	return json_integer_value(v);
}

static const char *jstr(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	cr_assert(json_is_string(v), "no string \"%s\" in %s", key, json_dumps(o, JSON_COMPACT));
	return json_string_value(v);
}

/* A pulled message as `consumer pull --format json` prints it. */
struct pulled {
	int partition;
	long long offset;
	int attempt;
	char payload[64];
};

/* Parse the JSON lines of a pull into out (at most max); returns the count. */
static size_t parse_pulled(const struct itest_run *r, const char *topic, struct pulled *out, size_t max)
{
	size_t n = 0;
	char *buf = strndup(r->out, r->out_len), *save = NULL;

	cr_assert_not_null(buf);
	for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		json_t *m = parse_json(line);
		cr_assert_lt(n, max, "more messages than expected: %s", r->out);
		cr_assert_str_eq(jstr(m, "topic"), topic);
		out[n].partition = (int)jint(m, "partition");
		out[n].offset = (long long)jint(m, "offset");
		out[n].attempt = (int)jint(m, "attempt");
		snprintf(out[n].payload, sizeof(out[n].payload), "%s", jstr(m, "payload"));
		n++;
		json_decref(m);
	}
	free(buf);
	return n;
}

/* Publish count messages "m-P-O" to partition p (offsets from first). */
static void publish_seq(const char *topic, int p, int first, int count)
{
	struct itest_run r;
	char part[16], *in = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&in, &len);

	cr_assert_not_null(f);
	for (int o = first; o < first + count; o++)
		fprintf(f, "m-%d-%d\n", p, o);
	fclose(f);
	snprintf(part, sizeof(part), "%d", p);
	CLI_OK(&r, in, "pub", topic, "--partition", part);
	itest_run_free(&r);
	free(in);
}

static json_t *describe_consumer(const char *name)
{
	struct itest_run r;
	json_t *j;

	CLI_OK(&r, NULL, "--json", "consumer", "describe", name);
	j = parse_json(r.out);
	itest_run_free(&r);
	cr_assert_str_eq(jstr(j, "name"), name);
	return j;
}

/* The describe --json entry of partition p. */
static json_t *consumer_part(json_t *info, int p)
{
	json_t *parts = json_object_get(info, "partitions");

	cr_assert(json_is_array(parts));
	for (size_t i = 0; i < json_array_size(parts); i++)
		if (jint(json_array_get(parts, i), "partition") == p)
			return json_array_get(parts, i);
	cr_assert_fail("partition %d missing from %s", p, json_dumps(info, JSON_COMPACT));
	return NULL;
}

static void create_topic(const char *name, const char *partitions)
{
	struct itest_run r;

	CLI_OK(&r, NULL, "topic", "create", name, "--partitions", partitions);
	itest_run_free(&r);
}

/* One pull (JSON) into out; returns the count. */
#define PULL(topic, out, max, ...)                                                                                     \
	({                                                                                                             \
		struct itest_run r_;                                                                                   \
		CLI_OK(&r_, NULL, "consumer", "pull", __VA_ARGS__, "--format", "json");                                \
		size_t n_ = parse_pulled(&r_, (topic), (out), (max));                                                  \
		itest_run_free(&r_);                                                                                   \
		n_;                                                                                                    \
	})

Test(cli_consumer, create_list_describe_delete)
{
	struct itest_run r;
	json_t *j, *cfg, *sched;

	create_topic("ta", "2");
	CLI_OK(&r, NULL, "consumer", "create", "c1", "--topic", "ta");
	cr_assert(strstr(r.out, "created consumer c1 on topic ta"), "%s", r.out);
	itest_run_free(&r);
	CLI_FAILS(EX_DATAERR, "sluice: consumer create: ", "consumer", "create", "c1", "--topic", "ta");
	CLI_OK(&r, NULL, "consumer", "create", "c2", "--topic", "ta", "--shared", "--max-in-flight", "7",
	       "--max-deliveries", "3", "--ack-timeout-ms", "1500", "--schedule", "0,100,2000", "--dead-letter-topic",
	       "dead", "--from", "latest");
	itest_run_free(&r);
	CLI_OK(&r, NULL, "consumer", "create", "c3", "--topic", "ta", "--never-dead-letter");
	itest_run_free(&r);

	/* the server's defaults filled in */
	j = describe_consumer("c1");
	cfg = json_object_get(j, "config");
	cr_assert_str_eq(jstr(cfg, "topic"), "ta");
	cr_assert_str_eq(jstr(cfg, "mode"), "ordered");
	cr_assert_eq(jint(cfg, "max_deliveries"), 10);
	cr_assert_eq(jint(cfg, "ack_timeout_ms"), 30000);
	cr_assert_str_eq(jstr(cfg, "dead_letter_topic"), "ta.dlq");
	cr_assert_eq(json_array_size(json_object_get(j, "partitions")), 2);
	for (int p = 0; p < 2; p++) {
		json_t *cp = consumer_part(j, p);
		cr_assert_eq(jint(cp, "ack_floor"), 0);
		cr_assert_eq(jint(cp, "next_offset"), 0);
		cr_assert_eq(jint(cp, "in_flight"), 0);
		cr_assert_eq(jint(cp, "delivered"), 0);
	}
	json_decref(j);
	j = describe_consumer("c2");
	cfg = json_object_get(j, "config");
	cr_assert_str_eq(jstr(cfg, "mode"), "shared");
	cr_assert_eq(jint(cfg, "max_in_flight"), 7);
	cr_assert_eq(jint(cfg, "max_deliveries"), 3);
	cr_assert_eq(jint(cfg, "ack_timeout_ms"), 1500);
	cr_assert_str_eq(jstr(cfg, "dead_letter_topic"), "dead");
	sched = json_object_get(cfg, "schedule_ms");
	cr_assert_eq(json_array_size(sched), 3);
	cr_assert_eq(json_integer_value(json_array_get(sched, 2)), 2000);
	json_decref(j);
	j = describe_consumer("c3");
	cr_assert(json_is_true(json_object_get(json_object_get(j, "config"), "never_dead_letter")));
	json_decref(j);

	CLI_OK(&r, NULL, "consumer", "describe", "c2");
	cr_assert(strstr(r.out, "ACK_FLOOR") && strstr(r.out, "shared") && strstr(r.out, "0,100,2000"), "%s", r.out);
	itest_run_free(&r);
	CLI_OK(&r, NULL, "consumer", "list");
	cr_assert(strstr(r.out, "c1") && strstr(r.out, "c2") && strstr(r.out, "c3"), "%s", r.out);
	itest_run_free(&r);

	CLI_OK(&r, NULL, "consumer", "delete", "c1");
	cr_assert(strstr(r.out, "deleted consumer c1"), "%s", r.out);
	itest_run_free(&r);
	CLI_FAILS(EX_DATAERR, "consumer describe", "consumer", "describe", "c1");
	CLI_FAILS(EX_DATAERR, "consumer delete", "consumer", "delete", "c1");
	CLI_FAILS(EX_DATAERR, "consumer pull", "consumer", "pull", "c1", "--wait-ms", "0");
	CLI_FAILS(EX_DATAERR, "sub", "sub", "--consumer", "c1", "--count", "1");

	CLI_OK(&r, NULL, "--json", "consumer", "list");
	j = parse_json(r.out);
	cr_assert_eq(json_array_size(j), 2, "c2 and c3 remain: %s", r.out);
	for (size_t i = 0; i < 2; i++)
		cr_assert_str_neq(jstr(json_array_get(j, i), "name"), "c1");
	json_decref(j);
	itest_run_free(&r);

	/* refused on the command line */
	CLI_FAILS(EX_USAGE, "usage", "consumer", "create", "x", "--topic", "ta", "--max-deliveries", "2",
	          "--never-dead-letter");
	CLI_FAILS(EX_USAGE, "usage", "consumer", "create", "x");
	CLI_FAILS(EX_USAGE, "usage", "consumer", "pull", "c2", "--delay-ms", "5");
	CLI_FAILS(EX_USAGE, "usage", "consumer", "pull", "c2", "--nack", "--no-ack");
	CLI_FAILS(EX_USAGE, "usage", "sub", "--consumer", "c2", "--from", "earliest");
}

Test(cli_consumer, pull_and_ack_in_order_once)
{
	struct pulled m[64];
	struct itest_run r;
	size_t n;
	long long next[2] = {0, 0};
	json_t *j;

	create_topic("tp", "2");
	publish_seq("tp", 0, 0, 10);
	publish_seq("tp", 1, 0, 10);
	CLI_OK(&r, NULL, "consumer", "create", "cp", "--topic", "tp");
	itest_run_free(&r);

	/* ordered: at most one in flight per partition, so this takes many pulls */
	n = PULL("tp", m, 64, "cp", "--count", "20", "--max", "7");
	cr_assert_eq(n, 20);
	for (size_t i = 0; i < n; i++) {
		char want[32];
		int p = m[i].partition;
		cr_assert(p == 0 || p == 1);
		cr_assert_eq(m[i].offset, next[p], "partition %d: offset %lld, want %lld", p, m[i].offset, next[p]);
		cr_assert_eq(m[i].attempt, 1);
		snprintf(want, sizeof(want), "m-%d-%lld", p, m[i].offset);
		cr_assert_str_eq(m[i].payload, want);
		next[p]++;
	}
	/* everything acknowledged: nothing more to pull */
	n = PULL("tp", m, 64, "cp", "--wait-ms", "0");
	cr_assert_eq(n, 0, "pulled again after the acks");
	j = describe_consumer("cp");
	for (int p = 0; p < 2; p++) {
		json_t *cp = consumer_part(j, p);
		cr_assert_eq(jint(cp, "ack_floor"), 10);
		cr_assert_eq(jint(cp, "next_offset"), 10);
		cr_assert_eq(jint(cp, "end_offset"), 10);
		cr_assert_eq(jint(cp, "lag"), 0);
		cr_assert_eq(jint(cp, "in_flight"), 0);
		cr_assert_eq(jint(cp, "delivered"), 10);
		cr_assert_eq(jint(cp, "redelivered"), 0);
		cr_assert_eq(jint(cp, "acked"), 10);
	}
	json_decref(j);

	/* sub --consumer: raw payloads, acknowledged after printing */
	publish_seq("tp", 1, 10, 3);
	CLI_OK(&r, NULL, "sub", "--consumer", "cp", "--count", "3");
	cr_assert_str_eq(r.out, "m-1-10\nm-1-11\nm-1-12\n");
	itest_run_free(&r);
	n = PULL("tp", m, 64, "cp", "--wait-ms", "0");
	cr_assert_eq(n, 0);
	j = describe_consumer("cp");
	cr_assert_eq(jint(consumer_part(j, 1), "ack_floor"), 13);
	json_decref(j);

	/* --from: latest sees only what comes after; OFFSET starts there on every partition */
	CLI_OK(&r, NULL, "consumer", "create", "cl", "--topic", "tp", "--from", "latest");
	itest_run_free(&r);
	CLI_OK(&r, NULL, "consumer", "create", "co", "--topic", "tp", "--from", "8");
	itest_run_free(&r);
	n = PULL("tp", m, 64, "cl", "--wait-ms", "0");
	cr_assert_eq(n, 0, "--from latest pulled %s", m[0].payload);
	publish_seq("tp", 0, 10, 1);
	n = PULL("tp", m, 64, "cl", "--wait-ms", "5000");
	cr_assert_eq(n, 1);
	cr_assert_str_eq(m[0].payload, "m-0-10");
	n = PULL("tp", m, 64, "co", "--count", "8");
	cr_assert_eq(n, 8);
	for (size_t i = 0; i < n; i++)
		cr_assert_geq(m[i].offset, 8, "--from 8 pulled %s", m[i].payload);
}

Test(cli_consumer, redelivered_after_ack_timeout_with_attempt_2)
{
	struct pulled m[8];
	struct itest_run r;
	size_t n;
	json_t *j;

	create_topic("tt", "1");
	publish_seq("tt", 0, 0, 2);
	CLI_OK(&r, NULL, "consumer", "create", "ct", "--topic", "tt", "--ack-timeout-ms", "1000");
	itest_run_free(&r);

	n = PULL("tt", m, 8, "ct", "--no-ack", "--wait-ms", "0");
	cr_assert_eq(n, 1);
	cr_assert_eq(m[0].offset, 0);
	cr_assert_eq(m[0].attempt, 1);
	/* ordered: offset 0 is in flight, so nothing else is due yet */
	n = PULL("tt", m, 8, "ct", "--wait-ms", "0");
	cr_assert_eq(n, 0, "pulled %s while offset 0 was in flight", m[0].payload);
	itest_sleep_ms(1300);
	n = PULL("tt", m, 8, "ct", "--wait-ms", "5000");
	cr_assert_eq(n, 1);
	cr_assert_eq(m[0].offset, 0);
	cr_assert_str_eq(m[0].payload, "m-0-0");
	cr_assert_eq(m[0].attempt, 2);
	n = PULL("tt", m, 8, "ct", "--wait-ms", "5000");
	cr_assert_eq(n, 1);
	cr_assert_eq(m[0].offset, 1);
	cr_assert_eq(m[0].attempt, 1);
	j = describe_consumer("ct");
	cr_assert_eq(jint(consumer_part(j, 0), "redelivered"), 1);
	cr_assert_eq(jint(consumer_part(j, 0), "delivered"), 3);
	cr_assert_eq(jint(consumer_part(j, 0), "acked"), 2);
	cr_assert_eq(jint(consumer_part(j, 0), "ack_floor"), 2);
	json_decref(j);
}

Test(cli_consumer, nack_with_delay_is_not_redelivered_before_it)
{
	struct pulled m[8];
	struct itest_run r;
	size_t n;
	long long t0, t1;

	create_topic("tn", "1");
	publish_seq("tn", 0, 0, 1);
	CLI_OK(&r, NULL, "consumer", "create", "cn", "--topic", "tn", "--schedule", "0");
	itest_run_free(&r);

	t0 = itest_now_ms();
	n = PULL("tn", m, 8, "cn", "--nack", "--delay-ms", "2000", "--wait-ms", "0");
	cr_assert_eq(n, 1);
	cr_assert_eq(m[0].attempt, 1);
	n = PULL("tn", m, 8, "cn", "--wait-ms", "0");
	cr_assert_eq(n, 0, "redelivered at once despite --delay-ms 2000");
	n = PULL("tn", m, 8, "cn", "--nack", "--wait-ms", "8000");
	t1 = itest_now_ms();
	cr_assert_eq(n, 1);
	cr_assert_eq(m[0].offset, 0);
	cr_assert_eq(m[0].attempt, 2);
	cr_assert_geq(t1 - t0, 2000, "redelivered after %lld ms", t1 - t0);
	/* a nack without a delay follows the schedule: 0 ms */
	n = PULL("tn", m, 8, "cn", "--wait-ms", "3000");
	cr_assert_eq(n, 1);
	cr_assert_eq(m[0].attempt, 3);
	cr_assert_str_eq(m[0].payload, "m-0-0");
}

/* Wait until topic exists with at least want messages in partition 0. */
static void wait_topic_end(const char *topic, long long want)
{
	long long deadline = itest_now_ms() + WAIT_MS;

	for (;;) {
		struct itest_run r;
		cli_run(&r, NULL, "--json", "topic", "describe", topic, NULL);
		if (r.status == 0) {
			json_t *j = parse_json(r.out);
			long long end = jint(json_array_get(json_object_get(j, "partitions"), 0), "end_offset");
			json_decref(j);
			if (end >= want) {
				itest_run_free(&r);
				return;
			}
		}
		itest_run_free(&r);
		cr_assert_lt(itest_now_ms(), deadline, "%s did not reach %lld messages", topic, want);
		itest_sleep_ms(100);
	}
}

static const char *header(json_t *msg, const char *key)
{
	json_t *v = json_object_get(json_object_get(msg, "headers"), key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

static void expect_dead_letter(void)
{
	struct itest_run r;
	json_t *j;

	wait_topic_end("td.dlq", 1);
	CLI_OK(&r, NULL, "sub", "td.dlq", "--from", "earliest", "--count", "1", "--format", "json");
	j = parse_json(r.out);
	cr_assert_str_eq(jstr(j, "payload"), "bad");
	cr_assert_str_eq(jstr(j, "key"), "k1");
	cr_assert_str_eq(header(j, "h"), "v");
	cr_assert_str_eq(header(j, "sluice-dlq-topic"), "td");
	cr_assert_str_eq(header(j, "sluice-dlq-partition"), "0");
	cr_assert_str_eq(header(j, "sluice-dlq-offset"), "0");
	cr_assert_str_eq(header(j, "sluice-dlq-deliveries"), "2");
	cr_assert(header(j, "sluice-dlq-error") != NULL, "no sluice-dlq-error: %s", r.out);
	cr_assert(strstr(header(j, "sluice-dlq-error"), "nacked"), "error: %s", header(j, "sluice-dlq-error"));
	json_decref(j);
	itest_run_free(&r);
}

/* Offset 2 of td: the replayed message, without the sluice-dlq-* headers. */
static void expect_replayed(const char *topic, const char *from)
{
	struct itest_run r;
	json_t *j, *hs;

	CLI_OK(&r, NULL, "sub", topic, "--from", from, "--count", "1", "--format", "json");
	j = parse_json(r.out);
	cr_assert_str_eq(jstr(j, "payload"), "bad");
	cr_assert_str_eq(jstr(j, "key"), "k1");
	cr_assert_eq(jint(j, "partition"), 0);
	hs = json_object_get(j, "headers");
	cr_assert_eq(json_object_size(hs), 1, "only the message's own header: %s", r.out);
	cr_assert_str_eq(header(j, "h"), "v");
	json_decref(j);
	itest_run_free(&r);
}

Test(cli_consumer, dead_letter_after_max_deliveries_then_replay)
{
	struct pulled m[8];
	struct itest_run r;
	size_t n;
	json_t *j, *cp;

	create_topic("td", "1");
	CLI_OK(&r, NULL, "pub", "td", "--key", "k1", "--header", "h=v", "bad");
	itest_run_free(&r);
	CLI_OK(&r, NULL, "pub", "td", "good");
	itest_run_free(&r);
	CLI_OK(&r, NULL, "consumer", "create", "cd", "--topic", "td", "--max-deliveries", "2", "--schedule", "0");
	itest_run_free(&r);

	n = PULL("td", m, 8, "cd", "--nack", "--wait-ms", "0");
	cr_assert(n == 1 && m[0].attempt == 1 && !strcmp(m[0].payload, "bad"));
	n = PULL("td", m, 8, "cd", "--nack", "--wait-ms", "3000");
	cr_assert(n == 1 && m[0].attempt == 2 && !strcmp(m[0].payload, "bad"), "n %zu attempt %d", n, m[0].attempt);
	/* two deliveries failed: dead-lettered, and the consumer goes on */
	n = PULL("td", m, 8, "cd", "--wait-ms", "5000");
	cr_assert_eq(n, 1);
	cr_assert_str_eq(m[0].payload, "good");
	cr_assert_eq(m[0].offset, 1);
	cr_assert_eq(m[0].attempt, 1);
	expect_dead_letter();
	j = describe_consumer("cd");
	cp = consumer_part(j, 0);
	cr_assert_eq(jint(cp, "dead_lettered"), 1);
	cr_assert_eq(jint(cp, "ack_floor"), 2);
	cr_assert_eq(jint(cp, "acked"), 1);
	cr_assert(strstr(jstr(cp, "last_error"), "nacked"), "last_error: %s", jstr(cp, "last_error"));
	json_decref(j);

	/* replay: back into td (the sluice-dlq-topic header), partition 0 */
	CLI_OK(&r, NULL, "dlq", "replay", "td.dlq");
	cr_assert(strstr(r.out, "replayed 1 message from td.dlq"), "%s", r.out);
	itest_run_free(&r);
	expect_replayed("td", "2");
	n = PULL("td", m, 8, "cd", "--wait-ms", "5000");
	cr_assert_eq(n, 1);
	cr_assert_str_eq(m[0].payload, "bad");
	cr_assert_eq(m[0].offset, 2);
	cr_assert_eq(m[0].attempt, 1);

	/* --to another topic, --json */
	create_topic("other", "1");
	CLI_OK(&r, NULL, "--json", "dlq", "replay", "td.dlq", "--to", "other");
	j = parse_json(r.out);
	cr_assert_eq(jint(j, "replayed"), 1);
	cr_assert_eq(jint(j, "failed"), 0);
	json_decref(j);
	itest_run_free(&r);
	expect_replayed("other", "earliest");
	/* --from past the end replays nothing */
	CLI_OK(&r, NULL, "dlq", "replay", "td.dlq", "--from", "1");
	cr_assert(strstr(r.out, "replayed 0 messages"), "%s", r.out);
	itest_run_free(&r);
}

/* ---------- shared mode ---------- */

#define SHARED_N 40

struct puller {
	struct sluice_client *c;
	const char *name;
	int id, busy, err;
	size_t got;
	int *owner; /* per message index (partition * 20 + offset): which puller had it, 0: none */
	size_t *total;
	int dup;
};

static void puller_next(struct puller *p);

static void puller_ack_cb(void *arg, int err, const char *errmsg)
{
	struct puller *p = arg;
	(void)errmsg;
	p->busy = 0;
	if (err)
		p->err = err;
	else if (*p->total < SHARED_N)
		puller_next(p);
}

static void puller_pull_cb(void *arg, int err, const char *errmsg, const struct sluice_pulled *msgs, size_t n)
{
	struct puller *p = arg;
	struct sluice_ack_item items[8];
	(void)errmsg;
	if (err) {
		p->busy = 0;
		p->err = err;
		return;
	}
	cr_assert_leq(n, 8);
	for (size_t i = 0; i < n; i++) {
		size_t idx = msgs[i].msg.partition * 20 + msgs[i].msg.offset;
		cr_assert_lt(idx, SHARED_N);
		if (p->owner[idx])
			p->dup++;
		p->owner[idx] = p->id;
		p->got++;
		(*p->total)++;
		items[i] = (struct sluice_ack_item){.partition = msgs[i].msg.partition, .offset = msgs[i].msg.offset};
	}
	if (n == 0) {
		if (*p->total < SHARED_N)
			puller_next(p);
		else
			p->busy = 0;
		return;
	}
	p->err = sluice_ack(p->c, p->name, items, n, puller_ack_cb, p);
}

static void puller_next(struct puller *p)
{
	p->busy = 1;
	p->err = sluice_pull(p->c, p->name, 4, 200, puller_pull_cb, p);
}

Test(cli_consumer, shared_mode_two_pullers_get_disjoint_messages)
{
	struct pulled a[8], b[8];
	struct itest_run r;
	struct event_base *base = event_base_new();
	struct sluice_client_opts o = {.servers = node.addr};
	struct puller p[2];
	int owner[SHARED_N] = {0};
	size_t total = 0, na, nb;

	create_topic("ts", "2");
	publish_seq("ts", 0, 0, 20);
	publish_seq("ts", 1, 0, 20);

	/* the CLI: two pulls without acks see different messages */
	CLI_OK(&r, NULL, "consumer", "create", "cs1", "--topic", "ts", "--shared");
	itest_run_free(&r);
	na = PULL("ts", a, 8, "cs1", "--no-ack", "--max", "5", "--wait-ms", "0");
	nb = PULL("ts", b, 8, "cs1", "--no-ack", "--max", "5", "--wait-ms", "0");
	cr_assert(na == 5 && nb == 5, "pulled %zu and %zu", na, nb);
	for (size_t i = 0; i < na; i++)
		for (size_t k = 0; k < nb; k++)
			cr_assert(a[i].partition != b[k].partition || a[i].offset != b[k].offset,
			          "both pullers got partition %d offset %lld", a[i].partition, a[i].offset);

	/* two libsluice clients pulling and acking at the same time */
	CLI_OK(&r, NULL, "consumer", "create", "cs2", "--topic", "ts", "--shared");
	itest_run_free(&r);
	cr_assert_not_null(base);
	for (int i = 0; i < 2; i++) {
		p[i] = (struct puller){.name = "cs2", .id = i + 1, .owner = owner, .total = &total};
		cr_assert_eq(sluice_client_new(base, &o, &p[i].c), 0);
	}
	puller_next(&p[0]);
	puller_next(&p[1]);
	itest_loop_until(base, &total, SHARED_N, WAIT_MS);
	cr_assert_eq(p[0].err, 0, "puller 1: %s", sluice_strerror(p[0].err));
	cr_assert_eq(p[1].err, 0, "puller 2: %s", sluice_strerror(p[1].err));
	cr_assert_eq(total, SHARED_N, "pulled %zu of %d", total, SHARED_N);
	cr_assert_eq(p[0].dup + p[1].dup, 0, "a message went to both pullers or came twice");
	for (int i = 0; i < SHARED_N; i++)
		cr_assert_neq(owner[i], 0, "message %d never pulled", i);
	cr_assert(p[0].got > 0 && p[1].got > 0, "one puller got everything: %zu / %zu", p[0].got, p[1].got);
	/* let the last acks land, then nothing is left */
	for (int i = 0; i < 2; i++) {
		long long deadline = itest_now_ms() + WAIT_MS;
		while (p[i].busy && itest_now_ms() < deadline)
			event_base_loop(base, EVLOOP_ONCE);
		sluice_client_free(p[i].c);
	}
	event_base_free(base);
	na = PULL("ts", a, 8, "cs2", "--wait-ms", "0");
	cr_assert_eq(na, 0, "messages left after every ack");
}
