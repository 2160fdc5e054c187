/*
 * http_answer.c: native answers rendered as HTTP responses. Each request
 * remembers what its native request was (enum http_kind); the answer frame
 * fe_send produced for it becomes JSON (or a payload body, or SSE events in
 * http_sse.c). Native errors become problem+json with the native code.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <jansson.h>

#include "err.h"
#include "http_int.h"
#include "log.h"
#include "ringmsg.h"

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Standard base64 with padding; returns a malloc'd NUL-terminated string. */
static char *base64(const uint8_t *p, size_t n)
{
	char *out = malloc((n + 2) / 3 * 4 + 1), *o = out;
	size_t i;

	if (!out)
		return NULL;
	for (i = 0; i + 2 < n; i += 3) {
		*o++ = b64[p[i] >> 2];
		*o++ = b64[(p[i] & 3) << 4 | p[i + 1] >> 4];
		*o++ = b64[(p[i + 1] & 15) << 2 | p[i + 2] >> 6];
		*o++ = b64[p[i + 2] & 63];
	}
	if (i < n) {
		*o++ = b64[p[i] >> 2];
		if (i + 1 < n) {
			*o++ = b64[(p[i] & 3) << 4 | p[i + 1] >> 4];
			*o++ = b64[(p[i + 1] & 15) << 2];
		} else {
			*o++ = b64[(p[i] & 3) << 4];
			*o++ = '=';
		}
		*o++ = '=';
	}
	*o = 0;
	return out;
}

/* Bytes as a JSON string if they are UTF-8, else as base64 with enc_name set to "base64". */
static void set_bytes(json_t *o, const char *name, const char *enc_name, const uint8_t *p, size_t n)
{
	if (utf8_valid(p, n)) {
		json_object_set_new(o, name, json_stringn(p ? (const char *)p : "", n)); /* empty bytes may have no pointer */
		return;
	}
	char *s = base64(p, n);
	json_object_set_new(o, name, s ? json_string(s) : json_null());
	json_object_set_new(o, enc_name, json_string("base64"));
	free(s);
}

json_t *http_message_json(const Sluice__Message *m)
{
	json_t *o = json_pack("{s:s,s:i,s:I,s:I}", "topic", m->topic, "partition", (int)m->partition, "offset",
	                      (json_int_t)m->offset, "timestamp", (json_int_t)m->timestamp_ms);
	json_t *h = json_object();

	if (!o || !h) {
		json_decref(o);
		json_decref(h);
		return NULL;
	}
	if (m->key.len)
		set_bytes(o, "key", "key_encoding", m->key.data, m->key.len);
	else
		json_object_set_new(o, "key", json_null());
	for (size_t i = 0; i < m->n_headers; i++) {
		const Sluice__Header *hd = m->headers[i];
		if (utf8_valid(hd->value.data, hd->value.len) && utf8_valid((uint8_t *)hd->key, strlen(hd->key)))
			json_object_set_new(h, hd->key, json_stringn(hd->value.data ? (const char *)hd->value.data : "", hd->value.len));
	}
	json_object_set_new(o, "headers", h);
	set_bytes(o, "payload", "payload_encoding", m->payload.data, m->payload.len);
	return o;
}

/* A topic as JSON: configuration and per-partition offsets and bytes. */
static json_t *topic_json(const Sluice__TopicInfo *ti)
{
	json_t *parts = json_array();
	const Sluice__TopicConfig *c = ti->config;

	for (size_t i = 0; parts && i < ti->n_partitions; i++) {
		const Sluice__PartitionInfo *p = ti->partitions[i];
		json_array_append_new(parts, json_pack("{s:i,s:I,s:I,s:I}", "partition", (int)p->partition,
		                                       "first_offset", (json_int_t)p->first_offset, "end_offset",
		                                       (json_int_t)p->end_offset, "bytes", (json_int_t)p->bytes));
	}
	return json_pack("{s:s,s:i,s:I,s:I,s:I,s:o,s:o}", "name", ti->name, "partitions", c ? (int)c->partitions : 0,
	                 "retention_ms", (json_int_t)(c ? c->retention_ms : 0), "retention_bytes",
	                 (json_int_t)(c ? c->retention_bytes : 0), "created_ms", (json_int_t)ti->created_ms,
	                 "created_by", ti->created_by && ti->created_by[0] ? json_string(ti->created_by) : json_null(),
	                 "partition_offsets", parts);
}

static void answer_topics(struct http_req *r, const Sluice__TopicList *tl)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr && i < tl->n_topics; i++)
		json_array_append_new(arr, topic_json(tl->topics[i]));
	http_respond_json(r, 200, json_pack("{s:o}", "topics", arr));
}

static void answer_group(struct http_req *r, const Sluice__GroupInfo *g)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr && i < g->n_partitions; i++) {
		const Sluice__GroupPartition *p = g->partitions[i];
		json_array_append_new(arr, json_pack("{s:s,s:i,s:I,s:I,s:I}", "topic", p->topic, "partition",
		                                     (int)p->partition, "committed", (json_int_t)p->committed_offset,
		                                     "end", (json_int_t)p->end_offset, "lag", (json_int_t)p->lag));
	}
	http_respond_json(r, 200, json_pack("{s:s,s:o}", "group", g->group, "partitions", arr));
}

static void answer_cluster(struct http_req *r, const Sluice__ClusterStatusResult *cs)
{
	json_t *nodes = json_array();

	for (size_t i = 0; nodes && i < cs->n_nodes; i++) {
		const Sluice__ClusterNode *n = cs->nodes[i];
		json_array_append_new(nodes, json_pack("{s:i,s:s,s:s,s:b,s:I}", "id", (int)n->id, "raft_address",
		                                       n->raft_address, "client_address", n->client_address,
		                                       "reachable", n->reachable, "match_index",
		                                       (json_int_t)n->match_index));
	}
	http_respond_json(r, 200,
	                  json_pack("{s:i,s:i,s:s,s:I,s:I,s:I,s:I,s:I,s:o}", "node_id", (int)cs->node_id, "leader_id",
	                            (int)cs->leader_id, "role", cs->role, "term", (json_int_t)cs->term, "first_index",
	                            (json_int_t)cs->first_index, "last_index", (json_int_t)cs->last_index,
	                            "commit_index", (json_int_t)cs->commit_index, "applied_index",
	                            (json_int_t)cs->applied_index, "nodes", nodes));
}

/* A JSON page with the cursor to continue from. */
static void answer_page(struct http_req *r, const Sluice__FetchResult *fr)
{
	json_t *arr = json_array();
	uint64_t next = r->offset < fr->first_offset ? fr->first_offset : r->offset;
	char url[1024];

	for (size_t i = 0; arr && i < fr->n_messages; i++) {
		json_array_append_new(arr, http_message_json(fr->messages[i]));
		next = fr->messages[i]->offset + 1;
	}
	snprintf(url, sizeof(url), "%.*s?partition=%u&from=%llu", (int)r->path_len, r->path, r->partition,
	         (unsigned long long)next);
	http_respond_json(r, 200,
	                  json_pack("{s:s,s:i,s:o,s:I,s:I,s:I,s:s}", "topic", r->topic, "partition", (int)r->partition,
	                            "messages", arr, "next_offset", (json_int_t)next, "first_offset",
	                            (json_int_t)fr->first_offset, "end_offset", (json_int_t)fr->end_offset, "next",
	                            url));
}

static int printable(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] < 0x20 || p[i] >= 0x7f)
			return 0;
	return 1;
}

/* A header key that can be sent as part of a field name. */
static int token(const char *k)
{
	if (!*k)
		return 0;
	for (; *k; k++)
		if (!((*k >= 'a' && *k <= 'z') || (*k >= 'A' && *k <= 'Z') || (*k >= '0' && *k <= '9') || *k == '-' ||
		      *k == '_' || *k == '.'))
			return 0;
	return 1;
}

/* One message: the payload as body, metadata as headers. */
static void answer_one(struct http_req *r, const Sluice__FetchResult *fr)
{
	const Sluice__Message *m = fr->n_messages ? fr->messages[0] : NULL;
	const char *ctype = "application/octet-stream";
	char ctbuf[256];

	if (!m || m->offset != r->offset) {
		http_problem(r, 404, SL_ENOTFOUND,
		             r->offset < fr->first_offset ? "message removed by retention" : "no message at this offset");
		return;
	}
	http_add_header(r, "Sluice-Topic", "%s", r->topic);
	http_add_header(r, "Sluice-Partition", "%u", m->partition);
	http_add_header(r, "Sluice-Offset", "%llu", (unsigned long long)m->offset);
	http_add_header(r, "Sluice-Timestamp", "%lld", (long long)m->timestamp_ms);
	if (m->key.len && printable(m->key.data, m->key.len))
		http_add_header(r, "Sluice-Key", "%.*s", (int)m->key.len, (const char *)m->key.data);
	for (size_t i = 0; i < m->n_headers; i++) {
		const Sluice__Header *h = m->headers[i];
		if (!printable(h->value.data, h->value.len) || !printable((const uint8_t *)h->key, strlen(h->key)))
			continue;
		if (strcmp(h->key, "content-type") == 0 && h->value.len < sizeof(ctbuf)) {
			memcpy(ctbuf, h->value.data, h->value.len);
			ctbuf[h->value.len] = 0;
			ctype = ctbuf;
		} else if (token(h->key)) {
			evbuffer_add_printf(r->rh, "Sluice-Header-%s: %.*s\r\n", h->key, (int)h->value.len,
			                    (const char *)h->value.data);
		}
	}
	http_respond(r, 200, ctype, m->payload.data, m->payload.len);
}

void http_answer_frame(struct http_req *r, const Sluice__Frame *f)
{
	if (r->kind == HK_SSE) {
		http_sse_frame(r, f);
		return;
	}
	if (r->kind == HK_COMMITS) {
		http_commits_frame(r, f);
		return;
	}
	if (r->kind == HK_GRAPHQL) {
		gql_http_frame(r, f);
		return;
	}
	if (r->kind >= HK_CONSUMER_CREATE && r->kind <= HK_ACKS) {
		http_consumer_frame(r, f);
		return;
	}
	if (r->kind >= HK_WEBHOOK_CREATE && r->kind <= HK_WEBHOOK_UPDATE) {
		http_webhook_frame(r, f);
		return;
	}
	if (f->body_case == SLUICE__FRAME__BODY_ERROR) {
		int code = (int)f->error->code;
		if (r->kind == HK_FETCH_ONE && code == SL_ERANGE)
			http_problem(r, 404, SL_ENOTFOUND, "no message at this offset yet");
		else
			http_problem(r, 0, code, f->error->message);
		return;
	}
	switch (r->kind) {
	case HK_PUBLISH:
	case HK_BATCH:
		http_publish_answered(r, f);
		return;
	case HK_CREATE_TOPIC:
		http_add_header(r, "Location", "/v1/topics/%s", r->topic);
		http_respond_json(r, 201, json_pack("{s:s,s:i}", "name", r->topic, "partitions", (int)r->partition));
		return;
	case HK_DELETE_TOPIC:
		http_respond(r, 204, NULL, NULL, 0);
		return;
	default:
		break;
	}
	if (r->kind == HK_LIST_TOPICS && f->body_case == SLUICE__FRAME__BODY_TOPIC_LIST)
		answer_topics(r, f->topic_list);
	else if (r->kind == HK_TOPIC && f->body_case == SLUICE__FRAME__BODY_TOPIC_INFO)
		http_respond_json(r, 200, topic_json(f->topic_info));
	else if (r->kind == HK_GROUP && f->body_case == SLUICE__FRAME__BODY_GROUP_INFO)
		answer_group(r, f->group_info);
	else if (r->kind == HK_CLUSTER && f->body_case == SLUICE__FRAME__BODY_CLUSTER_STATUS_RESULT)
		answer_cluster(r, f->cluster_status_result);
	else if (r->kind == HK_FETCH && f->body_case == SLUICE__FRAME__BODY_FETCH_RESULT)
		answer_page(r, f->fetch_result);
	else if (r->kind == HK_FETCH_ONE && f->body_case == SLUICE__FRAME__BODY_FETCH_RESULT)
		answer_one(r, f->fetch_result);
	else
		http_problem(r, 500, SL_EINTERNAL, "unexpected answer from the native path");
}
