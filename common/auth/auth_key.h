/*
 * auth_key.h: Ed25519 key pairs and the text files that hold them. The
 * same keys sign tokens (auth_token.h, the cluster's token key) and
 * native-protocol challenges (auth_challenge.h, a client's own key).
 *
 * File format (ours; one line, an optional final newline, nothing else):
 *
 *   secret key:  "sluice-ed25519-secret:" base64url(32-byte seed)
 *   public key:  "sluice-ed25519:" base64url(32-byte public key)
 *
 * base64url is RFC 4648 section 5 without padding, decoded strictly
 * (auth_b64.h): 43 characters for 32 bytes. The secret file holds the seed
 * only (RFC 8032's private key); the public key is derived from it, so the
 * two cannot disagree. The prefix names the algorithm, so a key of another
 * kind is refused rather than misread, and the public form is also what
 * goes into configuration and the replicated principal records.
 *
 * Secret key files are written with mode 0600 and refused on reading, as
 * ssh refuses them, when group or others may read or write them or when
 * they belong to another user than us or root. Key files are small
 * (AUTH_KEY_FILE_BYTES_MAX); larger ones are refused before reading.
 * Secret bytes on the stack are wiped (sodium_memzero) after use.
 */
#ifndef SLUICE_AUTH_KEY_H
#define SLUICE_AUTH_KEY_H

#include <stddef.h>
#include <stdint.h>

#include "auth_paseto.h"

#define AUTH_SEED_BYTES 32
#define AUTH_KEY_PREFIX_SECRET "sluice-ed25519-secret:"
#define AUTH_KEY_PREFIX_PUBLIC "sluice-ed25519:"
#define AUTH_PUBKEY_CHARS (15 + 43 + 1) /* prefix, base64url of 32 bytes, NUL */
#define AUTH_SECKEY_CHARS (22 + 43 + 1)
#define AUTH_KEY_FILE_BYTES_MAX 256

struct auth_keypair {
	uint8_t pk[AUTH_PK_BYTES];
	uint8_t sk[AUTH_SK_BYTES]; /* libsodium's form: seed || pk */
};

/* flags of auth_key_write and auth_pubkey_write */
#define AUTH_KEY_EXCL 1 /* fail with SL_EIO (errno EEXIST in why) if the file exists */

/* A node's sealing key ([auth] key_file): 32 bytes, raw or as 64 hex
 * digits (with an optional newline). SL_ECONFIG with why otherwise. */
#define AUTH_SEALKEY_BYTES 32
int auth_sealkey_read(const char *path, uint8_t key[AUTH_SEALKEY_BYTES], char *why, size_t why_cap);

/* A fresh key pair from libsodium's random generator. */
int auth_key_generate(struct auth_keypair *kp);

/* The key pair of a 32-byte seed (deterministic). */
int auth_key_from_seed(const uint8_t seed[AUTH_SEED_BYTES], struct auth_keypair *kp);

/* Write kp's secret key file at path, mode 0600 (an existing file is
 * truncated and set to 0600 first unless AUTH_KEY_EXCL), and fsync it.
 * SL_EIO / SL_ENOTFOUND ... from errno, with the reason in why (may be NULL). */
int auth_key_write(const char *path, const struct auth_keypair *kp, int flags, char *why, size_t why_cap);

/* Read a secret key file into *kp. SL_ECONFIG with why for a file that
 * group or others may access or that another user owns, or that is not a
 * regular file; SL_EMALFORMED for a bad content or size; errno-based codes
 * (SL_ENOTFOUND, SL_EIO) for the file system. */
int auth_key_read(const char *path, struct auth_keypair *kp, char *why, size_t why_cap);

/* Public key text: "sluice-ed25519:" + base64url, NUL-terminated in out
 * (AUTH_PUBKEY_CHARS bytes). SL_ERANGE if cap is smaller. */
int auth_pubkey_format(const uint8_t pk[AUTH_PK_BYTES], char *out, size_t cap);

/* Parse public key text s[0..len) (a trailing newline is allowed) into pk.
 * SL_EMALFORMED for anything else, a secret key included. */
int auth_pubkey_parse(const char *s, size_t len, uint8_t pk[AUTH_PK_BYTES]);

/* Public key files: the text above and a newline, mode 0644; reading
 * checks nothing of the mode (a public key is public). */
int auth_pubkey_write(const char *path, const uint8_t pk[AUTH_PK_BYTES], int flags, char *why, size_t why_cap);
int auth_pubkey_read(const char *path, uint8_t pk[AUTH_PK_BYTES], char *why, size_t why_cap);

#endif
