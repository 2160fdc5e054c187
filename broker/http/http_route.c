/*
 * http_route.c: the route table and the request handlers. A handler checks
 * what the request says (path parameters, query, JSON body), then either
 * answers at once (health, errors) or builds the native request frame and
 * sends it through http_dispatch; the native answer comes back through
 * http_answer.c. Adding a route is one line in `routes` (the metrics,
 * AsyncAPI and console routes go there too).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <jansson.h>

#include "config.h"
#include "auth_perm.h"
#include "err.h"
#include "fe_pages.h"
#include "http_int.h"
#include "ws_int.h"
#include "log.h"
#include "ringmsg.h"
#include "shm.h"

typedef void (*http_handler)(struct http_req *r);

struct http_route_def {
	unsigned method;
	const char *pattern;
	http_handler fn;
	int open; /* served without an identity when [auth] is enabled (probes, the console's files) */
};

static void on_healthz(struct http_req *r);
static void on_readyz(struct http_req *r);
static void on_list_topics(struct http_req *r);
static void on_create_topic(struct http_req *r);
static void on_describe_topic(struct http_req *r);
static void on_delete_topic(struct http_req *r);
static void on_fetch(struct http_req *r);
static void on_fetch_one(struct http_req *r);
static void on_describe_group(struct http_req *r);
static void on_cluster(struct http_req *r);
static void on_metrics(struct http_req *r);
static void on_asyncapi(struct http_req *r);
static void on_console(struct http_req *r);

static const struct http_route_def routes[] = {
    {HTTP_GET, "/healthz", on_healthz, 1},
    {HTTP_GET, "/readyz", on_readyz, 1},
    {HTTP_GET, "/v1/topics", on_list_topics, 0},
    {HTTP_PUT, "/v1/topics/{topic}", on_create_topic, 0},
    {HTTP_GET, "/v1/topics/{topic}", on_describe_topic, 0},
    {HTTP_DELETE, "/v1/topics/{topic}", on_delete_topic, 0},
    {HTTP_POST, "/v1/topics/{topic}/messages", http_on_publish, 0},
    {HTTP_GET, "/v1/topics/{topic}/messages", on_fetch, 0},
    {HTTP_GET, "/v1/topics/{topic}/messages/{partition}/{offset}", on_fetch_one, 0},
    {HTTP_GET, "/v1/topics/{topic}/events", http_on_events, 0},
    {HTTP_GET, "/v1/groups/{group}", on_describe_group, 0},
    {HTTP_POST, "/v1/groups/{group}/offsets", http_on_commit, 0},
    {HTTP_GET, "/v1/operations/{id}", http_on_operation, 0},
    {HTTP_POST, "/v1/consumers", http_on_consumer_post, 0},
    {HTTP_GET, "/v1/consumers", http_on_consumer_list, 0},
    {HTTP_PUT, "/v1/consumers/{name}", http_on_consumer_put, 0},
    {HTTP_GET, "/v1/consumers/{name}", http_on_consumer_get, 0},
    {HTTP_DELETE, "/v1/consumers/{name}", http_on_consumer_delete, 0},
    {HTTP_GET, "/v1/consumers/{name}/messages", http_on_consumer_pull, 0},
    {HTTP_POST, "/v1/consumers/{name}/ack", http_on_consumer_ack, 0},
    {HTTP_POST, "/v1/consumers/{name}/nack", http_on_consumer_nack, 0},
    {HTTP_POST, "/v1/consumers/{name}/in_progress", http_on_consumer_in_progress, 0},
    {HTTP_POST, "/v1/webhooks", http_on_webhook_post, 0},
    {HTTP_GET, "/v1/webhooks", http_on_webhook_list, 0},
    {HTTP_GET, "/v1/webhooks/{name}", http_on_webhook_get, 0},
    {HTTP_DELETE, "/v1/webhooks/{name}", http_on_consumer_delete, 0},
    {HTTP_POST, "/v1/webhooks/{name}/pause", http_on_webhook_pause, 0},
    {HTTP_POST, "/v1/webhooks/{name}/resume", http_on_webhook_resume, 0},
    {HTTP_POST, "/v1/webhooks/{name}/rotate-secret", http_on_webhook_rotate, 0},
    {HTTP_POST, "/v1/webhooks/{name}/replay", http_on_webhook_replay, 0},
    {HTTP_GET, "/v1/cluster", on_cluster, 0},
    {HTTP_POST, "/v1/graphql", gql_http_post, 0},
    {HTTP_GET, "/v1/graphql", gql_http_sdl, 0},
    {HTTP_GET, "/metrics", on_metrics, 0},
    {HTTP_GET, "/v1/asyncapi.json", on_asyncapi, 0},
    {HTTP_GET, "/", on_console, 1},
    {HTTP_GET, "/index.html", on_console, 1},
    {HTTP_GET, "/console.js", on_console, 1},
    {HTTP_GET, "/console.css", on_console, 1},
    {HTTP_GET, "/v1/sluice.js", on_console, 1},
    {HTTP_GET, "/v1/ws", ws_on_upgrade, 0}, /* without Upgrade: 426 */
};

#define ROUTES (sizeof(routes) / sizeof(routes[0]))

/* ---------- matching ---------- */

/* 1 if path matches pattern; path parameters are decoded into r->params.
 * -1 on a badly encoded parameter. */
static int route_match(struct http_req *r, const char *pattern, const char *path, size_t plen, int keep)
{
	const char *pp = pattern, *sp = path, *pend = path + plen;

	while (*pp) {
		const char *pe, *se;
		if (*pp != '/' || sp >= pend || *sp != '/')
			return 0;
		pp++;
		sp++;
		pe = strchr(pp, '/');
		pe = pe ? pe : pp + strlen(pp);
		se = memchr(sp, '/', (size_t)(pend - sp));
		se = se ? se : pend;
		if (*pp == '{') {
			if (se == sp)
				return 0;
			if (keep) {
				char buf[HTTP_PARAM_BYTES_MAX];
				if (r->nparams >= HTTP_PARAMS_MAX ||
				    http_pct_decode(sp, (size_t)(se - sp), 0, buf, sizeof(buf), NULL) != SL_OK)
					return -1;
				if (!(r->params[r->nparams] = strdup(buf)))
					return -1;
				r->nparams++;
			}
		} else if ((size_t)(pe - pp) != (size_t)(se - sp) || memcmp(pp, sp, (size_t)(pe - pp)) != 0) {
			return 0;
		}
		pp = pe;
		sp = se;
	}
	return sp == pend;
}

/* 1 if a request with this method is served by a route of that method:
 * HEAD is served by every GET route (the same answer without its body). */
static int method_serves(unsigned route_method, unsigned method)
{
	return route_method == method || (method == HTTP_HEAD && route_method == HTTP_GET);
}

/* The methods served on path, "GET, HEAD, OPTIONS" style, into allow; the
 * first route pattern that matches it, or NULL when none does. */
static const char *allow_list(struct http_req *r, const char *path, size_t plen, char *allow, size_t cap)
{
	const char *first = NULL;
	size_t n = 0;
	int get = 0;

	allow[0] = 0;
	for (size_t i = 0; i < ROUTES; i++) {
		if (route_match(r, routes[i].pattern, path, plen, 0) != 1)
			continue;
		const char *m = http_method_str(routes[i].method);
		first = first ? first : routes[i].pattern;
		get |= routes[i].method == HTTP_GET;
		if (!strstr(allow, m) && n + strlen(m) + 3 < cap)
			n += (size_t)snprintf(allow + n, cap - n, "%s%s", n ? ", " : "", m);
	}
	if (get && n + 7 < cap)
		n += (size_t)snprintf(allow + n, cap - n, ", HEAD");
	if (first && n + 10 < cap)
		snprintf(allow + n, cap - n, ", OPTIONS");
	return first;
}

static void method_not_allowed(struct http_req *r, const char *path, size_t plen)
{
	char allow[128];

	allow_list(r, path, plen, allow, sizeof(allow));
	http_add_header(r, "Allow", "%s", allow);
	http_problem(r, 405, SL_EUNKNOWN_OP, "method not allowed on this resource");
}

/* OPTIONS on a known path: 204 with Allow (and a CORS preflight's answer). */
static void on_options(struct http_req *r)
{
	char allow[128];
	const char *route = allow_list(r, r->path, r->path_len, allow, sizeof(allow));

	if (!route) {
		http_problem(r, 404, SL_ENOTFOUND, "no such resource");
		return;
	}
	r->route = route;
	http_add_header(r, "Allow", "%s", allow);
	http_cors_preflight(r, allow);
	http_respond(r, 204, NULL, NULL, 0);
}

static int split_url(struct http_req *r)
{
	const char *url = r->head;
	struct http_parser_url u;

	http_parser_url_init(&u);
	if (r->url_len == 0 || http_parser_parse_url(url, r->url_len, r->method == HTTP_CONNECT, &u) != 0 ||
	    !(u.field_set & (1 << UF_PATH)))
		return -1;
	r->path = url + u.field_data[UF_PATH].off;
	r->path_len = u.field_data[UF_PATH].len;
	if (u.field_set & (1 << UF_QUERY)) {
		r->query = url + u.field_data[UF_QUERY].off;
		r->query_len = u.field_data[UF_QUERY].len;
	} else {
		r->query = "";
		r->query_len = 0;
	}
	return 0;
}

/* 1 if the path is one of the open routes' (whatever the method). */
static int path_open(struct http_req *r)
{
	for (size_t i = 0; i < ROUTES; i++)
		if (routes[i].open && route_match(r, routes[i].pattern, r->path, r->path_len, 0) == 1)
			return 1;
	return 0;
}

void http_route(struct http_req *r)
{
	int path_known = 0;

	if (split_url(r) < 0) {
		http_problem(r, 400, SL_EMALFORMED, "request target is not a valid URL path");
		return;
	}
	if (r->method == HTTP_OPTIONS) {
		on_options(r);
		return;
	}
	if (!path_open(r) && http_auth_request(r) < 0)
		return;
	if (ws_is_upgrade(r) && ((r->path_len == 6 && memcmp(r->path, "/v1/ws", 6) == 0) ||
	                         (r->path_len == 11 && memcmp(r->path, "/v1/graphql", 11) == 0))) {
		r->route = r->path_len == 6 ? "/v1/ws" : "/v1/graphql";
		ws_on_upgrade(r);
		return;
	}
	for (size_t i = 0; i < ROUTES; i++) {
		int m = route_match(r, routes[i].pattern, r->path, r->path_len, 0);
		if (m != 1)
			continue;
		path_known = 1;
		if (!method_serves(routes[i].method, r->method))
			continue;
		r->route = routes[i].pattern;
		if (route_match(r, routes[i].pattern, r->path, r->path_len, 1) != 1) {
			http_problem(r, 400, SL_EMALFORMED, "bad percent-encoding in the path");
			return;
		}
		routes[i].fn(r);
		return;
	}
	if (path_known)
		method_not_allowed(r, r->path, r->path_len);
	else
		http_problem(r, 404, SL_ENOTFOUND, "no such resource");
}

/* ---------- shared helpers ---------- */

void http_respond_json(struct http_req *r, int status, json_t *j)
{
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;

	json_decref(j);
	if (!s) {
		http_respond(r, 500, "text/plain", "out of memory\n", 14);
		return;
	}
	http_respond(r, status, "application/json", s, strlen(s));
	free(s);
}

char *http_problem_json(const struct http_req *r, int status, int err, const char *detail)
{
	char type[64];
	const char *code = http_code_name(err);
	size_t i;
	json_t *j;
	char *s;

	snprintf(type, sizeof(type), "urn:sluice:problem:%s", code);
	for (i = strlen("urn:sluice:problem:"); type[i]; i++)
		type[i] = type[i] == '_' ? '-' : (char)(type[i] | 0x20);
	j = json_pack("{s:s,s:s,s:i,s:s,s:s}", "type", type, "title", http_status_text(status), "status", status,
	              "detail", detail ? detail : http_status_text(status), "code", code);
	if (j && r->path && utf8_valid((const uint8_t *)r->path, r->path_len))
		json_object_set_new(j, "instance", json_stringn(r->path, r->path_len));
	s = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	return s;
}

void http_problem(struct http_req *r, int status, int err, const char *detail)
{
	char *s;

	if (status == 0)
		status = http_status_for_err(err);
	if (status == 503 || status == 429)
		http_add_header(r, "Retry-After", "%u", r->retry_after_s ? r->retry_after_s : 1);
	if (status == 401)
		http_add_header(r, "WWW-Authenticate", "Bearer realm=\"sluice\"");
	if (!(s = http_problem_json(r, status, err, detail))) {
		http_respond(r, status, "text/plain", "error\n", 6);
		return;
	}
	http_respond(r, status, "application/problem+json", s, strlen(s));
	free(s);
}

int http_topic_param(struct http_req *r, const char *s, char *out, size_t cap)
{
	size_t n = strlen(s);

	if (n == 0 || n > RM_TOPIC_NAME_MAX || n >= cap) {
		http_problem(r, 400, SL_EINVAL, "topic name must be 1 to 249 bytes");
		return -1;
	}
	if (!utf8_valid((const uint8_t *)s, n)) {
		http_problem(r, 400, SL_EINVAL, "topic name is not valid UTF-8");
		return -1;
	}
	memcpy(out, s, n + 1);
	return 0;
}

int http_group_param(struct http_req *r, const char *s, char *out, size_t cap)
{
	size_t n = strlen(s);

	if (n == 0 || n > RM_GROUP_NAME_MAX || n >= cap || !utf8_valid((const uint8_t *)s, n)) {
		http_problem(r, 400, SL_EINVAL, "group name must be 1 to 249 bytes of UTF-8");
		return -1;
	}
	memcpy(out, s, n + 1);
	return 0;
}

int http_json_ctype(struct http_req *r)
{
	size_t ctl = 0;
	const char *ct = http_req_header(r, "content-type", &ctl);

	if (!ct || ctl < 16 || strncasecmp(ct, "application/json", 16) != 0) {
		http_problem(r, 415, SL_EINVAL, "the body must be application/json");
		return 0;
	}
	return 1;
}

json_t *http_body_json(struct http_req *r, int allow_empty, int allow_array)
{
	size_t len = evbuffer_get_length(r->body);
	json_error_t e;
	json_t *j;

	if (len == 0 && allow_empty)
		return json_object();
	if (!http_json_ctype(r))
		return NULL;
	j = json_loadb((const char *)evbuffer_pullup(r->body, -1), len, JSON_REJECT_DUPLICATES, &e);
	if (!j || !(json_is_object(j) || (allow_array && json_is_array(j)))) {
		json_decref(j);
		http_problem(r, 400, SL_EMALFORMED,
		             allow_array ? "the body is not a JSON object or array" : "the body is not a JSON object");
		return NULL;
	}
	return j;
}

static void send_or_fail(struct http_req *r, enum http_kind kind, const Sluice__Frame *f)
{
	int rc = http_dispatch(r, kind, f);

	if (rc != SL_OK)
		http_problem(r, 500, SL_EINTERNAL, sl_strerror(rc));
}

/* ---------- health ---------- */

static void on_healthz(struct http_req *r)
{
	http_respond(r, 200, "application/json", "{\"status\":\"ok\"}", 15);
}

/* Ready: storage open and, in a cluster, a leader known and heard from recently. */
static void on_readyz(struct http_req *r)
{
	struct fe *fe = r->conn->fe;
	struct shm_cluster sc;
	const char *why = NULL;

	shm_cluster_read(&fe->shm->hdr->cluster, &sc);
	if (shm_load(&fe->shm->hdr->draining))
		why = "draining";
	else if (!shm_load(&fe->shm->hdr->logwriter_ready))
		why = "log writer not ready";
	else if (fe_is_cluster(fe) && (!sc.enabled || sc.leader_id == 0))
		why = "no leader known";
	else if (fe_is_cluster(fe) &&
	         time_now_ms() - (long long)sc.updated_ms > 3 * (long long)fe->cfg->election_timeout_ms + 1000)
		why = "no news from the cluster recently";
	if (why) {
		http_problem(r, 503, SL_EUNAVAILABLE, why);
		return;
	}
	http_respond_json(r, 200,
	                  json_pack("{s:s,s:i,s:i}", "status", "ready", "node_id", (int)fe->shm->hdr->node_id,
	                            "leader_id", (int)(fe_is_cluster(fe) ? sc.leader_id : fe->shm->hdr->node_id)));
}

/* ---------- topics ---------- */

static void on_list_topics(struct http_req *r)
{
	Sluice__ListTopics m = SLUICE__LIST_TOPICS__INIT;
	Sluice__Frame f = SLUICE__FRAME__INIT;

	f.body_case = SLUICE__FRAME__BODY_LIST_TOPICS;
	f.list_topics = &m;
	send_or_fail(r, HK_LIST_TOPICS, &f);
}

static int json_int_field(json_t *j, const char *name, int64_t min, int64_t max, int64_t *out)
{
	json_t *v = json_object_get(j, name);

	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
		return -1;
	*out = json_integer_value(v);
	return 0;
}

static void on_create_topic(struct http_req *r)
{
	Sluice__CreateTopic m = SLUICE__CREATE_TOPIC__INIT;
	Sluice__TopicConfig tc = SLUICE__TOPIC_CONFIG__INIT;
	Sluice__Frame f = SLUICE__FRAME__INIT;
	int64_t parts = 1, rms = 0, rbytes = 0;
	json_t *j;

	if (http_topic_param(r, r->params[0], r->topic, sizeof(r->topic)) < 0 || !(j = http_body_json(r, 1, 0)))
		return;
	if (json_int_field(j, "partitions", 1, r->conn->fe->cfg->partitions_max, &parts) < 0 ||
	    json_int_field(j, "retention_ms", 0, INT64_MAX, &rms) < 0 ||
	    json_int_field(j, "retention_bytes", 0, INT64_MAX, &rbytes) < 0) {
		json_decref(j);
		http_problem(r, 400, SL_EINVAL,
		             "partitions must be 1..partitions_max, retention_ms and retention_bytes >= 0");
		return;
	}
	json_decref(j);
	tc.partitions = (uint32_t)parts;
	tc.retention_ms = rms;
	tc.retention_bytes = rbytes;
	m.name = r->topic;
	m.config = &tc;
	r->partition = (uint32_t)parts;
	f.body_case = SLUICE__FRAME__BODY_CREATE_TOPIC;
	f.create_topic = &m;
	send_or_fail(r, HK_CREATE_TOPIC, &f);
}

/* DescribeTopic or DeleteTopic: a request that names only the topic. */
static void topic_request(struct http_req *r, enum http_kind kind)
{
	Sluice__DescribeTopic d = SLUICE__DESCRIBE_TOPIC__INIT;
	Sluice__DeleteTopic x = SLUICE__DELETE_TOPIC__INIT;
	Sluice__Frame f = SLUICE__FRAME__INIT;

	if (http_topic_param(r, r->params[0], r->topic, sizeof(r->topic)) < 0)
		return;
	d.name = x.name = r->topic;
	if (kind == HK_TOPIC) {
		f.body_case = SLUICE__FRAME__BODY_DESCRIBE_TOPIC;
		f.describe_topic = &d;
	} else {
		f.body_case = SLUICE__FRAME__BODY_DELETE_TOPIC;
		f.delete_topic = &x;
	}
	send_or_fail(r, kind, &f);
}

static void on_describe_topic(struct http_req *r)
{
	topic_request(r, HK_TOPIC);
}

static void on_delete_topic(struct http_req *r)
{
	topic_request(r, HK_DELETE_TOPIC);
}

/* ---------- reads ---------- */

/* from=earliest|latest|OFFSET|@UNIX_MS into a start; -1 if malformed. */
static int parse_from(const char *v, struct fe_start *st)
{
	uint64_t n;

	memset(st, 0, sizeof(*st));
	if (!v[0] || strcmp(v, "earliest") == 0) {
		st->start = SLUICE__START_AT__EARLIEST;
	} else if (strcmp(v, "latest") == 0) {
		st->start = SLUICE__START_AT__LATEST;
	} else if (v[0] == '@' && http_parse_u64(v + 1, &n) == 0 && n <= INT64_MAX) {
		st->start = SLUICE__START_AT__TIMESTAMP;
		st->timestamp_ms = (int64_t)n;
	} else if (http_parse_u64(v, &n) == 0) {
		st->start = SLUICE__START_AT__OFFSET;
		st->offset = n;
	} else {
		return -1;
	}
	return 0;
}

int http_start_parse(const char *v, struct fe_start *st)
{
	return parse_from(v, st);
}

int http_resolve_start(struct fe *fe, const char *topic, uint32_t partition, const struct fe_start *st,
                       uint64_t *off)
{
	struct store_txn *t = NULL;
	struct store_topic tp;
	int rc = store_txn_begin(fe->store, 0, &t);

	if (rc == SL_OK)
		rc = fe_topic_get(fe, t, topic, &tp);
	if (rc == SL_OK && partition >= tp.partitions)
		rc = SL_EINVAL;
	if (rc == SL_OK)
		rc = fe_start_offset(fe, t, &tp, partition, st, off);
	if (t)
		store_txn_abort(t);
	return rc;
}

struct fetch_q {
	char partition[32], from[64], max[32], wait[32], group[HTTP_QUERY_VALUE_MAX];
};

static int fetch_query(struct http_req *r, struct fetch_q *q)
{
	memset(q, 0, sizeof(*q));
	if (http_query_get(r->query, r->query_len, "partition", q->partition, sizeof(q->partition)) < 0 ||
	    http_query_get(r->query, r->query_len, "from", q->from, sizeof(q->from)) < 0 ||
	    http_query_get(r->query, r->query_len, "max", q->max, sizeof(q->max)) < 0 ||
	    http_query_get(r->query, r->query_len, "wait_ms", q->wait, sizeof(q->wait)) < 0 ||
	    http_query_get(r->query, r->query_len, "group", q->group, sizeof(q->group)) < 0)
		return -1;
	return 0;
}

static void on_fetch(struct http_req *r)
{
	Sluice__Fetch m = SLUICE__FETCH__INIT;
	Sluice__Frame f = SLUICE__FRAME__INIT;
	struct fetch_q q;
	struct fe_start st;
	uint64_t part = 0, max = 100, wait = 0, off;
	int rc;

	if (http_topic_param(r, r->params[0], r->topic, sizeof(r->topic)) < 0)
		return;
	if (fetch_query(r, &q) < 0 || parse_from(q.from, &st) < 0 ||
	    (q.partition[0] && (http_parse_u64(q.partition, &part) < 0 || part >= UINT32_MAX)) ||
	    (q.max[0] && (http_parse_u64(q.max, &max) < 0 || max == 0)) ||
	    (q.wait[0] && http_parse_u64(q.wait, &wait) < 0)) {
		http_problem(r, 400, SL_EINVAL, "bad query: partition, from=earliest|latest|OFFSET|@UNIX_MS, max, wait_ms");
		return;
	}
	if (q.group[0] && http_group_param(r, q.group, r->group, sizeof(r->group)) < 0)
		return;
	st.group = r->group;
	rc = http_resolve_start(r->conn->fe, r->topic, (uint32_t)part, &st, &off);
	if (rc != SL_OK) {
		http_problem(r, 0, rc == SL_ECORRUPT ? SL_EINTERNAL : rc,
		             rc == SL_EINVAL ? "partition out of range" : sl_strerror(rc));
		return;
	}
	r->partition = (uint32_t)part;
	r->offset = off;
	m.topic = r->topic;
	m.partition = (uint32_t)part;
	m.offset = off;
	m.max_messages = max > 10000 ? 10000 : (uint32_t)max;
	m.wait_ms = wait > FE_FETCH_WAIT_MS_MAX ? FE_FETCH_WAIT_MS_MAX : (uint32_t)wait;
	f.body_case = SLUICE__FRAME__BODY_FETCH;
	f.fetch = &m;
	send_or_fail(r, HK_FETCH, &f);
}

static void on_fetch_one(struct http_req *r)
{
	Sluice__Fetch m = SLUICE__FETCH__INIT;
	Sluice__Frame f = SLUICE__FRAME__INIT;
	uint64_t part, off;

	if (http_topic_param(r, r->params[0], r->topic, sizeof(r->topic)) < 0)
		return;
	if (http_parse_u64(r->params[1], &part) < 0 || part >= UINT32_MAX || http_parse_u64(r->params[2], &off) < 0) {
		http_problem(r, 400, SL_EINVAL, "partition and offset must be decimal numbers");
		return;
	}
	r->partition = (uint32_t)part;
	r->offset = off;
	m.topic = r->topic;
	m.partition = (uint32_t)part;
	m.offset = off;
	m.max_messages = 1;
	f.body_case = SLUICE__FRAME__BODY_FETCH;
	f.fetch = &m;
	send_or_fail(r, HK_FETCH_ONE, &f);
}

/* ---------- groups and cluster ---------- */

static void on_describe_group(struct http_req *r)
{
	Sluice__DescribeGroup m = SLUICE__DESCRIBE_GROUP__INIT;
	Sluice__Frame f = SLUICE__FRAME__INIT;

	if (http_group_param(r, r->params[0], r->group, sizeof(r->group)) < 0)
		return;
	m.group = r->group;
	f.body_case = SLUICE__FRAME__BODY_DESCRIBE_GROUP;
	f.describe_group = &m;
	send_or_fail(r, HK_GROUP, &f);
}

static void on_cluster(struct http_req *r)
{
	Sluice__ClusterStatus m = SLUICE__CLUSTER_STATUS__INIT;
	Sluice__Frame f = SLUICE__FRAME__INIT;

	f.body_case = SLUICE__FRAME__BODY_CLUSTER_STATUS;
	f.cluster_status = &m;
	send_or_fail(r, HK_CLUSTER, &f);
}

/* ---------- pages: metrics, AsyncAPI, the console ---------- */

typedef int (*page_render)(struct fe *fe, struct evbuffer *out);

static void on_page(struct http_req *r, page_render fn, const char *ctype)
{
	struct evbuffer *b = evbuffer_new();
	if (!b) {
		http_problem(r, 500, SL_ENOMEM, "out of memory");
		return;
	}
	int rc = fn(r->conn->fe, b);
	if (rc != SL_OK)
		http_problem(r, 500, rc, sl_strerror(rc));
	else
		http_respond_buf(r, 200, ctype, b);
	evbuffer_free(b);
}

static void on_metrics(struct http_req *r)
{
	if (http_auth_need(r, AUTH_VERB_CLUSTER, "cluster") < 0)
		return;
	on_page(r, fe_metrics_render, FE_METRICS_CONTENT_TYPE);
}

static void on_asyncapi(struct http_req *r)
{
	if (http_auth_need(r, 0, "") < 0)
		return;
	on_page(r, fe_asyncapi_render, "application/json");
}

static void on_console(struct http_req *r)
{
	char path[64];
	size_t n = r->path_len < sizeof(path) - 1 ? r->path_len : sizeof(path) - 1;
	memcpy(path, r->path, n);
	path[n] = 0;
	const struct fe_asset *a = fe_asset_find(path);
	if (!a) {
		http_problem(r, 404, SL_ENOTFOUND, "no such resource");
		return;
	}
	http_respond(r, 200, a->content_type, (const char *)a->bytes, a->len);
}
