/*
 * client_test.c: libsluice against a real sluiced. Publishing (key routing,
 * explicit partitions, headers, per-partition offsets in ack order), every
 * subscription start position, credit-window delivery of many messages,
 * long-poll fetch, consumer-group commits, admin calls, and the broker's
 * duplicate suppression by (producer_id, sequence) through the raw protocol
 * since the library manages sequences itself.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "sluice/sluice.h"

static struct itest_node node;
static struct sluice_sync *sy;
static struct event_base *base;
static struct sluice_client *cli;

static void setup(void)
{
	struct sluice_client_opts o = {0};

	cr_assert_eq(itest_node_init(&node), 0);
	cr_assert_eq(itest_node_start(&node), 0, "sluiced did not become ready");
	o.servers = node.addr;
	o.client_name = "itest-client";
	cr_assert_eq(sluice_sync_open(&o, &sy), 0, "sync open");
	base = event_base_new();
	cr_assert_not_null(base);
	cr_assert_eq(sluice_client_new(base, &o, &cli), 0, "client new");
}

static void teardown(void)
{
	if (cli)
		sluice_client_free(cli);
	if (base)
		event_base_free(base);
	if (sy)
		sluice_sync_close(sy);
	cli = NULL;
	base = NULL;
	sy = NULL;
	itest_node_destroy(&node);
}

TestSuite(client, .init = setup, .fini = teardown, .timeout = 120);

/* ---- helpers ---- */

/* Run the async client's loop until *count >= want or timeout. */
static int loop_until(const size_t *count, size_t want, int timeout_ms)
{
	return itest_loop_until(base, count, want, timeout_ms);
}

static void loop_for(int ms)
{
	itest_loop_for(base, ms);
}

static void create_topic(const char *name, uint32_t parts)
{
	char em[256] = "";
	int rc = sluice_sync_topic_create(sy, name, parts, 0, 0, em, sizeof(em));

	cr_assert_eq(rc, 0, "create %s: %d %s", name, rc, em);
}

static void sync_pub(const char *topic, const char *key, int part, const char *payload, uint32_t *p_out,
                     uint64_t *o_out)
{
	struct sluice_pub p = {0};
	char em[256] = "";
	int rc;

	p.topic = topic;
	p.key = sluice_bytes_cstr(key);
	p.has_partition = part >= 0;
	p.partition = part >= 0 ? (uint32_t)part : 0;
	p.payload = sluice_bytes_cstr(payload);
	rc = sluice_sync_publish(sy, &p, p_out, o_out, em, sizeof(em));
	cr_assert_eq(rc, 0, "publish %s: %d %s", payload, rc, em);
}

struct stored {
	uint64_t offset;
	int64_t ts;
	char payload[64];
};

struct fetch_acc {
	struct stored *v;
	size_t n, cap;
};

static void fetch_fn(void *arg, const struct sluice_msg *m)
{
	struct fetch_acc *a = arg;
	struct stored *s;

	if (a->n == a->cap)
		return;
	s = &a->v[a->n++];
	s->offset = m->offset;
	s->ts = m->timestamp_ms;
	snprintf(s->payload, sizeof(s->payload), "%.*s", (int)m->payload.len, (const char *)m->payload.base);
}

/* Everything in one partition from offset 0 to its end. */
static size_t fetch_all(const char *topic, uint32_t part, struct stored *v, size_t cap)
{
	struct fetch_acc a = {v, 0, cap};
	uint64_t end = 0;
	char em[256] = "";
	int rc = itest_fetch_all(sy, topic, part, 500, fetch_fn, &a, &end, em, sizeof(em));

	cr_assert_eq(rc, 0, "fetch %s/%u: %d %s", topic, part, rc, em);
	cr_assert_eq(a.n, (size_t)end, "%s/%u: fetched %zu of end %llu", topic, part, a.n, (unsigned long long)end);
	return a.n;
}

/* ---- publishing ---- */

Test(client, same_key_same_partition_and_offsets_by_one)
{
	uint32_t first[20];
	uint64_t next[4] = {0};
	int used[4] = {0}, nused = 0;
	char key[16], payload[32];

	create_topic("keys", 4);
	for (int round = 0; round < 5; round++)
		for (int k = 0; k < 20; k++) {
			uint32_t p = 99;
			uint64_t o = 99;
			snprintf(key, sizeof(key), "k%d", k);
			snprintf(payload, sizeof(payload), "%s-%d", key, round);
			sync_pub("keys", key, -1, payload, &p, &o);
			cr_assert_lt(p, 4u);
			if (round == 0)
				first[k] = p;
			cr_assert_eq(p, first[k], "key %s moved from partition %u to %u", key, first[k], p);
			cr_assert_eq(o, next[p], "partition %u: offset %llu, want %llu", p, (unsigned long long)o,
			             (unsigned long long)next[p]);
			next[p]++;
			used[p] = 1;
		}
	for (int i = 0; i < 4; i++)
		nused += used[i];
	cr_assert_geq(nused, 2, "20 keys all hashed to one partition");
}

Test(client, explicit_partition)
{
	struct sluice_pub p = {0};
	char em[256] = "";
	uint32_t part;
	uint64_t off;
	int rc;

	create_topic("explicit", 3);
	for (int i = 0; i < 3; i++) {
		sync_pub("explicit", "some-key", 2, "x", &part, &off);
		cr_assert_eq(part, 2);
		cr_assert_eq(off, (uint64_t)i);
	}
	sync_pub("explicit", NULL, 0, "y", &part, &off);
	cr_assert_eq(part, 0);
	cr_assert_eq(off, 0);
	p.topic = "explicit";
	p.has_partition = 1;
	p.partition = 3;
	p.payload = sluice_bytes_cstr("z");
	rc = sluice_sync_publish(sy, &p, &part, &off, em, sizeof(em));
	cr_assert_eq(rc, SLUICE_EINVAL, "partition 3 of 3: rc %d", rc);
	p.topic = "missing";
	p.partition = 0;
	rc = sluice_sync_publish(sy, &p, &part, &off, em, sizeof(em));
	cr_assert_eq(rc, SLUICE_ENOTOPIC, "missing topic: rc %d", rc);
}

static int bytes_eq(struct sluice_bytes a, struct sluice_bytes b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.base, b.base, a.len) == 0);
}

struct hdr_check {
	int seen;
};

static void hdr_fetch_fn(void *arg, const struct sluice_msg *m)
{
	static const uint8_t bin[] = {0, 1, 0xff, 0x7f};
	static const uint8_t pay[] = {'h', 0, 'i', 0xfe};
	struct hdr_check *h = arg;
	long long now = (long long)time(NULL) * 1000;

	h->seen++;
	cr_assert_eq(m->offset, 0);
	cr_assert_str_eq(m->topic, "hdrs");
	cr_assert(bytes_eq(m->key, sluice_bytes_cstr("the-key")), "key");
	cr_assert(bytes_eq(m->payload, sluice_bytes_make(pay, sizeof(pay))), "binary payload");
	cr_assert_eq(m->headers_n, 3);
	cr_assert_str_eq(m->headers[0].key, "content-type");
	cr_assert(bytes_eq(m->headers[0].value, sluice_bytes_cstr("text/plain")));
	cr_assert_str_eq(m->headers[1].key, "bin");
	cr_assert(bytes_eq(m->headers[1].value, sluice_bytes_make(bin, sizeof(bin))));
	cr_assert_str_eq(m->headers[2].key, "empty");
	cr_assert_eq(m->headers[2].value.len, 0);
	cr_assert(m->timestamp_ms > now - 60000 && m->timestamp_ms < now + 60000, "timestamp %lld",
	          (long long)m->timestamp_ms);
}

Test(client, headers_key_and_binary_payload_round_trip)
{
	static const uint8_t bin[] = {0, 1, 0xff, 0x7f};
	static const uint8_t pay[] = {'h', 0, 'i', 0xfe};
	struct sluice_header hs[3] = {
	    {"content-type", {(const uint8_t *)"text/plain", 10}},
	    {"bin", {bin, sizeof(bin)}},
	    {"empty", {NULL, 0}},
	};
	struct sluice_pub p = {0};
	struct hdr_check h = {0};
	char em[256] = "";
	uint32_t part;
	uint64_t off, end = 0;

	create_topic("hdrs", 1);
	p.topic = "hdrs";
	p.key = sluice_bytes_cstr("the-key");
	p.headers = hs;
	p.headers_n = 3;
	p.payload = sluice_bytes_make(pay, sizeof(pay));
	cr_assert_eq(sluice_sync_publish(sy, &p, &part, &off, em, sizeof(em)), 0, "%s", em);
	cr_assert_eq(off, 0);
	cr_assert_eq(sluice_sync_fetch(sy, "hdrs", 0, 0, 10, 0, hdr_fetch_fn, &h, &end, em, sizeof(em)), 0, "%s", em);
	cr_assert_eq(h.seen, 1);
	cr_assert_eq(end, 1);
}

struct acks {
	size_t n, errs;
	uint32_t part[1000];
	uint64_t off[1000];
	int idx[1000];
};

struct ack_ctx {
	struct acks *a;
	int idx;
};

static void ack_cb(void *arg, int err, const char *errmsg, uint32_t partition, uint64_t offset, int64_t ts, int dup)
{
	struct ack_ctx *c = arg;
	struct acks *a = c->a;

	(void)ts;
	if (err) {
		fprintf(stderr, "ack %d: %d %s\n", c->idx, err, errmsg ? errmsg : "");
		a->errs++;
	}
	cr_assert_eq(dup, 0);
	a->part[a->n] = partition;
	a->off[a->n] = offset;
	a->idx[a->n] = c->idx;
	a->n++;
}

Test(client, async_pipelined_offsets_increase_by_one_in_ack_order)
{
	enum { N = 600 };
	static struct acks a;
	static struct ack_ctx ctx[N];
	static struct stored got[N];
	static char payloads[N][32];
	uint64_t next[3] = {0};
	char key[16];

	memset(&a, 0, sizeof(a));
	create_topic("pipe", 3);
	for (int i = 0; i < N; i++) {
		struct sluice_pub p = {0};
		snprintf(key, sizeof(key), "k%d", i % 7);
		snprintf(payloads[i], sizeof(payloads[i]), "pipe-%d", i);
		p.topic = "pipe";
		p.key = sluice_bytes_cstr(key);
		p.payload = sluice_bytes_cstr(payloads[i]);
		ctx[i] = (struct ack_ctx){&a, i};
		cr_assert_eq(sluice_publish(cli, &p, ack_cb, &ctx[i]), 0);
	}
	cr_assert_eq(loop_until(&a.n, N, 30000), 0, "only %zu of %d acks", a.n, N);
	cr_assert_eq(a.errs, 0);
	for (size_t i = 0; i < a.n; i++) {
		uint32_t p = a.part[i];
		cr_assert_lt(p, 3u);
		cr_assert_eq(a.off[i], next[p], "ack %zu: partition %u offset %llu, want %llu", i, p,
		             (unsigned long long)a.off[i], (unsigned long long)next[p]);
		next[p]++;
	}
	for (uint32_t p = 0; p < 3; p++) {
		size_t n = fetch_all("pipe", p, got, N);
		cr_assert_eq(n, next[p]);
		for (size_t i = 0; i < a.n; i++)
			if (a.part[i] == p)
				cr_assert_str_eq(got[a.off[i]].payload, payloads[a.idx[i]], "partition %u offset %llu",
				                 p, (unsigned long long)a.off[i]);
	}
	cr_assert_eq(sluice_client_inflight(cli), 0);
}

/* ---- subscriptions ---- */

struct subrec {
	size_t n, errs;
	uint64_t off[2000];
	char payload[2000][32];
};

static void sub_cb(void *arg, int err, const char *errmsg, const struct sluice_msg *m)
{
	struct subrec *r = arg;

	if (err == SLUICE_ECLOSED)
		return; /* the client was freed at teardown */
	if (err) {
		fprintf(stderr, "subscription ended: %d %s\n", err, errmsg ? errmsg : "");
		r->errs++;
		return;
	}
	cr_assert_lt(r->n, 2000u, "too many deliveries");
	r->off[r->n] = m->offset;
	snprintf(r->payload[r->n], sizeof(r->payload[0]), "%.*s", (int)m->payload.len, (const char *)m->payload.base);
	r->n++;
}

/* Subscribe, collect want messages, then make sure no extra one follows. */
static void subscribe_expect(struct sluice_sub_opts *o, uint64_t first, size_t want, struct subrec *r)
{
	uint64_t sub = 0;

	memset(r, 0, sizeof(*r));
	cr_assert_eq(sluice_subscribe(cli, o, sub_cb, r, &sub), 0);
	cr_assert_eq(loop_until(&r->n, want, 15000), 0, "start %d: %zu of %zu messages", o->start, r->n, want);
	loop_for(300);
	cr_assert_eq(r->errs, 0);
	cr_assert_eq(r->n, want, "start %d: %zu messages, want %zu", o->start, r->n, want);
	for (size_t i = 0; i < want; i++) {
		char exp[32];
		cr_assert_eq(r->off[i], first + i, "start %d: message %zu at offset %llu", o->start, i,
		             (unsigned long long)r->off[i]);
		snprintf(exp, sizeof(exp), "s-%llu", (unsigned long long)(first + i));
		cr_assert_str_eq(r->payload[i], exp);
	}
	cr_assert_eq(sluice_unsubscribe(cli, sub), 0);
	loop_for(50);
}

Test(client, subscribe_start_positions)
{
	static struct subrec r;
	static struct stored got[64];
	struct sluice_sub_opts o = {0};
	char payload[32];

	create_topic("subs", 1);
	for (int i = 0; i < 30; i++) {
		if (i == 20)
			itest_sleep_ms(30); /* a timestamp boundary between offsets 19 and 20 */
		snprintf(payload, sizeof(payload), "s-%d", i);
		sync_pub("subs", NULL, -1, payload, NULL, NULL);
	}
	cr_assert_eq(fetch_all("subs", 0, got, 64), 30);
	cr_assert_lt(got[19].ts, got[20].ts, "server timestamps must follow publish time");

	o.topic = "subs";
	o.start = SLUICE_EARLIEST;
	subscribe_expect(&o, 0, 30, &r);
	o.start = SLUICE_OFFSET;
	o.offset = 7;
	subscribe_expect(&o, 7, 23, &r);
	o.start = SLUICE_TIMESTAMP;
	o.timestamp_ms = got[20].ts;
	subscribe_expect(&o, 20, 10, &r);

	/* LATEST: the subscribe goes out before the publishes on the same connection. */
	{
		static struct acks a;
		static struct ack_ctx ctx[3];
		uint64_t sub = 0;
		memset(&a, 0, sizeof(a));
		memset(&r, 0, sizeof(r));
		o.start = SLUICE_LATEST;
		cr_assert_eq(sluice_subscribe(cli, &o, sub_cb, &r, &sub), 0);
		for (int i = 0; i < 3; i++) {
			struct sluice_pub p = {0};
			snprintf(payload, sizeof(payload), "s-%d", 30 + i);
			p.topic = "subs";
			p.payload = sluice_bytes_cstr(payload);
			ctx[i] = (struct ack_ctx){&a, i};
			cr_assert_eq(sluice_publish(cli, &p, ack_cb, &ctx[i]), 0);
		}
		cr_assert_eq(loop_until(&r.n, 3, 15000), 0, "LATEST got %zu of 3", r.n);
		loop_for(300);
		cr_assert_eq(r.n, 3, "LATEST must not replay old messages");
		for (int i = 0; i < 3; i++) {
			cr_assert_eq(r.off[i], 30u + (unsigned)i);
			snprintf(payload, sizeof(payload), "s-%d", 30 + i);
			cr_assert_str_eq(r.payload[i], payload);
		}
		cr_assert_eq(sluice_unsubscribe(cli, sub), 0);
	}
}

Test(client, small_credit_window_delivers_everything_in_order)
{
	enum { N = 1000 };
	static struct acks a;
	static struct ack_ctx ctx[N];
	static struct subrec r;
	static char payloads[N][32];
	struct sluice_sub_opts o = {0};
	uint64_t sub = 0;

	memset(&a, 0, sizeof(a));
	memset(&r, 0, sizeof(r));
	create_topic("flow", 1);
	for (int i = 0; i < N; i++) {
		struct sluice_pub p = {0};
		snprintf(payloads[i], sizeof(payloads[i]), "s-%d", i);
		p.topic = "flow";
		p.payload = sluice_bytes_cstr(payloads[i]);
		ctx[i] = (struct ack_ctx){&a, i};
		cr_assert_eq(sluice_publish(cli, &p, ack_cb, &ctx[i]), 0);
	}
	cr_assert_eq(loop_until(&a.n, N, 30000), 0);
	cr_assert_eq(a.errs, 0);
	o.topic = "flow";
	o.start = SLUICE_EARLIEST;
	o.credit = 10;
	cr_assert_eq(sluice_subscribe(cli, &o, sub_cb, &r, &sub), 0);
	cr_assert_eq(loop_until(&r.n, N, 30000), 0, "credit 10: %zu of %d delivered", r.n, N);
	loop_for(200);
	cr_assert_eq(r.n, N);
	for (int i = 0; i < N; i++) {
		cr_assert_eq(r.off[i], (uint64_t)i);
		cr_assert_str_eq(r.payload[i], payloads[i]);
	}
	cr_assert_eq(sluice_unsubscribe(cli, sub), 0);
}

/* ---- fetch ---- */

struct fetch_res {
	size_t done;
	int err;
	size_t n;
	uint64_t off, end;
	char payload[32];
	long long at_ms;
};

static void fetch_cb(void *arg, int err, const char *errmsg, const struct sluice_msg *msgs, size_t n,
                     uint64_t first_offset, uint64_t end_offset)
{
	struct fetch_res *f = arg;

	(void)errmsg;
	(void)first_offset;
	f->err = err;
	f->n = n;
	f->end = end_offset;
	if (n > 0) {
		f->off = msgs[0].offset;
		snprintf(f->payload, sizeof(f->payload), "%.*s", (int)msgs[0].payload.len,
		         (const char *)msgs[0].payload.base);
	}
	f->at_ms = itest_now_ms();
	f->done = 1;
}

static void late_pub_cb(evutil_socket_t fd, short what, void *arg)
{
	static struct acks a;
	static struct ack_ctx ctx;
	struct sluice_pub p = {0};

	(void)fd;
	(void)what;
	(void)arg;
	p.topic = "poll";
	p.payload = sluice_bytes_cstr("late");
	ctx = (struct ack_ctx){&a, 0};
	cr_assert_eq(sluice_publish(cli, &p, ack_cb, &ctx), 0);
}

Test(client, fetch_long_poll_returns_message_published_during_wait)
{
	struct fetch_res f = {0};
	struct timeval tv = {0, 400000};
	struct event *ev;
	long long t0;

	create_topic("poll", 1);
	cr_assert_eq(sluice_fetch(cli, "poll", 0, 0, 10, 0, fetch_cb, &f), 0);
	cr_assert_eq(loop_until(&f.done, 1, 5000), 0);
	cr_assert_eq(f.err, 0);
	cr_assert_eq(f.n, 0, "empty partition");
	cr_assert_eq(f.end, 0);

	memset(&f, 0, sizeof(f));
	t0 = itest_now_ms();
	cr_assert_eq(sluice_fetch(cli, "poll", 0, 0, 10, 8000, fetch_cb, &f), 0);
	ev = evtimer_new(base, late_pub_cb, NULL);
	evtimer_add(ev, &tv);
	cr_assert_eq(loop_until(&f.done, 1, 12000), 0, "long poll never answered");
	event_free(ev);
	cr_assert_eq(f.err, 0);
	cr_assert_eq(f.n, 1, "long poll returned %zu messages", f.n);
	cr_assert_eq(f.off, 0);
	cr_assert_str_eq(f.payload, "late");
	cr_assert_geq(f.at_ms - t0, 350, "answered before the publish");
	cr_assert_lt(f.at_ms - t0, 6000, "long poll waited for its timeout instead of the message");
}

/* ---- groups and admin ---- */

struct done_res {
	size_t done;
	int err;
};

static void done_cb(void *arg, int err, const char *errmsg)
{
	struct done_res *d = arg;

	(void)errmsg;
	d->err = err;
	d->done = 1;
}

struct group_res {
	size_t done;
	int err;
	size_t n;
	struct sluice_group_partition p[8];
	char topic[8][32];
};

static void group_cb(void *arg, int err, const char *errmsg, const struct sluice_group_partition *ps, size_t n)
{
	struct group_res *g = arg;

	(void)errmsg;
	g->err = err;
	g->n = n;
	for (size_t i = 0; i < n && i < 8; i++) {
		g->p[i] = ps[i];
		snprintf(g->topic[i], sizeof(g->topic[i]), "%s", ps[i].topic);
	}
	g->done = 1;
}

Test(client, group_commit_describe_and_resume)
{
	static struct subrec r;
	struct done_res d = {0};
	struct group_res g = {0};
	struct sluice_sub_opts o = {0};
	char payload[32];
	uint64_t sub = 0;

	create_topic("grp", 1);
	for (int i = 0; i < 12; i++) {
		snprintf(payload, sizeof(payload), "s-%d", i);
		sync_pub("grp", NULL, -1, payload, NULL, NULL);
	}
	cr_assert_eq(sluice_commit(cli, "g1", "grp", 0, 5, done_cb, &d), 0);
	cr_assert_eq(loop_until(&d.done, 1, 5000), 0);
	cr_assert_eq(d.err, 0, "commit: %d", d.err);
	cr_assert_eq(sluice_group_describe(cli, "g1", group_cb, &g), 0);
	cr_assert_eq(loop_until(&g.done, 1, 5000), 0);
	cr_assert_eq(g.err, 0);
	cr_assert_eq(g.n, 1);
	cr_assert_str_eq(g.topic[0], "grp");
	cr_assert_eq(g.p[0].partition, 0);
	cr_assert_eq(g.p[0].committed_offset, 5);
	cr_assert_eq(g.p[0].end_offset, 12);
	cr_assert_eq(g.p[0].lag, 7);

	memset(&r, 0, sizeof(r));
	o.topic = "grp";
	o.group = "g1";
	o.start = SLUICE_EARLIEST;
	cr_assert_eq(sluice_subscribe(cli, &o, sub_cb, &r, &sub), 0);
	cr_assert_eq(loop_until(&r.n, 7, 10000), 0, "group resume: %zu of 7", r.n);
	loop_for(200);
	cr_assert_eq(r.n, 7);
	cr_assert_eq(r.off[0], 5, "group subscription must resume at the committed offset");
	cr_assert_str_eq(r.payload[0], "s-5");
	cr_assert_eq(r.off[6], 11);
}

struct topic_res {
	size_t done;
	int err;
	uint32_t partitions;
	size_t parts_n;
	uint64_t end[8];
	char name[32];
};

static void topic_cb(void *arg, int err, const char *errmsg, const struct sluice_topic_info *ti)
{
	struct topic_res *t = arg;

	(void)errmsg;
	t->err = err;
	if (err == 0) {
		t->partitions = ti->partitions;
		t->parts_n = ti->parts_n;
		snprintf(t->name, sizeof(t->name), "%s", ti->name);
		for (size_t i = 0; i < ti->parts_n && i < 8; i++)
			t->end[ti->parts[i].partition < 8 ? ti->parts[i].partition : 0] = ti->parts[i].end_offset;
	}
	t->done = 1;
}

struct status_res {
	size_t done;
	int err;
	uint32_t frontends, topics;
};

static void status_cb(void *arg, int err, const char *errmsg, const struct sluice_node_status *st)
{
	struct status_res *s = arg;

	(void)errmsg;
	s->err = err;
	if (err == 0) {
		s->frontends = st->frontends;
		s->topics = st->topics;
	}
	s->done = 1;
}

Test(client, describe_status_and_delete)
{
	struct topic_res t = {0};
	struct status_res s = {0};
	struct done_res d = {0};
	char em[256] = "";
	int rc;

	create_topic("adm", 2);
	rc = sluice_sync_topic_create(sy, "adm", 2, 0, 0, em, sizeof(em));
	cr_assert_eq(rc, SLUICE_ETOPIC_EXISTS, "second create: %d", rc);
	sync_pub("adm", NULL, 1, "a", NULL, NULL);
	sync_pub("adm", NULL, 1, "b", NULL, NULL);
	cr_assert_eq(sluice_topic_describe(cli, "adm", topic_cb, &t), 0);
	cr_assert_eq(loop_until(&t.done, 1, 5000), 0);
	cr_assert_eq(t.err, 0);
	cr_assert_str_eq(t.name, "adm");
	cr_assert_eq(t.partitions, 2);
	cr_assert_eq(t.parts_n, 2);
	cr_assert_eq(t.end[0], 0);
	cr_assert_eq(t.end[1], 2);

	cr_assert_eq(sluice_node_status(cli, status_cb, &s), 0);
	cr_assert_eq(loop_until(&s.done, 1, 5000), 0);
	cr_assert_eq(s.err, 0);
	cr_assert_eq(s.frontends, 2);
	cr_assert_eq(s.topics, 1);

	cr_assert_eq(sluice_topic_delete(cli, "adm", done_cb, &d), 0);
	cr_assert_eq(loop_until(&d.done, 1, 5000), 0);
	cr_assert_eq(d.err, 0);
	memset(&t, 0, sizeof(t));
	cr_assert_eq(sluice_topic_describe(cli, "adm", topic_cb, &t), 0);
	cr_assert_eq(loop_until(&t.done, 1, 5000), 0);
	cr_assert_eq(t.err, SLUICE_ENOTOPIC, "describe after delete: %d", t.err);
}

/* ---- duplicate suppression (raw protocol: the library owns sequences) ---- */

Test(client, duplicate_producer_sequence_is_stored_once)
{
	static struct stored got[8];
	int fd = itest_connect(node.port);
	uint32_t part;
	uint64_t off;
	int dup, rc;

	create_topic("dedup", 1);
	cr_assert_geq(fd, 0);
	cr_assert_eq(itest_hello(fd), 0);
	cr_assert_eq(itest_raw_send_publish(fd, 10, "dedup", -1, "a", 1, 4242, 1), 0);
	cr_assert_eq(itest_raw_wait_ack(fd, 10, 10000, &part, &off, &dup), 0);
	cr_assert_eq(off, 0);
	cr_assert_eq(dup, 0);
	cr_assert_eq(itest_raw_send_publish(fd, 11, "dedup", -1, "a", 1, 4242, 1), 0);
	rc = itest_raw_wait_ack(fd, 11, 10000, &part, &off, &dup);
	cr_assert_eq(rc, 0, "retry: %d", rc);
	cr_assert_eq(dup, 1, "second publish with the same (producer, sequence) must say duplicate");
	cr_assert_eq(off, 0, "duplicate ack must carry the original offset");
	cr_assert_eq(itest_raw_send_publish(fd, 12, "dedup", -1, "b", 1, 4242, 2), 0);
	cr_assert_eq(itest_raw_wait_ack(fd, 12, 10000, &part, &off, &dup), 0);
	cr_assert_eq(off, 1);
	cr_assert_eq(dup, 0);
	/* Another producer with the same sequence is not a duplicate. */
	cr_assert_eq(itest_raw_send_publish(fd, 13, "dedup", -1, "c", 1, 4343, 1), 0);
	cr_assert_eq(itest_raw_wait_ack(fd, 13, 10000, &part, &off, &dup), 0);
	cr_assert_eq(off, 2);
	cr_assert_eq(dup, 0);
	close(fd);

	cr_assert_eq(fetch_all("dedup", 0, got, 8), 3);
	cr_assert_str_eq(got[0].payload, "a");
	cr_assert_str_eq(got[1].payload, "b");
	cr_assert_str_eq(got[2].payload, "c");
}

struct big_check {
	int seen;
	size_t len;
	int match;
};

static void big_fetch_fn(void *arg, const struct sluice_msg *m)
{
	struct big_check *b = arg;

	b->seen++;
	b->len = m->payload.len;
	b->match = 1;
	for (size_t i = 0; i < m->payload.len; i++)
		if (m->payload.base[i] != (uint8_t)(i * 7 + 3)) {
			b->match = 0;
			break;
		}
}

Test(client, large_payload_round_trip)
{
	size_t len = 900u << 10;
	uint8_t *buf = malloc(len);
	struct sluice_pub p = {0};
	struct big_check b = {0};
	char em[256] = "";
	uint32_t part;
	uint64_t off, end;

	cr_assert_not_null(buf);
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(i * 7 + 3);
	create_topic("large", 1);
	p.topic = "large";
	p.payload = sluice_bytes_make(buf, len);
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(sluice_sync_publish(sy, &p, &part, &off, em, sizeof(em)), 0, "900 KiB publish: %s", em);
		cr_assert_eq(off, (uint64_t)i);
	}
	for (uint64_t o = 0; o < 2; o++) {
		memset(&b, 0, sizeof(b));
		cr_assert_eq(sluice_sync_fetch(sy, "large", 0, o, 10, 0, big_fetch_fn, &b, &end, em, sizeof(em)), 0,
		             "%s", em);
		cr_assert_geq(b.seen, 1, "a fetch must return at least one message even when it is large");
		cr_assert_eq(b.len, len);
		cr_assert(b.match, "payload bytes differ");
		cr_assert_eq(end, 2);
	}
	free(buf);
}

Test(client, live_subscription_over_all_partitions)
{
	enum { N = 600 };
	static struct acks a;
	static struct ack_ctx ctx[N];
	static struct subrec r;
	static char payloads[N][32];
	struct sluice_sub_opts o = {0};
	uint64_t sub = 0, next[3] = {0};
	char key[16];

	memset(&a, 0, sizeof(a));
	memset(&r, 0, sizeof(r));
	create_topic("live", 3);
	o.topic = "live";
	o.start = SLUICE_EARLIEST;
	cr_assert_eq(sluice_subscribe(cli, &o, sub_cb, &r, &sub), 0);
	loop_for(100);
	for (int i = 0; i < N; i++) {
		struct sluice_pub p = {0};
		snprintf(key, sizeof(key), "k%d", i % 11);
		snprintf(payloads[i], sizeof(payloads[i]), "live-%d", i);
		p.topic = "live";
		p.key = sluice_bytes_cstr(key);
		p.payload = sluice_bytes_cstr(payloads[i]);
		ctx[i] = (struct ack_ctx){&a, i};
		cr_assert_eq(sluice_publish(cli, &p, ack_cb, &ctx[i]), 0);
		if (i % 50 == 0)
			loop_for(5); /* let deliveries interleave with publishing */
	}
	cr_assert_eq(loop_until(&a.n, N, 30000), 0);
	cr_assert_eq(loop_until(&r.n, N, 30000), 0, "live subscription got %zu of %d", r.n, N);
	loop_for(200);
	cr_assert_eq(r.n, N);
	/* Deliveries are per-partition ordered; match them against the acks. */
	for (size_t i = 0; i < r.n; i++) {
		int idx = -1;
		uint32_t part = 99;
		cr_assert_eq(sscanf(r.payload[i], "live-%d", &idx), 1);
		cr_assert(idx >= 0 && idx < N);
		for (size_t k = 0; k < a.n; k++)
			if (a.idx[k] == idx) {
				part = a.part[k];
				cr_assert_eq(a.off[k], r.off[i], "live-%d delivered at offset %llu, acked at %llu", idx,
				             (unsigned long long)r.off[i], (unsigned long long)a.off[k]);
			}
		cr_assert_lt(part, 3u);
		cr_assert_eq(r.off[i], next[part], "partition %u delivered out of order", part);
		next[part]++;
	}
	cr_assert_eq(sluice_unsubscribe(cli, sub), 0);
}

Test(client, data_survives_clean_restart)
{
	static struct stored got[64];
	char payload[32];

	create_topic("persist", 2);
	for (int i = 0; i < 20; i++) {
		snprintf(payload, sizeof(payload), "s-%d", i);
		sync_pub("persist", NULL, i % 2, payload, NULL, NULL);
	}
	sluice_sync_close(sy);
	sy = NULL;
	cr_assert_eq(itest_node_stop(&node), 0);
	cr_assert_eq(itest_node_start(&node), 0);
	{
		struct sluice_client_opts o = {0};
		o.servers = node.addr;
		cr_assert_eq(sluice_sync_open(&o, &sy), 0);
	}
	for (uint32_t p = 0; p < 2; p++) {
		cr_assert_eq(fetch_all("persist", p, got, 64), 10);
		for (int i = 0; i < 10; i++) {
			snprintf(payload, sizeof(payload), "s-%d", i * 2 + (int)p);
			cr_assert_str_eq(got[i].payload, payload);
		}
	}
	sync_pub("persist", NULL, 0, "after", NULL, NULL);
	cr_assert_eq(fetch_all("persist", 0, got, 64), 11, "offsets continue after a restart");
	cr_assert_str_eq(got[10].payload, "after");
}
