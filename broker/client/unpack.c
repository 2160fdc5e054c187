/*
 * unpack.c: the records of a delivered RecordBatch (unpack.h). The batch
 * value is the server's stored batch, byte for byte; the one decoder of that
 * format (common/recbatch.c) checks its header, sizes and CRC32C, then every
 * record's lengths, before anything is handed out. Header keys are copied
 * to get their NUL (sluice_header.key is a C string): into a buffer on the
 * stack, or one allocation per record sized from the blob already checked.
 */
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "recbatch.h"
#include "ringmsg.h"
#include "unpack.h"

#define UNPACK_KEYS_STACK_BYTES 1024

/* A record's header array and key strings: on the stack, or in heap. */
struct unpack_hdrs {
	struct sluice_header hs[UNPACK_HEADERS_STACK];
	char keys[UNPACK_KEYS_STACK_BYTES];
	void *heap;
};

/* The batch header, once the window [first_offset, + count) is inside it. */
static int window_check(const Sluice__RecordBatch *b, struct recbatch_hdr *h)
{
	uint64_t skip;

	if (recbatch_hdr_decode(b->value.data, b->value.len, h) != SL_OK || b->count == 0 || b->first_offset < h->base)
		return SL_ECORRUPT;
	skip = b->first_offset - h->base;
	if (skip >= h->count || b->count > h->count - skip)
		return SL_ECORRUPT;
	return SL_OK;
}

int unpack_check(const Sluice__RecordBatch *b, size_t *n)
{
	struct recbatch_hdr h;

	if (window_check(b, &h) != SL_OK || recbatch_open(b->value.data, b->value.len, &h) != SL_OK)
		return SL_ECORRUPT;
	*n = b->count;
	return SL_OK;
}

/* m->headers from a record's header blob (checked as it is walked). */
static int hdrs_fill(struct unpack_hdrs *u, struct slice blob, struct sluice_msg *m)
{
	struct sluice_header *hs = u->hs;
	char *kp = u->keys;
	size_t pos = 0, n, keys, i;
	struct slice k, v;

	if (hdrs_count(blob, &n, &keys) < 0)
		return SL_ECORRUPT;
	if (n > UNPACK_HEADERS_STACK || keys > sizeof(u->keys)) {
		/* n <= blob.len / 6 and keys <= blob.len + n: bounded by the frame in hand */
		if (!(u->heap = malloc(n * sizeof(*hs) + keys)))
			return SL_ENOMEM;
		hs = u->heap;
		kp = (char *)(hs + n);
	}
	pos = 0;
	for (i = 0; i < n && hdrs_next(blob, &pos, &k, &v) == 1; i++) {
		if (k.len)
			memcpy(kp, k.base, k.len);
		kp[k.len] = 0;
		hs[i].key = kp;
		hs[i].value = sluice_bytes_make(v.base, v.len);
		kp += k.len + 1;
	}
	m->headers = n ? hs : NULL;
	m->headers_n = n;
	return SL_OK;
}

int unpack_batch(const Sluice__RecordBatch *b, int (*fn)(void *arg, const struct sluice_msg *m), void *arg)
{
	struct recbatch_hdr h;
	struct recbatch_iter it;
	struct recbatch_rec r;
	struct unpack_hdrs u;
	uint64_t end;
	int have = 0, rc = SL_OK, stop = 0;

	if (window_check(b, &h) != SL_OK || recbatch_open(b->value.data, b->value.len, &h) != SL_OK)
		return SL_ECORRUPT;
	end = b->first_offset + b->count;
	recbatch_iter_init(&it, &h);
	while (!stop && (rc = recbatch_next(&it, &r, &have)) == SL_OK && have && r.offset < end) {
		struct sluice_msg m = {b->topic, b->partition, r.offset, r.timestamp_ms, {r.key.base, r.key.len},
		                       NULL,     0,            {r.payload.base, r.payload.len}};
		if (r.offset < b->first_offset)
			continue;
		u.heap = NULL;
		if ((rc = hdrs_fill(&u, r.headers, &m)) != SL_OK)
			return rc;
		stop = fn(arg, &m);
		free(u.heap);
	}
	return stop ? SL_OK : rc;
}
