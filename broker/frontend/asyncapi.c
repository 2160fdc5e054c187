/*
 * asyncapi.c: the node's AsyncAPI 3.0.0 document (asyncapi.h).
 *
 * Shape: five servers (native protocol; HTTP and Server-Sent Events on
 * [listen] http with pathname /v1/topics; WebSocket at /v1/ws and GraphQL
 * over WebSocket at /v1/graphql), a `graphql` channel (added first, so a
 * topic named graphql gets graphql-2), one channel per topic
 * whose address is the topic name as a URL path segment (percent-encoded,
 * so a brace in a name is never read as a channel parameter), one message
 * per channel (headers, key, payload, and the HTTP headers that carry them
 * in an http message binding), and per topic a `send` (publish) and a
 * `receive` (subscribe, fetch, SSE) operation. AsyncAPI has no SSE
 * binding: the receive operation's http binding describes the GET, and an
 * `x-sse` extension the event stream.
 *
 * Channel and operation ids must match ^[A-Za-z0-9_-]+$ while topic names
 * may hold any byte: ids are the name with other bytes turned into '_',
 * suffixed -2, -3, ... when two names map to the same id.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asyncapi.h"
#include "config.h"
#include "err.h"
#include "store.h"

#define ASYNCAPI_TOPICS_MAX 65536
#define HTTP_BINDING_VERSION "0.3.0"

/* name percent-encoded as one URL path segment (RFC 3986 unreserved kept). */
static void path_segment(const char *name, char *out, size_t cap)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (const unsigned char *p = (const unsigned char *)name; *p && o + 4 < cap; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' ||
		    *p == '.' || *p == '_' || *p == '~') {
			out[o++] = (char)*p;
		} else {
			out[o++] = '%';
			out[o++] = hex[*p >> 4];
			out[o++] = hex[*p & 15];
		}
	}
	out[o] = 0;
}

/* A channel id for name that no earlier channel of doc uses. */
static void channel_id(const json_t *channels, const char *name, char *out, size_t cap)
{
	char base[256];
	size_t o = 0;

	for (const char *p = name; *p && o + 1 < sizeof(base); p++) {
		char c = *p;
		int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
		base[o++] = ok ? c : '_';
	}
	base[o] = 0;
	snprintf(out, cap, "%s", base);
	for (unsigned k = 2; json_object_get(channels, out); k++)
		snprintf(out, cap, "%.240s-%u", base, k);
}

static json_t *ref(const char *a, const char *b, const char *c)
{
	char r[600];

	snprintf(r, sizeof(r), "#/%s/%s%s%s", a, b, c ? "/" : "", c ? c : "");
	return json_pack("{s:s}", "$ref", r);
}

static json_t *servers_build(const struct config *cfg)
{
	json_t *sv = json_pack(
	    "{s:{s:s,s:s,s:s,s:s},s:{s:s,s:s,s:s,s:s},s:{s:s,s:s,s:s,s:s,s:{s:s,s:s,s:s}}}",
	    "native", "host", cfg->listen_native, "protocol", "sluice", "protocolVersion", "1", "description",
	    "sluice native protocol: TCP frames [u32 big-endian length][protobuf Frame] (docs/protocol.md); "
	    "libsluice and the sluice CLI speak it. A channel's topic is its x-sluice-topic.",
	    "http", "host", cfg->listen_http, "protocol", "http", "pathname", "/v1/topics", "description",
	    "HTTP/1.1 REST (docs/http.md): POST {address}/messages publishes, GET {address}/messages reads.",
	    "sse", "host", cfg->listen_http, "protocol", "http", "pathname", "/v1/topics", "description",
	    "Server-Sent Events over HTTP/1.1: GET {address}/events (text/event-stream).", "x-sse", "path",
	    "/v1/topics/{address}/events", "contentType", "text/event-stream", "resume",
	    "the id of every event resumes the stream after it (Last-Event-ID header or lastEventId query)");

	if (sv) {
		json_object_set_new(sv, "ws",
		                    json_pack("{s:s,s:s,s:s,s:s,s:[s,s]}", "host", cfg->listen_http, "protocol", "ws",
		                              "pathname", "/v1/ws", "description",
		                              "WebSocket (docs/websocket.md): publish with acks and subscribe with credit on "
		                              "one connection; subprotocol sluice.v1.json (JSON ops naming the topic) or "
		                              "sluice.v1.proto (native Frames); the browser client is GET /v1/sluice.js.",
		                              "x-subprotocols", "sluice.v1.json", "sluice.v1.proto"));
		json_object_set_new(sv, "graphql",
		                    json_pack("{s:s,s:s,s:s,s:s,s:[s]}", "host", cfg->listen_http, "protocol", "ws",
		                              "pathname", "/v1/graphql", "description",
		                              "GraphQL over WebSocket, subprotocol graphql-transport-ws (docs/graphql.md); "
		                              "queries and mutations also over HTTP POST /v1/graphql, the schema on GET.",
		                              "x-subprotocols", "graphql-transport-ws"));
	}
	return sv;
}

/* The GraphQL endpoint: one channel whose messages are graphql-transport-ws
 * `next` payloads of subscription { messages(...) { ... } }. */
static int graphql_add(json_t *channels, json_t *ops)
{
	json_t *ch = json_pack(
	    "{s:n,s:s,s:[o],s:{s:{s:s,s:s,s:s,s:{s:s,s:{s:{s:s}}}}}}", "address", "description",
	    "GraphQL subscriptions over graphql-transport-ws: subscription { messages(topic, from, partitions, group) "
	    "{ topic partition offset timestamp key headers { name value } payload json } } delivers only the "
	    "selected fields of each message of the topic as it commits.",
	    "servers", ref("servers", "graphql", NULL), "messages", "next", "name", "next", "title",
	    "graphql-transport-ws next", "contentType", "application/json", "payload", "type", "object",
	    "properties", "data", "type", "object");
	json_t *op = ch ? json_pack("{s:s,s:o,s:s,s:[o]}", "action", "receive", "channel",
	                            ref("channels", "graphql", NULL), "summary",
	                            "Subscribe to a topic's messages with a GraphQL field selection", "messages",
	                            ref("channels", "graphql", "messages/next"))
	                : NULL;

	if (!ch || !op || json_object_set_new(channels, "graphql", ch) || json_object_set_new(ops, "graphql_messages", op)) {
		json_decref(op);
		return SL_ENOMEM;
	}
	return SL_OK;
}

static json_t *message_build(const char *name)
{
	char title[300];

	snprintf(title, sizeof(title), "Message of %.250s", name);
	return json_pack(
	    "{s:s,s:s,s:{s:s,s:s,s:{s:s}},s:{s:s},s:{s:s,s:s},s:{s:{s:{s:s,s:{s:{s:s},s:{s:s},s:{s:s},s:{s:s}}},s:s}}}",
	    "title", title, "contentType", "application/octet-stream", "headers", "type", "object", "description",
	    "Message headers, name to value. Over HTTP a publish sets them with Sluice-Header-<name> and its "
	    "Content-Type is kept as content-type.",
	    "additionalProperties", "type", "string", "payload", "description",
	    "The message body: the bytes as published (over SSE in format=json a JSON envelope {partition, offset, "
	    "timestamp, key, headers, payload}).",
	    "x-sluice-key", "type", "string", "description",
	    "Optional key: messages with one key go to one partition (Sluice-Key over HTTP).", "bindings", "http",
	    "headers", "type", "object", "properties", "Content-Type", "type", "string", "Sluice-Key", "type", "string",
	    "Sluice-Partition", "type", "string", "Idempotency-Key", "type", "string", "bindingVersion",
	    HTTP_BINDING_VERSION);
}

static json_t *channel_build(const struct asyncapi_topic *t, const char *address)
{
	char desc[512];
	json_t *ch;

	snprintf(desc, sizeof(desc), "Topic %.250s: %u partition%s, retention %lld ms (0: forever), %lld bytes per partition (0: unlimited).",
	         t->name, t->partitions, t->partitions == 1 ? "" : "s", (long long)t->retention_ms,
	         (long long)t->retention_bytes);
	ch = json_pack("{s:s,s:s,s:{s:o},s:I}", "address", address, "description", desc, "messages", "message",
	               message_build(t->name), "x-sluice-partitions", (json_int_t)t->partitions);
	/* the exact name for native clients (left out if it is not UTF-8: JSON cannot carry it) */
	if (ch)
		json_object_set_new(ch, "x-sluice-topic", json_string(t->name));
	return ch;
}


static json_t *query_schema(int sse)
{
	json_t *props = json_pack(
	    "{s:{s:s,s:s},s:{s:s,s:i},s:{s:s,s:s}}", "from", "type", "string", "description",
	    "earliest, latest, an offset, or @UNIX_MS", "partition", "type", "integer", "minimum", 0, "group", "type",
	    "string", "description", "start at this consumer group's committed offsets");

	if (sse) {
		json_object_set_new(props, "format", json_pack("{s:s,s:[s,s]}", "type", "string", "enum", "raw", "json"));
		json_object_set_new(props, "lastEventId",
		                    json_pack("{s:s,s:s}", "type", "string", "description",
		                              "resume after this event id (PARTITION:NEXT_OFFSET,...)"));
	} else {
		json_object_set_new(props, "max", json_pack("{s:s,s:i,s:i}", "type", "integer", "minimum", 1, "maximum", 10000));
		json_object_set_new(props, "wait_ms",
		                    json_pack("{s:s,s:i,s:i}", "type", "integer", "minimum", 0, "maximum", 60000));
	}
	return json_pack("{s:s,s:o}", "type", "object", "properties", props);
}

/* The send (publish) and receive (subscribe) operations of one channel. */
static int operations_add(json_t *ops, const char *id, const char *name, const char *address)
{
	char key[300], path[900], summary[300];
	json_t *send, *recv;

	snprintf(path, sizeof(path), "/v1/topics/%s/messages", address);
	snprintf(summary, sizeof(summary), "Publish a message to %.250s", name);
	send = json_pack("{s:s,s:o,s:s,s:s,s:[o],s:{s:{s:s,s:s}},s:{s:s,s:i}}", "action", "send", "channel",
	                 ref("channels", id, NULL), "summary", summary, "description",
	                 "Native: Publish or PublishBatch, acknowledged with partition and offset once committed on a "
	                 "majority. HTTP: POST, answered 201 {topic, partition, offset, term, log_index}.",
	                 "messages", ref("channels", id, "messages/message"), "bindings", "http", "method", "POST",
	                 "bindingVersion", HTTP_BINDING_VERSION, "x-sluice-http", "path", path, "status", 201);
	snprintf(key, sizeof(key), "%s_publish", id);
	if (!send || json_object_set_new(ops, key, send))
		return SL_ENOMEM;
	snprintf(summary, sizeof(summary), "Receive the messages of %.250s as they commit", name);
	recv = json_pack("{s:s,s:o,s:s,s:s,s:[o],s:{s:{s:s,s:o,s:s},s:{s:s,s:s,s:o,s:s,s:s}}}", "action", "receive",
	                 "channel", ref("channels", id, NULL), "summary", summary, "description",
	                 "Native: Subscribe (pushed with credit) or Fetch. HTTP: GET {address}/messages (a page, "
	                 "long-polling with wait_ms). SSE: GET {address}/events (x-sse).",
	                 "messages", ref("channels", id, "messages/message"), "bindings", "http", "method", "GET",
	                 "query", query_schema(0), "bindingVersion", HTTP_BINDING_VERSION, "x-sse", "path",
	                 (snprintf(path, sizeof(path), "/v1/topics/%s/events", address), path), "contentType",
	                 "text/event-stream", "query", query_schema(1), "event", name, "id",
	                 "PARTITION:NEXT_OFFSET pairs, comma-separated: the position of every partition after the event");
	snprintf(key, sizeof(key), "%s_subscribe", id);
	if (!recv || json_object_set_new(ops, key, recv))
		return SL_ENOMEM;
	return SL_OK;
}

json_t *asyncapi_build(const struct config *cfg, const struct asyncapi_topic *topics, size_t n)
{
	char title[64];
	json_t *doc, *channels = json_object(), *ops = json_object();

	snprintf(title, sizeof(title), "sluice node %u", cfg->node_id);
	doc = json_pack("{s:s,s:{s:s,s:s,s:s},s:s,s:o}", "asyncapi", "3.0.0", "info", "title", title, "version",
	                SLUICE_VERSION, "description",
	                "Topics of a sluice broker: a persistent, replicated log. Every message published to a "
	                "channel is stored at an offset of one of its partitions and delivered to every receiver.",
	                "defaultContentType", "application/octet-stream", "servers", servers_build(cfg));
	if (!doc || !channels || !ops || graphql_add(channels, ops) != SL_OK)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		char id[260], address[800];
		json_t *ch;
		path_segment(topics[i].name, address, sizeof(address));
		channel_id(channels, topics[i].name, id, sizeof(id));
		ch = channel_build(&topics[i], address);
		if (!ch || json_object_set_new(channels, id, ch) || operations_add(ops, id, topics[i].name, address))
			goto fail;
	}
	if (json_object_set_new(doc, "channels", channels) || json_object_set_new(doc, "operations", ops))
		goto fail_doc;
	return doc;
fail:
	json_decref(channels);
	json_decref(ops);
fail_doc:
	json_decref(doc);
	return NULL;
}

int asyncapi_from_store(const struct config *cfg, struct store *st, json_t **out)
{
	struct store_topic *tv = NULL;
	struct asyncapi_topic *ts = NULL;
	struct store_txn *t = NULL;
	size_t n = 0;
	int rc = store_txn_begin(st, 0, &t);

	if (rc == SL_OK)
		rc = store_topic_list(t, ASYNCAPI_TOPICS_MAX, &tv, &n);
	if (t)
		store_txn_abort(t); /* the list is a copy: nothing refers to the txn after this */
	if (rc == SL_OK && !(ts = calloc(n + 1, sizeof(*ts))))
		rc = SL_ENOMEM;
	for (size_t i = 0; rc == SL_OK && i < n; i++)
		ts[i] = (struct asyncapi_topic){tv[i].name, tv[i].partitions, tv[i].retention_ms, tv[i].retention_bytes};
	if (rc == SL_OK && !(*out = asyncapi_build(cfg, ts, n)))
		rc = SL_ENOMEM;
	free(ts);
	free(tv);
	return rc;
}

char *asyncapi_dumps(const json_t *doc)
{
	char *s = json_dumps(doc, JSON_INDENT(2));
	size_t n = s ? strlen(s) : 0;
	char *r = s ? realloc(s, n + 2) : NULL;

	if (!r) {
		free(s);
		return NULL;
	}
	r[n] = '\n';
	r[n + 1] = 0;
	return r;
}
