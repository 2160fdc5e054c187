/*
 * web_test.c: what the frontend serves beside the protocols, checked on a
 * real node: the Prometheus metrics (counters equal to what was published
 * and read, histogram counts, raft and connection figures, and the text
 * passes `promtool check metrics`) and the AsyncAPI document (one channel
 * per topic with send and receive operations, the same from the frontend's
 * renderer as from `sluice asyncapi`, and valid for @asyncapi/parser).
 *
 * The renderers run in this process on the node's own state: the test maps
 * the node's shared segment (the master's memfd, through /proc) and opens
 * its store read-only, as a frontend does, so they see exactly what a
 * frontend of the node would serve on GET /metrics and /v1/asyncapi.json.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <dirent.h>
#include <event2/buffer.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "fe_int.h"
#include "fe_pages.h"
#include "harness.h"
#include "shm.h"
#include "sluice/sluice.h"
#include "store.h"

#define WEB_HTTP_ADDR "127.0.0.1:8499"

static struct itest_node node;
static struct sluice_sync *sy;
static struct config cfg;
static struct shm shm;
static struct fe fe;

static void setup(void)
{
	struct sluice_client_opts o = {0};

	cr_assert_eq(itest_node_init(&node), 0);
	node.frontends = 2;
	cr_assert_eq(itest_node_start(&node), 0, "sluiced did not become ready");
	o.servers = node.addr;
	cr_assert_eq(sluice_sync_open(&o, &sy), 0, "sync open");
}

static void teardown(void)
{
	if (fe.store)
		store_close(fe.store);
	if (shm.base)
		shm_detach(&shm);
	memset(&fe, 0, sizeof(fe));
	if (sy)
		sluice_sync_close(sy);
	sy = NULL;
	itest_node_destroy(&node);
}

TestSuite(web, .init = setup, .fini = teardown, .timeout = 120);

/* ---- helpers ---- */

/* The config a frontend of the node runs with (what matters to the pages). */
static void node_config(struct config *c)
{
	char err[256];

	config_defaults(c);
	snprintf(c->data_dir, sizeof(c->data_dir), "%s", node.data_dir);
	snprintf(c->listen_native, sizeof(c->listen_native), "%s", node.addr);
	cr_assert_eq(config_set(c, "", "http", WEB_HTTP_ADDR, err, sizeof(err)), 0, "%s", err);
}

/* Map the master's shared segment: the memfd among its descriptors. */
static void shm_map_node(void)
{
	char dir[64], path[400], target[256];
	struct dirent *d;
	DIR *dp;
	int fd = -1;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)node.pid);
	dp = opendir(dir);
	cr_assert_not_null(dp);
	while (fd < 0 && (d = readdir(dp))) {
		ssize_t n;
		snprintf(path, sizeof(path), "%s/%s", dir, d->d_name);
		n = readlink(path, target, sizeof(target) - 1);
		if (n > 0 && (target[n] = 0, strncmp(target, "/memfd:sluice-shm", 17) == 0))
			fd = open(path, O_RDWR);
	}
	closedir(dp);
	cr_assert_geq(fd, 0, "the master's shared segment was not found");
	cr_assert_eq(shm_attach(&shm, fd), 0);
	close(fd);
}

/* A frontend-shaped view of the node: its segment, its store, frontend 0. */
static void fe_attach(void)
{
	struct store_opts o = {0};

	node_config(&cfg);
	shm_map_node();
	o.dir = node.data_dir;
	o.map_bytes = cfg.map_bytes;
	o.readonly = 1;
	o.slots_max = cfg.partitions_max;
	memset(&fe, 0, sizeof(fe));
	fe.cfg = &cfg;
	fe.shm = &shm;
	fe.index = 0;
	cr_assert_eq(store_open(&fe.store, &o), 0);
}

static char *render(int (*fn)(struct fe *, struct evbuffer *))
{
	struct evbuffer *b = evbuffer_new();
	size_t n;
	char *s;

	cr_assert_not_null(b);
	cr_assert_eq(fn(&fe, b), 0);
	n = evbuffer_get_length(b);
	s = malloc(n + 1);
	cr_assert_not_null(s);
	evbuffer_remove(b, s, n);
	s[n] = 0;
	evbuffer_free(b);
	return s;
}

/* The value of the sample whose name and labels are exactly `series`; -1 if absent. */
static double sample(const char *text, const char *series)
{
	size_t n = strlen(series);

	for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (strncmp(p, series, n) == 0 && p[n] == ' ')
			return strtod(p + n + 1, NULL);
	return -1;
}

static void publish(const char *topic, int part, const char *key, const char *payload, const struct sluice_header *h,
                    size_t hn)
{
	struct sluice_pub p;
	char em[256] = "";

	itest_pub_fill(&p, topic, part, key, payload, h, hn);
	cr_assert_eq(sluice_sync_publish(sy, &p, NULL, NULL, em, sizeof(em)), 0, "publish: %s", em);
}

static void create_topic(const char *name, uint32_t parts)
{
	char em[256] = "";
	cr_assert_eq(sluice_sync_topic_create(sy, name, parts, 0, 0, em, sizeof(em)), 0, "create %s: %s", name, em);
}

static void count_msg(void *arg, const struct sluice_msg *m)
{
	(*(size_t *)arg)++;
}

/* Write text to a temp file under the node's dir; the path is in out. */
static void write_file(const char *name, const char *text, char *out, size_t cap)
{
	FILE *f;

	snprintf(out, cap, "%s/%s", node.dir, name);
	f = fopen(out, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
}

/* Lines of a histogram are cumulative and its count is its +Inf bucket. */
static void assert_histogram(const char *text, const char *name, double count)
{
	char series[160];
	double prev = 0;
	const char *les[] = {"0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025",
	                     "0.05",   "0.1",     "0.25",   "0.5",   "1",      "2.5",   "5",    "10", "+Inf"};

	for (size_t i = 0; i < sizeof(les) / sizeof(les[0]); i++) {
		snprintf(series, sizeof(series), "%s_bucket{le=\"%s\"}", name, les[i]);
		double v = sample(text, series);
		cr_assert_geq(v, prev, "%s not cumulative (%g after %g)", series, v, prev);
		prev = v;
	}
	snprintf(series, sizeof(series), "%s_count", name);
	cr_assert_eq(sample(text, series), prev, "%s_count is not its +Inf bucket", name);
	if (count >= 0)
		cr_assert_eq(prev, count, "%s counted %g, want %g", name, prev, count);
	snprintf(series, sizeof(series), "%s_sum", name);
	cr_assert_geq(sample(text, series), 0);
}

Test(web, metrics_count_what_was_published_and_read)
{
	struct sluice_header h = {"source", {(const uint8_t *)"test", 4}};
	char payload[32], em[256] = "", path[300];
	size_t fetched = 0;
	uint64_t end;

	create_topic("orders", 3);
	create_topic("audit.log", 1);
	for (int i = 0; i < 30; i++) {
		snprintf(payload, sizeof(payload), "payload-%02d", i); /* 10 bytes, +1 key byte */
		publish("orders", i % 3, "k", payload, NULL, 0);
	}
	for (int i = 0; i < 5; i++) {
		snprintf(payload, sizeof(payload), "audit-%d", i); /* 7 bytes + 16 of header blob */
		publish("audit.log", -1, NULL, payload, &h, 1);
	}
	for (uint32_t p = 0; p < 3; p++)
		cr_assert_eq(sluice_sync_fetch(sy, "orders", p, 0, 1000, 0, count_msg, &fetched, &end, em, sizeof(em)), 0,
		             "%s", em);
	cr_assert_eq(fetched, 30);

	fe_attach();
	fe_metrics_http(&fe, "/v1/topics/{topic}/messages", 201);
	fe_metrics_http(&fe, "/v1/topics/{topic}/messages", 201);
	fe_metrics_http(&fe, "/metrics", 200);
	fe_metrics_conn(&fe, METRICS_PROTO_SSE, 1);
	char *text = render(fe_metrics_render);

	cr_assert_eq(sample(text, "sluice_topic_published_messages_total{topic=\"orders\"}"), 30, "%s", text);
	cr_assert_eq(sample(text, "sluice_topic_published_bytes_total{topic=\"orders\"}"), 330);
	cr_assert_eq(sample(text, "sluice_topic_delivered_messages_total{topic=\"orders\"}"), 30);
	cr_assert_eq(sample(text, "sluice_topic_delivered_bytes_total{topic=\"orders\"}"), 330);
	cr_assert_eq(sample(text, "sluice_topic_partitions{topic=\"orders\"}"), 3);
	cr_assert_eq(sample(text, "sluice_topic_published_messages_total{topic=\"audit.log\"}"), 5);
	cr_assert_eq(sample(text, "sluice_topic_published_bytes_total{topic=\"audit.log\"}"), 5 * 23);
	cr_assert_eq(sample(text, "sluice_topic_delivered_messages_total{topic=\"audit.log\"}"), 0);
	cr_assert_eq(sample(text, "sluice_topics"), 2);
	assert_histogram(text, "sluice_publish_ack_duration_seconds", 35);
	assert_histogram(text, "sluice_storage_commit_duration_seconds", -1);
	cr_assert_geq(sample(text, "sluice_storage_commit_duration_seconds_count"), 35, "one commit per sync publish");
	cr_assert_eq(sample(text, "sluice_frontend_acked_messages_total{frontend=\"0\"}") +
	                 sample(text, "sluice_frontend_acked_messages_total{frontend=\"1\"}"),
	             35);
	cr_assert_eq(sample(text, "sluice_raft_term"), 0);
	cr_assert_eq(sample(text, "sluice_raft_is_leader"), 1);
	cr_assert_eq(sample(text, "sluice_raft_leader_id"), 1);
	cr_assert_geq(sample(text, "sluice_connections{protocol=\"native\"}"), 1);
	cr_assert_eq(sample(text, "sluice_connections{protocol=\"sse\"}"), 1);
	cr_assert_geq(sample(text, "sluice_connections_accepted_total{protocol=\"native\"}"), 1);
	cr_assert_eq(sample(text, "sluice_http_requests_total{route=\"/v1/topics/{topic}/messages\",status=\"201\"}"), 2);
	cr_assert_eq(sample(text, "sluice_http_requests_total{route=\"/metrics\",status=\"200\"}"), 1);
	cr_assert_eq(sample(text, "sluice_ring_used_bytes{frontend=\"1\",ring=\"publish\"}"), 0, "nothing waits");
	cr_assert_gt(sample(text, "sluice_storage_used_bytes"), 0);
	cr_assert_gt(sample(text, "sluice_storage_map_bytes"), 0);

	fe_metrics_conn(&fe, METRICS_PROTO_SSE, -1);
	free(text);
	text = render(fe_metrics_render);
	cr_assert_eq(sample(text, "sluice_connections{protocol=\"sse\"}"), 0);

	/* the exposition format as Prometheus itself checks it (Debian package prometheus) */
	struct itest_run r;
	const char *argv[] = {PROMTOOL_BIN, "check", "metrics", NULL};
	cr_assert(PROMTOOL_BIN[0], "promtool not found: apt-get install prometheus (tests/run.sh does)");
	write_file("metrics.txt", text, path, sizeof(path));
	cr_assert_eq(itest_run(argv, NULL, path, NULL, 0, 30000, &r), 0);
	cr_assert_eq(r.status, 0, "promtool check metrics:\n%.*s%.*s\n%s", (int)r.out_len, r.out ? r.out : "",
	             (int)r.err_len, r.err ? r.err : "", text);
	itest_run_free(&r);
	free(text);
}

/* The channel of doc whose address is address, or NULL. */
static json_t *channel_at(json_t *doc, const char *address, const char **id)
{
	json_t *ch;
	const char *k;

	json_object_foreach(json_object_get(doc, "channels"), k, ch)
	{
		const char *a = json_string_value(json_object_get(ch, "address")); /* graphql's is null */
		if (a && strcmp(a, address) == 0) {
			*id = k;
			return ch;
		}
	}
	return NULL;
}

/* The action of the operations of doc on channel id, as "receive,send". */
static void channel_actions(json_t *doc, const char *id, char *out, size_t cap)
{
	char want[300];
	json_t *op;
	const char *k;
	int recv = 0, send = 0;

	snprintf(want, sizeof(want), "#/channels/%s", id);
	json_object_foreach(json_object_get(doc, "operations"), k, op) {
		const char *r = json_string_value(json_object_get(json_object_get(op, "channel"), "$ref"));
		const char *a = json_string_value(json_object_get(op, "action"));
		if (r && a && strcmp(r, want) == 0) {
			recv += strcmp(a, "receive") == 0;
			send += strcmp(a, "send") == 0;
		}
	}
	snprintf(out, cap, "receive:%d,send:%d", recv, send);
}

Test(web, asyncapi_has_a_channel_per_topic_and_validates)
{
	const char *topics[] = {"orders", "audit.log", "audit_log"};
	char http[64], path[300], actions[64];
	const char *id = NULL;
	struct itest_run r;
	json_error_t jerr;

	create_topic("orders", 3);
	create_topic("audit.log", 1);
	create_topic("audit_log", 2); /* same channel id as audit.log once '.' is mapped: must stay distinct */
	publish("orders", 0, NULL, "x", NULL, 0);
	fe_attach();
	char *text = render(fe_asyncapi_render);

	/* `sluice asyncapi` with the node's flags prints the very same document */
	snprintf(http, sizeof(http), "%s", WEB_HTTP_ADDR);
	const char *argv[] = {SLUICE_BIN, "asyncapi", "--data-dir", node.data_dir, "--listen", node.addr, "--http", http, NULL};
	cr_assert_eq(itest_run(argv, NULL, NULL, NULL, 0, 30000, &r), 0);
	cr_assert_eq(r.status, 0, "sluice asyncapi: %.*s", (int)r.err_len, r.err ? r.err : "");
	cr_assert_eq(r.out_len, strlen(text));
	cr_assert(memcmp(r.out, text, r.out_len) == 0, "CLI and frontend documents differ");
	itest_run_free(&r);

	json_t *doc = json_loads(text, 0, &jerr);
	cr_assert_not_null(doc, "%s", jerr.text);
	cr_assert_str_eq(json_string_value(json_object_get(doc, "asyncapi")), "3.0.0");
	cr_assert_str_eq(json_string_value(json_object_get(json_object_get(json_object_get(doc, "servers"), "native"),
	                                                   "host")),
	                 node.addr);
	cr_assert_str_eq(json_string_value(json_object_get(json_object_get(json_object_get(doc, "servers"), "http"),
	                                                   "host")),
	                 WEB_HTTP_ADDR);
	cr_assert_not_null(json_object_get(json_object_get(doc, "servers"), "sse"));
	cr_assert_str_eq(json_string_value(json_object_get(json_object_get(json_object_get(doc, "servers"), "ws"),
	                                                   "pathname")),
	                 "/v1/ws");
	cr_assert_str_eq(json_string_value(json_object_get(json_object_get(json_object_get(doc, "servers"), "graphql"),
	                                                   "protocol")),
	                 "ws");
	/* one channel per topic, and the GraphQL endpoint's */
	cr_assert_eq(json_object_size(json_object_get(doc, "channels")), 4);
	channel_actions(doc, "graphql", actions, sizeof(actions));
	cr_assert_str_eq(actions, "receive:1,send:0");
	for (size_t i = 0; i < 3; i++) {
		json_t *ch = channel_at(doc, topics[i], &id);
		cr_assert_not_null(ch, "no channel for %s", topics[i]);
		cr_assert_str_eq(json_string_value(json_object_get(ch, "x-sluice-topic")), topics[i]);
		json_t *msg = json_object_get(json_object_get(ch, "messages"), "message");
		cr_assert_not_null(json_object_get(msg, "headers"));
		cr_assert_not_null(json_object_get(msg, "payload"));
		cr_assert_not_null(json_object_get(msg, "x-sluice-key"));
		channel_actions(doc, id, actions, sizeof(actions));
		cr_assert_str_eq(actions, "receive:1,send:1", "%s: %s", topics[i], actions);
	}
	cr_assert_eq(json_integer_value(json_object_get(channel_at(doc, "orders", &id), "x-sluice-partitions")), 3);
	json_decref(doc);

	/* @asyncapi/parser (npm, pinned in tests/web) finds no error */
	const char *vargv[] = {NODE_BIN, SLUICE_SOURCE_DIR "/tests/web/validate-asyncapi.mjs", path, "orders", "audit.log",
	                       "audit_log", NULL};
	cr_assert(NODE_BIN[0], "node not found (apt-get install nodejs)");
	cr_assert(access(SLUICE_SOURCE_DIR "/tests/web/node_modules/@asyncapi/parser", F_OK) == 0,
	          "run `npm ci` in tests/web first (tests/run.sh does)");
	write_file("asyncapi.json", text, path, sizeof(path));
	cr_assert_eq(itest_run(vargv, NULL, NULL, NULL, 0, 60000, &r), 0);
	cr_assert_eq(r.status, 0, "@asyncapi/parser:\n%.*s%.*s", (int)r.out_len, r.out ? r.out : "", (int)r.err_len,
	             r.err ? r.err : "");
	itest_run_free(&r);
	free(text);
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *s;
	long n;

	cr_assert_not_null(f, "%s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	s = malloc((size_t)n + 1);
	cr_assert_not_null(s);
	cr_assert_eq(fread(s, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return s;
}

Test(web, console_is_embedded_as_written)
{
	static const struct {
		const char *path, *file, *type;
	} want[] = {
	    {"/", "index.html", "text/html; charset=utf-8"},
	    {"/index.html", "index.html", "text/html; charset=utf-8"},
	    {"/console.js", "console.js", "text/javascript; charset=utf-8"},
	    {"/console.css", "console.css", "text/css; charset=utf-8"},
	};
	char file[600];

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		const struct fe_asset *a = fe_asset_find(want[i].path);
		size_t n;
		cr_assert_not_null(a, "%s not embedded", want[i].path);
		snprintf(file, sizeof(file), "%s/broker/frontend/console/%s", SLUICE_SOURCE_DIR, want[i].file);
		char *s = slurp(file, &n);
		cr_assert_eq(a->len, n, "%s", want[i].path);
		cr_assert(memcmp(a->bytes, s, n) == 0, "%s differs from %s", want[i].path, file);
		cr_assert_str_eq(a->content_type, want[i].type);
		free(s);
	}
	cr_assert_null(fe_asset_find("/nope"));
	cr_assert_null(fe_asset_find(""));

	/* the page's script parses (node --check: syntax only, no browser needed) */
	struct itest_run r;
	snprintf(file, sizeof(file), "%s/broker/frontend/console/console.js", SLUICE_SOURCE_DIR);
	const char *argv[] = {NODE_BIN, "--check", file, NULL};
	cr_assert(NODE_BIN[0], "node not found (apt-get install nodejs)");
	cr_assert_eq(itest_run(argv, NULL, NULL, NULL, 0, 30000, &r), 0);
	cr_assert_eq(r.status, 0, "console.js: %.*s", (int)r.err_len, r.err ? r.err : "");
	itest_run_free(&r);
}
