/*
 * peer_test.c: peer links between several peer_nets in one process on free
 * loopback ports, on one event_base run in bounded rounds (delivery and
 * order, a multi-MiB entry, the send window, reconnect after a restart, hello
 * checks, oversized frames), mutual TLS with certificates from
 * deploy/certs.sh (frames flow; another CA's certificate, another node's
 * certificate and a certificate naming no node are refused), and the
 * PeerFrame codec.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "cluster.pb-c.h"
#include "config.h"
#include "err.h"
#include "log.h"
#include "peer.h"
#include "slice.h"
#include "tls.h"

#define NETS_MAX 3
#define CLUSTER_ID 0x5eed5eedull

struct got {
	uint32_t from;
	uint8_t *p;
	size_t len;
};

struct tnet {
	struct peer_net *n;
	struct peer_opts o;
	struct got *got;
	size_t n_got, cap_got;
};

static struct peer_addr addrs[NETS_MAX];
static struct tnet nets[NETS_MAX];
static struct event_base *base;

static int64_t now_ms(void)
{
	return (int64_t)(time_mono_ns() / 1000000ull);
}

static uint16_t free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_geq(fd, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sa);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	close(fd);
	return ntohs(sa.sin_port);
}

static void on_frame(void *arg, uint32_t from, const uint8_t *p, size_t len)
{
	struct tnet *t = arg;
	if (t->n_got == t->cap_got) {
		t->cap_got = t->cap_got ? 2 * t->cap_got : 64;
		t->got = realloc(t->got, t->cap_got * sizeof(*t->got));
		cr_assert_not_null(t->got);
	}
	uint8_t *copy = malloc(len ? len : 1);
	cr_assert_not_null(copy);
	memcpy(copy, p, len);
	t->got[t->n_got++] = (struct got){from, copy, len};
}

static void setup_addrs(size_t k)
{
	log_set_level(LOG_WARN);
	signal(SIGPIPE, SIG_IGN); /* as in sluiced: a link closed under a write is an error, not a death */
	memset(nets, 0, sizeof(nets));
	if (!base)
		cr_assert_not_null(base = event_base_new());
	for (size_t i = 0; i < k; i++) {
		addrs[i].id = (uint32_t)i + 1;
		snprintf(addrs[i].host, sizeof(addrs[i].host), "127.0.0.1");
		addrs[i].port = free_port();
	}
}

static void net_open_tls(size_t i, size_t k, uint64_t cluster_id, size_t send_max, uint32_t frame_max,
			 SSL_CTX *tls)
{
	struct tnet *t = &nets[i];
	t->o = (struct peer_opts){.self_id = (uint32_t)i + 1, .nodes = addrs, .n_nodes = k, .cluster_id = cluster_id,
				  .send_bytes_max = send_max, .frame_bytes_max = frame_max,
				  .backoff_min_ms = 20, .backoff_max_ms = 200, .base = base, .on_frame = on_frame,
				  .arg = t, .tls = tls};
	cr_assert_eq(peer_net_open(&t->n, &t->o), SL_OK);
}

static void net_open(size_t i, size_t k, uint64_t cluster_id, size_t send_max, uint32_t frame_max)
{
	net_open_tls(i, k, cluster_id, send_max, frame_max, NULL);
}

static void net_close(size_t i)
{
	peer_net_close(nets[i].n);
	nets[i].n = NULL;
}

static void teardown(void)
{
	for (size_t i = 0; i < NETS_MAX; i++) {
		peer_net_close(nets[i].n);
		for (size_t j = 0; j < nets[i].n_got; j++)
			free(nets[i].got[j].p);
		free(nets[i].got);
	}
	memset(nets, 0, sizeof(nets));
	if (base)
		event_base_free(base);
	base = NULL;
}

static void wake(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

/* One round of the loop (at most max_wait_ms), then every net hands over
 * what arrived, as the logwriter does. */
static void pump_once(int max_wait_ms)
{
	struct timeval tv = {0, max_wait_ms * 1000};
	struct event *t = evtimer_new(base, wake, NULL);
	cr_assert_not_null(t);
	evtimer_add(t, &tv);
	event_base_loop(base, EVLOOP_ONCE);
	event_free(t);
	for (size_t i = 0; i < NETS_MAX; i++)
		if (nets[i].n)
			peer_deliver(nets[i].n);
}

/* Pump until cond() holds; fails the test after timeout_ms. */
static void pump_until(int (*cond)(void), int timeout_ms, const char *what)
{
	int64_t end = now_ms() + timeout_ms;
	while (!cond()) {
		cr_assert_lt(now_ms(), end, "timed out waiting for %s", what);
		pump_once(10);
	}
}

static void pump_for(int ms)
{
	int64_t end = now_ms() + ms;
	while (now_ms() < end)
		pump_once(10);
}

static size_t k_nets;

static int all_connected(void)
{
	for (size_t i = 0; i < k_nets; i++)
		for (size_t j = 0; j < k_nets; j++)
			if (i != j && (!nets[i].n || !peer_connected(nets[i].n, (uint32_t)j + 1)))
				return 0;
	return 1;
}

static int all_drained(void)
{
	for (size_t i = 0; i < k_nets; i++)
		for (size_t j = 0; j < k_nets; j++)
			if (i != j && nets[i].n && peer_queued(nets[i].n, (uint32_t)j + 1))
				return 0;
	return 1;
}

static size_t want_got;
static size_t want_net;
static int got_enough(void)
{
	return nets[want_net].n_got >= want_got;
}

static uint8_t *pattern(size_t len, uint32_t seed)
{
	uint8_t *p = malloc(len ? len : 1);
	cr_assert_not_null(p);
	uint32_t x = seed * 2654435761u + 1;
	for (size_t i = 0; i < len; i++) {
		x = x * 1103515245u + 12345u;
		p[i] = (uint8_t)(x >> 16);
	}
	return p;
}

static void send_raft(size_t from, uint32_t to, uint64_t index, size_t data_len)
{
	uint8_t *data = pattern(data_len, (uint32_t)index);
	struct raft_entry e = {.term = 3, .index = index, .type = RAFT_ENTRY_NORMAL, .len = (uint32_t)data_len,
			       .data = data};
	struct raft_msg m = {.type = RAFT_MSG_APPEND, .from = from + 1, .to = to, .term = 3, .index = index - 1,
			     .log_term = 3, .commit = index - 1, .entries = &e, .n_entries = 1};
	uint8_t *buf;
	size_t len;
	cr_assert_eq(peer_encode_raft(&m, NULL, 0, 0, 0, &buf, &len), SL_OK);
	int rc;
	int64_t end = now_ms() + 5000;
	while ((rc = peer_send(nets[from].n, to, buf, len)) == SL_EAGAIN) {
		cr_assert_lt(now_ms(), end, "window never opened");
		pump_once(10);
	}
	cr_assert_eq(rc, SL_OK);
	free(buf);
	free(data);
}

static void check_raft(const struct got *g, uint32_t from, uint64_t index, size_t data_len)
{
	cr_assert_eq(g->from, from);
	struct peer_frame f;
	cr_assert_eq(peer_decode(g->p, g->len, &f), SL_OK);
	cr_assert_eq(f.kind, PEER_FRAME_RAFT);
	cr_assert_eq(f.raft.type, RAFT_MSG_APPEND);
	cr_assert_eq(f.raft.from, from);
	cr_assert_eq(f.raft.n_entries, 1);
	cr_assert_eq(f.raft.entries[0].index, index, "got %llu want %llu",
		     (unsigned long long)f.raft.entries[0].index, (unsigned long long)index);
	cr_assert_eq(f.raft.entries[0].len, data_len);
	uint8_t *want = pattern(data_len, (uint32_t)index);
	if (data_len)
		cr_assert_eq(memcmp(f.raft.entries[0].data, want, data_len), 0);
	else
		cr_assert_null(f.raft.entries[0].data);
	free(want);
	peer_frame_free(&f);
}

TestSuite(peer, .fini = teardown, .timeout = 60);

Test(peer, frames_arrive_intact_and_in_order)
{
	k_nets = 3;
	setup_addrs(3);
	for (size_t i = 0; i < 3; i++)
		net_open(i, 3, CLUSTER_ID, 0, 0);
	pump_until(all_connected, 5000, "all links up");
	/* 1 -> 2 and 3 -> 2 interleaved, with a 5 MiB entry in the middle of 1's. */
	for (uint64_t i = 1; i <= 200; i++) {
		send_raft(0, 2, i, i == 100 ? (5u << 20) : (size_t)(i * 37 % 3000));
		send_raft(2, 2, 1000 + i, (size_t)(i % 17));
	}
	want_net = 1;
	want_got = 400;
	pump_until(got_enough, 10000, "400 frames");
	pump_for(50);
	cr_assert_eq(nets[1].n_got, 400, "no extra frames");
	uint64_t next1 = 1, next3 = 1001;
	for (size_t i = 0; i < nets[1].n_got; i++) {
		const struct got *g = &nets[1].got[i];
		if (g->from == 1) {
			check_raft(g, 1, next1, next1 == 100 ? (5u << 20) : (size_t)(next1 * 37 % 3000));
			next1++;
		} else {
			check_raft(g, 3, next3, (size_t)((next3 - 1000) % 17));
			next3++;
		}
	}
	cr_assert_eq(next1, 201);
	cr_assert_eq(next3, 1201);
	cr_assert_gt(peer_last_rx_ms(nets[1].n, 1), 0);
	cr_assert_gt(peer_last_rx_ms(nets[1].n, 3), 0);
	cr_assert_eq(nets[0].n_got + nets[2].n_got, 0, "nothing sent to 1 or 3");
	/* forward and transfer frames pass through unchanged */
	uint8_t rec[] = "records", *buf;
	size_t len;
	cr_assert_eq(peer_encode_forward(2, rec, sizeof(rec), &buf, &len), SL_OK);
	cr_assert_eq(peer_send(nets[1].n, 1, buf, len), SL_OK);
	free(buf);
	cr_assert_eq(peer_encode_transfer(3, &buf, &len), SL_OK);
	cr_assert_eq(peer_send(nets[1].n, 1, buf, len), SL_OK);
	free(buf);
	want_net = 0;
	want_got = 2;
	pump_until(got_enough, 5000, "forward and transfer");
	struct peer_frame f;
	cr_assert_eq(peer_decode(nets[0].got[0].p, nets[0].got[0].len, &f), SL_OK);
	cr_assert_eq(f.kind, PEER_FRAME_FORWARD);
	cr_assert_eq(f.origin_node, 2);
	cr_assert_eq(f.records_len, sizeof(rec));
	cr_assert_eq(memcmp(f.records, rec, sizeof(rec)), 0);
	peer_frame_free(&f);
	cr_assert_eq(peer_decode(nets[0].got[1].p, nets[0].got[1].len, &f), SL_OK);
	cr_assert_eq(f.kind, PEER_FRAME_TRANSFER);
	cr_assert_eq(f.transfer_to, 3);
	peer_frame_free(&f);
	/* and a refused forward names its reason */
	cr_assert_eq(peer_encode_forward_refused(PEER_REFUSED_QUEUE_FULL, &buf, &len), SL_OK);
	cr_assert_eq(peer_decode(buf + 4, len - 4, &f), SL_OK);
	cr_assert_eq(f.kind, PEER_FRAME_FORWARD_REFUSED);
	cr_assert_eq(f.refusal, PEER_REFUSED_QUEUE_FULL);
	peer_frame_free(&f);
	free(buf);
}

Test(peer, window_full_is_eagain)
{
	k_nets = 2;
	setup_addrs(2);
	net_open(0, 2, CLUSTER_ID, 64 << 10, 0);
	/* a forward frame of exactly 16 KiB */
	uint8_t records[(16 << 10) - 12], *frame;
	size_t flen;
	memset(records, 'r', sizeof(records));
	cr_assert_eq(peer_encode_forward(1, records, sizeof(records), &frame, &flen), SL_OK);
	cr_assert_eq(flen, 16 << 10);
	cr_assert_eq(peer_send(nets[0].n, 2, frame, flen), SL_EAGAIN, "no link yet");
	cr_assert_eq(peer_send(nets[0].n, 9, frame, flen), SL_EINVAL, "unknown node");
	net_open(1, 2, CLUSTER_ID, 0, 0);
	pump_until(all_connected, 5000, "links up");
	pump_until(all_drained, 5000, "hello written");
	/* Without running the loop, the window takes 4 frames of 16 KiB and no more. */
	size_t sent = 0;
	while (peer_send(nets[0].n, 2, frame, flen) == SL_OK)
		sent++;
	cr_assert_eq(sent, 4);
	cr_assert_eq(peer_queued(nets[0].n, 2), 4 * flen);
	cr_assert_eq(peer_send(nets[0].n, 2, frame, flen), SL_EAGAIN);
	uint8_t big[(64 << 10) + 8];
	memset(big, 0, sizeof(big));
	be_put32(big, sizeof(big) - 4);
	cr_assert_eq(peer_send(nets[0].n, 2, big, sizeof(big)), SL_ETOOLARGE, "never fits the window");
	pump_until(all_drained, 5000, "window drained");
	cr_assert_eq(peer_send(nets[0].n, 2, frame, flen), SL_OK);
	want_net = 1;
	want_got = 5;
	pump_until(got_enough, 5000, "5 frames");
	cr_assert_eq(nets[1].got[4].len, flen - 4);
	cr_assert_eq(memcmp(nets[1].got[4].p, frame + 4, flen - 4), 0);
	free(frame);
}

static int link_2_down(void)
{
	return !peer_connected(nets[0].n, 2);
}

Test(peer, reconnects_after_listener_restart)
{
	k_nets = 2;
	setup_addrs(2);
	net_open(0, 2, CLUSTER_ID, 0, 0);
	net_open(1, 2, CLUSTER_ID, 0, 0);
	pump_until(all_connected, 5000, "links up");
	send_raft(0, 2, 1, 10);
	want_net = 1;
	want_got = 1;
	pump_until(got_enough, 5000, "first frame");
	net_close(1);
	pump_until(link_2_down, 5000, "link down");
	cr_assert_eq(peer_send(nets[0].n, 2, (const uint8_t *)"\0\0\0\0", 4), SL_EAGAIN, "no link");
	pump_for(300); /* a few failed dials: backoff grows to its 200 ms cap */
	int64_t t0 = now_ms();
	net_open(1, 2, CLUSTER_ID, 0, 0);
	pump_until(all_connected, 2000, "links back");
	cr_assert_leq(now_ms() - t0, 1000, "back within the backoff");
	send_raft(0, 2, 2, 10);
	want_got = 2;
	pump_until(got_enough, 5000, "frame after reconnect");
	check_raft(&nets[1].got[1], 1, 2, 10);
}

Test(peer, wrong_cluster_id_is_refused)
{
	k_nets = 2;
	setup_addrs(2);
	net_open(0, 2, CLUSTER_ID + 1, 0, 0);
	net_open(1, 2, CLUSTER_ID, 0, 0);
	int64_t end = now_ms() + 1500;
	size_t sent = 0;
	while (now_ms() < end) {
		uint8_t frame[] = {0, 0, 0, 2, 0x12, 0x00}; /* raft {} */
		if (peer_send(nets[0].n, 2, frame, sizeof(frame)) == SL_OK)
			sent++;
		pump_once(10);
	}
	cr_assert_gt(sent, 0, "the dialler did connect and send");
	cr_assert_eq(nets[1].n_got, 0, "nothing delivered");
	cr_assert_eq(peer_last_rx_ms(nets[1].n, 1), 0);
	/* and node 1 refuses node 2's hello the same way */
	cr_assert_eq(nets[0].n_got, 0);
}

/* A raw client that says hello as node `id`; returns the connected fd. */
static int raw_dial(uint16_t port, uint32_t id, uint64_t cluster_id)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_geq(fd, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	Sluice__Cluster__PeerHello h = SLUICE__CLUSTER__PEER_HELLO__INIT;
	h.node_id = id;
	h.version = 1;
	h.cluster_id = cluster_id;
	Sluice__Cluster__PeerFrame pf = SLUICE__CLUSTER__PEER_FRAME__INIT;
	pf.body_case = SLUICE__CLUSTER__PEER_FRAME__BODY_HELLO;
	pf.hello = &h;
	uint8_t buf[64];
	size_t n = sluice__cluster__peer_frame__pack(&pf, buf + 4);
	be_put32(buf, (uint32_t)n);
	cr_assert_eq(write(fd, buf, n + 4), (ssize_t)(n + 4));
	return fd;
}

static int raw_fd;
static int raw_closed(void)
{
	uint8_t b[16];
	ssize_t r = recv(raw_fd, b, sizeof(b), MSG_DONTWAIT);
	return r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

/* A raw link to port says hello as node id of cluster_id and sends a raft
 * frame; the net must close it (what = why, for the failure message). */
static void raw_refused(uint16_t port, uint32_t id, uint64_t cluster_id, const char *what)
{
	uint8_t frame[] = {0, 0, 0, 4, 0x12, 0x02, 0x08, 0x07}; /* raft {type: 7} */
	raw_fd = raw_dial(port, id, cluster_id);
	cr_assert_eq(write(raw_fd, frame, sizeof(frame)), (ssize_t)sizeof(frame));
	pump_until(raw_closed, 5000, what);
	close(raw_fd);
}

Test(peer, oversized_length_closes_the_link)
{
	k_nets = 2;
	setup_addrs(2);
	net_open(1, 2, CLUSTER_ID, 0, 1 << 20);
	raw_fd = raw_dial(addrs[1].port, 1, CLUSTER_ID);
	uint8_t ok[] = {0, 0, 0, 4, 0x12, 0x02, 0x08, 0x07}; /* raft {type: 7} */
	cr_assert_eq(write(raw_fd, ok, sizeof(ok)), (ssize_t)sizeof(ok));
	want_net = 1;
	want_got = 1;
	pump_until(got_enough, 5000, "the frame before");
	cr_assert_eq(nets[1].got[0].from, 1);
	uint8_t huge[] = {0x00, 0x10, 0x00, 0x01, 0x22}; /* 1 MiB + 1 */
	cr_assert_eq(write(raw_fd, huge, sizeof(huge)), (ssize_t)sizeof(huge));
	pump_until(raw_closed, 5000, "close after an oversized length");
	cr_assert_eq(nets[1].n_got, 1);
	close(raw_fd);
	/* before the hello, anything over a hello's size is refused too */
	raw_fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(addrs[1].port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	cr_assert_eq(connect(raw_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	uint8_t pre[] = {0x00, 0x00, 0x10, 0x00};
	cr_assert_eq(write(raw_fd, pre, sizeof(pre)), (ssize_t)sizeof(pre));
	pump_until(raw_closed, 5000, "close of an oversized first frame");
	close(raw_fd);
	/* a malformed frame after the hello closes the link too */
	raw_fd = raw_dial(addrs[1].port, 1, CLUSTER_ID);
	uint8_t bad[] = {0, 0, 0, 3, 0x12, 0x05, 0x08};
	cr_assert_eq(write(raw_fd, bad, sizeof(bad)), (ssize_t)sizeof(bad));
	pump_until(raw_closed, 5000, "close after a malformed frame");
	cr_assert_eq(nets[1].n_got, 1);
	close(raw_fd);
}

Test(peer, bad_hellos_are_refused)
{
	k_nets = 2;
	setup_addrs(2);
	net_open(1, 2, CLUSTER_ID, 0, 0);
	uint32_t ids[] = {2, 7, 1};
	uint64_t cids[] = {CLUSTER_ID, CLUSTER_ID, CLUSTER_ID ^ 1};
	for (size_t i = 0; i < 3; i++)
		raw_refused(addrs[1].port, ids[i], cids[i], "close after a bad hello");
	cr_assert_eq(nets[1].n_got, 0);
}

Test(peer, newer_incoming_link_replaces_older)
{
	k_nets = 2;
	setup_addrs(2);
	net_open(1, 2, CLUSTER_ID, 0, 0);
	int old = raw_dial(addrs[1].port, 1, CLUSTER_ID);
	pump_for(50);
	raw_fd = old;
	cr_assert_not(raw_closed());
	int fresh = raw_dial(addrs[1].port, 1, CLUSTER_ID);
	pump_until(raw_closed, 5000, "older link closed");
	uint8_t ok[] = {0, 0, 0, 4, 0x12, 0x02, 0x08, 0x07};
	cr_assert_eq(write(fresh, ok, sizeof(ok)), (ssize_t)sizeof(ok));
	want_net = 1;
	want_got = 1;
	pump_until(got_enough, 5000, "frame on the newer link");
	close(old);
	close(fresh);
}

/* ---- mutual TLS ---- */

/* deploy/certs.sh's certificates: a cluster CA ("ca") with nodes 1..3,
 * another CA ("other") with a node 3 of its own, and from the cluster CA a
 * certificate naming no node and one for node 1 that may only serve. */
static char cert_dir[64];

static void make_certs(void)
{
	char cmd[2048];
	snprintf(cert_dir, sizeof(cert_dir), "/tmp/peer_test.XXXXXX");
	cr_assert_not_null(mkdtemp(cert_dir));
	snprintf(cmd, sizeof(cmd),
		 "set -e; cd %s; bash %s ca 1 2 3; bash %s other 3; "
		 "printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' >nonode.ext; "
		 "printf 'subjectAltName=URI:sluice:node:1\nextendedKeyUsage=serverAuth\n' >server.ext; "
		 "for k in nonode server; do "
		 "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=$k -keyout $k.key "
		 "-out $k.csr 2>/dev/null; "
		 "openssl x509 -req -in $k.csr -CA ca/ca.pem -CAkey ca/ca.key -set_serial 7 -days 2 -extfile $k.ext "
		 "-out $k.pem 2>/dev/null; done",
		 cert_dir, CERTS_SH, CERTS_SH);
	cr_assert_eq(system(cmd), 0, "making certificates");
}

static void remove_certs(void)
{
	char cmd[128];
	if (!cert_dir[0])
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", cert_dir);
	cr_assert_eq(system(cmd), 0);
	cert_dir[0] = 0;
}

/* A node's config naming its peer files. */
static void tls_config(struct config *c, uint32_t node_id, const char *cert, const char *key, const char *ca)
{
	config_defaults(c);
	c->node_id = node_id;
	c->cluster_n = 3;
	snprintf(c->tls_cert, sizeof(c->tls_cert), "%s/%s", cert_dir, cert);
	snprintf(c->tls_key, sizeof(c->tls_key), "%s/%s", cert_dir, key);
	if (ca)
		snprintf(c->tls_ca, sizeof(c->tls_ca), "%s/%s", cert_dir, ca);
}

/* tls_peer_ctx_new for node_id with the certificate of node cert_id under CA dir sub. */
static SSL_CTX *node_ctx(const char *sub, uint32_t node_id, uint32_t cert_id)
{
	struct config c;
	char cert[64], key[64], ca[64], err[512] = "";
	snprintf(cert, sizeof(cert), "%s/node%u.pem", sub, cert_id);
	snprintf(key, sizeof(key), "%s/node%u.key", sub, cert_id);
	snprintf(ca, sizeof(ca), "%s/ca.pem", sub);
	tls_config(&c, node_id == cert_id ? node_id : cert_id, cert, key, ca);
	SSL_CTX *tls;
	cr_assert_eq(tls_peer_ctx_new(&c, &tls, err, sizeof(err)), SL_OK, "%s", err);
	return tls;
}

/* A mutual TLS context around any certificate (no node check of our own). */
static SSL_CTX *raw_ctx(const char *cert, const char *key)
{
	char c[128], k[128], ca[128];
	snprintf(c, sizeof(c), "%s/%s", cert_dir, cert);
	snprintf(k, sizeof(k), "%s/%s", cert_dir, key);
	snprintf(ca, sizeof(ca), "%s/ca/ca.pem", cert_dir);
	SSL_CTX *ctx = SSL_CTX_new(TLS_method());
	cr_assert_not_null(ctx);
	cr_assert_eq(SSL_CTX_use_certificate_chain_file(ctx, c), 1);
	cr_assert_eq(SSL_CTX_use_PrivateKey_file(ctx, k, SSL_FILETYPE_PEM), 1);
	cr_assert_eq(SSL_CTX_load_verify_locations(ctx, ca, NULL), 1);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	return ctx;
}

static void open_node(size_t i, SSL_CTX *tls)
{
	net_open_tls(i, 3, CLUSTER_ID, 0, 0, tls);
	SSL_CTX_free(tls); /* the net holds its own */
}

static void tls_teardown(void)
{
	teardown();
	remove_certs();
}

TestSuite(peer_tls, .fini = tls_teardown, .timeout = 60);

Test(peer_tls, links_carry_frames_both_ways)
{
	SSL_CTX *tls;
	k_nets = 3;
	setup_addrs(3);
	make_certs();
	for (uint32_t i = 0; i < 3; i++)
		open_node(i, node_ctx("ca", i + 1, i + 1));
	pump_until(all_connected, 10000, "all TLS links up");
	for (uint64_t i = 1; i <= 50; i++) {
		send_raft(0, 2, i, i == 25 ? (2u << 20) : (size_t)(i * 53 % 5000));
		send_raft(1, 3, 500 + i, (size_t)i);
	}
	want_net = 1;
	want_got = 50;
	pump_until(got_enough, 10000, "50 frames on 2");
	want_net = 2;
	pump_until(got_enough, 10000, "50 frames on 3");
	for (uint64_t i = 1; i <= 50; i++) {
		check_raft(&nets[1].got[i - 1], 1, i, i == 25 ? (2u << 20) : (size_t)(i * 53 % 5000));
		check_raft(&nets[2].got[i - 1], 2, 500 + i, (size_t)i);
	}
	/* a reload takes new contexts for new links; a plain net refuses them */
	tls = node_ctx("ca", 1, 1);
	cr_assert_eq(peer_net_set_tls(nets[0].n, tls), SL_OK);
	net_close(1);
	net_open(1, 3, CLUSTER_ID, 0, 0);
	cr_assert_eq(peer_net_set_tls(nets[1].n, tls), SL_EINVAL);
	SSL_CTX_free(tls);
	/* the plain node 2 reaches no TLS node, nor they it */
	size_t got0 = nets[0].n_got;
	pump_for(600);
	cr_assert_not(peer_connected(nets[0].n, 2));
	cr_assert_not(peer_connected(nets[1].n, 1));
	cr_assert_eq(nets[0].n_got, got0);
}

/* Node 3 is the impostor: it opens with its context, nodes 1 and 2 are
 * genuine. For 1.5 s, frames from 3 are offered to both; none may arrive,
 * no link to 3 may come up, while 1 and 2 talk. */
static void impostor_refused(SSL_CTX *impostor)
{
	for (uint32_t i = 0; i < 2; i++)
		open_node(i, node_ctx("ca", i + 1, i + 1));
	open_node(2, impostor);
	int64_t end = now_ms() + 1500;
	while (now_ms() < end) {
		uint8_t frame[] = {0, 0, 0, 4, 0x12, 0x02, 0x08, 0x07}; /* raft {type: 7} */
		peer_send(nets[2].n, 1, frame, sizeof(frame));
		peer_send(nets[2].n, 2, frame, sizeof(frame));
		cr_assert_not(peer_connected(nets[0].n, 3), "node 1 took the impostor for node 3");
		cr_assert_not(peer_connected(nets[1].n, 3), "node 2 took the impostor for node 3");
		pump_once(10);
	}
	cr_assert_eq(nets[0].n_got + nets[1].n_got, 0, "a frame of the impostor arrived");
	cr_assert_eq(peer_last_rx_ms(nets[0].n, 3), 0);
	cr_assert_eq(peer_last_rx_ms(nets[1].n, 3), 0);
	cr_assert(peer_connected(nets[0].n, 2) && peer_connected(nets[1].n, 1), "1 and 2 talk");
}

Test(peer_tls, certificate_from_another_ca_is_refused)
{
	k_nets = 3;
	setup_addrs(3);
	make_certs();
	impostor_refused(node_ctx("other", 3, 3));
}

Test(peer_tls, another_nodes_certificate_is_refused)
{
	k_nets = 3;
	setup_addrs(3);
	make_certs();
	impostor_refused(node_ctx("ca", 3, 2)); /* node 3 presents node 2's certificate */
}

Test(peer_tls, certificate_naming_no_node_is_refused)
{
	k_nets = 3;
	setup_addrs(3);
	make_certs();
	impostor_refused(raw_ctx("nonode.pem", "nonode.key"));
}

Test(peer_tls, plain_hello_to_a_tls_node_is_refused)
{
	k_nets = 3;
	setup_addrs(3);
	make_certs();
	open_node(1, node_ctx("ca", 2, 2));
	raw_refused(addrs[1].port, 1, CLUSTER_ID, "close of a plain link");
	cr_assert_eq(nets[1].n_got, 0);
}

Test(peer_tls, unusable_node_certificates_are_config_errors)
{
	struct config c;
	SSL_CTX *tls;
	char err[512];
	make_certs();
	tls_config(&c, 1, "ca/node2.pem", "ca/node2.key", "ca/ca.pem");
	cr_assert_eq(tls_peer_ctx_new(&c, &tls, err, sizeof(err)), SL_ECONFIG);
	cr_assert(strstr(err, "must name this node: subjectAltName URI:sluice:node:1 (it names another node)"), "%s", err);
	cr_assert_null(tls);
	tls_config(&c, 1, "nonode.pem", "nonode.key", "ca/ca.pem");
	cr_assert_eq(tls_peer_ctx_new(&c, &tls, err, sizeof(err)), SL_ECONFIG);
	cr_assert(strstr(err, "(it names no node)"), "%s", err);
	tls_config(&c, 1, "server.pem", "server.key", "ca/ca.pem");
	cr_assert_eq(tls_peer_ctx_new(&c, &tls, err, sizeof(err)), SL_ECONFIG);
	cr_assert(strstr(err, "extendedKeyUsage must allow both serverAuth and clientAuth"), "%s", err);
	tls_config(&c, 1, "ca/node1.pem", "ca/node1.key", NULL);
	cr_assert_eq(tls_peer_ctx_new(&c, &tls, err, sizeof(err)), SL_ECONFIG);
	cr_assert(strstr(err, "set tls.ca (or tls.peer_ca)"), "%s", err);
	tls_config(&c, 3, "other/node3.pem", "other/node3.key", "ca/ca.pem");
	cr_assert_eq(tls_peer_ctx_new(&c, &tls, err, sizeof(err)), SL_ECONFIG);
	cr_assert(strstr(err, "is not issued by a CA of tls.ca"), "%s", err);
	/* peer_* files take the place of cert, key and ca */
	tls_config(&c, 1, "server.pem", "server.key", "other/ca.pem");
	snprintf(c.tls_peer_cert, sizeof(c.tls_peer_cert), "%s/ca/node1.pem", cert_dir);
	snprintf(c.tls_peer_key, sizeof(c.tls_peer_key), "%s/ca/node1.key", cert_dir);
	snprintf(c.tls_peer_ca, sizeof(c.tls_peer_ca), "%s/ca/ca.pem", cert_dir);
	cr_assert_eq(tls_peer_ctx_new(&c, &tls, err, sizeof(err)), SL_OK, "%s", err);
	SSL_CTX_free(tls);
	/* a node alone has no peer links */
	c.cluster_n = 0;
	cr_assert_eq(tls_peer_ctx_new(&c, &tls, err, sizeof(err)), SL_OK);
	cr_assert_null(tls);
}

Test(peer, codec_round_trip)
{
	uint8_t d1[] = "first entry", big[70000];
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 7);
	struct raft_entry ents[3] = {
	    {.term = 5, .index = 10, .type = RAFT_ENTRY_NORMAL, .len = sizeof(d1), .data = d1},
	    {.term = 5, .index = 11, .type = RAFT_ENTRY_NOOP, .len = 0, .data = NULL},
	    {.term = 6, .index = 12, .type = RAFT_ENTRY_NORMAL, .len = sizeof(big), .data = big},
	};
	struct raft_msg m = {.type = RAFT_MSG_APPEND, .group = 0, .from = 1, .to = 3, .term = 6, .log_term = 5,
			     .index = 9, .commit = 8, .reject_hint = 4, .reject = 1, .force = 1, .entries = ents,
			     .n_entries = 3};
	uint8_t *buf;
	size_t len;
	cr_assert_eq(peer_encode_raft(&m, NULL, 0, 0, 0, &buf, &len), SL_OK);
	cr_assert_eq(be_get32(buf), len - 4);
	struct peer_frame f;
	cr_assert_eq(peer_decode(buf + 4, len - 4, &f), SL_OK);
	cr_assert_eq(f.kind, PEER_FRAME_RAFT);
	cr_assert_eq(f.raft.type, RAFT_MSG_APPEND);
	cr_assert_eq(f.raft.from, 1);
	cr_assert_eq(f.raft.to, 3);
	cr_assert_eq(f.raft.term, 6);
	cr_assert_eq(f.raft.log_term, 5);
	cr_assert_eq(f.raft.index, 9);
	cr_assert_eq(f.raft.commit, 8);
	cr_assert_eq(f.raft.reject_hint, 4);
	cr_assert_eq(f.raft.reject, 1);
	cr_assert_eq(f.raft.force, 1);
	cr_assert_eq(f.raft.n_entries, 3);
	cr_assert_eq(f.raft.entries, f.entries);
	for (size_t i = 0; i < 3; i++) {
		cr_assert_eq(f.entries[i].term, ents[i].term);
		cr_assert_eq(f.entries[i].index, ents[i].index);
		cr_assert_eq(f.entries[i].type, ents[i].type);
		cr_assert_eq(f.entries[i].len, ents[i].len);
		if (ents[i].len)
			cr_assert_eq(memcmp(f.entries[i].data, ents[i].data, ents[i].len), 0);
	}
	cr_assert_null(f.snap_chunk);
	peer_frame_free(&f);
	free(buf);

	/* a snapshot chunk */
	struct raft_msg s = {.type = RAFT_MSG_SNAPSHOT, .from = 2, .to = 1, .term = 9, .index = 500, .log_term = 8};
	cr_assert_eq(peer_encode_raft(&s, big, 4096, 1 << 20, 1, &buf, &len), SL_OK);
	cr_assert_eq(peer_decode(buf + 4, len - 4, &f), SL_OK);
	cr_assert_eq(f.raft.type, RAFT_MSG_SNAPSHOT);
	cr_assert_eq(f.raft.n_entries, 0);
	cr_assert_eq(f.raft.index, 500);
	cr_assert_eq(f.snap_offset, 1 << 20);
	cr_assert_eq(f.snap_len, 4096);
	cr_assert_eq(f.snap_last, 1);
	cr_assert_eq(memcmp(f.snap_chunk, big, 4096), 0);
	peer_frame_free(&f);
	free(buf);

	cr_assert_eq(peer_encode_forward(3, big, sizeof(big), &buf, &len), SL_OK);
	cr_assert_eq(peer_decode(buf + 4, len - 4, &f), SL_OK);
	cr_assert_eq(f.kind, PEER_FRAME_FORWARD);
	cr_assert_eq(f.origin_node, 3);
	cr_assert_eq(f.records_len, sizeof(big));
	cr_assert_eq(memcmp(f.records, big, sizeof(big)), 0);
	peer_frame_free(&f);
	free(buf);

	cr_assert_eq(peer_encode_transfer(2, &buf, &len), SL_OK);
	cr_assert_eq(peer_decode(buf + 4, len - 4, &f), SL_OK);
	cr_assert_eq(f.kind, PEER_FRAME_TRANSFER);
	cr_assert_eq(f.transfer_to, 2);
	peer_frame_free(&f);
	free(buf);
}

Test(peer, decode_rejects_garbage)
{
	struct peer_frame f;
	uint8_t empty[1] = {0};
	cr_assert_eq(peer_decode(empty, 0, &f), SL_EMALFORMED, "no body");
	cr_assert_null(f.pb);
	uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x02};
	cr_assert_eq(peer_decode(junk, sizeof(junk), &f), SL_EMALFORMED);
	uint8_t trunc[] = {0x12, 0x10, 0x08, 0x05}; /* raft, length past the end */
	cr_assert_eq(peer_decode(trunc, sizeof(trunc), &f), SL_EMALFORMED);
	uint8_t hello[] = {0x0a, 0x02, 0x08, 0x01}; /* a hello is not for on_frame */
	cr_assert_eq(peer_decode(hello, sizeof(hello), &f), SL_EMALFORMED);
	uint8_t wrongtype[] = {0x12, 0x02, 0x0a, 0x00}; /* raft.type as bytes */
	cr_assert_eq(peer_decode(wrongtype, sizeof(wrongtype), &f), SL_EMALFORMED);
	uint8_t rnd[512];
	for (uint32_t seed = 1; seed < 2000; seed++) {
		uint8_t *p = pattern(sizeof(rnd), seed);
		size_t n = seed % sizeof(rnd);
		int rc = peer_decode(p, n, &f);
		cr_assert(rc == SL_OK || rc == SL_EMALFORMED);
		if (rc == SL_OK)
			peer_frame_free(&f);
		else
			cr_assert_null(f.pb);
		free(p);
	}
	/* a frame that is fine still decodes */
	uint8_t transfer[] = {0x22, 0x02, 0x08, 0x03};
	cr_assert_eq(peer_decode(transfer, sizeof(transfer), &f), SL_OK);
	cr_assert_eq(f.kind, PEER_FRAME_TRANSFER);
	cr_assert_eq(f.transfer_to, 3);
	peer_frame_free(&f);
}
