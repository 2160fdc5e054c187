/*
 * storage_test.c: storage limits seen from a client of a real sluiced.
 * A full LMDB map is a STORAGE_FULL error to the producer while the node
 * keeps serving and what was acknowledged stays readable; time and byte
 * retention remove the oldest messages in the background and move the
 * partition's first offset.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "sluice/sluice.h"

static struct itest_node node;
static struct sluice_sync *sy;

static void start(const char *f1, const char *v1)
{
	struct sluice_client_opts o = {0};
	cr_assert_eq(itest_node_init(&node), 0);
	node.extra[0] = "--retention-check-ms";
	node.extra[1] = "100";
	node.extra[2] = f1;
	node.extra[3] = v1;
	cr_assert_eq(itest_node_start(&node), 0, "sluiced did not become ready");
	o.servers = node.addr;
	cr_assert_eq(sluice_sync_open(&o, &sy), 0);
}

static void teardown(void)
{
	if (sy)
		sluice_sync_close(sy);
	sy = NULL;
	itest_node_destroy(&node);
}

TestSuite(storage, .fini = teardown, .timeout = 120);

static int publish(const char *topic, const void *p, size_t n, uint64_t *offset)
{
	struct sluice_pub pub = {0};
	uint32_t part;
	char err[256];
	pub.topic = topic;
	pub.has_partition = 1;
	pub.payload = sluice_bytes_make(p, n);
	return sluice_sync_publish(sy, &pub, &part, offset, err, sizeof(err));
}

struct first_msg {
	int seen;
	uint64_t offset;
	char payload[64];
};

static void first_cb(void *arg, const struct sluice_msg *m)
{
	struct first_msg *f = arg;
	if (f->seen++)
		return;
	f->offset = m->offset;
	size_t n = m->payload.len < sizeof(f->payload) - 1 ? m->payload.len : sizeof(f->payload) - 1;
	memcpy(f->payload, m->payload.base, n);
	f->payload[n] = 0;
}

/* Partition 0's first offset and bytes from `sluice --json topic describe`. */
static void describe(const char *topic, uint64_t *first, uint64_t *bytes)
{
	const char *argv[] = {SLUICE_BIN, "--json", "topic", "describe", topic, NULL};
	struct itest_run r;
	cr_assert_eq(itest_run(argv, node.addr, NULL, NULL, 0, 10000, &r), 0);
	cr_assert_eq(r.status, 0, "describe failed: %s", r.err);
	json_error_t je;
	json_t *j = json_loadb(r.out, r.out_len, 0, &je);
	cr_assert_not_null(j, "describe --json is not JSON: %s", je.text);
	json_t *p0 = json_array_get(json_object_get(j, "partitions"), 0);
	cr_assert_not_null(p0);
	*first = (uint64_t)json_integer_value(json_object_get(p0, "first_offset"));
	*bytes = (uint64_t)json_integer_value(json_object_get(p0, "bytes"));
	json_decref(j);
	itest_run_free(&r);
}

Test(storage, full_map_is_an_error_not_a_crash)
{
	start("--map-bytes", "2m");
	char err[256];
	cr_assert_eq(sluice_sync_topic_create(sy, "full", 1, 0, 0, err, sizeof(err)), 0, "%s", err);
	char payload[1000];
	int rc = 0, ok = 0;
	for (int i = 0; i < 10000 && rc == 0; i++) {
		uint64_t off;
		snprintf(payload, sizeof(payload), "m%d", i);
		memset(payload + strlen(payload), 'x', sizeof(payload) - strlen(payload));
		rc = publish("full", payload, sizeof(payload), &off);
		if (rc == 0) {
			cr_assert_eq(off, (uint64_t)i, "offset %llu for message %d", (unsigned long long)off, i);
			ok++;
		}
	}
	cr_assert_eq(rc, SLUICE_EFULL, "expected STORAGE_FULL, got %d (%s) after %d messages", rc, sluice_strerror(rc), ok);
	cr_assert_gt(ok, 100);
	/* still serving, nothing restarted, and the acknowledged messages are there */
	uint32_t lw_restarts = 99, fe_restarts = 99, topics = 0;
	cr_assert_eq(itest_node_status_get(node.port, &lw_restarts, &fe_restarts, &topics), 0);
	cr_assert_eq(lw_restarts, 0);
	cr_assert_eq(fe_restarts, 0);
	cr_assert_eq(topics, 1);
	struct first_msg f = {0};
	uint64_t end = 0;
	cr_assert_eq(sluice_sync_fetch(sy, "full", 0, 0, 10, 0, first_cb, &f, &end, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(f.offset, 0);
	char want[64];
	memset(want, 'x', sizeof(want) - 1);
	memcpy(want, "m0", 2);
	want[sizeof(want) - 1] = 0;
	cr_assert_str_eq(f.payload, want); /* first 63 bytes of message 0 */
	cr_assert_eq(end, (uint64_t)ok, "end offset %llu, acknowledged %d", (unsigned long long)end, ok);
	cr_assert_eq(itest_node_stop(&node), 0);
}

/* Retention runs in the background: wait (bounded) until the partition
 * starts at `want` or later and holds at most max_bytes. */
static uint64_t wait_first_offset(const char *topic, uint64_t want, uint64_t max_bytes, uint64_t *bytes)
{
	uint64_t first = 0;
	long long deadline = itest_now_ms() + 10000;
	while (itest_now_ms() < deadline) {
		describe(topic, &first, bytes);
		if (first >= want && *bytes <= max_bytes)
			break;
		itest_sleep_ms(100);
	}
	return first;
}

Test(storage, time_retention_removes_old_messages)
{
	start("--log-level", "info");
	char err[256];
	cr_assert_eq(sluice_sync_topic_create(sy, "short", 1, 500, 0, err, sizeof(err)), 0, "%s", err);
	uint64_t off;
	for (int i = 0; i < 50; i++)
		cr_assert_eq(publish("short", "old", 3, &off), 0);
	itest_sleep_ms(1200);
	cr_assert_eq(publish("short", "new", 3, &off), 0);
	cr_assert_eq(off, 50);
	uint64_t bytes;
	uint64_t first = wait_first_offset("short", 50, UINT64_MAX, &bytes);
	cr_assert_eq(first, 50, "first offset %llu after time retention", (unsigned long long)first);
	struct first_msg f = {0};
	uint64_t end;
	cr_assert_eq(sluice_sync_fetch(sy, "short", 0, 0, 10, 0, first_cb, &f, &end, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(f.seen, 1, "only the new message is left");
	cr_assert_eq(f.offset, 50);
	cr_assert_str_eq(f.payload, "new");
}

Test(storage, byte_retention_keeps_partition_under_its_limit)
{
	start("--log-level", "info");
	char err[256];
	cr_assert_eq(sluice_sync_topic_create(sy, "small", 1, 0, 20000, err, sizeof(err)), 0, "%s", err);
	char payload[1000];
	memset(payload, 'b', sizeof(payload));
	uint64_t off = 0;
	for (int i = 0; i < 100; i++)
		cr_assert_eq(publish("small", payload, sizeof(payload), &off), 0);
	cr_assert_eq(off, 99);
	uint64_t bytes = 0;
	uint64_t first = wait_first_offset("small", 70, 20000, &bytes);
	cr_assert_geq(first, 70, "first offset %llu: byte retention did not run", (unsigned long long)first);
	cr_assert_leq(bytes, 20000, "partition holds %llu bytes", (unsigned long long)bytes);
	/* the newest message is still there */
	struct first_msg f = {0};
	uint64_t end;
	cr_assert_eq(sluice_sync_fetch(sy, "small", 0, 99, 10, 0, first_cb, &f, &end, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(f.offset, 99);
	cr_assert_eq(end, 100);
}
