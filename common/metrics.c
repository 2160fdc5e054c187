/*
 * metrics.c: histogram buckets and helpers of the shared-segment metrics
 * (metrics.h).
 */
#include "metrics.h"
#include "shm.h"

const uint64_t metrics_bucket_ns[METRICS_BUCKETS] = {
    100000ull,    250000ull,    500000ull,     1000000ull,    2500000ull,    5000000ull,
    10000000ull,  25000000ull,  50000000ull,   100000000ull,  250000000ull,  500000000ull,
    1000000000ull, 2500000000ull, 5000000000ull, 10000000000ull,
};

void metrics_hist_observe(struct shm_hist *h, uint64_t ns)
{
	unsigned lo = 0, hi = METRICS_BUCKETS;

	/* first bound >= ns; METRICS_BUCKETS (the +Inf bucket) if none */
	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;
		if (metrics_bucket_ns[mid] >= ns)
			hi = mid;
		else
			lo = mid + 1;
	}
	shm_stat_add(&h->bucket[lo], 1);
	shm_stat_add(&h->sum_ns, ns);
}

const char *metrics_proto_name(enum metrics_proto p)
{
	static const char *const names[METRICS_PROTOS] = {"native", "http", "sse", "ws"};
	return (unsigned)p < METRICS_PROTOS ? names[p] : "unknown";
}
