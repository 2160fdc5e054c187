/*
 * slice.h: a borrowed byte range. Whoever hands a slice out says how long it
 * stays valid; a slice never owns its bytes.
 */
#ifndef SLUICE_SLICE_H
#define SLUICE_SLICE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct slice {
	const uint8_t *base;
	size_t len;
};

static inline struct slice slice_make(const void *p, size_t n)
{
	struct slice s = {(const uint8_t *)p, n};
	return s;
}

static inline struct slice slice_cstr(const char *s)
{
	return slice_make(s, s ? strlen(s) : 0);
}

static inline int slice_eq(struct slice a, struct slice b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.base, b.base, a.len) == 0);
}

/* Big-endian helpers used by keys and wire formats. */
static inline void be_put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);  p[3] = (uint8_t)v;
}

static inline uint32_t be_get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void be_put64(uint8_t *p, uint64_t v)
{
	be_put32(p, (uint32_t)(v >> 32));
	be_put32(p + 4, (uint32_t)v);
}

static inline uint64_t be_get64(const uint8_t *p)
{
	return (uint64_t)be_get32(p) << 32 | be_get32(p + 4);
}

#endif
