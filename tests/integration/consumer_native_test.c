/*
 * consumer_native_test.c: durable consumers over the native protocol against a
 * real single node: create, pull, ack, redelivery after the ack timeout,
 * nack with a delay, dead letters with their headers, ordered and shared
 * modes, describe, delete, and state kept across a restart.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static struct itest_node node;
static int fd = -1;
static uint64_t next_id = 1000;

static void setup(void)
{
	cr_assert_eq(itest_node_init(&node), 0, "temp dir / port");
	cr_assert_eq(itest_node_start(&node), 0, "sluiced did not become ready");
	fd = itest_connect(node.port);
	cr_assert_geq(fd, 0);
	cr_assert_eq(itest_hello(fd), 0);
}

static void teardown(void)
{
	if (fd >= 0)
		close(fd);
	itest_node_stop(&node);
	itest_node_destroy(&node);
}

TestSuite(consumer, .init = setup, .fini = teardown, .timeout = 120);

/* The answer to request id; aborts the test on a timeout. */
static Sluice__Frame *answer(uint64_t id, int timeout_ms)
{
	Sluice__Frame *f = NULL;
	cr_assert_eq(itest_recv_response(fd, id, timeout_ms, &f), 0, "no answer to request %llu",
	             (unsigned long long)id);
	return f;
}

/* 0 (Ok) or the error code of the answer. */
static int expect_ok(uint64_t id)
{
	Sluice__Frame *f = answer(id, 10000);
	int code = f->body_case == SLUICE__FRAME__BODY_ERROR ? (int)f->error->code : 0;
	if (!code)
		cr_assert_eq(f->body_case, SLUICE__FRAME__BODY_OK, "answer %d", f->body_case);
	sluice__frame__free_unpacked(f, NULL);
	return code;
}

struct ccfg {
	int shared;
	uint32_t max_in_flight, max_deliveries, ack_timeout_ms;
	uint32_t schedule[4];
	size_t nschedule;
	Sluice__StartAt start;
};

static int create(const char *name, const char *topic, const struct ccfg *c)
{
	Sluice__Frame f = SLUICE__FRAME__INIT;
	Sluice__CreateConsumer m = SLUICE__CREATE_CONSUMER__INIT;
	Sluice__ConsumerConfig cc = SLUICE__CONSUMER_CONFIG__INIT;
	cc.topic = (char *)topic;
	cc.shared = c->shared;
	cc.max_in_flight = c->max_in_flight;
	cc.max_deliveries = c->max_deliveries;
	cc.ack_timeout_ms = c->ack_timeout_ms;
	cc.n_schedule_ms = c->nschedule;
	cc.schedule_ms = (uint32_t *)c->schedule;
	cc.start = c->start;
	m.name = (char *)name;
	m.config = &cc;
	f.id = ++next_id;
	f.body_case = SLUICE__FRAME__BODY_CREATE_CONSUMER;
	f.create_consumer = &m;
	cr_assert_eq(itest_send_frame(fd, &f), 0);
	return expect_ok(f.id);
}

static void publish(const char *topic, int partition, int n, const char *prefix)
{
	for (int i = 0; i < n; i++) {
		char p[64];
		uint64_t id = ++next_id;
		snprintf(p, sizeof(p), "%s%d", prefix, i);
		cr_assert_eq(itest_raw_send_publish(fd, id, topic, partition, p, strlen(p), 0, 0), 0);
		cr_assert_eq(itest_raw_wait_ack(fd, id, 10000, NULL, NULL, NULL), 0);
	}
}

/* A pull's answer (the caller frees it), or aborts on an error. */
static Sluice__Frame *pull(const char *name, uint32_t max, uint32_t wait_ms)
{
	Sluice__Frame f = SLUICE__FRAME__INIT;
	Sluice__Pull m = SLUICE__PULL__INIT;
	m.consumer = (char *)name;
	m.max_messages = max;
	m.wait_ms = wait_ms;
	f.id = ++next_id;
	f.body_case = SLUICE__FRAME__BODY_PULL;
	f.pull = &m;
	cr_assert_eq(itest_send_frame(fd, &f), 0);
	Sluice__Frame *r = answer(f.id, (int)wait_ms + 10000);
	cr_assert_eq(r->body_case, SLUICE__FRAME__BODY_PULL_RESULT, "pull answered %d (%s)", r->body_case,
	             r->body_case == SLUICE__FRAME__BODY_ERROR ? r->error->message : "");
	return r;
}

static int ack1(const char *name, uint32_t partition, uint64_t offset, Sluice__AckKind kind, int64_t delay_ms,
                const char *error)
{
	Sluice__Frame f = SLUICE__FRAME__INIT;
	Sluice__AckMessages m = SLUICE__ACK_MESSAGES__INIT;
	Sluice__AckItem it = SLUICE__ACK_ITEM__INIT;
	Sluice__AckItem *items[1] = {&it};
	it.partition = partition;
	it.offset = offset;
	it.kind = kind;
	it.has_delay = delay_ms >= 0;
	it.delay_ms = delay_ms;
	it.error = (char *)(error ? error : "");
	m.consumer = (char *)name;
	m.n_items = 1;
	m.items = items;
	f.id = ++next_id;
	f.body_case = SLUICE__FRAME__BODY_ACK_MESSAGES;
	f.ack_messages = &m;
	cr_assert_eq(itest_send_frame(fd, &f), 0);
	return expect_ok(f.id);
}

static Sluice__ConsumerInfo *describe(const char *name, Sluice__Frame **hold)
{
	Sluice__Frame f = SLUICE__FRAME__INIT;
	Sluice__DescribeConsumer m = SLUICE__DESCRIBE_CONSUMER__INIT;
	m.name = (char *)name;
	f.id = ++next_id;
	f.body_case = SLUICE__FRAME__BODY_DESCRIBE_CONSUMER;
	f.describe_consumer = &m;
	cr_assert_eq(itest_send_frame(fd, &f), 0);
	*hold = answer(f.id, 10000);
	if ((*hold)->body_case == SLUICE__FRAME__BODY_ERROR)
		return NULL;
	cr_assert_eq((*hold)->body_case, SLUICE__FRAME__BODY_CONSUMER_INFO);
	return (*hold)->consumer_info;
}

static const char *payload_of(const Sluice__PulledMessage *pm, char *buf, size_t cap)
{
	size_t n = pm->message->payload.len < cap - 1 ? pm->message->payload.len : cap - 1;
	memcpy(buf, pm->message->payload.data, n);
	buf[n] = 0;
	return buf;
}

Test(consumer, create_pull_ack_in_order_once)
{
	struct ccfg c = {0};
	char b[64];
	cr_assert_eq(itest_raw_create_topic(fd, ++next_id, "orders", 1), 0);
	publish("orders", 0, 5, "o");
	cr_assert_eq(create("billing", "orders", &c), 0);
	cr_assert_eq(create("billing", "orders", &c), SLUICE__ERROR_CODE__CONSUMER_EXISTS);
	cr_assert_eq(create("x", "nope", &c), SLUICE__ERROR_CODE__NO_SUCH_TOPIC);
	/* ordered: one message in flight per partition */
	for (int i = 0; i < 5; i++) {
		Sluice__Frame *r = pull("billing", 10, 0);
		cr_assert_eq(r->pull_result->n_messages, 1, "ordered mode hands out one at a time (got %zu)",
		             r->pull_result->n_messages);
		Sluice__PulledMessage *pm = r->pull_result->messages[0];
		cr_assert_eq(pm->message->offset, (uint64_t)i);
		cr_assert_eq(pm->attempt, 1);
		snprintf(b, sizeof(b), "o%d", i);
		cr_assert_str_eq(payload_of(pm, (char[64]){0}, 64), b);
		cr_assert_str_eq(pm->message->topic, "orders");
		/* nothing more until it is acknowledged */
		Sluice__Frame *r2 = pull("billing", 10, 0);
		cr_assert_eq(r2->pull_result->n_messages, 0);
		sluice__frame__free_unpacked(r2, NULL);
		cr_assert_eq(ack1("billing", 0, pm->message->offset, SLUICE__ACK_KIND__ACK, -1, NULL), 0);
		sluice__frame__free_unpacked(r, NULL);
	}
	Sluice__Frame *r = pull("billing", 10, 0);
	cr_assert_eq(r->pull_result->n_messages, 0, "everything was acknowledged");
	sluice__frame__free_unpacked(r, NULL);
	Sluice__Frame *h;
	Sluice__ConsumerInfo *ci = describe("billing", &h);
	cr_assert_not_null(ci);
	cr_assert_eq(ci->n_partitions, 1);
	cr_assert_eq(ci->partitions[0]->ack_floor, 5);
	cr_assert_eq(ci->partitions[0]->next_offset, 5);
	cr_assert_eq(ci->partitions[0]->in_flight, 0);
	cr_assert_eq(ci->partitions[0]->acked, 5);
	cr_assert_eq(ci->partitions[0]->delivered, 5);
	cr_assert_eq(ci->partitions[0]->end_offset, 5);
	cr_assert_eq(ci->partitions[0]->lag, 0);
	cr_assert_str_eq(ci->config->dead_letter_topic, "orders.dlq");
	cr_assert_eq(ci->config->max_deliveries, 10);
	sluice__frame__free_unpacked(h, NULL);
}

Test(consumer, long_poll_wakes_on_publish)
{
	struct ccfg c = {0};
	cr_assert_eq(itest_raw_create_topic(fd, ++next_id, "lp", 1), 0);
	cr_assert_eq(create("w", "lp", &c), 0);
	/* a second connection publishes while the first waits */
	int fd2 = itest_connect(node.port);
	cr_assert_geq(fd2, 0);
	cr_assert_eq(itest_hello(fd2), 0);
	Sluice__Frame f = SLUICE__FRAME__INIT;
	Sluice__Pull m = SLUICE__PULL__INIT;
	m.consumer = "w";
	m.max_messages = 5;
	m.wait_ms = 8000;
	f.id = ++next_id;
	f.body_case = SLUICE__FRAME__BODY_PULL;
	f.pull = &m;
	long long t0 = itest_now_ms();
	cr_assert_eq(itest_send_frame(fd, &f), 0);
	itest_sleep_ms(300);
	cr_assert_eq(itest_raw_send_publish(fd2, 7, "lp", 0, "late", 4, 0, 0), 0);
	cr_assert_eq(itest_raw_wait_ack(fd2, 7, 10000, NULL, NULL, NULL), 0);
	Sluice__Frame *r = answer(f.id, 10000);
	long long took = itest_now_ms() - t0;
	cr_assert_eq(r->body_case, SLUICE__FRAME__BODY_PULL_RESULT);
	cr_assert_eq(r->pull_result->n_messages, 1);
	cr_assert_lt(took, 7000, "the held pull was answered when the message committed (%lld ms)", took);
	sluice__frame__free_unpacked(r, NULL);
	/* with nothing to take it waits its time, then answers empty */
	t0 = itest_now_ms();
	r = pull("w", 5, 600);
	took = itest_now_ms() - t0;
	cr_assert_eq(r->pull_result->n_messages, 0);
	cr_assert_geq(took, 500, "an empty pull waits (%lld ms)", took);
	sluice__frame__free_unpacked(r, NULL);
	close(fd2);
}

Test(consumer, ack_timeout_redelivers_and_nack_delay_is_kept)
{
	struct ccfg c = {.shared = 1, .max_in_flight = 10, .ack_timeout_ms = 400};
	cr_assert_eq(itest_raw_create_topic(fd, ++next_id, "jobs", 1), 0);
	publish("jobs", 0, 2, "j");
	cr_assert_eq(create("workers", "jobs", &c), 0);
	Sluice__Frame *r = pull("workers", 10, 0);
	cr_assert_eq(r->pull_result->n_messages, 2, "shared mode: both at once");
	sluice__frame__free_unpacked(r, NULL);
	/* offset 1 is nacked for 1500 ms, offset 0 times out after 400 ms */
	cr_assert_eq(ack1("workers", 0, 1, SLUICE__ACK_KIND__NACK, 1500, "boom"), 0);
	long long t0 = itest_now_ms();
	r = pull("workers", 10, 3000);
	cr_assert_eq(r->pull_result->n_messages, 1);
	cr_assert_eq(r->pull_result->messages[0]->message->offset, 0);
	cr_assert_eq(r->pull_result->messages[0]->attempt, 2, "redelivered after its ack timeout");
	sluice__frame__free_unpacked(r, NULL);
	cr_assert_eq(ack1("workers", 0, 0, SLUICE__ACK_KIND__ACK, -1, NULL), 0);
	r = pull("workers", 10, 5000);
	long long took = itest_now_ms() - t0;
	cr_assert_eq(r->pull_result->n_messages, 1);
	cr_assert_eq(r->pull_result->messages[0]->message->offset, 1);
	cr_assert_eq(r->pull_result->messages[0]->attempt, 2);
	cr_assert_geq(took, 1400, "not before the nack's delay (%lld ms)", took);
	sluice__frame__free_unpacked(r, NULL);
	Sluice__Frame *h;
	Sluice__ConsumerInfo *ci = describe("workers", &h);
	cr_assert_eq(ci->partitions[0]->redelivered, 2);
	cr_assert_str_eq(ci->partitions[0]->last_error, "boom");
	sluice__frame__free_unpacked(h, NULL);
}

static const char *hdr(const Sluice__Message *m, const char *key, char *buf, size_t cap)
{
	for (size_t i = 0; i < m->n_headers; i++)
		if (strcmp(m->headers[i]->key, key) == 0) {
			size_t n = m->headers[i]->value.len < cap - 1 ? m->headers[i]->value.len : cap - 1;
			memcpy(buf, m->headers[i]->value.data, n);
			buf[n] = 0;
			return buf;
		}
	return NULL;
}

Test(consumer, max_deliveries_dead_letters_and_goes_on)
{
	struct ccfg c = {.max_deliveries = 2, .ack_timeout_ms = 60000, .schedule = {0}, .nschedule = 1};
	char b[64];
	cr_assert_eq(itest_raw_create_topic(fd, ++next_id, "pay", 1), 0);
	publish("pay", 0, 2, "p");
	cr_assert_eq(create("pc", "pay", &c), 0);
	for (int attempt = 1; attempt <= 2; attempt++) {
		Sluice__Frame *r = pull("pc", 10, 2000);
		cr_assert_eq(r->pull_result->n_messages, 1);
		cr_assert_eq(r->pull_result->messages[0]->message->offset, 0);
		cr_assert_eq(r->pull_result->messages[0]->attempt, (uint32_t)attempt);
		sluice__frame__free_unpacked(r, NULL);
		cr_assert_eq(ack1("pc", 0, 0, SLUICE__ACK_KIND__NACK, -1, "card declined"), 0);
	}
	/* the third pull dead-letters offset 0 and hands out offset 1 */
	Sluice__Frame *r = pull("pc", 10, 3000);
	if (r->pull_result->n_messages == 0) { /* the dead letter took this pull */
		sluice__frame__free_unpacked(r, NULL);
		r = pull("pc", 10, 3000);
	}
	cr_assert_eq(r->pull_result->n_messages, 1);
	cr_assert_eq(r->pull_result->messages[0]->message->offset, 1);
	cr_assert_eq(r->pull_result->messages[0]->attempt, 1);
	sluice__frame__free_unpacked(r, NULL);
	/* the dead letter: a fetch of pay.dlq */
	Sluice__Frame f = SLUICE__FRAME__INIT;
	Sluice__Fetch fm = SLUICE__FETCH__INIT;
	fm.topic = "pay.dlq";
	fm.partition = 0;
	fm.offset = 0;
	fm.max_messages = 10;
	f.id = ++next_id;
	f.body_case = SLUICE__FRAME__BODY_FETCH;
	f.fetch = &fm;
	cr_assert_eq(itest_send_frame(fd, &f), 0);
	Sluice__Frame *fr = answer(f.id, 10000);
	cr_assert_eq(fr->body_case, SLUICE__FRAME__BODY_FETCH_RESULT, "the dead-letter topic exists");
	cr_assert_eq(fr->fetch_result->n_messages, 1);
	Sluice__Message *m = fr->fetch_result->messages[0];
	cr_assert_eq(m->payload.len, 2);
	cr_assert_eq(memcmp(m->payload.data, "p0", 2), 0);
	cr_assert_str_eq(hdr(m, "sluice-dlq-topic", b, sizeof(b)), "pay");
	cr_assert_str_eq(hdr(m, "sluice-dlq-partition", b, sizeof(b)), "0");
	cr_assert_str_eq(hdr(m, "sluice-dlq-offset", b, sizeof(b)), "0");
	cr_assert_str_eq(hdr(m, "sluice-dlq-deliveries", b, sizeof(b)), "2");
	cr_assert_str_eq(hdr(m, "sluice-dlq-error", b, sizeof(b)), "card declined");
	sluice__frame__free_unpacked(fr, NULL);
	Sluice__Frame *h;
	Sluice__ConsumerInfo *ci = describe("pc", &h);
	cr_assert_eq(ci->partitions[0]->dead_lettered, 1);
	cr_assert_eq(ci->partitions[0]->ack_floor, 1);
	sluice__frame__free_unpacked(h, NULL);
}

Test(consumer, shared_members_get_disjoint_messages_and_state_survives_restart)
{
	struct ccfg c = {.shared = 1, .max_in_flight = 100};
	cr_assert_eq(itest_raw_create_topic(fd, ++next_id, "q", 2), 0);
	publish("q", 0, 10, "a");
	publish("q", 1, 10, "b");
	cr_assert_eq(create("pool", "q", &c), 0);
	Sluice__Frame *r1 = pull("pool", 7, 0);
	Sluice__Frame *r2 = pull("pool", 100, 0);
	cr_assert_eq(r1->pull_result->n_messages, 7);
	cr_assert_eq(r2->pull_result->n_messages, 13);
	int seen[2][10] = {{0}};
	Sluice__Frame *rs[2] = {r1, r2};
	for (int k = 0; k < 2; k++)
		for (size_t i = 0; i < rs[k]->pull_result->n_messages; i++) {
			Sluice__Message *m = rs[k]->pull_result->messages[i]->message;
			cr_assert_lt(m->partition, 2);
			cr_assert_lt(m->offset, 10);
			cr_assert_eq(seen[m->partition][m->offset]++, 0, "delivered twice: %u/%llu", m->partition,
			             (unsigned long long)m->offset);
		}
	/* ack the first member's, then restart the node: the second's stay in flight */
	for (size_t i = 0; i < r1->pull_result->n_messages; i++) {
		Sluice__Message *m = r1->pull_result->messages[i]->message;
		cr_assert_eq(ack1("pool", m->partition, m->offset, SLUICE__ACK_KIND__ACK, -1, NULL), 0);
	}
	sluice__frame__free_unpacked(r1, NULL);
	sluice__frame__free_unpacked(r2, NULL);
	close(fd);
	fd = -1;
	cr_assert_eq(itest_node_kill9(&node), 0);
	cr_assert_eq(itest_node_start(&node), 0, "restart");
	fd = itest_connect(node.port);
	cr_assert_eq(itest_hello(fd), 0);
	Sluice__Frame *h;
	Sluice__ConsumerInfo *ci = describe("pool", &h);
	cr_assert_not_null(ci);
	cr_assert_eq(ci->partitions[0]->in_flight + ci->partitions[1]->in_flight, 13, "in flight kept across kill -9");
	cr_assert_eq(ci->partitions[0]->acked + ci->partitions[1]->acked, 7);
	sluice__frame__free_unpacked(h, NULL);
	Sluice__Frame *r3 = pull("pool", 100, 0);
	cr_assert_eq(r3->pull_result->n_messages, 0, "nothing new, nothing due yet");
	sluice__frame__free_unpacked(r3, NULL);
	/* delete */
	Sluice__Frame f = SLUICE__FRAME__INIT;
	Sluice__DeleteConsumer dm = SLUICE__DELETE_CONSUMER__INIT;
	dm.name = "pool";
	f.id = ++next_id;
	f.body_case = SLUICE__FRAME__BODY_DELETE_CONSUMER;
	f.delete_consumer = &dm;
	cr_assert_eq(itest_send_frame(fd, &f), 0);
	cr_assert_eq(expect_ok(f.id), 0);
	cr_assert_null(describe("pool", &h));
	cr_assert_eq(h->error->code, SLUICE__ERROR_CODE__NO_SUCH_CONSUMER);
	sluice__frame__free_unpacked(h, NULL);
}
