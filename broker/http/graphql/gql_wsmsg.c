/*
 * gql_wsmsg.c: decoding of graphql-transport-ws messages (the protocol of
 * enisdenjo/graphql-ws, PROTOCOL.md), checked as that library checks them:
 * an object with a known `type`; a payload, when present and not null, an
 * object (an array of errors for `error`); `id` a non-empty string for
 * subscribe, next, error and complete (here at most GQL_WS_ID_BYTES_MAX
 * bytes); a subscribe payload with a string `query`, and `variables`,
 * `operationName` and `extensions` absent, null or of the right type.
 * Whatever fails is a 4400 close for the caller, with the reason given here.
 */
#include <string.h>

#include <jansson.h>

#include "gql.h"

static const struct {
	const char *name;
	enum gql_ws_type type;
} names[] = {
    {"connection_init", GQL_WS_CONNECTION_INIT},
    {"connection_ack", GQL_WS_CONNECTION_ACK},
    {"ping", GQL_WS_PING},
    {"pong", GQL_WS_PONG},
    {"subscribe", GQL_WS_SUBSCRIBE},
    {"next", GQL_WS_NEXT},
    {"error", GQL_WS_ERROR},
    {"complete", GQL_WS_COMPLETE},
};

void gql_ws_msg_clear(struct gql_ws_msg *m)
{
	json_decref(m->msg);
	memset(m, 0, sizeof(*m));
}

static int decode_id(struct gql_ws_msg *m, const char **why)
{
	json_t *id = json_object_get(m->msg, "id");
	size_t n = json_string_length(id);

	if (!json_is_string(id) || n == 0) {
		*why = "Invalid message: \"id\" must be a non-empty string";
		return -1;
	}
	if (n > GQL_WS_ID_BYTES_MAX || strlen(json_string_value(id)) != n) {
		*why = "Invalid message: \"id\" is longer than 128 bytes or holds NUL";
		return -1;
	}
	memcpy(m->id, json_string_value(id), n + 1);
	return 0;
}

static int decode_subscribe(struct gql_ws_msg *m, const char **why)
{
	json_t *p = m->payload, *q, *v, *o, *e;

	if (!json_is_object(p)) {
		*why = "Invalid message: subscribe \"payload\" must be an object";
		return -1;
	}
	q = json_object_get(p, "query");
	v = json_object_get(p, "variables");
	o = json_object_get(p, "operationName");
	e = json_object_get(p, "extensions");
	if (!json_is_string(q)) {
		*why = "Invalid message: subscribe \"payload.query\" must be a string";
		return -1;
	}
	if ((v && !json_is_null(v) && !json_is_object(v)) || (o && !json_is_null(o) && !json_is_string(o)) ||
	    (e && !json_is_null(e) && !json_is_object(e))) {
		*why = "Invalid message: subscribe \"payload\" has a variables, operationName or extensions of the wrong type";
		return -1;
	}
	m->query = json_string_value(q);
	m->query_len = json_string_length(q);
	m->operation_name = json_string_value(o);
	m->variables = json_is_object(v) ? v : NULL;
	return 0;
}

int gql_ws_decode(const uint8_t *p, size_t n, struct gql_ws_msg *m, const char **why)
{
	json_t *t;
	size_t i;

	memset(m, 0, sizeof(*m));
	if (!(m->msg = json_loadb((const char *)p, n, JSON_REJECT_DUPLICATES, NULL)) || !json_is_object(m->msg)) {
		*why = "Invalid message: not a JSON object";
		goto fail;
	}
	t = json_object_get(m->msg, "type");
	for (i = 0; json_is_string(t) && i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(json_string_value(t), names[i].name) == 0)
			break;
	if (!json_is_string(t) || i == sizeof(names) / sizeof(names[0])) {
		*why = "Invalid message: unknown \"type\"";
		goto fail;
	}
	m->type = names[i].type;
	m->payload = json_object_get(m->msg, "payload");
	if (json_is_null(m->payload))
		m->payload = NULL;
	switch (m->type) {
	case GQL_WS_SUBSCRIBE:
		if (decode_id(m, why) < 0 || decode_subscribe(m, why) < 0)
			goto fail;
		return 0;
	case GQL_WS_NEXT:
	case GQL_WS_ERROR:
	case GQL_WS_COMPLETE:
		if (decode_id(m, why) < 0)
			goto fail;
		if (m->type == GQL_WS_NEXT && !json_is_object(m->payload)) {
			*why = "Invalid message: next \"payload\" must be an object";
			goto fail;
		}
		if (m->type == GQL_WS_ERROR && !json_is_array(m->payload)) {
			*why = "Invalid message: error \"payload\" must be an array";
			goto fail;
		}
		return 0;
	default:
		if (m->payload && !json_is_object(m->payload)) {
			*why = "Invalid message: \"payload\" must be an object";
			goto fail;
		}
		return 0;
	}
fail:
	gql_ws_msg_clear(m);
	return -1;
}
