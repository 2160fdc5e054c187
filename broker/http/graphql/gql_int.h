/*
 * gql_int.h: what gql_schema.c (validation, variables) and gql_exec.c
 * (execution, rendering) share.
 */
#ifndef SLUICE_GQL_INT_H
#define SLUICE_GQL_INT_H

#include <jansson.h>

#include "gql.h"

struct gql_req {
	struct gql_doc *doc;
	struct gql_op *op;
	json_t *vars;              /* coerced variables */
	/* execution */
	struct gql_field *cur;     /* the root field whose answer is awaited */
	struct gql_field *next;    /* the next root field to run */
	json_t *data, *errors;
	int data_null;             /* a non-null root field failed */
	json_t *args;              /* argument values of the frame out (its strings) */
	union {
		Sluice__ListTopics list;
		Sluice__DescribeTopic describe;
		Sluice__ClusterStatus cluster;
		Sluice__Subscribe sub;
	} m;
	Sluice__Publish pub;
	Sluice__Header hdrs[GQL_PUB_HEADERS_MAX];
	Sluice__Header *hptrs[GQL_PUB_HEADERS_MAX];
	uint32_t parts[GQL_PARTITIONS_MAX];
};

/* A literal as JSON, variables substituted (NULL: an absent variable). */
json_t *gql_literal_json(const struct gql_value *val, json_t *vars);

#endif
