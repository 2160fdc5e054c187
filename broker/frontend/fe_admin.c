/*
 * fe_admin.c: the frontend's metadata reads: ListTopics, DescribeTopic,
 * DescribeGroup, NodeStatus and ClusterStatus. Each runs in one short
 * read-only txn; committed ends come from the shm commit table, the rest from
 * LMDB. Cluster state comes from the shm cluster block the logwriter writes
 * (plain stats, read without locking: a torn read shows a mix of two
 * moments, which status output tolerates) and addresses from the config.
 */
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "err.h"
#include "fe_int.h"
#include "log.h"
#include "ringmsg.h"
#include "shm.h"
#include "vec.h"

#define FE_LIST_TOPICS_MAX 65536
#define FE_GROUP_ENTRIES_MAX 65536

struct topic_vec {
	struct store_topic *v;
	size_t n;
};

static int topics_all(struct store_txn *t, struct topic_vec *tv)
{
	memset(tv, 0, sizeof(*tv));
	return store_topic_list(t, FE_LIST_TOPICS_MAX, &tv->v, &tv->n);
}

static void read_error(struct fe_conn *c, uint64_t id, int rc, const char *what)
{
	if (rc == SL_ECORRUPT) {
		log_error("storage corruption detected while %s", what);
		fe_send_error(c, id, SL_EINTERNAL, "storage corruption detected on this node; see its log");
	} else if (rc == SL_EUNAVAILABLE) {
		fe_send_error(c, id, rc, "topic is being created or deleted; retry");
	} else {
		fe_send_error(c, id, rc, sl_strerror(rc));
	}
}

/* A TopicInfo with its own allocations (freed by topic_info_free). */
struct topic_info {
	Sluice__TopicInfo ti;
	Sluice__TopicConfig cfg;
	Sluice__PartitionInfo *parts;
	Sluice__PartitionInfo **ptrs;
};

static void topic_info_free(struct topic_info *x)
{
	free(x->parts);
	free(x->ptrs);
}

static int topic_info_fill(struct fe *fe, struct store_txn *t, struct store_topic *tp, struct topic_info *x)
{
	uint32_t p;
	int rc;

	sluice__topic_info__init(&x->ti);
	sluice__topic_config__init(&x->cfg);
	x->parts = calloc(tp->partitions ? tp->partitions : 1, sizeof(*x->parts));
	x->ptrs = calloc(tp->partitions ? tp->partitions : 1, sizeof(*x->ptrs));
	if (!x->parts || !x->ptrs)
		return SL_ENOMEM;
	for (p = 0; p < tp->partitions; p++) {
		struct store_partition sp;
		uint64_t end;
		rc = fe_partition_end(fe, tp, p, &end);
		if (rc != SL_OK)
			return rc;
		rc = store_partition_get(t, tp->topic_id, p, &sp);
		if (rc == SL_ENOTFOUND)
			memset(&sp, 0, sizeof(sp));
		else if (rc != SL_OK)
			return rc;
		sluice__partition_info__init(&x->parts[p]);
		x->parts[p].partition = p;
		x->parts[p].first_offset = sp.first_offset < end ? sp.first_offset : end;
		x->parts[p].end_offset = end;
		x->parts[p].bytes = sp.bytes;
		x->ptrs[p] = &x->parts[p];
	}
	x->cfg.partitions = tp->partitions;
	x->cfg.retention_ms = tp->retention_ms;
	x->cfg.retention_bytes = tp->retention_bytes;
	x->ti.name = tp->name;
	x->ti.config = &x->cfg;
	x->ti.n_partitions = tp->partitions;
	x->ti.partitions = x->ptrs;
	x->ti.created_ms = tp->created_ms;
	x->ti.created_by = tp->creator; /* tp outlives the answer, as tp->name */
	return SL_OK;
}

void fe_on_describe_topic(struct fe_conn *c, uint64_t id, const Sluice__DescribeTopic *m)
{
	struct fe *fe = c->fe;
	struct store_txn *t = NULL;
	struct store_topic tp;
	struct topic_info x;
	int rc;

	memset(&x, 0, sizeof(x));
	rc = store_txn_begin(fe->store, 0, &t);
	if (rc == SL_OK)
		rc = fe_topic_get(fe, t, m->name, &tp);
	if (rc == SL_OK)
		rc = topic_info_fill(fe, t, &tp, &x);
	if (rc == SL_OK) {
		Sluice__Frame f = SLUICE__FRAME__INIT;
		f.id = id;
		f.body_case = SLUICE__FRAME__BODY_TOPIC_INFO;
		f.topic_info = &x.ti;
		fe_send(c, &f);
	} else {
		read_error(c, id, rc, "describing a topic");
	}
	topic_info_free(&x);
	if (t)
		store_txn_abort(t);
}

void fe_on_list_topics(struct fe_conn *c, uint64_t id)
{
	struct fe *fe = c->fe;
	struct store_txn *t = NULL;
	struct topic_vec tv;
	struct topic_info *xs = NULL;
	Sluice__TopicInfo **ptrs = NULL;
	size_t i, n = 0;
	int rc;

	memset(&tv, 0, sizeof(tv));
	rc = store_txn_begin(fe->store, 0, &t);
	if (rc == SL_OK)
		rc = topics_all(t, &tv);
	if (rc == SL_OK) {
		xs = calloc(tv.n + 1, sizeof(*xs));
		ptrs = calloc(tv.n + 1, sizeof(*ptrs));
		if (!xs || !ptrs)
			rc = SL_ENOMEM;
	}
	for (i = 0; rc == SL_OK && i < tv.n; i++) {
		int r = topic_info_fill(fe, t, &tv.v[i], &xs[i]);
		if (r == SL_OK)
			ptrs[n++] = &xs[i].ti;
		else if (r != SL_EUNAVAILABLE) /* unavailable: being created or deleted; not listed */
			rc = r;
	}
	if (rc == SL_OK) {
		Sluice__TopicList tl = SLUICE__TOPIC_LIST__INIT;
		Sluice__Frame f = SLUICE__FRAME__INIT;
		tl.n_topics = n;
		tl.topics = ptrs;
		f.id = id;
		f.body_case = SLUICE__FRAME__BODY_TOPIC_LIST;
		f.topic_list = &tl;
		fe_send(c, &f);
	} else {
		read_error(c, id, rc, "listing topics");
	}
	for (i = 0; xs && i < tv.n; i++)
		topic_info_free(&xs[i]);
	free(xs);
	free(ptrs);
	free(tv.v);
	if (t)
		store_txn_abort(t);
}

/* ---------- consumer groups ---------- */

struct group_entry {
	uint32_t topic_id, partition;
	uint64_t offset;
};

struct group_vec {
	struct group_entry *v;
	size_t n, cap;
	int err;
};

static int group_add_cb(void *arg, uint32_t topic_id, uint32_t partition, uint64_t offset)
{
	struct group_vec *g = arg;

	if (g->n >= FE_GROUP_ENTRIES_MAX || vec_reserve(&g->v, &g->cap, g->n + 1)) {
		g->err = SL_ETOOMANY;
		return 1;
	}
	g->v[g->n].topic_id = topic_id;
	g->v[g->n].partition = partition;
	g->v[g->n].offset = offset;
	g->n++;
	return 0;
}

static const struct store_topic *topic_by_id(const struct topic_vec *tv, uint32_t id)
{
	size_t i;

	for (i = 0; i < tv->n; i++)
		if (tv->v[i].topic_id == id)
			return &tv->v[i];
	return NULL;
}

static void group_send(struct fe_conn *c, uint64_t id, const char *group, const struct topic_vec *tv,
                       const struct group_vec *g)
{
	Sluice__GroupInfo gi = SLUICE__GROUP_INFO__INIT;
	Sluice__Frame f = SLUICE__FRAME__INIT;
	Sluice__GroupPartition *gp = calloc(g->n + 1, sizeof(*gp));
	Sluice__GroupPartition **ptrs = calloc(g->n + 1, sizeof(*ptrs));
	size_t i, n = 0;

	if (!gp || !ptrs) {
		fe_send_error(c, id, SL_EINTERNAL, "out of memory");
		goto out;
	}
	for (i = 0; i < g->n; i++) {
		const struct store_topic *tp = topic_by_id(tv, g->v[i].topic_id);
		uint64_t end;
		if (!tp || fe_partition_end(c->fe, tp, g->v[i].partition, &end) != SL_OK)
			continue; /* topic deleted since the commit */
		sluice__group_partition__init(&gp[n]);
		gp[n].topic = (char *)tp->name;
		gp[n].partition = g->v[i].partition;
		gp[n].committed_offset = g->v[i].offset;
		gp[n].end_offset = end;
		gp[n].lag = end > g->v[i].offset ? end - g->v[i].offset : 0;
		ptrs[n] = &gp[n];
		n++;
	}
	gi.group = (char *)group;
	gi.n_partitions = n;
	gi.partitions = ptrs;
	f.id = id;
	f.body_case = SLUICE__FRAME__BODY_GROUP_INFO;
	f.group_info = &gi;
	fe_send(c, &f);
out:
	free(gp);
	free(ptrs);
}

void fe_on_describe_group(struct fe_conn *c, uint64_t id, const Sluice__DescribeGroup *m)
{
	struct store_txn *t = NULL;
	struct topic_vec tv;
	struct group_vec g;
	size_t glen = strlen(m->group);
	int rc;

	memset(&tv, 0, sizeof(tv));
	memset(&g, 0, sizeof(g));
	if (glen == 0 || glen > RM_GROUP_NAME_MAX) {
		fe_send_error(c, id, SL_EINVAL, "group name must be 1 to 249 bytes");
		return;
	}
	rc = store_txn_begin(c->fe->store, 0, &t);
	if (rc == SL_OK)
		rc = topics_all(t, &tv);
	if (rc == SL_OK) {
		rc = store_group_foreach(t, m->group, group_add_cb, &g);
		if (rc == SL_ENOTFOUND)
			rc = SL_OK;
		if (rc == SL_OK)
			rc = g.err;
	}
	if (rc == SL_OK)
		group_send(c, id, m->group, &tv, &g);
	else
		read_error(c, id, rc, "describing a group");
	free(g.v);
	free(tv.v);
	if (t)
		store_txn_abort(t);
}

/* ---------- node status ---------- */

static int count_topic_cb(void *arg, const struct store_topic *tp)
{
	(*(uint32_t *)arg)++;
	return 0;
}

void fe_on_node_status(struct fe_conn *c, uint64_t id)
{
	struct fe *fe = c->fe;
	struct shm_header *h = fe->shm->hdr;
	Sluice__NodeStatusResult r = SLUICE__NODE_STATUS_RESULT__INIT;
	Sluice__Frame f = SLUICE__FRAME__INIT;
	struct store_txn *t = NULL;
	uint32_t i, topics = 0;
	int rc;

	rc = store_txn_begin(fe->store, 0, &t);
	if (rc == SL_OK)
		rc = store_topic_foreach(t, count_topic_cb, &topics);
	if (t)
		store_txn_abort(t);
	if (rc != SL_OK) {
		read_error(c, id, rc, "counting topics");
		return;
	}
	r.node_id = h->node_id;
	r.version = (char *)SLUICE_VERSION;
	r.uptime_ms = h->started_ms ? time_now_ms() - h->started_ms : 0;
	r.frontends = h->frontends;
	r.topics = topics;
	store_usage(fe->store, &r.map_bytes, &r.used_bytes);
	for (i = 0; i < h->frontends && i < SHM_FRONTENDS_MAX; i++) {
		struct shm_frontend *sf = shm_frontend(fe->shm, i);
		r.connections += shm_stat_load(&sf->connections);
		r.published += shm_stat_load(&sf->published);
	}
	r.logwriter_restarts = shm_stat_load(&h->logwriter_restarts);
	r.frontend_restarts = shm_stat_load(&h->frontend_restarts);
	f.id = id;
	f.body_case = SLUICE__FRAME__BODY_NODE_STATUS_RESULT;
	f.node_status_result = &r;
	fe_send(c, &f);
}

/* ---------- cluster status ---------- */

#define FE_CLUSTER_NODES_MAX SL_NODES_MAX

int fe_is_cluster(const struct fe *fe)
{
	return fe->cfg->cluster_n > 0 || shm_load(&fe->shm->hdr->cluster.enabled) != 0;
}

int fe_cluster_has_node(const struct fe *fe, uint32_t id)
{
	const struct shm_cluster *sc = &fe->shm->hdr->cluster;
	uint32_t i, n = shm_stat_load(&sc->n_nodes);

	if (id == 0)
		return 0;
	if (n > SHM_NODES_MAX)
		n = SHM_NODES_MAX;
	for (i = 0; i < fe->cfg->cluster_n && i < CONFIG_NODES_MAX; i++)
		if (fe->cfg->cluster[i].id == id)
			return 1;
	for (i = 0; fe->cfg->cluster_n == 0 && i < n; i++)
		if (shm_stat_load(&sc->nodes[i].id) == id)
			return 1;
	return 0;
}

/* Role names by enum raft_role value (replica/raft/raft.h): 0 follower,
 * 1 precandidate, 2 candidate, 3 leader. */
static const char *role_name(uint32_t role)
{
	static const char *const names[] = {"follower", "precandidate", "candidate", "leader"};
	return role < sizeof(names) / sizeof(names[0]) ? names[role] : "unknown";
}

static const struct shm_cluster_node *shm_node_find(const struct shm_cluster *sc, uint32_t id)
{
	uint32_t i, n = sc->n_nodes < SHM_NODES_MAX ? sc->n_nodes : SHM_NODES_MAX;

	for (i = 0; i < n; i++)
		if (sc->nodes[i].id == id)
			return &sc->nodes[i];
	return NULL;
}

/*
 * One ClusterNode per configured node (or, without config entries, per node
 * the logwriter reports), with reachability and match index from the
 * logwriter's view. Returns the count.
 */
static size_t cluster_nodes_fill(const struct fe *fe, const struct shm_cluster *sc, uint32_t self,
                                 Sluice__ClusterNode *v, Sluice__ClusterNode **ptrs)
{
	const struct config *cfg = fe->cfg;
	uint32_t n = cfg->cluster_n ? cfg->cluster_n : sc->n_nodes, i;
	size_t k = 0;

	if (n > FE_CLUSTER_NODES_MAX)
		n = FE_CLUSTER_NODES_MAX;
	for (i = 0; i < n; i++) {
		uint32_t id = cfg->cluster_n ? cfg->cluster[i].id : sc->nodes[i].id;
		const struct shm_cluster_node *sn = shm_node_find(sc, id);
		sluice__cluster_node__init(&v[k]);
		v[k].id = id;
		v[k].raft_address = cfg->cluster_n ? (char *)cfg->cluster[i].raft : (char *)"";
		v[k].client_address = cfg->cluster_n ? (char *)cfg->cluster[i].client : (char *)"";
		v[k].reachable = id == self || (sc->enabled && sn && sn->reachable);
		v[k].match_index = sc->enabled && sn ? sn->match_index : 0;
		ptrs[k] = &v[k];
		k++;
	}
	return k;
}

void fe_on_cluster_status(struct fe_conn *c, uint64_t id)
{
	struct fe *fe = c->fe;
	Sluice__ClusterStatusResult r = SLUICE__CLUSTER_STATUS_RESULT__INIT;
	Sluice__ClusterNode nodes[FE_CLUSTER_NODES_MAX];
	Sluice__ClusterNode *ptrs[FE_CLUSTER_NODES_MAX];
	Sluice__Frame f = SLUICE__FRAME__INIT;
	struct shm_cluster sc;

	/* one copy; the logwriter keeps writing the original */
	shm_cluster_read(&fe->shm->hdr->cluster, &sc);
	r.node_id = fe->shm->hdr->node_id; /* the master's copy of node.id, as in HelloOk */
	if (!fe_is_cluster(fe)) {
		r.role = (char *)"single";
		r.leader_id = r.node_id; /* it takes every write itself */
	} else {
		/* enabled == 0 with peers configured: the logwriter has not reported yet */
		r.role = sc.enabled ? (char *)role_name(sc.role) : (char *)"follower";
		r.leader_id = sc.enabled ? sc.leader_id : 0;
		r.term = sc.term;
		r.first_index = sc.first_index;
		r.last_index = sc.last_index;
		r.commit_index = sc.commit_index;
		r.applied_index = sc.applied_index;
		r.n_nodes = cluster_nodes_fill(fe, &sc, r.node_id, nodes, ptrs);
		r.nodes = ptrs;
	}
	f.id = id;
	f.body_case = SLUICE__FRAME__BODY_CLUSTER_STATUS_RESULT;
	f.cluster_status_result = &r;
	fe_send(c, &f);
}
