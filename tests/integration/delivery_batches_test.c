/*
 * delivery_batches_test.c: native deliveries and fetches that ship stored
 * batches (Hello.accept_batches, RecordBatch; docs/protocol.md#stored-batches).
 *
 * Every partition holds the same known layout of stored batches (7, 1 and
 * 12 records, made with PublishBatch so that each is one stored batch), with
 * keys, headers (an empty value among them) and empty payloads mixed in.
 * On the wire: a connection that asks gets RecordBatch with the window of
 * records it may take (a position inside a batch, its credit, a fetch's
 * max_messages), one that does not gets Message as before. Through
 * libsluice: a client with batches (the default) and one with
 * messages_only on the same node see the same messages, field for field,
 * in order, from positions inside batches, across partitions, with small
 * credit, and for live commits after they subscribed.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "pubbatch.h"
#include "ringmsg.h"
#include "sluice.pb-c.h"
#include "sluice/sluice.h"

#define TOPIC "bt"
#define PARTS 2
#define LAYOUT_N 3
#define RECS_MAX 64

static const uint32_t layout[LAYOUT_N] = {7, 1, 12}; /* records per stored batch */
#define LAYOUT_RECS 20

static struct itest_node node;
static int pubfd = -1;
static uint64_t next_req = 100;

/* One message as the model says and as a client got it. */
struct rec {
	uint32_t partition;
	uint64_t offset;
	int64_t ts;
	char key[32];
	size_t key_len;
	size_t headers_n;
	char hkey[2][8];
	char hval[2][16];
	size_t hval_len[2];
	char payload[32];
	size_t payload_len;
};

/* The model: record `off` of partition p (also for a fourth, live batch). */
static void model(uint32_t p, uint64_t off, struct rec *r)
{
	memset(r, 0, sizeof(*r));
	r->partition = p;
	r->offset = off;
	if (off % 3 != 0)
		r->key_len = (size_t)snprintf(r->key, sizeof(r->key), "k%u-%llu", p, (unsigned long long)off);
	if (off % 2 == 0) {
		r->headers_n = 2;
		strcpy(r->hkey[0], "h1");
		r->hval_len[0] = (size_t)snprintf(r->hval[0], sizeof(r->hval[0]), "v%llu", (unsigned long long)off);
		strcpy(r->hkey[1], "empty");
		r->hval_len[1] = 0;
	}
	if (off % 4 != 1)
		r->payload_len = (size_t)snprintf(r->payload, sizeof(r->payload), "p%u-%llu", p, (unsigned long long)off);
}

static void rec_from_msg(const struct sluice_msg *m, struct rec *r)
{
	memset(r, 0, sizeof(*r));
	cr_assert_str_eq(m->topic, TOPIC);
	cr_assert(m->key.len < sizeof(r->key) && m->payload.len < sizeof(r->payload) && m->headers_n <= 2);
	r->partition = m->partition;
	r->offset = m->offset;
	r->ts = m->timestamp_ms;
	r->key_len = m->key.len;
	if (m->key.len)
		memcpy(r->key, m->key.base, m->key.len);
	r->payload_len = m->payload.len;
	if (m->payload.len)
		memcpy(r->payload, m->payload.base, m->payload.len);
	r->headers_n = m->headers_n;
	for (size_t i = 0; i < m->headers_n; i++) {
		cr_assert(strlen(m->headers[i].key) < sizeof(r->hkey[i]) && m->headers[i].value.len < sizeof(r->hval[i]));
		strcpy(r->hkey[i], m->headers[i].key);
		r->hval_len[i] = m->headers[i].value.len;
		if (m->headers[i].value.len)
			memcpy(r->hval[i], m->headers[i].value.base, m->headers[i].value.len);
	}
}

/* got equals the model (timestamps are compared between clients, not here). */
static void rec_assert_model(const struct rec *got)
{
	struct rec want;

	model(got->partition, got->offset, &want);
	want.ts = got->ts;
	cr_assert_eq(memcmp(&want, got, sizeof(want)), 0, "partition %u offset %llu differs from what was published",
	             got->partition, (unsigned long long)got->offset);
	cr_assert_gt(got->ts, 0);
}

/* One PublishBatch of records [off0, off0 + count) of the model to p: one stored batch. */
static void publish_batch(uint32_t p, uint64_t off0, uint32_t count)
{
	uint8_t *recs = malloc(count * 256), *w = recs;
	uint64_t base = 0;

	cr_assert(recs);
	for (uint32_t i = 0; i < count; i++) {
		struct rec m;
		uint8_t hb[128];
		size_t hl = 0;
		model(p, off0 + i, &m);
		for (size_t h = 0; h < m.headers_n; h++)
			hl += hdrs_put(hb + hl, slice_make(m.hkey[h], strlen(m.hkey[h])), slice_make(m.hval[h], m.hval_len[h]));
		w += pubbatch_put(w, slice_make(m.key, m.key_len), slice_make(hb, hl), slice_make(m.payload, m.payload_len));
	}
	cr_assert_eq(itest_raw_publish_batch(pubfd, next_req++, TOPIC, p, recs, (size_t)(w - recs), count, &base), 0);
	cr_assert_eq(base, off0, "the layout is one stored batch per PublishBatch");
	free(recs);
}

static void setup(void)
{
	cr_assert_eq(itest_node_init(&node), 0);
	node.extra[0] = "--frame-bytes-max"; /* Deliveries up to 252 KiB, messages or batches */
	node.extra[1] = "256k";
	cr_assert_eq(itest_node_start(&node), 0);
	pubfd = itest_connect(node.port);
	cr_assert(pubfd >= 0);
	cr_assert_eq(itest_hello(pubfd), 0);
	cr_assert_eq(itest_raw_create_topic(pubfd, next_req++, TOPIC, PARTS), 0);
	for (uint32_t p = 0; p < PARTS; p++) {
		uint64_t off = 0;
		for (int j = 0; j < LAYOUT_N; j++) {
			publish_batch(p, off, layout[j]);
			off += layout[j];
		}
	}
}

static void teardown(void)
{
	if (pubfd >= 0)
		close(pubfd);
	pubfd = -1;
	itest_node_destroy(&node);
}

TestSuite(delivery_batches, .init = setup, .fini = teardown, .timeout = 120);

/* ---------- on the wire ---------- */

/* A connection whose Hello says accept_batches; returns HelloOk.batches in *batches. */
static int raw_conn(uint32_t accept, uint32_t *batches)
{
	Sluice__Frame f = SLUICE__FRAME__INIT, *r = NULL;
	Sluice__Hello h = SLUICE__HELLO__INIT;
	int fd = itest_connect(node.port);

	cr_assert(fd >= 0);
	h.min_version = 1;
	h.max_version = 1;
	h.accept_batches = accept;
	f.id = 1;
	f.body_case = SLUICE__FRAME__BODY_HELLO;
	f.hello = &h;
	cr_assert_eq(itest_send_frame(fd, &f), 0);
	cr_assert_eq(itest_recv_frame(fd, 5000, &r), 0);
	cr_assert_eq(r->body_case, SLUICE__FRAME__BODY_HELLO_OK);
	*batches = r->hello_ok->batches;
	sluice__frame__free_unpacked(r, NULL);
	return fd;
}

/* Subscribe to partition p of topic at offset with credit; returns the first Delivery. */
static Sluice__Frame *raw_subscribe(int fd, const char *topic, uint32_t p, uint64_t offset, uint32_t credit)
{
	Sluice__Frame f = SLUICE__FRAME__INIT, *r = NULL;
	Sluice__Subscribe s = SLUICE__SUBSCRIBE__INIT;
	uint32_t parts[1] = {p};

	s.topic = (char *)topic;
	s.partitions = parts;
	s.n_partitions = 1;
	s.start = SLUICE__START_AT__OFFSET;
	s.offset = offset;
	s.credit = credit;
	f.id = 7;
	f.body_case = SLUICE__FRAME__BODY_SUBSCRIBE;
	f.subscribe = &s;
	cr_assert_eq(itest_send_frame(fd, &f), 0);
	cr_assert_eq(itest_recv_frame(fd, 5000, &r), 0);
	cr_assert_eq(r->body_case, SLUICE__FRAME__BODY_SUBSCRIBED);
	sluice__frame__free_unpacked(r, NULL);
	cr_assert_eq(itest_recv_frame(fd, 5000, &r), 0);
	cr_assert_eq(r->body_case, SLUICE__FRAME__BODY_DELIVERY);
	return r;
}

static Sluice__FetchResult *raw_fetch(int fd, uint32_t p, uint64_t offset, uint32_t max, Sluice__Frame **keep)
{
	Sluice__Frame f = SLUICE__FRAME__INIT;
	Sluice__Fetch q = SLUICE__FETCH__INIT;

	q.topic = TOPIC;
	q.partition = p;
	q.offset = offset;
	q.max_messages = max;
	f.id = 9;
	f.body_case = SLUICE__FRAME__BODY_FETCH;
	f.fetch = &q;
	cr_assert_eq(itest_send_frame(fd, &f), 0);
	cr_assert_eq(itest_recv_response(fd, 9, 5000, keep), 0);
	cr_assert_eq((*keep)->body_case, SLUICE__FRAME__BODY_FETCH_RESULT);
	return (*keep)->fetch_result;
}

static void assert_batch(const Sluice__RecordBatch *b, uint32_t p, uint64_t first, uint32_t count)
{
	cr_assert_str_eq(b->topic, TOPIC);
	cr_assert_eq(b->partition, p);
	cr_assert_eq(b->first_offset, first);
	cr_assert_eq(b->count, count);
	cr_assert_gt(b->value.len, 64, "the stored value: a 64-byte header and its records");
}

Test(delivery_batches, hello_negotiates_and_old_connections_get_messages)
{
	uint32_t on = 9, off = 9;
	int fb = raw_conn(1, &on), fm = raw_conn(0, &off);
	Sluice__Frame *db, *dm;

	cr_assert_eq(on, 1);
	cr_assert_eq(off, 0);
	/* from inside the first batch, with credit for 3: records 2, 3, 4 */
	db = raw_subscribe(fb, TOPIC, 1, 2, 3);
	dm = raw_subscribe(fm, TOPIC, 1, 2, 3);
	cr_assert_eq(db->delivery->n_messages, 0);
	cr_assert_eq(db->delivery->n_batches, 1);
	assert_batch(db->delivery->batches[0], 1, 2, 3);
	cr_assert_eq(dm->delivery->n_batches, 0);
	cr_assert_eq(dm->delivery->n_messages, 3);
	for (size_t i = 0; i < 3; i++)
		cr_assert_eq(dm->delivery->messages[i]->offset, 2 + i);
	sluice__frame__free_unpacked(db, NULL);
	sluice__frame__free_unpacked(dm, NULL);
	close(fb);
	close(fm);
}

Test(delivery_batches, fetch_windows_span_batches)
{
	uint32_t on = 0;
	int fd = raw_conn(1, &on);
	Sluice__Frame *keep = NULL;
	Sluice__FetchResult *fr;

	/* offset 5 of [0,7), then [7,8), then 1 record of [8,20): 4 records */
	fr = raw_fetch(fd, 0, 5, 4, &keep);
	cr_assert_eq(fr->n_messages, 0);
	cr_assert_eq(fr->n_batches, 3);
	assert_batch(fr->batches[0], 0, 5, 2);
	assert_batch(fr->batches[1], 0, 7, 1);
	assert_batch(fr->batches[2], 0, 8, 1);
	cr_assert_eq(fr->end_offset, LAYOUT_RECS);
	sluice__frame__free_unpacked(keep, NULL);
	/* the last record of the log: a window at the very end of a batch */
	fr = raw_fetch(fd, 0, LAYOUT_RECS - 1, 100, &keep);
	cr_assert_eq(fr->n_batches, 1);
	assert_batch(fr->batches[0], 0, LAYOUT_RECS - 1, 1);
	sluice__frame__free_unpacked(keep, NULL);
	/* at the committed end: nothing */
	fr = raw_fetch(fd, 0, LAYOUT_RECS, 100, &keep);
	cr_assert_eq(fr->n_batches + fr->n_messages, 0);
	sluice__frame__free_unpacked(keep, NULL);
	close(fd);
}

/* ---------- through libsluice ---------- */

struct got {
	size_t n;
	struct rec r[PARTS * RECS_MAX];
	int err;
};

static void sub_cb(void *arg, int err, const char *errmsg, const struct sluice_msg *m)
{
	struct got *g = arg;

	(void)errmsg;
	if (err) {
		g->err = err;
		return;
	}
	cr_assert_lt(g->n, PARTS * RECS_MAX);
	rec_from_msg(m, &g->r[g->n++]);
}

/* Messages of partition p in g, in the order they came. */
static size_t of_part(const struct got *g, uint32_t p, struct rec *out)
{
	size_t n = 0;

	for (size_t i = 0; i < g->n; i++)
		if (g->r[i].partition == p)
			out[n++] = g->r[i];
	return n;
}

/* Both clients got every partition from `from` to `to`, in order, the same, as published. */
static void assert_same(const struct got *a, const struct got *b, uint64_t from, uint64_t to)
{
	static struct rec pa[RECS_MAX], pb[RECS_MAX];

	cr_assert_eq(a->err, 0);
	cr_assert_eq(b->err, 0);
	for (uint32_t p = 0; p < PARTS; p++) {
		size_t na = of_part(a, p, pa), nb = of_part(b, p, pb);
		cr_assert_eq(na, to - from, "partition %u: %zu messages with batches", p, na);
		cr_assert_eq(nb, to - from, "partition %u: %zu messages without", p, nb);
		for (size_t i = 0; i < na; i++) {
			cr_assert_eq(pa[i].offset, from + i);
			rec_assert_model(&pa[i]);
			cr_assert_eq(memcmp(&pa[i], &pb[i], sizeof(pa[i])), 0, "partition %u offset %llu differs", p,
			             (unsigned long long)pa[i].offset);
		}
	}
}

static struct sluice_client *client(struct event_base *base, int messages_only)
{
	struct sluice_client_opts o = {0};
	struct sluice_client *c = NULL;

	o.servers = node.addr;
	o.messages_only = messages_only;
	cr_assert_eq(sluice_client_new(base, &o, &c), 0);
	return c;
}

static void subscribe(struct sluice_client *c, uint64_t offset, uint32_t credit, struct got *g)
{
	struct sluice_sub_opts o = {0};
	uint64_t id;

	o.topic = TOPIC;
	o.start = SLUICE_OFFSET;
	o.offset = offset;
	o.credit = credit;
	cr_assert_eq(sluice_subscribe(c, &o, sub_cb, g, &id), 0);
}

Test(delivery_batches, subscribe_mid_batch_same_as_messages)
{
	static struct got a, b, a4, b4;
	struct event_base *base = event_base_new();
	struct sluice_client *cb = client(base, 0), *cm = client(base, 1);

	subscribe(cb, 5, 0, &a);
	subscribe(cm, 5, 0, &b);
	/* small credit: windows cut inside batches and credit returned as they go */
	subscribe(cb, 3, 4, &a4);
	subscribe(cm, 3, 4, &b4);
	cr_assert_eq(itest_loop_until(base, &a.n, PARTS * (LAYOUT_RECS - 5), 10000), 0);
	cr_assert_eq(itest_loop_until(base, &b.n, PARTS * (LAYOUT_RECS - 5), 10000), 0);
	cr_assert_eq(itest_loop_until(base, &a4.n, PARTS * (LAYOUT_RECS - 3), 10000), 0);
	cr_assert_eq(itest_loop_until(base, &b4.n, PARTS * (LAYOUT_RECS - 3), 10000), 0);
	assert_same(&a, &b, 5, LAYOUT_RECS);
	assert_same(&a4, &b4, 3, LAYOUT_RECS);
	/* live: one more stored batch per partition after they subscribed */
	for (uint32_t p = 0; p < PARTS; p++)
		publish_batch(p, LAYOUT_RECS, 9);
	cr_assert_eq(itest_loop_until(base, &a.n, PARTS * (LAYOUT_RECS + 9 - 5), 10000), 0);
	cr_assert_eq(itest_loop_until(base, &b.n, PARTS * (LAYOUT_RECS + 9 - 5), 10000), 0);
	cr_assert_eq(itest_loop_until(base, &a4.n, PARTS * (LAYOUT_RECS + 9 - 3), 10000), 0);
	cr_assert_eq(itest_loop_until(base, &b4.n, PARTS * (LAYOUT_RECS + 9 - 3), 10000), 0);
	itest_loop_for(base, 100); /* nothing more, nothing twice */
	assert_same(&a, &b, 5, LAYOUT_RECS + 9);
	assert_same(&a4, &b4, 3, LAYOUT_RECS + 9);
	sluice_client_free(cb);
	sluice_client_free(cm);
	event_base_free(base);
}

struct fetched {
	struct got g;
	uint64_t next;
};

static void fetch_fn(void *arg, const struct sluice_msg *m)
{
	struct fetched *f = arg;

	sub_cb(&f->g, 0, NULL, m);
	f->next = m->offset + 1;
}

/* Fetch every partition from `from` in pages of page_max through a client. */
static void fetch_all(int messages_only, uint64_t from, uint32_t page_max, struct got *g)
{
	struct sluice_client_opts o = {0};
	struct sluice_sync *sy = NULL;
	static struct fetched f;
	char em[256];

	o.servers = node.addr;
	o.messages_only = messages_only;
	cr_assert_eq(sluice_sync_open(&o, &sy), 0);
	memset(&f, 0, sizeof(f));
	for (uint32_t p = 0; p < PARTS; p++) {
		uint64_t end = 0;
		f.next = from;
		for (int guard = 0; guard < 100 && f.next < LAYOUT_RECS; guard++)
			cr_assert_eq(sluice_sync_fetch(sy, TOPIC, p, f.next, page_max, 0, fetch_fn, &f, &end, em, sizeof(em)),
			             0, "%s", em);
		cr_assert_eq(end, LAYOUT_RECS);
	}
	*g = f.g;
	sluice_sync_close(sy);
}

Test(delivery_batches, fetch_mid_batch_same_as_messages)
{
	static struct got a, b;

	fetch_all(0, 6, 3, &a);
	fetch_all(1, 6, 3, &b);
	assert_same(&a, &b, 6, LAYOUT_RECS);
	fetch_all(0, 1, 1000, &a);
	fetch_all(1, 1, 1000, &b);
	assert_same(&a, &b, 1, LAYOUT_RECS);
}

/* A stored batch larger than a Delivery may be (here 252 KiB, the node's
 * frame_bytes_max less 4 KiB) cannot travel whole: a connection with
 * batches gets its records as messages instead. A record takes 40 bytes
 * more stored than its payload and 12 more published, so a PublishBatch of
 * small records that fits a frame stores a batch that does not. */
Test(delivery_batches, batch_over_the_frame_cap_comes_as_messages)
{
	enum { BIG_N = 15000, BIG_BYTES = 4 };
	uint8_t *recs = malloc(BIG_N * (PUBBATCH_REC_HDR + BIG_BYTES)), *w = recs;
	char pl[BIG_BYTES];
	uint32_t on = 0;
	int fd;
	Sluice__Frame *d;

	cr_assert(recs);
	cr_assert_eq(itest_raw_create_topic(pubfd, next_req++, "big", 1), 0);
	for (uint32_t i = 0; i < BIG_N; i++) {
		memcpy(pl, &i, sizeof(pl));
		w += pubbatch_put(w, slice_make(NULL, 0), slice_make(NULL, 0), slice_make(pl, sizeof(pl)));
	}
	cr_assert_eq(itest_raw_publish_batch(pubfd, next_req++, "big", 0, recs, (size_t)(w - recs), BIG_N, NULL), 0);
	free(recs);

	fd = raw_conn(1, &on);
	cr_assert_eq(on, 1);
	d = raw_subscribe(fd, "big", 0, 0, BIG_N);
	size_t got = 0, deliveries = 0;
	for (;;) {
		cr_assert_eq(d->body_case, SLUICE__FRAME__BODY_DELIVERY);
		cr_assert_eq(d->delivery->n_batches, 0);
		cr_assert(d->delivery->n_messages > 0 && d->delivery->n_messages <= 256);
		for (size_t i = 0; i < d->delivery->n_messages; i++, got++) {
			uint32_t seq;
			cr_assert_eq(d->delivery->messages[i]->offset, got);
			cr_assert_eq(d->delivery->messages[i]->payload.len, BIG_BYTES);
			memcpy(&seq, d->delivery->messages[i]->payload.data, sizeof(seq));
			cr_assert_eq(seq, got);
		}
		sluice__frame__free_unpacked(d, NULL);
		deliveries++;
		if (got >= BIG_N)
			break;
		cr_assert_eq(itest_recv_frame(fd, 5000, &d), 0);
	}
	cr_assert_eq(got, BIG_N);
	cr_assert_gt(deliveries, 1, "at most 256 messages a Delivery");
	close(fd);
}

/* sluice_topic_delivered_bytes_total counts key, header and payload bytes of
 * what was delivered, the same for a batch (whole or a window of it) as for
 * messages. */
static double delivered_bytes(void)
{
	struct itest_http_resp r;
	const char *series = "sluice_topic_delivered_bytes_total{topic=\"" TOPIC "\"} ";
	double v = -1;

	cr_assert_eq(itest_http_simple(node.http_port, "GET", "/metrics", "", "", &r), 0);
	for (const char *p = r.body; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (strncmp(p, series, strlen(series)) == 0)
			v = strtod(p + strlen(series), NULL);
	itest_http_resp_free(&r);
	return v;
}

Test(delivery_batches, delivered_bytes_metric_counts_the_records)
{
	uint32_t on = 0, off = 9;
	int fb = raw_conn(1, &on), fm = raw_conn(0, &off);
	Sluice__Frame *d;
	double want = 0, before = delivered_bytes();

	for (uint64_t o = 2; o < LAYOUT_RECS; o++) {
		struct rec m;
		model(1, o, &m);
		want += (double)(m.key_len + m.payload_len);
		for (size_t h = 0; h < m.headers_n; h++)
			want += (double)hdrs_entry_bytes(strlen(m.hkey[h]), m.hval_len[h]);
	}
	d = raw_subscribe(fb, TOPIC, 1, 2, 100); /* windows 2..6 of the first batch, then whole ones */
	cr_assert_eq(d->delivery->n_batches, 3);
	sluice__frame__free_unpacked(d, NULL);
	cr_assert_eq(delivered_bytes() - (before < 0 ? 0 : before), want);
	d = raw_subscribe(fm, TOPIC, 1, 2, 100);
	cr_assert_eq(d->delivery->n_messages, LAYOUT_RECS - 2);
	sluice__frame__free_unpacked(d, NULL);
	cr_assert_eq(delivered_bytes() - (before < 0 ? 0 : before), 2 * want);
	close(fb);
	close(fm);
}
