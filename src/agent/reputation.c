/*
 * reputation.c: known-bad files without rules. A scan hands every file it
 * hashed here; the SHA-256s go to the center in batches of up to
 * REP_BATCH (POST /v1/reputation, the agent's certificate), which asks
 * vigil-inteld through its cache. A file that no rule matched and whose
 * verdict is malicious becomes a finding of kind "Reputation" with the
 * verdict, score and sources. Files a rule matched are already findings;
 * the center records inteld's verdict on those itself.
 *
 * The center or inteld being unavailable never fails the scan: the batch
 * is counted as unchecked, logged once, and the agent does not ask again
 * for REP_PAUSE seconds. The scan's result carries the counts
 * ("reputation": checked, malicious, unchecked, error).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "httpc.h"
#include "log.h"
#include "reputation.h"

#define REP_BATCH 1000
#define REP_PAUSE 30

struct rep_item {
	char sha[65];
	json_t *data; /* the file as a finding's data; NULL: already one */
};

struct rep_batch {
	struct task_run *run;
	struct scan_opts so;
	struct rep_item items[REP_BATCH];
	size_t n;
	long long checked, malicious, unchecked;
	long long paused_until;
	char err[512];
	unsigned *spooled; /* the scan's count of findings spooled */
};

struct rep_batch *
rep_new(struct task_run *run, const struct scan_opts *so, unsigned *spooled)
{
	struct rep_batch *b = calloc(1, sizeof(*b));

	if (b == NULL)
		return NULL;
	b->run = run;
	b->so = *so;
	b->spooled = spooled;
	return b;
}

/* A finding of kind Reputation for a file no rule matched. */
static void
rep_finding(struct rep_batch *b, json_t *data, json_t *ans)
{
	json_t *reasons, *reason, *sig, *brief;
	json_int_t score =
	    json_is_integer(json_object_get(ans, "score"))
	        ? json_integer_value(json_object_get(ans, "score"))
	        : 100;
	const char *level;
	struct buf sum;
	json_t *s;
	size_t i;

	buf_init(&sum, 2048);
	buf_printf(&sum, "Reputation: vigil-inteld says malicious (score %lld)",
	           (long long)score);
	json_array_foreach(json_object_get(ans, "sources"), i,
	                   s) if (json_is_string(s))
	    buf_printf(&sum, "%s %s", i ? "," : ":", json_string_value(s));
	brief = json_pack("{s:s, s:I, s:O}", "verdict", "malicious", "score",
	                  score, "sources", json_object_get(ans, "sources"));
	sig =
	    json_pack("{s:I, s:s, s:n, s:[], s:s, s:n, s:n, s:{}}", "score",
	              score, "kind", "Reputation", "rule_name", "tags",
	              "description", "known bad by its SHA-256 (vigil-inteld)",
	              "reference", "author", "meta");
	reason = json_pack("{s:s, s:o, s:[]}", "summary", buf_cstr(&sum),
	                   "signature", sig, "matched");
	reasons = json_object_get(data, "reasons");
	if (json_is_array(reasons))
		json_array_append_new(reasons, reason);
	else
		json_object_set_new(data, "reasons", json_pack("[o]", reason));
	/* A malicious verdict is an alert whatever its score: the center's
	 * rule for findings it enriches (docs/inteld.md, "Consumers"). */
	level = scan_level_name(SCAN_LEVEL_ALERT);
	json_object_set_new(data, "score", json_integer(score));
	json_object_set_new(data, "level", json_string(level));
	json_object_set_new(data, "intel", brief);
	if (taskrun_event(b->run, "finding", level, data) == 0 &&
	    b->spooled != NULL)
		(*b->spooled)++;
	buf_free(&sum);
}

static void
rep_flush(struct rep_batch *b)
{
	struct agent_state *st = b->run->st;
	struct httpc_opts ho;
	struct httpc_resp r;
	json_t *req = NULL, *a, *res = NULL, *j = NULL;
	char url[4200], *body = NULL;
	long long now = (long long)time(NULL);
	size_t i;

	httpc_resp_init(&r);
	if (b->n == 0)
		goto out;
	if (now < b->paused_until) {
		b->unchecked += (long long)b->n;
		goto out;
	}
	req = json_object();
	a = json_array();
	for (i = 0; i < b->n; i++)
		json_array_append_new(a, json_string(b->items[i].sha));
	json_object_set_new(req, "sha256", a);
	if ((body = json_dumps(req, JSON_COMPACT)) == NULL)
		goto fail;
	agent_httpc_opts(st, 1, &ho);
	snprintf(url, sizeof(url), "%s/v1/reputation", st->server);
	if (httpc_request(&ho, "POST", url, NULL, body, strlen(body), &r) ==
	    -1) {
		snprintf(b->err, sizeof(b->err), "center: %.480s", r.errmsg);
		goto fail;
	}
	j = json_loadb((const char *)r.body.data, r.body.len, 0, NULL);
	if (r.status != 200) {
		const char *m = json_string_value(
		    json_object_get(json_object_get(j, "error"), "message"));

		snprintf(b->err, sizeof(b->err), "center answered %ld: %s",
		         r.status, m ? m : "(no message)");
		goto fail;
	}
	res = json_object_get(j, "results");
	if (json_array_size(res) != b->n) {
		snprintf(b->err, sizeof(b->err),
		         "center: not one answer per hash");
		goto fail;
	}
	for (i = 0; i < b->n; i++) {
		json_t *ans = json_array_get(res, i);
		const char *v =
		    json_string_value(json_object_get(ans, "verdict"));

		b->checked++;
		if (v == NULL || strcmp(v, "malicious") != 0)
			continue;
		b->malicious++;
		if (b->items[i].data != NULL)
			rep_finding(b, b->items[i].data, ans);
	}
	goto out;
fail:
	log_warnx("scan: reputation of %zu files unchecked: %s", b->n, b->err);
	b->unchecked += (long long)b->n;
	b->paused_until = now + REP_PAUSE;
out:
	for (i = 0; i < b->n; i++)
		json_decref(b->items[i].data);
	b->n = 0;
	json_decref(j);
	json_decref(req);
	free(body);
	httpc_resp_free(&r);
}

void
rep_add(struct rep_batch *b, const struct scan_result *r, int spooled)
{
	struct rep_item *it;

	if (b == NULL || !(r->hashes & SCAN_HASH_SHA256))
		return;
	it = &b->items[b->n++];
	memcpy(it->sha, r->sha256, sizeof(it->sha));
	it->data = spooled ? NULL : scan_result_to_json(r);
	if (b->n == REP_BATCH)
		rep_flush(b);
}

void
rep_finish(struct rep_batch *b, json_t *result)
{
	if (b == NULL)
		return;
	rep_flush(b);
	if (result != NULL)
		json_object_set_new(
		    result, "reputation",
		    json_pack("{s:I, s:I, s:I, s:s?}", "checked",
		              (json_int_t)b->checked, "malicious",
		              (json_int_t)b->malicious, "unchecked",
		              (json_int_t)b->unchecked, "error",
		              b->err[0] ? b->err : NULL));
	free(b);
}
