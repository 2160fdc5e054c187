/*
 * fe_auth_streams.c: open subscriptions end when their identity may no
 * longer read (docs/security.md, "Open streams").
 *
 * Permissions are checked per request (fe_auth_frame), but a subscription
 * is one request that keeps delivering. So each frontend re-checks every
 * open subscription of its connections (native, and the SSE, WebSocket and
 * GraphQL streams, which are native subscriptions of HTTP connections)
 * when the principals change (shm auth_gen, bumped by the logwriter after
 * the change commits) and when the earliest token expiry of an open stream
 * passes. A subscription whose identity may no longer subscribe to its
 * topic gets its last Delivery with end_error UNAUTHENTICATED (token
 * expired, principal removed, key revoked) or PERMISSION_DENIED (the
 * permission is gone or narrowed), and ends; the connection stays open and
 * its later requests are judged as usual. Each protocol turns that
 * Delivery into its own error (http_sse.c, ws_sluice.c, gql_ws.c).
 *
 * Ordering: the check runs on the frontend's wake-ups and ticks (100 ms),
 * and at the start of every delivery pass, before any read. auth_gen moves
 * before the change is acknowledged, so what is published after the
 * acknowledgement commits later, and every pass that starts after the
 * change sees it first. The one window left: a pass already running when
 * the change commits (one event-loop turn, bounded by the per-subscription
 * work cap) may still read up to the newest commit.
 */
#include <stdio.h>
#include <time.h>

#include "auth_perm.h"
#include "err.h"
#include "fe_auth.h"
#include "fe_int.h"
#include "shm.h"

#define END_MESSAGE_CHARS 320

/* End c's subscriptions it may no longer read; *next_s: the earliest
 * expiry among what stays open. */
static void conn_check(struct fe *fe, struct fe_conn *c, int64_t *next_s)
{
	char why[256], msg[END_MESSAGE_CHARS];
	struct fe_sub *s, *next;
	for (s = TAILQ_FIRST(&c->subs); s; s = next) {
		next = TAILQ_NEXT(s, link);
		int rc = fe_auth_allow(fe, c, AUTH_VERB_SUBSCRIBE, s->topic, why, sizeof(why));
		if (rc == SL_OK)
			continue;
		snprintf(msg, sizeof(msg), "subscription ended: %s", why);
		fe_sub_end(s, rc, msg);
	}
	int64_t exp = fe_auth_expires_s(c);
	if (!TAILQ_EMPTY(&c->subs) && exp && (!*next_s || exp < *next_s))
		*next_s = exp;
}

void fe_auth_streams_check(struct fe *fe)
{
	if (!fe_auth_on(fe))
		return;
	uint64_t gen = shm_load(&fe->shm->hdr->auth_gen) + 1;
	int64_t now = (int64_t)time(NULL);
	if (gen == fe->auth_gen_checked && (!fe->auth_expiry_next_s || now < fe->auth_expiry_next_s))
		return;
	fe->auth_gen_checked = gen;
	int64_t next_s = 0;
	struct fe_conn *c, *cn;
	for (c = TAILQ_FIRST(&fe->conns); c; c = cn) {
		cn = TAILQ_NEXT(c, link); /* an SSE stream's end closes its connection */
		if (!c->dead && !TAILQ_EMPTY(&c->subs))
			conn_check(fe, c, &next_s);
	}
	fe->auth_expiry_next_s = next_s;
}
