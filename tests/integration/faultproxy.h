/*
 * faultproxy.h: a fault-injecting TCP proxy for the cluster tests. One
 * listener per link on a free loopback port forwards every accepted
 * connection to a fixed target port. Per link, the test chooses:
 *   FP_PASS   bytes flow both ways,
 *   FP_DROP   a cut cable: open connections are closed and new ones are
 *             accepted and closed at once (a partition),
 *   FP_DELAY  bytes flow, each chunk held back delay_ms first,
 *   FP_BLACKHOLE  silence: connections stay open (new ones are accepted and
 *             not forwarded) but every byte is discarded; leaving this mode
 *             closes them, as their byte streams have holes.
 *
 * The proxy runs its own libevent loop on its own thread. faultproxy_set
 * returns once the proxy thread applied the mode, so a partition is in
 * effect when it returns. Every socket it makes is close-on-exec, so a
 * process forked by the test does not keep a cut connection open.
 */
#ifndef SLUICE_ITEST_FAULTPROXY_H
#define SLUICE_ITEST_FAULTPROXY_H

#include <stdint.h>

#define FAULTPROXY_LINKS_MAX 16

enum fp_mode { FP_PASS = 0, FP_DROP = 1, FP_DELAY = 2, FP_BLACKHOLE = 3 };

struct faultproxy;

struct fp_link_stats {
	uint64_t accepted;   /* connections accepted */
	uint64_t refused;    /* accepted while dropping, closed at once */
	uint64_t bytes_fwd;  /* bytes written towards the target */
	uint64_t bytes_back; /* bytes written back to the connecting side */
	uint32_t open;       /* connection pairs open now */
};

/* Start the proxy thread with no links. */
int faultproxy_new(struct faultproxy **out);
/* Stop the thread, close every connection and listener, free. NULL is fine. */
void faultproxy_free(struct faultproxy *fp);
/* Listen on a free 127.0.0.1 port (written to *listen_port) and forward to
 * 127.0.0.1:target_port. Returns the link id (>= 0), or -1. Links start in
 * FP_PASS. Call before or after traffic starts. */
int faultproxy_add_link(struct faultproxy *fp, uint16_t target_port, uint16_t *listen_port);
/* Change a link's mode (delay_ms only for FP_DELAY); waits until applied. */
void faultproxy_set(struct faultproxy *fp, int link, enum fp_mode mode, uint32_t delay_ms);
/* Every link back to FP_PASS; waits until applied. */
void faultproxy_heal(struct faultproxy *fp);
/* A snapshot of a link's counters. */
void faultproxy_stats(struct faultproxy *fp, int link, struct fp_link_stats *st);

#endif
