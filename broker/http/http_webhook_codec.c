/*
 * http_webhook_codec.c: the JSON body of POST /v1/webhooks into the native
 * CreateConsumer's fields, through the mapping `sluice webhook create` uses
 * too (broker/http/webhook/wh_create.c). Pure: the fuzz target runs it.
 */
#include <string.h>

#include "err.h"
#include "http_int.h"
#include "ringmsg.h"
#include "wh_create.h"

_Static_assert(WH_CREATE_SCHEDULE_MAX == RM_SCHEDULE_MAX, "schedules of the same size");
_Static_assert((int)WH_START_TIMESTAMP == (int)SLUICE__START_AT__TIMESTAMP && (int)WH_START_LATEST == (int)SLUICE__START_AT__LATEST,
               "start values are StartAt's");

int http_webhook_decode(const char *p, size_t n, struct http_consumer_in *c, char **settings, char *secret,
                        size_t secret_cap, char *why, size_t why_cap)
{
	struct wh_create w;
	int rc = wh_create_decode(p, n, &w, settings, secret, secret_cap, why, why_cap);

	memset(c, 0, sizeof(*c));
	if (rc != SL_OK)
		return rc;
	memcpy(c->name, w.name, sizeof(c->name));
	memcpy(c->topic, w.topic, sizeof(c->topic));
	c->shared = w.shared;
	c->max_in_flight = w.max_in_flight;
	c->max_deliveries = w.max_deliveries;
	c->ack_timeout_ms = w.ack_timeout_ms;
	memcpy(c->schedule_ms, w.schedule_ms, sizeof(c->schedule_ms));
	c->nschedule = w.nschedule;
	c->start = w.start;
	c->offset = w.offset;
	c->timestamp_ms = w.timestamp_ms;
	return SL_OK;
}
