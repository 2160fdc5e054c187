/*
 * auth_token.h: sluice bearer tokens: PASETO v4.public tokens
 * (auth_paseto.h) whose payload is a JSON object of claims, signed by the
 * cluster's Ed25519 token key and checked by every node with its public key.
 * HTTP, WebSocket and SSE clients send one as "Authorization: Bearer <token>";
 * the native protocol may too.
 *
 * Claims (PASETO's registered claims, 04-Claims.md, times in RFC 3339):
 *   "sub"    required  the principal (auth_principal.h)
 *   "aud"    required  the cluster id the token is for, or "sluice"
 *                      (AUTH_AUDIENCE_DEFAULT) for any cluster that uses
 *                      that default; compared byte for byte
 *   "iat"    required  issued at
 *   "exp"    required  expires at: valid while now < exp
 *   "nbf"    optional  not before: valid from nbf on (now >= nbf)
 *   "jti"    optional  token id, for revocation lists; auth_token_issue
 *                      writes 32 random hex digits
 *   "perms"  optional  array of permission strings (auth_perm.h) that
 *                      NARROW what the principal may do: the request must be
 *                      allowed by the principal's stored permissions AND by
 *                      one of these. Absent: no narrowing. [] : nothing.
 * Other claims are ignored (the spec allows private claims). Duplicate keys
 * are refused, so no two parsers can read a different token.
 *
 * Times are whole seconds since the epoch, given by the caller (`now`):
 * this module has no clock. A fractional exp is rounded down and a
 * fractional nbf up, so rounding never lengthens a token's life. There is
 * no built-in clock-skew leeway; a caller that wants one moves `now`.
 *
 * Keys: the issuer holds the 64-byte secret key, nodes the 32-byte public
 * key (auth_key.h for the files). The token carries no key id; a cluster
 * rotating keys tries each of its public keys in turn.
 */
#ifndef SLUICE_AUTH_TOKEN_H
#define SLUICE_AUTH_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#include "auth_paseto.h"
#include "auth_perm.h"
#include "auth_principal.h"

#define AUTH_AUDIENCE_DEFAULT "sluice"
#define AUTH_AUDIENCE_BYTES_MAX 128
#define AUTH_JTI_BYTES_MAX 64
#define AUTH_TOKEN_PERMS_MAX 32
#define AUTH_TOKEN_TTL_S_MAX (366 * 86400) /* a year: longer-lived clients use a key (auth_key.h) */
#define AUTH_WHY_CHARS 160                 /* enough for every `why` this module writes */

struct auth_claims {
	char sub[AUTH_PRINCIPAL_BYTES_MAX + 1];
	char aud[AUTH_AUDIENCE_BYTES_MAX + 1];
	char jti[AUTH_JTI_BYTES_MAX + 1]; /* "" when absent */
	int64_t iat_s;
	int64_t exp_s;
	int64_t nbf_s; /* meaningful when has_nbf */
	int has_nbf;
	int has_perms; /* 0: no "perms" claim, no narrowing */
	size_t nperms;
	struct auth_perm perms[AUTH_TOKEN_PERMS_MAX];
};

/* 1 if s[0..n) is an acceptable audience: 1..AUTH_AUDIENCE_BYTES_MAX bytes
 * of printable ASCII without spaces. */
int auth_audience_ok(const char *s, size_t n);

/* Issue a token for principal, valid from now_s for ttl_s seconds
 * (1..AUTH_TOKEN_TTL_S_MAX), for audience (NULL: AUTH_AUDIENCE_DEFAULT),
 * narrowed to perms[0..nperms) when perms is not NULL (nperms 0 with a
 * non-NULL perms issues "perms": [], a token that allows nothing). Each
 * permission is parsed and written in its canonical form. The token is
 * written NUL-terminated into out (AUTH_TOKEN_BYTES_MAX + 1 bytes are always
 * enough), *out_len (may be NULL) characters. SL_EINVAL for a bad principal,
 * ttl, audience or permission, more than AUTH_TOKEN_PERMS_MAX permissions
 * or a time outside years 0000..9999; SL_ETOOLARGE if the token would pass
 * AUTH_TOKEN_BYTES_MAX; SL_ERANGE if cap is too small; SL_ENOMEM. */
int auth_token_issue(const uint8_t sk[AUTH_SK_BYTES], const char *principal, int64_t ttl_s, const char *audience,
                     const char *const *perms, size_t nperms, int64_t now_s, char *out, size_t cap, size_t *out_len);

/* Check token[0..len) against pk for audience (NULL: AUTH_AUDIENCE_DEFAULT)
 * at now_s and fill *out. On failure *out is zeroed and why (may be NULL;
 * AUTH_WHY_CHARS is enough) says what was wrong in words fit for a client:
 *   SL_ETOOLARGE         longer than AUTH_TOKEN_BYTES_MAX
 *   SL_EMALFORMED        not a v4.public token, bad base64url, the payload
 *                        is not a JSON object, or a claim is missing or bad
 *   SL_EUNAUTHENTICATED  the signature does not verify with pk
 *   SL_EPERMISSION       signed, but for another audience
 *   SL_ETIMEOUT          expired (now_s >= exp)
 *   SL_EAGAIN            not valid yet (now_s < nbf)
 *   SL_EINVAL, SL_ENOMEM bad arguments, no memory
 * The claims are only read after the signature verified; a token's bytes
 * never reach the JSON parser unauthenticated. A server should answer every
 * failure as SL_EUNAUTHENTICATED with `why` as the message (the distinct
 * codes are for its logs and tests). */
int auth_token_check(const uint8_t pk[AUTH_PK_BYTES], const char *token, size_t len, const char *audience,
                     int64_t now_s, struct auth_claims *out, char *why, size_t why_cap);

/* 1 if the token's "perms" allow verb on topic[0..tlen) (always 1 without a
 * "perms" claim). The principal's stored permissions must allow it too. */
int auth_claims_allow(const struct auth_claims *c, int verb, const char *topic, size_t tlen);

#endif
