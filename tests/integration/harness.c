/*
 * harness.c: process, CLI and raw-socket helpers for the integration tests.
 * See harness.h for the caveats (bounded waits, PR_SET_PDEATHSIG, fini).
 * Test code, so failures return -1 or an sl_err and print why on stderr; the
 * tests assert on the results.
 */
#define _GNU_SOURCE
#include "harness.h"
#include "sluice/sluice.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "crc32c.h"
#include "err.h"

#ifndef SLUICED_BIN
#define SLUICED_BIN "sluiced"
#endif

#define ITEST_RECV_FRAME_MAX (64u << 20)

long long itest_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void itest_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

int itest_free_port(uint16_t *port)
{
	struct sockaddr_in sa = {0};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	int rc = -1;

	if (fd < 0)
		return -1;
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		goto out;
	if (getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
		goto out;
	*port = ntohs(sa.sin_port);
	rc = 0;
out:
	close(fd);
	return rc;
}

int itest_node_init(struct itest_node *n)
{
	memset(n, 0, sizeof(*n));
	n->frontends = 2;
	snprintf(n->dir, sizeof(n->dir), "/tmp/sluice-itest-XXXXXX");
	if (!mkdtemp(n->dir)) {
		n->dir[0] = '\0';
		return -1;
	}
	snprintf(n->data_dir, sizeof(n->data_dir), "%s/data", n->dir);
	snprintf(n->log_path, sizeof(n->log_path), "%s/sluiced.log", n->dir);
	if (mkdir(n->data_dir, 0700) != 0)
		return -1;
	if (itest_free_port(&n->port) != 0 || itest_free_port(&n->http_port) != 0)
		return -1;
	/* the first socket is closed by then: the kernel may hand out its port again */
	for (int i = 0; n->http_port == n->port && i < 16; i++)
		if (itest_free_port(&n->http_port) != 0)
			return -1;
	if (n->http_port == n->port)
		return -1;
	snprintf(n->addr, sizeof(n->addr), "127.0.0.1:%u", n->port);
	return 0;
}

/* In the forked child: log to the node's file, die with the test, exec. */
static void node_exec_child(const struct itest_node *n)
{
	char listen[64], http[64], fe[16];
	const char *argv[22] = {SLUICED_BIN, "--data-dir", n->data_dir, "--listen", listen, "--http", http, "--frontends", fe};
	size_t argc = 9;
	int fd = open(n->log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (fd >= 0) {
		dup2(fd, 1);
		dup2(fd, 2);
		close(fd);
	}
	snprintf(listen, sizeof(listen), "127.0.0.1:%u", n->port);
	snprintf(http, sizeof(http), "127.0.0.1:%u", n->http_port);
	snprintf(fe, sizeof(fe), "%u", n->frontends);
	for (size_t i = 0; i < sizeof(n->extra) / sizeof(n->extra[0]) && n->extra[i]; i++)
		argv[argc++] = n->extra[i];
	argv[argc] = NULL;
	execv(SLUICED_BIN, (char *const *)argv);
	_exit(127);
}

int itest_node_spawn(struct itest_node *n)
{
	pid_t pid = fork();

	if (pid < 0)
		return -1;
	if (pid == 0)
		node_exec_child(n);
	n->pid = pid;
	return 0;
}

static void ready_fn(void *arg, const struct sluice_cluster_status *st)
{
	(void)arg;
	(void)st;
}

/* A node that speaks TLS and wants a key (SLUICE_TLS_CA and SLUICE_KEY in
 * the environment, as cluster.c's secure mode sets) answers a status
 * through libsluice, which takes both from there. */
static int node_status_client(uint16_t port, int timeout_ms)
{
	struct sluice_client_opts o = {0};
	struct sluice_sync *sy = NULL;
	char addr[32], em[256];
	int rc;

	snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
	o.servers = addr;
	o.client_name = "itest-ready";
	o.connect_timeout_ms = o.request_timeout_ms = o.retry_max_ms = (uint32_t)timeout_ms;
	if (sluice_sync_open(&o, &sy) != 0)
		return -1;
	rc = sluice_sync_cluster_status(sy, ready_fn, NULL, em, sizeof(em));
	sluice_sync_close(sy);
	return rc ? -1 : 0;
}

int itest_node_wait_ready(const struct itest_node *n, int timeout_ms)
{
	const char *ca = getenv("SLUICE_TLS_CA");
	int tls = ca && ca[0];

	long long deadline = itest_now_ms() + timeout_ms;

	while (itest_now_ms() < deadline) {
		int status;
		if (n->pid > 0 && waitpid(n->pid, &status, WNOHANG) == n->pid) {
			fprintf(stderr, "itest: sluiced exited early (status 0x%x)\n", status);
			return -1;
		}
		if ((tls ? node_status_client(n->port, 1000) : itest_node_status_raw(n->port, 1000)) == 0)
			return 0;
		itest_sleep_ms(50);
	}
	fprintf(stderr, "itest: sluiced not ready on port %u after %d ms\n", n->port, timeout_ms);
	return -1;
}

int itest_node_start(struct itest_node *n)
{
	if (itest_node_spawn(n) != 0)
		return -1;
	if (itest_node_wait_ready(n, ITEST_READY_MS) != 0) {
		itest_node_dump_log(n);
		return -1;
	}
	return 0;
}

int itest_wait_child(pid_t pid, int timeout_ms, int *status)
{
	long long deadline = itest_now_ms() + timeout_ms;

	do {
		pid_t r = waitpid(pid, status, WNOHANG);
		if (r == pid || (r < 0 && errno == ECHILD))
			return 1;
		itest_sleep_ms(10);
	} while (itest_now_ms() < deadline);
	return 0;
}

int itest_node_stop(struct itest_node *n)
{
	pid_t kids[64];
	size_t nk;
	int status = 0, rc = 0;

	if (n->pid <= 0)
		return 0;
	nk = itest_children(n->pid, kids, 64);
	kill(n->pid, SIGTERM);
	if (!itest_wait_child(n->pid, ITEST_STOP_MS, &status)) {
		fprintf(stderr, "itest: sluiced %d did not stop in %d ms; SIGKILL\n", (int)n->pid, ITEST_STOP_MS);
		kill(n->pid, SIGKILL);
		itest_wait_child(n->pid, ITEST_STOP_MS, &status);
		rc = -1;
	} else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "itest: sluiced stop status 0x%x\n", status);
		rc = -1;
	}
	n->pid = 0;
	for (size_t i = 0; i < nk; i++)
		if (itest_wait_gone(kids[i], ITEST_STOP_MS) != 0) {
			fprintf(stderr, "itest: child %d outlived the master\n", (int)kids[i]);
			kill(kids[i], SIGKILL);
			rc = -1;
		}
	return rc;
}

int itest_node_kill9(struct itest_node *n)
{
	pid_t kids[64];
	size_t nk;
	int status, rc = 0;

	if (n->pid <= 0)
		return -1;
	nk = itest_children(n->pid, kids, 64);
	kill(n->pid, SIGKILL);
	itest_wait_child(n->pid, ITEST_STOP_MS, &status);
	n->pid = 0;
	for (size_t i = 0; i < nk; i++)
		if (itest_wait_gone(kids[i], ITEST_STOP_MS) != 0) {
			fprintf(stderr, "itest: child %d outlived a killed master\n", (int)kids[i]);
			kill(kids[i], SIGKILL);
			rc = -1;
		}
	return rc;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

void itest_node_destroy(struct itest_node *n)
{
	/* Graceful first so a server that cannot stop shows up in the output;
	 * criterion ignores assertions in fini, so tests that care assert
	 * itest_node_stop themselves. itest_node_stop SIGKILLs after 10 s. */
	if (n->pid > 0 && itest_node_stop(n) != 0) {
		fprintf(stderr, "itest: unclean stop of sluiced on port %u\n", n->port);
		itest_node_dump_log(n);
	}
	if (n->dir[0] && !getenv("ITEST_KEEP"))
		nftw(n->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	n->dir[0] = '\0';
}

void itest_node_dump_log(const struct itest_node *n)
{
	char buf[4096];
	FILE *f = fopen(n->log_path, "r");
	long size;
	size_t got;

	if (!f)
		return;
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	fseek(f, size > (long)sizeof(buf) - 1 ? size - (long)sizeof(buf) + 1 : 0, SEEK_SET);
	got = fread(buf, 1, sizeof(buf) - 1, f);
	buf[got] = '\0';
	fclose(f);
	fprintf(stderr, "---- tail of %s ----\n%s\n----\n", n->log_path, buf);
}

size_t itest_children(pid_t parent, pid_t *out, size_t max)
{
	char path[64];
	size_t n = 0;
	FILE *f;
	long v;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)parent, (int)parent);
	f = fopen(path, "r");
	if (!f)
		return 0;
	while (n < max && fscanf(f, "%ld", &v) == 1)
		out[n++] = (pid_t)v;
	fclose(f);
	return n;
}

static int read_comm(pid_t pid, char *buf, size_t len)
{
	char path[64];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (!fgets(buf, (int)len, f)) {
		fclose(f);
		return -1;
	}
	fclose(f);
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

pid_t itest_child_by_comm(pid_t parent, const char *comm)
{
	pid_t kids[64];
	size_t nk = itest_children(parent, kids, 64);
	char name[64];

	/* The kernel keeps 15 bytes of a name: "sluice-logwriter" reads back
	 * as "sluice-logwrite". */
	for (size_t i = 0; i < nk; i++)
		if (read_comm(kids[i], name, sizeof(name)) == 0 && strncmp(name, comm, 15) == 0 &&
		    itest_pid_alive(kids[i]))
			return kids[i];
	return 0;
}

int itest_pid_alive(pid_t pid)
{
	char path[64], buf[512];
	FILE *f;
	char *p;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (!fgets(buf, sizeof(buf), f)) {
		fclose(f);
		return 0;
	}
	fclose(f);
	p = strrchr(buf, ')');
	if (!p || p[1] == '\0' || p[2] == '\0')
		return 0;
	return p[2] != 'Z' && p[2] != 'X';
}

int itest_wait_gone(pid_t pid, int timeout_ms)
{
	long long deadline = itest_now_ms() + timeout_ms;

	while (itest_pid_alive(pid)) {
		if (itest_now_ms() >= deadline)
			return -1;
		itest_sleep_ms(10);
	}
	return 0;
}

/* ---- running the CLI ---- */

static void run_exec_child(const char *const *argv, const char *server, const char *in_path, int in_fd, int out_fd,
                           int err_fd)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (in_path) {
		int fd = open(in_path, O_RDONLY);
		if (fd < 0)
			_exit(126);
		dup2(fd, 0);
		close(fd);
	} else {
		dup2(in_fd, 0);
	}
	dup2(out_fd, 1);
	dup2(err_fd, 2);
	if (server)
		setenv("SLUICE_SERVER", server, 1);
	execv(argv[0], (char *const *)argv);
	_exit(127);
}

static int buf_append(char **buf, size_t *len, size_t *cap, const char *p, size_t n)
{
	if (*len + n + 1 > *cap) {
		size_t nc = *cap ? *cap * 2 : 65536;
		while (nc < *len + n + 1)
			nc *= 2;
		char *nb = realloc(*buf, nc);
		if (!nb)
			return -1;
		*buf = nb;
		*cap = nc;
	}
	memcpy(*buf + *len, p, n);
	*len += n;
	(*buf)[*len] = '\0';
	return 0;
}

struct run_io {
	int in_fd, out_fd, err_fd;
	const char *in;
	size_t in_len, in_off;
	size_t out_cap, err_cap;
};

/* Read what is ready on *fd into buf; close it (and set -1) at EOF or error. */
static void run_drain(int *fd, char **out, size_t *len, size_t *cap)
{
	char chunk[65536];
	ssize_t g = read(*fd, chunk, sizeof(chunk));
	if (g > 0) {
		buf_append(out, len, cap, chunk, (size_t)g);
		return;
	}
	close(*fd);
	*fd = -1;
}

/* One poll round: feed stdin, drain stdout/stderr. Returns 1 while open. */
static int run_pump(struct run_io *io, struct itest_run *r, int wait_ms)
{
	struct pollfd p[3];
	int np = 0, iin = -1, iout = -1, ierr = -1;

	if (io->in_fd >= 0)
		p[iin = np++] = (struct pollfd){io->in_fd, POLLOUT, 0};
	if (io->out_fd >= 0)
		p[iout = np++] = (struct pollfd){io->out_fd, POLLIN, 0};
	if (io->err_fd >= 0)
		p[ierr = np++] = (struct pollfd){io->err_fd, POLLIN, 0};
	if (np == 0)
		return 0;
	if (poll(p, (nfds_t)np, wait_ms) <= 0)
		return 1;
	if (iin >= 0 && p[iin].revents) {
		ssize_t w =
		    io->in_len > io->in_off ? write(io->in_fd, io->in + io->in_off, io->in_len - io->in_off) : 0;
		if (w > 0)
			io->in_off += (size_t)w;
		if (w < 0 || io->in_off >= io->in_len) {
			close(io->in_fd);
			io->in_fd = -1;
		}
	}
	if (iout >= 0 && p[iout].revents)
		run_drain(&io->out_fd, &r->out, &r->out_len, &io->out_cap);
	if (ierr >= 0 && p[ierr].revents)
		run_drain(&io->err_fd, &r->err, &r->err_len, &io->err_cap);
	return 1;
}

int itest_run(const char *const *argv, const char *server, const char *in_path, const void *in, size_t in_len,
              int timeout_ms, struct itest_run *r)
{
	int pin[2], pout[2], perr[2], status = 0;
	struct run_io io = {0};
	long long deadline = itest_now_ms() + timeout_ms;
	pid_t pid;

	memset(r, 0, sizeof(*r));
	buf_append(&r->out, &r->out_len, &io.out_cap, "", 0);
	buf_append(&r->err, &r->err_len, &io.err_cap, "", 0);
	if (pipe2(pin, O_CLOEXEC) || pipe2(pout, O_CLOEXEC) || pipe2(perr, O_CLOEXEC))
		return -1;
	signal(SIGPIPE, SIG_IGN);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0)
		run_exec_child(argv, server, in_path, pin[0], pout[1], perr[1]);
	close(pin[0]);
	close(pout[1]);
	close(perr[1]);
	io = (struct run_io){pin[1], pout[0], perr[0], (const char *)in, in ? in_len : 0, 0, io.out_cap, io.err_cap};
	fcntl(pin[1], F_SETFL, O_NONBLOCK);
	if (in_path || io.in_len == 0) {
		close(io.in_fd);
		io.in_fd = -1;
	}
	while (itest_now_ms() < deadline && run_pump(&io, r, 50))
		;
	if (!itest_wait_child(pid, (int)(deadline > itest_now_ms() ? deadline - itest_now_ms() : 0), &status)) {
		fprintf(stderr, "itest: %s timed out after %d ms\n", argv[1] ? argv[1] : argv[0], timeout_ms);
		kill(pid, SIGKILL);
		itest_wait_child(pid, 5000, &status);
		r->status = -1;
	} else {
		r->status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	}
	for (int i = 0; i < 3; i++) {
		int *fd = i == 0 ? &io.in_fd : i == 1 ? &io.out_fd : &io.err_fd;
		if (*fd >= 0)
			close(*fd);
	}
	return 0;
}

void itest_run_free(struct itest_run *r)
{
	free(r->out);
	free(r->err);
	memset(r, 0, sizeof(*r));
}

/* ---- raw native protocol ---- */

int itest_connect(uint16_t port)
{
	struct sockaddr_in sa = {0};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;

	if (fd < 0)
		return -1;
	sa.sin_family = AF_INET;
	sa.sin_port = htons(port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(fd);
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

int itest_send_raw(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n > 0) {
		ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return SL_ECLOSED;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

int itest_send_frame(int fd, const Sluice__Frame *f)
{
	size_t len = sluice__frame__get_packed_size(f);
	uint8_t *buf = malloc(len + 4);
	int rc;

	if (!buf)
		return SL_ENOMEM;
	buf[0] = (uint8_t)(len >> 24);
	buf[1] = (uint8_t)(len >> 16);
	buf[2] = (uint8_t)(len >> 8);
	buf[3] = (uint8_t)len;
	sluice__frame__pack(f, buf + 4);
	rc = itest_send_raw(fd, buf, len + 4);
	free(buf);
	return rc;
}

/* Read exactly n bytes before the deadline. */
static int recv_exact(int fd, uint8_t *p, size_t n, long long deadline)
{
	while (n > 0) {
		struct pollfd pfd = {fd, POLLIN, 0};
		long long left = deadline - itest_now_ms();
		ssize_t g;
		if (left <= 0)
			return SL_ETIMEOUT;
		if (poll(&pfd, 1, (int)left) <= 0)
			continue;
		g = recv(fd, p, n, 0);
		if (g < 0 && errno == EINTR)
			continue;
		if (g <= 0)
			return SL_ECLOSED;
		p += g;
		n -= (size_t)g;
	}
	return 0;
}

int itest_recv_frame(int fd, int timeout_ms, Sluice__Frame **out)
{
	long long deadline = itest_now_ms() + timeout_ms;
	uint8_t hdr[4], *body;
	uint32_t len;
	int rc;

	*out = NULL;
	rc = recv_exact(fd, hdr, 4, deadline);
	if (rc)
		return rc;
	len = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
	if (len > ITEST_RECV_FRAME_MAX)
		return SL_EMALFORMED;
	body = malloc(len ? len : 1);
	if (!body)
		return SL_ENOMEM;
	rc = recv_exact(fd, body, len, deadline);
	if (rc == 0) {
		*out = sluice__frame__unpack(NULL, len, body);
		if (!*out)
			rc = SL_EMALFORMED;
	}
	free(body);
	return rc;
}

int itest_recv_response(int fd, uint64_t id, int timeout_ms, Sluice__Frame **out)
{
	long long deadline = itest_now_ms() + timeout_ms;

	for (;;) {
		long long left = deadline - itest_now_ms();
		int rc = itest_recv_frame(fd, left > 0 ? (int)left : 0, out);
		if (rc)
			return rc;
		if ((*out)->id == id)
			return 0;
		sluice__frame__free_unpacked(*out, NULL);
		*out = NULL;
	}
}

int itest_hello(int fd)
{
	Sluice__Frame f = SLUICE__FRAME__INIT, *r = NULL;
	Sluice__Hello h = SLUICE__HELLO__INIT;
	int rc;

	h.min_version = 1;
	h.max_version = 1;
	h.client_name = "itest";
	f.id = 1;
	f.body_case = SLUICE__FRAME__BODY_HELLO;
	f.hello = &h;
	rc = itest_send_frame(fd, &f);
	if (rc)
		return rc;
	rc = itest_recv_frame(fd, 5000, &r);
	if (rc)
		return rc;
	if (r->body_case != SLUICE__FRAME__BODY_HELLO_OK || r->hello_ok->version != 1)
		rc = SL_EVERSION;
	sluice__frame__free_unpacked(r, NULL);
	return rc;
}

int itest_send_node_status(int fd, uint64_t id)
{
	Sluice__Frame f = SLUICE__FRAME__INIT;
	Sluice__NodeStatus ns = SLUICE__NODE_STATUS__INIT;

	f.id = id;
	f.body_case = SLUICE__FRAME__BODY_NODE_STATUS;
	f.node_status = &ns;
	return itest_send_frame(fd, &f);
}

/* One NodeStatus round trip on a fresh connection; *out is the response. */
static int node_status_fetch(uint16_t port, int timeout_ms, Sluice__Frame **out)
{
	int fd = itest_connect(port), rc;

	*out = NULL;
	if (fd < 0)
		return SL_ECLOSED;
	rc = itest_hello(fd);
	if (rc == 0)
		rc = itest_send_node_status(fd, 2);
	if (rc == 0)
		rc = itest_recv_response(fd, 2, timeout_ms, out);
	if (rc == 0 && (*out)->body_case != SLUICE__FRAME__BODY_NODE_STATUS_RESULT)
		rc = SL_EINTERNAL;
	close(fd);
	return rc;
}

int itest_node_status_raw(uint16_t port, int timeout_ms)
{
	Sluice__Frame *r;
	int rc = node_status_fetch(port, timeout_ms, &r);

	if (r)
		sluice__frame__free_unpacked(r, NULL);
	return rc;
}

int itest_node_status_get(uint16_t port, uint32_t *logwriter_restarts, uint32_t *frontend_restarts, uint32_t *topics)
{
	Sluice__Frame *r;
	int rc = node_status_fetch(port, 5000, &r);

	if (rc == 0) {
		*logwriter_restarts = r->node_status_result->logwriter_restarts;
		*frontend_restarts = r->node_status_result->frontend_restarts;
		*topics = r->node_status_result->topics;
	}
	if (r)
		sluice__frame__free_unpacked(r, NULL);
	return rc;
}

/* The code of an Error response, or SL_EINTERNAL for an unexpected body. */
static int response_code(const Sluice__Frame *r, Sluice__Frame__BodyCase want)
{
	if (r->body_case == want)
		return 0;
	if (r->body_case == SLUICE__FRAME__BODY_ERROR)
		return r->error->code ? (int)r->error->code : SL_EINTERNAL;
	return SL_EINTERNAL;
}

int itest_raw_create_topic(int fd, uint64_t id, const char *name, uint32_t partitions)
{
	Sluice__Frame f = SLUICE__FRAME__INIT, *r = NULL;
	Sluice__CreateTopic ct = SLUICE__CREATE_TOPIC__INIT;
	Sluice__TopicConfig tc = SLUICE__TOPIC_CONFIG__INIT;
	int rc;

	tc.partitions = partitions;
	ct.name = (char *)name;
	ct.config = &tc;
	f.id = id;
	f.body_case = SLUICE__FRAME__BODY_CREATE_TOPIC;
	f.create_topic = &ct;
	rc = itest_send_frame(fd, &f);
	if (rc == 0)
		rc = itest_recv_response(fd, id, 10000, &r);
	if (rc == 0)
		rc = response_code(r, SLUICE__FRAME__BODY_OK);
	if (r)
		sluice__frame__free_unpacked(r, NULL);
	return rc;
}

int itest_raw_send_publish(int fd, uint64_t id, const char *topic, int partition, const void *payload, size_t len,
                           uint64_t producer_id, uint64_t sequence)
{
	Sluice__Frame f = SLUICE__FRAME__INIT;
	Sluice__Publish p = SLUICE__PUBLISH__INIT;

	p.topic = (char *)topic;
	if (partition >= 0) {
		p.has_partition = 1;
		p.partition = (uint32_t)partition;
	}
	p.payload.data = (uint8_t *)payload;
	p.payload.len = len;
	p.producer_id = producer_id;
	p.sequence = sequence;
	f.id = id;
	f.body_case = SLUICE__FRAME__BODY_PUBLISH;
	f.publish = &p;
	return itest_send_frame(fd, &f);
}

int itest_raw_publish_batch(int fd, uint64_t id, const char *topic, uint32_t partition, const uint8_t *records,
                            size_t len, uint32_t count, uint64_t *base_out)
{
	Sluice__Frame f = SLUICE__FRAME__INIT, *r = NULL;
	Sluice__PublishBatch b = SLUICE__PUBLISH_BATCH__INIT;
	int rc;

	b.topic = (char *)topic;
	b.has_partition = 1;
	b.partition = partition;
	b.count = count;
	b.records.data = (uint8_t *)records;
	b.records.len = len;
	b.crc32c = crc32c(0, records, len);
	f.id = id;
	f.body_case = SLUICE__FRAME__BODY_PUBLISH_BATCH;
	f.publish_batch = &b;
	rc = itest_send_frame(fd, &f);
	if (rc == 0)
		rc = itest_recv_response(fd, id, 10000, &r);
	if (rc == 0)
		rc = response_code(r, SLUICE__FRAME__BODY_PUBLISH_BATCH_ACK);
	if (rc == 0 && r->publish_batch_ack->count != count)
		rc = SL_EINTERNAL;
	if (rc == 0 && base_out)
		*base_out = r->publish_batch_ack->base_offset;
	if (r)
		sluice__frame__free_unpacked(r, NULL);
	return rc;
}

int itest_raw_wait_ack(int fd, uint64_t id, int timeout_ms, uint32_t *partition, uint64_t *offset, int *duplicate)
{
	Sluice__Frame *r = NULL;
	int rc = itest_recv_response(fd, id, timeout_ms, &r);

	if (rc == 0)
		rc = response_code(r, SLUICE__FRAME__BODY_PUBLISH_ACK);
	if (rc == 0) {
		if (partition)
			*partition = r->publish_ack->partition;
		if (offset)
			*offset = r->publish_ack->offset;
		if (duplicate)
			*duplicate = r->publish_ack->duplicate;
	}
	if (r)
		sluice__frame__free_unpacked(r, NULL);
	return rc;
}

static void itest_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

int itest_loop_until(struct event_base *base, const size_t *count, size_t want, int timeout_ms)
{
	struct event *tick = event_new(base, -1, EV_PERSIST, itest_tick_cb, NULL);
	struct timeval tv = {0, 10000};
	long long deadline = itest_now_ms() + timeout_ms;

	event_add(tick, &tv);
	while (*count < want && itest_now_ms() < deadline)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(tick);
	return *count >= want ? 0 : -1;
}

void itest_loop_for(struct event_base *base, int ms)
{
	size_t never = 0;
	itest_loop_until(base, &never, 1, ms);
}

struct fetch_page {
	void (*fn)(void *arg, const struct sluice_msg *m);
	void *arg;
	size_t n;
	uint64_t next;
};

static void fetch_page_fn(void *arg, const struct sluice_msg *m)
{
	struct fetch_page *fp = arg;
	fp->n++;
	fp->next = m->offset + 1;
	fp->fn(fp->arg, m);
}

int itest_fetch_all(struct sluice_sync *sy, const char *topic, uint32_t part, uint32_t page_max,
                    void (*fn)(void *arg, const struct sluice_msg *m), void *arg, uint64_t *end_out, char *em,
                    size_t emlen)
{
	struct fetch_page fp = {fn, arg, 0, 0};

	*end_out = 0;
	for (int guard = 0; guard < 10000; guard++) {
		size_t before = fp.n;
		int rc = sluice_sync_fetch(sy, topic, part, fp.next, page_max, 0, fetch_page_fn, &fp, end_out, em, emlen);
		if (rc != 0)
			return rc;
		if (fp.n == before || fp.next >= *end_out)
			break;
	}
	return 0;
}

void itest_pub_fill(struct sluice_pub *p, const char *topic, int partition, const char *key, const char *payload,
                    const struct sluice_header *hs, size_t hs_n)
{
	memset(p, 0, sizeof(*p));
	p->topic = topic;
	p->key = sluice_bytes_cstr(key);
	p->has_partition = partition >= 0;
	p->partition = partition >= 0 ? (uint32_t)partition : 0;
	p->headers = hs;
	p->headers_n = hs_n;
	p->payload = sluice_bytes_cstr(payload);
}

/* ---------- HTTP/1.1 over a raw socket ---------- */

int itest_http_open(struct itest_http_conn *c, uint16_t port)
{
	c->fd = itest_connect(port);
	c->len = 0;
	return c->fd >= 0 ? 0 : -1;
}

int itest_http_send(struct itest_http_conn *c, const char *s, size_t n)
{
	return itest_send_raw(c->fd, s, n) == 0 ? 0 : -1;
}

/* Read more bytes: how many, 0 on a timeout, -1 on EOF, an error or a full buffer. */
static ssize_t http_fill(struct itest_http_conn *c, int timeout_ms)
{
	struct pollfd p = {c->fd, POLLIN, 0};
	ssize_t n;

	if (c->len >= sizeof(c->buf))
		return -1;
	if (poll(&p, 1, timeout_ms) <= 0)
		return 0;
	n = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
	if (n <= 0)
		return -1;
	c->len += (size_t)n;
	return n;
}

size_t itest_http_fill(struct itest_http_conn *c, int timeout_ms)
{
	ssize_t n = http_fill(c, timeout_ms);

	return n > 0 ? (size_t)n : 0;
}

void itest_http_consume(struct itest_http_conn *c, size_t n)
{
	memmove(c->buf, c->buf + n, c->len - n);
	c->len -= n;
}

int itest_http_response(struct itest_http_conn *c, struct itest_http_resp *r)
{
	long long deadline = itest_now_ms() + 10000;
	char *end, *cl;
	size_t hl, bl = 0;

	memset(r, 0, sizeof(*r));
	for (;;) {
		c->buf[c->len < sizeof(c->buf) ? c->len : sizeof(c->buf) - 1] = 0;
		if ((end = strstr(c->buf, "\r\n\r\n")))
			break;
		if (itest_now_ms() > deadline || http_fill(c, 200) < 0) {
			fprintf(stderr, "itest_http_response: no complete head (%zu bytes read): %.200s\n", c->len, c->buf);
			return -1;
		}
	}
	hl = (size_t)(end - c->buf) + 4;
	if (hl >= sizeof(r->head)) {
		fprintf(stderr, "itest_http_response: %zu bytes of headers\n", hl);
		return -1;
	}
	memcpy(r->head, c->buf, hl);
	r->head[hl] = 0;
	sscanf(r->head, "HTTP/1.1 %d", &r->status);
	if ((cl = strcasestr(r->head, "\r\nContent-Length: ")))
		bl = strtoul(cl + 18, NULL, 10);
	while (c->len < hl + bl) {
		if (itest_now_ms() > deadline || http_fill(c, 200) < 0) {
			fprintf(stderr, "itest_http_response: %zu of %zu body bytes after %s\n", c->len - hl, bl, r->head);
			return -1;
		}
	}
	if (!(r->body = malloc(bl + 1)))
		return -1;
	memcpy(r->body, c->buf + hl, bl);
	r->body[bl] = 0;
	r->body_len = bl;
	itest_http_consume(c, hl + bl);
	return 0;
}

int itest_http_closed(struct itest_http_conn *c)
{
	long long deadline = itest_now_ms() + 10000;
	struct pollfd p = {c->fd, POLLIN, 0};
	char b[4096];

	while (itest_now_ms() < deadline) {
		if (poll(&p, 1, 200) > 0) {
			ssize_t n = read(c->fd, b, sizeof(b));
			if (n <= 0)
				return 1;
		}
	}
	return 0;
}

int itest_http_request(uint16_t port, const char *raw, struct itest_http_resp *r)
{
	struct itest_http_conn *c = malloc(sizeof(*c));
	int rc = -1;

	memset(r, 0, sizeof(*r));
	if (!c)
		return -1;
	if (itest_http_open(c, port) == 0) {
		rc = itest_http_send(c, raw, strlen(raw)) == 0 && itest_http_response(c, r) == 0 ? 0 : -1;
		close(c->fd);
	}
	free(c);
	return rc;
}

int itest_http_simple(uint16_t port, const char *method, const char *path, const char *hdrs, const char *body,
                      struct itest_http_resp *r)
{
	size_t n = strlen(method) + strlen(path) + strlen(hdrs) + strlen(body) + 96;
	char *raw = malloc(n);
	int rc;

	if (!raw)
		return -1;
	snprintf(raw, n, "%s %s HTTP/1.1\r\nHost: x\r\n%sContent-Length: %zu\r\n\r\n%s", method, path, hdrs,
	         strlen(body), body);
	rc = itest_http_request(port, raw, r);
	free(raw);
	return rc;
}

void itest_http_resp_free(struct itest_http_resp *r)
{
	free(r->body);
	r->body = NULL;
}
