/*
 * lw_sim.c: deterministic simulation of the real logwriter: the raft host
 * loop (replica/logwriter/lw_cluster.c), request handling and apply
 * (logwriter.c) and the LMDB store (replica/storage), one turn of one node
 * at a time, under a simulated clock and network (lw_io.h) and crashes.
 * raft_sim.c checks the raft module alone; this checks what is built on it:
 * batches stored at append, a truncated suffix undone with its batches and
 * dedup entries, apply in the turn that commits, snapshots, one-voter
 * groups, topic barriers, acks through the frontends' rings.
 *
 * - Storage: each node's real LMDB environment in a tmpfs directory,
 *   /dev/shm/sluice-sim-<pid>-<node> (the "in-memory storage"). A crash
 *   drops the node's state without its shutdown path: a turn cut by a crash
 *   has its open write transaction aborted, then the environment is closed
 *   (LMDB forbids opening it twice in one process) and opened again, which
 *   leaves on disk what a kill -9 leaves.
 * - Power loss (powerloss.c): the sim interposes the file calls LMDB and
 *   the logwriter make, so each node's data dir has a durable state: a
 *   file's content as of its last fsync/fdatasync (or O_DSYNC write, LMDB's
 *   meta page), the directory's names as of its last fsync. A power loss
 *   kills the node with its frontends and rewrites its data dir to that
 *   state: every write not made durable is lost. It strikes one node
 *   between turns, or before one of the durable writes of its next turn or
 *   start (inside an LMDB commit: before its data sync or its meta page),
 *   or every node at once; in snapshot seeds, before each step of a
 *   snapshot install (the copy's fsync, the meta's, each directory sync in
 *   snapinst.c and the master's rename, the adopting commit). After a cut
 *   nothing the node does leaves it: its messages are dropped, its rings
 *   go with its segment.
 * - Network: frames between the nodes go through one queue with random
 *   delays; each link is FIFO as TCP is, except raft messages, which are
 *   also reordered and duplicated; a link reset or a partition drops what a
 *   link holds and bumps its generation (peer_link_gen). A frame sent while
 *   the link is down is refused (SL_EAGAIN), as peer_send does.
 * - Frontends: the sim writes publish requests (single and batch, with
 *   producer ids and sequences) into each node's shm pub ring, with the
 *   epoch a frontend stamps, and reads answers from the ack ring. Like a
 *   frontend plus its client, it retries the same bytes after an epoch bump,
 *   a timeout or a crash, possibly through another node.
 * - Crashes: of the logwriter (the shm segment and its rings survive), of
 *   the whole node (a new segment), and in the middle of a turn (while a
 *   leader's appends go out, before its transaction commits). A snapshot
 *   that arrives makes the node restart on it, as the master does.
 *
 * Checked: every acknowledged message is stored at the offset its ack names
 * with the bytes that were sent, on every node that committed that far; no
 * (producer, sequence) is stored twice; two acks of one message (a retry)
 * name the same offset; committed records never change and every node has
 * the same ones; the commit table never goes back within a logwriter's life
 * and never passes the stored end. A restarted node (kill -9, power loss,
 * snapshot) holds the raft log it had synced at the end of its last turn
 * (it may have acknowledged those entries; only a snapshot past its commit
 * index replaces them) and a term no lower, and no snapshot-in.mdb,
 * snapshot-in.meta or snapshot-in.meta.tmp is left once it runs. After the
 * faults stop, every producer's last publish commits on every node
 * (liveness).
 *
 * Everything random comes from the seed: `lw_sim --seed N -v` replays one.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>

#include "config.h"
#include "err.h"
#include "log.h"
#include "logwriter.h"
#include "lw_int.h"
#include "lw_io.h"
#include "peer.h"
#include "powerloss.h"
#include "pubbatch.h"
#include "ring.h"
#include "ringmsg.h"
#include "shm.h"
#include "snapinst.h"
#include "store.h"
#include "store_int.h"

#define NODES_MAX 3
#define PRODUCERS 4
#define SEQ_MAX 20000
#define SLOTS 64
#define T0_PARTS 3
#define CHAOS_MS 4000
#define LIVE_MS 30000
#define TIMEOUT_MS 3000

struct frame {
	int from, to;
	int64_t due;
	uint64_t gen;
	uint8_t *p; /* body, no length prefix */
	size_t len;
};

struct node {
	struct sim *s;
	int idx;
	uint32_t id;
	struct config cfg;
	struct shm shm;
	int shm_fd, self_efd, fe_efd;
	struct lw *w;          /* NULL: the logwriter is down */
	int64_t up_at;         /* down: restart then */
	uint64_t incarnation;
	uint64_t cend[SLOTS];  /* commit table seen during this incarnation */
	uint32_t ctopic[SLOTS];
	int64_t last_rx[NODES_MAX];
	int pl;                /* its data dir in powerloss.h */
	int cut;               /* power was lost during its turn or start: it dies after it */
	uint32_t cut_arm;      /* lose power before its n-th durable write from now (0: no) */
	int installing;        /* started with a snapshot install under way */
	/* its raft log as synced at the end of its last clean turn: a restart
	 * must find it (only a snapshot newer than the commit index replaces it) */
	uint64_t rec_last, rec_term, rec_hs_term, rec_commit;
};

struct sent {
	int producer;          /* -1: admin */
	uint64_t seq;
	uint32_t count;
};

struct producer {
	uint64_t pid;
	const char *topic;
	uint32_t part;         /* RM_PARTITION_ANY or a partition */
	int keyed;
	uint64_t seq;          /* first sequence of the current request */
	uint32_t count;
	int batch;
	uint8_t *req;          /* the request bytes (cookie and epoch stamped per send) */
	uint32_t req_len;
	int active;            /* a request is in flight */
	int node;
	uint64_t cookie;
	uint16_t epoch;
	int64_t sent_ms, retry_ms;
	int idle;              /* liveness phase: stop after the last ack */
	int64_t *ack_part;     /* per sequence: -1 not acked */
	uint64_t *ack_off;
};

struct ref {
	uint64_t pid, seq;
	int64_t ts;
};

struct sim {
	uint64_t seed, rng;
	int verbose;
	int n;
	int snap_small, churn;
	uint32_t drop_permille, dup_pct, crash_permille, midturn_permille, delay_ms;
	uint64_t rng_power;    /* power faults draw from their own stream */
	uint32_t power_permille, power_all_permille, power_snap_pct;
	int acting;            /* index of the node in a turn or a start, -1 */
	int64_t now, t0;
	struct node nodes[NODES_MAX];
	int link_up[NODES_MAX][NODES_MAX];
	uint64_t link_gen[NODES_MAX][NODES_MAX];
	int64_t link_heal[NODES_MAX][NODES_MAX];
	int64_t last_due[NODES_MAX][NODES_MAX];
	struct frame *net;
	size_t n_net, cap_net;
	struct producer prod[PRODUCERS];
	struct sent *sent;
	size_t n_sent, cap_sent;
	int admin_active, admin_node, topic_ok, churn_live;
	uint64_t admin_cookie;
	int64_t admin_ms;
	struct ref *refs[T0_PARTS]; /* committed records of t0, as first seen */
	size_t n_refs[T0_PARTS], cap_refs[T0_PARTS];
	int chaos;
	jmp_buf crash_jb;
	void *crash_frame;              /* the frame a mid-turn crash abandoned (its sender frees it after io_send) */
	int stepping;          /* index of the node in a turn, -1 */
	uint64_t stats_acks, stats_dups, stats_crashes, stats_midturn, stats_reseeds, stats_frames;
	uint64_t stats_power, stats_power_mid, stats_power_snap, stats_power_all;
	int failed;
	char why[512];
	char dir[256];
};

static struct sim *cur_sim;

/* ---------- helpers ---------- */

static uint64_t rnd(struct sim *s)
{
	uint64_t z = (s->rng += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static uint32_t rn(struct sim *s, uint32_t n)
{
	return (uint32_t)(rnd(s) % n);
}

/* The power faults' stream: a seed keeps its other faults as they were. */
static uint32_t rn_power(struct sim *s, uint32_t n)
{
	uint64_t saved = s->rng;
	s->rng = s->rng_power;
	uint32_t r = rn(s, n);
	s->rng_power = s->rng;
	s->rng = saved;
	return r;
}

static void trace(struct sim *s, const char *fmt, ...)
{
	if (s->verbose < 1)
		return;
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "[%6" PRId64 "] ", s->now - s->t0);
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
}

static void fail(struct sim *s, const char *fmt, ...)
{
	if (s->failed)
		return;
	va_list ap;
	va_start(ap, fmt);
	int k = snprintf(s->why, sizeof(s->why), "t=%" PRId64 ": ", s->now - s->t0);
	vsnprintf(s->why + k, sizeof(s->why) - (size_t)k, fmt, ap);
	va_end(ap);
	s->failed = 1;
	trace(s, "FAIL %s", s->why);
}

static void grow(void **v, size_t *cap, size_t need, size_t size)
{
	if (need <= *cap)
		return;
	size_t n = *cap ? *cap * 2 : 64;
	while (n < need)
		n *= 2;
	*v = realloc(*v, n * size);
	if (!*v)
		abort();
	*cap = n;
}

/* The bytes of message (pid, seq): what must be stored for it. */
static size_t payload_of(uint64_t pid, uint64_t seq, uint8_t *buf)
{
	int k = snprintf((char *)buf, 64, "m-%" PRIu64 "-%" PRIu64 "-", pid, seq);
	size_t pad = (size_t)((pid * 31 + seq * 7) % 90);
	for (size_t i = 0; i < pad; i++)
		buf[k + i] = (uint8_t)('a' + (seq + i) % 26);
	return (size_t)k + pad;
}

/* ---------- the simulated network (lw_io) ---------- */

static int node_up(const struct sim *s, int i)
{
	return s->nodes[i].w != NULL;
}

static int64_t sio_now(void *arg)
{
	struct node *nd = arg;
	return nd->s->now;
}

static uint64_t sio_seed(void *arg)
{
	struct node *nd = arg;
	return nd->s->seed * 1000003u + nd->id * 7919u + nd->incarnation;
}

static int sio_open(void *arg)
{
	(void)arg;
	return SL_OK;
}

static void sio_close(void *arg)
{
	(void)arg;
}

static int link_ok(const struct sim *s, int a, int b)
{
	return s->link_up[a][b] && node_up(s, b);
}

static void net_cut(struct sim *s, int a, int b)
{
	size_t k = 0;
	for (size_t i = 0; i < s->n_net; i++) {
		struct frame *f = &s->net[i];
		if (f->from == a && f->to == b)
			free(f->p);
		else
			s->net[k++] = *f;
	}
	s->n_net = k;
	s->link_gen[a][b]++;
}

static void net_push(struct sim *s, int from, int to, const uint8_t *p, size_t len, int64_t due)
{
	grow((void **)&s->net, &s->cap_net, s->n_net + 1, sizeof(*s->net));
	struct frame *f = &s->net[s->n_net++];
	f->from = from;
	f->to = to;
	f->due = due;
	f->gen = s->link_gen[from][to];
	f->p = malloc(len ? len : 1);
	memcpy(f->p, p, len);
	f->len = len;
}

static int sio_send(void *arg, uint32_t to, const uint8_t *frame, size_t len)
{
	struct node *nd = arg;
	struct sim *s = nd->s;
	int b = (int)to - 1;
	if (b < 0 || b >= s->n || b == nd->idx || len < 4)
		return SL_EINVAL;
	if (!link_ok(s, nd->idx, b))
		return SL_EAGAIN;
	if (nd->cut)
		return SL_OK; /* the power is off: it never left */
	if (s->chaos && s->stepping == nd->idx && rn(s, 1000) < s->midturn_permille) {
		/* a crash while this turn's messages go out */
		s->stats_midturn++;
		s->crash_frame = (void *)frame;
		longjmp(s->crash_jb, 1);
	}
	const uint8_t *body = frame + 4;
	size_t blen = len - 4;
	struct peer_frame pf;
	int reorder = 0;
	if (peer_decode(body, blen, &pf) == SL_OK) {
		reorder = pf.kind == PEER_FRAME_RAFT && pf.raft.type != RAFT_MSG_SNAPSHOT;
		peer_frame_free(&pf);
	}
	int64_t due = s->now + rn(s, s->delay_ms + 1);
	if (!reorder && due < s->last_due[nd->idx][b])
		due = s->last_due[nd->idx][b]; /* FIFO as on one TCP connection */
	if (!reorder)
		s->last_due[nd->idx][b] = due;
	net_push(s, nd->idx, b, body, blen, due);
	if (reorder && s->chaos && rn(s, 100) < s->dup_pct)
		net_push(s, nd->idx, b, body, blen, due + rn(s, 50));
	s->stats_frames++;
	return SL_OK;
}

static void sio_flush(void *arg)
{
	(void)arg;
}

static int sio_connected(void *arg, uint32_t id)
{
	struct node *nd = arg;
	int b = (int)id - 1;
	return b >= 0 && b < nd->s->n && b != nd->idx && link_ok(nd->s, nd->idx, b);
}

static uint64_t sio_link_gen(void *arg, uint32_t id)
{
	struct node *nd = arg;
	int b = (int)id - 1;
	return b >= 0 && b < nd->s->n ? nd->s->link_gen[nd->idx][b] : 0;
}

static int64_t sio_last_rx(void *arg, uint32_t id)
{
	struct node *nd = arg;
	int b = (int)id - 1;
	return b >= 0 && b < nd->s->n ? nd->last_rx[b] : 0;
}

/* Deliver what is due to this node: the earliest frames first, at most a
 * few per turn (so a turn can see part of what arrived). */
static void sio_poll(void *arg, int timeout_ms)
{
	struct node *nd = arg;
	struct sim *s = nd->s;
	(void)timeout_ms; /* the sim moves the clock, not the node */
	for (int k = 0; k < 16 && nd->w; k++) {
		size_t best = SIZE_MAX;
		for (size_t i = 0; i < s->n_net; i++)
			if (s->net[i].to == nd->idx && s->net[i].due <= s->now &&
			    (best == SIZE_MAX || s->net[i].due < s->net[best].due))
				best = i;
		if (best == SIZE_MAX)
			return;
		struct frame f = s->net[best];
		memmove(s->net + best, s->net + best + 1, (s->n_net - best - 1) * sizeof(*s->net));
		s->n_net--;
		if (f.gen == s->link_gen[f.from][f.to]) {
			nd->last_rx[f.from] = s->now;
			lw_cluster_frame_in(nd->w, (uint32_t)f.from + 1, f.p, f.len);
		}
		free(f.p);
	}
}

static const struct lw_io sim_io = {
	sio_now, sio_seed, sio_open, sio_close, sio_send, sio_flush, sio_connected, sio_link_gen, sio_last_rx,
	sio_poll, 1,
};

/* ---------- nodes ---------- */

static void node_config(struct sim *s, struct node *nd)
{
	struct config *c = &nd->cfg;
	config_defaults(c);
	c->node_id = nd->id;
	snprintf(c->data_dir, sizeof(c->data_dir), "%s-%u", s->dir, nd->id);
	c->frontends = 1;
	c->ring_bytes = 64 << 10;
	c->partitions_max = SLOTS;
	c->map_bytes = 64ull << 20;
	c->sync = 1;
	c->election_timeout_ms = 150;
	c->heartbeat_ms = 30;
	c->retention_check_ms = 500;
	c->raftlog_bytes_max = s->snap_small ? 24u << 10 : 1ull << 30;
	c->cluster_n = s->n == 1 ? 0 : (uint32_t)s->n;
	for (int i = 0; s->n > 1 && i < s->n; i++) {
		c->cluster[i].id = (uint32_t)i + 1;
		snprintf(c->cluster[i].raft, sizeof(c->cluster[i].raft), "127.0.0.1:%d", 1 + i);
	}
}

static int shm_make(struct node *nd)
{
	return shm_create(&nd->shm, &nd->shm_fd, nd->id, 1, SLOTS, nd->cfg.ring_bytes);
}

static void shm_drop(struct node *nd)
{
	shm_detach(&nd->shm);
	close(nd->shm_fd);
}

/* The raft log as the store holds it: last index and its term (the
 * trimmed point when no row is left), the hard state's term. */
struct log_tail {
	uint64_t last, last_term, trimmed, hs_term;
};

static int term_cb(void *arg, uint64_t index, uint64_t term, uint32_t type, struct slice data)
{
	uint64_t *want = arg; /* [index, term found] */
	(void)type;
	(void)data;
	if (index == want[0])
		want[1] = term;
	return 1;
}

/* The term of entry idx in the store (0: not there). */
static uint64_t store_term_at(struct store *st, uint64_t idx)
{
	struct store_txn *t;
	uint64_t want[2] = {idx, 0};
	if (store_txn_begin(st, 0, &t) != SL_OK)
		return 0;
	store_raft_foreach(t, idx, term_cb, want);
	store_txn_abort(t);
	return want[1];
}

static void log_tail_read(struct store *st, struct log_tail *lt)
{
	struct store_txn *t;
	struct slice v;
	uint64_t u[2];
	memset(lt, 0, sizeof(*lt));
	if (store_txn_begin(st, 0, &t) != SL_OK)
		return;
	if (store_meta_get(t, "raft/trimmed", &v) == SL_OK && v.len == sizeof(u)) {
		memcpy(u, v.base, sizeof(u));
		lt->trimmed = lt->last = u[0];
		lt->last_term = u[1];
	}
	if (store_meta_get(t, "raft/hs", &v) == SL_OK && v.len == sizeof(u)) {
		memcpy(u, v.base, sizeof(u));
		lt->hs_term = u[0];
	}
	MDB_cursor *c;
	MDB_val k, d;
	if (store_cursor_open(t, DB_RAFTLOG, &c) == SL_OK) {
		if (mdb_cursor_get(c, &k, &d, MDB_LAST) == MDB_SUCCESS && k.mv_size == 8 && d.mv_size >= 8 &&
		    be_get64(k.mv_data) > lt->last) {
			lt->last = be_get64(k.mv_data);
			lt->last_term = be_get64(d.mv_data);
		}
		mdb_cursor_close(c);
	}
	store_txn_abort(t);
}

/* After a clean turn: what the node has synced. */
static void log_record(struct node *nd)
{
	struct log_tail lt;
	nd->rec_commit = shm_load(&nd->shm.hdr->cluster.commit_index);
	log_tail_read(nd->w->store, &lt);
	nd->rec_last = lt.last;
	nd->rec_term = lt.last_term;
	nd->rec_hs_term = lt.hs_term;
}

/* A restarted node holds every entry it synced before (it may have
 * acknowledged them to a leader), unless it adopted a snapshot past its
 * commit index, and no install leftover is in its data dir. */
static void log_check_restart(struct sim *s, struct node *nd)
{
	struct log_tail lt;
	log_tail_read(nd->w->store, &lt);
	if (nd->rec_last) {
		uint64_t t = lt.last >= nd->rec_last ? store_term_at(nd->w->store, nd->rec_last) : 0;
		int kept = lt.last >= nd->rec_last && (t == nd->rec_term || (t == 0 && nd->rec_last <= lt.trimmed));
		int adopted = nd->installing && lt.trimmed > nd->rec_commit;
		if (!kept && !adopted)
			fail(s, "node %u restarted with its raft log at %" PRIu64 " (term %" PRIu64 " at %" PRIu64
			     "): it had synced up to %" PRIu64 " (term %" PRIu64 "), commit %" PRIu64, nd->id, lt.last,
			     t, nd->rec_last, nd->rec_last, nd->rec_term, nd->rec_commit);
		if (lt.hs_term < nd->rec_hs_term)
			fail(s, "node %u restarted in term %" PRIu64 " after it had synced term %" PRIu64, nd->id,
			     lt.hs_term, nd->rec_hs_term);
	}
	static const char *const leftovers[] = {"snapshot-in.mdb", "snapshot-in.meta", "snapshot-in.meta.tmp"};
	for (size_t i = 0; i < sizeof(leftovers) / sizeof(*leftovers); i++) {
		char path[4200];
		struct stat st;
		snapinst_path(path, sizeof(path), nd->cfg.data_dir, leftovers[i]);
		if (stat(path, &st) == 0)
			fail(s, "node %u started with %s left in its data dir", nd->id, leftovers[i]);
	}
	nd->rec_last = lt.last;
	nd->rec_term = lt.last_term;
	nd->rec_hs_term = lt.hs_term;
}

static void node_power_loss(struct sim *s, struct node *nd, int64_t down_ms);

/* A start of the node as the master does it (its power may go meanwhile). */
static void node_start(struct sim *s, struct node *nd)
{
	int installed = 0, rc;
	char path[4200];
	struct stat st;
	int acting = s->acting;
	s->acting = nd->idx;
	snapinst_path(path, sizeof(path), nd->cfg.data_dir, "snapshot-in.meta");
	nd->installing = stat(path, &st) == 0;
	/* what the master does before it starts a logwriter */
	rc = snapinst_recover(nd->cfg.data_dir, &installed);
	if (rc) {
		fail(s, "node %u: snapinst_recover: %s", nd->id, sl_strerror(rc));
		goto out;
	}
	struct logwriter_args a = {&nd->cfg, &nd->shm, nd->self_efd, &nd->fe_efd};
	struct lw *w = lw_new(&a, &rc);
	if (!w) {
		fail(s, "node %u: lw_new: %s", nd->id, sl_strerror(rc));
		goto out;
	}
	w->io = &sim_io;
	w->io_arg = nd;
	nd->incarnation++;
	memset(nd->cend, 0, sizeof(nd->cend));
	memset(nd->ctopic, 0, sizeof(nd->ctopic));
	rc = lw_cluster_open(w);
	if (rc) {
		lw_cluster_close(w);
		lw_free(w);
		fail(s, "node %u: start: %s", nd->id, sl_strerror(rc));
		goto out;
	}
	nd->w = w;
	trace(s, "node %u up (incarnation %" PRIu64 "%s)", nd->id, nd->incarnation, installed ? ", on a snapshot" : "");
	if (!nd->cut)
		log_check_restart(s, nd);
out:
	s->acting = acting;
	if (nd->cut)
		node_power_loss(s, nd, 20 + rn_power(s, 300));
}

/* Drop the node's logwriter as a kill -9 would: no shutdown path. */
static void node_kill(struct sim *s, struct node *nd, int whole, int64_t down_ms)
{
	struct lw *w = nd->w;
	if (!w)
		return;
	if (w->txn) {
		store_txn_abort(w->txn);
		w->txn = NULL;
	}
	lw_cluster_close(w);
	lw_free(w);
	nd->w = NULL;
	nd->up_at = s->now + down_ms;
	s->stats_crashes++;
	for (int b = 0; b < s->n; b++)
		if (b != nd->idx) {
			net_cut(s, b, nd->idx); /* its incoming connections die with it */
			s->link_gen[nd->idx][b]++;
		}
	if (whole) {
		/* frontends too: a new segment, requests in its rings are gone */
		shm_drop(nd);
		if (shm_make(nd))
			fail(s, "node %u: shm_create", nd->id);
	}
	trace(s, "node %u %s (down %" PRId64 " ms)", nd->id, whole ? "killed with its frontends" : "logwriter killed",
	      down_ms);
}

/* The node loses power: the logwriter and the frontends die (a new
 * segment), and its data dir becomes what was durable (powerloss.h). */
static void node_power_loss(struct sim *s, struct node *nd, int64_t down_ms)
{
	pl_cut(nd->pl);
	if (nd->w) {
		node_kill(s, nd, 1, down_ms);
	} else {
		shm_drop(nd);
		if (shm_make(nd))
			fail(s, "node %u: shm_create", nd->id);
	}
	nd->cut = 0;
	nd->cut_arm = 0;
	s->stats_power++;
	if (pl_restore(nd->pl) != 0)
		fail(s, "node %u: cannot restore its data dir: %s", nd->id, strerror(errno));
	trace(s, "node %u lost power (down %" PRId64 " ms)", nd->id, down_ms);
}

/* Before each write that would be durable on a node (powerloss.h): lose
 * power there when the schedule says so. */
static void power_hook(void *arg, int dir, enum pl_op op, const char *name)
{
	struct sim *s = arg;
	if (!s->chaos || s->acting < 0 || s->nodes[s->acting].pl != dir)
		return;
	struct node *nd = &s->nodes[s->acting];
	int snap = op == PL_SYNC_DIR || nd->installing || strncmp(name, "snapshot-in", 11) == 0;
	int cut = nd->cut_arm && --nd->cut_arm == 0;
	if (snap && s->power_snap_pct && rn_power(s, 100) < s->power_snap_pct) {
		cut = 1;
		s->stats_power_snap++;
	}
	if (!cut)
		return;
	s->stats_power_mid++;
	trace(s, "node %u loses power before a %s of %s", nd->id,
	      op == PL_SYNC_DIR ? "directory sync" : op == PL_SYNC_WRITE ? "synced write" : "sync", name);
	pl_cut(dir);
	nd->cut = 1;
}

/* ---------- frontends and clients ---------- */

static uint16_t node_epoch(struct node *nd)
{
	return (uint16_t)shm_load(&nd->shm.hdr->cluster.epoch);
}

static uint64_t sent_add(struct sim *s, int producer, uint64_t seq, uint32_t count)
{
	grow((void **)&s->sent, &s->cap_sent, s->n_sent + 1, sizeof(*s->sent));
	s->sent[s->n_sent] = (struct sent){producer, seq, count};
	return ++s->n_sent; /* the cookie: index + 1 */
}

/* Build producer p's next request (kept byte for byte for its retries). */
static void prod_build(struct sim *s, struct producer *p)
{
	uint8_t pay[160], key[16];
	p->count = 1 + rn(s, 5);
	p->batch = p->count > 1 || rn(s, 2);
	free(p->req);
	size_t tlen = strlen(p->topic);
	if (!p->batch) {
		p->count = 1;
		size_t plen = payload_of(p->pid, p->seq, pay);
		int klen = p->keyed ? snprintf((char *)key, sizeof(key), "k%" PRIu64, p->seq % 5) : 0;
		struct rm_publish m = {0};
		m.producer_id = p->pid;
		m.sequence = p->seq;
		m.partition = p->part;
		m.key_len = (uint32_t)klen;
		m.payload_len = (uint32_t)plen;
		m.topic_len = (uint16_t)tlen;
		p->req_len = (uint32_t)(sizeof(m) + tlen + (size_t)klen + plen);
		p->req = malloc(p->req_len);
		memcpy(p->req, &m, sizeof(m));
		memcpy(p->req + sizeof(m), p->topic, tlen);
		memcpy(p->req + sizeof(m) + tlen, key, (size_t)klen);
		memcpy(p->req + sizeof(m) + tlen + (size_t)klen, pay, plen);
		return;
	}
	uint8_t recs[5 * (PUBBATCH_REC_HDR + 160)];
	size_t rl = 0;
	for (uint32_t i = 0; i < p->count; i++) {
		size_t plen = payload_of(p->pid, p->seq + i, pay);
		rl += pubbatch_put(recs + rl, slice_make(NULL, 0), slice_make(NULL, 0), slice_make(pay, plen));
	}
	struct rm_publish_batch m = {0};
	m.producer_id = p->pid;
	m.base_sequence = p->seq;
	m.partition = p->part;
	m.count = p->count;
	m.records_len = (uint32_t)rl;
	m.topic_len = (uint16_t)tlen;
	p->req_len = (uint32_t)(sizeof(m) + tlen + rl);
	p->req = malloc(p->req_len);
	memcpy(p->req, &m, sizeof(m));
	memcpy(p->req + sizeof(m), p->topic, tlen);
	memcpy(p->req + sizeof(m) + tlen, recs, rl);
}

/* A random node whose frontend takes requests (its segment is there even
 * while its logwriter is down, as with a real frontend). */
static int pick_node(struct sim *s)
{
	return (int)rn(s, (uint32_t)s->n);
}

/* Push a request with a fresh cookie and the node's epoch; 0 if the ring is full. */
static int ring_send(struct node *nd, uint16_t type, uint8_t *req, uint32_t len, uint64_t cookie, uint16_t *epoch)
{
	memcpy(req, &cookie, sizeof(cookie));
	*epoch = node_epoch(nd);
	if (type == RM_PUBLISH)
		memcpy(req + offsetof(struct rm_publish, epoch), epoch, sizeof(*epoch));
	else if (type == RM_PUBLISH_BATCH)
		memcpy(req + offsetof(struct rm_publish_batch, epoch), epoch, sizeof(*epoch));
	int wake = 0;
	return ring_push(shm_pub_ring(&nd->shm, 0), type, req, len, &wake) == SL_OK;
}

static void prod_send(struct sim *s, int i)
{
	struct producer *p = &s->prod[i];
	int k = pick_node(s);
	uint64_t cookie = sent_add(s, i, p->seq, p->count);
	uint16_t type = p->batch ? RM_PUBLISH_BATCH : RM_PUBLISH;
	if (!ring_send(&s->nodes[k], type, p->req, p->req_len, cookie, &p->epoch)) {
		p->retry_ms = s->now + 5;
		return;
	}
	if (s->verbose > 1)
		trace(s, "send to node %d: cookie %" PRIu64 " producer %" PRIu64 " seq %" PRIu64 "+%u%s epoch %u", k + 1,
		      cookie, p->pid, p->seq, p->count, p->batch ? " (batch)" : "", p->epoch);
	p->active = 1;
	p->node = k;
	p->cookie = cookie;
	p->sent_ms = s->now;
}

static void ack_message(struct sim *s, struct producer *p, uint64_t seq, uint32_t part, uint64_t off)
{
	uint64_t k = seq;
	if (k >= SEQ_MAX) {
		fail(s, "producer %" PRIu64 ": sequence %" PRIu64 " past the sim's table", p->pid, seq);
		return;
	}
	if (p->ack_part[k] >= 0 && (p->ack_part[k] != (int64_t)part || p->ack_off[k] != off)) {
		fail(s, "producer %" PRIu64 " seq %" PRIu64 ": acked at %u/%" PRIu64 " and at %u/%" PRIu64, p->pid, seq,
		     (uint32_t)p->ack_part[k], p->ack_off[k], part, off);
		return;
	}
	p->ack_part[k] = part;
	p->ack_off[k] = off;
}

static void on_ack(struct sim *s, int node, const struct rm_ack *a)
{
	if (a->cookie == s->admin_cookie && s->admin_active) {
		s->admin_active = 0;
		if (a->err == SL_OK || a->err == SL_ETOPIC_EXISTS || a->err == SL_ENOTOPIC) {
			if (!s->topic_ok)
				s->topic_ok = a->err != SL_ENOTOPIC;
			else if (s->churn)
				s->churn_live = !s->churn_live;
		} else if (a->err != SL_EUNAVAILABLE) {
			fail(s, "admin request answered %u", a->err);
		}
		s->admin_ms = s->now + 20 + rn(s, 200);
		return;
	}
	if (a->cookie == 0 || a->cookie > s->n_sent)
		return; /* an admin request superseded by a retry */
	const struct sent *st = &s->sent[a->cookie - 1];
	if (st->producer < 0)
		return;
	struct producer *p = &s->prod[st->producer];
	int mine = p->active && p->cookie == a->cookie;
	if (s->verbose > 1)
		trace(s, "ack on node %d: cookie %" PRIu64 " producer %" PRIu64 " seq %" PRIu64 "+%u: err %u at %u/%" PRIu64
		      " flags %u term %" PRIu64 " index %" PRIu64 "%s", node + 1, a->cookie, p->pid, st->seq, st->count,
		      a->err, a->partition, a->offset, a->flags, a->term, a->log_index, mine ? "" : " (superseded)");
	if (a->err == SL_OK) {
		if (a->count != st->count) {
			fail(s, "ack of %u messages for a request of %u", a->count, st->count);
			return;
		}
		s->stats_acks++;
		if (a->flags & RM_ACK_DUPLICATE)
			s->stats_dups++;
		if (p->topic[0] == 't')
			for (uint32_t i = 0; i < st->count; i++)
				ack_message(s, p, st->seq + i, a->partition, a->offset + i);
		if (mine) {
			p->active = 0;
			p->seq += p->count;
			p->req_len = 0;
			p->retry_ms = s->now + rn(s, 4);
		}
		return;
	}
	if (a->err == SL_EUNAVAILABLE || a->err == SL_ENOTOPIC) {
		if (mine) {
			p->active = 0;
			p->retry_ms = s->now + 10 + rn(s, 50);
		}
		return;
	}
	fail(s, "node %d answered producer %" PRIu64 " seq %" PRIu64 " with error %u", node + 1, p->pid, st->seq, a->err);
}

static void acks_drain(struct sim *s, int k)
{
	struct ring *r = shm_ack_ring(&s->nodes[k].shm, 0);
	uint64_t pos = ring_tail(r);
	uint16_t type;
	const uint8_t *p;
	uint32_t len;
	while (ring_peek(r, &pos, &type, &p, &len)) {
		struct rm_ack a;
		if (type != RM_ACK || len != sizeof(a)) {
			fail(s, "node %d: ack ring record of type %u, %u bytes", k + 1, type, len);
			break;
		}
		memcpy(&a, p, sizeof(a));
		on_ack(s, k, &a);
	}
	ring_release(r, pos);
}

/* What a frontend does with requests in flight: an epoch bump (or a
 * segment that went away) fails them UNAVAILABLE, a timeout too; the client
 * then sends the same bytes again. */
static void clients_run(struct sim *s)
{
	for (int i = 0; i < PRODUCERS; i++) {
		struct producer *p = &s->prod[i];
		if (p->active) {
			struct node *nd = &s->nodes[p->node];
			if (node_epoch(nd) != p->epoch || s->now - p->sent_ms > TIMEOUT_MS) {
				p->active = 0;
				p->retry_ms = s->now + 10 + rn(s, 50);
			}
			continue;
		}
		if (!s->topic_ok || p->idle || s->now < p->retry_ms)
			continue;
		if (p->topic[0] == 'c' && !s->churn_live)
			continue;
		if (!p->req_len)
			prod_build(s, p);
		prod_send(s, i);
	}
	/* the admin client: create t0, then (churn) create and delete c1 */
	if (s->admin_active && s->now - s->admin_ms > TIMEOUT_MS)
		s->admin_active = 0;
	if (s->admin_active || s->now < s->admin_ms || (s->topic_ok && (!s->churn || !s->chaos)))
		return;
	uint8_t req[sizeof(struct rm_create_topic) + 8];
	const char *name = s->topic_ok ? "c1" : "t0";
	size_t nl = strlen(name);
	int create = !s->topic_ok || !s->churn_live;
	uint16_t type = create ? RM_CREATE_TOPIC : RM_DELETE_TOPIC;
	uint32_t len;
	if (create) {
		struct rm_create_topic m = {0};
		m.partitions = s->topic_ok ? 2 : T0_PARTS;
		m.name_len = (uint16_t)nl;
		memcpy(req, &m, sizeof(m));
		memcpy(req + sizeof(m), name, nl);
		len = (uint32_t)(sizeof(m) + nl);
	} else {
		struct rm_delete_topic m = {0};
		m.name_len = (uint16_t)nl;
		memcpy(req, &m, sizeof(m));
		memcpy(req + sizeof(m), name, nl);
		len = (uint32_t)(sizeof(m) + nl);
	}
	int k = pick_node(s);
	uint16_t ep;
	uint64_t cookie = sent_add(s, -1, 0, 0);
	if (ring_send(&s->nodes[k], type, req, len, cookie, &ep)) {
		s->admin_active = 1;
		s->admin_cookie = cookie;
		s->admin_node = k;
		s->admin_ms = s->now;
	}
}

/* ---------- checks ---------- */

struct read_ctx {
	struct sim *s;
	struct node *nd;
	uint32_t part;
	uint8_t *seen; /* per producer and sequence: stored once */
};

static int read_cb(void *arg, const struct store_record *r)
{
	struct read_ctx *x = arg;
	struct sim *s = x->s;
	uint8_t want[160];
	int pi = -1;
	for (int i = 0; i < PRODUCERS; i++)
		if (s->prod[i].pid == r->producer_id)
			pi = i;
	if (pi < 0 || r->sequence >= SEQ_MAX) {
		fail(s, "node %u: t0/%u@%" PRIu64 ": producer %" PRIu64 " seq %" PRIu64 " was never sent", x->nd->id,
		     x->part, r->offset, r->producer_id, r->sequence);
		return 1;
	}
	size_t wl = payload_of(r->producer_id, r->sequence, want);
	if (r->payload.len != wl || memcmp(r->payload.base, want, wl) != 0) {
		fail(s, "node %u: t0/%u@%" PRIu64 ": payload differs from what was sent", x->nd->id, x->part, r->offset);
		return 1;
	}
	uint8_t *seen = &x->seen[(size_t)pi * SEQ_MAX + r->sequence];
	if (*seen) {
		fail(s, "node %u: producer %" PRIu64 " seq %" PRIu64 " stored twice (again at t0/%u@%" PRIu64 ")",
		     x->nd->id, r->producer_id, r->sequence, x->part, r->offset);
		return 1;
	}
	*seen = 1;
	/* committed records never change, on any node */
	size_t n = x->s->n_refs[x->part];
	if (r->offset < n) {
		const struct ref *f = &s->refs[x->part][r->offset];
		if (f->pid != r->producer_id || f->seq != r->sequence || f->ts != r->timestamp_ms) {
			fail(s, "node %u: committed t0/%u@%" PRIu64 " is producer %" PRIu64 " seq %" PRIu64
			     " where it was %" PRIu64 "/%" PRIu64 " before", x->nd->id, x->part, r->offset,
			     r->producer_id, r->sequence, f->pid, f->seq);
			return 1;
		}
	} else if (r->offset == n) {
		grow((void **)&s->refs[x->part], &s->cap_refs[x->part], n + 1, sizeof(struct ref));
		s->refs[x->part][n] = (struct ref){r->producer_id, r->sequence, r->timestamp_ms};
		s->n_refs[x->part] = n + 1;
	} else {
		fail(s, "node %u: t0/%u: a gap before offset %" PRIu64, x->nd->id, x->part, r->offset);
		return 1;
	}
	return 0;
}

/* The commit table's end of (topic_id, partition), UINT64_MAX if no slot. */
static uint64_t slot_end(struct node *nd, uint32_t topic_id, uint32_t part)
{
	for (uint32_t i = 0; i < SLOTS; i++)
		if (shm_load(&nd->shm.slots[i].topic_id) == topic_id && nd->shm.slots[i].partition == part)
			return shm_load(&nd->shm.slots[i].end_offset);
	return UINT64_MAX;
}

/* Read every committed record of t0 on node nd and check it. */
static void node_verify(struct sim *s, struct node *nd, uint64_t ends[T0_PARTS])
{
	struct store_txn *t;
	struct store_topic tp;
	memset(ends, 0, T0_PARTS * sizeof(*ends));
	if (!nd->w || !s->topic_ok || store_txn_begin(nd->w->store, 0, &t) != SL_OK)
		return;
	if (store_topic_get(t, "t0", 2, &tp) != SL_OK) {
		store_txn_abort(t);
		return;
	}
	struct read_ctx x = {s, nd, 0, calloc((size_t)PRODUCERS * SEQ_MAX, 1)};
	for (uint32_t part = 0; part < T0_PARTS && !s->failed; part++) {
		uint64_t end = slot_end(nd, tp.topic_id, part);
		struct store_partition sp = {0};
		if (end == UINT64_MAX)
			continue; /* the node has not published the topic yet */
		ends[part] = end;
		store_partition_get(t, tp.topic_id, part, &sp);
		if (end > sp.end_offset) {
			fail(s, "node %u: commit table end %" PRIu64 " of t0/%u is past the stored end %" PRIu64, nd->id,
			     end, part, sp.end_offset);
			break;
		}
		x.part = part;
		uint64_t from = 0, next = 0;
		while (from < end && !s->failed) {
			int rc = store_read(t, tp.topic_id, part, from, end, 1000, 1 << 20, read_cb, &x, &next);
			if (rc) {
				fail(s, "node %u: store_read t0/%u@%" PRIu64 ": %s", nd->id, part, from, sl_strerror(rc));
				break;
			}
			if (next <= from) {
				fail(s, "node %u: t0/%u: nothing readable at %" PRIu64 " below the end %" PRIu64, nd->id,
				     part, from, end);
				break;
			}
			from = next;
		}
		/* every acknowledged message below the end is where its ack said */
		for (int i = 0; i < PRODUCERS && !s->failed; i++) {
			struct producer *p = &s->prod[i];
			if (p->topic[0] != 't')
				continue;
			for (uint64_t q = 0; q < SEQ_MAX && q < p->seq + 5; q++) {
				if (p->ack_part[q] != (int64_t)part || p->ack_off[q] >= end)
					continue;
				const struct ref *f = &s->refs[part][p->ack_off[q]];
				if (f->pid != p->pid || f->seq != q)
					fail(s, "node %u: t0/%u@%" PRIu64 " holds %" PRIu64 "/%" PRIu64
					     " but was acked for %" PRIu64 "/%" PRIu64, nd->id, part, p->ack_off[q], f->pid,
					     f->seq, p->pid, q);
			}
		}
	}
	free(x.seen);
	store_txn_abort(t);
}

/* After every turn: the commit table of this incarnation never goes back. */
static void node_watch(struct sim *s, struct node *nd)
{
	for (uint32_t i = 0; i < SLOTS; i++) {
		uint32_t tid = shm_load(&nd->shm.slots[i].topic_id);
		uint64_t end = shm_load(&nd->shm.slots[i].end_offset);
		if (tid == UINT32_MAX || tid == 0)
			continue;
		if (tid == nd->ctopic[i] && end < nd->cend[i]) {
			fail(s, "node %u: commit table slot %u (topic %u) went back from %" PRIu64 " to %" PRIu64, nd->id,
			     i, tid, nd->cend[i], end);
			return;
		}
		nd->ctopic[i] = tid;
		nd->cend[i] = end;
	}
}

/* ---------- one seed ---------- */

static void node_turn(struct sim *s, int i)
{
	struct node *nd = &s->nodes[i];
	int done = 0, rc;
	s->stepping = i;
	s->acting = i;
	if (setjmp(s->crash_jb) != 0) {
		s->stepping = -1;
		s->acting = -1;
		free(s->crash_frame);
		s->crash_frame = NULL;
		trace(s, "node %u crashed in the middle of a turn", nd->id);
		if (nd->w->txn) {
			store_txn_abort(nd->w->txn);
			nd->w->txn = NULL;
		}
		log_record(nd); /* the turn may have committed before its messages went out */
		node_kill(s, nd, 0, 20 + rn(s, 300));
		return;
	}
	rc = lw_cluster_step(nd->w, &done);
	s->stepping = -1;
	s->acting = -1;
	if (nd->cut) {
		node_power_loss(s, nd, 20 + rn_power(s, 300));
		return;
	}
	if (rc) {
		fail(s, "node %u: turn failed: %s", nd->id, sl_strerror(rc));
		return;
	}
	if (done && nd->w->exit_reseed) {
		/* exit for the master to install the snapshot, then start again */
		s->stats_reseeds++;
		trace(s, "node %u restarts on a snapshot", nd->id);
		lw_cluster_close(nd->w);
		lw_free(nd->w);
		nd->w = NULL;
		for (int b = 0; b < s->n; b++)
			if (b != i) {
				net_cut(s, b, i);
				s->link_gen[i][b]++;
			}
		node_start(s, nd);
		return;
	}
	node_watch(s, nd);
	log_record(nd);
}

static int leader_of(struct sim *s)
{
	for (int i = 0; i < s->n; i++)
		if (node_up(s, i) && shm_stat_load(&s->nodes[i].shm.hdr->cluster.role) == RAFT_LEADER)
			return i;
	return -1;
}

/* Power loss of one node, now (between turns) or before one of the
 * durable writes of its next turns; or of every node at once. */
static void power_faults(struct sim *s, int downs)
{
	if (s->power_all_permille && rn_power(s, 20000) < s->power_all_permille) {
		trace(s, "every node loses power");
		s->stats_power_all++;
		for (int i = 0; i < s->n; i++)
			pl_cut(s->nodes[i].pl);
		for (int i = 0; i < s->n; i++)
			node_power_loss(s, &s->nodes[i], 10 + rn_power(s, 400));
		return;
	}
	if (!s->power_permille || rn_power(s, 1000) >= s->power_permille)
		return;
	int l = leader_of(s);
	int k = l >= 0 && rn_power(s, 2) ? l : (int)rn_power(s, (uint32_t)s->n);
	struct node *nd = &s->nodes[k];
	if (node_up(s, k) && downs >= (s->n == 1 ? 1 : 2))
		return;
	if (node_up(s, k) && rn_power(s, 2))
		nd->cut_arm = 1 + rn_power(s, 6);
	else
		node_power_loss(s, nd, 10 + rn_power(s, s->snap_small ? 1500 : 400));
}

static void faults(struct sim *s)
{
	int downs = 0;
	for (int i = 0; i < s->n; i++)
		downs += !node_up(s, i);
	if (rn(s, 1000) < s->crash_permille && downs < (s->n == 1 ? 1 : 2)) {
		int l = leader_of(s);
		int k = l >= 0 && rn(s, 2) ? l : (int)rn(s, (uint32_t)s->n);
		if (node_up(s, k))
			node_kill(s, &s->nodes[k], rn(s, 4) == 0, 10 + rn(s, s->snap_small ? 1500 : 400));
	}
	power_faults(s, downs);
	if (s->n > 1 && rn(s, 1000) < s->drop_permille) {
		int a = (int)rn(s, (uint32_t)s->n), b = (int)rn(s, (uint32_t)s->n);
		if (a != b) {
			net_cut(s, a, b); /* a connection reset: what it held is lost */
			trace(s, "link %d->%d reset", a + 1, b + 1);
		}
	}
	if (s->n > 1 && rn(s, 2000) < 2) {
		/* cut one node off (both ways) for a while */
		int a = (int)rn(s, (uint32_t)s->n);
		int64_t heal = s->now + 100 + rn(s, s->snap_small ? 3000 : 1200);
		for (int b = 0; b < s->n; b++)
			if (b != a) {
				s->link_up[a][b] = s->link_up[b][a] = 0;
				s->link_heal[a][b] = s->link_heal[b][a] = heal;
				net_cut(s, a, b);
				net_cut(s, b, a);
			}
		trace(s, "node %d partitioned until %" PRId64, a + 1, heal - s->t0);
	}
}

static void heal(struct sim *s, int all)
{
	for (int a = 0; a < s->n; a++) {
		for (int b = 0; b < s->n; b++)
			if (a != b && !s->link_up[a][b] && (all || s->now >= s->link_heal[a][b]))
				s->link_up[a][b] = 1;
		struct node *nd = &s->nodes[a];
		if (!nd->w && (all || s->now >= nd->up_at))
			node_start(s, nd);
	}
}

static void sim_init(struct sim *s, uint64_t seed, int verbose)
{
	memset(s, 0, sizeof(*s));
	s->seed = seed;
	s->rng = seed ^ 0x5DEECE66Dull;
	s->verbose = verbose;
	s->stepping = -1;
	s->n = rn(s, 5) == 0 ? 1 : 3;
	s->snap_small = s->n > 1 && rn(s, 2);
	s->churn = rn(s, 2);
	s->drop_permille = rn(s, 6);
	s->dup_pct = rn(s, 10);
	s->crash_permille = 1 + rn(s, 3);
	s->midturn_permille = rn(s, 3) == 0 ? 2 : 0;
	s->delay_ms = 1 + rn(s, 8);
	s->acting = -1;
	s->rng_power = seed * 0xD1B54A32D192ED03ull + 7;
	s->power_permille = rn_power(s, 3);
	s->power_all_permille = rn_power(s, 2) * 5;
	s->power_snap_pct = s->snap_small && rn_power(s, 3) ? 40 : 0;
	s->t0 = s->now = 1700000000000ll + (int64_t)rn(s, 1000000);
	snprintf(s->dir, sizeof(s->dir), "/dev/shm/sluice-sim-%d", (int)getpid());
	for (int a = 0; a < NODES_MAX; a++)
		for (int b = 0; b < NODES_MAX; b++)
			s->link_up[a][b] = 1;
	static const uint32_t parts[PRODUCERS] = {0, 1, RM_PARTITION_ANY, RM_PARTITION_ANY};
	for (int i = 0; i < PRODUCERS; i++) {
		struct producer *p = &s->prod[i];
		p->pid = 1000 + (uint64_t)i;
		p->topic = s->churn && i == PRODUCERS - 1 ? "c1" : "t0";
		p->part = parts[i];
		p->keyed = i == 2;
		p->seq = 1;
		p->ack_part = malloc(SEQ_MAX * sizeof(*p->ack_part));
		p->ack_off = calloc(SEQ_MAX, sizeof(*p->ack_off));
		for (size_t q = 0; q < SEQ_MAX; q++)
			p->ack_part[q] = -1;
	}
	trace(s, "seed %" PRIu64 ": %d node(s), snapshots %s, topic churn %s, link resets %u/1000 ms, dup %u%%, "
	      "crashes %u/1000 ms, mid-turn crashes %u/1000 sends, delay <= %u ms", seed, s->n,
	      s->snap_small ? "forced" : "rare", s->churn ? "on" : "off", s->drop_permille, s->dup_pct,
	      s->crash_permille, s->midturn_permille, s->delay_ms);
	trace(s, "power loss: %u/1000 ms of one node, %u/20000 ms of all, %u%% before each step of a snapshot install",
	      s->power_permille, s->power_all_permille, s->power_snap_pct);
}

static void rm_tree(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *e;
	char p[4400];
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
			unlink(p);
		}
	closedir(d);
	rmdir(dir);
}

static void sim_free(struct sim *s)
{
	for (int i = 0; i < s->n; i++) {
		struct node *nd = &s->nodes[i];
		if (nd->w) {
			lw_cluster_close(nd->w);
			lw_free(nd->w);
			nd->w = NULL;
		}
		shm_drop(nd);
		close(nd->self_efd);
		close(nd->fe_efd);
		rm_tree(nd->cfg.data_dir);
	}
	pl_reset();
	for (size_t i = 0; i < s->n_net; i++)
		free(s->net[i].p);
	free(s->net);
	free(s->sent);
	for (int i = 0; i < PRODUCERS; i++) {
		free(s->prod[i].req);
		free(s->prod[i].ack_part);
		free(s->prod[i].ack_off);
	}
	for (int p = 0; p < T0_PARTS; p++)
		free(s->refs[p]);
}

/* One millisecond of simulated time: every node up takes a turn (a random
 * one may sleep through it), the clients read answers and send. */
static void tick_ms(struct sim *s)
{
	s->now++;
	heal(s, !s->chaos);
	int order[NODES_MAX];
	for (int i = 0; i < s->n; i++)
		order[i] = i;
	for (int i = s->n - 1; i > 0; i--) {
		int j = (int)rn(s, (uint32_t)i + 1), t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
	for (int k = 0; k < s->n && !s->failed; k++) {
		int i = order[k];
		if (node_up(s, i) && (!s->chaos || rn(s, 10) != 0))
			node_turn(s, i);
		acks_drain(s, i);
	}
	clients_run(s);
	if (s->chaos)
		faults(s);
}

static void verify_all(struct sim *s, uint64_t ends[NODES_MAX][T0_PARTS])
{
	for (int i = 0; i < s->n && !s->failed; i++)
		node_verify(s, &s->nodes[i], ends[i]);
}

/* The end: faults stop; every producer's request in flight and one more
 * publish must be acknowledged, and every node must commit all of t0. */
static void liveness(struct sim *s)
{
	int64_t until = s->now + LIVE_MS;
	uint64_t want[PRODUCERS];
	s->chaos = 0;
	for (int i = 0; i < PRODUCERS; i++)
		want[i] = s->prod[i].seq + s->prod[i].count + 1; /* the one in flight and the next */
	while (s->now < until && !s->failed) {
		tick_ms(s);
		int idle = s->topic_ok;
		for (int i = 0; i < PRODUCERS; i++) {
			struct producer *p = &s->prod[i];
			if (p->seq >= want[i] && !p->active)
				p->idle = 1;
			/* c1's producer is not waited for: whether c1 exists after
			 * the last create or delete that went unanswered is unknown */
			idle &= p->idle || p->topic[0] == 'c';
		}
		if (!idle || s->now % 50)
			continue;
		uint64_t ends[NODES_MAX][T0_PARTS];
		verify_all(s, ends);
		int same = 1;
		for (int i = 1; i < s->n; i++)
			same &= memcmp(ends[i], ends[0], sizeof(ends[0])) == 0;
		uint64_t acked_end[T0_PARTS] = {0};
		for (int i = 0; i < PRODUCERS; i++)
			for (uint64_t q = 0; q < s->prod[i].seq && q < SEQ_MAX; q++)
				if (s->prod[i].topic[0] == 't' && s->prod[i].ack_part[q] >= 0 &&
				    s->prod[i].ack_off[q] + 1 > acked_end[s->prod[i].ack_part[q]])
					acked_end[s->prod[i].ack_part[q]] = s->prod[i].ack_off[q] + 1;
		for (int p = 0; p < T0_PARTS; p++)
			same &= ends[0][p] >= acked_end[p];
		if (same) {
			trace(s, "live: every node committed t0 up to %" PRIu64 "/%" PRIu64 "/%" PRIu64, ends[0][0],
			      ends[0][1], ends[0][2]);
			return;
		}
	}
	if (s->failed)
		return;
	for (int i = 0; i < s->n; i++) {
		const struct shm_cluster *c = &s->nodes[i].shm.hdr->cluster;
		trace(s, "node %d: %s, role %u term %" PRIu64 " leader %u last %" PRIu64 " commit %" PRIu64
		      " applied %" PRIu64 " epoch %" PRIu64, i + 1, node_up(s, i) ? "up" : "down", c->role, c->term,
		      c->leader_id, c->last_index, c->commit_index, c->applied_index, c->epoch);
	}
	for (int i = 0; i < PRODUCERS; i++) {
		const struct producer *p = &s->prod[i];
		trace(s, "producer %" PRIu64 " (%s): seq %" PRIu64 " want %" PRIu64 ", %s on node %d, idle %d", p->pid,
		      p->topic, p->seq, want[i], p->active ? "in flight" : "waiting", p->node + 1, p->idle);
	}
	fail(s, "not live: %d ms after the faults stopped, not every publish is committed everywhere", LIVE_MS);
}

static int run_seed(uint64_t seed, int verbose, char *why, size_t why_len)
{
	struct sim *s = calloc(1, sizeof(*s));
	if (!s)
		abort();
	sim_init(s, seed, verbose);
	cur_sim = s;
	for (int i = 0; i < s->n; i++) {
		struct node *nd = &s->nodes[i];
		nd->s = s;
		nd->idx = i;
		nd->id = (uint32_t)i + 1;
		node_config(s, nd);
		rm_tree(nd->cfg.data_dir);
		/* the data dir exists before the node first starts, as an operator makes it */
		if (mkdir(nd->cfg.data_dir, 0750) != 0 || (nd->pl = pl_dir_add(nd->cfg.data_dir)) < 0)
			abort();
		nd->self_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		nd->fe_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (shm_make(nd) || nd->self_efd < 0 || nd->fe_efd < 0)
			abort();
	}
	pl_hook_set(power_hook, s);
	for (int i = 0; i < s->n; i++)
		node_start(s, &s->nodes[i]);
	s->chaos = 1;
	int64_t until = s->now + CHAOS_MS;
	while (s->now < until && !s->failed) {
		tick_ms(s);
		if (s->now % 500 == 0) {
			uint64_t ends[NODES_MAX][T0_PARTS];
			verify_all(s, ends);
		}
	}
	if (!s->failed)
		liveness(s);
	if (!s->failed && !s->topic_ok)
		fail(s, "topic t0 was never created");
	trace(s, "%" PRIu64 " acks (%" PRIu64 " duplicates), %" PRIu64 " crashes (%" PRIu64 " mid-turn), %" PRIu64
	      " snapshot restarts, %" PRIu64 " frames", s->stats_acks, s->stats_dups, s->stats_crashes, s->stats_midturn,
	      s->stats_reseeds, s->stats_frames);
	trace(s, "%" PRIu64 " power losses (%" PRIu64 " before a durable write, %" PRIu64 " in a snapshot install, %" PRIu64
	      " of every node)", s->stats_power, s->stats_power_mid, s->stats_power_snap, s->stats_power_all);
	int failed = s->failed;
	if (failed)
		snprintf(why, why_len, "%s", s->why);
	sim_free(s);
	cur_sim = NULL;
	free(s);
	return failed;
}

/* ---------- main ---------- */

static void on_abort(int sig)
{
	(void)sig;
	char buf[96];
	int k = snprintf(buf, sizeof(buf), "lw_sim: aborted in seed %" PRIu64 "\n", cur_sim ? cur_sim->seed : 0);
	if (write(2, buf, (size_t)k) < 0)
		_exit(134);
	signal(SIGABRT, SIG_DFL);
}

static double mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void usage(void)
{
	fprintf(stderr, "usage: lw_sim --seed N [-v]\n"
	                "       lw_sim --seeds K [--start S] [--budget-ms B]\n");
}

int main(int argc, char **argv)
{
	uint64_t seed = 0, seeds = 0, start = 1, budget_ms = 0;
	int verbose = 0, one = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "-v") == 0) {
			verbose++;
		} else if (strcmp(a, "--seed") == 0 && v) {
			seed = strtoull(v, NULL, 0), one = 1, i++;
		} else if (strcmp(a, "--seeds") == 0 && v) {
			seeds = strtoull(v, NULL, 0), i++;
		} else if (strcmp(a, "--start") == 0 && v) {
			start = strtoull(v, NULL, 0), i++;
		} else if (strcmp(a, "--budget-ms") == 0 && v) {
			budget_ms = strtoull(v, NULL, 0), i++;
		} else {
			usage();
			return 2;
		}
	}
	signal(SIGABRT, on_abort);
	log_set_role("lw_sim");
	log_set_level(verbose > 1 ? LOG_INFO : LOG_ERROR);
	char why[512];
	if (one) {
		if (run_seed(seed, verbose, why, sizeof(why))) {
			printf("FAILED seed %" PRIu64 ": %s\n", seed, why);
			return 1;
		}
		printf("seed %" PRIu64 " ok\n", seed);
		return 0;
	}
	if (seeds == 0) {
		usage();
		return 2;
	}
	double t0 = mono_ms();
	uint64_t ran = 0;
	for (; ran < seeds; ran++) {
		uint64_t sd = start + ran;
		if (budget_ms && mono_ms() - t0 > (double)budget_ms)
			break;
		if (run_seed(sd, 0, why, sizeof(why))) {
			printf("FAILED seed %" PRIu64 ": %s\nreproduce: lw_sim --seed %" PRIu64 " -v\n", sd, why, sd);
			return 1;
		}
	}
	printf("lw_sim: %" PRIu64 " seeds passed in %.0f ms\n", ran, mono_ms() - t0);
	return 0;
}
