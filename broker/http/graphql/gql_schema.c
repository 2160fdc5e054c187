/*
 * gql_schema.c: the broker's GraphQL schema, the validation of an operation
 * against it (spec section 5, for the subset), the choice of the operation
 * and the coercion of variables (spec 6.1). Execution is gql_exec.c.
 *
 * The schema is one table; the SDL that GET /v1/graphql serves is printed
 * from it, so the two cannot disagree. Type references are kept as SDL text
 * ("[Topic!]!") and taken apart with a few string helpers.
 *
 * Offsets, timestamps, terms and indexes are u64 (or i64) and GraphQL's Int
 * is 32-bit, so they are decimal Strings.
 *
 * Caveats of the subset: a response name may appear once per selection set
 * (no field merging); introspection (__schema, __type) is not served, only
 * __typename; the schema's documentation is the SDL.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "gql_int.h"

/* ---------- the schema ---------- */

enum s_kind { SK_OBJECT, SK_INPUT, SK_SCALAR };

struct s_arg {
	const char *name, *type;
};

struct s_field {
	const char *name, *type;
	const struct s_arg *args; /* NULL-terminated by name, or NULL */
};

struct s_type {
	const char *name;
	enum s_kind kind;
	const struct s_field *fields; /* NULL-terminated by name */
	const char *doc;
};

static const struct s_arg topic_args[] = {{"name", "String!"}, {NULL, NULL}};
static const struct s_arg publish_args[] = {{"topic", "String!"},
                                            {"key", "String"},
                                            {"headers", "[HeaderInput!]"},
                                            {"payload", "String!"},
                                            {"partition", "Int"},
                                            {NULL, NULL}};
static const struct s_arg messages_args[] = {
    {"topic", "String!"}, {"from", "String"}, {"partitions", "[Int!]"}, {"group", "String"}, {NULL, NULL}};

static const struct s_field query_fields[] = {{"topics", "[Topic!]!", NULL},
                                              {"topic", "Topic", topic_args},
                                              {"cluster", "Cluster!", NULL},
                                              {NULL, NULL, NULL}};
static const struct s_field mutation_fields[] = {{"publish", "PublishResult!", publish_args}, {NULL, NULL, NULL}};
static const struct s_field subscription_fields[] = {{"messages", "Message!", messages_args}, {NULL, NULL, NULL}};
static const struct s_field topic_fields[] = {
    {"name", "String!", NULL}, {"partitions", "Int!", NULL}, {"endOffsets", "[String!]!", NULL}, {NULL, NULL, NULL}};
static const struct s_field cluster_fields[] = {{"leader", "Int", NULL},
                                                {"nodes", "[Node!]!", NULL},
                                                {"term", "String", NULL},
                                                {"commitIndex", "String", NULL},
                                                {NULL, NULL, NULL}};
static const struct s_field node_fields[] = {{"id", "Int!", NULL}, {"role", "String!", NULL}, {NULL, NULL, NULL}};
static const struct s_field header_input_fields[] = {{"name", "String!", NULL}, {"value", "String!", NULL}, {NULL, NULL, NULL}};
static const struct s_field publish_result_fields[] = {
    {"topic", "String!", NULL}, {"partition", "Int!", NULL}, {"offset", "String!", NULL}, {NULL, NULL, NULL}};
static const struct s_field message_fields[] = {{"topic", "String!", NULL},     {"partition", "Int!", NULL},
                                                {"offset", "String!", NULL},    {"timestamp", "String!", NULL},
                                                {"key", "String", NULL},        {"headers", "[Header!]!", NULL},
                                                {"payload", "String", NULL},    {"json", "JSON", NULL},
                                                {NULL, NULL, NULL}};
static const struct s_field header_fields[] = {{"name", "String!", NULL}, {"value", "String!", NULL}, {NULL, NULL, NULL}};

static const struct s_type types[] = {
    {"Query", SK_OBJECT, query_fields, "Reads: topics and the cluster."},
    {"Topic", SK_OBJECT, topic_fields, "endOffsets[i]: the next offset of partition i, a u64 as a decimal string."},
    {"Cluster", SK_OBJECT, cluster_fields, "leader: null when no leader is known. term, commitIndex: u64 as strings."},
    {"Node", SK_OBJECT, node_fields, "role: leader, follower, candidate, precandidate or single."},
    {"Mutation", SK_OBJECT, mutation_fields, "publish is answered once the message is committed on a majority."},
    {"HeaderInput", SK_INPUT, header_input_fields, NULL},
    {"PublishResult", SK_OBJECT, publish_result_fields, "offset: a u64 as a decimal string."},
    {"Subscription", SK_OBJECT, subscription_fields,
     "from: \"earliest\", \"latest\" (the default), an offset, or \"@UNIX_MS\"."},
    {"Message", SK_OBJECT, message_fields,
     "offset: u64, timestamp: milliseconds since the epoch, both decimal strings. key, payload: null unless UTF-8. "
     "json: the payload parsed as JSON, null if it is not JSON."},
    {"Header", SK_OBJECT, header_fields, NULL},
    {"JSON", SK_SCALAR, NULL, "Any JSON value."},
    {"String", SK_SCALAR, NULL, NULL},
    {"Int", SK_SCALAR, NULL, NULL},
    {"Float", SK_SCALAR, NULL, NULL},
    {"Boolean", SK_SCALAR, NULL, NULL},
    {"ID", SK_SCALAR, NULL, NULL},
};

#define NTYPES (sizeof(types) / sizeof(types[0]))

static const struct s_type *type_find(const char *name, size_t n)
{
	for (size_t i = 0; i < NTYPES; i++)
		if (strlen(types[i].name) == n && memcmp(types[i].name, name, n) == 0)
			return &types[i];
	return NULL;
}

static const struct s_field *field_find(const struct s_field *fs, const char *name)
{
	for (; fs && fs->name; fs++)
		if (strcmp(fs->name, name) == 0)
			return fs;
	return NULL;
}

static const struct s_arg *arg_find(const struct s_arg *as, const char *name)
{
	for (; as && as->name; as++)
		if (strcmp(as->name, name) == 0)
			return as;
	return NULL;
}

/* ---------- type references as SDL text ---------- */

struct tref {
	const char *s;
	size_t n;
};

static struct tref tr(const char *s)
{
	return (struct tref){s, strlen(s)};
}

static int tr_nonnull(struct tref t)
{
	return t.n > 0 && t.s[t.n - 1] == '!';
}

static struct tref tr_nullable(struct tref t)
{
	if (tr_nonnull(t))
		t.n--;
	return t;
}

static int tr_list(struct tref t)
{
	return t.n > 0 && t.s[0] == '[';
}

/* The item type of a (nullable) list type. */
static struct tref tr_item(struct tref t)
{
	t = tr_nullable(t);
	return (struct tref){t.s + 1, t.n >= 2 ? t.n - 2 : 0};
}

static struct tref tr_named(struct tref t)
{
	while (t.n && (t.s[0] == '['))
		t.s++, t.n--;
	while (t.n && (t.s[t.n - 1] == ']' || t.s[t.n - 1] == '!'))
		t.n--;
	return t;
}

static int tr_is(struct tref t, const char *name)
{
	return t.n == strlen(name) && memcmp(t.s, name, t.n) == 0;
}

/* A parsed variable type as text, at most cap bytes. */
static void type_text(const struct gql_type *t, char *buf, size_t cap)
{
	if (t->name) {
		snprintf(buf, cap, "%s%s", t->name, t->nonnull ? "!" : "");
	} else {
		char in[128];
		type_text(t->of, in, sizeof(in));
		snprintf(buf, cap, "[%s]%s", in, t->nonnull ? "!" : "");
	}
}

/* Spec 5.8.5 AreTypesCompatible(variableType, locationType). */
static int tr_compatible(struct tref v, struct tref l)
{
	if (tr_nonnull(l)) {
		if (!tr_nonnull(v))
			return 0;
		return tr_compatible(tr_nullable(v), tr_nullable(l));
	}
	if (tr_nonnull(v))
		return tr_compatible(tr_nullable(v), l);
	if (tr_list(l))
		return tr_list(v) && tr_compatible(tr_item(v), tr_item(l));
	return !tr_list(v) && v.n == l.n && memcmp(v.s, l.s, v.n) == 0;
}

json_t *gql_error_json(const char *message, const struct gql_loc *loc, const char *code)
{
	json_t *e = json_pack("{s:s}", "message", message);

	if (!e)
		return NULL;
	if (loc && loc->line)
		json_object_set_new(e, "locations", json_pack("[{s:i,s:i}]", "line", (int)loc->line, "column", (int)loc->column));
	if (code)
		json_object_set_new(e, "extensions", json_pack("{s:s}", "code", code));
	return e;
}

/* ---------- validation ---------- */

struct vctx {
	json_t *errors;
	const struct gql_op *op;
	uint8_t used[GQL_VARS_MAX];
};

static void verr(struct vctx *v, const struct gql_loc *loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void verr(struct vctx *v, const struct gql_loc *loc, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (json_array_size(v->errors) >= GQL_ERRORS_MAX)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_array_append_new(v->errors, gql_error_json(msg, loc, "GRAPHQL_VALIDATION_FAILED"));
}

static const struct gql_vardef *vardef_find(const struct gql_op *op, const char *name, uint32_t *idx)
{
	uint32_t i = 0;

	for (const struct gql_vardef *d = op->vars; d; d = d->next, i++)
		if (strcmp(d->name, name) == 0) {
			if (idx)
				*idx = i;
			return d;
		}
	return NULL;
}

static const char *kind_text(const struct gql_value *val, char *buf, size_t cap)
{
	switch (val->kind) {
	case GV_STRING:
		snprintf(buf, cap, "\"%.40s\"", val->s);
		return buf;
	case GV_INT:
	case GV_FLOAT:
	case GV_ENUM:
		snprintf(buf, cap, "%.40s", val->s);
		return buf;
	case GV_BOOL:
		return val->b ? "true" : "false";
	case GV_NULL:
		return "null";
	case GV_LIST:
		return "a list";
	case GV_OBJECT:
		return "an object";
	default:
		return "a variable";
	}
}

static int int32_text(const char *s)
{
	char *end;
	long long x;

	errno = 0;
	x = strtoll(s, &end, 10);
	return errno == 0 && *end == 0 && x >= INT32_MIN && x <= INT32_MAX;
}

static void check_literal(struct vctx *v, const struct gql_value *val, struct tref t);

static void check_variable(struct vctx *v, const struct gql_value *val, struct tref t)
{
	uint32_t idx;
	const struct gql_vardef *d = vardef_find(v->op, val->s, &idx);
	char vt[160];

	if (!d) {
		verr(v, &val->loc, "Variable \"$%s\" is not defined%s%s%s.", val->s, v->op->name ? " by operation \"" : "",
		     v->op->name ? v->op->name : "", v->op->name ? "\"" : "");
		return;
	}
	v->used[idx] = 1;
	type_text(d->type, vt, sizeof(vt));
	struct tref vtr = tr(vt);
	if (tr_nonnull(t) && !tr_nonnull(vtr) && d->def && d->def->kind != GV_NULL)
		t = tr_nullable(t); /* a default stands in for a missing value */
	if (!tr_compatible(vtr, t))
		verr(v, &val->loc, "Variable \"$%s\" of type \"%s\" used in position expecting type \"%.*s\".", val->s, vt,
		     (int)t.n, t.s);
}

static void check_object(struct vctx *v, const struct gql_value *val, const struct s_type *ty)
{
	for (const struct gql_value *it = val->items; it; it = it->next) {
		const struct s_field *f = field_find(ty->fields, it->key);
		for (const struct gql_value *o = val->items; o != it; o = o->next)
			if (strcmp(o->key, it->key) == 0)
				verr(v, &it->key_loc, "There can be only one input field named \"%s\".", it->key);
		if (!f)
			verr(v, &it->key_loc, "Field \"%s\" is not defined by type \"%s\".", it->key, ty->name);
		else
			check_literal(v, it, tr(f->type));
	}
	for (const struct s_field *f = ty->fields; f->name; f++) {
		int found = 0;
		for (const struct gql_value *it = val->items; it; it = it->next)
			found |= strcmp(it->key, f->name) == 0;
		if (!found && tr_nonnull(tr(f->type)))
			verr(v, &val->loc, "Field \"%s.%s\" of required type \"%s\" was not provided.", ty->name, f->name,
			     f->type);
	}
}

/* A literal (or a variable) in a position of type t. */
static void check_literal(struct vctx *v, const struct gql_value *val, struct tref t)
{
	struct tref n = tr_named(t), whole = t;
	const struct s_type *ty = type_find(n.s, n.n);
	char buf[64];
	int ok;

	if (val->kind == GV_VAR) {
		check_variable(v, val, t);
		return;
	}
	if (val->kind == GV_NULL) {
		if (tr_nonnull(t))
			verr(v, &val->loc, "Expected value of type \"%.*s\", found null.", (int)t.n, t.s);
		return;
	}
	t = tr_nullable(t);
	if (tr_list(t)) {
		if (val->kind != GV_LIST) {
			check_literal(v, val, tr_item(t));
			return;
		}
		for (const struct gql_value *it = val->items; it; it = it->next)
			check_literal(v, it, tr_item(t));
		return;
	}
	if (ty && ty->kind == SK_INPUT && val->kind == GV_OBJECT) {
		check_object(v, val, ty);
		return;
	}
	if (tr_is(n, "String"))
		ok = val->kind == GV_STRING;
	else if (tr_is(n, "ID"))
		ok = val->kind == GV_STRING || val->kind == GV_INT;
	else if (tr_is(n, "Int"))
		ok = val->kind == GV_INT && int32_text(val->s);
	else if (tr_is(n, "Float"))
		ok = val->kind == GV_INT || val->kind == GV_FLOAT;
	else if (tr_is(n, "Boolean"))
		ok = val->kind == GV_BOOL;
	else if (tr_is(n, "JSON"))
		ok = 1;
	else
		ok = 0;
	if (!ok)
		verr(v, &val->loc, "Expected value of type \"%.*s\", found %s.", (int)whole.n, whole.s,
		     kind_text(val, buf, sizeof(buf)));
}

static void check_args(struct vctx *v, const struct gql_field *f, const struct s_type *ty, const struct s_field *sf)
{
	for (const struct gql_arg *a = f->args; a; a = a->next) {
		const struct s_arg *sa = arg_find(sf->args, a->name);
		for (const struct gql_arg *o = f->args; o != a; o = o->next)
			if (strcmp(o->name, a->name) == 0)
				verr(v, &a->loc, "There can be only one argument named \"%s\".", a->name);
		if (!sa)
			verr(v, &a->loc, "Unknown argument \"%s\" on field \"%s.%s\".", a->name, ty->name, f->name);
		else
			check_literal(v, a->value, tr(sa->type));
	}
	for (const struct s_arg *sa = sf->args; sa && sa->name; sa++) {
		const struct gql_arg *a = f->args;
		while (a && strcmp(a->name, sa->name) != 0)
			a = a->next;
		if (!a && tr_nonnull(tr(sa->type)))
			verr(v, &f->loc, "Field \"%s\" argument \"%s\" of type \"%s\" is required, but it was not provided.",
			     f->name, sa->name, sa->type);
	}
}

static void check_selection(struct vctx *v, const struct gql_field *sel, const struct s_type *ty)
{
	for (const struct gql_field *f = sel; f; f = f->next) {
		for (const struct gql_field *o = sel; o != f; o = o->next)
			if (strcmp(o->alias, f->alias) == 0)
				verr(v, &f->loc,
				     "The response name \"%s\" is selected twice; give one of them another alias (fields are "
				     "not merged).",
				     f->alias);
		if (strcmp(f->name, "__typename") == 0) {
			if (f->args || f->sel)
				verr(v, &f->loc, "Field \"__typename\" takes no arguments and no selection.");
			continue;
		}
		if (strcmp(f->name, "__schema") == 0 || strcmp(f->name, "__type") == 0) {
			verr(v, &f->loc, "Introspection (\"%s\") is not supported; GET /v1/graphql answers the schema in SDL.",
			     f->name);
			continue;
		}
		const struct s_field *sf = field_find(ty->fields, f->name);
		if (!sf) {
			verr(v, &f->loc, "Cannot query field \"%s\" on type \"%s\".", f->name, ty->name);
			continue;
		}
		check_args(v, f, ty, sf);
		struct tref n = tr_named(tr(sf->type));
		const struct s_type *ft = type_find(n.s, n.n);
		if (ft && ft->kind == SK_OBJECT) {
			if (!f->sel)
				verr(v, &f->loc, "Field \"%s\" of type \"%s\" must have a selection of subfields.", f->name,
				     sf->type);
			else
				check_selection(v, f->sel, ft);
		} else if (f->sel) {
			verr(v, &f->loc, "Field \"%s\" must not have a selection since type \"%s\" has no subfields.", f->name,
			     sf->type);
		}
	}
}

static void check_vardefs(struct vctx *v)
{
	char tt[160];

	for (const struct gql_vardef *d = v->op->vars; d; d = d->next) {
		const struct gql_type *t = d->type;
		for (const struct gql_vardef *o = v->op->vars; o != d; o = o->next)
			if (strcmp(o->name, d->name) == 0)
				verr(v, &d->loc, "There can be only one variable named \"$%s\".", d->name);
		while (!t->name)
			t = t->of;
		const struct s_type *ty = type_find(t->name, strlen(t->name));
		type_text(d->type, tt, sizeof(tt));
		if (!ty)
			verr(v, &t->loc, "Unknown type \"%s\".", t->name);
		else if (ty->kind == SK_OBJECT)
			verr(v, &t->loc, "Variable \"$%s\" cannot be non-input type \"%s\".", d->name, tt);
		else if (d->def)
			check_literal(v, d->def, tr(tt));
	}
}

static void check_operation(struct vctx *v)
{
	static const char *roots[] = {"Query", "Mutation", "Subscription"};
	const struct gql_op *op = v->op;
	const struct s_type *root = type_find(roots[op->kind], strlen(roots[op->kind]));
	uint32_t i = 0;

	check_vardefs(v);
	if (op->kind == GQL_SUBSCRIPTION) {
		if (op->nsel != 1)
			verr(v, &op->loc, "%s%s%smust select only one top level field.",
			     op->name ? "Subscription \"" : "Anonymous Subscription ", op->name ? op->name : "",
			     op->name ? "\" " : "");
		else if (strcmp(op->sel->name, "__typename") == 0)
			verr(v, &op->sel->loc, "A subscription must not select an introspection top level field.");
	}
	check_selection(v, op->sel, root);
	for (const struct gql_vardef *d = op->vars; d; d = d->next, i++)
		if (!v->used[i])
			verr(v, &d->loc, "Variable \"$%s\" is never used%s%s%s.", d->name, op->name ? " in operation \"" : "",
			     op->name ? op->name : "", op->name ? "\"" : "");
}

/* The operation to run (spec 6.1 GetOperation), or NULL with an error. */
static struct gql_op *choose_op(struct gql_doc *d, const char *name, json_t *errors)
{
	struct gql_op *found = NULL;
	char msg[256];

	for (struct gql_op *o = d->ops; o; o = o->next) {
		if (!o->name && d->nops > 1) {
			json_array_append_new(errors, gql_error_json("This anonymous operation must be the only defined operation.",
			                                             &o->loc, "GRAPHQL_VALIDATION_FAILED"));
			return NULL;
		}
		for (struct gql_op *p = d->ops; o->name && p != o; p = p->next)
			if (p->name && strcmp(p->name, o->name) == 0) {
				snprintf(msg, sizeof(msg), "There can be only one operation named \"%s\".", o->name);
				json_array_append_new(errors, gql_error_json(msg, &o->loc, "GRAPHQL_VALIDATION_FAILED"));
				return NULL;
			}
		if (name ? (o->name && strcmp(o->name, name) == 0) : 1)
			found = found ? found : o;
	}
	if (!name && d->nops > 1) {
		json_array_append_new(errors, gql_error_json("Must provide operation name if query contains multiple operations.",
		                                             NULL, "OPERATION_RESOLUTION_FAILURE"));
		return NULL;
	}
	if (!found) {
		snprintf(msg, sizeof(msg), "Unknown operation named \"%.200s\".", name ? name : "");
		json_array_append_new(errors, gql_error_json(msg, NULL, "OPERATION_RESOLUTION_FAILURE"));
	}
	return found;
}

/* ---------- variables ---------- */

/* A literal as JSON, variables substituted (NULL: an absent variable). */
json_t *gql_literal_json(const struct gql_value *val, json_t *vars)
{
	json_t *j, *x;

	switch (val->kind) {
	case GV_VAR:
		x = vars ? json_object_get(vars, val->s) : NULL;
		return x ? json_incref(x) : NULL;
	case GV_INT:
		return json_integer(strtoll(val->s, NULL, 10));
	case GV_FLOAT:
		return json_real(strtod(val->s, NULL));
	case GV_STRING:
		return json_stringn(val->s, val->len);
	case GV_BOOL:
		return json_boolean(val->b);
	case GV_NULL:
		return json_null();
	case GV_ENUM:
		return json_string(val->s);
	case GV_LIST:
		j = json_array();
		for (const struct gql_value *it = val->items; j && it; it = it->next)
			json_array_append_new(j, (x = gql_literal_json(it, vars)) ? x : json_null());
		return j;
	case GV_OBJECT:
		j = json_object();
		for (const struct gql_value *it = val->items; j && it; it = it->next)
			if ((x = gql_literal_json(it, vars)))
				json_object_set_new(j, it->key, x);
		return j;
	}
	return NULL;
}

/* 0 if the JSON value j is a valid input of type t (spec 3.5, input coercion). */
static int check_json(json_t *j, struct tref t)
{
	struct tref n = tr_named(t);

	if (json_is_null(j))
		return tr_nonnull(t) ? -1 : 0;
	t = tr_nullable(t);
	if (tr_list(t)) {
		size_t i;
		json_t *it;
		if (!json_is_array(j))
			return check_json(j, tr_item(t));
		json_array_foreach(j, i, it) if (check_json(it, tr_item(t)) < 0) return -1;
		return 0;
	}
	if (tr_is(n, "String"))
		return json_is_string(j) ? 0 : -1;
	if (tr_is(n, "ID"))
		return json_is_string(j) || json_is_integer(j) ? 0 : -1;
	if (tr_is(n, "Int"))
		return json_is_integer(j) && json_integer_value(j) >= INT32_MIN && json_integer_value(j) <= INT32_MAX ? 0 : -1;
	if (tr_is(n, "Float"))
		return json_is_number(j) ? 0 : -1;
	if (tr_is(n, "Boolean"))
		return json_is_boolean(j) ? 0 : -1;
	if (tr_is(n, "JSON"))
		return 0;
	if (tr_is(n, "HeaderInput")) {
		const char *k;
		json_t *x;
		if (!json_is_object(j))
			return -1;
		json_object_foreach(j, k, x) if (!field_find(header_input_fields, k)) return -1;
		return json_is_string(json_object_get(j, "name")) && json_is_string(json_object_get(j, "value")) ? 0 : -1;
	}
	return -1;
}

static json_t *coerce_vars(const struct gql_op *op, json_t *given, json_t *errors)
{
	json_t *out = json_object();
	char tt[160], msg[400];

	if (given && !json_is_object(given) && !json_is_null(given)) {
		json_array_append_new(errors, gql_error_json("\"variables\" must be an object.", NULL, "BAD_USER_INPUT"));
		return out;
	}
	for (const struct gql_vardef *d = op->vars; out && d; d = d->next) {
		json_t *x = json_is_object(given) ? json_object_get(given, d->name) : NULL;
		type_text(d->type, tt, sizeof(tt));
		if (!x && d->def) {
			json_object_set_new(out, d->name, gql_literal_json(d->def, NULL));
			continue;
		}
		if (!x && tr_nonnull(tr(tt))) {
			snprintf(msg, sizeof(msg), "Variable \"$%s\" of required type \"%s\" was not provided.", d->name, tt);
			json_array_append_new(errors, gql_error_json(msg, &d->loc, "BAD_USER_INPUT"));
			continue;
		}
		if (!x)
			continue;
		if (check_json(x, tr(tt)) < 0) {
			snprintf(msg, sizeof(msg), "Variable \"$%s\" got an invalid value; expected type \"%s\".", d->name, tt);
			json_array_append_new(errors, gql_error_json(msg, &d->loc, "BAD_USER_INPUT"));
			continue;
		}
		json_object_set(out, d->name, x);
	}
	return out;
}

int gql_prepare(const char *src, size_t n, const char *op_name, json_t *variables, struct gql_req **out,
                json_t **errors)
{
	struct gql_error pe;
	struct gql_req *q = calloc(1, sizeof(*q));
	struct vctx v;

	*out = NULL;
	*errors = json_array();
	if (!q || !*errors)
		goto fail;
	if (gql_parse(src, n, &q->doc, &pe) < 0) {
		json_array_append_new(*errors, gql_error_json(pe.message, &pe.loc, "GRAPHQL_PARSE_FAILED"));
		goto fail;
	}
	if (!(q->op = choose_op(q->doc, op_name, *errors)))
		goto fail;
	memset(&v, 0, sizeof(v));
	v.errors = *errors;
	v.op = q->op;
	check_operation(&v);
	if (json_array_size(*errors))
		goto fail;
	q->vars = coerce_vars(q->op, variables, *errors);
	if (!q->vars || json_array_size(*errors))
		goto fail;
	q->next = q->op->sel;
	q->data = json_object();
	q->errors = json_array();
	json_decref(*errors);
	*errors = NULL;
	*out = q;
	return 0;
fail:
	if (*errors && json_array_size(*errors) == 0)
		json_array_append_new(*errors, gql_error_json("out of memory", NULL, "INTERNAL_SERVER_ERROR"));
	gql_req_free(q);
	return -1;
}

void gql_req_free(struct gql_req *q)
{
	if (!q)
		return;
	gql_doc_free(q->doc);
	json_decref(q->vars);
	json_decref(q->data);
	json_decref(q->errors);
	json_decref(q->args);
	free(q);
}

enum gql_op_kind gql_req_kind(const struct gql_req *q)
{
	return q->op->kind;
}

/* ---------- SDL ---------- */

static char sdl_text[8192];

static size_t sdl_type(char *o, size_t cap, const struct s_type *t)
{
	size_t n = 0;

#define OUT(...) n += (size_t)snprintf(o + n, n < cap ? cap - n : 0, __VA_ARGS__)
	if (t->doc)
		OUT("\"\"\"%s\"\"\"\n", t->doc);
	if (t->kind == SK_SCALAR) {
		OUT("scalar %s\n\n", t->name);
		return n;
	}
	OUT("%s %s {\n", t->kind == SK_INPUT ? "input" : "type", t->name);
	for (const struct s_field *f = t->fields; f->name; f++) {
		OUT("  %s", f->name);
		for (const struct s_arg *a = f->args; a && a->name; a++)
			OUT("%s%s: %s", a == f->args ? "(" : ", ", a->name, a->type);
		OUT("%s: %s\n", f->args ? ")" : "", f->type);
	}
	OUT("}\n\n");
#undef OUT
	return n;
}

const char *gql_sdl(void)
{
	size_t n = 0;

	if (sdl_text[0])
		return sdl_text;
	for (size_t i = 0; i < NTYPES; i++) {
		/* the built-in scalars are not printed (spec 3.4.4) */
		if (types[i].kind == SK_SCALAR && strcmp(types[i].name, "JSON") != 0)
			continue;
		n += sdl_type(sdl_text + n, sizeof(sdl_text) - n, &types[i]);
		if (n >= sizeof(sdl_text))
			abort(); /* the schema is ours: a bigger buffer is the fix */
	}
	sdl_text[n - 1] = 0; /* one newline at the end */
	return sdl_text;
}
