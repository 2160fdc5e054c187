/*
 * fe_read.c: the frontend's read side: push subscriptions with credit,
 * fetch with long-poll, and the describe/list/status requests. Everything is
 * served from short read-only LMDB transactions that begin and end within
 * one callback (a read txn held across loop turns would pin LMDB pages), and
 * only up to the committed end published in the shm commit table.
 *
 * Messages are read into protobuf structs that point at the LMDB pages
 * (valid until the txn ends); only header keys are copied (protobuf
 * strings need a NUL). A fetch packs them straight into the connection's
 * output buffer. Subscriptions share one read txn per delivery pass, and
 * one read and one rendering per position with every subscription at the
 * same position (fe_fanout.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "config.h"
#include "err.h"
#include "fe_auth.h"
#include "fe_http.h"
#include "fe_int.h"
#include "fe_pages.h"
#include "log.h"
#include "ringmsg.h"
#include "shm.h"
#include "sl_assert.h"

/* ---------- topics and the commit table ---------- */

int fe_topic_get(struct fe *fe, struct store_txn *t, const char *name, struct store_topic *out)
{
	size_t n = strlen(name);
	int rc;

	if (n == 0 || n > RM_TOPIC_NAME_MAX)
		return SL_EINVAL;
	rc = store_topic_get(t, name, n, out);
	return rc == SL_ENOTFOUND ? SL_ENOTOPIC : rc;
}

int fe_partition_end(struct fe *fe, const struct store_topic *tp, uint32_t p, uint64_t *end)
{
	uint64_t slot = (uint64_t)tp->slot_base + p;
	struct shm_slot *s;

	if (slot >= fe->shm->hdr->slots_max)
		return SL_EUNAVAILABLE;
	s = &fe->shm->slots[slot];
	if (shm_load(&s->topic_id) != tp->topic_id)
		return SL_EUNAVAILABLE;
	*end = shm_load(&s->end_offset);
	/* re-check: the slot may have been freed and reused while we read */
	if (shm_load(&s->topic_id) != tp->topic_id)
		return SL_EUNAVAILABLE;
	return SL_OK;
}

/* Answer a failed read. Corruption is logged loudly and never crashes us. */
static void read_fail(struct fe_conn *c, uint64_t id, int rc, const char *what)
{
	if (rc == SL_ECORRUPT) {
		log_error("storage corruption detected while %s (checksum or record mismatch)", what);
		fe_send_error(c, id, SL_EINTERNAL, "storage corruption detected on this node; see its log");
		return;
	}
	if (rc == SL_EUNAVAILABLE) {
		fe_send_error(c, id, rc, "topic is being created or deleted; retry");
		return;
	}
	fe_send_error(c, id, rc, sl_strerror(rc));
}

/* ---------- message batches (Delivery, FetchResult) ---------- */

int fe_msgs_init(struct fe_msgs *m, const char *topic, uint32_t partition, size_t msgs_max, size_t bytes_max)
{
	memset(m, 0, sizeof(*m));
	m->topic = topic;
	m->partition = partition;
	m->msgs_max = msgs_max ? msgs_max : 1;
	m->bytes_max = bytes_max;
	m->msgs = malloc(m->msgs_max * sizeof(*m->msgs));
	m->ptrs = malloc(m->msgs_max * sizeof(*m->ptrs));
	m->blocks = calloc(m->msgs_max, sizeof(*m->blocks));
	if (!m->msgs || !m->ptrs || !m->blocks)
		return SL_ENOMEM;
	return SL_OK;
}

void fe_msgs_free(struct fe_msgs *m)
{
	size_t i;

	if (m->blocks)
		for (i = 0; i < m->n; i++)
			free(m->blocks[i]);
	free(m->blocks);
	free(m->ptrs);
	free(m->msgs);
}

/* Build msg->headers from a stored header blob. Keys are copied (NUL). */
static int msg_headers(Sluice__Message *msg, struct slice blob, void **block_out)
{
	size_t pos = 0, n, keys, i = 0;
	struct slice k, v;
	Sluice__Header *hs;
	Sluice__Header **ps;
	char *kp;

	if (hdrs_count(blob, &n, &keys) < 0)
		return SL_ECORRUPT;
	if (n == 0)
		return SL_OK;
	hs = malloc(n * (sizeof(*hs) + sizeof(*ps)) + keys);
	if (!hs)
		return SL_ENOMEM;
	ps = (Sluice__Header **)(hs + n);
	kp = (char *)(ps + n);
	pos = 0;
	while (i < n && hdrs_next(blob, &pos, &k, &v) == 1) {
		sluice__header__init(&hs[i]);
		if (k.len)
			memcpy(kp, k.base, k.len); /* an empty key may come with a NULL base */
		kp[k.len] = 0;
		hs[i].key = kp;
		kp += k.len + 1;
		hs[i].value.data = (uint8_t *)v.base;
		hs[i].value.len = v.len;
		ps[i] = &hs[i];
		i++;
	}
	msg->n_headers = i;
	msg->headers = ps;
	*block_out = hs;
	return SL_OK;
}

static int msgs_add_cb(void *arg, const struct store_record *r)
{
	struct fe_msgs *m = arg;
	size_t est = r->key.len + r->headers.len + r->payload.len + strlen(m->topic) + 48;
	Sluice__Message *msg;

	if (m->n > 0 && (m->n >= m->msgs_max || m->bytes + est > m->bytes_max)) {
		/* not taken: the caller resumes at this record */
		m->stopped = 1;
		m->stop_at = r->offset;
		return 1;
	}
	msg = &m->msgs[m->n];
	sluice__message__init(msg);
	msg->topic = (char *)m->topic;
	msg->partition = m->partition;
	msg->offset = r->offset;
	msg->timestamp_ms = r->timestamp_ms;
	msg->key.data = (uint8_t *)r->key.base;
	msg->key.len = r->key.len;
	msg->payload.data = (uint8_t *)r->payload.base;
	msg->payload.len = r->payload.len;
	m->err = msg_headers(msg, r->headers, &m->blocks[m->n]);
	if (m->err != SL_OK)
		return 1;
	m->ptrs[m->n++] = msg;
	m->bytes += est;
	m->data_bytes += r->key.len + r->headers.len + r->payload.len;
	m->next = r->offset + 1;
	return m->n >= m->msgs_max;
}

int fe_msgs_read(struct store_txn *t, const struct store_topic *tp, struct fe_msgs *m, uint64_t from, uint64_t limit,
                 uint64_t *next)
{
	uint64_t next_out = from;
	int rc = store_read(t, tp->topic_id, m->partition, from, limit, m->msgs_max, m->bytes_max, msgs_add_cb, m,
	                    &next_out);

	if (rc == SL_OK)
		rc = m->err;
	if (rc != SL_OK)
		return rc;
	if (m->n == 0)
		*next = next_out > from ? next_out : from;
	else
		*next = m->stopped ? m->stop_at : m->next;
	return SL_OK;
}

/* ---------- subscriptions ---------- */

struct fe_sub *fe_sub_find(struct fe_conn *c, uint64_t id)
{
	struct fe_sub *s;

	TAILQ_FOREACH(s, &c->subs, link)
	if (s->id == id)
		return s;
	return NULL;
}

void fe_sub_seek(struct fe_sub *s, uint32_t partition, uint64_t next)
{
	for (uint32_t i = 0; i < s->nparts; i++)
		if (s->parts[i].partition == partition) {
			SL_ASSERT(!s->parts[i].waiting);
			s->parts[i].next = next;
		}
}

static void subpart_unwait(struct fe *fe, struct fe_sub *s, struct fe_subpart *sp)
{
	if (!sp->waiting)
		return;
	TAILQ_REMOVE(&fe->waiters[s->slot_base + sp->partition], sp, wait);
	sp->waiting = 0;
	fe->nwaiters--;
}

/* Wait on the slot of every partition that has nothing more to deliver
 * (or is stuck): the next commit that moves one of them wakes s. */
static void sub_wait_idle(struct fe *fe, struct fe_sub *s, int stuck)
{
	struct store_topic tp;

	memset(&tp, 0, sizeof(tp));
	tp.topic_id = s->topic_id;
	tp.slot_base = s->slot_base;
	for (uint32_t i = 0; i < s->nparts; i++) {
		struct fe_subpart *sp = &s->parts[i];
		uint64_t end;
		if (sp->waiting || fe_partition_end(fe, &tp, sp->partition, &end) != SL_OK)
			continue;
		if (sp->next < end && !stuck)
			continue;
		SL_ASSERT(s->slot_base + sp->partition < fe->cfg->partitions_max);
		TAILQ_INSERT_TAIL(&fe->waiters[s->slot_base + sp->partition], sp, wait);
		sp->waiting = 1;
		fe->nwaiters++;
	}
}

static void sub_free(struct fe_sub *s)
{
	struct fe_conn *c = s->conn;

	for (uint32_t i = 0; s->parts && i < s->nparts; i++)
		subpart_unwait(c->fe, s, &s->parts[i]);
	if (s->queued)
		TAILQ_REMOVE(&c->fe->runq, s, runq);
	TAILQ_REMOVE(&c->subs, s, link);
	c->nsubs--;
	free(s->parts);
	free(s);
}

void fe_sub_schedule(struct fe_sub *s)
{
	struct fe *fe = s->conn->fe;
	struct timeval zero = {0, 0};

	if (s->queued || s->conn->dead || s->credit == 0)
		return;
	s->queued = 1;
	TAILQ_INSERT_TAIL(&fe->runq, s, runq);
	if (!evtimer_pending(fe->run_ev, NULL))
		evtimer_add(fe->run_ev, &zero);
}

/* Bytes of one Delivery: about 256 KiB of messages, or up to 1 MiB of
 * stored batches (a group commit of 256 KiB of small records takes more
 * room stored than published; a batch over the cap comes as messages). */
static size_t delivery_bytes_max(const struct fe *fe, int batches)
{
	size_t fmax = fe->cfg->frame_bytes_max;
	size_t cap = fmax > 8192 ? fmax - 4096 : fmax / 2;
	size_t want = batches ? FE_DELIVERY_BATCH_BYTES_MAX : FE_DELIVERY_BYTES_MAX;
	return cap < want ? cap : want;
}

/* Send e's messages as one Delivery of s: native TCP connections and SSE
 * streams by reference to e's shared renderings, any other connection kind
 * (WebSocket, GraphQL: they read Delivery.messages) through fe_send. */
static void sub_send(struct fe_sub *s, struct fe_fanout_entry *e)
{
	struct fe_conn *c = s->conn;
	Sluice__Delivery d = SLUICE__DELIVERY__INIT;
	Sluice__Frame f = SLUICE__FRAME__INIT;

	if (c->deliver_shared && !c->http) {
		fe_fanout_native(c, s->id, e);
		return;
	}
	if (c->http && fe_http_sse_deliver(c, e))
		return;
	d.subscription_id = s->id;
	d.n_messages = e->m.n;
	d.messages = e->m.ptrs;
	d.n_batches = e->b.n;
	d.batches = e->b.ptrs;
	f.body_case = SLUICE__FRAME__BODY_DELIVERY;
	f.delivery = &d;
	fe_send(c, &f);
}

/* How much one read may take: as whole batches, or as messages. */
struct read_caps {
	size_t batch_msgs, batch_bytes;
	size_t msgs, bytes;
};

/* Read k->from below k->end of k->partition: whole stored batches into b
 * when k->batches, unless the first is too big for the cap (then, as for
 * any other connection, messages into m). Whatever m and b held before is
 * dropped. *next is where the next read starts. */
static int read_part(struct store_txn *t, const struct store_topic *tp, const char *topic,
                     const struct fe_fanout_key *k, const struct read_caps *caps, struct fe_msgs *m,
                     struct fe_batches *b, uint64_t *next)
{
	int rc;

	fe_msgs_free(m);
	fe_batches_free(b);
	memset(m, 0, sizeof(*m));
	if (k->batches) {
		fe_batches_init(b, topic, k->partition, caps->batch_msgs, caps->batch_bytes);
		rc = fe_batches_read(t, tp, b, k->from, k->end, next);
		if (rc != SL_OK || !b->too_big)
			return rc;
	}
	rc = fe_msgs_init(m, topic, k->partition, caps->msgs, caps->bytes);
	if (rc == SL_OK)
		rc = fe_msgs_read(t, tp, m, k->from, k->end, next);
	return rc;
}

/* The pass's read of sp from its next offset below end: shared with every
 * subscription of this pass at the same position (fe_fanout.c). */
static struct fe_fanout_entry *sub_read(struct fe_sub *s, struct store_txn *t, const struct store_topic *tp,
                                        struct fe_subpart *sp, uint64_t end)
{
	struct fe *fe = s->conn->fe;
	int batches = s->conn->batches;
	size_t credit = s->credit < FE_DELIVERY_BATCH_MSGS_MAX ? (size_t)s->credit : FE_DELIVERY_BATCH_MSGS_MAX;
	size_t msgs = credit < FE_DELIVERY_MSGS_MAX ? credit : FE_DELIVERY_MSGS_MAX;
	struct read_caps caps = {credit, delivery_bytes_max(fe, 1), msgs, delivery_bytes_max(fe, 0)};
	struct fe_fanout_key key = {s->topic_id, sp->partition, sp->next, end, batches ? credit : msgs, batches};
	struct fe_fanout_entry *e;
	int hit;

	if (!(e = fe_fanout_get(fe, &key, &hit)) || hit)
		return e;
	memcpy(e->topic, s->topic, sizeof(e->topic));
	e->next = sp->next;
	e->rc = read_part(t, tp, e->topic, &key, &caps, &e->m, &e->b, &e->next);
	fe_fanout_read_done(fe, e);
	return e;
}

/* One Delivery from one partition. Returns an sl_err; *bytes grows. */
static int sub_deliver_part(struct fe_sub *s, struct store_txn *t, const struct store_topic *tp, struct fe_subpart *sp,
                            uint64_t end, size_t *bytes, int quiet)
{
	struct fe *fe = s->conn->fe;
	struct fe_fanout_entry *e = sub_read(s, t, tp, sp, end);
	uint64_t next;
	size_t n;
	int rc;

	if (!e)
		return SL_ENOMEM;
	if ((rc = e->rc) != SL_OK)
		return rc;
	next = e->next;
	n = e->b.n ? e->b.msgs : e->m.n;
	if (n > 0) {
		sub_send(s, e);
		fe_metrics_delivered(fe, tp, sp->partition, n, e->b.n ? e->b.data_bytes : e->m.data_bytes);
		s->credit -= n;
	}
	/* an empty read past retention still moves us to the first stored offset */
	if (next > end)
		next = end;
	if (next == sp->next && n == 0) {
		/* nothing readable below the committed end: do not spin; the next commit retries */
		if (!quiet)
			log_warn("topic %s partition %u: no records readable at offset %llu (end %llu)", s->topic,
			         sp->partition, (unsigned long long)next, (unsigned long long)end);
		rc = SL_EAGAIN;
	}
	sp->next = next;
	*bytes += (e->b.n ? e->b.value_bytes : e->m.bytes) + 1;
	return rc;
}

/* Pick the next partition (round robin) with committed data; -1 if none. */
static int sub_next_part(struct fe *fe, struct fe_sub *s, const struct store_topic *tp, uint64_t *end, int *gone)
{
	uint32_t k;

	for (k = 0; k < s->nparts; k++) {
		uint32_t i = (s->rr + k) % s->nparts;
		if (fe_partition_end(fe, tp, s->parts[i].partition, end) != SL_OK) {
			*gone = 1;
			return -1;
		}
		if (s->parts[i].next < *end) {
			s->rr = (i + 1) % s->nparts;
			return (int)i;
		}
	}
	return -1;
}

void fe_sub_end(struct fe_sub *s, int code, const char *msg)
{
	Sluice__Delivery d = SLUICE__DELIVERY__INIT;
	Sluice__Frame f = SLUICE__FRAME__INIT;
	d.subscription_id = s->id;
	d.end_error = (Sluice__ErrorCode)(sl_err_is_wire(code) ? code : SL_EINTERNAL);
	d.end_message = (char *)msg;
	f.body_case = SLUICE__FRAME__BODY_DELIVERY;
	f.delivery = &d;
	fe_send(s->conn, &f);
	sub_free(s);
}

/* The topic went away (deleted) or storage failed: end the subscription. */
static void sub_end(struct fe_sub *s, int rc)
{
	if (rc != SL_EUNAVAILABLE)
		log_error("subscription %llu ended: %s", (unsigned long long)s->id, sl_strerror(rc));
	if (rc == SL_EUNAVAILABLE)
		fe_sub_end(s, SL_ENOTOPIC, "topic was deleted; subscription ended");
	else
		fe_sub_end(s, rc, sl_strerror(rc));
}

static void sub_run(struct fe *fe, struct fe_sub *s)
{
	struct evbuffer *out = bufferevent_get_output(s->conn->bev);
	struct store_topic tp;
	struct store_txn *t = NULL;
	size_t work = 0;
	int gone = 0, rc;

	memset(&tp, 0, sizeof(tp));
	tp.topic_id = s->topic_id;
	tp.slot_base = s->slot_base;
	rc = SL_OK;
	while (rc == SL_OK && s->credit > 0 && evbuffer_get_length(out) < fe->cfg->output_high_bytes &&
	       work < FE_SUB_TURN_BYTES_MAX && !s->conn->dead) {
		uint64_t end = 0;
		int fresh, i = sub_next_part(fe, s, &tp, &end, &gone);
		if (i < 0)
			break;
		/* the pass's read transaction, begun once there is something to read */
		if ((rc = fe_pass_txn(fe, &t, &fresh)) != SL_OK)
			break;
		subpart_unwait(fe, s, &s->parts[i]);
		rc = sub_deliver_part(s, t, &tp, &s->parts[i], end, &work, !fresh);
		if (rc == SL_EAGAIN && !fresh) {
			/* this end was read after the transaction began: a commit in
			 * between is past its snapshot, and a new one sees it */
			fe_pass_end(fe);
			if ((rc = fe_pass_txn(fe, &t, &fresh)) != SL_OK)
				break;
			rc = sub_deliver_part(s, t, &tp, &s->parts[i], end, &work, 0);
		}
	}
	if (rc == SL_EAGAIN) {
		sub_wait_idle(fe, s, 1); /* stuck partition: wait for the next commit */
		return;
	}
	if (gone)
		rc = SL_EUNAVAILABLE;
	if (rc != SL_OK) {
		sub_end(s, rc);
		return;
	}
	if (work >= FE_SUB_TURN_BYTES_MAX)
		fe_sub_schedule(s); /* more to do: yield to other connections first */
	/* out of credit: park every partition, so that a deleted topic still
	 * ends the subscription before the client grants more */
	sub_wait_idle(fe, s, s->credit == 0);
}

/* One delivery pass: every subscription queued when it starts, under one
 * read txn whose reads and renderings they share (fe_fanout.c). */
void fe_run_cb(int fd, short what, void *arg)
{
	struct fe *fe = arg;
	struct fe_sub_list batch;
	struct fe_sub *s;

	fe->run_pass++;
	/* before any delivery: streams whose identity may no longer read end first */
	fe_auth_streams_check(fe);
	/* subs rescheduled during this pass run on the next turn */
	TAILQ_INIT(&batch);
	TAILQ_CONCAT(&batch, &fe->runq, runq);
	while ((s = TAILQ_FIRST(&batch))) {
		TAILQ_REMOVE(&batch, s, runq);
		s->queued = 0;
		if (!s->conn->dead)
			sub_run(fe, s);
	}
	fe_pass_end(fe);
}

int fe_start_offset(struct fe *fe, struct store_txn *t, const struct store_topic *tp, uint32_t p,
                    const struct fe_start *st, uint64_t *pos)
{
	struct store_partition sp;
	uint64_t end, first, at;
	int rc = fe_partition_end(fe, tp, p, &end);

	if (rc != SL_OK)
		return rc;
	rc = store_partition_get(t, tp->topic_id, p, &sp);
	if (rc == SL_ENOTFOUND)
		sp.first_offset = 0;
	else if (rc != SL_OK)
		return rc;
	first = sp.first_offset < end ? sp.first_offset : end;
	if (st->group && st->group[0] && store_group_get(t, st->group, tp->topic_id, p, &at) == SL_OK) {
		/* resume from the group */
	} else if (st->start == SLUICE__START_AT__LATEST) {
		at = end;
	} else if (st->start == SLUICE__START_AT__OFFSET) {
		at = st->offset;
	} else if (st->start == SLUICE__START_AT__TIMESTAMP) {
		rc = store_offset_for_time(t, tp->topic_id, p, st->timestamp_ms, &at);
		if (rc != SL_OK)
			return rc;
	} else {
		at = first;
	}
	*pos = at < first ? first : at > end ? end : at;
	return SL_OK;
}

/* Where partition p starts for a new subscription. */
static int sub_start(struct fe *fe, struct store_txn *t, const struct store_topic *tp, const Sluice__Subscribe *m,
                     uint32_t p, uint64_t *pos)
{
	struct fe_start st = {m->start, m->offset, m->timestamp_ms, m->group};

	return fe_start_offset(fe, t, tp, p, &st, pos);
}

/* Fill s->parts from the request (empty: all partitions). */
static int sub_parts(struct fe_sub *s, const struct store_topic *tp, const Sluice__Subscribe *m, const char **why)
{
	size_t n = m->n_partitions ? m->n_partitions : tp->partitions, i;
	uint8_t *seen;

	if (n == 0 || n > tp->partitions) {
		*why = "partition out of range or listed twice";
		return SL_EINVAL;
	}
	s->parts = calloc(n, sizeof(*s->parts));
	seen = calloc(tp->partitions, 1);
	if (!s->parts || !seen) {
		free(seen);
		return SL_ENOMEM;
	}
	for (i = 0; i < n; i++) {
		uint32_t p = m->n_partitions ? m->partitions[i] : (uint32_t)i;
		if (p >= tp->partitions || seen[p]) {
			free(seen);
			*why = "partition out of range or listed twice";
			return SL_EINVAL;
		}
		seen[p] = 1;
		s->parts[i].partition = p;
		s->parts[i].sub = s;
	}
	s->nparts = (uint32_t)n;
	free(seen);
	return SL_OK;
}

/* SL_ENOMEM if the answer could not be built (the caller ends the sub). */
static int sub_send_subscribed(struct fe_sub *s, uint64_t id)
{
	Sluice__Subscribed sd = SLUICE__SUBSCRIBED__INIT;
	Sluice__Frame f = SLUICE__FRAME__INIT;
	Sluice__PartitionPosition *pp = calloc(s->nparts, sizeof(*pp));
	Sluice__PartitionPosition **ptrs = calloc(s->nparts, sizeof(*ptrs));
	uint32_t i;
	int rc = SL_ENOMEM;

	if (!pp || !ptrs) {
		fe_send_error(s->conn, id, SL_EINTERNAL, "out of memory");
		goto out;
	}
	for (i = 0; i < s->nparts; i++) {
		sluice__partition_position__init(&pp[i]);
		pp[i].partition = s->parts[i].partition;
		pp[i].offset = s->parts[i].next;
		ptrs[i] = &pp[i];
	}
	sd.subscription_id = s->id;
	sd.n_positions = s->nparts;
	sd.positions = ptrs;
	f.id = id;
	f.body_case = SLUICE__FRAME__BODY_SUBSCRIBED;
	f.subscribed = &sd;
	fe_send(s->conn, &f);
	rc = SL_OK;
out:
	free(ptrs);
	free(pp);
	return rc;
}

/* Build the subscription inside one read txn; returns an sl_err. */
static int sub_create(struct fe_conn *c, const Sluice__Subscribe *m, struct fe_sub *s, const char **why)
{
	struct fe *fe = c->fe;
	struct store_txn *t = NULL;
	struct store_topic tp;
	uint32_t i;
	int rc;

	*why = NULL;
	if (strlen(m->group) > RM_GROUP_NAME_MAX) {
		*why = "group name longer than 249 bytes";
		return SL_EINVAL;
	}
	rc = store_txn_begin(fe->store, 0, &t);
	if (rc == SL_OK)
		rc = fe_topic_get(fe, t, m->topic, &tp);
	if (rc == SL_OK)
		rc = sub_parts(s, &tp, m, why);
	for (i = 0; rc == SL_OK && i < s->nparts; i++)
		rc = sub_start(fe, t, &tp, m, s->parts[i].partition, &s->parts[i].next);
	if (t)
		store_txn_abort(t);
	if (rc == SL_OK) {
		memcpy(s->topic, tp.name, sizeof(s->topic));
		s->topic[sizeof(s->topic) - 1] = 0;
		s->topic_id = tp.topic_id;
		s->slot_base = tp.slot_base;
	}
	return rc;
}

void fe_on_subscribe(struct fe_conn *c, uint64_t id, const Sluice__Subscribe *m)
{
	struct fe_sub *s;
	const char *why = NULL;
	int rc;

	if (c->nsubs >= c->fe->cfg->subscriptions_max) {
		fe_send_error(c, id, SL_ETOOMANY, "subscriptions_max reached on this connection");
		return;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		fe_send_error(c, id, SL_EINTERNAL, "out of memory");
		return;
	}
	s->conn = c;
	rc = sub_create(c, m, s, &why);
	if (rc != SL_OK) {
		if (rc == SL_ECORRUPT || !why)
			read_fail(c, id, rc, "starting a subscription");
		else
			fe_send_error(c, id, rc, why);
		free(s->parts);
		free(s);
		return;
	}
	s->id = c->next_sub_id++;
	s->req_id = id;
	s->credit = m->credit;
	TAILQ_INSERT_TAIL(&c->subs, s, link);
	c->nsubs++;
	if (sub_send_subscribed(s, id) != SL_OK) {
		sub_free(s); /* the client got an error for its Subscribe: no Delivery may follow */
		return;
	}
	if (s->credit == 0)
		sub_wait_idle(c->fe, s, 1); /* parked until credit comes; a deleted topic still ends it */
	fe_sub_schedule(s);
}

void fe_on_credit(struct fe_conn *c, uint64_t id, const Sluice__Credit *m)
{
	struct fe_sub *s = fe_sub_find(c, m->subscription_id);

	if (!s) {
		/* Credit is not answered; only a request id asks for the error */
		if (id != 0)
			fe_send_error(c, id, SL_ENOSUB, "no such subscription");
		return;
	}
	s->credit += m->credit;
	fe_sub_schedule(s);
}

void fe_on_unsubscribe(struct fe_conn *c, uint64_t id, const Sluice__Unsubscribe *m)
{
	struct fe_sub *s = fe_sub_find(c, m->subscription_id);

	if (!s) {
		fe_send_error(c, id, SL_ENOSUB, "no such subscription");
		return;
	}
	sub_free(s);
	fe_send_ok(c, id);
}

/* ---------- fetch ---------- */

static void fetch_unpark(struct fe *fe, struct fe_fetch *q)
{
	TAILQ_REMOVE(&fe->parked, q, link);
	q->conn->nparked--;
}

static void fetch_free(struct fe_fetch *q)
{
	if (q->timer)
		event_free(q->timer);
	free(q);
}

/* Try to answer q. Returns 1 if answered, 0 if nothing is there yet and !final. */
static int fetch_try(struct fe *fe, struct fe_fetch *q, int final)
{
	struct store_txn *t = NULL;
	struct store_topic tp;
	struct store_partition sp;
	struct fe_msgs m;
	struct fe_batches b;
	uint64_t end = 0, next;
	int rc, answered = 1;

	memset(&m, 0, sizeof(m));
	memset(&b, 0, sizeof(b));
	rc = store_txn_begin(fe->store, 0, &t);
	if (rc == SL_OK)
		rc = fe_topic_get(fe, t, q->topic, &tp);
	if (rc == SL_OK && q->partition >= tp.partitions)
		rc = SL_EINVAL;
	if (rc == SL_OK)
		rc = fe_partition_end(fe, &tp, q->partition, &end);
	if (rc == SL_OK) {
		rc = store_partition_get(t, tp.topic_id, q->partition, &sp);
		if (rc == SL_ENOTFOUND) {
			sp.first_offset = 0;
			rc = SL_OK;
		}
	}
	if (rc == SL_OK && q->offset > end)
		rc = SL_ERANGE;
	if (rc == SL_OK && q->offset >= end && !final) {
		answered = 0;
		goto out;
	}
	struct fe_fanout_key k = {tp.topic_id, q->partition, q->offset, end, q->max_messages, q->conn->batches};
	struct read_caps caps = {q->max_messages, q->max_bytes, q->max_messages, q->max_bytes};
	if (rc == SL_OK && q->offset < end)
		rc = read_part(t, &tp, tp.name, &k, &caps, &m, &b, &next);
	if (rc == SL_OK && m.n == 0 && b.n == 0 && q->offset < end) {
		/* the end was read after t began: a commit in between is past its
		 * snapshot, and a newer transaction sees it */
		store_txn_abort(t);
		t = NULL;
		rc = store_txn_begin(fe->store, 0, &t);
		if (rc == SL_OK)
			rc = read_part(t, &tp, tp.name, &k, &caps, &m, &b, &next);
	}
	if (rc == SL_OK) {
		Sluice__FetchResult fr = SLUICE__FETCH_RESULT__INIT;
		Sluice__Frame f = SLUICE__FRAME__INIT;
		fr.n_messages = m.n;
		fr.messages = m.ptrs;
		fr.n_batches = b.n;
		fr.batches = b.ptrs;
		fr.end_offset = end;
		fr.first_offset = sp.first_offset < end ? sp.first_offset : end;
		f.id = q->req_id;
		f.body_case = SLUICE__FRAME__BODY_FETCH_RESULT;
		f.fetch_result = &fr;
		fe_send(q->conn, &f);
		fe_metrics_delivered(fe, &tp, q->partition, b.n ? b.msgs : m.n, b.n ? b.data_bytes : m.data_bytes);
	} else if (rc == SL_EINVAL) {
		fe_send_error(q->conn, q->req_id, rc, "partition out of range");
	} else if (rc == SL_ERANGE) {
		fe_send_error(q->conn, q->req_id, rc, "offset beyond the end of the partition");
	} else {
		read_fail(q->conn, q->req_id, rc, "serving a fetch");
	}
out:
	fe_msgs_free(&m);
	fe_batches_free(&b);
	if (t)
		store_txn_abort(t);
	return answered;
}

static void fetch_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fe_fetch *q = arg;
	struct fe *fe = q->conn->fe;

	fetch_unpark(fe, q);
	if (!q->conn->dead)
		fetch_try(fe, q, 1);
	fetch_free(q);
}

void fe_on_fetch(struct fe_conn *c, uint64_t id, const Sluice__Fetch *m)
{
	struct fe *fe = c->fe;
	size_t fmax = fe->cfg->frame_bytes_max;
	size_t bytes_cap = fmax > 8192 ? fmax - 4096 : fmax / 2;
	struct fe_fetch *q = calloc(1, sizeof(*q));
	uint32_t wait_ms = m->wait_ms < FE_FETCH_WAIT_MS_MAX ? m->wait_ms : FE_FETCH_WAIT_MS_MAX;
	struct timeval tv = {wait_ms / 1000, (wait_ms % 1000) * 1000};

	if (!q) {
		fe_send_error(c, id, SL_EINTERNAL, "out of memory");
		return;
	}
	q->conn = c;
	q->req_id = id;
	snprintf(q->topic, sizeof(q->topic), "%s", m->topic);
	q->partition = m->partition;
	q->offset = m->offset;
	q->max_messages = m->max_messages ? m->max_messages : FE_FETCH_MSGS_DEFAULT;
	if (q->max_messages > 10 * FE_FETCH_MSGS_DEFAULT)
		q->max_messages = 10 * FE_FETCH_MSGS_DEFAULT;
	q->max_bytes = m->max_bytes ? m->max_bytes : FE_FETCH_BYTES_DEFAULT;
	if (q->max_bytes > bytes_cap)
		q->max_bytes = (uint32_t)bytes_cap;
	/* a connection parks at most inflight_max fetches; more are answered at once */
	int final = wait_ms == 0 || fe->stopping || c->nparked >= fe->cfg->inflight_max;
	if (strlen(m->topic) >= sizeof(q->topic) || fetch_try(fe, q, final)) {
		if (strlen(m->topic) >= sizeof(q->topic))
			fe_send_error(c, id, SL_EINVAL, "topic name too long");
		fetch_free(q);
		return;
	}
	q->timer = evtimer_new(fe->base, fetch_timer_cb, q);
	if (!q->timer || evtimer_add(q->timer, &tv) != 0) {
		fetch_try(fe, q, 1);
		fetch_free(q);
		return;
	}
	TAILQ_INSERT_TAIL(&fe->parked, q, link);
	c->nparked++;
}

/* ---------- wake-ups and connection teardown ---------- */

/* Wake the waiters of one slot whose partition moved past them (or whose
 * topic went away: the subscription then finds out and ends). */
static void slot_wake(struct fe *fe, uint32_t slot)
{
	struct shm_slot *sl = &fe->shm->slots[slot];
	uint32_t topic_id = shm_load(&sl->topic_id);
	uint64_t end = shm_load(&sl->end_offset);
	struct fe_subpart *sp, *next;

	for (sp = TAILQ_FIRST(&fe->waiters[slot]); sp; sp = next) {
		struct fe_sub *s = sp->sub;
		next = TAILQ_NEXT(sp, wait);
		if (topic_id != s->topic_id && s->credit == 0) {
			sub_end(s, SL_EUNAVAILABLE); /* unlinks every part of s; next is another sub's */
			continue;
		}
		if (topic_id == s->topic_id && (end <= sp->next || s->credit == 0))
			continue; /* nothing new, or no credit to send it with: stay parked */
		subpart_unwait(fe, s, sp);
		fe_sub_schedule(s);
	}
}

void fe_reads_commit_moved(struct fe *fe)
{
	struct fe_fetch *q, *next;

	for (uint32_t slot = 0; fe->nwaiters && slot < fe->cfg->partitions_max; slot++)
		if (!TAILQ_EMPTY(&fe->waiters[slot]))
			slot_wake(fe, slot);
	for (q = TAILQ_FIRST(&fe->parked); q; q = next) {
		next = TAILQ_NEXT(q, link);
		if (q->conn->dead || fetch_try(fe, q, 0)) {
			fetch_unpark(fe, q);
			fetch_free(q);
		}
	}
}

void fe_reads_stop(struct fe *fe)
{
	struct fe_fetch *q;

	/* answer parked long-polls now with what is there, so the drain can finish */
	while ((q = TAILQ_FIRST(&fe->parked))) {
		fetch_unpark(fe, q);
		if (!q->conn->dead)
			fetch_try(fe, q, 1);
		fetch_free(q);
	}
}

void fe_reads_conn_writable(struct fe_conn *c)
{
	struct fe_sub *s;

	TAILQ_FOREACH(s, &c->subs, link)
	fe_sub_schedule(s);
}

void fe_reads_conn_free(struct fe_conn *c)
{
	struct fe *fe = c->fe;
	struct fe_fetch *q, *next;
	struct fe_sub *s;

	while ((s = TAILQ_FIRST(&c->subs)))
		sub_free(s);
	for (q = TAILQ_FIRST(&fe->parked); q; q = next) {
		next = TAILQ_NEXT(q, link);
		if (q->conn == c) {
			fetch_unpark(fe, q);
			fetch_free(q);
		}
	}
}
