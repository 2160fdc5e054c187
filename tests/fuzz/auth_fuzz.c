/*
 * auth_fuzz.c: libFuzzer target for common/auth, everything that reads
 * bytes a client or an operator controls: PASETO tokens (auth_paseto_verify,
 * auth_paseto_footer), sluice tokens (auth_token_check), the claims of a
 * signed payload (the input is signed with the fixed key first, since the
 * claims parser only ever sees verified payloads), permission strings,
 * public key text and RFC 3339 times. The fixed key is the one of the
 * PASETO v4 test vectors, so the seeds in tests/fuzz/corpus-auth (the spec's
 * tokens and sluice tokens signed with it) verify. Whatever is accepted
 * must satisfy the documented invariants; a violation aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "auth_key.h"
#include "auth_paseto.h"
#include "auth_perm.h"
#include "auth_time.h"
#include "auth_token.h"
#include "err.h"

/* the seed of the v4 test vectors' key (v4.json "secret-key-seed") */
static const uint8_t seed[AUTH_SEED_BYTES] = {
	0xb4, 0xcb, 0xfb, 0x43, 0xdf, 0x4c, 0xe2, 0x10, 0x72, 0x7d, 0x95, 0x3e, 0x4a, 0x71, 0x33, 0x07,
	0xfa, 0x19, 0xbb, 0x7d, 0x9f, 0x85, 0x04, 0x14, 0x38, 0xd9, 0xe1, 0x1b, 0x94, 0x2a, 0x37, 0x74,
};
#define FUZZ_NOW 1700000000 /* the seed tokens are issued at FUZZ_NOW for an hour */

static struct auth_keypair kp;

static void check_claims(const struct auth_claims *c, int64_t now)
{
	if (!auth_principal_ok(c->sub, strlen(c->sub)) || c->nperms > AUTH_TOKEN_PERMS_MAX || now >= c->exp_s ||
	    (c->has_nbf && now < c->nbf_s) || strcmp(c->aud, AUTH_AUDIENCE_DEFAULT) != 0 ||
	    (!c->has_perms && c->nperms))
		abort();
	for (size_t i = 0; i < c->nperms; i++)
		if (c->perms[i].len == 0 || c->perms[i].len != strlen(c->perms[i].pattern))
			abort();
}

static void fuzz_paseto(const uint8_t *data, size_t size)
{
	static uint8_t out[AUTH_TOKEN_BYTES_MAX];
	size_t n = 0;
	int rc = auth_paseto_verify(kp.pk, (const char *)data, size, NULL, slice_make(NULL, 0), out, sizeof out, &n);

	if (rc == SL_OK && (n + AUTH_PASETO_HEADER_LEN >= size))
		abort();
	if (rc == SL_OK && size <= AUTH_TOKEN_BYTES_MAX &&
	    auth_paseto_footer((const char *)data, size, out, sizeof out, &n) != SL_OK)
		abort();
}

static void fuzz_token(const uint8_t *data, size_t size)
{
	static struct auth_claims c;
	char why[AUTH_WHY_CHARS];

	if (auth_token_check(kp.pk, (const char *)data, size, NULL, FUZZ_NOW + 1, &c, why, sizeof why) == SL_OK)
		check_claims(&c, FUZZ_NOW + 1);
}

/* The input as the payload of a token we sign: the claims parser's input. */
static void fuzz_claims(const uint8_t *data, size_t size)
{
	static char tok[AUTH_TOKEN_BYTES_MAX + 1];
	static struct auth_claims c;
	char why[AUTH_WHY_CHARS];
	size_t n = 0;
	int rc;

	if (auth_paseto_sign(kp.sk, slice_make(data, size), slice_make(NULL, 0), slice_make(NULL, 0), tok, sizeof tok,
	                     &n) != SL_OK)
		return;
	rc = auth_token_check(kp.pk, tok, n, NULL, FUZZ_NOW + 1, &c, why, sizeof why);
	if (rc == SL_EUNAUTHENTICATED || rc == SL_ETOOLARGE || (rc != SL_OK && !why[0]))
		abort();
	if (rc == SL_OK)
		check_claims(&c, FUZZ_NOW + 1);
}

static void fuzz_perm(const uint8_t *data, size_t size)
{
	struct auth_perm p, q;
	char buf[AUTH_PERM_CHARS_MAX], why[128];
	const uint8_t *nul = memchr(data, 0, size);
	size_t a = nul ? (size_t)(nul - data) : size;

	if (auth_perm_parse((const char *)data, a, &p, why, sizeof why) != SL_OK)
		return;
	/* canonical form round-trips */
	if (auth_perm_format(&p, buf, sizeof buf) != SL_OK || auth_perm_parse(buf, strlen(buf), &q, NULL, 0) != SL_OK ||
	    q.verb != p.verb || q.len != p.len || strcmp(q.pattern, p.pattern) != 0)
		abort();
	/* the rest of the input as a topic; a pattern with no wildcard matches only itself */
	if (nul) {
		const char *topic = (const char *)nul + 1;
		size_t tlen = size - a - 1;
		int m = auth_pattern_match(p.pattern, p.len, topic, tlen);
		if (!strpbrk(p.pattern, "*>") && m != (tlen == p.len && memcmp(topic, p.pattern, tlen) == 0))
			abort();
		if (!strcmp(p.pattern, ">") && tlen > 0 && !m)
			abort();
	}
}

static void fuzz_pubkey(const uint8_t *data, size_t size)
{
	uint8_t pk[AUTH_PK_BYTES];
	char s[AUTH_PUBKEY_CHARS];

	if (auth_pubkey_parse((const char *)data, size, pk) != SL_OK)
		return;
	/* one spelling per key: formatting gives back the input (without its newline) */
	if (auth_pubkey_format(pk, s, sizeof s) != SL_OK || size < strlen(s) || memcmp(s, data, strlen(s)) != 0)
		abort();
}

static void fuzz_time(const uint8_t *data, size_t size)
{
	char s[AUTH_TIME_CHARS];
	int64_t t, u;

	if (auth_time_parse((const char *)data, size, &t, NULL) != SL_OK || auth_time_format(t, s) != SL_OK)
		return;
	if (auth_time_parse(s, strlen(s), &u, NULL) != SL_OK || u != t)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	if (kp.pk[0] == 0 && kp.pk[1] == 0 && auth_key_from_seed(seed, &kp) != SL_OK)
		abort();
	/* the first byte picks the decoder, so each one sees the rest whole */
	switch (data[0] % 6) {
	case 0:
		fuzz_paseto(data + 1, size - 1);
		break;
	case 1:
		fuzz_token(data + 1, size - 1);
		break;
	case 2:
		fuzz_claims(data + 1, size - 1);
		break;
	case 3:
		fuzz_perm(data + 1, size - 1);
		break;
	case 4:
		fuzz_pubkey(data + 1, size - 1);
		break;
	default:
		fuzz_time(data + 1, size - 1);
		break;
	}
	return 0;
}
