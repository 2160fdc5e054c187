/*
 * batch.c: the record-batch format and the log built from it: the 64-byte
 * header, the records, the CRC32C over both, store_batch_append, store_read,
 * the time index and store_offset_for_time (and the test-only
 * store_debug_corrupt).
 *
 * Caveats:
 * - Disk bytes are input: every length in a batch is checked against the
 *   value size and the CRC32C is verified before a record is handed out. A
 *   mismatch is SL_ECORRUPT, never an assertion. There is one decoder,
 *   batch_parse (public as store_batch_parse, fuzzed by tests/fuzz/batch_fuzz.c);
 *   every read goes through it.
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
#include "store.h"
#include "store_int.h"

#define STORE_BATCH_BYTES_MAX (256u << 20) /* one batch value */
#define TIMEIDX_KEY_BYTES 16

/* Batch value layout (big-endian). */
#define BATCH_MAGIC 0x53u
#define BATCH_VERSION 1u
#define BATCH_HDR_BYTES 64u
#define BOFF_MAGIC 0
#define BOFF_VERSION 1
#define BOFF_CRC 4
#define BOFF_BASE 8
#define BOFF_COUNT 16
#define BOFF_FIRST_TS 20
#define BOFF_MAX_TS 28
#define BOFF_PID 36
#define BOFF_BSEQ 44
#define BOFF_TERM 52
#define BOFF_RBYTES 60
/* [u32 len][i64 ts][u64 pid][u64 seq][u32 klen][u32 hlen][u32 plen]; len counts what follows it. */
#define REC_FIXED_BYTES 40u

/* Bounds-checked reader over borrowed bytes; `bad` latches on underflow. */
struct rd {
	const uint8_t *p;
	size_t n;
	int bad;
};

struct rec_iter {
	struct rd r;
	uint32_t remaining;
	uint64_t offset;
};

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

static uint32_t rd_u32(struct rd *r)
{
	uint32_t v;

	if (r->bad || r->n < 4) {
		r->bad = 1;
		return 0;
	}
	v = be_get32(r->p);
	r->p += 4;
	r->n -= 4;
	return v;
}

static uint64_t rd_u64(struct rd *r)
{
	uint64_t v;

	if (r->bad || r->n < 8) {
		r->bad = 1;
		return 0;
	}
	v = be_get64(r->p);
	r->p += 8;
	r->n -= 8;
	return v;
}

static struct slice rd_bytes(struct rd *r, size_t len)
{
	struct slice s = {NULL, 0};

	if (r->bad || r->n < len) {
		r->bad = 1;
		return s;
	}
	s = slice_make(r->p, len);
	r->p += len;
	r->n -= len;
	return s;
}

uint32_t store_crc32c(uint32_t crc, const void *p, size_t n)
{
	return crc32c(crc, p, n);
}

/* ------------------------------------------------------------------------ */
/* record batches                                                           */

/* Header fields and sizes of a batch value; no CRC check. */
static int batch_hdr_decode(const uint8_t *p, size_t n, struct batch_hdr *h)
{
	if (n < BATCH_HDR_BYTES + REC_FIXED_BYTES || p[BOFF_MAGIC] != BATCH_MAGIC || p[BOFF_VERSION] != BATCH_VERSION)
		return SL_ECORRUPT;
	h->base = be_get64(p + BOFF_BASE);
	h->count = be_get32(p + BOFF_COUNT);
	h->first_ts = (int64_t)be_get64(p + BOFF_FIRST_TS);
	h->max_ts = (int64_t)be_get64(p + BOFF_MAX_TS);
	h->producer_id = be_get64(p + BOFF_PID);
	h->base_sequence = be_get64(p + BOFF_BSEQ);
	h->term = be_get64(p + BOFF_TERM);
	h->records_bytes = be_get32(p + BOFF_RBYTES);
	h->records = p + BATCH_HDR_BYTES;
	h->value_bytes = n;
	if (h->records_bytes != n - BATCH_HDR_BYTES || h->count == 0 || h->count > h->records_bytes / REC_FIXED_BYTES ||
	    h->base > UINT64_MAX - h->count)
		return SL_ECORRUPT;
	return SL_OK;
}

int store_batch_parse_hdr(const MDB_val *v, struct batch_hdr *h)
{
	return batch_hdr_decode(v->mv_data, v->mv_size, h);
}

static void rec_iter_init(struct rec_iter *it, const struct batch_hdr *h)
{
	it->r.p = h->records;
	it->r.n = h->records_bytes;
	it->r.bad = 0;
	it->remaining = h->count;
	it->offset = h->base;
}

/* Next record of a batch; *have = 0 at the end. Every length is checked. */
static int rec_next(struct rec_iter *it, struct store_record *r, int *have)
{
	struct rd rec;
	uint32_t len;

	*have = 0;
	if (it->remaining == 0)
		return it->r.n == 0 ? SL_OK : SL_ECORRUPT;
	len = rd_u32(&it->r);
	rec.p = it->r.p;
	rec.n = len;
	rec.bad = 0;
	rd_bytes(&it->r, len);
	if (it->r.bad)
		return SL_ECORRUPT;
	r->timestamp_ms = (int64_t)rd_u64(&rec);
	r->producer_id = rd_u64(&rec);
	r->sequence = rd_u64(&rec);
	r->key = rd_bytes(&rec, rd_u32(&rec));
	r->headers = rd_bytes(&rec, rd_u32(&rec));
	r->payload = rd_bytes(&rec, rd_u32(&rec));
	if (rec.bad || rec.n != 0)
		return SL_ECORRUPT;
	r->offset = it->offset++;
	it->remaining--;
	*have = 1;
	return SL_OK;
}

/*
 * The one batch decoder: header, sizes and CRC32C of the value (p, n), and
 * when want_base is not NULL the base offset its key says; then fn per
 * record (NULL: only walk them) until fn returns non-zero. *h gets the header.
 */
static int batch_parse(const uint8_t *p, size_t n, const uint64_t *want_base, struct batch_hdr *h,
                       int (*fn)(void *arg, const struct store_record *r), void *arg)
{
	struct rec_iter it;
	struct store_record r;
	int have = 1;
	int err = batch_hdr_decode(p, n, h);

	if (err != SL_OK)
		return err;
	if (be_get32(p + BOFF_CRC) != store_crc32c(0, p + 8, n - 8))
		return SL_ECORRUPT;
	if (want_base != NULL && *want_base != h->base)
		return SL_ECORRUPT;
	rec_iter_init(&it, h);
	while ((err = rec_next(&it, &r, &have)) == SL_OK && have) {
		SL_ASSERT(r.offset >= h->base && r.offset - h->base < h->count);
		if (fn != NULL && fn(arg, &r) != 0)
			break;
	}
	return err;
}

int store_batch_parse(const uint8_t *v, size_t len, int (*fn)(void *arg, const struct store_record *r), void *arg)
{
	struct batch_hdr h;

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
	memset(v, 0, BATCH_HDR_BYTES);
	v[BOFF_MAGIC] = BATCH_MAGIC;
	v[BOFF_VERSION] = BATCH_VERSION;
	be_put64(v + BOFF_BASE, base);
	be_put32(v + BOFF_COUNT, (uint32_t)n);
	be_put64(v + BOFF_FIRST_TS, (uint64_t)ts);
	be_put64(v + BOFF_MAX_TS, (uint64_t)ts);
	be_put64(v + BOFF_PID, recs[0].producer_id);
	be_put64(v + BOFF_BSEQ, recs[0].sequence);
	be_put64(v + BOFF_TERM, term);
	be_put32(v + BOFF_RBYTES, (uint32_t)(size - BATCH_HDR_BYTES));
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
	be_put32(v + BOFF_CRC, store_crc32c(0, v + 8, size - 8));
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
	struct batch_hdr h;
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
	struct batch_hdr h;
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
		if ((err = batch_hdr_decode(v.mv_data, v.mv_size, &h)) != SL_OK)
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

static int read_batches(MDB_cursor *c, uint32_t topic_id, uint32_t partition, struct read_state *st)
{
	struct batch_hdr h;
	MDB_val k, v;
	uint64_t expect;
	int err = batch_seek(c, topic_id, partition, st->from, &k, &v);
	int rc;

	if (err == SL_ENOTFOUND)
		return SL_ECORRUPT; /* the partition record says [from, limit) is stored */
	if (err != SL_OK)
		return err;
	for (;;) {
		expect = batch_key_base(&k);
		if ((err = batch_parse(v.mv_data, v.mv_size, &expect, &h, read_rec_cb, st)) != SL_OK || st->stop)
			return err;
		expect = h.base + h.count;
		if (expect >= st->limit)
			return SL_OK;
		rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
		if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND)
			return store_err(rc);
		if (rc == MDB_NOTFOUND || !store_batch_key_in_partition(&k, topic_id, partition) ||
		    batch_key_base(&k) != expect)
			return SL_ECORRUPT; /* a hole below the end offset */
	}
}

int store_read(struct store_txn *t, uint32_t topic_id, uint32_t partition, uint64_t from, uint64_t limit,
               size_t max_records, size_t max_bytes, int (*fn)(void *arg, const struct store_record *r), void *arg,
               uint64_t *next_out)
{
	struct store_partition part;
	struct read_state st;
	MDB_cursor *c = NULL;
	int err;

	*next_out = from;
	if ((err = store_partition_get(t, topic_id, partition, &part)) != SL_OK)
		return err;
	if (from < part.first_offset)
		from = part.first_offset;
	if (limit > part.end_offset)
		limit = part.end_offset;
	*next_out = from;
	if (from >= limit)
		return SL_OK;
	memset(&st, 0, sizeof(st));
	st.from = from;
	st.limit = limit;
	st.next = from;
	st.max_records = max_records;
	st.max_bytes = max_bytes;
	st.fn = fn;
	st.arg = arg;
	if ((err = store_cursor_open(t, DB_BATCHES, &c)) != SL_OK)
		return err;
	err = read_batches(c, topic_id, partition, &st);
	mdb_cursor_close(c);
	*next_out = st.next;
	return err;
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
	struct batch_hdr h;
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
int store_timeidx_forget(struct store_txn *t, uint32_t topic_id, uint32_t partition, const struct batch_hdr *h)
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
