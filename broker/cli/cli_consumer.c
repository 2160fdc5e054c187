/*
 * cli_consumer.c: durable consumers in the `sluice` CLI: `consumer create,
 * list, describe, delete, pull`, `sub --consumer` and `dlq replay`.
 *
 * Pull, print, ack: every pulled batch is printed and flushed before its one
 * AckMessages is sent, so a message is acknowledged only once it was written
 * out (at least once: a CLI killed between the two prints it again after the
 * consumer's ack timeout). A pull never asks for more than --count still
 * wants, so nothing is picked that would not be printed. SIGINT or SIGTERM
 * during a long-poll ends at once (what that pull picks comes back after the
 * ack timeout); during an ack, the ack is waited for.
 *
 * dlq replay reads a dead-letter topic up to the end offsets it had at the
 * start and republishes each message (key, payload, headers but the
 * sluice-dlq-* ones) to its original topic, to the original partition when
 * that topic has it. The publishes carry the CLI's producer id and sequence,
 * so a publish that libsluice re-sends is stored once; running the command
 * twice replays twice.
 */
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include <event2/event.h>
#include <jansson.h>

#include "cli.h"
#include "sluice/sluice.h"
#include "vec.h"

#define CLI_PULL_MAX_DEFAULT 100
#define CLI_PULL_MAX 1000
#define CLI_PULL_WAIT_MS_ONCE 1000    /* one pull: wait this long for a message */
#define CLI_PULL_WAIT_MS_LOOP 20000   /* --count, --follow, sub --consumer: long-poll */
#define CLI_PULL_WAIT_MS_MAX 20000
#define CLI_CONSUMER_RETRY_MAX_MS 30000 /* a pulling loop rides out a broker restart */
#define CLI_SCHEDULE_MAX 16
#define CLI_NACK_ERROR "nacked with sluice consumer pull --nack"
#define CLI_DLQ_PAGE_MAX 500
#define CLI_DLQ_TARGETS_MAX 64
#define CLI_DLQ_HEADERS_MAX 256
#define CLI_DLQ_PREFIX "sluice-dlq-"

static const char *prog = "sluice";

struct cons_result {
	const struct cli_global *g;
	int done, err;
	char msg[256];
};

static void cons_result_set(struct cons_result *r, int err, const char *errmsg)
{
	r->done = 1;
	r->err = err;
	if (err)
		snprintf(r->msg, sizeof(r->msg), "%s", errmsg ? errmsg : sluice_strerror(err));
}

static void cons_done_cb(void *arg, int err, const char *errmsg)
{
	cons_result_set(arg, err, errmsg);
}

/* Wait for the answer to a request that was queued with err == 0. */
static int cons_wait(struct sluice_sync *s, int err, struct cons_result *r)
{
	if (err != SLUICE_OK) {
		snprintf(r->msg, sizeof(r->msg), "%s", sluice_strerror(err));
		return err;
	}
	cli_wait_done(s, &r->done);
	return r->err;
}

/* ---------- usage ---------- */

void consumer_usage(FILE *f)
{
	fprintf(f,
		"usage: sluice consumer create NAME --topic T [--shared] [--max-in-flight N]\n"
		"            [--max-deliveries N | --never-dead-letter] [--ack-timeout-ms MS]\n"
		"            [--schedule MS,MS,...] [--dead-letter-topic T]\n"
		"            [--from earliest|latest|OFFSET|@UNIX_MS]\n"
		"       sluice consumer list\n"
		"       sluice consumer describe NAME\n"
		"       sluice consumer delete NAME\n"
		"       sluice consumer pull NAME [--max N] [--wait-ms MS] [--count N | --follow]\n"
		"            [--no-ack | --nack [--delay-ms MS]] [--format raw|json]\n"
		"  create: ordered by default (one message in flight per partition); --shared lets up\n"
		"  to --max-in-flight (default 1000) per partition out at once, spread over pullers.\n"
		"  After --max-deliveries (default 10) a message goes to --dead-letter-topic (default\n"
		"  TOPIC.dlq). An unacknowledged delivery comes back after --ack-timeout-ms (default\n"
		"  30000); a nack without a delay waits --schedule[attempt] ms (default 0,1000,5000,\n"
		"  30000; the last repeats). --from (default earliest) is where a new consumer starts.\n"
		"  describe: per partition ack floor, next offset, in flight, end offset, lag,\n"
		"  delivered, redelivered, acked, dead-lettered, last error.\n"
		"  pull: prints up to --max (default %d) messages like `sluice sub` (--format json adds\n"
		"  \"attempt\"), then acknowledges them in one request. Without --count or --follow it\n"
		"  pulls once, waiting up to --wait-ms (default %d) for a message; --count N keeps\n"
		"  pulling until N messages were handled, --follow (or --count 0) until SIGINT; both\n"
		"  long-poll (--wait-ms default %d, at most %d). --no-ack leaves them in flight (they\n"
		"  come back after the ack timeout); --nack asks for redelivery after --delay-ms, or\n"
		"  after the consumer's schedule without it.\n",
		CLI_PULL_MAX_DEFAULT, CLI_PULL_WAIT_MS_ONCE, CLI_PULL_WAIT_MS_LOOP, CLI_PULL_WAIT_MS_MAX);
}

void dlq_usage(FILE *f)
{
	fprintf(f,
		"usage: sluice dlq replay DLQ_TOPIC [--to TOPIC] [--from OFFSET] [--count N]\n"
		"  Republishes the messages of a dead-letter topic, from --from (default: the\n"
		"  earliest kept) up to its end when the command starts, at most --count (default:\n"
		"  all): key, payload and headers, without the sluice-dlq-* headers. Each goes to\n"
		"  --to, or else to the topic of its sluice-dlq-topic header, on the partition of its\n"
		"  sluice-dlq-partition header when that topic has it (else placed by key). Prints\n"
		"  how many were replayed. Running it twice replays twice.\n");
}

/* ---------- create, delete ---------- */

static int consumer_parse_from(const char *s, struct sluice_consumer_cfg *cfg)
{
	if (!strcmp(s, "earliest")) {
		cfg->start = SLUICE_EARLIEST;
	} else if (!strcmp(s, "latest")) {
		cfg->start = SLUICE_LATEST;
	} else if (s[0] == '@') {
		cfg->start = SLUICE_TIMESTAMP;
		return cli_parse_i64(s + 1, &cfg->timestamp_ms);
	} else {
		cfg->start = SLUICE_OFFSET;
		return cli_parse_u64(s, &cfg->offset);
	}
	return 0;
}

/* "0,1000,5000" into out (at most CLI_SCHEDULE_MAX); -1 if malformed. */
static int consumer_parse_schedule(const char *s, uint32_t *out, size_t *n)
{
	char buf[512], *save = NULL;
	if (strlen(s) >= sizeof(buf))
		return -1;
	snprintf(buf, sizeof(buf), "%s", s);
	*n = 0;
	for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (*n >= CLI_SCHEDULE_MAX || cli_parse_u32(tok, &out[*n]))
			return -1;
		(*n)++;
	}
	return *n > 0 ? 0 : -1;
}

static int cmd_consumer_create(const struct cli_global *g, int argc, char **argv)
{
	static const struct option lo[] = {{"topic", required_argument, 0, 't'},
					   {"shared", no_argument, 0, 'S'},
					   {"max-in-flight", required_argument, 0, 'm'},
					   {"max-deliveries", required_argument, 0, 'd'},
					   {"never-dead-letter", no_argument, 0, 'N'},
					   {"ack-timeout-ms", required_argument, 0, 'a'},
					   {"schedule", required_argument, 0, 'c'},
					   {"dead-letter-topic", required_argument, 0, 'D'},
					   {"from", required_argument, 0, 'f'},
					   {0, 0, 0, 0}};
	static uint32_t schedule[CLI_SCHEDULE_MAX];
	struct sluice_consumer_cfg cfg = {0};
	int ch, has_max_deliveries = 0;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "t:", lo, NULL)) != -1) {
		int bad = ch == '?';
		if (ch == 't')
			cfg.topic = optarg;
		else if (ch == 'S')
			cfg.shared = 1;
		else if (ch == 'm')
			bad = cli_parse_u32(optarg, &cfg.max_in_flight) || cfg.max_in_flight == 0;
		else if (ch == 'd')
			bad = cli_parse_u32(optarg, &cfg.max_deliveries) || cfg.max_deliveries == 0,
			has_max_deliveries = 1;
		else if (ch == 'N')
			cfg.never_dead_letter = 1;
		else if (ch == 'a')
			bad = cli_parse_u32(optarg, &cfg.ack_timeout_ms) || cfg.ack_timeout_ms == 0;
		else if (ch == 'c')
			bad = consumer_parse_schedule(optarg, schedule, &cfg.schedule_n), cfg.schedule_ms = schedule;
		else if (ch == 'D')
			cfg.dead_letter_topic = optarg;
		else if (ch == 'f')
			bad = consumer_parse_from(optarg, &cfg);
		if (bad) {
			consumer_usage(stderr);
			return EX_USAGE;
		}
	}
	if (optind + 1 != argc || !cfg.topic || (has_max_deliveries && cfg.never_dead_letter) ||
	    (cfg.max_in_flight && !cfg.shared)) {
		consumer_usage(stderr);
		return EX_USAGE;
	}
	const char *name = argv[optind];
	struct sluice_sync *s;
	struct cons_result r = {.g = g};
	int rc = cli_connect(g, 0, &s);
	if (rc)
		return rc;
	int err = cons_wait(s, sluice_consumer_create(sluice_sync_client(s), name, &cfg, cons_done_cb, &r), &r);
	sluice_sync_close(s);
	if (err)
		return cli_report_err("consumer create", err, r.msg);
	if (g->json)
		cli_json_print(json_pack("{s:s, s:s}", "created", name, "topic", cfg.topic));
	else
		printf("created consumer %s on topic %s\n", name, cfg.topic);
	return EX_OK;
}

static int cmd_consumer_delete(const struct cli_global *g, int argc, char **argv)
{
	if (argc != 2 || argv[1][0] == '-') {
		consumer_usage(stderr);
		return EX_USAGE;
	}
	struct sluice_sync *s;
	struct cons_result r = {.g = g};
	int rc = cli_connect(g, 0, &s);
	if (rc)
		return rc;
	int err = cons_wait(s, sluice_consumer_delete(sluice_sync_client(s), argv[1], cons_done_cb, &r), &r);
	sluice_sync_close(s);
	if (err)
		return cli_report_err("consumer delete", err, r.msg);
	if (g->json)
		cli_json_print(json_pack("{s:s}", "deleted", argv[1]));
	else
		printf("deleted consumer %s\n", argv[1]);
	return EX_OK;
}

/* ---------- list, describe ---------- */

/* The start position is left out: it only placed the consumer when it was
 * created (next_offset per partition says where it is), and servers need
 * not echo it. */
static json_t *consumer_cfg_json(const struct sluice_consumer_cfg *c)
{
	json_t *sched = json_array();
	for (size_t i = 0; i < c->schedule_n; i++)
		json_array_append_new(sched, json_integer(c->schedule_ms[i]));
	return json_pack("{s:s, s:s, s:I, s:I, s:b, s:I, s:o, s:s}", "topic", c->topic, "mode",
			 c->shared ? "shared" : "ordered", "max_in_flight", (json_int_t)c->max_in_flight,
			 "max_deliveries", (json_int_t)c->max_deliveries, "never_dead_letter", c->never_dead_letter,
			 "ack_timeout_ms", (json_int_t)c->ack_timeout_ms, "schedule_ms", sched,
			 "dead_letter_topic", c->dead_letter_topic);
}

static json_t *consumer_part_json(const struct sluice_consumer_partition *p)
{
	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:s}", "partition",
			 (json_int_t)p->partition, "ack_floor", (json_int_t)p->ack_floor, "next_offset",
			 (json_int_t)p->next_offset, "in_flight", (json_int_t)p->in_flight, "end_offset",
			 (json_int_t)p->end_offset, "lag", (json_int_t)p->lag, "delivered", (json_int_t)p->delivered,
			 "redelivered", (json_int_t)p->redelivered, "acked", (json_int_t)p->acked, "dead_lettered",
			 (json_int_t)p->dead_lettered, "last_error", p->last_error);
}

struct consumer_totals {
	uint64_t in_flight, lag, dead_lettered;
};

static struct consumer_totals consumer_sum(const struct sluice_consumer_info *ci)
{
	struct consumer_totals t = {0};
	for (size_t i = 0; i < ci->parts_n; i++) {
		t.in_flight += ci->parts[i].in_flight;
		t.lag += ci->parts[i].lag;
		t.dead_lettered += ci->parts[i].dead_lettered;
	}
	return t;
}

static json_t *consumer_json(const struct sluice_consumer_info *ci)
{
	struct consumer_totals t = consumer_sum(ci);
	json_t *parts = json_array();
	for (size_t i = 0; i < ci->parts_n; i++)
		json_array_append_new(parts, consumer_part_json(&ci->parts[i]));
	return json_pack("{s:s, s:I, s:o, s:I, s:I, s:I, s:o}", "name", ci->name, "created_ms",
			 (json_int_t)ci->created_ms, "config", consumer_cfg_json(&ci->cfg), "in_flight",
			 (json_int_t)t.in_flight, "lag", (json_int_t)t.lag, "dead_lettered",
			 (json_int_t)t.dead_lettered, "partitions", parts);
}

static void consumer_list_cb(void *arg, int err, const char *errmsg, const struct sluice_consumer_info *cis, size_t n)
{
	struct cons_result *r = arg;
	cons_result_set(r, err, errmsg);
	if (err)
		return;
	if (r->g->json) {
		json_t *a = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(a, consumer_json(&cis[i]));
		cli_json_print(a);
		return;
	}
	printf("%-32s %-32s %-8s %10s %10s %12s %14s\n", "CONSUMER", "TOPIC", "MODE", "PARTITIONS", "IN_FLIGHT",
	       "LAG", "DEAD_LETTERED");
	for (size_t i = 0; i < n; i++) {
		struct consumer_totals t = consumer_sum(&cis[i]);
		printf("%-32s %-32s %-8s %10zu %10" PRIu64 " %12" PRIu64 " %14" PRIu64 "\n", cis[i].name,
		       cis[i].cfg.topic, cis[i].cfg.shared ? "shared" : "ordered", cis[i].parts_n, t.in_flight, t.lag,
		       t.dead_lettered);
	}
}

static void consumer_describe_text(const struct sluice_consumer_info *ci)
{
	const struct sluice_consumer_cfg *c = &ci->cfg;
	printf("consumer %s on topic %s: %s", ci->name, c->topic, c->shared ? "shared" : "ordered");
	if (c->shared)
		printf(" (max_in_flight %u per partition)", c->max_in_flight);
	if (c->never_dead_letter)
		printf(", never dead-lettered");
	else
		printf(", max_deliveries %u, dead_letter_topic %s", c->max_deliveries, c->dead_letter_topic);
	printf(", ack_timeout_ms %u, schedule_ms ", c->ack_timeout_ms);
	for (size_t i = 0; i < c->schedule_n; i++)
		printf("%s%u", i ? "," : "", c->schedule_ms[i]);
	printf("%s\n", c->schedule_n ? "" : "-");
	printf("%9s %12s %12s %9s %12s %10s %10s %11s %10s %13s  %s\n", "PARTITION", "ACK_FLOOR", "NEXT",
	       "IN_FLIGHT", "END", "LAG", "DELIVERED", "REDELIVERED", "ACKED", "DEAD_LETTERED", "LAST_ERROR");
	for (size_t i = 0; i < ci->parts_n; i++) {
		const struct sluice_consumer_partition *p = &ci->parts[i];
		printf("%9u %12" PRIu64 " %12" PRIu64 " %9u %12" PRIu64 " %10" PRIu64 " %10" PRIu64 " %11" PRIu64
		       " %10" PRIu64 " %13" PRIu64 "  %s\n",
		       p->partition, p->ack_floor, p->next_offset, p->in_flight, p->end_offset, p->lag, p->delivered,
		       p->redelivered, p->acked, p->dead_lettered, p->last_error[0] ? p->last_error : "-");
	}
}

static void consumer_describe_cb(void *arg, int err, const char *errmsg, const struct sluice_consumer_info *ci,
				 size_t n)
{
	struct cons_result *r = arg;
	if (err == SLUICE_OK && n != 1) {
		err = SLUICE_EMALFORMED;
		errmsg = "describe answered without one consumer";
	}
	cons_result_set(r, err, errmsg);
	if (err)
		return;
	if (r->g->json)
		cli_json_print(consumer_json(ci));
	else
		consumer_describe_text(ci);
}

static int cmd_consumer_query(const struct cli_global *g, int argc, char **argv, int describe)
{
	if ((describe && (argc != 2 || argv[1][0] == '-')) || (!describe && argc != 1)) {
		consumer_usage(stderr);
		return EX_USAGE;
	}
	struct sluice_sync *s;
	struct cons_result r = {.g = g};
	int rc = cli_connect(g, 0, &s);
	if (rc)
		return rc;
	struct sluice_client *c = sluice_sync_client(s);
	int err = describe ? sluice_consumer_describe(c, argv[1], consumer_describe_cb, &r)
			   : sluice_consumer_list(c, consumer_list_cb, &r);
	err = cons_wait(s, err, &r);
	sluice_sync_close(s);
	return err ? cli_report_err(describe ? "consumer describe" : "consumer list", err, r.msg) : EX_OK;
}

/* ---------- pull, print, ack ---------- */

enum pull_ack { PULL_ACK, PULL_NO_ACK, PULL_NACK };

struct pull_state {
	struct sluice_sync *s;
	const char *name, *what;
	int json, loop;
	enum pull_ack ack;
	int64_t delay_ms;        /* --nack: < 0 for the consumer's schedule */
	uint32_t max, wait_ms;
	uint64_t count, handled; /* count 0: no limit (in a loop) */
	int acking, finished, exit_code;
	struct sluice_ack_item *items;
	size_t items_cap;
	struct event *sigint_ev, *sigterm_ev;
};

static void pull_finish(struct pull_state *ps, int exit_code)
{
	if (ps->finished)
		return;
	ps->finished = 1;
	if (exit_code && !ps->exit_code)
		ps->exit_code = exit_code;
	fflush(stdout);
	event_base_loopbreak(sluice_sync_base(ps->s));
}

static void pull_cb(void *arg, int err, const char *errmsg, const struct sluice_pulled *msgs, size_t n);

static void pull_next(struct pull_state *ps)
{
	uint32_t want = ps->max;
	if (ps->count && ps->count - ps->handled < want)
		want = (uint32_t)(ps->count - ps->handled);
	int err = sluice_pull(sluice_sync_client(ps->s), ps->name, want, ps->wait_ms, pull_cb, ps);
	if (err)
		pull_finish(ps, cli_report_err(ps->what, err, NULL));
}

/* After a batch was handled: the next pull, or the end. */
static void pull_continue(struct pull_state *ps)
{
	if (ps->finished)
		return;
	if (!ps->loop || (ps->count && ps->handled >= ps->count))
		pull_finish(ps, EX_OK);
	else
		pull_next(ps);
}

static void pull_ack_cb(void *arg, int err, const char *errmsg)
{
	struct pull_state *ps = arg;
	ps->acking = 0;
	if (ps->finished)
		return;
	if (err) {
		pull_finish(ps, cli_report_err(ps->what, err, errmsg));
		return;
	}
	pull_continue(ps);
}

static void pull_print(const struct pull_state *ps, const struct sluice_pulled *p)
{
	if (!ps->json) {
		fwrite(p->msg.payload.base, 1, p->msg.payload.len, stdout);
		fputc('\n', stdout);
		return;
	}
	json_t *o = cli_msg_json(&p->msg);
	json_object_set_new(o, "attempt", json_integer(p->attempt));
	cli_json_print(o);
}

/* One AckMessages (or nacks) for the batch just printed. */
static int pull_ack_batch(struct pull_state *ps, const struct sluice_pulled *msgs, size_t n)
{
	if (vec_reserve(&ps->items, &ps->items_cap, n) != 0)
		return SLUICE_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct sluice_ack_item *it = &ps->items[i];
		memset(it, 0, sizeof(*it));
		it->partition = msgs[i].msg.partition;
		it->offset = msgs[i].msg.offset;
		it->kind = ps->ack == PULL_NACK ? SLUICE_NACK : SLUICE_ACK;
		it->delay_ms = ps->ack == PULL_NACK ? ps->delay_ms : 0;
		it->error = ps->ack == PULL_NACK ? CLI_NACK_ERROR : NULL;
	}
	int err = sluice_ack(sluice_sync_client(ps->s), ps->name, ps->items, n, pull_ack_cb, ps);
	ps->acking = err == SLUICE_OK;
	return err;
}

static void pull_cb(void *arg, int err, const char *errmsg, const struct sluice_pulled *msgs, size_t n)
{
	struct pull_state *ps = arg;
	if (ps->finished)
		return; /* stopped by a signal: what this pull picked comes back after the ack timeout */
	if (err) {
		pull_finish(ps, cli_report_err(ps->what, err, errmsg));
		return;
	}
	for (size_t i = 0; i < n; i++)
		pull_print(ps, &msgs[i]);
	ps->handled += n;
	fflush(stdout); /* acknowledge only what has been written out */
	if (n > 0 && ps->ack != PULL_NO_ACK) {
		err = pull_ack_batch(ps, msgs, n);
		if (err)
			pull_finish(ps, cli_report_err(ps->what, err, NULL));
		return;
	}
	pull_continue(ps);
}

static void pull_signal_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pull_state *ps = arg;
	(void)fd;
	(void)what;
	ps->loop = 0; /* an ack in flight still completes, then the loop ends */
	if (!ps->acking)
		pull_finish(ps, EX_OK);
}

static int pull_run(const struct cli_global *g, struct pull_state *ps)
{
	struct sluice_client_opts o = cli_client_opts(g, 0);
	int rc = cli_connect_opts(g, &o, &ps->s);
	if (rc)
		return rc;
	struct event_base *base = sluice_sync_base(ps->s);
	if (ps->loop)
		sluice_client_set_retry_max(sluice_sync_client(ps->s), CLI_CONSUMER_RETRY_MAX_MS);
	ps->sigint_ev = evsignal_new(base, SIGINT, pull_signal_cb, ps);
	ps->sigterm_ev = evsignal_new(base, SIGTERM, pull_signal_cb, ps);
	if (!ps->sigint_ev || !ps->sigterm_ev) {
		rc = cli_report_err(ps->what, SLUICE_ENOMEM, NULL);
		goto done;
	}
	event_add(ps->sigint_ev, NULL);
	event_add(ps->sigterm_ev, NULL);
	pull_next(ps);
	if (!ps->finished)
		event_base_dispatch(base);
	rc = ps->exit_code;
done:
	if (ps->sigint_ev)
		event_free(ps->sigint_ev);
	if (ps->sigterm_ev)
		event_free(ps->sigterm_ev);
	sluice_sync_close(ps->s);
	free(ps->items);
	fflush(stdout);
	return rc;
}

static int cmd_consumer_pull(const struct cli_global *g, int argc, char **argv)
{
	static const struct option lo[] = {{"max", required_argument, 0, 'm'},
					   {"wait-ms", required_argument, 0, 'w'},
					   {"count", required_argument, 0, 'n'},
					   {"follow", no_argument, 0, 'F'},
					   {"no-ack", no_argument, 0, 'A'},
					   {"nack", no_argument, 0, 'K'},
					   {"delay-ms", required_argument, 0, 'd'},
					   {"format", required_argument, 0, 'o'},
					   {0, 0, 0, 0}};
	struct pull_state ps = {.what = "consumer pull", .json = g->json, .max = CLI_PULL_MAX_DEFAULT,
				.delay_ms = -1};
	int ch, has_wait = 0, has_count = 0, follow = 0, no_ack = 0, nack = 0, has_delay = 0;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "m:w:n:", lo, NULL)) != -1) {
		int bad = ch == '?';
		if (ch == 'm')
			bad = cli_parse_u32(optarg, &ps.max) || ps.max == 0 || ps.max > CLI_PULL_MAX;
		else if (ch == 'w')
			bad = cli_parse_u32(optarg, &ps.wait_ms) || ps.wait_ms > CLI_PULL_WAIT_MS_MAX, has_wait = 1;
		else if (ch == 'n')
			bad = cli_parse_u64(optarg, &ps.count), has_count = 1;
		else if (ch == 'F')
			follow = 1;
		else if (ch == 'A')
			no_ack = 1;
		else if (ch == 'K')
			nack = 1;
		else if (ch == 'd')
			bad = cli_parse_i64(optarg, &ps.delay_ms) || ps.delay_ms < 0, has_delay = 1;
		else if (ch == 'o')
			bad = strcmp(optarg, "raw") && strcmp(optarg, "json") ? 1 : (ps.json = !strcmp(optarg, "json"), 0);
		if (bad) {
			consumer_usage(stderr);
			return EX_USAGE;
		}
	}
	if (optind + 1 != argc || (no_ack && nack) || (has_delay && !nack) || (follow && ps.count > 0)) {
		consumer_usage(stderr);
		return EX_USAGE;
	}
	ps.name = argv[optind];
	ps.loop = follow || has_count;
	ps.ack = no_ack ? PULL_NO_ACK : nack ? PULL_NACK : PULL_ACK;
	if (!has_wait)
		ps.wait_ms = ps.loop ? CLI_PULL_WAIT_MS_LOOP : CLI_PULL_WAIT_MS_ONCE;
	return pull_run(g, &ps);
}

int consumer_sub(const struct cli_global *g, const char *name, uint64_t count, int json)
{
	struct pull_state ps = {.what = "sub", .name = name, .json = json, .loop = 1, .ack = PULL_ACK,
				.max = CLI_PULL_MAX_DEFAULT, .wait_ms = CLI_PULL_WAIT_MS_LOOP, .count = count};
	return pull_run(g, &ps);
}

int consumer_main(const struct cli_global *g, int argc, char **argv)
{
	if (argc < 2 || cli_want_help(argc, argv)) {
		consumer_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? EX_USAGE : EX_OK;
	}
	const char *sub = argv[1];
	if (!strcmp(sub, "create"))
		return cmd_consumer_create(g, argc - 1, argv + 1);
	if (!strcmp(sub, "delete"))
		return cmd_consumer_delete(g, argc - 1, argv + 1);
	if (!strcmp(sub, "list"))
		return cmd_consumer_query(g, argc - 1, argv + 1, 0);
	if (!strcmp(sub, "describe"))
		return cmd_consumer_query(g, argc - 1, argv + 1, 1);
	if (!strcmp(sub, "pull"))
		return cmd_consumer_pull(g, argc - 1, argv + 1);
	consumer_usage(stderr);
	return EX_USAGE;
}

/* ---------- dlq replay ---------- */

/* A topic messages are replayed to: its partition count, once asked. */
struct dlq_target {
	char name[256];
	uint32_t partitions;     /* 0: the topic does not exist (publishes to it fail) */
};

struct dlq_state {
	struct sluice_sync *s;
	const char *to;
	uint64_t count, seen, replayed, failed, inflight;
	uint64_t next;           /* offset after the last message handled in this partition */
	uint64_t end;            /* this partition's end when the command started */
	char need[256];          /* a target topic to describe before going on; "" if none */
	int first_err;
	char first_msg[256];
	struct dlq_target targets[CLI_DLQ_TARGETS_MAX];
	size_t targets_n;
};

static void dlq_fail(struct dlq_state *ds, int err, const char *msg)
{
	ds->failed++;
	if (!ds->first_err) {
		ds->first_err = err;
		snprintf(ds->first_msg, sizeof(ds->first_msg), "%s", msg ? msg : sluice_strerror(err));
	}
}

static void dlq_ack_cb(void *arg, int err, const char *errmsg, uint32_t partition, uint64_t offset,
		       int64_t timestamp_ms, int duplicate)
{
	struct dlq_state *ds = arg;
	(void)partition, (void)offset, (void)timestamp_ms, (void)duplicate;
	ds->inflight--;
	if (err)
		dlq_fail(ds, err, errmsg);
	else
		ds->replayed++;
}

static const struct sluice_bytes *dlq_header(const struct sluice_msg *m, const char *key)
{
	for (size_t i = 0; i < m->headers_n; i++)
		if (m->headers[i].key && !strcmp(m->headers[i].key, key))
			return &m->headers[i].value;
	return NULL;
}

/* A header's bytes as a string into buf; 0, or -1 if absent or too long. */
static int dlq_header_str(const struct sluice_msg *m, const char *key, char *buf, size_t len)
{
	const struct sluice_bytes *v = dlq_header(m, key);
	if (!v || v->len == 0 || v->len >= len || memchr(v->base, 0, v->len))
		return -1;
	memcpy(buf, v->base, v->len);
	buf[v->len] = 0;
	return 0;
}

static const struct dlq_target *dlq_target_find(const struct dlq_state *ds, const char *name)
{
	for (size_t i = 0; i < ds->targets_n; i++)
		if (!strcmp(ds->targets[i].name, name))
			return &ds->targets[i];
	return NULL;
}

/* Publish m to t; the copy of its headers leaves out the sluice-dlq-* ones. */
static void dlq_publish(struct dlq_state *ds, const struct sluice_msg *m, const struct dlq_target *t)
{
	struct sluice_header hs[CLI_DLQ_HEADERS_MAX];
	struct sluice_pub p = {.topic = t->name, .key = m->key, .payload = m->payload, .headers = hs};
	char part[16];
	uint32_t partition;
	if (m->headers_n > CLI_DLQ_HEADERS_MAX) {
		dlq_fail(ds, SLUICE_ETOOLARGE, "a dead letter with too many headers");
		return;
	}
	for (size_t i = 0; i < m->headers_n; i++)
		if (strncmp(m->headers[i].key, CLI_DLQ_PREFIX, strlen(CLI_DLQ_PREFIX)))
			hs[p.headers_n++] = m->headers[i];
	if (dlq_header_str(m, CLI_DLQ_PREFIX "partition", part, sizeof(part)) == 0 &&
	    cli_parse_u32(part, &partition) == 0 && partition < t->partitions) {
		p.has_partition = 1;
		p.partition = partition;
	}
	int err = sluice_publish(sluice_sync_client(ds->s), &p, dlq_ack_cb, ds);
	if (err)
		dlq_fail(ds, err, NULL);
	else
		ds->inflight++;
}

/* Per fetched message (inside the fetch's callback). Stops at a target
 * topic not described yet: ds->need names it, and the page is fetched again
 * from ds->next once it is known. */
static void dlq_msg_fn(void *arg, const struct sluice_msg *m)
{
	struct dlq_state *ds = arg;
	char topic[256];
	if (ds->need[0] || m->offset < ds->next || m->offset >= ds->end || (ds->count && ds->seen >= ds->count))
		return;
	if (ds->to)
		snprintf(topic, sizeof(topic), "%s", ds->to);
	else if (dlq_header_str(m, CLI_DLQ_PREFIX "topic", topic, sizeof(topic)) != 0)
		topic[0] = 0;
	if (topic[0]) {
		const struct dlq_target *t = dlq_target_find(ds, topic);
		if (!t && ds->targets_n < CLI_DLQ_TARGETS_MAX) {
			snprintf(ds->need, sizeof(ds->need), "%s", topic);
			return;
		}
		if (t)
			dlq_publish(ds, m, t);
		else
			dlq_fail(ds, SLUICE_ETOOMANY, "too many original topics in one replay");
	} else {
		dlq_fail(ds, SLUICE_EINVAL, "a dead letter without a sluice-dlq-topic header (give --to)");
	}
	ds->seen++;
	ds->next = m->offset + 1;
}

/* A topic's partitions, copied out of a describe answer. */
struct dlq_describe {
	struct cons_result r;
	struct sluice_partition_info *parts;
	size_t parts_n;
};

static void dlq_describe_cb(void *arg, int err, const char *errmsg, const struct sluice_topic_info *ti)
{
	struct dlq_describe *d = arg;
	if (err == SLUICE_OK && ti) {
		d->parts = calloc(ti->parts_n + 1, sizeof(*d->parts));
		if (d->parts) {
			memcpy(d->parts, ti->parts, ti->parts_n * sizeof(*d->parts));
			d->parts_n = ti->parts_n;
		} else {
			err = SLUICE_ENOMEM;
		}
	}
	cons_result_set(&d->r, err, errmsg);
}

/* Describe topic into d (free d->parts). */
static int dlq_describe(struct dlq_state *ds, const char *topic, struct dlq_describe *d)
{
	memset(d, 0, sizeof(*d));
	return cons_wait(ds->s, sluice_topic_describe(sluice_sync_client(ds->s), topic, dlq_describe_cb, d), &d->r);
}

/* Learn ds->need's partition count (0 if it does not exist). */
static int dlq_target_add(struct dlq_state *ds)
{
	struct dlq_target *t = &ds->targets[ds->targets_n];
	struct dlq_describe d;
	memset(t, 0, sizeof(*t));
	snprintf(t->name, sizeof(t->name), "%s", ds->need);
	int err = dlq_describe(ds, t->name, &d);
	free(d.parts);
	if (err && err != SLUICE_ENOTOPIC)
		return cli_report_err("dlq replay", err, d.r.msg);
	t->partitions = (uint32_t)d.parts_n;
	ds->targets_n++;
	ds->need[0] = 0;
	return EX_OK;
}

static void dlq_wait_acks(struct dlq_state *ds)
{
	/* bounded: every publish is acknowledged or fails after retry_max_ms */
	while (ds->inflight > 0)
		event_base_loop(sluice_sync_base(ds->s), EVLOOP_ONCE);
}

/* Replay one partition of the dead-letter topic, [from, end). */
static int dlq_partition(struct dlq_state *ds, const char *dlq, uint32_t part, uint64_t from, uint64_t end)
{
	char msg[256];
	ds->next = from;
	ds->end = end;
	while (ds->next < end && !(ds->count && ds->seen >= ds->count)) {
		uint64_t before = ds->next, seen = ds->seen;
		int err = sluice_sync_fetch(ds->s, dlq, part, ds->next, CLI_DLQ_PAGE_MAX, 0, dlq_msg_fn, ds, NULL, msg,
					    sizeof(msg));
		dlq_wait_acks(ds);
		if (err)
			return cli_report_err("dlq replay", err, msg);
		if (ds->need[0]) {
			int rc = dlq_target_add(ds);
			if (rc)
				return rc;
			continue;
		}
		if (ds->next == before && ds->seen == seen)
			break; /* nothing more below the end (removed by retention meanwhile) */
	}
	return EX_OK;
}

static int dlq_replay(const struct cli_global *g, struct dlq_state *ds, const char *dlq, uint64_t from)
{
	struct dlq_describe d = {0};
	int rc = cli_connect(g, 0, &ds->s);
	if (rc)
		return rc;
	sluice_client_set_retry_max(sluice_sync_client(ds->s), CLI_CONSUMER_RETRY_MAX_MS);
	int err = dlq_describe(ds, dlq, &d);
	if (err) {
		rc = cli_report_err("dlq replay", err, d.r.msg);
		goto done;
	}
	/* the ends now: what is dead-lettered while this runs waits for the next replay */
	for (size_t i = 0; i < d.parts_n && rc == EX_OK; i++) {
		uint64_t start = from > d.parts[i].first_offset ? from : d.parts[i].first_offset;
		if (start < d.parts[i].end_offset)
			rc = dlq_partition(ds, dlq, d.parts[i].partition, start, d.parts[i].end_offset);
	}
done:
	dlq_wait_acks(ds);
	sluice_sync_close(ds->s);
	free(d.parts);
	return rc;
}

static int cmd_dlq_replay(const struct cli_global *g, int argc, char **argv)
{
	static const struct option lo[] = {{"to", required_argument, 0, 't'},
					   {"from", required_argument, 0, 'f'},
					   {"count", required_argument, 0, 'n'},
					   {0, 0, 0, 0}};
	struct dlq_state ds = {0};
	uint64_t from = 0;
	int ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "t:f:n:", lo, NULL)) != -1) {
		int bad = ch == '?';
		if (ch == 't')
			ds.to = optarg;
		else if (ch == 'f')
			bad = strcmp(optarg, "earliest") ? cli_parse_u64(optarg, &from) : 0;
		else if (ch == 'n')
			bad = cli_parse_u64(optarg, &ds.count);
		if (bad) {
			dlq_usage(stderr);
			return EX_USAGE;
		}
	}
	if (optind + 1 != argc) {
		dlq_usage(stderr);
		return EX_USAGE;
	}
	const char *dlq = argv[optind];
	int rc = dlq_replay(g, &ds, dlq, from);
	if (rc)
		return rc;
	if (g->json)
		cli_json_print(json_pack("{s:s, s:I, s:I}", "dlq", dlq, "replayed", (json_int_t)ds.replayed, "failed",
					 (json_int_t)ds.failed));
	else
		printf("replayed %" PRIu64 " message%s from %s\n", ds.replayed, ds.replayed == 1 ? "" : "s", dlq);
	if (ds.failed) {
		fprintf(stderr, "%s: dlq replay: %" PRIu64 " failed; first error: %s\n", prog, ds.failed,
			ds.first_msg);
		return ds.replayed == 0 ? cli_exit_code(ds.first_err) : EX_TEMPFAIL;
	}
	return EX_OK;
}

int dlq_main(const struct cli_global *g, int argc, char **argv)
{
	if (argc < 2 || cli_want_help(argc, argv)) {
		dlq_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? EX_USAGE : EX_OK;
	}
	if (!strcmp(argv[1], "replay"))
		return cmd_dlq_replay(g, argc - 1, argv + 1);
	dlq_usage(stderr);
	return EX_USAGE;
}
