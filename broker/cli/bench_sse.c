/*
 * bench_sse.c: `sluice bench sse`, Server-Sent Events fan-out on one node.
 *
 * Opens N event streams (GET /v1/topics/T/events?format=raw) on the node's
 * HTTP listener with libevent bufferevents, a bounded number connecting at
 * a time, and waits until every one is streaming (200, text/event-stream).
 * Then it reads the frontends' RSS again (memory per idle subscriber is the
 * growth divided by N), and publishes through libsluice on the native port
 * at --rate messages/s. Each payload is text, "SEQ SEND_NS " padded with
 * 'x' to --size, so a subscriber checks order, gaps and duplicates with one
 * counter (the topic has one partition, so every stream is in publish
 * order) and times publish -> delivery on the monotonic clock.
 *
 * Cheap per connection by design: a subscriber is a bufferevent and a few
 * counters; only `data:` lines are looked at, in place in the input buffer
 * (a line is made contiguous only when it spans two chains). Latencies go
 * into a log-linear histogram (1/256 relative precision), not an array:
 * 10,000 subscribers at 1,000 msg/s are 10 M samples a second.
 *
 * `sluice bench ws` is the same fan-out over WebSocket: each subscriber is a
 * connection to /v1/ws (subprotocol sluice.v1.json) that subscribes from
 * latest without credit; it counts as streaming once `subscribed` came, and
 * an event is the `payload` of a `message` op in a server text frame.
 * With --publish-window W the connections publish instead: each keeps W
 * `publish` ops in flight (--count messages in all, sent as fast as acks
 * come back) and the bench reports publishes/s and publish->ack latency.
 *
 * Frontend processes are the master's children named "sluice-fe-*"; found
 * from --pid, else from the processes holding the HTTP listening socket
 * (/proc/net/tcp, /proc/PID/fd). RSS is VmRSS: kernel socket buffers are
 * not in it.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/util.h>
#include <jansson.h>
#include <sodium.h>

#include "cli.h"
#include "sl_assert.h"
#include "sluice/sluice.h"

#define SSE_SUBSCRIBERS_DEFAULT 10000
#define SSE_SUBSCRIBERS_MAX 1000000
#define SSE_RATE_DEFAULT 1000
#define SSE_DURATION_DEFAULT_S 20.0
#define SSE_SIZE_DEFAULT 100
#define SSE_SIZE_MIN 48              /* "SEQ SEND_NS " in decimal */
#define SSE_SIZE_MAX 65536
#define SSE_CONNECTING_MAX 200       /* connections being set up at once */
#define SSE_ATTEMPTS_MAX 5           /* per subscriber, before it counts as failed */
#define SSE_HEADER_BYTES_MAX 4096
#define SSE_LINE_BYTES_MAX (SSE_SIZE_MAX + 1024)
#define SSE_INPUT_HIGH_BYTES (256 * 1024) /* stop reading a socket above this much unparsed input */
#define SSE_SETUP_TIMEOUT_S 10       /* connect and response headers, per attempt */
#define SSE_CONNECT_PHASE_MS 180000
#define SSE_SETTLE_MS 1000           /* idle before the second RSS reading */
#define SSE_DRAIN_MS 30000           /* after the last publish, wait this long for deliveries */
#define SSE_INFLIGHT_MAX 1000        /* unacknowledged publishes */
#define SSE_FRONTENDS_MAX 64
#define HIST_SUB 256                 /* linear sub-buckets per power of two */
#define HIST_BUCKETS (57 * HIST_SUB)

enum sse_state { SS_IDLE, SS_SETUP, SS_STREAMING, SS_DEAD };

struct bench_sse;

struct sse_sub {
	struct bench_sse *b;
	struct bufferevent *bev;
	uint64_t next;             /* sequence number expected next */
	uint64_t got, dups;        /* distinct events received; events received again */
	uint8_t state;
	uint8_t attempts;
	uint8_t freeing;           /* on the dead list */
	uint8_t was_streaming;
	uint8_t upgraded;          /* ws: 101 came, waiting for `subscribed` */
};

struct bench_sse {
	const struct cli_global *g;
	int ws;                    /* `bench ws`: WebSocket subscribers */
	uint32_t pub_window;       /* `bench ws --publish-window W`: publishers over WebSocket instead */
	uint64_t *sent_ns;         /* ws publishers: send time per message id */
	char topic[128];
	char http[128];
	uint32_t n, size, linger_ms;
	uint64_t rate, count;
	double duration_s;
	pid_t master_pid;
	struct sockaddr_storage sa;
	int salen;
	char path[512];
	struct event_base *base;
	struct sse_sub *subs;
	uint32_t next_idle, setting_up, streaming, failed, dropped;
	uint32_t *dead;            /* subscribers whose bufferevent is freed by reap_ev */
	uint32_t dead_n;
	uint64_t progress;         /* sum of every subscriber's next */
	uint64_t dups, malformed;
	struct sluice_client *pc;
	uint8_t *payload;
	uint64_t sent, acked, pub_failed, target;
	int stop_publishing, first_err, phase_done;
	uint64_t t_connect0, t_connect1, t_pub0, t_pub1, t_end;
	uint64_t hist[HIST_BUCKETS];
	uint64_t lat_n, lat_max;
	struct event *reap_ev, *pace_ev, *drain_ev, *phase_ev, *duration_ev;
	pid_t fe[SSE_FRONTENDS_MAX];
	size_t fe_n;
	long long rss_before_kb, rss_after_kb, self_before_kb, self_after_kb;
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void bench_sse_usage(FILE *f)
{
	fprintf(f, "usage: sluice bench sse|ws [--subscribers N] [--rate R] [--duration S | --count N] [--size BYTES]\n"
		   "                        [--topic T] [--http HOST:PORT] [--pid MASTER_PID] [--linger-ms MS]\n"
		   "  Opens N Server-Sent Events streams (default %d) on the node's HTTP listener (--http,\n"
		   "  default 127.0.0.1:8400), waits until all stream, then publishes R msg/s (default %d)\n"
		   "  through --server for --duration S (default %.0f) or --count N messages of --size bytes\n"
		   "  (default %d, at least %d; --linger-ms: libsluice batching, default 0: none).\n"
		   "  Reports deliveries per subscriber (missing and duplicate events are errors: exit\n"
		   "  status 65), publish->delivery latency, connect time and the frontends' RSS growth\n"
		   "  per idle subscriber (the frontends of --pid, else found from the HTTP port).\n"
		   "  `bench ws`: the subscribers are WebSockets (/v1/ws, sluice.v1.json) instead; with\n"
		   "  --publish-window W the N connections publish --count messages over WebSocket\n"
		   "  instead, W in flight each, and it reports publishes/s and publish->ack latency.\n"
		   "  The streams and WebSockets are plain HTTP only (no TLS); the publisher follows\n"
		   "  --tls-ca like every command.\n",
		SSE_SUBSCRIBERS_DEFAULT, SSE_RATE_DEFAULT, SSE_DURATION_DEFAULT_S, SSE_SIZE_DEFAULT, SSE_SIZE_MIN);
}

/* ---------- latency histogram (microseconds, log-linear) ---------- */

static size_t hist_index(uint64_t us)
{
	if (us < HIST_SUB)
		return (size_t)us;
	int k = 63 - __builtin_clzll(us); /* k >= 8 */
	size_t i = (size_t)(k - 7) * HIST_SUB + (size_t)((us >> (k - 8)) - HIST_SUB);
	return i < HIST_BUCKETS ? i : HIST_BUCKETS - 1;
}

/* The middle of bucket i, in microseconds. */
static double hist_value_us(size_t i)
{
	if (i < HIST_SUB)
		return (double)i;
	int k = (int)(i / HIST_SUB) + 7;
	uint64_t lo = (uint64_t)(i % HIST_SUB + HIST_SUB) << (k - 8);
	return (double)lo + (double)(1ull << (k - 8)) / 2.0;
}

static void hist_add(struct bench_sse *b, uint64_t ns)
{
	b->hist[hist_index(ns / 1000)]++;
	b->lat_n++;
	if (ns > b->lat_max)
		b->lat_max = ns;
}

static double hist_pct_ms(const struct bench_sse *b, double pct)
{
	uint64_t want = (uint64_t)(pct / 100.0 * (double)b->lat_n), seen = 0;
	for (size_t i = 0; i < HIST_BUCKETS; i++) {
		seen += b->hist[i];
		if (seen > want)
			return hist_value_us(i) / 1000.0;
	}
	return (double)b->lat_max / 1e6;
}

/* ---------- frontend RSS ---------- */

static long long proc_rss_kb(pid_t pid)
{
	char path[64], line[256];
	long long kb = -1;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %lld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

static int proc_is_frontend(pid_t pid)
{
	char path[64], comm[32] = "";
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	int ok = fgets(comm, sizeof(comm), f) != NULL;
	fclose(f);
	return ok && (!strncmp(comm, "sluice-fe", 9) || !strncmp(comm, "frontend", 8));
}

/* The frontends among the master's children. */
static void fe_from_master(struct bench_sse *b)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)b->master_pid, (int)b->master_pid);
	FILE *f = fopen(path, "r");
	int pid;
	if (!f)
		return;
	while (b->fe_n < SSE_FRONTENDS_MAX && fscanf(f, "%d", &pid) == 1)
		if (proc_is_frontend(pid))
			b->fe[b->fe_n++] = pid;
	fclose(f);
}

/* Inodes of the sockets listening on port (IPv4 and IPv6). */
static size_t listen_inodes(uint16_t port, unsigned long *ino, size_t max)
{
	static const char *const files[] = {"/proc/net/tcp", "/proc/net/tcp6"};
	char line[512], local[128];
	size_t n = 0;
	for (size_t k = 0; k < 2; k++) {
		FILE *f = fopen(files[k], "r");
		if (!f)
			continue;
		while (n < max && fgets(line, sizeof(line), f)) {
			unsigned st, lport;
			unsigned long inode;
			if (sscanf(line, " %*d: %127s %*s %x %*s %*s %*s %*s %*s %lu", local, &st, &inode) != 3)
				continue;
			char *colon = strrchr(local, ':');
			if (colon && sscanf(colon + 1, "%x", &lport) == 1 && lport == port && st == 0x0A)
				ino[n++] = inode;
		}
		fclose(f);
	}
	return n;
}

static int pid_holds(pid_t pid, const unsigned long *ino, size_t n)
{
	char path[64], link[64], want[64];
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	DIR *d = opendir(path);
	struct dirent *e;
	int found = 0;
	if (!d)
		return 0;
	while (!found && (e = readdir(d))) {
		ssize_t len = readlinkat(dirfd(d), e->d_name, link, sizeof(link) - 1);
		if (len <= 0)
			continue;
		link[len] = '\0';
		for (size_t i = 0; i < n && !found; i++) {
			snprintf(want, sizeof(want), "socket:[%lu]", ino[i]);
			found = !strcmp(link, want);
		}
	}
	closedir(d);
	return found;
}

/* Frontends that hold the HTTP listening socket (they inherit it from the master). */
static void fe_from_port(struct bench_sse *b, uint16_t port)
{
	unsigned long ino[8];
	size_t n = listen_inodes(port, ino, 8);
	DIR *d = n ? opendir("/proc") : NULL;
	struct dirent *e;
	if (!d)
		return;
	while (b->fe_n < SSE_FRONTENDS_MAX && (e = readdir(d))) {
		pid_t pid = (pid_t)atoi(e->d_name);
		if (pid > 0 && proc_is_frontend(pid) && pid_holds(pid, ino, n))
			b->fe[b->fe_n++] = pid;
	}
	closedir(d);
}

static long long fe_rss_kb(const struct bench_sse *b)
{
	long long sum = 0;
	for (size_t i = 0; i < b->fe_n; i++) {
		long long kb = proc_rss_kb(b->fe[i]);
		if (kb < 0)
			return -1;
		sum += kb;
	}
	return b->fe_n ? sum : -1;
}

/* ---------- subscribers ---------- */

static void sub_connect(struct bench_sse *b, struct sse_sub *s);
static void sse_check_done(struct bench_sse *b);

static void phase_check(struct bench_sse *b)
{
	if (!b->phase_done && b->streaming + b->failed == b->n) {
		b->phase_done = 1;
		b->t_connect1 = now_ns();
		event_base_loopbreak(b->base);
	}
}

/* Mark a subscriber dead; reap_cb frees its bufferevent outside its own callback. */
static void sub_kill(struct sse_sub *s)
{
	struct bench_sse *b = s->b;
	if (s->state == SS_DEAD)
		return;
	if (s->state == SS_SETUP)
		b->setting_up--;
	if (s->state == SS_STREAMING) {
		b->streaming--;
		b->dropped++;
		if (!b->t_end)
			fprintf(stderr, "sluice bench sse: subscriber %td lost its stream\n", s - b->subs);
	}
	s->state = SS_DEAD;
	if (!s->freeing) {
		s->freeing = 1;
		b->dead[b->dead_n++] = (uint32_t)(s - b->subs);
	}
	event_active(b->reap_ev, EV_TIMEOUT, 0);
}

static void sub_event(struct sse_sub *s, const char *p, size_t n, uint64_t now)
{
	struct bench_sse *b = s->b;
	uint64_t seq = 0, ts = 0;
	size_t i = 0;
	while (i < n && isdigit((unsigned char)p[i]))
		seq = seq * 10 + (uint64_t)(p[i++] - '0');
	if (i == 0 || i >= n || p[i] != ' ') {
		b->malformed++;
		return;
	}
	for (i++; i < n && isdigit((unsigned char)p[i]);)
		ts = ts * 10 + (uint64_t)(p[i++] - '0');
	if (seq >= b->sent) {
		b->malformed++; /* not one of ours: another publisher on the topic */
		return;
	}
	if (seq < s->next) {
		s->dups++;
		b->dups++;
		return;
	}
	if (ts && ts <= now)
		hist_add(b, now - ts);
	s->got++;
	b->progress += seq + 1 - s->next; /* a gap counts as progress: it is reported missing */
	s->next = seq + 1;
}

/* Handle every complete line in the input; only `data:` lines matter. */
static int sub_parse(struct sse_sub *s, struct evbuffer *in, uint64_t now)
{
	for (;;) {
		struct evbuffer_iovec v;
		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
			return 0;
		const char *p = v.iov_base, *end = p + v.iov_len, *nl;
		size_t used = 0;
		while ((nl = memchr(p + used, '\n', (size_t)(end - (p + used))))) {
			size_t ll = (size_t)(nl - (p + used));
			if (ll >= 6 && !memcmp(p + used, "data: ", 6))
				sub_event(s, p + used + 6, ll - 6, now);
			used += ll + 1;
		}
		if (used) {
			evbuffer_drain(in, used);
			continue;
		}
		/* The first chain holds no line end: the line spans chains (or is incomplete). */
		size_t eol_len;
		struct evbuffer_ptr e = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_LF);
		if (e.pos < 0)
			return evbuffer_get_length(in) > SSE_LINE_BYTES_MAX ? -1 : 0;
		if (!evbuffer_pullup(in, (ev_ssize_t)e.pos + 1))
			return -1;
	}
}

static void sub_streaming(struct sse_sub *s)
{
	struct bench_sse *b = s->b;
	s->state = SS_STREAMING;
	s->was_streaming = 1;
	b->setting_up--;
	b->streaming++;
	bufferevent_set_timeouts(s->bev, NULL, NULL); /* an idle stream only sees heartbeats */
}

static void ws_pub_send(struct sse_sub *s);
static void run_for_ms(struct bench_sse *b, int ms);

/* A publisher's answer: an ack (or error) of one of its publishes. */
static void ws_pub_answer(struct sse_sub *s, const char *p, size_t n, uint64_t now)
{
	struct bench_sse *b = s->b;
	const char *idp = memmem(p, n, "\"id\":", 5);
	uint64_t id = 0;
	if (!idp) {
		b->malformed++;
		return;
	}
	for (idp += 5; idp < p + n && isdigit((unsigned char)*idp); idp++)
		id = id * 10 + (uint64_t)(*idp - '0');
	if (id >= b->sent) {
		b->malformed++;
		return;
	}
	if (memmem(p, n, "\"op\":\"ack\"", 10)) {
		b->acked++;
		hist_add(b, now - b->sent_ns[id]);
	} else {
		b->pub_failed++;
		if (!b->first_err)
			fprintf(stderr, "sluice bench ws: publish failed: %.*s\n", (int)n, p);
		b->first_err = 1;
	}
	if (b->sent < b->target)
		ws_pub_send(s);
	else if (b->acked + b->pub_failed >= b->target && !b->t_end) {
		b->t_end = now_ns();
		event_base_loopbreak(b->base);
	}
}

/* WebSocket: every complete server frame in the input; an event is the
 * payload of a `message` op, `subscribed` makes the subscriber stream. */
static int sub_parse_ws(struct sse_sub *s, struct evbuffer *in, uint64_t now)
{
	for (;;) {
		size_t avail = evbuffer_get_length(in), hl = 2, n;
		uint8_t h[10];
		if (avail < 2)
			return 0;
		evbuffer_copyout(in, h, avail < 10 ? avail : 10);
		if (h[1] & 0x80)
			return -1; /* servers do not mask */
		n = h[1] & 0x7f;
		if (n == 126) {
			hl = 4;
			if (avail < hl)
				return 0;
			n = (size_t)h[2] << 8 | h[3];
		} else if (n == 127) {
			hl = 10;
			if (avail < hl)
				return 0;
			n = 0;
			for (int i = 2; i < 10; i++)
				n = n << 8 | h[i];
		}
		if (n > SSE_LINE_BYTES_MAX)
			return -1;
		if (avail < hl + n)
			return evbuffer_get_length(in) > SSE_INPUT_HIGH_BYTES ? -1 : 0;
		const char *p = (const char *)evbuffer_pullup(in, (ev_ssize_t)(hl + n)) + hl, *m;
		if ((h[0] & 0x0f) == 0x1 && s->b->pub_window) {
			ws_pub_answer(s, p, n, now);
		} else if ((h[0] & 0x0f) == 0x1) {
			if ((m = memmem(p, n, "\"payload\":\"", 11)))
				sub_event(s, m + 11, n - (size_t)(m + 11 - p), now);
			else if (s->state == SS_SETUP && memmem(p, n, "\"op\":\"subscribed\"", 17))
				sub_streaming(s);
		} else if ((h[0] & 0x0f) == 0x8) {
			return -1;
		}
		evbuffer_drain(in, hl + n);
	}
}

/* The response head: 200 and text/event-stream (ws: 101), or this subscriber fails. */
static int sub_head(struct sse_sub *s, struct evbuffer *in)
{
	struct evbuffer_ptr e = evbuffer_search(in, "\r\n\r\n", 4, NULL);
	char head[SSE_HEADER_BYTES_MAX + 1];
	if (e.pos < 0)
		return evbuffer_get_length(in) > SSE_HEADER_BYTES_MAX ? -1 : 0;
	size_t len = (size_t)e.pos + 4;
	if (len > SSE_HEADER_BYTES_MAX)
		return -1;
	evbuffer_remove(in, head, len);
	head[len] = '\0';
	if (s->b->ws ? strncmp(head, "HTTP/1.1 101 ", 13) != 0
		     : (strncmp(head, "HTTP/1.1 200 ", 13) || !strcasestr(head, "\r\ncontent-type: text/event-stream"))) {
		if (s->attempts >= SSE_ATTEMPTS_MAX)
			fprintf(stderr, "sluice bench sse: unexpected answer: %.*s\n", (int)strcspn(head, "\r"), head);
		return -1;
	}
	if (s->b->ws && s->b->pub_window) {
		sub_streaming(s); /* a publisher: ready once upgraded */
		return 1;
	}
	if (s->b->ws) {
		/* the subscription goes out as a masked text frame (a zero mask key) */
		char req[300];
		uint8_t h[8] = {0x81, 0x80 | 126, 0, 0, 0, 0, 0, 0};
		int n = snprintf(req, sizeof(req), "{\"op\":\"subscribe\",\"id\":1,\"topic\":\"%s\",\"from\":\"latest\"}",
				 s->b->topic);
		size_t hl = 8;
		if (n < 126) {
			h[1] = (uint8_t)(0x80 | n); /* the shortest length form, as RFC 6455 requires */
			hl = 6;
		} else {
			h[2] = (uint8_t)(n >> 8);
			h[3] = (uint8_t)n;
		}
		bufferevent_write(s->bev, h, hl);
		bufferevent_write(s->bev, req, (size_t)n);
		s->upgraded = 1;
		return 1;
	}
	sub_streaming(s);
	return 1;
}

static void sub_read_cb(struct bufferevent *bev, void *arg)
{
	struct sse_sub *s = arg;
	struct bench_sse *b = s->b;
	struct evbuffer *in = bufferevent_get_input(bev);
	int rc = 1;
	if (s->state == SS_SETUP && s->upgraded) {
		rc = sub_parse_ws(s, in, now_ns());
		if (rc >= 0 && s->state == SS_STREAMING) {
			phase_check(b);
			if (b->next_idle < b->n)
				event_active(b->reap_ev, EV_TIMEOUT, 0);
		}
	} else if (s->state == SS_SETUP) {
		rc = sub_head(s, in);
		if (rc > 0 && s->state == SS_STREAMING) {
			phase_check(b);
			if (b->next_idle < b->n)
				event_active(b->reap_ev, EV_TIMEOUT, 0); /* room for the next connection */
		}
	}
	if (rc > 0 && s->state == SS_SETUP && s->upgraded && evbuffer_get_length(in))
		rc = sub_parse_ws(s, in, now_ns()); /* `subscribed` may follow the 101 at once */
	if (rc > 0 && s->state == SS_STREAMING && evbuffer_get_length(in)) {
		rc = b->ws ? sub_parse_ws(s, in, now_ns()) : sub_parse(s, in, now_ns());
		if (b->stop_publishing)
			sse_check_done(b); /* the last deliveries may come after the last ack */
	}
	if (rc < 0) {
		if (s->state == SS_STREAMING)
			fprintf(stderr, "sluice bench sse: malformed stream\n");
		sub_kill(s);
	}
}

static void sub_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct sse_sub *s = arg;
	if (what & BEV_EVENT_CONNECTED)
		return;
	sub_kill(s);
}

static void sub_connect(struct bench_sse *b, struct sse_sub *s)
{
	char req[768];
	struct timeval setup = {SSE_SETUP_TIMEOUT_S, 0};
	s->attempts++;
	s->bev = bufferevent_socket_new(b->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (!s->bev) {
		s->state = SS_DEAD;
		b->failed++;
		return;
	}
	s->state = SS_SETUP;
	s->freeing = 0;
	s->upgraded = 0;
	b->setting_up++;
	bufferevent_setcb(s->bev, sub_read_cb, NULL, sub_event_cb, s);
	bufferevent_setwatermark(s->bev, EV_READ, 0, SSE_INPUT_HIGH_BYTES);
	bufferevent_set_timeouts(s->bev, &setup, &setup);
	int n = b->ws ? snprintf(req, sizeof(req),
				 "GET /v1/ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
				 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
				 "Sec-WebSocket-Protocol: sluice.v1.json\r\n\r\n",
				 b->http)
		      : snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n\r\n",
				 b->path, b->http);
	bufferevent_write(s->bev, req, (size_t)n);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	if (bufferevent_socket_connect(s->bev, (struct sockaddr *)&b->sa, b->salen) < 0)
		sub_kill(s);
}

/* Free dead subscribers' bufferevents, retry the ones still setting up, start more. */
static void reap_cb(evutil_socket_t fd, short what, void *arg)
{
	struct bench_sse *b = arg;
	while (b->dead_n) {
		struct sse_sub *s = &b->subs[b->dead[--b->dead_n]];
		bufferevent_free(s->bev);
		s->bev = NULL;
		s->freeing = 0;
		if (!s->was_streaming && s->attempts < SSE_ATTEMPTS_MAX && !b->t_connect1)
			s->state = SS_IDLE, sub_connect(b, s);
		else if (!s->was_streaming)
			b->failed++;
	}
	while (b->setting_up < SSE_CONNECTING_MAX && b->next_idle < b->n)
		sub_connect(b, &b->subs[b->next_idle++]);
	phase_check(b);
}

/* ---------- publishing over WebSocket (--publish-window) ---------- */

static void ws_pub_send(struct sse_sub *s)
{
	struct bench_sse *b = s->b;
	uint64_t id = b->sent++;
	char head[300];
	int hn = snprintf(head, sizeof(head), "{\"op\":\"publish\",\"id\":%" PRIu64 ",\"topic\":\"%s\",\"payload\":\"", id,
			  b->topic);
	size_t n = (size_t)hn + b->size + 2;
	uint8_t h[14];
	size_t hl;
	h[0] = 0x81;
	if (n < 126) {
		h[1] = (uint8_t)(0x80 | n);
		hl = 2;
	} else if (n <= 0xffff) {
		h[1] = 0x80 | 126;
		h[2] = (uint8_t)(n >> 8);
		h[3] = (uint8_t)n;
		hl = 4;
	} else {
		h[1] = 0x80 | 127;
		for (int i = 0; i < 8; i++)
			h[2 + i] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
		hl = 10;
	}
	memset(h + hl, 0, 4); /* a zero mask key: the payload goes as it is */
	struct evbuffer *out = bufferevent_get_output(s->bev);
	b->sent_ns[id] = now_ns();
	evbuffer_add(out, h, hl + 4);
	evbuffer_add(out, head, (size_t)hn);
	evbuffer_add(out, b->payload, b->size);
	evbuffer_add(out, "\"}", 2);
}

static void ws_publish_all(struct bench_sse *b)
{
	b->t_pub0 = now_ns();
	for (uint32_t w = 0; w < b->pub_window; w++)
		for (uint32_t i = 0; i < b->n && b->sent < b->target; i++)
			if (b->subs[i].state == SS_STREAMING)
				ws_pub_send(&b->subs[i]);
	run_for_ms(b, 600000);
	b->t_pub1 = b->t_end ? b->t_end : now_ns();
}

static void ws_pub_report(const struct bench_sse *b)
{
	double s = b->t_pub1 > b->t_pub0 ? (double)(b->t_pub1 - b->t_pub0) / 1e9 : 0;
	json_t *o = json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:f,s:f,s:{s:f,s:f,s:f,s:f}}", "mode", "ws-publish",
			      "topic", b->topic, "connections", (json_int_t)b->streaming, "window",
			      (json_int_t)b->pub_window, "size", (json_int_t)b->size, "messages", (json_int_t)b->sent,
			      "acked", (json_int_t)b->acked, "publish_failed", (json_int_t)b->pub_failed, "seconds", s,
			      "msgs_per_s", s > 0 ? (double)b->acked / s : 0.0, "latency_ms", "p50", hist_pct_ms(b, 50),
			      "p99", hist_pct_ms(b, 99), "p99_9", hist_pct_ms(b, 99.9), "max", (double)b->lat_max / 1e6);
	if (b->g->json) {
		char *t = json_dumps(o, JSON_COMPACT);
		if (t)
			puts(t);
		free(t);
	} else {
		printf("bench ws publish: topic %s, %u connections x %u in flight, %u-byte messages\n", b->topic,
		       b->streaming, b->pub_window, b->size);
		printf("  acked:      %" PRIu64 " of %" PRIu64 " in %.3f s: %.0f msg/s, %" PRIu64 " failed\n", b->acked,
		       b->sent, s, s > 0 ? (double)b->acked / s : 0.0, b->pub_failed);
		printf("  latency ms: p50 %.3f  p99 %.3f  p99.9 %.3f  max %.3f (publish -> ack)\n", hist_pct_ms(b, 50),
		       hist_pct_ms(b, 99), hist_pct_ms(b, 99.9), (double)b->lat_max / 1e6);
	}
	json_decref(o);
}

/* ---------- publishing ---------- */

static void sse_check_done(struct bench_sse *b)
{
	if (!b->stop_publishing && b->sent >= b->target)
		b->stop_publishing = 1;
	if (!b->stop_publishing)
		return;
	event_del(b->pace_ev);
	if (!b->t_pub1) {
		b->t_pub1 = now_ns();
		struct timeval tv = {SSE_DRAIN_MS / 1000, 0};
		evtimer_add(b->drain_ev, &tv);
	}
	if (b->acked + b->pub_failed >= b->sent && b->progress >= (uint64_t)b->streaming * b->sent && !b->t_end) {
		b->t_end = now_ns();
		event_base_loopbreak(b->base);
	}
}

static void sse_ack_cb(void *arg, int err, const char *errmsg, uint32_t partition, uint64_t offset,
		       int64_t timestamp_ms, int duplicate)
{
	struct bench_sse *b = arg;
	if (err == SLUICE_OK) {
		b->acked++;
	} else {
		b->pub_failed++;
		if (!b->first_err) {
			b->first_err = err;
			fprintf(stderr, "sluice bench sse: publish failed: %s\n", errmsg ? errmsg : sluice_strerror(err));
		}
	}
	sse_check_done(b);
}

static int sse_publish_one(struct bench_sse *b)
{
	uint64_t t = now_ns();
	int n = snprintf((char *)b->payload, b->size, "%" PRIu64 " %" PRIu64 " ", b->sent, t);
	SL_ASSERT(n > 0 && (uint32_t)n < b->size);
	memset(b->payload + n, 'x', b->size - (uint32_t)n);
	struct sluice_pub pub = {.topic = b->topic, .payload = sluice_bytes_make(b->payload, b->size)};
	b->sent++;
	if (sluice_publish(b->pc, &pub, sse_ack_cb, b) != SLUICE_OK) {
		b->pub_failed++;
		return -1;
	}
	return 0;
}

/* Every millisecond: publish what the schedule allows by now. */
static void pace_cb(evutil_socket_t fd, short what, void *arg)
{
	struct bench_sse *b = arg;
	double s = (double)(now_ns() - b->t_pub0) / 1e9;
	uint64_t allowed = (uint64_t)(s * (double)b->rate) + 1;
	while (!b->stop_publishing && b->sent < b->target && b->sent < allowed &&
	       b->sent - b->acked - b->pub_failed < SSE_INFLIGHT_MAX)
		if (sse_publish_one(b) != 0)
			break;
	sluice_client_flush(b->pc);
	sse_check_done(b);
}

static void duration_cb(evutil_socket_t fd, short what, void *arg)
{
	struct bench_sse *b = arg;
	b->stop_publishing = 1;
	sse_check_done(b);
}

static void drain_cb(evutil_socket_t fd, short what, void *arg)
{
	struct bench_sse *b = arg;
	fprintf(stderr, "sluice bench sse: gave up waiting for deliveries\n");
	b->t_end = now_ns();
	event_base_loopbreak(b->base);
}

static void loopbreak_cb(evutil_socket_t fd, short what, void *arg)
{
	event_base_loopbreak(arg);
}

/* ---------- setup, phases and report ---------- */

/* Create the topic with one partition (so each stream is in publish order). */
static int sse_prepare_topic(struct bench_sse *b)
{
	struct sluice_sync *s;
	char msg[256] = "";
	int rc = cli_connect(b->g, 0, &s);
	if (rc)
		return rc;
	int err = sluice_sync_topic_create(s, b->topic, 1, 0, 0, msg, sizeof(msg));
	sluice_sync_close(s);
	if (err && err != SLUICE_ETOPIC_EXISTS) {
		fprintf(stderr, "sluice bench sse: topic %s: %s\n", b->topic, msg[0] ? msg : sluice_strerror(err));
		return cli_exit_code(err);
	}
	return EX_OK;
}

/* Enough descriptors for N streams and a few more. */
static int sse_raise_nofile(uint32_t n)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)n + 64;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return -1;
	if (rl.rlim_cur >= want)
		return 0;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want) {
		fprintf(stderr, "sluice bench sse: %u subscribers need %llu descriptors; the hard limit is %llu\n", n,
			(unsigned long long)want, (unsigned long long)rl.rlim_max);
		return -1;
	}
	rl.rlim_cur = want;
	return setrlimit(RLIMIT_NOFILE, &rl);
}

static void run_for_ms(struct bench_sse *b, int ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	evtimer_add(b->phase_ev, &tv);
	event_base_dispatch(b->base);
	evtimer_del(b->phase_ev);
}

/* Open every stream (bounded), then let them idle and read the RSS. */
static int sse_connect_all(struct bench_sse *b)
{
	b->rss_before_kb = fe_rss_kb(b);
	b->self_before_kb = proc_rss_kb(getpid());
	b->t_connect0 = now_ns();
	event_active(b->reap_ev, EV_TIMEOUT, 0);
	run_for_ms(b, SSE_CONNECT_PHASE_MS);
	if (!b->t_connect1) {
		b->t_connect1 = now_ns();
		fprintf(stderr, "sluice bench sse: only %u of %u streams started in %d s\n", b->streaming, b->n,
			SSE_CONNECT_PHASE_MS / 1000);
	}
	if (b->streaming == 0)
		return -1;
	run_for_ms(b, SSE_SETTLE_MS);
	b->rss_after_kb = fe_rss_kb(b);
	b->self_after_kb = proc_rss_kb(getpid());
	return 0;
}

static int sse_open_producer(struct bench_sse *b)
{
	struct sluice_client_opts o = cli_client_opts(b->g, SSE_INFLIGHT_MAX);
	o.retry_max_ms = 30000;
	o.linger_ms = b->linger_ms;
	return sluice_client_new(b->base, &o, &b->pc);
}

static void sse_publish_all(struct bench_sse *b)
{
	struct timeval ms = {0, 1000};
	b->t_pub0 = now_ns();
	evtimer_add(b->pace_ev, &ms);
	if (b->duration_s > 0) {
		struct timeval d = {(time_t)b->duration_s, (suseconds_t)((b->duration_s - (double)(time_t)b->duration_s) * 1e6)};
		evtimer_add(b->duration_ev, &d);
	}
	event_base_dispatch(b->base);
}

static json_t *sse_report_json(const struct bench_sse *b, uint64_t missing, uint32_t complete)
{
	double connect_s = (double)(b->t_connect1 - b->t_connect0) / 1e9;
	double pub_s = b->t_pub1 > b->t_pub0 ? (double)(b->t_pub1 - b->t_pub0) / 1e9 : 0;
	json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f}", "mode", b->ws ? "ws" : "sse", "topic",
			      b->topic, "subscribers", (json_int_t)b->n, "streaming", (json_int_t)b->streaming,
			      "failed", (json_int_t)b->failed, "dropped", (json_int_t)b->dropped, "size",
			      (json_int_t)b->size, "rate", (json_int_t)b->rate, "messages", (json_int_t)b->sent,
			      "connect_s", connect_s, "publish_s", pub_s);
	json_object_set_new(o, "msgs_per_s", json_real(pub_s > 0 ? (double)b->sent / pub_s : 0));
	json_object_set_new(o, "acked", json_integer((json_int_t)b->acked));
	json_object_set_new(o, "publish_failed", json_integer((json_int_t)b->pub_failed));
	json_object_set_new(o, "deliveries", json_integer((json_int_t)b->lat_n));
	json_object_set_new(o, "deliveries_expected", json_integer((json_int_t)(b->sent * b->n)));
	json_object_set_new(o, "missing", json_integer((json_int_t)missing));
	json_object_set_new(o, "duplicates", json_integer((json_int_t)b->dups));
	json_object_set_new(o, "malformed", json_integer((json_int_t)b->malformed));
	json_object_set_new(o, "subscribers_complete", json_integer((json_int_t)complete));
	json_object_set_new(o, "latency_ms",
			    json_pack("{s:f, s:f, s:f, s:f, s:I}", "p50", hist_pct_ms(b, 50), "p99", hist_pct_ms(b, 99),
				      "p99_9", hist_pct_ms(b, 99.9), "max", (double)b->lat_max / 1e6, "samples",
				      (json_int_t)b->lat_n));
	json_t *fe = json_array();
	for (size_t i = 0; i < b->fe_n; i++)
		json_array_append_new(fe, json_integer(b->fe[i]));
	json_object_set_new(o, "frontend_pids", fe);
	int rss = b->rss_before_kb >= 0 && b->rss_after_kb >= 0 && b->streaming;
	json_object_set_new(o, "frontend_rss_kb_before", rss ? json_integer(b->rss_before_kb) : json_null());
	json_object_set_new(o, "frontend_rss_kb_idle", rss ? json_integer(b->rss_after_kb) : json_null());
	json_object_set_new(o, "rss_bytes_per_subscriber",
			    rss ? json_real((double)(b->rss_after_kb - b->rss_before_kb) * 1024.0 / b->streaming)
				: json_null());
	json_object_set_new(o, "client_rss_bytes_per_subscriber",
			    b->streaming ? json_real((double)(b->self_after_kb - b->self_before_kb) * 1024.0 /
						     b->streaming)
					 : json_null());
	return o;
}

/* Missing events and complete subscribers, over the subscribers that streamed. */
static void sse_tally(const struct bench_sse *b, uint64_t *missing, uint32_t *complete)
{
	*missing = 0;
	*complete = 0;
	for (uint32_t i = 0; i < b->n; i++) {
		const struct sse_sub *s = &b->subs[i];
		if (!s->was_streaming)
			continue;
		SL_ASSERT(s->got <= b->sent); /* distinct sequence numbers below sent */
		*missing += b->sent - s->got;
		*complete += s->got == b->sent && s->dups == 0;
	}
}

static void sse_report(const struct bench_sse *b)
{
	uint64_t missing;
	uint32_t complete;
	sse_tally(b, &missing, &complete);
	json_t *o = sse_report_json(b, missing, complete);
	if (b->g->json) {
		char *s = json_dumps(o, JSON_COMPACT);
		if (s)
			puts(s);
		free(s);
		json_decref(o);
		return;
	}
	printf("bench %s: topic %s, %u subscribers (%u streaming, %u failed, %u dropped), %u-byte messages\n",
	       b->ws ? "ws" : "sse", b->topic, b->n, b->streaming, b->failed, b->dropped, b->size);
	printf("  connect:    %.3f s for all streams\n", json_real_value(json_object_get(o, "connect_s")));
	printf("  published:  %" PRIu64 " at %.0f msg/s (asked %" PRIu64 "), %" PRIu64 " failed\n", b->sent,
	       json_real_value(json_object_get(o, "msgs_per_s")), b->rate, b->pub_failed);
	printf("  delivered:  %" PRIu64 " of %" PRIu64 " (%u subscribers complete), %" PRIu64 " missing, %" PRIu64
	       " duplicate\n",
	       b->lat_n, b->sent * b->n, complete, missing, b->dups);
	printf("  latency ms: p50 %.3f  p99 %.3f  p99.9 %.3f  max %.3f\n", hist_pct_ms(b, 50), hist_pct_ms(b, 99),
	       hist_pct_ms(b, 99.9), (double)b->lat_max / 1e6);
	json_t *per = json_object_get(o, "rss_bytes_per_subscriber");
	if (json_is_real(per))
		printf("  frontends:  RSS %lld kB -> %lld kB idle, %.0f bytes per idle subscriber (%zu processes)\n",
		       b->rss_before_kb, b->rss_after_kb, json_real_value(per), b->fe_n);
	else
		printf("  frontends:  not found (pass --pid MASTER_PID)\n");
	json_decref(o);
}

/* The events path, the topic percent-encoded. */
static void sse_path(struct bench_sse *b)
{
	char enc[3 * sizeof(b->topic)], *o = enc;
	for (const unsigned char *p = (const unsigned char *)b->topic; *p; p++) {
		if (isalnum(*p) || strchr("-._~", *p))
			*o++ = (char)*p;
		else
			o += sprintf(o, "%%%02X", *p);
	}
	*o = '\0';
	snprintf(b->path, sizeof(b->path), "/v1/topics/%s/events?format=raw&from=latest", enc);
}

static int sse_parse(struct bench_sse *b, int argc, char **argv)
{
	static const struct option lo[] = {
		{"subscribers", required_argument, 0, 'N'}, {"rate", required_argument, 0, 'r'},
		{"duration", required_argument, 0, 'd'},    {"count", required_argument, 0, 'c'},
		{"size", required_argument, 0, 's'},        {"topic", required_argument, 0, 't'},
		{"http", required_argument, 0, 'H'},        {"pid", required_argument, 0, 'P'},
		{"linger-ms", required_argument, 0, 'L'},   {"publish-window", required_argument, 0, 'W'},
		{0, 0, 0, 0}};
	int ch;
	char *end;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "s:c:d:t:", lo, NULL)) != -1) {
		if (ch == '?')
			return -1;
		if (ch == 't' || ch == 'H') {
			snprintf(ch == 't' ? b->topic : b->http, sizeof(b->topic), "%s", optarg);
			continue;
		}
		if (ch == 'd') {
			b->duration_s = strtod(optarg, &end);
			if (*end || !(b->duration_s > 0) || b->duration_s > 1e6)
				return -1;
			continue;
		}
		unsigned long long v = strtoull(optarg, &end, 10);
		if (*end || optarg[0] == '-' || !optarg[0] || (v == 0 && ch != 'L') || v > UINT32_MAX)
			return -1;
		if (ch == 'N')
			b->n = (uint32_t)v;
		else if (ch == 'r')
			b->rate = v;
		else if (ch == 'c')
			b->count = v;
		else if (ch == 's')
			b->size = (uint32_t)v;
		else if (ch == 'P')
			b->master_pid = (pid_t)v;
		else if (ch == 'L')
			b->linger_ms = (uint32_t)v;
		else if (ch == 'W')
			b->pub_window = (uint32_t)v;
	}
	/* argv[optind] is "sse" or "ws" */
	if (optind + 1 != argc || (strcmp(argv[optind], "sse") && strcmp(argv[optind], "ws")) || (b->count && b->duration_s > 0) ||
	    b->n > SSE_SUBSCRIBERS_MAX || b->size < SSE_SIZE_MIN || b->size > SSE_SIZE_MAX)
		return -1;
	if (b->pub_window && (!b->ws || !b->count || b->count > 100000000))
		return -1; /* publishing over WebSocket: `bench ws`, a --count of messages */
	if (!b->count && !(b->duration_s > 0))
		b->duration_s = SSE_DURATION_DEFAULT_S;
	b->target = b->count ? b->count : UINT64_MAX; /* --duration: publish for that long */
	b->salen = (int)sizeof(b->sa);
	if (evutil_parse_sockaddr_port(b->http, (struct sockaddr *)&b->sa, &b->salen) != 0) {
		fprintf(stderr, "sluice bench sse: --http %s: not HOST:PORT\n", b->http);
		return -1;
	}
	return 0;
}

static int sse_run(struct bench_sse *b)
{
	uint16_t port = ntohs(((struct sockaddr_in *)&b->sa)->sin_port); /* same offset in sockaddr_in6 */
	int rc = sse_prepare_topic(b);
	if (rc)
		return rc;
	if (sse_raise_nofile(b->n) != 0)
		return EX_OSERR;
	if (b->master_pid)
		fe_from_master(b);
	else
		fe_from_port(b, port);
	b->subs = calloc(b->n, sizeof(*b->subs));
	b->dead = calloc(b->n, sizeof(*b->dead));
	b->payload = malloc(b->size);
	if (b->pub_window) {
		memset(b->payload, 'x', b->size);
		if (!(b->sent_ns = calloc(b->target, sizeof(*b->sent_ns))))
			return EX_SOFTWARE;
	}
	b->reap_ev = event_new(b->base, -1, 0, reap_cb, b);
	b->pace_ev = event_new(b->base, -1, EV_PERSIST, pace_cb, b);
	b->drain_ev = evtimer_new(b->base, drain_cb, b);
	b->phase_ev = evtimer_new(b->base, loopbreak_cb, b->base);
	b->duration_ev = evtimer_new(b->base, duration_cb, b);
	if (!b->duration_ev || !b->subs || !b->dead || !b->payload || !b->reap_ev || !b->pace_ev || !b->drain_ev || !b->phase_ev ||
	    sse_open_producer(b) != SLUICE_OK)
		return EX_SOFTWARE;
	for (uint32_t i = 0; i < b->n; i++)
		b->subs[i].b = b;
	if (sse_connect_all(b) != 0) {
		fprintf(stderr, "sluice bench sse: no stream started on %s\n", b->http);
		return EX_UNAVAILABLE;
	}
	if (b->pub_window) {
		ws_publish_all(b);
		ws_pub_report(b);
		return b->first_err || b->acked < b->sent ? EX_DATAERR : EX_OK;
	}
	sse_publish_all(b);
	sse_report(b);
	uint64_t missing;
	uint32_t complete;
	sse_tally(b, &missing, &complete);
	if (b->first_err)
		return cli_exit_code(b->first_err);
	return missing || b->dups || b->failed || b->dropped || b->pub_failed ? EX_DATAERR : EX_OK;
}

int bench_sse_main(const struct cli_global *g, int argc, char **argv)
{
	struct bench_sse *b = calloc(1, sizeof(*b)); /* the histogram is large for a stack */
	int rc = EX_SOFTWARE;
	if (!b)
		return EX_SOFTWARE;
	b->g = g;
	b->n = SSE_SUBSCRIBERS_DEFAULT;
	b->rate = SSE_RATE_DEFAULT;
	b->size = SSE_SIZE_DEFAULT;
	snprintf(b->http, sizeof(b->http), "127.0.0.1:8400");
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			bench_sse_usage(stdout);
			free(b);
			return EX_OK;
		}
	}
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "ws") && argv[i - 1][0] != '-')
			b->ws = 1;
	if (sse_parse(b, argc, argv) != 0) {
		bench_sse_usage(stderr);
		free(b);
		return EX_USAGE;
	}
	if (!b->topic[0])
		snprintf(b->topic, sizeof(b->topic), "bench-sse-%08x", randombytes_random());
	sse_path(b);
	b->base = event_base_new();
	if (b->base)
		rc = sse_run(b);
	for (uint32_t i = 0; b->subs && i < b->n; i++)
		if (b->subs[i].bev)
			bufferevent_free(b->subs[i].bev);
	sluice_client_free(b->pc);
	struct event *evs[] = {b->reap_ev, b->pace_ev, b->drain_ev, b->phase_ev, b->duration_ev};
	for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
		if (evs[i])
			event_free(evs[i]);
	if (b->base)
		event_base_free(b->base);
	free(b->subs);
	free(b->dead);
	free(b->payload);
	free(b->sent_ns);
	free(b);
	return rc;
}
