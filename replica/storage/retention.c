/*
 * retention.c: store_retention_step: whole oldest batches past a topic's time
 * or bytes limit, everything of deleted topics (batches, time index,
 * partitions, group offsets) and dedup entries past the window.
 *
 * Caveats:
 * - Every step is bounded (max_batches batch deletions and a budget of other
 *   entries visited); what is left is picked up by the next call, which
 *   resumes from keys saved in meta.
 * - A partition whose oldest batch is corrupt is skipped with a warning, so
 *   one bad value does not stop retention everywhere else.
 */
#include <lmdb.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "log.h"
#include "sl_assert.h"
#include "store.h"
#include "store_int.h"

#define STORE_AUX_PER_BATCH 16 /* non-batch entries retention may touch per batch allowed */
#define STORE_AUX_MIN 64
#define STORE_AUX_MAX 65536

static int key_has_topic(const MDB_val *k, uint32_t topic_id)
{
	return k->mv_size >= 4 && be_get32(k->mv_data) == topic_id;
}

struct ret_ctx {
	struct store_txn *t;
	int64_t now_ms;
	size_t batches_left; /* batch deletions left in this step */
	size_t aux_left;     /* other entries (index, groups, dedup) left to visit */
	size_t deleted;
	int err;
};

/*
 * Visits at most `budget` entries of db from `resume` (empty: the start),
 * deleting those `pred` accepts. *next (room for STORE_KEY_BYTES_MAX bytes)
 * gets the key to resume from, or length 0 when the scan reached the end.
 */
static int scan_delete(struct store_txn *t, enum store_db db, struct slice resume, size_t *budget,
                       int (*pred)(void *arg, const MDB_val *k, const MDB_val *v), void *arg, uint8_t *next,
                       size_t *next_len)
{
	uint8_t kb[STORE_KEY_BYTES_MAX];
	MDB_cursor *c = NULL;
	MDB_val k, v;
	int err = store_cursor_open(t, db, &c);
	int rc;

	if (err != SL_OK)
		return err;
	*next_len = 0;
	SL_ASSERT(resume.len <= sizeof(kb));
	memcpy(kb, resume.base, resume.len);
	k = mval(kb, resume.len);
	rc = mdb_cursor_get(c, &k, &v, resume.len > 0 ? MDB_SET_RANGE : MDB_FIRST);
	while (rc == MDB_SUCCESS && *budget > 0) {
		(*budget)--;
		if (!pred(arg, &k, &v)) {
			rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
			continue;
		}
		size_t kl = k.mv_size;
		if (kl == 0 || kl > sizeof(kb)) { /* LMDB never stores such a key */
			err = SL_ECORRUPT;
			goto out;
		}
		memcpy(kb, k.mv_data, kl);
		if ((err = store_db_del(t, db, mval(kb, kl))) != SL_OK)
			goto out;
		k = mval(kb, kl);
		rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
	}
	if (rc == MDB_SUCCESS && (k.mv_size == 0 || k.mv_size > STORE_KEY_BYTES_MAX)) {
		err = SL_ECORRUPT;
	} else if (rc == MDB_SUCCESS) {
		memcpy(next, k.mv_data, k.mv_size);
		*next_len = k.mv_size;
	} else if (rc != MDB_NOTFOUND) {
		err = store_err(rc);
	}
out:
	mdb_cursor_close(c);
	return err;
}

/* Deletes entries whose key starts with topic_id BE; *done once none is left. */
static int delete_topic_prefix(struct store_txn *t, enum store_db db, uint32_t topic_id, size_t *budget, int *done)
{
	uint8_t kb[BATCH_KEY_BYTES];
	MDB_cursor *c = NULL;
	MDB_val k, v;
	int err = store_cursor_open(t, db, &c);
	int rc = MDB_SUCCESS;

	if (err != SL_OK)
		return err;
	*done = 0;
	while (*budget > 0) {
		be_put32(kb, topic_id);
		k = mval(kb, 4);
		rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
		if (rc != MDB_SUCCESS || !key_has_topic(&k, topic_id) || k.mv_size > sizeof(kb))
			break;
		size_t kl = k.mv_size;
		memcpy(kb, k.mv_data, kl);
		if ((err = store_db_del(t, db, mval(kb, kl))) != SL_OK)
			goto out;
		(*budget)--;
	}
	if (*budget > 0 || rc != MDB_SUCCESS) {
		if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND)
			err = store_err(rc);
		else
			*done = 1;
	}
out:
	mdb_cursor_close(c);
	return err;
}

static int group_of_topic_pred(void *arg, const MDB_val *k, const MDB_val *v)
{
	uint32_t topic_id = *(const uint32_t *)arg;
	const uint8_t *p = k->mv_data;

	return k->mv_size >= 9 && be_get32(p + k->mv_size - 8) == topic_id;
}

/* Removes a deleted topic's groups entries, resuming from the key saved in its meta value. */
static int drop_topic_groups(struct ret_ctx *x, uint32_t topic_id, const char *mkey, struct slice mval_, int *done)
{
	uint8_t val[4 + STORE_KEY_BYTES_MAX];
	size_t next_len = 0;
	int err;

	if (mval_.len < 4 || mval_.len > sizeof(val))
		return SL_ECORRUPT;
	memcpy(val, mval_.base, mval_.len);
	err = scan_delete(x->t, DB_GROUPS, slice_make(val + 4, mval_.len - 4), &x->aux_left, group_of_topic_pred,
	                  &topic_id, val + 4, &next_len);
	if (err != SL_OK)
		return err;
	*done = next_len == 0;
	if (*done)
		return store_db_del(x->t, DB_META, mval(mkey, strlen(mkey)));
	return store_meta_put(x->t, mkey, slice_make(val, 4 + next_len));
}

/* One deleted topic: batches (counted), then time index, partitions, groups. */
static int drop_topic(struct ret_ctx *x, uint32_t topic_id, const char *mkey, struct slice val, int *done)
{
	size_t before = x->batches_left;
	int err = delete_topic_prefix(x->t, DB_BATCHES, topic_id, &x->batches_left, done);

	x->deleted += before - x->batches_left;
	if (err != SL_OK || !*done)
		return err;
	if ((err = delete_topic_prefix(x->t, DB_TIMEIDX, topic_id, &x->aux_left, done)) != SL_OK || !*done)
		return err;
	if ((err = delete_topic_prefix(x->t, DB_PARTITIONS, topic_id, &x->aux_left, done)) != SL_OK || !*done)
		return err;
	return drop_topic_groups(x, topic_id, mkey, val, done);
}

static int ret_deleted_topics(struct ret_ctx *x)
{
	const size_t plen = strlen(META_DELTOPIC_PREFIX);
	char mkey[32];
	uint8_t val[4 + STORE_KEY_BYTES_MAX];
	MDB_cursor *c = NULL;
	MDB_val k, v;
	int err = SL_OK, done = 1, rc;

	while (done && x->batches_left > 0 && x->aux_left > 0) {
		if ((err = store_cursor_open(x->t, DB_META, &c)) != SL_OK)
			return err;
		k = mval(META_DELTOPIC_PREFIX, plen);
		rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
		if (rc == MDB_SUCCESS && (k.mv_size != plen + 8 || memcmp(k.mv_data, META_DELTOPIC_PREFIX, plen) != 0))
			rc = MDB_NOTFOUND;
		if (rc == MDB_SUCCESS && v.mv_size > sizeof(val))
			rc = MDB_CORRUPTED;
		if (rc == MDB_SUCCESS) {
			memcpy(mkey, k.mv_data, k.mv_size);
			mkey[k.mv_size] = 0;
			memcpy(val, v.mv_data, v.mv_size);
		}
		mdb_cursor_close(c);
		if (rc != MDB_SUCCESS)
			return rc == MDB_NOTFOUND ? SL_OK : store_err(rc);
		uint32_t topic_id = (uint32_t)strtoul(mkey + plen, NULL, 16);
		err = drop_topic(x, topic_id, mkey, slice_make(val, v.mv_size), &done);
		if (err != SL_OK)
			return err;
	}
	return err;
}

/* Oldest batch of a partition and whether a newer one follows it. */
static int oldest_batch(MDB_cursor *c, uint32_t topic_id, uint32_t partition, uint8_t *kb, struct recbatch_hdr *h,
                        int *found, int *has_next)
{
	MDB_val k, v;
	int rc, err;

	*found = 0;
	*has_next = 0;
	store_batch_key(kb, topic_id, partition, 0);
	k = mval(kb, BATCH_KEY_BYTES);
	rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
	if (rc == MDB_NOTFOUND || (rc == MDB_SUCCESS && !store_batch_key_in_partition(&k, topic_id, partition)))
		return SL_OK;
	if (rc != MDB_SUCCESS)
		return store_err(rc);
	memcpy(kb, k.mv_data, BATCH_KEY_BYTES);
	if ((err = store_batch_parse_hdr(&v, h)) != SL_OK)
		return err;
	*found = 1;
	rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
	if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND)
		return store_err(rc);
	*has_next = rc == MDB_SUCCESS && store_batch_key_in_partition(&k, topic_id, partition);
	return SL_OK;
}

/* Deletes whole oldest batches of one partition while its topic's limits say so. */
static int ret_partition(struct ret_ctx *x, const struct store_topic *tp, uint32_t partition)
{
	struct store_partition part;
	struct recbatch_hdr h;
	uint8_t kb[BATCH_KEY_BYTES];
	MDB_cursor *c = NULL;
	int found = 0, has_next = 0, changed = 0;
	int err = store_partition_get(x->t, tp->topic_id, partition, &part);

	if (err != SL_OK)
		return err == SL_ENOTOPIC ? SL_OK : err;
	if ((err = store_cursor_open(x->t, DB_BATCHES, &c)) != SL_OK)
		return err;
	while (x->batches_left > 0) {
		err = oldest_batch(c, tp->topic_id, partition, kb, &h, &found, &has_next);
		if (err != SL_OK || !found)
			break;
		int too_old = tp->retention_ms > 0 && h.max_ts < x->now_ms - tp->retention_ms;
		int too_big = tp->retention_bytes > 0 && part.bytes > (uint64_t)tp->retention_bytes && has_next;
		if (!too_old && !too_big)
			break;
		if ((err = store_db_del(x->t, DB_BATCHES, mval(kb, sizeof(kb)))) != SL_OK)
			break;
		if ((err = store_timeidx_forget(x->t, tp->topic_id, partition, &h)) != SL_OK)
			break;
		part.bytes = part.bytes > h.value_bytes ? part.bytes - h.value_bytes : 0;
		x->batches_left--;
		x->deleted++;
		changed = 1;
	}
	if (err == SL_ECORRUPT) {
		log_warn("store: retention skips topic %u partition %u: corrupt oldest batch", tp->topic_id, partition);
		err = SL_OK;
	}
	if (err == SL_OK && changed) {
		err = oldest_batch(c, tp->topic_id, partition, kb, &h, &found, &has_next);
		if (err == SL_OK && found && h.base > part.end_offset)
			err = SL_ECORRUPT; /* a batch past the end the partition record says */
		part.first_offset = found ? h.base : part.end_offset;
		if (err == SL_OK && found)
			err = store_timeidx_add(x->t, tp->topic_id, partition, h.first_ts, h.base);
		if (err == SL_OK)
			err = store_part_put(x->t, tp->topic_id, partition, &part);
	}
	mdb_cursor_close(c);
	return err;
}

static int ret_topic_cb(void *arg, const struct store_topic *tp)
{
	struct ret_ctx *x = arg;

	if (tp->retention_ms <= 0 && tp->retention_bytes <= 0)
		return 0;
	for (uint32_t p = 0; p < tp->partitions && x->batches_left > 0; p++) {
		x->err = ret_partition(x, tp, p);
		if (x->err != SL_OK)
			return 1;
	}
	return x->batches_left == 0;
}

/* Expires dedup entries older than the window (and drops those of the wrong
 * size), resuming where the last step stopped. */
static int ret_dedup(struct ret_ctx *x, int64_t cutoff_ms)
{
	uint8_t resume[DEDUP_KEY_BYTES], next[STORE_KEY_BYTES_MAX];
	size_t next_len = 0, resume_len = 0;
	struct slice v;
	int err = store_meta_get(x->t, META_DEDUP_CURSOR, &v);

	/* The cursor is a key of the dedup db: of this format, or of the previous
	 * one when a data dir written by the previous version is resumed. */
	if (err == SL_OK && (v.len == DEDUP_KEY_BYTES || v.len == DEDUP_OLD_KEY_BYTES)) {
		memcpy(resume, v.base, v.len);
		resume_len = v.len;
	} else if (err != SL_OK && err != SL_ENOTFOUND) {
		return err;
	}
	err = scan_delete(x->t, DB_DEDUP, slice_make(resume, resume_len), &x->aux_left, store_dedup_expired_pred,
	                  &cutoff_ms, next, &next_len);
	if (err != SL_OK)
		return err;
	if (next_len == 0)
		return store_db_del(x->t, DB_META, mval(META_DEDUP_CURSOR, strlen(META_DEDUP_CURSOR)));
	return store_meta_put(x->t, META_DEDUP_CURSOR, slice_make(next, next_len));
}

int store_retention_step(struct store_txn *t, int64_t now_ms, int64_t dedup_window_ms, size_t max_batches,
                         size_t *deleted)
{
	struct ret_ctx x;
	size_t aux =
	    max_batches > STORE_AUX_MAX / STORE_AUX_PER_BATCH ? STORE_AUX_MAX : max_batches * STORE_AUX_PER_BATCH;
	int err;

	*deleted = 0;
	SL_ASSERT(t->write);
	if (t->err != SL_OK)
		return t->err;
	store_reader_check(t->s);
	memset(&x, 0, sizeof(x));
	x.t = t;
	x.now_ms = now_ms;
	x.batches_left = max_batches;
	x.aux_left = aux < STORE_AUX_MIN ? STORE_AUX_MIN : aux;
	err = ret_deleted_topics(&x);
	if (err == SL_OK && x.batches_left > 0) {
		err = store_topic_foreach(t, ret_topic_cb, &x);
		if (err == SL_OK)
			err = x.err;
	}
	if (err == SL_OK && dedup_window_ms > 0 && x.aux_left > 0)
		err = ret_dedup(&x, now_ms - dedup_window_ms);
	SL_ASSERT(x.deleted <= max_batches);
	*deleted = x.deleted;
	return err;
}
