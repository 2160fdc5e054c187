/*
 * peer.c: TCP links between logwriters (peer.h) and the PeerFrame codec.
 *
 * A node keeps one outgoing link per peer (it dialled it, it only writes on
 * it, the first frame is PeerHello) and accepts incoming links (it only reads
 * them). Every link lives on the caller's event_base: an outgoing link is a
 * bufferevent (OpenSSL with mutual TLS when the net has a TLS context, a
 * socket one otherwise); an accepted link is an OpenSSL bufferevent with TLS,
 * and without it an event and one contiguous buffer that recv fills, so that
 * frames (appends of up to several MiB) are handed over where they were read,
 * without evbuffer chains to pull up: that kept a follower's CPU per
 * replicated message where the poll loop had it. The caller runs the base;
 * frames that arrive wait in their link's input until peer_deliver hands
 * them over, so no frame is handed over from inside the loop (peer_flush
 * runs it too).
 *
 * Caveats:
 * - Host names are resolved with a blocking getaddrinfo at peer_net_open;
 *   one that does not resolve then is retried at each dial (blocking the loop
 *   for as long as the resolver takes), so use addresses or /etc/hosts names.
 * - An incoming link may send nothing but a hello until it has said who it
 *   is; it may not make us hold more than PEER_HELLO_BYTES_MAX and it must
 *   say so within PEER_HELLO_TIMEOUT_MS (the TLS handshake included), so
 *   unknown connections cannot make us allocate.
 * - With TLS, who a link is comes from its certificate: the CA check is
 *   OpenSSL's (the contexts require a certificate from the cluster CA), the
 *   node id is the certificate's URI:sluice:node:<id>. A dialled node must
 *   present its own id; an accepted link's hello must name the id of its
 *   certificate. Either refusal comes before any frame is handed over.
 * - Every other frame is walked against the PeerFrame descriptor without
 *   allocating (peer_wire_valid) before on_frame sees it; a frame that is
 *   not protobuf closes the link.
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
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "cluster.pb-c.h"
#include "err.h"
#include "log.h"
#include "peer.h"
#include "slice.h"
#include "tls.h"

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
#define PEER_READ_BYTES_MAX (4u << 20) /* per read or write of a link */
#define PEER_RBUF_BYTES_MIN (64u << 10)
#define PEER_BUF_KEEP_BYTES (4u << 20) /* buffers larger than this are freed when empty */

enum out_state { OUT_IDLE, OUT_CONNECTING, OUT_HANDSHAKE, OUT_UP };

struct peer_net;

struct peer_buf {
	uint8_t *base;
	size_t start, end, cap; /* bytes in [start, end) */
};

/* An accepted link: receive only. node is 0 until its hello arrives. A TLS
 * link reads through an OpenSSL bufferevent; a plain one reads with recv
 * into one contiguous buffer (frames are handed over in place, no copy). */
struct peer_in {
	struct peer_net *net;
	struct bufferevent *bev;        /* TLS */
	int fd;                         /* plain: the socket, -1 otherwise */
	struct event *rev;              /* plain: readable */
	struct peer_buf rb;             /* plain: what was read and not handed over */
	struct event *timer;            /* the hello's deadline */
	uint32_t node;
	int pending;                    /* input (or its end) not looked at yet */
	int held;                       /* reading stopped until peer_deliver drains it */
	const char *ended;              /* closed or failed: why, once its input is handed over */
};

struct peer_node {
	struct peer_net *net;
	struct peer_addr addr;
	struct sockaddr_storage sa;
	socklen_t sa_len;               /* 0: not resolved */
	enum out_state state;
	int fd;                         /* CONNECTING: the socket; -1 otherwise */
	struct event *conn;             /* CONNECTING: writable or timed out */
	struct bufferevent *bev;        /* HANDSHAKE, UP: the outgoing link and its output queue */
	struct event *timer;            /* IDLE: the next dial; HANDSHAKE: its deadline */
	int64_t up_since_ms;
	uint64_t link_gen;              /* times the outgoing link came up */
	uint32_t backoff_ms;
	int64_t last_rx_ms;
	int warned;                     /* oversized / malformed frames logged once */
	int flapping;                   /* the last link dropped right after it came up */
};

struct peer_net {
	struct peer_opts o;
	uint8_t *hello;                 /* our encoded hello */
	size_t hello_len;
	struct evconnlistener *lis;
	SSL_CTX *tls;                   /* both ends of every link; NULL: plain TCP */
	struct peer_node *nodes;        /* every node but this one */
	size_t n;
	struct peer_in *in;             /* n + PEER_PENDING_MAX slots */
	size_t n_in;
	int pending;                    /* some link has input to look at */
	int64_t refused_log_ms;         /* refused links: one warning a minute */
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

int peer_encode_forward_refused(enum peer_refusal reason, uint8_t **out, size_t *out_len)
{
	Sluice__Cluster__ForwardRefused fr = SLUICE__CLUSTER__FORWARD_REFUSED__INIT;
	fr.reason = reason;
	Sluice__Cluster__PeerFrame pf = SLUICE__CLUSTER__PEER_FRAME__INIT;
	pf.body_case = SLUICE__CLUSTER__PEER_FRAME__BODY_FORWARD_REFUSED;
	pf.forward_refused = &fr;
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
	case SLUICE__CLUSTER__PEER_FRAME__BODY_FORWARD_REFUSED:
		if (!pf->forward_refused) {
			rc = SL_EMALFORMED;
			break;
		}
		out->kind = PEER_FRAME_FORWARD_REFUSED;
		out->refusal = pf->forward_refused->reason;
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

/* A bufferevent over connected fd: TLS from ctx (in the given role) when
 * ctx is set, else plain. It owns fd; on failure fd is closed too. */
static struct bufferevent *link_bev(struct peer_net *n, int fd, SSL_CTX *ctx, int accepting)
{
	struct bufferevent *bev = NULL;
	SSL *ssl;

	if (!ctx) {
		bev = bufferevent_socket_new(n->o.base, fd, BEV_OPT_CLOSE_ON_FREE);
	} else if ((ssl = SSL_new(ctx)) != NULL) {
		bev = bufferevent_openssl_socket_new(n->o.base, fd, ssl,
						     accepting ? BUFFEREVENT_SSL_ACCEPTING : BUFFEREVENT_SSL_CONNECTING,
						     BEV_OPT_CLOSE_ON_FREE);
		if (!bev)
			SSL_free(ssl); /* libevent leaves it to us when it fails */
	}
	if (!bev) {
		close(fd);
		return NULL;
	}
	bufferevent_set_max_single_read(bev, PEER_READ_BYTES_MAX);
	bufferevent_set_max_single_write(bev, PEER_READ_BYTES_MAX);
	return bev;
}

/* The node id the other side's certificate names (TLS links), or why not:
 * 0 and *why set. A plain link names nobody and needs not. */
static uint32_t link_cert_node(struct bufferevent *bev, const char **why)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	X509 *cert = ssl ? SSL_get0_peer_certificate(ssl) : NULL;
	uint32_t id = 0;
	int rc;

	*why = NULL;
	if (!ssl)
		return 0;
	if (!cert) {
		*why = "no certificate";
		return 0;
	}
	rc = tls_cert_node_id(cert, &id);
	if (rc == SL_OK)
		return id;
	*why = rc == SL_ENOTFOUND ? "its certificate names no node (URI:" TLS_NODE_URI_PREFIX "<id>)"
				  : "its certificate names more than one node";
	return 0;
}

/* The OpenSSL reason a TLS link failed (*tls = 1), or errno's, for the log. */
static const char *link_error(struct bufferevent *bev, short what, int *tls)
{
	unsigned long e = bufferevent_get_openssl_error(bev);
	*tls = e != 0;
	if (e) {
		const char *r = ERR_reason_error_string(e);
		while (bufferevent_get_openssl_error(bev))
			;
		return r ? r : "TLS error";
	}
	if (what & BEV_EVENT_EOF)
		return "closed by peer";
	if (what & BEV_EVENT_TIMEOUT)
		return "timed out";
	return EVUTIL_SOCKET_ERROR() ? evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()) : "closed";
}

/* One warning a minute for links refused at their start (anyone can dial). */
static int refusal_loud(struct peer_net *n)
{
	int64_t now = time_now_ms();
	if (n->refused_log_ms && now - n->refused_log_ms < 60000)
		return 0;
	n->refused_log_ms = now;
	return 1;
}

/* ---- outgoing links ---- */

static void out_arm(struct peer_net *n, struct peer_node *pn, int64_t ms)
{
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
	(void)n;
	evtimer_add(pn->timer, &tv);
}

static void out_close(struct peer_net *n, struct peer_node *pn, const char *why)
{
	int64_t now = time_now_ms();
	if (pn->state == OUT_UP)
		log_msg(pn->flapping ? LOG_DEBUG : LOG_INFO, "peer %u: link to %s:%u down: %s", pn->addr.id,
			pn->addr.host, pn->addr.port, why);
	else
		log_debug("peer %u: dial %s:%u: %s", pn->addr.id, pn->addr.host, pn->addr.port, why);
	if (pn->bev)
		bufferevent_free(pn->bev); /* frames queued on it are gone: raft retransmits */
	pn->bev = NULL;
	if (pn->conn) {
		event_free(pn->conn);
		pn->conn = NULL;
	}
	if (pn->fd >= 0)
		close(pn->fd);
	pn->fd = -1;
	if (pn->state == OUT_UP) {
		/* A link that stayed up a while starts over at the shortest backoff;
		 * one refused at once (bad hello, bad certificate) keeps backing off, quietly. */
		int brief = now - pn->up_since_ms < (int64_t)n->o.backoff_max_ms;
		if (!brief)
			pn->backoff_ms = n->o.backoff_min_ms;
		pn->flapping = brief;
	}
	pn->state = OUT_IDLE;
	out_arm(n, pn, pn->backoff_ms);
	pn->backoff_ms = pn->backoff_ms * 2 > n->o.backoff_max_ms ? n->o.backoff_max_ms : pn->backoff_ms * 2;
}

static void out_up(struct peer_net *n, struct peer_node *pn)
{
	evtimer_del(pn->timer);
	pn->state = OUT_UP;
	pn->up_since_ms = time_now_ms();
	pn->link_gen++;
	if (bufferevent_write(pn->bev, n->hello, n->hello_len) != 0) {
		out_close(n, pn, "out of memory");
		return;
	}
	log_msg(pn->flapping ? LOG_DEBUG : LOG_INFO, "peer %u: link to %s:%u up%s", pn->addr.id, pn->addr.host,
		pn->addr.port, n->tls ? " (TLS)" : "");
}

/* The peer never writes on a link we dialled: bytes mean a protocol violation. */
static void out_read_cb(struct bufferevent *bev, void *arg)
{
	struct peer_node *pn = arg;
	(void)bev;
	out_close(pn->net, pn, "unexpected bytes");
}

static void out_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct peer_node *pn = arg;
	struct peer_net *n = pn->net;
	const char *why;

	if (!(what & BEV_EVENT_CONNECTED)) {
		int tls;
		const char *e = link_error(bev, what, &tls);
		if (tls && pn->state == OUT_HANDSHAKE)
			log_msg(refusal_loud(n) ? LOG_WARN : LOG_DEBUG, "peer %u: %s:%u refused: TLS: %s", pn->addr.id,
				pn->addr.host, pn->addr.port, e);
		out_close(n, pn, e);
		return;
	}
	/* TLS: the handshake is done and the chain verified; is it the node we dialled? */
	uint32_t id = link_cert_node(bev, &why);
	if (id != pn->addr.id) {
		char buf[96];
		if (!why) {
			snprintf(buf, sizeof(buf), "its certificate is node %u's", id);
			why = buf;
		}
		log_msg(refusal_loud(n) ? LOG_WARN : LOG_DEBUG, "peer %u: %s:%u refused: %s", pn->addr.id, pn->addr.host,
			pn->addr.port, why);
		out_close(n, pn, "certificate refused");
		return;
	}
	out_up(n, pn);
}

/* The TCP connect ended (or timed out): start TLS, or the link is up. */
static void out_conn_cb(evutil_socket_t fd, short what, void *arg)
{
	struct peer_node *pn = arg;
	struct peer_net *n = pn->net;
	int e = 0;
	socklen_t el = sizeof(e);

	event_free(pn->conn);
	pn->conn = NULL;
	if (what & EV_TIMEOUT) {
		out_close(n, pn, "connect timed out");
		return;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) < 0)
		e = errno;
	if (e) {
		out_close(n, pn, strerror(e));
		return;
	}
	pn->fd = -1; /* the bufferevent's now */
	if (!(pn->bev = link_bev(n, fd, n->tls, 0))) {
		out_close(n, pn, "out of memory");
		return;
	}
	bufferevent_setcb(pn->bev, out_read_cb, NULL, out_event_cb, pn);
	bufferevent_enable(pn->bev, EV_READ | EV_WRITE);
	if (!n->tls) {
		out_up(n, pn);
		return;
	}
	pn->state = OUT_HANDSHAKE; /* out_event_cb takes it from here; the timer bounds it */
	out_arm(n, pn, PEER_CONNECT_TIMEOUT_MS);
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
	pn->state = OUT_CONNECTING;
	if (connect(fd, (struct sockaddr *)&pn->sa, pn->sa_len) < 0 && errno != EINPROGRESS) {
		out_close(n, pn, strerror(errno));
		return;
	}
	/* writable when connected (at once or later): out_conn_cb */
	struct timeval tv = {PEER_CONNECT_TIMEOUT_MS / 1000, (PEER_CONNECT_TIMEOUT_MS % 1000) * 1000};
	if (!(pn->conn = event_new(n->o.base, fd, EV_WRITE, out_conn_cb, pn)) || event_add(pn->conn, &tv) != 0)
		out_close(n, pn, "out of memory");
}

/* IDLE: dial now. CONNECTING is bounded by its own event; HANDSHAKE by this. */
static void out_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct peer_node *pn = arg;
	(void)fd;
	(void)what;
	if (pn->state == OUT_IDLE)
		out_dial(pn->net, pn);
	else if (pn->state == OUT_HANDSHAKE)
		out_close(pn->net, pn, "TLS handshake timed out");
}

/* ---- incoming links ---- */

static struct peer_node *node_find(struct peer_net *n, uint32_t id)
{
	for (size_t i = 0; i < n->n; i++)
		if (n->nodes[i].addr.id == id)
			return &n->nodes[i];
	return NULL;
}

static int in_used(const struct peer_in *l)
{
	return l->bev || l->rev;
}

/* The link's input, whichever way it reads. */
static size_t in_len(const struct peer_in *l)
{
	return l->bev ? evbuffer_get_length(bufferevent_get_input(l->bev)) : l->rb.end - l->rb.start;
}

/* The first n bytes of the input, contiguous (n <= in_len); NULL: no memory. */
static const uint8_t *in_bytes(struct peer_in *l, size_t n)
{
	if (l->bev)
		return evbuffer_pullup(bufferevent_get_input(l->bev), (ev_ssize_t)n);
	return l->rb.base + l->rb.start;
}

static void in_drain(struct peer_in *l, size_t n)
{
	if (l->bev) {
		evbuffer_drain(bufferevent_get_input(l->bev), n);
		return;
	}
	l->rb.start += n;
	buf_settle(&l->rb);
}

/* Stop reading (held, ended) or read again. */
static void in_reading(struct peer_in *l, int on)
{
	if (l->bev)
		(on ? bufferevent_enable : bufferevent_disable)(l->bev, EV_READ);
	else if (on)
		event_add(l->rev, NULL);
	else
		event_del(l->rev);
}

/* What an identified link may hold before peer_deliver: a whole frame and a read. */
static size_t in_hold_bytes(const struct peer_net *n)
{
	return (size_t)n->o.frame_bytes_max + PEER_PREFIX_BYTES + PEER_READ_BYTES_MAX;
}

static void in_free(struct peer_net *n, struct peer_in *l)
{
	if (l->bev)
		bufferevent_free(l->bev);
	if (l->rev)
		event_free(l->rev);
	if (l->fd >= 0)
		close(l->fd);
	buf_free(&l->rb);
	if (l->timer)
		event_free(l->timer);
	*l = (struct peer_in){.net = n, .fd = -1};
}

static void in_close(struct peer_net *n, struct peer_in *l, const char *why)
{
	if (l->node)
		log_info("peer %u: incoming link closed: %s", l->node, why);
	else
		log_debug("peer links: unidentified incoming link closed: %s", why);
	in_free(n, l);
}

/* The first frame: a valid hello names a known node (the one its certificate
 * names, with TLS); an older link from it goes. */
static int in_hello(struct peer_net *n, struct peer_in *l, const uint8_t *p, size_t len)
{
	Sluice__Cluster__PeerFrame *pf = sluice__cluster__peer_frame__unpack(NULL, len, p);
	int ok = pf && pf->body_case == SLUICE__CLUSTER__PEER_FRAME__BODY_HELLO && pf->hello;
	uint32_t id = ok ? pf->hello->node_id : 0;
	struct peer_node *pn = ok ? node_find(n, id) : NULL;
	const char *cert_why = NULL;
	uint32_t cert_id = n->tls ? link_cert_node(l->bev, &cert_why) : id;
	const char *why = !ok ? "no hello"
			  : !pn ? "unknown node"
			  : pf->hello->version != PEER_VERSION || pf->hello->cluster_id != n->o.cluster_id
			      ? "version or cluster id mismatch"
			  : cert_why ? cert_why
			  : cert_id != id ? "its certificate is another node's"
					  : NULL;
	if (why) {
		log_msg(refusal_loud(n) ? LOG_WARN : LOG_DEBUG,
			"peer links: incoming link refused: %s (node %u, certificate of node %u, version %u, cluster %llx)",
			why, id, cert_id, ok ? pf->hello->version : 0,
			ok ? (unsigned long long)pf->hello->cluster_id : 0ull);
		if (pf)
			sluice__cluster__peer_frame__free_unpacked(pf, NULL);
		return SL_EHANDSHAKE;
	}
	sluice__cluster__peer_frame__free_unpacked(pf, NULL);
	for (size_t i = 0; i < n->n_in; i++)
		if (&n->in[i] != l && in_used(&n->in[i]) && n->in[i].node == id)
			in_close(n, &n->in[i], "replaced by a newer link");
	l->node = id;
	event_free(l->timer);
	l->timer = NULL;
	if (l->bev)
		bufferevent_set_max_single_read(l->bev, PEER_READ_BYTES_MAX);
	pn->last_rx_ms = time_now_ms();
	log_info("peer %u: incoming link up%s", id, n->tls ? " (TLS, certificate checked)" : "");
	return SL_OK;
}

/* The first frame, read from inside the loop (it hands nothing over): a
 * hello, or the link goes. SL_OK also while it is incomplete. */
static int in_first(struct peer_net *n, struct peer_in *l)
{
	const uint8_t *p;

	if (in_len(l) < PEER_PREFIX_BYTES)
		return SL_OK;
	if (!(p = in_bytes(l, PEER_PREFIX_BYTES)))
		return SL_ENOMEM;
	uint32_t flen = be_get32(p);
	if (flen > PEER_HELLO_BYTES_MAX)
		return SL_ETOOLARGE;
	size_t whole = PEER_PREFIX_BYTES + (size_t)flen;
	if (in_len(l) < whole)
		return SL_OK;
	if (!(p = in_bytes(l, whole)))
		return SL_ENOMEM;
	int rc = in_hello(n, l, p + PEER_PREFIX_BYTES, flen);
	in_drain(l, whole);
	return rc;
}

/* Hand over every complete frame in an identified link's input. SL_OK, or
 * why to close. */
static int in_frames(struct peer_net *n, struct peer_in *l, size_t *delivered)
{
	struct peer_node *pn = node_find(n, l->node);
	const uint8_t *body;

	while (in_used(l) && in_len(l) >= PEER_PREFIX_BYTES) {
		if (!(body = in_bytes(l, PEER_PREFIX_BYTES)))
			return SL_ENOMEM;
		uint32_t flen = be_get32(body);
		if (flen > n->o.frame_bytes_max) {
			if (!pn->warned) {
				pn->warned = 1;
				log_warn("peer %u: frame of %u bytes over frame_bytes_max %u: link closed", l->node, flen,
					 n->o.frame_bytes_max);
			}
			return SL_ETOOLARGE;
		}
		size_t whole = PEER_PREFIX_BYTES + (size_t)flen;
		if (in_len(l) < whole) {
			/* plain: room for the rest of this frame at once */
			if (!l->bev && buf_reserve(&l->rb, whole - in_len(l), PEER_RBUF_BYTES_MIN))
				return SL_ENOMEM;
			return SL_OK;
		}
		if (!(body = in_bytes(l, whole)))
			return SL_ENOMEM;
		body += PEER_PREFIX_BYTES;
		if (!peer_wire_valid(body, flen)) {
			if (!pn->warned) {
				pn->warned = 1;
				log_warn("peer %u: malformed frame of %u bytes: link closed", l->node, flen);
			}
			return SL_EMALFORMED;
		}
		pn->last_rx_ms = time_now_ms();
		n->o.on_frame(n->o.arg, l->node, body, flen);
		(*delivered)++;
		in_drain(l, whole);
	}
	return SL_OK;
}

/* Input to hand over at peer_deliver; a link holding as much as one frame
 * can take and a read more stops reading until then. */
static void in_input(struct peer_in *l)
{
	struct peer_net *n = l->net;
	if (!l->node) {
		int rc = in_first(n, l);
		if (rc)
			in_close(n, l, sl_strerror(rc));
		else if (!l->node && l->ended)
			in_close(n, l, l->ended);
		if (rc || !l->node)
			return;
	}
	if (in_len(l) >= in_hold_bytes(n)) {
		in_reading(l, 0);
		l->held = 1;
	}
	l->pending = 1;
	n->pending = 1;
}

static void in_read_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	in_input(arg);
}

/* A plain link is readable: recv into its buffer, at most a read's worth
 * (a hello's before it said who it is), then as in_read_cb. */
static void in_sock_cb(evutil_socket_t fd, short what, void *arg)
{
	struct peer_in *l = arg;
	size_t got = 0, cap = l->node ? PEER_READ_BYTES_MAX : PEER_HELLO_BYTES_MAX + PEER_PREFIX_BYTES;
	(void)what;
	while (got < cap && !(!l->node && in_len(l) >= cap)) {
		if (buf_reserve(&l->rb, 1, l->node ? PEER_RBUF_BYTES_MIN : cap)) {
			in_close(l->net, l, "out of memory");
			return;
		}
		size_t room = l->rb.cap - l->rb.end;
		if (room > cap - got)
			room = cap - got;
		if (!l->node && room > cap - in_len(l))
			room = cap - in_len(l);
		ssize_t r = recv(fd, l->rb.base + l->rb.end, room, 0);
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			break;
		if (r <= 0) {
			l->ended = r == 0 ? "closed by peer" : strerror(errno);
			in_reading(l, 0);
			break;
		}
		l->rb.end += (size_t)r;
		got += (size_t)r;
	}
	in_input(l);
}

/* A closed or failed link still hands over what arrived before it ended. */
static void in_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct peer_in *l = arg;
	if (what & BEV_EVENT_CONNECTED)
		return; /* TLS handshake done: the hello says who it is */
	int tls;
	const char *e = link_error(bev, what, &tls);
	if (!l->node) {
		if (tls)
			log_msg(refusal_loud(l->net) ? LOG_WARN : LOG_DEBUG, "peer links: incoming link refused: TLS: %s", e);
		in_close(l->net, l, e);
		return;
	}
	l->ended = e;
	bufferevent_disable(bev, EV_READ | EV_WRITE);
	l->pending = 1;
	l->net->pending = 1;
}

static void in_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct peer_in *l = arg;
	(void)fd;
	(void)what;
	if (!l->node)
		in_close(l->net, l, "no hello in time");
}

static void in_accept_cb(struct evconnlistener *lis, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	struct peer_net *n = arg;
	size_t pending = 0, slot = n->n_in;
	(void)lis;
	(void)sa;
	(void)salen;
	for (size_t i = 0; i < n->n_in; i++) {
		if (!in_used(&n->in[i]) && slot == n->n_in)
			slot = i;
		else if (in_used(&n->in[i]) && !n->in[i].node)
			pending++;
	}
	if (slot == n->n_in || pending >= PEER_PENDING_MAX) {
		log_debug("peer links: too many unidentified incoming links; refused one");
		close(fd);
		return;
	}
	sock_opts(fd);
	struct peer_in *l = &n->in[slot];
	struct timeval tv = {PEER_HELLO_TIMEOUT_MS / 1000, (PEER_HELLO_TIMEOUT_MS % 1000) * 1000};
	*l = (struct peer_in){.net = n, .fd = -1};
	l->timer = evtimer_new(n->o.base, in_timer_cb, l);
	if (!l->timer || evtimer_add(l->timer, &tv) != 0) {
		close(fd);
		in_close(n, l, "out of memory");
		return;
	}
	if (!n->tls) {
		l->fd = fd;
		if (!(l->rev = event_new(n->o.base, fd, EV_READ | EV_PERSIST, in_sock_cb, l)) ||
		    event_add(l->rev, NULL) != 0)
			in_close(n, l, "out of memory");
		return;
	}
	if (!(l->bev = link_bev(n, fd, n->tls, 1))) {
		in_close(n, l, "out of memory");
		return;
	}
	/* until it says who it is, a link may not make us read more than a hello */
	bufferevent_set_max_single_read(l->bev, PEER_HELLO_BYTES_MAX + PEER_PREFIX_BYTES);
	bufferevent_setcb(l->bev, in_read_cb, NULL, in_event_cb, l);
	bufferevent_enable(l->bev, EV_READ);
}

/* ---- the net ---- */

static void tls_set(struct peer_net *n, SSL_CTX *tls)
{
	if (tls)
		SSL_CTX_up_ref(tls);
	SSL_CTX_free(n->tls);
	n->tls = tls;
}

int peer_net_open(struct peer_net **out, const struct peer_opts *o)
{
	*out = NULL;
	if (!o->self_id || !o->n_nodes || o->n_nodes > RAFT_NODES_MAX || !o->base || !o->on_frame)
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
	tls_set(n, o->tls);
	int rc = SL_ENOMEM, lfd = -1;
	n->nodes = calloc(o->n_nodes, sizeof(*n->nodes));
	n->n_in = o->n_nodes + PEER_PENDING_MAX;
	n->in = calloc(n->n_in, sizeof(*n->in));
	for (size_t i = 0; n->in && i < n->n_in; i++)
		n->in[i] = (struct peer_in){.net = n, .fd = -1};
	if (!n->nodes || !n->in)
		goto fail;
	const struct peer_addr *self = NULL;
	for (size_t i = 0; i < o->n_nodes; i++) {
		if (o->nodes[i].id == o->self_id) {
			self = &o->nodes[i];
			continue;
		}
		struct peer_node *pn = &n->nodes[n->n++];
		pn->net = n;
		pn->addr = o->nodes[i];
		pn->addr.host[sizeof(pn->addr.host) - 1] = 0;
		pn->fd = -1;
		pn->backoff_ms = n->o.backoff_min_ms;
		if (!(pn->timer = evtimer_new(n->o.base, out_timer_cb, pn)))
			goto fail;
		resolve(&pn->addr, 0, &pn->sa, &pn->sa_len); /* retried at dial if it fails */
	}
	rc = SL_EINVAL;
	if (!self)
		goto fail;
	if ((rc = peer_encode_hello(o->self_id, o->cluster_id, &n->hello, &n->hello_len)))
		goto fail;
	if ((rc = listen_open(self, &lfd)))
		goto fail;
	rc = SL_ENOMEM;
	n->lis = evconnlistener_new(n->o.base, in_accept_cb, n, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, lfd);
	if (!n->lis) {
		close(lfd);
		goto fail;
	}
	for (size_t i = 0; i < n->n; i++)
		out_dial(n, &n->nodes[i]);
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
	if (n->lis)
		evconnlistener_free(n->lis);
	for (size_t i = 0; n->in && i < n->n_in; i++)
		in_free(n, &n->in[i]);
	for (size_t i = 0; i < n->n; i++) {
		struct peer_node *pn = &n->nodes[i];
		if (pn->bev)
			bufferevent_free(pn->bev);
		if (pn->conn)
			event_free(pn->conn);
		if (pn->fd >= 0)
			close(pn->fd);
		if (pn->timer)
			event_free(pn->timer);
	}
	tls_set(n, NULL);
	free(n->in);
	free(n->nodes);
	free(n->hello);
	free(n);
}

int peer_net_set_tls(struct peer_net *n, struct ssl_ctx_st *tls)
{
	if (!tls || !n->tls)
		return SL_EINVAL; /* plain stays plain, TLS stays TLS: a restart changes that */
	tls_set(n, tls);
	return SL_OK;
}

int peer_send(struct peer_net *n, uint32_t to, const uint8_t *frame, size_t len)
{
	struct peer_node *pn = node_find(n, to);
	if (!pn || len < PEER_PREFIX_BYTES || be_get32(frame) != len - PEER_PREFIX_BYTES)
		return SL_EINVAL;
	if (len - PEER_PREFIX_BYTES > n->o.frame_bytes_max || len > n->o.send_bytes_max)
		return SL_ETOOLARGE; /* could never be sent, or the peer would refuse it */
	if (pn->state != OUT_UP || evbuffer_get_length(bufferevent_get_output(pn->bev)) + len > n->o.send_bytes_max)
		return SL_EAGAIN;
	if (bufferevent_write(pn->bev, frame, len) != 0)
		return SL_ENOMEM;
	return SL_OK;
}

void peer_flush(struct peer_net *n)
{
	for (size_t i = 0; i < n->n; i++) {
		struct peer_node *pn = &n->nodes[i];
		if (pn->state == OUT_UP && evbuffer_get_length(bufferevent_get_output(pn->bev))) {
			/* one non-blocking round of the loop writes it; frames read
			 * meanwhile wait for peer_deliver */
			event_base_loop(n->o.base, EVLOOP_NONBLOCK);
			return;
		}
	}
}

size_t peer_deliver(struct peer_net *n)
{
	size_t delivered = 0;
	while (n->pending) {
		n->pending = 0;
		for (size_t i = 0; i < n->n_in; i++) {
			struct peer_in *l = &n->in[i];
			if (!in_used(l) || !l->pending || !l->node)
				continue;
			l->pending = 0;
			int rc = in_frames(n, l, &delivered);
			if (!in_used(l))
				continue; /* replaced by a newer link while its hello was read */
			if (rc)
				in_close(n, l, sl_strerror(rc));
			else if (l->ended)
				in_close(n, l, l->ended);
			else if (l->held) {
				l->held = 0;
				in_reading(l, 1);
			}
		}
	}
	return delivered;
}

int peer_pending(const struct peer_net *n)
{
	return n->pending;
}

size_t peer_queued(const struct peer_net *n, uint32_t to)
{
	for (size_t i = 0; i < n->n; i++)
		if (n->nodes[i].addr.id == to)
			return n->nodes[i].bev ? evbuffer_get_length(bufferevent_get_output(n->nodes[i].bev)) : 0;
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
