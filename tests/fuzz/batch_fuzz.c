/*
 * batch_fuzz.c: libFuzzer target for the record-batch decoder
 * (store_batch_parse), which reads values from disk. The input is parsed as
 * it is and, when it is at least a header long, again with its CRC32C field
 * patched to match, so the fuzzer gets past the checksum into the record
 * parser. Every record handed out must lie inside the value, with offsets
 * counting up by one, and the result must not depend on the callback.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "store.h"

#define FUZZ_BATCH_HDR_BYTES 64
#define FUZZ_BATCH_CRC_OFF 4
#define FUZZ_BATCH_CRC_FROM 8

struct fuzz_walk {
	const uint8_t *base;
	size_t len;
	size_t records;
	uint64_t next_offset;
};

/* The slice lies inside the value; reading it lets ASan check that too. */
static void fuzz_check_slice(const struct fuzz_walk *w, struct slice s)
{
	volatile uint8_t sink = 0;

	if (s.len == 0)
		return;
	if (s.base < w->base || s.len > w->len || (size_t)(s.base - w->base) > w->len - s.len)
		abort();
	for (size_t i = 0; i < s.len; i++)
		sink ^= s.base[i];
	(void)sink;
}

static int fuzz_record_cb(void *arg, const struct store_record *r)
{
	struct fuzz_walk *w = arg;

	if (w->records > 0 && r->offset != w->next_offset)
		abort();
	w->next_offset = r->offset + 1;
	w->records++;
	fuzz_check_slice(w, r->key);
	fuzz_check_slice(w, r->headers);
	fuzz_check_slice(w, r->payload);
	return 0;
}

static void fuzz_parse(const uint8_t *v, size_t len)
{
	struct fuzz_walk w = {v, len, 0, 0};
	int rc = store_batch_parse(v, len, fuzz_record_cb, &w);

	if (rc != SL_OK && rc != SL_ECORRUPT)
		abort();
	if (rc == SL_OK && w.records == 0)
		abort(); /* a valid batch holds at least one record */
	if (store_batch_parse(v, len, NULL, NULL) != rc)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *copy;

	fuzz_parse(data, size);
	if (size < FUZZ_BATCH_HDR_BYTES)
		return 0;
	copy = malloc(size); /* exactly size bytes, so ASan sees any read past the end */
	if (copy == NULL)
		abort();
	memcpy(copy, data, size);
	be_put32(copy + FUZZ_BATCH_CRC_OFF,
		 store_crc32c(0, copy + FUZZ_BATCH_CRC_FROM, size - FUZZ_BATCH_CRC_FROM));
	fuzz_parse(copy, size);
	free(copy);
	return 0;
}
