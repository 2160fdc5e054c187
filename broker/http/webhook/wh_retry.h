/*
 * wh_retry.h: the Retry-After response header (RFC 9110 10.2.3) as a delay,
 * for the delivery scheduler. Pure (fuzzed by tests/fuzz/wh_fuzz.c).
 *
 * Accepted: delta-seconds (digits only; clamped at WH_RETRY_AFTER_S_MAX) or
 * an HTTP-date in any of the three forms recipients must read: IMF-fixdate
 * ("Sun, 06 Nov 1994 08:49:37 GMT"), RFC 850 ("Sunday, 06-Nov-94 08:49:37
 * GMT") and asctime ("Sun Nov  6 08:49:37 1994"). Leading and trailing
 * spaces and tabs are ignored; anything else is refused.
 */
#ifndef SLUICE_WH_RETRY_H
#define SLUICE_WH_RETRY_H

#include <stddef.h>
#include <stdint.h>

#define WH_RETRY_AFTER_S_MAX (7 * 24 * 3600) /* a longer wait is read as a week */

/* The delay in milliseconds that s[0..n) asks for, relative to now_ms (the
 * wall clock, ms since the epoch; a date in the past is 0). SL_OK and *ms,
 * or SL_EINVAL (*ms untouched). */
int wh_retry_after_parse(const char *s, size_t n, int64_t now_ms, int64_t *ms);

#endif
