/*
 * unpack_test.c: libsluice's unpacker of delivered record batches
 * (broker/client/unpack.c). Batches are built here in the stored format
 * (common/recbatch.h); each test says what a client must get from one, or
 * that it gets nothing: a window outside the batch, a bad CRC, a header
 * blob that runs past its record. Records with many headers or long header
 * keys take the allocated path and must come out the same.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "recbatch.h"
#include "ringmsg.h"
#include "unpack.h"

#define BASE 100
#define RECS 4
#define VALUE_MAX 16384

static uint8_t value[VALUE_MAX];
static size_t value_len;
static char long_key[256]; /* 255 bytes, the longest a header key may be */

/* Record i: key "k<i>" (none for 0), payload "p<i>" (empty for 1), headers: 20 for record 2, 5 with long keys for 3. */
static size_t put_record(uint8_t *p, uint32_t i)
{
	uint8_t hb[4096], *q = p + 4;
	char key[8], pay[8];
	size_t hl = 0, kl = i ? (size_t)snprintf(key, sizeof(key), "k%u", i) : 0;
	size_t pl = i == 1 ? 0 : (size_t)snprintf(pay, sizeof(pay), "p%u", i);

	if (i == 2)
		for (int h = 0; h < 20; h++)
			hl += hdrs_put(hb + hl, slice_make("h", 1), slice_make(&"0123456789abcdefghij"[h], 1));
	for (int h = 0; i == 3 && h < 5; h++) /* 5 long keys: more than the stack buffer */
		hl += hdrs_put(hb + hl, slice_make(long_key, sizeof(long_key) - 1), slice_make("v", 1));
	be_put64(q, 1234), be_put64(q + 8, 9), be_put64(q + 16, i);
	q += 24;
	be_put32(q, (uint32_t)kl), memcpy(q + 4, key, kl), q += 4 + kl;
	be_put32(q, (uint32_t)hl), memcpy(q + 4, hb, hl), q += 4 + hl;
	be_put32(q, (uint32_t)pl), memcpy(q + 4, pay, pl), q += 4 + pl;
	be_put32(p, (uint32_t)(q - p - 4));
	return (size_t)(q - p);
}

static void build(void)
{
	size_t at = RECBATCH_HDR_BYTES;

	memset(long_key, 'x', sizeof(long_key) - 1);
	long_key[sizeof(long_key) - 1] = 0;
	for (uint32_t i = 0; i < RECS; i++)
		at += put_record(value + at, i);
	value_len = at;
	recbatch_hdr_put(value, &(struct recbatch_hdr){.base = BASE, .count = RECS, .first_ts = 1234, .max_ts = 1234,
	                                               .records_bytes = at - RECBATCH_HDR_BYTES});
	recbatch_seal(value, value_len);
}

TestSuite(unpack, .init = build);

struct got {
	size_t n;
	uint64_t offsets[RECS];
	size_t stop_after;
};

static int got_cb(void *arg, const struct sluice_msg *m)
{
	struct got *g = arg;
	uint32_t i = (uint32_t)(m->offset - BASE);
	char want[8];

	cr_assert_str_eq(m->topic, "t");
	cr_assert_eq(m->partition, 3);
	cr_assert_eq(m->timestamp_ms, 1234);
	cr_assert_eq(m->key.len, i ? (size_t)snprintf(want, sizeof(want), "k%u", i) : 0);
	cr_assert(m->key.len == 0 || memcmp(m->key.base, want, m->key.len) == 0);
	cr_assert_eq(m->payload.len, i == 1 ? 0 : (size_t)snprintf(want, sizeof(want), "p%u", i));
	cr_assert(m->payload.len == 0 || memcmp(m->payload.base, want, m->payload.len) == 0);
	cr_assert_eq(m->headers_n, i == 2 ? 20 : i == 3 ? 5 : 0);
	for (size_t h = 0; i == 2 && h < 20; h++) {
		cr_assert_str_eq(m->headers[h].key, "h");
		cr_assert_eq(m->headers[h].value.len, 1);
		cr_assert_eq(m->headers[h].value.base[0], "0123456789abcdefghij"[h]);
	}
	for (size_t h = 0; i == 3 && h < 5; h++)
		cr_assert_str_eq(m->headers[h].key, long_key);
	g->offsets[g->n++] = m->offset;
	return g->stop_after && g->n >= g->stop_after;
}

static int unpack(uint64_t first, uint32_t count, struct got *g)
{
	Sluice__RecordBatch b = SLUICE__RECORD_BATCH__INIT;

	b.topic = "t";
	b.partition = 3;
	b.first_offset = first;
	b.count = count;
	b.value.data = value;
	b.value.len = value_len;
	return unpack_batch(&b, got_cb, g);
}

Test(unpack, windows)
{
	struct got g = {0};

	cr_assert_eq(unpack(BASE, RECS, &g), SL_OK);
	cr_assert_eq(g.n, RECS);
	for (size_t i = 0; i < RECS; i++)
		cr_assert_eq(g.offsets[i], BASE + i);
	memset(&g, 0, sizeof(g));
	cr_assert_eq(unpack(BASE + 1, 2, &g), SL_OK);
	cr_assert_eq(g.n, 2);
	cr_assert_eq(g.offsets[0], BASE + 1);
	cr_assert_eq(g.offsets[1], BASE + 2);
	memset(&g, 0, sizeof(g));
	g.stop_after = 1;
	cr_assert_eq(unpack(BASE + 2, 2, &g), SL_OK);
	cr_assert_eq(g.n, 1);
}

Test(unpack, windows_outside_the_batch_deliver_nothing)
{
	struct got g = {0};
	Sluice__RecordBatch b = SLUICE__RECORD_BATCH__INIT;
	size_t n = 0;

	cr_assert_eq(unpack(BASE - 1, 2, &g), SL_ECORRUPT);
	cr_assert_eq(unpack(BASE, 0, &g), SL_ECORRUPT);
	cr_assert_eq(unpack(BASE, RECS + 1, &g), SL_ECORRUPT);
	cr_assert_eq(unpack(BASE + RECS, 1, &g), SL_ECORRUPT);
	cr_assert_eq(unpack(BASE + 3, 2, &g), SL_ECORRUPT);
	cr_assert_eq(unpack(UINT64_MAX, UINT32_MAX, &g), SL_ECORRUPT);
	cr_assert_eq(g.n, 0);
	b.first_offset = BASE + 1;
	b.count = 3;
	b.value.data = value;
	b.value.len = value_len;
	cr_assert_eq(unpack_check(&b, &n), SL_OK);
	cr_assert_eq(n, 3);
	b.value.len = value_len - 1;
	cr_assert_eq(unpack_check(&b, &n), SL_ECORRUPT);
}

Test(unpack, bad_bytes_deliver_nothing)
{
	struct got g = {0};

	value[value_len - 1] ^= 1; /* a payload byte: the CRC no longer matches */
	cr_assert_eq(unpack(BASE, RECS, &g), SL_ECORRUPT);
	cr_assert_eq(g.n, 0);
	value[value_len - 1] ^= 1;
	/* a header blob whose value length runs past it, with a CRC that matches */
	size_t at = RECBATCH_HDR_BYTES;
	at += 4 + be_get32(value + at);           /* record 0 */
	at += 4 + be_get32(value + at);           /* record 1 */
	uint8_t *hdrs = value + at + 4 + 24 + 4 + 2 + 4; /* record 2: after its key "k2", the blob */
	cr_assert_eq(be_get32(hdrs - 4), 20 * 8);
	cr_assert_eq(hdrs[0], 1);                  /* [u16 key_len 1]["h"][u32 value_len]... */
	hdrs[6] = 0x7f;                            /* the first value's length: 2 GiB past the blob */
	recbatch_seal(value, value_len);
	cr_assert_eq(unpack(BASE + 2, 1, &g), SL_ECORRUPT);
	cr_assert_eq(g.n, 0);
}
