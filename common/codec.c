/*
 * codec.c: native frames, [u32 big-endian length][protobuf sluice.Frame].
 * codec_frame_peek enforces frame_bytes_max from the 4-byte prefix alone, so
 * nothing is buffered or allocated for an oversized frame; protobuf-c's unpack
 * then validates every field against the bytes actually present.
 *
 * protobuf-c accepts field number 0 when its tag is spelled as a multi-byte
 * varint and keeps it as an unknown field, but packs it back in a form its own
 * parser rejects. Field 0 is illegal protobuf, so such frames are malformed
 * (found by tests/fuzz/frame_fuzz.c). The schema has no recursive messages,
 * so the check's recursion depth is bounded by the schema.
 */

#include <stdlib.h>

#include "codec.h"
#include "sl_assert.h"
#include "err.h"
#include "slice.h"

#define CODEC_PREFIX_BYTES 4

int codec_frame_peek(const uint8_t *buf, size_t avail, uint32_t frame_bytes_max, size_t *frame_len)
{
	*frame_len = 0;
	if (avail < CODEC_PREFIX_BYTES)
		return SL_EAGAIN;
	uint32_t len = be_get32(buf);
	if (len > frame_bytes_max)
		return SL_ETOOLARGE;
	size_t total = CODEC_PREFIX_BYTES + (size_t)len;
	*frame_len = total;
	return avail < total ? SL_EAGAIN : SL_OK;
}

static int codec_tree_valid(const ProtobufCMessage *m)
{
	for (unsigned i = 0; i < m->n_unknown_fields; i++)
		if (m->unknown_fields[i].tag == 0)
			return 0;
	const ProtobufCMessageDescriptor *d = m->descriptor;
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *fd = &d->fields[i];
		if (fd->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		const uint8_t *at = (const uint8_t *)m + fd->offset;
		if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)((const uint8_t *)m + fd->quantifier_offset);
			ProtobufCMessage *const *v = *(ProtobufCMessage *const *const *)at;
			for (size_t j = 0; j < n; j++)
				if (!codec_tree_valid(v[j]))
					return 0;
			continue;
		}
		if (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
			uint32_t which = *(const uint32_t *)((const uint8_t *)m + fd->quantifier_offset);
			if (which != fd->id)
				continue;
		}
		const ProtobufCMessage *sub = *(ProtobufCMessage *const *)at;
		if (sub && !codec_tree_valid(sub))
			return 0;
	}
	return 1;
}

int codec_frame_decode(const uint8_t *body, size_t len, Sluice__Frame **out)
{
	*out = NULL;
	Sluice__Frame *f = sluice__frame__unpack(NULL, len, body);
	if (!f)
		return SL_EMALFORMED;
	if (f->body_case == SLUICE__FRAME__BODY__NOT_SET || !codec_tree_valid(&f->base)) {
		sluice__frame__free_unpacked(f, NULL);
		return SL_EMALFORMED;
	}
	*out = f;
	return SL_OK;
}

void codec_frame_free(Sluice__Frame *f)
{
	if (f)
		sluice__frame__free_unpacked(f, NULL);
}

size_t codec_frame_size(const Sluice__Frame *f)
{
	return CODEC_PREFIX_BYTES + sluice__frame__get_packed_size(f);
}

size_t codec_frame_encode(const Sluice__Frame *f, uint8_t *out)
{
	size_t n = sluice__frame__get_packed_size(f);
	SL_ASSERT(n <= UINT32_MAX);
	be_put32(out, (uint32_t)n);
	size_t w = sluice__frame__pack(f, out + CODEC_PREFIX_BYTES);
	SL_ASSERT(w == n);
	return CODEC_PREFIX_BYTES + w;
}

int codec_frame_dup(const Sluice__Frame *f, Sluice__Frame **out)
{
	size_t n = codec_frame_size(f);
	uint8_t *buf = malloc(n);
	int rc;

	if (!buf)
		return SL_ENOMEM;
	codec_frame_encode(f, buf);
	rc = codec_frame_decode(buf + 4, n - 4, out);
	free(buf);
	return rc;
}

const char *codec_error_name(int code)
{
	const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(&sluice__error_code__descriptor, code);

	return v ? v->name : "INTERNAL";
}
