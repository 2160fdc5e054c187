/*
 * gql.h: GraphQL over the broker: a parser of the executable-document
 * subset (gql_parse.c), the schema, its validator and the executor that
 * maps root fields to native request frames and renders their answers
 * (gql_exec.c), and the decoding of graphql-transport-ws messages
 * (gql_wsmsg.c). Nothing here does I/O: the HTTP route (gql_http.c) and the
 * WebSocket subprotocol (gql_ws.c) send the frames and feed the answers.
 *
 * Limits are checked before anything is allocated: the document is lexed
 * once to count its tokens, then parsed into one arena sized from that count
 * (every node of the tree comes from a distinct token).
 */
#ifndef SLUICE_GQL_H
#define SLUICE_GQL_H

#include <stddef.h>
#include <stdint.h>

#include "sluice.pb-c.h"

struct json_t;

#define GQL_DOC_BYTES_MAX 65536  /* bytes of a document */
#define GQL_TOKENS_MAX 4096      /* lexical tokens of a document */
#define GQL_DEPTH_MAX 10         /* nested selection sets (and list/object literals, list types) */
#define GQL_WIDTH_MAX 64         /* fields in one selection set */
#define GQL_ARGS_MAX 16          /* arguments of one field, fields of one object literal */
#define GQL_VARS_MAX 32          /* variable definitions of one operation */
#define GQL_OPS_MAX 16           /* operations in one document */
#define GQL_ERRORS_MAX 16        /* validation errors reported for one request */
#define GQL_PUB_HEADERS_MAX 64   /* headers of one publish */
#define GQL_PARTITIONS_MAX 4096  /* partitions named by one subscription */

enum gql_op_kind { GQL_QUERY = 0, GQL_MUTATION, GQL_SUBSCRIPTION };

struct gql_loc {
	uint32_t line, column; /* 1-based; columns count code points */
};

enum gql_vkind { GV_VAR, GV_INT, GV_FLOAT, GV_STRING, GV_BOOL, GV_NULL, GV_ENUM, GV_LIST, GV_OBJECT };

struct gql_value {
	enum gql_vkind kind;
	struct gql_loc loc;
	const char *s;             /* name (VAR, ENUM), text (INT, FLOAT), decoded STRING */
	size_t len;                /* bytes of s (a STRING may hold NUL bytes) */
	int b;                     /* BOOL */
	struct gql_value *items;   /* LIST items, OBJECT field values (linked by next) */
	const char *key;           /* as an OBJECT field: its name */
	struct gql_loc key_loc;
	uint32_t n;                /* items */
	struct gql_value *next;
};

struct gql_arg {
	const char *name;
	struct gql_loc loc;
	struct gql_value *value;
	struct gql_arg *next;
};

struct gql_field {
	const char *alias;         /* the response name: alias, or name */
	const char *name;
	struct gql_loc loc;
	struct gql_arg *args;
	uint32_t nargs;
	struct gql_field *sel;     /* NULL: no selection set */
	uint32_t nsel;
	struct gql_field *next;
};

struct gql_type {
	const char *name;          /* named type, or NULL for a list */
	struct gql_type *of;       /* list item type */
	int nonnull;
	struct gql_loc loc;
};

struct gql_vardef {
	const char *name;
	struct gql_loc loc;
	struct gql_type *type;
	struct gql_value *def;     /* default, or NULL */
	struct gql_vardef *next;
};

struct gql_op {
	enum gql_op_kind kind;
	const char *name;          /* NULL: anonymous */
	struct gql_loc loc;
	struct gql_vardef *vars;
	uint32_t nvars;
	struct gql_field *sel;
	uint32_t nsel;
	struct gql_op *next;
};

struct gql_doc {
	struct gql_op *ops;
	uint32_t nops;
	void *arena;               /* every node and string of the document */
};

struct gql_error {
	char message[256];
	struct gql_loc loc;
};

/* ---------- gql_parse.c ---------- */

/* Parse an executable document. 0 and *out (free with gql_doc_free), or -1
 * and *err filled (syntax, a limit, or what is not supported: fragments,
 * directives, type definitions). */
int gql_parse(const char *src, size_t n, struct gql_doc **out, struct gql_error *err);
void gql_doc_free(struct gql_doc *d);

/* ---------- gql_exec.c ---------- */

/* A request: document, the chosen operation, its coerced variables, and the
 * progress of its execution. */
struct gql_req;

/* Parse, choose the operation (op_name may be NULL), validate it against the
 * schema and coerce variables (a JSON object or NULL). 0 and *out, or -1 and
 * *errors (a JSON array of GraphQL errors, the caller's). */
int gql_prepare(const char *src, size_t n, const char *op_name, struct json_t *variables, struct gql_req **out,
                struct json_t **errors);
void gql_req_free(struct gql_req *q);
enum gql_op_kind gql_req_kind(const struct gql_req *q);

/* Query and mutation: the native request of the next root field that needs
 * one, into *f (its storage is q's until the next call). 1 if *f was
 * filled, 0 when every root field is resolved. f->id is left 0. */
int gql_exec_next(struct gql_req *q, Sluice__Frame *f);
/* The native answer to the frame gql_exec_next gave last. */
void gql_exec_answer(struct gql_req *q, const Sluice__Frame *ans);
/* {"data":..., "errors":[...]} once gql_exec_next said 0 (a new reference). */
struct json_t *gql_exec_result(struct gql_req *q);

/* Subscription: the native Subscribe of its one root field into *f. 0, or
 * -1 and *errors (an argument that is valid GraphQL but not a valid start:
 * a bad `from`, a bad topic name). */
int gql_sub_frame(struct gql_req *q, Sluice__Frame *f, struct json_t **errors);
/* One delivered message as an execution result {"data":{...}} with only the
 * selected fields (a new reference, NULL when out of memory). */
struct json_t *gql_sub_message(const struct gql_req *q, const Sluice__Message *m);
/* A native error as the errors of an execution result (a new reference). */
struct json_t *gql_native_errors(const struct gql_req *q, const Sluice__Error *e);

/* One GraphQL error {"message","locations","extensions":{"code"}}. */
struct json_t *gql_error_json(const char *message, const struct gql_loc *loc, const char *code);

/* The schema in SDL (static text). */
const char *gql_sdl(void);

/* ---------- gql_wsmsg.c: graphql-transport-ws messages ---------- */

enum gql_ws_type {
	GQL_WS_CONNECTION_INIT = 1,
	GQL_WS_CONNECTION_ACK,
	GQL_WS_PING,
	GQL_WS_PONG,
	GQL_WS_SUBSCRIBE,
	GQL_WS_NEXT,
	GQL_WS_ERROR,
	GQL_WS_COMPLETE,
};

#define GQL_WS_ID_BYTES_MAX 128
#define GQL_WS_INIT_TIMEOUT_MS 3000 /* graphql-ws's connectionInitWaitTimeout default */

/* How long a session may wait before connection_init (tests shorten it). */
extern uint32_t gql_ws_init_timeout_ms;

/* gql_ws.c: the subprotocol, for the WebSocket layer's table (ws.h). */
struct ws_subproto;
extern const struct ws_subproto gql_ws_subproto;

struct gql_ws_msg {
	enum gql_ws_type type;
	char id[GQL_WS_ID_BYTES_MAX + 1];   /* subscribe, complete (and next/error) */
	struct json_t *msg;                 /* the whole message (owned) */
	struct json_t *payload;             /* borrowed from msg, or NULL */
	/* subscribe */
	const char *query;                  /* borrowed from msg */
	size_t query_len;
	const char *operation_name;         /* NULL if absent or null */
	struct json_t *variables;           /* borrowed, an object, or NULL */
};

/* Decode one text message. 0, or -1 with why (a static string naming the
 * problem, the reason of a 4400 close). */
int gql_ws_decode(const uint8_t *p, size_t n, struct gql_ws_msg *m, const char **why);
void gql_ws_msg_clear(struct gql_ws_msg *m);

#endif
