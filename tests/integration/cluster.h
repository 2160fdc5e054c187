/*
 * cluster.h: a three-node sluiced cluster on loopback for the fault tests,
 * built on the harness (one struct itest_node per node: client port, data
 * dir, sluiced.log). Node index i (0..2) runs node id i+1.
 *
 * Peer links go through a faultproxy: node i reaches node j on the proxy
 * link i->j (its --peers lists the proxy's port for j and its own real peer
 * port for itself), which forwards to node j's real peer port. Isolating a
 * node blocks every link into and out of it.
 *
 * Caveats as in harness.h: start, stop and restart nodes from the test's main
 * thread (the death signal follows the forking thread); call cluster_destroy
 * from criterion's fini. sluiced is exec'd with every inherited descriptor
 * above stderr closed, so sockets of the test's own threads never keep a
 * connection alive inside a node.
 */
#ifndef SLUICE_ITEST_CLUSTER_H
#define SLUICE_ITEST_CLUSTER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "faultproxy.h"
#include "harness.h"

#define CLUSTER_N 3
#define CLUSTER_ELECTION_MS 500
#define CLUSTER_HEARTBEAT_MS 50

struct cluster {
	struct itest_node node[CLUSTER_N];
	uint16_t peer_port[CLUSTER_N];             /* node i's real peer listener */
	uint16_t proxy_port[CLUSTER_N][CLUSTER_N]; /* link i->j listens here */
	int link[CLUSTER_N][CLUSTER_N];            /* faultproxy link ids; -1 on the diagonal */
	struct faultproxy *fp;
	char peers[CLUSTER_N][512]; /* --peers of node i */
	char clients[512];          /* --clients (same for every node) */
	char servers[256];          /* "addr1,addr2,addr3" */
	int paused[CLUSTER_N];
};

/* One node's view, from sluice_sync_cluster_status. */
struct cluster_view {
	int ok; /* answered */
	uint32_t leader_id;
	char role[16];
	uint64_t term, last_index, commit_index, applied_index;
};

/* Dirs, ports, proxy links and arguments; starts nothing but the proxy. */
int cluster_init(struct cluster *c, uint32_t frontends);
/* Spawn every node, then wait until each serves its client port (bounded). */
int cluster_start_all(struct cluster *c);
/* Spawn node i on its dir and ports and wait until it serves. */
int cluster_start(struct cluster *c, int i);
/* SIGTERM node i (SIGKILL after ITEST_STOP_MS); 0 on a clean exit 0. */
int cluster_stop(struct cluster *c, int i);
/* SIGTERM every node at once, then wait for all; 0 if all exited cleanly. */
int cluster_stop_all(struct cluster *c);
/* kill -9 node i's master (its children die by PDEATHSIG) and reap. */
int cluster_kill9(struct cluster *c, int i);
/* kill -9 every master at once. */
int cluster_kill9_all(struct cluster *c);
/* kill -9 the child of node i whose comm is comm ("sluice-logwriter",
 * "sluice-fe-0"); returns its pid, or 0 if none was found. */
pid_t cluster_kill_child(struct cluster *c, int i, const char *comm);
/* Wait until node i's master has a live child comm other than old. */
pid_t cluster_wait_child_replaced(struct cluster *c, int i, const char *comm, pid_t old, int timeout_ms);
/* SIGSTOP / SIGCONT every process of node i (the master, then its children). */
int cluster_pause(struct cluster *c, int i);
int cluster_resume(struct cluster *c, int i);

/* Block every peer link into and out of node i (mode FP_DROP or
 * FP_BLACKHOLE); cluster_heal lets everything pass again. */
void cluster_isolate(struct cluster *c, int i, enum fp_mode mode);
void cluster_heal(struct cluster *c);
/* Delay every peer link into and out of node i by delay_ms. */
void cluster_delay(struct cluster *c, int i, uint32_t delay_ms);

/* Ask node i alone (bounded by timeout_ms); v->ok says whether it answered. */
void cluster_view_get(struct cluster *c, int i, int timeout_ms, struct cluster_view *v);
/* The leader's index: the leader_id of the highest term among the nodes that
 * answer, confirmed by that node itself saying it leads in that term; -1 if
 * there is none now. skip (or -1) is a node not to ask. */
int cluster_leader(struct cluster *c, int skip, uint64_t *term);
/* Poll cluster_leader until a leader other than not_idx (or -1) is found,
 * and at least one other running node follows it in the same term. */
int cluster_wait_leader(struct cluster *c, int not_idx, int timeout_ms, uint64_t *term);
/* Wait until every running node answers with the same leader, the same
 * commit index, and applied == commit; 0, or -1 with a summary on stderr. */
int cluster_wait_converged(struct cluster *c, int timeout_ms);

/* Print each node's log tail (failing tests). */
void cluster_dump_logs(const struct cluster *c);
/* Stop everything that runs, free the proxy, remove dirs. Idempotent. */
void cluster_destroy(struct cluster *c);

#endif
