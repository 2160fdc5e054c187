/*
 * auth_perm.h: permissions, "verb:pattern" strings such as "sub:orders.*"
 * or "publish:metrics.>". They are stored per principal and may narrow a
 * token (its "perms" claim, auth_token.h); a request is allowed when some
 * permission matches its verb and topic.
 *
 * Verbs (either spelling is read; the long one is written):
 *   publish   | pub   publish to matching topics
 *   subscribe | sub   subscribe to, fetch from and replay matching topics
 *   consume           use durable consumers on matching topics
 *   admin             create, change and delete matching topics, consumers
 *                     and webhooks
 *   cluster           cluster operations (membership, leadership); its
 *                     pattern is ">" by convention
 * Verbs are independent: admin does not imply publish, and so on.
 *
 * Patterns are matched against the topic's dot-separated segments, as
 * NATS subjects are:
 *   literal      "orders.eu"  matches that topic only
 *   "*"          one whole segment, whatever it holds: "orders.*" matches
 *                "orders.eu" but not "orders" nor "orders.eu.paris"
 *   ">"          last segment only: one or more trailing segments:
 *                "orders.>" matches "orders.eu" and "orders.eu.paris" but
 *                not "orders"; ">" alone matches every topic
 * A wildcard is a whole segment ("ord*" and "a.>.b" are refused). Literal
 * segments use the topic-name characters [A-Za-z0-9_-]; a pattern is at
 * most AUTH_PATTERN_BYTES_MAX bytes, the longest topic name. Topic names may
 * hold empty segments ("a..b"); "*" matches an empty segment too, since a
 * segment is only what lies between two dots.
 * "admin" and "cluster" may be written without a pattern, meaning ">";
 * the topic verbs must name their topics.
 */
#ifndef SLUICE_AUTH_PERM_H
#define SLUICE_AUTH_PERM_H

#include <stddef.h>

#define AUTH_PATTERN_BYTES_MAX 249 /* STORE_TOPIC_NAME_MAX */
#define AUTH_PERM_CHARS_MAX (9 + 1 + AUTH_PATTERN_BYTES_MAX + 1) /* "subscribe:" pattern NUL */

enum auth_verb {
	AUTH_VERB_PUBLISH = 1,
	AUTH_VERB_SUBSCRIBE = 2,
	AUTH_VERB_CONSUME = 3,
	AUTH_VERB_ADMIN = 4,
	AUTH_VERB_CLUSTER = 5,
};

struct auth_perm {
	int verb; /* enum auth_verb */
	size_t len;
	char pattern[AUTH_PATTERN_BYTES_MAX + 1]; /* NUL-terminated */
};

/* Parse s[0..n) ("sub:orders.*") into *out. SL_EINVAL with a reason in why
 * (may be NULL) for an unknown verb, a missing or bad pattern. */
int auth_perm_parse(const char *s, size_t n, struct auth_perm *out, char *why, size_t why_cap);

/* The canonical "verb:pattern" (long verb) into out, NUL-terminated;
 * AUTH_PERM_CHARS_MAX bytes are always enough. SL_ERANGE if cap is not. */
int auth_perm_format(const struct auth_perm *p, char *out, size_t cap);

/* The verb named s[0..n) (long or short spelling), or 0. */
int auth_verb_parse(const char *s, size_t n);

/* The long name of a verb ("publish"), or "?" for something else. */
const char *auth_verb_name(int verb);

/* 1 if pattern[0..plen) matches topic[0..tlen) (rules above), else 0.
 * The pattern is assumed valid (as auth_perm_parse leaves it). */
int auth_pattern_match(const char *pattern, size_t plen, const char *topic, size_t tlen);

/* 1 if p allows verb on topic[0..tlen). */
int auth_perm_match(const struct auth_perm *p, int verb, const char *topic, size_t tlen);

/* 1 if any of perms[0..n) allows verb on topic[0..tlen). */
int auth_perm_allows(const struct auth_perm *perms, size_t n, int verb, const char *topic, size_t tlen);

#endif
