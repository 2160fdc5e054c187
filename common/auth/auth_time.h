/*
 * auth_time.h: RFC 3339 timestamps, the form PASETO's registered claims
 * (iat, nbf, exp) take (docs/02-Implementation-Guide/04-Claims.md), to and
 * from seconds since the Unix epoch. Pure arithmetic: no time zone
 * database, no locale, no libc time functions.
 *
 * We write UTC with a `Z` and whole seconds ("2022-01-01T00:00:00Z"). We
 * read any RFC 3339 date-time: 'T' or 't', fractional seconds of any length,
 * `Z`/`z` or a numeric offset (+01:00, -05:30), and the leap second :60
 * (counted as the next second, as POSIX time does). Years 0000 to 9999.
 */
#ifndef SLUICE_AUTH_TIME_H
#define SLUICE_AUTH_TIME_H

#include <stddef.h>
#include <stdint.h>

#define AUTH_TIME_CHARS 21 /* "YYYY-MM-DDTHH:MM:SSZ" and the NUL */

/* Write t_s as "YYYY-MM-DDTHH:MM:SSZ" (NUL-terminated) into out.
 * SL_ERANGE if the year is outside 0000..9999. */
int auth_time_format(int64_t t_s, char out[AUTH_TIME_CHARS]);

/* Parse s[0..len) into *t_s: whole seconds, rounded down. *frac (may be
 * NULL) is 1 when a non-zero fraction of a second was dropped, so a caller
 * can round up instead where that is the safe side (a not-before time).
 * SL_EMALFORMED for anything that is not an RFC 3339 date-time. */
int auth_time_parse(const char *s, size_t len, int64_t *t_s, int *frac);

#endif
