/*
 * peer.c: TCP links between logwriters (peer.h) and the PeerFrame codec.
 *
 * A node keeps one outgoing link per peer (it dialled it, it only writes on
 * it, the first frame is PeerHello) and accepts incoming links (it only reads
 * them). Everything is non-blocking and driven by peer_pollfds/peer_process
 * from the logwriter's poll loop; the module reads no clock (now_ms comes in).
 *
 * Caveats:
 * - Host names are resolved with a blocking getaddrinfo at peer_net_open;
 *   one that does not resolve then is retried at each dial (blocking the loop
 *   for as long as the resolver takes), so use addresses or /etc/hosts names.
 * - An incoming link may send nothing but a hello until it has said who it
 *   is; its frames are capped at PEER_HELLO_BYTES_MAX and it must do so within
 *   PEER_HELLO_TIMEOUT_MS, so unknown connections cannot make us allocate.
 * - Every other frame is walked against the PeerFrame descriptor without
 *   allocating (peer_wire_valid) before on_frame sees it; a frame that is
 *   not protobuf closes the link.
 * - revents are applied only to links that were handed to poll (polled), so
 *   an fd number reused by a link created inside peer_process is never taken
 *   for the old one.
 * - A silent peer (power loss, partition) is detected by TCP keepalive and
 *   TCP_USER_TIMEOUT on the outgoing link, within about PEER_USER_TIMEOUT_MS.
 */
#define _GNU_SOURCE /* accept4 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "cluster.pb-c.h"
#include "err.h"
#include "log.h"
#include "peer.h"
#include "slice.h"

#define PEER_PREFIX_BYTES 4
#define PEER_VERSION 1
#define PEER_SEND_BYTES_DEFAULT (64u << 20)
#define PEER_FRAME_BYTES_DEFAULT (64u << 20)
#define PEER_BACKOFF_MIN_DEFAULT 50
#define PEER_BACKOFF_MAX_DEFAULT 2000
#define PEER_HELLO_BYTES_MAX 256
#define PEER_HELLO_TIMEOUT_MS 5000
#define PEER_CONNECT_TIMEOUT_MS 5000
#define PEER_USER_TIMEOUT_MS 10000
#define PEER_PENDING_MAX 16          /* incoming links that have not sent a hello yet */
#define PEER_READ_BYTES_MAX (4u << 20) /* per link per peer_process */
#define PEER_RBUF_BYTES_MIN (64u << 10)
#define PEER_BUF_KEEP_BYTES (4u << 20) /* buffers larger than this are freed when empty */
#define PEER_ACCEPT_MAX 16           /* accepts per peer_process */

enum out_state { OUT_IDLE, OUT_CONNECTING, OUT_UP };

struct peer_buf {
	uint8_t *base;
	size_t start, end, cap; /* bytes in [start, end) */
};

/* An accepted link: receive only. node is 0 until its hello arrives. */
struct peer_in {
	int fd;
	int polled;
	uint32_t node;
	int64_t since_ms;
	struct peer_buf rb;
};

struct peer_node {
	struct peer_addr addr;
	struct sockaddr_storage sa;
	socklen_t sa_len;               /* 0: not resolved */
	int fd;                         /* outgoing link, -1: none */
	int polled;
	enum out_state state;
	int64_t dial_at_ms;             /* IDLE: next dial; CONNECTING: give up at */
	int64_t up_since_ms;
	uint64_t link_gen;              /* times the outgoing link came up */
	uint32_t backoff_ms;
	struct peer_buf q;              /* output queue */
	int64_t last_rx_ms;
	int warned;                     /* oversized / malformed frames logged once */
	int flapping;                   /* the last link dropped right after it came up */
};

struct peer_net {
	struct peer_opts o;
	uint8_t *hello;                 /* our encoded hello */
	size_t hello_len;
	int lfd;
	int lpolled;
	struct peer_node *nodes;        /* every node but this one */
	size_t n;
	struct peer_in *in;             /* n + PEER_PENDING_MAX slots */
	size_t n_in;
	int64_t now_ms;
	int64_t refused_log_ms;         /* refused hellos: one warning a minute */
};

/* ---- codec ---- */

static int peer_pack(const Sluice__Cluster__PeerFrame *pf, uint8_t **out, size_t *out_len)
{
	size_t n = sluice__cluster__peer_frame__get_packed_size(pf);
	if (n > UINT32_MAX)
		return SL_ETOOLARGE;
	uint8_t *buf = malloc(PEER_PREFIX_BYTES + n);
	if (!buf)
		return SL_ENOMEM;
	be_put32(buf, (uint32_t)n);
	size_t w = sluice__cluster__peer_frame__pack(pf, buf + PEER_PREFIX_BYTES);
	if (w != n) {
		free(buf);
		return SL_EINTERNAL;
	}
	*out = buf;
	*out_len = PEER_PREFIX_BYTES + n;
	return SL_OK;
}

int peer_encode_raft(const struct raft_msg *m, const uint8_t *snap_chunk, size_t snap_len, uint64_t snap_offset,
		     int snap_last, uint8_t **out, size_t *out_len)
{
	Sluice__Cluster__RaftMessage rm = SLUICE__CLUSTER__RAFT_MESSAGE__INIT;
	rm.type = m->type;
	rm.group = m->group;
	rm.from = m->from;
	rm.to = m->to;
	rm.term = m->term;
	rm.log_term = m->log_term;
	rm.index = m->index;
	rm.commit = m->commit;
	rm.reject_hint = m->reject_hint;
	rm.reject = m->reject != 0;
	rm.force = m->force != 0;
	rm.snapshot_offset = snap_offset;
	rm.snapshot_chunk.data = (uint8_t *)(uintptr_t)snap_chunk; /* packed, never written */
	rm.snapshot_chunk.len = snap_chunk ? snap_len : 0;
	rm.snapshot_last = snap_last != 0;
	Sluice__Cluster__Entry *ents = NULL, **ptrs = NULL;
	int rc = SL_ENOMEM;
	if (m->n_entries) {
		ents = calloc(m->n_entries, sizeof(*ents));
		ptrs = calloc(m->n_entries, sizeof(*ptrs));
		if (!ents || !ptrs)
			goto out;
	}
	for (size_t i = 0; i < m->n_entries; i++) {
		const struct raft_entry *e = &m->entries[i];
		sluice__cluster__entry__init(&ents[i]);
		ents[i].term = e->term;
		ents[i].index = e->index;
		ents[i].type = e->type;
		ents[i].data.data = e->data; /* no copy: pack reads it */
		ents[i].data.len = e->data ? e->len : 0;
		ptrs[i] = &ents[i];
	}
	rm.n_entries = m->n_entries;
	rm.entries = ptrs;
	Sluice__Cluster__PeerFrame pf = SLUICE__CLUSTER__PEER_FRAME__INIT;
	pf.body_case = SLUICE__CLUSTER__PEER_FRAME__BODY_RAFT;
	pf.raft = &rm;
	rc = peer_pack(&pf, out, out_len);
out:
	free(ptrs);
	free(ents);
	return rc;
}

int peer_encode_forward(uint32_t origin_node, const uint8_t *records, size_t len, uint8_t **out, size_t *out_len)
{
	Sluice__Cluster__Forward fw = SLUICE__CLUSTER__FORWARD__INIT;
	fw.origin_node = origin_node;
	fw.records.data = (uint8_t *)(uintptr_t)records;
	fw.records.len = records ? len : 0;
	Sluice__Cluster__PeerFrame pf = SLUICE__CLUSTER__PEER_FRAME__INIT;
	pf.body_case = SLUICE__CLUSTER__PEER_FRAME__BODY_FORWARD;
	pf.forward = &fw;
	return peer_pack(&pf, out, out_len);
}

int peer_encode_transfer(uint32_t to, uint8_t **out, size_t *out_len)
{
	Sluice__Cluster__TransferLeader tl = SLUICE__CLUSTER__TRANSFER_LEADER__INIT;
	tl.to = to;
	Sluice__Cluster__PeerFrame pf = SLUICE__CLUSTER__PEER_FRAME__INIT;
	pf.body_case = SLUICE__CLUSTER__PEER_FRAME__BODY_TRANSFER;
	pf.transfer = &tl;
	return peer_pack(&pf, out, out_len);
}

static int peer_encode_hello(uint32_t node_id, uint64_t cluster_id, uint8_t **out, size_t *out_len)
{
	Sluice__Cluster__PeerHello h = SLUICE__CLUSTER__PEER_HELLO__INIT;
	h.node_id = node_id;
	h.version = PEER_VERSION;
	h.cluster_id = cluster_id;
	Sluice__Cluster__PeerFrame pf = SLUICE__CLUSTER__PEER_FRAME__INIT;
	pf.body_case = SLUICE__CLUSTER__PEER_FRAME__BODY_HELLO;
	pf.hello = &h;
	return peer_pack(&pf, out, out_len);
}

/* Map the unpacked raft message into f (entries array; data points into pb). */
static int peer_decode_raft(const Sluice__Cluster__RaftMessage *rm, size_t frame_len, struct peer_frame *f)
{
	/* Each entry takes at least two bytes on the wire (tag, length). */
	if (!rm || rm->n_entries > frame_len / 2)
		return SL_EMALFORMED;
	struct raft_msg *m = &f->raft;
	m->type = rm->type;
	m->group = rm->group;
	m->from = rm->from;
	m->to = rm->to;
	m->term = rm->term;
	m->log_term = rm->log_term;
	m->index = rm->index;
	m->commit = rm->commit;
	m->reject_hint = rm->reject_hint;
	m->reject = rm->reject ? 1 : 0;
	m->force = rm->force ? 1 : 0;
	if (rm->n_entries) {
		f->entries = calloc(rm->n_entries, sizeof(*f->entries));
		if (!f->entries)
			return SL_ENOMEM;
	}
	for (size_t i = 0; i < rm->n_entries; i++) {
		const Sluice__Cluster__Entry *pe = rm->entries[i];
		if (!pe || pe->data.len > UINT32_MAX)
			return SL_EMALFORMED;
		struct raft_entry *e = &f->entries[i];
		e->term = pe->term;
		e->index = pe->index;
		e->type = pe->type;
		e->len = (uint32_t)pe->data.len;
		e->data = pe->data.len ? pe->data.data : NULL;
	}
	m->entries = f->entries;
	m->n_entries = rm->n_entries;
	f->snap_offset = rm->snapshot_offset;
	f->snap_len = rm->snapshot_chunk.len;
	f->snap_chunk = f->snap_len ? rm->snapshot_chunk.data : NULL;
	f->snap_last = rm->snapshot_last ? 1 : 0;
	return SL_OK;
}

int peer_decode(const uint8_t *p, size_t len, struct peer_frame *out)
{
	memset(out, 0, sizeof(*out));
	Sluice__Cluster__PeerFrame *pf = sluice__cluster__peer_frame__unpack(NULL, len, p);
	if (!pf)
		return SL_EMALFORMED;
	out->pb = pf;
	int rc = SL_OK;
	switch (pf->body_case) {
	case SLUICE__CLUSTER__PEER_FRAME__BODY_RAFT:
		out->kind = PEER_FRAME_RAFT;
		rc = peer_decode_raft(pf->raft, len, out);
		break;
	case SLUICE__CLUSTER__PEER_FRAME__BODY_FORWARD:
		if (!pf->forward) {
			rc = SL_EMALFORMED;
			break;
		}
		out->kind = PEER_FRAME_FORWARD;
		out->origin_node = pf->forward->origin_node;
		out->records_len = pf->forward->records.len;
		out->records = out->records_len ? pf->forward->records.data : NULL;
		break;
	case SLUICE__CLUSTER__PEER_FRAME__BODY_TRANSFER:
		if (!pf->transfer) {
			rc = SL_EMALFORMED;
			break;
		}
		out->kind = PEER_FRAME_TRANSFER;
		out->transfer_to = pf->transfer->to;
		break;
	default: /* not set, or a hello after the first frame */
		rc = SL_EMALFORMED;
		break;
	}
	if (rc != SL_OK)
		peer_frame_free(out);
	return rc;
}

void peer_frame_free(struct peer_frame *f)
{
	if (!f)
		return;
	free(f->entries);
	if (f->pb)
		sluice__cluster__peer_frame__free_unpacked(f->pb, NULL);
	memset(f, 0, sizeof(*f));
}

/* ---- wire check without allocating ---- */

static int wire_varint(const uint8_t *p, size_t len, size_t *i, uint64_t *v)
{
	uint64_t r = 0;
	for (unsigned shift = 0; shift < 70 && *i < len; shift += 7) {
		uint8_t b = p[(*i)++];
		r |= (uint64_t)(b & 0x7f) << (shift < 64 ? shift : 63);
		if (!(b & 0x80)) {
			*v = r;
			return 1;
		}
	}
	return 0;
}

/*
 * 1 if p[0..len) is protobuf whose structure holds: tags and varints end
 * inside the buffer, lengths stay inside it, no groups, and the sub-messages
 * of known message fields hold too. It is deliberately looser than protobuf-c
 * (which, for one, takes a length-delimited value for any scalar field) so
 * that it never refuses a frame peer_decode accepts (tests/fuzz/peer_fuzz.c
 * checks that); what it lets through, peer_decode refuses later.
 */
static int wire_valid(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t len, int depth)
{
	if (depth > 8)
		return 0;
	size_t i = 0;
	while (i < len) {
		uint64_t key, v;
		if (!wire_varint(p, len, &i, &key) || (key >> 3) > UINT32_MAX)
			return 0;
		const ProtobufCFieldDescriptor *fd = protobuf_c_message_descriptor_get_field(d, (unsigned)(key >> 3));
		switch (key & 7) {
		case 0:
			if (!wire_varint(p, len, &i, &v))
				return 0;
			break;
		case 1:
		case 5: {
			size_t w = (key & 7) == 1 ? 8 : 4;
			if (len - i < w)
				return 0;
			i += w;
			break;
		}
		case 2:
			if (!wire_varint(p, len, &i, &v) || v > len - i)
				return 0;
			if (fd && fd->type == PROTOBUF_C_TYPE_MESSAGE &&
			    !wire_valid(fd->descriptor, p + i, (size_t)v, depth + 1))
				return 0;
			i += (size_t)v;
			break;
		default:
			return 0; /* groups: protobuf-c refuses them too */
		}
	}
	return 1;
}

int peer_wire_valid(const uint8_t *p, size_t len)
{
	return wire_valid(&sluice__cluster__peer_frame__descriptor, p, len, 0);
}

/* ---- buffers ---- */

static void buf_free(struct peer_buf *b)
{
	free(b->base);
	memset(b, 0, sizeof(*b));
}

/* Room for `need` more bytes after end (moving data down first). */
static int buf_reserve(struct peer_buf *b, size_t need, size_t floor)
{
	if (b->cap - b->end >= need)
		return SL_OK;
	if (b->start) {
		memmove(b->base, b->base + b->start, b->end - b->start);
		b->end -= b->start;
		b->start = 0;
		if (b->cap - b->end >= need)
			return SL_OK;
	}
	size_t cap = b->cap ? b->cap : floor;
	while (cap - b->end < need)
		cap = cap * 2 > cap ? cap * 2 : b->end + need;
	if (cap > b->end + need && cap > 2 * (b->end + need) && b->end + need > floor)
		cap = b->end + need; /* a large frame: exactly what it needs */
	uint8_t *p = realloc(b->base, cap);
	if (!p)
		return SL_ENOMEM;
	b->base = p;
	b->cap = cap;
	return SL_OK;
}

/* Empty: rewind, and give back a large buffer. */
static void buf_settle(struct peer_buf *b)
{
	if (b->start != b->end)
		return;
	b->start = b->end = 0;
	if (b->cap > PEER_BUF_KEEP_BYTES)
		buf_free(b);
}

/* ---- sockets ---- */

static void sock_opts(int fd)
{
	int one = 1, idle = 5, intvl = 1, cnt = 3, uto = PEER_USER_TIMEOUT_MS;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &uto, sizeof(uto));
}

static int resolve(const struct peer_addr *a, int passive, struct sockaddr_storage *sa, socklen_t *sa_len)
{
	char port[8];
	snprintf(port, sizeof(port), "%u", a->port);
	struct addrinfo hints = {0}, *ai = NULL;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = passive ? AI_PASSIVE : 0;
	int rc = getaddrinfo(a->host, port, &hints, &ai);
	if (rc) {
		log_warn("peer %u: cannot resolve %s:%u: %s", a->id, a->host, a->port, gai_strerror(rc));
		return SL_EIO;
	}
	memcpy(sa, ai->ai_addr, ai->ai_addrlen);
	*sa_len = ai->ai_addrlen;
	freeaddrinfo(ai);
	return SL_OK;
}

static int listen_open(const struct peer_addr *a, int *out)
{
	struct sockaddr_storage sa;
	socklen_t sl;
	if (resolve(a, 1, &sa, &sl))
		return SL_EIO;
	int fd = socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd >= 0)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sl) < 0 || listen(fd, 64) < 0) {
		log_error("peer links: cannot listen on %s:%u: %s", a->host, a->port, strerror(errno));
		if (fd >= 0)
			close(fd);
		return SL_EIO;
	}
	*out = fd;
	return SL_OK;
}

/* ---- outgoing links ---- */

static void out_close(struct peer_net *n, struct peer_node *pn, const char *why)
{
	if (pn->fd >= 0) {
		if (pn->state == OUT_UP)
			log_msg(pn->flapping ? LOG_DEBUG : LOG_INFO, "peer %u: link to %s:%u down: %s", pn->addr.id,
				pn->addr.host, pn->addr.port, why);
		close(pn->fd);
	}
	if (pn->state == OUT_UP) {
		/* A link that stayed up a while starts over at the shortest backoff;
		 * one refused at once (bad hello) keeps backing off, quietly. */
		int brief = n->now_ms - pn->up_since_ms < (int64_t)n->o.backoff_max_ms;
		if (!brief)
			pn->backoff_ms = n->o.backoff_min_ms;
		pn->flapping = brief;
	}
	pn->fd = -1;
	pn->polled = 0;
	pn->state = OUT_IDLE;
	pn->dial_at_ms = n->now_ms + pn->backoff_ms;
	pn->backoff_ms = pn->backoff_ms * 2 > n->o.backoff_max_ms ? n->o.backoff_max_ms : pn->backoff_ms * 2;
	pn->q.start = pn->q.end = 0; /* raft retransmits */
	buf_settle(&pn->q);
}

static void out_up(struct peer_net *n, struct peer_node *pn)
{
	pn->state = OUT_UP;
	pn->up_since_ms = n->now_ms;
	pn->link_gen++;
	pn->q.start = pn->q.end = 0;
	if (buf_reserve(&pn->q, n->hello_len, PEER_RBUF_BYTES_MIN)) {
		out_close(n, pn, "out of memory");
		return;
	}
	memcpy(pn->q.base, n->hello, n->hello_len);
	pn->q.end = n->hello_len;
	log_msg(pn->flapping ? LOG_DEBUG : LOG_INFO, "peer %u: link to %s:%u up", pn->addr.id, pn->addr.host,
		pn->addr.port);
}

static void out_dial(struct peer_net *n, struct peer_node *pn)
{
	if (!pn->sa_len && resolve(&pn->addr, 0, &pn->sa, &pn->sa_len)) {
		out_close(n, pn, "unresolved");
		return;
	}
	int fd = socket(pn->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		out_close(n, pn, strerror(errno));
		return;
	}
	sock_opts(fd);
	pn->fd = fd;
	pn->polled = 0;
	if (connect(fd, (struct sockaddr *)&pn->sa, pn->sa_len) == 0) {
		out_up(n, pn);
	} else if (errno == EINPROGRESS) {
		pn->state = OUT_CONNECTING;
		pn->dial_at_ms = n->now_ms + PEER_CONNECT_TIMEOUT_MS;
	} else {
		log_debug("peer %u: connect: %s", pn->addr.id, strerror(errno));
		out_close(n, pn, strerror(errno));
	}
}

static void out_connected(struct peer_net *n, struct peer_node *pn)
{
	int e = 0;
	socklen_t el = sizeof(e);
	if (getsockopt(pn->fd, SOL_SOCKET, SO_ERROR, &e, &el) < 0)
		e = errno;
	if (e) {
		log_debug("peer %u: connect: %s", pn->addr.id, strerror(e));
		out_close(n, pn, strerror(e));
		return;
	}
	out_up(n, pn);
}

static void out_write(struct peer_net *n, struct peer_node *pn)
{
	while (pn->state == OUT_UP && pn->q.end > pn->q.start) {
		ssize_t w = send(pn->fd, pn->q.base + pn->q.start, pn->q.end - pn->q.start, MSG_NOSIGNAL);
		if (w > 0) {
			pn->q.start += (size_t)w;
			continue;
		}
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return;
		out_close(n, pn, w < 0 ? strerror(errno) : "write returned 0");
		return;
	}
	buf_settle(&pn->q);
}

/* The peer never writes on a link we dialled: readable means closed (or a
 * protocol violation, handled the same way). */
static void out_readable(struct peer_net *n, struct peer_node *pn)
{
	uint8_t scratch[256];
	ssize_t r = recv(pn->fd, scratch, sizeof(scratch), 0);
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	out_close(n, pn, r == 0 ? "closed by peer" : r < 0 ? strerror(errno) : "unexpected bytes");
}

/* ---- incoming links ---- */

static struct peer_node *node_find(struct peer_net *n, uint32_t id)
{
	for (size_t i = 0; i < n->n; i++)
		if (n->nodes[i].addr.id == id)
			return &n->nodes[i];
	return NULL;
}

static void in_close(struct peer_net *n, struct peer_in *l, const char *why)
{
	if (l->node)
		log_info("peer %u: incoming link closed: %s", l->node, why);
	else
		log_debug("peer links: unidentified incoming link closed: %s", why);
	close(l->fd);
	buf_free(&l->rb);
	*l = (struct peer_in){.fd = -1};
	(void)n;
}

/* The first frame: a valid hello names a known node; an older link from it goes. */
static int in_hello(struct peer_net *n, struct peer_in *l, const uint8_t *p, size_t len)
{
	Sluice__Cluster__PeerFrame *pf = sluice__cluster__peer_frame__unpack(NULL, len, p);
	int ok = pf && pf->body_case == SLUICE__CLUSTER__PEER_FRAME__BODY_HELLO && pf->hello;
	uint32_t id = ok ? pf->hello->node_id : 0;
	struct peer_node *pn = ok ? node_find(n, id) : NULL;
	if (!ok || pf->hello->version != PEER_VERSION || pf->hello->cluster_id != n->o.cluster_id || !pn) {
		int loud = !n->refused_log_ms || n->now_ms - n->refused_log_ms >= 60000;
		if (loud)
			n->refused_log_ms = n->now_ms ? n->now_ms : 1;
		log_msg(loud ? LOG_WARN : LOG_DEBUG, "peer links: incoming link refused: %s (node %u, version %u, cluster %llx)",
			 !ok ? "no hello" : !pn ? "unknown node" : "version or cluster id mismatch", id,
			 ok ? pf->hello->version : 0, ok ? (unsigned long long)pf->hello->cluster_id : 0ull);
		if (pf)
			sluice__cluster__peer_frame__free_unpacked(pf, NULL);
		return SL_EHANDSHAKE;
	}
	sluice__cluster__peer_frame__free_unpacked(pf, NULL);
	for (size_t i = 0; i < n->n_in; i++)
		if (&n->in[i] != l && n->in[i].fd >= 0 && n->in[i].node == id)
			in_close(n, &n->in[i], "replaced by a newer link");
	l->node = id;
	pn->last_rx_ms = n->now_ms;
	log_info("peer %u: incoming link up", id);
	return SL_OK;
}

/* Hand over every complete frame in the buffer. SL_OK, or why to close. */
static int in_frames(struct peer_net *n, struct peer_in *l,
		     void (*on_frame)(void *, uint32_t, const uint8_t *, size_t), void *arg)
{
	struct peer_buf *b = &l->rb;
	while (b->end - b->start >= PEER_PREFIX_BYTES) {
		uint32_t flen = be_get32(b->base + b->start);
		uint32_t max = l->node ? n->o.frame_bytes_max : PEER_HELLO_BYTES_MAX;
		struct peer_node *pn = l->node ? node_find(n, l->node) : NULL;
		if (flen > max) {
			if (pn && !pn->warned) {
				pn->warned = 1;
				log_warn("peer %u: frame of %u bytes over frame_bytes_max %u: link closed", l->node, flen,
					 max);
			}
			return SL_ETOOLARGE;
		}
		if (b->end - b->start < PEER_PREFIX_BYTES + (size_t)flen)
			return buf_reserve(b, PEER_PREFIX_BYTES + flen - (b->end - b->start), PEER_RBUF_BYTES_MIN);
		const uint8_t *body = b->base + b->start + PEER_PREFIX_BYTES;
		b->start += PEER_PREFIX_BYTES + (size_t)flen;
		if (!pn) {
			if (in_hello(n, l, body, flen))
				return SL_EHANDSHAKE;
			continue;
		}
		if (!peer_wire_valid(body, flen)) {
			if (!pn->warned) {
				pn->warned = 1;
				log_warn("peer %u: malformed frame of %u bytes: link closed", l->node, flen);
			}
			return SL_EMALFORMED;
		}
		pn->last_rx_ms = n->now_ms;
		on_frame(arg, l->node, body, flen);
	}
	return SL_OK;
}

static void in_read(struct peer_net *n, struct peer_in *l,
		    void (*on_frame)(void *, uint32_t, const uint8_t *, size_t), void *arg)
{
	size_t got = 0;
	while (got < PEER_READ_BYTES_MAX) {
		if (buf_reserve(&l->rb, 1, l->node ? PEER_RBUF_BYTES_MIN : PEER_HELLO_BYTES_MAX + PEER_PREFIX_BYTES)) {
			in_close(n, l, "out of memory");
			return;
		}
		size_t room = l->rb.cap - l->rb.end;
		if (room > PEER_READ_BYTES_MAX - got)
			room = PEER_READ_BYTES_MAX - got;
		ssize_t r = recv(l->fd, l->rb.base + l->rb.end, room, 0);
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			break;
		if (r <= 0) {
			in_frames(n, l, on_frame, arg); /* what arrived before the close */
			in_close(n, l, r == 0 ? "closed by peer" : strerror(errno));
			return;
		}
		l->rb.end += (size_t)r;
		got += (size_t)r;
		int rc = in_frames(n, l, on_frame, arg);
		if (rc) {
			in_close(n, l, sl_strerror(rc));
			return;
		}
	}
	buf_settle(&l->rb);
}

static void in_accept(struct peer_net *n)
{
	for (int k = 0; k < PEER_ACCEPT_MAX; k++) {
		int fd = accept4(n->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
				log_warn("peer links: accept: %s", strerror(errno));
			return;
		}
		size_t pending = 0, slot = n->n_in;
		for (size_t i = 0; i < n->n_in; i++) {
			if (n->in[i].fd < 0 && slot == n->n_in)
				slot = i;
			else if (n->in[i].fd >= 0 && !n->in[i].node)
				pending++;
		}
		if (slot == n->n_in || pending >= PEER_PENDING_MAX) {
			log_debug("peer links: too many unidentified incoming links; refused one");
			close(fd);
			continue;
		}
		sock_opts(fd);
		n->in[slot] = (struct peer_in){.fd = fd, .since_ms = n->now_ms};
	}
}

/* ---- the net ---- */

int peer_net_open(struct peer_net **out, const struct peer_opts *o)
{
	*out = NULL;
	if (!o->self_id || !o->n_nodes || o->n_nodes > RAFT_NODES_MAX)
		return SL_EINVAL;
	struct peer_net *n = calloc(1, sizeof(*n));
	if (!n)
		return SL_ENOMEM;
	n->o = *o;
	n->o.nodes = NULL;
	if (!n->o.send_bytes_max)
		n->o.send_bytes_max = PEER_SEND_BYTES_DEFAULT;
	if (!n->o.frame_bytes_max)
		n->o.frame_bytes_max = PEER_FRAME_BYTES_DEFAULT;
	if (!n->o.backoff_min_ms)
		n->o.backoff_min_ms = PEER_BACKOFF_MIN_DEFAULT;
	if (!n->o.backoff_max_ms)
		n->o.backoff_max_ms = PEER_BACKOFF_MAX_DEFAULT;
	if (n->o.backoff_max_ms < n->o.backoff_min_ms)
		n->o.backoff_max_ms = n->o.backoff_min_ms;
	n->lfd = -1;
	int rc = SL_ENOMEM;
	n->nodes = calloc(o->n_nodes, sizeof(*n->nodes));
	n->n_in = o->n_nodes + PEER_PENDING_MAX;
	n->in = calloc(n->n_in, sizeof(*n->in));
	if (!n->nodes || !n->in)
		goto fail;
	for (size_t i = 0; i < n->n_in; i++)
		n->in[i].fd = -1;
	const struct peer_addr *self = NULL;
	for (size_t i = 0; i < o->n_nodes; i++) {
		if (o->nodes[i].id == o->self_id) {
			self = &o->nodes[i];
			continue;
		}
		struct peer_node *pn = &n->nodes[n->n++];
		pn->addr = o->nodes[i];
		pn->addr.host[sizeof(pn->addr.host) - 1] = 0;
		pn->fd = -1;
		pn->backoff_ms = n->o.backoff_min_ms;
		resolve(&pn->addr, 0, &pn->sa, &pn->sa_len); /* retried at dial if it fails */
	}
	rc = SL_EINVAL;
	if (!self)
		goto fail;
	if ((rc = peer_encode_hello(o->self_id, o->cluster_id, &n->hello, &n->hello_len)))
		goto fail;
	if ((rc = listen_open(self, &n->lfd)))
		goto fail;
	*out = n;
	return SL_OK;
fail:
	peer_net_close(n);
	return rc;
}

void peer_net_close(struct peer_net *n)
{
	if (!n)
		return;
	if (n->lfd >= 0)
		close(n->lfd);
	for (size_t i = 0; n->in && i < n->n_in; i++) {
		if (n->in[i].fd >= 0)
			close(n->in[i].fd);
		buf_free(&n->in[i].rb);
	}
	for (size_t i = 0; i < n->n; i++) {
		if (n->nodes[i].fd >= 0)
			close(n->nodes[i].fd);
		buf_free(&n->nodes[i].q);
	}
	free(n->in);
	free(n->nodes);
	free(n->hello);
	free(n);
}

int peer_send(struct peer_net *n, uint32_t to, const uint8_t *frame, size_t len)
{
	struct peer_node *pn = node_find(n, to);
	if (!pn || len < PEER_PREFIX_BYTES || be_get32(frame) != len - PEER_PREFIX_BYTES)
		return SL_EINVAL;
	if (len - PEER_PREFIX_BYTES > n->o.frame_bytes_max || len > n->o.send_bytes_max)
		return SL_ETOOLARGE; /* could never be sent, or the peer would refuse it */
	if (pn->state != OUT_UP || pn->q.end - pn->q.start + len > n->o.send_bytes_max)
		return SL_EAGAIN;
	if (buf_reserve(&pn->q, len, PEER_RBUF_BYTES_MIN))
		return SL_ENOMEM;
	memcpy(pn->q.base + pn->q.end, frame, len);
	pn->q.end += len;
	return SL_OK;
}

void peer_flush(struct peer_net *n)
{
	for (size_t i = 0; i < n->n; i++)
		if (n->nodes[i].state == OUT_UP && n->nodes[i].q.end > n->nodes[i].q.start)
			out_write(n, &n->nodes[i]);
}

size_t peer_queued(const struct peer_net *n, uint32_t to)
{
	for (size_t i = 0; i < n->n; i++)
		if (n->nodes[i].addr.id == to)
			return n->nodes[i].q.end - n->nodes[i].q.start;
	return 0;
}

int peer_connected(const struct peer_net *n, uint32_t id)
{
	for (size_t i = 0; i < n->n; i++)
		if (n->nodes[i].addr.id == id)
			return n->nodes[i].state == OUT_UP;
	return 0;
}

uint64_t peer_link_gen(const struct peer_net *n, uint32_t id)
{
	for (size_t i = 0; i < n->n; i++)
		if (n->nodes[i].addr.id == id)
			return n->nodes[i].link_gen;
	return 0;
}

int64_t peer_last_rx_ms(const struct peer_net *n, uint32_t id)
{
	for (size_t i = 0; i < n->n; i++)
		if (n->nodes[i].addr.id == id)
			return n->nodes[i].last_rx_ms;
	return 0;
}

size_t peer_pollfds(struct peer_net *n, struct pollfd *pfds, size_t max)
{
	size_t k = 0;
	n->lpolled = 0;
	if (n->lfd >= 0 && k < max) {
		pfds[k++] = (struct pollfd){.fd = n->lfd, .events = POLLIN};
		n->lpolled = 1;
	}
	for (size_t i = 0; i < n->n_in; i++) {
		struct peer_in *l = &n->in[i];
		l->polled = l->fd >= 0 && k < max;
		if (l->polled)
			pfds[k++] = (struct pollfd){.fd = l->fd, .events = POLLIN};
	}
	for (size_t i = 0; i < n->n; i++) {
		struct peer_node *pn = &n->nodes[i];
		pn->polled = pn->fd >= 0 && k < max;
		if (!pn->polled)
			continue;
		short ev = pn->state == OUT_CONNECTING ? POLLOUT : POLLIN;
		if (pn->state == OUT_UP && pn->q.end > pn->q.start)
			ev |= POLLOUT;
		pfds[k++] = (struct pollfd){.fd = pn->fd, .events = ev};
	}
	return k;
}

int peer_next_timeout_ms(const struct peer_net *n, int64_t now_ms)
{
	int64_t due = -1;
	for (size_t i = 0; i < n->n; i++) {
		const struct peer_node *pn = &n->nodes[i];
		if (pn->state == OUT_UP)
			continue;
		if (due < 0 || pn->dial_at_ms < due)
			due = pn->dial_at_ms;
	}
	for (size_t i = 0; i < n->n_in; i++) {
		const struct peer_in *l = &n->in[i];
		if (l->fd >= 0 && !l->node && (due < 0 || l->since_ms + PEER_HELLO_TIMEOUT_MS < due))
			due = l->since_ms + PEER_HELLO_TIMEOUT_MS;
	}
	if (due < 0)
		return -1;
	if (due <= now_ms)
		return 0;
	return due - now_ms > 60000 ? 60000 : (int)(due - now_ms);
}

static short revents_of(const struct pollfd *pfds, size_t nfds, int fd)
{
	for (size_t i = 0; i < nfds; i++)
		if (pfds[i].fd == fd)
			return pfds[i].revents;
	return 0;
}

void peer_process(struct peer_net *n, const struct pollfd *pfds, size_t nfds, int64_t now_ms,
		  void (*on_frame)(void *arg, uint32_t from, const uint8_t *p, size_t len), void *arg)
{
	n->now_ms = now_ms;
	const short rd = POLLIN | POLLHUP | POLLERR, wr = POLLOUT | POLLHUP | POLLERR;
	if (n->lpolled && (revents_of(pfds, nfds, n->lfd) & POLLIN))
		in_accept(n);
	for (size_t i = 0; i < n->n_in; i++) {
		struct peer_in *l = &n->in[i];
		if (l->fd >= 0 && l->polled && (revents_of(pfds, nfds, l->fd) & rd))
			in_read(n, l, on_frame, arg);
		if (l->fd >= 0 && !l->node && now_ms - l->since_ms >= PEER_HELLO_TIMEOUT_MS)
			in_close(n, l, "no hello in time");
	}
	for (size_t i = 0; i < n->n; i++) {
		struct peer_node *pn = &n->nodes[i];
		short re = pn->fd >= 0 && pn->polled ? revents_of(pfds, nfds, pn->fd) : 0;
		if (pn->state == OUT_CONNECTING && (re & wr))
			out_connected(n, pn);
		else if (pn->state == OUT_UP && (re & rd))
			out_readable(n, pn);
		if (pn->state == OUT_CONNECTING && now_ms >= pn->dial_at_ms)
			out_close(n, pn, "connect timed out");
		if (pn->state == OUT_IDLE && now_ms >= pn->dial_at_ms)
			out_dial(n, pn);
		/* Also frames queued during on_frame above: no extra poll round. */
		if (pn->state == OUT_UP)
			out_write(n, pn);
	}
}
