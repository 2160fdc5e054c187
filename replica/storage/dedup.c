/*
 * dedup.c: idempotent-producer entries, so a retried publish is answered with
 * where it was first stored. One entry covers `count` consecutive sequences
 * of one producer in one sequence space of one topic (store.h):
 *
 *   key   producer_id u64, topic_id u32, space u32, base_seq u64        24 bytes
 *   value partition u32, count u32, base_offset u64, ts i64, term u64,
 *         log_index u64                                                  40 bytes
 *
 * all big-endian, so the entries of one (producer, topic, space) are
 * contiguous and ordered by base_seq.
 *
 * Caveats:
 * - A lookup looks at the entry starting at seq, else at the one just before
 *   it; ranges of one space are not expected to overlap (an entry starting
 *   inside an earlier range hides the rest of that range).
 * - Entries are forgotten after the dedup window (retention.c); a retry later
 *   than that is stored again.
 * - Entries of the previous format ((producer_id, sequence) 16-byte keys,
 *   20-byte values) are never matched; retention deletes them, and any other
 *   entry of the wrong size, whatever the window.
 */
#include <lmdb.h>
#include <string.h>

#include "err.h"
#include "sl_assert.h"
#include "store.h"
#include "store_int.h"

#define DEDUP_PREFIX_BYTES 16 /* producer_id, topic_id, space */
#define DEDUP_VAL_BYTES 40
#define DEDUP_VOFF_TS 16

_Static_assert(DEDUP_PREFIX_BYTES + 8 == DEDUP_KEY_BYTES, "dedup key: prefix and base_seq");
_Static_assert(DEDUP_KEY_BYTES > DEDUP_OLD_KEY_BYTES, "the old and new key sizes differ");

static void dedup_key(uint8_t *k, uint64_t producer_id, uint32_t topic_id, uint32_t space, uint64_t seq)
{
	be_put64(k, producer_id);
	be_put32(k + 8, topic_id);
	be_put32(k + 12, space);
	be_put64(k + 16, seq);
}

static void dedup_encode(uint8_t *p, const struct store_dedup *d)
{
	be_put32(p, d->partition);
	be_put32(p + 4, d->count);
	be_put64(p + 8, d->base_offset);
	be_put64(p + DEDUP_VOFF_TS, (uint64_t)d->ts_ms);
	be_put64(p + 24, d->term);
	be_put64(p + 32, d->log_index);
}

/* A value from disk: its size, a non-empty range and offsets that do not wrap. */
static int dedup_decode(const MDB_val *v, struct store_dedup *out)
{
	const uint8_t *p = v->mv_data;

	if (v->mv_size != DEDUP_VAL_BYTES)
		return SL_ECORRUPT;
	out->partition = be_get32(p);
	out->count = be_get32(p + 4);
	out->base_offset = be_get64(p + 8);
	out->ts_ms = (int64_t)be_get64(p + DEDUP_VOFF_TS);
	out->term = be_get64(p + 24);
	out->log_index = be_get64(p + 32);
	if (out->count == 0 || out->count - 1 > UINT64_MAX - out->base_offset)
		return SL_ECORRUPT;
	return SL_OK;
}

int store_dedup_put(struct store_txn *t, uint64_t producer_id, uint32_t topic_id, uint32_t space, uint64_t base_seq,
                    const struct store_dedup *d)
{
	uint8_t k[DEDUP_KEY_BYTES], v[DEDUP_VAL_BYTES];

	SL_ASSERT(t->write);
	SL_ASSERT(d->count >= 1);
	if (d->count - 1 > UINT64_MAX - base_seq || d->count - 1 > UINT64_MAX - d->base_offset)
		return SL_EINVAL;
	dedup_key(k, producer_id, topic_id, space, base_seq);
	dedup_encode(v, d);
	return store_db_put(t, DB_DEDUP, mval(k, sizeof(k)), mval(v, sizeof(v)), 0);
}

int store_dedup_del(struct store_txn *t, uint64_t producer_id, uint32_t topic_id, uint32_t space, uint64_t base_seq)
{
	uint8_t k[DEDUP_KEY_BYTES];

	dedup_key(k, producer_id, topic_id, space, base_seq);
	return store_db_del(t, DB_DEDUP, mval(k, sizeof(k)));
}

/* The entry at (k, v) if it belongs to the prefix of `want` and its range holds seq. */
static int dedup_match(const MDB_val *k, const MDB_val *v, const uint8_t *want, uint64_t seq, struct store_dedup *out,
                       uint64_t *offset_out)
{
	const uint8_t *kp = k->mv_data;
	uint64_t base;
	int err;

	if (k->mv_size != DEDUP_KEY_BYTES || memcmp(kp, want, DEDUP_PREFIX_BYTES) != 0)
		return SL_ENOTFOUND;
	base = be_get64(kp + DEDUP_PREFIX_BYTES);
	if ((err = dedup_decode(v, out)) != SL_OK)
		return err;
	/* seq < base + count, written so that it cannot overflow */
	if (seq < base || seq - base >= out->count)
		return SL_ENOTFOUND;
	*offset_out = out->base_offset + (seq - base);
	return SL_OK;
}

int store_dedup_get(struct store_txn *t, uint64_t producer_id, uint32_t topic_id, uint32_t space, uint64_t seq,
                    struct store_dedup *out, uint64_t *offset_out)
{
	uint8_t kb[DEDUP_KEY_BYTES];
	MDB_cursor *c = NULL;
	MDB_val k, v;
	int err, rc;

	dedup_key(kb, producer_id, topic_id, space, seq);
	if ((err = store_cursor_open(t, DB_DEDUP, &c)) != SL_OK)
		return err;
	k = mval(kb, sizeof(kb));
	rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
	if (rc == MDB_SUCCESS && (k.mv_size != sizeof(kb) || memcmp(k.mv_data, kb, sizeof(kb)) != 0))
		rc = mdb_cursor_get(c, &k, &v, MDB_PREV); /* not an exact match: the range before may hold seq */
	else if (rc == MDB_NOTFOUND)
		rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
	err = rc == MDB_SUCCESS ? dedup_match(&k, &v, kb, seq, out, offset_out) : store_err(rc);
	mdb_cursor_close(c);
	return err;
}

int store_dedup_expired_pred(void *arg, const MDB_val *k, const MDB_val *v)
{
	int64_t cutoff = *(const int64_t *)arg;

	/* The previous format (16-byte keys, 20-byte values), or any other size,
	 * can never be matched again. */
	if (k->mv_size != DEDUP_KEY_BYTES || v->mv_size != DEDUP_VAL_BYTES)
		return 1;
	return (int64_t)be_get64((const uint8_t *)v->mv_data + DEDUP_VOFF_TS) < cutoff;
}
