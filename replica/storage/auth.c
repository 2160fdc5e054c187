/*
 * auth.c: the security state in db "auth" (docs/security.md), written by
 * the logwriter when auth entries apply and read by frontends:
 *
 *   "p/" name          -> the principal's record (JSON: keys, permissions)
 *   "k/" public key    -> the principal's name (32 key bytes: who a key is)
 *   "s"                -> the token signing key (JSON: public key, secret
 *                         key sealed with the nodes' key file)
 *   "a/" seq (u64 BE)  -> audit entry: u64 BE ts_ms, u8 len + principal,
 *                         u8 len + action, detail
 *
 * Values are checked by their readers (JSON) or here (audit entries): disk
 * bytes never reach an assertion.
 */
#include <lmdb.h>
#include <string.h>

#include "err.h"
#include "sl_assert.h"
#include "store.h"
#include "store_int.h"

#define AUTH_NAME_MAX 64
#define AUTH_ACTION_MAX 32

static int name_key(const char *name, uint8_t *k, size_t *kl)
{
	size_t n = name ? strlen(name) : 0;
	if (n == 0 || n > AUTH_NAME_MAX)
		return SL_EINVAL;
	k[0] = 'p';
	k[1] = '/';
	memcpy(k + 2, name, n);
	*kl = n + 2;
	return SL_OK;
}

int store_principal_put(struct store_txn *t, const char *name, struct slice json)
{
	uint8_t k[2 + AUTH_NAME_MAX];
	size_t kl;
	SL_ASSERT(t->write);
	if (name_key(name, k, &kl) != SL_OK)
		return SL_EINVAL;
	if (json.len == 0) {
		int rc = store_db_del(t, DB_AUTH, mval(k, kl));
		return rc == SL_ENOTFOUND ? SL_OK : rc;
	}
	return store_db_put(t, DB_AUTH, mval(k, kl), mval(json.base, json.len), 0);
}

int store_principal_get(struct store_txn *t, const char *name, struct slice *json)
{
	uint8_t k[2 + AUTH_NAME_MAX];
	size_t kl;
	MDB_val v;
	if (name_key(name, k, &kl) != SL_OK)
		return SL_ENOTFOUND;
	int rc = store_db_get(t, DB_AUTH, mval(k, kl), &v);
	if (rc == SL_OK)
		*json = slice_make(v.mv_data, v.mv_size);
	return rc;
}

int store_principal_foreach(struct store_txn *t, int (*fn)(void *arg, const char *name, struct slice json),
			    void *arg)
{
	MDB_cursor *cur = NULL;
	MDB_val k = mval("p/", 2), v;
	char name[AUTH_NAME_MAX + 1];
	int err, rc;
	if ((err = store_cursor_open(t, DB_AUTH, &cur)) != SL_OK)
		return err;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == MDB_SUCCESS;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		const uint8_t *kp = k.mv_data;
		if (k.mv_size < 2 || kp[0] != 'p' || kp[1] != '/')
			break;
		if (k.mv_size - 2 > AUTH_NAME_MAX) {
			err = SL_ECORRUPT;
			goto out;
		}
		memcpy(name, kp + 2, k.mv_size - 2);
		name[k.mv_size - 2] = 0;
		if (fn(arg, name, slice_make(v.mv_data, v.mv_size)) != 0)
			goto out;
	}
	err = rc == MDB_SUCCESS || rc == MDB_NOTFOUND ? SL_OK : store_err(rc);
out:
	mdb_cursor_close(cur);
	return err;
}

static void key_key(const uint8_t pk[32], uint8_t k[34])
{
	k[0] = 'k';
	k[1] = '/';
	memcpy(k + 2, pk, 32);
}

int store_auth_key_put(struct store_txn *t, const uint8_t pk[32], const char *name)
{
	uint8_t k[34];
	size_t n = strlen(name);
	SL_ASSERT(t->write);
	if (n == 0 || n > AUTH_NAME_MAX)
		return SL_EINVAL;
	key_key(pk, k);
	return store_db_put(t, DB_AUTH, mval(k, sizeof(k)), mval(name, n), 0);
}

int store_auth_key_del(struct store_txn *t, const uint8_t pk[32])
{
	uint8_t k[34];
	SL_ASSERT(t->write);
	key_key(pk, k);
	int rc = store_db_del(t, DB_AUTH, mval(k, sizeof(k)));
	return rc == SL_ENOTFOUND ? SL_OK : rc;
}

int store_auth_key_get(struct store_txn *t, const uint8_t pk[32], char name[AUTH_NAME_MAX + 1])
{
	uint8_t k[34];
	MDB_val v;
	key_key(pk, k);
	int rc = store_db_get(t, DB_AUTH, mval(k, sizeof(k)), &v);
	if (rc != SL_OK)
		return rc;
	if (v.mv_size == 0 || v.mv_size > AUTH_NAME_MAX)
		return SL_ECORRUPT;
	memcpy(name, v.mv_data, v.mv_size);
	name[v.mv_size] = 0;
	return SL_OK;
}

int store_auth_signing_put(struct store_txn *t, struct slice json)
{
	SL_ASSERT(t->write && json.len > 0);
	return store_db_put(t, DB_AUTH, mval("s", 1), mval(json.base, json.len), 0);
}

int store_auth_signing_get(struct store_txn *t, struct slice *json)
{
	MDB_val v;
	int rc = store_db_get(t, DB_AUTH, mval("s", 1), &v);
	if (rc == SL_OK)
		*json = slice_make(v.mv_data, v.mv_size);
	return rc;
}

/* The last audit sequence (0: none). */
static int audit_last(struct store_txn *t, uint64_t *seq)
{
	MDB_cursor *cur = NULL;
	uint8_t hi[10] = {'a', '/', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	MDB_val k = mval(hi, sizeof(hi)), v;
	int err = store_cursor_open(t, DB_AUTH, &cur), rc;
	*seq = 0;
	if (err != SL_OK)
		return err;
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	rc = rc == MDB_SUCCESS || rc == MDB_NOTFOUND ? mdb_cursor_get(cur, &k, &v, rc == MDB_SUCCESS ? MDB_PREV : MDB_LAST)
						     : rc;
	if (rc == MDB_SUCCESS && k.mv_size == 10 && ((uint8_t *)k.mv_data)[0] == 'a' && ((uint8_t *)k.mv_data)[1] == '/')
		*seq = be_get64((uint8_t *)k.mv_data + 2);
	mdb_cursor_close(cur);
	return rc == MDB_SUCCESS || rc == MDB_NOTFOUND ? SL_OK : store_err(rc);
}

int store_audit_append(struct store_txn *t, int64_t ts_ms, const char *principal, const char *action,
		       struct slice detail, uint64_t *seq_out)
{
	uint8_t k[10], v[8 + 2 + AUTH_NAME_MAX + AUTH_ACTION_MAX + STORE_AUDIT_DETAIL_MAX];
	size_t pl = strlen(principal), al = strlen(action), n = 0;
	uint64_t seq;
	SL_ASSERT(t->write);
	if (pl > AUTH_NAME_MAX || al > AUTH_ACTION_MAX || detail.len > STORE_AUDIT_DETAIL_MAX)
		return SL_EINVAL;
	int rc = audit_last(t, &seq);
	if (rc != SL_OK)
		return rc;
	seq++;
	k[0] = 'a';
	k[1] = '/';
	be_put64(k + 2, seq);
	be_put64(v, (uint64_t)ts_ms);
	n = 8;
	v[n++] = (uint8_t)pl;
	memcpy(v + n, principal, pl);
	n += pl;
	v[n++] = (uint8_t)al;
	memcpy(v + n, action, al);
	n += al;
	if (detail.len)
		memcpy(v + n, detail.base, detail.len);
	n += detail.len;
	if (seq_out)
		*seq_out = seq;
	return store_db_put(t, DB_AUTH, mval(k, sizeof(k)), mval(v, n), 0);
}

/* Disk bytes: every length checked. */
static int audit_decode(const MDB_val *k, const MDB_val *v, struct store_audit *e)
{
	const uint8_t *p = v->mv_data;
	size_t n = v->mv_size, at = 9;
	if (k->mv_size != 10 || n < 10)
		return SL_ECORRUPT;
	e->seq = be_get64((const uint8_t *)k->mv_data + 2);
	e->ts_ms = (int64_t)be_get64(p);
	size_t pl = p[8];
	if (pl > AUTH_NAME_MAX || at + pl + 1 > n)
		return SL_ECORRUPT;
	memcpy(e->principal, p + at, pl);
	e->principal[pl] = 0;
	at += pl;
	size_t al = p[at++];
	if (al > AUTH_ACTION_MAX || at + al > n)
		return SL_ECORRUPT;
	memcpy(e->action, p + at, al);
	e->action[al] = 0;
	at += al;
	e->detail = slice_make(p + at, n - at);
	return SL_OK;
}

int store_audit_foreach(struct store_txn *t, uint64_t after, size_t max,
			int (*fn)(void *arg, const struct store_audit *e), void *arg)
{
	MDB_cursor *cur = NULL;
	uint8_t start[10] = {'a', '/'};
	MDB_val k = mval(start, sizeof(start)), v;
	struct store_audit e;
	size_t got = 0;
	int err, rc;
	if (after == UINT64_MAX)
		return SL_OK;
	be_put64(start + 2, after + 1);
	if ((err = store_cursor_open(t, DB_AUTH, &cur)) != SL_OK)
		return err;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == MDB_SUCCESS && got < max;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		const uint8_t *kp = k.mv_data;
		if (k.mv_size < 2 || kp[0] != 'a' || kp[1] != '/')
			break;
		if ((err = audit_decode(&k, &v, &e)) != SL_OK)
			goto out;
		got++;
		if (fn(arg, &e) != 0)
			break;
	}
	err = rc == MDB_SUCCESS || rc == MDB_NOTFOUND ? SL_OK : store_err(rc);
out:
	mdb_cursor_close(cur);
	return err;
}
