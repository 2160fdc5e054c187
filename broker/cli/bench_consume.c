/*
 * bench_consume.c: `sluice bench consume` and `sluice bench webhook`, the
 * throughput of reliable push (durable consumers, docs/consumers.md, and
 * webhooks, docs/webhooks.md) beside a plain subscription in the same run.
 *
 * consume: a consumer is created at the topic's end (shared with a large
 *   max_in_flight by default, or ordered), --count messages are published
 *   (libsluice batching, spread evenly over the partitions), a plain
 *   subscription reads them back from where they start (timed), then the
 *   consumer takes them: --pulls pulls outstanding of up to --pull-max
 *   messages each, every message acknowledged by its own AckItem, all the
 *   items of one pull in one AckMessages request (the logwriter puts every
 *   request it drains in one turn into one log entry). Timed until every
 *   message's first delivery is acknowledged. Latency is per message, from
 *   sending the pull that took it to the answer of its ack (the delivery
 *   and the ack both durable in the log).
 * webhook: a local receiver (libevent evhttp on 127.0.0.1, port chosen by
 *   the kernel) answers 200 at once and counts requests; a webhook pointing
 *   at it is created at the topic's end, --count messages are published,
 *   and the deliveries are timed from the first request to the last. The
 *   node must run with `--webhook-allow-private true` (a loopback receiver
 *   is refused otherwise). Signatures are not checked: this measures the
 *   delivery path, not the receiver.
 *
 * With --pid MASTER_PID (or --logwriter-pid PID) the bench reads the
 * logwriter's write_bytes (/proc/PID/io: bytes the process sent towards the
 * disk, LMDB pages and metadata included) around the publish and consume
 * phases: log bytes per published and per acknowledged message. It sees
 * one node's logwriter, the one on this machine it was given.
 *
 * The consumer (or webhook) is deleted at the end; the topic is kept, as
 * `bench pub` keeps its own. Every wait is bounded: no progress for
 * BC_STALL_MS ends the run with what was reached (exit status 65).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sysexits.h>
#include <time.h>

#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>
#include <sodium.h>

#include "cli.h"
#include "err.h"
#include "sl_assert.h"
#include "sluice/sluice.h"
#include "wh_sign.h"

#define BC_COUNT_DEFAULT 100000
#define BC_WH_COUNT_DEFAULT 10000
#define BC_COUNT_MAX 100000000ull
#define BC_SIZE_DEFAULT 100
#define BC_SIZE_MAX (1u << 20)
#define BC_PARTITIONS_MAX 1024
#define BC_PUB_WINDOW 4000            /* publishes in flight */
#define BC_MAX_IN_FLIGHT_DEFAULT 10000 /* consume --shared: per partition */
#define BC_IN_FLIGHT_MAX 65536
#define BC_PULL_MAX 1000              /* the server's limit per pull and per ack request */
#define BC_PULLS_DEFAULT 4
#define BC_PULLS_MAX 64
#define BC_PULL_WAIT_MS 1000
#define BC_ACK_TIMEOUT_MS 300000      /* no redelivery while the bench runs */
#define BC_WH_TIMEOUT_MS 15000        /* the webhook's request timeout (its default) */
#define BC_WH_DELIVERIES_MAX 10
#define BC_STALL_MS 30000
#define BC_SAMPLES_MAX (16u << 20)
#define BC_NAME_CHARS 64

enum bc_mode { BC_CONSUME, BC_WEBHOOK };

/* Two counters of /proc/PID/io (-1: not read). write_bytes is the page
 * cache the process dirtied (a dirtied folio counts whole); wchar is what
 * it passed to write calls (LMDB writes whole pages; the logwriter's other
 * writes are a few eventfd and socket bytes). */
struct bc_io {
	long long write_bytes, wchar;
};
enum bc_phase { BC_PH_PUBLISH, BC_PH_SUB, BC_PH_CONSUME, BC_PH_WEBHOOK };

struct bcons {
	const struct cli_global *g;
	enum bc_mode mode;
	enum bc_phase phase;
	char topic[128], name[BC_NAME_CHARS];
	uint32_t partitions, size, max_in_flight, pull_max, pulls;
	int shared;
	uint64_t count;
	int master_pid, lw_pid;
	struct event_base *base;
	struct sluice_sync *admin;     /* topic, consumer create and delete: on its own base */
	struct sluice_client *pc, *sc; /* publisher and puller; plain subscriber */
	uint64_t start_offsets[BC_PARTITIONS_MAX];
	uint8_t *payload;
	uint64_t pub_sent, pub_acked, pub_failed;
	struct event *pub_fill_ev, *stall_ev;
	uint64_t progress, progress_seen;
	int stalled_s, first_err;
	uint64_t sub_received;
	uint64_t pulled, pulled_first, redelivered, acked, pulls_made, ack_requests;
	uint32_t pulls_out;
	struct sluice_ack_item items[BC_PULL_MAX];
	uint64_t *lat;
	size_t lat_n, lat_cap;
	struct evhttp *http;
	uint16_t http_port;
	uint64_t wh_requests, wh_delivered, wh_redelivered;
	uint64_t t_pub0, t_pub1, t_sub0, t_sub1, t_cons0, t_cons1, t_wh_first, t_wh_last;
	struct bc_io io_pub0, io_pub1, io_cons0, io_cons1;
};

/* One pull in flight: what its answer needs. */
struct bc_pullctx {
	struct bcons *b;
	uint64_t sent_ns;
};

/* One AckMessages in flight: what its answer needs. */
struct bc_ack {
	struct bcons *b;
	uint64_t pull_sent_ns;
	uint32_t n, first;
};

static uint64_t bc_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void bench_consume_usage(FILE *f)
{
	fprintf(f,
		"usage: sluice bench consume [--topic T] [--partitions N] [--size B] [--count N] [--shared | --ordered]\n"
		"                            [--max-in-flight N] [--pull-max N] [--pulls N]\n"
		"                            [--pid MASTER_PID | --logwriter-pid PID]\n"
		"       sluice bench webhook [--topic T] [--partitions N] [--size B] [--count N]\n"
		"                            [--ordered | --shared | --max-in-flight N]\n"
		"                            [--pid MASTER_PID | --logwriter-pid PID]\n"
		"  consume: publishes --count (%d) messages of --size (%d) bytes over --partitions (1), reads\n"
		"  them with a plain subscription, then with a durable consumer: shared (the default,\n"
		"  --max-in-flight %d per partition) or --ordered, --pulls (%d) pulls outstanding of up to\n"
		"  --pull-max (%d) messages, each message acked by its own item, one ack request per pull.\n"
		"  JSON: mode topic consumer partitions size count shared max_in_flight pull_max pulls\n"
		"  published publish_s publish_msgs_per_s subscribed subscribe_s subscribe_msgs_per_s\n"
		"  acked redelivered pulls_made ack_requests consume_s msgs_per_s (acked per second)\n"
		"  acked_vs_subscribe latency_ms{p50,p99,max,samples} (pull sent -> its ack answered)\n"
		"  logwriter_pid log_bytes_publish log_bytes_consume log_bytes_per_published\n"
		"  log_bytes_per_acked log_bytes_per_request (the logwriter's write_bytes; log_wchar_*: its\n"
		"  wchar, bytes passed to write calls; null without --pid / --logwriter-pid).\n"
		"  webhook: a receiver on 127.0.0.1 answers 200; a webhook (ordered by default; --shared or\n"
		"  --max-in-flight N (%d) per partition) delivers --count (%d) messages to it. The node must run\n"
		"  with --webhook-allow-private true. JSON: mode topic webhook partitions size count ordered\n"
		"  max_in_flight receiver published delivered requests redelivered first_delivery_ms\n"
		"  seconds (first request to last) deliveries_per_s logwriter_pid log_bytes_per_published\n"
		"  log_bytes_per_delivered (from the last publish's ack to the last delivery), log_wchar_*.\n"
		"  Exit status 65 if not every message was acked (delivered) before %d s without progress.\n",
		BC_COUNT_DEFAULT, BC_SIZE_DEFAULT, BC_MAX_IN_FLIGHT_DEFAULT, BC_PULLS_DEFAULT, BC_PULL_MAX,
		BC_MAX_IN_FLIGHT_DEFAULT, BC_WH_COUNT_DEFAULT, BC_STALL_MS / 1000);
}

/* ---------- measurements ---------- */

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static double bc_pct_ms(const struct bcons *b, double pct)
{
	if (b->lat_n == 0)
		return 0;
	size_t i = (size_t)(pct / 100.0 * (double)b->lat_n);
	return (double)b->lat[i < b->lat_n ? i : b->lat_n - 1] / 1e6;
}

static struct bc_io bc_io_read(int pid)
{
	char path[64], line[128];
	struct bc_io io = {-1, -1};
	if (pid <= 0)
		return io;
	snprintf(path, sizeof(path), "/proc/%d/io", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return io;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "write_bytes: %lld", &io.write_bytes) != 1)
			sscanf(line, "wchar: %lld", &io.wchar);
	fclose(f);
	return io;
}

/* The master's child named sluice-logwriter (comm is cut to 15 bytes). */
static int bc_find_logwriter(int master)
{
	char path[64], comm[32];
	int pid, found = 0;
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", master, master);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	while (!found && fscanf(f, "%d", &pid) == 1) {
		snprintf(path, sizeof(path), "/proc/%d/comm", pid);
		FILE *c = fopen(path, "r");
		if (c && fgets(comm, sizeof(comm), c) && !strncmp(comm, "sluice-logw", 11))
			found = pid;
		if (c)
			fclose(c);
	}
	fclose(f);
	return found;
}

/* ---------- phases ---------- */

static void bc_stop(struct bcons *b, int err, const char *what, const char *errmsg)
{
	if (err && !b->first_err) {
		b->first_err = err;
		fprintf(stderr, "sluice bench %s: %s: %s\n", b->mode == BC_WEBHOOK ? "webhook" : "consume", what,
			errmsg ? errmsg : sluice_strerror(err));
	}
	event_base_loopbreak(b->base);
}

static int bc_phase_done(const struct bcons *b)
{
	switch (b->phase) {
	case BC_PH_PUBLISH:
		return b->pub_acked + b->pub_failed >= b->count;
	case BC_PH_SUB:
		return b->sub_received >= b->count;
	case BC_PH_CONSUME:
		return b->acked >= b->count;
	case BC_PH_WEBHOOK:
		return b->pub_acked + b->pub_failed >= b->count && b->wh_delivered >= b->count;
	}
	return 1;
}

static void bc_check_done(struct bcons *b)
{
	b->progress++;
	if (!bc_phase_done(b))
		return;
	uint64_t now = bc_now_ns();
	if (b->phase == BC_PH_SUB)
		b->t_sub1 = now;
	if (b->phase == BC_PH_CONSUME)
		b->t_cons1 = now;
	event_base_loopbreak(b->base);
}

/* Every second: end the phase after BC_STALL_MS without progress. */
static void bc_stall_cb(evutil_socket_t fd, short what, void *arg)
{
	struct bcons *b = arg;
	if (b->progress != b->progress_seen) {
		b->progress_seen = b->progress;
		b->stalled_s = 0;
		return;
	}
	if (++b->stalled_s * 1000 < BC_STALL_MS)
		return;
	fprintf(stderr, "sluice bench: no progress for %d s; giving up%s\n", BC_STALL_MS / 1000,
		b->phase == BC_PH_WEBHOOK && !b->wh_requests
			? " (no request reached the receiver: does the node run with --webhook-allow-private true?)"
			: "");
	event_base_loopbreak(b->base);
}

static void bc_run_phase(struct bcons *b, enum bc_phase ph)
{
	struct timeval sec = {1, 0};
	b->phase = ph;
	b->stalled_s = 0;
	b->progress_seen = b->progress;
	evtimer_add(b->stall_ev, &sec);
	if (!bc_phase_done(b) && !b->first_err)
		event_base_dispatch(b->base);
	evtimer_del(b->stall_ev);
}

/* ---------- publishing ---------- */

static void bc_pub_fill(struct bcons *b);

static void bc_pub_ack_cb(void *arg, int err, const char *errmsg, uint32_t partition, uint64_t offset,
			  int64_t timestamp_ms, int duplicate)
{
	struct bcons *b = arg;
	if (err == SLUICE_OK) {
		b->pub_acked++;
	} else {
		b->pub_failed++;
		bc_stop(b, err, "publish", errmsg);
	}
	event_active(b->pub_fill_ev, EV_TIMEOUT, 0); /* once this burst of acks is in: one new batch */
	if (b->pub_acked + b->pub_failed == b->count) {
		b->t_pub1 = bc_now_ns();
		b->io_pub1 = bc_io_read(b->lw_pid);
	}
	bc_check_done(b);
}

/* Keep BC_PUB_WINDOW publishes in flight, message i to partition i % partitions. */
static void bc_pub_fill(struct bcons *b)
{
	while (!b->first_err && b->pub_sent < b->count && b->pub_sent - b->pub_acked - b->pub_failed < BC_PUB_WINDOW) {
		struct sluice_pub p = {.topic = b->topic, .has_partition = 1,
				       .partition = (uint32_t)(b->pub_sent % b->partitions),
				       .payload = sluice_bytes_make(b->payload, b->size)};
		b->pub_sent++;
		int err = sluice_publish(b->pc, &p, bc_pub_ack_cb, b);
		if (err) {
			b->pub_failed++;
			bc_stop(b, err, "publish", NULL);
			break;
		}
	}
	sluice_client_flush(b->pc);
}

static void bc_pub_fill_cb(evutil_socket_t fd, short what, void *arg)
{
	bc_pub_fill(arg);
}

/* ---------- plain subscription ---------- */

static void bc_sub_msg_cb(void *arg, int err, const char *errmsg, const struct sluice_msg *m)
{
	struct bcons *b = arg;
	if (err) {
		if (b->phase == BC_PH_SUB)
			bc_stop(b, err, "subscription", errmsg);
		return;
	}
	b->sub_received++;
	if (b->phase == BC_PH_SUB)
		bc_check_done(b);
}

/* One subscription per partition, from where the bench's messages start. */
static int bc_subscribe(struct bcons *b)
{
	struct sluice_client_opts o = cli_client_opts(b->g, 0);
	o.retry_max_ms = 30000;
	int err = sluice_client_new(b->base, &o, &b->sc);
	for (uint32_t i = 0; err == SLUICE_OK && i < b->partitions; i++) {
		struct sluice_sub_opts so = {.topic = b->topic, .partitions = &i, .partitions_n = 1,
					     .start = SLUICE_OFFSET, .offset = b->start_offsets[i], .credit = 10000};
		err = sluice_subscribe(b->sc, &so, bc_sub_msg_cb, b, NULL);
	}
	return err;
}

/* ---------- durable consumer: pulls and acks ---------- */

static void bc_pull(struct bcons *b);

static void bc_ack_cb(void *arg, int err, const char *errmsg)
{
	struct bc_ack *a = arg;
	struct bcons *b = a->b;
	if (err) {
		if (b->phase == BC_PH_CONSUME)
			bc_stop(b, err, "ack", errmsg);
		free(a);
		return;
	}
	uint64_t ns = bc_now_ns() - a->pull_sent_ns;
	for (uint32_t i = 0; i < a->n && b->lat_n < b->lat_cap; i++)
		b->lat[b->lat_n++] = ns;
	b->acked += a->first;
	free(a);
	bc_check_done(b);
}

/* One AckMessages for everything this pull took: an item per message. */
static int bc_ack_all(struct bcons *b, const struct sluice_pulled *msgs, size_t n, uint64_t pull_sent_ns)
{
	struct bc_ack *a = malloc(sizeof(*a));
	if (!a)
		return SLUICE_ENOMEM;
	SL_ASSERT(n <= BC_PULL_MAX);
	*a = (struct bc_ack){.b = b, .pull_sent_ns = pull_sent_ns, .n = (uint32_t)n};
	for (size_t i = 0; i < n; i++) {
		b->items[i] = (struct sluice_ack_item){.partition = msgs[i].msg.partition,
						       .offset = msgs[i].msg.offset, .kind = SLUICE_ACK};
		a->first += msgs[i].attempt == 1;
	}
	b->pulled += n;
	b->pulled_first += a->first;
	b->redelivered += n - a->first;
	b->ack_requests++;
	int err = sluice_ack(b->pc, b->name, b->items, n, bc_ack_cb, a); /* items are encoded before it returns */
	if (err)
		free(a);
	return err;
}

static void bc_pull_cb(void *arg, int err, const char *errmsg, const struct sluice_pulled *msgs, size_t n)
{
	struct bc_pullctx *ctx = arg;
	struct bcons *b = ctx->b;
	uint64_t sent_ns = ctx->sent_ns;
	free(ctx);
	b->pulls_out--;
	if (b->phase != BC_PH_CONSUME)
		return; /* the client closing after the run */
	if (err) {
		bc_stop(b, err, "pull", errmsg);
		return;
	}
	if (n && (err = bc_ack_all(b, msgs, n, sent_ns)) != SLUICE_OK) {
		bc_stop(b, err, "ack", NULL);
		return;
	}
	b->progress++;
	bc_pull(b);
}

/* Keep --pulls pulls outstanding until every message was taken once. */
static void bc_pull(struct bcons *b)
{
	while (!b->first_err && b->pulled_first < b->count && b->pulls_out < b->pulls) {
		struct bc_pullctx *ctx = malloc(sizeof(*ctx));
		if (!ctx) {
			bc_stop(b, SLUICE_ENOMEM, "pull", NULL);
			return;
		}
		*ctx = (struct bc_pullctx){b, bc_now_ns()};
		int err = sluice_pull(b->pc, b->name, b->pull_max, BC_PULL_WAIT_MS, bc_pull_cb, ctx);
		if (err) {
			free(ctx);
			bc_stop(b, err, "pull", NULL);
			return;
		}
		b->pulls_out++;
		b->pulls_made++;
	}
}

/* ---------- webhook receiver ---------- */

static void bc_http_cb(struct evhttp_request *req, void *arg)
{
	struct bcons *b = arg;
	const char *att = evhttp_find_header(evhttp_request_get_input_headers(req), "sluice-attempt");
	uint64_t now = bc_now_ns();
	b->wh_requests++;
	if (att && strcmp(att, "1") != 0)
		b->wh_redelivered++;
	else
		b->wh_delivered++;
	if (!b->t_wh_first)
		b->t_wh_first = now;
	b->t_wh_last = now;
	evhttp_send_reply(req, 200, "OK", NULL);
	if (b->phase == BC_PH_WEBHOOK)
		bc_check_done(b);
}

static int bc_receiver_start(struct bcons *b)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	b->http = evhttp_new(b->base);
	if (!b->http)
		return -1;
	evhttp_set_gencb(b->http, bc_http_cb, b);
	struct evhttp_bound_socket *s = evhttp_bind_socket_with_handle(b->http, "127.0.0.1", 0);
	if (!s || getsockname(evhttp_bound_socket_get_fd(s), (struct sockaddr *)&sa, &len) != 0)
		return -1;
	b->http_port = ntohs(sa.sin_port);
	return 0;
}

/* ---------- setup through the admin connection ---------- */

struct bc_wait {
	int done, err;
	char msg[256];
	struct bcons *b;
};

static void bc_done_cb(void *arg, int err, const char *errmsg)
{
	struct bc_wait *w = arg;
	w->done = 1;
	w->err = err;
	snprintf(w->msg, sizeof(w->msg), "%s", errmsg ? errmsg : "");
}

static void bc_describe_cb(void *arg, int err, const char *errmsg, const struct sluice_topic_info *t)
{
	struct bc_wait *w = arg;
	bc_done_cb(w, err, errmsg);
	if (!err && t->parts_n != w->b->partitions) {
		w->err = SLUICE_EINVAL;
		snprintf(w->msg, sizeof(w->msg), "the topic has %zu partitions, not %u (--partitions)", t->parts_n,
			 w->b->partitions);
	}
	for (size_t i = 0; !w->err && i < t->parts_n; i++)
		if (t->parts[i].partition < BC_PARTITIONS_MAX)
			w->b->start_offsets[t->parts[i].partition] = t->parts[i].end_offset;
}

/* Create the topic if missing and learn where the bench's messages will start. */
static int bc_prepare_topic(struct bcons *b)
{
	struct bc_wait w = {.b = b};
	int err = sluice_sync_topic_create(b->admin, b->topic, b->partitions, 0, 0, w.msg, sizeof(w.msg));
	if (err == SLUICE_ETOPIC_EXISTS)
		err = SLUICE_OK;
	if (err == SLUICE_OK)
		err = sluice_topic_describe(sluice_sync_client(b->admin), b->topic, bc_describe_cb, &w);
	if (err == SLUICE_OK) {
		cli_wait_done(b->admin, &w.done);
		err = w.err;
	}
	return err ? cli_report_err("bench: topic", err, w.msg) : EX_OK;
}

/* The webhook's settings: the receiver's URL and a fresh secret. */
static char *bc_webhook_json(const struct bcons *b)
{
	char secret[WH_SECRET_CHARS_MAX], url[64];
	if (wh_secret_generate(secret, sizeof(secret)) != SL_OK)
		return NULL;
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/hook", b->http_port);
	json_t *o = json_pack("{s:s, s:[s], s:i}", "url", url, "secrets", secret, "timeout_ms", BC_WH_TIMEOUT_MS);
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	return s;
}

/* The consumer (or webhook), at the topic's committed end. */
static int bc_create_consumer(struct bcons *b)
{
	struct bc_wait w = {.b = b};
	struct sluice_consumer_cfg cfg = {.topic = b->topic, .shared = b->shared,
					  .max_in_flight = b->shared ? b->max_in_flight : 0,
					  .ack_timeout_ms = BC_ACK_TIMEOUT_MS, .start = SLUICE_LATEST};
	char *wh = NULL;
	if (b->mode == BC_WEBHOOK) {
		if (!(wh = bc_webhook_json(b)))
			return cli_report_err("bench: webhook settings", SLUICE_ENOMEM, NULL);
		cfg.webhook = wh;
		cfg.max_deliveries = BC_WH_DELIVERIES_MAX;
		cfg.ack_timeout_ms = BC_WH_TIMEOUT_MS + 15000; /* as POST /v1/webhooks sets it */
	}
	int err = sluice_consumer_create(sluice_sync_client(b->admin), b->name, &cfg, bc_done_cb, &w);
	if (err == SLUICE_OK) {
		cli_wait_done(b->admin, &w.done);
		err = w.err;
	}
	free(wh);
	return err ? cli_report_err("bench: consumer create", err, w.msg) : EX_OK;
}

static void bc_delete_consumer(struct bcons *b)
{
	struct bc_wait w = {.b = b};
	if (sluice_consumer_delete(sluice_sync_client(b->admin), b->name, bc_done_cb, &w) == SLUICE_OK)
		cli_wait_done(b->admin, &w.done);
	if (w.err)
		cli_report_err("bench: consumer delete", w.err, w.msg);
}

/* ---------- report ---------- */

static double bc_rate(uint64_t n, uint64_t t0, uint64_t t1)
{
	return t1 > t0 ? (double)n / ((double)(t1 - t0) / 1e9) : 0;
}

static json_t *bc_per(long long bytes0, long long bytes1, uint64_t n)
{
	return bytes0 >= 0 && bytes1 >= bytes0 && n ? json_real((double)(bytes1 - bytes0) / (double)n) : json_null();
}

static json_t *bc_bytes(long long bytes0, long long bytes1)
{
	return bytes0 >= 0 && bytes1 >= bytes0 ? json_integer(bytes1 - bytes0) : json_null();
}

/* log_bytes_<what> from write_bytes and log_wchar_<what> from wchar, per n. */
static void bc_set_per(json_t *o, const char *what, struct bc_io a, struct bc_io z, uint64_t n)
{
	char k[64];
	snprintf(k, sizeof(k), "log_bytes_%s", what);
	json_object_set_new(o, k, bc_per(a.write_bytes, z.write_bytes, n));
	snprintf(k, sizeof(k), "log_wchar_%s", what);
	json_object_set_new(o, k, bc_per(a.wchar, z.wchar, n));
}

static json_t *bc_consume_json(struct bcons *b)
{
	double sub = bc_rate(b->sub_received, b->t_sub0, b->t_sub1), acked = bc_rate(b->acked, b->t_cons0, b->t_cons1);
	json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:b, s:I, s:I, s:I}", "mode", "consume", "topic", b->topic,
			      "consumer", b->name, "partitions", (json_int_t)b->partitions, "size", (json_int_t)b->size,
			      "count", (json_int_t)b->count, "shared", b->shared, "max_in_flight",
			      (json_int_t)(b->shared ? b->max_in_flight : 1), "pull_max", (json_int_t)b->pull_max, "pulls",
			      (json_int_t)b->pulls);
	json_object_set_new(o, "published", json_integer((json_int_t)b->pub_acked));
	json_object_set_new(o, "publish_s", json_real((double)(b->t_pub1 - b->t_pub0) / 1e9));
	json_object_set_new(o, "publish_msgs_per_s", json_real(bc_rate(b->pub_acked, b->t_pub0, b->t_pub1)));
	json_object_set_new(o, "subscribed", json_integer((json_int_t)b->sub_received));
	json_object_set_new(o, "subscribe_s", json_real(b->t_sub1 ? (double)(b->t_sub1 - b->t_sub0) / 1e9 : 0));
	json_object_set_new(o, "subscribe_msgs_per_s", json_real(sub));
	json_object_set_new(o, "acked", json_integer((json_int_t)b->acked));
	json_object_set_new(o, "redelivered", json_integer((json_int_t)b->redelivered));
	json_object_set_new(o, "pulls_made", json_integer((json_int_t)b->pulls_made));
	json_object_set_new(o, "ack_requests", json_integer((json_int_t)b->ack_requests));
	json_object_set_new(o, "consume_s", json_real(b->t_cons1 ? (double)(b->t_cons1 - b->t_cons0) / 1e9 : 0));
	json_object_set_new(o, "msgs_per_s", json_real(acked));
	json_object_set_new(o, "acked_vs_subscribe", json_real(sub > 0 ? acked / sub : 0));
	qsort(b->lat, b->lat_n, sizeof(*b->lat), u64_cmp);
	json_object_set_new(o, "latency_ms",
			    json_pack("{s:f, s:f, s:f, s:I}", "p50", bc_pct_ms(b, 50), "p99", bc_pct_ms(b, 99), "max",
				      b->lat_n ? (double)b->lat[b->lat_n - 1] / 1e6 : 0.0, "samples",
				      (json_int_t)b->lat_n));
	json_object_set_new(o, "logwriter_pid", b->lw_pid ? json_integer(b->lw_pid) : json_null());
	json_object_set_new(o, "log_bytes_publish", bc_bytes(b->io_pub0.write_bytes, b->io_pub1.write_bytes));
	json_object_set_new(o, "log_bytes_consume", bc_bytes(b->io_cons0.write_bytes, b->io_cons1.write_bytes));
	bc_set_per(o, "per_published", b->io_pub0, b->io_pub1, b->pub_acked);
	bc_set_per(o, "per_acked", b->io_cons0, b->io_cons1, b->acked);
	bc_set_per(o, "per_request", b->io_cons0, b->io_cons1, b->pulls_made + b->ack_requests);
	return o;
}

static json_t *bc_webhook_json_report(const struct bcons *b)
{
	char recv[32];
	double secs = b->t_wh_last > b->t_wh_first ? (double)(b->t_wh_last - b->t_wh_first) / 1e9 : 0;
	snprintf(recv, sizeof(recv), "127.0.0.1:%u", b->http_port);
	json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:b, s:I, s:s}", "mode", "webhook", "topic", b->topic,
			      "webhook", b->name, "partitions", (json_int_t)b->partitions, "size", (json_int_t)b->size,
			      "count", (json_int_t)b->count, "ordered", !b->shared, "max_in_flight",
			      (json_int_t)(b->shared ? b->max_in_flight : 1), "receiver", recv);
	json_object_set_new(o, "published", json_integer((json_int_t)b->pub_acked));
	json_object_set_new(o, "delivered", json_integer((json_int_t)b->wh_delivered));
	json_object_set_new(o, "requests", json_integer((json_int_t)b->wh_requests));
	json_object_set_new(o, "redelivered", json_integer((json_int_t)b->wh_redelivered));
	json_object_set_new(o, "first_delivery_ms",
			    json_real(b->t_wh_first > b->t_pub0 ? (double)(b->t_wh_first - b->t_pub0) / 1e6 : 0));
	json_object_set_new(o, "seconds", json_real(secs));
	json_object_set_new(o, "deliveries_per_s", json_real(secs > 0 ? (double)b->wh_delivered / secs : 0));
	json_object_set_new(o, "logwriter_pid", b->lw_pid ? json_integer(b->lw_pid) : json_null());
	bc_set_per(o, "per_published", b->io_pub0, b->io_pub1, b->pub_acked);
	bc_set_per(o, "per_delivered", b->io_pub1, b->io_cons1, b->wh_delivered);
	return o;
}

static void bc_print_text(const struct bcons *b, json_t *o)
{
#define R(k) json_real_value(json_object_get(o, k))
	if (b->mode == BC_WEBHOOK) {
		printf("bench webhook: topic %s, %u partition%s, %u-byte messages, %s\n", b->topic, b->partitions,
		       b->partitions == 1 ? "" : "s", b->size, b->shared ? "shared" : "ordered");
		printf("  delivered:  %" PRIu64 " of %" PRIu64 " (%" PRIu64 " requests, %" PRIu64 " again)\n",
		       b->wh_delivered, b->count, b->wh_requests, b->wh_redelivered);
		printf("  throughput: %.0f deliveries/s over %.3f s; first %.1f ms after publishing began\n",
		       R("deliveries_per_s"), R("seconds"), R("first_delivery_ms"));
		if (json_is_real(json_object_get(o, "log_bytes_per_delivered")))
			printf("  log bytes:  %.0f (wchar %.0f) per published message, %.0f (%.0f) per delivered\n",
			       R("log_bytes_per_published"), R("log_wchar_per_published"), R("log_bytes_per_delivered"),
			       R("log_wchar_per_delivered"));
		return;
	}
	json_t *lat = json_object_get(o, "latency_ms"), *per = json_object_get(o, "log_bytes_per_acked");
	printf("bench consume: topic %s, %u partition%s, %u-byte messages, %s, %u pulls of up to %u\n", b->topic,
	       b->partitions, b->partitions == 1 ? "" : "s", b->size, b->shared ? "shared" : "ordered", b->pulls,
	       b->pull_max);
	printf("  published:  %" PRIu64 " at %.0f msg/s\n", b->pub_acked, R("publish_msgs_per_s"));
	printf("  subscribed: %" PRIu64 " at %.0f msg/s (plain subscription)\n", b->sub_received,
	       R("subscribe_msgs_per_s"));
	printf("  acked:      %" PRIu64 " at %.0f msg/s (%.2fx the subscription), %" PRIu64 " redelivered\n", b->acked,
	       R("msgs_per_s"), R("acked_vs_subscribe"), b->redelivered);
	printf("  latency ms: pull -> ack p50 %.3f  p99 %.3f  max %.3f\n", json_real_value(json_object_get(lat, "p50")),
	       json_real_value(json_object_get(lat, "p99")), json_real_value(json_object_get(lat, "max")));
	if (json_is_real(per))
		printf("  log bytes:  %.0f (wchar %.0f) per published message, %.0f (%.0f) per acked, %.0f (%.0f) per "
		       "request\n",
		       R("log_bytes_per_published"), R("log_wchar_per_published"), json_real_value(per),
		       R("log_wchar_per_acked"), R("log_bytes_per_request"), R("log_wchar_per_request"));
#undef R
}

static void bc_report(struct bcons *b)
{
	json_t *o = b->mode == BC_WEBHOOK ? bc_webhook_json_report(b) : bc_consume_json(b);
	if (b->g->json) {
		cli_json_print(o);
		return;
	}
	bc_print_text(b, o);
	json_decref(o);
}

/* ---------- run ---------- */

static void bc_publish_phase(struct bcons *b)
{
	b->io_pub0 = bc_io_read(b->lw_pid);
	b->t_pub0 = bc_now_ns();
	bc_pub_fill(b);
	bc_run_phase(b, b->mode == BC_WEBHOOK ? BC_PH_WEBHOOK : BC_PH_PUBLISH);
	if (b->mode == BC_WEBHOOK)
		b->io_cons1 = bc_io_read(b->lw_pid); /* from the last publish's ack: deliveries */
}

static void bc_consume_phases(struct bcons *b)
{
	b->t_sub0 = bc_now_ns();
	if (bc_subscribe(b) != SLUICE_OK) {
		bc_stop(b, SLUICE_ENOMEM, "subscribe", NULL);
		return;
	}
	bc_run_phase(b, BC_PH_SUB);
	b->phase = BC_PH_CONSUME; /* before the free: its subscriptions end with SLUICE_ECLOSED */
	sluice_client_free(b->sc); /* its credit would keep reading */
	b->sc = NULL;
	if (b->first_err)
		return;
	b->io_cons0 = bc_io_read(b->lw_pid);
	b->t_cons0 = bc_now_ns();
	bc_pull(b);
	bc_run_phase(b, BC_PH_CONSUME);
	b->io_cons1 = bc_io_read(b->lw_pid);
	b->phase = BC_PH_PUBLISH; /* pulls still held answer into a finished phase */
}

static int bc_open(struct bcons *b)
{
	struct sluice_client_opts o = cli_client_opts(b->g, BC_PUB_WINDOW + BC_PULLS_MAX * 2);
	o.retry_max_ms = 30000;
	o.linger_ms = CLI_LINGER_MS_DEFAULT;
	o.batch_bytes = CLI_BATCH_BYTES_DEFAULT;
	b->payload = malloc(b->size);
	b->lat_cap = b->count < BC_SAMPLES_MAX ? (size_t)b->count : BC_SAMPLES_MAX;
	b->lat = malloc(sizeof(*b->lat) * (b->lat_cap + 1));
	b->pub_fill_ev = event_new(b->base, -1, 0, bc_pub_fill_cb, b);
	b->stall_ev = event_new(b->base, -1, EV_PERSIST, bc_stall_cb, b);
	if (!b->payload || !b->lat || !b->pub_fill_ev || !b->stall_ev)
		return -1;
	memset(b->payload, 'x', b->size); /* text: a webhook body carries it as a JSON string */
	if (b->mode == BC_WEBHOOK && bc_receiver_start(b) != 0) {
		fprintf(stderr, "sluice bench webhook: cannot listen on 127.0.0.1\n");
		return -1;
	}
	return sluice_client_new(b->base, &o, &b->pc) == SLUICE_OK ? 0 : -1;
}

static int bc_run(struct bcons *b)
{
	int rc = cli_connect(b->g, 0, &b->admin);
	if (rc)
		return rc;
	if (b->master_pid && !b->lw_pid && !(b->lw_pid = bc_find_logwriter(b->master_pid)))
		fprintf(stderr, "sluice bench: no logwriter among the children of %d\n", b->master_pid);
	if (bc_open(b) != 0)
		return EX_SOFTWARE;
	if ((rc = bc_prepare_topic(b)) || (rc = bc_create_consumer(b)))
		return rc;
	bc_publish_phase(b);
	if (b->mode == BC_CONSUME && !b->first_err && b->pub_acked == b->count)
		bc_consume_phases(b);
	bc_delete_consumer(b);
	bc_report(b);
	if (b->first_err)
		return cli_exit_code(b->first_err);
	if (b->mode == BC_WEBHOOK)
		return b->wh_delivered >= b->count ? EX_OK : EX_DATAERR;
	return b->acked >= b->count ? EX_OK : EX_DATAERR;
}

static int bc_set(struct bcons *b, int ch, const char *arg)
{
	uint64_t v;
	if (ch == 't') {
		snprintf(b->topic, sizeof(b->topic), "%s", arg);
		return 0;
	}
	if (ch == 'S' || ch == 'O') {
		b->shared = ch == 'S';
		return 0;
	}
	if (cli_parse_u64(arg, &v) != 0 || v == 0)
		return -1;
	switch (ch) {
	case 'n': b->partitions = (uint32_t)v; return v <= BC_PARTITIONS_MAX ? 0 : -1;
	case 's': b->size = (uint32_t)v; return v <= BC_SIZE_MAX ? 0 : -1;
	case 'c': b->count = v; return v <= BC_COUNT_MAX ? 0 : -1;
	case 'm': b->max_in_flight = (uint32_t)v; b->shared = 1; return v <= BC_IN_FLIGHT_MAX ? 0 : -1;
	case 'x': b->pull_max = (uint32_t)v; return v <= BC_PULL_MAX ? 0 : -1;
	case 'p': b->pulls = (uint32_t)v; return v <= BC_PULLS_MAX ? 0 : -1;
	case 'P': b->master_pid = (int)v; return v <= INT32_MAX ? 0 : -1;
	case 'L': b->lw_pid = (int)v; return v <= INT32_MAX ? 0 : -1;
	}
	return -1;
}

static int bc_parse(struct bcons *b, int argc, char **argv)
{
	static const struct option lo[] = {
		{"topic", required_argument, 0, 't'},         {"partitions", required_argument, 0, 'n'},
		{"size", required_argument, 0, 's'},          {"count", required_argument, 0, 'c'},
		{"shared", no_argument, 0, 'S'},              {"ordered", no_argument, 0, 'O'},
		{"max-in-flight", required_argument, 0, 'm'}, {"pull-max", required_argument, 0, 'x'},
		{"pulls", required_argument, 0, 'p'},         {"pid", required_argument, 0, 'P'},
		{"logwriter-pid", required_argument, 0, 'L'}, {0, 0, 0, 0}};
	int ch, ordered = 0, mif = 0, shared = 0;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "t:n:s:c:", lo, NULL)) != -1) {
		ordered |= ch == 'O';
		mif |= ch == 'm';
		shared |= ch == 'S';
		if (ch == '?' || bc_set(b, ch, optarg) != 0)
			return -1;
	}
	if (optind + 1 != argc || (ordered && (mif || shared)))
		return -1;
	b->mode = !strcmp(argv[optind], "webhook") ? BC_WEBHOOK : BC_CONSUME;
	if (b->mode == BC_WEBHOOK && (b->pulls || b->pull_max))
		return -1; /* the webhook's own member pulls */
	if (b->mode == BC_WEBHOOK)
		b->shared = mif || shared; /* ordered unless --max-in-flight, as POST /v1/webhooks */
	if (!b->count)
		b->count = b->mode == BC_WEBHOOK ? BC_WH_COUNT_DEFAULT : BC_COUNT_DEFAULT;
	if (!b->max_in_flight)
		b->max_in_flight = BC_MAX_IN_FLIGHT_DEFAULT;
	if (!b->pulls)
		b->pulls = BC_PULLS_DEFAULT;
	if (!b->pull_max)
		b->pull_max = BC_PULL_MAX;
	return 0;
}

static void bc_free(struct bcons *b)
{
	sluice_client_free(b->sc);
	sluice_client_free(b->pc);
	if (b->http)
		evhttp_free(b->http);
	if (b->pub_fill_ev)
		event_free(b->pub_fill_ev);
	if (b->stall_ev)
		event_free(b->stall_ev);
	if (b->admin)
		sluice_sync_close(b->admin);
	if (b->base)
		event_base_free(b->base);
	free(b->payload);
	free(b->lat);
	free(b);
}

int bench_consume_main(const struct cli_global *g, int argc, char **argv)
{
	if (cli_want_help(argc, argv)) {
		bench_consume_usage(stdout);
		return EX_OK;
	}
	struct bcons *b = calloc(1, sizeof(*b));
	if (!b)
		return EX_SOFTWARE;
	*b = (struct bcons){.g = g, .partitions = 1, .size = BC_SIZE_DEFAULT, .shared = 1, .io_pub0 = {-1, -1},
			    .io_pub1 = {-1, -1}, .io_cons0 = {-1, -1}, .io_cons1 = {-1, -1}};
	if (bc_parse(b, argc, argv) != 0) {
		bench_consume_usage(stderr);
		bc_free(b);
		return EX_USAGE;
	}
	uint32_t r = randombytes_random();
	if (!b->topic[0])
		snprintf(b->topic, sizeof(b->topic), "bench-%s-%08x", b->mode == BC_WEBHOOK ? "wh" : "cons", r);
	snprintf(b->name, sizeof(b->name), "bench-%s-%08x", b->mode == BC_WEBHOOK ? "wh" : "cons", randombytes_random());
	b->base = event_base_new();
	int rc = b->base ? bc_run(b) : EX_SOFTWARE;
	bc_free(b);
	return rc;
}
