/*
 * tbucket.c: the token bucket (tbucket.h). Pure arithmetic: elapsed time is
 * capped at one second before it is multiplied by the rate, since a second
 * refills any bucket, which also keeps every product inside 64 bits.
 */
#include "tbucket.h"

static uint64_t clamp_rate(uint64_t rate)
{
	if (rate == 0)
		return 1;
	return rate > TBUCKET_RATE_MAX ? TBUCKET_RATE_MAX : rate;
}

static uint64_t cost_scaled(const struct tbucket *b, uint64_t cost)
{
	return (cost > b->rate ? b->rate : cost) * TBUCKET_NS;
}

void tbucket_init(struct tbucket *b, uint64_t rate, uint64_t now_ns)
{
	b->rate = clamp_rate(rate);
	b->level = b->rate * TBUCKET_NS;
	b->at_ns = now_ns;
}

void tbucket_refill(struct tbucket *b, uint64_t now_ns)
{
	uint64_t cap = b->rate * TBUCKET_NS, dt;

	if (now_ns <= b->at_ns)
		return;
	dt = now_ns - b->at_ns;
	b->at_ns = now_ns;
	if (dt >= TBUCKET_NS || cap - b->level <= dt * b->rate)
		b->level = cap;
	else
		b->level += dt * b->rate;
}

uint64_t tbucket_wait_ns(const struct tbucket *b, uint64_t cost)
{
	uint64_t need = cost_scaled(b, cost);

	if (b->level >= need)
		return 0;
	return (need - b->level + b->rate - 1) / b->rate;
}

void tbucket_take_now(struct tbucket *b, uint64_t cost)
{
	uint64_t need = cost_scaled(b, cost);

	b->level = b->level > need ? b->level - need : 0;
}

uint64_t tbucket_take(struct tbucket *b, uint64_t cost, uint64_t now_ns)
{
	uint64_t wait;

	tbucket_refill(b, now_ns);
	if ((wait = tbucket_wait_ns(b, cost)) == 0)
		tbucket_take_now(b, cost);
	return wait;
}

int tbucket_full(const struct tbucket *b, uint64_t now_ns)
{
	uint64_t cap = b->rate * TBUCKET_NS;
	uint64_t dt = now_ns > b->at_ns ? now_ns - b->at_ns : 0;

	return b->level == cap || dt >= TBUCKET_NS || cap - b->level <= dt * b->rate;
}
