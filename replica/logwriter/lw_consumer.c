/*
 * lw_consumer.c: durable consumers in the logwriter (docs/consumers.md).
 *
 * A consumer's state (replica/consumer/consumer.h per partition) changes
 * only when an entry applies, the same way on every node: create and
 * delete, acks (RM_CONSUMER_ACK: many per request, one entry per turn) and
 * pulls (RM_CONSUMER_PULL). Applying a pull runs cons_pick with the entry's
 * time and the partitions' committed ends at that point of the log, both the
 * same on every node, so every node records the same deliveries with the
 * same attempt numbers; the origin node answers the puller with one
 * RM_ACK_PICK ack per message and an RM_ACK_PICK_END. A message past
 * max_deliveries is copied to the dead-letter topic when a pull applies:
 * that pull appends to the log at commit, so the leader marks it
 * (RM_PULL_DEAD_LETTER) and ends its entry there, and the entries after it
 * are resolved only once it is applied (lw_cluster.c's barrier); a pull
 * without the mark leaves such a message for the next one.
 *
 * A leader holds a pull that has nothing to take yet (on its applied state)
 * for up to its wait_ms and proposes it once something is due or it
 * expires, so an idle member costs one small entry per wait, not one per
 * poll. Held pulls are lost with the leadership: the leader change bumps
 * the epoch, and frontends answer UNAVAILABLE to what is pending.
 *
 * Every state change is written to the store in the transaction of the
 * entry that made it, so the in-memory table is the store's copy.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "consumer.h"
#include "err.h"
#include "log.h"
#include "lw_int.h"
#include "sl_assert.h"
#include "vec.h"
#include "wh_config.h"

#define LW_CONSUMERS_MAX 4096
#define LW_HELD_MAX 4096
#define LW_PULL_WAIT_MS_MAX 20000
#define DLQ_SUFFIX ".dlq"
#define LW_SCHEDULE_JITTER_PCT 20

struct lw_cons {
	struct store_consumer meta;
	struct cons_cfg cfg;
	struct cons_part *parts;
	struct cons_stats *stats;
	uint8_t *dirty;
	uint32_t nparts;
	int pulling;             /* leader: a pull of it is in an entry not applied yet; more wait */
};

struct lw_held {
	uint32_t node;
	uint16_t fe;
	int64_t deadline_ms;
	uint8_t *rec;
	uint32_t len;
};

struct lw_consumers {
	struct lw_cons *v;
	size_t n, cap;
	struct lw_held *held;
	size_t nheld, capheld;
	/* lw_cons_held_ready runs every turn of the leader's loop: when it
	 * found nothing ready, nothing is until an end moves, a consumer
	 * changes, a pull arrives, or the clock reaches check_ms */
	uint64_t seen_ends, seen_changes, changes;
	int64_t check_ms;
	int marked;              /* some consumer has pulling set */
};

/* ---------- the table ---------- */

static void cons_release(struct lw_cons *c)
{
	for (uint32_t i = 0; c->parts && i < c->nparts; i++)
		cons_free(&c->parts[i]);
	free(c->parts);
	free(c->stats);
	free(c->dirty);
	memset(c, 0, sizeof(*c));
}

void lw_cons_free(struct lw *w)
{
	struct lw_consumers *t = w->cons;
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++)
		cons_release(&t->v[i]);
	lw_cons_held_drop(w);
	free(t->v);
	free(t->held);
	free(t);
	w->cons = NULL;
}

static int table(struct lw *w)
{
	if (!w->cons && !(w->cons = calloc(1, sizeof(*w->cons))))
		return SL_ENOMEM;
	return SL_OK;
}

static struct lw_cons *cons_find(struct lw *w, const char *name, size_t len)
{
	if (!w->cons)
		return NULL;
	for (size_t i = 0; i < w->cons->n; i++) {
		struct lw_cons *c = &w->cons->v[i];
		if (strlen(c->meta.name) == len && memcmp(c->meta.name, name, len) == 0)
			return c;
	}
	return NULL;
}

static void cfg_of(const struct store_consumer *m, struct cons_cfg *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->ordered = !m->shared;
	cfg->max_in_flight = m->max_in_flight;
	cfg->max_deliveries = m->max_deliveries;
	cfg->ack_timeout_ms = m->ack_timeout_ms;
	cfg->nschedule = m->nschedule < CONS_SCHEDULE_MAX ? m->nschedule : CONS_SCHEDULE_MAX;
	memcpy(cfg->schedule_ms, m->schedule_ms, cfg->nschedule * sizeof(cfg->schedule_ms[0]));
	cfg->jitter_pct = LW_SCHEDULE_JITTER_PCT;
}

/* A new entry of the table for m, its partitions empty. */
static struct lw_cons *cons_add(struct lw *w, const struct store_consumer *m)
{
	struct lw_consumers *t = w->cons;
	if (vec_reserve(&t->v, &t->cap, t->n + 1))
		return NULL;
	struct lw_cons *c = &t->v[t->n];
	memset(c, 0, sizeof(*c));
	c->meta = *m;
	cfg_of(m, &c->cfg);
	c->nparts = m->partitions;
	c->parts = calloc(c->nparts ? c->nparts : 1, sizeof(*c->parts));
	c->stats = calloc(c->nparts ? c->nparts : 1, sizeof(*c->stats));
	c->dirty = calloc(c->nparts ? c->nparts : 1, 1);
	if (!c->parts || !c->stats || !c->dirty) {
		cons_release(c);
		return NULL;
	}
	t->n++;
	return c;
}

static int cons_save(struct lw *w, struct lw_cons *c, uint32_t part)
{
	size_t n = cons_state_size(&c->parts[part], &c->stats[part]);
	uint8_t *buf = malloc(n);
	if (!buf)
		return SL_ENOMEM;
	size_t got = cons_state_encode(&c->parts[part], &c->stats[part], buf);
	SL_ASSERT(got == n);
	int rc = store_cstate_put(w->txn, c->meta.consumer_id, part, slice_make(buf, n));
	free(buf);
	c->dirty[part] = 0;
	return rc;
}

static int cons_save_dirty(struct lw *w, struct lw_cons *c)
{
	for (uint32_t i = 0; i < c->nparts; i++)
		if (c->dirty[i]) {
			int rc = cons_save(w, c, i);
			if (rc)
				return rc;
		}
	return SL_OK;
}

struct load_ctx {
	struct lw *w;
	int rc;
};

static int load_cb(void *arg, const struct store_consumer *m)
{
	struct load_ctx *x = arg;
	struct lw *w = x->w;
	struct lw_cons *c = cons_add(w, m);
	if (!c) {
		x->rc = SL_ENOMEM;
		return 1;
	}
	for (uint32_t i = 0; i < c->nparts; i++) {
		struct slice v;
		int rc = store_cstate_get(w->txn, m->consumer_id, i, &v);
		if (rc == SL_OK)
			rc = cons_state_decode(v.base, v.len, &c->parts[i], &c->stats[i]);
		if (rc) {
			log_error("consumer %s partition %u: state unreadable (%s)", m->name, i, sl_strerror(rc));
			x->rc = rc == SL_EMALFORMED || rc == SL_ENOTFOUND ? SL_ECORRUPT : rc;
			return 1;
		}
	}
	return 0;
}

int lw_cons_load(struct lw *w)
{
	if (table(w))
		return SL_ENOMEM;
	for (size_t i = 0; i < w->cons->n; i++)
		cons_release(&w->cons->v[i]);
	w->cons->n = 0;
	struct load_ctx x = {w, SL_OK};
	int rc = store_consumer_foreach(w->txn, load_cb, &x);
	return rc ? rc : x.rc;
}

/* ---------- answers ---------- */

/* An answer to rq (a local err is fatal: the transaction is dropped). */
static int note(struct lw *w, const struct lw_req *rq, struct lw_answers *out, uint32_t err, uint32_t flags,
		uint32_t partition, uint64_t offset, uint32_t count)
{
	if (err && !sl_err_is_wire((int)err))
		return (int)err;
	return lw_answer_add(w, rq, out, err, partition, offset, count, flags, 0, 0, 0);
}

/* ---------- create, delete ---------- */

static uint64_t start_offset(struct lw *w, const struct rm_consumer_create *m, const struct lw_topic *t, uint32_t p)
{
	const struct lw_part *lp = &w->parts[t->meta.slot_base + p];
	struct store_partition sp = {0};
	uint64_t first = 0, at;
	if (store_partition_get(w->txn, t->meta.topic_id, p, &sp) == SL_OK)
		first = sp.first_offset;
	if (first > lp->cend)
		first = lp->cend;
	switch (m->start) {
	case RM_START_LATEST:
		return lp->cend;
	case RM_START_OFFSET:
		return m->start_offset > first ? m->start_offset : first;
	case RM_START_TIMESTAMP:
		/* what is not committed may be stored on this node only: the committed end bounds it */
		if (store_offset_for_time(w->txn, t->meta.topic_id, p, m->start_ts, &at) != SL_OK || at > lp->cend)
			at = lp->cend;
		return at > first ? at : first;
	default:
		return first;
	}
}

static int create_meta(struct lw *w, const struct rm_consumer_create *m, const uint8_t *names,
		       const struct lw_topic *t, struct store_consumer *in)
{
	memset(in, 0, sizeof(*in));
	memcpy(in->name, names, m->name_len);
	memcpy(in->topic, names + m->name_len, m->topic_len);
	if (m->dlq_len) {
		memcpy(in->dlq, names + m->name_len + m->topic_len, m->dlq_len);
	} else {
		if (m->topic_len + strlen(DLQ_SUFFIX) > RM_TOPIC_NAME_MAX)
			return SL_EINVAL;
		memcpy(in->dlq, in->topic, m->topic_len);
		memcpy(in->dlq + m->topic_len, DLQ_SUFFIX, strlen(DLQ_SUFFIX));
	}
	in->topic_id = t->meta.topic_id;
	in->partitions = t->meta.partitions;
	in->shared = m->shared ? 1 : 0;
	in->max_in_flight = m->max_in_flight;
	in->max_deliveries = m->max_deliveries;
	in->ack_timeout_ms = m->ack_timeout_ms;
	in->nschedule = m->nschedule;
	memcpy(in->schedule_ms, m->schedule_ms, sizeof(in->schedule_ms));
	in->created_ms = w->batch_ts;
	return SL_OK;
}

static int do_create(struct lw *w, const struct lw_req *rq, struct lw_answers *out)
{
	struct rm_consumer_create m;
	struct store_consumer in, made;
	char by[RM_BY_MAX + 1];
	if (rq->len < sizeof(m))
		return note(w, rq, out, SL_EMALFORMED, 0, 0, 0, 0);
	memcpy(&m, rq->p, sizeof(m));
	const uint8_t *names = rq->p + sizeof(m);
	if (sizeof(m) + m.name_len + m.topic_len + m.dlq_len + (size_t)m.webhook_len + m.by_len != rq->len ||
	    lw_by_get(rq, m.by_len, by) != SL_OK || !m.name_len ||
	    m.webhook_len > RM_WEBHOOK_BYTES_MAX ||
	    m.name_len > RM_CONSUMER_NAME_MAX || !m.topic_len || m.topic_len > RM_TOPIC_NAME_MAX ||
	    m.dlq_len > RM_TOPIC_NAME_MAX || m.nschedule > RM_SCHEDULE_MAX || m.start > RM_START_TIMESTAMP)
		return note(w, rq, out, SL_EINVAL, 0, 0, 0, 0);
	const struct lw_topic *t = lw_topic_by_name(w, (const char *)names + m.name_len, m.topic_len);
	if (!t)
		return note(w, rq, out, SL_ENOTOPIC, 0, 0, 0, 0);
	if (cons_find(w, (const char *)names, m.name_len))
		return note(w, rq, out, SL_ECONSUMER_EXISTS, 0, 0, 0, 0);
	if (w->cons->n >= LW_CONSUMERS_MAX)
		return note(w, rq, out, SL_ETOOMANY, 0, 0, 0, 0);
	int rc = create_meta(w, &m, names, t, &in);
	if (rc == SL_OK)
		rc = store_consumer_create(w->txn, &in, &made);
	if (rc == SL_OK && m.webhook_len)
		rc = store_webhook_put(w->txn, made.name, m.name_len,
				       slice_make(names + m.name_len + m.topic_len + m.dlq_len, m.webhook_len));
	if (rc)
		return note(w, rq, out, (uint32_t)rc, 0, 0, 0, 0);
	rc = lw_audit(w, by, "consumer.create",
		      json_pack("{s:s,s:s,s:s,s:b}", "name", made.name, "topic", made.topic, "dead_letter_topic",
				made.dlq, "webhook", m.webhook_len != 0));
	if (rc)
		return rc; /* the audit entry fails the request's transaction: nothing happens unrecorded */
	struct lw_cons *c = cons_add(w, &made);
	if (!c)
		return SL_ENOMEM;
	for (uint32_t i = 0; i < c->nparts; i++) {
		cons_init(&c->parts[i], start_offset(w, &m, t, i));
		if ((rc = cons_save(w, c, i)) != SL_OK)
			return rc;
	}
	log_info("consumer %s created on topic %s (%s)", made.name, made.topic, made.shared ? "shared" : "ordered");
	return note(w, rq, out, SL_OK, 0, 0, 0, 0);
}

static int do_delete(struct lw *w, const struct lw_req *rq, struct lw_answers *out)
{
	struct rm_consumer_delete m;
	char by[RM_BY_MAX + 1];
	if (rq->len < sizeof(m))
		return note(w, rq, out, SL_EMALFORMED, 0, 0, 0, 0);
	memcpy(&m, rq->p, sizeof(m));
	if (sizeof(m) + m.name_len + (size_t)m.by_len != rq->len || !m.name_len || m.name_len > RM_CONSUMER_NAME_MAX ||
	    lw_by_get(rq, m.by_len, by) != SL_OK)
		return note(w, rq, out, SL_EINVAL, 0, 0, 0, 0);
	const char *name = (const char *)rq->p + sizeof(m);
	struct lw_cons *c = cons_find(w, name, m.name_len);
	if (!c)
		return note(w, rq, out, SL_ENOCONSUMER, 0, 0, 0, 0);
	int rc = store_consumer_delete(w->txn, name, m.name_len);
	if (rc)
		return note(w, rq, out, (uint32_t)rc, 0, 0, 0, 0);
	rc = lw_audit(w, by, "consumer.delete", json_pack("{s:s,s:s}", "name", c->meta.name, "topic", c->meta.topic));
	if (rc)
		return rc;
	struct lw_consumers *t = w->cons;
	size_t i = (size_t)(c - t->v);
	cons_release(c);
	memmove(&t->v[i], &t->v[i + 1], (t->n - i - 1) * sizeof(t->v[0]));
	t->n--;
	return note(w, rq, out, SL_OK, 0, 0, 0, 0);
}

/* {"changes": what the patch set, secrets left out, "name": the webhook}. */
static int audit_webhook(struct lw *w, const char *by, const char *name, size_t nl, const uint8_t *patch,
			 size_t len)
{
	json_t *ch = lw_audit_webhook_changes((const char *)patch, len);
	return lw_audit(w, by, "webhook.update", ch ? json_pack("{s:s%,s:o}", "name", name, nl, "changes", ch) : NULL);
}

/* A webhook's settings change: a patch merged into what is stored (wh_config.h). */
static int do_webhook(struct lw *w, const struct lw_req *rq, struct lw_answers *out)
{
	struct rm_consumer_webhook m;
	char by[RM_BY_MAX + 1];
	if (rq->len < sizeof(m))
		return note(w, rq, out, SL_EMALFORMED, 0, 0, 0, 0);
	memcpy(&m, rq->p, sizeof(m));
	if (sizeof(m) + m.name_len + (size_t)m.webhook_len + m.by_len != rq->len || !m.name_len ||
	    m.name_len > RM_CONSUMER_NAME_MAX || m.webhook_len > RM_WEBHOOK_BYTES_MAX ||
	    lw_by_get(rq, m.by_len, by) != SL_OK)
		return note(w, rq, out, SL_EINVAL, 0, 0, 0, 0);
	const char *name = (const char *)rq->p + sizeof(m);
	struct slice stored;
	char why[160], *merged = NULL;
	if (!cons_find(w, name, m.name_len))
		return note(w, rq, out, SL_ENOCONSUMER, 0, 0, 0, 0);
	int rc = store_webhook_get(w->txn, name, m.name_len, &stored);
	if (rc == SL_ENOTFOUND)
		return note(w, rq, out, SL_EINVAL, 0, 0, 0, 0); /* not a webhook */
	if (rc == SL_OK)
		rc = wh_config_patch((const char *)stored.base, stored.len, (const char *)rq->p + sizeof(m) + m.name_len,
				     m.webhook_len, &merged, why, sizeof(why));
	if (rc == SL_OK)
		rc = store_webhook_put(w->txn, name, m.name_len, slice_make(merged, strlen(merged)));
	else if (rc == SL_EINVAL)
		log_info("webhook %.*s: settings change refused: %s", (int)m.name_len, name, why);
	free(merged);
	if (rc == SL_OK && (rc = audit_webhook(w, by, name, m.name_len, rq->p + sizeof(m) + m.name_len,
					       m.webhook_len)) != SL_OK)
		return rc;
	return note(w, rq, out, (uint32_t)rc, 0, 0, 0, 0);
}

static int audit_seek(struct lw *w, const char *by, const char *name, const struct rm_consumer_seek *m)
{
	static const char *const starts[] = {"earliest", "latest", "offset", "timestamp"};
	json_t *d = json_pack("{s:s,s:s}", "name", name, "start", starts[m->start]);
	if (d && m->start == RM_START_OFFSET)
		json_object_set_new(d, "offset", json_integer((json_int_t)m->offset));
	if (d && m->start == RM_START_TIMESTAMP)
		json_object_set_new(d, "timestamp_ms", json_integer((json_int_t)m->ts));
	return lw_audit(w, by, "consumer.seek", d);
}

/* Every partition starts again at the position: what was in flight is
 * dropped (counted neither acknowledged nor dead-lettered). */
static int do_seek(struct lw *w, const struct lw_req *rq, struct lw_answers *out)
{
	struct rm_consumer_seek m;
	char by[RM_BY_MAX + 1];
	if (rq->len < sizeof(m))
		return note(w, rq, out, SL_EMALFORMED, 0, 0, 0, 0);
	memcpy(&m, rq->p, sizeof(m));
	if (sizeof(m) + m.name_len + (size_t)m.by_len != rq->len || !m.name_len || m.name_len > RM_CONSUMER_NAME_MAX ||
	    m.start > RM_START_TIMESTAMP || lw_by_get(rq, m.by_len, by) != SL_OK)
		return note(w, rq, out, SL_EINVAL, 0, 0, 0, 0);
	struct lw_cons *c = cons_find(w, (const char *)rq->p + sizeof(m), m.name_len);
	if (!c)
		return note(w, rq, out, SL_ENOCONSUMER, 0, 0, 0, 0);
	const struct lw_topic *t = lw_topic_by_id(w, c->meta.topic_id);
	if (!t)
		return note(w, rq, out, SL_ENOTOPIC, 0, 0, 0, 0);
	struct rm_consumer_create pos = {0};
	pos.start = m.start;
	pos.start_offset = m.offset;
	pos.start_ts = m.ts;
	for (uint32_t i = 0; i < c->nparts && i < t->meta.partitions; i++) {
		cons_free(&c->parts[i]);
		cons_init(&c->parts[i], start_offset(w, &pos, t, i));
		int rc = cons_save(w, c, i);
		if (rc)
			return rc;
	}
	int rc = audit_seek(w, by, c->meta.name, &m);
	if (rc)
		return rc;
	log_info("consumer %s starts again (start %u)", c->meta.name, m.start);
	return note(w, rq, out, SL_OK, 0, 0, 0, 0);
}

/* ---------- acks ---------- */

static void note_error(struct cons_stats *st, uint64_t offset, const uint8_t *e, uint16_t len)
{
	if (len > CONS_ERROR_MAX)
		len = CONS_ERROR_MAX;
	memcpy(st->error, e, len);
	st->error[len] = 0;
	st->error_len = len;
	st->error_offset = offset;
}

static int do_ack(struct lw *w, const struct lw_req *rq, struct lw_answers *out)
{
	struct rm_consumer_ack m;
	if (rq->len < sizeof(m))
		return note(w, rq, out, SL_EMALFORMED, 0, 0, 0, 0);
	memcpy(&m, rq->p, sizeof(m));
	size_t items = rm_align8(sizeof(m) + m.name_len);
	if (!m.name_len || m.name_len > RM_CONSUMER_NAME_MAX || !m.count || m.count > RM_CACK_ITEMS_MAX ||
	    items + (size_t)m.count * sizeof(struct rm_cack_item) > rq->len)
		return note(w, rq, out, SL_EINVAL, 0, 0, 0, 0);
	size_t errs = items + (size_t)m.count * sizeof(struct rm_cack_item), elen = 0;
	for (uint32_t i = 0; i < m.count; i++) {
		struct rm_cack_item it;
		memcpy(&it, rq->p + items + i * sizeof(it), sizeof(it));
		elen += it.error_len;
	}
	if (errs + elen != rq->len)
		return note(w, rq, out, SL_EINVAL, 0, 0, 0, 0);
	struct lw_cons *c = cons_find(w, (const char *)rq->p + sizeof(m), m.name_len);
	if (!c)
		return note(w, rq, out, SL_ENOCONSUMER, 0, 0, 0, 0);
	uint32_t applied = 0;
	for (uint32_t i = 0; i < m.count; i++) {
		struct rm_cack_item it;
		memcpy(&it, rq->p + items + i * sizeof(it), sizeof(it));
		const uint8_t *e = rq->p + errs;
		errs += it.error_len;
		if (it.partition >= c->nparts)
			continue;
		struct cons_part *p = &c->parts[it.partition];
		struct cons_stats *st = &c->stats[it.partition];
		int did = 0;
		if (it.kind == RM_CACK_ACK) {
			did = cons_ack(p, it.offset);
			st->acked += (uint64_t)did;
		} else if (it.kind == RM_CACK_NACK) {
			did = cons_nack(p, &c->cfg, it.offset, it.delay_ms, w->batch_ts);
			if (did && it.error_len)
				note_error(st, it.offset, e, it.error_len);
		} else if (it.kind == RM_CACK_IN_PROGRESS) {
			did = cons_in_progress(p, &c->cfg, it.offset, w->batch_ts);
		}
		if (did)
			c->dirty[it.partition] = 1;
		applied += (uint32_t)did;
	}
	int rc = cons_save_dirty(w, c);
	if (rc)
		return rc;
	return note(w, rq, out, SL_OK, 0, 0, 0, applied);
}

/* ---------- dead letters ---------- */

struct dl_msg {
	int found;
	uint8_t *rec;          /* the RM_PUBLISH record for the dead-letter topic */
	uint32_t len;
	uint32_t partition;
	const struct lw_cons *c;
	uint32_t src_partition;
	uint32_t deliveries;
};

/* The dead letter's own headers, after the message's. */
static size_t dl_headers(const struct dl_msg *d, uint64_t offset, uint8_t *out)
{
	char part[16], off[24], n[16];
	const struct cons_stats *st = &d->c->stats[d->src_partition];
	snprintf(part, sizeof(part), "%u", d->src_partition);
	snprintf(off, sizeof(off), "%llu", (unsigned long long)offset);
	snprintf(n, sizeof(n), "%u", d->deliveries);
	struct slice kv[5][2] = {
	    {slice_cstr("sluice-dlq-topic"), slice_cstr(d->c->meta.topic)},
	    {slice_cstr("sluice-dlq-partition"), slice_cstr(part)},
	    {slice_cstr("sluice-dlq-offset"), slice_cstr(off)},
	    {slice_cstr("sluice-dlq-deliveries"), slice_cstr(n)},
	    {slice_cstr("sluice-dlq-error"),
	     st->error_offset == offset ? slice_make(st->error, st->error_len) : slice_cstr("")},
	};
	size_t k = 0;
	for (int i = 0; i < 5; i++) {
		if (i == 4 && kv[i][1].len == 0)
			break;
		k += out ? hdrs_put(out + k, kv[i][0], kv[i][1]) : hdrs_entry_bytes(kv[i][0].len, kv[i][1].len);
	}
	return k;
}

static int dl_read_cb(void *arg, const struct store_record *r)
{
	struct dl_msg *d = arg;
	const char *topic = d->c->meta.dlq;
	size_t tl = strlen(topic), extra = dl_headers(d, r->offset, NULL);
	size_t len = sizeof(struct rm_publish) + tl + r->key.len + r->headers.len + extra + r->payload.len;
	if (len > UINT32_MAX || !(d->rec = malloc(len)))
		return 1;
	struct rm_publish h = {0};
	h.partition = d->partition;
	h.key_len = (uint32_t)r->key.len;
	h.headers_len = (uint32_t)(r->headers.len + extra);
	h.payload_len = (uint32_t)r->payload.len;
	h.topic_len = (uint16_t)tl;
	uint8_t *q = d->rec;
	memcpy(q, &h, sizeof(h));
	q += sizeof(h);
	memcpy(q, topic, tl);
	q += tl;
	if (r->key.len)
		memcpy(q, r->key.base, r->key.len);
	q += r->key.len;
	if (r->headers.len)
		memcpy(q, r->headers.base, r->headers.len);
	q += r->headers.len;
	q += dl_headers(d, r->offset, q);
	if (r->payload.len)
		memcpy(q, r->payload.base, r->payload.len);
	d->len = (uint32_t)len;
	d->found = 1;
	return 1;
}

/* The dead-letter topic, made if missing (as many partitions as the source). */
static const struct lw_topic *dl_topic(struct lw *w, const struct lw_cons *c)
{
	int made = 0;
	const struct lw_topic *t = lw_topic_ensure(w, c->meta.dlq, c->nparts, &made);
	if (made)
		log_info("dead-letter topic %s created for consumer %s", c->meta.dlq, c->meta.name);
	return t;
}

/* Copy (partition, offset) of c's topic to its dead-letter topic, with
 * headers naming where it came from. A message retention removed is gone. */
static int dead_letter(struct lw *w, struct lw_cons *c, uint32_t part, uint64_t offset, uint32_t deliveries)
{
	const struct lw_topic *t = dl_topic(w, c);
	if (!t) {
		log_error("consumer %s: dead-letter topic %s cannot be made; offset %u/%llu dropped", c->meta.name,
			  c->meta.dlq, part, (unsigned long long)offset);
		return SL_OK;
	}
	struct dl_msg d = {0, NULL, 0, part % t->meta.partitions, c, part, deliveries};
	uint64_t next;
	int rc = store_read(w->txn, c->meta.topic_id, part, offset, offset + 1, 1, SIZE_MAX, dl_read_cb, &d, &next);
	if (rc == SL_OK && !d.found) {
		log_warn("consumer %s: offset %u/%llu is gone (retention) and is not dead-lettered", c->meta.name,
			 part, (unsigned long long)offset);
		return SL_OK;
	}
	if (rc == SL_OK && !d.rec)
		rc = SL_ENOMEM;
	if (rc == SL_OK)
		rc = lw_append(w, d.rec, d.len);
	free(d.rec);
	return rc;
}

/* ---------- pulls ---------- */

static int do_pull(struct lw *w, const struct lw_req *rq, struct lw_answers *out)
{
	static struct cons_action acts[RM_PULL_MAX];
	struct rm_consumer_pull m;
	if (rq->len < sizeof(m))
		return note(w, rq, out, SL_EMALFORMED, 0, 0, 0, 0);
	memcpy(&m, rq->p, sizeof(m));
	if (sizeof(m) + m.name_len != rq->len || !m.name_len || m.name_len > RM_CONSUMER_NAME_MAX)
		return note(w, rq, out, SL_EINVAL, 0, 0, 0, 0);
	struct lw_cons *c = cons_find(w, (const char *)rq->p + sizeof(m), m.name_len);
	if (!c)
		return note(w, rq, out, SL_ENOCONSUMER, 0, 0, 0, 0);
	c->pulling = 0;
	const struct lw_topic *t = lw_topic_by_id(w, c->meta.topic_id);
	if (!t)
		return note(w, rq, out, SL_ENOTOPIC, 0, 0, 0, 0);
	size_t max = m.max == 0 ? 1 : m.max > RM_PULL_MAX ? RM_PULL_MAX : m.max, got = 0;
	int dl_ok = (m.flags & RM_PULL_DEAD_LETTER) != 0;
	uint32_t nparts = c->nparts < t->meta.partitions ? c->nparts : t->meta.partitions;
	for (uint32_t k = 0; k < nparts && got < max; k++) {
		uint32_t part = (uint32_t)((w->cur_index + k) % nparts); /* the same rotation on every node */
		uint64_t end = w->parts[t->meta.slot_base + part].cend;
		struct store_partition sp;
		/* what retention removed is skipped (retention is in the log: the same everywhere) */
		if (store_partition_get(w->txn, t->meta.topic_id, part, &sp) == SL_OK && sp.first_offset > c->parts[part].floor) {
			size_t gone = cons_advance(&c->parts[part], sp.first_offset < end ? sp.first_offset : end);
			if (gone)
				log_warn("consumer %s partition %u: %zu messages in flight were removed by retention", c->meta.name,
					 part, gone);
			c->dirty[part] = 1;
		}
		int n = cons_pick_ex(&c->parts[part], &c->cfg, end, w->batch_ts, acts, max - got, dl_ok);
		if (n < 0)
			return SL_ENOMEM;
		for (int i = 0; i < n; i++) {
			struct cons_stats *st = &c->stats[part];
			int rc;
			if (acts[i].kind == CA_DELIVER) {
				st->delivered++;
				st->redelivered += acts[i].attempt > 1;
				rc = note(w, rq, out, SL_OK, RM_ACK_PICK, part, acts[i].offset, acts[i].attempt);
				got++;
			} else {
				st->dead_lettered++;
				rc = dead_letter(w, c, part, acts[i].offset, acts[i].attempt);
			}
			if (rc)
				return rc;
		}
		if (n)
			c->dirty[part] = 1;
	}
	int rc = cons_save_dirty(w, c);
	if (rc)
		return rc;
	return note(w, rq, out, SL_OK, RM_ACK_PICK_END, 0, 0, (uint32_t)got);
}

int lw_cons_apply(struct lw *w, const struct lw_req *rq, struct lw_answers *out)
{
	if (table(w))
		return SL_ENOMEM;
	w->cons->changes++;
	switch (rq->type) {
	case RM_CONSUMER_CREATE:
		return do_create(w, rq, out);
	case RM_CONSUMER_DELETE:
		return do_delete(w, rq, out);
	case RM_CONSUMER_ACK:
		return do_ack(w, rq, out);
	case RM_CONSUMER_PULL:
		return do_pull(w, rq, out);
	case RM_CONSUMER_WEBHOOK:
		return do_webhook(w, rq, out);
	case RM_CONSUMER_SEEK:
		return do_seek(w, rq, out);
	default:
		return note(w, rq, out, SL_EUNKNOWN_OP, 0, 0, 0, 0);
	}
}

/* ---------- leader: holding pulls until something is due ---------- */

/* 1 if a pull of c would take something now (on the applied state), or
 * cannot be held (its topic is gone); *dead = 1 if it may dead-letter. */
static int cons_ready(struct lw *w, const struct lw_cons *c, int64_t now, int *dead, int64_t *next_due)
{
	const struct lw_topic *t = lw_topic_by_id(w, c->meta.topic_id);
	int any = 0;
	*dead = 0;
	*next_due = INT64_MAX;
	if (!t)
		return 1;
	for (uint32_t i = 0; i < c->nparts && i < t->meta.partitions; i++) {
		int d;
		int64_t nd;
		any |= cons_due(&c->parts[i], &c->cfg, w->parts[t->meta.slot_base + i].cend, now, &d, &nd);
		*dead |= d;
		if (nd < *next_due)
			*next_due = nd;
	}
	return any;
}

/* The pull's consumer and whether it is ready: 1 (propose), 0 (hold;
 * *next_due: when something of it comes due). */
static int pull_ready(struct lw *w, const uint8_t *p, uint32_t len, int64_t now, uint16_t *flags, int64_t *next_due)
{
	struct rm_consumer_pull m;
	*flags = 0;
	*next_due = INT64_MAX;
	if (len < sizeof(m))
		return 1; /* applying answers it MALFORMED */
	memcpy(&m, p, sizeof(m));
	if (sizeof(m) + m.name_len != len)
		return 1;
	const struct lw_cons *c = cons_find(w, (const char *)p + sizeof(m), m.name_len);
	int dead = 0;
	if (c && c->pulling)
		return 0; /* the pull before it takes what is due first: this one would come back empty */
	if (!c || cons_ready(w, c, now, &dead, next_due)) {
		*flags = dead ? RM_PULL_DEAD_LETTER : 0;
		return 1;
	}
	return 0;
}

/* Leader: a pull of this record goes into an entry. */
static void mark_pulling(struct lw *w, const uint8_t *p, uint32_t len)
{
	struct rm_consumer_pull m;
	if (len < sizeof(m))
		return;
	memcpy(&m, p, sizeof(m));
	if (sizeof(m) + m.name_len != len)
		return;
	struct lw_cons *c = cons_find(w, (const char *)p + sizeof(m), m.name_len);
	if (c) {
		c->pulling = 1;
		w->cons->marked = 1;
	}
}

int lw_cons_pull_take(struct lw *w, uint32_t node, uint16_t fe, const uint8_t *p, uint32_t len, int64_t now_ms,
		      int *now_out, uint16_t *flags)
{
	struct rm_consumer_pull m;
	int64_t next_due;
	*now_out = 1;
	if (table(w))
		return SL_ENOMEM;
	if (pull_ready(w, p, len, now_ms, flags, &next_due)) {
		mark_pulling(w, p, len);
		return SL_OK;
	}
	memcpy(&m, p, sizeof(m));
	struct lw_consumers *t = w->cons;
	if (m.wait_ms == 0 || t->nheld >= LW_HELD_MAX) {
		mark_pulling(w, p, len);
		return SL_OK;
	}
	uint8_t *rec = malloc(len);
	if (!rec || vec_reserve(&t->held, &t->capheld, t->nheld + 1)) {
		free(rec);
		return SL_OK; /* proposed now: answered empty */
	}
	memcpy(rec, p, len);
	uint32_t wait = m.wait_ms < LW_PULL_WAIT_MS_MAX ? m.wait_ms : LW_PULL_WAIT_MS_MAX;
	t->held[t->nheld++] = (struct lw_held){node, fe, now_ms + wait, rec, len};
	t->check_ms = 0; /* look again */
	*now_out = 0;
	return SL_OK;
}

int lw_cons_held_ready(struct lw *w, int64_t now_ms)
{
	struct lw_consumers *t = w->cons;
	int64_t check = INT64_MAX;
	if (!t || !t->nheld)
		return 0;
	if (t->seen_ends == w->ends_seq && t->seen_changes == t->changes && now_ms < t->check_ms)
		return 0; /* nothing moved since it found nothing ready */
	for (size_t i = 0; i < t->nheld; i++) {
		uint16_t flags;
		int64_t next_due;
		if (t->held[i].deadline_ms <= now_ms ||
		    pull_ready(w, t->held[i].rec, t->held[i].len, now_ms, &flags, &next_due))
			return 1;
		if (t->held[i].deadline_ms < check)
			check = t->held[i].deadline_ms;
		if (next_due < check)
			check = next_due;
	}
	t->seen_ends = w->ends_seq;
	t->seen_changes = t->changes;
	t->check_ms = check;
	return 0;
}

int lw_cons_held_next(struct lw *w, int64_t now_ms, uint32_t *node, uint16_t *fe, uint8_t **rec, uint32_t *len)
{
	struct lw_consumers *t = w->cons;
	for (size_t i = 0; t && i < t->nheld; i++) {
		struct lw_held *h = &t->held[i];
		uint16_t flags = 0;
		int64_t next_due;
		int ready = pull_ready(w, h->rec, h->len, now_ms, &flags, &next_due);
		if (!ready && h->deadline_ms > now_ms)
			continue;
		memcpy(h->rec + offsetof(struct rm_consumer_pull, flags), &flags, sizeof(flags));
		mark_pulling(w, h->rec, h->len);
		*node = h->node;
		*fe = h->fe;
		*rec = h->rec;
		*len = h->len;
		memmove(h, h + 1, (t->nheld - i - 1) * sizeof(*h));
		t->nheld--;
		return 1;
	}
	return 0;
}

void lw_cons_held_drop(struct lw *w)
{
	struct lw_consumers *t = w->cons;
	if (!t || (!t->nheld && !t->marked))
		return;
	for (size_t i = 0; i < t->n; i++)
		t->v[i].pulling = 0;
	t->marked = 0;
	for (size_t i = 0; i < t->nheld; i++)
		free(t->held[i].rec);
	t->nheld = 0;
}
