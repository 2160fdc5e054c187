/*
 * ringmsg.h: the records a frontend and the logwriter exchange through their
 * rings. All fields are native-endian (both ends are on the same machine).
 * Every request carries a cookie chosen by the frontend; the ack echoes it.
 * Cookies embed the frontend generation in their top 16 bits, so a restarted
 * frontend ignores acks meant for its predecessor.
 *
 * Headers (message headers, not ring headers) are carried and stored as one
 * blob: repeated [u16 key_len][key][u32 value_len][value], key_len <= 255.
 *
 * Admin requests (topic create and delete, consumer create, delete, webhook
 * settings and seek) name the principal who asked: by_len bytes after every
 * other trailing byte (fe_auth_principal: "-" with [auth] off). The logwriter
 * audits them with it and counts topics per creator. by_len = 0 (records
 * written before it existed, or made by the logwriter itself): the system.
 */
#ifndef SLUICE_RINGMSG_H
#define SLUICE_RINGMSG_H

#include <stddef.h>
#include <stdint.h>

#include "slice.h"

enum rm_type {
	RM_PUBLISH = 1,
	RM_CREATE_TOPIC = 2,
	RM_DELETE_TOPIC = 3,
	RM_COMMIT_OFFSET = 4,
	RM_TRANSFER_LEADER = 5,  /* cluster: hand leadership to another node (ack: err only) */
	RM_RETENTION = 6,        /* cluster: in raft entries only, never in rings (replica/raft/entry.h) */
	RM_PUBLISH_BATCH = 7,    /* many messages of one producer to one partition (PublishBatch) */
	RM_ACK = 10,
	RM_CONSUMER_CREATE = 11, /* durable consumers (replica/consumer/, replica/logwriter/lw_consumer.c) */
	RM_CONSUMER_DELETE = 12,
	RM_CONSUMER_ACK = 13,    /* acks, nacks and in-progress marks of one consumer */
	RM_CONSUMER_PULL = 14,   /* take what is due: answered by RM_ACK_PICK acks, then RM_ACK_PICK_END */
	RM_CONSUMER_WEBHOOK = 15, /* replace a consumer's webhook settings */
	RM_CONSUMER_SEEK = 16,   /* start a consumer again from a position */
	RM_CALLBACK = 17,        /* a publish's commit callback: appends to sluice.callbacks at commit */
	RM_AUTH = 18,            /* principals, permissions, the token signing key (lw_auth.c) */
};

#define RM_PARTITION_ANY UINT32_MAX
#define RM_TOPIC_NAME_MAX 249
#define RM_GROUP_NAME_MAX 249

/* RM_PUBLISH: followed by topic, key, headers blob, payload (in that order). */
struct rm_publish {
	uint64_t cookie;
	uint64_t producer_id;
	uint64_t sequence;
	uint32_t partition;     /* RM_PARTITION_ANY: by key hash, or round robin */
	uint32_t key_len;
	uint32_t headers_len;
	uint32_t payload_len;
	uint16_t topic_len;
	uint16_t epoch;         /* cluster: low 16 bits of the shm epoch the frontend had seen */
	uint16_t pad[2];
};

/* RM_PUBLISH_BATCH: followed by the topic, then `records_len` bytes of
 * `count` records in the PublishBatch layout (common/pubbatch.h), checked by
 * the frontend. Message i has sequence base_sequence + i. */
struct rm_publish_batch {
	uint64_t cookie;
	uint64_t producer_id;
	uint64_t base_sequence;
	uint32_t partition;     /* RM_PARTITION_ANY: the topic's sticky partition, for the whole batch */
	uint32_t count;
	uint32_t records_len;
	uint16_t topic_len;
	uint16_t epoch;         /* cluster: low 16 bits of the shm epoch the frontend had seen */
};

/* Who asked for an admin request: at most this many bytes (AUTH_PRINCIPAL_BYTES_MAX). */
#define RM_BY_MAX 64

/* RM_CREATE_TOPIC: followed by the name, then the principal (by_len). */
struct rm_create_topic {
	uint64_t cookie;
	int64_t retention_ms;
	int64_t retention_bytes;
	uint32_t partitions;
	uint16_t name_len;
	uint16_t by_len;
};

/* RM_DELETE_TOPIC: followed by the name, then the principal. */
struct rm_delete_topic {
	uint64_t cookie;
	uint16_t name_len;
	uint16_t by_len;
	uint16_t pad[2];
};

/* RM_COMMIT_OFFSET: followed by topic then group. */
struct rm_commit_offset {
	uint64_t cookie;
	uint64_t offset;
	uint32_t partition;
	uint16_t topic_len;
	uint16_t group_len;
};

#define RM_ACK_DUPLICATE 1u
#define RM_ACK_PICK 2u       /* RM_CONSUMER_PULL: one message taken (partition, offset, count = attempt) */
#define RM_ACK_PICK_END 4u   /* RM_CONSUMER_PULL: the last ack of the pull (no message) */

#define RM_CONSUMER_NAME_MAX 249
#define RM_SCHEDULE_MAX 16

enum rm_start { RM_START_EARLIEST = 0, RM_START_LATEST = 1, RM_START_OFFSET = 2, RM_START_TIMESTAMP = 3 };

#define RM_WEBHOOK_BYTES_MAX 16384

/* RM_CONSUMER_CREATE: followed by name, topic, dead-letter topic, webhook
 * JSON (webhook_len bytes, 0: not a webhook), the principal (by_len).
 * Values come with the defaults filled in by the frontend. */
struct rm_consumer_create {
	uint64_t cookie;
	uint64_t start_offset;
	int64_t start_ts;
	uint32_t start;         /* enum rm_start */
	uint32_t shared;        /* 0: ordered */
	uint32_t max_in_flight;
	uint32_t max_deliveries; /* 0: never dead-letter */
	uint32_t ack_timeout_ms;
	uint32_t nschedule;
	uint32_t schedule_ms[RM_SCHEDULE_MAX];
	uint16_t name_len;
	uint16_t topic_len;
	uint16_t dlq_len;
	uint16_t by_len;
	uint32_t webhook_len;
	uint32_t pad2;
};

/* RM_CONSUMER_WEBHOOK: followed by the name, the webhook JSON (a patch), the principal. */
struct rm_consumer_webhook {
	uint64_t cookie;
	uint32_t webhook_len;
	uint16_t name_len;
	uint16_t by_len;
};

/* RM_CONSUMER_SEEK: followed by the name, then the principal. */
struct rm_consumer_seek {
	uint64_t cookie;
	uint64_t offset;
	int64_t ts;
	uint32_t start;         /* enum rm_start */
	uint16_t name_len;
	uint16_t by_len;
};

/* RM_CONSUMER_DELETE: followed by the name, then the principal. */
struct rm_consumer_delete {
	uint64_t cookie;
	uint16_t name_len;
	uint16_t by_len;
	uint16_t pad[2];
};

/* Where the by_len field of a record of this type is, or 0: the type
 * carries no principal. */
static inline size_t rm_by_len_at(uint16_t type)
{
	switch (type) {
	case RM_CREATE_TOPIC:
		return offsetof(struct rm_create_topic, by_len);
	case RM_DELETE_TOPIC:
		return offsetof(struct rm_delete_topic, by_len);
	case RM_CONSUMER_CREATE:
		return offsetof(struct rm_consumer_create, by_len);
	case RM_CONSUMER_DELETE:
		return offsetof(struct rm_consumer_delete, by_len);
	case RM_CONSUMER_WEBHOOK:
		return offsetof(struct rm_consumer_webhook, by_len);
	case RM_CONSUMER_SEEK:
		return offsetof(struct rm_consumer_seek, by_len);
	default:
		return 0;
	}
}

enum rm_cack_kind { RM_CACK_ACK = 0, RM_CACK_NACK = 1, RM_CACK_IN_PROGRESS = 2 };

/* Where a record's items start after n bytes of header and name. */
static inline size_t rm_align8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

/* RM_CONSUMER_ACK: followed by the name, then `count` struct rm_cack_item
 * (8-aligned: the name is padded to 8, rm_align8), then the error texts of the items
 * one after the other (item i's error_len bytes). */
struct rm_consumer_ack {
	uint64_t cookie;
	uint32_t count;
	uint16_t name_len;
	uint16_t pad;
};

struct rm_cack_item {
	uint64_t offset;
	int64_t delay_ms;       /* RM_CACK_NACK: < 0: the schedule */
	uint32_t partition;
	uint16_t kind;          /* enum rm_cack_kind */
	uint16_t error_len;     /* <= RM_CACK_ERROR_MAX */
};

#define RM_CACK_ITEMS_MAX 1000
#define RM_CACK_ERROR_MAX 200

#define RM_PULL_MAX 1000
#define RM_PULL_DEAD_LETTER 1u  /* set by the leader: this pull may dead-letter (a barrier: it appends) */

/* RM_CONSUMER_PULL: followed by the name. */
struct rm_consumer_pull {
	uint64_t cookie;
	uint32_t max;           /* 1 .. RM_PULL_MAX */
	uint32_t wait_ms;       /* the leader holds it this long while nothing is due */
	uint16_t name_len;
	uint16_t flags;         /* RM_PULL_* */
	uint32_t pad;
};

/*
 * RM_CALLBACK: followed by the topic, url, operation id and secret. It
 * follows its publish in the same ring (the frontend pushes both or
 * neither), so it is applied after it; applying it looks the publish's
 * dedup entry up (producer_id, topic, space, sequence) and appends the
 * outcome to sluice.callbacks, made on first use with secret signing its
 * webhook (replica/logwriter/lw_callback.c).
 */
#define RM_CALLBACK_TOPIC "sluice.callbacks"
#define RM_CALLBACK_URL_MAX 2048
#define RM_CALLBACK_ID_MAX 255
#define RM_CALLBACK_SECRET_MAX 256
struct rm_callback {
	uint64_t cookie;
	uint64_t producer_id;
	uint64_t sequence;
	int64_t created_ms;
	uint32_t space;         /* a partition, or RM_PARTITION_ANY */
	uint32_t count;         /* messages in the publish */
	uint16_t topic_len;
	uint16_t url_len;
	uint16_t id_len;
	uint16_t secret_len;
};

/* RM_AUTH: followed by json_len bytes of a JSON command (replica/logwriter/lw_auth.c). */
#define RM_AUTH_JSON_MAX 16384
struct rm_auth {
	uint64_t cookie;
	uint32_t json_len;
	uint32_t pad;
};

/* RM_TRANSFER_LEADER: no trailing bytes. */
struct rm_transfer_leader {
	uint64_t cookie;
	uint32_t to;            /* node id */
	uint32_t pad;
};

/* RM_ACK: no trailing bytes. err is an sl_err (0 = success). term and
 * log_index name the raft entry the request was committed in (0 on a single
 * node). */
struct rm_ack {
	uint64_t cookie;
	uint64_t offset;
	int64_t timestamp_ms;
	uint32_t err;
	uint32_t partition;
	uint32_t flags;
	uint32_t count;         /* RM_PUBLISH_BATCH: messages at offset, offset + 1, ... (else 1) */
	uint64_t term;
	uint64_t log_index;
};

/* Header blob iteration: returns 1 and fills k/v while headers remain, 0 at
 * the end, -1 if the blob is malformed. *pos starts at 0. */
int hdrs_next(struct slice blob, size_t *pos, struct slice *k, struct slice *v);

/* How many headers the blob holds (*n) and their keys' bytes with a NUL
 * each (*key_bytes): 0, or -1 if the blob is malformed. */
int hdrs_count(struct slice blob, size_t *n, size_t *key_bytes);

/* Bytes one header takes in the blob. */
static inline size_t hdrs_entry_bytes(size_t klen, size_t vlen)
{
	return 2 + klen + 4 + vlen;
}

/* Append one header at p (which has hdrs_entry_bytes room); returns bytes written. */
size_t hdrs_put(uint8_t *p, struct slice k, struct slice v);

#endif
