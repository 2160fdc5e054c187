/*
 * config.h: node configuration. Read from an INI file with libinih, then
 * overridden by command-line flags (a flag wins). Every key is documented in
 * docs/configuration.md. Sizes are bytes, times milliseconds.
 */
#ifndef SLUICE_CONFIG_H
#define SLUICE_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "nodes.h"

#define CONFIG_NODES_MAX SL_NODES_MAX

/* [tls] ciphers by default: ECDHE key exchange and AEAD ciphers (TLS 1.2) */
#define CONFIG_TLS_CIPHERS_DEFAULT "ECDHE+AESGCM:ECDHE+CHACHA20"

struct config {
	/* [node] */
	uint32_t node_id;               /* id, default 1 */
	char data_dir[4096];            /* data_dir, default ./sluice-data */
	uint32_t frontends;             /* frontends, default: number of cores */
	/* [listen] */
	char listen_native[256];        /* native, default 127.0.0.1:7400 */
	char listen_http[256];          /* http (flag --http), default 127.0.0.1:8400 */
	/* [limits] */
	uint32_t frame_bytes_max;       /* frame_bytes_max, default 1 MiB */
	uint32_t connections_max;       /* connections_max per frontend, default 10000 */
	uint32_t subscriptions_max;     /* subscriptions_max per connection, default 1024 */
	uint64_t ring_bytes;            /* ring_bytes per ring, default 8 MiB */
	uint32_t partitions_max;        /* partitions_max (commit table slots), default 4096 */
	uint64_t output_low_bytes;      /* output_low_bytes per connection: deliveries and reads resume below, 1 MiB */
	uint64_t output_high_bytes;     /* output_high_bytes: deliveries pause above, default 4 MiB */
	uint64_t output_pause_bytes;    /* output_pause_bytes: reading requests pauses above, default 16 MiB */
	uint32_t inflight_max;          /* inflight_max: requests awaiting the log per connection, default 65536 */
	uint32_t hello_timeout_ms;      /* hello_timeout_ms: a connection without Hello by then is closed, 10000 */
	uint32_t connections_per_address_max; /* per frontend, native + HTTP, from one source IP; 0 = unlimited (default) */
	uint32_t principal_requests_per_s;    /* token bucket per principal per frontend; 0 = unlimited (default) */
	uint64_t principal_bytes_per_s;       /* request bytes, likewise; 0 = unlimited (default) */
	uint32_t topics_per_principal_max;    /* live topics one principal created, whole cluster (the logwriter
	                                       * checks it when the create applies); 0 = unlimited (default) */
	/* [http] (HTTP/1.1 and Server-Sent Events, per frontend) */
	uint32_t http_header_bytes_max;  /* header_bytes_max: request line + headers, default 16 KiB */
	uint64_t http_body_bytes_max;    /* body_bytes_max: request body, default 1 MiB */
	uint32_t http_connections_max;   /* connections_max per frontend, default 10000 */
	uint32_t http_header_timeout_ms; /* header_timeout_ms: a request's headers must arrive within, 10000 */
	uint32_t http_idle_timeout_ms;   /* idle_timeout_ms: a keep-alive connection with nothing to do, 60000 */
	uint32_t http_pipeline_max;      /* pipeline_max: requests read ahead of their answers per connection, 32 */
	uint32_t sse_heartbeat_ms;       /* sse_heartbeat_ms: comment line on idle event streams, 15000 */
	uint32_t sse_retry_ms;           /* sse_retry_ms: the retry: hint sent to EventSource clients, 2000 */
	uint32_t operation_pending_ms;   /* operation_pending_ms: a 202 operation not in the log by then is failed, 120000 */
	char http_cors_origins[2048];    /* cors_origins: origins allowed by CORS, comma-separated, `*`; "" = no CORS */
	char http_ws_origins[2048];      /* ws_origins: Origins a WebSocket handshake may come from, comma-separated; "" = any */
	uint64_t ws_message_max;         /* ws_message_max: largest WebSocket message received, default 1 MiB (1009 above) */
	uint32_t ws_ping_interval_ms;    /* ws_ping_interval_ms: ping a silent WebSocket after, close after twice, 20000 */
	/* [webhooks] */
	int webhook_allow_private;       /* allow_private: deliver to loopback, link-local and private addresses, false */
	char webhook_ca_file[1024];      /* ca_file: PEM CAs trusted for https destinations; "" = the system's */
	uint32_t webhook_conns_per_host; /* conns_per_host: keep-alive connections per destination, 4 */
	/* [tls] (client listeners; all or nothing: with cert and key every listener speaks TLS) */
	char tls_cert[1024];             /* cert: PEM certificate (chain) of the node; "" = plain TCP */
	char tls_key[1024];              /* key: PEM private key of cert */
	char tls_ca[1024];               /* ca: PEM CA(s) that issued cert: checked at start, intermediates sent */
	char tls_ciphers[1024];          /* ciphers: OpenSSL cipher list for TLS 1.2 (1.3 keeps its defaults) */
	/* peer links (mutual TLS, common/tls.h): "" = the client listeners' file */
	char tls_peer_cert[1024];        /* peer_cert: the node's certificate naming URI:sluice:node:<id> */
	char tls_peer_key[1024];         /* peer_key: its key */
	char tls_peer_ca[1024];          /* peer_ca: the cluster CA that issued every node's peer certificate */
	/* [auth] (docs/security.md) */
	int auth_enabled;                /* enabled: every request needs a principal that may do it, false */
	char auth_key_file[1024];        /* key_file: 32-byte key sealing the token signing key, outside the data dir */
	char auth_admin_key[128];        /* admin_key: a public key (sluice-ed25519:...) of the built-in principal admin */
	/* [storage] */
	uint64_t map_bytes;             /* map_bytes, default 8 GiB */
	int sync;                       /* sync = true|false, default true (sync before ack) */
	uint32_t batch_records_max;     /* batch_records_max per group commit, default 65536 */
	uint32_t retention_check_ms;    /* retention_check_ms, default 1000 */
	uint32_t retention_chunk_batches; /* retention_chunk_batches per txn, default 256 */
	int64_t dedup_window_ms;        /* dedup_window_ms, default 600000 */
	/* [cluster] (empty peers: a single node, no raft) */
	uint32_t cluster_n;             /* number of nodes in peers (0, or 3..CONFIG_NODES_MAX) */
	struct config_node {
		uint32_t id;
		char raft[256];         /* HOST:PORT of its logwriter peer link */
		char client[256];       /* HOST:PORT of its native listener ("" if not given) */
	} cluster[CONFIG_NODES_MAX];                   /* peers = "1=h:p,2=h:p,3=h:p"; clients = "1=h:p,..." */
	uint32_t election_timeout_ms;   /* election_timeout_ms, default 1000 (randomised up to 2x) */
	uint32_t heartbeat_ms;          /* heartbeat_ms, default 100 */
	uint64_t raftlog_bytes_max;     /* raftlog_bytes_max, default 1 GiB: raft log kept for lagging peers */
	uint64_t entry_bytes_max;       /* entry_bytes_max, default 8 MiB: requests the leader puts in one raft entry */
	uint64_t forward_queue_bytes_max; /* forward_queue_bytes_max, default 64 MiB: forwarded requests waiting on the leader */
	/* [log] */
	int log_level;                  /* level = debug|info|warn|error, default info */
};

/* Fill with defaults. */
void config_defaults(struct config *c);

/* Read an INI file over the current values. Returns 0, or SL_ECONFIG with a
 * message in err (line number and key) on an unknown key or bad value. */
int config_load_file(struct config *c, const char *path, char *err, size_t errlen);

/* Checks that span keys (heartbeat below the election timeout, this node
 * among the peers, clients only with peers). SL_ECONFIG with a message. */
int config_validate(const struct config *c, char *err, size_t errlen);

/* Set one key ("section.key" or a flag name such as "data-dir") from a string. */
int config_set(struct config *c, const char *section, const char *key, const char *value,
	       char *err, size_t errlen);

/* The flag name of config key i (e.g. "data-dir"), NULL past the last
 * one: every key is also a command-line flag. */
const char *config_flag_name(size_t i);

/* Parse "HOST:PORT" into host (NUL-terminated) and port. */
int config_parse_hostport(const char *s, char *host, size_t hostlen, uint16_t *port);

#endif
