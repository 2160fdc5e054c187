/*
 * raft.h: the consensus module, a pure state machine in the style of
 * etcd-io/raft. It does no I/O and reads no clock: the host feeds it ticks,
 * peer messages and proposals, and collects a "ready" holding what to persist,
 * what to send and what to apply. That is what lets tests/sim run the same
 * code under a simulated network and disk with a seed that reproduces a run.
 *
 * Features: leader election with pre-vote (a node that cannot win does not
 * bump terms), check-quorum (a leader that has not heard from a majority for
 * an election timeout steps down) with leader lease (a follower that heard
 * from a live leader within the election timeout ignores vote requests that
 * are not forced by a transfer), leadership transfer (TIMEOUT_NOW), pipelined
 * appends with a bounded in-flight window per peer, fast back-off on reject
 * (reject_hint), log compaction and snapshots (the host owns snapshot data;
 * the module only tracks its index and term). Membership is fixed at start.
 *
 * The host loop:
 *     raft_tick() every tick; raft_step() for every received message;
 *     raft_propose() for new data (leader only);
 *     if (raft_ready(r, &rd)) {
 *         send the rd.msgs for which raft_msg_early() is 1 (a leader's
 *           appends: its own fsync then overlaps the followers');
 *         persist rd.hs if rd.vote_changed (hs.commit is informational,
 *           hs_changed says it moved too), and rd.entries (they replace any
 *           stored entries with index >= rd.entries[0].index), durably;
 *         if rd.snapshot_index: install the received snapshot first;
 *         send the other rd.msgs;
 *         apply rd.committed in order;
 *         raft_advance(r, &rd);
 *     }
 * Pointers in rd stay valid until raft_advance(); between raft_ready() and
 * raft_advance() the host calls nothing else on r.
 *
 * Safety rests on the host persisting hs and entries (synced) before sending
 * rd.msgs other than the early ones: vote grants and append acks depend on
 * them. A leader's appends may go first (etcd-io/raft allows the same)
 * because the leader counts itself toward a commit only for what the host
 * has persisted (raft_advance), so a commit still means a majority of
 * durable copies.
 *
 * Every message carries a group id (always 0 for now) so that one raft group
 * per shard is an extension, not a rewrite.
 */
#ifndef SLUICE_RAFT_H
#define SLUICE_RAFT_H

#include <stddef.h>
#include <stdint.h>

#include "nodes.h"

#define RAFT_NODES_MAX SL_NODES_MAX

enum raft_role {
	RAFT_FOLLOWER = 0,
	RAFT_PRECANDIDATE = 1,
	RAFT_CANDIDATE = 2,
	RAFT_LEADER = 3,
};

enum raft_entry_type {
	RAFT_ENTRY_NORMAL = 0,  /* host data */
	RAFT_ENTRY_NOOP = 1,    /* appended by a new leader; data empty; the host skips it */
};

struct raft_entry {
	uint64_t term;
	uint64_t index;
	uint32_t type;
	uint32_t len;
	uint8_t *data;          /* owned by the module (malloc); may be NULL when len is 0 */
};

enum raft_msg_type {
	RAFT_MSG_PREVOTE = 1,       /* term = candidate's term + 1 (not adopted); index/log_term = last log */
	RAFT_MSG_PREVOTE_RESP = 2,  /* reject = 0: granted; term = the term asked for (or own if higher) */
	RAFT_MSG_VOTE = 3,          /* index/log_term = last log; force = 1 after TIMEOUT_NOW */
	RAFT_MSG_VOTE_RESP = 4,
	RAFT_MSG_APPEND = 5,        /* index/log_term = entry before entries[0]; commit = leader commit */
	RAFT_MSG_APPEND_RESP = 6,   /* ok: index = last index matched; reject: index = rejected prev index,
				       reject_hint = follower's last index */
	RAFT_MSG_HEARTBEAT = 7,     /* commit = min(leader commit, peer match) */
	RAFT_MSG_HEARTBEAT_RESP = 8,
	RAFT_MSG_TIMEOUT_NOW = 9,   /* leader -> transferee: campaign now, forced */
	RAFT_MSG_SNAPSHOT = 10,     /* index/log_term = snapshot's last included entry; the host
				       attaches the snapshot data when it sends this */
};

struct raft_msg {
	uint32_t type;
	uint32_t group;
	uint64_t from, to;
	uint64_t term;
	uint64_t log_term;
	uint64_t index;
	uint64_t commit;
	uint64_t reject_hint;
	uint32_t reject;
	uint32_t force;
	const struct raft_entry *entries; /* in raft_step: borrowed, copied by the module */
	size_t n_entries;
};

struct raft_hardstate {
	uint64_t term;
	uint64_t vote;          /* 0: none */
	uint64_t commit;        /* informational: the host may persist it */
};

struct raft_config {
	uint64_t id;                       /* this node, non-zero */
	uint64_t nodes[RAFT_NODES_MAX];    /* every voter, this node included */
	size_t n_nodes;
	uint32_t election_ticks;           /* randomised in [election_ticks, 2 * election_ticks) */
	uint32_t heartbeat_ticks;          /* < election_ticks */
	uint64_t seed;                     /* for the randomised election timeout */
	size_t msg_bytes_max;              /* entry data per APPEND (at least one entry is sent); 0: 1 MiB */
	uint32_t inflight_max;             /* APPENDs in flight per peer before waiting for acks; 0: 64, max 256 */
	uint32_t group;                    /* raft group id carried in messages (0) */
};

struct raft_ready {
	struct raft_hardstate hs;
	int hs_changed;                    /* term, vote or commit changed */
	int vote_changed;                  /* term or vote changed: durable before any message */
	const struct raft_entry *entries;  /* to persist; contiguous indices */
	size_t n_entries;
	uint64_t snapshot_index;           /* non-zero: a received snapshot to install (log reset) */
	uint64_t snapshot_term;
	const struct raft_msg *msgs;
	size_t n_msgs;
	const struct raft_entry *committed;/* to apply, in order; persisted before (or in this ready) */
	size_t n_committed;
};

struct raft_peer_status {
	uint64_t id;
	uint64_t match;                    /* leader's view; 0 elsewhere */
	uint64_t next;
	int recent_active;                 /* leader: heard from it within the election timeout */
};

struct raft_status {
	uint64_t id;
	enum raft_role role;
	uint64_t term;
	uint64_t vote;
	uint64_t leader;                   /* 0: unknown */
	uint64_t commit;
	uint64_t applied;
	uint64_t first_index;              /* first entry held in memory (snapshot_index + 1) */
	uint64_t last_index;
	uint64_t last_term;
	uint64_t transferee;               /* leader transferring to this node, 0: none */
	size_t n_peers;
	struct raft_peer_status peers[RAFT_NODES_MAX];
};

struct raft;

/*
 * Create a node from its persisted state: hs (NULL: fresh), the snapshot the
 * log starts after (0, 0 for none), the stored entries after it (contiguous,
 * copied), and the index already applied by the host (committed entries with
 * a higher index come back in readies). Returns NULL on a bad config or when
 * out of memory.
 */
struct raft *raft_new(const struct raft_config *c, const struct raft_hardstate *hs, uint64_t snap_index,
		      uint64_t snap_term, const struct raft_entry *ents, size_t n, uint64_t applied);
void raft_free(struct raft *r);

void raft_tick(struct raft *r);

/* A message from a peer (m->to must be this node; others are ignored).
 * Returns SL_OK, or SL_EINVAL for a message that makes no sense (dropped). */
int raft_step(struct raft *r, const struct raft_msg *m);

/*
 * Leader only: append data (malloc'd; ownership passes to the module, also on
 * error, where it is freed) as one entry. *index_out (may be NULL) gets its
 * index. SL_EUNAVAILABLE when not leader or while transferring leadership.
 */
int raft_propose(struct raft *r, uint8_t *data, size_t len, uint64_t *index_out);

/* Leader only: hand leadership to `to` (caught up first, then TIMEOUT_NOW).
 * Proposals are refused until it completes or an election timeout passes.
 * SL_EUNAVAILABLE when not leader, SL_EINVAL for an unknown node or self. */
int raft_transfer_leader(struct raft *r, uint64_t to);

/* 1 and fills rd when there is something to persist, send or apply; 0 if not. */
int raft_ready(struct raft *r, struct raft_ready *rd);
/* The host did everything rd asked. */
void raft_advance(struct raft *r, const struct raft_ready *rd);

/* 1 if m (one of rd's messages) may be sent before rd is persisted: a
 * leader's appends, when its term and vote did not change in rd. */
int raft_msg_early(const struct raft_ready *rd, const struct raft_msg *m);

/* The host has a snapshot covering every entry up to `index` (applied) and
 * may drop them: frees entries <= index from memory. A peer that needs one
 * of them later gets a RAFT_MSG_SNAPSHOT. index must be <= applied. */
void raft_compact(struct raft *r, uint64_t index);

/* The host sent a snapshot to `peer` and it failed (or succeeded): lets the
 * leader resume normal appends to it. Until this is called after a
 * RAFT_MSG_SNAPSHOT, the leader sends that peer nothing more. */
void raft_snapshot_done(struct raft *r, uint64_t peer, int ok);

/* The host could not deliver to `peer` (link down): stop pipelining to it
 * until it answers again. */
void raft_report_unreachable(struct raft *r, uint64_t peer);

void raft_status(const struct raft *r, struct raft_status *st);

/* Term of entry `index` if known (snapshot index or held in memory): 1 and *term, else 0. */
int raft_term_at(const struct raft *r, uint64_t index, uint64_t *term);

#endif
