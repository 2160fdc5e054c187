/*
 * utf8.h: UTF-8 validation (RFC 3629: no overlong forms, no surrogates,
 * nothing above U+10FFFF), for every decoder that must refuse text that is
 * not UTF-8: HTTP paths and names, GraphQL documents, WebSocket text.
 */
#ifndef SLUICE_UTF8_H
#define SLUICE_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* 1 if s[0..n) is valid UTF-8, else 0. */
int utf8_valid(const uint8_t *s, size_t n);

#endif
