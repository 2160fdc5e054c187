/*
 * pubbatch.c: the PublishBatch record layout (common/pubbatch.h). Lengths are
 * checked against the bytes left before anything is looked at: these bytes
 * come from clients.
 */
#include <string.h>

#include "err.h"
#include "pubbatch.h"
#include "ringmsg.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "PublishBatch records are little-endian: the host order");

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

int pubbatch_next(struct slice recs, size_t *pos, struct slice *key, struct slice *headers, struct slice *payload)
{
	size_t p = *pos;
	if (p == recs.len)
		return 0;
	if (p > recs.len || recs.len - p < PUBBATCH_REC_HDR)
		return -1;
	uint64_t kl = get32(recs.base + p), hl = get32(recs.base + p + 4), pl = get32(recs.base + p + 8);
	p += PUBBATCH_REC_HDR;
	if (kl + hl + pl > recs.len - p)
		return -1;
	*key = slice_make(recs.base + p, (size_t)kl);
	*headers = slice_make(recs.base + p + kl, (size_t)hl);
	*payload = slice_make(recs.base + p + kl + hl, (size_t)pl);
	*pos = p + (size_t)(kl + hl + pl);
	return 1;
}

int pubbatch_check(struct slice recs, uint32_t count, const char **why)
{
	size_t pos = 0;
	uint32_t n = 0;
	struct slice k, h, v, hk, hv;
	int r;
	if (count == 0 || count > PUBBATCH_COUNT_MAX) {
		*why = "count must be 1 to 65536";
		return SL_EMALFORMED;
	}
	while ((r = pubbatch_next(recs, &pos, &k, &h, &v)) == 1) {
		size_t hp = 0;
		int hr;
		if (++n > count)
			break;
		while ((hr = hdrs_next(h, &hp, &hk, &hv)) == 1)
			;
		if (hr < 0) {
			*why = "a record's headers are malformed";
			return SL_EMALFORMED;
		}
	}
	if (r < 0) {
		*why = "a record's lengths run past the batch";
		return SL_EMALFORMED;
	}
	if (n != count) {
		*why = "count does not match the records";
		return SL_EMALFORMED;
	}
	return SL_OK;
}

size_t pubbatch_put(uint8_t *p, struct slice key, struct slice headers, struct slice payload)
{
	uint32_t l[3] = {(uint32_t)key.len, (uint32_t)headers.len, (uint32_t)payload.len};
	memcpy(p, l, sizeof(l));
	uint8_t *q = p + PUBBATCH_REC_HDR;
	if (key.len)
		memcpy(q, key.base, key.len);
	q += key.len;
	if (headers.len)
		memcpy(q, headers.base, headers.len);
	q += headers.len;
	if (payload.len)
		memcpy(q, payload.base, payload.len);
	return PUBBATCH_REC_HDR + key.len + headers.len + payload.len;
}
