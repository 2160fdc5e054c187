/*
 * cli_asyncapi.c: `sluice asyncapi`, the node's AsyncAPI 3.0.0 document on
 * stdout. It takes the node's own configuration (--config FILE and the same
 * --KEY VALUE flags as sluiced), opens the node's store read-only and runs
 * the generator the frontend serves GET /v1/asyncapi.json with
 * (broker/frontend/asyncapi.h), so it prints the same document, also while
 * the node is stopped. It runs on the node's host: it reads its data dir.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "asyncapi.h"
#include "cli.h"
#include "config.h"
#include "err.h"
#include "store.h"

#define ASYNCAPI_FLAGS_MAX 128

void asyncapi_usage(FILE *f)
{
	fprintf(f, "usage: sluice asyncapi [--config FILE] [--KEY VALUE]...\n"
		   "  Prints the AsyncAPI 3.0.0 document of a node's topics (what GET /v1/asyncapi.json\n"
		   "  serves). Give it the node's config file and flags, as to sluiced: it reads the topics\n"
		   "  from the node's data dir (read-only) and the servers from [listen] native and http.\n");
}

/* Fill cfg from --config and flags, as sluiced does. An exit code. */
static int asyncapi_config(int argc, char **argv, struct config *cfg)
{
	struct option opts[ASYNCAPI_FLAGS_MAX + 3];
	const char *vals[ASYNCAPI_FLAGS_MAX] = {0}, *file = NULL;
	char err[512];
	size_t n = 0;
	int c, idx;

	for (; config_flag_name(n) && n < ASYNCAPI_FLAGS_MAX; n++)
		opts[n] = (struct option){config_flag_name(n), required_argument, 0, 1};
	opts[n] = (struct option){"config", required_argument, 0, 'c'};
	opts[n + 1] = (struct option){"help", no_argument, 0, 'h'};
	opts[n + 2] = (struct option){0, 0, 0, 0};
	optind = 1;
	while ((c = getopt_long(argc, argv, "c:h", opts, &idx)) != -1) {
		if (c == 1) {
			vals[idx] = optarg;
		} else if (c == 'c') {
			file = optarg;
		} else {
			asyncapi_usage(c == 'h' ? stdout : stderr);
			return c == 'h' ? -1 : EX_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "sluice asyncapi: unexpected argument '%s'\n", argv[optind]);
		return EX_USAGE;
	}
	config_defaults(cfg);
	if (file && config_load_file(cfg, file, err, sizeof(err)) != SL_OK) {
		fprintf(stderr, "sluice asyncapi: %s: %s\n", file, err);
		return EX_CONFIG;
	}
	for (size_t i = 0; i < n; i++)
		if (vals[i] && config_set(cfg, "", config_flag_name(i), vals[i], err, sizeof(err)) != SL_OK) {
			fprintf(stderr, "sluice asyncapi: --%s: %s\n", config_flag_name(i), err);
			return EX_USAGE;
		}
	return EX_OK;
}

int asyncapi_main(int argc, char **argv)
{
	static struct config cfg;
	struct store_opts o;
	struct store *st = NULL;
	json_t *doc = NULL;
	char *text = NULL;
	int rc = asyncapi_config(argc, argv, &cfg);

	if (rc != EX_OK)
		return rc < 0 ? EX_OK : rc;
	memset(&o, 0, sizeof(o));
	o.dir = cfg.data_dir;
	o.map_bytes = cfg.map_bytes;
	o.readonly = 1;
	o.slots_max = cfg.partitions_max;
	rc = store_open(&st, &o);
	if (rc == SL_OK)
		rc = asyncapi_from_store(&cfg, st, &doc);
	if (rc == SL_OK && !(text = asyncapi_dumps(doc)))
		rc = SL_ENOMEM;
	if (rc == SL_OK)
		fputs(text, stdout);
	else
		fprintf(stderr, "sluice asyncapi: cannot read the topics in %s: %s\n", cfg.data_dir, sl_strerror(rc));
	free(text);
	json_decref(doc);
	if (st)
		store_close(st);
	return rc == SL_OK ? EX_OK : rc == SL_ENOMEM ? EX_OSERR : EX_NOINPUT;
}
