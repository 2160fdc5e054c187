/*
 * env.c: the LMDB environment (open, close, usage, snapshot copy),
 * transactions, the small get/put/del/cursor helpers every other file uses,
 * the meta key/value db, and the mapping of LMDB codes to SL_*.
 *
 * Caveats:
 * - Open the environment after fork, never before: LMDB forbids sharing an
 *   environment across fork. MDB_NOTLS lets frontends run read transactions
 *   from an event loop without tying reader slots to threads.
 * - A write that hits MDB_MAP_FULL poisons the transaction (LMDB cannot go on
 *   with it); store_txn_commit then aborts it and reports SL_EFULL, and the
 *   environment stays usable for the next transaction.
 * - A process killed with -9 leaves a reader slot that pins old pages;
 *   store_reader_check clears those at open and on every retention step.
 */
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "log.h"
#include "sl_assert.h"
#include "store.h"
#include "store_int.h"

static const char *const store_db_names[DB_COUNT] = {
    "batches", "partitions", "topics", "groups", "timeidx", "dedup", "meta", "raftlog", "consumers", "cstate", "webhooks", "auth",
};

#define STORE_READERS_MAX 512
#define STORE_META_KEY_MAX 480 /* LMDB keys are at most 511 bytes */

/* ------------------------------------------------------------------------ */
/* errors                                                                   */

int store_err(int rc)
{
	switch (rc) {
	case MDB_SUCCESS:
		return SL_OK;
	case MDB_NOTFOUND:
		return SL_ENOTFOUND;
	case MDB_MAP_FULL:
		return SL_EFULL;
	case MDB_TXN_FULL:
		return SL_ETOOLARGE;
	case MDB_CORRUPTED:
	case MDB_PAGE_NOTFOUND:
	case MDB_INVALID:
	case MDB_VERSION_MISMATCH:
		return SL_ECORRUPT;
	case MDB_BAD_VALSIZE:
		return SL_EINVAL;
	case MDB_READERS_FULL:
		return SL_EUNAVAILABLE;
	case ENOMEM:
		return SL_ENOMEM;
	default:
		return rc > 0 ? sl_err_from_errno(rc) : SL_EINTERNAL;
	}
}

/* Converts an LMDB write error and poisons the txn if LMDB cannot continue it. */
int store_txn_fail(struct store_txn *t, int rc)
{
	int e = store_err(rc);

	if (rc != MDB_NOTFOUND && rc != MDB_KEYEXIST && rc != MDB_BAD_VALSIZE && t->err == SL_OK)
		t->err = e;
	return e;
}

int64_t store_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;

}
/* ------------------------------------------------------------------------ */
/* environment and transactions                                             */

static int store_mkdirs(const char *dir)
{
	char path[4096];
	size_t n = strlen(dir);

	if (n == 0 || n >= sizeof(path))
		return SL_EINVAL;
	memcpy(path, dir, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (path[i] != '/' && path[i] != '\0')
			continue;
		char saved = path[i];
		path[i] = '\0';
		if (mkdir(path, 0750) != 0 && errno != EEXIST)
			return sl_err_from_errno(errno);
		path[i] = saved;
	}
	return SL_OK;
}

int store_dir_sync(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return sl_err_from_errno(errno);
	int rc = fsync(fd) == 0 ? SL_OK : sl_err_from_errno(errno);
	close(fd);
	return rc;
}

/* LMDB syncs data.mdb but never the directory: the name of a new
 * environment (and of a new data dir in its parent) would not survive a
 * power loss, and with it every entry the node synced and acknowledged
 * since. Sync both once, when the environment is created. */
static int store_sync_created(const char *dir)
{
	char parent[4096];
	size_t n = strlen(dir);

	if (n >= sizeof(parent))
		return SL_EINVAL;
	memcpy(parent, dir, n + 1);
	while (n > 1 && parent[n - 1] == '/')
		parent[--n] = '\0';
	char *slash = strrchr(parent, '/');
	if (slash == parent)
		slash[1] = '\0';
	else if (slash)
		*slash = '\0';
	else
		strcpy(parent, ".");
	int err = store_dir_sync(dir);
	return err == SL_OK ? store_dir_sync(parent) : err;
}

/* Opens every named db once; the handles live as long as the environment. */
static int store_open_dbis(struct store *s)
{
	MDB_txn *txn = NULL;
	unsigned flags = s->readonly ? 0 : MDB_CREATE;
	int rc = mdb_txn_begin(s->env, NULL, s->readonly ? MDB_RDONLY : 0, &txn);

	if (rc != MDB_SUCCESS)
		return store_err(rc);
	for (int i = 0; i < DB_COUNT; i++) {
		rc = mdb_dbi_open(txn, store_db_names[i], flags, &s->dbi[i]);
		if (rc != MDB_SUCCESS) {
			log_error("store: cannot open db \"%s\": %s%s", store_db_names[i], mdb_strerror(rc),
			          rc == MDB_NOTFOUND ? " (the logwriter creates it; open read-only after it)" : "");
			mdb_txn_abort(txn);
			return store_err(rc);
		}
	}
	return store_err(mdb_txn_commit(txn));
}

/* Frees reader slots of dead processes (a frontend killed with -9): a stale
 * slot pins old pages and the map would fill up. */
void store_reader_check(struct store *s)
{
	int dead = 0;

	if (mdb_reader_check(s->env, &dead) == MDB_SUCCESS && dead > 0)
		log_warn("store: cleared %d stale reader slot(s)", dead);
}

int store_open(struct store **out, const struct store_opts *o)
{
	struct store *s = NULL;
	unsigned flags = MDB_NOTLS;
	int err = SL_OK, created = 0;
	char data[4200];
	struct stat st;
	int rc;

	*out = NULL;
	if (o->dir == NULL || o->map_bytes == 0)
		return SL_EINVAL;
	if (!o->readonly && (err = store_mkdirs(o->dir)) != SL_OK)
		return err;
	snprintf(data, sizeof(data), "%s/data.mdb", o->dir);
	created = !o->readonly && stat(data, &st) != 0 && errno == ENOENT;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return SL_ENOMEM;
	s->readonly = o->readonly != 0;
	s->slots_max = o->slots_max;
	if (s->readonly)
		flags |= MDB_RDONLY;
	else if (!o->sync)
		flags |= MDB_NOSYNC;
	rc = mdb_env_create(&s->env);
	if (rc == MDB_SUCCESS)
		rc = mdb_env_set_maxdbs(s->env, DB_COUNT);
	if (rc == MDB_SUCCESS)
		rc = mdb_env_set_maxreaders(s->env, STORE_READERS_MAX);
	if (rc == MDB_SUCCESS)
		rc = mdb_env_set_mapsize(s->env, (size_t)o->map_bytes);
	if (rc == MDB_SUCCESS)
		rc = mdb_env_open(s->env, o->dir, flags, 0640);
	if (rc != MDB_SUCCESS) {
		log_error("store: cannot open environment %s: %s", o->dir, mdb_strerror(rc));
		err = rc == ENOENT ? SL_ENOTFOUND : store_err(rc);
		goto out;
	}
	err = store_open_dbis(s);
	if (err == SL_OK && created && o->sync)
		err = store_sync_created(o->dir);
	if (err == SL_OK)
		store_reader_check(s);
out:
	if (err != SL_OK) {
		if (s->env != NULL)
			mdb_env_close(s->env);
		free(s);
		return err;
	}
	*out = s;
	return SL_OK;
}

void store_close(struct store *s)
{
	if (s == NULL)
		return;
	mdb_env_close(s->env);
	free(s);
}

int store_copy_fd(struct store *s, int fd)
{
	return store_err(mdb_env_copyfd2(s->env, fd, MDB_CP_COMPACT));
}

void store_usage(struct store *s, uint64_t *map_bytes, uint64_t *used_bytes)
{
	MDB_envinfo info;
	MDB_stat st;

	*map_bytes = 0;
	*used_bytes = 0;
	if (mdb_env_info(s->env, &info) != MDB_SUCCESS || mdb_env_stat(s->env, &st) != MDB_SUCCESS)
		return;
	*map_bytes = info.me_mapsize;
	*used_bytes = ((uint64_t)info.me_last_pgno + 1) * st.ms_psize;
}

int store_txn_begin(struct store *s, int write, struct store_txn **out)
{
	struct store_txn *t;
	int rc;

	*out = NULL;
	if (write && s->readonly)
		return SL_EINVAL;
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return SL_ENOMEM;
	t->s = s;
	t->write = write != 0;
	rc = mdb_txn_begin(s->env, NULL, write ? 0 : MDB_RDONLY, &t->txn);
	if (rc == MDB_MAP_RESIZED) {
		/* The writer grew the map: adopt its size (no txn of ours is open in this process). */
		rc = mdb_env_set_mapsize(s->env, 0);
		if (rc == MDB_SUCCESS)
			rc = mdb_txn_begin(s->env, NULL, write ? 0 : MDB_RDONLY, &t->txn);
	}
	if (rc != MDB_SUCCESS) {
		free(t);
		return store_err(rc);
	}
	*out = t;
	return SL_OK;
}

int store_txn_nest(struct store_txn *parent, struct store_txn **out)
{
	struct store_txn *t;
	int rc;

	SL_ASSERT(parent->write);
	*out = NULL;
	if (parent->err != SL_OK)
		return parent->err;
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return SL_ENOMEM;
	t->s = parent->s;
	t->write = 1;
	rc = mdb_txn_begin(parent->s->env, parent->txn, 0, &t->txn);
	if (rc != MDB_SUCCESS) {
		free(t);
		return store_err(rc);
	}
	*out = t;
	return SL_OK;
}

int store_room(struct store_txn *t, size_t bytes)
{
	static const char key[] = "room";
	MDB_val k = {sizeof(key) - 1, (void *)key}, v = {bytes, NULL};
	int rc;

	SL_ASSERT(t->write);
	if (t->err != SL_OK)
		return t->err;
	rc = mdb_put(t->txn, t->s->dbi[DB_META], &k, &v, MDB_RESERVE);
	if (rc == MDB_SUCCESS)
		rc = mdb_del(t->txn, t->s->dbi[DB_META], &k, NULL);
	return rc == MDB_SUCCESS ? SL_OK : store_txn_fail(t, rc);
}

int store_txn_commit(struct store_txn *t)
{
	int err = t->err;

	if (err != SL_OK) {
		mdb_txn_abort(t->txn);
	} else {
		int rc = mdb_txn_commit(t->txn);
		err = store_err(rc);
	}
	free(t);
	return err;
}

int store_txn_commit_deferred(struct store_txn *t)
{
	unsigned flags = 0;
	MDB_env *env = t->s->env;

	mdb_env_get_flags(env, &flags);
	if (flags & (MDB_NOSYNC | MDB_NOMETASYNC))
		return store_txn_commit(t);
	int rc = mdb_env_set_flags(env, MDB_NOMETASYNC, 1);
	SL_ASSERT(rc == MDB_SUCCESS);
	int err = store_txn_commit(t);
	rc = mdb_env_set_flags(env, MDB_NOMETASYNC, 0);
	SL_ASSERT(rc == MDB_SUCCESS);
	return err;
}

void store_txn_abort(struct store_txn *t)
{
	if (t == NULL)
		return;
	mdb_txn_abort(t->txn);
	free(t);
}

int store_db_get(struct store_txn *t, enum store_db db, MDB_val k, MDB_val *v)
{
	SL_ASSERT(k.mv_size > 0 && k.mv_size <= STORE_KEY_BYTES_MAX);
	return store_err(mdb_get(t->txn, t->s->dbi[db], &k, v));
}

int store_db_put(struct store_txn *t, enum store_db db, MDB_val k, MDB_val v, unsigned flags)
{
	int rc;

	SL_ASSERT(t->write);
	SL_ASSERT(k.mv_size > 0 && k.mv_size <= STORE_KEY_BYTES_MAX);
	if (t->err != SL_OK)
		return t->err;
	rc = mdb_put(t->txn, t->s->dbi[db], &k, &v, flags);
	return rc == MDB_SUCCESS ? SL_OK : store_txn_fail(t, rc);
}

int store_db_del(struct store_txn *t, enum store_db db, MDB_val k)
{
	int rc;

	SL_ASSERT(t->write);
	SL_ASSERT(k.mv_size > 0 && k.mv_size <= STORE_KEY_BYTES_MAX);
	if (t->err != SL_OK)
		return t->err;
	rc = mdb_del(t->txn, t->s->dbi[db], &k, NULL);
	if (rc == MDB_NOTFOUND)
		return SL_OK;
	return rc == MDB_SUCCESS ? SL_OK : store_txn_fail(t, rc);
}

int store_cursor_open(struct store_txn *t, enum store_db db, MDB_cursor **c)
{
	int rc = mdb_cursor_open(t->txn, t->s->dbi[db], c);

	SL_ASSERT(rc != MDB_SUCCESS || *c != NULL);
	return store_err(rc);
}

/* ------------------------------------------------------------------------ */
/* meta                                                                     */

int store_meta_put(struct store_txn *t, const char *key, struct slice val)
{
	size_t n = key ? strlen(key) : 0;

	if (n == 0 || n > STORE_META_KEY_MAX)
		return SL_EINVAL;
	return store_db_put(t, DB_META, mval(key, n), mval(val.base, val.len), 0);
}

int store_meta_get(struct store_txn *t, const char *key, struct slice *val)
{
	size_t n = key ? strlen(key) : 0;
	MDB_val v;
	int err;

	if (n == 0 || n > STORE_META_KEY_MAX)
		return SL_EINVAL;
	err = store_db_get(t, DB_META, mval(key, n), &v);
	if (err == SL_OK)
		*val = slice_make(v.mv_data, v.mv_size);
	return err;
}
