/*
 * wh_config.c: see wh_config.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <sodium.h>

#include "err.h"
#include "wh_config.h"
#include "wh_seal.h"

static int fail(char *why, size_t cap, const char *msg)
{
	snprintf(why, cap, "%s", msg);
	return SL_EINVAL;
}

/* An HTTP token (RFC 9110): the characters a header name may have. */
static int token_ok(const char *s)
{
	static const char extra[] = "!#$%&'*+-.^_`|~";
	if (!*s)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
		      strchr(extra, *s)))
			return 0;
	return 1;
}

static int value_ok(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 && *s != '\t')
			return 0;
	return 1;
}

/* A header we set ourselves or that framing depends on: not the user's. */
static int header_reserved(const char *n)
{
	static const char *const r[] = {"host", "content-length", "content-type", "connection", "transfer-encoding",
	                                "webhook-id", "webhook-timestamp", "webhook-signature", "user-agent"};
	for (size_t i = 0; i < sizeof(r) / sizeof(r[0]); i++)
		if (strcasecmp(n, r[i]) == 0)
			return 1;
	return 0;
}

static int parse_secrets(json_t *a, struct wh_config *c, char *why, size_t cap)
{
	size_t i;
	json_t *v;
	if (!json_is_array(a) || json_array_size(a) == 0 || json_array_size(a) > WH_SECRETS_MAX)
		return fail(why, cap, "secrets must be an array of 1 to 4 secrets");
	json_array_foreach(a, i, v)
	{
		const char *s = json_string_value(v);
		if (s && strlen(s) <= WH_SECRET_TEXT_MAX && wh_is_sealed(s)) {
			c->sealed[i] = 1; /* opened by whoever signs (wh_config_unseal) */
			snprintf(c->secrets[i], sizeof(c->secrets[i]), "%s", s);
			continue;
		}
		if (!s || strlen(s) > WH_SECRET_TEXT_MAX || wh_key_parse(s, &c->keys[i]) != SL_OK)
			return fail(why, cap, "a secret must be whsec_ and base64 of 24 to 64 bytes (or whsk_ for Ed25519)");
		snprintf(c->secrets[i], sizeof(c->secrets[i]), "%s", s);
	}
	c->nsecrets = json_array_size(a);
	return SL_OK;
}

static int parse_headers(json_t *o, struct wh_config *c, char *why, size_t cap)
{
	const char *k;
	json_t *v;
	if (!json_is_object(o) || json_object_size(o) > WH_CFG_HEADERS_MAX)
		return fail(why, cap, "headers must be an object of at most 16 string values");
	json_object_foreach(o, k, v)
	{
		const char *s = json_string_value(v);
		if (!s || strlen(k) > WH_HEADER_NAME_MAX || strlen(s) > WH_HEADER_VALUE_MAX || !token_ok(k) ||
		    !value_ok(s))
			return fail(why, cap, "a header needs a token name (up to 64 bytes) and a text value (up to 1024)");
		if (header_reserved(k))
			return fail(why, cap, "headers may not set Host, Content-*, Connection, Transfer-Encoding, "
			                      "User-Agent or webhook-*");
		snprintf(c->headers[c->nheaders].name, sizeof(c->headers[0].name), "%s", k);
		snprintf(c->headers[c->nheaders].value, sizeof(c->headers[0].value), "%s", s);
		c->nheaders++;
	}
	return SL_OK;
}

static int parse_filter(json_t *o, struct wh_config *c, char *why, size_t cap)
{
	json_t *kp = json_object_get(o, "key_prefix"), *h = json_object_get(o, "header");
	if (!json_is_object(o))
		return fail(why, cap, "filter must be an object");
	if (kp) {
		const char *s = json_string_value(kp);
		if (!s || strlen(s) > WH_FILTER_PREFIX_MAX)
			return fail(why, cap, "filter.key_prefix must be a string of at most 255 bytes");
		snprintf(c->key_prefix, sizeof(c->key_prefix), "%s", s);
		c->key_prefix_len = strlen(s);
	}
	if (h) {
		const char *k;
		json_t *v;
		if (!json_is_object(h) || json_object_size(h) != 1)
			return fail(why, cap, "filter.header must be an object of one header and its value");
		json_object_foreach(h, k, v)
		{
			const char *s = json_string_value(v);
			if (!s || strlen(k) > WH_HEADER_NAME_MAX || strlen(s) > WH_HEADER_VALUE_MAX)
				return fail(why, cap, "filter.header: a name up to 64 bytes and a string value up to 1024");
			snprintf(c->filter_name, sizeof(c->filter_name), "%s", k);
			snprintf(c->filter_value, sizeof(c->filter_value), "%s", s);
			c->has_header_filter = 1;
		}
	}
	return SL_OK;
}

static int parse_obj(json_t *o, struct wh_config *c, char *why, size_t cap)
{
	json_t *v;
	const char *url = json_string_value(json_object_get(o, "url"));
	int rc;
	if ((v = json_object_get(o, "callback"))) {
		if (!json_is_boolean(v))
			return fail(why, cap, "callback must be true or false");
		c->callback = json_is_true(v);
	}
	if (c->callback && json_object_get(o, "url"))
		return fail(why, cap, "a callback webhook takes each message's URL (sluice-callback-url): no url");
	if (!c->callback && (!url || strlen(url) > WH_URL_BYTES_MAX || wh_url_parse(url, strlen(url), &c->u) != SL_OK))
		return fail(why, cap, "url must be an http:// or https:// URL without user info, at most 2048 bytes");
	snprintf(c->url, sizeof(c->url), "%s", url ? url : "");
	if ((rc = parse_secrets(json_object_get(o, "secrets"), c, why, cap)) != SL_OK)
		return rc;
	if ((v = json_object_get(o, "headers")) && (rc = parse_headers(v, c, why, cap)) != SL_OK)
		return rc;
	if ((v = json_object_get(o, "filter")) && (rc = parse_filter(v, c, why, cap)) != SL_OK)
		return rc;
	c->timeout_ms = WH_TIMEOUT_MS_DEFAULT_CFG;
	if ((v = json_object_get(o, "timeout_ms"))) {
		if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > WH_TIMEOUT_MS_MAX)
			return fail(why, cap, "timeout_ms must be 1 to 120000");
		c->timeout_ms = (uint32_t)json_integer_value(v);
	}
	if ((v = json_object_get(o, "rate_per_s"))) {
		if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 1000000)
			return fail(why, cap, "rate_per_s must be 0 to 1000000");
		c->rate_per_s = (uint32_t)json_integer_value(v);
	}
	if ((v = json_object_get(o, "paused"))) {
		if (!json_is_boolean(v))
			return fail(why, cap, "paused must be true or false");
		c->paused = json_is_true(v);
	}
	if ((v = json_object_get(o, "disabled_reason"))) {
		const char *s = json_string_value(v);
		if (!s)
			return fail(why, cap, "disabled_reason must be a string");
		snprintf(c->disabled_reason, sizeof(c->disabled_reason), "%s", s);
	}
	return SL_OK;
}

int wh_config_parse(const char *s, size_t len, struct wh_config *c, char *why, size_t why_cap)
{
	json_error_t e;
	memset(c, 0, sizeof(*c));
	json_t *o = json_loadb(s, len, JSON_REJECT_DUPLICATES, &e);
	if (!o || !json_is_object(o)) {
		json_decref(o);
		return fail(why, why_cap, "webhook settings must be a JSON object");
	}
	int rc = parse_obj(o, c, why, why_cap);
	json_decref(o);
	return rc;
}

static int rotate(json_t *o, json_t *v, char *why, size_t cap)
{
	json_t *secrets = json_array(), *old = json_object_get(o, "secrets");
	if (!secrets)
		return SL_ENOMEM;
	if (!json_is_string(v)) {
		json_decref(secrets);
		return fail(why, cap, "rotate_secret must be a secret (whsec_...)");
	}
	json_array_append(secrets, v);
	if (json_is_array(old) && json_array_size(old) > 0)
		json_array_append(secrets, json_array_get(old, 0));
	json_object_set_new(o, "secrets", secrets);
	return SL_OK;
}

int wh_config_patch(const char *stored, size_t stored_len, const char *patch, size_t patch_len, char **out,
                    char *why, size_t why_cap)
{
	json_error_t e;
	json_t *o = json_loadb(stored, stored_len, 0, &e), *p = json_loadb(patch, patch_len, JSON_REJECT_DUPLICATES, &e);
	const char *k;
	json_t *v;
	int rc = SL_OK;
	*out = NULL;
	if (!json_is_object(o) || !json_is_object(p)) {
		rc = fail(why, why_cap, "a settings change must be a JSON object");
		goto out;
	}
	json_object_foreach(p, k, v)
	{
		if (strcmp(k, "rotate_secret") == 0)
			rc = rotate(o, v, why, why_cap);
		else if (json_is_null(v))
			json_object_del(o, k);
		else
			json_object_set(o, k, v);
		if (rc)
			goto out;
	}
	*out = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	if (!*out) {
		rc = SL_ENOMEM;
		goto out;
	}
	struct wh_config *c = malloc(sizeof(*c));
	rc = c ? wh_config_parse(*out, strlen(*out), c, why, why_cap) : SL_ENOMEM;
	free(c);
	if (rc) {
		free(*out);
		*out = NULL;
	}
out:
	json_decref(p);
	json_decref(o);
	return rc;
}

char *wh_config_json(const struct wh_config *c, int redact)
{
	json_t *o = json_object(), *h = json_object(), *f = json_object();
	char *out = NULL;
	if (!o || !h || !f)
		goto out;
	if (c->callback)
		json_object_set_new(o, "callback", json_true());
	else
		json_object_set_new(o, "url", json_string(c->url));
	if (redact) {
		json_object_set_new(o, "secrets", json_integer((json_int_t)c->nsecrets));
	} else {
		json_t *a = json_array();
		for (size_t i = 0; a && i < c->nsecrets; i++)
			json_array_append_new(a, json_string(c->secrets[i]));
		json_object_set_new(o, "secrets", a);
	}
	for (size_t i = 0; i < c->nheaders; i++)
		json_object_set_new(h, c->headers[i].name, json_string(c->headers[i].value));
	json_object_set(o, "headers", h);
	json_object_set_new(o, "timeout_ms", json_integer(c->timeout_ms));
	if (c->rate_per_s)
		json_object_set_new(o, "rate_per_s", json_integer(c->rate_per_s));
	if (c->key_prefix_len)
		json_object_set_new(f, "key_prefix", json_string(c->key_prefix));
	if (c->has_header_filter) {
		json_t *fh = json_object();
		json_object_set_new(fh, c->filter_name, json_string(c->filter_value));
		json_object_set_new(f, "header", fh);
	}
	if (json_object_size(f))
		json_object_set(o, "filter", f);
	json_object_set_new(o, "paused", json_boolean(c->paused));
	if (c->disabled_reason[0])
		json_object_set_new(o, "disabled_reason", json_string(c->disabled_reason));
	out = json_dumps(o, JSON_COMPACT);
out:
	json_decref(f);
	json_decref(h);
	json_decref(o);
	return out;
}

int wh_config_match(const struct wh_config *c, const uint8_t *key, size_t key_len,
                    const uint8_t *(*hget)(void *arg, const char *name, size_t *len), void *arg)
{
	if (c->key_prefix_len && (key_len < c->key_prefix_len || memcmp(key, c->key_prefix, c->key_prefix_len) != 0))
		return 0;
	if (c->has_header_filter) {
		size_t n;
		const uint8_t *v = hget(arg, c->filter_name, &n);
		if (!v || n != strlen(c->filter_value) || memcmp(v, c->filter_value, n) != 0)
			return 0;
	}
	return 1;
}

int wh_config_sealed(const struct wh_config *c)
{
	for (size_t i = 0; i < c->nsecrets; i++)
		if (c->sealed[i])
			return 1;
	return 0;
}

int wh_config_unseal(struct wh_config *c, const uint8_t *key, char *why, size_t cap)
{
	char plain[WH_SECRET_TEXT_MAX + 1];
	for (size_t i = 0; i < c->nsecrets; i++) {
		if (!c->sealed[i])
			continue;
		if (!key)
			return fail(why, cap, "its secrets are sealed and this node has no [auth] key_file");
		int rc = wh_unseal(key, c->secrets[i], plain, sizeof(plain)) == SL_OK ? wh_key_parse(plain, &c->keys[i])
		                                                                        : SL_EINVAL;
		sodium_memzero(plain, sizeof(plain));
		if (rc != SL_OK)
			return fail(why, cap, "a sealed secret does not open with this node's [auth] key_file");
		c->sealed[i] = 0;
	}
	return SL_OK;
}
