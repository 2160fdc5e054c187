/*
 * log.h: one-line logging to stderr with process role and pid, e.g.
 *   2026-11-23T10:00:00.123Z sluiced[1234] logwriter: committed 512 records
 * The role is set once per process after fork (log_set_role).
 */
#ifndef SLUICE_LOG_H
#define SLUICE_LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

void log_set_role(const char *role);
void log_set_level(enum log_level lvl);
void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

/* Wall-clock milliseconds since the epoch, and monotonic nanoseconds. */
long long time_now_ms(void);
unsigned long long time_mono_ns(void);

#endif
