/*
 * master.c: sluiced, the master process of a node.
 *
 * It reads the config (INI file, then flags: a flag wins), creates the shared
 * segment (memfd) with every ring and the commit table, the eventfds and the
 * listening socket, then forks one logwriter and N frontends. Children open
 * LMDB themselves after fork. A child that dies is restarted with backoff
 * (100 ms doubling to 5 s, reset after 10 s of good running). Children get
 * PR_SET_PDEATHSIG: if the master is killed, they die too and whoever
 * supervises sluiced (systemd, a test) starts it again on the same data dir.
 *
 * SIGTERM/SIGINT: frontends are stopped first (they stop accepting and wait
 * for their pending acks), then the logwriter drains the rings; exit 0.
 *
 * SIGHUP: forwarded to the frontends, which read the [tls] files again for
 * their new connections (broker/frontend/fe_tls.h). The files are checked
 * here once before anything starts, so a bad certificate stops the node with
 * a message naming the file instead of a loop of failing frontends.
 */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include <sodium.h>

#include "config.h"
#include "err.h"
#include "fe_tls.h"
#include "tls.h"
#include "frontend.h"
#include "log.h"
#include "logwriter.h"
#include "notify.h"
#include "ring.h"
#include "ringmsg.h"
#include "shm.h"
#include "sl_assert.h"
#include "snapinst.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define HEALTHY_MS 10000
#define STOP_WAIT_MS 15000

struct child {
	pid_t pid;
	int64_t started_ms;
	int64_t restart_at_ms;  /* 0: not waiting to restart */
	uint32_t backoff_ms;
};

struct master {
	struct config cfg;
	struct shm shm;
	int shm_fd;
	int listen_fd;
	int http_fd;            /* HTTP/1.1 listener ([listen] http) */
	int lw_efd;
	int *fe_efds;
	struct child lw;
	struct child *fe;
	int sigfd;
	int reseed;             /* the logwriter exited to install a snapshot */
	struct notify notify;   /* systemd: READY, WATCHDOG, STOPPING */
};

static void usage(FILE *f)
{
	fprintf(f, "usage: sluiced [--config FILE] [--node-id N] [--data-dir DIR] [--listen HOST:PORT]\n"
		   "               [--http HOST:PORT] [--frontends N] [--KEY VALUE]...\n"
		   "Every key of the config file is also a flag (data_dir is --data-dir, map_bytes is --map-bytes, ...)\n"
		   "and a flag wins over the file.\n"
		   "With no config, a single node keeps its data in ./sluice-data and listens on 127.0.0.1:7400\n"
		   "(native protocol) and 127.0.0.1:8400 (HTTP/1.1, Server-Sent Events).\n"
		   "Keys and defaults: docs/configuration.md.\n");
}

/* Every config key is also a flag (docs/configuration.md), by the names
 * config_flag_name gives; flags are applied after the file, so a flag wins. */
#define KEY_FLAGS_MAX 64

static int parse_args(struct master *m, int argc, char **argv)
{
	struct option opts[KEY_FLAGS_MAX + 4];
	size_t nflags = 0;
	for (; config_flag_name(nflags); nflags++) {
		SL_ASSERT(nflags < KEY_FLAGS_MAX);
		opts[nflags] = (struct option){config_flag_name(nflags), required_argument, 0, 1};
	}
	opts[nflags] = (struct option){"config", required_argument, 0, 'c'};
	opts[nflags + 1] = (struct option){"help", no_argument, 0, 'h'};
	opts[nflags + 2] = (struct option){"version", no_argument, 0, 'V'};
	opts[nflags + 3] = (struct option){0, 0, 0, 0};
	const char *cfgfile = NULL;
	const char *vals[KEY_FLAGS_MAX] = {0};
	int c, idx;
	while ((c = getopt_long(argc, argv, "c:hV", opts, &idx)) != -1) {
		if (c == 'c') {
			cfgfile = optarg;
		} else if (c == 1) {
			vals[idx] = optarg;
		} else if (c == 'h') {
			usage(stdout);
			exit(0);
		} else if (c == 'V') {
			printf("sluiced %s\n", SLUICE_VERSION);
			exit(0);
		} else {
			usage(stderr);
			return 64;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "sluiced: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 64;
	}
	char err[512];
	config_defaults(&m->cfg);
	if (cfgfile && config_load_file(&m->cfg, cfgfile, err, sizeof(err)) != SL_OK) {
		fprintf(stderr, "sluiced: %s: %s\n", cfgfile, err);
		return 78;
	}
	for (size_t i = 0; i < nflags; i++) {
		if (vals[i] && config_set(&m->cfg, "", config_flag_name(i), vals[i], err, sizeof(err))) {
			fprintf(stderr, "sluiced: --%s: %s\n", config_flag_name(i), err);
			return 64;
		}
	}
	/* a publish of frame_bytes_max must fit in one ring record */
	if ((uint64_t)m->cfg.frame_bytes_max + sizeof(struct rm_publish) > m->cfg.ring_bytes / 4 - RING_HDR_BYTES) {
		fprintf(stderr, "sluiced: frame_bytes_max (%u) must be at most ring_bytes/4 minus %zu bytes\n",
			m->cfg.frame_bytes_max, sizeof(struct rm_publish) + RING_HDR_BYTES);
		return 64;
	}
	if (config_validate(&m->cfg, err, sizeof(err)) != SL_OK) {
		fprintf(stderr, "sluiced: %s\n", err);
		return 64;
	}
	return 0;
}

static int open_listener(const char *hostport)
{
	char host[256], port[8];
	uint16_t p;
	if (config_parse_hostport(hostport, host, sizeof(host), &p) != SL_OK) {
		log_error("bad listen address '%s'", hostport);
		return -1;
	}
	snprintf(port, sizeof(port), "%u", p);
	struct addrinfo hints = {0}, *ai = NULL;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	int rc = getaddrinfo(host, port, &hints, &ai);
	if (rc) {
		log_error("listen address %s: %s", hostport, gai_strerror(rc));
		return -1;
	}
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
	int one = 1;
	if (fd >= 0) {
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	}
	if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 1024) < 0) {
		log_error("listen on %s: %s", hostport, strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	return fd;
}

/* In the child: die with the master, take a name, unblock signals. */
static void child_setup(const char *name, pid_t master)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != master)
		_exit(0); /* the master died before we got here */
	prctl(PR_SET_NAME, name);
	/* a SIGHUP before the frontend's own handler is in place must not kill it */
	signal(SIGHUP, SIG_IGN);
	sigset_t all;
	sigfillset(&all);
	sigprocmask(SIG_UNBLOCK, &all, NULL);
	signal(SIGPIPE, SIG_IGN);
	log_set_role(name);
}

static pid_t spawn_logwriter(struct master *m)
{
	m->shm.hdr->logwriter_ready = 0;
	m->shm.hdr->logwriter_generation++;
	pid_t master = getpid();
	pid_t pid = fork();
	if (pid == 0) {
		child_setup("sluice-logwriter", master);
		close(m->listen_fd);
		close(m->http_fd);
		close(m->sigfd);
		struct logwriter_args a = {&m->cfg, &m->shm, m->lw_efd, m->fe_efds};
		_exit(logwriter_main(&a));
	}
	if (pid > 0)
		m->shm.hdr->logwriter_pid = (uint32_t)pid;
	return pid;
}

static pid_t spawn_frontend(struct master *m, uint32_t i)
{
	shm_add(&shm_frontend(&m->shm, i)->generation, 1);
	pid_t master = getpid();
	pid_t pid = fork();
	if (pid == 0) {
		char name[16];
		snprintf(name, sizeof(name), "sluice-fe-%u", i);
		child_setup(name, master);
		close(m->sigfd);
		struct frontend_args a = {&m->cfg, &m->shm, i, m->listen_fd, m->http_fd, m->fe_efds[i], m->lw_efd};
		_exit(frontend_main(&a));
	}
	if (pid > 0)
		shm_frontend(&m->shm, i)->pid = (uint32_t)pid;
	return pid;
}

static void child_started(struct child *c, pid_t pid)
{
	c->pid = pid;
	c->started_ms = time_now_ms();
	c->restart_at_ms = pid > 0 ? 0 : c->started_ms + BACKOFF_MAX_MS;
}

/* A child ended: plan its restart with backoff. */
static void child_ended(struct child *c, const char *what, int status)
{
	int64_t now = time_now_ms();
	if (now - c->started_ms > HEALTHY_MS)
		c->backoff_ms = 0;
	c->backoff_ms = c->backoff_ms ? c->backoff_ms * 2 : BACKOFF_MIN_MS;
	if (c->backoff_ms > BACKOFF_MAX_MS)
		c->backoff_ms = BACKOFF_MAX_MS;
	c->pid = 0;
	c->restart_at_ms = now + c->backoff_ms;
	if (WIFSIGNALED(status))
		log_warn("%s killed by signal %d; restarting in %u ms", what, WTERMSIG(status), c->backoff_ms);
	else
		log_warn("%s exited with %d; restarting in %u ms", what, WEXITSTATUS(status), c->backoff_ms);
}

static void reap(struct master *m, int stopping)
{
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (pid == m->lw.pid) {
			m->lw.pid = 0;
			if (!stopping && WIFEXITED(status) && WEXITSTATUS(status) == LOGWRITER_EXIT_RESEED)
				m->reseed = 1;
			if (!stopping) {
				child_ended(&m->lw, "logwriter", status);
				shm_stat_add(&m->shm.hdr->logwriter_restarts, 1);
			}
			continue;
		}
		for (uint32_t i = 0; i < m->cfg.frontends; i++) {
			if (pid != m->fe[i].pid)
				continue;
			m->fe[i].pid = 0;
			if (!stopping) {
				child_ended(&m->fe[i], "frontend", status);
				shm_stat_add(&m->shm.hdr->frontend_restarts, 1);
			}
		}
	}
}

static void restart_due(struct master *m)
{
	int64_t now = time_now_ms();
	if (!m->lw.pid && m->lw.restart_at_ms && now >= m->lw.restart_at_ms)
		child_started(&m->lw, spawn_logwriter(m));
	for (uint32_t i = 0; i < m->cfg.frontends; i++)
		if (!m->fe[i].pid && m->fe[i].restart_at_ms && now >= m->fe[i].restart_at_ms)
			child_started(&m->fe[i], spawn_frontend(m, i));
}

static int next_wait_ms(struct master *m)
{
	int64_t now = time_now_ms(), next = now + 1000;
	if (!m->lw.pid && m->lw.restart_at_ms && m->lw.restart_at_ms < next)
		next = m->lw.restart_at_ms;
	for (uint32_t i = 0; i < m->cfg.frontends; i++)
		if (!m->fe[i].pid && m->fe[i].restart_at_ms && m->fe[i].restart_at_ms < next)
			next = m->fe[i].restart_at_ms;
	return next > now ? (int)(next - now) : 0;
}

/* Wait until the given children are gone, SIGKILL after STOP_WAIT_MS. */
static void wait_children(struct master *m, int frontends_only)
{
	int64_t deadline = time_now_ms() + STOP_WAIT_MS;
	for (;;) {
		reap(m, 1);
		int alive = frontends_only ? 0 : m->lw.pid != 0;
		for (uint32_t i = 0; i < m->cfg.frontends; i++)
			alive += m->fe[i].pid != 0;
		if (!alive)
			return;
		if (time_now_ms() > deadline) {
			log_warn("children did not stop in %d ms: killing them", STOP_WAIT_MS);
			for (uint32_t i = 0; i < m->cfg.frontends; i++)
				if (m->fe[i].pid)
					kill(m->fe[i].pid, SIGKILL);
			if (!frontends_only && m->lw.pid)
				kill(m->lw.pid, SIGKILL);
			deadline = time_now_ms() + STOP_WAIT_MS;
		}
		struct pollfd pfd = {m->sigfd, POLLIN, 0};
		if (poll(&pfd, 1, 50) > 0) {
			struct signalfd_siginfo si;
			if (read(m->sigfd, &si, sizeof(si)) < 0 && errno != EAGAIN)
				log_warn("signalfd: %s", strerror(errno));
		}
	}
}

static void stop_all(struct master *m)
{
	log_info("stopping: frontends first, then the logwriter");
	notify_stopping(&m->notify);
	shm_store(&m->shm.hdr->draining, 1);
	for (uint32_t i = 0; i < m->cfg.frontends; i++)
		if (m->fe[i].pid)
			kill(m->fe[i].pid, SIGTERM);
	wait_children(m, 1);
	if (m->lw.pid)
		kill(m->lw.pid, SIGTERM);
	wait_children(m, 0);
	log_info("stopped");
}

/* Complete or discard a snapshot install (replica/logwriter/snapinst.h);
 * runs while no child has the environment open. */
static void snapshot_recover(struct master *m)
{
	int installed = 0;
	int rc = snapinst_recover(m->cfg.data_dir, &installed);
	if (rc)
		log_error("cannot install the snapshot in %s: %s (the old data stays in place)", m->cfg.data_dir,
			  sl_strerror(rc));
	else if (installed)
		log_info("snapshot installed as %s/data.mdb", m->cfg.data_dir);
}

/*
 * The logwriter received a snapshot of the leader's whole state
 * (<data_dir>/snapshot-in.mdb) and exited. The frontends have the old
 * environment mapped, so they go too; the copy replaces data.mdb (with a
 * fresh lock file), then everything starts again on it.
 */
static void reseed_install(struct master *m)
{
	log_info("installing the snapshot received from the leader; restarting the frontends on it");
	for (uint32_t i = 0; i < m->cfg.frontends; i++)
		if (m->fe[i].pid)
			kill(m->fe[i].pid, SIGKILL);
	wait_children(m, 1);
	snapshot_recover(m);
	int64_t now = time_now_ms();
	m->lw.restart_at_ms = now;
	for (uint32_t i = 0; i < m->cfg.frontends; i++)
		m->fe[i].restart_at_ms = now;
}

/* Ready for systemd: the listeners are open (before any child started),
 * the logwriter has the store ready (frontends then accept), and in a
 * cluster a leader is known. */
static int node_serves(struct master *m)
{
	if (!shm_load(&m->shm.hdr->logwriter_ready))
		return 0;
	return m->cfg.cluster_n == 0 || shm_stat_load(&m->shm.hdr->cluster.leader_id) != 0;
}

/* SIGHUP: each frontend reloads its TLS certificate (and logs how it went). */
static void forward_hup(struct master *m)
{
	if (!m->cfg.tls_cert[0]) {
		log_info("SIGHUP: TLS is off, nothing to reload");
		return;
	}
	log_info("SIGHUP: frontends reload the TLS certificate %s", m->cfg.tls_cert);
	for (uint32_t i = 0; i < m->cfg.frontends; i++)
		if (m->fe[i].pid)
			kill(m->fe[i].pid, SIGHUP);
	if (tls_peer_enabled(&m->cfg) && m->lw.pid)
		kill(m->lw.pid, SIGHUP); /* and the logwriter the peer links' */
}

/* Refuse to start on TLS files that cannot be used (the frontends would
 * fail the same way, over and over). */
static int check_tls(const struct config *cfg)
{
	struct ssl_ctx_st *ctx = NULL, *peer = NULL;
	char err[512];

	if (tls_server_ctx_new(cfg, &ctx, err, sizeof(err)) != SL_OK ||
	    tls_peer_ctx_new(cfg, &peer, err, sizeof(err)) != SL_OK) {
		fe_tls_ctx_free(ctx);
		fprintf(stderr, "sluiced: %s\n", err);
		return 78;
	}
	fe_tls_ctx_free(ctx);
	fe_tls_ctx_free(peer);
	return 0;
}

static int run(struct master *m)
{
	snapshot_recover(m); /* a power loss may have stopped an install half way */
	child_started(&m->lw, spawn_logwriter(m));
	for (uint32_t i = 0; i < m->cfg.frontends; i++)
		child_started(&m->fe[i], spawn_frontend(m, i));
	log_info("node %u listening on %s (native) and %s (http)%s with %u frontends, data in %s", m->cfg.node_id,
		 m->cfg.listen_native, m->cfg.listen_http, m->cfg.tls_cert[0] ? " with TLS" : "", m->cfg.frontends,
		 m->cfg.data_dir);
	notify_init(&m->notify);
	for (;;) {
		struct pollfd pfd = {m->sigfd, POLLIN, 0};
		int wait = next_wait_ms(m), nwait = notify_tick(&m->notify, node_serves(m));
		int n = poll(&pfd, 1, nwait >= 0 && nwait < wait ? nwait : wait);
		if (n > 0) {
			struct signalfd_siginfo si;
			if (read(m->sigfd, &si, sizeof(si)) != sizeof(si))
				si.ssi_signo = 0;
			if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
				stop_all(m);
				return 0;
			}
			if (si.ssi_signo == SIGHUP)
				forward_hup(m);
		}
		reap(m, 0);
		if (m->reseed && !m->lw.pid) {
			m->reseed = 0;
			reseed_install(m);
		}
		restart_due(m);
	}
}

/*
 * One sluiced per data dir: an flock on <data_dir>/sluiced.lock, inherited by
 * the children. After a kill -9 of a master its children take a moment to
 * die and drop the lock, so wait a little for it.
 */
static int lock_data_dir(const char *dir)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/sluiced.lock", dir);
	int fd = open(path, O_RDWR | O_CREAT, 0644);
	if (fd < 0) {
		log_error("cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	for (int i = 0; i < 100; i++) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			return fd;
		usleep(50 * 1000);
	}
	log_error("another sluiced is using %s (%s is locked)", dir, path);
	close(fd);
	return -1;
}

static int setup(struct master *m)
{
	if (mkdir(m->cfg.data_dir, 0755) < 0 && errno != EEXIST) {
		log_error("cannot create data dir %s: %s", m->cfg.data_dir, strerror(errno));
		return 73;
	}
	if (lock_data_dir(m->cfg.data_dir) < 0)
		return 75;
	int rc = shm_create(&m->shm, &m->shm_fd, m->cfg.node_id, m->cfg.frontends, m->cfg.partitions_max,
			    m->cfg.ring_bytes);
	if (rc) {
		log_error("cannot create the shared segment: %s", sl_strerror(rc));
		return 71;
	}
	randombytes_buf(&m->shm.hdr->instance, sizeof(m->shm.hdr->instance));
	randombytes_buf(m->shm.hdr->node_seed, sizeof(m->shm.hdr->node_seed));
	m->shm.hdr->started_ms = time_now_ms();
	m->lw_efd = eventfd(0, EFD_NONBLOCK);
	m->fe_efds = calloc(m->cfg.frontends, sizeof(int));
	m->fe = calloc(m->cfg.frontends, sizeof(*m->fe));
	if (m->lw_efd < 0 || !m->fe_efds || !m->fe)
		return 71;
	for (uint32_t i = 0; i < m->cfg.frontends; i++) {
		m->fe_efds[i] = eventfd(0, EFD_NONBLOCK);
		if (m->fe_efds[i] < 0)
			return 71;
	}
	m->listen_fd = open_listener(m->cfg.listen_native);
	if (m->listen_fd < 0)
		return 69;
	m->http_fd = open_listener(m->cfg.listen_http);
	if (m->http_fd < 0)
		return 69;
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);
	m->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	return m->sigfd < 0 ? 71 : 0;
}

int main(int argc, char **argv)
{
	static struct master m;
	log_set_role("master");
	signal(SIGPIPE, SIG_IGN);
	int rc = parse_args(&m, argc, argv);
	if (rc)
		return rc;
	log_set_level((enum log_level)m.cfg.log_level);
	if (sodium_init() < 0)
		return 71;
	rc = check_tls(&m.cfg);
	if (rc)
		return rc;
	rc = setup(&m);
	if (rc)
		return rc;
	return run(&m);
}
