/*
 * auth_b64.c: strict unpadded base64url on libsodium's constant-time codec.
 * libsodium refuses non-zero trailing bits, `=` and ASCII outside the
 * alphabet (with no `ignore` set and no end pointer), but its 1.0.18 decoder
 * (Debian 12) ACCEPTS bytes 0x80..0xff as if they were letters, so a token
 * could be re-spelled and still verify: we check the alphabet ourselves
 * first, without branching on the characters (a key file's seed passes
 * here). We also check lengths, so that a short output buffer is an error
 * we report, not a misuse abort.
 */
#include <sodium.h>

#include "auth_b64.h"
#include "err.h"

int auth_b64_encode(const uint8_t *bin, size_t n, char *out, size_t cap, size_t *out_len)
{
	size_t chars = AUTH_B64_CHARS(n);

	if (!out || (!bin && n) || cap < chars + 1)
		return SL_ERANGE;
	/* sodium_bin2base64 aborts on a short buffer: the check above is what
	 * keeps that from happening (its own bound is the same number). */
	sodium_bin2base64(out, cap, bin, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	if (out_len)
		*out_len = chars;
	return SL_OK;
}

/* 1 if every character of s[0..len) is in the base64url alphabet. */
static int alphabet_ok(const char *s, size_t len)
{
	unsigned bad = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned c = (unsigned char)s[i];
		unsigned ok = (c - 'A' < 26u) | (c - 'a' < 26u) | (c - '0' < 10u) | (c == '-') | (c == '_');
		bad |= ok ^ 1u;
	}
	return bad == 0;
}

int auth_b64_decode(const char *s, size_t len, uint8_t *out, size_t cap, size_t *n)
{
	size_t got = 0;

	if (!n || (!s && len))
		return SL_EMALFORMED;
	*n = 0;
	if (len == 0)
		return SL_OK;
	/* 4k+1 characters cannot come from any byte string */
	if (len % 4 == 1 || !alphabet_ok(s, len))
		return SL_EMALFORMED;
	if (len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0) > cap)
		return SL_ERANGE;
	if (sodium_base642bin(out, cap, s, len, NULL, &got, NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
		return SL_EMALFORMED;
	*n = got;
	return SL_OK;
}
