/*
 * bench.c: `sluice bench pub|sub|e2e`, a load generator built on libsluice.
 *
 * pub: P producers (one connection each) keep up to W publishes in flight and
 *      time publish -> ack per message on the monotonic clock. Publishes are
 *      batched by libsluice (--linger-ms, --batch-bytes); a producer sends
 *      its open batch as soon as its window is full (nothing more could
 *      join it), and refills its window once per burst of acks, so a batch's
 *      acks make one new batch rather than many small ones.
 * sub: publishes --count messages first, then times --subscribers
 *      subscribers (one connection each, default 1) reading them all from
 *      the earliest offset (0: none, the publishing alone). They take the
 *      stored batches (libsluice's default) unless --messages-only asks for
 *      one message at a time.
 * (sse, the HTTP event-stream fan-out, is in bench_sse.c; consume and
 * webhook, durable consumers and webhooks, in bench_consume.c.)
 * e2e: a subscriber is attached to every partition at its end offset, then
 *      producers publish with their send time in the payload's first 8 bytes
 *      and the subscriber times publish -> delivery.
 * Latencies are kept in one array (at most BENCH_SAMPLES_MAX samples, so
 * memory is bounded in --duration mode) and sorted for percentiles.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

#include <event2/event.h>
#include <jansson.h>
#include <sodium.h>

#include "cli.h"
#include "sluice/sluice.h"

#define BENCH_COUNT_DEFAULT 100000
#define BENCH_SIZE_DEFAULT 100
#define BENCH_WINDOW_DEFAULT 1000
#define BENCH_SAMPLES_MAX (16u << 20)
#define BENCH_PRODUCERS_MAX 256
#define BENCH_SUBSCRIBERS_MAX 256
#define BENCH_DRAIN_MS 30000

enum bench_mode { BM_PUB, BM_SUB, BM_E2E };

struct bench;

struct bench_slot {
	struct bench_prod *p;
	uint64_t sent_ns;
};

struct bench_prod {
	struct bench *b;
	struct sluice_client *c;
	struct event *fill_ev;     /* refill after a burst of acks (batching) */
	uint64_t target, sent, acked, failed;
	struct bench_slot *slots;
	uint32_t *free_slots;
	uint32_t free_n;
};

struct bench {
	const struct cli_global *g;
	enum bench_mode mode;
	char topic[128];
	uint32_t partitions, producers, window, size, linger_ms, batch_bytes;
	uint64_t count;
	uint64_t rate;             /* --rate: messages/s over all producers; 0: as fast as the window allows */
	double duration_s;
	struct event_base *base;
	struct bench_prod *prods;
	struct sluice_client *sub_c[BENCH_SUBSCRIBERS_MAX]; /* sub: --subscribers of them; e2e: one */
	uint32_t subscribers;
	int messages_only;         /* --messages-only: no stored batches (libsluice opts.messages_only) */
	uint8_t *payload;
	int measure_pub;           /* record publish->ack latencies */
	int stop_publishing;
	uint64_t received, expect;
	uint64_t *lat;
	size_t lat_n;
	uint64_t t_start, t_end;
	int first_err;
	struct event *duration_ev, *drain_ev, *pace_ev;
};

static uint64_t bench_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void bench_usage(FILE *f)
{
	fprintf(f, "usage: sluice bench pub|sub|e2e [--topic T] [--partitions N] [--size BYTES] [--count N | --duration S]\n"
		   "                              [--producers P] [--window W] [--linger-ms MS] [--batch-bytes B]\n"
		   "  --topic defaults to bench-<random>, created with --partitions (1) if missing.\n"
		   "  --size %d, --count %d, --producers 1 (one connection each), --window %d in flight each.\n"
		   "  --linger-ms %d (0: no batching), --batch-bytes %d: how publishes are batched.\n"
		   "  --rate N: publish at most N messages/s over all producers (e2e latency at a set load; 0: no limit).\n"
		   "  sub: --subscribers N (1) read everything, one connection each (0: publish only, a baseline for\n"
		   "       measuring the server); --messages-only: without stored batches (one message at a time).\n"
		   "       sluice bench sse ...: Server-Sent Events fan-out (sluice bench sse --help).\n"
		   "       sluice bench consume|webhook ...: acked consumption and webhook deliveries beside a plain\n"
		   "       subscription (sluice bench consume --help).\n",
		BENCH_SIZE_DEFAULT, BENCH_COUNT_DEFAULT, BENCH_WINDOW_DEFAULT, CLI_LINGER_MS_DEFAULT,
		CLI_BATCH_BYTES_DEFAULT);
}

static void lat_add(struct bench *b, uint64_t ns)
{
	if (b->lat_n < BENCH_SAMPLES_MAX)
		b->lat[b->lat_n++] = ns;
}

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static double lat_pct_ms(const struct bench *b, double pct)
{
	if (b->lat_n == 0)
		return 0;
	size_t i = (size_t)(pct / 100.0 * (double)b->lat_n);
	if (i >= b->lat_n)
		i = b->lat_n - 1;
	return (double)b->lat[i] / 1e6;
}

static int bench_finished(const struct bench *b)
{
	uint64_t acked = 0;
	for (uint32_t i = 0; i < b->producers; i++) {
		const struct bench_prod *p = &b->prods[i];
		if (!b->stop_publishing && p->sent < p->target)
			return 0;
		if (p->acked + p->failed < p->sent)
			return 0;
		acked += p->acked;
	}
	return b->mode != BM_E2E || b->received >= acked;
}

static void bench_check_done(struct bench *b)
{
	if (!b->stop_publishing) {
		int all = 1;
		for (uint32_t i = 0; i < b->producers; i++)
			all &= b->prods[i].sent >= b->prods[i].target;
		b->stop_publishing = all;
	}
	if (b->stop_publishing)
		event_del(b->pace_ev);
	if (b->stop_publishing && !evtimer_pending(b->drain_ev, NULL)) {
		/* Bound the wait for whatever is still outstanding. */
		struct timeval tv = {BENCH_DRAIN_MS / 1000, 0};
		evtimer_add(b->drain_ev, &tv);
	}
	if (bench_finished(b)) {
		b->t_end = bench_now_ns();
		event_base_loopbreak(b->base);
	}
}

static void prod_fill(struct bench_prod *p);

static void bench_ack_cb(void *arg, int err, const char *errmsg, uint32_t partition, uint64_t offset,
			 int64_t timestamp_ms, int duplicate)
{
	struct bench_slot *s = arg;
	struct bench_prod *p = s->p;
	struct bench *b = p->b;
	if (err == SLUICE_OK) {
		p->acked++;
		if (b->measure_pub)
			lat_add(b, bench_now_ns() - s->sent_ns);
	} else {
		p->failed++;
		if (!b->first_err) {
			b->first_err = err;
			fprintf(stderr, "sluice bench: publish failed: %s\n", errmsg ? errmsg : sluice_strerror(err));
		}
	}
	p->free_slots[p->free_n++] = (uint32_t)(s - p->slots);
	if (b->linger_ms == 0)
		prod_fill(p);
	else
		event_active(p->fill_ev, EV_TIMEOUT, 0); /* once the other acks of this batch are in (idempotent) */
	bench_check_done(b);
}

/* With --rate: how many messages this producer may have sent by now. */
static uint64_t prod_allowed(const struct bench_prod *p)
{
	const struct bench *b = p->b;
	if (!b->rate)
		return UINT64_MAX;
	double s = (double)(bench_now_ns() - b->t_start) / 1e9;
	return (uint64_t)(s * (double)b->rate / b->producers) + 1;
}

/* Keep the producer's window full (and, with --rate, on schedule). */
static void prod_fill(struct bench_prod *p)
{
	struct bench *b = p->b;
	uint64_t allowed = prod_allowed(p);
	while (!b->stop_publishing && p->sent < p->target && p->free_n > 0 && p->sent < allowed) {
		struct bench_slot *s = &p->slots[p->free_slots[--p->free_n]];
		struct sluice_pub pub = {.topic = b->topic, .payload = sluice_bytes_make(b->payload, b->size)};
		s->sent_ns = bench_now_ns();
		if (b->size >= 8) {
			uint8_t *pl = b->payload;
			memcpy(pl, &s->sent_ns, 8); /* e2e: the subscriber reads the send time back */
		}
		p->sent++;
		if (sluice_publish(p->c, &pub, bench_ack_cb, s) != SLUICE_OK) {
			p->free_slots[p->free_n++] = (uint32_t)(s - p->slots);
			p->failed++;
			break;
		}
	}
	/* Window full or nothing left to send: no publish will join the open batch. */
	sluice_client_flush(p->c);
}

static void prod_fill_cb(evutil_socket_t fd, short what, void *arg)
{
	prod_fill(arg);
}

/* --rate: every millisecond, let each producer send what its schedule allows. */
static void bench_pace_cb(evutil_socket_t fd, short what, void *arg)
{
	struct bench *b = arg;
	for (uint32_t i = 0; i < b->producers; i++)
		prod_fill(&b->prods[i]);
}

static void bench_msg_cb(void *arg, int err, const char *errmsg, const struct sluice_msg *m)
{
	struct bench *b = arg;
	if (err && b->t_end)
		return; /* the client closing after the run */
	if (err) {
		fprintf(stderr, "sluice bench: subscription ended: %s\n", errmsg ? errmsg : sluice_strerror(err));
		b->first_err = err;
		event_base_loopbreak(b->base);
		return;
	}
	b->received++;
	if (b->mode == BM_E2E && m->payload.len >= 8) {
		uint64_t sent;
		memcpy(&sent, m->payload.base, 8);
		uint64_t now = bench_now_ns();
		if (sent <= now)
			lat_add(b, now - sent);
	}
	if (b->mode == BM_SUB && b->received >= b->expect) {
		b->t_end = bench_now_ns();
		event_base_loopbreak(b->base);
	} else if (b->mode == BM_E2E) {
		bench_check_done(b);
	}
}

static void bench_duration_cb(evutil_socket_t fd, short what, void *arg)
{
	struct bench *b = arg;
	b->stop_publishing = 1;
	bench_check_done(b);
}

static void bench_drain_cb(evutil_socket_t fd, short what, void *arg)
{
	struct bench *b = arg;
	fprintf(stderr, "sluice bench: gave up waiting for outstanding messages\n");
	b->t_end = bench_now_ns();
	event_base_loopbreak(b->base);
}

static int bench_prods_open(struct bench *b)
{
	struct sluice_client_opts o = cli_client_opts(b->g, b->window);
	o.retry_max_ms = 30000;
	o.linger_ms = b->linger_ms;
	o.batch_bytes = b->batch_bytes;
	b->prods = calloc(b->producers, sizeof(*b->prods));
	if (!b->prods)
		return SLUICE_ENOMEM;
	for (uint32_t i = 0; i < b->producers; i++) {
		struct bench_prod *p = &b->prods[i];
		p->b = b;
		p->target = b->count / b->producers + (i < b->count % b->producers);
		if (b->duration_s > 0)
			p->target = UINT64_MAX;
		p->slots = calloc(b->window, sizeof(*p->slots));
		p->free_slots = calloc(b->window, sizeof(*p->free_slots));
		p->fill_ev = event_new(b->base, -1, 0, prod_fill_cb, p);
		if (!p->slots || !p->free_slots || !p->fill_ev)
			return SLUICE_ENOMEM;
		for (uint32_t k = 0; k < b->window; k++) {
			p->slots[k].p = p;
			p->free_slots[k] = b->window - 1 - k;
		}
		p->free_n = b->window;
		int err = sluice_client_new(b->base, &o, &p->c);
		if (err)
			return err;
	}
	return SLUICE_OK;
}

static void bench_prods_close(struct bench *b)
{
	if (!b->prods)
		return;
	for (uint32_t i = 0; i < b->producers; i++) {
		sluice_client_free(b->prods[i].c);
		if (b->prods[i].fill_ev)
			event_free(b->prods[i].fill_ev);
		free(b->prods[i].slots);
		free(b->prods[i].free_slots);
	}
	free(b->prods);
	b->prods = NULL;
}

/* Publish phase (pub, the pre-publish of sub, and the producers of e2e). */
static void bench_publish_start(struct bench *b)
{
	b->stop_publishing = 0;
	b->t_start = bench_now_ns();
	if (b->duration_s > 0) {
		struct timeval tv = {(time_t)b->duration_s, (suseconds_t)((b->duration_s - (time_t)b->duration_s) * 1e6)};
		evtimer_add(b->duration_ev, &tv);
	}
	if (b->rate) {
		struct timeval ms = {0, 1000};
		evtimer_add(b->pace_ev, &ms);
	}
	for (uint32_t i = 0; i < b->producers; i++)
		prod_fill(&b->prods[i]);
}

struct bench_desc {
	int done, err;
	uint64_t ends[4096];
	size_t n;
};

static void bench_describe_cb(void *arg, int err, const char *errmsg, const struct sluice_topic_info *t)
{
	struct bench_desc *d = arg;
	d->done = 1;
	d->err = err;
	for (size_t i = 0; !err && i < t->parts_n && d->n < 4096; i++)
		d->ends[d->n++] = t->parts[i].end_offset;
}

/* Create the topic if missing; for e2e, learn each partition's end offset. */
static int bench_prepare_topic(struct bench *b, struct bench_desc *d)
{
	struct sluice_sync *s;
	char msg[256];
	int rc = cli_connect(b->g, 0, &s);
	if (rc)
		return rc;
	int err = sluice_sync_topic_create(s, b->topic, b->partitions, 0, 0, msg, sizeof(msg));
	if (err == SLUICE_ETOPIC_EXISTS)
		err = SLUICE_OK;
	if (err == SLUICE_OK)
		err = sluice_topic_describe(sluice_sync_client(s), b->topic, bench_describe_cb, d);
	while (err == SLUICE_OK && !d->done)
		event_base_loop(sluice_sync_base(s), EVLOOP_ONCE);
	if (err == SLUICE_OK)
		err = d->err;
	sluice_sync_close(s);
	if (err) {
		fprintf(stderr, "sluice bench: topic %s: %s\n", b->topic, msg[0] ? msg : sluice_strerror(err));
		return cli_exit_code(err);
	}
	return EX_OK;
}

static int bench_subscribe(struct bench *b, const struct bench_desc *d)
{
	struct sluice_client_opts o = cli_client_opts(b->g, 0);
	int err = SLUICE_OK;
	o.retry_max_ms = 30000;
	o.messages_only = b->messages_only;
	if (b->mode == BM_SUB) {
		struct sluice_sub_opts so = {.topic = b->topic, .start = SLUICE_EARLIEST, .credit = 10000};
		for (uint32_t i = 0; i < b->subscribers && err == SLUICE_OK; i++)
			if ((err = sluice_client_new(b->base, &o, &b->sub_c[i])) == SLUICE_OK)
				err = sluice_subscribe(b->sub_c[i], &so, bench_msg_cb, b, NULL);
		return err;
	}
	if ((err = sluice_client_new(b->base, &o, &b->sub_c[0])) != SLUICE_OK)
		return err;
	for (size_t i = 0; i < d->n && err == SLUICE_OK; i++) {
		uint32_t part = (uint32_t)i;
		struct sluice_sub_opts so = {.topic = b->topic, .partitions = &part, .partitions_n = 1,
					     .start = SLUICE_OFFSET, .offset = d->ends[i], .credit = 10000};
		err = sluice_subscribe(b->sub_c[0], &so, bench_msg_cb, b, NULL);
	}
	return err;
}

static void bench_report(struct bench *b)
{
	uint64_t msgs = 0, failed = 0;
	for (uint32_t i = 0; b->prods && i < b->producers; i++) {
		msgs += b->prods[i].acked;
		failed += b->prods[i].failed;
	}
	if (b->mode != BM_PUB)
		msgs = b->received;
	double secs = (double)(b->t_end - b->t_start) / 1e9;
	double rate = secs > 0 ? (double)msgs / secs : 0;
	double mbs = rate * b->size / 1e6;
	qsort(b->lat, b->lat_n, sizeof(*b->lat), u64_cmp);
	static const char *names[] = {"pub", "sub", "e2e"};
	if (b->g->json) {
		json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:f}", "mode", names[b->mode],
				      "topic", b->topic, "producers", (json_int_t)b->producers, "size",
				      (json_int_t)b->size, "linger_ms", (json_int_t)b->linger_ms, "batch_bytes",
				      (json_int_t)b->batch_bytes, "messages", (json_int_t)msgs, "failed",
				      (json_int_t)failed, "seconds", secs, "msgs_per_s", rate, "mb_per_s", mbs);
		json_object_set_new(o, "rate", json_integer((json_int_t)b->rate));
		if (b->mode == BM_SUB) {
			json_object_set_new(o, "subscribers", json_integer((json_int_t)b->subscribers));
			json_object_set_new(o, "batches", json_boolean(!b->messages_only));
		}
		if (b->lat_n)
			json_object_set_new(o, "latency_ms",
					    json_pack("{s:f, s:f, s:f, s:f, s:I}", "p50", lat_pct_ms(b, 50), "p99",
						      lat_pct_ms(b, 99), "p99_9", lat_pct_ms(b, 99.9), "max",
						      (double)b->lat[b->lat_n - 1] / 1e6, "samples", (json_int_t)b->lat_n));
		char *s = json_dumps(o, JSON_COMPACT);
		if (s)
			puts(s);
		free(s);
		json_decref(o);
		return;
	}
	printf("bench %s: topic %s, %u producer%s, %u-byte messages, linger %u ms, batches up to %u bytes\n",
	       names[b->mode], b->topic, b->producers, b->producers == 1 ? "" : "s", b->size, b->linger_ms,
	       b->batch_bytes);
	printf("  messages:   %" PRIu64 " in %.3f s (%" PRIu64 " failed)\n", msgs, secs, failed);
	printf("  throughput: %.0f msg/s, %.2f MB/s\n", rate, mbs);
	if (b->lat_n)
		printf("  latency ms: p50 %.3f  p99 %.3f  p99.9 %.3f  max %.3f  (%zu samples)\n", lat_pct_ms(b, 50),
		       lat_pct_ms(b, 99), lat_pct_ms(b, 99.9), (double)b->lat[b->lat_n - 1] / 1e6, b->lat_n);
}

static int bench_parse(struct bench *b, int argc, char **argv)
{
	static const struct option lo[] = {
		{"topic", required_argument, 0, 't'},    {"partitions", required_argument, 0, 'n'},
		{"size", required_argument, 0, 's'},     {"count", required_argument, 0, 'c'},
		{"duration", required_argument, 0, 'd'}, {"producers", required_argument, 0, 'p'},
		{"window", required_argument, 0, 'w'},   {"linger-ms", required_argument, 0, 'L'},
		{"batch-bytes", required_argument, 0, 'B'}, {"rate", required_argument, 0, 'r'},
		{"subscribers", required_argument, 0, 'S'}, {"messages-only", no_argument, 0, 'M'},
		{0, 0, 0, 0}};
	int ch;
	char *end;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "t:n:s:c:d:p:w:", lo, NULL)) != -1) {
		unsigned long long v = 0;
		if (ch == '?')
			return -1;
		if (ch == 'M') {
			b->messages_only = 1;
			continue;
		}
		if (ch == 't') {
			snprintf(b->topic, sizeof(b->topic), "%s", optarg);
			continue;
		}
		if (ch == 'd') {
			b->duration_s = strtod(optarg, &end);
			if (*end || b->duration_s <= 0)
				return -1;
			continue;
		}
		v = strtoull(optarg, &end, 10);
		if (*end || optarg[0] == '-' || (v == 0 && ch != 'L' && ch != 'r' && ch != 'S') || v > UINT32_MAX)
			return -1;
		if (ch == 'r') {
			b->rate = v;
			continue;
		}
		if (ch == 'n')
			b->partitions = (uint32_t)v;
		else if (ch == 's')
			b->size = (uint32_t)v;
		else if (ch == 'c')
			b->count = v;
		else if (ch == 'p')
			b->producers = (uint32_t)v;
		else if (ch == 'w')
			b->window = (uint32_t)v;
		else if (ch == 'L')
			b->linger_ms = (uint32_t)v;
		else if (ch == 'B')
			b->batch_bytes = (uint32_t)v;
		else if (ch == 'S')
			b->subscribers = (uint32_t)v;
	}
	if (optind + 1 != argc || b->producers > BENCH_PRODUCERS_MAX || b->subscribers > BENCH_SUBSCRIBERS_MAX ||
	    (b->count && b->duration_s > 0))
		return -1;
	const char *m = argv[optind];
	b->mode = !strcmp(m, "pub") ? BM_PUB : !strcmp(m, "sub") ? BM_SUB : !strcmp(m, "e2e") ? BM_E2E : (enum bench_mode)-1;
	if ((int)b->mode < 0 || (b->mode == BM_SUB && b->duration_s > 0))
		return -1;
	if (b->mode == BM_E2E && b->size < 8)
		b->size = 8;
	if (!b->count)
		b->count = BENCH_COUNT_DEFAULT;
	return 0;
}

static int bench_run(struct bench *b)
{
	struct bench_desc d = {0};
	int rc = bench_prepare_topic(b, &d);
	if (rc)
		return rc;
	b->payload = calloc(1, b->size);
	b->lat = malloc(sizeof(*b->lat) * (b->duration_s > 0 ? BENCH_SAMPLES_MAX : b->count + 1));
	b->duration_ev = evtimer_new(b->base, bench_duration_cb, b);
	b->pace_ev = event_new(b->base, -1, EV_PERSIST, bench_pace_cb, b);
	b->drain_ev = evtimer_new(b->base, bench_drain_cb, b);
	if (!b->payload || !b->lat || !b->duration_ev || !b->drain_ev || !b->pace_ev || bench_prods_open(b) != SLUICE_OK)
		return EX_SOFTWARE;
	randombytes_buf(b->payload, b->size);
	b->measure_pub = b->mode == BM_PUB;
	b->expect = b->count;
	if (b->mode == BM_E2E && bench_subscribe(b, &d) != SLUICE_OK)
		return EX_SOFTWARE;
	bench_publish_start(b);
	event_base_dispatch(b->base);
	if (b->mode == BM_SUB && !b->first_err && b->subscribers > 0) {
		/* Timed phase: read everything back from the earliest offset. */
		bench_prods_close(b);
		evtimer_del(b->drain_ev);
		b->t_start = bench_now_ns();
		b->expect = b->count * b->subscribers;
		if (bench_subscribe(b, &d) != SLUICE_OK)
			return EX_SOFTWARE;
		struct timeval tv = {BENCH_DRAIN_MS / 100, 0};
		evtimer_add(b->drain_ev, &tv);
		event_base_dispatch(b->base);
	}
	bench_report(b);
	return b->first_err ? cli_exit_code(b->first_err) : EX_OK;
}

int bench_main(const struct cli_global *g, int argc, char **argv)
{
	struct bench b = {.g = g, .partitions = 1, .producers = 1, .subscribers = 1, .window = BENCH_WINDOW_DEFAULT,
			  .size = BENCH_SIZE_DEFAULT, .linger_ms = CLI_LINGER_MS_DEFAULT,
			  .batch_bytes = CLI_BATCH_BYTES_DEFAULT};
	/* `bench sse` and `bench ws` (bench_sse.c): the mode, not the value of an option */
	for (int i = 1; i < argc; i++)
		if ((!strcmp(argv[i], "sse") || !strcmp(argv[i], "ws")) && (i == 1 || argv[i - 1][0] != '-'))
			return bench_sse_main(g, argc, argv);
	/* `bench consume` and `bench webhook` (bench_consume.c) */
	for (int i = 1; i < argc; i++)
		if ((!strcmp(argv[i], "consume") || !strcmp(argv[i], "webhook")) && (i == 1 || argv[i - 1][0] != '-'))
			return bench_consume_main(g, argc, argv);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			bench_usage(stdout);
			return EX_OK;
		}
	}
	/* getopt wants the mode as a positional: argv[0] is "bench". */
	if (bench_parse(&b, argc, argv) != 0) {
		bench_usage(stderr);
		return EX_USAGE;
	}
	if (!b.topic[0]) {
		uint32_t r = randombytes_random();
		snprintf(b.topic, sizeof(b.topic), "bench-%08x", r);
	}
	b.base = event_base_new();
	if (!b.base)
		return EX_SOFTWARE;
	int rc = bench_run(&b);
	bench_prods_close(&b);
	for (uint32_t i = 0; i < BENCH_SUBSCRIBERS_MAX; i++)
		sluice_client_free(b.sub_c[i]);
	if (b.duration_ev)
		event_free(b.duration_ev);
	if (b.pace_ev)
		event_free(b.pace_ev);
	if (b.drain_ev)
		event_free(b.drain_ev);
	event_base_free(b.base);
	free(b.payload);
	free(b.lat);
	return rc;
}
