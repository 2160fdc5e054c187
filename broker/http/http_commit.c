/*
 * http_commit.c: POST /v1/groups/{group}/offsets. The body is one commit
 * {"topic": T, "partition": P, "offset": O} (O: the next offset to
 * consume) or a JSON array of them, at most HTTP_COMMITS_MAX.
 *
 * Every entry is checked before any is sent. Each then becomes one native
 * CommitOffset through the frontend's one request path (ring, pending
 * table, epochs), as many in flight at once as the ring and inflight_max
 * allow; the rest are sent by the connection's pump timer as room comes
 * back, never from inside an answer's callback (that runs inside the log
 * writer's acks). The request is answered once every entry is answered:
 * 200 naming them all, or the problem+json of the first entry, in array
 * order, that failed. Entries are independent: one that fails does not
 * undo the others (commit them again; a commit is idempotent).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <jansson.h>

#include "config.h"
#include "err.h"
#include "http_int.h"
#include "ringmsg.h"
#include "sl_assert.h"

#define COMMIT_PUMP_RETRY_MS 1

struct http_commit_ent {
	uint64_t id;            /* native request id once sent, else 0 */
	const char *topic;      /* in commits->body */
	uint32_t partition;
	uint64_t offset;
	int answered;
	int err;                /* sl_err of the native answer, 0 if Ok */
	char *why;              /* its message (malloc'd), when err != 0 */
};

struct http_commits {
	json_t *body;           /* owns the topic strings */
	int array;              /* the array form: answer with "offsets" */
	int pumping;            /* inside http_commits_pump: answer after it */
	uint32_t n, nsent, nanswered;
	struct http_commit_ent ents[];
};

void http_commits_free(struct http_commits *m)
{
	for (uint32_t i = 0; i < m->n; i++)
		free(m->ents[i].why);
	json_decref(m->body);
	free(m);
}

/* The body as checked entries (NULL and answered 415, 400 otherwise). */
static struct http_commits *commits_parse(struct http_req *r)
{
	size_t len = evbuffer_get_length(r->body);
	struct http_commit_in *ins = NULL;
	struct http_commits *m;
	uint32_t n = 0;
	int array = 0, rc;
	json_t *j = NULL;
	char why[160];

	if (!http_json_ctype(r))
		return NULL;
	rc = http_commits_decode(len ? (const char *)evbuffer_pullup(r->body, -1) : "", len, &j, &ins, &n, &array, why,
	                         sizeof(why));
	if (rc != SL_OK) {
		http_problem(r, rc == SL_ENOMEM ? 500 : 400, rc, why);
		return NULL;
	}
	if (!(m = calloc(1, sizeof(*m) + n * sizeof(m->ents[0])))) {
		json_decref(j);
		free(ins);
		http_problem(r, 500, SL_ENOMEM, "out of memory");
		return NULL;
	}
	m->body = j;
	m->array = array;
	m->n = n;
	for (uint32_t i = 0; i < n; i++) {
		m->ents[i].topic = ins[i].topic;
		m->ents[i].partition = ins[i].partition;
		m->ents[i].offset = ins[i].offset;
	}
	free(ins);
	return m;
}

static void commits_answer(struct http_req *r)
{
	struct http_commits *m = r->commits;
	json_t *arr;

	for (uint32_t i = 0; i < m->n; i++) {
		const struct http_commit_ent *e = &m->ents[i];
		if (!e->err)
			continue;
		char detail[512];
		snprintf(detail, sizeof(detail), "offsets[%u] (%s partition %u): %s", i, e->topic, e->partition,
		         e->why ? e->why : sl_strerror(e->err));
		http_problem(r, 0, e->err, m->array ? detail : e->why);
		return;
	}
	if (!m->array) {
		http_respond_json(r, 200, json_pack("{s:s,s:s,s:i,s:I}", "group", r->group, "topic", m->ents[0].topic,
		                                    "partition", (int)m->ents[0].partition, "offset",
		                                    (json_int_t)m->ents[0].offset));
		return;
	}
	arr = json_array();
	for (uint32_t i = 0; arr && i < m->n; i++)
		json_array_append_new(arr, json_pack("{s:s,s:i,s:I}", "topic", m->ents[i].topic, "partition",
		                                     (int)m->ents[i].partition, "offset", (json_int_t)m->ents[i].offset));
	http_respond_json(r, 200, json_pack("{s:s,s:o}", "group", r->group, "offsets", arr));
}

static int commit_send(struct http_req *r, struct http_commit_ent *e)
{
	Sluice__CommitOffset c = SLUICE__COMMIT_OFFSET__INIT;
	Sluice__Frame f = SLUICE__FRAME__INIT;

	c.group = r->group;
	c.topic = (char *)e->topic;
	c.partition = e->partition;
	c.offset = e->offset;
	f.body_case = SLUICE__FRAME__BODY_COMMIT_OFFSET;
	f.commit_offset = &c;
	return http_dispatch_to(r, HK_COMMITS, &f, &e->id);
}

void http_commits_pump(struct http_req *r)
{
	struct http_commits *m = r->commits;
	struct fe_conn *c = r->conn;
	struct fe *fe = c->fe;

	if (r->answered || c->dead || c->closing)
		return;
	m->pumping = 1;
	while (m->nsent < m->n && !fe->stall_frame && c->npending < fe->cfg->inflight_max) {
		struct http_commit_ent *e = &m->ents[m->nsent++];
		int rc = commit_send(r, e);
		if (rc != SL_OK && !e->answered) {
			e->answered = 1;
			e->err = rc;
			m->nanswered++;
		}
	}
	m->pumping = 0;
	if (m->nanswered == m->n)
		commits_answer(r);
	else if (m->nsent < m->n)
		http_pump_later(c, COMMIT_PUMP_RETRY_MS); /* the ring or the window is full */
}

int http_commits_owns(const struct http_req *r, uint64_t id)
{
	const struct http_commits *m = r->commits;

	for (uint32_t i = 0; m && i < m->nsent; i++)
		if (m->ents[i].id == id && !m->ents[i].answered)
			return 1;
	return 0;
}

void http_commits_frame(struct http_req *r, const Sluice__Frame *f)
{
	struct http_commits *m = r->commits;
	struct http_commit_ent *e = NULL;

	for (uint32_t i = 0; i < m->nsent && !e; i++)
		if (m->ents[i].id == f->id && !m->ents[i].answered)
			e = &m->ents[i];
	SL_ASSERT(e); /* fe_http_on_frame matched it with http_commits_owns */
	e->answered = 1;
	m->nanswered++;
	if (f->body_case == SLUICE__FRAME__BODY_ERROR) {
		e->err = (int)f->error->code ? (int)f->error->code : SL_EINTERNAL;
		e->why = strdup(f->error->message ? f->error->message : "");
	} else if (f->body_case != SLUICE__FRAME__BODY_OK) {
		e->err = SL_EINTERNAL;
	}
	if (m->pumping)
		return; /* answered synchronously while sending: the pump answers when it is done */
	if (m->nanswered == m->n)
		commits_answer(r);
}

void http_on_commit(struct http_req *r)
{
	if (http_group_param(r, r->params[0], r->group, sizeof(r->group)) < 0 || !(r->commits = commits_parse(r)))
		return;
	http_commits_pump(r);
}
