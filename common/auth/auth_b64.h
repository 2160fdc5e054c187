/*
 * auth_b64.h: base64url without padding (RFC 4648 section 5), the encoding of
 * every part of a PASETO token and of our key files. Decoding is strict, as
 * the PASETO spec (docs/01-Protocol-Versions/Common.md) requires: no `=`
 * padding, no characters outside the alphabet, no whitespace, and the unused
 * trailing bits of the last character must be zero, so that every byte
 * string has exactly one encoding (a token cannot be re-spelled).
 */
#ifndef SLUICE_AUTH_B64_H
#define SLUICE_AUTH_B64_H

#include <stddef.h>
#include <stdint.h>

/* Characters of the unpadded encoding of n bytes, without the NUL. */
#define AUTH_B64_CHARS(n) (((n) / 3) * 4 + ((n) % 3 ? (n) % 3 + 1 : 0))

/* Encode bin[0..n) into out, NUL-terminated; *out_len (may be NULL) gets the
 * characters written without the NUL. SL_ERANGE if cap < AUTH_B64_CHARS(n) + 1. */
int auth_b64_encode(const uint8_t *bin, size_t n, char *out, size_t cap, size_t *out_len);

/* Decode s[0..len) into out[0..*n). SL_EMALFORMED for anything that is not
 * the one canonical unpadded encoding, SL_ERANGE if the bytes do not fit in
 * cap (len * 3 / 4 bytes always fit). An empty input decodes to nothing. */
int auth_b64_decode(const char *s, size_t len, uint8_t *out, size_t cap, size_t *n);

#endif
