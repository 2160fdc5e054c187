/*
 * codec_test.c: native frame codec (common/codec.c) and the header blob of
 * ringmsg.h (common/hdrs.c): round trips, partial input, the size limit
 * checked before allocation, garbage and body-less frames, malformed blobs.
 */
#include <criterion/criterion.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "err.h"
#include "ringmsg.h"

#define MAX (1u << 20)

/* Encode f, then peek + decode it back; returns the decoded frame. */
static Sluice__Frame *round_trip(const Sluice__Frame *f)
{
	size_t n = codec_frame_size(f);
	uint8_t *buf = malloc(n);
	cr_assert_not_null(buf);
	cr_assert_eq(codec_frame_encode(f, buf), n);
	size_t flen = 0;
	cr_assert_eq(codec_frame_peek(buf, n, MAX, &flen), SL_OK);
	cr_assert_eq(flen, n);
	cr_assert_eq(be_get32(buf), n - 4);
	Sluice__Frame *d = NULL;
	cr_assert_eq(codec_frame_decode(buf + 4, n - 4, &d), SL_OK);
	cr_assert_not_null(d);
	free(buf);
	return d;
}

Test(codec, hello_round_trip)
{
	Sluice__Frame f = SLUICE__FRAME__INIT;
	Sluice__Hello h = SLUICE__HELLO__INIT;
	h.min_version = 1;
	h.max_version = 3;
	h.client_name = "test-client";
	f.id = 42;
	f.body_case = SLUICE__FRAME__BODY_HELLO;
	f.hello = &h;
	Sluice__Frame *d = round_trip(&f);
	cr_assert_eq(d->id, 42);
	cr_assert_eq(d->body_case, SLUICE__FRAME__BODY_HELLO);
	cr_assert_eq(d->hello->min_version, 1);
	cr_assert_eq(d->hello->max_version, 3);
	cr_assert_str_eq(d->hello->client_name, "test-client");
	codec_frame_free(d);
}

Test(codec, publish_round_trip)
{
	Sluice__Frame f = SLUICE__FRAME__INIT;
	Sluice__Publish p = SLUICE__PUBLISH__INIT;
	Sluice__Header h1 = SLUICE__HEADER__INIT, h2 = SLUICE__HEADER__INIT;
	Sluice__Header *hs[2] = {&h1, &h2};
	uint8_t payload[3000];
	for (size_t i = 0; i < sizeof(payload); i++)
		payload[i] = (uint8_t)(i * 13);
	h1.key = "content-type";
	h1.value.data = (uint8_t *)"text/plain";
	h1.value.len = 10;
	h2.key = "trace";
	h2.value.data = (uint8_t *)"\0\1\2";
	h2.value.len = 3;
	p.topic = "orders";
	p.key.data = (uint8_t *)"k1";
	p.key.len = 2;
	p.has_partition = 1;
	p.partition = 7;
	p.n_headers = 2;
	p.headers = hs;
	p.payload.data = payload;
	p.payload.len = sizeof(payload);
	p.producer_id = 0xdeadbeefcafeull;
	p.sequence = 99;
	f.id = UINT64_MAX;
	f.body_case = SLUICE__FRAME__BODY_PUBLISH;
	f.publish = &p;
	Sluice__Frame *d = round_trip(&f);
	cr_assert_eq(d->id, UINT64_MAX);
	cr_assert_eq(d->body_case, SLUICE__FRAME__BODY_PUBLISH);
	Sluice__Publish *q = d->publish;
	cr_assert_str_eq(q->topic, "orders");
	cr_assert_eq(q->key.len, 2);
	cr_assert_eq(memcmp(q->key.data, "k1", 2), 0);
	cr_assert(q->has_partition);
	cr_assert_eq(q->partition, 7);
	cr_assert_eq(q->n_headers, 2);
	cr_assert_str_eq(q->headers[0]->key, "content-type");
	cr_assert_eq(q->headers[1]->value.len, 3);
	cr_assert_eq(memcmp(q->headers[1]->value.data, "\0\1\2", 3), 0);
	cr_assert_eq(q->payload.len, sizeof(payload));
	cr_assert_eq(memcmp(q->payload.data, payload, sizeof(payload)), 0);
	cr_assert_eq(q->producer_id, 0xdeadbeefcafeull);
	cr_assert_eq(q->sequence, 99);
	codec_frame_free(d);
}

Test(codec, error_ack_and_empty_body_round_trip)
{
	Sluice__Frame f = SLUICE__FRAME__INIT;
	Sluice__Error e = SLUICE__ERROR__INIT;
	e.code = SLUICE__ERROR_CODE__FRAME_TOO_LARGE;
	e.message = "too big";
	f.id = 5;
	f.body_case = SLUICE__FRAME__BODY_ERROR;
	f.error = &e;
	Sluice__Frame *d = round_trip(&f);
	cr_assert_eq(d->error->code, SLUICE__ERROR_CODE__FRAME_TOO_LARGE);
	cr_assert_eq((int)d->error->code, SL_ETOOLARGE, "wire codes match sl_err below 100");
	cr_assert_str_eq(d->error->message, "too big");
	codec_frame_free(d);

	Sluice__PublishAck a = SLUICE__PUBLISH_ACK__INIT;
	a.partition = 3;
	a.offset = 1ull << 40;
	a.timestamp_ms = 1700000000000;
	a.duplicate = 1;
	f.body_case = SLUICE__FRAME__BODY_PUBLISH_ACK;
	f.publish_ack = &a;
	d = round_trip(&f);
	cr_assert_eq(d->publish_ack->partition, 3);
	cr_assert_eq(d->publish_ack->offset, 1ull << 40);
	cr_assert_eq(d->publish_ack->timestamp_ms, 1700000000000);
	cr_assert(d->publish_ack->duplicate);
	codec_frame_free(d);

	/* A body message with no fields still sets the oneof. */
	Sluice__Ok ok = SLUICE__OK__INIT;
	f.id = 0;
	f.body_case = SLUICE__FRAME__BODY_OK;
	f.ok = &ok;
	d = round_trip(&f);
	cr_assert_eq(d->body_case, SLUICE__FRAME__BODY_OK);
	cr_assert_eq(d->id, 0);
	codec_frame_free(d);
}

Test(codec, delivery_round_trip)
{
	Sluice__Frame f = SLUICE__FRAME__INIT;
	Sluice__Delivery dl = SLUICE__DELIVERY__INIT;
	Sluice__Message m[3];
	Sluice__Message *mp[3];
	for (int i = 0; i < 3; i++) {
		sluice__message__init(&m[i]);
		m[i].topic = "t";
		m[i].offset = 100 + (uint64_t)i;
		m[i].payload.data = (uint8_t *)"abc";
		m[i].payload.len = (size_t)i + 1;
		mp[i] = &m[i];
	}
	dl.subscription_id = 9;
	dl.n_messages = 3;
	dl.messages = mp;
	f.body_case = SLUICE__FRAME__BODY_DELIVERY;
	f.delivery = &dl;
	Sluice__Frame *d = round_trip(&f);
	cr_assert_eq(d->delivery->subscription_id, 9);
	cr_assert_eq(d->delivery->n_messages, 3);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(d->delivery->messages[i]->offset, 100 + (uint64_t)i);
		cr_assert_eq(d->delivery->messages[i]->payload.len, (size_t)i + 1);
	}
	codec_frame_free(d);
}

Test(codec, peek_partial_prefix_and_body)
{
	Sluice__Frame f = SLUICE__FRAME__INIT;
	Sluice__DeleteTopic dt = SLUICE__DELETE_TOPIC__INIT;
	dt.name = "some-topic";
	f.id = 1;
	f.body_case = SLUICE__FRAME__BODY_DELETE_TOPIC;
	f.delete_topic = &dt;
	uint8_t buf[64];
	size_t n = codec_frame_encode(&f, buf);
	cr_assert_eq(n, codec_frame_size(&f));
	size_t flen = 123;
	for (size_t avail = 0; avail < 4; avail++) {
		cr_assert_eq(codec_frame_peek(buf, avail, MAX, &flen), SL_EAGAIN);
		cr_assert_eq(flen, 0, "length unknown with %zu bytes", avail);
	}
	for (size_t avail = 4; avail < n; avail++) {
		cr_assert_eq(codec_frame_peek(buf, avail, MAX, &flen), SL_EAGAIN);
		cr_assert_eq(flen, n, "total known once the prefix is in");
	}
	cr_assert_eq(codec_frame_peek(buf, n, MAX, &flen), SL_OK);
	cr_assert_eq(flen, n);
	/* Extra bytes of the next frame do not matter. */
	cr_assert_eq(codec_frame_peek(buf, sizeof(buf), MAX, &flen), SL_OK);
	cr_assert_eq(flen, n);
	/* A frame exactly at the limit is fine; one byte over is not. */
	cr_assert_eq(codec_frame_peek(buf, n, (uint32_t)(n - 4), &flen), SL_OK);
	cr_assert_eq(codec_frame_peek(buf, n, (uint32_t)(n - 5), &flen), SL_ETOOLARGE);
}

Test(codec, oversized_rejected_from_prefix_without_allocating)
{
	/* Only the 4-byte prefix is present: the verdict must come from it. */
	uint8_t pre[4];
	be_put32(pre, 0xffffffffu);
	size_t flen = 7;
	struct mallinfo2 before = mallinfo2();
	int rc = codec_frame_peek(pre, sizeof(pre), MAX, &flen);
	struct mallinfo2 after = mallinfo2();
	cr_assert_eq(rc, SL_ETOOLARGE);
	cr_assert_eq(before.uordblks, after.uordblks);
	cr_assert_eq(before.hblkhd, after.hblkhd);
	be_put32(pre, MAX + 1);
	cr_assert_eq(codec_frame_peek(pre, sizeof(pre), MAX, &flen), SL_ETOOLARGE);
	be_put32(pre, MAX);
	cr_assert_eq(codec_frame_peek(pre, sizeof(pre), MAX, &flen), SL_EAGAIN);
	cr_assert_eq(flen, (size_t)MAX + 4);
}

Test(codec, garbage_is_malformed)
{
	Sluice__Frame *d = (Sluice__Frame *)0x1;
	/* Field 2 (hello) as length-delimited with a length past the end. */
	static const uint8_t trunc[] = {0x12, 0x50, 0x08, 0x01};
	cr_assert_eq(codec_frame_decode(trunc, sizeof(trunc), &d), SL_EMALFORMED);
	cr_assert_null(d);
	/* Wire type 7 does not exist. */
	static const uint8_t badwt[] = {0x0f, 0x01, 0x02};
	cr_assert_eq(codec_frame_decode(badwt, sizeof(badwt), &d), SL_EMALFORMED);
	/* A varint that never ends. */
	static const uint8_t varint[] = {0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	cr_assert_eq(codec_frame_decode(varint, sizeof(varint), &d), SL_EMALFORMED);
	/* Field number 0 spelled as a two-byte tag: illegal protobuf that
	 * protobuf-c would otherwise keep as an unknown field (and re-encode
	 * into bytes it cannot parse). At top level and inside the body. */
	static const uint8_t field0_top[] = {0x7a, 0x00, 0x80, 0x00, 0x05};
	cr_assert_eq(codec_frame_decode(field0_top, sizeof(field0_top), &d), SL_EMALFORMED);
	static const uint8_t field0_nested[] = {0x12, 0x03, 0x80, 0x00, 0x05};
	cr_assert_eq(codec_frame_decode(field0_nested, sizeof(field0_nested), &d), SL_EMALFORMED);
	/* Delivery -> Message -> Header with field 0: deep in repeated fields. */
	static const uint8_t field0_deep[] = {0x92, 0x02, 0x0a, 0x12, 0x08, 0x32, 0x06,
	                                      0x0a, 0x01, 'k',  0x80, 0x00, 0x05};
	cr_assert_eq(codec_frame_decode(field0_deep, sizeof(field0_deep), &d), SL_EMALFORMED);
	static const uint8_t field15_deep[] = {0x92, 0x02, 0x09, 0x12, 0x07, 0x32, 0x05, 0x0a, 0x01, 'k', 0x78, 0x05};
	cr_assert_eq(codec_frame_decode(field15_deep, sizeof(field15_deep), &d), SL_OK);
	cr_assert_str_eq(d->delivery->messages[0]->headers[0]->key, "k");
	codec_frame_free(d);
	/* The same bytes with a legal unknown field number (90) are accepted. */
	static const uint8_t field90_top[] = {0x7a, 0x00, 0xd0, 0x05, 0x05};
	cr_assert_eq(codec_frame_decode(field90_top, sizeof(field90_top), &d), SL_OK);
	codec_frame_free(d);
	uint8_t noise[256];
	srand(1);
	int malformed = 0;
	for (int round = 0; round < 200; round++) {
		for (size_t i = 0; i < sizeof(noise); i++)
			noise[i] = (uint8_t)rand();
		int rc = codec_frame_decode(noise, sizeof(noise), &d);
		cr_assert(rc == SL_OK || rc == SL_EMALFORMED);
		if (rc == SL_OK)
			codec_frame_free(d);
		else
			malformed++;
	}
	cr_assert_gt(malformed, 150);
}

Test(codec, frame_without_body_is_malformed)
{
	Sluice__Frame *d = (Sluice__Frame *)0x1;
	/* Empty body: a Frame with nothing set. */
	cr_assert_eq(codec_frame_decode((const uint8_t *)"", 0, &d), SL_EMALFORMED);
	cr_assert_null(d);
	/* Only the id. */
	static const uint8_t id_only[] = {0x08, 0x2a};
	cr_assert_eq(codec_frame_decode(id_only, sizeof(id_only), &d), SL_EMALFORMED);
	/* An unknown field only (field 99, varint) is valid protobuf, no body. */
	static const uint8_t unknown[] = {0x98, 0x06, 0x01};
	cr_assert_eq(codec_frame_decode(unknown, sizeof(unknown), &d), SL_EMALFORMED);
	/* Encoding a body-less frame and decoding it gives the same verdict. */
	Sluice__Frame f = SLUICE__FRAME__INIT;
	f.id = 3;
	uint8_t buf[16];
	size_t n = codec_frame_encode(&f, buf);
	cr_assert_eq(codec_frame_decode(buf + 4, n - 4, &d), SL_EMALFORMED);
}

Test(codec, free_null_is_noop)
{
	codec_frame_free(NULL);
}

/* ---- header blobs ---- */

Test(hdrs, put_then_iterate)
{
	uint8_t blob[256];
	size_t n = 0;
	n += hdrs_put(blob + n, slice_cstr("content-type"), slice_cstr("application/json"));
	n += hdrs_put(blob + n, slice_cstr("x"), slice_make(NULL, 0));
	n += hdrs_put(blob + n, slice_make(NULL, 0), slice_make("\0\1", 2));
	cr_assert_eq(n, hdrs_entry_bytes(12, 16) + hdrs_entry_bytes(1, 0) + hdrs_entry_bytes(0, 2));
	struct slice b = slice_make(blob, n), k, v;
	size_t pos = 0;
	cr_assert_eq(hdrs_next(b, &pos, &k, &v), 1);
	cr_assert(slice_eq(k, slice_cstr("content-type")));
	cr_assert(slice_eq(v, slice_cstr("application/json")));
	cr_assert_eq(hdrs_next(b, &pos, &k, &v), 1);
	cr_assert(slice_eq(k, slice_cstr("x")));
	cr_assert_eq(v.len, 0);
	cr_assert_eq(hdrs_next(b, &pos, &k, &v), 1);
	cr_assert_eq(k.len, 0);
	cr_assert(slice_eq(v, slice_make("\0\1", 2)));
	cr_assert_eq(hdrs_next(b, &pos, &k, &v), 0);
	cr_assert_eq(pos, n);
	/* Empty blob: no headers. */
	pos = 0;
	cr_assert_eq(hdrs_next(slice_make(NULL, 0), &pos, &k, &v), 0);
}

Test(hdrs, malformed_blobs)
{
	uint8_t blob[64];
	size_t n = hdrs_put(blob, slice_cstr("key"), slice_cstr("value"));
	struct slice k, v;
	/* Every truncation of a valid entry is malformed, never a read past the end. */
	for (size_t cut = 1; cut < n; cut++) {
		uint8_t *copy = malloc(cut);
		memcpy(copy, blob, cut);
		size_t pos = 0;
		cr_assert_eq(hdrs_next(slice_make(copy, cut), &pos, &k, &v), -1, "cut at %zu", cut);
		free(copy);
	}
	/* Key longer than 255. */
	uint16_t klen = 256;
	uint8_t big[300] = {0};
	memcpy(big, &klen, 2);
	size_t pos = 0;
	cr_assert_eq(hdrs_next(slice_make(big, sizeof(big)), &pos, &k, &v), -1);
	/* Value length near UINT32_MAX must not wrap. */
	uint8_t huge[16];
	size_t hn = hdrs_put(huge, slice_cstr("k"), slice_make(NULL, 0));
	uint32_t vlen = UINT32_MAX;
	memcpy(huge + 3, &vlen, 4);
	pos = 0;
	cr_assert_eq(hdrs_next(slice_make(huge, hn), &pos, &k, &v), -1);
	/* A position past the end is malformed. */
	pos = n + 1;
	cr_assert_eq(hdrs_next(slice_make(blob, n), &pos, &k, &v), -1);
}
