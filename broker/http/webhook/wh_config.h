/*
 * wh_config.h: a webhook's settings, as stored in the replicated log (the
 * JSON of ConsumerConfig.webhook, docs/webhooks.md) and checked here once
 * for every reader: the frontend refuses a bad one before it reaches the
 * log, and the deliverer reads it back with the same code. Pure (jansson),
 * fuzzed with the other webhook decoders.
 *
 *   {"url": "https://...", "secrets": ["whsec_...", ...], "headers": {"k": "v"},
 *    "timeout_ms": 15000, "filter": {"key_prefix": "...", "header": {"k": "v"}},
 *    "paused": false, "disabled_reason": "", "rate_per_s": 0}
 *
 * Everything but url and one secret is optional. secrets[0] signs; the
 * others sign too while a rotation is under way (the receiver accepts any).
 *
 * {"callback": true} in place of url: each message names its destination
 * in its header sluice-callback-url (the commit callbacks of publishes,
 * docs/webhooks.md#callbacks), and its header sluice-event-type is the
 * body's type.
 */
#ifndef SLUICE_WH_CONFIG_H
#define SLUICE_WH_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "wh_sign.h"
#include "wh_url.h"

#define WH_SECRETS_MAX 4
#define WH_CFG_HEADERS_MAX 16
#define WH_HEADER_NAME_MAX 64
#define WH_HEADER_VALUE_MAX 1024
#define WH_SECRET_TEXT_MAX 256 /* a secret, or one sealed (wh_seal.h) */
#define WH_TIMEOUT_MS_DEFAULT_CFG 15000
#define WH_TIMEOUT_MS_MAX 120000
#define WH_FILTER_PREFIX_MAX 255
#define WH_REASON_MAX 255
/* A webhook consumer's ack deadline is its timeout_ms plus this: a live
 * deliverer settles every request before it, a dead one's come back after. */
#define WH_ACK_MARGIN_MS 5000

struct wh_config {
	char url[WH_URL_BYTES_MAX + 1];       /* "" for a callback webhook */
	struct wh_url u;
	int callback;                         /* the URL is each message's sluice-callback-url */
	char secrets[WH_SECRETS_MAX][WH_SECRET_TEXT_MAX + 1];
	struct wh_key keys[WH_SECRETS_MAX];
	int sealed[WH_SECRETS_MAX];           /* secrets[i] is sealed (wh_seal.h); keys[i] not parsed yet */
	size_t nsecrets;
	struct {
		char name[WH_HEADER_NAME_MAX + 1];
		char value[WH_HEADER_VALUE_MAX + 1];
	} headers[WH_CFG_HEADERS_MAX];
	size_t nheaders;
	uint32_t timeout_ms;
	uint32_t rate_per_s;                  /* 0: no limit */
	char key_prefix[WH_FILTER_PREFIX_MAX + 1];
	size_t key_prefix_len;
	int has_header_filter;
	char filter_name[WH_HEADER_NAME_MAX + 1];
	char filter_value[WH_HEADER_VALUE_MAX + 1];
	int paused;
	char disabled_reason[WH_REASON_MAX + 1];
};

/* Parse and check s[0..len). SL_OK, or SL_EINVAL with why (for the user). */
int wh_config_parse(const char *s, size_t len, struct wh_config *c, char *why, size_t why_cap);

/* Settings changed by a patch (a JSON object): each key replaces the
 * stored one, null removes it, and "rotate_secret": S makes S the signing
 * secret with the previous one kept as the second (receivers accept both
 * until the rotation is over). The result is checked like a new one.
 * SL_OK and *out (malloc'd, NUL-terminated), or SL_EINVAL with why. The
 * same on every node: the logwriter applies it from the log. */
int wh_config_patch(const char *stored, size_t stored_len, const char *patch, size_t patch_len, char **out,
                    char *why, size_t why_cap);

/* c as JSON (malloc'd, NUL-terminated; NULL if out of memory). redact: the
 * secrets are left out ("secrets": their count), for answers to clients. */
char *wh_config_json(const struct wh_config *c, int redact);

/* 1 if some secret is still sealed (wh_seal.h): open them before signing. */
int wh_config_sealed(const struct wh_config *c);
/* Open the sealed secrets with key (NULL: none here) into keys[]. SL_OK,
 * or SL_EINVAL with why (no key, another key, a damaged secret). */
int wh_config_unseal(struct wh_config *c, const uint8_t *key, char *why, size_t cap);

/* Whether a message passes the filter: its key starts with key_prefix, and
 * with a header filter, hget(arg, name) finds that header with exactly that
 * value (hget returns the value and its length, or NULL). */
int wh_config_match(const struct wh_config *c, const uint8_t *key, size_t key_len,
                    const uint8_t *(*hget)(void *arg, const char *name, size_t *len), void *arg);

#endif
