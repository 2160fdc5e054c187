/*
 * kill_test.c: no acknowledged message is lost or duplicated when any
 * process of a node dies by kill -9. Two publisher processes (libsluice async
 * API) publish numbered payloads "p<producer>-<seq>" to a 3-partition topic
 * and log every ack (partition, offset, payload) to a file. Meanwhile the
 * test kills the logwriter, a frontend and the master, several times each,
 * restarting the master like systemd would. Afterwards every partition is
 * read from offset 0: offsets are contiguous, every acked (partition,
 * offset) holds exactly the acked payload, and no payload is stored twice
 * (libsluice re-sends with the same producer id and sequence).
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "sluice/sluice.h"

#define TOPIC "dur"
#define PARTS 3
#define PRODUCERS 2
#define WINDOW 32
#define PAYLOAD_MAX 24

static struct itest_node node;
static pid_t pubs[PRODUCERS];
static int stop_fds[PRODUCERS] = {-1, -1};

static void teardown(void)
{
	for (int i = 0; i < PRODUCERS; i++) {
		if (pubs[i] > 0) {
			int st;
			kill(pubs[i], SIGKILL);
			waitpid(pubs[i], &st, 0);
			pubs[i] = 0;
		}
		if (stop_fds[i] >= 0)
			close(stop_fds[i]);
		stop_fds[i] = -1;
	}
	itest_node_destroy(&node);
}

TestSuite(kill, .fini = teardown, .timeout = 240);

/* ---- publisher process ---- */

struct pub {
	int k;
	struct event_base *base;
	struct sluice_client *cli;
	FILE *acks;
	uint64_t seq;
	size_t inflight;
	int stopping;
	unsigned long errors;
};

struct pub_req {
	struct pub *p;
	char payload[PAYLOAD_MAX];
};

static void pub_next(struct pub *p);

static void pub_ack_cb(void *arg, int err, const char *errmsg, uint32_t partition, uint64_t offset, int64_t ts, int dup)
{
	struct pub_req *r = arg;
	struct pub *p = r->p;

	(void)ts;
	(void)dup;
	p->inflight--;
	if (err) {
		p->errors++;
		fprintf(p->acks, "E %d %s %s\n", err, r->payload, errmsg ? errmsg : "");
	} else {
		fprintf(p->acks, "%u %llu %s\n", partition, (unsigned long long)offset, r->payload);
	}
	fflush(p->acks);
	free(r);
	if (!p->stopping)
		pub_next(p);
	else if (p->inflight == 0)
		event_base_loopbreak(p->base);
}

static void pub_next(struct pub *p)
{
	struct pub_req *r = malloc(sizeof(*r));
	struct sluice_pub m = {0};
	char key[16];

	if (!r)
		_exit(3);
	r->p = p;
	snprintf(r->payload, sizeof(r->payload), "p%d-%llu", p->k, (unsigned long long)p->seq);
	snprintf(key, sizeof(key), "k%llu", (unsigned long long)(p->seq % 32));
	p->seq++;
	m.topic = TOPIC;
	m.key = sluice_bytes_cstr(key);
	m.payload = sluice_bytes_cstr(r->payload);
	if (sluice_publish(p->cli, &m, pub_ack_cb, r) != 0) {
		fprintf(p->acks, "E publish-call %s\n", r->payload);
		free(r);
		return;
	}
	p->inflight++;
}

static void pub_stop_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pub *p = arg;

	(void)fd;
	(void)what;
	p->stopping = 1;
	if (p->inflight == 0)
		event_base_loopbreak(p->base);
}

static void pub_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	event_base_loopbreak(arg);
}

static void publisher_main(int k, int stop_fd, const char *ack_path)
{
	struct sluice_client_opts o = {0};
	struct pub p = {0};
	struct event *stop_ev, *deadline_ev;
	struct timeval hard = {200, 0};

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	p.k = k;
	p.acks = fopen(ack_path, "w");
	p.base = event_base_new();
	o.servers = node.addr;
	o.client_name = "itest-kill";
	o.request_timeout_ms = 5000;
	o.retry_max_ms = 60000;
	if (!p.acks || !p.base || sluice_client_new(p.base, &o, &p.cli) != 0)
		_exit(2);
	stop_ev = event_new(p.base, stop_fd, EV_READ, pub_stop_cb, &p);
	deadline_ev = evtimer_new(p.base, pub_deadline_cb, p.base);
	event_add(stop_ev, NULL);
	evtimer_add(deadline_ev, &hard);
	for (int i = 0; i < WINDOW; i++)
		pub_next(&p);
	event_base_dispatch(p.base);
	p.stopping = 1;
	fprintf(stderr, "publisher %d: seq %llu, %lu errors, %zu unacked\n", k, (unsigned long long)p.seq, p.errors,
	        p.inflight);
	event_free(stop_ev);
	event_free(deadline_ev);
	sluice_client_free(p.cli);
	fclose(p.acks);
	_exit(0);
}

static void ack_path(int k, char *buf, size_t len)
{
	snprintf(buf, len, "%s/acks-%d.txt", node.dir, k);
}

static void start_publishers(void)
{
	for (int k = 0; k < PRODUCERS; k++) {
		int pfd[2];
		char path[256];
		/* CLOEXEC: sluiced, forked later, must not hold our pipes. */
		cr_assert_eq(pipe2(pfd, O_CLOEXEC), 0);
		ack_path(k, path, sizeof(path));
		pubs[k] = fork();
		cr_assert_geq(pubs[k], 0);
		if (pubs[k] == 0) {
			close(pfd[1]);
			publisher_main(k, pfd[0], path);
		}
		close(pfd[0]);
		stop_fds[k] = pfd[1];
	}
}

/* Tell publishers to stop, let them drain, reap them (bounded). */
static void stop_publishers(void)
{
	/* A byte, not EOF: the other publisher inherited our write ends. */
	for (int k = 0; k < PRODUCERS; k++)
		cr_assert_eq(write(stop_fds[k], "s", 1), 1);
	for (int k = 0; k < PRODUCERS; k++) {
		long long deadline = itest_now_ms() + 60000;
		int st = 0;
		while (waitpid(pubs[k], &st, WNOHANG) == 0) {
			cr_assert_lt(itest_now_ms(), deadline, "publisher %d did not finish its in-flight publishes",
			             k);
			itest_sleep_ms(20);
		}
		pubs[k] = 0;
		cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "publisher %d status 0x%x", k, st);
	}
}

/* ---- acks and progress ---- */

static size_t count_acks(void)
{
	size_t n = 0;

	for (int k = 0; k < PRODUCERS; k++) {
		char path[256], line[256];
		FILE *f;
		ack_path(k, path, sizeof(path));
		f = fopen(path, "r");
		if (!f)
			continue;
		while (fgets(line, sizeof(line), f))
			if (line[0] != 'E')
				n++;
		fclose(f);
	}
	return n;
}

/* The node took new publishes after a fault: acks grow by `more` in time. */
static void expect_progress(size_t more, const char *after)
{
	size_t base_n = count_acks();
	long long deadline = itest_now_ms() + 30000;

	while (count_acks() < base_n + more) {
		if (itest_now_ms() >= deadline) {
			itest_node_dump_log(&node);
			cr_assert_fail("no publish progress after %s (%zu acks)", after, count_acks());
		}
		itest_sleep_ms(50);
	}
}

/* Wait until the master has a live child named comm other than old. */
static pid_t wait_replaced(const char *comm, pid_t old)
{
	long long deadline = itest_now_ms() + 10000;
	pid_t now;

	while ((now = itest_child_by_comm(node.pid, comm)) == 0 || now == old) {
		cr_assert_lt(itest_now_ms(), deadline, "master did not restart %s (old pid %d)", comm, (int)old);
		itest_sleep_ms(5);
	}
	return now;
}

/* kill -9 a child; with twice, also kill its replacement as soon as it
 * appears (a crash during recovery). Checks the restart, the NodeStatus
 * counter and that publishes flow again. */
static void kill_child(const char *comm, int twice)
{
	pid_t old = itest_child_by_comm(node.pid, comm), now;
	uint32_t lw0, fe0, lw1, fe1, topics;
	int is_lw = strcmp(comm, "sluice-logwriter") == 0;
	uint32_t kills = twice ? 2 : 1;

	cr_assert_gt(old, 0, "no child named %s under master %d", comm, (int)node.pid);
	cr_assert_eq(itest_node_status_get(node.port, &lw0, &fe0, &topics), 0);
	cr_assert_eq(kill(old, SIGKILL), 0);
	now = wait_replaced(comm, old);
	if (twice) {
		cr_assert_eq(kill(now, SIGKILL), 0);
		now = wait_replaced(comm, now);
	}
	cr_assert_eq(itest_node_wait_ready(&node, ITEST_READY_MS), 0, "node not serving after %s restart", comm);
	expect_progress(100, comm);
	cr_assert_eq(itest_child_by_comm(node.pid, comm), now, "%s restarted again without being killed", comm);
	cr_assert_eq(itest_node_status_get(node.port, &lw1, &fe1, &topics), 0);
	cr_assert_eq(topics, 1);
	if (is_lw)
		cr_assert_eq(lw1, lw0 + kills, "NodeStatus.logwriter_restarts %u -> %u after %u logwriter kills", lw0,
		             lw1, kills);
	else
		cr_assert_eq(fe1, fe0 + kills, "NodeStatus.frontend_restarts %u -> %u after %u frontend kills", fe0,
		             fe1, kills);
}

static void kill_master(void)
{
	cr_assert_eq(itest_node_kill9(&node), 0, "children must die with the master (PR_SET_PDEATHSIG)");
	itest_sleep_ms(300); /* clients see the outage and retry */
	cr_assert_eq(itest_node_start(&node), 0, "sluiced did not restart on the same data dir and port");
	expect_progress(100, "master restart");
}

/* ---- verification ---- */

struct part_log {
	char (*payload)[PAYLOAD_MAX];
	size_t n, cap;
	uint32_t part;
	int gap;
	uint64_t bad_offset;
};

static void log_fn(void *arg, const struct sluice_msg *m)
{
	struct part_log *l = arg;

	if (m->offset != l->n || m->payload.len >= PAYLOAD_MAX) {
		if (!l->gap)
			l->bad_offset = m->offset;
		l->gap = 1;
		return;
	}
	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 4096;
		void *np = realloc(l->payload, nc * PAYLOAD_MAX);
		if (!np) {
			l->gap = 1;
			return;
		}
		l->payload = np;
		l->cap = nc;
	}
	memcpy(l->payload[l->n], m->payload.base, m->payload.len);
	l->payload[l->n][m->payload.len] = '\0';
	l->n++;
}

static void read_partition(struct sluice_sync *sy, struct part_log *l)
{
	uint64_t end = 0;

	for (int guard = 0; guard < 100000; guard++) {
		size_t before = l->n;
		char em[256] = "";
		int rc = sluice_sync_fetch(sy, TOPIC, l->part, l->n, 1000, 0, log_fn, l, &end, em, sizeof(em));
		cr_assert_eq(rc, 0, "fetch %u@%zu: %d %s", l->part, l->n, rc, em);
		cr_assert_eq(l->gap, 0, "partition %u: offset %llu where %zu was expected (gap or reorder)", l->part,
		             (unsigned long long)l->bad_offset, l->n);
		if (l->n >= end || l->n == before)
			break;
	}
	cr_assert_eq(l->n, (size_t)end, "partition %u: read %zu messages but end offset is %llu", l->part, l->n,
	             (unsigned long long)end);
}

static void check_acks(struct part_log *logs, size_t *acked)
{
	*acked = 0;
	for (int k = 0; k < PRODUCERS; k++) {
		char path[256], line[256], payload[PAYLOAD_MAX + 8];
		unsigned part;
		unsigned long long off;
		FILE *f;
		ack_path(k, path, sizeof(path));
		f = fopen(path, "r");
		cr_assert_not_null(f);
		while (fgets(line, sizeof(line), f)) {
			if (line[0] == 'E')
				continue;
			cr_assert_eq(sscanf(line, "%u %llu %31s", &part, &off, payload), 3, "ack line %s", line);
			cr_assert_lt(part, PARTS);
			cr_assert_lt(off, logs[part].n, "acked %s at %u/%llu is missing (partition ends at %zu)",
			             payload, part, off, logs[part].n);
			cr_assert_str_eq(logs[part].payload[off], payload, "acked %s at %u/%llu but stored %s", payload,
			                 part, off, logs[part].payload[off]);
			(*acked)++;
		}
		fclose(f);
	}
}

static int cmp_payload(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void check_unique(struct part_log *logs)
{
	size_t total = 0, at = 0;
	char(*all)[PAYLOAD_MAX];

	for (int p = 0; p < PARTS; p++)
		total += logs[p].n;
	all = malloc((total ? total : 1) * PAYLOAD_MAX);
	cr_assert_not_null(all);
	for (int p = 0; p < PARTS; p++) {
		memcpy(all + at, logs[p].payload, logs[p].n * PAYLOAD_MAX);
		at += logs[p].n;
	}
	qsort(all, total, PAYLOAD_MAX, cmp_payload);
	for (size_t i = 0; i < total; i++) {
		int k = -1;
		unsigned long long seq;
		cr_assert_eq(sscanf(all[i], "p%d-%llu", &k, &seq), 2, "foreign payload %s", all[i]);
		if (i > 0)
			cr_assert_str_neq(all[i], all[i - 1], "payload %s is stored twice", all[i]);
	}
	free(all);
}

/* Start a node with the topic and the publishers running. */
static void start_under_load(void)
{
	struct sluice_client_opts o = {0};
	struct sluice_sync *sy = NULL;
	char em[256] = "";

	cr_assert_eq(itest_node_init(&node), 0);
	cr_assert_eq(itest_node_start(&node), 0, "sluiced did not become ready");
	o.servers = node.addr;
	cr_assert_eq(sluice_sync_open(&o, &sy), 0);
	cr_assert_eq(sluice_sync_topic_create(sy, TOPIC, PARTS, 0, 0, em, sizeof(em)), 0, "%s", em);
	sluice_sync_close(sy);
	start_publishers();
	expect_progress(200, "start");
}

/* Stop the publishers, read the whole topic back and check every ack. */
static void verify_log(void)
{
	struct part_log logs[PARTS];
	struct sluice_client_opts o = {0};
	struct sluice_sync *sy = NULL;
	size_t acked = 0, stored = 0;

	stop_publishers();
	o.servers = node.addr;
	cr_assert_eq(sluice_sync_open(&o, &sy), 0);
	memset(logs, 0, sizeof(logs));
	for (int p = 0; p < PARTS; p++) {
		logs[p].part = (uint32_t)p;
		read_partition(sy, &logs[p]);
		stored += logs[p].n;
	}
	sluice_sync_close(sy);
	check_acks(logs, &acked);
	check_unique(logs);
	cr_log_info("%zu acked, %zu stored", acked, stored);
	cr_assert_geq(acked, 600u, "too few acks to mean anything");
	cr_assert_geq(stored, acked);
	for (int p = 0; p < PARTS; p++)
		free(logs[p].payload);
	cr_assert_eq(itest_node_stop(&node), 0, "clean SIGTERM stop after the faults");
}

Test(kill, no_acked_message_lost_or_duplicated)
{
	start_under_load();
	for (int round = 0; round < 3; round++) {
		char fe[32];
		pid_t lw_before = itest_child_by_comm(node.pid, "sluice-logwriter");
		kill_child("sluice-logwriter", round == 1);
		cr_assert_neq(itest_child_by_comm(node.pid, "sluice-logwriter"), lw_before);
		itest_sleep_ms(1000);
		snprintf(fe, sizeof(fe), "sluice-fe-%d", round % 2);
		kill_child(fe, round == 2);
		itest_sleep_ms(1000);
		kill_master();
		itest_sleep_ms(1000);
	}
	verify_log();
}

/* SIGTERM under load: the master drains (exit 0 in time), a restart takes
 * over, and the same invariants hold. */
Test(kill, sigterm_under_load_drains)
{
	start_under_load();
	for (int round = 0; round < 2; round++) {
		cr_assert_eq(itest_node_stop(&node), 0, "SIGTERM under load: no clean exit 0 within %d ms",
		             ITEST_STOP_MS);
		cr_assert_eq(itest_node_start(&node), 0, "restart after SIGTERM");
		expect_progress(100, "SIGTERM restart");
		itest_sleep_ms(1000);
	}
	verify_log();
}
