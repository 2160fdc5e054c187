/*
 * ws_json.c: see ws_json.h. Every string and number is checked for type
 * and range before it is used; sizes are bounded by the message (itself
 * bounded by [http] ws_message_max) and by the limits in ws_json.h.
 */
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "ws_json.h"

#define U53 ((json_int_t)1 << 53)

/* Standard base64 (padding optional); -1 if s is not base64. */
static long b64_decode(const char *s, size_t n, uint8_t *out)
{
	uint32_t acc = 0;
	int bits = 0;
	long o = 0;

	while (n > 0 && s[n - 1] == '=')
		n--;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		int v;
		if (c >= 'A' && c <= 'Z')
			v = c - 'A';
		else if (c >= 'a' && c <= 'z')
			v = c - 'a' + 26;
		else if (c >= '0' && c <= '9')
			v = c - '0' + 52;
		else if (c == '+')
			v = 62;
		else if (c == '/')
			v = 63;
		else
			return -1;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (uint8_t)(acc >> bits);
		}
	}
	return bits >= 6 ? -1 : o;
}

/* A non-negative integer member below max (or absent: *out untouched, 0). */
static int get_uint(json_t *o, const char *name, json_int_t max, uint64_t *out, int *present)
{
	json_t *v = json_object_get(o, name);

	if (present)
		*present = v != NULL && !json_is_null(v);
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > max)
		return -1;
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

/* A string member, or bytes when NAME_encoding is "base64" (written at *bin). */
static int get_bytes(json_t *o, const char *name, ProtobufCBinaryData *out, uint8_t **bin)
{
	char enc[64];
	json_t *v = json_object_get(o, name), *e;

	out->data = NULL;
	out->len = 0;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return -1;
	snprintf(enc, sizeof(enc), "%s_encoding", name);
	e = json_object_get(o, enc);
	if (e && !json_is_null(e)) {
		if (!json_is_string(e) || strcmp(json_string_value(e), "base64") != 0)
			return -1;
		long n = b64_decode(json_string_value(v), json_string_length(v), *bin);
		if (n < 0)
			return -1;
		out->data = *bin;
		out->len = (size_t)n;
		*bin += n;
		return 0;
	}
	out->data = (uint8_t *)json_string_value(v);
	out->len = json_string_length(v);
	return 0;
}

static int fail(const char **why, const char *msg)
{
	*why = msg;
	return SL_EMALFORMED;
}

static int decode_publish(struct ws_json_req *r, const char **why)
{
	json_t *o = r->root, *h = json_object_get(o, "headers");
	size_t nh = 0, i = 0;
	uint64_t v = 0;
	int present = 0;
	const char *name;
	json_t *val;

	sluice__publish__init(&r->publish);
	r->publish.topic = (char *)r->topic;
	if (h && !json_is_null(h)) {
		if (!json_is_object(h))
			return fail(why, "headers must be an object of strings");
		nh = json_object_size(h);
		if (nh > WS_JSON_HEADERS_MAX)
			return fail(why, "too many headers");
	}
	/* base64 decodes to at most the length of its text */
	json_t *k = json_object_get(o, "key"), *p = json_object_get(o, "payload");
	size_t room = (json_is_string(k) ? json_string_length(k) : 0) + (json_is_string(p) ? json_string_length(p) : 0);
	uint8_t *at;
	if (!(r->bin = malloc(room ? room : 1)) || (nh && (!(r->hdrs = calloc(nh, sizeof(*r->hdrs))) ||
	                                                  !(r->hdrp = calloc(nh, sizeof(*r->hdrp))))))
		return SL_ENOMEM;
	at = r->bin;
	if (!p || !json_is_string(p))
		return fail(why, "publish needs a payload (a string; binary as base64 with payload_encoding)");
	if (get_bytes(o, "payload", &r->publish.payload, &at) < 0)
		return fail(why, "payload is not a string, or not base64 as payload_encoding says");
	if (get_bytes(o, "key", &r->publish.key, &at) < 0)
		return fail(why, "key must be a string (binary as base64 with key_encoding)");
	json_object_foreach(h, name, val)
	{
		if (!json_is_string(val))
			return fail(why, "header values must be strings");
		if (!name[0] || strlen(name) > 255)
			return fail(why, "header names must be 1 to 255 bytes");
		sluice__header__init(&r->hdrs[i]);
		r->hdrs[i].key = (char *)name;
		r->hdrs[i].value.data = (uint8_t *)json_string_value(val);
		r->hdrs[i].value.len = json_string_length(val);
		r->hdrp[i] = &r->hdrs[i];
		i++;
	}
	r->publish.headers = r->hdrp;
	r->publish.n_headers = nh;
	if (get_uint(o, "partition", UINT32_MAX, &v, &present) < 0)
		return fail(why, "partition must be an integer from 0");
	r->publish.has_partition = present;
	r->publish.partition = (uint32_t)v;
	v = 0;
	if (get_uint(o, "producer_id", U53, &v, NULL) < 0)
		return fail(why, "producer_id must be a non-negative integer");
	r->publish.producer_id = v;
	v = 0;
	if (get_uint(o, "sequence", U53, &v, NULL) < 0)
		return fail(why, "sequence must be a non-negative integer");
	r->publish.sequence = v;
	return SL_OK;
}

/* from: "earliest" | "latest" | OFFSET | {"time": MS} | {"positions": {"P": NEXT}} */
static int decode_from(struct ws_json_req *r, json_t *from, const char **why)
{
	Sluice__Subscribe *s = &r->subscribe;

	if (!from || json_is_null(from) || (json_is_string(from) && strcmp(json_string_value(from), "latest") == 0)) {
		s->start = SLUICE__START_AT__LATEST;
		return SL_OK;
	}
	if (json_is_string(from) && strcmp(json_string_value(from), "earliest") == 0) {
		s->start = SLUICE__START_AT__EARLIEST;
		return SL_OK;
	}
	if (json_is_integer(from) && json_integer_value(from) >= 0) {
		s->start = SLUICE__START_AT__OFFSET;
		s->offset = (uint64_t)json_integer_value(from);
		return SL_OK;
	}
	if (!json_is_object(from))
		return fail(why, "from must be \"earliest\", \"latest\", an offset, {\"time\": ms} or {\"positions\": {...}}");
	json_t *t = json_object_get(from, "time"), *pos = json_object_get(from, "positions");
	if (t && json_is_integer(t) && json_integer_value(t) >= 0 && !pos) {
		s->start = SLUICE__START_AT__TIMESTAMP;
		s->timestamp_ms = json_integer_value(t);
		return SL_OK;
	}
	if (!pos || t || !json_is_object(pos) || json_object_size(pos) > WS_JSON_PARTS_MAX)
		return fail(why, "from: {\"time\": ms} or {\"positions\": {\"PARTITION\": NEXT, ...}}");
	/* partitions the positions do not name start at the earliest */
	s->start = SLUICE__START_AT__EARLIEST;
	size_t n = json_object_size(pos), i = 0;
	const char *k;
	json_t *v;
	if (n && (!(r->start.parts = calloc(n, sizeof(*r->start.parts))) ||
	          !(r->start.next = calloc(n, sizeof(*r->start.next)))))
		return SL_ENOMEM;
	json_object_foreach(pos, k, v)
	{
		char *end;
		unsigned long p = strtoul(k, &end, 10);
		if (!k[0] || *end || p > UINT32_MAX || !json_is_integer(v) || json_integer_value(v) < 0)
			return fail(why, "positions maps partition numbers to next offsets");
		r->start.parts[i] = (uint32_t)p;
		r->start.next[i] = (uint64_t)json_integer_value(v);
		i++;
	}
	r->start.n = n;
	return SL_OK;
}

static int decode_subscribe(struct ws_json_req *r, const char **why)
{
	json_t *o = r->root, *parts = json_object_get(o, "partitions"), *g = json_object_get(o, "group");
	uint64_t credit = 0;
	int rc;

	sluice__subscribe__init(&r->subscribe);
	r->subscribe.topic = (char *)r->topic;
	if ((rc = decode_from(r, json_object_get(o, "from"), why)) != SL_OK)
		return rc;
	if (parts && !json_is_null(parts)) {
		if (!json_is_array(parts) || json_array_size(parts) > WS_JSON_PARTS_MAX)
			return fail(why, "partitions must be an array of partition numbers");
		size_t n = json_array_size(parts);
		if (n && !(r->partitions = calloc(n, sizeof(*r->partitions))))
			return SL_ENOMEM;
		for (size_t i = 0; i < n; i++) {
			json_t *v = json_array_get(parts, i);
			if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > UINT32_MAX)
				return fail(why, "partitions must be an array of partition numbers");
			r->partitions[i] = (uint32_t)json_integer_value(v);
		}
		r->subscribe.partitions = r->partitions;
		r->subscribe.n_partitions = n;
	}
	if (g && !json_is_null(g)) {
		if (!json_is_string(g))
			return fail(why, "group must be a string");
		r->subscribe.group = (char *)json_string_value(g);
	}
	if (get_uint(o, "credit", UINT32_MAX, &credit, &r->has_credit) < 0)
		return fail(why, "credit must be an integer from 0");
	r->subscribe.credit = (uint32_t)credit;
	r->start.unlimited = !r->has_credit;
	return SL_OK;
}

static int decode_commit(struct ws_json_req *r, const char **why)
{
	json_t *o = r->root, *g = json_object_get(o, "group"), *offs = json_object_get(o, "offsets");

	if (!json_is_string(g) || !json_string_length(g))
		return fail(why, "commit needs a group");
	if (!json_is_array(offs) || !json_array_size(offs) || json_array_size(offs) > WS_JSON_PARTS_MAX)
		return fail(why, "commit needs offsets: [{partition, offset}, ...]");
	r->ncommits = json_array_size(offs);
	if (!(r->commits = calloc(r->ncommits, sizeof(*r->commits))))
		return SL_ENOMEM;
	for (size_t i = 0; i < r->ncommits; i++) {
		json_t *e = json_array_get(offs, i);
		uint64_t p = 0, off = 0;
		int hp = 0, ho = 0;
		if (!json_is_object(e) || get_uint(e, "partition", UINT32_MAX, &p, &hp) < 0 ||
		    get_uint(e, "offset", INT64_MAX, &off, &ho) < 0 || !hp || !ho)
			return fail(why, "each offset is {partition, offset}");
		sluice__commit_offset__init(&r->commits[i]);
		r->commits[i].group = (char *)json_string_value(g);
		r->commits[i].topic = (char *)r->topic;
		r->commits[i].partition = (uint32_t)p;
		r->commits[i].offset = off;
	}
	return SL_OK;
}

/* A durable consumer's name (1 to 249 bytes). */
static const char *consumer_name(json_t *o)
{
	json_t *c = json_object_get(o, "consumer");
	if (!json_is_string(c) || !json_string_length(c) || json_string_length(c) > 249 ||
	    strlen(json_string_value(c)) != json_string_length(c))
		return NULL;
	return json_string_value(c);
}

static int decode_pull(struct ws_json_req *r, const char **why)
{
	uint64_t max = 0, wait = 0;
	sluice__pull__init(&r->pull);
	if (!(r->pull.consumer = (char *)consumer_name(r->root)))
		return fail(why, "pull needs a consumer (a name of 1 to 249 bytes)");
	if (get_uint(r->root, "max", 1000, &max, NULL) < 0 || get_uint(r->root, "wait_ms", 20000, &wait, NULL) < 0)
		return fail(why, "max is 0 to 1000 and wait_ms 0 to 20000");
	r->pull.max_messages = (uint32_t)max;
	r->pull.wait_ms = (uint32_t)wait;
	return SL_OK;
}

/* One item of an ack, nack or in_progress: {partition, offset[, delay_ms, error]}. */
static int decode_item(json_t *e, json_t *top, Sluice__AckKind kind, Sluice__AckItem *it)
{
	uint64_t p = 0, off = 0, delay = 0;
	int hp = 0, ho = 0, hd = 0;
	json_t *err = json_object_get(e, "error");
	sluice__ack_item__init(it);
	if (!json_is_object(e) || get_uint(e, "partition", UINT32_MAX, &p, &hp) < 0 ||
	    get_uint(e, "offset", INT64_MAX, &off, &ho) < 0 || !ho)
		return -1;
	if (get_uint(e, "delay_ms", INT64_MAX, &delay, &hd) < 0 || (!hd && get_uint(top, "delay_ms", INT64_MAX, &delay, &hd) < 0))
		return -1;
	if (!err)
		err = json_object_get(top, "error");
	if (err && !json_is_string(err))
		return -1;
	it->partition = (uint32_t)p;
	it->offset = off;
	it->kind = kind;
	if (kind == SLUICE__ACK_KIND__NACK) {
		it->has_delay = hd;
		it->delay_ms = hd ? (int64_t)delay : -1;
		it->error = err ? (char *)json_string_value(err) : (char *)"";
	}
	return 0;
}

static int decode_settle(struct ws_json_req *r, Sluice__AckKind kind, const char **why)
{
	json_t *msgs = json_object_get(r->root, "messages");
	size_t n;
	sluice__ack_messages__init(&r->ackm);
	if (!(r->ackm.consumer = (char *)consumer_name(r->root)))
		return fail(why, "ack, nack and in_progress need a consumer (a name of 1 to 249 bytes)");
	if (!json_is_array(msgs) || !(n = json_array_size(msgs)) || n > WS_JSON_ACKS_MAX)
		return fail(why, "messages: [{partition, offset}, ...], 1 to 1000 of them");
	r->items = calloc(n, sizeof(*r->items));
	r->itemp = calloc(n, sizeof(*r->itemp));
	if (!r->items || !r->itemp)
		return SL_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if (decode_item(json_array_get(msgs, i), r->root, kind, &r->items[i]) < 0)
			return fail(why, "each message is {partition, offset} (a nack may add delay_ms and error)");
		r->itemp[i] = &r->items[i];
	}
	r->ackm.n_items = n;
	r->ackm.items = r->itemp;
	return SL_OK;
}

int ws_json_decode(const uint8_t *p, size_t n, struct ws_json_req *r, const char **why)
{
	json_error_t err;
	json_t *op, *id, *topic;
	uint64_t v = 0;
	int has = 0;

	memset(r, 0, sizeof(*r));
	r->topic = "";
	*why = NULL;
	if (!(r->root = json_loadb((const char *)p, n, JSON_REJECT_DUPLICATES, &err)))
		return fail(why, "not JSON");
	if (!json_is_object(r->root))
		return fail(why, "a request is a JSON object with an op");
	id = json_object_get(r->root, "id");
	if (id && (json_is_string(id) || json_is_integer(id)))
		r->id = id;
	op = json_object_get(r->root, "op");
	if (!json_is_string(op))
		return fail(why, "a request is a JSON object with an op");
	topic = json_object_get(r->root, "topic");
	if (topic) {
		if (!json_is_string(topic) || !json_string_length(topic) || json_string_length(topic) > 249 ||
		    strlen(json_string_value(topic)) != json_string_length(topic))
			return fail(why, "topic must be a name of 1 to 249 bytes");
		r->topic = json_string_value(topic);
	}
	const char *o = json_string_value(op);
	if (strcmp(o, "credit") == 0) {
		r->op = WS_JSON_CREDIT;
		sluice__credit__init(&r->credit);
		if (get_uint(r->root, "sub", INT64_MAX, &v, &has) < 0 || !has)
			return fail(why, "credit needs sub");
		r->credit.subscription_id = v;
		v = 0;
		if (get_uint(r->root, "n", UINT32_MAX, &v, &has) < 0 || !has)
			return fail(why, "credit needs n, an integer from 0");
		r->credit.credit = (uint32_t)v;
		return SL_OK;
	}
	if (strcmp(o, "unsubscribe") == 0) {
		r->op = WS_JSON_UNSUBSCRIBE;
		sluice__unsubscribe__init(&r->unsubscribe);
		if (get_uint(r->root, "sub", INT64_MAX, &v, &has) < 0 || !has)
			return fail(why, "unsubscribe needs sub");
		r->unsubscribe.subscription_id = v;
		return SL_OK;
	}
	static const char *const settle[] = {"ack", "nack", "in_progress"};
	for (int k = 0; k < 3; k++)
		if (strcmp(o, settle[k]) == 0) {
			r->op = WS_JSON_SETTLE;
			return r->id ? decode_settle(r, (Sluice__AckKind)k, why) : fail(why, "this op needs an id");
		}
	if (strcmp(o, "pull") == 0) {
		r->op = WS_JSON_PULL;
		return r->id ? decode_pull(r, why) : fail(why, "this op needs an id");
	}
	if (strcmp(o, "publish") != 0 && strcmp(o, "subscribe") != 0 && strcmp(o, "commit") != 0)
		return fail(why, "unknown op (publish, subscribe, credit, unsubscribe, commit, pull, ack, nack, in_progress)");
	if (!r->id)
		return fail(why, "this op needs an id (a number or a string)");
	if (!topic)
		return fail(why, "this op needs a topic");
	if (strcmp(o, "publish") == 0) {
		r->op = WS_JSON_PUBLISH;
		return decode_publish(r, why);
	}
	if (strcmp(o, "subscribe") == 0) {
		r->op = WS_JSON_SUBSCRIBE;
		return decode_subscribe(r, why);
	}
	r->op = WS_JSON_COMMIT;
	return decode_commit(r, why);
}

void ws_json_req_free(struct ws_json_req *r)
{
	free(r->hdrs);
	free(r->hdrp);
	free(r->bin);
	free(r->partitions);
	free(r->commits);
	free(r->items);
	free(r->itemp);
	free(r->start.parts);
	free(r->start.next);
	json_decref(r->root);
	memset(r, 0, sizeof(*r));
}
