/*
 * ring.c: the single-producer single-consumer byte ring of ring.h.
 *
 * Memory ordering: the producer writes a record, then publishes head with a
 * release store; the consumer loads head with acquire before reading records
 * and publishes tail with release after it is done with them; the producer
 * loads tail with acquire before reusing that space. The fields are plain
 * integers in shared memory, accessed only through the __atomic builtins
 * (the C11 memory model, without casting the layout to _Atomic types).
 *
 * Reserve/commit keep no producer state outside the ring: ring_reserve writes
 * the (PAD and) record headers past head, where the consumer cannot look yet,
 * and ring_commit re-reads them to find the new head. So a producer that dies
 * between the two leaves the ring unchanged.
 *
 * Lost wake-ups are prevented Dekker-style: the consumer stores
 * reader_sleeping, fences (seq_cst), then re-reads head; the producer stores
 * head, fences, then reads reader_sleeping. At least one of them sees the
 * other's store.
 */
#include <stdatomic.h>
#include <string.h>

#include "err.h"
#include "ring.h"
#include "sl_assert.h"

#define RING_ALIGN 8

struct ring_rec_hdr {
	uint32_t len;
	uint16_t type;
	uint16_t pad;
};

_Static_assert(sizeof(struct ring_rec_hdr) == RING_HDR_BYTES, "ring record header");
_Static_assert(sizeof(struct ring) % 64 == 0, "ring data starts on a cache line");

static uint64_t rec_bytes(uint32_t len)
{
	return RING_HDR_BYTES + (((uint64_t)len + RING_ALIGN - 1) & ~(uint64_t)(RING_ALIGN - 1));
}

static struct ring_rec_hdr *rec_at(struct ring *r, uint64_t pos)
{
	return (struct ring_rec_hdr *)(r->data + (pos & (r->data_bytes - 1)));
}

size_t ring_footprint(size_t data_bytes)
{
	return (sizeof(struct ring) + data_bytes + 63) & ~(size_t)63;
}

struct ring *ring_init(void *mem, size_t data_bytes)
{
	SL_ASSERT(data_bytes >= 4096 && (data_bytes & (data_bytes - 1)) == 0);
	SL_ASSERT(((uintptr_t)mem & 63) == 0);
	struct ring *r = mem;
	memset(r, 0, sizeof(*r));
	r->data_bytes = data_bytes;
	atomic_thread_fence(memory_order_release);
	return r;
}

size_t ring_payload_max(const struct ring *r)
{
	/* A record of at most a quarter of the ring always fits in an empty
	 * ring: if it needs a PAD, head is in the last quarter, so the space
	 * before head (now free) holds it. */
	return (size_t)(r->data_bytes / 4 - RING_HDR_BYTES);
}

size_t ring_free_bytes(const struct ring *r)
{
	uint64_t tail = __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE);
	uint64_t head = __atomic_load_n(&r->head, __ATOMIC_RELAXED);
	return (size_t)(r->data_bytes - (head - tail));
}

int ring_room2(const struct ring *r, uint32_t a, uint32_t b)
{
	if (a > ring_payload_max(r) || b > ring_payload_max(r))
		return 0;
	uint64_t head = __atomic_load_n(&r->head, __ATOMIC_RELAXED);
	uint64_t tail = __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE);
	uint64_t off = head & (r->data_bytes - 1), used = 0;
	uint32_t lens[2] = {a, b};
	for (int i = 0; i < 2; i++) {
		/* the bytes ring_reserve would take: a PAD to the end if the record does not fit before it */
		uint64_t need = rec_bytes(lens[i]);
		uint64_t pad = off + need > r->data_bytes ? r->data_bytes - off : 0;
		used += pad + need;
		off = (off + pad + need) & (r->data_bytes - 1);
	}
	return r->data_bytes - (head - tail) >= used;
}

void *ring_reserve(struct ring *r, uint16_t type, uint32_t len)
{
	SL_ASSERT(type != RING_PAD);
	if (len > ring_payload_max(r))
		return NULL;
	uint64_t head = __atomic_load_n(&r->head, __ATOMIC_RELAXED);
	uint64_t tail = __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE);
	uint64_t off = head & (r->data_bytes - 1);
	uint64_t need = rec_bytes(len);
	uint64_t pad = off + need > r->data_bytes ? r->data_bytes - off : 0;
	if (r->data_bytes - (head - tail) < pad + need)
		return NULL;
	if (pad) {
		struct ring_rec_hdr *p = rec_at(r, head);
		p->len = (uint32_t)(pad - RING_HDR_BYTES);
		p->type = RING_PAD;
		p->pad = 0;
		head += pad;
	}
	struct ring_rec_hdr *h = rec_at(r, head);
	h->len = len;
	h->type = type;
	h->pad = 0;
	return h + 1;
}

void ring_commit(struct ring *r, int *wake)
{
	uint64_t head = __atomic_load_n(&r->head, __ATOMIC_RELAXED);
	struct ring_rec_hdr *h = rec_at(r, head);
	if (h->type == RING_PAD) {
		head += RING_HDR_BYTES + h->len;
		h = rec_at(r, head);
	}
	head += rec_bytes(h->len);
	__atomic_store_n(&r->head, head, __ATOMIC_RELEASE);
	atomic_thread_fence(memory_order_seq_cst);
	int w = 0;
	if (__atomic_load_n(&r->reader_sleeping, __ATOMIC_RELAXED) &&
	    __atomic_exchange_n(&r->reader_sleeping, 0, __ATOMIC_ACQ_REL))
		w = 1;
	if (wake)
		*wake = w;
}

int ring_push(struct ring *r, uint16_t type, const void *p, uint32_t len, int *wake)
{
	void *dst = ring_reserve(r, type, len);
	if (!dst) {
		if (wake)
			*wake = 0;
		return SL_EAGAIN;
	}
	if (len)
		memcpy(dst, p, len);
	ring_commit(r, wake);
	return SL_OK;
}

int ring_peek(struct ring *r, uint64_t *pos, uint16_t *type, const uint8_t **payload, uint32_t *len)
{
	uint64_t head = __atomic_load_n(&r->head, __ATOMIC_ACQUIRE);
	uint64_t p = *pos;
	while (p < head) {
		const struct ring_rec_hdr *h = rec_at(r, p);
		uint64_t n = rec_bytes(h->len);
		/* Written by our own producer: a bad header is a bug, not input. */
		SL_ASSERT(n <= head - p && (p & (r->data_bytes - 1)) + n <= r->data_bytes);
		if (h->type == RING_PAD) {
			p += n;
			continue;
		}
		*type = h->type;
		*payload = (const uint8_t *)(h + 1);
		*len = h->len;
		*pos = p + n;
		return 1;
	}
	return 0;
}

uint64_t ring_tail(const struct ring *r)
{
	return __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE);
}

void ring_release(struct ring *r, uint64_t pos)
{
	SL_ASSERT(pos >= __atomic_load_n(&r->tail, __ATOMIC_RELAXED));
	SL_ASSERT(pos <= __atomic_load_n(&r->head, __ATOMIC_ACQUIRE));
	__atomic_store_n(&r->tail, pos, __ATOMIC_RELEASE);
}

void ring_skip_to(struct ring *r, uint64_t pos)
{
	uint64_t tail = __atomic_load_n(&r->tail, __ATOMIC_RELAXED);
	uint64_t head = __atomic_load_n(&r->head, __ATOMIC_ACQUIRE);
	if (pos > head)
		pos = head;
	if (pos > tail)
		__atomic_store_n(&r->tail, pos, __ATOMIC_RELEASE);
}

void ring_sleep_prepare(struct ring *r)
{
	__atomic_store_n(&r->reader_sleeping, 1, __ATOMIC_RELAXED);
	atomic_thread_fence(memory_order_seq_cst);
}

void ring_sleep_done(struct ring *r)
{
	__atomic_store_n(&r->reader_sleeping, 0, __ATOMIC_RELAXED);
}
