/*
 * fe_fanout.c: read once, render once, share by reference. One delivery
 * pass (fe_run_cb) runs every subscription woken by a commit; the ones of
 * the same (topic, partition) at the same next offset would each read the
 * same batch from LMDB (lookup, CRC), build the same protobuf messages and
 * encode or render the same bytes. Here they share all of it:
 *
 *  - The pass has one read txn (fe_pass_txn), begun on first use and ended
 *    when the pass ends (fe_pass_end), so it never outlives the callback.
 *  - A read is an entry keyed by (topic_id, partition, from, msgs_max):
 *    the first subscription that needs it reads it (fe_read.c), the others
 *    find it. It was read below the committed end its first reader saw; a
 *    later reader may see a newer end (commits go on during a pass) and
 *    then gets that prefix, and continues from there. The cache is direct-mapped (FANOUT_ENTRIES slots,
 *    a newer key replaces an older one in its slot), so its memory is
 *    bounded however many positions the subscriptions are at; a miss only
 *    costs the read that every subscription paid before.
 *  - Each output form is rendered once per entry, on first use, into a
 *    reference-counted fe_share: the native Delivery.messages field bytes
 *    (below) and the SSE events per format (http_sse.c). Connections that
 *    take stored batches (Hello.accept_batches) read entries of their own
 *    (key.batches): whole batches (fe_batches.c), rendered once as the
 *    Delivery.batches field bytes, values copied as stored, no record
 *    decoded. A connection gets
 *    a few bytes of its own (frame header, SSE id line) and an
 *    evbuffer_add_reference to the share; the share is freed when the
 *    cache and every output buffer have let go of it, so a slow reader
 *    parked at its watermark keeps its bytes without holding the cache.
 *  - The entries' messages point into the txn's pages: renewing the txn
 *    (a commit newer than its snapshot, or FANOUT_TXN_BYTES_MAX read) drops
 *    every entry first. Shares are copies and survive it.
 *
 * Native Delivery frames: a length-delimited field is its bytes, and the
 * fields of a message may come in any order, so
 *   [u32 len] [Frame.delivery tag, len] [Delivery.subscription_id]  <- per connection
 *   [Delivery.messages tag, len, Message] ...                        <- shared
 *   (or [Delivery.batches tag, len, RecordBatch] ...)
 * decodes as Frame{delivery: Delivery{subscription_id, messages}}, byte for
 * byte what protobuf-c would encode. Only native TCP connections
 * (c->deliver_shared) take this path; every other kind still gets its
 * Delivery through fe_send.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "err.h"
#include "fe_int.h"
#include "log.h"
#include "sl_assert.h"

#define FANOUT_ENTRIES 64
#define FANOUT_TXN_BYTES_MAX (16u << 20) /* read under one txn before it is renewed */
#define FRAME_DELIVERY_TAG 0x112u        /* field 34, length-delimited: (34 << 3) | 2 */
#define DELIVERY_SUB_TAG 0x08u           /* field 1, varint */
#define DELIVERY_MSG_TAG 0x12u           /* field 2, length-delimited */
#define DELIVERY_BATCH_TAG 0x2Au         /* field 5, length-delimited */

struct fe_fanout {
	struct store_txn *txn;
	size_t txn_bytes; /* message bytes read under txn */
	struct fe_fanout_entry entries[FANOUT_ENTRIES];
};

/* ---------- shares ---------- */

struct fe_share *fe_share_new(size_t cap)
{
	struct fe_share *sh = malloc(sizeof(*sh) + cap);

	if (!sh)
		return NULL;
	sh->refs = 1;
	sh->len = 0;
	return sh;
}

void fe_share_unref(struct fe_share *sh)
{
	if (!sh)
		return;
	SL_ASSERT(sh->refs > 0);
	if (--sh->refs == 0)
		free(sh);
}

/* evbuffer cleanup: the buffer sent (or dropped) its reference. */
static void share_ref_done_cb(const void *data, size_t len, void *arg)
{
	(void)data;
	(void)len;
	fe_share_unref(arg);
}

int fe_share_add(struct evbuffer *out, struct fe_share *sh, size_t off, size_t len)
{
	SL_ASSERT(off + len <= sh->len);
	if (len == 0)
		return SL_OK;
	sh->refs++;
	if (evbuffer_add_reference(out, sh->data + off, len, share_ref_done_cb, sh) != 0) {
		sh->refs--;
		return SL_ENOMEM;
	}
	return SL_OK;
}

/* ---------- the pass cache ---------- */

static void entry_clear(struct fe_fanout_entry *e)
{
	if (!e->used)
		return;
	fe_msgs_free(&e->m);
	fe_batches_free(&e->b);
	fe_share_unref(e->native);
	for (int f = 0; f < 2; f++) {
		fe_share_unref(e->sse[f]);
		free(e->sse_at[f]);
	}
	memset(e, 0, sizeof(*e));
}

static size_t key_slot(const struct fe_fanout_key *k)
{
	uint64_t h = k->topic_id * 0x9E3779B97F4A7C15ull;

	h ^= (k->partition + 1) * 0xC2B2AE3D27D4EB4Full;
	h ^= k->from * 0x165667B19E3779F9ull;
	h ^= (uint64_t)k->batches << 61;
	h ^= h >> 29;
	return (size_t)(h % FANOUT_ENTRIES);
}

static int key_eq(const struct fe_fanout_key *a, const struct fe_fanout_key *b)
{
	/* the end is read per subscription and only grows during a pass (a
	 * later reader may see a newer commit): a read below an older end is a
	 * correct prefix for it, and the next read continues from there */
	return a->topic_id == b->topic_id && a->partition == b->partition && a->from == b->from && a->end <= b->end &&
	       a->msgs_max == b->msgs_max && a->batches == b->batches;
}

static struct fe_fanout *fanout_of(struct fe *fe)
{
	if (!fe->fanout)
		fe->fanout = calloc(1, sizeof(*fe->fanout));
	return fe->fanout;
}

struct fe_fanout_entry *fe_fanout_get(struct fe *fe, const struct fe_fanout_key *key, int *hit)
{
	struct fe_fanout *fo = fanout_of(fe);
	struct fe_fanout_entry *e;

	if (!fo)
		return NULL;
	e = &fo->entries[key_slot(key)];
	if (e->used && key_eq(&e->key, key)) {
		*hit = 1;
		return e;
	}
	entry_clear(e);
	e->used = 1;
	e->key = *key;
	*hit = 0;
	return e;
}

void fe_fanout_flush(struct fe *fe)
{
	if (!fe->fanout)
		return;
	for (size_t i = 0; i < FANOUT_ENTRIES; i++)
		entry_clear(&fe->fanout->entries[i]);
}

int fe_pass_txn(struct fe *fe, struct store_txn **t, int *began)
{
	struct fe_fanout *fo = fanout_of(fe);
	int rc;

	*began = 0;
	if (!fo)
		return SL_ENOMEM;
	if (fo->txn && fo->txn_bytes >= FANOUT_TXN_BYTES_MAX)
		fe_pass_end(fe); /* do not pin pages for a whole long catch-up pass */
	if (!fo->txn) {
		if ((rc = store_txn_begin(fe->store, 0, &fo->txn)) != SL_OK)
			return rc;
		*began = 1;
	}
	*t = fo->txn;
	return SL_OK;
}

void fe_pass_end(struct fe *fe)
{
	struct fe_fanout *fo = fe->fanout;

	if (!fo)
		return;
	fe_fanout_flush(fe); /* entries point into the txn's pages: first */
	if (fo->txn)
		store_txn_abort(fo->txn);
	fo->txn = NULL;
	fo->txn_bytes = 0;
}

void fe_fanout_teardown(struct fe *fe)
{
	fe_pass_end(fe);
	free(fe->fanout);
	fe->fanout = NULL;
}

/* Called by fe_read.c after filling a fresh entry: counts what the txn read. */
void fe_fanout_read_done(struct fe *fe, const struct fe_fanout_entry *e)
{
	if (fe->fanout)
		fe->fanout->txn_bytes += e->m.data_bytes + e->b.value_bytes;
}

/* ---------- native Delivery frames ---------- */

static size_t varint_size(uint64_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

static size_t varint_put(uint8_t *p, uint64_t v)
{
	size_t n = 0;

	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

/* Each of msgs (protobuf-c messages) as a length-delimited field `tag`,
 * packed once into a share; NULL if out of memory. */
static struct fe_share *fields_render(uint8_t tag, void *const *msgs, size_t n)
{
	size_t total = 0, k;
	struct fe_share *sh;

	for (k = 0; k < n; k++) {
		size_t len = protobuf_c_message_get_packed_size(msgs[k]);
		total += 1 + varint_size(len) + len;
	}
	if (!(sh = fe_share_new(total)))
		return NULL;
	for (k = 0; k < n; k++) {
		size_t len = protobuf_c_message_get_packed_size(msgs[k]);
		sh->data[sh->len++] = tag;
		sh->len += varint_put(sh->data + sh->len, len);
		sh->len += protobuf_c_message_pack(msgs[k], sh->data + sh->len);
	}
	SL_ASSERT(sh->len == total);
	return sh;
}

/* e->native: its stored batches as Delivery.batches fields, or its
 * messages as Delivery.messages fields. */
static int native_render(struct fe_fanout_entry *e)
{
	if (e->b.n > 0)
		e->native = fields_render(DELIVERY_BATCH_TAG, (void *const *)e->b.ptrs, e->b.n);
	else
		e->native = fields_render(DELIVERY_MSG_TAG, (void *const *)e->m.ptrs, e->m.n);
	return e->native ? SL_OK : SL_ENOMEM;
}

void fe_fanout_native(struct fe_conn *c, uint64_t subscription_id, struct fe_fanout_entry *e)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	uint8_t hdr[4 + 2 + 10 + 1 + 10];
	size_t dlen, flen, h = 4;

	SL_ASSERT(c->deliver_shared && !c->http);
	if (c->dead || c->lingering)
		return;
	if (!e->native && native_render(e) != SL_OK)
		goto fail;
	/* proto3: a zero subscription_id is not written, as protobuf-c does */
	dlen = (subscription_id ? 1 + varint_size(subscription_id) : 0) + e->native->len;
	flen = 2 + varint_size(dlen) + dlen;
	SL_ASSERT(flen <= UINT32_MAX);
	hdr[0] = (uint8_t)(flen >> 24);
	hdr[1] = (uint8_t)(flen >> 16);
	hdr[2] = (uint8_t)(flen >> 8);
	hdr[3] = (uint8_t)flen;
	h += varint_put(hdr + h, FRAME_DELIVERY_TAG);
	h += varint_put(hdr + h, dlen);
	if (subscription_id) {
		hdr[h++] = DELIVERY_SUB_TAG;
		h += varint_put(hdr + h, subscription_id);
	}
	if (evbuffer_add(out, hdr, h) != 0 || fe_share_add(out, e->native, 0, e->native->len) != SL_OK)
		goto fail;
	return;
fail:
	log_error("out of memory queueing a Delivery; closing connection");
	fe_conn_close(c);
}
