/*
 * fe_int.h: state shared by the frontend's files (frontend.c: connections,
 * framing, publish path and acks; fe_read.c: subscriptions and fetch;
 * fe_admin.c: the describe/status reads and cluster status). Private to the
 * sluice_frontend library.
 *
 * Lifetimes: a connection is never freed inside one of its own callbacks.
 * conn_close() only marks it dead and queues it for the reaper event, which
 * frees its subscriptions, parked fetches and pending ring requests.
 */
#ifndef SLUICE_FE_INT_H
#define SLUICE_FE_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "sluice.pb-c.h"
#include "store.h"

struct event_base;
struct event;
struct bufferevent;
struct evconnlistener;
struct evbuffer;
struct fe_fanout;
struct fe_limits;
struct fe;
struct sockaddr;

/* Output watermarks: deliveries pause above HIGH and resume below LOW; a
 * connection stops being read while its output is above PAUSE. */
#define FE_DELIVERY_MSGS_MAX 256
#define FE_BATCH_FORMAT 1 /* the RecordBatch format served (HelloOk.batches): common/recbatch.h */
#define FE_DELIVERY_BATCH_MSGS_MAX 65536 /* records per Delivery of whole batches (bytes cap it first) */
#define FE_DELIVERY_BATCH_BYTES_MAX (1u << 20)
#define FE_DELIVERY_BYTES_MAX (256u << 10)
#define FE_SUB_TURN_BYTES_MAX (1u << 20)
#define FE_FETCH_MSGS_DEFAULT 1000
#define FE_FETCH_BYTES_DEFAULT (1u << 20)
#define FE_FETCH_WAIT_MS_MAX 60000
#define FE_PENDING_TIMEOUT_MS 30000
#define FE_FENCE_MS 10000
#define FE_FENCES_MAX 8
#define FE_SHUTDOWN_WAIT_MS 5000
#define FE_ADDR_BYTES 48 /* a source address as text (INET6_ADDRSTRLEN and a NUL) */

struct fe_sub;

/* One partition of a subscription. While it has delivered everything up to
 * the committed end it waits on its commit-table slot (fe->waiters), so a
 * commit wakes only the subscriptions whose partitions moved. */
struct fe_subpart {
	uint32_t partition;
	uint64_t next;
	struct fe_sub *sub;
	int waiting;                     /* linked in fe->waiters[slot] */
	TAILQ_ENTRY(fe_subpart) wait;
};

TAILQ_HEAD(fe_subpart_list, fe_subpart);

struct fe_sub {
	TAILQ_ENTRY(fe_sub) link; /* conn->subs */
	TAILQ_ENTRY(fe_sub) runq; /* fe->runq while queued */
	struct fe_conn *conn;
	uint64_t id;
	uint64_t req_id; /* Subscribe request: errors that end the sub carry it */
	char topic[256];
	uint32_t topic_id;
	uint32_t slot_base;
	uint32_t nparts;
	uint32_t rr; /* round-robin cursor into parts */
	struct fe_subpart *parts;
	uint64_t credit;
	int queued;
};

/* Messages read from one partition, as protobuf structs pointing into the
 * LMDB pages of the read txn (valid until it ends); only header keys are
 * copied. Built by fe_msgs_read (fe_read.c). */
struct fe_msgs {
	const char *topic;
	uint32_t partition;
	size_t n, msgs_max, bytes, bytes_max;
	uint64_t data_bytes; /* key + headers + payload of the messages taken (metrics) */
	Sluice__Message *msgs;
	Sluice__Message **ptrs;
	void **blocks; /* per message: its header array, or NULL */
	int stopped, err;
	uint64_t stop_at, next;
};

/* A read of whole stored batches for a connection that takes them
 * (fe_batches.c): RecordBatch structs whose values point at the LMDB pages
 * (valid until the txn ends). */
struct fe_batches {
	const char *topic;
	uint32_t partition;
	size_t msgs_max, bytes_max;
	Sluice__RecordBatch *wire;
	Sluice__RecordBatch **ptrs; /* n, filled once the read is done */
	size_t n, cap;
	size_t msgs;                /* records the batches deliver, over all of them */
	uint64_t value_bytes;       /* stored value bytes: what the Delivery carries */
	uint64_t data_bytes;        /* key + headers + payload of the records delivered (metrics) */
	int too_big;                /* the first batch alone is over bytes_max: read messages instead */
	int err;
};

/* Reference-counted bytes: one rendering shared by many output buffers
 * (evbuffer_add_reference; the last buffer to let go frees it). */
struct fe_share {
	uint32_t refs;
	size_t len;
	uint8_t data[];
};

/* One read of (topic, partition) from `from` below `end`, at most
 * msgs_max messages, shared by every subscription of one delivery pass that
 * reads the same thing, with its renderings made on first use. */
struct fe_fanout_key {
	uint32_t topic_id, partition;
	uint64_t from, end;
	size_t msgs_max;
	int batches; /* whole stored batches (fe_batches.c), else messages */
};

struct fe_fanout_entry {
	struct fe_fanout_key key; /* key.end: the committed end it was read below */
	int used;
	char topic[256];          /* the messages' topic name (m.topic points here) */
	int rc;                   /* of the read: SL_OK, else an sl_err */
	uint64_t next;            /* where the next read starts */
	struct fe_msgs m;         /* the messages read, unless b holds batches */
	struct fe_batches b;      /* key.batches: the stored batches read (none: too big, see m) */
	struct fe_share *native;  /* Delivery.messages as encoded field bytes (fe_fanout_native) */
	struct fe_share *sse[2];  /* SSE events, raw and json (http_sse.c) */
	size_t *sse_at[2];        /* per message k: [2k] its id line, [2k+1] its event line; [2n] = len */
};

struct fe_fetch {
	TAILQ_ENTRY(fe_fetch) link; /* fe->parked */
	struct fe_conn *conn;
	uint64_t req_id;
	char topic[256];
	uint32_t partition;
	uint64_t offset;
	uint32_t max_messages;
	uint32_t max_bytes;
	struct event *timer;
};

enum fe_pending_kind { FE_PENDING_PUBLISH, FE_PENDING_BATCH, FE_PENDING_OK, FE_PENDING_PULL };

struct fe_pull;

struct fe_pending {
	struct fe_pending *hnext;        /* hash chain */
	TAILQ_ENTRY(fe_pending) age;     /* fe->pending_fifo, oldest first */
	TAILQ_ENTRY(fe_pending) by_conn; /* conn->pending */
	uint64_t cookie;
	uint64_t req_id;
	struct fe_conn *conn;
	int64_t created_ms;
	uint64_t submitted_ns;           /* time_mono_ns() at ring submit: publish->ack latency */
	enum fe_pending_kind kind;
	uint16_t rm_type;                /* the ring record's enum rm_type (0: none) */
	uint64_t producer_id;            /* publishes: for the connection's fence */
	uint64_t space;                  /* fe_fence_space(): the sequence space it was numbered in */
	uint64_t sequence;
	struct fe_pull *pull;            /* FE_PENDING_PULL: the consumer and the picks so far (fe_consumer.c) */
};

TAILQ_HEAD(fe_sub_list, fe_sub);
TAILQ_HEAD(fe_fetch_list, fe_fetch);
TAILQ_HEAD(fe_pending_list, fe_pending);

struct http_conn;
struct fe_http;

struct fe_conn {
	TAILQ_ENTRY(fe_conn) link; /* fe->conns or fe->dead */
	struct fe *fe;
	struct bufferevent *bev;
	struct http_conn *http;    /* an HTTP connection (broker/http); NULL: native protocol */
	int handshaken;
	int closing;    /* flush output, then close */
	int lingering;  /* output flushed and half-closed: discard input until EOF */
	int dead;       /* waiting for the reaper */
	int out_paused; /* reading paused: output too large */
	uint64_t next_sub_id;
	uint32_t nsubs;
	struct fe_sub_list subs;
	struct fe_pending_list pending;
	uint32_t npending;     /* requests awaiting the log; reading pauses at cfg inflight_max */
	uint32_t nparked;      /* fetches parked in fe->parked (at most cfg inflight_max) */
	int deliver_shared;    /* native TCP: Deliveries are written from the pass's shared encoding (fe_fanout.c) */
	int batches;           /* native TCP that said Hello.accept_batches: reads ship stored batches */
	struct fe_ident *ident; /* [auth]: who it is (fe_auth.c); NULL until needed */
	char addr[FE_ADDR_BYTES]; /* source IP as text: connections per address, rate keys with auth off */
	int addr_counted;          /* counted in fe->limits' per-address table (fe_limits.c) */
	/* After a publish of producer P in sequence space S (topic and
	 * partition space, as dedup numbers them) was answered UNAVAILABLE,
	 * P's later publishes in S on this connection are refused (FENCED)
	 * until the lowest refused sequence comes again: retries then reach the
	 * log in sequence order, never behind newer messages. A fence lifts by
	 * itself after FE_FENCE_MS for clients that give up instead of
	 * retrying. At most FE_FENCES_MAX per connection (oldest replaced). */
	struct fe_fence {
		uint64_t pid, space, seq;
		int64_t until_ms;        /* 0: slot free */
	} fences[FE_FENCES_MAX];
};

TAILQ_HEAD(fe_conn_list, fe_conn);

struct fe {
	const struct config *cfg;
	struct shm *shm;
	uint32_t index;
	int efd;
	int logwriter_efd;
	struct store *store;
	struct event_base *base;
	struct evconnlistener *listener;
	struct fe_http *http;            /* the HTTP server (broker/http) */
	struct fe_ident *anon;           /* [auth]: the principal anonymous, as connections without one see it */
	uint8_t seal_key[32];            /* [auth] key_file, once read (seal_key_ok) */
	int seal_key_ok;
	struct wh_deliver *webhooks;     /* frontend 0: webhook delivery (broker/http/webhook/wh_deliver.h) */
	struct event *efd_ev, *tick_ev, *stall_ev, *run_ev, *reap_ev, *sigterm_ev, *sigint_ev, *sighup_ev;
	struct ssl_ctx_st *tls_ctx;      /* [tls] on: new connections' context (fe_tls.h); NULL: plain TCP */
	struct fe_conn_list conns, dead;
	uint32_t nconns;
	struct fe_sub_list runq;
	struct fe_fetch_list parked;
	struct fe_subpart_list *waiters; /* per commit-table slot (cfg partitions_max) */
	struct fe_fanout *fanout;        /* reads shared by one delivery pass (fe_fanout.c) */
	struct fe_limits *limits;        /* connections per address, rate buckets (fe_limits.c) */
	uint32_t nwaiters;               /* waiting subscription partitions, all slots */

	/* pending ring requests: cookie -> entry */
	struct fe_pending **buckets;
	size_t nbuckets, npending;
	struct fe_pending_list pending_fifo;
	uint32_t generation;
	uint64_t cookie_counter;

	/* backpressure: the frame that did not fit in the pub ring */
	struct fe_conn *stall_conn;
	Sluice__Frame *stall_frame;

	uint64_t run_pass;               /* delivery passes (fe_run_cb) so far: what one pass read stays valid in it */
	uint64_t commit_seq_seen;
	uint32_t logwriter_gen_seen;
	uint64_t epoch_seen;            /* shm cluster epoch last acted on */
	uint64_t auth_gen_checked;      /* [auth]: shm auth_gen + 1 when open streams were last checked (fe_auth_streams.c) */
	int64_t auth_expiry_next_s;     /* [auth]: earliest token expiry of an open stream (0: none) */
	int stopping;
	int64_t stop_deadline_ms;
	uint64_t published;
	uint64_t ring_full_pauses; /* times the pub ring was full (logged at exit) */
};

/* fe_consumer.c: durable consumers (requests to the log, pull answers, list, describe) */
struct rm_ack;
/* Type and ring record size of a consumer request; SL_EUNKNOWN_OP if f is none. */
int fe_cons_req_size(const Sluice__Frame *f, uint16_t *type, uint32_t *len, const char **why);

/* fe_callback.c: a publish's commit callback as an RM_CALLBACK record. */
struct fe_cb_rec {
	uint32_t len;                         /* the record's bytes */
	char secret[256];                     /* signs sluice.callbacks if this one makes it (sealed when [auth] key_file is set) */
};
struct fe_cb_op {
	const char *topic;
	uint64_t cookie, producer_id, sequence;
	uint32_t space, count;
};
/* Check cb of a publish to topic by producer_id, and size its record
 * (a fresh secret in rec). SL_OK, or SL_EINVAL with why for the client. */
int fe_cb_size(struct fe *fe, const Sluice__Callback *cb, const char *topic, uint64_t producer_id,
               struct fe_cb_rec *rec, const char **why);
/* Write the record sized by fe_cb_size at p (rec->len bytes). */
void fe_cb_fill(uint8_t *p, const Sluice__Callback *cb, const struct fe_cb_op *op, const struct fe_cb_rec *rec);
/* Write its ring record (defaults filled in) at p. */
void fe_cons_fill(uint8_t *p, const Sluice__Frame *f, uint64_t cookie);
/* A pull's state in its pending entry (set before the request enters the ring). */
int fe_cons_pending_init(struct fe_pending *p, const Sluice__Frame *f);
void fe_cons_pending_free(struct fe_pending *p);
/* An RM_ACK_PICK ack of a pull; then its RM_ACK_PICK_END: answer PullResult. */
void fe_cons_on_pick(struct fe_pending *p, const struct rm_ack *a);
void fe_cons_pull_done(struct fe_conn *c, struct fe_pending *p);
void fe_on_list_consumers(struct fe_conn *c, uint64_t id);
/* Every consumer's totals over its partitions, for /metrics (*rows malloc'd). */
struct fe_cons_row {
	char name[256], topic[256];
	int webhook;
	uint64_t lag, in_flight, delivered, redelivered, acked, dead_lettered;
};
int fe_cons_collect(struct fe *fe, struct fe_cons_row **rows, size_t *n);
void fe_on_describe_consumer(struct fe_conn *c, uint64_t id, const Sluice__DescribeConsumer *m);

/* frontend.c */
void fe_send(struct fe_conn *c, const Sluice__Frame *f);
void fe_send_error(struct fe_conn *c, uint64_t id, int err, const char *msg);
void fe_send_ok(struct fe_conn *c, uint64_t id);
/* An Error carrying retry_after_ms (TOO_MANY of a rate limit; HTTP: Retry-After). */
void fe_send_error_retry(struct fe_conn *c, uint64_t id, int err, const char *msg, uint32_t retry_after_ms);
/* Map an sl_err to a wire ErrorCode (1:1 below 100, INTERNAL otherwise). */
Sluice__ErrorCode fe_error_code(int err);
/* A new connection on fd (native or, with http set later, HTTP), linked in
 * fe->conns with the shared callbacks; NULL if out of memory (fd closed). */
struct fe_conn *fe_conn_new(struct fe *fe, int fd);
/* Mark c dead; the reaper frees it later. */
void fe_conn_close(struct fe_conn *c);
/* Flush what is queued, then half-close and close (as after a fatal error). */
void fe_conn_finish(struct fe_conn *c);
/* Handle one decoded request frame as if it came from c's socket. Returns 1
 * if the frame was kept (ring full; freed later), 0 if the caller frees it. */
int fe_conn_dispatch(struct fe_conn *c, Sluice__Frame *f);
/* Re-evaluate whether c may read (backpressure, limits, closing). */
void fe_conn_update_read(struct fe_conn *c);

/* fe_limits.c: limits against abuse (connections per address, requests
 * and bytes per second per principal). */
int fe_limits_init(struct fe *fe);
void fe_limits_free(struct fe *fe);
/* The source IP of sa as text ("unknown" if not IPv4 or IPv6). */
void fe_limits_addr_text(const struct sockaddr *sa, char out[FE_ADDR_BYTES]);
/* 1 if addr already has connections_per_address_max connections here. */
int fe_limits_addr_full(struct fe *fe, const char *addr);
/* A new connection c from addr (counted); its close undoes it (detach). */
void fe_limits_conn_attach(struct fe_conn *c, const char *addr);
void fe_limits_conn_detach(struct fe_conn *c);
/* Charge request f to c's principal (its address with [auth] off): SL_OK,
 * or SL_ETOOMANY with why and the ms until it would pass. Nothing is queued. */
int fe_limits_request(struct fe_conn *c, const Sluice__Frame *f, char *why, size_t cap, uint32_t *retry_ms);

/* fe_read.c */
int fe_topic_get(struct fe *fe, struct store_txn *t, const char *name, struct store_topic *out);
/* Committed end of partition p of tp; SL_EUNAVAILABLE while the slot is not (yet) this topic's. */
int fe_partition_end(struct fe *fe, const struct store_topic *tp, uint32_t p, uint64_t *end);
void fe_on_subscribe(struct fe_conn *c, uint64_t id, const Sluice__Subscribe *m);
/* Where a read of partition p starts: the group's committed offset if
 * group names one, else earliest, latest, an offset or a timestamp;
 * clamped to [first stored, committed end]. Inside the caller's read txn. */
struct fe_start {
	Sluice__StartAt start;
	uint64_t offset;
	int64_t timestamp_ms;
	const char *group;               /* NULL or "": none */
};
int fe_start_offset(struct fe *fe, struct store_txn *t, const struct store_topic *tp, uint32_t p,
                    const struct fe_start *st, uint64_t *pos);
/* The subscription of c with this id, or NULL. */
struct fe_sub *fe_sub_find(struct fe_conn *c, uint64_t id);
/* Before its first delivery: start partition p of s at `next` (may be past
 * the committed end: delivery then waits for it) and grant `credit`. */
void fe_sub_seek(struct fe_sub *s, uint32_t partition, uint64_t next);
/* End s now: its last Delivery{end_error = code (an sl_err), end_message =
 * msg}, then s is freed. Not from inside a delivery pass. */
void fe_sub_end(struct fe_sub *s, int code, const char *msg);
void fe_on_credit(struct fe_conn *c, uint64_t id, const Sluice__Credit *m);
void fe_on_unsubscribe(struct fe_conn *c, uint64_t id, const Sluice__Unsubscribe *m);
void fe_on_fetch(struct fe_conn *c, uint64_t id, const Sluice__Fetch *m);
void fe_on_list_topics(struct fe_conn *c, uint64_t id);
void fe_on_describe_topic(struct fe_conn *c, uint64_t id, const Sluice__DescribeTopic *m);
void fe_on_describe_group(struct fe_conn *c, uint64_t id, const Sluice__DescribeGroup *m);
void fe_on_node_status(struct fe_conn *c, uint64_t id);

/* fe_read.c: read [from, limit) of partition m->partition into m (after
 * fe_msgs_init); *next is where the next read starts. */
int fe_msgs_init(struct fe_msgs *m, const char *topic, uint32_t partition, size_t msgs_max, size_t bytes_max);
int fe_msgs_read(struct store_txn *t, const struct store_topic *tp, struct fe_msgs *m, uint64_t from, uint64_t limit,
                 uint64_t *next);
void fe_msgs_free(struct fe_msgs *m);

/* fe_batches.c: read the stored batches holding [from, limit) of partition
 * b->partition into b (after fe_batches_init), at most msgs_max records and
 * about bytes_max value bytes; *next is where the next read starts. With
 * b->too_big set nothing was read: read messages instead. */
void fe_batches_init(struct fe_batches *b, const char *topic, uint32_t partition, size_t msgs_max, size_t bytes_max);
int fe_batches_read(struct store_txn *t, const struct store_topic *tp, struct fe_batches *b, uint64_t from,
                    uint64_t limit, uint64_t *next);
void fe_batches_free(struct fe_batches *b);

/* fe_fanout.c: the read-once, render-once cache of one delivery pass. */
void fe_fanout_teardown(struct fe *fe);
/* The entry for key: *hit = 1 if this pass read it already; else a cleared
 * entry (an older one in its place is dropped) for the caller to fill. NULL
 * only if out of memory. Valid until the next fe_fanout_get or flush. */
struct fe_fanout_entry *fe_fanout_get(struct fe *fe, const struct fe_fanout_key *key, int *hit);
/* Drop every entry (the pass ended, or its read txn is replaced): the
 * renderings live on in the output buffers that reference them. */
void fe_fanout_flush(struct fe *fe);
/* Write Frame{Delivery{subscription_id, e's messages}} to native connection c:
 * a small header of its own and a reference to e's shared encoding. */
void fe_fanout_native(struct fe_conn *c, uint64_t subscription_id, struct fe_fanout_entry *e);
/* A share of cap bytes (len 0, one reference: the caller's); NULL if out of memory. */
struct fe_share *fe_share_new(size_t cap);
void fe_share_unref(struct fe_share *sh);
/* Append [off, off+len) of sh to out by reference (sh gains a reference
 * that out drops when it has sent those bytes). SL_OK or SL_ENOMEM. */
int fe_share_add(struct evbuffer *out, struct fe_share *sh, size_t off, size_t len);
/* The read txn of the current delivery pass, begun on first use (*began = 1:
 * just now, so it sees every commit published before this call). */
int fe_pass_txn(struct fe *fe, struct store_txn **t, int *began);
/* A fresh entry was filled: count the bytes read under the pass's txn. */
void fe_fanout_read_done(struct fe *fe, const struct fe_fanout_entry *e);
/* End the pass's read txn and its shared reads. */
void fe_pass_end(struct fe *fe);

/* fe_admin.c: cluster. A node is in a cluster when its config names peers or
 * its logwriter says it runs raft (shm cluster.enabled). */
int fe_is_cluster(const struct fe *fe);
/* Whether id names a node of the cluster (config, or the logwriter's view). */
int fe_cluster_has_node(const struct fe *fe, uint32_t id);
/* ClusterStatus, answered from the shm cluster block and the config's addresses. */
void fe_on_cluster_status(struct fe_conn *c, uint64_t id);
/* Queue a subscription for a delivery pass (zero timer). */
void fe_sub_schedule(struct fe_sub *s);
/* The commit table moved: wake subscriptions and parked fetches. */
void fe_reads_commit_moved(struct fe *fe);
/* The sequence space of a publish, for fences (topic name, partition or any). */
uint64_t fe_fence_space(const char *topic, int has_partition, uint32_t partition);
/* Shutdown began: answer parked fetches now. */
void fe_reads_stop(struct fe *fe);
/* Output dropped below the low watermark. */
void fe_reads_conn_writable(struct fe_conn *c);
/* Release everything a dead connection holds on the read side. */
void fe_reads_conn_free(struct fe_conn *c);
void fe_run_cb(int fd, short what, void *arg);

#endif
