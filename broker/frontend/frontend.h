/*
 * frontend.h: a frontend process. It terminates the native protocol on a
 * libevent loop, turns publishes and admin requests into ring records for the
 * logwriter, matches acks coming back on its ack ring, and serves reads
 * (subscriptions, fetch, describe) itself from short read-only LMDB
 * transactions up to the committed ends in the commit table. It never writes
 * LMDB.
 */
#ifndef SLUICE_FRONTEND_H
#define SLUICE_FRONTEND_H

#include <stdint.h>

struct config;
struct shm;

struct frontend_args {
	const struct config *cfg;
	struct shm *shm;
	uint32_t index;             /* which rings and efd are ours */
	int listen_fd;              /* inherited native listener (non-blocking) */
	int http_fd;                /* inherited HTTP listener (non-blocking) */
	int efd;                    /* our eventfd: acks available or commit table moved */
	int logwriter_efd;          /* write to wake the logwriter */
};

/* Runs until SIGTERM; returns an exit code. */
int frontend_main(const struct frontend_args *a);

#endif
