/*
 * notify.h: the master's systemd service notifications (sd_notify from
 * libsystemd): READY=1 once the node serves, WATCHDOG=1 from the master's
 * loop while systemd asks for it (WatchdogSec, WATCHDOG_USEC), STOPPING=1
 * when draining begins. Without NOTIFY_SOCKET (not under systemd, or
 * Type=simple) every call is a cheap no-op.
 */
#ifndef SLUICE_NOTIFY_H
#define SLUICE_NOTIFY_H

#include <stdint.h>

struct notify {
	int ready_sent;
	int64_t watchdog_ms;      /* 0: no watchdog asked for */
	int64_t watchdog_next_ms;
};

void notify_init(struct notify *n);
/* Call from the loop. ready: the node serves now (see master.c). Returns
 * how many ms the loop may sleep before it must call again, or -1 for no
 * limit. */
int notify_tick(struct notify *n, int ready);
void notify_stopping(struct notify *n);

#endif
