/*
 * wh_deliver.c: see wh_deliver.h.
 *
 * One worker per webhook keeps one pull outstanding (long-poll) for up to
 * its room (ordered: one per partition; shared: max_in_flight per
 * partition, at most WH_ROOM_MAX) minus the POSTs in flight, and rate
 * tokens when rate_per_s is set. Each result is acked or nacked on its own
 * request; the logwriter batches the requests of a turn into one entry.
 * A worker whose webhook went away is freed once its pull returns (a
 * libsluice request cannot be cancelled); its POSTs are cancelled at once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <sodium.h>

#include "config.h"
#include "err.h"
#include "log.h"
#include "sluice/sluice.h"
#include "store.h"
#include "auth_key.h"
#include "wh_body.h"
#include "wh_client.h"
#include "wh_config.h"
#include "wh_deliver.h"
#include "wh_sign.h"

#define WH_TICK_MS 500
#define WH_ROOM_MAX 256
#define WH_PULL_WAIT_MS 5000
#define WH_RETRY_MS 1000
#define WH_EXTRA_HEADERS 7 /* webhook-id, -timestamp, -signature, sluice-topic, -partition, -offset, -attempt */

struct wh_worker;

struct wh_job {
	LIST_ENTRY(wh_job) link;
	struct wh_worker *w;
	struct wh_req *req;
	uint32_t partition;
	uint64_t offset;
	uint32_t attempt;
};

struct wh_worker {
	TAILQ_ENTRY(wh_worker) link;
	struct wh_deliver *d;
	char name[256];
	char topic[256];
	struct wh_config *cfg;
	char *cfg_json;          /* as stored: a change replaces cfg */
	uint32_t sched[STORE_CONSUMER_SCHEDULE_MAX], nsched;
	uint32_t room;
	int pulling, gone, seen;
	size_t inflight;
	double tokens;
	int64_t tokens_ms;
	struct event *later;     /* kick again after a pause (errors, rate) */
	LIST_HEAD(, wh_job) jobs;
	uint64_t delivered, failed;
};

struct wh_deliver {
	struct event_base *base;
	const struct config *cfg;
	struct store *store;
	const uint8_t *node_seed;
	uint8_t seal[32];        /* [auth] key_file: opens sealed secrets (wh_seal.h) */
	int seal_ok;
	int (*active)(void *arg);
	void *arg;
	struct event *tick;
	struct sluice_client *cli;
	struct wh_pool *pool;
	TAILQ_HEAD(, wh_worker) workers;
};

static void worker_kick(struct wh_worker *w);

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---------- workers ---------- */

static void later_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	worker_kick(arg);
}

static void kick_later(struct wh_worker *w, uint32_t ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	if (w->later && !evtimer_pending(w->later, NULL))
		evtimer_add(w->later, &tv);
}

static void worker_free(struct wh_worker *w)
{
	struct wh_job *j;
	while ((j = LIST_FIRST(&w->jobs))) {
		LIST_REMOVE(j, link);
		wh_req_cancel(j->req);
		free(j);
	}
	if (w->later)
		event_free(w->later);
	if (w->cfg)
		sodium_memzero(w->cfg, sizeof(*w->cfg)); /* opened secrets */
	free(w->cfg);
	free(w->cfg_json);
	free(w);
}

/* Out of the list; freed now, or when its pull returns. */
static void worker_retire(struct wh_worker *w)
{
	struct wh_job *j;
	TAILQ_REMOVE(&w->d->workers, w, link);
	w->gone = 1;
	while ((j = LIST_FIRST(&w->jobs))) {
		LIST_REMOVE(j, link);
		wh_req_cancel(j->req);
		free(j);
	}
	w->inflight = 0;
	if (!w->pulling)
		worker_free(w);
}

static void ack_done_cb(void *arg, int err, const char *errmsg)
{
	(void)arg;
	if (err)
		log_debug("webhook ack not applied (%s): the message comes back after its ack timeout", errmsg);
}

static void settle(struct wh_worker *w, const struct wh_job *j, enum sluice_ack_kind kind, int64_t delay_ms,
                   const char *error)
{
	struct sluice_ack_item it = {j->partition, j->offset, kind, delay_ms, error};
	if (w->d->cli && sluice_ack(w->d->cli, w->name, &it, 1, ack_done_cb, NULL) != SLUICE_OK)
		log_debug("webhook %s: ack of %u/%llu not sent", w->name, j->partition, (unsigned long long)j->offset);
}

/* The delay before attempt+1: the schedule, with +-20 % jitter. */
static int64_t sched_delay(const struct wh_worker *w, uint32_t attempt)
{
	if (!w->nsched)
		return 0;
	uint32_t k = attempt ? attempt - 1 : 0;
	int64_t base = w->sched[k < w->nsched ? k : w->nsched - 1];
	if (base <= 0)
		return 0;
	int64_t span = base / 5;
	return base - span + (int64_t)randombytes_uniform((uint32_t)(2 * span < UINT32_MAX ? 2 * span + 1 : UINT32_MAX));
}

/* 410 Gone: the endpoint asks to stop. The webhook is paused (in the log,
 * for every node) with the reason; resuming it is the operator's call. */
static void disable(struct wh_worker *w, int status)
{
	char patch[128];
	w->cfg->paused = 1;
	snprintf(patch, sizeof(patch), "{\"paused\":true,\"disabled_reason\":\"the endpoint answered %d\"}", status);
	if (w->d->cli)
		sluice_webhook_update(w->d->cli, w->name, patch, ack_done_cb, NULL);
	/* the next scan reloads the stored settings even if they did not change:
	 * if the pause never reached the log, delivery goes on (and meets the 410 again) */
	free(w->cfg_json);
	w->cfg_json = NULL;
	log_warn("webhook %s paused: %s answered %d", w->name, w->cfg->url, status);
}

static void post_cb(const struct wh_result *res, void *arg)
{
	struct wh_job *j = arg;
	struct wh_worker *w = j->w;
	char error[200];
	LIST_REMOVE(j, link);
	w->inflight--;
	if (res->err == SL_OK && res->status >= 200 && res->status < 300) {
		w->delivered++;
		settle(w, j, SLUICE_ACK, -1, NULL);
	} else {
		int64_t delay = sched_delay(w, j->attempt);
		w->failed++;
		if (res->status)
			snprintf(error, sizeof(error), "HTTP %d", res->status);
		else
			snprintf(error, sizeof(error), "%s%s%s", wh_strerror(res->err), res->error[0] ? ": " : "",
			         res->error);
		if ((res->status == 429 || res->status == 503) && res->retry_after_ms >= 0)
			delay = res->retry_after_ms;
		if (res->status == 410 && w->cfg->callback) {
			/* one endpoint asks to stop: that callback is done, the others go on */
			settle(w, j, SLUICE_ACK, -1, NULL);
			free(j);
			worker_kick(w);
			return;
		}
		if (res->status == 410)
			disable(w, res->status);
		settle(w, j, SLUICE_NACK, delay, error);
	}
	free(j);
	worker_kick(w);
}

static const uint8_t *hdr_get(void *arg, const char *name, size_t *len)
{
	const struct sluice_msg *m = arg;
	for (size_t i = 0; i < m->headers_n; i++)
		if (strcmp(m->headers[i].key, name) == 0) {
			*len = m->headers[i].value.len;
			return m->headers[i].value.base ? m->headers[i].value.base : (const uint8_t *)"";
		}
	return NULL;
}

/* A message header as a NUL-terminated string in out; 0 if absent, empty or too long. */
static int hdr_str(const struct sluice_msg *m, const char *name, char *out, size_t cap)
{
	size_t n = 0;
	const uint8_t *v = hdr_get((void *)m, name, &n);
	if (!v || n == 0 || n >= cap || memchr(v, 0, n))
		return 0;
	memcpy(out, v, n);
	out[n] = 0;
	return 1;
}

/* Where a message goes and its body's type: the webhook's URL and the
 * topic, or for a callback webhook the message's own (wh_config.h). */
struct wh_dest {
	struct wh_url u;
	char type[256];
};

static int dest_of(const struct wh_worker *w, const struct sluice_msg *m, struct wh_dest *d)
{
	char url[WH_URL_BYTES_MAX + 1];
	if (!w->cfg->callback) {
		d->u = w->cfg->u;
		snprintf(d->type, sizeof(d->type), "%s", m->topic);
		return SL_OK;
	}
	if (!hdr_str(m, "sluice-callback-url", url, sizeof(url)) || wh_url_parse(url, strlen(url), &d->u) != SL_OK)
		return SL_EINVAL;
	if (!hdr_str(m, "sluice-event-type", d->type, sizeof(d->type)))
		snprintf(d->type, sizeof(d->type), "%s", m->topic);
	return SL_OK;
}

/* Sign and POST one message; 0 if it is on its way. */
static int post(struct wh_worker *w, const struct sluice_pulled *pm, const struct wh_dest *dst)
{
	const struct sluice_msg *m = &pm->msg;
	struct wh_header h[WH_EXTRA_HEADERS + WH_CFG_HEADERS_MAX];
	char id[WH_MSG_ID_CHARS], ts[24], sig[WH_SIG_HEADER_CHARS_MAX], part[16], off[24], att[16];
	struct evbuffer *body = evbuffer_new();
	int64_t t = now_ms() / 1000;
	size_t n = 0;
	int rc = SL_ENOMEM;
	struct wh_job *j = calloc(1, sizeof(*j));
	if (!body || !j)
		goto out;
	wh_msg_id(id, sizeof(id), m->topic, m->partition, m->offset);
	snprintf(ts, sizeof(ts), "%lld", (long long)t);
	snprintf(part, sizeof(part), "%u", m->partition);
	snprintf(off, sizeof(off), "%llu", (unsigned long long)m->offset);
	snprintf(att, sizeof(att), "%u", pm->attempt);
	rc = wh_body_render(body, dst->type, strlen(dst->type), m->timestamp_ms, slice_make(m->key.base, m->key.len),
	                    slice_make(m->payload.base, m->payload.len));
	const uint8_t *b = rc == SL_OK ? evbuffer_pullup(body, -1) : NULL;
	size_t blen = evbuffer_get_length(body);
	if (rc == SL_OK)
		rc = wh_signature_header(w->cfg->keys, w->cfg->nsecrets, id, t, b, blen, sig, sizeof(sig));
	if (rc)
		goto out;
	h[n++] = (struct wh_header){"webhook-id", id};
	h[n++] = (struct wh_header){"webhook-timestamp", ts};
	h[n++] = (struct wh_header){"webhook-signature", sig};
	h[n++] = (struct wh_header){"sluice-topic", m->topic};
	h[n++] = (struct wh_header){"sluice-partition", part};
	h[n++] = (struct wh_header){"sluice-offset", off};
	h[n++] = (struct wh_header){"sluice-attempt", att};
	for (size_t i = 0; i < w->cfg->nheaders; i++)
		h[n++] = (struct wh_header){w->cfg->headers[i].name, w->cfg->headers[i].value};
	*j = (struct wh_job){.w = w, .partition = m->partition, .offset = m->offset, .attempt = pm->attempt};
	rc = wh_post(w->d->pool, &dst->u, h, n, b, blen, w->cfg->timeout_ms, post_cb, j, &j->req);
	if (rc == SL_OK) {
		LIST_INSERT_HEAD(&w->jobs, j, link);
		w->inflight++;
		j = NULL;
	}
out:
	free(j);
	if (body)
		evbuffer_free(body);
	return rc;
}

static void pull_cb(void *arg, int err, const char *errmsg, const struct sluice_pulled *msgs, size_t n)
{
	struct wh_worker *w = arg;
	w->pulling = 0;
	if (w->gone) {
		worker_free(w);
		return;
	}
	if (err) {
		log_debug("webhook %s: pull failed (%s); again in %d ms", w->name, errmsg, WH_RETRY_MS);
		kick_later(w, WH_RETRY_MS);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const struct sluice_msg *m = &msgs[i].msg;
		struct wh_job skip = {.partition = m->partition, .offset = m->offset};
		if (w->cfg->paused) {
			/* paused while the pull waited: it is due again at once, taken after a resume */
			settle(w, &skip, SLUICE_NACK, 0, "paused");
			continue;
		}
		if (!wh_config_match(w->cfg, m->key.base, m->key.len, hdr_get, (void *)m)) {
			settle(w, &skip, SLUICE_ACK, -1, NULL); /* filtered out: done */
			continue;
		}
		struct wh_dest dst;
		if (dest_of(w, m, &dst) != SL_OK) {
			/* no attempt can succeed: it is done, and the log says why */
			log_warn("webhook %s: %u/%llu has no valid sluice-callback-url; not delivered", w->name,
			         m->partition, (unsigned long long)m->offset);
			settle(w, &skip, SLUICE_ACK, -1, NULL);
			continue;
		}
		if (post(w, &msgs[i], &dst) != SL_OK)
			settle(w, &skip, SLUICE_NACK, WH_RETRY_MS, "could not start the request on this node");
		w->tokens -= 1;
	}
	worker_kick(w);
}

static void worker_kick(struct wh_worker *w)
{
	if (w->gone || w->pulling || w->cfg->paused || !w->d->cli || w->inflight >= w->room)
		return;
	uint32_t want = (uint32_t)(w->room - w->inflight);
	if (w->cfg->rate_per_s) {
		int64_t t = now_ms();
		w->tokens += (double)(t - w->tokens_ms) * w->cfg->rate_per_s / 1000.0;
		w->tokens_ms = t;
		if (w->tokens > w->cfg->rate_per_s)
			w->tokens = w->cfg->rate_per_s;
		if (w->tokens < 1) {
			kick_later(w, (uint32_t)(1000 / w->cfg->rate_per_s) + 1);
			return;
		}
		if (want > (uint32_t)w->tokens)
			want = (uint32_t)w->tokens;
	}
	if (want > 1000)
		want = 1000;
	w->pulling = 1;
	if (sluice_pull(w->d->cli, w->name, want, WH_PULL_WAIT_MS, pull_cb, w) != SLUICE_OK) {
		w->pulling = 0;
		kick_later(w, WH_RETRY_MS);
	}
}

/* ---------- settings from the store ---------- */

static struct wh_worker *worker_find(struct wh_deliver *d, const char *name)
{
	struct wh_worker *w;
	TAILQ_FOREACH(w, &d->workers, link)
	if (strcmp(w->name, name) == 0)
		return w;
	return NULL;
}

/* The node's sealing key ([auth] key_file) for sealed secrets; NULL if none. */
static const uint8_t *seal_key(struct wh_deliver *d)
{
	char why[160];
	if (!d->seal_ok && d->cfg->auth_key_file[0]) {
		if (auth_sealkey_read(d->cfg->auth_key_file, d->seal, why, sizeof(why)) == SL_OK)
			d->seal_ok = 1;
		else
			log_error("webhooks: %s", why);
	}
	return d->seal_ok ? d->seal : NULL;
}

/* (Re)load a worker's settings; 0 if the webhook cannot be delivered. */
static int worker_set(struct wh_worker *w, const struct store_consumer *sc, struct slice json)
{
	char why[160];
	if (w->cfg_json && strlen(w->cfg_json) == json.len && memcmp(w->cfg_json, json.base, json.len) == 0)
		return 1;
	struct wh_config *c = malloc(sizeof(*c));
	char *copy = malloc(json.len + 1);
	if (!c || !copy || wh_config_parse((const char *)json.base, json.len, c, why, sizeof(why)) != SL_OK ||
	    (wh_config_sealed(c) && wh_config_unseal(c, seal_key(w->d), why, sizeof(why)) != SL_OK)) {
		if (c && copy)
			log_error("webhook %s: settings unreadable (%s)", sc->name, why);
		if (c)
			sodium_memzero(c, sizeof(*c));
		free(c);
		free(copy);
		return 0;
	}
	memcpy(copy, json.base, json.len);
	copy[json.len] = 0;
	free(w->cfg);
	free(w->cfg_json);
	w->cfg = c;
	w->cfg_json = copy;
	snprintf(w->topic, sizeof(w->topic), "%s", sc->topic);
	w->nsched = sc->nschedule;
	memcpy(w->sched, sc->schedule_ms, sizeof(w->sched));
	w->room = sc->shared ? sc->max_in_flight * (sc->partitions ? sc->partitions : 1) : sc->partitions;
	if (w->room == 0 || w->room > WH_ROOM_MAX)
		w->room = w->room ? WH_ROOM_MAX : 1;
	w->tokens = c->rate_per_s ? 1 : 0;
	w->tokens_ms = now_ms();
	return 1;
}

struct scan_ctx {
	struct wh_deliver *d;
	struct store_txn *t;
};

static int scan_cb(void *arg, const struct store_consumer *sc)
{
	struct scan_ctx *x = arg;
	struct slice json;
	if (store_webhook_get(x->t, sc->name, strlen(sc->name), &json) != SL_OK)
		return 0;
	struct wh_worker *w = worker_find(x->d, sc->name);
	if (!w) {
		if (!(w = calloc(1, sizeof(*w))))
			return 0;
		w->d = x->d;
		snprintf(w->name, sizeof(w->name), "%s", sc->name);
		LIST_INIT(&w->jobs);
		w->later = evtimer_new(x->d->base, later_cb, w);
		TAILQ_INSERT_TAIL(&x->d->workers, w, link);
		log_info("webhook %s: delivering from this node", sc->name);
	}
	if (!worker_set(w, sc, json)) {
		worker_retire(w);
		return 0;
	}
	w->seen = 1;
	return 0;
}

static void scan(struct wh_deliver *d)
{
	struct store_txn *t = NULL;
	struct wh_worker *w, *next;
	TAILQ_FOREACH(w, &d->workers, link)
	w->seen = 0;
	if (store_txn_begin(d->store, 0, &t) != SL_OK)
		return;
	struct scan_ctx x = {d, t};
	int rc = store_consumer_foreach(t, scan_cb, &x);
	store_txn_abort(t);
	if (rc != SL_OK)
		return; /* keep what runs: a read error is not a deletion */
	for (w = TAILQ_FIRST(&d->workers); w; w = next) {
		next = TAILQ_NEXT(w, link);
		if (!w->seen)
			worker_retire(w);
		else
			worker_kick(w);
	}
}

/* ---------- on and off ---------- */

static void stop_all(struct wh_deliver *d)
{
	struct wh_worker *w;
	if (!d->cli)
		return;
	while ((w = TAILQ_FIRST(&d->workers)))
		worker_retire(w);
	sluice_client_free(d->cli); /* pulls answer ECLOSED: their workers go */
	d->cli = NULL;
	wh_pool_free(d->pool);
	d->pool = NULL;
	log_info("webhooks: no longer delivering from this node");
}

/* The native listener of this node, as a client reaches it. */
static void local_server(const struct config *cfg, char *out, size_t cap)
{
	const char *a = cfg->listen_native, *colon = strrchr(a, ':');
	const char *port = colon ? colon + 1 : "7400";
	size_t hl = colon ? (size_t)(colon - a) : strlen(a);
	if (hl == 0 || (hl == 7 && memcmp(a, "0.0.0.0", 7) == 0))
		snprintf(out, cap, "127.0.0.1:%s", port);
	else if (hl == 4 && memcmp(a, "[::]", 4) == 0)
		snprintf(out, cap, "[::1]:%s", port);
	else
		snprintf(out, cap, "%s", a);
}

static int start(struct wh_deliver *d)
{
	char server[300];
	struct sluice_client_opts o = {0};
	struct wh_pool_cfg pc = {0};
	local_server(d->cfg, server, sizeof(server));
	o.servers = server;
	o.client_name = "sluice-webhooks";
	o.retry_max_ms = 5000;
	/* a listener with TLS takes nothing else; the hop stays on this host, and
	 * the node's certificate need not name the loopback address */
	o.tls = d->cfg->tls_cert[0] != 0;
	o.tls_skip_verify = o.tls;
	if (d->cfg->auth_enabled)
		o.key_seed = d->node_seed;
	pc.allow_private = d->cfg->webhook_allow_private;
	pc.ca_file = d->cfg->webhook_ca_file[0] ? d->cfg->webhook_ca_file : NULL;
	pc.conns_per_host_max = d->cfg->webhook_conns_per_host;
	if (sluice_client_new(d->base, &o, &d->cli) != SLUICE_OK) {
		d->cli = NULL;
		return SL_ENOMEM;
	}
	if (!(d->pool = wh_pool_new(d->base, &pc))) {
		log_error("webhooks: cannot start the HTTP client (ca_file %s?)", pc.ca_file ? pc.ca_file : "-");
		sluice_client_free(d->cli);
		d->cli = NULL;
		return SL_ENOMEM;
	}
	log_info("webhooks: delivering from this node (through %s)", server);
	return SL_OK;
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct wh_deliver *d = arg;
	(void)fd;
	(void)what;
	if (!d->active(d->arg)) {
		stop_all(d);
		return;
	}
	if (!d->cli && start(d) != SL_OK)
		return;
	scan(d);
}

struct wh_deliver *wh_deliver_new(struct event_base *base, const struct config *cfg, struct store *store,
                                  const uint8_t *node_seed, int (*active)(void *arg), void *arg)
{
	struct wh_deliver *d = calloc(1, sizeof(*d));
	struct timeval tv = {0, WH_TICK_MS * 1000};
	if (!d)
		return NULL;
	d->base = base;
	d->cfg = cfg;
	d->store = store;
	d->node_seed = node_seed;
	d->active = active;
	d->arg = arg;
	TAILQ_INIT(&d->workers);
	d->tick = event_new(base, -1, EV_PERSIST, tick_cb, d);
	if (!d->tick || event_add(d->tick, &tv) != 0) {
		wh_deliver_free(d);
		return NULL;
	}
	return d;
}

void wh_deliver_free(struct wh_deliver *d)
{
	if (!d)
		return;
	stop_all(d);
	if (d->tick)
		event_free(d->tick);
	free(d);
}
