/*
 * findings.c: triage of findings, the analyst's part of the admin API.
 * A finding is an event of type "finding" (events.c stores them, keyed by
 * (agent_id, seq)); its triage state lives beside it in finding_triage:
 * status new (no row), acknowledged, false_positive or resolved, with a
 * comment, who set it and when. GET /api/v1/findings is a paged list
 * (query.c) of findings joined with their state; PUT
 * /api/v1/findings/<agent_id>/<seq> sets the state (audited like every
 * change, with the state before). GET /api/v1/findings/histogram counts
 * findings by level over time, for the console's chart: one indexed
 * GROUP BY instead of shipping the findings themselves.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "center.h"
#include "query.h"
#include "schema.h"

#define C(r) ((struct center *)(r)->arg)

#define FINDING_COMMENT_MAX 4096

static const char *const finding_states[] = {
    "new", "acknowledged", "false_positive", "resolved", NULL};

static int
finding_state_ok(const char *s)
{
	const char *const *p;

	for (p = finding_states; *p != NULL; p++)
		if (strcmp(*p, s) == 0)
			return 1;
	return 0;
}

/* ?rule=NAME: the data's "rule" member (findings posted by other tools) or
 * a reason's signature "rule_name" (the agents' scans), in the compact
 * JSON the center stores; '\', '%' and '_' in NAME match themselves. */
#define FINDING_RULE_SQL                                                       \
	"EXISTS (SELECT 1 FROM (SELECT replace(replace(replace(?, '\\', "      \
	"'\\\\'), '%', '\\%'), '_', '\\_') AS v) x WHERE e.data LIKE "         \
	"'%\"rule\":\"' || x.v || '\"%' ESCAPE '\\' OR e.data LIKE "           \
	"'%\"rule_name\":\"' || x.v || '\"%' ESCAPE '\\')"

static const struct query_field finding_fields[] = {
    {"agent", "e.agent_id", QF_TEXT, QF_EQ},
    {"task", "e.task_id", QF_TEXT, QF_EQ},
    {"seq", "e.seq", QF_INT, QF_EQ},
    {"level", "e.level", QF_TEXT, QF_EQ | QF_SORT | QF_NULL},
    {"rule", FINDING_RULE_SQL, QF_TEXT, QF_EXPR},
    {"status", "COALESCE(t.status, 'new')", QF_TEXT, QF_EQ | QF_SORT},
    {"received_at", "e.received_at", QF_INT, QF_SORT | QF_RANGE},
    {"time", "e.time", QF_INT, QF_SORT | QF_RANGE},
    {"triaged_at", "t.updated_at", QF_INT, QF_SORT | QF_RANGE | QF_NULL},
    {"agent_id", "e.agent_id", QF_TEXT, QF_SORT},
    {"verdict", "i.verdict", QF_TEXT, QF_EQ | QF_NULL},
    {NULL, NULL, 0, 0},
};

/* (agent_id, seq) as one text value, as the events list does. */
static const struct query_spec finding_spec = {
    .table = "events e LEFT JOIN finding_triage t ON t.agent_id = "
             "e.agent_id AND t.seq = e.seq LEFT JOIN event_intel i ON "
             "i.agent_id = e.agent_id AND i.seq = e.seq",
    .columns = "e.agent_id, e.seq, e.time, e.received_at, e.level, "
               "e.task_id, e.data, COALESCE(t.status, 'new'), t.comment, "
               "t.updated_by, t.updated_at, i.verdict, i.score, i.sources, "
               "i.level_before, i.checked_at",
    .fields = finding_fields,
    .key = "(e.agent_id || '/' || CAST(e.seq AS TEXT))",
    .key_type = QF_TEXT,
    .default_sort = "-received_at",
    .search = "e.data || ' ' || COALESCE(t.comment, '')",
    .where = "e.type = 'finding'",
    .max_limit = 10000,
};

/* vigil-inteld's verdict on the finding's indicators (intel.c), or null
 * while it has not been asked (no inteld, inteld down, not yet reached). */
static json_t *
finding_intel(struct store_rows *q)
{
	json_t *s;

	if (store_isnull(q, 11))
		return json_null();
	s = json_loads(store_text(q, 13), 0, NULL);
	return json_pack(
	    "{s:s, s:o, s:o, s:s?, s:I}", "verdict", store_text(q, 11), "score",
	    store_isnull(q, 12) ? json_null() : json_integer(store_int(q, 12)),
	    "sources", s ? s : json_array(), "level_before", store_text(q, 14),
	    "checked_at", (json_int_t)store_int(q, 15));
}

static json_t *
finding_item(struct store_rows *q, void *arg)
{
	json_t *d = json_loads(store_text(q, 6), 0, NULL);

	(void)arg;
	return json_pack(
	    "{s:s, s:I, s:I, s:I, s:s?, s:s?, s:o, s:s, s:s?, s:s?, s:o, s:o}",
	    "agent_id", store_text(q, 0), "seq", (json_int_t)store_int(q, 1),
	    "time", (json_int_t)store_int(q, 2), "received_at",
	    (json_int_t)store_int(q, 3), "level", store_text(q, 4), "task_id",
	    store_text(q, 5), "data", d ? d : json_object(), "status",
	    store_text(q, 7), "comment", store_text(q, 8), "triaged_by",
	    store_text(q, 9), "triaged_at",
	    store_isnull(q, 10) ? json_null() : json_integer(store_int(q, 10)),
	    "intel", finding_intel(q));
}

static void
adm_findings(struct http_req *r)
{
	const char *st = http_req_query(r, "status");

	if (st != NULL && !finding_state_ok(st)) {
		http_reply_error_field(r, 400, "bad_request", "status",
		                       "status: must be new, acknowledged, "
		                       "false_positive or resolved");
		return;
	}
	query_reply(r, C(r)->store, &finding_spec, finding_item, NULL);
}

#define HIST_MAX_BUCKETS 1000
#define HIST_MAX_SPAN    (400LL * 86400)
#define HIST_MAX_LEVELS  16

/* A query parameter as an integer in [min, max], dflt when absent; -1
 * after replying 400. */
static int
hist_param(struct http_req *r, const char *name, long long min, long long max,
           long long dflt, long long *out)
{
	const char *v = http_req_query(r, name);

	*out = dflt;
	if (v == NULL)
		return 0;
	if (str_to_ll(v, min, max, out) == -1) {
		http_reply_error_field(
		    r, 400, "bad_request", name,
		    "%s: must be an integer from %lld to %lld", name, min, max);
		return -1;
	}
	return 0;
}

/* One level's counts, one per bucket. */
struct hist_level {
	char name[32];
	long long *n;
};

/* GET /api/v1/findings/histogram?received_at_from=&received_at_to=&buckets=
 * {"from", "to", "step", "buckets", "total", "levels": {LEVEL: [count
 * per bucket]}}: findings received in [from, to), in buckets of step
 * seconds (the last one may reach past to); a finding without a level
 * counts as "none", past HIST_MAX_LEVELS levels as "other". The rows are
 * a range of the covering index events_findings (received_at, level),
 * counted here: SQLite's GROUP BY on the bucket expression sorted them
 * first, several times slower (bench/console). */
static void
adm_findings_histogram(struct http_req *r)
{
	struct center *c = C(r);
	struct hist_level lv[HIST_MAX_LEVELS + 1];
	long long now = (long long)time(NULL), from, to, nb, step, b;
	long long total = 0;
	size_t nlv = 0, i;
	struct store_rows *q;
	json_t *levels = NULL, *arr, *o;
	const char *name;
	int rc = -1;

	if (hist_param(r, "received_at_to", 0, 1LL << 40, now + 1, &to) == -1 ||
	    hist_param(r, "received_at_from", 0, 1LL << 40, to - 7 * 86400,
	               &from) == -1 ||
	    hist_param(r, "buckets", 1, HIST_MAX_BUCKETS, 28, &nb) == -1)
		return;
	if (from >= to || to - from > HIST_MAX_SPAN) {
		http_reply_error_field(r, 400, "bad_request",
		                       "received_at_from",
		                       "received_at_from: must be before "
		                       "received_at_to, at most 400 days");
		return;
	}
	step = (to - from + nb - 1) / nb;
	q = store_query(c->store,
	                "SELECT received_at, level FROM events WHERE type = "
	                "'finding' AND received_at >= ? AND received_at < ?",
	                S_INT(from), S_INT(to));
	if (q == NULL) {
		http_reply_error(r, 500, "store", "store unavailable");
		return;
	}
	while (store_next(q) == 1) {
		b = (store_int(q, 0) - from) / step;
		name = store_text(q, 1);
		if (b < 0 || b >= nb)
			continue; /* not reached: the WHERE bounds it */
		if (name == NULL || *name == '\0')
			name = "none";
		for (i = 0; i < nlv; i++)
			if (strcmp(lv[i].name, name) == 0)
				break;
		if (i == nlv && nlv >= HIST_MAX_LEVELS)
			name = "other";
		for (i = 0; i < nlv; i++)
			if (strcmp(lv[i].name, name) == 0)
				break;
		if (i == nlv) {
			snprintf(lv[i].name, sizeof(lv[i].name), "%s", name);
			if ((lv[i].n = calloc((size_t)nb, sizeof(long long))) ==
			    NULL)
				goto out;
			nlv++;
		}
		lv[i].n[b]++;
		total++;
	}
	if ((levels = json_object()) == NULL)
		goto out;
	for (i = 0; i < nlv; i++) {
		if ((arr = json_array()) == NULL ||
		    json_object_set_new(levels, lv[i].name, arr) == -1)
			goto out;
		for (b = 0; b < nb; b++)
			if (json_array_append_new(arr,
			                          json_integer(lv[i].n[b])))
				goto out;
	}
	o = json_pack("{s:I, s:I, s:I, s:I, s:I, s:O}", "from",
	              (json_int_t)from, "to", (json_int_t)to, "step",
	              (json_int_t)step, "buckets", (json_int_t)nb, "total",
	              (json_int_t)total, "levels", levels);
	if (o != NULL) {
		http_reply_json(r, 200, o);
		rc = 0;
	}
out:
	store_done(q);
	if (rc == -1)
		http_reply_error(r, 500, "internal_error", "out of memory");
	json_decref(levels);
	for (i = 0; i < nlv; i++)
		free(lv[i].n);
}

static const struct schema_field finding_schema[] = {
    {"status", SCH_STRING, 1},
    {"comment", SCH_STRING | SCH_NULL, 0},
    {NULL, 0, 0},
};

/* "<agent_id>/<seq>" into its parts; -1 when it is not that. */
static int
finding_key(const char *rest, char *agent, size_t n, long long *seq)
{
	const char *slash = strchr(rest, '/');
	size_t len;

	if (slash == NULL || (len = (size_t)(slash - rest)) == 0 || len >= n ||
	    str_to_ll(slash + 1, 0, 1LL << 62, seq) == -1)
		return -1;
	memcpy(agent, rest, len);
	agent[len] = '\0';
	return 0;
}

/* The state before a change, for the audit log: "new" without a row. */
static json_t *
finding_state(struct center *c, const char *agent, long long seq)
{
	struct store_rows *q;
	json_t *o = NULL;

	q = store_query(c->store,
	                "SELECT status, comment, updated_by, updated_at FROM "
	                "finding_triage WHERE agent_id = ? AND seq = ?",
	                S_TEXT(agent), S_INT(seq));
	if (q != NULL && store_next(q) == 1)
		o = json_pack("{s:s, s:s?, s:s, s:I}", "status",
		              store_text(q, 0), "comment", store_text(q, 1),
		              "triaged_by", store_text(q, 2), "triaged_at",
		              (json_int_t)store_int(q, 3));
	else if (q != NULL)
		o = json_pack("{s:s}", "status", "new");
	store_done(q);
	return o;
}

/* PUT /api/v1/findings/<agent_id>/<seq> {"status", "comment"}: sets the
 * state; the comment is replaced (absent or null: none). */
static void
adm_finding_put(struct http_req *r)
{
	struct center *c = C(r);
	char agent[128];
	long long seq, now = (long long)time(NULL);
	const char *status, *comment;
	struct store_rows *q;
	json_t *j;
	int found = 0, n;

	if (finding_key(r->rest, agent, sizeof(agent), &seq) == -1) {
		http_reply_error(r, 404, "not_found",
		                 "no such finding (expected "
		                 "/api/v1/findings/AGENT_ID/SEQ)");
		return;
	}
	if ((j = schema_body(r, finding_schema)) == NULL)
		return;
	status = json_string_value(json_object_get(j, "status"));
	comment = json_string_value(json_object_get(j, "comment"));
	if (!finding_state_ok(status)) {
		http_reply_error_field(r, 400, "bad_request", "status",
		                       "status: must be new, acknowledged, "
		                       "false_positive or resolved");
		goto out;
	}
	if (comment != NULL && strlen(comment) > FINDING_COMMENT_MAX) {
		http_reply_error_field(r, 400, "bad_request", "comment",
		                       "comment: at most %d bytes",
		                       FINDING_COMMENT_MAX);
		goto out;
	}
	q = store_query(c->store,
	                "SELECT 1 FROM events WHERE agent_id = ? AND seq = ? "
	                "AND type = 'finding'",
	                S_TEXT(agent), S_INT(seq));
	if (q != NULL && store_next(q) == 1)
		found = 1;
	store_done(q);
	if (q == NULL) {
		http_reply_error(r, 500, "store", "store unavailable");
		goto out;
	}
	if (!found) {
		http_reply_error(r, 404, "not_found", "no finding %s/%lld",
		                 agent, seq);
		goto out;
	}
	audit_before(r, finding_state(c, agent, seq));
	n = store_exec(c->store,
	               "INSERT INTO finding_triage (agent_id, seq, status, "
	               "comment, updated_by, updated_at) VALUES (?, ?, ?, ?, "
	               "?, ?) ON CONFLICT (agent_id, seq) DO UPDATE SET "
	               "status = excluded.status, comment = excluded.comment, "
	               "updated_by = excluded.updated_by, updated_at = "
	               "excluded.updated_at",
	               S_TEXT(agent), S_INT(seq), S_TEXT(status),
	               S_TEXT(comment), S_TEXT(r->who), S_INT(now));
	if (n != 1) {
		http_reply_error(r, 500, "store", "cannot store the triage");
		goto out;
	}
	log_info("findings: %s/%lld marked %s by %s", agent, seq, status,
	         r->who);
	http_reply_json(r, 200,
	                json_pack("{s:s, s:I, s:s, s:s?, s:s, s:I}", "agent_id",
	                          agent, "seq", (json_int_t)seq, "status",
	                          status, "comment", comment, "triaged_by",
	                          r->who, "triaged_at", (json_int_t)now));
out:
	json_decref(j);
}

const struct http_route findings_admin_routes[] = {
    {"GET", "/api/v1/findings", adm_findings, 0, "findings", 0, ROLE_READONLY},
    {"GET", "/api/v1/findings/histogram", adm_findings_histogram, 0,
     "findings_histogram", 0, ROLE_READONLY},
    {"PUT", "/api/v1/findings/", adm_finding_put, HTTP_ROUTE_PREFIX, "finding",
     16384, ROLE_ANALYST},
    {NULL, NULL, NULL, 0, NULL, 0, 0},
};
