/*
 * lw_io.h: what the logwriter's raft host loop (lw_cluster.c) asks of the
 * outside world: the clock, the peer links, and waiting for work. The
 * process uses the real clock and replica/peer (lw_cluster.c's peer io);
 * tests/sim/lw_sim.c supplies a simulated clock and network, so the same
 * host loop, apply and storage code run under a seed.
 *
 * Frames are length-prefixed PeerFrames as peer_encode_* makes them. A
 * received frame body (no prefix) goes to lw_cluster_frame_in, from inside
 * poll. Every function takes the io's arg.
 */
#ifndef SLUICE_LW_IO_H
#define SLUICE_LW_IO_H

#include <stddef.h>
#include <stdint.h>

struct lw;

struct lw_io {
	/* wall-clock milliseconds: ticks, entry timestamps, timeouts */
	int64_t (*now_ms)(void *arg);
	/* the seed of raft's randomised election timeouts */
	uint64_t (*seed)(void *arg);
	/* once, before the first turn (a node alone opens nothing) */
	int (*open)(void *arg);
	void (*close)(void *arg);
	/* peer_send's contract: SL_EAGAIN if no link or no room (nothing queued) */
	int (*send)(void *arg, uint32_t to, const uint8_t *frame, size_t len);
	void (*flush)(void *arg);
	/* peer_connected, peer_link_gen, peer_last_rx_ms */
	int (*connected)(void *arg, uint32_t id);
	uint64_t (*link_gen)(void *arg, uint32_t id);
	int64_t (*last_rx_ms)(void *arg, uint32_t id);
	/* wait at most timeout_ms for frames or ring work; hand every frame
	 * that arrived to lw_cluster_frame_in */
	void (*poll)(void *arg, int timeout_ms);
	/* 1: write a snapshot copy in the loop's own thread (deterministic),
	 * not in a thread beside it */
	int snap_copy_inline;
};

/* The turn-by-turn host loop (lw_cluster.c). lw_cluster_run is
 * open + step until done + close; a simulation calls them itself. */
/* Sets up raft from the store (w->io, w->io_arg: NULL for the peer io). */
int lw_cluster_open(struct lw *w);
/* One turn of the loop: poll, tick, observe, forward or propose, persist
 * and apply, snapshots. *done = 1 when the loop ends (SIGTERM, or a
 * snapshot arrived: w->exit_reseed). An error is fatal. */
int lw_cluster_step(struct lw *w, int *done);
/* Frees the cluster state without writing anything (what a kill -9 leaves
 * on disk is what this leaves). */
void lw_cluster_close(struct lw *w);
/* A peer frame body from node `from` (what peer_process hands over). */
void lw_cluster_frame_in(struct lw *w, uint32_t from, const uint8_t *p, size_t len);

#endif
