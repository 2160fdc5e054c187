/*
 * raft.c: the consensus state machine of raft.h, after etcd-io/raft.
 *
 * The log is an array of entries after (snap_index, snap_term); entries with
 * an index above `stable` have not been persisted yet and go out in the next
 * ready. The leader counts its own match as `stable`, so an entry commits only
 * once a quorum, the leader included, has it on disk.
 *
 * Outgoing messages are queued with the index of their first entry, not a
 * pointer: the log array moves when it grows, so pointers are resolved when
 * the ready is built. A queued APPEND whose entries were truncated is dropped
 * (its content would no longer be what the leader of its term sent); one whose
 * entries were compacted is dropped at ready time, and a queued SNAPSHOT is
 * updated to the latest compaction. Dropping an outgoing message
 * is always safe: raft recovers from it as from a network loss.
 *
 * Defaults: inflight_max 0 means 64 (and more than RAFT_INFLIGHT_CAP is
 * clamped), msg_bytes_max 0 means 1 MiB.
 *
 * Nothing from the network is asserted on: raft_step checks a message before
 * it touches any state and returns SL_EINVAL for nonsense.
 */
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "raft.h"
#include "sl_assert.h"
#include "vec.h"

#define RAFT_INFLIGHT_CAP 256
#define RAFT_INFLIGHT_DEFAULT 64
#define RAFT_MSG_BYTES_DEFAULT (1u << 20)

enum pr_state {
	PR_PROBE = 0,     /* one APPEND at a time until the peer answers */
	PR_REPLICATE = 1, /* pipelined APPENDs, at most inflight_max */
	PR_SNAPSHOT = 2,  /* waiting for the host to deliver a snapshot */
};

struct raft_progress {
	uint64_t id;
	uint64_t match, next;
	enum pr_state state;
	int probe_sent;
	int recent_active;
	uint64_t pending_snapshot;
	uint32_t in_start, in_count; /* ring of last indices of APPENDs in flight */
	uint64_t inflight[RAFT_INFLIGHT_CAP];
};

struct raft {
	struct raft_config c;
	uint32_t inflight_max;
	size_t msg_bytes_max;
	uint64_t rng;

	enum raft_role role;
	uint64_t term, vote, leader;
	uint64_t commit, applied;
	struct raft_hardstate prev_hs; /* as last handed to the host */

	uint64_t snap_index, snap_term;
	struct raft_entry *ents; /* ents[i] has index snap_index + 1 + i */
	size_t n_ents, cap_ents;
	uint64_t stable;  /* last index persisted by the host */
	int snap_pending; /* a received snapshot to report in the ready */

	uint32_t election_elapsed, heartbeat_elapsed, rand_timeout;
	uint64_t transferee;
	uint64_t votes_granted, votes_rejected; /* bit i: nodes[i] */

	struct raft_progress prs[RAFT_NODES_MAX];

	struct raft_msg *out; /* queued messages; entries resolved in raft_ready */
	uint64_t *out_lo;     /* index of each message's first entry */
	size_t n_out, cap_out, cap_out_lo;
};

/* ---------- small helpers ---------- */

static uint64_t rng_next(struct raft *r)
{
	/* splitmix64 */
	uint64_t z = (r->rng += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static size_t quorum(const struct raft *r)
{
	return r->c.n_nodes / 2 + 1;
}

static int node_slot(const struct raft *r, uint64_t id)
{
	for (size_t i = 0; i < r->c.n_nodes; i++)
		if (r->c.nodes[i] == id)
			return (int)i;
	return -1;
}

static struct raft_progress *peer(struct raft *r, uint64_t id)
{
	int s = node_slot(r, id);
	return s < 0 ? NULL : &r->prs[s];
}

static uint64_t last_index(const struct raft *r)
{
	return r->snap_index + r->n_ents;
}

static struct raft_entry *entry_at(const struct raft *r, uint64_t index)
{
	if (index <= r->snap_index || index > last_index(r))
		return NULL;
	return &r->ents[index - r->snap_index - 1];
}

int raft_term_at(const struct raft *r, uint64_t index, uint64_t *term)
{
	if (index == r->snap_index) {
		*term = r->snap_term;
		return 1;
	}
	const struct raft_entry *e = entry_at(r, index);
	if (e == NULL)
		return 0;
	*term = e->term;
	return 1;
}

static uint64_t last_term(const struct raft *r)
{
	uint64_t t = 0;
	int ok = raft_term_at(r, last_index(r), &t);
	SL_ASSERT(ok);
	(void)ok;
	return t;
}

static int match_term(const struct raft *r, uint64_t index, uint64_t term)
{
	uint64_t t;
	return raft_term_at(r, index, &t) && t == term;
}

static int log_up_to_date(const struct raft *r, uint64_t index, uint64_t term)
{
	uint64_t lt = last_term(r);
	return term > lt || (term == lt && index >= last_index(r));
}

static void reset_timeout(struct raft *r)
{
	r->rand_timeout = r->c.election_ticks + (uint32_t)(rng_next(r) % r->c.election_ticks);
}

/* ---------- log ---------- */

static int log_reserve(struct raft *r, size_t n)
{
	return vec_reserve(&r->ents, &r->cap_ents, r->n_ents + n);
}

/* Appends a prepared entry (data ownership moves in). Capacity reserved before. */
static void log_push(struct raft *r, struct raft_entry e)
{
	SL_ASSERT(r->n_ents < r->cap_ents);
	SL_ASSERT(e.index == last_index(r) + 1);
	SL_ASSERT(e.term >= last_term(r));
	r->ents[r->n_ents++] = e;
}

static void out_drop_from(struct raft *r, uint64_t index);

/* Removes entries >= index (uncommitted only). */
static void log_truncate(struct raft *r, uint64_t index)
{
	SL_ASSERT(index > r->commit && index > r->snap_index);
	while (last_index(r) >= index) {
		free(r->ents[r->n_ents - 1].data);
		r->n_ents--;
	}
	if (r->stable >= index)
		r->stable = index - 1;
	out_drop_from(r, index);
}

static void log_reset(struct raft *r, uint64_t snap_index, uint64_t snap_term)
{
	for (size_t i = 0; i < r->n_ents; i++)
		free(r->ents[i].data);
	r->n_ents = 0;
	r->snap_index = snap_index;
	r->snap_term = snap_term;
	r->stable = snap_index;
}

static int entry_copy(struct raft_entry *dst, const struct raft_entry *src)
{
	*dst = *src;
	dst->data = NULL;
	if (src->len == 0)
		return SL_OK;
	dst->data = malloc(src->len);
	if (dst->data == NULL)
		return SL_ENOMEM;
	memcpy(dst->data, src->data, src->len);
	return SL_OK;
}

/* Copies ents (contiguous, starting at last_index + 1) into the log, all or nothing. */
static int log_append_copies(struct raft *r, const struct raft_entry *ents, size_t n)
{
	int err = log_reserve(r, n);
	if (err)
		return err;
	size_t done = 0;
	for (; done < n; done++) {
		err = entry_copy(&r->ents[r->n_ents + done], &ents[done]);
		if (err)
			goto fail;
	}
	for (size_t i = 0; i < n; i++) {
		struct raft_entry e = r->ents[r->n_ents];
		log_push(r, e);
	}
	return SL_OK;
fail:
	while (done > 0)
		free(r->ents[r->n_ents + --done].data);
	return err;
}

/* ---------- outgoing messages ---------- */

static void send(struct raft *r, struct raft_msg m, uint64_t ent_lo)
{
	if (vec_reserve(&r->out, &r->cap_out, r->n_out + 1) || vec_reserve(&r->out_lo, &r->cap_out_lo, r->n_out + 1))
		return; /* dropped: as if lost on the network */
	m.group = r->c.group;
	m.from = r->c.id;
	if (m.term == 0)
		m.term = r->term;
	r->out_lo[r->n_out] = ent_lo;
	r->out[r->n_out++] = m;
}

static void out_drop_from(struct raft *r, uint64_t index)
{
	size_t k = 0;
	for (size_t i = 0; i < r->n_out; i++) {
		const struct raft_msg *m = &r->out[i];
		if (m->type == RAFT_MSG_APPEND && m->n_entries > 0 && r->out_lo[i] + m->n_entries > index)
			continue;
		r->out_lo[k] = r->out_lo[i];
		r->out[k++] = *m;
	}
	r->n_out = k;
}

static void reply(struct raft *r, const struct raft_msg *m, uint32_t type)
{
	struct raft_msg o = {.type = type, .to = m->from};
	send(r, o, 0);
}

/* ---------- progress (leader's view of a peer) ---------- */

static void pr_reset(struct raft *r, struct raft_progress *pr)
{
	uint64_t id = pr->id;
	memset(pr, 0, offsetof(struct raft_progress, inflight));
	pr->id = id;
	pr->next = last_index(r) + 1;
	pr->state = PR_PROBE;
}

static void pr_become_probe(struct raft *r, struct raft_progress *pr)
{
	if (pr->state == PR_SNAPSHOT) {
		uint64_t ps = pr->pending_snapshot;
		pr->next = (pr->match > ps ? pr->match : ps) + 1;
	} else {
		pr->next = pr->match + 1;
	}
	pr->state = PR_PROBE;
	pr->probe_sent = 0;
	pr->in_count = 0;
	pr->pending_snapshot = 0;
}

static void pr_become_replicate(struct raft_progress *pr)
{
	pr->state = PR_REPLICATE;
	pr->next = pr->match + 1;
	pr->probe_sent = 0;
	pr->in_count = 0;
}

static int pr_paused(const struct raft *r, const struct raft_progress *pr)
{
	switch (pr->state) {
	case PR_PROBE:
		return pr->probe_sent;
	case PR_REPLICATE:
		return pr->in_count >= r->inflight_max;
	default:
		return 1;
	}
}

static void inflight_add(struct raft *r, struct raft_progress *pr, uint64_t last)
{
	SL_ASSERT(pr->in_count < r->inflight_max);
	pr->inflight[(pr->in_start + pr->in_count) % RAFT_INFLIGHT_CAP] = last;
	pr->in_count++;
}

static void inflight_free_to(struct raft_progress *pr, uint64_t index)
{
	while (pr->in_count > 0 && pr->inflight[pr->in_start] <= index) {
		pr->in_start = (pr->in_start + 1) % RAFT_INFLIGHT_CAP;
		pr->in_count--;
	}
}

static void inflight_free_first(struct raft_progress *pr)
{
	if (pr->in_count == 0)
		return;
	pr->in_start = (pr->in_start + 1) % RAFT_INFLIGHT_CAP;
	pr->in_count--;
}

/* ---------- leader: replication ---------- */

static void send_snapshot(struct raft *r, struct raft_progress *pr)
{
	struct raft_msg m = {.type = RAFT_MSG_SNAPSHOT,
	                     .to = pr->id,
	                     .index = r->snap_index,
	                     .log_term = r->snap_term,
	                     .commit = r->commit};
	send(r, m, 0);
	pr->state = PR_SNAPSHOT;
	pr->pending_snapshot = r->snap_index;
	pr->in_count = 0;
}

/* Entries from `next` that fit in one APPEND (at least one when any). */
static size_t append_count(const struct raft *r, uint64_t next)
{
	size_t n = 0, bytes = 0;
	for (uint64_t i = next; i <= last_index(r); i++) {
		const struct raft_entry *e = entry_at(r, i);
		if (n > 0 && bytes + e->len > r->msg_bytes_max)
			break;
		bytes += e->len;
		n++;
	}
	return n;
}

/* Sends one APPEND (or a SNAPSHOT) to pr if not paused. 1 if something was sent. */
static int send_append_one(struct raft *r, struct raft_progress *pr, int send_empty)
{
	if (pr_paused(r, pr))
		return 0;
	uint64_t prev_term;
	if (!raft_term_at(r, pr->next - 1, &prev_term) || pr->next < r->snap_index + 1) {
		send_snapshot(r, pr);
		return 1;
	}
	size_t n = append_count(r, pr->next);
	if (n == 0 && !send_empty)
		return 0;
	struct raft_msg m = {.type = RAFT_MSG_APPEND,
	                     .to = pr->id,
	                     .index = pr->next - 1,
	                     .log_term = prev_term,
	                     .commit = r->commit,
	                     .n_entries = n};
	send(r, m, pr->next);
	if (pr->state == PR_REPLICATE && n > 0) {
		pr->next += n;
		inflight_add(r, pr, pr->next - 1);
	} else if (pr->state == PR_PROBE) {
		pr->probe_sent = 1;
	}
	return 1;
}

static void send_append(struct raft *r, struct raft_progress *pr, int send_empty)
{
	if (!send_append_one(r, pr, send_empty))
		return;
	while (pr->state == PR_REPLICATE && send_append_one(r, pr, 0))
		;
}

static void bcast_append(struct raft *r)
{
	for (size_t i = 0; i < r->c.n_nodes; i++)
		if (r->prs[i].id != r->c.id)
			send_append(r, &r->prs[i], 1);
}

static void bcast_heartbeat(struct raft *r)
{
	for (size_t i = 0; i < r->c.n_nodes; i++) {
		struct raft_progress *pr = &r->prs[i];
		if (pr->id == r->c.id)
			continue;
		struct raft_msg m = {
		    .type = RAFT_MSG_HEARTBEAT, .to = pr->id, .commit = pr->match < r->commit ? pr->match : r->commit};
		send(r, m, 0);
	}
	r->heartbeat_elapsed = 0;
}

static uint64_t self_match(const struct raft *r)
{
	return r->stable;
}

/* Commits the highest index of the current term held by a quorum. 1 if commit moved. */
static int maybe_commit(struct raft *r)
{
	uint64_t m[RAFT_NODES_MAX];
	size_t n = r->c.n_nodes;
	for (size_t i = 0; i < n; i++)
		m[i] = r->prs[i].id == r->c.id ? self_match(r) : r->prs[i].match;
	for (size_t i = 1; i < n; i++) /* insertion sort, descending */
		for (size_t j = i; j > 0 && m[j] > m[j - 1]; j--) {
			uint64_t t = m[j];
			m[j] = m[j - 1];
			m[j - 1] = t;
		}
	uint64_t idx = m[quorum(r) - 1];
	if (idx <= r->commit || !match_term(r, idx, r->term))
		return 0;
	SL_ASSERT(idx <= last_index(r));
	r->commit = idx;
	return 1;
}

static void send_timeout_now(struct raft *r, uint64_t to)
{
	struct raft_msg m = {.type = RAFT_MSG_TIMEOUT_NOW, .to = to};
	send(r, m, 0);
}

/* ---------- role changes ---------- */

static void become_follower(struct raft *r, uint64_t term, uint64_t leader)
{
	SL_ASSERT(term >= r->term);
	if (term != r->term) {
		r->term = term;
		r->vote = 0;
	}
	r->role = RAFT_FOLLOWER;
	r->leader = leader;
	r->election_elapsed = 0;
	r->heartbeat_elapsed = 0;
	r->transferee = 0;
	r->votes_granted = r->votes_rejected = 0;
	reset_timeout(r);
}

static void become_leader(struct raft *r)
{
	SL_ASSERT(r->role == RAFT_CANDIDATE);
	struct raft_entry noop = {.term = r->term, .index = last_index(r) + 1, .type = RAFT_ENTRY_NOOP};
	if (log_reserve(r, 1) != SL_OK) {
		become_follower(r, r->term, 0); /* out of memory: let another node lead */
		return;
	}
	r->role = RAFT_LEADER;
	r->leader = r->c.id;
	r->election_elapsed = 0;
	r->heartbeat_elapsed = 0;
	r->transferee = 0;
	for (size_t i = 0; i < r->c.n_nodes; i++)
		pr_reset(r, &r->prs[i]);
	log_push(r, noop);
	bcast_append(r);
}

static void send_vote_requests(struct raft *r, uint32_t type, uint64_t term, int force)
{
	for (size_t i = 0; i < r->c.n_nodes; i++) {
		if (r->c.nodes[i] == r->c.id)
			continue;
		struct raft_msg m = {.type = type,
		                     .to = r->c.nodes[i],
		                     .term = term,
		                     .index = last_index(r),
		                     .log_term = last_term(r),
		                     .force = (uint32_t)force};
		send(r, m, 0);
	}
}

static void tally(struct raft *r, uint64_t from, int granted);

static void campaign(struct raft *r, int pre, int force)
{
	r->election_elapsed = 0;
	r->heartbeat_elapsed = 0;
	r->votes_granted = r->votes_rejected = 0;
	r->leader = 0;
	r->transferee = 0;
	reset_timeout(r);
	if (pre) {
		r->role = RAFT_PRECANDIDATE;
		send_vote_requests(r, RAFT_MSG_PREVOTE, r->term + 1, 0);
	} else {
		r->role = RAFT_CANDIDATE;
		r->term++;
		r->vote = r->c.id;
		send_vote_requests(r, RAFT_MSG_VOTE, r->term, force);
	}
	tally(r, r->c.id, 1);
}

/* Counts a vote; wins or loses the (pre-)election once a quorum has spoken. */
static void tally(struct raft *r, uint64_t from, int granted)
{
	int s = node_slot(r, from);
	SL_ASSERT(s >= 0);
	uint64_t bit = 1ull << s;
	if (!((r->votes_granted | r->votes_rejected) & bit)) {
		if (granted)
			r->votes_granted |= bit;
		else
			r->votes_rejected |= bit;
	}
	if ((size_t)__builtin_popcountll(r->votes_granted) >= quorum(r)) {
		if (r->role == RAFT_PRECANDIDATE)
			campaign(r, 0, 0);
		else
			become_leader(r);
	} else if ((size_t)__builtin_popcountll(r->votes_rejected) >= quorum(r)) {
		become_follower(r, r->term, 0);
	}
}

/* ---------- message validation ---------- */

static int entries_valid(const struct raft *r, const struct raft_msg *m)
{
	if (m->n_entries == 0)
		return 1;
	if (m->entries == NULL || m->n_entries > ((uint64_t)1 << 32) || m->index > UINT64_MAX - m->n_entries)
		return 0;
	uint64_t prev_term = m->log_term;
	for (size_t i = 0; i < m->n_entries; i++) {
		const struct raft_entry *e = &m->entries[i];
		if (e->index != m->index + 1 + i || e->term < prev_term || e->term > m->term)
			return 0;
		if (e->type != RAFT_ENTRY_NORMAL && e->type != RAFT_ENTRY_NOOP)
			return 0;
		if (e->len > 0 && e->data == NULL)
			return 0;
		prev_term = e->term;
	}
	return 1;
}

static int msg_valid(const struct raft *r, const struct raft_msg *m)
{
	if (m->type < RAFT_MSG_PREVOTE || m->type > RAFT_MSG_SNAPSHOT)
		return 0;
	if (m->to != r->c.id || m->from == r->c.id || node_slot(r, m->from) < 0)
		return 0;
	if (m->group != r->c.group)
		return 0;
	/* every request carries a term >= 1; a rejection may come from a node still at term 0 */
	if (m->term == 0 && m->type != RAFT_MSG_PREVOTE_RESP && m->type != RAFT_MSG_VOTE_RESP)
		return 0;
	if (m->n_entries > 0 && m->type != RAFT_MSG_APPEND)
		return 0;
	switch (m->type) {
	case RAFT_MSG_PREVOTE:
	case RAFT_MSG_VOTE:
	case RAFT_MSG_APPEND:
		return m->log_term <= m->term && entries_valid(r, m);
	case RAFT_MSG_SNAPSHOT:
		return m->index > 0 && m->log_term > 0 && m->log_term <= m->term;
	default:
		return 1;
	}
}

/* ---------- message handling ---------- */

static int in_lease(const struct raft *r)
{
	return r->leader != 0 && r->election_elapsed < r->c.election_ticks;
}

static void handle_vote_request(struct raft *r, const struct raft_msg *m)
{
	int pre = m->type == RAFT_MSG_PREVOTE;
	int can = r->vote == m->from || (r->vote == 0 && r->leader == 0) || (pre && m->term > r->term);
	struct raft_msg o = {.type = pre ? RAFT_MSG_PREVOTE_RESP : RAFT_MSG_VOTE_RESP, .to = m->from};
	if (can && log_up_to_date(r, m->index, m->log_term)) {
		o.term = m->term;
		if (!pre) {
			r->election_elapsed = 0;
			r->vote = m->from;
		}
	} else {
		o.term = r->term;
		o.reject = 1;
	}
	send(r, o, 0);
}

/* Largest index <= index whose term is <= term (for the reject hint). */
static uint64_t conflict_hint(const struct raft *r, uint64_t index, uint64_t term)
{
	uint64_t t;
	while (index > r->snap_index && raft_term_at(r, index, &t) && t > term)
		index--;
	return index;
}

static void commit_to(struct raft *r, uint64_t c)
{
	if (c > r->commit) {
		SL_ASSERT(c <= last_index(r));
		r->commit = c;
	}
}

static int handle_append(struct raft *r, const struct raft_msg *m)
{
	struct raft_msg o = {.type = RAFT_MSG_APPEND_RESP, .to = m->from};
	if (m->index < r->commit) {
		o.index = r->commit;
		send(r, o, 0);
		return SL_OK;
	}
	if (!match_term(r, m->index, m->log_term)) {
		uint64_t hint = m->index < last_index(r) ? m->index : last_index(r);
		o.reject = 1;
		o.index = m->index;
		o.reject_hint = conflict_hint(r, hint, m->log_term);
		send(r, o, 0);
		return SL_OK;
	}
	size_t skip = 0;
	for (; skip < m->n_entries; skip++) {
		const struct raft_entry *e = &m->entries[skip];
		if (!match_term(r, e->index, e->term))
			break;
	}
	if (skip < m->n_entries) {
		uint64_t ci = m->entries[skip].index;
		if (ci <= r->commit)
			return SL_EINVAL; /* would rewrite a committed entry */
		if (ci <= last_index(r))
			log_truncate(r, ci);
		int err = log_append_copies(r, m->entries + skip, m->n_entries - skip);
		if (err)
			return err;
	}
	uint64_t last_new = m->index + m->n_entries;
	commit_to(r, m->commit < last_new ? m->commit : last_new);
	o.index = last_new;
	send(r, o, 0);
	return SL_OK;
}

static void handle_heartbeat(struct raft *r, const struct raft_msg *m)
{
	commit_to(r, m->commit < last_index(r) ? m->commit : last_index(r));
	reply(r, m, RAFT_MSG_HEARTBEAT_RESP);
}

static void handle_snapshot(struct raft *r, const struct raft_msg *m)
{
	struct raft_msg o = {.type = RAFT_MSG_APPEND_RESP, .to = m->from};
	if (m->index <= r->commit) {
		o.index = r->commit;
	} else if (match_term(r, m->index, m->log_term)) {
		commit_to(r, m->index); /* we hold it already: fast-forward */
		o.index = r->commit;
	} else {
		log_reset(r, m->index, m->log_term);
		out_drop_from(r, 1);
		r->commit = r->applied = m->index;
		r->snap_pending = 1;
		o.index = m->index;
	}
	send(r, o, 0);
}

static int step_follower(struct raft *r, const struct raft_msg *m)
{
	switch (m->type) {
	case RAFT_MSG_APPEND:
	case RAFT_MSG_HEARTBEAT:
	case RAFT_MSG_SNAPSHOT:
		if (r->role != RAFT_FOLLOWER || r->leader != m->from)
			become_follower(r, m->term, m->from);
		r->election_elapsed = 0;
		if (m->type == RAFT_MSG_APPEND)
			return handle_append(r, m);
		if (m->type == RAFT_MSG_HEARTBEAT)
			handle_heartbeat(r, m);
		else
			handle_snapshot(r, m);
		return SL_OK;
	case RAFT_MSG_TIMEOUT_NOW:
		if (r->role == RAFT_FOLLOWER)
			campaign(r, 0, 1);
		return SL_OK;
	case RAFT_MSG_PREVOTE_RESP:
		if (r->role == RAFT_PRECANDIDATE && (m->reject ? m->term == r->term : m->term == r->term + 1))
			tally(r, m->from, !m->reject);
		return SL_OK;
	case RAFT_MSG_VOTE_RESP:
		if (r->role == RAFT_CANDIDATE)
			tally(r, m->from, !m->reject);
		return SL_OK;
	default:
		return SL_OK; /* responses meant for a leader we no longer are */
	}
}

static void leader_append_ok(struct raft *r, struct raft_progress *pr, uint64_t index)
{
	int was_paused = pr_paused(r, pr);
	if (index < pr->match || (index == pr->match && pr->state != PR_PROBE))
		return; /* stale */
	if (index > pr->match)
		pr->match = index;
	if (pr->next < index + 1)
		pr->next = index + 1;
	if (pr->state == PR_PROBE)
		pr_become_replicate(pr);
	else if (pr->state == PR_SNAPSHOT && pr->match >= pr->pending_snapshot)
		pr_become_replicate(pr);
	else if (pr->state == PR_REPLICATE)
		inflight_free_to(pr, index);
	if (maybe_commit(r))
		bcast_append(r);
	else if (was_paused || pr->state == PR_REPLICATE)
		send_append(r, pr, 0);
	if (r->transferee == pr->id && pr->match == last_index(r))
		send_timeout_now(r, pr->id);
}

static void leader_append_reject(struct raft *r, struct raft_progress *pr, const struct raft_msg *m)
{
	if (pr->state == PR_REPLICATE) {
		if (m->index <= pr->match)
			return; /* stale */
	} else if (pr->state != PR_PROBE || pr->next - 1 != m->index) {
		return; /* stale, or waiting for a snapshot */
	}
	uint64_t next = m->reject_hint + 1 < m->index ? m->reject_hint + 1 : m->index;
	pr_become_probe(r, pr);
	pr->next = next > pr->match + 1 ? next : pr->match + 1;
	send_append(r, pr, 1);
}

static int step_leader(struct raft *r, const struct raft_msg *m)
{
	struct raft_progress *pr = peer(r, m->from);
	SL_ASSERT(pr != NULL);
	switch (m->type) {
	case RAFT_MSG_APPEND_RESP:
		if (!m->reject && m->index > last_index(r))
			return SL_EINVAL;
		pr->recent_active = 1;
		if (m->reject)
			leader_append_reject(r, pr, m);
		else
			leader_append_ok(r, pr, m->index);
		return SL_OK;
	case RAFT_MSG_HEARTBEAT_RESP:
		pr->recent_active = 1;
		pr->probe_sent = 0;
		if (pr->state == PR_REPLICATE && pr->in_count >= r->inflight_max)
			inflight_free_first(pr);
		if (pr->match < last_index(r))
			send_append(r, pr, 1);
		if (r->transferee == pr->id && pr->match == last_index(r))
			send_timeout_now(r, pr->id);
		return SL_OK;
	case RAFT_MSG_APPEND:
	case RAFT_MSG_HEARTBEAT:
	case RAFT_MSG_SNAPSHOT:
		return SL_EINVAL; /* a second leader in our term */
	default:
		return SL_OK;
	}
}

/* Term rules before role handling: 1 if the message is consumed here. */
static int step_term(struct raft *r, const struct raft_msg *m)
{
	int vote_req = m->type == RAFT_MSG_PREVOTE || m->type == RAFT_MSG_VOTE;
	if (m->term > r->term) {
		if (vote_req && !m->force && in_lease(r))
			return 1;
		if (m->type == RAFT_MSG_PREVOTE || (m->type == RAFT_MSG_PREVOTE_RESP && !m->reject))
			return 0;
		int from_leader =
		    m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_HEARTBEAT || m->type == RAFT_MSG_SNAPSHOT;
		become_follower(r, m->term, from_leader ? m->from : 0);
		return 0;
	}
	if (m->term < r->term) {
		if (m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_HEARTBEAT)
			reply(r, m, RAFT_MSG_APPEND_RESP); /* tells a stale leader about our term */
		else if (m->type == RAFT_MSG_PREVOTE) {
			struct raft_msg o = {.type = RAFT_MSG_PREVOTE_RESP, .to = m->from, .reject = 1};
			send(r, o, 0);
		}
		return 1;
	}
	return 0;
}

int raft_step(struct raft *r, const struct raft_msg *m)
{
	if (m == NULL || !msg_valid(r, m))
		return SL_EINVAL;
	if (step_term(r, m))
		return SL_OK;
	if (m->type == RAFT_MSG_PREVOTE || m->type == RAFT_MSG_VOTE) {
		handle_vote_request(r, m);
		return SL_OK;
	}
	if (r->role == RAFT_LEADER)
		return step_leader(r, m);
	return step_follower(r, m);
}

/* ---------- ticks ---------- */

static void check_quorum(struct raft *r)
{
	size_t active = 0;
	for (size_t i = 0; i < r->c.n_nodes; i++) {
		struct raft_progress *pr = &r->prs[i];
		if (pr->id == r->c.id || pr->recent_active)
			active++;
		pr->recent_active = 0;
	}
	if (active < quorum(r))
		become_follower(r, r->term, 0);
}

static void tick_leader(struct raft *r)
{
	r->heartbeat_elapsed++;
	r->election_elapsed++;
	if (r->election_elapsed >= r->c.election_ticks) {
		r->election_elapsed = 0;
		r->transferee = 0; /* a transfer that has not completed by now is abandoned */
		check_quorum(r);
		if (r->role != RAFT_LEADER)
			return;
	}
	if (r->heartbeat_elapsed >= r->c.heartbeat_ticks)
		bcast_heartbeat(r);
}

void raft_tick(struct raft *r)
{
	if (r->role == RAFT_LEADER) {
		tick_leader(r);
		return;
	}
	r->election_elapsed++;
	if (r->election_elapsed >= r->rand_timeout)
		campaign(r, 1, 0);
}

/* ---------- host API ---------- */

int raft_propose(struct raft *r, uint8_t *data, size_t len, uint64_t *index_out)
{
	int err = SL_OK;
	if (r->role != RAFT_LEADER || r->transferee != 0) {
		err = SL_EUNAVAILABLE;
		goto fail;
	}
	if (len > UINT32_MAX || (len > 0 && data == NULL)) {
		err = SL_EINVAL;
		goto fail;
	}
	err = log_reserve(r, 1);
	if (err)
		goto fail;
	struct raft_entry e = {.term = r->term,
	                       .index = last_index(r) + 1,
	                       .type = RAFT_ENTRY_NORMAL,
	                       .len = (uint32_t)len,
	                       .data = len ? data : NULL};
	if (len == 0)
		free(data);
	log_push(r, e);
	if (index_out)
		*index_out = e.index;
	bcast_append(r);
	return SL_OK;
fail:
	free(data);
	return err;
}

int raft_transfer_leader(struct raft *r, uint64_t to)
{
	if (r->role != RAFT_LEADER)
		return SL_EUNAVAILABLE;
	struct raft_progress *pr = peer(r, to);
	if (pr == NULL || to == r->c.id)
		return SL_EINVAL;
	if (r->transferee == to)
		return SL_OK;
	r->transferee = to;
	r->election_elapsed = 0;
	if (pr->match == last_index(r))
		send_timeout_now(r, to);
	else
		send_append(r, pr, 1);
	return SL_OK;
}

static int hs_differs(const struct raft *r)
{
	return r->prev_hs.term != r->term || r->prev_hs.vote != r->vote || r->prev_hs.commit != r->commit;
}

/* Fills in entry pointers of queued messages; drops those whose entries were compacted.
 * A SNAPSHOT names the snapshot held now (raft_compact may have moved it since). */
static void out_resolve(struct raft *r)
{
	size_t k = 0;
	for (size_t i = 0; i < r->n_out; i++) {
		struct raft_msg m = r->out[i];
		if (m.type == RAFT_MSG_SNAPSHOT) {
			m.index = r->snap_index; /* the host attaches the snapshot it holds now */
			m.log_term = r->snap_term;
		}
		if (m.n_entries > 0) {
			const struct raft_entry *e = entry_at(r, r->out_lo[i]);
			if (e == NULL || r->out_lo[i] + m.n_entries - 1 > last_index(r))
				continue;
			m.entries = e;
		} else {
			m.entries = NULL;
		}
		r->out_lo[k] = r->out_lo[i];
		r->out[k++] = m;
	}
	r->n_out = k;
}

int raft_ready(struct raft *r, struct raft_ready *rd)
{
	memset(rd, 0, sizeof(*rd));
	SL_ASSERT(r->applied <= r->commit && r->commit <= last_index(r));
	SL_ASSERT(r->stable <= last_index(r) && r->snap_index <= r->applied);
	out_resolve(r);
	rd->hs = (struct raft_hardstate){.term = r->term, .vote = r->vote, .commit = r->commit};
	rd->hs_changed = hs_differs(r);
	rd->vote_changed = r->prev_hs.term != r->term || r->prev_hs.vote != r->vote;
	if (r->stable < last_index(r)) {
		rd->entries = entry_at(r, r->stable + 1);
		rd->n_entries = last_index(r) - r->stable;
	}
	if (r->snap_pending) {
		rd->snapshot_index = r->snap_index;
		rd->snapshot_term = r->snap_term;
	}
	rd->msgs = r->out;
	rd->n_msgs = r->n_out;
	if (r->commit > r->applied) {
		rd->committed = entry_at(r, r->applied + 1);
		rd->n_committed = r->commit - r->applied;
		SL_ASSERT(rd->committed != NULL);
	}
	return rd->hs_changed || rd->n_entries || rd->snapshot_index || rd->n_msgs || rd->n_committed;
}

void raft_advance(struct raft *r, const struct raft_ready *rd)
{
	if (rd->hs_changed)
		r->prev_hs = rd->hs;
	if (rd->n_entries) {
		uint64_t last = rd->entries[rd->n_entries - 1].index;
		SL_ASSERT(last <= last_index(r) && last > r->stable);
		r->stable = last;
	}
	if (rd->snapshot_index)
		r->snap_pending = 0;
	if (rd->n_committed) {
		uint64_t last = rd->committed[rd->n_committed - 1].index;
		SL_ASSERT(last <= r->commit && last <= r->stable);
		r->applied = last;
	}
	r->n_out = 0;
	if (r->role == RAFT_LEADER && maybe_commit(r))
		bcast_append(r);
}

void raft_compact(struct raft *r, uint64_t index)
{
	SL_ASSERT(index <= r->applied);
	if (index <= r->snap_index)
		return;
	uint64_t term = 0;
	int ok = raft_term_at(r, index, &term);
	SL_ASSERT(ok);
	(void)ok;
	size_t drop = (size_t)(index - r->snap_index);
	for (size_t i = 0; i < drop; i++)
		free(r->ents[i].data);
	memmove(r->ents, r->ents + drop, (r->n_ents - drop) * sizeof(*r->ents));
	r->n_ents -= drop;
	r->snap_index = index;
	r->snap_term = term;
}

void raft_snapshot_done(struct raft *r, uint64_t id, int ok)
{
	struct raft_progress *pr = peer(r, id);
	if (r->role != RAFT_LEADER || pr == NULL || pr->state != PR_SNAPSHOT)
		return;
	if (!ok)
		pr->pending_snapshot = 0;
	pr_become_probe(r, pr);
	pr->probe_sent = 1; /* wait for the peer's answer (or a heartbeat) before probing */
}

void raft_report_unreachable(struct raft *r, uint64_t id)
{
	struct raft_progress *pr = peer(r, id);
	if (r->role == RAFT_LEADER && pr != NULL && id != r->c.id && pr->state == PR_REPLICATE)
		pr_become_probe(r, pr);
}

void raft_status(const struct raft *r, struct raft_status *st)
{
	memset(st, 0, sizeof(*st));
	st->id = r->c.id;
	st->role = r->role;
	st->term = r->term;
	st->vote = r->vote;
	st->leader = r->leader;
	st->commit = r->commit;
	st->applied = r->applied;
	st->first_index = r->snap_index + 1;
	st->last_index = last_index(r);
	st->last_term = last_term(r);
	st->transferee = r->transferee;
	st->n_peers = r->c.n_nodes;
	for (size_t i = 0; i < r->c.n_nodes; i++) {
		const struct raft_progress *pr = &r->prs[i];
		st->peers[i].id = pr->id;
		if (r->role != RAFT_LEADER)
			continue;
		st->peers[i].match = pr->id == r->c.id ? self_match(r) : pr->match;
		st->peers[i].next = pr->id == r->c.id ? last_index(r) + 1 : pr->next;
		st->peers[i].recent_active = pr->id == r->c.id || pr->recent_active;
	}
}

/* ---------- construction ---------- */

static int config_valid(const struct raft_config *c)
{
	if (c->id == 0 || c->n_nodes == 0 || c->n_nodes > RAFT_NODES_MAX)
		return 0;
	if (c->election_ticks < 2 || c->heartbeat_ticks == 0 || c->heartbeat_ticks >= c->election_ticks)
		return 0;
	int self = 0;
	for (size_t i = 0; i < c->n_nodes; i++) {
		if (c->nodes[i] == 0)
			return 0;
		for (size_t j = 0; j < i; j++)
			if (c->nodes[j] == c->nodes[i])
				return 0;
		self |= c->nodes[i] == c->id;
	}
	return self;
}

static int stored_log_valid(const struct raft_hardstate *hs, uint64_t snap_index, uint64_t snap_term,
                            const struct raft_entry *ents, size_t n)
{
	uint64_t prev = snap_term;
	if (n > 0 && ents == NULL)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (ents[i].index != snap_index + 1 + i || ents[i].term < prev || ents[i].term == 0)
			return 0;
		if (hs && ents[i].term > hs->term)
			return 0;
		if (ents[i].len > 0 && ents[i].data == NULL)
			return 0;
		prev = ents[i].term;
	}
	return !(hs && snap_term > hs->term);
}

struct raft *raft_new(const struct raft_config *c, const struct raft_hardstate *hs, uint64_t snap_index,
                      uint64_t snap_term, const struct raft_entry *ents, size_t n, uint64_t applied)
{
	if (c == NULL || !config_valid(c) || !stored_log_valid(hs, snap_index, snap_term, ents, n))
		return NULL;
	if ((snap_index == 0) != (snap_term == 0))
		return NULL;
	struct raft *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return NULL;
	r->c = *c;
	r->inflight_max = c->inflight_max == 0 ? RAFT_INFLIGHT_DEFAULT : c->inflight_max;
	if (r->inflight_max > RAFT_INFLIGHT_CAP)
		r->inflight_max = RAFT_INFLIGHT_CAP;
	r->msg_bytes_max = c->msg_bytes_max == 0 ? RAFT_MSG_BYTES_DEFAULT : c->msg_bytes_max;
	r->rng = c->seed ^ (c->id * 0xD1B54A32D192ED03ull);
	r->snap_index = r->stable = snap_index;
	r->snap_term = snap_term;
	if (log_append_copies(r, ents, n) != SL_OK) {
		raft_free(r);
		return NULL;
	}
	r->stable = last_index(r);
	if (hs) {
		r->term = hs->term;
		r->vote = hs->vote;
		r->commit = hs->commit < last_index(r) ? hs->commit : last_index(r);
	}
	r->applied = applied > snap_index ? applied : snap_index;
	if (r->applied > last_index(r))
		r->applied = last_index(r);
	if (r->commit < r->applied)
		r->commit = r->applied;
	r->prev_hs = (struct raft_hardstate){.term = r->term, .vote = r->vote, .commit = r->commit};
	for (size_t i = 0; i < c->n_nodes; i++)
		r->prs[i].id = c->nodes[i];
	become_follower(r, r->term, 0);
	if (c->n_nodes == 1)
		r->rand_timeout = 1; /* a lone voter has nobody to wait for: it campaigns at the first tick */
	return r;
}

void raft_free(struct raft *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->n_ents; i++)
		free(r->ents[i].data);
	free(r->ents);
	free(r->out);
	free(r->out_lo);
	free(r);
}

int raft_msg_early(const struct raft_ready *rd, const struct raft_msg *m)
{
	return !rd->vote_changed && !rd->snapshot_index && m->type == RAFT_MSG_APPEND;
}
