/*
 * unpack.h: libsluice's side of stored record batches (RecordBatch,
 * docs/protocol.md#stored-batches): the records a batch delivers, as the
 * same struct sluice_msg that Delivery.messages give.
 */
#ifndef SLUICE_CLIENT_UNPACK_H
#define SLUICE_CLIENT_UNPACK_H

#include <stddef.h>

#include "sluice.pb-c.h"
#include "sluice/sluice.h"

#define UNPACK_HEADERS_STACK 16 /* a record with more headers allocates their array */

/*
 * Check b (untrusted: from the network) and return how many records it
 * delivers in *n: the batch value's header, sizes and CRC32C, and that
 * [first_offset, first_offset + count) lies inside the batch. Nothing is
 * allocated. SL_OK or SL_ECORRUPT.
 */
int unpack_check(const Sluice__RecordBatch *b, size_t *n);

/*
 * Call fn with each record b delivers, in offset order, as a sluice_msg
 * whose topic, slices and headers point into b (and, for header keys, into
 * a buffer of the call's): valid only during fn. fn returns non-zero to
 * stop. Every length is checked before it is used; a malformed record
 * stops the walk with SL_ECORRUPT (the records before it were handed out).
 * SL_ENOMEM if a record's headers could not be given an array.
 */
int unpack_batch(const Sluice__RecordBatch *b, int (*fn)(void *arg, const struct sluice_msg *m), void *arg);

#endif
