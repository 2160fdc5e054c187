/*
 * ring.h: fixed-size single-producer single-consumer byte ring living in
 * shared memory (the memfd segment the master creates), used between a
 * frontend and the logwriter in both directions.
 *
 * Records are 8-byte aligned: [u32 len][u16 type][u16 pad][payload len bytes]
 * padded to a multiple of 8. head and tail are free-running u64 byte counters
 * on separate cache lines; the producer writes the record, then publishes head
 * with a release store; the consumer reads head with acquire, consumes, then
 * publishes tail with release. A producer that dies mid-write leaves head
 * untouched, so a half-written record is never visible. A record never wraps:
 * if it does not fit before the end, a PAD record (type RING_PAD) fills the
 * rest and the record starts at offset 0.
 *
 * Wake-ups: `reader_sleeping` is set by the consumer before it blocks on its
 * eventfd; a producer that sees it set after pushing writes the eventfd
 * (ring_push returns *wake = 1 and the caller writes the eventfd it owns).
 *
 * The ring holds no pointers, so it works mapped at different addresses in
 * different processes. ring_init is called once by the master.
 */
#ifndef SLUICE_RING_H
#define SLUICE_RING_H

#include <stddef.h>
#include <stdint.h>

#define RING_PAD 0xffff
#define RING_HDR_BYTES 8

struct ring {
	_Alignas(64) uint64_t head;          /* written by producer */
	_Alignas(64) uint64_t tail;          /* written by consumer */
	_Alignas(64) uint32_t reader_sleeping;
	uint32_t pad0;
	uint64_t data_bytes;                  /* power of two */
	_Alignas(64) uint8_t data[];
};

/* Bytes to reserve in the segment for a ring with data_bytes of data. */
size_t ring_footprint(size_t data_bytes);

/* Initialise a ring at mem (footprint bytes); data_bytes is a power of two >= 4096. */
struct ring *ring_init(void *mem, size_t data_bytes);

/* Largest payload a single record may carry. */
size_t ring_payload_max(const struct ring *r);

/*
 * Producer: reserve room for a record of len payload bytes. Returns a pointer
 * to write the payload into, or NULL if the ring is full right now
 * (backpressure). The record becomes visible only on ring_commit.
 */
void *ring_reserve(struct ring *r, uint16_t type, uint32_t len);

/* Producer: 1 if two records of a then b payload bytes, reserved and
 * committed one after the other now, would both fit (they still will
 * later: the consumer only frees room). Both at most ring_payload_max
 * always fit in an empty ring. */
int ring_room2(const struct ring *r, uint32_t a, uint32_t b);

/* Producer: publish the record reserved last. *wake is set to 1 if the
 * consumer is asleep and its eventfd must be written. */
void ring_commit(struct ring *r, int *wake);

/* Producer convenience: reserve + copy + commit. Returns 0 or SL_EAGAIN. */
int ring_push(struct ring *r, uint16_t type, const void *p, uint32_t len, int *wake);

/* Bytes free for the producer (for watermarks). */
size_t ring_free_bytes(const struct ring *r);

/*
 * Consumer: peek at the record at position *pos (start from ring_tail()).
 * Returns 1 and fills type/payload/len, advancing *pos past the record,
 * or 0 if no further record is published. PAD records are skipped inside.
 * Nothing is released until ring_release.
 */
int ring_peek(struct ring *r, uint64_t *pos, uint16_t *type, const uint8_t **payload, uint32_t *len);

/* Consumer: current tail (first unreleased byte). */
uint64_t ring_tail(const struct ring *r);

/* Consumer: release everything before pos (a value ring_peek produced). */
void ring_release(struct ring *r, uint64_t pos);

/* Consumer: move the tail forward to pos if pos is ahead of it (used by a
 * restarted logwriter that already stored records up to pos). */
void ring_skip_to(struct ring *r, uint64_t pos);

/*
 * Consumer sleep protocol: call ring_sleep_prepare, then check again with
 * ring_peek; if still empty, block on the eventfd; after waking (or finding
 * data) call ring_sleep_done.
 */
void ring_sleep_prepare(struct ring *r);
void ring_sleep_done(struct ring *r);

#endif
