/*
 * lw_audit.c: audit entries of admin requests (docs/security.md#audit):
 * topic create and delete, consumer create and delete, webhook settings
 * changes and seeks. Each is written in the transaction of the entry that
 * applies the request, after it succeeded, naming the principal the
 * frontend put in the record (common/ringmsg.h, by_len). A record without
 * one (older records, or made by the logwriter itself: dead-letter topics,
 * sluice.callbacks) is the system's and is not audited.
 *
 * Details never carry a secret: a webhook change names the keys it set,
 * with the values of the plain settings only.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "auth_principal.h"
#include "err.h"
#include "lw_int.h"

int lw_by_get(const struct lw_req *rq, uint16_t by_len, char by[RM_BY_MAX + 1])
{
	by[0] = 0;
	if (by_len == 0)
		return SL_OK;
	if (by_len > RM_BY_MAX || by_len > rq->len)
		return SL_EINVAL;
	const char *p = (const char *)rq->p + rq->len - by_len;
	if (!auth_principal_ok(p, by_len))
		return SL_EINVAL;
	memcpy(by, p, by_len);
	by[by_len] = 0;
	return SL_OK;
}

int lw_audit(struct lw *w, const char *by, const char *action, json_t *detail)
{
	int rc = SL_ENOMEM;
	char *s = NULL;
	if (!by[0]) {
		json_decref(detail);
		return SL_OK;
	}
	if (!detail || !(s = json_dumps(detail, JSON_COMPACT | JSON_SORT_KEYS)))
		goto out;
	struct slice d = slice_cstr(s);
	if (d.len > STORE_AUDIT_DETAIL_MAX)
		d.len = 0; /* the action and who still say what happened */
	rc = store_audit_append(w->txn, w->batch_ts, by, action, d, NULL);
out:
	free(s);
	json_decref(detail);
	return rc;
}

/* The settings whose values say nothing secret. */
static int plain_key(const char *k)
{
	static const char *const plain[] = {"paused", "timeout_ms", "rate_per_s", "disabled_reason"};
	for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
		if (strcmp(k, plain[i]) == 0)
			return 1;
	return 0;
}

json_t *lw_audit_webhook_changes(const char *patch, size_t len)
{
	json_error_t e;
	json_t *in = json_loadb(patch, len, JSON_REJECT_DUPLICATES, &e), *out = json_object(), *v;
	const char *k;
	if (!json_is_object(in) || !out)
		goto fail;
	json_object_foreach(in, k, v)
	{
		/* urls and headers may hold credentials too: only that they changed */
		json_t *said = plain_key(k)                        ? json_incref(v)
			       : strcmp(k, "rotate_secret") == 0 ? json_string("(new secret)")
			       : json_is_null(v)                  ? json_string("(removed)")
								  : json_string("(changed)");
		if (json_object_set_new(out, k, said) != 0)
			goto fail;
	}
	json_decref(in);
	return out;
fail:
	json_decref(in);
	json_decref(out);
	return NULL;
}
