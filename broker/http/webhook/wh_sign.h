/*
 * wh_sign.h: Standard Webhooks signatures (https://www.standardwebhooks.com,
 * spec 1.0.0) for outgoing webhooks: secrets, message ids and the
 * `webhook-signature` header. Pure: no I/O, no clock (the caller passes the
 * attempt's timestamp), libsodium for HMAC-SHA256, Ed25519, BLAKE2b, base64
 * and randomness.
 *
 * What is signed is `{webhook-id}.{webhook-timestamp}.{body}`, byte for byte
 * the body that is sent. Symmetric signatures are `v1,<base64 HMAC-SHA256>`
 * with a secret serialized as `whsec_<base64>`; asymmetric ones are
 * `v1a,<base64 Ed25519 signature>` with `whsk_`/`whpk_` keys. Several
 * signatures (a secret rotation: current and previous keys) are sent space
 * separated in one header; a receiver accepts the message when any matches.
 *
 * Secret format (as the reference libraries read it): the `whsec_` prefix is
 * optional, the rest is standard base64 (RFC 4648 alphabet, padding
 * optional). The spec asks for 24 to 64 random bytes (192 to 512 bits);
 * anything else is refused.
 *
 * Ed25519 keys (the spec says "standard ed25519 key pair, base64"; the
 * reference libraries do not settle the bytes): `whsk_` is base64 of the
 * 64-byte secret key as libsodium and NaCl store it (seed then public key),
 * or of the 32-byte seed alone; `whpk_` is base64 of the 32-byte public key.
 */
#ifndef SLUICE_WH_SIGN_H
#define SLUICE_WH_SIGN_H

#include <stddef.h>
#include <stdint.h>

#define WH_KEY_BYTES_MIN 24
#define WH_KEY_BYTES_MAX 64
#define WH_SECRET_GEN_BYTES 32
/* "whsec_" + base64 of the largest key + NUL */
#define WH_SECRET_CHARS_MAX (6 + 88 + 1)
/* "v1," + base64 of 32 bytes + NUL */
#define WH_SIG_V1_CHARS (3 + 44 + 1)
/* "v1a," + base64 of 64 bytes + NUL */
#define WH_SIG_V1A_CHARS (4 + 88 + 1)
/* "msg_" + 32 hex digits + NUL */
#define WH_MSG_ID_CHARS (4 + 32 + 1)
#define WH_SIGN_KEYS_MAX 4 /* keys in one header: current, previous, and room for a scheme change */
#define WH_SIG_HEADER_CHARS_MAX (WH_SIGN_KEYS_MAX * WH_SIG_V1A_CHARS)

/* Parse a symmetric secret (`whsec_` + base64, or base64 alone) into
 * key[0..*key_len). SL_EINVAL for bad base64 or a key outside
 * WH_KEY_BYTES_MIN..WH_KEY_BYTES_MAX (or larger than cap). s is a C string;
 * nothing is kept. */
int wh_secret_parse(const char *s, uint8_t *key, size_t cap, size_t *key_len);

/* A fresh secret: `whsec_` + base64 of WH_SECRET_GEN_BYTES random bytes,
 * NUL-terminated in out. SL_ERANGE if cap is too small (WH_SECRET_CHARS_MAX
 * is always enough). */
int wh_secret_generate(char *out, size_t cap);

/* Write `v1,<base64 HMAC-SHA256(key, msg_id "." ts_s "." body)>` into out
 * (NUL-terminated; WH_SIG_V1_CHARS bytes are enough). msg_id must not
 * contain '.'. SL_EINVAL for an empty key or a bad id, SL_ERANGE if cap is
 * too small. */
int wh_sign_v1(const uint8_t *key, size_t klen, const char *msg_id, int64_t ts_s, const uint8_t *body, size_t blen,
               char *out, size_t cap);

/* Ed25519 (v1a). wh_ed25519_keypair writes a fresh `whsk_` secret key (of
 * the 64-byte form) and its `whpk_` public key, each NUL-terminated into a
 * buffer of WH_SECRET_CHARS_MAX bytes. wh_ed25519_sk_parse reads `whsk_`
 * (64-byte key or 32-byte seed) into sk[64]. wh_sign_v1a writes
 * `v1a,<base64 signature>` (WH_SIG_V1A_CHARS bytes are enough). */
int wh_ed25519_keypair(char *sk_out, char *pk_out);
int wh_ed25519_sk_parse(const char *s, uint8_t sk[64]);
int wh_sign_v1a(const uint8_t sk[64], const char *msg_id, int64_t ts_s, const uint8_t *body, size_t blen, char *out,
                size_t cap);

/* A signing key of either scheme, as a webhook subscription holds it. */
enum wh_key_kind {
	WH_KEY_HMAC = 1,    /* v1: bytes[0..len) is the HMAC key */
	WH_KEY_ED25519 = 2, /* v1a: bytes[0..64) is the Ed25519 secret key */
};

struct wh_key {
	int kind; /* enum wh_key_kind */
	size_t len;
	uint8_t bytes[WH_KEY_BYTES_MAX];
};

/* Parse `whsec_...` / bare base64 (HMAC) or `whsk_...` (Ed25519) into k. */
int wh_key_parse(const char *s, struct wh_key *k);

/* The `webhook-signature` value: one signature per key, in the order given
 * (put the current key first), separated by single spaces, NUL-terminated.
 * 1..WH_SIGN_KEYS_MAX keys; WH_SIG_HEADER_CHARS_MAX bytes are always enough.
 * SL_EINVAL for no keys, too many or a bad key, SL_ERANGE if cap is too small. */
int wh_signature_header(const struct wh_key *keys, size_t nkeys, const char *msg_id, int64_t ts_s,
                        const uint8_t *body, size_t blen, char *out, size_t cap);

/* The webhook-id of a message: `msg_` + lowercase hex of BLAKE2b with a
 * 16-byte output (libsodium crypto_generichash, no key; Python's
 * hashlib.blake2b(digest_size=16)) of
 * u16be(len(topic)) || topic || u32be(partition) || u64be(offset). It depends on nothing else, so it is the same on every
 * retry and on every node (the spec wants the id to be an idempotency key).
 * A hash rather than the position spelled out: topic names go up to 249
 * bytes and may contain '.', which the signed content uses as a separator.
 * 128 bits keep collisions out of reach for any log. Writes WH_MSG_ID_CHARS
 * bytes (NUL included); SL_ERANGE if cap is smaller, SL_EINVAL for an empty
 * or over-long (> 65535) topic. */
int wh_msg_id(char *out, size_t cap, const char *topic, uint32_t partition, uint64_t offset);

#endif
