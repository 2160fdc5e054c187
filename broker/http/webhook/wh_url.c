/*
 * wh_url.c: webhook URLs and the private-address guard (see wh_url.h).
 * The parser walks the string once, left to right: scheme, authority
 * (host, port), then path and query, and checks every byte it copies.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "err.h"
#include "wh_url.h"

static int is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Printable ASCII only, no '\\' and no '#'; '%' only as an escape. */
static int url_bytes_ok(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x21 || c > 0x7e || c == '\\' || c == '#')
			return 0;
		if (c == '%' && (i + 2 >= len || !is_hex(s[i + 1]) || !is_hex(s[i + 2])))
			return 0;
	}
	return 1;
}

/* A DNS name: labels of [A-Za-z0-9_-], 1..63 bytes, no '-' at either end;
 * one final '.' allowed. A numeric last label must make a dotted quad. */
static int host_name_ok(const char *h, size_t n)
{
	size_t i = 0, last = 0, lab = 0;
	struct in_addr a4;
	char tmp[WH_HOST_BYTES_MAX + 1];

	if (n && h[n - 1] == '.')
		n--;
	if (n == 0 || n > WH_HOST_BYTES_MAX)
		return 0;
	for (i = 0; i <= n; i++) {
		char c = i < n ? h[i] : '.';
		if (c == '.') {
			if (lab == 0 || lab > 63 || h[i - lab] == '-' || h[i - 1] == '-')
				return 0;
			last = i - lab;
			lab = 0;
		} else if (isalnum((unsigned char)c) || c == '-' || c == '_') {
			lab++;
		} else {
			return 0;
		}
	}
	/* the last label decides whether resolvers take it for an address */
	if (!isdigit((unsigned char)h[last]))
		return 1;
	memcpy(tmp, h, n);
	tmp[n] = 0;
	return inet_pton(AF_INET, tmp, &a4) == 1 ? 2 : 0;
}

/* host[:port] or [v6][:port] of a[0..n) into u. */
static int parse_authority(const char *a, size_t n, struct wh_url *u)
{
	const char *h = a, *colon = NULL;
	size_t hl;
	int kind;

	if (n == 0 || memchr(a, '@', n))
		return SL_EINVAL;
	if (a[0] == '[') {
		const char *rb = memchr(a, ']', n);
		struct in6_addr a6;
		if (!rb || (size_t)(rb - a) - 1 > 45 || rb == a + 1)
			return SL_EINVAL;
		h = a + 1;
		hl = (size_t)(rb - h);
		memcpy(u->host, h, hl);
		u->host[hl] = 0;
		if (inet_pton(AF_INET6, u->host, &a6) != 1)
			return SL_EINVAL;
		u->host_is_ip = 1;
		if (rb + 1 < a + n && rb[1] != ':')
			return SL_EINVAL;
		colon = rb + 1 < a + n ? rb + 1 : NULL;
	} else {
		colon = memchr(a, ':', n);
		hl = colon ? (size_t)(colon - a) : n;
		if (!(kind = host_name_ok(a, hl)))
			return SL_EINVAL;
		for (size_t i = 0; i < hl; i++)
			u->host[i] = (char)tolower((unsigned char)a[i]);
		u->host[hl] = 0;
		u->host_is_ip = kind == 2;
	}
	u->port = u->https ? 443 : 80;
	if (colon) {
		size_t pl = (size_t)(a + n - colon - 1);
		unsigned long p = 0;
		if (pl == 0 || pl > 5)
			return SL_EINVAL;
		for (size_t i = 1; i <= pl; i++) {
			if (!isdigit((unsigned char)colon[i]))
				return SL_EINVAL;
			p = p * 10 + (unsigned long)(colon[i] - '0');
		}
		if (p == 0 || p > 65535)
			return SL_EINVAL;
		u->port = (uint16_t)p;
		u->port_explicit = 1;
	}
	return SL_OK;
}

int wh_url_parse(const char *s, size_t len, struct wh_url *u)
{
	size_t off, a;
	int rc;

	if (!s || !u || len == 0 || len > WH_URL_BYTES_MAX || !url_bytes_ok(s, len))
		return SL_EINVAL;
	memset(u, 0, sizeof *u);
	if (len >= 7 && strncasecmp(s, "http://", 7) == 0) {
		off = 7;
	} else if (len >= 8 && strncasecmp(s, "https://", 8) == 0) {
		off = 8;
		u->https = 1;
	} else {
		return SL_EINVAL;
	}
	for (a = off; a < len && s[a] != '/' && s[a] != '?'; a++)
		;
	if ((rc = parse_authority(s + off, a - off, u)) != SL_OK)
		return rc;
	if (a == len) {
		strcpy(u->path, "/");
	} else if (s[a] == '?') {
		u->path[0] = '/';
		memcpy(u->path + 1, s + a, len - a);
		u->path[len - a + 1] = 0;
	} else {
		memcpy(u->path, s + a, len - a);
		u->path[len - a] = 0;
	}
	return SL_OK;
}

int wh_url_authority(const struct wh_url *u, char *out, size_t cap)
{
	int v6 = strchr(u->host, ':') != NULL;
	int k;

	if (u->port != (u->https ? 443 : 80))
		k = snprintf(out, cap, v6 ? "[%s]:%u" : "%s:%u", u->host, (unsigned)u->port);
	else
		k = snprintf(out, cap, v6 ? "[%s]" : "%s", u->host);
	return k < 0 || (size_t)k >= cap ? SL_ERANGE : SL_OK;
}

/* v: an IPv4 address in host byte order */
static int v4_private(uint32_t v)
{
	static const struct {
		uint32_t net, mask;
	} nets[] = {
		{0x00000000, 0xff000000}, /* 0/8 */
		{0x0a000000, 0xff000000}, /* 10/8 */
		{0x64400000, 0xffc00000}, /* 100.64/10 */
		{0x7f000000, 0xff000000}, /* 127/8 */
		{0xa9fe0000, 0xffff0000}, /* 169.254/16 */
		{0xac100000, 0xfff00000}, /* 172.16/12 */
		{0xc0000000, 0xffffff00}, /* 192.0.0/24 */
		{0xc0a80000, 0xffff0000}, /* 192.168/16 */
		{0xc6120000, 0xfffe0000}, /* 198.18/15 */
		{0xe0000000, 0xf0000000}, /* 224/4 */
		{0xf0000000, 0xf0000000}, /* 240/4, 255.255.255.255 */
	};

	for (size_t i = 0; i < sizeof nets / sizeof nets[0]; i++)
		if ((v & nets[i].mask) == nets[i].net)
			return 1;
	return 0;
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int v6_private(const uint8_t *b)
{
	static const uint8_t zero[12], mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff},
				      nat64[12] = {0, 0x64, 0xff, 0x9b};

	if (memcmp(b, zero, 12) == 0) /* ::, ::1 and IPv4-compatible ::a.b.c.d */
		return get32(b + 12) <= 1 || v4_private(get32(b + 12));
	if (memcmp(b, mapped, 12) == 0 || memcmp(b, nat64, 12) == 0)
		return v4_private(get32(b + 12));
	if (b[0] == 0x20 && b[1] == 0x02) /* 6to4: the IPv4 address follows */
		return v4_private(get32(b + 2));
	if ((b[0] & 0xfe) == 0xfc || b[0] == 0xff) /* fc00::/7, ff00::/8 */
		return 1;
	if (b[0] == 0xfe && (b[1] & 0x80) == 0x80) /* fe80::/10 and fec0::/10 */
		return 1;
	return 0;
}

int wh_addr_is_private(const struct sockaddr *sa)
{
	if (!sa)
		return 1;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
		return v4_private(ntohl(s4->sin_addr.s_addr));
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
		return v6_private(s6->sin6_addr.s6_addr);
	}
	return 1;
}

int wh_url_literal_private(const struct wh_url *u)
{
	struct in_addr a4;
	struct in6_addr a6;
	if (!u->host_is_ip)
		return 0;
	if (inet_pton(AF_INET, u->host, &a4) == 1)
		return v4_private(ntohl(a4.s_addr));
	if (inet_pton(AF_INET6, u->host, &a6) == 1)
		return v6_private(a6.s6_addr);
	return 1;
}
