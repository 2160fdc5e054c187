/*
 * log.c: one line per call on stderr, written with a single write(2) so lines
 * from the master and its children (which share stderr) do not interleave.
 * The pid is read on every call because the role and pid change after fork.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define LOG_LINE_MAX 4096

static char log_role[32] = "master";
static enum log_level log_level_min = LOG_INFO;

void log_set_role(const char *role)
{
	snprintf(log_role, sizeof(log_role), "%s", role ? role : "");
}

void log_set_level(enum log_level lvl)
{
	log_level_min = lvl;
}

static size_t log_timestamp(char *buf, size_t n)
{
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	int w = snprintf(buf, n, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
	                 tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
	return w < 0 ? 0 : (size_t)w;
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	if (lvl < log_level_min)
		return;
	char line[LOG_LINE_MAX];
	size_t n = log_timestamp(line, sizeof(line));
	int w = snprintf(line + n, sizeof(line) - n, "sluiced[%ld] %s: ", (long)getpid(), log_role);
	if (w > 0)
		n += (size_t)w;
	if (n < sizeof(line)) {
		va_list ap;
		va_start(ap, fmt);
		w = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
		va_end(ap);
		if (w > 0)
			n += (size_t)w;
	}
	/* Truncated lines still end with a newline. */
	if (n > sizeof(line) - 1)
		n = sizeof(line) - 1;
	line[n++] = '\n';
	ssize_t r = write(STDERR_FILENO, line, n);
	(void)r;
}

long long time_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

unsigned long long time_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec;
}
