/*
 * lw_int.h: logwriter internals shared by logwriter.c (request handling,
 * the single-node group commit) and lw_cluster.c (raft mode).
 */
#ifndef SLUICE_LW_INT_H
#define SLUICE_LW_INT_H

#include <signal.h>
#include <stdint.h>

#include "config.h"
#include "ring.h"
#include "ringmsg.h"
#include "shm.h"
#include "store.h"

/* One partition's state: indexed by commit-table slot. */
struct lw_part {
	uint32_t topic_id;
	uint32_t partition;
	uint64_t end;              /* next offset to assign */
	struct store_record *pend; /* records of the open batch */
	size_t pend_n, pend_cap;
	int touched;               /* end moved in the open batch */
	uint64_t stat_msgs;        /* stored since the slot was last published (metrics) */
	uint64_t stat_bytes;
};

struct lw_topic {
	struct store_topic meta;
	int live;
};

/* A run of consecutive requests of one frontend that got the same answer
 * shape: `count` records, offsets first_offset, first_offset+1, ... */
struct lw_run {
	uint32_t count;
	uint32_t partition;
	uint64_t first_offset;
	uint32_t err;
	uint32_t flags;
	int64_t ts;                /* 0: the batch's time; a duplicate keeps its original time */
	uint32_t msgs;             /* messages per request (a PublishBatch: its count, alone in its run); 0: 1 */
	uint32_t pad;
};

struct lw_fe {
	struct ring *pub, *ack;
	uint64_t pos;              /* peek position reached in the open batch */
	struct lw_run *runs;
	size_t runs_n, runs_cap;
	struct rm_ack *backlog;    /* acks that did not fit into the ack ring */
	size_t backlog_n, backlog_cap;
	uint64_t release_pos;      /* release up to here once the backlog is pushed */
};

struct lw_cluster;

/* The request being applied and where its answer goes. */
struct lw_req {
	uint32_t origin_node;      /* the node the client talked to (0 on a single node) */
	uint32_t fe;               /* its frontend there */
	uint64_t cookie;           /* the frontend's cookie (first 8 bytes of every request) */
	uint16_t type;             /* enum rm_type */
	const uint8_t *p;          /* request bytes (ringmsg.h) */
	uint32_t len;
};

/* One answer that applying produced, routed by the caller: the origin
 * node's logwriter pushes a.cookie's ack into frontend fe's ack ring once
 * the transaction is durable. a.timestamp_ms 0: the entry's time. */
struct lw_answer {
	uint32_t origin_node;
	uint32_t fe;
	struct rm_ack a;
};

struct lw_answers {
	struct lw_answer *v;
	size_t n, cap;
};

struct lw {
	const struct config *cfg;
	struct shm *shm;
	struct store *store;
	struct store_txn *txn;
	int self_efd;
	const int *fe_efds;
	uint32_t nfe;
	struct lw_part *parts;     /* slots_max entries */
	struct lw_topic *topics;   /* open addressing by name, topic_buckets entries */
	uint32_t topic_buckets;    /* lw_topic_buckets(cfg) */
	uint32_t ntopics;
	int64_t batch_ts;
	int64_t last_ts;
	size_t batch_records;
	int64_t next_retention_ms;
	uint64_t batch_no;         /* moves the sticky partition of keyless publishes */
	int slots_dirty;           /* a topic was deleted: rewrite every slot after commit */
	uint64_t cur_term;         /* raft term of the entry being applied (0 on a single node) */
	uint64_t cur_index;        /* raft index of the entry being applied (0 on a single node) */
	struct lw_answers answers; /* of the open group commit (single node) */
	struct lw_cluster *cl;     /* cluster mode; NULL on a single node */
	int exit_reseed;           /* cluster: exit with LOGWRITER_EXIT_RESEED (a snapshot arrived) */
	struct lw_fe fe[];
};

extern volatile sig_atomic_t lw_stop;

uint32_t lw_topic_buckets(const struct config *cfg);
/* Apply one request to w->txn and append its answer to out (nothing else
 * learns of it). Returns SL_OK or a fatal local error: the transaction
 * must then be dropped. */
int lw_record_apply(struct lw *w, const struct lw_req *rq, struct lw_answers *out);
int lw_parts_flush(struct lw *w);
void lw_slot_publish(struct lw *w, uint32_t s);
void lw_slots_refresh_first(struct lw *w);
void lw_wake_frontends(struct lw *w);
/* Commit w->txn and time it into the commit-latency histogram (shm metrics). */
int lw_txn_commit_timed(struct lw *w);
int lw_topics_reload(struct lw *w);
void lw_ack_push(struct lw *w, uint32_t fe, const struct rm_ack *a);
/* Push queued acks of frontend fe; 1 when none are left. */
int lw_ack_flush_backlog(struct lw *w, uint32_t fe);

/* lw_cluster.c */
/* Runs the node in cluster mode until SIGTERM; store is open, state loaded. */
int lw_cluster_run(struct lw *w);

#endif
