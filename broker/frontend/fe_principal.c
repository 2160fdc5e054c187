/*
 * fe_principal.c: what each request needs (fe_auth_frame), and the
 * security admin requests (docs/security.md):
 *
 *   publish    Publish, PublishBatch                        on the topic
 *   subscribe  Subscribe, Fetch                             on the topic
 *   consume    Pull, AckMessages (the consumer's topic), CommitOffset
 *   admin      CreateTopic, DeleteTopic; CreateConsumer, DeleteConsumer,
 *              UpdateWebhook, SeekConsumer (the consumer's topic)
 *   cluster    TransferLeader, PutPrincipal, RemovePrincipal,
 *              ListPrincipals, AuthInit, IssueToken, ListAudit (on "cluster")
 *   identity   the rest: lists and descriptions, status (any principal)
 *
 * Principal changes and AuthInit are RM_AUTH records to the log (a JSON
 * command, replica/logwriter/lw_auth.c) carrying who asked; lists, tokens
 * and the audit trail are answered here from the store.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "auth_key.h"
#include "auth_perm.h"
#include "auth_principal.h"
#include "auth_token.h"
#include "err.h"
#include "fe_auth.h"
#include "fe_int.h"
#include "ringmsg.h"
#include "store.h"

#define AUDIT_MAX_DEFAULT 100
#define AUDIT_MAX 200
#define AUDIT_DETAIL_SHOWN 1024 /* bytes of each entry's detail in a list (a frame stays small) */
#define LIST_MAX 4096
#define CLUSTER_RESOURCE "cluster"

/* The topic of a durable consumer ("" if it does not exist: the request then fails on its own). */
static void consumer_topic(struct fe *fe, const char *name, char *topic, size_t cap)
{
	struct store_txn *t = NULL;
	struct store_consumer sc;
	topic[0] = 0;
	if (!name || store_txn_begin(fe->store, 0, &t) != SL_OK)
		return;
	if (store_consumer_get(t, name, strlen(name), &sc) == SL_OK)
		snprintf(topic, cap, "%s", sc.topic);
	store_txn_abort(t);
}

int fe_auth_frame(struct fe *fe, struct fe_conn *c, const Sluice__Frame *f, char *why, size_t cap)
{
	char topic[256];
	const char *t = NULL;
	int verb = 0;
	if (!fe_auth_on(fe))
		return SL_OK;
	switch (f->body_case) {
	case SLUICE__FRAME__BODY_HELLO:
	case SLUICE__FRAME__BODY_AUTHENTICATE:
	case SLUICE__FRAME__BODY_CREDIT:
	case SLUICE__FRAME__BODY_UNSUBSCRIBE:
		return SL_OK;
	case SLUICE__FRAME__BODY_PUBLISH:
		verb = AUTH_VERB_PUBLISH, t = f->publish->topic;
		break;
	case SLUICE__FRAME__BODY_PUBLISH_BATCH:
		verb = AUTH_VERB_PUBLISH, t = f->publish_batch->topic;
		break;
	case SLUICE__FRAME__BODY_SUBSCRIBE:
		verb = AUTH_VERB_SUBSCRIBE, t = f->subscribe->topic;
		break;
	case SLUICE__FRAME__BODY_FETCH:
		verb = AUTH_VERB_SUBSCRIBE, t = f->fetch->topic;
		break;
	case SLUICE__FRAME__BODY_COMMIT_OFFSET:
		verb = AUTH_VERB_CONSUME, t = f->commit_offset->topic;
		break;
	case SLUICE__FRAME__BODY_PULL:
		consumer_topic(fe, f->pull->consumer, topic, sizeof(topic));
		verb = AUTH_VERB_CONSUME, t = topic;
		break;
	case SLUICE__FRAME__BODY_ACK_MESSAGES:
		consumer_topic(fe, f->ack_messages->consumer, topic, sizeof(topic));
		verb = AUTH_VERB_CONSUME, t = topic;
		break;
	case SLUICE__FRAME__BODY_CREATE_TOPIC:
		verb = AUTH_VERB_ADMIN, t = f->create_topic->name;
		break;
	case SLUICE__FRAME__BODY_DELETE_TOPIC:
		verb = AUTH_VERB_ADMIN, t = f->delete_topic->name;
		break;
	case SLUICE__FRAME__BODY_CREATE_CONSUMER:
		verb = AUTH_VERB_ADMIN, t = f->create_consumer->config ? f->create_consumer->config->topic : "";
		break;
	case SLUICE__FRAME__BODY_DELETE_CONSUMER:
		consumer_topic(fe, f->delete_consumer->name, topic, sizeof(topic));
		verb = AUTH_VERB_ADMIN, t = topic;
		break;
	case SLUICE__FRAME__BODY_UPDATE_WEBHOOK:
		consumer_topic(fe, f->update_webhook->name, topic, sizeof(topic));
		verb = AUTH_VERB_ADMIN, t = topic;
		break;
	case SLUICE__FRAME__BODY_SEEK_CONSUMER:
		consumer_topic(fe, f->seek_consumer->name, topic, sizeof(topic));
		verb = AUTH_VERB_ADMIN, t = topic;
		break;
	case SLUICE__FRAME__BODY_TRANSFER_LEADER:
	case SLUICE__FRAME__BODY_PUT_PRINCIPAL:
	case SLUICE__FRAME__BODY_REMOVE_PRINCIPAL:
	case SLUICE__FRAME__BODY_LIST_PRINCIPALS:
	case SLUICE__FRAME__BODY_AUTH_INIT:
	case SLUICE__FRAME__BODY_ISSUE_TOKEN:
	case SLUICE__FRAME__BODY_LIST_AUDIT:
		verb = AUTH_VERB_CLUSTER, t = CLUSTER_RESOURCE;
		break;
	default:
		break; /* an identity is enough */
	}
	return fe_auth_allow(fe, c, verb, t ? t : "", why, cap);
}

/* ---------- requests to the log ---------- */

static json_t *str_array(char **v, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < n; i++)
		json_array_append_new(a, json_string(v[i] ? v[i] : ""));
	return a;
}

/* Permissions in their canonical form ("sub:x" is "subscribe:x"; principal_check parsed them). */
static json_t *perm_array(char **v, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < n; i++) {
		struct auth_perm p;
		char s[AUTH_PERM_CHARS_MAX];
		if (auth_perm_parse(v[i], strlen(v[i]), &p, NULL, 0) == SL_OK && auth_perm_format(&p, s, sizeof(s)) == SL_OK)
			json_array_append_new(a, json_string(s));
	}
	return a;
}

/* Checked here too, for a clear error before the log (the logwriter checks again). */
static int principal_check(const Sluice__Principal *p, const char **why)
{
	uint8_t pk[AUTH_PK_BYTES];
	struct auth_perm perm;
	static char w[200];
	if (!p || !p->name || !auth_principal_ok(p->name, strlen(p->name))) {
		*why = "a principal's name is 1 to 64 of [A-Za-z0-9._-]";
		return SL_EINVAL;
	}
	if (!strcmp(p->name, "admin") || !strcmp(p->name, "node") || !strcmp(p->name, "-")) {
		*why = "admin ([auth] admin_key) and node (the node's own clients) are built in, and - names "
		       "requests made with auth off";
		return SL_EINVAL;
	}
	for (size_t i = 0; i < p->n_public_keys; i++)
		if (auth_pubkey_parse(p->public_keys[i], strlen(p->public_keys[i]), pk) != SL_OK) {
			*why = "a public key is sluice-ed25519: and the base64url of 32 bytes (sluice key gen)";
			return SL_EINVAL;
		}
	for (size_t i = 0; i < p->n_permissions; i++)
		if (auth_perm_parse(p->permissions[i], strlen(p->permissions[i]), &perm, w, sizeof(w)) != SL_OK) {
			*why = w;
			return SL_EINVAL;
		}
	return SL_OK;
}

static json_t *command(struct fe_conn *c, const Sluice__Frame *f, const char **why)
{
	const char *by = fe_auth_principal(c);
	char pk[AUTH_PUBKEY_CHARS], sealed[256], w[200];
	static char werr[200];
	switch (f->body_case) {
	case SLUICE__FRAME__BODY_PUT_PRINCIPAL: {
		const Sluice__Principal *p = f->put_principal->principal;
		if (principal_check(p, why) != SL_OK)
			return NULL;
		return json_pack("{s:s,s:s,s:o,s:o,s:b,s:s}", "op", "put", "name", p->name, "keys",
		                 str_array(p->public_keys, p->n_public_keys), "perms",
		                 perm_array(p->permissions, p->n_permissions), "remove", f->put_principal->remove, "by", by);
	}
	case SLUICE__FRAME__BODY_REMOVE_PRINCIPAL:
		if (!auth_principal_ok(f->remove_principal->name, strlen(f->remove_principal->name))) {
			*why = "a principal's name is 1 to 64 of [A-Za-z0-9._-]";
			return NULL;
		}
		return json_pack("{s:s,s:s,s:s}", "op", "remove", "name", f->remove_principal->name, "by", by);
	case SLUICE__FRAME__BODY_AUTH_INIT:
		if (fe_auth_seal_new(c->fe, pk, sizeof(pk), sealed, sizeof(sealed), w, sizeof(w)) != SL_OK) {
			snprintf(werr, sizeof(werr), "%s", w);
			*why = werr;
			return NULL;
		}
		return json_pack("{s:s,s:s,s:s,s:s}", "op", "init", "public_key", pk, "sealed", sealed, "by", by);
	default:
		*why = "not a security request";
		return NULL;
	}
}

int fe_principal_req_size(struct fe_conn *c, const Sluice__Frame *f, uint32_t *len, char **json, const char **why)
{
	json_t *cmd = command(c, f, why);
	*json = cmd ? json_dumps(cmd, JSON_COMPACT) : NULL;
	json_decref(cmd);
	if (!*json) {
		if (cmd)
			*why = "out of memory";
		return SL_EINVAL;
	}
	size_t n = strlen(*json);
	if (n > RM_AUTH_JSON_MAX) {
		free(*json);
		*json = NULL;
		*why = "too many keys or permissions in one request";
		return SL_EINVAL;
	}
	*len = (uint32_t)(sizeof(struct rm_auth) + n);
	return SL_OK;
}

void fe_principal_fill(uint8_t *p, uint64_t cookie, const char *json)
{
	struct rm_auth h = {0};
	h.cookie = cookie;
	h.json_len = (uint32_t)strlen(json);
	memcpy(p, &h, sizeof(h));
	memcpy(p + sizeof(h), json, h.json_len);
}

/* ---------- answered here ---------- */

struct plist {
	Sluice__Principal *v;
	Sluice__Principal **ptrs;
	json_t **docs;
	size_t n;
};

static int plist_cb(void *arg, const char *name, struct slice json)
{
	struct plist *l = arg;
	json_error_t e;
	(void)name;
	if (l->n >= LIST_MAX)
		return 1;
	json_t *d = json_loadb((const char *)json.base, json.len, 0, &e);
	if (!json_is_object(d)) {
		json_decref(d);
		return 0;
	}
	Sluice__Principal *p = &l->v[l->n];
	sluice__principal__init(p);
	l->docs[l->n] = d;
	p->name = (char *)json_string_value(json_object_get(d, "name"));
	p->created_by = (char *)json_string_value(json_object_get(d, "created_by"));
	p->created_ms = json_integer_value(json_object_get(d, "created_ms"));
	json_t *keys = json_object_get(d, "keys"), *perms = json_object_get(d, "perms");
	p->n_public_keys = json_array_size(keys);
	p->public_keys = calloc(p->n_public_keys + 1, sizeof(char *));
	for (size_t i = 0; p->public_keys && i < p->n_public_keys; i++)
		p->public_keys[i] = (char *)json_string_value(json_array_get(keys, i));
	p->n_permissions = json_array_size(perms);
	p->permissions = calloc(p->n_permissions + 1, sizeof(char *));
	for (size_t i = 0; p->permissions && i < p->n_permissions; i++)
		p->permissions[i] = (char *)json_string_value(json_array_get(perms, i));
	if (!p->name || !p->public_keys || !p->permissions) {
		free(p->public_keys);
		free(p->permissions);
		json_decref(d);
		return 0;
	}
	if (!p->created_by)
		p->created_by = "";
	for (size_t i = 0; i < p->n_public_keys; i++)
		if (!p->public_keys[i])
			p->public_keys[i] = "";
	for (size_t i = 0; i < p->n_permissions; i++)
		if (!p->permissions[i])
			p->permissions[i] = "";
	l->ptrs[l->n] = p;
	l->n++;
	return 0;
}

void fe_on_list_principals(struct fe_conn *c, uint64_t req)
{
	struct plist l = {calloc(LIST_MAX, sizeof(*l.v)), calloc(LIST_MAX, sizeof(*l.ptrs)),
	                  calloc(LIST_MAX, sizeof(*l.docs)), 0};
	struct store_txn *t = NULL;
	Sluice__PrincipalList pl = SLUICE__PRINCIPAL_LIST__INIT;
	Sluice__Frame f = SLUICE__FRAME__INIT;
	int rc = l.v && l.ptrs && l.docs ? store_txn_begin(c->fe->store, 0, &t) : SL_ENOMEM;
	if (rc == SL_OK)
		rc = store_principal_foreach(t, plist_cb, &l);
	if (rc == SL_OK) {
		pl.n_principals = l.n;
		pl.principals = l.ptrs;
		f.id = req;
		f.body_case = SLUICE__FRAME__BODY_PRINCIPAL_LIST;
		f.principal_list = &pl;
		fe_send(c, &f);
	} else {
		fe_send_error(c, req, rc == SL_ENOMEM ? SL_EUNAVAILABLE : SL_EINTERNAL, sl_strerror(rc));
	}
	if (t)
		store_txn_abort(t);
	for (size_t i = 0; i < l.n; i++) {
		free(l.v[i].public_keys);
		free(l.v[i].permissions);
		json_decref(l.docs[i]);
	}
	free(l.v);
	free(l.ptrs);
	free(l.docs);
}

void fe_on_issue_token(struct fe_conn *c, uint64_t req, const Sluice__IssueToken *m)
{
	static char tok[AUTH_TOKEN_BYTES_MAX + 1];
	char why[256];
	int64_t exp = 0;
	Sluice__TokenIssued ti = SLUICE__TOKEN_ISSUED__INIT;
	Sluice__Frame f = SLUICE__FRAME__INIT;
	if (!fe_auth_on(c->fe)) {
		fe_send_error(c, req, SL_EINVAL, "this node does not authenticate ([auth] enabled is false)");
		return;
	}
	int rc = fe_auth_issue(c->fe, m->principal ? m->principal : "", m->ttl_s, (const char *const *)m->permissions,
	                       m->n_permissions, m->n_permissions > 0, tok, sizeof(tok), &exp, why, sizeof(why));
	if (rc) {
		fe_send_error(c, req, rc, why);
		return;
	}
	ti.token = tok;
	ti.expires_ms = exp;
	f.id = req;
	f.body_case = SLUICE__FRAME__BODY_TOKEN_ISSUED;
	f.token_issued = &ti;
	fe_send(c, &f);
	sodium_memzero(tok, sizeof(tok));
}

struct alist {
	Sluice__AuditEntry *v;
	Sluice__AuditEntry **ptrs;
	char *text;                 /* principal, action and detail strings, NUL-terminated, back to back */
	size_t n, used, cap;
};

static char *text_put(struct alist *l, const void *p, size_t n)
{
	if (l->used + n + 1 > l->cap)
		return NULL;
	char *s = l->text + l->used;
	memcpy(s, p, n);
	s[n] = 0;
	l->used += n + 1;
	return s;
}

static int alist_cb(void *arg, const struct store_audit *e)
{
	struct alist *l = arg;
	Sluice__AuditEntry *a = &l->v[l->n];
	sluice__audit_entry__init(a);
	a->seq = e->seq;
	a->timestamp_ms = e->ts_ms;
	a->principal = text_put(l, e->principal, strlen(e->principal));
	a->action = text_put(l, e->action, strlen(e->action));
	a->detail = text_put(l, e->detail.base, e->detail.len > AUDIT_DETAIL_SHOWN ? AUDIT_DETAIL_SHOWN : e->detail.len);
	if (!a->principal || !a->action || !a->detail)
		return 1;
	l->ptrs[l->n] = a;
	l->n++;
	return 0;
}

void fe_on_list_audit(struct fe_conn *c, uint64_t req, const Sluice__ListAudit *m)
{
	size_t max = m->max ? (m->max > AUDIT_MAX ? AUDIT_MAX : m->max) : AUDIT_MAX_DEFAULT;
	struct alist l = {calloc(max, sizeof(*l.v)), calloc(max, sizeof(*l.ptrs)), NULL, 0, 0,
	                  max * (AUDIT_DETAIL_SHOWN + 128)};
	struct store_txn *t = NULL;
	Sluice__AuditList al = SLUICE__AUDIT_LIST__INIT;
	Sluice__Frame f = SLUICE__FRAME__INIT;
	l.text = malloc(l.cap);
	int rc = l.v && l.ptrs && l.text ? store_txn_begin(c->fe->store, 0, &t) : SL_ENOMEM;
	if (rc == SL_OK)
		rc = store_audit_foreach(t, m->after, max, alist_cb, &l);
	if (rc == SL_OK) {
		al.n_entries = l.n;
		al.entries = l.ptrs;
		f.id = req;
		f.body_case = SLUICE__FRAME__BODY_AUDIT_LIST;
		f.audit_list = &al;
		fe_send(c, &f);
	} else {
		fe_send_error(c, req, rc == SL_ENOMEM ? SL_EUNAVAILABLE : SL_EINTERNAL, sl_strerror(rc));
	}
	if (t)
		store_txn_abort(t);
	free(l.v);
	free(l.ptrs);
	free(l.text);
}
