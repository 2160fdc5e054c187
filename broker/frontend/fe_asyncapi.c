/*
 * fe_asyncapi.c: GET /v1/asyncapi.json. The document is built by
 * asyncapi.c from the topics in the frontend's store (one short read-only
 * transaction) and this node's configured listeners, the same generator
 * `sluice asyncapi` uses, so both print the same document.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "asyncapi.h"
#include "err.h"
#include "fe_int.h"
#include "fe_pages.h"
#include "log.h"

int fe_asyncapi_render(struct fe *fe, struct evbuffer *out)
{
	json_t *doc = NULL;
	char *text;
	int rc = asyncapi_from_store(fe->cfg, fe->store, &doc);

	if (rc != SL_OK) {
		log_warn("asyncapi document not built: %s", sl_strerror(rc));
		return rc;
	}
	text = asyncapi_dumps(doc);
	json_decref(doc);
	if (!text)
		return SL_ENOMEM;
	rc = evbuffer_add(out, text, strlen(text)) == 0 ? SL_OK : SL_ENOMEM;
	free(text);
	return rc;
}
