/*
 * http_cors.c: Cross-Origin Resource Sharing for browsers on other origins
 * ([http] cors_origins: a comma-separated list of origins, `*` for any;
 * empty, the default, sends no CORS header at all).
 *
 * Every response to a request whose Origin is allowed carries
 * Access-Control-Allow-Origin (the origin itself, or `*` when the list
 * allows any), Access-Control-Expose-Headers naming the headers a script
 * may read, and Vary: Origin (the answer depends on it). A preflight (an
 * OPTIONS with Access-Control-Request-Method) also gets the route's methods,
 * the request headers it may send and how long to cache that. Credentials
 * (cookies) are never allowed: nothing here is authenticated by them.
 */
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "config.h"
#include "http_int.h"

#define CORS_MAX_AGE_S 600
#define CORS_REQ_HEADERS_MAX 1024
#define CORS_EXPOSE "Location, Retry-After, Preference-Applied, Vary, Sluice-Topic, Sluice-Partition, " \
                    "Sluice-Offset, Sluice-Timestamp, Sluice-Key"
#define CORS_ALLOW_HEADERS "Content-Type, Idempotency-Key, Prefer, Last-Event-ID, Sluice-Key, Sluice-Partition"

/* 1 if origin o[0..n) is in the list (exactly, ASCII case-insensitive), 2 if
 * the list has `*`, 0 if neither. */
static int origin_allowed(const char *list, const char *o, size_t n)
{
	const char *p = list;

	while (*p) {
		const char *e = strchr(p, ',');
		size_t l;
		e = e ? e : p + strlen(p);
		while (p < e && (*p == ' ' || *p == '\t'))
			p++;
		l = (size_t)(e - p);
		while (l && (p[l - 1] == ' ' || p[l - 1] == '\t'))
			l--;
		if (l == 1 && *p == '*')
			return 2;
		if (l == n && strncasecmp(p, o, n) == 0)
			return 1;
		p = *e ? e + 1 : e;
	}
	return 0;
}

/* The request's Origin when CORS is on and it is allowed; NULL otherwise. */
static const char *cors_origin(const struct http_req *r, size_t *n, int *any)
{
	const char *list = r->conn->fe->cfg->http_cors_origins;
	const char *o;
	int a;

	if (!list[0] || !(o = http_req_header(r, "origin", n)) || *n == 0 || *n > 1024)
		return NULL;
	for (size_t i = 0; i < *n; i++)
		if ((unsigned char)o[i] < 0x21 || (unsigned char)o[i] > 0x7e)
			return NULL; /* never echo what could split a header */
	if (!(a = origin_allowed(list, o, *n)))
		return NULL;
	*any = a == 2;
	return o;
}

void http_cors_response(struct http_req *r, struct evbuffer *out)
{
	size_t n;
	int any;
	const char *o = cors_origin(r, &n, &any);

	if (!o)
		return;
	if (any)
		evbuffer_add_printf(out, "Access-Control-Allow-Origin: *\r\n");
	else
		evbuffer_add_printf(out, "Access-Control-Allow-Origin: %.*s\r\n", (int)n, o);
	evbuffer_add_printf(out, "Access-Control-Expose-Headers: %s\r\nVary: Origin\r\n", CORS_EXPOSE);
}

/* Request headers a preflight asks for: echoed if they are a plain list of
 * field names, else the fixed list. */
static int header_list_ok(const char *v, size_t n)
{
	if (n == 0 || n > CORS_REQ_HEADERS_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = v[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
		      c == ',' || c == ' '))
			return 0;
	}
	return 1;
}

void http_cors_preflight(struct http_req *r, const char *allow)
{
	size_t n, hn = 0;
	int any;
	const char *h;

	if (!cors_origin(r, &n, &any) || !http_req_header(r, "access-control-request-method", NULL))
		return;
	h = http_req_header(r, "access-control-request-headers", &hn);
	http_add_header(r, "Access-Control-Allow-Methods", "%s", allow);
	if (h && header_list_ok(h, hn))
		http_add_header(r, "Access-Control-Allow-Headers", "%.*s", (int)hn, h);
	else
		http_add_header(r, "Access-Control-Allow-Headers", "%s", CORS_ALLOW_HEADERS);
	http_add_header(r, "Access-Control-Max-Age", "%d", CORS_MAX_AGE_S);
}
