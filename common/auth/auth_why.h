/*
 * auth_why.h: the reason a refusal gives, for the auth library's modules
 * (internal): printf into why[0..cap) when the caller asked for one.
 */
#ifndef SLUICE_AUTH_WHY_H
#define SLUICE_AUTH_WHY_H

#include <stddef.h>

void auth_why(char *why, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
