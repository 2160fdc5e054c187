/*
 * http_consumer_codec.c: the JSON bodies of the durable consumer routes,
 * kept pure (no I/O, no server state) so the fuzz target runs them alone:
 *
 *   POST /v1/consumers, PUT /v1/consumers/{name}   http_consumer_decode
 *   POST /v1/consumers/{name}/ack|nack|in_progress http_acks_decode
 *
 * Everything is checked and copied into the caller's fixed-size structs
 * before a native frame is built: names and topics 1 to 249 bytes of UTF-8
 * without NUL, numbers in the range of their wire field, at most
 * HTTP_ACKS_MAX items. Semantic limits (max_in_flight, ack_timeout_ms, ...)
 * are the native handler's to check, so that HTTP and the native protocol
 * refuse the same things with the same words.
 *
 * A create body refuses fields it does not know (a misspelt
 * "ack_timeout_ms" would otherwise silently leave the default); an ack item
 * ignores them, so that the message objects a pull returned can be posted
 * back as they are.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "err.h"
#include "http_int.h"
#include "ringmsg.h"

/* ---------- shared checks ---------- */

/* A name field: 1 .. max bytes, no NUL (jansson strings are UTF-8 already). */
static int name_copy(json_t *v, char *out, size_t max)
{
	size_t n;

	if (!json_is_string(v))
		return -1;
	n = json_string_length(v);
	if (n == 0 || n > max || strlen(json_string_value(v)) != n)
		return -1;
	memcpy(out, json_string_value(v), n + 1);
	return 0;
}

/* An integer field in [min, max]: 0 absent (out untouched), 1 set, -1 bad. */
static int int_field(json_t *o, const char *name, int64_t min, int64_t max, int64_t *out)
{
	json_t *v = json_object_get(o, name);

	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
		return -1;
	*out = json_integer_value(v);
	return 1;
}

/* ---------- create bodies ---------- */

static const char *const create_fields[] = {
    "name", "topic", "mode", "max_in_flight", "max_deliveries", "never_dead_letter", "ack_timeout_ms",
    "schedule_ms", "dead_letter_topic", "from",
};

static int create_known(const char *k)
{
	for (size_t i = 0; i < sizeof(create_fields) / sizeof(create_fields[0]); i++)
		if (strcmp(k, create_fields[i]) == 0)
			return 1;
	return 0;
}

/* "from": "earliest" | "latest" | OFFSET (number) | {"time": UNIX_MS}. */
static int from_decode(json_t *v, struct http_consumer_in *c)
{
	json_t *t;

	if (!v || (json_is_string(v) && strcmp(json_string_value(v), "earliest") == 0)) {
		c->start = SLUICE__START_AT__EARLIEST;
	} else if (json_is_string(v) && strcmp(json_string_value(v), "latest") == 0) {
		c->start = SLUICE__START_AT__LATEST;
	} else if (json_is_integer(v) && json_integer_value(v) >= 0) {
		c->start = SLUICE__START_AT__OFFSET;
		c->offset = (uint64_t)json_integer_value(v);
	} else if (json_is_object(v) && json_object_size(v) == 1 && (t = json_object_get(v, "time")) &&
	           json_is_integer(t) && json_integer_value(t) >= 0) {
		c->start = SLUICE__START_AT__TIMESTAMP;
		c->timestamp_ms = json_integer_value(t);
	} else {
		return -1;
	}
	return 0;
}

static int schedule_decode(json_t *v, struct http_consumer_in *c)
{
	size_t i;
	json_t *e;

	if (!v)
		return 0;
	if (!json_is_array(v) || json_array_size(v) > RM_SCHEDULE_MAX)
		return -1;
	json_array_foreach(v, i, e)
	{
		if (!json_is_integer(e) || json_integer_value(e) < 0 || json_integer_value(e) > UINT32_MAX)
			return -1;
		c->schedule_ms[i] = (uint32_t)json_integer_value(e);
	}
	c->nschedule = (uint32_t)json_array_size(v);
	return 0;
}

/* The numbers and flags of a create body; why set on a bad one. */
static int create_numbers(json_t *j, struct http_consumer_in *c, const char **why)
{
	json_t *m = json_object_get(j, "mode"), *ndl = json_object_get(j, "never_dead_letter");
	int64_t mif = 0, md = 0, at = 0;

	if (m && !(json_is_string(m) && (strcmp(json_string_value(m), "ordered") == 0 ||
	                                 strcmp(json_string_value(m), "shared") == 0))) {
		*why = "mode must be \"ordered\" or \"shared\"";
		return -1;
	}
	c->shared = m && strcmp(json_string_value(m), "shared") == 0;
	if (int_field(j, "max_in_flight", 0, UINT32_MAX, &mif) < 0 ||
	    int_field(j, "max_deliveries", 0, UINT32_MAX, &md) < 0 ||
	    int_field(j, "ack_timeout_ms", 0, UINT32_MAX, &at) < 0) {
		*why = "max_in_flight, max_deliveries and ack_timeout_ms must be integers 0..4294967295 (0: the default)";
		return -1;
	}
	c->max_in_flight = (uint32_t)mif;
	c->max_deliveries = (uint32_t)md;
	c->ack_timeout_ms = (uint32_t)at;
	if (ndl && !json_is_boolean(ndl)) {
		*why = "never_dead_letter must be true or false";
		return -1;
	}
	c->never_dead_letter = ndl && json_is_true(ndl);
	if (schedule_decode(json_object_get(j, "schedule_ms"), c) < 0) {
		*why = "schedule_ms must be an array of at most 16 integers 0..4294967295";
		return -1;
	}
	if (from_decode(json_object_get(j, "from"), c) < 0) {
		*why = "from must be \"earliest\", \"latest\", an offset >= 0 or {\"time\": UNIX_MS}";
		return -1;
	}
	return 0;
}

static int create_fields_check(json_t *j, const char *name, struct http_consumer_in *c, const char **why,
                               char *tmp, size_t tmp_cap)
{
	json_t *n = json_object_get(j, "name"), *t = json_object_get(j, "topic");
	json_t *d = json_object_get(j, "dead_letter_topic");
	const char *k;
	json_t *v;

	json_object_foreach(j, k, v)
	{
		if (!create_known(k)) {
			snprintf(tmp, tmp_cap, "unknown field \"%.64s\"", k);
			*why = tmp;
			return -1;
		}
	}
	if (name) {
		/* PUT /v1/consumers/{name}: the body may repeat the name, not change it */
		if (n && !(json_is_string(n) && strcmp(json_string_value(n), name) == 0)) {
			*why = "name differs from the one in the path";
			return -1;
		}
		snprintf(c->name, sizeof(c->name), "%s", name);
	} else if (name_copy(n, c->name, RM_CONSUMER_NAME_MAX) < 0) {
		*why = "name must be a string of 1 to 249 bytes";
		return -1;
	}
	if (name_copy(t, c->topic, RM_TOPIC_NAME_MAX) < 0) {
		*why = "topic must be a string of 1 to 249 bytes";
		return -1;
	}
	if (d && !(json_is_string(d) && json_string_length(d) == 0) &&
	    name_copy(d, c->dead_letter_topic, RM_TOPIC_NAME_MAX) < 0) {
		*why = "dead_letter_topic must be a topic name of 1 to 249 bytes (or \"\" for <topic>.dlq)";
		return -1;
	}
	return create_numbers(j, c, why);
}

int http_consumer_decode(const char *p, size_t n, const char *name, struct http_consumer_in *c, char *why,
                         size_t why_cap)
{
	json_error_t e;
	json_t *j = json_loadb(p, n, JSON_REJECT_DUPLICATES, &e);
	const char *w = NULL;
	char tmp[96];
	int rc = SL_OK;

	memset(c, 0, sizeof(*c));
	if (!j || !json_is_object(j)) {
		snprintf(why, why_cap, "the body is not a JSON object");
		rc = SL_EMALFORMED;
	} else if (create_fields_check(j, name, c, &w, tmp, sizeof(tmp)) < 0) {
		snprintf(why, why_cap, "%s", w);
		rc = SL_EINVAL;
	}
	json_decref(j);
	return rc;
}

/* ---------- ack, nack and in-progress bodies ---------- */

/* The first bytes of s, at most RM_CACK_ERROR_MAX, cut on a character
 * boundary (s is UTF-8: jansson checked it). */
static void error_copy(const char *s, char *out)
{
	size_t n = strlen(s);

	if (n > RM_CACK_ERROR_MAX) {
		n = RM_CACK_ERROR_MAX;
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--; /* s[n] continues a character: cut before that character */
	}
	memcpy(out, s, n);
	out[n] = 0;
}

/* delay_ms and error of a nack, from the item or else from the top level. */
static int nack_fields(json_t *e, json_t *top, struct http_ack_in *a, const char **why)
{
	json_t *d = json_object_get(e, "delay_ms"), *er = json_object_get(e, "error");

	d = d ? d : (top ? json_object_get(top, "delay_ms") : NULL);
	er = er ? er : (top ? json_object_get(top, "error") : NULL);
	if (d && !json_is_null(d)) {
		if (!json_is_integer(d) || json_integer_value(d) < 0 || json_integer_value(d) > HTTP_NACK_DELAY_MS_MAX) {
			*why = "delay_ms must be an integer 0..604800000";
			return -1;
		}
		a->delay_ms = json_integer_value(d);
		a->has_delay = 1;
	}
	if (er && !json_is_null(er)) {
		if (!json_is_string(er)) {
			*why = "error must be a string";
			return -1;
		}
		error_copy(json_string_value(er), a->error);
	}
	return 0;
}

/* One item: checked, or -1 with *why set. */
static int ack_item(json_t *e, json_t *top, int kind, struct http_ack_in *a, const char **why)
{
	json_t *p = json_object_get(e, "partition"), *o = json_object_get(e, "offset");

	memset(a, 0, sizeof(*a));
	a->delay_ms = -1;
	if (!json_is_object(e) || (p && !json_is_integer(p)) || !json_is_integer(o)) {
		*why = "expected {\"partition\": int, \"offset\": int}";
		return -1;
	}
	if ((p && (json_integer_value(p) < 0 || json_integer_value(p) > (json_int_t)UINT32_MAX - 1)) ||
	    json_integer_value(o) < 0) {
		*why = "partition must be 0..4294967294 and offset >= 0";
		return -1;
	}
	a->partition = p ? (uint32_t)json_integer_value(p) : 0;
	a->offset = (uint64_t)json_integer_value(o);
	return kind == SLUICE__ACK_KIND__NACK ? nack_fields(e, top, a, why) : 0;
}

/* The items of the body: the "messages" array of an object, a bare array,
 * or the object itself (one item); *top is the object whose delay_ms and
 * error apply to every item (NULL for a bare array). */
static json_t *ack_items(json_t *j, json_t **top, int *single)
{
	json_t *m;

	*single = 0;
	*top = json_is_object(j) ? j : NULL;
	if (json_is_array(j))
		return j;
	if ((m = json_object_get(j, "messages")))
		return m;
	*single = 1;
	return j;
}

int http_acks_decode(const char *p, size_t n, int kind, struct http_ack_in **ins, uint32_t *count, char *why,
                     size_t why_cap)
{
	json_error_t e;
	json_t *j = json_loadb(p, n, JSON_REJECT_DUPLICATES, &e), *items, *top;
	const char *w = NULL;
	size_t cnt = 0;
	int single, rc = SL_OK;

	*ins = NULL;
	*count = 0;
	if (!j || !(json_is_object(j) || json_is_array(j))) {
		snprintf(why, why_cap, "the body is not a JSON object or array");
		rc = SL_EMALFORMED;
		goto out;
	}
	items = ack_items(j, &top, &single);
	cnt = single ? 1 : json_array_size(items);
	if (!single && (!json_is_array(items) || cnt == 0 || cnt > HTTP_ACKS_MAX)) {
		snprintf(why, why_cap, "messages must be an array of 1 to %d {\"partition\", \"offset\"} objects",
		         HTTP_ACKS_MAX);
		rc = SL_EINVAL;
		goto out;
	}
	if (!(*ins = calloc(cnt, sizeof(**ins)))) {
		snprintf(why, why_cap, "out of memory");
		rc = SL_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < cnt; i++) {
		if (ack_item(single ? j : json_array_get(items, i), top, kind, &(*ins)[i], &w) < 0) {
			if (single)
				snprintf(why, why_cap, "%s", w);
			else
				snprintf(why, why_cap, "messages[%zu]: %s", i, w);
			free(*ins);
			*ins = NULL;
			rc = SL_EINVAL;
			goto out;
		}
	}
	*count = (uint32_t)cnt;
out:
	json_decref(j);
	return rc;
}
