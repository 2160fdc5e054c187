/*
 * cli_test.c: the real `sluice` CLI against a real sluiced. Topic admin
 * (text and --json), 100,000 lines through pub and back through sub, per
 * partition offset contiguity, consumer groups that resume across a server
 * restart, replay by time, topic delete, the sysexits exit codes, and the
 * cluster commands on a node without a cluster.
 * The server address reaches the CLI through $SLUICE_SERVER (and --server
 * once, to cover the flag).
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

#include "harness.h"

#ifndef SLUICE_BIN
#define SLUICE_BIN "sluice"
#endif

#define CLI_TIMEOUT_MS 20000
#define ARGS_MAX 16

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

TestSuite(cli, .init = setup, .fini = teardown, .timeout = 300);

/* Run `sluice ARGS... NULL` with stdin from in_path or the string in. */
static void cli_run(struct itest_run *r, const char *in_path, const char *in, int timeout_ms, ...)
{
	const char *argv[ARGS_MAX + 2] = {SLUICE_BIN};
	va_list ap;
	int n = 1;

	va_start(ap, timeout_ms);
	for (const char *a; (a = va_arg(ap, const char *)) != NULL;) {
		cr_assert_lt(n, ARGS_MAX);
		argv[n++] = a;
	}
	va_end(ap);
	argv[n] = NULL;
	cr_assert_eq(itest_run(argv, node.addr, in_path, in, in ? strlen(in) : 0, timeout_ms, r), 0, "spawn");
}

/* Like cli_run but the command must exit 0. */
#define CLI_OK(r, in_path, in, ...)                                                                                    \
	do {                                                                                                           \
		cli_run((r), (in_path), (in), CLI_TIMEOUT_MS, __VA_ARGS__, NULL);                                      \
		cr_assert_eq((r)->status, 0, "sluice exited %d\nstdout: %.2000s\nstderr: %.2000s", (r)->status,        \
		             (r)->out, (r)->err);                                                                      \
	} while (0)

static json_t *parse_json(const char *s)
{
	json_error_t e;
	json_t *j = json_loads(s, 0, &e);

	cr_assert_not_null(j, "bad JSON (%s at line %d): %.500s", e.text, e.line, s);
	return j;
}

/* Split a buffer into NUL-terminated lines in place. */
static char **split_lines(char *buf, size_t len, size_t *n)
{
	size_t cap = 1024, cnt = 0;
	char **v = malloc(cap * sizeof(*v));
	char *p = buf, *end = buf + len;

	cr_assert_not_null(v);
	while (p < end) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			nl = end;
		*nl = '\0';
		if (cnt == cap) {
			cap *= 2;
			v = realloc(v, cap * sizeof(*v));
			cr_assert_not_null(v);
		}
		v[cnt++] = p;
		p = nl + 1;
	}
	*n = cnt;
	return v;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static long long wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* `topic describe NAME --json`: end offsets per partition; returns the count. */
static size_t describe_ends(const char *topic, uint64_t *ends, size_t max)
{
	struct itest_run r;
	json_t *j, *parts;
	size_t i, n;

	CLI_OK(&r, NULL, NULL, "topic", "describe", topic, "--json");
	j = parse_json(r.out);
	cr_assert_str_eq(json_string_value(json_object_get(j, "name")), topic);
	parts = json_object_get(j, "partitions");
	cr_assert(json_is_array(parts), "describe --json: partitions is not an array");
	n = json_array_size(parts);
	cr_assert_leq(n, max);
	for (i = 0; i < n; i++) {
		json_t *p = json_array_get(parts, i);
		json_int_t idx = json_integer_value(json_object_get(p, "partition"));
		cr_assert_eq(idx, (json_int_t)i, "partitions listed in order");
		cr_assert_eq(json_integer_value(json_object_get(p, "first_offset")), 0);
		ends[i] = (uint64_t)json_integer_value(json_object_get(p, "end_offset"));
	}
	json_decref(j);
	itest_run_free(&r);
	return n;
}

/* The CLI's raw output holds exactly the lines of the file, in any order. */
static void expect_same_lines(const char *path, struct itest_run *out, size_t n)
{
	const char *cat[] = {"/bin/cat", path, NULL};
	struct itest_run rin;
	size_t nin, nout;
	char **in_lines, **out_lines;

	out_lines = split_lines(out->out, out->out_len, &nout);
	cr_assert_eq(nout, n, "sub printed %zu lines, want %zu", nout, n);
	cr_assert_eq(itest_run(cat, NULL, NULL, NULL, 0, 10000, &rin), 0);
	in_lines = split_lines(rin.out, rin.out_len, &nin);
	cr_assert_eq(nin, n);
	qsort(in_lines, nin, sizeof(char *), cmp_str);
	qsort(out_lines, nout, sizeof(char *), cmp_str);
	for (size_t i = 0; i < n; i++)
		cr_assert_str_eq(out_lines[i], in_lines[i], "line multiset differs at sorted index %zu", i);
	free(in_lines);
	free(out_lines);
	itest_run_free(&rin);
}

/* JSON output: per partition, offsets 0..end-1 in order, nothing else. */
static void expect_contiguous_json(struct itest_run *out, const uint64_t *ends, size_t parts, const char *topic)
{
	uint64_t next[8] = {0};
	size_t nout;
	char **lines = split_lines(out->out, out->out_len, &nout);

	cr_assert_leq(parts, 8);
	for (size_t i = 0; i < nout; i++) {
		json_t *m = parse_json(lines[i]);
		json_int_t p = json_integer_value(json_object_get(m, "partition"));
		json_int_t o = json_integer_value(json_object_get(m, "offset"));
		cr_assert(p >= 0 && (size_t)p < parts, "partition %lld", (long long)p);
		cr_assert_eq((uint64_t)o, next[p], "partition %lld: offset %lld after %llu (gap or reorder)",
		             (long long)p, (long long)o, (unsigned long long)next[p]);
		cr_assert_str_eq(json_string_value(json_object_get(m, "topic")), topic);
		cr_assert(strncmp(json_string_value(json_object_get(m, "payload")), "line ", 5) == 0);
		next[p]++;
		json_decref(m);
	}
	for (size_t p = 0; p < parts; p++)
		cr_assert_eq(next[p], ends[p], "partition %zu: %llu messages, end offset %llu", p,
		             (unsigned long long)next[p], (unsigned long long)ends[p]);
	free(lines);
}

static void expect_topic_listed(const char *topic, json_int_t partitions)
{
	struct itest_run r;
	json_t *j;

	CLI_OK(&r, NULL, NULL, "topic", "list");
	cr_assert(strstr(r.out, topic) != NULL, "topic list: %s", r.out);
	itest_run_free(&r);
	CLI_OK(&r, NULL, NULL, "--json", "topic", "list");
	j = parse_json(r.out);
	cr_assert_eq(json_array_size(j), 1);
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(j, 0), "name")), topic);
	cr_assert_eq(json_integer_value(json_object_get(json_array_get(j, 0), "partitions")), partitions);
	json_decref(j);
	itest_run_free(&r);
}

Test(cli, topic_admin_and_100k_lines_round_trip)
{
	enum { N = 100000 };
	struct itest_run r;
	char path[256];
	uint64_t ends[8];
	FILE *f;

	CLI_OK(&r, NULL, NULL, "topic", "create", "big", "--partitions", "3");
	itest_run_free(&r);
	expect_topic_listed("big", 3);
	cr_assert_eq(describe_ends("big", ends, 8), 3);
	cr_assert(ends[0] == 0 && ends[1] == 0 && ends[2] == 0, "new topic is empty");

	snprintf(path, sizeof(path), "%s/lines.txt", node.dir);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	for (int i = 0; i < N; i++)
		fprintf(f, "line %06d %x payload\n", i, (unsigned)i * 2654435761u);
	fclose(f);
	cli_run(&r, path, NULL, 120000, "pub", "big", NULL);
	cr_assert_eq(r.status, 0, "pub of %d lines: exit %d, stderr %s", N, r.status, r.err);
	itest_run_free(&r);

	cr_assert_eq(describe_ends("big", ends, 8), 3);
	cr_assert_eq(ends[0] + ends[1] + ends[2], N, "end offsets sum to %llu, want %d",
	             (unsigned long long)(ends[0] + ends[1] + ends[2]), N);

	cli_run(&r, NULL, NULL, 120000, "sub", "big", "--from", "earliest", "--count", "100000", "--format", "raw",
	        NULL);
	cr_assert_eq(r.status, 0, "sub raw: exit %d, stderr %s", r.status, r.err);
	expect_same_lines(path, &r, N);
	itest_run_free(&r);

	cli_run(&r, NULL, NULL, 120000, "sub", "big", "--from", "earliest", "--count", "100000", "--format", "json",
	        NULL);
	cr_assert_eq(r.status, 0, "sub json: exit %d, stderr %s", r.status, r.err);
	expect_contiguous_json(&r, ends, 3, "big");
	itest_run_free(&r);
}

/* Run a group sub of count messages; account per partition and check order. */
static void group_sub(const char *from, int count, uint64_t *next, size_t *seen)
{
	struct itest_run r;
	char cnt[16];
	size_t n;
	char **lines;

	snprintf(cnt, sizeof(cnt), "%d", count);
	if (from)
		CLI_OK(&r, NULL, NULL, "sub", "gt", "--group", "grp", "--from", from, "--count", cnt, "--format",
		       "json");
	else
		CLI_OK(&r, NULL, NULL, "sub", "gt", "--group", "grp", "--count", cnt, "--format", "json");
	lines = split_lines(r.out, r.out_len, &n);
	cr_assert_eq(n, (size_t)count, "group sub printed %zu, want %d", n, count);
	for (size_t i = 0; i < n; i++) {
		json_t *m = parse_json(lines[i]);
		json_int_t p = json_integer_value(json_object_get(m, "partition"));
		json_int_t o = json_integer_value(json_object_get(m, "offset"));
		char want[32];
		cr_assert(p >= 0 && p < 3);
		cr_assert_eq((uint64_t)o, next[p], "group: partition %lld offset %lld, want %llu (gap, replay or skip)",
		             (long long)p, (long long)o, (unsigned long long)next[p]);
		snprintf(want, sizeof(want), "g-%lld-%lld", (long long)p, (long long)o);
		cr_assert_str_eq(json_string_value(json_object_get(m, "payload")), want);
		next[p]++;
		json_decref(m);
	}
	*seen += n;
	free(lines);
	itest_run_free(&r);
}

static void expect_group_committed(const uint64_t *next, const uint64_t *ends)
{
	struct itest_run r;
	json_t *j, *parts;
	int found[3] = {0};

	CLI_OK(&r, NULL, NULL, "--json", "group", "describe", "grp");
	j = parse_json(r.out);
	parts = json_object_get(j, "partitions");
	cr_assert(json_is_array(parts));
	for (size_t i = 0; i < json_array_size(parts); i++) {
		json_t *p = json_array_get(parts, i);
		json_int_t part = json_integer_value(json_object_get(p, "partition"));
		uint64_t committed = (uint64_t)json_integer_value(json_object_get(p, "committed_offset"));
		cr_assert_str_eq(json_string_value(json_object_get(p, "topic")), "gt");
		cr_assert(part >= 0 && part < 3);
		found[part] = 1;
		cr_assert_eq(committed, next[part], "partition %lld committed %llu, consumed up to %llu",
		             (long long)part, (unsigned long long)committed, (unsigned long long)next[part]);
		cr_assert_eq((uint64_t)json_integer_value(json_object_get(p, "end_offset")), ends[part]);
		cr_assert_eq((uint64_t)json_integer_value(json_object_get(p, "lag")), ends[part] - committed);
	}
	for (int p = 0; p < 3; p++)
		cr_assert(found[p] || next[p] == 0, "partition %d consumed but missing from group describe", p);
	json_decref(j);
	itest_run_free(&r);
	CLI_OK(&r, NULL, NULL, "group", "describe", "grp");
	cr_assert(strstr(r.out, "LAG") && strstr(r.out, "gt"), "text group describe: %s", r.out);
	itest_run_free(&r);
}

Test(cli, consumer_group_resumes_across_restart)
{
	struct itest_run r;
	uint64_t next[3] = {0}, ends[3];
	size_t seen = 0;
	char key[16], msg[32];

	CLI_OK(&r, NULL, NULL, "topic", "create", "gt", "--partitions", "3");
	itest_run_free(&r);
	/* 20 messages per partition, payload naming its own position. */
	for (int p = 0; p < 3; p++)
		for (int o = 0; o < 20; o++) {
			snprintf(key, sizeof(key), "%d", p);
			snprintf(msg, sizeof(msg), "g-%d-%d", p, o);
			CLI_OK(&r, NULL, NULL, "pub", "gt", "--partition", key, msg);
			snprintf(msg, sizeof(msg), "partition %d offset %d", p, o);
			cr_assert(strstr(r.out, msg), "pub printed %s, want %s", r.out, msg);
			itest_run_free(&r);
		}
	cr_assert_eq(describe_ends("gt", ends, 3), 3);
	group_sub("earliest", 10, next, &seen);
	group_sub("earliest", 10, next, &seen);
	cr_assert_eq(seen, 20);
	expect_group_committed(next, ends);

	cr_assert_eq(itest_node_stop(&node), 0, "SIGTERM stop");
	cr_assert_eq(itest_node_start(&node), 0, "restart on the same data dir");
	expect_group_committed(next, ends);
	/* --from earliest applies only where the group has no commit: a replay
	 * of a committed partition would show up as an offset below next[]. */
	group_sub("earliest", 10, next, &seen);
	cr_assert_eq(next[0] + next[1] + next[2], 30);
	/* Without --from, uncommitted partitions start at latest: commit them all first. */
	group_sub("earliest", 30, next, &seen);
	cr_assert_eq(next[0] + next[1] + next[2], 60);
	expect_group_committed(next, ends);
	/* Every partition committed: a plain group sub sees only new messages. */
	for (int o = 20; o < 23; o++) {
		snprintf(msg, sizeof(msg), "g-2-%d", o);
		CLI_OK(&r, NULL, NULL, "pub", "gt", "--partition", "2", msg);
		itest_run_free(&r);
	}
	ends[2] = 23;
	group_sub(NULL, 3, next, &seen);
	cr_assert_eq(next[2], 23);
	expect_group_committed(next, ends);
	expect_group_committed(next, ends);
}

Test(cli, delete_and_exit_codes)
{
	struct itest_run r;
	char server[80];

	CLI_OK(&r, NULL, NULL, "topic", "create", "d", "--partitions", "1");
	itest_run_free(&r);
	cli_run(&r, NULL, NULL, CLI_TIMEOUT_MS, "topic", "create", "d", "--partitions", "1", NULL);
	cr_assert_neq(r.status, 0, "creating an existing topic must fail");
	itest_run_free(&r);
	CLI_OK(&r, NULL, NULL, "pub", "d", "x");
	cr_assert(strstr(r.out, "partition 0 offset 0"), "pub printed %s", r.out);
	itest_run_free(&r);
	CLI_OK(&r, NULL, NULL, "topic", "delete", "d");
	itest_run_free(&r);

	cli_run(&r, NULL, NULL, CLI_TIMEOUT_MS, "pub", "d", "y", NULL);
	cr_assert_neq(r.status, 0, "pub to a deleted topic exited 0");
	cr_assert_neq(r.status, -1, "pub to a deleted topic hung");
	itest_run_free(&r);
	cli_run(&r, NULL, "a\nb\n", CLI_TIMEOUT_MS, "pub", "d", NULL);
	cr_assert(r.status != 0 && r.status != -1, "stdin pub to a deleted topic: %d", r.status);
	itest_run_free(&r);
	cli_run(&r, NULL, NULL, CLI_TIMEOUT_MS, "topic", "describe", "d", NULL);
	cr_assert_eq(r.status, EX_DATAERR, "describe of a missing topic: %d", r.status);
	itest_run_free(&r);
	cli_run(&r, NULL, NULL, CLI_TIMEOUT_MS, "sub", "nope", "--from", "earliest", "--count", "1", NULL);
	cr_assert(r.status != 0 && r.status != -1, "sub of a missing topic: %d", r.status);
	itest_run_free(&r);

	cli_run(&r, NULL, NULL, CLI_TIMEOUT_MS, "topic", "create", NULL);
	cr_assert_eq(r.status, EX_USAGE, "topic create without a name: %d", r.status);
	itest_run_free(&r);
	cli_run(&r, NULL, NULL, CLI_TIMEOUT_MS, "sub", "x", "--bogus", NULL);
	cr_assert_eq(r.status, EX_USAGE, "unknown flag: %d", r.status);
	itest_run_free(&r);
	cli_run(&r, NULL, NULL, CLI_TIMEOUT_MS, "sub", "x", "--format", "xml", NULL);
	cr_assert_eq(r.status, EX_USAGE, "bad --format: %d", r.status);
	itest_run_free(&r);
	cli_run(&r, NULL, NULL, CLI_TIMEOUT_MS, "frobnicate", NULL);
	cr_assert_eq(r.status, EX_USAGE, "unknown command: %d", r.status);
	itest_run_free(&r);

	/* --server wins over $SLUICE_SERVER (which points at our node). */
	cli_run(&r, NULL, NULL, CLI_TIMEOUT_MS, "--server", "127.0.0.1:1", "node", "status", NULL);
	cr_assert_eq(r.status, EX_UNAVAILABLE, "unreachable server: %d", r.status);
	itest_run_free(&r);
	snprintf(server, sizeof(server), "--server=%s", node.addr);
	CLI_OK(&r, NULL, NULL, server, "node", "status");
	cr_assert(strstr(r.out, "frontends") != NULL, "node status: %s", r.out);
	itest_run_free(&r);
	CLI_OK(&r, NULL, NULL, "--json", "node", "status");
	{
		json_t *j = parse_json(r.out);
		cr_assert_eq(json_integer_value(json_object_get(j, "frontends")), 2);
		cr_assert_eq(json_integer_value(json_object_get(j, "topics")), 0, "the deleted topic is gone");
		json_decref(j);
	}
	itest_run_free(&r);
}

Test(cli, replay_from_time)
{
	struct itest_run r;
	char from[32];
	long long t;

	CLI_OK(&r, NULL, NULL, "topic", "create", "tm", "--partitions", "1");
	itest_run_free(&r);
	CLI_OK(&r, NULL, "a-0\na-1\na-2\na-3\na-4\n", "pub", "tm");
	itest_run_free(&r);
	itest_sleep_ms(50);
	t = wall_ms();
	itest_sleep_ms(50);
	CLI_OK(&r, NULL, "b-0\nb-1\nb-2\nb-3\nb-4\n", "pub", "tm");
	itest_run_free(&r);

	snprintf(from, sizeof(from), "@%lld", t);
	CLI_OK(&r, NULL, NULL, "sub", "tm", "--from", from, "--count", "5", "--format", "raw");
	cr_assert_str_eq(r.out, "b-0\nb-1\nb-2\nb-3\nb-4\n", "replay from %s printed:\n%s", from, r.out);
	itest_run_free(&r);
	CLI_OK(&r, NULL, NULL, "sub", "tm", "--from", "3", "--count", "4", "--format", "raw");
	cr_assert_str_eq(r.out, "a-3\na-4\nb-0\nb-1\n", "replay from offset 3 printed:\n%s", r.out);
	itest_run_free(&r);
}

/* A node without [cluster] peers: status says "single", leadership cannot move. */
Test(cli, cluster_commands_on_a_single_node)
{
	struct itest_run r;
	char servers[128];
	json_t *j, *nodes, *n0;

	CLI_OK(&r, NULL, NULL, "cluster", "status");
	cr_assert(strstr(r.out, "single") != NULL, "cluster status: %s", r.out);
	cr_assert(strstr(r.out, node.addr) != NULL, "cluster status names the address: %s", r.out);
	itest_run_free(&r);

	/* an unreachable server in the list is reported, the live one answers */
	snprintf(servers, sizeof(servers), "127.0.0.1:1,%s", node.addr);
	CLI_OK(&r, NULL, NULL, "-s", servers, "cluster", "status", "--json");
	j = parse_json(r.out);
	cr_assert_eq(json_integer_value(json_object_get(j, "leader")), 1, "a single node leads itself: %s", r.out);
	nodes = json_object_get(j, "nodes");
	cr_assert(json_is_array(nodes) && json_array_size(nodes) == 2, "one row per address: %s", r.out);
	n0 = json_array_get(nodes, 0);
	cr_assert_eq(json_integer_value(json_object_get(n0, "id")), 1);
	cr_assert_str_eq(json_string_value(json_object_get(n0, "role")), "single");
	cr_assert_str_eq(json_string_value(json_object_get(n0, "address")), node.addr);
	cr_assert(json_is_true(json_object_get(n0, "reachable")));
	cr_assert_eq(json_integer_value(json_object_get(n0, "lag")), 0);
	cr_assert(json_is_false(json_object_get(json_array_get(nodes, 1), "reachable")));
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(nodes, 1), "address")), "127.0.0.1:1");
	json_decref(j);
	itest_run_free(&r);

	cli_run(&r, NULL, NULL, CLI_TIMEOUT_MS, "cluster", "transfer-leader", "--to", "2", NULL);
	cr_assert_eq(r.status, EX_DATAERR, "transfer-leader on a single node: %d\n%s", r.status, r.err);
	cr_assert(strstr(r.err, "not a cluster") != NULL, "clear message: %s", r.err);
	itest_run_free(&r);
	cli_run(&r, NULL, NULL, CLI_TIMEOUT_MS, "cluster", "transfer-leader", NULL);
	cr_assert_eq(r.status, EX_USAGE, "transfer-leader without --to: %d", r.status);
	itest_run_free(&r);
	cli_run(&r, NULL, NULL, CLI_TIMEOUT_MS, "--server", "127.0.0.1:1", "cluster", "status", NULL);
	cr_assert_eq(r.status, EX_UNAVAILABLE, "no node answered: %d", r.status);
	itest_run_free(&r);

	/* pub --json carries the raft position of the entry: a node alone is a
	 * raft group of one voter, so a later publish is in a later entry */
	CLI_OK(&r, NULL, NULL, "topic", "create", "cl", "--partitions", "1");
	itest_run_free(&r);
	CLI_OK(&r, NULL, NULL, "--json", "pub", "cl", "m");
	j = parse_json(r.out);
	cr_assert_eq(json_integer_value(json_object_get(j, "offset")), 0);
	cr_assert_geq(json_integer_value(json_object_get(j, "term")), 1, "term in %s", r.out);
	json_int_t idx = json_integer_value(json_object_get(j, "log_index"));
	cr_assert_geq(idx, 2, "after the leader's no-op and the topic: %s", r.out);
	json_decref(j);
	itest_run_free(&r);
	CLI_OK(&r, NULL, NULL, "--json", "pub", "cl", "n");
	j = parse_json(r.out);
	cr_assert_eq(json_integer_value(json_object_get(j, "offset")), 1);
	cr_assert_gt(json_integer_value(json_object_get(j, "log_index")), idx, "%s", r.out);
	json_decref(j);
	itest_run_free(&r);
}
