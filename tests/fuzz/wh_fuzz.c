/*
 * wh_fuzz.c: libFuzzer target for the webhook decoders of operator- and
 * server-supplied text (broker/http/webhook): destination URLs
 * (wh_url_parse, then wh_url_authority on what it accepted), secrets
 * (wh_secret_parse, wh_key_parse), Retry-After values, and webhook
 * settings with their patches (wh_config_parse, wh_config_patch). Whatever is
 * accepted must satisfy the documented invariants.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "wh_config.h"
#include "wh_retry.h"
#include "wh_sign.h"
#include "wh_url.h"

static void fuzz_url(const uint8_t *data, size_t size)
{
	struct wh_url u;
	char auth[WH_HOST_BYTES_MAX + 9];

	if (wh_url_parse((const char *)data, size, &u) != SL_OK)
		return;
	if (u.port == 0 || u.path[0] != '/' || strlen(u.path) > WH_URL_BYTES_MAX || !u.host[0])
		abort();
	if (wh_url_authority(&u, auth, sizeof auth) != SL_OK)
		abort();
}

static void fuzz_secret(const uint8_t *data, size_t size)
{
	char s[256];
	uint8_t key[WH_KEY_BYTES_MAX];
	size_t n = 0;
	struct wh_key k;
	char sig[WH_SIG_HEADER_CHARS_MAX];

	if (size >= sizeof s)
		size = sizeof s - 1;
	memcpy(s, data, size);
	s[size] = 0;
	if (wh_secret_parse(s, key, sizeof key, &n) == SL_OK && (n < WH_KEY_BYTES_MIN || n > WH_KEY_BYTES_MAX))
		abort();
	if (wh_key_parse(s, &k) == SL_OK &&
	    wh_signature_header(&k, 1, "msg_1", 1, data, size, sig, sizeof sig) != SL_OK)
		abort();
}

static void fuzz_retry(const uint8_t *data, size_t size)
{
	int64_t ms = -1;

	if (wh_retry_after_parse((const char *)data, size, 1700000000000, &ms) == SL_OK &&
	    (ms < 0 || ms > (int64_t)WH_RETRY_AFTER_S_MAX * 1000))
		abort();
}

/* Webhook settings as stored, and a patch of them (the input split at its first NUL). */
static void fuzz_config(const uint8_t *data, size_t size)
{
	static struct wh_config c;
	char why[160], *out = NULL;
	const uint8_t *nul = memchr(data, 0, size);
	size_t a = nul ? (size_t)(nul - data) : size;

	if (wh_config_parse((const char *)data, a, &c, why, sizeof why) == SL_OK) {
		char *j = wh_config_json(&c, 1);
		if (c.nsecrets == 0 || c.nsecrets > WH_SECRETS_MAX || c.timeout_ms == 0)
			abort();
		free(j);
	}
	if (nul && wh_config_patch((const char *)data, a, (const char *)nul + 1, size - a - 1, &out, why, sizeof why) ==
	               SL_OK) {
		if (!out || wh_config_parse(out, strlen(out), &c, why, sizeof why) != SL_OK)
			abort();
		free(out);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	/* the first byte picks the decoder, so each one sees the rest whole */
	switch (data[0] % 4) {
	case 0:
		fuzz_url(data + 1, size - 1);
		break;
	case 1:
		fuzz_secret(data + 1, size - 1);
		break;
	case 2:
		fuzz_retry(data + 1, size - 1);
		break;
	default:
		fuzz_config(data + 1, size - 1);
		break;
	}
	return 0;
}
