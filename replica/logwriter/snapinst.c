/*
 * snapinst.c: the snapshot install state machine (see snapinst.h). Every
 * step that moves the state forward is a rename or an unlink followed by a
 * sync of the directory, so a power loss leaves one of the named states.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "log.h"
#include "sl_assert.h"
#include "snapinst.h"
#include "store.h"

#define SNAP_DATA "snapshot-in.mdb"
#define SNAP_META "snapshot-in.meta"
#define SNAP_META_TMP "snapshot-in.meta.tmp"

void snapinst_path(char *buf, size_t size, const char *dir, const char *name)
{
	int n = snprintf(buf, size, "%s/%s", dir, name);
	SL_ASSERT(n > 0 && (size_t)n < size);
}

static int exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

int snapinst_commit(const char *dir, uint64_t term, uint64_t vote)
{
	char tmp[4200], meta[4200];
	struct snapinst_meta m = {SNAPINST_MAGIC, term, vote, term ^ vote ^ SNAPINST_MAGIC};
	snapinst_path(tmp, sizeof(tmp), dir, SNAP_META_TMP);
	snapinst_path(meta, sizeof(meta), dir, SNAP_META);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return sl_err_from_errno(errno);
	int ok = write(fd, &m, sizeof(m)) == (ssize_t)sizeof(m) && fsync(fd) == 0;
	int e = errno;
	close(fd);
	if (!ok || rename(tmp, meta) != 0) {
		if (ok)
			e = errno;
		unlink(tmp);
		return sl_err_from_errno(e);
	}
	return store_dir_sync(dir);
}

int snapinst_meta_read(const char *dir, struct snapinst_meta *out)
{
	char meta[4200];
	snapinst_path(meta, sizeof(meta), dir, SNAP_META);
	int fd = open(meta, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? SL_ENOTFOUND : sl_err_from_errno(errno);
	ssize_t n = read(fd, out, sizeof(*out));
	close(fd);
	if (n != (ssize_t)sizeof(*out) || out->magic != SNAPINST_MAGIC ||
	    out->check != (out->term ^ out->vote ^ SNAPINST_MAGIC))
		return SL_ECORRUPT;
	return SL_OK;
}

void snapinst_meta_remove(const char *dir)
{
	char meta[4200];
	snapinst_path(meta, sizeof(meta), dir, SNAP_META);
	if (unlink(meta) != 0 && errno != ENOENT)
		log_warn("cannot remove %s: %s", meta, strerror(errno));
	store_dir_sync(dir);
}

int snapinst_recover(const char *dir, int *installed)
{
	char data[4200], copy[4200], lock[4200], tmp[4200];
	struct snapinst_meta m;
	*installed = 0;
	snapinst_path(copy, sizeof(copy), dir, SNAP_DATA);
	snapinst_path(data, sizeof(data), dir, "data.mdb");
	snapinst_path(lock, sizeof(lock), dir, "lock.mdb");
	snapinst_path(tmp, sizeof(tmp), dir, SNAP_META_TMP);
	unlink(tmp); /* a meta that never reached its commit rename */
	int rc = snapinst_meta_read(dir, &m);
	if (rc == SL_ECORRUPT) {
		/* cannot be a committed meta (it is renamed into place whole):
		 * treat as state A */
		log_warn("%s/%s is torn: discarding the snapshot", dir, SNAP_META);
		snapinst_meta_remove(dir);
		rc = SL_ENOTFOUND;
	}
	if (rc != SL_OK && rc != SL_ENOTFOUND)
		return rc;
	if (!exists(copy))
		return SL_OK; /* nothing received, or state C/D: the logwriter decides */
	if (rc == SL_ENOTFOUND) {
		log_warn("discarding an incomplete snapshot (%s): the leader sends a new one if it is needed", copy);
		if (unlink(copy) != 0)
			return sl_err_from_errno(errno);
		return store_dir_sync(dir);
	}
	if (rename(copy, data) != 0)
		return sl_err_from_errno(errno);
	unlink(lock); /* a fresh lock file for the new environment */
	rc = store_dir_sync(dir);
	if (rc == SL_OK)
		*installed = 1;
	return rc;
}
