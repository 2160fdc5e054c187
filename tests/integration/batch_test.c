/*
 * batch_test.c: libsluice's batched publishing (linger_ms, batch_bytes)
 * against a real sluiced. Thousands of keyless messages are acknowledged one
 * by one in publish order at consecutive offsets and read back in order;
 * with explicit partitions every partition gets consecutive offsets in its
 * own publish order; keyed publishes still travel alone and land on their
 * key's partition; headers survive a batch; flush sends an open batch at
 * once and free fails one without sending it; a batch whose answer is lost
 * is re-sent and acknowledged as a duplicate at its original offsets. Raw
 * PublishBatch frames check the broker itself: a repeated (producer, base
 * sequence) is stored once, a wrong checksum is refused.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <event2/event.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "faultproxy.h"
#include "harness.h"
#include "sluice/sluice.h"

#define MSGS_MAX 10000

static struct itest_node node;
static struct sluice_sync *sy;
static struct event_base *base;
static struct sluice_client *cli;
static struct faultproxy *fp;

/* One record per published message, filled by its ack callback. */
struct ack {
	int calls, err, dup;
	uint32_t partition;
	uint64_t offset;
};

static struct ack acks[MSGS_MAX];
static size_t order[MSGS_MAX]; /* message index of each callback, in call order */
static size_t acked;

static void setup(void)
{
	struct sluice_client_opts o = {0};

	cr_assert_eq(itest_node_init(&node), 0);
	cr_assert_eq(itest_node_start(&node), 0, "sluiced did not become ready");
	o.servers = node.addr;
	o.client_name = "itest-batch-admin";
	cr_assert_eq(sluice_sync_open(&o, &sy), 0, "sync open");
	base = event_base_new();
	cr_assert_not_null(base);
	memset(acks, 0, sizeof(acks));
	acked = 0;
}

static void teardown(void)
{
	if (cli)
		sluice_client_free(cli);
	if (base)
		event_base_free(base);
	if (sy)
		sluice_sync_close(sy);
	faultproxy_free(fp);
	fp = NULL;
	cli = NULL;
	base = NULL;
	sy = NULL;
	itest_node_destroy(&node);
}

TestSuite(batch, .init = setup, .fini = teardown, .timeout = 120);

/* ---- helpers ---- */

static void client_open(const char *servers, uint32_t linger_ms, uint32_t batch_bytes, uint32_t request_timeout_ms)
{
	struct sluice_client_opts o = {0};

	o.servers = servers;
	o.client_name = "itest-batch";
	o.linger_ms = linger_ms;
	o.batch_bytes = batch_bytes;
	o.request_timeout_ms = request_timeout_ms;
	cr_assert_eq(sluice_client_new(base, &o, &cli), 0, "client new");
}

/* Run the async client's loop until *count >= want or timeout. */
static int loop_until(const size_t *count, size_t want, int timeout_ms)
{
	return itest_loop_until(base, count, want, timeout_ms);
}

static void loop_for(int ms)
{
	itest_loop_for(base, ms);
}

static void create_topic(const char *name, uint32_t parts)
{
	char em[256] = "";
	int rc = sluice_sync_topic_create(sy, name, parts, 0, 0, em, sizeof(em));

	cr_assert_eq(rc, 0, "create %s: %d %s", name, rc, em);
}

static void ack_cb(void *arg, int err, const char *errmsg, uint32_t partition, uint64_t offset, int64_t timestamp_ms,
                   int duplicate)
{
	size_t i = (size_t)(uintptr_t)arg;
	struct ack *a = &acks[i];

	(void)errmsg;
	(void)timestamp_ms;
	a->calls++;
	a->err = err;
	a->dup = duplicate;
	a->partition = partition;
	a->offset = offset;
	if (acked < MSGS_MAX)
		order[acked] = i;
	acked++;
}

/* Publish message i (its ack lands in acks[i]); part < 0: no partition. */
static void pub(const char *topic, size_t i, int part, const char *key, const char *payload,
                const struct sluice_header *hs, size_t hs_n)
{
	struct sluice_pub p;
	int rc;

	itest_pub_fill(&p, topic, part, key, payload, hs, hs_n);
	rc = sluice_publish(cli, &p, ack_cb, (void *)(uintptr_t)i);
	cr_assert_eq(rc, 0, "publish %zu: %d", i, rc);
}

struct got {
	uint64_t offset;
	char payload[32];
	size_t headers_n;
	char hkey[16], hval[16];
};

struct fetch_acc {
	struct got *v;
	size_t n, cap;
};

static void fetch_fn(void *arg, const struct sluice_msg *m)
{
	struct fetch_acc *a = arg;
	struct got *g;

	if (a->n == a->cap)
		return;
	g = &a->v[a->n++];
	memset(g, 0, sizeof(*g));
	g->offset = m->offset;
	snprintf(g->payload, sizeof(g->payload), "%.*s", (int)m->payload.len, (const char *)m->payload.base);
	g->headers_n = m->headers_n;
	if (m->headers_n > 0) {
		snprintf(g->hkey, sizeof(g->hkey), "%s", m->headers[0].key);
		snprintf(g->hval, sizeof(g->hval), "%.*s", (int)m->headers[0].value.len,
		         (const char *)m->headers[0].value.base);
	}
}

/* Everything in one partition from offset 0 to its end; returns the end. */
static size_t fetch_all(const char *topic, uint32_t part, struct got *v, size_t cap)
{
	struct fetch_acc a = {v, 0, cap};
	uint64_t end = 0;
	char em[256] = "";
	int rc = itest_fetch_all(sy, topic, part, 1000, fetch_fn, &a, &end, em, sizeof(em));

	cr_assert_eq(rc, 0, "fetch %s/%u: %d %s", topic, part, rc, em);
	cr_assert_eq(a.n, (size_t)end, "%s/%u: fetched %zu of end %llu", topic, part, a.n, (unsigned long long)end);
	for (size_t i = 0; i < a.n; i++)
		cr_assert_eq(a.v[i].offset, i, "%s/%u: offset %llu at %zu", topic, part,
		             (unsigned long long)a.v[i].offset, i);
	return a.n;
}

static struct got got[MSGS_MAX];

/* ---- through libsluice ---- */

Test(batch, ten_thousand_keyless_acked_in_order_at_consecutive_offsets)
{
	enum { N = MSGS_MAX };
	char payload[32];

	create_topic("one", 1);
	/* 16 KiB batches: about a dozen of them pipelined, not one big one */
	client_open(node.addr, 5, 16384, 0);
	for (size_t i = 0; i < N; i++) {
		snprintf(payload, sizeof(payload), "m-%05zu", i);
		pub("one", i, -1, NULL, payload, NULL, 0);
	}
	cr_assert_eq(sluice_client_inflight(cli), (size_t)N, "every message counts as in flight: %zu",
	             sluice_client_inflight(cli));
	cr_assert_eq(loop_until(&acked, N, 60000), 0, "acked %zu of %d", acked, N);
	loop_for(50);
	cr_assert_eq(acked, (size_t)N, "callbacks: %zu", acked);
	cr_assert_eq(sluice_client_inflight(cli), 0);
	for (size_t i = 0; i < N; i++) {
		cr_assert_eq(acks[i].calls, 1, "message %zu acked %d times", i, acks[i].calls);
		cr_assert_eq(acks[i].err, 0, "message %zu: %s", i, sluice_strerror(acks[i].err));
		cr_assert_eq(acks[i].partition, 0);
		cr_assert_eq(acks[i].offset, i, "message %zu at offset %llu", i, (unsigned long long)acks[i].offset);
		cr_assert_eq(acks[i].dup, 0);
		cr_assert_eq(order[i], i, "callback %zu was for message %zu", i, order[i]);
	}
	cr_assert_eq(fetch_all("one", 0, got, N), (size_t)N);
	for (size_t i = 0; i < N; i++) {
		snprintf(payload, sizeof(payload), "m-%05zu", i);
		cr_assert_str_eq(got[i].payload, payload, "offset %zu", i);
	}
}

Test(batch, explicit_partitions_get_consecutive_offsets_in_their_publish_order)
{
	enum { N = 3000, P = 3 };
	uint32_t part_of[N];
	uint64_t next[P] = {0};
	char payload[32];

	create_topic("parts", P);
	client_open(node.addr, 5, 0, 0);
	for (size_t i = 0; i < N; i++) {
		part_of[i] = (uint32_t)(((uint64_t)i * 2654435761u) >> 7) % P;
		snprintf(payload, sizeof(payload), "p%u-%zu", part_of[i], i);
		pub("parts", i, (int)part_of[i], NULL, payload, NULL, 0);
	}
	cr_assert_eq(loop_until(&acked, N, 60000), 0, "acked %zu of %d", acked, N);
	for (size_t i = 0; i < N; i++) {
		uint32_t p = part_of[i];
		cr_assert_eq(acks[i].err, 0, "message %zu: %s", i, sluice_strerror(acks[i].err));
		cr_assert_eq(acks[i].partition, p, "message %zu on %u, want %u", i, acks[i].partition, p);
		cr_assert_eq(acks[i].offset, next[p], "message %zu: offset %llu, want %llu", i,
		             (unsigned long long)acks[i].offset, (unsigned long long)next[p]);
		next[p]++;
	}
	/* callbacks of one partition came in offset order */
	uint64_t seen[P] = {0};
	for (size_t k = 0; k < N; k++) {
		size_t i = order[k];
		cr_assert_eq(acks[i].offset, seen[part_of[i]]++, "callback %zu out of log order", k);
	}
	for (uint32_t p = 0; p < P; p++) {
		size_t n = fetch_all("parts", p, got, N), j = 0;
		cr_assert_eq(n, (size_t)next[p]);
		for (size_t i = 0; i < N; i++) {
			if (part_of[i] != p)
				continue;
			snprintf(payload, sizeof(payload), "p%u-%zu", p, i);
			cr_assert_str_eq(got[j].payload, payload, "partition %u offset %zu", p, j);
			j++;
		}
	}
}

/* Keyed publishes are not batched: the broker hashes the key (murmur2) as
 * before, so a key lands where an unbatched publish of it lands. */
Test(batch, keyed_publish_lands_on_its_keys_partition)
{
	static const char *keys[] = {"user-42", "user-7", "order-1001"};
	uint32_t want[3];
	size_t n = 0;
	char payload[32];

	create_topic("keys", 3);
	for (int k = 0; k < 3; k++) {
		struct sluice_pub p = {.topic = "keys", .key = sluice_bytes_cstr(keys[k]), .payload = sluice_bytes_cstr("ref")};
		char em[256] = "";
		cr_assert_eq(sluice_sync_publish(sy, &p, &want[k], NULL, em, sizeof(em)), 0, "%s", em);
	}
	client_open(node.addr, 5, 0, 0);
	for (int round = 0; round < 5; round++) {
		for (int k = 0; k < 3; k++) {
			snprintf(payload, sizeof(payload), "k%d-%d", k, round);
			pub("keys", n++, -1, keys[k], payload, NULL, 0);
			snprintf(payload, sizeof(payload), "free-%d-%d", k, round);
			pub("keys", n++, -1, NULL, payload, NULL, 0);
		}
	}
	cr_assert_eq(loop_until(&acked, n, 30000), 0, "acked %zu of %zu", acked, n);
	uint64_t last[3] = {0};
	for (size_t i = 0; i < n; i += 2) {
		int k = (int)((i / 2) % 3);
		cr_assert_eq(acks[i].err, 0);
		cr_assert_eq(acks[i].partition, want[k], "key %s on %u, unbatched on %u", keys[k], acks[i].partition,
		             want[k]);
		cr_assert_gt(acks[i].offset + 1, last[k], "key %s: offsets go up", keys[k]);
		last[k] = acks[i].offset + 1;
		cr_assert_eq(acks[i + 1].err, 0);
	}
}

Test(batch, headers_survive_a_batch)
{
	struct sluice_header h[2];
	char payload[32], val[16];

	create_topic("hdrs", 1);
	client_open(node.addr, 5, 0, 0);
	for (size_t i = 0; i < 4; i++) {
		snprintf(payload, sizeof(payload), "h-%zu", i);
		snprintf(val, sizeof(val), "v%zu", i);
		h[0].key = "trace";
		h[0].value = sluice_bytes_cstr(val);
		h[1].key = "";
		h[1].value = sluice_bytes_make("", 0);
		/* message i carries i % 3 headers: none, one, two */
		pub("hdrs", i, -1, NULL, payload, h, i % 3);
	}
	cr_assert_eq(loop_until(&acked, 4, 10000), 0);
	cr_assert_eq(fetch_all("hdrs", 0, got, 8), 4);
	for (size_t i = 0; i < 4; i++) {
		snprintf(payload, sizeof(payload), "h-%zu", i);
		snprintf(val, sizeof(val), "v%zu", i);
		cr_assert_str_eq(got[i].payload, payload);
		cr_assert_eq(got[i].headers_n, i % 3, "message %zu: %zu headers", i, got[i].headers_n);
		if (i % 3) {
			cr_assert_str_eq(got[i].hkey, "trace");
			cr_assert_str_eq(got[i].hval, val);
		}
	}
}

Test(batch, flush_sends_at_once_and_free_fails_an_open_batch)
{
	create_topic("fl", 1);
	client_open(node.addr, 60000, 0, 0); /* a minute of linger: only flush sends */
	for (size_t i = 0; i < 5; i++)
		pub("fl", i, -1, NULL, "x", NULL, 0);
	loop_for(300);
	cr_assert_eq(acked, 0, "a lingering batch was sent early");
	cr_assert_eq(sluice_client_inflight(cli), 5);
	long long t0 = itest_now_ms();
	sluice_client_flush(cli);
	cr_assert_eq(loop_until(&acked, 5, 10000), 0);
	cr_assert_lt(itest_now_ms() - t0, 5000);
	for (size_t i = 0; i < 5; i++) {
		cr_assert_eq(acks[i].err, 0);
		cr_assert_eq(acks[i].offset, i);
	}

	for (size_t i = 5; i < 8; i++)
		pub("fl", i, -1, NULL, "y", NULL, 0);
	sluice_client_free(cli);
	cli = NULL;
	cr_assert_eq(acked, 8, "free answers every open message");
	for (size_t i = 5; i < 8; i++)
		cr_assert_eq(acks[i].err, SLUICE_ECLOSED, "message %zu: %s", i, sluice_strerror(acks[i].err));
	cr_assert_eq(fetch_all("fl", 0, got, 16), 5, "an open batch was sent by free");
}

static long long proxy_accepted(int link)
{
	struct fp_link_stats st;

	faultproxy_stats(fp, link, &st);
	return (long long)st.accepted;
}

/* The answer to a stored batch is lost (the client times out and
 * reconnects): the batch is sent again byte for byte, and the broker
 * answers it as a duplicate at the original offsets. */
Test(batch, batch_resent_after_a_lost_answer_is_a_duplicate)
{
	enum { N = 100 };
	char addr[64], payload[32];
	uint16_t lport;
	int link;

	create_topic("re", 1);
	cr_assert_eq(faultproxy_new(&fp), 0);
	link = faultproxy_add_link(fp, node.port, &lport);
	cr_assert_geq(link, 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", lport);
	client_open(addr, 5, 0, 1500);
	for (size_t i = 0; i < N; i++) {
		snprintf(payload, sizeof(payload), "r-%zu", i);
		pub("re", i, -1, NULL, payload, NULL, 0);
	}
	cr_assert_eq(loop_until(&acked, N, 10000), 0);

	/* Each way 1 s late: the batch is stored after 1 s, its answer would
	 * arrive after 2 s, and the client gives up on it after 1.5 s. */
	faultproxy_set(fp, link, FP_DELAY, 1000);
	long long before = proxy_accepted(link), deadline = itest_now_ms() + 10000;
	for (size_t i = N; i < 2 * N; i++) {
		snprintf(payload, sizeof(payload), "r-%zu", i);
		pub("re", i, -1, NULL, payload, NULL, 0);
	}
	sluice_client_flush(cli);
	while (proxy_accepted(link) == before && itest_now_ms() < deadline)
		loop_for(20);
	cr_assert_gt(proxy_accepted(link), before, "the client did not reconnect");
	cr_assert_eq(acked, (size_t)N, "the delayed answer arrived before the timeout");
	faultproxy_heal(fp);

	cr_assert_eq(loop_until(&acked, 2 * N, 20000), 0, "acked %zu of %d", acked, 2 * N);
	for (size_t i = 0; i < 2 * N; i++) {
		cr_assert_eq(acks[i].err, 0, "message %zu: %s", i, sluice_strerror(acks[i].err));
		cr_assert_eq(acks[i].offset, i, "message %zu at %llu", i, (unsigned long long)acks[i].offset);
		cr_assert_eq(acks[i].dup, i >= N, "message %zu: duplicate %d", i, acks[i].dup);
	}
	cr_assert_eq(fetch_all("re", 0, got, 4 * N), 2 * N, "the re-sent batch was stored twice");
	for (size_t i = 0; i < 2 * N; i++) {
		snprintf(payload, sizeof(payload), "r-%zu", i);
		cr_assert_str_eq(got[i].payload, payload);
	}
}

/* ---- raw PublishBatch frames ---- */

/* CRC32C bit by bit: an implementation independent of libsluice's. */
static uint32_t crc32c_bitwise(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint32_t c = 0xffffffffu;

	while (n--) {
		c ^= *b++;
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
	}
	return ~c;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

/* Three records "a", "bb", "ccc", the second with header k=v. */
static size_t raw_records(uint8_t *out)
{
	static const char *pl[] = {"a", "bb", "ccc"};
	size_t n = 0;

	for (int i = 0; i < 3; i++) {
		uint32_t hl = i == 1 ? 2 + 1 + 4 + 1 : 0, len = (uint32_t)strlen(pl[i]);
		put_le32(out + n, 0);
		put_le32(out + n + 4, hl);
		put_le32(out + n + 8, len);
		n += 12;
		if (hl) {
			out[n] = 1;
			out[n + 1] = 0;
			out[n + 2] = 'k';
			put_le32(out + n + 3, 1);
			out[n + 7] = 'v';
			n += hl;
		}
		memcpy(out + n, pl[i], len);
		n += len;
	}
	return n;
}

static void raw_send_batch(int fd, uint64_t id, const char *topic, uint64_t producer, uint64_t base_seq,
                           const uint8_t *recs, size_t len, uint32_t crc)
{
	Sluice__Frame f = SLUICE__FRAME__INIT;
	Sluice__PublishBatch b = SLUICE__PUBLISH_BATCH__INIT;

	b.topic = (char *)topic;
	b.producer_id = producer;
	b.base_sequence = base_seq;
	b.count = 3;
	b.records.data = (uint8_t *)recs;
	b.records.len = len;
	b.crc32c = crc;
	f.id = id;
	f.body_case = SLUICE__FRAME__BODY_PUBLISH_BATCH;
	f.publish_batch = &b;
	cr_assert_eq(itest_send_frame(fd, &f), 0);
}

static Sluice__PublishBatchAck *raw_batch_ack(int fd, uint64_t id, Sluice__Frame **keep)
{
	int rc = itest_recv_response(fd, id, 10000, keep);

	cr_assert_eq(rc, 0, "no answer to batch %llu: %d", (unsigned long long)id, rc);
	cr_assert_eq((*keep)->body_case, SLUICE__FRAME__BODY_PUBLISH_BATCH_ACK, "batch %llu answered %d (%s)",
	             (unsigned long long)id, (*keep)->body_case,
	             (*keep)->body_case == SLUICE__FRAME__BODY_ERROR ? (*keep)->error->message : "");
	return (*keep)->publish_batch_ack;
}

Test(batch, raw_batch_sent_twice_is_stored_once)
{
	uint8_t recs[128];
	size_t len = raw_records(recs);
	uint32_t crc = crc32c_bitwise(recs, len);
	Sluice__Frame *r1 = NULL, *r2 = NULL;
	int fd;

	cr_assert_eq(crc32c_bitwise("123456789", 9), 0xE3069283u, "the test's own CRC32C");
	create_topic("rawdup", 1);
	fd = itest_connect(node.port);
	cr_assert_geq(fd, 0);
	cr_assert_eq(itest_hello(fd), 0);
	raw_send_batch(fd, 10, "rawdup", 0xB47C4ull, 1, recs, len, crc);
	Sluice__PublishBatchAck *a1 = raw_batch_ack(fd, 10, &r1);
	cr_assert_eq(a1->base_offset, 0);
	cr_assert_eq(a1->count, 3);
	cr_assert_eq(a1->duplicate, 0);
	raw_send_batch(fd, 11, "rawdup", 0xB47C4ull, 1, recs, len, crc);
	Sluice__PublishBatchAck *a2 = raw_batch_ack(fd, 11, &r2);
	cr_assert_eq(a2->duplicate, 1, "the same producer and base sequence again must be a duplicate");
	cr_assert_eq(a2->base_offset, a1->base_offset, "a duplicate carries the original base offset");
	cr_assert_eq(a2->partition, a1->partition);
	cr_assert_eq(a2->count, 3);
	sluice__frame__free_unpacked(r1, NULL);
	sluice__frame__free_unpacked(r2, NULL);
	close(fd);

	cr_assert_eq(fetch_all("rawdup", 0, got, 16), 3, "end offset: nothing stored twice");
	cr_assert_str_eq(got[0].payload, "a");
	cr_assert_str_eq(got[1].payload, "bb");
	cr_assert_str_eq(got[2].payload, "ccc");
	cr_assert_eq(got[0].headers_n, 0);
	cr_assert_eq(got[1].headers_n, 1);
	cr_assert_str_eq(got[1].hkey, "k");
	cr_assert_str_eq(got[1].hval, "v");
}

Test(batch, raw_batch_with_a_wrong_checksum_is_refused)
{
	uint8_t recs[128];
	size_t len = raw_records(recs);
	Sluice__Frame *r = NULL;
	int fd, rc;

	create_topic("rawcrc", 1);
	fd = itest_connect(node.port);
	cr_assert_geq(fd, 0);
	cr_assert_eq(itest_hello(fd), 0);
	raw_send_batch(fd, 10, "rawcrc", 77, 1, recs, len, crc32c_bitwise(recs, len) ^ 1u);
	rc = itest_recv_response(fd, 10, 10000, &r);
	cr_assert_eq(rc, 0, "no answer to a batch with a bad checksum: %d", rc);
	cr_assert_eq(r->body_case, SLUICE__FRAME__BODY_ERROR, "a bad checksum was answered %d", r->body_case);
	cr_assert_eq(r->error->code, SLUICE__ERROR_CODE__MALFORMED, "bad checksum: error %d (%s)", r->error->code,
	             r->error->message);
	sluice__frame__free_unpacked(r, NULL);
	r = NULL;
	/* docs/protocol.md: the batch is not stored and the connection stays open */
	cr_assert_eq(itest_send_node_status(fd, 11), 0);
	rc = itest_recv_response(fd, 11, 10000, &r);
	cr_assert_eq(rc, 0, "connection unusable after a refused batch: %d", rc);
	cr_assert_eq(r->body_case, SLUICE__FRAME__BODY_NODE_STATUS_RESULT);
	sluice__frame__free_unpacked(r, NULL);
	close(fd);
	cr_assert_eq(fetch_all("rawcrc", 0, got, 16), 0, "a refused batch was stored");
}
