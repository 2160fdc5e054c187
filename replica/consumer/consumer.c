/*
 * consumer.c: see consumer.h.
 */
#include <stdlib.h>
#include <string.h>

#include "consumer.h"
#include "err.h"
#include "sl_assert.h"
#include "vec.h"

#define CONS_VERSION 1
#define HEAD_BYTES (1 + 8 + 8 + 4)
#define FLIGHT_BYTES (8 + 8 + 4 + 1)

void cons_init(struct cons_part *p, uint64_t from)
{
	memset(p, 0, sizeof(*p));
	p->floor = p->next = from;
}

void cons_free(struct cons_part *p)
{
	free(p->fl);
	memset(p, 0, sizeof(*p));
}

static void floor_update(struct cons_part *p)
{
	p->floor = p->n ? p->fl[0].offset : p->next;
}

/* Index of offset in fl, or -1. */
static long find(const struct cons_part *p, uint64_t offset)
{
	size_t lo = 0, hi = p->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (p->fl[mid].offset < offset)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < p->n && p->fl[lo].offset == offset ? (long)lo : -1;
}

static void remove_at(struct cons_part *p, size_t i)
{
	memmove(&p->fl[i], &p->fl[i + 1], (p->n - i - 1) * sizeof(p->fl[0]));
	p->n--;
	floor_update(p);
}

static uint32_t in_flight_max(const struct cons_cfg *cfg)
{
	if (cfg->ordered)
		return 1;
	if (cfg->max_in_flight == 0)
		return 1;
	return cfg->max_in_flight < CONS_IN_FLIGHT_MAX ? cfg->max_in_flight : CONS_IN_FLIGHT_MAX;
}

int cons_pick(struct cons_part *p, const struct cons_cfg *cfg, uint64_t end, int64_t now_ms, struct cons_action *out,
              size_t max)
{
	return cons_pick_ex(p, cfg, end, now_ms, out, max, 1);
}

int cons_due(const struct cons_part *p, const struct cons_cfg *cfg, uint64_t end, int64_t now_ms, int *dead_letter,
             int64_t *next_due_ms)
{
	int any = 0;

	*dead_letter = 0;
	*next_due_ms = INT64_MAX;
	for (size_t i = 0; i < p->n; i++) {
		const struct cons_flight *f = &p->fl[i];
		if (f->due_ms > now_ms) {
			if (f->due_ms < *next_due_ms)
				*next_due_ms = f->due_ms;
			continue;
		}
		any = 1;
		if (cfg->max_deliveries && f->deliveries >= cfg->max_deliveries)
			*dead_letter = 1;
	}
	if (p->next < end && p->n < in_flight_max(cfg))
		any = 1;
	return any;
}

int cons_pick_ex(struct cons_part *p, const struct cons_cfg *cfg, uint64_t end, int64_t now_ms,
                 struct cons_action *out, size_t max, int dead_letter)
{
	size_t k = 0;

	/* what is due: redeliver, or dead-letter after max_deliveries */
	for (size_t i = 0; i < p->n && k < max;) {
		struct cons_flight *f = &p->fl[i];
		if (f->due_ms > now_ms) {
			i++;
			continue;
		}
		if (cfg->max_deliveries && f->deliveries >= cfg->max_deliveries) {
			if (!dead_letter) {
				i++;
				continue;
			}
			out[k++] = (struct cons_action){CA_DEAD_LETTER, f->offset, f->deliveries};
			remove_at(p, i);
			continue;
		}
		f->deliveries++;
		f->wait = CS_WAIT_ACK;
		f->due_ms = now_ms + cfg->ack_timeout_ms;
		out[k++] = (struct cons_action){CA_DELIVER, f->offset, f->deliveries};
		i++;
	}
	/* new offsets, up to the in-flight limit; ordered: only when nothing is out */
	while (k < max && p->next < end && p->n < in_flight_max(cfg)) {
		if (vec_reserve(&p->fl, &p->cap, p->n + 1) != SL_OK)
			return k ? (int)k : -1;
		p->fl[p->n++] = (struct cons_flight){p->next, now_ms + cfg->ack_timeout_ms, 1, CS_WAIT_ACK};
		out[k++] = (struct cons_action){CA_DELIVER, p->next, 1};
		p->next++;
		floor_update(p);
	}
	SL_ASSERT(p->floor <= p->next);
	return (int)k;
}

int cons_ack(struct cons_part *p, uint64_t offset)
{
	long i = find(p, offset);

	if (i < 0)
		return 0;
	remove_at(p, (size_t)i);
	return 1;
}

/* delay moved by up to pct % either way, by a hash of (offset, attempt):
 * spread, but the same on every node that applies the nack. */
static int64_t jitter(int64_t delay, uint32_t pct, uint64_t offset, uint32_t attempt)
{
	if (!pct || delay <= 0)
		return delay;
	uint64_t span = (uint64_t)delay * (pct > 100 ? 100 : pct) / 100;
	uint64_t h = offset * 0x9E3779B97F4A7C15ull ^ ((uint64_t)attempt << 32 | attempt);
	h ^= h >> 31;
	h *= 0xBF58476D1CE4E5B9ull;
	h ^= h >> 29;
	return delay - (int64_t)span + (int64_t)(h % (2 * span + 1));
}

size_t cons_advance(struct cons_part *p, uint64_t first)
{
	size_t k = 0;

	while (k < p->n && p->fl[k].offset < first)
		k++;
	if (k) {
		memmove(&p->fl[0], &p->fl[k], (p->n - k) * sizeof(p->fl[0]));
		p->n -= k;
	}
	if (p->next < first)
		p->next = first;
	floor_update(p);
	SL_ASSERT(p->floor <= p->next);
	return k;
}

int cons_nack(struct cons_part *p, const struct cons_cfg *cfg, uint64_t offset, int64_t delay_ms, int64_t now_ms)
{
	long i = find(p, offset);

	if (i < 0)
		return 0;
	struct cons_flight *f = &p->fl[i];
	if (delay_ms < 0) {
		uint32_t k = f->deliveries ? f->deliveries - 1 : 0;
		delay_ms = cfg->nschedule ? cfg->schedule_ms[k < cfg->nschedule ? k : cfg->nschedule - 1] : 0;
		delay_ms = jitter(delay_ms, cfg->jitter_pct, offset, f->deliveries);
	}
	if (cfg->max_deliveries && f->deliveries >= cfg->max_deliveries)
		delay_ms = 0; /* no attempt is left: dead-letter it at the next pick */
	f->wait = CS_WAIT_RETRY;
	f->due_ms = now_ms + delay_ms;
	return 1;
}

int cons_in_progress(struct cons_part *p, const struct cons_cfg *cfg, uint64_t offset, int64_t now_ms)
{
	long i = find(p, offset);

	if (i < 0 || p->fl[i].wait != CS_WAIT_ACK)
		return 0;
	p->fl[i].due_ms = now_ms + cfg->ack_timeout_ms;
	return 1;
}

/* ---------- encoding ---------- */

static void put64(uint8_t *o, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		o[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get64(const uint8_t *in)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | in[i];
	return v;
}

size_t cons_encoded_size(const struct cons_part *p)
{
	return HEAD_BYTES + p->n * FLIGHT_BYTES;
}

size_t cons_encode(const struct cons_part *p, uint8_t *out)
{
	uint8_t *o = out;

	*o++ = CONS_VERSION;
	put64(o, p->floor);
	put64(o + 8, p->next);
	o += 16;
	for (int i = 0; i < 4; i++)
		*o++ = (uint8_t)(p->n >> (8 * i));
	for (size_t i = 0; i < p->n; i++) {
		const struct cons_flight *f = &p->fl[i];
		put64(o, f->offset);
		put64(o + 8, (uint64_t)f->due_ms);
		for (int b = 0; b < 4; b++)
			o[16 + b] = (uint8_t)(f->deliveries >> (8 * b));
		o[20] = f->wait;
		o += FLIGHT_BYTES;
	}
	return (size_t)(o - out);
}

int cons_decode(const uint8_t *in, size_t len, struct cons_part *p)
{
	uint64_t floor, next;
	uint32_t n = 0;

	memset(p, 0, sizeof(*p));
	if (len < HEAD_BYTES || in[0] != CONS_VERSION)
		return SL_EMALFORMED;
	floor = get64(in + 1);
	next = get64(in + 9);
	for (int i = 3; i >= 0; i--)
		n = n << 8 | in[17 + i];
	if (n > CONS_IN_FLIGHT_MAX || len != HEAD_BYTES + (size_t)n * FLIGHT_BYTES || floor > next ||
	    (uint64_t)n > next - floor)
		return SL_EMALFORMED;
	/* check everything before allocating */
	const uint8_t *f = in + HEAD_BYTES;
	for (uint32_t i = 0; i < n; i++, f += FLIGHT_BYTES) {
		uint64_t off = get64(f);
		uint32_t d = (uint32_t)f[16] | (uint32_t)f[17] << 8 | (uint32_t)f[18] << 16 | (uint32_t)f[19] << 24;
		if (off < floor || off >= next || (i == 0 && off != floor) || (i > 0 && off <= get64(f - FLIGHT_BYTES)) ||
		    d == 0 || (f[20] != CS_WAIT_ACK && f[20] != CS_WAIT_RETRY))
			return SL_EMALFORMED;
	}
	if (n == 0 && floor != next)
		return SL_EMALFORMED;
	if (n && vec_reserve(&p->fl, &p->cap, n) != SL_OK)
		return SL_ENOMEM;
	f = in + HEAD_BYTES;
	for (uint32_t i = 0; i < n; i++, f += FLIGHT_BYTES) {
		struct cons_flight *c = &p->fl[i];
		c->offset = get64(f);
		c->due_ms = (int64_t)get64(f + 8);
		c->deliveries = (uint32_t)f[16] | (uint32_t)f[17] << 8 | (uint32_t)f[18] << 16 | (uint32_t)f[19] << 24;
		c->wait = f[20];
	}
	p->n = n;
	p->floor = floor;
	p->next = next;
	return SL_OK;
}

/* ---------- stored state: counters, last error, state ---------- */

#define STATS_BYTES (8 * 5 + 2)

size_t cons_state_size(const struct cons_part *p, const struct cons_stats *st)
{
	return STATS_BYTES + st->error_len + cons_encoded_size(p);
}

size_t cons_state_encode(const struct cons_part *p, const struct cons_stats *st, uint8_t *out)
{
	uint64_t v[5] = {st->delivered, st->redelivered, st->acked, st->dead_lettered, st->error_offset};
	uint8_t *o = out;

	SL_ASSERT(st->error_len <= CONS_ERROR_MAX);
	for (int i = 0; i < 5; i++, o += 8)
		put64(o, v[i]);
	o[0] = (uint8_t)st->error_len;
	o[1] = (uint8_t)(st->error_len >> 8);
	o += 2;
	memcpy(o, st->error, st->error_len);
	o += st->error_len;
	o += cons_encode(p, o);
	return (size_t)(o - out);
}

int cons_state_decode(const uint8_t *in, size_t len, struct cons_part *p, struct cons_stats *st)
{
	memset(st, 0, sizeof(*st));
	memset(p, 0, sizeof(*p));
	if (len < STATS_BYTES)
		return SL_EMALFORMED;
	st->delivered = get64(in);
	st->redelivered = get64(in + 8);
	st->acked = get64(in + 16);
	st->dead_lettered = get64(in + 24);
	st->error_offset = get64(in + 32);
	st->error_len = (uint16_t)(in[40] | in[41] << 8);
	if (st->error_len > CONS_ERROR_MAX || len - STATS_BYTES < st->error_len)
		return SL_EMALFORMED;
	memcpy(st->error, in + STATS_BYTES, st->error_len);
	st->error[st->error_len] = 0;
	return cons_decode(in + STATS_BYTES + st->error_len, len - STATS_BYTES - st->error_len, p);
}
