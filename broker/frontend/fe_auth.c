/*
 * fe_auth.c: who a connection is and what it may do ([auth] enabled,
 * docs/security.md).
 *
 * Identity: a native connection proves a key with Authenticate (the
 * Ed25519 signature of "sluice-auth-v1" || the HelloOk nonce || the key's
 * base64url, common/auth/auth_challenge.h) or presents a token; an HTTP
 * request presents a token (Authorization: Bearer, access_token, or the
 * cookie sluice_token), checked per request and cached on its connection
 * while it is the same token. Without one, the principal "anonymous"
 * applies if it exists; else only identity-free routes answer.
 *
 * Permissions: a principal's are read from the store (replicated by the
 * log, so every node enforces the same) when first needed and again after
 * shm auth_gen moves, so a change applies to open connections at their
 * next request (and ends their open streams: fe_auth_streams.c). A
 * connection that proved a key stops being that principal once the key is
 * revoked. A token may narrow them further ("perms" claim). The built-in
 * principal admin (the key in [auth] admin_key) may do anything.
 *
 * Every refusal names what is missing: UNAUTHENTICATED when there is no
 * identity (or it does not verify), PERMISSION_DENIED "principal P lacks
 * VERB on TOPIC" when there is one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <sodium.h>

#include "auth_b64.h"
#include "auth_challenge.h"
#include "auth_key.h"
#include "auth_perm.h"
#include "auth_token.h"
#include "config.h"
#include "err.h"
#include "fe_auth.h"
#include "fe_int.h"
#include "log.h"
#include "shm.h"
#include "store.h"
#include "wh_seal.h"

#define FE_AUTH_PERMS_MAX 64
#define ANONYMOUS "anonymous"
#define ADMIN "admin"
#define NODE "node" /* this node's own clients (the webhook deliverer): shm node_seed */

struct fe_ident {
	char principal[AUTH_PRINCIPAL_BYTES_MAX + 1]; /* "" : none yet */
	uint64_t gen;                 /* shm auth_gen when perms were loaded (+1: 0 means never) */
	int found;                    /* the principal exists (perms loaded) and still owns key */
	int key_revoked;              /* not found: the key below no longer belongs to it */
	int has_key;                  /* proved key with Authenticate (else a token or nothing) */
	uint8_t key[AUTH_PK_BYTES];
	struct auth_perm *perms;
	size_t nperms;
	struct auth_perm *narrow;     /* a token's "perms" (NULL: no narrowing) */
	size_t nnarrow;
	int64_t expires_s;            /* a token's exp (0: a key, no expiry) */
	uint8_t token_hash[crypto_generichash_BYTES];
	int has_token;
	uint8_t nonce[AUTH_NONCE_BYTES];
};

static int64_t now_s(void)
{
	return (int64_t)time(NULL);
}

static struct fe_ident *ident(struct fe_conn *c)
{
	if (!c->ident)
		c->ident = calloc(1, sizeof(*c->ident));
	return c->ident;
}

static void ident_clear(struct fe_ident *id)
{
	free(id->perms);
	free(id->narrow);
	memset(id, 0, sizeof(*id) - sizeof(id->nonce));
}

/* 1 if key still belongs to name (the store's key index). */
static int key_still_owned(struct store_txn *t, const uint8_t key[AUTH_PK_BYTES], const char *name)
{
	char owner[AUTH_PRINCIPAL_BYTES_MAX + 1];
	return store_auth_key_get(t, key, owner) == SL_OK && strcmp(owner, name) == 0;
}

void fe_auth_conn_free(struct fe_conn *c)
{
	if (!c->ident)
		return;
	ident_clear(c->ident);
	free(c->ident);
	c->ident = NULL;
}

int fe_auth_on(const struct fe *fe)
{
	return fe->cfg->auth_enabled;
}

/* The admin's permissions: everything. */
static int perms_all(struct fe_ident *id)
{
	static const char *const all[] = {"publish:>", "subscribe:>", "consume:>", "admin:>", "cluster:>"};
	id->perms = calloc(5, sizeof(*id->perms));
	if (!id->perms)
		return SL_ENOMEM;
	for (size_t i = 0; i < 5; i++)
		auth_perm_parse(all[i], strlen(all[i]), &id->perms[i], NULL, 0);
	id->nperms = 5;
	return SL_OK;
}

/* id->principal's permissions from the store (id->found = 0 if it does not exist). */
static int perms_load(struct fe *fe, struct fe_ident *id)
{
	struct store_txn *t = NULL;
	struct slice j;
	json_error_t e;
	free(id->perms);
	id->perms = NULL;
	id->nperms = 0;
	id->found = 0;
	id->key_revoked = 0;
	id->gen = shm_load(&fe->shm->hdr->auth_gen) + 1;
	if (strcmp(id->principal, ADMIN) == 0 || strcmp(id->principal, NODE) == 0) {
		id->found = 1;
		return perms_all(id);
	}
	int rc = store_txn_begin(fe->store, 0, &t);
	if (rc == SL_OK)
		rc = store_principal_get(t, id->principal, &j);
	json_t *p = rc == SL_OK ? json_loadb((const char *)j.base, j.len, 0, &e) : NULL;
	int revoked = rc == SL_OK && id->has_key && !key_still_owned(t, id->key, id->principal);
	if (t)
		store_txn_abort(t);
	if (rc == SL_ENOTFOUND || revoked) {
		id->key_revoked = revoked;
		json_decref(p);
		return SL_OK;
	}
	json_t *a = json_object_get(p, "perms"), *v;
	size_t i;
	if (rc == SL_OK && (!json_is_array(a) || json_array_size(a) > FE_AUTH_PERMS_MAX))
		rc = SL_ECORRUPT;
	if (rc == SL_OK && json_array_size(a) && !(id->perms = calloc(json_array_size(a), sizeof(*id->perms))))
		rc = SL_ENOMEM;
	if (rc == SL_OK) {
		json_array_foreach(a, i, v)
		{
			const char *s = json_string_value(v);
			if (s && auth_perm_parse(s, strlen(s), &id->perms[id->nperms], NULL, 0) == SL_OK)
				id->nperms++;
		}
		id->found = 1;
	}
	json_decref(p);
	return rc;
}

/* The identity that applies to c now: its own, or anonymous. NULL: none. */
static struct fe_ident *effective(struct fe *fe, struct fe_conn *c, const char **why)
{
	struct fe_ident *id = c->ident && c->ident->principal[0] ? c->ident : NULL;
	if (!id) {
		if (!fe->anon && !(fe->anon = calloc(1, sizeof(*fe->anon)))) {
			*why = "out of memory";
			return NULL;
		}
		id = fe->anon;
		snprintf(id->principal, sizeof(id->principal), "%s", ANONYMOUS);
	}
	if (id->expires_s && now_s() >= id->expires_s) {
		*why = "the token expired: get a new one";
		return NULL;
	}
	if (id->gen != shm_load(&fe->shm->hdr->auth_gen) + 1 && perms_load(fe, id) != SL_OK) {
		*why = "the principal's permissions could not be read on this node";
		return NULL;
	}
	if (!id->found) {
		*why = id == fe->anon      ? "authenticate first: a key (Authenticate, sluice --key) or a token "
		                             "(Authorization: Bearer, access_token)"
		       : id->key_revoked ? "the key this connection authenticated with was revoked"
		                         : "the principal no longer exists";
		return NULL;
	}
	return id;
}

/* A stream of id's may run until its token expires: the sweep's timer. */
static void watch_expiry(struct fe *fe, const struct fe_ident *id)
{
	if (id->expires_s && (!fe->auth_expiry_next_s || id->expires_s < fe->auth_expiry_next_s))
		fe->auth_expiry_next_s = id->expires_s;
}

int64_t fe_auth_expires_s(struct fe_conn *c)
{
	return c->ident && c->ident->principal[0] ? c->ident->expires_s : 0;
}

int fe_auth_allow(struct fe *fe, struct fe_conn *c, int verb, const char *topic, char *why, size_t cap)
{
	const char *w = NULL;
	if (!fe->cfg->auth_enabled)
		return SL_OK;
	struct fe_ident *id = effective(fe, c, &w);
	if (!id) {
		snprintf(why, cap, "%s", w);
		return SL_EUNAUTHENTICATED;
	}
	if (verb == 0)
		return SL_OK; /* an identity is enough */
	size_t tl = strlen(topic);
	if (auth_perm_allows(id->perms, id->nperms, verb, topic, tl) &&
	    (!id->narrow || auth_perm_allows(id->narrow, id->nnarrow, verb, topic, tl))) {
		if (verb == AUTH_VERB_SUBSCRIBE)
			watch_expiry(fe, id);
		return SL_OK;
	}
	snprintf(why, cap, "principal %s lacks %s on %s%s", id->principal, auth_verb_name(verb), topic,
	         id->narrow && auth_perm_allows(id->perms, id->nperms, verb, topic, tl) ? " (narrowed by its token)" : "");
	return SL_EPERMISSION;
}

const char *fe_auth_principal(struct fe_conn *c)
{
	if (!c->fe->cfg->auth_enabled)
		return "-";
	return c->ident && c->ident->principal[0] ? c->ident->principal : ANONYMOUS;
}

/* ---------- native: the nonce and Authenticate ---------- */

void fe_auth_hello(struct fe_conn *c, Sluice__HelloOk *ok)
{
	struct fe_ident *id;
	if (!c->fe->cfg->auth_enabled || !(id = ident(c)))
		return;
	auth_challenge_new(id->nonce);
	ok->auth_nonce.data = id->nonce;
	ok->auth_nonce.len = sizeof(id->nonce);
	ok->auth_required = 1;
}

/* The principal a key belongs to: admin ([auth] admin_key) or the store's index. */
static int key_owner(struct fe *fe, const uint8_t pk[AUTH_PK_BYTES], char name[AUTH_PRINCIPAL_BYTES_MAX + 1])
{
	uint8_t admin[AUTH_PK_BYTES];
	const char *ak = fe->cfg->auth_admin_key;
	struct store_txn *t = NULL;
	struct auth_keypair node;
	if (ak[0] && auth_pubkey_parse(ak, strlen(ak), admin) == SL_OK && sodium_memcmp(admin, pk, sizeof(admin)) == 0) {
		snprintf(name, AUTH_PRINCIPAL_BYTES_MAX + 1, "%s", ADMIN);
		return SL_OK;
	}
	if (auth_key_from_seed(fe->shm->hdr->node_seed, &node) == SL_OK && sodium_memcmp(node.pk, pk, sizeof(node.pk)) == 0) {
		sodium_memzero(&node, sizeof(node));
		snprintf(name, AUTH_PRINCIPAL_BYTES_MAX + 1, "%s", NODE);
		return SL_OK;
	}
	sodium_memzero(&node, sizeof(node));
	int rc = store_txn_begin(fe->store, 0, &t);
	if (rc == SL_OK)
		rc = store_auth_key_get(t, pk, name);
	if (t)
		store_txn_abort(t);
	return rc;
}

/* The token signing key's public half, from the store. */
static int signing_pk(struct fe *fe, uint8_t pk[AUTH_PK_BYTES], uint8_t *sealed, size_t cap, size_t *sealed_len)
{
	struct store_txn *t = NULL;
	struct slice j;
	json_error_t e;
	int rc = store_txn_begin(fe->store, 0, &t);
	if (rc == SL_OK)
		rc = store_auth_signing_get(t, &j);
	json_t *o = rc == SL_OK ? json_loadb((const char *)j.base, j.len, 0, &e) : NULL;
	if (t)
		store_txn_abort(t);
	const char *k = json_string_value(json_object_get(o, "public_key"));
	const char *s = json_string_value(json_object_get(o, "sealed"));
	if (rc == SL_OK && (!k || auth_pubkey_parse(k, strlen(k), pk) != SL_OK))
		rc = SL_ECORRUPT;
	if (rc == SL_OK && sealed && (!s || auth_b64_decode(s, strlen(s), sealed, cap, sealed_len) != SL_OK))
		rc = SL_ECORRUPT;
	json_decref(o);
	return rc;
}

int fe_auth_token(struct fe *fe, struct fe_conn *c, const char *token, size_t len, char *why, size_t cap)
{
	struct fe_ident *id = ident(c);
	uint8_t pk[AUTH_PK_BYTES], h[crypto_generichash_BYTES];
	static struct auth_claims cl;
	char w[AUTH_WHY_CHARS];
	if (!id) {
		snprintf(why, cap, "out of memory");
		return SL_ENOMEM;
	}
	crypto_generichash(h, sizeof(h), (const uint8_t *)token, len, NULL, 0);
	if (id->has_token && sodium_memcmp(h, id->token_hash, sizeof(h)) == 0)
		return SL_OK; /* the same token as this connection's last request: checked then */
	ident_clear(id);
	if (signing_pk(fe, pk, NULL, 0, NULL) != SL_OK) {
		snprintf(why, cap, "this cluster issues no tokens yet (sluice auth init)");
		return SL_EUNAUTHENTICATED;
	}
	if (auth_token_check(pk, token, len, NULL, now_s(), &cl, w, sizeof(w)) != SL_OK) {
		snprintf(why, cap, "token refused: %s", w);
		return SL_EUNAUTHENTICATED;
	}
	if (cl.has_perms && !(id->narrow = calloc(cl.nperms ? cl.nperms : 1, sizeof(*id->narrow)))) {
		snprintf(why, cap, "out of memory");
		return SL_ENOMEM;
	}
	if (cl.has_perms) {
		memcpy(id->narrow, cl.perms, cl.nperms * sizeof(*id->narrow));
		id->nnarrow = cl.nperms;
	}
	snprintf(id->principal, sizeof(id->principal), "%s", cl.sub);
	id->expires_s = cl.exp_s;
	memcpy(id->token_hash, h, sizeof(h));
	id->has_token = 1;
	return SL_OK;
}

void fe_auth_anonymous(struct fe_conn *c)
{
	if (c->ident)
		ident_clear(c->ident);
}

static void send_authenticated(struct fe_conn *c, uint64_t req, struct fe_ident *id)
{
	Sluice__Authenticated a = SLUICE__AUTHENTICATED__INIT;
	Sluice__Frame f = SLUICE__FRAME__INIT;
	char text[FE_AUTH_PERMS_MAX][AUTH_PERM_CHARS_MAX];
	char *ptrs[FE_AUTH_PERMS_MAX];
	size_t n = 0;
	for (size_t i = 0; i < id->nperms && n < FE_AUTH_PERMS_MAX; i++)
		if (auth_perm_format(&id->perms[i], text[n], sizeof(text[n])) == SL_OK) {
			ptrs[n] = text[n];
			n++;
		}
	a.principal = id->principal;
	a.n_permissions = n;
	a.permissions = ptrs;
	f.id = req;
	f.body_case = SLUICE__FRAME__BODY_AUTHENTICATED;
	f.authenticated = &a;
	fe_send(c, &f);
}

void fe_auth_on_authenticate(struct fe_conn *c, uint64_t req, const Sluice__Authenticate *m)
{
	struct fe *fe = c->fe;
	struct fe_ident *id = ident(c);
	char why[256], b64[64], name[AUTH_PRINCIPAL_BYTES_MAX + 1];
	const char *w = NULL;
	int rc;
	if (!fe->cfg->auth_enabled) {
		fe_send_error(c, req, SL_EINVAL, "this node does not authenticate ([auth] enabled is false)");
		return;
	}
	if (!id) {
		fe_send_error(c, req, SL_EUNAVAILABLE, "out of memory on this node; retry");
		return;
	}
	if (m->token && m->token[0]) {
		if ((rc = fe_auth_token(fe, c, m->token, strlen(m->token), why, sizeof(why))) != SL_OK) {
			fe_send_error(c, req, rc, why);
			return;
		}
	} else {
		if (m->public_key.len != AUTH_PK_BYTES || m->signature.len != AUTH_SIG_BYTES) {
			fe_send_error(c, req, SL_EUNAUTHENTICATED, "Authenticate needs a 32-byte public_key and a 64-byte "
			                                           "signature, or a token");
			return;
		}
		auth_b64_encode(m->public_key.data, AUTH_PK_BYTES, b64, sizeof(b64), NULL);
		if (auth_challenge_verify(m->public_key.data, id->nonce, b64, strlen(b64), m->signature.data) != SL_OK) {
			fe_send_error(c, req, SL_EUNAUTHENTICATED, "the signature does not verify for this connection's nonce");
			return;
		}
		if (key_owner(fe, m->public_key.data, name) != SL_OK) {
			fe_send_error(c, req, SL_EUNAUTHENTICATED, "no principal has this key (sluice principal add NAME --pubkey KEY)");
			return;
		}
		ident_clear(id);
		snprintf(id->principal, sizeof(id->principal), "%s", name);
		memcpy(id->key, m->public_key.data, AUTH_PK_BYTES);
		id->has_key = strcmp(name, ADMIN) != 0 && strcmp(name, NODE) != 0; /* those keys are not in the store */
	}
	if (!(id = effective(fe, c, &w))) {
		fe_send_error(c, req, SL_EUNAUTHENTICATED, w);
		return;
	}
	send_authenticated(c, req, id);
}

/* ---------- sealing the token signing key ---------- */

/* The nodes' sealing key ([auth] key_file), read once per process. */
static int seal_key(struct fe *fe, uint8_t key[AUTH_SEALKEY_BYTES], char *why, size_t cap)
{
	if (!fe->seal_key_ok) {
		int rc = auth_sealkey_read(fe->cfg->auth_key_file, fe->seal_key, why, cap);
		if (rc)
			return rc;
		fe->seal_key_ok = 1;
	}
	memcpy(key, fe->seal_key, AUTH_SEALKEY_BYTES);
	return SL_OK;
}

int fe_auth_seal_key(struct fe *fe, uint8_t key[AUTH_SEALKEY_BYTES])
{
	char why[160];
	return fe->cfg->auth_key_file[0] ? seal_key(fe, key, why, sizeof(why)) : SL_ENOTFOUND;
}

int fe_auth_seal_new(struct fe *fe, char *pk_text, size_t pk_cap, char *sealed_b64, size_t sealed_cap, char *why,
                     size_t cap)
{
	uint8_t key[crypto_secretbox_KEYBYTES], box[crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + AUTH_SK_BYTES];
	struct auth_keypair kp;
	int rc = seal_key(fe, key, why, cap);
	if (rc)
		return rc;
	auth_key_generate(&kp);
	randombytes_buf(box, crypto_secretbox_NONCEBYTES);
	crypto_secretbox_easy(box + crypto_secretbox_NONCEBYTES, kp.sk, sizeof(kp.sk), box, key);
	sodium_memzero(&kp.sk, sizeof(kp.sk));
	sodium_memzero(key, sizeof(key));
	if (auth_pubkey_format(kp.pk, pk_text, pk_cap) != SL_OK ||
	    auth_b64_encode(box, sizeof(box), sealed_b64, sealed_cap, NULL) != SL_OK) {
		snprintf(why, cap, "internal: key text");
		return SL_EINTERNAL;
	}
	return SL_OK;
}

int fe_auth_issue(struct fe *fe, const char *principal, uint32_t ttl_s, const char *const *perms, size_t nperms,
                  int narrow, char *out, size_t cap, int64_t *expires_ms, char *why, size_t why_cap)
{
	uint8_t key[crypto_secretbox_KEYBYTES], pk[AUTH_PK_BYTES], sk[AUTH_SK_BYTES];
	uint8_t box[crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + AUTH_SK_BYTES];
	size_t bl = 0;
	int rc = signing_pk(fe, pk, box, sizeof(box), &bl);
	if (rc == SL_ENOTFOUND) {
		snprintf(why, why_cap, "no signing key yet: run sluice auth init");
		return SL_EINVAL;
	}
	if (rc == SL_OK && bl != sizeof(box))
		rc = SL_ECORRUPT;
	if (rc) {
		snprintf(why, why_cap, "the signing key cannot be read on this node");
		return rc == SL_ECORRUPT ? SL_EINTERNAL : rc;
	}
	if ((rc = seal_key(fe, key, why, why_cap)) != SL_OK)
		return SL_EINVAL;
	rc = crypto_secretbox_open_easy(sk, box + crypto_secretbox_NONCEBYTES, bl - crypto_secretbox_NONCEBYTES, box, key);
	sodium_memzero(key, sizeof(key));
	if (rc != 0) {
		snprintf(why, why_cap, "auth.key_file on this node is not the key the signing key was sealed with");
		return SL_EINVAL;
	}
	int64_t now = now_s();
	rc = auth_token_issue(sk, principal, ttl_s, NULL, narrow ? perms : NULL, nperms, now, out, cap, NULL);
	sodium_memzero(sk, sizeof(sk));
	if (rc) {
		snprintf(why, why_cap, "cannot issue: bad principal, ttl (1 s to 366 days) or permission");
		return SL_EINVAL;
	}
	*expires_ms = (now + ttl_s) * 1000;
	return SL_OK;
}

/* ---------- webhook secrets at rest ---------- */

/* *field (a webhook settings JSON or patch, owned by the decoded frame)
 * replaced by the same with its secrets sealed. */
static int seal_field(const uint8_t *key, char **field)
{
	char *sealed = NULL;
	if (!*field || !**field)
		return SL_OK;
	int rc = wh_seal_json(key, *field, strlen(*field), &sealed);
	if (rc == SL_EINVAL)
		return SL_OK; /* not an object: the request is refused on its own */
	if (rc)
		return rc;
	free(*field); /* protobuf-c frees strings with the system allocator */
	*field = sealed;
	return SL_OK;
}

int fe_auth_seal_frame(struct fe *fe, Sluice__Frame *f)
{
	uint8_t key[AUTH_SEALKEY_BYTES];
	char **field = NULL;
	if (f->body_case == SLUICE__FRAME__BODY_CREATE_CONSUMER && f->create_consumer->config)
		field = &f->create_consumer->config->webhook;
	else if (f->body_case == SLUICE__FRAME__BODY_UPDATE_WEBHOOK)
		field = &f->update_webhook->webhook;
	if (!field || !*field || !**field)
		return SL_OK;
	int rc = fe_auth_seal_key(fe, key);
	if (rc == SL_ENOTFOUND)
		return SL_OK; /* no key_file: secrets stay in clear */
	if (rc == SL_OK)
		rc = seal_field(key, field);
	sodium_memzero(key, sizeof(key));
	return rc;
}
