/*
 * peer_fuzz.c: libFuzzer target for the cluster frame codec (replica/peer/peer.c),
 * which takes bytes from the network. The input is decoded as a PeerFrame
 * body with peer_decode; a frame that decodes is encoded again from the
 * decoded struct and must decode to the same fields, and every pointer it
 * hands out is read so ASan checks it lies inside the decoded buffers.
 *
 * The same input goes through peer_wire_valid, the allocation-free check
 * that decides whether a link is closed: it must accept every frame
 * peer_decode accepts (and every frame the encoders write), or a legitimate
 * peer would be disconnected.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "peer.h"
#include "slice.h"

static void touch(const uint8_t *p, size_t n)
{
	volatile uint8_t sink = 0;
	for (size_t i = 0; i < n; i++)
		sink ^= p[i];
	(void)sink;
}

static void same_raft(const struct peer_frame *a, const struct peer_frame *b)
{
	const struct raft_msg *x = &a->raft, *y = &b->raft;
	if (x->type != y->type || x->group != y->group || x->from != y->from || x->to != y->to ||
	    x->term != y->term || x->log_term != y->log_term || x->index != y->index || x->commit != y->commit ||
	    x->reject_hint != y->reject_hint || x->reject != y->reject || x->force != y->force ||
	    x->n_entries != y->n_entries || a->snap_offset != b->snap_offset || a->snap_len != b->snap_len ||
	    a->snap_last != b->snap_last)
		abort();
	if (a->snap_len && memcmp(a->snap_chunk, b->snap_chunk, a->snap_len))
		abort();
	for (size_t i = 0; i < x->n_entries; i++) {
		const struct raft_entry *e = &x->entries[i], *f = &y->entries[i];
		if (e->term != f->term || e->index != f->index || e->type != f->type || e->len != f->len)
			abort();
		if (e->len && memcmp(e->data, f->data, e->len))
			abort();
	}
}

static void reencode(const struct peer_frame *f)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc;
	switch (f->kind) {
	case PEER_FRAME_RAFT:
		rc = peer_encode_raft(&f->raft, f->snap_chunk, f->snap_len, f->snap_offset, f->snap_last, &buf, &len);
		break;
	case PEER_FRAME_FORWARD:
		rc = peer_encode_forward(f->origin_node, f->records, f->records_len, &buf, &len);
		break;
	case PEER_FRAME_TRANSFER:
		rc = peer_encode_transfer(f->transfer_to, &buf, &len);
		break;
	case PEER_FRAME_FORWARD_REFUSED:
		rc = peer_encode_forward_refused((enum peer_refusal)f->refusal, &buf, &len);
		break;
	default:
		abort();
	}
	if (rc != SL_OK || len < 4 || be_get32(buf) != len - 4)
		abort();
	if (!peer_wire_valid(buf + 4, len - 4))
		abort();
	struct peer_frame g;
	if (peer_decode(buf + 4, len - 4, &g) != SL_OK || g.kind != f->kind)
		abort();
	if (f->kind == PEER_FRAME_RAFT)
		same_raft(f, &g);
	else if (f->kind == PEER_FRAME_FORWARD &&
		 (g.origin_node != f->origin_node || g.records_len != f->records_len ||
		  (f->records_len && memcmp(g.records, f->records, f->records_len))))
		abort();
	else if (f->kind == PEER_FRAME_TRANSFER && g.transfer_to != f->transfer_to)
		abort();
	else if (f->kind == PEER_FRAME_FORWARD_REFUSED && g.refusal != f->refusal)
		abort();
	peer_frame_free(&g);
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct peer_frame f;
	int rc = peer_decode(data, size, &f);
	int wire_ok = peer_wire_valid(data, size);
	if (rc == SL_OK) {
		if (!wire_ok || !f.pb)
			abort();
		if (f.kind == PEER_FRAME_RAFT) {
			if (f.raft.entries != f.entries || (f.raft.n_entries && !f.entries))
				abort();
			for (size_t i = 0; i < f.raft.n_entries; i++)
				touch(f.entries[i].data, f.entries[i].len);
			touch(f.snap_chunk, f.snap_len);
		} else if (f.kind == PEER_FRAME_FORWARD) {
			touch(f.records, f.records_len);
		}
		reencode(&f);
		peer_frame_free(&f);
		if (f.pb || f.entries)
			abort();
	} else if (rc != SL_EMALFORMED || f.pb || f.entries) {
		abort();
	}
	return 0;
}
