/*
 * peer.h: the TCP links between the logwriters of a cluster, and the codec of
 * their frames (proto/cluster.proto).
 *
 * Each node dials every peer and sends only on the link it dialled; it
 * receives on the links its peers dialled (so there is no race deciding which
 * of two simultaneous connections wins). A dial that fails or a link that
 * drops is retried with exponential backoff (backoff_min_ms .. backoff_max_ms).
 * The first frame on every link is PeerHello (node id, version, cluster id);
 * an incoming link that names an unknown node, this node, or another cluster
 * id is closed.
 *
 * With a TLS context (common/tls.h, tls_peer_ctx_new) every link is mutual
 * TLS: both sides present a certificate from the cluster CA, a dialled node
 * must present a certificate naming its id (URI:sluice:node:<id>), and an
 * accepted link's hello must name the id of its certificate. A link that
 * fails either is closed before any frame is handed over.
 *
 * Sending is bounded: each peer has an output window of send_bytes_max; a
 * frame that does not fit (or a peer with no link) is refused with SL_EAGAIN
 * and the caller drops it (raft retransmits) or retries later (forwards).
 * Every link is a libevent bufferevent on the caller's event_base; the
 * caller runs the base (the logwriter's loop) and then calls peer_deliver,
 * which hands over the frames that arrived. The module never sleeps.
 *
 * Received frames are checked before anything is allocated: a length over
 * frame_bytes_max or a frame protobuf-c cannot decode closes that link.
 */
#ifndef SLUICE_PEER_H
#define SLUICE_PEER_H

#include <stddef.h>
#include <stdint.h>

#include "raft.h"

struct event_base;
struct peer_net;
struct ssl_ctx_st; /* OpenSSL's SSL_CTX */

struct peer_addr {
	uint32_t id;
	char host[256];
	uint16_t port;
};

struct peer_opts {
	uint32_t self_id;
	const struct peer_addr *nodes;  /* every node, this one included: its address is where it listens */
	size_t n_nodes;
	uint64_t cluster_id;
	size_t send_bytes_max;          /* per-peer output window; 0: 64 MiB */
	uint32_t frame_bytes_max;       /* largest frame accepted; 0: 64 MiB */
	uint32_t backoff_min_ms;        /* 0: 50 */
	uint32_t backoff_max_ms;        /* 0: 2000 */
	struct event_base *base;        /* where the links live; the caller runs it */
	/* each complete frame (without its length prefix), from peer_deliver;
	 * the bytes are valid only during the call, which may peer_send */
	void (*on_frame)(void *arg, uint32_t from, const uint8_t *p, size_t len);
	void *arg;
	/* mutual TLS for links accepted and dialled (NULL: plain TCP); the net
	 * takes a reference */
	struct ssl_ctx_st *tls;
};

/* Listens on this node's address and dials every peer at once (SL_EIO with
 * a log line if it cannot listen). */
int peer_net_open(struct peer_net **out, const struct peer_opts *o);
void peer_net_close(struct peer_net *n);

/* A new TLS context (a reloaded certificate) for the links made from now on;
 * links already up keep theirs. SL_EINVAL on a plain net (a restart turns
 * TLS on or off). */
int peer_net_set_tls(struct peer_net *n, struct ssl_ctx_st *tls);

/* Queue an encoded frame (length prefix included) for `to`. Copies it.
 * SL_EAGAIN: no link or window full (nothing queued); SL_ETOOLARGE: the frame
 * could never fit; SL_EINVAL: unknown node or a bad length prefix. Must not
 * be called with on_frame's net closed (on_frame must not close the net). */
int peer_send(struct peer_net *n, uint32_t to, const uint8_t *frame, size_t len);
/* Write what the links' queues hold now, as far as the sockets take it
 * without blocking (one non-blocking round of the base; the loop writes the
 * rest when they are writable). Frames read meanwhile wait for peer_deliver.
 * Not from inside the base's loop. */
void peer_flush(struct peer_net *n);

/* Hand every complete frame that arrived to on_frame, after a round of the
 * base; closes the links that ended or broke the protocol. Returns how many
 * frames it handed over. Not from inside the base's loop. */
size_t peer_deliver(struct peer_net *n);

/* 1 when frames may be waiting for peer_deliver: do not block the loop. */
int peer_pending(const struct peer_net *n);

/* Bytes queued for `to` and not yet written. */
size_t peer_queued(const struct peer_net *n, uint32_t to);

/* 1 when the outgoing link to `id` is up (hello sent), else 0. */
int peer_connected(const struct peer_net *n, uint32_t id);

/* How many times the outgoing link to `id` came up. Frames queued on a link
 * that dropped are lost, so a change means some sent frames may be gone. */
uint64_t peer_link_gen(const struct peer_net *n, uint32_t id);

/* Time (time_now_ms) a frame last arrived from `id`; 0: never. */
int64_t peer_last_rx_ms(const struct peer_net *n, uint32_t id);

/* ---- codec (PeerFrame) ---- */

/* Encode a raft message as a length-prefixed PeerFrame. *out is malloc'd.
 * snap_* are attached for RAFT_MSG_SNAPSHOT (NULL/0 otherwise). */
int peer_encode_raft(const struct raft_msg *m, const uint8_t *snap_chunk, size_t snap_len, uint64_t snap_offset,
		     int snap_last, uint8_t **out, size_t *out_len);
int peer_encode_forward(uint32_t origin_node, const uint8_t *records, size_t len, uint8_t **out, size_t *out_len);
int peer_encode_transfer(uint32_t to, uint8_t **out, size_t *out_len);
enum peer_refusal { PEER_REFUSED_NOT_LEADER = 1, PEER_REFUSED_QUEUE_FULL = 2 };
int peer_encode_forward_refused(enum peer_refusal reason, uint8_t **out, size_t *out_len);

/* A decoded frame. For PEER_FRAME_RAFT, raft.entries points into entries[]
 * (data pointing into the decoded buffer); everything is valid until
 * peer_frame_free(). */
enum peer_frame_kind { PEER_FRAME_RAFT = 1, PEER_FRAME_FORWARD = 2, PEER_FRAME_TRANSFER = 3, PEER_FRAME_FORWARD_REFUSED = 4 };

struct peer_frame {
	enum peer_frame_kind kind;
	struct raft_msg raft;
	struct raft_entry *entries;     /* raft.n_entries of them */
	uint64_t snap_offset;
	const uint8_t *snap_chunk;
	size_t snap_len;
	int snap_last;
	uint32_t origin_node;           /* FORWARD */
	const uint8_t *records;         /* FORWARD */
	size_t records_len;
	uint32_t transfer_to;           /* TRANSFER */
	uint32_t refusal;               /* FORWARD_REFUSED: enum peer_refusal (or a newer reason) */
	void *pb;                       /* the unpacked protobuf */
};

/* Decode a frame body (no length prefix), as on_frame gets it.
 * SL_EMALFORMED if it is not a PeerFrame with a known body (a hello after
 * the first frame is malformed too). */
int peer_decode(const uint8_t *p, size_t len, struct peer_frame *out);
void peer_frame_free(struct peer_frame *f);

/* 1 if a frame body (no length prefix) is structurally sound PeerFrame
 * protobuf, else 0; reads p only and allocates nothing. peer_deliver runs it
 * on every frame after the hello and closes a link whose frame fails it. It
 * is looser than peer_decode, never stricter: every body peer_decode accepts
 * passes, so a legitimate peer is never disconnected. */
int peer_wire_valid(const uint8_t *p, size_t len);

#endif
