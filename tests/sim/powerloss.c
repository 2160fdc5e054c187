/*
 * powerloss.c: the volatile/durable model of powerloss.h, by interposing
 * the file calls the store and the logwriter make (see powerloss.h for the
 * model). Each file of a tracked directory has an image (its durable
 * content) and a log of the writes and truncations made since its last
 * sync, with their bytes; a sync applies the log to the image in order.
 * Each directory has its durable listing, taken at every fsync of it.
 * pl_restore rewrites the directory from the listing and the images.
 *
 * The interposers call the kernel with syscall(2), never the libc
 * function of the same name (that would be themselves).
 */
#undef _FORTIFY_SOURCE
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "powerloss.h"

#define PL_DIRS_MAX 8
#define PL_FDS_MAX 4096
#define PL_NAME_MAX 64

struct pl_op_rec {
	uint64_t off;       /* write: offset; truncate: new size */
	size_t len;         /* write: bytes; truncate: SIZE_MAX */
	uint8_t *data;
};

struct pl_file {
	int dir;
	ino_t ino;
	char name[PL_NAME_MAX]; /* the name it was opened by (for the hook) */
	uint8_t *img;           /* durable content */
	size_t img_len, img_cap;
	struct pl_op_rec *ops;  /* since the last sync, in order */
	size_t n_ops, cap_ops;
	int fds;                /* open descriptors */
	struct pl_file *next;
};

struct pl_name {
	char name[PL_NAME_MAX];
	struct pl_file *f;
};

struct pl_dir {
	int used, cut;
	char path[256];
	size_t plen;
	struct pl_file *files;
	struct pl_name *names;  /* the durable listing */
	size_t n_names;
};

struct pl_fd {
	struct pl_file *f;      /* a file of a tracked dir, or NULL */
	int dir;                /* a tracked directory itself: its index + 1 */
	int dsync;
};

static struct pl_dir dirs[PL_DIRS_MAX];
static struct pl_fd fds[PL_FDS_MAX];
static pl_hook_fn *hook;
static void *hook_arg;

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		abort();
	return p;
}

/* ---------- durable images ---------- */

static void img_reserve(struct pl_file *f, size_t len)
{
	if (len <= f->img_cap)
		return;
	size_t cap = f->img_cap ? f->img_cap : 4096;
	while (cap < len)
		cap *= 2;
	f->img = xrealloc(f->img, cap);
	f->img_cap = cap;
}

static void img_write(struct pl_file *f, uint64_t off, const uint8_t *p, size_t len)
{
	size_t end = (size_t)off + len;
	img_reserve(f, end);
	if (off > f->img_len)
		memset(f->img + f->img_len, 0, (size_t)off - f->img_len);
	memcpy(f->img + off, p, len);
	if (end > f->img_len)
		f->img_len = end;
}

static void img_truncate(struct pl_file *f, uint64_t size)
{
	img_reserve(f, (size_t)size);
	if (size > f->img_len)
		memset(f->img + f->img_len, 0, (size_t)size - f->img_len);
	f->img_len = (size_t)size;
}

static void ops_clear(struct pl_file *f)
{
	for (size_t i = 0; i < f->n_ops; i++)
		free(f->ops[i].data);
	f->n_ops = 0;
}

static void ops_add(struct pl_file *f, uint64_t off, const void *p, size_t len)
{
	if (f->n_ops == f->cap_ops) {
		f->cap_ops = f->cap_ops ? f->cap_ops * 2 : 16;
		f->ops = xrealloc(f->ops, f->cap_ops * sizeof(*f->ops));
	}
	struct pl_op_rec *o = &f->ops[f->n_ops++];
	o->off = off;
	o->len = len;
	o->data = NULL;
	if (p) {
		o->data = xrealloc(NULL, len);
		memcpy(o->data, p, len);
	}
}

/* fsync/fdatasync: every write and truncation so far is on the disk. */
static void file_synced(struct pl_file *f)
{
	for (size_t i = 0; i < f->n_ops; i++) {
		const struct pl_op_rec *o = &f->ops[i];
		if (o->len == SIZE_MAX)
			img_truncate(f, o->off);
		else
			img_write(f, o->off, o->data, o->len);
	}
	ops_clear(f);
}

static void file_free(struct pl_file *f)
{
	ops_clear(f);
	free(f->ops);
	free(f->img);
	free(f);
}

/* ---------- directories ---------- */

/* The tracked directory path is, or is the parent of (name is then set). */
static int dir_of(const char *path, const char **name)
{
	for (int i = 0; i < PL_DIRS_MAX; i++) {
		const struct pl_dir *d = &dirs[i];
		if (!d->used || strncmp(path, d->path, d->plen) != 0)
			continue;
		const char *rest = path + d->plen;
		while (*rest == '/')
			rest++;
		if (*rest && strchr(rest, '/'))
			continue;
		*name = rest;
		return i;
	}
	return -1;
}

static struct pl_file *file_by_ino(int dir, ino_t ino)
{
	for (struct pl_file *f = dirs[dir].files; f; f = f->next)
		if (f->ino == ino)
			return f;
	return NULL;
}

static struct pl_file *file_get(int dir, ino_t ino, const char *name)
{
	struct pl_file *f = file_by_ino(dir, ino);
	if (f)
		return f;
	f = xrealloc(NULL, sizeof(*f));
	memset(f, 0, sizeof(*f));
	f->dir = dir;
	f->ino = ino;
	strncpy(f->name, name, sizeof(f->name) - 1);
	f->next = dirs[dir].files;
	dirs[dir].files = f;
	return f;
}

/* fsync of the directory: its listing as it is now is durable. */
static void dir_synced(int dir)
{
	struct pl_dir *d = &dirs[dir];
	DIR *dp = opendir(d->path);
	if (!dp)
		return;
	d->n_names = 0;
	struct dirent *e;
	char p[512];
	struct stat st;
	while ((e = readdir(dp))) {
		snprintf(p, sizeof(p), "%s/%s", d->path, e->d_name);
		if (strlen(e->d_name) >= PL_NAME_MAX || stat(p, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		d->names = xrealloc(d->names, (d->n_names + 1) * sizeof(*d->names));
		struct pl_name *n = &d->names[d->n_names++];
		memset(n, 0, sizeof(*n));
		strcpy(n->name, e->d_name);
		n->f = file_get(dir, st.st_ino, e->d_name);
	}
	closedir(dp);
}

static void call_hook(int dir, enum pl_op op, const char *name)
{
	if (hook && !dirs[dir].cut)
		hook(hook_arg, dir, op, name);
}

/* ---------- the interposed calls ---------- */

static int fd_ok(int fd)
{
	return fd >= 0 && fd < PL_FDS_MAX;
}

static void opened(int fd, const char *path, int flags)
{
	const char *name;
	int dir = dir_of(path, &name);
	struct stat st;
	if (dir < 0 || fstat(fd, &st) != 0)
		return;
	if (!fd_ok(fd))
		abort(); /* a tracked file the model would miss */
	if (S_ISDIR(st.st_mode)) {
		if (!*name)
			fds[fd].dir = dir + 1;
		return;
	}
	struct pl_file *f = file_get(dir, st.st_ino, name);
	strncpy(f->name, name, sizeof(f->name) - 1);
	f->fds++;
	fds[fd].f = f;
	fds[fd].dsync = (flags & O_DSYNC) != 0;
	if (flags & O_TRUNC)
		ops_add(f, 0, NULL, SIZE_MAX);
}

static int open_impl(const char *path, int flags, va_list ap)
{
	mode_t mode = 0;
	if (flags & (O_CREAT | __O_TMPFILE))
		mode = (mode_t)va_arg(ap, int);
	int fd = (int)syscall(SYS_openat, AT_FDCWD, path, flags, mode);
	if (fd >= 0 && fd_ok(fd))
		memset(&fds[fd], 0, sizeof(fds[fd]));
	if (fd >= 0)
		opened(fd, path, flags);
	return fd;
}

int open(const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	int fd = open_impl(path, flags, ap);
	va_end(ap);
	return fd;
}

int open64(const char *path, int flags, ...) __attribute__((alias("open")));

static int named_durably(const struct pl_file *f)
{
	const struct pl_dir *d = &dirs[f->dir];
	for (size_t i = 0; i < d->n_names; i++)
		if (d->names[i].f == f)
			return 1;
	return 0;
}

/* The last descriptor of a file without a name goes: nothing can sync it. */
static void file_closing(int fd, struct pl_file *f)
{
	struct stat st;
	if (--f->fds > 0 || fstat(fd, &st) != 0 || st.st_nlink > 0 || named_durably(f))
		return;
	struct pl_file **pp = &dirs[f->dir].files;
	while (*pp != f)
		pp = &(*pp)->next;
	*pp = f->next;
	file_free(f);
}

int close(int fd)
{
	if (fd_ok(fd)) {
		if (fds[fd].f)
			file_closing(fd, fds[fd].f);
		memset(&fds[fd], 0, sizeof(fds[fd]));
	}
	return (int)syscall(SYS_close, fd);
}

/* A write of n bytes at off went through fd. */
static void written(int fd, uint64_t off, const void *p, size_t n)
{
	struct pl_file *f = fd_ok(fd) ? fds[fd].f : NULL;
	if (!f || n == 0)
		return;
	ops_add(f, off, p, n);
	if (fds[fd].dsync && !dirs[f->dir].cut)
		img_write(f, off, p, n); /* O_DSYNC: this write alone is durable */
}

static void before_write(int fd)
{
	struct pl_file *f = fd_ok(fd) ? fds[fd].f : NULL;
	if (f && fds[fd].dsync)
		call_hook(f->dir, PL_SYNC_WRITE, f->name);
}

ssize_t pwrite(int fd, const void *p, size_t n, off_t off)
{
	before_write(fd);
	ssize_t r = (ssize_t)syscall(SYS_pwrite64, fd, p, n, off);
	if (r > 0)
		written(fd, (uint64_t)off, p, (size_t)r);
	return r;
}

ssize_t pwrite64(int fd, const void *p, size_t n, off64_t off)
{
	return pwrite(fd, p, n, (off_t)off);
}

ssize_t write(int fd, const void *p, size_t n)
{
	off_t off = fd_ok(fd) && fds[fd].f ? lseek(fd, 0, SEEK_CUR) : 0;
	before_write(fd);
	ssize_t r = (ssize_t)syscall(SYS_write, fd, p, n);
	if (r > 0 && off >= 0)
		written(fd, (uint64_t)off, p, (size_t)r);
	return r;
}

ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
	off_t off = fd_ok(fd) && fds[fd].f ? lseek(fd, 0, SEEK_CUR) : 0;
	before_write(fd);
	ssize_t r = (ssize_t)syscall(SYS_writev, fd, iov, cnt);
	size_t left = r > 0 && off >= 0 ? (size_t)r : 0;
	for (int i = 0; left && i < cnt; i++) {
		size_t n = iov[i].iov_len < left ? iov[i].iov_len : left;
		written(fd, (uint64_t)off, iov[i].iov_base, n);
		off += (off_t)n;
		left -= n;
	}
	return r;
}

int ftruncate(int fd, off_t len)
{
	int r = (int)syscall(SYS_ftruncate, fd, len);
	if (r == 0 && fd_ok(fd) && fds[fd].f)
		ops_add(fds[fd].f, (uint64_t)len, NULL, SIZE_MAX);
	return r;
}

static int sync_impl(int fd, long nr)
{
	struct pl_file *f = fd_ok(fd) ? fds[fd].f : NULL;
	int dir = fd_ok(fd) ? fds[fd].dir - 1 : -1;
	if (f)
		call_hook(f->dir, PL_SYNC_FILE, f->name);
	else if (dir >= 0)
		call_hook(dir, PL_SYNC_DIR, ".");
	int r = (int)syscall(nr, fd);
	if (r == 0 && f && !dirs[f->dir].cut)
		file_synced(f);
	if (r == 0 && dir >= 0 && !dirs[dir].cut)
		dir_synced(dir);
	return r;
}

int fsync(int fd)
{
	return sync_impl(fd, SYS_fsync);
}

int fdatasync(int fd)
{
	return sync_impl(fd, SYS_fdatasync);
}

/* ---------- the API ---------- */

void pl_hook_set(pl_hook_fn *fn, void *arg)
{
	hook = fn;
	hook_arg = arg;
}

int pl_dir_add(const char *path)
{
	for (int i = 0; i < PL_DIRS_MAX; i++) {
		struct pl_dir *d = &dirs[i];
		if (d->used || strlen(path) >= sizeof(d->path))
			continue;
		memset(d, 0, sizeof(*d));
		d->used = 1;
		strcpy(d->path, path);
		d->plen = strlen(path);
		while (d->plen > 1 && d->path[d->plen - 1] == '/')
			d->path[--d->plen] = '\0';
		return i;
	}
	return -1;
}

void pl_cut(int dir)
{
	dirs[dir].cut = 1;
}

int pl_is_cut(int dir)
{
	return dirs[dir].cut;
}

/* Unlink every file of the directory (through the kernel: no model). */
static int dir_clear(const char *path)
{
	DIR *dp = opendir(path);
	if (!dp)
		return -1;
	struct dirent *e;
	char p[512];
	int rc = 0;
	while ((e = readdir(dp)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			snprintf(p, sizeof(p), "%s/%s", path, e->d_name);
			if (syscall(SYS_unlinkat, AT_FDCWD, p, 0) != 0)
				rc = -1;
		}
	closedir(dp);
	return rc;
}

/* Write name with f's durable content; f now stands for the new file. */
static int file_restore(struct pl_dir *d, const char *name, struct pl_file *f)
{
	char p[512];
	struct stat st;
	snprintf(p, sizeof(p), "%s/%s", d->path, name);
	int fd = (int)syscall(SYS_openat, AT_FDCWD, p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	size_t done = 0;
	while (done < f->img_len) {
		ssize_t r = (ssize_t)syscall(SYS_pwrite64, fd, f->img + done, f->img_len - done, (off_t)done);
		if (r <= 0)
			break;
		done += (size_t)r;
	}
	int rc = done == f->img_len && fstat(fd, &st) == 0 ? 0 : -1;
	syscall(SYS_close, fd);
	f->ino = st.st_ino;
	ops_clear(f);
	f->fds = 0;
	strncpy(f->name, name, sizeof(f->name) - 1);
	return rc;
}

int pl_restore(int dir)
{
	struct pl_dir *d = &dirs[dir];
	for (int fd = 0; fd < PL_FDS_MAX; fd++)
		if ((fds[fd].f && fds[fd].f->dir == dir) || fds[fd].dir == dir + 1)
			memset(&fds[fd], 0, sizeof(fds[fd])); /* left open: no longer this model's */
	int rc = dir_clear(d->path);
	/* keep the files the listing names (each once: the sim makes no hard links) */
	struct pl_file *keep = NULL;
	for (size_t i = 0; i < d->n_names; i++) {
		struct pl_file **pp = &d->files;
		while (*pp && *pp != d->names[i].f)
			pp = &(*pp)->next;
		if (!*pp)
			abort(); /* named twice */
		struct pl_file *f = *pp;
		*pp = f->next;
		f->next = keep;
		keep = f;
		if (file_restore(d, d->names[i].name, f) != 0)
			rc = -1;
	}
	while (d->files) {
		struct pl_file *f = d->files;
		d->files = f->next;
		file_free(f);
	}
	d->files = keep;
	d->cut = 0;
	return rc;
}

void pl_reset(void)
{
	for (int fd = 0; fd < PL_FDS_MAX; fd++)
		memset(&fds[fd], 0, sizeof(fds[fd]));
	for (int i = 0; i < PL_DIRS_MAX; i++) {
		struct pl_dir *d = &dirs[i];
		while (d->files) {
			struct pl_file *f = d->files;
			d->files = f->next;
			file_free(f);
		}
		free(d->names);
		memset(d, 0, sizeof(*d));
	}
	hook = NULL;
	hook_arg = NULL;
}
