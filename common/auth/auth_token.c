/*
 * auth_token.c: sluice tokens, claims JSON inside PASETO v4.public (see
 * auth_token.h). The order of the checks is the order of trust: size,
 * format and signature first (auth_paseto_verify), then the claims of a
 * payload we know the issuer wrote, then audience and time.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "auth_time.h"
#include "auth_token.h"
#include "auth_why.h"
#include "err.h"

#define JTI_RANDOM_BYTES 16

int auth_audience_ok(const char *s, size_t n)
{
	if (!s || n == 0 || n > AUTH_AUDIENCE_BYTES_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x21 || s[i] > 0x7e)
			return 0;
	return 1;
}

/* The "perms" array of canonical permission strings, or NULL for a bad one. */
static json_t *perms_json(const char *const *perms, size_t n)
{
	json_t *a = json_array();
	struct auth_perm p;
	char buf[AUTH_PERM_CHARS_MAX];

	for (size_t i = 0; a && i < n; i++) {
		if (!perms[i] || auth_perm_parse(perms[i], strlen(perms[i]), &p, NULL, 0) != SL_OK ||
		    auth_perm_format(&p, buf, sizeof buf) != SL_OK || json_array_append_new(a, json_string(buf))) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

/* The claims object of a new token; SL_EINVAL or SL_ENOMEM. */
static int claims_json(const char *principal, int64_t ttl_s, const char *aud, const char *const *perms, size_t nperms,
                       int64_t now_s, json_t **out)
{
	char iat[AUTH_TIME_CHARS], exp[AUTH_TIME_CHARS], jti[2 * JTI_RANDOM_BYTES + 1];
	uint8_t rnd[JTI_RANDOM_BYTES];
	json_t *o, *a = NULL;

	if (auth_time_format(now_s, iat) != SL_OK || auth_time_format(now_s + ttl_s, exp) != SL_OK)
		return SL_EINVAL;
	randombytes_buf(rnd, sizeof rnd);
	sodium_bin2hex(jti, sizeof jti, rnd, sizeof rnd);
	if (perms && !(a = perms_json(perms, nperms)))
		return SL_EINVAL;
	o = json_pack("{s:s, s:s, s:s, s:s, s:s}", "sub", principal, "aud", aud, "iat", iat, "exp", exp, "jti", jti);
	if (!o || (a && json_object_set_new(o, "perms", a) != 0)) {
		json_decref(o);
		return SL_ENOMEM;
	}
	*out = o;
	return SL_OK;
}

int auth_token_issue(const uint8_t sk[AUTH_SK_BYTES], const char *principal, int64_t ttl_s, const char *audience,
                     const char *const *perms, size_t nperms, int64_t now_s, char *out, size_t cap, size_t *out_len)
{
	const char *aud = audience ? audience : AUTH_AUDIENCE_DEFAULT;
	json_t *claims = NULL;
	char *payload = NULL;
	int rc;

	if (!sk || !out || !principal || !auth_principal_ok(principal, strlen(principal)) ||
	    !auth_audience_ok(aud, strlen(aud)) || ttl_s < 1 || ttl_s > AUTH_TOKEN_TTL_S_MAX ||
	    nperms > AUTH_TOKEN_PERMS_MAX || (!perms && nperms))
		return SL_EINVAL;
	if (sodium_init() < 0)
		return SL_EINTERNAL;
	if ((rc = claims_json(principal, ttl_s, aud, perms, nperms, now_s, &claims)) != SL_OK)
		return rc;
	if (!(payload = json_dumps(claims, JSON_COMPACT))) {
		rc = SL_ENOMEM;
		goto out;
	}
	rc = auth_paseto_sign(sk, slice_cstr(payload), slice_make(NULL, 0), slice_make(NULL, 0), out, cap, out_len);
out:
	free(payload);
	json_decref(claims);
	return rc;
}

/* String claim `key` into dst (cap bytes, NUL included). Absent: SL_ENOTFOUND. */
static int claim_str(json_t *o, const char *key, char *dst, size_t cap, char *why, size_t why_cap)
{
	json_t *v = json_object_get(o, key);
	size_t n;

	if (!v)
		return SL_ENOTFOUND;
	if (!json_is_string(v) || (n = json_string_length(v)) >= cap) {
		auth_why(why, why_cap, "claim \"%s\" must be a string of at most %zu bytes", key, cap - 1);
		return SL_EMALFORMED;
	}
	memcpy(dst, json_string_value(v), n);
	dst[n] = 0;
	return SL_OK;
}

/* Time claim `key` (RFC 3339) into *t_s, rounded up when round_up. */
static int claim_time(json_t *o, const char *key, int round_up, int64_t *t_s, char *why, size_t why_cap)
{
	char buf[64];
	int frac = 0, rc;

	if ((rc = claim_str(o, key, buf, sizeof buf, why, why_cap)) != SL_OK)
		return rc;
	if (auth_time_parse(buf, strlen(buf), t_s, &frac) != SL_OK) {
		auth_why(why, why_cap, "claim \"%s\" is not an RFC 3339 date-time", key);
		return SL_EMALFORMED;
	}
	*t_s += round_up && frac;
	return SL_OK;
}

static int claims_perms(json_t *o, struct auth_claims *c, char *why, size_t why_cap)
{
	json_t *a = json_object_get(o, "perms"), *v;
	char pwhy[96];
	size_t i;

	if (!a)
		return SL_OK;
	if (!json_is_array(a) || json_array_size(a) > AUTH_TOKEN_PERMS_MAX) {
		auth_why(why, why_cap, "claim \"perms\" must be an array of at most %d permissions", AUTH_TOKEN_PERMS_MAX);
		return SL_EMALFORMED;
	}
	json_array_foreach(a, i, v)
	{
		if (!json_is_string(v) || auth_perm_parse(json_string_value(v), json_string_length(v), &c->perms[i],
		                                          pwhy, sizeof pwhy) != SL_OK) {
			auth_why(why, why_cap, "claim \"perms\"[%zu]: %s", i, json_is_string(v) ? pwhy : "not a string");
			return SL_EMALFORMED;
		}
	}
	c->has_perms = 1;
	c->nperms = json_array_size(a);
	return SL_OK;
}

/* The claims of a verified payload into *c: shape and syntax only. */
static int claims_read(json_t *o, struct auth_claims *c, char *why, size_t why_cap)
{
	int rc;

	if ((rc = claim_str(o, "sub", c->sub, sizeof c->sub, why, why_cap)) != SL_OK ||
	    (rc = claim_str(o, "aud", c->aud, sizeof c->aud, why, why_cap)) != SL_OK ||
	    (rc = claim_time(o, "iat", 0, &c->iat_s, why, why_cap)) != SL_OK ||
	    (rc = claim_time(o, "exp", 0, &c->exp_s, why, why_cap)) != SL_OK) {
		if (rc == SL_ENOTFOUND)
			auth_why(why, why_cap, "a token needs the claims sub, aud, iat and exp");
		return SL_EMALFORMED;
	}
	if (!auth_principal_ok(c->sub, strlen(c->sub))) {
		auth_why(why, why_cap, "claim \"sub\" is not a principal name (1-64 of A-Z a-z 0-9 . _ -)");
		return SL_EMALFORMED;
	}
	rc = claim_time(o, "nbf", 1, &c->nbf_s, why, why_cap);
	if (rc != SL_OK && rc != SL_ENOTFOUND)
		return rc;
	c->has_nbf = rc == SL_OK;
	rc = claim_str(o, "jti", c->jti, sizeof c->jti, why, why_cap);
	if (rc != SL_OK && rc != SL_ENOTFOUND)
		return rc;
	return claims_perms(o, c, why, why_cap);
}

/* Audience, expiry and not-before of claims that were read. */
static int claims_valid(const struct auth_claims *c, const char *aud, int64_t now_s, char *why, size_t why_cap)
{
	char t[AUTH_TIME_CHARS];

	if (strcmp(c->aud, aud) != 0) {
		auth_why(why, why_cap, "token is for audience \"%.64s\", not \"%.64s\"", c->aud, aud);
		return SL_EPERMISSION;
	}
	if (now_s >= c->exp_s) {
		if (auth_time_format(c->exp_s, t) != SL_OK)
			snprintf(t, sizeof t, "%s", "long ago");
		auth_why(why, why_cap, "token expired at %s", t);
		return SL_ETIMEOUT;
	}
	if (c->has_nbf && now_s < c->nbf_s) {
		if (auth_time_format(c->nbf_s, t) != SL_OK)
			snprintf(t, sizeof t, "%s", "far ahead");
		auth_why(why, why_cap, "token is not valid before %s", t);
		return SL_EAGAIN;
	}
	return SL_OK;
}

/* The verified payload of token, or the reason it has none. */
static int token_payload(const uint8_t *pk, const char *token, size_t len, uint8_t *buf, size_t cap, size_t *n,
                         char *why, size_t why_cap)
{
	int rc = auth_paseto_verify(pk, token, len, NULL, slice_make(NULL, 0), buf, cap, n);

	if (rc == SL_ETOOLARGE)
		auth_why(why, why_cap, "token is longer than %d bytes", AUTH_TOKEN_BYTES_MAX);
	else if (rc == SL_EMALFORMED)
		auth_why(why, why_cap, "not a v4.public PASETO token");
	else if (rc == SL_EUNAUTHENTICATED)
		auth_why(why, why_cap, "token signature does not verify (altered, or signed by another key)");
	else if (rc != SL_OK)
		auth_why(why, why_cap, "token check failed: %s", sl_strerror(rc));
	return rc;
}

int auth_token_check(const uint8_t pk[AUTH_PK_BYTES], const char *token, size_t len, const char *audience,
                     int64_t now_s, struct auth_claims *out, char *why, size_t why_cap)
{
	const char *aud = audience ? audience : AUTH_AUDIENCE_DEFAULT;
	uint8_t *payload = NULL;
	json_t *root = NULL;
	json_error_t jerr;
	size_t n = 0;
	int rc;

	if (why && why_cap)
		why[0] = 0;
	if (!pk || !out) {
		auth_why(why, why_cap, "no key or no place for the claims");
		return SL_EINVAL;
	}
	memset(out, 0, sizeof(*out));
	if (!(payload = malloc(AUTH_TOKEN_BYTES_MAX))) {
		rc = SL_ENOMEM;
		goto out;
	}
	if ((rc = token_payload(pk, token, len, payload, AUTH_TOKEN_BYTES_MAX, &n, why, why_cap)) != SL_OK)
		goto out;
	root = json_loadb((const char *)payload, n, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(root)) {
		auth_why(why, why_cap, "token payload is not a JSON object");
		rc = SL_EMALFORMED;
		goto out;
	}
	if ((rc = claims_read(root, out, why, why_cap)) != SL_OK ||
	    (rc = claims_valid(out, aud, now_s, why, why_cap)) != SL_OK)
		goto out;
out:
	if (rc != SL_OK)
		memset(out, 0, sizeof(*out));
	json_decref(root);
	free(payload);
	return rc;
}

int auth_claims_allow(const struct auth_claims *c, int verb, const char *topic, size_t tlen)
{
	if (!c)
		return 0;
	return !c->has_perms || auth_perm_allows(c->perms, c->nperms, verb, topic, tlen);
}
