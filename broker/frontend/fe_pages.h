/*
 * fe_pages.h: what the frontend serves beside the protocols, as functions
 * the HTTP router calls: the Prometheus metrics page (fe_metrics.c), the
 * AsyncAPI document (fe_asyncapi.c, built by asyncapi.h) and the web
 * console's files (fe_console.c, embedded in the binary at build time),
 * plus the small counting API through which the frontend's connection
 * and request paths feed the node's metrics (common/metrics.h).
 *
 * Renderers append to `out` and return SL_OK, or an sl_err with nothing
 * useful appended (answer 500). They open at most one short read-only
 * transaction and never block.
 */
#ifndef SLUICE_FE_PAGES_H
#define SLUICE_FE_PAGES_H

#include <stddef.h>
#include <stdint.h>

#include "metrics.h"

struct fe;
struct evbuffer;
struct store_topic;

/* ---------- metrics (fe_metrics.c) ---------- */

/* The frontend (re)started: its open-connection gauges go back to 0. */
void fe_metrics_start(struct fe *fe);
/* A connection of protocol p opened (delta 1) or closed (delta -1). */
void fe_metrics_conn(struct fe *fe, enum metrics_proto p, int delta);
/* One HTTP request answered: route is the route's pattern (for example
 * "/v1/topics/{topic}/messages", never the raw path, so the label set stays
 * bounded), status the HTTP status sent. */
void fe_metrics_http(struct fe *fe, const char *route, int status);
/* A publish (or a batch) was acknowledged: observe submit -> ack latency. */
void fe_metrics_publish_acked(struct fe *fe, uint64_t submitted_ns);
/* msgs messages of data_bytes (key + headers + payload) of partition p of
 * tp were sent to a reader (one call per Delivery or fetch answer). */
void fe_metrics_delivered(struct fe *fe, const struct store_topic *tp, uint32_t p, size_t msgs, uint64_t data_bytes);
/* The whole node's metrics in the Prometheus text format 0.0.4
 * (Content-Type: text/plain; version=0.0.4; charset=utf-8). */
int fe_metrics_render(struct fe *fe, struct evbuffer *out);
#define FE_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* ---------- AsyncAPI (fe_asyncapi.c) ---------- */

/* The AsyncAPI 3.0.0 document of this node's live topics, as JSON
 * (Content-Type: application/json). */
int fe_asyncapi_render(struct fe *fe, struct evbuffer *out);

/* ---------- web console (fe_console.c) ---------- */

struct fe_asset {
	const char *path;          /* request path, e.g. "/" or "/console.js" */
	const char *content_type;
	const unsigned char *bytes;
	size_t len;
};

/* The embedded console file served at path (query string excluded), or NULL. */
const struct fe_asset *fe_asset_find(const char *path);

#endif
