/*
 * wh_url.h: webhook destination URLs, and the server-side request forgery
 * guard on the addresses they resolve to. Pure (fuzzed by tests/fuzz/
 * wh_fuzz.c).
 *
 * Accepted: `http://` or `https://` (scheme case-insensitive), a host, an
 * optional port (1..65535; default 80 or 443), then the path and query
 * ("/" when absent). The host is a DNS name (labels of letters, digits, '-'
 * and '_', 1..63 bytes, 253 in all, an optional final '.'; lowercased), a
 * dotted-quad IPv4 address, or an IPv6 address in brackets (no zone).
 *
 * Refused (SL_EINVAL), so that what is delivered to is what the operator
 * reads: userinfo (`user:pass@`), fragments, backslashes, control bytes,
 * spaces and any byte outside printable ASCII (an international name is
 * given in its xn-- form), malformed percent escapes, hosts whose last
 * label is numeric but not a dotted quad (`127.1`, `0x7f.1`, `2130706433`:
 * resolvers read those as addresses), and URLs over WH_URL_BYTES_MAX bytes.
 *
 * The URL is not the SSRF decision: a name can resolve to anything. The
 * client checks every address a name resolves to with wh_addr_is_private
 * right before it connects (wh_client.h).
 */
#ifndef SLUICE_WH_URL_H
#define SLUICE_WH_URL_H

#include <stddef.h>
#include <stdint.h>

struct sockaddr;

#define WH_URL_BYTES_MAX 2048
#define WH_HOST_BYTES_MAX 253

struct wh_url {
	int https;                          /* 1 for https, 0 for http */
	int host_is_ip;                     /* host is an IPv4 or IPv6 literal */
	uint16_t port;                      /* explicit or the scheme's default */
	int port_explicit;                  /* the URL named the port */
	char host[WH_HOST_BYTES_MAX + 1];   /* lowercased; IPv6 without brackets */
	char path[WH_URL_BYTES_MAX + 1];    /* path and query, starts with '/' */
};

/* Parse s[0..len) into *u (a plain value: no pointers into s). SL_OK or
 * SL_EINVAL; *u is unspecified after SL_EINVAL. */
int wh_url_parse(const char *s, size_t len, struct wh_url *u);

/* The Host header value of u: host (IPv6 in brackets), plus ":port" when
 * the port is not the scheme's default. Needs WH_HOST_BYTES_MAX + 9 bytes;
 * SL_ERANGE if cap is smaller. */
int wh_url_authority(const struct wh_url *u, char *out, size_t cap);

/* 1 if a webhook must not connect to sa, else 0: IPv4 0/8 (unspecified,
 * "this network"), 10/8, 100.64/10 (CGNAT), 127/8, 169.254/16, 172.16/12,
 * 192.0.0/24, 192.168/16, 198.18/15, 224/4 (multicast), 240/4 (reserved
 * and broadcast); IPv6 ::, ::1, fe80::/10, fec0::/10, fc00::/7, ff00::/8,
 * and IPv4 addresses carried in IPv6 (mapped ::ffff:0:0/96, compatible
 * ::/96, NAT64 64:ff9b::/96, 6to4 2002::/16) judged as IPv4. Any other
 * family is 1. */
int wh_addr_is_private(const struct sockaddr *sa);

/* 1 if u's host is an address literal wh_addr_is_private refuses (a
 * literal that does not parse as either family too); 0 for a name, which
 * is judged by the addresses it resolves to when it is dialled. */
int wh_url_literal_private(const struct wh_url *u);

#endif
