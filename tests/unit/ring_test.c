/*
 * ring_test.c: the SPSC ring (common/ring.c) and the shm segment that holds
 * it: record order and bytes, PAD records at the wrap, backpressure,
 * skip_to, the sleep/wake flag, and a two-process run over a memfd segment.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "err.h"
#include "log.h"
#include "ring.h"
#include "shm.h"

#define DATA_BYTES 4096

static void *mem;
static struct ring *r;

static void ring_setup(void)
{
	mem = aligned_alloc(64, ring_footprint(DATA_BYTES));
	cr_assert_not_null(mem);
	memset(mem, 0xAB, ring_footprint(DATA_BYTES));
	r = ring_init(mem, DATA_BYTES);
}

static void ring_teardown(void)
{
	free(mem);
}

TestSuite(ring, .init = ring_setup, .fini = ring_teardown, .timeout = 30);

static void fill(uint8_t *p, uint32_t len, uint32_t seed)
{
	for (uint32_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed * 31 + i);
}

static int check(const uint8_t *p, uint32_t len, uint32_t seed)
{
	for (uint32_t i = 0; i < len; i++)
		if (p[i] != (uint8_t)(seed * 31 + i))
			return 0;
	return 1;
}

Test(ring, init_state)
{
	cr_assert_eq(ring_tail(r), 0);
	cr_assert_eq(r->head, 0);
	cr_assert_eq(r->reader_sleeping, 0);
	cr_assert_eq(ring_free_bytes(r), DATA_BYTES);
	cr_assert_eq(ring_payload_max(r), DATA_BYTES / 4 - RING_HDR_BYTES);
	cr_assert_eq(((uintptr_t)r->data) % 64, 0);
	uint64_t pos = ring_tail(r);
	uint16_t type;
	const uint8_t *p;
	uint32_t len;
	cr_assert_eq(ring_peek(r, &pos, &type, &p, &len), 0);
	cr_assert_eq(pos, 0);
}

Test(ring, push_peek_release_order)
{
	uint8_t buf[100];
	for (uint32_t i = 0; i < 10; i++) {
		fill(buf, i * 7, i);
		int wake = -1;
		cr_assert_eq(ring_push(r, (uint16_t)(i + 1), buf, i * 7, &wake), SL_OK);
		cr_assert_eq(wake, 0);
	}
	uint64_t pos = ring_tail(r);
	for (uint32_t i = 0; i < 10; i++) {
		uint16_t type;
		const uint8_t *p;
		uint32_t len;
		cr_assert_eq(ring_peek(r, &pos, &type, &p, &len), 1);
		cr_assert_eq(type, i + 1);
		cr_assert_eq(len, i * 7);
		cr_assert_eq(((uintptr_t)p) % 8, 0);
		cr_assert(check(p, len, i));
	}
	uint16_t type;
	const uint8_t *p;
	uint32_t len;
	cr_assert_eq(ring_peek(r, &pos, &type, &p, &len), 0);
	/* Peeking released nothing. */
	cr_assert_eq(ring_tail(r), 0);
	cr_assert_eq(pos, r->head);
	cr_assert_lt(ring_free_bytes(r), DATA_BYTES);
	/* Peek again from the tail sees the same first record. */
	uint64_t again = ring_tail(r);
	cr_assert_eq(ring_peek(r, &again, &type, &p, &len), 1);
	cr_assert_eq(type, 1);
	ring_release(r, pos);
	cr_assert_eq(ring_tail(r), pos);
	cr_assert_eq(ring_free_bytes(r), DATA_BYTES);
}

Test(ring, reserve_commit_visible_only_after_commit)
{
	uint8_t *dst = ring_reserve(r, 5, 16);
	cr_assert_not_null(dst);
	memcpy(dst, "0123456789abcdef", 16);
	uint64_t pos = 0;
	uint16_t type;
	const uint8_t *p;
	uint32_t len;
	cr_assert_eq(ring_peek(r, &pos, &type, &p, &len), 0);
	int wake = -1;
	ring_commit(r, &wake);
	cr_assert_eq(wake, 0);
	cr_assert_eq(ring_peek(r, &pos, &type, &p, &len), 1);
	cr_assert_eq(type, 5);
	cr_assert_eq(len, 16);
	cr_assert_eq(memcmp(p, "0123456789abcdef", 16), 0);
	cr_assert_eq(pos, 24);
}

Test(ring, wrap_with_pad)
{
	/* 3 records of 1000 payload (1008 bytes each) leave head at 3024; the
	 * fourth needs 1008 but only 1072 remain before the end: fits. A fifth
	 * then must PAD the last 64 bytes and start at offset 0. */
	uint8_t buf[1000];
	uint64_t pos = 0;
	uint16_t type;
	const uint8_t *p;
	uint32_t len;
	for (uint32_t i = 0; i < 4; i++) {
		fill(buf, sizeof(buf), i);
		cr_assert_eq(ring_push(r, 1, buf, sizeof(buf), NULL), SL_OK);
	}
	cr_assert_eq(r->head, 4032);
	/* Full: 64 bytes free, and a PAD would be needed anyway. */
	cr_assert_eq(ring_push(r, 1, buf, sizeof(buf), NULL), SL_EAGAIN);
	cr_assert_null(ring_reserve(r, 1, 100));
	for (uint32_t i = 0; i < 2; i++) {
		cr_assert_eq(ring_peek(r, &pos, &type, &p, &len), 1);
		cr_assert(check(p, len, i));
	}
	ring_release(r, pos);
	fill(buf, sizeof(buf), 4);
	cr_assert_eq(ring_push(r, 2, buf, sizeof(buf), NULL), SL_OK);
	cr_assert_eq(r->head, 4096 + 1008, "PAD of 64 bytes then the record at offset 0");
	for (uint32_t i = 2; i < 5; i++) {
		cr_assert_eq(ring_peek(r, &pos, &type, &p, &len), 1);
		cr_assert_eq(len, 1000);
		cr_assert(check(p, len, i), "record %u", i);
		if (i == 4) {
			cr_assert_eq(type, 2);
			cr_assert_eq(p, r->data + RING_HDR_BYTES, "record after PAD starts at offset 0");
		}
	}
	cr_assert_eq(ring_peek(r, &pos, &type, &p, &len), 0);
	cr_assert_eq(pos, 4096 + 1008);
	ring_release(r, pos);
	cr_assert_eq(ring_free_bytes(r), DATA_BYTES);
}

/* ring_room2 says yes exactly when both records can be reserved one after
 * the other now, PADs included. */
Test(ring, room2_counts_both_records_and_pads)
{
	uint8_t buf[1000];
	uint64_t pos = 0;
	uint16_t type;
	const uint8_t *p;
	uint32_t len;
	memset(buf, 1, sizeof(buf));
	cr_assert(ring_room2(r, 1000, 1000));
	cr_assert_not(ring_room2(r, 1000, (uint32_t)ring_payload_max(r) + 1), "over the record limit");
	for (int i = 0; i < 3; i++)
		cr_assert_eq(ring_push(r, 1, buf, sizeof(buf), NULL), SL_OK);
	/* head 3024, 1072 free: one 1008-byte record fits, not two */
	cr_assert(ring_room2(r, 1000, 0) && !ring_room2(r, 1000, 100));
	cr_assert_eq(ring_peek(r, &pos, &type, &p, &len), 1);
	ring_release(r, pos); /* 2080 free; a second 1000 would need a 64-byte PAD first */
	cr_assert(ring_room2(r, 1000, 1000));
	cr_assert(ring_room2(r, 1000, 56));
	for (int i = 0; i < 2; i++) {
		cr_assert_not_null(ring_reserve(r, 1, 1000), "room2 said both fit");
		ring_commit(r, NULL);
	}
	cr_assert_not(ring_room2(r, 0, 0), "full");
}

Test(ring, full_then_recovers)
{
	uint8_t buf[56];
	uint32_t n = 0;
	while (ring_push(r, 3, buf, sizeof(buf), NULL) == SL_OK)
		n++;
	cr_assert_eq(n, DATA_BYTES / 64);
	cr_assert_eq(ring_free_bytes(r), 0);
	int wake = -1;
	cr_assert_eq(ring_push(r, 3, buf, 0, &wake), SL_EAGAIN);
	cr_assert_eq(wake, 0);
	uint64_t pos = ring_tail(r);
	uint16_t type;
	const uint8_t *p;
	uint32_t len;
	cr_assert_eq(ring_peek(r, &pos, &type, &p, &len), 1);
	ring_release(r, pos);
	cr_assert_eq(ring_free_bytes(r), 64);
	cr_assert_eq(ring_push(r, 3, buf, sizeof(buf), NULL), SL_OK);
	cr_assert_eq(ring_push(r, 3, buf, sizeof(buf), NULL), SL_EAGAIN);
}

Test(ring, payload_max_enforced_and_always_fits)
{
	uint32_t max = (uint32_t)ring_payload_max(r);
	cr_assert_null(ring_reserve(r, 1, max + 1));
	static uint8_t big[DATA_BYTES];
	/* At every 8-byte head offset, a max record fits in an empty ring. */
	for (uint32_t i = 0; i < DATA_BYTES / 8 + 3; i++) {
		cr_assert_eq(ring_push(r, 1, big, max, NULL), SL_OK, "offset %llu", (unsigned long long)r->head);
		uint64_t pos = ring_tail(r);
		uint16_t type;
		const uint8_t *p;
		uint32_t len;
		cr_assert_eq(ring_peek(r, &pos, &type, &p, &len), 1);
		cr_assert_eq(len, max);
		ring_release(r, pos);
		/* Shift the head by 8 for the next round. */
		cr_assert_eq(ring_push(r, 1, big, 0, NULL), SL_OK);
		pos = ring_tail(r);
		cr_assert_eq(ring_peek(r, &pos, &type, &p, &len), 1);
		ring_release(r, pos);
	}
}

Test(ring, skip_to)
{
	uint8_t buf[8] = {0};
	uint64_t ends[5];
	for (int i = 0; i < 5; i++) {
		buf[0] = (uint8_t)i;
		cr_assert_eq(ring_push(r, 1, buf, sizeof(buf), NULL), SL_OK);
		ends[i] = r->head;
	}
	ring_skip_to(r, ends[2]);
	cr_assert_eq(ring_tail(r), ends[2]);
	/* Backwards is ignored. */
	ring_skip_to(r, ends[0]);
	cr_assert_eq(ring_tail(r), ends[2]);
	uint64_t pos = ring_tail(r);
	uint16_t type;
	const uint8_t *p;
	uint32_t len;
	cr_assert_eq(ring_peek(r, &pos, &type, &p, &len), 1);
	cr_assert_eq(p[0], 3);
	/* Past head is clamped to head. */
	ring_skip_to(r, ends[4] + 4096);
	cr_assert_eq(ring_tail(r), ends[4]);
	cr_assert_eq(ring_free_bytes(r), DATA_BYTES);
}

Test(ring, sleep_flag_and_wake)
{
	int wake = -1;
	cr_assert_eq(ring_push(r, 1, "a", 1, &wake), SL_OK);
	cr_assert_eq(wake, 0, "reader awake: no wake-up");
	ring_sleep_prepare(r);
	cr_assert_eq(r->reader_sleeping, 1);
	cr_assert_eq(ring_push(r, 1, "b", 1, &wake), SL_OK);
	cr_assert_eq(wake, 1, "reader asleep: producer must write the eventfd");
	/* One wake-up per sleep: the producer consumed the flag. */
	cr_assert_eq(ring_push(r, 1, "c", 1, &wake), SL_OK);
	cr_assert_eq(wake, 0);
	ring_sleep_done(r);
	cr_assert_eq(r->reader_sleeping, 0);
	ring_sleep_prepare(r);
	ring_sleep_done(r);
	cr_assert_eq(ring_push(r, 1, "d", 1, &wake), SL_OK);
	cr_assert_eq(wake, 0, "reader woke up on its own: no wake-up");
	/* A failed push never asks for a wake-up. */
	ring_sleep_prepare(r);
	cr_assert_eq(ring_push(r, 1, NULL, DATA_BYTES, &wake), SL_EAGAIN);
	cr_assert_eq(wake, 0);
}

/* ---- two processes over a memfd segment ---- */

#define XP_RECORDS 1000000u
#define XP_RING_BYTES (64u * 1024)
#define XP_LEN_MAX 300u
#define XP_DEADLINE_NS (60ull * 1000000000ull)

static uint32_t xp_len(uint32_t seq)
{
	return 4 + (seq * 2654435761u >> 7) % (XP_LEN_MAX - 4);
}

static void xp_fill(uint8_t *p, uint32_t seq)
{
	uint32_t len = xp_len(seq);
	memcpy(p, &seq, 4);
	for (uint32_t i = 4; i < len; i++)
		p[i] = (uint8_t)(seq ^ (i * 7));
}

static int xp_producer(struct ring *pr)
{
	unsigned long long deadline = time_mono_ns() + XP_DEADLINE_NS;
	for (uint32_t seq = 0; seq < XP_RECORDS;) {
		uint8_t *dst = ring_reserve(pr, (uint16_t)(seq % 1000 + 1), xp_len(seq));
		if (!dst) {
			if (time_mono_ns() > deadline)
				return 2;
			continue;
		}
		xp_fill(dst, seq);
		ring_commit(pr, NULL);
		seq++;
	}
	return 0;
}

static void xp_consume(struct ring *cr)
{
	unsigned long long deadline = time_mono_ns() + XP_DEADLINE_NS;
	uint32_t seq = 0;
	uint8_t want[XP_LEN_MAX];
	while (seq < XP_RECORDS) {
		uint64_t pos = ring_tail(cr);
		uint16_t type;
		const uint8_t *p;
		uint32_t len;
		int got = 0;
		while (seq < XP_RECORDS && ring_peek(cr, &pos, &type, &p, &len)) {
			xp_fill(want, seq);
			if (len != xp_len(seq) || type != seq % 1000 + 1 || memcmp(p, want, len) != 0)
				cr_assert_fail("record %u: len %u type %u mismatch", seq, len, type);
			seq++;
			got = 1;
		}
		if (got)
			ring_release(cr, pos);
		else if (time_mono_ns() > deadline)
			cr_assert_fail("timed out at record %u", seq);
	}
	uint64_t pos = ring_tail(cr);
	uint16_t type;
	const uint8_t *p;
	uint32_t len;
	cr_assert_eq(ring_peek(cr, &pos, &type, &p, &len), 0, "no record after the last");
}

Test(ring_shm, two_processes_million_records, .timeout = 120)
{
	struct shm s;
	int fd = -1;
	cr_assert_eq(shm_create(&s, &fd, 7, 2, 16, XP_RING_BYTES), SL_OK);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		/* The child maps the segment again from the fd, at another address. */
		struct shm c;
		if (shm_attach(&c, fd) != SL_OK)
			_exit(3);
		_exit(xp_producer(shm_pub_ring(&c, 1)));
	}
	xp_consume(shm_pub_ring(&s, 1));
	int status = 0;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "producer status %d", status);
	shm_detach(&s);
	close(fd);
}

Test(ring_shm, layout)
{
	struct shm s, a;
	int fd = -1;
	cr_assert_eq(shm_create(&s, &fd, 3, 4, 100, 8192), SL_OK);
	cr_assert_eq(s.hdr->magic, SHM_MAGIC);
	cr_assert_eq(s.hdr->node_id, 3);
	cr_assert_eq(s.hdr->frontends, 4);
	cr_assert_eq(s.hdr->slots_max, 100);
	cr_assert_eq(s.hdr->ring_bytes, 8192);
	cr_assert_neq(s.hdr->instance, 0);
	cr_assert_eq(s.slots[99].topic_id, 0);
	uint8_t *end = (uint8_t *)s.base + s.bytes;
	for (uint32_t i = 0; i < 4; i++) {
		struct ring *p = shm_pub_ring(&s, i), *k = shm_ack_ring(&s, i);
		cr_assert_eq((uintptr_t)p % 64, 0);
		cr_assert_eq((uintptr_t)k % 64, 0);
		cr_assert_eq(p->data_bytes, 8192);
		cr_assert_eq(k->data_bytes, 8192);
		cr_assert_geq((uint8_t *)p, (uint8_t *)(shm_frontend(&s, i) + 1));
		cr_assert_geq((uint8_t *)k, (uint8_t *)p + ring_footprint(8192));
		cr_assert_leq((uint8_t *)k + ring_footprint(8192), end);
		cr_assert_geq((uint8_t *)shm_frontend(&s, i), (uint8_t *)(s.slots + 100));
	}
	cr_assert_null(shm_pub_ring(&s, 4));
	/* A write through one mapping is seen through another. */
	cr_assert_eq(shm_attach(&a, fd), SL_OK);
	cr_assert_neq(a.base, s.base);
	cr_assert_eq(ring_push(shm_ack_ring(&s, 2), 9, "xyz", 3, NULL), SL_OK);
	uint64_t pos = 0;
	uint16_t type;
	const uint8_t *p;
	uint32_t len;
	cr_assert_eq(ring_peek(shm_ack_ring(&a, 2), &pos, &type, &p, &len), 1);
	cr_assert_eq(type, 9);
	cr_assert_eq(memcmp(p, "xyz", 3), 0);
	shm_frontend(&a, 3)->pid = 1234;
	cr_assert_eq(shm_frontend(&s, 3)->pid, 1234);
	shm_detach(&a);
	shm_detach(&s);
	close(fd);
}

Test(ring_shm, bad_arguments)
{
	struct shm s;
	int fd = -1;
	cr_assert_eq(shm_create(&s, &fd, 1, 0, 10, 8192), SL_EINVAL);
	cr_assert_eq(shm_create(&s, &fd, 1, SHM_FRONTENDS_MAX + 1, 10, 8192), SL_EINVAL);
	cr_assert_eq(shm_create(&s, &fd, 1, 1, 10, 5000), SL_EINVAL);
	cr_assert_eq(shm_create(&s, &fd, 1, 1, 10, 2048), SL_EINVAL);
	/* Attaching to something that is not a segment fails cleanly. */
	int mfd = memfd_create("not-shm", 0);
	cr_assert_geq(mfd, 0);
	cr_assert_eq(ftruncate(mfd, 65536), 0);
	cr_assert_eq(shm_attach(&s, mfd), SL_ECORRUPT);
	cr_assert_eq(ftruncate(mfd, 10), 0);
	cr_assert_eq(shm_attach(&s, mfd), SL_ECORRUPT);
	close(mfd);
}

/* Sleep protocol across processes with a real eventfd: the consumer sleeps,
 * the producer pushes and wakes it; no wake-up is lost over many rounds. */
#include <poll.h>
#include <sys/eventfd.h>

Test(ring_shm, eventfd_wakeups_not_lost, .timeout = 60)
{
	struct shm s;
	int fd = -1;
	cr_assert_eq(shm_create(&s, &fd, 1, 1, 1, 4096), SL_OK);
	int efd = eventfd(0, EFD_NONBLOCK);
	cr_assert_geq(efd, 0);
	struct ring *rr = shm_pub_ring(&s, 0);
	const uint32_t rounds = 20000;
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		unsigned long long deadline = time_mono_ns() + XP_DEADLINE_NS;
		for (uint32_t i = 0; i < rounds;) {
			int wake = 0;
			if (ring_push(rr, 1, &i, 4, &wake) != SL_OK) {
				if (time_mono_ns() > deadline)
					_exit(5);
				continue;
			}
			if (wake) {
				uint64_t one = 1;
				if (write(efd, &one, 8) != 8)
					_exit(4);
			}
			i++;
		}
		_exit(0);
	}
	uint32_t next = 0;
	while (next < rounds) {
		uint64_t pos = ring_tail(rr);
		uint16_t type;
		const uint8_t *p;
		uint32_t len;
		ring_sleep_prepare(rr);
		if (!ring_peek(rr, &pos, &type, &p, &len)) {
			struct pollfd pfd = {.fd = efd, .events = POLLIN};
			/* A lost wake-up would show up as this poll timing out. */
			cr_assert_eq(poll(&pfd, 1, 5000), 1, "lost wake-up at record %u", next);
			uint64_t v;
			cr_assert_eq(read(efd, &v, 8), 8);
		}
		ring_sleep_done(rr);
		pos = ring_tail(rr);
		while (ring_peek(rr, &pos, &type, &p, &len)) {
			uint32_t got;
			memcpy(&got, p, 4);
			cr_assert_eq(got, next);
			next++;
		}
		ring_release(rr, pos);
	}
	int status = 0;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(efd);
	shm_detach(&s);
	close(fd);
}
