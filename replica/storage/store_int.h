/*
 * store_int.h: what the files of replica/storage share and nobody else sees:
 * the store and transaction structs, the named databases, the on-disk key
 * sizes more than one file needs, and the LMDB helpers of env.c. Not
 * installed and not included outside replica/storage/.
 *
 * Everything on disk is big-endian, so keys sort in log order and the files
 * do not depend on the host. Disk bytes are input: a length read from disk is
 * checked and a mismatch is SL_ECORRUPT, never an assertion.
 */
#ifndef SLUICE_STORE_INT_H
#define SLUICE_STORE_INT_H

#include <lmdb.h>
#include <stddef.h>
#include <stdint.h>

#include "recbatch.h"
#include "slice.h"
#include "store.h"

enum store_db {
	DB_BATCHES,
	DB_PARTITIONS,
	DB_TOPICS,
	DB_GROUPS,
	DB_TIMEIDX,
	DB_DEDUP,
	DB_META,
	DB_RAFTLOG,
	DB_CONSUMERS,
	DB_CSTATE,
	DB_WEBHOOKS,
	DB_AUTH,
	DB_COUNT
};

#define STORE_KEY_BYTES_MAX 511 /* LMDB's key size limit (mdb_env_get_maxkeysize) */
#define STORE_TOPIC_NAME_MAX 249
#define STORE_GROUP_NAME_MAX 249

#define BATCH_KEY_BYTES 16 /* topic_id u32, partition u32, base_offset u64 */
#define DEDUP_KEY_BYTES 24     /* producer_id u64, topic_id u32, space u32, base_seq u64 */
#define DEDUP_OLD_KEY_BYTES 16 /* the previous format: producer_id u64, sequence u64 */

#define META_NEXT_TOPIC_ID "next_topic_id"
#define META_NEXT_CONSUMER_ID "next_consumer_id"
#define META_DEDUP_CURSOR "retention/dedup_cursor"
#define META_DELTOPIC_PREFIX "deltopic/"

struct store {
	MDB_env *env;
	MDB_dbi dbi[DB_COUNT];
	int readonly;
	uint32_t slots_max;
};

struct store_txn {
	struct store *s;
	MDB_txn *txn;
	int write;
	int err; /* first fatal error of a write; commit reports it */
};

static inline MDB_val mval(const void *p, size_t n)
{
	MDB_val v = {n, (void *)p};
	return v;
}

/* --- topic.c --- */
/* The next id of a counter kept in meta under key (1, 2, ...; never 0 or
 * reused); SL_ETOOMANY when it would wrap. */
int store_meta_next_id(struct store_txn *t, const char *key, uint32_t *id_out);

/* --- env.c --- */
/* LMDB (or errno) code to SL_*. */
int store_err(int rc);
/* Converts an LMDB write error and poisons the txn if LMDB cannot continue it. */
int store_txn_fail(struct store_txn *t, int rc);
int64_t store_now_ms(void);
/* Frees reader slots of dead processes. */
void store_reader_check(struct store *s);
int store_db_get(struct store_txn *t, enum store_db db, MDB_val k, MDB_val *v);
/* put and del: write txns only (asserted) and our own keys of 1..STORE_KEY_BYTES_MAX
 * bytes; once the txn has a fatal error they return it without writing. */
int store_db_put(struct store_txn *t, enum store_db db, MDB_val k, MDB_val v, unsigned flags);
/* Deleting a missing key is SL_OK. */
int store_db_del(struct store_txn *t, enum store_db db, MDB_val k);
/* The caller closes *c with mdb_cursor_close. */
int store_cursor_open(struct store_txn *t, enum store_db db, MDB_cursor **c);

/* --- topic.c --- */
int store_part_put(struct store_txn *t, uint32_t topic_id, uint32_t partition, const struct store_partition *p);
/* 1 if the topic was deleted and its data awaits cleanup. */
int store_topic_is_deleted(struct store_txn *t, uint32_t topic_id);

/* --- batch.c --- */
void store_batch_key(uint8_t *k, uint32_t topic_id, uint32_t partition, uint64_t base);
int store_batch_key_in_partition(const MDB_val *k, uint32_t topic_id, uint32_t partition);
/* Header fields and sizes only (no CRC check): SL_ECORRUPT if they disagree. */
int store_batch_parse_hdr(const MDB_val *v, struct recbatch_hdr *h);
/* Time index: keeps the earliest batch for a timestamp (an existing entry wins). */
int store_timeidx_add(struct store_txn *t, uint32_t topic_id, uint32_t partition, int64_t ts, uint64_t base);
/* Removes the time-index entry that points at a batch being deleted. */
int store_timeidx_forget(struct store_txn *t, uint32_t topic_id, uint32_t partition, const struct recbatch_hdr *h);

/* --- dedup.c --- */
/* Retention predicate over dedup entries; arg points at the int64_t cutoff (ms). */
int store_dedup_expired_pred(void *arg, const MDB_val *k, const MDB_val *v);

#endif
