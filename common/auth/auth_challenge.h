/*
 * auth_challenge.h: the native protocol's key authentication. The server
 * sends a fresh AUTH_NONCE_BYTES random nonce; the client answers with its
 * principal and an Ed25519 signature, by the key registered for that
 * principal, over
 *
 *     "sluice-auth-v1" || nonce || principal
 *
 * (14 ASCII bytes, 32 bytes, 1..64 bytes; no separators are needed since
 * only the last part varies in length). The context string keeps these
 * signatures from being valid anything else (a token is signed over a PAE
 * that starts with a length, never with these bytes) and versions the
 * scheme. A nonce is used for one attempt only; the server must not reuse
 * it.
 *
 * Caveat: the signature proves the key holder answered THIS nonce, not to
 * whom it was talking. Without TLS, a server the client wrongly trusts
 * could relay another server's nonce. Run it over TLS (with the
 * server certificate verified); binding the TLS channel (an RFC 9266
 * exporter value) into the signed bytes would be the next version.
 */
#ifndef SLUICE_AUTH_CHALLENGE_H
#define SLUICE_AUTH_CHALLENGE_H

#include <stddef.h>
#include <stdint.h>

#include "auth_paseto.h"

#define AUTH_NONCE_BYTES 32
#define AUTH_CHALLENGE_CONTEXT "sluice-auth-v1"

/* A fresh random nonce (libsodium's generator). */
int auth_challenge_new(uint8_t nonce[AUTH_NONCE_BYTES]);

/* Sign the challenge for principal[0..plen) with sk into sig.
 * SL_EINVAL for a bad principal name or NULL arguments. */
int auth_challenge_sign(const uint8_t sk[AUTH_SK_BYTES], const uint8_t nonce[AUTH_NONCE_BYTES], const char *principal,
                        size_t plen, uint8_t sig[AUTH_SIG_BYTES]);

/* SL_OK if sig is pk's signature of the challenge for principal[0..plen);
 * SL_EUNAUTHENTICATED if not; SL_EINVAL for a bad principal name. */
int auth_challenge_verify(const uint8_t pk[AUTH_PK_BYTES], const uint8_t nonce[AUTH_NONCE_BYTES], const char *principal,
                          size_t plen, const uint8_t sig[AUTH_SIG_BYTES]);

#endif
