/*
 * config_test.c: defaults, an INI file overriding every key, size suffixes,
 * booleans, errors naming line and key, flag-style config_set, host:port, and
 * the [cluster] keys with the checks of config_validate, and [tls].
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "err.h"
#include "log.h"

/* config.h */
int config_validate(const struct config *c, char *err, size_t errlen);

static char path[64];

static void write_file(const char *text)
{
	snprintf(path, sizeof(path), "/tmp/sluice-config-test-XXXXXX");
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	size_t n = strlen(text);
	cr_assert_eq(write(fd, text, n), (ssize_t)n);
	close(fd);
}

static void cleanup(void)
{
	if (path[0])
		unlink(path);
}

TestSuite(config, .fini = cleanup);

Test(config, defaults)
{
	struct config c;
	memset(&c, 0x5a, sizeof(c));
	config_defaults(&c);
	cr_assert_eq(c.node_id, 1);
	cr_assert_str_eq(c.data_dir, "./sluice-data");
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	cr_assert_eq(c.frontends, (uint32_t)(cpus > 64 ? 64 : cpus));
	cr_assert_str_eq(c.listen_native, "127.0.0.1:7400");
	cr_assert_eq(c.frame_bytes_max, 1u << 20);
	cr_assert_eq(c.connections_max, 10000);
	cr_assert_eq(c.subscriptions_max, 1024);
	cr_assert_eq(c.ring_bytes, 8ull << 20);
	cr_assert_eq(c.partitions_max, 4096);
	cr_assert_eq(c.map_bytes, 8ull << 30);
	cr_assert_eq(c.sync, 1);
	cr_assert_eq(c.batch_records_max, 65536);
	cr_assert_eq(c.retention_check_ms, 1000);
	cr_assert_eq(c.retention_chunk_batches, 256);
	cr_assert_eq(c.dedup_window_ms, 600000);
	cr_assert_eq(c.log_level, LOG_INFO);
	cr_assert_eq(c.cluster_n, 0);
	cr_assert_eq(c.cluster[0].id, 0);
	cr_assert_eq(c.election_timeout_ms, 1000);
	cr_assert_eq(c.heartbeat_ms, 100);
	cr_assert_eq(c.raftlog_bytes_max, 1ull << 30);
	char err[256] = "";
	cr_assert_eq(config_validate(&c, err, sizeof(err)), SL_OK, "%s", err);
}

Test(config, file_overrides_every_key)
{
	write_file("; sluice node 2\n"
	           "[node]\n"
	           "id = 2\n"
	           "data_dir = /var/lib/sluice/n2\n"
	           "frontends = 3\n"
	           "\n"
	           "[listen]\n"
	           "native = [::1]:7402\n"
	           "[limits]\n"
	           "frame_bytes_max = 256k\n"
	           "connections_max = 500\n"
	           "subscriptions_max = 17\n"
	           "ring_bytes = 16M\n"
	           "partitions_max = 128\n"
	           "[storage]\n"
	           "map_bytes = 2g\n"
	           "sync = no\n"
	           "batch_records_max = 1000\n"
	           "retention_check_ms = 250\n"
	           "retention_chunk_batches = 8\n"
	           "dedup_window_ms = 5000\n"
	           "[log]\n"
	           "level = debug\n");
	struct config c;
	config_defaults(&c);
	char err[256] = "";
	cr_assert_eq(config_load_file(&c, path, err, sizeof(err)), SL_OK, "%s", err);
	cr_assert_eq(c.node_id, 2);
	cr_assert_str_eq(c.data_dir, "/var/lib/sluice/n2");
	cr_assert_eq(c.frontends, 3);
	cr_assert_str_eq(c.listen_native, "[::1]:7402");
	cr_assert_eq(c.frame_bytes_max, 256u * 1024);
	cr_assert_eq(c.connections_max, 500);
	cr_assert_eq(c.subscriptions_max, 17);
	cr_assert_eq(c.ring_bytes, 16ull << 20);
	cr_assert_eq(c.partitions_max, 128);
	cr_assert_eq(c.map_bytes, 2ull << 30);
	cr_assert_eq(c.sync, 0);
	cr_assert_eq(c.batch_records_max, 1000);
	cr_assert_eq(c.retention_check_ms, 250);
	cr_assert_eq(c.retention_chunk_batches, 8);
	cr_assert_eq(c.dedup_window_ms, 5000);
	cr_assert_eq(c.log_level, LOG_DEBUG);
}

Test(config, partial_file_keeps_defaults)
{
	write_file("[storage]\nsync = 0\n");
	struct config c;
	config_defaults(&c);
	char err[256] = "";
	cr_assert_eq(config_load_file(&c, path, err, sizeof(err)), SL_OK, "%s", err);
	cr_assert_eq(c.sync, 0);
	cr_assert_eq(c.map_bytes, 8ull << 30);
	cr_assert_str_eq(c.listen_native, "127.0.0.1:7400");
}

static void set_ok(struct config *c, const char *sec, const char *key, const char *val)
{
	char err[256] = "";
	cr_assert_eq(config_set(c, sec, key, val, err, sizeof(err)), SL_OK, "%s.%s=%s: %s", sec, key, val, err);
}

static void set_bad(struct config *c, const char *sec, const char *key, const char *val)
{
	char err[256] = "";
	cr_assert_eq(config_set(c, sec, key, val, err, sizeof(err)), SL_ECONFIG, "%s=%s accepted", key, val);
	cr_assert_neq(err[0], 0);
}

Test(config, suffixes_and_booleans)
{
	struct config c;
	config_defaults(&c);
	set_ok(&c, "storage", "map_bytes", "1048576");
	cr_assert_eq(c.map_bytes, 1048576);
	set_ok(&c, "storage", "map_bytes", "64m");
	cr_assert_eq(c.map_bytes, 64ull << 20);
	set_ok(&c, "storage", "map_bytes", "3G");
	cr_assert_eq(c.map_bytes, 3ull << 30);
	set_ok(&c, "storage", "map_bytes", "2048k");
	cr_assert_eq(c.map_bytes, 2ull << 20);
	set_ok(&c, "storage", "map_bytes", "4GiB");
	cr_assert_eq(c.map_bytes, 4ull << 30);
	set_ok(&c, "limits", "frame_bytes_max", "1m");
	cr_assert_eq(c.frame_bytes_max, 1u << 20);
	set_ok(&c, "limits", "ring_bytes", "64K");
	cr_assert_eq(c.ring_bytes, 64u << 10);
	const char *yes[] = {"true", "yes", "1", "TRUE"}, *no[] = {"false", "no", "0", "No"};
	for (int i = 0; i < 4; i++) {
		set_ok(&c, "storage", "sync", no[i]);
		cr_assert_eq(c.sync, 0, "%s", no[i]);
		set_ok(&c, "storage", "sync", yes[i]);
		cr_assert_eq(c.sync, 1, "%s", yes[i]);
	}
	const char *lv[] = {"debug", "info", "warn", "error"};
	for (int i = 0; i < 4; i++) {
		set_ok(&c, "log", "level", lv[i]);
		cr_assert_eq(c.log_level, i);
	}
}

Test(config, bad_values_rejected)
{
	struct config c;
	config_defaults(&c);
	struct config orig = c;
	set_bad(&c, "node", "id", "0");
	set_bad(&c, "node", "id", "-1");
	set_bad(&c, "node", "id", "abc");
	set_bad(&c, "node", "id", "4294967296");
	set_bad(&c, "node", "id", "");
	set_bad(&c, "node", "frontends", "0");
	set_bad(&c, "node", "frontends", "65");
	set_bad(&c, "node", "data_dir", "");
	set_bad(&c, "limits", "connections_max", "10k"); /* counts take no suffix */
	set_bad(&c, "limits", "ring_bytes", "3m");       /* not a power of two */
	set_bad(&c, "limits", "ring_bytes", "2k");       /* below 4 KiB */
	set_bad(&c, "limits", "frame_bytes_max", "2g");
	set_bad(&c, "storage", "map_bytes", "12x");
	set_bad(&c, "storage", "map_bytes", "99999999999999999999");
	set_bad(&c, "storage", "map_bytes", "17179869184g"); /* overflows u64 */
	set_bad(&c, "storage", "sync", "maybe");
	set_bad(&c, "log", "level", "loud");
	set_bad(&c, "listen", "native", "localhost");
	set_bad(&c, "listen", "native", "1.2.3.4:70000");
	set_bad(&c, "node", "nope", "1");
	set_bad(&c, "nosection", "id", "1");
	cr_assert_eq(memcmp(&c, &orig, sizeof(c)), 0, "a rejected value changes nothing");
}

Test(config, bad_value_error_names_line_and_key)
{
	write_file("[node]\nid = 3\n\n[limits]\nconnections_max = lots\n");
	struct config c;
	config_defaults(&c);
	char err[256] = "";
	cr_assert_eq(config_load_file(&c, path, err, sizeof(err)), SL_ECONFIG);
	char want[96];
	snprintf(want, sizeof(want), "%s:5:", path);
	cr_assert_not_null(strstr(err, want), "%s", err);
	cr_assert_not_null(strstr(err, "connections_max"), "%s", err);
	cr_assert_not_null(strstr(err, "lots"), "%s", err);
}

Test(config, unknown_key_error_names_line_and_key)
{
	write_file("[node]\nid = 3\n[storage]\nsync = true\nmap_byte = 1g\n");
	struct config c;
	config_defaults(&c);
	char err[256] = "";
	cr_assert_eq(config_load_file(&c, path, err, sizeof(err)), SL_ECONFIG);
	char want[96];
	snprintf(want, sizeof(want), "%s:5:", path);
	cr_assert_not_null(strstr(err, want), "%s", err);
	cr_assert_not_null(strstr(err, "map_byte"), "%s", err);
}

Test(config, unknown_section_and_syntax_errors)
{
	struct config c;
	config_defaults(&c);
	char err[256] = "";
	write_file("[node]\nid = 3\n[nodes]\nid = 4\n");
	cr_assert_eq(config_load_file(&c, path, err, sizeof(err)), SL_ECONFIG);
	cr_assert_not_null(strstr(err, ":4:"), "%s", err);
	cr_assert_not_null(strstr(err, "nodes"), "%s", err);
	unlink(path);
	write_file("[node]\nid 3\n");
	cr_assert_eq(config_load_file(&c, path, err, sizeof(err)), SL_ECONFIG);
	cr_assert_not_null(strstr(err, ":2:"), "%s", err);
	unlink(path);
	write_file("id = 3\n");
	cr_assert_eq(config_load_file(&c, path, err, sizeof(err)), SL_ECONFIG);
	cr_assert_not_null(strstr(err, ":1:"), "%s", err);
	cr_assert_eq(config_load_file(&c, "/nonexistent/sluice.conf", err, sizeof(err)), SL_ECONFIG);
	cr_assert_not_null(strstr(err, "/nonexistent/sluice.conf"), "%s", err);
}

Test(config, flag_names)
{
	struct config c;
	config_defaults(&c);
	set_ok(&c, NULL, "data-dir", "/tmp/x");
	cr_assert_str_eq(c.data_dir, "/tmp/x");
	set_ok(&c, NULL, "node-id", "9");
	cr_assert_eq(c.node_id, 9);
	set_ok(&c, NULL, "listen", "0.0.0.0:9000");
	cr_assert_str_eq(c.listen_native, "0.0.0.0:9000");
	set_ok(&c, NULL, "map_bytes", "1g");
	cr_assert_eq(c.map_bytes, 1ull << 30);
	set_ok(&c, NULL, "storage.sync", "false");
	cr_assert_eq(c.sync, 0);
	set_ok(&c, "", "log-level", "warn");
	cr_assert_eq(c.log_level, LOG_WARN);
	set_bad(&c, NULL, "no-such-flag", "1");
	set_bad(&c, NULL, "storage.nokey", "1");
}

Test(config, hostport)
{
	char host[64];
	uint16_t port = 0;
	cr_assert_eq(config_parse_hostport("127.0.0.1:7400", host, sizeof(host), &port), SL_OK);
	cr_assert_str_eq(host, "127.0.0.1");
	cr_assert_eq(port, 7400);
	cr_assert_eq(config_parse_hostport("[::1]:65535", host, sizeof(host), &port), SL_OK);
	cr_assert_str_eq(host, "::1");
	cr_assert_eq(port, 65535);
	cr_assert_eq(config_parse_hostport("localhost:0", host, sizeof(host), &port), SL_OK);
	cr_assert_str_eq(host, "localhost");
	cr_assert_eq(port, 0);
	const char *bad[] = {"",     "127.0.0.1", "127.0.0.1:", ":80",     "h:65536", "h:-1",
	                     "h:8o", "::1:80",    "[::1]",      "[::1]80", "[]:80",   "h: 80"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(config_parse_hostport(bad[i], host, sizeof(host), &port), SL_EINVAL, "'%s'", bad[i]);
	char tiny[4];
	cr_assert_eq(config_parse_hostport("example.com:80", tiny, sizeof(tiny), &port), SL_EINVAL);
	cr_assert_eq(config_parse_hostport("abc:80", tiny, sizeof(tiny), &port), SL_OK);
	cr_assert_str_eq(tiny, "abc");
}

static void validate_bad(const struct config *c, const char *needle)
{
	char err[256] = "";
	cr_assert_eq(config_validate(c, err, sizeof(err)), SL_ECONFIG, "accepted; wanted '%s'", needle);
	cr_assert_not_null(strstr(err, needle), "%s", err);
}

static void assert_node(const struct config *c, size_t i, uint32_t id, const char *raft, const char *client)
{
	cr_assert_eq(c->cluster[i].id, id, "cluster[%zu].id %u", i, c->cluster[i].id);
	cr_assert_str_eq(c->cluster[i].raft, raft);
	cr_assert_str_eq(c->cluster[i].client, client);
}

Test(config, cluster_file)
{
	write_file("[node]\nid = 2\n"
	           "[cluster]\n"
	           "peers = 1=127.0.0.1:7501, 2=127.0.0.1:7502,3=[::1]:7503\n"
	           "clients = 1=127.0.0.1:7401,2=127.0.0.1:7402,3=[::1]:7403\n"
	           "election_timeout_ms = 1500\n"
	           "heartbeat_ms = 150\n"
	           "raftlog_bytes_max = 512m\n");
	struct config c;
	config_defaults(&c);
	char err[256] = "";
	cr_assert_eq(config_load_file(&c, path, err, sizeof(err)), SL_OK, "%s", err);
	cr_assert_eq(c.cluster_n, 3);
	assert_node(&c, 0, 1, "127.0.0.1:7501", "127.0.0.1:7401");
	assert_node(&c, 1, 2, "127.0.0.1:7502", "127.0.0.1:7402");
	assert_node(&c, 2, 3, "[::1]:7503", "[::1]:7403");
	cr_assert_eq(c.election_timeout_ms, 1500);
	cr_assert_eq(c.heartbeat_ms, 150);
	cr_assert_eq(c.raftlog_bytes_max, 512ull << 20);
	cr_assert_eq(config_validate(&c, err, sizeof(err)), SL_OK, "%s", err);
}

Test(config, cluster_clients_before_peers_and_partial)
{
	write_file("[cluster]\n"
	           "clients = 3=h3:7403,1=h1:7401\n"
	           "peers = 1=h1:7501,2=h2:7502,3=h3:7503,4=h4:7504,5=h5:7505\n");
	struct config c;
	config_defaults(&c);
	char err[256] = "";
	cr_assert_eq(config_load_file(&c, path, err, sizeof(err)), SL_OK, "%s", err);
	cr_assert_eq(c.cluster_n, 5);
	assert_node(&c, 0, 1, "h1:7501", "h1:7401");
	assert_node(&c, 1, 2, "h2:7502", "");
	assert_node(&c, 2, 3, "h3:7503", "h3:7403");
	assert_node(&c, 4, 5, "h5:7505", "");
	cr_assert_eq(config_validate(&c, err, sizeof(err)), SL_OK, "%s", err);
	/* a later clients value replaces the earlier one */
	set_ok(&c, NULL, "clients", "2=h2:7402");
	assert_node(&c, 0, 1, "h1:7501", "");
	assert_node(&c, 1, 2, "h2:7502", "h2:7402");
	/* peers empty again: a single node */
	set_ok(&c, "cluster", "peers", "");
	cr_assert_eq(c.cluster_n, 0);
	cr_assert_eq(c.cluster[0].id, 0);
	cr_assert_eq(config_validate(&c, err, sizeof(err)), SL_OK, "%s", err);
}

Test(config, cluster_flags)
{
	struct config c;
	config_defaults(&c);
	set_ok(&c, NULL, "peers", "1=127.0.0.1:7501,2=127.0.0.1:7502,3=127.0.0.1:7503");
	set_ok(&c, NULL, "clients", "1=127.0.0.1:7401,2=127.0.0.1:7402,3=127.0.0.1:7403");
	set_ok(&c, NULL, "election-timeout-ms", "50");
	set_ok(&c, NULL, "heartbeat-ms", "10");
	set_ok(&c, NULL, "raftlog-bytes-max", "2g");
	cr_assert_eq(c.cluster_n, 3);
	assert_node(&c, 2, 3, "127.0.0.1:7503", "127.0.0.1:7403");
	cr_assert_eq(c.election_timeout_ms, 50);
	cr_assert_eq(c.heartbeat_ms, 10);
	cr_assert_eq(c.raftlog_bytes_max, 2ull << 30);
	char err[256] = "";
	cr_assert_eq(config_validate(&c, err, sizeof(err)), SL_OK, "%s", err);
	/* seven nodes is the most */
	set_ok(&c, NULL, "peers", "1=a:1,2=a:2,3=a:3,4=a:4,5=a:5,6=a:6,7=a:7");
	cr_assert_eq(c.cluster_n, 7);
	assert_node(&c, 6, 7, "a:7", "");
}

Test(config, cluster_bad_values)
{
	struct config c;
	config_defaults(&c);
	set_ok(&c, "cluster", "peers", "1=h:1,2=h:2,3=h:3");
	struct config orig = c;
	set_bad(&c, "cluster", "peers", "1=h:1,1=h:2,3=h:3");          /* duplicate id */
	set_bad(&c, "cluster", "peers", "0=h:1,2=h:2,3=h:3");          /* id 0 */
	set_bad(&c, "cluster", "peers", "x=h:1,2=h:2,3=h:3");          /* id not a number */
	set_bad(&c, "cluster", "peers", "4294967296=h:1,2=h:2,3=h:3"); /* id over u32 */
	set_bad(&c, "cluster", "peers", "1=h,2=h:2,3=h:3");            /* no port */
	set_bad(&c, "cluster", "peers", "1=h:70000,2=h:2,3=h:3");      /* bad port */
	set_bad(&c, "cluster", "peers", "1=::1:5,2=h:2,3=h:3");        /* IPv6 without brackets */
	set_bad(&c, "cluster", "peers", "1h:1,2=h:2,3=h:3");           /* no '=' */
	set_bad(&c, "cluster", "peers", "1=h:1,,3=h:3");               /* empty entry */
	set_bad(&c, "cluster", "peers", "1=h:1,2=h:1,3=h:3");          /* same address twice */
	set_bad(&c, "cluster", "peers", "1=h:1,2=h:2");                /* fewer than 3 */
	set_bad(&c, "cluster", "peers", "1=h:1");
	set_bad(&c, "cluster", "peers", "1=a:1,2=a:2,3=a:3,4=a:4,5=a:5,6=a:6,7=a:7,8=a:8"); /* more than 7 */
	set_bad(&c, "cluster", "clients", "4=h:4");                    /* not in peers */
	set_bad(&c, "cluster", "clients", "1=h:11,1=h:12");
	set_bad(&c, "cluster", "clients", "1=nope");
	set_bad(&c, "cluster", "election_timeout_ms", "49");
	set_bad(&c, "cluster", "election_timeout_ms", "1s");
	set_bad(&c, "cluster", "heartbeat_ms", "0");
	set_bad(&c, "cluster", "raftlog_bytes_max", "12q");
	set_bad(&c, "cluster", "raftlog_bytes_max", "1k");
	cr_assert_eq(memcmp(&c, &orig, sizeof(c)), 0, "a rejected value changes nothing");
	/* peers that drop a node clients names */
	set_ok(&c, "cluster", "clients", "1=h:11,3=h:13");
	set_bad(&c, "cluster", "peers", "1=h:1,2=h:2,4=h:4");
	assert_node(&c, 2, 3, "h:3", "h:13");
}

Test(config, cluster_validate)
{
	struct config c;
	config_defaults(&c);
	char err[256] = "";
	c.heartbeat_ms = 1000;
	validate_bad(&c, "heartbeat_ms");
	c.heartbeat_ms = 999;
	cr_assert_eq(config_validate(&c, err, sizeof(err)), SL_OK, "%s", err);
	set_ok(&c, NULL, "peers", "1=h:1,2=h:2,3=h:3");
	c.node_id = 4;
	validate_bad(&c, "node.id 4");
	c.node_id = 3;
	cr_assert_eq(config_validate(&c, err, sizeof(err)), SL_OK, "%s", err);
	/* clients with no peers */
	config_defaults(&c);
	set_ok(&c, NULL, "clients", "1=h:11,2=h:12,3=h:13");
	cr_assert_eq(c.cluster_n, 0);
	validate_bad(&c, "peers");
	/* in a file, heartbeat over the election timeout is caught after loading */
	write_file("[cluster]\nheartbeat_ms = 500\nelection_timeout_ms = 400\n");
	config_defaults(&c);
	cr_assert_eq(config_load_file(&c, path, err, sizeof(err)), SL_OK, "%s", err);
	validate_bad(&c, "election_timeout_ms");
}

Test(config, tls_file_and_flags)
{
	struct config c;
	config_defaults(&c);
	char err[256] = "";
	/* off by default: plain TCP, and the default cipher list is set */
	cr_assert_str_eq(c.tls_cert, "");
	cr_assert_str_eq(c.tls_key, "");
	cr_assert_str_eq(c.tls_ca, "");
	cr_assert_str_eq(c.tls_ciphers, CONFIG_TLS_CIPHERS_DEFAULT);
	write_file("[tls]\ncert = /etc/sluice/node.pem\nkey = /etc/sluice/node.key\nca = /etc/sluice/ca.pem\n"
	           "ciphers = ECDHE+AESGCM\n");
	cr_assert_eq(config_load_file(&c, path, err, sizeof(err)), SL_OK, "%s", err);
	cr_assert_str_eq(c.tls_cert, "/etc/sluice/node.pem");
	cr_assert_str_eq(c.tls_key, "/etc/sluice/node.key");
	cr_assert_str_eq(c.tls_ca, "/etc/sluice/ca.pem");
	cr_assert_str_eq(c.tls_ciphers, "ECDHE+AESGCM");
	cr_assert_eq(config_validate(&c, err, sizeof(err)), SL_OK, "%s", err);
	/* the flags, which win over the file */
	set_ok(&c, NULL, "tls-cert", "/tmp/n.pem");
	set_ok(&c, NULL, "tls-key", "/tmp/n.key");
	set_ok(&c, NULL, "tls-ca", "/tmp/ca.pem");
	set_ok(&c, NULL, "tls-ciphers", "ECDHE+CHACHA20");
	cr_assert_str_eq(c.tls_cert, "/tmp/n.pem");
	cr_assert_str_eq(c.tls_key, "/tmp/n.key");
	cr_assert_str_eq(c.tls_ca, "/tmp/ca.pem");
	cr_assert_str_eq(c.tls_ciphers, "ECDHE+CHACHA20");
	set_ok(&c, "tls", "cert", "/tmp/m.pem");
	cr_assert_str_eq(c.tls_cert, "/tmp/m.pem");
	set_bad(&c, "tls", "cert", "");
	set_bad(&c, "tls", "certificate", "/tmp/x");
	set_bad(&c, NULL, "tls-crt", "/tmp/x");
}

Test(config, tls_validate)
{
	struct config c;
	config_defaults(&c);
	set_ok(&c, NULL, "tls-cert", "/tmp/n.pem");
	validate_bad(&c, "tls.key");
	config_defaults(&c);
	set_ok(&c, NULL, "tls-key", "/tmp/n.key");
	validate_bad(&c, "tls.cert");
	config_defaults(&c);
	set_ok(&c, NULL, "tls-ca", "/tmp/ca.pem");
	validate_bad(&c, "tls.ca");
	/* the cipher list alone changes nothing: it has a default anyway */
	config_defaults(&c);
	set_ok(&c, NULL, "tls-ciphers", "ECDHE+AESGCM");
	char err[256] = "";
	cr_assert_eq(config_validate(&c, err, sizeof(err)), SL_OK, "%s", err);
}

/* [limits] against abuse: 0 (unlimited) by default, set from the file and by flag. */
Test(config, abuse_limits)
{
	struct config c;
	config_defaults(&c);
	cr_assert_eq(c.connections_per_address_max, 0);
	cr_assert_eq(c.principal_requests_per_s, 0);
	cr_assert_eq(c.principal_bytes_per_s, 0);
	cr_assert_eq(c.topics_per_principal_max, 0);
	write_file("[limits]\nconnections_per_address_max = 64\nprincipal_requests_per_s = 500\n"
	           "principal_bytes_per_s = 2m\ntopics_per_principal_max = 20\n");
	char err[256] = "";
	cr_assert_eq(config_load_file(&c, path, err, sizeof(err)), SL_OK, "%s", err);
	unlink(path);
	cr_assert_eq(c.connections_per_address_max, 64);
	cr_assert_eq(c.principal_requests_per_s, 500);
	cr_assert_eq(c.principal_bytes_per_s, 2ull << 20);
	cr_assert_eq(c.topics_per_principal_max, 20);
	set_ok(&c, NULL, "connections-per-address-max", "3");
	set_ok(&c, NULL, "topics-per-principal-max", "2");
	cr_assert_eq(c.topics_per_principal_max, 2);
	set_bad(&c, "limits", "topics_per_principal_max", "1000001");
	set_bad(&c, "limits", "topics_per_principal_max", "-1");
	set_ok(&c, NULL, "principal-requests-per-s", "0");
	set_ok(&c, NULL, "principal-bytes-per-s", "16g");
	cr_assert_eq(c.connections_per_address_max, 3);
	cr_assert_eq(c.principal_requests_per_s, 0);
	cr_assert_eq(c.principal_bytes_per_s, 16ull << 30);
	set_bad(&c, "limits", "principal_bytes_per_s", "17g"); /* above the token bucket's range */
	set_bad(&c, "limits", "principal_requests_per_s", "1000000001");
	set_bad(&c, "limits", "connections_per_address_max", "10000001");
	set_bad(&c, "limits", "principal_requests_per_s", "1k"); /* counts take no suffix */
}
