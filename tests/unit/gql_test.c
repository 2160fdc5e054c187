/*
 * gql_test.c: the GraphQL subset (broker/http/graphql/) without a server:
 * parsing (valid documents, block strings, escapes, every limit, every
 * refusal with its message and location), validation and variable errors,
 * execution against scripted native answers (only the selected fields,
 * under their aliases), subscription frames and messages, the SDL, and the
 * graphql-transport-ws message decoder.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gql.h"

static struct gql_doc *parse_ok(const char *src)
{
	struct gql_doc *d = NULL;
	struct gql_error e;
	int rc = gql_parse(src, strlen(src), &d, &e);

	cr_assert_eq(rc, 0, "parse failed: %s at %u:%u", e.message, e.loc.line, e.loc.column);
	return d;
}

static void parse_fails(const char *src, size_t n, const char *msg, uint32_t line, uint32_t col)
{
	struct gql_doc *d = NULL;
	struct gql_error e;

	cr_assert_eq(gql_parse(src, n, &d, &e), -1, "parsed: %.60s", src);
	cr_assert_null(d);
	cr_assert(strstr(e.message, msg), "message \"%s\" does not contain \"%s\"", e.message, msg);
	if (line)
		cr_assert(e.loc.line == line && e.loc.column == col, "at %u:%u, expected %u:%u (%s)", e.loc.line,
		          e.loc.column, line, col, e.message);
}

Test(gql_parse, operations_variables_aliases)
{
	struct gql_doc *d = parse_ok("query Q($t: String!, $p: [Int!] = [0, 1], $h: [HeaderInput!]) {\n"
	                             "  a: topic(name: $t) { name }\n"
	                             "  topics { endOffsets __typename }\n"
	                             "}\n"
	                             "mutation M { publish(topic: \"x\", payload: \"\", headers: [{name: \"k\", value: \"v\"}])"
	                             " { offset } }\n"
	                             "subscription { messages(topic: \"x\", partitions: 1) { payload } }");
	struct gql_op *q = d->ops, *m = q->next, *s = m->next;

	cr_assert_eq(d->nops, 3);
	cr_assert_eq(q->kind, GQL_QUERY);
	cr_assert_str_eq(q->name, "Q");
	cr_assert_eq(q->nvars, 3);
	cr_assert_str_eq(q->vars->name, "t");
	cr_assert_str_eq(q->vars->type->name, "String");
	cr_assert(q->vars->type->nonnull);
	cr_assert_null(q->vars->next->type->name);
	cr_assert_str_eq(q->vars->next->type->of->name, "Int");
	cr_assert_eq(q->vars->next->def->kind, GV_LIST);
	cr_assert_eq(q->vars->next->def->n, 2);
	cr_assert_eq(q->nsel, 2);
	cr_assert_str_eq(q->sel->alias, "a");
	cr_assert_str_eq(q->sel->name, "topic");
	cr_assert_eq(q->sel->args->value->kind, GV_VAR);
	cr_assert_eq(q->sel->loc.line, 2);
	cr_assert_eq(q->sel->loc.column, 3);
	cr_assert_eq(m->kind, GQL_MUTATION);
	cr_assert_eq(m->sel->nargs, 3);
	cr_assert_eq(m->sel->args->next->next->value->items->kind, GV_OBJECT);
	cr_assert_eq(s->kind, GQL_SUBSCRIPTION);
	cr_assert_null(s->name);
	gql_doc_free(d);
}

Test(gql_parse, literals_strings_and_escapes)
{
	struct gql_doc *d =
	    parse_ok("{ f(a: \"x\\\"y\\\\z\\/\\n\\u00e9\\ud83d\\ude00\", b: -12, c: 1.5e3, d: true, e: null, g: RED,"
	             " h: {k: [1, \"2\"]}, i: \"\", j: false) }");
	struct gql_arg *a = d->ops->sel->args;

	cr_assert_eq(d->ops->sel->nargs, 9);
	cr_assert_eq(a->value->kind, GV_STRING);
	cr_assert_str_eq(a->value->s, "x\"y\\z/\n\xc3\xa9\xf0\x9f\x98\x80");
	a = a->next;
	cr_assert(a->value->kind == GV_INT && strcmp(a->value->s, "-12") == 0);
	a = a->next;
	cr_assert(a->value->kind == GV_FLOAT && strcmp(a->value->s, "1.5e3") == 0);
	a = a->next;
	cr_assert(a->value->kind == GV_BOOL && a->value->b == 1);
	a = a->next;
	cr_assert_eq(a->value->kind, GV_NULL);
	a = a->next;
	cr_assert(a->value->kind == GV_ENUM && strcmp(a->value->s, "RED") == 0);
	a = a->next;
	cr_assert_eq(a->value->kind, GV_OBJECT);
	cr_assert_str_eq(a->value->items->key, "k");
	cr_assert_eq(a->value->items->n, 2);
	gql_doc_free(d);
}

Test(gql_parse, block_strings)
{
	struct gql_doc *d = parse_ok("{ f(a: \"\"\"\n\n    hello\n      world\n    say \\\"\"\" here\n\n  \"\"\", b: \"\"\"one\"\"\","
	                             " c: \"\"\"  \n  \"\"\") }");
	struct gql_arg *a = d->ops->sel->args;

	cr_assert_str_eq(a->value->s, "hello\n  world\nsay \"\"\" here");
	cr_assert_str_eq(a->next->value->s, "one");
	cr_assert_str_eq(a->next->next->value->s, "");
	gql_doc_free(d);
}

Test(gql_parse, syntax_errors_with_locations)
{
	parse_fails("{ topics ", 9, "Expected Name, found <EOF>", 1, 10);
	parse_fails("{ f", 3, "Expected Name, found <EOF>", 1, 4); /* the arena holds a node more than the tokens */
	parse_fails("query {\n  a(x: )\n}", 17, "Unexpected \")\"", 2, 8);
	parse_fails("{ f(a: \"abc\n\") }", 15, "Unterminated string", 1, 8);
	parse_fails("{ f(a: \"\\q\") }", 14, "Invalid escape", 1, 8);
	parse_fails("{ f(a: \"\\ud800\") }", 18, "Invalid escape", 1, 8);
	parse_fails("{ f(a: 012) }", 13, "Invalid number", 1, 8);
	parse_fails("{ f(a: 1.) }", 12, "Invalid number", 1, 8);
	parse_fails("{ f }  ?", 8, "Unexpected character \"?\"", 1, 8);
	parse_fails("", 0, "Unexpected <EOF>", 1, 1);
	parse_fails("{ f(a: \"\"\"open) }", 17, "Unterminated block string", 1, 8);
	parse_fails("query ($a: Int = $b) { f }", 26, "Unexpected variable", 1, 18);
	parse_fails("{ f(a: \"\xff\") }", 12, "not valid UTF-8", 1, 1);
	parse_fails("{ }", 3, "Expected Name, found \"}\"", 1, 3);
	/* columns count code points: "é" is one column */
	parse_fails("{ f(a: \"é\", b: ) }", strlen("{ f(a: \"é\", b: ) }"), "Unexpected \")\"", 1, 16);
}

Test(gql_parse, refusals_name_what_is_refused)
{
	parse_fails("{ topics { ...F } }", 19, "fragments are not supported", 1, 12);
	parse_fails("{ topics { ... on Topic { name } } }", 36, "fragments are not supported", 1, 12);
	parse_fails("fragment F on Topic { name }", 28, "fragments are not supported", 1, 1);
	parse_fails("{ topics @include(if: true) { name } }", 38, "directives are not supported", 1, 10);
	parse_fails("query Q @live { topics { name } }", 33, "directives are not supported", 1, 9);
	parse_fails("type Foo { a: Int }", 19, "type system definitions are not supported", 1, 1);
}

Test(gql_parse, limits)
{
	char *s = malloc(GQL_DOC_BYTES_MAX + 64);
	size_t n = 0;
	int i;

	/* depth: 10 nested selection sets parse, 11 do not */
	n = 0;
	for (i = 0; i < 10; i++)
		n += (size_t)sprintf(s + n, "{ a ");
	for (i = 0; i < 10; i++)
		n += (size_t)sprintf(s + n, "}");
	gql_doc_free(parse_ok(s));
	n = 0;
	for (i = 0; i < 11; i++)
		n += (size_t)sprintf(s + n, "{ a ");
	for (i = 0; i < 11; i++)
		n += (size_t)sprintf(s + n, "}");
	parse_fails(s, n, "nested deeper than 10", 1, 41);
	/* nested list values and list types */
	n = (size_t)sprintf(s, "{ f(a: [[[[[[[[[[[1]]]]]]]]]]]) }");
	parse_fails(s, n, "a value is nested deeper than 10", 0, 0);
	n = (size_t)sprintf(s, "query ($a: [[[[[[[[[[[Int]]]]]]]]]]]) { f }");
	parse_fails(s, n, "a type is nested deeper than 10", 0, 0);
	/* width: 64 fields, not 65 */
	n = (size_t)sprintf(s, "{");
	for (i = 0; i < 65; i++)
		n += (size_t)sprintf(s + n, " f%d", i);
	n += (size_t)sprintf(s + n, " }");
	parse_fails(s, n, "more than 64 fields", 1, 1 + 10 * 3 + 54 * 4 + 2);
	/* arguments: 17 */
	n = (size_t)sprintf(s, "{ f(");
	for (i = 0; i < 17; i++)
		n += (size_t)sprintf(s + n, "a%d: 1 ", i);
	n += (size_t)sprintf(s + n, ") }");
	parse_fails(s, n, "field \"f\" has more than 16 arguments", 0, 0);
	/* variables: 33 */
	n = (size_t)sprintf(s, "query (");
	for (i = 0; i < 33; i++)
		n += (size_t)sprintf(s + n, "$v%d: Int ", i);
	n += (size_t)sprintf(s + n, ") { f }");
	parse_fails(s, n, "more than 32 variables", 0, 0);
	/* operations: 17 */
	n = 0;
	for (i = 0; i < 17; i++)
		n += (size_t)sprintf(s + n, "query Q%d { f } ", i);
	parse_fails(s, n, "more than 16 operations", 0, 0);
	/* tokens: 4097 */
	n = (size_t)sprintf(s, "{ f(a: [");
	for (i = 0; i < 4094; i++)
		n += (size_t)sprintf(s + n, "1 ");
	n += (size_t)sprintf(s + n, "]) }");
	parse_fails(s, n, "more than 4096 tokens", 0, 0);
	/* bytes */
	memset(s, ' ', GQL_DOC_BYTES_MAX + 1);
	memcpy(s, "{ f }", 5);
	parse_fails(s, GQL_DOC_BYTES_MAX + 1, "larger than 65536 bytes", 1, 1);
	free(s);
}

/* ---------- validation ---------- */

static json_t *prepare_fails(const char *src, const char *vars_json)
{
	struct gql_req *q = NULL;
	json_t *errors = NULL, *vars = vars_json ? json_loads(vars_json, 0, NULL) : NULL;
	int rc = gql_prepare(src, strlen(src), NULL, vars, &q, &errors);

	json_decref(vars);
	cr_assert_eq(rc, -1, "prepared: %s", src);
	cr_assert_null(q);
	cr_assert(json_array_size(errors) > 0);
	return errors;
}

static void has_error(json_t *errors, const char *msg, uint32_t line, uint32_t col, const char *code)
{
	size_t i;
	json_t *e;

	json_array_foreach(errors, i, e)
	{
		const char *m = json_string_value(json_object_get(e, "message"));
		json_t *loc = json_array_get(json_object_get(e, "locations"), 0);
		if (!m || !strstr(m, msg))
			continue;
		if (line)
			cr_assert(json_integer_value(json_object_get(loc, "line")) == line &&
			              json_integer_value(json_object_get(loc, "column")) == col,
			          "%s: wrong location", m);
		cr_assert_str_eq(json_string_value(json_object_get(json_object_get(e, "extensions"), "code")), code);
		return;
	}
	char *dump = json_dumps(errors, 0);
	cr_assert_fail("no error containing \"%s\" in %s", msg, dump);
	free(dump);
}

static void fails_with(const char *src, const char *vars, const char *msg, uint32_t line, uint32_t col,
                       const char *code)
{
	json_t *e = prepare_fails(src, vars);

	has_error(e, msg, line, col, code);
	json_decref(e);
}

#define VF "GRAPHQL_VALIDATION_FAILED"

Test(gql_validate, schema_errors)
{
	fails_with("{ topics { nam } }", NULL, "Cannot query field \"nam\" on type \"Topic\".", 1, 12, VF);
	fails_with("{ foo }", NULL, "Cannot query field \"foo\" on type \"Query\".", 1, 3, VF);
	fails_with("{ topic(nme: \"a\") { name } }", NULL, "Unknown argument \"nme\" on field \"Query.topic\".", 1, 9, VF);
	fails_with("{ topic { name } }", NULL,
	           "Field \"topic\" argument \"name\" of type \"String!\" is required, but it was not provided.", 1, 3, VF);
	fails_with("{ topic(name: 5) { name } }", NULL, "Expected value of type \"String!\", found 5.", 1, 15, VF);
	fails_with("{ topic(name: null) { name } }", NULL, "Expected value of type \"String!\", found null.", 1, 15, VF);
	fails_with("{ topic(name: \"a\", name: \"b\") { name } }", NULL, "only one argument named \"name\"", 1, 20, VF);
	fails_with("{ topics }", NULL, "Field \"topics\" of type \"[Topic!]!\" must have a selection of subfields.", 1, 3, VF);
	fails_with("{ topics { name { x } } }", NULL, "must not have a selection since type \"String!\"", 1, 12, VF);
	fails_with("{ topics { name } topics { partitions } }", NULL, "response name \"topics\" is selected twice", 1, 19,
	           VF);
	fails_with("{ __schema { types { name } } }", NULL, "Introspection", 1, 3, VF);
	fails_with("mutation { publish(topic: \"t\", payload: \"p\", partition: 3000000000) { offset } }", NULL,
	           "Expected value of type \"Int\", found 3000000000.", 1, 57, VF);
	fails_with("mutation { publish(topic: \"t\", payload: \"p\", headers: [{name: \"a\"}]) { offset } }", NULL,
	           "Field \"HeaderInput.value\" of required type \"String!\" was not provided.", 1, 56, VF);
	fails_with("mutation { publish(topic: \"t\", payload: \"p\", headers: {name: \"a\", value: \"b\", x: 1}) { offset } }",
	           NULL, "Field \"x\" is not defined by type \"HeaderInput\".", 1, 79, VF);
	fails_with("subscription S { messages(topic: \"t\") { offset } cluster { leader } }", NULL,
	           "Subscription \"S\" must select only one top level field.", 1, 1, VF);
	fails_with("subscription { messages(topic: \"t\", partitions: [\"a\"]) { offset } }", NULL,
	           "Expected value of type \"Int!\", found \"a\".", 1, 50, VF);
	fails_with("{ cluster { leader } } { topics { name } }", NULL, "anonymous operation must be the only", 1, 1, VF);
}

Test(gql_validate, variables)
{
	fails_with("query ($t: String!) { topic(name: $n) { name } }", "{\"t\":\"a\"}", "Variable \"$n\" is not defined.",
	           1, 35, VF);
	fails_with("query Q($t: String!, $u: Int) { topic(name: $t) { name } }", "{\"t\":\"a\"}",
	           "Variable \"$u\" is never used in operation \"Q\".", 1, 22, VF);
	fails_with("query ($t: String) { topic(name: $t) { name } }", NULL,
	           "Variable \"$t\" of type \"String\" used in position expecting type \"String!\".", 1, 34, VF);
	fails_with("query ($t: Int!) { topic(name: $t) { name } }", NULL,
	           "Variable \"$t\" of type \"Int!\" used in position expecting type \"String!\".", 1, 32, VF);
	fails_with("query ($t: Topic) { topic(name: $t) { name } }", NULL, "cannot be non-input type \"Topic\"", 1, 12, VF);
	fails_with("query ($t: Strin) { topic(name: $t) { name } }", NULL, "Unknown type \"Strin\".", 1, 12, VF);
	fails_with("query ($t: String! = 5) { topic(name: $t) { name } }", NULL, "Expected value of type \"String!\", found 5",
	           1, 22, VF);
	fails_with("query ($t: String!) { topic(name: $t) { name } }", NULL,
	           "Variable \"$t\" of required type \"String!\" was not provided.", 1, 8, "BAD_USER_INPUT");
	fails_with("query ($t: String!) { topic(name: $t) { name } }", "{\"t\": 5}",
	           "Variable \"$t\" got an invalid value; expected type \"String!\".", 1, 8, "BAD_USER_INPUT");
	fails_with("mutation ($h: [HeaderInput!]) { publish(topic: \"t\", payload: \"\", headers: $h) { offset } }",
	           "{\"h\": [{\"name\": \"a\", \"value\": 1}]}", "Variable \"$h\" got an invalid value", 1, 11,
	           "BAD_USER_INPUT");
	fails_with("query A { topics { name } } query B { cluster { leader } }", NULL,
	           "Must provide operation name if query contains multiple operations.", 0, 0,
	           "OPERATION_RESOLUTION_FAILURE");
	fails_with("{ f }} ", NULL, "Unexpected \"}\"", 1, 6, "GRAPHQL_PARSE_FAILED");
	/* a nullable variable with a default fits a non-null position */
	struct gql_req *q = NULL;
	json_t *errors = NULL;
	const char *ok = "query ($t: String = \"x\") { topic(name: $t) { name } }";
	cr_assert_eq(gql_prepare(ok, strlen(ok), NULL, NULL, &q, &errors), 0);
	gql_req_free(q);
}

/* ---------- execution ---------- */

static struct gql_req *prepare_ok(const char *src, const char *op, const char *vars_json)
{
	struct gql_req *q = NULL;
	json_t *errors = NULL, *vars = vars_json ? json_loads(vars_json, 0, NULL) : NULL;
	int rc = gql_prepare(src, strlen(src), op, vars, &q, &errors);
	char *dump = errors ? json_dumps(errors, 0) : NULL;

	cr_assert_eq(rc, 0, "%s", dump ? dump : "");
	free(dump);
	json_decref(vars);
	return q;
}

static void result_is(struct gql_req *q, const char *want)
{
	json_t *r = gql_exec_result(q), *w = json_loads(want, 0, NULL);
	char *got = json_dumps(r, JSON_COMPACT);

	cr_assert_not_null(w, "bad expectation %s", want);
	cr_assert(json_equal(r, w), "got %s, want %s", got, want);
	/* only the selected fields, in selection order */
	char *ws = json_dumps(w, JSON_COMPACT);
	cr_assert_str_eq(got, ws);
	free(ws);
	free(got);
	json_decref(r);
	json_decref(w);
}

Test(gql_exec, query_topics_and_cluster_with_aliases)
{
	struct gql_req *q =
	    prepare_ok("query Q($n: String!) { all: topics { name n: partitions endOffsets }\n"
	               " missing: topic(name: \"nope\") { name }\n one: topic(name: $n) { __typename name }\n"
	               " cluster { leader nodes { id role } term } __typename }",
	               "Q", "{\"n\":\"orders\"}");
	Sluice__Frame f;
	Sluice__Frame a = SLUICE__FRAME__INIT;
	Sluice__TopicList tl = SLUICE__TOPIC_LIST__INIT;
	Sluice__TopicInfo ti = SLUICE__TOPIC_INFO__INIT, *tis[1] = {&ti};
	Sluice__TopicConfig tc = SLUICE__TOPIC_CONFIG__INIT;
	Sluice__PartitionInfo p0 = SLUICE__PARTITION_INFO__INIT, p1 = SLUICE__PARTITION_INFO__INIT, *ps[2] = {&p0, &p1};
	Sluice__Error err = SLUICE__ERROR__INIT;
	Sluice__ClusterStatusResult cs = SLUICE__CLUSTER_STATUS_RESULT__INIT;
	Sluice__ClusterNode n1 = SLUICE__CLUSTER_NODE__INIT, n2 = SLUICE__CLUSTER_NODE__INIT, n3 = SLUICE__CLUSTER_NODE__INIT;
	Sluice__ClusterNode *ns[3] = {&n1, &n2, &n3};

	cr_assert_eq(gql_req_kind(q), GQL_QUERY);
	ti.name = "orders";
	tc.partitions = 2;
	ti.config = &tc;
	p0.end_offset = 18446744073709551615ull;
	p1.end_offset = 7;
	ti.n_partitions = 2;
	ti.partitions = ps;
	tl.n_topics = 1;
	tl.topics = tis;

	cr_assert_eq(gql_exec_next(q, &f), 1);
	cr_assert_eq(f.body_case, SLUICE__FRAME__BODY_LIST_TOPICS);
	a.body_case = SLUICE__FRAME__BODY_TOPIC_LIST;
	a.topic_list = &tl;
	gql_exec_answer(q, &a);

	cr_assert_eq(gql_exec_next(q, &f), 1);
	cr_assert_eq(f.body_case, SLUICE__FRAME__BODY_DESCRIBE_TOPIC);
	cr_assert_str_eq(f.describe_topic->name, "nope");
	err.code = SLUICE__ERROR_CODE__NO_SUCH_TOPIC;
	err.message = "no such topic";
	a.body_case = SLUICE__FRAME__BODY_ERROR;
	a.error = &err;
	gql_exec_answer(q, &a);

	cr_assert_eq(gql_exec_next(q, &f), 1);
	cr_assert_str_eq(f.describe_topic->name, "orders");
	a.body_case = SLUICE__FRAME__BODY_TOPIC_INFO;
	a.topic_info = &ti;
	gql_exec_answer(q, &a);

	cr_assert_eq(gql_exec_next(q, &f), 1);
	cr_assert_eq(f.body_case, SLUICE__FRAME__BODY_CLUSTER_STATUS);
	cs.node_id = 2;
	cs.leader_id = 1;
	cs.role = "follower";
	cs.term = 9;
	n1.id = 1;
	n2.id = 2;
	n3.id = 3;
	cs.n_nodes = 3;
	cs.nodes = ns;
	a.body_case = SLUICE__FRAME__BODY_CLUSTER_STATUS_RESULT;
	a.cluster_status_result = &cs;
	gql_exec_answer(q, &a);

	cr_assert_eq(gql_exec_next(q, &f), 0);
	result_is(q, "{\"data\":{\"all\":[{\"name\":\"orders\",\"n\":2,\"endOffsets\":[\"18446744073709551615\",\"7\"]}],"
	             "\"missing\":null,\"one\":{\"__typename\":\"Topic\",\"name\":\"orders\"},"
	             "\"cluster\":{\"leader\":1,\"nodes\":[{\"id\":1,\"role\":\"leader\"},{\"id\":2,\"role\":\"follower\"},"
	             "{\"id\":3,\"role\":\"follower\"}],\"term\":\"9\"},\"__typename\":\"Query\"}}");
	gql_req_free(q);
}

Test(gql_exec, native_error_on_non_null_field_nulls_data)
{
	struct gql_req *q = prepare_ok("{ cluster { leader } }", NULL, NULL);
	Sluice__Frame f, a = SLUICE__FRAME__INIT;
	Sluice__Error err = SLUICE__ERROR__INIT;

	cr_assert_eq(gql_exec_next(q, &f), 1);
	err.code = SLUICE__ERROR_CODE__UNAVAILABLE;
	err.message = "no leader";
	a.body_case = SLUICE__FRAME__BODY_ERROR;
	a.error = &err;
	gql_exec_answer(q, &a);
	cr_assert_eq(gql_exec_next(q, &f), 0);
	result_is(q, "{\"data\":null,\"errors\":[{\"message\":\"no leader\",\"locations\":[{\"line\":1,\"column\":3}],"
	             "\"extensions\":{\"code\":\"UNAVAILABLE\"},\"path\":[\"cluster\"]}]}");
	gql_req_free(q);
}

Test(gql_exec, publish_mutation)
{
	struct gql_req *q = prepare_ok("mutation P($p: String!, $h: [HeaderInput!]) {\n"
	                               "  r: publish(topic: \"orders\", key: \"k1\", payload: $p, headers: $h, partition: 1)"
	                               " { partition offset t: topic }\n}",
	                               NULL, "{\"p\":\"{\\\"a\\\":1}\",\"h\":{\"name\":\"x-id\",\"value\":\"7\"}}");
	Sluice__Frame f, a = SLUICE__FRAME__INIT;
	Sluice__PublishAck ack = SLUICE__PUBLISH_ACK__INIT;

	cr_assert_eq(gql_req_kind(q), GQL_MUTATION);
	cr_assert_eq(gql_exec_next(q, &f), 1);
	cr_assert_eq(f.body_case, SLUICE__FRAME__BODY_PUBLISH);
	cr_assert_str_eq(f.publish->topic, "orders");
	cr_assert(f.publish->key.len == 2 && memcmp(f.publish->key.data, "k1", 2) == 0);
	cr_assert(f.publish->payload.len == 7 && memcmp(f.publish->payload.data, "{\"a\":1}", 7) == 0);
	cr_assert(f.publish->has_partition && f.publish->partition == 1);
	cr_assert_eq(f.publish->n_headers, 1); /* one value coerced to a list */
	cr_assert_str_eq(f.publish->headers[0]->key, "x-id");
	cr_assert(f.publish->headers[0]->value.len == 1 && f.publish->headers[0]->value.data[0] == '7');
	ack.partition = 1;
	ack.offset = 42;
	a.body_case = SLUICE__FRAME__BODY_PUBLISH_ACK;
	a.publish_ack = &ack;
	gql_exec_answer(q, &a);
	cr_assert_eq(gql_exec_next(q, &f), 0);
	result_is(q, "{\"data\":{\"r\":{\"partition\":1,\"offset\":\"42\",\"t\":\"orders\"}}}");
	gql_req_free(q);
}

Test(gql_exec, publish_bad_arguments_fail_without_a_frame)
{
	struct gql_req *q = prepare_ok("mutation { publish(topic: \"\", payload: \"x\") { offset } }", NULL, NULL);
	Sluice__Frame f;

	cr_assert_eq(gql_exec_next(q, &f), 0);
	json_t *r = gql_exec_result(q);
	cr_assert(json_is_null(json_object_get(r, "data")));
	cr_assert(strstr(json_string_value(json_object_get(json_array_get(json_object_get(r, "errors"), 0), "message")),
	                 "topic name"));
	json_decref(r);
	gql_req_free(q);
	q = prepare_ok("mutation { publish(topic: \"t\", payload: \"x\", partition: -1) { offset } }", NULL, NULL);
	cr_assert_eq(gql_exec_next(q, &f), 0);
	gql_req_free(q);
}

Test(gql_exec, subscription_frame_and_messages)
{
	struct gql_req *q = prepare_ok("subscription S($t: String!) { m: messages(topic: $t, from: \"@1700000000000\","
	                               " partitions: [0, 2], group: \"g\") { offset payload json headers { name value }"
	                               " key __typename } }",
	                               NULL, "{\"t\":\"orders\"}");
	Sluice__Frame f;
	Sluice__Message m = SLUICE__MESSAGE__INIT;
	Sluice__Header h1 = SLUICE__HEADER__INIT, h2 = SLUICE__HEADER__INIT, *hs[2] = {&h1, &h2};
	json_t *errors = NULL, *r;
	char *got;

	cr_assert_eq(gql_req_kind(q), GQL_SUBSCRIPTION);
	cr_assert_eq(gql_sub_frame(q, &f, &errors), 0);
	cr_assert_eq(f.body_case, SLUICE__FRAME__BODY_SUBSCRIBE);
	cr_assert_str_eq(f.subscribe->topic, "orders");
	cr_assert_eq(f.subscribe->start, SLUICE__START_AT__TIMESTAMP);
	cr_assert_eq(f.subscribe->timestamp_ms, 1700000000000ll);
	cr_assert(f.subscribe->n_partitions == 2 && f.subscribe->partitions[1] == 2);
	cr_assert_str_eq(f.subscribe->group, "g");
	cr_assert(f.subscribe->credit > 1000000);

	m.topic = "orders";
	m.offset = 5;
	m.payload.data = (uint8_t *)"{\"a\":[1,2]}";
	m.payload.len = 11;
	h1.key = "ok";
	h1.value.data = (uint8_t *)"v";
	h1.value.len = 1;
	h2.key = "bin";
	h2.value.data = (uint8_t *)"\xff";
	h2.value.len = 1;
	m.n_headers = 2;
	m.headers = hs;
	r = gql_sub_message(q, &m);
	got = json_dumps(r, JSON_COMPACT);
	cr_assert_str_eq(got, "{\"data\":{\"m\":{\"offset\":\"5\",\"payload\":\"{\\\"a\\\":[1,2]}\",\"json\":{\"a\":[1,2]},"
	                      "\"headers\":[{\"name\":\"ok\",\"value\":\"v\"}],\"key\":null,\"__typename\":\"Message\"}}}");
	free(got);
	json_decref(r);
	/* a payload that is neither JSON nor UTF-8 */
	m.payload.data = (uint8_t *)"\x80x";
	m.payload.len = 2;
	m.n_headers = 0;
	r = gql_sub_message(q, &m);
	cr_assert(json_is_null(json_object_get(json_object_get(json_object_get(r, "data"), "m"), "payload")));
	cr_assert(json_is_null(json_object_get(json_object_get(json_object_get(r, "data"), "m"), "json")));
	json_decref(r);
	gql_req_free(q);

	q = prepare_ok("subscription { messages(topic: \"t\", from: \"yesterday\") { offset } }", NULL, NULL);
	cr_assert_eq(gql_sub_frame(q, &f, &errors), -1);
	cr_assert(strstr(json_string_value(json_object_get(json_array_get(errors, 0), "message")), "from must be"));
	json_decref(errors);
	gql_req_free(q);
	q = prepare_ok("subscription { messages(topic: \"t\") { offset } }", NULL, NULL);
	cr_assert_eq(gql_sub_frame(q, &f, &errors), 0);
	cr_assert_eq(f.subscribe->start, SLUICE__START_AT__LATEST);
	cr_assert_eq(f.subscribe->n_partitions, 0);
	gql_req_free(q);
}

Test(gql_sdl, prints_the_schema)
{
	const char *s = gql_sdl();

	cr_assert(strstr(s, "type Query {\n  topics: [Topic!]!\n  topic(name: String!): Topic\n  cluster: Cluster!\n}"));
	cr_assert(strstr(s, "  publish(topic: String!, key: String, headers: [HeaderInput!], payload: String!, partition: "
	                    "Int): PublishResult!\n"));
	cr_assert(strstr(s, "  messages(topic: String!, from: String, partitions: [Int!], group: String): Message!\n"));
	cr_assert(strstr(s, "input HeaderInput {\n  name: String!\n  value: String!\n}"));
	cr_assert(strstr(s, "scalar JSON"));
	cr_assert_null(strstr(s, "scalar String"));
	/* the SDL is itself valid GraphQL text: our lexer accepts every token of it */
	cr_assert(strstr(s, "  json: JSON\n"));
}

/* ---------- graphql-transport-ws messages ---------- */

static void ws_bad(const char *txt, const char *why_part)
{
	struct gql_ws_msg m;
	const char *why = NULL;

	cr_assert_eq(gql_ws_decode((const uint8_t *)txt, strlen(txt), &m, &why), -1, "decoded %s", txt);
	cr_assert(why && strstr(why, why_part), "%s: %s", txt, why ? why : "(null)");
	cr_assert(strlen(why) <= 123);
}

Test(gql_wsmsg, decode)
{
	struct gql_ws_msg m;
	const char *why = NULL;
	const char *sub = "{\"type\":\"subscribe\",\"id\":\"1\",\"payload\":{\"query\":\"{ topics { name } }\","
	                  "\"variables\":{\"a\":1},\"operationName\":null,\"extensions\":{}}}";

	cr_assert_eq(gql_ws_decode((const uint8_t *)sub, strlen(sub), &m, &why), 0);
	cr_assert_eq(m.type, GQL_WS_SUBSCRIBE);
	cr_assert_str_eq(m.id, "1");
	cr_assert_str_eq(m.query, "{ topics { name } }");
	cr_assert_null(m.operation_name);
	cr_assert(json_is_object(m.variables));
	gql_ws_msg_clear(&m);
	cr_assert_eq(gql_ws_decode((const uint8_t *)"{\"type\":\"connection_init\",\"payload\":null}", 41, &m, &why), 0);
	cr_assert_eq(m.type, GQL_WS_CONNECTION_INIT);
	gql_ws_msg_clear(&m);

	ws_bad("[1]", "not a JSON object");
	ws_bad("{\"type\":\"subscribe\"", "not a JSON object");
	ws_bad("{\"type\":\"hello\"}", "unknown \"type\"");
	ws_bad("{\"id\":\"1\"}", "unknown \"type\"");
	ws_bad("{\"type\":\"subscribe\",\"id\":\"\",\"payload\":{\"query\":\"{a}\"}}", "\"id\" must be");
	ws_bad("{\"type\":\"subscribe\",\"id\":1,\"payload\":{\"query\":\"{a}\"}}", "\"id\" must be");
	ws_bad("{\"type\":\"subscribe\",\"id\":\"1\",\"payload\":{}}", "payload.query");
	ws_bad("{\"type\":\"subscribe\",\"id\":\"1\",\"payload\":{\"query\":\"{a}\",\"variables\":[]}}", "wrong type");
	ws_bad("{\"type\":\"complete\"}", "\"id\" must be");
	ws_bad("{\"type\":\"ping\",\"payload\":5}", "must be an object");
	ws_bad("{\"type\":\"ping\",\"type\":\"pong\"}", "not a JSON object");
}
