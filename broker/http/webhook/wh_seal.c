/*
 * wh_seal.c: see wh_seal.h.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "err.h"
#include "wh_config.h"
#include "wh_seal.h"

#define SEAL_PLAIN_MAX 128 /* a secret's text: whsec_ + base64 of 64 bytes, or whsk_ + base64 of 64 */

int wh_is_sealed(const char *s)
{
	return s && strncmp(s, WH_SEALED_PREFIX, strlen(WH_SEALED_PREFIX)) == 0;
}

int wh_seal(const uint8_t key[WH_SEAL_KEY_BYTES], const char *secret, char *out, size_t cap)
{
	uint8_t box[crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + SEAL_PLAIN_MAX];
	size_t n = secret ? strlen(secret) : 0, pl = strlen(WH_SEALED_PREFIX);
	size_t bl = crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + n;
	if (!secret || n == 0 || n > SEAL_PLAIN_MAX)
		return SL_EINVAL;
	if (cap < pl + sodium_base64_ENCODED_LEN(bl, sodium_base64_VARIANT_URLSAFE_NO_PADDING))
		return SL_ERANGE;
	randombytes_buf(box, crypto_secretbox_NONCEBYTES);
	crypto_secretbox_easy(box + crypto_secretbox_NONCEBYTES, (const uint8_t *)secret, n, box, key);
	memcpy(out, WH_SEALED_PREFIX, pl);
	sodium_bin2base64(out + pl, cap - pl, box, bl, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	return SL_OK;
}

int wh_unseal(const uint8_t key[WH_SEAL_KEY_BYTES], const char *sealed, char *out, size_t cap)
{
	uint8_t box[crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + SEAL_PLAIN_MAX];
	size_t pl = strlen(WH_SEALED_PREFIX), bl = 0;
	const char *b64 = sealed + pl, *end = NULL;
	if (!wh_is_sealed(sealed))
		return SL_EINVAL;
	for (const char *p = b64; *p; p++) /* the alphabet first (libsodium 1.0.18 is lax above 0x7f) */
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' ||
		      *p == '_'))
			return SL_EINVAL;
	if (sodium_base642bin(box, sizeof(box), b64, strlen(b64), NULL, &bl, &end,
	                      sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
	    *end || bl <= crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES)
		return SL_EINVAL;
	size_t n = bl - crypto_secretbox_NONCEBYTES - crypto_secretbox_MACBYTES;
	if (n + 1 > cap)
		return SL_ERANGE;
	if (crypto_secretbox_open_easy((uint8_t *)out, box + crypto_secretbox_NONCEBYTES, bl - crypto_secretbox_NONCEBYTES,
	                               box, key) != 0)
		return SL_EINVAL;
	out[n] = 0;
	if (memchr(out, 0, n)) {
		sodium_memzero(out, n);
		return SL_EINVAL;
	}
	return SL_OK;
}

/* v (a string) sealed in place of itself, when it is not sealed yet. */
static int seal_value(const uint8_t *key, json_t *holder, const char *k, size_t idx, json_t *v)
{
	char sealed[WH_SECRET_TEXT_MAX + 1];
	const char *s = json_string_value(v);
	if (!s || wh_is_sealed(s))
		return SL_OK;
	int rc = wh_seal(key, s, sealed, sizeof(sealed));
	if (rc)
		return rc == SL_EINVAL ? SL_OK : rc; /* not a secret: its checker refuses it later */
	return (k ? json_object_set_new(holder, k, json_string(sealed)) : json_array_set_new(holder, idx, json_string(sealed)))
	           ? SL_ENOMEM
	           : SL_OK;
}

int wh_seal_json(const uint8_t key[WH_SEAL_KEY_BYTES], const char *json, size_t len, char **out)
{
	json_error_t e;
	json_t *o = json_loadb(json, len, JSON_REJECT_DUPLICATES, &e), *a, *v;
	size_t i;
	int rc = SL_OK;
	*out = NULL;
	if (!json_is_object(o)) {
		json_decref(o);
		return SL_EINVAL;
	}
	if ((a = json_object_get(o, "secrets")) && json_is_array(a))
		json_array_foreach(a, i, v) if (rc == SL_OK) rc = seal_value(key, a, NULL, i, v);
	if (rc == SL_OK && (v = json_object_get(o, "rotate_secret")))
		rc = seal_value(key, o, "rotate_secret", 0, v);
	if (rc == SL_OK && !(*out = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER)))
		rc = SL_ENOMEM;
	json_decref(o);
	return rc;
}
