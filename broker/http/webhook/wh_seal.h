/*
 * wh_seal.h: webhook secrets at rest (docs/security.md). With [auth]
 * key_file set, a node seals every webhook secret before it goes into the
 * log: "sealed:v1:" and the base64url (no padding) of a random 24-byte
 * nonce followed by the libsodium secretbox (XSalsa20-Poly1305) of the
 * secret under the 32-byte key. The log and every node's store then hold
 * only sealed secrets; the deliverer unseals them in memory. Pure.
 */
#ifndef SLUICE_WH_SEAL_H
#define SLUICE_WH_SEAL_H

#include <stddef.h>
#include <stdint.h>

#define WH_SEALED_PREFIX "sealed:v1:"
#define WH_SEAL_KEY_BYTES 32

/* 1 if s is a sealed secret (by its prefix; not whether it opens). */
int wh_is_sealed(const char *s);

/* Seal secret into out (NUL-terminated). SL_ERANGE if cap is too small
 * (WH_SECRET_TEXT_MAX + 1 is enough for a secret of up to 100 bytes). */
int wh_seal(const uint8_t key[WH_SEAL_KEY_BYTES], const char *secret, char *out, size_t cap);

/* Open sealed into out (NUL-terminated). SL_EINVAL if it is not sealed
 * text or does not open with key (another key, or tampered). */
int wh_unseal(const uint8_t key[WH_SEAL_KEY_BYTES], const char *sealed, char *out, size_t cap);

/* A webhook settings JSON (or a settings patch) with every secret sealed:
 * the strings of "secrets" and "rotate_secret" that are not sealed yet.
 * *out is malloc'd; SL_EINVAL if json is not an object, SL_ENOMEM. */
int wh_seal_json(const uint8_t key[WH_SEAL_KEY_BYTES], const char *json, size_t len, char **out);

#endif
