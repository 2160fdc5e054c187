/*
 * unpack_fuzz.c: libFuzzer target for libsluice's unpacker of delivered
 * record batches (broker/client/unpack.c), whose bytes come from the
 * network. The first 16 bytes of the input are the RecordBatch's window
 * (first_offset, count) and partition, the rest its value; the value is
 * unpacked as it is and, when it is at least a header long, again with its
 * CRC32C patched to match, so the fuzzer gets past the checksum into the
 * records. Every message handed out must lie inside the window, in offset
 * order, with its slices inside the value and its header keys C strings;
 * unpack_check must agree with what unpack_batch delivers.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "err.h"
#include "slice.h"
#include "unpack.h"

#define FUZZ_WINDOW_BYTES 16
#define FUZZ_HDR_BYTES 64
#define FUZZ_CRC_OFF 4
#define FUZZ_CRC_FROM 8

struct fuzz_walk {
	const Sluice__RecordBatch *b;
	size_t n;
	uint64_t next;
};

static void fuzz_inside(const struct fuzz_walk *w, const uint8_t *p, size_t len)
{
	volatile uint8_t sink = 0;
	const uint8_t *v = w->b->value.data;

	if (len == 0)
		return;
	if (p < v || len > w->b->value.len || (size_t)(p - v) > w->b->value.len - len)
		abort();
	for (size_t i = 0; i < len; i++)
		sink ^= p[i];
	(void)sink;
}

static int fuzz_msg_cb(void *arg, const struct sluice_msg *m)
{
	struct fuzz_walk *w = arg;

	if (m->offset < w->b->first_offset || m->offset - w->b->first_offset >= w->b->count)
		abort();
	if (w->n > 0 && m->offset != w->next)
		abort();
	if (m->partition != w->b->partition || m->topic != w->b->topic)
		abort();
	fuzz_inside(w, m->key.base, m->key.len);
	fuzz_inside(w, m->payload.base, m->payload.len);
	for (size_t i = 0; i < m->headers_n; i++) {
		if (strlen(m->headers[i].key) > w->b->value.len)
			abort();
		fuzz_inside(w, m->headers[i].value.base, m->headers[i].value.len);
	}
	w->next = m->offset + 1;
	w->n++;
	return 0;
}

static void fuzz_unpack(const Sluice__RecordBatch *b)
{
	struct fuzz_walk w = {b, 0, 0};
	size_t n = 0;
	int checked = unpack_check(b, &n);
	int rc = unpack_batch(b, fuzz_msg_cb, &w);

	if (checked != SL_OK && checked != SL_ECORRUPT)
		abort();
	if (rc != SL_OK && rc != SL_ECORRUPT && rc != SL_ENOMEM)
		abort();
	if (checked != SL_OK && (rc == SL_OK || w.n != 0))
		abort(); /* a batch that fails its checks delivers nothing */
	if (checked == SL_OK && rc == SL_OK && w.n != n)
		abort(); /* a good batch delivers its whole window */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Sluice__RecordBatch b = SLUICE__RECORD_BATCH__INIT;
	uint8_t *copy;
	size_t len;

	if (size < FUZZ_WINDOW_BYTES)
		return 0;
	b.topic = (char *)"fuzz";
	b.first_offset = be_get64(data);
	b.count = be_get32(data + 8);
	b.partition = be_get32(data + 12);
	len = size - FUZZ_WINDOW_BYTES;
	copy = malloc(len ? len : 1); /* exactly len bytes, so ASan sees any read past the end */
	if (copy == NULL)
		abort();
	memcpy(copy, data + FUZZ_WINDOW_BYTES, len);
	b.value.data = copy;
	b.value.len = len;
	fuzz_unpack(&b);
	if (len >= FUZZ_HDR_BYTES) {
		be_put32(copy + FUZZ_CRC_OFF, crc32c(0, copy + FUZZ_CRC_FROM, len - FUZZ_CRC_FROM));
		fuzz_unpack(&b);
	}
	free(copy);
	return 0;
}
