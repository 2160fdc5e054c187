/*
 * consumer_cluster_test.c: durable consumers on a three-node cluster across
 * a kill -9 of the leader, with the pulling member on a follower.
 *
 * A member pulls and acknowledges every message of a two-partition topic,
 * reconnecting to another node when its node or the leader goes away; the
 * leader is killed in the middle (or cut off from the others by a
 * partition, then healed). Checked: every message is delivered and
 * acknowledged, nothing acknowledged is ever delivered again, a redelivery
 * happens only for a message that was in flight (delivered, not yet
 * acknowledged) and it carries a higher attempt number, ordered mode never
 * hands out an offset while an earlier one of its partition is unacknowledged,
 * and every node reports the same consumer state at the end.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster.h"
#include "harness.h"

#define PARTS 2
#define MSGS 120 /* per partition */

static struct cluster cl;
static int dead = -1;
static int isolate; /* the fault: 0 kill -9 of the leader, 1 cut it off (blackhole) */
static uint64_t next_id = 100;

static void teardown(void)
{
	cluster_destroy(&cl);
}

TestSuite(consumer_cluster, .fini = teardown, .timeout = 240);

/* A connection with Hello done to a live node, starting the search at from. */
static int connect_any(int from, int *node_out)
{
	for (int k = 0; k < CLUSTER_N * 20; k++) {
		int i = (from + k) % CLUSTER_N;
		if (i == dead || !cl.node[i].pid)
			continue;
		int fd = itest_connect(cl.node[i].port);
		if (fd >= 0 && itest_hello(fd) == 0) {
			*node_out = i;
			return fd;
		}
		if (fd >= 0)
			close(fd);
		itest_sleep_ms(100);
	}
	cr_assert_fail("no node takes connections");
	return -1;
}

/* Send f and wait for its answer: NULL on a connection failure or timeout. */
static Sluice__Frame *call(int fd, Sluice__Frame *f, int timeout_ms)
{
	Sluice__Frame *r = NULL;
	f->id = ++next_id;
	if (itest_send_frame(fd, f) != 0 || itest_recv_response(fd, f->id, timeout_ms, &r) != 0)
		return NULL;
	return r;
}

/* Retries f (an idempotent request) on any node until it is answered
 * without UNAVAILABLE. */
static Sluice__Frame *call_retry(int *fd, int *node, Sluice__Frame *f)
{
	long long deadline = itest_now_ms() + 30000;
	while (itest_now_ms() < deadline) {
		Sluice__Frame *r = call(*fd, f, 12000);
		if (r && !(r->body_case == SLUICE__FRAME__BODY_ERROR && r->error->code == SLUICE__ERROR_CODE__UNAVAILABLE))
			return r;
		if (r)
			sluice__frame__free_unpacked(r, NULL);
		close(*fd);
		itest_sleep_ms(200);
		*fd = connect_any(*node + 1, node);
	}
	cr_assert_fail("request %d not answered in 30 s", f->body_case);
	return NULL;
}

static void create_all(int *fd, int *node, int shared)
{
	Sluice__Frame f = SLUICE__FRAME__INIT, *r;
	Sluice__CreateTopic ct = SLUICE__CREATE_TOPIC__INIT;
	Sluice__TopicConfig tc = SLUICE__TOPIC_CONFIG__INIT;
	tc.partitions = PARTS;
	ct.name = "ev";
	ct.config = &tc;
	f.body_case = SLUICE__FRAME__BODY_CREATE_TOPIC;
	f.create_topic = &ct;
	r = call_retry(fd, node, &f);
	cr_assert(r->body_case == SLUICE__FRAME__BODY_OK ||
	          (r->body_case == SLUICE__FRAME__BODY_ERROR && r->error->code == SLUICE__ERROR_CODE__TOPIC_EXISTS));
	sluice__frame__free_unpacked(r, NULL);
	for (int p = 0; p < PARTS; p++)
		for (int i = 0; i < MSGS; i++) {
			char pl[32];
			Sluice__Frame pf = SLUICE__FRAME__INIT;
			Sluice__Publish pm = SLUICE__PUBLISH__INIT;
			snprintf(pl, sizeof(pl), "m%d-%d", p, i);
			pm.topic = "ev";
			pm.has_partition = 1;
			pm.partition = (uint32_t)p;
			pm.payload.data = (uint8_t *)pl;
			pm.payload.len = strlen(pl);
			pm.producer_id = 77;
			pm.sequence = (uint64_t)(p * MSGS + i + 1);
			pf.body_case = SLUICE__FRAME__BODY_PUBLISH;
			pf.publish = &pm;
			r = call_retry(fd, node, &pf);
			cr_assert_eq(r->body_case, SLUICE__FRAME__BODY_PUBLISH_ACK);
			cr_assert_eq(r->publish_ack->offset, (uint64_t)i);
			sluice__frame__free_unpacked(r, NULL);
		}
	Sluice__CreateConsumer cm = SLUICE__CREATE_CONSUMER__INIT;
	Sluice__ConsumerConfig cc = SLUICE__CONSUMER_CONFIG__INIT;
	cc.topic = "ev";
	cc.shared = shared;
	cc.max_in_flight = 8;
	cc.ack_timeout_ms = 1500;
	cm.name = "c";
	cm.config = &cc;
	f.body_case = SLUICE__FRAME__BODY_CREATE_CONSUMER;
	f.create_consumer = &cm;
	r = call_retry(fd, node, &f);
	cr_assert(r->body_case == SLUICE__FRAME__BODY_OK ||
	          (r->body_case == SLUICE__FRAME__BODY_ERROR && r->error->code == SLUICE__ERROR_CODE__CONSUMER_EXISTS));
	sluice__frame__free_unpacked(r, NULL);
}

struct seen {
	uint32_t deliveries[PARTS][MSGS];
	uint32_t last_attempt[PARTS][MSGS];
	int acked[PARTS][MSGS];
	size_t acked_n;
	size_t redeliveries;
	size_t dropped; /* delivered, never acknowledged by the member that took them */
};

static void on_message(struct seen *s, const Sluice__PulledMessage *pm, int ordered)
{
	const Sluice__Message *m = pm->message;
	char want[32];
	cr_assert_lt(m->partition, PARTS);
	cr_assert_lt(m->offset, MSGS);
	snprintf(want, sizeof(want), "m%u-%llu", m->partition, (unsigned long long)m->offset);
	cr_assert_eq(m->payload.len, strlen(want));
	cr_assert_eq(memcmp(m->payload.data, want, m->payload.len), 0, "payload of %s", want);
	cr_assert_eq(s->acked[m->partition][m->offset], 0, "%s was acknowledged and came again", want);
	if (s->deliveries[m->partition][m->offset]) {
		cr_assert_gt(pm->attempt, s->last_attempt[m->partition][m->offset], "a redelivery has a higher attempt");
		s->redeliveries++;
	}
	if (ordered)
		for (uint64_t o = 0; o < m->offset; o++)
			cr_assert(s->acked[m->partition][o], "ordered: %s handed out before %u/%llu was acknowledged", want,
			          m->partition, (unsigned long long)o);
	s->deliveries[m->partition][m->offset]++;
	s->last_attempt[m->partition][m->offset] = pm->attempt;
}

/* Pull and ack until every message is acknowledged; kill the leader once
 * `kill_at` are acknowledged. */
static void consume(int *fd, int *node, struct seen *s, int ordered, size_t kill_at)
{
	long long deadline = itest_now_ms() + 120000;
	while (s->acked_n < PARTS * MSGS) {
		cr_assert_lt(itest_now_ms(), deadline, "only %zu of %d acknowledged", s->acked_n, PARTS * MSGS);
		Sluice__Frame f = SLUICE__FRAME__INIT, *r;
		Sluice__Pull pm = SLUICE__PULL__INIT;
		pm.consumer = "c";
		pm.max_messages = 10;
		pm.wait_ms = 1000;
		f.body_case = SLUICE__FRAME__BODY_PULL;
		f.pull = &pm;
		r = call_retry(fd, node, &f);
		if (dead < 0 && s->acked_n >= kill_at) {
			/* the member drops what it holds (it crashed), then the leader dies:
			 * what was in flight must come back after its ack timeout */
			cr_assert_eq(r->body_case, SLUICE__FRAME__BODY_PULL_RESULT);
			for (size_t i = 0; i < r->pull_result->n_messages; i++)
				on_message(s, r->pull_result->messages[i], ordered);
			s->dropped = r->pull_result->n_messages;
			sluice__frame__free_unpacked(r, NULL);
			int l = cluster_wait_leader(&cl, -1, 10000, NULL);
			cr_assert_geq(l, 0);
			cr_log_info("%s the leader, node %d, after %zu acks, %zu messages in flight",
			            isolate ? "cutting off" : "kill -9 of", l + 1, s->acked_n, s->dropped);
			if (isolate)
				cluster_isolate(&cl, l, FP_BLACKHOLE);
			else
				cluster_kill9(&cl, l);
			dead = l;
			continue;
		}
		cr_assert_eq(r->body_case, SLUICE__FRAME__BODY_PULL_RESULT, "pull: %s",
		             r->body_case == SLUICE__FRAME__BODY_ERROR ? r->error->message : "");
		size_t n = r->pull_result->n_messages;
		Sluice__AckItem *its = calloc(n ? n : 1, sizeof(*its));
		Sluice__AckItem **ips = calloc(n ? n : 1, sizeof(*ips));
		for (size_t i = 0; i < n; i++) {
			on_message(s, r->pull_result->messages[i], ordered);
			sluice__ack_item__init(&its[i]);
			its[i].partition = r->pull_result->messages[i]->message->partition;
			its[i].offset = r->pull_result->messages[i]->message->offset;
			ips[i] = &its[i];
		}
		if (n) {
			Sluice__Frame af = SLUICE__FRAME__INIT, *ar;
			Sluice__AckMessages am = SLUICE__ACK_MESSAGES__INIT;
			am.consumer = "c";
			am.n_items = n;
			am.items = ips;
			af.body_case = SLUICE__FRAME__BODY_ACK_MESSAGES;
			af.ack_messages = &am;
			ar = call_retry(fd, node, &af);
			cr_assert_eq(ar->body_case, SLUICE__FRAME__BODY_OK);
			sluice__frame__free_unpacked(ar, NULL);
			for (size_t i = 0; i < n; i++)
				if (!s->acked[its[i].partition][its[i].offset]) {
					s->acked[its[i].partition][its[i].offset] = 1;
					s->acked_n++;
				}
		}
		free(its);
		free(ips);
		sluice__frame__free_unpacked(r, NULL);
	}
}

/* Every live node describes the same state: all acknowledged. */
static void check_state_everywhere(void)
{
	for (int i = 0; i < CLUSTER_N; i++) {
		if (i == dead)
			continue;
		long long deadline = itest_now_ms() + 15000;
		for (;;) {
			int fd = itest_connect(cl.node[i].port), ok = 0;
			cr_assert_geq(fd, 0);
			cr_assert_eq(itest_hello(fd), 0);
			Sluice__Frame f = SLUICE__FRAME__INIT, *r;
			Sluice__DescribeConsumer dm = SLUICE__DESCRIBE_CONSUMER__INIT;
			dm.name = "c";
			f.body_case = SLUICE__FRAME__BODY_DESCRIBE_CONSUMER;
			f.describe_consumer = &dm;
			r = call(fd, &f, 5000);
			close(fd);
			cr_assert_not_null(r);
			cr_assert_eq(r->body_case, SLUICE__FRAME__BODY_CONSUMER_INFO);
			cr_assert_eq(r->consumer_info->n_partitions, PARTS);
			ok = 1;
			for (int p = 0; p < PARTS; p++)
				ok &= r->consumer_info->partitions[p]->ack_floor == MSGS &&
				      r->consumer_info->partitions[p]->in_flight == 0;
			sluice__frame__free_unpacked(r, NULL);
			if (ok)
				break;
			cr_assert_lt(itest_now_ms(), deadline, "node %d does not show every message acknowledged", i + 1);
			itest_sleep_ms(200);
		}
	}
}

static void run(int shared)
{
	struct seen *s = calloc(1, sizeof(*s));
	int node, fd, l;
	cr_assert_eq(cluster_init(&cl, 1), 0);
	cr_assert_eq(cluster_start_all(&cl), 0);
	l = cluster_wait_leader(&cl, -1, 15000, NULL);
	cr_assert_geq(l, 0);
	fd = connect_any((l + 1) % CLUSTER_N, &node); /* a follower */
	create_all(&fd, &node, shared);
	consume(&fd, &node, s, !shared, PARTS * MSGS / 3);
	cr_log_info("%zu redeliveries after the fault", s->redeliveries);
	cr_assert_gt(s->dropped, 0);
	cr_assert_geq(s->redeliveries, s->dropped, "what was in flight at the kill came back");
	cr_assert_leq(s->redeliveries, s->dropped + 8 * PARTS, "more redeliveries than could be in flight");
	for (int p = 0; p < PARTS; p++)
		for (int i = 0; i < MSGS; i++)
			cr_assert(s->acked[p][i], "%d/%d never acknowledged", p, i);
	close(fd);
	if (isolate) {
		cluster_heal(&cl);
		dead = -1; /* the node that was cut off catches up too */
	}
	check_state_everywhere();
	free(s);
}

Test(consumer_cluster, ordered_member_on_a_follower_across_leader_kill)
{
	run(0);
}

Test(consumer_cluster, shared_member_across_leader_kill)
{
	run(1);
}

Test(consumer_cluster, shared_member_across_leader_cut_off)
{
	isolate = 1;
	run(1);
}
