/*
 * consumers.c: durable consumer definitions (db "consumers", keyed by name)
 * and their per-partition states (db "cstate", keyed by consumer id and
 * partition, big-endian), and the webhook settings of consumers that are
 * webhooks (db "webhooks", keyed by name). The state bytes are opaque here: the state
 * machine in replica/consumer/ encodes and checks them.
 *
 * A definition value, big-endian:
 *   u8 version, u32 consumer_id, topic_id, partitions, shared, max_in_flight,
 *   max_deliveries, ack_timeout_ms, nschedule, u64 created_ms,
 *   nschedule x u32, u8 topic_len, topic, u8 dlq_len, dlq
 * Names are checked like topic names (the dead-letter topic is one).
 */
#include <lmdb.h>
#include <string.h>

#include "err.h"
#include "sl_assert.h"
#include "store.h"
#include "store_int.h"

#define CONS_VERSION 1
#define CONS_FIXED_BYTES (1 + 8 * 4 + 8)
#define CONS_VAL_MAX (CONS_FIXED_BYTES + 4 * STORE_CONSUMER_SCHEDULE_MAX + 2 + 2 * STORE_TOPIC_NAME_MAX)

static size_t cons_encode(const struct store_consumer *c, uint8_t *v)
{
	uint8_t *p = v;
	size_t tl = strlen(c->topic), dl = strlen(c->dlq);
	uint32_t fixed[8] = {c->consumer_id,   c->topic_id,       c->partitions,     c->shared,
			     c->max_in_flight, c->max_deliveries, c->ack_timeout_ms, c->nschedule};

	*p++ = CONS_VERSION;
	for (int i = 0; i < 8; i++, p += 4)
		be_put32(p, fixed[i]);
	be_put64(p, (uint64_t)c->created_ms);
	p += 8;
	for (uint32_t i = 0; i < c->nschedule; i++, p += 4)
		be_put32(p, c->schedule_ms[i]);
	*p++ = (uint8_t)tl;
	memcpy(p, c->topic, tl);
	p += tl;
	*p++ = (uint8_t)dl;
	memcpy(p, c->dlq, dl);
	p += dl;
	SL_ASSERT((size_t)(p - v) <= CONS_VAL_MAX);
	return (size_t)(p - v);
}

/* Disk bytes: every length checked. */
static int cons_decode(const MDB_val *k, const MDB_val *v, struct store_consumer *c)
{
	const uint8_t *p = v->mv_data, *end = p + v->mv_size;
	uint32_t fixed[8];

	memset(c, 0, sizeof(*c));
	if (k->mv_size == 0 || k->mv_size > STORE_TOPIC_NAME_MAX || v->mv_size < CONS_FIXED_BYTES + 2 ||
	    p[0] != CONS_VERSION)
		return SL_ECORRUPT;
	memcpy(c->name, k->mv_data, k->mv_size);
	p++;
	for (int i = 0; i < 8; i++, p += 4)
		fixed[i] = be_get32(p);
	c->consumer_id = fixed[0];
	c->topic_id = fixed[1];
	c->partitions = fixed[2];
	c->shared = fixed[3];
	c->max_in_flight = fixed[4];
	c->max_deliveries = fixed[5];
	c->ack_timeout_ms = fixed[6];
	c->nschedule = fixed[7];
	c->created_ms = (int64_t)be_get64(p);
	p += 8;
	if (c->nschedule > STORE_CONSUMER_SCHEDULE_MAX || (size_t)(end - p) < 4 * (size_t)c->nschedule + 1)
		return SL_ECORRUPT;
	for (uint32_t i = 0; i < c->nschedule; i++, p += 4)
		c->schedule_ms[i] = be_get32(p);
	size_t tl = *p++;
	if ((size_t)(end - p) < tl + 1)
		return SL_ECORRUPT;
	memcpy(c->topic, p, tl);
	p += tl;
	size_t dl = *p++;
	if ((size_t)(end - p) != dl)
		return SL_ECORRUPT;
	memcpy(c->dlq, p, dl);
	return SL_OK;
}

int store_consumer_create(struct store_txn *t, const struct store_consumer *in, struct store_consumer *out)
{
	size_t n = strnlen(in->name, sizeof(in->name));
	struct store_consumer old, c;
	uint8_t v[CONS_VAL_MAX];
	int err;

	SL_ASSERT(t->write);
	if (!store_name_ok(in->name, n) || !store_name_ok(in->topic, strnlen(in->topic, sizeof(in->topic))) ||
	    !store_name_ok(in->dlq, strnlen(in->dlq, sizeof(in->dlq))) || in->nschedule > STORE_CONSUMER_SCHEDULE_MAX)
		return SL_EINVAL;
	err = store_consumer_get(t, in->name, n, &old);
	if (err == SL_OK)
		return SL_ECONSUMER_EXISTS;
	if (err != SL_ENOCONSUMER)
		return err;
	c = *in;
	if ((err = store_meta_next_id(t, META_NEXT_CONSUMER_ID, &c.consumer_id)) != SL_OK)
		return err;
	size_t vlen = cons_encode(&c, v);
	err = store_db_put(t, DB_CONSUMERS, mval(c.name, n), mval(v, vlen), 0);
	if (err == SL_OK)
		*out = c;
	return err;
}

static void cstate_key(uint8_t *k, uint32_t consumer_id, uint32_t partition)
{
	be_put32(k, consumer_id);
	be_put32(k + 4, partition);
}

int store_consumer_delete(struct store_txn *t, const char *name, size_t name_len)
{
	struct store_consumer c;
	int err = store_consumer_get(t, name, name_len, &c);

	SL_ASSERT(t->write);
	if (err != SL_OK)
		return err;
	if ((err = store_db_del(t, DB_CONSUMERS, mval(name, name_len))) != SL_OK ||
	    (err = store_db_del(t, DB_WEBHOOKS, mval(name, name_len))) != SL_OK)
		return err;
	/* every partition state of this id: a range of keys */
	MDB_cursor *cur = NULL;
	uint8_t kb[8];
	MDB_val k, v;
	int rc;
	if ((err = store_cursor_open(t, DB_CSTATE, &cur)) != SL_OK)
		return err;
	cstate_key(kb, c.consumer_id, 0);
	k = mval(kb, sizeof(kb));
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == MDB_SUCCESS;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size != 8 || be_get32(k.mv_data) != c.consumer_id)
			break;
		if ((rc = mdb_cursor_del(cur, 0)) != MDB_SUCCESS)
			break;
	}
	err = rc == MDB_SUCCESS || rc == MDB_NOTFOUND ? SL_OK : store_txn_fail(t, rc);
	mdb_cursor_close(cur);
	return err;
}

int store_consumer_get(struct store_txn *t, const char *name, size_t name_len, struct store_consumer *out)
{
	MDB_val k = mval(name, name_len), v;
	int err;

	if (name_len == 0 || name_len > STORE_TOPIC_NAME_MAX)
		return SL_ENOCONSUMER;
	err = store_db_get(t, DB_CONSUMERS, k, &v);
	if (err == SL_ENOTFOUND)
		return SL_ENOCONSUMER;
	if (err != SL_OK)
		return err;
	return cons_decode(&k, &v, out);
}

int store_consumer_foreach(struct store_txn *t, int (*fn)(void *arg, const struct store_consumer *c), void *arg)
{
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	struct store_consumer c;
	int err, rc;

	if ((err = store_cursor_open(t, DB_CONSUMERS, &cur)) != SL_OK)
		return err;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == MDB_SUCCESS;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if ((err = cons_decode(&k, &v, &c)) != SL_OK)
			goto out;
		if (fn(arg, &c) != 0)
			goto out;
	}
	err = rc == MDB_NOTFOUND ? SL_OK : store_err(rc);
out:
	mdb_cursor_close(cur);
	return err;
}

int store_cstate_put(struct store_txn *t, uint32_t consumer_id, uint32_t partition, struct slice v)
{
	uint8_t k[8];

	SL_ASSERT(t->write);
	cstate_key(k, consumer_id, partition);
	return store_db_put(t, DB_CSTATE, mval(k, sizeof(k)), mval(v.base, v.len), 0);
}

int store_cstate_get(struct store_txn *t, uint32_t consumer_id, uint32_t partition, struct slice *out)
{
	uint8_t k[8];
	MDB_val v;
	int err;

	cstate_key(k, consumer_id, partition);
	err = store_db_get(t, DB_CSTATE, mval(k, sizeof(k)), &v);
	if (err == SL_OK)
		*out = slice_make(v.mv_data, v.mv_size);
	return err;
}

int store_webhook_put(struct store_txn *t, const char *name, size_t name_len, struct slice json)
{
	SL_ASSERT(t->write);
	if (name_len == 0 || name_len > STORE_TOPIC_NAME_MAX)
		return SL_EINVAL;
	if (json.len == 0)
		return store_db_del(t, DB_WEBHOOKS, mval(name, name_len));
	return store_db_put(t, DB_WEBHOOKS, mval(name, name_len), mval(json.base, json.len), 0);
}

int store_webhook_get(struct store_txn *t, const char *name, size_t name_len, struct slice *json)
{
	MDB_val v;
	int err;

	if (name_len == 0 || name_len > STORE_TOPIC_NAME_MAX)
		return SL_ENOTFOUND;
	err = store_db_get(t, DB_WEBHOOKS, mval(name, name_len), &v);
	if (err == SL_OK)
		*json = slice_make(v.mv_data, v.mv_size);
	return err;
}
