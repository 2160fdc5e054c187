/*
 * auth_challenge.c: the native handshake's signed nonce (see
 * auth_challenge.h). The signed message is at most 14 + 32 + 64 bytes and
 * is built on the stack.
 */
#include <string.h>

#include <sodium.h>

#include "auth_challenge.h"
#include "auth_principal.h"
#include "err.h"

#define CONTEXT_LEN (sizeof AUTH_CHALLENGE_CONTEXT - 1)
#define MSG_BYTES_MAX (CONTEXT_LEN + AUTH_NONCE_BYTES + AUTH_PRINCIPAL_BYTES_MAX)

/* The signed bytes into msg[0..return value), 0 for a bad principal. */
static size_t challenge_msg(const uint8_t *nonce, const char *principal, size_t plen, uint8_t msg[MSG_BYTES_MAX])
{
	if (!nonce || !auth_principal_ok(principal, plen))
		return 0;
	memcpy(msg, AUTH_CHALLENGE_CONTEXT, CONTEXT_LEN);
	memcpy(msg + CONTEXT_LEN, nonce, AUTH_NONCE_BYTES);
	memcpy(msg + CONTEXT_LEN + AUTH_NONCE_BYTES, principal, plen);
	return CONTEXT_LEN + AUTH_NONCE_BYTES + plen;
}

int auth_challenge_new(uint8_t nonce[AUTH_NONCE_BYTES])
{
	if (!nonce)
		return SL_EINVAL;
	if (sodium_init() < 0)
		return SL_EINTERNAL;
	randombytes_buf(nonce, AUTH_NONCE_BYTES);
	return SL_OK;
}

int auth_challenge_sign(const uint8_t sk[AUTH_SK_BYTES], const uint8_t nonce[AUTH_NONCE_BYTES], const char *principal,
                        size_t plen, uint8_t sig[AUTH_SIG_BYTES])
{
	uint8_t msg[MSG_BYTES_MAX];
	size_t n = challenge_msg(nonce, principal, plen, msg);

	if (!sk || !sig || n == 0)
		return SL_EINVAL;
	if (sodium_init() < 0)
		return SL_EINTERNAL;
	crypto_sign_detached(sig, NULL, msg, n, sk);
	return SL_OK;
}

int auth_challenge_verify(const uint8_t pk[AUTH_PK_BYTES], const uint8_t nonce[AUTH_NONCE_BYTES], const char *principal,
                          size_t plen, const uint8_t sig[AUTH_SIG_BYTES])
{
	uint8_t msg[MSG_BYTES_MAX];
	size_t n = challenge_msg(nonce, principal, plen, msg);

	if (!pk || !sig || n == 0)
		return SL_EINVAL;
	if (sodium_init() < 0)
		return SL_EINTERNAL;
	return crypto_sign_verify_detached(sig, msg, n, pk) == 0 ? SL_OK : SL_EUNAUTHENTICATED;
}
