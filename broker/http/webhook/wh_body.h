/*
 * wh_body.h: the JSON body of one webhook delivery, in the payload shape the
 * Standard Webhooks spec recommends ({type, timestamp, data}):
 *
 *   {"type":"orders","timestamp":"2024-05-01T12:00:00.123Z","key":"k1","data":...}
 *
 *   type       the topic name
 *   timestamp  the message's log timestamp (when the event happened, not
 *              when this attempt is made), RFC 3339 UTC with milliseconds
 *   key        the message key, only when it is not empty; a JSON string
 *              when it is UTF-8, else {"base64": "..."}
 *   data       the payload:
 *              - when it parses as one JSON value (jansson, any type, with
 *                surrounding whitespace allowed), that value's bytes as
 *                published, without the surrounding whitespace: not
 *                re-serialized, so numbers keep their precision and keys
 *                their order (integers beyond 64 bits do not parse in
 *                jansson and fall to the next case);
 *              - else, when it is valid UTF-8, a JSON string of the text;
 *              - else {"base64": "<standard base64 of the bytes>"}.
 *
 * The output depends only on the arguments (fixed member order, no
 * whitespace), so every retry of a message sends the same body. Pure:
 * jansson and libsodium (base64) only.
 */
#ifndef SLUICE_WH_BODY_H
#define SLUICE_WH_BODY_H

#include <stddef.h>
#include <stdint.h>

#include "slice.h"

struct evbuffer;

/* Append the body to out. topic[0..topic_len) is the topic name (UTF-8),
 * ts_ms the message timestamp in milliseconds since the epoch (UTC). The
 * slices are only read during the call. SL_EINVAL for a topic that is empty
 * or not UTF-8, SL_ENOMEM on allocation failure (out may then hold a
 * partial body: the caller discards it). */
int wh_body_render(struct evbuffer *out, const char *topic, size_t topic_len, int64_t ts_ms, struct slice key,
                   struct slice payload);

/* RFC 3339 UTC with milliseconds ("1970-01-01T00:00:00.000Z") of ts_ms into
 * out (at least WH_TS_CHARS bytes). SL_ERANGE for years outside 0..9999. */
#define WH_TS_CHARS 25
int wh_rfc3339_ms(int64_t ts_ms, char *out, size_t cap);

#endif
