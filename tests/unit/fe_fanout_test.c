/*
 * fe_fanout_test.c: the native Delivery frame written from a shared
 * encoding (fe_fanout_native) is the frame protobuf-c would encode, byte
 * for byte, and protobuf-c decodes it; the shared bytes are referenced, not
 * copied, and freed when the last output buffer lets go of them.
 */
#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "codec.h"
#include "err.h"
#include "fe_int.h"

static struct event_base *base;
static struct bufferevent *bev; /* no socket: its output only accumulates */
static struct fe fe;
static struct fe_conn conn;

static void setup(void)
{
	base = event_base_new();
	cr_assert(base);
	bev = bufferevent_socket_new(base, -1, 0);
	cr_assert(bev);
	conn.fe = &fe;
	conn.bev = bev;
	conn.deliver_shared = 1;
}

static void teardown(void)
{
	bufferevent_free(bev);
	event_base_free(base);
}

TestSuite(fe_fanout, .init = setup, .fini = teardown);

/* An entry of three messages as fe_read.c builds them (one with headers and a key). */
static void entry_fill(struct fe_fanout_entry *e, Sluice__Message *msgs, Sluice__Message **ptrs, Sluice__Header *h,
                       Sluice__Header **hp)
{
	static const char *payloads[] = {"first", "", "third, a little longer"};

	memset(e, 0, sizeof(*e));
	snprintf(e->topic, sizeof(e->topic), "orders");
	sluice__header__init(h);
	h->key = (char *)"trace";
	h->value.data = (uint8_t *)"abc";
	h->value.len = 3;
	*hp = h;
	for (int i = 0; i < 3; i++) {
		sluice__message__init(&msgs[i]);
		msgs[i].topic = e->topic;
		msgs[i].partition = 2;
		msgs[i].offset = 1000 + (uint64_t)i;
		msgs[i].timestamp_ms = 1700000000000 + i;
		msgs[i].payload.data = (uint8_t *)payloads[i];
		msgs[i].payload.len = strlen(payloads[i]);
		ptrs[i] = &msgs[i];
	}
	msgs[0].key.data = (uint8_t *)"k";
	msgs[0].key.len = 1;
	msgs[2].n_headers = 1;
	msgs[2].headers = hp;
	e->m.n = 3;
	e->m.ptrs = ptrs;
	e->used = 1;
}

/* The next frame in out is want's encoding by protobuf-c, byte for byte:
 * returns it decoded (codec_frame_free it). */
static Sluice__Frame *next_frame_is(struct evbuffer *out, const Sluice__Frame *want_f, size_t i)
{
	size_t n = codec_frame_size(want_f), flen = 0;
	uint8_t *want = malloc(n), *have = malloc(n);
	Sluice__Frame *got = NULL;

	cr_assert(want && have);
	cr_assert_eq(codec_frame_encode(want_f, want), n);
	cr_assert_eq(codec_frame_peek(evbuffer_pullup(out, 4), evbuffer_get_length(out), 1u << 20, &flen), SL_OK);
	cr_assert_eq(flen, n, "frame %zu: %zu bytes, protobuf-c says %zu", i, flen, n);
	int removed = evbuffer_remove(out, have, n);
	cr_assert_eq(removed, (int)n, "frame %zu: %d of %zu (%zu buffered)", i, removed, n, evbuffer_get_length(out));
	cr_assert_eq(memcmp(have, want, n), 0, "frame %zu differs from protobuf-c's encoding", i);
	cr_assert_eq(codec_frame_decode(have + 4, n - 4, &got), SL_OK);
	free(want);
	free(have);
	return got;
}

Test(fe_fanout, native_delivery_is_the_protobuf_frame)
{
	uint64_t ids[] = {7, 300, 0, UINT64_MAX};
	struct evbuffer *out = bufferevent_get_output(bev);
	struct fe_fanout_entry e;
	Sluice__Message msgs[3], *ptrs[3];
	Sluice__Header h, *hp;

	entry_fill(&e, msgs, ptrs, &h, &hp);
	evbuffer_unfreeze(out, 1); /* a bufferevent's output is drained by it alone: the test plays it */
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
		fe_fanout_native(&conn, ids[i], &e);
	cr_assert(e.native);
	cr_assert_eq(e.native->refs, 1 + 4, "the cache's reference and one per frame");

	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		Sluice__Delivery d = SLUICE__DELIVERY__INIT;
		Sluice__Frame f = SLUICE__FRAME__INIT, *got;

		d.subscription_id = ids[i];
		d.n_messages = 3;
		d.messages = ptrs;
		f.body_case = SLUICE__FRAME__BODY_DELIVERY;
		f.delivery = &d;
		got = next_frame_is(out, &f, i);
		cr_assert_eq(got->body_case, SLUICE__FRAME__BODY_DELIVERY);
		cr_assert_eq(got->delivery->subscription_id, ids[i]);
		cr_assert_eq(got->delivery->n_messages, 3);
		cr_assert_eq(got->delivery->messages[1]->offset, 1001);
		cr_assert_str_eq(got->delivery->messages[0]->topic, "orders");
		cr_assert_eq(got->delivery->messages[0]->key.len, 1);
		cr_assert_eq(got->delivery->messages[2]->n_headers, 1);
		cr_assert_str_eq(got->delivery->messages[2]->headers[0]->key, "trace");
		cr_assert_eq(memcmp(got->delivery->messages[2]->payload.data, "third, a little longer", 22), 0);
		codec_frame_free(got);
	}
	cr_assert_eq(evbuffer_get_length(out), 0);
	cr_assert_eq(e.native->refs, 1, "every output buffer let go of the shared bytes");
	fe_share_unref(e.native);
}

Test(fe_fanout, share_outlives_its_cache_entry)
{
	struct evbuffer *a = evbuffer_new(), *b = evbuffer_new();
	struct fe_share *sh = fe_share_new(5);
	char got[8] = {0};

	cr_assert(a && b && sh);
	memcpy(sh->data, "hello", 5);
	sh->len = 5;
	cr_assert_eq(fe_share_add(a, sh, 0, 5), SL_OK);
	cr_assert_eq(fe_share_add(b, sh, 1, 3), SL_OK);
	cr_assert_eq(sh->refs, 3);
	fe_share_unref(sh); /* the cache drops it: the buffers still hold it */
	evbuffer_free(a);
	cr_assert_eq(evbuffer_remove(b, got, sizeof(got)), 3);
	cr_assert_str_eq(got, "ell");
	evbuffer_free(b); /* the last reference: freed (ASan/LSan would say otherwise) */
}

/* Stored batches (fe_batches.c): the Delivery.batches field bytes too are
 * what protobuf-c would encode, byte for byte, and the values are copied
 * into the share (the LMDB pages they came from go away with the txn). */
Test(fe_fanout, native_batches_are_the_protobuf_frame)
{
	struct evbuffer *out = bufferevent_get_output(bev);
	struct fe_fanout_entry e;
	Sluice__RecordBatch rb[2], *rp[2];
	uint8_t v0[200], v1[70], kept[200];
	Sluice__Delivery d = SLUICE__DELIVERY__INIT;
	Sluice__Frame f = SLUICE__FRAME__INIT, *got;

	memset(&e, 0, sizeof(e));
	snprintf(e.topic, sizeof(e.topic), "orders");
	memset(v0, 0xab, sizeof(v0));
	memset(v1, 0xcd, sizeof(v1));
	for (int i = 0; i < 2; i++) {
		sluice__record_batch__init(&rb[i]);
		rb[i].topic = e.topic;
		rb[i].partition = 1;
		rp[i] = &rb[i];
	}
	rb[0].first_offset = 5, rb[0].count = 3, rb[0].value.data = v0, rb[0].value.len = sizeof(v0);
	rb[1].first_offset = 8, rb[1].count = 1, rb[1].value.data = v1, rb[1].value.len = sizeof(v1);
	e.b.n = 2;
	e.b.ptrs = rp;
	e.used = 1;
	evbuffer_unfreeze(out, 1);
	fe_fanout_native(&conn, 42, &e);
	cr_assert(e.native);

	d.subscription_id = 42;
	d.n_batches = 2;
	d.batches = rp;
	f.body_case = SLUICE__FRAME__BODY_DELIVERY;
	f.delivery = &d;
	/* the txn ended: its pages change, the share has its own copy */
	memcpy(kept, v0, sizeof(v0));
	memset(v0, 0, sizeof(v0));
	rb[0].value.data = kept;
	got = next_frame_is(out, &f, 0);
	cr_assert_eq(got->delivery->n_messages, 0);
	cr_assert_eq(got->delivery->n_batches, 2);
	cr_assert_eq(got->delivery->batches[0]->first_offset, 5);
	cr_assert_eq(got->delivery->batches[0]->value.len, sizeof(v0));
	cr_assert_eq(got->delivery->batches[0]->value.data[199], 0xab);
	cr_assert_eq(got->delivery->batches[1]->count, 1);
	codec_frame_free(got);
	cr_assert_eq(e.native->refs, 1);
	fe_share_unref(e.native);
}
