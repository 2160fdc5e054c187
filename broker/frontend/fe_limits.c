/*
 * fe_limits.c: limits against abuse in one frontend (docs/security.md#limits):
 * - open connections per source address ([limits] connections_per_address_max),
 *   native and HTTP together, counted in this frontend only;
 * - requests and request bytes per second per principal
 *   ([limits] principal_requests_per_s, principal_bytes_per_s): two token
 *   buckets (common/tbucket.h) per principal, or per source address with
 *   [auth] off, where every connection is the same principal "-".
 *
 * A request over its budget is refused at once with TOO_MANY: nothing is
 * queued, so a flooding principal never slows the others down.
 *
 * Both tables are bounded: an address entry lives while it has connections
 * (so at most connections_max + http connections_max of them); the bucket
 * table holds FE_RATE_KEYS_MAX keys and drops full buckets (a full bucket is
 * the same as a fresh one) or, if none is full, the least recently used.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "codec.h"
#include "config.h"
#include "err.h"
#include "fe_auth.h"
#include "fe_int.h"
#include "log.h"
#include "tbucket.h"

#define FE_ADDR_BUCKETS 1024
#define FE_RATE_BUCKETS 1024
#define FE_RATE_KEYS_MAX 4096
#define FE_RATE_KEY_BYTES 72 /* a principal name (64) or an address text (46), NUL */

struct fe_addr_entry {
	struct fe_addr_entry *next;
	uint32_t conns;
	char addr[FE_ADDR_BYTES];
};

struct fe_rate_entry {
	struct fe_rate_entry *next;
	uint64_t used_ns;
	struct tbucket reqs, bytes;
	char key[FE_RATE_KEY_BYTES];
};

struct fe_limits {
	struct fe_addr_entry *addrs[FE_ADDR_BUCKETS];
	struct fe_rate_entry *rates[FE_RATE_BUCKETS];
	size_t nrates;
};

static uint32_t hash_str(const char *s)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	while (*s)
		h = (h ^ (uint8_t)*s++) * 16777619u;
	return h;
}

int fe_limits_init(struct fe *fe)
{
	fe->limits = calloc(1, sizeof(*fe->limits));
	return fe->limits ? SL_OK : SL_ENOMEM;
}

void fe_limits_free(struct fe *fe)
{
	struct fe_limits *l = fe->limits;
	size_t i;

	if (!l)
		return;
	for (i = 0; i < FE_ADDR_BUCKETS; i++)
		for (struct fe_addr_entry *a = l->addrs[i], *n; a; a = n) {
			n = a->next;
			free(a);
		}
	for (i = 0; i < FE_RATE_BUCKETS; i++)
		for (struct fe_rate_entry *r = l->rates[i], *n; r; r = n) {
			n = r->next;
			free(r);
		}
	free(l);
	fe->limits = NULL;
}

/* ---------- connections per source address ---------- */

void fe_limits_addr_text(const struct sockaddr *sa, char out[FE_ADDR_BYTES])
{
	const void *ip = NULL;

	if (sa && sa->sa_family == AF_INET)
		ip = &((const struct sockaddr_in *)sa)->sin_addr;
	else if (sa && sa->sa_family == AF_INET6)
		ip = &((const struct sockaddr_in6 *)sa)->sin6_addr;
	if (!ip || !inet_ntop(sa->sa_family, ip, out, FE_ADDR_BYTES))
		snprintf(out, FE_ADDR_BYTES, "%s", "unknown");
}

static struct fe_addr_entry **addr_slot(struct fe_limits *l, const char *addr)
{
	struct fe_addr_entry **p = &l->addrs[hash_str(addr) % FE_ADDR_BUCKETS];

	while (*p && strcmp((*p)->addr, addr) != 0)
		p = &(*p)->next;
	return p;
}

int fe_limits_addr_full(struct fe *fe, const char *addr)
{
	uint32_t max = fe->cfg->connections_per_address_max;
	struct fe_addr_entry **p;

	if (max == 0 || !fe->limits)
		return 0;
	p = addr_slot(fe->limits, addr);
	return *p && (*p)->conns >= max;
}

void fe_limits_conn_attach(struct fe_conn *c, const char *addr)
{
	struct fe *fe = c->fe;
	struct fe_addr_entry **p, *a;

	snprintf(c->addr, sizeof(c->addr), "%s", addr);
	if (fe->cfg->connections_per_address_max == 0 || !fe->limits)
		return;
	p = addr_slot(fe->limits, addr);
	if (!(a = *p)) {
		/* out of memory: the connection is served, just not counted */
		if (!(a = calloc(1, sizeof(*a))))
			return;
		snprintf(a->addr, sizeof(a->addr), "%s", addr);
		*p = a;
	}
	a->conns++;
	c->addr_counted = 1;
}

void fe_limits_conn_detach(struct fe_conn *c)
{
	struct fe_addr_entry **p, *a;

	if (!c->addr_counted || !c->fe->limits)
		return;
	c->addr_counted = 0;
	p = addr_slot(c->fe->limits, c->addr);
	if (!(a = *p))
		return;
	if (--a->conns == 0) {
		*p = a->next;
		free(a);
	}
}

/* ---------- requests and bytes per second ---------- */

/* Make room for one more key: drop every full bucket, else the least recently used. */
static void rate_evict(struct fe_limits *l, uint64_t now)
{
	struct fe_rate_entry **p, **oldest = NULL;
	size_t i;

	for (i = 0; i < FE_RATE_BUCKETS; i++) {
		for (p = &l->rates[i]; *p;) {
			struct fe_rate_entry *r = *p;
			if (tbucket_full(&r->reqs, now) && tbucket_full(&r->bytes, now)) {
				*p = r->next;
				free(r);
				l->nrates--;
				continue;
			}
			if (!oldest || r->used_ns < (*oldest)->used_ns)
				oldest = p;
			p = &r->next;
		}
	}
	if (l->nrates >= FE_RATE_KEYS_MAX && oldest) {
		struct fe_rate_entry *r = *oldest;
		*oldest = r->next;
		free(r);
		l->nrates--;
	}
}

static struct fe_rate_entry *rate_get(struct fe *fe, const char *key, uint64_t now)
{
	struct fe_limits *l = fe->limits;
	struct fe_rate_entry **head = &l->rates[hash_str(key) % FE_RATE_BUCKETS], *r;

	for (r = *head; r; r = r->next)
		if (strcmp(r->key, key) == 0)
			return r;
	if (l->nrates >= FE_RATE_KEYS_MAX) {
		rate_evict(l, now);
		head = &l->rates[hash_str(key) % FE_RATE_BUCKETS];
	}
	if (!(r = calloc(1, sizeof(*r))))
		return NULL;
	snprintf(r->key, sizeof(r->key), "%s", key);
	/* a rate of 0 (unlimited) is never consulted; the bucket just stays full */
	tbucket_init(&r->reqs, fe->cfg->principal_requests_per_s, now);
	tbucket_init(&r->bytes, fe->cfg->principal_bytes_per_s, now);
	r->next = *head;
	*head = r;
	l->nrates++;
	return r;
}

/* Frames that are not requests of their own: flow control, and the
 * Authenticate that tells who is asking (bounded by the connection limits). */
static int rate_exempt(const Sluice__Frame *f)
{
	return f->body_case == SLUICE__FRAME__BODY_CREDIT || f->body_case == SLUICE__FRAME__BODY_AUTHENTICATE ||
	       f->body_case == SLUICE__FRAME__BODY_HELLO;
}

static uint32_t ms_up(uint64_t ns)
{
	uint64_t ms = (ns + 999999) / 1000000;

	return ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms;
}

int fe_limits_request(struct fe_conn *c, const Sluice__Frame *f, char *why, size_t cap, uint32_t *retry_ms)
{
	const struct config *cfg = c->fe->cfg;
	uint64_t rq = cfg->principal_requests_per_s, bs = cfg->principal_bytes_per_s;
	uint64_t now, size = 0, wr = 0, wb = 0;
	const char *key, *what;
	struct fe_rate_entry *r;

	*retry_ms = 0;
	if ((rq == 0 && bs == 0) || !c->fe->limits || rate_exempt(f))
		return SL_OK;
	/* with [auth] off everyone is "-": one bucket for all would be useless, so key by address */
	key = cfg->auth_enabled ? fe_auth_principal(c) : c->addr;
	if (cfg->auth_enabled && strcmp(key, "node") == 0)
		return SL_OK; /* the node's own clients (webhook deliveries) */
	now = time_mono_ns();
	if (!(r = rate_get(c->fe, key, now)))
		return SL_OK; /* out of memory: serve rather than refuse everyone */
	r->used_ns = now;
	if (bs)
		size = codec_frame_size(f);
	tbucket_refill(&r->reqs, now);
	tbucket_refill(&r->bytes, now);
	if (rq)
		wr = tbucket_wait_ns(&r->reqs, 1);
	if (bs)
		wb = tbucket_wait_ns(&r->bytes, size);
	if (wr == 0 && wb == 0) {
		if (rq)
			tbucket_take_now(&r->reqs, 1);
		if (bs)
			tbucket_take_now(&r->bytes, size);
		return SL_OK;
	}
	what = cfg->auth_enabled ? "principal" : "address";
	*retry_ms = ms_up(wr > wb ? wr : wb);
	if (wr >= wb)
		snprintf(why, cap, "%s %s over its requests per second (%llu/s); retry after %u ms", what, key,
		         (unsigned long long)rq, *retry_ms);
	else
		snprintf(why, cap, "%s %s over its bytes per second (%llu/s); retry after %u ms", what, key,
		         (unsigned long long)bs, *retry_ms);
	return SL_ETOOMANY;
}
