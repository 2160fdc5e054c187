/*
 * topic.c: topics (create, delete, get, foreach), their partition records and
 * the allocation of commit-table slots.
 *
 * Caveats:
 * - Topic ids are never reused (meta "next_topic_id"), so a re-created topic
 *   never sees the batches of a deleted one.
 * - Deleting a topic drops its metadata and leaves a "deltopic/<id>" meta
 *   entry; its batches, index entries, partitions and group offsets are
 *   removed later in bounded chunks by retention.c.
 * - A topic's value is 40 bytes (version 1), or version 2: the same 40 bytes
 *   then [u8 len][creator], the principal who made it. Topics without a
 *   creator (made by the system) are still written as version 1, and values
 *   written before version 2 read back with creator "".
 * - Slot allocation walks every topic (O(topics + slots_max)); topics are
 *   created rarely.
 */
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "sl_assert.h"
#include "store.h"
#include "store_int.h"
#include "vec.h"

#define PART_KEY_BYTES 8
#define PART_VAL_BYTES 32
#define TOPIC_VAL_BYTES 40
#define TOPIC_VAL_VERSION 1u
#define TOPIC_VAL_VERSION_CREATOR 2u
#define TOPIC_VAL_BYTES_MAX (TOPIC_VAL_BYTES + 1 + STORE_CREATOR_MAX)

/* ------------------------------------------------------------------------ */
/* partitions                                                               */

int store_part_put(struct store_txn *t, uint32_t topic_id, uint32_t partition, const struct store_partition *p)
{
	uint8_t k[PART_KEY_BYTES], v[PART_VAL_BYTES];

	SL_ASSERT(p->first_offset <= p->end_offset);
	be_put32(k, topic_id);
	be_put32(k + 4, partition);
	be_put64(v, p->first_offset);
	be_put64(v + 8, p->end_offset);
	be_put64(v + 16, p->bytes);
	be_put64(v + 24, (uint64_t)p->max_ts);
	return store_db_put(t, DB_PARTITIONS, mval(k, sizeof(k)), mval(v, sizeof(v)), 0);
}

int store_partition_get(struct store_txn *t, uint32_t topic_id, uint32_t partition, struct store_partition *out)
{
	uint8_t k[PART_KEY_BYTES];
	const uint8_t *p;
	MDB_val v;
	int err;

	be_put32(k, topic_id);
	be_put32(k + 4, partition);
	err = store_db_get(t, DB_PARTITIONS, mval(k, sizeof(k)), &v);
	if (err == SL_ENOTFOUND)
		return SL_ENOTOPIC;
	if (err != SL_OK)
		return err;
	if (v.mv_size != PART_VAL_BYTES)
		return SL_ECORRUPT;
	p = v.mv_data;
	out->first_offset = be_get64(p);
	out->end_offset = be_get64(p + 8);
	out->bytes = be_get64(p + 16);
	out->max_ts = (int64_t)be_get64(p + 24);
	if (out->first_offset > out->end_offset)
		return SL_ECORRUPT;
	return SL_OK;
}

/* ------------------------------------------------------------------------ */
/* topics                                                                   */

int store_name_ok(const char *name, size_t n)
{
	if (name == NULL || n == 0 || n > STORE_TOPIC_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
		      c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

/* The creator of a version 2 value (disk bytes: every length checked). */
static int topic_decode_creator(const uint8_t *p, size_t n, struct store_topic *out)
{
	size_t cl;

	if (n < TOPIC_VAL_BYTES + 1)
		return SL_ECORRUPT;
	cl = p[TOPIC_VAL_BYTES];
	if (cl == 0 || cl > STORE_CREATOR_MAX || n != TOPIC_VAL_BYTES + 1 + cl)
		return SL_ECORRUPT;
	memcpy(out->creator, p + TOPIC_VAL_BYTES + 1, cl);
	out->creator[cl] = 0;
	return SL_OK;
}

static int topic_decode(const MDB_val *k, const MDB_val *v, struct store_topic *out)
{
	const uint8_t *p = v->mv_data;

	if (v->mv_size < TOPIC_VAL_BYTES || k->mv_size == 0 || k->mv_size > STORE_TOPIC_NAME_MAX)
		return SL_ECORRUPT;
	if (!(p[0] == TOPIC_VAL_VERSION && v->mv_size == TOPIC_VAL_BYTES) && p[0] != TOPIC_VAL_VERSION_CREATOR)
		return SL_ECORRUPT;
	memset(out, 0, sizeof(*out));
	if (p[0] == TOPIC_VAL_VERSION_CREATOR && topic_decode_creator(p, v->mv_size, out) != SL_OK)
		return SL_ECORRUPT;
	memcpy(out->name, k->mv_data, k->mv_size);
	out->topic_id = be_get32(p + 4);
	out->partitions = be_get32(p + 8);
	out->slot_base = be_get32(p + 12);
	out->retention_ms = (int64_t)be_get64(p + 16);
	out->retention_bytes = (int64_t)be_get64(p + 24);
	out->created_ms = (int64_t)be_get64(p + 32);
	return SL_OK;
}

/* Returns the value's length: version 2 only when there is a creator. */
static size_t topic_encode(const struct store_topic *tp, uint8_t *p)
{
	size_t cl = strnlen(tp->creator, sizeof(tp->creator));

	SL_ASSERT(cl <= STORE_CREATOR_MAX);
	memset(p, 0, TOPIC_VAL_BYTES);
	p[0] = cl ? TOPIC_VAL_VERSION_CREATOR : TOPIC_VAL_VERSION;
	be_put32(p + 4, tp->topic_id);
	be_put32(p + 8, tp->partitions);
	be_put32(p + 12, tp->slot_base);
	be_put64(p + 16, (uint64_t)tp->retention_ms);
	be_put64(p + 24, (uint64_t)tp->retention_bytes);
	be_put64(p + 32, (uint64_t)tp->created_ms);
	if (!cl)
		return TOPIC_VAL_BYTES;
	p[TOPIC_VAL_BYTES] = (uint8_t)cl;
	memcpy(p + TOPIC_VAL_BYTES + 1, tp->creator, cl);
	return TOPIC_VAL_BYTES + 1 + cl;
}

int store_topic_get(struct store_txn *t, const char *name, size_t name_len, struct store_topic *out)
{
	MDB_val k = mval(name, name_len), v;
	int err;

	if (name == NULL || name_len == 0 || name_len > STORE_TOPIC_NAME_MAX)
		return SL_ENOTOPIC;
	err = store_db_get(t, DB_TOPICS, k, &v);
	if (err == SL_ENOTFOUND)
		return SL_ENOTOPIC;
	if (err != SL_OK)
		return err;
	return topic_decode(&k, &v, out);
}

int store_topic_foreach(struct store_txn *t, int (*fn)(void *arg, const struct store_topic *tp), void *arg)
{
	MDB_cursor *c = NULL;
	MDB_val k, v;
	struct store_topic tp;
	int err = store_cursor_open(t, DB_TOPICS, &c);
	int rc;

	if (err != SL_OK)
		return err;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == MDB_SUCCESS; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		err = topic_decode(&k, &v, &tp);
		if (err != SL_OK || fn(arg, &tp) != 0)
			goto out;
	}
	err = rc == MDB_NOTFOUND ? SL_OK : store_err(rc);
out:
	mdb_cursor_close(c);
	return err;
}

struct topic_list {
	struct store_topic *v;
	size_t n, cap, max;
	int err;
};

static int topic_list_add_cb(void *arg, const struct store_topic *tp)
{
	struct topic_list *tl = arg;

	if (tl->n >= tl->max || vec_reserve(&tl->v, &tl->cap, tl->n + 1)) {
		tl->err = SL_ETOOMANY;
		return 1;
	}
	tl->v[tl->n++] = *tp;
	return 0;
}

int store_topic_list(struct store_txn *t, size_t max, struct store_topic **out, size_t *n)
{
	struct topic_list tl = {NULL, 0, 0, max, SL_OK};
	int rc = store_topic_foreach(t, topic_list_add_cb, &tl);

	*out = tl.v;
	*n = tl.n;
	return rc != SL_OK ? rc : tl.err;
}

struct slot_map {
	uint8_t *used;
	uint32_t slots_max;
};

static int topic_mark_slots_cb(void *arg, const struct store_topic *tp)
{
	struct slot_map *m = arg;

	for (uint32_t i = 0; i < tp->partitions; i++)
		if ((uint64_t)tp->slot_base + i < m->slots_max)
			m->used[tp->slot_base + i] = 1;
	return 0;
}

/* Lowest contiguous run of `n` free slots in [0, slots_max). */
static int topic_alloc_slots(struct store_txn *t, uint32_t n, uint32_t *base_out)
{
	uint32_t max = t->s->slots_max;
	uint8_t *map = calloc(max, 1);
	struct slot_map ctx = {map, max};
	uint32_t run = 0;
	int err;

	if (map == NULL)
		return SL_ENOMEM;
	err = store_topic_foreach(t, topic_mark_slots_cb, &ctx);
	if (err != SL_OK)
		goto out;
	err = SL_ETOOMANY;
	for (uint32_t i = 0; i < max; i++) {
		run = map[i] ? 0 : run + 1;
		if (run == n) {
			*base_out = i + 1 - n;
			err = SL_OK;
			break;
		}
	}
out:
	free(map);
	return err;
}

int store_meta_next_id(struct store_txn *t, const char *key, uint32_t *id_out)
{
	struct slice v;
	uint8_t buf[4];
	uint32_t id = 1; /* 0 is never an id (it marks a free commit-table slot) */
	int err = store_meta_get(t, key, &v);

	if (err == SL_OK) {
		if (v.len != 4)
			return SL_ECORRUPT;
		id = be_get32(v.base);
	} else if (err != SL_ENOTFOUND) {
		return err;
	}
	if (id == 0 || id == UINT32_MAX)
		return SL_ETOOMANY;
	be_put32(buf, id + 1);
	err = store_meta_put(t, key, slice_make(buf, sizeof(buf)));
	if (err == SL_OK)
		*id_out = id;
	return err;
}

int store_topic_create(struct store_txn *t, const struct store_topic *in, struct store_topic *out)
{
	size_t n = strnlen(in->name, sizeof(in->name));
	struct store_topic tp, old;
	struct store_partition part = {0, 0, 0, 0};
	uint8_t v[TOPIC_VAL_BYTES_MAX];
	size_t vl;
	int err;

	SL_ASSERT(t->write);
	if (!store_name_ok(in->name, n) || in->partitions == 0 || in->partitions > t->s->slots_max ||
	    in->retention_ms < 0 || in->retention_bytes < 0 ||
	    strnlen(in->creator, sizeof(in->creator)) > STORE_CREATOR_MAX)
		return SL_EINVAL;
	err = store_topic_get(t, in->name, n, &old);
	if (err == SL_OK)
		return SL_ETOPIC_EXISTS;
	if (err != SL_ENOTOPIC)
		return err;
	memset(&tp, 0, sizeof(tp));
	memcpy(tp.name, in->name, n);
	tp.partitions = in->partitions;
	tp.retention_ms = in->retention_ms;
	tp.retention_bytes = in->retention_bytes;
	tp.created_ms = in->created_ms != 0 ? in->created_ms : store_now_ms();
	memcpy(tp.creator, in->creator, strnlen(in->creator, sizeof(in->creator)));
	if ((err = topic_alloc_slots(t, tp.partitions, &tp.slot_base)) != SL_OK)
		return err;
	if ((err = store_meta_next_id(t, META_NEXT_TOPIC_ID, &tp.topic_id)) != SL_OK)
		return err;
	vl = topic_encode(&tp, v);
	err = store_db_put(t, DB_TOPICS, mval(tp.name, n), mval(v, vl), MDB_NOOVERWRITE);
	for (uint32_t p = 0; err == SL_OK && p < tp.partitions; p++)
		err = store_part_put(t, tp.topic_id, p, &part);
	if (err == SL_OK && out != NULL)
		*out = tp;
	return err;
}

static void deltopic_key(char *buf, size_t size, uint32_t topic_id)
{
	snprintf(buf, size, META_DELTOPIC_PREFIX "%08x", (unsigned)topic_id);
}

int store_topic_delete(struct store_txn *t, const char *name)
{
	size_t n = name ? strnlen(name, STORE_TOPIC_NAME_MAX + 1) : 0;
	struct store_topic tp;
	char key[32];
	uint8_t v[4];
	int err;

	SL_ASSERT(t->write);
	err = store_topic_get(t, name, n, &tp);
	if (err != SL_OK)
		return err;
	err = store_db_del(t, DB_TOPICS, mval(name, n));
	if (err != SL_OK)
		return err;
	/* Value: partitions, then the groups-scan resume key once cleanup starts. */
	be_put32(v, tp.partitions);
	deltopic_key(key, sizeof(key), tp.topic_id);
	return store_meta_put(t, key, slice_make(v, sizeof(v)));
}

int store_topic_is_deleted(struct store_txn *t, uint32_t topic_id)
{
	char key[32];
	struct slice v;

	deltopic_key(key, sizeof(key), topic_id);
	return store_meta_get(t, key, &v) == SL_OK;
}
