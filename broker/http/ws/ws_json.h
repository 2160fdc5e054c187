/*
 * ws_json.h: the requests of the sluice.v1.json WebSocket subprotocol,
 * decoded from one text message into native request messages
 * (ws_json.c; pure, fuzzed by tests/fuzz/ws_fuzz.c).
 */
#ifndef SLUICE_WS_JSON_H
#define SLUICE_WS_JSON_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "sluice.pb-c.h"

#define WS_JSON_HEADERS_MAX 256   /* headers of one published message */
#define WS_JSON_PARTS_MAX 4096    /* partitions named by one subscribe or commit */

enum ws_json_op {
	WS_JSON_NONE,
	WS_JSON_PUBLISH,
	WS_JSON_SUBSCRIBE,
	WS_JSON_CREDIT,
	WS_JSON_UNSUBSCRIBE,
	WS_JSON_COMMIT,
	WS_JSON_PULL,      /* durable consumers: take what is due */
	WS_JSON_SETTLE,    /* ack, nack or in_progress of pulled messages (ackm) */
};

#define WS_JSON_ACKS_MAX 1000     /* messages of one ack, nack or in_progress */

/* Where a subscription resumes: next offset per partition ({"positions"}). */
struct ws_json_start {
	size_t n;
	uint32_t *parts;
	uint64_t *next;
	int unlimited;            /* no `credit`: the output watermark only */
};

struct ws_json_req {
	enum ws_json_op op;
	json_t *root;             /* the parsed message (owns every string below) */
	json_t *id;               /* the request's id, borrowed from root (NULL: none) */
	const char *topic;        /* "" when the op has none */
	int has_credit;
	Sluice__Publish publish;
	Sluice__Header *hdrs;     /* publish.headers point here */
	Sluice__Header **hdrp;
	uint8_t *bin;             /* decoded base64 key and payload */
	Sluice__Subscribe subscribe;
	uint32_t *partitions;
	Sluice__Credit credit;
	Sluice__Unsubscribe unsubscribe;
	Sluice__CommitOffset *commits;
	size_t ncommits;
	Sluice__Pull pull;
	Sluice__AckMessages ackm;
	Sluice__AckItem *items;   /* ackm.items point here */
	Sluice__AckItem **itemp;
	struct ws_json_start start;
};

/* Decode one message. SL_OK, or an sl_err with *why saying what is wrong
 * (out->id is still set when the message had one). Free with
 * ws_json_req_free either way. */
int ws_json_decode(const uint8_t *p, size_t n, struct ws_json_req *out, const char **why);
void ws_json_req_free(struct ws_json_req *r);

#endif
