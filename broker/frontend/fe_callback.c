/*
 * fe_callback.c: a publish's commit callback (Publish.callback,
 * PublishBatch.callback) into its RM_CALLBACK ring record, pushed right
 * after the publish's (frontend.c's ring_submit pushes both or neither, so
 * the logwriter applies the callback after the publish; lw_callback.c).
 *
 * Checked here, before anything reaches the log: the URL (wh_url.h: http or
 * https, no user info), an address literal that is private unless
 * [webhooks] allow_private (names are checked when delivering, on what they
 * resolve to), the operation id, and a producer id (the outcome is found by
 * the publish's dedup entry). Each record carries a fresh secret: it signs
 * the webhook sluice.callbacks if this callback is the one that makes it.
 */
#include <string.h>
#include <sys/socket.h>

#include <sodium.h>

#include "config.h"
#include "err.h"
#include "fe_int.h"
#include "ringmsg.h"
#include "sl_assert.h"
#include "fe_auth.h"
#include "wh_seal.h"
#include "wh_sign.h"
#include "wh_url.h"

int fe_cb_size(struct fe *fe, const Sluice__Callback *cb, const char *topic, uint64_t producer_id,
               struct fe_cb_rec *rec, const char **why)
{
	struct wh_url u;
	size_t ul = cb->url ? strlen(cb->url) : 0, il = cb->operation_id ? strlen(cb->operation_id) : 0;

	if (!producer_id) {
		*why = "a callback needs a producer id (the outcome is found by its de-duplication entry)";
		return SL_EINVAL;
	}
	if (ul == 0 || ul > RM_CALLBACK_URL_MAX || wh_url_parse(cb->url, ul, &u) != SL_OK) {
		*why = "callback must be an http:// or https:// URL without user info, at most 2048 bytes";
		return SL_EINVAL;
	}
	if (!fe->cfg->webhook_allow_private && wh_url_literal_private(&u)) {
		*why = "callback: loopback, link-local and private addresses are refused ([webhooks] allow_private)";
		return SL_EINVAL;
	}
	if (il == 0 || il > RM_CALLBACK_ID_MAX) {
		*why = "callback operation id must be 1 to 255 bytes";
		return SL_EINVAL;
	}
	for (size_t i = 0; i < il; i++)
		if (cb->operation_id[i] <= ' ' || cb->operation_id[i] > '~') {
			*why = "callback operation id must be printable ASCII without spaces";
			return SL_EINVAL;
		}
	if (wh_secret_generate(rec->secret, sizeof(rec->secret)) != SL_OK)
		rec->secret[0] = 0; /* none: then an operator makes that webhook */
	uint8_t key[32];
	if (rec->secret[0] && fe_auth_seal_key(fe, key) == SL_OK) {
		char plain[sizeof(rec->secret)];
		memcpy(plain, rec->secret, sizeof(plain));
		if (wh_seal(key, plain, rec->secret, sizeof(rec->secret)) != SL_OK)
			rec->secret[0] = 0;
		sodium_memzero(plain, sizeof(plain));
		sodium_memzero(key, sizeof(key));
	}
	rec->len = (uint32_t)(sizeof(struct rm_callback) + strlen(topic) + ul + il + strlen(rec->secret));
	return SL_OK;
}

void fe_cb_fill(uint8_t *p, const Sluice__Callback *cb, const struct fe_cb_op *op, const struct fe_cb_rec *rec)
{
	struct rm_callback h = {0};
	const char *secret = rec->secret;
	uint8_t *q = p;

	h.cookie = op->cookie;
	h.producer_id = op->producer_id;
	h.sequence = op->sequence;
	h.created_ms = cb->created_ms;
	h.space = op->space;
	h.count = op->count;
	h.topic_len = (uint16_t)strlen(op->topic);
	h.url_len = (uint16_t)strlen(cb->url);
	h.id_len = (uint16_t)strlen(cb->operation_id);
	h.secret_len = (uint16_t)strlen(secret);
	memcpy(q, &h, sizeof(h));
	q += sizeof(h);
	memcpy(q, op->topic, h.topic_len);
	q += h.topic_len;
	memcpy(q, cb->url, h.url_len);
	q += h.url_len;
	memcpy(q, cb->operation_id, h.id_len);
	q += h.id_len;
	memcpy(q, secret, h.secret_len);
	SL_ASSERT((size_t)(q + h.secret_len - p) == rec->len);
}
