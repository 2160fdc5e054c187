/*
 * frame_fuzz.c: libFuzzer target for the native frame codec and the header
 * blob iterator, both of which take untrusted bytes. The input is used as a
 * buffered stream (codec_frame_peek), as a frame body (codec_frame_decode)
 * and as a header blob (hdrs_next). Any frame that decodes is re-encoded, and
 * the encoder must write exactly codec_frame_size bytes that decode again.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "pubbatch.h"
#include "err.h"
#include "ringmsg.h"

#define FUZZ_FRAME_BYTES_MAX (1u << 16)

static void fuzz_reencode(const Sluice__Frame *f)
{
	size_t n = codec_frame_size(f);
	uint8_t *buf = malloc(n);
	if (!buf)
		abort();
	size_t w = codec_frame_encode(f, buf);
	if (w != n || be_get32(buf) != n - 4)
		abort();
	size_t flen;
	if (codec_frame_peek(buf, n, UINT32_MAX, &flen) != SL_OK || flen != n)
		abort();
	Sluice__Frame *again = NULL;
	if (codec_frame_decode(buf + 4, n - 4, &again) != SL_OK)
		abort();
	if (again->body_case != f->body_case || again->id != f->id || codec_frame_size(again) != n)
		abort();
	codec_frame_free(again);
	free(buf);
}

static void fuzz_decode(const uint8_t *body, size_t len)
{
	Sluice__Frame *f = NULL;
	int rc = codec_frame_decode(body, len, &f);
	if (rc == SL_OK) {
		if (!f || f->body_case == SLUICE__FRAME__BODY__NOT_SET)
			abort();
		fuzz_reencode(f);
		codec_frame_free(f);
	} else if (rc != SL_EMALFORMED || f) {
		abort();
	}
}

static void fuzz_hdrs(const uint8_t *data, size_t size)
{
	struct slice blob = slice_make(data, size), k, v;
	size_t pos = 0;
	int rc;
	while ((rc = hdrs_next(blob, &pos, &k, &v)) == 1) {
		if (pos > size || k.len > 255)
			abort();
		/* Touch the bytes so ASan checks the slices are inside the blob. */
		volatile uint8_t sink = 0;
		for (size_t i = 0; i < k.len; i++)
			sink ^= k.base[i];
		for (size_t i = 0; i < v.len; i++)
			sink ^= v.base[i];
		(void)sink;
	}
	if (rc == 0 && pos != size)
		abort();
}

/* PublishBatch records, as the frontend checks them and the logwriter
 * walks them: the walk must agree with the check. */
static void fuzz_pubbatch(const uint8_t *data, size_t size)
{
	struct slice recs = slice_make(data, size), k, h, v;
	const char *why = NULL;
	size_t pos = 0;
	uint32_t n = 0;
	int r;
	while ((r = pubbatch_next(recs, &pos, &k, &h, &v)) == 1) {
		if (k.base + k.len > data + size || v.base + v.len > data + size)
			abort();
		n++;
	}
	if (pubbatch_check(recs, n ? n : 1, &why) == SL_OK && (r != 0 || n == 0))
		abort(); /* the check accepted what the walk refuses */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* As a stream: walk every complete frame in the buffer. */
	size_t off = 0;
	for (;;) {
		size_t flen = 0;
		int rc = codec_frame_peek(data + off, size - off, FUZZ_FRAME_BYTES_MAX, &flen);
		if (rc != SL_OK)
			break;
		if (flen < 4 || flen > size - off)
			abort();
		fuzz_decode(data + off + 4, flen - 4);
		off += flen;
	}
	/* As one frame body. */
	fuzz_decode(data, size);
	fuzz_hdrs(data, size);
	fuzz_pubbatch(data, size);
	return 0;
}
