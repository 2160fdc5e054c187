/*
 * lw_auth.c: security changes (RM_AUTH) applied at commit on every node
 * alike (docs/security.md): principals, their keys and permissions, the
 * token signing key. Each change is also an audit entry naming the
 * principal who made it, in the same transaction.
 *
 * The request is a JSON command from a frontend that checked the caller's
 * cluster permission:
 *   {"op":"put","name":N,"keys":[...],"perms":[...],"remove":false,"by":P}
 *       add (remove: take away) keys and permissions; the principal is made
 *       if missing (not on remove)
 *   {"op":"remove","name":N,"by":P}
 *   {"op":"init","public_key":K,"sealed":S,"by":P}   once: the signing key
 * Everything is checked again here (names, keys, permissions): a key that
 * belongs to another principal is refused. A principal's record is
 *   {"created_by","created_ms","keys":[...],"name","perms":[...]}
 * (sorted keys: the same bytes on every node). Frontends reload what they
 * cached when shm auth_gen moves (bumped after the commit).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "auth_key.h"
#include "auth_perm.h"
#include "auth_principal.h"
#include "err.h"
#include "log.h"
#include "lw_int.h"

#define AUTH_KEYS_MAX 16
#define AUTH_PERMS_MAX 64
#define AUTH_CMD_BYTES_MAX 16384

static int answer(struct lw *w, const struct lw_req *rq, struct lw_answers *out, int err)
{
	if (err && !sl_err_is_wire(err))
		return err;
	return lw_answer_add(w, rq, out, (uint32_t)err, 0, 0, 0, 0, 0, 0, 0);
}

/* Index of the string s in array a, or -1. */
static int str_index(json_t *a, const char *s)
{
	size_t i;
	json_t *v;
	json_array_foreach(a, i, v) if (json_is_string(v) && strcmp(json_string_value(v), s) == 0) return (int)i;
	return -1;
}

/* Canonical permission strings of a (refused: SL_EINVAL). */
static json_t *perms_canonical(json_t *a)
{
	json_t *out = json_array(), *v;
	size_t i;
	if (!out || !json_is_array(a) || json_array_size(a) > AUTH_PERMS_MAX)
		goto bad;
	json_array_foreach(a, i, v)
	{
		struct auth_perm p;
		char s[AUTH_PERM_CHARS_MAX];
		const char *t = json_string_value(v);
		if (!t || auth_perm_parse(t, strlen(t), &p, NULL, 0) != SL_OK || auth_perm_format(&p, s, sizeof(s)))
			goto bad;
		json_array_append_new(out, json_string(s));
	}
	return out;
bad:
	json_decref(out);
	return NULL;
}

/* The keys of a, checked (parsed into pks). */
static int keys_parse(json_t *a, uint8_t pks[][AUTH_PK_BYTES], size_t *n)
{
	json_t *v;
	size_t i;
	if (!json_is_array(a) || json_array_size(a) > AUTH_KEYS_MAX)
		return SL_EINVAL;
	json_array_foreach(a, i, v)
	{
		const char *t = json_string_value(v);
		if (!t || auth_pubkey_parse(t, strlen(t), pks[i]) != SL_OK)
			return SL_EINVAL;
	}
	*n = json_array_size(a);
	return SL_OK;
}

/* The stored record of name, or a new one (*made = 1). */
static json_t *principal_load(struct lw *w, const char *name, const char *by, int *made)
{
	struct slice j;
	json_error_t e;
	*made = 0;
	if (store_principal_get(w->txn, name, &j) == SL_OK) {
		json_t *p = json_loadb((const char *)j.base, j.len, 0, &e);
		if (json_is_object(p) && json_is_array(json_object_get(p, "keys")) &&
		    json_is_array(json_object_get(p, "perms")))
			return p;
		json_decref(p);
		log_error("auth: the record of principal %s is unreadable; it is replaced", name);
	}
	*made = 1;
	return json_pack("{s:s,s:[],s:[],s:I,s:s}", "name", name, "keys", "perms", "created_ms", (json_int_t)w->batch_ts,
			 "created_by", by);
}

static int principal_save(struct lw *w, const char *name, json_t *p)
{
	char *s = json_dumps(p, JSON_COMPACT | JSON_SORT_KEYS);
	if (!s)
		return SL_ENOMEM;
	int rc = store_principal_put(w->txn, name, slice_cstr(s));
	free(s);
	return rc;
}

/* Add (or with remove, take away) keys to p; the key index follows. */
static int put_keys(struct lw *w, const char *name, json_t *p, json_t *keys, int remove)
{
	uint8_t pks[AUTH_KEYS_MAX][AUTH_PK_BYTES];
	size_t n = 0;
	json_t *have = json_object_get(p, "keys");
	if (keys && keys_parse(keys, pks, &n) != SL_OK)
		return SL_EINVAL;
	for (size_t i = 0; i < n && !remove; i++) {
		/* every key checked before anything is written: a refusal changes nothing */
		char owner[AUTH_PRINCIPAL_BYTES_MAX + 1];
		int rc = store_auth_key_get(w->txn, pks[i], owner);
		if (rc != SL_OK && rc != SL_ENOTFOUND)
			return rc;
		if (rc == SL_OK && strcmp(owner, name) != 0)
			return SL_EINVAL; /* one key, one principal */
	}
	if (!remove && json_array_size(have) + n > AUTH_KEYS_MAX)
		return SL_ETOOMANY;
	for (size_t i = 0; i < n; i++) {
		char owner[AUTH_PRINCIPAL_BYTES_MAX + 1], text[AUTH_PUBKEY_CHARS];
		int rc = store_auth_key_get(w->txn, pks[i], owner);
		if (rc != SL_OK && rc != SL_ENOTFOUND)
			return rc;
		auth_pubkey_format(pks[i], text, sizeof(text));
		int at = str_index(have, text);
		if (remove) {
			if (at >= 0)
				json_array_remove(have, (size_t)at);
			if (rc == SL_OK && strcmp(owner, name) == 0 && (rc = store_auth_key_del(w->txn, pks[i])) != SL_OK)
				return rc;
			continue;
		}
		if (at < 0)
			json_array_append_new(have, json_string(text));
		if ((rc = store_auth_key_put(w->txn, pks[i], name)) != SL_OK)
			return rc;
	}
	return SL_OK;
}

static int put_perms(json_t *p, json_t *perms, int remove)
{
	json_t *canon = perms ? perms_canonical(perms) : json_array(), *have = json_object_get(p, "perms"), *v;
	size_t i;
	int rc = SL_OK;
	if (!canon)
		return SL_EINVAL;
	json_array_foreach(canon, i, v)
	{
		int at = str_index(have, json_string_value(v));
		if (remove && at >= 0)
			json_array_remove(have, (size_t)at);
		else if (!remove && at < 0 && json_array_size(have) >= AUTH_PERMS_MAX)
			rc = SL_ETOOMANY;
		else if (!remove && at < 0)
			json_array_append(have, v);
	}
	json_decref(canon);
	return rc;
}

static int do_put(struct lw *w, json_t *cmd, const char *name, const char *by)
{
	int remove = json_is_true(json_object_get(cmd, "remove")), made = 0;
	json_t *p = principal_load(w, name, by, &made);
	if (!p)
		return SL_ENOMEM;
	int rc = remove && made ? SL_ENOTFOUND : SL_OK;
	/* permissions first: they only change p, so a refusal there writes nothing */
	if (rc == SL_OK)
		rc = put_perms(p, json_object_get(cmd, "perms"), remove);
	if (rc == SL_OK)
		rc = put_keys(w, name, p, json_object_get(cmd, "keys"), remove);
	if (rc == SL_OK)
		rc = principal_save(w, name, p);
	json_decref(p);
	return rc;
}

static int drop_key_cb(struct lw *w, const char *name, json_t *keys)
{
	json_t *v;
	size_t i;
	json_array_foreach(keys, i, v)
	{
		uint8_t pk[AUTH_PK_BYTES];
		char owner[AUTH_PRINCIPAL_BYTES_MAX + 1];
		const char *t = json_string_value(v);
		if (!t || auth_pubkey_parse(t, strlen(t), pk) != SL_OK)
			continue;
		if (store_auth_key_get(w->txn, pk, owner) == SL_OK && strcmp(owner, name) == 0) {
			int rc = store_auth_key_del(w->txn, pk);
			if (rc)
				return rc;
		}
	}
	return SL_OK;
}

static int do_remove(struct lw *w, const char *name)
{
	struct slice j;
	json_error_t e;
	int rc = store_principal_get(w->txn, name, &j);
	if (rc)
		return rc;
	json_t *p = json_loadb((const char *)j.base, j.len, 0, &e);
	rc = json_is_object(p) ? drop_key_cb(w, name, json_object_get(p, "keys")) : SL_OK;
	json_decref(p);
	return rc ? rc : store_principal_put(w->txn, name, slice_make(NULL, 0));
}

static int do_init(struct lw *w, json_t *cmd)
{
	struct slice have;
	uint8_t pk[AUTH_PK_BYTES];
	const char *k = json_string_value(json_object_get(cmd, "public_key"));
	const char *sealed = json_string_value(json_object_get(cmd, "sealed"));
	if (!k || auth_pubkey_parse(k, strlen(k), pk) != SL_OK || !sealed || !sealed[0] || strlen(sealed) > 1024)
		return SL_EINVAL;
	if (store_auth_signing_get(w->txn, &have) == SL_OK)
		return SL_ETOPIC_EXISTS; /* once: a new key would void every token issued */
	json_t *s = json_pack("{s:s,s:s,s:I}", "public_key", k, "sealed", sealed, "created_ms", (json_int_t)w->batch_ts);
	char *txt = s ? json_dumps(s, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(s);
	if (!txt)
		return SL_ENOMEM;
	int rc = store_auth_signing_put(w->txn, slice_cstr(txt));
	free(txt);
	return rc;
}

/* The command, minus who made it: the audit entry's detail. */
static int audit(struct lw *w, json_t *cmd, const char *by, const char *action)
{
	json_t *d = json_deep_copy(cmd);
	if (!d)
		return SL_ENOMEM;
	json_object_del(d, "by");
	json_object_del(d, "op");
	json_object_del(d, "sealed");
	char *s = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(d);
	if (!s)
		return SL_ENOMEM;
	struct slice detail = slice_cstr(s);
	if (detail.len > STORE_AUDIT_DETAIL_MAX)
		detail.len = 0;
	int rc = store_audit_append(w->txn, w->batch_ts, by, action, detail, NULL);
	free(s);
	return rc;
}

static int apply_cmd(struct lw *w, json_t *cmd, const char **action)
{
	const char *op = json_string_value(json_object_get(cmd, "op"));
	const char *name = json_string_value(json_object_get(cmd, "name"));
	const char *by = json_string_value(json_object_get(cmd, "by"));
	if (!op || !by || !by[0] || strlen(by) > AUTH_PRINCIPAL_BYTES_MAX)
		return SL_EINVAL;
	if (strcmp(op, "init") == 0) {
		*action = "auth.init";
		return do_init(w, cmd);
	}
	if (!name || !auth_principal_ok(name, strlen(name)))
		return SL_EINVAL;
	if (strcmp(op, "put") == 0) {
		*action = json_is_true(json_object_get(cmd, "remove")) ? "principal.revoke" : "principal.put";
		return do_put(w, cmd, name, by);
	}
	if (strcmp(op, "remove") == 0) {
		*action = "principal.remove";
		return do_remove(w, name);
	}
	return SL_EINVAL;
}

int lw_auth_apply(struct lw *w, const struct lw_req *rq, struct lw_answers *out)
{
	struct rm_auth m;
	json_error_t e;
	const char *action = NULL;
	if (rq->len < sizeof(m))
		return answer(w, rq, out, SL_EMALFORMED);
	memcpy(&m, rq->p, sizeof(m));
	if (sizeof(m) + (size_t)m.json_len != rq->len || m.json_len == 0 || m.json_len > AUTH_CMD_BYTES_MAX)
		return answer(w, rq, out, SL_EMALFORMED);
	json_t *cmd = json_loadb((const char *)rq->p + sizeof(m), m.json_len, JSON_REJECT_DUPLICATES, &e);
	int rc = json_is_object(cmd) ? apply_cmd(w, cmd, &action) : SL_EMALFORMED;
	if (rc == SL_ENOTFOUND)
		rc = SL_EINVAL; /* no such principal: the client's error, not this node's (a non-wire code stops the logwriter) */
	if (rc == SL_OK)
		rc = audit(w, cmd, json_string_value(json_object_get(cmd, "by")), action);
	if (rc == SL_OK) {
		w->auth_changed = 1;
		const char *name = json_string_value(json_object_get(cmd, "name"));
		log_info("auth: %s %s by %s", action, name ? name : "", json_string_value(json_object_get(cmd, "by")));
	}
	json_decref(cmd);
	return answer(w, rq, out, rc);
}
