/*
 * retention_test.c: store_retention_step (time and bytes limits, bounded
 * chunks, deleted-topic cleanup, dedup expiry) and a full map (SL_EFULL,
 * environment still usable). LMDB in temp dirs under /tmp, removed after.
 */
#define _XOPEN_SOURCE 700
#include <criterion/criterion.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lmdb.h>

#include "err.h"
#include "store.h"

#define SLOTS 16

static char dir[64];
static struct store *st;

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void open_with_map(uint64_t map_bytes)
{
	struct store_opts o = {.dir = dir, .map_bytes = map_bytes, .sync = 0, .slots_max = SLOTS};
	cr_assert_eq(store_open(&st, &o), SL_OK);
}

static void setup(void)
{
	strcpy(dir, "/tmp/sluice-ret-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	open_with_map(64ull << 20);
}

static void teardown(void)
{
	store_close(st);
	st = NULL;
	nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static struct store_txn *txn(int write)
{
	struct store_txn *t = NULL;
	cr_assert_eq(store_txn_begin(st, write, &t), SL_OK);
	return t;
}

static struct store_topic make_topic(const char *name, uint32_t partitions, int64_t ret_ms, int64_t ret_bytes)
{
	struct store_topic in = {.partitions = partitions, .retention_ms = ret_ms, .retention_bytes = ret_bytes};
	struct store_topic out;
	struct store_txn *t = txn(1);

	snprintf(in.name, sizeof(in.name), "%s", name);
	cr_assert_eq(store_topic_create(t, &in, &out), SL_OK);
	cr_assert_eq(store_txn_commit(t), SL_OK);
	return out;
}

/* One batch of `n` records with `payload_bytes` payload each, in its own txn. */
static int append_batch(uint32_t topic_id, uint32_t p, size_t n, size_t payload_bytes, int64_t ts, uint64_t *base)
{
	static uint8_t buf[128 << 10];
	struct store_record recs[8];
	struct store_txn *t = txn(1);
	int err;

	cr_assert_leq(n, 8);
	cr_assert_leq(payload_bytes, sizeof(buf));
	memset(buf, 'p', payload_bytes);
	memset(recs, 0, sizeof(recs));
	for (size_t i = 0; i < n; i++)
		recs[i].payload = slice_make(buf, payload_bytes);
	err = store_batch_append(t, topic_id, p, recs, n, ts, 1, base);
	if (err != SL_OK) {
		int cerr = store_txn_commit(t);
		cr_assert_eq(cerr, err, "commit after a failed write reports the same error");
		return err;
	}
	return store_txn_commit(t);
}

static struct store_partition part_of(uint32_t topic_id, uint32_t p)
{
	struct store_partition part;
	struct store_txn *t = txn(0);
	cr_assert_eq(store_partition_get(t, topic_id, p, &part), SL_OK);
	store_txn_abort(t);
	return part;
}

static size_t step(int64_t now, int64_t dedup_window, size_t max_batches)
{
	size_t deleted = 0;
	struct store_txn *t = txn(1);
	cr_assert_eq(store_retention_step(t, now, dedup_window, max_batches, &deleted), SL_OK);
	cr_assert_eq(store_txn_commit(t), SL_OK);
	return deleted;
}

struct first_rec {
	int n;
	uint64_t first;
};

static int first_cb(void *arg, const struct store_record *r)
{
	struct first_rec *f = arg;
	if (f->n++ == 0)
		f->first = r->offset;
	return 0;
}

static int read_all(uint32_t topic_id, uint32_t p, uint64_t from, struct first_rec *f, uint64_t *next)
{
	struct store_txn *t = txn(0);
	int err;

	memset(f, 0, sizeof(*f));
	err = store_read(t, topic_id, p, from, UINT64_MAX, 0, 0, first_cb, f, next);
	store_txn_abort(t);
	return err;
}

TestSuite(retention, .init = setup, .fini = teardown);

Test(retention, time_limit)
{
	struct store_topic tp = make_topic("t", 2, 1000, 0);
	struct store_topic keep = make_topic("forever", 1, 0, 0);
	uint64_t base, next, off;
	struct first_rec f;

	/* Partition 0: batches at ts 1000..1900 (3 records each); partition 1 all new. */
	for (int i = 0; i < 10; i++) {
		cr_assert_eq(append_batch(tp.topic_id, 0, 3, 100, 1000 + i * 100, &base), SL_OK);
		cr_assert_eq(base, (uint64_t)i * 3);
	}
	cr_assert_eq(append_batch(tp.topic_id, 1, 2, 100, 5000, &base), SL_OK);
	cr_assert_eq(append_batch(keep.topic_id, 0, 1, 100, 1, &base), SL_OK);
	struct store_partition before = part_of(tp.topic_id, 0);

	/* now - 1000 = 1450: batches with max_ts 1000..1400 go (5 of them). */
	cr_assert_eq(step(2450, 0, 100), 5);
	struct store_partition after = part_of(tp.topic_id, 0);
	cr_assert_eq(after.first_offset, 15);
	cr_assert_eq(after.end_offset, 30);
	cr_assert_eq(after.bytes, before.bytes / 2, "equal batches: half the bytes left");
	cr_assert_eq(part_of(tp.topic_id, 1).first_offset, 0);
	cr_assert_eq(part_of(keep.topic_id, 0).first_offset, 0, "retention 0 keeps forever");

	/* Reads below the log start begin at the first stored offset. */
	cr_assert_eq(read_all(tp.topic_id, 0, 0, &f, &next), SL_OK);
	cr_assert_eq(f.n, 15);
	cr_assert_eq(f.first, 15);
	cr_assert_eq(next, 30);
	struct store_txn *t = txn(0);
	cr_assert_eq(store_offset_for_time(t, tp.topic_id, 0, 0, &off), SL_OK);
	cr_assert_eq(off, 15);
	cr_assert_eq(store_offset_for_time(t, tp.topic_id, 0, 1600, &off), SL_OK);
	cr_assert_eq(off, 18);
	store_txn_abort(t);

	/* Idempotent; then everything expires and the partition is empty at its end. */
	cr_assert_eq(step(2450, 0, 100), 0);
	cr_assert_eq(step(100000, 0, 100), 6, "5 left in p0 and 1 in p1");
	after = part_of(tp.topic_id, 0);
	cr_assert_eq(after.first_offset, 30);
	cr_assert_eq(after.end_offset, 30);
	cr_assert_eq(after.bytes, 0);
	cr_assert_eq(read_all(tp.topic_id, 0, 3, &f, &next), SL_OK);
	cr_assert_eq(f.n, 0);
	cr_assert_eq(next, 30);

	/* Appends continue at the end offset. */
	cr_assert_eq(append_batch(tp.topic_id, 0, 1, 10, 200000, &base), SL_OK);
	cr_assert_eq(base, 30);
	cr_assert_eq(part_of(tp.topic_id, 0).first_offset, 30);
	cr_assert_eq(read_all(tp.topic_id, 0, 0, &f, &next), SL_OK);
	cr_assert_eq(f.n, 1);
	cr_assert_eq(f.first, 30);
}

Test(retention, bytes_limit)
{
	uint64_t base;
	/* Batches of one 1000-byte record: about 1100 bytes each with headers. */
	struct store_topic tp = make_topic("b", 1, 0, 3500);
	struct store_topic tiny = make_topic("tiny", 1, 0, 10);

	for (int i = 0; i < 10; i++)
		cr_assert_eq(append_batch(tp.topic_id, 0, 1, 1000, 1, &base), SL_OK);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(append_batch(tiny.topic_id, 0, 1, 1000, 1, &base), SL_OK);
	uint64_t batch_bytes = part_of(tp.topic_id, 0).bytes / 10;

	cr_assert_eq(step(1, 0, 100), 7 + 3);
	struct store_partition p = part_of(tp.topic_id, 0);
	cr_assert_eq(p.first_offset, 7);
	cr_assert_eq(p.bytes, 3 * batch_bytes);
	cr_assert_leq(p.bytes, 3500);
	/* A limit below one batch still keeps the newest batch. */
	p = part_of(tiny.topic_id, 0);
	cr_assert_eq(p.first_offset, 3);
	cr_assert_eq(p.end_offset, 4);
	cr_assert_eq(p.bytes, batch_bytes);
	cr_assert_eq(step(1, 0, 100), 0);
}

Test(retention, bounded_chunks)
{
	uint64_t base;
	struct store_topic tp = make_topic("c", 1, 10, 0);

	for (int i = 0; i < 22; i++)
		cr_assert_eq(append_batch(tp.topic_id, 0, 2, 10, 100, &base), SL_OK);
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(step(1000, 0, 5), 5, "call %d", i);
		struct store_partition p = part_of(tp.topic_id, 0);
		cr_assert_eq(p.first_offset, (uint64_t)(i + 1) * 10);
	}
	cr_assert_eq(step(1000, 0, 5), 2);
	cr_assert_eq(step(1000, 0, 5), 0);
	struct store_partition p = part_of(tp.topic_id, 0);
	cr_assert_eq(p.first_offset, 44);
	cr_assert_eq(p.end_offset, 44);
	cr_assert_eq(p.bytes, 0);
}

struct gcount {
	int n;
	uint32_t topic;
};

static int gcount_cb(void *arg, uint32_t topic_id, uint32_t partition, uint64_t offset)
{
	struct gcount *g = arg;
	g->n++;
	g->topic = topic_id;
	return 0;
}

Test(retention, deleted_topic_cleanup)
{
	uint64_t base, next, off;
	struct first_rec f;
	struct store_topic gone = make_topic("gone", 2, 0, 0);
	struct store_topic other = make_topic("other", 1, 0, 0);
	struct store_txn *t;

	for (int i = 0; i < 7; i++) {
		cr_assert_eq(append_batch(gone.topic_id, (uint32_t)i % 2, 1, 50, 10 + i, &base), SL_OK);
		cr_assert_eq(append_batch(other.topic_id, 0, 1, 50, 10 + i, &base), SL_OK);
	}
	t = txn(1);
	cr_assert_eq(store_group_commit(t, "g", gone.topic_id, 0, 3), SL_OK);
	cr_assert_eq(store_group_commit(t, "g", gone.topic_id, 1, 2), SL_OK);
	cr_assert_eq(store_group_commit(t, "g", other.topic_id, 0, 5), SL_OK);
	cr_assert_eq(store_group_commit(t, "h", gone.topic_id, 1, 1), SL_OK);
	cr_assert_eq(store_topic_delete(t, "gone"), SL_OK);
	cr_assert_eq(store_txn_commit(t), SL_OK);

	/* The name is free at once, with a new id and slots; the old id's data is not visible to it. */
	struct store_topic again = make_topic("gone", 1, 0, 0);
	cr_assert_gt(again.topic_id, other.topic_id);
	cr_assert_eq(read_all(again.topic_id, 0, 0, &f, &next), SL_OK);
	cr_assert_eq(f.n, 0);
	t = txn(1);
	struct store_record r = {.payload = {(const uint8_t *)"x", 1}};
	cr_assert_eq(store_batch_append(t, gone.topic_id, 0, &r, 1, 1, 1, &base), SL_ENOTOPIC, "deleted id");
	store_txn_abort(t);

	/* 7 batches in chunks of 3. */
	cr_assert_eq(step(1000, 0, 3), 3);
	cr_assert_eq(step(1000, 0, 3), 3);
	cr_assert_eq(step(1000, 0, 3), 1);
	cr_assert_eq(step(1000, 0, 3), 0);

	t = txn(0);
	struct store_partition part;
	cr_assert_eq(store_partition_get(t, gone.topic_id, 0, &part), SL_ENOTOPIC);
	cr_assert_eq(store_partition_get(t, gone.topic_id, 1, &part), SL_ENOTOPIC);
	cr_assert_eq(store_offset_for_time(t, gone.topic_id, 0, 0, &off), SL_ENOTOPIC);
	cr_assert_eq(store_group_get(t, "g", gone.topic_id, 0, &off), SL_ENOTFOUND);
	cr_assert_eq(store_group_get(t, "h", gone.topic_id, 1, &off), SL_ENOTFOUND);
	struct gcount g = {0};
	cr_assert_eq(store_group_foreach(t, "g", gcount_cb, &g), SL_OK);
	cr_assert_eq(g.n, 1);
	cr_assert_eq(g.topic, other.topic_id);
	struct slice v;
	char key[32];
	snprintf(key, sizeof(key), "deltopic/%08x", gone.topic_id);
	cr_assert_eq(store_meta_get(t, key, &v), SL_ENOTFOUND, "cleanup finished");
	store_txn_abort(t);

	/* The other topic is untouched. */
	cr_assert_eq(read_all(other.topic_id, 0, 0, &f, &next), SL_OK);
	cr_assert_eq(f.n, 7);
	cr_assert_eq(next, 7);
}

static void dedup_put(struct store_txn *t, uint64_t pid, uint32_t topic_id, uint64_t seq, uint64_t off, int64_t ts)
{
	struct store_dedup d = {.partition = 0, .count = 1, .base_offset = off, .ts_ms = ts};
	cr_assert_eq(store_dedup_put(t, pid, topic_id, STORE_DEDUP_SPACE_ANY, seq, &d), SL_OK);
}

static int dedup_find(struct store_txn *t, uint64_t pid, uint32_t topic_id, uint64_t seq, uint64_t *off)
{
	struct store_dedup d;
	return store_dedup_get(t, pid, topic_id, STORE_DEDUP_SPACE_ANY, seq, &d, off);
}

Test(retention, dedup_expiry_resumes)
{
	struct store_txn *t = txn(1);
	struct slice cur;
	uint64_t off;

	/* 300 entries, every third one recent; more than one step's entry budget. */
	for (uint64_t i = 0; i < 300; i++)
		dedup_put(t, 1 + i % 4, 1 + i % 2, i, i, i % 3 == 0 ? 5000 : 100);
	cr_assert_eq(store_txn_commit(t), SL_OK);

	/* max_batches 1 gives the minimum budget (64 entries per step). */
	cr_assert_eq(step(6000, 2000, 1), 0, "dedup entries are not batches");
	t = txn(0);
	cr_assert_eq(store_meta_get(t, "retention/dedup_cursor", &cur), SL_OK, "a step stopped part way");
	cr_assert_eq(cur.len, 24, "the cursor is a dedup key");
	store_txn_abort(t);
	for (int i = 0; i < 9; i++)
		cr_assert_eq(step(6000, 2000, 1), 0, "dedup entries are not batches");
	t = txn(0);
	for (uint64_t i = 0; i < 300; i++) {
		int err = dedup_find(t, 1 + i % 4, 1 + i % 2, i, &off);
		if (i % 3 == 0) {
			cr_assert_eq(err, SL_OK, "seq %" PRIu64, i);
			cr_assert_eq(off, i);
		} else {
			cr_assert_eq(err, SL_ENOTFOUND, "seq %" PRIu64, i);
		}
	}
	store_txn_abort(t);
}

/* Writes one entry straight into a named db, bypassing the store, which must
 * be closed (LMDB allows one open environment per process). */
static void raw_put(const char *db, const void *k, size_t klen, const void *v, size_t vlen)
{
	MDB_env *env = NULL;
	MDB_txn *txn_ = NULL;
	MDB_dbi dbi;
	MDB_val key = {klen, (void *)k}, val = {vlen, (void *)v};

	cr_assert_eq(mdb_env_create(&env), MDB_SUCCESS);
	cr_assert_eq(mdb_env_set_maxdbs(env, 16), MDB_SUCCESS);
	cr_assert_eq(mdb_env_set_mapsize(env, 64ull << 20), MDB_SUCCESS);
	cr_assert_eq(mdb_env_open(env, dir, MDB_NOTLS, 0640), MDB_SUCCESS);
	cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn_), MDB_SUCCESS);
	cr_assert_eq(mdb_dbi_open(txn_, db, 0, &dbi), MDB_SUCCESS);
	cr_assert_eq(mdb_put(txn_, dbi, &key, &val, 0), MDB_SUCCESS);
	cr_assert_eq(mdb_txn_commit(txn_), MDB_SUCCESS);
	mdb_env_close(env);
}

static size_t dedup_entries(void)
{
	MDB_env *env = NULL;
	MDB_txn *txn_ = NULL;
	MDB_dbi dbi;
	MDB_stat ms;

	cr_assert_eq(mdb_env_create(&env), MDB_SUCCESS);
	cr_assert_eq(mdb_env_set_maxdbs(env, 16), MDB_SUCCESS);
	cr_assert_eq(mdb_env_open(env, dir, MDB_NOTLS | MDB_RDONLY, 0640), MDB_SUCCESS);
	cr_assert_eq(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn_), MDB_SUCCESS);
	cr_assert_eq(mdb_dbi_open(txn_, "dedup", 0, &dbi), MDB_SUCCESS);
	cr_assert_eq(mdb_stat(txn_, dbi, &ms), MDB_SUCCESS);
	mdb_txn_abort(txn_);
	mdb_env_close(env);
	return ms.ms_entries;
}

/* A data dir written by the previous format: (producer_id, sequence) keys
 * with (partition, offset, ts) values, and its 16-byte resume cursor. */
Test(retention, dedup_old_format_removed)
{
	struct store_txn *t = txn(1);
	uint8_t k[16], v[20];
	uint64_t off;

	/* New-format entries around the old ones: producers 1 and 3, one old and one recent each. */
	for (uint64_t pid = 1; pid <= 3; pid += 2) {
		dedup_put(t, pid, 1, 1, 10, 100);
		dedup_put(t, pid, 1, 2, 11, 5000);
	}
	cr_assert_eq(store_txn_commit(t), SL_OK);
	store_close(st);
	st = NULL;
	/* 100 old entries of producers 1..4, recent by their own timestamp. */
	for (uint64_t i = 0; i < 100; i++) {
		be_put64(k, 1 + i % 4);
		be_put64(k + 8, i);
		be_put32(v, 0);
		be_put64(v + 4, i);
		be_put64(v + 12, 5000);
		raw_put("dedup", k, sizeof(k), v, sizeof(v));
	}
	be_put64(k, 2);
	be_put64(k + 8, 50);
	raw_put("meta", "retention/dedup_cursor", strlen("retention/dedup_cursor"), k, sizeof(k));
	cr_assert_eq(dedup_entries(), 104);
	open_with_map(64ull << 20);

	/* 64 entries per step: the first resumes from the old cursor (producer 2,
	 * sequence 50) and reaches the end of the db, so producer 1 is untouched. */
	cr_assert_eq(step(6000, 2000, 1), 0);
	t = txn(0);
	cr_assert_eq(dedup_find(t, 1, 1, 1, &off), SL_OK, "before the cursor");
	cr_assert_eq(dedup_find(t, 3, 1, 1, &off), SL_ENOTFOUND, "after the cursor");
	store_txn_abort(t);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(step(6000, 2000, 1), 0);
	t = txn(0);
	for (uint64_t pid = 1; pid <= 3; pid += 2) {
		cr_assert_eq(dedup_find(t, pid, 1, 1, &off), SL_ENOTFOUND, "expired, producer %" PRIu64, pid);
		cr_assert_eq(dedup_find(t, pid, 1, 2, &off), SL_OK, "kept, producer %" PRIu64, pid);
		cr_assert_eq(off, 11);
	}
	store_txn_abort(t);
	store_close(st);
	st = NULL;
	cr_assert_eq(dedup_entries(), 2, "only the two recent new-format entries are left");
	open_with_map(64ull << 20);
}

Test(retention, map_full_then_recovers)
{
	uint64_t base;
	struct first_rec f;
	uint64_t next;
	int err = SL_OK;
	int ok = 0;

	/* Replace the default environment with a 1 MiB one. */
	teardown();
	strcpy(dir, "/tmp/sluice-ret-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	open_with_map(1u << 20);
	struct store_topic tp = make_topic("full", 1, 0, 256 << 10);

	for (int i = 0; i < 100; i++) {
		err = append_batch(tp.topic_id, 0, 1, 60 << 10, 1, &base);
		if (err != SL_OK)
			break;
		ok++;
	}
	cr_assert_eq(err, SL_EFULL);
	cr_assert_gt(ok, 3);

	/* Everything committed before is intact and readable. */
	cr_assert_eq(read_all(tp.topic_id, 0, 0, &f, &next), SL_OK);
	cr_assert_eq(f.n, ok);
	cr_assert_eq(next, (uint64_t)ok);
	struct store_partition p = part_of(tp.topic_id, 0);
	cr_assert_eq(p.end_offset, (uint64_t)ok);

	/* Retention frees room; a smaller append then works. */
	cr_assert_gt(step(1, 0, 100), 0);
	cr_assert_eq(append_batch(tp.topic_id, 0, 1, 10 << 10, 1, &base), SL_OK);
	cr_assert_eq(base, (uint64_t)ok);
	cr_assert_eq(append_batch(tp.topic_id, 0, 1, 60 << 10, 1, &base), SL_OK);
	cr_assert_eq(read_all(tp.topic_id, 0, 0, &f, &next), SL_OK);
	cr_assert_eq(next, (uint64_t)ok + 2);
}
