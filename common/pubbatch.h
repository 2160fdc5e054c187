/*
 * pubbatch.h: the records of a PublishBatch (proto/sluice.proto), as they
 * travel from the client through the frontend's ring to the logwriter:
 *
 *   record  = [u32 key_len][u32 headers_len][u32 payload_len][key][headers][payload]
 *   headers = ([u16 key_len][key][u32 value_len][value])*      (common/ringmsg.h)
 *
 * Every integer is little-endian, which is the host order sluice runs on
 * (checked at compile time), so the header blob is stored as it arrives.
 * The frontend checks a batch once (pubbatch_check) without building a
 * protobuf object per message; the logwriter walks it with pubbatch_next,
 * which still checks every length against what is left.
 */
#ifndef SLUICE_PUBBATCH_H
#define SLUICE_PUBBATCH_H

#include <stddef.h>
#include <stdint.h>

#include "slice.h"

#define PUBBATCH_COUNT_MAX 65536u
#define PUBBATCH_REC_HDR 12u

/* SL_OK if recs holds exactly `count` well-formed records (header blobs
 * included); SL_EMALFORMED otherwise, with *why saying what. */
int pubbatch_check(struct slice recs, uint32_t count, const char **why);

/* The record at *pos: 1 and its parts, 0 at the end, -1 if malformed. */
int pubbatch_next(struct slice recs, size_t *pos, struct slice *key, struct slice *headers, struct slice *payload);

/* Append one record at p (PUBBATCH_REC_HDR + lengths bytes); returns the bytes written. */
size_t pubbatch_put(uint8_t *p, struct slice key, struct slice headers, struct slice payload);

#endif
