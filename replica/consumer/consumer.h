/*
 * consumer.h: the state machine of one partition of a durable consumer
 * (issue "reliable push"): which offsets are delivered, acknowledged,
 * waiting for a retry or for their ack, and which go to the dead-letter
 * topic. Pure: no I/O, no clock (time comes in as `now_ms`), no allocation
 * other than the in-flight array, so the logwriter can apply it from log
 * entries on every node and a simulation or a unit test can drive it.
 *
 * State of a partition:
 *   floor   every offset below it is acknowledged or dead-lettered
 *   next    the lowest offset never delivered
 *   fl      the offsets of [floor, next) not acknowledged yet, in order,
 *           each with its delivery count and a due time: when its ack
 *           times out (CS_WAIT_ACK) or when it may be delivered again
 *           (CS_WAIT_RETRY, after a nack or a failed attempt)
 * Offsets of [floor, next) that are not in fl are acknowledged. floor is the
 * lowest offset in fl, or next when fl is empty.
 *
 * Modes: ordered (a partition's next message waits until the previous one
 * is acknowledged or dead-lettered: one in flight) or shared (up to
 * max_in_flight per partition, in any order of acks).
 *
 * cons_pick() says what to do now: deliver (a new offset, or a redelivery
 * whose time came) or dead-letter (delivered max_deliveries times and not
 * acknowledged). The caller records each action in the log before it acts,
 * so every node holds the same state and a failover redelivers at most what
 * was in flight.
 */
#ifndef SLUICE_CONSUMER_H
#define SLUICE_CONSUMER_H

#include <stddef.h>
#include <stdint.h>

#define CONS_SCHEDULE_MAX 16
#define CONS_IN_FLIGHT_MAX 65536

struct cons_cfg {
	int ordered;                   /* 1: one in flight per partition, in offset order */
	uint32_t max_in_flight;        /* shared mode: per partition (1 .. CONS_IN_FLIGHT_MAX) */
	uint32_t max_deliveries;       /* then the message is dead-lettered (0: never) */
	uint32_t ack_timeout_ms;       /* an unacknowledged delivery is delivered again after this */
	uint32_t nschedule;            /* retry delays after a nack without a delay of its own: */
	uint32_t schedule_ms[CONS_SCHEDULE_MAX]; /* delay before attempt k+1 is schedule_ms[min(k, n-1)] */
	uint32_t jitter_pct;           /* a schedule delay moves by up to this % either way (0: none), by a
	                                  hash of offset and attempt: the same on every node */
};

enum cons_wait { CS_WAIT_ACK = 1, CS_WAIT_RETRY = 2 };

struct cons_flight {
	uint64_t offset;
	int64_t due_ms;                /* ack deadline (CS_WAIT_ACK) or retry time (CS_WAIT_RETRY) */
	uint32_t deliveries;           /* times delivered so far */
	uint8_t wait;                  /* enum cons_wait */
};

struct cons_part {
	uint64_t floor, next;
	struct cons_flight *fl;        /* sorted by offset */
	size_t n, cap;
};

enum cons_act_kind { CA_DELIVER = 1, CA_DEAD_LETTER = 2 };

struct cons_action {
	enum cons_act_kind kind;
	uint64_t offset;
	uint32_t attempt;              /* CA_DELIVER: 1 for the first delivery; CA_DEAD_LETTER: deliveries made */
};

/* A partition that starts at `from` (the first offset to deliver). */
void cons_init(struct cons_part *p, uint64_t from);
void cons_free(struct cons_part *p);

/* Up to max actions to take now, given the committed end of the partition,
 * applied to p as they are returned (deliveries are in flight, dead
 * letters are done). Redeliveries and dead letters come first, in offset
 * order, then new offsets. Returns the number of actions, or -1 (out of
 * memory, p unchanged by the failing action). */
int cons_pick(struct cons_part *p, const struct cons_cfg *cfg, uint64_t end, int64_t now_ms, struct cons_action *out,
              size_t max);
/* cons_pick, but with dead_letter 0 a message due for its dead letter is
 * left where it is (in flight, due): the caller cannot write it now. */
int cons_pick_ex(struct cons_part *p, const struct cons_cfg *cfg, uint64_t end, int64_t now_ms,
                 struct cons_action *out, size_t max, int dead_letter);
/* What cons_pick would do now, without doing it: 1 if it would return an
 * action; *dead_letter = 1 if one of them would be a dead letter. *next_due_ms
 * is the earliest due time in flight that is still to come (INT64_MAX: none). */
int cons_due(const struct cons_part *p, const struct cons_cfg *cfg, uint64_t end, int64_t now_ms, int *dead_letter,
             int64_t *next_due_ms);

/* The consumer acknowledged offset (done for good). 1 if it was in flight,
 * 0 if it was not (acknowledged before, dead-lettered, never delivered). */
int cons_ack(struct cons_part *p, uint64_t offset);
/* Negative acknowledgement: deliver offset again after delay_ms (< 0: the
 * configured schedule for its attempt). 1 if it was in flight, else 0. */
int cons_nack(struct cons_part *p, const struct cons_cfg *cfg, uint64_t offset, int64_t delay_ms, int64_t now_ms);
/* Offsets below first are gone (retention): they leave the in-flight set
 * and delivery goes on from first. Returns how many in flight were dropped. */
size_t cons_advance(struct cons_part *p, uint64_t first);

/* The consumer is still working on offset: its ack deadline moves to
 * now + ack_timeout. 1 if it was waiting for its ack, else 0. */
int cons_in_progress(struct cons_part *p, const struct cons_cfg *cfg, uint64_t offset, int64_t now_ms);

/* In flight now (delivered or waiting for a retry, not acknowledged). */
static inline size_t cons_in_flight(const struct cons_part *p)
{
	return p->n;
}

/* The state as bytes (for the store and snapshots), and back. Decoding
 * checks every length and that the state is consistent (sorted, inside
 * [floor, next)) before it allocates; SL_OK, SL_EMALFORMED or SL_ENOMEM. */
size_t cons_encoded_size(const struct cons_part *p);
size_t cons_encode(const struct cons_part *p, uint8_t *out);
int cons_decode(const uint8_t *in, size_t len, struct cons_part *p);

/*
 * A partition's stored state (db "cstate", replica/storage/consumers.c):
 * counters for operators, the last nack error, then the cons_encode bytes.
 *   u64 delivered, redelivered, acked, dead_lettered (little-endian),
 *   u64 error_offset, u16 error_len, error bytes, cons_encode bytes
 */
#define CONS_ERROR_MAX 200

struct cons_stats {
	uint64_t delivered;            /* deliveries made, redeliveries included */
	uint64_t redelivered;
	uint64_t acked;
	uint64_t dead_lettered;
	uint64_t error_offset;         /* the message the last error was given for */
	uint16_t error_len;
	char error[CONS_ERROR_MAX + 1]; /* NUL-terminated */
};

size_t cons_state_size(const struct cons_part *p, const struct cons_stats *st);
size_t cons_state_encode(const struct cons_part *p, const struct cons_stats *st, uint8_t *out);
/* Checks every length before it allocates; SL_OK, SL_EMALFORMED, SL_ENOMEM. */
int cons_state_decode(const uint8_t *in, size_t len, struct cons_part *p, struct cons_stats *st);

#endif
