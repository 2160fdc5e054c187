/*
 * cli.h: what the `sluice` CLI's files (cli.c, bench.c, bench_sse.c) share: the global
 * options, connecting, and mapping libsluice errors (enum sluice_err) to
 * <sysexits.h> codes.
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

/* `sluice bench ...`: argv[0] is "bench". Returns an exit code. */
int bench_main(const struct cli_global *g, int argc, char **argv);
void bench_usage(FILE *f);
/* `sluice bench sse ...` (bench_sse.c): argv[0] is "bench", argv[optind] "sse". */
int bench_sse_main(const struct cli_global *g, int argc, char **argv);
void bench_sse_usage(FILE *f);

/* `sluice asyncapi ...` (cli_asyncapi.c): argv[0] is "asyncapi". Returns an exit code. */
int asyncapi_main(int argc, char **argv);
void asyncapi_usage(FILE *f);

#endif
