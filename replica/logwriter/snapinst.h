/*
 * snapinst.h: installing a snapshot received from the leader, as a durable
 * state transition that a restart (after a crash or a power loss at any
 * instant) either completes or discards, never half-does.
 *
 * States of the data dir, in order:
 *   A  receiving  snapshot-in.mdb being written; no snapshot-in.meta
 *   B  complete   snapshot-in.mdb synced, then snapshot-in.meta written to a
 *                 temporary name, synced and renamed into place (the commit
 *                 point), directory synced
 *   C  installed  snapshot-in.mdb renamed over data.mdb (lock.mdb removed),
 *                 directory synced; snapshot-in.meta still there
 *   D  adopted    the logwriter took the copy over in one synced LMDB
 *                 transaction (its own identity, term and vote, the copy's
 *                 raft log dropped); then snapshot-in.meta is removed
 *
 * snapinst_recover runs in the master before any child starts and after a
 * logwriter exits to install: A is discarded (the old data.mdb is untouched
 * and keeps every entry this node acknowledged), B becomes C. The logwriter
 * adopts in state C only: data.mdb must belong to another node (the copy
 * carries the leader's id in meta "raft/node"); a meta file beside a
 * data.mdb that is already this node's is what is left of D and is removed
 * without touching the log.
 */
#ifndef SLUICE_SNAPINST_H
#define SLUICE_SNAPINST_H

#include <stdint.h>

/* This node's term and vote when the snapshot completed: the adopted copy
 * takes them back, so the node never votes twice in a term. */
struct snapinst_meta {
	uint64_t magic;         /* SNAPINST_MAGIC */
	uint64_t term;
	uint64_t vote;
	uint64_t check;         /* term ^ vote ^ magic: a torn write is refused */
};

#define SNAPINST_MAGIC 0x534e415049303031ull /* "SNAPI001" */

/* Paths inside a data dir (buf of at least 4200 bytes). */
void snapinst_path(char *buf, size_t size, const char *dir, const char *name);

/* B: snapshot-in.mdb is complete (the caller synced it): commit the meta. */
int snapinst_commit(const char *dir, uint64_t term, uint64_t vote);

/* Master, before starting the logwriter: discard A, complete B into C.
 * *installed = 1 when this call renamed a copy into place. */
int snapinst_recover(const char *dir, int *installed);

/* The committed meta (states B-D): SL_OK, SL_ENOTFOUND, or SL_ECORRUPT
 * (a torn meta: treated as absent by callers after removing it). */
int snapinst_meta_read(const char *dir, struct snapinst_meta *out);

/* D: the copy is adopted; forget the meta (and sync the directory). */
void snapinst_meta_remove(const char *dir);

#endif
