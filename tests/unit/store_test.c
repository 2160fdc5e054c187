/*
 * store_test.c: replica/storage against a real LMDB environment in a temp
 * directory under /tmp (removed after each test): topics and slots, append
 * and read back across batches and partitions, read limits, corruption,
 * groups, dedup, time lookup, reopen.
 */
#define _XOPEN_SOURCE 700
#include <criterion/criterion.h>
#include <ftw.h>
#include <signal.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lmdb.h>

#include "err.h"
#include "store.h"

#define MAP_BYTES (64ull << 20)
#define SLOTS 16
#define COLLECT_MAX 4096

static char dir[64];
static struct store *st;

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

static struct store *open_store(int readonly)
{
	struct store_opts o = {.dir = dir, .map_bytes = MAP_BYTES, .sync = 0, .readonly = readonly, .slots_max = SLOTS};
	struct store *s = NULL;
	cr_assert_eq(store_open(&s, &o), SL_OK);
	return s;
}

static void setup(void)
{
	strcpy(dir, "/tmp/sluice-store-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	st = open_store(0);
}

static void teardown(void)
{
	store_close(st);
	st = NULL;
	nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static struct store_txn *wtxn(void)
{
	struct store_txn *t = NULL;
	cr_assert_eq(store_txn_begin(st, 1, &t), SL_OK);
	return t;
}

static struct store_txn *rtxn(void)
{
	struct store_txn *t = NULL;
	cr_assert_eq(store_txn_begin(st, 0, &t), SL_OK);
	return t;
}

static struct store_topic make_topic(const char *name, uint32_t partitions)
{
	struct store_topic in;
	struct store_topic out;
	struct store_txn *t = wtxn();

	memset(&in, 0, sizeof(in));
	snprintf(in.name, sizeof(in.name), "%s", name);
	in.partitions = partitions;
	cr_assert_eq(store_topic_create(t, &in, &out), SL_OK, "create %s", name);
	cr_assert_eq(store_txn_commit(t), SL_OK);
	return out;
}

/* Deterministic record contents per (partition, offset). */
static void fmt_payload(char *buf, size_t n, uint32_t p, uint64_t off)
{
	snprintf(buf, n, "payload-p%u-o%" PRIu64 "-%s", p, off, off % 3 == 0 ? "long-tail-xxxxxxxxxxxxxxxx" : "s");
}

static void fmt_key(char *buf, size_t n, uint64_t off)
{
	snprintf(buf, n, "key%" PRIu64, off);
}

static void fmt_hdrs(char *buf, size_t n, uint64_t off)
{
	snprintf(buf, n, "h=%" PRIu64, off * 7);
}

/* Appends n records to (topic, p) in one batch; returns the base offset. */
static uint64_t append_n(struct store_txn *t, uint32_t topic_id, uint32_t p, uint64_t expect_base, size_t n, int64_t ts)
{
	struct store_record recs[16];
	char pay[16][96], key[16][32], hdr[16][32];
	uint64_t base = 0;

	cr_assert_leq(n, 16);
	for (size_t i = 0; i < n; i++) {
		uint64_t off = expect_base + i;
		fmt_payload(pay[i], sizeof(pay[i]), p, off);
		fmt_key(key[i], sizeof(key[i]), off);
		fmt_hdrs(hdr[i], sizeof(hdr[i]), off);
		memset(&recs[i], 0, sizeof(recs[i]));
		recs[i].producer_id = 42 + p;
		recs[i].sequence = off;
		recs[i].payload = slice_cstr(pay[i]);
		recs[i].key = (off % 5 == 0) ? slice_make(NULL, 0) : slice_cstr(key[i]);
		recs[i].headers = slice_cstr(hdr[i]);
	}
	cr_assert_eq(store_batch_append(t, topic_id, p, recs, n, ts, 7, &base), SL_OK);
	cr_assert_eq(base, expect_base);
	return base;
}

struct collect {
	size_t n;
	size_t stop_after; /* 0: never stop */
	uint32_t partition;
	uint64_t offsets[COLLECT_MAX];
	int64_t ts[COLLECT_MAX];
	int bad; /* a record's content did not match its offset */
};

static int collect_cb(void *arg, const struct store_record *r)
{
	struct collect *c = arg;
	char pay[96], key[32], hdr[32];

	cr_assert_lt(c->n, COLLECT_MAX);
	fmt_payload(pay, sizeof(pay), c->partition, r->offset);
	fmt_key(key, sizeof(key), r->offset);
	fmt_hdrs(hdr, sizeof(hdr), r->offset);
	if (!slice_eq(r->payload, slice_cstr(pay)) || !slice_eq(r->headers, slice_cstr(hdr)) ||
	    r->producer_id != 42 + c->partition || r->sequence != r->offset)
		c->bad++;
	if (r->offset % 5 == 0 ? r->key.len != 0 : !slice_eq(r->key, slice_cstr(key)))
		c->bad++;
	c->offsets[c->n] = r->offset;
	c->ts[c->n] = r->timestamp_ms;
	c->n++;
	return c->stop_after != 0 && c->n >= c->stop_after;
}

static int do_read(uint32_t topic_id, uint32_t p, uint64_t from, uint64_t limit, size_t max_records, size_t max_bytes,
                   struct collect *c, uint64_t *next)
{
	struct store_txn *t = rtxn();
	int err;

	c->partition = p;
	err = store_read(t, topic_id, p, from, limit, max_records, max_bytes, collect_cb, c, next);
	store_txn_abort(t);
	return err;
}

TestSuite(store, .init = setup, .fini = teardown);
static void corrupt_at(uint32_t topic_id, uint64_t base, size_t idx);

Test(store, crc32c_check_value)
{
	const char *s = "123456789";
	cr_assert_eq(store_crc32c(0, s, 9), 0xE3069283u);
	/* Chaining over pieces equals one pass, including unaligned tails. */
	cr_assert_eq(store_crc32c(store_crc32c(0, s, 4), s + 4, 5), 0xE3069283u);
	cr_assert_eq(store_crc32c(0, "", 0), 0u);
	/* RFC 3720 B.4 vectors: 32 zero bytes, 32 0xff bytes, 0..31. */
	uint8_t v32[32];
	memset(v32, 0, sizeof(v32));
	cr_assert_eq(store_crc32c(0, v32, 32), 0x8A9136AAu);
	memset(v32, 0xff, sizeof(v32));
	cr_assert_eq(store_crc32c(0, v32, 32), 0x62A8AB43u);
	for (int i = 0; i < 32; i++)
		v32[i] = (uint8_t)i;
	cr_assert_eq(store_crc32c(0, v32, 32), 0x46DD794Eu);
	uint8_t buf[1000];
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 31 + 7);
	uint32_t whole = store_crc32c(0, buf, sizeof(buf));
	cr_assert_eq(store_crc32c(store_crc32c(0, buf, 333), buf + 333, sizeof(buf) - 333), whole);
}

Test(store, topic_create_get_exists)
{
	struct store_topic a = make_topic("orders", 3), got;
	struct store_txn *t;

	cr_assert_eq(a.partitions, 3);
	cr_assert_eq(a.slot_base, 0);
	cr_assert_gt(a.topic_id, 0, "0 marks a free commit-table slot");
	cr_assert_gt(a.created_ms, 0);
	t = rtxn();
	cr_assert_eq(store_topic_get(t, "orders", 6, &got), SL_OK);
	cr_assert_str_eq(got.name, "orders");
	cr_assert_eq(got.topic_id, a.topic_id);
	cr_assert_eq(got.partitions, 3);
	cr_assert_eq(store_topic_get(t, "order", 5, &got), SL_ENOTOPIC);
	cr_assert_eq(store_topic_get(t, "orders-x", 6, &got), SL_OK, "name_len bounds the name");
	for (uint32_t p = 0; p < 3; p++) {
		struct store_partition part;
		cr_assert_eq(store_partition_get(t, a.topic_id, p, &part), SL_OK);
		cr_assert_eq(part.first_offset, 0);
		cr_assert_eq(part.end_offset, 0);
		cr_assert_eq(part.bytes, 0);
	}
	struct store_partition part;
	cr_assert_eq(store_partition_get(t, a.topic_id, 3, &part), SL_ENOTOPIC);
	store_txn_abort(t);

	struct store_topic in = {.partitions = 1};
	strcpy(in.name, "orders");
	t = wtxn();
	cr_assert_eq(store_topic_create(t, &in, &got), SL_ETOPIC_EXISTS);
	store_txn_abort(t);
}

/* Raw access to db "topics" with the store closed: what an older version
 * wrote, and values broken on disk. put: NULL reads name's value into *got. */
static void topics_raw(const char *name, const uint8_t *put, size_t len, uint8_t *got, size_t *got_len)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k = {strlen(name), (void *)name}, v = {len, (void *)put};

	store_close(st);
	cr_assert_eq(mdb_env_create(&env), 0);
	cr_assert_eq(mdb_env_set_maxdbs(env, 32), 0);
	cr_assert_eq(mdb_env_set_mapsize(env, MAP_BYTES), 0);
	cr_assert_eq(mdb_env_open(env, dir, 0, 0640), 0);
	cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
	cr_assert_eq(mdb_dbi_open(txn, "topics", 0, &dbi), 0);
	if (put) {
		cr_assert_eq(mdb_put(txn, dbi, &k, &v, 0), 0);
	} else {
		cr_assert_eq(mdb_get(txn, dbi, &k, &v), 0);
		memcpy(got, v.mv_data, v.mv_size);
		*got_len = v.mv_size;
	}
	cr_assert_eq(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
	st = open_store(0);
}

/* A topic keeps its creator; values without one (version 1, 40 bytes:
 * written before creators were kept, or by the system) still read, with "". */
Test(store, topic_creator_encoding)
{
	struct store_topic in = {.partitions = 2}, a, b, got;
	uint8_t v[128], old[40];
	size_t vl = 0;
	struct store_txn *t = wtxn();

	strcpy(in.name, "mine");
	strcpy(in.creator, "alice");
	cr_assert_eq(store_topic_create(t, &in, &a), SL_OK);
	cr_assert_str_eq(a.creator, "alice");
	memset(&in, 0, sizeof(in));
	in.partitions = 1;
	in.retention_ms = 60000;
	strcpy(in.name, "system");
	cr_assert_eq(store_topic_create(t, &in, &b), SL_OK);
	cr_assert_str_eq(b.creator, "");
	cr_assert_eq(store_txn_commit(t), SL_OK);

	topics_raw("mine", NULL, 0, v, &vl);
	cr_assert_eq(vl, 40 + 1 + 5, "40 bytes, the creator's length and name");
	cr_assert_eq(v[0], 2, "version 2");
	cr_assert_eq(v[40], 5);
	cr_assert_eq(memcmp(v + 41, "alice", 5), 0);
	topics_raw("system", NULL, 0, old, &vl);
	cr_assert_eq(vl, 40, "no creator: written as before");
	cr_assert_eq(old[0], 1);

	/* a version 1 value as an older sluice wrote it */
	topics_raw("legacy", old, sizeof(old), NULL, NULL);
	t = rtxn();
	cr_assert_eq(store_topic_get(t, "mine", 4, &got), SL_OK);
	cr_assert_str_eq(got.creator, "alice");
	cr_assert_eq(got.partitions, 2);
	cr_assert_eq(got.topic_id, a.topic_id);
	cr_assert_eq(store_topic_get(t, "legacy", 6, &got), SL_OK);
	cr_assert_str_eq(got.creator, "");
	cr_assert_eq(got.retention_ms, 60000);
	cr_assert_eq(got.topic_id, b.topic_id);
	store_txn_abort(t);

	/* broken on disk: refused, never trusted */
	const struct {
		size_t len;
		uint8_t version, clen;
	} bad[] = {{41, 2, 0}, {45, 2, 5}, {47, 2, 5}, {41 + 65, 2, 65}, {46, 1, 5}, {40, 3, 0}, {39, 1, 0}};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint8_t x[128];
		memcpy(x, v, sizeof(x));
		memset(x + 41, 'a', sizeof(x) - 41);
		x[0] = bad[i].version;
		x[40] = bad[i].clen;
		topics_raw("broken", x, bad[i].len, NULL, NULL);
		t = rtxn();
		cr_assert_eq(store_topic_get(t, "broken", 6, &got), SL_ECORRUPT, "case %zu", i);
		store_txn_abort(t);
	}

	/* a creator longer than a principal is refused */
	memset(&in, 0, sizeof(in));
	in.partitions = 1;
	strcpy(in.name, "long");
	memset(in.creator, 'x', sizeof(in.creator));
	t = wtxn();
	cr_assert_eq(store_topic_create(t, &in, &got), SL_EINVAL);
	store_txn_abort(t);
}

Test(store, topic_invalid)
{
	struct store_topic in, out;
	struct store_txn *t = wtxn();
	const char *bad[] = {"", "a b", "a/b", "ü", "x*", "tab\t"};

	memset(&in, 0, sizeof(in));
	in.partitions = 1;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(in.name, sizeof(in.name), "%s", bad[i]);
		cr_assert_eq(store_topic_create(t, &in, &out), SL_EINVAL, "name '%s'", bad[i]);
	}
	memset(in.name, 'a', 250);
	in.name[250] = 0;
	cr_assert_eq(store_topic_create(t, &in, &out), SL_EINVAL, "250 chars");
	in.name[249] = 0;
	cr_assert_eq(store_topic_create(t, &in, &out), SL_OK, "249 chars");
	strcpy(in.name, "A.z_0-9");
	in.partitions = 0;
	cr_assert_eq(store_topic_create(t, &in, &out), SL_EINVAL);
	in.partitions = SLOTS + 1;
	cr_assert_eq(store_topic_create(t, &in, &out), SL_EINVAL);
	in.partitions = 1;
	in.retention_ms = -1;
	cr_assert_eq(store_topic_create(t, &in, &out), SL_EINVAL);
	in.retention_ms = 0;
	cr_assert_eq(store_topic_create(t, &in, &out), SL_OK);
	cr_assert_eq(store_txn_commit(t), SL_OK);
}

struct names {
	int n;
	char name[8][32];
};

static int names_cb(void *arg, const struct store_topic *tp)
{
	struct names *x = arg;
	snprintf(x->name[x->n++], 32, "%.31s", tp->name);
	return x->n == 8;
}

Test(store, topic_slots_and_reuse_after_delete)
{
	struct store_topic a = make_topic("a", 3);
	struct store_topic b = make_topic("b", 5);
	struct store_topic c = make_topic("c", 4);
	struct store_topic in, out;
	struct store_txn *t;

	cr_assert_eq(a.slot_base, 0);
	cr_assert_eq(b.slot_base, 3);
	cr_assert_eq(c.slot_base, 8);
	cr_assert(a.topic_id < b.topic_id && b.topic_id < c.topic_id);

	/* 4 slots left (12..15): 5 do not fit. */
	memset(&in, 0, sizeof(in));
	strcpy(in.name, "d");
	in.partitions = 5;
	t = wtxn();
	cr_assert_eq(store_topic_create(t, &in, &out), SL_ETOOMANY);
	cr_assert_eq(store_topic_delete(t, "b"), SL_OK);
	cr_assert_eq(store_topic_delete(t, "b"), SL_ENOTOPIC);
	cr_assert_eq(store_txn_commit(t), SL_OK);

	/* b's slots 3..7 are free again; the lowest fit is used, ids are never reused. */
	struct store_topic d = make_topic("d", 5);
	cr_assert_eq(d.slot_base, 3);
	cr_assert_gt(d.topic_id, c.topic_id);
	struct store_topic b2 = make_topic("b", 2);
	cr_assert_eq(b2.slot_base, 12);
	cr_assert_gt(b2.topic_id, d.topic_id);

	struct names ns = {0};
	t = rtxn();
	cr_assert_eq(store_topic_foreach(t, names_cb, &ns), SL_OK);
	store_txn_abort(t);
	cr_assert_eq(ns.n, 4);
	cr_assert_str_eq(ns.name[0], "a");
	cr_assert_str_eq(ns.name[1], "b");
	cr_assert_str_eq(ns.name[2], "c");
	cr_assert_str_eq(ns.name[3], "d");
}

Test(store, append_and_read_back_many)
{
	struct store_topic tp = make_topic("log", 3);
	uint64_t end[3] = {0, 0, 0};
	static struct collect c;
	uint64_t next;
	struct store_txn *t;

	/* Partitions interleave in every txn, so most puts are not at the db's tail. */
	for (int txn = 0; txn < 20; txn++) {
		t = wtxn();
		for (int i = 0; i < 6; i++) {
			uint32_t p = (uint32_t)((txn + i) % 3);
			size_t n = 1 + (size_t)((txn * 7 + i) % 9);
			append_n(t, tp.topic_id, p, end[p], n, 1000 + txn);
			end[p] += n;
		}
		cr_assert_eq(store_txn_commit(t), SL_OK);
	}
	for (uint32_t p = 0; p < 3; p++) {
		memset(&c, 0, sizeof(c));
		cr_assert_eq(do_read(tp.topic_id, p, 0, UINT64_MAX, 0, 0, &c, &next), SL_OK);
		cr_assert_eq(c.n, end[p], "partition %u: %zu of %" PRIu64, p, c.n, end[p]);
		cr_assert_eq(c.bad, 0);
		cr_assert_eq(next, end[p]);
		for (size_t i = 0; i < c.n; i++) {
			cr_assert_eq(c.offsets[i], i);
			cr_assert(c.ts[i] >= 1000 && c.ts[i] < 1020);
			if (i > 0)
				cr_assert_geq(c.ts[i], c.ts[i - 1]);
		}
		struct store_partition part;
		t = rtxn();
		cr_assert_eq(store_partition_get(t, tp.topic_id, p, &part), SL_OK);
		store_txn_abort(t);
		cr_assert_eq(part.first_offset, 0);
		cr_assert_eq(part.end_offset, end[p]);
		cr_assert_gt(part.bytes, end[p] * 40);
		cr_assert_eq(part.max_ts, 1019);

		/* From inside batches, where the next key may belong to another partition. */
		for (uint64_t from = 1; from < end[p]; from += 7) {
			memset(&c, 0, sizeof(c));
			cr_assert_eq(do_read(tp.topic_id, p, from, UINT64_MAX, 3, 0, &c, &next), SL_OK);
			cr_assert_eq(c.n, from + 3 <= end[p] ? 3 : end[p] - from);
			cr_assert_eq(c.offsets[0], from);
			cr_assert_eq(c.bad, 0);
			cr_assert_eq(next, from + c.n);
		}
	}
}

/* A topic of one partition holding batches [0, 10), [10, 20) and [20, 25). */
static struct store_topic topic_of_three_batches(const char *name)
{
	struct store_topic tp = make_topic(name, 1);
	struct store_txn *t = wtxn();

	append_n(t, tp.topic_id, 0, 0, 10, 5);
	append_n(t, tp.topic_id, 0, 10, 10, 6);
	append_n(t, tp.topic_id, 0, 20, 5, 7);
	cr_assert_eq(store_txn_commit(t), SL_OK);
	return tp;
}

Test(store, read_from_middle_limits_and_end)
{
	struct store_topic tp = topic_of_three_batches("mid");
	static struct collect c;
	uint64_t next;

	/* From the middle of the first batch, across the batch boundary. */
	memset(&c, 0, sizeof(c));
	cr_assert_eq(do_read(tp.topic_id, 0, 4, UINT64_MAX, 0, 0, &c, &next), SL_OK);
	cr_assert_eq(c.n, 21);
	cr_assert_eq(c.offsets[0], 4);
	cr_assert_eq(c.offsets[20], 24);
	cr_assert_eq(c.bad, 0);
	cr_assert_eq(next, 25);

	/* max_records across a batch boundary. */
	memset(&c, 0, sizeof(c));
	cr_assert_eq(do_read(tp.topic_id, 0, 8, UINT64_MAX, 5, 0, &c, &next), SL_OK);
	cr_assert_eq(c.n, 5);
	cr_assert_eq(c.offsets[0], 8);
	cr_assert_eq(c.offsets[4], 12);
	cr_assert_eq(next, 13);

	/* limit (the committed end) below the stored end. */
	memset(&c, 0, sizeof(c));
	cr_assert_eq(do_read(tp.topic_id, 0, 13, 17, 0, 0, &c, &next), SL_OK);
	cr_assert_eq(c.n, 4);
	cr_assert_eq(c.offsets[3], 16);
	cr_assert_eq(next, 17);

	/* max_bytes smaller than one record still delivers one. */
	memset(&c, 0, sizeof(c));
	cr_assert_eq(do_read(tp.topic_id, 0, 3, UINT64_MAX, 0, 1, &c, &next), SL_OK);
	cr_assert_eq(c.n, 1);
	cr_assert_eq(c.offsets[0], 3);
	cr_assert_eq(next, 4);

	/* max_bytes of about three records. */
	memset(&c, 0, sizeof(c));
	cr_assert_eq(do_read(tp.topic_id, 0, 1, UINT64_MAX, 0, 3 * 100, &c, &next), SL_OK);
	cr_assert(c.n >= 2 && c.n <= 4, "got %zu", c.n);
	cr_assert_eq(next, 1 + c.n);

	/* The callback stops the read; next is after the last record it saw. */
	memset(&c, 0, sizeof(c));
	c.stop_after = 2;
	cr_assert_eq(do_read(tp.topic_id, 0, 18, UINT64_MAX, 0, 0, &c, &next), SL_OK);
	cr_assert_eq(c.n, 2);
	cr_assert_eq(next, 20);

	/* At and beyond the end: nothing, next stays. */
	memset(&c, 0, sizeof(c));
	cr_assert_eq(do_read(tp.topic_id, 0, 25, UINT64_MAX, 0, 0, &c, &next), SL_OK);
	cr_assert_eq(c.n, 0);
	cr_assert_eq(next, 25);
	cr_assert_eq(do_read(tp.topic_id, 0, 1000, UINT64_MAX, 0, 0, &c, &next), SL_OK);
	cr_assert_eq(c.n, 0);
	cr_assert_eq(next, 1000);

	/* Last record exactly. */
	memset(&c, 0, sizeof(c));
	cr_assert_eq(do_read(tp.topic_id, 0, 24, UINT64_MAX, 0, 0, &c, &next), SL_OK);
	cr_assert_eq(c.n, 1);
	cr_assert_eq(c.offsets[0], 24);

	/* Unknown partition / topic. */
	cr_assert_eq(do_read(tp.topic_id, 1, 0, UINT64_MAX, 0, 0, &c, &next), SL_ENOTOPIC);
	cr_assert_eq(do_read(tp.topic_id + 100, 0, 0, UINT64_MAX, 0, 0, &c, &next), SL_ENOTOPIC);
}

/* ---------- store_read_batches: whole batches and the window of each ---------- */

struct bcollect {
	size_t n, stop_after;
	struct store_batch_ref refs[16];
	struct collect recs; /* the records each window delivers, checked against the model */
};

static int window_cb(void *arg, const struct store_record *r)
{
	struct bcollect *b = arg;
	const struct store_batch_ref *ref = &b->refs[b->n];

	if (r->offset >= ref->first && r->offset < ref->first + ref->n)
		collect_cb(&b->recs, r);
	return 0;
}

static int bcollect_cb(void *arg, const struct store_batch_ref *ref)
{
	struct bcollect *b = arg;

	cr_assert_lt(b->n, 16);
	cr_assert(ref->n > 0 && ref->first >= ref->base && ref->first + ref->n <= ref->base + ref->count);
	b->refs[b->n] = *ref;
	/* the value is the stored batch, whole: it parses, and its base and count agree */
	cr_assert_eq(store_batch_parse(ref->value.base, ref->value.len, window_cb, b), SL_OK);
	b->n++;
	return b->stop_after != 0 && b->n >= b->stop_after;
}

static int do_read_batches(uint32_t topic_id, uint64_t from, uint64_t limit, size_t max_records, size_t max_bytes,
                           struct bcollect *b, uint64_t *next)
{
	struct store_txn *t = rtxn();
	int err;

	memset(b, 0, sizeof(*b));
	err = store_read_batches(t, topic_id, 0, from, limit, max_records, max_bytes, bcollect_cb, b, next);
	store_txn_abort(t);
	return err;
}

static void assert_window(const struct bcollect *b, size_t i, uint64_t base, uint32_t count, uint64_t first,
                          uint32_t n)
{
	cr_assert_eq(b->refs[i].base, base, "batch %zu", i);
	cr_assert_eq(b->refs[i].count, count, "batch %zu", i);
	cr_assert_eq(b->refs[i].first, first, "batch %zu", i);
	cr_assert_eq(b->refs[i].n, n, "batch %zu", i);
}

Test(store, read_batches_windows)
{
	struct store_topic tp = topic_of_three_batches("whole");
	static struct bcollect b;
	uint64_t next;
	struct store_txn *t;

	/* from inside the first batch to the end: three batches, the first cut at its start */
	cr_assert_eq(do_read_batches(tp.topic_id, 4, UINT64_MAX, 0, 0, &b, &next), SL_OK);
	cr_assert_eq(b.n, 3);
	assert_window(&b, 0, 0, 10, 4, 6);
	assert_window(&b, 1, 10, 10, 10, 10);
	assert_window(&b, 2, 20, 5, 20, 5);
	cr_assert_eq(next, 25);
	cr_assert_eq(b.recs.n, 21);
	cr_assert_eq(b.recs.offsets[0], 4);
	cr_assert_eq(b.recs.bad, 0);

	/* the committed end inside a batch: its window stops there */
	cr_assert_eq(do_read_batches(tp.topic_id, 13, 17, 0, 0, &b, &next), SL_OK);
	cr_assert_eq(b.n, 1);
	assert_window(&b, 0, 10, 10, 13, 4);
	cr_assert_eq(next, 17);

	/* max_records cuts the window of the batch it ends in */
	cr_assert_eq(do_read_batches(tp.topic_id, 8, UINT64_MAX, 5, 0, &b, &next), SL_OK);
	cr_assert_eq(b.n, 2);
	assert_window(&b, 0, 0, 10, 8, 2);
	assert_window(&b, 1, 10, 10, 10, 3);
	cr_assert_eq(next, 13);

	/* max_bytes below one batch still gives that batch, and only it */
	cr_assert_eq(do_read_batches(tp.topic_id, 3, UINT64_MAX, 0, 1, &b, &next), SL_OK);
	cr_assert_eq(b.n, 1);
	assert_window(&b, 0, 0, 10, 3, 7);
	cr_assert_eq(next, 10);

	/* the callback stops after a batch */
	cr_assert_eq(do_read_batches(tp.topic_id, 0, UINT64_MAX, 0, 0, &b, &next), SL_OK);
	cr_assert_eq(b.n, 3);
	memset(&b, 0, sizeof(b));
	b.stop_after = 1;
	t = rtxn();
	cr_assert_eq(store_read_batches(t, tp.topic_id, 0, 12, UINT64_MAX, 0, 0, bcollect_cb, &b, &next), SL_OK);
	store_txn_abort(t);
	cr_assert_eq(b.n, 1);
	cr_assert_eq(next, 20);

	/* at the end: nothing, next stays */
	cr_assert_eq(do_read_batches(tp.topic_id, 25, UINT64_MAX, 0, 0, &b, &next), SL_OK);
	cr_assert_eq(b.n, 0);
	cr_assert_eq(next, 25);

	/* a corrupt batch is not handed out */
	corrupt_at(tp.topic_id, 10, 64 + 45);
	cr_assert_eq(do_read_batches(tp.topic_id, 12, UINT64_MAX, 0, 0, &b, &next), SL_ECORRUPT);
	cr_assert_eq(b.n, 0);
}

Test(store, append_invalid)
{
	struct store_topic tp = make_topic("inv", 1);
	struct store_record r = {.payload = {(const uint8_t *)"x", 1}};
	uint64_t base;
	struct store_txn *t = wtxn();

	cr_assert_eq(store_batch_append(t, tp.topic_id, 0, &r, 0, 1, 1, &base), SL_EINVAL);
	cr_assert_eq(store_batch_append(t, tp.topic_id, 1, &r, 1, 1, 1, &base), SL_ENOTOPIC);
	cr_assert_eq(store_batch_append(t, tp.topic_id, 0, &r, 1, 1, 1, &base), SL_OK);
	cr_assert_eq(base, 0);
	store_txn_abort(t);
}

/* Removes the temp dir now: a test that ends in abort() never runs teardown.
 * The open environment keeps its unlinked files. */
static void rm_dir_early(void)
{
	nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* Writing in a read txn is a bug of the caller: an assertion, not an error code. */
Test(store, meta_put_in_read_txn_aborts, .signal = SIGABRT)
{
	struct store_txn *t = rtxn();

	rm_dir_early();
	store_meta_put(t, "x", slice_make("y", 1));
}

Test(store, append_in_read_txn_aborts, .signal = SIGABRT)
{
	struct store_topic tp = make_topic("inv", 1);
	struct store_record r = {.payload = {(const uint8_t *)"x", 1}};
	struct store_txn *t = rtxn();
	uint64_t base;

	rm_dir_early();
	store_batch_append(t, tp.topic_id, 0, &r, 1, 1, 1, &base);
}

Test(store, dedup_put_count_zero_aborts, .signal = SIGABRT)
{
	struct store_txn *t = wtxn();
	struct store_dedup d = {.partition = 0, .count = 0, .base_offset = 1};

	rm_dir_early();
	store_dedup_put(t, 7, 1, 0, 1, &d);
}

static void corrupt_at(uint32_t topic_id, uint64_t base, size_t idx)
{
	struct store_txn *t = wtxn();
	cr_assert_eq(store_debug_corrupt(t, topic_id, 0, base, idx), SL_OK);
	cr_assert_eq(store_txn_commit(t), SL_OK);
}

Test(store, corrupt_batch_is_reported)
{
	struct store_topic tp = make_topic("bad", 1);
	static struct collect c;
	uint64_t next, off;
	struct store_txn *t = wtxn();

	append_n(t, tp.topic_id, 0, 0, 4, 1);
	append_n(t, tp.topic_id, 0, 4, 4, 2);
	append_n(t, tp.topic_id, 0, 8, 4, 3);
	cr_assert_eq(store_txn_commit(t), SL_OK);

	/* A payload byte of the middle batch: reading into it fails, the first batch is still fine. */
	corrupt_at(tp.topic_id, 4, 64 + 45);
	memset(&c, 0, sizeof(c));
	cr_assert_eq(do_read(tp.topic_id, 0, 0, 4, 0, 0, &c, &next), SL_OK);
	cr_assert_eq(c.n, 4);
	memset(&c, 0, sizeof(c));
	cr_assert_eq(do_read(tp.topic_id, 0, 0, UINT64_MAX, 0, 0, &c, &next), SL_ECORRUPT);
	cr_assert_eq(c.bad, 0);
	cr_assert_eq(do_read(tp.topic_id, 0, 5, UINT64_MAX, 0, 0, &c, &next), SL_ECORRUPT);

	/* A length field (records_bytes) and the checksum itself. */
	corrupt_at(tp.topic_id, 8, 61);
	cr_assert_eq(do_read(tp.topic_id, 0, 8, UINT64_MAX, 0, 0, &c, &next), SL_ECORRUPT);
	corrupt_at(tp.topic_id, 0, 5);
	cr_assert_eq(do_read(tp.topic_id, 0, 0, UINT64_MAX, 0, 0, &c, &next), SL_ECORRUPT);

	/* offset_for_time scans a batch too. */
	t = rtxn();
	cr_assert_eq(store_offset_for_time(t, tp.topic_id, 0, 3, &off), SL_ECORRUPT);
	store_txn_abort(t);

	t = wtxn();
	cr_assert_eq(store_debug_corrupt(t, tp.topic_id, 0, 99, 0), SL_ENOTFOUND);
	store_txn_abort(t);
}

struct gcollect {
	int n;
	uint32_t topic[8], part[8];
	uint64_t off[8];
};

static int group_cb(void *arg, uint32_t topic_id, uint32_t partition, uint64_t offset)
{
	struct gcollect *g = arg;
	cr_assert_lt(g->n, 8);
	g->topic[g->n] = topic_id;
	g->part[g->n] = partition;
	g->off[g->n] = offset;
	g->n++;
	return 0;
}

Test(store, groups)
{
	struct store_txn *t = wtxn();
	uint64_t off;

	cr_assert_eq(store_group_commit(t, "g", 2, 1, 10), SL_OK);
	cr_assert_eq(store_group_commit(t, "g", 1, 0, 5), SL_OK);
	cr_assert_eq(store_group_commit(t, "g", 2, 1, 11), SL_OK, "overwrite");
	cr_assert_eq(store_group_commit(t, "g2", 1, 0, 99), SL_OK);
	cr_assert_eq(store_group_commit(t, "", 1, 0, 99), SL_EINVAL);
	cr_assert_eq(store_txn_commit(t), SL_OK);

	t = rtxn();
	cr_assert_eq(store_group_get(t, "g", 2, 1, &off), SL_OK);
	cr_assert_eq(off, 11);
	cr_assert_eq(store_group_get(t, "g2", 1, 0, &off), SL_OK);
	cr_assert_eq(off, 99);
	cr_assert_eq(store_group_get(t, "g", 2, 2, &off), SL_ENOTFOUND);
	cr_assert_eq(store_group_get(t, "h", 1, 0, &off), SL_ENOTFOUND);

	/* "g" is a prefix of "g2": foreach must not see g2's entry. */
	struct gcollect g = {0};
	cr_assert_eq(store_group_foreach(t, "g", group_cb, &g), SL_OK);
	cr_assert_eq(g.n, 2);
	cr_assert_eq(g.topic[0], 1);
	cr_assert_eq(g.off[0], 5);
	cr_assert_eq(g.topic[1], 2);
	cr_assert_eq(g.part[1], 1);
	cr_assert_eq(g.off[1], 11);
	memset(&g, 0, sizeof(g));
	cr_assert_eq(store_group_foreach(t, "nobody", group_cb, &g), SL_OK);
	cr_assert_eq(g.n, 0);
	store_txn_abort(t);
}

static void dedup_put(struct store_txn *t, uint64_t pid, uint32_t topic_id, uint32_t space, uint64_t base_seq,
		      uint32_t part, uint32_t count, uint64_t base_off, int64_t ts)
{
	struct store_dedup d = {.partition = part, .count = count, .base_offset = base_off, .ts_ms = ts};
	cr_assert_eq(store_dedup_put(t, pid, topic_id, space, base_seq, &d), SL_OK);
}

/* Looks seq up; on SL_OK returns the offset and fills *d. */
static int dedup_find(struct store_txn *t, uint64_t pid, uint32_t topic_id, uint32_t space, uint64_t seq,
		      struct store_dedup *d, uint64_t *off)
{
	memset(d, 0xee, sizeof(*d));
	*off = 0xeeee;
	return store_dedup_get(t, pid, topic_id, space, seq, d, off);
}

Test(store, dedup_and_meta)
{
	struct store_txn *t = wtxn();
	struct store_dedup d = {.partition = 2, .count = 1, .base_offset = 300, .ts_ms = 123456, .term = 5,
				.log_index = 77};
	uint64_t off;
	struct slice v;

	cr_assert_eq(store_dedup_put(t, 7, 1, STORE_DEDUP_SPACE_ANY, 1, &d), SL_OK);
	dedup_put(t, 7, 1, STORE_DEDUP_SPACE_ANY, 2, 0, 1, 301, 123457);
	cr_assert_eq(store_meta_put(t, "ringpos/0", slice_make("abcdefgh", 8)), SL_OK);
	cr_assert_eq(store_txn_commit(t), SL_OK);

	t = rtxn();
	cr_assert_eq(dedup_find(t, 7, 1, STORE_DEDUP_SPACE_ANY, 1, &d, &off), SL_OK);
	cr_assert_eq(d.partition, 2);
	cr_assert_eq(d.count, 1);
	cr_assert_eq(d.base_offset, 300);
	cr_assert_eq(d.ts_ms, 123456);
	cr_assert_eq(d.term, 5);
	cr_assert_eq(d.log_index, 77);
	cr_assert_eq(off, 300);
	cr_assert_eq(dedup_find(t, 7, 1, STORE_DEDUP_SPACE_ANY, 2, &d, &off), SL_OK);
	cr_assert_eq(d.partition, 0);
	cr_assert_eq(d.term, 0);
	cr_assert_eq(off, 301);
	cr_assert_eq(dedup_find(t, 7, 1, STORE_DEDUP_SPACE_ANY, 3, &d, &off), SL_ENOTFOUND);
	cr_assert_eq(dedup_find(t, 8, 1, STORE_DEDUP_SPACE_ANY, 1, &d, &off), SL_ENOTFOUND);
	cr_assert_eq(store_meta_get(t, "ringpos/0", &v), SL_OK);
	cr_assert(slice_eq(v, slice_make("abcdefgh", 8)));
	cr_assert_eq(store_meta_get(t, "ringpos/1", &v), SL_ENOTFOUND);
	store_txn_abort(t);
}

/* A producer numbering each topic from 1: seq 1 in topic 2 is not a duplicate of seq 1 in topic 1. */
Test(store, dedup_topics_are_independent)
{
	struct store_txn *t = wtxn();
	struct store_dedup d;
	uint64_t off;

	dedup_put(t, 7, 1, STORE_DEDUP_SPACE_ANY, 1, 3, 1, 40, 1000);
	cr_assert_eq(dedup_find(t, 7, 2, STORE_DEDUP_SPACE_ANY, 1, &d, &off), SL_ENOTFOUND, "unseen in topic 2");
	dedup_put(t, 7, 2, STORE_DEDUP_SPACE_ANY, 1, 0, 1, 9, 2000);
	cr_assert_eq(store_txn_commit(t), SL_OK);

	t = rtxn();
	cr_assert_eq(dedup_find(t, 7, 1, STORE_DEDUP_SPACE_ANY, 1, &d, &off), SL_OK);
	cr_assert_eq(d.partition, 3);
	cr_assert_eq(off, 40);
	cr_assert_eq(d.ts_ms, 1000);
	cr_assert_eq(dedup_find(t, 7, 2, STORE_DEDUP_SPACE_ANY, 1, &d, &off), SL_OK);
	cr_assert_eq(d.partition, 0);
	cr_assert_eq(off, 9);
	cr_assert_eq(d.ts_ms, 2000);
	cr_assert_eq(dedup_find(t, 7, 3, STORE_DEDUP_SPACE_ANY, 1, &d, &off), SL_ENOTFOUND);
	store_txn_abort(t);
}

Test(store, dedup_partition_spaces_are_independent)
{
	struct store_txn *t = wtxn();
	struct store_dedup d;
	uint64_t off;

	dedup_put(t, 7, 1, 0, 1, 0, 1, 5, 1000);
	cr_assert_eq(dedup_find(t, 7, 1, STORE_DEDUP_SPACE_ANY, 1, &d, &off), SL_ENOTFOUND);
	cr_assert_eq(dedup_find(t, 7, 1, 1, 1, &d, &off), SL_ENOTFOUND);
	dedup_put(t, 7, 1, STORE_DEDUP_SPACE_ANY, 1, 2, 1, 6, 1001);
	dedup_put(t, 7, 1, 1, 1, 1, 1, 7, 1002);
	cr_assert_eq(store_txn_commit(t), SL_OK);

	t = rtxn();
	cr_assert_eq(dedup_find(t, 7, 1, 0, 1, &d, &off), SL_OK);
	cr_assert_eq(d.partition, 0);
	cr_assert_eq(off, 5);
	cr_assert_eq(dedup_find(t, 7, 1, STORE_DEDUP_SPACE_ANY, 1, &d, &off), SL_OK);
	cr_assert_eq(d.partition, 2);
	cr_assert_eq(off, 6);
	cr_assert_eq(dedup_find(t, 7, 1, 1, 1, &d, &off), SL_OK);
	cr_assert_eq(d.partition, 1);
	cr_assert_eq(off, 7);
	cr_assert_eq(dedup_find(t, 7, 1, 2, 1, &d, &off), SL_ENOTFOUND);
	store_txn_abort(t);
}

Test(store, dedup_range)
{
	struct store_txn *t = wtxn();
	struct store_dedup d;
	uint64_t off;

	dedup_put(t, 7, 1, STORE_DEDUP_SPACE_ANY, 10, 4, 5, 100, 1000);
	dedup_put(t, 7, 1, STORE_DEDUP_SPACE_ANY, 20, 4, 2, 200, 1001);
	cr_assert_eq(store_txn_commit(t), SL_OK);

	t = rtxn();
	for (uint64_t seq = 10; seq < 15; seq++) {
		cr_assert_eq(dedup_find(t, 7, 1, STORE_DEDUP_SPACE_ANY, seq, &d, &off), SL_OK, "seq %" PRIu64, seq);
		cr_assert_eq(off, 100 + seq - 10);
		cr_assert_eq(d.partition, 4);
		cr_assert_eq(d.count, 5);
		cr_assert_eq(d.base_offset, 100);
		cr_assert_eq(d.ts_ms, 1000);
	}
	cr_assert_eq(dedup_find(t, 7, 1, STORE_DEDUP_SPACE_ANY, 12, &d, &off), SL_OK);
	cr_assert_eq(off, 102);
	cr_assert_eq(dedup_find(t, 7, 1, STORE_DEDUP_SPACE_ANY, 15, &d, &off), SL_ENOTFOUND);
	cr_assert_eq(dedup_find(t, 7, 1, STORE_DEDUP_SPACE_ANY, 9, &d, &off), SL_ENOTFOUND);
	cr_assert_eq(dedup_find(t, 7, 1, STORE_DEDUP_SPACE_ANY, 0, &d, &off), SL_ENOTFOUND);
	cr_assert_eq(dedup_find(t, 7, 1, STORE_DEDUP_SPACE_ANY, 19, &d, &off), SL_ENOTFOUND);
	cr_assert_eq(dedup_find(t, 7, 1, STORE_DEDUP_SPACE_ANY, 21, &d, &off), SL_OK);
	cr_assert_eq(off, 201);
	cr_assert_eq(d.ts_ms, 1001);
	cr_assert_eq(dedup_find(t, 7, 1, STORE_DEDUP_SPACE_ANY, 22, &d, &off), SL_ENOTFOUND, "past the last entry");
	store_txn_abort(t);
}

/* Keys next to each other in the db that belong to another producer, topic or space never match. */
Test(store, dedup_adjacent_keys_do_not_match)
{
	struct store_txn *t = wtxn();
	struct store_dedup d;
	uint64_t off;

	/* The last key of producer 7 (its range ends at UINT64_MAX) sits right before producer 8's first key. */
	dedup_put(t, 7, UINT32_MAX, UINT32_MAX, UINT64_MAX - 4, 0, 5, 1000, 1);
	dedup_put(t, 9, 1, 2, 0, 0, UINT32_MAX, 0, 1);
	cr_assert_eq(store_txn_commit(t), SL_OK);

	t = rtxn();
	cr_assert_eq(dedup_find(t, 7, UINT32_MAX, UINT32_MAX, UINT64_MAX, &d, &off), SL_OK);
	cr_assert_eq(off, 1004);
	cr_assert_eq(dedup_find(t, 8, 0, 0, 0, &d, &off), SL_ENOTFOUND);
	cr_assert_eq(dedup_find(t, 8, 0, 0, 3, &d, &off), SL_ENOTFOUND);
	cr_assert_eq(dedup_find(t, 9, 1, 2, 7, &d, &off), SL_OK);
	cr_assert_eq(off, 7);
	cr_assert_eq(dedup_find(t, 10, 1, 2, 7, &d, &off), SL_ENOTFOUND, "next producer");
	cr_assert_eq(dedup_find(t, 9, 1, 3, 7, &d, &off), SL_ENOTFOUND, "next space");
	cr_assert_eq(dedup_find(t, 9, 2, 2, 7, &d, &off), SL_ENOTFOUND, "next topic");
	store_txn_abort(t);
}

Test(store, dedup_put_rejects_wrapping_ranges)
{
	struct store_txn *t = wtxn();
	struct store_dedup d = {.partition = 0, .count = 2, .base_offset = 0};

	cr_assert_eq(store_dedup_put(t, 7, 1, 0, UINT64_MAX, &d), SL_EINVAL, "sequences wrap");
	d.base_offset = UINT64_MAX;
	cr_assert_eq(store_dedup_put(t, 7, 1, 0, 0, &d), SL_EINVAL, "offsets wrap");
	d.count = 1;
	cr_assert_eq(store_dedup_put(t, 7, 1, 0, UINT64_MAX, &d), SL_OK);
	store_txn_abort(t);
}

/* Writes one entry straight into a named db of the environment, bypassing the
 * store, which must be closed (LMDB allows one open environment per process). */
static void raw_put(const char *db, const void *k, size_t klen, const void *v, size_t vlen)
{
	MDB_env *env = NULL;
	MDB_txn *txn = NULL;
	MDB_dbi dbi;
	MDB_val key = {klen, (void *)k}, val = {vlen, (void *)v};

	cr_assert_eq(mdb_env_create(&env), MDB_SUCCESS);
	cr_assert_eq(mdb_env_set_maxdbs(env, 16), MDB_SUCCESS);
	cr_assert_eq(mdb_env_set_mapsize(env, MAP_BYTES), MDB_SUCCESS);
	cr_assert_eq(mdb_env_open(env, dir, MDB_NOTLS, 0640), MDB_SUCCESS);
	cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), MDB_SUCCESS);
	cr_assert_eq(mdb_dbi_open(txn, db, 0, &dbi), MDB_SUCCESS);
	cr_assert_eq(mdb_put(txn, dbi, &key, &val, 0), MDB_SUCCESS);
	cr_assert_eq(mdb_txn_commit(txn), MDB_SUCCESS);
	mdb_env_close(env);
}

static void dedup_raw_key(uint8_t *k, uint64_t pid, uint32_t topic_id, uint32_t space, uint64_t seq)
{
	be_put64(k, pid);
	be_put32(k + 8, topic_id);
	be_put32(k + 12, space);
	be_put64(k + 16, seq);
}

Test(store, dedup_bad_value_is_corrupt)
{
	uint8_t k[24], v[40] = {0};
	struct store_txn *t;
	struct store_dedup d;
	uint64_t off;

	store_close(st);
	dedup_raw_key(k, 7, 1, 0, 10);
	raw_put("dedup", k, sizeof(k), v, 39); /* short value */
	dedup_raw_key(k, 7, 1, 0, 20);
	be_put32(v + 4, 0);                    /* count 0 */
	raw_put("dedup", k, sizeof(k), v, sizeof(v));
	dedup_raw_key(k, 7, 1, 0, 30);
	be_put32(v + 4, 3);
	be_put64(v + 8, UINT64_MAX - 1);       /* offsets would wrap */
	raw_put("dedup", k, sizeof(k), v, sizeof(v));
	raw_put("dedup", k, 16, v, 20);        /* the previous format: never matched */
	st = open_store(0);

	t = rtxn();
	cr_assert_eq(dedup_find(t, 7, 1, 0, 10, &d, &off), SL_ECORRUPT, "exact key");
	cr_assert_eq(dedup_find(t, 7, 1, 0, 11, &d, &off), SL_ECORRUPT, "the entry before");
	cr_assert_eq(dedup_find(t, 7, 1, 0, 20, &d, &off), SL_ECORRUPT);
	cr_assert_eq(dedup_find(t, 7, 1, 0, 31, &d, &off), SL_ECORRUPT);
	cr_assert_eq(dedup_find(t, 7, 1, 0, 5, &d, &off), SL_ENOTFOUND, "only the old-format key before it");
	store_txn_abort(t);
}

/* Copies the stored value of one batch out of the environment (the store must be closed). */
static uint8_t *raw_get_batch(uint32_t topic_id, uint32_t p, uint64_t base, size_t *len)
{
	MDB_env *env = NULL;
	MDB_txn *txn = NULL;
	MDB_dbi dbi;
	uint8_t k[16];
	MDB_val key = {sizeof(k), k}, val;
	uint8_t *copy;

	be_put32(k, topic_id);
	be_put32(k + 4, p);
	be_put64(k + 8, base);
	cr_assert_eq(mdb_env_create(&env), MDB_SUCCESS);
	cr_assert_eq(mdb_env_set_maxdbs(env, 16), MDB_SUCCESS);
	cr_assert_eq(mdb_env_open(env, dir, MDB_NOTLS | MDB_RDONLY, 0640), MDB_SUCCESS);
	cr_assert_eq(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), MDB_SUCCESS);
	cr_assert_eq(mdb_dbi_open(txn, "batches", 0, &dbi), MDB_SUCCESS);
	cr_assert_eq(mdb_get(txn, dbi, &key, &val), MDB_SUCCESS);
	copy = malloc(val.mv_size);
	cr_assert_not_null(copy);
	memcpy(copy, val.mv_data, val.mv_size);
	*len = val.mv_size;
	mdb_txn_abort(txn);
	mdb_env_close(env);
	return copy;
}

static void fix_crc(uint8_t *v, size_t len)
{
	be_put32(v + 4, store_crc32c(0, v + 8, len - 8));
}

Test(store, batch_parse)
{
	struct store_topic tp = make_topic("parse", 1);
	struct store_txn *t = wtxn();
	struct collect *c = calloc(1, sizeof(*c));
	uint8_t *v, *w;
	size_t len;

	cr_assert_not_null(c);
	append_n(t, tp.topic_id, 0, 0, 4, 1000);
	append_n(t, tp.topic_id, 0, 4, 3, 2000);
	cr_assert_eq(store_txn_commit(t), SL_OK);
	store_close(st);
	v = raw_get_batch(tp.topic_id, 0, 4, &len);
	st = open_store(0);

	/* Every record, with the offsets of the second batch. */
	cr_assert_eq(store_batch_parse(v, len, collect_cb, c), SL_OK);
	cr_assert_eq(c->n, 3);
	cr_assert_eq(c->bad, 0);
	for (size_t i = 0; i < 3; i++) {
		cr_assert_eq(c->offsets[i], 4 + i);
		cr_assert_eq(c->ts[i], 2000);
	}
	/* fn stops early; NULL fn only checks. */
	memset(c, 0, sizeof(*c));
	c->stop_after = 1;
	cr_assert_eq(store_batch_parse(v, len, collect_cb, c), SL_OK);
	cr_assert_eq(c->n, 1);
	cr_assert_eq(store_batch_parse(v, len, NULL, NULL), SL_OK);

	/* Any flipped byte (but the two reserved ones, 2 and 3), a short value, or
	 * no value is SL_ECORRUPT. */
	w = malloc(len);
	cr_assert_not_null(w);
	for (size_t i = 0; i < len; i++) {
		if (i == 2 || i == 3)
			continue;
		memcpy(w, v, len);
		w[i] ^= 0x01;
		cr_assert_eq(store_batch_parse(w, len, NULL, NULL), SL_ECORRUPT, "byte %zu", i);
	}
	cr_assert_eq(store_batch_parse(v, len - 1, NULL, NULL), SL_ECORRUPT);
	cr_assert_eq(store_batch_parse(v, 63, NULL, NULL), SL_ECORRUPT);
	cr_assert_eq(store_batch_parse(NULL, 0, NULL, NULL), SL_ECORRUPT);

	/* With a matching CRC the record parser still checks lengths: the first
	 * record's length, the key length, and the record count. */
	memcpy(w, v, len);
	be_put32(w + 64, be_get32(w + 64) + 1);
	fix_crc(w, len);
	cr_assert_eq(store_batch_parse(w, len, NULL, NULL), SL_ECORRUPT, "record length");
	memcpy(w, v, len);
	be_put32(w + 64 + 28, 0xffffffff);
	fix_crc(w, len);
	cr_assert_eq(store_batch_parse(w, len, NULL, NULL), SL_ECORRUPT, "key length");
	memcpy(w, v, len);
	be_put32(w + 16, 2);
	fix_crc(w, len);
	cr_assert_eq(store_batch_parse(w, len, NULL, NULL), SL_ECORRUPT, "fewer records than bytes");
	memcpy(w, v, len);
	be_put32(w + 16, 4);
	fix_crc(w, len);
	cr_assert_eq(store_batch_parse(w, len, NULL, NULL), SL_ECORRUPT, "more records than bytes");
	memcpy(w, v, len);
	fix_crc(w, len);
	cr_assert_eq(store_batch_parse(w, len, NULL, NULL), SL_OK, "the patch itself is harmless");
	free(w);
	free(v);
	free(c);
}

Test(store, offset_for_time)
{
	struct store_topic tp = make_topic("times", 2);
	struct store_txn *t = wtxn();
	uint64_t off;

	append_n(t, tp.topic_id, 0, 0, 3, 1000);  /* 0..2 */
	append_n(t, tp.topic_id, 0, 3, 2, 2000);  /* 3..4 */
	append_n(t, tp.topic_id, 0, 5, 2, 2000);  /* 5..6 same ms: index keeps the earliest */
	append_n(t, tp.topic_id, 0, 7, 4, 3000);  /* 7..10 */
	append_n(t, tp.topic_id, 1, 0, 1, 99999); /* another partition must not leak in */
	cr_assert_eq(store_txn_commit(t), SL_OK);

	t = rtxn();
	int64_t q[] = {-5, 500, 1000, 1001, 1999, 2000, 2001, 3000, 3001, 1000000};
	uint64_t want[] = {0, 0, 0, 3, 3, 3, 7, 7, 11, 11};
	for (size_t i = 0; i < sizeof(q) / sizeof(q[0]); i++) {
		cr_assert_eq(store_offset_for_time(t, tp.topic_id, 0, q[i], &off), SL_OK);
		cr_assert_eq(off, want[i], "ts %" PRId64 ": got %" PRIu64 " want %" PRIu64, q[i], off, want[i]);
	}
	cr_assert_eq(store_offset_for_time(t, tp.topic_id, 1, 5, &off), SL_OK);
	cr_assert_eq(off, 0);
	cr_assert_eq(store_offset_for_time(t, tp.topic_id, 1, 100000, &off), SL_OK);
	cr_assert_eq(off, 1);
	cr_assert_eq(store_offset_for_time(t, tp.topic_id, 2, 0, &off), SL_ENOTOPIC);
	store_txn_abort(t);
}

Test(store, reopen_persists_and_readonly)
{
	struct store_topic tp = make_topic("keep", 2);
	static struct collect c;
	uint64_t next, off;
	struct store_txn *t = wtxn();

	append_n(t, tp.topic_id, 1, 0, 6, 77);
	cr_assert_eq(store_group_commit(t, "grp", tp.topic_id, 1, 4), SL_OK);
	cr_assert_eq(store_meta_put(t, "ringpos/3", slice_make("\x01\x02", 2)), SL_OK);
	cr_assert_eq(store_txn_commit(t), SL_OK);
	store_close(st);

	/* A read-only opener (a frontend) sees everything; it cannot write. */
	st = open_store(1);
	memset(&c, 0, sizeof(c));
	cr_assert_eq(do_read(tp.topic_id, 1, 0, UINT64_MAX, 0, 0, &c, &next), SL_OK);
	cr_assert_eq(c.n, 6);
	cr_assert_eq(c.bad, 0);
	cr_assert_eq(c.ts[5], 77);
	t = rtxn();
	struct store_topic got;
	struct slice v;
	cr_assert_eq(store_topic_get(t, "keep", 4, &got), SL_OK);
	cr_assert_eq(got.topic_id, tp.topic_id);
	cr_assert_eq(got.slot_base, tp.slot_base);
	cr_assert_eq(got.created_ms, tp.created_ms);
	cr_assert_eq(store_group_get(t, "grp", tp.topic_id, 1, &off), SL_OK);
	cr_assert_eq(off, 4);
	cr_assert_eq(store_meta_get(t, "ringpos/3", &v), SL_OK);
	cr_assert_eq(v.len, 2);
	store_txn_abort(t);
	cr_assert_eq(store_txn_begin(st, 1, &t), SL_EINVAL);

	/* The writer reopened: appends continue at the stored end, ids continue. */
	store_close(st);
	st = open_store(0);
	t = wtxn();
	append_n(t, tp.topic_id, 1, 6, 2, 78);
	cr_assert_eq(store_txn_commit(t), SL_OK);
	struct store_topic n2 = make_topic("next", 1);
	cr_assert_gt(n2.topic_id, tp.topic_id);
	cr_assert_eq(n2.slot_base, 2);
}

Test(store, readonly_before_writer_fails_clearly)
{
	struct store_opts o = {.dir = "/tmp/sluice-store-does-not-exist-xyz", .map_bytes = MAP_BYTES, .readonly = 1};
	struct store *s = NULL;

	cr_assert_neq(store_open(&s, &o), SL_OK);
	cr_assert_null(s);
	cr_assert_eq(access(o.dir, F_OK), -1, "a read-only open creates nothing");
}

Test(store, usage)
{
	uint64_t map, used;
	struct store_topic tp = make_topic("u", 1);
	struct store_txn *t = wtxn();

	append_n(t, tp.topic_id, 0, 0, 3, 1);
	cr_assert_eq(store_txn_commit(t), SL_OK);
	store_usage(st, &map, &used);
	cr_assert_eq(map, MAP_BYTES);
	cr_assert_gt(used, 4096);
	cr_assert_lt(used, map);
}

/* A deferred commit is a whole commit (visible at once, kept across a
 * reopen) on a synced environment, and leaves later commits synced. */
Test(store, deferred_commit_is_whole_and_kept)
{
	struct store_opts o = {.dir = dir, .map_bytes = MAP_BYTES, .sync = 1, .readonly = 0, .slots_max = SLOTS};
	struct slice v;
	store_close(st);
	st = NULL;
	cr_assert_eq(store_open(&st, &o), SL_OK);
	struct store_txn *t = wtxn();
	cr_assert_eq(store_meta_put(t, "d/1", slice_make("a", 1)), SL_OK);
	cr_assert_eq(store_txn_commit_deferred(t), SL_OK);
	t = rtxn();
	cr_assert_eq(store_meta_get(t, "d/1", &v), SL_OK);
	cr_assert_eq(v.len, 1);
	store_txn_abort(t);
	t = wtxn();
	cr_assert_eq(store_meta_put(t, "d/2", slice_make("bc", 2)), SL_OK);
	cr_assert_eq(store_txn_commit(t), SL_OK);
	store_close(st);
	cr_assert_eq(store_open(&st, &o), SL_OK);
	t = rtxn();
	cr_assert_eq(store_meta_get(t, "d/1", &v), SL_OK);
	cr_assert_eq(memcmp(v.base, "a", 1), 0);
	cr_assert_eq(store_meta_get(t, "d/2", &v), SL_OK);
	cr_assert_eq(v.len, 2);
	store_txn_abort(t);
}

/* A batch copied to another store by value (as a follower stores a raft
 * entry's batch) reads back the same; a lost suffix is truncated whole. */
Test(store, batch_put_get_truncate)
{
	struct store_topic tp = make_topic("copy", 2);
	static struct collect c;
	uint64_t next;
	struct slice v;
	struct store_partition part;
	struct store_txn *t = wtxn();
	append_n(t, tp.topic_id, 0, 0, 3, 10);
	append_n(t, tp.topic_id, 0, 3, 4, 11);
	append_n(t, tp.topic_id, 0, 7, 2, 12);
	cr_assert_eq(store_txn_commit(t), SL_OK);

	/* copy partition 0's batches to partition 1 by value, in order */
	t = wtxn();
	uint64_t order[4] = {0, 7, 3, 7};
	uint32_t counts[4] = {3, 2, 4, 2};
	int want[4] = {SL_OK, SL_ECORRUPT /* not at the end */, SL_OK, SL_OK};
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(store_batch_get(t, tp.topic_id, 0, order[i], &v), SL_OK);
		uint8_t *copy = malloc(v.len);
		memcpy(copy, v.base, v.len);
		copy[v.len - 1] ^= 1; /* a flipped byte fails the CRC */
		cr_assert_eq(store_batch_put(t, tp.topic_id, 1, order[i], counts[i], slice_make(copy, v.len)), SL_ECORRUPT);
		copy[v.len - 1] ^= 1;
		cr_assert_eq(store_batch_put(t, tp.topic_id, 1, order[i], counts[i] + 1, slice_make(copy, v.len)), SL_ECORRUPT,
			     "the header says another count");
		cr_assert_eq(store_batch_put(t, tp.topic_id, 1, order[i], counts[i], slice_make(copy, v.len)), want[i],
			     "batch %d", i);
		free(copy);
	}
	cr_assert_eq(store_batch_get(t, tp.topic_id, 0, 1, &v), SL_ENOTFOUND);
	cr_assert_eq(store_txn_commit(t), SL_OK);
	memset(&c, 0, sizeof(c));
	cr_assert_eq(do_read(tp.topic_id, 1, 0, 9, 0, 0, &c, &next), SL_OK);
	cr_assert_eq(c.n, 9);
	cr_assert_eq(next, 9);
	/* the copy says partition 0 in its payloads: collect flags them */
	cr_assert_gt(c.bad, 0);

	/* truncate partition 0 from 3: offsets 3..8 go, 0..2 stay, 3 is the end */
	t = wtxn();
	cr_assert_eq(store_batch_truncate(t, tp.topic_id, 0, 4), SL_ECORRUPT, "inside a batch");
	cr_assert_eq(store_batch_truncate(t, tp.topic_id, 0, 3), SL_OK);
	cr_assert_eq(store_batch_truncate(t, tp.topic_id, 0, 3), SL_OK, "already the end");
	cr_assert_eq(store_batch_truncate(t, tp.topic_id, 0, 7), SL_OK, "past the end");
	cr_assert_eq(store_partition_get(t, tp.topic_id, 0, &part), SL_OK);
	cr_assert_eq(part.end_offset, 3);
	cr_assert_eq(store_batch_get(t, tp.topic_id, 0, 7, &v), SL_ENOTFOUND);
	append_n(t, tp.topic_id, 0, 3, 2, 13);
	cr_assert_eq(store_txn_commit(t), SL_OK);
	memset(&c, 0, sizeof(c));
	cr_assert_eq(do_read(tp.topic_id, 0, 0, 5, 0, 0, &c, &next), SL_OK);
	cr_assert_eq(c.n, 5);
	cr_assert_eq(c.bad, 0);
	cr_assert_eq(c.ts[4], 13);
}

Test(store, dedup_del)
{
	struct store_dedup d = {0, 3, 100, 5, 1, 2}, got;
	uint64_t off;
	struct store_txn *t = wtxn();
	cr_assert_eq(store_dedup_put(t, 9, 1, STORE_DEDUP_SPACE_ANY, 10, &d), SL_OK);
	cr_assert_eq(store_dedup_get(t, 9, 1, STORE_DEDUP_SPACE_ANY, 12, &got, &off), SL_OK);
	cr_assert_eq(off, 102);
	cr_assert_eq(store_dedup_del(t, 9, 1, STORE_DEDUP_SPACE_ANY, 11), SL_OK, "no entry starts there");
	cr_assert_eq(store_dedup_get(t, 9, 1, STORE_DEDUP_SPACE_ANY, 12, &got, &off), SL_OK);
	cr_assert_eq(store_dedup_del(t, 9, 1, STORE_DEDUP_SPACE_ANY, 10), SL_OK);
	cr_assert_eq(store_dedup_get(t, 9, 1, STORE_DEDUP_SPACE_ANY, 12, &got, &off), SL_ENOTFOUND);
	cr_assert_eq(store_txn_commit(t), SL_OK);
}
