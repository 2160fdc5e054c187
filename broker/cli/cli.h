/*
 * cli.h: what the `sluice` CLI's files (cli.c, cli_consumer.c, bench.c, bench_sse.c,
 * bench_consume.c) share: the global options, connecting, mapping libsluice
 * errors (enum sluice_err) to <sysexits.h> codes, argument parsing and
 * message printing.
 */
#ifndef SLUICE_CLI_H
#define SLUICE_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "sluice/sluice.h"

/* Batching of `sluice pub` and `sluice bench` (--linger-ms, --batch-bytes). */
#define CLI_LINGER_MS_DEFAULT 5
#define CLI_BATCH_BYTES_DEFAULT 262144

struct cli_global {
	const char *server;         /* --server, or NULL for $SLUICE_SERVER / the default */
	const char *tls_ca;         /* --tls-ca: connect with TLS, trusting this CA; NULL: $SLUICE_TLS_CA or plain */
	const char *key;            /* --key FILE: authenticate with this key; NULL: $SLUICE_KEY */
	const char *token;          /* --token T: or with this token; NULL: $SLUICE_TOKEN */
	int json;                   /* --json */
};

/* Exit code for an enum sluice_err value returned by libsluice. */
int cli_exit_code(int err);

/* Client options for g; pipeline_max 0 for the library default. */
struct sluice_client_opts cli_client_opts(const struct cli_global *g, uint32_t pipeline_max);

/* Blocking connection to the server; prints why on failure and returns an exit code (0 on success). */
int cli_connect(const struct cli_global *g, uint32_t pipeline_max, struct sluice_sync **out);
/* The same with options made by cli_client_opts and then adjusted. */
int cli_connect_opts(const struct cli_global *g, const struct sluice_client_opts *o, struct sluice_sync **out);

/* Print "sluice: WHAT: MSG" (or the error's description) on stderr; returns cli_exit_code(err). */
int cli_report_err(const char *what, int err, const char *msg);
/* Decimal parsers: 0, or -1 if s is not a number in range. */
int cli_parse_u64(const char *s, uint64_t *out);
int cli_parse_i64(const char *s, int64_t *out);
int cli_parse_u32(const char *s, uint32_t *out);
/* 1 if argv (after argv[0], up to "--") asks for --help or -h. */
int cli_want_help(int argc, char **argv);
/* Run s's loop until *done is set (bounded by the client's own timeouts). */
void cli_wait_done(struct sluice_sync *s, const int *done);

struct json_t; /* jansson's json_t */
/* Print j as one compact line on stdout and release it (NULL prints nothing). */
void cli_json_print(struct json_t *j);
/* A message as `sluice sub --format json` prints it (new reference). */
struct json_t *cli_msg_json(const struct sluice_msg *m);

/* `sluice consumer ...` (cli_consumer.c): argv[0] is "consumer". Returns an exit code. */
int consumer_main(const struct cli_global *g, int argc, char **argv);
void consumer_usage(FILE *f);
/* `sluice sub --consumer NAME`: pull, print and ack until count messages (0: no limit) or SIGINT. */
int consumer_sub(const struct cli_global *g, const char *name, uint64_t count, int json);
/* `sluice webhook ...` (cli_webhook.c): argv[0] is "webhook". Returns an exit code. */
int webhook_main(const struct cli_global *g, int argc, char **argv);
void webhook_usage(FILE *f);
/* `sluice dlq ...` (cli_consumer.c): argv[0] is "dlq". Returns an exit code. */
int dlq_main(const struct cli_global *g, int argc, char **argv);
void dlq_usage(FILE *f);

/* `sluice bench ...`: argv[0] is "bench". Returns an exit code. */
int bench_main(const struct cli_global *g, int argc, char **argv);
void bench_usage(FILE *f);
/* `sluice bench sse ...` (bench_sse.c): argv[0] is "bench", argv[optind] "sse". */
int bench_sse_main(const struct cli_global *g, int argc, char **argv);
void bench_sse_usage(FILE *f);
/* `sluice bench consume|webhook ...` (bench_consume.c): argv[0] is "bench". */
int bench_consume_main(const struct cli_global *g, int argc, char **argv);
void bench_consume_usage(FILE *f);

/* `sluice key|auth|principal|token|audit ...` (cli_auth.c): argv[0] is the command. */
int auth_main(const struct cli_global *g, int argc, char **argv);
void auth_usage(FILE *f);

/* `sluice asyncapi ...` (cli_asyncapi.c): argv[0] is "asyncapi". Returns an exit code. */
int asyncapi_main(int argc, char **argv);
void asyncapi_usage(FILE *f);

#endif
