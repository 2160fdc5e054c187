/*
 * fe_batches.c: reads that ship stored record batches as they are, for
 * native connections that said Hello.accept_batches (docs/protocol.md#stored-batches).
 * A read takes whole batches from the store (store_read_batches checks
 * each batch's header, sizes and CRC, not its records) and says per batch
 * which records the reader gets: from its position, below the committed
 * end and within its credit. Nothing is decoded per record: the client
 * walks the records (libsluice, broker/client/unpack.c).
 *
 * Caveats:
 * - The RecordBatch values point at the LMDB pages: valid until the read
 *   txn ends. A Delivery copies them once into a share that every
 *   subscriber at the same position references (fe_fanout.c); a FetchResult
 *   packs them straight into the connection's output.
 * - A batch larger than the read's byte limit cannot travel whole in one
 *   frame; the read then says too_big and the caller reads messages instead
 *   (fe_msgs_read), as for a client without batches.
 */
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "fe_int.h"
#include "recbatch.h"
#include "sl_assert.h"
#include "vec.h"

void fe_batches_init(struct fe_batches *b, const char *topic, uint32_t partition, size_t msgs_max, size_t bytes_max)
{
	memset(b, 0, sizeof(*b));
	b->topic = topic;
	b->partition = partition;
	b->msgs_max = msgs_max ? msgs_max : 1;
	b->bytes_max = bytes_max;
}

void fe_batches_free(struct fe_batches *b)
{
	free(b->wire);
	free(b->ptrs);
	b->wire = NULL;
	b->ptrs = NULL;
	b->n = b->cap = 0;
}

/* Key, header and payload bytes of the records r delivers (the metric
 * sluice_topic_delivered_bytes_total): from the sizes for a whole batch,
 * by walking the record lengths for a part of one (a position inside it, a
 * cut by credit or the end). */
static uint64_t batch_data_bytes(const struct store_batch_ref *r)
{
	struct recbatch_hdr h;
	struct recbatch_iter it;
	struct recbatch_rec rec;
	uint64_t sum = 0;
	int have = 0;

	if (recbatch_hdr_decode(r->value.base, r->value.len, &h) != SL_OK)
		return 0; /* checked by the read: cannot happen */
	if (r->first == h.base && r->n == h.count)
		return h.records_bytes - (uint64_t)h.count * RECBATCH_REC_FIXED_BYTES;
	recbatch_iter_init(&it, &h);
	while (recbatch_next(&it, &rec, &have) == SL_OK && have && rec.offset < r->first + r->n)
		if (rec.offset >= r->first)
			sum += rec.key.len + rec.headers.len + rec.payload.len;
	return sum;
}

static int batches_add_cb(void *arg, const struct store_batch_ref *r)
{
	struct fe_batches *b = arg;
	Sluice__RecordBatch *w;

	if (b->n == 0 && r->value.len > b->bytes_max) {
		b->too_big = 1;
		return 1;
	}
	if (vec_reserve(&b->wire, &b->cap, b->n + 1) != SL_OK) {
		b->err = SL_ENOMEM;
		return 1;
	}
	w = &b->wire[b->n++];
	sluice__record_batch__init(w);
	w->topic = (char *)b->topic;
	w->partition = b->partition;
	w->first_offset = r->first;
	w->count = r->n;
	w->value.data = (uint8_t *)r->value.base;
	w->value.len = r->value.len;
	b->msgs += r->n;
	b->value_bytes += r->value.len;
	b->data_bytes += batch_data_bytes(r);
	return 0;
}

int fe_batches_read(struct store_txn *t, const struct store_topic *tp, struct fe_batches *b, uint64_t from,
                    uint64_t limit, uint64_t *next)
{
	uint64_t next_out = from;
	int rc = store_read_batches(t, tp->topic_id, b->partition, from, limit, b->msgs_max, b->bytes_max,
	                            batches_add_cb, b, &next_out);

	if (rc == SL_OK)
		rc = b->err;
	if (rc == SL_OK && b->n > 0 && !(b->ptrs = malloc(b->n * sizeof(*b->ptrs))))
		rc = SL_ENOMEM;
	if (rc != SL_OK)
		return rc;
	for (size_t i = 0; i < b->n; i++)
		b->ptrs[i] = &b->wire[i];
	*next = next_out > from ? next_out : from;
	return SL_OK;
}
