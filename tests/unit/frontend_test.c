/*
 * frontend_test.c: the frontend process in isolation. The test plays the
 * master and the logwriter: it creates the shm segment, writes the LMDB store
 * itself (topic + records) and fills the commit table, forks frontend_main on
 * a listener, reads publish records from the pub ring and answers on the ack
 * ring. A client socket speaks the native protocol to the frontend. For
 * cluster requests it also writes the shm cluster block as the logwriter does.
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "codec.h"
#include "config.h"
#include "err.h"
#include "frontend.h"
#include "ring.h"
#include "ringmsg.h"
#include "shm.h"
#include "store.h"

static struct config cfg;
static struct shm shm;
static pid_t fe_pid;
static int fe_efd, lw_efd, port;
static char dir[] = "/tmp/sluice-fe-test-XXXXXX";
static struct store_topic topic;

/* Write topic "t" (2 partitions) with 5 records in partition 0, as a logwriter would. */
static void seed_store(void)
{
	struct store_opts o = {.dir = dir, .map_bytes = 64 << 20, .sync = 0, .slots_max = 64};
	struct store *s;
	struct store_txn *t;
	struct store_topic in;
	struct store_record recs[5];
	uint8_t hdr[64];
	uint64_t base;
	size_t hl;
	int i;

	cr_assert_eq(store_open(&s, &o), SL_OK);
	cr_assert_eq(store_txn_begin(s, 1, &t), SL_OK);
	memset(&in, 0, sizeof(in));
	strcpy(in.name, "t");
	in.partitions = 2;
	cr_assert_eq(store_topic_create(t, &in, &topic), SL_OK);
	hl = hdrs_put(hdr, slice_cstr("h"), slice_cstr("v"));
	memset(recs, 0, sizeof(recs));
	for (i = 0; i < 5; i++) {
		static char pl[5][8];
		snprintf(pl[i], sizeof(pl[i]), "m%d", i);
		recs[i].payload = slice_cstr(pl[i]);
		recs[i].headers = slice_make(hdr, hl);
	}
	cr_assert_eq(store_batch_append(t, topic.topic_id, 0, recs, 5, 1000, 1, &base), SL_OK);
	cr_assert_eq(base, 0);
	cr_assert_eq(store_txn_commit(t), SL_OK);
	store_close(s);
	/* commit table: partition 0 committed up to 4 (record 4 not yet committed), partition 1 empty */
	shm.slots[topic.slot_base].topic_id = topic.topic_id;
	shm.slots[topic.slot_base].end_offset = 4;
	shm.slots[topic.slot_base + 1].topic_id = topic.topic_id;
	shm.slots[topic.slot_base + 1].end_offset = 0;
	shm.hdr->commit_seq++;
}

static void setup(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sa);
	int shm_fd, lfd;

	cr_assert_not_null(mkdtemp(dir));
	config_defaults(&cfg);
	snprintf(cfg.data_dir, sizeof(cfg.data_dir), "%s", dir);
	cfg.frame_bytes_max = 4096;
	cfg.partitions_max = 64;
	cfg.subscriptions_max = 2;
	cr_assert_eq(shm_create(&shm, &shm_fd, 7, 1, 64, 4096), SL_OK);
	shm_frontend(&shm, 0)->generation = 3;
	seed_store();
	shm.hdr->logwriter_ready = 1;
	fe_efd = eventfd(0, EFD_NONBLOCK);
	lw_efd = eventfd(0, EFD_NONBLOCK);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	cr_assert(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(lfd, 16) == 0);
	getsockname(lfd, (struct sockaddr *)&sa, &sl);
	port = ntohs(sa.sin_port);
	/* the HTTP listener every frontend also serves (any free port) */
	struct sockaddr_in ha = sa;
	ha.sin_port = 0;
	int hfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	cr_assert(bind(hfd, (struct sockaddr *)&ha, sizeof(ha)) == 0 && listen(hfd, 16) == 0);
	fe_pid = fork();
	if (fe_pid == 0) {
		struct frontend_args a = {&cfg, &shm, 0, lfd, hfd, fe_efd, lw_efd};
		_exit(frontend_main(&a));
	}
	close(lfd);
	close(hfd);
}

static void teardown(void)
{
	int st = 0;
	char cmd[256];

	if (fe_pid > 0) {
		kill(fe_pid, SIGTERM);
		waitpid(fe_pid, &st, 0);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_expect_eq(system(cmd), 0);
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "frontend exits 0 on SIGTERM");
}

TestSuite(frontend, .init = setup, .fini = teardown, .timeout = 30);

/* ---------- client helpers ---------- */

static int dial(void)
{
	struct sockaddr_in sa = {
	    .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct timeval tv = {5, 0};
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	cr_assert(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

static void send_raw(int fd, const void *p, size_t n)
{
	cr_assert_eq(write(fd, p, n), (ssize_t)n);
}

static void send_frame(int fd, Sluice__Frame *f)
{
	uint8_t buf[8192];
	size_t n = codec_frame_size(f);

	cr_assert(n <= sizeof(buf));
	send_raw(fd, buf, codec_frame_encode(f, buf));
}

static int read_full(int fd, uint8_t *p, size_t n)
{
	while (n) {
		ssize_t r = read(fd, p, n);
		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/* Next frame, or NULL on EOF. */
static Sluice__Frame *recv_frame(int fd)
{
	uint8_t hdr[4], *body;
	uint32_t n;
	Sluice__Frame *f = NULL;

	if (read_full(fd, hdr, 4) != 0)
		return NULL;
	n = be_get32(hdr);
	body = malloc(n ? n : 1);
	cr_assert_eq(read_full(fd, body, n), 0);
	cr_assert_eq(codec_frame_decode(body, n, &f), SL_OK);
	free(body);
	return f;
}

static void expect_error(int fd, uint64_t id, Sluice__ErrorCode code)
{
	Sluice__Frame *f = recv_frame(fd);

	cr_assert_not_null(f);
	cr_assert_eq(f->body_case, SLUICE__FRAME__BODY_ERROR, "body %d", f->body_case);
	cr_expect_eq(f->id, id);
	cr_expect_eq(f->error->code, code, "code %d, want %d (%s)", f->error->code, code, f->error->message);
	codec_frame_free(f);
}

static void expect_eof(int fd)
{
	cr_expect_null(recv_frame(fd), "connection closed after a fatal error");
}

static int hello(void)
{
	int fd = dial();
	Sluice__Hello h = SLUICE__HELLO__INIT;
	Sluice__Frame f = SLUICE__FRAME__INIT, *r;

	h.min_version = 1;
	h.max_version = 1;
	f.id = 1;
	f.body_case = SLUICE__FRAME__BODY_HELLO;
	f.hello = &h;
	send_frame(fd, &f);
	r = recv_frame(fd);
	cr_assert_not_null(r);
	cr_assert_eq(r->body_case, SLUICE__FRAME__BODY_HELLO_OK);
	cr_expect_eq(r->hello_ok->version, 1);
	cr_expect_eq(r->hello_ok->node_id, 7);
	cr_expect_eq(r->hello_ok->frame_bytes_max, 4096);
	codec_frame_free(r);
	return fd;
}

static void publish(int fd, uint64_t id, const char *topic_name, const char *payload)
{
	Sluice__Publish p = SLUICE__PUBLISH__INIT;
	Sluice__Header h = SLUICE__HEADER__INIT, *hp = &h;
	Sluice__Frame f = SLUICE__FRAME__INIT;

	p.topic = (char *)topic_name;
	p.payload.data = (uint8_t *)payload;
	p.payload.len = strlen(payload);
	p.producer_id = 9;
	p.sequence = id;
	h.key = (char *)"hk";
	h.value.data = (uint8_t *)"hv";
	h.value.len = 2;
	p.n_headers = 1;
	p.headers = &hp;
	f.id = id;
	f.body_case = SLUICE__FRAME__BODY_PUBLISH;
	f.publish = &p;
	send_frame(fd, &f);
}

/* Play the logwriter: wait for one publish record in the pub ring. */
static uint64_t lw_take_publish(const char *want_payload)
{
	struct ring *r = shm_pub_ring(&shm, 0);
	struct pollfd pfd = {lw_efd, POLLIN, 0};
	struct rm_publish h;
	const uint8_t *p;
	uint32_t len;
	uint16_t type;
	uint64_t pos, v;
	int i;

	for (i = 0; i < 500; i++) {
		pos = ring_tail(r);
		if (ring_peek(r, &pos, &type, &p, &len))
			break;
		poll(&pfd, 1, 10);
		if (read(lw_efd, &v, sizeof(v)) < 0) {
			/* not woken yet */
		}
	}
	cr_assert(i < 500, "a publish record reached the ring");
	cr_assert_eq(type, RM_PUBLISH);
	memcpy(&h, p, sizeof(h));
	cr_expect_eq(h.cookie >> 48, 3, "cookie carries generation 3");
	cr_expect_eq(h.partition, RM_PARTITION_ANY);
	cr_expect_eq(h.producer_id, 9);
	cr_expect_eq(h.topic_len, 1);
	cr_expect_eq(memcmp(p + sizeof(h), "t", 1), 0);
	cr_expect_eq(h.key_len, 0);
	cr_expect_eq(h.headers_len, hdrs_entry_bytes(2, 2));
	cr_expect_eq(h.payload_len, strlen(want_payload));
	cr_expect_eq(memcmp(p + sizeof(h) + 1 + h.headers_len, want_payload, h.payload_len), 0);
	cr_expect_eq(len, sizeof(h) + 1 + h.headers_len + h.payload_len);
	ring_release(r, pos);
	return h.cookie;
}

static void lw_ack(uint64_t cookie, uint32_t err, uint64_t offset, uint32_t flags)
{
	struct rm_ack a;
	uint64_t one = 1;
	int wake = 0, i;

	memset(&a, 0, sizeof(a));
	a.cookie = cookie;
	a.err = err;
	a.offset = offset;
	a.partition = 1;
	a.timestamp_ms = 1234;
	a.flags = flags;
	a.term = 2;
	a.log_index = 1000 + offset;
	for (i = 0; ring_push(shm_ack_ring(&shm, 0), RM_ACK, &a, sizeof(a), &wake) != 0; i++) {
		/* ack ring full: wake the frontend and wait for it to drain (as the logwriter does) */
		cr_assert(i < 2000, "the frontend drains its ack ring");
		cr_assert_eq(write(fe_efd, &one, sizeof(one)), 8);
		usleep(1000);
	}
	cr_assert_eq(write(fe_efd, &one, sizeof(one)), 8);
}

/* ---------- tests ---------- */

Test(frontend, handshake_errors_close_the_connection)
{
	Sluice__Frame f = SLUICE__FRAME__INIT;
	Sluice__Hello h = SLUICE__HELLO__INIT;
	Sluice__ListTopics lt = SLUICE__LIST_TOPICS__INIT;
	uint8_t big[4] = {0, 0, 0x20, 0}; /* 8192 > frame_bytes_max 4096 */
	uint8_t junk[9] = {0, 0, 0, 5, 0xff, 0xff, 0xff, 0xff, 0xff};
	int fd;

	fd = dial();
	f.id = 5;
	f.body_case = SLUICE__FRAME__BODY_LIST_TOPICS;
	f.list_topics = &lt;
	send_frame(fd, &f);
	expect_error(fd, 5, SLUICE__ERROR_CODE__HANDSHAKE_REQUIRED);
	expect_eof(fd);
	close(fd);

	fd = dial();
	h.min_version = 2;
	h.max_version = 3;
	f.id = 6;
	f.body_case = SLUICE__FRAME__BODY_HELLO;
	f.hello = &h;
	send_frame(fd, &f);
	expect_error(fd, 6, SLUICE__ERROR_CODE__UNSUPPORTED_VERSION);
	expect_eof(fd);
	close(fd);

	fd = hello();
	send_raw(fd, big, sizeof(big));
	expect_error(fd, 0, SLUICE__ERROR_CODE__FRAME_TOO_LARGE);
	expect_eof(fd);
	close(fd);

	fd = hello();
	send_raw(fd, junk, sizeof(junk));
	expect_error(fd, 0, SLUICE__ERROR_CODE__MALFORMED);
	expect_eof(fd);
	close(fd);
}

Test(frontend, response_type_is_unknown_operation_and_connection_stays)
{
	Sluice__Frame f = SLUICE__FRAME__INIT, *r;
	Sluice__Ok ok = SLUICE__OK__INIT;
	Sluice__NodeStatus ns = SLUICE__NODE_STATUS__INIT;
	int fd = hello();

	f.id = 8;
	f.body_case = SLUICE__FRAME__BODY_OK;
	f.ok = &ok;
	send_frame(fd, &f);
	expect_error(fd, 8, SLUICE__ERROR_CODE__UNKNOWN_OPERATION);
	f.id = 9;
	f.body_case = SLUICE__FRAME__BODY_NODE_STATUS;
	f.node_status = &ns;
	send_frame(fd, &f);
	r = recv_frame(fd);
	cr_assert_not_null(r);
	cr_assert_eq(r->body_case, SLUICE__FRAME__BODY_NODE_STATUS_RESULT);
	cr_expect_eq(r->id, 9);
	cr_expect_eq(r->node_status_result->node_id, 7);
	cr_expect_eq(r->node_status_result->topics, 1);
	cr_expect_eq(r->node_status_result->connections, 1);
	codec_frame_free(r);
	close(fd);
}

Test(frontend, publish_goes_through_the_ring_and_acks_map_back)
{
	Sluice__Frame *r;
	uint64_t c1, c2, c3;
	int fd = hello();

	publish(fd, 11, "t", "hello");
	c1 = lw_take_publish("hello");
	publish(fd, 12, "t", "second");
	c2 = lw_take_publish("second");
	publish(fd, 13, "t", "third");
	c3 = lw_take_publish("third");
	cr_expect_neq(c1, c2);

	/* acks out of order; a stale generation's cookie is ignored */
	lw_ack((c1 & 0xffffffffffffull) | (2ull << 48), 0, 99, 0);
	lw_ack(c2, SL_ENOTOPIC, 0, 0);
	lw_ack(c1, 0, 42, RM_ACK_DUPLICATE);
	lw_ack(c3, SL_ENOMEM, 0, 0);

	expect_error(fd, 12, SLUICE__ERROR_CODE__NO_SUCH_TOPIC);
	r = recv_frame(fd);
	cr_assert_not_null(r);
	cr_assert_eq(r->body_case, SLUICE__FRAME__BODY_PUBLISH_ACK);
	cr_expect_eq(r->id, 11);
	cr_expect_eq(r->publish_ack->offset, 42);
	cr_expect_eq(r->publish_ack->partition, 1);
	cr_expect_eq(r->publish_ack->timestamp_ms, 1234);
	cr_expect(r->publish_ack->duplicate);
	cr_expect_eq(r->publish_ack->term, 2, "the ack carries the raft term of its entry");
	cr_expect_eq(r->publish_ack->log_index, 1042, "and its log index");
	codec_frame_free(r);
	expect_error(fd, 13, SLUICE__ERROR_CODE__INTERNAL); /* local errors (>= 100) map to INTERNAL */
	close(fd);
}

Test(frontend, fetch_reads_up_to_the_committed_end_and_long_polls)
{
	Sluice__Fetch fe = SLUICE__FETCH__INIT;
	Sluice__Frame f = SLUICE__FRAME__INIT, *r;
	uint64_t one = 1;
	size_t i;
	int fd = hello();

	fe.topic = (char *)"t";
	fe.offset = 1;
	f.id = 20;
	f.body_case = SLUICE__FRAME__BODY_FETCH;
	f.fetch = &fe;
	send_frame(fd, &f);
	r = recv_frame(fd);
	cr_assert_not_null(r);
	cr_assert_eq(r->body_case, SLUICE__FRAME__BODY_FETCH_RESULT);
	cr_expect_eq(r->fetch_result->end_offset, 4);
	cr_assert_eq(r->fetch_result->n_messages, 3, "offsets 1..3: record 4 is stored but not committed");
	for (i = 0; i < 3; i++) {
		char want[8];
		Sluice__Message *m = r->fetch_result->messages[i];
		snprintf(want, sizeof(want), "m%zu", i + 1);
		cr_expect_eq(m->offset, i + 1);
		cr_expect_eq(m->payload.len, strlen(want));
		cr_expect_eq(memcmp(m->payload.data, want, m->payload.len), 0);
		cr_expect_str_eq(m->topic, "t");
		cr_assert_eq(m->n_headers, 1);
		cr_expect_str_eq(m->headers[0]->key, "h");
	}
	codec_frame_free(r);

	/* long-poll at the end: answered when the commit table moves */
	fe.offset = 4;
	fe.wait_ms = 5000;
	f.id = 21;
	send_frame(fd, &f);
	usleep(200 * 1000);
	__atomic_store_n(&shm.slots[topic.slot_base].end_offset, 5, __ATOMIC_RELEASE);
	__atomic_add_fetch(&shm.hdr->commit_seq, 1, __ATOMIC_RELEASE);
	cr_assert_eq(write(fe_efd, &one, sizeof(one)), 8);
	r = recv_frame(fd);
	cr_assert_not_null(r);
	cr_assert_eq(r->body_case, SLUICE__FRAME__BODY_FETCH_RESULT);
	cr_expect_eq(r->id, 21);
	cr_assert_eq(r->fetch_result->n_messages, 1);
	cr_expect_eq(r->fetch_result->messages[0]->offset, 4);
	codec_frame_free(r);

	/* beyond the end and a bad partition */
	fe.offset = 9;
	fe.wait_ms = 0;
	f.id = 22;
	send_frame(fd, &f);
	expect_error(fd, 22, SLUICE__ERROR_CODE__OFFSET_OUT_OF_RANGE);
	fe.partition = 5;
	f.id = 23;
	send_frame(fd, &f);
	expect_error(fd, 23, SLUICE__ERROR_CODE__INVALID_ARGUMENT);
	close(fd);
}

Test(frontend, subscription_pushes_only_within_credit)
{
	Sluice__Subscribe s = SLUICE__SUBSCRIBE__INIT;
	Sluice__Credit cr = SLUICE__CREDIT__INIT;
	Sluice__Unsubscribe u = SLUICE__UNSUBSCRIBE__INIT;
	Sluice__Frame f = SLUICE__FRAME__INIT, *r;
	uint32_t part0 = 0;
	struct pollfd pfd;
	int fd = hello();

	s.topic = (char *)"t";
	s.n_partitions = 1;
	s.partitions = &part0;
	s.start = SLUICE__START_AT__OFFSET;
	s.offset = 1;
	s.credit = 2;
	f.id = 30;
	f.body_case = SLUICE__FRAME__BODY_SUBSCRIBE;
	f.subscribe = &s;
	send_frame(fd, &f);
	r = recv_frame(fd);
	cr_assert_not_null(r);
	cr_assert_eq(r->body_case, SLUICE__FRAME__BODY_SUBSCRIBED);
	cr_assert_eq(r->subscribed->n_positions, 1);
	cr_expect_eq(r->subscribed->positions[0]->offset, 1);
	cr.subscription_id = r->subscribed->subscription_id;
	codec_frame_free(r);

	r = recv_frame(fd);
	cr_assert_not_null(r);
	cr_assert_eq(r->body_case, SLUICE__FRAME__BODY_DELIVERY);
	cr_expect_eq(r->id, 0);
	cr_assert_eq(r->delivery->n_messages, 2, "credit 2 allows two messages");
	cr_expect_eq(r->delivery->messages[0]->offset, 1);
	cr_expect_eq(r->delivery->messages[1]->offset, 2);
	codec_frame_free(r);
	pfd.fd = fd;
	pfd.events = POLLIN;
	cr_expect_eq(poll(&pfd, 1, 300), 0, "nothing more without credit");

	cr.credit = 10;
	f.id = 31;
	f.body_case = SLUICE__FRAME__BODY_CREDIT;
	f.credit = &cr;
	send_frame(fd, &f);
	r = recv_frame(fd);
	cr_assert_not_null(r);
	cr_assert_eq(r->body_case, SLUICE__FRAME__BODY_DELIVERY);
	cr_assert_eq(r->delivery->n_messages, 1, "only up to the committed end (4)");
	cr_expect_eq(r->delivery->messages[0]->offset, 3);
	codec_frame_free(r);

	/* subscriptions_max is 2 */
	s.start = SLUICE__START_AT__LATEST;
	f.id = 32;
	f.body_case = SLUICE__FRAME__BODY_SUBSCRIBE;
	f.subscribe = &s;
	send_frame(fd, &f);
	r = recv_frame(fd);
	cr_assert_not_null(r);
	cr_assert_eq(r->body_case, SLUICE__FRAME__BODY_SUBSCRIBED);
	cr_expect_eq(r->subscribed->positions[0]->offset, 4);
	codec_frame_free(r);
	f.id = 33;
	send_frame(fd, &f);
	expect_error(fd, 33, SLUICE__ERROR_CODE__TOO_MANY);

	u.subscription_id = cr.subscription_id;
	f.id = 34;
	f.body_case = SLUICE__FRAME__BODY_UNSUBSCRIBE;
	f.unsubscribe = &u;
	send_frame(fd, &f);
	r = recv_frame(fd);
	cr_assert_not_null(r);
	cr_expect_eq(r->body_case, SLUICE__FRAME__BODY_OK);
	cr_expect_eq(r->id, 34);
	codec_frame_free(r);
	f.id = 35;
	send_frame(fd, &f);
	expect_error(fd, 35, SLUICE__ERROR_CODE__NO_SUCH_SUBSCRIPTION);

	s.topic = (char *)"missing";
	f.id = 36;
	f.body_case = SLUICE__FRAME__BODY_SUBSCRIBE;
	f.subscribe = &s;
	send_frame(fd, &f);
	expect_error(fd, 36, SLUICE__ERROR_CODE__NO_SUCH_TOPIC);
	close(fd);
}

/* A full pub ring pauses reading; nothing is dropped, order is kept. */
Test(frontend, full_ring_is_backpressure_not_loss)
{
	enum { N = 300 };
	struct ring *ring = shm_pub_ring(&shm, 0);
	uint64_t cookies[N];
	size_t got = 0, i;
	int fd = hello();

	for (i = 0; i < N; i++) {
		char pl[32];
		snprintf(pl, sizeof(pl), "payload-%04zu", i);
		publish(fd, 100 + i, "t", pl);
	}
	/* the 4 KiB ring holds far fewer than N records: drain it as a slow logwriter */
	while (got < N) {
		uint64_t pos = ring_tail(ring);
		const uint8_t *p;
		uint32_t len;
		uint16_t type;
		int n = 0;
		while (got < N && ring_peek(ring, &pos, &type, &p, &len)) {
			struct rm_publish h;
			char want[32];
			cr_assert_eq(type, RM_PUBLISH);
			memcpy(&h, p, sizeof(h));
			snprintf(want, sizeof(want), "payload-%04zu", got);
			cr_assert_eq(h.payload_len, strlen(want));
			cr_assert_eq(memcmp(p + sizeof(h) + h.topic_len + h.headers_len, want, h.payload_len), 0,
			             "record %zu in order", got);
			cookies[got++] = h.cookie;
			n++;
		}
		ring_release(ring, pos);
		if (n == 0)
			usleep(2000);
	}
	for (i = 0; i < N; i++)
		lw_ack(cookies[i], 0, i, 0);
	for (i = 0; i < N; i++) {
		Sluice__Frame *r = recv_frame(fd);
		cr_assert_not_null(r);
		cr_assert_eq(r->body_case, SLUICE__FRAME__BODY_PUBLISH_ACK);
		cr_assert_eq(r->id, 100 + i);
		cr_assert_eq(r->publish_ack->offset, i);
		codec_frame_free(r);
	}
	close(fd);
}

/* ---------- cluster ---------- */

static Sluice__Frame *cluster_status(int fd, uint64_t id)
{
	Sluice__ClusterStatus cs = SLUICE__CLUSTER_STATUS__INIT;
	Sluice__Frame f = SLUICE__FRAME__INIT, *r;

	f.id = id;
	f.body_case = SLUICE__FRAME__BODY_CLUSTER_STATUS;
	f.cluster_status = &cs;
	send_frame(fd, &f);
	r = recv_frame(fd);
	cr_assert_not_null(r);
	cr_assert_eq(r->body_case, SLUICE__FRAME__BODY_CLUSTER_STATUS_RESULT, "body %d", r->body_case);
	cr_expect_eq(r->id, id);
	return r;
}

static void transfer_leader(int fd, uint64_t id, uint32_t to)
{
	Sluice__TransferLeader tl = SLUICE__TRANSFER_LEADER__INIT;
	Sluice__Frame f = SLUICE__FRAME__INIT;

	tl.to = to;
	f.id = id;
	f.body_case = SLUICE__FRAME__BODY_TRANSFER_LEADER;
	f.transfer_leader = &tl;
	send_frame(fd, &f);
}

/* Play the logwriter: wait for one transfer-leader record in the pub ring. */
static uint64_t lw_take_transfer(uint32_t want_to)
{
	struct ring *r = shm_pub_ring(&shm, 0);
	struct rm_transfer_leader h;
	const uint8_t *p;
	uint32_t len;
	uint16_t type;
	uint64_t pos;
	int i;

	for (i = 0; i < 500; i++) {
		pos = ring_tail(r);
		if (ring_peek(r, &pos, &type, &p, &len))
			break;
		usleep(10000);
	}
	cr_assert(i < 500, "a transfer-leader record reached the ring");
	cr_assert_eq(type, RM_TRANSFER_LEADER);
	cr_assert_eq(len, sizeof(h));
	memcpy(&h, p, sizeof(h));
	cr_expect_eq(h.cookie >> 48, 3, "cookie carries generation 3");
	cr_expect_eq(h.to, want_to);
	ring_release(r, pos);
	return h.cookie;
}

/* What the logwriter of node 7, leader of a three-node cluster in term 4, writes. */
static void lw_write_cluster(void)
{
	struct shm_cluster *sc = &shm.hdr->cluster;
	static const uint32_t ids[3] = {7, 8, 9};
	int i;

	sc->role = 3; /* RAFT_LEADER */
	sc->leader_id = 7;
	sc->term = 4;
	sc->first_index = 1;
	sc->last_index = 120;
	sc->commit_index = 118;
	sc->applied_index = 117;
	sc->n_nodes = 3;
	for (i = 0; i < 3; i++) {
		sc->nodes[i].id = ids[i];
		sc->nodes[i].reachable = i != 2;
		sc->nodes[i].match_index = i == 2 ? 90 : 120;
	}
	__atomic_store_n(&sc->enabled, 1, __ATOMIC_RELEASE);
}

Test(frontend, single_node_cluster_requests_answer_without_the_ring)
{
	struct ring *ring = shm_pub_ring(&shm, 0);
	Sluice__Frame *r;
	uint64_t pos;
	const uint8_t *p;
	uint32_t len;
	uint16_t type;
	int fd = hello();

	r = cluster_status(fd, 40);
	cr_expect_str_eq(r->cluster_status_result->role, "single");
	cr_expect_eq(r->cluster_status_result->node_id, 7);
	cr_expect_eq(r->cluster_status_result->leader_id, 7);
	cr_expect_eq(r->cluster_status_result->n_nodes, 0);
	codec_frame_free(r);

	transfer_leader(fd, 41, 2);
	expect_error(fd, 41, SLUICE__ERROR_CODE__INVALID_ARGUMENT);
	pos = ring_tail(ring);
	cr_expect_not(ring_peek(ring, &pos, &type, &p, &len), "nothing was sent to the logwriter");
	close(fd);
}

Test(frontend, transfer_leader_becomes_a_ring_record_and_answers_from_its_ack)
{
	Sluice__Frame *r;
	Sluice__ClusterStatusResult *cs;
	uint64_t c1, c2;
	int fd;

	lw_write_cluster();
	fd = hello();
	r = cluster_status(fd, 50);
	cs = r->cluster_status_result;
	cr_expect_str_eq(cs->role, "leader");
	cr_expect_eq(cs->node_id, 7);
	cr_expect_eq(cs->leader_id, 7);
	cr_expect_eq(cs->term, 4);
	cr_expect_eq(cs->first_index, 1);
	cr_expect_eq(cs->last_index, 120);
	cr_expect_eq(cs->commit_index, 118);
	cr_expect_eq(cs->applied_index, 117);
	cr_assert_eq(cs->n_nodes, 3);
	cr_expect_eq(cs->nodes[0]->id, 7);
	cr_expect(cs->nodes[0]->reachable);
	cr_expect_eq(cs->nodes[1]->match_index, 120);
	cr_expect_eq(cs->nodes[2]->id, 9);
	cr_expect_not(cs->nodes[2]->reachable);
	cr_expect_eq(cs->nodes[2]->match_index, 90);
	codec_frame_free(r);

	/* an id outside the cluster is refused before the ring */
	transfer_leader(fd, 51, 12);
	expect_error(fd, 51, SLUICE__ERROR_CODE__INVALID_ARGUMENT);

	transfer_leader(fd, 52, 8);
	c1 = lw_take_transfer(8);
	transfer_leader(fd, 53, 9);
	c2 = lw_take_transfer(9);
	cr_expect_neq(c1, c2);
	lw_ack(c2, SL_EUNAVAILABLE, 0, 0);
	lw_ack(c1, 0, 0, 0);
	expect_error(fd, 53, SLUICE__ERROR_CODE__UNAVAILABLE);
	r = recv_frame(fd);
	cr_assert_not_null(r);
	cr_expect_eq(r->body_case, SLUICE__FRAME__BODY_OK, "body %d", r->body_case);
	cr_expect_eq(r->id, 52);
	codec_frame_free(r);
	close(fd);
}
