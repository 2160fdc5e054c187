/*
 * protocol_test.c: the native protocol's handling of bad input, seen from raw
 * sockets against a real sluiced. Every case checks the exact Error code, the
 * response id, and whether the connection is closed or still serves; and that
 * one client's garbage never disturbs another client's publishes. Also the
 * server side of credit-based flow control, which the library would hide.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "harness.h"
#include "pubbatch.h"
#include "sluice/sluice.h"
#include "store.h"

static struct itest_node node;

static void setup(void)
{
	cr_assert_eq(itest_node_init(&node), 0, "temp dir / port");
	cr_assert_eq(itest_node_start(&node), 0, "sluiced did not become ready");
}

static void teardown(void)
{
	itest_node_destroy(&node);
}

TestSuite(protocol, .init = setup, .fini = teardown, .timeout = 90);

static int open_hello(void)
{
	int fd = itest_connect(node.port);

	cr_assert_geq(fd, 0, "connect");
	cr_assert_eq(itest_hello(fd), 0, "handshake");
	return fd;
}

/* The next frame is an Error with code; then the server closes. */
static void expect_error_then_close(int fd, int code, const char *what)
{
	Sluice__Frame *r = NULL;
	int rc = itest_recv_frame(fd, 5000, &r);

	cr_assert_eq(rc, 0, "%s: no frame back (rc %d)", what, rc);
	cr_assert_eq(r->body_case, SLUICE__FRAME__BODY_ERROR, "%s: body %d, want Error", what, r->body_case);
	cr_assert_eq((int)r->error->code, code, "%s: code %d, want %d (%s)", what, r->error->code, code,
	             r->error->message);
	sluice__frame__free_unpacked(r, NULL);
	rc = itest_recv_frame(fd, 5000, &r);
	cr_assert_eq(rc, SL_ECLOSED, "%s: connection not closed after the error (rc %d)", what, rc);
}

static void send_hello(int fd, uint32_t min, uint32_t max)
{
	Sluice__Frame f = SLUICE__FRAME__INIT;
	Sluice__Hello h = SLUICE__HELLO__INIT;

	h.min_version = min;
	h.max_version = max;
	f.id = 1;
	f.body_case = SLUICE__FRAME__BODY_HELLO;
	f.hello = &h;
	cr_assert_eq(itest_send_frame(fd, &f), 0);
}

static void expect_node_status(int fd, uint64_t id)
{
	Sluice__Frame *r = NULL;

	cr_assert_eq(itest_send_node_status(fd, id), 0);
	cr_assert_eq(itest_recv_response(fd, id, 5000, &r), 0, "no NodeStatus answer");
	cr_assert_eq(r->body_case, SLUICE__FRAME__BODY_NODE_STATUS_RESULT, "body %d", r->body_case);
	cr_assert_eq(r->node_status_result->frontends, node.frontends);
	sluice__frame__free_unpacked(r, NULL);
}

Test(protocol, garbage_after_hello_is_malformed_and_closes)
{
	uint8_t junk[4 + 16];
	int fd = open_hello();

	memset(junk, 0xff, sizeof(junk));
	junk[0] = 0;
	junk[1] = 0;
	junk[2] = 0;
	junk[3] = 16;
	cr_assert_eq(itest_send_raw(fd, junk, sizeof(junk)), 0);
	expect_error_then_close(fd, SL_EMALFORMED, "garbage");
	close(fd);
	cr_assert_eq(itest_node_status_raw(node.port, 5000), 0, "server stopped serving after garbage");
}

Test(protocol, oversized_length_is_rejected_before_reading_it)
{
	uint8_t hdr[8] = {0x00, 0x20, 0x00, 0x00, 1, 2, 3, 4}; /* announces 2 MiB */
	int fd = open_hello();

	cr_assert_eq(itest_send_raw(fd, hdr, sizeof(hdr)), 0);
	expect_error_then_close(fd, SL_ETOOLARGE, "2 MiB frame");
	close(fd);
	cr_assert_eq(itest_node_status_raw(node.port, 5000), 0);
}

Test(protocol, first_frame_must_be_hello)
{
	int fd = itest_connect(node.port);

	cr_assert_geq(fd, 0);
	cr_assert_eq(itest_send_node_status(fd, 5), 0);
	expect_error_then_close(fd, SL_EHANDSHAKE, "NodeStatus before Hello");
	close(fd);
}

Test(protocol, unsupported_version)
{
	int fd = itest_connect(node.port);

	cr_assert_geq(fd, 0);
	send_hello(fd, 99, 99);
	expect_error_then_close(fd, SL_EVERSION, "Hello 99..99");
	close(fd);
}

Test(protocol, hello_range_including_v1_negotiates_v1)
{
	Sluice__Frame *r = NULL;
	int fd = itest_connect(node.port);

	cr_assert_geq(fd, 0);
	send_hello(fd, 1, 7);
	cr_assert_eq(itest_recv_frame(fd, 5000, &r), 0);
	cr_assert_eq(r->body_case, SLUICE__FRAME__BODY_HELLO_OK);
	cr_assert_eq(r->hello_ok->version, 1);
	cr_assert_eq(r->hello_ok->frame_bytes_max, 1u << 20, "default frame_bytes_max is 1 MiB");
	sluice__frame__free_unpacked(r, NULL);
	expect_node_status(fd, 2);
	close(fd);
}

Test(protocol, unknown_operation_keeps_connection)
{
	Sluice__Frame f = SLUICE__FRAME__INIT, *r = NULL;
	Sluice__PublishAck pa = SLUICE__PUBLISH_ACK__INIT;
	int fd = open_hello();

	f.id = 7;
	f.body_case = SLUICE__FRAME__BODY_PUBLISH_ACK;
	f.publish_ack = &pa;
	cr_assert_eq(itest_send_frame(fd, &f), 0);
	cr_assert_eq(itest_recv_frame(fd, 5000, &r), 0, "no answer to a PublishAck request");
	cr_assert_eq(r->id, 7, "error must carry the request id");
	cr_assert_eq(r->body_case, SLUICE__FRAME__BODY_ERROR);
	cr_assert_eq((int)r->error->code, SL_EUNKNOWN_OP, "code %d", r->error->code);
	sluice__frame__free_unpacked(r, NULL);
	expect_node_status(fd, 8);
	close(fd);
}

Test(protocol, publish_to_missing_topic)
{
	int fd = open_hello();
	int rc;

	cr_assert_eq(itest_raw_send_publish(fd, 3, "no-such-topic", -1, "x", 1, 0, 0), 0);
	rc = itest_raw_wait_ack(fd, 3, 5000, NULL, NULL, NULL);
	cr_assert_eq(rc, SL_ENOTOPIC, "rc %d", rc);
	expect_node_status(fd, 4); /* not a connection-level error */
	close(fd);
}

Test(protocol, create_existing_topic_and_bad_partition)
{
	int fd = open_hello();
	int rc;

	cr_assert_eq(itest_raw_create_topic(fd, 2, "dup", 2), 0);
	rc = itest_raw_create_topic(fd, 3, "dup", 2);
	cr_assert_eq(rc, SL_ETOPIC_EXISTS, "rc %d", rc);
	cr_assert_eq(itest_raw_send_publish(fd, 4, "dup", 2, "x", 1, 0, 0), 0);
	rc = itest_raw_wait_ack(fd, 4, 5000, NULL, NULL, NULL);
	cr_assert_eq(rc, SL_EINVAL, "partition 2 of a 2-partition topic: rc %d", rc);
	close(fd);
}

/* Throw a few kinds of garbage at a fresh connection; do not wait for answers. */
static void garbage_connection(int round)
{
	static const uint8_t big[4] = {0x7f, 0xff, 0xff, 0xff};
	uint8_t junk[64];
	int fd = itest_connect(node.port);

	if (fd < 0)
		return;
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(i * 37 + round);
	if (round % 3 == 0) {
		itest_send_raw(fd, junk, sizeof(junk));
	} else {
		itest_hello(fd);
		itest_send_raw(fd, round % 3 == 1 ? junk : big, round % 3 == 1 ? sizeof(junk) : sizeof(big));
	}
	close(fd);
}

Test(protocol, garbage_does_not_disturb_other_connections)
{
	enum { N = 300 };
	int fd = open_hello(), bad;
	char payload[32];

	cr_assert_eq(itest_raw_create_topic(fd, 2, "steady", 1), 0);
	bad = itest_connect(node.port);
	cr_assert_geq(bad, 0);
	cr_assert_eq(itest_hello(bad), 0);
	for (int i = 0; i < N; i++) {
		uint32_t part = 99;
		uint64_t off = 99;
		int dup = 1, rc;
		snprintf(payload, sizeof(payload), "m-%d", i);
		cr_assert_eq(
		    itest_raw_send_publish(fd, 100 + (uint64_t)i, "steady", -1, payload, strlen(payload), 0, 0), 0);
		if (i % 10 == 0)
			garbage_connection(i / 10);
		if (i == N / 2)
			itest_send_raw(bad, "\x00\x00\x00\x05zzzzz", 9);
		rc = itest_raw_wait_ack(fd, 100 + (uint64_t)i, 10000, &part, &off, &dup);
		cr_assert_eq(rc, 0, "publish %d failed: %d", i, rc);
		cr_assert_eq(part, 0);
		cr_assert_eq(off, (uint64_t)i, "offset %llu for publish %d", (unsigned long long)off, i);
		cr_assert_eq(dup, 0);
	}
	close(bad);
	expect_node_status(fd, 9999);
	close(fd);
}

static void send_subscribe(int fd, uint64_t id, const char *topic, uint32_t credit)
{
	Sluice__Frame f = SLUICE__FRAME__INIT;
	Sluice__Subscribe s = SLUICE__SUBSCRIBE__INIT;
	uint32_t part0 = 0;

	s.topic = (char *)topic;
	s.n_partitions = 1;
	s.partitions = &part0;
	s.start = SLUICE__START_AT__EARLIEST;
	s.credit = credit;
	f.id = id;
	f.body_case = SLUICE__FRAME__BODY_SUBSCRIBE;
	f.subscribe = &s;
	cr_assert_eq(itest_send_frame(fd, &f), 0);
}

/* Collect deliveries for window_ms; checks order from *next; returns count. */
static int drain_deliveries(int fd, uint64_t sub, int window_ms, uint64_t *next)
{
	long long deadline = itest_now_ms() + window_ms;
	int got = 0;

	for (;;) {
		Sluice__Frame *r = NULL;
		long long left = deadline - itest_now_ms();
		int rc = itest_recv_frame(fd, left > 0 ? (int)left : 0, &r);
		if (rc == SL_ETIMEOUT)
			return got;
		cr_assert_eq(rc, 0, "subscription connection failed: %d", rc);
		if (r->id != 0) { /* a response to Credit, if the server sends one */
			cr_assert_neq(r->body_case, SLUICE__FRAME__BODY_ERROR, "error %d", r->error->code);
			sluice__frame__free_unpacked(r, NULL);
			continue;
		}
		cr_assert_eq(r->body_case, SLUICE__FRAME__BODY_DELIVERY, "unexpected body %d", r->body_case);
		cr_assert_eq(r->delivery->subscription_id, sub);
		for (size_t i = 0; i < r->delivery->n_messages; i++) {
			Sluice__Message *m = r->delivery->messages[i];
			char want[32];
			snprintf(want, sizeof(want), "c-%llu", (unsigned long long)*next);
			cr_assert_eq(m->offset, *next, "delivery out of order");
			cr_assert_eq(m->payload.len, strlen(want));
			cr_assert_arr_eq(m->payload.data, want, strlen(want));
			(*next)++;
			got++;
		}
		sluice__frame__free_unpacked(r, NULL);
	}
}

Test(protocol, server_respects_subscription_credit)
{
	Sluice__Frame f = SLUICE__FRAME__INIT, *r = NULL;
	Sluice__Credit cr = SLUICE__CREDIT__INIT;
	int fd = open_hello(), sfd = open_hello();
	uint64_t sub, next = 0;
	char payload[32];

	cr_assert_eq(itest_raw_create_topic(fd, 2, "credit", 1), 0);
	for (int i = 0; i < 100; i++) {
		snprintf(payload, sizeof(payload), "c-%d", i);
		cr_assert_eq(itest_raw_send_publish(fd, 10 + (uint64_t)i, "credit", 0, payload, strlen(payload), 0, 0),
		             0);
	}
	for (int i = 0; i < 100; i++)
		cr_assert_eq(itest_raw_wait_ack(fd, 10 + (uint64_t)i, 10000, NULL, NULL, NULL), 0);

	send_subscribe(sfd, 5, "credit", 10);
	cr_assert_eq(itest_recv_response(sfd, 5, 5000, &r), 0);
	cr_assert_eq(r->body_case, SLUICE__FRAME__BODY_SUBSCRIBED, "body %d", r->body_case);
	sub = r->subscribed->subscription_id;
	sluice__frame__free_unpacked(r, NULL);

	cr_assert_eq(drain_deliveries(sfd, sub, 800, &next), 10, "credit 10 must allow exactly 10 messages");
	cr.subscription_id = sub;
	cr.credit = 15;
	f.id = 6;
	f.body_case = SLUICE__FRAME__BODY_CREDIT;
	f.credit = &cr;
	cr_assert_eq(itest_send_frame(sfd, &f), 0);
	cr_assert_eq(drain_deliveries(sfd, sub, 800, &next), 15, "Credit 15 must allow exactly 15 more");
	cr_assert_eq(next, 25);
	close(sfd);
	close(fd);
}

Test(protocol, sigterm_exits_zero)
{
	int fd = open_hello();

	cr_assert_eq(itest_raw_create_topic(fd, 2, "t", 1), 0);
	close(fd);
	cr_assert_eq(itest_node_stop(&node), 0, "sluiced must exit 0 on SIGTERM and take its children with it");
}

Test(protocol, frame_without_body_is_malformed)
{
	Sluice__Frame f = SLUICE__FRAME__INIT;
	int fd = open_hello();

	f.id = 5; /* a valid protobuf Frame with no oneof set */
	cr_assert_eq(itest_send_frame(fd, &f), 0);
	expect_error_then_close(fd, SL_EMALFORMED, "Frame without body");
	close(fd);
}

Test(protocol, publish_over_frame_limit_is_too_large)
{
	size_t len = (1u << 20) + 100;
	char *big = malloc(len);
	int fd = open_hello();

	cr_assert_not_null(big);
	memset(big, 'x', len);
	cr_assert_eq(itest_raw_create_topic(fd, 2, "big", 1), 0);
	/* The server may close while we are still sending; what matters is the reply. */
	itest_raw_send_publish(fd, 3, "big", 0, big, len, 0, 0);
	free(big);
	expect_error_then_close(fd, SL_ETOOLARGE, "1 MiB + 100 payload");
	close(fd);
	cr_assert_eq(itest_node_status_raw(node.port, 5000), 0);
}

Test(protocol, truncated_frame_then_hangup_leaves_server_serving)
{
	uint8_t part[10] = {0, 0, 0, 100, 0x08, 0x01};
	int fd = open_hello(), fd2 = open_hello();

	cr_assert_eq(itest_send_raw(fd, part, sizeof(part)), 0);
	close(fd); /* mid-frame */
	cr_assert_eq(itest_send_raw(fd2, part, 3), 0);
	itest_sleep_ms(100);
	close(fd2); /* mid-length-prefix */
	cr_assert_eq(itest_node_status_raw(node.port, 5000), 0);
}

Test(protocol, pipelined_requests_answered_with_their_ids)
{
	int fd = open_hello();
	int seen[3] = {0};

	cr_assert_eq(itest_raw_create_topic(fd, 2, "pipe", 1), 0);
	/* Three different requests back to back; each answer carries its id. */
	cr_assert_eq(itest_raw_send_publish(fd, 100, "pipe", -1, "a", 1, 0, 0), 0);
	cr_assert_eq(itest_send_node_status(fd, 101), 0);
	cr_assert_eq(itest_raw_send_publish(fd, 102, "missing", -1, "b", 1, 0, 0), 0);
	for (int i = 0; i < 3; i++) {
		Sluice__Frame *r = NULL;
		cr_assert_eq(itest_recv_frame(fd, 5000, &r), 0);
		cr_assert(r->id >= 100 && r->id <= 102, "unexpected id %llu", (unsigned long long)r->id);
		seen[r->id - 100]++;
		if (r->id == 100)
			cr_assert_eq(r->body_case, SLUICE__FRAME__BODY_PUBLISH_ACK);
		else if (r->id == 101)
			cr_assert_eq(r->body_case, SLUICE__FRAME__BODY_NODE_STATUS_RESULT);
		else
			cr_assert(r->body_case == SLUICE__FRAME__BODY_ERROR && (int)r->error->code == SL_ENOTOPIC);
		sluice__frame__free_unpacked(r, NULL);
	}
	cr_assert(seen[0] == 1 && seen[1] == 1 && seen[2] == 1);
	close(fd);
}

/* Subscribe with `credit`, (publish `backlog` messages,) delete the topic:
 * the subscription ends with NO_SUCH_TOPIC at once, credit or not. */
static void topic_deleted_under_subscription(uint32_t credit, int backlog)
{
	Sluice__Frame f = SLUICE__FRAME__INIT, *r = NULL;
	Sluice__DeleteTopic del = SLUICE__DELETE_TOPIC__INIT;
	int fd = open_hello(), sfd = open_hello();
	uint64_t sub;

	cr_assert_eq(itest_raw_create_topic(fd, 2, "gone", 1), 0);
	for (int i = 0; i < backlog; i++) {
		cr_assert_eq(itest_raw_send_publish(fd, 50 + (uint64_t)i, "gone", 0, "x", 1, 0, 0), 0);
		cr_assert_eq(itest_raw_wait_ack(fd, 50 + (uint64_t)i, 5000, NULL, NULL, NULL), 0);
	}
	send_subscribe(sfd, 5, "gone", credit);
	cr_assert_eq(itest_recv_response(sfd, 5, 5000, &r), 0);
	cr_assert_eq(r->body_case, SLUICE__FRAME__BODY_SUBSCRIBED, "body %d", r->body_case);
	sub = r->subscribed->subscription_id;
	sluice__frame__free_unpacked(r, NULL);

	del.name = "gone";
	f.id = 3;
	f.body_case = SLUICE__FRAME__BODY_DELETE_TOPIC;
	f.delete_topic = &del;
	cr_assert_eq(itest_send_frame(fd, &f), 0);
	cr_assert_eq(itest_recv_response(fd, 3, 5000, &r), 0);
	cr_assert_eq(r->body_case, SLUICE__FRAME__BODY_OK, "delete answered %d", r->body_case);
	sluice__frame__free_unpacked(r, NULL);

	/* the subscriber is told, on the subscription itself, that it ended */
	do {
		cr_assert_eq(itest_recv_frame(sfd, 5000, &r), 0, "no end-of-subscription delivery");
		if (r->body_case == SLUICE__FRAME__BODY_DELIVERY && r->delivery->n_messages > 0) {
			sluice__frame__free_unpacked(r, NULL);
			r = NULL;
		}
	} while (!r);
	cr_assert_eq(r->id, 0);
	cr_assert_eq(r->body_case, SLUICE__FRAME__BODY_DELIVERY, "body %d", r->body_case);
	cr_assert_eq(r->delivery->subscription_id, sub);
	cr_assert_eq(r->delivery->n_messages, 0);
	cr_assert_eq(r->delivery->end_error, SLUICE__ERROR_CODE__NO_SUCH_TOPIC);
	sluice__frame__free_unpacked(r, NULL);
	/* the connection keeps working */
	expect_node_status(sfd, 9);
	close(sfd);
	close(fd);
}

Test(protocol, subscription_ends_with_no_such_topic_when_topic_deleted)
{
	topic_deleted_under_subscription(10, 0);
}

/* A subscriber that granted no credit (or used it up) still learns at once. */
Test(protocol, subscription_without_credit_ends_when_topic_deleted)
{
	topic_deleted_under_subscription(0, 0);
}

Test(protocol, subscription_out_of_credit_ends_when_topic_deleted)
{
	topic_deleted_under_subscription(2, 5);
}

/* Id 0 is reserved for frames the server pushes: a request carrying it is
 * MALFORMED (answered with id 0) and the connection closes. */
Test(protocol, request_id_zero_is_malformed_and_closes)
{
	int fd = open_hello();
	Sluice__Frame f = SLUICE__FRAME__INIT;
	Sluice__NodeStatus ns = SLUICE__NODE_STATUS__INIT;

	f.id = 0;
	f.body_case = SLUICE__FRAME__BODY_NODE_STATUS;
	f.node_status = &ns;
	cr_assert_eq(itest_send_frame(fd, &f), 0);
	expect_error_then_close(fd, SLUICE__ERROR_CODE__MALFORMED, "NodeStatus with id 0");
	close(fd);
}

/* partition 0xffffffff is the ring's "no partition": never routed as one. */
Test(protocol, explicit_partition_all_ones_is_invalid_argument)
{
	int fd = open_hello();
	cr_assert_eq(itest_raw_create_topic(fd, 1, "p1", 2), 0);
	cr_assert_eq(itest_raw_send_publish(fd, 2, "p1", -1, "x", 1, 0, 0), 0);
	cr_assert_eq(itest_raw_wait_ack(fd, 2, 5000, NULL, NULL, NULL), 0);
	Sluice__Frame f = SLUICE__FRAME__INIT;
	Sluice__Publish p = SLUICE__PUBLISH__INIT;
	p.topic = (char *)"p1";
	p.has_partition = 1;
	p.partition = UINT32_MAX;
	p.payload.data = (uint8_t *)"y";
	p.payload.len = 1;
	f.id = 3;
	f.body_case = SLUICE__FRAME__BODY_PUBLISH;
	f.publish = &p;
	cr_assert_eq(itest_send_frame(fd, &f), 0);
	cr_assert_eq(itest_raw_wait_ack(fd, 3, 5000, NULL, NULL, NULL), SLUICE__ERROR_CODE__INVALID_ARGUMENT);
	expect_node_status(fd, 4); /* the connection stays */
	close(fd);
}

/*
 * De-duplication is per producer, topic and partition space: a producer may
 * number each topic from 1. A real duplicate is answered with the original
 * position, and nothing is stored twice.
 */
Test(protocol, dedup_is_scoped_to_topic_and_partition_space)
{
	int fd = open_hello();
	uint32_t part = 99;
	uint64_t off = 99, off_a, off_b;
	int dup = -1;

	cr_assert_eq(itest_raw_create_topic(fd, 1, "da", 1), 0);
	cr_assert_eq(itest_raw_create_topic(fd, 2, "db", 2), 0);
	/* seq 1 to topic da, then seq 1 to topic db: both stored */
	cr_assert_eq(itest_raw_send_publish(fd, 3, "da", -1, "a1", 2, 777, 1), 0);
	cr_assert_eq(itest_raw_wait_ack(fd, 3, 5000, &part, &off_a, &dup), 0);
	cr_assert_eq(dup, 0);
	cr_assert_eq(off_a, 0);
	cr_assert_eq(itest_raw_send_publish(fd, 4, "db", 1, "b1", 2, 777, 1), 0);
	cr_assert_eq(itest_raw_wait_ack(fd, 4, 5000, &part, &off_b, &dup), 0);
	cr_assert_eq(dup, 0, "seq 1 of topic db was taken for a duplicate of topic da's seq 1");
	cr_assert_eq(part, 1);
	cr_assert_eq(off_b, 0);
	/* the same sequence in another partition space of db (partition 0) is new too */
	cr_assert_eq(itest_raw_send_publish(fd, 5, "db", 0, "b0", 2, 777, 1), 0);
	cr_assert_eq(itest_raw_wait_ack(fd, 5, 5000, &part, &off, &dup), 0);
	cr_assert_eq(dup, 0);
	cr_assert_eq(part, 0);
	/* a real retry of db/1 seq 1 answers the original position */
	cr_assert_eq(itest_raw_send_publish(fd, 6, "db", 1, "b1", 2, 777, 1), 0);
	cr_assert_eq(itest_raw_wait_ack(fd, 6, 5000, &part, &off, &dup), 0);
	cr_assert_eq(dup, 1);
	cr_assert_eq(part, 1);
	cr_assert_eq(off, off_b);
	/* and the next new message of db/1 lands right after it: nothing stored twice */
	cr_assert_eq(itest_raw_send_publish(fd, 7, "db", 1, "b2", 2, 777, 2), 0);
	cr_assert_eq(itest_raw_wait_ack(fd, 7, 5000, &part, &off, &dup), 0);
	cr_assert_eq(dup, 0);
	cr_assert_eq(off, off_b + 1);
	close(fd);
}

/* With inflight_max 2 the server stops reading a connection that has two
 * requests waiting for the log, and resumes as acks come: every one of 200
 * pipelined publishes is answered, in order, at consecutive offsets. */
Test(protocol, inflight_max_pauses_reading_and_loses_nothing)
{
	static const char *extra[] = {"--inflight-max", "2", NULL};
	cr_assert_eq(itest_node_stop(&node), 0);
	node.extra[0] = extra[0];
	node.extra[1] = extra[1];
	node.extra[2] = NULL;
	cr_assert_eq(itest_node_start(&node), 0);
	int fd = open_hello();
	cr_assert_eq(itest_raw_create_topic(fd, 1, "inf", 1), 0);
	for (uint64_t i = 0; i < 200; i++)
		cr_assert_eq(itest_raw_send_publish(fd, 10 + i, "inf", 0, "m", 1, 0, 0), 0);
	for (uint64_t i = 0; i < 200; i++) {
		uint64_t off = 0;
		cr_assert_eq(itest_raw_wait_ack(fd, 10 + i, 10000, NULL, &off, NULL), 0, "publish %llu",
		             (unsigned long long)i);
		cr_assert_eq(off, i);
	}
	close(fd);
}

/* A PublishBatch frame of n records "b<base+i>" (raw, as a client builds it). */
static void send_batch(int fd, uint64_t id, const char *topic, int partition, uint64_t pid, uint64_t base, uint32_t n,
		       int corrupt_crc)
{
	static uint8_t recs[1 << 16];
	size_t len = 0;
	for (uint32_t i = 0; i < n; i++) {
		char payload[32];
		snprintf(payload, sizeof(payload), "b%llu", (unsigned long long)(base + i));
		len += pubbatch_put(recs + len, slice_make(NULL, 0), slice_make(NULL, 0), slice_cstr(payload));
	}
	Sluice__Frame f = SLUICE__FRAME__INIT;
	Sluice__PublishBatch b = SLUICE__PUBLISH_BATCH__INIT;
	b.topic = (char *)topic;
	b.has_partition = partition >= 0;
	b.partition = partition >= 0 ? (uint32_t)partition : 0;
	b.producer_id = pid;
	b.base_sequence = base;
	b.count = n;
	b.records.data = recs;
	b.records.len = len;
	b.crc32c = store_crc32c(0, recs, len) ^ (corrupt_crc ? 1u : 0u);
	f.id = id;
	f.body_case = SLUICE__FRAME__BODY_PUBLISH_BATCH;
	f.publish_batch = &b;
	cr_assert_eq(itest_send_frame(fd, &f), 0);
}

static Sluice__PublishBatchAck *wait_batch_ack(int fd, uint64_t id, Sluice__Frame **r)
{
	cr_assert_eq(itest_recv_response(fd, id, 5000, r), 0, "no answer to batch %llu", (unsigned long long)id);
	cr_assert_eq((*r)->body_case, SLUICE__FRAME__BODY_PUBLISH_BATCH_ACK, "body %d (%s)", (*r)->body_case,
	             (*r)->body_case == SLUICE__FRAME__BODY_ERROR ? (*r)->error->message : "");
	return (*r)->publish_batch_ack;
}

/*
 * A PublishBatch is stored as one unit at consecutive offsets; a retry of it
 * (same producer, space and base sequence) is answered as a duplicate with
 * the original position and stores nothing; a range that overlaps a stored
 * one any other way is refused; a bad checksum is MALFORMED and closes.
 */
Test(protocol, publish_batch_stores_once_and_reads_back_in_order)
{
	int fd = open_hello();
	Sluice__Frame *r = NULL;
	cr_assert_eq(itest_raw_create_topic(fd, 1, "bt", 2), 0);
	send_batch(fd, 2, "bt", 1, 42, 1, 100, 0);
	Sluice__PublishBatchAck *a = wait_batch_ack(fd, 2, &r);
	cr_assert_eq(a->partition, 1);
	cr_assert_eq(a->base_offset, 0);
	cr_assert_eq(a->count, 100);
	cr_assert_eq(a->duplicate, 0);
	sluice__frame__free_unpacked(r, NULL);
	/* a single publish after it lands right behind the batch */
	cr_assert_eq(itest_raw_send_publish(fd, 3, "bt", 1, "single", 6, 0, 0), 0);
	uint64_t off = 0;
	cr_assert_eq(itest_raw_wait_ack(fd, 3, 5000, NULL, &off, NULL), 0);
	cr_assert_eq(off, 100);
	/* the retry: duplicate, original position */
	send_batch(fd, 4, "bt", 1, 42, 1, 100, 0);
	a = wait_batch_ack(fd, 4, &r);
	cr_assert_eq(a->duplicate, 1);
	cr_assert_eq(a->base_offset, 0);
	cr_assert_eq(a->count, 100);
	sluice__frame__free_unpacked(r, NULL);
	/* one message of the batch sent alone is a duplicate of that message */
	cr_assert_eq(itest_raw_send_publish(fd, 5, "bt", 1, "b7", 2, 42, 7), 0);
	int dup = 0;
	cr_assert_eq(itest_raw_wait_ack(fd, 5, 5000, NULL, &off, &dup), 0);
	cr_assert_eq(dup, 1);
	cr_assert_eq(off, 6);
	/* overlapping the stored range otherwise: refused, nothing stored */
	send_batch(fd, 6, "bt", 1, 42, 50, 100, 0);
	cr_assert_eq(itest_raw_wait_ack(fd, 6, 5000, NULL, NULL, NULL), SLUICE__ERROR_CODE__INVALID_ARGUMENT);
	/* the next range is new */
	send_batch(fd, 7, "bt", 1, 42, 101, 10, 0);
	a = wait_batch_ack(fd, 7, &r);
	cr_assert_eq(a->duplicate, 0);
	cr_assert_eq(a->base_offset, 101);
	sluice__frame__free_unpacked(r, NULL);
	/* read back partition 1: b1..b100, single, b101..b110 */
	Sluice__Frame f = SLUICE__FRAME__INIT;
	Sluice__Fetch fe = SLUICE__FETCH__INIT;
	fe.topic = (char *)"bt";
	fe.partition = 1;
	fe.offset = 0;
	fe.max_messages = 1000;
	f.id = 8;
	f.body_case = SLUICE__FRAME__BODY_FETCH;
	f.fetch = &fe;
	cr_assert_eq(itest_send_frame(fd, &f), 0);
	cr_assert_eq(itest_recv_response(fd, 8, 5000, &r), 0);
	cr_assert_eq(r->body_case, SLUICE__FRAME__BODY_FETCH_RESULT);
	cr_assert_eq(r->fetch_result->n_messages, 111);
	for (size_t i = 0; i < 111; i++) {
		char want[32];
		if (i < 100)
			snprintf(want, sizeof(want), "b%zu", i + 1);
		else if (i == 100)
			snprintf(want, sizeof(want), "single");
		else
			snprintf(want, sizeof(want), "b%zu", i);
		const Sluice__Message *m = r->fetch_result->messages[i];
		cr_assert_eq(m->offset, i);
		cr_assert_eq(m->payload.len, strlen(want));
		cr_assert_eq(memcmp(m->payload.data, want, strlen(want)), 0, "offset %zu", i);
	}
	sluice__frame__free_unpacked(r, NULL);
	/* a bad checksum: MALFORMED, nothing stored */
	send_batch(fd, 9, "bt", 0, 43, 1, 3, 1);
	cr_assert_eq(itest_raw_wait_ack(fd, 9, 5000, NULL, NULL, NULL), SLUICE__ERROR_CODE__MALFORMED);
	close(fd);
}

/* A connection that sends no Hello within hello_timeout_ms is closed (it
 * would hold one of connections_max for ever); one that did stays. */
Test(protocol, silent_connection_is_closed_after_hello_timeout)
{
	static const char *extra[] = {"--hello-timeout-ms", "300", NULL};
	cr_assert_eq(itest_node_stop(&node), 0);
	node.extra[0] = extra[0];
	node.extra[1] = extra[1];
	node.extra[2] = NULL;
	cr_assert_eq(itest_node_start(&node), 0);
	int silent = itest_connect(node.port);
	int talker = open_hello();
	cr_assert_geq(silent, 0);
	long long t0 = itest_now_ms();
	Sluice__Frame *r = NULL;
	cr_assert_eq(itest_recv_frame(silent, 5000, &r), SL_ECLOSED, "no Hello, yet still open");
	cr_assert_geq(itest_now_ms() - t0, 200, "closed before the timeout");
	itest_sleep_ms(400);
	expect_node_status(talker, 2);
	close(silent);
	close(talker);
}

/* ---- commit callbacks (Publish.callback; docs/webhooks.md#callbacks) ---- */

static int send_publish_cb(int fd, uint64_t id, const char *topic, uint64_t pid, uint64_t seq, const char *url,
                           const char *op_id)
{
	Sluice__Frame f = SLUICE__FRAME__INIT;
	Sluice__Publish p = SLUICE__PUBLISH__INIT;
	Sluice__Callback cb = SLUICE__CALLBACK__INIT;

	p.topic = (char *)topic;
	p.payload.data = (uint8_t *)"job";
	p.payload.len = 3;
	p.producer_id = pid;
	p.sequence = seq;
	cb.url = (char *)url;
	cb.operation_id = (char *)op_id;
	cb.created_ms = 1234;
	p.callback = &cb;
	f.id = id;
	f.body_case = SLUICE__FRAME__BODY_PUBLISH;
	f.publish = &p;
	return itest_send_frame(fd, &f);
}

struct cb_seen {
	char key[64], url[128], type[64], body[512];
	int n;
};

static void cb_fetch_fn(void *arg, const struct sluice_msg *m)
{
	struct cb_seen *s = arg;
	struct cb_seen *x = &s[s[0].n < 8 ? s[0].n : 7];

	snprintf(x->key, sizeof(x->key), "%.*s", (int)m->key.len, (const char *)m->key.base);
	snprintf(x->body, sizeof(x->body), "%.*s", (int)m->payload.len, (const char *)m->payload.base);
	for (size_t i = 0; i < m->headers_n; i++) {
		const struct sluice_header *h = &m->headers[i];
		if (!strcmp(h->key, "sluice-callback-url"))
			snprintf(x->url, sizeof(x->url), "%.*s", (int)h->value.len, (const char *)h->value.base);
		if (!strcmp(h->key, "sluice-event-type"))
			snprintf(x->type, sizeof(x->type), "%.*s", (int)h->value.len, (const char *)h->value.base);
	}
	s[0].n++;
}

/* A callback reports what the log did with its publish: committed (with the
 * position the ack gave) or failed (the topic does not exist); one without
 * a producer id or with a URL that is not http(s) is refused with the
 * publish, and nothing is stored. The outcomes are messages of the topic
 * sluice.callbacks, made by the first one (a .invalid host: delivery fails,
 * the messages stay). */
Test(protocol, publish_callback_reports_the_outcome)
{
	int fd = open_hello();
	uint32_t part = 9;
	uint64_t off = 9, end = 0;
	Sluice__Frame *r = NULL;
	struct sluice_client_opts o = {0};
	struct sluice_sync *sy = NULL;
	struct cb_seen seen[8];
	char em[256] = "";
	int rc;

	memset(seen, 0, sizeof(seen));
	cr_assert_eq(itest_raw_create_topic(fd, 1, "jobs", 1), 0);
	cr_assert_eq(send_publish_cb(fd, 2, "jobs", 0, 0, "http://cb.invalid/x", "op-0"), 0);
	cr_assert_eq(itest_recv_response(fd, 2, 5000, &r), 0);
	cr_assert_eq(r->body_case, SLUICE__FRAME__BODY_ERROR);
	cr_assert_eq((int)r->error->code, SL_EINVAL);
	cr_assert(strstr(r->error->message, "producer id"), "%s", r->error->message);
	sluice__frame__free_unpacked(r, NULL);
	cr_assert_eq(send_publish_cb(fd, 3, "jobs", 41, 1, "ftp://cb.invalid/x", "op-1"), 0);
	cr_assert_eq(itest_raw_wait_ack(fd, 3, 5000, NULL, NULL, NULL), SL_EINVAL);

	cr_assert_eq(send_publish_cb(fd, 4, "nope", 41, 1, "http://cb.invalid/gone", "op-gone"), 0);
	cr_assert_eq(itest_raw_wait_ack(fd, 4, 5000, NULL, NULL, NULL), SL_ENOTOPIC);
	cr_assert_eq(send_publish_cb(fd, 5, "jobs", 41, 1, "http://cb.invalid/ok?a=1", "op-ok"), 0);
	cr_assert_eq(itest_raw_wait_ack(fd, 5, 5000, &part, &off, NULL), 0);
	cr_assert_eq(off, 0, "the refused publishes stored nothing");

	o.servers = node.addr;
	cr_assert_eq(sluice_sync_open(&o, &sy), 0);
	for (int i = 0; i < 100 && seen[0].n < 2; i++) {
		memset(seen, 0, sizeof(seen));
		rc = itest_fetch_all(sy, "sluice.callbacks", 0, 10, cb_fetch_fn, seen, &end, em, sizeof(em));
		if (seen[0].n < 2)
			itest_sleep_ms(50);
	}
	sluice_sync_close(sy);
	cr_assert_eq(rc, 0, "fetch: %s", em);
	cr_assert_eq(seen[0].n, 2, "two outcomes, got %d", seen[0].n);
	cr_assert_str_eq(seen[0].key, "op-gone");
	cr_assert_str_eq(seen[0].type, "operation.failed");
	cr_assert_str_eq(seen[0].url, "http://cb.invalid/gone");
	cr_assert(strstr(seen[0].body, "\"status\":\"failed\""), "%s", seen[0].body);
	cr_assert(strstr(seen[0].body, "\"error\":\"topic does not exist\""), "%s", seen[0].body);
	cr_assert(strstr(seen[0].body, "\"partition\":null,\"offset\":null"), "%s", seen[0].body);
	cr_assert_str_eq(seen[1].key, "op-ok");
	cr_assert_str_eq(seen[1].type, "operation.committed");
	cr_assert_str_eq(seen[1].url, "http://cb.invalid/ok?a=1");
	cr_assert(strstr(seen[1].body, "{\"id\":\"op-ok\",\"status\":\"committed\",\"topic\":\"jobs\",\"partition\":0,"
	                               "\"offset\":0,\"error\":null,\"count\":1,\"created\":1234,"),
	          "%s", seen[1].body);
	close(fd);
}
