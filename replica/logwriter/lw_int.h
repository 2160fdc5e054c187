/*
 * lw_int.h: logwriter internals shared by logwriter.c (request handling:
 * partitioning, offsets, dedup, topics, groups) and lw_cluster.c (the raft
 * group every node runs: one voter alone, three or five in a cluster).
 */
#ifndef SLUICE_LW_INT_H
#define SLUICE_LW_INT_H

#include <signal.h>
#include <stdint.h>

#include "config.h"
#include "logwriter.h"
#include "lw_io.h"
#include "ring.h"
#include "ringmsg.h"
#include "shm.h"
#include "store.h"

/* One partition's state: indexed by commit-table slot. */
struct lw_part {
	uint32_t topic_id;
	uint32_t partition;
	uint64_t end;              /* next offset to assign (the stored end) */
	uint64_t cend;             /* committed end: what readers see (the commit table) */
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

struct lw_fe {
	struct ring *pub, *ack;
	struct rm_ack *backlog;    /* acks that did not fit into the ack ring */
	size_t backlog_n, backlog_cap;
};

struct lw_cluster;
struct lw_consumers;

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

/* What applying wrote to the log, when asked (w->writes.on): a cluster
 * leader ships it in the raft entry so that other nodes store the same. */
struct lw_wbatch {
	uint32_t topic_id;
	uint32_t partition;
	uint64_t base;
	uint32_t count;
	uint64_t data_bytes;       /* keys, headers and payloads of its records (metrics) */
};

struct lw_wdedup {
	uint64_t producer_id;
	uint32_t topic_id;
	uint32_t space;
	uint64_t base_seq;
	struct store_dedup d;
};

struct lw_writes {
	int on;
	struct lw_wbatch *b;
	size_t nb, capb;
	struct lw_wdedup *d;
	size_t nd, capd;
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
	uint32_t *topic_ids;       /* open addressing by topic id: bucket of topics + 1 (0: empty) */
	uint32_t topic_buckets;    /* lw_topic_buckets(cfg) */
	uint32_t ntopics;
	int64_t batch_ts;
	int64_t last_ts;
	size_t batch_records;
	uint64_t batch_no;         /* moves the sticky partition of keyless publishes */
	int slots_dirty;           /* a topic was deleted: rewrite every slot after commit */
	uint32_t *pend_slots;      /* slots with records pending (lw_parts_flush writes these) */
	size_t pend_slots_n, pend_slots_cap;
	uint32_t *touched_slots;   /* slots whose ends moved since they were last published */
	uint64_t ends_seq;         /* bumped whenever an end may have moved (lw_touch) */
	size_t touched_n, touched_cap;
	uint64_t cur_term;         /* raft term of the entry being resolved or applied */
	uint64_t cur_index;        /* raft index of the entry being resolved or applied */
	struct lw_writes writes;   /* batches and dedup entries written, when writes.on */
	struct lw_cluster *cl;     /* cluster mode; NULL on a single node */
	struct lw_consumers *cons; /* durable consumers (lw_consumer.c) */
	int auth_changed;          /* an RM_AUTH applied: bump shm auth_gen after the commit */
	int exit_reseed;           /* cluster: exit with LOGWRITER_EXIT_RESEED (a snapshot arrived) */
	const struct lw_io *io;    /* clock and peer links; NULL: the real ones (lw_io.h) */
	void *io_arg;
	struct lw_fe fe[];
};

extern volatile sig_atomic_t lw_stop;
extern volatile sig_atomic_t lw_hup; /* SIGHUP: reload the peer links' TLS certificate */

uint32_t lw_topic_buckets(const struct config *cfg);
/* Append rq's answer to out: err, position, msgs (0 counts as 1), flags;
 * ts, term, log_index 0: the entry's (w->cur_term, w->cur_index). */
int lw_answer_add(struct lw *w, const struct lw_req *rq, struct lw_answers *out, uint32_t err, uint32_t partition,
		  uint64_t offset, uint32_t msgs, uint32_t flags, int64_t ts, uint64_t term, uint64_t log_index);
/* The live topic with this id, NULL if none. */
const struct lw_topic *lw_topic_by_id(const struct lw *w, uint32_t topic_id);
/* Apply one request to w->txn and append its answer to out (nothing else
 * learns of it). Returns SL_OK or a fatal local error: the transaction
 * must then be dropped. */
int lw_record_apply(struct lw *w, const struct lw_req *rq, struct lw_answers *out);
int lw_parts_flush(struct lw *w);
/* Mark lp's slot for the next publication of the commit table. */
void lw_touch(struct lw *w, struct lw_part *lp);
void lw_slot_publish(struct lw *w, uint32_t s);
void lw_slots_refresh_first(struct lw *w);
void lw_wake_frontends(struct lw *w);
/* Commit w->txn and time it into the commit-latency histogram (shm metrics). */
int lw_txn_commit_timed(struct lw *w, int deferred);
int lw_topics_reload(struct lw *w);
void lw_ack_push(struct lw *w, uint32_t fe, const struct rm_ack *a);
/* Push queued acks of frontend fe; 1 when none are left. */
int lw_ack_flush_backlog(struct lw *w, uint32_t fe);

/* The logwriter of args with its store open (NULL and *rc on failure);
 * lw_free closes the store without writing. */
struct lw *lw_new(const struct logwriter_args *a, int *rc);
void lw_free(struct lw *w);

/* The live topic with this name, NULL if none. */
const struct lw_topic *lw_topic_by_name(const struct lw *w, const char *name, size_t len);
/* The live topic name (NUL-terminated), made now with partitions if
 * missing (*made = 1): for what applying appends to (dead letters,
 * callbacks), the same on every node. NULL if it cannot be made. */
const struct lw_topic *lw_topic_ensure(struct lw *w, const char *name, uint32_t partitions, int *made);
/* Store a complete RM_PUBLISH record now, at apply (no answer): what an
 * entry appends when it applies. rec is only read during the call. */
int lw_append(struct lw *w, const uint8_t *rec, uint32_t len);
/* lw_audit.c: the principal at the end of rq (by_len bytes, common/ringmsg.h)
 * into by ("" when by_len is 0: the system); SL_EINVAL if it cannot be one. */
int lw_by_get(const struct lw_req *rq, uint16_t by_len, char by[RM_BY_MAX + 1]);
/* An audit entry of action by `by` in w->txn (none when by is ""); takes
 * detail (a JSON object, NULL: out of memory) and releases it. */
struct json_t;
int lw_audit(struct lw *w, const char *by, const char *action, struct json_t *detail);
/* The audit detail of a webhook settings patch: each key it sets, with the
 * values of plain settings only ("(new secret)" for rotate_secret). New
 * reference, NULL if the patch is not a JSON object or out of memory. */
struct json_t *lw_audit_webhook_changes(const char *patch, size_t len);
/* lw_auth.c: apply an RM_AUTH (like lw_record_apply). */
int lw_auth_apply(struct lw *w, const struct lw_req *rq, struct lw_answers *out);
/* lw_callback.c: apply an RM_CALLBACK (like lw_record_apply). */
int lw_callback_apply(struct lw *w, const struct lw_req *rq, struct lw_answers *out);

/* lw_consumer.c: durable consumers. Their state changes only when entries
 * apply (on every node alike); a leader also holds pulls that have nothing
 * to take yet and proposes them once something is due or they expire. */
/* Load every consumer from w->txn (at start). */
int lw_cons_load(struct lw *w);
void lw_cons_free(struct lw *w);
/* Apply an RM_CONSUMER_* request (like lw_record_apply). */
int lw_cons_apply(struct lw *w, const struct lw_req *rq, struct lw_answers *out);
/* Leader: a pull from the rings or a forward. *now_out = 1: propose it now
 * (*flags: the RM_PULL_* flags to set in it); 0: held here (copied). */
int lw_cons_pull_take(struct lw *w, uint32_t node, uint16_t fe, const uint8_t *p, uint32_t len, int64_t now_ms,
		      int *now_out, uint16_t *flags);
/* Leader: the next held pull to propose now (something is due, or it
 * expired): 1 and *rec (malloc'd, the caller frees it), 0 if none. */
int lw_cons_held_next(struct lw *w, int64_t now_ms, uint32_t *node, uint16_t *fe, uint8_t **rec, uint32_t *len);
/* Leader: whether a held pull is ready now (for the loop's wake-ups). */
int lw_cons_held_ready(struct lw *w, int64_t now_ms);
/* No longer leader: held pulls are dropped (their nodes answer UNAVAILABLE
 * after the epoch bump that goes with a leader change). */
void lw_cons_held_drop(struct lw *w);

/* lw_cluster.c */
/* Runs the node in cluster mode until SIGTERM; store is open, state loaded. */
int lw_cluster_run(struct lw *w);

#endif
