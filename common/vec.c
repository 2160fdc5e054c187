/*
 * vec.c: vec_grow (common/vec.h).
 */
#include <stdint.h>
#include <stdlib.h>

#include "err.h"
#include "vec.h"

int vec_grow(void **base, size_t *cap, size_t need, size_t elem_size)
{
	if (need <= *cap)
		return SL_OK;
	size_t n = *cap ? *cap : 16;
	while (n < need) {
		if (n > SIZE_MAX / 2)
			return SL_ENOMEM;
		n *= 2;
	}
	if (elem_size && n > SIZE_MAX / elem_size)
		return SL_ENOMEM;
	void *q = realloc(*base, n * elem_size);
	if (!q)
		return SL_ENOMEM;
	*base = q;
	*cap = n;
	return SL_OK;
}
