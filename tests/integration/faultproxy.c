/*
 * faultproxy.c: the fault-injecting TCP proxy of the cluster tests (see
 * faultproxy.h). Every libevent call happens on the proxy thread: the test
 * thread only writes wanted modes and new listening sockets under the mutex
 * and bumps a generation; a 2 ms tick on the proxy thread applies them and
 * reports the generation back. No evthread locking is needed that way.
 *
 * A connection pair has side a (accepted from the connecting node) and side
 * b (our connection to the target). Bytes read on one side are written to
 * the other, through a queue of timestamped chunks when delayed. When one
 * side ends, what was already read is still delivered, then the pair closes.
 */
#define _GNU_SOURCE
#include "faultproxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define FP_TICK_US 2000
#define FP_OUT_HIGH_BYTES (1u << 20)
#define FP_OUT_LOW_BYTES (256u << 10)
#define FP_APPLY_WAIT_MS 5000

struct fp_chunk {
	TAILQ_ENTRY(fp_chunk) link;
	struct evbuffer *buf;
	long long due_ms;
};
TAILQ_HEAD(fp_chunks, fp_chunk);

struct fp_conn;

struct fp_side {
	struct bufferevent *bev; /* NULL once this side ended */
	struct fp_conn *conn;
	struct fp_side *other;
	struct fp_chunks q; /* read here, waiting to go to other */
	struct event *delay_ev;
	int to_target; /* bytes read here go to the target */
};

struct fp_link;

struct fp_conn {
	LIST_ENTRY(fp_conn) link;
	struct fp_link *l;
	struct fp_side a, b;
	int closing;
};

struct fp_link {
	struct faultproxy *fp;
	int id;
	int fd; /* listening socket until the proxy thread adopts it */
	uint16_t port, target;
	struct evconnlistener *lis;
	enum fp_mode mode;
	uint32_t delay_ms;
	LIST_HEAD(, fp_conn) conns;
	struct fp_link_stats st; /* updated with __atomic on the proxy thread */
};

struct faultproxy {
	pthread_t th;
	pthread_mutex_t mu;
	struct event_base *base;
	struct event *tick;
	int started;
	/* under mu */
	int links_n;
	enum fp_mode want_mode[FAULTPROXY_LINKS_MAX];
	uint32_t want_delay[FAULTPROXY_LINKS_MAX];
	uint64_t gen, applied_gen;
	int stop;
	/* proxy thread */
	int adopted_n;
	struct fp_link links[FAULTPROXY_LINKS_MAX];
};

static long long fp_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void fp_add(uint64_t *v, uint64_t n)
{
	__atomic_add_fetch(v, n, __ATOMIC_RELAXED);
}

/* ---- connection pairs ---- */

static void side_drop_queue(struct fp_side *s)
{
	struct fp_chunk *k;

	while ((k = TAILQ_FIRST(&s->q)) != NULL) {
		TAILQ_REMOVE(&s->q, k, link);
		evbuffer_free(k->buf);
		free(k);
	}
}

static void side_clear(struct fp_side *s)
{
	side_drop_queue(s);
	if (s->delay_ev)
		event_free(s->delay_ev);
	s->delay_ev = NULL;
	if (s->bev)
		bufferevent_free(s->bev);
	s->bev = NULL;
}

static void conn_free(struct fp_conn *c)
{
	LIST_REMOVE(c, link);
	side_clear(&c->a);
	side_clear(&c->b);
	__atomic_sub_fetch(&c->l->st.open, 1, __ATOMIC_RELAXED);
	free(c);
}

/* A closing pair goes once what was read has been written out. */
static void conn_maybe_finish(struct fp_conn *c)
{
	struct fp_side *s[2] = {&c->a, &c->b};

	if (!c->closing)
		return;
	for (int i = 0; i < 2; i++) {
		struct fp_side *dst = s[i]->other;
		if (!dst->bev)
			continue;
		if (!TAILQ_EMPTY(&s[i]->q) || evbuffer_get_length(bufferevent_get_output(dst->bev)) > 0)
			return;
	}
	conn_free(c);
}

static void side_count(struct fp_side *s, size_t n)
{
	fp_add(s->to_target ? &s->conn->l->st.bytes_fwd : &s->conn->l->st.bytes_back, n);
}

/* Write due chunks of s to the other side; rearm for the next one. */
static void side_flush(struct fp_side *s)
{
	struct fp_chunk *c;
	long long now = fp_now_ms();

	while ((c = TAILQ_FIRST(&s->q)) != NULL && c->due_ms <= now) {
		TAILQ_REMOVE(&s->q, c, link);
		if (s->other->bev) {
			side_count(s, evbuffer_get_length(c->buf));
			evbuffer_add_buffer(bufferevent_get_output(s->other->bev), c->buf);
		}
		evbuffer_free(c->buf);
		free(c);
	}
	if (c) {
		long long left = c->due_ms - now;
		struct timeval tv = {(time_t)(left / 1000), (suseconds_t)(left % 1000) * 1000};
		evtimer_add(s->delay_ev, &tv);
	}
}

static void side_delay_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fp_side *s = arg;

	(void)fd;
	(void)what;
	side_flush(s);
	conn_maybe_finish(s->conn);
}

static void side_read_cb(struct bufferevent *bev, void *arg)
{
	struct fp_side *s = arg;
	struct fp_link *l = s->conn->l;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer *out;

	if (l->mode == FP_DROP || l->mode == FP_BLACKHOLE || !s->other->bev) {
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	if (l->mode == FP_DELAY || !TAILQ_EMPTY(&s->q)) {
		struct fp_chunk *c = calloc(1, sizeof(*c));
		if (!c || !(c->buf = evbuffer_new())) {
			free(c);
			return;
		}
		evbuffer_add_buffer(c->buf, in);
		c->due_ms = fp_now_ms() + (l->mode == FP_DELAY ? l->delay_ms : 0);
		TAILQ_INSERT_TAIL(&s->q, c, link);
		side_flush(s);
	} else {
		side_count(s, evbuffer_get_length(in));
		evbuffer_add_buffer(bufferevent_get_output(s->other->bev), in);
	}
	out = bufferevent_get_output(s->other->bev);
	if (evbuffer_get_length(out) > FP_OUT_HIGH_BYTES)
		bufferevent_disable(bev, EV_READ);
}

/* The output of s drained below the low mark: let the other side read again. */
static void side_write_cb(struct bufferevent *bev, void *arg)
{
	struct fp_side *s = arg;

	(void)bev;
	if (s->conn->closing) {
		conn_maybe_finish(s->conn);
		return;
	}
	if (s->other->bev)
		bufferevent_enable(s->other->bev, EV_READ);
}

static void side_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct fp_side *s = arg;
	struct fp_conn *c = s->conn;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED)
		return;
	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
		return;
	/* This side ended: what was still to be written to it is lost; what
	 * it sent is delivered (s->q keeps flushing), then the pair closes. */
	bufferevent_free(s->bev);
	s->bev = NULL;
	side_drop_queue(s->other);
	c->closing = 1;
	if (s->other->bev)
		bufferevent_disable(s->other->bev, EV_READ);
	conn_maybe_finish(c);
}

static int side_init(struct fp_side *s, struct fp_conn *c, struct fp_side *other, struct bufferevent *bev,
                     int to_target)
{
	s->bev = bev;
	s->conn = c;
	s->other = other;
	s->to_target = to_target;
	TAILQ_INIT(&s->q);
	s->delay_ev = evtimer_new(c->l->fp->base, side_delay_cb, s);
	if (!s->delay_ev)
		return -1;
	bufferevent_setcb(bev, side_read_cb, side_write_cb, side_event_cb, s);
	bufferevent_setwatermark(bev, EV_WRITE, FP_OUT_LOW_BYTES, 0);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	return 0;
}

static int connect_target(struct fp_link *l, struct bufferevent **out)
{
	struct sockaddr_in sa = {0};
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	*out = NULL;
	if (fd < 0)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	*out = bufferevent_socket_new(l->fp->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!*out) {
		close(fd);
		return -1;
	}
	sa.sin_family = AF_INET;
	sa.sin_port = htons(l->target);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	/* A refused connect shows up as BEV_EVENT_ERROR later, or fails now. */
	if (bufferevent_socket_connect(*out, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		return -1;
	return 0;
}

static void link_accept_cb(struct evconnlistener *lis, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	struct fp_link *l = arg;
	struct bufferevent *a = NULL, *b = NULL;
	struct fp_conn *c;
	int one = 1;

	(void)lis;
	(void)sa;
	(void)salen;
	fp_add(&l->st.accepted, 1);
	if (l->mode == FP_DROP) {
		fp_add(&l->st.refused, 1);
		close(fd);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c = calloc(1, sizeof(*c));
	a = bufferevent_socket_new(l->fp->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!c || !a) {
		if (a)
			bufferevent_free(a);
		else
			close(fd);
		free(c);
		return;
	}
	c->l = l;
	TAILQ_INIT(&c->a.q);
	TAILQ_INIT(&c->b.q);
	c->a.conn = c->b.conn = c;
	c->a.other = &c->b;
	c->b.other = &c->a;
	LIST_INSERT_HEAD(&l->conns, c, link);
	__atomic_add_fetch(&l->st.open, 1, __ATOMIC_RELAXED);
	if (l->mode == FP_BLACKHOLE) {
		/* Accepted, never forwarded: the connecting side hears nothing. */
		if (side_init(&c->a, c, &c->b, a, 1) != 0)
			conn_free(c);
		return;
	}
	if (connect_target(l, &b) != 0) {
		if (b)
			bufferevent_free(b);
		c->a.bev = a;
		conn_free(c);
		return;
	}
	if (side_init(&c->a, c, &c->b, a, 1) != 0 || side_init(&c->b, c, &c->a, b, 0) != 0)
		conn_free(c);
}

/* ---- applying the test thread's wishes ---- */

static void link_close_all(struct fp_link *l)
{
	struct fp_conn *c;

	while ((c = LIST_FIRST(&l->conns)) != NULL)
		conn_free(c);
}

static void link_apply(struct fp_link *l, enum fp_mode mode, uint32_t delay_ms)
{
	struct fp_conn *c;
	enum fp_mode was = l->mode;

	l->mode = mode;
	l->delay_ms = delay_ms;
	if (mode == FP_DROP || was == FP_BLACKHOLE) {
		link_close_all(l);
		return;
	}
	LIST_FOREACH(c, &l->conns, link)
	{
		struct fp_side *s[2] = {&c->a, &c->b};
		for (int i = 0; i < 2; i++) {
			struct fp_chunk *k;
			if (mode == FP_BLACKHOLE) {
				side_drop_queue(s[i]);
				continue;
			}
			/* Out of a delay: queued chunks go now, in order. */
			if (mode == FP_PASS)
				TAILQ_FOREACH(k, &s[i]->q, link)
			k->due_ms = 0;
			side_flush(s[i]);
		}
	}
}

static void fp_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct faultproxy *fp = arg;
	enum fp_mode modes[FAULTPROXY_LINKS_MAX];
	uint32_t delays[FAULTPROXY_LINKS_MAX];
	uint64_t gen;
	int n, stop;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&fp->mu);
	n = fp->links_n;
	gen = fp->gen;
	stop = fp->stop;
	memcpy(modes, fp->want_mode, sizeof(modes));
	memcpy(delays, fp->want_delay, sizeof(delays));
	pthread_mutex_unlock(&fp->mu);
	if (stop) {
		event_base_loopbreak(fp->base);
		return;
	}
	for (; fp->adopted_n < n; fp->adopted_n++) {
		struct fp_link *l = &fp->links[fp->adopted_n];
		l->lis = evconnlistener_new(fp->base, link_accept_cb, l, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
		                            -1, l->fd);
		if (!l->lis)
			fprintf(stderr, "faultproxy: cannot listen for link %d\n", l->id);
	}
	for (int i = 0; i < n; i++)
		if (fp->links[i].mode != modes[i] || fp->links[i].delay_ms != delays[i])
			link_apply(&fp->links[i], modes[i], delays[i]);
	pthread_mutex_lock(&fp->mu);
	fp->applied_gen = gen;
	pthread_mutex_unlock(&fp->mu);
}

static void *fp_thread(void *arg)
{
	struct faultproxy *fp = arg;

	event_base_dispatch(fp->base);
	for (int i = 0; i < fp->adopted_n; i++) {
		link_close_all(&fp->links[i]);
		if (fp->links[i].lis)
			evconnlistener_free(fp->links[i].lis);
		fp->links[i].lis = NULL;
	}
	return NULL;
}

/* ---- test thread API ---- */

int faultproxy_new(struct faultproxy **out)
{
	struct faultproxy *fp = calloc(1, sizeof(*fp));
	struct timeval tv = {0, FP_TICK_US};

	*out = NULL;
	if (!fp)
		return -1;
	pthread_mutex_init(&fp->mu, NULL);
	fp->base = event_base_new();
	if (!fp->base)
		goto fail;
	fp->tick = event_new(fp->base, -1, EV_PERSIST, fp_tick_cb, fp);
	if (!fp->tick || event_add(fp->tick, &tv) != 0)
		goto fail;
	if (pthread_create(&fp->th, NULL, fp_thread, fp) != 0)
		goto fail;
	fp->started = 1;
	*out = fp;
	return 0;
fail:
	faultproxy_free(fp);
	return -1;
}

void faultproxy_free(struct faultproxy *fp)
{
	if (!fp)
		return;
	if (fp->started) {
		pthread_mutex_lock(&fp->mu);
		fp->stop = 1;
		pthread_mutex_unlock(&fp->mu);
		pthread_join(fp->th, NULL);
	}
	for (int i = fp->adopted_n; i < fp->links_n; i++)
		close(fp->links[i].fd);
	if (fp->tick)
		event_free(fp->tick);
	if (fp->base)
		event_base_free(fp->base);
	pthread_mutex_destroy(&fp->mu);
	free(fp);
}

/* Bump the generation and wait until the proxy thread has applied it. */
static void fp_commit_locked_and_wait(struct faultproxy *fp)
{
	long long deadline = fp_now_ms() + FP_APPLY_WAIT_MS;
	uint64_t gen = ++fp->gen;

	pthread_mutex_unlock(&fp->mu);
	for (;;) {
		uint64_t done;
		pthread_mutex_lock(&fp->mu);
		done = fp->applied_gen;
		pthread_mutex_unlock(&fp->mu);
		if (done >= gen)
			return;
		if (fp_now_ms() >= deadline) {
			fprintf(stderr, "faultproxy: change %llu not applied in %d ms\n", (unsigned long long)gen,
			        FP_APPLY_WAIT_MS);
			return;
		}
		usleep(500);
	}
}

static int listen_free_port(uint16_t *port)
{
	struct sockaddr_in sa = {0};
	socklen_t len = sizeof(sa);
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 128) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
		close(fd);
		return -1;
	}
	*port = ntohs(sa.sin_port);
	return fd;
}

int faultproxy_add_link(struct faultproxy *fp, uint16_t target_port, uint16_t *listen_port)
{
	struct fp_link *l;
	int id, fd;

	pthread_mutex_lock(&fp->mu);
	id = fp->links_n;
	pthread_mutex_unlock(&fp->mu);
	if (id >= FAULTPROXY_LINKS_MAX)
		return -1;
	fd = listen_free_port(listen_port);
	if (fd < 0)
		return -1;
	/* The proxy thread reads links[id] only after links_n covers it. */
	l = &fp->links[id];
	memset(l, 0, sizeof(*l));
	l->fp = fp;
	l->id = id;
	l->fd = fd;
	l->port = *listen_port;
	l->target = target_port;
	l->mode = FP_PASS;
	LIST_INIT(&l->conns);
	pthread_mutex_lock(&fp->mu);
	fp->want_mode[id] = FP_PASS;
	fp->want_delay[id] = 0;
	fp->links_n = id + 1;
	fp_commit_locked_and_wait(fp);
	return id;
}

void faultproxy_set(struct faultproxy *fp, int link, enum fp_mode mode, uint32_t delay_ms)
{
	pthread_mutex_lock(&fp->mu);
	if (link < 0 || link >= fp->links_n) {
		pthread_mutex_unlock(&fp->mu);
		return;
	}
	fp->want_mode[link] = mode;
	fp->want_delay[link] = mode == FP_DELAY ? delay_ms : 0;
	fp_commit_locked_and_wait(fp);
}

void faultproxy_heal(struct faultproxy *fp)
{
	pthread_mutex_lock(&fp->mu);
	for (int i = 0; i < fp->links_n; i++) {
		fp->want_mode[i] = FP_PASS;
		fp->want_delay[i] = 0;
	}
	fp_commit_locked_and_wait(fp);
}

void faultproxy_stats(struct faultproxy *fp, int link, struct fp_link_stats *st)
{
	struct fp_link_stats *s;

	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&fp->mu);
	if (link < 0 || link >= fp->links_n) {
		pthread_mutex_unlock(&fp->mu);
		return;
	}
	pthread_mutex_unlock(&fp->mu);
	s = &fp->links[link].st;
	st->accepted = __atomic_load_n(&s->accepted, __ATOMIC_RELAXED);
	st->refused = __atomic_load_n(&s->refused, __ATOMIC_RELAXED);
	st->bytes_fwd = __atomic_load_n(&s->bytes_fwd, __ATOMIC_RELAXED);
	st->bytes_back = __atomic_load_n(&s->bytes_back, __ATOMIC_RELAXED);
	st->open = __atomic_load_n(&s->open, __ATOMIC_RELAXED);
}
