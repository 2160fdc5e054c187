/*
 * recbatch.c: the record-batch decoder (common/recbatch.h). Every length is
 * checked against the bytes left before it is used: disk, peers and the
 * network hand these bytes over. An error is SL_ECORRUPT, never an
 * assertion.
 */
#include "recbatch.h"

#include <string.h>

#include "crc32c.h"
#include "err.h"

#define BOFF_MAGIC 0
#define BOFF_VERSION 1
#define BOFF_CRC 4
#define BOFF_BASE 8
#define BOFF_COUNT 16
#define BOFF_FIRST_TS 20
#define BOFF_MAX_TS 28
#define BOFF_PID 36
#define BOFF_BSEQ 44
#define BOFF_TERM 52
#define BOFF_RBYTES 60

/* Bounds-checked reader over borrowed bytes; `bad` latches on underflow. */
struct rd {
	const uint8_t *p;
	size_t n;
	int bad;
};

static uint32_t rd_u32(struct rd *r)
{
	uint32_t v;

	if (r->bad || r->n < 4) {
		r->bad = 1;
		return 0;
	}
	v = be_get32(r->p);
	r->p += 4;
	r->n -= 4;
	return v;
}

static uint64_t rd_u64(struct rd *r)
{
	uint64_t v;

	if (r->bad || r->n < 8) {
		r->bad = 1;
		return 0;
	}
	v = be_get64(r->p);
	r->p += 8;
	r->n -= 8;
	return v;
}

static struct slice rd_bytes(struct rd *r, size_t len)
{
	struct slice s = {NULL, 0};

	if (r->bad || r->n < len) {
		r->bad = 1;
		return s;
	}
	s = slice_make(r->p, len);
	r->p += len;
	r->n -= len;
	return s;
}

int recbatch_hdr_decode(const uint8_t *p, size_t n, struct recbatch_hdr *h)
{
	if (p == NULL || n < RECBATCH_HDR_BYTES + RECBATCH_REC_FIXED_BYTES || p[BOFF_MAGIC] != RECBATCH_MAGIC ||
	    p[BOFF_VERSION] != RECBATCH_VERSION)
		return SL_ECORRUPT;
	h->base = be_get64(p + BOFF_BASE);
	h->count = be_get32(p + BOFF_COUNT);
	h->first_ts = (int64_t)be_get64(p + BOFF_FIRST_TS);
	h->max_ts = (int64_t)be_get64(p + BOFF_MAX_TS);
	h->producer_id = be_get64(p + BOFF_PID);
	h->base_sequence = be_get64(p + BOFF_BSEQ);
	h->term = be_get64(p + BOFF_TERM);
	h->records_bytes = be_get32(p + BOFF_RBYTES);
	h->records = p + RECBATCH_HDR_BYTES;
	h->value_bytes = n;
	if (h->records_bytes != n - RECBATCH_HDR_BYTES || h->count == 0 ||
	    h->count > h->records_bytes / RECBATCH_REC_FIXED_BYTES || h->base > UINT64_MAX - h->count)
		return SL_ECORRUPT;
	return SL_OK;
}

int recbatch_open(const uint8_t *p, size_t n, struct recbatch_hdr *h)
{
	int err = recbatch_hdr_decode(p, n, h);

	if (err != SL_OK)
		return err;
	if (be_get32(p + BOFF_CRC) != crc32c(0, p + 8, n - 8))
		return SL_ECORRUPT;
	return SL_OK;
}

void recbatch_hdr_put(uint8_t *v, const struct recbatch_hdr *h)
{
	memset(v, 0, RECBATCH_HDR_BYTES);
	v[BOFF_MAGIC] = RECBATCH_MAGIC;
	v[BOFF_VERSION] = RECBATCH_VERSION;
	be_put64(v + BOFF_BASE, h->base);
	be_put32(v + BOFF_COUNT, h->count);
	be_put64(v + BOFF_FIRST_TS, (uint64_t)h->first_ts);
	be_put64(v + BOFF_MAX_TS, (uint64_t)h->max_ts);
	be_put64(v + BOFF_PID, h->producer_id);
	be_put64(v + BOFF_BSEQ, h->base_sequence);
	be_put64(v + BOFF_TERM, h->term);
	be_put32(v + BOFF_RBYTES, (uint32_t)h->records_bytes);
}

void recbatch_seal(uint8_t *v, size_t n)
{
	be_put32(v + BOFF_CRC, crc32c(0, v + 8, n - 8));
}

void recbatch_iter_init(struct recbatch_iter *it, const struct recbatch_hdr *h)
{
	it->p = h->records;
	it->n = h->records_bytes;
	it->remaining = h->count;
	it->offset = h->base;
}

int recbatch_next(struct recbatch_iter *it, struct recbatch_rec *r, int *have)
{
	struct rd all = {it->p, it->n, 0}, rec;
	uint32_t len;

	*have = 0;
	if (it->remaining == 0)
		return it->n == 0 ? SL_OK : SL_ECORRUPT;
	len = rd_u32(&all);
	rec.p = all.p;
	rec.n = len;
	rec.bad = 0;
	rd_bytes(&all, len);
	if (all.bad)
		return SL_ECORRUPT;
	r->timestamp_ms = (int64_t)rd_u64(&rec);
	r->producer_id = rd_u64(&rec);
	r->sequence = rd_u64(&rec);
	r->key = rd_bytes(&rec, rd_u32(&rec));
	r->headers = rd_bytes(&rec, rd_u32(&rec));
	r->payload = rd_bytes(&rec, rd_u32(&rec));
	if (rec.bad || rec.n != 0)
		return SL_ECORRUPT;
	it->p = all.p;
	it->n = all.n;
	r->offset = it->offset++;
	it->remaining--;
	*have = 1;
	return SL_OK;
}
