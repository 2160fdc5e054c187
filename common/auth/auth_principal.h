/*
 * auth_principal.h: principal names, the "who" of authentication: the `sub`
 * claim of a token, the name a native client signs its challenge for, the
 * key that permissions are stored under. 1..AUTH_PRINCIPAL_BYTES_MAX bytes
 * of [A-Za-z0-9._-]: no spaces, separators or non-ASCII, so a name reads the
 * same in a log line, a URL, a JSON string and a config file.
 */
#ifndef SLUICE_AUTH_PRINCIPAL_H
#define SLUICE_AUTH_PRINCIPAL_H

#include <stddef.h>

#define AUTH_PRINCIPAL_BYTES_MAX 64

/* 1 if s[0..n) is a valid principal name, 0 if not (NULL included). */
int auth_principal_ok(const char *s, size_t n);

/* 1 if the topics name creates count against [limits]
 * topics_per_principal_max; 0 for the built-in admin and node, "-" (what
 * requests carry with [auth] off) and "" (made by the system). */
int auth_principal_limited(const char *name);

#endif
