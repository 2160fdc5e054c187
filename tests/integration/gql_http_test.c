#define _GNU_SOURCE
/*
 * gql_http_test.c: GraphQL over HTTP on a real sluiced, over raw sockets:
 * the SDL on GET /v1/graphql, a publish mutation answered after commit and
 * the message read back (REST and GraphQL), queries with aliases and
 * variables, application/graphql bodies, and the refusals (validation
 * errors with 200, bodies that are not requests with 400 or 415,
 * subscriptions over POST, a native error as a GraphQL error).
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static struct itest_node node;

static void setup(void)
{
	cr_assert_eq(itest_node_init(&node), 0);
	cr_assert_eq(itest_node_start(&node), 0);
}

static void teardown(void)
{
	itest_node_destroy(&node);
}

TestSuite(gql_http, .init = setup, .fini = teardown, .timeout = 120);

struct resp {
	int status;
	char head[4096];
	char *body;
	json_t *json;
};

/* One request on a new connection; the whole response within a bounded wait. */
static void request(const char *method, const char *path, const char *ctype, const char *body, struct resp *r)
{
	char raw[16384], buf[1 << 16];
	size_t len = 0, bl = 0, hl;
	long long deadline = itest_now_ms() + 10000;
	int fd = itest_connect(node.http_port);
	char *end = NULL, *cl;

	memset(r, 0, sizeof(*r));
	cr_assert(fd >= 0);
	snprintf(raw, sizeof(raw), "%s %s HTTP/1.1\r\nHost: x\r\n%s%s%sContent-Length: %zu\r\n\r\n%s", method, path,
	         ctype ? "Content-Type: " : "", ctype ? ctype : "", ctype ? "\r\n" : "", strlen(body), body);
	cr_assert_eq(itest_send_raw(fd, raw, strlen(raw)), 0);
	for (;;) {
		struct pollfd p = {fd, POLLIN, 0};
		ssize_t n;
		buf[len] = 0;
		if (!end && (end = strstr(buf, "\r\n\r\n"))) {
			hl = (size_t)(end - buf) + 4;
			if ((cl = strcasestr(buf, "\r\nContent-Length: ")))
				bl = strtoul(cl + 18, NULL, 10);
		}
		if (end && len >= hl + bl)
			break;
		cr_assert(itest_now_ms() < deadline && len < sizeof(buf) - 1, "no whole response to %s %s", method, path);
		if (poll(&p, 1, 1000) <= 0)
			continue;
		n = read(fd, buf + len, sizeof(buf) - 1 - len);
		cr_assert(n > 0, "connection closed");
		len += (size_t)n;
	}
	close(fd);
	memcpy(r->head, buf, hl < sizeof(r->head) - 1 ? hl : sizeof(r->head) - 1);
	sscanf(r->head, "HTTP/1.1 %d", &r->status);
	r->body = strndup(buf + hl, bl);
	r->json = json_loads(r->body, 0, NULL);
}

static void resp_free(struct resp *r)
{
	free(r->body);
	json_decref(r->json);
}

static void gql(const char *query, const char *vars, struct resp *r)
{
	json_t *b = json_pack("{s:s}", "query", query);
	char *s;

	if (vars)
		json_object_set_new(b, "variables", json_loads(vars, 0, NULL));
	s = json_dumps(b, JSON_COMPACT);
	request("POST", "/v1/graphql", "application/json", s, r);
	free(s);
	json_decref(b);
}

/* The JSON at a path of object keys and array indexes ("data.a.0.b"). */
static json_t *at(json_t *j, const char *path)
{
	char p[256], *save = NULL;

	snprintf(p, sizeof(p), "%s", path);
	for (char *k = strtok_r(p, ".", &save); j && k; k = strtok_r(NULL, ".", &save))
		j = json_is_array(j) ? json_array_get(j, strtoul(k, NULL, 10)) : json_object_get(j, k);
	return j;
}

static const char *str_at(json_t *j, const char *path)
{
	const char *s = json_string_value(at(j, path));
	cr_assert_not_null(s, "no string at %s", path);
	return s;
}

static void create_topic(const char *name, int parts)
{
	char path[256], body[64];
	struct resp r;

	snprintf(path, sizeof(path), "/v1/topics/%s", name);
	snprintf(body, sizeof(body), "{\"partitions\":%d}", parts);
	request("PUT", path, "application/json", body, &r);
	cr_assert_eq(r.status, 201, "%s", r.body);
	resp_free(&r);
}

Test(gql_http, sdl_on_get)
{
	struct resp r;

	request("GET", "/v1/graphql", NULL, "", &r);
	cr_assert_eq(r.status, 200);
	cr_assert(strcasestr(r.head, "Content-Type: text/plain"));
	cr_assert(strstr(r.body, "type Query {\n  topics: [Topic!]!\n"));
	cr_assert(strstr(r.body, "type Subscription {\n  messages(topic: String!, from: String, partitions: [Int!], group: "
	                         "String): Message!\n}"));
	resp_free(&r);
}

Test(gql_http, publish_mutation_then_read_back)
{
	struct resp r;

	create_topic("orders", 2);
	for (int i = 0; i < 2; i++) {
		gql("mutation Pub($p: String!, $h: [HeaderInput!]) { r: publish(topic: \"orders\", key: \"k\", payload: $p,"
		    " headers: $h, partition: 1) { partition offset topic } }",
		    i == 0 ? "{\"p\":\"{\\\"n\\\":1}\",\"h\":[{\"name\":\"x-id\",\"value\":\"a1\"}]}" : "{\"p\":\"two\"}", &r);
		cr_assert_eq(r.status, 200, "%s", r.body);
		cr_assert_null(at(r.json, "errors"), "%s", r.body);
		cr_assert_eq(json_integer_value(at(r.json, "data.r.partition")), 1);
		cr_assert_str_eq(str_at(r.json, "data.r.offset"), i == 0 ? "0" : "1");
		cr_assert_str_eq(str_at(r.json, "data.r.topic"), "orders");
		resp_free(&r);
	}
	/* REST reads the message the mutation stored */
	request("GET", "/v1/topics/orders/messages/1/0", NULL, "", &r);
	cr_assert_eq(r.status, 200);
	cr_assert_str_eq(r.body, "{\"n\":1}");
	cr_assert(strcasestr(r.head, "Sluice-Header-x-id: a1"), "%s", r.head);
	cr_assert(strcasestr(r.head, "Sluice-Key: k"));
	resp_free(&r);
	/* and GraphQL sees the new end offsets, only the selected fields, under aliases */
	gql("query ($n: String!) { t: topic(name: $n) { name ends: endOffsets } none: topic(name: \"nope\") { name }"
	    " topics { name partitions } }",
	    "{\"n\":\"orders\"}", &r);
	cr_assert_eq(r.status, 200, "%s", r.body);
	cr_assert_str_eq(r.body, "{\"data\":{\"t\":{\"name\":\"orders\",\"ends\":[\"0\",\"2\"]},\"none\":null,"
	                         "\"topics\":[{\"name\":\"orders\",\"partitions\":2}]}}");
	resp_free(&r);
}

Test(gql_http, cluster_and_application_graphql)
{
	struct resp r;

	request("POST", "/v1/graphql", "application/graphql", "{ cluster { leader nodes { id role } } __typename }", &r);
	cr_assert_eq(r.status, 200, "%s", r.body);
	cr_assert_eq(json_integer_value(at(r.json, "data.cluster.leader")), json_integer_value(at(r.json, "data.cluster.nodes.0.id")));
	cr_assert_str_eq(str_at(r.json, "data.cluster.nodes.0.role"), "single");
	cr_assert_str_eq(str_at(r.json, "data.__typename"), "Query");
	resp_free(&r);
}

Test(gql_http, errors)
{
	struct resp r;

	gql("{ topics { name size } }", NULL, &r);
	cr_assert_eq(r.status, 200);
	cr_assert_null(at(r.json, "data"));
	cr_assert_str_eq(str_at(r.json, "errors.0.message"), "Cannot query field \"size\" on type \"Topic\".");
	cr_assert_eq(json_integer_value(at(r.json, "errors.0.locations.0.column")), 17);
	cr_assert_str_eq(str_at(r.json, "errors.0.extensions.code"), "GRAPHQL_VALIDATION_FAILED");
	resp_free(&r);

	gql("{ topics { ...F } }", NULL, &r);
	cr_assert_eq(r.status, 200);
	cr_assert_str_eq(str_at(r.json, "errors.0.message"), "fragments are not supported");
	resp_free(&r);

	gql("subscription { messages(topic: \"t\") { offset } }", NULL, &r);
	cr_assert_eq(r.status, 200);
	cr_assert(strstr(str_at(r.json, "errors.0.message"), "WebSocket"));
	resp_free(&r);

	gql("mutation { publish(topic: \"missing\", payload: \"x\") { offset } }", NULL, &r);
	cr_assert_eq(r.status, 200);
	cr_assert(json_is_null(at(r.json, "data")));
	cr_assert_str_eq(str_at(r.json, "errors.0.extensions.code"), "NO_SUCH_TOPIC");
	cr_assert_str_eq(str_at(r.json, "errors.0.path.0"), "publish");
	resp_free(&r);

	request("POST", "/v1/graphql", "application/json", "{\"query\": 5}", &r);
	cr_assert_eq(r.status, 400);
	cr_assert_not_null(at(r.json, "errors.0.message"));
	resp_free(&r);
	request("POST", "/v1/graphql", "application/json", "not json", &r);
	cr_assert_eq(r.status, 400);
	resp_free(&r);
	request("POST", "/v1/graphql", "text/plain", "{ topics { name } }", &r);
	cr_assert_eq(r.status, 415);
	resp_free(&r);
	request("DELETE", "/v1/graphql", NULL, "", &r);
	cr_assert_eq(r.status, 405);
	resp_free(&r);
}
