/*
 * auth_perm.c: permission strings and topic pattern matching (see
 * auth_perm.h). Matching walks both names segment by segment without
 * copying or allocating, so checking a request costs O(topic length) per
 * permission.
 */
#include <stdio.h>
#include <string.h>

#include "auth_perm.h"
#include "auth_why.h"
#include "err.h"

static const struct {
	const char *name;
	const char *alias;
	int verb;
} verbs[] = {
	{"publish", "pub", AUTH_VERB_PUBLISH},  {"subscribe", "sub", AUTH_VERB_SUBSCRIBE},
	{"consume", NULL, AUTH_VERB_CONSUME},   {"admin", NULL, AUTH_VERB_ADMIN},
	{"cluster", NULL, AUTH_VERB_CLUSTER},
};

static int span_is(const char *s, size_t n, const char *word)
{
	return word && strlen(word) == n && memcmp(s, word, n) == 0;
}

int auth_verb_parse(const char *s, size_t n)
{
	for (size_t i = 0; s && i < sizeof verbs / sizeof verbs[0]; i++)
		if (span_is(s, n, verbs[i].name) || span_is(s, n, verbs[i].alias))
			return verbs[i].verb;
	return 0;
}

const char *auth_verb_name(int verb)
{
	for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
		if (verbs[i].verb == verb)
			return verbs[i].name;
	return "?";
}

static int literal_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

/* A pattern: segments that are "*", a final ">", or topic-name characters. */
static int pattern_check(const char *p, size_t n, char *why, size_t why_cap)
{
	size_t start = 0;

	if (n == 0 || n > AUTH_PATTERN_BYTES_MAX) {
		auth_why(why, why_cap, "a topic pattern is 1 to %d bytes", AUTH_PATTERN_BYTES_MAX);
		return SL_EINVAL;
	}
	for (size_t i = 0; i <= n; i++) {
		size_t len = i - start;
		const char *seg = p + start;
		if (i < n && p[i] != '.')
			continue;
		start = i + 1;
		if (len == 1 && (seg[0] == '*' || (seg[0] == '>' && i == n)))
			continue;
		for (size_t k = 0; k < len; k++) {
			if (literal_char(seg[k]))
				continue;
			if (seg[k] == '>')
				auth_why(why, why_cap, "'>' may only be the last segment of a pattern");
			else if (seg[k] == '*')
				auth_why(why, why_cap, "'*' must be a whole segment");
			else
				auth_why(why, why_cap, "a topic pattern holds only A-Z a-z 0-9 . _ - * >");
			return SL_EINVAL;
		}
	}
	return SL_OK;
}

int auth_perm_parse(const char *s, size_t n, struct auth_perm *out, char *why, size_t why_cap)
{
	const char *colon = s ? memchr(s, ':', n) : NULL;
	size_t vlen = colon ? (size_t)(colon - s) : n;
	const char *pat = colon ? colon + 1 : ">";
	size_t plen = colon ? n - vlen - 1 : 1;
	int verb, rc;

	if (!s || !out) {
		auth_why(why, why_cap, "no permission given");
		return SL_EINVAL;
	}
	if (!(verb = auth_verb_parse(s, vlen))) {
		auth_why(why, why_cap, "unknown verb: use publish, subscribe, consume, admin or cluster");
		return SL_EINVAL;
	}
	if (!colon && verb != AUTH_VERB_ADMIN && verb != AUTH_VERB_CLUSTER) {
		auth_why(why, why_cap, "%s needs a topic pattern (%s:<pattern>)", auth_verb_name(verb),
		    auth_verb_name(verb));
		return SL_EINVAL;
	}
	if ((rc = pattern_check(pat, plen, why, why_cap)) != SL_OK)
		return rc;
	out->verb = verb;
	out->len = plen;
	memcpy(out->pattern, pat, plen);
	out->pattern[plen] = 0;
	return SL_OK;
}

int auth_perm_format(const struct auth_perm *p, char *out, size_t cap)
{
	int k;

	if (!p || !out)
		return SL_EINVAL;
	k = snprintf(out, cap, "%s:%s", auth_verb_name(p->verb), p->pattern);
	return k < 0 || (size_t)k >= cap ? SL_ERANGE : SL_OK;
}

/* Walks the dot-separated segments of a name. */
struct seg_cursor {
	const char *s;
	size_t n, pos;
	int done;
};

/* The next segment into *seg and *len; 0 once every segment was handed out. */
static int seg_next(struct seg_cursor *c, const char **seg, size_t *len)
{
	const char *dot;

	if (c->done)
		return 0;
	*seg = c->s + c->pos;
	dot = memchr(*seg, '.', c->n - c->pos);
	if (dot) {
		*len = (size_t)(dot - *seg);
		c->pos += *len + 1;
	} else {
		*len = c->n - c->pos;
		c->done = 1;
	}
	return 1;
}

int auth_pattern_match(const char *pattern, size_t plen, const char *topic, size_t tlen)
{
	struct seg_cursor pc = {pattern, plen, 0, 0}, tc = {topic, tlen, 0, 0};
	const char *ps, *ts;
	size_t psl, tsl;

	if (!pattern || !topic || plen == 0 || tlen == 0)
		return 0;
	while (seg_next(&pc, &ps, &psl)) {
		if (psl == 1 && ps[0] == '>')
			return seg_next(&tc, &ts, &tsl); /* one or more segments left */
		if (!seg_next(&tc, &ts, &tsl))
			return 0;
		if (psl == 1 && ps[0] == '*')
			continue;
		if (psl != tsl || memcmp(ps, ts, psl) != 0)
			return 0;
	}
	return tc.done; /* a longer topic does not match */
}

int auth_perm_match(const struct auth_perm *p, int verb, const char *topic, size_t tlen)
{
	return p && p->verb == verb && auth_pattern_match(p->pattern, p->len, topic, tlen);
}

int auth_perm_allows(const struct auth_perm *perms, size_t n, int verb, const char *topic, size_t tlen)
{
	for (size_t i = 0; perms && i < n; i++)
		if (auth_perm_match(&perms[i], verb, topic, tlen))
			return 1;
	return 0;
}
