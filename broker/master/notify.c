/*
 * notify.c: systemd notifications of the master (notify.h). Readiness is
 * polled every NOTIFY_READY_POLL_MS until it is sent; the watchdog is
 * pinged at half its period, as sd_watchdog_enabled(3) advises. Only the
 * master notifies: its children inherit NOTIFY_SOCKET but never use it.
 */
#include <systemd/sd-daemon.h>

#include "log.h"
#include "notify.h"

#define NOTIFY_READY_POLL_MS 50

void notify_init(struct notify *n)
{
	uint64_t usec = 0;

	n->ready_sent = 0;
	n->watchdog_ms = 0;
	n->watchdog_next_ms = 0;
	if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
		n->watchdog_ms = (int64_t)(usec / 2000) > 0 ? (int64_t)(usec / 2000) : 1;
		log_info("systemd watchdog: pinging every %lld ms", (long long)n->watchdog_ms);
	}
}

int notify_tick(struct notify *n, int ready)
{
	int64_t now = time_now_ms();
	int wait = -1;

	if (!n->ready_sent && ready) {
		sd_notify(0, "READY=1\nSTATUS=serving");
		n->ready_sent = 1;
	}
	if (!n->ready_sent)
		wait = NOTIFY_READY_POLL_MS;
	if (n->watchdog_ms) {
		if (now >= n->watchdog_next_ms) {
			sd_notify(0, "WATCHDOG=1");
			n->watchdog_next_ms = now + n->watchdog_ms;
		}
		int64_t left = n->watchdog_next_ms - now;
		if (wait < 0 || left < wait)
			wait = (int)left;
	}
	return wait;
}

void notify_stopping(struct notify *n)
{
	sd_notify(0, "STOPPING=1\nSTATUS=draining");
}
