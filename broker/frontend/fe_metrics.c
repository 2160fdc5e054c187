/*
 * fe_metrics.c: the node's metrics for Prometheus (GET /metrics) and the
 * counting entry points the frontend's paths call (fe_pages.h).
 *
 * Every figure comes from the shared segment (common/metrics.h), so any
 * frontend renders the whole node: per-topic traffic from the per-slot
 * counters (the logwriter adds what it stored, frontends what they
 * delivered), latency histograms summed over the frontends, raft state
 * from the cluster block the logwriter writes, ring fill from the rings'
 * head and tail. Topic names come from one short read-only transaction.
 *
 * Caveats: counters are relaxed atomics read one by one, so a scrape is not
 * a snapshot of one instant (Prometheus expects no more). When a deleted
 * topic's slots pass to a new topic the logwriter resets their counters; a
 * delivery of the old topic counted at that very moment can land on the
 * new one.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "config.h"
#include "err.h"
#include "fe_int.h"
#include "fe_pages.h"
#include "log.h"
#include "ring.h"
#include "shm.h"
#include "vec.h"

#define FE_METRICS_TOPICS_MAX 65536

static struct shm_fe_metrics *fe_m(struct fe *fe)
{
	return &shm_frontend(fe->shm, fe->index)->metrics;
}

/* ---------- counting (hot paths: a few relaxed adds, no locks) ---------- */

void fe_metrics_start(struct fe *fe)
{
	for (int p = 0; p < METRICS_PROTOS; p++)
		shm_stat_store(&fe_m(fe)->connections[p], 0);
}

void fe_metrics_conn(struct fe *fe, enum metrics_proto p, int delta)
{
	if ((unsigned)p >= METRICS_PROTOS)
		return;
	shm_stat_add(&fe_m(fe)->connections[p], (uint64_t)(int64_t)delta);
	if (delta > 0)
		shm_stat_add(&fe_m(fe)->accepted[p], (uint64_t)delta);
}

void fe_metrics_http(struct fe *fe, const char *route, int status)
{
	struct shm_fe_metrics *m = fe_m(fe);
	size_t i;

	/* this frontend is the table's only writer: find, else claim the next free entry */
	for (i = 0; i < METRICS_HTTP_ENTRIES_MAX; i++) {
		struct shm_http_count *e = &m->http[i];
		if (!shm_load(&e->used)) {
			if (strlen(route) >= sizeof(e->route))
				break;
			memcpy(e->route, route, strlen(route) + 1);
			e->status = (uint32_t)status;
			e->count = 0;
			shm_store(&e->used, 1);
		}
		if (e->status == (uint32_t)status && strcmp(e->route, route) == 0) {
			shm_stat_add(&e->count, 1);
			return;
		}
	}
	shm_stat_add(&m->http_untracked, 1);
}

void fe_metrics_publish_acked(struct fe *fe, uint64_t submitted_ns)
{
	uint64_t now = time_mono_ns();
	metrics_hist_observe(&fe_m(fe)->publish_ack, now > submitted_ns ? now - submitted_ns : 0);
}

void fe_metrics_delivered(struct fe *fe, const struct store_topic *tp, uint32_t p, size_t msgs, uint64_t data_bytes)
{
	uint32_t s = tp->slot_base + p;
	struct shm_slot_stats *st;

	if (msgs == 0 || s >= fe->shm->hdr->slots_max || shm_load(&fe->shm->slots[s].topic_id) != tp->topic_id)
		return;
	st = &fe->shm->slot_stats[s];
	shm_stat_add(&st->delivered_msgs, (uint64_t)msgs);
	shm_stat_add(&st->delivered_bytes, data_bytes);
}

/* ---------- rendering helpers ---------- */

static void family(struct evbuffer *out, const char *name, const char *type, const char *help)
{
	evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	size_t len = s[0] < 0x80 ? 1 : (s[0] & 0xe0) == 0xc0 ? 2 : (s[0] & 0xf0) == 0xe0 ? 3 : (s[0] & 0xf8) == 0xf0 ? 4 : 0;

	if (len == 0 || len > n || (len == 2 && s[0] < 0xc2))
		return 0;
	for (size_t i = 1; i < len; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return len;
}

/* A label value: backslash, quote and newline escaped; bytes that are not
 * UTF-8 (topic names are bytes on the native protocol) become U+FFFD. */
static void label_value(struct evbuffer *out, const char *v)
{
	const unsigned char *s = (const unsigned char *)v;
	size_t n = strlen(v), i = 0;

	while (i < n) {
		size_t k = utf8_seq(s + i, n - i);
		if (k == 0) {
			evbuffer_add(out, "\xef\xbf\xbd", 3);
			i++;
		} else if (s[i] == '\\' || s[i] == '"') {
			evbuffer_add_printf(out, "\\%c", s[i]);
			i++;
		} else if (s[i] == '\n') {
			evbuffer_add(out, "\\n", 2);
			i++;
		} else {
			evbuffer_add(out, s + i, k);
			i += k;
		}
	}
}

static void sample_u64(struct evbuffer *out, const char *name, uint64_t v)
{
	evbuffer_add_printf(out, "%s %llu\n", name, (unsigned long long)v);
}

static void gauge_u64(struct evbuffer *out, const char *name, const char *help, uint64_t v)
{
	family(out, name, "gauge", help);
	sample_u64(out, name, v);
}

/* A histogram from per-bucket (not cumulative) counts and a sum in ns. */
static void histogram(struct evbuffer *out, const char *name, const char *help, const uint64_t *bucket, uint64_t sum_ns)
{
	uint64_t cum = 0;

	family(out, name, "histogram", help);
	for (int i = 0; i < METRICS_BUCKETS; i++) {
		cum += bucket[i];
		evbuffer_add_printf(out, "%s_bucket{le=\"%g\"} %llu\n", name, (double)metrics_bucket_ns[i] / 1e9,
		                    (unsigned long long)cum);
	}
	cum += bucket[METRICS_BUCKETS];
	evbuffer_add_printf(out, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cum);
	evbuffer_add_printf(out, "%s_sum %.9f\n", name, (double)sum_ns / 1e9);
	evbuffer_add_printf(out, "%s_count %llu\n", name, (unsigned long long)cum);
}

/* Copy h into bucket/sum, adding to what they hold. */
static void hist_add(const struct shm_hist *h, uint64_t *bucket, uint64_t *sum_ns)
{
	for (int i = 0; i <= METRICS_BUCKETS; i++)
		bucket[i] += shm_stat_load(&h->bucket[i]);
	*sum_ns += shm_stat_load(&h->sum_ns);
}

/* ---------- per topic ---------- */

struct topic_row {
	char name[256];
	uint32_t partitions;
	uint64_t v[4]; /* published msgs, published bytes, delivered msgs, delivered bytes */
};

struct topic_rows {
	struct topic_row *v;
	size_t n;
};

/* Every topic with its partitions' counters summed (slots not, or no
 * longer, the topic's are skipped: it is being created or deleted). */
static int topics_collect(struct fe *fe, struct topic_rows *tr)
{
	struct store_topic *tv = NULL;
	struct store_txn *t = NULL;
	size_t n = 0;
	int rc = store_txn_begin(fe->store, 0, &t);

	memset(tr, 0, sizeof(*tr));
	if (rc == SL_OK)
		rc = store_topic_list(t, FE_METRICS_TOPICS_MAX, &tv, &n);
	if (t)
		store_txn_abort(t);
	if (rc == SL_OK && !(tr->v = calloc(n + 1, sizeof(*tr->v))))
		rc = SL_ENOMEM;
	for (size_t i = 0; rc == SL_OK && i < n; i++) {
		struct topic_row *r = &tr->v[tr->n++];
		memcpy(r->name, tv[i].name, sizeof(r->name));
		r->partitions = tv[i].partitions;
		for (uint32_t p = 0; p < tv[i].partitions; p++) {
			uint32_t s = tv[i].slot_base + p;
			const struct shm_slot_stats *st;
			if (s >= fe->shm->hdr->slots_max || shm_load(&fe->shm->slots[s].topic_id) != tv[i].topic_id)
				continue;
			st = &fe->shm->slot_stats[s];
			r->v[0] += shm_stat_load(&st->published_msgs);
			r->v[1] += shm_stat_load(&st->published_bytes);
			r->v[2] += shm_stat_load(&st->delivered_msgs);
			r->v[3] += shm_stat_load(&st->delivered_bytes);
		}
	}
	free(tv);
	return rc;
}

static void render_topics(struct evbuffer *out, const struct topic_rows *tr)
{
	static const struct {
		const char *name, *help;
	} fams[4] = {
	    {"sluice_topic_published_messages_total", "Messages of the topic stored in this node's log."},
	    {"sluice_topic_published_bytes_total", "Key, header and payload bytes of the messages stored."},
	    {"sluice_topic_delivered_messages_total", "Messages of the topic sent to subscribers and fetches."},
	    {"sluice_topic_delivered_bytes_total", "Key, header and payload bytes of the messages delivered."},
	};

	family(out, "sluice_topic_partitions", "gauge", "Partitions of the topic.");
	for (size_t i = 0; i < tr->n; i++) {
		evbuffer_add_printf(out, "sluice_topic_partitions{topic=\"");
		label_value(out, tr->v[i].name);
		evbuffer_add_printf(out, "\"} %u\n", tr->v[i].partitions);
	}
	for (int f = 0; f < 4; f++) {
		family(out, fams[f].name, "counter", fams[f].help);
		for (size_t i = 0; i < tr->n; i++) {
			evbuffer_add_printf(out, "%s{topic=\"", fams[f].name);
			label_value(out, tr->v[i].name);
			evbuffer_add_printf(out, "\"} %llu\n", (unsigned long long)tr->v[i].v[f]);
		}
	}
}

/* Durable consumers and webhooks: totals over each one's partitions. */
static void render_consumers(struct fe *fe, struct evbuffer *out)
{
	static const struct {
		const char *name, *type, *help;
	} fams[6] = {
	    {"sluice_consumer_lag_messages", "gauge", "Committed messages not yet acknowledged or dead-lettered."},
	    {"sluice_consumer_in_flight_messages", "gauge", "Messages delivered (or waiting for a retry) and not acknowledged."},
	    {"sluice_consumer_delivered_total", "counter", "Deliveries made, redeliveries included (for a webhook: requests)."},
	    {"sluice_consumer_redelivered_total", "counter", "Redeliveries (after a nack, a failed request or an ack timeout)."},
	    {"sluice_consumer_acked_total", "counter", "Messages acknowledged (for a webhook: delivered with a 2xx)."},
	    {"sluice_consumer_dead_lettered_total", "counter", "Messages moved to the dead-letter topic."},
	};
	struct fe_cons_row *rows = NULL;
	size_t n = 0;
	if (fe_cons_collect(fe, &rows, &n) != SL_OK)
		return;
	for (int f = 0; f < 6; f++) {
		family(out, fams[f].name, fams[f].type, fams[f].help);
		for (size_t i = 0; i < n; i++) {
			const struct fe_cons_row *r = &rows[i];
			uint64_t v[6] = {r->lag, r->in_flight, r->delivered, r->redelivered, r->acked, r->dead_lettered};
			evbuffer_add_printf(out, "%s{consumer=\"", fams[f].name);
			label_value(out, r->name);
			evbuffer_add_printf(out, "\",topic=\"");
			label_value(out, r->topic);
			evbuffer_add_printf(out, "\",webhook=\"%s\"} %llu\n", r->webhook ? "true" : "false",
			                    (unsigned long long)v[f]);
		}
	}
	free(rows);
}

/* ---------- node, cluster, connections, rings, storage, HTTP ---------- */

static void render_node(struct fe *fe, struct evbuffer *out, size_t topics)
{
	struct shm_header *h = fe->shm->hdr;
	uint64_t map = 0, used = 0;

	family(out, "sluice_build_info", "gauge", "Always 1; the version label names the running build.");
	evbuffer_add_printf(out, "sluice_build_info{version=\"%s\"} 1\n", SLUICE_VERSION);
	gauge_u64(out, "sluice_node_id", "This node's id.", h->node_id);
	family(out, "sluice_start_time_seconds", "gauge", "When the node's master started, in Unix seconds.");
	evbuffer_add_printf(out, "sluice_start_time_seconds %.3f\n", (double)h->started_ms / 1e3);
	gauge_u64(out, "sluice_topics", "Topics on this node.", topics);
	gauge_u64(out, "sluice_frontends", "Frontend processes of this node.", h->frontends);
	gauge_u64(out, "sluice_draining", "1 while the node is stopping.", shm_load(&h->draining));
	family(out, "sluice_logwriter_restarts_total", "counter", "Times the master restarted the logwriter.");
	sample_u64(out, "sluice_logwriter_restarts_total", shm_stat_load(&h->logwriter_restarts));
	family(out, "sluice_frontend_restarts_total", "counter", "Times the master restarted a frontend.");
	sample_u64(out, "sluice_frontend_restarts_total", shm_stat_load(&h->frontend_restarts));
	store_usage(fe->store, &map, &used);
	gauge_u64(out, "sluice_storage_map_bytes", "Size of the LMDB map (storage.map_bytes).", map);
	gauge_u64(out, "sluice_storage_used_bytes", "Bytes of the LMDB map in use.", used);
}

static void render_cluster(struct fe *fe, struct evbuffer *out)
{
	struct shm_cluster sc;
	int cluster = fe_is_cluster(fe);
	uint32_t self = fe->shm->hdr->node_id, n, i;

	shm_cluster_read(&fe->shm->hdr->cluster, &sc);
	gauge_u64(out, "sluice_raft_term", "Current raft term (0 on a single node).", cluster ? sc.term : 0);
	gauge_u64(out, "sluice_raft_commit_index", "Highest raft index known committed.", cluster ? sc.commit_index : 0);
	gauge_u64(out, "sluice_raft_applied_index", "Highest raft index applied to this node's log.",
	          cluster ? sc.applied_index : 0);
	gauge_u64(out, "sluice_raft_last_index", "Last index of this node's raft log.", cluster ? sc.last_index : 0);
	gauge_u64(out, "sluice_raft_leader_id", "Id of the leader this node knows (0: none; a single node: itself).",
	          cluster ? (sc.enabled ? sc.leader_id : 0) : self);
	gauge_u64(out, "sluice_raft_is_leader", "1 if this node takes the writes (a single node always does).",
	          cluster ? (sc.enabled && sc.role == 3 /* RAFT_LEADER */) : 1);
	family(out, "sluice_raft_follower_lag_entries", "gauge",
	       "On the leader: entries a peer is behind the leader's last index.");
	n = sc.n_nodes < SHM_NODES_MAX ? sc.n_nodes : SHM_NODES_MAX;
	for (i = 0; cluster && sc.enabled && sc.role == 3 && i < n; i++) {
		const struct shm_cluster_node *nd = &sc.nodes[i];
		if (nd->id == 0 || nd->id == self)
			continue;
		evbuffer_add_printf(out, "sluice_raft_follower_lag_entries{node=\"%u\"} %llu\n", nd->id,
		                    (unsigned long long)(sc.last_index > nd->match_index ? sc.last_index - nd->match_index : 0));
	}
	family(out, "sluice_raft_peer_reachable", "gauge", "1 if a frame arrived from the peer within the election timeout.");
	for (i = 0; cluster && sc.enabled && i < n; i++)
		if (sc.nodes[i].id && sc.nodes[i].id != self)
			evbuffer_add_printf(out, "sluice_raft_peer_reachable{node=\"%u\"} %u\n", sc.nodes[i].id,
			                    sc.nodes[i].reachable ? 1u : 0u);
}

static void render_connections(struct fe *fe, struct evbuffer *out, uint32_t nfe)
{
	uint64_t open[METRICS_PROTOS] = {0}, acc[METRICS_PROTOS] = {0};

	for (uint32_t i = 0; i < nfe; i++) {
		struct shm_fe_metrics *m = &shm_frontend(fe->shm, i)->metrics;
		for (int p = 0; p < METRICS_PROTOS; p++) {
			open[p] += shm_stat_load(&m->connections[p]);
			acc[p] += shm_stat_load(&m->accepted[p]);
		}
	}
	family(out, "sluice_connections", "gauge", "Open client connections by protocol.");
	for (int p = 0; p < METRICS_PROTOS; p++)
		evbuffer_add_printf(out, "sluice_connections{protocol=\"%s\"} %lld\n", metrics_proto_name(p),
		                    (long long)(int64_t)open[p]);
	family(out, "sluice_connections_accepted_total", "counter", "Client connections accepted by protocol.");
	for (int p = 0; p < METRICS_PROTOS; p++)
		evbuffer_add_printf(out, "sluice_connections_accepted_total{protocol=\"%s\"} %llu\n", metrics_proto_name(p),
		                    (unsigned long long)acc[p]);
}

static uint64_t ring_used(const struct ring *r)
{
	uint64_t tail = shm_stat_load(&r->tail), head = shm_stat_load(&r->head);
	return head > tail ? head - tail : 0;
}

static void render_rings(struct fe *fe, struct evbuffer *out, uint32_t nfe)
{
	gauge_u64(out, "sluice_ring_capacity_bytes", "Data bytes of each ring (limits.ring_bytes).",
	          fe->shm->hdr->ring_bytes);
	family(out, "sluice_ring_used_bytes", "gauge",
	       "Bytes waiting in a ring: publish (frontend to logwriter) or ack (logwriter to frontend).");
	for (uint32_t i = 0; i < nfe; i++) {
		evbuffer_add_printf(out, "sluice_ring_used_bytes{frontend=\"%u\",ring=\"publish\"} %llu\n", i,
		                    (unsigned long long)ring_used(shm_pub_ring(fe->shm, i)));
		evbuffer_add_printf(out, "sluice_ring_used_bytes{frontend=\"%u\",ring=\"ack\"} %llu\n", i,
		                    (unsigned long long)ring_used(shm_ack_ring(fe->shm, i)));
	}
	family(out, "sluice_frontend_acked_messages_total", "counter",
	       "Messages whose publish a frontend acknowledged to its clients.");
	for (uint32_t i = 0; i < nfe; i++)
		evbuffer_add_printf(out, "sluice_frontend_acked_messages_total{frontend=\"%u\"} %llu\n", i,
		                    (unsigned long long)shm_stat_load(&shm_frontend(fe->shm, i)->published));
}

static void render_latency(struct fe *fe, struct evbuffer *out, uint32_t nfe)
{
	uint64_t bucket[METRICS_BUCKETS + 1] = {0}, sum = 0;

	for (uint32_t i = 0; i < nfe; i++)
		hist_add(&shm_frontend(fe->shm, i)->metrics.publish_ack, bucket, &sum);
	histogram(out, "sluice_publish_ack_duration_seconds",
	          "Time from a publish entering the ring to its acknowledgement (committed), per request.", bucket, sum);
	memset(bucket, 0, sizeof(bucket));
	sum = 0;
	hist_add(&fe->shm->hdr->lw_metrics.commit, bucket, &sum);
	histogram(out, "sluice_storage_commit_duration_seconds",
	          "Time to commit one group-commit transaction, including fdatasync when storage.sync is on.", bucket,
	          sum);
}

struct http_row {
	char route[METRICS_ROUTE_BYTES];
	uint32_t status;
	uint64_t count;
};

static int render_http(struct fe *fe, struct evbuffer *out, uint32_t nfe)
{
	struct http_row *rows = NULL;
	size_t n = 0, cap = 0;
	uint64_t untracked = 0;

	for (uint32_t i = 0; i < nfe; i++) {
		struct shm_fe_metrics *m = &shm_frontend(fe->shm, i)->metrics;
		untracked += shm_stat_load(&m->http_untracked);
		for (size_t k = 0; k < METRICS_HTTP_ENTRIES_MAX && shm_load(&m->http[k].used); k++) {
			const struct shm_http_count *e = &m->http[k];
			size_t j = 0;
			while (j < n && !(rows[j].status == e->status && strncmp(rows[j].route, e->route, sizeof(e->route)) == 0))
				j++;
			if (j == n) {
				if (vec_reserve(&rows, &cap, n + 1)) {
					free(rows);
					return SL_ENOMEM;
				}
				memcpy(rows[n].route, e->route, sizeof(rows[n].route));
				rows[n].route[sizeof(rows[n].route) - 1] = 0;
				rows[n].status = e->status;
				rows[n].count = 0;
				n++;
			}
			rows[j].count += shm_stat_load(&e->count);
		}
	}
	family(out, "sluice_http_requests_total", "counter", "HTTP requests answered, by route pattern and status.");
	for (size_t j = 0; j < n; j++) {
		evbuffer_add_printf(out, "sluice_http_requests_total{route=\"");
		label_value(out, rows[j].route);
		evbuffer_add_printf(out, "\",status=\"%u\"} %llu\n", rows[j].status, (unsigned long long)rows[j].count);
	}
	family(out, "sluice_http_requests_untracked_total", "counter",
	       "HTTP requests whose route and status did not fit the per-frontend table (counted only here).");
	sample_u64(out, "sluice_http_requests_untracked_total", untracked);
	free(rows);
	return SL_OK;
}

int fe_metrics_render(struct fe *fe, struct evbuffer *out)
{
	uint32_t nfe = fe->shm->hdr->frontends;
	struct topic_rows tr;
	int rc;

	if (nfe > SHM_FRONTENDS_MAX)
		nfe = SHM_FRONTENDS_MAX;
	rc = topics_collect(fe, &tr);
	if (rc == SL_OK) {
		render_node(fe, out, tr.n);
		render_topics(out, &tr);
		render_consumers(fe, out);
		render_latency(fe, out, nfe);
		render_cluster(fe, out);
		render_connections(fe, out, nfe);
		render_rings(fe, out, nfe);
		rc = render_http(fe, out, nfe);
	}
	if (rc != SL_OK)
		log_warn("metrics not rendered: %s", sl_strerror(rc));
	free(tr.v);
	return rc;
}
