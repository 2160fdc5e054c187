/*
 * pubbatch_test.c: the PublishBatch record layout (common/pubbatch.c): what
 * the frontend accepts and what the logwriter reads back, and every way a
 * client's bytes can be wrong.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "crc32c.h"
#include "pubbatch.h"
#include "ringmsg.h"

static size_t build(uint8_t *buf, int n)
{
	size_t len = 0;
	uint8_t hb[64];
	size_t hl = hdrs_put(hb, slice_cstr("k"), slice_cstr("value"));
	for (int i = 0; i < n; i++) {
		char payload[16];
		snprintf(payload, sizeof(payload), "msg-%d", i);
		len += pubbatch_put(buf + len, i % 2 ? slice_cstr("key") : slice_make(NULL, 0),
				    i % 3 ? slice_make(NULL, 0) : slice_make(hb, hl), slice_cstr(payload));
	}
	return len;
}

Test(pubbatch, round_trip_keeps_every_part)
{
	uint8_t buf[4096];
	const char *why = NULL;
	size_t len = build(buf, 5), pos = 0;
	struct slice recs = slice_make(buf, len), k, h, v;
	cr_assert_eq(pubbatch_check(recs, 5, &why), SL_OK, "%s", why ? why : "");
	for (int i = 0; i < 5; i++) {
		char payload[16];
		snprintf(payload, sizeof(payload), "msg-%d", i);
		cr_assert_eq(pubbatch_next(recs, &pos, &k, &h, &v), 1);
		cr_assert(slice_eq(v, slice_cstr(payload)));
		cr_assert_eq(k.len, i % 2 ? 3u : 0u);
		cr_assert_eq(h.len > 0, i % 3 == 0);
	}
	cr_assert_eq(pubbatch_next(recs, &pos, &k, &h, &v), 0);
	cr_assert_eq(pos, len);
}

Test(pubbatch, wrong_count_or_lengths_are_malformed)
{
	uint8_t buf[4096];
	const char *why = NULL;
	size_t len = build(buf, 3);
	cr_assert_eq(pubbatch_check(slice_make(buf, len), 2, &why), SL_EMALFORMED);
	cr_assert_str_eq(why, "count does not match the records");
	cr_assert_eq(pubbatch_check(slice_make(buf, len), 4, &why), SL_EMALFORMED);
	cr_assert_eq(pubbatch_check(slice_make(buf, len), 0, &why), SL_EMALFORMED);
	cr_assert_eq(pubbatch_check(slice_make(buf, len - 1), 3, &why), SL_EMALFORMED);
	cr_assert_str_eq(why, "a record's lengths run past the batch");
	cr_assert_eq(pubbatch_check(slice_make(buf, 5), 1, &why), SL_EMALFORMED);
	/* a payload length that would wrap a 32-bit sum */
	uint8_t bad[12 + 4];
	uint32_t l[3] = {0xffffffffu, 0xffffffffu, 4};
	memcpy(bad, l, sizeof(l));
	cr_assert_eq(pubbatch_check(slice_make(bad, sizeof(bad)), 1, &why), SL_EMALFORMED);
}

Test(pubbatch, malformed_header_blob_is_refused)
{
	uint8_t buf[64];
	uint8_t hb[3] = {9, 0, 'x'}; /* key of 9 bytes, 1 present */
	size_t len = pubbatch_put(buf, slice_make(NULL, 0), slice_make(hb, sizeof(hb)), slice_cstr("p"));
	const char *why = NULL;
	cr_assert_eq(pubbatch_check(slice_make(buf, len), 1, &why), SL_EMALFORMED);
	cr_assert_str_eq(why, "a record's headers are malformed");
}

/* The checksum of a PublishBatch is the standard CRC32C: libsluice, the
 * frontend and stored batches share common/crc32c.c. */
Test(pubbatch, crc32c_known_vectors)
{
	cr_assert_eq(crc32c(0, "123456789", 9), 0xE3069283u);
	cr_assert_eq(crc32c(0, "", 0), 0u);
	/* continuing over pieces equals one pass, on both sides of 8-byte strides */
	const char *s = "the quick brown fox jumps over the lazy dog";
	size_t n = strlen(s);
	for (size_t cut = 0; cut <= n; cut++)
		cr_assert_eq(crc32c(crc32c(0, s, cut), s + cut, n - cut), crc32c(0, s, n), "cut %zu", cut);
}
