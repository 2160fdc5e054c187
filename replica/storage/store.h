/*
 * store.h: the node's LMDB storage. One environment per node, opened by each
 * process after fork (LMDB forbids using an environment across fork). The
 * logwriter is the only writer; frontends use short read-only transactions
 * and never keep one open across an event-loop turn.
 *
 * Databases (named LMDB dbs):
 *   batches  (topic_id u32 BE, partition u32 BE, base_offset u64 BE) -> record batch
 *   partitions (topic_id, partition)  -> struct store_partition (log start, end, bytes)
 *   topics   name -> topic metadata (id, partitions, retention, slot base)
 *   groups   (group, 0, topic_id BE, partition BE) -> committed offset
 *   timeidx  (topic_id, partition, first_ts BE) -> base offset of first batch at/after ts
 *   dedup    (producer_id u64, topic_id u32, space u32, base_seq u64 BE) -> partition, count,
 *            base_offset, timestamp, term, log_index (a range of sequences)
 *   meta     string keys: "next_topic_id", "ring/<i>", "raft/hs", "raft/applied", ...
 *   raftlog  (index u64 BE) -> raft entry (cluster mode; trimmed once every peer has it)
 *   consumers name -> durable consumer definition (consumers.c)
 *   cstate   (consumer_id u32 BE, partition u32 BE) -> its state (replica/consumer/consumer.h)
 *   webhooks consumer name -> its webhook settings (JSON), for consumers that are webhooks
 *   auth     string keys -> values of the security state (auth.c): principals, the key
 *            index, the token signing key, the audit trail
 *
 * A record batch value is a header followed by records; the header holds base
 * offset, record count, first and max timestamp, the producer id and sequence
 * of its first record, the raft term and a CRC32C over everything after the
 * checksum field. The checksum is verified on every read; a mismatch is
 * SL_ECORRUPT, never a crash.
 */
#ifndef SLUICE_STORE_H
#define SLUICE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "slice.h"

struct store;
struct store_txn;

struct store_opts {
	const char *dir;          /* created if missing */
	uint64_t map_bytes;
	int sync;                 /* 1: fsync on commit (durable), 0: MDB_NOSYNC */
	int readonly;             /* 1 for frontends */
	uint32_t slots_max;       /* commit-table slots available for partitions */
};

#define STORE_CREATOR_MAX 64 /* a principal name (AUTH_PRINCIPAL_BYTES_MAX) */

struct store_topic {
	char name[256];
	uint32_t topic_id;        /* never reused */
	uint32_t partitions;
	int64_t retention_ms;     /* 0: forever */
	int64_t retention_bytes;  /* 0: unlimited; per partition */
	int64_t created_ms;
	uint32_t slot_base;       /* commit-table slot of partition 0; partition p is slot_base + p */
	char creator[STORE_CREATOR_MAX + 1]; /* the principal who asked; "": the system, or made before it was kept */
};

struct store_partition {
	uint64_t first_offset;    /* oldest offset still stored */
	uint64_t end_offset;      /* next offset to assign */
	uint64_t bytes;           /* stored batch bytes */
	int64_t max_ts;
};

/* One record to append (borrowed slices) or read back (slices valid until the txn ends). */
struct store_record {
	uint64_t offset;          /* filled on read */
	int64_t timestamp_ms;     /* filled on read; set by the batch on append */
	uint64_t producer_id;
	uint64_t sequence;
	struct slice key;
	struct slice headers;     /* blob as in ringmsg.h */
	struct slice payload;
};

int store_open(struct store **out, const struct store_opts *o);
void store_close(struct store *s);
/* fsync a directory, so the names created, renamed or removed in it
 * survive a power loss (LMDB never does it). */
int store_dir_sync(const char *path);

/* Environment info: map size and bytes in use (for node status). */
void store_usage(struct store *s, uint64_t *map_bytes, uint64_t *used_bytes);

/* Write a consistent, compacted copy of the whole environment to fd (a
 * snapshot for a peer; blocks while it copies: the logwriter calls it from a
 * thread of its own). */
int store_copy_fd(struct store *s, int fd);

/* Transactions. write=1 only in the logwriter. Commit syncs if opts.sync. */
int store_txn_begin(struct store *s, int write, struct store_txn **out);
int store_txn_commit(struct store_txn *t);     /* SL_EFULL if the map is full */
/* A write transaction inside parent: its commit merges into parent, its
 * abort (after SL_EFULL, say) leaves parent as it was. */
int store_txn_nest(struct store_txn *parent, struct store_txn **out);
/* SL_OK if bytes more could be written in t now (it writes and deletes that
 * much); SL_EFULL (t is then poisoned: use a nested txn) if not. */
int store_room(struct store_txn *t, size_t bytes);
/* Commit whose durability may wait for the next synced commit: its pages are
 * flushed but not its meta page, so a power loss can undo it whole (never
 * tear it: LMDB's MDB_NOMETASYNC). Only for work redone from a synced log. */
int store_txn_commit_deferred(struct store_txn *t);
void store_txn_abort(struct store_txn *t);

/* 1 if name[0..n) may name a topic or a consumer: 1 to 249 bytes of
 * [A-Za-z0-9._-]. */
int store_name_ok(const char *name, size_t n);

/* --- topics --- */
/* Create: allocates topic_id and a free contiguous slot range. in->name,
 * partitions and retention are used; out gets the stored metadata.
 * SL_ETOPIC_EXISTS, SL_EINVAL (bad name / partitions 0 or > slots), SL_ETOOMANY (no slots). */
int store_topic_create(struct store_txn *t, const struct store_topic *in, struct store_topic *out);
/* Delete metadata now; its batches are removed later in bounded chunks by store_retention_step. */
int store_topic_delete(struct store_txn *t, const char *name);
int store_topic_get(struct store_txn *t, const char *name, size_t name_len, struct store_topic *out);
/* Calls fn for each topic in name order; fn returning non-zero stops. */
int store_topic_foreach(struct store_txn *t, int (*fn)(void *arg, const struct store_topic *tp), void *arg);
/* Every topic in name order, copied into *out (malloc'd; the caller frees it,
 * also on error) with *n set; SL_ETOOMANY past max topics. */
int store_topic_list(struct store_txn *t, size_t max, struct store_topic **out, size_t *n);

int store_partition_get(struct store_txn *t, uint32_t topic_id, uint32_t partition, struct store_partition *out);

/* --- log --- */
/* Append n records as one batch to (topic_id, partition) at its end offset,
 * all stamped ts_ms (the batch append time). *base_out is the first offset. */
int store_batch_append(struct store_txn *t, uint32_t topic_id, uint32_t partition,
		       const struct store_record *recs, size_t n, int64_t ts_ms, uint64_t term,
		       uint64_t *base_out);

/* Store a batch value made by another node (a raft entry: untrusted, so it
 * is checked whole, CRC included) at the end of (topic_id, partition); its
 * header must say base and count, and base must be the partition's end.
 * SL_ECORRUPT if not; SL_ENOTOPIC. */
int store_batch_put(struct store_txn *t, uint32_t topic_id, uint32_t partition, uint64_t base, uint32_t count,
		    struct slice value);
/* The stored value of the batch starting at base (valid until the txn ends);
 * SL_ENOTFOUND if none starts there. */
int store_batch_get(struct store_txn *t, uint32_t topic_id, uint32_t partition, uint64_t base, struct slice *value);
/* Delete every batch at or after `from`, which must start a batch (or be at
 * or past the end: nothing to do): the partition ends at `from` again (a raft
 * suffix that lost). SL_ECORRUPT if `from` is inside a batch. */
int store_batch_truncate(struct store_txn *t, uint32_t topic_id, uint32_t partition, uint64_t from);

/*
 * Read records from offset `from` up to (not including) `limit` (the committed
 * end), at most max_records and about max_bytes (at least one record if any).
 * fn is called per record; returning non-zero stops. *next_out is the offset
 * after the last record passed to fn (or the first stored offset if `from`
 * was below it). SL_ECORRUPT on a checksum mismatch.
 */
int store_read(struct store_txn *t, uint32_t topic_id, uint32_t partition, uint64_t from, uint64_t limit,
	       size_t max_records, size_t max_bytes,
	       int (*fn)(void *arg, const struct store_record *r), void *arg, uint64_t *next_out);

/* One stored batch of a store_read_batches, whole: value (valid until the
 * txn ends) has had its header, sizes and CRC32C checked, not its records;
 * the read wants its records [first, first + n), inside [base, base + count). */
struct store_batch_ref {
	struct slice value;
	uint64_t base;
	uint32_t count;
	uint64_t first;
	uint32_t n;
};

/*
 * store_read a batch at a time, for readers that ship batches as stored:
 * the batches holding [from, limit), at most max_records records (at least
 * 1) and about max_bytes value bytes (at least one batch if any). fn is
 * called per batch; returning non-zero stops after it. *next_out as store_read.
 */
int store_read_batches(struct store_txn *t, uint32_t topic_id, uint32_t partition, uint64_t from, uint64_t limit,
		       size_t max_records, size_t max_bytes, int (*fn)(void *arg, const struct store_batch_ref *b),
		       void *arg, uint64_t *next_out);

/*
 * Decodes one stored batch value (v, len bytes; untrusted): checks the header,
 * every length and the CRC32C, then calls fn for each record in order (offset
 * base + i; slices point into v) until fn returns non-zero; fn may be NULL to
 * only check. SL_OK, or SL_ECORRUPT on any mismatch (fn may have seen the
 * records before a malformed one; records after an early stop are not
 * checked). Pure: no transaction, no allocation. store_read uses it.
 */
int store_batch_parse(const uint8_t *v, size_t len, int (*fn)(void *arg, const struct store_record *r), void *arg);

/* First offset whose timestamp is >= ts_ms (end offset if none). */
int store_offset_for_time(struct store_txn *t, uint32_t topic_id, uint32_t partition, int64_t ts_ms,
			  uint64_t *offset_out);

/* --- consumer groups --- */
int store_group_commit(struct store_txn *t, const char *group, uint32_t topic_id, uint32_t partition,
		       uint64_t offset);
/* SL_ENOTFOUND if the group never committed for that partition. */
int store_group_get(struct store_txn *t, const char *group, uint32_t topic_id, uint32_t partition,
		    uint64_t *offset_out);
int store_group_foreach(struct store_txn *t, const char *group,
			int (*fn)(void *arg, uint32_t topic_id, uint32_t partition, uint64_t offset), void *arg);

/* --- durable consumers (replica/consumer/ holds the state machine) --- */
#define STORE_CONSUMER_SCHEDULE_MAX 16
struct store_consumer {
	char name[256];
	char topic[256];
	char dlq[256];            /* dead-letter topic */
	uint32_t consumer_id;     /* never reused */
	uint32_t topic_id;
	uint32_t partitions;      /* of the topic when the consumer was made */
	uint32_t shared;          /* 0: ordered */
	uint32_t max_in_flight;
	uint32_t max_deliveries;  /* 0: never dead-letter */
	uint32_t ack_timeout_ms;
	uint32_t nschedule;
	uint32_t schedule_ms[STORE_CONSUMER_SCHEDULE_MAX];
	int64_t created_ms;
};
/* Stores a new definition; in->consumer_id is allocated into *out.
 * SL_ECONSUMER_EXISTS, SL_EINVAL (names, nschedule). */
int store_consumer_create(struct store_txn *t, const struct store_consumer *in, struct store_consumer *out);
/* Deletes the definition and every partition state. SL_ENOCONSUMER. */
int store_consumer_delete(struct store_txn *t, const char *name, size_t name_len);
/* SL_ENOCONSUMER if none. */
int store_consumer_get(struct store_txn *t, const char *name, size_t name_len, struct store_consumer *out);
/* Calls fn per consumer in name order; fn returning non-zero stops. */
int store_consumer_foreach(struct store_txn *t, int (*fn)(void *arg, const struct store_consumer *c), void *arg);
/* A partition's state bytes (opaque here); get: valid until the txn ends, SL_ENOTFOUND. */
int store_cstate_put(struct store_txn *t, uint32_t consumer_id, uint32_t partition, struct slice v);
int store_cstate_get(struct store_txn *t, uint32_t consumer_id, uint32_t partition, struct slice *v);
/* A consumer's webhook settings (opaque JSON); get: SL_ENOTFOUND if it is not a webhook. */
int store_webhook_put(struct store_txn *t, const char *name, size_t name_len, struct slice json);
int store_webhook_get(struct store_txn *t, const char *name, size_t name_len, struct slice *json);

/* --- auth (auth.c): principals, keys, the signing key, the audit trail --- */
#define STORE_AUDIT_DETAIL_MAX 4096
/* A principal's record (opaque JSON, checked by its readers), by name;
 * put with an empty value deletes it. get: SL_ENOTFOUND if none. */
int store_principal_put(struct store_txn *t, const char *name, struct slice json);
int store_principal_get(struct store_txn *t, const char *name, struct slice *json);
/* Every principal in name order: fn returns nonzero to stop. */
int store_principal_foreach(struct store_txn *t, int (*fn)(void *arg, const char *name, struct slice json),
			    void *arg);
/* The principal a 32-byte public key belongs to (name: NUL-terminated, 65 bytes). */
int store_auth_key_put(struct store_txn *t, const uint8_t pk[32], const char *name);
int store_auth_key_del(struct store_txn *t, const uint8_t pk[32]);
int store_auth_key_get(struct store_txn *t, const uint8_t pk[32], char name[65]);
/* The token signing key (opaque JSON: public key, encrypted secret key). */
int store_auth_signing_put(struct store_txn *t, struct slice json);
int store_auth_signing_get(struct store_txn *t, struct slice *json);
/* Append an audit entry (its sequence: the last one + 1, from 1). */
int store_audit_append(struct store_txn *t, int64_t ts_ms, const char *principal, const char *action,
		       struct slice detail, uint64_t *seq_out);
struct store_audit {
	uint64_t seq;
	int64_t ts_ms;
	char principal[65];
	char action[33];
	struct slice detail;       /* into the txn's pages */
};
/* Entries with seq > after, in order, at most max: fn returns nonzero to stop. */
int store_audit_foreach(struct store_txn *t, uint64_t after, size_t max,
			int (*fn)(void *arg, const struct store_audit *e), void *arg);

/* --- idempotent producers --- */
/* One dedup entry: `count` consecutive sequences base_seq, base_seq+1, ... of
 * one producer, stored at offsets base_offset, base_offset+1, ... of one
 * partition, in the raft entry (term, log_index) (both 0 where there is none). */
struct store_dedup {
	uint32_t partition;
	uint32_t count;           /* >= 1 */
	uint64_t base_offset;
	int64_t ts_ms;            /* the batch time: expiry, and the duplicate ack's timestamp */
	uint64_t term;
	uint64_t log_index;
};
/* Sequence space of publishes that do not name a partition (routed by key
 * or sticky partitioning): one per producer and topic. A publish that names
 * partition p uses space p. */
#define STORE_DEDUP_SPACE_ANY UINT32_MAX
/* Stores (or overwrites) the entry of (producer_id, topic_id, space) starting
 * at base_seq (write txn, d->count >= 1: both asserted). SL_EINVAL if the
 * sequence or offset range would wrap. */
int store_dedup_put(struct store_txn *t, uint64_t producer_id, uint32_t topic_id, uint32_t space,
		    uint64_t base_seq, const struct store_dedup *d);
/* Removes the entry of (producer_id, topic_id, space) starting at base_seq (if any). */
int store_dedup_del(struct store_txn *t, uint64_t producer_id, uint32_t topic_id, uint32_t space, uint64_t base_seq);
/* Finds the entry of (producer_id, topic_id, space) whose range holds seq.
 * SL_OK and *out (the whole entry) and *offset_out = base_offset + (seq - base_seq);
 * SL_ENOTFOUND if none; SL_ECORRUPT if a value has the wrong size (or is
 * otherwise impossible: count 0, offsets that wrap). */
int store_dedup_get(struct store_txn *t, uint64_t producer_id, uint32_t topic_id, uint32_t space,
		    uint64_t seq, struct store_dedup *out, uint64_t *offset_out);

/* --- raft log (cluster mode): entries not yet trimmed, keyed by index --- */
/* Store (or overwrite) one entry; data is checksummed. */
int store_raft_put(struct store_txn *t, uint64_t index, uint64_t term, uint32_t type, struct slice data);
/* Delete every entry with index >= from (a conflicting suffix). */
int store_raft_truncate(struct store_txn *t, uint64_t from);
/* Delete at most max entries with index <= upto, oldest first. */
int store_raft_trim(struct store_txn *t, uint64_t upto, size_t max, size_t *deleted);
/* Calls fn for each entry with index >= from in order (data valid until the
 * txn ends); fn returning non-zero stops. SL_ECORRUPT on a bad checksum. */
int store_raft_foreach(struct store_txn *t, uint64_t from,
		       int (*fn)(void *arg, uint64_t index, uint64_t term, uint32_t type, struct slice data), void *arg);

/* --- meta key/value (logwriter bookkeeping) --- */
int store_meta_put(struct store_txn *t, const char *key, struct slice val);
/* *val valid until the txn ends; SL_ENOTFOUND if missing. */
int store_meta_get(struct store_txn *t, const char *key, struct slice *val);

/*
 * Retention: delete at most max_batches batches (time and bytes limits per
 * topic, batches of deleted topics, dedup entries older than dedup_window_ms),
 * updating partition first_offset/bytes. *deleted is how many batches went;
 * call again in a new txn while it returns max_batches.
 */
int store_retention_step(struct store_txn *t, int64_t now_ms, int64_t dedup_window_ms, size_t max_batches,
			 size_t *deleted);

/* CRC32C (Castagnoli) used by batch checksums. */
uint32_t store_crc32c(uint32_t crc, const void *p, size_t n);

/* Test support only: flips one byte of the stored batch value at base_offset
 * (write txn), so tests can check that reads report SL_ECORRUPT. */
int store_debug_corrupt(struct store_txn *t, uint32_t topic_id, uint32_t partition, uint64_t base_offset,
			size_t byte_index);

#endif
