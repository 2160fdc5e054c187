/*
 * shm.h: the one shared-memory segment of a node. The master creates it as a
 * memfd before forking, so every child maps the same pages; it holds no
 * pointers, only offsets, so each process may map it anywhere.
 *
 * Layout: [struct shm_header][struct shm_slot x slots_max]
 *         [struct shm_slot_stats x slots_max]   (metrics.h)
 *         [per frontend i: struct shm_frontend][pub ring i][ack ring i]
 *
 * - pub ring i: frontend i -> logwriter (publish and admin requests)
 * - ack ring i: logwriter -> frontend i (acks)
 * - commit table: one slot per partition (slot numbers are stored in the
 *   topic metadata); end_offset is the committed end (next offset), written
 *   only by the logwriter with release stores; commit_seq is bumped after
 *   every change so a frontend can tell whether anything moved.
 *
 * Eventfds are not in the segment (they are file descriptors): the master
 * creates logwriter_efd and one frontend efd per frontend before fork.
 */
#ifndef SLUICE_SHM_H
#define SLUICE_SHM_H

#define SHM_ROLE_LEADER 3 /* RAFT_LEADER (replica/raft/raft.h; asserted in lw_cluster.c) */

#include <stddef.h>
#include <stdint.h>

#include "metrics.h"
#include "nodes.h"
#include "ring.h"

#define SHM_MAGIC 0x534c4d31u /* "SLM1" */
#define SHM_FRONTENDS_MAX 64

struct shm_slot {
	uint64_t end_offset;    /* committed end: next offset to be written */
	uint64_t first_offset;  /* oldest stored offset (after retention) */
	uint32_t topic_id;      /* 0: slot free */
	uint32_t partition;
	uint64_t pad;
};

struct shm_frontend {
	uint32_t generation;    /* bumped by the master each time frontend i starts */
	uint32_t pid;
	uint64_t connections;   /* stats written by frontend i */
	uint64_t published;
	uint64_t pad[5];
	struct shm_fe_metrics metrics;  /* written by frontend i (metrics.h) */
};

#define SHM_NODES_MAX SL_NODES_MAX

/* Cluster state as the logwriter last saw it (written by the logwriter,
 * read by frontends for ClusterStatus; plain stats, no locking). */
struct shm_cluster_node {
	uint32_t id;
	uint32_t reachable;     /* 1: a frame arrived from it within the election timeout (self: 1) */
	uint64_t match_index;   /* leader's view of its log; 0 unless this node leads */
	int64_t last_contact_ms;
};

struct shm_cluster {
	uint32_t enabled;       /* 0: single node */
	uint32_t role;          /* enum raft_role; SHM_ROLE_LEADER when this node leads */
	uint32_t leader_id;     /* 0: unknown */
	uint32_t n_nodes;
	uint64_t term;
	uint64_t first_index;
	uint64_t last_index;
	uint64_t commit_index;
	uint64_t applied_index;
	uint64_t updated_ms;
	uint64_t epoch;         /* bumped when requests in flight may have been lost (leader or
				   term change, link to the leader lost, logwriter restart):
				   frontends answer UNAVAILABLE to every request pending from
				   before it, and clients retry with the same producer id/sequence */
	struct shm_cluster_node nodes[SHM_NODES_MAX];
};

struct shm_header {
	uint32_t magic;
	uint32_t node_id;
	uint32_t frontends;
	uint32_t slots_max;
	uint64_t ring_bytes;
	uint64_t commit_seq;             /* bumped by the logwriter after commit table changes */
	uint32_t logwriter_generation;   /* bumped by the master each time a logwriter starts */
	uint32_t logwriter_pid;
	uint32_t logwriter_ready;        /* 1 once the logwriter filled the commit table */
	uint32_t logwriter_restarts;
	uint32_t frontend_restarts;
	uint32_t draining;               /* set by the master on SIGTERM */
	int64_t started_ms;
	uint64_t map_bytes;              /* written by the logwriter */
	uint64_t used_bytes;
	uint64_t topics;
	uint64_t instance;               /* random per segment: lets a logwriter tell its
					    stored ring positions belong to this segment */
	uint64_t auth_gen;               /* bumped by the logwriter after principals change */
	uint8_t node_seed[32];           /* random per segment: the key of the principal node, which the
					    node's own clients (the webhook deliverer) authenticate with */
	struct shm_cluster cluster;
	struct shm_lw_metrics lw_metrics; /* written by the logwriter (metrics.h) */
};

/*
 * Every field of the segment that one process writes while another reads it
 * goes through one of these accessors, never a plain load or store: acquire
 * and release where the reader relies on what was written before (commit
 * table, commit_seq, epoch, ready flag, generations), relaxed for counters
 * and status figures. They are the GCC __atomic builtins on plain integers,
 * as common/ring.c uses for head and tail (no casts to _Atomic types).
 */
#define shm_load(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define shm_store(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define shm_add(p, v) __atomic_add_fetch((p), (v), __ATOMIC_ACQ_REL)
#define shm_stat_load(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define shm_stat_store(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define shm_stat_add(p, v) __atomic_add_fetch((p), (v), __ATOMIC_RELAXED)

struct shm {
	void *base;
	size_t bytes;
	struct shm_header *hdr;
	struct shm_slot *slots;
	struct shm_slot_stats *slot_stats; /* slots_max entries, beside the commit table */
};

/* Master: create the memfd segment and initialise it. *fd_out is the memfd. */
int shm_create(struct shm *out, int *fd_out, uint32_t node_id, uint32_t frontends,
	       uint32_t slots_max, size_t ring_bytes);

/* Child (or master): map an existing segment from its memfd. */
int shm_attach(struct shm *out, int fd);

void shm_detach(struct shm *s);

struct shm_frontend *shm_frontend(struct shm *s, uint32_t i);
/* Copy the cluster status field by field (relaxed loads): each field is
 * whole, the set is as consistent as a status display needs. */
void shm_cluster_read(const struct shm_cluster *src, struct shm_cluster *dst);
struct ring *shm_pub_ring(struct shm *s, uint32_t i);
struct ring *shm_ack_ring(struct shm *s, uint32_t i);

#endif
