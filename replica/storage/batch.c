/*
 * batch.c: the log built from record batches (the value format and its
 * decoder are common/recbatch.h): store_batch_append, store_read,
 * store_read_batches, the time index and store_offset_for_time (and the
 * test-only store_debug_corrupt).
 *
 * Caveats:
 * - Disk bytes are input: every length in a batch is checked against the
 *   value size and the CRC32C is verified before a record is handed out. A
 *   mismatch is SL_ECORRUPT, never an assertion. There is one decoder,
 *   recbatch_open/recbatch_next (common/recbatch.c, also libsluice's for
 *   delivered batches; fuzzed by tests/fuzz/batch_fuzz.c); every read goes
 *   through it. store_read_batches checks a batch's header, sizes and CRC
 *   and hands the value out whole: its reader walks the records.
 * - Records read back are slices into the LMDB map: valid until the txn ends.
 * - The time index keeps the earliest batch per timestamp; a lookup also scans
 *   the batch just before its answer, whose later records may be newer.
 */
#include <lmdb.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "sl_assert.h"
#include "crc32c.h"
#include "recbatch.h"
#include "store.h"
#include "store_int.h"

#define STORE_BATCH_BYTES_MAX (256u << 20) /* one batch value */
#define TIMEIDX_KEY_BYTES 16

#define BATCH_HDR_BYTES RECBATCH_HDR_BYTES
#define REC_FIXED_BYTES RECBATCH_REC_FIXED_BYTES

/* Sign-flipped big-endian so negative timestamps sort before positive ones. */
static void be_put_ts(uint8_t *p, int64_t ts)
{
	be_put64(p, (uint64_t)ts ^ (1ull << 63));
}

void store_batch_key(uint8_t *k, uint32_t topic_id, uint32_t partition, uint64_t base)
{
	be_put32(k, topic_id);
	be_put32(k + 4, partition);
	be_put64(k + 8, base);
}

int store_batch_key_in_partition(const MDB_val *k, uint32_t topic_id, uint32_t partition)
{
	const uint8_t *p = k->mv_data;

	return k->mv_size == BATCH_KEY_BYTES && be_get32(p) == topic_id && be_get32(p + 4) == partition;
}

uint32_t store_crc32c(uint32_t crc, const void *p, size_t n)
{
	return crc32c(crc, p, n);
}

/* ------------------------------------------------------------------------ */
/* record batches                                                           */

int store_batch_parse_hdr(const MDB_val *v, struct recbatch_hdr *h)
{
	return recbatch_hdr_decode(v->mv_data, v->mv_size, h);
}

/*
 * The one batch decoder: header, sizes and CRC32C of the value (p, n), and
 * when want_base is not NULL the base offset its key says; then fn per
 * record (NULL: only walk them) until fn returns non-zero. *h gets the header.
 */
static int batch_parse(const uint8_t *p, size_t n, const uint64_t *want_base, struct recbatch_hdr *h,
                       int (*fn)(void *arg, const struct store_record *r), void *arg)
{
	struct recbatch_iter it;
	struct recbatch_rec rr;
	struct store_record r;
	int have = 1;
	int err = recbatch_open(p, n, h);

	if (err != SL_OK)
		return err;
	if (want_base != NULL && *want_base != h->base)
		return SL_ECORRUPT;
	recbatch_iter_init(&it, h);
	while ((err = recbatch_next(&it, &rr, &have)) == SL_OK && have) {
		SL_ASSERT(rr.offset >= h->base && rr.offset - h->base < h->count);
		r = (struct store_record){rr.offset, rr.timestamp_ms, rr.producer_id, rr.sequence,
		                          rr.key,    rr.headers,      rr.payload};
		if (fn != NULL && fn(arg, &r) != 0)
			break;
	}
	return err;
}

int store_batch_parse(const uint8_t *v, size_t len, int (*fn)(void *arg, const struct store_record *r), void *arg)
{
	struct recbatch_hdr h;

	if (v == NULL)
		return SL_ECORRUPT;
	return batch_parse(v, len, NULL, &h, fn, arg);
}

/* The base offset a batch key says (the key is in a partition: 16 bytes). */
static uint64_t batch_key_base(const MDB_val *k)
{
	SL_ASSERT(k->mv_size == BATCH_KEY_BYTES);
	return be_get64((const uint8_t *)k->mv_data + 8);
}

static size_t rec_bytes(const struct store_record *r)
{
	return REC_FIXED_BYTES + r->key.len + r->headers.len + r->payload.len;
}

static int batch_size(const struct store_record *recs, size_t n, size_t *size_out)
{
	size_t size = BATCH_HDR_BYTES;

	if (n > STORE_BATCH_BYTES_MAX / REC_FIXED_BYTES)
		return SL_ETOOLARGE;
	for (size_t i = 0; i < n; i++) {
		const struct store_record *r = &recs[i];
		if (r->key.len > STORE_BATCH_BYTES_MAX || r->headers.len > STORE_BATCH_BYTES_MAX ||
		    r->payload.len > STORE_BATCH_BYTES_MAX)
			return SL_ETOOLARGE;
		size += rec_bytes(r);
		if (size > STORE_BATCH_BYTES_MAX)
			return SL_ETOOLARGE;
	}
	*size_out = size;
	return SL_OK;
}

static uint8_t *put_blob(uint8_t *p, struct slice s)
{
	be_put32(p, (uint32_t)s.len);
	if (s.len > 0)
		memcpy(p + 4, s.base, s.len);
	return p + 4 + s.len;
}

/* Writes the batch into its reserved value (size from batch_size), checksum last. */
static void batch_fill(uint8_t *v, size_t size, uint64_t base, const struct store_record *recs, size_t n, int64_t ts,
                       uint64_t term)
{
	uint8_t *p = v + BATCH_HDR_BYTES;

	SL_ASSERT(n > 0 && n <= UINT32_MAX && size >= BATCH_HDR_BYTES + n * REC_FIXED_BYTES);
	SL_ASSERT(size - BATCH_HDR_BYTES <= UINT32_MAX);
	recbatch_hdr_put(v, &(struct recbatch_hdr){.base = base,
	                                           .count = (uint32_t)n,
	                                           .first_ts = ts,
	                                           .max_ts = ts,
	                                           .producer_id = recs[0].producer_id,
	                                           .base_sequence = recs[0].sequence,
	                                           .term = term,
	                                           .records_bytes = size - BATCH_HDR_BYTES});
	for (size_t i = 0; i < n; i++) {
		be_put32(p, (uint32_t)(rec_bytes(&recs[i]) - 4));
		be_put64(p + 4, (uint64_t)ts);
		be_put64(p + 12, recs[i].producer_id);
		be_put64(p + 20, recs[i].sequence);
		p = put_blob(p + 28, recs[i].key);
		p = put_blob(p, recs[i].headers);
		p = put_blob(p, recs[i].payload);
	}
	SL_ASSERT((size_t)(p - v) == size);
	recbatch_seal(v, size);
}

static void store_timeidx_key(uint8_t *k, uint32_t topic_id, uint32_t partition, int64_t ts)
{
	be_put32(k, topic_id);
	be_put32(k + 4, partition);
	be_put_ts(k + 8, ts);
}

/* Keeps the earliest batch for a timestamp: an existing entry wins. */
int store_timeidx_add(struct store_txn *t, uint32_t topic_id, uint32_t partition, int64_t ts, uint64_t base)
{
	uint8_t k[TIMEIDX_KEY_BYTES], v[8];
	MDB_val key, val;
	int rc;

	SL_ASSERT(t->write);
	if (t->err != SL_OK)
		return t->err;
	store_timeidx_key(k, topic_id, partition, ts);
	be_put64(v, base);
	key = mval(k, sizeof(k));
	val = mval(v, sizeof(v));
	rc = mdb_put(t->txn, t->s->dbi[DB_TIMEIDX], &key, &val, MDB_NOOVERWRITE);
	if (rc == MDB_SUCCESS || rc == MDB_KEYEXIST)
		return SL_OK;
	return store_txn_fail(t, rc);
}

/* Puts a reserved batch value; MDB_APPEND when the key is past the last (a tail append). */
static int batch_put_reserved(struct store_txn *t, const uint8_t *k, size_t size, uint8_t **dst)
{
	MDB_val key = mval(k, BATCH_KEY_BYTES), val = {size, NULL};
	int rc;

	SL_ASSERT(t->write);
	if (t->err != SL_OK)
		return t->err;
	rc = mdb_put(t->txn, t->s->dbi[DB_BATCHES], &key, &val, MDB_RESERVE | MDB_APPEND);
	if (rc == MDB_KEYEXIST) {
		val.mv_size = size;
		val.mv_data = NULL;
		rc = mdb_put(t->txn, t->s->dbi[DB_BATCHES], &key, &val, MDB_RESERVE | MDB_NOOVERWRITE);
	}
	if (rc == MDB_KEYEXIST)
		return SL_ECORRUPT; /* a batch at the partition's end offset: metadata and log disagree */
	if (rc != MDB_SUCCESS)
		return store_txn_fail(t, rc);
	SL_ASSERT(val.mv_data != NULL && val.mv_size == size);
	*dst = val.mv_data;
	return SL_OK;
}

/* The partition record after a batch [base, base + count) of size bytes
 * (timestamps up to max_ts) went to its end. */
static int part_appended(struct store_txn *t, uint32_t topic_id, uint32_t partition, struct store_partition *part,
                         uint32_t count, size_t size, int64_t first_ts, int64_t max_ts)
{
	if (part->first_offset == part->end_offset && part->bytes == 0)
		part->max_ts = first_ts;
	part->end_offset += count;
	part->bytes += size;
	if (max_ts > part->max_ts)
		part->max_ts = max_ts;
	return store_part_put(t, topic_id, partition, part);
}

int store_batch_append(struct store_txn *t, uint32_t topic_id, uint32_t partition, const struct store_record *recs,
                       size_t n, int64_t ts_ms, uint64_t term, uint64_t *base_out)
{
	struct store_partition part;
	uint8_t k[BATCH_KEY_BYTES];
	uint8_t *dst = NULL;
	size_t size = 0;
	int err;

	SL_ASSERT(t->write);
	if (recs == NULL || n == 0)
		return SL_EINVAL;
	if (t->err != SL_OK)
		return t->err;
	if ((err = store_partition_get(t, topic_id, partition, &part)) != SL_OK)
		return err;
	if (store_topic_is_deleted(t, topic_id))
		return SL_ENOTOPIC;
	if ((err = batch_size(recs, n, &size)) != SL_OK)
		return err;
	if (part.end_offset > UINT64_MAX - n)
		return SL_ERANGE;
	store_batch_key(k, topic_id, partition, part.end_offset);
	if ((err = batch_put_reserved(t, k, size, &dst)) != SL_OK)
		return err;
	batch_fill(dst, size, part.end_offset, recs, n, ts_ms, term);
	if ((err = store_timeidx_add(t, topic_id, partition, ts_ms, part.end_offset)) != SL_OK)
		return err;
	*base_out = part.end_offset;
	err = part_appended(t, topic_id, partition, &part, (uint32_t)n, size, ts_ms, ts_ms);
	SL_ASSERT(err != SL_OK || part.end_offset > *base_out);
	return err;
}

int store_batch_put(struct store_txn *t, uint32_t topic_id, uint32_t partition, uint64_t base, uint32_t count,
                    struct slice value)
{
	struct store_partition part;
	struct recbatch_hdr h;
	uint8_t k[BATCH_KEY_BYTES];
	uint8_t *dst = NULL;
	int err;

	SL_ASSERT(t->write);
	if (t->err != SL_OK)
		return t->err;
	if (value.base == NULL || value.len > STORE_BATCH_BYTES_MAX)
		return SL_ECORRUPT;
	if ((err = batch_parse(value.base, value.len, NULL, &h, NULL, NULL)) != SL_OK)
		return err;
	if (h.base != base || h.count != count)
		return SL_ECORRUPT;
	if ((err = store_partition_get(t, topic_id, partition, &part)) != SL_OK)
		return err;
	if (store_topic_is_deleted(t, topic_id))
		return SL_ENOTOPIC;
	if (h.base != part.end_offset)
		return SL_ECORRUPT; /* not at the end: the log and this partition disagree */
	store_batch_key(k, topic_id, partition, h.base);
	if ((err = batch_put_reserved(t, k, value.len, &dst)) != SL_OK)
		return err;
	memcpy(dst, value.base, value.len);
	if ((err = store_timeidx_add(t, topic_id, partition, h.first_ts, h.base)) != SL_OK)
		return err;
	return part_appended(t, topic_id, partition, &part, h.count, value.len, h.first_ts, h.max_ts);
}

int store_batch_get(struct store_txn *t, uint32_t topic_id, uint32_t partition, uint64_t base, struct slice *value)
{
	uint8_t k[BATCH_KEY_BYTES];
	MDB_val v;
	int err;

	store_batch_key(k, topic_id, partition, base);
	if ((err = store_db_get(t, DB_BATCHES, mval(k, sizeof(k)), &v)) != SL_OK)
		return err;
	*value = slice_make(v.mv_data, v.mv_size);
	return SL_OK;
}

int store_batch_truncate(struct store_txn *t, uint32_t topic_id, uint32_t partition, uint64_t from)
{
	struct store_partition part;
	struct recbatch_hdr h;
	uint8_t kb[BATCH_KEY_BYTES];
	MDB_cursor *c = NULL;
	MDB_val k, v;
	struct slice at;
	int err, rc;

	SL_ASSERT(t->write);
	if ((err = store_partition_get(t, topic_id, partition, &part)) != SL_OK)
		return err;
	if (from >= part.end_offset)
		return SL_OK; /* nothing stored there (an earlier cut took it) */
	if ((err = store_batch_get(t, topic_id, partition, from, &at)) != SL_OK)
		return err == SL_ENOTFOUND ? SL_ECORRUPT : err; /* `from` must start a batch */
	if ((err = store_cursor_open(t, DB_BATCHES, &c)) != SL_OK)
		return err;
	for (;;) {
		store_batch_key(kb, topic_id, partition, from);
		k = mval(kb, sizeof(kb));
		rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
		if (rc == MDB_NOTFOUND || (rc == MDB_SUCCESS && !store_batch_key_in_partition(&k, topic_id, partition)))
			break;
		if (rc != MDB_SUCCESS) {
			err = store_err(rc);
			break;
		}
		memcpy(kb, k.mv_data, sizeof(kb));
		if ((err = recbatch_hdr_decode(v.mv_data, v.mv_size, &h)) != SL_OK)
			break;
		if ((err = store_timeidx_forget(t, topic_id, partition, &h)) != SL_OK)
			break;
		if ((err = store_db_del(t, DB_BATCHES, mval(kb, sizeof(kb)))) != SL_OK)
			break;
		part.bytes = part.bytes > h.value_bytes ? part.bytes - h.value_bytes : 0;
	}
	mdb_cursor_close(c);
	if (err != SL_OK)
		return err;
	part.end_offset = from;
	if (part.first_offset > from)
		part.first_offset = from;
	return store_part_put(t, topic_id, partition, &part);
}

/* Positions c on the batch of (topic, partition) holding offset `at` (base <= at). */
static int batch_seek(MDB_cursor *c, uint32_t topic_id, uint32_t partition, uint64_t at, MDB_val *k, MDB_val *v)
{
	uint8_t kb[BATCH_KEY_BYTES];
	int rc;

	store_batch_key(kb, topic_id, partition, at);
	*k = mval(kb, sizeof(kb));
	rc = mdb_cursor_get(c, k, v, MDB_SET_RANGE);
	if (rc == MDB_SUCCESS && store_batch_key_in_partition(k, topic_id, partition) &&
	    be_get64((const uint8_t *)k->mv_data + 8) == at)
		return SL_OK;
	if (rc == MDB_SUCCESS)
		rc = mdb_cursor_get(c, k, v, MDB_PREV);
	else if (rc == MDB_NOTFOUND)
		rc = mdb_cursor_get(c, k, v, MDB_LAST);
	if (rc != MDB_SUCCESS)
		return store_err(rc);
	return store_batch_key_in_partition(k, topic_id, partition) ? SL_OK : SL_ENOTFOUND;
}

struct read_state {
	uint64_t from;
	uint64_t limit;
	uint64_t next;
	size_t max_records;
	size_t max_bytes;
	size_t records;
	size_t bytes;
	int (*fn)(void *arg, const struct store_record *r);
	int (*batch_fn)(void *arg, const struct store_batch_ref *b); /* store_read_batches */
	void *arg;
	int stop;
};

static int read_full(const struct read_state *st)
{
	return (st->max_records != 0 && st->records >= st->max_records) ||
	       (st->max_bytes != 0 && st->bytes >= st->max_bytes);
}

/* Called per record of a batch: delivers those in [from, limit) within the limits. */
static int read_rec_cb(void *arg, const struct store_record *r)
{
	struct read_state *st = arg;

	if (r->offset < st->from)
		return 0;
	if (r->offset >= st->limit || read_full(st) ||
	    (st->max_bytes != 0 && st->records > 0 && st->bytes + rec_bytes(r) > st->max_bytes)) {
		st->stop = 1;
		return 1;
	}
	st->records++;
	st->bytes += rec_bytes(r);
	st->next = r->offset + 1;
	SL_ASSERT(st->next <= st->limit);
	if (st->fn(st->arg, r) != 0 || read_full(st) || st->next >= st->limit)
		st->stop = 1;
	return st->stop;
}

/* Called per batch of a walk with its value and the base its key says:
 * fills *h (checked), sets *stop to end the walk after this batch. */
typedef int (*batch_visit_fn)(void *arg, const MDB_val *v, uint64_t base, struct recbatch_hdr *h, int *stop);

/* Every batch of (topic, partition) from the one holding `from` until one
 * reaches `limit` or visit stops; a hole below limit is SL_ECORRUPT. */
static int walk_batches(MDB_cursor *c, uint32_t topic_id, uint32_t partition, uint64_t from, uint64_t limit,
                        batch_visit_fn visit, void *arg)
{
	struct recbatch_hdr h;
	MDB_val k, v;
	uint64_t expect;
	int err = batch_seek(c, topic_id, partition, from, &k, &v);
	int rc, stop = 0;

	if (err == SL_ENOTFOUND)
		return SL_ECORRUPT; /* the partition record says [from, limit) is stored */
	if (err != SL_OK)
		return err;
	for (;;) {
		if ((err = visit(arg, &v, batch_key_base(&k), &h, &stop)) != SL_OK || stop)
			return err;
		expect = h.base + h.count;
		if (expect >= limit)
			return SL_OK;
		rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
		if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND)
			return store_err(rc);
		if (rc == MDB_NOTFOUND || !store_batch_key_in_partition(&k, topic_id, partition) ||
		    batch_key_base(&k) != expect)
			return SL_ECORRUPT; /* a hole below the end offset */
	}
}

static int read_records_visit(void *arg, const MDB_val *v, uint64_t base, struct recbatch_hdr *h, int *stop)
{
	struct read_state *st = arg;
	int err = batch_parse(v->mv_data, v->mv_size, &base, h, read_rec_cb, st);

	*stop = st->stop;
	return err;
}

/* store_read_batches: takes the batch's records in [from, limit) within the limits. */
static int read_whole_visit(void *arg, const MDB_val *v, uint64_t base, struct recbatch_hdr *h, int *stop)
{
	struct read_state *st = arg;
	struct store_batch_ref ref;
	uint64_t first, end;
	int err = recbatch_open(v->mv_data, v->mv_size, h);

	if (err == SL_OK && h->base != base)
		err = SL_ECORRUPT;
	if (err != SL_OK)
		return err;
	first = st->next > h->base ? st->next : h->base;
	end = h->base + h->count < st->limit ? h->base + h->count : st->limit;
	if (first >= end)
		return SL_OK; /* wholly before `from`: the walk finds the hole */
	if (st->max_records != 0 && end - first > st->max_records - st->records)
		end = first + (st->max_records - st->records);
	if (st->max_bytes != 0 && st->records > 0 && st->bytes + v->mv_size > st->max_bytes) {
		*stop = 1; /* not taken: the next read starts with it */
		return SL_OK;
	}
	ref = (struct store_batch_ref){slice_make(v->mv_data, v->mv_size), h->base, h->count, first,
	                               (uint32_t)(end - first)};
	st->records += ref.n;
	st->bytes += v->mv_size;
	st->next = end;
	SL_ASSERT(st->next <= st->limit && st->next > first);
	*stop = st->batch_fn(st->arg, &ref) != 0 || read_full(st) || st->next >= st->limit;
	return SL_OK;
}

/* The read of [from, limit) both store_read and store_read_batches make. */
static int read_range(struct store_txn *t, uint32_t topic_id, uint32_t partition, struct read_state *st,
                      uint64_t *next_out)
{
	struct store_partition part;
	MDB_cursor *c = NULL;
	int err;

	*next_out = st->from;
	if ((err = store_partition_get(t, topic_id, partition, &part)) != SL_OK)
		return err;
	if (st->from < part.first_offset)
		st->from = part.first_offset;
	if (st->limit > part.end_offset)
		st->limit = part.end_offset;
	st->next = st->from;
	*next_out = st->from;
	if (st->from >= st->limit)
		return SL_OK;
	if ((err = store_cursor_open(t, DB_BATCHES, &c)) != SL_OK)
		return err;
	err = walk_batches(c, topic_id, partition, st->from, st->limit,
	                   st->batch_fn ? read_whole_visit : read_records_visit, st);
	mdb_cursor_close(c);
	*next_out = st->next;
	return err;
}

int store_read(struct store_txn *t, uint32_t topic_id, uint32_t partition, uint64_t from, uint64_t limit,
               size_t max_records, size_t max_bytes, int (*fn)(void *arg, const struct store_record *r), void *arg,
               uint64_t *next_out)
{
	struct read_state st = {.from = from, .limit = limit, .max_records = max_records, .max_bytes = max_bytes,
	                        .fn = fn, .arg = arg};

	return read_range(t, topic_id, partition, &st, next_out);
}

int store_read_batches(struct store_txn *t, uint32_t topic_id, uint32_t partition, uint64_t from, uint64_t limit,
                       size_t max_records, size_t max_bytes, int (*fn)(void *arg, const struct store_batch_ref *b),
                       void *arg, uint64_t *next_out)
{
	struct read_state st = {.from = from, .limit = limit, .max_records = max_records, .max_bytes = max_bytes,
	                        .batch_fn = fn, .arg = arg};

	SL_ASSERT(fn != NULL);
	return read_range(t, topic_id, partition, &st, next_out);
}

struct time_scan {
	int64_t ts;
	uint64_t floor;
	uint64_t at;
	uint64_t *found;
};

static int time_scan_cb(void *arg, const struct store_record *r)
{
	struct time_scan *ts = arg;

	if (r->offset < ts->floor || r->offset > ts->at || r->timestamp_ms < ts->ts)
		return 0;
	*ts->found = r->offset;
	return 1;
}

/* First offset in [floor, at] of the batch holding `at` whose timestamp is >= ts
 * (*found is left alone if none). */
static int time_scan_batch(struct store_txn *t, uint32_t topic_id, uint32_t partition, uint64_t at, int64_t ts,
                           uint64_t floor, uint64_t *found)
{
	struct time_scan scan = {ts, floor, at, found};
	MDB_cursor *c = NULL;
	MDB_val k, v;
	struct recbatch_hdr h;
	uint64_t base;
	int err = store_cursor_open(t, DB_BATCHES, &c);

	if (err != SL_OK)
		return err;
	err = batch_seek(c, topic_id, partition, at, &k, &v);
	if (err == SL_OK) {
		base = batch_key_base(&k);
		err = batch_parse(v.mv_data, v.mv_size, &base, &h, time_scan_cb, &scan);
	}
	mdb_cursor_close(c);
	return err == SL_ENOTFOUND ? SL_OK : err;
}

int store_offset_for_time(struct store_txn *t, uint32_t topic_id, uint32_t partition, int64_t ts_ms,
                          uint64_t *offset_out)
{
	struct store_partition part;
	uint8_t kb[TIMEIDX_KEY_BYTES];
	MDB_cursor *c = NULL;
	MDB_val k, v;
	uint64_t cand;
	int err, rc;

	if ((err = store_partition_get(t, topic_id, partition, &part)) != SL_OK)
		return err;
	cand = part.end_offset;
	if ((err = store_cursor_open(t, DB_TIMEIDX, &c)) != SL_OK)
		return err;
	store_timeidx_key(kb, topic_id, partition, ts_ms);
	k = mval(kb, sizeof(kb));
	rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
	if (rc == MDB_SUCCESS && k.mv_size == TIMEIDX_KEY_BYTES && memcmp(k.mv_data, kb, 8) == 0 && v.mv_size == 8)
		cand = be_get64(v.mv_data);
	mdb_cursor_close(c);
	if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND)
		return store_err(rc);
	if (cand < part.first_offset)
		cand = part.first_offset;
	if (cand > part.end_offset)
		cand = part.end_offset;
	/* The batch just before may have records stamped at or after ts_ms. */
	if (cand > part.first_offset)
		err = time_scan_batch(t, topic_id, partition, cand - 1, ts_ms, part.first_offset, &cand);
	if (err == SL_OK)
		*offset_out = cand;
	return err;
}

/* Removes the time-index entry that points at a batch being deleted. */
int store_timeidx_forget(struct store_txn *t, uint32_t topic_id, uint32_t partition, const struct recbatch_hdr *h)
{
	uint8_t k[TIMEIDX_KEY_BYTES];
	MDB_val v;
	int err;

	store_timeidx_key(k, topic_id, partition, h->first_ts);
	err = store_db_get(t, DB_TIMEIDX, mval(k, sizeof(k)), &v);
	if (err == SL_ENOTFOUND)
		return SL_OK;
	if (err != SL_OK)
		return err;
	if (v.mv_size == 8 && be_get64(v.mv_data) != h->base)
		return SL_OK;
	return store_db_del(t, DB_TIMEIDX, mval(k, sizeof(k)));
}

/* ------------------------------------------------------------------------ */
/* test support                                                             */

int store_debug_corrupt(struct store_txn *t, uint32_t topic_id, uint32_t partition, uint64_t base_offset,
                        size_t byte_index)
{
	uint8_t k[BATCH_KEY_BYTES];
	uint8_t *copy;
	MDB_val v;
	int err;

	store_batch_key(k, topic_id, partition, base_offset);
	if ((err = store_db_get(t, DB_BATCHES, mval(k, sizeof(k)), &v)) != SL_OK)
		return err;
	if (byte_index >= v.mv_size)
		return SL_ERANGE;
	copy = malloc(v.mv_size);
	if (copy == NULL)
		return SL_ENOMEM;
	memcpy(copy, v.mv_data, v.mv_size);
	copy[byte_index] ^= 0x5a;
	err = store_db_put(t, DB_BATCHES, mval(k, sizeof(k)), mval(copy, v.mv_size), 0);
	free(copy);
	return err;
}
