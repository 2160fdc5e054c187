/*
 * powerloss.h: power loss for the files of a simulated node (lw_sim).
 *
 * The sim links powerloss.c, which defines open, close, write, pwrite,
 * writev, ftruncate, fsync and fdatasync itself: the executable's
 * definitions come first in symbol lookup, so the calls of liblmdb.so and of
 * the logwriter (snapinst.c, lw_cluster.c) reach them; each forwards to the
 * system call and, for a file of a tracked directory, records what became
 * durable. Production binaries do not link it: their code paths are
 * unchanged.
 *
 * The model (what a disk with a volatile write cache guarantees, no more):
 * - File contents: a write is volatile until an fsync or fdatasync of the
 *   file (through any descriptor), or durable at once on a descriptor
 *   opened with O_DSYNC (LMDB writes its meta page so unless
 *   MDB_NOMETASYNC). Unsynced writes are all lost, never torn.
 * - Names: creating, renaming and unlinking a file in the directory are
 *   volatile until an fsync of the directory, which makes the whole
 *   listing durable (name -> file). A file synced under a name that was
 *   never made durable is lost with its name (POSIX fsync(2) promises no
 *   more). The tracked directory itself is taken as durable.
 * - msync is not modelled: the store does not use MDB_WRITEMAP
 *   (replica/storage/env.c), so LMDB never calls it.
 * Single-threaded (the sim copies snapshots inline); inode numbers are not
 * reused while a directory is tracked (tmpfs counts them up).
 */
#ifndef SLUICE_SIM_POWERLOSS_H
#define SLUICE_SIM_POWERLOSS_H

enum pl_op {
	PL_SYNC_FILE,  /* fsync or fdatasync of a file */
	PL_SYNC_WRITE, /* a write through an O_DSYNC descriptor */
	PL_SYNC_DIR,   /* fsync of the directory */
};

/* Called before every operation that would make something durable in a
 * tracked directory (name: the file's name in it, "." for the directory);
 * the hook may call pl_cut to lose power just before it. */
typedef void pl_hook_fn(void *arg, int dir, enum pl_op op, const char *name);
void pl_hook_set(pl_hook_fn *fn, void *arg);

/* Track an existing, empty directory; returns its index (>= 0), -1 if full. */
int pl_dir_add(const char *path);

/* Power is lost now: nothing done in the directory from here on becomes
 * durable, until pl_restore. */
void pl_cut(int dir);
int pl_is_cut(int dir);

/* Power comes back: every file of the directory becomes what the disk
 * held durably (names too). The caller has closed them all. 0, or -1 with
 * errno set. */
int pl_restore(int dir);

/* Forget every directory (the files stay as they are). */
void pl_reset(void);

#endif
