/*
 * codec.h: the native frame codec. A frame on the wire is
 * [u32 big-endian length][protobuf sluice.Frame]. The decoder checks the
 * length against the limit before it allocates anything, and protobuf-c's
 * unpack validates the rest.
 */
#ifndef SLUICE_CODEC_H
#define SLUICE_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "sluice.pb-c.h"

#define CODEC_VERSION 1
#define CODEC_FRAME_BYTES_DEFAULT (1u << 20)

/*
 * Look at buffered bytes [buf, buf+avail). Returns:
 *   SL_OK with *frame_len = total bytes of the next frame (4 + body) when it
 *         is complete in the buffer,
 *   SL_EAGAIN when more bytes are needed (*frame_len = bytes needed in all if
 *         known, else 0),
 *   SL_ETOOLARGE when the announced length exceeds frame_bytes_max.
 */
int codec_frame_peek(const uint8_t *buf, size_t avail, uint32_t frame_bytes_max, size_t *frame_len);

/*
 * Decode one complete frame body (the bytes after the length prefix).
 * On success *out is a heap Frame to free with codec_frame_free.
 * Returns SL_EMALFORMED if protobuf-c cannot unpack it or it has no body.
 */
int codec_frame_decode(const uint8_t *body, size_t len, Sluice__Frame **out);

void codec_frame_free(Sluice__Frame *f);
/* A heap copy of f (encoded, then decoded), to free with codec_frame_free:
 * for handing a frame built on the stack to code that may keep it. */
int codec_frame_dup(const Sluice__Frame *f, Sluice__Frame **out);
/* The name of a wire ErrorCode as docs/protocol.md spells it ("NO_SUCH_TOPIC");
 * "INTERNAL" for a value the protocol does not define. */
const char *codec_error_name(int code);

/* Encoded size of f including the 4-byte prefix. */
size_t codec_frame_size(const Sluice__Frame *f);

/* Encode f with its prefix into out (codec_frame_size bytes). Returns bytes written. */
size_t codec_frame_encode(const Sluice__Frame *f, uint8_t *out);

#endif
