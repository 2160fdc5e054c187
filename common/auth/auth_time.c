/*
 * auth_time.c: RFC 3339 to and from epoch seconds (see auth_time.h). The
 * calendar arithmetic is the proleptic Gregorian days-from-civil algorithm
 * (H. Hinnant, "chrono-Compatible Low-Level Date Algorithms"), exact for
 * every year we accept.
 */
#include <string.h>

#include "auth_time.h"
#include "err.h"

#define DAY_S 86400

/* Days from 1970-01-01 to y-m-d. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* The inverse: y-m-d of a day count from 1970-01-01. */
static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
	int64_t era, doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

static int days_in_month(int64_t y, int m)
{
	static const int dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return m == 2 && leap ? 29 : dm[m - 1];
}

/* v as n decimal digits at p, zero-padded (v fits: the caller's ranges). */
static void put_digits(char *p, int v, int n)
{
	for (int i = n - 1; i >= 0; i--, v /= 10)
		p[i] = (char)('0' + v % 10);
}

int auth_time_format(int64_t t_s, char out[AUTH_TIME_CHARS])
{
	/* 0000-01-01 and 10000-01-01 */
	const int64_t lo = -62167219200, hi = 253402300800;
	int64_t days, secs, y;
	int m, d;

	if (t_s < lo || t_s >= hi)
		return SL_ERANGE;
	days = (t_s >= 0 ? t_s : t_s - (DAY_S - 1)) / DAY_S;
	secs = t_s - days * DAY_S;
	civil_from_days(days, &y, &m, &d);
	memcpy(out, "0000-00-00T00:00:00Z", AUTH_TIME_CHARS);
	put_digits(out, (int)y, 4);
	put_digits(out + 5, m, 2);
	put_digits(out + 8, d, 2);
	put_digits(out + 11, (int)(secs / 3600), 2);
	put_digits(out + 14, (int)(secs / 60 % 60), 2);
	put_digits(out + 17, (int)(secs % 60), 2);
	return SL_OK;
}

/* n decimal digits at s into *v; 0 if any is not a digit. */
static int digits(const char *s, int n, int *v)
{
	*v = 0;
	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		*v = *v * 10 + (s[i] - '0');
	}
	return 1;
}

/* The time-offset at s[0..n): Z, z or +HH:MM / -HH:MM, into seconds east. */
static int parse_offset(const char *s, size_t n, int64_t *off_s)
{
	int hh, mm;

	if (n == 1 && (s[0] == 'Z' || s[0] == 'z')) {
		*off_s = 0;
		return SL_OK;
	}
	if (n != 6 || (s[0] != '+' && s[0] != '-') || s[3] != ':' || !digits(s + 1, 2, &hh) || !digits(s + 4, 2, &mm) ||
	    hh > 23 || mm > 59)
		return SL_EMALFORMED;
	*off_s = (int64_t)(hh * 3600 + mm * 60) * (s[0] == '-' ? -1 : 1);
	return SL_OK;
}

int auth_time_parse(const char *s, size_t len, int64_t *t_s, int *frac)
{
	int y, mo, d, h, mi, se, nonzero = 0;
	size_t i = 19;
	int64_t off_s;

	/* "YYYY-MM-DDTHH:MM:SS" then an optional fraction, then the offset */
	if (!s || !t_s || len < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' ||
	    s[16] != ':')
		return SL_EMALFORMED;
	if (!digits(s, 4, &y) || !digits(s + 5, 2, &mo) || !digits(s + 8, 2, &d) || !digits(s + 11, 2, &h) ||
	    !digits(s + 14, 2, &mi) || !digits(s + 17, 2, &se))
		return SL_EMALFORMED;
	if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || se > 60)
		return SL_EMALFORMED;
	if (s[i] == '.') {
		size_t start = ++i;
		for (; i < len && s[i] >= '0' && s[i] <= '9'; i++)
			nonzero |= s[i] != '0';
		if (i == start)
			return SL_EMALFORMED;
	}
	if (i >= len || parse_offset(s + i, len - i, &off_s) != SL_OK)
		return SL_EMALFORMED;
	*t_s = days_from_civil(y, mo, d) * DAY_S + h * 3600 + mi * 60 + se - off_s;
	if (frac)
		*frac = nonzero;
	return SL_OK;
}
