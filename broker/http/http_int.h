/*
 * http_int.h: the HTTP/1.1 front door's private state, shared by its files:
 *
 *   http_server.c  connections: libhttp-parser on bufferevents, limits,
 *                  timeouts, answers in request order, closing
 *   http_msg.c     pure pieces: percent-decoding, UTF-8, query strings,
 *                  status texts, problem+json, response assembly
 *   http_route.c   the route table and the handlers that turn a request
 *                  into a native request frame (or answer it at once)
 *   http_answer.c  native answers (acks, results, errors) into responses
 *   http_pub.c     publish bodies (single, NDJSON), Idempotency-Key and
 *                  202 operations (ids and polling)
 *   http_sse.c     Server-Sent Events on top of a native subscription
 *   http_commit.c  consumer group commits: one, or an array of them
 *   http_ndjson.c  NDJSON publish bodies into PublishBatch records
 *   http_codec.c   operation ids, SSE ids, group commit bodies (pure, fuzzed)
 *   http_consumer.c  durable consumers: create, list, describe, delete,
 *                  pull, ack / nack / in_progress
 *   http_consumer_codec.c  their JSON bodies (pure, fuzzed)
 *   http_cors.c    CORS headers and preflights ([http] cors_origins)
 *   graphql/       GraphQL: the subset's parser, schema, execution, POST
 *                  /v1/graphql and the graphql-transport-ws subprotocol (gql.h)
 *   ws/            WebSocket sessions after 101 and the sluice.v1.json and
 *                  sluice.v1.proto subprotocols (ws.h)
 *
 * How it reuses the native path: an HTTP connection is a struct fe_conn
 * (fe_int.h) whose `http` is set. A request becomes a native Frame with a
 * request id of its own and goes through fe_conn_dispatch, so publishes use
 * the same ring, pending table, epochs and timeouts, and reads the same
 * fetch, describe and subscription code. fe_send hands the answer frame back
 * here (fe_http_on_frame) and it is rendered as the HTTP response of the
 * request with that id. Responses leave in request order (pipelining).
 */
#ifndef SLUICE_HTTP_INT_H
#define SLUICE_HTTP_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include <http_parser.h>

#include "fe_http.h"
#include "fe_int.h"
#include "ringmsg.h"
#include "slice.h"
#include "utf8.h"

struct evbuffer;
struct event;
struct ws_session;

#define HTTP_HEADERS_MAX 100
#define HTTP_PARAMS_MAX 3
#define HTTP_PARAM_BYTES_MAX 1024
#define HTTP_QUERY_VALUE_MAX 1024
#define HTTP_COMMITS_MAX 1024 /* commits in one POST /v1/groups/{group}/offsets */
#define HTTP_ACKS_MAX 1000    /* items in one POST /v1/consumers/{name}/ack (RM_CACK_ITEMS_MAX) */
#define HTTP_PULL_MAX 1000    /* max of GET /v1/consumers/{name}/messages (RM_PULL_MAX) */
#define HTTP_PULL_DEFAULT 100
#define HTTP_PULL_WAIT_MS_MAX 20000
#define HTTP_NACK_DELAY_MS_MAX 604800000 /* a week */

/* What the native answer to a request means. */
enum http_kind {
	HK_NONE = 0,
	HK_PUBLISH,       /* PublishAck -> 201 */
	HK_BATCH,         /* PublishBatchAck -> 201 with one result per message */
	HK_CREATE_TOPIC,  /* Ok -> 201 */
	HK_DELETE_TOPIC,  /* Ok -> 204 */
	HK_COMMITS,       /* one Ok per commit of the body -> 200 (http_commit.c) */
	HK_LIST_TOPICS,   /* TopicList */
	HK_TOPIC,         /* TopicInfo */
	HK_GROUP,         /* GroupInfo */
	HK_CLUSTER,       /* ClusterStatusResult */
	HK_FETCH,         /* FetchResult -> JSON page */
	HK_FETCH_ONE,     /* FetchResult -> one message, payload as body */
	HK_FETCH_GROUP,   /* GroupInfo -> the group's offset, then a Fetch (HK_FETCH) */
	HK_SSE,           /* Subscribed, then Deliveries */
	HK_GRAPHQL,       /* the answer to a GraphQL root field (gql_http.c) */
	HK_CONSUMER_CREATE, /* Ok -> 201 (http_consumer.c) */
	HK_CONSUMER_DELETE, /* Ok -> 204 */
	HK_CONSUMER_LIST, /* ConsumerList */
	HK_CONSUMER,      /* ConsumerInfo */
	HK_PULL,          /* PullResult -> {"messages": [...]} */
	HK_PULL_HEAD,     /* HEAD of a pull: ConsumerInfo -> the headers only, nothing taken */
	HK_ACKS,          /* Ok -> {"acked"|"nacked"|"in_progress": n} */
	HK_WEBHOOK_CREATE, /* Ok -> 201 with the secret (http_webhook.c) */
	HK_WEBHOOK_LIST,  /* ConsumerList -> the webhooks among them */
	HK_WEBHOOK,       /* ConsumerInfo -> the webhook, 404 if it is a plain consumer */
	HK_WEBHOOK_UPDATE, /* Ok -> {"name", what changed} */
};

struct http_hdr {
	uint32_t name_off, name_len;
	uint32_t val_off, val_len;
};

struct http_sse;
struct http_commits;
struct gql_req;

struct http_req {
	TAILQ_ENTRY(http_req) link;       /* h->reqs, in arrival order */
	struct fe_conn *conn;
	uint64_t id;                      /* native request id while a frame is out (0: none) */
	/* parsed request */
	unsigned method;                  /* enum http_method */
	unsigned short http_major, http_minor;
	int keep_alive;
	char *head;                       /* url, then header names and values, NUL-separated */
	size_t head_len, head_cap;
	uint32_t url_off, url_len;
	struct http_hdr hdrs[HTTP_HEADERS_MAX];
	uint32_t nhdrs;
	int last_was_value;
	uint32_t n_content_length, n_transfer_encoding;
	struct evbuffer *body;
	int complete;                     /* the whole message is parsed */
	int bad_status;                   /* a refusal decided while parsing (431, 413, 400) */
	const char *bad_detail;
	/* routing */
	const char *route;                /* route pattern, for the metrics hook */
	char *params[HTTP_PARAMS_MAX];    /* decoded path parameters */
	uint32_t nparams;
	const char *path;                 /* points into head (not decoded), up to '?' */
	size_t path_len;
	const char *query;                /* after '?', or "" */
	size_t query_len;
	/* answer */
	enum http_kind kind;
	uint32_t retry_after_s;           /* Retry-After of a 429/503 problem (0: 1 s), from Error.retry_after_ms */
	struct evbuffer *out;             /* the whole response once answered */
	struct evbuffer *rh;              /* extra response header lines being built */
	int answered;
	int status;
	int close_after;                  /* close the connection once this response is out */
	int streaming;                    /* SSE: response headers sent, events follow */
	/* per kind */
	char topic[256];
	uint32_t partition;
	uint64_t offset;
	uint32_t count;
	char group[256];
	char consumer[256];               /* durable consumer routes */
	int ack_kind;                     /* HK_ACKS: Sluice__AckKind */
	char secret[160];                 /* HK_WEBHOOK_*: a secret made here, answered once */
	const char *change;               /* HK_WEBHOOK_UPDATE: "paused", "resumed", "rotated", "replayed" */
	struct event *wait_ev;            /* Prefer: respond-async, wait=N */
	char op_id[512];                  /* the operation a 202 would name */
	int fetch_max;
	uint32_t fetch_wait_ms;
	struct http_sse *sse;
	struct http_commits *commits;     /* HK_COMMITS */
	struct gql_req *gql;              /* HK_GRAPHQL */
};

TAILQ_HEAD(http_req_list, http_req);

/* Per connection (fe_conn.http). */
struct http_conn {
	struct fe_conn *conn;
	http_parser parser;
	struct http_req *cur;             /* being parsed */
	struct http_req_list reqs;        /* parsed or being parsed, oldest first */
	uint32_t nreqs;
	uint64_t next_id;
	struct event *timer;              /* header deadline or idle timeout */
	struct event *pump_ev;            /* sends what requests could not send at once (commits) */
	int timer_mode;                   /* 0 none, 1 header deadline, 2 idle */
	int in_process;                   /* inside fe_http_process_input */
	int sse;                          /* the connection streams events: no more requests */
	int broken;                       /* a request could not be parsed: answer it, then close */
	struct http_req *held;            /* a read waiting for the writes before it */
	struct ws_session *ws;            /* after 101: the WebSocket session (ws.c) that owns the connection */
	TAILQ_ENTRY(http_conn) sse_link;  /* fe->http->sse_conns */
};

TAILQ_HEAD(http_conn_list, http_conn);

/* Per frontend (fe->http). */
struct fe_http {
	struct evconnlistener *listener;
	struct event *hb_ev;              /* SSE heartbeat */
	struct http_conn_list sse_conns;
	uint32_t nconns;                  /* HTTP connections (also counted in fe->nconns) */
	uint32_t nsse;
	uint64_t producer_id;             /* this frontend's id for 202 operations without a key */
	uint64_t sequence;
};

/* ---------- http_msg.c: pure helpers (fuzzed) ---------- */

/* Percent-decode s[0..n) into out (cap bytes, NUL-terminated). plus: '+' is
 * a space (query strings). SL_OK, SL_EMALFORMED on a bad escape or an
 * encoded NUL, SL_ETOOLARGE if it does not fit. */
int http_pct_decode(const char *s, size_t n, int plus, char *out, size_t cap, size_t *out_len);
/* Query parameter `name` of q[0..n): 1 found (decoded into out), 0 absent,
 * -1 badly encoded or longer than cap. */
int http_query_get(const char *q, size_t n, const char *name, char *out, size_t cap);
/* Walk the query: calls fn(arg, name, value) for each decoded pair; -1 on bad
 * encoding or a pair over HTTP_QUERY_VALUE_MAX, else what fn last returned. */
int http_query_each(const char *q, size_t n, int (*fn)(void *arg, const char *name, const char *value), void *arg);
const char *http_status_text(int status);
/* HTTP status and problem type slug for an sl_err. */
int http_status_for_err(int err);
const char *http_code_name(int err);
/* Parse a decimal u64 (whole string); 0 on success. */
int http_parse_u64(const char *s, uint64_t *out);
/* http_auth.c ([auth] enabled): the request's identity from its token,
 * before the route, for every route not marked open (0: go on; -1:
 * answered 401). */
int http_auth_request(struct http_req *r);
/* For routes that read the store themselves: the identity may do verb
 * (enum auth_verb; 0: any identity) on topic (0), else answered 401/403 (-1). */
int http_auth_need(struct http_req *r, int verb, const char *topic);

/* Parse Prefer: respond-async and wait=N (seconds; -1 if absent). */
void http_parse_prefer(const char *v, int *respond_async, long *wait_s);

/* ---------- requests (http_server.c) ---------- */

const char *http_req_header(const struct http_req *r, const char *name, size_t *len);
/* Append "Name: value\r\n" to the response headers being built. */
void http_add_header(struct http_req *r, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Answer r: status line, standard headers, r->rh, then body (may be NULL). */
void http_respond(struct http_req *r, int status, const char *ctype, const void *body, size_t len);
/* Answer r with a body taken from buf (moved, not copied). */
void http_respond_buf(struct http_req *r, int status, const char *ctype, struct evbuffer *buf);
/* RFC 9457 problem+json for an sl_err (status from http_status_for_err unless status != 0). */
void http_problem(struct http_req *r, int status, int err, const char *detail);
/* The problem+json object of http_problem as compact text (malloc'd; NULL if out of memory). */
char *http_problem_json(const struct http_req *r, int status, int err, const char *detail);
/* HEAD of a streaming route: the headers GET would start the stream with
 * (no Content-Length), and no body; the connection stays usable. */
void http_respond_stream_head(struct http_req *r, const char *ctype);
/* Start a streaming answer (SSE): headers now, body written by the caller into the connection. */
void http_stream_start(struct http_req *r, const char *ctype);
/* Hand a frame to the native dispatcher under a new request id; 0 or an sl_err. */
int http_dispatch(struct http_req *r, enum http_kind kind, const Sluice__Frame *f);
/* The same, for a request with several frames out: the new id is stored in
 * *id before the frame is dispatched (its answer may come at once). */
int http_dispatch_to(struct http_req *r, enum http_kind kind, const Sluice__Frame *f, uint64_t *id);
/* Run the connection's pump (http_commits_pump of its requests) after ms. */
void http_pump_later(struct fe_conn *c, uint32_t ms);
/* 1 if r is the connection's only request (nothing before or after it). */
int http_req_alone(const struct http_req *r);
/* r was answered 101 (written to the output already): free it and hand the
 * connection to the WebSocket session s. */
void http_upgraded(struct http_req *r, struct ws_session *s);
/* Close the connection now (no answer), e.g. an event stream during failover. */
void http_conn_drop(struct fe_conn *c);
/* Send finished answers in order; resume reading if the pipeline has room. */
void http_flush(struct fe_conn *c);

/* ---------- http_route.c ---------- */

/* Route a complete request: answers it or sends its native request. */
void http_route(struct http_req *r);
/* JSON helpers shared by the handlers. */
struct json_t;
void http_respond_json(struct http_req *r, int status, struct json_t *j); /* steals j */
/* Validate and copy a topic name from a decoded path parameter. */
int http_topic_param(struct http_req *r, const char *s, char *out, size_t cap);
/* The same for a group name. */
int http_group_param(struct http_req *r, const char *s, char *out, size_t cap);
/* 1 if r's body is application/json, else 0 and answered 415. */
int http_json_ctype(struct http_req *r);
/* The JSON body of r, an object (or an array when allow_array); NULL and
 * answered (415, 400) otherwise. An empty body is {} when allow_empty. */
struct json_t *http_body_json(struct http_req *r, int allow_empty, int allow_array);

/* from=earliest|latest|OFFSET|@UNIX_MS; -1 if malformed. */
int http_start_parse(const char *v, struct fe_start *st);
/* The offset a read of topic/partition starts at, in one short read txn:
 * SL_ENOTOPIC, SL_EINVAL (partition out of range), or another sl_err. */
int http_resolve_start(struct fe *fe, const char *topic, uint32_t partition, const struct fe_start *st,
                       uint64_t *off);

/* ---------- http_answer.c ---------- */

void http_answer_frame(struct http_req *r, const Sluice__Frame *f);
/* A JSON object for one stored message (payload as text, or base64). */
struct json_t *http_message_json(const Sluice__Message *m);

/* ---------- http_pub.c ---------- */

void http_on_publish(struct http_req *r);
void http_on_operation(struct http_req *r);
/* The publish answered: 201 (or 202 if its wait already ran out). */
void http_publish_answered(struct http_req *r, const Sluice__Frame *f);
/* Operation ids (base64url of producer id, sequence, space, count, created, topic). */
struct http_op {
	uint64_t producer_id, sequence;
	uint32_t space;                   /* partition, or STORE_DEDUP_SPACE_ANY */
	uint32_t count;
	int64_t created_ms;
	char topic[256];
};
int http_op_encode(const struct http_op *op, char *out, size_t cap);
int http_op_decode(const char *id, struct http_op *op);

/* ---------- http_ndjson.c ---------- */

/* An NDJSON body, given as pieces in order (an evbuffer's chains), into
 * PublishBatch records: *recs is malloc'd (the caller frees it), *count
 * the messages. On an error nothing is returned and why says which line
 * ("line N: ...", lines counted from 1, empty ones included). At most
 * 2 x the body + 4 KiB is allocated. */
int http_ndjson_records(const struct slice *parts, size_t nparts, uint8_t **recs, size_t *recs_len,
                        uint32_t *count, char *why, size_t why_cap);
/* 1 (the default): plain envelopes go through the direct scanner; 0: every
 * line through jansson (the fuzz target compares the two). */
extern int http_ndjson_use_scanner;

/* ---------- http_commit.c (the body's decoder is in http_codec.c) ---------- */

/* One commit of a POST /v1/groups/{group}/offsets body. */
struct http_commit_in {
	const char *topic;      /* owned by the decoder's json_t */
	uint32_t partition;
	uint64_t offset;
};
/* The body: one {"topic", "partition", "offset"} (*array 0) or an array of
 * 1 to HTTP_COMMITS_MAX of them (*array 1), every entry checked. SL_OK with
 * *ins (malloc'd) and *owner (json_decref it after the last use of a
 * topic), or SL_EMALFORMED (not JSON), SL_EINVAL (a bad entry: why names
 * it, "offsets[i]: ..."), SL_ENOMEM. */
struct json_t;
int http_commits_decode(const char *p, size_t n, struct json_t **owner, struct http_commit_in **ins,
                        uint32_t *count, int *array, char *why, size_t why_cap);

void http_on_commit(struct http_req *r);
/* Send the commits that are not out yet, as far as there is room. */
void http_commits_pump(struct http_req *r);
/* 1 if the answer with this id is for one of r's commits. */
int http_commits_owns(const struct http_req *r, uint64_t id);
void http_commits_frame(struct http_req *r, const Sluice__Frame *f);
void http_commits_free(struct http_commits *m);

/* ---------- http_consumer.c (the bodies' decoders are in http_consumer_codec.c) ---------- */

void http_on_consumer_post(struct http_req *r);
void http_on_consumer_put(struct http_req *r);
void http_on_consumer_list(struct http_req *r);
void http_on_consumer_get(struct http_req *r);
void http_on_consumer_delete(struct http_req *r);
void http_on_consumer_pull(struct http_req *r);
void http_on_consumer_ack(struct http_req *r);
void http_on_consumer_nack(struct http_req *r);
void http_on_consumer_in_progress(struct http_req *r);
/* http_dispatch, answering 500 if the request could not be handed over. */
void http_send_or_fail(struct http_req *r, enum http_kind kind, const Sluice__Frame *f);
/* The {name} path parameter into r->consumer; -1 and answered 400 if bad. */
int http_consumer_param(struct http_req *r);
/* DescribeConsumer of r->consumer, and ListConsumers, answered as kind. */
void http_consumer_describe(struct http_req *r, enum http_kind kind);
void http_consumer_list(struct http_req *r, enum http_kind kind);
/* The request body as one contiguous run ("" when empty). */
const char *http_body_bytes(struct http_req *r, size_t *len);
/* The native answer of a durable consumer request (HK_CONSUMER_*, HK_PULL*, HK_ACKS). */
void http_consumer_frame(struct http_req *r, const Sluice__Frame *f);

/* A create body (POST /v1/consumers, PUT /v1/consumers/{name}), checked and copied. */
struct http_consumer_in {
	char name[RM_CONSUMER_NAME_MAX + 1];
	char topic[RM_TOPIC_NAME_MAX + 1];
	char dead_letter_topic[RM_TOPIC_NAME_MAX + 1]; /* "": <topic>.dlq */
	int shared;
	int never_dead_letter;
	uint32_t max_in_flight, max_deliveries, ack_timeout_ms; /* 0: the server's default */
	uint32_t schedule_ms[RM_SCHEDULE_MAX];
	uint32_t nschedule;
	int start;                        /* Sluice__StartAt */
	uint64_t offset;
	int64_t timestamp_ms;
};
/* name: the path's name (PUT; the body may repeat it), or NULL (POST: the
 * body's "name"). SL_OK, SL_EMALFORMED (not a JSON object), SL_EINVAL (a
 * bad or unknown field: why names it). */
int http_consumer_decode(const char *p, size_t n, const char *name, struct http_consumer_in *c, char *why,
                         size_t why_cap);

/* One item of an ack, nack or in_progress body. */
struct http_ack_in {
	uint32_t partition;
	uint64_t offset;
	int64_t delay_ms;                 /* nack: >= 0 with has_delay, else -1 (the schedule) */
	int has_delay;
	char error[RM_CACK_ERROR_MAX + 1]; /* nack: why, cut to 200 bytes on a character boundary */
};
/* The body: {"messages": [items]} (delay_ms and error at the top apply to
 * every item that has none), a bare array of items, or one item object.
 * kind: Sluice__AckKind (delay_ms and error are read for NACK only). SL_OK
 * with 1..HTTP_ACKS_MAX items in *ins (malloc'd, the caller frees), or
 * SL_EMALFORMED, SL_EINVAL (why names the item: "messages[i]: ..."), SL_ENOMEM. */
int http_acks_decode(const char *p, size_t n, int kind, struct http_ack_in **ins, uint32_t *count, char *why,
                     size_t why_cap);

/* ---------- http_webhook.c, http_webhook_codec.c ---------- */

void http_on_webhook_post(struct http_req *r);
void http_on_webhook_list(struct http_req *r);
void http_on_webhook_get(struct http_req *r);
void http_on_webhook_pause(struct http_req *r);
void http_on_webhook_resume(struct http_req *r);
void http_on_webhook_rotate(struct http_req *r);
void http_on_webhook_replay(struct http_req *r);
/* The native answer of a webhook request (HK_WEBHOOK_*). */
void http_webhook_frame(struct http_req *r, const Sluice__Frame *f);
/* POST /v1/webhooks's body into the consumer's settings and the webhook's
 * (*settings: malloc'd JSON); secret: the one given, or a new one. SL_OK,
 * SL_EMALFORMED (not a JSON object), SL_EINVAL (why says what), SL_ENOMEM. */
int http_webhook_decode(const char *p, size_t n, struct http_consumer_in *c, char **settings, char *secret,
                        size_t secret_cap, char *why, size_t why_cap);

/* ---------- http_cors.c ---------- */

/* CORS headers of any response to r, appended to out (nothing when CORS is
 * off or the request's Origin is not allowed). */
void http_cors_response(struct http_req *r, struct evbuffer *out);
/* The preflight headers of an OPTIONS answer; allow: the route's methods. */
void http_cors_preflight(struct http_req *r, const char *allow);

/* ---------- http_sse.c ---------- */

void http_on_events(struct http_req *r);
void http_sse_frame(struct http_req *r, const Sluice__Frame *f);
void http_sse_free(struct http_sse *s);
void http_sse_heartbeat(struct fe *fe);
/* SSE ids: "PARTITION:NEXT_OFFSET,..." */
int http_sse_id_parse(const char *s, uint32_t *parts, uint64_t *offs, size_t max, size_t *n);

/* ---------- gql_http.c ---------- */

void gql_http_post(struct http_req *r);
void gql_http_sdl(struct http_req *r);
void gql_http_frame(struct http_req *r, const Sluice__Frame *f);

#endif
