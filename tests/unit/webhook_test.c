/*
 * webhook_test.c: the pure parts of outbound webhooks (broker/http/webhook/):
 * the Standard Webhooks test vector, secrets, rotation headers, Ed25519
 * (v1a), message ids, the delivery body for JSON, text and binary payloads,
 * destination URLs, the private-address guard and Retry-After.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <event2/buffer.h>
#include <jansson.h>
#include <netinet/in.h>
#include <sodium.h>
#include <string.h>

#include "err.h"
#include "wh_body.h"
#include "wh_config.h"
#include "wh_retry.h"
#include "wh_seal.h"
#include "wh_sign.h"
#include "wh_url.h"

/* The vector of the reference libraries' tests (standard-webhooks/libraries). */
#define VEC_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define VEC_ID "msg_p5jXN8AQM9LWM0D4loKWxJek"
#define VEC_TS 1614265330
#define VEC_BODY "{\"test\": 2432232314}"
#define VEC_SIG "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

Test(wh_sign, spec_vector)
{
	uint8_t key[WH_KEY_BYTES_MAX];
	size_t n = 0;
	char sig[WH_SIG_V1_CHARS];

	cr_assert_eq(wh_secret_parse(VEC_SECRET, key, sizeof key, &n), SL_OK);
	cr_assert_eq(n, 24);
	cr_assert_eq(wh_sign_v1(key, n, VEC_ID, VEC_TS, (const uint8_t *)VEC_BODY, strlen(VEC_BODY), sig, sizeof sig),
	             SL_OK);
	cr_assert_str_eq(sig, VEC_SIG);
	/* the prefix is optional, as in the reference libraries */
	cr_assert_eq(wh_secret_parse(VEC_SECRET + 6, key, sizeof key, &n), SL_OK);
	cr_assert_eq(wh_sign_v1(key, n, VEC_ID, VEC_TS, (const uint8_t *)VEC_BODY, strlen(VEC_BODY), sig, sizeof sig),
	             SL_OK);
	cr_assert_str_eq(sig, VEC_SIG);
	/* a changed body, id or timestamp changes the signature */
	wh_sign_v1(key, n, VEC_ID, VEC_TS + 1, (const uint8_t *)VEC_BODY, strlen(VEC_BODY), sig, sizeof sig);
	cr_assert_str_neq(sig, VEC_SIG);
	/* too small an output, an id with '.' */
	cr_assert_eq(wh_sign_v1(key, n, VEC_ID, VEC_TS, (const uint8_t *)"x", 1, sig, 10), SL_ERANGE);
	cr_assert_eq(wh_sign_v1(key, n, "msg.1", VEC_TS, (const uint8_t *)"x", 1, sig, sizeof sig), SL_EINVAL);
}

Test(wh_sign, secret_parse_refusals)
{
	uint8_t key[WH_KEY_BYTES_MAX];
	size_t n;
	char s[200];

	cr_assert_eq(wh_secret_parse("whsec_", key, sizeof key, &n), SL_EINVAL);
	cr_assert_eq(wh_secret_parse("", key, sizeof key, &n), SL_EINVAL);
	cr_assert_eq(wh_secret_parse("whsec_c2hvcnQ=", key, sizeof key, &n), SL_EINVAL);  /* 5 bytes */
	cr_assert_eq(wh_secret_parse("whsec_not base64!!", key, sizeof key, &n), SL_EINVAL);
	cr_assert_eq(wh_secret_parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS_", key, sizeof key, &n), SL_EINVAL);
	/* 23 bytes refused, 24 and 64 accepted, 65 refused */
	for (size_t len = 23; len <= 65; len++) {
		uint8_t raw[65];
		memset(raw, 0xa5, sizeof raw);
		strcpy(s, "whsec_");
		sodium_bin2base64(s + 6, sizeof s - 6, raw, len, sodium_base64_VARIANT_ORIGINAL);
		int rc = wh_secret_parse(s, key, sizeof key, &n);
		if (len < 24 || len > 64)
			cr_assert_eq(rc, SL_EINVAL, "len %zu", len);
		else
			cr_assert(rc == SL_OK && n == len, "len %zu", len);
	}
	/* unpadded base64 is read as well */
	cr_assert_eq(wh_secret_parse("whsec_MDEyMzQ1Njc4OWFiY2RlZmdoaWprbG1ub3A", key, sizeof key, &n), SL_OK);
	cr_assert_eq(n, 26);
	/* a key that does not fit the caller's buffer */
	cr_assert_eq(wh_secret_parse(VEC_SECRET, key, 10, &n), SL_EINVAL);
}

Test(wh_sign, secret_generate_round_trip)
{
	char a[WH_SECRET_CHARS_MAX], b[WH_SECRET_CHARS_MAX];
	uint8_t key[WH_KEY_BYTES_MAX];
	size_t n = 0;

	cr_assert_eq(wh_secret_generate(a, sizeof a), SL_OK);
	cr_assert_eq(wh_secret_generate(b, sizeof b), SL_OK);
	cr_assert_eq(strncmp(a, "whsec_", 6), 0);
	cr_assert_eq(strlen(a), 6 + 44);
	cr_assert_str_neq(a, b);
	cr_assert_eq(wh_secret_parse(a, key, sizeof key, &n), SL_OK);
	cr_assert_eq(n, WH_SECRET_GEN_BYTES);
	cr_assert_eq(wh_secret_generate(a, 20), SL_ERANGE);
}

Test(wh_sign, header_with_two_keys)
{
	struct wh_key k[2];
	char cur[WH_SECRET_CHARS_MAX], h[WH_SIG_HEADER_CHARS_MAX], one[WH_SIG_V1_CHARS];
	const uint8_t *body = (const uint8_t *)VEC_BODY;

	cr_assert_eq(wh_secret_generate(cur, sizeof cur), SL_OK);
	cr_assert_eq(wh_key_parse(cur, &k[0]), SL_OK);
	cr_assert_eq(wh_key_parse(VEC_SECRET, &k[1]), SL_OK);
	cr_assert_eq(k[1].kind, WH_KEY_HMAC);
	cr_assert_eq(wh_signature_header(k, 2, VEC_ID, VEC_TS, body, strlen(VEC_BODY), h, sizeof h), SL_OK);
	/* current first, then the previous key: "v1,<44> v1,<44>" */
	cr_assert_eq(strlen(h), 47 * 2 + 1);
	cr_assert_eq(h[47], ' ');
	cr_assert_str_eq(h + 48, VEC_SIG);
	wh_sign_v1(k[0].bytes, k[0].len, VEC_ID, VEC_TS, body, strlen(VEC_BODY), one, sizeof one);
	cr_assert_eq(strncmp(h, one, 47), 0);
	/* limits */
	cr_assert_eq(wh_signature_header(k, 0, VEC_ID, VEC_TS, body, 1, h, sizeof h), SL_EINVAL);
	cr_assert_eq(wh_signature_header(k, 2, VEC_ID, VEC_TS, body, 1, h, 60), SL_ERANGE);
}

Test(wh_sign, ed25519_v1a)
{
	char sk[WH_SECRET_CHARS_MAX], pk[WH_SECRET_CHARS_MAX], sig[WH_SIG_V1A_CHARS];
	uint8_t pkb[32], sigb[64];
	size_t n;
	struct wh_key k;
	const char *signed_content = VEC_ID ".1614265330." VEC_BODY;

	cr_assert_eq(wh_ed25519_keypair(sk, pk), SL_OK);
	cr_assert_eq(strncmp(sk, "whsk_", 5), 0);
	cr_assert_eq(strncmp(pk, "whpk_", 5), 0);
	cr_assert_eq(wh_key_parse(sk, &k), SL_OK);
	cr_assert_eq(k.kind, WH_KEY_ED25519);
	cr_assert_eq(wh_sign_v1a(k.bytes, VEC_ID, VEC_TS, (const uint8_t *)VEC_BODY, strlen(VEC_BODY), sig, sizeof sig),
	             SL_OK);
	cr_assert_eq(strncmp(sig, "v1a,", 4), 0);
	cr_assert_eq(sodium_base642bin(pkb, sizeof pkb, pk + 5, strlen(pk + 5), NULL, &n, NULL,
	                               sodium_base64_VARIANT_ORIGINAL), 0);
	cr_assert_eq(sodium_base642bin(sigb, sizeof sigb, sig + 4, strlen(sig + 4), NULL, &n, NULL,
	                               sodium_base64_VARIANT_ORIGINAL), 0);
	cr_assert_eq(crypto_sign_verify_detached(sigb, (const uint8_t *)signed_content, strlen(signed_content), pkb), 0);
	/* a whsk_ whose public half does not match its seed is refused */
	sk[strlen(sk) - 3] = sk[strlen(sk) - 3] == 'A' ? 'B' : 'A';
	cr_assert_eq(wh_key_parse(sk, &k), SL_EINVAL);
}

Test(wh_sign, msg_id_stable_and_distinct)
{
	char a[WH_MSG_ID_CHARS], b[WH_MSG_ID_CHARS];

	cr_assert_eq(wh_msg_id(a, sizeof a, "orders.eu-west_1", 3, 42), SL_OK);
	cr_assert_eq(wh_msg_id(b, sizeof b, "orders.eu-west_1", 3, 42), SL_OK);
	cr_assert_str_eq(a, b);
	cr_assert_eq(strlen(a), 36);
	cr_assert_eq(strncmp(a, "msg_", 4), 0);
	cr_assert_null(strchr(a, '.'));
	wh_msg_id(b, sizeof b, "orders.eu-west_1", 3, 43);
	cr_assert_str_neq(a, b);
	wh_msg_id(b, sizeof b, "orders.eu-west_1", 4, 42);
	cr_assert_str_neq(a, b);
	wh_msg_id(b, sizeof b, "orders.eu-west_2", 3, 42);
	cr_assert_str_neq(a, b);
	/* fixed values: the id must not change across versions, receivers keep it
	 * (python3: hashlib.blake2b(b'\x00\x01t' + bytes(12), digest_size=16)) */
	cr_assert_str_eq(a, "msg_64d3afd34b89cdbe8f55d385018e28dc");
	wh_msg_id(b, sizeof b, "t", 0, 0);
	cr_assert_str_eq(b, "msg_cdfe7716a2ae7e9fb4e5b38037278211");
	cr_assert_eq(wh_msg_id(b, 10, "t", 0, 0), SL_ERANGE);
	cr_assert_eq(wh_msg_id(b, sizeof b, "", 0, 0), SL_EINVAL);
}

static char *render(const char *topic, int64_t ts, struct slice key, struct slice payload)
{
	struct evbuffer *b = evbuffer_new();
	size_t n;
	char *s;

	cr_assert_eq(wh_body_render(b, topic, strlen(topic), ts, key, payload), SL_OK);
	n = evbuffer_get_length(b);
	s = malloc(n + 1);
	evbuffer_remove(b, s, n);
	s[n] = 0;
	evbuffer_free(b);
	/* whatever the payload, the body is one JSON object */
	json_t *j = json_loads(s, 0, NULL);
	cr_assert_not_null(j, "not JSON: %s", s);
	json_decref(j);
	return s;
}

Test(wh_body, json_payload)
{
	char *s = render("orders", 1614265330123, slice_make(NULL, 0), slice_cstr(" {\"b\": 1, \"a\": [1.50, 12345678901234567]}\n"));

	cr_assert_str_eq(s, "{\"type\":\"orders\",\"timestamp\":\"2021-02-25T15:02:10.123Z\","
	                    "\"data\":{\"b\": 1, \"a\": [1.50, 12345678901234567]}}");
	free(s);
	s = render("t", 0, slice_make(NULL, 0), slice_cstr("42"));
	cr_assert_str_eq(s, "{\"type\":\"t\",\"timestamp\":\"1970-01-01T00:00:00.000Z\",\"data\":42}");
	free(s);
	s = render("t", 0, slice_make(NULL, 0), slice_cstr("\"a string\""));
	cr_assert_str_eq(s, "{\"type\":\"t\",\"timestamp\":\"1970-01-01T00:00:00.000Z\",\"data\":\"a string\"}");
	free(s);
}

Test(wh_body, text_payload_and_key)
{
	char *s = render("t", 999, slice_cstr("user-7"), slice_cstr("hello \"world\"\n{"));

	cr_assert_str_eq(s, "{\"type\":\"t\",\"timestamp\":\"1970-01-01T00:00:00.999Z\",\"key\":\"user-7\","
	                    "\"data\":\"hello \\\"world\\\"\\n{\"}");
	free(s);
	s = render("t", 0, slice_make(NULL, 0), slice_make(NULL, 0));
	cr_assert_str_eq(s, "{\"type\":\"t\",\"timestamp\":\"1970-01-01T00:00:00.000Z\",\"data\":\"\"}");
	free(s);
}

Test(wh_body, binary_payload_and_key)
{
	static const uint8_t bin[] = {0xff, 0x00, 0xfe, 0x41};
	char *s = render("t", -1, slice_make(bin, 2), slice_make(bin, sizeof bin));

	cr_assert_str_eq(s, "{\"type\":\"t\",\"timestamp\":\"1969-12-31T23:59:59.999Z\",\"key\":{\"base64\":\"/wA=\"},"
	                    "\"data\":{\"base64\":\"/wD+QQ==\"}}");
	free(s);
}

Test(wh_body, refusals_and_determinism)
{
	struct evbuffer *a = evbuffer_new(), *b = evbuffer_new();

	cr_assert_eq(wh_body_render(a, "", 0, 0, slice_make(NULL, 0), slice_make(NULL, 0)), SL_EINVAL);
	cr_assert_eq(wh_body_render(a, "\xff", 1, 0, slice_make(NULL, 0), slice_make(NULL, 0)), SL_EINVAL);
	wh_body_render(a, "t", 1, 5, slice_cstr("k"), slice_cstr("{\"x\":1}"));
	wh_body_render(b, "t", 1, 5, slice_cstr("k"), slice_cstr("{\"x\":1}"));
	cr_assert_eq(evbuffer_get_length(a), evbuffer_get_length(b));
	cr_assert_eq(memcmp(evbuffer_pullup(a, -1), evbuffer_pullup(b, -1), evbuffer_get_length(a)), 0);
	evbuffer_free(a);
	evbuffer_free(b);
}

struct url_case {
	const char *s;
	int ok;
	int https;
	const char *host;
	unsigned port;
	const char *path;
};

Test(wh_url, accept_and_refuse_table)
{
	static const struct url_case t[] = {
		{"http://example.com", 1, 0, "example.com", 80, "/"},
		{"https://example.com", 1, 1, "example.com", 443, "/"},
		{"HTTPS://Example.COM/Hook", 1, 1, "example.com", 443, "/Hook"},
		{"http://example.com:8080/a/b?c=d&e=%20f", 1, 0, "example.com", 8080, "/a/b?c=d&e=%20f"},
		{"http://example.com?x=1", 1, 0, "example.com", 80, "/?x=1"},
		{"http://127.0.0.1:9/", 1, 0, "127.0.0.1", 9, "/"},
		{"http://[::1]:8443/x", 1, 0, "::1", 8443, "/x"},
		{"https://[2001:db8::5]/", 1, 1, "2001:db8::5", 443, "/"},
		{"http://my_host.internal-1.example./p", 1, 0, "my_host.internal-1.example.", 80, "/p"},
		{"http://a:65535", 1, 0, "a", 65535, "/"},
		{"http://a.b.c.d.e.f.g.h/", 1, 0, "a.b.c.d.e.f.g.h", 80, "/"},
		{"ftp://example.com/", 0, 0, NULL, 0, NULL},
		{"http:/example.com", 0, 0, NULL, 0, NULL},
		{"//example.com/", 0, 0, NULL, 0, NULL},
		{"http://", 0, 0, NULL, 0, NULL},
		{"http:///path", 0, 0, NULL, 0, NULL},
		{"http://user:pw@example.com/", 0, 0, NULL, 0, NULL},
		{"http://@example.com/", 0, 0, NULL, 0, NULL},
		{"http://example.com/a#frag", 0, 0, NULL, 0, NULL},
		{"http://example.com/a b", 0, 0, NULL, 0, NULL},
		{"http://example.com/a\tb", 0, 0, NULL, 0, NULL},
		{"http://exa\nmple.com/", 0, 0, NULL, 0, NULL},
		{"http://example.com/caf\xc3\xa9", 0, 0, NULL, 0, NULL},
		{"http://example.com\\@evil.com/", 0, 0, NULL, 0, NULL},
		{"http://example.com:0/", 0, 0, NULL, 0, NULL},
		{"http://example.com:65536/", 0, 0, NULL, 0, NULL},
		{"http://example.com:/", 0, 0, NULL, 0, NULL},
		{"http://example.com:80a/", 0, 0, NULL, 0, NULL},
		{"http://example.com:123456/", 0, 0, NULL, 0, NULL},
		{"http://-bad.example.com/", 0, 0, NULL, 0, NULL},
		{"http://bad-.example.com/", 0, 0, NULL, 0, NULL},
		{"http://a..b/", 0, 0, NULL, 0, NULL},
		{"http://127.1/", 0, 0, NULL, 0, NULL},
		{"http://2130706433/", 0, 0, NULL, 0, NULL},
		{"http://0x7f.0.0.1/", 0, 0, NULL, 0, NULL},
		{"http://1.2.3.4.5/", 0, 0, NULL, 0, NULL},
		{"http://[::1/", 0, 0, NULL, 0, NULL},
		{"http://[fe80::1%25eth0]/", 0, 0, NULL, 0, NULL},
		{"http://[::1]x/", 0, 0, NULL, 0, NULL},
		{"http://[]/", 0, 0, NULL, 0, NULL},
		{"http://example.com/%zz", 0, 0, NULL, 0, NULL},
		{"http://example.com/%2", 0, 0, NULL, 0, NULL},
		{"http://ex!ample.com/", 0, 0, NULL, 0, NULL},
	};
	struct wh_url u;

	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		int rc = wh_url_parse(t[i].s, strlen(t[i].s), &u);
		if (!t[i].ok) {
			cr_assert_eq(rc, SL_EINVAL, "accepted %s", t[i].s);
			continue;
		}
		cr_assert_eq(rc, SL_OK, "refused %s", t[i].s);
		cr_assert_eq(u.https, t[i].https, "%s", t[i].s);
		cr_assert_str_eq(u.host, t[i].host, "%s", t[i].s);
		cr_assert_eq(u.port, t[i].port, "%s", t[i].s);
		cr_assert_str_eq(u.path, t[i].path, "%s", t[i].s);
	}
}

Test(wh_url, limits_and_authority)
{
	static char s[WH_URL_BYTES_MAX + 2];
	char label[70];
	struct wh_url u;
	char a[WH_HOST_BYTES_MAX + 9];

	strcpy(s, "http://h/");
	memset(s + 9, 'a', WH_URL_BYTES_MAX - 9);
	cr_assert_eq(wh_url_parse(s, WH_URL_BYTES_MAX, &u), SL_OK);
	cr_assert_eq(strlen(u.path), WH_URL_BYTES_MAX - 8);
	s[WH_URL_BYTES_MAX] = 'a';
	cr_assert_eq(wh_url_parse(s, WH_URL_BYTES_MAX + 1, &u), SL_EINVAL);
	/* a 64-byte label */
	memset(label, 'x', 64);
	label[64] = 0;
	snprintf(s, sizeof s, "http://%s/", label);
	cr_assert_eq(wh_url_parse(s, strlen(s), &u), SL_EINVAL);
	label[63] = 0;
	snprintf(s, sizeof s, "http://%s/", label);
	cr_assert_eq(wh_url_parse(s, strlen(s), &u), SL_OK);
	/* Host header */
	wh_url_parse("https://[::1]:8443/", 19, &u);
	cr_assert_eq(u.host_is_ip, 1);
	cr_assert_eq(wh_url_authority(&u, a, sizeof a), SL_OK);
	cr_assert_str_eq(a, "[::1]:8443");
	wh_url_parse("https://Example.com:443/", 24, &u);
	cr_assert_eq(u.host_is_ip, 0);
	wh_url_authority(&u, a, sizeof a);
	cr_assert_str_eq(a, "example.com");
	/* a length that stops before the end of the string */
	cr_assert_eq(wh_url_parse("http://a.com/xyz", 12, &u), SL_OK);
	cr_assert_str_eq(u.path, "/");
}

static int is_private(const char *ip)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof ss);
	if (strchr(ip, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		cr_assert_eq(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1, "%s", ip);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		cr_assert_eq(inet_pton(AF_INET, ip, &s4->sin_addr), 1, "%s", ip);
	}
	return wh_addr_is_private((struct sockaddr *)&ss);
}

Test(wh_url, private_addresses)
{
	static const char *priv[] = {
		"127.0.0.1", "127.255.255.254", "10.0.0.1", "10.255.255.255", "172.16.0.1", "172.31.255.255",
		"192.168.1.1", "169.254.169.254", "100.64.0.1", "100.127.255.255", "0.0.0.0", "0.1.2.3",
		"224.0.0.1", "239.255.255.250", "255.255.255.255", "240.0.0.1", "192.0.0.8", "198.18.0.1",
		"::", "::1", "fe80::1", "febf::1", "fc00::1", "fd12:3456::1", "ff02::1",
		"::ffff:127.0.0.1", "::ffff:10.1.2.3", "::ffff:169.254.169.254", "::ffff:0.0.0.0", "::127.0.0.1",
		"64:ff9b::a9fe:a9fe", "2002:7f00:1::1", "2002:c0a8:101::1",
	};
	static const char *pub[] = {
		"8.8.8.8", "1.1.1.1", "172.15.255.255", "172.32.0.1", "100.63.255.255", "100.128.0.1",
		"192.169.0.1", "169.253.1.1", "11.0.0.1", "126.255.255.255", "128.0.0.1", "223.255.255.255",
		"2001:4860:4860::8888", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1",
		"fec0::1" /* deprecated site-local: private as well, checked below */,
	};

	for (size_t i = 0; i < sizeof priv / sizeof priv[0]; i++)
		cr_assert_eq(is_private(priv[i]), 1, "%s should be private", priv[i]);
	for (size_t i = 0; i + 1 < sizeof pub / sizeof pub[0]; i++)
		cr_assert_eq(is_private(pub[i]), 0, "%s should be public", pub[i]);
	cr_assert_eq(is_private("fec0::1"), 1);
	struct sockaddr sa = {.sa_family = AF_UNIX};
	cr_assert_eq(wh_addr_is_private(&sa), 1);
}

Test(wh_url, literal_private)
{
	static const struct {
		const char *url;
		int private;
	} cases[] = {
	    {"http://127.0.0.1:9000/cb", 1}, {"https://[::1]/cb", 1}, {"http://10.1.2.3/", 1},
	    {"http://[::ffff:192.168.0.1]/", 1}, {"https://8.8.8.8/cb", 0}, {"https://[2606:4700::1111]/", 0},
	    {"https://hooks.example.com/cb", 0}, {"http://localhost/cb", 0} /* a name: judged when dialled */,
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct wh_url u;
		cr_assert_eq(wh_url_parse(cases[i].url, strlen(cases[i].url), &u), SL_OK, "%s", cases[i].url);
		int got = wh_url_literal_private(&u);
		cr_assert_eq(got, cases[i].private, "%s: %d (host %s, ip %d)", cases[i].url, got, u.host, u.host_is_ip);
	}
}

static int64_t retry(const char *s, int64_t now_ms)
{
	int64_t ms = -7;

	if (wh_retry_after_parse(s, strlen(s), now_ms, &ms) != SL_OK)
		return -1;
	return ms;
}

Test(wh_retry, seconds_dates_garbage)
{
	const int64_t now = 784111777000; /* Sun, 06 Nov 1994 08:49:37 GMT */

	cr_assert_eq(retry("0", now), 0);
	cr_assert_eq(retry("120", now), 120000);
	cr_assert_eq(retry("  7\t", now), 7000);
	cr_assert_eq(retry("99999999999999999999999", now), (int64_t)WH_RETRY_AFTER_S_MAX * 1000);
	cr_assert_eq(retry("Sun, 06 Nov 1994 08:50:07 GMT", now), 30000);
	cr_assert_eq(retry("Sunday, 06-Nov-94 08:50:37 GMT", now), 60000);
	cr_assert_eq(retry("Sun Nov  6 08:49:47 1994", now), 10000);
	cr_assert_eq(retry("Sun Nov 10 08:49:37 1994", now), 4 * 86400 * 1000LL);
	cr_assert_eq(retry("Sun, 06 Nov 1994 08:00:00 GMT", now), 0); /* in the past */
	cr_assert_eq(retry("Sun, 06 Nov 2094 08:00:00 GMT", now), (int64_t)WH_RETRY_AFTER_S_MAX * 1000);
	cr_assert_eq(retry("", now), -1);
	cr_assert_eq(retry("   ", now), -1);
	cr_assert_eq(retry("-5", now), -1);
	cr_assert_eq(retry("5s", now), -1);
	cr_assert_eq(retry("1.5", now), -1);
	cr_assert_eq(retry("soon", now), -1);
	cr_assert_eq(retry("Sun, 06 Nov 1994 08:49:37 UTC", now), -1);
	cr_assert_eq(retry("Sun, 31 Feb 1994 08:49:37 GMT", now), -1);
	cr_assert_eq(retry("Sun, 06 Nov 1994 25:49:37 GMT", now), -1);
	cr_assert_eq(retry("Sun, 06 Foo 1994 08:49:37 GMT", now), -1);
	cr_assert_eq(retry("Sun, 06 Nov 1994 08:49:37 GMT junk", now), -1);
	cr_assert_eq(retry("Sun, 6 Nov 1994 08:49:37 GMT", now), -1);
}

/* ---------- settings (wh_config.c) ---------- */

#define SECRET_A "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define SECRET_B "whsec_dGhpcyBpcyBhbm90aGVyIHNlY3JldCBrZXkh"

static int parse(const char *j, struct wh_config *c, char *why)
{
	return wh_config_parse(j, strlen(j), c, why, 160);
}

Test(wh_config, parse_defaults_and_refusals)
{
	static struct wh_config c;
	char why[160];
	cr_assert_eq(parse("{\"url\":\"https://h.example/x?y=1\",\"secrets\":[\"" SECRET_A "\"]}", &c, why), SL_OK, "%s", why);
	cr_assert_str_eq(c.url, "https://h.example/x?y=1");
	cr_assert_eq(c.u.https, 1);
	cr_assert_eq(c.u.port, 443);
	cr_assert_eq(c.nsecrets, 1);
	cr_assert_eq(c.timeout_ms, 15000);
	cr_assert_eq(c.paused, 0);
	static const char *const bad[] = {
	    "[]",
	    "{\"secrets\":[\"" SECRET_A "\"]}",                                         /* no url */
	    "{\"url\":\"ftp://h/\",\"secrets\":[\"" SECRET_A "\"]}",                     /* scheme */
	    "{\"url\":\"https://u:p@h/\",\"secrets\":[\"" SECRET_A "\"]}",               /* user info */
	    "{\"url\":\"https://h/\"}",                                                  /* no secret */
	    "{\"url\":\"https://h/\",\"secrets\":[\"whsec_c2hvcnQ=\"]}",                 /* short key */
	    "{\"url\":\"https://h/\",\"secrets\":[\"" SECRET_A "\"],\"headers\":{\"Host\":\"x\"}}",
	    "{\"url\":\"https://h/\",\"secrets\":[\"" SECRET_A "\"],\"headers\":{\"a b\":\"x\"}}",
	    "{\"url\":\"https://h/\",\"secrets\":[\"" SECRET_A "\"],\"headers\":{\"a\":\"x\\ny\"}}",
	    "{\"url\":\"https://h/\",\"secrets\":[\"" SECRET_A "\"],\"timeout_ms\":0}",
	    "{\"url\":\"https://h/\",\"secrets\":[\"" SECRET_A "\"],\"paused\":1}",
	    "{\"url\":\"https://h/\",\"secrets\":[\"" SECRET_A "\"],\"filter\":{\"header\":{\"a\":\"1\",\"b\":\"2\"}}}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why[0] = 0;
		cr_assert_eq(parse(bad[i], &c, why), SL_EINVAL, "accepted %s", bad[i]);
		cr_assert_neq(why[0], 0, "no reason for %s", bad[i]);
	}
}

/* "callback": true takes each message's URL: no url in the settings, and none shown */
Test(wh_config, callback_settings)
{
	static struct wh_config c;
	char why[160];
	cr_assert_eq(parse("{\"callback\":true,\"secrets\":[\"" SECRET_A "\"]}", &c, why), SL_OK, "%s", why);
	cr_assert_eq(c.callback, 1);
	cr_assert_str_eq(c.url, "");
	char *j = wh_config_json(&c, 1);
	cr_assert_not_null(j);
	cr_assert(strstr(j, "\"callback\":true") && !strstr(j, "\"url\""), "%s", j);
	free(j);
	cr_assert_eq(parse("{\"callback\":true,\"url\":\"https://h/\",\"secrets\":[\"" SECRET_A "\"]}", &c, why),
	             SL_EINVAL, "a callback webhook with a url");
	cr_assert_eq(parse("{\"callback\":1,\"secrets\":[\"" SECRET_A "\"]}", &c, why), SL_EINVAL);
	cr_assert_eq(parse("{\"callback\":false,\"secrets\":[\"" SECRET_A "\"]}", &c, why), SL_EINVAL, "no url");
}

Test(wh_config, redacted_json_has_no_secret)
{
	static struct wh_config c;
	char why[160];
	cr_assert_eq(parse("{\"url\":\"http://h/\",\"secrets\":[\"" SECRET_A "\",\"" SECRET_B "\"],\"headers\":{\"x-k\":\"v\"}}",
	                   &c, why),
	             SL_OK, "%s", why);
	char *red = wh_config_json(&c, 1), *full = wh_config_json(&c, 0);
	cr_assert_null(strstr(red, "whsec_"));
	cr_assert_not_null(strstr(red, "\"secrets\":2"));
	cr_assert_not_null(strstr(full, SECRET_B));
	cr_assert_not_null(strstr(red, "\"x-k\":\"v\""));
	free(red);
	free(full);
}

Test(wh_config, patch_pause_rotate_remove)
{
	static struct wh_config c;
	char why[160], *out = NULL;
	const char *stored = "{\"url\":\"http://h/\",\"secrets\":[\"" SECRET_A "\"],\"headers\":{\"x\":\"1\"}}";
	const char *patch = "{\"paused\":true,\"rotate_secret\":\"" SECRET_B "\",\"headers\":null}";
	cr_assert_eq(wh_config_patch(stored, strlen(stored), patch, strlen(patch), &out, why, sizeof why), SL_OK, "%s", why);
	cr_assert_eq(parse(out, &c, why), SL_OK);
	cr_assert_eq(c.paused, 1);
	cr_assert_eq(c.nsecrets, 2);
	cr_assert_str_eq(c.secrets[0], SECRET_B, "the new secret signs first");
	cr_assert_str_eq(c.secrets[1], SECRET_A, "the previous one is kept");
	cr_assert_eq(c.nheaders, 0);
	/* a second rotation drops the oldest */
	char *out2 = NULL;
	const char *p2 = "{\"rotate_secret\":\"" SECRET_A "\"}";
	cr_assert_eq(wh_config_patch(out, strlen(out), p2, strlen(p2), &out2, why, sizeof why), SL_OK);
	cr_assert_eq(parse(out2, &c, why), SL_OK);
	cr_assert_eq(c.nsecrets, 2);
	cr_assert_str_eq(c.secrets[0], SECRET_A);
	cr_assert_str_eq(c.secrets[1], SECRET_B);
	/* a patch that leaves bad settings is refused whole */
	char *out3 = (char *)1;
	const char *p3 = "{\"url\":\"gopher://x/\"}";
	cr_assert_eq(wh_config_patch(out, strlen(out), p3, strlen(p3), &out3, why, sizeof why), SL_EINVAL);
	cr_assert_null(out3);
	cr_assert_eq(wh_config_patch(out, strlen(out), "[1]", 3, &out3, why, sizeof why), SL_EINVAL);
	free(out);
	free(out2);
}

static const uint8_t *one_header(void *arg, const char *name, size_t *len)
{
	const char *const *kv = arg;
	if (strcmp(name, kv[0]) != 0)
		return NULL;
	*len = strlen(kv[1]);
	return (const uint8_t *)kv[1];
}

Test(wh_config, filter_key_prefix_and_header)
{
	static struct wh_config c;
	char why[160];
	const char *eu_created[2] = {"type", "created"}, *eu_deleted[2] = {"type", "deleted"};
	cr_assert_eq(parse("{\"url\":\"http://h/\",\"secrets\":[\"" SECRET_A
	                   "\"],\"filter\":{\"key_prefix\":\"eu-\",\"header\":{\"type\":\"created\"}}}",
	                   &c, why),
	             SL_OK, "%s", why);
	cr_assert_eq(wh_config_match(&c, (const uint8_t *)"eu-1", 4, one_header, eu_created), 1);
	cr_assert_eq(wh_config_match(&c, (const uint8_t *)"us-1", 4, one_header, eu_created), 0);
	cr_assert_eq(wh_config_match(&c, (const uint8_t *)"eu", 2, one_header, eu_created), 0);
	cr_assert_eq(wh_config_match(&c, (const uint8_t *)"eu-1", 4, one_header, eu_deleted), 0);
}

/* Secrets at rest: sealed text opens with its key only, settings and
 * patches get their secrets sealed, and a parsed config signs like the
 * clear one once opened. */
Test(wh_seal, round_trip_tamper_and_settings)
{
	uint8_t key[WH_SEAL_KEY_BYTES], other[WH_SEAL_KEY_BYTES];
	char sealed[WH_SECRET_TEXT_MAX + 1], plain[WH_SECRET_TEXT_MAX + 1], why[160];
	memset(key, 7, sizeof(key));
	memset(other, 8, sizeof(other));
	cr_assert_eq(wh_seal(key, SECRET_A, sealed, sizeof(sealed)), SL_OK);
	cr_assert(wh_is_sealed(sealed));
	cr_assert_null(strstr(sealed, SECRET_A + 6), "the secret shows through: %s", sealed);
	cr_assert_eq(wh_unseal(key, sealed, plain, sizeof(plain)), SL_OK);
	cr_assert_str_eq(plain, SECRET_A);
	cr_assert_eq(wh_unseal(other, sealed, plain, sizeof(plain)), SL_EINVAL, "another key");
	size_t n = strlen(sealed);
	sealed[n - 3] = sealed[n - 3] == 'A' ? 'B' : 'A';
	cr_assert_eq(wh_unseal(key, sealed, plain, sizeof(plain)), SL_EINVAL, "tampered");
	cr_assert_eq(wh_unseal(key, "sealed:v1:\xc3\xa9", plain, sizeof(plain)), SL_EINVAL, "outside the alphabet");
	cr_assert_eq(wh_unseal(key, SECRET_A, plain, sizeof(plain)), SL_EINVAL, "not sealed");

	char *out = NULL;
	const char *cfg = "{\"url\":\"https://h/\",\"secrets\":[\"" SECRET_A "\"]}";
	cr_assert_eq(wh_seal_json(key, cfg, strlen(cfg), &out), SL_OK);
	cr_assert_null(strstr(out, SECRET_A), "%s", out);
	static struct wh_config c, clear;
	cr_assert_eq(parse(out, &c, why), SL_OK, "%s", why);
	cr_assert(wh_config_sealed(&c));
	cr_assert_eq(wh_config_unseal(&c, NULL, why, sizeof(why)), SL_EINVAL, "no key");
	cr_assert_eq(wh_config_unseal(&c, other, why, sizeof(why)), SL_EINVAL, "another key");
	cr_assert_eq(wh_config_unseal(&c, key, why, sizeof(why)), SL_OK, "%s", why);
	cr_assert_not(wh_config_sealed(&c));
	cr_assert_eq(parse(cfg, &clear, why), SL_OK);
	cr_assert_eq(memcmp(&c.keys[0], &clear.keys[0], sizeof(c.keys[0])), 0, "the same key once opened");
	free(out);
	const char *patch = "{\"rotate_secret\":\"" SECRET_A "\",\"paused\":false}";
	cr_assert_eq(wh_seal_json(key, patch, strlen(patch), &out), SL_OK);
	cr_assert(strstr(out, "\"rotate_secret\":\"sealed:v1:") && strstr(out, "\"paused\":false"), "%s", out);
	free(out);
}
