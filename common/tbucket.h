/*
 * tbucket.h: a token bucket with integer arithmetic and no clock of its own
 * (the caller passes a monotonic now in ns), so tests can drive it exactly.
 * A bucket of rate R tokens per second holds at most R tokens (a burst of
 * one second's worth) and starts full. Levels are kept in token-nanoseconds
 * (tokens x 1e9) so refills lose nothing to rounding.
 */
#ifndef SLUICE_TBUCKET_H
#define SLUICE_TBUCKET_H

#include <stdint.h>

#define TBUCKET_NS 1000000000ull
/* Largest rate: R x 1e9 must fit in 64 bits. */
#define TBUCKET_RATE_MAX (16ull << 30)

struct tbucket {
	uint64_t rate;  /* tokens per second, 1 .. TBUCKET_RATE_MAX */
	uint64_t level; /* tokens x 1e9, at most rate x 1e9 */
	uint64_t at_ns; /* when level was last brought up to date */
};

/* A full bucket of rate tokens per second (rate is clamped to 1 .. TBUCKET_RATE_MAX). */
void tbucket_init(struct tbucket *b, uint64_t rate, uint64_t now_ns);
/* Add what flowed in since the last refill (a clock that goes back adds nothing). */
void tbucket_refill(struct tbucket *b, uint64_t now_ns);
/* After a refill: 0 if cost tokens are there, else the ns until they are. A
 * cost above the burst is counted as the burst (it needs a full bucket). */
uint64_t tbucket_wait_ns(const struct tbucket *b, uint64_t cost);
/* After a refill that found room (tbucket_wait_ns == 0): take cost tokens. */
void tbucket_take_now(struct tbucket *b, uint64_t cost);
/* Refill, then take cost if there is room: 0, else the ns to wait (nothing taken). */
uint64_t tbucket_take(struct tbucket *b, uint64_t cost, uint64_t now_ns);
/* 1 if the bucket is full at now_ns: it is then the same as a fresh one. */
int tbucket_full(const struct tbucket *b, uint64_t now_ns);

#endif
