/*
 * consumer_test.c: the durable consumer's partition state machine
 * (replica/consumer/consumer.c), driven by seeded random consumers: acks,
 * nacks with and without delays, in-progress extensions, deliveries left to
 * time out, and crashes (the state goes through its encoding, the consumer
 * forgets what it held). Checked at every step: the in-flight limit, order
 * (ordered mode: one in flight, a new offset only once every earlier one is
 * done), delivery counts never above max_deliveries, dead letters only after
 * max_deliveries, floor never going back. At the end a cooperative consumer
 * acknowledges everything: every offset is then acknowledged or dead-lettered,
 * exactly once, none lost.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "consumer.h"
#include "err.h"

#define N 300
#define SEEDS 400

static uint64_t rng;

static uint32_t rnd(uint32_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return n ? (uint32_t)(rng % n) : 0;
}

struct world {
	struct cons_cfg cfg;
	struct cons_part p;
	int64_t now;
	uint64_t end;
	uint8_t acked[N], dead[N];
	uint32_t attempts[N];
	uint64_t held[CONS_IN_FLIGHT_MAX];
	size_t nheld;
	uint64_t floor_seen;
};

static void crash(struct world *w)
{
	size_t n = cons_encoded_size(&w->p);
	uint8_t *buf = malloc(n);
	struct cons_part q;

	cr_assert_not_null(buf);
	cr_assert_eq(cons_encode(&w->p, buf), n);
	cr_assert_eq(cons_decode(buf, n, &q), SL_OK);
	cr_assert_eq(q.floor, w->p.floor);
	cr_assert_eq(q.next, w->p.next);
	cr_assert_eq(q.n, w->p.n);
	for (size_t i = 0; i < q.n; i++)
		cr_assert(q.fl[i].offset == w->p.fl[i].offset && q.fl[i].due_ms == w->p.fl[i].due_ms &&
		          q.fl[i].deliveries == w->p.fl[i].deliveries && q.fl[i].wait == w->p.fl[i].wait);
	/* a truncated or altered state is refused, never misread */
	struct cons_part bad;
	cr_assert_neq(cons_decode(buf, n - 1, &bad), SL_OK);
	if (n > 21) {
		buf[n - 1] = 9; /* an unknown wait state */
		cr_assert_eq(cons_decode(buf, n, &bad), SL_EMALFORMED);
	}
	free(buf);
	cons_free(&w->p);
	w->p = q;
	w->nheld = 0; /* the consumer lost what it was working on */
}

static void check(struct world *w)
{
	cr_assert(w->p.floor >= w->floor_seen, "floor went back");
	w->floor_seen = w->p.floor;
	cr_assert(w->p.floor <= w->p.next);
	if (w->cfg.ordered)
		cr_assert(w->p.n <= 1, "ordered: %zu in flight", w->p.n);
	else
		cr_assert(w->p.n <= w->cfg.max_in_flight);
	for (uint64_t o = w->p.floor; o < w->p.next && o < N; o++) {
		int in = 0;
		for (size_t i = 0; i < w->p.n; i++)
			in |= w->p.fl[i].offset == o;
		/* in [floor, next): in flight, or done */
		cr_assert(in || w->acked[o] || w->dead[o], "offset %lu neither in flight nor done", (unsigned long)o);
	}
	for (uint64_t o = 0; o < w->p.floor && o < N; o++)
		cr_assert(w->acked[o] || w->dead[o], "offset %lu below the floor but not done", (unsigned long)o);
}

static void pick(struct world *w)
{
	struct cons_action a[16];
	int k = cons_pick(&w->p, &w->cfg, w->end, w->now, a, 1 + rnd(16));

	cr_assert(k >= 0);
	for (int i = 0; i < k; i++) {
		uint64_t o = a[i].offset;
		cr_assert(o < w->end);
		cr_assert(!w->acked[o] && !w->dead[o], "offset %lu acted on after it was done", (unsigned long)o);
		if (a[i].kind == CA_DEAD_LETTER) {
			cr_assert(w->cfg.max_deliveries && a[i].attempt == w->cfg.max_deliveries &&
			          w->attempts[o] == w->cfg.max_deliveries);
			w->dead[o] = 1;
			continue;
		}
		cr_assert_eq(a[i].kind, CA_DELIVER);
		cr_assert_eq(a[i].attempt, w->attempts[o] + 1, "attempt numbers count up by one");
		w->attempts[o] = a[i].attempt;
		if (w->cfg.max_deliveries)
			cr_assert(a[i].attempt <= w->cfg.max_deliveries);
		if (w->cfg.ordered && a[i].attempt == 1)
			for (uint64_t e = 0; e < o; e++)
				cr_assert(w->acked[e] || w->dead[e], "ordered: %lu delivered before %lu was done",
				          (unsigned long)o, (unsigned long)e);
		w->held[w->nheld++] = o;
	}
	check(w);
}

static void consumer_step(struct world *w, int cooperative)
{
	if (!w->nheld)
		return;
	size_t i = rnd((uint32_t)w->nheld);
	uint64_t o = w->held[i];
	uint32_t r = cooperative ? 0 : rnd(10);

	w->held[i] = w->held[--w->nheld];
	if (r < 5) {
		int was = cons_ack(&w->p, o);
		if (was)
			w->acked[o] = 1;
		else
			cr_assert(w->acked[o] || w->dead[o] || w->attempts[o], "ack of an offset never delivered");
	} else if (r < 7) {
		cons_nack(&w->p, &w->cfg, o, rnd(2) ? -1 : (int64_t)rnd(50), w->now);
	} else if (r < 8) {
		if (cons_in_progress(&w->p, &w->cfg, o, w->now))
			w->held[w->nheld++] = o; /* still working on it */
	}
	/* else: dropped, it times out */
	check(w);
}

static void run_seed(uint64_t seed)
{
	struct world *w = calloc(1, sizeof(*w));

	cr_assert_not_null(w);
	rng = seed * 0x9E3779B97F4A7C15ull + 1;
	w->cfg.ordered = rnd(3) == 0;
	w->cfg.max_in_flight = 1 + rnd(12);
	w->cfg.max_deliveries = rnd(4); /* 0: never dead-letter */
	w->cfg.ack_timeout_ms = 5 + rnd(60);
	w->cfg.nschedule = rnd(4);
	for (uint32_t i = 0; i < w->cfg.nschedule; i++)
		w->cfg.schedule_ms[i] = rnd(40);
	cons_init(&w->p, 0);
	w->end = 0;
	for (int step = 0; step < 4000; step++) {
		w->now += rnd(8);
		if (w->end < N && rnd(3) == 0)
			w->end += 1 + rnd(5);
		if (w->end > N)
			w->end = N;
		uint32_t r = rnd(20);
		if (r < 8)
			pick(w);
		else if (r < 19)
			consumer_step(w, 0);
		else
			crash(w);
	}
	/* liveness: a consumer that acknowledges everything it gets */
	w->end = N;
	for (int step = 0; step < 200000 && w->p.floor < N; step++) {
		w->now += 1 + rnd(5);
		pick(w);
		while (w->nheld)
			consumer_step(w, 1);
	}
	cr_assert_eq(w->p.floor, N, "seed %lu: stuck at floor %lu", (unsigned long)seed, (unsigned long)w->p.floor);
	cr_assert_eq(w->p.n, 0);
	for (int o = 0; o < N; o++)
		cr_assert(w->acked[o] + w->dead[o] == 1, "seed %lu: offset %d acked %d dead %d", (unsigned long)seed, o,
		          w->acked[o], w->dead[o]);
	if (!w->cfg.max_deliveries)
		for (int o = 0; o < N; o++)
			cr_assert(!w->dead[o], "dead-lettered with max_deliveries 0");
	cons_free(&w->p);
	free(w);
}

Test(consumer, random_consumers_lose_nothing_and_keep_order)
{
	for (uint64_t seed = 1; seed <= SEEDS; seed++)
		run_seed(seed);
}

Test(consumer, ordered_waits_for_the_ack_and_dead_letters_after_max_deliveries)
{
	struct cons_cfg cfg = {.ordered = 1, .max_deliveries = 2, .ack_timeout_ms = 100, .nschedule = 2,
	                       .schedule_ms = {10, 1000}};
	struct cons_part p;
	struct cons_action a[4];

	cons_init(&p, 5);
	cr_assert_eq(cons_pick(&p, &cfg, 8, 0, a, 4), 1);
	cr_assert(a[0].kind == CA_DELIVER && a[0].offset == 5 && a[0].attempt == 1);
	cr_assert_eq(cons_pick(&p, &cfg, 8, 50, a, 4), 0, "ordered: 6 waits for 5");
	cr_assert_eq(cons_nack(&p, &cfg, 5, -1, 50), 1); /* schedule: 10 ms before attempt 2 */
	cr_assert_eq(cons_pick(&p, &cfg, 8, 59, a, 4), 0);
	cr_assert_eq(cons_pick(&p, &cfg, 8, 60, a, 4), 1);
	cr_assert(a[0].kind == CA_DELIVER && a[0].offset == 5 && a[0].attempt == 2);
	cr_assert_eq(cons_in_progress(&p, &cfg, 5, 150), 1); /* deadline 250 */
	cr_assert_eq(cons_pick(&p, &cfg, 8, 249, a, 4), 0);
	/* the ack timed out after the last attempt: dead letter, then 6 */
	cr_assert_eq(cons_pick(&p, &cfg, 8, 250, a, 4), 2);
	cr_assert(a[0].kind == CA_DEAD_LETTER && a[0].offset == 5 && a[0].attempt == 2);
	cr_assert(a[1].kind == CA_DELIVER && a[1].offset == 6 && a[1].attempt == 1);
	cr_assert_eq(p.floor, 6);
	cr_assert_eq(cons_ack(&p, 6), 1);
	cr_assert_eq(cons_ack(&p, 6), 0, "a second ack is not in flight");
	cr_assert_eq(p.floor, 7);
	cons_free(&p);
}

Test(consumer, shared_keeps_max_in_flight_and_acks_out_of_order)
{
	struct cons_cfg cfg = {.max_in_flight = 3, .ack_timeout_ms = 100};
	struct cons_part p;
	struct cons_action a[8];

	cons_init(&p, 0);
	cr_assert_eq(cons_pick(&p, &cfg, 10, 0, a, 8), 3);
	cr_assert_eq(cons_in_flight(&p), 3);
	cr_assert_eq(cons_ack(&p, 1), 1);
	cr_assert_eq(p.floor, 0, "0 is still out");
	cr_assert_eq(cons_pick(&p, &cfg, 10, 1, a, 8), 1);
	cr_assert_eq(a[0].offset, 3);
	cr_assert_eq(cons_ack(&p, 0), 1);
	cr_assert_eq(p.floor, 2);
	cr_assert_eq(cons_nack(&p, &cfg, 2, 0, 2), 1);
	cr_assert_eq(cons_pick(&p, &cfg, 10, 2, a, 8), 2); /* 2 again, then 4 */
	cr_assert(a[0].offset == 2 && a[0].attempt == 2 && a[1].offset == 4 && a[1].attempt == 1);
	cons_free(&p);
}

Test(consumer, decode_refuses_inconsistent_states)
{
	uint8_t b[64] = {1};
	struct cons_part p;

	cr_assert_eq(cons_decode(b, 0, &p), SL_EMALFORMED);
	cr_assert_eq(cons_decode(b, 21, &p), SL_OK); /* floor 0, next 0, nothing in flight */
	cons_free(&p);
	b[9] = 5; /* next 5 with nothing in flight: floor must be 5 */
	cr_assert_eq(cons_decode(b, 21, &p), SL_EMALFORMED);
	b[17] = 0xff; /* a count the bytes do not hold */
	cr_assert_eq(cons_decode(b, 21, &p), SL_EMALFORMED);
	b[0] = 2; /* an unknown version */
	cr_assert_eq(cons_decode(b, 21, &p), SL_EMALFORMED);
}

Test(consumer, schedule_jitter_is_bounded_and_the_same_everywhere)
{
	struct cons_cfg cfg = {.max_in_flight = 100, .ack_timeout_ms = 100, .nschedule = 1, .schedule_ms = {1000},
	                       .jitter_pct = 20};
	struct cons_part p, q;
	struct cons_action a[100];
	int64_t min = INT64_MAX, max = 0;

	cons_init(&p, 0);
	cons_init(&q, 0);
	cr_assert_eq(cons_pick(&p, &cfg, 100, 0, a, 100), 100);
	cr_assert_eq(cons_pick(&q, &cfg, 100, 0, a, 100), 100);
	for (uint64_t o = 0; o < 100; o++) {
		cr_assert_eq(cons_nack(&p, &cfg, o, -1, 0), 1);
		cr_assert_eq(cons_nack(&q, &cfg, o, -1, 0), 1);
		int64_t due = p.fl[o].due_ms;
		cr_assert_eq(due, q.fl[o].due_ms, "the same on every node");
		cr_assert(due >= 800 && due <= 1200, "offset %llu due at %lld", (unsigned long long)o, (long long)due);
		min = due < min ? due : min;
		max = due > max ? due : max;
	}
	cr_assert_gt(max - min, 100, "spread, not one instant");
	/* an explicit delay is kept as given */
	cr_assert_eq(cons_nack(&p, &cfg, 7, 5000, 0), 1);
	cr_assert_eq(p.fl[7].due_ms, 5000);
	cons_free(&p);
	cons_free(&q);
}

Test(consumer, advance_past_retention_drops_what_is_gone)
{
	struct cons_cfg cfg = {.max_in_flight = 10, .ack_timeout_ms = 100};
	struct cons_part p;
	struct cons_action a[10];

	cons_init(&p, 0);
	cr_assert_eq(cons_pick(&p, &cfg, 5, 0, a, 10), 5); /* 0..4 in flight */
	cr_assert_eq(cons_ack(&p, 3), 1);
	cr_assert_eq(cons_advance(&p, 3), 3, "0, 1, 2 were in flight and are gone");
	cr_assert_eq(p.floor, 4);
	cr_assert_eq(cons_in_flight(&p), 1);
	cr_assert_eq(cons_advance(&p, 20), 1);
	cr_assert_eq(p.floor, 20);
	cr_assert_eq(p.next, 20);
	cr_assert_eq(cons_pick(&p, &cfg, 22, 0, a, 10), 2);
	cr_assert_eq(a[0].offset, 20);
	cr_assert_eq(cons_advance(&p, 5), 0, "nothing below");
	cons_free(&p);
}
