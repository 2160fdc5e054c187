/*
 * gql_fuzz.c: libFuzzer target for GraphQL (broker/http/graphql/): the first
 * byte picks the path.
 *   even: a document, then after the first NUL byte a JSON `variables`
 *         object: parse, choose the operation, validate, coerce variables,
 *         then execute against scripted native answers (an error for every
 *         other root field, a well-formed answer for the rest), or build
 *         the Subscribe and render a message with the selected fields.
 *   odd:  a graphql-transport-ws message (gql_ws_decode), and when it is a
 *         subscribe, its query as above.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "gql.h"

static void answer(struct gql_req *q, const Sluice__Frame *f, int n)
{
	Sluice__Frame a = SLUICE__FRAME__INIT;
	Sluice__Error e = SLUICE__ERROR__INIT;
	Sluice__TopicList tl = SLUICE__TOPIC_LIST__INIT;
	Sluice__TopicInfo ti = SLUICE__TOPIC_INFO__INIT, *tis[1] = {&ti};
	Sluice__PartitionInfo pi = SLUICE__PARTITION_INFO__INIT, *pis[1] = {&pi};
	Sluice__ClusterStatusResult cs = SLUICE__CLUSTER_STATUS_RESULT__INIT;
	Sluice__PublishAck ack = SLUICE__PUBLISH_ACK__INIT;

	ti.name = "t";
	ti.n_partitions = 1;
	ti.partitions = pis;
	tl.n_topics = 1;
	tl.topics = tis;
	cs.role = "single";
	e.code = (n & 2) ? SLUICE__ERROR_CODE__NO_SUCH_TOPIC : SLUICE__ERROR_CODE__UNAVAILABLE;
	e.message = "no";
	if (n & 1) {
		a.body_case = SLUICE__FRAME__BODY_ERROR;
		a.error = &e;
	} else if (f->body_case == SLUICE__FRAME__BODY_LIST_TOPICS) {
		a.body_case = SLUICE__FRAME__BODY_TOPIC_LIST;
		a.topic_list = &tl;
	} else if (f->body_case == SLUICE__FRAME__BODY_DESCRIBE_TOPIC) {
		a.body_case = SLUICE__FRAME__BODY_TOPIC_INFO;
		a.topic_info = &ti;
	} else if (f->body_case == SLUICE__FRAME__BODY_CLUSTER_STATUS) {
		a.body_case = SLUICE__FRAME__BODY_CLUSTER_STATUS_RESULT;
		a.cluster_status_result = &cs;
	} else {
		a.body_case = SLUICE__FRAME__BODY_PUBLISH_ACK;
		a.publish_ack = &ack;
	}
	gql_exec_answer(q, &a);
}

static void run(const char *src, size_t n, const char *op, json_t *vars)
{
	struct gql_req *q = NULL;
	json_t *errors = NULL, *r;
	Sluice__Frame f;
	int i = 0;

	if (gql_prepare(src, n, op, vars, &q, &errors) < 0) {
		if (!json_is_array(errors) || json_array_size(errors) == 0)
			abort(); /* a refusal always says why */
		json_decref(errors);
		return;
	}
	if (gql_req_kind(q) == GQL_SUBSCRIPTION) {
		Sluice__Message m = SLUICE__MESSAGE__INIT;
		m.topic = "t";
		m.payload.data = (uint8_t *)"{\"a\":1}";
		m.payload.len = 7;
		if (gql_sub_frame(q, &f, &errors) == 0)
			json_decref(gql_sub_message(q, &m));
		json_decref(errors);
	} else {
		while (gql_exec_next(q, &f))
			answer(q, &f, i++);
		r = gql_exec_result(q);
		if (!r)
			abort();
		json_decref(r);
	}
	gql_req_free(q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gql_ws_msg m;
	const char *why;

	if (size == 0)
		return 0;
	if (data[0] & 1) {
		if (gql_ws_decode(data + 1, size - 1, &m, &why) == 0) {
			if (m.type == GQL_WS_SUBSCRIBE)
				run(m.query, m.query_len, m.operation_name, m.variables);
			gql_ws_msg_clear(&m);
		} else if (!why || strlen(why) > 123) {
			abort(); /* the reason of a close frame */
		}
		return 0;
	}
	const char *src = (const char *)data + 1;
	const uint8_t *nul = memchr(src, 0, size - 1);
	size_t n = nul ? (size_t)(nul - (const uint8_t *)src) : size - 1;
	json_t *vars = nul ? json_loadb((const char *)nul + 1, size - 1 - n - 1, 0, NULL) : NULL;
	run(src, n, NULL, vars);
	json_decref(vars);
	return 0;
}
