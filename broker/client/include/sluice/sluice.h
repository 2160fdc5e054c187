/*
 * sluice.h: libsluice, the C client library for sluice's native protocol.
 *
 * This header is self-contained: it includes only standard C headers and
 * every name it declares starts with sluice_ or SLUICE_. Link with
 * libsluiceclient, libevent (with libevent_openssl), OpenSSL and libsodium.
 *
 * Async API: a client lives on the caller's libevent event_base. Every call
 * queues a request and returns at once; callbacks run on the event loop.
 * Requests pipeline (up to opts.pipeline_max in flight; past that, calls
 * queue locally). Publishes carry the client's producer id and a sequence
 * number; when the connection drops, the client reconnects to the next server
 * of its list (with backoff) and re-sends every unacknowledged publish with
 * the same id and sequence, so the broker stores it once. A publish answered
 * SLUICE_EUNAVAILABLE (a cluster node that knows no leader) or SLUICE_EFENCED
 * (an earlier publish of this producer is being retried) is retried the same
 * way until retry_max_ms; a server that keeps answering only UNAVAILABLE is
 * left for the next of the list.
 *
 * Batching (opts.linger_ms > 0), as Kafka's producer does: a publish without
 * a key waits up to linger_ms in an open batch of its topic and partition
 * space (its has_partition and partition) for more to join, and the batch
 * travels as one PublishBatch request: pipelined, retried and re-sent like
 * a single publish, stored by the broker all or nothing. A batch is sent
 * when its records reach batch_bytes, when it holds 65536 messages, linger_ms
 * after its first message, or on sluice_client_flush. Without
 * has_partition the broker puts a whole batch on one partition of its
 * choice. Each message still gets its own ack callback, in publish order,
 * at (partition, offset of the first + i); an error fails every message of
 * the batch with the same error. Publishes with a key are never batched:
 * the broker hashes the key to choose the partition, as before. A message
 * too large for a batch, or with a header key over 255 bytes, is sent alone
 * (after the open batch of its space, which is sent first).
 *
 * Blocking API (sluice_sync_*): a private event_base driven until the answer
 * arrives; for CLIs and tests.
 *
 * Threading: none inside. A client belongs to the one event_base it was made
 * on; call sluice_* for it only from the thread that runs that base (callbacks
 * run there too). Separate clients on separate bases may run on separate
 * threads. A sluice_sync is one client on its own base: one thread at a time.
 *
 * Ownership: the caller keeps what it passes in. Strings and byte ranges in
 * options and requests (sluice_client_opts, sluice_pub, sluice_sub_opts, names)
 * are copied or encoded before the call returns, so they may be freed or
 * reused at once. Everything a callback receives (strings, sluice_bytes,
 * arrays of structs, errmsg) belongs to the library and is valid only until
 * the callback returns; copy what you keep. Callbacks may call any sluice_*
 * function, including sluice_client_free (the free is deferred until the
 * callback unwinds).
 *
 * Errors: functions return 0 (SLUICE_OK) or an enum sluice_err value;
 * callbacks get the same in `err`, and errmsg is the server's message or
 * NULL. sluice_strerror describes any of them.
 */
#ifndef SLUICE_SLUICE_H
#define SLUICE_SLUICE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------- errors ---------- */

/* Values 1..99 are the server's answers (the wire ErrorCode of
 * proto/sluice.proto); values from 100 arise in the library itself. */
enum sluice_err {
	SLUICE_OK = 0,
	SLUICE_EMALFORMED = 1,      /* a frame the other side could not decode */
	SLUICE_ETOOLARGE = 2,       /* frame or message over the server's limit */
	SLUICE_EVERSION = 3,        /* no protocol version in common */
	SLUICE_EUNKNOWN_OP = 4,
	SLUICE_ENOTOPIC = 5,
	SLUICE_ETOPIC_EXISTS = 6,
	SLUICE_EINVAL = 7,          /* invalid argument (also refused locally) */
	SLUICE_EFULL = 8,           /* the server's storage is full */
	SLUICE_EUNAVAILABLE = 9,    /* no server reachable, or no cluster leader */
	SLUICE_ENOSUB = 10,         /* no such subscription */
	SLUICE_EINTERNAL = 11,
	SLUICE_EHANDSHAKE = 12,
	SLUICE_ERANGE = 13,         /* offset out of range */
	SLUICE_ETOOMANY = 14,       /* a server limit on connections, topics, ... */
	SLUICE_EFENCED = 15,        /* publish refused before reaching the log; an earlier
	                             * publish of this producer must be retried first */
	SLUICE_ENOCONSUMER = 16,    /* no durable consumer of that name */
	SLUICE_ECONSUMER_EXISTS = 17,
	SLUICE_EUNAUTHENTICATED = 18, /* no identity, or one that does not verify */
	SLUICE_EPERMISSION = 19,    /* the principal lacks a permission (the message names it) */

	SLUICE_ENOMEM = 100,
	SLUICE_EIO = 101,
	SLUICE_EAGAIN = 102,        /* try again later */
	SLUICE_ENOTFOUND = 103,
	SLUICE_ECORRUPT = 104,
	SLUICE_ECLOSED = 105,       /* connection closed, or the client was freed */
	SLUICE_ETIMEOUT = 106,
	SLUICE_ECONFIG = 107,       /* bad options (e.g. a tls_ca file that cannot be read) */
	SLUICE_ETLS = 108,          /* TLS handshake failed: certificate not trusted or for another
	                             * name, or the server does not speak TLS */
};

/* Short static description of err (any int); never NULL. */
const char *sluice_strerror(int err);

/* ---------- byte ranges ---------- */

/* A borrowed byte range; it never owns its bytes (see Ownership above). */
struct sluice_bytes {
	const uint8_t *base;
	size_t len;
};

static inline struct sluice_bytes sluice_bytes_make(const void *p, size_t n)
{
	struct sluice_bytes b = {(const uint8_t *)p, n};
	return b;
}

/* The bytes of a NUL-terminated string, without the NUL; NULL gives len 0. */
static inline struct sluice_bytes sluice_bytes_cstr(const char *s)
{
	return sluice_bytes_make(s, s ? strlen(s) : 0);
}

/* ---------- client ---------- */

struct event_base;           /* libevent's (event2/event.h) */
struct sluice_client;

struct sluice_client_opts {
	const char *servers;        /* "host:port[,host:port...]"; NULL: $SLUICE_SERVER or 127.0.0.1:7400 */
	const char *client_name;
	uint32_t pipeline_max;      /* requests in flight; 0: 1024 */
	uint64_t producer_id;       /* 0: random (libsodium) */
	uint32_t connect_timeout_ms;/* 0: 5000 */
	uint32_t request_timeout_ms;/* per-attempt; 0: 30000 */
	uint32_t retry_max_ms;      /* give up reconnecting after this long; 0: 60000 */
	uint32_t linger_ms;         /* how long a keyless publish may wait for others to join its
	                             * batch; 0: no batching, every publish is sent at once */
	uint32_t batch_bytes;       /* send a batch when its records reach this size; 0: 262144.
	                             * Never more than the server's frame_bytes_max allows. */
	/* TLS (TLS 1.2 or later). With tls or tls_ca set the client speaks TLS and checks the
	 * server's certificate: issued by a CA of tls_ca (a PEM file; NULL: the system's CAs)
	 * and made out to the host of the server address (a name, sent as SNI too, or an IP
	 * address), or to tls_server_name when set. A failed check is SLUICE_ETLS. With
	 * neither set, $SLUICE_TLS_CA (when non-empty) is taken as tls_ca; else plain TCP. */
	int tls;
	const char *tls_ca;
	const char *tls_server_name;
	int tls_skip_verify;        /* encrypt without checking the certificate: only for a connection
	                             * that cannot leave the host (a node to its own listener) */
	/* Authentication (servers with [auth] enabled, docs/security.md): a key file written by
	 * `sluice key gen` (NULL: $SLUICE_KEY), or a token (NULL: $SLUICE_TOKEN). With one, each
	 * connection proves it before any request; a refusal fails the requests with
	 * SLUICE_EUNAUTHENTICATED (and the client does not retry it until asked again). */
	const char *key_file;
	const char *token;
	const uint8_t *key_seed;    /* or a key given as its 32-byte Ed25519 seed */
	/* Subscriptions and fetches receive the log's stored record batches, which the client
	 * checks (lengths, CRC32C) and unpacks into the same sluice_msg callbacks: fewer bytes
	 * decoded on the server. Set messages_only to ask for one message at a time instead
	 * (what servers before batches send; the callbacks see the same messages). */
	int messages_only;
};

struct sluice_header {
	const char *key;
	struct sluice_bytes value;
};

struct sluice_pub {
	const char *topic;
	struct sluice_bytes key;    /* len 0: none */
	int has_partition;
	uint32_t partition;
	const struct sluice_header *headers;
	size_t headers_n;
	struct sluice_bytes payload;
};

struct sluice_msg {
	const char *topic;
	uint32_t partition;
	uint64_t offset;
	int64_t timestamp_ms;
	struct sluice_bytes key;
	const struct sluice_header *headers;
	size_t headers_n;
	struct sluice_bytes payload;
};

struct sluice_partition_info {
	uint32_t partition;
	uint64_t first_offset, end_offset, bytes;
};

struct sluice_topic_info {
	const char *name;
	uint32_t partitions;
	int64_t retention_ms, retention_bytes, created_ms;
	const struct sluice_partition_info *parts;
	size_t parts_n;
	const char *created_by; /* who created it: a principal, "-" ([auth] off then), "" (the system, or unknown) */
};

struct sluice_group_partition {
	const char *topic;
	uint32_t partition;
	uint64_t committed_offset, end_offset, lag;
};

struct sluice_node_status {
	uint32_t node_id, frontends, topics, logwriter_restarts, frontend_restarts;
	const char *version;
	int64_t uptime_ms;
	uint64_t map_bytes, used_bytes, connections, published;
};

/* Cluster state as one node sees it (sluice_cluster_status). */
struct sluice_cluster_node {
	uint32_t id;
	const char *raft_address;    /* "" if unknown */
	const char *client_address;  /* "" if not configured */
	int reachable;               /* the answering node heard from it recently (itself: 1) */
	uint64_t match_index;        /* the leader's view of its log; 0 if the answering node is not leader */
};

struct sluice_cluster_status {
	uint32_t node_id;            /* the answering node */
	uint32_t leader_id;          /* 0: unknown */
	const char *role;            /* "leader", "follower", "candidate", "precandidate"; "single" without a cluster */
	uint64_t term, first_index, last_index, commit_index, applied_index;
	const struct sluice_cluster_node *nodes;
	size_t nodes_n;
};

enum sluice_start { SLUICE_EARLIEST = 0, SLUICE_LATEST = 1, SLUICE_OFFSET = 2, SLUICE_TIMESTAMP = 3 };

struct sluice_sub_opts {
	const char *topic;
	const uint32_t *partitions; /* NULL: all */
	size_t partitions_n;
	enum sluice_start start;
	uint64_t offset;
	int64_t timestamp_ms;
	const char *group;          /* NULL: none */
	uint32_t credit;            /* window of messages; 0: 1000. Refilled automatically as callbacks return. */
};

typedef void (*sluice_ack_cb)(void *arg, int err, const char *errmsg, uint32_t partition, uint64_t offset,
			      int64_t timestamp_ms, int duplicate);
typedef void (*sluice_done_cb)(void *arg, int err, const char *errmsg);
typedef void (*sluice_topic_cb)(void *arg, int err, const char *errmsg, const struct sluice_topic_info *ti);
typedef void (*sluice_topics_cb)(void *arg, int err, const char *errmsg, const struct sluice_topic_info *tis, size_t n);
/* Called per delivered message; err != 0 once if the subscription ends with an error. */
typedef void (*sluice_msg_cb)(void *arg, int err, const char *errmsg, const struct sluice_msg *m);
typedef void (*sluice_fetch_cb)(void *arg, int err, const char *errmsg, const struct sluice_msg *msgs, size_t n,
				uint64_t first_offset, uint64_t end_offset);
typedef void (*sluice_group_cb)(void *arg, int err, const char *errmsg, const struct sluice_group_partition *ps, size_t n);
typedef void (*sluice_status_cb)(void *arg, int err, const char *errmsg, const struct sluice_node_status *st);
typedef void (*sluice_cluster_cb)(void *arg, int err, const char *errmsg, const struct sluice_cluster_status *st);

/* Async API. The first client sets SIGPIPE to be ignored when the process
 * left it at its default (which would end the process on a write to a
 * connection the server closed); a program with its own handler keeps it. */
int sluice_client_new(struct event_base *base, const struct sluice_client_opts *opts, struct sluice_client **out);
/* Cancels outstanding requests (their callbacks get SLUICE_ECLOSED), and
 * publishes still waiting in an open batch, which are not sent. To have
 * them acknowledged first, call sluice_client_flush and run the event loop
 * until sluice_client_inflight is 0. */
void sluice_client_free(struct sluice_client *c);
/* Requests not yet answered; each publish counts one, also inside a batch
 * (open or sent). */
size_t sluice_client_inflight(const struct sluice_client *c);
/* Send every open batch now instead of at its linger_ms (e.g. at the end of
 * input). Their acks come as usual. */
void sluice_client_flush(struct sluice_client *c);
/* Change how long an outage may last before outstanding requests fail (e.g.
 * fail fast on the first connect, then ride out a broker restart). */
void sluice_client_set_retry_max(struct sluice_client *c, uint32_t retry_max_ms);
/* Why the server refused this client's key or token last (NULL: it did not). */
const char *sluice_client_auth_error(const struct sluice_client *c);

int sluice_topic_create(struct sluice_client *c, const char *name, uint32_t partitions, int64_t retention_ms,
			int64_t retention_bytes, sluice_done_cb cb, void *arg);
int sluice_topic_delete(struct sluice_client *c, const char *name, sluice_done_cb cb, void *arg);
int sluice_topic_list(struct sluice_client *c, sluice_topics_cb cb, void *arg);
int sluice_topic_describe(struct sluice_client *c, const char *name, sluice_topic_cb cb, void *arg);
int sluice_publish(struct sluice_client *c, const struct sluice_pub *p, sluice_ack_cb cb, void *arg);
/* *sub_out identifies the subscription for sluice_unsubscribe. */
int sluice_subscribe(struct sluice_client *c, const struct sluice_sub_opts *o, sluice_msg_cb cb, void *arg,
		     uint64_t *sub_out);
int sluice_unsubscribe(struct sluice_client *c, uint64_t sub);
int sluice_commit(struct sluice_client *c, const char *group, const char *topic, uint32_t partition,
		  uint64_t offset, sluice_done_cb cb, void *arg);
int sluice_fetch(struct sluice_client *c, const char *topic, uint32_t partition, uint64_t offset,
		 uint32_t max_messages, uint32_t wait_ms, sluice_fetch_cb cb, void *arg);
int sluice_group_describe(struct sluice_client *c, const char *group, sluice_group_cb cb, void *arg);
int sluice_node_status(struct sluice_client *c, sluice_status_cb cb, void *arg);
int sluice_cluster_status(struct sluice_client *c, sluice_cluster_cb cb, void *arg);
/* Ask the cluster to hand leadership to node `to`; answered once the request
 * reached the leader (poll sluice_cluster_status to see it happen). */
int sluice_cluster_transfer_leader(struct sluice_client *c, uint32_t to, sluice_done_cb cb, void *arg);
/* Inside a sluice_ack_cb only: the raft term and log index of the entry the
 * acknowledged message was committed in (0, 0 on a single node); for a
 * batched message, those of its batch. */
void sluice_ack_position(const struct sluice_client *c, uint64_t *term, uint64_t *log_index);

/* ---------- durable consumers (docs/consumers.md) ---------- */

enum sluice_ack_kind { SLUICE_ACK = 0, SLUICE_NACK = 1, SLUICE_IN_PROGRESS = 2 };

struct sluice_consumer_cfg {
	const char *topic;
	int shared;                  /* 0: ordered per partition (one in flight) */
	uint32_t max_in_flight;      /* shared: per partition; 0: 1000 */
	uint32_t max_deliveries;     /* then dead-lettered; 0: 10 */
	int never_dead_letter;       /* 1: redeliver forever */
	uint32_t ack_timeout_ms;     /* 0: 30000 */
	const uint32_t *schedule_ms; /* nack delays per attempt (last repeats); NULL: 0, 1000, 5000, 30000 */
	size_t schedule_n;           /* at most 16 */
	const char *dead_letter_topic; /* NULL: <topic>.dlq */
	enum sluice_start start;     /* where a new consumer starts */
	uint64_t offset;
	int64_t timestamp_ms;
	const char *webhook;         /* a webhook's settings as JSON (docs/webhooks.md); NULL or "": not a
	                              * webhook. Described consumers carry it without the secrets. */
};

struct sluice_consumer_partition {
	uint32_t partition;
	uint64_t ack_floor, next_offset;
	uint32_t in_flight;
	uint64_t end_offset, lag, delivered, redelivered, acked, dead_lettered;
	const char *last_error;      /* "" if none */
	int64_t next_due_ms;         /* earliest ack deadline or retry time in flight; 0: none */
};

struct sluice_consumer_info {
	const char *name;
	struct sluice_consumer_cfg cfg; /* with the server's defaults filled in */
	int64_t created_ms;
	const struct sluice_consumer_partition *parts;
	size_t parts_n;
};

struct sluice_pulled {
	struct sluice_msg msg;
	uint32_t attempt;            /* 1 for the first delivery */
};

struct sluice_ack_item {
	uint32_t partition;
	uint64_t offset;
	enum sluice_ack_kind kind;
	int64_t delay_ms;            /* SLUICE_NACK: < 0 for the consumer's schedule */
	const char *error;           /* SLUICE_NACK: why, or NULL */
};

/* n is 1 for describe, the count for list. */
typedef void (*sluice_consumer_cb)(void *arg, int err, const char *errmsg, const struct sluice_consumer_info *ci,
				   size_t n);
typedef void (*sluice_pull_cb)(void *arg, int err, const char *errmsg, const struct sluice_pulled *msgs, size_t n);

int sluice_consumer_create(struct sluice_client *c, const char *name, const struct sluice_consumer_cfg *cfg,
			   sluice_done_cb cb, void *arg);

/* Security (docs/security.md): principals, the token signing key, tokens, the audit trail.
 * Each needs the cluster permission. */
struct sluice_principal {
	const char *name;
	const char *const *public_keys;  /* "sluice-ed25519:..." */
	size_t public_keys_n;
	const char *const *permissions;  /* "publish:orders.*", ... */
	size_t permissions_n;
	int64_t created_ms;
	const char *created_by;
};
struct sluice_audit_entry {
	uint64_t seq;
	int64_t timestamp_ms;
	const char *principal, *action, *detail;
};
typedef void (*sluice_principals_cb)(void *arg, int err, const char *errmsg, const struct sluice_principal *p,
				     size_t n);
typedef void (*sluice_audit_cb)(void *arg, int err, const char *errmsg, const struct sluice_audit_entry *e, size_t n);
typedef void (*sluice_token_cb)(void *arg, int err, const char *errmsg, const char *token, int64_t expires_ms);
/* Add p's keys and permissions to the principal p->name (made if missing); remove: take them away. */
int sluice_principal_put(struct sluice_client *c, const struct sluice_principal *p, int remove, sluice_done_cb cb,
			 void *arg);
int sluice_principal_remove(struct sluice_client *c, const char *name, sluice_done_cb cb, void *arg);
int sluice_principal_list(struct sluice_client *c, sluice_principals_cb cb, void *arg);
/* Make the cluster's token signing key (once). */
int sluice_auth_init(struct sluice_client *c, sluice_done_cb cb, void *arg);
/* A token for principal, valid ttl_s seconds; perms (n > 0) narrow what it allows. */
int sluice_token_issue(struct sluice_client *c, const char *principal, uint32_t ttl_s, const char *const *perms,
		       size_t n, sluice_token_cb cb, void *arg);
/* Audit entries after sequence `after`, at most max (0: 100). */
int sluice_audit_list(struct sluice_client *c, uint64_t after, uint32_t max, sluice_audit_cb cb, void *arg);
int sluice_consumer_delete(struct sluice_client *c, const char *name, sluice_done_cb cb, void *arg);
int sluice_consumer_list(struct sluice_client *c, sluice_consumer_cb cb, void *arg);
int sluice_consumer_describe(struct sluice_client *c, const char *name, sluice_consumer_cb cb, void *arg);
/* Up to max messages due now (new, or redeliveries), waiting up to wait_ms
 * (at most 20000) while none is. Each must be acknowledged with sluice_ack. */
int sluice_pull(struct sluice_client *c, const char *consumer, uint32_t max, uint32_t wait_ms, sluice_pull_cb cb,
		void *arg);
/* Acks, nacks and in-progress marks (1 .. 1000 items), applied together;
 * cb once they are durable. */
int sluice_ack(struct sluice_client *c, const char *consumer, const struct sluice_ack_item *items, size_t n,
	       sluice_done_cb cb, void *arg);
/* Change a webhook's settings: webhook_json is a JSON object merged into
 * them (a key replaces, null removes; "rotate_secret": "whsec_..." makes a
 * new signing secret and keeps the previous one). */
int sluice_webhook_update(struct sluice_client *c, const char *name, const char *webhook_json, sluice_done_cb cb,
			  void *arg);
/* Start a consumer again from start/offset/timestamp_ms on every partition;
 * what was in flight is dropped (replay, or skip ahead). */
int sluice_consumer_seek(struct sluice_client *c, const char *name, enum sluice_start start, uint64_t offset,
			 int64_t timestamp_ms, sluice_done_cb cb, void *arg);

/* Blocking API: one connection, one request at a time. errmsg (if non-NULL,
 * errlen bytes) receives the server's message on error. */
struct sluice_sync;
int sluice_sync_open(const struct sluice_client_opts *opts, struct sluice_sync **out);
void sluice_sync_close(struct sluice_sync *s);
struct sluice_client *sluice_sync_client(struct sluice_sync *s);
struct event_base *sluice_sync_base(struct sluice_sync *s);
int sluice_sync_topic_create(struct sluice_sync *s, const char *name, uint32_t partitions, int64_t retention_ms,
			     int64_t retention_bytes, char *errmsg, size_t errlen);
int sluice_sync_topic_delete(struct sluice_sync *s, const char *name, char *errmsg, size_t errlen);
/* Sends at once, also with linger_ms (nothing else could join its batch). */
int sluice_sync_publish(struct sluice_sync *s, const struct sluice_pub *p, uint32_t *partition, uint64_t *offset,
			char *errmsg, size_t errlen);
/* fn is called with the status before this returns (pointers valid during fn). */
int sluice_sync_cluster_status(struct sluice_sync *s, void (*fn)(void *arg, const struct sluice_cluster_status *st),
			       void *arg, char *errmsg, size_t errlen);
/* Fetch copies nothing: fn is called per message before this returns. */
int sluice_sync_fetch(struct sluice_sync *s, const char *topic, uint32_t partition, uint64_t offset,
		      uint32_t max_messages, uint32_t wait_ms,
		      void (*fn)(void *arg, const struct sluice_msg *m), void *arg,
		      uint64_t *end_offset, char *errmsg, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif
