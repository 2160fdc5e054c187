/*
 * vec.h: the one growable-array helper. An array is a pointer, a length and
 * a capacity kept by the caller; vec_reserve makes room for `need` elements
 * (doubling, at least 16), so appends are amortised O(1).
 *
 *     struct rec *recs = NULL; size_t n = 0, cap = 0;
 *     if (vec_reserve(&recs, &cap, n + 1)) return SL_ENOMEM;
 *     recs[n++] = r;
 *     ...
 *     free(recs);
 *
 * Elements are moved by realloc, so never keep pointers into the array
 * across a reserve.
 */
#ifndef SLUICE_VEC_H
#define SLUICE_VEC_H

#include <stddef.h>

/* Room for `need` elements of elem_size bytes in *base (capacity *cap).
 * SL_OK, or SL_ENOMEM (then *base and *cap are unchanged). */
int vec_grow(void **base, size_t *cap, size_t need, size_t elem_size);

#define vec_reserve(basep, capp, need) vec_grow((void **)(basep), (capp), (need), sizeof(**(basep)))

#endif
