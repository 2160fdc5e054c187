/*
 * entry.h: the data of a raft entry in cluster mode, and of a Forward frame.
 *
 * An entry is a list of client requests exactly as frontends put them in
 * their rings (common/ringmsg.h), each tagged with the node and frontend it
 * came from, behind a header with the leader's time:
 *
 *   entry   = [struct ent_hdr][record]*
 *   forward = [record]*                 (no header)
 *   record  = [struct ent_rec][len bytes][zero pad to 8]
 *
 * Every node applies committed entries in order with the same code, so all
 * nodes end with the same LMDB state; the origin node additionally pushes the
 * acknowledgements to its own frontend (the cookie is in the request bytes).
 * Everything is native-endian: a cluster runs one architecture. The reader
 * checks every length against what is left: entry bytes come from peers.
 */
#ifndef SLUICE_ENTRY_H
#define SLUICE_ENTRY_H

#include <stddef.h>
#include <stdint.h>

#define ENT_MAGIC 0x31454c53u /* "SLE1" */

struct ent_hdr {
	uint32_t magic;
	uint32_t count;         /* records that follow */
	int64_t ts_ms;          /* the proposing leader's clock */
};

struct ent_rec {
	uint32_t len;           /* request bytes, not counting this header or padding */
	uint16_t type;          /* enum rm_type */
	uint16_t origin_fe;     /* frontend index on the origin node */
	uint32_t origin_node;   /* node id the client talked to */
	uint32_t pad;
};

/*
 * Records of publishes the leader resolved when it appended the entry: it
 * chose partitions, assigned offsets, decided dedup and made the answers
 * once, and every node stores what the records say (replica/logwriter/
 * lw_cluster.c). Their types are above every enum rm_type.
 *
 *   ENT_BATCH      struct ent_batch, then the stored batch value (replica/storage/batch.c)
 *   ENT_BATCH_REF  struct ent_batch alone: the raft log on disk, whose value is
 *                  in the batches table already (each message written once)
 *   ENT_DEDUP      struct ent_dedup
 *   ENT_ANSWER     struct rm_ack (common/ringmsg.h) for the origin node's frontend
 */
enum ent_type {
	ENT_BATCH = 0x100,
	ENT_BATCH_REF = 0x101,
	ENT_DEDUP = 0x102,
	ENT_ANSWER = 0x103,
};

struct ent_batch {
	uint32_t topic_id;
	uint32_t partition;
	uint64_t base;
	uint32_t count;
	uint32_t data_bytes;    /* keys, headers and payloads of its records (metrics) */
};

struct ent_dedup {
	uint64_t producer_id;
	uint64_t base_seq;
	uint32_t topic_id;
	uint32_t space;
	uint32_t partition;
	uint32_t count;
	uint64_t base_offset;
	int64_t ts_ms;
	uint64_t term;
	uint64_t log_index;
};

/* A growing buffer of records, with or without an entry header. */
struct ent_writer {
	uint8_t *buf;
	size_t len, cap;
	uint32_t count;
	int has_hdr;
};

/* Start an entry (with_hdr = 1) or a forward record list (0). Reuses buf. */
void ent_begin(struct ent_writer *e, int with_hdr, int64_t ts_ms);
int ent_add(struct ent_writer *e, uint16_t type, uint32_t origin_node, uint16_t origin_fe, const void *p,
	    uint32_t len);
/* Add a record whose bytes are hdr then p (either may be empty). */
int ent_add2(struct ent_writer *e, uint16_t type, uint32_t origin_node, uint16_t origin_fe, const void *hdr,
	     uint32_t hlen, const void *p, uint32_t len);
/* Append records from a forward list (validated first). SL_EMALFORMED if bad. */
int ent_add_list(struct ent_writer *e, const uint8_t *recs, size_t len);
/* Finish: fills the header count; the caller takes e->buf (malloc'd) and
 * must call ent_begin again before reuse. */
uint8_t *ent_take(struct ent_writer *e, size_t *len);
void ent_free(struct ent_writer *e);

struct ent_view {
	uint16_t type;
	uint16_t origin_fe;
	uint32_t origin_node;
	const uint8_t *p;
	uint32_t len;
};

/* Parse an entry header; *pos is where records start. SL_EMALFORMED if bad. */
int ent_parse(const uint8_t *p, size_t len, int64_t *ts_ms, uint32_t *count, size_t *pos);
/* Next record at *pos: 1 and fills v, 0 at the end, -1 if malformed. */
int ent_next(const uint8_t *p, size_t len, size_t *pos, struct ent_view *v);
/* An ENT_BATCH or ENT_BATCH_REF record's header, and the value that follows
 * it (empty for a REF). SL_EMALFORMED if it is too short or a REF has a
 * value. The value itself is checked by whoever stores it. */
int ent_batch_view(const struct ent_view *v, struct ent_batch *b, const uint8_t **value, uint32_t *value_len);
/* An ENT_DEDUP record. SL_EMALFORMED if its size is wrong or count is 0. */
int ent_dedup_view(const struct ent_view *v, struct ent_dedup *d);

#endif
