/*
 * raft_sim.c: deterministic simulation of the raft module (replica/raft/raft.c).
 *
 * One seed drives 3 (sometimes 5, or 1: a single node is a group of one
 * voter) nodes through a simulated network (random
 * delay and reordering: a random in-flight message is delivered next; drops,
 * duplicates, partitions) and a simulated disk per node. A node handles a
 * ready like the logwriter: send a leader's appends (raft_msg_early), write
 * hs/snapshot/entries, sync, send the rest, apply, advance; a crash can hit
 * before the sync (the writes are lost, the early appends are out), after it, in
 * the middle of sending or before advancing, and the node restarts from its
 * disk with raft_new. Everything random comes from the seed, so
 * `raft_sim --seed N` replays a failure exactly.
 *
 * Checked after every step: one leader per term, log matching over the
 * persisted logs (an index and term name one entry and one predecessor term),
 * leader completeness (a leader holds every entry committed in an earlier
 * term), committed entries never change (every applied sequence equals the
 * global committed sequence, via a chained hash), in-order gap-free apply.
 * At the end of a seed the faults stop and a final proposal must commit on
 * every node (liveness).
 *
 * The state machine of a node is the chained hash of what it applied; a
 * snapshot is (index, term, chain), which is all a peer needs to catch up.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "raft.h"

#define NODES_MAX 5
#define NET_MSGS_MAX 4000
#define CHAOS_STEPS 10000
#define LIVE_STEPS 200000

struct disk {
	struct raft_hardstate hs;
	uint64_t snap_index, snap_term, snap_chain;
	struct raft_entry *ents; /* after snap_index, contiguous */
	size_t n, cap;
	uint64_t applied, chain; /* the state machine: durable with each ready */
};

struct node {
	uint64_t id;
	struct raft *r; /* NULL: down */
	struct disk d;
	uint64_t rx_snap_index, rx_snap_term, rx_snap_chain; /* last snapshot received */
	uint64_t unreachable[NODES_MAX];
	size_t n_unreachable;
	uint64_t snap_sent[NODES_MAX];
	int snap_ok[NODES_MAX];
	size_t n_snap_sent;
};

struct nmsg {
	struct raft_msg m;
	struct raft_entry *ents; /* owned copies */
	uint64_t snap_chain;     /* SNAPSHOT: the attached snapshot */
};

struct committed {
	uint64_t term, commit_term; /* from the leader that committed it */
	uint64_t hash, chain;       /* from the first node that applied it */
	int applied;
};

struct seen {
	uint64_t term, hash, prev_term;
};

struct seen_list {
	struct seen *v;
	size_t n;
};

struct sim {
	uint64_t seed, rng;
	int verbose;
	size_t n;
	struct node nodes[NODES_MAX];
	int link[NODES_MAX][NODES_MAX];
	uint32_t drop_pct, dup_pct, crash_permille, skip_pct;
	size_t msg_bytes_max;
	int chaos;
	struct nmsg *net;
	size_t n_net;
	struct committed *c; /* c[i]: entry index i, i >= 1 */
	size_t cap_c;
	uint64_t max_commit;
	uint64_t *term_leader;
	size_t cap_terms;
	struct seen_list *seen;
	size_t cap_seen;
	uint64_t proposals;
	uint64_t step;
	int failed;
	char why[512];
};

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

static int pct(struct sim *s, uint32_t p)
{
	return rn(s, 100) < p;
}

static void trace(struct sim *s, const char *fmt, ...)
{
	if (!s->verbose)
		return;
	va_list ap;
	va_start(ap, fmt);
	printf("[%6" PRIu64 "] ", s->step);
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
}

static void fail(struct sim *s, const char *fmt, ...)
{
	if (s->failed)
		return;
	s->failed = 1;
	va_list ap;
	va_start(ap, fmt);
	int k = snprintf(s->why, sizeof(s->why), "step %" PRIu64 ": ", s->step);
	vsnprintf(s->why + k, sizeof(s->why) - (size_t)k, fmt, ap);
	va_end(ap);
	trace(s, "FAIL %s", s->why);
}

static void *xrealloc(void *p, size_t bytes)
{
	void *q = realloc(p, bytes ? bytes : 1);
	if (q == NULL) {
		fprintf(stderr, "raft_sim: out of memory\n");
		exit(2);
	}
	return q;
}

static uint64_t entry_hash(const struct raft_entry *e)
{
	uint64_t h = 1469598103934665603ull ^ e->type;
	for (uint32_t i = 0; i < e->len; i++)
		h = (h ^ e->data[i]) * 1099511628211ull;
	return h ^ ((uint64_t)e->len << 40);
}

static uint64_t chain_next(uint64_t chain, uint64_t h)
{
	uint64_t z = chain * 0x9E3779B97F4A7C15ull + h + 0x632BE59BD9B4E019ull;
	return z ^ (z >> 29);
}

static void entry_dup(struct raft_entry *dst, const struct raft_entry *src)
{
	*dst = *src;
	dst->data = NULL;
	if (src->len) {
		dst->data = xrealloc(NULL, src->len);
		memcpy(dst->data, src->data, src->len);
	}
}

static struct node *node_by_id(struct sim *s, uint64_t id)
{
	return id >= 1 && id <= s->n ? &s->nodes[id - 1] : NULL;
}

/* ---------- global records ---------- */

static struct committed *crec(struct sim *s, uint64_t index)
{
	if (index >= s->cap_c) {
		size_t cap = s->cap_c ? s->cap_c : 256;
		while (cap <= index)
			cap *= 2;
		s->c = xrealloc(s->c, cap * sizeof(*s->c));
		memset(s->c + s->cap_c, 0, (cap - s->cap_c) * sizeof(*s->c));
		s->cap_c = cap;
	}
	return &s->c[index];
}

static uint64_t *term_leader(struct sim *s, uint64_t term)
{
	if (term >= s->cap_terms) {
		size_t cap = s->cap_terms ? s->cap_terms : 64;
		while (cap <= term)
			cap *= 2;
		s->term_leader = xrealloc(s->term_leader, cap * sizeof(uint64_t));
		memset(s->term_leader + s->cap_terms, 0, (cap - s->cap_terms) * sizeof(uint64_t));
		s->cap_terms = cap;
	}
	return &s->term_leader[term];
}

static struct seen_list *seen_at(struct sim *s, uint64_t index)
{
	if (index >= s->cap_seen) {
		size_t cap = s->cap_seen ? s->cap_seen : 256;
		while (cap <= index)
			cap *= 2;
		s->seen = xrealloc(s->seen, cap * sizeof(*s->seen));
		memset(s->seen + s->cap_seen, 0, (cap - s->cap_seen) * sizeof(*s->seen));
		s->cap_seen = cap;
	}
	return &s->seen[index];
}

/* Log matching: an (index, term) pair names one entry and one predecessor term. */
static void check_persisted(struct sim *s, const struct node *nd, const struct raft_entry *e, uint64_t prev_term)
{
	struct seen_list *l = seen_at(s, e->index);
	uint64_t h = entry_hash(e);
	for (size_t i = 0; i < l->n; i++) {
		if (l->v[i].term != e->term)
			continue;
		if (l->v[i].hash != h || l->v[i].prev_term != prev_term)
			fail(s,
			     "log matching: node %" PRIu64 " index %" PRIu64 " term %" PRIu64
			     " differs from another node's entry with the same index and term",
			     nd->id, e->index, e->term);
		return;
	}
	l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
	l->v[l->n++] = (struct seen){.term = e->term, .hash = h, .prev_term = prev_term};
}

/* A leader: one per term; records what it committed; holds everything committed before its term. */
static void observe(struct sim *s, struct node *nd)
{
	if (nd->r == NULL)
		return;
	struct raft_status st;
	raft_status(nd->r, &st);
	if (st.role != RAFT_LEADER)
		return;
	uint64_t *tl = term_leader(s, st.term);
	if (*tl != 0 && *tl != nd->id)
		fail(s, "two leaders in term %" PRIu64 ": %" PRIu64 " and %" PRIu64, st.term, *tl, nd->id);
	*tl = nd->id;
	for (uint64_t i = s->max_commit + 1; i <= st.commit; i++) {
		uint64_t t;
		if (!raft_term_at(nd->r, i, &t)) {
			fail(s, "leader %" PRIu64 " committed %" PRIu64 " that it does not hold", nd->id, i);
			return;
		}
		struct committed *c = crec(s, i);
		if (c->applied && c->term != t)
			fail(s,
			     "index %" PRIu64 " applied with term %" PRIu64 " before leader %" PRIu64
			     " committed term %" PRIu64,
			     i, c->term, nd->id, t);
		c->term = t;
		c->commit_term = st.term;
	}
	if (st.commit > s->max_commit)
		s->max_commit = st.commit;
	for (uint64_t i = st.first_index; i <= s->max_commit; i++) {
		struct committed *c = crec(s, i);
		uint64_t t;
		if (c->commit_term == 0 || c->commit_term >= st.term)
			continue;
		if (!raft_term_at(nd->r, i, &t) || t != c->term)
			fail(s,
			     "leader completeness: leader %" PRIu64 " term %" PRIu64 " lacks index %" PRIu64
			     " committed in term %" PRIu64,
			     nd->id, st.term, i, c->commit_term);
	}
}

/* ---------- disk ---------- */

static void disk_truncate_from(struct disk *d, uint64_t index)
{
	while (d->n > 0 && d->ents[d->n - 1].index >= index)
		free(d->ents[--d->n].data);
}

static void disk_reset(struct disk *d)
{
	disk_truncate_from(d, 0);
}

static uint64_t disk_term_at(const struct disk *d, uint64_t index)
{
	if (index == d->snap_index)
		return d->snap_term;
	if (index > d->snap_index && index <= d->snap_index + d->n)
		return d->ents[index - d->snap_index - 1].term;
	return UINT64_MAX;
}

static void disk_write_entries(struct sim *s, struct node *nd, const struct raft_ready *rd)
{
	struct disk *d = &nd->d;
	uint64_t first = rd->entries[0].index;
	if (first <= d->snap_index || first > d->snap_index + d->n + 1) {
		fail(s, "node %" PRIu64 " ready entries start at %" PRIu64 " after a log of %" PRIu64 "..%" PRIu64,
		     nd->id, first, d->snap_index, d->snap_index + d->n);
		return;
	}
	disk_truncate_from(d, first);
	if (d->n + rd->n_entries > d->cap) {
		d->cap = (d->n + rd->n_entries) * 2;
		d->ents = xrealloc(d->ents, d->cap * sizeof(*d->ents));
	}
	for (size_t i = 0; i < rd->n_entries; i++) {
		const struct raft_entry *e = &rd->entries[i];
		if (e->index != d->snap_index + d->n + 1) {
			fail(s, "node %" PRIu64 " ready entries not contiguous at %" PRIu64, nd->id, e->index);
			return;
		}
		check_persisted(s, nd, e, disk_term_at(d, e->index - 1));
		entry_dup(&d->ents[d->n++], e);
	}
}

static void disk_install_snapshot(struct sim *s, struct node *nd, const struct raft_ready *rd)
{
	struct disk *d = &nd->d;
	if (rd->snapshot_index != nd->rx_snap_index || rd->snapshot_term != nd->rx_snap_term) {
		fail(s, "node %" PRIu64 " ready snapshot %" PRIu64 " is not the one received (%" PRIu64 ")", nd->id,
		     rd->snapshot_index, nd->rx_snap_index);
		return;
	}
	struct committed *c = crec(s, rd->snapshot_index);
	if (!c->applied || c->chain != nd->rx_snap_chain)
		fail(s, "node %" PRIu64 " snapshot at %" PRIu64 " does not match the committed state", nd->id,
		     rd->snapshot_index);
	disk_reset(d);
	d->snap_index = rd->snapshot_index;
	d->snap_term = rd->snapshot_term;
	d->snap_chain = nd->rx_snap_chain;
	d->applied = d->snap_index;
	d->chain = d->snap_chain;
}

/* Applies committed entries: in order, no gaps, equal to what every other node applied. */
static void disk_apply(struct sim *s, struct node *nd, const struct raft_ready *rd)
{
	struct disk *d = &nd->d;
	for (size_t i = 0; i < rd->n_committed && !s->failed; i++) {
		const struct raft_entry *e = &rd->committed[i];
		if (e->index != d->applied + 1) {
			fail(s, "node %" PRIu64 " applies %" PRIu64 " after %" PRIu64, nd->id, e->index, d->applied);
			return;
		}
		if (disk_term_at(d, e->index) != e->term)
			fail(s, "node %" PRIu64 " applies %" PRIu64 " which is not persisted", nd->id, e->index);
		uint64_t h = entry_hash(e);
		uint64_t chain = chain_next(d->chain, h);
		struct committed *c = crec(s, e->index);
		if (c->applied && (c->hash != h || c->chain != chain || c->term != e->term))
			fail(s,
			     "node %" PRIu64 " applied index %" PRIu64 " term %" PRIu64
			     " differing from the committed entry (term %" PRIu64 ")",
			     nd->id, e->index, e->term, c->term);
		if (c->commit_term && c->term != e->term)
			fail(s,
			     "node %" PRIu64 " applied index %" PRIu64 " term %" PRIu64
			     ", leader committed term %" PRIu64,
			     nd->id, e->index, e->term, c->term);
		if (!c->applied) {
			*c = (struct committed){
			    .term = e->term, .commit_term = c->commit_term, .hash = h, .chain = chain, .applied = 1};
		}
		d->applied = e->index;
		d->chain = chain;
	}
}

/* ---------- nodes ---------- */

static struct raft_config node_config(struct sim *s, uint64_t id)
{
	struct raft_config c = {.id = id,
	                        .n_nodes = s->n,
	                        .election_ticks = 10,
	                        .heartbeat_ticks = 2,
	                        .seed = s->seed * 1000003 + id + s->step,
	                        .msg_bytes_max = s->msg_bytes_max,
	                        .inflight_max = (uint32_t)(1 + s->seed % 8)};
	for (size_t i = 0; i < s->n; i++)
		c.nodes[i] = i + 1;
	return c;
}

static void node_start(struct sim *s, struct node *nd)
{
	struct raft_config c = node_config(s, nd->id);
	struct disk *d = &nd->d;
	nd->r = raft_new(&c, &d->hs, d->snap_index, d->snap_term, d->ents, d->n, d->applied);
	if (nd->r == NULL)
		fail(s, "raft_new failed for node %" PRIu64 " from its disk", nd->id);
	nd->n_unreachable = nd->n_snap_sent = 0;
	trace(s,
	      "start node %" PRIu64 " (term %" PRIu64 " vote %" PRIu64 " log %" PRIu64 "..%" PRIu64 " applied %" PRIu64
	      ")",
	      nd->id, d->hs.term, d->hs.vote, d->snap_index, d->snap_index + d->n, d->applied);
}

static void node_crash(struct sim *s, struct node *nd, const char *where)
{
	trace(s, "crash node %" PRIu64 " %s", nd->id, where);
	raft_free(nd->r);
	nd->r = NULL;
}

/* ---------- network ---------- */

static void net_push(struct sim *s, const struct raft_msg *m, uint64_t snap_chain)
{
	if (s->n_net >= NET_MSGS_MAX)
		return;
	struct nmsg *q = &s->net[s->n_net++];
	q->m = *m;
	q->snap_chain = snap_chain;
	q->ents = NULL;
	if (m->n_entries) {
		q->ents = xrealloc(NULL, m->n_entries * sizeof(*q->ents));
		for (size_t i = 0; i < m->n_entries; i++)
			entry_dup(&q->ents[i], &m->entries[i]);
	}
	q->m.entries = q->ents;
}

static void nmsg_free(struct nmsg *q)
{
	for (size_t i = 0; i < q->m.n_entries; i++)
		free(q->ents[i].data);
	free(q->ents);
}

static int reachable(struct sim *s, uint64_t from, uint64_t to)
{
	struct node *b = node_by_id(s, to);
	return b != NULL && b->r != NULL && s->link[from - 1][to - 1];
}

static void host_send(struct sim *s, struct node *nd, const struct raft_msg *m)
{
	struct node *to = node_by_id(s, m->to);
	if (to == NULL || m->from != nd->id) {
		fail(s, "node %" PRIu64 " sends a message from %" PRIu64 " to %" PRIu64, nd->id, m->from, m->to);
		return;
	}
	int up = reachable(s, nd->id, m->to);
	if (!up && m->type == RAFT_MSG_APPEND && nd->n_unreachable < NODES_MAX)
		nd->unreachable[nd->n_unreachable++] = m->to;
	if (m->type == RAFT_MSG_SNAPSHOT && nd->n_snap_sent < NODES_MAX) {
		nd->snap_sent[nd->n_snap_sent] = m->to;
		nd->snap_ok[nd->n_snap_sent++] = up;
		if (m->index != nd->d.snap_index)
			fail(s, "node %" PRIu64 " sends snapshot %" PRIu64 " but holds %" PRIu64, nd->id, m->index,
			     nd->d.snap_index);
	}
	if (s->chaos && pct(s, s->drop_pct))
		return;
	net_push(s, m, nd->d.snap_chain);
	if (s->chaos && pct(s, s->dup_pct))
		net_push(s, m, nd->d.snap_chain);
}

static void deliver(struct sim *s)
{
	if (s->n_net == 0)
		return;
	size_t k = rn(s, (uint32_t)s->n_net);
	struct nmsg q = s->net[k];
	s->net[k] = s->net[--s->n_net];
	struct node *to = node_by_id(s, q.m.to);
	if (reachable(s, q.m.from, q.m.to)) {
		trace(s,
		      "deliver %u %" PRIu64 "->%" PRIu64 " term %" PRIu64 " index %" PRIu64 " logterm %" PRIu64
		      " commit %" PRIu64 " n %zu reject %u hint %" PRIu64,
		      q.m.type, q.m.from, q.m.to, q.m.term, q.m.index, q.m.log_term, q.m.commit, q.m.n_entries,
		      q.m.reject, q.m.reject_hint);
		int err = raft_step(to->r, &q.m);
		if (err != SL_OK)
			fail(s, "raft_step on node %" PRIu64 " returned %d for type %u from %" PRIu64, to->id, err,
			     q.m.type, q.m.from);
		struct raft_status st;
		raft_status(to->r, &st);
		if (q.m.type == RAFT_MSG_SNAPSHOT && st.first_index == q.m.index + 1) {
			to->rx_snap_index = q.m.index;
			to->rx_snap_term = q.m.log_term;
			to->rx_snap_chain = q.snap_chain;
		}
	}
	nmsg_free(&q);
}

/* ---------- ready handling ---------- */

enum crash_at { CRASH_NONE, CRASH_BEFORE_SYNC, CRASH_AFTER_SYNC, CRASH_MID_SEND, CRASH_BEFORE_ADVANCE };

static void after_advance(struct sim *s, struct node *nd)
{
	for (size_t i = 0; i < nd->n_unreachable; i++)
		raft_report_unreachable(nd->r, nd->unreachable[i]);
	for (size_t i = 0; i < nd->n_snap_sent; i++)
		raft_snapshot_done(nd->r, nd->snap_sent[i], nd->snap_ok[i]);
	nd->n_unreachable = nd->n_snap_sent = 0;
}

static void handle_ready(struct sim *s, struct node *nd)
{
	struct raft_ready rd;
	observe(s, nd);
	if (nd->r == NULL || !raft_ready(nd->r, &rd))
		return;
	enum crash_at crash = CRASH_NONE;
	if (s->chaos && rn(s, 1000) < s->crash_permille)
		crash = (enum crash_at)(1 + rn(s, 4));
	/* as the logwriter does: a leader's appends go out before its sync */
	for (size_t i = 0; i < rd.n_msgs; i++)
		if (raft_msg_early(&rd, &rd.msgs[i]))
			host_send(s, nd, &rd.msgs[i]);
	if (crash == CRASH_BEFORE_SYNC) {
		node_crash(s, nd, "before sync");
		return;
	}
	if (rd.hs_changed)
		nd->d.hs = rd.hs;
	if (rd.snapshot_index)
		disk_install_snapshot(s, nd, &rd);
	if (rd.n_entries)
		disk_write_entries(s, nd, &rd);
	if (crash == CRASH_AFTER_SYNC) {
		node_crash(s, nd, "after sync");
		return;
	}
	size_t cut = crash == CRASH_MID_SEND ? rn(s, (uint32_t)rd.n_msgs + 1) : rd.n_msgs;
	for (size_t i = 0; i < cut; i++)
		if (!raft_msg_early(&rd, &rd.msgs[i]))
			host_send(s, nd, &rd.msgs[i]);
	if (crash == CRASH_MID_SEND) {
		node_crash(s, nd, "mid send");
		return;
	}
	disk_apply(s, nd, &rd);
	if (crash == CRASH_BEFORE_ADVANCE) {
		node_crash(s, nd, "before advance");
		return;
	}
	raft_advance(nd->r, &rd);
	after_advance(s, nd);
}

static void handle_readies(struct sim *s)
{
	size_t start = rn(s, (uint32_t)s->n);
	for (size_t i = 0; i < s->n && !s->failed; i++)
		if (!s->chaos || !pct(s, s->skip_pct)) /* a slow host: its ready waits a step */
			handle_ready(s, &s->nodes[(start + i) % s->n]);
	for (size_t i = 0; i < s->n && !s->failed; i++)
		observe(s, &s->nodes[i]);
}

/* ---------- events ---------- */

static struct node *some_leader(struct sim *s)
{
	struct node *best = NULL;
	uint64_t best_term = 0;
	for (size_t i = 0; i < s->n; i++) {
		struct node *nd = &s->nodes[i];
		struct raft_status st;
		if (nd->r == NULL)
			continue;
		raft_status(nd->r, &st);
		if (st.role == RAFT_LEADER && st.term >= best_term) {
			best = nd;
			best_term = st.term;
		}
	}
	return best;
}

static struct node *random_live(struct sim *s)
{
	size_t start = rn(s, (uint32_t)s->n);
	for (size_t i = 0; i < s->n; i++) {
		struct node *nd = &s->nodes[(start + i) % s->n];
		if (nd->r)
			return nd;
	}
	return NULL;
}

static int propose(struct sim *s, struct node *nd, uint64_t *index, uint64_t *hash)
{
	uint32_t len = rn(s, 10) == 0 ? 0 : 1 + rn(s, 100);
	uint8_t *data = len ? xrealloc(NULL, len) : NULL;
	int k = len ? snprintf((char *)data, len, "%" PRIu64 ":%" PRIu64, s->seed, s->proposals) : 0;
	for (uint32_t i = (uint32_t)(k > 0 ? k : 0); i < len; i++)
		data[i] = (uint8_t)rnd(s);
	struct raft_entry e = {.type = RAFT_ENTRY_NORMAL, .len = len, .data = data};
	uint64_t h = entry_hash(&e);
	int err = raft_propose(nd->r, data, len, index);
	if (err != SL_OK && err != SL_EUNAVAILABLE)
		fail(s, "raft_propose on node %" PRIu64 " returned %d", nd->id, err);
	if (err == SL_OK) {
		s->proposals++;
		if (hash)
			*hash = h;
		trace(s, "propose on %" PRIu64 " index %" PRIu64 " len %u", nd->id, index ? *index : 0, len);
	}
	return err;
}

static void ev_propose(struct sim *s)
{
	struct node *nd = random_live(s);
	struct raft_status st;
	if (nd == NULL)
		return;
	raft_status(nd->r, &st);
	if (st.role == RAFT_LEADER) {
		uint64_t index;
		propose(s, nd, &index, NULL);
	}
}

static void ev_partition(struct sim *s)
{
	uint32_t kind = rn(s, 3);
	for (size_t i = 0; i < s->n; i++)
		for (size_t j = 0; j < s->n; j++)
			s->link[i][j] = 1;
	if (kind == 0) {
		trace(s, "heal");
		return;
	}
	if (kind == 1) {
		size_t x = rn(s, (uint32_t)s->n);
		trace(s, "isolate %zu", x + 1);
		for (size_t j = 0; j < s->n; j++)
			s->link[x][j] = s->link[j][x] = j == x;
		return;
	}
	int side[NODES_MAX];
	for (size_t i = 0; i < s->n; i++)
		side[i] = (int)rn(s, 2);
	trace(s, "split");
	for (size_t i = 0; i < s->n; i++)
		for (size_t j = 0; j < s->n; j++)
			s->link[i][j] = side[i] == side[j];
}

static void ev_transfer(struct sim *s)
{
	struct node *nd = some_leader(s);
	if (nd == NULL)
		return;
	uint64_t to = 1 + rn(s, (uint32_t)s->n);
	int err = raft_transfer_leader(nd->r, to);
	trace(s, "transfer %" PRIu64 " -> %" PRIu64 ": %d", nd->id, to, err);
	if (err != (to == nd->id ? SL_EINVAL : SL_OK))
		fail(s, "raft_transfer_leader(%" PRIu64 " -> %" PRIu64 ") returned %d", nd->id, to, err);
}

static void ev_compact(struct sim *s)
{
	struct node *nd = random_live(s);
	if (nd == NULL || nd->d.applied <= nd->d.snap_index)
		return;
	struct disk *d = &nd->d;
	uint64_t c = d->snap_index + 1 + rn(s, (uint32_t)(d->applied - d->snap_index));
	struct committed *rec = crec(s, c);
	uint64_t term = disk_term_at(d, c);
	if (!rec->applied || term != rec->term) {
		fail(s, "node %" PRIu64 " compacts at %" PRIu64 " which is not the committed entry", nd->id, c);
		return;
	}
	size_t drop = (size_t)(c - d->snap_index);
	for (size_t i = 0; i < drop; i++)
		free(d->ents[i].data);
	memmove(d->ents, d->ents + drop, (d->n - drop) * sizeof(*d->ents));
	d->n -= drop;
	d->snap_index = c;
	d->snap_term = term;
	d->snap_chain = rec->chain;
	raft_compact(nd->r, c);
	trace(s, "compact node %" PRIu64 " to %" PRIu64, nd->id, c);
}

static void ev_crash_or_restart(struct sim *s)
{
	struct node *nd = &s->nodes[rn(s, (uint32_t)s->n)];
	if (nd->r)
		node_crash(s, nd, "at rest");
	else
		node_start(s, nd);
}

/* Time passes for every live node; some miss the tick (clock jitter). */
static void ev_tick(struct sim *s)
{
	for (size_t i = 0; i < s->n; i++) {
		struct node *nd = &s->nodes[i];
		if (nd->r && !pct(s, 10))
			raft_tick(nd->r);
	}
}

static void chaos_step(struct sim *s)
{
	uint32_t x = rn(s, 1000);
	if (x < 680)
		deliver(s);
	else if (x < 800)
		ev_tick(s);
	else if (x < 900)
		ev_propose(s);
	else if (x < 930)
		ev_compact(s);
	else if (x < 935)
		ev_crash_or_restart(s);
	else if (x < 970) {
		struct node *nd = &s->nodes[rn(s, (uint32_t)s->n)];
		if (nd->r == NULL)
			node_start(s, nd);
	} else if (x < 980)
		ev_partition(s);
	else if (x < 985)
		ev_transfer(s);
	else
		deliver(s);
}

/* ---------- one seed ---------- */

static void sim_init(struct sim *s, uint64_t seed, int verbose)
{
	memset(s, 0, sizeof(*s));
	s->seed = seed;
	s->rng = seed ^ 0x5DEECE66Dull;
	s->verbose = verbose;
	/* one voter (a single node), five or three */
	unsigned shape = rn(s, 8);
	s->n = shape == 0 ? 1 : shape < 3 ? 5 : 3;
	s->drop_pct = rn(s, 15);
	s->dup_pct = rn(s, 8);
	s->crash_permille = rn(s, 20);
	s->skip_pct = rn(s, 40);
	static const size_t bytes[] = {1, 64, 256, 4096};
	s->msg_bytes_max = bytes[rn(s, 4)];
	s->chaos = 1;
	s->net = xrealloc(NULL, NET_MSGS_MAX * sizeof(*s->net));
	for (size_t i = 0; i < s->n; i++)
		for (size_t j = 0; j < s->n; j++)
			s->link[i][j] = 1;
	trace(s, "seed %" PRIu64 ": %zu nodes, drop %u%%, dup %u%%, crash %u/1000 readies, slow %u%%, msg %zu bytes",
	      seed, s->n, s->drop_pct, s->dup_pct, s->crash_permille, s->skip_pct, s->msg_bytes_max);
	for (size_t i = 0; i < s->n; i++) {
		s->nodes[i].id = i + 1;
		node_start(s, &s->nodes[i]);
	}
}

static void sim_free(struct sim *s)
{
	for (size_t i = 0; i < s->n; i++) {
		struct node *nd = &s->nodes[i];
		raft_free(nd->r);
		disk_reset(&nd->d);
		free(nd->d.ents);
	}
	for (size_t i = 0; i < s->n_net; i++)
		nmsg_free(&s->net[i]);
	free(s->net);
	for (size_t i = 0; i < s->cap_seen; i++)
		free(s->seen[i].v);
	free(s->seen);
	free(s->c);
	free(s->term_leader);
}

/* Faults off, everything up and healed: a fresh proposal must commit everywhere. */
static void liveness(struct sim *s)
{
	s->chaos = 0;
	for (size_t i = 0; i < s->n; i++) {
		for (size_t j = 0; j < s->n; j++)
			s->link[i][j] = 1;
		if (s->nodes[i].r == NULL)
			node_start(s, &s->nodes[i]);
	}
	trace(s, "liveness phase");
	uint64_t idx = 0, hash = 0, term = 0;
	struct node *by = NULL;
	for (uint32_t k = 0; k < LIVE_STEPS && !s->failed; k++, s->step++) {
		struct committed *c = idx ? crec(s, idx) : NULL;
		if (c && !(c->applied && c->hash == hash)) {
			struct raft_status st;
			if (by->r)
				raft_status(by->r, &st);
			if ((c->applied && c->hash != hash) || by->r == NULL || st.role != RAFT_LEADER ||
			    st.term != term)
				idx = 0; /* lost with its leader's term: propose again */
		}
		if (idx == 0) {
			struct node *ld = some_leader(s);
			struct raft_status st;
			if (ld && propose(s, ld, &idx, &hash) == SL_OK) {
				raft_status(ld->r, &st);
				by = ld;
				term = st.term;
			} else {
				idx = 0;
			}
		}
		if (idx && crec(s, idx)->applied && crec(s, idx)->hash == hash) {
			size_t done = 0;
			for (size_t i = 0; i < s->n; i++)
				done += s->nodes[i].d.applied >= idx;
			if (done == s->n)
				return;
		}
		if (rn(s, 100) < 85)
			deliver(s);
		else
			ev_tick(s);
		handle_readies(s);
	}
	if (!s->failed)
		fail(s, "liveness: the last proposal (index %" PRIu64 ") did not commit on all nodes in %d steps", idx,
		     LIVE_STEPS);
}

static int run_seed(uint64_t seed, int verbose, char *why, size_t why_len)
{
	struct sim *s = xrealloc(NULL, sizeof(*s));
	sim_init(s, seed, verbose);
	uint32_t steps = CHAOS_STEPS / 2 + rn(s, CHAOS_STEPS);
	for (uint32_t k = 0; k < steps && !s->failed; k++, s->step++) {
		chaos_step(s);
		handle_readies(s);
	}
	if (!s->failed)
		liveness(s);
	int failed = s->failed;
	if (failed)
		snprintf(why, why_len, "%s", s->why);
	trace(s, "end: %" PRIu64 " proposals, commit %" PRIu64, s->proposals, s->max_commit);
	sim_free(s);
	free(s);
	return failed;
}

/* ---------- main ---------- */

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void usage(void)
{
	fprintf(stderr, "usage: raft_sim --seed N [-v]\n"
	                "       raft_sim --seeds K [--start S] [--budget-ms B]\n");
}

int main(int argc, char **argv)
{
	uint64_t seed = 0, seeds = 0, start = 0, budget_ms = 0;
	int one = 0, have_start = 0, verbose = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage();
			return 0;
		} else if (strcmp(a, "-v") == 0) {
			verbose = 1;
		} else if (strcmp(a, "--seed") == 0 && v) {
			seed = strtoull(v, NULL, 0), one = 1, i++;
		} else if (strcmp(a, "--seeds") == 0 && v) {
			seeds = strtoull(v, NULL, 0), i++;
		} else if (strcmp(a, "--start") == 0 && v) {
			start = strtoull(v, NULL, 0), have_start = 1, i++;
		} else if (strcmp(a, "--budget-ms") == 0 && v) {
			budget_ms = strtoull(v, NULL, 0), i++;
		} else {
			usage();
			return 2;
		}
	}
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
	if (!have_start)
		start = (uint64_t)time(NULL) * 1000;
	printf("raft_sim: seeds from %" PRIu64 "\n", start);
	fflush(stdout);
	double t0 = now_ms();
	uint64_t ran = 0;
	for (; ran < seeds; ran++) {
		if (budget_ms && now_ms() - t0 >= (double)budget_ms)
			break;
		uint64_t sd = start + ran;
		if (run_seed(sd, 0, why, sizeof(why))) {
			printf("FAILED seed %" PRIu64 ": %s\nreproduce: raft_sim --seed %" PRIu64 " -v\n", sd, why, sd);
			return 1;
		}
	}
	double ms = now_ms() - t0;
	printf("raft_sim: %" PRIu64 " seeds passed in %.0f ms (%.1f seeds/s)\n", ran, ms,
	       ms > 0 ? ran * 1e3 / ms : 0.0);
	return 0;
}
