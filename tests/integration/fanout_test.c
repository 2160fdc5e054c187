/*
 * fanout_test.c: deliveries shared between subscriptions (fe_fanout.c) do
 * not mix them up. Many SSE streams (raw and json, one partition and
 * several) and native subscriptions (one or two per connection, with large
 * and with small credit) read the same partitions from different positions,
 * some in the middle of a stored batch; each must get exactly its own
 * messages, in order, with its own ids and subscription id. A slow reader
 * held at its output watermark must get every byte intact later, while the
 * others go on.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include "harness.h"
#include "pubbatch.h"
#include "sluice.pb-c.h"

static struct itest_node node;
static int pubfd = -1;
static uint64_t next_req = 100;

static void setup(void)
{
	cr_assert_eq(itest_node_init(&node), 0);
	node.extra[0] = "--output-low-bytes";
	node.extra[1] = "16k";
	node.extra[2] = "--output-high-bytes";
	node.extra[3] = "64k";
	cr_assert_eq(itest_node_start(&node), 0);
	pubfd = itest_connect(node.port);
	cr_assert(pubfd >= 0);
	cr_assert_eq(itest_hello(pubfd), 0);
}

static void teardown(void)
{
	if (pubfd >= 0)
		close(pubfd);
	itest_node_destroy(&node);
}

TestSuite(fanout, .init = setup, .fini = teardown, .timeout = 120);

/* The payload of message `seq`, size bytes (at least 16): "SEQ:" then a letter pattern. */
static size_t payload_of(uint32_t seq, size_t size, char *out)
{
	int n = snprintf(out, size, "%u:", seq);
	for (size_t i = (size_t)n; i < size; i++)
		out[i] = (char)('a' + (seq + i) % 26);
	return size;
}

/* One PublishBatch of count messages seq0.. to partition p, as one stored batch. */
static void publish_batch(const char *topic, uint32_t p, uint32_t seq0, uint32_t count, size_t size)
{
	uint8_t *recs = malloc(count * (PUBBATCH_REC_HDR + size)), *w = recs;
	char *pl = malloc(size);

	cr_assert(recs && pl);
	for (uint32_t i = 0; i < count; i++) {
		struct slice none = {NULL, 0}, body = {(uint8_t *)pl, payload_of(seq0 + i, size, pl)};
		w += pubbatch_put(w, none, none, body);
	}
	cr_assert_eq(itest_raw_publish_batch(pubfd, next_req++, topic, p, recs, (size_t)(w - recs), count, NULL), 0,
	             "publish refused");
	free(recs);
	free(pl);
}

/* ---------- SSE readers ---------- */

#define EVENTS_MAX 8192

struct sse {
	int fd;
	char *buf;
	size_t len, cap;
	int headers_done;
	size_t n;                 /* events parsed */
	char ids[EVENTS_MAX][64];
	char *data[EVENTS_MAX];   /* the data lines joined by '\n' */
};

static struct sse *sse_open(const char *path, const char *extra, int rcvbuf)
{
	struct sse *s = calloc(1, sizeof(*s));
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(node.http_port)};
	char req[512];

	cr_assert(s);
	s->cap = 1 << 16;
	s->buf = malloc(s->cap);
	s->fd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert(s->buf && s->fd >= 0);
	if (rcvbuf)
		setsockopt(s->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(connect(s->fd, (struct sockaddr *)&a, sizeof(a)), 0);
	snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n", path, extra ? extra : "");
	cr_assert_eq(itest_send_raw(s->fd, req, strlen(req)), 0);
	return s;
}

static void sse_free(struct sse *s)
{
	close(s->fd);
	for (size_t i = 0; i < s->n; i++)
		free(s->data[i]);
	free(s->buf);
	free(s);
}

/* Parse the complete events in the buffer (id, data; comments and retry skipped). */
static void sse_parse(struct sse *s)
{
	char *p = s->buf, *end = s->buf + s->len, *blk;

	if (!s->headers_done) {
		s->buf[s->len] = 0;
		if (!(blk = strstr(s->buf, "\r\n\r\n")))
			return;
		cr_assert(strncmp(s->buf, "HTTP/1.1 200", 12) == 0, "%.*s", (int)s->len, s->buf);
		s->headers_done = 1;
		p = blk + 4;
	}
	while ((blk = memmem(p, (size_t)(end - p), "\n\n", 2))) {
		char id[64] = "", *data = NULL;
		size_t dlen = 0;
		*blk = 0;
		for (char *line = p, *nl; line < blk; line = nl + 1) {
			nl = strchr(line, '\n');
			if (!nl)
				nl = blk;
			*nl = 0;
			if (strncmp(line, "id: ", 4) == 0) {
				snprintf(id, sizeof(id), "%s", line + 4);
			} else if (strncmp(line, "data: ", 6) == 0) {
				size_t l = strlen(line + 6);
				data = realloc(data, dlen + l + 2);
				if (dlen)
					data[dlen++] = '\n';
				memcpy(data + dlen, line + 6, l + 1);
				dlen += l;
			}
		}
		if (data) {
			cr_assert(s->n < EVENTS_MAX);
			snprintf(s->ids[s->n], sizeof(s->ids[0]), "%s", id);
			s->data[s->n++] = data;
		}
		p = blk + 2;
	}
	memmove(s->buf, p, (size_t)(end - p));
	s->len = (size_t)(end - p);
}

/* Read what is there (up to timeout_ms); 0 at EOF. */
static int sse_pump(struct sse *s, int timeout_ms)
{
	struct pollfd pf = {s->fd, POLLIN, 0};
	ssize_t n;

	if (poll(&pf, 1, timeout_ms) <= 0)
		return 1;
	if (s->cap - s->len < 4096 + 1) {
		s->cap *= 2;
		s->buf = realloc(s->buf, s->cap);
		cr_assert(s->buf);
	}
	n = read(s->fd, s->buf + s->len, s->cap - s->len - 1);
	if (n <= 0)
		return 0;
	s->len += (size_t)n;
	sse_parse(s);
	return 1;
}

/* ---------- native subscribers ---------- */

#define NSUBS_MAX 2

struct nconn {
	int fd;
	size_t nsubs;
	uint64_t sub_id[NSUBS_MAX];
	uint32_t credit_step; /* 0: large credit granted once; else regrant this many when used up */
	uint64_t credit_left[NSUBS_MAX];
	size_t n[NSUBS_MAX];
	uint64_t off[NSUBS_MAX][EVENTS_MAX];
	char *payload[NSUBS_MAX][EVENTS_MAX];
};

static struct nconn *native_open(uint32_t credit_step)
{
	struct nconn *c = calloc(1, sizeof(*c));

	cr_assert(c);
	c->fd = itest_connect(node.port);
	cr_assert(c->fd >= 0);
	cr_assert_eq(itest_hello(c->fd), 0);
	c->credit_step = credit_step;
	return c;
}

static void native_credit(struct nconn *c, uint64_t sub_id, uint32_t n)
{
	Sluice__Frame f = SLUICE__FRAME__INIT;
	Sluice__Credit cr = SLUICE__CREDIT__INIT;

	cr.subscription_id = sub_id;
	cr.credit = n;
	f.body_case = SLUICE__FRAME__BODY_CREDIT;
	f.credit = &cr;
	cr_assert_eq(itest_send_frame(c->fd, &f), 0);
}

/* One Delivery of c's subscriptions: check and keep its messages. */
static void native_take(struct nconn *c, Sluice__Frame *r)
{
	size_t k;

	cr_assert_eq(r->body_case, SLUICE__FRAME__BODY_DELIVERY, "unexpected frame %d", r->body_case);
	cr_assert_eq(r->id, 0);
	for (k = 0; k < c->nsubs && c->sub_id[k] != r->delivery->subscription_id; k++)
		;
	cr_assert(k < c->nsubs, "delivery for subscription %llu, not ours",
	          (unsigned long long)r->delivery->subscription_id);
	cr_assert_eq(r->delivery->end_error, 0);
	cr_assert(r->delivery->n_messages <= c->credit_left[k], "more messages than credit");
	for (size_t i = 0; i < r->delivery->n_messages; i++) {
		Sluice__Message *m = r->delivery->messages[i];
		cr_assert(c->n[k] < EVENTS_MAX);
		cr_assert_eq(m->partition, 0);
		c->off[k][c->n[k]] = m->offset;
		c->payload[k][c->n[k]] = strndup((const char *)m->payload.data, m->payload.len);
		c->n[k]++;
	}
	c->credit_left[k] -= r->delivery->n_messages;
	if (c->credit_step && c->credit_left[k] == 0) {
		native_credit(c, c->sub_id[k], c->credit_step);
		c->credit_left[k] = c->credit_step;
	}
}

/* Take the frames that came (waiting up to timeout_ms for the first); a
 * frame begun is read whole. */
static void native_pump(struct nconn *c, int timeout_ms)
{
	struct pollfd pf = {c->fd, POLLIN, 0};
	Sluice__Frame *r = NULL;

	while (poll(&pf, 1, timeout_ms) == 1) {
		cr_assert_eq(itest_recv_frame(c->fd, 10000, &r), 0);
		native_take(c, r);
		sluice__frame__free_unpacked(r, NULL);
		timeout_ms = 0;
	}
}

static void native_subscribe(struct nconn *c, const char *topic, uint64_t offset)
{
	Sluice__Frame f = SLUICE__FRAME__INIT, *r = NULL;
	Sluice__Subscribe m = SLUICE__SUBSCRIBE__INIT;
	uint32_t part = 0;
	uint64_t id = next_req++;

	cr_assert(c->nsubs < NSUBS_MAX);
	m.topic = (char *)topic;
	m.n_partitions = 1;
	m.partitions = &part;
	m.start = SLUICE__START_AT__OFFSET;
	m.offset = offset;
	m.credit = c->credit_step ? c->credit_step : 100000;
	f.id = id;
	f.body_case = SLUICE__FRAME__BODY_SUBSCRIBE;
	f.subscribe = &m;
	cr_assert_eq(itest_send_frame(c->fd, &f), 0);
	/* the connection's other subscriptions may deliver meanwhile */
	for (;;) {
		cr_assert_eq(itest_recv_frame(c->fd, 10000, &r), 0);
		if (r->id == id)
			break;
		native_take(c, r);
		sluice__frame__free_unpacked(r, NULL);
	}
	cr_assert_eq(r->body_case, SLUICE__FRAME__BODY_SUBSCRIBED);
	c->sub_id[c->nsubs] = r->subscribed->subscription_id;
	c->credit_left[c->nsubs++] = m.credit;
	sluice__frame__free_unpacked(r, NULL);
}

static void native_free(struct nconn *c)
{
	close(c->fd);
	for (size_t k = 0; k < c->nsubs; k++)
		for (size_t i = 0; i < c->n[k]; i++)
			free(c->payload[k][i]);
	free(c);
}

/* ---------- checks ---------- */

static void expect_payload(const char *got, uint32_t seq, size_t size, const char *who)
{
	char want[2048];

	cr_assert(size < sizeof(want));
	payload_of(seq, size, want);
	want[size] = 0;
	cr_assert_str_eq(got, want, "%s: message %u", who, seq);
}

/* A raw or json SSE stream of one partition got exactly [from, end). */
static void expect_sse_single(const struct sse *s, uint32_t part, uint64_t from, uint64_t end, int json, size_t size,
                              const char *who)
{
	uint32_t seq0 = part ? 100 : 0; /* the payloads of partition 1 count from 100 */

	cr_assert_eq(s->n, end - from, "%s: %zu events, want %llu", who, s->n, (unsigned long long)(end - from));
	for (size_t i = 0; i < s->n; i++) {
		uint64_t off = from + i;
		char id[64];
		snprintf(id, sizeof(id), "%u:%llu", part, (unsigned long long)off + 1);
		cr_assert_str_eq(s->ids[i], id, "%s: event %zu", who, i);
		if (json) {
			char want[320], pl[2048];
			payload_of(seq0 + (uint32_t)off, size, pl);
			pl[size] = 0;
			snprintf(want, sizeof(want), "\"offset\":%llu", (unsigned long long)off);
			cr_assert(strstr(s->data[i], want), "%s: %s", who, s->data[i]);
			cr_assert(strstr(s->data[i], pl), "%s: %s", who, s->data[i]);
		} else {
			expect_payload(s->data[i], seq0 + (uint32_t)off, size, who);
		}
	}
}

static int sse_done(const struct sse *s, size_t want)
{
	return s->n >= want;
}

Test(fanout, shared_deliveries_keep_subscribers_apart)
{
	const size_t size = 40;
	struct sse *raw0[2], *raw7, *json0, *json13[2], *resumed, *partial, *multi[2];
	struct nconn *two, *one, *small;
	char extra[128];

	cr_assert_eq(itest_raw_create_topic(pubfd, next_req++, "f", 1), 0);
	cr_assert_eq(itest_raw_create_topic(pubfd, next_req++, "g", 2), 0);
	publish_batch("f", 0, 0, 20, size); /* offsets 0..19: one stored batch */
	publish_batch("g", 0, 0, 10, size);
	publish_batch("g", 1, 100, 10, size);

	for (int i = 0; i < 2; i++) {
		raw0[i] = sse_open("/v1/topics/f/events?from=earliest&format=raw", NULL, 0);
		json13[i] = sse_open("/v1/topics/f/events?from=13&format=json", NULL, 0);
	}
	raw7 = sse_open("/v1/topics/f/events?from=7", NULL, 0); /* mid-batch */
	json0 = sse_open("/v1/topics/f/events?from=earliest&format=json", NULL, 0);
	snprintf(extra, sizeof(extra), "Last-Event-ID: 0:5\r\n");
	resumed = sse_open("/v1/topics/f/events", extra, 0);
	multi[0] = sse_open("/v1/topics/g/events?from=earliest", NULL, 0);
	multi[1] = sse_open("/v1/topics/g/events?from=earliest&format=json", NULL, 0);
	partial = sse_open("/v1/topics/g/events?from=3&partition=1", NULL, 0);
	two = native_open(0);
	native_subscribe(two, "f", 0);
	native_subscribe(two, "f", 11); /* mid-batch, on the same connection */
	one = native_open(0);
	native_subscribe(one, "f", 0);
	small = native_open(3); /* credit 3 at a time: paused at every third message */
	native_subscribe(small, "f", 2);

	struct sse *all[] = {raw0[0], raw0[1], json13[0], json13[1], raw7, json0, resumed, multi[0], multi[1], partial};
	size_t nall = sizeof(all) / sizeof(all[0]);
	size_t want[] = {60, 60, 47, 47, 53, 60, 55, 40, 40, 17};
	/* live: two more batches, every stream at the same position by then or catching up */
	for (int round = 0; round < 2; round++) {
		for (int t = 0; t < 20; t++) {
			for (size_t i = 0; i < nall; i++)
				sse_pump(all[i], 0);
			native_pump(two, 0);
			native_pump(one, 0);
			native_pump(small, 0);
			itest_sleep_ms(5);
		}
		publish_batch("f", 0, 20 + 20 * round, 20, size);
		publish_batch("g", round, round ? 110 : 10, 10, size);
	}
	long long deadline = itest_now_ms() + 20000;
	for (;;) {
		int done = 1;
		for (size_t i = 0; i < nall; i++) {
			sse_pump(all[i], 1);
			done &= sse_done(all[i], want[i]);
		}
		native_pump(two, 1);
		native_pump(one, 1);
		native_pump(small, 1);
		done &= two->n[0] >= 60 && two->n[1] >= 49 && one->n[0] >= 60 && small->n[0] >= 58;
		if (done || itest_now_ms() > deadline)
			break;
	}
	for (size_t i = 0; i < nall; i++)
		cr_assert_eq(all[i]->n, want[i], "stream %zu: %zu events, want %zu", i, all[i]->n, want[i]);
	expect_sse_single(raw0[0], 0, 0, 60, 0, size, "raw from 0 (a)");
	expect_sse_single(raw0[1], 0, 0, 60, 0, size, "raw from 0 (b)");
	expect_sse_single(raw7, 0, 7, 60, 0, size, "raw from 7");
	expect_sse_single(resumed, 0, 5, 60, 0, size, "Last-Event-ID 0:5");
	expect_sse_single(json0, 0, 0, 60, 1, size, "json from 0");
	expect_sse_single(json13[0], 0, 13, 60, 1, size, "json from 13 (a)");
	expect_sse_single(json13[1], 0, 13, 60, 1, size, "json from 13 (b)");
	expect_sse_single(partial, 1, 3, 20, 0, size, "g partition 1 from 3");
	/* several partitions: each event's id names its own next offset, and
	 * the other partition's position as it was then */
	for (int k = 0; k < 2; k++) {
		uint64_t pos[2] = {0, 0};
		cr_assert_eq(multi[k]->n, 40);
		for (size_t i = 0; i < multi[k]->n; i++) {
			const char *d = multi[k]->data[i];
			const char *num = k ? strstr(d, "\"payload\":\"") : d;
			unsigned seq;
			char id[64];
			cr_assert(num, "%s", d);
			cr_assert_eq(sscanf(k ? num + 11 : num, "%u:", &seq), 1, "%s", d);
			uint32_t p = seq >= 100;
			uint64_t off = p ? seq - 100 : seq;
			cr_assert_eq(off, pos[p], "stream %d: partition %u out of order", k, p);
			pos[p] = off + 1;
			snprintf(id, sizeof(id), "0:%llu,1:%llu", (unsigned long long)pos[0], (unsigned long long)pos[1]);
			cr_assert_str_eq(multi[k]->ids[i], id, "stream %d event %zu", k, i);
		}
	}
	/* native: exactly [from, 60) each, with the subscription's own id */
	struct {
		struct nconn *c;
		size_t k;
		uint64_t from;
	} nat[] = {{two, 0, 0}, {two, 1, 11}, {one, 0, 0}, {small, 0, 2}};
	for (size_t j = 0; j < sizeof(nat) / sizeof(nat[0]); j++) {
		struct nconn *c = nat[j].c;
		size_t k = nat[j].k;
		cr_assert_eq(c->n[k], 60 - nat[j].from, "native %zu: %zu messages", j, c->n[k]);
		for (size_t i = 0; i < c->n[k]; i++) {
			cr_assert_eq(c->off[k][i], nat[j].from + i, "native %zu", j);
			expect_payload(c->payload[k][i], (uint32_t)(nat[j].from + i), size, "native");
		}
	}
	for (size_t i = 0; i < nall; i++)
		sse_free(all[i]);
	native_free(two);
	native_free(one);
	native_free(small);
}

Test(fanout, slow_reader_at_the_watermark_keeps_its_bytes)
{
	/* 6 MB of events: more than the slow stream's socket buffers and its
	 * 64 KiB output watermark hold, so the frontend stops reading for it */
	const size_t size = 1000, count = 6000, per = 200;
	struct sse *slow, *fast;
	struct nconn *nat;
	char pl[2048];

	cr_assert_eq(itest_raw_create_topic(pubfd, next_req++, "s", 1), 0);
	slow = sse_open("/v1/topics/s/events?from=earliest", NULL, 4096);
	fast = sse_open("/v1/topics/s/events?from=earliest", NULL, 0);
	nat = native_open(0);
	native_subscribe(nat, "s", 0);
	/* the slow stream reads its headers, then nothing until the end */
	while (!slow->headers_done)
		cr_assert(sse_pump(slow, 1000));
	for (size_t b = 0; b < count / per; b++) {
		publish_batch("s", 0, (uint32_t)(b * per), (uint32_t)per, size);
		for (int t = 0; t < 50; t++) {
			sse_pump(fast, 0);
			native_pump(nat, 0);
		}
	}
	long long deadline = itest_now_ms() + 20000;
	while ((fast->n < count || nat->n[0] < count) && itest_now_ms() < deadline) {
		sse_pump(fast, 1);
		native_pump(nat, 1);
	}
	/* the others got everything while the slow one was held back */
	cr_assert_eq(fast->n, count);
	cr_assert_eq(nat->n[0], count);
	cr_assert(slow->n < count / 2, "the slow reader was not held back (%zu events)", slow->n);
	deadline = itest_now_ms() + 30000;
	while (slow->n < count && itest_now_ms() < deadline)
		sse_pump(slow, 10);
	expect_sse_single(slow, 0, 0, count, 0, size, "slow");
	expect_sse_single(fast, 0, 0, count, 0, size, "fast");
	for (size_t i = 0; i < count; i++) {
		cr_assert_eq(nat->off[0][i], i);
		payload_of((uint32_t)i, size, pl);
		cr_assert_eq(memcmp(nat->payload[0][i], pl, size), 0);
	}
	sse_free(slow);
	sse_free(fast);
	native_free(nat);
}
