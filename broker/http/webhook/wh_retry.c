/*
 * wh_retry.c: Retry-After (see wh_retry.h). HTTP-dates are parsed by hand,
 * not with strptime: names of days and months must be the English ones
 * whatever the process locale, and every field is range-checked before
 * timegm sees it.
 */
#include <ctype.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "wh_retry.h"

struct cur {
	const char *p, *e;
};

static int lit(struct cur *c, const char *s)
{
	size_t n = strlen(s);

	if ((size_t)(c->e - c->p) < n || memcmp(c->p, s, n) != 0)
		return 0;
	c->p += n;
	return 1;
}

/* exactly w digits (w > 0), or 1..2 digits when w is 0 */
static int num(struct cur *c, int w, int *v)
{
	int k = 0, max = w ? w : 2;

	*v = 0;
	while (k < max && c->p < c->e && isdigit((unsigned char)*c->p)) {
		*v = *v * 10 + (*c->p++ - '0');
		k++;
	}
	return w ? k == w : k > 0;
}

static int month(struct cur *c, int *m)
{
	static const char *names[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	                              "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

	for (int i = 0; i < 12; i++)
		if (lit(c, names[i])) {
			*m = i;
			return 1;
		}
	return 0;
}

/* a day name: "Sun" in IMF-fixdate and asctime, "Sunday" in RFC 850 */
static int wkday(struct cur *c, int lng)
{
	static const char *s[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
	static const char *l[] = {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"};

	for (int i = 0; i < 7; i++)
		if (lit(c, lng ? l[i] : s[i]))
			return 1;
	return 0;
}

static int hms(struct cur *c, struct tm *tm)
{
	return num(c, 2, &tm->tm_hour) && lit(c, ":") && num(c, 2, &tm->tm_min) && lit(c, ":") &&
	       num(c, 2, &tm->tm_sec);
}

static int date_parse(struct cur c, struct tm *tm)
{
	struct cur k = c;
	int y = 0;

	memset(tm, 0, sizeof *tm);
	/* IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT */
	if (wkday(&k, 0) && lit(&k, ", ") && num(&k, 2, &tm->tm_mday) && lit(&k, " ") && month(&k, &tm->tm_mon) &&
	    lit(&k, " ") && num(&k, 4, &y) && lit(&k, " ") && hms(&k, tm) && lit(&k, " GMT") && k.p == k.e) {
		tm->tm_year = y - 1900;
		return 1;
	}
	/* RFC 850: Sunday, 06-Nov-94 08:49:37 GMT (two-digit years: within 50 years, RFC 9110 5.6.7 says
	 * "in the past"; 1970..2069 is as close as a fixed window gets) */
	k = c;
	if (wkday(&k, 1) && lit(&k, ", ") && num(&k, 2, &tm->tm_mday) && lit(&k, "-") && month(&k, &tm->tm_mon) &&
	    lit(&k, "-") && num(&k, 2, &y) && lit(&k, " ") && hms(&k, tm) && lit(&k, " GMT") && k.p == k.e) {
		tm->tm_year = y < 70 ? y + 100 : y;
		return 1;
	}
	/* asctime: Sun Nov  6 08:49:37 1994 */
	k = c;
	if (wkday(&k, 0) && lit(&k, " ") && month(&k, &tm->tm_mon) && lit(&k, " ") && (lit(&k, " ") || 1) &&
	    num(&k, 0, &tm->tm_mday) && lit(&k, " ") && hms(&k, tm) && lit(&k, " ") && num(&k, 4, &y) && k.p == k.e) {
		tm->tm_year = y - 1900;
		return 1;
	}
	return 0;
}

static int tm_ok(const struct tm *tm)
{
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	return tm->tm_mday >= 1 && tm->tm_mday <= mdays[tm->tm_mon] && tm->tm_hour <= 23 && tm->tm_min <= 59 &&
	       tm->tm_sec <= 60 && tm->tm_year >= 0;
}

int wh_retry_after_parse(const char *s, size_t n, int64_t now_ms, int64_t *ms)
{
	struct cur c = {s, s + n};
	struct tm tm;
	int64_t v = 0, t_ms;

	if (!s || !ms)
		return SL_EINVAL;
	while (c.p < c.e && (*c.p == ' ' || *c.p == '\t'))
		c.p++;
	while (c.e > c.p && (c.e[-1] == ' ' || c.e[-1] == '\t'))
		c.e--;
	if (c.p == c.e)
		return SL_EINVAL;
	if (isdigit((unsigned char)*c.p)) {
		for (const char *p = c.p; p < c.e; p++) {
			if (!isdigit((unsigned char)*p))
				return SL_EINVAL;
			if (v <= WH_RETRY_AFTER_S_MAX)
				v = v * 10 + (*p - '0');
		}
		*ms = (v > WH_RETRY_AFTER_S_MAX ? WH_RETRY_AFTER_S_MAX : v) * 1000;
		return SL_OK;
	}
	if (!date_parse(c, &tm) || !tm_ok(&tm))
		return SL_EINVAL;
	t_ms = (int64_t)timegm(&tm) * 1000;
	v = t_ms - now_ms;
	if (v < 0)
		v = 0;
	if (v > (int64_t)WH_RETRY_AFTER_S_MAX * 1000)
		v = (int64_t)WH_RETRY_AFTER_S_MAX * 1000;
	*ms = v;
	return SL_OK;
}
