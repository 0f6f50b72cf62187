/*
 * rollout.c: staged agent upgrades (docs/updates.md, "Agent upgrades").
 * An operator starts a rollout of one agent artifact the mirror verified
 * (kind agent, one platform), for the agents with some labels and a
 * percentage of them (chosen by a hash of the agent's ID and the target's
 * name, so the same agents stay chosen and a larger percentage adds to
 * them). A
 * chosen agent of that platform gets {"upgrade": {...}} in its heartbeat
 * reply until it reports running that binary; it checks the artifact
 * from its own pinned root, switches and must check in within the
 * probation, else it rolls back by itself and reports why. When the
 * agents that failed exceed max_failure_rate percent of those that tried,
 * the rollout halts: no further agent is told to upgrade.
 *
 * Progress is counted from what agents report (agents.updates: binary,
 * upgrade_failed), not from what the center asked.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "center.h"
#include "enroll.h"
#include "schema.h"

#define C(r) ((struct center *)(r)->arg)

struct rollout {
	char id[64], sha[65], platform[96], target[256], version[96];
	char state[16], reason[256], by[128];
	json_t *labels;
	long long percent, max_fail, probation, created_at;
	int has_reason, has_by;
};

#define RO_MAX 256 /* rollouts read at once */

static uint64_t
fnv(const char *a, const char *b)
{
	uint64_t h = 14695981039346656037ULL;

	for (const char *s = a; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	h = (h ^ 0x1f) * 1099511628211ULL;
	for (const char *s = b; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

/* 1 when the agent (its labels, platform) is one the rollout chose. */
static int
chosen(const struct rollout *ro, const char *agent_id, json_t *labels,
       const char *arch)
{
	const char *k;
	json_t *v;
	char plat[96];

	snprintf(plat, sizeof(plat), "linux-%s", arch ? arch : "");
	if (strcmp(plat, ro->platform) != 0)
		return 0;
	json_object_foreach(ro->labels, k, v)
	{
		json_t *have = json_object_get(labels, k);

		if (!json_is_string(have) ||
		    strcmp(json_string_value(have), json_string_value(v)) != 0)
			return 0;
	}
	/* By agent and target: the same agents stay chosen for a binary,
	 * and a later rollout at a larger percentage adds to them. */
	return (long long)(fnv(agent_id, ro->target) % 100) < ro->percent;
}

static void
row_rollout(struct store_rows *q, struct rollout *ro)
{
	json_error_t je;

	memset(ro, 0, sizeof(*ro));
	snprintf(ro->id, sizeof(ro->id), "%s", store_text(q, 0));
	snprintf(ro->target, sizeof(ro->target), "%s", store_text(q, 1));
	snprintf(ro->version, sizeof(ro->version), "%s", store_text(q, 2));
	snprintf(ro->state, sizeof(ro->state), "%s", store_text(q, 9));
	if ((ro->has_reason = !store_isnull(q, 10)))
		snprintf(ro->reason, sizeof(ro->reason), "%s",
		         store_text(q, 10));
	ro->created_at = store_int(q, 11);
	if ((ro->has_by = !store_isnull(q, 12)))
		snprintf(ro->by, sizeof(ro->by), "%s", store_text(q, 12));
	snprintf(ro->sha, sizeof(ro->sha), "%s", store_text(q, 3));
	snprintf(ro->platform, sizeof(ro->platform), "%s", store_text(q, 4));
	ro->labels = json_loads(store_text(q, 5), 0, &je);
	if (ro->labels == NULL)
		ro->labels = json_object();
	ro->percent = store_int(q, 6);
	ro->max_fail = store_int(q, 7);
	ro->probation = store_int(q, 8);
}

#define RO_COLUMNS                                                             \
	"id, target, version, sha256, platform, labels, percent, "             \
	"max_failure_rate, probation, state, reason, created_at, created_by"

/* Reads the rollouts (only the active ones when active) into a, newest
 * first; the number read. Free with free_rollouts. */
static size_t
load_rollouts(struct center *c, int active, struct rollout *a)
{
	struct store_rows *q;
	size_t n = 0;

	q = store_query(c->store, active ? "SELECT " RO_COLUMNS
	                                   " FROM rollouts WHERE state = "
	                                   "'active' ORDER BY created_at "
	                                   "DESC, id"
	                                 : "SELECT " RO_COLUMNS
	                                   " FROM rollouts ORDER BY "
	                                   "created_at DESC, id");
	while (q != NULL && n < RO_MAX && store_next(q) == 1)
		row_rollout(q, &a[n++]);
	store_done(q);
	return n;
}

static void
free_rollouts(struct rollout *a, size_t n)
{
	for (size_t i = 0; i < n; i++)
		json_decref(a[i].labels);
}

/* Counts what the chosen agents report. */
/* refused: agents that will not take it (a binary the vigil-agent package
 * installed; docs/updates.md): neither failed nor pending. */
static void
progress(struct center *c, const struct rollout *ro, long long *chosen_n,
         long long *done, long long *failed, long long *refused)
{
	struct store_rows *q;
	json_error_t je;

	*chosen_n = *done = *failed = *refused = 0;
	q = store_query(c->store, "SELECT id, labels, arch, updates FROM "
	                          "agents WHERE status = 'active'");
	while (q != NULL && store_next(q) == 1) {
		json_t *labels = json_loads(
		    store_text(q, 1) ? store_text(q, 1) : "{}", 0, &je);
		json_t *u = store_text(q, 3)
		                ? json_loads(store_text(q, 3), 0, &je)
		                : NULL;
		const char *bin =
		    json_string_value(json_object_get(u, "binary"));
		const char *bad =
		    json_string_value(json_object_get(u, "upgrade_failed"));
		const char *no =
		    json_string_value(json_object_get(u, "upgrade_refused"));

		if (chosen(ro, store_text(q, 0), labels, store_text(q, 2))) {
			(*chosen_n)++;
			if (bin != NULL && strcmp(bin, ro->sha) == 0)
				(*done)++;
			else if (bad != NULL && strcmp(bad, ro->sha) == 0)
				(*failed)++;
			else if (no != NULL && strcmp(no, ro->sha) == 0)
				(*refused)++;
		}
		json_decref(labels);
		json_decref(u);
	}
	store_done(q);
}

/* Halts ro when too many of the agents that tried failed. */
static void
maybe_halt(struct center *c, const struct rollout *ro)
{
	long long n, done, failed, refused;
	char why[256];

	progress(c, ro, &n, &done, &failed, &refused);
	if (failed == 0 || failed * 100 <= ro->max_fail * (done + failed))
		return;
	snprintf(why, sizeof(why),
	         "%lld of %lld agents that tried rolled back, more than %lld%%",
	         failed, done + failed, ro->max_fail);
	if (store_exec(c->store,
	               "UPDATE rollouts SET state = 'halted', reason = ? "
	               "WHERE id = ? AND state = 'active'",
	               S_TEXT(why), S_TEXT(ro->id)) == 1) {
		struct audit_entry a;

		log_warnx("rollout %s of %s halted: %s", ro->id, ro->version,
		          why);
		memset(&a, 0, sizeof(a));
		a.who = "center";
		a.addr = "-";
		a.action = "rollout.halt";
		a.target = ro->id;
		a.status = 200;
		a.error = why;
		audit_append(c, &a);
	}
}

json_t *
rollout_heartbeat(struct center *c, const char *agent_id,
                  const struct host_facts *f)
{
	struct store_rows *q, *lq;
	struct rollout *ros;
	size_t nro;
	json_t *u, *labels = NULL, *out = NULL;
	json_error_t je;
	const char *bin, *bad, *no;

	if (f->updates == NULL || c->upd == NULL)
		return NULL;
	/* One cheap question per heartbeat while no rollout is active. */
	q = store_query(
	    c->store, "SELECT 1 FROM rollouts WHERE state = 'active' LIMIT 1");
	if (q == NULL || store_next(q) != 1) {
		store_done(q);
		return NULL;
	}
	store_done(q);
	u = json_loads(f->updates, 0, &je);
	bin = json_string_value(json_object_get(u, "binary"));
	bad = json_string_value(json_object_get(u, "upgrade_failed"));
	no = json_string_value(json_object_get(u, "upgrade_refused"));
	lq = store_query(c->store, "SELECT labels FROM agents WHERE id = ?",
	                 S_TEXT(agent_id));
	if (lq != NULL && store_next(lq) == 1 && store_text(lq, 0) != NULL)
		labels = json_loads(store_text(lq, 0), 0, &je);
	store_done(lq);
	if ((ros = calloc(RO_MAX, sizeof(*ros))) == NULL)
		goto done;
	nro = load_rollouts(c, 1, ros);
	for (size_t i = 0; out == NULL && i < nro; i++) {
		struct rollout *ro = &ros[i];

		if (!chosen(ro, agent_id, labels, f->arch))
			continue;
		if (bad != NULL && strcmp(bad, ro->sha) == 0)
			maybe_halt(c, ro);
		else if (no != NULL && strcmp(no, ro->sha) == 0)
			continue; /* it said why; asking again changes nothing
			           */
		else if (bin == NULL || strcmp(bin, ro->sha) != 0)
			out = json_pack("{s:s, s:s, s:s, s:I}", "target",
			                ro->target, "sha256", ro->sha,
			                "version", ro->version, "probation",
			                (json_int_t)ro->probation);
	}
	free_rollouts(ros, nro);
	free(ros);
done:
	json_decref(labels);
	json_decref(u);
	return out;
}

/* ---- admin ---- */

static const struct schema_field rollout_schema[] = {
    {"target", SCH_STRING, 1}, {"labels", SCH_OBJECT, 0},
    {"percent", SCH_INT, 0},   {"max_failure_rate", SCH_INT, 0},
    {"probation", SCH_INT, 0}, {NULL, 0, 0},
};

static long long
int_or(json_t *body, const char *k, long long dflt)
{
	json_t *v = json_object_get(body, k);

	return json_is_integer(v) ? json_integer_value(v) : dflt;
}

static void
adm_rollout_add(struct http_req *r)
{
	struct center *c = C(r);
	json_t *body, *tg = NULL, *labels, *v;
	const char *target, *k, *kind, *plat;
	long long pct, mf, prob;
	char id[37], *lj = NULL;

	if (admin_authorize(r) == -1)
		return;
	if ((body = schema_body(r, rollout_schema)) == NULL)
		return;
	target = json_string_value(json_object_get(body, "target"));
	labels = json_object_get(body, "labels");
	pct = int_or(body, "percent", 100);
	mf = int_or(body, "max_failure_rate", 10);
	prob = int_or(body, "probation", 120);
	if (pct < 1 || pct > 100 || mf < 0 || mf > 100 || prob < 5 ||
	    prob > 86400) {
		http_reply_error(
		    r, 400, "bad_request",
		    "percent: 1 to 100; max_failure_rate: 0 to 100; "
		    "probation: 5 to 86400 seconds");
		goto out;
	}
	json_object_foreach(labels, k, v)
	{
		if (!json_is_string(v)) {
			http_reply_error_field(
			    r, 400, "bad_request", "labels",
			    "labels: values must be strings");
			goto out;
		}
	}
	if ((tg = updates_target(c, target)) == NULL) {
		http_reply_error_field(r, 404, "not_found", "target",
		                       "target: %.200s is not in the verified "
		                       "update repository",
		                       target);
		goto out;
	}
	kind = json_string_value(json_object_get(tg, "kind"));
	plat = json_string_value(json_object_get(tg, "platform"));
	if (kind == NULL || strcmp(kind, "agent") != 0 || plat == NULL) {
		http_reply_error_field(r, 400, "bad_request", "target",
		                       "target: %.200s is not an agent binary",
		                       target);
		goto out;
	}
	random_uuid(id);
	lj = json_dumps(labels ? labels : json_object(),
	                JSON_COMPACT | JSON_SORT_KEYS);
	if (store_exec(
	        c->store,
	        "INSERT INTO rollouts (" RO_COLUMNS ") VALUES (?, ?, ?, "
	        "?, ?, ?, ?, ?, ?, 'active', NULL, ?, ?)",
	        S_TEXT(id), S_TEXT(target),
	        S_TEXT(json_string_value(json_object_get(tg, "version"))),
	        S_TEXT(json_string_value(json_object_get(tg, "sha256"))),
	        S_TEXT(plat), S_TEXT(lj), S_INT(pct), S_INT(mf), S_INT(prob),
	        S_INT(time(NULL)), S_TEXT(r->who)) != 1) {
		http_reply_error(r, 503, "store_busy", "store busy; retry");
		goto out;
	}
	log_info("rollout %s: %s %s to %lld%% of agents by %s", id, target,
	         json_string_value(json_object_get(tg, "version")), pct,
	         r->who);
	http_reply_json(
	    r, 201,
	    json_pack("{s:s, s:s, s:O, s:O, s:s}", "id", id, "target", target,
	              "version", json_object_get(tg, "version"), "sha256",
	              json_object_get(tg, "sha256"), "platform", plat));
out:
	free(lj);
	json_decref(tg);
	json_decref(body);
}

static void
adm_rollouts(struct http_req *r)
{
	struct center *c = C(r);
	struct rollout *ros;
	json_t *items = json_array();
	size_t n;

	if (admin_authorize(r) == -1) {
		json_decref(items);
		return;
	}
	if ((ros = calloc(RO_MAX, sizeof(*ros))) == NULL) {
		json_decref(items);
		http_reply_error(r, 503, "store_busy", "out of memory; retry");
		return;
	}
	n = load_rollouts(c, 0, ros);
	for (size_t i = 0; i < n; i++) {
		struct rollout *ro = &ros[i];
		long long ch, done, failed, refused;

		progress(c, ro, &ch, &done, &failed, &refused);
		json_array_append_new(
		    items,
		    json_pack("{s:s, s:s, s:s, s:s, s:s, s:O, s:I, s:I, s:I, "
		              "s:s, s:s?, s:I, s:s?, s:I, s:I, s:I, s:I, s:I}",
		              "id", ro->id, "target", ro->target, "version",
		              ro->version, "sha256", ro->sha, "platform",
		              ro->platform, "labels", ro->labels, "percent",
		              (json_int_t)ro->percent, "max_failure_rate",
		              (json_int_t)ro->max_fail, "probation",
		              (json_int_t)ro->probation, "state", ro->state,
		              "reason", ro->has_reason ? ro->reason : NULL,
		              "created_at", (json_int_t)ro->created_at,
		              "created_by", ro->has_by ? ro->by : NULL,
		              "chosen", (json_int_t)ch, "upgraded",
		              (json_int_t)done, "failed", (json_int_t)failed,
		              "refused", (json_int_t)refused, "pending",
		              (json_int_t)(ch - done - failed - refused)));
	}
	free_rollouts(ros, n);
	free(ros);
	http_reply_json(r, 200, json_pack("{s:o}", "items", items));
}

static void
adm_rollout_stop(struct http_req *r)
{
	if (admin_authorize(r) == -1 || schema_no_body(r) == -1)
		return;
	audit_before_row(r,
	                 "SELECT id, target, version, state FROM rollouts "
	                 "WHERE id = ?",
	                 r->rest);
	if (store_exec(C(r)->store,
	               "UPDATE rollouts SET state = 'stopped' WHERE id = ? AND "
	               "state IN ('active', 'halted')",
	               S_TEXT(r->rest)) != 1) {
		http_reply_error(r, 404, "not_found",
		                 "no active or halted rollout %.64s", r->rest);
		return;
	}
	http_reply_json(
	    r, 200, json_pack("{s:s, s:s}", "id", r->rest, "state", "stopped"));
}

const struct http_route rollout_admin_routes[] = {
    {"POST", "/api/v1/rollouts", adm_rollout_add, 0, "rollouts", 0,
     ROLE_OPERATOR},
    {"GET", "/api/v1/rollouts", adm_rollouts, 0, "rollouts", 0, ROLE_READONLY},
    {"DELETE", "/api/v1/rollouts/", adm_rollout_stop, HTTP_ROUTE_PREFIX,
     "rollout", 0, ROLE_OPERATOR},
    {NULL, NULL, NULL, 0, NULL, 0, 0},
};
