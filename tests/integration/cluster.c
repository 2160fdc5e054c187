/*
 * cluster.c: three sluiced nodes on loopback with every peer link through a
 * faultproxy (see cluster.h). Node processes are spawned here rather than by
 * itest_node_spawn because a cluster node takes more flags than
 * itest_node.extra holds and must not inherit the test's sockets: the
 * publisher and proxy threads open connections while nodes are forked.
 * Everything the child needs is formatted before fork; the child only calls
 * prctl, open, dup2, close_range and execv.
 *
 * With SLUICE_CLUSTER_SECURE=1 in the environment the cluster runs secured:
 * node certificates from deploy/certs.sh on every client listener and on the
 * peer links (mutual TLS, through the same faultproxy), [auth] enabled with
 * an admin key from `sluice key gen`; libsluice clients of the test trust the
 * CA and use that key through SLUICE_TLS_CA and SLUICE_KEY.
 */
#define _GNU_SOURCE
#include "cluster.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sluice/sluice.h"

#ifndef SLUICED_BIN
#define SLUICED_BIN "sluiced"
#endif

#define CLUSTER_ARGS_MAX 48

/* SLUICE_CLUSTER_SECURE: certificates and the admin key, made once per process. */
static struct {
	int on;
	char dir[64];
	char ca[96], admin_pub[128];
	char cert[CLUSTER_N][96], key[CLUSTER_N][96];
} secure;

static void secure_remove(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", secure.dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cluster: cannot remove %s\n", secure.dir);
}

static int secure_init(void)
{
	const char *env = getenv("SLUICE_CLUSTER_SECURE");
	char cmd[1024], path[128];
	FILE *f;

	if (secure.on || !env || strcmp(env, "1") != 0)
		return 0;
	snprintf(secure.dir, sizeof(secure.dir), "/tmp/sluice-cluster-secure.XXXXXX");
	if (!mkdtemp(secure.dir))
		return -1;
	atexit(secure_remove);
	snprintf(cmd, sizeof(cmd), "bash %s %s/tls 1 2 3 && %s key gen %s/admin.key >%s/admin.pub", CERTS_SH,
		 secure.dir, SLUICE_BIN, secure.dir, secure.dir);
	if (system(cmd) != 0)
		return -1;
	snprintf(path, sizeof(path), "%s/admin.pub", secure.dir);
	if (!(f = fopen(path, "r")))
		return -1;
	int ok = fgets(secure.admin_pub, sizeof(secure.admin_pub), f) != NULL;
	fclose(f);
	if (!ok)
		return -1;
	secure.admin_pub[strcspn(secure.admin_pub, "\n")] = 0;
	snprintf(secure.ca, sizeof(secure.ca), "%s/tls/ca.pem", secure.dir);
	for (int i = 0; i < CLUSTER_N; i++) {
		snprintf(secure.cert[i], sizeof(secure.cert[i]), "%s/tls/node%d.pem", secure.dir, i + 1);
		snprintf(secure.key[i], sizeof(secure.key[i]), "%s/tls/node%d.key", secure.dir, i + 1);
	}
	snprintf(path, sizeof(path), "%s/admin.key", secure.dir);
	setenv("SLUICE_TLS_CA", secure.ca, 1);
	setenv("SLUICE_KEY", path, 1);
	secure.on = 1;
	fprintf(stderr, "cluster: secured (TLS on every link, auth on) with %s\n", secure.dir);
	return 0;
}

/* Bind 127.0.0.1:port (0: any) and keep it, so that nothing else on this
 * machine (our proxy included) is given that port meanwhile. */
static int port_hold(uint16_t *port)
{
	struct sockaddr_in sa = {0};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	sa.sin_family = AF_INET;
	sa.sin_port = htons(*port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
		close(fd);
		return -1;
	}
	*port = ntohs(sa.sin_port);
	return fd;
}

int cluster_init(struct cluster *c, uint32_t frontends)
{
	int held[3 * CLUSTER_N];
	size_t off = 0, nh = 0;
	int rc = -1;

	memset(c, 0, sizeof(*c));
	signal(SIGPIPE, SIG_IGN); /* the checker's sockets may outlive a killed node */
	if (secure_init() != 0)
		return -1;
	for (int i = 0; i < CLUSTER_N; i++) {
		if (itest_node_init(&c->node[i]) != 0)
			return -1;
		c->node[i].frontends = frontends;
	}
	/* Client, HTTP and peer ports stay bound until the proxy has its own. */
	for (int i = 0; i < CLUSTER_N; i++) {
		c->node[i].port = 0; /* a fresh one: the harness's pick is already released */
		if ((held[nh] = port_hold(&c->node[i].port)) < 0)
			goto out;
		nh++;
		c->node[i].http_port = 0;
		if ((held[nh] = port_hold(&c->node[i].http_port)) < 0)
			goto out;
		nh++;
		snprintf(c->node[i].addr, sizeof(c->node[i].addr), "127.0.0.1:%u", c->node[i].port);
		if ((held[nh] = port_hold(&c->peer_port[i])) < 0)
			goto out;
		nh++;
	}
	if (faultproxy_new(&c->fp) != 0)
		goto out;
	for (int i = 0; i < CLUSTER_N; i++)
		for (int j = 0; j < CLUSTER_N; j++) {
			c->link[i][j] = -1;
			if (i != j &&
			    (c->link[i][j] = faultproxy_add_link(c->fp, c->peer_port[j], &c->proxy_port[i][j])) < 0)
				goto out;
		}
	rc = 0;
out:
	for (size_t h = 0; h < nh; h++)
		close(held[h]);
	if (rc != 0)
		return rc;
	for (int i = 0; i < CLUSTER_N; i++) {
		size_t po = 0;
		for (int j = 0; j < CLUSTER_N; j++)
			po += (size_t)snprintf(c->peers[i] + po, sizeof(c->peers[i]) - po, "%s%d=127.0.0.1:%u",
			                       j ? "," : "", j + 1, i == j ? c->peer_port[j] : c->proxy_port[i][j]);
		off += (size_t)snprintf(c->clients + off, sizeof(c->clients) - off, "%s%d=%s", i ? "," : "", i + 1,
		                        c->node[i].addr);
	}
	off = 0;
	for (int i = 0; i < CLUSTER_N; i++)
		off +=
		    (size_t)snprintf(c->servers + off, sizeof(c->servers) - off, "%s%s", i ? "," : "", c->node[i].addr);
	return 0;
}

/* ---- processes ---- */

struct spawn_args {
	char listen[64], http[64], fe[16], id[16], election[16], heartbeat[16];
	const char *argv[CLUSTER_ARGS_MAX];
};

static void spawn_args_fill(const struct cluster *c, int i, struct spawn_args *a)
{
	const struct itest_node *n = &c->node[i];
	size_t k = 0;

	snprintf(a->listen, sizeof(a->listen), "127.0.0.1:%u", n->port);
	snprintf(a->http, sizeof(a->http), "127.0.0.1:%u", n->http_port);
	snprintf(a->fe, sizeof(a->fe), "%u", n->frontends);
	snprintf(a->id, sizeof(a->id), "%d", i + 1);
	snprintf(a->election, sizeof(a->election), "%d", CLUSTER_ELECTION_MS);
	snprintf(a->heartbeat, sizeof(a->heartbeat), "%d", CLUSTER_HEARTBEAT_MS);
	const char *fixed[] = {SLUICED_BIN, "--data-dir",
	                       n->data_dir, "--listen",
	                       a->listen,   "--frontends",
	                       a->fe,       "--node-id",
	                       a->id,       "--peers",
	                       c->peers[i], "--clients",
	                       c->clients,  "--election-timeout-ms",
	                       a->election, "--heartbeat-ms",
	                       a->heartbeat, "--http",
	                       a->http};
	for (size_t f = 0; f < sizeof(fixed) / sizeof(fixed[0]); f++)
		a->argv[k++] = fixed[f];
	for (size_t e = 0; e < sizeof(n->extra) / sizeof(n->extra[0]) && n->extra[e] && k < CLUSTER_ARGS_MAX - 1; e++)
		a->argv[k++] = n->extra[e];
	if (secure.on) {
		const char *sec[] = {"--tls-cert", secure.cert[i], "--tls-key", secure.key[i], "--tls-ca", secure.ca,
				     "--auth", "true", "--auth-admin-key", secure.admin_pub};
		for (size_t e = 0; e < sizeof(sec) / sizeof(sec[0]) && k < CLUSTER_ARGS_MAX - 1; e++)
			a->argv[k++] = sec[e];
	}
	a->argv[k] = NULL;
}

static int cluster_spawn(struct cluster *c, int i)
{
	struct spawn_args a;
	pid_t pid;

	spawn_args_fill(c, i, &a);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int fd = open(c->node[i].log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		close_range(3, ~0u, 0);
		execv(SLUICED_BIN, (char *const *)a.argv);
		_exit(127);
	}
	c->node[i].pid = pid;
	c->paused[i] = 0;
	return 0;
}

int cluster_start(struct cluster *c, int i)
{
	if (cluster_spawn(c, i) != 0)
		return -1;
	if (itest_node_wait_ready(&c->node[i], ITEST_READY_MS) != 0) {
		itest_node_dump_log(&c->node[i]);
		return -1;
	}
	return 0;
}

int cluster_start_all(struct cluster *c)
{
	for (int i = 0; i < CLUSTER_N; i++)
		if (cluster_spawn(c, i) != 0)
			return -1;
	for (int i = 0; i < CLUSTER_N; i++)
		if (itest_node_wait_ready(&c->node[i], ITEST_READY_MS) != 0) {
			fprintf(stderr, "cluster: node %d not ready\n", i + 1);
			itest_node_dump_log(&c->node[i]);
			return -1;
		}
	return 0;
}

struct kids {
	pid_t pid[64];
	size_t n;
};

/* Wait until every recorded child is gone; SIGKILL stragglers. */
static int kids_wait(struct kids *k, int node_id)
{
	int rc = 0;

	for (size_t i = 0; i < k->n; i++)
		if (itest_wait_gone(k->pid[i], ITEST_STOP_MS) != 0) {
			fprintf(stderr, "cluster: node %d child %d outlived its master\n", node_id, (int)k->pid[i]);
			kill(k->pid[i], SIGKILL);
			rc = -1;
		}
	return rc;
}

/* Signal the masters of nodes in mask, then reap them (bounded). */
static int masters_end(struct cluster *c, unsigned mask, int sig)
{
	struct kids kids[CLUSTER_N];
	int rc = 0;

	for (int i = 0; i < CLUSTER_N; i++) {
		kids[i].n = 0;
		if (!(mask & (1u << i)) || c->node[i].pid <= 0)
			continue;
		if (c->paused[i])
			cluster_resume(c, i);
		kids[i].n = itest_children(c->node[i].pid, kids[i].pid, 64);
		kill(c->node[i].pid, sig);
	}
	for (int i = 0; i < CLUSTER_N; i++) {
		int status = 0;
		if (!(mask & (1u << i)) || c->node[i].pid <= 0)
			continue;
		if (!itest_wait_child(c->node[i].pid, ITEST_STOP_MS, &status)) {
			fprintf(stderr, "cluster: node %d (pid %d) did not exit in %d ms; SIGKILL\n", i + 1,
			        (int)c->node[i].pid, ITEST_STOP_MS);
			kill(c->node[i].pid, SIGKILL);
			itest_wait_child(c->node[i].pid, ITEST_STOP_MS, &status);
			rc = -1;
		} else if (sig == SIGTERM && (!WIFEXITED(status) || WEXITSTATUS(status) != 0)) {
			fprintf(stderr, "cluster: node %d stop status 0x%x\n", i + 1, status);
			rc = -1;
		}
		c->node[i].pid = 0;
		if (kids_wait(&kids[i], i + 1) != 0)
			rc = -1;
	}
	return rc;
}

int cluster_stop(struct cluster *c, int i)
{
	return masters_end(c, 1u << i, SIGTERM);
}

int cluster_stop_all(struct cluster *c)
{
	return masters_end(c, (1u << CLUSTER_N) - 1, SIGTERM);
}

int cluster_kill9(struct cluster *c, int i)
{
	return masters_end(c, 1u << i, SIGKILL);
}

int cluster_kill9_all(struct cluster *c)
{
	return masters_end(c, (1u << CLUSTER_N) - 1, SIGKILL);
}

pid_t cluster_kill_child(struct cluster *c, int i, const char *comm)
{
	pid_t pid;

	if (c->node[i].pid <= 0)
		return 0;
	pid = itest_child_by_comm(c->node[i].pid, comm);
	if (pid > 0 && kill(pid, SIGKILL) != 0)
		return 0;
	return pid;
}

pid_t cluster_wait_child_replaced(struct cluster *c, int i, const char *comm, pid_t old, int timeout_ms)
{
	long long deadline = itest_now_ms() + timeout_ms;
	pid_t now;

	while ((now = itest_child_by_comm(c->node[i].pid, comm)) == 0 || now == old) {
		if (itest_now_ms() >= deadline)
			return 0;
		itest_sleep_ms(5);
	}
	return now;
}

static int signal_node(struct cluster *c, int i, int sig)
{
	pid_t kids[64];
	size_t nk;

	if (c->node[i].pid <= 0)
		return -1;
	nk = itest_children(c->node[i].pid, kids, 64);
	/* Stop the master first so it does not see its children stop; wake
	 * the children first so the master finds them running. */
	if (sig == SIGSTOP && kill(c->node[i].pid, sig) != 0)
		return -1;
	for (size_t k = 0; k < nk; k++)
		kill(kids[k], sig);
	if (sig == SIGCONT && kill(c->node[i].pid, sig) != 0)
		return -1;
	return 0;
}

int cluster_pause(struct cluster *c, int i)
{
	int rc = signal_node(c, i, SIGSTOP);
	if (rc == 0)
		c->paused[i] = 1;
	return rc;
}

int cluster_resume(struct cluster *c, int i)
{
	int rc = signal_node(c, i, SIGCONT);
	c->paused[i] = 0;
	return rc;
}

/* ---- partitions ---- */

void cluster_isolate(struct cluster *c, int i, enum fp_mode mode)
{
	for (int j = 0; j < CLUSTER_N; j++) {
		if (j == i)
			continue;
		faultproxy_set(c->fp, c->link[i][j], mode, 0);
		faultproxy_set(c->fp, c->link[j][i], mode, 0);
	}
}

void cluster_delay(struct cluster *c, int i, uint32_t delay_ms)
{
	for (int j = 0; j < CLUSTER_N; j++) {
		if (j == i)
			continue;
		faultproxy_set(c->fp, c->link[i][j], FP_DELAY, delay_ms);
		faultproxy_set(c->fp, c->link[j][i], FP_DELAY, delay_ms);
	}
}

void cluster_heal(struct cluster *c)
{
	faultproxy_heal(c->fp);
}

/* ---- views and leaders ---- */

static void view_fn(void *arg, const struct sluice_cluster_status *st)
{
	struct cluster_view *v = arg;

	v->ok = 1;
	v->leader_id = st->leader_id;
	snprintf(v->role, sizeof(v->role), "%s", st->role ? st->role : "");
	v->term = st->term;
	v->last_index = st->last_index;
	v->commit_index = st->commit_index;
	v->applied_index = st->applied_index;
}

void cluster_view_get(struct cluster *c, int i, int timeout_ms, struct cluster_view *v)
{
	struct sluice_client_opts o = {0};
	struct sluice_sync *sy = NULL;
	char em[256];

	memset(v, 0, sizeof(*v));
	if (c->node[i].pid <= 0 || c->paused[i])
		return;
	o.servers = c->node[i].addr;
	o.client_name = "itest-cluster";
	o.connect_timeout_ms = (uint32_t)timeout_ms;
	o.request_timeout_ms = (uint32_t)timeout_ms;
	o.retry_max_ms = (uint32_t)timeout_ms;
	if (sluice_sync_open(&o, &sy) != 0)
		return;
	if (sluice_sync_cluster_status(sy, view_fn, v, em, sizeof(em)) != 0)
		v->ok = 0;
	sluice_sync_close(sy);
}

static int leader_of(const struct cluster_view *v, uint64_t *term)
{
	int best = -1;

	for (int i = 0; i < CLUSTER_N; i++)
		if (v[i].ok && v[i].leader_id >= 1 && v[i].leader_id <= CLUSTER_N &&
		    (best < 0 || v[i].term > v[best].term))
			best = i;
	if (best < 0)
		return -1;
	int l = (int)v[best].leader_id - 1;
	for (int i = 0; i < CLUSTER_N; i++)
		if (v[i].ok && v[i].term > v[best].term)
			return -1; /* someone is past that term: no settled leader */
	if (!v[l].ok || strcmp(v[l].role, "leader") != 0 || v[l].term != v[best].term)
		return -1;
	if (term)
		*term = v[l].term;
	return l;
}

int cluster_leader(struct cluster *c, int skip, uint64_t *term)
{
	struct cluster_view v[CLUSTER_N];

	for (int i = 0; i < CLUSTER_N; i++) {
		if (i == skip)
			memset(&v[i], 0, sizeof(v[i]));
		else
			cluster_view_get(c, i, 1000, &v[i]);
	}
	return leader_of(v, term);
}

int cluster_wait_leader(struct cluster *c, int not_idx, int timeout_ms, uint64_t *term)
{
	long long deadline = itest_now_ms() + timeout_ms;
	struct cluster_view v[CLUSTER_N];

	do {
		int l, followers = 0;
		uint64_t t = 0;
		for (int i = 0; i < CLUSTER_N; i++)
			cluster_view_get(c, i, 1000, &v[i]);
		l = leader_of(v, &t);
		for (int i = 0; l >= 0 && i < CLUSTER_N; i++)
			if (i != l && v[i].ok && v[i].leader_id == (uint32_t)l + 1 && v[i].term == t)
				followers++;
		if (l >= 0 && l != not_idx && followers >= 1) {
			if (term)
				*term = t;
			return l;
		}
		itest_sleep_ms(50);
	} while (itest_now_ms() < deadline);
	fprintf(stderr, "cluster: no leader (other than node %d) within %d ms:\n", not_idx + 1, timeout_ms);
	for (int i = 0; i < CLUSTER_N; i++)
		fprintf(stderr, "  node %d: %s role %s term %llu leader %u commit %llu\n", i + 1,
		        v[i].ok ? "answers" : "silent", v[i].role, (unsigned long long)v[i].term, v[i].leader_id,
		        (unsigned long long)v[i].commit_index);
	return -1;
}

int cluster_wait_converged(struct cluster *c, int timeout_ms)
{
	long long deadline = itest_now_ms() + timeout_ms;
	struct cluster_view v[CLUSTER_N];

	do {
		int same = 1, first = -1;
		for (int i = 0; i < CLUSTER_N; i++) {
			if (c->node[i].pid <= 0)
				continue;
			cluster_view_get(c, i, 1000, &v[i]);
			if (!v[i].ok || v[i].leader_id == 0 || v[i].applied_index != v[i].commit_index)
				same = 0;
			else if (first < 0)
				first = i;
			else if (v[i].leader_id != v[first].leader_id || v[i].commit_index != v[first].commit_index ||
			         v[i].term != v[first].term)
				same = 0;
		}
		if (same && first >= 0)
			return 0;
		itest_sleep_ms(100);
	} while (itest_now_ms() < deadline);
	fprintf(stderr, "cluster: nodes did not converge within %d ms:\n", timeout_ms);
	for (int i = 0; i < CLUSTER_N; i++)
		fprintf(stderr, "  node %d: %s role %s term %llu leader %u last %llu commit %llu applied %llu\n", i + 1,
		        v[i].ok ? "answers" : "silent", v[i].role, (unsigned long long)v[i].term, v[i].leader_id,
		        (unsigned long long)v[i].last_index, (unsigned long long)v[i].commit_index,
		        (unsigned long long)v[i].applied_index);
	return -1;
}

void cluster_dump_logs(const struct cluster *c)
{
	for (int i = 0; i < CLUSTER_N; i++) {
		fprintf(stderr, "==== node %d (pid %d, client %s, peer port %u) ====\n", i + 1, (int)c->node[i].pid,
		        c->node[i].addr, c->peer_port[i]);
		itest_node_dump_log(&c->node[i]);
	}
}

void cluster_destroy(struct cluster *c)
{
	int any = 0;

	for (int i = 0; i < CLUSTER_N; i++)
		any |= c->node[i].pid > 0;
	if (any && cluster_stop_all(c) != 0)
		fprintf(stderr, "cluster: unclean stop in teardown\n");
	if (c->fp)
		faultproxy_free(c->fp);
	c->fp = NULL;
	for (int i = 0; i < CLUSTER_N; i++)
		itest_node_destroy(&c->node[i]);
}
