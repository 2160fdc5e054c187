/*
 * gql_exec.c: execution of a validated operation. Each root field becomes
 * one native request (ListTopics, DescribeTopic, ClusterStatus, Publish,
 * Subscribe); its answer is rendered with only the selected fields, under
 * their response names (aliases), in selection order. Root fields run one
 * after the other in document order, the serial execution the spec asks of
 * mutations, so a request has at most one native frame out at a time.
 *
 * Errors follow the spec's null propagation at the root: a failed nullable
 * field (topic) is null with an error; a failed non-null one (topics,
 * cluster, publish) makes `data` null. `topic(name)` of a topic that does
 * not exist is null without an error.
 *
 * u64 values (offsets, timestamps, term, commit index) are decimal Strings:
 * GraphQL's Int is 32-bit.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "codec.h"
#include "gql_int.h"

#define TOPIC_NAME_MAX 249
#define GROUP_NAME_MAX 249
#define HEADER_NAME_MAX 255

static int is(const struct gql_field *f, const char *name)
{
	return strcmp(f->name, name) == 0;
}

static json_t *u64s(uint64_t x)
{
	char b[24];

	snprintf(b, sizeof(b), "%" PRIu64, x);
	return json_string(b);
}

/* Bytes as a JSON string if they are UTF-8 (jansson checks), else null. */
static json_t *text_or_null(const uint8_t *p, size_t n)
{
	json_t *s = json_stringn(p ? (const char *)p : "", n); /* empty bytes may have no pointer */

	return s ? s : json_null();
}

static json_t *field_error_json(const struct gql_field *f, const char *msg, const char *code)
{
	json_t *e = gql_error_json(msg, &f->loc, code);

	if (e)
		json_object_set_new(e, "path", json_pack("[s]", f->alias));
	return e;
}

/* ---------- rendering ---------- */

typedef json_t *(*leaf_fn)(const struct gql_field *f, const void *src, const void *ctx);

/* An object of type `type` with the selected fields of src (leaf gives each). */
static json_t *object(const char *type, const struct gql_field *sel, leaf_fn leaf, const void *src, const void *ctx)
{
	json_t *o = json_object();

	for (const struct gql_field *f = sel; o && f; f = f->next) {
		json_t *v = is(f, "__typename") ? json_string(type) : leaf(f, src, ctx);
		json_object_set_new(o, f->alias, v ? v : json_null());
	}
	return o;
}

static json_t *topic_leaf(const struct gql_field *f, const void *src, const void *ctx)
{
	const Sluice__TopicInfo *t = src;
	json_t *a;

	(void)ctx;
	if (is(f, "name"))
		return json_string(t->name);
	if (is(f, "partitions"))
		return json_integer(t->config && t->config->partitions ? t->config->partitions : (json_int_t)t->n_partitions);
	if (!is(f, "endOffsets") || !(a = json_array()))
		return NULL;
	for (size_t i = 0; i < t->n_partitions; i++)
		json_array_append_new(a, u64s(t->partitions[i]->end_offset));
	return a;
}

static json_t *topic_obj(const struct gql_field *f, const Sluice__TopicInfo *t)
{
	return object("Topic", f->sel, topic_leaf, t, NULL);
}

struct node_src {
	uint32_t id;
	const char *role;
};

static json_t *node_leaf(const struct gql_field *f, const void *src, const void *ctx)
{
	const struct node_src *n = src;

	(void)ctx;
	return is(f, "id") ? json_integer(n->id) : is(f, "role") ? json_string(n->role) : NULL;
}

/* The nodes: each with its role as the answering node sees it; a single
 * node (no peers) is itself, role "single". */
static json_t *nodes_json(const struct gql_field *f, const Sluice__ClusterStatusResult *cs)
{
	json_t *a = json_array();
	struct node_src n;

	if (!a)
		return NULL;
	if (cs->n_nodes == 0) {
		n = (struct node_src){cs->node_id, cs->role};
		json_array_append_new(a, object("Node", f->sel, node_leaf, &n, NULL));
	}
	for (size_t i = 0; i < cs->n_nodes; i++) {
		uint32_t id = cs->nodes[i]->id;
		n.id = id;
		n.role = id == cs->node_id ? cs->role : id == cs->leader_id ? "leader" : "follower";
		json_array_append_new(a, object("Node", f->sel, node_leaf, &n, NULL));
	}
	return a;
}

static json_t *cluster_leaf(const struct gql_field *f, const void *src, const void *ctx)
{
	const Sluice__ClusterStatusResult *cs = src;

	(void)ctx;
	if (is(f, "leader"))
		return cs->leader_id ? json_integer(cs->leader_id) : json_null();
	if (is(f, "nodes"))
		return nodes_json(f, cs);
	if (is(f, "term"))
		return u64s(cs->term);
	if (is(f, "commitIndex"))
		return u64s(cs->commit_index);
	return NULL;
}

static json_t *publish_leaf(const struct gql_field *f, const void *src, const void *ctx)
{
	const Sluice__PublishAck *a = src;

	if (is(f, "topic"))
		return json_string(ctx);
	if (is(f, "partition"))
		return json_integer(a->partition);
	if (is(f, "offset"))
		return u64s(a->offset);
	return NULL;
}

static json_t *header_leaf(const struct gql_field *f, const void *src, const void *ctx)
{
	const Sluice__Header *h = src;

	(void)ctx;
	if (is(f, "name"))
		return json_string(h->key);
	if (is(f, "value"))
		return text_or_null(h->value.data, h->value.len);
	return NULL;
}

static json_t *message_leaf(const struct gql_field *f, const void *src, const void *ctx)
{
	const Sluice__Message *m = src;
	json_t *a;

	(void)ctx;
	if (is(f, "topic"))
		return json_string(m->topic);
	if (is(f, "partition"))
		return json_integer(m->partition);
	if (is(f, "offset"))
		return u64s(m->offset);
	if (is(f, "timestamp"))
		return u64s((uint64_t)(m->timestamp_ms < 0 ? 0 : m->timestamp_ms));
	if (is(f, "key"))
		return m->key.len ? text_or_null(m->key.data, m->key.len) : json_null();
	if (is(f, "payload"))
		return text_or_null(m->payload.data, m->payload.len);
	if (is(f, "json")) {
		json_t *j = json_loadb((const char *)m->payload.data, m->payload.len, JSON_DECODE_ANY, NULL);
		return j ? j : json_null();
	}
	if (!is(f, "headers") || !(a = json_array()))
		return NULL;
	for (size_t i = 0; i < m->n_headers; i++) {
		const Sluice__Header *h = m->headers[i];
		/* Header.value is String!: a value that is not UTF-8 is left out */
		json_t *pv = json_stringn(h->value.data ? (const char *)h->value.data : "", h->value.len), *pk = json_string(h->key);
		int ok = pv && pk;
		json_decref(pv);
		json_decref(pk);
		if (!ok)
			continue;
		json_array_append_new(a, object("Header", f->sel, header_leaf, h, NULL));
	}
	return a;
}

/* ---------- queries and mutations ---------- */

static void root_set(struct gql_req *q, const struct gql_field *f, json_t *v)
{
	json_object_set_new(q->data, f->alias, v ? v : json_null());
}

/* A root field failed: null, an error, and `data` null if it was non-null. */
static void root_fail(struct gql_req *q, const struct gql_field *f, const char *msg, const char *code)
{
	json_array_append_new(q->errors, field_error_json(f, msg, code));
	root_set(q, f, json_null());
	if (!is(f, "topic"))
		q->data_null = 1;
}

static void build_args(struct gql_req *q, const struct gql_field *f)
{
	json_decref(q->args);
	q->args = json_object();
	for (const struct gql_arg *a = f->args; q->args && a; a = a->next) {
		json_t *x = gql_literal_json(a->value, q->vars);
		if (x)
			json_object_set_new(q->args, a->name, x);
	}
}

static json_t *arg(const struct gql_req *q, const char *name)
{
	json_t *x = q->args ? json_object_get(q->args, name) : NULL;

	return json_is_null(x) ? NULL : x;
}

/* A name argument: 1..max bytes without NUL. */
static const char *name_arg(const struct gql_req *q, const char *name, size_t max)
{
	json_t *x = arg(q, name);
	const char *s = json_string_value(x);

	if (!s || json_string_length(x) == 0 || json_string_length(x) > max || strlen(s) != json_string_length(x))
		return NULL;
	return s;
}

/* The headers argument of publish into q->hdrs; -1 with why. */
static int publish_headers(struct gql_req *q, const char **why)
{
	json_t *hs = arg(q, "headers"), *h;
	size_t i;

	if (!hs)
		return 0;
	if (!json_is_array(hs))
		hs = json_pack("[O]", hs);
	else
		json_incref(hs);
	json_object_set_new(q->args, "headers", hs); /* kept (as a list) while the frame is out */
	if (json_array_size(hs) > GQL_PUB_HEADERS_MAX) {
		*why = "a publish carries at most 64 headers";
		return -1;
	}
	json_array_foreach(hs, i, h)
	{
		json_t *n = json_object_get(h, "name"), *v = json_object_get(h, "value");
		const char *ns = json_string_value(n);
		if (!ns || json_string_length(n) == 0 || json_string_length(n) > HEADER_NAME_MAX ||
		    strlen(ns) != json_string_length(n)) {
			*why = "a header name must be 1 to 255 bytes without NUL";
			return -1;
		}
		sluice__header__init(&q->hdrs[i]);
		q->hdrs[i].key = (char *)ns;
		q->hdrs[i].value.data = (uint8_t *)json_string_value(v);
		q->hdrs[i].value.len = json_string_length(v);
		q->hptrs[i] = &q->hdrs[i];
	}
	q->pub.n_headers = json_array_size(hs);
	q->pub.headers = q->hptrs;
	return 0;
}

static int publish_frame(struct gql_req *q, Sluice__Frame *out, const char **why)
{
	json_t *key = arg(q, "key"), *payload = arg(q, "payload"), *part = arg(q, "partition");
	const char *topic = name_arg(q, "topic", TOPIC_NAME_MAX);

	sluice__publish__init(&q->pub);
	if (!topic) {
		*why = "topic name must be 1 to 249 bytes without NUL";
		return -1;
	}
	if (part && json_integer_value(part) < 0) {
		*why = "partition must not be negative";
		return -1;
	}
	if (publish_headers(q, why) < 0)
		return -1;
	q->pub.topic = (char *)topic;
	if (key) {
		q->pub.key.data = (uint8_t *)json_string_value(key);
		q->pub.key.len = json_string_length(key);
	}
	q->pub.payload.data = (uint8_t *)json_string_value(payload);
	q->pub.payload.len = json_string_length(payload);
	if (part) {
		q->pub.has_partition = 1;
		q->pub.partition = (uint32_t)json_integer_value(part);
	}
	out->body_case = SLUICE__FRAME__BODY_PUBLISH;
	out->publish = &q->pub;
	return 0;
}

/* The native request of root field f into out: 1, or 0 if f was resolved
 * (or failed) without one. */
static int root_frame(struct gql_req *q, const struct gql_field *f, Sluice__Frame *out)
{
	const char *why = NULL;

	if (is(f, "__typename")) {
		root_set(q, f, json_string(q->op->kind == GQL_MUTATION ? "Mutation" : "Query"));
		return 0;
	}
	build_args(q, f);
	if (is(f, "topics")) {
		sluice__list_topics__init(&q->m.list);
		out->body_case = SLUICE__FRAME__BODY_LIST_TOPICS;
		out->list_topics = &q->m.list;
	} else if (is(f, "cluster")) {
		sluice__cluster_status__init(&q->m.cluster);
		out->body_case = SLUICE__FRAME__BODY_CLUSTER_STATUS;
		out->cluster_status = &q->m.cluster;
	} else if (is(f, "topic")) {
		sluice__describe_topic__init(&q->m.describe);
		if (!(q->m.describe.name = (char *)name_arg(q, "name", TOPIC_NAME_MAX)))
			why = "topic name must be 1 to 249 bytes without NUL";
		out->body_case = SLUICE__FRAME__BODY_DESCRIBE_TOPIC;
		out->describe_topic = &q->m.describe;
	} else if (is(f, "publish")) {
		publish_frame(q, out, &why);
	} else {
		why = "this field cannot be executed"; /* validation lets no other root field through */
	}
	if (why) {
		root_fail(q, f, why, "INVALID_ARGUMENT");
		return 0;
	}
	return 1;
}

int gql_exec_next(struct gql_req *q, Sluice__Frame *f)
{
	while (q->op->kind != GQL_SUBSCRIPTION && q->next) {
		struct gql_field *root = q->next;
		q->next = root->next;
		sluice__frame__init(f);
		if (root_frame(q, root, f)) {
			q->cur = root;
			return 1;
		}
	}
	return 0;
}

void gql_exec_answer(struct gql_req *q, const Sluice__Frame *ans)
{
	const struct gql_field *f = q->cur;
	const char *topic = q->pub.topic;
	json_t *a;

	if (!f)
		return;
	q->cur = NULL;
	if (ans->body_case == SLUICE__FRAME__BODY_ERROR) {
		if (is(f, "topic") && ans->error->code == SLUICE__ERROR_CODE__NO_SUCH_TOPIC)
			root_set(q, f, json_null());
		else
			root_fail(q, f, ans->error->message, codec_error_name((int)ans->error->code));
		return;
	}
	if (is(f, "topics") && ans->body_case == SLUICE__FRAME__BODY_TOPIC_LIST && (a = json_array())) {
		for (size_t i = 0; i < ans->topic_list->n_topics; i++)
			json_array_append_new(a, topic_obj(f, ans->topic_list->topics[i]));
		root_set(q, f, a);
	} else if (is(f, "topic") && ans->body_case == SLUICE__FRAME__BODY_TOPIC_INFO) {
		root_set(q, f, topic_obj(f, ans->topic_info));
	} else if (is(f, "cluster") && ans->body_case == SLUICE__FRAME__BODY_CLUSTER_STATUS_RESULT) {
		root_set(q, f, object("Cluster", f->sel, cluster_leaf, ans->cluster_status_result, NULL));
	} else if (is(f, "publish") && ans->body_case == SLUICE__FRAME__BODY_PUBLISH_ACK) {
		root_set(q, f, object("PublishResult", f->sel, publish_leaf, ans->publish_ack, topic));
	} else {
		root_fail(q, f, "unexpected answer from the native path", "INTERNAL");
	}
}

json_t *gql_exec_result(struct gql_req *q)
{
	json_t *r = json_object();

	if (!r)
		return NULL;
	json_object_set(r, "data", q->data_null ? json_null() : q->data);
	if (json_array_size(q->errors))
		json_object_set(r, "errors", q->errors);
	return r;
}

/* ---------- subscriptions ---------- */

/* from: earliest | latest | OFFSET | @UNIX_MS (decimal, whole string). */
static int parse_from(const char *v, Sluice__Subscribe *s)
{
	char *end;
	unsigned long long n;

	if (!v || strcmp(v, "latest") == 0) {
		s->start = SLUICE__START_AT__LATEST;
		return 0;
	}
	if (strcmp(v, "earliest") == 0) {
		s->start = SLUICE__START_AT__EARLIEST;
		return 0;
	}
	const char *d = v[0] == '@' ? v + 1 : v;
	if (*d < '0' || *d > '9')
		return -1;
	errno = 0;
	n = strtoull(d, &end, 10);
	if (errno || *end)
		return -1;
	if (v[0] == '@') {
		if (n > INT64_MAX)
			return -1;
		s->start = SLUICE__START_AT__TIMESTAMP;
		s->timestamp_ms = (int64_t)n;
	} else {
		s->start = SLUICE__START_AT__OFFSET;
		s->offset = n;
	}
	return 0;
}

static int sub_args(struct gql_req *q, const char **why)
{
	Sluice__Subscribe *s = &q->m.sub;
	json_t *parts = arg(q, "partitions"), *p, *group = arg(q, "group");
	size_t i;

	sluice__subscribe__init(s);
	if (!(s->topic = (char *)name_arg(q, "topic", TOPIC_NAME_MAX))) {
		*why = "topic name must be 1 to 249 bytes without NUL";
		return -1;
	}
	if (parse_from(json_string_value(arg(q, "from")), s) < 0) {
		*why = "from must be \"earliest\", \"latest\", an offset or \"@UNIX_MS\"";
		return -1;
	}
	if (group && !(s->group = (char *)name_arg(q, "group", GROUP_NAME_MAX))) {
		*why = "group name must be 1 to 249 bytes without NUL";
		return -1;
	}
	if (parts && json_is_array(parts) && json_array_size(parts) > GQL_PARTITIONS_MAX) {
		*why = "at most 4096 partitions";
		return -1;
	}
	s->n_partitions = 0;
	if (parts && !json_is_array(parts)) /* input coercion: one value for a list */
		q->parts[s->n_partitions++] = (uint32_t)json_integer_value(parts);
	json_array_foreach(parts, i, p) q->parts[s->n_partitions++] = (uint32_t)json_integer_value(p);
	for (i = 0; i < s->n_partitions; i++)
		if ((int32_t)q->parts[i] < 0) {
			*why = "partitions must not be negative";
			return -1;
		}
	s->partitions = q->parts;
	/* flow control is the WebSocket output watermark (as for SSE) */
	s->credit = UINT32_MAX;
	return 0;
}

int gql_sub_frame(struct gql_req *q, Sluice__Frame *f, json_t **errors)
{
	const struct gql_field *root = q->op->sel;
	const char *why = NULL;

	*errors = NULL;
	sluice__frame__init(f);
	build_args(q, root);
	if (sub_args(q, &why) < 0) {
		*errors = json_pack("[o]", field_error_json(root, why, "BAD_USER_INPUT"));
		return -1;
	}
	f->body_case = SLUICE__FRAME__BODY_SUBSCRIBE;
	f->subscribe = &q->m.sub;
	return 0;
}

json_t *gql_sub_message(const struct gql_req *q, const Sluice__Message *m)
{
	const struct gql_field *root = q->op->sel;
	json_t *o = object("Message", root->sel, message_leaf, m, NULL);

	return o ? json_pack("{s:{s:o}}", "data", root->alias, o) : NULL;
}

json_t *gql_native_errors(const struct gql_req *q, const Sluice__Error *e)
{
	return json_pack("[o]", field_error_json(q->op->sel, e->message, codec_error_name((int)e->code)));
}
