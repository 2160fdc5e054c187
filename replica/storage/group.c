/*
 * group.c: committed consumer-group offsets, keyed (group, 0, topic_id BE,
 * partition BE) so one group's offsets are contiguous.
 *
 * Caveat: entries of a deleted topic stay until retention.c removes them;
 * readers check the topic still exists.
 */
#include <lmdb.h>
#include <string.h>

#include "err.h"
#include "sl_assert.h"
#include "store.h"
#include "store_int.h"

#define GROUP_KEY_MAX (STORE_GROUP_NAME_MAX + 9)

static int group_key(uint8_t *k, size_t *len, const char *group, uint32_t topic_id, uint32_t partition)
{
	size_t n = group ? strnlen(group, STORE_GROUP_NAME_MAX + 1) : 0;

	if (n == 0 || n > STORE_GROUP_NAME_MAX)
		return SL_EINVAL;
	memcpy(k, group, n);
	k[n] = 0;
	be_put32(k + n + 1, topic_id);
	be_put32(k + n + 5, partition);
	*len = n + 9;
	SL_ASSERT(*len <= GROUP_KEY_MAX);
	return SL_OK;
}

int store_group_commit(struct store_txn *t, const char *group, uint32_t topic_id, uint32_t partition, uint64_t offset)
{
	uint8_t k[GROUP_KEY_MAX], v[8];
	size_t klen;
	int err = group_key(k, &klen, group, topic_id, partition);

	if (err != SL_OK)
		return err;
	be_put64(v, offset);
	return store_db_put(t, DB_GROUPS, mval(k, klen), mval(v, sizeof(v)), 0);
}

int store_group_get(struct store_txn *t, const char *group, uint32_t topic_id, uint32_t partition, uint64_t *offset_out)
{
	uint8_t k[GROUP_KEY_MAX];
	size_t klen;
	MDB_val v;
	int err = group_key(k, &klen, group, topic_id, partition);

	if (err == SL_OK)
		err = store_db_get(t, DB_GROUPS, mval(k, klen), &v);
	if (err != SL_OK)
		return err;
	if (v.mv_size != 8)
		return SL_ECORRUPT;
	*offset_out = be_get64(v.mv_data);
	return SL_OK;
}

int store_group_foreach(struct store_txn *t, const char *group,
                        int (*fn)(void *arg, uint32_t topic_id, uint32_t partition, uint64_t offset), void *arg)
{
	uint8_t kb[GROUP_KEY_MAX];
	size_t plen;
	MDB_cursor *c = NULL;
	MDB_val k, v;
	int err = group_key(kb, &plen, group, 0, 0);
	int rc;

	if (err != SL_OK)
		return err;
	plen -= 8; /* the prefix: name and its 0 byte */
	if ((err = store_cursor_open(t, DB_GROUPS, &c)) != SL_OK)
		return err;
	k = mval(kb, plen);
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == MDB_SUCCESS;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		const uint8_t *p = k.mv_data;
		if (k.mv_size != plen + 8 || memcmp(p, kb, plen) != 0)
			break;
		if (v.mv_size != 8) {
			err = SL_ECORRUPT;
			goto out;
		}
		if (fn(arg, be_get32(p + plen), be_get32(p + plen + 4), be_get64(v.mv_data)) != 0)
			goto out;
	}
	err = rc == MDB_SUCCESS || rc == MDB_NOTFOUND ? SL_OK : store_err(rc);
out:
	mdb_cursor_close(c);
	return err;
}
