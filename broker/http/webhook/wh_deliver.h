/*
 * wh_deliver.h: webhook delivery (docs/webhooks.md). A webhook is a
 * durable consumer whose member is an HTTP endpoint: this member pulls its
 * messages through the node's own native listener (libsluice, like any
 * other member), POSTs each one signed per Standard Webhooks (wh_sign.h,
 * wh_body.h, wh_client.h), and acknowledges it on a 2xx, or nacks it with
 * the retry schedule's next delay (Retry-After on 429 and 503). A 410
 * pauses the webhook. Dead letters and order come from the consumer.
 *
 * It runs in frontend 0 of the node that leads the cluster (every node
 * has one; `active` says when this one should deliver), so exactly one
 * node delivers a webhook at a time and its pulls cost no forwarding; on a
 * leader change the new leader's member takes over from the consumer's
 * state in the log, and what was in flight comes back after its ack
 * timeout. Settings are read from the node's store every second.
 */
#ifndef SLUICE_WH_DELIVER_H
#define SLUICE_WH_DELIVER_H

#include <stdint.h>

struct event_base;
struct config;
struct store;
struct wh_deliver;

/* active(arg): 1 while this process should deliver. node_seed: the node's
 * own key (32 bytes, shm), which its listeners take as the principal node
 * when [auth] is enabled; the deliverer pulls and acks as that. */
struct wh_deliver *wh_deliver_new(struct event_base *base, const struct config *cfg, struct store *store,
                                  const uint8_t *node_seed, int (*active)(void *arg), void *arg);
/* Stops everything (POSTs in flight are dropped: they come back after
 * their ack timeout). */
void wh_deliver_free(struct wh_deliver *d);

#endif
