/*
 * notify_test.c: sluiced speaks systemd's notify protocol (Type=notify).
 * The test plays systemd: it owns a unix datagram socket, starts sluiced
 * with NOTIFY_SOCKET naming it (and WATCHDOG_USEC, as WatchdogSec sets),
 * and expects READY=1 once the node serves, WATCHDOG=1 pings, and
 * STOPPING=1 when SIGTERM starts the drain.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "harness.h"

static struct itest_node node;
static int sock = -1;

static void setup(void)
{
	cr_assert_eq(itest_node_init(&node), 0);
}

static void teardown(void)
{
	if (sock >= 0)
		close(sock);
	sock = -1;
	itest_node_destroy(&node);
}

TestSuite(notify, .init = setup, .fini = teardown, .timeout = 120);

/* Wait (bounded) for a datagram holding the line want; 0 when it came. */
static int wait_for(const char *want, int timeout_ms)
{
	long long deadline = itest_now_ms() + timeout_ms;
	char buf[4096];

	while (itest_now_ms() < deadline) {
		struct pollfd p = {sock, POLLIN, 0};
		if (poll(&p, 1, 100) <= 0)
			continue;
		ssize_t n = recv(sock, buf, sizeof(buf) - 1, 0);
		if (n <= 0)
			continue;
		buf[n] = 0;
		for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
			if (strcmp(line, want) == 0)
				return 0;
	}
	return -1;
}

Test(notify, ready_watchdog_then_stopping)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};

	cr_assert_lt(strlen(node.dir) + sizeof("/notify.sock"), sizeof(a.sun_path));
	memcpy(a.sun_path, node.dir, strlen(node.dir));
	memcpy(a.sun_path + strlen(node.dir), "/notify.sock", sizeof("/notify.sock"));
	sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(sock, 0);
	cr_assert_eq(bind(sock, (struct sockaddr *)&a, sizeof(a)), 0);
	setenv("NOTIFY_SOCKET", a.sun_path, 1);
	setenv("WATCHDOG_USEC", "200000", 1);
	int rc = itest_node_start(&node);
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	cr_assert_eq(rc, 0, "sluiced did not become ready");

	cr_assert_eq(wait_for("READY=1", ITEST_READY_MS), 0, "no READY=1");
	cr_assert_eq(wait_for("WATCHDOG=1", ITEST_READY_MS), 0, "no WATCHDOG=1 with WATCHDOG_USEC set");
	cr_assert_eq(itest_node_stop(&node), 0);
	cr_assert_eq(wait_for("STOPPING=1", 1000), 0, "no STOPPING=1 on SIGTERM");
}
