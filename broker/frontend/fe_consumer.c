/*
 * fe_consumer.c: durable consumers in the frontend (docs/consumers.md).
 *
 * Create, delete, acks and pulls are requests to the log like topic
 * commands (ring records of common/ringmsg.h, defaults filled in here).
 * A pull is answered by one RM_ACK_PICK ack per message the log recorded
 * as delivered, then RM_ACK_PICK_END; the frontend reads those messages
 * from its own store (they are committed: the entry that picked them came
 * after them) and answers PullResult. A message whose bytes do not fit in
 * the answer's frame stays delivered and comes back after its ack timeout.
 * List and describe read the store, like topics.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "consumer.h"
#include "err.h"
#include "fe_int.h"
#include "log.h"
#include "ringmsg.h"
#include "store.h"
#include <jansson.h>

#include "vec.h"
#include "wh_config.h"

#define PULL_MAX_DEFAULT 100
#define PULL_WAIT_MS_MAX 20000
#define IN_FLIGHT_DEFAULT 1000
#define DELIVERIES_DEFAULT 10
#define ACK_TIMEOUT_MS_DEFAULT 30000

static const uint32_t schedule_default[] = {0, 1000, 5000, 30000};

struct fe_pick {
	uint32_t partition;
	uint64_t offset;
	uint32_t attempt;
};

struct fe_pull {
	char name[RM_CONSUMER_NAME_MAX + 1];
	struct fe_pick *v;
	size_t n, cap;
};

static int name_ok(const char *s, size_t max)
{
	size_t n = s ? strlen(s) : 0;
	return n > 0 && n <= max;
}

static size_t ack_error_len(const Sluice__AckItem *it)
{
	size_t n = it->error ? strlen(it->error) : 0;
	return it->kind == SLUICE__ACK_KIND__NACK ? (n > RM_CACK_ERROR_MAX ? RM_CACK_ERROR_MAX : n) : 0;
}

/* Webhook settings a client sent: checked here, before they reach the log. */
static int webhook_check(const char *json, const char **why)
{
	static char msg[160];
	struct wh_config *c;
	int rc;
	if (strlen(json) > RM_WEBHOOK_BYTES_MAX) {
		*why = "webhook settings are at most 16384 bytes";
		return SL_EINVAL;
	}
	if (!(c = malloc(sizeof(*c)))) {
		*why = "out of memory";
		return SL_EINVAL;
	}
	rc = wh_config_parse(json, strlen(json), c, msg, sizeof(msg));
	free(c);
	*why = msg;
	return rc;
}

/* A settings change: a JSON object (checked whole when it applies). */
static int patch_ok(const char *json, const char **why)
{
	json_error_t e;
	json_t *o;
	if (!json || strlen(json) > RM_WEBHOOK_BYTES_MAX) {
		*why = "a webhook settings change is a JSON object of at most 16384 bytes";
		return 0;
	}
	o = json_loads(json, JSON_REJECT_DUPLICATES, &e);
	int ok = json_is_object(o);
	json_decref(o);
	if (!ok)
		*why = "a webhook settings change is a JSON object";
	return ok;
}

static int size_create(const Sluice__CreateConsumer *m, uint32_t *len, const char **why)
{
	const Sluice__ConsumerConfig *cc = m->config;
	if (!store_name_ok(m->name, strlen(m->name))) {
		*why = "consumer name must be 1 to 249 bytes of [A-Za-z0-9._-]";
		return SL_EINVAL;
	}
	if (cc && cc->dead_letter_topic && cc->dead_letter_topic[0] &&
	    !store_name_ok(cc->dead_letter_topic, strlen(cc->dead_letter_topic))) {
		*why = "dead_letter_topic must be a topic name of [A-Za-z0-9._-]";
		return SL_EINVAL;
	}
	if (!cc || !name_ok(cc->topic, RM_TOPIC_NAME_MAX)) {
		*why = "config.topic must be 1 to 249 bytes";
		return SL_EINVAL;
	}
	if (cc->n_schedule_ms > RM_SCHEDULE_MAX) {
		*why = "schedule_ms has at most 16 delays";
		return SL_EINVAL;
	}
	if (cc->dead_letter_topic && strlen(cc->dead_letter_topic) > RM_TOPIC_NAME_MAX) {
		*why = "dead_letter_topic must be at most 249 bytes";
		return SL_EINVAL;
	}
	if ((int)cc->start < 0 || cc->start > SLUICE__START_AT__TIMESTAMP) {
		*why = "unknown start";
		return SL_EINVAL;
	}
	if (cc->max_in_flight > 65536) {
		*why = "max_in_flight is at most 65536";
		return SL_EINVAL;
	}
	if (cc->webhook && cc->webhook[0] && webhook_check(cc->webhook, why) != SL_OK)
		return SL_EINVAL;
	*len = (uint32_t)(sizeof(struct rm_consumer_create) + strlen(m->name) + strlen(cc->topic) +
	                  (cc->dead_letter_topic ? strlen(cc->dead_letter_topic) : 0) +
	                  (cc->webhook ? strlen(cc->webhook) : 0));
	return SL_OK;
}

static int size_ack(const Sluice__AckMessages *m, uint32_t *len, const char **why)
{
	size_t n;
	if (!name_ok(m->consumer, RM_CONSUMER_NAME_MAX)) {
		*why = "consumer name must be 1 to 249 bytes";
		return SL_EINVAL;
	}
	if (m->n_items == 0 || m->n_items > RM_CACK_ITEMS_MAX) {
		*why = "1 to 1000 items";
		return SL_EINVAL;
	}
	n = rm_align8(sizeof(struct rm_consumer_ack) + strlen(m->consumer)) + m->n_items * sizeof(struct rm_cack_item);
	for (size_t i = 0; i < m->n_items; i++) {
		const Sluice__AckItem *it = m->items[i];
		if ((int)it->kind < 0 || it->kind > SLUICE__ACK_KIND__IN_PROGRESS) {
			*why = "unknown ack kind";
			return SL_EINVAL;
		}
		n += ack_error_len(it);
	}
	*len = (uint32_t)n;
	return SL_OK;
}

int fe_cons_req_size(const Sluice__Frame *f, uint16_t *type, uint32_t *len, const char **why)
{
	switch (f->body_case) {
	case SLUICE__FRAME__BODY_CREATE_CONSUMER:
		*type = RM_CONSUMER_CREATE;
		return size_create(f->create_consumer, len, why);
	case SLUICE__FRAME__BODY_DELETE_CONSUMER:
		if (!name_ok(f->delete_consumer->name, RM_CONSUMER_NAME_MAX)) {
			*why = "consumer name must be 1 to 249 bytes";
			return SL_EINVAL;
		}
		*type = RM_CONSUMER_DELETE;
		*len = (uint32_t)(sizeof(struct rm_consumer_delete) + strlen(f->delete_consumer->name));
		return SL_OK;
	case SLUICE__FRAME__BODY_ACK_MESSAGES:
		*type = RM_CONSUMER_ACK;
		return size_ack(f->ack_messages, len, why);
	case SLUICE__FRAME__BODY_PULL:
		if (!name_ok(f->pull->consumer, RM_CONSUMER_NAME_MAX)) {
			*why = "consumer name must be 1 to 249 bytes";
			return SL_EINVAL;
		}
		if (f->pull->max_messages > RM_PULL_MAX || f->pull->wait_ms > PULL_WAIT_MS_MAX) {
			*why = "max_messages is at most 1000 and wait_ms at most 20000";
			return SL_EINVAL;
		}
		*type = RM_CONSUMER_PULL;
		*len = (uint32_t)(sizeof(struct rm_consumer_pull) + strlen(f->pull->consumer));
		return SL_OK;
	case SLUICE__FRAME__BODY_UPDATE_WEBHOOK:
		if (!name_ok(f->update_webhook->name, RM_CONSUMER_NAME_MAX)) {
			*why = "consumer name must be 1 to 249 bytes";
			return SL_EINVAL;
		}
		if (!patch_ok(f->update_webhook->webhook, why))
			return SL_EINVAL;
		*type = RM_CONSUMER_WEBHOOK;
		*len = (uint32_t)(sizeof(struct rm_consumer_webhook) + strlen(f->update_webhook->name) +
		                  strlen(f->update_webhook->webhook));
		return SL_OK;
	case SLUICE__FRAME__BODY_SEEK_CONSUMER:
		if (!name_ok(f->seek_consumer->name, RM_CONSUMER_NAME_MAX)) {
			*why = "consumer name must be 1 to 249 bytes";
			return SL_EINVAL;
		}
		if ((int)f->seek_consumer->start < 0 || f->seek_consumer->start > SLUICE__START_AT__TIMESTAMP) {
			*why = "unknown start";
			return SL_EINVAL;
		}
		*type = RM_CONSUMER_SEEK;
		*len = (uint32_t)(sizeof(struct rm_consumer_seek) + strlen(f->seek_consumer->name));
		return SL_OK;
	default:
		return SL_EUNKNOWN_OP;
	}
}

static uint8_t *put(uint8_t *p, const void *src, size_t n)
{
	if (n)
		memcpy(p, src, n);
	return p + n;
}

static void fill_create(uint8_t *p, const Sluice__CreateConsumer *m, uint64_t cookie)
{
	const Sluice__ConsumerConfig *cc = m->config;
	struct rm_consumer_create h;
	memset(&h, 0, sizeof(h));
	h.cookie = cookie;
	h.start = (uint32_t)cc->start;
	h.start_offset = cc->offset;
	h.start_ts = cc->timestamp_ms;
	h.shared = cc->shared ? 1 : 0;
	h.max_in_flight = cc->max_in_flight ? cc->max_in_flight : IN_FLIGHT_DEFAULT;
	h.max_deliveries = cc->never_dead_letter ? 0 : cc->max_deliveries ? cc->max_deliveries : DELIVERIES_DEFAULT;
	h.ack_timeout_ms = cc->ack_timeout_ms ? cc->ack_timeout_ms : ACK_TIMEOUT_MS_DEFAULT;
	if (cc->n_schedule_ms) {
		h.nschedule = (uint32_t)cc->n_schedule_ms;
		memcpy(h.schedule_ms, cc->schedule_ms, cc->n_schedule_ms * sizeof(uint32_t));
	} else {
		h.nschedule = sizeof(schedule_default) / sizeof(schedule_default[0]);
		memcpy(h.schedule_ms, schedule_default, sizeof(schedule_default));
	}
	h.name_len = (uint16_t)strlen(m->name);
	h.topic_len = (uint16_t)strlen(cc->topic);
	h.dlq_len = (uint16_t)(cc->dead_letter_topic ? strlen(cc->dead_letter_topic) : 0);
	h.webhook_len = (uint32_t)(cc->webhook ? strlen(cc->webhook) : 0);
	p = put(p, &h, sizeof(h));
	p = put(p, m->name, h.name_len);
	p = put(p, cc->topic, h.topic_len);
	p = put(p, cc->dead_letter_topic, h.dlq_len);
	put(p, cc->webhook, h.webhook_len);
}

static void fill_ack(uint8_t *p, const Sluice__AckMessages *m, uint64_t cookie)
{
	struct rm_consumer_ack h;
	uint8_t *start = p;
	memset(&h, 0, sizeof(h));
	h.cookie = cookie;
	h.count = (uint32_t)m->n_items;
	h.name_len = (uint16_t)strlen(m->consumer);
	p = put(p, &h, sizeof(h));
	p = put(p, m->consumer, h.name_len);
	while ((size_t)(p - start) % 8)
		*p++ = 0;
	for (size_t i = 0; i < m->n_items; i++) {
		const Sluice__AckItem *it = m->items[i];
		struct rm_cack_item ci;
		memset(&ci, 0, sizeof(ci));
		ci.offset = it->offset;
		ci.partition = it->partition;
		ci.kind = (uint16_t)it->kind;
		ci.delay_ms = it->has_delay && it->delay_ms >= 0 ? it->delay_ms : -1;
		ci.error_len = (uint16_t)ack_error_len(it);
		p = put(p, &ci, sizeof(ci));
	}
	for (size_t i = 0; i < m->n_items; i++)
		p = put(p, m->items[i]->error, ack_error_len(m->items[i]));
}

void fe_cons_fill(uint8_t *p, const Sluice__Frame *f, uint64_t cookie)
{
	switch (f->body_case) {
	case SLUICE__FRAME__BODY_CREATE_CONSUMER:
		fill_create(p, f->create_consumer, cookie);
		break;
	case SLUICE__FRAME__BODY_DELETE_CONSUMER: {
		struct rm_consumer_delete h;
		memset(&h, 0, sizeof(h));
		h.cookie = cookie;
		h.name_len = (uint16_t)strlen(f->delete_consumer->name);
		put(put(p, &h, sizeof(h)), f->delete_consumer->name, h.name_len);
		break;
	}
	case SLUICE__FRAME__BODY_ACK_MESSAGES:
		fill_ack(p, f->ack_messages, cookie);
		break;
	case SLUICE__FRAME__BODY_PULL: {
		struct rm_consumer_pull h;
		memset(&h, 0, sizeof(h));
		h.cookie = cookie;
		h.max = f->pull->max_messages ? f->pull->max_messages : PULL_MAX_DEFAULT;
		h.wait_ms = f->pull->wait_ms;
		h.name_len = (uint16_t)strlen(f->pull->consumer);
		put(put(p, &h, sizeof(h)), f->pull->consumer, h.name_len);
		break;
	}
	case SLUICE__FRAME__BODY_UPDATE_WEBHOOK: {
		struct rm_consumer_webhook h;
		memset(&h, 0, sizeof(h));
		h.cookie = cookie;
		h.name_len = (uint16_t)strlen(f->update_webhook->name);
		h.webhook_len = (uint32_t)strlen(f->update_webhook->webhook);
		put(put(put(p, &h, sizeof(h)), f->update_webhook->name, h.name_len), f->update_webhook->webhook,
		    h.webhook_len);
		break;
	}
	case SLUICE__FRAME__BODY_SEEK_CONSUMER: {
		struct rm_consumer_seek h;
		memset(&h, 0, sizeof(h));
		h.cookie = cookie;
		h.start = (uint32_t)f->seek_consumer->start;
		h.offset = f->seek_consumer->offset;
		h.ts = f->seek_consumer->timestamp_ms;
		h.name_len = (uint16_t)strlen(f->seek_consumer->name);
		put(put(p, &h, sizeof(h)), f->seek_consumer->name, h.name_len);
		break;
	}
	default:
		break;
	}
}

/* ---------- pull answers ---------- */

int fe_cons_pending_init(struct fe_pending *p, const Sluice__Frame *f)
{
	if (f->body_case != SLUICE__FRAME__BODY_PULL)
		return SL_OK;
	if (!(p->pull = calloc(1, sizeof(*p->pull))))
		return SL_ENOMEM;
	snprintf(p->pull->name, sizeof(p->pull->name), "%s", f->pull->consumer);
	return SL_OK;
}

void fe_cons_pending_free(struct fe_pending *p)
{
	if (p->pull) {
		free(p->pull->v);
		free(p->pull);
		p->pull = NULL;
	}
}

void fe_cons_on_pick(struct fe_pending *p, const struct rm_ack *a)
{
	struct fe_pull *pl = p->pull;
	if (!pl || vec_reserve(&pl->v, &pl->cap, pl->n + 1))
		return; /* not delivered here: it comes back after its ack timeout */
	pl->v[pl->n++] = (struct fe_pick){a->partition, a->offset, a->count};
}

struct pull_ans {
	struct fe_msgs *runs;
	size_t nruns;
	Sluice__PulledMessage *pm;
	Sluice__PulledMessage **pp;
	size_t n;
	size_t bytes, bytes_max;
	struct store_topic tp;        /* the messages' topic name points here */
};

/* Read picks [i, j) (one partition, consecutive offsets) as one run. */
static int read_run(struct store_txn *t, const struct store_topic *tp, const struct fe_pick *v, size_t i, size_t j,
		    struct pull_ans *a)
{
	struct fe_msgs *m = &a->runs[a->nruns];
	uint64_t next;
	size_t room = a->bytes < a->bytes_max ? a->bytes_max - a->bytes : 0;
	if (room == 0)
		return SL_OK;
	int rc = fe_msgs_init(m, tp->name, v[i].partition, j - i, room);
	a->nruns++;
	if (rc == SL_OK)
		rc = fe_msgs_read(t, tp, m, v[i].offset, v[j - 1].offset + 1, &next);
	if (rc)
		return rc;
	for (size_t k = 0; k < m->n; k++) {
		Sluice__Message *msg = m->ptrs[k];
		if (msg->offset < v[i].offset || msg->offset >= v[j - 1].offset + 1)
			continue; /* the picked one is gone (retention) */
		size_t sz = msg->key.len + msg->payload.len + 64;
		if (a->bytes + sz > a->bytes_max && a->n)
			break;
		a->bytes += sz;
		Sluice__PulledMessage *pm = &a->pm[a->n];
		sluice__pulled_message__init(pm);
		pm->message = msg;
		pm->attempt = v[i + (size_t)(msg->offset - v[i].offset)].attempt;
		a->pp[a->n++] = pm;
	}
	return SL_OK;
}

static int pick_cmp(const void *x, const void *y)
{
	const struct fe_pick *a = x, *b = y;
	if (a->partition != b->partition)
		return a->partition < b->partition ? -1 : 1;
	return a->offset < b->offset ? -1 : a->offset > b->offset;
}

static int pull_read(struct fe *fe, struct store_txn *t, struct fe_pull *pl, struct pull_ans *a)
{
	struct store_consumer sc;
	struct store_topic *tp = &a->tp;
	int rc = store_consumer_get(t, pl->name, strlen(pl->name), &sc);
	if (rc == SL_OK)
		rc = fe_topic_get(fe, t, sc.topic, tp);
	if (rc == SL_OK && tp->topic_id != sc.topic_id)
		rc = SL_ENOTOPIC;
	if (rc)
		return rc;
	qsort(pl->v, pl->n, sizeof(pl->v[0]), pick_cmp);
	a->runs = calloc(pl->n, sizeof(*a->runs));
	a->pm = calloc(pl->n, sizeof(*a->pm));
	a->pp = calloc(pl->n, sizeof(*a->pp));
	if (!a->runs || !a->pm || !a->pp)
		return SL_ENOMEM;
	for (size_t i = 0, j; i < pl->n && rc == SL_OK; i = j) {
		for (j = i + 1; j < pl->n && pl->v[j].partition == pl->v[i].partition &&
				pl->v[j].offset == pl->v[j - 1].offset + 1;
		     j++)
			;
		rc = read_run(t, tp, pl->v, i, j, a);
	}
	return rc;
}

void fe_cons_pull_done(struct fe_conn *c, struct fe_pending *p)
{
	struct fe *fe = c->fe;
	struct pull_ans a;
	struct store_txn *t = NULL;
	int rc = SL_OK;
	memset(&a, 0, sizeof(a));
	a.bytes_max = fe->cfg->frame_bytes_max > 1024 ? fe->cfg->frame_bytes_max - 1024 : fe->cfg->frame_bytes_max;
	if (p->pull && p->pull->n) {
		rc = store_txn_begin(fe->store, 0, &t);
		if (rc == SL_OK)
			rc = pull_read(fe, t, p->pull, &a);
	}
	if (rc == SL_OK) {
		Sluice__PullResult r = SLUICE__PULL_RESULT__INIT;
		Sluice__Frame f = SLUICE__FRAME__INIT;
		r.n_messages = a.n;
		r.messages = a.pp;
		f.id = p->req_id;
		f.body_case = SLUICE__FRAME__BODY_PULL_RESULT;
		f.pull_result = &r;
		fe_send(c, &f);
	} else {
		log_warn("consumer %s: pulled messages unreadable here (%s); they come back after their ack timeout",
		         p->pull ? p->pull->name : "?", sl_strerror(rc));
		fe_send_error(c, p->req_id, sl_err_is_wire(rc) ? rc : SL_EINTERNAL, sl_strerror(rc));
	}
	for (size_t i = 0; i < a.nruns; i++)
		fe_msgs_free(&a.runs[i]);
	free(a.runs);
	free(a.pm);
	free(a.pp);
	if (t)
		store_txn_abort(t);
}

/* ---------- list and describe ---------- */

struct cons_vec {
	struct store_consumer *v;
	size_t n, cap;
	int err;
};

static int cons_add_cb(void *arg, const struct store_consumer *sc)
{
	struct cons_vec *cv = arg;
	if (vec_reserve(&cv->v, &cv->cap, cv->n + 1)) {
		cv->err = SL_ENOMEM;
		return 1;
	}
	cv->v[cv->n++] = *sc;
	return 0;
}

/* A webhook's settings for clients: secrets left out (malloc'd into
 * cc->webhook, freed by info_free). */
static int webhook_redacted(struct store_txn *t, const struct store_consumer *sc, Sluice__ConsumerConfig *cc)
{
	struct slice v;
	struct wh_config *w;
	char why[64];
	if (store_webhook_get(t, sc->name, strlen(sc->name), &v) != SL_OK)
		return SL_OK;
	if (!(w = malloc(sizeof(*w))))
		return SL_ENOMEM;
	if (wh_config_parse((const char *)v.base, v.len, w, why, sizeof(why)) == SL_OK) {
		char *j = wh_config_json(w, 1);
		if (j)
			cc->webhook = j;
	}
	free(w);
	return SL_OK;
}

/* One ConsumerInfo, allocated in one block owned by *blk (freed by the caller). */
static int info_build(struct fe *fe, struct store_txn *t, const struct store_consumer *sc, Sluice__ConsumerInfo *ci,
		      void **blk)
{
	size_t np = sc->partitions;
	size_t sz = sizeof(Sluice__ConsumerConfig) + np * (sizeof(Sluice__ConsumerPartition) + sizeof(void *) +
	                                                   CONS_ERROR_MAX + 1);
	uint8_t *b = calloc(1, sz);
	struct store_topic tp;
	int have_tp;
	if (!(*blk = b))
		return SL_ENOMEM;
	Sluice__ConsumerConfig *cc = (Sluice__ConsumerConfig *)b;
	Sluice__ConsumerPartition *cp = (Sluice__ConsumerPartition *)(cc + 1);
	Sluice__ConsumerPartition **pp = (Sluice__ConsumerPartition **)(cp + np);
	char *errs = (char *)(pp + np);
	sluice__consumer_info__init(ci);
	sluice__consumer_config__init(cc);
	ci->name = (char *)sc->name;
	ci->created_ms = sc->created_ms;
	ci->config = cc;
	cc->topic = (char *)sc->topic;
	cc->shared = sc->shared != 0;
	cc->max_in_flight = sc->max_in_flight;
	cc->max_deliveries = sc->max_deliveries;
	cc->never_dead_letter = sc->max_deliveries == 0;
	cc->ack_timeout_ms = sc->ack_timeout_ms;
	cc->n_schedule_ms = sc->nschedule;
	cc->schedule_ms = (uint32_t *)sc->schedule_ms;
	cc->dead_letter_topic = (char *)sc->dlq;
	have_tp = fe_topic_get(fe, t, sc->topic, &tp) == SL_OK && tp.topic_id == sc->topic_id;
	for (size_t i = 0; i < np; i++) {
		struct slice v;
		struct cons_part part;
		struct cons_stats st;
		uint64_t end = 0;
		int rc = store_cstate_get(t, sc->consumer_id, (uint32_t)i, &v);
		if (rc == SL_OK)
			rc = cons_state_decode(v.base, v.len, &part, &st);
		if (rc)
			return rc == SL_ENOMEM ? rc : SL_ECORRUPT;
		sluice__consumer_partition__init(&cp[i]);
		cp[i].partition = (uint32_t)i;
		cp[i].ack_floor = part.floor;
		cp[i].next_offset = part.next;
		cp[i].in_flight = (uint32_t)cons_in_flight(&part);
		if (have_tp && i < tp.partitions && fe_partition_end(fe, &tp, (uint32_t)i, &end) == SL_OK) {
			cp[i].end_offset = end;
			cp[i].lag = end > part.floor ? end - part.floor : 0;
		}
		cp[i].delivered = st.delivered;
		cp[i].redelivered = st.redelivered;
		cp[i].acked = st.acked;
		cp[i].dead_lettered = st.dead_lettered;
		memcpy(errs + i * (CONS_ERROR_MAX + 1), st.error, st.error_len + 1);
		cp[i].last_error = errs + i * (CONS_ERROR_MAX + 1);
		for (size_t k = 0; k < part.n; k++)
			if (!cp[i].next_due_ms || part.fl[k].due_ms < cp[i].next_due_ms)
				cp[i].next_due_ms = part.fl[k].due_ms;
		pp[i] = &cp[i];
		cons_free(&part);
	}
	ci->n_partitions = np;
	ci->partitions = pp;
	return webhook_redacted(t, sc, cc);
}

static void send_infos(struct fe_conn *c, uint64_t id, struct store_txn *t, struct cons_vec *cv, int one)
{
	Sluice__ConsumerInfo *infos = calloc(cv->n ? cv->n : 1, sizeof(*infos));
	Sluice__ConsumerInfo **ptrs = calloc(cv->n ? cv->n : 1, sizeof(*ptrs));
	void **blks = calloc(cv->n ? cv->n : 1, sizeof(*blks));
	int rc = infos && ptrs && blks ? SL_OK : SL_ENOMEM;
	for (size_t i = 0; rc == SL_OK && i < cv->n; i++) {
		rc = info_build(c->fe, t, &cv->v[i], &infos[i], &blks[i]);
		ptrs[i] = &infos[i];
	}
	if (rc == SL_OK) {
		Sluice__Frame f = SLUICE__FRAME__INIT;
		Sluice__ConsumerList l = SLUICE__CONSUMER_LIST__INIT;
		f.id = id;
		if (one) {
			f.body_case = SLUICE__FRAME__BODY_CONSUMER_INFO;
			f.consumer_info = &infos[0];
		} else {
			l.n_consumers = cv->n;
			l.consumers = ptrs;
			f.body_case = SLUICE__FRAME__BODY_CONSUMER_LIST;
			f.consumer_list = &l;
		}
		fe_send(c, &f);
	} else {
		fe_send_error(c, id, rc == SL_ENOMEM ? SL_EUNAVAILABLE : SL_EINTERNAL,
		              rc == SL_ENOMEM ? "out of memory on this node; retry" : "consumer state unreadable");
	}
	for (size_t i = 0; blks && i < cv->n; i++) {
		if (blks[i] && infos[i].config && infos[i].config->webhook != protobuf_c_empty_string)
			free(infos[i].config->webhook);
		free(blks[i]);
	}
	free(blks);
	free(ptrs);
	free(infos);
}

void fe_on_list_consumers(struct fe_conn *c, uint64_t id)
{
	struct store_txn *t = NULL;
	struct cons_vec cv;
	int rc;
	memset(&cv, 0, sizeof(cv));
	rc = store_txn_begin(c->fe->store, 0, &t);
	if (rc == SL_OK)
		rc = store_consumer_foreach(t, cons_add_cb, &cv);
	if (rc == SL_OK)
		rc = cv.err;
	if (rc == SL_OK)
		send_infos(c, id, t, &cv, 0);
	else
		fe_send_error(c, id, SL_EINTERNAL, sl_strerror(rc));
	free(cv.v);
	if (t)
		store_txn_abort(t);
}

void fe_on_describe_consumer(struct fe_conn *c, uint64_t id, const Sluice__DescribeConsumer *m)
{
	struct store_txn *t = NULL;
	struct store_consumer sc;
	struct cons_vec cv = {&sc, 1, 1, SL_OK};
	int rc;
	if (!name_ok(m->name, RM_CONSUMER_NAME_MAX)) {
		fe_send_error(c, id, SL_EINVAL, "consumer name must be 1 to 249 bytes");
		return;
	}
	rc = store_txn_begin(c->fe->store, 0, &t);
	if (rc == SL_OK)
		rc = store_consumer_get(t, m->name, strlen(m->name), &sc);
	if (rc == SL_OK)
		send_infos(c, id, t, &cv, 1);
	else
		fe_send_error(c, id, sl_err_is_wire(rc) ? rc : SL_EINTERNAL, sl_strerror(rc));
	if (t)
		store_txn_abort(t);
}

/* ---------- metrics ---------- */

struct collect_ctx {
	struct fe *fe;
	struct store_txn *t;
	struct fe_cons_row *v;
	size_t n, cap;
	int err;
};

static void row_partition(struct collect_ctx *x, const struct store_consumer *sc, const struct store_topic *tp,
                          int have_tp, uint32_t i, struct fe_cons_row *r)
{
	struct slice v;
	struct cons_part part;
	struct cons_stats st;
	uint64_t end = 0;
	if (store_cstate_get(x->t, sc->consumer_id, i, &v) != SL_OK || cons_state_decode(v.base, v.len, &part, &st) != SL_OK)
		return;
	if (have_tp && i < tp->partitions && fe_partition_end(x->fe, tp, i, &end) == SL_OK && end > part.floor)
		r->lag += end - part.floor;
	r->in_flight += cons_in_flight(&part);
	r->delivered += st.delivered;
	r->redelivered += st.redelivered;
	r->acked += st.acked;
	r->dead_lettered += st.dead_lettered;
	cons_free(&part);
}

static int collect_cb(void *arg, const struct store_consumer *sc)
{
	struct collect_ctx *x = arg;
	struct store_topic tp;
	struct slice wh;
	if (vec_reserve(&x->v, &x->cap, x->n + 1)) {
		x->err = SL_ENOMEM;
		return 1;
	}
	struct fe_cons_row *r = &x->v[x->n++];
	memset(r, 0, sizeof(*r));
	snprintf(r->name, sizeof(r->name), "%s", sc->name);
	snprintf(r->topic, sizeof(r->topic), "%s", sc->topic);
	r->webhook = store_webhook_get(x->t, sc->name, strlen(sc->name), &wh) == SL_OK;
	int have_tp = fe_topic_get(x->fe, x->t, sc->topic, &tp) == SL_OK && tp.topic_id == sc->topic_id;
	for (uint32_t i = 0; i < sc->partitions; i++)
		row_partition(x, sc, &tp, have_tp, i, r);
	return 0;
}

int fe_cons_collect(struct fe *fe, struct fe_cons_row **rows, size_t *n)
{
	struct collect_ctx x = {fe, NULL, NULL, 0, 0, SL_OK};
	int rc = store_txn_begin(fe->store, 0, &x.t);
	if (rc == SL_OK)
		rc = store_consumer_foreach(x.t, collect_cb, &x);
	if (x.t)
		store_txn_abort(x.t);
	if (rc == SL_OK)
		rc = x.err;
	if (rc) {
		free(x.v);
		return rc;
	}
	*rows = x.v;
	*n = x.n;
	return SL_OK;
}
