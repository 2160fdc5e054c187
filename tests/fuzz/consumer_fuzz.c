/*
 * consumer_fuzz.c: libFuzzer target for the durable consumer state decoder
 * (replica/consumer/consumer.c): whatever it accepts encodes back to the
 * same bytes, and picks, acks and nacks on it keep it consistent.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "consumer.h"
#include "err.h"
#include "sl_assert.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cons_part p;
	struct cons_cfg cfg = {.max_in_flight = 4, .max_deliveries = 3, .ack_timeout_ms = 10};
	struct cons_action a[8];

	if (cons_decode(data, size, &p) != SL_OK)
		return 0;
	uint8_t *buf = malloc(cons_encoded_size(&p));
	SL_ASSERT(buf);
	SL_ASSERT(cons_encode(&p, buf) == size && memcmp(buf, data, size) == 0);
	free(buf);
	if (p.n)
		cons_ack(&p, p.fl[0].offset);
	if (p.n)
		cons_nack(&p, &cfg, p.fl[p.n - 1].offset, -1, 0);
	int k = cons_pick(&p, &cfg, p.next + 4, INT64_MAX / 2, a, 8);
	SL_ASSERT(k >= 0 && p.floor <= p.next);
	cons_free(&p);
	return 0;
}
