/*
 * cli.c: the `sluice` command-line tool: topic admin, pub, sub, group, node
 * and cluster status, leadership transfer (bench lives in bench.c, durable
 * consumers and dead letters in cli_consumer.c). Built on libsluice.
 *
 * Global options (--server, --json, --help) may appear anywhere; they are
 * pulled out of argv before the subcommand's own getopt_long runs. Exit
 * codes follow <sysexits.h>: EX_USAGE for bad arguments, EX_UNAVAILABLE when
 * the server cannot be reached, EX_DATAERR/EX_SOFTWARE for server errors,
 * EX_TEMPFAIL when some but not all publishes were acknowledged.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>
#include <sodium.h>

#include "auth_key.h"
#include "cli.h"
#include "codec.h"
#include "sluice/sluice.h"
#include "vec.h"

#define CLI_CONNECT_TIMEOUT_MS 3000
#define CLI_RETRY_MAX_MS 2000
/* pub and sub, once connected, ride out a broker restart (kill -9, upgrade) */
#define CLI_STREAM_RETRY_MAX_MS 30000
#define CLI_WINDOW_DEFAULT 1000
#define CLI_HEADERS_MAX 64
#define CLI_LINE_BYTES_MAX CODEC_FRAME_BYTES_DEFAULT
#define CLI_READ_CHUNK_BYTES (256u << 10)
#define CLI_COMMIT_INTERVAL_MS 200
#define CLI_EXIT_COMMIT_WAIT_MS 5000
#define CLI_SUB_PARTITIONS_MAX 1024

static const char *prog = "sluice";

/* ---------- shared helpers ---------- */

int cli_exit_code(int err)
{
	switch (err) {
	case SLUICE_OK:
		return EX_OK;
	case SLUICE_EUNAVAILABLE:
	case SLUICE_EFENCED:
	case SLUICE_ECLOSED:
	case SLUICE_ETIMEOUT:
		return EX_UNAVAILABLE;
	case SLUICE_ENOTOPIC:
	case SLUICE_ETOPIC_EXISTS:
	case SLUICE_ENOCONSUMER:
	case SLUICE_ECONSUMER_EXISTS:
	case SLUICE_EINVAL:
	case SLUICE_ERANGE:
	case SLUICE_ENOSUB:
	case SLUICE_ETOOLARGE:
	case SLUICE_EMALFORMED:
		return EX_DATAERR;
	case SLUICE_EUNAUTHENTICATED:
	case SLUICE_EPERMISSION:
		return EX_NOPERM;
	case SLUICE_EFULL:
	case SLUICE_ETOOMANY:
		return EX_TEMPFAIL;
	case SLUICE_ETLS:
		return EX_UNAVAILABLE;
	case SLUICE_ECONFIG:
		return EX_USAGE;
	default:
		return EX_SOFTWARE;
	}
}

struct sluice_client_opts cli_client_opts(const struct cli_global *g, uint32_t pipeline_max)
{
	struct sluice_client_opts o = {0};
	o.servers = g->server;
	o.tls_ca = g->tls_ca;
	o.key_file = g->key;
	o.token = g->token;
	o.client_name = "sluice-cli";
	o.pipeline_max = pipeline_max;
	o.connect_timeout_ms = CLI_CONNECT_TIMEOUT_MS;
	o.retry_max_ms = CLI_RETRY_MAX_MS;
	return o;
}

int cli_connect(const struct cli_global *g, uint32_t pipeline_max, struct sluice_sync **out)
{
	struct sluice_client_opts o = cli_client_opts(g, pipeline_max);
	return cli_connect_opts(g, &o, out);
}

int cli_connect_opts(const struct cli_global *g, const struct sluice_client_opts *o, struct sluice_sync **out)
{
	const char *kf = o->key_file ? o->key_file : getenv("SLUICE_KEY");
	struct auth_keypair kp;
	char why[256];
	if (kf && kf[0] && auth_key_read(kf, &kp, why, sizeof(why)) != 0) {
		fprintf(stderr, "%s: --key %s: %s\n", prog, kf, why);
		return EX_NOINPUT;
	}
	int err = sluice_sync_open(o, out);
	if (err != SLUICE_OK) {
		const char *srv = g->server ? g->server : getenv("SLUICE_SERVER");
		const char *ca = g->tls_ca ? g->tls_ca : getenv("SLUICE_TLS_CA");
		if (err == SLUICE_ECONFIG) {
			fprintf(stderr, "%s: --tls-ca %s: cannot read a PEM CA certificate from it\n", prog,
				ca ? ca : "");
			return EX_USAGE;
		}
		fprintf(stderr, "%s: cannot connect to %s: %s\n", prog, srv && srv[0] ? srv : "127.0.0.1:7400",
			sluice_strerror(err));
		return EX_UNAVAILABLE;
	}
	return EX_OK;
}

int cli_report_err(const char *what, int err, const char *msg)
{
	fprintf(stderr, "%s: %s: %s\n", prog, what, msg && msg[0] ? msg : sluice_strerror(err));
	return cli_exit_code(err);
}

int cli_parse_u64(const char *s, uint64_t *out)
{
	char *end;
	if (!s || !*s || *s == '-')
		return -1;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end)
		return -1;
	*out = v;
	return 0;
}

int cli_parse_i64(const char *s, int64_t *out)
{
	char *end;
	if (!s || !*s)
		return -1;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || *end)
		return -1;
	*out = v;
	return 0;
}

int cli_parse_u32(const char *s, uint32_t *out)
{
	uint64_t v;
	if (cli_parse_u64(s, &v) || v > UINT32_MAX)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

void cli_json_print(json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT);
	if (s) {
		puts(s);
		free(s);
	}
	json_decref(j);
}

/* Drive the client's loop until *done is set (bounded by the client's own timeouts). */
void cli_wait_done(struct sluice_sync *s, const int *done)
{
	while (!*done)
		event_base_loop(sluice_sync_base(s), EVLOOP_ONCE);
}

int cli_want_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--"))
			break;
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return 1;
	}
	return 0;
}

/* ---------- usage ---------- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: sluice [-s|--servers HOST:PORT[,HOST:PORT...]] [--tls-ca FILE] [--key FILE | --token T] [--json]\n"
		"              COMMAND ...\n"
		"\n"
		"commands:\n"
		"  topic create NAME [--partitions N] [--retention-ms MS] [--retention-bytes B]\n"
		"  topic list\n"
		"  topic describe NAME\n"
		"  topic delete NAME\n"
		"  pub TOPIC [--key K] [--partition P] [--header k=v]... [--window W]\n"
		"            [--linger-ms MS] [--batch-bytes B] [MESSAGE]\n"
		"  sub TOPIC [--from earliest|latest|OFFSET|@UNIX_MS] [--partition P]... [--group G]\n"
		"            [--count N] [--format raw|json]\n"
		"  sub --consumer NAME [--count N] [--format raw|json]   pull, print, ack\n"
		"  consumer create NAME --topic T [--shared] [--max-in-flight N]\n"
		"            [--max-deliveries N | --never-dead-letter] [--ack-timeout-ms MS]\n"
		"            [--schedule MS,MS,...] [--dead-letter-topic T]\n"
		"            [--from earliest|latest|OFFSET|@UNIX_MS]\n"
		"  consumer list | describe NAME | delete NAME\n"
		"  consumer pull NAME [--max N] [--wait-ms MS] [--count N | --follow]\n"
		"            [--no-ack | --nack [--delay-ms MS]] [--format raw|json]\n"
		"  dlq replay DLQ_TOPIC [--to TOPIC] [--from OFFSET] [--count N]\n"
		"  webhook create TOPIC URL [--name N] [--from ...] [--secret whsec_...] [--ordered | --max-in-flight N]\n"
		"            [--max-attempts N] [--schedule MS,...] [--header k=v]... [--filter key-prefix=P|header=K=V]\n"
		"  webhook list | describe NAME | pause NAME | resume NAME | delete NAME\n"
		"  webhook rotate-secret NAME [--secret whsec_...] | replay NAME --from earliest|latest|OFFSET|@UNIX_MS\n"
		"  group describe GROUP\n"
		"  node status\n"
		"  cluster status                     every node: role, term, log indexes, lag, reachable\n"
		"  cluster transfer-leader --to ID    hand leadership to node ID and wait until it leads\n"
		"  asyncapi [--config FILE] [--KEY VALUE]...   the node's AsyncAPI 3.0.0 document (on its host)\n"
		"  key gen FILE | key show FILE       an Ed25519 key to authenticate with (--key FILE)\n"
		"  auth init                          the cluster's token signing key (once)\n"
		"  principal add|revoke NAME [--pubkey KEY]... [--allow PERM]... | remove NAME | list\n"
		"  token issue --principal NAME [--ttl 1h] [--allow PERM]...\n"
		"  audit [--after SEQ] [--max N]      security changes and who made them\n"
		"  bench pub|sub|e2e [--topic T] [--partitions N] [--size BYTES] [--count N | --duration S]\n"
		"            [--producers P] [--window W] [--linger-ms MS] [--batch-bytes B]\n"
		"  bench sse [--subscribers N] [--rate R] [--duration S | --count N] [--size BYTES]\n"
		"            [--http HOST:PORT] [--pid MASTER_PID]   SSE fan-out: delivery, latency, memory\n"
		"\n"
		"--servers (or --server) defaults to $SLUICE_SERVER or 127.0.0.1:7400; with several\n"
		"servers the client fails over between them. --json prints JSON.\n"
		"--tls-ca FILE (or $SLUICE_TLS_CA) connects with TLS and trusts the CA(s) in FILE; the\n"
		"server's certificate must name the host given in --servers. Without it: plain TCP.\n"
		"--key FILE ($SLUICE_KEY) or --token T ($SLUICE_TOKEN), before COMMAND, authenticates\n"
		"(docs/security.md).\n"
		"`bench sse` reads its event streams over plain HTTP only.\n"
		"`sluice COMMAND --help` describes a command.\n");
}

static void usage_topic(FILE *f)
{
	fprintf(f, "usage: sluice topic create NAME [--partitions N] [--retention-ms MS] [--retention-bytes B]\n"
		   "       sluice topic list\n"
		   "       sluice topic describe NAME   (per partition: first offset, end offset, bytes)\n"
		   "       sluice topic delete NAME\n");
}

static void usage_pub(FILE *f)
{
	fprintf(f, "usage: sluice pub TOPIC [--key K] [--partition P] [--header k=v]... [--window W]\n"
		   "                  [--linger-ms MS] [--batch-bytes B] [MESSAGE]\n"
		   "  With MESSAGE, publishes it and prints \"partition P offset O\" (--json: also the raft\n"
		   "  term and log index of the entry it was committed in; 0 on a single node).\n"
		   "  Without, publishes each line of stdin as a message, up to W (default %d) in flight,\n"
		   "  and prints a summary on stderr. Messages without --key travel in batches: one waits\n"
		   "  up to MS (default %d; 0: no batching) for others to join, and a batch is sent when it\n"
		   "  reaches B bytes (default %d).\n",
		CLI_WINDOW_DEFAULT, CLI_LINGER_MS_DEFAULT, CLI_BATCH_BYTES_DEFAULT);
}

static void usage_sub(FILE *f)
{
	fprintf(f, "usage: sluice sub TOPIC [--from earliest|latest|OFFSET|@UNIX_MS] [--partition P]...\n"
		   "                  [--group G] [--count N] [--format raw|json]\n"
		   "       sluice sub --consumer NAME [--count N] [--format raw|json]\n"
		   "  --from defaults to latest; with --group, the group's committed offsets win.\n"
		   "  --group commits what was printed every %d ms and at exit.\n"
		   "  --consumer pulls from the durable consumer NAME (long-poll), prints each batch,\n"
		   "  then acknowledges it; until --count messages (0: no limit, the default) or SIGINT.\n"
		   "  --format json adds each message's delivery attempt.\n",
		CLI_COMMIT_INTERVAL_MS);
}

static void usage_group(FILE *f)
{
	fprintf(f, "usage: sluice group describe GROUP   (committed offset, end offset and lag per partition)\n");
}

static void usage_node(FILE *f)
{
	fprintf(f, "usage: sluice node status\n");
}

static void usage_cluster(FILE *f)
{
	fprintf(f, "usage: sluice cluster status [--json]\n"
		   "  Asks every node it can find (the --servers list, then the client addresses the\n"
		   "  nodes report) and prints per node: id, address, role, term, last log index,\n"
		   "  commit index, lag behind the leader (entries), whether it answered (REACHABLE)\n"
		   "  and whether the leader hears from it (LEADER_SEES). Exit %d if no node answered.\n"
		   "       sluice cluster transfer-leader --to ID\n"
		   "  Asks the leader to hand over to node ID, then waits up to %d s until ID leads\n"
		   "  (exit %d if it did not).\n",
		EX_UNAVAILABLE, 10, EX_TEMPFAIL);
}

/* ---------- topic ---------- */

static int cmd_topic_create(const struct cli_global *g, int argc, char **argv)
{
	static const struct option lo[] = {{"partitions", required_argument, 0, 'p'},
					   {"retention-ms", required_argument, 0, 'r'},
					   {"retention-bytes", required_argument, 0, 'b'},
					   {0, 0, 0, 0}};
	uint32_t partitions = 1;
	int64_t rms = 0, rbytes = 0;
	int ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "p:", lo, NULL)) != -1) {
		if ((ch == 'p' && (cli_parse_u32(optarg, &partitions) || partitions == 0)) ||
		    (ch == 'r' && (cli_parse_i64(optarg, &rms) || rms < 0)) ||
		    (ch == 'b' && (cli_parse_i64(optarg, &rbytes) || rbytes < 0)) || ch == '?') {
			usage_topic(stderr);
			return EX_USAGE;
		}
	}
	if (optind + 1 != argc) {
		usage_topic(stderr);
		return EX_USAGE;
	}
	const char *name = argv[optind];
	struct sluice_sync *s;
	char msg[256];
	int rc = cli_connect(g, 0, &s);
	if (rc)
		return rc;
	int err = sluice_sync_topic_create(s, name, partitions, rms, rbytes, msg, sizeof(msg));
	sluice_sync_close(s);
	if (err)
		return cli_report_err("topic create", err, msg);
	if (g->json)
		cli_json_print(json_pack("{s:s, s:I, s:I, s:I}", "created", name, "partitions", (json_int_t)partitions,
				     "retention_ms", (json_int_t)rms, "retention_bytes", (json_int_t)rbytes));
	else
		printf("created topic %s with %u partition%s\n", name, partitions, partitions == 1 ? "" : "s");
	return EX_OK;
}

static int cmd_topic_delete(const struct cli_global *g, int argc, char **argv)
{
	if (argc != 2 || argv[1][0] == '-') {
		usage_topic(stderr);
		return EX_USAGE;
	}
	struct sluice_sync *s;
	char msg[256];
	int rc = cli_connect(g, 0, &s);
	if (rc)
		return rc;
	int err = sluice_sync_topic_delete(s, argv[1], msg, sizeof(msg));
	sluice_sync_close(s);
	if (err)
		return cli_report_err("topic delete", err, msg);
	if (g->json)
		cli_json_print(json_pack("{s:s}", "deleted", argv[1]));
	else
		printf("deleted topic %s\n", argv[1]);
	return EX_OK;
}

struct topic_result {
	const struct cli_global *g;
	int done, err;
	char msg[256];
};

static json_t *topic_json(const struct sluice_topic_info *t, int with_parts)
{
	json_t *o = json_pack("{s:s, s:I, s:I, s:I, s:I}", "name", t->name, "partition_count",
			      (json_int_t)t->partitions, "retention_ms", (json_int_t)t->retention_ms,
			      "retention_bytes", (json_int_t)t->retention_bytes, "created_ms",
			      (json_int_t)t->created_ms);
	json_object_set_new(o, "created_by", t->created_by && t->created_by[0] ? json_string(t->created_by) : json_null());
	if (!with_parts) {
		json_object_set_new(o, "partitions", json_integer(t->partitions));
		return o;
	}
	json_t *a = json_array();
	for (size_t i = 0; i < t->parts_n; i++)
		json_array_append_new(a, json_pack("{s:I, s:I, s:I, s:I}", "partition",
						   (json_int_t)t->parts[i].partition, "first_offset",
						   (json_int_t)t->parts[i].first_offset, "end_offset",
						   (json_int_t)t->parts[i].end_offset, "bytes",
						   (json_int_t)t->parts[i].bytes));
	json_object_set_new(o, "partitions", a);
	return o;
}

static void topic_list_cb(void *arg, int err, const char *errmsg, const struct sluice_topic_info *tis, size_t n)
{
	struct topic_result *r = arg;
	r->done = 1;
	r->err = err;
	if (err) {
		snprintf(r->msg, sizeof(r->msg), "%s", errmsg ? errmsg : sluice_strerror(err));
		return;
	}
	if (r->g->json) {
		json_t *a = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(a, topic_json(&tis[i], 0));
		cli_json_print(a);
		return;
	}
	printf("%-32s %10s %14s %16s\n", "TOPIC", "PARTITIONS", "RETENTION_MS", "RETENTION_BYTES");
	for (size_t i = 0; i < n; i++)
		printf("%-32s %10u %14" PRId64 " %16" PRId64 "\n", tis[i].name, tis[i].partitions,
		       tis[i].retention_ms, tis[i].retention_bytes);
}

static void topic_describe_cb(void *arg, int err, const char *errmsg, const struct sluice_topic_info *t)
{
	struct topic_result *r = arg;
	r->done = 1;
	r->err = err;
	if (err) {
		snprintf(r->msg, sizeof(r->msg), "%s", errmsg ? errmsg : sluice_strerror(err));
		return;
	}
	if (r->g->json) {
		cli_json_print(topic_json(t, 1));
		return;
	}
	printf("topic %s: %u partition%s, retention_ms %" PRId64 ", retention_bytes %" PRId64 "\n", t->name,
	       t->partitions, t->partitions == 1 ? "" : "s", t->retention_ms, t->retention_bytes);
	if (t->created_by && t->created_by[0])
		printf("created by %s\n", t->created_by);
	printf("%9s %14s %14s %14s\n", "PARTITION", "FIRST_OFFSET", "END_OFFSET", "BYTES");
	for (size_t i = 0; i < t->parts_n; i++)
		printf("%9u %14" PRIu64 " %14" PRIu64 " %14" PRIu64 "\n", t->parts[i].partition,
		       t->parts[i].first_offset, t->parts[i].end_offset, t->parts[i].bytes);
}

static int cmd_topic_query(const struct cli_global *g, int argc, char **argv, int describe)
{
	if ((describe && (argc != 2 || argv[1][0] == '-')) || (!describe && argc != 1)) {
		usage_topic(stderr);
		return EX_USAGE;
	}
	struct sluice_sync *s;
	struct topic_result r = {.g = g};
	int rc = cli_connect(g, 0, &s);
	if (rc)
		return rc;
	struct sluice_client *c = sluice_sync_client(s);
	int err = describe ? sluice_topic_describe(c, argv[1], topic_describe_cb, &r)
			   : sluice_topic_list(c, topic_list_cb, &r);
	if (err == SLUICE_OK) {
		cli_wait_done(s, &r.done);
		err = r.err;
	}
	sluice_sync_close(s);
	return err ? cli_report_err(describe ? "topic describe" : "topic list", err, r.msg) : EX_OK;
}

static int cmd_topic(const struct cli_global *g, int argc, char **argv)
{
	if (argc < 2 || cli_want_help(argc, argv)) {
		usage_topic(argc < 2 ? stderr : stdout);
		return argc < 2 ? EX_USAGE : EX_OK;
	}
	const char *sub = argv[1];
	if (!strcmp(sub, "create"))
		return cmd_topic_create(g, argc - 1, argv + 1);
	if (!strcmp(sub, "delete"))
		return cmd_topic_delete(g, argc - 1, argv + 1);
	if (!strcmp(sub, "list"))
		return cmd_topic_query(g, argc - 1, argv + 1, 0);
	if (!strcmp(sub, "describe"))
		return cmd_topic_query(g, argc - 1, argv + 1, 1);
	usage_topic(stderr);
	return EX_USAGE;
}

/* ---------- pub ---------- */

struct pub_state {
	const struct cli_global *g;
	struct sluice_sync *s;
	struct sluice_pub tmpl;
	uint32_t window, linger_ms, batch_bytes;
	struct event *in_ev;
	int in_regular;          /* stdin is a regular file: always readable, no fd event */
	int in_paused, eof, skipping;
	uint8_t *buf;
	size_t len, start;       /* unread bytes are buf[start, len) */
	size_t cap;
	uint64_t published, acked, failed;
	int first_err;
	char first_msg[256];
};

static void pub_maybe_finish(struct pub_state *ps)
{
	if (ps->eof && sluice_client_inflight(sluice_sync_client(ps->s)) == 0)
		event_base_loopbreak(sluice_sync_base(ps->s));
}

static void pub_resume(struct pub_state *ps)
{
	if (!ps->in_paused || ps->eof)
		return;
	ps->in_paused = 0;
	if (ps->in_regular)
		event_active(ps->in_ev, EV_READ, 0);
	else
		event_add(ps->in_ev, NULL);
}

static void pub_ack_cb(void *arg, int err, const char *errmsg, uint32_t partition, uint64_t offset,
		       int64_t timestamp_ms, int duplicate)
{
	struct pub_state *ps = arg;
	if (err == SLUICE_OK) {
		ps->acked++;
	} else {
		ps->failed++;
		if (!ps->first_err) {
			ps->first_err = err;
			snprintf(ps->first_msg, sizeof(ps->first_msg), "%s", errmsg ? errmsg : sluice_strerror(err));
		}
	}
	if (sluice_client_inflight(sluice_sync_client(ps->s)) < ps->window)
		pub_resume(ps);
	pub_maybe_finish(ps);
}

static void pub_one(struct pub_state *ps, const uint8_t *line, size_t n)
{
	struct sluice_pub p = ps->tmpl;
	p.payload = sluice_bytes_make(line, n);
	ps->published++;
	int err = sluice_publish(sluice_sync_client(ps->s), &p, pub_ack_cb, ps);
	if (err != SLUICE_OK)
		pub_ack_cb(ps, err, NULL, 0, 0, 0, 0);
}

/* Publish the next complete line in the buffer; returns 0 if there is none. */
static int pub_next_line(struct pub_state *ps)
{
	uint8_t *p = ps->buf + ps->start;
	uint8_t *nl = memchr(p, '\n', ps->len - ps->start);
	if (!nl)
		return 0;
	size_t n = (size_t)(nl - p);
	if (ps->skipping) {
		ps->skipping = 0; /* the tail of an oversized line */
	} else {
		if (n > 0 && p[n - 1] == '\r')
			n--;
		pub_one(ps, p, n);
	}
	ps->start = (size_t)(nl - ps->buf) + 1;
	return 1;
}

/* Read more of stdin; returns bytes read, 0 at EOF, -1 when nothing is there yet. */
static ssize_t pub_fill(struct pub_state *ps)
{
	if (ps->start > 0) {
		memmove(ps->buf, ps->buf + ps->start, ps->len - ps->start);
		ps->len -= ps->start;
		ps->start = 0;
	}
	if (ps->len == ps->cap) {
		/* A line longer than any frame: fail it and drop the rest of it. */
		ps->published++;
		pub_ack_cb(ps, SLUICE_ETOOLARGE, "line longer than frame_bytes_max", 0, 0, 0, 0);
		ps->len = 0;
		ps->skipping = 1;
	}
	size_t want = ps->cap - ps->len;
	if (want > CLI_READ_CHUNK_BYTES)
		want = CLI_READ_CHUNK_BYTES;
	ssize_t n = read(STDIN_FILENO, ps->buf + ps->len, want);
	if (n < 0)
		return (errno == EAGAIN || errno == EINTR) ? -1 : 0;
	ps->len += (size_t)n;
	return n;
}

static void pub_stdin_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pub_state *ps = arg;
	struct sluice_client *c = sluice_sync_client(ps->s);
	int may_read = 1; /* a pipe or tty is readable once per event; a file always */
	while (sluice_client_inflight(c) < ps->window) {
		if (pub_next_line(ps))
			continue;
		if (!may_read)
			return; /* wait for the next readiness event */
		ssize_t n = pub_fill(ps);
		if (!ps->in_regular)
			may_read = 0;
		if (n < 0)
			return;
		if (n == 0) {
			if (ps->len > ps->start && !ps->skipping)
				pub_one(ps, ps->buf + ps->start, ps->len - ps->start);
			ps->len = ps->start = 0;
			ps->eof = 1;
			if (!ps->in_regular)
				event_del(ps->in_ev);
			sluice_client_flush(c); /* nothing more will join the open batches */
			pub_maybe_finish(ps);
			return;
		}
	}
	/* Window full: nothing more can join the open batches until acks come
	 * back, so send them now, and stop reading. */
	sluice_client_flush(c);
	ps->in_paused = 1;
	if (!ps->in_regular)
		event_del(ps->in_ev);
}

static int pub_stream(struct pub_state *ps)
{
	struct stat st;
	struct event_base *base = sluice_sync_base(ps->s);
	ps->in_regular = fstat(STDIN_FILENO, &st) == 0 && S_ISREG(st.st_mode);
	ps->cap = CLI_LINE_BYTES_MAX + 1;
	ps->buf = malloc(ps->cap);
	ps->in_ev = ps->in_regular ? event_new(base, -1, 0, pub_stdin_cb, ps)
				   : event_new(base, STDIN_FILENO, EV_READ | EV_PERSIST, pub_stdin_cb, ps);
	if (!ps->buf || !ps->in_ev) {
		free(ps->buf);
		if (ps->in_ev)
			event_free(ps->in_ev);
		return cli_report_err("pub", SLUICE_ENOMEM, NULL);
	}
	ps->in_paused = 1;
	pub_resume(ps);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	event_base_dispatch(base);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	fprintf(stderr, "published %" PRIu64 " messages, %" PRIu64 " acknowledged, %" PRIu64 " failed in %.3f s (%.0f msg/s)\n",
		ps->published, ps->acked, ps->failed, secs, secs > 0 ? (double)ps->acked / secs : 0.0);
	if (ps->first_err)
		fprintf(stderr, "%s: first error: %s\n", prog, ps->first_msg);
	event_free(ps->in_ev);
	free(ps->buf);
	if (ps->acked == ps->published)
		return EX_OK;
	return ps->acked == 0 && ps->first_err ? cli_exit_code(ps->first_err) : EX_TEMPFAIL;
}

struct pub_one_result {
	struct sluice_client *c;
	int done, err;
	char msg[256];
	uint32_t partition;
	uint64_t offset, term, log_index;
};

static void pub_single_cb(void *arg, int err, const char *errmsg, uint32_t partition, uint64_t offset,
			  int64_t timestamp_ms, int duplicate)
{
	struct pub_one_result *r = arg;
	r->done = 1;
	r->err = err;
	r->partition = partition;
	r->offset = offset;
	if (err == SLUICE_OK)
		sluice_ack_position(r->c, &r->term, &r->log_index);
	else
		snprintf(r->msg, sizeof(r->msg), "%s", errmsg ? errmsg : sluice_strerror(err));
}

static int pub_single(struct pub_state *ps, const char *message)
{
	struct pub_one_result r = {.c = sluice_sync_client(ps->s)};
	struct sluice_pub p = ps->tmpl;
	p.payload = sluice_bytes_cstr(message);
	int err = sluice_publish(r.c, &p, pub_single_cb, &r);
	if (err == SLUICE_OK) {
		sluice_client_flush(r.c);
		cli_wait_done(ps->s, &r.done);
		err = r.err;
	}
	if (err)
		return cli_report_err("pub", err, r.msg);
	if (ps->g->json)
		cli_json_print(json_pack("{s:s, s:I, s:I, s:I, s:I}", "topic", p.topic, "partition", (json_int_t)r.partition,
				     "offset", (json_int_t)r.offset, "term", (json_int_t)r.term, "log_index",
				     (json_int_t)r.log_index));
	else
		printf("partition %u offset %" PRIu64 "\n", r.partition, r.offset);
	return EX_OK;
}

static int pub_header_add(struct sluice_header *hs, size_t *n, char *kv)
{
	char *eq = strchr(kv, '=');
	if (!eq || eq == kv || *n >= CLI_HEADERS_MAX)
		return -1;
	*eq = 0;
	hs[*n].key = kv;
	hs[*n].value = sluice_bytes_cstr(eq + 1);
	(*n)++;
	return 0;
}

static int cmd_pub(const struct cli_global *g, int argc, char **argv)
{
	static const struct option lo[] = {{"key", required_argument, 0, 'k'},
					   {"partition", required_argument, 0, 'p'},
					   {"header", required_argument, 0, 'H'},
					   {"window", required_argument, 0, 'w'},
					   {"linger-ms", required_argument, 0, 'L'},
					   {"batch-bytes", required_argument, 0, 'B'},
					   {0, 0, 0, 0}};
	struct sluice_header hs[CLI_HEADERS_MAX];
	struct pub_state ps = {.g = g, .window = CLI_WINDOW_DEFAULT, .linger_ms = CLI_LINGER_MS_DEFAULT,
			       .batch_bytes = CLI_BATCH_BYTES_DEFAULT};
	int ch;
	if (cli_want_help(argc, argv)) {
		usage_pub(stdout);
		return EX_OK;
	}
	optind = 1;
	while ((ch = getopt_long(argc, argv, "k:p:H:w:", lo, NULL)) != -1) {
		int bad = ch == '?';
		if (ch == 'k')
			ps.tmpl.key = sluice_bytes_cstr(optarg);
		else if (ch == 'p')
			bad = cli_parse_u32(optarg, &ps.tmpl.partition), ps.tmpl.has_partition = 1;
		else if (ch == 'H')
			bad = pub_header_add(hs, &ps.tmpl.headers_n, optarg);
		else if (ch == 'w')
			bad = cli_parse_u32(optarg, &ps.window) || ps.window == 0;
		else if (ch == 'L')
			bad = cli_parse_u32(optarg, &ps.linger_ms);
		else if (ch == 'B')
			bad = cli_parse_u32(optarg, &ps.batch_bytes) || ps.batch_bytes == 0;
		if (bad) {
			usage_pub(stderr);
			return EX_USAGE;
		}
	}
	if (optind >= argc || argc - optind > 2) {
		usage_pub(stderr);
		return EX_USAGE;
	}
	ps.tmpl.topic = argv[optind];
	ps.tmpl.headers = hs;
	struct sluice_client_opts o = cli_client_opts(g, ps.window);
	o.linger_ms = ps.linger_ms;
	o.batch_bytes = ps.batch_bytes;
	int rc = cli_connect_opts(g, &o, &ps.s);
	if (rc)
		return rc;
	sluice_client_set_retry_max(sluice_sync_client(ps.s), CLI_STREAM_RETRY_MAX_MS);
	rc = optind + 1 < argc ? pub_single(&ps, argv[optind + 1]) : pub_stream(&ps);
	sluice_sync_close(ps.s);
	return rc;
}

/* ---------- sub ---------- */

struct sub_part_state {
	uint32_t partition;
	uint64_t next;           /* after the last printed message */
	uint64_t committed;      /* last commit sent */
	int seen;
};

struct sub_state {
	const struct cli_global *g;
	struct sluice_sync *s;
	const char *topic, *group;
	int json;
	uint64_t count, printed;
	int stopping, exit_code;
	uint64_t sub_id;
	struct sub_part_state *parts;
	size_t parts_n, parts_cap;
	uint32_t commits_out;
	struct event *flush_ev, *commit_ev, *sigint_ev, *sigterm_ev, *deadline_ev;
	int flush_pending;
};

static struct sub_part_state *sub_part(struct sub_state *st, uint32_t partition)
{
	for (size_t i = 0; i < st->parts_n; i++)
		if (st->parts[i].partition == partition)
			return &st->parts[i];
	if (vec_reserve(&st->parts, &st->parts_cap, st->parts_n + 1) != 0)
		return NULL;
	struct sub_part_state *p = &st->parts[st->parts_n++];
	memset(p, 0, sizeof(*p));
	p->partition = partition;
	return p;
}

static json_t *json_bytes(json_t *obj, const char *key, const char *key_b64, struct sluice_bytes v)
{
	json_t *s = json_stringn((const char *)v.base, v.len);
	if (s) {
		json_object_set_new(obj, key, s);
		return obj;
	}
	size_t blen = sodium_base64_encoded_len(v.len, sodium_base64_VARIANT_ORIGINAL);
	char *b = malloc(blen);
	if (b) {
		sodium_bin2base64(b, blen, v.base, v.len, sodium_base64_VARIANT_ORIGINAL);
		json_object_set_new(obj, key_b64, json_string(b));
		free(b);
	}
	return obj;
}

json_t *cli_msg_json(const struct sluice_msg *m)
{
	json_t *o = json_pack("{s:s, s:I, s:I, s:I}", "topic", m->topic, "partition", (json_int_t)m->partition,
			      "offset", (json_int_t)m->offset, "timestamp_ms", (json_int_t)m->timestamp_ms);
	if (m->key.len)
		json_bytes(o, "key", "key_base64", m->key);
	else
		json_object_set_new(o, "key", json_null());
	json_t *h = json_object();
	for (size_t i = 0; i < m->headers_n; i++) {
		json_t *v = json_stringn((const char *)m->headers[i].value.base, m->headers[i].value.len);
		if (!v) {
			size_t blen = sodium_base64_encoded_len(m->headers[i].value.len, sodium_base64_VARIANT_ORIGINAL);
			char *b = malloc(blen);
			if (b)
				sodium_bin2base64(b, blen, m->headers[i].value.base, m->headers[i].value.len,
						  sodium_base64_VARIANT_ORIGINAL);
			v = json_string(b ? b : "");
			free(b);
		}
		json_object_set_new(h, m->headers[i].key, v);
	}
	json_object_set_new(o, "headers", h);
	json_bytes(o, "payload", "payload_base64", m->payload);
	return o;
}

static void sub_commit_done_cb(void *arg, int err, const char *errmsg)
{
	struct sub_state *st = arg;
	st->commits_out--;
	if (err)
		fprintf(stderr, "%s: commit: %s\n", prog, errmsg ? errmsg : sluice_strerror(err));
	if (st->stopping && st->commits_out == 0)
		event_base_loopbreak(sluice_sync_base(st->s));
}

/* Commit the next offset of every partition printed since the last commit. */
static void sub_commit_all(struct sub_state *st)
{
	if (!st->group)
		return;
	fflush(stdout); /* commit only what has really been written out */
	for (size_t i = 0; i < st->parts_n; i++) {
		struct sub_part_state *p = &st->parts[i];
		if (!p->seen || p->next == p->committed)
			continue;
		if (sluice_commit(sluice_sync_client(st->s), st->group, st->topic, p->partition, p->next,
				  sub_commit_done_cb, st) == SLUICE_OK) {
			st->commits_out++;
			p->committed = p->next;
		}
	}
}

static void sub_stop(struct sub_state *st)
{
	if (st->stopping)
		return;
	st->stopping = 1;
	fflush(stdout);
	sluice_unsubscribe(sluice_sync_client(st->s), st->sub_id);
	sub_commit_all(st);
	struct timeval tv = {CLI_EXIT_COMMIT_WAIT_MS / 1000, 0};
	evtimer_add(st->deadline_ev, &tv);
	if (st->commits_out == 0)
		event_base_loopbreak(sluice_sync_base(st->s));
}

static void sub_msg_cb(void *arg, int err, const char *errmsg, const struct sluice_msg *m)
{
	struct sub_state *st = arg;
	if (err) {
		st->exit_code = cli_report_err("sub", err, errmsg);
		st->stopping = 1;
		event_base_loopbreak(sluice_sync_base(st->s));
		return;
	}
	if (st->stopping || (st->count && st->printed >= st->count))
		return;
	if (st->json) {
		cli_json_print(cli_msg_json(m));
	} else {
		fwrite(m->payload.base, 1, m->payload.len, stdout);
		fputc('\n', stdout);
	}
	st->printed++;
	struct sub_part_state *p = sub_part(st, m->partition);
	if (p) {
		p->next = m->offset + 1;
		p->seen = 1;
	}
	if (!st->flush_pending) {
		st->flush_pending = 1;
		event_active(st->flush_ev, EV_TIMEOUT, 0);
	}
	if (st->count && st->printed >= st->count)
		sub_stop(st);
}

static void sub_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sub_state *st = arg;
	st->flush_pending = 0;
	fflush(stdout);
}

static void sub_commit_cb(evutil_socket_t fd, short what, void *arg)
{
	sub_commit_all(arg);
}

static void sub_signal_cb(evutil_socket_t fd, short what, void *arg)
{
	sub_stop(arg);
}

static void sub_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sub_state *st = arg;
	fprintf(stderr, "%s: gave up waiting for offset commits\n", prog);
	st->exit_code = EX_TEMPFAIL;
	event_base_loopbreak(sluice_sync_base(st->s));
}

static int sub_parse_from(const char *s, struct sluice_sub_opts *o)
{
	if (!strcmp(s, "earliest"))
		o->start = SLUICE_EARLIEST;
	else if (!strcmp(s, "latest"))
		o->start = SLUICE_LATEST;
	else if (s[0] == '@') {
		o->start = SLUICE_TIMESTAMP;
		return cli_parse_i64(s + 1, &o->timestamp_ms);
	} else {
		o->start = SLUICE_OFFSET;
		return cli_parse_u64(s, &o->offset);
	}
	return 0;
}

static int sub_run(struct sub_state *st, struct sluice_sub_opts *o)
{
	struct event_base *base = sluice_sync_base(st->s);
	int err;
	st->flush_ev = event_new(base, -1, 0, sub_flush_cb, st);
	st->commit_ev = event_new(base, -1, EV_PERSIST, sub_commit_cb, st);
	st->sigint_ev = evsignal_new(base, SIGINT, sub_signal_cb, st);
	st->sigterm_ev = evsignal_new(base, SIGTERM, sub_signal_cb, st);
	st->deadline_ev = evtimer_new(base, sub_deadline_cb, st);
	if (!st->flush_ev || !st->commit_ev || !st->sigint_ev || !st->sigterm_ev || !st->deadline_ev) {
		err = SLUICE_ENOMEM;
		goto done;
	}
	struct timeval tv = {0, CLI_COMMIT_INTERVAL_MS * 1000};
	if (st->group)
		event_add(st->commit_ev, &tv);
	event_add(st->sigint_ev, NULL);
	event_add(st->sigterm_ev, NULL);
	err = sluice_subscribe(sluice_sync_client(st->s), o, sub_msg_cb, st, &st->sub_id);
	if (err == SLUICE_OK && !(st->count && st->printed >= st->count))
		event_base_dispatch(base);
done:
	fflush(stdout);
	if (st->flush_ev)
		event_free(st->flush_ev);
	if (st->commit_ev)
		event_free(st->commit_ev);
	if (st->sigint_ev)
		event_free(st->sigint_ev);
	if (st->sigterm_ev)
		event_free(st->sigterm_ev);
	if (st->deadline_ev)
		event_free(st->deadline_ev);
	return err ? cli_report_err("sub", err, NULL) : st->exit_code;
}

static int cmd_sub(const struct cli_global *g, int argc, char **argv)
{
	static const struct option lo[] = {{"from", required_argument, 0, 'f'},
					   {"partition", required_argument, 0, 'p'},
					   {"group", required_argument, 0, 'g'},
					   {"count", required_argument, 0, 'n'},
					   {"format", required_argument, 0, 'F'},
					   {"consumer", required_argument, 0, 'C'},
					   {0, 0, 0, 0}};
	static uint32_t parts[CLI_SUB_PARTITIONS_MAX];
	const char *consumer = NULL;
	int positioned = 0; /* --from, --partition or --group: not with --consumer */
	struct sluice_sub_opts o = {.start = SLUICE_LATEST};
	struct sub_state st = {.g = g, .json = g->json};
	int ch;
	if (cli_want_help(argc, argv)) {
		usage_sub(stdout);
		return EX_OK;
	}
	optind = 1;
	while ((ch = getopt_long(argc, argv, "f:p:g:n:F:", lo, NULL)) != -1) {
		int bad = ch == '?';
		positioned |= ch == 'f' || ch == 'p' || ch == 'g';
		if (ch == 'C')
			consumer = optarg;
		else if (ch == 'f')
			bad = sub_parse_from(optarg, &o);
		else if (ch == 'p')
			bad = o.partitions_n >= CLI_SUB_PARTITIONS_MAX || cli_parse_u32(optarg, &parts[o.partitions_n++]);
		else if (ch == 'g')
			st.group = optarg;
		else if (ch == 'n')
			bad = cli_parse_u64(optarg, &st.count);
		else if (ch == 'F')
			bad = strcmp(optarg, "raw") && strcmp(optarg, "json") ? 1 : (st.json = !strcmp(optarg, "json"), 0);
		if (bad) {
			usage_sub(stderr);
			return EX_USAGE;
		}
	}
	if (consumer) {
		/* the consumer names its topic and keeps its own position */
		if (optind != argc || positioned) {
			usage_sub(stderr);
			return EX_USAGE;
		}
		return consumer_sub(g, consumer, st.count, st.json);
	}
	if (optind + 1 != argc) {
		usage_sub(stderr);
		return EX_USAGE;
	}
	st.topic = o.topic = argv[optind];
	o.partitions = o.partitions_n ? parts : NULL;
	o.group = st.group;
	static char outbuf[1 << 16];
	setvbuf(stdout, outbuf, _IOFBF, sizeof(outbuf));
	int rc = cli_connect(g, 0, &st.s);
	if (rc)
		return rc;
	sluice_client_set_retry_max(sluice_sync_client(st.s), CLI_STREAM_RETRY_MAX_MS);
	rc = sub_run(&st, &o);
	sluice_sync_close(st.s);
	free(st.parts);
	return rc;
}

/* ---------- group, node ---------- */

static void group_cb(void *arg, int err, const char *errmsg, const struct sluice_group_partition *ps, size_t n)
{
	struct topic_result *r = arg;
	r->done = 1;
	r->err = err;
	if (err) {
		snprintf(r->msg, sizeof(r->msg), "%s", errmsg ? errmsg : sluice_strerror(err));
		return;
	}
	if (r->g->json) {
		json_t *a = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(a, json_pack("{s:s, s:I, s:I, s:I, s:I}", "topic", ps[i].topic,
							   "partition", (json_int_t)ps[i].partition,
							   "committed_offset", (json_int_t)ps[i].committed_offset,
							   "end_offset", (json_int_t)ps[i].end_offset, "lag",
							   (json_int_t)ps[i].lag));
		cli_json_print(json_pack("{s:s, s:o}", "group", r->msg, "partitions", a));
		return;
	}
	printf("%-32s %9s %16s %14s %10s\n", "TOPIC", "PARTITION", "COMMITTED_OFFSET", "END_OFFSET", "LAG");
	for (size_t i = 0; i < n; i++)
		printf("%-32s %9u %16" PRIu64 " %14" PRIu64 " %10" PRIu64 "\n", ps[i].topic, ps[i].partition,
		       ps[i].committed_offset, ps[i].end_offset, ps[i].lag);
}

static void status_cb(void *arg, int err, const char *errmsg, const struct sluice_node_status *st)
{
	struct topic_result *r = arg;
	r->done = 1;
	r->err = err;
	if (err) {
		snprintf(r->msg, sizeof(r->msg), "%s", errmsg ? errmsg : sluice_strerror(err));
		return;
	}
	if (r->g->json) {
		cli_json_print(json_pack("{s:I, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "node_id",
				     (json_int_t)st->node_id, "version", st->version ? st->version : "",
				     "uptime_ms", (json_int_t)st->uptime_ms, "frontends", (json_int_t)st->frontends,
				     "topics", (json_int_t)st->topics, "map_bytes", (json_int_t)st->map_bytes,
				     "used_bytes", (json_int_t)st->used_bytes, "connections",
				     (json_int_t)st->connections, "published", (json_int_t)st->published,
				     "logwriter_restarts", (json_int_t)st->logwriter_restarts, "frontend_restarts",
				     (json_int_t)st->frontend_restarts));
		return;
	}
	printf("node_id             %u\n", st->node_id);
	printf("version             %s\n", st->version ? st->version : "");
	printf("uptime_ms           %" PRId64 "\n", st->uptime_ms);
	printf("frontends           %u\n", st->frontends);
	printf("topics              %u\n", st->topics);
	printf("map_bytes           %" PRIu64 "\n", st->map_bytes);
	printf("used_bytes          %" PRIu64 "\n", st->used_bytes);
	printf("connections         %" PRIu64 "\n", st->connections);
	printf("published           %" PRIu64 "\n", st->published);
	printf("logwriter_restarts  %u\n", st->logwriter_restarts);
	printf("frontend_restarts   %u\n", st->frontend_restarts);
}

static int cmd_query(const struct cli_global *g, int group, const char *arg)
{
	struct sluice_sync *s;
	struct topic_result r = {.g = g};
	int rc = cli_connect(g, 0, &s);
	if (rc)
		return rc;
	if (group)
		snprintf(r.msg, sizeof(r.msg), "%s", arg); /* the group name, for the JSON output */
	int err = group ? sluice_group_describe(sluice_sync_client(s), arg, group_cb, &r)
			: sluice_node_status(sluice_sync_client(s), status_cb, &r);
	if (err == SLUICE_OK) {
		cli_wait_done(s, &r.done);
		err = r.err;
	}
	sluice_sync_close(s);
	return err ? cli_report_err(group ? "group describe" : "node status", err, r.msg) : EX_OK;
}

static int cmd_group(const struct cli_global *g, int argc, char **argv)
{
	if (cli_want_help(argc, argv)) {
		usage_group(stdout);
		return EX_OK;
	}
	if (argc != 3 || strcmp(argv[1], "describe") || argv[2][0] == '-') {
		usage_group(stderr);
		return EX_USAGE;
	}
	return cmd_query(g, 1, argv[2]);
}

static int cmd_node(const struct cli_global *g, int argc, char **argv)
{
	if (cli_want_help(argc, argv)) {
		usage_node(stdout);
		return EX_OK;
	}
	if (argc != 2 || strcmp(argv[1], "status")) {
		usage_node(stderr);
		return EX_USAGE;
	}
	return cmd_query(g, 0, NULL);
}

/* ---------- cluster ---------- */

static void result_done_cb(void *arg, int err, const char *errmsg)
{
	struct topic_result *r = arg;
	r->done = 1;
	r->err = err;
	if (err)
		snprintf(r->msg, sizeof(r->msg), "%s", errmsg ? errmsg : sluice_strerror(err));
}

/*
 * `cluster status` asks every node it knows, in parallel rounds: first the
 * --servers list, then every client address the answers name (so one live
 * node is enough to find the others). One client per address, with no
 * failover, so each answer is that node's own view.
 */
#define CLI_CLUSTER_TARGETS_MAX 16
#define CLI_CLUSTER_NODES_MAX 16
#define CLI_CLUSTER_ROUNDS_MAX 4
#define CLI_CLUSTER_TIMEOUT_MS 1500
#define CLI_TRANSFER_WAIT_MS 10000
#define CLI_TRANSFER_POLL_MS 200

struct cs_node {
	uint32_t id;
	char client[256];
	int reachable;
	uint64_t match_index;
};

struct cs_answer {
	uint32_t node_id, leader_id;
	char role[16];
	uint64_t term, first_index, last_index, commit_index, applied_index;
	size_t nodes_n;
	struct cs_node nodes[CLI_CLUSTER_NODES_MAX];
};

struct cs_target {
	char addr[256];
	int started, done, answered, err;
	char errmsg[256];
	struct sluice_client *c;
	struct cs_answer ans;
};

struct cs_state {
	struct cs_target t[CLI_CLUSTER_TARGETS_MAX];
	size_t n;
	const char *tls_ca; /* --tls-ca, for every node asked */
};

static void cs_answer_copy(struct cs_answer *a, const struct sluice_cluster_status *st)
{
	memset(a, 0, sizeof(*a));
	a->node_id = st->node_id;
	a->leader_id = st->leader_id;
	snprintf(a->role, sizeof(a->role), "%s", st->role ? st->role : "");
	a->term = st->term;
	a->first_index = st->first_index;
	a->last_index = st->last_index;
	a->commit_index = st->commit_index;
	a->applied_index = st->applied_index;
	for (size_t i = 0; i < st->nodes_n && a->nodes_n < CLI_CLUSTER_NODES_MAX; i++) {
		struct cs_node *n = &a->nodes[a->nodes_n++];
		n->id = st->nodes[i].id;
		snprintf(n->client, sizeof(n->client), "%s", st->nodes[i].client_address ? st->nodes[i].client_address : "");
		n->reachable = st->nodes[i].reachable;
		n->match_index = st->nodes[i].match_index;
	}
}

static void cs_status_cb(void *arg, int err, const char *errmsg, const struct sluice_cluster_status *st)
{
	struct cs_target *t = arg;
	t->done = 1;
	t->err = err;
	if (err == SLUICE_OK && st) {
		t->answered = 1;
		cs_answer_copy(&t->ans, st);
	} else {
		snprintf(t->errmsg, sizeof(t->errmsg), "%s", errmsg ? errmsg : sluice_strerror(err));
	}
}

static void cs_add_target(struct cs_state *cs, const char *addr)
{
	if (!addr || !addr[0] || strlen(addr) >= sizeof(cs->t[0].addr) || cs->n >= CLI_CLUSTER_TARGETS_MAX)
		return;
	for (size_t i = 0; i < cs->n; i++)
		if (!strcmp(cs->t[i].addr, addr))
			return;
	memset(&cs->t[cs->n], 0, sizeof(cs->t[cs->n]));
	snprintf(cs->t[cs->n].addr, sizeof(cs->t[cs->n].addr), "%s", addr);
	cs->n++;
}

static void cs_add_list(struct cs_state *cs, const char *list)
{
	char buf[4096];
	char *save = NULL;
	snprintf(buf, sizeof(buf), "%s", list);
	for (char *tok = strtok_r(buf, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save))
		cs_add_target(cs, tok);
}

static const char *cli_servers(const struct cli_global *g)
{
	const char *s = g->server ? g->server : getenv("SLUICE_SERVER");
	return s && s[0] ? s : "127.0.0.1:7400";
}

/* Ask every target not asked yet, all at once; returns how many were asked. */
static size_t cs_round(struct cs_state *cs, struct event_base *base)
{
	size_t asked = 0, i;
	for (i = 0; i < cs->n; i++) {
		struct cs_target *t = &cs->t[i];
		struct sluice_client_opts o = {0};
		if (t->started)
			continue;
		t->started = 1;
		o.servers = t->addr;
		o.tls_ca = cs->tls_ca;
		o.client_name = "sluice-cli";
		o.connect_timeout_ms = CLI_CLUSTER_TIMEOUT_MS;
		o.request_timeout_ms = 2 * CLI_CLUSTER_TIMEOUT_MS;
		o.retry_max_ms = CLI_CLUSTER_TIMEOUT_MS;
		t->err = sluice_client_new(base, &o, &t->c);
		if (t->err == SLUICE_OK)
			t->err = sluice_cluster_status(t->c, cs_status_cb, t);
		if (t->err != SLUICE_OK) {
			t->done = 1;
			snprintf(t->errmsg, sizeof(t->errmsg), "%s", sluice_strerror(t->err));
		}
		asked++;
	}
	for (;;) { /* bounded: every client answers or gives up after its timeouts */
		int pending = 0;
		for (i = 0; i < cs->n; i++)
			pending |= cs->t[i].started && !cs->t[i].done;
		if (!pending)
			break;
		event_base_loop(base, EVLOOP_ONCE);
	}
	for (i = 0; i < cs->n; i++) {
		sluice_client_free(cs->t[i].c);
		cs->t[i].c = NULL;
	}
	return asked;
}

/* Query the --servers list, then whatever the answers point to. Returns the number of answers. */
static size_t cs_discover(const struct cli_global *g, struct cs_state *cs)
{
	struct event_base *base = event_base_new();
	size_t answered = 0;
	if (!base)
		return 0;
	memset(cs, 0, sizeof(*cs));
	cs->tls_ca = g->tls_ca;
	cs_add_list(cs, cli_servers(g));
	for (int round = 0; round < CLI_CLUSTER_ROUNDS_MAX && cs_round(cs, base) > 0; round++) {
		size_t n = cs->n;
		for (size_t i = 0; i < n; i++)
			for (size_t k = 0; cs->t[i].answered && k < cs->t[i].ans.nodes_n; k++)
				cs_add_target(cs, cs->t[i].ans.nodes[k].client);
	}
	event_base_free(base);
	for (size_t i = 0; i < cs->n; i++)
		answered += cs->t[i].answered;
	return answered;
}

/* One line of the report. Unknown numbers are -1. */
struct cs_row {
	uint32_t id;                /* 0: an address that did not answer and no node claims */
	const char *addr;
	const struct cs_answer *a;  /* the node's own answer, or NULL */
	int leader_sees;            /* -1: no leader answered */
	int64_t lag;
};

struct cs_report {
	const struct cs_answer *leader; /* the answering leader of the highest term */
	uint32_t leader_id;
	uint64_t term;
	struct cs_row rows[CLI_CLUSTER_TARGETS_MAX + CLI_CLUSTER_NODES_MAX];
	size_t rows_n;
};

static const struct cs_target *cs_answer_of(const struct cs_state *cs, uint32_t id)
{
	for (size_t i = 0; i < cs->n; i++)
		if (cs->t[i].answered && cs->t[i].ans.node_id == id)
			return &cs->t[i];
	return NULL;
}

static const struct cs_node *cs_node_in(const struct cs_answer *a, uint32_t id)
{
	for (size_t k = 0; a && k < a->nodes_n; k++)
		if (a->nodes[k].id == id)
			return &a->nodes[k];
	return NULL;
}

static int cs_row_has(const struct cs_report *r, uint32_t id)
{
	for (size_t i = 0; i < r->rows_n; i++)
		if (r->rows[i].id == id)
			return 1;
	return 0;
}

/* A client address any answer gives for id, or "". */
static const char *cs_addr_of(const struct cs_state *cs, uint32_t id)
{
	for (size_t i = 0; i < cs->n; i++) {
		const struct cs_node *n = cs->t[i].answered ? cs_node_in(&cs->t[i].ans, id) : NULL;
		if (n && n->client[0])
			return n->client;
	}
	return "";
}

static void cs_leader_find(const struct cs_state *cs, struct cs_report *r)
{
	for (size_t i = 0; i < cs->n; i++) {
		const struct cs_answer *a = &cs->t[i].ans;
		if (!cs->t[i].answered)
			continue;
		if (a->term > r->term || (a->term == r->term && !r->leader_id && a->leader_id)) {
			r->term = a->term;
			r->leader_id = a->leader_id;
		}
		if ((!strcmp(a->role, "leader") || !strcmp(a->role, "single")) &&
		    (!r->leader || a->term >= r->leader->term))
			r->leader = a;
	}
	if (r->leader) {
		r->leader_id = r->leader->node_id;
		r->term = r->leader->term > r->term ? r->leader->term : r->term;
	}
}

static void cs_row_fill(const struct cs_state *cs, struct cs_report *r, struct cs_row *row)
{
	const struct cs_answer *L = r->leader;
	const struct cs_node *seen = cs_node_in(L, row->id);
	row->lag = -1;
	row->leader_sees = -1;
	if (!L || !row->id)
		return;
	row->leader_sees = row->id == L->node_id || (seen && seen->reachable);
	if (row->a)
		row->lag = L->last_index > row->a->last_index ? (int64_t)(L->last_index - row->a->last_index) : 0;
	else if (seen && seen->match_index)
		row->lag = L->last_index > seen->match_index ? (int64_t)(L->last_index - seen->match_index) : 0;
	(void)cs;
}

static void cs_report_build(const struct cs_state *cs, struct cs_report *r)
{
	uint32_t ids[CLI_CLUSTER_TARGETS_MAX * (CLI_CLUSTER_NODES_MAX + 1)];
	size_t nids = 0, i, k;
	memset(r, 0, sizeof(*r));
	cs_leader_find(cs, r);
	for (i = 0; i < cs->n; i++) {
		if (!cs->t[i].answered)
			continue;
		ids[nids++] = cs->t[i].ans.node_id;
		for (k = 0; k < cs->t[i].ans.nodes_n; k++)
			ids[nids++] = cs->t[i].ans.nodes[k].id;
	}
	for (;;) { /* rows in id order */
		uint32_t next = 0;
		for (i = 0; i < nids; i++)
			if (ids[i] && !cs_row_has(r, ids[i]) && (!next || ids[i] < next))
				next = ids[i];
		if (!next || r->rows_n >= CLI_CLUSTER_NODES_MAX)
			break;
		struct cs_row *row = &r->rows[r->rows_n++];
		const struct cs_target *t = cs_answer_of(cs, next);
		row->id = next;
		row->a = t ? &t->ans : NULL;
		row->addr = t ? t->addr : cs_addr_of(cs, next);
		cs_row_fill(cs, r, row);
	}
	/* addresses that did not answer and that no answer names */
	for (i = 0; i < cs->n; i++) {
		int known = cs->t[i].answered;
		for (k = 0; !known && k < r->rows_n; k++)
			known = !strcmp(r->rows[k].addr, cs->t[i].addr);
		if (!known && r->rows_n < sizeof(r->rows) / sizeof(r->rows[0])) {
			struct cs_row *row = &r->rows[r->rows_n++];
			memset(row, 0, sizeof(*row));
			row->addr = cs->t[i].addr;
			row->lag = -1;
			row->leader_sees = -1;
		}
	}
}

static json_t *json_u64_or_null(int known, uint64_t v)
{
	return known ? json_integer((json_int_t)v) : json_null();
}

static void cs_print_json(const struct cs_report *r)
{
	json_t *nodes = json_array();
	for (size_t i = 0; i < r->rows_n; i++) {
		const struct cs_row *w = &r->rows[i];
		json_t *o = json_object();
		json_object_set_new(o, "id", w->id ? json_integer(w->id) : json_null());
		json_object_set_new(o, "address", json_string(w->addr));
		json_object_set_new(o, "role", w->a ? json_string(w->a->role) : json_null());
		json_object_set_new(o, "term", json_u64_or_null(w->a != NULL, w->a ? w->a->term : 0));
		json_object_set_new(o, "last_index", json_u64_or_null(w->a != NULL, w->a ? w->a->last_index : 0));
		json_object_set_new(o, "commit_index", json_u64_or_null(w->a != NULL, w->a ? w->a->commit_index : 0));
		json_object_set_new(o, "lag", json_u64_or_null(w->lag >= 0, (uint64_t)w->lag));
		json_object_set_new(o, "reachable", json_boolean(w->a != NULL));
		json_object_set_new(o, "leader_sees", w->leader_sees < 0 ? json_null() : json_boolean(w->leader_sees));
		json_array_append_new(nodes, o);
	}
	cli_json_print(json_pack("{s:o, s:I, s:o}", "leader", r->leader_id ? json_integer(r->leader_id) : json_null(),
			     "term", (json_int_t)r->term, "nodes", nodes));
}

static void cs_print_text(const struct cs_report *r)
{
	if (r->leader_id)
		printf("leader: node %u, term %" PRIu64 "\n", r->leader_id, r->term);
	else
		printf("leader: none known (term %" PRIu64 ")\n", r->term);
	printf("%-4s %-24s %-12s %6s %12s %12s %8s %9s %11s\n", "ID", "ADDRESS", "ROLE", "TERM", "LAST_INDEX",
	       "COMMIT_INDEX", "LAG", "REACHABLE", "LEADER_SEES");
	for (size_t i = 0; i < r->rows_n; i++) {
		const struct cs_row *w = &r->rows[i];
		char id[16] = "?", term[24] = "-", last[24] = "-", commit[24] = "-", lag[24] = "-";
		if (w->id)
			snprintf(id, sizeof(id), "%u", w->id);
		if (w->a) {
			snprintf(term, sizeof(term), "%" PRIu64, w->a->term);
			snprintf(last, sizeof(last), "%" PRIu64, w->a->last_index);
			snprintf(commit, sizeof(commit), "%" PRIu64, w->a->commit_index);
		}
		if (w->lag >= 0)
			snprintf(lag, sizeof(lag), "%" PRId64, w->lag);
		printf("%-4s %-24s %-12s %6s %12s %12s %8s %9s %11s\n", id, w->addr[0] ? w->addr : "-",
		       w->a ? w->a->role : "-", term, last, commit, lag, w->a ? "yes" : "no",
		       w->leader_sees < 0 ? "-" : w->leader_sees ? "yes" : "no");
	}
}

static int cmd_cluster_status(const struct cli_global *g, int argc, char **argv)
{
	static struct cs_state cs;
	static struct cs_report r;
	if (argc != 1) {
		usage_cluster(stderr);
		return EX_USAGE;
	}
	(void)argv;
	if (cs_discover(g, &cs) == 0) {
		for (size_t i = 0; i < cs.n; i++)
			fprintf(stderr, "%s: cluster status: %s: %s\n", prog, cs.t[i].addr, cs.t[i].errmsg);
		fprintf(stderr, "%s: cluster status: no node answered\n", prog);
		return EX_UNAVAILABLE;
	}
	cs_report_build(&cs, &r);
	if (g->json)
		cs_print_json(&r);
	else
		cs_print_text(&r);
	return EX_OK;
}

struct transfer_poll {
	uint32_t leader_id;
	uint64_t term;
};

static void transfer_poll_fn(void *arg, const struct sluice_cluster_status *st)
{
	struct transfer_poll *p = arg;
	p->leader_id = st->leader_id;
	p->term = st->term;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Poll the connected node's view until `to` leads or the wait is over. */
static int transfer_wait(const struct cli_global *g, struct sluice_sync *s, uint32_t to)
{
	struct transfer_poll p = {0};
	int64_t deadline = mono_ms() + CLI_TRANSFER_WAIT_MS;
	char msg[256];
	for (;;) {
		int err = sluice_sync_cluster_status(s, transfer_poll_fn, &p, msg, sizeof(msg));
		if (err == SLUICE_OK && p.leader_id == to)
			break;
		if (mono_ms() >= deadline) {
			if (p.leader_id)
				fprintf(stderr, "%s: cluster transfer-leader: node %u did not become leader within %d s; "
						"the leader is node %u (term %" PRIu64 ")\n",
					prog, to, CLI_TRANSFER_WAIT_MS / 1000, p.leader_id, p.term);
			else
				fprintf(stderr, "%s: cluster transfer-leader: node %u did not become leader within %d s; "
						"no leader is known\n", prog, to, CLI_TRANSFER_WAIT_MS / 1000);
			return EX_TEMPFAIL;
		}
		sleep_ms(CLI_TRANSFER_POLL_MS);
	}
	if (g->json)
		cli_json_print(json_pack("{s:I, s:I}", "leader", (json_int_t)p.leader_id, "term", (json_int_t)p.term));
	else
		printf("node %u is the leader (term %" PRIu64 ")\n", p.leader_id, p.term);
	return EX_OK;
}

static int cmd_cluster_transfer(const struct cli_global *g, int argc, char **argv)
{
	static const struct option lo[] = {{"to", required_argument, 0, 't'}, {0, 0, 0, 0}};
	uint32_t to = 0;
	int ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "t:", lo, NULL)) != -1) {
		if (ch == '?' || (ch == 't' && (cli_parse_u32(optarg, &to) || to == 0))) {
			usage_cluster(stderr);
			return EX_USAGE;
		}
	}
	if (to == 0 || optind != argc) {
		usage_cluster(stderr);
		return EX_USAGE;
	}
	struct sluice_sync *s;
	struct topic_result r = {.g = g};
	int rc = cli_connect(g, 0, &s);
	if (rc)
		return rc;
	int err = sluice_cluster_transfer_leader(sluice_sync_client(s), to, result_done_cb, &r);
	if (err == SLUICE_OK) {
		cli_wait_done(s, &r.done);
		err = r.err;
	}
	rc = err ? cli_report_err("cluster transfer-leader", err, r.msg) : transfer_wait(g, s, to);
	sluice_sync_close(s);
	return rc;
}

static int cmd_cluster(const struct cli_global *g, int argc, char **argv)
{
	if (cli_want_help(argc, argv)) {
		usage_cluster(stdout);
		return EX_OK;
	}
	if (argc >= 2 && !strcmp(argv[1], "status"))
		return cmd_cluster_status(g, argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "transfer-leader"))
		return cmd_cluster_transfer(g, argc - 1, argv + 1);
	usage_cluster(stderr);
	return EX_USAGE;
}

/* ---------- main ---------- */

/*
 * Pull the global options out of argv wherever they are (up to "--"),
 * compacting the rest in place. Returns -1 on a missing --server value.
 * --key and --token are global before the command only (`pub --key K` is
 * the message key).
 * -s, --servers and --server are the same option (after `bench`, -s is its
 * --size).
 */
static int globals_extract(int *argc, char **argv, struct cli_global *g, int *help)
{
	int out = 1, i = 1, rest = 0;
	for (; i < *argc; i++) {
		char *a = argv[i];
		if (rest || a[0] != '-') {
			argv[out++] = a;
			continue;
		}
		if (!strcmp(a, "--")) {
			rest = 1;
			argv[out++] = a;
		} else if (!strcmp(a, "--json")) {
			g->json = 1;
		} else if (!strcmp(a, "--server") || !strcmp(a, "--servers") ||
			   (!strcmp(a, "-s") && (out == 1 || strcmp(argv[1], "bench")))) {
			if (i + 1 >= *argc)
				return -1;
			g->server = argv[++i];
		} else if (!strncmp(a, "--server=", 9)) {
			g->server = a + 9;
		} else if (!strncmp(a, "--servers=", 10)) {
			g->server = a + 10;
		} else if (!strcmp(a, "--tls-ca")) {
			if (i + 1 >= *argc)
				return -1;
			g->tls_ca = argv[++i];
		} else if (!strncmp(a, "--tls-ca=", 9)) {
			g->tls_ca = a + 9;
		} else if ((!strcmp(a, "--key") || !strcmp(a, "--token")) && out == 1) {
			/* before the command only: after it, `pub --key` is a message key */
			if (i + 1 >= *argc)
				return -1;
			*(a[2] == 'k' ? &g->key : &g->token) = argv[++i];
		} else if ((!strcmp(a, "--help") || !strcmp(a, "-h")) && out == 1) {
			*help = 1; /* before the command: general help */
		} else {
			argv[out++] = a;
		}
	}
	argv[out] = NULL;
	*argc = out;
	return 0;
}

int main(int argc, char **argv)
{
	struct cli_global g = {0};
	int help = 0;
	signal(SIGPIPE, SIG_IGN);
	if (globals_extract(&argc, argv, &g, &help) != 0) {
		usage(stderr);
		return EX_USAGE;
	}
	if (help || argc < 2) {
		usage(help ? stdout : stderr);
		return help ? EX_OK : EX_USAGE;
	}
	const char *cmd = argv[1];
	int sub_argc = argc - 1;
	char **sub_argv = argv + 1;
	if (!strcmp(cmd, "topic"))
		return cmd_topic(&g, sub_argc, sub_argv);
	if (!strcmp(cmd, "pub"))
		return cmd_pub(&g, sub_argc, sub_argv);
	if (!strcmp(cmd, "sub"))
		return cmd_sub(&g, sub_argc, sub_argv);
	if (!strcmp(cmd, "group"))
		return cmd_group(&g, sub_argc, sub_argv);
	if (!strcmp(cmd, "consumer"))
		return consumer_main(&g, sub_argc, sub_argv);
	if (!strcmp(cmd, "dlq"))
		return dlq_main(&g, sub_argc, sub_argv);
	if (!strcmp(cmd, "webhook"))
		return webhook_main(&g, sub_argc, sub_argv);
	if (!strcmp(cmd, "node"))
		return cmd_node(&g, sub_argc, sub_argv);
	if (!strcmp(cmd, "cluster"))
		return cmd_cluster(&g, sub_argc, sub_argv);
	if (!strcmp(cmd, "bench"))
		return bench_main(&g, sub_argc, sub_argv);
	if (!strcmp(cmd, "key") || !strcmp(cmd, "auth") || !strcmp(cmd, "principal") || !strcmp(cmd, "token") ||
	    !strcmp(cmd, "audit"))
		return auth_main(&g, sub_argc, sub_argv);
	if (!strcmp(cmd, "asyncapi"))
		return asyncapi_main(sub_argc, sub_argv);
	if (!strcmp(cmd, "help")) {
		usage(stdout);
		return EX_OK;
	}
	fprintf(stderr, "%s: unknown command '%s'\n", prog, cmd);
	usage(stderr);
	return EX_USAGE;
}
