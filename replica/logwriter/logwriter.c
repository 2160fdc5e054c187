/*
 * logwriter.c: the only LMDB writer of a node: its set-up, and the request
 * code that turns ring records into log state (lw_record_apply).
 *
 * Every node runs its logwriter as a raft group (lw_cluster.c): one voter
 * when [cluster] peers is empty, three or five otherwise, so there is one
 * write path and one crash-recovery scheme. The leader resolves publishes
 * with the code here when it appends them to the raft log (partition,
 * offsets, dedup, the answer); topic and group requests are applied here
 * when their entry commits.
 *
 * Partitioning: a publish with a key goes to murmur2(key) mod partitions (as
 * Kafka's default partitioner); without key or partition it goes to the
 * topic's sticky partition, which moves on with every raft entry, so a turn
 * of keyless publishes becomes one record batch.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "auth_principal.h"
#include "config.h"
#include "err.h"
#include "log.h"
#include "logwriter.h"
#include "lw_int.h"
#include "ring.h"
#include "pubbatch.h"
#include "ringmsg.h"
#include "shm.h"
#include "sl_assert.h"
#include "store.h"
#include "vec.h"

volatile sig_atomic_t lw_stop;
volatile sig_atomic_t lw_hup;

static void lw_sigterm(int sig)
{
	(void)sig;
	lw_stop = 1;
}

static void lw_sighup(int sig)
{
	(void)sig;
	lw_hup = 1;
}

/* ---- small helpers ---- */

static uint32_t fnv1a(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 16777619u;
	return h;
}

/* Kafka's murmur2, so keys land where Kafka clients would put them. */
static uint32_t murmur2(const uint8_t *data, size_t len)
{
	const uint32_t m = 0x5bd1e995;
	uint32_t h = 0x9747b28c ^ (uint32_t)len;
	size_t i = 0;
	for (; i + 4 <= len; i += 4) {
		uint32_t k = (uint32_t)data[i] | (uint32_t)data[i + 1] << 8 | (uint32_t)data[i + 2] << 16 |
			     (uint32_t)data[i + 3] << 24;
		k *= m;
		k ^= k >> 24;
		k *= m;
		h *= m;
		h ^= k;
	}
	switch (len - i) {
	case 3:
		h ^= (uint32_t)data[i + 2] << 16;
		/* fall through */
	case 2:
		h ^= (uint32_t)data[i + 1] << 8;
		/* fall through */
	case 1:
		h ^= data[i];
		h *= m;
	}
	h ^= h >> 13;
	h *= m;
	h ^= h >> 15;
	return h;
}

/* ---- topic cache ---- */

/* Buckets of the topic table: a power of two over twice the most topics
 * there can be (each topic holds at least one of partitions_max slots), so
 * the table is never more than half full and every probe ends. */
uint32_t lw_topic_buckets(const struct config *cfg)
{
	uint32_t n = 64;
	while (n < 2 * (uint64_t)cfg->partitions_max)
		n *= 2;
	return n;
}

static struct lw_topic *topic_find(struct lw *w, const char *name, size_t len)
{
	uint32_t mask = w->topic_buckets - 1;
	uint32_t i = fnv1a(name, len) & mask;
	for (uint32_t n = 0; n < w->topic_buckets; n++, i = (i + 1) & mask) {
		struct lw_topic *t = &w->topics[i];
		if (!t->live)
			return NULL;
		if (strlen(t->meta.name) == len && memcmp(t->meta.name, name, len) == 0)
			return t;
	}
	return NULL;
}

static uint32_t id_hash(uint32_t id)
{
	return id * 2654435761u;
}

const struct lw_topic *lw_topic_by_id(const struct lw *w, uint32_t topic_id)
{
	uint32_t mask = w->topic_buckets - 1;
	uint32_t i = id_hash(topic_id) & mask;
	for (uint32_t n = 0; n < w->topic_buckets && w->topic_ids[i]; n++, i = (i + 1) & mask) {
		const struct lw_topic *t = &w->topics[w->topic_ids[i] - 1];
		SL_ASSERT(t->live);
		if (t->meta.topic_id == topic_id)
			return t;
	}
	return NULL;
}

static void topic_insert(struct lw *w, const struct store_topic *m)
{
	uint32_t mask = w->topic_buckets - 1;
	uint32_t i = fnv1a(m->name, strlen(m->name)) & mask, n = 0;
	SL_ASSERT(w->ntopics < w->topic_buckets / 2);
	while (w->topics[i].live) {
		SL_ASSERT(++n < w->topic_buckets);
		i = (i + 1) & mask;
	}
	w->ntopics++;
	w->topics[i].meta = *m;
	w->topics[i].live = 1;
	uint32_t j = id_hash(m->topic_id) & mask;
	for (n = 0; w->topic_ids[j]; j = (j + 1) & mask)
		SL_ASSERT(++n < w->topic_buckets);
	w->topic_ids[j] = i + 1;
}

static int topic_load_cb(void *arg, const struct store_topic *tp)
{
	struct lw *w = arg;
	if ((uint64_t)tp->slot_base + tp->partitions > w->cfg->partitions_max) {
		log_error("topic %s uses commit-table slots up to %u but partitions_max is %u: raise partitions_max",
			  tp->name, tp->slot_base + tp->partitions, w->cfg->partitions_max);
		return SL_ECONFIG;
	}
	topic_insert(w, tp);
	for (uint32_t p = 0; p < tp->partitions; p++) {
		struct lw_part *lp = &w->parts[tp->slot_base + p];
		struct store_partition sp = {0};
		int rc = store_partition_get(w->txn, tp->topic_id, p, &sp);
		if (rc != SL_OK && rc != SL_ENOTFOUND && rc != SL_ENOTOPIC)
			return rc;
		lp->topic_id = tp->topic_id;
		lp->partition = p;
		lp->end = sp.end_offset;
		lp->cend = sp.end_offset;
		/* timestamps never go back, even across a restart with the clock set back */
		if (sp.max_ts > w->last_ts)
			w->last_ts = sp.max_ts;
	}
	return 0;
}

/* Rebuild the topic cache and partition ends from w->txn (at start, after a
 * delete and after a failed batch). Touches no shared memory. */
int lw_topics_reload(struct lw *w)
{
	memset(w->topics, 0, sizeof(*w->topics) * w->topic_buckets);
	memset(w->topic_ids, 0, sizeof(*w->topic_ids) * w->topic_buckets);
	w->ntopics = 0;
	for (uint32_t s = 0; s < w->cfg->partitions_max; s++) {
		w->parts[s].topic_id = 0;
		w->parts[s].end = 0;
		w->parts[s].cend = 0;
		w->parts[s].pend_n = 0;
	}
	w->pend_slots_n = 0;
	return store_topic_foreach(w->txn, topic_load_cb, w);
}

/* Publish one slot of the commit table from the committed partition state. */
void lw_slot_publish(struct lw *w, uint32_t s)
{
	struct lw_part *lp = &w->parts[s];
	struct shm_slot *sl = &w->shm->slots[s];
	struct shm_slot_stats *st = &w->shm->slot_stats[s];
	if (sl->topic_id != lp->topic_id) {
		/* the slot's traffic counters start again with its new topic */
		shm_stat_store(&st->published_msgs, 0);
		shm_stat_store(&st->published_bytes, 0);
		shm_stat_store(&st->delivered_msgs, 0);
		shm_stat_store(&st->delivered_bytes, 0);
		shm_store(&sl->topic_id, 0);
		shm_store(&sl->first_offset, 0);
		shm_store(&sl->partition, lp->partition);
		shm_store(&sl->end_offset, lp->cend);
		shm_store(&sl->topic_id, lp->topic_id);
	}
	SL_ASSERT(lp->cend <= lp->end);
	shm_store(&sl->end_offset, lp->cend);
	if (lp->stat_msgs) {
		shm_stat_add(&st->published_msgs, lp->stat_msgs);
		shm_stat_add(&st->published_bytes, lp->stat_bytes);
		lp->stat_msgs = 0;
		lp->stat_bytes = 0;
	}
}

/* Refresh first offsets (moved by retention) from a read txn. */
void lw_slots_refresh_first(struct lw *w)
{
	struct store_txn *t;
	if (store_txn_begin(w->store, 0, &t) != SL_OK)
		return;
	for (uint32_t s = 0; s < w->cfg->partitions_max; s++) {
		struct lw_part *lp = &w->parts[s];
		struct store_partition sp;
		if (lp->topic_id && store_partition_get(t, lp->topic_id, lp->partition, &sp) == SL_OK)
			shm_store(&w->shm->slots[s].first_offset, sp.first_offset);
	}
	store_txn_abort(t);
}

int lw_txn_commit_timed(struct lw *w, int deferred)
{
	unsigned long long t0 = time_mono_ns();
	int rc = deferred ? store_txn_commit_deferred(w->txn) : store_txn_commit(w->txn);
	if (rc == SL_OK)
		metrics_hist_observe(&w->shm->hdr->lw_metrics.commit, time_mono_ns() - t0);
	if (rc == SL_OK && w->auth_changed) {
		/* frontends reload what they cached of principals once it is visible */
		w->auth_changed = 0;
		shm_add(&w->shm->hdr->auth_gen, 1);
	}
	return rc;
}

void lw_wake_frontends(struct lw *w)
{
	shm_add(&w->shm->hdr->commit_seq, 1);
	for (uint32_t i = 0; i < w->nfe; i++) {
		uint64_t one = 1;
		if (write(w->fe_efds[i], &one, sizeof(one)) < 0 && errno != EAGAIN)
			log_warn("wake frontend %u: %s", i, strerror(errno));
	}
}

/* ---- acks ---- */

/* The answer to one request, appended to out for the caller to route:
 * msgs messages from offset (a PublishBatch; else 1). ts, term, log_index
 * 0: the entry being applied (a duplicate carries the original message's). */
int lw_answer_add(struct lw *w, const struct lw_req *rq, struct lw_answers *out, uint32_t err, uint32_t partition,
		  uint64_t offset, uint32_t msgs, uint32_t flags, int64_t ts, uint64_t term, uint64_t log_index)
{
	if (vec_reserve(&out->v, &out->cap, out->n + 1))
		return SL_ENOMEM;
	struct lw_answer *a = &out->v[out->n++];
	memset(a, 0, sizeof(*a));
	a->origin_node = rq->origin_node;
	a->fe = rq->fe;
	a->a.cookie = rq->cookie;
	a->a.err = err;
	a->a.partition = partition;
	a->a.offset = offset;
	a->a.count = msgs ? msgs : 1;
	a->a.flags = flags;
	a->a.timestamp_ms = ts;
	a->a.term = term ? term : w->cur_term;
	a->a.log_index = log_index ? log_index : w->cur_index;
	return SL_OK;
}

static int ack_note_ts(struct lw *w, const struct lw_req *rq, struct lw_answers *out, uint32_t err,
		       uint32_t partition, uint64_t offset, uint32_t flags, int64_t ts, uint64_t term, uint64_t log_index)
{
	return lw_answer_add(w, rq, out, err, partition, offset, 1, flags, ts, term, log_index);
}

static int ack_note(struct lw *w, const struct lw_req *rq, struct lw_answers *out, uint32_t err, uint32_t partition,
		    uint64_t offset, uint32_t flags)
{
	return ack_note_ts(w, rq, out, err, partition, offset, flags, 0, 0, 0);
}

static struct lw_fe *fe_at(struct lw *w, uint32_t i)
{
	return &w->fe[i];
}

void lw_ack_push(struct lw *w, uint32_t fe, const struct rm_ack *a)
{
	struct lw_fe *f = fe_at(w, fe);
	int wake = 0;
	if (f->backlog_n == 0 && ring_push(f->ack, RM_ACK, a, sizeof(*a), &wake) == SL_OK)
		return;
	if (vec_grow((void **)&f->backlog, &f->backlog_cap, f->backlog_n + 1, sizeof(*a)) != SL_OK) {
		log_error("out of memory queueing an ack; the frontend will time the request out");
		return;
	}
	f->backlog[f->backlog_n++] = *a;
}

/* Push queued acks; returns 1 when the backlog is empty. */
int lw_ack_flush_backlog(struct lw *w, uint32_t fe)
{
	struct lw_fe *f = fe_at(w, fe);
	size_t i = 0;
	int wake = 0;
	while (i < f->backlog_n && ring_push(f->ack, RM_ACK, &f->backlog[i], sizeof(f->backlog[i]), &wake) == SL_OK)
		i++;
	memmove(f->backlog, f->backlog + i, (f->backlog_n - i) * sizeof(*f->backlog));
	f->backlog_n -= i;
	return f->backlog_n == 0;
}

/* ---- request processing ---- */

void lw_touch(struct lw *w, struct lw_part *lp)
{
	w->ends_seq++;
	if (lp->touched)
		return;
	if (vec_reserve(&w->touched_slots, &w->touched_cap, w->touched_n + 1)) {
		w->slots_dirty = 1; /* publish every slot instead */
		return;
	}
	lp->touched = 1;
	w->touched_slots[w->touched_n++] = (uint32_t)(lp - w->parts);
}

static int part_push(struct lw *w, struct lw_part *lp, const struct store_record *r)
{
	int rc = vec_grow((void **)&lp->pend, &lp->pend_cap, lp->pend_n + 1, sizeof(*lp->pend));
	if (rc == SL_OK && !lp->pend_n)
		rc = vec_reserve(&w->pend_slots, &w->pend_slots_cap, w->pend_slots_n + 1);
	if (rc)
		return rc;
	if (!lp->pend_n)
		w->pend_slots[w->pend_slots_n++] = (uint32_t)(lp - w->parts);
	lp->pend[lp->pend_n++] = *r;
	lw_touch(w, lp);
	w->batch_records++;
	return SL_OK;
}

/* Write every partition's pending records as one batch each; ends move on. */
int lw_parts_flush(struct lw *w)
{
	for (size_t k = 0; k < w->pend_slots_n; k++) {
		struct lw_part *lp = &w->parts[w->pend_slots[k]];
		if (!lp->pend_n)
			continue; /* a reload dropped it */
		uint64_t base;
		int rc = store_batch_append(w->txn, lp->topic_id, lp->partition, lp->pend, lp->pend_n, w->batch_ts, w->cur_term,
					    &base);
		if (rc)
			return rc;
		SL_ASSERT(base == lp->end); /* the store and the cache agree on every partition end */
		if (w->writes.on) {
			uint64_t data = 0;
			for (size_t i = 0; i < lp->pend_n; i++)
				data += lp->pend[i].key.len + lp->pend[i].headers.len + lp->pend[i].payload.len;
			if (vec_reserve(&w->writes.b, &w->writes.capb, w->writes.nb + 1))
				return SL_ENOMEM;
			w->writes.b[w->writes.nb++] =
			    (struct lw_wbatch){lp->topic_id, lp->partition, base, (uint32_t)lp->pend_n, data};
		}
		lp->end += lp->pend_n;
		lp->pend_n = 0;
	}
	w->pend_slots_n = 0;
	return SL_OK;
}

/* store_dedup_put, noted in w->writes when asked. */
static int dedup_put(struct lw *w, uint64_t producer_id, uint32_t topic_id, uint32_t space, uint64_t base_seq,
		     const struct store_dedup *d)
{
	int rc = store_dedup_put(w->txn, producer_id, topic_id, space, base_seq, d);
	if (rc || !w->writes.on)
		return rc;
	if (vec_reserve(&w->writes.d, &w->writes.capd, w->writes.nd + 1))
		return SL_ENOMEM;
	w->writes.d[w->writes.nd++] = (struct lw_wdedup){producer_id, topic_id, space, base_seq, *d};
	return SL_OK;
}

/* The partition keyless publishes of this group commit (or raft entry) go to. */
static uint32_t sticky_partition(const struct lw *w, const struct lw_topic *t)
{
	return (uint32_t)((t->meta.topic_id + w->batch_no) % t->meta.partitions);
}

static uint32_t pick_partition(struct lw *w, struct lw_topic *t, const struct rm_publish *m, struct slice key)
{
	if (m->partition != RM_PARTITION_ANY)
		return m->partition;
	if (key.len)
		return (murmur2(key.base, key.len) & 0x7fffffff) % t->meta.partitions;
	return sticky_partition(w, t);
}

static int do_publish(struct lw *w, const struct lw_req *rq, struct lw_answers *out)
{
	const uint8_t *p = rq->p;
	uint32_t len = rq->len;
	struct rm_publish m;
	if (len < sizeof(m))
		return ack_note(w, rq, out, SL_EMALFORMED, 0, 0, 0);
	memcpy(&m, p, sizeof(m));
	uint64_t need = (uint64_t)sizeof(m) + m.topic_len + m.key_len + m.headers_len + m.payload_len;
	if (need != len)
		return ack_note(w, rq, out, SL_EMALFORMED, 0, 0, 0);
	const uint8_t *q = p + sizeof(m);
	struct lw_topic *t = topic_find(w, (const char *)q, m.topic_len);
	if (!t)
		return ack_note(w, rq, out, SL_ENOTOPIC, 0, 0, 0);
	struct store_record r = {0};
	r.key = slice_make(q + m.topic_len, m.key_len);
	r.headers = slice_make(q + m.topic_len + m.key_len, m.headers_len);
	r.payload = slice_make(q + m.topic_len + m.key_len + m.headers_len, m.payload_len);
	r.producer_id = m.producer_id;
	r.sequence = m.sequence;
	uint32_t part = pick_partition(w, t, &m, r.key);
	if (part >= t->meta.partitions)
		return ack_note(w, rq, out, SL_EINVAL, 0, 0, 0);
	struct lw_part *lp = &w->parts[t->meta.slot_base + part];
	uint64_t off = lp->end + lp->pend_n;
	if (m.producer_id) {
		uint32_t space = m.partition != RM_PARTITION_ANY ? m.partition : STORE_DEDUP_SPACE_ANY;
		struct store_dedup d;
		uint64_t doff;
		int rc = store_dedup_get(w->txn, m.producer_id, t->meta.topic_id, space, m.sequence, &d, &doff);
		if (rc == SL_OK)
			return ack_note_ts(w, rq, out, 0, d.partition, doff, RM_ACK_DUPLICATE, d.ts_ms, d.term, d.log_index);
		if (rc != SL_ENOTFOUND)
			return rc;
		struct store_dedup nd = {part, 1, off, w->batch_ts, w->cur_term, w->cur_index};
		rc = dedup_put(w, m.producer_id, t->meta.topic_id, space, m.sequence, &nd);
		if (rc)
			return rc;
	}
	int rc = part_push(w, lp, &r);
	if (rc)
		return rc;
	return ack_note(w, rq, out, 0, part, off, 0);
}

/*
 * Dedup of a PublishBatch: the batch is one unit. A retry (the same base
 * sequence and count) is a duplicate of the stored batch; a range that
 * overlaps stored sequences in any other way is refused (a client bug: its
 * retries must resend a batch byte for byte). 1 if answered here.
 */
static int batch_dedup(struct lw *w, const struct lw_req *rq, struct lw_answers *out, const struct rm_publish_batch *m, uint32_t topic_id, uint32_t space,
		       int *rc_out)
{
	struct store_dedup d;
	uint64_t doff, last = m->base_sequence + m->count - 1;
	int rc = store_dedup_get(w->txn, m->producer_id, topic_id, space, m->base_sequence, &d, &doff);
	*rc_out = SL_OK;
	if (rc == SL_OK) {
		if (doff == d.base_offset && d.count == m->count)
			*rc_out = lw_answer_add(w, rq, out, 0, d.partition, d.base_offset, d.count, RM_ACK_DUPLICATE, d.ts_ms,
						d.term, d.log_index);
		else
			*rc_out = ack_note(w, rq, out, SL_EINVAL, 0, 0, 0);
		return 1;
	}
	if (rc == SL_ENOTFOUND)
		rc = store_dedup_get(w->txn, m->producer_id, topic_id, space, last, &d, &doff);
	if (rc == SL_OK) {
		*rc_out = ack_note(w, rq, out, SL_EINVAL, 0, 0, 0);
		return 1;
	}
	if (rc != SL_ENOTFOUND) {
		*rc_out = rc;
		return 1;
	}
	return 0;
}

/* RM_PUBLISH_BATCH: every message to one partition, one dedup entry for
 * the whole range, one answer. */
static int do_publish_batch(struct lw *w, const struct lw_req *rq, struct lw_answers *out)
{
	const uint8_t *p = rq->p;
	uint32_t len = rq->len;
	struct rm_publish_batch m;
	int rc;
	if (len < sizeof(m))
		return ack_note(w, rq, out, SL_EMALFORMED, 0, 0, 0);
	memcpy(&m, p, sizeof(m));
	if ((uint64_t)sizeof(m) + m.topic_len + m.records_len != len || m.count == 0 ||
	    (m.producer_id && m.base_sequence > UINT64_MAX - m.count))
		return ack_note(w, rq, out, SL_EMALFORMED, 0, 0, 0);
	const uint8_t *q = p + sizeof(m);
	struct lw_topic *t = topic_find(w, (const char *)q, m.topic_len);
	if (!t)
		return ack_note(w, rq, out, SL_ENOTOPIC, 0, 0, 0);
	uint32_t part = m.partition != RM_PARTITION_ANY ? m.partition : sticky_partition(w, t);
	if (part >= t->meta.partitions)
		return ack_note(w, rq, out, SL_EINVAL, 0, 0, 0);
	uint32_t space = m.partition != RM_PARTITION_ANY ? m.partition : STORE_DEDUP_SPACE_ANY;
	if (m.producer_id && batch_dedup(w, rq, out, &m, t->meta.topic_id, space, &rc))
		return rc;
	struct lw_part *lp = &w->parts[t->meta.slot_base + part];
	uint64_t off = lp->end + lp->pend_n;
	struct slice recs = slice_make(q + m.topic_len, m.records_len);
	struct store_record r = {0};
	size_t pos = 0;
	uint32_t n = 0;
	const char *why = NULL;
	/* the frontend checked the batch, but in a cluster these bytes come from
	 * a peer's entry (or the raft log on disk): check again, before any of
	 * it is stored, and answer every node the same way */
	if (pubbatch_check(recs, m.count, &why) != SL_OK)
		return ack_note(w, rq, out, SL_EMALFORMED, 0, 0, 0);
	while (n < m.count && pubbatch_next(recs, &pos, &r.key, &r.headers, &r.payload) == 1) {
		r.producer_id = m.producer_id;
		r.sequence = m.base_sequence + n;
		if ((rc = part_push(w, lp, &r)) != SL_OK)
			return rc;
		n++;
	}
	SL_ASSERT(n == m.count && pos == recs.len);
	if (m.producer_id) {
		struct store_dedup nd = {part, m.count, off, w->batch_ts, w->cur_term, w->cur_index};
		if ((rc = dedup_put(w, m.producer_id, t->meta.topic_id, space, m.base_sequence, &nd)) != SL_OK)
			return rc;
	}
	return lw_answer_add(w, rq, out, 0, part, off, m.count, 0, 0, 0, 0);
}

/* A request-level error (a wire code) is the client's answer; others fail the batch. */
static int answer(struct lw *w, const struct lw_req *rq, struct lw_answers *out, int rc, uint32_t partition, uint64_t offset)
{
	if (rc != SL_OK && !sl_err_is_wire(rc))
		return rc;
	return ack_note(w, rq, out, (uint32_t)rc, partition, offset, 0);
}

/* Live topics `by` created: what [limits] topics_per_principal_max bounds.
 * The table holds at most partitions_max topics, and creates are rare. */
static uint32_t topics_created_by(const struct lw *w, const char *by)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < w->topic_buckets; i++)
		if (w->topics[i].live && strcmp(w->topics[i].meta.creator, by) == 0)
			n++;
	return n;
}

/* SL_ETOOMANY if by may not create another topic. Every node checks it at
 * the same point of the log, on the same table (the config must agree). */
static int topic_limit(const struct lw *w, const char *by)
{
	uint32_t max = w->cfg->topics_per_principal_max;
	if (!max || !auth_principal_limited(by))
		return SL_OK;
	return topics_created_by(w, by) >= max ? SL_ETOOMANY : SL_OK;
}

static int audit_topic(struct lw *w, const char *by, const char *action, const struct store_topic *t)
{
	json_t *d = strcmp(action, "topic.create") == 0
			? json_pack("{s:s,s:I,s:I,s:I}", "name", t->name, "partitions", (json_int_t)t->partitions,
				    "retention_ms", (json_int_t)t->retention_ms, "retention_bytes",
				    (json_int_t)t->retention_bytes)
			: json_pack("{s:s}", "name", t->name);
	return lw_audit(w, by, action, d);
}

static int do_create(struct lw *w, const struct lw_req *rq, struct lw_answers *out)
{
	const uint8_t *p = rq->p;
	uint32_t len = rq->len;
	struct rm_create_topic m;
	char by[RM_BY_MAX + 1];
	if (len < sizeof(m))
		return ack_note(w, rq, out, SL_EMALFORMED, 0, 0, 0);
	memcpy(&m, p, sizeof(m));
	if (sizeof(m) + m.name_len + (size_t)m.by_len != len || m.name_len > RM_TOPIC_NAME_MAX ||
	    lw_by_get(rq, m.by_len, by) != SL_OK)
		return ack_note(w, rq, out, SL_EINVAL, 0, 0, 0);
	if (m.retention_ms < 0 || m.retention_bytes < 0)
		return ack_note(w, rq, out, SL_EINVAL, 0, 0, 0);
	struct store_topic in = {0}, made;
	memcpy(in.name, p + sizeof(m), m.name_len);
	in.partitions = m.partitions ? m.partitions : 1;
	in.retention_ms = m.retention_ms;
	in.retention_bytes = m.retention_bytes;
	in.created_ms = w->batch_ts;
	memcpy(in.creator, by, strlen(by));
	int rc = topic_find(w, in.name, m.name_len) ? SL_ETOPIC_EXISTS : topic_limit(w, by);
	if (rc == SL_OK)
		rc = store_topic_create(w->txn, &in, &made);
	if (rc == SL_OK)
		rc = audit_topic(w, by, "topic.create", &made);
	if (rc == SL_OK) {
		topic_insert(w, &made);
		for (uint32_t i = 0; i < made.partitions; i++) {
			struct lw_part *lp = &w->parts[made.slot_base + i];
			lp->topic_id = made.topic_id;
			lp->partition = i;
			lp->end = 0;
			lp->cend = 0;
			lw_touch(w, lp);
		}
	}
	return answer(w, rq, out, rc, 0, 0);
}

static int do_delete(struct lw *w, const struct lw_req *rq, struct lw_answers *out)
{
	const uint8_t *p = rq->p;
	uint32_t len = rq->len;
	struct rm_delete_topic m;
	char by[RM_BY_MAX + 1];
	if (len < sizeof(m))
		return ack_note(w, rq, out, SL_EMALFORMED, 0, 0, 0);
	memcpy(&m, p, sizeof(m));
	if (sizeof(m) + m.name_len + (size_t)m.by_len != len || m.name_len > RM_TOPIC_NAME_MAX ||
	    lw_by_get(rq, m.by_len, by) != SL_OK)
		return ack_note(w, rq, out, SL_EINVAL, 0, 0, 0);
	char name[RM_TOPIC_NAME_MAX + 1];
	memcpy(name, p + sizeof(m), m.name_len);
	name[m.name_len] = 0;
	const struct lw_topic *t = topic_find(w, name, m.name_len);
	if (!t)
		return ack_note(w, rq, out, SL_ENOTOPIC, 0, 0, 0);
	struct store_topic gone = t->meta; /* the reload below moves the table */
	int rc = store_topic_delete(w->txn, name);
	if (rc == SL_OK) {
		rc = lw_topics_reload(w);
		w->slots_dirty = 1;
	}
	if (rc == SL_OK)
		rc = audit_topic(w, by, "topic.delete", &gone);
	return answer(w, rq, out, rc, 0, 0);
}

static int do_commit_offset(struct lw *w, const struct lw_req *rq, struct lw_answers *out)
{
	const uint8_t *p = rq->p;
	uint32_t len = rq->len;
	struct rm_commit_offset m;
	if (len < sizeof(m))
		return ack_note(w, rq, out, SL_EMALFORMED, 0, 0, 0);
	memcpy(&m, p, sizeof(m));
	if (sizeof(m) + m.topic_len + m.group_len != len || m.group_len == 0 || m.group_len > RM_GROUP_NAME_MAX)
		return ack_note(w, rq, out, SL_EINVAL, 0, 0, 0);
	struct lw_topic *t = topic_find(w, (const char *)p + sizeof(m), m.topic_len);
	if (!t)
		return ack_note(w, rq, out, SL_ENOTOPIC, 0, 0, 0);
	if (m.partition >= t->meta.partitions)
		return ack_note(w, rq, out, SL_EINVAL, 0, 0, 0);
	char group[RM_GROUP_NAME_MAX + 1];
	memcpy(group, p + sizeof(m) + m.topic_len, m.group_len);
	group[m.group_len] = 0;
	int rc = store_group_commit(w->txn, group, t->meta.topic_id, m.partition, m.offset);
	return answer(w, rq, out, rc, m.partition, m.offset);
}

const struct lw_topic *lw_topic_by_name(const struct lw *w, const char *name, size_t len)
{
	return topic_find((struct lw *)w, name, len);
}

const struct lw_topic *lw_topic_ensure(struct lw *w, const char *name, uint32_t partitions, int *made)
{
	size_t nl = strlen(name);
	const struct lw_topic *t = topic_find(w, name, nl);
	*made = 0;
	if (t || nl == 0 || nl > RM_TOPIC_NAME_MAX)
		return t;
	uint8_t rec[sizeof(struct rm_create_topic) + RM_TOPIC_NAME_MAX];
	struct rm_create_topic m = {0};
	m.partitions = partitions;
	m.name_len = (uint16_t)nl;
	memcpy(rec, &m, sizeof(m));
	memcpy(rec + sizeof(m), name, nl);
	struct lw_req rq = {0, 0, 0, RM_CREATE_TOPIC, rec, (uint32_t)(sizeof(m) + nl)};
	struct lw_answers tmp = {0};
	int rc = lw_record_apply(w, &rq, &tmp);
	free(tmp.v);
	if (rc)
		return NULL;
	t = topic_find(w, name, nl);
	*made = t != NULL;
	return t;
}

int lw_append(struct lw *w, const uint8_t *rec, uint32_t len)
{
	struct lw_req rq = {0, 0, 0, RM_PUBLISH, rec, len};
	struct lw_answers tmp = {0};
	int rc = lw_record_apply(w, &rq, &tmp);
	if (rc == SL_OK)
		rc = lw_parts_flush(w); /* the pending record points into rec */
	free(tmp.v);
	return rc;
}

int lw_record_apply(struct lw *w, const struct lw_req *rq, struct lw_answers *out)
{
	uint16_t type = rq->type;
	if (type == RM_PUBLISH)
		return do_publish(w, rq, out);
	if (type == RM_PUBLISH_BATCH)
		return do_publish_batch(w, rq, out);
	int cons = type >= RM_CONSUMER_CREATE && type <= RM_CONSUMER_SEEK;
	if (!cons && type != RM_CREATE_TOPIC && type != RM_DELETE_TOPIC && type != RM_COMMIT_OFFSET &&
	    type != RM_CALLBACK && type != RM_AUTH)
		return ack_note(w, rq, out, SL_EUNKNOWN_OP, 0, 0, 0);
	/* admin requests act after every publish before them */
	int rc = lw_parts_flush(w);
	if (rc)
		return rc;
	if (cons)
		return lw_cons_apply(w, rq, out);
	if (type == RM_CALLBACK)
		return lw_callback_apply(w, rq, out);
	if (type == RM_AUTH)
		return lw_auth_apply(w, rq, out);
	if (type == RM_CREATE_TOPIC)
		return do_create(w, rq, out);
	if (type == RM_DELETE_TOPIC)
		return do_delete(w, rq, out);
	return do_commit_offset(w, rq, out);
}

struct lw *lw_new(const struct logwriter_args *a, int *rc)
{
	const struct config *cfg = a->cfg;
	struct lw *w = calloc(1, sizeof(*w) + cfg->frontends * sizeof(struct lw_fe));
	*rc = SL_ENOMEM;
	if (!w)
		return NULL;
	w->cfg = cfg;
	w->shm = a->shm;
	w->self_efd = a->self_efd;
	w->fe_efds = a->frontend_efds;
	w->nfe = cfg->frontends;
	w->parts = calloc(cfg->partitions_max, sizeof(*w->parts));
	w->topic_buckets = lw_topic_buckets(cfg);
	w->topics = calloc(w->topic_buckets, sizeof(*w->topics));
	w->topic_ids = calloc(w->topic_buckets, sizeof(*w->topic_ids));
	if (!w->parts || !w->topics || !w->topic_ids)
		goto fail;
	for (uint32_t i = 0; i < w->nfe; i++) {
		w->fe[i].pub = shm_pub_ring(a->shm, i);
		w->fe[i].ack = shm_ack_ring(a->shm, i);
	}
	struct store_opts so = {cfg->data_dir, cfg->map_bytes, cfg->sync, 0, cfg->partitions_max};
	*rc = store_open(&w->store, &so);
	if (*rc) {
		log_error("cannot open storage in %s: %s", cfg->data_dir, sl_strerror(*rc));
		goto fail;
	}
	return w;
fail:
	lw_free(w);
	return NULL;
}

void lw_free(struct lw *w)
{
	lw_cons_free(w);
	if (w->store)
		store_close(w->store);
	for (uint32_t s = 0; w->parts && s < w->cfg->partitions_max; s++)
		free(w->parts[s].pend);
	for (uint32_t i = 0; i < w->nfe; i++)
		free(w->fe[i].backlog);
	free(w->parts);
	free(w->topics);
	free(w->topic_ids);
	free(w->pend_slots);
	free(w->touched_slots);
	free(w->writes.b);
	free(w->writes.d);
	free(w);
}

int logwriter_main(const struct logwriter_args *a)
{
	int rc;
	struct sigaction sa = {0};
	sa.sa_handler = lw_sigterm;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = lw_sighup;
	sigaction(SIGHUP, &sa, NULL);
	struct lw *w = lw_new(a, &rc);
	if (!w)
		return 70;
	rc = lw_cluster_run(w);
	int reseed = w->exit_reseed;
	lw_free(w);
	if (reseed)
		return LOGWRITER_EXIT_RESEED;
	return rc ? 70 : 0;
}
