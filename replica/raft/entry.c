/*
 * entry.c: building and reading raft entry data (see entry.h).
 */
#include <stdlib.h>
#include <string.h>

#include "entry.h"
#include "vec.h"
#include "err.h"

#define ENT_ALIGN(n) (((n) + 7u) & ~(size_t)7u)

void ent_begin(struct ent_writer *e, int with_hdr, int64_t ts_ms)
{
	e->len = 0;
	e->count = 0;
	e->has_hdr = with_hdr;
	if (!with_hdr)
		return;
	if (vec_reserve(&e->buf, &e->cap, 4096)) {
		e->has_hdr = -1; /* reported by ent_add */
		return;
	}
	struct ent_hdr h = {ENT_MAGIC, 0, ts_ms};
	memcpy(e->buf, &h, sizeof(h));
	e->len = sizeof(h);
}

static int ent_reserve(struct ent_writer *e, size_t more)
{
	if (e->has_hdr < 0)
		return SL_ENOMEM;
	return vec_reserve(&e->buf, &e->cap, e->len + more);
}

int ent_add(struct ent_writer *e, uint16_t type, uint32_t origin_node, uint16_t origin_fe, const void *p,
	    uint32_t len)
{
	return ent_add2(e, type, origin_node, origin_fe, NULL, 0, p, len);
}

int ent_add2(struct ent_writer *e, uint16_t type, uint32_t origin_node, uint16_t origin_fe, const void *hdr,
	     uint32_t hlen, const void *p, uint32_t len)
{
	if (len > UINT32_MAX - hlen)
		return SL_ETOOLARGE;
	uint32_t all = hlen + len;
	size_t need = sizeof(struct ent_rec) + ENT_ALIGN((size_t)all);
	int rc = ent_reserve(e, need);
	if (rc)
		return rc;
	struct ent_rec r = {all, type, origin_fe, origin_node, 0};
	uint8_t *d = e->buf + e->len;
	memcpy(d, &r, sizeof(r));
	if (hlen)
		memcpy(d + sizeof(r), hdr, hlen);
	if (len)
		memcpy(d + sizeof(r) + hlen, p, len);
	memset(d + sizeof(r) + all, 0, ENT_ALIGN((size_t)all) - all);
	e->len += need;
	e->count++;
	return SL_OK;
}

int ent_add_list(struct ent_writer *e, const uint8_t *recs, size_t len)
{
	size_t pos = 0;
	struct ent_view v;
	int r;
	uint32_t n = 0;
	while ((r = ent_next(recs, len, &pos, &v)) == 1)
		n++;
	if (r < 0)
		return SL_EMALFORMED;
	if (!len)
		return SL_OK; /* recs and e->buf may both be NULL: no memcpy */
	int rc = ent_reserve(e, len);
	if (rc)
		return rc;
	memcpy(e->buf + e->len, recs, len);
	e->len += len;
	e->count += n;
	return SL_OK;
}

uint8_t *ent_take(struct ent_writer *e, size_t *len)
{
	uint8_t *b = e->buf;
	if (e->has_hdr > 0) {
		struct ent_hdr h;
		memcpy(&h, b, sizeof(h));
		h.count = e->count;
		memcpy(b, &h, sizeof(h));
	}
	*len = e->len;
	e->buf = NULL;
	e->len = e->cap = 0;
	e->count = 0;
	return b;
}

void ent_free(struct ent_writer *e)
{
	free(e->buf);
	memset(e, 0, sizeof(*e));
}

int ent_parse(const uint8_t *p, size_t len, int64_t *ts_ms, uint32_t *count, size_t *pos)
{
	struct ent_hdr h;
	if (len < sizeof(h))
		return SL_EMALFORMED;
	memcpy(&h, p, sizeof(h));
	if (h.magic != ENT_MAGIC)
		return SL_EMALFORMED;
	*ts_ms = h.ts_ms;
	*count = h.count;
	*pos = sizeof(h);
	return SL_OK;
}

int ent_next(const uint8_t *p, size_t len, size_t *pos, struct ent_view *v)
{
	struct ent_rec r;
	if (*pos == len)
		return 0;
	if (*pos > len || len - *pos < sizeof(r))
		return -1;
	memcpy(&r, p + *pos, sizeof(r));
	size_t body = ENT_ALIGN((size_t)r.len);
	if (body < r.len || len - *pos - sizeof(r) < body)
		return -1;
	v->type = r.type;
	v->origin_fe = r.origin_fe;
	v->origin_node = r.origin_node;
	v->p = p + *pos + sizeof(r);
	v->len = r.len;
	*pos += sizeof(r) + body;
	return 1;
}

int ent_batch_view(const struct ent_view *v, struct ent_batch *b, const uint8_t **value, uint32_t *value_len)
{
	if (v->len < sizeof(*b) || (v->type == ENT_BATCH_REF && v->len != sizeof(*b)))
		return SL_EMALFORMED;
	memcpy(b, v->p, sizeof(*b));
	if (b->count == 0 || b->base > UINT64_MAX - b->count)
		return SL_EMALFORMED;
	*value = v->p + sizeof(*b);
	*value_len = v->len - (uint32_t)sizeof(*b);
	return SL_OK;
}

int ent_dedup_view(const struct ent_view *v, struct ent_dedup *d)
{
	if (v->len != sizeof(*d))
		return SL_EMALFORMED;
	memcpy(d, v->p, sizeof(*d));
	return d->count ? SL_OK : SL_EMALFORMED;
}
