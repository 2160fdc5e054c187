/*
 * cli_webhook.c: `sluice webhook create|list|describe|pause|resume|delete|
 * rotate-secret|replay` (docs/webhooks.md). A webhook is a durable consumer
 * whose settings carry where to POST; create builds the same description
 * POST /v1/webhooks takes and maps it with the same code (wh_create.c), so
 * both make the same webhook. A secret is printed once, when it is made.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

#include <jansson.h>
#include <sodium.h>

#include "cli.h"
#include "err.h"
#include "sluice/sluice.h"
#include "wh_create.h"
#include "wh_sign.h"

#define WH_CLI_SECRET_MAX 160

struct wh_result {
	int done, err;
	char msg[256];
	json_t *list;            /* list and describe: the webhooks, as the HTTP API shows them */
	int not_webhook;
};

void webhook_usage(FILE *f)
{
	fprintf(f,
	        "usage: sluice webhook create TOPIC URL [--name NAME] [--from earliest|latest|OFFSET|@UNIX_MS]\n"
	        "            [--secret whsec_...] [--ordered | --max-in-flight N] [--max-attempts N]\n"
	        "            [--schedule MS,MS,...] [--header K=V]... [--filter key-prefix=P | --filter header=K=V]\n"
	        "            [--timeout-ms MS] [--rate N]\n"
	        "       sluice webhook list\n"
	        "       sluice webhook describe NAME\n"
	        "       sluice webhook pause|resume|delete NAME\n"
	        "       sluice webhook rotate-secret NAME [--secret whsec_...]\n"
	        "       sluice webhook replay NAME --from earliest|latest|OFFSET|@UNIX_MS\n"
	        "  create: POSTs every message of TOPIC to URL, signed per Standard Webhooks; prints the\n"
	        "  name and the secret (made when not given: keep it, it is not shown again). Ordered by\n"
	        "  default (one request per partition at a time); --max-in-flight N sends up to N per\n"
	        "  partition at once. --schedule is the delay before each attempt (default 0,5000,300000,\n"
	        "  1800000,7200000,18000000,36000000,50400000,72000000,86400000, with jitter); after\n"
	        "  --max-attempts (default: the schedule's length) a message goes to TOPIC.dlq. --from\n"
	        "  defaults to latest. The node must allow the destination: loopback and private\n"
	        "  addresses need [webhooks] allow_private.\n"
	        "  rotate-secret: a new signing secret (printed); the previous one still signs until the\n"
	        "  next rotation. replay: deliver again from that position (what is in flight is dropped).\n");
}

static void done_cb(void *arg, int err, const char *errmsg)
{
	struct wh_result *r = arg;
	r->done = 1;
	r->err = err;
	if (err)
		snprintf(r->msg, sizeof(r->msg), "%s", errmsg ? errmsg : sluice_strerror(err));
}

static int wait_for(struct sluice_sync *s, int err, struct wh_result *r)
{
	if (err != SLUICE_OK) {
		snprintf(r->msg, sizeof(r->msg), "%s", sluice_strerror(err));
		return err;
	}
	cli_wait_done(s, &r->done);
	return r->err;
}

/* ---------- create ---------- */

struct create_args {
	json_t *desc;            /* the description, as POST /v1/webhooks takes it */
	json_t *headers, *filter;
	uint32_t schedule[WH_CREATE_SCHEDULE_MAX + 1];
	size_t nschedule;
};

static int parse_from(const char *s, json_t **out)
{
	uint64_t off;
	int64_t ms;
	if (!strcmp(s, "earliest") || !strcmp(s, "latest"))
		*out = json_string(s);
	else if (s[0] == '@' && cli_parse_i64(s + 1, &ms) == 0)
		*out = json_pack("{s:I}", "time", (json_int_t)ms);
	else if (cli_parse_u64(s, &off) == 0 && off <= INT64_MAX)
		*out = json_integer((json_int_t)off);
	else
		return -1;
	return 0;
}

static int parse_schedule(const char *s, struct create_args *a)
{
	char buf[512], *save = NULL;
	json_t *arr = json_array();
	if (strlen(s) >= sizeof(buf) || !arr) {
		json_decref(arr);
		return -1;
	}
	snprintf(buf, sizeof(buf), "%s", s);
	for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		uint32_t v;
		if (json_array_size(arr) > WH_CREATE_SCHEDULE_MAX || cli_parse_u32(tok, &v)) {
			json_decref(arr);
			return -1;
		}
		json_array_append_new(arr, json_integer(v));
	}
	json_object_set_new(a->desc, "schedule_ms", arr);
	return json_array_size(arr) ? 0 : -1;
}

/* "K=V" into obj; -1 without '='. */
static int parse_kv(const char *s, json_t *obj)
{
	const char *eq = strchr(s, '=');
	if (!eq || eq == s)
		return -1;
	char key[256];
	snprintf(key, sizeof(key), "%.*s", (int)(eq - s), s);
	json_object_set_new(obj, key, json_string(eq + 1));
	return 0;
}

static int parse_filter(const char *s, struct create_args *a)
{
	if (!strncmp(s, "key-prefix=", 11)) {
		json_object_set_new(a->filter, "key_prefix", json_string(s + 11));
		return 0;
	}
	if (!strncmp(s, "header=", 7)) {
		json_t *h = json_object();
		if (parse_kv(s + 7, h) < 0) {
			json_decref(h);
			return -1;
		}
		json_object_set_new(a->filter, "header", h);
		return 0;
	}
	return -1;
}

static int create_opt(int ch, const char *arg, struct create_args *a)
{
	uint32_t v;
	json_t *from;
	switch (ch) {
	case 'n': json_object_set_new(a->desc, "name", json_string(arg)); return 0;
	case 'f': return parse_from(arg, &from) ? -1 : json_object_set_new(a->desc, "from", from);
	case 'S': json_object_set_new(a->desc, "secret", json_string(arg)); return 0;
	case 'o': json_object_set_new(a->desc, "ordered", json_true()); return 0;
	case 'm': return cli_parse_u32(arg, &v) || !v ? -1 : json_object_set_new(a->desc, "max_in_flight", json_integer(v));
	case 'a': return cli_parse_u32(arg, &v) || !v ? -1 : json_object_set_new(a->desc, "max_attempts", json_integer(v));
	case 'c': return parse_schedule(arg, a);
	case 'H': return parse_kv(arg, a->headers);
	case 'F': return parse_filter(arg, a);
	case 't': return cli_parse_u32(arg, &v) || !v ? -1 : json_object_set_new(a->desc, "timeout_ms", json_integer(v));
	case 'r': return cli_parse_u32(arg, &v) ? -1 : json_object_set_new(a->desc, "rate_per_s", json_integer(v));
	default: return -1;
	}
}

static int create_send(const struct cli_global *g, const struct wh_create *w, const char *settings, const char *url,
                       const char *secret)
{
	struct sluice_consumer_cfg cfg = {0};
	struct sluice_sync *s;
	struct wh_result r = {0};
	cfg.topic = w->topic;
	cfg.shared = w->shared;
	cfg.max_in_flight = w->max_in_flight;
	cfg.max_deliveries = w->max_deliveries;
	cfg.ack_timeout_ms = w->ack_timeout_ms;
	cfg.schedule_ms = w->nschedule ? w->schedule_ms : NULL;
	cfg.schedule_n = w->nschedule;
	cfg.start = (enum sluice_start)w->start;
	cfg.offset = w->offset;
	cfg.timestamp_ms = w->timestamp_ms;
	cfg.webhook = settings;
	int rc = cli_connect(g, 0, &s);
	if (rc)
		return rc;
	int err = wait_for(s, sluice_consumer_create(sluice_sync_client(s), w->name, &cfg, done_cb, &r), &r);
	sluice_sync_close(s);
	if (err)
		return cli_report_err("webhook create", err, r.msg);
	if (g->json)
		cli_json_print(json_pack("{s:s,s:s,s:s,s:s}", "name", w->name, "topic", w->topic, "url", url, "secret", secret));
	else
		printf("created webhook %s: topic %s to %s\nsecret %s (shown once: the receiver verifies with it)\n",
		       w->name, w->topic, url, secret);
	return EX_OK;
}

static int cmd_create(const struct cli_global *g, int argc, char **argv)
{
	static const struct option lo[] = {
	    {"name", required_argument, 0, 'n'},         {"from", required_argument, 0, 'f'},
	    {"secret", required_argument, 0, 'S'},       {"ordered", no_argument, 0, 'o'},
	    {"max-in-flight", required_argument, 0, 'm'}, {"max-attempts", required_argument, 0, 'a'},
	    {"schedule", required_argument, 0, 'c'},     {"header", required_argument, 0, 'H'},
	    {"filter", required_argument, 0, 'F'},       {"timeout-ms", required_argument, 0, 't'},
	    {"rate", required_argument, 0, 'r'},         {0, 0, 0, 0}};
	struct create_args a = {json_object(), json_object(), json_object(), {0}, 0};
	struct wh_create w;
	char why[200], secret[WH_CLI_SECRET_MAX], *settings = NULL, *body = NULL;
	int ch, rc = EX_USAGE;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1)
		if (ch == '?' || create_opt(ch, optarg, &a) < 0)
			goto out;
	if (optind + 2 != argc)
		goto out;
	json_object_set_new(a.desc, "topic", json_string(argv[optind]));
	json_object_set_new(a.desc, "url", json_string(argv[optind + 1]));
	if (json_object_size(a.headers))
		json_object_set(a.desc, "headers", a.headers);
	if (json_object_size(a.filter))
		json_object_set(a.desc, "filter", a.filter);
	body = json_dumps(a.desc, JSON_COMPACT);
	if (!body || wh_create_decode(body, strlen(body), &w, &settings, secret, sizeof(secret), why, sizeof(why)) != SL_OK) {
		fprintf(stderr, "sluice: webhook create: %s\n", body ? why : "out of memory");
		rc = EX_USAGE;
		goto out;
	}
	if (!w.name[0]) {
		uint8_t rnd[6];
		randombytes_buf(rnd, sizeof(rnd));
		snprintf(w.name, sizeof(w.name), "wh-%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5]);
	}
	rc = create_send(g, &w, settings, argv[optind + 1], secret);
out:
	if (rc == EX_USAGE && !settings)
		webhook_usage(stderr);
	free(body);
	free(settings);
	json_decref(a.desc);
	json_decref(a.headers);
	json_decref(a.filter);
	return rc;
}

/* ---------- list, describe ---------- */

/* A webhook as the HTTP API shows it, or NULL if ci is a plain consumer. */
static json_t *webhook_json(const struct sluice_consumer_info *ci)
{
	json_error_t e;
	json_t *o = ci->cfg.webhook && ci->cfg.webhook[0] ? json_loads(ci->cfg.webhook, 0, &e) : NULL;
	if (!json_is_object(o)) {
		json_decref(o);
		return NULL;
	}
	json_t *parts = json_array(), *sched = json_array();
	json_array_append_new(sched, json_integer(0));
	for (size_t i = 0; i < ci->cfg.schedule_n; i++)
		json_array_append_new(sched, json_integer(ci->cfg.schedule_ms[i]));
	for (size_t i = 0; i < ci->parts_n; i++) {
		const struct sluice_consumer_partition *p = &ci->parts[i];
		json_array_append_new(parts, json_pack("{s:i,s:I,s:I,s:I,s:I,s:i,s:I,s:s,s:I}", "partition", (int)p->partition,
		                                       "delivered", (json_int_t)p->acked, "attempts", (json_int_t)p->delivered,
		                                       "retries", (json_int_t)p->redelivered, "dead_lettered",
		                                       (json_int_t)p->dead_lettered, "in_flight", (int)p->in_flight, "lag",
		                                       (json_int_t)p->lag, "last_error", p->last_error, "next_attempt_ms",
		                                       (json_int_t)p->next_due_ms));
	}
	json_object_set_new(o, "name", json_string(ci->name));
	json_object_set_new(o, "topic", json_string(ci->cfg.topic));
	json_object_set_new(o, "ordered", json_boolean(!ci->cfg.shared));
	if (ci->cfg.shared)
		json_object_set_new(o, "max_in_flight", json_integer(ci->cfg.max_in_flight));
	json_object_set_new(o, "max_attempts", json_integer(ci->cfg.max_deliveries));
	json_object_set_new(o, "schedule_ms", sched);
	json_object_set_new(o, "dead_letter_topic", json_string(ci->cfg.dead_letter_topic));
	json_object_set_new(o, "created_ms", json_integer(ci->created_ms));
	json_object_set_new(o, "partitions", parts);
	return o;
}

static void list_cb(void *arg, int err, const char *errmsg, const struct sluice_consumer_info *cis, size_t n)
{
	struct wh_result *r = arg;
	r->list = json_array();
	for (size_t i = 0; !err && i < n; i++) {
		json_t *w = webhook_json(&cis[i]);
		if (w)
			json_array_append_new(r->list, w);
		else if (n == 1)
			r->not_webhook = 1;
	}
	done_cb(arg, err, errmsg);
}

static uint64_t sum(json_t *w, const char *field)
{
	size_t i;
	json_t *p;
	uint64_t t = 0;
	json_array_foreach(json_object_get(w, "partitions"), i, p) t += (uint64_t)json_integer_value(json_object_get(p, field));
	return t;
}

static const char *str(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "";
}

/* Where a webhook delivers: its url, or each message's own for a callback webhook. */
static const char *dest(json_t *w)
{
	return json_is_true(json_object_get(w, "callback")) ? "(each message's sluice-callback-url)" : str(w, "url");
}

static void describe_text(json_t *w)
{
	size_t i;
	json_t *p, *v;
	const char *k;
	printf("webhook %s: topic %s to %s\n", str(w, "name"), str(w, "topic"), dest(w));
	printf("  %s%s%s; %s; max attempts %lld; %lld secret(s); timeout %lld ms\n",
	       json_is_true(json_object_get(w, "paused")) ? "paused" : "delivering",
	       str(w, "disabled_reason")[0] ? ": " : "", str(w, "disabled_reason"),
	       json_is_true(json_object_get(w, "ordered")) ? "ordered" : "shared",
	       (long long)json_integer_value(json_object_get(w, "max_attempts")),
	       (long long)json_integer_value(json_object_get(w, "secrets")),
	       (long long)json_integer_value(json_object_get(w, "timeout_ms")));
	printf("  schedule ms:");
	json_array_foreach(json_object_get(w, "schedule_ms"), i, v) printf(" %lld", (long long)json_integer_value(v));
	printf("\n");
	json_object_foreach(json_object_get(w, "headers"), k, v) printf("  header %s: %s\n", k, json_string_value(v));
	printf("  %-9s %10s %9s %8s %6s %9s %8s  %-19s %s\n", "partition", "delivered", "attempts", "retries", "dead",
	       "in flight", "lag", "next attempt", "last error");
	json_array_foreach(json_object_get(w, "partitions"), i, p)
	{
		char when[32] = "-";
		time_t t = (time_t)(json_integer_value(json_object_get(p, "next_attempt_ms")) / 1000);
		struct tm tm;
		if (t && localtime_r(&t, &tm))
			strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
		printf("  %-9lld %10lld %9lld %8lld %6lld %9lld %8lld  %-19s %s\n",
		       (long long)json_integer_value(json_object_get(p, "partition")),
		       (long long)json_integer_value(json_object_get(p, "delivered")),
		       (long long)json_integer_value(json_object_get(p, "attempts")),
		       (long long)json_integer_value(json_object_get(p, "retries")),
		       (long long)json_integer_value(json_object_get(p, "dead_lettered")),
		       (long long)json_integer_value(json_object_get(p, "in_flight")),
		       (long long)json_integer_value(json_object_get(p, "lag")), when, str(p, "last_error"));
	}
}

static int cmd_query(const struct cli_global *g, int argc, char **argv, int describe)
{
	struct sluice_sync *s;
	struct wh_result r = {0};
	size_t i;
	json_t *w;
	if ((describe && (argc != 2 || argv[1][0] == '-')) || (!describe && argc != 1)) {
		webhook_usage(stderr);
		return EX_USAGE;
	}
	int rc = cli_connect(g, 0, &s);
	if (rc)
		return rc;
	struct sluice_client *c = sluice_sync_client(s);
	int err = wait_for(s, describe ? sluice_consumer_describe(c, argv[1], list_cb, &r) : sluice_consumer_list(c, list_cb, &r),
	                   &r);
	sluice_sync_close(s);
	if (err) {
		json_decref(r.list);
		return cli_report_err(describe ? "webhook describe" : "webhook list", err, r.msg);
	}
	if (describe && r.not_webhook) {
		json_decref(r.list);
		fprintf(stderr, "sluice: webhook describe: %s is a durable consumer, not a webhook\n", argv[1]);
		return EX_DATAERR;
	}
	if (g->json)
		cli_json_print(describe ? json_incref(json_array_get(r.list, 0)) : json_pack("{s:O}", "webhooks", r.list));
	else if (describe)
		describe_text(json_array_get(r.list, 0));
	else
		json_array_foreach(r.list, i, w) printf("%-20s %-20s %-10s delivered %llu lag %llu  %s\n", str(w, "name"),
		                                        str(w, "topic"),
		                                        json_is_true(json_object_get(w, "paused")) ? "paused" : "delivering",
		                                        (unsigned long long)sum(w, "delivered"),
		                                        (unsigned long long)sum(w, "lag"), dest(w));
	json_decref(r.list);
	return EX_OK;
}

/* ---------- changes ---------- */

/* A request that answers Ok: pause, resume, rotate-secret, replay, delete. */
static int change(const struct cli_global *g, const char *what, const char *name, const char *patch, int seek_start,
                  uint64_t offset, int64_t ts, const char *done_text)
{
	struct sluice_sync *s;
	struct wh_result r = {0};
	int rc = cli_connect(g, 0, &s);
	if (rc)
		return rc;
	struct sluice_client *c = sluice_sync_client(s);
	int err;
	if (patch)
		err = sluice_webhook_update(c, name, patch, done_cb, &r);
	else if (seek_start >= 0)
		err = sluice_consumer_seek(c, name, (enum sluice_start)seek_start, offset, ts, done_cb, &r);
	else
		err = sluice_consumer_delete(c, name, done_cb, &r);
	err = wait_for(s, err, &r);
	sluice_sync_close(s);
	if (err == SLUICE_EINVAL && patch) {
		fprintf(stderr, "sluice: webhook %s: %s is not a webhook (or the change was refused: %s)\n", what, name, r.msg);
		return EX_DATAERR;
	}
	if (err)
		return cli_report_err(what, err, r.msg);
	if (g->json)
		cli_json_print(json_pack("{s:s,s:s}", "name", name, "change", what));
	else
		printf("%s %s\n", done_text, name);
	return EX_OK;
}

static int cmd_rotate(const struct cli_global *g, int argc, char **argv)
{
	static const struct option lo[] = {{"secret", required_argument, 0, 'S'}, {0, 0, 0, 0}};
	char secret[WH_CLI_SECRET_MAX] = "", patch[WH_CLI_SECRET_MAX + 32];
	struct wh_key k;
	int ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		if (ch != 'S' || strlen(optarg) >= sizeof(secret)) {
			webhook_usage(stderr);
			return EX_USAGE;
		}
		snprintf(secret, sizeof(secret), "%s", optarg);
	}
	if (optind + 1 != argc) {
		webhook_usage(stderr);
		return EX_USAGE;
	}
	if (!secret[0] && wh_secret_generate(secret, sizeof(secret)) != SL_OK)
		return cli_report_err("webhook rotate-secret", SLUICE_EINTERNAL, "could not make a secret");
	if (wh_key_parse(secret, &k) != SL_OK) {
		fprintf(stderr, "sluice: webhook rotate-secret: a secret is whsec_ and base64 of 24 to 64 bytes\n");
		return EX_USAGE;
	}
	snprintf(patch, sizeof(patch), "{\"rotate_secret\":\"%s\"}", secret);
	int rc = change(g, "rotate-secret", argv[optind], patch, -1, 0, 0, "new secret for");
	if (rc == EX_OK && !g->json)
		printf("secret %s (the previous one still signs until the next rotation)\n", secret);
	else if (rc == EX_OK)
		cli_json_print(json_pack("{s:s}", "secret", secret));
	return rc;
}

static int cmd_replay(const struct cli_global *g, int argc, char **argv)
{
	static const struct option lo[] = {{"from", required_argument, 0, 'f'}, {0, 0, 0, 0}};
	const char *from = NULL;
	int ch, start;
	uint64_t off = 0;
	int64_t ts = 0;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		if (ch != 'f') {
			webhook_usage(stderr);
			return EX_USAGE;
		}
		from = optarg;
	}
	if (optind + 1 != argc || !from) {
		webhook_usage(stderr);
		return EX_USAGE;
	}
	if (!strcmp(from, "earliest"))
		start = SLUICE_EARLIEST;
	else if (!strcmp(from, "latest"))
		start = SLUICE_LATEST;
	else if (from[0] == '@' && cli_parse_i64(from + 1, &ts) == 0)
		start = SLUICE_TIMESTAMP;
	else if (cli_parse_u64(from, &off) == 0)
		start = SLUICE_OFFSET;
	else {
		webhook_usage(stderr);
		return EX_USAGE;
	}
	return change(g, "replay", argv[optind], NULL, start, off, ts, "replaying");
}

int webhook_main(const struct cli_global *g, int argc, char **argv)
{
	if (argc < 2 || cli_want_help(argc, argv)) {
		webhook_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? EX_USAGE : EX_OK;
	}
	const char *sub = argv[1];
	int sargc = argc - 1;
	char **sargv = argv + 1;
	if (!strcmp(sub, "create"))
		return cmd_create(g, sargc, sargv);
	if (!strcmp(sub, "list"))
		return cmd_query(g, sargc, sargv, 0);
	if (!strcmp(sub, "describe"))
		return cmd_query(g, sargc, sargv, 1);
	if (!strcmp(sub, "rotate-secret"))
		return cmd_rotate(g, sargc, sargv);
	if (!strcmp(sub, "replay"))
		return cmd_replay(g, sargc, sargv);
	if ((!strcmp(sub, "pause") || !strcmp(sub, "resume") || !strcmp(sub, "delete")) && sargc == 2 &&
	    sargv[1][0] != '-') {
		if (!strcmp(sub, "delete"))
			return change(g, "delete", sargv[1], NULL, -1, 0, 0, "deleted webhook");
		return change(g, sub, sargv[1],
		              !strcmp(sub, "pause") ? "{\"paused\":true}" : "{\"paused\":false,\"disabled_reason\":null}", -1, 0,
		              0, !strcmp(sub, "pause") ? "paused webhook" : "resumed webhook");
	}
	webhook_usage(stderr);
	return EX_USAGE;
}
