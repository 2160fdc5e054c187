/*
 * frontend.c: one frontend process (see frontend.h). A libevent loop that
 * accepts native-protocol connections, frames and decodes requests, turns
 * publishes, admin requests and leadership transfers into ring records for
 * the logwriter and matches the acks that come back on the ack ring. Reads
 * are in fe_read.c, metadata and cluster status in fe_admin.c.
 *
 * Caveats:
 * - LMDB is opened here, after fork, read-only, once the logwriter says its
 *   environment exists (shm logwriter_ready).
 * - A full publish ring is backpressure: reading stops on every connection
 *   and the one frame that did not fit is kept and retried on a 1 ms timer.
 *   Nothing is dropped and the loop never blocks.
 * - Cookies carry our generation in the top 16 bits, so acks meant for a
 *   previous incarnation of this frontend are unknown and ignored.
 * - Connections are never freed in their own callbacks: conn_close marks them
 *   and the reaper event frees them (with their pending requests) later.
 * - With [tls] on, both listeners hand out TLS bufferevents (fe_tls.c); the
 *   rest of the frontend sees the same bufferevent API. SIGHUP builds a new
 *   context for new connections; open ones keep theirs.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "auth_principal.h"
#include "codec.h"
#include "config.h"
#include "err.h"
#include "fe_auth.h"
#include "fe_http.h"
#include "fe_int.h"
#include "fe_pages.h"
#include "fe_tls.h"
#include "tls.h"
#include "frontend.h"
#include "log.h"
#include "ring.h"
#include "pubbatch.h"
#include "ringmsg.h"
#include "shm.h"
#include "sl_assert.h"
#include "store.h"
#include "wh_deliver.h"

#define FE_READY_WAIT_MS 60000
#define FE_OPEN_RETRY_MS 10000
#define FE_TICK_MS 100
#define FE_FLUSH_TIMEOUT_S 5
#define FE_PENDING_BUCKETS_MIN 1024

static void conn_process_input(struct fe_conn *c);
static void conn_close(struct fe_conn *c);

static struct timeval tv_ms(long ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	return tv;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* ---------- sending ---------- */

Sluice__ErrorCode fe_error_code(int err)
{
	if (sl_err_is_wire(err))
		return (Sluice__ErrorCode)err;
	return SLUICE__ERROR_CODE__INTERNAL;
}

void fe_send(struct fe_conn *c, const Sluice__Frame *f)
{
	struct evbuffer_iovec v;
	size_t n, w;

	if (c->dead || c->lingering)
		return;
	if (c->http) {
		fe_http_on_frame(c, f);
		return;
	}
	n = codec_frame_size(f);
	/* one contiguous reservation: the frame is packed straight into the output buffer */
	if (evbuffer_reserve_space(bufferevent_get_output(c->bev), n, &v, 1) < 1 || v.iov_len < n) {
		log_error("out of memory queueing a %zu-byte frame; closing connection", n);
		conn_close(c);
		return;
	}
	w = codec_frame_encode(f, v.iov_base);
	v.iov_len = w;
	evbuffer_commit_space(bufferevent_get_output(c->bev), &v, 1);
}

void fe_send_error(struct fe_conn *c, uint64_t id, int err, const char *msg)
{
	fe_send_error_retry(c, id, err, msg, 0);
}

void fe_send_error_retry(struct fe_conn *c, uint64_t id, int err, const char *msg, uint32_t retry_after_ms)
{
	Sluice__Error e = SLUICE__ERROR__INIT;
	Sluice__Frame f = SLUICE__FRAME__INIT;

	e.code = fe_error_code(err);
	e.message = (char *)(msg ? msg : sl_strerror(err));
	e.retry_after_ms = retry_after_ms;
	f.id = id;
	f.body_case = SLUICE__FRAME__BODY_ERROR;
	f.error = &e;
	fe_send(c, &f);
}

void fe_send_ok(struct fe_conn *c, uint64_t id)
{
	Sluice__Ok ok = SLUICE__OK__INIT;
	Sluice__Frame f = SLUICE__FRAME__INIT;

	f.id = id;
	f.body_case = SLUICE__FRAME__BODY_OK;
	f.ok = &ok;
	fe_send(c, &f);
}

/*
 * Output is flushed: half-close and discard input until the peer closes.
 * Closing a socket with unread input sends RST, and an RST makes the peer's
 * kernel drop answers it has not read yet (the Error we just sent, or acks).
 */
static void conn_linger(struct fe_conn *c)
{
	struct timeval tv = {FE_FLUSH_TIMEOUT_S, 0};

	c->closing = 1;
	c->lingering = 1;
	fe_tls_shutdown_write(c->bev);
	evbuffer_drain(bufferevent_get_input(c->bev), evbuffer_get_length(bufferevent_get_input(c->bev)));
	bufferevent_set_timeouts(c->bev, &tv, NULL);
	bufferevent_enable(c->bev, EV_READ);
}

/* Close once what is queued is flushed (or after a timeout). */
void fe_conn_finish(struct fe_conn *c)
{
	struct timeval tv = {FE_FLUSH_TIMEOUT_S, 0};

	if (c->dead || c->closing)
		return;
	c->closing = 1;
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
		conn_linger(c);
		return;
	}
	bufferevent_disable(c->bev, EV_READ);
	bufferevent_set_timeouts(c->bev, NULL, &tv);
	bufferevent_enable(c->bev, EV_WRITE);
}

/* Send an error, then close once it is flushed (or after a timeout). */
static void conn_fatal(struct fe_conn *c, uint64_t id, int err, const char *msg)
{
	struct timeval tv = {FE_FLUSH_TIMEOUT_S, 0};

	fe_send_error(c, id, err, msg);
	if (c->dead)
		return;
	c->closing = 1;
	bufferevent_disable(c->bev, EV_READ);
	bufferevent_set_timeouts(c->bev, NULL, &tv);
	bufferevent_enable(c->bev, EV_WRITE);
}

/* ---------- pending requests: cookie -> (conn, request id, kind) ---------- */

static size_t pending_slot(const struct fe *fe, uint64_t cookie)
{
	return (size_t)((cookie * 0x9E3779B97F4A7C15ull) >> 32) & (fe->nbuckets - 1);
}

static void pending_grow(struct fe *fe)
{
	size_t n = fe->nbuckets * 2, i;
	struct fe_pending **nb = calloc(n, sizeof(*nb));
	struct fe_pending **old = fe->buckets;
	size_t oldn = fe->nbuckets;

	if (!nb)
		return; /* keep the longer chains; still correct */
	fe->buckets = nb;
	fe->nbuckets = n;
	for (i = 0; i < oldn; i++) {
		struct fe_pending *p = old[i], *next;
		for (; p; p = next) {
			size_t s = pending_slot(fe, p->cookie);
			next = p->hnext;
			p->hnext = nb[s];
			nb[s] = p;
		}
	}
	free(old);
}

/* Link p (allocated by the caller before the request went into the ring,
 * so that a request in the ring always has its answer slot) under cookie. */
static void pending_add(struct fe *fe, struct fe_pending *p, struct fe_conn *c, uint64_t cookie, uint64_t req_id,
			enum fe_pending_kind kind, const Sluice__Frame *f)
{
	size_t s;

	if (fe->npending >= fe->nbuckets)
		pending_grow(fe);
	memset(p, 0, sizeof(*p));
	p->cookie = cookie;
	p->req_id = req_id;
	p->conn = c;
	p->kind = kind;
	p->created_ms = time_now_ms();
	p->submitted_ns = time_mono_ns();
	if (f->body_case == SLUICE__FRAME__BODY_PUBLISH) {
		const Sluice__Publish *m = f->publish;
		p->producer_id = m->producer_id;
		p->space = fe_fence_space(m->topic, m->has_partition, m->partition);
		p->sequence = m->sequence;
	} else if (f->body_case == SLUICE__FRAME__BODY_PUBLISH_BATCH) {
		const Sluice__PublishBatch *b = f->publish_batch;
		p->producer_id = b->producer_id;
		p->space = fe_fence_space(b->topic, b->has_partition, b->partition);
		p->sequence = b->base_sequence;
	}
	s = pending_slot(fe, cookie);
	p->hnext = fe->buckets[s];
	fe->buckets[s] = p;
	TAILQ_INSERT_TAIL(&fe->pending_fifo, p, age);
	TAILQ_INSERT_TAIL(&c->pending, p, by_conn);
	c->npending++;
	fe->npending++;
}

/* Unlink p from every index; the caller frees it. */
static void pending_unlink(struct fe *fe, struct fe_pending *p)
{
	struct fe_pending **pp = &fe->buckets[pending_slot(fe, p->cookie)];

	while (*pp && *pp != p)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = p->hnext;
	TAILQ_REMOVE(&fe->pending_fifo, p, age);
	TAILQ_REMOVE(&p->conn->pending, p, by_conn);
	p->conn->npending--;
	fe->npending--;
}

static struct fe_pending *pending_find(struct fe *fe, uint64_t cookie)
{
	struct fe_pending *p = fe->buckets[pending_slot(fe, cookie)];

	while (p && p->cookie != cookie)
		p = p->hnext;
	return p;
}

static struct fe_pending *pending_take(struct fe *fe, uint64_t cookie)
{
	struct fe_pending *p = pending_find(fe, cookie);

	if (p)
		pending_unlink(fe, p);
	return p;
}

static void pending_free(struct fe_pending *p)
{
	fe_cons_pending_free(p);
	free(p);
}

/* ---------- publish and admin requests into the pub ring ---------- */

struct fe_req {
	uint16_t type;
	uint32_t len;
	enum fe_pending_kind kind;
};

static int req_name_ok(const char *s, size_t max)
{
	size_t n = strlen(s);
	return n > 0 && n <= max;
}

/* Where a publish or a batch goes: a topic name and, if given, a partition. */
static int req_target_ok(const char *topic, int has_partition, uint32_t partition, const char **why)
{
	if (has_partition && partition == RM_PARTITION_ANY) {
		/* the ring's "no partition" value: never a partition number */
		*why = "partition out of range";
		return SL_EINVAL;
	}
	if (!req_name_ok(topic, RM_TOPIC_NAME_MAX)) {
		*why = "topic name must be 1 to 249 bytes";
		return SL_EINVAL;
	}
	return SL_OK;
}

static int req_size_publish(const struct fe *fe, const Sluice__Publish *p, struct fe_req *r, const char **why)
{
	size_t total = sizeof(struct rm_publish), i;
	int rc = req_target_ok(p->topic, p->has_partition, p->partition, why);

	if (rc != SL_OK)
		return rc;
	total += strlen(p->topic) + p->key.len + p->payload.len;
	for (i = 0; i < p->n_headers; i++) {
		size_t klen = strlen(p->headers[i]->key);
		if (klen > 255) {
			*why = "header key longer than 255 bytes";
			return SL_EINVAL;
		}
		total += hdrs_entry_bytes(klen, p->headers[i]->value.len);
	}
	if (total > ring_payload_max(shm_pub_ring(fe->shm, fe->index))) {
		*why = "message too large for this node's ring_bytes";
		return SL_EINVAL;
	}
	r->type = RM_PUBLISH;
	r->len = (uint32_t)total;
	r->kind = FE_PENDING_PUBLISH;
	return SL_OK;
}

/* A batch is checked once here (lengths, count, checksum, header blobs)
 * and travels as one ring record: no protobuf object per message. */
static int req_size_batch(const struct fe *fe, const Sluice__PublishBatch *b, struct fe_req *r, const char **why)
{
	struct slice recs = slice_make(b->records.data, b->records.len);
	size_t total;
	int rc;

	if ((rc = req_target_ok(b->topic, b->has_partition, b->partition, why)) != SL_OK)
		return rc;
	if (b->producer_id && b->base_sequence > UINT64_MAX - b->count) {
		*why = "base_sequence + count overflows";
		return SL_EINVAL;
	}
	if ((rc = pubbatch_check(recs, b->count, why)) != SL_OK)
		return rc;
	if (store_crc32c(0, recs.base, recs.len) != b->crc32c) {
		*why = "crc32c does not match the records";
		return SL_EMALFORMED;
	}
	total = sizeof(struct rm_publish_batch) + strlen(b->topic) + recs.len;
	if (total > ring_payload_max(shm_pub_ring(fe->shm, fe->index))) {
		*why = "batch too large for this node's ring_bytes";
		return SL_EINVAL;
	}
	r->type = RM_PUBLISH_BATCH;
	r->len = (uint32_t)total;
	r->kind = FE_PENDING_BATCH;
	return SL_OK;
}

/* Validate a ring-bound request and compute its record size. */
static int req_size(const struct fe *fe, const Sluice__Frame *f, struct fe_req *r, const char **why)
{
	r->kind = FE_PENDING_OK;
	*why = NULL;
	switch (f->body_case) {
	case SLUICE__FRAME__BODY_PUBLISH:
		return req_size_publish(fe, f->publish, r, why);
	case SLUICE__FRAME__BODY_PUBLISH_BATCH:
		return req_size_batch(fe, f->publish_batch, r, why);
	case SLUICE__FRAME__BODY_CREATE_TOPIC: {
		const Sluice__TopicConfig *tc = f->create_topic->config;
		if (!req_name_ok(f->create_topic->name, RM_TOPIC_NAME_MAX)) {
			*why = "topic name must be 1 to 249 bytes";
			return SL_EINVAL;
		}
		if (tc && (tc->retention_ms < 0 || tc->retention_bytes < 0)) {
			*why = "retention must not be negative";
			return SL_EINVAL;
		}
		r->type = RM_CREATE_TOPIC;
		r->len = (uint32_t)(sizeof(struct rm_create_topic) + strlen(f->create_topic->name));
		return SL_OK;
	}
	case SLUICE__FRAME__BODY_DELETE_TOPIC:
		if (!req_name_ok(f->delete_topic->name, RM_TOPIC_NAME_MAX)) {
			*why = "topic name must be 1 to 249 bytes";
			return SL_EINVAL;
		}
		r->type = RM_DELETE_TOPIC;
		r->len = (uint32_t)(sizeof(struct rm_delete_topic) + strlen(f->delete_topic->name));
		return SL_OK;
	case SLUICE__FRAME__BODY_COMMIT_OFFSET:
		if (!req_name_ok(f->commit_offset->topic, RM_TOPIC_NAME_MAX) ||
		    !req_name_ok(f->commit_offset->group, RM_GROUP_NAME_MAX)) {
			*why = "topic and group names must be 1 to 249 bytes";
			return SL_EINVAL;
		}
		r->type = RM_COMMIT_OFFSET;
		r->len = (uint32_t)(sizeof(struct rm_commit_offset) + strlen(f->commit_offset->topic) +
		                    strlen(f->commit_offset->group));
		return SL_OK;
	case SLUICE__FRAME__BODY_TRANSFER_LEADER:
		if (!fe_cluster_has_node(fe, f->transfer_leader->to)) {
			*why = "no node with that id in the cluster";
			return SL_EINVAL;
		}
		r->type = RM_TRANSFER_LEADER;
		r->len = (uint32_t)sizeof(struct rm_transfer_leader);
		return SL_OK;
	default:
		if (f->body_case == SLUICE__FRAME__BODY_PULL)
			r->kind = FE_PENDING_PULL;
		return fe_cons_req_size(f, &r->type, &r->len, why);
	}
}

static uint8_t *put_bytes(uint8_t *p, const void *src, size_t n)
{
	if (n)
		memcpy(p, src, n);
	return p + n;
}

static void fill_publish(uint8_t *p, const Sluice__Publish *m, uint64_t cookie, uint16_t epoch)
{
	struct rm_publish h;
	size_t i, hl = 0;
	uint8_t *q;

	memset(&h, 0, sizeof(h));
	for (i = 0; i < m->n_headers; i++)
		hl += hdrs_entry_bytes(strlen(m->headers[i]->key), m->headers[i]->value.len);
	h.cookie = cookie;
	h.epoch = epoch;
	h.producer_id = m->producer_id;
	h.sequence = m->sequence;
	h.partition = m->has_partition ? m->partition : RM_PARTITION_ANY;
	h.key_len = (uint32_t)m->key.len;
	h.headers_len = (uint32_t)hl;
	h.payload_len = (uint32_t)m->payload.len;
	h.topic_len = (uint16_t)strlen(m->topic);
	q = put_bytes(p, &h, sizeof(h));
	q = put_bytes(q, m->topic, h.topic_len);
	q = put_bytes(q, m->key.data, m->key.len);
	for (i = 0; i < m->n_headers; i++)
		q += hdrs_put(q, slice_cstr(m->headers[i]->key),
		              slice_make(m->headers[i]->value.data, m->headers[i]->value.len));
	put_bytes(q, m->payload.data, m->payload.len);
}

static void fill_batch(uint8_t *p, const Sluice__PublishBatch *b, uint64_t cookie, uint16_t epoch)
{
	struct rm_publish_batch h;

	memset(&h, 0, sizeof(h));
	h.cookie = cookie;
	h.epoch = epoch;
	h.producer_id = b->producer_id;
	h.base_sequence = b->base_sequence;
	h.partition = b->has_partition ? b->partition : RM_PARTITION_ANY;
	h.count = b->count;
	h.records_len = (uint32_t)b->records.len;
	h.topic_len = (uint16_t)strlen(b->topic);
	put_bytes(put_bytes(put_bytes(p, &h, sizeof(h)), b->topic, h.topic_len), b->records.data, b->records.len);
}

static void fill_record(uint8_t *p, const Sluice__Frame *f, uint64_t cookie, uint16_t epoch)
{
	switch (f->body_case) {
	case SLUICE__FRAME__BODY_PUBLISH:
		fill_publish(p, f->publish, cookie, epoch);
		break;
	case SLUICE__FRAME__BODY_PUBLISH_BATCH:
		fill_batch(p, f->publish_batch, cookie, epoch);
		break;
	case SLUICE__FRAME__BODY_CREATE_TOPIC: {
		struct rm_create_topic h;
		const Sluice__TopicConfig *tc = f->create_topic->config;
		memset(&h, 0, sizeof(h));
		h.cookie = cookie;
		h.partitions = tc && tc->partitions ? tc->partitions : 1;
		h.retention_ms = tc ? tc->retention_ms : 0;
		h.retention_bytes = tc ? tc->retention_bytes : 0;
		h.name_len = (uint16_t)strlen(f->create_topic->name);
		put_bytes(put_bytes(p, &h, sizeof(h)), f->create_topic->name, h.name_len);
		break;
	}
	case SLUICE__FRAME__BODY_DELETE_TOPIC: {
		struct rm_delete_topic h;
		memset(&h, 0, sizeof(h));
		h.cookie = cookie;
		h.name_len = (uint16_t)strlen(f->delete_topic->name);
		put_bytes(put_bytes(p, &h, sizeof(h)), f->delete_topic->name, h.name_len);
		break;
	}
	case SLUICE__FRAME__BODY_COMMIT_OFFSET: {
		struct rm_commit_offset h;
		const Sluice__CommitOffset *m = f->commit_offset;
		memset(&h, 0, sizeof(h));
		h.cookie = cookie;
		h.offset = m->offset;
		h.partition = m->partition;
		h.topic_len = (uint16_t)strlen(m->topic);
		h.group_len = (uint16_t)strlen(m->group);
		put_bytes(put_bytes(put_bytes(p, &h, sizeof(h)), m->topic, h.topic_len), m->group, h.group_len);
		break;
	}
	case SLUICE__FRAME__BODY_TRANSFER_LEADER: {
		struct rm_transfer_leader h;
		memset(&h, 0, sizeof(h));
		h.cookie = cookie;
		h.to = f->transfer_leader->to;
		put_bytes(p, &h, sizeof(h));
		break;
	}
	default:
		fe_cons_fill(p, f, cookie);
		break;
	}
}

/* Admin records end with who asked (common/ringmsg.h): the logwriter audits
 * them and counts the topics each principal made. */
static size_t by_bytes(struct fe_conn *c, uint16_t type)
{
	return rm_by_len_at(type) ? strlen(fe_auth_principal(c)) : 0;
}

static void fill_by(uint8_t *p, struct fe_conn *c, uint16_t type, uint32_t len)
{
	size_t at = rm_by_len_at(type);
	const char *by = fe_auth_principal(c);
	uint16_t n = (uint16_t)strlen(by);

	if (!at)
		return;
	SL_ASSERT(n <= RM_BY_MAX && n <= len);
	memcpy(p + at, &n, sizeof(n));
	memcpy(p + len - n, by, n);
}

static void wake_logwriter(struct fe *fe)
{
	uint64_t one = 1;
	ssize_t n = write(fe->logwriter_efd, &one, sizeof(one));
	(void)n; /* EAGAIN means the counter is already non-zero: it is awake anyway */
}

static void fe_check_epoch(struct fe *fe);

uint64_t fe_fence_space(const char *topic, int has_partition, uint32_t partition)
{
	uint64_t h = 1469598103934665603ull;
	for (const char *p = topic; *p; p++)
		h = (h ^ (uint8_t)*p) * 1099511628211ull;
	return h * 31 + (has_partition ? partition : UINT32_MAX);
}

static struct fe_fence *fence_find(struct fe_conn *c, uint64_t pid, uint64_t space)
{
	for (size_t i = 0; i < FE_FENCES_MAX; i++)
		if (c->fences[i].until_ms && c->fences[i].pid == pid && c->fences[i].space == space)
			return &c->fences[i];
	return NULL;
}

/* A publish was answered UNAVAILABLE: fence its producer's sequence space
 * on its connection (or lower the sequence an active fence waits for). */
static void conn_fence(struct fe_pending *p)
{
	struct fe_conn *c = p->conn;
	int64_t now = time_now_ms();
	if ((p->kind != FE_PENDING_PUBLISH && p->kind != FE_PENDING_BATCH) || !p->producer_id)
		return;
	struct fe_fence *fc = fence_find(c, p->producer_id, p->space);
	if (fc && now < fc->until_ms) {
		if (p->sequence < fc->seq)
			fc->seq = p->sequence;
		fc->until_ms = now + FE_FENCE_MS;
		return;
	}
	if (!fc) {
		fc = &c->fences[0];
		for (size_t i = 0; i < FE_FENCES_MAX; i++) {
			if (c->fences[i].until_ms <= now) {
				fc = &c->fences[i];
				break;
			}
			if (c->fences[i].until_ms < fc->until_ms)
				fc = &c->fences[i];
		}
	}
	*fc = (struct fe_fence){p->producer_id, p->space, p->sequence, now + FE_FENCE_MS};
}

/* 1 if f must be refused because an earlier publish of its producer in the
 * same sequence space has to come first; the retry of the fenced sequence
 * lifts the fence. */
static int conn_fenced(struct fe_conn *c, const Sluice__Frame *f)
{
	uint64_t pid, space, seq;
	if (f->body_case == SLUICE__FRAME__BODY_PUBLISH) {
		const Sluice__Publish *m = f->publish;
		pid = m->producer_id;
		space = fe_fence_space(m->topic, m->has_partition, m->partition);
		seq = m->sequence;
	} else if (f->body_case == SLUICE__FRAME__BODY_PUBLISH_BATCH) {
		const Sluice__PublishBatch *b = f->publish_batch;
		pid = b->producer_id;
		space = fe_fence_space(b->topic, b->has_partition, b->partition);
		seq = b->base_sequence;
	} else {
		return 0;
	}
	struct fe_fence *fc = pid ? fence_find(c, pid, space) : NULL;
	if (!fc)
		return 0;
	if (seq == fc->seq || time_now_ms() >= fc->until_ms) {
		fc->until_ms = 0;
		return 0;
	}
	return 1;
}

/* Put f into the pub ring; SL_EAGAIN if the ring is full right now. */
/* Principal changes and AuthInit: RM_AUTH records (fe_principal.c). */
static int is_auth_request(const Sluice__Frame *f)
{
	return f->body_case == SLUICE__FRAME__BODY_PUT_PRINCIPAL || f->body_case == SLUICE__FRAME__BODY_REMOVE_PRINCIPAL ||
	       f->body_case == SLUICE__FRAME__BODY_AUTH_INIT;
}

/* A publish's callback, if it has one, and the operation it reports on. */
static const Sluice__Callback *frame_callback(const Sluice__Frame *f, struct fe_cb_op *op)
{
	memset(op, 0, sizeof(*op));
	if (f->body_case == SLUICE__FRAME__BODY_PUBLISH && f->publish->callback) {
		const Sluice__Publish *m = f->publish;
		*op = (struct fe_cb_op){m->topic, 0, m->producer_id, m->sequence,
		                        m->has_partition ? m->partition : RM_PARTITION_ANY, 1};
		return m->callback;
	}
	if (f->body_case == SLUICE__FRAME__BODY_PUBLISH_BATCH && f->publish_batch->callback) {
		const Sluice__PublishBatch *b = f->publish_batch;
		*op = (struct fe_cb_op){b->topic, 0, b->producer_id, b->base_sequence,
		                        b->has_partition ? b->partition : RM_PARTITION_ANY, b->count};
		return b->callback;
	}
	return NULL;
}

static uint64_t next_cookie(struct fe *fe)
{
	return (uint64_t)(fe->generation & 0xffff) << 48 | (++fe->cookie_counter & 0xffffffffffffull);
}

/* The callback's record right after its publish's (ring_room2 made sure
 * it fits). Nobody waits for its answer: the outcome goes to the URL. */
static void ring_push_callback(struct fe *fe, struct ring *r, const Sluice__Callback *cb, struct fe_cb_op *op,
                               const struct fe_cb_rec *rec, int *wake)
{
	void *p = ring_reserve(r, RM_CALLBACK, rec->len);

	SL_ASSERT(p != NULL);
	op->cookie = next_cookie(fe);
	fe_cb_fill(p, cb, op, rec);
	ring_commit(r, wake);
}

static int ring_submit(struct fe *fe, struct fe_conn *c, const Sluice__Frame *f)
{
	struct ring *r = shm_pub_ring(fe->shm, fe->index);
	struct fe_req req;
	const char *why;
	struct fe_pending *pend, pull;
	struct fe_cb_op op;
	struct fe_cb_rec cbr = {0};
	const Sluice__Callback *cb = frame_callback(f, &op);
	uint64_t cookie;
	void *p;
	int wake = 0, wake2 = 0, rc;

	char *auth_json = NULL;
	if (is_auth_request(f)) {
		req.kind = FE_PENDING_OK;
		req.type = RM_AUTH;
		rc = fe_principal_req_size(c, f, &req.len, &auth_json, &why);
	} else {
		rc = req_size(fe, f, &req, &why);
		if (rc == SL_OK)
			req.len += (uint32_t)by_bytes(c, req.type);
	}
	if (rc == SL_OK && cb)
		rc = fe_cb_size(fe, cb, op.topic, op.producer_id, &cbr, &why);
	if (rc == SL_OK && cb && cbr.len > ring_payload_max(r)) {
		rc = SL_EINVAL;
		why = "callback too large for this node's ring_bytes";
	}
	if (rc != SL_OK) {
		fe_send_error(c, f->id, rc, why);
		return SL_OK;
	}
	fe_check_epoch(fe); /* stamp requests with the epoch the logwriter has now */
	if (conn_fenced(c, f)) {
		fe_send_error(c, f->id, SL_EFENCED, "an earlier publish of this producer was answered UNAVAILABLE: retry it first");
		return SL_OK;
	}
	pend = malloc(sizeof(*pend));
	memset(&pull, 0, sizeof(pull));
	if (!pend || fe_cons_pending_init(&pull, f) != SL_OK) {
		free(auth_json);
		free(pend);
		fe_send_error(c, f->id, SL_EUNAVAILABLE, "out of memory on this node; retry");
		return SL_OK;
	}
	p = cb && !ring_room2(r, req.len, cbr.len) ? NULL : ring_reserve(r, req.type, req.len);
	if (!p) {
		fe_cons_pending_free(&pull);
		free(auth_json);
		free(pend);
		return SL_EAGAIN;
	}
	cookie = next_cookie(fe);
	if (auth_json) {
		fe_principal_fill(p, cookie, auth_json);
	} else {
		fill_record(p, f, cookie, (uint16_t)fe->epoch_seen);
		fill_by(p, c, req.type, req.len);
	}
	free(auth_json);
	pending_add(fe, pend, c, cookie, f->id, req.kind, f);
	pend->rm_type = req.type;
	pend->pull = pull.pull;
	ring_commit(r, &wake);
	if (cb)
		ring_push_callback(fe, r, cb, &op, &cbr, &wake2);
	if (wake || wake2)
		wake_logwriter(fe);
	return SL_OK;
}

static void conn_update_read(struct fe_conn *c)
{
	struct fe *fe = c->fe;

	if (c->dead)
		return;
	if (c->lingering || (!c->closing && !fe->stall_frame && !fe->stopping && !c->out_paused &&
			     c->npending < fe->cfg->inflight_max && (!c->http || fe_http_read_ok(c))))
		bufferevent_enable(c->bev, EV_READ);
	else
		bufferevent_disable(c->bev, EV_READ);
}

void fe_conn_update_read(struct fe_conn *c)
{
	conn_update_read(c);
}

static void fe_update_reads(struct fe *fe)
{
	struct fe_conn *c;

	TAILQ_FOREACH(c, &fe->conns, link)
	conn_update_read(c);
}

/* Resume every connection after backpressure; process what they buffered. */
static void fe_resume_all(struct fe *fe)
{
	struct fe_conn *c, *next;

	for (c = TAILQ_FIRST(&fe->conns); c && !fe->stall_frame; c = next) {
		next = TAILQ_NEXT(c, link);
		conn_update_read(c);
		if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
			conn_process_input(c);
	}
}

static void fe_stall_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fe *fe = arg;
	struct timeval tv = tv_ms(1);

	if (fe->stall_frame) {
		if (ring_submit(fe, fe->stall_conn, fe->stall_frame) == SL_EAGAIN) {
			evtimer_add(fe->stall_ev, &tv);
			return;
		}
		codec_frame_free(fe->stall_frame);
		fe->stall_frame = NULL;
		fe->stall_conn = NULL;
	}
	fe_resume_all(fe);
}

/* Returns 1 if the frame was kept (ring full), 0 if the caller frees it. */
static int conn_submit(struct fe_conn *c, Sluice__Frame *f)
{
	struct fe *fe = c->fe;
	struct timeval tv = tv_ms(1);

	if (ring_submit(fe, c, f) != SL_EAGAIN)
		return 0;
	fe->stall_conn = c;
	fe->stall_frame = f;
	fe->ring_full_pauses++;
	fe_update_reads(fe);
	evtimer_add(fe->stall_ev, &tv);
	return 1;
}

/* ---------- acks ---------- */

/* A CreateTopic refused TOO_MANY: the creator's topics_per_principal_max,
 * or no commit-table slots left (partitions_max). */
static void topic_too_many(struct fe_conn *c, uint64_t req_id)
{
	const char *by = fe_auth_principal(c);
	uint32_t max = c->fe->cfg->topics_per_principal_max;
	char why[200];

	if (max && auth_principal_limited(by))
		snprintf(why, sizeof(why),
		         "principal %s has created topics_per_principal_max (%u) topics that still exist, or the node's "
		         "partitions_max slots are all used; delete one first",
		         by, max);
	else
		snprintf(why, sizeof(why), "no free partition slots: partitions_max is reached");
	fe_send_error(c, req_id, SL_ETOOMANY, why);
}

static void on_ack(struct fe *fe, const struct rm_ack *a)
{
	struct fe_pending *p;
	struct fe_conn *c;

	if (a->flags & RM_ACK_PICK) {
		/* one message a pull took: the pull is answered at its RM_ACK_PICK_END */
		if ((p = pending_find(fe, a->cookie)))
			fe_cons_on_pick(p, a);
		return;
	}
	p = pending_take(fe, a->cookie);
	if (!p)
		return; /* a previous generation's, or its connection went away */
	c = p->conn;
	if (a->err == SL_EUNAVAILABLE)
		conn_fence(p);
	if (a->err == SL_EUNAVAILABLE && fe_is_cluster(fe)) {
		fe_send_error(
		    c, p->req_id, SL_EUNAVAILABLE,
		    "the cluster could not take it now (leader changed, election under way, or this node is cut off from the majority); retry");
	} else if (a->err == SL_ETOOMANY && p->rm_type == RM_CREATE_TOPIC) {
		topic_too_many(c, p->req_id);
	} else if (a->err != 0) {
		fe_send_error(c, p->req_id, (int)a->err, sl_strerror((int)a->err));
	} else if (p->kind == FE_PENDING_BATCH) {
		Sluice__PublishBatchAck ba = SLUICE__PUBLISH_BATCH_ACK__INIT;
		Sluice__Frame f = SLUICE__FRAME__INIT;
		ba.partition = a->partition;
		ba.base_offset = a->offset;
		ba.count = a->count;
		ba.timestamp_ms = a->timestamp_ms;
		ba.duplicate = (a->flags & RM_ACK_DUPLICATE) != 0;
		ba.term = a->term;
		ba.log_index = a->log_index;
		f.id = p->req_id;
		f.body_case = SLUICE__FRAME__BODY_PUBLISH_BATCH_ACK;
		f.publish_batch_ack = &ba;
		fe_send(c, &f);
		fe_metrics_publish_acked(fe, p->submitted_ns);
		fe->published += a->count;
		shm_stat_store(&shm_frontend(fe->shm, fe->index)->published, fe->published);
	} else if (p->kind == FE_PENDING_PUBLISH) {
		Sluice__PublishAck pa = SLUICE__PUBLISH_ACK__INIT;
		Sluice__Frame f = SLUICE__FRAME__INIT;
		pa.partition = a->partition;
		pa.offset = a->offset;
		pa.timestamp_ms = a->timestamp_ms;
		pa.duplicate = (a->flags & RM_ACK_DUPLICATE) != 0;
		pa.term = a->term;
		pa.log_index = a->log_index;
		f.id = p->req_id;
		f.body_case = SLUICE__FRAME__BODY_PUBLISH_ACK;
		f.publish_ack = &pa;
		fe_send(c, &f);
		fe_metrics_publish_acked(fe, p->submitted_ns);
		fe->published++;
		shm_stat_store(&shm_frontend(fe->shm, fe->index)->published, fe->published);
	} else if (p->kind == FE_PENDING_PULL) {
		fe_cons_pull_done(c, p);
	} else {
		fe_send_ok(c, p->req_id);
	}
	pending_free(p);
	if (c->npending + 1 == fe->cfg->inflight_max && !c->dead) {
		/* back under the in-flight limit: take what the client sent meanwhile */
		conn_update_read(c);
		if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
			conn_process_input(c);
	}
}

static void drain_acks_once(struct fe *fe, struct ring *r)
{
	uint64_t pos = ring_tail(r);
	const uint8_t *payload;
	uint32_t len;
	uint16_t type;
	int any = 0;

	while (ring_peek(r, &pos, &type, &payload, &len)) {
		struct rm_ack a;
		any = 1;
		if (type != RM_ACK || len < sizeof(a)) {
			log_warn("ignoring ack-ring record of type %u, %u bytes", type, len);
			continue;
		}
		memcpy(&a, payload, sizeof(a));
		on_ack(fe, &a);
	}
	if (any)
		ring_release(r, pos);
}

static void fe_check_commit(struct fe *fe)
{
	uint64_t seq = shm_load(&fe->shm->hdr->commit_seq);

	if (seq != fe->commit_seq_seen) {
		fe->commit_seq_seen = seq;
		fe_reads_commit_moved(fe);
	}
}

/* Drain the ack ring, leaving it marked asleep so the logwriter wakes us. */
/* Cluster: the logwriter bumps the epoch when answers to requests in flight
 * may have been lost (leader change, link to the leader lost, restart). Every
 * request still pending gets UNAVAILABLE; clients retry with the same
 * producer id and sequence and dedup answers a retry of a stored message with
 * its original offset. Acks already in the ring were drained first. */
/* Requests were answered without an ack (epoch bump, expiry): connections
 * paused at inflight_max may read again. Deferred to the stall event, never
 * run from inside a connection's own processing. */
static void fe_resume_later(struct fe *fe)
{
	if (fe->stall_ev)
		event_active(fe->stall_ev, EV_TIMEOUT, 0);
}

static void fe_check_epoch(struct fe *fe)
{
	uint64_t e = shm_load(&fe->shm->hdr->cluster.epoch);
	struct fe_pending *p;

	if (e == fe->epoch_seen)
		return;
	fe->epoch_seen = e;
	while ((p = TAILQ_FIRST(&fe->pending_fifo))) {
		pending_unlink(fe, p);
		conn_fence(p);
		fe_send_error(p->conn, p->req_id, SL_EUNAVAILABLE, "the cluster leader changed; retry");
		pending_free(p);
	}
	fe_resume_later(fe);
}

static void fe_drain_acks(struct fe *fe)
{
	struct ring *r = shm_ack_ring(fe->shm, fe->index);
	const uint8_t *payload;
	uint32_t len;
	uint16_t type;

	ring_sleep_done(r);
	for (;;) {
		uint64_t pos;
		drain_acks_once(fe, r);
		ring_sleep_prepare(r);
		pos = ring_tail(r);
		if (!ring_peek(r, &pos, &type, &payload, &len))
			break;
		ring_sleep_done(r);
	}
	fe_check_epoch(fe);
	fe_auth_streams_check(fe); /* principals changed or a token expired: before new deliveries */
	fe_check_commit(fe);
}

static void fe_efd_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fe *fe = arg;
	uint64_t v;
	ssize_t n = read(fd, &v, sizeof(v));

	(void)n;
	fe_drain_acks(fe);
}

/* ---------- periodic: timeouts, restarts, shutdown ---------- */

static void fe_expire_pending(struct fe *fe)
{
	int64_t cutoff = time_now_ms() - FE_PENDING_TIMEOUT_MS;
	struct fe_pending *p;

	while ((p = TAILQ_FIRST(&fe->pending_fifo)) && p->created_ms < cutoff) {
		pending_unlink(fe, p);
		conn_fence(p);
		fe_send_error(p->conn, p->req_id, SL_EUNAVAILABLE, "no answer from the log writer in time; retry");
		pending_free(p);
		fe_resume_later(fe);
	}
}

/* Shutdown: once every pending ack is answered, flush and half-close each
 * connection; exit when all are closed or the deadline passes. */
static void fe_check_stop(struct fe *fe)
{
	struct fe_conn *c, *next;

	if (!fe->stopping)
		return;
	if (time_now_ms() >= fe->stop_deadline_ms) {
		if (fe->npending)
			log_warn("exiting with %zu requests unacknowledged", fe->npending);
		event_base_loopbreak(fe->base);
		return;
	}
	if (fe->npending || fe->stall_frame)
		return;
	for (c = TAILQ_FIRST(&fe->conns); c; c = next) {
		next = TAILQ_NEXT(c, link);
		if (!c->closing && evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
			conn_linger(c);
	}
	if (fe->nconns == 0)
		event_base_loopbreak(fe->base);
}

static void fe_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fe *fe = arg;
	uint32_t gen = shm_load(&fe->shm->hdr->logwriter_generation);

	if (gen != fe->logwriter_gen_seen) {
		log_info("logwriter restarted (generation %u); requests pending from before it are answered UNAVAILABLE",
			 gen);
		fe->logwriter_gen_seen = gen;
	}
	/* safety net for a lost wake-up: cheap when nothing moved */
	fe_drain_acks(fe);
	fe_expire_pending(fe);
	fe_check_stop(fe);
}

/* SIGHUP (forwarded by the master): the [tls] files again, for the next
 * connections. A bad file keeps the previous context. */
static void fe_sighup_cb(evutil_socket_t sig, short what, void *arg)
{
	struct fe *fe = arg;
	struct ssl_ctx_st *ctx;
	char err[512];

	if (!fe->tls_ctx) {
		log_info("SIGHUP: TLS is off, nothing to reload");
		return;
	}
	if (tls_server_ctx_new(fe->cfg, &ctx, err, sizeof(err)) != SL_OK) {
		log_error("TLS reload failed, new connections keep the previous certificate: %s", err);
		return;
	}
	fe_tls_ctx_free(fe->tls_ctx);
	fe->tls_ctx = ctx;
	log_info("TLS certificate reloaded from %s for new connections", fe->cfg->tls_cert);
}

static void fe_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct fe *fe = arg;

	if (fe->stopping)
		return;
	log_info("signal %d: draining (up to %d ms)", (int)sig, FE_SHUTDOWN_WAIT_MS);
	fe->stopping = 1;
	fe->stop_deadline_ms = time_now_ms() + FE_SHUTDOWN_WAIT_MS;
	wh_deliver_free(fe->webhooks); /* what it has in flight comes back after its ack timeout */
	fe->webhooks = NULL;
	if (fe->listener)
		evconnlistener_disable(fe->listener);
	fe_http_stop(fe);
	fe_update_reads(fe);
	fe_reads_stop(fe);
	fe_check_stop(fe);
}

/* ---------- connections ---------- */

static void conn_free(struct fe *fe, struct fe_conn *c)
{
	struct fe_pending *p;

	while ((p = TAILQ_FIRST(&c->pending))) {
		pending_unlink(fe, p);
		pending_free(p);
	}
	fe_reads_conn_free(c);
	fe_auth_conn_free(c);
	if (c->http)
		fe_http_conn_free(c);
	if (fe->stall_conn == c) {
		codec_frame_free(fe->stall_frame);
		fe->stall_frame = NULL;
		fe->stall_conn = NULL;
		evtimer_del(fe->stall_ev);
		fe_resume_all(fe);
	}
	bufferevent_free(c->bev);
	free(c);
}

static void fe_reap_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fe *fe = arg;
	struct fe_conn *c;

	while ((c = TAILQ_FIRST(&fe->dead))) {
		TAILQ_REMOVE(&fe->dead, c, link);
		conn_free(fe, c);
	}
	if (fe->stopping && fe->base)
		fe_check_stop(fe);
}

void fe_conn_close(struct fe_conn *c)
{
	conn_close(c);
}

static void conn_close(struct fe_conn *c)
{
	struct fe *fe = c->fe;

	if (c->dead)
		return;
	c->dead = 1;
	bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	TAILQ_REMOVE(&fe->conns, c, link);
	TAILQ_INSERT_TAIL(&fe->dead, c, link);
	fe->nconns--;
	fe_limits_conn_detach(c);
	shm_stat_store(&shm_frontend(fe->shm, fe->index)->connections, fe->nconns);
	fe_metrics_conn(fe, c->http ? METRICS_PROTO_HTTP : METRICS_PROTO_NATIVE, -1);
	event_active(fe->reap_ev, EV_TIMEOUT, 0);
}

static void conn_on_hello(struct fe_conn *c, uint64_t id, const Sluice__Hello *h)
{
	Sluice__HelloOk ok = SLUICE__HELLO_OK__INIT;
	Sluice__Frame f = SLUICE__FRAME__INIT;
	uint32_t maxv = h->max_version ? h->max_version : h->min_version;

	if (h->min_version > CODEC_VERSION || maxv < CODEC_VERSION) {
		conn_fatal(c, id, SL_EVERSION, "this server speaks protocol version 1 only");
		return;
	}
	c->handshaken = 1;
	bufferevent_set_timeouts(c->bev, NULL, NULL); /* the Hello deadline is met */
	ok.version = CODEC_VERSION;
	ok.node_id = c->fe->shm->hdr->node_id;
	ok.frame_bytes_max = c->fe->cfg->frame_bytes_max;
	ok.server_version = (char *)SLUICE_VERSION;
	/* stored batches travel only on native TCP, whose Deliveries are shared (fe_fanout.c) */
	c->batches = h->accept_batches >= FE_BATCH_FORMAT && c->deliver_shared && !c->http;
	ok.batches = c->batches ? FE_BATCH_FORMAT : 0;
	fe_auth_hello(c, &ok);
	f.id = id;
	f.body_case = SLUICE__FRAME__BODY_HELLO_OK;
	f.hello_ok = &ok;
	fe_send(c, &f);
}

/* Returns 1 if the frame was kept (ring full), 0 if the caller frees it. */
static int conn_dispatch(struct fe_conn *c, Sluice__Frame *f);

int fe_conn_dispatch(struct fe_conn *c, Sluice__Frame *f)
{
	return conn_dispatch(c, f);
}

/* Over its principal's requests or bytes per second: refused at once (TOO_MANY). */
static int conn_over_rate(struct fe_conn *c, const Sluice__Frame *f)
{
	char why[320];
	uint32_t retry_ms;

	if (fe_limits_request(c, f, why, sizeof(why), &retry_ms) == SL_OK)
		return 0;
	fe_send_error_retry(c, f->id, SL_ETOOMANY, why, retry_ms);
	return 1;
}

static int conn_dispatch(struct fe_conn *c, Sluice__Frame *f)
{
	uint64_t id = f->id;

	if (id == 0 && f->body_case != SLUICE__FRAME__BODY_CREDIT && f->body_case != SLUICE__FRAME__BODY_HELLO) {
		/* id 0 is reserved for frames the server pushes (Delivery): an
		 * answer carrying it could not be told from a push. Exceptions:
		 * Credit is never answered when its id is 0, and HelloOk cannot be
		 * taken for a push (clients up to 0.1 sent Hello with id 0). */
		conn_fatal(c, 0, SL_EMALFORMED, "request id 0 is reserved for server pushes");
		return 0;
	}
	if (!c->handshaken) {
		if (f->body_case != SLUICE__FRAME__BODY_HELLO)
			conn_fatal(c, id, SL_EHANDSHAKE, "the first frame must be Hello");
		else
			conn_on_hello(c, id, f->hello);
		return 0;
	}
	if (fe_auth_on(c->fe)) {
		char why[320];
		int rc = fe_auth_frame(c->fe, c, f, why, sizeof(why));
		if (rc != SL_OK) {
			fe_send_error(c, id, rc, why);
			return 0;
		}
	}
	if (conn_over_rate(c, f))
		return 0;
	switch (f->body_case) {
	case SLUICE__FRAME__BODY_AUTHENTICATE:
		fe_auth_on_authenticate(c, id, f->authenticate);
		break;
	case SLUICE__FRAME__BODY_PUT_PRINCIPAL:
	case SLUICE__FRAME__BODY_REMOVE_PRINCIPAL:
	case SLUICE__FRAME__BODY_AUTH_INIT:
		return conn_submit(c, f);
	case SLUICE__FRAME__BODY_LIST_PRINCIPALS:
		fe_on_list_principals(c, id);
		break;
	case SLUICE__FRAME__BODY_ISSUE_TOKEN:
		fe_on_issue_token(c, id, f->issue_token);
		break;
	case SLUICE__FRAME__BODY_LIST_AUDIT:
		fe_on_list_audit(c, id, f->list_audit);
		break;
	case SLUICE__FRAME__BODY_CREATE_CONSUMER:
	case SLUICE__FRAME__BODY_UPDATE_WEBHOOK:
		if (fe_auth_seal_frame(c->fe, f) != SL_OK) {
			fe_send_error(c, id, SL_EUNAVAILABLE, "webhook secrets cannot be sealed on this node ([auth] key_file)");
			return 0;
		}
		return conn_submit(c, f);
	case SLUICE__FRAME__BODY_PUBLISH:
	case SLUICE__FRAME__BODY_PUBLISH_BATCH:
	case SLUICE__FRAME__BODY_CREATE_TOPIC:
	case SLUICE__FRAME__BODY_DELETE_TOPIC:
	case SLUICE__FRAME__BODY_COMMIT_OFFSET:
	case SLUICE__FRAME__BODY_DELETE_CONSUMER:
	case SLUICE__FRAME__BODY_ACK_MESSAGES:
	case SLUICE__FRAME__BODY_PULL:
	case SLUICE__FRAME__BODY_SEEK_CONSUMER:
		return conn_submit(c, f);
	case SLUICE__FRAME__BODY_LIST_CONSUMERS:
		fe_on_list_consumers(c, id);
		break;
	case SLUICE__FRAME__BODY_DESCRIBE_CONSUMER:
		fe_on_describe_consumer(c, id, f->describe_consumer);
		break;
	case SLUICE__FRAME__BODY_TRANSFER_LEADER:
		/* a single node has no leadership to hand over: answer without the logwriter */
		if (!fe_is_cluster(c->fe)) {
			fe_send_error(c, id, SL_EINVAL,
			              "not a cluster: this node runs alone ([cluster] peers is empty)");
			return 0;
		}
		return conn_submit(c, f);
	case SLUICE__FRAME__BODY_CLUSTER_STATUS:
		fe_on_cluster_status(c, id);
		break;
	case SLUICE__FRAME__BODY_LIST_TOPICS:
		fe_on_list_topics(c, id);
		break;
	case SLUICE__FRAME__BODY_DESCRIBE_TOPIC:
		fe_on_describe_topic(c, id, f->describe_topic);
		break;
	case SLUICE__FRAME__BODY_SUBSCRIBE:
		fe_on_subscribe(c, id, f->subscribe);
		break;
	case SLUICE__FRAME__BODY_CREDIT:
		fe_on_credit(c, id, f->credit);
		break;
	case SLUICE__FRAME__BODY_UNSUBSCRIBE:
		fe_on_unsubscribe(c, id, f->unsubscribe);
		break;
	case SLUICE__FRAME__BODY_FETCH:
		fe_on_fetch(c, id, f->fetch);
		break;
	case SLUICE__FRAME__BODY_DESCRIBE_GROUP:
		fe_on_describe_group(c, id, f->describe_group);
		break;
	case SLUICE__FRAME__BODY_NODE_STATUS:
		fe_on_node_status(c, id);
		break;
	default:
		fe_send_error(c, id, SL_EUNKNOWN_OP, "operation not understood by this server");
		break;
	}
	return 0;
}

/*
 * codec_frame_decode refused the body. If it is still valid protobuf whose
 * body is a field we do not know (a newer client), it is an unknown
 * operation and the connection stays; anything else is malformed.
 */
static void conn_undecodable(struct fe_conn *c, const uint8_t *body, size_t len)
{
	Sluice__Frame *f = sluice__frame__unpack(NULL, len, body);

	if (f && f->body_case == SLUICE__FRAME__BODY__NOT_SET && f->base.n_unknown_fields > 0 && f->id != 0)
		fe_send_error(c, f->id, SL_EUNKNOWN_OP, "operation not understood by this server");
	else if (f && f->id == 0)
		conn_fatal(c, 0, SL_EMALFORMED, "request id 0 is reserved for server pushes");
	else
		conn_fatal(c, f ? f->id : 0, SL_EMALFORMED, "frame could not be decoded");
	if (f)
		sluice__frame__free_unpacked(f, NULL);
}

/* Decode and handle one complete frame of need bytes at the head of in. */
static void conn_handle_frame(struct fe_conn *c, struct evbuffer *in, size_t need)
{
	const uint8_t *p = evbuffer_pullup(in, (ssize_t)need);
	Sluice__Frame *f = NULL;

	if (!p) {
		conn_fatal(c, 0, SL_EINTERNAL, "out of memory");
		return;
	}
	if (codec_frame_decode(p + 4, need - 4, &f) != SL_OK) {
		conn_undecodable(c, p + 4, need - 4);
		evbuffer_drain(in, need);
		return;
	}
	evbuffer_drain(in, need);
	if (!conn_dispatch(c, f))
		codec_frame_free(f);
}

static void conn_process_input(struct fe_conn *c)
{
	struct fe *fe = c->fe;
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct evbuffer *out = bufferevent_get_output(c->bev);

	if (c->lingering) {
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	if (c->http) {
		fe_http_process_input(c);
		return;
	}
	while (!c->dead && !c->closing && !fe->stall_frame && !fe->stopping && !c->out_paused &&
	       c->npending < fe->cfg->inflight_max) {
		size_t avail = evbuffer_get_length(in), need = 0;
		const uint8_t *p;

		if (avail < 4)
			break;
		p = evbuffer_pullup(in, 4);
		if (codec_frame_peek(p, 4, fe->cfg->frame_bytes_max, &need) == SL_ETOOLARGE) {
			conn_fatal(c, 0, SL_ETOOLARGE, "frame length over frame_bytes_max");
			break;
		}
		need = 4 + (size_t)be_get32(p);
		if (avail < need)
			break;
		conn_handle_frame(c, in, need);
		if (!c->dead && evbuffer_get_length(out) > fe->cfg->output_pause_bytes)
			c->out_paused = 1; /* a client that pipelines reads but does not read answers */
	}
	conn_update_read(c);
}

static void conn_read_cb(struct bufferevent *bev, void *arg)
{
	conn_process_input(arg);
}

static void conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct fe_conn *c = arg;
	size_t left = evbuffer_get_length(bufferevent_get_output(bev));

	if (c->dead)
		return;
	if (c->closing) {
		if (left == 0 && !c->lingering)
			conn_linger(c);
		return;
	}
	if (c->out_paused && left < c->fe->cfg->output_low_bytes) {
		c->out_paused = 0;
		conn_process_input(c);
	}
	if (left < c->fe->cfg->output_low_bytes) {
		fe_reads_conn_writable(c);
		if (c->http && !c->dead)
			fe_http_writable(c);
	}
	if (c->fe->stopping)
		fe_check_stop(c->fe);
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct fe_conn *c = arg;

	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
		conn_close(c);
}

/* Over connections_max or connections_per_address_max: one best-effort
 * Error TOO_MANY, then close. */
static void fe_refuse(struct fe *fe, evutil_socket_t fd, const char *why)
{
	Sluice__Error e = SLUICE__ERROR__INIT;
	Sluice__Frame f = SLUICE__FRAME__INIT;
	uint8_t buf[128];
	ssize_t n;

	if (fe->tls_ctx) { /* a TLS client could not read a plain frame: just close */
		evutil_closesocket(fd);
		return;
	}
	e.code = SLUICE__ERROR_CODE__TOO_MANY;
	e.message = (char *)why;
	f.body_case = SLUICE__FRAME__BODY_ERROR;
	f.error = &e;
	if (codec_frame_size(&f) <= sizeof(buf)) {
		/* a fresh socket's send buffer is empty: this small write does not block */
		n = send(fd, buf, codec_frame_encode(&f, buf), MSG_NOSIGNAL | MSG_DONTWAIT);
		(void)n;
	}
	evutil_closesocket(fd);
}

struct fe_conn *fe_conn_new(struct fe *fe, int fd)
{
	struct fe_conn *c = calloc(1, sizeof(*c));
	int one = 1;

	if (!c || !(c->bev = fe_tls_bev_new(fe->base, fd, fe->tls_ctx))) {
		log_error("out of memory accepting a connection");
		free(c);
		evutil_closesocket(fd);
		return NULL;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->fe = fe;
	c->next_sub_id = 1;
	TAILQ_INIT(&c->subs);
	TAILQ_INIT(&c->pending);
	TAILQ_INSERT_TAIL(&fe->conns, c, link);
	fe->nconns++;
	shm_stat_store(&shm_frontend(fe->shm, fe->index)->connections, fe->nconns);
	bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
	return c;
}

static void fe_accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	struct fe *fe = arg;
	struct fe_conn *c;
	char addr[FE_ADDR_BYTES];

	if (fe->stopping) {
		evutil_closesocket(fd);
		return;
	}
	if (fe->nconns >= fe->cfg->connections_max) {
		fe_refuse(fe, fd, "too many connections");
		return;
	}
	fe_limits_addr_text(sa, addr);
	if (fe_limits_addr_full(fe, addr)) {
		fe_refuse(fe, fd, "too many connections from this address");
		return;
	}
	if (!(c = fe_conn_new(fe, fd)))
		return;
	fe_limits_conn_attach(c, addr);
	fe_metrics_conn(fe, METRICS_PROTO_NATIVE, 1);
	c->deliver_shared = 1; /* native TCP: Deliveries by reference (fe_fanout.c) */
	/* stop reading once a whole maximal frame is buffered and unprocessed */
	bufferevent_setwatermark(c->bev, EV_READ, 0, (size_t)fe->cfg->frame_bytes_max + 4 + 65536);
	bufferevent_setwatermark(c->bev, EV_WRITE, fe->cfg->output_low_bytes, 0);
	/* a connection that sends no Hello in time is closed (it holds a slot of connections_max) */
	struct timeval hello = tv_ms(fe->cfg->hello_timeout_ms);
	bufferevent_set_timeouts(c->bev, &hello, NULL);
	bufferevent_enable(c->bev, EV_WRITE);
	conn_update_read(c);
}

static void fe_accept_error_cb(struct evconnlistener *l, void *arg)
{
	int e = EVUTIL_SOCKET_ERROR();

	/* EMFILE and friends: keep serving; the listener retries on the next event */
	log_warn("accept failed: %s", evutil_socket_error_to_string(e));
}

/* ---------- setup and teardown ---------- */

static int fe_open_store(struct fe *fe)
{
	struct store_opts o;
	long waited = 0;
	int rc;

	while (!shm_load(&fe->shm->hdr->logwriter_ready)) {
		if (waited >= FE_READY_WAIT_MS) {
			log_error("logwriter not ready after %d ms; giving up", FE_READY_WAIT_MS);
			return SL_ETIMEOUT;
		}
		sleep_ms(10);
		waited += 10;
	}
	memset(&o, 0, sizeof(o));
	o.dir = fe->cfg->data_dir;
	o.map_bytes = fe->cfg->map_bytes;
	o.readonly = 1;
	o.slots_max = fe->cfg->partitions_max;
	for (waited = 0;; waited += 50) {
		rc = store_open(&fe->store, &o);
		if (rc == SL_OK)
			return SL_OK;
		if (waited >= FE_OPEN_RETRY_MS) {
			log_error("cannot open storage at %s: %s", o.dir, sl_strerror(rc));
			return rc;
		}
		sleep_ms(50);
	}
}

static int fe_setup_events(struct fe *fe, int listen_fd, int http_fd)
{
	struct timeval tick = tv_ms(FE_TICK_MS);

	fe->efd_ev = event_new(fe->base, fe->efd, EV_READ | EV_PERSIST, fe_efd_cb, fe);
	fe->tick_ev = event_new(fe->base, -1, EV_PERSIST, fe_tick_cb, fe);
	fe->stall_ev = evtimer_new(fe->base, fe_stall_cb, fe);
	fe->run_ev = evtimer_new(fe->base, fe_run_cb, fe);
	fe->reap_ev = event_new(fe->base, -1, 0, fe_reap_cb, fe);
	fe->sigterm_ev = evsignal_new(fe->base, SIGTERM, fe_signal_cb, fe);
	fe->sigint_ev = evsignal_new(fe->base, SIGINT, fe_signal_cb, fe);
	fe->sighup_ev = evsignal_new(fe->base, SIGHUP, fe_sighup_cb, fe);
	if (!fe->efd_ev || !fe->tick_ev || !fe->stall_ev || !fe->run_ev || !fe->reap_ev || !fe->sigterm_ev ||
	    !fe->sigint_ev || !fe->sighup_ev)
		return SL_ENOMEM;
	if (event_add(fe->efd_ev, NULL) || event_add(fe->tick_ev, &tick) || event_add(fe->sigterm_ev, NULL) ||
	    event_add(fe->sigint_ev, NULL) || event_add(fe->sighup_ev, NULL))
		return SL_EIO;
	fe->listener = evconnlistener_new(fe->base, fe_accept_cb, fe, LEV_OPT_CLOSE_ON_FREE, -1, listen_fd);
	if (!fe->listener)
		return SL_EIO;
	evconnlistener_set_error_cb(fe->listener, fe_accept_error_cb);
	return fe_http_setup(fe, http_fd);
}

/* Webhooks are delivered by frontend 0 of the node that leads (the log's
 * pulls start there), and not while the node stops. */
static int fe_webhooks_active(void *arg)
{
	struct fe *fe = arg;

	if (fe->stopping)
		return 0;
	return !fe_is_cluster(fe) || shm_stat_load(&fe->shm->hdr->cluster.role) == SHM_ROLE_LEADER;
}

static void fe_teardown(struct fe *fe)
{
	struct fe_conn *c;

	wh_deliver_free(fe->webhooks);
	fe->webhooks = NULL;
	struct event **evs[] = {&fe->efd_ev,  &fe->tick_ev,    &fe->stall_ev, &fe->run_ev,
	                        &fe->reap_ev, &fe->sigterm_ev, &fe->sigint_ev, &fe->sighup_ev};
	size_t i;

	if (fe->listener)
		evconnlistener_free(fe->listener);
	while ((c = TAILQ_FIRST(&fe->conns))) {
		TAILQ_REMOVE(&fe->conns, c, link);
		TAILQ_INSERT_TAIL(&fe->dead, c, link);
	}
	if (fe->stall_frame) {
		codec_frame_free(fe->stall_frame);
		fe->stall_frame = NULL;
		fe->stall_conn = NULL;
	}
	if (fe->reap_ev)
		fe_reap_cb(-1, 0, fe);
	fe_http_teardown(fe);
	fe_fanout_teardown(fe);
	fe_limits_free(fe);
	for (i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
		if (*evs[i])
			event_free(*evs[i]);
	if (fe->base)
		event_base_free(fe->base);
	if (fe->store)
		store_close(fe->store);
	fe_tls_ctx_free(fe->tls_ctx);
	fe->tls_ctx = NULL;
	free(fe->buckets);
	free(fe->waiters);
}

int frontend_main(const struct frontend_args *a)
{
	static char role[32];
	struct fe fe;
	char tls_err[512];
	int rc = 1, fl;

	memset(&fe, 0, sizeof(fe));
	snprintf(role, sizeof(role), "frontend-%u", a->index);
	log_set_role(role);
	signal(SIGPIPE, SIG_IGN);
	fe.cfg = a->cfg;
	fe.shm = a->shm;
	fe.index = a->index;
	fe.efd = a->efd;
	fe.logwriter_efd = a->logwriter_efd;
	fe.generation = shm_load(&shm_frontend(a->shm, a->index)->generation);
	/* Cookies must not repeat those of an earlier run of the node: a
	 * restarted logwriter applies committed entries again and pushes their
	 * answers, which only the request that made them may take. The
	 * generation (high 16 bits) tells restarts of this frontend apart; a
	 * random start of the counter tells runs of the node apart. */
	if (getrandom(&fe.cookie_counter, sizeof(fe.cookie_counter), 0) != sizeof(fe.cookie_counter))
		fe.cookie_counter = shm_load(&a->shm->hdr->instance) ^ (uint64_t)getpid() << 20;
	fe.cookie_counter &= 0xffffffffffffull;
	fe.logwriter_gen_seen = shm_load(&a->shm->hdr->logwriter_generation);
	fe.epoch_seen = shm_load(&a->shm->hdr->cluster.epoch);
	TAILQ_INIT(&fe.conns);
	TAILQ_INIT(&fe.dead);
	TAILQ_INIT(&fe.runq);
	TAILQ_INIT(&fe.parked);
	fe.waiters = calloc(a->cfg->partitions_max, sizeof(*fe.waiters));
	for (uint32_t i = 0; fe.waiters && i < a->cfg->partitions_max; i++)
		TAILQ_INIT(&fe.waiters[i]);
	TAILQ_INIT(&fe.pending_fifo);
	fe.nbuckets = FE_PENDING_BUCKETS_MIN;
	fe.buckets = calloc(fe.nbuckets, sizeof(*fe.buckets));
	fl = fcntl(a->efd, F_GETFL);
	if (fl >= 0)
		fcntl(a->efd, F_SETFL, fl | O_NONBLOCK);
	if (!fe.buckets || !fe.waiters || fe_limits_init(&fe) != SL_OK || fe_open_store(&fe) != SL_OK)
		goto out;
	if (tls_server_ctx_new(fe.cfg, &fe.tls_ctx, tls_err, sizeof(tls_err)) != SL_OK) {
		log_error("TLS: %s", tls_err);
		goto out;
	}
	fe.base = event_base_new();
	if (!fe.base || fe_setup_events(&fe, a->listen_fd, a->http_fd) != SL_OK) {
		log_error("cannot set up the event loop");
		goto out;
	}
	shm_stat_store(&shm_frontend(a->shm, a->index)->connections, 0);
	fe_metrics_start(&fe);
	if (fe.index == 0 && !(fe.webhooks = wh_deliver_new(fe.base, fe.cfg, fe.store, fe.shm->hdr->node_seed, fe_webhooks_active, &fe)))
		log_error("webhook delivery could not start on this node");
	fe.published = shm_frontend(a->shm, a->index)->published;
	fe_drain_acks(&fe);
	log_info("serving (generation %u)", fe.generation);
	event_base_dispatch(fe.base);
	log_info("stopped: %llu publishes acknowledged, pub ring full %llu times", (unsigned long long)fe.published,
	         (unsigned long long)fe.ring_full_pauses);
	rc = 0;
out:
	fe_teardown(&fe);
	return rc;
}
