/*
 * entry_fuzz.c: libFuzzer target for the raft entry codec (replica/raft/entry.c),
 * whose bytes come from peers: committed raft entries and Forward frames.
 *
 * The input is read two ways:
 * - as an entry: ent_parse, then ent_next until the end or an error. Every
 *   record it hands out must lie inside the input (ASan checks the bytes are
 *   read), and an entry that reads cleanly is rebuilt with ent_add and must
 *   read back the same;
 * - as a forward record list: ent_add_list into a fresh writer must accept
 *   it exactly when ent_next walks it cleanly from 0, copy it unchanged and
 *   count its records; appended to an entry, it must read back the same.
 * Records of resolved publishes (ENT_BATCH, ENT_BATCH_REF, ENT_DEDUP) are
 * read through their views, which must stay inside the record.
 * The header's count is never trusted: it is only compared, never used to
 * size anything.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "entry.h"
#include "err.h"

static void touch(const uint8_t *p, size_t n)
{
	volatile uint8_t sink = 0;
	for (size_t i = 0; i < n; i++)
		sink ^= p[i];
	(void)sink;
}

/* The views of resolved records: what they hand out lies inside the record. */
static void check_resolved(const struct ent_view *v)
{
	struct ent_batch b;
	struct ent_dedup d;
	const uint8_t *val;
	uint32_t vlen;
	if ((v->type == ENT_BATCH || v->type == ENT_BATCH_REF) && ent_batch_view(v, &b, &val, &vlen) == SL_OK) {
		if (val < v->p || vlen > v->len || val + vlen != v->p + v->len || b.count == 0 ||
		    (v->type == ENT_BATCH_REF && vlen))
			abort();
		touch(val, vlen);
	}
	if (v->type == ENT_DEDUP && ent_dedup_view(v, &d) == SL_OK && (d.count == 0 || v->len != sizeof(d)))
		abort();
}

/* Walk records from *pos; checks each one lies inside p. Returns what the
 * last ent_next returned (0: clean end, -1: malformed), *n the records read. */
static int walk(const uint8_t *p, size_t len, size_t *pos, uint32_t *n)
{
	struct ent_view v;
	int r;
	*n = 0;
	for (;;) {
		size_t before = *pos;
		r = ent_next(p, len, pos, &v);
		if (r != 1)
			break;
		if (*pos <= before || *pos > len || v.p < p + before || v.len > len - (size_t)(v.p - p) ||
		    v.p + v.len > p + *pos)
			abort();
		touch(v.p, v.len);
		check_resolved(&v);
		(*n)++;
	}
	if (r != 0 && r != -1)
		abort();
	if (r == 0 && *pos != len)
		abort();
	return r;
}

/* Records of a and b (from apos, bpos) must match one for one. */
static void same_records(const uint8_t *a, size_t alen, size_t apos, const uint8_t *b, size_t blen, size_t bpos)
{
	struct ent_view x, y;
	int ra, rb;
	while ((ra = ent_next(a, alen, &apos, &x)) == 1) {
		rb = ent_next(b, blen, &bpos, &y);
		if (rb != 1 || x.type != y.type || x.origin_fe != y.origin_fe || x.origin_node != y.origin_node ||
		    x.len != y.len || (x.len && memcmp(x.p, y.p, x.len)))
			abort();
	}
	if (ra != 0 || ent_next(b, blen, &bpos, &y) != 0)
		abort();
}

/* A cleanly read entry, rebuilt record by record with ent_add. */
static void rebuild_entry(const uint8_t *data, size_t size, int64_t ts, size_t start, uint32_t n)
{
	struct ent_writer w = {0};
	struct ent_view v;
	size_t pos = start;
	ent_begin(&w, 1, ts);
	while (ent_next(data, size, &pos, &v) == 1)
		if (ent_add(&w, v.type, v.origin_node, v.origin_fe, v.p, v.len) != SL_OK)
			abort();
	size_t len;
	uint8_t *buf = ent_take(&w, &len);
	int64_t ts2;
	uint32_t count;
	size_t pos2;
	if (!buf || ent_parse(buf, len, &ts2, &count, &pos2) != SL_OK || ts2 != ts || count != n)
		abort();
	same_records(data, size, start, buf, len, pos2);
	free(buf);
	ent_free(&w);
}

static void fuzz_entry(const uint8_t *data, size_t size)
{
	int64_t ts;
	uint32_t count, n;
	size_t start;
	if (ent_parse(data, size, &ts, &count, &start) != SL_OK)
		return;
	if (start > size)
		abort();
	size_t pos = start;
	if (walk(data, size, &pos, &n) == 0)
		rebuild_entry(data, size, ts, start, n);
}

/* The input as a forward list: into a fresh writer, then after a header. */
static void fuzz_forward(const uint8_t *data, size_t size)
{
	size_t pos = 0;
	uint32_t n;
	int clean = walk(data, size, &pos, &n) == 0;

	struct ent_writer w = {0};
	ent_begin(&w, 0, 0);
	int rc = ent_add_list(&w, data, size);
	if (rc != (clean ? SL_OK : SL_EMALFORMED))
		abort();
	if (clean && (w.len != size || w.count != n || (size && memcmp(w.buf, data, size))))
		abort();
	if (!clean && (w.len != 0 || w.count != 0))
		abort();
	ent_free(&w);
	if (!clean)
		return;

	ent_begin(&w, 1, 42);
	if (ent_add(&w, 7, 1, 2, "x", 1) != SL_OK || ent_add_list(&w, data, size) != SL_OK)
		abort();
	size_t len;
	uint8_t *buf = ent_take(&w, &len);
	int64_t ts;
	uint32_t count;
	size_t start;
	if (!buf || ent_parse(buf, len, &ts, &count, &start) != SL_OK || ts != 42 || count != n + 1)
		abort();
	struct ent_view v;
	if (ent_next(buf, len, &start, &v) != 1 || v.type != 7 || v.len != 1)
		abort();
	same_records(data, size, 0, buf, len, start);
	free(buf);
	ent_free(&w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_entry(data, size);
	fuzz_forward(data, size);
	return 0;
}
