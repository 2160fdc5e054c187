/*
 * config.c: node configuration (config.h). The INI file is parsed by libinih;
 * every (section, key) goes through the same table-driven setter that the
 * master uses for command-line flags, so a file and a flag accept exactly the
 * same values. An unknown key or bad value is an error, never ignored: a typo
 * in a limit must not silently run with the default.
 *
 * Checks that span keys (heartbeat below the election timeout, this node among
 * the peers) cannot run while keys arrive one by one in any order: they are
 * in config_validate, run once after the file and the flags.
 *
 * inih is built without INI_HANDLER_LINENO on Debian, so the handler records
 * the first error and config_load_file adds the line number ini_parse returns.
 */
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config.h"
#include "err.h"
#include "log.h"
#include "shm.h"
#include "tbucket.h"

enum config_type {
	CT_U32, CT_U64, CT_I64, CT_SIZE32, CT_SIZE64, CT_POW2, CT_BOOL, CT_STR, CT_HOSTPORT, CT_LEVEL, CT_PEERS, CT_CLIENTS
};

struct config_key {
	const char *section;
	const char *key;
	const char *flag;
	enum config_type type;
	size_t off;
	size_t size; /* CT_STR / CT_HOSTPORT: buffer bytes */
	uint64_t min;
	uint64_t max;
};

#define KIB (1ull << 10)
#define MIB (1ull << 20)
#define GIB (1ull << 30)
#define CFG(f) offsetof(struct config, f), sizeof(((struct config *)0)->f)

static const struct config_key config_keys[] = {
    {"node", "id", "node-id", CT_U32, CFG(node_id), 1, UINT32_MAX},
    {"node", "data_dir", "data-dir", CT_STR, CFG(data_dir), 0, 0},
    {"node", "frontends", "frontends", CT_U32, CFG(frontends), 1, SHM_FRONTENDS_MAX},
    {"listen", "native", "listen", CT_HOSTPORT, CFG(listen_native), 0, 0},
    {"listen", "http", "http", CT_HOSTPORT, CFG(listen_http), 0, 0},
    {"limits", "frame_bytes_max", "frame-bytes-max", CT_SIZE32, CFG(frame_bytes_max), 64, GIB},
    {"limits", "connections_max", "connections-max", CT_U32, CFG(connections_max), 1, 10000000},
    {"limits", "subscriptions_max", "subscriptions-max", CT_U32, CFG(subscriptions_max), 1, 10000000},
    {"limits", "ring_bytes", "ring-bytes", CT_POW2, CFG(ring_bytes), 4 * KIB, 4 * GIB},
    {"limits", "partitions_max", "partitions-max", CT_U32, CFG(partitions_max), 1, 1u << 24},
    {"limits", "output_low_bytes", "output-low-bytes", CT_SIZE64, CFG(output_low_bytes), 4 * KIB, 64 * GIB},
    {"limits", "output_high_bytes", "output-high-bytes", CT_SIZE64, CFG(output_high_bytes), 4 * KIB, 64 * GIB},
    {"limits", "output_pause_bytes", "output-pause-bytes", CT_SIZE64, CFG(output_pause_bytes), 4 * KIB, 64 * GIB},
    {"limits", "inflight_max", "inflight-max", CT_U32, CFG(inflight_max), 1, 1u << 24},
    {"limits", "hello_timeout_ms", "hello-timeout-ms", CT_U32, CFG(hello_timeout_ms), 10, 3600000},
    {"limits", "connections_per_address_max", "connections-per-address-max", CT_U32,
     CFG(connections_per_address_max), 0, 10000000},
    {"limits", "principal_requests_per_s", "principal-requests-per-s", CT_U32, CFG(principal_requests_per_s), 0,
     1000000000},
    {"limits", "principal_bytes_per_s", "principal-bytes-per-s", CT_SIZE64, CFG(principal_bytes_per_s), 0,
     TBUCKET_RATE_MAX},
    {"limits", "topics_per_principal_max", "topics-per-principal-max", CT_U32, CFG(topics_per_principal_max), 0,
     1000000},
    {"http", "header_bytes_max", "http-header-bytes-max", CT_SIZE32, CFG(http_header_bytes_max), 1 * KIB, MIB},
    {"http", "body_bytes_max", "http-body-bytes-max", CT_SIZE64, CFG(http_body_bytes_max), 1 * KIB, GIB},
    {"http", "connections_max", "http-connections-max", CT_U32, CFG(http_connections_max), 1, 10000000},
    {"http", "header_timeout_ms", "http-header-timeout-ms", CT_U32, CFG(http_header_timeout_ms), 10, 3600000},
    {"http", "idle_timeout_ms", "http-idle-timeout-ms", CT_U32, CFG(http_idle_timeout_ms), 10, 86400000},
    {"http", "pipeline_max", "http-pipeline-max", CT_U32, CFG(http_pipeline_max), 1, 4096},
    {"http", "sse_heartbeat_ms", "sse-heartbeat-ms", CT_U32, CFG(sse_heartbeat_ms), 10, 3600000},
    {"http", "sse_retry_ms", "sse-retry-ms", CT_U32, CFG(sse_retry_ms), 0, 3600000},
    {"http", "operation_pending_ms", "operation-pending-ms", CT_U32, CFG(operation_pending_ms), 1000, 86400000},
    {"http", "cors_origins", "http-cors-origins", CT_STR, CFG(http_cors_origins), 0, 0},
    {"http", "ws_origins", "ws-origins", CT_STR, CFG(http_ws_origins), 0, 0},
    {"http", "ws_message_max", "ws-message-max", CT_SIZE64, CFG(ws_message_max), 1 * KIB, GIB},
    {"http", "ws_ping_interval_ms", "ws-ping-interval-ms", CT_U32, CFG(ws_ping_interval_ms), 100, 3600000},
    {"webhooks", "allow_private", "webhook-allow-private", CT_BOOL, CFG(webhook_allow_private), 0, 1},
    {"webhooks", "ca_file", "webhook-ca-file", CT_STR, CFG(webhook_ca_file), 0, 0},
    {"webhooks", "conns_per_host", "webhook-conns-per-host", CT_U32, CFG(webhook_conns_per_host), 1, 1024},
    {"tls", "cert", "tls-cert", CT_STR, CFG(tls_cert), 0, 0},
    {"tls", "key", "tls-key", CT_STR, CFG(tls_key), 0, 0},
    {"tls", "ca", "tls-ca", CT_STR, CFG(tls_ca), 0, 0},
    {"tls", "ciphers", "tls-ciphers", CT_STR, CFG(tls_ciphers), 0, 0},
    {"tls", "peer_cert", "tls-peer-cert", CT_STR, CFG(tls_peer_cert), 0, 0},
    {"tls", "peer_key", "tls-peer-key", CT_STR, CFG(tls_peer_key), 0, 0},
    {"tls", "peer_ca", "tls-peer-ca", CT_STR, CFG(tls_peer_ca), 0, 0},
    {"auth", "enabled", "auth", CT_BOOL, CFG(auth_enabled), 0, 1},
    {"auth", "key_file", "auth-key-file", CT_STR, CFG(auth_key_file), 0, 0},
    {"auth", "admin_key", "auth-admin-key", CT_STR, CFG(auth_admin_key), 0, 0},
    {"storage", "map_bytes", "map-bytes", CT_SIZE64, CFG(map_bytes), MIB, 1ull << 46},
    {"storage", "sync", "sync", CT_BOOL, CFG(sync), 0, 1},
    {"storage", "batch_records_max", "batch-records-max", CT_U32, CFG(batch_records_max), 1, 1u << 24},
    {"storage", "retention_check_ms", "retention-check-ms", CT_U32, CFG(retention_check_ms), 1, UINT32_MAX},
    {"storage", "retention_chunk_batches", "retention-chunk-batches", CT_U32, CFG(retention_chunk_batches), 1,
     1u << 24},
    {"storage", "dedup_window_ms", "dedup-window-ms", CT_I64, CFG(dedup_window_ms), 0, 366ull * 86400000},
    {"cluster", "peers", "peers", CT_PEERS, CFG(cluster), 0, 0},
    {"cluster", "clients", "clients", CT_CLIENTS, CFG(cluster), 0, 0},
    {"cluster", "election_timeout_ms", "election-timeout-ms", CT_U32, CFG(election_timeout_ms), 50, 3600000},
    {"cluster", "heartbeat_ms", "heartbeat-ms", CT_U32, CFG(heartbeat_ms), 1, 3600000},
    {"cluster", "raftlog_bytes_max", "raftlog-bytes-max", CT_SIZE64, CFG(raftlog_bytes_max), MIB, 1ull << 46},
    {"cluster", "entry_bytes_max", "entry-bytes-max", CT_SIZE64, CFG(entry_bytes_max), 64 * KIB, GIB},
    {"cluster", "forward_queue_bytes_max", "forward-queue-bytes-max", CT_SIZE64, CFG(forward_queue_bytes_max), MIB,
     64 * GIB},
    {"log", "level", "log-level", CT_LEVEL, CFG(log_level), 0, 0},
};

#define CONFIG_KEYS (sizeof(config_keys) / sizeof(config_keys[0]))

const char *config_flag_name(size_t i)
{
	return i < CONFIG_KEYS ? config_keys[i].flag : NULL;
}

void config_defaults(struct config *c)
{
	memset(c, 0, sizeof(*c));
	c->node_id = 1;
	snprintf(c->data_dir, sizeof(c->data_dir), "%s", "./sluice-data");
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	if (cpus < 1)
		cpus = 1;
	if (cpus > SHM_FRONTENDS_MAX)
		cpus = SHM_FRONTENDS_MAX;
	c->frontends = (uint32_t)cpus;
	snprintf(c->listen_native, sizeof(c->listen_native), "%s", "127.0.0.1:7400");
	snprintf(c->listen_http, sizeof(c->listen_http), "%s", "127.0.0.1:8400");
	c->http_header_bytes_max = 16 * KIB;
	c->http_body_bytes_max = 1 * MIB;
	c->http_connections_max = 10000;
	c->http_header_timeout_ms = 10000;
	c->http_idle_timeout_ms = 60000;
	c->http_pipeline_max = 32;
	c->sse_heartbeat_ms = 15000;
	c->sse_retry_ms = 2000;
	c->operation_pending_ms = 120000;
	c->ws_message_max = 1 * MIB;
	c->ws_ping_interval_ms = 20000;
	c->webhook_conns_per_host = 4;
	/* forward secrecy and AEAD only; TLS 1.3 suites are all of that kind already */
	snprintf(c->tls_ciphers, sizeof(c->tls_ciphers), "%s", CONFIG_TLS_CIPHERS_DEFAULT);
	c->frame_bytes_max = 1u << 20;
	c->connections_max = 10000;
	c->subscriptions_max = 1024;
	c->ring_bytes = 8 * MIB;
	c->partitions_max = 4096;
	c->output_low_bytes = 1 * MIB;
	c->output_high_bytes = 4 * MIB;
	c->output_pause_bytes = 16 * MIB;
	c->inflight_max = 65536;
	c->hello_timeout_ms = 10000;
	c->map_bytes = 8 * GIB;
	c->sync = 1;
	c->batch_records_max = 65536;
	c->retention_check_ms = 1000;
	c->retention_chunk_batches = 256;
	c->dedup_window_ms = 600000;
	c->election_timeout_ms = 1000;
	c->heartbeat_ms = 100;
	c->raftlog_bytes_max = GIB;
	c->entry_bytes_max = 8 * MIB;
	c->forward_queue_bytes_max = 64 * MIB;
	c->log_level = LOG_INFO;
}

/* Decimal unsigned integer, optionally with a k/m/g (KiB/MiB/GiB) suffix. */
static int parse_u64(const char *s, int suffixes, uint64_t *out)
{
	if (!isdigit((unsigned char)s[0]))
		return -1;
	errno = 0;
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno)
		return -1;
	uint64_t mul = 1;
	if (suffixes && *end) {
		switch (tolower((unsigned char)*end)) {
		case 'k':
			mul = KIB;
			break;
		case 'm':
			mul = MIB;
			break;
		case 'g':
			mul = GIB;
			break;
		default:
			return -1;
		}
		end++;
		if (strcasecmp(end, "ib") == 0 || strcasecmp(end, "b") == 0)
			end += strlen(end);
	}
	if (*end || v > UINT64_MAX / mul)
		return -1;
	*out = v * mul;
	return 0;
}

static int parse_bool(const char *s, int *out)
{
	static const char *const yes[] = {"true", "yes", "1", "on"};
	static const char *const no[] = {"false", "no", "0", "off"};
	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = 1;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = 0;
			return 0;
		}
	}
	return -1;
}

static int parse_level(const char *s, int *out)
{
	static const char *const names[] = {"debug", "info", "warn", "error"};
	static const int levels[] = {LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR};
	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(s, names[i]) == 0) {
			*out = levels[i];
			return 0;
		}
	}
	if (strcasecmp(s, "warning") == 0) {
		*out = LOG_WARN;
		return 0;
	}
	return -1;
}

static int set_string(const struct config_key *k, char *dst, const char *value, char *err, size_t errlen)
{
	size_t n = strlen(value);
	if (n == 0 || n >= k->size) {
		snprintf(err, errlen, "%s.%s: value must be 1..%zu bytes", k->section, k->key, k->size - 1);
		return SL_ECONFIG;
	}
	if (k->type == CT_HOSTPORT) {
		char host[256];
		uint16_t port;
		if (config_parse_hostport(value, host, sizeof(host), &port)) {
			snprintf(err, errlen, "%s.%s: expected HOST:PORT, got '%s'", k->section, k->key, value);
			return SL_ECONFIG;
		}
	}
	memcpy(dst, value, n + 1);
	return SL_OK;
}

static int set_number(const struct config_key *k, void *dst, const char *value, char *err, size_t errlen)
{
	int suffixes = k->type == CT_SIZE32 || k->type == CT_SIZE64 || k->type == CT_POW2;
	uint64_t v;
	if (parse_u64(value, suffixes, &v) || v < k->min || v > k->max || (k->type == CT_POW2 && (v & (v - 1)) != 0)) {
		snprintf(err, errlen, "%s.%s: bad value '%s' (%s %llu..%llu%s)", k->section, k->key, value,
		         suffixes ? "size" : "integer", (unsigned long long)k->min, (unsigned long long)k->max,
		         k->type == CT_POW2 ? ", a power of two" : "");
		return SL_ECONFIG;
	}
	switch (k->type) {
	case CT_U32:
	case CT_SIZE32:
		*(uint32_t *)dst = (uint32_t)v;
		break;
	case CT_I64:
		*(int64_t *)dst = (int64_t)v;
		break;
	default:
		*(uint64_t *)dst = v;
		break;
	}
	return SL_OK;
}

/* ---- [cluster] peers and clients: "ID=HOST:PORT,ID=HOST:PORT,..." ---- */

struct node_list {
	size_t n;
	struct {
		uint32_t id;
		char addr[256];
	} v[CONFIG_NODES_MAX];
};

static int parse_node(const struct config_key *k, const char *item, size_t len, struct node_list *l, char *err,
		      size_t errlen)
{
	char buf[300], host[256];
	while (len && isspace((unsigned char)*item)) {
		item++;
		len--;
	}
	while (len && isspace((unsigned char)item[len - 1]))
		len--;
	if (len >= sizeof(buf) || len == 0) {
		snprintf(err, errlen, "cluster.%s: %s entry", k->key, len ? "overlong" : "empty");
		return SL_ECONFIG;
	}
	memcpy(buf, item, len);
	buf[len] = 0;
	char *eq = strchr(buf, '=');
	uint64_t id;
	uint16_t port;
	if (eq)
		*eq = 0;
	if (!eq || parse_u64(buf, 0, &id) || id == 0 || id > UINT32_MAX) {
		snprintf(err, errlen, "cluster.%s: expected ID=HOST:PORT with ID >= 1, got '%.*s'", k->key, (int)len, item);
		return SL_ECONFIG;
	}
	if (config_parse_hostport(eq + 1, host, sizeof(host), &port)) {
		snprintf(err, errlen, "cluster.%s: node %llu: expected HOST:PORT, got '%s'", k->key,
			 (unsigned long long)id, eq + 1);
		return SL_ECONFIG;
	}
	for (size_t i = 0; i < l->n; i++) {
		if (l->v[i].id == id) {
			snprintf(err, errlen, "cluster.%s: node %llu is listed twice", k->key, (unsigned long long)id);
			return SL_ECONFIG;
		}
		if (strcmp(l->v[i].addr, eq + 1) == 0) {
			snprintf(err, errlen, "cluster.%s: nodes %u and %llu have the same address %s", k->key, l->v[i].id,
				 (unsigned long long)id, eq + 1);
			return SL_ECONFIG;
		}
	}
	if (l->n == CONFIG_NODES_MAX) {
		snprintf(err, errlen, "cluster.%s: more than %d nodes", k->key, CONFIG_NODES_MAX);
		return SL_ECONFIG;
	}
	l->v[l->n].id = (uint32_t)id;
	snprintf(l->v[l->n].addr, sizeof(l->v[l->n].addr), "%s", eq + 1);
	l->n++;
	return SL_OK;
}

static int parse_nodes(const struct config_key *k, const char *value, struct node_list *l, char *err, size_t errlen)
{
	l->n = 0;
	const char *p = value;
	while (*p && isspace((unsigned char)*p))
		p++;
	if (!*p)
		return SL_OK;
	for (;;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		if (parse_node(k, p, len, l, err, errlen))
			return SL_ECONFIG;
		if (!comma)
			return SL_OK;
		p = comma + 1;
	}
}

/*
 * peers sets cluster[0..cluster_n). clients given before peers (the order of
 * keys in a file is free) wait in cluster[] with an empty raft address and
 * cluster_n 0; peers takes them over, and config_validate refuses clients
 * left without peers.
 */
static int set_peers(const struct config_key *k, struct config *c, const char *value, char *err, size_t errlen)
{
	struct node_list l;
	if (parse_nodes(k, value, &l, err, errlen))
		return SL_ECONFIG;
	if (l.n && l.n < 3) {
		snprintf(err, errlen, "cluster.peers: a cluster has at least 3 nodes, got %zu (leave peers empty for a "
			 "single node)", l.n);
		return SL_ECONFIG;
	}
	struct config_node next[CONFIG_NODES_MAX];
	memset(next, 0, sizeof(next));
	if (!l.n) { /* a single node: no raft, and no clients list either */
		memcpy(c->cluster, next, sizeof(next));
		c->cluster_n = 0;
		return SL_OK;
	}
	for (size_t i = 0; i < l.n; i++) {
		next[i].id = l.v[i].id;
		memcpy(next[i].raft, l.v[i].addr, sizeof(next[i].raft));
	}
	for (size_t i = 0; i < CONFIG_NODES_MAX; i++) {
		const struct config_node *old = &c->cluster[i];
		if (!old->id || !old->client[0])
			continue;
		size_t j = 0;
		while (j < l.n && next[j].id != old->id)
			j++;
		if (j == l.n) {
			snprintf(err, errlen, "cluster.clients: node %u is not in cluster.peers", old->id);
			return SL_ECONFIG;
		}
		memcpy(next[j].client, old->client, sizeof(next[j].client));
	}
	memcpy(c->cluster, next, sizeof(next));
	c->cluster_n = (uint32_t)l.n;
	return SL_OK;
}

static int set_clients(const struct config_key *k, struct config *c, const char *value, char *err, size_t errlen)
{
	struct node_list l;
	if (parse_nodes(k, value, &l, err, errlen))
		return SL_ECONFIG;
	struct config_node next[CONFIG_NODES_MAX];
	memcpy(next, c->cluster, sizeof(next));
	for (size_t i = 0; i < CONFIG_NODES_MAX; i++) {
		next[i].client[0] = 0;
		if (i >= c->cluster_n)
			memset(&next[i], 0, sizeof(next[i]));
	}
	for (size_t i = 0; i < l.n; i++) {
		size_t j = 0;
		if (c->cluster_n) {
			while (j < c->cluster_n && next[j].id != l.v[i].id)
				j++;
			if (j == c->cluster_n) {
				snprintf(err, errlen, "cluster.clients: node %u is not in cluster.peers", l.v[i].id);
				return SL_ECONFIG;
			}
		} else {
			j = i; /* waits for peers */
			next[j].id = l.v[i].id;
		}
		memcpy(next[j].client, l.v[i].addr, sizeof(next[j].client));
	}
	memcpy(c->cluster, next, sizeof(next));
	return SL_OK;
}

/* cert and key go together; a CA alone would suggest TLS where there is none. */
static int validate_tls(const struct config *c, char *err, size_t errlen)
{
	if (!c->tls_cert[0] != !c->tls_key[0]) {
		snprintf(err, errlen, "tls.%s is set but tls.%s is not: give both (or neither, for plain TCP)",
			 c->tls_cert[0] ? "cert" : "key", c->tls_cert[0] ? "key" : "cert");
		return SL_ECONFIG;
	}
	if (c->tls_ca[0] && !c->tls_cert[0]) {
		snprintf(err, errlen, "tls.ca is set but tls.cert and tls.key are not");
		return SL_ECONFIG;
	}
	if (!c->tls_peer_cert[0] != !c->tls_peer_key[0]) {
		snprintf(err, errlen, "tls.%s is set but tls.%s is not: give both (or neither, to use tls.cert and tls.key)",
			 c->tls_peer_cert[0] ? "peer_cert" : "peer_key", c->tls_peer_cert[0] ? "peer_key" : "peer_cert");
		return SL_ECONFIG;
	}
	if ((c->tls_peer_cert[0] || c->tls_peer_ca[0]) && !c->tls_cert[0]) {
		snprintf(err, errlen, "tls.peer_* is set but tls.cert is not: peer links speak TLS only when the "
				      "client listeners do");
		return SL_ECONFIG;
	}
	return SL_OK;
}

int config_validate(const struct config *c, char *err, size_t errlen)
{
	if (validate_tls(c, err, errlen) != SL_OK)
		return SL_ECONFIG;
	if (c->output_low_bytes >= c->output_high_bytes || c->output_high_bytes > c->output_pause_bytes) {
		snprintf(err, errlen,
			 "limits: output_low_bytes (%llu) < output_high_bytes (%llu) <= output_pause_bytes (%llu) "
			 "must hold", (unsigned long long)c->output_low_bytes, (unsigned long long)c->output_high_bytes,
			 (unsigned long long)c->output_pause_bytes);
		return SL_ECONFIG;
	}
	if (c->auth_enabled && strncmp(c->auth_admin_key, "sluice-ed25519:", 15) != 0) {
		snprintf(err, errlen, "auth.enabled needs auth.admin_key: the public key (sluice-ed25519:...) of the "
			 "first administrator (sluice key gen prints one)");
		return SL_ECONFIG;
	}
	if (c->heartbeat_ms >= c->election_timeout_ms) {
		snprintf(err, errlen, "cluster.heartbeat_ms (%u) must be less than cluster.election_timeout_ms (%u)",
			 c->heartbeat_ms, c->election_timeout_ms);
		return SL_ECONFIG;
	}
	if (!c->cluster_n) {
		if (c->cluster[0].id) {
			snprintf(err, errlen, "cluster.clients is set but cluster.peers is not");
			return SL_ECONFIG;
		}
		return SL_OK;
	}
	for (size_t i = 0; i < c->cluster_n; i++)
		if (c->cluster[i].id == c->node_id)
			return SL_OK;
	snprintf(err, errlen, "node.id %u is not among cluster.peers", c->node_id);
	return SL_ECONFIG;
}

static int config_apply(struct config *c, const struct config_key *k, const char *value, char *err, size_t errlen)
{
	void *dst = (uint8_t *)c + k->off;
	switch (k->type) {
	case CT_STR:
	case CT_HOSTPORT:
		return set_string(k, dst, value, err, errlen);
	case CT_BOOL:
		if (parse_bool(value, dst) == 0)
			return SL_OK;
		snprintf(err, errlen, "%s.%s: expected true or false, got '%s'", k->section, k->key, value);
		return SL_ECONFIG;
	case CT_PEERS:
		return set_peers(k, c, value, err, errlen);
	case CT_CLIENTS:
		return set_clients(k, c, value, err, errlen);
	case CT_LEVEL:
		if (parse_level(value, dst) == 0)
			return SL_OK;
		snprintf(err, errlen, "%s.%s: expected debug, info, warn or error, got '%s'", k->section, k->key,
		         value);
		return SL_ECONFIG;
	default:
		return set_number(k, dst, value, err, errlen);
	}
}

/* Match "section"+"key", "section.key" in key, or a flag name (dashes or underscores). */
static const struct config_key *config_find(const char *section, const char *key)
{
	char name[128];
	const char *dot = strchr(key, '.');
	if ((!section || !*section) && dot && (size_t)(dot - key) < sizeof(name)) {
		memcpy(name, key, (size_t)(dot - key));
		name[dot - key] = 0;
		section = name;
		key = dot + 1;
	}
	for (size_t i = 0; i < CONFIG_KEYS; i++) {
		const struct config_key *k = &config_keys[i];
		if (section && *section) {
			if (strcmp(section, k->section) == 0 && strcmp(key, k->key) == 0)
				return k;
			continue;
		}
		const char *f = k->flag;
		const char *p = key;
		while (*f && (*p == *f || (*p == '_' && *f == '-'))) {
			f++;
			p++;
		}
		if (!*f && !*p)
			return k;
	}
	return NULL;
}

int config_set(struct config *c, const char *section, const char *key, const char *value, char *err, size_t errlen)
{
	const struct config_key *k = config_find(section, key);
	if (!k) {
		if (section && *section)
			snprintf(err, errlen, "unknown key '%s' in section [%s]", key, section);
		else
			snprintf(err, errlen, "unknown option '%s'", key);
		return SL_ECONFIG;
	}
	return config_apply(c, k, value ? value : "", err, errlen);
}

struct config_parse {
	struct config *c;
	char msg[512];
	int failed;
};

static int config_ini_cb(void *user, const char *section, const char *name, const char *value)
{
	struct config_parse *p = user;
	if (p->failed)
		return 0;
	if (!name) /* a section line with no keys yet (INI_CALL_HANDLER_ON_NEW_SECTION) */
		return 1;
	if (!section || !*section) {
		snprintf(p->msg, sizeof(p->msg), "key '%s' outside any section", name);
		p->failed = 1;
		return 0;
	}
	if (config_set(p->c, section, name, value, p->msg, sizeof(p->msg))) {
		p->failed = 1;
		return 0;
	}
	return 1;
}

int config_load_file(struct config *c, const char *path, char *err, size_t errlen)
{
	struct config_parse p = {.c = c};
	int line = ini_parse(path, config_ini_cb, &p);
	if (line == 0)
		return SL_OK;
	if (line == -1)
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
	else if (line == -2)
		snprintf(err, errlen, "%s: out of memory", path);
	else if (p.failed)
		snprintf(err, errlen, "%s:%d: %s", path, line, p.msg);
	else
		snprintf(err, errlen, "%s:%d: syntax error", path, line);
	return SL_ECONFIG;
}

int config_parse_hostport(const char *s, char *host, size_t hostlen, uint16_t *port)
{
	const char *h = s, *hend, *colon;
	if (!s)
		return SL_EINVAL;
	if (*s == '[') {
		h = s + 1;
		hend = strchr(h, ']');
		if (!hend || hend[1] != ':')
			return SL_EINVAL;
		colon = hend + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon || memchr(s, ':', (size_t)(colon - s)))
			return SL_EINVAL; /* bare IPv6 needs brackets */
		hend = colon;
	}
	size_t hn = (size_t)(hend - h);
	if (hn == 0 || hn >= hostlen)
		return SL_EINVAL;
	uint64_t v;
	if (parse_u64(colon + 1, 0, &v) || v > 65535)
		return SL_EINVAL;
	memcpy(host, h, hn);
	host[hn] = 0;
	*port = (uint16_t)v;
	return SL_OK;
}
