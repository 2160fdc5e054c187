/*
 * asyncapi.h: the AsyncAPI 3.0.0 document of a node, generated from its
 * live topics. One generator for both places that print it: the frontend's
 * GET /v1/asyncapi.json (fe_asyncapi.c) and `sluice asyncapi`, which opens
 * the node's store read-only itself and so works without the HTTP server.
 */
#ifndef SLUICE_ASYNCAPI_H
#define SLUICE_ASYNCAPI_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct config;
struct store;

struct asyncapi_topic {
	const char *name;
	uint32_t partitions;
	int64_t retention_ms;
	int64_t retention_bytes;
};

/* The document for these servers (from cfg: node id, [listen] native and
 * http) and topics, in this order. A new reference; NULL if out of memory. */
json_t *asyncapi_build(const struct config *cfg, const struct asyncapi_topic *topics, size_t n);

/* Read every topic in one read-only transaction of st and build the
 * document: SL_OK with *out (the caller decrefs), or an sl_err. */
int asyncapi_from_store(const struct config *cfg, struct store *st, json_t **out);

/* The document as indented JSON text ending in a newline (free() it), or NULL. */
char *asyncapi_dumps(const json_t *doc);

#endif
