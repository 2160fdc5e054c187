/*
 * auth_paseto.c: PASETO v4.public sign and verify (see auth_paseto.h) on
 * libsodium's Ed25519 (crypto_sign_detached / crypto_sign_verify_detached).
 * Every length is checked against AUTH_TOKEN_BYTES_MAX before anything is
 * decoded or allocated, so the largest allocation for a hostile token is a
 * few times 8 KiB.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "auth_b64.h"
#include "auth_paseto.h"
#include "err.h"

/* The parts of a token, pointing into it. */
struct paseto_parts {
	const char *body; /* base64url(m || sig) */
	size_t body_len;
	const char *foot; /* base64url(f), NULL when there is no footer */
	size_t foot_len;
};

/* LE64 of Common.md: little-endian, most significant bit cleared. */
static void le64(uint8_t *p, uint64_t v)
{
	v &= UINT64_C(0x7fffffffffffffff);
	for (int i = 0; i < 8; i++, v >>= 8)
		p[i] = (uint8_t)(v & 0xff);
}

int auth_paseto_pae(const struct slice *pieces, size_t n, uint8_t **out, size_t *out_len)
{
	size_t total = 8, off = 8;
	uint8_t *buf;

	if (!out || !out_len || (!pieces && n))
		return SL_EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (pieces[i].len > SIZE_MAX / 2 - 8 - total)
			return SL_ETOOLARGE;
		total += 8 + pieces[i].len;
	}
	if (!(buf = malloc(total)))
		return SL_ENOMEM;
	le64(buf, n);
	for (size_t i = 0; i < n; i++) {
		le64(buf + off, pieces[i].len);
		off += 8;
		if (pieces[i].len)
			memcpy(buf + off, pieces[i].base, pieces[i].len);
		off += pieces[i].len;
	}
	*out = buf;
	*out_len = total;
	return SL_OK;
}

/* Split token into its base64url parts after checking its size and header.
 * A '.' followed by nothing is refused: an empty footer is spelled by
 * leaving the part out, and a token must have one spelling. */
static int paseto_split(const char *token, size_t len, struct paseto_parts *p)
{
	const char *rest, *dot;
	size_t rlen;

	if (len > AUTH_TOKEN_BYTES_MAX)
		return SL_ETOOLARGE;
	if (!token || len < AUTH_PASETO_HEADER_LEN || memcmp(token, AUTH_PASETO_HEADER, AUTH_PASETO_HEADER_LEN) != 0)
		return SL_EMALFORMED;
	rest = token + AUTH_PASETO_HEADER_LEN;
	rlen = len - AUTH_PASETO_HEADER_LEN;
	memset(p, 0, sizeof(*p));
	p->body = rest;
	dot = memchr(rest, '.', rlen);
	if (!dot) {
		p->body_len = rlen;
		return SL_OK;
	}
	p->body_len = (size_t)(dot - rest);
	p->foot = dot + 1;
	p->foot_len = rlen - p->body_len - 1;
	if (p->foot_len == 0 || memchr(p->foot, '.', p->foot_len))
		return SL_EMALFORMED;
	return SL_OK;
}

int auth_paseto_sign(const uint8_t sk[AUTH_SK_BYTES], struct slice payload, struct slice footer, struct slice implicit,
                     char *out, size_t cap, size_t *out_len)
{
	struct slice pieces[4];
	uint8_t *ms = NULL, *m2 = NULL;
	size_t m2n = 0, tok_len, k = 0, off;
	int rc;

	if (!sk || !out || (!payload.base && payload.len) || (!footer.base && footer.len) ||
	    (!implicit.base && implicit.len))
		return SL_EINVAL;
	/* bounds first, so that the arithmetic below cannot overflow */
	if (payload.len > AUTH_TOKEN_BYTES_MAX || footer.len > AUTH_TOKEN_BYTES_MAX ||
	    implicit.len > AUTH_IMPLICIT_BYTES_MAX)
		return SL_ETOOLARGE;
	tok_len = AUTH_PASETO_HEADER_LEN + AUTH_B64_CHARS(payload.len + AUTH_SIG_BYTES) +
	          (footer.len ? 1 + AUTH_B64_CHARS(footer.len) : 0);
	if (tok_len > AUTH_TOKEN_BYTES_MAX)
		return SL_ETOOLARGE;
	if (cap < tok_len + 1)
		return SL_ERANGE;
	if (sodium_init() < 0)
		return SL_EINTERNAL;
	pieces[0] = slice_make(AUTH_PASETO_HEADER, AUTH_PASETO_HEADER_LEN);
	pieces[1] = payload;
	pieces[2] = footer;
	pieces[3] = implicit;
	if ((rc = auth_paseto_pae(pieces, 4, &m2, &m2n)) != SL_OK)
		goto out;
	if (!(ms = malloc(payload.len + AUTH_SIG_BYTES))) {
		rc = SL_ENOMEM;
		goto out;
	}
	if (payload.len)
		memcpy(ms, payload.base, payload.len);
	crypto_sign_detached(ms + payload.len, NULL, m2, m2n, sk);
	memcpy(out, AUTH_PASETO_HEADER, AUTH_PASETO_HEADER_LEN);
	off = AUTH_PASETO_HEADER_LEN;
	if ((rc = auth_b64_encode(ms, payload.len + AUTH_SIG_BYTES, out + off, cap - off, &k)) != SL_OK)
		goto out;
	off += k;
	if (footer.len) {
		out[off++] = '.';
		if ((rc = auth_b64_encode(footer.base, footer.len, out + off, cap - off, &k)) != SL_OK)
			goto out;
		off += k;
	}
	if (out_len)
		*out_len = off;
out:
	free(m2);
	free(ms);
	return rc;
}

/* 1 if the decoded footer f[0..n) is what the caller expects. */
static int footer_matches(const struct slice *expected, const uint8_t *f, size_t n)
{
	if (!expected)
		return 1;
	if (expected->len != n)
		return 0;
	return n == 0 || sodium_memcmp(expected->base, f, n) == 0;
}

int auth_paseto_verify(const uint8_t pk[AUTH_PK_BYTES], const char *token, size_t len,
                       const struct slice *footer_expected, struct slice implicit, uint8_t *payload, size_t cap,
                       size_t *payload_len)
{
	struct paseto_parts p;
	struct slice pieces[4];
	uint8_t *raw = NULL, *foot = NULL, *m2 = NULL;
	size_t rawn = 0, footn = 0, m2n = 0, mlen;
	int rc;

	if (!pk || (!payload && cap) || !payload_len || (!implicit.base && implicit.len) ||
	    (footer_expected && !footer_expected->base && footer_expected->len))
		return SL_EINVAL;
	if (implicit.len > AUTH_IMPLICIT_BYTES_MAX)
		return SL_ETOOLARGE;
	if ((rc = paseto_split(token, len, &p)) != SL_OK)
		return rc;
	if (sodium_init() < 0)
		return SL_EINTERNAL;
	/* both parts are at most AUTH_TOKEN_BYTES_MAX characters: small */
	raw = malloc(p.body_len / 4 * 3 + 3);
	foot = malloc(p.foot_len / 4 * 3 + 3);
	if (!raw || !foot) {
		rc = SL_ENOMEM;
		goto out;
	}
	if ((rc = auth_b64_decode(p.body, p.body_len, raw, p.body_len / 4 * 3 + 3, &rawn)) != SL_OK ||
	    (rc = auth_b64_decode(p.foot, p.foot_len, foot, p.foot_len / 4 * 3 + 3, &footn)) != SL_OK)
		goto out;
	if (rawn < AUTH_SIG_BYTES) {
		rc = SL_EMALFORMED;
		goto out;
	}
	if (!footer_matches(footer_expected, foot, footn)) {
		rc = SL_EUNAUTHENTICATED;
		goto out;
	}
	mlen = rawn - AUTH_SIG_BYTES;
	pieces[0] = slice_make(AUTH_PASETO_HEADER, AUTH_PASETO_HEADER_LEN);
	pieces[1] = slice_make(raw, mlen);
	pieces[2] = slice_make(foot, footn);
	pieces[3] = implicit;
	if ((rc = auth_paseto_pae(pieces, 4, &m2, &m2n)) != SL_OK)
		goto out;
	if (crypto_sign_verify_detached(raw + mlen, m2, m2n, pk) != 0) {
		rc = SL_EUNAUTHENTICATED;
		goto out;
	}
	if (mlen > cap) {
		rc = SL_ERANGE;
		goto out;
	}
	if (mlen)
		memcpy(payload, raw, mlen);
	*payload_len = mlen;
out:
	free(m2);
	free(foot);
	free(raw);
	return rc;
}

int auth_paseto_footer(const char *token, size_t len, uint8_t *out, size_t cap, size_t *n)
{
	struct paseto_parts p;
	int rc;

	if (!n || (!out && cap))
		return SL_EINVAL;
	if ((rc = paseto_split(token, len, &p)) != SL_OK)
		return rc;
	return auth_b64_decode(p.foot, p.foot_len, out, cap, n);
}
