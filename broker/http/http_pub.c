/*
 * http_pub.c: POST /v1/topics/{topic}/messages and GET /v1/operations/{id}.
 *
 * A publish becomes a native Publish (one message: the body) or PublishBatch
 * (an application/x-ndjson body, one {key, headers, payload} per line) and
 * takes the native path, so it is answered 201 only once committed, exactly
 * like a native PublishAck.
 *
 * Idempotency-Key: the key is hashed into a producer id, with sequence 1,
 * so the log's de-duplication (per producer, topic and partition space, for
 * storage.dedup_window_ms) stores a retried POST once and answers the retry
 * with the original position.
 *
 * 202 operations (Prefer: respond-async): the publish gets a producer id of
 * its own (or the Idempotency-Key's) and the operation id encodes producer
 * id, sequence, partition space, count, creation time and topic. A poll on
 * any node looks that dedup entry up in its own replicated store: found is
 * committed; not found is pending until operation_pending_ms after creation,
 * then failed; past the dedup window the operation is unknown (404).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <jansson.h>

#include "auth_perm.h"
#include "config.h"
#include "err.h"
#include "http_int.h"
#include "shm.h"
#include "log.h"
#include "pubbatch.h"
#include "ringmsg.h"
#include "store.h"

#define HTTP_PUB_HEADERS_MAX 64
#define HTTP_IDEM_KEY_MAX 255

/* ---------- publish ---------- */

struct pub_opts {
	char key[HTTP_QUERY_VALUE_MAX];
	size_t key_len;
	int has_partition;
	uint32_t partition;
	uint64_t producer_id, sequence;
	int async;
	long wait_s;
	char callback[RM_CALLBACK_URL_MAX + 1]; /* "": none */
	int64_t created_ms;                     /* of the 202 operation */
	Sluice__Header hdrs[HTTP_PUB_HEADERS_MAX];
	Sluice__Header *hptrs[HTTP_PUB_HEADERS_MAX];
	char hkeys[HTTP_PUB_HEADERS_MAX][256];
	size_t nh;
};

static int add_msg_header(struct pub_opts *o, const char *name, size_t nl, const char *val, size_t vl)
{
	size_t i;

	if (o->nh >= HTTP_PUB_HEADERS_MAX || nl == 0 || nl > 255)
		return -1;
	for (i = 0; i < nl; i++)
		o->hkeys[o->nh][i] = (char)(name[i] | ((name[i] >= 'A' && name[i] <= 'Z') ? 0x20 : 0));
	o->hkeys[o->nh][nl] = 0;
	sluice__header__init(&o->hdrs[o->nh]);
	o->hdrs[o->nh].key = o->hkeys[o->nh];
	o->hdrs[o->nh].value.data = (uint8_t *)val;
	o->hdrs[o->nh].value.len = vl;
	o->hptrs[o->nh] = &o->hdrs[o->nh];
	o->nh++;
	return 0;
}

static uint64_t idem_producer(const char *k, size_t n)
{
	uint64_t h = 1469598103934665603ull ^ 0x5a17ce1de3u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)k[i]) * 1099511628211ull;
	return h | 1ull << 62;
}

struct qhdr_ctx {
	struct pub_opts *o;
	struct http_req *r;
	int bad;
};

/* header.NAME=value query parameters become message headers. */
static int query_header_cb(void *arg, const char *name, const char *value)
{
	struct qhdr_ctx *x = arg;

	if (strncmp(name, "header.", 7) != 0)
		return 0;
	/* values live in the request: copy into the head arena is not possible; keep a strdup'd pair */
	char *v = strdup(value);
	if (!v || x->r->nparams >= HTTP_PARAMS_MAX ||
	    add_msg_header(x->o, name + 7, strlen(name + 7), v, strlen(v)) < 0) {
		free(v);
		x->bad = 1;
		return 1;
	}
	x->r->params[x->r->nparams++] = v; /* freed with the request */
	return 0;
}

/* Key, partition, headers, Idempotency-Key and Prefer, from headers or the query. */
static int pub_options(struct http_req *r, struct pub_opts *o, int ndjson)
{
	char part[32];
	size_t vl;
	const char *v;
	struct qhdr_ctx qx = {o, r, 0};
	uint64_t p;

	memset(o, 0, sizeof(*o));
	o->wait_s = -1;
	if ((v = http_req_header(r, "sluice-key", &vl)) && vl < sizeof(o->key)) {
		memcpy(o->key, v, vl);
		o->key_len = vl;
	} else if (http_query_get(r->query, r->query_len, "key", o->key, sizeof(o->key)) == 1) {
		o->key_len = strlen(o->key);
	}
	part[0] = 0;
	if ((v = http_req_header(r, "sluice-partition", &vl)) && vl < sizeof(part)) {
		memcpy(part, v, vl);
		part[vl] = 0;
	} else if (http_query_get(r->query, r->query_len, "partition", part, sizeof(part)) < 0) {
		return -1;
	}
	if (part[0]) {
		if (http_parse_u64(part, &p) < 0 || p >= UINT32_MAX)
			return -1;
		o->has_partition = 1;
		o->partition = (uint32_t)p;
	}
	for (uint32_t i = 0; i < r->nhdrs; i++) {
		const struct http_hdr *h = &r->hdrs[i];
		const char *n = r->head + h->name_off;
		if (h->name_len > 14 && strncasecmp(n, "sluice-header-", 14) == 0) {
			if (add_msg_header(o, n + 14, h->name_len - 14, r->head + h->val_off, h->val_len) < 0)
				return -1;
		} else if (!ndjson && h->name_len == 12 && strncasecmp(n, "content-type", 12) == 0) {
			if (add_msg_header(o, "content-type", 12, r->head + h->val_off, h->val_len) < 0)
				return -1;
		}
	}
	if (http_query_each(r->query, r->query_len, query_header_cb, &qx) < 0 || qx.bad)
		return -1;
	if ((v = http_req_header(r, "idempotency-key", &vl))) {
		if (vl == 0 || vl > HTTP_IDEM_KEY_MAX)
			return -1;
		o->producer_id = idem_producer(v, vl);
		o->sequence = 1;
	}
	if ((v = http_req_header(r, "prefer", NULL)))
		http_parse_prefer(v, &o->async, &o->wait_s);
	if ((v = http_req_header(r, "sluice-callback", &vl))) {
		if (vl == 0 || vl >= sizeof(o->callback))
			return -1;
		memcpy(o->callback, v, vl);
		o->callback[vl] = 0;
	} else if (http_query_get(r->query, r->query_len, "callback", o->callback, sizeof(o->callback)) < 0) {
		return -1;
	}
	if (o->callback[0])
		o->async = 1; /* a callback makes it an operation, answered 202 (or 201 within Prefer's wait) */
	return 0;
}

/* The topic exists here and the partition is in range (202 answers need it). */
static int pub_target_check(struct http_req *r, const struct pub_opts *o)
{
	struct fe *fe = r->conn->fe;
	struct store_txn *t = NULL;
	struct store_topic tp;
	int rc = store_txn_begin(fe->store, 0, &t);

	if (rc == SL_OK)
		rc = fe_topic_get(fe, t, r->topic, &tp);
	if (t)
		store_txn_abort(t);
	if (rc == SL_OK && o->has_partition && o->partition >= tp.partitions)
		rc = SL_EINVAL;
	return rc;
}

static json_t *op_json(const char *id, const char *status, const struct http_op *op, int64_t updated)
{
	return json_pack("{s:s,s:s,s:s,s:n,s:n,s:n,s:i,s:I,s:I}", "id", id, "status", status, "topic", op->topic,
	                 "partition", "offset", "error", "count", (int)op->count, "created", (json_int_t)op->created_ms,
	                 "updated", (json_int_t)updated);
}

static void respond_accepted(struct http_req *r)
{
	struct http_op op;

	if (http_op_decode(r->op_id, &op) != SL_OK) {
		http_problem(r, 500, SL_EINTERNAL, "operation id");
		return;
	}
	http_add_header(r, "Location", "/v1/operations/%s", r->op_id);
	http_add_header(r, "Retry-After", "1");
	http_add_header(r, "Preference-Applied", "respond-async");
	http_respond_json(r, 202, op_json(r->op_id, "pending", &op, op.created_ms));
}

static void wait_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_req *r = arg;

	if (!r->answered)
		respond_accepted(r); /* the ack, if it comes, finds no request and is dropped */
}

/* The NDJSON body as records, read where its chains lie (no copy of the whole body). */
static int pub_ndjson(struct http_req *r, uint8_t **recs, size_t *rl, uint32_t *count, char *why, size_t why_cap)
{
	int nv = evbuffer_peek(r->body, -1, NULL, NULL, 0), rc;
	struct evbuffer_iovec *v = calloc(nv > 0 ? (size_t)nv : 1, sizeof(*v));
	struct slice *parts = calloc(nv > 0 ? (size_t)nv : 1, sizeof(*parts));

	if (!v || !parts) {
		free(v);
		free(parts);
		snprintf(why, why_cap, "out of memory");
		return SL_ENOMEM;
	}
	nv = nv > 0 ? evbuffer_peek(r->body, -1, NULL, v, nv) : 0;
	for (int i = 0; i < nv; i++)
		parts[i] = slice_make(v[i].iov_base, v[i].iov_len);
	rc = http_ndjson_records(parts, (size_t)(nv > 0 ? nv : 0), recs, rl, count, why, why_cap);
	free(v);
	free(parts);
	return rc;
}

/* Frame for one message (the body) or a batch (NDJSON records in *recs). */
static int pub_frame(struct http_req *r, struct pub_opts *o, int ndjson, Sluice__Publish *m,
                     Sluice__PublishBatch *b, Sluice__Frame *f, uint8_t **recs, char *why, size_t why_cap)
{
	size_t rl = 0;
	uint32_t count = 0;
	int rc;

	if (!ndjson) {
		size_t blen = evbuffer_get_length(r->body);
		m->topic = r->topic;
		m->key.data = (uint8_t *)o->key;
		m->key.len = o->key_len;
		m->has_partition = o->has_partition;
		m->partition = o->partition;
		m->n_headers = o->nh;
		m->headers = o->hptrs;
		m->payload.data = blen ? evbuffer_pullup(r->body, -1) : (uint8_t *)"";
		m->payload.len = blen;
		m->producer_id = o->producer_id;
		m->sequence = o->sequence;
		r->count = 1;
		f->body_case = SLUICE__FRAME__BODY_PUBLISH;
		f->publish = m;
		return SL_OK;
	}
	if ((rc = pub_ndjson(r, recs, &rl, &count, why, why_cap)) != SL_OK)
		return rc;
	b->topic = r->topic;
	b->has_partition = o->has_partition;
	b->partition = o->partition;
	b->producer_id = o->producer_id;
	b->base_sequence = o->sequence;
	b->count = count;
	b->records.data = *recs;
	b->records.len = rl;
	b->crc32c = store_crc32c(0, *recs, rl);
	r->count = count;
	f->body_case = SLUICE__FRAME__BODY_PUBLISH_BATCH;
	f->publish_batch = b;
	return SL_OK;
}

/* Prefer: respond-async: a producer id for the operation and its id. */
static int pub_async_prepare(struct http_req *r, struct pub_opts *o)
{
	struct http_op op;
	int rc = pub_target_check(r, o);

	if (rc != SL_OK) {
		http_problem(r, 0, rc, rc == SL_EINVAL ? "partition out of range" : sl_strerror(rc));
		return -1;
	}
	if (!o->producer_id) {
		if (getrandom(&o->producer_id, sizeof(o->producer_id), 0) != sizeof(o->producer_id))
			o->producer_id = r->conn->fe->http->producer_id ^ ++r->conn->fe->http->sequence;
		o->producer_id |= 1ull << 63;
		o->sequence = 1;
	}
	memset(&op, 0, sizeof(op));
	op.producer_id = o->producer_id;
	op.sequence = o->sequence;
	op.space = o->has_partition ? o->partition : STORE_DEDUP_SPACE_ANY;
	op.count = r->count;
	op.created_ms = o->created_ms = time_now_ms();
	snprintf(op.topic, sizeof(op.topic), "%s", r->topic);
	return http_op_encode(&op, r->op_id, sizeof(r->op_id)) == SL_OK ? 0 : -1;
}

void http_on_publish(struct http_req *r)
{
	Sluice__Publish m = SLUICE__PUBLISH__INIT;
	Sluice__PublishBatch b = SLUICE__PUBLISH_BATCH__INIT;
	Sluice__Frame f = SLUICE__FRAME__INIT;
	Sluice__Callback cb = SLUICE__CALLBACK__INIT;
	struct pub_opts *o = calloc(1, sizeof(*o));
	uint8_t *recs = NULL;
	const char *ct;
	char why[256];
	size_t ctl = 0;
	int ndjson, rc;

	if (!o) {
		http_problem(r, 500, SL_EINTERNAL, "out of memory");
		return;
	}
	if (http_topic_param(r, r->params[0], r->topic, sizeof(r->topic)) < 0)
		goto out;
	ct = http_req_header(r, "content-type", &ctl);
	ndjson = ct && ctl >= 20 && strncasecmp(ct, "application/x-ndjson", 20) == 0;
	if (pub_options(r, o, ndjson) < 0) {
		http_problem(r, 400, SL_EINVAL,
		             "bad Sluice-Partition, Sluice-Header-*, Sluice-Callback (1 to 2048 bytes), "
		             "Idempotency-Key (1 to 255 bytes) or query");
		goto out;
	}
	if ((rc = pub_frame(r, o, ndjson, &m, &b, &f, &recs, why, sizeof(why))) != SL_OK) {
		http_problem(r, rc == SL_ETOOLARGE ? 413 : rc == SL_ENOMEM ? 500 : 400, rc, why);
		goto out;
	}
	if (o->async && pub_async_prepare(r, o) < 0)
		goto out;
	m.producer_id = b.producer_id = o->producer_id;
	m.sequence = b.base_sequence = o->sequence;
	if (o->callback[0]) {
		/* the frontend checks the URL; a refusal answers this request at once */
		cb.url = o->callback;
		cb.operation_id = r->op_id;
		cb.created_ms = o->created_ms;
		m.callback = b.callback = &cb;
	}
	if (o->async || http_req_header(r, "prefer", NULL))
		http_add_header(r, "Vary", "Prefer");
	if ((rc = http_dispatch(r, ndjson ? HK_BATCH : HK_PUBLISH, &f)) != SL_OK) {
		http_problem(r, 500, SL_EINTERNAL, sl_strerror(rc));
		goto out;
	}
	if (o->async && !r->answered) {
		if (o->wait_s <= 0) {
			respond_accepted(r);
		} else {
			struct timeval tv = {o->wait_s, 0};
			r->wait_ev = evtimer_new(r->conn->fe->base, wait_cb, r);
			if (!r->wait_ev || evtimer_add(r->wait_ev, &tv) != 0)
				respond_accepted(r);
		}
	}
out:
	free(recs);
	free(o);
}

static json_t *result_json(const struct http_req *r, uint32_t part, uint64_t off, int64_t ts, uint64_t term,
                           uint64_t idx, int dup)
{
	return json_pack("{s:s,s:i,s:I,s:I,s:I,s:I,s:b}", "topic", r->topic, "partition", (int)part, "offset",
	                 (json_int_t)off, "timestamp", (json_int_t)ts, "term", (json_int_t)term, "log_index",
	                 (json_int_t)idx, "duplicate", dup);
}

/* Decimal of v at o (at most 20 bytes); returns the length. */
static size_t put_u64(char *o, uint64_t v)
{
	char t[20];
	size_t n = 0, i;

	do {
		t[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (i = 0; i < n; i++)
		o[i] = t[n - 1 - i];
	return n;
}

/* 201 {"results":[...]}: the same bytes result_json would give for each
 * message, but only the offset differs between them, so the rest is
 * rendered once and the offsets written by hand (a batch has up to 65,536). */
static void batch_answer(struct http_req *r, const Sluice__PublishBatchAck *a)
{
	json_t *t = json_string(r->topic);
	char *topic = t ? json_dumps(t, JSON_ENCODE_ANY) : NULL, *out = NULL, pre[400], post[160];
	int pl, sl;
	size_t n = 0;

	json_decref(t);
	pl = topic ? snprintf(pre, sizeof(pre), "{\"topic\":%s,\"partition\":%d,\"offset\":", topic, (int)a->partition)
	           : -1;
	sl = snprintf(post, sizeof(post), ",\"timestamp\":%lld,\"term\":%lld,\"log_index\":%lld,\"duplicate\":%s}",
	              (long long)a->timestamp_ms, (long long)a->term, (long long)a->log_index,
	              a->duplicate ? "true" : "false");
	free(topic);
	if (pl > 0 && (size_t)pl < sizeof(pre) && sl > 0 && (size_t)sl < sizeof(post))
		out = malloc(16 + (size_t)a->count * ((size_t)pl + (size_t)sl + 21));
	if (!out) {
		http_problem(r, 500, SL_ENOMEM, "out of memory");
		return;
	}
	memcpy(out, "{\"results\":[", 12);
	n = 12;
	for (uint32_t i = 0; i < a->count; i++) {
		if (i)
			out[n++] = ',';
		memcpy(out + n, pre, (size_t)pl);
		n += (size_t)pl;
		n += put_u64(out + n, a->base_offset + i);
		memcpy(out + n, post, (size_t)sl);
		n += (size_t)sl;
	}
	memcpy(out + n, "]}", 2);
	http_respond(r, 201, "application/json", out, n + 2);
	free(out);
}

void http_publish_answered(struct http_req *r, const Sluice__Frame *f)
{
	if (r->kind == HK_PUBLISH && f->body_case == SLUICE__FRAME__BODY_PUBLISH_ACK) {
		const Sluice__PublishAck *a = f->publish_ack;
		http_add_header(r, "Location", "/v1/topics/%s/messages/%u/%llu", r->topic, a->partition,
		                (unsigned long long)a->offset);
		http_respond_json(r, 201,
		                  result_json(r, a->partition, a->offset, a->timestamp_ms, a->term, a->log_index, a->duplicate));
		return;
	}
	if (r->kind == HK_BATCH && f->body_case == SLUICE__FRAME__BODY_PUBLISH_BATCH_ACK) {
		const Sluice__PublishBatchAck *a = f->publish_batch_ack;
		http_add_header(r, "Location", "/v1/topics/%s/messages/%u/%llu", r->topic, a->partition,
		                (unsigned long long)a->base_offset);
		batch_answer(r, a);
		return;
	}
	http_problem(r, 500, SL_EINTERNAL, "unexpected answer to a publish");
}

/* ---------- polling ---------- */

/* 1 if offset of partition p of tp is below the committed end this node
 * publishes (readers see only that; the log may hold more, uncommitted). */
static int op_visible(struct fe *fe, const struct store_topic *tp, uint32_t p, uint64_t offset)
{
	uint64_t end;
	return p < tp->partitions && fe_partition_end(fe, tp, p, &end) == SL_OK && offset < end;
}

void http_on_operation(struct http_req *r)
{
	struct fe *fe = r->conn->fe;
	struct store_txn *t = NULL;
	struct store_topic tp;
	struct store_dedup d;
	struct http_op op;
	uint64_t off = 0;
	int64_t now = time_now_ms(), age;
	int rc;
	json_t *j;

	if (http_op_decode(r->params[0], &op) != SL_OK) {
		http_problem(r, 404, SL_ENOTFOUND, "no such operation");
		return;
	}
	if (http_auth_need(r, AUTH_VERB_SUBSCRIBE, op.topic) < 0)
		return;
	age = now - op.created_ms;
	rc = store_txn_begin(fe->store, 0, &t);
	if (rc == SL_OK)
		rc = fe_topic_get(fe, t, op.topic, &tp);
	if (rc == SL_OK)
		rc = store_dedup_get(t, op.producer_id, tp.topic_id, op.space, op.sequence, &d, &off);
	if (t)
		store_txn_abort(t);
	if (rc == SL_OK && !op_visible(fe, &tp, d.partition, off)) {
		/* stored by the leader when it appended it, not committed yet: a
		 * lost election could still take it back */
		http_add_header(r, "Retry-After", "1");
		http_respond_json(r, 200, op_json(r->params[0], "pending", &op, now));
		return;
	}
	if (rc == SL_OK) {
		j = op_json(r->params[0], "committed", &op, d.ts_ms);
		json_object_set_new(j, "partition", json_integer(d.partition));
		json_object_set_new(j, "offset", json_integer((json_int_t)off));
		http_respond_json(r, 200, j);
		return;
	}
	if (rc != SL_ENOTFOUND && rc != SL_ENOTOPIC) {
		http_problem(r, 0, rc == SL_ECORRUPT ? SL_EINTERNAL : rc, sl_strerror(rc));
		return;
	}
	if (fe->cfg->dedup_window_ms > 0 && age > fe->cfg->dedup_window_ms) {
		http_problem(r, 404, SL_ENOTFOUND, "operation expired (older than storage.dedup_window_ms)");
		return;
	}
	if (age < (int64_t)fe->cfg->operation_pending_ms && rc == SL_ENOTFOUND) {
		http_add_header(r, "Retry-After", "1");
		http_respond_json(r, 200, op_json(r->params[0], "pending", &op, now));
		return;
	}
	j = op_json(r->params[0], "failed", &op, now);
	json_object_set_new(j, "error",
	                    json_string(rc == SL_ENOTOPIC ? "topic does not exist"
	                                                  : "not stored within operation_pending_ms; publish it again"));
	http_respond_json(r, 200, j);
}
