/*
 * auth_paseto.h: PASETO v4.public tokens (Ed25519 signatures), exactly as
 * https://github.com/paseto-standard/paseto-spec defines them in
 * docs/01-Protocol-Versions/Version4.md and Common.md, and checked against
 * the official test vectors (paseto-standard/test-vectors, v4.json).
 *
 * A token is
 *
 *     "v4.public." base64url(m || sig) [ "." base64url(f) ]
 *
 * where m is the payload (for sluice, a JSON object of claims: auth_token.h),
 * f an optional footer (sent in the clear, authenticated; empty footer means
 * no trailing part), and sig the 64-byte Ed25519 signature over
 * PAE("v4.public.", m, f, i). i is the implicit assertion: bytes both sides
 * know but that are never sent (empty for sluice tokens; a caller may bind a
 * token to a context with it). base64url is RFC 4648 without padding,
 * decoded strictly (auth_b64.h).
 *
 * Only v4.public is implemented: there is no "alg" to negotiate, the header
 * is compared byte for byte, so a v4.local, v3 or any other token is
 * refused as malformed before any key is used (the spec's "algorithm
 * lucidity": a key is only ever an Ed25519 v4.public key).
 *
 * Pure: no I/O, no clock, no global state but libsodium's initialisation.
 * Limits: a token is at most AUTH_TOKEN_BYTES_MAX characters (checked before
 * anything is decoded or allocated; signing refuses to make a longer one),
 * an implicit assertion at most AUTH_IMPLICIT_BYTES_MAX bytes.
 */
#ifndef SLUICE_AUTH_PASETO_H
#define SLUICE_AUTH_PASETO_H

#include <stddef.h>
#include <stdint.h>

#include "slice.h"

#define AUTH_PASETO_HEADER "v4.public."
#define AUTH_PASETO_HEADER_LEN 10
#define AUTH_PK_BYTES 32  /* Ed25519 public key */
#define AUTH_SK_BYTES 64  /* Ed25519 secret key as libsodium keeps it: seed || public key */
#define AUTH_SIG_BYTES 64 /* Ed25519 signature */
#define AUTH_TOKEN_BYTES_MAX 8192
#define AUTH_IMPLICIT_BYTES_MAX 4096

/* PAE (pre-authentication encoding, Common.md): LE64(n) then, for each
 * piece, LE64(len) || piece. Allocates *out (the caller frees it) of
 * *out_len bytes. SL_ETOOLARGE if the total would pass SIZE_MAX / 2,
 * SL_ENOMEM. Exposed for the spec's own PAE examples in the tests. */
int auth_paseto_pae(const struct slice *pieces, size_t n, uint8_t **out, size_t *out_len);

/* Sign payload m with sk into out: the token, NUL-terminated, *out_len
 * (may be NULL) characters without the NUL. footer and implicit may be
 * empty slices. AUTH_TOKEN_BYTES_MAX + 1 bytes of out are always enough.
 * SL_ETOOLARGE if the token would pass AUTH_TOKEN_BYTES_MAX or implicit
 * AUTH_IMPLICIT_BYTES_MAX, SL_ERANGE if cap is too small, SL_EINVAL for a
 * NULL key or out, SL_ENOMEM. */
int auth_paseto_sign(const uint8_t sk[AUTH_SK_BYTES], struct slice payload, struct slice footer, struct slice implicit,
                     char *out, size_t cap, size_t *out_len);

/* Verify token[0..len) with pk and the implicit assertion, and copy the
 * payload into payload[0..*payload_len) (cap bytes; AUTH_TOKEN_BYTES_MAX are
 * always enough). With footer_expected non-NULL the token's footer must be
 * exactly that (compared in constant time; an empty slice means "no
 * footer"); with NULL any footer is accepted (and authenticated: it is part
 * of what is signed). Nothing is written to payload unless the signature is
 * good. Returns:
 *   SL_ETOOLARGE         len > AUTH_TOKEN_BYTES_MAX (nothing else is looked at)
 *   SL_EMALFORMED        not "v4.public.", bad base64url, a part too short
 *                        to hold a signature, an empty footer after a '.'
 *   SL_EUNAUTHENTICATED  the signature does not verify, or the footer is
 *                        not the expected one
 *   SL_ERANGE            the payload does not fit in cap
 *   SL_EINVAL, SL_ENOMEM */
int auth_paseto_verify(const uint8_t pk[AUTH_PK_BYTES], const char *token, size_t len,
                       const struct slice *footer_expected, struct slice implicit, uint8_t *payload, size_t cap,
                       size_t *payload_len);

/* The footer of token[0..len), decoded but NOT verified, into
 * out[0..*n) (cap bytes): for picking a key by its id before verifying.
 * *n = 0 for a token without a footer. Same SL_ETOOLARGE / SL_EMALFORMED /
 * SL_ERANGE as auth_paseto_verify. */
int auth_paseto_footer(const char *token, size_t len, uint8_t *out, size_t cap, size_t *n);

#endif
