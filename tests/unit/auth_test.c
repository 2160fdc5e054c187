/*
 * auth_test.c: common/auth: PASETO v4.public against the official test
 * vectors (paseto-standard/test-vectors, v4.json: 4-S-1..3 and 4-F-1..5)
 * and the spec's PAE examples, strict base64url, RFC 3339 times, sluice
 * tokens (claims, expiry and not-before boundaries, audience, tampering,
 * limits), permission parsing and matching, key files (round trip, the
 * mode refusal) and the native handshake's signed challenge.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth_b64.h"
#include "auth_challenge.h"
#include "auth_key.h"
#include "auth_paseto.h"
#include "auth_perm.h"
#include "auth_time.h"
#include "auth_token.h"
#include "err.h"

/* ---- the official v4 test vectors (v4.json) ---------------------------- */

#define VEC_PK "1eb9dbbbbc047c03fd70604e0071f0987e16b28b757225c11f00415d0e20b1a2"
#define VEC_SK                                                                                                 \
	"b4cbfb43df4ce210727d953e4a713307fa19bb7d9f85041438d9e11b942a3774"                                     \
	"1eb9dbbbbc047c03fd70604e0071f0987e16b28b757225c11f00415d0e20b1a2"
#define VEC_SEED "b4cbfb43df4ce210727d953e4a713307fa19bb7d9f85041438d9e11b942a3774"
#define VEC_PAYLOAD "{\"data\":\"this is a signed message\",\"exp\":\"2022-01-01T00:00:00+00:00\"}"
#define VEC_FOOTER "{\"kid\":\"zVhMiPBP9fRf2snEcT7gFTioeA9COcNy9DfgL1W60haN\"}"

struct vector {
	const char *name, *token, *payload, *footer, *implicit;
	int expect; /* SL_OK, or the error a failing vector gets */
};

static const struct vector vectors[] = {
	{"4-S-1",
	 "v4.public.eyJkYXRhIjoidGhpcyBpcyBhIHNpZ25lZCBtZXNzYWdlIiwiZXhwIjoiMjAyMi0wMS0wMVQwMDowMDowMCswMDowMCJ9bg_"
	 "XBBzds8lTZShVlwwKSgeKpLT3yukTw6JUz3W4h_ExsQV-P0V54zemZDcAxFaSeef1QlXEFtkqxT1ciiQEDA",
	 VEC_PAYLOAD, "", "", SL_OK},
	{"4-S-2",
	 "v4.public.eyJkYXRhIjoidGhpcyBpcyBhIHNpZ25lZCBtZXNzYWdlIiwiZXhwIjoiMjAyMi0wMS0wMVQwMDowMDowMCswMDowMCJ9v3Jt8m"
	 "x_TdM2ceTGoqwrh4yDFn0XsHvvV_D0DtwQxVrJEBMl0F2caAdgnpKlt4p7xBnx1HcO-SPo8FPp214HDw."
	 "eyJraWQiOiJ6VmhNaVBCUDlmUmYyc25FY1Q3Z0ZUaW9lQTlDT2NOeTlEZmdMMVc2MGhhTiJ9",
	 VEC_PAYLOAD, VEC_FOOTER, "", SL_OK},
	{"4-S-3",
	 "v4.public.eyJkYXRhIjoidGhpcyBpcyBhIHNpZ25lZCBtZXNzYWdlIiwiZXhwIjoiMjAyMi0wMS0wMVQwMDowMDowMCswMDowMCJ9NPWciu"
	 "D3d0o5eXJXG5pJy-DiVEoyPYWs1YSTwWHNJq6DZD3je5gf-0M4JR9ipdUSJbIovzmBECeaWmaqcaP0DQ."
	 "eyJraWQiOiJ6VmhNaVBCUDlmUmYyc25FY1Q3Z0ZUaW9lQTlDT2NOeTlEZmdMMVc2MGhhTiJ9",
	 VEC_PAYLOAD, VEC_FOOTER, "{\"test-vector\":\"4-S-3\"}", SL_OK},
	/* a v4.local token offered as v4.public */
	{"4-F-1",
	 "v4.local.vngXfCISbnKgiP6VWGuOSlYrFYU300fy9ijW33rznDYgxHNPwWluAY2Bgb0z54CUs6aYYkIJ-bOOOmJHPuX_"
	 "34Agt_IPlNdGDpRdGNnBz2MpWJvB3cttheEc1uyCEYltj7wBQQYX.YXJiaXRyYXJ5LXN0cmluZy10aGF0LWlzbid0LWpzb24",
	 NULL, "arbitrary-string-that-isn't-json", "{\"test-vector\":\"4-F-1\"}", SL_EMALFORMED},
	/* a v4.public token that does not verify */
	{"4-F-2",
	 "v4.public.eyJpbnZhbGlkIjoidGhpcyBzaG91bGQgbmV2ZXIgZGVjb2RlIn22Sp4gjCaUw0c7EH84ZSm_jN_"
	 "Qr41MrgLNu5LIBCzUr1pn3Z-Wukg9h3ceplWigpoHaTLcwxj0NsI1vjTh67YB."
	 "eyJraWQiOiJ6VmhNaVBCUDlmUmYyc25FY1Q3Z0ZUaW9lQTlDT2NOeTlEZmdMMVc2MGhhTiJ9",
	 NULL, VEC_FOOTER, "{\"test-vector\":\"4-F-2\"}", SL_EUNAUTHENTICATED},
	/* a v3.local token */
	{"4-F-3",
	 "v3.local.23e_2PiqpQBPvRFKzB0zHhjmxK3sKo2grFZRRLM-U7L0a8uHxuF9RlVz3Ic6WmdUUWTxCaYycwWV1yM8gKbZB2JhygDMKvHQ7eBf8"
	 "GtF0r3K0Q_gF1PXOxcOgztak1eD1dPe9rLVMSgR0nHJXeIGYVuVrVoLWQ.YXJiaXRyYXJ5LXN0cmluZy10aGF0LWlzbid0LWpzb24",
	 NULL, "arbitrary-string-that-isn't-json", "{\"test-vector\":\"4-F-3\"}", SL_EMALFORMED},
	/* v4.local with a bad tag */
	{"4-F-4",
	 "v4.local.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAQAr68PS4AXe7If_ZgesdkUMvSwscFlAl1pk5HC0e8kApeaqMfGo_"
	 "7OpBnwJOAbY9V7WU6abu74MmcUE8YWAiaArVI8XJ5hOb_4v9RmDkneN0S92dx0OW4pgy7omxgf3S8c3LlQh",
	 NULL, "", "", SL_EMALFORMED},
	/* v4.local with base64 padding */
	{"4-F-5",
	 "v4.local.32VIErrEkmY4JVILovbmfPXKW9wT1OdQepjMTC_MOtjA4kiqw7_tcaOM5GNEcnTxl60WkwMsYXw6FSNb_UdJPXjpzm0KW9ojM5f4O"
	 "2mRvE2IcweP-PRdoHjd5-RHCiExR1IK6t4x-RMNXtQNbz7FvFZ_G-lFpk5RG3EOrwDL6CgDqcerSQ==."
	 "eyJraWQiOiJ6VmhNaVBCUDlmUmYyc25FY1Q3Z0ZUaW9lQTlDT2NOeTlEZmdMMVc2MGhhTiJ9",
	 NULL, VEC_FOOTER, "", SL_EMALFORMED},
};

static void hex(const char *h, uint8_t *out, size_t n)
{
	size_t got = 0;

	cr_assert_eq(sodium_hex2bin(out, n, h, strlen(h), NULL, &got, NULL), 0);
	cr_assert_eq(got, n);
}

static void vec_keys(uint8_t pk[AUTH_PK_BYTES], uint8_t sk[AUTH_SK_BYTES])
{
	hex(VEC_PK, pk, AUTH_PK_BYTES);
	hex(VEC_SK, sk, AUTH_SK_BYTES);
}

Test(paseto, spec_vectors_sign_byte_for_byte)
{
	uint8_t pk[AUTH_PK_BYTES], sk[AUTH_SK_BYTES];
	char tok[AUTH_TOKEN_BYTES_MAX + 1];
	size_t n = 0;

	vec_keys(pk, sk);
	for (size_t i = 0; i < 3; i++) {
		const struct vector *v = &vectors[i];
		cr_assert_eq(auth_paseto_sign(sk, slice_cstr(v->payload), slice_cstr(v->footer), slice_cstr(v->implicit),
		                              tok, sizeof tok, &n),
		             SL_OK, "%s", v->name);
		cr_assert_str_eq(tok, v->token, "%s", v->name);
		cr_assert_eq(n, strlen(v->token));
	}
}

Test(paseto, spec_vectors_verify)
{
	uint8_t pk[AUTH_PK_BYTES], sk[AUTH_SK_BYTES], out[AUTH_TOKEN_BYTES_MAX];
	size_t n;

	vec_keys(pk, sk);
	for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
		const struct vector *v = &vectors[i];
		struct slice f = slice_cstr(v->footer);
		n = 12345;
		int rc = auth_paseto_verify(pk, v->token, strlen(v->token), NULL, slice_cstr(v->implicit), out, sizeof out,
		                            &n);
		cr_assert_eq(rc, v->expect, "%s: %d", v->name, rc);
		/* with the footer named, the answer is the same */
		cr_assert_eq(auth_paseto_verify(pk, v->token, strlen(v->token), &f, slice_cstr(v->implicit), out,
		                                sizeof out, &n),
		             v->expect, "%s", v->name);
		if (v->expect != SL_OK) {
			cr_assert_eq(n, 12345, "%s: nothing is returned for a refused token", v->name);
			continue;
		}
		cr_assert_eq(n, strlen(v->payload));
		cr_assert_arr_eq(out, v->payload, n, "%s", v->name);
	}
}

Test(paseto, footer_and_implicit_are_bound)
{
	uint8_t pk[AUTH_PK_BYTES], sk[AUTH_SK_BYTES], out[256], fbuf[128];
	const struct vector *s2 = &vectors[1], *s3 = &vectors[2], *s1 = &vectors[0];
	struct slice other = slice_cstr("{\"kid\":\"another\"}"), none = slice_make(NULL, 0);
	size_t n;

	vec_keys(pk, sk);
	/* 4-S-3 needs its implicit assertion; 4-S-2 must not get one */
	cr_assert_eq(auth_paseto_verify(pk, s3->token, strlen(s3->token), NULL, none, out, sizeof out, &n),
	             SL_EUNAUTHENTICATED);
	cr_assert_eq(auth_paseto_verify(pk, s2->token, strlen(s2->token), NULL, slice_cstr(s3->implicit), out,
	                                sizeof out, &n),
	             SL_EUNAUTHENTICATED);
	/* an expected footer that differs, or "none" when there is one, and the reverse */
	cr_assert_eq(auth_paseto_verify(pk, s2->token, strlen(s2->token), &other, none, out, sizeof out, &n),
	             SL_EUNAUTHENTICATED);
	cr_assert_eq(auth_paseto_verify(pk, s2->token, strlen(s2->token), &none, none, out, sizeof out, &n),
	             SL_EUNAUTHENTICATED);
	struct slice f2 = slice_cstr(s2->footer);
	cr_assert_eq(auth_paseto_verify(pk, s1->token, strlen(s1->token), &f2, none, out, sizeof out, &n),
	             SL_EUNAUTHENTICATED);
	cr_assert_eq(auth_paseto_verify(pk, s1->token, strlen(s1->token), &none, none, out, sizeof out, &n), SL_OK);
	/* 4-S-2's body with 4-S-1's (empty) footer: the footer is part of what is signed */
	char t[512];
	const char *dot = strrchr(s2->token, '.');
	snprintf(t, sizeof t, "%.*s", (int)(dot - s2->token), s2->token);
	cr_assert_eq(auth_paseto_verify(pk, t, strlen(t), NULL, none, out, sizeof out, &n), SL_EUNAUTHENTICATED);
	/* ...and another footer appended */
	snprintf(t, sizeof t, "%.*s.eyJraWQiOiJhbm90aGVyIn0", (int)(dot - s2->token), s2->token);
	cr_assert_eq(auth_paseto_verify(pk, t, strlen(t), NULL, none, out, sizeof out, &n), SL_EUNAUTHENTICATED);
	/* the unverified footer, for key lookup */
	cr_assert_eq(auth_paseto_footer(s2->token, strlen(s2->token), fbuf, sizeof fbuf, &n), SL_OK);
	cr_assert_eq(n, strlen(VEC_FOOTER));
	cr_assert_arr_eq(fbuf, VEC_FOOTER, n);
	cr_assert_eq(auth_paseto_footer(s1->token, strlen(s1->token), fbuf, sizeof fbuf, &n), SL_OK);
	cr_assert_eq(n, 0);
	cr_assert_eq(auth_paseto_footer(s2->token, strlen(s2->token), fbuf, 10, &n), SL_ERANGE);
	/* too small a payload buffer */
	cr_assert_eq(auth_paseto_verify(pk, s1->token, strlen(s1->token), NULL, none, out, 10, &n), SL_ERANGE);
}

/* A changed character anywhere after the header is refused, whatever it hits. */
Test(paseto, every_tampered_character_is_refused)
{
	uint8_t pk[AUTH_PK_BYTES], sk[AUTH_SK_BYTES], out[256];
	const char *tok = vectors[1].token;
	size_t len = strlen(tok), n;
	char t[512];

	vec_keys(pk, sk);
	for (size_t i = 0; i < len; i++) {
		memcpy(t, tok, len + 1);
		t[i] = t[i] == 'A' ? 'B' : 'A';
		int rc = auth_paseto_verify(pk, t, len, NULL, slice_make(NULL, 0), out, sizeof out, &n);
		cr_assert(rc == SL_EUNAUTHENTICATED || rc == SL_EMALFORMED, "position %zu: %d", i, rc);
		if (i >= AUTH_PASETO_HEADER_LEN && t[i] != '.' && tok[i] != '.' && i + 1 != len &&
		    tok[i + 1] != '.')
			cr_assert_eq(rc, SL_EUNAUTHENTICATED, "position %zu", i);
	}
	/* another key */
	uint8_t pk2[AUTH_PK_BYTES], sk2[AUTH_SK_BYTES];
	crypto_sign_keypair(pk2, sk2);
	cr_assert_eq(auth_paseto_verify(pk2, tok, len, NULL, slice_make(NULL, 0), out, sizeof out, &n),
	             SL_EUNAUTHENTICATED);
}

Test(paseto, malformed_and_oversized_tokens)
{
	uint8_t pk[AUTH_PK_BYTES], sk[AUTH_SK_BYTES], out[256];
	const char *s1 = vectors[0].token;
	struct slice none = slice_make(NULL, 0);
	static char big[AUTH_TOKEN_BYTES_MAX + 2];
	char t[512];
	size_t n;

	vec_keys(pk, sk);
#define REFUSED(s, code)                                                                                         \
	cr_assert_eq(auth_paseto_verify(pk, s, strlen(s), NULL, none, out, sizeof out, &n), code, "%s", s)
	REFUSED("", SL_EMALFORMED);
	REFUSED("v4.public.", SL_EMALFORMED);
	REFUSED("v4.public", SL_EMALFORMED);
	REFUSED("V4.PUBLIC.AAAA", SL_EMALFORMED);
	REFUSED("v2.public.AAAA", SL_EMALFORMED);
	REFUSED("v4.public.AAAA", SL_EMALFORMED); /* too short for a signature */
	/* padding, the standard alphabet, whitespace, a trailing or double dot, an empty footer */
	snprintf(t, sizeof t, "%s=", s1);
	REFUSED(t, SL_EMALFORMED);
	snprintf(t, sizeof t, "%s", s1);
	*strchr(t + 10, '_') = '/';
	REFUSED(t, SL_EMALFORMED);
	snprintf(t, sizeof t, "%s ", s1);
	REFUSED(t, SL_EMALFORMED);
	snprintf(t, sizeof t, "%s.", s1);
	REFUSED(t, SL_EMALFORMED);
	snprintf(t, sizeof t, "%s.e30.e30", s1);
	REFUSED(t, SL_EMALFORMED);
	/* non-zero trailing bits: 4-S-1's last character is 'A' (its last 4 bits are unused) */
	snprintf(t, sizeof t, "%s", s1);
	t[strlen(t) - 1] = 'B';
	REFUSED(t, SL_EMALFORMED);
	/* a byte above 0x7f in place of a letter */
	snprintf(t, sizeof t, "%s", s1);
	t[30] = (char)0xab;
	REFUSED(t, SL_EMALFORMED);
	/* a NUL inside the given length */
	snprintf(t, sizeof t, "%s", s1);
	t[20] = 0;
	cr_assert_eq(auth_paseto_verify(pk, t, strlen(s1), NULL, none, out, sizeof out, &n), SL_EMALFORMED);
	/* the size limit comes first: AUTH_TOKEN_BYTES_MAX is fine, one more is not */
	memset(big, 'A', sizeof big - 1);
	memcpy(big, "v4.public.", 10);
	cr_assert_eq(auth_paseto_verify(pk, big, AUTH_TOKEN_BYTES_MAX + 1, NULL, none, out, sizeof out, &n),
	             SL_ETOOLARGE);
	cr_assert_neq(auth_paseto_verify(pk, big, AUTH_TOKEN_BYTES_MAX, NULL, none, out, sizeof out, &n),
	              SL_ETOOLARGE);
	cr_assert_eq(auth_paseto_verify(pk, NULL, 100000, NULL, none, out, sizeof out, &n), SL_ETOOLARGE);
	/* signing refuses to make a token over the limit */
	static char payload[AUTH_TOKEN_BYTES_MAX];
	static char tok[AUTH_TOKEN_BYTES_MAX + 1];
	size_t fit = 0; /* the largest payload that fits */
	while (AUTH_PASETO_HEADER_LEN + AUTH_B64_CHARS(fit + 1 + AUTH_SIG_BYTES) <= AUTH_TOKEN_BYTES_MAX)
		fit++;
	cr_assert_eq(fit, 6072);
	memset(payload, 'x', sizeof payload);
	cr_assert_eq(auth_paseto_sign(sk, slice_make(payload, fit), none, none, tok, sizeof tok, &n), SL_OK);
	cr_assert_leq(n, AUTH_TOKEN_BYTES_MAX);
	cr_assert_eq(auth_paseto_sign(sk, slice_make(payload, fit + 1), none, none, tok, sizeof tok, &n),
	             SL_ETOOLARGE);
	cr_assert_eq(auth_paseto_sign(sk, slice_make(payload, 10), none, none, tok, 50, &n), SL_ERANGE);
}

Test(paseto, pae_spec_examples)
{
	uint8_t *o = NULL;
	size_t n = 0;
	struct slice empty = slice_make("", 0), test = slice_cstr("test");

	cr_assert_eq(auth_paseto_pae(NULL, 0, &o, &n), SL_OK);
	cr_assert_eq(n, 8);
	cr_assert_arr_eq(o, "\0\0\0\0\0\0\0\0", 8);
	free(o);
	cr_assert_eq(auth_paseto_pae(&empty, 1, &o, &n), SL_OK);
	cr_assert_eq(n, 16);
	cr_assert_arr_eq(o, "\x01\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 16);
	free(o);
	cr_assert_eq(auth_paseto_pae(&test, 1, &o, &n), SL_OK);
	cr_assert_eq(n, 20);
	cr_assert_arr_eq(o, "\x01\0\0\0\0\0\0\0\x04\0\0\0\0\0\0\0test", 20);
	free(o);
}

Test(paseto, round_trip_any_bytes)
{
	uint8_t pk[AUTH_PK_BYTES], sk[AUTH_SK_BYTES], buf[300], out[300];
	char tok[AUTH_TOKEN_BYTES_MAX + 1];
	size_t n, m;

	crypto_sign_keypair(pk, sk);
	for (size_t len = 0; len < sizeof buf; len += 7) {
		randombytes_buf(buf, len);
		struct slice f = slice_make(buf, len % 5);
		cr_assert_eq(auth_paseto_sign(sk, slice_make(buf, len), f, slice_cstr("ctx"), tok, sizeof tok, &n), SL_OK);
		cr_assert_eq(strlen(tok), n);
		cr_assert_eq(auth_paseto_verify(pk, tok, n, &f, slice_cstr("ctx"), out, sizeof out, &m), SL_OK);
		cr_assert_eq(m, len);
		cr_assert_arr_eq(out, buf, len);
	}
}

/* ---- base64url ---------------------------------------------------------- */

Test(b64, strict_unpadded_base64url)
{
	uint8_t out[16];
	char s[32];
	size_t n;

	cr_assert_eq(auth_b64_encode((const uint8_t *)"\xfb\xff", 2, s, sizeof s, &n), SL_OK);
	cr_assert_str_eq(s, "-_8");
	cr_assert_eq(n, 3);
	cr_assert_eq(auth_b64_encode((const uint8_t *)"\xfb\xff", 2, s, 3, &n), SL_ERANGE);
	cr_assert_eq(auth_b64_decode("-_8", 3, out, sizeof out, &n), SL_OK);
	cr_assert_eq(n, 2);
	cr_assert_arr_eq(out, "\xfb\xff", 2);
	cr_assert_eq(auth_b64_decode("", 0, out, sizeof out, &n), SL_OK);
	cr_assert_eq(n, 0);
	cr_assert_eq(auth_b64_decode("-_8=", 4, out, sizeof out, &n), SL_EMALFORMED);
	cr_assert_eq(auth_b64_decode("+/8", 3, out, sizeof out, &n), SL_EMALFORMED);
	cr_assert_eq(auth_b64_decode("-_9", 3, out, sizeof out, &n), SL_EMALFORMED); /* trailing bits */
	cr_assert_eq(auth_b64_decode("A", 1, out, sizeof out, &n), SL_EMALFORMED);
	cr_assert_eq(auth_b64_decode("AA A", 4, out, sizeof out, &n), SL_EMALFORMED);
	/* every byte outside the alphabet, in every position (libsodium 1.0.18 alone lets 0x80..0xff through) */
	for (int c = 0; c < 256; c++) {
		int in = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
		for (int pos = 0; pos < 4; pos++) {
			char q[4] = {'A', 'A', 'A', 'A'};
			q[pos] = (char)c;
			cr_assert_eq(auth_b64_decode(q, 4, out, sizeof out, &n), in ? SL_OK : SL_EMALFORMED, "byte %d at %d",
			             c, pos);
		}
	}
	cr_assert_eq(auth_b64_decode("AAAAAAAA", 8, out, 5, &n), SL_ERANGE);
	cr_assert_eq(AUTH_B64_CHARS(32), 43);
	cr_assert_eq(AUTH_B64_CHARS(64), 86);
	cr_assert_eq(AUTH_B64_CHARS(3), 4);
}

/* ---- RFC 3339 ----------------------------------------------------------- */

Test(time, format_and_parse)
{
	char s[AUTH_TIME_CHARS];
	int64_t t;
	int frac;

	cr_assert_eq(auth_time_format(0, s), SL_OK);
	cr_assert_str_eq(s, "1970-01-01T00:00:00Z");
	cr_assert_eq(auth_time_format(1640995200, s), SL_OK);
	cr_assert_str_eq(s, "2022-01-01T00:00:00Z");
	cr_assert_eq(auth_time_format(951782400, s), SL_OK);
	cr_assert_str_eq(s, "2000-02-29T00:00:00Z");
	cr_assert_eq(auth_time_format(-1, s), SL_OK);
	cr_assert_str_eq(s, "1969-12-31T23:59:59Z");
	cr_assert_eq(auth_time_format(253402300799, s), SL_OK);
	cr_assert_str_eq(s, "9999-12-31T23:59:59Z");
	cr_assert_eq(auth_time_format(253402300800, s), SL_ERANGE);

	static const struct {
		const char *s;
		int64_t t;
		int frac;
	} ok[] = {
		{"2022-01-01T00:00:00+00:00", 1640995200, 0}, /* the vectors' form */
		{"2022-01-01T00:00:00Z", 1640995200, 0},
		{"2022-01-01t00:00:00z", 1640995200, 0},
		{"2022-01-01T01:30:00+01:30", 1640995200, 0},
		{"2021-12-31T19:00:00-05:00", 1640995200, 0},
		{"2022-01-01T00:00:00.000Z", 1640995200, 0},
		{"2022-01-01T00:00:00.999999999Z", 1640995200, 1},
		{"2016-12-31T23:59:60Z", 1483228800, 0},
		{"2000-02-29T12:00:00Z", 951825600, 0},
		{"1970-01-01T00:00:00Z", 0, 0},
	};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		frac = -1;
		cr_assert_eq(auth_time_parse(ok[i].s, strlen(ok[i].s), &t, &frac), SL_OK, "%s", ok[i].s);
		cr_assert_eq(t, ok[i].t, "%s: %lld", ok[i].s, (long long)t);
		cr_assert_eq(frac, ok[i].frac, "%s", ok[i].s);
	}
	static const char *bad[] = {
		"", "2022-01-01", "2022-01-01T00:00:00", "2022-01-01 00:00:00Z", "2022-13-01T00:00:00Z",
		"2021-02-29T00:00:00Z", "2022-01-32T00:00:00Z", "2022-01-01T24:00:00Z", "2022-01-01T00:60:00Z",
		"2022-01-01T00:00:61Z", "2022-01-01T00:00:00.Z", "2022-01-01T00:00:00+0100", "2022-01-01T00:00:00+24:00",
		"2022-01-01T00:00:00Z ", "+2022-01-01T00:00:00Z", "2022-1-01T00:00:00Z", "1640995200",
		"2022-01-01T00:00:00+01:60",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		cr_assert_eq(auth_time_parse(bad[i], strlen(bad[i]), &t, NULL), SL_EMALFORMED, "%s", bad[i]);
	/* round trip over a wide range */
	for (int64_t x = -62167219200; x < 253402300800; x += 86399 * 397 + 13) {
		cr_assert_eq(auth_time_format(x, s), SL_OK);
		cr_assert_eq(auth_time_parse(s, strlen(s), &t, NULL), SL_OK, "%s", s);
		cr_assert_eq(t, x, "%s", s);
	}
}

/* ---- sluice tokens ------------------------------------------------------ */

#define NOW 1700000000 /* 2023-11-14T22:13:20Z */

static void test_keys(uint8_t pk[AUTH_PK_BYTES], uint8_t sk[AUTH_SK_BYTES])
{
	cr_assert_eq(sodium_init() >= 0, 1);
	crypto_sign_keypair(pk, sk);
}

/* A token whose payload is exactly json, signed with sk. */
static void sign_json(const uint8_t *sk, const char *json, char *tok, size_t cap)
{
	cr_assert_eq(auth_paseto_sign(sk, slice_cstr(json), slice_make(NULL, 0), slice_make(NULL, 0), tok, cap, NULL),
	             SL_OK);
}

Test(token, issue_and_check)
{
	uint8_t pk[AUTH_PK_BYTES], sk[AUTH_SK_BYTES];
	static char tok[AUTH_TOKEN_BYTES_MAX + 1];
	const char *perms[] = {"sub:orders.*", "pub:orders.eu.>", "admin"};
	struct auth_claims c;
	char why[AUTH_WHY_CHARS];
	size_t n;

	test_keys(pk, sk);
	cr_assert_eq(auth_token_issue(sk, "alice", 3600, "cluster-7", perms, 3, NOW, tok, sizeof tok, &n), SL_OK);
	cr_assert_eq(strncmp(tok, "v4.public.", 10), 0);
	cr_assert_eq(strlen(tok), n);
	cr_assert_eq(auth_token_check(pk, tok, n, "cluster-7", NOW, &c, why, sizeof why), SL_OK, "%s", why);
	cr_assert_str_eq(c.sub, "alice");
	cr_assert_str_eq(c.aud, "cluster-7");
	cr_assert_eq(c.iat_s, NOW);
	cr_assert_eq(c.exp_s, NOW + 3600);
	cr_assert_eq(c.has_nbf, 0);
	cr_assert_eq(strlen(c.jti), 32);
	cr_assert_eq(c.has_perms, 1);
	cr_assert_eq(c.nperms, 3);
	cr_assert_str_eq(c.perms[0].pattern, "orders.*");
	cr_assert_eq(c.perms[0].verb, AUTH_VERB_SUBSCRIBE);
	cr_assert_eq(c.perms[1].verb, AUTH_VERB_PUBLISH);
	cr_assert_eq(c.perms[2].verb, AUTH_VERB_ADMIN);
	cr_assert_str_eq(c.perms[2].pattern, ">");
	/* narrowing */
	cr_assert(auth_claims_allow(&c, AUTH_VERB_SUBSCRIBE, "orders.eu", 9));
	cr_assert_not(auth_claims_allow(&c, AUTH_VERB_PUBLISH, "orders.us", 9));
	cr_assert(auth_claims_allow(&c, AUTH_VERB_PUBLISH, "orders.eu.paris", 15));
	cr_assert_not(auth_claims_allow(&c, AUTH_VERB_CONSUME, "orders.eu", 9));
	/* the payload is the documented JSON: canonical permissions, RFC 3339 times */
	uint8_t payload[AUTH_TOKEN_BYTES_MAX];
	cr_assert_eq(auth_paseto_verify(pk, tok, n, NULL, slice_make(NULL, 0), payload, sizeof payload, &n), SL_OK);
	payload[n] = 0;
	cr_assert(strstr((char *)payload, "\"sub\":\"alice\""));
	cr_assert(strstr((char *)payload, "\"iat\":\"2023-11-14T22:13:20Z\""));
	cr_assert(strstr((char *)payload, "\"exp\":\"2023-11-14T23:13:20Z\""));
	cr_assert(strstr((char *)payload, "\"perms\":[\"subscribe:orders.*\",\"publish:orders.eu.>\",\"admin:>\"]"),
	          "%s", payload);
	/* two tokens differ (jti) */
	static char tok2[AUTH_TOKEN_BYTES_MAX + 1];
	cr_assert_eq(auth_token_issue(sk, "alice", 3600, "cluster-7", perms, 3, NOW, tok2, sizeof tok2, NULL), SL_OK);
	cr_assert_str_neq(tok, tok2);
}

Test(token, default_audience_and_no_narrowing)
{
	uint8_t pk[AUTH_PK_BYTES], sk[AUTH_SK_BYTES];
	char tok[AUTH_TOKEN_BYTES_MAX + 1], why[AUTH_WHY_CHARS];
	struct auth_claims c;
	size_t n;

	test_keys(pk, sk);
	cr_assert_eq(auth_token_issue(sk, "svc.billing-1", 60, NULL, NULL, 0, NOW, tok, sizeof tok, &n), SL_OK);
	cr_assert_eq(auth_token_check(pk, tok, n, NULL, NOW, &c, why, sizeof why), SL_OK, "%s", why);
	cr_assert_str_eq(c.aud, "sluice");
	cr_assert_eq(c.has_perms, 0);
	cr_assert(auth_claims_allow(&c, AUTH_VERB_PUBLISH, "anything", 8));
	cr_assert_eq(auth_token_check(pk, tok, n, "sluice", NOW, &c, why, sizeof why), SL_OK);
	/* "perms": [] allows nothing */
	const char *none[1] = {NULL};
	cr_assert_eq(auth_token_issue(sk, "bob", 60, NULL, none, 0, NOW, tok, sizeof tok, &n), SL_OK);
	cr_assert_eq(auth_token_check(pk, tok, n, NULL, NOW, &c, why, sizeof why), SL_OK, "%s", why);
	cr_assert_eq(c.has_perms, 1);
	cr_assert_eq(c.nperms, 0);
	cr_assert_not(auth_claims_allow(&c, AUTH_VERB_PUBLISH, "anything", 8));
}

Test(token, expiry_boundary)
{
	uint8_t pk[AUTH_PK_BYTES], sk[AUTH_SK_BYTES];
	char tok[AUTH_TOKEN_BYTES_MAX + 1], why[AUTH_WHY_CHARS];
	struct auth_claims c;
	size_t n;

	test_keys(pk, sk);
	cr_assert_eq(auth_token_issue(sk, "alice", 100, NULL, NULL, 0, NOW, tok, sizeof tok, &n), SL_OK);
	cr_assert_eq(auth_token_check(pk, tok, n, NULL, NOW + 99, &c, why, sizeof why), SL_OK);
	cr_assert_eq(auth_token_check(pk, tok, n, NULL, NOW + 100, &c, why, sizeof why), SL_ETIMEOUT);
	cr_assert_str_eq(why, "token expired at 2023-11-14T22:15:00Z");
	cr_assert_str_eq(c.sub, "", "claims are cleared on failure");
	cr_assert_eq(auth_token_check(pk, tok, n, NULL, NOW + 100000, &c, why, sizeof why), SL_ETIMEOUT);
	/* a fractional exp is rounded down: expired from its whole second on */
	sign_json(sk, "{\"sub\":\"a\",\"aud\":\"sluice\",\"iat\":\"2023-11-14T22:13:20Z\",\"exp\":\"2023-11-14T22:15:00.5Z\"}",
	          tok, sizeof tok);
	cr_assert_eq(auth_token_check(pk, tok, strlen(tok), NULL, NOW + 99, &c, why, sizeof why), SL_OK, "%s", why);
	cr_assert_eq(auth_token_check(pk, tok, strlen(tok), NULL, NOW + 100, &c, why, sizeof why), SL_ETIMEOUT);
}

Test(token, not_before_boundary)
{
	uint8_t pk[AUTH_PK_BYTES], sk[AUTH_SK_BYTES];
	char tok[AUTH_TOKEN_BYTES_MAX + 1], why[AUTH_WHY_CHARS];
	struct auth_claims c;

	test_keys(pk, sk);
	/* nbf 22:20:00Z written with an offset, exp an hour later */
	sign_json(sk,
	          "{\"sub\":\"alice\",\"aud\":\"sluice\",\"iat\":\"2023-11-14T22:13:20Z\",\"nbf\":\"2023-11-14T23:20:00+01:00\","
	          "\"exp\":\"2023-11-14T23:20:00Z\",\"jti\":\"j1\",\"x-private\":[1,2,3]}",
	          tok, sizeof tok);
	cr_assert_eq(auth_token_check(pk, tok, strlen(tok), NULL, NOW + 399, &c, why, sizeof why), SL_EAGAIN);
	cr_assert_str_eq(why, "token is not valid before 2023-11-14T22:20:00Z");
	cr_assert_eq(auth_token_check(pk, tok, strlen(tok), NULL, NOW + 400, &c, why, sizeof why), SL_OK, "%s", why);
	cr_assert_eq(c.has_nbf, 1);
	cr_assert_eq(c.nbf_s, NOW + 400);
	cr_assert_str_eq(c.jti, "j1");
	cr_assert_eq(auth_token_check(pk, tok, strlen(tok), NULL, NOW + 3999, &c, why, sizeof why), SL_OK);
	cr_assert_eq(auth_token_check(pk, tok, strlen(tok), NULL, NOW + 4000, &c, why, sizeof why), SL_ETIMEOUT);
	/* a fractional nbf is rounded up */
	sign_json(sk,
	          "{\"sub\":\"alice\",\"aud\":\"sluice\",\"iat\":\"2023-11-14T22:13:20Z\",\"nbf\":\"2023-11-14T22:19:59.001Z\","
	          "\"exp\":\"2023-11-14T23:20:00Z\"}",
	          tok, sizeof tok);
	cr_assert_eq(auth_token_check(pk, tok, strlen(tok), NULL, NOW + 399, &c, why, sizeof why), SL_EAGAIN);
	cr_assert_eq(auth_token_check(pk, tok, strlen(tok), NULL, NOW + 400, &c, why, sizeof why), SL_OK);
}

Test(token, wrong_audience_key_and_tampering)
{
	uint8_t pk[AUTH_PK_BYTES], sk[AUTH_SK_BYTES], pk2[AUTH_PK_BYTES], sk2[AUTH_SK_BYTES];
	char tok[AUTH_TOKEN_BYTES_MAX + 1], why[AUTH_WHY_CHARS];
	struct auth_claims c;
	size_t n;

	test_keys(pk, sk);
	test_keys(pk2, sk2);
	cr_assert_eq(auth_token_issue(sk, "alice", 100, "east", NULL, 0, NOW, tok, sizeof tok, &n), SL_OK);
	cr_assert_eq(auth_token_check(pk, tok, n, "west", NOW, &c, why, sizeof why), SL_EPERMISSION);
	cr_assert_str_eq(why, "token is for audience \"east\", not \"west\"");
	cr_assert_eq(auth_token_check(pk, tok, n, NULL, NOW, &c, why, sizeof why), SL_EPERMISSION);
	cr_assert_eq(auth_token_check(pk2, tok, n, "east", NOW, &c, why, sizeof why), SL_EUNAUTHENTICATED);
	cr_assert(strstr(why, "signature"));
	/* a flipped payload character */
	tok[20] = tok[20] == 'x' ? 'y' : 'x';
	cr_assert_eq(auth_token_check(pk, tok, n, "east", NOW, &c, why, sizeof why), SL_EUNAUTHENTICATED);
	tok[20] = 0;
	cr_assert_eq(auth_token_check(pk, tok, 20, "east", NOW, &c, why, sizeof why), SL_EMALFORMED);
	cr_assert_str_eq(why, "not a v4.public PASETO token");
	/* the same claims signed by an attacker's key are still refused */
	cr_assert_eq(auth_token_issue(sk2, "alice", 100, "east", NULL, 0, NOW, tok, sizeof tok, &n), SL_OK);
	cr_assert_eq(auth_token_check(pk, tok, n, "east", NOW, &c, why, sizeof why), SL_EUNAUTHENTICATED);
	/* over-long */
	static char big[AUTH_TOKEN_BYTES_MAX + 10];
	memset(big, 'A', sizeof big);
	memcpy(big, "v4.public.", 10);
	cr_assert_eq(auth_token_check(pk, big, sizeof big, "east", NOW, &c, why, sizeof why), SL_ETOOLARGE);
	cr_assert_str_eq(why, "token is longer than 8192 bytes");
	/* bad base64 */
	cr_assert_eq(auth_token_check(pk, "v4.public.!!!!", 14, "east", NOW, &c, why, sizeof why), SL_EMALFORMED);
}

Test(token, malformed_claims)
{
	uint8_t pk[AUTH_PK_BYTES], sk[AUTH_SK_BYTES];
	char tok[AUTH_TOKEN_BYTES_MAX + 1], why[AUTH_WHY_CHARS];
	struct auth_claims c;
#define CL(extra) "{\"sub\":\"alice\",\"aud\":\"sluice\",\"iat\":\"2023-11-14T22:13:20Z\"" extra "}"
#define EXP ",\"exp\":\"2023-11-14T23:00:00Z\""
	static const struct {
		const char *json, *why;
	} bad[] = {
		{"not json", "token payload is not a JSON object"},
		{"[1,2]", "token payload is not a JSON object"},
		{"\"str\"", "token payload is not a JSON object"},
		{CL(""), "a token needs the claims sub, aud, iat and exp"},
		{"{\"aud\":\"sluice\",\"iat\":\"2023-11-14T22:13:20Z\"" EXP "}",
		 "a token needs the claims sub, aud, iat and exp"},
		{CL(",\"exp\":1700003600"), "claim \"exp\" must be a string of at most 63 bytes"},
		{CL(",\"exp\":\"tomorrow\""), "claim \"exp\" is not an RFC 3339 date-time"},
		{CL(EXP ",\"nbf\":\"soon\""), "claim \"nbf\" is not an RFC 3339 date-time"},
		{CL(EXP ",\"aud\":\"other\""), "token payload is not a JSON object"}, /* duplicate key */
		{"{\"sub\":\"al ice\",\"aud\":\"sluice\",\"iat\":\"2023-11-14T22:13:20Z\"" EXP "}",
		 "claim \"sub\" is not a principal name (1-64 of A-Z a-z 0-9 . _ -)"},
		{"{\"sub\":\"\",\"aud\":\"sluice\",\"iat\":\"2023-11-14T22:13:20Z\"" EXP "}",
		 "claim \"sub\" is not a principal name (1-64 of A-Z a-z 0-9 . _ -)"},
		{"{\"sub\":7,\"aud\":\"sluice\",\"iat\":\"2023-11-14T22:13:20Z\"" EXP "}",
		 "claim \"sub\" must be a string of at most 64 bytes"},
		{CL(EXP ",\"perms\":\"sub:a\""), "claim \"perms\" must be an array of at most 32 permissions"},
		{CL(EXP ",\"perms\":[\"sub:a\",\"write:b\"]"),
		 "claim \"perms\"[1]: unknown verb: use publish, subscribe, consume, admin or cluster"},
		{CL(EXP ",\"perms\":[3]"), "claim \"perms\"[0]: not a string"},
		{CL(EXP ",\"jti\":5"), "claim \"jti\" must be a string of at most 64 bytes"},
	};

	test_keys(pk, sk);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		sign_json(sk, bad[i].json, tok, sizeof tok);
		cr_assert_eq(auth_token_check(pk, tok, strlen(tok), NULL, NOW, &c, why, sizeof why), SL_EMALFORMED, "%s",
		             bad[i].json);
		cr_assert_str_eq(why, bad[i].why, "%s", bad[i].json);
	}
	sign_json(sk, CL(EXP), tok, sizeof tok);
	cr_assert_eq(auth_token_check(pk, tok, strlen(tok), NULL, NOW, &c, why, sizeof why), SL_OK, "%s", why);
	/* a NULL why is fine */
	cr_assert_eq(auth_token_check(pk, "x", 1, NULL, NOW, &c, NULL, 0), SL_EMALFORMED);
}

Test(token, issue_refusals)
{
	uint8_t pk[AUTH_PK_BYTES], sk[AUTH_SK_BYTES];
	char tok[AUTH_TOKEN_BYTES_MAX + 1];
	const char *bad_perm[] = {"sub:orders.*", "sub:ord*"};
	const char *many[AUTH_TOKEN_PERMS_MAX + 1];
	char name[80];

	test_keys(pk, sk);
	for (size_t i = 0; i < AUTH_TOKEN_PERMS_MAX + 1; i++)
		many[i] = "pub:a";
	cr_assert_eq(auth_token_issue(sk, "", 60, NULL, NULL, 0, NOW, tok, sizeof tok, NULL), SL_EINVAL);
	cr_assert_eq(auth_token_issue(sk, "a b", 60, NULL, NULL, 0, NOW, tok, sizeof tok, NULL), SL_EINVAL);
	memset(name, 'a', 65);
	name[65] = 0;
	cr_assert_eq(auth_token_issue(sk, name, 60, NULL, NULL, 0, NOW, tok, sizeof tok, NULL), SL_EINVAL);
	name[64] = 0;
	cr_assert_eq(auth_token_issue(sk, name, 60, NULL, NULL, 0, NOW, tok, sizeof tok, NULL), SL_OK);
	cr_assert_eq(auth_token_issue(sk, "a", 0, NULL, NULL, 0, NOW, tok, sizeof tok, NULL), SL_EINVAL);
	cr_assert_eq(auth_token_issue(sk, "a", AUTH_TOKEN_TTL_S_MAX + 1, NULL, NULL, 0, NOW, tok, sizeof tok, NULL),
	             SL_EINVAL);
	cr_assert_eq(auth_token_issue(sk, "a", 60, "has space", NULL, 0, NOW, tok, sizeof tok, NULL), SL_EINVAL);
	cr_assert_eq(auth_token_issue(sk, "a", 60, "", NULL, 0, NOW, tok, sizeof tok, NULL), SL_EINVAL);
	cr_assert_eq(auth_token_issue(sk, "a", 60, NULL, bad_perm, 2, NOW, tok, sizeof tok, NULL), SL_EINVAL);
	cr_assert_eq(auth_token_issue(sk, "a", 60, NULL, many, AUTH_TOKEN_PERMS_MAX + 1, NOW, tok, sizeof tok, NULL),
	             SL_EINVAL);
	cr_assert_eq(auth_token_issue(sk, "a", 60, NULL, many, AUTH_TOKEN_PERMS_MAX, NOW, tok, sizeof tok, NULL),
	             SL_OK);
	cr_assert_eq(auth_token_issue(sk, "a", 60, NULL, NULL, 0, INT64_MAX - 10, tok, sizeof tok, NULL), SL_EINVAL);
	cr_assert_eq(auth_token_issue(sk, "a", 60, NULL, NULL, 0, NOW, tok, 40, NULL), SL_ERANGE);
}

Test(token, principal_names)
{
	cr_assert(auth_principal_ok("alice", 5));
	cr_assert(auth_principal_ok("svc.billing_v2-eu", 17));
	cr_assert_not(auth_principal_ok("", 0));
	cr_assert_not(auth_principal_ok(NULL, 3));
	cr_assert_not(auth_principal_ok("a b", 3));
	cr_assert_not(auth_principal_ok("a:b", 3));
	cr_assert_not(auth_principal_ok("a/b", 3));
	cr_assert_not(auth_principal_ok("\xc3\xa9", 2));
	cr_assert_not(auth_principal_ok("a\0b", 3));
	char s[65];
	memset(s, 'x', sizeof s);
	cr_assert(auth_principal_ok(s, 64));
	cr_assert_not(auth_principal_ok(s, 65));
}

/* ---- permissions -------------------------------------------------------- */

Test(perm, parse_table)
{
	static const struct {
		const char *in, *canon;
		int verb;
	} ok[] = {
		{"sub:orders.*", "subscribe:orders.*", AUTH_VERB_SUBSCRIBE},
		{"subscribe:orders.*", "subscribe:orders.*", AUTH_VERB_SUBSCRIBE},
		{"pub:orders.>", "publish:orders.>", AUTH_VERB_PUBLISH},
		{"publish:orders", "publish:orders", AUTH_VERB_PUBLISH},
		{"consume:billing.*.invoices", "consume:billing.*.invoices", AUTH_VERB_CONSUME},
		{"admin", "admin:>", AUTH_VERB_ADMIN},
		{"admin:orders.*", "admin:orders.*", AUTH_VERB_ADMIN},
		{"cluster", "cluster:>", AUTH_VERB_CLUSTER},
		{"pub:>", "publish:>", AUTH_VERB_PUBLISH},
		{"pub:*", "publish:*", AUTH_VERB_PUBLISH},
		{"pub:*.*.>", "publish:*.*.>", AUTH_VERB_PUBLISH},
		{"pub:a_b-C9.x", "publish:a_b-C9.x", AUTH_VERB_PUBLISH},
	};
	static const char *bad[] = {
		"",          "sub",        "pub",      "consume",     "sub:",       "write:a",   "SUB:a",
		"su:a",      "subs:a",     "sub:ord*", "sub:*x",      "sub:a.>.b",  "sub:>.a",   "sub:>>",
		"sub:**",    "sub:a b",    "sub:a/b",  "sub:a:b",     "admin:",     ":a",        "sub:a\n",
		"publish :a"};
	struct auth_perm p;
	char buf[AUTH_PERM_CHARS_MAX], why[96];

	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		cr_assert_eq(auth_perm_parse(ok[i].in, strlen(ok[i].in), &p, why, sizeof why), SL_OK, "%s: %s", ok[i].in,
		             why);
		cr_assert_eq(p.verb, ok[i].verb, "%s", ok[i].in);
		cr_assert_eq(auth_perm_format(&p, buf, sizeof buf), SL_OK);
		cr_assert_str_eq(buf, ok[i].canon);
		cr_assert_eq(p.len, strlen(p.pattern));
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		why[0] = 0;
		cr_assert_eq(auth_perm_parse(bad[i], strlen(bad[i]), &p, why, sizeof why), SL_EINVAL, "%s", bad[i]);
		cr_assert_neq(why[0], 0, "%s: no reason given", bad[i]);
	}
	auth_perm_parse("sub:ord*", 8, &p, why, sizeof why);
	cr_assert_str_eq(why, "'*' must be a whole segment");
	auth_perm_parse("sub:a.>.b", 9, &p, why, sizeof why);
	cr_assert_str_eq(why, "'>' may only be the last segment of a pattern");
	auth_perm_parse("pub", 3, &p, why, sizeof why);
	cr_assert_str_eq(why, "publish needs a topic pattern (publish:<pattern>)");
	/* the pattern's length limit is the topic name's */
	char longp[4 + AUTH_PATTERN_BYTES_MAX + 2];
	memcpy(longp, "sub:", 4);
	memset(longp + 4, 'a', AUTH_PATTERN_BYTES_MAX + 1);
	cr_assert_eq(auth_perm_parse(longp, 4 + AUTH_PATTERN_BYTES_MAX, &p, NULL, 0), SL_OK);
	cr_assert_eq(auth_perm_format(&p, buf, sizeof buf), SL_OK);
	cr_assert_eq(auth_perm_parse(longp, 4 + AUTH_PATTERN_BYTES_MAX + 1, &p, NULL, 0), SL_EINVAL);
	cr_assert_eq(auth_perm_format(&p, buf, 10), SL_ERANGE);
	/* verbs */
	cr_assert_eq(auth_verb_parse("sub", 3), AUTH_VERB_SUBSCRIBE);
	cr_assert_eq(auth_verb_parse("subscribe", 9), AUTH_VERB_SUBSCRIBE);
	cr_assert_eq(auth_verb_parse("subscriber", 10), 0);
	cr_assert_str_eq(auth_verb_name(AUTH_VERB_CONSUME), "consume");
	cr_assert_str_eq(auth_verb_name(99), "?");
}

Test(perm, match_table)
{
	static const struct {
		const char *pattern, *topic;
		int match;
	} t[] = {
		{"orders", "orders", 1},
		{"orders", "orders.eu", 0},
		{"orders", "order", 0},
		{"orders", "ordersx", 0},
		{"orders.eu", "orders.eu", 1},
		{"orders.eu", "orders.us", 0},
		{"orders.eu", "orders", 0},
		{"orders.*", "orders.eu", 1},
		{"orders.*", "orders.us", 1},
		{"orders.*", "orders", 0},
		{"orders.*", "orders.eu.paris", 0},
		{"orders.*", "ordersx.eu", 0},
		{"orders.*", "orders.", 1}, /* an empty last segment is a segment */
		{"*", "orders", 1},
		{"*", "orders.eu", 0},
		{"*.eu", "orders.eu", 1},
		{"*.eu", "orders.us", 0},
		{"*.*", "a.b", 1},
		{"*.*", "a", 0},
		{"*.*", "a.b.c", 0},
		{"orders.*.paris", "orders.eu.paris", 1},
		{"orders.*.paris", "orders.eu.lyon", 0},
		{"orders.*.paris", "orders.paris", 0},
		{"orders.>", "orders.eu", 1},
		{"orders.>", "orders.eu.paris", 1},
		{"orders.>", "orders.eu.paris.x.y.z", 1},
		{"orders.>", "orders", 0},
		{"orders.>", "ordersx.eu", 0},
		{"orders.>", "orders.", 1},
		{">", "orders", 1},
		{">", "orders.eu.paris", 1},
		{">", "x", 1},
		{"*.>", "orders", 0},
		{"*.>", "orders.eu", 1},
		{"a..b", "a..b", 1},
		{"a.*.b", "a..b", 1},
		{"a.b", "a..b", 0},
		{"Orders", "orders", 0}, /* case matters, as in topic names */
		{"orders.eu", "orders.eu.", 0},
	};

	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
		cr_assert_eq(auth_pattern_match(t[i].pattern, strlen(t[i].pattern), t[i].topic, strlen(t[i].topic)),
		             t[i].match, "%s vs %s", t[i].pattern, t[i].topic);
	cr_assert_eq(auth_pattern_match("a", 1, "", 0), 0);
	cr_assert_eq(auth_pattern_match("a", 1, NULL, 1), 0);
	/* the verb must match too, and verbs do not imply each other */
	struct auth_perm p[2];
	cr_assert_eq(auth_perm_parse("sub:orders.*", 12, &p[0], NULL, 0), SL_OK);
	cr_assert_eq(auth_perm_parse("admin", 5, &p[1], NULL, 0), SL_OK);
	cr_assert(auth_perm_match(&p[0], AUTH_VERB_SUBSCRIBE, "orders.eu", 9));
	cr_assert_not(auth_perm_match(&p[0], AUTH_VERB_PUBLISH, "orders.eu", 9));
	cr_assert(auth_perm_allows(p, 2, AUTH_VERB_ADMIN, "x", 1));
	cr_assert_not(auth_perm_allows(p, 2, AUTH_VERB_PUBLISH, "x", 1));
	cr_assert_not(auth_perm_allows(p, 2, AUTH_VERB_CONSUME, "orders.eu", 9));
	cr_assert_not(auth_perm_allows(NULL, 0, AUTH_VERB_ADMIN, "x", 1));
	/* the topic's length, not its NUL, bounds it */
	cr_assert(auth_perm_match(&p[0], AUTH_VERB_SUBSCRIBE, "orders.eu.paris", 9));
}

/* ---- key files ---------------------------------------------------------- */

static char tmpdir[64];

static void mkd(void)
{
	snprintf(tmpdir, sizeof tmpdir, "/tmp/auth_test.XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
}

static void rmd(void)
{
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
	cr_assert_eq(system(cmd), 0);
}

static void put_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	cr_assert_eq(fchmod(fd, mode), 0);
	close(fd);
}

Test(key, known_seed_text)
{
	uint8_t seed[AUTH_SEED_BYTES], pk[AUTH_PK_BYTES];
	struct auth_keypair kp;
	char s[AUTH_PUBKEY_CHARS];

	hex(VEC_SEED, seed, sizeof seed);
	cr_assert_eq(auth_key_from_seed(seed, &kp), SL_OK);
	hex(VEC_PK, pk, sizeof pk);
	cr_assert_arr_eq(kp.pk, pk, sizeof pk);
	cr_assert_eq(auth_pubkey_format(kp.pk, s, sizeof s), SL_OK);
	cr_assert_str_eq(s, "sluice-ed25519:Hrnbu7wEfAP9cGBOAHHwmH4Wsot1ciXBHwBBXQ4gsaI");
	cr_assert_eq(strlen(s) + 1, AUTH_PUBKEY_CHARS);
	cr_assert_eq(auth_pubkey_format(kp.pk, s, sizeof s - 1), SL_ERANGE);
	memset(pk, 0, sizeof pk);
	cr_assert_eq(auth_pubkey_parse(s, strlen(s), pk), SL_OK);
	cr_assert_arr_eq(kp.pk, pk, sizeof pk);
	cr_assert_eq(auth_pubkey_parse("sluice-ed25519:Hrnbu7wEfAP9cGBOAHHwmH4Wsot1ciXBHwBBXQ4gsaI\n", 59, pk), SL_OK);
	static const char *bad[] = {
		"",
		"sluice-ed25519:",
		"Hrnbu7wEfAP9cGBOAHHwmH4Wsot1ciXBHwBBXQ4gsaI",
		"sluice-ed25519:Hrnbu7wEfAP9cGBOAHHwmH4Wsot1ciXBHwBBXQ4gsaI=",
		"sluice-ed25519:Hrnbu7wEfAP9cGBOAHHwmH4Wsot1ciXBHwBBXQ4gsaJ", /* trailing bits */
		"sluice-ed25519:Hrnbu7wEfAP9cGBOAHHwmH4Wsot1ciXBHwBBXQ4gsa",
		"sluice-ed25519:Hrnbu7wEfAP9cGBOAHHwmH4Wsot1ciXBHwBBXQ4gsaI\n\n",
		"sluice-ed25519:Hrnbu7wEfAP9cGBOAHHwmH4Wsot1ciXBHwBBXQ4gsaI ",
		"sluice-ed25519:Hrnbu7wEfAP9cGBOAHHwmH4Wsot1ciXBHwBBXQ4gs+I",
		"sluice-ed25519-secret:tMv7Q99M4hByfZU-SnEzB_oZu32fhQQUONnhG5QqN3Q",
		"ssh-ed25519:Hrnbu7wEfAP9cGBOAHHwmH4Wsot1ciXBHwBBXQ4gsaI",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		cr_assert_eq(auth_pubkey_parse(bad[i], strlen(bad[i]), pk), SL_EMALFORMED, "%s", bad[i]);
}

Test(key, file_round_trip_and_modes, .init = mkd, .fini = rmd)
{
	struct auth_keypair kp, back;
	uint8_t pk[AUTH_PK_BYTES];
	char path[128], pub[128], why[256], text[256];
	struct stat st;

	snprintf(path, sizeof path, "%s/token.key", tmpdir);
	snprintf(pub, sizeof pub, "%s/token.pub", tmpdir);
	cr_assert_eq(auth_key_generate(&kp), SL_OK);
	cr_assert_eq(auth_key_write(path, &kp, AUTH_KEY_EXCL, why, sizeof why), SL_OK, "%s", why);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0600);
	cr_assert_eq(auth_key_read(path, &back, why, sizeof why), SL_OK, "%s", why);
	cr_assert_arr_eq(back.sk, kp.sk, sizeof kp.sk);
	cr_assert_arr_eq(back.pk, kp.pk, sizeof kp.pk);
	/* the file is the documented line */
	FILE *f = fopen(path, "r");
	cr_assert_not_null(f);
	cr_assert_not_null(fgets(text, sizeof text, f));
	fclose(f);
	cr_assert_eq(strncmp(text, "sluice-ed25519-secret:", 22), 0);
	cr_assert_eq(strlen(text), 22 + 43 + 1);
	/* O_EXCL refuses an existing file; without it, the file is replaced and tightened */
	cr_assert_neq(auth_key_write(path, &kp, AUTH_KEY_EXCL, why, sizeof why), SL_OK);
	cr_assert(strstr(why, "File exists"), "%s", why);
	cr_assert_eq(chmod(path, 0644), 0);
	cr_assert_eq(auth_key_write(path, &kp, 0, why, sizeof why), SL_OK, "%s", why);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0600);
	/* readable by group or others: refused, like ssh */
	static const mode_t open_modes[] = {0644, 0640, 0604, 0660, 0602};
	for (size_t i = 0; i < sizeof open_modes / sizeof open_modes[0]; i++) {
		cr_assert_eq(chmod(path, open_modes[i]), 0);
		cr_assert_eq(auth_key_read(path, &back, why, sizeof why), SL_ECONFIG, "%o", open_modes[i]);
		cr_assert(strstr(why, "are too open"), "%s", why);
		cr_assert(strstr(why, "chmod 600"), "%s", why);
	}
	cr_assert_eq(chmod(path, 0400), 0);
	cr_assert_eq(auth_key_read(path, &back, why, sizeof why), SL_OK, "%s", why);
	/* public key file */
	cr_assert_eq(auth_pubkey_write(pub, kp.pk, 0, why, sizeof why), SL_OK, "%s", why);
	cr_assert_eq(stat(pub, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0644);
	cr_assert_eq(auth_pubkey_read(pub, pk, why, sizeof why), SL_OK, "%s", why);
	cr_assert_arr_eq(pk, kp.pk, sizeof pk);
	/* a public key is not a secret key, nor the reverse */
	cr_assert_eq(chmod(pub, 0600), 0);
	cr_assert_eq(auth_key_read(pub, &back, why, sizeof why), SL_EMALFORMED);
	cr_assert(strstr(why, "not a sluice secret key"), "%s", why);
	cr_assert_eq(auth_pubkey_read(path, pk, why, sizeof why), SL_EMALFORMED);
	/* missing, a directory, too large, garbage */
	char other[160];
	snprintf(other, sizeof other, "%s/missing", tmpdir);
	cr_assert_eq(auth_key_read(other, &back, why, sizeof why), SL_ENOTFOUND);
	cr_assert(strstr(why, "No such file"), "%s", why);
	cr_assert_eq(auth_key_read(tmpdir, &back, why, sizeof why), SL_ECONFIG);
	snprintf(other, sizeof other, "%s/big", tmpdir);
	char big[AUTH_KEY_FILE_BYTES_MAX + 2];
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = 0;
	put_file(other, big, 0600);
	cr_assert_eq(auth_key_read(other, &back, why, sizeof why), SL_EMALFORMED);
	put_file(other, "sluice-ed25519-secret:tMv7Q99M4hByfZU-SnEzB_oZu32fhQQUONnhG5QqN3Q\n", 0600);
	cr_assert_eq(auth_key_read(other, &back, why, sizeof why), SL_OK, "%s", why);
	hex(VEC_PK, pk, sizeof pk);
	cr_assert_arr_eq(back.pk, pk, sizeof pk, "the seed of the vectors gives their public key");
	put_file(other, "sluice-ed25519-secret:tMv7Q99M4hByfZU-SnEzB_oZu32fhQQUONnhG5QqN3\n", 0600);
	cr_assert_eq(auth_key_read(other, &back, why, sizeof why), SL_EMALFORMED);
	/* a symbolic link is not written through */
	snprintf(other, sizeof other, "%s/link", tmpdir);
	cr_assert_eq(symlink(path, other), 0);
	cr_assert_neq(auth_key_write(other, &kp, 0, why, sizeof why), SL_OK);
}

/* ---- native handshake --------------------------------------------------- */

Test(challenge, sign_verify_and_known_answer)
{
	uint8_t pk[AUTH_PK_BYTES], sk[AUTH_SK_BYTES], nonce[AUTH_NONCE_BYTES], n2[AUTH_NONCE_BYTES];
	uint8_t sig[AUTH_SIG_BYTES], want[AUTH_SIG_BYTES];

	/* "sluice-auth-v1" || 00 01 .. 1f || "alice" signed with the vectors' key (openssl pkeyutl -rawin) */
	vec_keys(pk, sk);
	for (int i = 0; i < AUTH_NONCE_BYTES; i++)
		nonce[i] = (uint8_t)i;
	hex("eda0acbb05fa97c69e5676b7768467c22e76f2996efbd582fdb221b8f9a5ae24"
	    "e45b905e5f942f2334bc39878ec21fc255c414dd36ffe36d5167c0d87dc34b01",
	    want, sizeof want);
	cr_assert_eq(auth_challenge_sign(sk, nonce, "alice", 5, sig), SL_OK);
	cr_assert_arr_eq(sig, want, sizeof sig);
	cr_assert_eq(auth_challenge_verify(pk, nonce, "alice", 5, sig), SL_OK);
	/* another principal, nonce, key or signature */
	cr_assert_eq(auth_challenge_verify(pk, nonce, "alicf", 5, sig), SL_EUNAUTHENTICATED);
	cr_assert_eq(auth_challenge_verify(pk, nonce, "alic", 4, sig), SL_EUNAUTHENTICATED);
	memcpy(n2, nonce, sizeof n2);
	n2[31] ^= 1;
	cr_assert_eq(auth_challenge_verify(pk, n2, "alice", 5, sig), SL_EUNAUTHENTICATED);
	sig[0] ^= 1;
	cr_assert_eq(auth_challenge_verify(pk, nonce, "alice", 5, sig), SL_EUNAUTHENTICATED);
	sig[0] ^= 1;
	uint8_t pk2[AUTH_PK_BYTES], sk2[AUTH_SK_BYTES];
	crypto_sign_keypair(pk2, sk2);
	cr_assert_eq(auth_challenge_verify(pk2, nonce, "alice", 5, sig), SL_EUNAUTHENTICATED);
	/* bad principals are refused before any signature */
	cr_assert_eq(auth_challenge_sign(sk, nonce, "", 0, sig), SL_EINVAL);
	cr_assert_eq(auth_challenge_sign(sk, nonce, "a b", 3, sig), SL_EINVAL);
	cr_assert_eq(auth_challenge_verify(pk, nonce, "a b", 3, sig), SL_EINVAL);
	/* fresh nonces differ */
	cr_assert_eq(auth_challenge_new(nonce), SL_OK);
	cr_assert_eq(auth_challenge_new(n2), SL_OK);
	cr_assert_arr_neq(nonce, n2, sizeof n2);
	cr_assert_eq(auth_challenge_sign(sk2, nonce, "svc.x", 5, sig), SL_OK);
	cr_assert_eq(auth_challenge_verify(pk2, nonce, "svc.x", 5, sig), SL_OK);
}
