/*
 * auth_key.c: Ed25519 key pairs and their files (see auth_key.h). The only
 * file I/O of common/auth. Writes refuse to follow a symbolic link and set
 * the mode with fchmod before any secret byte is written, so a secret never
 * sits in a file that others can read, even for a moment.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "auth_b64.h"
#include "auth_key.h"
#include "auth_why.h"
#include "err.h"

#define KEY_B64_CHARS AUTH_B64_CHARS(32)

int auth_key_from_seed(const uint8_t seed[AUTH_SEED_BYTES], struct auth_keypair *kp)
{
	if (!seed || !kp)
		return SL_EINVAL;
	if (sodium_init() < 0)
		return SL_EINTERNAL;
	crypto_sign_seed_keypair(kp->pk, kp->sk, seed);
	return SL_OK;
}

int auth_key_generate(struct auth_keypair *kp)
{
	uint8_t seed[AUTH_SEED_BYTES];
	int rc;

	if (!kp)
		return SL_EINVAL;
	if (sodium_init() < 0)
		return SL_EINTERNAL;
	randombytes_buf(seed, sizeof seed);
	rc = auth_key_from_seed(seed, kp);
	sodium_memzero(seed, sizeof seed);
	return rc;
}

/* prefix + base64url(32 bytes) into out. */
static int key_text_format(const char *prefix, const uint8_t k[32], char *out, size_t cap)
{
	size_t pl = strlen(prefix);

	if (!out || cap < pl + KEY_B64_CHARS + 1)
		return SL_ERANGE;
	memcpy(out, prefix, pl);
	return auth_b64_encode(k, 32, out + pl, cap - pl, NULL);
}

/* prefix + base64url(32 bytes), then at most one newline, into out. */
static int key_text_parse(const char *s, size_t len, const char *prefix, uint8_t out[32])
{
	size_t pl = strlen(prefix), n = 0;

	if (!s || !out)
		return SL_EMALFORMED;
	if (len && s[len - 1] == '\n')
		len--;
	if (len != pl + KEY_B64_CHARS || memcmp(s, prefix, pl) != 0)
		return SL_EMALFORMED;
	if (auth_b64_decode(s + pl, KEY_B64_CHARS, out, 32, &n) != SL_OK || n != 32)
		return SL_EMALFORMED;
	return SL_OK;
}

int auth_pubkey_format(const uint8_t pk[AUTH_PK_BYTES], char *out, size_t cap)
{
	if (!pk)
		return SL_EINVAL;
	return key_text_format(AUTH_KEY_PREFIX_PUBLIC, pk, out, cap);
}

int auth_pubkey_parse(const char *s, size_t len, uint8_t pk[AUTH_PK_BYTES])
{
	return key_text_parse(s, len, AUTH_KEY_PREFIX_PUBLIC, pk);
}

/* Write text[0..n) and a newline to a new or truncated file of that mode. */
static int file_write(const char *path, const char *text, size_t n, mode_t mode, int flags, char *why, size_t why_cap)
{
	int oflags = O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | (flags & AUTH_KEY_EXCL ? O_EXCL : O_TRUNC);
	int fd, rc = SL_OK;
	const char *what = "open";

	if ((fd = open(path, oflags, mode)) < 0)
		goto fail;
	what = "chmod";
	if (fchmod(fd, mode) != 0)
		goto fail;
	what = "write";
	for (size_t off = 0; off < n + 1;) {
		ssize_t k = off < n ? write(fd, text + off, n - off) : write(fd, "\n", 1);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			goto fail;
		off += (size_t)k;
	}
	what = "fsync";
	if (fsync(fd) != 0)
		goto fail;
	what = "close";
	rc = close(fd);
	fd = -1;
	if (rc == 0)
		return SL_OK;
fail:
	rc = errno ? sl_err_from_errno(errno) : SL_EIO;
	auth_why(why, why_cap, "%s: %s: %s", path, what, strerror(errno));
	if (fd >= 0)
		close(fd);
	return rc == SL_OK ? SL_EIO : rc;
}

int auth_key_write(const char *path, const struct auth_keypair *kp, int flags, char *why, size_t why_cap)
{
	char text[AUTH_SECKEY_CHARS];
	int rc;

	if (!path || !kp)
		return SL_EINVAL;
	/* the seed is the first half of libsodium's secret key */
	if ((rc = key_text_format(AUTH_KEY_PREFIX_SECRET, kp->sk, text, sizeof text)) == SL_OK)
		rc = file_write(path, text, strlen(text), 0600, flags, why, why_cap);
	sodium_memzero(text, sizeof text);
	return rc;
}

int auth_pubkey_write(const char *path, const uint8_t pk[AUTH_PK_BYTES], int flags, char *why, size_t why_cap)
{
	char text[AUTH_PUBKEY_CHARS];
	int rc;

	if (!path || !pk)
		return SL_EINVAL;
	if ((rc = auth_pubkey_format(pk, text, sizeof text)) == SL_OK)
		rc = file_write(path, text, strlen(text), 0644, flags, why, why_cap);
	return rc;
}

/* The owner and mode a secret key file must have (ssh's rule). */
static int secret_mode_ok(const char *path, const struct stat *st, char *why, size_t why_cap)
{
	if (st->st_mode & 077) {
		auth_why(why, why_cap,
		    "%s: permissions %04o are too open: a secret key must be accessible by its owner only (chmod 600)",
		    path, (unsigned)(st->st_mode & 07777));
		return SL_ECONFIG;
	}
	if (st->st_uid != geteuid() && st->st_uid != 0) {
		auth_why(why, why_cap, "%s: secret key owned by uid %u, neither us (%u) nor root", path,
		    (unsigned)st->st_uid, (unsigned)geteuid());
		return SL_ECONFIG;
	}
	return SL_OK;
}

/* Read a small regular file into buf[0..*n) (cap - 1 bytes at most). */
static int file_read(const char *path, int secret, char *buf, size_t cap, size_t *n, char *why, size_t why_cap)
{
	struct stat st;
	int fd, rc = SL_OK;
	size_t off = 0;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		auth_why(why, why_cap, "%s: %s", path, strerror(errno));
		return sl_err_from_errno(errno);
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		auth_why(why, why_cap, "%s: not a regular file", path);
		rc = SL_ECONFIG;
		goto out;
	}
	if (secret && (rc = secret_mode_ok(path, &st, why, why_cap)) != SL_OK)
		goto out;
	if (st.st_size < 0 || (size_t)st.st_size >= cap) {
		auth_why(why, why_cap, "%s: a key file is at most %zu bytes", path, cap - 1);
		rc = SL_EMALFORMED;
		goto out;
	}
	for (ssize_t k; off < cap; off += (size_t)k) {
		k = read(fd, buf + off, cap - off);
		if (k < 0 && errno == EINTR)
			k = 0;
		else if (k < 0) {
			auth_why(why, why_cap, "%s: %s", path, strerror(errno));
			rc = sl_err_from_errno(errno);
			goto out;
		} else if (k == 0)
			break;
	}
	if (off >= cap) { /* it grew since fstat */
		auth_why(why, why_cap, "%s: a key file is at most %zu bytes", path, cap - 1);
		rc = SL_EMALFORMED;
		goto out;
	}
	*n = off;
out:
	close(fd);
	return rc;
}

int auth_key_read(const char *path, struct auth_keypair *kp, char *why, size_t why_cap)
{
	char buf[AUTH_KEY_FILE_BYTES_MAX + 1];
	uint8_t seed[AUTH_SEED_BYTES];
	size_t n = 0;
	int rc;

	if (!path || !kp)
		return SL_EINVAL;
	if ((rc = file_read(path, 1, buf, sizeof buf, &n, why, why_cap)) != SL_OK)
		goto out;
	if ((rc = key_text_parse(buf, n, AUTH_KEY_PREFIX_SECRET, seed)) != SL_OK) {
		auth_why(why, why_cap, "%s: not a sluice secret key (one line: %s<base64url of 32 bytes>)", path,
		    AUTH_KEY_PREFIX_SECRET);
		goto out;
	}
	rc = auth_key_from_seed(seed, kp);
out:
	sodium_memzero(buf, sizeof buf);
	sodium_memzero(seed, sizeof seed);
	return rc;
}

int auth_pubkey_read(const char *path, uint8_t pk[AUTH_PK_BYTES], char *why, size_t why_cap)
{
	char buf[AUTH_KEY_FILE_BYTES_MAX + 1];
	size_t n = 0;
	int rc;

	if (!path || !pk)
		return SL_EINVAL;
	if ((rc = file_read(path, 0, buf, sizeof buf, &n, why, why_cap)) != SL_OK)
		return rc;
	if ((rc = auth_pubkey_parse(buf, n, pk)) != SL_OK)
		auth_why(why, why_cap, "%s: not a sluice public key (one line: %s<base64url of 32 bytes>)", path,
		    AUTH_KEY_PREFIX_PUBLIC);
	return rc;
}

int auth_sealkey_read(const char *path, uint8_t key[AUTH_SEALKEY_BYTES], char *why, size_t why_cap)
{
	char buf[130];
	size_t n = 0, bin = 0;
	FILE *f = path && path[0] ? fopen(path, "rb") : NULL;
	if (!f) {
		snprintf(why, why_cap, "%s", path && path[0] ? "auth.key_file cannot be read on this node"
		                                            : "auth.key_file is not set on this node");
		return SL_ECONFIG;
	}
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	if (n == AUTH_SEALKEY_BYTES) {
		memcpy(key, buf, n);
		sodium_memzero(buf, sizeof(buf));
		return SL_OK;
	}
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	int rc = sodium_hex2bin(key, AUTH_SEALKEY_BYTES, buf, n, NULL, &bin, NULL) == 0 && bin == AUTH_SEALKEY_BYTES
	             ? SL_OK
	             : SL_ECONFIG;
	sodium_memzero(buf, sizeof(buf));
	if (rc)
		snprintf(why, why_cap, "auth.key_file must hold 32 bytes (or 64 hex digits)");
	return rc;
}
