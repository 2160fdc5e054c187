/*
 * cli_auth.c: `sluice key|auth|principal|token|audit` (docs/security.md).
 *
 *   key gen FILE        a new Ed25519 key: FILE (secret, mode 0600) and
 *                       FILE.pub; prints the public key
 *   key show FILE       the public key of a key file
 *   auth init           the cluster's token signing key (once)
 *   principal add NAME [--pubkey KEY]... [--allow PERM]...
 *   principal revoke NAME [--pubkey KEY]... [--allow PERM]...
 *   principal remove NAME | principal list
 *   token issue --principal NAME [--ttl 1h] [--allow PERM]...
 *   audit [--after SEQ] [--max N]
 *
 * Every request but `key` goes to the cluster and needs the cluster
 * permission (the built-in admin has it): `sluice --key admin.key ...`.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include <jansson.h>

#include "auth_key.h"
#include "auth_perm.h"
#include "cli.h"
#include "err.h"
#include "sluice/sluice.h"

#define CLI_AUTH_LIST_MAX 64

struct auth_result {
	int done, err;
	char msg[512];
	json_t *out; /* what to print */
};

static void done_cb(void *arg, int err, const char *errmsg)
{
	struct auth_result *r = arg;
	r->done = 1;
	r->err = err;
	if (err)
		snprintf(r->msg, sizeof(r->msg), "%s", errmsg ? errmsg : sluice_strerror(err));
}

void auth_usage(FILE *f)
{
	fprintf(f, "usage: sluice key gen FILE            a new key: FILE (secret, 0600) and FILE.pub; prints the public key\n"
	           "       sluice key show FILE           the public key of a key file\n"
	           "       sluice auth init               the cluster's token signing key (once; needs [auth] key_file)\n"
	           "       sluice principal add NAME [--pubkey KEY]... [--allow PERM]...\n"
	           "       sluice principal revoke NAME [--pubkey KEY]... [--allow PERM]...\n"
	           "       sluice principal remove NAME\n"
	           "       sluice principal list\n"
	           "       sluice token issue --principal NAME [--ttl 1h] [--allow PERM]...\n"
	           "       sluice audit [--after SEQ] [--max N]\n"
	           "PERM is VERB:PATTERN: publish|pub, subscribe|sub, consume, admin, cluster; PATTERN a topic\n"
	           "name, `*` for one dot-separated segment, a final `>` for the rest (admin and cluster\n"
	           "alone mean `>`). The principal `anonymous` applies to clients without a key or token.\n"
	           "Connect with --key FILE ($SLUICE_KEY) or --token T ($SLUICE_TOKEN).\n");
}

/* ---------- key (local) ---------- */

static int cmd_key(const struct cli_global *g, int argc, char **argv)
{
	struct auth_keypair kp;
	char why[256], pub[AUTH_PUBKEY_CHARS], path[4096];
	if (argc != 3 || (strcmp(argv[1], "gen") && strcmp(argv[1], "show"))) {
		auth_usage(stderr);
		return EX_USAGE;
	}
	if (!strcmp(argv[1], "gen")) {
		if (snprintf(path, sizeof(path), "%s.pub", argv[2]) >= (int)sizeof(path) || auth_key_generate(&kp) ||
		    auth_key_write(argv[2], &kp, AUTH_KEY_EXCL, why, sizeof(why)) != SL_OK ||
		    auth_pubkey_write(path, kp.pk, 0, why, sizeof(why)) != SL_OK) {
			fprintf(stderr, "sluice: key gen: %s\n", why);
			return EX_CANTCREAT;
		}
	} else if (auth_key_read(argv[2], &kp, why, sizeof(why)) != SL_OK) {
		fprintf(stderr, "sluice: key show: %s\n", why);
		return EX_NOINPUT;
	}
	auth_pubkey_format(kp.pk, pub, sizeof(pub));
	if (g->json)
		cli_json_print(json_pack("{s:s,s:s}", "public_key", pub, "file", argv[2]));
	else
		printf("%s\n", pub);
	return EX_OK;
}

/* ---------- requests ---------- */

static int run(const struct cli_global *g, const char *what, int (*start)(struct sluice_client *c, void *a,
                                                                          struct auth_result *r),
               void *a, struct auth_result *r)
{
	struct sluice_sync *s;
	int rc = cli_connect(g, 0, &s);
	if (rc)
		return rc;
	int err = start(sluice_sync_client(s), a, r);
	if (err == SLUICE_OK)
		cli_wait_done(s, &r->done);
	else
		snprintf(r->msg, sizeof(r->msg), "%s", sluice_strerror(err));
	err = err ? err : r->err;
	sluice_sync_close(s);
	if (err) {
		json_decref(r->out);
		return cli_report_err(what, err, r->msg);
	}
	return EX_OK;
}

struct put_args {
	const char *name;
	const char *keys[CLI_AUTH_LIST_MAX], *perms[CLI_AUTH_LIST_MAX];
	size_t nkeys, nperms;
	int remove;
	uint32_t ttl_s;
};

static int put_start(struct sluice_client *c, void *arg, struct auth_result *r)
{
	struct put_args *a = arg;
	struct sluice_principal p = {a->name, a->keys, a->nkeys, a->perms, a->nperms, 0, NULL};
	return sluice_principal_put(c, &p, a->remove, done_cb, r);
}

static int remove_start(struct sluice_client *c, void *arg, struct auth_result *r)
{
	return sluice_principal_remove(c, ((struct put_args *)arg)->name, done_cb, r);
}

static int init_start(struct sluice_client *c, void *arg, struct auth_result *r)
{
	(void)arg;
	return sluice_auth_init(c, done_cb, r);
}

static json_t *strs(const char *const *v, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < n; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

static void list_cb(void *arg, int err, const char *errmsg, const struct sluice_principal *p, size_t n)
{
	struct auth_result *r = arg;
	done_cb(arg, err, errmsg);
	if (err)
		return;
	r->out = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(r->out,
		                      json_pack("{s:s,s:o,s:o,s:I,s:s}", "name", p[i].name, "public_keys",
		                                strs(p[i].public_keys, p[i].public_keys_n), "permissions",
		                                strs(p[i].permissions, p[i].permissions_n), "created_ms",
		                                (json_int_t)p[i].created_ms, "created_by", p[i].created_by ? p[i].created_by : ""));
}

static int list_start(struct sluice_client *c, void *arg, struct auth_result *r)
{
	(void)arg;
	return sluice_principal_list(c, list_cb, r);
}

static void token_cb(void *arg, int err, const char *errmsg, const char *token, int64_t expires_ms)
{
	struct auth_result *r = arg;
	done_cb(arg, err, errmsg);
	if (!err)
		r->out = json_pack("{s:s,s:I}", "token", token, "expires_ms", (json_int_t)expires_ms);
}

static int token_start(struct sluice_client *c, void *arg, struct auth_result *r)
{
	struct put_args *a = arg;
	return sluice_token_issue(c, a->name, a->ttl_s, a->perms, a->nperms, token_cb, r);
}

static void audit_cb(void *arg, int err, const char *errmsg, const struct sluice_audit_entry *e, size_t n)
{
	struct auth_result *r = arg;
	done_cb(arg, err, errmsg);
	if (err)
		return;
	r->out = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(r->out, json_pack("{s:I,s:I,s:s,s:s,s:s}", "seq", (json_int_t)e[i].seq, "timestamp_ms",
		                                        (json_int_t)e[i].timestamp_ms, "principal", e[i].principal,
		                                        "action", e[i].action, "detail", e[i].detail));
}

struct audit_args {
	uint64_t after;
	uint32_t max;
};

static int audit_start(struct sluice_client *c, void *arg, struct auth_result *r)
{
	struct audit_args *a = arg;
	return sluice_audit_list(c, a->after, a->max, audit_cb, r);
}

/* "90", "90s", "15m", "1h", "7d" in seconds; 0 if not one. */
static uint32_t ttl_parse(const char *s)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	unsigned long long mul = !*end ? 1 : !strcmp(end, "s") ? 1 : !strcmp(end, "m") ? 60 : !strcmp(end, "h") ? 3600
	                                 : !strcmp(end, "d") ? 86400 : 0;
	if (end == s || !mul || v == 0 || v > UINT32_MAX / mul)
		return 0;
	return (uint32_t)(v * mul);
}

/* --pubkey, --allow, --principal, --ttl into a; the NAME operand if name_arg. */
static int put_opts(int argc, char **argv, struct put_args *a, int name_arg)
{
	static const struct option lo[] = {{"pubkey", required_argument, 0, 'k'}, {"allow", required_argument, 0, 'a'},
	                                   {"principal", required_argument, 0, 'p'}, {"ttl", required_argument, 0, 't'},
	                                   {0, 0, 0, 0}};
	int ch;
	struct auth_perm perm;
	char why[200];
	optind = 1;
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		if (ch == 'k' && a->nkeys < CLI_AUTH_LIST_MAX)
			a->keys[a->nkeys++] = optarg;
		else if (ch == 'a' && a->nperms < CLI_AUTH_LIST_MAX) {
			if (auth_perm_parse(optarg, strlen(optarg), &perm, why, sizeof(why)) != SL_OK) {
				fprintf(stderr, "sluice: --allow %s: %s\n", optarg, why);
				return -1;
			}
			a->perms[a->nperms++] = optarg;
		} else if (ch == 'p')
			a->name = optarg;
		else if (ch == 't' && (a->ttl_s = ttl_parse(optarg)))
			continue;
		else
			return -1;
	}
	if (name_arg) {
		if (optind + 1 != argc)
			return -1;
		a->name = argv[optind];
	} else if (optind != argc || !a->name) {
		return -1;
	}
	return 0;
}

static void print_principals(const struct cli_global *g, json_t *list)
{
	size_t i;
	json_t *p;
	if (g->json) {
		cli_json_print(json_pack("{s:O}", "principals", list));
		return;
	}
	json_array_foreach(list, i, p)
	{
		printf("%s\n", json_string_value(json_object_get(p, "name")));
		size_t j;
		json_t *v;
		json_array_foreach(json_object_get(p, "public_keys"), j, v) printf("  key   %s\n", json_string_value(v));
		json_array_foreach(json_object_get(p, "permissions"), j, v) printf("  allow %s\n", json_string_value(v));
	}
}

static int cmd_principal(const struct cli_global *g, int argc, char **argv)
{
	struct put_args a = {0};
	struct auth_result r = {0};
	const char *sub = argc >= 2 ? argv[1] : "";
	int rc;
	if (!strcmp(sub, "list") && argc == 2) {
		if ((rc = run(g, "principal list", list_start, NULL, &r)) == EX_OK)
			print_principals(g, r.out);
		json_decref(r.out);
		return rc;
	}
	if ((strcmp(sub, "add") && strcmp(sub, "revoke") && strcmp(sub, "remove")) || put_opts(argc - 1, argv + 1, &a, 1)) {
		auth_usage(stderr);
		return EX_USAGE;
	}
	if (!strcmp(sub, "remove"))
		rc = run(g, "principal remove", remove_start, &a, &r);
	else {
		a.remove = !strcmp(sub, "revoke");
		rc = run(g, a.remove ? "principal revoke" : "principal add", put_start, &a, &r);
	}
	if (rc == EX_OK && g->json)
		cli_json_print(json_pack("{s:s,s:s}", "principal", a.name, "change", sub));
	else if (rc == EX_OK)
		printf("%s %s\n", !strcmp(sub, "add") ? "updated principal" : !strcmp(sub, "revoke") ? "revoked from"
		                                                                                      : "removed principal",
		       a.name);
	return rc;
}

static int cmd_token(const struct cli_global *g, int argc, char **argv)
{
	struct put_args a = {.ttl_s = 3600};
	struct auth_result r = {0};
	if (argc < 2 || strcmp(argv[1], "issue") || put_opts(argc - 1, argv + 1, &a, 0)) {
		auth_usage(stderr);
		return EX_USAGE;
	}
	int rc = run(g, "token issue", token_start, &a, &r);
	if (rc == EX_OK && g->json)
		cli_json_print(json_incref(r.out));
	else if (rc == EX_OK)
		printf("%s\n", json_string_value(json_object_get(r.out, "token")));
	json_decref(r.out);
	return rc;
}

static int cmd_audit(const struct cli_global *g, int argc, char **argv)
{
	static const struct option lo[] = {{"after", required_argument, 0, 'a'}, {"max", required_argument, 0, 'm'},
	                                   {0, 0, 0, 0}};
	struct audit_args a = {0, 0};
	struct auth_result r = {0};
	int ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		if ((ch == 'a' && cli_parse_u64(optarg, &a.after) == 0) || (ch == 'm' && cli_parse_u32(optarg, &a.max) == 0))
			continue;
		auth_usage(stderr);
		return EX_USAGE;
	}
	if (optind != argc) {
		auth_usage(stderr);
		return EX_USAGE;
	}
	int rc = run(g, "audit", audit_start, &a, &r);
	if (rc == EX_OK && g->json) {
		cli_json_print(json_pack("{s:O}", "entries", r.out));
	} else if (rc == EX_OK) {
		size_t i;
		json_t *e;
		json_array_foreach(r.out, i, e) printf("%-6lld %lld %-16s %-18s %s\n",
		                                      (long long)json_integer_value(json_object_get(e, "seq")),
		                                      (long long)json_integer_value(json_object_get(e, "timestamp_ms")),
		                                      json_string_value(json_object_get(e, "principal")),
		                                      json_string_value(json_object_get(e, "action")),
		                                      json_string_value(json_object_get(e, "detail")));
	}
	json_decref(r.out);
	return rc;
}

int auth_main(const struct cli_global *g, int argc, char **argv)
{
	struct auth_result r = {0};
	if (cli_want_help(argc, argv)) {
		auth_usage(stdout);
		return EX_OK;
	}
	if (!strcmp(argv[0], "key"))
		return cmd_key(g, argc, argv);
	if (!strcmp(argv[0], "principal"))
		return cmd_principal(g, argc, argv);
	if (!strcmp(argv[0], "token"))
		return cmd_token(g, argc, argv);
	if (!strcmp(argv[0], "audit"))
		return cmd_audit(g, argc, argv);
	if (argc == 2 && !strcmp(argv[1], "init")) {
		int rc = run(g, "auth init", init_start, NULL, &r);
		if (r.err == SLUICE_ETOPIC_EXISTS)
			fprintf(stderr, "sluice: auth init: (the cluster has its signing key already: it is made once)\n");
		if (rc == EX_OK && g->json)
			cli_json_print(json_pack("{s:b}", "initialised", 1));
		else if (rc == EX_OK)
			printf("the cluster's token signing key is made\n");
		return rc;
	}
	auth_usage(stderr);
	return EX_USAGE;
}
