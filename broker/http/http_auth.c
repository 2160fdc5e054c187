/*
 * http_auth.c: the identity of an HTTP request when [auth] is enabled
 * (docs/security.md). A token comes in `Authorization: Bearer T`, the query
 * parameter `access_token=T` (EventSource cannot set headers) or the cookie
 * `sluice_token=T`, in that order; it is checked before the route runs and
 * becomes the connection's identity for this request (a WebSocket keeps
 * its upgrade request's). No token: the principal anonymous, if it exists.
 * The routes then refuse what the identity may not do: the native requests
 * they make are checked like a native client's (fe_auth_frame); the pages
 * that read the store themselves check here (http_auth_need). Routes marked
 * open in http_route.c (probes, the console's files) and CORS preflights
 * need no identity and do not come here.
 *
 * Tokens are never logged: the access log holds no query strings.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "auth_perm.h"
#include "auth_token.h"
#include "err.h"
#include "fe_auth.h"
#include "http_int.h"

/* The value of cookie name in the Cookie header, or NULL. */
static const char *cookie_get(const struct http_req *r, const char *name, size_t *len)
{
	size_t hl = 0, nl = strlen(name);
	const char *h = http_req_header(r, "cookie", &hl), *end = h + hl;
	while (h && h < end) {
		while (h < end && (*h == ' ' || *h == ';'))
			h++;
		const char *semi = memchr(h, ';', (size_t)(end - h)), *stop = semi ? semi : end;
		if ((size_t)(stop - h) > nl && memcmp(h, name, nl) == 0 && h[nl] == '=') {
			*len = (size_t)(stop - h) - nl - 1;
			return h + nl + 1;
		}
		h = stop;
	}
	return NULL;
}

/* The request's token (into buf for the query form), or NULL. */
static const char *token_of(const struct http_req *r, char *buf, size_t cap, size_t *len)
{
	size_t vl = 0;
	const char *v = http_req_header(r, "authorization", &vl);
	if (v && vl > 7 && strncasecmp(v, "Bearer ", 7) == 0) {
		*len = vl - 7;
		return v + 7;
	}
	if (http_query_get(r->query, r->query_len, "access_token", buf, cap) == 1) {
		*len = strlen(buf);
		return buf;
	}
	return cookie_get(r, "sluice_token", len);
}

int http_auth_request(struct http_req *r)
{
	static char buf[AUTH_TOKEN_BYTES_MAX + 1];
	char why[256];
	size_t len = 0;
	struct fe_conn *c = r->conn;
	if (!fe_auth_on(c->fe))
		return 0;
	const char *tok = token_of(r, buf, sizeof(buf), &len);
	if (!tok) {
		fe_auth_anonymous(c);
		return 0;
	}
	int rc = len > AUTH_TOKEN_BYTES_MAX ? SL_EUNAUTHENTICATED : fe_auth_token(c->fe, c, tok, len, why, sizeof(why));
	if (rc == SL_OK)
		return 0;
	fe_auth_anonymous(c);
	http_problem(r, 0, rc == SL_ENOMEM ? SL_EUNAVAILABLE : SL_EUNAUTHENTICATED,
	             len > AUTH_TOKEN_BYTES_MAX ? "token longer than 8192 bytes" : why);
	return -1;
}

int http_auth_need(struct http_req *r, int verb, const char *topic)
{
	char why[320];
	int rc = fe_auth_allow(r->conn->fe, r->conn, verb, topic, why, sizeof(why));
	if (rc == SL_OK)
		return 0;
	http_problem(r, 0, rc, why);
	return -1;
}
