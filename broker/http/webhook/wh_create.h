/*
 * wh_create.h: a new webhook's description into a durable consumer's
 * settings and the webhook's own (wh_create.c). Shared by POST /v1/webhooks
 * and `sluice webhook create`, so both make the same webhook.
 */
#ifndef SLUICE_WH_CREATE_H
#define SLUICE_WH_CREATE_H

#include <stddef.h>
#include <stdint.h>

#define WH_NAME_MAX 249
#define WH_CREATE_SCHEDULE_MAX 16 /* the consumer's schedule: delays after attempts 1 .. 16 */

/* Where a new webhook starts: the values of StartAt (proto/sluice.proto) and enum sluice_start. */
enum wh_start { WH_START_EARLIEST = 0, WH_START_LATEST = 1, WH_START_OFFSET = 2, WH_START_TIMESTAMP = 3 };

struct wh_create {
	char name[WH_NAME_MAX + 1];        /* "": the caller picks one */
	char topic[WH_NAME_MAX + 1];
	int shared;                        /* 0: ordered */
	uint32_t max_in_flight;            /* shared: per partition (0: the server's default) */
	uint32_t max_deliveries;           /* max_attempts */
	uint32_t ack_timeout_ms;           /* timeout_ms + WH_ACK_MARGIN_MS */
	uint32_t schedule_ms[WH_CREATE_SCHEDULE_MAX];
	uint32_t nschedule;
	int start;                         /* enum wh_start */
	uint64_t offset;
	int64_t timestamp_ms;
};

/* The JSON description {topic, url, name, secret, from, ordered,
 * max_in_flight, max_attempts, schedule_ms, headers, filter, timeout_ms,
 * rate_per_s} (docs/webhooks.md) into *c and *settings (malloc'd JSON for
 * ConsumerConfig.webhook); secret: the one given, or a new one. SL_OK,
 * SL_EMALFORMED (not a JSON object), SL_EINVAL (why says what), SL_ENOMEM. */
int wh_create_decode(const char *p, size_t n, struct wh_create *c, char **settings, char *secret, size_t secret_cap,
                     char *why, size_t why_cap);

#endif
