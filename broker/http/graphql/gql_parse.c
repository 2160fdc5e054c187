/*
 * gql_parse.c: a parser of the GraphQL executable-document subset the
 * broker serves (GraphQL spec, October 2021, section 2): operations (query,
 * mutation, subscription, named or anonymous, the `{...}` shorthand),
 * variable definitions with types and defaults, arguments with every kind of
 * literal (strings with escapes, block strings, ints, floats, booleans, null,
 * enums, lists, objects) and variables, selection sets and aliases.
 * Fragments, directives and type-system definitions are refused with an
 * error naming them.
 *
 * Two passes over the source: the first lexes it to check its bytes and count
 * its tokens (against GQL_TOKENS_MAX) without allocating; the second parses
 * into one arena sized from that count, since every tree node comes from a
 * distinct token and every decoded string is no longer than its source.
 * Recursion is bounded by GQL_DEPTH_MAX (selection sets, list and object
 * literals, list types), so hostile nesting cannot exhaust the stack.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gql.h"
#include "utf8.h"

enum tok_type { T_EOF = 0, T_PUNCT, T_NAME, T_INT, T_FLOAT, T_STRING, T_BLOCK };

struct tok {
	enum tok_type type;
	char c;                   /* T_PUNCT: the character, '.' for "..." */
	size_t start, len;        /* raw bytes (strings: without the quotes) */
	struct gql_loc loc;
};

struct lex {
	const char *s;
	size_t n, pos;
	uint32_t line, col;
};

struct parser {
	struct lex lx;
	struct tok t;             /* current token */
	uint32_t ntok;
	char *arena;
	size_t arena_len, arena_used;
	struct gql_error *err;
	int failed;
};

static void fail_at(struct gql_error *err, const struct gql_loc *loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail_at(struct gql_error *err, const struct gql_loc *loc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	err->loc = *loc;
}

/* ---------- lexer ---------- */

static void lx_adv(struct lex *l, size_t k)
{
	for (size_t i = 0; i < k && l->pos < l->n; i++) {
		unsigned char b = (unsigned char)l->s[l->pos++];
		if (b == '\n' || (b == '\r' && !(l->pos < l->n && l->s[l->pos] == '\n'))) {
			l->line++;
			l->col = 1;
		} else if (b != '\r' && (b & 0xC0) != 0x80) {
			l->col++;
		}
	}
}

static int is_name_start(int c)
{
	return c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static int is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static int lx_peek(const struct lex *l, size_t k)
{
	return l->pos + k < l->n ? (unsigned char)l->s[l->pos + k] : -1;
}

/* Whitespace, line terminators, commas, comments and a byte order mark. */
static void lx_skip(struct lex *l)
{
	for (;;) {
		int c = lx_peek(l, 0);
		if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ',') {
			lx_adv(l, 1);
		} else if (c == 0xEF && lx_peek(l, 1) == 0xBB && lx_peek(l, 2) == 0xBF) {
			l->pos += 3;
		} else if (c == '#') {
			while (l->pos < l->n && l->s[l->pos] != '\n' && l->s[l->pos] != '\r')
				lx_adv(l, 1);
		} else {
			return;
		}
	}
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The code unit of \uXXXX at s (after the backslash-u), or -1. */
static long hex4(const char *s)
{
	long v = 0;
	for (int i = 0; i < 4; i++) {
		int h = hexval((unsigned char)s[i]);
		if (h < 0)
			return -1;
		v = v * 16 + h;
	}
	return v;
}

/* Decode the escapes of a regular string's raw bytes into out (at least n
 * bytes). Bytes written, or -1 on a bad escape (*bad: its offset). */
static long str_decode(const char *s, size_t n, char *out, size_t *bad)
{
	size_t i = 0, o = 0;

	while (i < n) {
		char c = s[i];
		if (c != '\\') {
			if (out)
				out[o] = c;
			o++;
			i++;
			continue;
		}
		*bad = i;
		if (i + 1 >= n)
			return -1;
		const char *e = strchr("\"\\/bfnrt", s[i + 1]);
		if (e && s[i + 1]) {
			static const char to[] = "\"\\/\b\f\n\r\t";
			if (out)
				out[o] = to[e - "\"\\/bfnrt"];
			o++;
			i += 2;
			continue;
		}
		if (s[i + 1] != 'u' || i + 6 > n)
			return -1;
		long cp = hex4(s + i + 2);
		i += 6;
		if (cp < 0 || (cp >= 0xDC00 && cp <= 0xDFFF))
			return -1;
		if (cp >= 0xD800 && cp <= 0xDBFF) {
			long lo = (i + 6 <= n && s[i] == '\\' && s[i + 1] == 'u') ? hex4(s + i + 2) : -1;
			if (lo < 0xDC00 || lo > 0xDFFF)
				return -1;
			cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
			i += 6;
		}
		/* UTF-8: never longer than the escape it came from */
		char u[4];
		size_t k;
		if (cp < 0x80) {
			u[0] = (char)cp;
			k = 1;
		} else if (cp < 0x800) {
			u[0] = (char)(0xC0 | cp >> 6);
			u[1] = (char)(0x80 | (cp & 63));
			k = 2;
		} else if (cp < 0x10000) {
			u[0] = (char)(0xE0 | cp >> 12);
			u[1] = (char)(0x80 | ((cp >> 6) & 63));
			u[2] = (char)(0x80 | (cp & 63));
			k = 3;
		} else {
			u[0] = (char)(0xF0 | cp >> 18);
			u[1] = (char)(0x80 | ((cp >> 12) & 63));
			u[2] = (char)(0x80 | ((cp >> 6) & 63));
			u[3] = (char)(0x80 | (cp & 63));
			k = 4;
		}
		if (out)
			memcpy(out + o, u, k);
		o += k;
	}
	return (long)o;
}

/* A regular string: raw bytes up to the closing quote, escapes checked. */
static int lx_string(struct lex *l, struct tok *t, struct gql_error *err)
{
	size_t bad = 0;

	lx_adv(l, 1);
	t->start = l->pos;
	for (;;) {
		int c = lx_peek(l, 0);
		if (c < 0 || c == '\n' || c == '\r') {
			fail_at(err, &t->loc, "Syntax Error: Unterminated string.");
			return -1;
		}
		if (c < 0x20 && c != '\t') {
			struct gql_loc here = {l->line, l->col};
			fail_at(err, &here, "Syntax Error: Invalid character within String: 0x%02x.", c);
			return -1;
		}
		if (c == '"')
			break;
		lx_adv(l, c == '\\' && lx_peek(l, 1) == '"' ? 2 : c == '\\' && lx_peek(l, 1) == '\\' ? 2 : 1);
	}
	t->len = l->pos - t->start;
	lx_adv(l, 1);
	t->type = T_STRING;
	if (str_decode(l->s + t->start, t->len, NULL, &bad) < 0) {
		fail_at(err, &t->loc, "Syntax Error: Invalid escape sequence in string (byte %zu).", bad + 1);
		return -1;
	}
	return 0;
}

static int lx_block(struct lex *l, struct tok *t, struct gql_error *err)
{
	lx_adv(l, 3);
	t->start = l->pos;
	for (;;) {
		int c = lx_peek(l, 0);
		if (c < 0) {
			fail_at(err, &t->loc, "Syntax Error: Unterminated block string.");
			return -1;
		}
		if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') {
			struct gql_loc here = {l->line, l->col};
			fail_at(err, &here, "Syntax Error: Invalid character within String: 0x%02x.", c);
			return -1;
		}
		if (c == '"' && lx_peek(l, 1) == '"' && lx_peek(l, 2) == '"')
			break;
		if (c == '\\' && lx_peek(l, 1) == '"' && lx_peek(l, 2) == '"' && lx_peek(l, 3) == '"')
			lx_adv(l, 4);
		else
			lx_adv(l, 1);
	}
	t->len = l->pos - t->start;
	lx_adv(l, 3);
	t->type = T_BLOCK;
	return 0;
}

static int lx_number(struct lex *l, struct tok *t, struct gql_error *err)
{
	size_t i = l->pos;
	int is_float = 0;

	if (l->s[i] == '-')
		i++;
	if (i >= l->n || !is_digit((unsigned char)l->s[i]))
		goto bad;
	if (l->s[i] == '0' && i + 1 < l->n && is_digit((unsigned char)l->s[i + 1]))
		goto bad;
	while (i < l->n && is_digit((unsigned char)l->s[i]))
		i++;
	if (i < l->n && l->s[i] == '.') {
		is_float = 1;
		if (++i >= l->n || !is_digit((unsigned char)l->s[i]))
			goto bad;
		while (i < l->n && is_digit((unsigned char)l->s[i]))
			i++;
	}
	if (i < l->n && (l->s[i] == 'e' || l->s[i] == 'E')) {
		is_float = 1;
		if (++i < l->n && (l->s[i] == '+' || l->s[i] == '-'))
			i++;
		if (i >= l->n || !is_digit((unsigned char)l->s[i]))
			goto bad;
		while (i < l->n && is_digit((unsigned char)l->s[i]))
			i++;
	}
	if (i < l->n && (l->s[i] == '.' || is_name_start((unsigned char)l->s[i])))
		goto bad;
	t->type = is_float ? T_FLOAT : T_INT;
	t->start = l->pos;
	t->len = i - l->pos;
	lx_adv(l, t->len);
	return 0;
bad:
	fail_at(err, &t->loc, "Syntax Error: Invalid number.");
	return -1;
}

/* The next token into *t; -1 with *err on a lexical error. */
static int lx_next(struct lex *l, struct tok *t, struct gql_error *err)
{
	int c;

	lx_skip(l);
	memset(t, 0, sizeof(*t));
	t->loc.line = l->line;
	t->loc.column = l->col;
	t->start = l->pos;
	c = lx_peek(l, 0);
	if (c < 0)
		return 0;
	if (c == '.' && lx_peek(l, 1) == '.' && lx_peek(l, 2) == '.') {
		t->type = T_PUNCT;
		t->c = '.';
		t->len = 3;
		lx_adv(l, 3);
		return 0;
	}
	if (c && strchr("!$&()|:=@[]{}", c)) {
		t->type = T_PUNCT;
		t->c = (char)c;
		t->len = 1;
		lx_adv(l, 1);
		return 0;
	}
	if (is_name_start(c)) {
		size_t i = l->pos + 1;
		while (i < l->n && (is_name_start((unsigned char)l->s[i]) || is_digit((unsigned char)l->s[i])))
			i++;
		t->type = T_NAME;
		t->len = i - l->pos;
		lx_adv(l, t->len);
		return 0;
	}
	if (c == '-' || is_digit(c))
		return lx_number(l, t, err);
	if (c == '"')
		return lx_peek(l, 1) == '"' && lx_peek(l, 2) == '"' ? lx_block(l, t, err) : lx_string(l, t, err);
	if (c >= 0x20 && c < 0x7f)
		fail_at(err, &t->loc, "Syntax Error: Unexpected character \"%c\".", c);
	else
		fail_at(err, &t->loc, "Syntax Error: Invalid character 0x%02x.", c);
	return -1;
}

/* ---------- arena ---------- */

#define ALIGN8(x) (((x) + 7) & ~(size_t)7)

union node_any {
	struct gql_value v;
	struct gql_arg a;
	struct gql_field f;
	struct gql_type t;
	struct gql_vardef d;
	struct gql_op o;
};

static void *p_alloc(struct parser *p, size_t n)
{
	size_t at = ALIGN8(p->arena_used);

	/* sized from the token count: running out is a bug of this file */
	if (at + n > p->arena_len)
		abort();
	p->arena_used = at + n;
	memset(p->arena + at, 0, n);
	return p->arena + at;
}

static char *p_strdup(struct parser *p, const char *s, size_t n)
{
	char *o;

	if (p->arena_used + n + 1 > p->arena_len)
		abort();
	o = p->arena + p->arena_used;
	memcpy(o, s, n);
	o[n] = 0;
	p->arena_used += n + 1;
	return o;
}

/* ---------- parser ---------- */

static void p_fail(struct parser *p, const struct gql_loc *loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void p_fail(struct parser *p, const struct gql_loc *loc, const char *fmt, ...)
{
	va_list ap;

	if (p->failed)
		return;
	p->failed = 1;
	va_start(ap, fmt);
	vsnprintf(p->err->message, sizeof(p->err->message), fmt, ap);
	va_end(ap);
	p->err->loc = *loc;
}

static void p_next(struct parser *p)
{
	if (!p->failed && lx_next(&p->lx, &p->t, p->err) < 0)
		p->failed = 1;
}

/* A description of the current token for "found ..." messages. */
static const char *tok_desc(const struct parser *p, char *buf, size_t cap)
{
	const struct tok *t = &p->t;

	switch (t->type) {
	case T_EOF:
		return "<EOF>";
	case T_PUNCT:
		snprintf(buf, cap, "\"%s\"", t->c == '.' ? "..." : (char[]){t->c, 0});
		return buf;
	case T_NAME:
		snprintf(buf, cap, "Name \"%.*s\"", (int)(t->len > 40 ? 40 : t->len), p->lx.s + t->start);
		return buf;
	case T_INT:
		return "Int";
	case T_FLOAT:
		return "Float";
	default:
		return "String";
	}
}

static int at_punct(const struct parser *p, char c)
{
	return p->t.type == T_PUNCT && p->t.c == c;
}

static int at_name(const struct parser *p, const char *kw)
{
	return p->t.type == T_NAME && p->t.len == strlen(kw) && memcmp(p->lx.s + p->t.start, kw, p->t.len) == 0;
}

static void expect_punct(struct parser *p, char c)
{
	char buf[64];

	if (p->failed)
		return;
	if (!at_punct(p, c)) {
		p_fail(p, &p->t.loc, "Syntax Error: Expected \"%c\", found %s.", c, tok_desc(p, buf, sizeof(buf)));
		return;
	}
	p_next(p);
}

static const char *expect_name(struct parser *p)
{
	char buf[64];
	const char *s;

	if (p->failed)
		return NULL;
	if (p->t.type != T_NAME) {
		p_fail(p, &p->t.loc, "Syntax Error: Expected Name, found %s.", tok_desc(p, buf, sizeof(buf)));
		return NULL;
	}
	s = p_strdup(p, p->lx.s + p->t.start, p->t.len);
	p_next(p);
	return s;
}

/* Directives and fragments are outside the subset: say so where they start. */
static int refused(struct parser *p)
{
	if (at_punct(p, '@'))
		p_fail(p, &p->t.loc, "directives are not supported");
	else if (at_punct(p, '.'))
		p_fail(p, &p->t.loc, "fragments are not supported");
	return p->failed;
}

/* Block string value (spec 2.9.4): `\"""` unescaped, common indentation
 * and leading and trailing blank lines removed. In place: never longer. */
static size_t block_value(char *s, size_t n)
{
	size_t i, w = 0, line = 0, common = SIZE_MAX, first = SIZE_MAX, last = 0;

	for (i = 0; i < n; i++) {
		if (s[i] == '\\' && i + 3 < n + 0 && s[i + 1] == '"' && s[i + 2] == '"' && s[i + 3] == '"') {
			memcpy(s + w, "\"\"\"", 3);
			w += 3;
			i += 3;
		} else {
			s[w++] = s[i];
		}
	}
	n = w;
	/* pass 1: common indent, first and last non-blank lines */
	for (i = 0; i <= n; line++) {
		size_t st = i, ind = 0;
		while (i < n && s[i] != '\n' && s[i] != '\r')
			i++;
		while (st + ind < i && (s[st + ind] == ' ' || s[st + ind] == '\t'))
			ind++;
		if (st + ind < i) {
			if (line > 0 && ind < common)
				common = ind;
			if (first == SIZE_MAX)
				first = line;
			last = line;
		}
		i += (i < n && s[i] == '\r' && i + 1 < n && s[i + 1] == '\n') ? 2 : 1;
	}
	if (first == SIZE_MAX)
		return 0;
	/* pass 2: the kept lines, joined by \n */
	w = 0;
	line = 0;
	for (i = 0; i <= n; line++) {
		size_t st = i, drop;
		while (i < n && s[i] != '\n' && s[i] != '\r')
			i++;
		if (line >= first && line <= last) {
			drop = line > 0 && common != SIZE_MAX ? (common < i - st ? common : i - st) : 0;
			if (line > first)
				s[w++] = '\n';
			memmove(s + w, s + st + drop, i - st - drop);
			w += i - st - drop;
		}
		i += (i < n && s[i] == '\r' && i + 1 < n && s[i + 1] == '\n') ? 2 : 1;
	}
	return w;
}

static struct gql_value *parse_value(struct parser *p, int is_const, unsigned depth);

static struct gql_value *parse_compound(struct parser *p, struct gql_value *v, int is_const, unsigned depth)
{
	char close = v->kind == GV_LIST ? ']' : '}';
	struct gql_value **tail = &v->items;

	if (depth > GQL_DEPTH_MAX) {
		p_fail(p, &v->loc, "a value is nested deeper than %d", GQL_DEPTH_MAX);
		return NULL;
	}
	p_next(p);
	while (!p->failed && !at_punct(p, close)) {
		struct gql_value *it;
		const char *key = NULL;
		struct gql_loc kl = p->t.loc;
		if (v->kind == GV_OBJECT) {
			if (v->n >= GQL_ARGS_MAX) {
				p_fail(p, &kl, "an object value has more than %d fields", GQL_ARGS_MAX);
				return NULL;
			}
			key = expect_name(p);
			expect_punct(p, ':');
		}
		if (!(it = parse_value(p, is_const, depth + 1)))
			return NULL;
		it->key = key;
		it->key_loc = kl;
		*tail = it;
		tail = &it->next;
		v->n++;
	}
	p_next(p);
	return p->failed ? NULL : v;
}

static struct gql_value *parse_value(struct parser *p, int is_const, unsigned depth)
{
	struct gql_value *v;
	char buf[64];
	size_t bad;

	if (p->failed)
		return NULL;
	v = p_alloc(p, sizeof(*v));
	v->loc = p->t.loc;
	switch (p->t.type) {
	case T_PUNCT:
		if (p->t.c == '[' || p->t.c == '{') {
			v->kind = p->t.c == '[' ? GV_LIST : GV_OBJECT;
			return parse_compound(p, v, is_const, depth);
		}
		if (p->t.c == '$' && !is_const) {
			p_next(p);
			v->kind = GV_VAR;
			v->s = expect_name(p);
			return p->failed ? NULL : v;
		}
		break;
	case T_INT:
	case T_FLOAT:
		v->kind = p->t.type == T_INT ? GV_INT : GV_FLOAT;
		v->s = p_strdup(p, p->lx.s + p->t.start, p->t.len);
		v->len = p->t.len;
		p_next(p);
		return p->failed ? NULL : v;
	case T_STRING:
	case T_BLOCK: {
		char *o = p_strdup(p, p->lx.s + p->t.start, p->t.len);
		v->kind = GV_STRING;
		if (p->t.type == T_BLOCK)
			v->len = block_value(o, p->t.len);
		else
			v->len = (size_t)str_decode(p->lx.s + p->t.start, p->t.len, o, &bad); /* checked by the lexer */
		o[v->len] = 0;
		v->s = o;
		p_next(p);
		return p->failed ? NULL : v;
	}
	case T_NAME:
		v->s = expect_name(p);
		v->len = strlen(v->s);
		if (strcmp(v->s, "true") == 0 || strcmp(v->s, "false") == 0) {
			v->kind = GV_BOOL;
			v->b = v->s[0] == 't';
		} else {
			v->kind = strcmp(v->s, "null") == 0 ? GV_NULL : GV_ENUM;
		}
		return p->failed ? NULL : v;
	default:
		break;
	}
	if (at_punct(p, '$'))
		p_fail(p, &p->t.loc, "Syntax Error: Unexpected variable in a constant value.");
	else
		p_fail(p, &p->t.loc, "Syntax Error: Unexpected %s.", tok_desc(p, buf, sizeof(buf)));
	return NULL;
}

static struct gql_arg *parse_args(struct parser *p, uint32_t *nargs, const char *field)
{
	struct gql_arg *head = NULL, **tail = &head;

	p_next(p); /* ( */
	if (at_punct(p, ')')) {
		char buf[64];
		p_fail(p, &p->t.loc, "Syntax Error: Expected Name, found %s.", tok_desc(p, buf, sizeof(buf)));
	}
	while (!p->failed && !at_punct(p, ')')) {
		struct gql_arg *a;
		if (*nargs >= GQL_ARGS_MAX) {
			p_fail(p, &p->t.loc, "field \"%s\" has more than %d arguments", field, GQL_ARGS_MAX);
			return NULL;
		}
		a = p_alloc(p, sizeof(*a));
		a->loc = p->t.loc;
		a->name = expect_name(p);
		expect_punct(p, ':');
		a->value = parse_value(p, 0, 1);
		*tail = a;
		tail = &a->next;
		(*nargs)++;
	}
	p_next(p);
	return head;
}

static struct gql_field *parse_selection_set(struct parser *p, uint32_t *nsel, unsigned depth);

static struct gql_field *parse_field(struct parser *p, unsigned depth)
{
	struct gql_field *f = p_alloc(p, sizeof(*f));

	f->loc = p->t.loc;
	f->name = f->alias = expect_name(p);
	if (at_punct(p, ':')) {
		p_next(p);
		f->name = expect_name(p);
	}
	if (!p->failed && at_punct(p, '('))
		f->args = parse_args(p, &f->nargs, f->name);
	if (!p->failed && refused(p))
		return NULL;
	if (!p->failed && at_punct(p, '{'))
		f->sel = parse_selection_set(p, &f->nsel, depth + 1);
	return p->failed ? NULL : f;
}

static struct gql_field *parse_selection_set(struct parser *p, uint32_t *nsel, unsigned depth)
{
	struct gql_field *head = NULL, **tail = &head;
	struct gql_loc open = p->t.loc;

	if (depth > GQL_DEPTH_MAX) {
		p_fail(p, &open, "selections are nested deeper than %d", GQL_DEPTH_MAX);
		return NULL;
	}
	expect_punct(p, '{');
	if (!p->failed && at_punct(p, '}')) {
		p_fail(p, &p->t.loc, "Syntax Error: Expected Name, found \"}\".");
		return NULL;
	}
	while (!p->failed && !at_punct(p, '}')) {
		struct gql_field *f;
		if (refused(p))
			return NULL;
		if (*nsel >= GQL_WIDTH_MAX) {
			p_fail(p, &p->t.loc, "a selection set has more than %d fields", GQL_WIDTH_MAX);
			return NULL;
		}
		if (!(f = parse_field(p, depth)))
			return NULL;
		*tail = f;
		tail = &f->next;
		(*nsel)++;
	}
	expect_punct(p, '}');
	return p->failed ? NULL : head;
}

static struct gql_type *parse_type(struct parser *p, unsigned depth)
{
	struct gql_type *t;

	if (p->failed)
		return NULL;
	t = p_alloc(p, sizeof(*t));
	t->loc = p->t.loc;
	if (depth > GQL_DEPTH_MAX) {
		p_fail(p, &t->loc, "a type is nested deeper than %d", GQL_DEPTH_MAX);
		return NULL;
	}
	if (at_punct(p, '[')) {
		p_next(p);
		t->of = parse_type(p, depth + 1);
		expect_punct(p, ']');
	} else {
		t->name = expect_name(p);
	}
	if (!p->failed && at_punct(p, '!')) {
		t->nonnull = 1;
		p_next(p);
	}
	return p->failed ? NULL : t;
}

static struct gql_vardef *parse_vardefs(struct parser *p, uint32_t *nvars)
{
	struct gql_vardef *head = NULL, **tail = &head;

	p_next(p); /* ( */
	if (at_punct(p, ')')) {
		char buf[64];
		p_fail(p, &p->t.loc, "Syntax Error: Expected \"$\", found %s.", tok_desc(p, buf, sizeof(buf)));
	}
	while (!p->failed && !at_punct(p, ')')) {
		struct gql_vardef *d;
		if (*nvars >= GQL_VARS_MAX) {
			p_fail(p, &p->t.loc, "an operation has more than %d variables", GQL_VARS_MAX);
			return NULL;
		}
		d = p_alloc(p, sizeof(*d));
		d->loc = p->t.loc;
		expect_punct(p, '$');
		d->name = expect_name(p);
		expect_punct(p, ':');
		d->type = parse_type(p, 1);
		if (!p->failed && at_punct(p, '=')) {
			p_next(p);
			d->def = parse_value(p, 1, 1);
		}
		if (!p->failed)
			refused(p);
		*tail = d;
		tail = &d->next;
		(*nvars)++;
	}
	p_next(p);
	return head;
}

static struct gql_op *parse_operation(struct parser *p)
{
	struct gql_op *o = p_alloc(p, sizeof(*o));
	char buf[64];

	o->loc = p->t.loc;
	if (at_punct(p, '{')) {
		o->kind = GQL_QUERY;
	} else if (at_name(p, "query") || at_name(p, "mutation") || at_name(p, "subscription")) {
		o->kind = at_name(p, "query") ? GQL_QUERY : at_name(p, "mutation") ? GQL_MUTATION : GQL_SUBSCRIPTION;
		p_next(p);
		if (p->t.type == T_NAME)
			o->name = expect_name(p);
		if (!p->failed && at_punct(p, '('))
			o->vars = parse_vardefs(p, &o->nvars);
		if (!p->failed && refused(p))
			return NULL;
	} else if (at_name(p, "fragment")) {
		p_fail(p, &p->t.loc, "fragments are not supported");
		return NULL;
	} else if (at_name(p, "schema") || at_name(p, "scalar") || at_name(p, "type") || at_name(p, "interface") ||
	           at_name(p, "union") || at_name(p, "enum") || at_name(p, "input") || at_name(p, "directive") ||
	           at_name(p, "extend")) {
		p_fail(p, &p->t.loc, "type system definitions are not supported: only operations can be executed");
		return NULL;
	} else {
		p_fail(p, &p->t.loc, "Syntax Error: Unexpected %s.", tok_desc(p, buf, sizeof(buf)));
		return NULL;
	}
	o->sel = parse_selection_set(p, &o->nsel, 1);
	return p->failed ? NULL : o;
}

/* Pass 1: every token lexed and counted, nothing allocated. */
static int count_tokens(const char *src, size_t n, uint32_t *ntok, struct gql_error *err)
{
	struct lex l = {src, n, 0, 1, 1};
	struct tok t;

	*ntok = 0;
	for (;;) {
		if (lx_next(&l, &t, err) < 0)
			return -1;
		if (t.type == T_EOF)
			return 0;
		if (++*ntok > GQL_TOKENS_MAX) {
			fail_at(err, &t.loc, "the document has more than %d tokens", GQL_TOKENS_MAX);
			return -1;
		}
	}
}

int gql_parse(const char *src, size_t n, struct gql_doc **out, struct gql_error *err)
{
	struct gql_loc start = {1, 1};
	struct parser p;
	struct gql_doc *d;
	struct gql_op **tail;
	uint32_t ntok;

	*out = NULL;
	memset(err, 0, sizeof(*err));
	if (n > GQL_DOC_BYTES_MAX) {
		fail_at(err, &start, "the document is larger than %d bytes", GQL_DOC_BYTES_MAX);
		return -1;
	}
	if (!utf8_valid((const uint8_t *)src, n)) {
		fail_at(err, &start, "the document is not valid UTF-8");
		return -1;
	}
	if (count_tokens(src, n, &ntok, err) < 0)
		return -1;
	if (ntok == 0) {
		fail_at(err, &start, "Syntax Error: Unexpected <EOF>.");
		return -1;
	}
	memset(&p, 0, sizeof(p));
	/* one node per token, and one more where a parse fails at <EOF> */
	p.arena_len = sizeof(*d) + 8 + ((size_t)ntok + 1) * ALIGN8(sizeof(union node_any) + 8) + n + ntok + 8;
	if (!(p.arena = malloc(p.arena_len))) {
		fail_at(err, &start, "out of memory");
		return -1;
	}
	p.lx = (struct lex){src, n, 0, 1, 1};
	p.err = err;
	d = p_alloc(&p, sizeof(*d));
	d->arena = p.arena;
	tail = &d->ops;
	p_next(&p);
	while (!p.failed && p.t.type != T_EOF) {
		struct gql_op *o;
		if (d->nops >= GQL_OPS_MAX) {
			p_fail(&p, &p.t.loc, "the document has more than %d operations", GQL_OPS_MAX);
			break;
		}
		if (!(o = parse_operation(&p)))
			break;
		*tail = o;
		tail = &o->next;
		d->nops++;
	}
	if (p.failed) {
		free(p.arena);
		return -1;
	}
	*out = d;
	return 0;
}

void gql_doc_free(struct gql_doc *d)
{
	if (d)
		free(d->arena);
}
