/*
 * client.c: libsluice, the native-protocol client (see sluice.h).
 *
 * One connection at a time, on the caller's event_base. Requests are encoded
 * once, when the caller makes them, and live in one of three queues:
 *   pending  - not yet written (pipeline full, output over its watermark, or
 *              no connection); kept in request-id order,
 *   inflight - written on the current connection, awaiting their answer,
 *   retry    - publishes answered UNAVAILABLE (a cluster node without a
 *              leader: election, partition) or FENCED (an earlier publish
 *              of ours must land first), and Pull and AckMessages of durable
 *              consumers answered UNAVAILABLE, waiting a short delay; they
 *              are re-sent until retry_max_ms after the first refusal. When
 *              a connection has answered nothing but UNAVAILABLE for
 *              CLIENT_UNAVAIL_SWITCH_MS and the list has other servers, the
 *              client moves to the next one (a node on the minority side of
 *              a partition never gets a leader back by itself).
 * When the connection drops, everything in flight goes back to the front of
 * pending (in order) and is written again, byte for byte, after the next
 * handshake: publishes keep their producer id and sequence, so the broker
 * stores each once (dedup is keyed by producer id, topic, partition space
 * and sequence; a batch by its base sequence).
 *
 * The public error codes (SLUICE_*) are the project's SL_* value for value
 * (asserted below), so this file uses the SL_* names and sl_strerror.
 *
 * Batching (opts.linger_ms > 0): a publish without a key joins the open
 * batch of its (topic, partition space) instead of becoming a request of its
 * own. Records are written once, in the wire layout of PublishBatch.records,
 * into the batch's buffer. A batch closes when it reaches batch_bytes or
 * CLIENT_BATCH_COUNT_MAX messages, or linger_ms after its first message (one
 * client timer, armed for the oldest open batch), or on sluice_client_flush;
 * closing takes the next `count` sequences of the client and makes the batch
 * one request, pipelined, refused, retried and re-sent exactly like a single
 * publish (same producer id and base sequence, so a retried batch that was
 * stored is answered as a duplicate with the original base offset). Keyed
 * publishes never batch: the server hashes the key, and the client does not
 * know the partition count. A message that cannot go in a batch (larger than
 * a batch may be, a header key over 255 bytes) closes the open batch of its
 * space and travels alone after it, so a space keeps its order.
 *
 * Subscriptions are client objects with one or more server "legs" (server
 * subscription ids). After Subscribed we know the next offset of every
 * partition; after a reconnect each partition is re-subscribed at its next
 * offset (one leg per partition), so nothing is lost or delivered twice.
 * Credit is returned per leg once half the window has been consumed.
 *
 * Durable consumers: Pull and AckMessages are re-sent after a reconnect or
 * an UNAVAILABLE answer like any request. Acks are idempotent; a Pull whose
 * answer was lost picked messages nobody sees, and they come back after the
 * consumer's ack timeout (at-least-once delivery, as documented). A Pull's
 * deadline is the request timeout plus its wait_ms.
 *
 * TLS (opts tls, tls_ca, $SLUICE_TLS_CA): one SSL_CTX per client; each
 * connection is an OpenSSL bufferevent that checks the chain and the host
 * name before BEV_EVENT_CONNECTED, so the Hello only ever goes to a verified
 * server. A failed handshake is a failed connection like a refused one (the
 * next server, backoff); if the client gives up after one, it reports
 * SL_ETLS rather than UNAVAILABLE, so a missing CA is named as such.
 *
 * Caveats: callbacks may call any sluice_* function, including
 * sluice_client_free (the free is deferred until the callback unwinds).
 * Credit and Unsubscribe frames carry a request id but any answer to them is
 * ignored (unknown ids are dropped).
 */
#include <errno.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sodium.h>

#include "auth_b64.h"
#include "auth_challenge.h"
#include "auth_key.h"
#include "auth_paseto.h"
#include "codec.h"
#include "crc32c.h"
#include "err.h"
#include "sl_assert.h"
#include "slice.h"
#include "sluice/sluice.h"
#include "unpack.h"
#include "vec.h"

/* The public error enum is the project's, value for value (common/err.h). */
_Static_assert((int)SLUICE_OK == (int)SL_OK, "SLUICE_OK");
_Static_assert((int)SLUICE_EMALFORMED == (int)SL_EMALFORMED, "SLUICE_EMALFORMED");
_Static_assert((int)SLUICE_ETOOLARGE == (int)SL_ETOOLARGE, "SLUICE_ETOOLARGE");
_Static_assert((int)SLUICE_EVERSION == (int)SL_EVERSION, "SLUICE_EVERSION");
_Static_assert((int)SLUICE_EUNKNOWN_OP == (int)SL_EUNKNOWN_OP, "SLUICE_EUNKNOWN_OP");
_Static_assert((int)SLUICE_ENOTOPIC == (int)SL_ENOTOPIC, "SLUICE_ENOTOPIC");
_Static_assert((int)SLUICE_ETOPIC_EXISTS == (int)SL_ETOPIC_EXISTS, "SLUICE_ETOPIC_EXISTS");
_Static_assert((int)SLUICE_EINVAL == (int)SL_EINVAL, "SLUICE_EINVAL");
_Static_assert((int)SLUICE_EFULL == (int)SL_EFULL, "SLUICE_EFULL");
_Static_assert((int)SLUICE_EUNAVAILABLE == (int)SL_EUNAVAILABLE, "SLUICE_EUNAVAILABLE");
_Static_assert((int)SLUICE_ENOSUB == (int)SL_ENOSUB, "SLUICE_ENOSUB");
_Static_assert((int)SLUICE_EINTERNAL == (int)SL_EINTERNAL, "SLUICE_EINTERNAL");
_Static_assert((int)SLUICE_EHANDSHAKE == (int)SL_EHANDSHAKE, "SLUICE_EHANDSHAKE");
_Static_assert((int)SLUICE_ERANGE == (int)SL_ERANGE, "SLUICE_ERANGE");
_Static_assert((int)SLUICE_ETOOMANY == (int)SL_ETOOMANY, "SLUICE_ETOOMANY");
_Static_assert((int)SLUICE_EFENCED == (int)SL_EFENCED, "SLUICE_EFENCED");
_Static_assert((int)SLUICE_ENOCONSUMER == (int)SL_ENOCONSUMER, "SLUICE_ENOCONSUMER");
_Static_assert((int)SLUICE_ECONSUMER_EXISTS == (int)SL_ECONSUMER_EXISTS, "SLUICE_ECONSUMER_EXISTS");
_Static_assert((int)SLUICE_EUNAUTHENTICATED == (int)SL_EUNAUTHENTICATED, "SLUICE_EUNAUTHENTICATED");
_Static_assert((int)SLUICE_EPERMISSION == (int)SL_EPERMISSION, "SLUICE_EPERMISSION");
_Static_assert((int)SLUICE_ENOMEM == (int)SL_ENOMEM, "SLUICE_ENOMEM");
_Static_assert((int)SLUICE_EIO == (int)SL_EIO, "SLUICE_EIO");
_Static_assert((int)SLUICE_EAGAIN == (int)SL_EAGAIN, "SLUICE_EAGAIN");
_Static_assert((int)SLUICE_ENOTFOUND == (int)SL_ENOTFOUND, "SLUICE_ENOTFOUND");
_Static_assert((int)SLUICE_ECORRUPT == (int)SL_ECORRUPT, "SLUICE_ECORRUPT");
_Static_assert((int)SLUICE_ECLOSED == (int)SL_ECLOSED, "SLUICE_ECLOSED");
_Static_assert((int)SLUICE_ETIMEOUT == (int)SL_ETIMEOUT, "SLUICE_ETIMEOUT");
_Static_assert((int)SLUICE_ECONFIG == (int)SL_ECONFIG, "SLUICE_ECONFIG");
_Static_assert((int)SLUICE_ETLS == (int)SL_ETLS, "SLUICE_ETLS");

#define CLIENT_SERVER_DEFAULT "127.0.0.1:7400"
#define CLIENT_PIPELINE_DEFAULT 1024
#define CLIENT_CONNECT_TIMEOUT_MS 5000
#define CLIENT_REQUEST_TIMEOUT_MS 30000
#define CLIENT_RETRY_MAX_MS 60000
#define CLIENT_BACKOFF_MIN_MS 50
#define CLIENT_BACKOFF_MAX_MS 2000
#define CLIENT_PUB_RETRY_MS 100
/* Only UNAVAILABLE answers for this long (a node cut off from the leader):
 * with other servers in the list, try the next one. */
#define CLIENT_UNAVAIL_SWITCH_MS 1500
#define CLIENT_CLUSTER_NODES_MAX 64
#define CLIENT_TICK_MS 50
#define CLIENT_CREDIT_DEFAULT 1000
#define CLIENT_OUT_HIGH_BYTES (4u << 20)  /* stop writing requests above this */
#define CLIENT_OUT_LOW_BYTES (1u << 20)   /* resume when output drains below */
#define CLIENT_IN_FRAME_BYTES_MAX (64u << 20)
#define CLIENT_SERVERS_MAX 16
#define CLIENT_RELEASE_STACK 64           /* acks released per batch without allocating */
#define CLIENT_BATCH_BYTES_DEFAULT (256u << 10)
#define CLIENT_BATCH_COUNT_MAX 65536u     /* PublishBatch.count is 1 .. 65536 */
#define CLIENT_BATCH_CAP_MIN_BYTES 4096u  /* first allocation of a batch's records */
/* A PublishBatch frame around its records: id, tags, lengths, fixed fields
 * (at most 70 bytes) plus the topic name. */
#define CLIENT_BATCH_ENVELOPE_BYTES 96u
#define CLIENT_BATCH_REC_HDR_BYTES 12u    /* [u32 key_len][u32 headers_len][u32 payload_len] */
#define CLIENT_HDR_KEY_BYTES_MAX 255u     /* header keys in a batch record: a u16 length, at most 255 */
#define CLIENT_BATCH_FORMAT 1u            /* the RecordBatch format unpack.c reads (common/recbatch.h) */

/* glibc's sys/queue.h lacks the _SAFE iterator. */
#ifndef TAILQ_FOREACH_SAFE
#define TAILQ_FOREACH_SAFE(var, head, field, tvar)                                                                   \
	for ((var) = TAILQ_FIRST((head)); (var) && ((tvar) = TAILQ_NEXT((var), field), 1); (var) = (tvar))
#endif

enum conn_state { CS_IDLE, CS_BACKOFF, CS_CONNECTING, CS_HANDSHAKE, CS_READY };
enum req_queue { RQ_NONE, RQ_PENDING, RQ_INFLIGHT, RQ_RETRY };
enum req_kind {
	RK_PUBLISH,
	RK_DONE,
	RK_TOPIC,
	RK_TOPICS,
	RK_SUBSCRIBE,
	RK_FETCH,
	RK_GROUP,
	RK_STATUS,
	RK_CLUSTER,
	RK_CONSUMER,
	RK_PULL,
	RK_AUTH,
	RK_NOREPLY
};

struct sub;

/* Where the server stored a publish (or the first message of a batch). */
struct pub_pos {
	uint32_t partition;
	uint64_t offset;
	int64_t timestamp_ms;
	int duplicate;
	uint64_t term, log_index;
};

/* The acknowledgement callback of one batched message. */
struct pub_cb {
	sluice_ack_cb cb;
	void *arg;
};

/* One publish request in send order: its answer waits here until every
 * publish sent before it is answered, so a client sees the acks of one
 * partition in log order even when a failover delays the answer to an
 * earlier message (its retry is answered as a duplicate with the original,
 * earlier offset). A batch is one slot; its message i is at offset + i. */
struct pub_slot {
	TAILQ_ENTRY(pub_slot) link;
	int resolved;
	int err;
	char *msg;
	struct pub_pos pos;
	uint64_t order;           /* send order, the tie-break */
	sluice_ack_cb cb;         /* a single Publish */
	void *arg;
	struct pub_cb *cbs;       /* a PublishBatch: n callbacks in message order; else NULL */
	uint32_t n;               /* messages: 1, or the batch's count */
};
TAILQ_HEAD(pub_slot_list, pub_slot);

/* An open batch: keyless publishes of one (topic, partition space) waiting
 * up to linger_ms for more to join. recs is PublishBatch.records as it goes
 * on the wire; nothing else is kept per message but its callback. */
struct batch {
	TAILQ_ENTRY(batch) link;
	char *topic;
	int has_partition;
	uint32_t partition;       /* 0 unless has_partition */
	uint8_t *recs;
	size_t len, cap;
	struct pub_cb *cbs;
	size_t n, cbs_cap;
	uint64_t deadline_ns;     /* linger_ms after its first message */
};
TAILQ_HEAD(batch_list, batch);

struct req {
	TAILQ_ENTRY(req) link;
	uint64_t id;
	enum req_kind kind;
	enum req_queue q;
	Sluice__Frame__BodyCase body;
	uint8_t *frame;           /* encoded, with length prefix */
	size_t frame_len;
	uint32_t attempts;
	uint32_t extra_timeout_ms; /* long-poll wait on top of the request timeout */
	uint64_t deadline_ns;     /* in flight: answer expected before */
	uint64_t retry_ns;        /* in retry: re-queue at */
	uint64_t unavail_since_ns; /* first UNAVAILABLE answer to this request; 0: none */
	union {
		sluice_ack_cb ack;
		sluice_done_cb done;
		sluice_topic_cb topic;
		sluice_topics_cb topics;
		sluice_fetch_cb fetch;
		sluice_group_cb group;
		sluice_status_cb status;
		sluice_cluster_cb cluster;
		sluice_consumer_cb consumer;
		sluice_pull_cb pull;
		sluice_principals_cb principals;
		sluice_token_cb token;
		sluice_audit_cb audit;
	} cb;
	void *arg;
	struct sub *sub;          /* RK_SUBSCRIBE */
	struct pub_slot *slot;    /* RK_PUBLISH */
};
TAILQ_HEAD(req_list, req);

struct sub_part {
	uint32_t partition;
	uint64_t next;            /* next offset to deliver */
};

struct sub_leg {
	uint64_t server_id;
	uint32_t consumed;        /* delivered since the last Credit */
};

struct sub {
	TAILQ_ENTRY(sub) link;
	uint64_t local_id;
	char *topic;
	char *group;
	uint32_t *partitions;
	size_t partitions_n;
	enum sluice_start start;
	uint64_t offset;
	int64_t timestamp_ms;
	uint32_t credit;
	sluice_msg_cb cb;
	void *arg;
	struct sub_part *parts;
	size_t parts_n, parts_cap;
	struct sub_leg *legs;
	size_t legs_n, legs_cap;
	int closed;               /* unsubscribed or failed: free when callbacks unwind */
};
TAILQ_HEAD(sub_list, sub);

struct sluice_client {
	struct event_base *base;
	char *servers[CLIENT_SERVERS_MAX];
	size_t servers_n, server_idx;
	char *client_name;
	uint32_t pipeline_max, connect_timeout_ms, request_timeout_ms, retry_max_ms;
	uint64_t producer_id, sequence, next_id, next_sub_id;

	enum conn_state state;
	struct bufferevent *bev;
	SSL_CTX *tls_ctx;         /* NULL: plain TCP */
	char *tls_name;           /* name the certificate must carry; NULL: the host of the address */
	int last_conn_err;        /* why the last connection attempt failed: SL_ETLS or 0 */
	struct auth_keypair key;  /* opts.key_file: proves who this client is */
	int has_key;
	char *token;              /* opts.token */
	uint64_t auth_id;         /* the Authenticate in flight (0: none) */
	char auth_error[256];     /* why the last one was refused */
	uint32_t server_frame_bytes_max;
	int messages_only;        /* opts.messages_only: no Hello.accept_batches */
	uint64_t down_since_ns;   /* first failure of the current outage; 0: up */
	uint32_t backoff_ms;
	int gave_up;              /* the last outage exhausted retry_max_ms */
	struct event *conn_timer; /* connect/handshake timeout, and backoff */
	struct event *tick;       /* request deadlines and publish retries */
	uint64_t unavail_since_ns; /* publishes on this connection answered only UNAVAILABLE since; 0: not */
	uint64_t ack_term, ack_log_index; /* of the ack being delivered (sluice_ack_position) */
	struct pub_slot_list pubq;        /* publishes in send order, answered or not */
	uint64_t pub_order;
	uint32_t linger_ms, batch_bytes;
	struct batch_list batches;        /* open, oldest first (so in deadline order) */
	struct event *linger_timer;       /* closes the oldest open batch at its deadline */
	size_t msgs_extra;                /* messages sluice_client_inflight counts beyond one per request */

	struct req_list pending, inflight, retry;
	size_t pending_n, inflight_n, retry_n;
	struct sub_list subs;

	int cb_depth;             /* > 0 while a user callback may be running */
	int dead;                 /* sluice_client_free called inside a callback */
	int closing;              /* being freed: refuse new requests */
};

static void conn_start(struct sluice_client *c);
static void conn_lost(struct sluice_client *c, int err);
static void fail_everything(struct sluice_client *c, int err);
static void client_pump(struct sluice_client *c);
static void client_gc(struct sluice_client *c);

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static char *str_dup(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* ---------- queues ---------- */

static struct req_list *queue_of(struct sluice_client *c, enum req_queue q, size_t **n)
{
	switch (q) {
	case RQ_PENDING:
		*n = &c->pending_n;
		return &c->pending;
	case RQ_INFLIGHT:
		*n = &c->inflight_n;
		return &c->inflight;
	case RQ_RETRY:
		*n = &c->retry_n;
		return &c->retry;
	default:
		return NULL;
	}
}

static void req_unlink(struct sluice_client *c, struct req *r)
{
	size_t *n;
	struct req_list *l = queue_of(c, r->q, &n);
	if (l) {
		TAILQ_REMOVE(l, r, link);
		(*n)--;
	}
	r->q = RQ_NONE;
}

static void req_append(struct sluice_client *c, struct req *r, enum req_queue q)
{
	size_t *n;
	struct req_list *l = queue_of(c, q, &n);
	TAILQ_INSERT_TAIL(l, r, link);
	(*n)++;
	r->q = q;
}

/* Insert into pending keeping id order, so retried publishes go before newer ones. */
static void pending_insert_ordered(struct sluice_client *c, struct req *r)
{
	struct req *it;
	TAILQ_FOREACH(it, &c->pending, link)
	{
		if (it->id > r->id)
			break;
	}
	if (it)
		TAILQ_INSERT_BEFORE(it, r, link);
	else
		TAILQ_INSERT_TAIL(&c->pending, r, link);
	c->pending_n++;
	r->q = RQ_PENDING;
}

static void req_free(struct req *r)
{
	if (!r)
		return;
	free(r->frame);
	free(r);
}

/* ---------- subscriptions: bookkeeping ---------- */

static struct sub_part *sub_part_find(struct sub *s, uint32_t partition)
{
	for (size_t i = 0; i < s->parts_n; i++)
		if (s->parts[i].partition == partition)
			return &s->parts[i];
	return NULL;
}

static int sub_part_set(struct sub *s, uint32_t partition, uint64_t next)
{
	struct sub_part *p = sub_part_find(s, partition);
	if (p) {
		p->next = next;
		return SL_OK;
	}
	if (vec_reserve(&s->parts, &s->parts_cap, s->parts_n + 1) != SL_OK)
		return SL_ENOMEM;
	s->parts[s->parts_n].partition = partition;
	s->parts[s->parts_n].next = next;
	s->parts_n++;
	return SL_OK;
}

static int sub_leg_add(struct sub *s, uint64_t server_id)
{
	if (vec_reserve(&s->legs, &s->legs_cap, s->legs_n + 1) != SL_OK)
		return SL_ENOMEM;
	s->legs[s->legs_n].server_id = server_id;
	s->legs[s->legs_n].consumed = 0;
	s->legs_n++;
	return SL_OK;
}

static void sub_free(struct sub *s)
{
	if (!s)
		return;
	free(s->topic);
	free(s->group);
	free(s->partitions);
	free(s->parts);
	free(s->legs);
	free(s);
}

static struct sub_leg *sub_leg_find(struct sluice_client *c, uint64_t server_id, struct sub **out)
{
	struct sub *s;
	TAILQ_FOREACH(s, &c->subs, link)
	{
		if (s->closed)
			continue;
		for (size_t i = 0; i < s->legs_n; i++) {
			if (s->legs[i].server_id == server_id) {
				*out = s;
				return &s->legs[i];
			}
		}
	}
	return NULL;
}

/* ---------- encoding ---------- */

static int req_new(struct sluice_client *c, enum req_kind kind, Sluice__Frame *f, struct req **out)
{
	struct req *r = calloc(1, sizeof(*r));
	if (!r)
		return SL_ENOMEM;
	r->id = ++c->next_id;
	r->kind = kind;
	r->body = f->body_case;
	f->id = r->id;
	r->frame_len = codec_frame_size(f);
	r->frame = malloc(r->frame_len);
	if (!r->frame) {
		free(r);
		return SL_ENOMEM;
	}
	codec_frame_encode(f, r->frame);
	*out = r;
	return SL_OK;
}

/* Queue a new request and start a connection if there is none. */
static void req_submit(struct sluice_client *c, struct req *r)
{
	req_append(c, r, RQ_PENDING);
	if (c->state == CS_IDLE) {
		c->down_since_ns = 0;
		c->gave_up = 0;
		conn_start(c);
	}
	client_pump(c);
}

/* Write a frame that expects no tracked answer (Credit, Unsubscribe). */
static void send_untracked(struct sluice_client *c, Sluice__Frame *f)
{
	if (c->state != CS_READY)
		return;
	f->id = ++c->next_id;
	size_t n = codec_frame_size(f);
	uint8_t stackbuf[256];
	uint8_t *buf = n <= sizeof(stackbuf) ? stackbuf : malloc(n);
	if (!buf)
		return;
	codec_frame_encode(f, buf);
	bufferevent_write(c->bev, buf, n);
	if (buf != stackbuf)
		free(buf);
}

/* ---------- completing requests ---------- */

static void msg_from_wire(const Sluice__Message *w, struct sluice_msg *m, struct sluice_header *hs)
{
	m->topic = w->topic;
	m->partition = w->partition;
	m->offset = w->offset;
	m->timestamp_ms = w->timestamp_ms;
	m->key = sluice_bytes_make(w->key.data, w->key.len);
	m->payload = sluice_bytes_make(w->payload.data, w->payload.len);
	for (size_t i = 0; i < w->n_headers; i++) {
		hs[i].key = w->headers[i]->key;
		hs[i].value = sluice_bytes_make(w->headers[i]->value.data, w->headers[i]->value.len);
	}
	m->headers = hs;
	m->headers_n = w->n_headers;
}

static void pub_slot_free(struct pub_slot *ps)
{
	free(ps->msg);
	free(ps->cbs);
	free(ps);
}

/* Call the callbacks of an answered slot: one, or one per batched message in
 * message order (message i at offset + i). */
static void pub_slot_deliver(struct sluice_client *c, const struct pub_slot *ps)
{
	const struct pub_pos *p = &ps->pos;
	c->ack_term = p->term;
	c->ack_log_index = p->log_index;
	if (!ps->cbs) {
		if (ps->cb)
			ps->cb(ps->arg, ps->err, ps->msg, p->partition, p->offset, p->timestamp_ms, p->duplicate);
	} else {
		for (uint32_t i = 0; i < ps->n; i++) {
			if (ps->cbs[i].cb)
				ps->cbs[i].cb(ps->cbs[i].arg, ps->err, ps->msg, p->partition,
					      ps->err ? 0 : p->offset + i, p->timestamp_ms, p->duplicate);
		}
	}
	c->ack_term = c->ack_log_index = 0;
}

static int pub_slot_cmp(const void *a, const void *b)
{
	const struct pub_slot *x = *(struct pub_slot *const *)a, *y = *(struct pub_slot *const *)b;
	if (!x->err && !y->err) {
		if (x->pos.partition != y->pos.partition)
			return x->pos.partition < y->pos.partition ? -1 : 1;
		if (x->pos.offset != y->pos.offset)
			return x->pos.offset < y->pos.offset ? -1 : 1;
	}
	return x->order < y->order ? -1 : x->order > y->order;
}

/* Deliver the answered publishes at the head of the send-order queue, those
 * of one partition in offset order. Runs inside the caller's cb_depth, and
 * may be re-entered from a callback (a publish failed at once), so the array
 * is this call's own. Usually the batch fits the stack; without memory for a
 * bigger one, the first CLIENT_RELEASE_STACK go now and the rest next time. */
static void pub_release(struct sluice_client *c)
{
	struct pub_slot *stack[CLIENT_RELEASE_STACK], **heap = NULL, **v = stack, *ps;
	size_t n = 0, heap_cap = 0, avail = CLIENT_RELEASE_STACK;
	TAILQ_FOREACH(ps, &c->pubq, link) {
		if (!ps->resolved)
			break;
		n++;
	}
	if (n > avail && vec_reserve(&heap, &heap_cap, n) == SL_OK) {
		v = heap;
		avail = heap_cap;
	}
	n = 0;
	TAILQ_FOREACH(ps, &c->pubq, link) {
		if (!ps->resolved || n == avail)
			break;
		v[n++] = ps;
	}
	for (size_t i = 0; i < n; i++)
		TAILQ_REMOVE(&c->pubq, v[i], link);
	qsort(v, n, sizeof(*v), pub_slot_cmp);
	for (size_t i = 0; i < n; i++) {
		pub_slot_deliver(c, v[i]);
		pub_slot_free(v[i]);
	}
	free(heap);
}

/* Settle the publish (or batch) of r: err, or where it was stored. */
static void pub_resolve(struct sluice_client *c, struct req *r, int err, const char *msg, const struct pub_pos *pos)
{
	struct pub_slot *ps = r->slot;
	r->slot = NULL;
	if (!ps) {
		if (r->cb.ack)
			r->cb.ack(r->arg, err, msg, 0, 0, 0, 0);
		return;
	}
	if (ps->cbs)
		c->msgs_extra -= ps->n - 1; /* the request itself left its queue already */
	ps->resolved = 1;
	ps->err = err;
	ps->msg = msg ? strdup(msg) : NULL;
	if (pos)
		ps->pos = *pos;
	pub_release(c);
}

/* A PublishAck or PublishBatchAck for r. */
static void pub_complete(struct sluice_client *c, struct req *r, const Sluice__Frame *f)
{
	struct pub_pos pos;
	if (f->body_case == SLUICE__FRAME__BODY_PUBLISH_ACK) {
		const Sluice__PublishAck *a = f->publish_ack;
		pos = (struct pub_pos){a->partition, a->offset, a->timestamp_ms, a->duplicate, a->term, a->log_index};
		pub_resolve(c, r, SL_OK, NULL, &pos);
		return;
	}
	const Sluice__PublishBatchAck *a = f->publish_batch_ack;
	if (r->slot && a->count != r->slot->n) {
		pub_resolve(c, r, SL_EMALFORMED, "batch acknowledged with another message count", NULL);
		return;
	}
	pos = (struct pub_pos){a->partition, a->base_offset, a->timestamp_ms, a->duplicate, a->term, a->log_index};
	pub_resolve(c, r, SL_OK, NULL, &pos);
}

static void req_fail(struct sluice_client *c, struct req *r, int err, const char *msg)
{
	c->cb_depth++;
	switch (r->kind) {
	case RK_PUBLISH:
		pub_resolve(c, r, err, msg, NULL);
		break;
	case RK_DONE:
		if (r->cb.done)
			r->cb.done(r->arg, err, msg);
		break;
	case RK_TOPIC:
		if (r->cb.topic)
			r->cb.topic(r->arg, err, msg, NULL);
		break;
	case RK_TOPICS:
		if (r->cb.topics)
			r->cb.topics(r->arg, err, msg, NULL, 0);
		break;
	case RK_FETCH:
		if (r->cb.fetch)
			r->cb.fetch(r->arg, err, msg, NULL, 0, 0, 0);
		break;
	case RK_GROUP:
		if (r->cb.group)
			r->cb.group(r->arg, err, msg, NULL, 0);
		break;
	case RK_STATUS:
		if (r->cb.status)
			r->cb.status(r->arg, err, msg, NULL);
		break;
	case RK_CLUSTER:
		if (r->cb.cluster)
			r->cb.cluster(r->arg, err, msg, NULL);
		break;
	case RK_CONSUMER:
		if (r->cb.consumer)
			r->cb.consumer(r->arg, err, msg, NULL, 0);
		break;
	case RK_PULL:
		if (r->cb.pull)
			r->cb.pull(r->arg, err, msg, NULL, 0);
		break;
	case RK_AUTH:
		if (r->body == SLUICE__FRAME__BODY_LIST_PRINCIPALS && r->cb.principals)
			r->cb.principals(r->arg, err, msg, NULL, 0);
		else if (r->body == SLUICE__FRAME__BODY_ISSUE_TOKEN && r->cb.token)
			r->cb.token(r->arg, err, msg, NULL, 0);
		else if (r->body == SLUICE__FRAME__BODY_LIST_AUDIT && r->cb.audit)
			r->cb.audit(r->arg, err, msg, NULL, 0);
		break;
	case RK_SUBSCRIBE:
		if (r->sub && !r->sub->closed) {
			r->sub->closed = 1;
			if (r->sub->cb)
				r->sub->cb(r->sub->arg, err, msg, NULL);
		}
		break;
	case RK_NOREPLY:
		break;
	}
	c->cb_depth--;
}

static void topic_info_convert(const Sluice__TopicInfo *w, struct sluice_topic_info *ti,
			       struct sluice_partition_info *parts)
{
	ti->name = w->name;
	ti->partitions = w->config ? w->config->partitions : (uint32_t)w->n_partitions;
	ti->retention_ms = w->config ? w->config->retention_ms : 0;
	ti->retention_bytes = w->config ? w->config->retention_bytes : 0;
	ti->created_ms = w->created_ms;
	ti->created_by = w->created_by ? w->created_by : "";
	for (size_t i = 0; i < w->n_partitions; i++) {
		parts[i].partition = w->partitions[i]->partition;
		parts[i].first_offset = w->partitions[i]->first_offset;
		parts[i].end_offset = w->partitions[i]->end_offset;
		parts[i].bytes = w->partitions[i]->bytes;
	}
	if (ti->partitions == 0)
		ti->partitions = (uint32_t)w->n_partitions;
	ti->parts = parts;
	ti->parts_n = w->n_partitions;
}

static void complete_topic(struct sluice_client *c, struct req *r, const Sluice__TopicInfo *w)
{
	struct sluice_topic_info ti;
	struct sluice_partition_info *parts = calloc(w->n_partitions + 1, sizeof(*parts));
	if (!parts) {
		req_fail(c, r, SL_ENOMEM, NULL);
		return;
	}
	topic_info_convert(w, &ti, parts);
	r->cb.topic(r->arg, SL_OK, NULL, &ti);
	free(parts);
}

static void complete_topics(struct sluice_client *c, struct req *r, const Sluice__TopicList *w)
{
	size_t nparts = 0;
	for (size_t i = 0; i < w->n_topics; i++)
		nparts += w->topics[i]->n_partitions;
	struct sluice_topic_info *tis = calloc(w->n_topics + 1, sizeof(*tis));
	struct sluice_partition_info *parts = calloc(nparts + 1, sizeof(*parts));
	if (!tis || !parts) {
		free(tis);
		free(parts);
		req_fail(c, r, SL_ENOMEM, NULL);
		return;
	}
	size_t off = 0;
	for (size_t i = 0; i < w->n_topics; i++) {
		topic_info_convert(w->topics[i], &tis[i], parts + off);
		off += w->topics[i]->n_partitions;
	}
	r->cb.topics(r->arg, SL_OK, NULL, tis, w->n_topics);
	free(tis);
	free(parts);
}

/* A FetchResult's messages gathered for its callback: header arrays are
 * copied per message (with their keys), the rest points into the frame. */
struct fetch_acc {
	struct sluice_msg *ms;
	void **blocks;            /* per message: its copied headers, or NULL */
	size_t n, cap;
	int err;
};

static int fetch_acc_cb(void *arg, const struct sluice_msg *m)
{
	struct fetch_acc *a = arg;
	size_t keys = 0, i;
	SL_ASSERT(a->n < a->cap); /* room for every record was made from the checked counts */
	a->ms[a->n] = *m;
	a->blocks[a->n] = NULL;
	if (m->headers_n) {
		for (i = 0; i < m->headers_n; i++)
			keys += strlen(m->headers[i].key) + 1;
		struct sluice_header *hs = malloc(m->headers_n * sizeof(*hs) + keys);
		if (!hs) {
			a->err = SL_ENOMEM;
			return 1;
		}
		char *kp = (char *)(hs + m->headers_n);
		for (i = 0; i < m->headers_n; i++) {
			size_t kl = strlen(m->headers[i].key) + 1;
			memcpy(kp, m->headers[i].key, kl);
			hs[i] = (struct sluice_header){kp, m->headers[i].value};
			kp += kl;
		}
		a->ms[a->n].headers = hs;
		a->blocks[a->n] = hs;
	}
	a->n++;
	return 0;
}

/* The messages of w, whether it carries Message or RecordBatch: SL_OK, or
 * SL_ECORRUPT for a batch that fails its checks, or SL_ENOMEM. */
static int fetch_gather(const Sluice__FetchResult *w, struct fetch_acc *a)
{
	size_t total = w->n_messages, n, i;
	for (i = 0; i < w->n_batches; i++) {
		if (unpack_check(w->batches[i], &n) != SL_OK)
			return SL_ECORRUPT;
		total += n; /* each batch holds at least 40 bytes a record: bounded by the frame */
	}
	a->cap = total + 1;
	a->ms = calloc(a->cap, sizeof(*a->ms));
	a->blocks = calloc(a->cap, sizeof(*a->blocks));
	if (!a->ms || !a->blocks)
		return SL_ENOMEM;
	for (i = 0; i < w->n_messages && a->err == SL_OK; i++) {
		struct sluice_header stack[UNPACK_HEADERS_STACK];
		size_t nh = w->messages[i]->n_headers;
		struct sluice_header *hs = nh <= UNPACK_HEADERS_STACK ? stack : calloc(nh, sizeof(*hs));
		struct sluice_msg m;
		if (!hs)
			return SL_ENOMEM;
		msg_from_wire(w->messages[i], &m, hs);
		fetch_acc_cb(a, &m);
		if (hs != stack)
			free(hs);
	}
	for (i = 0; i < w->n_batches && a->err == SL_OK; i++) {
		int err = unpack_batch(w->batches[i], fetch_acc_cb, a);
		if (err != SL_OK)
			return err;
	}
	return a->err;
}

static void complete_fetch(struct sluice_client *c, struct req *r, const Sluice__FetchResult *w)
{
	struct fetch_acc a = {0};
	int err = fetch_gather(w, &a);
	if (err == SL_OK)
		r->cb.fetch(r->arg, SL_OK, NULL, a.ms, a.n, w->first_offset, w->end_offset);
	else
		req_fail(c, r, err, err == SL_ECORRUPT ? "a fetched batch failed its checks" : NULL);
	for (size_t i = 0; a.blocks && i < a.n; i++)
		free(a.blocks[i]);
	free(a.ms);
	free(a.blocks);
}

static void complete_group(struct sluice_client *c, struct req *r, const Sluice__GroupInfo *w)
{
	struct sluice_group_partition *ps = calloc(w->n_partitions + 1, sizeof(*ps));
	if (!ps) {
		req_fail(c, r, SL_ENOMEM, NULL);
		return;
	}
	for (size_t i = 0; i < w->n_partitions; i++) {
		ps[i].topic = w->partitions[i]->topic;
		ps[i].partition = w->partitions[i]->partition;
		ps[i].committed_offset = w->partitions[i]->committed_offset;
		ps[i].end_offset = w->partitions[i]->end_offset;
		ps[i].lag = w->partitions[i]->lag;
	}
	r->cb.group(r->arg, SL_OK, NULL, ps, w->n_partitions);
	free(ps);
}

static void complete_status(struct req *r, const Sluice__NodeStatusResult *w)
{
	struct sluice_node_status st = {
		.node_id = w->node_id,
		.frontends = w->frontends,
		.topics = w->topics,
		.logwriter_restarts = w->logwriter_restarts,
		.frontend_restarts = w->frontend_restarts,
		.version = w->version,
		.uptime_ms = w->uptime_ms,
		.map_bytes = w->map_bytes,
		.used_bytes = w->used_bytes,
		.connections = w->connections,
		.published = w->published,
	};
	r->cb.status(r->arg, SL_OK, NULL, &st);
}

static void complete_cluster(struct sluice_client *c, struct req *r, const Sluice__ClusterStatusResult *w)
{
	struct sluice_cluster_node nodes[CLIENT_CLUSTER_NODES_MAX];
	size_t n = w->n_nodes < CLIENT_CLUSTER_NODES_MAX ? w->n_nodes : CLIENT_CLUSTER_NODES_MAX;
	struct sluice_cluster_status st = {
		.node_id = w->node_id,
		.leader_id = w->leader_id,
		.role = w->role ? w->role : "",
		.term = w->term,
		.first_index = w->first_index,
		.last_index = w->last_index,
		.commit_index = w->commit_index,
		.applied_index = w->applied_index,
		.nodes = nodes,
		.nodes_n = n,
	};
	(void)c;
	for (size_t i = 0; i < n; i++) {
		const Sluice__ClusterNode *x = w->nodes[i];
		nodes[i].id = x->id;
		nodes[i].raft_address = x->raft_address ? x->raft_address : "";
		nodes[i].client_address = x->client_address ? x->client_address : "";
		nodes[i].reachable = x->reachable ? 1 : 0;
		nodes[i].match_index = x->match_index;
	}
	r->cb.cluster(r->arg, SL_OK, NULL, &st);
}

static enum sluice_start start_from_wire(Sluice__StartAt s)
{
	switch (s) {
	case SLUICE__START_AT__LATEST:
		return SLUICE_LATEST;
	case SLUICE__START_AT__OFFSET:
		return SLUICE_OFFSET;
	case SLUICE__START_AT__TIMESTAMP:
		return SLUICE_TIMESTAMP;
	default:
		return SLUICE_EARLIEST;
	}
}

static const char *str_or_empty(const char *s)
{
	return s ? s : "";
}

static void consumer_cfg_convert(const Sluice__ConsumerConfig *w, struct sluice_consumer_cfg *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->topic = "";
	cfg->dead_letter_topic = "";
	if (!w)
		return;
	cfg->topic = str_or_empty(w->topic);
	cfg->shared = w->shared ? 1 : 0;
	cfg->max_in_flight = w->max_in_flight;
	cfg->max_deliveries = w->max_deliveries;
	cfg->never_dead_letter = w->never_dead_letter ? 1 : 0;
	cfg->ack_timeout_ms = w->ack_timeout_ms;
	cfg->schedule_ms = w->n_schedule_ms ? w->schedule_ms : NULL;
	cfg->schedule_n = w->n_schedule_ms;
	cfg->dead_letter_topic = str_or_empty(w->dead_letter_topic);
	cfg->start = start_from_wire(w->start);
	cfg->offset = w->offset;
	cfg->timestamp_ms = w->timestamp_ms;
	cfg->webhook = str_or_empty(w->webhook);
}

static void consumer_info_convert(const Sluice__ConsumerInfo *w, struct sluice_consumer_info *ci,
				  struct sluice_consumer_partition *parts)
{
	ci->name = str_or_empty(w->name);
	consumer_cfg_convert(w->config, &ci->cfg);
	ci->created_ms = w->created_ms;
	for (size_t i = 0; i < w->n_partitions; i++) {
		const Sluice__ConsumerPartition *x = w->partitions[i];
		parts[i] = (struct sluice_consumer_partition){
			.partition = x->partition,
			.ack_floor = x->ack_floor,
			.next_offset = x->next_offset,
			.in_flight = x->in_flight,
			.end_offset = x->end_offset,
			.lag = x->lag,
			.delivered = x->delivered,
			.redelivered = x->redelivered,
			.acked = x->acked,
			.dead_lettered = x->dead_lettered,
			.last_error = str_or_empty(x->last_error),
			.next_due_ms = x->next_due_ms,
		};
	}
	ci->parts = parts;
	ci->parts_n = w->n_partitions;
}

/* A ConsumerInfo (describe: n 1) or the consumers of a ConsumerList. */
static void complete_consumers(struct sluice_client *c, struct req *r, Sluice__ConsumerInfo *const *ws, size_t n)
{
	size_t nparts = 0;
	for (size_t i = 0; i < n; i++)
		nparts += ws[i]->n_partitions;
	struct sluice_consumer_info *cis = calloc(n + 1, sizeof(*cis));
	struct sluice_consumer_partition *parts = calloc(nparts + 1, sizeof(*parts));
	if (!cis || !parts) {
		free(cis);
		free(parts);
		req_fail(c, r, SL_ENOMEM, NULL);
		return;
	}
	size_t off = 0;
	for (size_t i = 0; i < n; i++) {
		consumer_info_convert(ws[i], &cis[i], parts + off);
		off += ws[i]->n_partitions;
	}
	r->cb.consumer(r->arg, SL_OK, NULL, cis, n);
	free(cis);
	free(parts);
}

static void complete_pull(struct sluice_client *c, struct req *r, const Sluice__PullResult *w)
{
	size_t nh = 0;
	for (size_t i = 0; i < w->n_messages; i++) {
		if (!w->messages[i]->message) {
			req_fail(c, r, SL_EMALFORMED, "pulled message without its message");
			return;
		}
		nh += w->messages[i]->message->n_headers;
	}
	struct sluice_pulled *ms = calloc(w->n_messages + 1, sizeof(*ms));
	struct sluice_header *hs = calloc(nh + 1, sizeof(*hs));
	if (!ms || !hs) {
		free(ms);
		free(hs);
		req_fail(c, r, SL_ENOMEM, NULL);
		return;
	}
	size_t off = 0;
	for (size_t i = 0; i < w->n_messages; i++) {
		msg_from_wire(w->messages[i]->message, &ms[i].msg, hs + off);
		ms[i].attempt = w->messages[i]->attempt;
		off += w->messages[i]->message->n_headers;
	}
	r->cb.pull(r->arg, SL_OK, NULL, ms, w->n_messages);
	free(ms);
	free(hs);
}

static void complete_subscribed(struct sluice_client *c, struct req *r, const Sluice__Subscribed *w)
{
	struct sub *s = r->sub;
	if (!s || s->closed) {
		/* Unsubscribed while the request was in flight: drop the server side. */
		Sluice__Unsubscribe u = SLUICE__UNSUBSCRIBE__INIT;
		Sluice__Frame f = SLUICE__FRAME__INIT;
		u.subscription_id = w->subscription_id;
		f.body_case = SLUICE__FRAME__BODY_UNSUBSCRIBE;
		f.unsubscribe = &u;
		send_untracked(c, &f);
		return;
	}
	int err = sub_leg_add(s, w->subscription_id);
	for (size_t i = 0; err == SL_OK && i < w->n_positions; i++) {
		/* Keep a position we already know: it is where the user left off. */
		if (!sub_part_find(s, w->positions[i]->partition))
			err = sub_part_set(s, w->positions[i]->partition, w->positions[i]->offset);
	}
	if (err != SL_OK)
		req_fail(c, r, err, NULL);
}

/* Whether a refusal with code is retried like a publish refused UNAVAILABLE.
 * Pull and AckMessages are: acks are idempotent, and a Pull whose answer was
 * lost only delays what it picked until their ack timeout (at least once). */
static int req_retries_refusal(const struct req *r, int code)
{
	if (r->kind == RK_PUBLISH)
		return code == SL_EUNAVAILABLE || code == SL_EFENCED;
	return code == SL_EUNAVAILABLE &&
	       (r->body == SLUICE__FRAME__BODY_PULL || r->body == SLUICE__FRAME__BODY_ACK_MESSAGES);
}

/* Map a server error onto the request; returns 1 if the request was re-queued. */
static int complete_error(struct sluice_client *c, struct req *r, const Sluice__Error *e)
{
	int code = e ? (int)e->code : SL_EINTERNAL;
	const char *msg = e && e->message && e->message[0] ? e->message : NULL;
	if (code == SL_OK)
		code = SL_EINTERNAL;
	if (req_retries_refusal(r, code)) {
		/* no leader reachable from that node right now (election, partition), or
		 * fenced behind an earlier publish of ours that is being retried:
		 * retry, byte for byte, until retry_max_ms has passed since the first refusal */
		uint64_t now = mono_ns();
		if (r->unavail_since_ns == 0)
			r->unavail_since_ns = now;
		if (c->unavail_since_ns == 0)
			c->unavail_since_ns = now;
		if (now - r->unavail_since_ns < (uint64_t)c->retry_max_ms * 1000000ull) {
			r->retry_ns = now + (uint64_t)CLIENT_PUB_RETRY_MS * 1000000ull;
			req_append(c, r, RQ_RETRY);
			return 1;
		}
	}
	/* A re-sent admin request may find its first attempt already applied. */
	if (r->attempts > 1 && ((r->body == SLUICE__FRAME__BODY_CREATE_TOPIC && code == SL_ETOPIC_EXISTS) ||
				(r->body == SLUICE__FRAME__BODY_DELETE_TOPIC && code == SL_ENOTOPIC) ||
				(r->body == SLUICE__FRAME__BODY_CREATE_CONSUMER && code == SL_ECONSUMER_EXISTS) ||
				(r->body == SLUICE__FRAME__BODY_DELETE_CONSUMER && code == SL_ENOCONSUMER))) {
		req_fail(c, r, SL_OK, NULL);
		return 0;
	}
	req_fail(c, r, code, msg);
	return 0;
}

static void complete_principals(struct req *r, const Sluice__PrincipalList *l)
{
	struct sluice_principal *v = calloc(l->n_principals ? l->n_principals : 1, sizeof(*v));
	if (!v) {
		r->cb.principals(r->arg, SL_ENOMEM, "out of memory", NULL, 0);
		return;
	}
	for (size_t i = 0; i < l->n_principals; i++) {
		const Sluice__Principal *p = l->principals[i];
		v[i] = (struct sluice_principal){p->name, (const char *const *)p->public_keys, p->n_public_keys,
		                                 (const char *const *)p->permissions, p->n_permissions, p->created_ms,
		                                 p->created_by};
	}
	r->cb.principals(r->arg, SL_OK, NULL, v, l->n_principals);
	free(v);
}

static void complete_audit(struct req *r, const Sluice__AuditList *l)
{
	struct sluice_audit_entry *v = calloc(l->n_entries ? l->n_entries : 1, sizeof(*v));
	if (!v) {
		r->cb.audit(r->arg, SL_ENOMEM, "out of memory", NULL, 0);
		return;
	}
	for (size_t i = 0; i < l->n_entries; i++) {
		const Sluice__AuditEntry *e = l->entries[i];
		v[i] = (struct sluice_audit_entry){e->seq, e->timestamp_ms, e->principal, e->action, e->detail};
	}
	r->cb.audit(r->arg, SL_OK, NULL, v, l->n_entries);
	free(v);
}

/* RK_AUTH: the body the request wants, after calling back with it. */
static int complete_auth(struct req *r, const Sluice__Frame *f)
{
	switch (r->body) {
	case SLUICE__FRAME__BODY_LIST_PRINCIPALS:
		if (f->body_case == SLUICE__FRAME__BODY_PRINCIPAL_LIST && r->cb.principals)
			complete_principals(r, f->principal_list);
		return SLUICE__FRAME__BODY_PRINCIPAL_LIST;
	case SLUICE__FRAME__BODY_ISSUE_TOKEN:
		if (f->body_case == SLUICE__FRAME__BODY_TOKEN_ISSUED && r->cb.token)
			r->cb.token(r->arg, SL_OK, NULL, f->token_issued->token, f->token_issued->expires_ms);
		return SLUICE__FRAME__BODY_TOKEN_ISSUED;
	default:
		if (f->body_case == SLUICE__FRAME__BODY_AUDIT_LIST && r->cb.audit)
			complete_audit(r, f->audit_list);
		return SLUICE__FRAME__BODY_AUDIT_LIST;
	}
}

static void complete_ok(struct sluice_client *c, struct req *r, const Sluice__Frame *f)
{
	int want = -1;
	c->cb_depth++;
	switch (r->kind) {
	case RK_PUBLISH:
		want = r->body == SLUICE__FRAME__BODY_PUBLISH_BATCH ? SLUICE__FRAME__BODY_PUBLISH_BATCH_ACK
								    : SLUICE__FRAME__BODY_PUBLISH_ACK;
		if (want != (int)f->body_case)
			break;
		c->unavail_since_ns = 0; /* this node reaches a leader */
		pub_complete(c, r, f);
		break;
	case RK_DONE:
		/* Any non-error answer means done (Ok, or a server that echoes TopicInfo). */
		want = (int)f->body_case;
		if (r->body == SLUICE__FRAME__BODY_ACK_MESSAGES)
			c->unavail_since_ns = 0; /* this node reaches a leader */
		if (r->cb.done)
			r->cb.done(r->arg, SL_OK, NULL);
		break;
	case RK_TOPIC:
		if ((want = SLUICE__FRAME__BODY_TOPIC_INFO) == (int)f->body_case && r->cb.topic)
			complete_topic(c, r, f->topic_info);
		break;
	case RK_TOPICS:
		if ((want = SLUICE__FRAME__BODY_TOPIC_LIST) == (int)f->body_case && r->cb.topics)
			complete_topics(c, r, f->topic_list);
		break;
	case RK_FETCH:
		if ((want = SLUICE__FRAME__BODY_FETCH_RESULT) == (int)f->body_case && r->cb.fetch)
			complete_fetch(c, r, f->fetch_result);
		break;
	case RK_GROUP:
		if ((want = SLUICE__FRAME__BODY_GROUP_INFO) == (int)f->body_case && r->cb.group)
			complete_group(c, r, f->group_info);
		break;
	case RK_STATUS:
		if ((want = SLUICE__FRAME__BODY_NODE_STATUS_RESULT) == (int)f->body_case && r->cb.status)
			complete_status(r, f->node_status_result);
		break;
	case RK_CLUSTER:
		if ((want = SLUICE__FRAME__BODY_CLUSTER_STATUS_RESULT) == (int)f->body_case && r->cb.cluster)
			complete_cluster(c, r, f->cluster_status_result);
		break;
	case RK_CONSUMER:
		want = r->body == SLUICE__FRAME__BODY_LIST_CONSUMERS ? SLUICE__FRAME__BODY_CONSUMER_LIST
								     : SLUICE__FRAME__BODY_CONSUMER_INFO;
		if (want != (int)f->body_case || !r->cb.consumer)
			break;
		if (f->body_case == SLUICE__FRAME__BODY_CONSUMER_LIST)
			complete_consumers(c, r, f->consumer_list->consumers, f->consumer_list->n_consumers);
		else
			complete_consumers(c, r, &f->consumer_info, 1);
		break;
	case RK_PULL:
		if ((want = SLUICE__FRAME__BODY_PULL_RESULT) != (int)f->body_case)
			break;
		c->unavail_since_ns = 0;
		if (r->cb.pull)
			complete_pull(c, r, f->pull_result);
		break;
	case RK_SUBSCRIBE:
		if ((want = SLUICE__FRAME__BODY_SUBSCRIBED) == (int)f->body_case)
			complete_subscribed(c, r, f->subscribed);
		break;
	case RK_AUTH:
		want = complete_auth(r, f);
		break;
	case RK_NOREPLY:
		want = (int)f->body_case;
		break;
	}
	c->cb_depth--;
	if (want != (int)f->body_case)
		req_fail(c, r, SL_EMALFORMED, "unexpected response type");
}

/* ---------- incoming frames ---------- */

static struct req *inflight_take(struct sluice_client *c, uint64_t id)
{
	struct req *r;
	/* Answers mostly arrive in order: the match is usually at the head. */
	TAILQ_FOREACH(r, &c->inflight, link)
	{
		if (r->id == id) {
			req_unlink(c, r);
			return r;
		}
	}
	return NULL;
}

static void credit_return(struct sluice_client *c, struct sub *s, struct sub_leg *leg)
{
	uint32_t half = s->credit / 2 ? s->credit / 2 : 1;
	if (leg->consumed < half)
		return;
	Sluice__Credit cr = SLUICE__CREDIT__INIT;
	Sluice__Frame f = SLUICE__FRAME__INIT;
	cr.subscription_id = leg->server_id;
	cr.credit = leg->consumed;
	f.body_case = SLUICE__FRAME__BODY_CREDIT;
	f.credit = &cr;
	send_untracked(c, &f);
	leg->consumed = 0;
}

/* End a subscription with an error: its callback hears it once. */
static void sub_fail(struct sluice_client *c, struct sub *s, int err, const char *errmsg)
{
	if (s->closed)
		return;
	s->closed = 1;
	c->cb_depth++;
	if (s->cb)
		s->cb(s->arg, err, errmsg, NULL);
	c->cb_depth--;
}

/* A Delivery being handed to its subscription, one message at a time. */
struct deliver_ctx {
	struct sluice_client *c;
	struct sub *s;
	uint64_t server_id;
};

/* One message of a Delivery: to the callback unless it was seen already,
 * then counted for credit. 1 to go on, 0 when the subscription, the client
 * or the connection is gone. */
static int deliver_msg(struct deliver_ctx *d, const struct sluice_msg *m)
{
	struct sluice_client *c = d->c;
	struct sub_part *p = sub_part_find(d->s, m->partition);
	int dup = p && m->offset < p->next;
	if (!dup && sub_part_set(d->s, m->partition, m->offset + 1) != SL_OK)
		dup = 1;
	if (!dup && d->s->cb) {
		c->cb_depth++;
		d->s->cb(d->s->arg, SL_OK, NULL, m);
		c->cb_depth--;
	}
	if (d->s->closed || c->dead || c->state != CS_READY)
		return 0;
	/* The callback may have grown the legs array: find the leg again. */
	struct sub_leg *leg = sub_leg_find(c, d->server_id, &d->s);
	if (!leg)
		return 0;
	leg->consumed++;
	credit_return(c, d->s, leg);
	return 1;
}

static int deliver_unpacked_cb(void *arg, const struct sluice_msg *m)
{
	return !deliver_msg(arg, m);
}

static void on_delivery(struct sluice_client *c, const Sluice__Delivery *d)
{
	struct deliver_ctx dc = {c, NULL, d->subscription_id};
	if (!sub_leg_find(c, d->subscription_id, &dc.s))
		return;
	if (d->end_error != SLUICE__ERROR_CODE__OK) {
		/* the server ended this subscription (its topic was deleted, ...) */
		sub_fail(c, dc.s, (int)d->end_error, d->end_message);
		return;
	}
	for (size_t i = 0; i < d->n_messages; i++) {
		const Sluice__Message *w = d->messages[i];
		struct sluice_header hs_stack[UNPACK_HEADERS_STACK];
		struct sluice_header *hs =
		    w->n_headers <= UNPACK_HEADERS_STACK ? hs_stack : calloc(w->n_headers, sizeof(*hs));
		struct sluice_msg m;
		int more;
		if (!hs)
			return;
		msg_from_wire(w, &m, hs);
		more = deliver_msg(&dc, &m);
		if (hs != hs_stack)
			free(hs);
		if (!more)
			return;
	}
	for (size_t i = 0; i < d->n_batches; i++) {
		int err = unpack_batch(d->batches[i], deliver_unpacked_cb, &dc);
		if (c->dead || c->state != CS_READY)
			return;
		if (err != SL_OK) {
			/* bytes that fail their checks: as for a malformed frame */
			conn_lost(c, SL_EMALFORMED);
			return;
		}
		if (dc.s->closed || !sub_leg_find(c, dc.server_id, &dc.s))
			return;
	}
}

/* Prove who this client is: the key's signature of the connection's nonce, or the token. */
static void send_authenticate(struct sluice_client *c, const uint8_t *nonce)
{
	Sluice__Authenticate a = SLUICE__AUTHENTICATE__INIT;
	Sluice__Frame f = SLUICE__FRAME__INIT;
	uint8_t sig[AUTH_SIG_BYTES], buf[AUTH_TOKEN_BYTES_MAX + 256];
	char b64[64];
	if (c->has_key) {
		auth_b64_encode(c->key.pk, AUTH_PK_BYTES, b64, sizeof(b64), NULL);
		auth_challenge_sign(c->key.sk, nonce, b64, strlen(b64), sig);
		a.public_key.data = c->key.pk;
		a.public_key.len = AUTH_PK_BYTES;
		a.signature.data = sig;
		a.signature.len = sizeof(sig);
	} else {
		a.token = c->token;
	}
	f.id = c->auth_id = ++c->next_id;
	f.body_case = SLUICE__FRAME__BODY_AUTHENTICATE;
	f.authenticate = &a;
	size_t n = codec_frame_size(&f);
	if (n > sizeof(buf)) {
		conn_lost(c, SL_EINVAL);
		return;
	}
	codec_frame_encode(&f, buf);
	bufferevent_write(c->bev, buf, n);
}

/* The answer to Authenticate: a refusal fails everything, without retrying
 * (another attempt with the same key would be refused the same way). */
static void on_authenticated(struct sluice_client *c, Sluice__Frame *f)
{
	if (f->body_case == SLUICE__FRAME__BODY_AUTHENTICATED) {
		c->auth_id = 0;
		return;
	}
	int err = f->body_case == SLUICE__FRAME__BODY_ERROR ? (int)f->error->code : SL_EHANDSHAKE;
	snprintf(c->auth_error, sizeof(c->auth_error), "%s",
	         f->body_case == SLUICE__FRAME__BODY_ERROR && f->error->message ? f->error->message : sl_strerror(err));
	if (c->bev) {
		bufferevent_free(c->bev);
		c->bev = NULL;
	}
	evtimer_del(c->conn_timer);
	c->state = CS_IDLE;
	c->gave_up = 1; /* settled: the next request connects again and hears the refusal */
	c->auth_id = 0;
	c->cb_depth++;
	fail_everything(c, err == SL_EPERMISSION ? SL_EPERMISSION : SL_EUNAUTHENTICATED);
	c->cb_depth--;
}

static void on_handshake(struct sluice_client *c, Sluice__Frame *f)
{
	if (c->auth_id) {
		if (f->id == c->auth_id)
			on_authenticated(c, f);
		if (c->auth_id || c->state != CS_HANDSHAKE)
			return;
		goto ready;
	}
	if (f->body_case != SLUICE__FRAME__BODY_HELLO_OK) {
		conn_lost(c, f->body_case == SLUICE__FRAME__BODY_ERROR ? (int)f->error->code : SL_EHANDSHAKE);
		return;
	}
	c->server_frame_bytes_max = f->hello_ok->frame_bytes_max ? f->hello_ok->frame_bytes_max
								  : CODEC_FRAME_BYTES_DEFAULT;
	if ((c->has_key || c->token) && f->hello_ok->auth_nonce.len == AUTH_NONCE_BYTES) {
		send_authenticate(c, f->hello_ok->auth_nonce.data);
		return; /* ready once Authenticated comes */
	}
ready:
	c->state = CS_READY;
	c->down_since_ns = 0;
	c->backoff_ms = CLIENT_BACKOFF_MIN_MS;
	c->gave_up = 0;
	evtimer_del(c->conn_timer);
	client_pump(c);
}

static void on_frame(struct sluice_client *c, Sluice__Frame *f)
{
	if (c->state == CS_HANDSHAKE) {
		on_handshake(c, f);
		return;
	}
	if (f->id == 0) {
		if (f->body_case == SLUICE__FRAME__BODY_DELIVERY)
			on_delivery(c, f->delivery);
		else if (f->body_case == SLUICE__FRAME__BODY_ERROR)
			conn_lost(c, (int)f->error->code); /* connection-level error: the server closes */
		return;
	}
	struct req *r = inflight_take(c, f->id);
	if (!r)
		return; /* an answer to Credit/Unsubscribe, or to a request already failed */
	if (f->body_case == SLUICE__FRAME__BODY_ERROR) {
		if (complete_error(c, r, f->error))
			return;
	} else {
		complete_ok(c, r, f);
	}
	req_free(r);
	client_pump(c);
}

static void conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct sluice_client *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	c->cb_depth++;
	while (c->bev == bev && !c->dead) {
		size_t avail = evbuffer_get_length(in);
		if (avail < 4)
			break;
		uint32_t body_len = be_get32(evbuffer_pullup(in, 4));
		if (body_len > CLIENT_IN_FRAME_BYTES_MAX) {
			conn_lost(c, SL_ETOOLARGE);
			break;
		}
		size_t need = 4 + (size_t)body_len;
		if (avail < need)
			break;
		uint8_t *p = evbuffer_pullup(in, (ssize_t)need);
		Sluice__Frame *f = NULL;
		int err = codec_frame_decode(p + 4, need - 4, &f);
		evbuffer_drain(in, need);
		if (err != SL_OK) {
			conn_lost(c, SL_EMALFORMED);
			break;
		}
		on_frame(c, f);
		codec_frame_free(f);
	}
	c->cb_depth--;
	if (c->dead && c->cb_depth == 0)
		sluice_client_free(c);
	else
		client_gc(c);
}

static void conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct sluice_client *c = arg;
	client_pump(c);
}

static void send_hello(struct sluice_client *c)
{
	Sluice__Hello h = SLUICE__HELLO__INIT;
	Sluice__Frame f = SLUICE__FRAME__INIT;
	h.min_version = CODEC_VERSION;
	h.max_version = CODEC_VERSION;
	h.client_name = c->client_name;
	h.accept_batches = c->messages_only ? 0 : CLIENT_BATCH_FORMAT;
	f.id = ++c->next_id;
	f.body_case = SLUICE__FRAME__BODY_HELLO;
	f.hello = &h;
	uint8_t buf[512];
	size_t n = codec_frame_size(&f);
	if (n > sizeof(buf)) {
		h.client_name = (char *)"libsluice";
		n = codec_frame_size(&f);
	}
	codec_frame_encode(&f, buf);
	bufferevent_write(c->bev, buf, n);
}

/* Whether a connection that ended before BEV_EVENT_CONNECTED got as far as
 * TLS: a certificate refused, or an alert or garbage instead of a handshake.
 * A refused or reset TCP connection is not a TLS failure. */
static int tls_failed(struct bufferevent *bev)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	int verify = ssl ? (int)SSL_get_verify_result(ssl) : X509_V_OK;
	unsigned long e = bufferevent_get_openssl_error(bev);

	ERR_clear_error();
	return verify != X509_V_OK || e != 0;
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct sluice_client *c = arg;
	c->cb_depth++;
	if (what & BEV_EVENT_CONNECTED) {
		/* A batch is one large write: without this, its last segment waits
		 * for the ack of the others (Nagle against delayed acks, ~40 ms). */
		int one = 1;
		setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c->state = CS_HANDSHAKE;
		c->last_conn_err = 0;
		send_hello(c);
	} else if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
		if (c->state == CS_CONNECTING && c->tls_ctx && tls_failed(bev))
			c->last_conn_err = SL_ETLS;
		conn_lost(c, SL_ECLOSED);
	}
	c->cb_depth--;
	if (c->dead && c->cb_depth == 0)
		sluice_client_free(c);
	else
		client_gc(c);
}

/* ---------- connection lifecycle ---------- */

/* The host of "host:port" or "[v6]:port", without brackets, into host[256]. */
static const char *server_host(const char *hp, char *host, const char **port)
{
	const char *colon = strrchr(hp, ':');
	if (!colon || (size_t)(colon - hp) >= 256 || colon == hp)
		return NULL;
	memcpy(host, hp, (size_t)(colon - hp));
	host[colon - hp] = 0;
	*port = colon + 1;
	/* Accept "[::1]:7400". */
	char *h = host;
	size_t hl = strlen(h);
	if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
		h[hl - 1] = 0;
		h++;
	}
	return h;
}

static int server_addr(const char *hp, struct addrinfo **out)
{
	char host[256];
	const char *port, *h = server_host(hp, host, &port);
	if (!h)
		return SL_EINVAL;
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
	return getaddrinfo(h, port, &hints, out) == 0 ? SL_OK : SL_EINVAL;
}

/* An SSL for server hp: the name (SNI and certificate check) or the IP
 * address the certificate must be made out to. */
static SSL *tls_ssl_new(struct sluice_client *c, const char *hp)
{
	char host[256];
	unsigned char ip[16];
	const char *port, *name = c->tls_name ? c->tls_name : server_host(hp, host, &port);
	SSL *ssl = name ? SSL_new(c->tls_ctx) : NULL;
	int ok;

	if (!ssl)
		return NULL;
	if (inet_pton(AF_INET, name, ip) == 1 || inet_pton(AF_INET6, name, ip) == 1) {
		ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) == 1;
	} else {
		ok = SSL_set_tlsext_host_name(ssl, name) == 1 && SSL_set1_host(ssl, name) == 1;
		SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	}
	if (!ok) {
		SSL_free(ssl);
		return NULL;
	}
	return ssl;
}

/* A bufferevent for a connection to hp: TLS when the client has a context. */
static struct bufferevent *conn_bev_new(struct sluice_client *c, const char *hp)
{
	struct bufferevent *bev;
	SSL *ssl;

	if (!c->tls_ctx)
		return bufferevent_socket_new(c->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (!(ssl = tls_ssl_new(c, hp)))
		return NULL;
	bev = bufferevent_openssl_socket_new(c->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
	if (!bev) {
		SSL_free(ssl);
		return NULL;
	}
	/* servers may close without close_notify; framing tells us what is complete */
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

static void conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sluice_client *c = arg;
	c->cb_depth++;
	if (c->state == CS_BACKOFF)
		conn_start(c);
	else if (c->state == CS_CONNECTING || c->state == CS_HANDSHAKE)
		conn_lost(c, SL_ETIMEOUT);
	c->cb_depth--;
	if (c->dead && c->cb_depth == 0)
		sluice_client_free(c);
	else
		client_gc(c);
}

static void conn_start(struct sluice_client *c)
{
	struct addrinfo *ai = NULL;
	const char *hp = c->servers[c->server_idx % c->servers_n];
	c->state = CS_CONNECTING;
	struct timeval tv = {c->connect_timeout_ms / 1000, (c->connect_timeout_ms % 1000) * 1000};
	evtimer_add(c->conn_timer, &tv);
	if (server_addr(hp, &ai) != SL_OK)
		goto fail;
	c->bev = conn_bev_new(c, hp);
	if (!c->bev)
		goto fail;
	bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
	bufferevent_setwatermark(c->bev, EV_WRITE, CLIENT_OUT_LOW_BYTES, 0);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	if (bufferevent_socket_connect(c->bev, ai->ai_addr, (int)ai->ai_addrlen) != 0)
		goto fail;
	freeaddrinfo(ai);
	return;
fail:
	if (ai)
		freeaddrinfo(ai);
	conn_lost(c, SL_EUNAVAILABLE);
}

/* Drop every queued subscribe request of s; they are rebuilt from its positions. */
static void sub_drop_requests(struct sluice_client *c, struct sub *s)
{
	struct req *r, *tmp;
	TAILQ_FOREACH_SAFE(r, &c->pending, link, tmp)
	{
		if (r->kind == RK_SUBSCRIBE && r->sub == s) {
			req_unlink(c, r);
			req_free(r);
		}
	}
}

static int sub_request(struct sluice_client *c, struct sub *s, const uint32_t *parts, size_t parts_n,
		       enum sluice_start start, uint64_t offset, const char *group, struct req **out)
{
	Sluice__Subscribe m = SLUICE__SUBSCRIBE__INIT;
	Sluice__Frame f = SLUICE__FRAME__INIT;
	m.topic = s->topic;
	m.partitions = (uint32_t *)parts;
	m.n_partitions = parts_n;
	m.start = (Sluice__StartAt)start;
	m.offset = offset;
	m.timestamp_ms = s->timestamp_ms;
	m.group = group ? (char *)group : (char *)"";
	m.credit = s->credit;
	f.body_case = SLUICE__FRAME__BODY_SUBSCRIBE;
	f.subscribe = &m;
	int err = req_new(c, RK_SUBSCRIBE, &f, out);
	if (err == SL_OK)
		(*out)->sub = s;
	return err;
}

static void pending_push_front(struct sluice_client *c, struct req *r)
{
	TAILQ_INSERT_HEAD(&c->pending, r, link);
	c->pending_n++;
	r->q = RQ_PENDING;
}

/*
 * After a reconnect: resume each known partition at its next offset (one leg
 * each); with no position known yet, send the original Subscribe again.
 */
static void sub_resume(struct sluice_client *c, struct sub *s)
{
	struct req *r = NULL;
	int err = SL_OK;
	s->legs_n = 0;
	sub_drop_requests(c, s);
	if (s->parts_n == 0) {
		err = sub_request(c, s, s->partitions, s->partitions_n, s->start, s->offset, s->group, &r);
		if (err == SL_OK)
			pending_push_front(c, r);
	}
	for (size_t i = 0; err == SL_OK && i < s->parts_n; i++) {
		err = sub_request(c, s, &s->parts[i].partition, 1, SLUICE_OFFSET, s->parts[i].next, NULL, &r);
		if (err == SL_OK)
			pending_push_front(c, r);
	}
	if (err != SL_OK)
		sub_fail(c, s, err, NULL);
}

/* Free subscriptions closed while callbacks were running, once nothing refers to them. */
static void client_gc(struct sluice_client *c)
{
	struct sub *s, *tmp;
	struct req *r;
	if (c->cb_depth > 0)
		return;
	TAILQ_FOREACH_SAFE(s, &c->subs, link, tmp)
	{
		if (!s->closed)
			continue;
		sub_drop_requests(c, s);
		TAILQ_FOREACH(r, &c->inflight, link)
		{
			if (r->sub == s)
				r->sub = NULL;
		}
		TAILQ_REMOVE(&c->subs, s, link);
		sub_free(s);
	}
}

static void fail_everything(struct sluice_client *c, int err)
{
	struct req *r;
	struct sub *s;
	struct req_list *lists[3] = {&c->pending, &c->inflight, &c->retry};
	const char *msg = (err == SL_EUNAUTHENTICATED || err == SL_EPERMISSION) && c->auth_error[0] ? c->auth_error : NULL;
	for (int i = 0; i < 3; i++) {
		while ((r = TAILQ_FIRST(lists[i])) != NULL) {
			req_unlink(c, r);
			req_fail(c, r, err, msg);
			req_free(r);
		}
	}
	TAILQ_FOREACH(s, &c->subs, link)
	{
		sub_fail(c, s, err, msg);
	}
}

static void conn_lost(struct sluice_client *c, int err)
{
	struct req *r;
	struct sub *s;
	if (c->bev) {
		bufferevent_free(c->bev);
		c->bev = NULL;
	}
	evtimer_del(c->conn_timer);
	c->unavail_since_ns = 0;
	/* Everything in flight goes back, in order, ahead of what was never sent. */
	while ((r = TAILQ_LAST(&c->inflight, req_list)) != NULL) {
		req_unlink(c, r);
		pending_push_front(c, r);
	}
	/* So do publishes waiting out a refusal: the next connection has no fence
	 * yet, and a later publish sent there before an earlier refused one
	 * would be stored before it. */
	while ((r = TAILQ_FIRST(&c->retry)) != NULL) {
		req_unlink(c, r);
		pending_insert_ordered(c, r);
	}
	TAILQ_FOREACH(s, &c->subs, link)
	{
		if (!s->closed)
			sub_resume(c, s);
	}
	uint64_t now = mono_ns();
	if (c->down_since_ns == 0)
		c->down_since_ns = now;
	if (now - c->down_since_ns >= (uint64_t)c->retry_max_ms * 1000000ull) {
		c->state = CS_IDLE;
		c->gave_up = 1;
		fail_everything(c, c->last_conn_err == SL_ETLS ? SL_ETLS : SL_EUNAVAILABLE);
		return;
	}
	c->state = CS_BACKOFF;
	c->server_idx = (c->server_idx + 1) % c->servers_n;
	struct timeval tv = {c->backoff_ms / 1000, (c->backoff_ms % 1000) * 1000};
	evtimer_add(c->conn_timer, &tv);
	c->backoff_ms = c->backoff_ms * 2 > CLIENT_BACKOFF_MAX_MS ? CLIENT_BACKOFF_MAX_MS : c->backoff_ms * 2;
}

/* Move pending requests onto the connection while the pipeline and the output buffer allow. */
static void client_pump(struct sluice_client *c)
{
	struct req *r;
	if (c->state != CS_READY || !c->bev)
		return;
	struct evbuffer *out = bufferevent_get_output(c->bev);
	uint64_t now = mono_ns();
	while ((r = TAILQ_FIRST(&c->pending)) != NULL && c->inflight_n < c->pipeline_max &&
	       evbuffer_get_length(out) < CLIENT_OUT_HIGH_BYTES) {
		req_unlink(c, r);
		if (r->frame_len - 4 > c->server_frame_bytes_max) {
			req_fail(c, r, SL_ETOOLARGE, "request larger than the server's frame_bytes_max");
			req_free(r);
			continue;
		}
		r->attempts++;
		r->deadline_ns = now + ((uint64_t)c->request_timeout_ms + r->extra_timeout_ms) * 1000000ull;
		req_append(c, r, RQ_INFLIGHT);
		evbuffer_add(out, r->frame, r->frame_len);
	}
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sluice_client *c = arg;
	struct req *r, *tmp;
	uint64_t now = mono_ns();
	c->cb_depth++;
	TAILQ_FOREACH_SAFE(r, &c->retry, link, tmp)
	{
		if (r->retry_ns <= now) {
			req_unlink(c, r);
			pending_insert_ordered(c, r);
		}
	}
	if (c->state == CS_READY && c->servers_n > 1 && c->unavail_since_ns &&
	    now - c->unavail_since_ns >= (uint64_t)CLIENT_UNAVAIL_SWITCH_MS * 1000000ull) {
		/* this node keeps refusing publishes (cut off from the leader?): try the next one */
		conn_lost(c, SL_EUNAVAILABLE);
	} else if (c->state == CS_READY) {
		TAILQ_FOREACH(r, &c->inflight, link)
		{
			if (r->deadline_ns <= now) {
				/* No answer in time: presume the connection dead. */
				conn_lost(c, SL_ETIMEOUT);
				break;
			}
		}
	} else if (c->state == CS_IDLE && c->retry_n + c->pending_n > 0) {
		c->down_since_ns = 0;
		conn_start(c);
	}
	client_pump(c);
	c->cb_depth--;
	if (c->dead && c->cb_depth == 0)
		sluice_client_free(c);
	else
		client_gc(c);
}

/* ---------- batching ---------- */


static void le_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void le_put32(uint8_t *p, uint32_t v)
{
	le_put16(p, (uint16_t)v);
	le_put16(p + 2, (uint16_t)(v >> 16));
}

/* Bytes the record of p takes in a batch; 0 if it cannot go in one (a header
 * key over 255 bytes, a length over 32 bits). */
static size_t batch_record_bytes(const struct sluice_pub *p)
{
	size_t hl = 0;
	for (size_t i = 0; i < p->headers_n; i++) {
		size_t kl = p->headers[i].key ? strlen(p->headers[i].key) : 0;
		if (kl > CLIENT_HDR_KEY_BYTES_MAX || p->headers[i].value.len > UINT32_MAX - 6 - kl - hl)
			return 0;
		hl += 6 + kl + p->headers[i].value.len;
	}
	if (p->payload.len > UINT32_MAX)
		return 0;
	return CLIENT_BATCH_REC_HDR_BYTES + hl + p->payload.len;
}

/* Append the record of p (rec bytes, room reserved) to b->recs. */
static void batch_put_record(struct batch *b, const struct sluice_pub *p, size_t rec)
{
	uint8_t *q = b->recs + b->len;
	size_t hl = rec - CLIENT_BATCH_REC_HDR_BYTES - p->payload.len;
	le_put32(q, 0); /* batched messages have no key */
	le_put32(q + 4, (uint32_t)hl);
	le_put32(q + 8, (uint32_t)p->payload.len);
	q += CLIENT_BATCH_REC_HDR_BYTES;
	for (size_t i = 0; i < p->headers_n; i++) {
		const struct sluice_header *h = &p->headers[i];
		size_t kl = h->key ? strlen(h->key) : 0;
		le_put16(q, (uint16_t)kl);
		if (kl)
			memcpy(q + 2, h->key, kl);
		le_put32(q + 2 + kl, (uint32_t)h->value.len);
		if (h->value.len)
			memcpy(q + 6 + kl, h->value.base, h->value.len);
		q += 6 + kl + h->value.len;
	}
	if (p->payload.len)
		memcpy(q, p->payload.base, p->payload.len);
	b->len += rec;
}

/* Record bytes a batch of a topic may hold: batch_bytes, and never more than
 * the server's frame_bytes_max leaves for them. */
static size_t batch_limit(const struct sluice_client *c, const char *topic)
{
	size_t room = CLIENT_BATCH_ENVELOPE_BYTES + strlen(topic);
	size_t fmax = c->server_frame_bytes_max;
	if (fmax <= room)
		return 0;
	return c->batch_bytes < fmax - room ? c->batch_bytes : fmax - room;
}

static struct batch *batch_find(struct sluice_client *c, const struct sluice_pub *p)
{
	struct batch *b;
	int hp = p->has_partition ? 1 : 0;
	TAILQ_FOREACH(b, &c->batches, link)
	{
		if (b->has_partition == hp && (!hp || b->partition == p->partition) && !strcmp(b->topic, p->topic))
			return b;
	}
	return NULL;
}

static void batch_free(struct batch *b)
{
	free(b->topic);
	free(b->recs);
	free(b->cbs);
	free(b);
}

/* Arm the linger timer for the oldest open batch (rounded up to the next µs). */
static void linger_arm(struct sluice_client *c)
{
	struct batch *b = TAILQ_FIRST(&c->batches);
	if (!b)
		return;
	uint64_t now = mono_ns();
	uint64_t us = b->deadline_ns > now ? (b->deadline_ns - now + 999) / 1000 : 0;
	struct timeval tv = {(time_t)(us / 1000000), (suseconds_t)(us % 1000000)};
	evtimer_add(c->linger_timer, &tv);
}

static struct batch *batch_open(struct sluice_client *c, const struct sluice_pub *p)
{
	struct batch *b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	b->topic = strdup(p->topic);
	if (!b->topic) {
		free(b);
		return NULL;
	}
	b->has_partition = p->has_partition ? 1 : 0;
	b->partition = b->has_partition ? p->partition : 0;
	b->deadline_ns = mono_ns() + (uint64_t)c->linger_ms * 1000000ull;
	TAILQ_INSERT_TAIL(&c->batches, b, link);
	if (!evtimer_pending(c->linger_timer, NULL))
		linger_arm(c);
	return b;
}

/* Room for one more record of rec bytes (len + rec <= limit) and its callback. */
static int batch_reserve(struct batch *b, size_t rec, size_t limit)
{
	size_t need = b->len + rec;
	if (need > b->cap) {
		size_t cap = b->cap ? b->cap : CLIENT_BATCH_CAP_MIN_BYTES;
		while (cap < need)
			cap *= 2;
		if (cap > limit)
			cap = limit;
		uint8_t *recs = realloc(b->recs, cap);
		if (!recs)
			return SL_ENOMEM;
		b->recs = recs;
		b->cap = cap;
	}
	return vec_reserve(&b->cbs, &b->cbs_cap, b->n + 1);
}

/* A slot for b at the end of the send order; it takes b's callbacks. */
static struct pub_slot *batch_slot(struct sluice_client *c, struct batch *b)
{
	struct pub_slot *ps = calloc(1, sizeof(*ps));
	if (!ps)
		return NULL;
	ps->cbs = b->cbs;
	ps->n = (uint32_t)b->n;
	ps->order = ++c->pub_order;
	b->cbs = NULL;
	TAILQ_INSERT_TAIL(&c->pubq, ps, link);
	return ps;
}

/* Fail every message of b (removed from the open list) with err, in send
 * order behind earlier publishes, and free b. */
static void batch_fail(struct sluice_client *c, struct batch *b, struct pub_slot *ps, int err)
{
	c->msgs_extra -= b->n;
	c->cb_depth++;
	if (ps) {
		ps->resolved = 1;
		ps->err = err;
		pub_release(c);
	} else {
		for (size_t i = 0; i < b->n; i++) /* not even a slot: answer now */
			if (b->cbs[i].cb)
				b->cbs[i].cb(b->cbs[i].arg, err, NULL, 0, 0, 0, 0);
	}
	c->cb_depth--;
	batch_free(b);
}

/*
 * Turn an open batch into one PublishBatch request: its messages take the
 * next b->n sequences of the client, and it joins the pipeline, and the send
 * order its acks are released in, like any publish.
 */
static void batch_close(struct sluice_client *c, struct batch *b)
{
	Sluice__PublishBatch m = SLUICE__PUBLISH_BATCH__INIT;
	Sluice__Frame f = SLUICE__FRAME__INIT;
	struct req *r = NULL;
	TAILQ_REMOVE(&c->batches, b, link);
	struct pub_slot *ps = batch_slot(c, b);
	m.topic = b->topic;
	m.has_partition = b->has_partition;
	m.partition = b->partition;
	m.producer_id = c->producer_id;
	m.base_sequence = c->sequence + 1;
	m.count = (uint32_t)b->n;
	m.records.data = b->recs;
	m.records.len = b->len;
	m.crc32c = crc32c(0, b->recs, b->len);
	f.body_case = SLUICE__FRAME__BODY_PUBLISH_BATCH;
	f.publish_batch = &m;
	if (!ps || req_new(c, RK_PUBLISH, &f, &r) != SL_OK) {
		batch_fail(c, b, ps, SL_ENOMEM);
		return;
	}
	c->sequence += b->n;
	c->msgs_extra--; /* the request counts one of them */
	r->slot = ps;
	batch_free(b);
	req_submit(c, r);
}

/*
 * A keyless publish with linger_ms: into the open batch of its space.
 * SL_EAGAIN when it cannot go in a batch: the open batch of its space is
 * closed and the caller sends it alone, after that batch.
 */
static int batch_publish(struct sluice_client *c, const struct sluice_pub *p, sluice_ack_cb cb, void *arg)
{
	struct batch *b = batch_find(c, p);
	size_t rec = batch_record_bytes(p), limit = batch_limit(c, p->topic);
	if (rec == 0 || rec > limit) {
		if (b)
			batch_close(c, b);
		return SL_EAGAIN;
	}
	while (b && b->len + rec > limit) {
		batch_close(c, b);
		b = batch_find(c, p); /* callbacks run by the close may have opened one */
	}
	if (!b && !(b = batch_open(c, p)))
		return SL_ENOMEM;
	if (batch_reserve(b, rec, limit) != SL_OK) {
		if (b->n == 0) {
			TAILQ_REMOVE(&c->batches, b, link);
			batch_free(b);
		}
		return SL_ENOMEM;
	}
	batch_put_record(b, p, rec);
	b->cbs[b->n].cb = cb;
	b->cbs[b->n].arg = arg;
	b->n++;
	c->msgs_extra++;
	if (b->len >= limit || b->n >= CLIENT_BATCH_COUNT_MAX)
		batch_close(c, b);
	return SL_OK;
}

static void linger_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sluice_client *c = arg;
	struct batch *b;
	uint64_t now = mono_ns();
	c->cb_depth++;
	while (!c->dead && (b = TAILQ_FIRST(&c->batches)) != NULL && b->deadline_ns <= now)
		batch_close(c, b);
	linger_arm(c);
	c->cb_depth--;
	if (c->dead && c->cb_depth == 0)
		sluice_client_free(c);
	else
		client_gc(c);
}

/* ---------- public API ---------- */

const char *sluice_strerror(int err)
{
	return sl_strerror(err); /* same values: see the _Static_asserts at the top */
}

static int servers_parse(struct sluice_client *c, const char *list)
{
	char *copy = strdup(list);
	char *save = NULL;
	if (!copy)
		return SL_ENOMEM;
	for (char *t = strtok_r(copy, ", ", &save); t && c->servers_n < CLIENT_SERVERS_MAX;
	     t = strtok_r(NULL, ", ", &save)) {
		c->servers[c->servers_n] = strdup(t);
		if (!c->servers[c->servers_n])
			break;
		c->servers_n++;
	}
	free(copy);
	return c->servers_n > 0 ? SL_OK : SL_EINVAL;
}

/* The client's TLS context from the options (or $SLUICE_TLS_CA); none for
 * plain TCP. SL_ECONFIG when the CA file cannot be used. */
static int tls_setup(struct sluice_client *c, const struct sluice_client_opts *o)
{
	const char *ca = o->tls_ca, *env = getenv("SLUICE_TLS_CA");
	SSL_CTX *ctx;

	if (!o->tls && !ca && env && env[0])
		ca = env;
	if (!o->tls && !ca)
		return SL_OK;
	if (!(ctx = SSL_CTX_new(TLS_client_method())))
		return SL_ENOMEM;
	c->tls_ctx = ctx;
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1)
		return SL_EINTERNAL;
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_verify(ctx, o->tls_skip_verify ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
	if ((ca ? SSL_CTX_load_verify_locations(ctx, ca, NULL) : SSL_CTX_set_default_verify_paths(ctx)) != 1) {
		ERR_clear_error();
		return SL_ECONFIG;
	}
	if (o->tls_server_name && o->tls_server_name[0] && !(c->tls_name = strdup(o->tls_server_name)))
		return SL_ENOMEM;
	return SL_OK;
}

/* The key (opts.key_file or $SLUICE_KEY) or token (opts.token or $SLUICE_TOKEN). */
static int auth_setup(struct sluice_client *c, const struct sluice_client_opts *o)
{
	const char *kf = o->key_file ? o->key_file : getenv("SLUICE_KEY");
	const char *tok = o->token ? o->token : getenv("SLUICE_TOKEN");
	char why[256];
	if (o->key_seed) {
		if (auth_key_from_seed(o->key_seed, &c->key) != SL_OK)
			return SL_EINVAL;
		c->has_key = 1;
	} else if (kf && kf[0]) {
		if (auth_key_read(kf, &c->key, why, sizeof(why)) != SL_OK) {
			snprintf(c->auth_error, sizeof(c->auth_error), "%s", why);
			return SL_ECONFIG;
		}
		c->has_key = 1;
	} else if (tok && tok[0]) {
		if (strlen(tok) > AUTH_TOKEN_BYTES_MAX || !(c->token = strdup(tok)))
			return SL_EINVAL;
	}
	return SL_OK;
}

const char *sluice_client_auth_error(const struct sluice_client *c)
{
	return c && c->auth_error[0] ? c->auth_error : NULL;
}

/* A write to a connection the server closed raises SIGPIPE (libevent writes
 * with writev, OpenSSL with write), which by default ends the process: a
 * client library must not. Left alone when the program chose a disposition. */
static void sigpipe_ignore(void)
{
	struct sigaction old;
	if (sigaction(SIGPIPE, NULL, &old) == 0 && old.sa_handler == SIG_DFL && !(old.sa_flags & SA_SIGINFO))
		signal(SIGPIPE, SIG_IGN);
}

int sluice_client_new(struct event_base *base, const struct sluice_client_opts *opts, struct sluice_client **out)
{
	struct sluice_client_opts o = {0};
	int err = SL_ENOMEM;
	if (opts)
		o = *opts;
	if (sodium_init() < 0)
		return SL_EINTERNAL;
	sigpipe_ignore();
	struct sluice_client *c = calloc(1, sizeof(*c));
	if (!c)
		return SL_ENOMEM;
	c->base = base;
	TAILQ_INIT(&c->pending);
	TAILQ_INIT(&c->inflight);
	TAILQ_INIT(&c->retry);
	TAILQ_INIT(&c->pubq);
	TAILQ_INIT(&c->subs);
	TAILQ_INIT(&c->batches);
	const char *servers = o.servers ? o.servers : getenv("SLUICE_SERVER");
	if (!servers || !servers[0])
		servers = CLIENT_SERVER_DEFAULT;
	if ((err = servers_parse(c, servers)) != SL_OK)
		goto fail;
	err = SL_ENOMEM;
	c->client_name = strdup(o.client_name ? o.client_name : "libsluice");
	c->messages_only = o.messages_only;
	c->pipeline_max = o.pipeline_max ? o.pipeline_max : CLIENT_PIPELINE_DEFAULT;
	c->connect_timeout_ms = o.connect_timeout_ms ? o.connect_timeout_ms : CLIENT_CONNECT_TIMEOUT_MS;
	c->request_timeout_ms = o.request_timeout_ms ? o.request_timeout_ms : CLIENT_REQUEST_TIMEOUT_MS;
	c->retry_max_ms = o.retry_max_ms ? o.retry_max_ms : CLIENT_RETRY_MAX_MS;
	c->linger_ms = o.linger_ms;
	c->batch_bytes = o.batch_bytes ? o.batch_bytes : CLIENT_BATCH_BYTES_DEFAULT;
	c->producer_id = o.producer_id;
	while (c->producer_id == 0)
		randombytes_buf(&c->producer_id, sizeof(c->producer_id));
	if ((err = tls_setup(c, &o)) != SL_OK)
		goto fail;
	if ((err = auth_setup(c, &o)) != SL_OK)
		goto fail;
	err = SL_ENOMEM;
	c->backoff_ms = CLIENT_BACKOFF_MIN_MS;
	c->server_frame_bytes_max = CODEC_FRAME_BYTES_DEFAULT;
	c->conn_timer = evtimer_new(base, conn_timer_cb, c);
	c->tick = event_new(base, -1, EV_PERSIST, tick_cb, c);
	c->linger_timer = evtimer_new(base, linger_cb, c);
	if (!c->client_name || !c->conn_timer || !c->tick || !c->linger_timer)
		goto fail;
	struct timeval tv = {0, CLIENT_TICK_MS * 1000};
	event_add(c->tick, &tv);
	conn_start(c);
	*out = c;
	return SL_OK;
fail:
	sluice_client_free(c);
	return err;
}

void sluice_client_free(struct sluice_client *c)
{
	struct sub *s;
	if (!c)
		return;
	if (c->cb_depth > 0) {
		c->dead = 1;
		return;
	}
	c->closing = 1;
	if (c->bev)
		bufferevent_free(c->bev);
	c->bev = NULL;
	c->state = CS_IDLE;
	c->cb_depth++; /* callbacks run below must not re-enter the free */
	fail_everything(c, SL_ECLOSED);
	struct batch *b;
	while ((b = TAILQ_FIRST(&c->batches)) != NULL) { /* never sent: a send now could not be answered */
		TAILQ_REMOVE(&c->batches, b, link);
		batch_fail(c, b, batch_slot(c, b), SL_ECLOSED);
	}
	c->cb_depth--;
	while ((s = TAILQ_FIRST(&c->subs)) != NULL) {
		TAILQ_REMOVE(&c->subs, s, link);
		sub_free(s);
	}
	if (c->conn_timer)
		event_free(c->conn_timer);
	if (c->tick)
		event_free(c->tick);
	if (c->linger_timer)
		event_free(c->linger_timer);
	struct pub_slot *ps;
	while ((ps = TAILQ_FIRST(&c->pubq)) != NULL) { /* none: every publish was failed above */
		TAILQ_REMOVE(&c->pubq, ps, link);
		pub_slot_free(ps);
	}
	for (size_t i = 0; i < c->servers_n; i++)
		free(c->servers[i]);
	SSL_CTX_free(c->tls_ctx);
	sodium_memzero(&c->key, sizeof(c->key));
	free(c->token);
	free(c->tls_name);
	free(c->client_name);
	free(c);
}

void sluice_client_set_retry_max(struct sluice_client *c, uint32_t retry_max_ms)
{
	c->retry_max_ms = retry_max_ms ? retry_max_ms : CLIENT_RETRY_MAX_MS;
}

size_t sluice_client_inflight(const struct sluice_client *c)
{
	return c->pending_n + c->inflight_n + c->retry_n + c->msgs_extra;
}

/* Encode f as a new request and queue it; field names the callback member. */
#define SUBMIT(c, kind, f, field, cbv, argv, extra)                                                                  \
	do {                                                                                                         \
		struct req *r_;                                                                                      \
		if ((c)->closing)                                                                                    \
			return SL_ECLOSED;                                                                           \
		int e_ = req_new((c), (kind), (f), &r_);                                                             \
		if (e_ != SL_OK)                                                                                     \
			return e_;                                                                                   \
		r_->cb.field = (cbv);                                                                                \
		r_->arg = (argv);                                                                                    \
		r_->extra_timeout_ms = (extra);                                                                      \
		req_submit((c), r_);                                                                                 \
		return SL_OK;                                                                                        \
	} while (0)

int sluice_topic_create(struct sluice_client *c, const char *name, uint32_t partitions, int64_t retention_ms,
			int64_t retention_bytes, sluice_done_cb cb, void *arg)
{
	Sluice__TopicConfig tc = SLUICE__TOPIC_CONFIG__INIT;
	Sluice__CreateTopic m = SLUICE__CREATE_TOPIC__INIT;
	Sluice__Frame f = SLUICE__FRAME__INIT;
	if (!name)
		return SL_EINVAL;
	tc.partitions = partitions;
	tc.retention_ms = retention_ms;
	tc.retention_bytes = retention_bytes;
	m.name = (char *)name;
	m.config = &tc;
	f.body_case = SLUICE__FRAME__BODY_CREATE_TOPIC;
	f.create_topic = &m;
	SUBMIT(c, RK_DONE, &f, done, cb, arg, 0);
}

int sluice_topic_delete(struct sluice_client *c, const char *name, sluice_done_cb cb, void *arg)
{
	Sluice__DeleteTopic m = SLUICE__DELETE_TOPIC__INIT;
	Sluice__Frame f = SLUICE__FRAME__INIT;
	if (!name)
		return SL_EINVAL;
	m.name = (char *)name;
	f.body_case = SLUICE__FRAME__BODY_DELETE_TOPIC;
	f.delete_topic = &m;
	SUBMIT(c, RK_DONE, &f, done, cb, arg, 0);
}

int sluice_topic_list(struct sluice_client *c, sluice_topics_cb cb, void *arg)
{
	Sluice__ListTopics m = SLUICE__LIST_TOPICS__INIT;
	Sluice__Frame f = SLUICE__FRAME__INIT;
	f.body_case = SLUICE__FRAME__BODY_LIST_TOPICS;
	f.list_topics = &m;
	SUBMIT(c, RK_TOPICS, &f, topics, cb, arg, 0);
}

int sluice_topic_describe(struct sluice_client *c, const char *name, sluice_topic_cb cb, void *arg)
{
	Sluice__DescribeTopic m = SLUICE__DESCRIBE_TOPIC__INIT;
	Sluice__Frame f = SLUICE__FRAME__INIT;
	if (!name)
		return SL_EINVAL;
	m.name = (char *)name;
	f.body_case = SLUICE__FRAME__BODY_DESCRIBE_TOPIC;
	f.describe_topic = &m;
	SUBMIT(c, RK_TOPIC, &f, topic, cb, arg, 0);
}

/* One Publish request for p. */
static int publish_one(struct sluice_client *c, const struct sluice_pub *p, sluice_ack_cb cb, void *arg)
{
	Sluice__Publish m = SLUICE__PUBLISH__INIT;
	Sluice__Frame f = SLUICE__FRAME__INIT;
	Sluice__Header hstack[16], *hps_stack[16];
	Sluice__Header *hs = hstack, **hps = hps_stack;
	int err = SL_ENOMEM;
	if (p->headers_n > 16) {
		hs = calloc(p->headers_n, sizeof(*hs));
		hps = calloc(p->headers_n, sizeof(*hps));
		if (!hs || !hps)
			goto done;
	}
	for (size_t i = 0; i < p->headers_n; i++) {
		sluice__header__init(&hs[i]);
		hs[i].key = (char *)(p->headers[i].key ? p->headers[i].key : "");
		hs[i].value.data = (uint8_t *)p->headers[i].value.base;
		hs[i].value.len = p->headers[i].value.len;
		hps[i] = &hs[i];
	}
	m.topic = (char *)p->topic;
	m.key.data = (uint8_t *)p->key.base;
	m.key.len = p->key.len;
	m.has_partition = p->has_partition ? 1 : 0;
	m.partition = p->partition;
	m.n_headers = p->headers_n;
	m.headers = hps;
	m.payload.data = (uint8_t *)p->payload.base;
	m.payload.len = p->payload.len;
	m.producer_id = c->producer_id;
	m.sequence = ++c->sequence;
	f.body_case = SLUICE__FRAME__BODY_PUBLISH;
	f.publish = &m;
	struct req *r;
	err = c->closing ? SL_ECLOSED : req_new(c, RK_PUBLISH, &f, &r);
	if (err == SL_OK) {
		r->slot = calloc(1, sizeof(*r->slot));
		if (r->slot) {
			r->slot->cb = cb;
			r->slot->arg = arg;
			r->slot->order = ++c->pub_order;
			TAILQ_INSERT_TAIL(&c->pubq, r->slot, link);
		}
		r->cb.ack = cb;
		r->arg = arg;
		req_submit(c, r);
	} else {
		c->sequence--;
	}
done:
	if (hs != hstack)
		free(hs);
	if (hps != hps_stack)
		free(hps);
	return err;
}

int sluice_publish(struct sluice_client *c, const struct sluice_pub *p, sluice_ack_cb cb, void *arg)
{
	if (!p || !p->topic)
		return SL_EINVAL;
	if (c->closing)
		return SL_ECLOSED;
	if (c->linger_ms > 0 && p->key.len == 0) {
		int err = batch_publish(c, p, cb, arg);
		if (err != SL_EAGAIN)
			return err;
	}
	return publish_one(c, p, cb, arg);
}

void sluice_client_flush(struct sluice_client *c)
{
	struct batch *b;
	while ((b = TAILQ_FIRST(&c->batches)) != NULL)
		batch_close(c, b);
	evtimer_del(c->linger_timer);
}

int sluice_subscribe(struct sluice_client *c, const struct sluice_sub_opts *o, sluice_msg_cb cb, void *arg,
		     uint64_t *sub_out)
{
	struct req *r = NULL;
	if (!o || !o->topic)
		return SL_EINVAL;
	struct sub *s = calloc(1, sizeof(*s));
	if (!s)
		return SL_ENOMEM;
	s->local_id = ++c->next_sub_id;
	s->topic = strdup(o->topic);
	s->group = str_dup(o->group);
	s->start = o->start;
	s->offset = o->offset;
	s->timestamp_ms = o->timestamp_ms;
	s->credit = o->credit ? o->credit : CLIENT_CREDIT_DEFAULT;
	s->cb = cb;
	s->arg = arg;
	if (o->partitions_n > 0) {
		s->partitions = malloc(o->partitions_n * sizeof(uint32_t));
		if (s->partitions) {
			memcpy(s->partitions, o->partitions, o->partitions_n * sizeof(uint32_t));
			s->partitions_n = o->partitions_n;
		}
	}
	if (!s->topic || (o->group && !s->group) || (o->partitions_n > 0 && !s->partitions) ||
	    sub_request(c, s, s->partitions, s->partitions_n, s->start, s->offset, s->group, &r) != SL_OK) {
		sub_free(s);
		return SL_ENOMEM;
	}
	TAILQ_INSERT_TAIL(&c->subs, s, link);
	if (sub_out)
		*sub_out = s->local_id;
	req_submit(c, r);
	return SL_OK;
}

int sluice_unsubscribe(struct sluice_client *c, uint64_t id)
{
	struct sub *s;
	TAILQ_FOREACH(s, &c->subs, link)
	{
		if (s->local_id == id && !s->closed)
			break;
	}
	if (!s)
		return SL_ENOSUB;
	for (size_t i = 0; i < s->legs_n; i++) {
		Sluice__Unsubscribe u = SLUICE__UNSUBSCRIBE__INIT;
		Sluice__Frame f = SLUICE__FRAME__INIT;
		u.subscription_id = s->legs[i].server_id;
		f.body_case = SLUICE__FRAME__BODY_UNSUBSCRIBE;
		f.unsubscribe = &u;
		send_untracked(c, &f);
	}
	s->legs_n = 0;
	s->closed = 1;
	sub_drop_requests(c, s);
	/* An in-flight Subscribe keeps pointing at s: free it only once nothing refers to it. */
	struct req *r;
	TAILQ_FOREACH(r, &c->inflight, link)
	{
		if (r->sub == s)
			r->sub = NULL;
	}
	if (c->cb_depth == 0) {
		TAILQ_REMOVE(&c->subs, s, link);
		sub_free(s);
	}
	return SL_OK;
}

int sluice_commit(struct sluice_client *c, const char *group, const char *topic, uint32_t partition,
		  uint64_t offset, sluice_done_cb cb, void *arg)
{
	Sluice__CommitOffset m = SLUICE__COMMIT_OFFSET__INIT;
	Sluice__Frame f = SLUICE__FRAME__INIT;
	if (!group || !topic)
		return SL_EINVAL;
	m.group = (char *)group;
	m.topic = (char *)topic;
	m.partition = partition;
	m.offset = offset;
	f.body_case = SLUICE__FRAME__BODY_COMMIT_OFFSET;
	f.commit_offset = &m;
	SUBMIT(c, RK_DONE, &f, done, cb, arg, 0);
}

int sluice_fetch(struct sluice_client *c, const char *topic, uint32_t partition, uint64_t offset,
		 uint32_t max_messages, uint32_t wait_ms, sluice_fetch_cb cb, void *arg)
{
	Sluice__Fetch m = SLUICE__FETCH__INIT;
	Sluice__Frame f = SLUICE__FRAME__INIT;
	if (!topic)
		return SL_EINVAL;
	m.topic = (char *)topic;
	m.partition = partition;
	m.offset = offset;
	m.max_messages = max_messages;
	m.wait_ms = wait_ms;
	f.body_case = SLUICE__FRAME__BODY_FETCH;
	f.fetch = &m;
	SUBMIT(c, RK_FETCH, &f, fetch, cb, arg, wait_ms);
}

int sluice_group_describe(struct sluice_client *c, const char *group, sluice_group_cb cb, void *arg)
{
	Sluice__DescribeGroup m = SLUICE__DESCRIBE_GROUP__INIT;
	Sluice__Frame f = SLUICE__FRAME__INIT;
	if (!group)
		return SL_EINVAL;
	m.group = (char *)group;
	f.body_case = SLUICE__FRAME__BODY_DESCRIBE_GROUP;
	f.describe_group = &m;
	SUBMIT(c, RK_GROUP, &f, group, cb, arg, 0);
}

int sluice_node_status(struct sluice_client *c, sluice_status_cb cb, void *arg)
{
	Sluice__NodeStatus m = SLUICE__NODE_STATUS__INIT;
	Sluice__Frame f = SLUICE__FRAME__INIT;
	f.body_case = SLUICE__FRAME__BODY_NODE_STATUS;
	f.node_status = &m;
	SUBMIT(c, RK_STATUS, &f, status, cb, arg, 0);
}

int sluice_cluster_status(struct sluice_client *c, sluice_cluster_cb cb, void *arg)
{
	Sluice__ClusterStatus m = SLUICE__CLUSTER_STATUS__INIT;
	Sluice__Frame f = SLUICE__FRAME__INIT;
	f.body_case = SLUICE__FRAME__BODY_CLUSTER_STATUS;
	f.cluster_status = &m;
	SUBMIT(c, RK_CLUSTER, &f, cluster, cb, arg, 0);
}

int sluice_cluster_transfer_leader(struct sluice_client *c, uint32_t to, sluice_done_cb cb, void *arg)
{
	Sluice__TransferLeader m = SLUICE__TRANSFER_LEADER__INIT;
	Sluice__Frame f = SLUICE__FRAME__INIT;
	if (to == 0)
		return SL_EINVAL;
	m.to = to;
	f.body_case = SLUICE__FRAME__BODY_TRANSFER_LEADER;
	f.transfer_leader = &m;
	SUBMIT(c, RK_DONE, &f, done, cb, arg, 0);
}

void sluice_ack_position(const struct sluice_client *c, uint64_t *term, uint64_t *log_index)
{
	if (term)
		*term = c->ack_term;
	if (log_index)
		*log_index = c->ack_log_index;
}

/* ---------- durable consumers ---------- */

#define CLIENT_SCHEDULE_MAX 16        /* ConsumerConfig.schedule_ms entries */
#define CLIENT_ACK_ITEMS_MAX 1000     /* AckMessages.items */
#define CLIENT_PULL_MAX 1000          /* Pull.max_messages */
#define CLIENT_PULL_WAIT_MS_MAX 20000 /* Pull.wait_ms */

static Sluice__StartAt start_to_wire(enum sluice_start s)
{
	switch (s) {
	case SLUICE_LATEST:
		return SLUICE__START_AT__LATEST;
	case SLUICE_OFFSET:
		return SLUICE__START_AT__OFFSET;
	case SLUICE_TIMESTAMP:
		return SLUICE__START_AT__TIMESTAMP;
	default:
		return SLUICE__START_AT__EARLIEST;
	}
}

int sluice_consumer_create(struct sluice_client *c, const char *name, const struct sluice_consumer_cfg *cfg,
			   sluice_done_cb cb, void *arg)
{
	Sluice__ConsumerConfig cc = SLUICE__CONSUMER_CONFIG__INIT;
	Sluice__CreateConsumer m = SLUICE__CREATE_CONSUMER__INIT;
	Sluice__Frame f = SLUICE__FRAME__INIT;
	if (!name || !cfg || !cfg->topic || cfg->schedule_n > CLIENT_SCHEDULE_MAX ||
	    (cfg->schedule_n > 0 && !cfg->schedule_ms))
		return SL_EINVAL;
	/* Unset fields travel as zeros: the server fills in its defaults. */
	cc.topic = (char *)cfg->topic;
	cc.shared = cfg->shared ? 1 : 0;
	cc.max_in_flight = cfg->max_in_flight;
	cc.max_deliveries = cfg->max_deliveries;
	cc.never_dead_letter = cfg->never_dead_letter ? 1 : 0;
	cc.ack_timeout_ms = cfg->ack_timeout_ms;
	cc.n_schedule_ms = cfg->schedule_n;
	cc.schedule_ms = (uint32_t *)cfg->schedule_ms;
	cc.dead_letter_topic = (char *)(cfg->dead_letter_topic ? cfg->dead_letter_topic : "");
	cc.start = start_to_wire(cfg->start);
	cc.offset = cfg->offset;
	cc.timestamp_ms = cfg->timestamp_ms;
	cc.webhook = (char *)(cfg->webhook ? cfg->webhook : "");
	m.name = (char *)name;
	m.config = &cc;
	f.body_case = SLUICE__FRAME__BODY_CREATE_CONSUMER;
	f.create_consumer = &m;
	SUBMIT(c, RK_DONE, &f, done, cb, arg, 0);
}

int sluice_consumer_delete(struct sluice_client *c, const char *name, sluice_done_cb cb, void *arg)
{
	Sluice__DeleteConsumer m = SLUICE__DELETE_CONSUMER__INIT;
	Sluice__Frame f = SLUICE__FRAME__INIT;
	if (!name)
		return SL_EINVAL;
	m.name = (char *)name;
	f.body_case = SLUICE__FRAME__BODY_DELETE_CONSUMER;
	f.delete_consumer = &m;
	SUBMIT(c, RK_DONE, &f, done, cb, arg, 0);
}

int sluice_webhook_update(struct sluice_client *c, const char *name, const char *webhook_json, sluice_done_cb cb,
			  void *arg)
{
	Sluice__UpdateWebhook m = SLUICE__UPDATE_WEBHOOK__INIT;
	Sluice__Frame f = SLUICE__FRAME__INIT;
	if (!name || !webhook_json)
		return SL_EINVAL;
	m.name = (char *)name;
	m.webhook = (char *)webhook_json;
	f.body_case = SLUICE__FRAME__BODY_UPDATE_WEBHOOK;
	f.update_webhook = &m;
	SUBMIT(c, RK_DONE, &f, done, cb, arg, 0);
}

int sluice_consumer_seek(struct sluice_client *c, const char *name, enum sluice_start start, uint64_t offset,
			 int64_t timestamp_ms, sluice_done_cb cb, void *arg)
{
	Sluice__SeekConsumer m = SLUICE__SEEK_CONSUMER__INIT;
	Sluice__Frame f = SLUICE__FRAME__INIT;
	if (!name)
		return SL_EINVAL;
	m.name = (char *)name;
	m.start = start_to_wire(start);
	m.offset = offset;
	m.timestamp_ms = timestamp_ms;
	f.body_case = SLUICE__FRAME__BODY_SEEK_CONSUMER;
	f.seek_consumer = &m;
	SUBMIT(c, RK_DONE, &f, done, cb, arg, 0);
}

int sluice_consumer_list(struct sluice_client *c, sluice_consumer_cb cb, void *arg)
{
	Sluice__ListConsumers m = SLUICE__LIST_CONSUMERS__INIT;
	Sluice__Frame f = SLUICE__FRAME__INIT;
	f.body_case = SLUICE__FRAME__BODY_LIST_CONSUMERS;
	f.list_consumers = &m;
	SUBMIT(c, RK_CONSUMER, &f, consumer, cb, arg, 0);
}

int sluice_consumer_describe(struct sluice_client *c, const char *name, sluice_consumer_cb cb, void *arg)
{
	Sluice__DescribeConsumer m = SLUICE__DESCRIBE_CONSUMER__INIT;
	Sluice__Frame f = SLUICE__FRAME__INIT;
	if (!name)
		return SL_EINVAL;
	m.name = (char *)name;
	f.body_case = SLUICE__FRAME__BODY_DESCRIBE_CONSUMER;
	f.describe_consumer = &m;
	SUBMIT(c, RK_CONSUMER, &f, consumer, cb, arg, 0);
}

int sluice_pull(struct sluice_client *c, const char *consumer, uint32_t max, uint32_t wait_ms, sluice_pull_cb cb,
		void *arg)
{
	Sluice__Pull m = SLUICE__PULL__INIT;
	Sluice__Frame f = SLUICE__FRAME__INIT;
	if (!consumer || max > CLIENT_PULL_MAX || wait_ms > CLIENT_PULL_WAIT_MS_MAX)
		return SL_EINVAL;
	m.consumer = (char *)consumer;
	m.max_messages = max;
	m.wait_ms = wait_ms;
	f.body_case = SLUICE__FRAME__BODY_PULL;
	f.pull = &m;
	/* The answer may take wait_ms on top of the usual request time. */
	SUBMIT(c, RK_PULL, &f, pull, cb, arg, wait_ms);
}

static Sluice__AckKind ack_kind_to_wire(enum sluice_ack_kind k)
{
	switch (k) {
	case SLUICE_NACK:
		return SLUICE__ACK_KIND__NACK;
	case SLUICE_IN_PROGRESS:
		return SLUICE__ACK_KIND__IN_PROGRESS;
	default:
		return SLUICE__ACK_KIND__ACK;
	}
}

int sluice_ack(struct sluice_client *c, const char *consumer, const struct sluice_ack_item *items, size_t n,
	       sluice_done_cb cb, void *arg)
{
	Sluice__AckMessages m = SLUICE__ACK_MESSAGES__INIT;
	Sluice__Frame f = SLUICE__FRAME__INIT;
	Sluice__AckItem *ws = NULL, **wps = NULL;
	struct req *r = NULL;
	int err = SL_EINVAL;
	if (!consumer || !items || n == 0 || n > CLIENT_ACK_ITEMS_MAX)
		return SL_EINVAL;
	if (c->closing)
		return SL_ECLOSED;
	err = SL_ENOMEM;
	ws = calloc(n, sizeof(*ws));
	wps = calloc(n, sizeof(*wps));
	if (!ws || !wps)
		goto done;
	for (size_t i = 0; i < n; i++) {
		sluice__ack_item__init(&ws[i]);
		ws[i].partition = items[i].partition;
		ws[i].offset = items[i].offset;
		ws[i].kind = ack_kind_to_wire(items[i].kind);
		if (items[i].kind == SLUICE_NACK) {
			ws[i].has_delay = items[i].delay_ms >= 0;
			ws[i].delay_ms = items[i].delay_ms >= 0 ? items[i].delay_ms : -1;
			ws[i].error = (char *)(items[i].error ? items[i].error : "");
		}
		wps[i] = &ws[i];
	}
	m.consumer = (char *)consumer;
	m.n_items = n;
	m.items = wps;
	f.body_case = SLUICE__FRAME__BODY_ACK_MESSAGES;
	f.ack_messages = &m;
	err = req_new(c, RK_DONE, &f, &r);
	if (err != SL_OK)
		goto done;
	r->cb.done = cb;
	r->arg = arg;
	req_submit(c, r);
done:
	free(wps);
	free(ws);
	return err;
}

/* ---------- blocking API ---------- */

struct sluice_sync {
	struct event_base *base;
	struct sluice_client *c;
	int done, err;
	char *errmsg;
	size_t errlen;
	uint32_t partition;
	uint64_t offset, end_offset;
	void (*fetch_fn)(void *arg, const struct sluice_msg *m);
	void *fetch_arg;
	void (*cluster_fn)(void *arg, const struct sluice_cluster_status *st);
	void *cluster_arg;
};

/* Whether the client is connected, or has given up trying. */
static int client_settled(const struct sluice_client *c)
{
	return c->state == CS_READY || c->gave_up;
}

int sluice_sync_open(const struct sluice_client_opts *opts, struct sluice_sync **out)
{
	struct sluice_sync *s = calloc(1, sizeof(*s));
	int err = SL_ENOMEM;
	if (!s)
		return SL_ENOMEM;
	s->base = event_base_new();
	if (!s->base)
		goto fail;
	if ((err = sluice_client_new(s->base, opts, &s->c)) != SL_OK)
		goto fail;
	while (!client_settled(s->c))
		event_base_loop(s->base, EVLOOP_ONCE);
	if (s->c->state != CS_READY && !s->c->auth_error[0]) {
		/* (a refused key or token is not a connection failure: each request hears why) */
		err = s->c->last_conn_err == SL_ETLS ? SL_ETLS : SL_EUNAVAILABLE;
		goto fail;
	}
	*out = s;
	return SL_OK;
fail:
	sluice_sync_close(s);
	return err;
}

void sluice_sync_close(struct sluice_sync *s)
{
	if (!s)
		return;
	sluice_client_free(s->c);
	if (s->base)
		event_base_free(s->base);
	free(s);
}

struct sluice_client *sluice_sync_client(struct sluice_sync *s)
{
	return s->c;
}

struct event_base *sluice_sync_base(struct sluice_sync *s)
{
	return s->base;
}

static void sync_result(struct sluice_sync *s, int err, const char *errmsg)
{
	s->done = 1;
	s->err = err;
	if (s->errmsg && s->errlen) {
		snprintf(s->errmsg, s->errlen, "%s", errmsg ? errmsg : sl_strerror(err));
	}
}

static int sync_wait(struct sluice_sync *s, int err)
{
	if (err != SL_OK)
		return err;
	/* Bounded: every request is answered, times out, or fails after retry_max_ms. */
	while (!s->done)
		event_base_loop(s->base, EVLOOP_ONCE);
	return s->err;
}

static void sync_begin(struct sluice_sync *s, char *errmsg, size_t errlen)
{
	s->done = 0;
	s->err = SL_OK;
	s->errmsg = errmsg;
	s->errlen = errlen;
	if (errmsg && errlen)
		errmsg[0] = 0;
}

static void sync_done_cb(void *arg, int err, const char *errmsg)
{
	sync_result(arg, err, errmsg);
}

int sluice_sync_topic_create(struct sluice_sync *s, const char *name, uint32_t partitions, int64_t retention_ms,
			     int64_t retention_bytes, char *errmsg, size_t errlen)
{
	sync_begin(s, errmsg, errlen);
	return sync_wait(s, sluice_topic_create(s->c, name, partitions, retention_ms, retention_bytes, sync_done_cb, s));
}

int sluice_sync_topic_delete(struct sluice_sync *s, const char *name, char *errmsg, size_t errlen)
{
	sync_begin(s, errmsg, errlen);
	return sync_wait(s, sluice_topic_delete(s->c, name, sync_done_cb, s));
}

static void sync_ack_cb(void *arg, int err, const char *errmsg, uint32_t partition, uint64_t offset,
			int64_t timestamp_ms, int duplicate)
{
	struct sluice_sync *s = arg;
	s->partition = partition;
	s->offset = offset;
	sync_result(s, err, errmsg);
}

int sluice_sync_publish(struct sluice_sync *s, const struct sluice_pub *p, uint32_t *partition, uint64_t *offset,
			char *errmsg, size_t errlen)
{
	sync_begin(s, errmsg, errlen);
	int err = sluice_publish(s->c, p, sync_ack_cb, s);
	if (err == SL_OK)
		sluice_client_flush(s->c); /* one at a time: nothing will join its batch */
	err = sync_wait(s, err);
	if (err == SL_OK) {
		if (partition)
			*partition = s->partition;
		if (offset)
			*offset = s->offset;
	}
	return err;
}

static void sync_fetch_cb(void *arg, int err, const char *errmsg, const struct sluice_msg *msgs, size_t n,
			  uint64_t first_offset, uint64_t end_offset)
{
	struct sluice_sync *s = arg;
	for (size_t i = 0; err == SL_OK && i < n; i++)
		if (s->fetch_fn)
			s->fetch_fn(s->fetch_arg, &msgs[i]);
	s->end_offset = end_offset;
	sync_result(s, err, errmsg);
}

int sluice_sync_fetch(struct sluice_sync *s, const char *topic, uint32_t partition, uint64_t offset,
		      uint32_t max_messages, uint32_t wait_ms,
		      void (*fn)(void *arg, const struct sluice_msg *m), void *arg,
		      uint64_t *end_offset, char *errmsg, size_t errlen)
{
	sync_begin(s, errmsg, errlen);
	s->fetch_fn = fn;
	s->fetch_arg = arg;
	int err = sync_wait(s, sluice_fetch(s->c, topic, partition, offset, max_messages, wait_ms, sync_fetch_cb, s));
	if (err == SL_OK && end_offset)
		*end_offset = s->end_offset;
	return err;
}

static void sync_cluster_cb(void *arg, int err, const char *errmsg, const struct sluice_cluster_status *st)
{
	struct sluice_sync *s = arg;
	if (err == SL_OK && st && s->cluster_fn)
		s->cluster_fn(s->cluster_arg, st);
	sync_result(s, err, errmsg);
}

int sluice_sync_cluster_status(struct sluice_sync *s, void (*fn)(void *arg, const struct sluice_cluster_status *st),
			       void *arg, char *errmsg, size_t errlen)
{
	sync_begin(s, errmsg, errlen);
	s->cluster_fn = fn;
	s->cluster_arg = arg;
	return sync_wait(s, sluice_cluster_status(s->c, sync_cluster_cb, s));
}

/* ---------- security (docs/security.md) ---------- */

int sluice_principal_put(struct sluice_client *c, const struct sluice_principal *p, int remove, sluice_done_cb cb,
			 void *arg)
{
	Sluice__PutPrincipal m = SLUICE__PUT_PRINCIPAL__INIT;
	Sluice__Principal pr = SLUICE__PRINCIPAL__INIT;
	Sluice__Frame f = SLUICE__FRAME__INIT;
	if (!p || !p->name)
		return SL_EINVAL;
	pr.name = (char *)p->name;
	pr.public_keys = (char **)p->public_keys;
	pr.n_public_keys = p->public_keys_n;
	pr.permissions = (char **)p->permissions;
	pr.n_permissions = p->permissions_n;
	m.principal = &pr;
	m.remove = remove != 0;
	f.body_case = SLUICE__FRAME__BODY_PUT_PRINCIPAL;
	f.put_principal = &m;
	SUBMIT(c, RK_DONE, &f, done, cb, arg, 0);
}

int sluice_principal_remove(struct sluice_client *c, const char *name, sluice_done_cb cb, void *arg)
{
	Sluice__RemovePrincipal m = SLUICE__REMOVE_PRINCIPAL__INIT;
	Sluice__Frame f = SLUICE__FRAME__INIT;
	if (!name)
		return SL_EINVAL;
	m.name = (char *)name;
	f.body_case = SLUICE__FRAME__BODY_REMOVE_PRINCIPAL;
	f.remove_principal = &m;
	SUBMIT(c, RK_DONE, &f, done, cb, arg, 0);
}

int sluice_principal_list(struct sluice_client *c, sluice_principals_cb cb, void *arg)
{
	Sluice__ListPrincipals m = SLUICE__LIST_PRINCIPALS__INIT;
	Sluice__Frame f = SLUICE__FRAME__INIT;
	f.body_case = SLUICE__FRAME__BODY_LIST_PRINCIPALS;
	f.list_principals = &m;
	SUBMIT(c, RK_AUTH, &f, principals, cb, arg, 0);
}

int sluice_auth_init(struct sluice_client *c, sluice_done_cb cb, void *arg)
{
	Sluice__AuthInit m = SLUICE__AUTH_INIT__INIT;
	Sluice__Frame f = SLUICE__FRAME__INIT;
	f.body_case = SLUICE__FRAME__BODY_AUTH_INIT;
	f.auth_init = &m;
	SUBMIT(c, RK_DONE, &f, done, cb, arg, 0);
}

int sluice_token_issue(struct sluice_client *c, const char *principal, uint32_t ttl_s, const char *const *perms,
		       size_t n, sluice_token_cb cb, void *arg)
{
	Sluice__IssueToken m = SLUICE__ISSUE_TOKEN__INIT;
	Sluice__Frame f = SLUICE__FRAME__INIT;
	if (!principal || (n && !perms))
		return SL_EINVAL;
	m.principal = (char *)principal;
	m.ttl_s = ttl_s;
	m.permissions = (char **)perms;
	m.n_permissions = n;
	f.body_case = SLUICE__FRAME__BODY_ISSUE_TOKEN;
	f.issue_token = &m;
	SUBMIT(c, RK_AUTH, &f, token, cb, arg, 0);
}

int sluice_audit_list(struct sluice_client *c, uint64_t after, uint32_t max, sluice_audit_cb cb, void *arg)
{
	Sluice__ListAudit m = SLUICE__LIST_AUDIT__INIT;
	Sluice__Frame f = SLUICE__FRAME__INIT;
	m.after = after;
	m.max = max;
	f.body_case = SLUICE__FRAME__BODY_LIST_AUDIT;
	f.list_audit = &m;
	SUBMIT(c, RK_AUTH, &f, audit, cb, arg, 0);
}
