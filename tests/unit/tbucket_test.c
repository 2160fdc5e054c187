/*
 * tbucket_test.c: the token bucket with exact numbers: a full start, the
 * refill per nanosecond, the wait it reports, costs above the burst, a clock
 * that goes back, and rates at the top of the range without overflow.
 */
#include <criterion/criterion.h>

#include "tbucket.h"

#define S TBUCKET_NS
#define MS 1000000ull

Test(tbucket, starts_full_then_refuses_with_exact_wait)
{
	struct tbucket b;

	tbucket_init(&b, 10, 5 * S);
	cr_assert(tbucket_full(&b, 5 * S));
	for (int i = 0; i < 10; i++)
		cr_assert_eq(tbucket_take(&b, 1, 5 * S), 0, "take %d", i);
	/* empty: one token comes after 1/10 s */
	cr_assert_eq(tbucket_take(&b, 1, 5 * S), 100 * MS);
	cr_assert_eq(tbucket_take(&b, 1, 5 * S + 40 * MS), 60 * MS);
	cr_assert_eq(tbucket_take(&b, 1, 5 * S + 100 * MS), 0);
	cr_assert_eq(tbucket_take(&b, 1, 5 * S + 100 * MS), 100 * MS);
	cr_assert(!tbucket_full(&b, 5 * S + 100 * MS));
}

Test(tbucket, refill_caps_at_one_second)
{
	struct tbucket b;

	tbucket_init(&b, 1000, 0);
	cr_assert_eq(tbucket_take(&b, 1000, 0), 0);
	cr_assert_eq(tbucket_take(&b, 1, 0), 1 * MS);
	/* an hour later it holds 1000, not 3.6 million */
	cr_assert(tbucket_full(&b, 3600 * S));
	cr_assert_eq(tbucket_take(&b, 1000, 3600 * S), 0);
	cr_assert_eq(tbucket_take(&b, 1, 3600 * S), 1 * MS);
	/* half a second: 500 tokens */
	cr_assert_eq(tbucket_take(&b, 500, 3600 * S + S / 2), 0);
	cr_assert_eq(tbucket_take(&b, 1, 3600 * S + S / 2), 1 * MS);
}

Test(tbucket, fractional_refill_is_not_lost)
{
	struct tbucket b;

	tbucket_init(&b, 3, 0);
	cr_assert_eq(tbucket_take(&b, 3, 0), 0);
	/* one token needs 333,333,334 ns at 3/s (rounded up) */
	cr_assert_eq(tbucket_wait_ns(&b, 1), 333333334);
	tbucket_refill(&b, 333333333);
	cr_assert_eq(tbucket_wait_ns(&b, 1), 1);
	tbucket_refill(&b, 333333334);
	cr_assert_eq(tbucket_wait_ns(&b, 1), 0);
	tbucket_take_now(&b, 1);
	/* the 2 token-ns left over count towards the next one */
	cr_assert_eq(b.level, 2);
}

Test(tbucket, bytes_and_costs_above_the_burst)
{
	struct tbucket b;

	tbucket_init(&b, 1000, 0);
	cr_assert_eq(tbucket_take(&b, 600, 0), 0);
	cr_assert_eq(tbucket_take(&b, 600, 0), 200 * MS); /* 400 there, 200 missing at 1000/s */
	/* nothing was taken by the refusal */
	cr_assert_eq(tbucket_take(&b, 400, 0), 0);
	/* larger than the burst: needs a full bucket, then empties it */
	cr_assert_eq(tbucket_take(&b, 5000, 0), S);
	cr_assert_eq(tbucket_take(&b, 5000, S), 0);
	cr_assert_eq(b.level, 0);
}

Test(tbucket, clock_going_back_adds_nothing)
{
	struct tbucket b;

	tbucket_init(&b, 2, 10 * S);
	cr_assert_eq(tbucket_take(&b, 2, 10 * S), 0);
	cr_assert_eq(tbucket_take(&b, 1, 9 * S), S / 2);
	cr_assert_eq(b.at_ns, 10 * S);
	cr_assert_eq(tbucket_take(&b, 1, 10 * S + S / 2), 0);
}

Test(tbucket, largest_rate_does_not_overflow)
{
	struct tbucket b;

	tbucket_init(&b, UINT64_MAX, 0);
	cr_assert_eq(b.rate, TBUCKET_RATE_MAX);
	cr_assert_eq(tbucket_take(&b, TBUCKET_RATE_MAX, 0), 0);
	cr_assert_eq(tbucket_take(&b, TBUCKET_RATE_MAX, S - 1), 1);
	cr_assert_eq(tbucket_take(&b, TBUCKET_RATE_MAX, S), 0);
	tbucket_init(&b, 0, 0); /* clamped to 1/s */
	cr_assert_eq(b.rate, 1);
	cr_assert_eq(tbucket_take(&b, 1, 0), 0);
	cr_assert_eq(tbucket_take(&b, 1, 0), S);
}
