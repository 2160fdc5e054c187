/*
 * hdrs.c: the message-header blob of ringmsg.h,
 * repeated [u16 key_len][key][u32 value_len][value], native-endian.
 * Blobs come back from storage and from other processes, so the iterator
 * checks every length against the bytes left before it looks at them.
 */
#include <string.h>

#include "ringmsg.h"

#define HDRS_KEY_MAX 255

int hdrs_next(struct slice blob, size_t *pos, struct slice *k, struct slice *v)
{
	size_t p = *pos;
	if (p == blob.len)
		return 0;
	if (p > blob.len || blob.len - p < 2)
		return -1;
	uint16_t klen;
	memcpy(&klen, blob.base + p, 2);
	p += 2;
	if (klen > HDRS_KEY_MAX || blob.len - p < (size_t)klen + 4)
		return -1;
	*k = slice_make(blob.base + p, klen);
	p += klen;
	uint32_t vlen;
	memcpy(&vlen, blob.base + p, 4);
	p += 4;
	if (blob.len - p < vlen)
		return -1;
	*v = slice_make(vlen ? blob.base + p : NULL, vlen);
	if (klen == 0)
		k->base = NULL;
	*pos = p + vlen;
	return 1;
}

int hdrs_count(struct slice blob, size_t *n, size_t *key_bytes)
{
	struct slice k, v;
	size_t pos = 0;
	int rc;

	*n = 0;
	*key_bytes = 0;
	while ((rc = hdrs_next(blob, &pos, &k, &v)) == 1) {
		(*n)++;
		*key_bytes += k.len + 1;
	}
	return rc;
}

size_t hdrs_put(uint8_t *p, struct slice k, struct slice v)
{
	uint16_t klen = (uint16_t)k.len;
	uint32_t vlen = (uint32_t)v.len;
	memcpy(p, &klen, 2);
	if (k.len)
		memcpy(p + 2, k.base, k.len);
	memcpy(p + 2 + k.len, &vlen, 4);
	if (v.len)
		memcpy(p + 6 + k.len, v.base, v.len);
	return hdrs_entry_bytes(k.len, v.len);
}
