/*
 * raftlog.c: the raft log of cluster mode, index (u64 BE) -> [u64 term]
 * [u32 type][u32 crc32c(data)][data].
 *
 * Caveats:
 * - Entries are kept until every peer has them (store_raft_trim, bounded).
 * - The checksum is verified on every read; a mismatch is SL_ECORRUPT.
 */
#include <lmdb.h>
#include <stdint.h>
#include <string.h>

#include "err.h"
#include "log.h"
#include "sl_assert.h"
#include "store.h"
#include "store_int.h"

#define RAFT_VAL_HDR_BYTES 16u

int store_raft_put(struct store_txn *t, uint64_t index, uint64_t term, uint32_t type, struct slice data)
{
	uint8_t k[8];
	MDB_val v = {RAFT_VAL_HDR_BYTES + data.len, NULL};
	int rc;

	be_put64(k, index);
	SL_ASSERT(t->write);
	if (t->err != SL_OK)
		return t->err;
	rc = mdb_put(t->txn, t->s->dbi[DB_RAFTLOG], &(MDB_val){8, k}, &v, MDB_RESERVE);
	if (rc != MDB_SUCCESS)
		return store_txn_fail(t, rc);
	SL_ASSERT(v.mv_data != NULL && v.mv_size == RAFT_VAL_HDR_BYTES + data.len);
	uint8_t *p = v.mv_data;
	be_put64(p, term);
	be_put32(p + 8, type);
	be_put32(p + 12, store_crc32c(0, data.base, data.len));
	if (data.len)
		memcpy(p + RAFT_VAL_HDR_BYTES, data.base, data.len);
	return SL_OK;
}

/* Delete entries with index >= from (dir > 0) or <= from (dir < 0), at most
 * max of them; *deleted says how many went. */
static int raft_del_range(struct store_txn *t, uint64_t from, int dir, size_t max, size_t *deleted)
{
	MDB_cursor *c;
	uint8_t k[8];
	MDB_val key = {8, k}, val;
	size_t n = 0;
	int rc, err;

	SL_ASSERT(t->write);
	SL_ASSERT(dir == 1 || dir == -1);
	if ((err = store_cursor_open(t, DB_RAFTLOG, &c)) != SL_OK)
		return err;
	be_put64(k, from);
	if (dir > 0) {
		rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
	} else {
		rc = mdb_cursor_get(c, &key, &val, MDB_FIRST);
	}
	while (rc == MDB_SUCCESS && n < max) {
		if (key.mv_size != 8) {
			rc = MDB_CORRUPTED;
			break;
		}
		if (dir < 0 && be_get64(key.mv_data) > from)
			break;
		rc = mdb_cursor_del(c, 0);
		if (rc != MDB_SUCCESS)
			break;
		n++;
		/* re-seek rather than rely on where a delete leaves the cursor */
		key.mv_size = 8;
		key.mv_data = k;
		rc = mdb_cursor_get(c, &key, &val, dir > 0 ? MDB_SET_RANGE : MDB_FIRST);
	}
	mdb_cursor_close(c);
	*deleted = n;
	if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND)
		return store_txn_fail(t, rc);
	return SL_OK;
}

int store_raft_truncate(struct store_txn *t, uint64_t from)
{
	size_t n;
	return raft_del_range(t, from, 1, SIZE_MAX, &n);
}

int store_raft_trim(struct store_txn *t, uint64_t upto, size_t max, size_t *deleted)
{
	return raft_del_range(t, upto, -1, max, deleted);
}

int store_raft_foreach(struct store_txn *t, uint64_t from,
		       int (*fn)(void *arg, uint64_t index, uint64_t term, uint32_t type, struct slice data), void *arg)
{
	MDB_cursor *c;
	uint8_t k[8];
	MDB_val key = {8, k}, val;
	int rc, err;

	if ((err = store_cursor_open(t, DB_RAFTLOG, &c)) != SL_OK)
		return err;
	be_put64(k, from);
	err = SL_OK;
	for (rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE); rc == MDB_SUCCESS;
	     rc = mdb_cursor_get(c, &key, &val, MDB_NEXT)) {
		const uint8_t *p = val.mv_data;
		if (key.mv_size != 8 || val.mv_size < RAFT_VAL_HDR_BYTES) {
			err = SL_ECORRUPT;
			break;
		}
		struct slice d = slice_make(p + RAFT_VAL_HDR_BYTES, val.mv_size - RAFT_VAL_HDR_BYTES);
		if (store_crc32c(0, d.base, d.len) != be_get32(p + 12)) {
			log_error("store: raft log entry %llu fails its checksum",
				  (unsigned long long)be_get64(key.mv_data));
			err = SL_ECORRUPT;
			break;
		}
		if (fn(arg, be_get64(key.mv_data), be_get64(p), be_get32(p + 8), d))
			break;
	}
	mdb_cursor_close(c);
	if (err == SL_OK && rc != MDB_SUCCESS && rc != MDB_NOTFOUND)
		err = store_err(rc);
	return err;
}
