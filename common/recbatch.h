/*
 * recbatch.h: the record-batch value, the unit of the log. The logwriter
 * writes it (replica/storage/batch.c), raft ships it between nodes, and
 * native deliveries ship it to clients that asked for batches
 * (docs/protocol.md#stored-batches), which unpack it with this same
 * decoder. Layout, every integer big-endian:
 *
 *   header (64 bytes): [u8 magic 0x53][u8 version 1][2 zero][u32 crc32c]
 *     [u64 base][u32 count][i64 first_ts][i64 max_ts][u64 producer_id]
 *     [u64 base_sequence][u64 term][u32 records_bytes]
 *   record: [u32 len][i64 ts][u64 producer_id][u64 sequence]
 *     [u32 key_len][key][u32 headers_len][headers][u32 payload_len][payload]
 *
 * crc32c covers everything after it (byte 8 to the end); `len` counts the
 * record bytes after it; headers is the blob of common/ringmsg.h.
 *
 * The bytes are untrusted wherever they come from (disk, a peer, the
 * network): recbatch_open checks the header, its sizes and the CRC before
 * anything else is read, and recbatch_next checks every length against
 * what is left. Nothing allocates.
 */
#ifndef SLUICE_RECBATCH_H
#define SLUICE_RECBATCH_H

#include <stddef.h>
#include <stdint.h>

#include "slice.h"

#define RECBATCH_MAGIC 0x53u
#define RECBATCH_VERSION 1u
#define RECBATCH_HDR_BYTES 64u
#define RECBATCH_REC_FIXED_BYTES 40u /* a record without its key, headers and payload */

/* A batch header as decoded; records points into the value. */
struct recbatch_hdr {
	uint64_t base;
	uint32_t count;
	int64_t first_ts;
	int64_t max_ts;
	uint64_t producer_id;
	uint64_t base_sequence;
	uint64_t term;
	const uint8_t *records;
	size_t records_bytes;
	size_t value_bytes;
};

/* One record (slices into the value). */
struct recbatch_rec {
	uint64_t offset;
	int64_t timestamp_ms;
	uint64_t producer_id;
	uint64_t sequence;
	struct slice key;
	struct slice headers;
	struct slice payload;
};

struct recbatch_iter {
	const uint8_t *p;
	size_t n;
	uint32_t remaining;
	uint64_t offset;
};

/* Header fields and sizes of the value (p, n), without the CRC:
 * SL_OK or SL_ECORRUPT. */
int recbatch_hdr_decode(const uint8_t *p, size_t n, struct recbatch_hdr *h);
/* recbatch_hdr_decode and the CRC32C: SL_OK or SL_ECORRUPT. */
int recbatch_open(const uint8_t *p, size_t n, struct recbatch_hdr *h);
/* Write h's fields as the header at v (RECBATCH_HDR_BYTES; the CRC is
 * left zero). h->records_bytes must fit in 32 bits. */
void recbatch_hdr_put(uint8_t *v, const struct recbatch_hdr *h);
/* Set the CRC of the whole value (v, n), once every other byte is written. */
void recbatch_seal(uint8_t *v, size_t n);
void recbatch_iter_init(struct recbatch_iter *it, const struct recbatch_hdr *h);
/* The next record: *have = 1 and r filled, or *have = 0 at the end.
 * SL_ECORRUPT if a length runs past its bounds or the count and the bytes
 * disagree (records before it were well formed). */
int recbatch_next(struct recbatch_iter *it, struct recbatch_rec *r, int *have);

#endif
