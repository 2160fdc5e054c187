/*
 * dedup.c: idempotent-producer entries, (producer_id BE, sequence BE) ->
 * partition, offset, timestamp, so a retried publish is answered with where
 * it was first stored.
 *
 * Caveat: entries are forgotten after the dedup window (retention.c); a retry
 * later than that is stored again.
 */
#include <lmdb.h>

#include "err.h"
#include "store.h"
#include "store_int.h"

#define DEDUP_VAL_BYTES 20

int store_dedup_put(struct store_txn *t, uint64_t producer_id, uint64_t sequence, uint32_t partition, uint64_t offset,
                    int64_t ts_ms)
{
	uint8_t k[DEDUP_KEY_BYTES], v[DEDUP_VAL_BYTES];

	be_put64(k, producer_id);
	be_put64(k + 8, sequence);
	be_put32(v, partition);
	be_put64(v + 4, offset);
	be_put64(v + 12, (uint64_t)ts_ms);
	return store_db_put(t, DB_DEDUP, mval(k, sizeof(k)), mval(v, sizeof(v)), 0);
}

int store_dedup_get(struct store_txn *t, uint64_t producer_id, uint64_t sequence, uint32_t *partition, uint64_t *offset,
                    int64_t *ts_ms)
{
	uint8_t k[DEDUP_KEY_BYTES];
	const uint8_t *p;
	MDB_val v;
	int err;

	be_put64(k, producer_id);
	be_put64(k + 8, sequence);
	if ((err = store_db_get(t, DB_DEDUP, mval(k, sizeof(k)), &v)) != SL_OK)
		return err;
	if (v.mv_size != DEDUP_VAL_BYTES)
		return SL_ECORRUPT;
	p = v.mv_data;
	*partition = be_get32(p);
	*offset = be_get64(p + 4);
	*ts_ms = (int64_t)be_get64(p + 12);
	return SL_OK;
}

int store_dedup_expired_pred(void *arg, const MDB_val *k, const MDB_val *v)
{
	int64_t cutoff = *(const int64_t *)arg;

	return v->mv_size == DEDUP_VAL_BYTES && (int64_t)be_get64((const uint8_t *)v->mv_data + 12) < cutoff;
}
