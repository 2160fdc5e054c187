/*
 * http_msg.c: the pure pieces of the HTTP server: percent-decoding, UTF-8
 * checks, query strings, Prefer, status texts and the mapping of sluice
 * errors onto HTTP statuses and problem types. No I/O and no allocation
 * beyond the caller's buffers, so the fuzz target runs them on raw bytes.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "err.h"
#include "http_int.h"

static int hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

int http_pct_decode(const char *s, size_t n, int plus, char *out, size_t cap, size_t *out_len)
{
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		int ch = (unsigned char)s[i];
		if (ch == '%') {
			int hi, lo;
			if (i + 2 >= n)
				return SL_EMALFORMED;
			hi = hexval((unsigned char)s[i + 1]);
			lo = hexval((unsigned char)s[i + 2]);
			if (hi < 0 || lo < 0)
				return SL_EMALFORMED;
			ch = hi << 4 | lo;
			if (ch == 0)
				return SL_EMALFORMED;
			i += 2;
		} else if (ch == '+' && plus) {
			ch = ' ';
		} else if (ch == 0) {
			return SL_EMALFORMED;
		}
		if (o + 1 >= cap)
			return SL_ETOOLARGE;
		out[o++] = (char)ch;
	}
	if (cap == 0)
		return SL_ETOOLARGE;
	out[o] = 0;
	if (out_len)
		*out_len = o;
	return SL_OK;
}

int http_query_each(const char *q, size_t n, int (*fn)(void *arg, const char *name, const char *value), void *arg)
{
	char name[HTTP_QUERY_VALUE_MAX], value[HTTP_QUERY_VALUE_MAX];
	size_t i = 0;
	int rc = 0;

	while (i < n) {
		size_t end = i, eq;
		while (end < n && q[end] != '&')
			end++;
		eq = i;
		while (eq < end && q[eq] != '=')
			eq++;
		if (end > i) {
			if (http_pct_decode(q + i, eq - i, 1, name, sizeof(name), NULL) != SL_OK)
				return -1;
			if (eq < end) {
				if (http_pct_decode(q + eq + 1, end - eq - 1, 1, value, sizeof(value), NULL) != SL_OK)
					return -1;
			} else {
				value[0] = 0;
			}
			rc = fn(arg, name, value);
			if (rc)
				return rc;
		}
		i = end + 1;
	}
	return rc;
}

struct query_find {
	const char *name;
	char *out;
	size_t cap;
	int found;
};

static int query_find_cb(void *arg, const char *name, const char *value)
{
	struct query_find *f = arg;
	size_t n = strlen(value);

	if (strcmp(name, f->name) != 0)
		return 0;
	if (n >= f->cap)
		return -1;
	memcpy(f->out, value, n + 1);
	f->found = 1;
	return 1;
}

int http_query_get(const char *q, size_t n, const char *name, char *out, size_t cap)
{
	struct query_find f = {name, out, cap, 0};
	int rc = http_query_each(q, n, query_find_cb, &f);

	if (rc < 0)
		return -1;
	return f.found;
}

int http_parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!isdigit((unsigned char)s[0]))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end)
		return -1;
	*out = v;
	return 0;
}

/* RFC 7240: Prefer: respond-async, wait=10 (tokens, any order, case-insensitive). */
void http_parse_prefer(const char *v, int *respond_async, long *wait_s)
{
	const char *p = v;

	*respond_async = 0;
	*wait_s = -1;
	while (p && *p) {
		size_t n;
		while (*p == ' ' || *p == '\t' || *p == ',' || *p == ';')
			p++;
		n = strcspn(p, ",;");
		if (n == 13 && strncasecmp(p, "respond-async", 13) == 0) {
			*respond_async = 1;
		} else if (n > 5 && strncasecmp(p, "wait=", 5) == 0) {
			char *end;
			long w = strtol(p + 5, &end, 10);
			if (end == p + n && w >= 0)
				*wait_s = w > 3600 ? 3600 : w;
		}
		p += n;
	}
}

const char *http_status_text(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 410: return "Gone";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 415: return "Unsupported Media Type";
	case 416: return "Range Not Satisfiable";
	case 417: return "Expectation Failed";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	case 507: return "Insufficient Storage";
	default: return "Unknown";
	}
}

int http_status_for_err(int err)
{
	switch (err) {
	case SL_EMALFORMED: return 400;
	case SL_ETOOLARGE: return 413;
	case SL_EUNKNOWN_OP: return 400;
	case SL_ENOTOPIC: return 404;
	case SL_ENOTFOUND: return 404;
	case SL_ETOPIC_EXISTS: return 409;
	case SL_EINVAL: return 400;
	case SL_EFULL: return 507;
	case SL_EUNAVAILABLE: return 503;
	case SL_ERANGE: return 416;
	case SL_ETOOMANY: return 429;
	case SL_EFENCED: return 409;
	case SL_ENOCONSUMER: return 404;
	case SL_ECONSUMER_EXISTS: return 409;
	case SL_EUNAUTHENTICATED: return 401;
	case SL_EPERMISSION: return 403;
	default: return 500;
	}
}

/* The native error code's name (docs/protocol.md), the problem's `code`. */
const char *http_code_name(int err)
{
	switch (err) {
	case SL_EMALFORMED: return "MALFORMED";
	case SL_ETOOLARGE: return "FRAME_TOO_LARGE";
	case SL_EUNKNOWN_OP: return "UNKNOWN_OPERATION";
	case SL_ENOTOPIC: return "NO_SUCH_TOPIC";
	case SL_ENOTFOUND: return "NOT_FOUND";
	case SL_ETOPIC_EXISTS: return "TOPIC_EXISTS";
	case SL_EINVAL: return "INVALID_ARGUMENT";
	case SL_EFULL: return "STORAGE_FULL";
	case SL_EUNAVAILABLE: return "UNAVAILABLE";
	case SL_ENOSUB: return "NO_SUCH_SUBSCRIPTION";
	case SL_ERANGE: return "OFFSET_OUT_OF_RANGE";
	case SL_ETOOMANY: return "TOO_MANY";
	case SL_EFENCED: return "FENCED";
	case SL_ENOCONSUMER: return "NO_SUCH_CONSUMER";
	case SL_ECONSUMER_EXISTS: return "CONSUMER_EXISTS";
	case SL_EUNAUTHENTICATED: return "UNAUTHENTICATED";
	case SL_EPERMISSION: return "PERMISSION_DENIED";
	default: return "INTERNAL";
	}
}
