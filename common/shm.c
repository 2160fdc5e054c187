/*
 * shm.c: the node's shared-memory segment (shm.h). It is a memfd created by
 * the master before fork; children inherit the fd and may map it again with
 * shm_attach. Everything inside is located by offsets computed from the
 * header, never by stored pointers, so each process may map it anywhere.
 *
 * Layout: header, commit-table slots, per-slot traffic counters (metrics.h),
 * then per frontend a 64-byte aligned
 * struct shm_frontend followed by its pub ring and ack ring (each ring
 * footprint is a multiple of 64 bytes, so every ring is cache-line aligned).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "log.h"
#include "shm.h"

#define SHM_ALIGN 64

static size_t align64(size_t n)
{
	return (n + SHM_ALIGN - 1) & ~(size_t)(SHM_ALIGN - 1);
}

static size_t shm_frontends_off(uint32_t slots_max)
{
	size_t per_slot = sizeof(struct shm_slot) + sizeof(struct shm_slot_stats);
	return align64(sizeof(struct shm_header) + (size_t)slots_max * per_slot);
}

static size_t shm_frontend_stride(size_t ring_bytes)
{
	return align64(sizeof(struct shm_frontend)) + 2 * ring_footprint(ring_bytes);
}

static int shm_layout_bytes(uint32_t frontends, uint32_t slots_max, uint64_t ring_bytes, size_t *bytes)
{
	if (frontends < 1 || frontends > SHM_FRONTENDS_MAX || slots_max < 1 || slots_max > (1u << 24))
		return SL_EINVAL;
	if (ring_bytes < 4096 || ring_bytes > (1ull << 32) || (ring_bytes & (ring_bytes - 1)) != 0)
		return SL_EINVAL;
	*bytes = shm_frontends_off(slots_max) + (size_t)frontends * shm_frontend_stride((size_t)ring_bytes);
	return SL_OK;
}

static uint64_t shm_random64(void)
{
	uint64_t v = 0;
	if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v))
		v = time_mono_ns() ^ ((uint64_t)getpid() << 32);
	return v ? v : 1;
}

static void shm_init_layout(struct shm *s, uint32_t node_id, uint32_t frontends, uint32_t slots_max, size_t ring_bytes)
{
	struct shm_header *h = s->hdr;
	h->magic = SHM_MAGIC;
	h->node_id = node_id;
	h->frontends = frontends;
	h->slots_max = slots_max;
	h->ring_bytes = ring_bytes;
	h->started_ms = time_now_ms();
	h->instance = shm_random64();
	for (uint32_t i = 0; i < frontends; i++) {
		ring_init(shm_pub_ring(s, i), ring_bytes);
		ring_init(shm_ack_ring(s, i), ring_bytes);
	}
}

int shm_create(struct shm *out, int *fd_out, uint32_t node_id, uint32_t frontends, uint32_t slots_max,
               size_t ring_bytes)
{
	size_t bytes;
	int err = shm_layout_bytes(frontends, slots_max, ring_bytes, &bytes);
	if (err)
		return err;
	int fd = memfd_create("sluice-shm", MFD_CLOEXEC);
	if (fd < 0)
		return sl_err_from_errno(errno);
	void *base = MAP_FAILED;
	if (ftruncate(fd, (off_t)bytes) < 0) {
		err = sl_err_from_errno(errno);
		goto fail;
	}
	base = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (base == MAP_FAILED) {
		err = sl_err_from_errno(errno);
		goto fail;
	}
	memset(out, 0, sizeof(*out));
	out->base = base;
	out->bytes = bytes;
	out->hdr = base;
	out->slots = (struct shm_slot *)((uint8_t *)base + sizeof(struct shm_header));
	out->slot_stats = (struct shm_slot_stats *)(out->slots + slots_max);
	/* ftruncate zero-filled the segment: all slots free, all counters 0. */
	shm_init_layout(out, node_id, frontends, slots_max, ring_bytes);
	*fd_out = fd;
	return SL_OK;
fail:
	close(fd);
	return err;
}

int shm_attach(struct shm *out, int fd)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return sl_err_from_errno(errno);
	if (st.st_size < (off_t)sizeof(struct shm_header))
		return SL_ECORRUPT;
	size_t bytes = (size_t)st.st_size;
	void *base = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (base == MAP_FAILED)
		return sl_err_from_errno(errno);
	const struct shm_header *h = base;
	size_t need;
	int err = SL_ECORRUPT;
	if (h->magic != SHM_MAGIC || shm_layout_bytes(h->frontends, h->slots_max, h->ring_bytes, &need) || need > bytes)
		goto fail;
	memset(out, 0, sizeof(*out));
	out->base = base;
	out->bytes = bytes;
	out->hdr = base;
	out->slots = (struct shm_slot *)((uint8_t *)base + sizeof(struct shm_header));
	out->slot_stats = (struct shm_slot_stats *)(out->slots + h->slots_max);
	return SL_OK;
fail:
	munmap(base, bytes);
	return err;
}

void shm_detach(struct shm *s)
{
	if (s->base)
		munmap(s->base, s->bytes);
	memset(s, 0, sizeof(*s));
}

static uint8_t *shm_frontend_base(struct shm *s, uint32_t i)
{
	/* i comes from our own code (frontend index), not from the world. */
	if (i >= s->hdr->frontends)
		return NULL;
	size_t off = shm_frontends_off(s->hdr->slots_max) + (size_t)i * shm_frontend_stride(s->hdr->ring_bytes);
	return (uint8_t *)s->base + off;
}

struct shm_frontend *shm_frontend(struct shm *s, uint32_t i)
{
	return (struct shm_frontend *)shm_frontend_base(s, i);
}

struct ring *shm_pub_ring(struct shm *s, uint32_t i)
{
	uint8_t *p = shm_frontend_base(s, i);
	return p ? (struct ring *)(p + align64(sizeof(struct shm_frontend))) : NULL;
}

struct ring *shm_ack_ring(struct shm *s, uint32_t i)
{
	uint8_t *p = shm_frontend_base(s, i);
	return p ? (struct ring *)(p + align64(sizeof(struct shm_frontend)) + ring_footprint(s->hdr->ring_bytes))
	         : NULL;
}

void shm_cluster_read(const struct shm_cluster *src, struct shm_cluster *dst)
{
	memset(dst, 0, sizeof(*dst));
	dst->enabled = shm_load(&src->enabled);
	dst->role = shm_stat_load(&src->role);
	dst->leader_id = shm_stat_load(&src->leader_id);
	dst->n_nodes = shm_stat_load(&src->n_nodes);
	dst->term = shm_stat_load(&src->term);
	dst->first_index = shm_stat_load(&src->first_index);
	dst->last_index = shm_stat_load(&src->last_index);
	dst->commit_index = shm_stat_load(&src->commit_index);
	dst->applied_index = shm_stat_load(&src->applied_index);
	dst->updated_ms = shm_stat_load(&src->updated_ms);
	dst->epoch = shm_load(&src->epoch);
	for (size_t i = 0; i < SHM_NODES_MAX; i++) {
		dst->nodes[i].id = shm_stat_load(&src->nodes[i].id);
		dst->nodes[i].reachable = shm_stat_load(&src->nodes[i].reachable);
		dst->nodes[i].match_index = shm_stat_load(&src->nodes[i].match_index);
		dst->nodes[i].last_contact_ms = shm_stat_load(&src->nodes[i].last_contact_ms);
	}
}
