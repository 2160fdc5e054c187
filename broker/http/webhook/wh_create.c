/*
 * wh_create.c: a new webhook's description (the body of POST /v1/webhooks,
 * and what `sluice webhook create` builds from its flags) into a durable
 * consumer's settings and the webhook's own (wh_config.h), one mapping for
 * both. Pure, fuzzed through the HTTP decoder:
 *
 *   {topic, url, name, secret, from, ordered, max_in_flight, max_attempts,
 *    schedule_ms, headers, filter, timeout_ms, rate_per_s, callback}
 *
 * schedule_ms[k] is the delay before attempt k+1 (the first is normally 0:
 * at once); the consumer keeps the delays after a failed attempt, so its
 * schedule is schedule_ms[1..] and max_deliveries is max_attempts
 * (default: the schedule's length). Unknown fields are refused. A secret
 * that is not given is generated; the settings are checked by the frontend
 * (wh_config_parse) like any other.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "err.h"
#include "wh_config.h"
#include "wh_create.h"
#include "wh_sign.h"

/* Standard Webhooks' schedule: at once, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h. */
static const uint32_t schedule_default[] = {0,        5000,     300000,   1800000,  7200000,
                                            18000000, 36000000, 50400000, 72000000, 86400000};

static int bad(char *why, size_t cap, const char *msg)
{
	snprintf(why, cap, "%s", msg);
	return SL_EINVAL;
}

static int known(const char *k)
{
	static const char *const f[] = {"topic",        "url",         "name",          "secret",  "from",
	                                "ordered",      "max_in_flight", "max_attempts", "schedule_ms",
	                                "headers",      "filter",      "timeout_ms",    "rate_per_s",
	                                "callback"};
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		if (strcmp(k, f[i]) == 0)
			return 1;
	return 0;
}

static int str_field(json_t *o, const char *k, char *out, size_t max, int required)
{
	json_t *v = json_object_get(o, k);
	if (!v)
		return required ? -1 : 0;
	if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > max ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return -1;
	memcpy(out, json_string_value(v), json_string_length(v) + 1);
	return 0;
}

static int u32_field(json_t *o, const char *k, uint32_t min, uint32_t max, uint32_t *out)
{
	json_t *v = json_object_get(o, k);
	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
		return -1;
	*out = (uint32_t)json_integer_value(v);
	return 0;
}

static int from_field(json_t *v, struct wh_create *c)
{
	c->start = WH_START_LATEST; /* a new webhook gets what comes from now on */
	if (!v)
		return 0;
	if (json_is_string(v) && strcmp(json_string_value(v), "earliest") == 0)
		c->start = WH_START_EARLIEST;
	else if (json_is_string(v) && strcmp(json_string_value(v), "latest") == 0)
		c->start = WH_START_LATEST;
	else if (json_is_integer(v) && json_integer_value(v) >= 0)
		c->start = WH_START_OFFSET, c->offset = (uint64_t)json_integer_value(v);
	else if (json_is_object(v) && json_is_integer(json_object_get(v, "time")) && json_object_size(v) == 1)
		c->start = WH_START_TIMESTAMP, c->timestamp_ms = json_integer_value(json_object_get(v, "time"));
	else
		return -1;
	return 0;
}

static int schedule_field(json_t *o, uint32_t *sched, uint32_t *n)
{
	json_t *v = json_object_get(o, "schedule_ms"), *x;
	size_t i;
	if (!v) {
		*n = sizeof(schedule_default) / sizeof(schedule_default[0]);
		memcpy(sched, schedule_default, sizeof(schedule_default));
		return 0;
	}
	if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > WH_CREATE_SCHEDULE_MAX + 1)
		return -1;
	json_array_foreach(v, i, x)
	{
		if (!json_is_integer(x) || json_integer_value(x) < 0 || json_integer_value(x) > UINT32_MAX)
			return -1;
		sched[i] = (uint32_t)json_integer_value(x);
	}
	*n = (uint32_t)json_array_size(v);
	return 0;
}

/* The consumer's part of the body. */
static int consumer_part(json_t *o, struct wh_create *c, char *why, size_t cap)
{
	uint32_t sched[WH_CREATE_SCHEDULE_MAX + 1], nsched = 0, attempts = 0;
	json_t *ordered = json_object_get(o, "ordered");
	if (str_field(o, "topic", c->topic, WH_NAME_MAX, 1) < 0)
		return bad(why, cap, "topic must be a topic name (1 to 249 bytes)");
	if (str_field(o, "name", c->name, WH_NAME_MAX, 0) < 0)
		return bad(why, cap, "name must be 1 to 249 bytes of [A-Za-z0-9._-]");
	if (ordered && !json_is_boolean(ordered))
		return bad(why, cap, "ordered must be true or false");
	if (u32_field(o, "max_in_flight", 1, 65536, &c->max_in_flight) < 0)
		return bad(why, cap, "max_in_flight must be 1 to 65536");
	c->shared = (ordered && json_is_false(ordered)) || (!ordered && c->max_in_flight > 0);
	if (c->max_in_flight && !c->shared)
		return bad(why, cap, "max_in_flight is for webhooks that are not ordered");
	if (u32_field(o, "max_attempts", 1, 1000000, &attempts) < 0)
		return bad(why, cap, "max_attempts must be 1 to 1000000");
	if (schedule_field(o, sched, &nsched) < 0)
		return bad(why, cap, "schedule_ms must be 1 to 17 delays in ms (the first before attempt 1)");
	if (from_field(json_object_get(o, "from"), c) < 0)
		return bad(why, cap, "from must be \"earliest\", \"latest\", an offset or {\"time\": ms}");
	c->max_deliveries = attempts ? attempts : nsched;
	c->nschedule = nsched - 1;
	memcpy(c->schedule_ms, sched + 1, c->nschedule * sizeof(uint32_t));
	return SL_OK;
}

/* The webhook settings' part: a JSON object for wh_config (new reference). */
static json_t *settings_part(json_t *o, char *secret, size_t secret_cap, char *why, size_t cap)
{
	json_t *s = json_object(), *v;
	const char *keys[] = {"headers", "filter", "timeout_ms", "rate_per_s", "callback"};
	if (!s)
		return NULL;
	if (json_object_get(o, "url"))
		json_object_set(s, "url", json_object_get(o, "url"));
	if ((v = json_object_get(o, "secret"))) {
		if (!json_is_string(v) || json_string_length(v) >= secret_cap) {
			json_decref(s);
			bad(why, cap, "secret must be whsec_ and base64 of 24 to 64 bytes");
			return NULL;
		}
		snprintf(secret, secret_cap, "%s", json_string_value(v));
	} else if (wh_secret_generate(secret, secret_cap) != SL_OK) {
		json_decref(s);
		bad(why, cap, "could not make a secret");
		return NULL;
	}
	json_object_set_new(s, "secrets", json_pack("[s]", secret));
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if ((v = json_object_get(o, keys[i])))
			json_object_set(s, keys[i], v);
	return s;
}

int wh_create_decode(const char *p, size_t n, struct wh_create *c, char **settings, char *secret, size_t secret_cap,
                     char *why, size_t why_cap)
{
	json_error_t e;
	json_t *o = json_loadb(p, n, JSON_REJECT_DUPLICATES, &e), *s = NULL;
	const char *k;
	json_t *v;
	int rc = SL_OK;
	memset(c, 0, sizeof(*c));
	*settings = NULL;
	if (!json_is_object(o)) {
		json_decref(o);
		snprintf(why, why_cap, "the body must be a JSON object");
		return SL_EMALFORMED;
	}
	json_object_foreach(o, k, v)
	{
		if (!known(k)) {
			snprintf(why, why_cap, "unknown field \"%.64s\"", k);
			rc = SL_EINVAL;
			goto out;
		}
	}
	if (!json_is_string(json_object_get(o, "url")) && !json_is_true(json_object_get(o, "callback"))) {
		rc = bad(why, why_cap, "url is required (http:// or https://)");
		goto out;
	}
	if ((rc = consumer_part(o, c, why, why_cap)) != SL_OK)
		goto out;
	if (!(s = settings_part(o, secret, secret_cap, why, why_cap))) {
		rc = SL_EINVAL;
		goto out;
	}
	uint32_t timeout = WH_TIMEOUT_MS_DEFAULT_CFG;
	if (u32_field(o, "timeout_ms", 1, WH_TIMEOUT_MS_MAX, &timeout) < 0) {
		rc = bad(why, why_cap, "timeout_ms must be 1 to 120000");
		goto out;
	}
	c->ack_timeout_ms = timeout + WH_ACK_MARGIN_MS; /* never retried while its request may still answer */
	if (!(*settings = json_dumps(s, JSON_COMPACT | JSON_SORT_KEYS)))
		rc = SL_ENOMEM;
out:
	json_decref(s);
	json_decref(o);
	return rc;
}
