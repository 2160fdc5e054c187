/*
 * config_test.c: defaults, an INI file overriding every key, size suffixes,
 * booleans, errors naming line and key, flag-style config_set, host:port.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "err.h"
#include "log.h"

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
