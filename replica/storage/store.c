/*
 * store.c: the node's LMDB storage (see store.h for the databases).
 *
 * Caveats:
 * - Open the environment after fork, never before: LMDB forbids sharing an
 *   environment across fork. MDB_NOTLS lets frontends run read transactions
 *   from an event loop without tying reader slots to threads.
 * - Everything on disk is big-endian, so keys sort in log order and the files
 *   do not depend on the host.
 * - Disk bytes are input: every length in a batch is checked against the value
 *   size and the CRC32C is verified before a record is handed out. A mismatch
 *   is SL_ECORRUPT, never an assertion.
 * - A write that hits MDB_MAP_FULL poisons the transaction (LMDB cannot go on
 *   with it); store_txn_commit then aborts it and reports SL_EFULL, and the
 *   environment stays usable for the next transaction.
 * - Retention and deleted-topic cleanup work in bounded chunks; what is left
 *   is picked up by the next store_retention_step call (resume keys in meta).
 */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "err.h"
#include "log.h"
#include "store.h"

enum store_db { DB_BATCHES, DB_PARTITIONS, DB_TOPICS, DB_GROUPS, DB_TIMEIDX, DB_DEDUP, DB_META, DB_RAFTLOG, DB_COUNT };

static const char *const store_db_names[DB_COUNT] = {
    "batches", "partitions", "topics", "groups", "timeidx", "dedup", "meta", "raftlog",
};

#define STORE_READERS_MAX 512
#define STORE_TOPIC_NAME_MAX 249
#define STORE_GROUP_NAME_MAX 249
#define STORE_META_KEY_MAX 480             /* LMDB keys are at most 511 bytes */
#define STORE_BATCH_BYTES_MAX (256u << 20) /* one batch value */
#define STORE_AUX_PER_BATCH 16             /* non-batch entries retention may touch per batch allowed */
#define STORE_AUX_MIN 64
#define STORE_AUX_MAX 65536

/* Batch value layout (big-endian). */
#define BATCH_MAGIC 0x53u
#define BATCH_VERSION 1u
#define BATCH_HDR_BYTES 64u
#define BOFF_MAGIC 0
#define BOFF_VERSION 1
#define BOFF_CRC 4
#define BOFF_BASE 8
#define BOFF_COUNT 16
#define BOFF_FIRST_TS 20
#define BOFF_MAX_TS 28
#define BOFF_PID 36
#define BOFF_BSEQ 44
#define BOFF_TERM 52
#define BOFF_RBYTES 60
/* [u32 len][i64 ts][u64 pid][u64 seq][u32 klen][u32 hlen][u32 plen]; len counts what follows it. */
#define REC_FIXED_BYTES 40u

#define BATCH_KEY_BYTES 16
#define PART_KEY_BYTES 8
#define PART_VAL_BYTES 32
#define TOPIC_VAL_BYTES 40
#define TOPIC_VAL_VERSION 1u
#define TIMEIDX_KEY_BYTES 16
#define DEDUP_KEY_BYTES 16
#define DEDUP_VAL_BYTES 20

#define META_NEXT_TOPIC_ID "next_topic_id"
#define META_DEDUP_CURSOR "retention/dedup_cursor"
#define META_DELTOPIC_PREFIX "deltopic/"

struct store {
	MDB_env *env;
	MDB_dbi dbi[DB_COUNT];
	int readonly;
	uint32_t slots_max;
};

struct store_txn {
	struct store *s;
	MDB_txn *txn;
	int write;
	int err; /* first fatal error of a write; commit reports it */
};

struct batch_hdr {
	uint64_t base;
	uint32_t count;
	int64_t first_ts;
	int64_t max_ts;
	uint64_t producer_id;
	uint64_t base_sequence;
	uint64_t term;
	const uint8_t *records;
	size_t records_bytes;
	size_t value_bytes;
};

/* Bounds-checked reader over borrowed bytes; `bad` latches on underflow. */
struct rd {
	const uint8_t *p;
	size_t n;
	int bad;
};

struct rec_iter {
	struct rd r;
	uint32_t remaining;
	uint64_t offset;
};

/* ------------------------------------------------------------------------ */
/* errors and small helpers                                                 */

static int store_err(int rc)
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
static int txn_fail(struct store_txn *t, int rc)
{
	int e = store_err(rc);

	if (rc != MDB_NOTFOUND && rc != MDB_KEYEXIST && rc != MDB_BAD_VALSIZE && t->err == SL_OK)
		t->err = e;
	return e;
}

static int64_t store_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static MDB_val mval(const void *p, size_t n)
{
	MDB_val v = {n, (void *)p};
	return v;
}

/* Sign-flipped big-endian so negative timestamps sort before positive ones. */
static void be_put_ts(uint8_t *p, int64_t ts)
{
	be_put64(p, (uint64_t)ts ^ (1ull << 63));
}

static void batch_key(uint8_t *k, uint32_t topic_id, uint32_t partition, uint64_t base)
{
	be_put32(k, topic_id);
	be_put32(k + 4, partition);
	be_put64(k + 8, base);
}

static int key_in_partition(const MDB_val *k, uint32_t topic_id, uint32_t partition)
{
	const uint8_t *p = k->mv_data;

	return k->mv_size == BATCH_KEY_BYTES && be_get32(p) == topic_id && be_get32(p + 4) == partition;
}

static int key_has_topic(const MDB_val *k, uint32_t topic_id)
{
	return k->mv_size >= 4 && be_get32(k->mv_data) == topic_id;
}

static uint32_t rd_u32(struct rd *r)
{
	uint32_t v;

	if (r->bad || r->n < 4) {
		r->bad = 1;
		return 0;
	}
	v = be_get32(r->p);
	r->p += 4;
	r->n -= 4;
	return v;
}

static uint64_t rd_u64(struct rd *r)
{
	uint64_t v;

	if (r->bad || r->n < 8) {
		r->bad = 1;
		return 0;
	}
	v = be_get64(r->p);
	r->p += 8;
	r->n -= 8;
	return v;
}

static struct slice rd_bytes(struct rd *r, size_t len)
{
	struct slice s = {NULL, 0};

	if (r->bad || r->n < len) {
		r->bad = 1;
		return s;
	}
	s = slice_make(r->p, len);
	r->p += len;
	r->n -= len;
	return s;
}

/* ------------------------------------------------------------------------ */
/* CRC32C                                                                   */

static uint32_t crc32c_table[8][256];
static pthread_once_t crc32c_once = PTHREAD_ONCE_INIT;
static int crc32c_hw;

static void crc32c_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
		crc32c_table[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			crc32c_table[t][i] =
			    (crc32c_table[t - 1][i] >> 8) ^ crc32c_table[0][crc32c_table[t - 1][i] & 0xff];
#if defined(__x86_64__)
	__builtin_cpu_init();
	crc32c_hw = __builtin_cpu_supports("sse4.2");
#endif
}

static uint32_t crc32c_sw(uint32_t c, const uint8_t *p, size_t n)
{
	while (n >= 8) {
		uint32_t lo = c ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
		c = crc32c_table[7][lo & 0xff] ^ crc32c_table[6][(lo >> 8) & 0xff] ^
		    crc32c_table[5][(lo >> 16) & 0xff] ^ crc32c_table[4][lo >> 24] ^ crc32c_table[3][p[4]] ^
		    crc32c_table[2][p[5]] ^ crc32c_table[1][p[6]] ^ crc32c_table[0][p[7]];
		p += 8;
		n -= 8;
	}
	while (n--)
		c = crc32c_table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
	return c;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc32c_sse42(uint32_t c, const uint8_t *p, size_t n)
{
	uint64_t c64 = c;

	while (n >= 8) {
		uint64_t v;
		memcpy(&v, p, 8);
		c64 = __builtin_ia32_crc32di(c64, v);
		p += 8;
		n -= 8;
	}
	c = (uint32_t)c64;
	while (n--)
		c = __builtin_ia32_crc32qi(c, *p++);
	return c;
}
#endif

uint32_t store_crc32c(uint32_t crc, const void *p, size_t n)
{
	uint32_t c = ~crc;

	pthread_once(&crc32c_once, crc32c_init);
#if defined(__x86_64__)
	if (crc32c_hw)
		return ~crc32c_sse42(c, p, n);
#endif
	return ~crc32c_sw(c, p, n);
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
static void store_reader_check(struct store *s)
{
	int dead = 0;

	if (mdb_reader_check(s->env, &dead) == MDB_SUCCESS && dead > 0)
		log_warn("store: cleared %d stale reader slot(s)", dead);
}

int store_open(struct store **out, const struct store_opts *o)
{
	struct store *s = NULL;
	unsigned flags = MDB_NOTLS;
	int err = SL_OK;
	int rc;

	*out = NULL;
	if (o->dir == NULL || o->map_bytes == 0)
		return SL_EINVAL;
	if (!o->readonly && (err = store_mkdirs(o->dir)) != SL_OK)
		return err;
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

void store_txn_abort(struct store_txn *t)
{
	if (t == NULL)
		return;
	mdb_txn_abort(t->txn);
	free(t);
}

static int db_get(struct store_txn *t, enum store_db db, MDB_val k, MDB_val *v)
{
	return store_err(mdb_get(t->txn, t->s->dbi[db], &k, v));
}

static int db_put(struct store_txn *t, enum store_db db, MDB_val k, MDB_val v, unsigned flags)
{
	int rc;

	if (!t->write)
		return SL_EINVAL;
	if (t->err != SL_OK)
		return t->err;
	rc = mdb_put(t->txn, t->s->dbi[db], &k, &v, flags);
	return rc == MDB_SUCCESS ? SL_OK : txn_fail(t, rc);
}

static int db_del(struct store_txn *t, enum store_db db, MDB_val k)
{
	int rc;

	if (!t->write)
		return SL_EINVAL;
	if (t->err != SL_OK)
		return t->err;
	rc = mdb_del(t->txn, t->s->dbi[db], &k, NULL);
	if (rc == MDB_NOTFOUND)
		return SL_OK;
	return rc == MDB_SUCCESS ? SL_OK : txn_fail(t, rc);
}

static int cursor_open(struct store_txn *t, enum store_db db, MDB_cursor **c)
{
	return store_err(mdb_cursor_open(t->txn, t->s->dbi[db], c));
}

/* ------------------------------------------------------------------------ */
/* meta                                                                     */

int store_meta_put(struct store_txn *t, const char *key, struct slice val)
{
	size_t n = key ? strlen(key) : 0;

	if (n == 0 || n > STORE_META_KEY_MAX)
		return SL_EINVAL;
	return db_put(t, DB_META, mval(key, n), mval(val.base, val.len), 0);
}

int store_meta_get(struct store_txn *t, const char *key, struct slice *val)
{
	size_t n = key ? strlen(key) : 0;
	MDB_val v;
	int err;

	if (n == 0 || n > STORE_META_KEY_MAX)
		return SL_EINVAL;
	err = db_get(t, DB_META, mval(key, n), &v);
	if (err == SL_OK)
		*val = slice_make(v.mv_data, v.mv_size);
	return err;
}

/* ------------------------------------------------------------------------ */
/* raft log: index (u64 BE) -> [u64 term][u32 type][u32 crc32c(data)][data]  */

#define RAFT_VAL_HDR_BYTES 16u

int store_raft_put(struct store_txn *t, uint64_t index, uint64_t term, uint32_t type, struct slice data)
{
	uint8_t k[8];
	MDB_val v = {RAFT_VAL_HDR_BYTES + data.len, NULL};
	int rc;

	be_put64(k, index);
	if (!t->write)
		return SL_EINVAL;
	if (t->err != SL_OK)
		return t->err;
	rc = mdb_put(t->txn, t->s->dbi[DB_RAFTLOG], &(MDB_val){8, k}, &v, MDB_RESERVE);
	if (rc != MDB_SUCCESS)
		return txn_fail(t, rc);
	uint8_t *p = v.mv_data;
	be_put64(p, term);
	be_put32(p + 8, type);
	be_put32(p + 12, store_crc32c(0, data.base, data.len));
	if (data.len)
		memcpy(p + RAFT_VAL_HDR_BYTES, data.base, data.len);
	return SL_OK;
}

/* Delete entries with index >= from (dir > 0) or <= from (dir < 0), at most
 * max of them; *deleted says how many went. */
static int raft_del_range(struct store_txn *t, uint64_t from, int dir, size_t max, size_t *deleted)
{
	MDB_cursor *c;
	uint8_t k[8];
	MDB_val key = {8, k}, val;
	size_t n = 0;
	int rc, err;

	if (!t->write)
		return SL_EINVAL;
	if ((err = cursor_open(t, DB_RAFTLOG, &c)) != SL_OK)
		return err;
	be_put64(k, from);
	if (dir > 0) {
		rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
	} else {
		rc = mdb_cursor_get(c, &key, &val, MDB_FIRST);
	}
	while (rc == MDB_SUCCESS && n < max) {
		if (key.mv_size != 8) {
			rc = MDB_CORRUPTED;
			break;
		}
		if (dir < 0 && be_get64(key.mv_data) > from)
			break;
		rc = mdb_cursor_del(c, 0);
		if (rc != MDB_SUCCESS)
			break;
		n++;
		/* re-seek rather than rely on where a delete leaves the cursor */
		key.mv_size = 8;
		key.mv_data = k;
		rc = mdb_cursor_get(c, &key, &val, dir > 0 ? MDB_SET_RANGE : MDB_FIRST);
	}
	mdb_cursor_close(c);
	*deleted = n;
	if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND)
		return txn_fail(t, rc);
	return SL_OK;
}

int store_raft_truncate(struct store_txn *t, uint64_t from)
{
	size_t n;
	return raft_del_range(t, from, 1, SIZE_MAX, &n);
}

int store_raft_trim(struct store_txn *t, uint64_t upto, size_t max, size_t *deleted)
{
	return raft_del_range(t, upto, -1, max, deleted);
}

int store_raft_foreach(struct store_txn *t, uint64_t from,
		       int (*fn)(void *arg, uint64_t index, uint64_t term, uint32_t type, struct slice data), void *arg)
{
	MDB_cursor *c;
	uint8_t k[8];
	MDB_val key = {8, k}, val;
	int rc, err;

	if ((err = cursor_open(t, DB_RAFTLOG, &c)) != SL_OK)
		return err;
	be_put64(k, from);
	err = SL_OK;
	for (rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE); rc == MDB_SUCCESS;
	     rc = mdb_cursor_get(c, &key, &val, MDB_NEXT)) {
		const uint8_t *p = val.mv_data;
		if (key.mv_size != 8 || val.mv_size < RAFT_VAL_HDR_BYTES) {
			err = SL_ECORRUPT;
			break;
		}
		struct slice d = slice_make(p + RAFT_VAL_HDR_BYTES, val.mv_size - RAFT_VAL_HDR_BYTES);
		if (store_crc32c(0, d.base, d.len) != be_get32(p + 12)) {
			log_error("store: raft log entry %llu fails its checksum",
				  (unsigned long long)be_get64(key.mv_data));
			err = SL_ECORRUPT;
			break;
		}
		if (fn(arg, be_get64(key.mv_data), be_get64(p), be_get32(p + 8), d))
			break;
	}
	mdb_cursor_close(c);
	if (err == SL_OK && rc != MDB_SUCCESS && rc != MDB_NOTFOUND)
		err = store_err(rc);
	return err;
}

/* ------------------------------------------------------------------------ */
/* partitions                                                               */

static int part_put(struct store_txn *t, uint32_t topic_id, uint32_t partition, const struct store_partition *p)
{
	uint8_t k[PART_KEY_BYTES], v[PART_VAL_BYTES];

	assert(p->first_offset <= p->end_offset);
	be_put32(k, topic_id);
	be_put32(k + 4, partition);
	be_put64(v, p->first_offset);
	be_put64(v + 8, p->end_offset);
	be_put64(v + 16, p->bytes);
	be_put64(v + 24, (uint64_t)p->max_ts);
	return db_put(t, DB_PARTITIONS, mval(k, sizeof(k)), mval(v, sizeof(v)), 0);
}

int store_partition_get(struct store_txn *t, uint32_t topic_id, uint32_t partition, struct store_partition *out)
{
	uint8_t k[PART_KEY_BYTES];
	const uint8_t *p;
	MDB_val v;
	int err;

	be_put32(k, topic_id);
	be_put32(k + 4, partition);
	err = db_get(t, DB_PARTITIONS, mval(k, sizeof(k)), &v);
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

static int topic_name_ok(const char *name, size_t n)
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

static int topic_decode(const MDB_val *k, const MDB_val *v, struct store_topic *out)
{
	const uint8_t *p = v->mv_data;

	if (v->mv_size != TOPIC_VAL_BYTES || p[0] != TOPIC_VAL_VERSION || k->mv_size == 0 ||
	    k->mv_size > STORE_TOPIC_NAME_MAX)
		return SL_ECORRUPT;
	memset(out, 0, sizeof(*out));
	memcpy(out->name, k->mv_data, k->mv_size);
	out->topic_id = be_get32(p + 4);
	out->partitions = be_get32(p + 8);
	out->slot_base = be_get32(p + 12);
	out->retention_ms = (int64_t)be_get64(p + 16);
	out->retention_bytes = (int64_t)be_get64(p + 24);
	out->created_ms = (int64_t)be_get64(p + 32);
	return SL_OK;
}

static void topic_encode(const struct store_topic *tp, uint8_t *p)
{
	memset(p, 0, TOPIC_VAL_BYTES);
	p[0] = TOPIC_VAL_VERSION;
	be_put32(p + 4, tp->topic_id);
	be_put32(p + 8, tp->partitions);
	be_put32(p + 12, tp->slot_base);
	be_put64(p + 16, (uint64_t)tp->retention_ms);
	be_put64(p + 24, (uint64_t)tp->retention_bytes);
	be_put64(p + 32, (uint64_t)tp->created_ms);
}

int store_topic_get(struct store_txn *t, const char *name, size_t name_len, struct store_topic *out)
{
	MDB_val k = mval(name, name_len), v;
	int err;

	if (name == NULL || name_len == 0 || name_len > STORE_TOPIC_NAME_MAX)
		return SL_ENOTOPIC;
	err = db_get(t, DB_TOPICS, k, &v);
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
	int err = cursor_open(t, DB_TOPICS, &c);
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

static int topic_next_id(struct store_txn *t, uint32_t *id_out)
{
	struct slice v;
	uint8_t buf[4];
	uint32_t id = 1; /* 0 marks a free commit-table slot */
	int err = store_meta_get(t, META_NEXT_TOPIC_ID, &v);

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
	err = store_meta_put(t, META_NEXT_TOPIC_ID, slice_make(buf, sizeof(buf)));
	if (err == SL_OK)
		*id_out = id;
	return err;
}

int store_topic_create(struct store_txn *t, const struct store_topic *in, struct store_topic *out)
{
	size_t n = strnlen(in->name, sizeof(in->name));
	struct store_topic tp, old;
	struct store_partition part = {0, 0, 0, 0};
	uint8_t v[TOPIC_VAL_BYTES];
	int err;

	if (!t->write)
		return SL_EINVAL;
	if (!topic_name_ok(in->name, n) || in->partitions == 0 || in->partitions > t->s->slots_max ||
	    in->retention_ms < 0 || in->retention_bytes < 0)
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
	if ((err = topic_alloc_slots(t, tp.partitions, &tp.slot_base)) != SL_OK)
		return err;
	if ((err = topic_next_id(t, &tp.topic_id)) != SL_OK)
		return err;
	topic_encode(&tp, v);
	err = db_put(t, DB_TOPICS, mval(tp.name, n), mval(v, sizeof(v)), MDB_NOOVERWRITE);
	for (uint32_t p = 0; err == SL_OK && p < tp.partitions; p++)
		err = part_put(t, tp.topic_id, p, &part);
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

	if (!t->write)
		return SL_EINVAL;
	err = store_topic_get(t, name, n, &tp);
	if (err != SL_OK)
		return err;
	err = db_del(t, DB_TOPICS, mval(name, n));
	if (err != SL_OK)
		return err;
	/* Value: partitions, then the groups-scan resume key once cleanup starts. */
	be_put32(v, tp.partitions);
	deltopic_key(key, sizeof(key), tp.topic_id);
	return store_meta_put(t, key, slice_make(v, sizeof(v)));
}

static int topic_is_deleted(struct store_txn *t, uint32_t topic_id)
{
	char key[32];
	struct slice v;

	deltopic_key(key, sizeof(key), topic_id);
	return store_meta_get(t, key, &v) == SL_OK;
}

/* ------------------------------------------------------------------------ */
/* record batches                                                           */

/* Header fields and sizes only; the CRC is checked by batch_verify. */
static int batch_parse_hdr(const MDB_val *v, struct batch_hdr *h)
{
	const uint8_t *p = v->mv_data;
	size_t n = v->mv_size;

	if (n < BATCH_HDR_BYTES + REC_FIXED_BYTES || p[BOFF_MAGIC] != BATCH_MAGIC || p[BOFF_VERSION] != BATCH_VERSION)
		return SL_ECORRUPT;
	h->base = be_get64(p + BOFF_BASE);
	h->count = be_get32(p + BOFF_COUNT);
	h->first_ts = (int64_t)be_get64(p + BOFF_FIRST_TS);
	h->max_ts = (int64_t)be_get64(p + BOFF_MAX_TS);
	h->producer_id = be_get64(p + BOFF_PID);
	h->base_sequence = be_get64(p + BOFF_BSEQ);
	h->term = be_get64(p + BOFF_TERM);
	h->records_bytes = be_get32(p + BOFF_RBYTES);
	h->records = p + BATCH_HDR_BYTES;
	h->value_bytes = n;
	if (h->records_bytes != n - BATCH_HDR_BYTES || h->count == 0 || h->count > h->records_bytes / REC_FIXED_BYTES ||
	    h->base > UINT64_MAX - h->count)
		return SL_ECORRUPT;
	return SL_OK;
}

static int batch_verify(const MDB_val *v, const MDB_val *k, struct batch_hdr *h)
{
	const uint8_t *p = v->mv_data;
	int err = batch_parse_hdr(v, h);

	if (err != SL_OK)
		return err;
	if (be_get32(p + BOFF_CRC) != store_crc32c(0, p + 8, v->mv_size - 8))
		return SL_ECORRUPT;
	if (k != NULL && be_get64((const uint8_t *)k->mv_data + 8) != h->base)
		return SL_ECORRUPT;
	return SL_OK;
}

static void rec_iter_init(struct rec_iter *it, const struct batch_hdr *h)
{
	it->r.p = h->records;
	it->r.n = h->records_bytes;
	it->r.bad = 0;
	it->remaining = h->count;
	it->offset = h->base;
}

/* Next record of a verified batch; *have = 0 at the end. Every length is checked. */
static int rec_next(struct rec_iter *it, struct store_record *r, int *have)
{
	struct rd rec;
	uint32_t len;

	*have = 0;
	if (it->remaining == 0)
		return it->r.n == 0 ? SL_OK : SL_ECORRUPT;
	len = rd_u32(&it->r);
	rec.p = it->r.p;
	rec.n = len;
	rec.bad = 0;
	rd_bytes(&it->r, len);
	if (it->r.bad)
		return SL_ECORRUPT;
	r->timestamp_ms = (int64_t)rd_u64(&rec);
	r->producer_id = rd_u64(&rec);
	r->sequence = rd_u64(&rec);
	r->key = rd_bytes(&rec, rd_u32(&rec));
	r->headers = rd_bytes(&rec, rd_u32(&rec));
	r->payload = rd_bytes(&rec, rd_u32(&rec));
	if (rec.bad || rec.n != 0)
		return SL_ECORRUPT;
	r->offset = it->offset++;
	it->remaining--;
	*have = 1;
	return SL_OK;
}

static size_t rec_bytes(const struct store_record *r)
{
	return REC_FIXED_BYTES + r->key.len + r->headers.len + r->payload.len;
}

static int batch_size(const struct store_record *recs, size_t n, size_t *size_out)
{
	size_t size = BATCH_HDR_BYTES;

	if (n > STORE_BATCH_BYTES_MAX / REC_FIXED_BYTES)
		return SL_ETOOLARGE;
	for (size_t i = 0; i < n; i++) {
		const struct store_record *r = &recs[i];
		if (r->key.len > STORE_BATCH_BYTES_MAX || r->headers.len > STORE_BATCH_BYTES_MAX ||
		    r->payload.len > STORE_BATCH_BYTES_MAX)
			return SL_ETOOLARGE;
		size += rec_bytes(r);
		if (size > STORE_BATCH_BYTES_MAX)
			return SL_ETOOLARGE;
	}
	*size_out = size;
	return SL_OK;
}

static uint8_t *put_blob(uint8_t *p, struct slice s)
{
	be_put32(p, (uint32_t)s.len);
	if (s.len > 0)
		memcpy(p + 4, s.base, s.len);
	return p + 4 + s.len;
}

/* Writes the batch into its reserved value (size from batch_size), checksum last. */
static void batch_fill(uint8_t *v, size_t size, uint64_t base, const struct store_record *recs, size_t n, int64_t ts,
                       uint64_t term)
{
	uint8_t *p = v + BATCH_HDR_BYTES;

	memset(v, 0, BATCH_HDR_BYTES);
	v[BOFF_MAGIC] = BATCH_MAGIC;
	v[BOFF_VERSION] = BATCH_VERSION;
	be_put64(v + BOFF_BASE, base);
	be_put32(v + BOFF_COUNT, (uint32_t)n);
	be_put64(v + BOFF_FIRST_TS, (uint64_t)ts);
	be_put64(v + BOFF_MAX_TS, (uint64_t)ts);
	be_put64(v + BOFF_PID, recs[0].producer_id);
	be_put64(v + BOFF_BSEQ, recs[0].sequence);
	be_put64(v + BOFF_TERM, term);
	be_put32(v + BOFF_RBYTES, (uint32_t)(size - BATCH_HDR_BYTES));
	for (size_t i = 0; i < n; i++) {
		be_put32(p, (uint32_t)(rec_bytes(&recs[i]) - 4));
		be_put64(p + 4, (uint64_t)ts);
		be_put64(p + 12, recs[i].producer_id);
		be_put64(p + 20, recs[i].sequence);
		p = put_blob(p + 28, recs[i].key);
		p = put_blob(p, recs[i].headers);
		p = put_blob(p, recs[i].payload);
	}
	assert((size_t)(p - v) == size);
	be_put32(v + BOFF_CRC, store_crc32c(0, v + 8, size - 8));
}

static void timeidx_key(uint8_t *k, uint32_t topic_id, uint32_t partition, int64_t ts)
{
	be_put32(k, topic_id);
	be_put32(k + 4, partition);
	be_put_ts(k + 8, ts);
}

/* Keeps the earliest batch for a timestamp: an existing entry wins. */
static int timeidx_add(struct store_txn *t, uint32_t topic_id, uint32_t partition, int64_t ts, uint64_t base)
{
	uint8_t k[TIMEIDX_KEY_BYTES], v[8];
	MDB_val key, val;
	int rc;

	if (t->err != SL_OK)
		return t->err;
	timeidx_key(k, topic_id, partition, ts);
	be_put64(v, base);
	key = mval(k, sizeof(k));
	val = mval(v, sizeof(v));
	rc = mdb_put(t->txn, t->s->dbi[DB_TIMEIDX], &key, &val, MDB_NOOVERWRITE);
	if (rc == MDB_SUCCESS || rc == MDB_KEYEXIST)
		return SL_OK;
	return txn_fail(t, rc);
}

/* Puts a reserved batch value; MDB_APPEND when the key is past the last (a tail append). */
static int batch_put_reserved(struct store_txn *t, const uint8_t *k, size_t size, uint8_t **dst)
{
	MDB_val key = mval(k, BATCH_KEY_BYTES), val = {size, NULL};
	int rc;

	if (t->err != SL_OK)
		return t->err;
	rc = mdb_put(t->txn, t->s->dbi[DB_BATCHES], &key, &val, MDB_RESERVE | MDB_APPEND);
	if (rc == MDB_KEYEXIST) {
		val.mv_size = size;
		val.mv_data = NULL;
		rc = mdb_put(t->txn, t->s->dbi[DB_BATCHES], &key, &val, MDB_RESERVE | MDB_NOOVERWRITE);
	}
	if (rc == MDB_KEYEXIST)
		return SL_ECORRUPT; /* a batch at the partition's end offset: metadata and log disagree */
	if (rc != MDB_SUCCESS)
		return txn_fail(t, rc);
	*dst = val.mv_data;
	return SL_OK;
}

int store_batch_append(struct store_txn *t, uint32_t topic_id, uint32_t partition, const struct store_record *recs,
                       size_t n, int64_t ts_ms, uint64_t term, uint64_t *base_out)
{
	struct store_partition part;
	uint8_t k[BATCH_KEY_BYTES];
	uint8_t *dst = NULL;
	size_t size = 0;
	int err;

	if (!t->write || recs == NULL || n == 0)
		return SL_EINVAL;
	if (t->err != SL_OK)
		return t->err;
	if ((err = store_partition_get(t, topic_id, partition, &part)) != SL_OK)
		return err;
	if (topic_is_deleted(t, topic_id))
		return SL_ENOTOPIC;
	if ((err = batch_size(recs, n, &size)) != SL_OK)
		return err;
	if (part.end_offset > UINT64_MAX - n)
		return SL_ERANGE;
	batch_key(k, topic_id, partition, part.end_offset);
	if ((err = batch_put_reserved(t, k, size, &dst)) != SL_OK)
		return err;
	if (dst == NULL)
		return SL_EINTERNAL;
	batch_fill(dst, size, part.end_offset, recs, n, ts_ms, term);
	if ((err = timeidx_add(t, topic_id, partition, ts_ms, part.end_offset)) != SL_OK)
		return err;
	*base_out = part.end_offset;
	if (part.first_offset == part.end_offset && part.bytes == 0)
		part.max_ts = ts_ms;
	part.end_offset += n;
	part.bytes += size;
	if (ts_ms > part.max_ts)
		part.max_ts = ts_ms;
	return part_put(t, topic_id, partition, &part);
}

/* Positions c on the batch of (topic, partition) holding offset `at` (base <= at). */
static int batch_seek(MDB_cursor *c, uint32_t topic_id, uint32_t partition, uint64_t at, MDB_val *k, MDB_val *v)
{
	uint8_t kb[BATCH_KEY_BYTES];
	int rc;

	batch_key(kb, topic_id, partition, at);
	*k = mval(kb, sizeof(kb));
	rc = mdb_cursor_get(c, k, v, MDB_SET_RANGE);
	if (rc == MDB_SUCCESS && key_in_partition(k, topic_id, partition) &&
	    be_get64((const uint8_t *)k->mv_data + 8) == at)
		return SL_OK;
	if (rc == MDB_SUCCESS)
		rc = mdb_cursor_get(c, k, v, MDB_PREV);
	else if (rc == MDB_NOTFOUND)
		rc = mdb_cursor_get(c, k, v, MDB_LAST);
	if (rc != MDB_SUCCESS)
		return store_err(rc);
	return key_in_partition(k, topic_id, partition) ? SL_OK : SL_ENOTFOUND;
}

struct read_state {
	uint64_t from;
	uint64_t limit;
	uint64_t next;
	size_t max_records;
	size_t max_bytes;
	size_t records;
	size_t bytes;
	int (*fn)(void *arg, const struct store_record *r);
	void *arg;
	int stop;
};

static int read_full(const struct read_state *st)
{
	return (st->max_records != 0 && st->records >= st->max_records) ||
	       (st->max_bytes != 0 && st->bytes >= st->max_bytes);
}

/* Delivers the records of one verified batch that fall in [from, limit). */
static int read_batch(struct read_state *st, const struct batch_hdr *h)
{
	struct rec_iter it;
	struct store_record r;
	int have = 1, err = SL_OK;

	rec_iter_init(&it, h);
	while (!st->stop) {
		if ((err = rec_next(&it, &r, &have)) != SL_OK || !have)
			break;
		if (r.offset < st->from)
			continue;
		if (r.offset >= st->limit || read_full(st) ||
		    (st->max_bytes != 0 && st->records > 0 && st->bytes + rec_bytes(&r) > st->max_bytes)) {
			st->stop = 1;
			break;
		}
		st->records++;
		st->bytes += rec_bytes(&r);
		st->next = r.offset + 1;
		if (st->fn(st->arg, &r) != 0 || read_full(st) || st->next >= st->limit)
			st->stop = 1;
	}
	return err;
}

static int read_batches(MDB_cursor *c, uint32_t topic_id, uint32_t partition, struct read_state *st)
{
	struct batch_hdr h;
	MDB_val k, v;
	uint64_t expect;
	int err = batch_seek(c, topic_id, partition, st->from, &k, &v);
	int rc;

	if (err == SL_ENOTFOUND)
		return SL_ECORRUPT; /* the partition record says [from, limit) is stored */
	if (err != SL_OK)
		return err;
	for (;;) {
		if ((err = batch_verify(&v, &k, &h)) != SL_OK)
			return err;
		if ((err = read_batch(st, &h)) != SL_OK || st->stop)
			return err;
		expect = h.base + h.count;
		if (expect >= st->limit)
			return SL_OK;
		rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
		if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND)
			return store_err(rc);
		if (rc == MDB_NOTFOUND || !key_in_partition(&k, topic_id, partition) ||
		    be_get64((const uint8_t *)k.mv_data + 8) != expect)
			return SL_ECORRUPT; /* a hole below the end offset */
	}
}

int store_read(struct store_txn *t, uint32_t topic_id, uint32_t partition, uint64_t from, uint64_t limit,
               size_t max_records, size_t max_bytes, int (*fn)(void *arg, const struct store_record *r), void *arg,
               uint64_t *next_out)
{
	struct store_partition part;
	struct read_state st;
	MDB_cursor *c = NULL;
	int err;

	*next_out = from;
	if ((err = store_partition_get(t, topic_id, partition, &part)) != SL_OK)
		return err;
	if (from < part.first_offset)
		from = part.first_offset;
	if (limit > part.end_offset)
		limit = part.end_offset;
	*next_out = from;
	if (from >= limit)
		return SL_OK;
	memset(&st, 0, sizeof(st));
	st.from = from;
	st.limit = limit;
	st.next = from;
	st.max_records = max_records;
	st.max_bytes = max_bytes;
	st.fn = fn;
	st.arg = arg;
	if ((err = cursor_open(t, DB_BATCHES, &c)) != SL_OK)
		return err;
	err = read_batches(c, topic_id, partition, &st);
	mdb_cursor_close(c);
	*next_out = st.next;
	return err;
}

/* First offset in the batch holding `at` whose timestamp is >= ts, below `before`. */
static int time_scan_batch(struct store_txn *t, uint32_t topic_id, uint32_t partition, uint64_t at, int64_t ts,
                           uint64_t floor, uint64_t *found)
{
	MDB_cursor *c = NULL;
	MDB_val k, v;
	struct batch_hdr h;
	struct rec_iter it;
	struct store_record r;
	int have = 1;
	int err = cursor_open(t, DB_BATCHES, &c);

	if (err != SL_OK)
		return err;
	err = batch_seek(c, topic_id, partition, at, &k, &v);
	if (err == SL_OK)
		err = batch_verify(&v, &k, &h);
	if (err != SL_OK || h.max_ts < ts)
		goto out;
	rec_iter_init(&it, &h);
	while ((err = rec_next(&it, &r, &have)) == SL_OK && have) {
		if (r.offset >= floor && r.offset <= at && r.timestamp_ms >= ts) {
			*found = r.offset;
			break;
		}
	}
out:
	mdb_cursor_close(c);
	return err == SL_ENOTFOUND ? SL_OK : err;
}

int store_offset_for_time(struct store_txn *t, uint32_t topic_id, uint32_t partition, int64_t ts_ms,
                          uint64_t *offset_out)
{
	struct store_partition part;
	uint8_t kb[TIMEIDX_KEY_BYTES];
	MDB_cursor *c = NULL;
	MDB_val k, v;
	uint64_t cand;
	int err, rc;

	if ((err = store_partition_get(t, topic_id, partition, &part)) != SL_OK)
		return err;
	cand = part.end_offset;
	if ((err = cursor_open(t, DB_TIMEIDX, &c)) != SL_OK)
		return err;
	timeidx_key(kb, topic_id, partition, ts_ms);
	k = mval(kb, sizeof(kb));
	rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
	if (rc == MDB_SUCCESS && k.mv_size == TIMEIDX_KEY_BYTES && memcmp(k.mv_data, kb, 8) == 0 && v.mv_size == 8)
		cand = be_get64(v.mv_data);
	mdb_cursor_close(c);
	if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND)
		return store_err(rc);
	if (cand < part.first_offset)
		cand = part.first_offset;
	if (cand > part.end_offset)
		cand = part.end_offset;
	/* The batch just before may have records stamped at or after ts_ms. */
	if (cand > part.first_offset)
		err = time_scan_batch(t, topic_id, partition, cand - 1, ts_ms, part.first_offset, &cand);
	if (err == SL_OK)
		*offset_out = cand;
	return err;
}

/* ------------------------------------------------------------------------ */
/* consumer groups                                                          */

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
	return db_put(t, DB_GROUPS, mval(k, klen), mval(v, sizeof(v)), 0);
}

int store_group_get(struct store_txn *t, const char *group, uint32_t topic_id, uint32_t partition, uint64_t *offset_out)
{
	uint8_t k[GROUP_KEY_MAX];
	size_t klen;
	MDB_val v;
	int err = group_key(k, &klen, group, topic_id, partition);

	if (err == SL_OK)
		err = db_get(t, DB_GROUPS, mval(k, klen), &v);
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
	if ((err = cursor_open(t, DB_GROUPS, &c)) != SL_OK)
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

/* ------------------------------------------------------------------------ */
/* idempotent producers                                                     */

int store_dedup_put(struct store_txn *t, uint64_t producer_id, uint64_t sequence, uint32_t partition, uint64_t offset,
                    int64_t ts_ms)
{
	uint8_t k[DEDUP_KEY_BYTES], v[DEDUP_VAL_BYTES];

	be_put64(k, producer_id);
	be_put64(k + 8, sequence);
	be_put32(v, partition);
	be_put64(v + 4, offset);
	be_put64(v + 12, (uint64_t)ts_ms);
	return db_put(t, DB_DEDUP, mval(k, sizeof(k)), mval(v, sizeof(v)), 0);
}

int store_dedup_get(struct store_txn *t, uint64_t producer_id, uint64_t sequence, uint32_t *partition, uint64_t *offset,
                    int64_t *ts_ms)
{
	uint8_t k[DEDUP_KEY_BYTES];
	const uint8_t *p;
	MDB_val v;
	int err;

	be_put64(k, producer_id);
	be_put64(k + 8, sequence);
	if ((err = db_get(t, DB_DEDUP, mval(k, sizeof(k)), &v)) != SL_OK)
		return err;
	if (v.mv_size != DEDUP_VAL_BYTES)
		return SL_ECORRUPT;
	p = v.mv_data;
	*partition = be_get32(p);
	*offset = be_get64(p + 4);
	*ts_ms = (int64_t)be_get64(p + 12);
	return SL_OK;
}

/* ------------------------------------------------------------------------ */
/* retention                                                                */

struct ret_ctx {
	struct store_txn *t;
	int64_t now_ms;
	size_t batches_left; /* batch deletions left in this step */
	size_t aux_left;     /* other entries (index, groups, dedup) left to visit */
	size_t deleted;
	int err;
};

/*
 * Visits at most `budget` entries of db from `resume` (empty: the start),
 * deleting those `pred` accepts. *next gets the key to resume from, or
 * length 0 when the scan reached the end.
 */
static int scan_delete(struct store_txn *t, enum store_db db, struct slice resume, size_t *budget,
                       int (*pred)(void *arg, const MDB_val *k, const MDB_val *v), void *arg, uint8_t *next,
                       size_t *next_len)
{
	uint8_t kb[512];
	MDB_cursor *c = NULL;
	MDB_val k, v;
	int err = cursor_open(t, db, &c);
	int rc;

	if (err != SL_OK)
		return err;
	*next_len = 0;
	assert(resume.len <= sizeof(kb));
	memcpy(kb, resume.base, resume.len);
	k = mval(kb, resume.len);
	rc = mdb_cursor_get(c, &k, &v, resume.len > 0 ? MDB_SET_RANGE : MDB_FIRST);
	while (rc == MDB_SUCCESS && *budget > 0) {
		(*budget)--;
		if (!pred(arg, &k, &v)) {
			rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
			continue;
		}
		size_t kl = k.mv_size;
		assert(kl <= sizeof(kb));
		memcpy(kb, k.mv_data, kl);
		if ((err = db_del(t, db, mval(kb, kl))) != SL_OK)
			goto out;
		k = mval(kb, kl);
		rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
	}
	if (rc == MDB_SUCCESS) {
		memcpy(next, k.mv_data, k.mv_size);
		*next_len = k.mv_size;
	} else if (rc != MDB_NOTFOUND) {
		err = store_err(rc);
	}
out:
	mdb_cursor_close(c);
	return err;
}

/* Deletes entries whose key starts with topic_id BE; *done once none is left. */
static int delete_topic_prefix(struct store_txn *t, enum store_db db, uint32_t topic_id, size_t *budget, int *done)
{
	uint8_t kb[BATCH_KEY_BYTES];
	MDB_cursor *c = NULL;
	MDB_val k, v;
	int err = cursor_open(t, db, &c);
	int rc = MDB_SUCCESS;

	if (err != SL_OK)
		return err;
	*done = 0;
	while (*budget > 0) {
		be_put32(kb, topic_id);
		k = mval(kb, 4);
		rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
		if (rc != MDB_SUCCESS || !key_has_topic(&k, topic_id) || k.mv_size > sizeof(kb))
			break;
		size_t kl = k.mv_size;
		memcpy(kb, k.mv_data, kl);
		if ((err = db_del(t, db, mval(kb, kl))) != SL_OK)
			goto out;
		(*budget)--;
	}
	if (*budget > 0 || rc != MDB_SUCCESS) {
		if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND)
			err = store_err(rc);
		else
			*done = 1;
	}
out:
	mdb_cursor_close(c);
	return err;
}

static int group_of_topic_pred(void *arg, const MDB_val *k, const MDB_val *v)
{
	uint32_t topic_id = *(const uint32_t *)arg;
	const uint8_t *p = k->mv_data;

	return k->mv_size >= 9 && be_get32(p + k->mv_size - 8) == topic_id;
}

/* Removes a deleted topic's groups entries, resuming from the key saved in its meta value. */
static int drop_topic_groups(struct ret_ctx *x, uint32_t topic_id, const char *mkey, struct slice mval_, int *done)
{
	uint8_t val[4 + 512];
	size_t next_len = 0;
	int err;

	if (mval_.len < 4 || mval_.len > sizeof(val))
		return SL_ECORRUPT;
	memcpy(val, mval_.base, mval_.len);
	err = scan_delete(x->t, DB_GROUPS, slice_make(val + 4, mval_.len - 4), &x->aux_left, group_of_topic_pred,
	                  &topic_id, val + 4, &next_len);
	if (err != SL_OK)
		return err;
	*done = next_len == 0;
	if (*done)
		return db_del(x->t, DB_META, mval(mkey, strlen(mkey)));
	return store_meta_put(x->t, mkey, slice_make(val, 4 + next_len));
}

/* One deleted topic: batches (counted), then time index, partitions, groups. */
static int drop_topic(struct ret_ctx *x, uint32_t topic_id, const char *mkey, struct slice val, int *done)
{
	size_t before = x->batches_left;
	int err = delete_topic_prefix(x->t, DB_BATCHES, topic_id, &x->batches_left, done);

	x->deleted += before - x->batches_left;
	if (err != SL_OK || !*done)
		return err;
	if ((err = delete_topic_prefix(x->t, DB_TIMEIDX, topic_id, &x->aux_left, done)) != SL_OK || !*done)
		return err;
	if ((err = delete_topic_prefix(x->t, DB_PARTITIONS, topic_id, &x->aux_left, done)) != SL_OK || !*done)
		return err;
	return drop_topic_groups(x, topic_id, mkey, val, done);
}

static int ret_deleted_topics(struct ret_ctx *x)
{
	const size_t plen = strlen(META_DELTOPIC_PREFIX);
	char mkey[32];
	uint8_t val[4 + 512];
	MDB_cursor *c = NULL;
	MDB_val k, v;
	int err = SL_OK, done = 1, rc;

	while (done && x->batches_left > 0 && x->aux_left > 0) {
		if ((err = cursor_open(x->t, DB_META, &c)) != SL_OK)
			return err;
		k = mval(META_DELTOPIC_PREFIX, plen);
		rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
		if (rc == MDB_SUCCESS && (k.mv_size != plen + 8 || memcmp(k.mv_data, META_DELTOPIC_PREFIX, plen) != 0))
			rc = MDB_NOTFOUND;
		if (rc == MDB_SUCCESS && v.mv_size > sizeof(val))
			rc = MDB_CORRUPTED;
		if (rc == MDB_SUCCESS) {
			memcpy(mkey, k.mv_data, k.mv_size);
			mkey[k.mv_size] = 0;
			memcpy(val, v.mv_data, v.mv_size);
		}
		mdb_cursor_close(c);
		if (rc != MDB_SUCCESS)
			return rc == MDB_NOTFOUND ? SL_OK : store_err(rc);
		uint32_t topic_id = (uint32_t)strtoul(mkey + plen, NULL, 16);
		err = drop_topic(x, topic_id, mkey, slice_make(val, v.mv_size), &done);
		if (err != SL_OK)
			return err;
	}
	return err;
}

/* Oldest batch of a partition and whether a newer one follows it. */
static int oldest_batch(MDB_cursor *c, uint32_t topic_id, uint32_t partition, uint8_t *kb, struct batch_hdr *h,
                        int *found, int *has_next)
{
	MDB_val k, v;
	int rc, err;

	*found = 0;
	*has_next = 0;
	batch_key(kb, topic_id, partition, 0);
	k = mval(kb, BATCH_KEY_BYTES);
	rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
	if (rc == MDB_NOTFOUND || (rc == MDB_SUCCESS && !key_in_partition(&k, topic_id, partition)))
		return SL_OK;
	if (rc != MDB_SUCCESS)
		return store_err(rc);
	memcpy(kb, k.mv_data, BATCH_KEY_BYTES);
	if ((err = batch_parse_hdr(&v, h)) != SL_OK)
		return err;
	*found = 1;
	rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
	if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND)
		return store_err(rc);
	*has_next = rc == MDB_SUCCESS && key_in_partition(&k, topic_id, partition);
	return SL_OK;
}

/* Removes the time-index entry that points at a batch being deleted. */
static int timeidx_forget(struct store_txn *t, uint32_t topic_id, uint32_t partition, const struct batch_hdr *h)
{
	uint8_t k[TIMEIDX_KEY_BYTES];
	MDB_val v;
	int err;

	timeidx_key(k, topic_id, partition, h->first_ts);
	err = db_get(t, DB_TIMEIDX, mval(k, sizeof(k)), &v);
	if (err == SL_ENOTFOUND)
		return SL_OK;
	if (err != SL_OK)
		return err;
	if (v.mv_size == 8 && be_get64(v.mv_data) != h->base)
		return SL_OK;
	return db_del(t, DB_TIMEIDX, mval(k, sizeof(k)));
}

/* Deletes whole oldest batches of one partition while its topic's limits say so. */
static int ret_partition(struct ret_ctx *x, const struct store_topic *tp, uint32_t partition)
{
	struct store_partition part;
	struct batch_hdr h;
	uint8_t kb[BATCH_KEY_BYTES];
	MDB_cursor *c = NULL;
	int found = 0, has_next = 0, changed = 0;
	int err = store_partition_get(x->t, tp->topic_id, partition, &part);

	if (err != SL_OK)
		return err == SL_ENOTOPIC ? SL_OK : err;
	if ((err = cursor_open(x->t, DB_BATCHES, &c)) != SL_OK)
		return err;
	while (x->batches_left > 0) {
		err = oldest_batch(c, tp->topic_id, partition, kb, &h, &found, &has_next);
		if (err != SL_OK || !found)
			break;
		int too_old = tp->retention_ms > 0 && h.max_ts < x->now_ms - tp->retention_ms;
		int too_big = tp->retention_bytes > 0 && part.bytes > (uint64_t)tp->retention_bytes && has_next;
		if (!too_old && !too_big)
			break;
		if ((err = db_del(x->t, DB_BATCHES, mval(kb, sizeof(kb)))) != SL_OK)
			break;
		if ((err = timeidx_forget(x->t, tp->topic_id, partition, &h)) != SL_OK)
			break;
		part.bytes = part.bytes > h.value_bytes ? part.bytes - h.value_bytes : 0;
		x->batches_left--;
		x->deleted++;
		changed = 1;
	}
	if (err == SL_ECORRUPT) {
		log_warn("store: retention skips topic %u partition %u: corrupt oldest batch", tp->topic_id, partition);
		err = SL_OK;
	}
	if (err == SL_OK && changed) {
		err = oldest_batch(c, tp->topic_id, partition, kb, &h, &found, &has_next);
		part.first_offset = found ? h.base : part.end_offset;
		if (err == SL_OK && found)
			err = timeidx_add(x->t, tp->topic_id, partition, h.first_ts, h.base);
		if (err == SL_OK)
			err = part_put(x->t, tp->topic_id, partition, &part);
	}
	mdb_cursor_close(c);
	return err;
}

static int ret_topic_cb(void *arg, const struct store_topic *tp)
{
	struct ret_ctx *x = arg;

	if (tp->retention_ms <= 0 && tp->retention_bytes <= 0)
		return 0;
	for (uint32_t p = 0; p < tp->partitions && x->batches_left > 0; p++) {
		x->err = ret_partition(x, tp, p);
		if (x->err != SL_OK)
			return 1;
	}
	return x->batches_left == 0;
}

static int dedup_expired_pred(void *arg, const MDB_val *k, const MDB_val *v)
{
	int64_t cutoff = *(const int64_t *)arg;

	return v->mv_size == DEDUP_VAL_BYTES && (int64_t)be_get64((const uint8_t *)v->mv_data + 12) < cutoff;
}

/* Expires dedup entries older than the window, resuming where the last step stopped. */
static int ret_dedup(struct ret_ctx *x, int64_t cutoff_ms)
{
	uint8_t resume[DEDUP_KEY_BYTES], next[512];
	size_t next_len = 0, resume_len = 0;
	struct slice v;
	int err = store_meta_get(x->t, META_DEDUP_CURSOR, &v);

	if (err == SL_OK && v.len == sizeof(resume)) {
		memcpy(resume, v.base, v.len);
		resume_len = v.len;
	} else if (err != SL_OK && err != SL_ENOTFOUND) {
		return err;
	}
	err = scan_delete(x->t, DB_DEDUP, slice_make(resume, resume_len), &x->aux_left, dedup_expired_pred, &cutoff_ms,
	                  next, &next_len);
	if (err != SL_OK)
		return err;
	if (next_len == 0)
		return db_del(x->t, DB_META, mval(META_DEDUP_CURSOR, strlen(META_DEDUP_CURSOR)));
	return store_meta_put(x->t, META_DEDUP_CURSOR, slice_make(next, next_len));
}

int store_retention_step(struct store_txn *t, int64_t now_ms, int64_t dedup_window_ms, size_t max_batches,
                         size_t *deleted)
{
	struct ret_ctx x;
	size_t aux =
	    max_batches > STORE_AUX_MAX / STORE_AUX_PER_BATCH ? STORE_AUX_MAX : max_batches * STORE_AUX_PER_BATCH;
	int err;

	*deleted = 0;
	if (!t->write)
		return SL_EINVAL;
	if (t->err != SL_OK)
		return t->err;
	store_reader_check(t->s);
	memset(&x, 0, sizeof(x));
	x.t = t;
	x.now_ms = now_ms;
	x.batches_left = max_batches;
	x.aux_left = aux < STORE_AUX_MIN ? STORE_AUX_MIN : aux;
	err = ret_deleted_topics(&x);
	if (err == SL_OK && x.batches_left > 0) {
		err = store_topic_foreach(t, ret_topic_cb, &x);
		if (err == SL_OK)
			err = x.err;
	}
	if (err == SL_OK && dedup_window_ms > 0 && x.aux_left > 0)
		err = ret_dedup(&x, now_ms - dedup_window_ms);
	*deleted = x.deleted;
	return err;
}

/* ------------------------------------------------------------------------ */
/* test support                                                             */

int store_debug_corrupt(struct store_txn *t, uint32_t topic_id, uint32_t partition, uint64_t base_offset,
                        size_t byte_index)
{
	uint8_t k[BATCH_KEY_BYTES];
	uint8_t *copy;
	MDB_val v;
	int err;

	batch_key(k, topic_id, partition, base_offset);
	if ((err = db_get(t, DB_BATCHES, mval(k, sizeof(k)), &v)) != SL_OK)
		return err;
	if (byte_index >= v.mv_size)
		return SL_ERANGE;
	copy = malloc(v.mv_size);
	if (copy == NULL)
		return SL_ENOMEM;
	memcpy(copy, v.mv_data, v.mv_size);
	copy[byte_index] ^= 0x5a;
	err = db_put(t, DB_BATCHES, mval(k, sizeof(k)), mval(copy, v.mv_size), 0);
	free(copy);
	return err;
}
