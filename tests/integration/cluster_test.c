/*
 * cluster_test.c: real-process fault tests of a three-node cluster. Every
 * peer link runs through a faultproxy (cluster.h), so a test can cut, silence
 * or delay links, besides kill -9, SIGTERM and SIGSTOP of whole nodes or of
 * one logwriter or frontend.
 *
 * Workload: PRODUCERS libsluice async clients on a thread of their own, each
 * with the three servers listed starting at a different node, publish keyed
 * messages (so every producer reaches every partition) whose payload encodes
 * (producer, seq). Every ack is recorded in the order it arrives.
 *
 * Checker, after healing and once all nodes report the same commit index:
 * every partition is read from every node separately, from offset 0 to its
 * end, and (1) the three logs are identical (offsets, keys, payloads,
 * timestamps), (2) every acknowledged message sits exactly at its acked
 * partition and offset, and no (producer, seq) is stored twice, (3) per
 * partition, each producer's messages appear in the order they were acked,
 * (4) the raft position an ack reports (term, log index) is set and, within a
 * partition, never goes backwards as offsets grow.
 *
 * SLUICE_SOAK_SECONDS=N: the soak test repeats random faults for N seconds
 * (SLUICE_SOAK_SEED=S replays a schedule; the seed is printed).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <event2/event.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cluster.h"
#include "faultproxy.h"
#include "harness.h"
#include "sluice/sluice.h"

#define PARTS 4
#define PRODUCERS 4
#define WINDOW 16
#define KEYS 16
#define PRODUCERS_MAX 512
#define PAYLOAD_MAX 96
#define FAILURES_SHOWN 25
#define SOAK_ROUNDS_PER_TOPIC 10
#define SOAK_FAULTS 11
#define LEADER_NEW_MS 3000 /* kill -9 of a leader to a new leader; election timeout is 500 ms */

/* ---- workload ---- */

struct ack_rec {
	uint64_t seq;
	uint32_t part;
	uint64_t off;
	uint64_t term, log_index; /* sluice_ack_position, 0 if unknown */
	int dup;
};

struct producer {
	struct workload *w;
	int idx; /* global producer index, in the payload */
	struct sluice_client *cli;
	char servers[256];
	uint64_t seq; /* next sequence to publish */
	size_t inflight;
	struct ack_rec *acks;
	size_t acks_n, acks_cap;
	uint64_t *errs; /* seqs whose publish failed: outcome unknown */
	size_t errs_n, errs_cap;
	char last_err[160];
};

struct workload {
	struct producer p[PRODUCERS_MAX];
	int n;     /* producers so far, across runs */
	int first; /* first producer of the current run */
	pthread_t th;
	int running;
	struct event_base *base;
	struct event *tick;
	int stop, abort_now; /* set by the test thread (atomics) */
	size_t acked;        /* atomics, read by the test thread */
	int finished;
};

struct pub_req {
	struct producer *p;
	uint64_t seq;
};

static struct cluster cl;
static struct workload wl;
static char topic[32] = "ft"; /* the soak moves to a new topic now and then */
static uint64_t producer_ids = 0x51000;

static void make_payload(int k, uint64_t seq, char *buf, size_t len)
{
	size_t n = (size_t)snprintf(buf, len, "p%d-%llu:", k, (unsigned long long)seq);
	size_t end = len - 1 < 64 ? len - 1 : 64;

	/* A filler that depends on both, so a torn or swapped payload shows. */
	for (size_t i = n; i < end; i++)
		buf[i] = (char)('a' + (seq * 31 + (uint64_t)k * 7 + i) % 26);
	buf[n > end ? n : end] = '\0';
}

/* Odd producers batch (libsluice linger_ms): keyless publishes travel as
 * PublishBatch, stored where the broker puts each whole batch; even ones
 * send keyed publishes one by one. */
static int batching(int k)
{
	return k % 2 == 1;
}

static void make_key(int k, uint64_t seq, char *buf, size_t len)
{
	if (batching(k))
		buf[0] = '\0';
	else
		snprintf(buf, len, "key-%llu", (unsigned long long)((seq + (uint64_t)k) % KEYS));
}

static void rec_push(struct producer *p, const struct ack_rec *r)
{
	if (p->acks_n == p->acks_cap) {
		size_t nc = p->acks_cap ? p->acks_cap * 2 : 4096;
		void *np = realloc(p->acks, nc * sizeof(*p->acks));
		if (!np)
			abort();
		p->acks = np;
		p->acks_cap = nc;
	}
	p->acks[p->acks_n++] = *r;
}

static void err_push(struct producer *p, uint64_t seq)
{
	if (p->errs_n == p->errs_cap) {
		size_t nc = p->errs_cap ? p->errs_cap * 2 : 256;
		void *np = realloc(p->errs, nc * sizeof(*p->errs));
		if (!np)
			abort();
		p->errs = np;
		p->errs_cap = nc;
	}
	p->errs[p->errs_n++] = seq;
}

static void pub_next(struct producer *p);

static void pub_ack_cb(void *arg, int err, const char *errmsg, uint32_t partition, uint64_t offset, int64_t ts, int dup)
{
	struct pub_req *r = arg;
	struct producer *p = r->p;

	(void)ts;
	p->inflight--;
	if (err) {
		err_push(p, r->seq);
		snprintf(p->last_err, sizeof(p->last_err), "seq %llu: %d %s", (unsigned long long)r->seq, err,
		         errmsg ? errmsg : sluice_strerror(err));
	} else {
		struct ack_rec a = {r->seq, partition, offset, 0, 0, dup};
		sluice_ack_position(p->cli, &a.term, &a.log_index);
		rec_push(p, &a);
		__atomic_add_fetch(&p->w->acked, 1, __ATOMIC_RELAXED);
	}
	free(r);
	if (!__atomic_load_n(&p->w->stop, __ATOMIC_RELAXED))
		pub_next(p);
}

static void pub_next(struct producer *p)
{
	struct pub_req *r = malloc(sizeof(*r));
	struct sluice_pub m = {0};
	char key[32], payload[PAYLOAD_MAX];

	if (!r)
		abort();
	r->p = p;
	r->seq = p->seq;
	make_payload(p->idx, r->seq, payload, sizeof(payload));
	make_key(p->idx, r->seq, key, sizeof(key));
	m.topic = topic;
	m.key = sluice_bytes_cstr(key);
	m.payload = sluice_bytes_cstr(payload);
	if (sluice_publish(p->cli, &m, pub_ack_cb, r) != 0) {
		/* Not sent at all: the sequence is not used. */
		free(r);
		return;
	}
	p->seq++;
	p->inflight++;
}

static void wl_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct workload *w = arg;
	size_t inflight = 0;

	(void)fd;
	(void)what;
	if (__atomic_load_n(&w->abort_now, __ATOMIC_RELAXED)) {
		event_base_loopbreak(w->base);
		return;
	}
	for (int k = w->first; k < w->n; k++) {
		inflight += w->p[k].inflight;
		/* A publish call refused (queue full) leaves a hole in the window. */
		if (!__atomic_load_n(&w->stop, __ATOMIC_RELAXED))
			while (w->p[k].inflight < WINDOW) {
				size_t before = w->p[k].inflight;
				pub_next(&w->p[k]);
				if (w->p[k].inflight == before)
					break;
			}
	}
	if (__atomic_load_n(&w->stop, __ATOMIC_RELAXED) && inflight == 0)
		event_base_loopbreak(w->base);
}

static void *wl_thread(void *arg)
{
	struct workload *w = arg;

	event_base_dispatch(w->base);
	for (int k = w->first; k < w->n; k++) {
		/* Outstanding callbacks run now with SLUICE_ECLOSED (only on abort). */
		sluice_client_free(w->p[k].cli);
		w->p[k].cli = NULL;
	}
	__atomic_store_n(&w->finished, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* Start PRODUCERS new producers (new ids: a producer's sequence restarts). */
static void workload_start(struct workload *w, const struct cluster *c)
{
	struct timeval tv = {0, 10000};

	cr_assert_leq(w->n + PRODUCERS, PRODUCERS_MAX, "too many producer runs");
	w->base = event_base_new();
	cr_assert_not_null(w->base);
	w->first = w->n;
	w->stop = 0;
	w->abort_now = 0;
	w->finished = 0;
	for (int k = w->first; k < w->first + PRODUCERS; k++) {
		struct producer *p = &w->p[k];
		struct sluice_client_opts o = {0};
		int start = k % CLUSTER_N;
		size_t off = 0;
		memset(p, 0, sizeof(*p));
		p->w = w;
		p->idx = k;
		for (int j = 0; j < CLUSTER_N; j++)
			off += (size_t)snprintf(p->servers + off, sizeof(p->servers) - off, "%s%s", j ? "," : "",
			                        c->node[(start + j) % CLUSTER_N].addr);
		o.servers = p->servers;
		o.client_name = "itest-cluster-pub";
		/* Unique for the whole run (the soak starts over with a new topic;
		 * dedup is per producer, topic and partition space, so this is
		 * only for clarity in the logs). */
		o.producer_id = ++producer_ids;
		o.pipeline_max = 256;
		o.linger_ms = batching(k) ? 2 : 0;
		o.request_timeout_ms = 3000;
		o.retry_max_ms = 60000;
		cr_assert_eq(sluice_client_new(w->base, &o, &p->cli), 0);
	}
	w->n = w->first + PRODUCERS;
	w->tick = event_new(w->base, -1, EV_PERSIST, wl_tick_cb, w);
	cr_assert_not_null(w->tick);
	event_add(w->tick, &tv);
	cr_assert_eq(pthread_create(&w->th, NULL, wl_thread, w), 0);
	w->running = 1;
}

static void workload_join(struct workload *w)
{
	pthread_join(w->th, NULL);
	w->running = 0;
	event_free(w->tick);
	event_base_free(w->base);
	w->tick = NULL;
	w->base = NULL;
}

/* Stop publishing and wait (bounded) until every publish was answered. */
static int workload_stop(struct workload *w, int timeout_ms)
{
	long long deadline = itest_now_ms() + timeout_ms;

	if (!w->running)
		return 0;
	__atomic_store_n(&w->stop, 1, __ATOMIC_RELAXED);
	while (!__atomic_load_n(&w->finished, __ATOMIC_ACQUIRE)) {
		if (itest_now_ms() >= deadline) {
			__atomic_store_n(&w->abort_now, 1, __ATOMIC_RELAXED);
			workload_join(w);
			return -1;
		}
		itest_sleep_ms(10);
	}
	workload_join(w);
	return 0;
}

static void workload_free(struct workload *w)
{
	if (w->running) {
		__atomic_store_n(&w->abort_now, 1, __ATOMIC_RELAXED);
		workload_join(w);
	}
	for (int k = 0; k < w->n; k++) {
		free(w->p[k].acks);
		free(w->p[k].errs);
	}
	memset(w, 0, sizeof(*w));
}

static size_t acked(void)
{
	return __atomic_load_n(&wl.acked, __ATOMIC_RELAXED);
}

static void teardown(void)
{
	workload_free(&wl);
	cluster_destroy(&cl);
}

/* An assertion that shows the nodes' logs when it fails. */
#define must(cond, ...)                                                                                                \
	do {                                                                                                           \
		if (!(cond)) {                                                                                         \
			cluster_dump_logs(&cl);                                                                        \
			cr_assert_fail(__VA_ARGS__);                                                                   \
		}                                                                                                      \
	} while (0)

/* Publishing makes progress: `more` new acks within timeout. */
static void expect_progress(size_t more, const char *after)
{
	size_t base_n = acked();
	long long deadline = itest_now_ms() + 30000;

	while (acked() < base_n + more) {
		must(itest_now_ms() < deadline, "no publish progress after %s: %zu acks in 30 s", after,
		     acked() - base_n);
		itest_sleep_ms(20);
	}
}

/* ---- checker ---- */

struct entry {
	int k; /* producer, -1 if the payload is not ours */
	uint64_t seq;
	uint64_t hash; /* key and payload bytes */
	int64_t ts;
	int bad; /* payload or key differs from what (k, seq) generates */
};

struct plog {
	struct entry *e;
	size_t n, cap;
	uint64_t bad_offset;
	int gap;
};

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

/* What the checker keeps of a stored message. */
static struct entry entry_make(const void *k, size_t klen, const void *pl, size_t plen, int64_t ts)
{
	struct entry e = {-1, 0, 0, ts, 0};
	char payload[PAYLOAD_MAX + 1], want[PAYLOAD_MAX], key[32], wkey[32];
	unsigned long long seq;

	e.hash = fnv(fnv(0xcbf29ce484222325ull, k, klen), "\0", 1);
	e.hash = fnv(e.hash, pl, plen);
	if (plen >= sizeof(payload) || klen >= sizeof(key))
		return e;
	if (plen)
		memcpy(payload, pl, plen);
	payload[plen] = '\0';
	if (klen)
		memcpy(key, k, klen);
	key[klen] = '\0';
	if (sscanf(payload, "p%d-%llu:", &e.k, &seq) == 2 && e.k >= 0 && e.k < PRODUCERS_MAX) {
		e.seq = seq;
		make_payload(e.k, e.seq, want, sizeof(want));
		make_key(e.k, e.seq, wkey, sizeof(wkey));
		e.bad = strcmp(want, payload) != 0 || strcmp(wkey, key) != 0;
	} else {
		e.k = -1;
	}
	return e;
}

static void plog_push(struct plog *l, const struct entry *e)
{
	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 4096;
		void *np = realloc(l->e, nc * sizeof(*l->e));
		if (!np)
			abort();
		l->e = np;
		l->cap = nc;
	}
	l->e[l->n++] = *e;
}

static void fetch_fn(void *arg, const struct sluice_msg *m)
{
	struct plog *l = arg;
	struct entry e;

	if (m->offset != l->n) {
		if (!l->gap)
			l->bad_offset = m->offset;
		l->gap = 1;
		return;
	}
	e = entry_make(m->key.base, m->key.len, m->payload.base, m->payload.len, m->timestamp_ms);
	plog_push(l, &e);
}

/* Read one partition of node i from offset 0 to its end. */
static void read_partition(int i, uint32_t part, struct plog *l)
{
	struct sluice_client_opts o = {0};
	struct sluice_sync *sy = NULL;
	uint64_t end = 0;
	char em[256] = "";
	int rc;

	o.servers = cl.node[i].addr;
	o.client_name = "itest-cluster-check";
	o.request_timeout_ms = 10000;
	o.retry_max_ms = 10000;
	rc = sluice_sync_open(&o, &sy);
	must(rc == 0, "checker: cannot connect to node %d: %d", i + 1, rc);
	for (int guard = 0; guard < 1000000; guard++) {
		size_t before = l->n;
		rc = sluice_sync_fetch(sy, topic, part, l->n, 1000, 0, fetch_fn, l, &end, em, sizeof(em));
		must(rc == 0, "checker: fetch node %d partition %u at %zu: %d %s", i + 1, part, l->n, rc, em);
		must(!l->gap, "checker: node %d partition %u: offset %llu where %zu was expected", i + 1, part,
		     (unsigned long long)l->bad_offset, l->n);
		if (l->n >= end || l->n == before)
			break;
	}
	sluice_sync_close(sy);
	must(l->n == end, "checker: node %d partition %u: read %zu messages but the end offset is %llu", i + 1, part,
	     l->n, (unsigned long long)end);
}

static int failures;
static int failures_quiet; /* the checker's own test counts without printing */

#define fail_detail(...)                                                                                               \
	do {                                                                                                           \
		if (failures++ < FAILURES_SHOWN && !failures_quiet)                                                    \
			cr_log_error(__VA_ARGS__);                                                                     \
	} while (0)

static void describe(const struct entry *e, char *buf, size_t len)
{
	if (e->k < 0)
		snprintf(buf, len, "a foreign payload");
	else
		snprintf(buf, len, "p%d-%llu%s", e->k, (unsigned long long)e->seq, e->bad ? " (corrupt)" : "");
}

/* (1) node i holds exactly what node 0 holds. */
static void check_identical(struct plog logs[CLUSTER_N][PARTS])
{
	for (int i = 1; i < CLUSTER_N; i++)
		for (int p = 0; p < PARTS; p++) {
			struct plog *a = &logs[0][p], *b = &logs[i][p];
			size_t n = a->n < b->n ? a->n : b->n;
			if (a->n != b->n)
				fail_detail("logs differ: partition %d has %zu messages on node 1, %zu on node %d", p,
				            a->n, b->n, i + 1);
			for (size_t o = 0; o < n; o++) {
				char da[64], db[64];
				if (a->e[o].hash == b->e[o].hash && a->e[o].ts == b->e[o].ts)
					continue;
				describe(&a->e[o], da, sizeof(da));
				describe(&b->e[o], db, sizeof(db));
				fail_detail("logs differ: partition %d offset %zu holds %s (ts %lld) on node 1 and %s "
				            "(ts %lld) on node %d",
				            p, o, da, (long long)a->e[o].ts, db, (long long)b->e[o].ts, i + 1);
			}
		}
}

struct pos {
	int32_t part; /* -1: not stored */
	uint64_t off;
};

/* (2) no (producer, seq) twice, and nothing foreign; fills pos. */
static void check_unique(struct plog *log, struct pos **pos)
{
	for (int k = 0; k < wl.n; k++) {
		pos[k] = malloc((wl.p[k].seq + 1) * sizeof(**pos));
		cr_assert_not_null(pos[k]);
		for (uint64_t s = 0; s <= wl.p[k].seq; s++)
			pos[k][s].part = -1;
	}
	for (int p = 0; p < PARTS; p++)
		for (size_t o = 0; o < log[p].n; o++) {
			const struct entry *e = &log[p].e[o];
			if (e->k < 0 || e->k >= wl.n || e->seq >= wl.p[e->k].seq || e->bad) {
				char d[64];
				describe(e, d, sizeof(d));
				fail_detail("partition %d offset %zu holds %s, which no producer sent", p, o, d);
				continue;
			}
			struct pos *q = &pos[e->k][e->seq];
			if (q->part >= 0)
				fail_detail("p%d-%llu is stored twice: at %d/%llu and at %d/%zu", e->k,
				            (unsigned long long)e->seq, q->part, (unsigned long long)q->off, p, o);
			else
				*q = (struct pos){p, o};
		}
}

/* (2) every ack at its place; (3) per partition, log order = ack order. */
static void check_acks(struct plog *log, struct pos **pos, size_t *n_acked)
{
	for (int k = 0; k < wl.n; k++) {
		const struct producer *pr = &wl.p[k];
		const struct ack_rec *last[PARTS] = {0};
		size_t last_i[PARTS] = {0};
		for (size_t a = 0; a < pr->acks_n; a++) {
			const struct ack_rec *r = &pr->acks[a], *o;
			const struct pos *q = &pos[k][r->seq];
			(*n_acked)++;
			if (r->part >= PARTS || r->off >= log[r->part].n || q->part != (int32_t)r->part ||
			    q->off != r->off) {
				char where[64] = "nowhere", there[64] = "nothing";
				if (q->part >= 0)
					snprintf(where, sizeof(where), "at %d/%llu", q->part,
					         (unsigned long long)q->off);
				if (r->part < PARTS && r->off < log[r->part].n)
					describe(&log[r->part].e[r->off], there, sizeof(there));
				fail_detail("acked p%d-%llu at %u/%llu (term %llu index %llu%s) is stored %s; %u/%llu "
				            "holds %s",
				            k, (unsigned long long)r->seq, r->part, (unsigned long long)r->off,
				            (unsigned long long)r->term, (unsigned long long)r->log_index,
				            r->dup ? ", duplicate" : "", where, r->part, (unsigned long long)r->off,
				            there);
				continue;
			}
			o = last[r->part];
			if (o && r->off <= o->off)
				fail_detail(
				    "partition %u: p%d-%llu (ack #%zu: offset %llu, term %llu index %llu%s) was acked "
				    "after p%d-%llu (ack #%zu: offset %llu, term %llu index %llu%s) but is stored "
				    "before it",
				    r->part, k, (unsigned long long)r->seq, a, (unsigned long long)r->off,
				    (unsigned long long)r->term, (unsigned long long)r->log_index,
				    r->dup ? ", duplicate" : "", k, (unsigned long long)o->seq, last_i[r->part],
				    (unsigned long long)o->off, (unsigned long long)o->term,
				    (unsigned long long)o->log_index, o->dup ? ", duplicate" : "");
			last[r->part] = r;
			last_i[r->part] = a;
		}
	}
}

struct ackpos {
	uint64_t off, term, index, seq;
	int k;
};

static int cmp_ackpos(const void *a, const void *b)
{
	const struct ackpos *x = a, *y = b;
	return x->off < y->off ? -1 : x->off > y->off;
}

/* (4) Acks are in the log's order, and the ack of a duplicate names the
 * original message's raft position (the same term and index as the
 * first-time ack of that offset). */
static void check_positions(void)
{
	for (uint32_t p = 0; p < PARTS; p++) {
		struct ackpos *v = NULL;
		size_t n = 0, cap = 0;
		for (int k = 0; k < wl.n; k++)
			for (size_t a = 0; a < wl.p[k].acks_n; a++) {
				const struct ack_rec *r = &wl.p[k].acks[a];
				if (r->part != p)
					continue;
				if (n == cap) {
					cap = cap ? cap * 2 : 4096;
					v = realloc(v, cap * sizeof(*v));
					cr_assert_not_null(v);
				}
				v[n++] = (struct ackpos){r->off, r->term, r->log_index, r->seq, k};
			}
		if (n)
			qsort(v, n, sizeof(*v), cmp_ackpos);
		for (size_t i = 0; i < n; i++) {
			if (v[i].term == 0 || v[i].index == 0)
				fail_detail(
				    "ack of p%d-%llu at %u/%llu reports no raft position (term %llu index %llu)",
				    v[i].k, (unsigned long long)v[i].seq, p, (unsigned long long)v[i].off,
				    (unsigned long long)v[i].term, (unsigned long long)v[i].index);
			if (i == 0)
				continue;
			if (v[i].off == v[i - 1].off && (v[i].term != v[i - 1].term || v[i].index != v[i - 1].index))
				fail_detail("partition %u: two acks of offset %llu name term %llu index %llu and term %llu "
				            "index %llu (a duplicate must name the original position)",
				            p, (unsigned long long)v[i].off, (unsigned long long)v[i].term,
				            (unsigned long long)v[i].index, (unsigned long long)v[i - 1].term,
				            (unsigned long long)v[i - 1].index);
			if (v[i].index < v[i - 1].index || v[i].term < v[i - 1].term ||
			    (v[i].index == v[i - 1].index && v[i].term != v[i - 1].term))
				fail_detail("partition %u: ack at offset %llu says term %llu index %llu but the ack at "
				            "offset %llu says term %llu index %llu",
				            p, (unsigned long long)v[i].off, (unsigned long long)v[i].term,
				            (unsigned long long)v[i].index, (unsigned long long)v[i - 1].off,
				            (unsigned long long)v[i - 1].term, (unsigned long long)v[i - 1].index);
		}
		free(v);
	}
}

/* (1) to (4) over logs read from every node; the number of problems. */
static int check_logs(struct plog logs[CLUSTER_N][PARTS], size_t *n_acked)
{
	struct pos *pos[PRODUCERS_MAX] = {0};

	failures = 0;
	*n_acked = 0;
	check_identical(logs);
	check_unique(logs[0], pos);
	check_acks(logs[0], pos, n_acked);
	check_positions();
	for (int k = 0; k < wl.n; k++)
		free(pos[k]);
	return failures;
}

static void plogs_free(struct plog logs[CLUSTER_N][PARTS])
{
	for (int i = 0; i < CLUSTER_N; i++)
		for (int p = 0; p < PARTS; p++) {
			free(logs[i][p].e);
			memset(&logs[i][p], 0, sizeof(logs[i][p]));
		}
}

/* Read every partition from every node and check (1) to (4). */
static void check_all(const char *scenario)
{
	static struct plog logs[CLUSTER_N][PARTS];
	size_t n_acked = 0, stored = 0, errs = 0;
	int bad;

	must(cluster_wait_converged(&cl, 30000) == 0, "%s: the nodes did not reach the same commit index", scenario);
	memset(logs, 0, sizeof(logs));
	for (int i = 0; i < CLUSTER_N; i++)
		for (int p = 0; p < PARTS; p++)
			read_partition(i, (uint32_t)p, &logs[i][p]);
	bad = check_logs(logs, &n_acked);
	for (int p = 0; p < PARTS; p++)
		stored += logs[0][p].n;
	plogs_free(logs);
	for (int k = 0; k < wl.n; k++) {
		errs += wl.p[k].errs_n;
		if (wl.p[k].errs_n)
			cr_log_info("producer %d: %zu failed publishes, last %s", k, wl.p[k].errs_n, wl.p[k].last_err);
	}
	cr_log_info("%s: %zu acked, %zu failed (unknown outcome), %zu stored per node", scenario, n_acked, errs,
	            stored);
	must(bad == 0, "%s: the checker found %d problems (first %d above)", scenario, bad,
	     bad < FAILURES_SHOWN ? bad : FAILURES_SHOWN);
	must(n_acked >= 300, "%s: only %zu acks: too few to mean anything", scenario, n_acked);
	must(stored >= n_acked, "%s: %zu stored < %zu acked", scenario, stored, n_acked);
}

/* ---- cluster setup and faults ---- */

static void wait_topic_everywhere(void)
{
	for (int i = 0; i < CLUSTER_N; i++) {
		long long deadline = itest_now_ms() + 15000;
		for (;;) {
			struct plog l = {0};
			struct sluice_client_opts o = {0};
			struct sluice_sync *sy = NULL;
			uint64_t end = 0;
			int rc = -1;
			o.servers = cl.node[i].addr;
			o.retry_max_ms = 2000;
			if (sluice_sync_open(&o, &sy) == 0) {
				rc = sluice_sync_fetch(sy, topic, PARTS - 1, 0, 1, 0, fetch_fn, &l, &end, NULL, 0);
				sluice_sync_close(sy);
			}
			free(l.e);
			if (rc == 0)
				break;
			must(itest_now_ms() < deadline, "topic %s not visible on node %d after 15 s (%d)", topic, i + 1,
			     rc);
			itest_sleep_ms(50);
		}
	}
}

static void create_topic(void)
{
	long long deadline = itest_now_ms() + 15000;
	struct sluice_client_opts o = {0};

	o.servers = cl.servers;
	o.retry_max_ms = 5000;
	for (;;) {
		struct sluice_sync *sy = NULL;
		char em[256] = "";
		int rc = sluice_sync_open(&o, &sy);
		if (rc == 0) {
			rc = sluice_sync_topic_create(sy, topic, PARTS, 0, 0, em, sizeof(em));
			sluice_sync_close(sy);
		}
		/* A retry after a lost answer finds the topic made. */
		if (rc == 0 || rc == SLUICE_ETOPIC_EXISTS)
			break;
		must(itest_now_ms() < deadline, "topic create: %d %s", rc, em);
		itest_sleep_ms(100);
	}
	wait_topic_everywhere();
}

/* Three nodes with a leader, the topic everywhere, publishers going. */
/* extra: more sluiced flags for every node (NULL-terminated), or NULL. */
static int cluster_up_with(uint32_t frontends, const char *const *extra)
{
	uint64_t term = 0;
	int l;

	cr_assert_eq(cluster_init(&cl, frontends), 0, "cluster init");
	for (int i = 0; extra && i < CLUSTER_N; i++)
		for (size_t e = 0; extra[e] && e + 1 < sizeof(cl.node[i].extra) / sizeof(cl.node[i].extra[0]); e++)
			cl.node[i].extra[e] = extra[e];
	must(cluster_start_all(&cl) == 0, "three nodes did not start");
	l = cluster_wait_leader(&cl, -1, 15000, &term);
	must(l >= 0, "no leader elected within 15 s");
	cr_log_info("node %d leads in term %llu", l + 1, (unsigned long long)term);
	create_topic();
	workload_start(&wl, &cl);
	expect_progress(300, "start");
	return l;
}

static int cluster_up(uint32_t frontends)
{
	return cluster_up_with(frontends, NULL);
}

static int leader_now(int timeout_ms)
{
	int l = cluster_wait_leader(&cl, -1, timeout_ms, NULL);
	must(l >= 0, "no leader within %d ms", timeout_ms);
	return l;
}

static int follower_of(int l)
{
	/* rand(): the soak's seed decides this too. */
	return (l + 1 + rand() % 2) % CLUSTER_N;
}

/* After a fault: heal, progress, drain publishers, converge and check, then
 * publishers start again with new producer ids (when again). */
static void settle_and_check(const char *scenario, int again)
{
	cluster_heal(&cl);
	expect_progress(200, scenario);
	must(workload_stop(&wl, 60000) == 0, "%s: publishes still unanswered 60 s after stopping", scenario);
	check_all(scenario);
	if (again) {
		workload_start(&wl, &cl);
		expect_progress(100, "publishers restarted");
	}
}

static void fault_kill_leader(void)
{
	int l = leader_now(10000), nl;
	long long t0;

	cr_log_info("kill -9 leader node %d", l + 1);
	must(cluster_kill9(&cl, l) == 0, "node %d's children did not die with its master", l + 1);
	t0 = itest_now_ms();
	nl = cluster_wait_leader(&cl, l, 10000, NULL);
	must(nl >= 0 && nl != l, "no new leader after killing leader node %d", l + 1);
	cr_log_info("node %d leads %lld ms after the kill", nl + 1, itest_now_ms() - t0);
	must(itest_now_ms() - t0 <= LEADER_NEW_MS, "a new leader took %lld ms (bound %d)", itest_now_ms() - t0,
	     LEADER_NEW_MS);
	expect_progress(200, "leader kill");
	itest_sleep_ms(500);
	must(cluster_start(&cl, l) == 0, "node %d did not restart", l + 1);
}

static void fault_kill_follower(void)
{
	int l = leader_now(10000), f = follower_of(l);

	cr_log_info("kill -9 follower node %d (leader %d)", f + 1, l + 1);
	must(cluster_kill9(&cl, f) == 0, "node %d's children did not die with its master", f + 1);
	expect_progress(300, "follower kill");
	itest_sleep_ms(1000);
	must(cluster_start(&cl, f) == 0, "node %d did not restart", f + 1);
}

static void fault_kill_child(const char *comm, int on_leader)
{
	int l = leader_now(10000), i = on_leader ? l : follower_of(l);
	pid_t old, now;

	cr_log_info("kill -9 %s of node %d (%s)", comm, i + 1, on_leader ? "leader" : "follower");
	old = cluster_kill_child(&cl, i, comm);
	must(old > 0, "node %d has no child %s", i + 1, comm);
	now = cluster_wait_child_replaced(&cl, i, comm, old, 10000);
	must(now > 0, "node %d's master did not restart %s", i + 1, comm);
	must(itest_node_wait_ready(&cl.node[i], ITEST_READY_MS) == 0, "node %d not serving after %s restart", i + 1,
	     comm);
	expect_progress(200, comm);
}

static void fault_pause_leader(void)
{
	int l = leader_now(10000), nl;
	struct cluster_view v;
	long long deadline;
	uint64_t term = 0;

	cr_log_info("SIGSTOP leader node %d", l + 1);
	must(cluster_pause(&cl, l) == 0, "SIGSTOP node %d", l + 1);
	nl = cluster_wait_leader(&cl, l, 10000, &term);
	must(nl >= 0 && nl != l, "no new leader while leader node %d is stopped", l + 1);
	expect_progress(200, "leader paused");
	itest_sleep_ms(CLUSTER_ELECTION_MS * 3);
	must(cluster_resume(&cl, l) == 0, "SIGCONT node %d", l + 1);
	/* It steps down: a follower of a later term, not a second leader. */
	deadline = itest_now_ms() + 10000;
	for (;;) {
		cluster_view_get(&cl, l, 1000, &v);
		if (v.ok && strcmp(v.role, "follower") == 0 && v.term >= term && v.leader_id != (uint32_t)l + 1)
			break;
		must(itest_now_ms() < deadline, "resumed node %d did not step down: role %s term %llu leader %u", l + 1,
		     v.role, (unsigned long long)v.term, v.leader_id);
		itest_sleep_ms(50);
	}
}

/* Node i answers (its client port is not cut) with a role other than leader. */
static void expect_stepped_down(int i, int timeout_ms, const char *why)
{
	long long deadline = itest_now_ms() + timeout_ms;
	struct cluster_view v;

	for (;;) {
		cluster_view_get(&cl, i, 1000, &v);
		if (v.ok && strcmp(v.role, "leader") != 0)
			return;
		must(itest_now_ms() < deadline, "node %d still %s (term %llu) %d ms after %s", i + 1,
		     v.ok ? v.role : "silent", (unsigned long long)v.term, timeout_ms, why);
		itest_sleep_ms(50);
	}
}

static void fault_isolate_leader(enum fp_mode mode)
{
	int l = leader_now(10000), nl;

	cr_log_info("partition: leader node %d isolated (%s)", l + 1, mode == FP_DROP ? "cut" : "silent");
	cluster_isolate(&cl, l, mode);
	nl = cluster_wait_leader(&cl, l, 10000, NULL);
	must(nl >= 0 && nl != l, "no new leader on the majority side of a partition of node %d", l + 1);
	/* Check-quorum: a leader that hears from no majority stops leading. */
	expect_stepped_down(l, 4 * CLUSTER_ELECTION_MS, "losing its quorum");
	expect_progress(200, "leader partitioned");
	itest_sleep_ms(1000);
}

static void fault_isolate_follower(enum fp_mode mode)
{
	int l = leader_now(10000), f = follower_of(l), l2;
	struct cluster_view before, during;

	cluster_view_get(&cl, f, 1000, &before);
	cr_log_info("partition: follower node %d isolated (%s), leader %d", f + 1, mode == FP_DROP ? "cut" : "silent",
	            l + 1);
	cluster_isolate(&cl, f, mode);
	expect_progress(300, "follower partitioned");
	itest_sleep_ms(CLUSTER_ELECTION_MS * 4);
	/* Pre-vote: an isolated node cannot win, so it does not raise its term. */
	cluster_view_get(&cl, f, 1000, &during);
	must(before.ok && during.ok && during.term == before.term,
	     "isolated follower node %d went from term %llu to %llu (role %s)", f + 1, (unsigned long long)before.term,
	     (unsigned long long)during.term, during.role);
	cluster_heal(&cl);
	itest_sleep_ms(CLUSTER_ELECTION_MS * 2);
	l2 = leader_now(10000);
	/* ... nor does it depose the leader when it comes back. */
	must(l2 == l, "leader changed from node %d to node %d when isolated follower node %d rejoined", l + 1, l2 + 1,
	     f + 1);
}

/* Slow links around the leader (below the election timeout): it keeps
 * leading and publishing goes on. */
static void fault_slow_leader(uint32_t delay_ms)
{
	int l = leader_now(10000);

	cr_log_info("links of leader node %d delayed %u ms", l + 1, delay_ms);
	cluster_delay(&cl, l, delay_ms);
	expect_progress(200, "slow leader links");
	itest_sleep_ms(1000);
}

static void fault_pause_follower(void)
{
	int l = leader_now(10000), f = follower_of(l);

	cr_log_info("SIGSTOP follower node %d", f + 1);
	must(cluster_pause(&cl, f) == 0, "SIGSTOP node %d", f + 1);
	expect_progress(300, "follower paused");
	itest_sleep_ms(CLUSTER_ELECTION_MS * 3);
	must(cluster_resume(&cl, f) == 0, "SIGCONT node %d", f + 1);
}

static void fault_restart_all(int sig)
{
	int l;

	cr_log_info("%s all three nodes", sig == SIGKILL ? "kill -9" : "SIGTERM");
	if (sig == SIGKILL)
		must(cluster_kill9_all(&cl) == 0, "children did not die with their masters");
	else
		must(cluster_stop_all(&cl) == 0, "SIGTERM of all nodes under load: not a clean exit 0 in time");
	itest_sleep_ms(300);
	must(cluster_start_all(&cl) == 0, "nodes did not restart");
	l = cluster_wait_leader(&cl, -1, 15000, NULL);
	must(l >= 0, "no leader after restarting all nodes");
	expect_progress(300, "restart of all nodes");
}

TestSuite(cluster, .fini = teardown, .timeout = 240);

Test(cluster, kill9_leader)
{
	cluster_up(2);
	for (int round = 0; round < 3; round++) {
		fault_kill_leader();
		itest_sleep_ms(500);
	}
	settle_and_check("kill -9 leader", 0);
}

Test(cluster, kill9_follower_restart)
{
	cluster_up(1);
	for (int round = 0; round < 2; round++) {
		fault_kill_follower();
		itest_sleep_ms(500);
	}
	settle_and_check("kill -9 follower", 0);
}

/* A follower down while the leader trims more raft log than it kept for it
 * (raftlog_bytes_max 1 MiB) comes back through a snapshot of the leader's
 * whole state, then streams the rest; the checker then finds three identical
 * logs holding every acknowledged message once. */
Test(cluster, snapshot_for_lagging_follower)
{
	static const char *const extra[] = {"--raftlog-bytes-max", "1m", NULL};
	cluster_up_with(1, extra);
	int l = leader_now(10000), f = follower_of(l);
	cr_log_info("kill -9 follower node %d, publish past the kept raft log, restart it", f + 1);
	must(cluster_kill9(&cl, f) == 0, "node %d's children did not die with its master", f + 1);
	expect_progress(30000, "follower down");
	must(cluster_start(&cl, f) == 0, "node %d did not restart", f + 1);
	settle_and_check("snapshot to a lagging follower", 0);
	FILE *lf = fopen(cl.node[f].log_path, "r");
	char line[1024];
	int installed = 0;
	cr_assert(lf, "no log for node %d", f + 1);
	while (fgets(line, sizeof(line), lf))
		installed |= strstr(line, "running on a snapshot") != NULL;
	fclose(lf);
	cr_assert(installed, "node %d caught up without a snapshot: the test did not trim far enough", f + 1);
}

/* A follower's forwards overflow the leader's queue (forward_queue_bytes_max
 * 1 MiB): `sluice bench` publishes 64 KiB messages through a follower while
 * the leader is stopped, a few times, for less than an election timeout, so
 * what piled up arrives at once. The leader refuses what does not fit and
 * tells the follower, whose frontends answer those requests UNAVAILABLE at
 * once and whose client retries: every message is acknowledged, none failed,
 * well within the 30 s a dropped forward's requests would otherwise wait. */
Test(cluster, forward_queue_full)
{
	static const char *const extra[] = {"--forward-queue-bytes-max", "1m", NULL};
	char cmd[512], out[8192] = "", line[1024];
	size_t used = 0;
	int l, f, refused = 0;

	cr_assert_eq(cluster_init(&cl, 1), 0, "cluster init");
	for (int i = 0; i < CLUSTER_N; i++)
		for (size_t e = 0; extra[e]; e++)
			cl.node[i].extra[e] = extra[e];
	must(cluster_start_all(&cl) == 0, "three nodes did not start");
	l = cluster_wait_leader(&cl, -1, 15000, NULL);
	must(l >= 0, "no leader elected within 15 s");
	f = (l + 1) % CLUSTER_N;
	snprintf(cmd, sizeof(cmd),
		 "%s -s %s --json bench pub --topic fwdq --size 65536 --count 1000 --producers 4 --window 32 "
		 "--linger-ms 0 2>&1",
		 SLUICE_BIN, cl.node[f].addr);
	long long t0 = itest_now_ms();
	FILE *p = popen(cmd, "r");
	cr_assert(p, "cannot run sluice bench");
	for (int round = 0; round < 4; round++) {
		itest_sleep_ms(300);
		must(cluster_pause(&cl, l) == 0, "SIGSTOP node %d", l + 1);
		itest_sleep_ms(CLUSTER_ELECTION_MS / 2);
		must(cluster_resume(&cl, l) == 0, "SIGCONT node %d", l + 1);
	}
	while (used + 1 < sizeof(out) && fgets(out + used, (int)(sizeof(out) - used), p))
		used = strlen(out);
	int status = pclose(p);
	long long took = itest_now_ms() - t0;
	cr_assert_eq(status, 0, "sluice bench failed: %s", out);
	json_error_t je;
	json_t *j = json_loads(strchr(out, '{') ? strchr(out, '{') : out, JSON_DISABLE_EOF_CHECK, &je);
	cr_assert(j, "bench output is not JSON: %s", out);
	cr_assert_eq(json_integer_value(json_object_get(j, "messages")), 1000, "%s", out);
	cr_assert_eq(json_integer_value(json_object_get(j, "failed")), 0, "%s", out);
	json_decref(j);
	for (int i = 0; i < CLUSTER_N; i++) {
		FILE *lf = fopen(cl.node[i].log_path, "r");
		cr_assert(lf, "no log for node %d", i + 1);
		while (fgets(line, sizeof(line), lf))
			refused |= strstr(line, "refused: the forward queue holds") != NULL;
		fclose(lf);
	}
	cr_assert(refused, "no forward was refused: the test did not fill the leader's queue");
	cr_assert_lt(took, 25000, "publishing took %lld ms: refused forwards waited for their timeout", took);
}

Test(cluster, kill9_logwriter_and_frontend)
{
	cluster_up(2);
	for (int round = 0; round < 2; round++) {
		fault_kill_child("sluice-logwriter", 1);
		itest_sleep_ms(500);
		fault_kill_child(round ? "sluice-fe-1" : "sluice-fe-0", 1);
		itest_sleep_ms(500);
		fault_kill_child("sluice-logwriter", 0);
		itest_sleep_ms(500);
		fault_kill_child(round ? "sluice-fe-0" : "sluice-fe-1", 0);
		itest_sleep_ms(500);
	}
	settle_and_check("kill -9 logwriter and frontend", 0);
}

Test(cluster, sigstop_leader)
{
	cluster_up(1);
	for (int round = 0; round < 2; round++) {
		fault_pause_leader();
		expect_progress(200, "resumed old leader");
		itest_sleep_ms(500);
	}
	settle_and_check("SIGSTOP leader", 0);
}

Test(cluster, partition_leader)
{
	cluster_up(1);
	fault_isolate_leader(FP_DROP);
	cluster_heal(&cl);
	expect_progress(200, "healed");
	fault_isolate_leader(FP_BLACKHOLE);
	settle_and_check("partition isolating the leader", 0);
}

Test(cluster, partition_follower)
{
	cluster_up(1);
	fault_isolate_follower(FP_BLACKHOLE);
	expect_progress(200, "healed");
	fault_isolate_follower(FP_DROP);
	settle_and_check("partition isolating a follower", 0);
}

Test(cluster, restart_all)
{
	cluster_up(1);
	fault_restart_all(SIGTERM);
	settle_and_check("SIGTERM all nodes and restart", 1);
	fault_restart_all(SIGKILL);
	settle_and_check("kill -9 all nodes and restart", 0);
}

/* ---- soak ---- */

static void soak_round(unsigned r)
{
	switch (r % SOAK_FAULTS) {
	case 0:
		fault_kill_leader();
		break;
	case 1:
		fault_kill_follower();
		break;
	case 2:
		fault_kill_child("sluice-logwriter", r & 16);
		break;
	case 3:
		fault_kill_child(r & 32 ? "sluice-fe-1" : "sluice-fe-0", r & 16);
		break;
	case 4:
		fault_pause_leader();
		break;
	case 5:
		fault_pause_follower();
		break;
	case 6:
		fault_isolate_leader(r & 16 ? FP_DROP : FP_BLACKHOLE);
		break;
	case 7:
		fault_isolate_follower(r & 16 ? FP_DROP : FP_BLACKHOLE);
		break;
	case 8:
		fault_slow_leader(50 + (r >> 8) % 150);
		break;
	case 9:
		fault_restart_all(SIGKILL);
		break;
	default:
		fault_restart_all(SIGTERM);
		break;
	}
}

TestSuite(cluster_soak, .fini = teardown, .timeout = 0);

Test(cluster_soak, random_faults)
{
	const char *secs = getenv("SLUICE_SOAK_SECONDS"), *seed_s = getenv("SLUICE_SOAK_SEED");
	unsigned seed = seed_s ? (unsigned)strtoul(seed_s, NULL, 0) : (unsigned)time(NULL);
	long long deadline;
	int rounds = 0;

	if (!secs || atoi(secs) <= 0)
		cr_skip_test("set SLUICE_SOAK_SECONDS to run");
	deadline = itest_now_ms() + 1000ll * atoi(secs);
	srand(seed);
	cr_log_info("soak for %s s, SLUICE_SOAK_SEED=%u", secs, seed);
	cluster_up(2);
	while (itest_now_ms() < deadline) {
		unsigned r = (unsigned)rand();
		cr_log_info("soak round %d (fault %u, seed %u)", rounds, r % SOAK_FAULTS, seed);
		soak_round(r);
		itest_sleep_ms(rand() % 1500);
		rounds++;
		if (rounds % SOAK_ROUNDS_PER_TOPIC != 0) {
			settle_and_check("soak", 1);
			continue;
		}
		/* Bound what each check reads: carry on with a new topic. */
		settle_and_check("soak", 0);
		workload_free(&wl);
		snprintf(topic, sizeof(topic), "ft-%d", rounds);
		create_topic();
		workload_start(&wl, &cl);
		expect_progress(100, "new topic");
	}
	must(workload_stop(&wl, 60000) == 0, "soak: publishes unanswered after stopping");
	check_all("soak (final)");
	cr_log_info("soak: %d rounds passed", rounds);
}

/* ---- the checker itself, on made-up logs ---- */

static struct entry synth_entry(int k, uint64_t seq)
{
	char key[32], payload[PAYLOAD_MAX];

	make_key(k, seq, key, sizeof(key));
	make_payload(k, seq, payload, sizeof(payload));
	return entry_make(key, strlen(key), payload, strlen(payload), (int64_t)seq);
}

/* Two producers, four messages each over two partitions, on three nodes:
 * partition (seq / 2), offset 2 * (seq % 2) + k; acked in seq order. */
static void synth_build(struct plog logs[CLUSTER_N][PARTS])
{
	workload_free(&wl);
	wl.n = 2;
	for (int k = 0; k < 2; k++) {
		wl.p[k].idx = k;
		wl.p[k].seq = 4;
	}
	for (uint64_t seq = 0; seq < 4; seq++)
		for (int k = 0; k < 2; k++) {
			uint32_t part = (uint32_t)(seq / 2);
			uint64_t off = 2 * (seq % 2) + (uint64_t)k;
			struct ack_rec a = {seq, part, off, 1, off + 1, 0};
			rec_push(&wl.p[k], &a);
		}
	for (int i = 0; i < CLUSTER_N; i++)
		for (uint64_t off = 0; off < 4; off++)
			for (uint32_t part = 0; part < 2; part++) {
				struct entry e = synth_entry((int)(off % 2), part * 2 + off / 2);
				plog_push(&logs[i][part], &e);
			}
}

static int synth_check(struct plog logs[CLUSTER_N][PARTS])
{
	size_t n_acked;
	int bad = check_logs(logs, &n_acked);

	plogs_free(logs);
	return bad;
}

TestSuite(checker, .fini = teardown, .timeout = 30);

Test(checker, flags_loss_duplicates_order_and_divergence)
{
	static struct plog logs[CLUSTER_N][PARTS];
	struct entry e;

	failures_quiet = 1;
	synth_build(logs);
	cr_assert_eq(synth_check(logs), 0, "a clean history");

	synth_build(logs); /* acked p1-3 (1/3) lost everywhere */
	for (int i = 0; i < CLUSTER_N; i++)
		logs[i][1].n--;
	cr_assert_eq(synth_check(logs), 1, "a lost acked message");

	synth_build(logs); /* p0-1 stored a second time */
	e = synth_entry(0, 1);
	for (int i = 0; i < CLUSTER_N; i++)
		plog_push(&logs[i][0], &e);
	cr_assert_eq(synth_check(logs), 1, "a duplicate");

	synth_build(logs); /* acked 0 then 1, stored 1 then 0 */
	for (int i = 0; i < CLUSTER_N; i++) {
		e = logs[i][0].e[0];
		logs[i][0].e[0] = logs[i][0].e[2];
		logs[i][0].e[2] = e;
	}
	wl.p[0].acks[0].off = 2;
	wl.p[0].acks[0].log_index = 3;
	wl.p[0].acks[1].off = 0;
	wl.p[0].acks[1].log_index = 1;
	cr_assert_eq(synth_check(logs), 1, "log order against ack order");

	synth_build(logs); /* node 3 holds something else at 1/1 */
	logs[2][1].e[1] = synth_entry(0, 3);
	cr_assert_eq(synth_check(logs), 1, "diverged nodes");

	synth_build(logs); /* node 2 is one message short */
	logs[1][0].n--;
	cr_assert_eq(synth_check(logs), 1, "a node behind");

	synth_build(logs); /* a payload no producer sent */
	e = synth_entry(0, 9);
	for (int i = 0; i < CLUSTER_N; i++)
		plog_push(&logs[i][1], &e);
	cr_assert_eq(synth_check(logs), 1, "a foreign message");

	synth_build(logs); /* an ack whose raft position goes backwards */
	wl.p[1].acks[1].log_index = 1;
	cr_assert_eq(synth_check(logs), 1, "an ack position out of order");
	workload_free(&wl);
}

/* ---- the proxy itself ---- */

static int listen_any(uint16_t *port)
{
	struct sockaddr_in sa = {0};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(fd, 0);
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	cr_assert_eq(listen(fd, 16), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	*port = ntohs(sa.sin_port);
	return fd;
}

static int accept_within(int lfd, int ms)
{
	struct pollfd p = {lfd, POLLIN, 0};
	if (poll(&p, 1, ms) != 1)
		return -1;
	return accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
}

/* Send n bytes on a while receiving them on b; 0 if they all arrive intact. */
static int pump(int a, int b, size_t n, int ms)
{
	uint8_t *out = malloc(n), *in = malloc(n);
	size_t sent = 0, got = 0;
	long long deadline = itest_now_ms() + ms;
	int rc = -1;

	cr_assert(out && in);
	for (size_t i = 0; i < n; i++)
		out[i] = (uint8_t)(i * 131 + (i >> 8));
	while (got < n && itest_now_ms() < deadline) {
		struct pollfd p[2] = {{a, sent < n ? POLLOUT : 0, 0}, {b, POLLIN, 0}};
		if (poll(p, 2, 50) <= 0)
			continue;
		if (p[0].revents & POLLOUT) {
			ssize_t w =
			    send(a, out + sent, n - sent > 65536 ? 65536 : n - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
			if (w > 0)
				sent += (size_t)w;
		}
		if (p[1].revents) {
			ssize_t g = recv(b, in + got, n - got, MSG_DONTWAIT);
			if (g <= 0)
				break;
			got += (size_t)g;
		}
	}
	if (got == n && memcmp(in, out, n) == 0)
		rc = 0;
	free(out);
	free(in);
	return rc;
}

/* 1 if fd reports end of stream (EOF or reset) within ms. */
static int sees_close(int fd, int ms)
{
	long long deadline = itest_now_ms() + ms;
	char buf[4096];

	while (itest_now_ms() < deadline) {
		struct pollfd p = {fd, POLLIN, 0};
		if (poll(&p, 1, 50) == 1) {
			ssize_t g = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
			if (g <= 0)
				return 1;
		}
	}
	return 0;
}

/* 1 if nothing at all arrives on fd within ms. */
static int silent(int fd, int ms)
{
	struct pollfd p = {fd, POLLIN, 0};
	return poll(&p, 1, ms) == 0;
}

struct proxy_rig {
	struct faultproxy *fp;
	int lfd, link;
	uint16_t target, port;
};

static void rig_up(struct proxy_rig *r)
{
	r->lfd = listen_any(&r->target);
	cr_assert_eq(faultproxy_new(&r->fp), 0);
	r->link = faultproxy_add_link(r->fp, r->target, &r->port);
	cr_assert_geq(r->link, 0);
}

/* A client connection through the proxy and the target's end of it. */
static void rig_connect(struct proxy_rig *r, int *cli, int *srv)
{
	*cli = itest_connect(r->port);
	cr_assert_geq(*cli, 0);
	*srv = accept_within(r->lfd, 2000);
	cr_assert_geq(*srv, 0, "the proxy did not connect to the target");
}

static void rig_down(struct proxy_rig *r)
{
	faultproxy_free(r->fp);
	close(r->lfd);
}

TestSuite(faultproxy, .timeout = 60);

Test(faultproxy, passes_bytes_both_ways)
{
	struct proxy_rig r;
	struct fp_link_stats st;
	int cli, srv;

	rig_up(&r);
	rig_connect(&r, &cli, &srv);
	cr_assert_eq(pump(cli, srv, 4u << 20, 10000), 0, "4 MiB towards the target");
	cr_assert_eq(pump(srv, cli, 4u << 20, 10000), 0, "4 MiB back");
	faultproxy_stats(r.fp, r.link, &st);
	cr_assert_eq(st.bytes_fwd, 4u << 20);
	cr_assert_eq(st.bytes_back, 4u << 20);
	cr_assert_eq(st.accepted, 1);
	cr_assert_eq(st.open, 1);
	/* A close on one side reaches the other. */
	close(cli);
	cr_assert(sees_close(srv, 2000));
	close(srv);
	rig_down(&r);
}

Test(faultproxy, delay_holds_bytes_back)
{
	struct proxy_rig r;
	long long t0;
	int cli, srv;

	rig_up(&r);
	rig_connect(&r, &cli, &srv);
	faultproxy_set(r.fp, r.link, FP_DELAY, 300);
	t0 = itest_now_ms();
	cr_assert_eq(pump(cli, srv, 1000, 5000), 0);
	cr_assert_geq(itest_now_ms() - t0, 290, "delayed bytes arrived after %lld ms", itest_now_ms() - t0);
	faultproxy_set(r.fp, r.link, FP_PASS, 0);
	t0 = itest_now_ms();
	cr_assert_eq(pump(srv, cli, 1000, 5000), 0);
	cr_assert_lt(itest_now_ms() - t0, 200);
	close(cli);
	close(srv);
	rig_down(&r);
}

Test(faultproxy, drop_cuts_and_refuses_then_heals)
{
	struct proxy_rig r;
	struct fp_link_stats st;
	int cli, srv, c2;

	rig_up(&r);
	rig_connect(&r, &cli, &srv);
	cr_assert_eq(pump(cli, srv, 10000, 5000), 0);
	faultproxy_set(r.fp, r.link, FP_DROP, 0);
	cr_assert(sees_close(cli, 2000), "the connecting side still connected after the cut");
	cr_assert(sees_close(srv, 2000), "the target side still connected after the cut");
	close(cli);
	close(srv);
	/* New connections are closed at once and never reach the target. */
	c2 = itest_connect(r.port);
	cr_assert_geq(c2, 0);
	cr_assert(sees_close(c2, 2000));
	cr_assert_lt(accept_within(r.lfd, 300), 0, "a connection reached the target through a cut link");
	close(c2);
	faultproxy_stats(r.fp, r.link, &st);
	cr_assert_eq(st.refused, 1);
	cr_assert_eq(st.open, 0);
	faultproxy_heal(r.fp);
	rig_connect(&r, &cli, &srv);
	cr_assert_eq(pump(cli, srv, 100000, 5000), 0, "bytes after healing");
	cr_assert_eq(pump(srv, cli, 100000, 5000), 0);
	close(cli);
	close(srv);
	rig_down(&r);
}

Test(faultproxy, blackhole_is_silent_then_heals)
{
	struct proxy_rig r;
	int cli, srv, c2;

	rig_up(&r);
	rig_connect(&r, &cli, &srv);
	faultproxy_set(r.fp, r.link, FP_BLACKHOLE, 0);
	cr_assert_eq(itest_send_raw(cli, "hello", 5), 0);
	cr_assert_eq(itest_send_raw(srv, "olleh", 5), 0);
	cr_assert(silent(srv, 300), "bytes crossed a silent link");
	cr_assert(silent(cli, 10), "bytes crossed a silent link backwards");
	/* New connections are accepted but go nowhere. */
	c2 = itest_connect(r.port);
	cr_assert_geq(c2, 0);
	cr_assert_lt(accept_within(r.lfd, 300), 0);
	/* Healing closes the connections whose streams have holes. */
	faultproxy_heal(r.fp);
	cr_assert(sees_close(cli, 2000));
	cr_assert(sees_close(srv, 2000));
	cr_assert(sees_close(c2, 2000));
	close(cli);
	close(srv);
	close(c2);
	rig_connect(&r, &cli, &srv);
	cr_assert_eq(pump(cli, srv, 100000, 5000), 0);
	close(cli);
	close(srv);
	rig_down(&r);
}
