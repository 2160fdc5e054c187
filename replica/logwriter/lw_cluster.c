/*
 * lw_cluster.c: the logwriter in cluster mode ([cluster] peers set).
 *
 * One log: a leader turns the requests it drains from its frontends' rings
 * (and those followers forward to it) into one raft entry per turn
 * (replica/raft/entry.h), resolving the publishes as it appends them: it
 * stores their record batches at the next offsets in the turn's LMDB
 * transaction, with their dedup entries, and puts into the entry what it
 * stored (the batch bytes), the dedup entries and the answers. Topic and
 * group commands and retention travel as requests and act at commit.
 * Every node stores the resolved batches when it appends the entry (the
 * raftlog row keeps references to them: each message is written once) and
 * moves its commit table, which is all readers see, when the entry commits;
 * a suffix raft replaces is deleted with its batches. One transaction per
 * turn persists the hard state and new entries and applies what committed
 * (commands, deferred batches); it syncs once (a turn that only applies
 * defers its meta flush: see cl_ready). Raft messages go out after it (but
 * a leader's appends, which go out before its own sync: raft_msg_early);
 * the commit table and acks of entries whose commit writes nothing go out
 * before it (apply_committed), the rest after. So an ack means: committed
 * on a majority (each synced its raft log and the batches) and visible on
 * the node that answers.
 *
 * The origin node of a request acknowledges it to its frontend. A
 * follower forwards its frontends' requests to the leader; if an answer may
 * have been lost (leader or term change, link to the leader down, restart)
 * the shm epoch is bumped and frontends answer UNAVAILABLE to what is
 * pending: clients retry with the same producer id and sequence, which the
 * dedup table turns into the original answer.
 *
 * Raft log rows are trimmed once applied and held by every peer (or past
 * raftlog_bytes_max); a peer that needs trimmed entries gets a snapshot of
 * the whole environment (see "snapshots" below). Entry timestamps come from
 * the leader's clock but never go back.
 */
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "entry.h"
#include "err.h"
#include "log.h"
#include "logwriter.h"
#include "lw_int.h"
#include "lw_io.h"
#include "peer.h"
#include "raft.h"
#include "sl_assert.h"
#include "snapinst.h"
#include "tls.h"
#include "vec.h"

_Static_assert(SHM_ROLE_LEADER == RAFT_LEADER, "shm.h names the leader role");

#define CL_FORWARD_BYTES_MAX (1u << 20)    /* one Forward frame */
#define CL_MSG_BYTES_MAX (4u << 20)        /* entry data per AppendEntries */
#define CL_INFLIGHT_MAX 32
#define CL_TRIM_CHUNK 512
#define CL_TRIM_MIN 64
#define CL_TURN_ROOM_BYTES (256u << 10) /* map room a turn keeps beyond its batches */
#define CL_SNAP_CHUNK (1u << 20)     /* snapshot bytes per frame */

struct cl_fwd {
	uint8_t *recs;
	size_t len;
};

struct lw_cluster {
	struct raft *raft;
	struct peer_net *net;
	/* the peer io's loop: the links, the frontends' eventfd and the wait */
	struct event_base *base;
	struct event *efd_ev, *wait_ev;
	uint32_t self;
	uint32_t tick_ms;
	int64_t next_tick_ms;
	uint64_t applied, applied_term;
	uint64_t stored_last;         /* highest index in the raftlog db */
	uint64_t trimmed, trimmed_term; /* the raftlog holds entries > trimmed */
	uint32_t *sizes;              /* data bytes of entries trimmed+1 .. stored_last */
	size_t sizes_cap;
	uint64_t log_bytes;
	struct ent_writer prop;
	struct ent_writer fwdw;
	struct cl_fwd *fwd;
	size_t fwd_n, fwd_cap, fwd_bytes;
	size_t fwd_pos;               /* leader: records of fwd[0] before this are taken */
	struct ent_writer preq;       /* leader: the requests of the entry that act at commit */
	struct lw_answers res_answers;/* leader: answers of the publishes it resolves (into the entry) */
	uint64_t resolved_index;      /* the entry this turn resolved (its batches are stored) */
	uint64_t barrier;             /* last entry with a topic change (or unresolved publishes) */
	uint64_t *deferred;           /* entries whose batches are stored at commit, ascending */
	size_t deferred_n, deferred_cap;
	int64_t tip_ts;               /* leader: time of the last entry resolved (never goes back) */
	int was_leader;
	struct lw_answers answers;    /* of the entries applied this turn; this node's are pushed after commit */
	uint64_t *rel_pos;            /* per frontend: release the ring here after the txn */
	/* apply context */
	size_t retention_deleted;
	/* observation */
	uint64_t seen_term, seen_leader;
	int forwarded;                /* requests forwarded since the last epoch bump */
	uint64_t fwd_link_gen;        /* the leader link they went on */
	int64_t no_leader_since_ms;
	int64_t next_retention_ms;
	int64_t next_usage_ms;
	int64_t fwd_refused_log_ms;   /* forwards refused for a full queue: one warning a minute */
	int adopted;                  /* the data dir came from another node */
	struct cl_snap_out {
		int want;             /* raft asked for a snapshot to this peer */
		struct raft_msg m;    /* the RAFT_MSG_SNAPSHOT (no entries) */
		int fd;               /* the copy being sent; -1: none */
		uint64_t size, off;
		/* the copy is written by a thread beside the loop (LMDB allows a
		 * read txn in another thread): the leader keeps committing */
		pthread_t thread;
		int copying;          /* the copy runs (or ended and is not taken) */
		int threaded;         /* in a thread (to join); else it ran inline (lw_io.h) */
		int copy_done;        /* __atomic: set by the thread when it returns */
		int copy_rc;
		struct store *store;
		int64_t copy_t0;
	} snap_out[CONFIG_NODES_MAX];
	int snap_in_fd;               /* snapshot being received; -1: none */
	uint64_t snap_in_off;
	int reseed;                   /* a snapshot is complete: exit so the master installs it */
	int busy;                     /* the last turn did something: poll without waiting */
	int net_open;                 /* io->open succeeded: io->close at the end */
};

/* A node without [cluster] peers is a raft group of one voter: itself. */
static int solo(const struct config *cfg)
{
	return cfg->cluster_n == 0;
}

/* ---------- the outside world (lw_io.h) ---------- */

static int64_t cl_now(const struct lw *w)
{
	return w->io->now_ms(w->io_arg);
}

static int io_send(struct lw *w, uint64_t to, const uint8_t *frame, size_t len)
{
	return w->io->send(w->io_arg, (uint32_t)to, frame, len);
}

static int io_connected(struct lw *w, uint64_t id)
{
	return w->io->connected(w->io_arg, (uint32_t)id);
}

static uint64_t io_link_gen(struct lw *w, uint64_t id)
{
	return w->io->link_gen(w->io_arg, (uint32_t)id);
}

/* ---------- acks ---------- */

/* Answer one ring record at once (not through the log). */
static void ack_now(struct lw *w, uint32_t fe, const uint8_t *p, uint32_t len, uint32_t err)
{
	struct rm_ack a = {0};
	if (len >= sizeof(a.cookie))
		memcpy(&a.cookie, p, sizeof(a.cookie));
	a.err = err;
	lw_ack_push(w, fe, &a);
}

static void bump_epoch(struct lw *w, const char *why)
{
	shm_add(&w->shm->hdr->cluster.epoch, 1);
	w->cl->forwarded = 0;
	log_debug("epoch bumped: %s", why);
	lw_wake_frontends(w);
}

/* ---------- persistence helpers ---------- */

struct cl_hs {
	uint64_t term, vote;
};

struct cl_applied {
	uint64_t index, term;
	int64_t last_ts;
};

/* ---------- resolved entries: stored at append, visible at commit ---------- */

/* The partition state of (topic_id, partition) if the topic is live here. */
static struct lw_part *part_of(struct lw *w, uint32_t topic_id, uint32_t partition)
{
	const struct lw_topic *t = lw_topic_by_id(w, topic_id);
	if (!t || partition >= t->meta.partitions)
		return NULL;
	return &w->parts[t->meta.slot_base + partition];
}

static int deferred_has(const struct lw_cluster *c, uint64_t index)
{
	for (size_t i = 0; i < c->deferred_n; i++)
		if (c->deferred[i] == index)
			return 1;
	return 0;
}

/* Drop the deferred indices >= from (a truncated suffix) or <= upto (applied). */
static void deferred_cut(struct lw_cluster *c, uint64_t from)
{
	while (c->deferred_n && c->deferred[c->deferred_n - 1] >= from)
		c->deferred_n--;
}

static void deferred_applied(struct lw_cluster *c, uint64_t upto)
{
	size_t k = 0;
	while (k < c->deferred_n && c->deferred[k] <= upto)
		k++;
	if (!k)
		return;
	memmove(c->deferred, c->deferred + k, (c->deferred_n - k) * sizeof(*c->deferred));
	c->deferred_n -= k;
}

struct ent_scan {
	int barrier;   /* a request that resolving depends on (topics) or a publish applied at commit */
	int batches;   /* ENT_BATCH records (values inside) */
	int refs;      /* ENT_BATCH_REF records (values in the batches table) */
	int unknown;   /* a batch of a partition this node does not have (yet) */
};

/* A pull that may copy messages to a dead-letter topic when it applies:
 * it appends at commit, like a topic change (lw_consumer.c). */
static int pull_appends(const struct ent_view *v)
{
	struct rm_consumer_pull m;
	if (v->type != RM_CONSUMER_PULL || v->len < sizeof(m))
		return 0;
	memcpy(&m, v->p, sizeof(m));
	return (m.flags & RM_PULL_DEAD_LETTER) != 0;
}

static int entry_scan(struct lw *w, const uint8_t *p, size_t len, struct ent_scan *s)
{
	int64_t ts;
	uint32_t count;
	size_t pos;
	struct ent_view v;
	int r;
	memset(s, 0, sizeof(*s));
	if (len == 0)
		return SL_OK;
	if (ent_parse(p, len, &ts, &count, &pos) != SL_OK)
		return SL_EMALFORMED;
	while ((r = ent_next(p, len, &pos, &v)) == 1) {
		struct ent_batch b;
		const uint8_t *val;
		uint32_t vlen;
		if (v.type == RM_CREATE_TOPIC || v.type == RM_DELETE_TOPIC || v.type == RM_PUBLISH ||
		    v.type == RM_PUBLISH_BATCH || v.type == RM_CALLBACK || pull_appends(&v))
			s->barrier = 1;
		if (v.type != ENT_BATCH && v.type != ENT_BATCH_REF)
			continue;
		if (ent_batch_view(&v, &b, &val, &vlen) != SL_OK)
			return SL_EMALFORMED;
		if (v.type == ENT_BATCH)
			s->batches++;
		else
			s->refs++;
		if (!part_of(w, b.topic_id, b.partition))
			s->unknown = 1;
	}
	return r < 0 ? SL_EMALFORMED : SL_OK;
}

/* Store what a resolved entry says: its batches at their offsets, its dedup
 * entries. The offsets must be the partitions' ends (raft's log matching);
 * a batch of a topic deleted since is skipped on every node alike. */
static int entry_store(struct lw *w, const uint8_t *p, size_t len)
{
	int64_t ts;
	uint32_t count;
	size_t pos;
	struct ent_view v;
	int r, rc = SL_OK;
	if (ent_parse(p, len, &ts, &count, &pos) != SL_OK)
		return SL_EMALFORMED;
	while (rc == SL_OK && (r = ent_next(p, len, &pos, &v)) == 1) {
		if (v.type == ENT_BATCH) {
			struct ent_batch b;
			const uint8_t *val;
			uint32_t vlen;
			if (ent_batch_view(&v, &b, &val, &vlen) != SL_OK)
				return SL_EMALFORMED;
			rc = store_batch_put(w->txn, b.topic_id, b.partition, b.base, b.count, slice_make(val, vlen));
			if (rc == SL_ENOTOPIC) {
				log_warn("a batch of deleted topic %u skipped", b.topic_id);
				rc = SL_OK;
				continue;
			}
			struct lw_part *lp = part_of(w, b.topic_id, b.partition);
			if (rc == SL_OK && lp) {
				SL_ASSERT(lp->end == b.base);
				lp->end = b.base + b.count;
			}
		} else if (v.type == ENT_DEDUP) {
			struct ent_dedup d;
			if (ent_dedup_view(&v, &d) != SL_OK)
				return SL_EMALFORMED;
			struct store_dedup sd = {d.partition, d.count, d.base_offset, d.ts_ms, d.term, d.log_index};
			rc = store_dedup_put(w->txn, d.producer_id, d.topic_id, d.space, d.base_seq, &sd);
			if (rc == SL_EINVAL)
				rc = SL_EMALFORMED;
		}
	}
	return rc;
}

/* The raft log row of an entry whose batches are in the batches table: the
 * entry with every ENT_BATCH cut down to its ENT_BATCH_REF (malloc'd). */
static int row_strip(const uint8_t *p, size_t len, uint8_t **out, size_t *out_len)
{
	int64_t ts;
	uint32_t count;
	size_t pos;
	struct ent_view v;
	struct ent_writer e = {0};
	int r, rc = SL_OK;
	if (ent_parse(p, len, &ts, &count, &pos) != SL_OK)
		return SL_EMALFORMED;
	ent_begin(&e, 1, ts);
	while (rc == SL_OK && (r = ent_next(p, len, &pos, &v)) == 1) {
		if (v.type == ENT_BATCH) {
			struct ent_batch b;
			const uint8_t *val;
			uint32_t vlen;
			rc = ent_batch_view(&v, &b, &val, &vlen);
			if (rc == SL_OK)
				rc = ent_add(&e, ENT_BATCH_REF, v.origin_node, v.origin_fe, &b, sizeof(b));
		} else {
			rc = ent_add(&e, v.type, v.origin_node, v.origin_fe, v.p, v.len);
		}
	}
	if (rc) {
		ent_free(&e);
		return rc;
	}
	*out = ent_take(&e, out_len);
	return SL_OK;
}

/* The entry of a stripped row, each ENT_BATCH_REF filled from the batches
 * table (malloc'd). *missing = 1 if a batch is gone (retention, a deleted
 * topic): the entry can then no longer be sent to a peer. */
static int row_expand(struct store_txn *t, const uint8_t *p, size_t len, uint8_t **out, size_t *out_len, int *missing)
{
	int64_t ts;
	uint32_t count;
	size_t pos;
	struct ent_view v;
	struct ent_writer e = {0};
	int r, rc = SL_OK;
	*missing = 0;
	if (ent_parse(p, len, &ts, &count, &pos) != SL_OK)
		return SL_ECORRUPT;
	ent_begin(&e, 1, ts);
	while (rc == SL_OK && (r = ent_next(p, len, &pos, &v)) == 1) {
		if (v.type == ENT_BATCH_REF) {
			struct ent_batch b;
			const uint8_t *val;
			uint32_t vlen;
			struct slice sv;
			rc = ent_batch_view(&v, &b, &val, &vlen);
			if (rc == SL_OK)
				rc = store_batch_get(t, b.topic_id, b.partition, b.base, &sv);
			if (rc == SL_ENOTFOUND) {
				*missing = 1;
				rc = SL_OK;
				continue;
			}
			if (rc == SL_OK && sv.len > UINT32_MAX - sizeof(b))
				rc = SL_ECORRUPT;
			if (rc == SL_OK)
				rc = ent_add2(&e, ENT_BATCH, v.origin_node, v.origin_fe, &b, sizeof(b), sv.base, (uint32_t)sv.len);
		} else {
			rc = ent_add(&e, v.type, v.origin_node, v.origin_fe, v.p, v.len);
		}
	}
	if (rc) {
		ent_free(&e);
		return rc == SL_EMALFORMED ? SL_ECORRUPT : rc;
	}
	*out = ent_take(&e, out_len);
	return SL_OK;
}

/* Where the records of a raftlog row start: 0 if it has none (a no-op
 * entry, or data that is not a record list, which applying skips). */
static int row_open(uint32_t type, struct slice data, size_t *pos)
{
	int64_t ts;
	uint32_t count;
	return type == RAFT_ENTRY_NORMAL && data.len && ent_parse(data.base, data.len, &ts, &count, pos) == SL_OK;
}

/* Undo what rows >= from stored at append (a suffix raft replaces, or the
 * unapplied tail of a snapshot's log): their batches and dedup entries. */
struct undo_ctx {
	struct store_txn *t;
	int rc;
};

static int undo_cb(void *arg, uint64_t index, uint64_t term, uint32_t type, struct slice data)
{
	struct undo_ctx *u = arg;
	size_t pos;
	struct ent_view v;
	int r;
	(void)index;
	(void)term;
	if (!row_open(type, data, &pos))
		return 0;
	size_t start = pos;
	int refs = 0;
	while ((r = ent_next(data.base, data.len, &pos, &v)) == 1)
		refs += v.type == ENT_BATCH_REF;
	if (!refs)
		return 0; /* nothing of it was stored before its commit */
	pos = start;
	while (u->rc == SL_OK && (r = ent_next(data.base, data.len, &pos, &v)) == 1) {
		if (v.type == ENT_BATCH_REF) {
			struct ent_batch b;
			const uint8_t *val;
			uint32_t vlen;
			u->rc = ent_batch_view(&v, &b, &val, &vlen);
			if (u->rc == SL_OK)
				u->rc = store_batch_truncate(u->t, b.topic_id, b.partition, b.base);
			if (u->rc == SL_ENOTOPIC)
				u->rc = SL_OK;
		} else if (v.type == ENT_DEDUP) {
			struct ent_dedup d;
			u->rc = ent_dedup_view(&v, &d);
			if (u->rc == SL_OK)
				u->rc = store_dedup_del(u->t, d.producer_id, d.topic_id, d.space, d.base_seq);
		}
	}
	if (u->rc == SL_EMALFORMED)
		u->rc = SL_ECORRUPT;
	return u->rc != SL_OK;
}

static int undo_from(struct store_txn *t, uint64_t from)
{
	struct undo_ctx u = {t, SL_OK};
	int rc = store_raft_foreach(t, from, undo_cb, &u);
	return rc ? rc : u.rc;
}

/* Committed ends: the stored ends, less what rows past the applied index
 * stored before their commit. */
struct cend_ctx {
	struct lw *w;
	int rc;
};

static int cend_cb(void *arg, uint64_t index, uint64_t term, uint32_t type, struct slice data)
{
	struct cend_ctx *x = arg;
	size_t pos;
	struct ent_view v;
	int r;
	(void)index;
	(void)term;
	if (!row_open(type, data, &pos))
		return 0;
	while ((r = ent_next(data.base, data.len, &pos, &v)) == 1) {
		struct ent_batch b;
		const uint8_t *val;
		uint32_t vlen;
		if (v.type != ENT_BATCH_REF || ent_batch_view(&v, &b, &val, &vlen) != SL_OK)
			continue;
		struct lw_part *lp = part_of(x->w, b.topic_id, b.partition);
		if (lp && b.base < lp->cend) {
			lp->cend = b.base;
			lw_touch(x->w, lp);
		}
	}
	return 0;
}

/* Reload topics and ends from w->txn; readers see only what is applied. */
static int ends_reload(struct lw *w)
{
	struct lw_cluster *c = w->cl;
	int64_t last_ts = w->last_ts;
	int rc = lw_topics_reload(w);
	/* apply's clock comes from the applied log alone, the same on every node */
	if (w->last_ts > c->tip_ts)
		c->tip_ts = w->last_ts;
	w->last_ts = last_ts;
	if (rc)
		return rc;
	struct cend_ctx x = {w, SL_OK};
	rc = store_raft_foreach(w->txn, c->applied + 1, cend_cb, &x);
	w->slots_dirty = 1;
	return rc ? rc : x.rc;
}

static int meta_get_fixed(struct store_txn *t, const char *key, void *out, size_t n)
{
	struct slice v;
	int rc = store_meta_get(t, key, &v);
	if (rc)
		return rc;
	if (v.len != n)
		return SL_ECORRUPT;
	memcpy(out, v.base, n);
	return SL_OK;
}

static int sizes_set(struct lw_cluster *c, uint64_t index, uint32_t bytes)
{
	size_t i = (size_t)(index - c->trimmed - 1);
	if (vec_grow((void **)&c->sizes, &c->sizes_cap, i + 1, sizeof(*c->sizes)))
		return SL_ENOMEM;
	c->sizes[i] = bytes;
	return SL_OK;
}

/* ---------- snapshots: a copy of the whole LMDB environment ---------- */

/*
 * A peer needs entries the leader already trimmed. The leader writes a
 * compacted copy of its environment (mdb_env_copyfd2: a consistent read
 * snapshot, written by a thread so the loop goes on) to an unlinked temp file and
 * streams it in chunks. The follower writes the chunks to
 * <data_dir>/snapshot-in.mdb; with the last one it records its own term and
 * vote beside it and exits with LOGWRITER_EXIT_RESEED: the master stops the
 * frontends (they map the old file), moves the copy over data.mdb and starts
 * everything again. The restarted logwriter (snap_fixup) keeps the copy's
 * state and applied index, drops the copy's raft log, and restores its own
 * identity, term and vote. A transfer cut by a dropped link starts over.
 */

static void *snap_copy_main(void *arg)
{
	struct cl_snap_out *so = arg;
	so->copy_rc = store_copy_fd(so->store, so->fd);
	__atomic_store_n(&so->copy_done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* Stop a copy under way: its writes now go to /dev/full and fail, so
 * mdb_env_copyfd2 returns soon; then join the thread. */
static void snap_copy_stop(struct cl_snap_out *so)
{
	if (!so->copying)
		return;
	if (!so->threaded) {
		so->copying = 0;
		return;
	}
	if (!__atomic_load_n(&so->copy_done, __ATOMIC_ACQUIRE)) {
		int full = open("/dev/full", O_WRONLY | O_CLOEXEC);
		if (full >= 0) {
			dup2(full, so->fd);
			close(full);
		}
	}
	pthread_join(so->thread, NULL);
	so->copying = 0;
}

static void snap_out_end(struct lw *w, int k, int ok)
{
	struct cl_snap_out *so = &w->cl->snap_out[k];
	snap_copy_stop(so);
	if (so->fd >= 0)
		close(so->fd);
	so->fd = -1;
	so->want = 0;
	raft_snapshot_done(w->cl->raft, so->m.to, ok);
}

static void snap_start(struct lw *w, int k)
{
	struct cl_snap_out *so = &w->cl->snap_out[k];
	char path[4200];
	snprintf(path, sizeof(path), "%s/snapshot-out-%u.mdb", w->cfg->data_dir, w->cfg->cluster[k].id);
	so->want = 0;
	so->fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (so->fd < 0) {
		log_error("snapshot for node %u: %s: %s", w->cfg->cluster[k].id, path, strerror(errno));
		snap_out_end(w, k, 0);
		return;
	}
	unlink(path);
	so->store = w->store;
	so->copy_t0 = cl_now(w);
	so->copy_done = 0;
	so->copy_rc = SL_OK;
	so->threaded = 0;
	if (w->io->snap_copy_inline) {
		snap_copy_main(so);
		so->copying = 1;
		return;
	}
	if (pthread_create(&so->thread, NULL, snap_copy_main, so) != 0) {
		log_error("snapshot for node %u: cannot start the copy thread", w->cfg->cluster[k].id);
		snap_out_end(w, k, 0);
		return;
	}
	so->copying = 1;
	so->threaded = 1;
}

/* The copy thread finished: 1 when the copy is ready to stream. */
static int snap_copied(struct lw *w, int k)
{
	struct cl_snap_out *so = &w->cl->snap_out[k];
	if (!__atomic_load_n(&so->copy_done, __ATOMIC_ACQUIRE))
		return 0;
	if (so->threaded)
		pthread_join(so->thread, NULL);
	so->copying = 0;
	off_t size = lseek(so->fd, 0, SEEK_END);
	if (so->copy_rc || size <= 0) {
		log_error("snapshot for node %u: copy failed: %s", w->cfg->cluster[k].id, sl_strerror(so->copy_rc));
		snap_out_end(w, k, 0);
		return 0;
	}
	so->size = (uint64_t)size;
	so->off = 0;
	log_info("sending node %u a snapshot (%llu bytes, copied in %lld ms beside the loop): it needs entries up to "
		 "%llu that were trimmed", w->cfg->cluster[k].id, (unsigned long long)so->size,
		 (long long)(cl_now(w) - so->copy_t0), (unsigned long long)so->m.index);
	return 1;
}

/* Send what the links take; runs every turn. */
static void snap_pump(struct lw *w)
{
	struct lw_cluster *c = w->cl;
	uint8_t *chunk = NULL;
	for (uint32_t k = 0; k < w->cfg->cluster_n; k++) {
		struct cl_snap_out *so = &c->snap_out[k];
		if (so->want && so->fd < 0)
			snap_start(w, (int)k);
		if (so->fd < 0 || (so->copying && !snap_copied(w, (int)k)))
			continue;
		if (!io_connected(w, so->m.to)) {
			log_warn("snapshot to node %llu cut: link down", (unsigned long long)so->m.to);
			snap_out_end(w, (int)k, 0);
			continue;
		}
		if (!chunk && !(chunk = malloc(CL_SNAP_CHUNK)))
			return;
		while (so->off < so->size) {
			size_t n = so->size - so->off < CL_SNAP_CHUNK ? (size_t)(so->size - so->off) : CL_SNAP_CHUNK;
			if (pread(so->fd, chunk, n, (off_t)so->off) != (ssize_t)n) {
				snap_out_end(w, (int)k, 0);
				break;
			}
			int last = so->off + n == so->size;
			uint8_t *buf;
			size_t len;
			if (peer_encode_raft(&so->m, chunk, n, so->off, last, &buf, &len) != SL_OK)
				break;
			int rc = io_send(w, so->m.to, buf, len);
			free(buf);
			if (rc != SL_OK)
				break; /* window full: more next turn */
			so->off += n;
			if (last) {
				log_info("snapshot sent to node %llu", (unsigned long long)so->m.to);
				snap_out_end(w, (int)k, 1);
				break;
			}
		}
	}
	free(chunk);
}

/*
 * Whether a snapshot the leader streams may replace this node's state:
 * raft's own rule (handle_snapshot in raft.c), which the copy bypasses
 * since it travels beside raft. Not when it is at or below the commit
 * index, nor when the log holds its last entry: the node may have
 * acknowledged entries past it to the leader, and installing the copy would
 * drop them (a leader counted them towards a commit). Nor from an older term.
 */
static int snap_wanted(struct lw *w, const struct raft_msg *m)
{
	struct raft_status st;
	uint64_t t;
	raft_status(w->cl->raft, &st);
	if (m->term < st.term || m->index <= st.commit)
		return 0;
	return !(raft_term_at(w->cl->raft, m->index, &t) && t == m->log_term);
}

/* Drop a transfer under way (it never reached its meta: state A of snapinst.h). */
static void snap_in_drop(struct lw *w)
{
	struct lw_cluster *c = w->cl;
	char path[4200];
	if (c->snap_in_fd < 0)
		return;
	close(c->snap_in_fd);
	c->snap_in_fd = -1;
	snprintf(path, sizeof(path), "%s/snapshot-in.mdb", w->cfg->data_dir);
	unlink(path);
}

/* Follower: one chunk of a snapshot from the leader. */
static void snap_chunk_in(struct lw *w, const struct peer_frame *f)
{
	struct lw_cluster *c = w->cl;
	char path[4200];
	snprintf(path, sizeof(path), "%s/snapshot-in.mdb", w->cfg->data_dir);
	if (f->snap_offset == 0) {
		if (c->snap_in_fd >= 0)
			close(c->snap_in_fd);
		c->snap_in_fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		c->snap_in_off = 0;
		if (c->snap_in_fd < 0) {
			log_error("snapshot: %s: %s", path, strerror(errno));
			return;
		}
		log_info("receiving a snapshot from node %llu (entries up to %llu)", (unsigned long long)f->raft.from,
			 (unsigned long long)f->raft.index);
	}
	if (c->snap_in_fd < 0 || f->snap_offset != c->snap_in_off)
		return; /* a chunk of a transfer we did not see start: the leader starts over */
	if (pwrite(c->snap_in_fd, f->snap_chunk, f->snap_len, (off_t)c->snap_in_off) != (ssize_t)f->snap_len) {
		log_error("snapshot: write: %s", strerror(errno));
		close(c->snap_in_fd);
		c->snap_in_fd = -1;
		return;
	}
	c->snap_in_off += f->snap_len;
	if (!f->snap_last)
		return;
	int ok = fsync(c->snap_in_fd) == 0;
	close(c->snap_in_fd);
	c->snap_in_fd = -1;
	struct raft_status st;
	raft_status(c->raft, &st);
	uint64_t term = st.term > f->raft.term ? st.term : f->raft.term;
	uint64_t vote = term == st.term ? st.vote : 0;
	int rc = ok ? snapinst_commit(w->cfg->data_dir, term, vote) : sl_err_from_errno(errno);
	if (rc != SL_OK) {
		log_error("snapshot: cannot store it: %s", sl_strerror(rc));
		return;
	}
	log_info("snapshot complete (%llu bytes): restarting on it", (unsigned long long)c->snap_in_off);
	c->reseed = 1;
}

struct term_find {
	uint64_t index, term;
	int found;
};

static int term_find_cb(void *arg, uint64_t index, uint64_t term, uint32_t type, struct slice data)
{
	struct term_find *tf = arg;
	if (index == tf->index) {
		tf->term = term;
		tf->found = 1;
	}
	return 1;
}

/* Start-up after a snapshot was installed: keep its state, drop its raft
 * log, take back this node's identity, term and vote. */
static int snap_fixup(struct lw *w)
{
	struct snapinst_meta sm;
	uint32_t owner = 0;
	int rc = snapinst_meta_read(w->cfg->data_dir, &sm);
	if (rc == SL_ENOTFOUND)
		return SL_OK;
	if (rc)
		return rc; /* the master removes a torn meta before we start */
	rc = store_txn_begin(w->store, 0, &w->txn);
	if (rc)
		return rc;
	rc = meta_get_fixed(w->txn, "raft/node", &owner, sizeof(owner));
	store_txn_abort(w->txn);
	w->txn = NULL;
	if (rc != SL_OK && rc != SL_ENOTFOUND)
		return rc;
	if (rc == SL_OK && owner == w->cfg->node_id) {
		/* data.mdb is this node's own (adopted already, state D): the
		 * meta is a leftover; the log must not be touched */
		snapinst_meta_remove(w->cfg->data_dir);
		return SL_OK;
	}
	struct cl_applied ap = {0, 0, 0};
	uint64_t trimmed[2] = {0, 0};
	struct term_find tf = {0, 0, 0};
	uint32_t self = w->cfg->node_id;
	struct cl_hs h = {sm.term, sm.vote};
	rc = store_txn_begin(w->store, 1, &w->txn);
	if (rc == SL_OK)
		rc = meta_get_fixed(w->txn, "raft/applied", &ap, sizeof(ap));
	if (rc == SL_OK && (rc = meta_get_fixed(w->txn, "raft/trimmed", trimmed, sizeof(trimmed))) == SL_ENOTFOUND)
		rc = SL_OK;
	tf.index = ap.index;
	if (rc == SL_OK && ap.index > trimmed[0])
		rc = store_raft_foreach(w->txn, ap.index, term_find_cb, &tf);
	if (rc == SL_OK && !tf.found && ap.index == trimmed[0]) {
		tf.term = trimmed[1];
		tf.found = 1;
	}
	if (rc == SL_OK && !tf.found)
		rc = SL_ECORRUPT;
	uint64_t v[2] = {ap.index, tf.term};
	/* the copy's log past its applied index may have stored batches before
	 * their commit: they go with the log */
	if (rc == SL_OK)
		rc = undo_from(w->txn, ap.index + 1);
	if (rc == SL_OK)
		rc = store_raft_truncate(w->txn, 1);
	if (rc == SL_OK)
		rc = store_meta_put(w->txn, "raft/trimmed", slice_make(v, sizeof(v)));
	if (rc == SL_OK)
		rc = store_meta_put(w->txn, "raft/hs", slice_make(&h, sizeof(h)));
	if (rc == SL_OK)
		rc = store_meta_put(w->txn, "raft/node", slice_make(&self, sizeof(self)));
	rc = rc ? (store_txn_abort(w->txn), rc) : store_txn_commit(w->txn);
	w->txn = NULL;
	if (rc) {
		log_error("cannot adopt the installed snapshot: %s", sl_strerror(rc));
		return rc;
	}
	snapinst_meta_remove(w->cfg->data_dir);
	log_info("running on a snapshot: applied up to %llu (term %llu)", (unsigned long long)ap.index,
		 (unsigned long long)tf.term);
	return SL_OK;
}

/* ---------- start-up ---------- */

struct cl_load {
	struct raft_entry *ents;
	size_t n, cap;
	uint8_t **owned;              /* per entry: its expanded data (malloc'd) or NULL */
	size_t owned_cap;
	struct lw_cluster *c;
	struct lw *w;
	struct store_txn *t;
	uint64_t gone;                /* highest applied entry whose batches are no longer all stored */
	int rc;
};

static int load_entry_cb(void *arg, uint64_t index, uint64_t term, uint32_t type, struct slice data)
{
	struct cl_load *l = arg;
	struct lw_cluster *c = l->c;
	uint64_t want = c->trimmed + 1 + l->n;
	if (index != want) {
		log_error("raft log has a gap: entry %llu where %llu was expected", (unsigned long long)index,
			  (unsigned long long)want);
		l->rc = SL_ECORRUPT;
		return 1;
	}
	if (vec_grow((void **)&l->ents, &l->cap, l->n + 1, sizeof(*l->ents)) ||
	    vec_grow((void **)&l->owned, &l->owned_cap, l->n + 1, sizeof(*l->owned))) {
		l->rc = SL_ENOMEM;
		return 1;
	}
	struct raft_entry e = {term, index, type, (uint32_t)data.len, (uint8_t *)data.base};
	struct ent_scan sc = {0};
	if (type == RAFT_ENTRY_NORMAL && entry_scan(l->w, data.base, data.len, &sc) != SL_OK)
		memset(&sc, 0, sizeof(sc)); /* stored as it came: applying skips it on every node */
	l->owned[l->n] = NULL;
	if (sc.refs && !solo(l->w->cfg)) {
		size_t len;
		int missing;
		l->rc = row_expand(l->t, data.base, data.len, &l->owned[l->n], &len, &missing);
		if (l->rc == SL_OK && len > UINT32_MAX)
			l->rc = SL_ECORRUPT;
		if (l->rc)
			return 1;
		if (missing && index > c->applied) {
			log_error("raft entry %llu: a batch stored before its commit is gone", (unsigned long long)index);
			free(l->owned[l->n]);
			l->owned[l->n] = NULL;
			l->rc = SL_ECORRUPT;
			return 1;
		}
		if (missing)
			l->gone = index; /* applied, but no longer whole: peers behind it need a snapshot */
		e.data = l->owned[l->n];
		e.len = (uint32_t)len;
	}
	if (index > c->applied && sc.barrier && index > c->barrier)
		c->barrier = index;
	if (index > c->applied && sc.batches) {
		if (vec_reserve(&c->deferred, &c->deferred_cap, c->deferred_n + 1)) {
			l->rc = SL_ENOMEM;
			return 1;
		}
		c->deferred[c->deferred_n++] = index;
	}
	if (sizes_set(c, index, e.len)) {
		l->rc = SL_ENOMEM;
		return 1;
	}
	l->ents[l->n++] = e;
	c->log_bytes += e.len;
	return 0;
}

/* The member ids in ascending order, zero-filled: membership is a set, so
 * the order of [cluster] peers does not matter. */
static void members_sorted(const struct config *cfg, uint32_t ids[CONFIG_NODES_MAX])
{
	memset(ids, 0, CONFIG_NODES_MAX * sizeof(*ids));
	if (solo(cfg))
		ids[0] = cfg->node_id;
	for (uint32_t i = 0; i < cfg->cluster_n; i++) {
		uint32_t id = cfg->cluster[i].id, k = i;
		for (; k > 0 && ids[k - 1] > id; k--)
			ids[k] = ids[k - 1];
		ids[k] = id;
	}
}

static uint64_t cluster_id(const struct config *cfg)
{
	uint32_t ids[CONFIG_NODES_MAX];
	uint64_t h = 1469598103934665603ull;
	members_sorted(cfg, ids);
	for (uint32_t i = 0; i < CONFIG_NODES_MAX && ids[i]; i++)
		h = (h ^ ids[i]) * 1099511628211ull;
	return h;
}

static int check_members(struct lw *w, struct store_txn *t, int *fresh)
{
	uint32_t ids[CONFIG_NODES_MAX], stored[CONFIG_NODES_MAX] = {0};
	members_sorted(w->cfg, ids);
	struct slice v;
	int rc = store_meta_get(t, "raft/members", &v);
	if (rc == SL_ENOTFOUND) {
		*fresh = 1;
		return SL_OK;
	}
	if (rc)
		return rc;
	if (v.len == sizeof(stored)) {
		/* data dirs of earlier versions stored the ids in config order */
		memcpy(stored, v.base, sizeof(stored));
		for (uint32_t i = 1; i < CONFIG_NODES_MAX; i++)
			for (uint32_t k = i; k > 0 && stored[k] && (stored[k - 1] > stored[k] || !stored[k - 1]); k--) {
				uint32_t x = stored[k];
				stored[k] = stored[k - 1];
				stored[k - 1] = x;
			}
	}
	if (v.len != sizeof(stored) || memcmp(stored, ids, sizeof(ids)) != 0) {
		log_error("the data dir belongs to a cluster with other member ids than [cluster] peers names; "
			  "membership changes are not supported");
		return SL_ECONFIG;
	}
	return SL_OK;
}

/*
 * A data dir copied from another node (re-seeding a node whose disk was lost,
 * docs/operations.md) carries that node's term and vote. Keeping the vote
 * could let this node vote twice in one term; so it moves to the next term
 * with no vote, which is always safe (pre-vote and check-quorum absorb the
 * bump). Returns 1 if the dir came from another node.
 */
static int adopted_from_other(struct lw *w, struct store_txn *t)
{
	uint32_t owner;
	int rc = meta_get_fixed(t, "raft/node", &owner, sizeof(owner));
	if (rc == SL_OK && owner != w->cfg->node_id) {
		log_warn("this data dir was copied from node %u: starting at the next term without a vote", owner);
		return 1;
	}
	return 0;
}

static int raft_open(struct lw *w, struct store_txn *t, struct raft_hardstate *hs, struct cl_load *l)
{
	struct lw_cluster *c = w->cl;
	struct cl_hs h = {0, 0};
	struct cl_applied ap = {0, 0, 0};
	uint64_t snap[2] = {0, 0};
	int rc = meta_get_fixed(t, "raft/hs", &h, sizeof(h));
	if (rc == SL_OK || rc == SL_ENOTFOUND)
		rc = meta_get_fixed(t, "raft/applied", &ap, sizeof(ap));
	if (rc == SL_OK || rc == SL_ENOTFOUND)
		rc = meta_get_fixed(t, "raft/trimmed", snap, sizeof(snap));
	if (rc != SL_OK && rc != SL_ENOTFOUND)
		return rc;
	hs->term = h.term;
	hs->vote = h.vote;
	if (adopted_from_other(w, t)) {
		hs->term = h.term + 1;
		hs->vote = 0;
		w->cl->adopted = 1;
	}
	c->applied = ap.index;
	c->applied_term = ap.term;
	w->last_ts = ap.last_ts;
	c->trimmed = snap[0];
	c->trimmed_term = snap[1];
	l->c = c;
	l->w = w;
	l->t = t;
	rc = store_raft_foreach(t, c->trimmed + 1, load_entry_cb, l);
	if (rc == SL_OK)
		rc = l->rc;
	c->stored_last = c->trimmed + l->n;
	if (rc == SL_OK && l->gone) {
		/* raft starts after it (as after a trim): a peer that needs it gets a snapshot */
		size_t k = (size_t)(l->gone - c->trimmed);
		for (size_t i = 0; i < k; i++) {
			c->log_bytes -= c->sizes[i];
			free(l->owned[i]);
		}
		c->trimmed_term = l->ents[k - 1].term;
		c->trimmed = l->gone;
		memmove(c->sizes, c->sizes + k, (l->n - k) * sizeof(*c->sizes));
		memmove(l->ents, l->ents + k, (l->n - k) * sizeof(*l->ents));
		memmove(l->owned, l->owned + k, (l->n - k) * sizeof(*l->owned));
		l->n -= k;
		log_warn("raft log: entries up to %llu lost batches to retention; peers behind them get a snapshot",
			 (unsigned long long)c->trimmed);
	}
	if (rc == SL_OK && c->applied > c->stored_last) {
		log_error("applied index %llu is past the raft log's end %llu", (unsigned long long)c->applied,
			  (unsigned long long)c->stored_last);
		rc = SL_ECORRUPT;
	}
	return rc;
}

static int raft_create(struct lw *w, const struct raft_hardstate *hs, const struct cl_load *l)
{
	struct lw_cluster *c = w->cl;
	const struct config *cfg = w->cfg;
	struct raft_config rc = {0};
	rc.id = cfg->node_id;
	for (uint32_t i = 0; i < cfg->cluster_n; i++)
		rc.nodes[i] = cfg->cluster[i].id;
	rc.n_nodes = cfg->cluster_n;
	if (solo(cfg)) {
		rc.nodes[0] = cfg->node_id;
		rc.n_nodes = 1;
	}
	c->tick_ms = cfg->heartbeat_ms >= 20 ? 10 : (cfg->heartbeat_ms / 2 ? cfg->heartbeat_ms / 2 : 1);
	rc.election_ticks = cfg->election_timeout_ms / c->tick_ms;
	rc.heartbeat_ticks = cfg->heartbeat_ms / c->tick_ms;
	if (rc.heartbeat_ticks == 0)
		rc.heartbeat_ticks = 1;
	if (rc.election_ticks <= rc.heartbeat_ticks)
		rc.election_ticks = rc.heartbeat_ticks + 1;
	rc.seed = w->io->seed(w->io_arg);
	rc.msg_bytes_max = CL_MSG_BYTES_MAX;
	rc.inflight_max = CL_INFLIGHT_MAX;
	c->raft = raft_new(&rc, hs, c->trimmed, c->trimmed_term, l->ents, l->n, c->applied);
	return c->raft ? SL_OK : SL_ENOMEM;
}

/* Skip ring records a dead logwriter already put into the raft log. */
static int rings_recover(struct lw *w, struct store_txn *t)
{
	for (uint32_t i = 0; i < w->nfe; i++) {
		char key[32];
		uint64_t v[2];
		snprintf(key, sizeof(key), "cring/%u", i);
		int rc = meta_get_fixed(t, key, v, sizeof(v));
		if (rc == SL_ENOTFOUND)
			continue;
		if (rc)
			return rc;
		if (v[0] == w->shm->hdr->instance && v[1] > ring_tail(w->fe[i].pub))
			ring_release(w->fe[i].pub, v[1]);
	}
	return SL_OK;
}

/* Record membership and owner (first start), or the adopted hard state. */
static int claim_dir(struct lw *w, int fresh, const struct raft_hardstate *hs)
{
	uint32_t ids[CONFIG_NODES_MAX];
	uint32_t self = w->cfg->node_id;
	struct cl_hs h = {hs->term, hs->vote};
	members_sorted(w->cfg, ids);
	int rc = store_txn_begin(w->store, 1, &w->txn);
	if (rc == SL_OK && fresh)
		rc = store_meta_put(w->txn, "raft/members", slice_make(ids, sizeof(ids)));
	if (rc == SL_OK && w->cl->adopted)
		rc = store_meta_put(w->txn, "raft/hs", slice_make(&h, sizeof(h)));
	if (rc == SL_OK)
		rc = store_meta_put(w->txn, "raft/node", slice_make(&self, sizeof(self)));
	rc = rc ? (store_txn_abort(w->txn), rc) : store_txn_commit(w->txn);
	w->txn = NULL;
	return rc;
}

static int cl_start(struct lw *w)
{
	struct lw_cluster *c = w->cl;
	struct cl_load l = {0};
	struct raft_hardstate hs = {0, 0, 0};
	int fresh = 0;
	int rc = snap_fixup(w);
	if (rc)
		return rc;
	rc = store_txn_begin(w->store, 0, &w->txn);
	if (rc)
		return rc;
	rc = check_members(w, w->txn, &fresh);
	if (rc == SL_OK)
		rc = raft_open(w, w->txn, &hs, &l);
	if (rc == SL_OK)
		rc = raft_create(w, &hs, &l); /* copies the entries before the txn ends */
	if (rc == SL_OK)
		rc = ends_reload(w);
	if (rc == SL_OK)
		rc = lw_cons_load(w);
	if (rc == SL_OK) {
		for (uint32_t s = 0; s < w->cfg->partitions_max; s++) {
			shm_store(&w->shm->slots[s].topic_id, UINT32_MAX);
			lw_slot_publish(w, s);
			w->parts[s].touched = 0;
		}
		w->touched_n = 0;
		w->slots_dirty = 0;
		rc = rings_recover(w, w->txn);
	}
	for (size_t i = 0; i < l.n; i++)
		free(l.owned[i]);
	free(l.owned);
	free(l.ents);
	store_txn_abort(w->txn);
	w->txn = NULL;
	if (rc)
		return rc;
	rc = claim_dir(w, fresh, &hs);
	if (rc)
		return rc;
	if ((rc = w->io->open(w->io_arg)) != SL_OK)
		return rc;
	c->net_open = 1;
	lw_slots_refresh_first(w);
	/* frontends tell a cluster from a node alone by this flag */
	shm_store(&w->shm->hdr->cluster.enabled, !solo(w->cfg));
	bump_epoch(w, "logwriter start");
	shm_store(&w->shm->hdr->logwriter_ready, 1);
	lw_wake_frontends(w);
	log_info("%s node %u ready: %u voters, raft log %llu..%llu, applied %llu", solo(w->cfg) ? "single" : "cluster",
		 c->self, solo(w->cfg) ? 1 : w->cfg->cluster_n, (unsigned long long)c->trimmed + 1,
		 (unsigned long long)c->stored_last, (unsigned long long)c->applied);
	return SL_OK;
}

/* ---------- peers ---------- */

/* Tell node `to` its forward was not taken, so it answers those requests at
 * once (best effort: if this frame is lost too, its request timeout does). */
static void forward_refuse(struct lw *w, uint32_t to, enum peer_refusal why)
{
	struct lw_cluster *c = w->cl;
	uint8_t *buf;
	size_t len;
	int64_t now = cl_now(w);
	if (why == PEER_REFUSED_QUEUE_FULL && (!c->fwd_refused_log_ms || now - c->fwd_refused_log_ms >= 60000)) {
		c->fwd_refused_log_ms = now;
		log_warn("forwards from node %u refused: the forward queue holds %zu bytes (forward_queue_bytes_max)", to,
			 c->fwd_bytes);
	}
	if (peer_encode_forward_refused(why, &buf, &len) != SL_OK)
		return;
	io_send(w, to, buf, len);
	free(buf);
}

void lw_cluster_frame_in(struct lw *w, uint32_t from, const uint8_t *p, size_t len)
{
	struct lw_cluster *c = w->cl;
	struct peer_frame f;
	if (peer_decode(p, len, &f) != SL_OK) {
		log_warn("node %u sent a frame that does not decode; dropped", from);
		return;
	}
	struct raft_status st;
	switch (f.kind) {
	case PEER_FRAME_RAFT:
		if (f.raft.from != from) {
			log_warn("node %u sent a raft message claiming to be from %llu; dropped", from,
				 (unsigned long long)f.raft.from);
			break;
		}
		if (f.raft.type == RAFT_MSG_SNAPSHOT) {
			if (!snap_wanted(w, &f.raft)) {
				/* raft answers the leader (what we hold), and the copy goes */
				snap_in_drop(w);
				if (f.snap_offset == 0 || f.snap_last)
					raft_step(c->raft, &f.raft);
				break;
			}
			/* raft learns of it when the node restarts on the installed copy */
			snap_chunk_in(w, &f);
			break;
		}
		raft_step(c->raft, &f.raft);
		break;
	case PEER_FRAME_FORWARD:
		raft_status(c->raft, &st);
		/* an empty queue takes any forward: one larger than the limit
		 * would otherwise be refused at every retry */
		if (st.role != RAFT_LEADER ||
		    (c->fwd_bytes && c->fwd_bytes + f.records_len > w->cfg->forward_queue_bytes_max)) {
			forward_refuse(w, from, st.role != RAFT_LEADER ? PEER_REFUSED_NOT_LEADER : PEER_REFUSED_QUEUE_FULL);
			break;
		}
		if (vec_grow((void **)&c->fwd, &c->fwd_cap, c->fwd_n + 1, sizeof(*c->fwd)))
			break;
		c->fwd[c->fwd_n].recs = malloc(f.records_len ? f.records_len : 1);
		if (!c->fwd[c->fwd_n].recs)
			break;
		memcpy(c->fwd[c->fwd_n].recs, f.records, f.records_len);
		c->fwd[c->fwd_n].len = f.records_len;
		c->fwd_bytes += f.records_len;
		c->fwd_n++;
		break;
	case PEER_FRAME_FORWARD_REFUSED:
		/* requests forwarded since the last bump may be among the refused */
		if (c->forwarded)
			bump_epoch(w, f.refusal == PEER_REFUSED_QUEUE_FULL ? "the leader's forward queue is full"
									 : "the node forwarded to leads no more");
		break;
	case PEER_FRAME_TRANSFER:
		if (raft_transfer_leader(c->raft, f.transfer_to) == SL_OK)
			log_info("transferring leadership to node %u (asked through node %u)", f.transfer_to, from);
		break;
	}
	peer_frame_free(&f);
}

static int node_slot(const struct lw *w, uint64_t id)
{
	for (uint32_t i = 0; i < w->cfg->cluster_n; i++)
		if (w->cfg->cluster[i].id == id)
			return (int)i;
	return -1;
}

/* Send rd's early messages (early = 1: before the turn's txn commits, see
 * raft_msg_early) or the others (early = 0: after). */
static void send_msgs(struct lw *w, const struct raft_ready *rd, int early)
{
	struct lw_cluster *c = w->cl;
	for (size_t i = 0; i < rd->n_msgs; i++) {
		const struct raft_msg *m = &rd->msgs[i];
		if (raft_msg_early(rd, m) != early)
			continue;
		if (m->type == RAFT_MSG_SNAPSHOT) {
			/* sent after raft_advance, in chunks (snap_start, snap_pump) */
			int k = node_slot(w, m->to);
			if (k >= 0) {
				c->snap_out[k].want = 1;
				c->snap_out[k].m = *m;
				c->snap_out[k].m.entries = NULL;
				c->snap_out[k].m.n_entries = 0;
			}
			continue;
		}
		uint8_t *buf;
		size_t len;
		if (peer_encode_raft(m, NULL, 0, 0, 0, &buf, &len) != SL_OK)
			continue;
		if (io_send(w, m->to, buf, len) != SL_OK && !io_connected(w, m->to))
			raft_report_unreachable(c->raft, m->to);
		free(buf);
	}
}

/* ---------- the real outside world: the clock and replica/peer ---------- */

static void on_frame(void *arg, uint32_t from, const uint8_t *p, size_t len)
{
	lw_cluster_frame_in(arg, from, p, len);
}

static int64_t pio_now_ms(void *arg)
{
	(void)arg;
	return time_now_ms();
}

static uint64_t pio_seed(void *arg)
{
	uint64_t seed;
	(void)arg;
	if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed))
		seed = (uint64_t)time_now_ms() ^ (uint64_t)getpid() << 32;
	return seed;
}

/* The frontends' eventfd: reading it is the whole wake-up. */
static void efd_cb(evutil_socket_t fd, short what, void *arg)
{
	uint64_t v;
	(void)what;
	(void)arg;
	if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_warn("eventfd read: %s", strerror(errno));
}

static void wait_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

/* The peer links' TLS context from [tls] (NULL for plain TCP). */
static int peer_tls(const struct config *cfg, SSL_CTX **tls)
{
	char err[512];
	int rc = tls_peer_ctx_new(cfg, tls, err, sizeof(err));
	if (rc)
		log_error("peer links: %s", err);
	return rc;
}

static int pio_open(void *arg)
{
	struct lw *w = arg;
	struct lw_cluster *c = w->cl;
	struct peer_addr addrs[CONFIG_NODES_MAX];
	const struct config *cfg = w->cfg;
	if (!(c->base = event_base_new()) || !(c->efd_ev = event_new(c->base, w->self_efd, EV_READ | EV_PERSIST, efd_cb, w)) ||
	    !(c->wait_ev = evtimer_new(c->base, wait_cb, w)) || event_add(c->efd_ev, NULL) != 0)
		return SL_ENOMEM;
	if (solo(cfg))
		return SL_OK; /* a group of one voter has no links */
	for (uint32_t i = 0; i < cfg->cluster_n; i++) {
		addrs[i].id = cfg->cluster[i].id;
		int rc = config_parse_hostport(cfg->cluster[i].raft, addrs[i].host, sizeof(addrs[i].host),
					       &addrs[i].port);
		if (rc)
			return rc;
	}
	struct peer_opts o = {0};
	o.self_id = cfg->node_id;
	o.nodes = addrs;
	o.n_nodes = cfg->cluster_n;
	o.cluster_id = cluster_id(cfg);
	o.base = c->base;
	o.on_frame = on_frame;
	o.arg = w;
	int rc = peer_tls(cfg, &o.tls);
	if (rc == SL_OK)
		rc = peer_net_open(&c->net, &o);
	SSL_CTX_free(o.tls); /* the net holds its own reference */
	return rc;
}

static void pio_close(void *arg)
{
	struct lw *w = arg;
	struct lw_cluster *c = w->cl;
	if (c->net)
		peer_net_close(c->net);
	c->net = NULL;
	if (c->efd_ev)
		event_free(c->efd_ev);
	if (c->wait_ev)
		event_free(c->wait_ev);
	if (c->base)
		event_base_free(c->base);
	c->efd_ev = c->wait_ev = NULL;
	c->base = NULL;
}

static int pio_send(void *arg, uint32_t to, const uint8_t *frame, size_t len)
{
	struct lw *w = arg;
	return w->cl->net ? peer_send(w->cl->net, to, frame, len) : SL_EAGAIN;
}

static void pio_flush(void *arg)
{
	struct lw *w = arg;
	if (w->cl->net)
		peer_flush(w->cl->net);
}

static int pio_connected(void *arg, uint32_t id)
{
	struct lw *w = arg;
	return w->cl->net && peer_connected(w->cl->net, id);
}

static uint64_t pio_link_gen(void *arg, uint32_t id)
{
	struct lw *w = arg;
	return w->cl->net ? peer_link_gen(w->cl->net, id) : 0;
}

static int64_t pio_last_rx_ms(void *arg, uint32_t id)
{
	struct lw *w = arg;
	return w->cl->net ? peer_last_rx_ms(w->cl->net, id) : 0;
}

/* SIGHUP: the peer links made from now on take the certificate as the
 * files hold it now; links already up keep theirs. */
static void pio_reload(struct lw *w)
{
	SSL_CTX *tls = NULL;
	lw_hup = 0;
	if (!w->cl->net || !tls_peer_enabled(w->cfg))
		return;
	if (peer_tls(w->cfg, &tls) == SL_OK && peer_net_set_tls(w->cl->net, tls) == SL_OK)
		log_info("SIGHUP: peer links reloaded their TLS certificate");
	else
		log_warn("SIGHUP: peer links keep the TLS certificate they had");
	SSL_CTX_free(tls);
}

/* Run the loop once: the peer links and, when sleeping, the frontends'
 * eventfd, for at most timeout_ms; then hand over the frames that arrived. */
static void pio_poll(void *arg, int timeout_ms)
{
	struct lw *w = arg;
	struct lw_cluster *c = w->cl;
	if (lw_hup)
		pio_reload(w);
	if (c->net && peer_pending(c->net))
		timeout_ms = 0;
	if (timeout_ms > 0) {
		struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
		evtimer_add(c->wait_ev, &tv);
		event_base_loop(c->base, EVLOOP_ONCE);
		evtimer_del(c->wait_ev);
	} else {
		event_base_loop(c->base, EVLOOP_NONBLOCK);
	}
	if (c->net)
		peer_deliver(c->net);
}

static const struct lw_io peer_io = {
	pio_now_ms, pio_seed, pio_open, pio_close, pio_send, pio_flush, pio_connected, pio_link_gen,
	pio_last_rx_ms, pio_poll, 0,
};

/* ---------- requests in: propose (leader) or forward (follower) ---------- */

static int map_nearly_full(struct lw *w)
{
	const struct shm_header *h = w->shm->hdr;
	return h->map_bytes && h->used_bytes > h->map_bytes / 10 * 9;
}

/* A publish the frontend sent before the last epoch bump: the frontend has
 * answered (or will answer) it UNAVAILABLE and the client will retry it, so
 * it must not reach the log behind the producer's back (its retry would
 * then land after newer messages). 1 if answered here. */
static int stale_publish(struct lw *w, uint32_t fe, uint16_t type, const uint8_t *p, uint32_t len)
{
	uint16_t epoch;
	if (type == RM_PUBLISH && len >= sizeof(struct rm_publish))
		memcpy(&epoch, p + offsetof(struct rm_publish, epoch), sizeof(epoch));
	else if (type == RM_PUBLISH_BATCH && len >= sizeof(struct rm_publish_batch))
		memcpy(&epoch, p + offsetof(struct rm_publish_batch, epoch), sizeof(epoch));
	else
		return 0;
	uint16_t now = (uint16_t)shm_load(&w->shm->hdr->cluster.epoch);
	if (epoch == now)
		return 0;
	ack_now(w, fe, p, len, SL_EUNAVAILABLE);
	return 1;
}

/* A request the leader answers itself instead of logging it; 1 if handled. */
static int leader_direct(struct lw *w, uint32_t fe, uint16_t type, const uint8_t *p, uint32_t len)
{
	if (stale_publish(w, fe, type, p, len))
		return 1;
	if (type == RM_TRANSFER_LEADER) {
		struct rm_transfer_leader m;
		if (len < sizeof(m)) {
			ack_now(w, fe, p, len, SL_EMALFORMED);
			return 1;
		}
		memcpy(&m, p, sizeof(m));
		int rc = raft_transfer_leader(w->cl->raft, m.to);
		if (rc == SL_OK)
			log_info("transferring leadership to node %u", m.to);
		ack_now(w, fe, p, len, rc == SL_OK ? SL_OK : rc == SL_EINVAL ? SL_EINVAL : SL_EUNAVAILABLE);
		return 1;
	}
	if ((type == RM_PUBLISH || type == RM_PUBLISH_BATCH) && map_nearly_full(w)) {
		ack_now(w, fe, p, len, SL_EFULL);
		return 1;
	}
	return 0;
}

static int retention_due(struct lw *w)
{
	int64_t now = cl_now(w);
	if (now < w->cl->next_retention_ms)
		return 0;
	w->cl->next_retention_ms = now + w->cfg->retention_check_ms;
	return 1;
}

/* A pull into the entry; one that may dead-letter ends it (see pull_appends). */
static int pull_add(struct lw *w, uint32_t node, uint16_t fe, const uint8_t *p, uint32_t len, int *stop)
{
	struct rm_consumer_pull m;
	int rc = ent_add(&w->cl->preq, RM_CONSUMER_PULL, node, fe, p, len);
	if (rc == SL_OK && len >= sizeof(m)) {
		memcpy(&m, p, sizeof(m));
		if (m.flags & RM_PULL_DEAD_LETTER)
			*stop = 1;
	}
	return rc;
}

/* Leader: a pull with something to take goes into the entry (marked if it
 * may dead-letter); one with nothing is held until it has (lw_consumer.c). */
static int take_pull(struct lw *w, uint32_t node, uint16_t fe, const uint8_t *p, uint32_t len, int *stop)
{
	int now = 1;
	uint16_t flags = 0;
	int rc = lw_cons_pull_take(w, node, fe, p, len, cl_now(w), &now, &flags);
	if (rc || !now)
		return rc;
	if (len < sizeof(struct rm_consumer_pull))
		return ent_add(&w->cl->preq, RM_CONSUMER_PULL, node, fe, p, len);
	uint8_t *copy = malloc(len);
	if (!copy)
		return SL_ENOMEM;
	memcpy(copy, p, len);
	memcpy(copy + offsetof(struct rm_consumer_pull, flags), &flags, sizeof(flags));
	rc = pull_add(w, node, fe, copy, len, stop);
	free(copy);
	return rc;
}

/* Leader: one request into the entry being built. Publishes are resolved
 * now, into the turn's transaction (partition, offsets, dedup, answer);
 * other requests go into the entry as they are and act at commit. A topic
 * create or delete ends the entry: nothing more is resolved until it is
 * applied (c->barrier), since publishes resolve against the topics. */
static int take_request(struct lw *w, uint32_t node, uint16_t fe, uint16_t type, const uint8_t *p, uint32_t len,
			int *stop)
{
	struct lw_cluster *c = w->cl;
	if (type == RM_PUBLISH || type == RM_PUBLISH_BATCH) {
		struct lw_req rq = {node, fe, 0, type, p, len};
		if (len >= sizeof(rq.cookie))
			memcpy(&rq.cookie, p, sizeof(rq.cookie));
		return lw_record_apply(w, &rq, &c->res_answers);
	}
	if (type == RM_CONSUMER_PULL)
		return take_pull(w, node, fe, p, len, stop);
	if (type == RM_CREATE_TOPIC || type == RM_DELETE_TOPIC || type == RM_CALLBACK)
		*stop = 1; /* a callback appends to sluice.callbacks when it applies */
	return ent_add(&c->preq, type, node, fe, p, len);
}

/* Leader: the held pulls whose time came, into the entry first. */
static int take_held_pulls(struct lw *w, int64_t now, int *stop)
{
	uint32_t node, len;
	uint16_t fe;
	uint8_t *rec;
	int rc = SL_OK;
	while (rc == SL_OK && !*stop && lw_cons_held_next(w, now, &node, &fe, &rec, &len)) {
		rc = pull_add(w, node, fe, rec, len, stop);
		free(rec);
	}
	return rc;
}

/* The entry from what resolving wrote: batches (their stored values),
 * dedup entries and answers, then the requests that act at commit. */
static int build_entry(struct lw *w, int64_t ts)
{
	struct lw_cluster *c = w->cl;
	int rc = SL_OK;
	for (size_t i = 0; rc == SL_OK && i < w->writes.nb; i++) {
		const struct lw_wbatch *b = &w->writes.b[i];
		struct ent_batch eb = {b->topic_id, b->partition, b->base, b->count,
				       b->data_bytes > UINT32_MAX ? UINT32_MAX : (uint32_t)b->data_bytes};
		struct slice v;
		if (solo(w->cfg)) {
			/* nobody to ship the bytes to: the entry refers to the stored batch */
			rc = ent_add(&c->prop, ENT_BATCH_REF, c->self, 0, &eb, sizeof(eb));
			continue;
		}
		rc = store_batch_get(w->txn, b->topic_id, b->partition, b->base, &v);
		SL_ASSERT(rc != SL_ENOTFOUND); /* written in this txn */
		if (rc == SL_OK && v.len > UINT32_MAX - sizeof(eb))
			rc = SL_ETOOLARGE;
		if (rc == SL_OK)
			rc = ent_add2(&c->prop, ENT_BATCH, c->self, 0, &eb, sizeof(eb), v.base, (uint32_t)v.len);
	}
	for (size_t i = 0; rc == SL_OK && i < w->writes.nd; i++) {
		const struct lw_wdedup *d = &w->writes.d[i];
		struct ent_dedup ed = {d->producer_id, d->base_seq, d->topic_id, d->space, d->d.partition, d->d.count,
				       d->d.base_offset, d->d.ts_ms, d->d.term, d->d.log_index};
		rc = ent_add(&c->prop, ENT_DEDUP, c->self, 0, &ed, sizeof(ed));
	}
	for (size_t i = 0; rc == SL_OK && i < c->res_answers.n; i++) {
		struct lw_answer *a = &c->res_answers.v[i];
		if (!a->a.timestamp_ms)
			a->a.timestamp_ms = ts;
		rc = ent_add(&c->prop, ENT_ANSWER, a->origin_node, (uint16_t)a->fe, &a->a, sizeof(a->a));
	}
	if (rc == SL_OK)
		rc = ent_add_list(&c->prop, c->preq.buf, c->preq.len);
	return rc;
}

/* Leader: one entry from the rings and the forwarded queue, its publishes
 * resolved into w->txn (*proposed = 1 if an entry was appended). */
static int leader_propose(struct lw *w, int *proposed)
{
	struct lw_cluster *c = w->cl;
	struct raft_status st;
	size_t records = 0, bytes = 0;
	int stop = 0, rc = SL_OK;
	*proposed = 0;
	raft_status(c->raft, &st);
	if (st.role != RAFT_LEADER || st.transferee || c->barrier > c->applied || c->deferred_n)
		return SL_OK; /* a transfer, or a topic change not applied yet: the requests wait */
	int64_t ts = cl_now(w);
	if (ts < c->tip_ts)
		ts = c->tip_ts;
	uint64_t index = st.last_index + 1;
	ent_begin(&c->prop, 1, ts);
	ent_begin(&c->preq, 0, 0);
	c->res_answers.n = 0;
	w->writes.on = 1;
	w->writes.nb = w->writes.nd = 0;
	w->batch_ts = ts;
	w->batch_no = index;
	w->batch_records = 0;
	w->cur_term = st.term;
	w->cur_index = index;
	rc = take_held_pulls(w, ts, &stop);
	for (uint32_t i = 0; rc == SL_OK && i < w->nfe && !stop; i++) {
		struct lw_fe *f = &w->fe[i];
		uint64_t pos = ring_tail(f->pub);
		uint16_t type;
		const uint8_t *p;
		uint32_t len;
		c->rel_pos[i] = 0;
		while (rc == SL_OK && !stop && records < w->cfg->batch_records_max && bytes < w->cfg->entry_bytes_max &&
		       ring_peek(f->pub, &pos, &type, &p, &len)) {
			if (!leader_direct(w, i, type, p, len)) {
				rc = take_request(w, c->self, (uint16_t)i, type, p, len, &stop);
				records++;
				bytes += len;
			}
			c->rel_pos[i] = pos;
		}
	}
	/* forwarded lists taken whole are freed once the records pending in
	 * w->parts (slices into them) are stored */
	size_t done = 0;
	while (rc == SL_OK && !stop && done < c->fwd_n && bytes < w->cfg->entry_bytes_max) {
		struct cl_fwd *fw = &c->fwd[done];
		struct ent_view v;
		int r = ent_next(fw->recs, fw->len, &c->fwd_pos, &v);
		if (r == 1) {
			rc = take_request(w, v.origin_node, v.origin_fe, v.type, v.p, v.len, &stop);
			bytes += v.len;
			continue;
		}
		if (r < 0)
			log_warn("dropped the rest of a malformed forward");
		done++;
		c->fwd_pos = 0;
	}
	if (rc == SL_OK && !stop && retention_due(w))
		rc = ent_add(&c->preq, RM_RETENTION, c->self, 0, NULL, 0);
	if (rc == SL_OK)
		rc = lw_parts_flush(w);
	if (rc == SL_OK)
		rc = build_entry(w, ts);
	w->writes.on = 0;
	for (size_t k = 0; k < done; k++) {
		c->fwd_bytes -= c->fwd[k].len;
		free(c->fwd[k].recs);
	}
	if (done) {
		memmove(c->fwd, c->fwd + done, (c->fwd_n - done) * sizeof(*c->fwd));
		c->fwd_n -= done;
	}
	if (rc)
		return rc;
	if (c->prop.count == 0) {
		/* only requests answered directly: nothing to persist before releasing them */
		for (uint32_t i = 0; i < w->nfe; i++) {
			if (c->rel_pos[i] > ring_tail(w->fe[i].pub))
				ring_release(w->fe[i].pub, c->rel_pos[i]);
			c->rel_pos[i] = 0;
		}
		return SL_OK;
	}
	/* the rest of the turn (the raft row, bookkeeping, trimming) must fit:
	 * once proposed, the entry cannot be taken back */
	uint64_t map_bytes, used_bytes;
	store_usage(w->store, &map_bytes, &used_bytes);
	if (used_bytes + 4 * (uint64_t)(c->prop.len + CL_TURN_ROOM_BYTES) > map_bytes &&
	    (rc = store_room(w->txn, CL_TURN_ROOM_BYTES)) != SL_OK)
		return rc;
	size_t dlen;
	uint64_t got = 0;
	uint8_t *data = ent_take(&c->prop, &dlen);
	rc = raft_propose(c->raft, data, dlen, &got);
	if (rc)
		return rc == SL_EUNAVAILABLE ? SL_EINTERNAL : rc; /* leadership was checked above */
	SL_ASSERT(got == index);
	c->resolved_index = index;
	c->tip_ts = ts;
	if (stop)
		c->barrier = index;
	*proposed = 1;
	return SL_OK;
}

static void forward_transfer(struct lw *w, uint32_t fe, uint64_t leader, const uint8_t *p, uint32_t len)
{
	struct rm_transfer_leader m;
	uint8_t *buf;
	size_t blen;
	if (len < sizeof(m)) {
		ack_now(w, fe, p, len, SL_EMALFORMED);
		return;
	}
	memcpy(&m, p, sizeof(m));
	int rc = peer_encode_transfer(m.to, &buf, &blen);
	if (rc == SL_OK) {
		rc = io_send(w, leader, buf, blen);
		free(buf);
	}
	ack_now(w, fe, p, len, rc == SL_OK ? SL_OK : SL_EUNAVAILABLE);
}

/* Follower: hand ring records to the leader; hold them while there is none. */
static void follower_forward(struct lw *w, uint64_t leader)
{
	struct lw_cluster *c = w->cl;
	int64_t now = cl_now(w);
	int give_up = !leader && now - c->no_leader_since_ms > 2 * (int64_t)w->cfg->election_timeout_ms;
	for (uint32_t i = 0; i < w->nfe; i++) {
		struct lw_fe *f = &w->fe[i];
		uint64_t pos = ring_tail(f->pub), done = pos;
		uint16_t type;
		const uint8_t *p;
		uint32_t len;
		if (!leader && !give_up)
			continue;
		ent_begin(&c->fwdw, 0, 0);
		while (c->fwdw.len < CL_FORWARD_BYTES_MAX && ring_peek(f->pub, &pos, &type, &p, &len)) {
			if (give_up)
				ack_now(w, i, p, len, SL_EUNAVAILABLE);
			else if (stale_publish(w, i, type, p, len))
				;
			else if (type == RM_TRANSFER_LEADER)
				forward_transfer(w, i, leader, p, len);
			else if (ent_add(&c->fwdw, type, c->self, (uint16_t)i, p, len) != SL_OK)
				break;
			done = pos;
		}
		if (!give_up && c->fwdw.count) {
			uint8_t *buf;
			size_t blen;
			if (peer_encode_forward(c->self, c->fwdw.buf, c->fwdw.len, &buf, &blen) != SL_OK)
				continue;
			int rc = io_send(w, leader, buf, blen);
			free(buf);
			if (rc != SL_OK)
				continue; /* link down or window full: try again next turn */
			if (!c->forwarded)
				c->fwd_link_gen = io_link_gen(w, leader);
			c->forwarded = 1;
		}
		if (done > ring_tail(f->pub))
			ring_release(f->pub, done);
	}
}

/* ---------- apply ---------- */

static int apply_retention(struct lw *w)
{
	size_t deleted = 0;
	int rc = store_retention_step(w->txn, w->batch_ts, w->cfg->dedup_window_ms, w->cfg->retention_chunk_batches,
				      &deleted);
	if (rc)
		return rc;
	w->cl->retention_deleted += deleted;
	if (deleted >= w->cfg->retention_chunk_batches)
		w->cl->next_retention_ms = 0; /* more to do: the leader asks again at once */
	return SL_OK;
}

/* A resolved record of a committed entry: store it now if its entry was
 * deferred, then make it visible (ends) or route it (answers). */
static int apply_resolved(struct lw *w, const struct raft_entry *e, const struct ent_view *v, int deferred)
{
	struct lw_cluster *c = w->cl;
	if (v->type == ENT_BATCH || (v->type == ENT_BATCH_REF && !deferred)) {
		struct ent_batch b;
		const uint8_t *val;
		uint32_t vlen;
		if (ent_batch_view(v, &b, &val, &vlen) != SL_OK) {
			log_error("raft entry %llu has a malformed batch record; skipped on every node",
				  (unsigned long long)e->index);
			return SL_OK;
		}
		struct lw_part *lp = part_of(w, b.topic_id, b.partition);
		if (deferred) {
			int rc = store_batch_put(w->txn, b.topic_id, b.partition, b.base, b.count, slice_make(val, vlen));
			if (rc == SL_ENOTOPIC || !lp)
				return SL_OK; /* its topic is gone, on every node alike */
			if (rc)
				return rc;
			SL_ASSERT(lp->end == b.base);
			lp->end = b.base + b.count;
		}
		if (lp) {
			SL_ASSERT(b.base + b.count <= lp->end);
			if (b.base + b.count > lp->cend)
				lp->cend = b.base + b.count;
			lw_touch(w, lp);
			lp->stat_msgs += b.count;
			lp->stat_bytes += b.data_bytes;
		}
		return SL_OK;
	}
	if (v->type == ENT_DEDUP) {
		struct ent_dedup d;
		if (!deferred || ent_dedup_view(v, &d) != SL_OK)
			return SL_OK;
		struct store_dedup sd = {d.partition, d.count, d.base_offset, d.ts_ms, d.term, d.log_index};
		int rc = store_dedup_put(w->txn, d.producer_id, d.topic_id, d.space, d.base_seq, &sd);
		return rc == SL_EINVAL ? SL_OK : rc;
	}
	if (v->type == ENT_ANSWER) {
		if (v->len != sizeof(struct rm_ack))
			return SL_OK;
		if (vec_reserve(&c->answers.v, &c->answers.cap, c->answers.n + 1))
			return SL_ENOMEM;
		struct lw_answer *a = &c->answers.v[c->answers.n++];
		a->origin_node = v->origin_node;
		a->fe = v->origin_fe;
		memcpy(&a->a, v->p, sizeof(a->a));
		return SL_OK;
	}
	log_error("raft entry %llu has a record of type %u; skipped on every node", (unsigned long long)e->index,
		  v->type);
	return SL_OK;
}

static int apply_entry(struct lw *w, const struct raft_entry *e)
{
	struct lw_cluster *c = w->cl;
	int64_t ts;
	uint32_t count;
	size_t pos;
	struct ent_view v;
	int r, rc = SL_OK;
	if (e->type != RAFT_ENTRY_NORMAL || e->len == 0)
		return SL_OK;
	if (ent_parse(e->data, e->len, &ts, &count, &pos) != SL_OK) {
		log_error("raft entry %llu is not a request list; skipped on every node",
			  (unsigned long long)e->index);
		return SL_OK;
	}
	int deferred = deferred_has(c, e->index);
	w->batch_ts = ts > w->last_ts ? ts : w->last_ts;
	w->batch_no = e->index;
	w->batch_records = 0;
	w->cur_term = e->term;
	w->cur_index = e->index;
	/* requests applied here that append (publishes of an entry from before
	 * resolving) are visible at once: note what they write */
	w->writes.on = 1;
	w->writes.nb = w->writes.nd = 0;
	size_t first = c->answers.n;
	while (rc == SL_OK && (r = ent_next(e->data, e->len, &pos, &v)) == 1) {
		if (v.type >= ENT_BATCH) {
			rc = apply_resolved(w, e, &v, deferred);
			continue;
		}
		if (v.type == RM_RETENTION) {
			rc = lw_parts_flush(w);
			if (rc == SL_OK)
				rc = apply_retention(w);
			continue;
		}
		struct lw_req rq = {v.origin_node, v.origin_fe, 0, v.type, v.p, v.len};
		if (v.len >= sizeof(rq.cookie))
			memcpy(&rq.cookie, v.p, sizeof(rq.cookie));
		rc = lw_record_apply(w, &rq, &c->answers);
	}
	if (rc == SL_OK)
		rc = lw_parts_flush(w);
	for (size_t i = 0; rc == SL_OK && i < w->writes.nb; i++) {
		struct lw_part *lp = part_of(w, w->writes.b[i].topic_id, w->writes.b[i].partition);
		if (lp) {
			lp->cend = lp->end;
			lp->stat_msgs += w->writes.b[i].count;
			lp->stat_bytes += w->writes.b[i].data_bytes;
		}
	}
	w->writes.on = 0;
	for (size_t i = first; i < c->answers.n; i++)
		if (!c->answers.v[i].a.timestamp_ms)
			c->answers.v[i].a.timestamp_ms = w->batch_ts;
	w->last_ts = w->batch_ts;
	return rc;
}

static void publish_commits(struct lw *w);

/* An entry whose commit needs no write: resolved records only, stored
 * before this turn (not deferred, not persisted by this ready). */
static int commit_is_read_only(struct lw *w, const struct raft_entry *e, uint64_t first_new)
{
	int64_t ts;
	uint32_t count;
	size_t pos;
	struct ent_view v;
	int r;
	if (e->index >= first_new || deferred_has(w->cl, e->index))
		return 0;
	if (e->type != RAFT_ENTRY_NORMAL || e->len == 0)
		return 1;
	if (ent_parse(e->data, e->len, &ts, &count, &pos) != SL_OK)
		return 1;
	while ((r = ent_next(e->data, e->len, &pos, &v)) == 1)
		if (v.type < ENT_BATCH)
			return 0;
	return 1;
}

/* Apply what raft committed. A prefix of entries whose commit writes
 * nothing is published and answered at once, before this turn's txn
 * commits: their batches are on disk since the turn that appended them and
 * a majority holds them, so the ack waits for no flush of its own. */
static int apply_committed(struct lw *w, const struct raft_ready *rd)
{
	struct lw_cluster *c = w->cl;
	uint64_t first_new = rd->n_entries ? rd->entries[0].index : UINT64_MAX;
	int early = 1;
	for (size_t i = 0; i < rd->n_committed; i++) {
		const struct raft_entry *e = &rd->committed[i];
		if (e->index <= c->applied)
			continue;
		SL_ASSERT(e->index == c->applied + 1); /* raft hands out committed entries in order */
		if (early && !commit_is_read_only(w, e, first_new)) {
			early = 0;
			publish_commits(w);
		}
		int rc = apply_entry(w, e);
		if (rc)
			return rc;
		c->applied = e->index;
		c->applied_term = e->term;
		deferred_applied(c, e->index);
	}
	if (early)
		publish_commits(w);
	if (w->slots_dirty && w->txn) {
		/* a topic went: its partitions' slots are free, every end reloads */
		int rc = ends_reload(w);
		if (rc)
			return rc;
	}
	return SL_OK;
}

/* The applied index, with the next transaction (a turn whose commits write
 * nothing has none: a restart applies those entries again, which only
 * moves the commit table). */
static int applied_store(struct lw *w)
{
	struct lw_cluster *c = w->cl;
	struct cl_applied ap = {c->applied, c->applied_term, w->last_ts};
	return store_meta_put(w->txn, "raft/applied", slice_make(&ap, sizeof(ap)));
}

/* Whether a turn writes: hard state, entries, or commits that write. */
static int turn_writes(struct lw *w, const struct raft_ready *rd)
{
	if (w->txn || rd->vote_changed || rd->n_entries)
		return 1;
	for (size_t i = 0; i < rd->n_committed; i++)
		if (rd->committed[i].index > w->cl->applied && !commit_is_read_only(w, &rd->committed[i], UINT64_MAX))
			return 1;
	return 0;
}

/* ---------- one turn: persist, apply, then tell the world ---------- */

/* One entry to the raft log. An entry of resolved publishes has its batches
 * stored now (at their offsets, invisible until commit) and its row keeps
 * only references, so each message is written once. It is stored at commit
 * instead (deferred, the row keeps the values) while an earlier entry is
 * deferred or a topic change before it is not applied, or if one of its
 * partitions is unknown here: its offsets follow what precedes it. */
static int persist_entry(struct lw *w, const struct raft_entry *e)
{
	struct lw_cluster *c = w->cl;
	struct ent_scan s = {0};
	uint8_t *row = NULL;
	size_t row_len = 0;
	int rc = SL_OK;
	if (e->type == RAFT_ENTRY_NORMAL && entry_scan(w, e->data, e->len, &s) != SL_OK) {
		/* applying skips it on every node; it stores nothing */
		log_error("raft entry %llu is malformed", (unsigned long long)e->index);
		memset(&s, 0, sizeof(s));
	}
	if (s.refs && e->index != c->resolved_index) {
		/* references exist only in this node's own rows (and a lone voter's entries) */
		log_error("raft entry %llu holds batch references", (unsigned long long)e->index);
		return SL_ECORRUPT;
	}
	if (s.batches) {
		if (e->index == c->resolved_index) {
			rc = SL_OK; /* this leader stored them when it resolved them */
		} else if (c->deferred_n || c->barrier > c->applied || s.unknown) {
			if (vec_reserve(&c->deferred, &c->deferred_cap, c->deferred_n + 1))
				return SL_ENOMEM;
			c->deferred[c->deferred_n++] = e->index;
			s.batches = 0; /* the row keeps the values */
		} else {
			rc = entry_store(w, e->data, e->len);
			if (rc == SL_EMALFORMED || rc == SL_ECORRUPT) {
				log_error("raft entry %llu: its batches cannot be stored here: %s",
					  (unsigned long long)e->index, sl_strerror(rc));
				rc = SL_ECORRUPT;
			}
		}
		if (rc == SL_OK && s.batches)
			rc = row_strip(e->data, e->len, &row, &row_len);
	}
	if (s.barrier && e->index > c->barrier)
		c->barrier = e->index;
	if (rc == SL_OK)
		rc = store_raft_put(w->txn, e->index, e->term, e->type,
				    row ? slice_make(row, row_len) : slice_make(e->data, e->len));
	free(row);
	return rc;
}

static int persist_entries(struct lw *w, const struct raft_ready *rd)
{
	struct lw_cluster *c = w->cl;
	if (!rd->n_entries)
		return SL_OK;
	uint64_t first = rd->entries[0].index;
	SL_ASSERT(first > c->trimmed); /* raft never rewrites what it compacted */
	if (first <= c->stored_last) {
		SL_ASSERT(first > c->applied); /* nor what it committed */
		log_info("raft log: entries %llu..%llu replaced by the leader's (their batches removed)",
			 (unsigned long long)first, (unsigned long long)c->stored_last);
		int rc = undo_from(w->txn, first);
		if (rc == SL_OK)
			rc = store_raft_truncate(w->txn, first);
		if (rc)
			return rc;
		for (uint64_t i = first; i <= c->stored_last; i++)
			c->log_bytes -= c->sizes[i - c->trimmed - 1];
		c->stored_last = first - 1;
		deferred_cut(c, first);
		if (c->barrier >= first)
			c->barrier = first - 1; /* at most: an earlier one may still be unapplied */
		rc = ends_reload(w);
		if (rc)
			return rc;
	}
	for (size_t i = 0; i < rd->n_entries; i++) {
		const struct raft_entry *e = &rd->entries[i];
		int rc = persist_entry(w, e);
		if (rc == SL_OK)
			rc = sizes_set(c, e->index, e->len);
		if (rc)
			return rc;
		c->log_bytes += e->len;
		c->stored_last = e->index;
	}
	return SL_OK;
}

/* How far the raft log may be trimmed now (0: not at all). */
static uint64_t trim_target(struct lw *w)
{
	struct lw_cluster *c = w->cl;
	struct raft_status st;
	raft_status(c->raft, &st);
	uint64_t upto = c->applied < st.applied ? c->applied : st.applied;
	if (c->log_bytes > w->cfg->raftlog_bytes_max)
		return upto; /* peers further behind will need a snapshot */
	if (st.role != RAFT_LEADER)
		return c->log_bytes > w->cfg->raftlog_bytes_max / 2 ? upto : 0;
	for (size_t i = 0; i < st.n_peers; i++)
		if (st.peers[i].id != c->self && st.peers[i].match < upto)
			upto = st.peers[i].match;
	return upto;
}

static int trim_log(struct lw *w, uint64_t *trimmed_to)
{
	struct lw_cluster *c = w->cl;
	uint64_t upto = trim_target(w);
	*trimmed_to = 0;
	/* rows go in runs: one row per turn would rewrite a raftlog page every turn */
	if (upto < c->trimmed + CL_TRIM_MIN)
		return SL_OK;
	if (upto > c->trimmed + CL_TRIM_CHUNK)
		upto = c->trimmed + CL_TRIM_CHUNK;
	uint64_t term;
	if (!raft_term_at(c->raft, upto, &term))
		return SL_OK;
	size_t deleted;
	int rc = store_raft_trim(w->txn, upto, CL_TRIM_CHUNK, &deleted);
	uint64_t v[2] = {upto, term};
	if (rc == SL_OK)
		rc = store_meta_put(w->txn, "raft/trimmed", slice_make(v, sizeof(v)));
	if (rc == SL_OK)
		*trimmed_to = upto;
	return rc;
}

static void trim_done(struct lw *w, uint64_t upto)
{
	struct lw_cluster *c = w->cl;
	uint64_t n = upto - c->trimmed;
	for (uint64_t i = 0; i < n; i++)
		c->log_bytes -= c->sizes[i];
	memmove(c->sizes, c->sizes + n, (size_t)(c->stored_last - upto) * sizeof(*c->sizes));
	raft_term_at(c->raft, upto, &c->trimmed_term);
	c->trimmed = upto;
	raft_compact(c->raft, upto);
}

static int store_ring_positions(struct lw *w)
{
	for (uint32_t i = 0; i < w->nfe; i++) {
		if (!w->cl->rel_pos[i])
			continue;
		char key[32];
		uint64_t v[2] = {w->shm->hdr->instance, w->cl->rel_pos[i]};
		snprintf(key, sizeof(key), "cring/%u", i);
		int rc = store_meta_put(w->txn, key, slice_make(v, sizeof(v)));
		if (rc)
			return rc;
	}
	return SL_OK;
}

/* The commit table, then acks: what this turn applied so far becomes
 * visible and is answered. */
static void publish_commits(struct lw *w)
{
	struct lw_cluster *c = w->cl;
	int moved = w->slots_dirty || c->answers.n || w->touched_n;
	if (w->slots_dirty)
		for (uint32_t s = 0; s < w->cfg->partitions_max; s++)
			lw_slot_publish(w, s);
	for (size_t k = 0; k < w->touched_n; k++) {
		uint32_t s = w->touched_slots[k];
		if (!w->slots_dirty)
			lw_slot_publish(w, s);
		w->parts[s].touched = 0;
	}
	w->touched_n = 0;
	w->slots_dirty = 0;
	for (size_t i = 0; i < c->answers.n; i++) {
		const struct lw_answer *a = &c->answers.v[i];
		if (a->origin_node == c->self && a->fe < w->nfe)
			lw_ack_push(w, a->fe, &a->a);
	}
	c->answers.n = 0;
	if (moved)
		lw_wake_frontends(w);
}

/* After the txn: the rest of the commits, first offsets, then ring space. */
static void publish_applied(struct lw *w)
{
	struct lw_cluster *c = w->cl;
	if (c->retention_deleted) {
		lw_slots_refresh_first(w);
		c->retention_deleted = 0;
	}
	publish_commits(w);
	for (uint32_t i = 0; i < w->nfe; i++) {
		if (c->rel_pos[i] > ring_tail(w->fe[i].pub))
			ring_release(w->fe[i].pub, c->rel_pos[i]);
		c->rel_pos[i] = 0;
	}
}

static int rings_have_work(struct lw *w)
{
	for (uint32_t i = 0; i < w->nfe; i++) {
		uint64_t pos = ring_tail(w->fe[i].pub);
		uint16_t type;
		const uint8_t *p;
		uint32_t len;
		if (ring_peek(w->fe[i].pub, &pos, &type, &p, &len))
			return 1;
	}
	return 0;
}

/* Resolving ran out of map: nothing of it is stored (its nested txn was
 * dropped) or proposed. The requests it took get STORAGE_FULL; forwarded
 * ones are dropped (their node answers UNAVAILABLE when they time out). */
static int propose_refused(struct lw *w)
{
	struct lw_cluster *c = w->cl;
	log_warn("storage full: publishes refused until retention or a larger map_bytes frees room");
	w->writes.on = 0;
	c->res_answers.n = 0;
	for (uint32_t i = 0; i < w->nfe; i++) {
		uint64_t pos = ring_tail(w->fe[i].pub);
		uint16_t type;
		const uint8_t *p;
		uint32_t len;
		while (pos < c->rel_pos[i] && ring_peek(w->fe[i].pub, &pos, &type, &p, &len))
			ack_now(w, i, p, len, SL_EFULL);
		if (c->rel_pos[i] > ring_tail(w->fe[i].pub))
			ring_release(w->fe[i].pub, c->rel_pos[i]);
		c->rel_pos[i] = 0;
	}
	return ends_reload(w); /* the partition ends resolving moved */
}

/* leader_propose in a transaction nested in w->txn, so that a full map
 * refuses the turn's publishes instead of failing the node. */
static int leader_propose_nested(struct lw *w, int *proposed)
{
	struct store_txn *parent = w->txn, *child = NULL;
	int rc = store_txn_nest(parent, &child);
	if (rc)
		return rc;
	w->txn = child;
	rc = leader_propose(w, proposed);
	w->txn = parent;
	if (rc == SL_EFULL) {
		SL_ASSERT(!*proposed);
		store_txn_abort(child);
		return propose_refused(w);
	}
	if (rc) {
		store_txn_abort(child);
		return rc;
	}
	return store_txn_commit(child);
}

/* Leader: requests are waiting (rings, forwards, retention). */
static int leader_has_work(struct lw *w)
{
	int64_t now = cl_now(w);
	return w->cl->fwd_n || rings_have_work(w) || now >= w->cl->next_retention_ms || lw_cons_held_ready(w, now);
}

/* One turn (*did = 1 if it did something): a leader resolves what its
 * rings and the forwarded queue hold into a new entry; then the ready is
 * persisted and applied in one transaction. An error is fatal. */
static int cl_ready(struct lw *w, int leader, int *did)
{
	struct lw_cluster *c = w->cl;
	struct raft_ready rd;
	int rc, proposed = 0;
	*did = 0;
	if (!leader) {
		c->was_leader = 0;
		lw_cons_held_drop(w);
	}
	if (leader && leader_has_work(w)) {
		if ((rc = store_txn_begin(w->store, 1, &w->txn)) != SL_OK)
			return rc;
		if (!c->was_leader)
			rc = ends_reload(w); /* the tip: every end stored so far, ours to extend */
		if (rc == SL_OK)
			rc = leader_propose_nested(w, &proposed);
		c->was_leader = rc == SL_OK;
		if (rc || !proposed) {
			store_txn_abort(w->txn); /* nothing was written if nothing was proposed */
			w->txn = NULL;
			if (rc)
				return rc;
		}
	}
	if (!raft_ready(c->raft, &rd)) {
		SL_ASSERT(!proposed);
		return SL_OK;
	}
	/* snapshots arrive through the peer link and a restart, never through raft_step */
	SL_ASSERT(rd.snapshot_index == 0);
	/* a leader's appends go out now: the followers sync while we do */
	send_msgs(w, &rd, 1);
	w->io->flush(w->io_arg);
	uint64_t trimmed_to = 0;
	rc = SL_OK;
	if (!turn_writes(w, &rd)) {
		/* commits of entries stored in earlier turns: visible and answered
		 * at once, no transaction */
		rc = apply_committed(w, &rd);
		if (rc)
			return rc;
		send_msgs(w, &rd, 0);
		publish_applied(w);
		raft_advance(c->raft, &rd);
		*did = 1;
		return SL_OK;
	}
	if (!w->txn && (rc = store_txn_begin(w->store, 1, &w->txn)) != SL_OK)
		return rc;
	if (rd.vote_changed) {
		struct cl_hs h = {rd.hs.term, rd.hs.vote};
		rc = store_meta_put(w->txn, "raft/hs", slice_make(&h, sizeof(h)));
	}
	if (rc == SL_OK)
		rc = persist_entries(w, &rd);
	c->resolved_index = 0;
	if (rc == SL_OK && rd.n_committed)
		rc = apply_committed(w, &rd);
	if (rc == SL_OK)
		rc = applied_store(w);
	if (rc == SL_OK)
		rc = store_ring_positions(w);
	if (rc == SL_OK)
		rc = trim_log(w, &trimmed_to);
	/* A turn that only applies (no entry, no vote, no term) need not be
	 * durable: what it applied is in the synced raft log and is applied
	 * again after a power loss; skipping its meta flush takes the second
	 * fsync off a publish's critical path on the leader. */
	if (rc)
		store_txn_abort(w->txn);
	else
		rc = lw_txn_commit_timed(w, !rd.vote_changed && !rd.n_entries);
	w->txn = NULL;
	if (rc) {
		log_error("raft turn not stored: %s", sl_strerror(rc));
		return sl_err_is_wire(rc) ? SL_EINTERNAL : rc;
	}
	send_msgs(w, &rd, 0);
	publish_applied(w);
	raft_advance(c->raft, &rd);
	if (trimmed_to)
		trim_done(w, trimmed_to);
	*did = 1;
	return SL_OK;
}

/* ---------- observation: status in shm, epoch ---------- */

static void observe(struct lw *w, struct raft_status *st)
{
	struct lw_cluster *c = w->cl;
	struct shm_cluster *sc = &w->shm->hdr->cluster;
	int64_t now = cl_now(w);
	raft_status(c->raft, st);
	if (st->term != c->seen_term || st->leader != c->seen_leader) {
		if (st->leader && st->leader != c->seen_leader)
			log_info("term %llu: leader is node %llu%s", (unsigned long long)st->term,
				 (unsigned long long)st->leader, st->leader == c->self ? " (this node)" : "");
		if (c->seen_leader && st->leader != c->seen_leader)
			bump_epoch(w, "leader changed");
		if (!st->leader && c->seen_leader)
			c->no_leader_since_ms = now;
		c->seen_term = st->term;
		c->seen_leader = st->leader;
	}
	if (c->forwarded && st->leader &&
	    (!io_connected(w, st->leader) || io_link_gen(w, st->leader) != c->fwd_link_gen))
		bump_epoch(w, "link to the leader lost");
	shm_stat_store(&sc->role, st->role);
	shm_stat_store(&sc->leader_id, (uint32_t)st->leader);
	shm_stat_store(&sc->term, st->term);
	shm_stat_store(&sc->first_index, st->first_index);
	shm_stat_store(&sc->last_index, st->last_index);
	shm_stat_store(&sc->commit_index, st->commit);
	shm_stat_store(&sc->applied_index, c->applied);
	shm_stat_store(&sc->n_nodes, w->cfg->cluster_n);
	for (uint32_t i = 0; i < w->cfg->cluster_n && i < SHM_NODES_MAX; i++) {
		uint32_t id = w->cfg->cluster[i].id;
		struct shm_cluster_node *n = &sc->nodes[i];
		int64_t rx = id == c->self ? now : w->io->last_rx_ms(w->io_arg, id);
		uint64_t match = 0;
		for (size_t k = 0; st->role == RAFT_LEADER && k < st->n_peers; k++)
			if (st->peers[k].id == id)
				match = id == c->self ? st->last_index : st->peers[k].match;
		shm_stat_store(&n->id, id);
		shm_stat_store(&n->last_contact_ms, rx);
		shm_stat_store(&n->reachable, rx && now - rx <= (int64_t)w->cfg->election_timeout_ms);
		shm_stat_store(&n->match_index, match);
	}
	shm_stat_store(&sc->updated_ms, (uint64_t)now);
	if (now >= c->next_usage_ms) {
		uint64_t map, used;
		store_usage(w->store, &map, &used);
		shm_stat_store(&w->shm->hdr->map_bytes, map);
		shm_stat_store(&w->shm->hdr->used_bytes, used);
		c->next_usage_ms = now + 1000;
	}
}

/* ---------- the loop ---------- */

static void cl_tick(struct lw *w)
{
	struct lw_cluster *c = w->cl;
	int64_t now = cl_now(w);
	int n = 0;
	while (now >= c->next_tick_ms && n++ < 1000) {
		raft_tick(c->raft);
		c->next_tick_ms += c->tick_ms;
	}
	if (now >= c->next_tick_ms)
		c->next_tick_ms = now + c->tick_ms;
}

static void cl_sleep(struct lw *w, int busy)
{
	struct lw_cluster *c = w->cl;
	if (busy) {
		w->io->poll(w->io_arg, 0);
		return;
	}
	for (uint32_t i = 0; i < w->nfe; i++)
		ring_sleep_prepare(w->fe[i].pub);
	int64_t wait = c->next_tick_ms - cl_now(w);
	/* a leader waiting for a topic change to apply lets the rings wait too */
	int held = c->was_leader && (c->barrier > c->applied || c->deferred_n);
	if ((!held && rings_have_work(w)) || lw_stop)
		wait = 0;
	w->io->poll(w->io_arg, wait < 0 ? 0 : (int)wait);
	for (uint32_t i = 0; i < w->nfe; i++)
		ring_sleep_done(w->fe[i].pub);
}

int lw_cluster_step(struct lw *w, int *done)
{
	struct lw_cluster *c = w->cl;
	struct raft_status st;
	*done = 0;
	cl_sleep(w, c->busy);
	cl_tick(w);
	for (uint32_t i = 0; i < w->nfe; i++)
		if (w->fe[i].backlog_n)
			lw_ack_flush_backlog(w, i);
	observe(w, &st);
	if (lw_stop) {
		*done = 1;
		return SL_OK;
	}
	int leader = st.role == RAFT_LEADER;
	if (!leader) {
		if (st.leader)
			c->no_leader_since_ms = 0;
		else if (!c->no_leader_since_ms)
			c->no_leader_since_ms = cl_now(w);
		follower_forward(w, st.leader);
	}
	int did = 0;
	int rc = cl_ready(w, leader, &did);
	if (rc)
		return rc;
	snap_pump(w);
	if (c->reseed) {
		w->exit_reseed = 1;
		*done = 1;
		return SL_OK;
	}
	c->busy = did || (leader && c->barrier <= c->applied && !c->deferred_n && rings_have_work(w));
	return SL_OK;
}

int lw_cluster_open(struct lw *w)
{
	int rc;
	if (!w->io) {
		w->io = &peer_io;
		w->io_arg = w;
	}
	w->cl = calloc(1, sizeof(*w->cl));
	if (!w->cl)
		return SL_ENOMEM;
	struct lw_cluster *c = w->cl;
	c->self = w->cfg->node_id;
	c->rel_pos = calloc(w->nfe, sizeof(*c->rel_pos));
	c->snap_in_fd = -1;
	for (uint32_t k = 0; k < CONFIG_NODES_MAX; k++)
		c->snap_out[k].fd = -1;
	if (!c->rel_pos)
		return SL_ENOMEM;
	rc = cl_start(w);
	if (rc) {
		log_error("cluster start-up failed: %s", sl_strerror(rc));
		return rc;
	}
	c->busy = 1;
	c->next_tick_ms = cl_now(w) + c->tick_ms;
	return SL_OK;
}

void lw_cluster_close(struct lw *w)
{
	struct lw_cluster *c = w->cl;
	if (!c)
		return;
	if (c->snap_in_fd >= 0)
		close(c->snap_in_fd);
	for (uint32_t k = 0; k < CONFIG_NODES_MAX; k++) {
		snap_copy_stop(&c->snap_out[k]);
		if (c->snap_out[k].fd >= 0)
			close(c->snap_out[k].fd);
	}
	if (c->net_open)
		w->io->close(w->io_arg);
	if (c->raft)
		raft_free(c->raft);
	for (size_t i = 0; i < c->fwd_n; i++)
		free(c->fwd[i].recs);
	free(c->fwd);
	free(c->answers.v);
	free(c->res_answers.v);
	free(c->deferred);
	ent_free(&c->preq);
	free(c->sizes);
	free(c->rel_pos);
	ent_free(&c->prop);
	ent_free(&c->fwdw);
	free(c);
	w->cl = NULL;
}

int lw_cluster_run(struct lw *w)
{
	int done = 0;
	int rc = lw_cluster_open(w);
	while (rc == SL_OK && !done)
		rc = lw_cluster_step(w, &done);
	if (w->cl && w->cl->raft)
		log_info("stopped");
	lw_cluster_close(w);
	return rc;
}
