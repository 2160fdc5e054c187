/*
 * wh_sign.c: Standard Webhooks secrets, signatures and message ids (see
 * wh_sign.h). Every output is NUL-terminated and checked against its
 * capacity before it is written; every secret is checked for base64 and
 * length before it is used.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "err.h"
#include "slice.h"
#include "wh_sign.h"

#define WH_PREFIX_SEC "whsec_"
#define WH_PREFIX_SK "whsk_"
#define WH_PREFIX_PK "whpk_"

static int has_prefix(const char *s, const char *p)
{
	return strncmp(s, p, strlen(p)) == 0;
}

/* Standard base64, padded or not, into out[0..*n) (at most cap bytes). */
static int b64_decode(const char *s, uint8_t *out, size_t cap, size_t *n)
{
	size_t len = strlen(s);
	const char *end = NULL;

	if (len == 0 || len > 4 * ((cap + 2) / 3))
		return SL_EINVAL;
	/* the alphabet first: libsodium 1.0.18 takes bytes >= 0x80 as letters, so
	 * one secret would have many spellings */
	for (size_t i = 0; i < len; i++) {
		char ch = s[i];
		if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '+' ||
		      ch == '/' || (ch == '=' && i + 2 >= len)))
			return SL_EINVAL;
	}
	if (sodium_base642bin(out, cap, s, len, NULL, n, &end, sodium_base64_VARIANT_ORIGINAL) == 0 &&
	    end == s + len)
		return SL_OK;
	if (sodium_base642bin(out, cap, s, len, NULL, n, &end, sodium_base64_VARIANT_ORIGINAL_NO_PADDING) == 0 &&
	    end == s + len)
		return SL_OK;
	return SL_EINVAL;
}

/* prefix + base64(bin) into out. */
static int b64_encode(const char *prefix, const uint8_t *bin, size_t n, char *out, size_t cap)
{
	size_t pl = strlen(prefix);
	size_t need = pl + sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL);

	if (cap < need)
		return SL_ERANGE;
	memcpy(out, prefix, pl);
	sodium_bin2base64(out + pl, cap - pl, bin, n, sodium_base64_VARIANT_ORIGINAL);
	return SL_OK;
}

int wh_secret_parse(const char *s, uint8_t *key, size_t cap, size_t *key_len)
{
	uint8_t buf[WH_KEY_BYTES_MAX];
	size_t n = 0;

	if (!s || !key || !key_len)
		return SL_EINVAL;
	if (has_prefix(s, WH_PREFIX_SEC))
		s += strlen(WH_PREFIX_SEC);
	if (b64_decode(s, buf, sizeof buf, &n) != SL_OK || n < WH_KEY_BYTES_MIN || n > cap) {
		sodium_memzero(buf, sizeof buf);
		return SL_EINVAL;
	}
	memcpy(key, buf, n);
	*key_len = n;
	sodium_memzero(buf, sizeof buf);
	return SL_OK;
}

int wh_secret_generate(char *out, size_t cap)
{
	uint8_t k[WH_SECRET_GEN_BYTES];
	int rc;

	if (sodium_init() < 0)
		return SL_EINTERNAL;
	randombytes_buf(k, sizeof k);
	rc = b64_encode(WH_PREFIX_SEC, k, sizeof k, out, cap);
	sodium_memzero(k, sizeof k);
	return rc;
}

/* "{id}.{ts}." : the signed content's prefix; the body follows. */
static int signed_prefix(const char *msg_id, int64_t ts_s, char *out, size_t cap, size_t *n)
{
	int k;

	if (!msg_id || !msg_id[0] || strchr(msg_id, '.'))
		return SL_EINVAL;
	k = snprintf(out, cap, "%s.%" PRId64 ".", msg_id, ts_s);
	if (k < 0 || (size_t)k >= cap)
		return SL_EINVAL;
	*n = (size_t)k;
	return SL_OK;
}

int wh_sign_v1(const uint8_t *key, size_t klen, const char *msg_id, int64_t ts_s, const uint8_t *body, size_t blen,
               char *out, size_t cap)
{
	crypto_auth_hmacsha256_state st;
	uint8_t mac[crypto_auth_hmacsha256_BYTES];
	char pre[512];
	size_t pl;
	int rc;

	if (!key || klen == 0 || (!body && blen))
		return SL_EINVAL;
	if ((rc = signed_prefix(msg_id, ts_s, pre, sizeof pre, &pl)) != SL_OK)
		return rc;
	crypto_auth_hmacsha256_init(&st, key, klen);
	crypto_auth_hmacsha256_update(&st, (const uint8_t *)pre, pl);
	if (blen)
		crypto_auth_hmacsha256_update(&st, body, blen);
	crypto_auth_hmacsha256_final(&st, mac);
	sodium_memzero(&st, sizeof st);
	return b64_encode("v1,", mac, sizeof mac, out, cap);
}

int wh_ed25519_keypair(char *sk_out, char *pk_out)
{
	uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
	int rc;

	if (sodium_init() < 0)
		return SL_EINTERNAL;
	crypto_sign_keypair(pk, sk);
	rc = b64_encode(WH_PREFIX_SK, sk, sizeof sk, sk_out, WH_SECRET_CHARS_MAX);
	if (rc == SL_OK)
		rc = b64_encode(WH_PREFIX_PK, pk, sizeof pk, pk_out, WH_SECRET_CHARS_MAX);
	sodium_memzero(sk, sizeof sk);
	return rc;
}

int wh_ed25519_sk_parse(const char *s, uint8_t sk[64])
{
	uint8_t buf[crypto_sign_SECRETKEYBYTES], pk[crypto_sign_PUBLICKEYBYTES];
	size_t n = 0;
	int rc = SL_EINVAL;

	if (!s || !has_prefix(s, WH_PREFIX_SK) || sodium_init() < 0)
		return SL_EINVAL;
	if (b64_decode(s + strlen(WH_PREFIX_SK), buf, sizeof buf, &n) != SL_OK)
		goto out;
	if (n == crypto_sign_SEEDBYTES) {
		crypto_sign_seed_keypair(pk, sk, buf);
		rc = SL_OK;
	} else if (n == crypto_sign_SECRETKEYBYTES) {
		/* the public half must be the seed's, or signatures would not verify */
		crypto_sign_seed_keypair(pk, sk, buf);
		rc = sodium_memcmp(pk, buf + crypto_sign_SEEDBYTES, sizeof pk) == 0 ? SL_OK : SL_EINVAL;
	}
out:
	sodium_memzero(buf, sizeof buf);
	if (rc != SL_OK)
		sodium_memzero(sk, 64);
	return rc;
}

int wh_sign_v1a(const uint8_t sk[64], const char *msg_id, int64_t ts_s, const uint8_t *body, size_t blen, char *out,
                size_t cap)
{
	uint8_t sig[crypto_sign_BYTES];
	char pre[512];
	size_t pl;
	uint8_t *m;
	int rc;

	if (!sk || (!body && blen))
		return SL_EINVAL;
	if ((rc = signed_prefix(msg_id, ts_s, pre, sizeof pre, &pl)) != SL_OK)
		return rc;
	/* pure Ed25519 signs the whole message at once: assemble it */
	if (!(m = malloc(pl + blen + 1)))
		return SL_ENOMEM;
	memcpy(m, pre, pl);
	if (blen)
		memcpy(m + pl, body, blen);
	crypto_sign_detached(sig, NULL, m, pl + blen, sk);
	free(m);
	return b64_encode("v1a,", sig, sizeof sig, out, cap);
}

int wh_key_parse(const char *s, struct wh_key *k)
{
	int rc;

	if (!s || !k)
		return SL_EINVAL;
	memset(k, 0, sizeof *k);
	if (has_prefix(s, WH_PREFIX_SK)) {
		if ((rc = wh_ed25519_sk_parse(s, k->bytes)) != SL_OK)
			return rc;
		k->kind = WH_KEY_ED25519;
		k->len = crypto_sign_SECRETKEYBYTES;
		return SL_OK;
	}
	if ((rc = wh_secret_parse(s, k->bytes, sizeof k->bytes, &k->len)) != SL_OK)
		return rc;
	k->kind = WH_KEY_HMAC;
	return SL_OK;
}

int wh_signature_header(const struct wh_key *keys, size_t nkeys, const char *msg_id, int64_t ts_s,
                        const uint8_t *body, size_t blen, char *out, size_t cap)
{
	char sig[WH_SIG_V1A_CHARS];
	size_t off = 0;
	int rc;

	if (!keys || nkeys == 0 || nkeys > WH_SIGN_KEYS_MAX || !out || cap == 0)
		return SL_EINVAL;
	for (size_t i = 0; i < nkeys; i++) {
		const struct wh_key *k = &keys[i];
		size_t l;
		if (k->kind == WH_KEY_HMAC && k->len >= WH_KEY_BYTES_MIN && k->len <= WH_KEY_BYTES_MAX)
			rc = wh_sign_v1(k->bytes, k->len, msg_id, ts_s, body, blen, sig, sizeof sig);
		else if (k->kind == WH_KEY_ED25519 && k->len == crypto_sign_SECRETKEYBYTES)
			rc = wh_sign_v1a(k->bytes, msg_id, ts_s, body, blen, sig, sizeof sig);
		else
			rc = SL_EINVAL;
		if (rc != SL_OK)
			return rc;
		l = strlen(sig);
		if (off + (i ? 1 : 0) + l + 1 > cap)
			return SL_ERANGE;
		if (i)
			out[off++] = ' ';
		memcpy(out + off, sig, l + 1);
		off += l;
	}
	return SL_OK;
}

int wh_msg_id(char *out, size_t cap, const char *topic, uint32_t partition, uint64_t offset)
{
	crypto_generichash_state st;
	uint8_t h[16], b[12];
	size_t tl;

	if (!out || !topic)
		return SL_EINVAL;
	tl = strlen(topic);
	if (tl == 0 || tl > 0xffff)
		return SL_EINVAL;
	if (cap < WH_MSG_ID_CHARS)
		return SL_ERANGE;
	b[0] = (uint8_t)(tl >> 8);
	b[1] = (uint8_t)tl;
	crypto_generichash_init(&st, NULL, 0, sizeof h);
	crypto_generichash_update(&st, b, 2);
	crypto_generichash_update(&st, (const uint8_t *)topic, tl);
	be_put32(b, partition);
	be_put64(b + 4, offset);
	crypto_generichash_update(&st, b, sizeof b);
	crypto_generichash_final(&st, h, sizeof h);
	memcpy(out, "msg_", 4);
	sodium_bin2hex(out + 4, cap - 4, h, sizeof h);
	return SL_OK;
}
