/*
 * ws_fuzz.c: libFuzzer target for the WebSocket message path of
 * broker/http: the bytes a client sends after the handshake go through a
 * wslay server context (framing, masking, fragmentation, control frames,
 * the message limit) exactly as ws.c drives it: read from a buffer, writes
 * discarded; each complete text message is checked as UTF-8 and decoded as
 * a sluice.v1.json request (ws_json_decode), as ws_sluice.c does. The input
 * is also decoded whole as one JSON request.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include <wslay/wslay.h>

#include "utf8.h"
#include "ws_json.h"

struct feed {
	const uint8_t *p;
	size_t n, off;
};

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *arg)
{
	struct feed *f = arg;
	size_t k = f->n - f->off;

	(void)flags;
	if (k == 0) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	/* odd-sized reads, as TCP gives them */
	if (k > len)
		k = len;
	if (k > 7 && (f->p[f->off] & 1))
		k = 7;
	memcpy(buf, f->p + f->off, k);
	f->off += k;
	return (ssize_t)k;
}

static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags, void *arg)
{
	(void)ctx;
	(void)data;
	(void)flags;
	(void)arg;
	return (ssize_t)len;
}

static void decode(const uint8_t *p, size_t n)
{
	struct ws_json_req r;
	const char *why;

	ws_json_decode(p, n, &r, &why);
	ws_json_req_free(&r);
}

static void msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *m, void *arg)
{
	(void)ctx;
	(void)arg;
	if (m->opcode == WSLAY_TEXT_FRAME && utf8_valid(m->msg, m->msg_length))
		decode(m->msg, m->msg_length);
	if (m->opcode == WSLAY_CONNECTION_CLOSE && m->msg_length > 2)
		(void)utf8_valid(m->msg + 2, m->msg_length - 2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wslay_event_callbacks cb = {.recv_callback = recv_cb, .send_callback = send_cb, .on_msg_recv_callback = msg_cb};
	struct feed f = {data, size, 0};
	wslay_event_context_ptr ctx;

	decode(data, size);
	if (wslay_event_context_server_init(&ctx, &cb, &f) != 0)
		return 0;
	wslay_event_config_set_max_recv_msg_length(ctx, 65536);
	for (int i = 0; i < 64 && f.off < f.n && wslay_event_want_read(ctx); i++) {
		if (wslay_event_recv(ctx) != 0)
			break;
		wslay_event_send(ctx);
	}
	wslay_event_context_free(ctx);
	return 0;
}
