/*
 * metrics.h: node-wide metrics kept in the shared segment (shm.h), so every
 * process of a node contributes to one set of figures that a frontend
 * renders for Prometheus (broker/frontend/fe_metrics.c).
 *
 * Who writes what (each block has one writer process, except the per-slot
 * delivery counters, which every frontend adds to):
 * - per commit-table slot (struct shm_slot_stats): the logwriter adds the
 *   messages and bytes it stored once their transaction is committed, and
 *   resets them when the slot passes to another topic; frontends add what
 *   they delivered (subscriptions, fetch), one add per Delivery frame;
 * - per frontend (struct shm_fe_metrics, inside struct shm_frontend):
 *   connections per protocol, the publish->ack latency histogram and the
 *   HTTP request counts by route and status;
 * - the logwriter (struct shm_lw_metrics, in the header): the group-commit
 *   latency histogram (LMDB commit including fdatasync).
 *
 * Every field is read and written with the shm_stat_* accessors (relaxed
 * atomics): they are counters, and a scrape that sees one a moment older
 * than another is fine. A histogram keeps one count per bucket (not
 * cumulative) and the sum; its count is the total of its buckets, so a
 * rendered `_count` always equals its `+Inf` bucket.
 */
#ifndef SLUICE_METRICS_H
#define SLUICE_METRICS_H

#include <stdint.h>

/* Finite upper bounds of every latency histogram, in nanoseconds (100 us to
 * 10 s); one more bucket counts what is above the last bound (+Inf). */
#define METRICS_BUCKETS 16
extern const uint64_t metrics_bucket_ns[METRICS_BUCKETS];

struct shm_hist {
	uint64_t bucket[METRICS_BUCKETS + 1];
	uint64_t sum_ns;
};

/* Add one observation of ns nanoseconds (two relaxed atomic adds). */
void metrics_hist_observe(struct shm_hist *h, uint64_t ns);

/* Traffic of one commit-table slot (one partition of one topic). */
struct shm_slot_stats {
	uint64_t published_msgs;  /* logwriter: stored in this node's log */
	uint64_t published_bytes; /* key + headers + payload */
	uint64_t delivered_msgs;  /* frontends: sent to subscribers and fetches */
	uint64_t delivered_bytes;
};

/* Client protocols counted per frontend. */
enum metrics_proto { METRICS_PROTO_NATIVE, METRICS_PROTO_HTTP, METRICS_PROTO_SSE, METRICS_PROTO_WS, METRICS_PROTOS };

/* Name of a protocol as a label value ("native", "http", "sse", "ws"). */
const char *metrics_proto_name(enum metrics_proto p);

/* HTTP requests by (route pattern, status): a table per frontend, written
 * by that frontend only. An entry is filled, then `used` is stored with
 * release; a reader loads `used` with acquire before reading route and
 * status, which never change afterwards. Pairs past the table are counted
 * in http_untracked. */
#define METRICS_HTTP_ENTRIES_MAX 96
#define METRICS_ROUTE_BYTES 56

struct shm_http_count {
	uint32_t used;
	uint32_t status;
	char route[METRICS_ROUTE_BYTES];
	uint64_t count;
};

struct shm_fe_metrics {
	uint64_t connections[METRICS_PROTOS]; /* open now (a gauge; reset when the frontend starts) */
	uint64_t accepted[METRICS_PROTOS];    /* opened since the node started */
	struct shm_hist publish_ack;          /* ring submit -> ack of successful publishes */
	uint64_t http_untracked;
	struct shm_http_count http[METRICS_HTTP_ENTRIES_MAX];
};

struct shm_lw_metrics {
	struct shm_hist commit;               /* group-commit transaction commit (+ fdatasync) */
};

#endif
