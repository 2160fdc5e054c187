/*
 * logwriter.h: the node's only LMDB writer, a child process of sluiced.
 * It drains every frontend's publish ring in batches, assigns offsets, writes
 * one LMDB transaction per batch (group commit), syncs, then publishes the
 * new committed ends in the commit table, wakes the frontends and pushes acks.
 * It opens LMDB itself after fork.
 */
#ifndef SLUICE_LOGWRITER_H
#define SLUICE_LOGWRITER_H

#include <stdint.h>

struct config;
struct shm;

struct logwriter_args {
	const struct config *cfg;
	struct shm *shm;
	int self_efd;               /* written by frontends when they push into an empty-and-sleeping ring */
	const int *frontend_efds;   /* cfg->frontends eventfds, one per frontend */
};

/* Exit code of a logwriter that received a snapshot in
 * <data_dir>/snapshot-in.mdb: the master stops the frontends, puts it in
 * place of data.mdb and starts everything again. */
#define LOGWRITER_EXIT_RESEED 75

/* Runs until SIGTERM (drains what is in the rings first). Returns an exit code. */
int logwriter_main(const struct logwriter_args *a);

#endif
