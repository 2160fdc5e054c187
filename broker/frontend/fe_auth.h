/*
 * fe_auth.h: identities and permissions in the frontend (fe_auth.c), and
 * the security admin requests (fe_principal.c). docs/security.md.
 */
#ifndef SLUICE_FE_AUTH_H
#define SLUICE_FE_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "sluice.pb-c.h"

struct fe;
struct fe_conn;
struct fe_ident;

/* 1 if [auth] enabled. */
int fe_auth_on(const struct fe *fe);

/* SL_OK if c may do verb (enum auth_verb; 0: only an identity is needed)
 * on topic; else SL_EUNAUTHENTICATED or SL_EPERMISSION with why (for the
 * client) naming what is missing. Always SL_OK with auth off. */
int fe_auth_allow(struct fe *fe, struct fe_conn *c, int verb, const char *topic, char *why, size_t cap);

/* The check of a request frame before it is handled (the verb and topic
 * its body needs); SL_OK, or the refusal as fe_auth_allow. */
int fe_auth_frame(struct fe *fe, struct fe_conn *c, const Sluice__Frame *f, char *why, size_t cap);

/* The expiry (unix seconds) of the token c presented; 0: none (a key, anonymous). */
int64_t fe_auth_expires_s(struct fe_conn *c);

/* fe_auth_streams.c: open subscriptions (native, SSE, WebSocket, GraphQL)
 * against the current permissions. Once shm auth_gen moved, or the
 * earliest token expiry of an open stream passed, each one whose identity
 * may no longer subscribe to its topic ends with its last Delivery
 * (end_error UNAUTHENTICATED or PERMISSION_DENIED). Cheap when nothing
 * moved; never from inside a delivery pass. */
void fe_auth_streams_check(struct fe *fe);

/* Who c is, for audit entries: its principal, "anonymous", or "-" with auth off. */
const char *fe_auth_principal(struct fe_conn *c);

/* HelloOk: the nonce an Authenticate signs (auth on only). */
void fe_auth_hello(struct fe_conn *c, Sluice__HelloOk *ok);
/* An Authenticate: answered Authenticated or an error. */
void fe_auth_on_authenticate(struct fe_conn *c, uint64_t req, const Sluice__Authenticate *m);
/* A bearer token for c's next requests (HTTP: per request; cached while
 * the same). SL_OK, or SL_EUNAUTHENTICATED with why. */
int fe_auth_token(struct fe *fe, struct fe_conn *c, const char *token, size_t len, char *why, size_t cap);
/* c's next requests carry no identity (anonymous applies). */
void fe_auth_anonymous(struct fe_conn *c);
void fe_auth_conn_free(struct fe_conn *c);

/* The node's sealing key ([auth] key_file): SL_OK, SL_ENOTFOUND when no
 * key_file is set (secrets then stay in clear), or SL_ECONFIG. */
int fe_auth_seal_key(struct fe *fe, uint8_t key[32]);

/* A CreateConsumer or UpdateWebhook frame (decoded, heap) with its
 * webhook secrets sealed in place when [auth] key_file is set. */
int fe_auth_seal_frame(struct fe *fe, Sluice__Frame *f);

/* A new token signing key: its public key text and its secret key sealed
 * with [auth] key_file (base64url). SL_ECONFIG with why without a key file. */
int fe_auth_seal_new(struct fe *fe, char *pk_text, size_t pk_cap, char *sealed_b64, size_t sealed_cap, char *why,
                     size_t cap);
/* A token for principal, ttl_s seconds, narrowed to perms when narrow. */
int fe_auth_issue(struct fe *fe, const char *principal, uint32_t ttl_s, const char *const *perms, size_t nperms,
                  int narrow, char *out, size_t cap, int64_t *expires_ms, char *why, size_t why_cap);

/* fe_principal.c: PutPrincipal, RemovePrincipal, AuthInit (requests to the
 * log: sized and filled like the others), ListPrincipals, IssueToken,
 * ListAudit (answered here). */
int fe_principal_req_size(struct fe_conn *c, const Sluice__Frame *f, uint32_t *len, char **json, const char **why);
void fe_principal_fill(uint8_t *p, uint64_t cookie, const char *json);
void fe_on_list_principals(struct fe_conn *c, uint64_t req);
void fe_on_issue_token(struct fe_conn *c, uint64_t req, const Sluice__IssueToken *m);
void fe_on_list_audit(struct fe_conn *c, uint64_t req, const Sluice__ListAudit *m);

#endif
