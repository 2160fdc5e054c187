/*
 * gql_http.c: GraphQL over HTTP at /v1/graphql (the GraphQL-over-HTTP
 * conventions, application/json responses):
 *
 *   POST, application/json {query, variables, operationName}, or
 *   application/graphql (the body is the query): 200 with {"data","errors"}
 *   for every GraphQL error (syntax, validation, variables, execution); 400
 *   when the body is not such a request; 415 for another content type.
 *   Subscriptions are refused (WebSocket, graphql-transport-ws, serves them).
 *   GET without Upgrade: the schema in SDL. (A GET with Upgrade: websocket
 *   is taken by the WebSocket layer before routing.)
 *
 * Root fields run one after the other (gql_exec.c): each native answer comes
 * back through http_answer_frame and the next field's request goes out.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <jansson.h>

#include "err.h"
#include "gql.h"
#include "http_int.h"

static void respond_errors(struct http_req *r, int status, const char *msg)
{
	http_respond_json(r, status, json_pack("{s:[o]}", "errors", gql_error_json(msg, NULL, "BAD_REQUEST")));
}

static int ctype_is(const char *ct, size_t n, const char *want)
{
	size_t w = strlen(want);

	return ct && n >= w && strncasecmp(ct, want, w) == 0 && (n == w || ct[w] == ';' || ct[w] == ' ');
}

/* Send the next root field's request, or answer with the result. */
static void run(struct http_req *r)
{
	Sluice__Frame f;
	int rc;

	if (!gql_exec_next(r->gql, &f)) {
		http_respond_json(r, 200, gql_exec_result(r->gql));
		return;
	}
	if ((rc = http_dispatch(r, HK_GRAPHQL, &f)) != SL_OK)
		http_problem(r, 500, SL_EINTERNAL, sl_strerror(rc));
}

void gql_http_frame(struct http_req *r, const Sluice__Frame *f)
{
	if (!r->gql || r->answered)
		return;
	gql_exec_answer(r->gql, f);
	run(r);
}

/* The request's query, operation name and variables: 0, or answered. */
static int read_request(struct http_req *r, json_t **body, const char **query, size_t *qlen, const char **op,
                        json_t **vars)
{
	size_t len = evbuffer_get_length(r->body), ctl = 0;
	const char *ct = http_req_header(r, "content-type", &ctl);
	const char *p = (const char *)evbuffer_pullup(r->body, -1);
	json_t *q, *o, *v;

	*body = NULL;
	*op = NULL;
	*vars = NULL;
	if (ctype_is(ct, ctl, "application/graphql")) {
		*query = p ? p : "";
		*qlen = len;
		return 0;
	}
	if (!ctype_is(ct, ctl, "application/json")) {
		respond_errors(r, 415, "the body must be application/json ({query, variables, operationName}) or "
		                       "application/graphql");
		return -1;
	}
	if (!(*body = json_loadb(p ? p : "", len, JSON_REJECT_DUPLICATES, NULL)) || !json_is_object(*body)) {
		respond_errors(r, 400, "the body is not a JSON object");
		return -1;
	}
	q = json_object_get(*body, "query");
	o = json_object_get(*body, "operationName");
	v = json_object_get(*body, "variables");
	if (!json_is_string(q) || (o && !json_is_null(o) && !json_is_string(o)) ||
	    (v && !json_is_null(v) && !json_is_object(v))) {
		respond_errors(r, 400, "\"query\" must be a string, \"operationName\" a string or null, \"variables\" an "
		                       "object or null");
		return -1;
	}
	*query = json_string_value(q);
	*qlen = json_string_length(q);
	*op = json_string_value(o);
	*vars = json_is_object(v) ? v : NULL;
	return 0;
}

void gql_http_post(struct http_req *r)
{
	json_t *body = NULL, *vars, *errors = NULL;
	const char *query, *op;
	size_t qlen;

	if (read_request(r, &body, &query, &qlen, &op, &vars) < 0)
		goto out;
	if (gql_prepare(query, qlen, op, vars, &r->gql, &errors) < 0) {
		http_respond_json(r, 200, json_pack("{s:o}", "errors", errors));
		goto out;
	}
	if (gql_req_kind(r->gql) == GQL_SUBSCRIPTION) {
		http_respond_json(r, 200,
		                  json_pack("{s:[o]}", "errors",
		                            gql_error_json("subscriptions are served over WebSocket: connect to /v1/graphql "
		                                           "with the graphql-transport-ws subprotocol",
		                                           NULL, "SUBSCRIPTION_OVER_HTTP")));
		goto out;
	}
	run(r);
out:
	json_decref(body);
}

void gql_http_sdl(struct http_req *r)
{
	const char *s = gql_sdl();

	http_respond(r, 200, "text/plain; charset=utf-8", s, strlen(s));
}
