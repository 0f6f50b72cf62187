/*
 * task.c: `vigilctl task ...`: create tasks for agents (a kind such as scan
 * or inventory, its parameters and a target), list, show, watch and cancel
 * them; save task templates and schedule recurring tasks. The center checks
 * kinds and parameters against its table (`vigilctl task kinds`); this
 * file only turns options into the API's JSON and replies into tables.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "ctl.h"

#define WATCH_RUN_LINES 10 /* runs shown by name in one watch update */

static void
task_usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: vigilctl task create KIND TARGET [PARAMS] [--timeout DUR] "
	    "[--expires DUR]\n"
	    "                            [--template NAME]\n"
	    "       vigilctl task list\n"
	    "       vigilctl task show TASK_ID\n"
	    "       vigilctl task watch TASK_ID [--interval SECS]\n"
	    "       vigilctl task cancel TASK_ID\n"
	    "       vigilctl task kinds\n"
	    "       vigilctl task template add NAME KIND [PARAMS] [--timeout "
	    "DUR] [--expires DUR]\n"
	    "       vigilctl task template list\n"
	    "       vigilctl task schedule add NAME --cron 'M H DOM MON DOW' "
	    "[KIND] TARGET\n"
	    "                            [PARAMS] [--timeout DUR] [--expires "
	    "DUR] [--template NAME]\n"
	    "       vigilctl task schedule list\n"
	    "       vigilctl task schedule remove NAME\n"
	    "TARGET is one of:\n"
	    "  --agent ID           one agent (repeat for several)\n"
	    "  --target K=V[,K=V]   agents with all these labels\n"
	    "  --all                every active agent\n"
	    "PARAMS are any of:\n"
	    "  --path P             scan: a path to scan (repeatable)\n"
	    "  --exclude GLOB       scan: paths to skip (repeatable)\n"
	    "  --rules NAME         scan: a rule set to use (repeatable; "
	    "default all)\n"
	    "  --pid N              scan: with --param memory=true, only this "
	    "process (repeatable)\n"
	    "  --param NAME=VALUE   another parameter: an integer, true, "
	    "false or a string\n"
	    "options:\n"
	    "  --timeout DUR        time a run may take once picked up "
	    "(default 1h)\n"
	    "  --expires DUR        time agents have to pick the task up "
	    "(default 1d)\n"
	    "  --template NAME      start from this template (then KIND is "
	    "optional)\n"
	    "  --cron EXPR          when the schedule runs, cron syntax in "
	    "UTC\n"
	    "  --interval SECS      seconds between updates of watch "
	    "(default 2)\n"
	    "Durations: 90, 30s, 15m, 2h, 7d. 'vigilctl task kinds' lists "
	    "kinds and parameters.\n");
}

/* Task and agent IDs: what agent.c accepts. */
static int
valid_id(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > 64)
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		      (s[i] >= 'a' && s[i] <= 'z') || s[i] == '-' ||
		      s[i] == '_'))
			return 0;
	return 1;
}

/* --- task specs from options ------------------------------------------- */

enum spec_mode { SPEC_TASK, SPEC_TEMPLATE, SPEC_SCHEDULE };

struct spec {
	json_t *params; /* object */
	json_t *agents; /* --agent IDs */
	json_t *labels; /* --target K=V */
	int all;
	long long timeout, expires; /* 0: not given */
	const char *tmpl, *cron;
};

static void
spec_free(struct spec *s)
{
	json_decref(s->params);
	json_decref(s->agents);
	json_decref(s->labels);
}

static int
list_add(json_t *params, const char *name, const char *v, const char *opt)
{
	json_t *a = json_object_get(params, name), *e;

	if (*v == '\0' || (e = json_string(v)) == NULL) {
		fprintf(stderr, "vigilctl: %s: must be UTF-8 text, not empty\n",
		        opt);
		return -1;
	}
	if (a == NULL) {
		a = json_array();
		json_object_set_new(params, name, a);
	}
	json_array_append_new(a, e);
	return 0;
}

/* --pid N: appended to params.pids (a list of integers). */
static int
pid_add(json_t *params, const char *v)
{
	json_t *a = json_object_get(params, "pids");
	long long n;

	if (str_to_ll(v, 1, 1LL << 22, &n) == -1) {
		fprintf(stderr, "vigilctl: --pid: '%s' is not a process id\n",
		        v);
		return -1;
	}
	if (a == NULL) {
		a = json_array();
		json_object_set_new(params, "pids", a);
	}
	json_array_append_new(a, json_integer(n));
	return 0;
}

/* --param NAME=VALUE: an integer if it parses as one, true and false as
 * booleans, anything else a string. */
static int
param_add(json_t *params, char *arg)
{
	char *eq = strchr(arg, '=');
	long long n;
	json_t *v;

	if (eq == NULL || eq == arg || eq - arg > 64) {
		fprintf(stderr, "vigilctl: --param: '%s' is not NAME=VALUE\n",
		        arg);
		return -1;
	}
	*eq = '\0';
	if (strcmp(arg, "paths") == 0 || strcmp(arg, "exclude") == 0 ||
	    strcmp(arg, "rules") == 0) {
		fprintf(stderr,
		        "vigilctl: --param: give %s with --%s, once per "
		        "value\n",
		        arg, strcmp(arg, "paths") == 0 ? "path" : arg);
		*eq = '=';
		return -1;
	}
	if (str_to_ll(eq + 1, -(1LL << 62), 1LL << 62, &n) == 0)
		v = json_integer(n);
	else if (strcmp(eq + 1, "true") == 0)
		v = json_true();
	else if (strcmp(eq + 1, "false") == 0)
		v = json_false();
	else
		v = json_string(eq + 1);
	if (v == NULL) {
		fprintf(stderr, "vigilctl: --param %s: not UTF-8 text\n", arg);
		*eq = '=';
		return -1;
	}
	json_object_set_new(params, arg, v);
	*eq = '=';
	return 0;
}

/* --target K=V[,K=V...] */
static int
labels_add(json_t *labels, const char *arg)
{
	char *s = strdup(arg), *p, *comma, *eq;
	json_t *v;
	int rc = -1;

	if (s == NULL)
		return -1;
	for (p = s; p != NULL; p = comma ? comma + 1 : NULL) {
		if ((comma = strchr(p, ',')) != NULL)
			*comma = '\0';
		if ((eq = strchr(p, '=')) == NULL || eq == p) {
			fprintf(stderr,
			        "vigilctl: --target: '%s' is not "
			        "KEY=VALUE[,KEY=VALUE...]\n",
			        arg);
			goto out;
		}
		*eq = '\0';
		if ((v = json_string(eq + 1)) == NULL ||
		    json_object_set_new(labels, p, v) == -1) {
			fprintf(stderr,
			        "vigilctl: --target: '%s' is not "
			        "UTF-8 text\n",
			        arg);
			goto out;
		}
	}
	rc = 0;
out:
	free(s);
	return rc;
}

static int
duration_opt(const char *opt, const char *v, long long *out)
{
	if (str_to_duration(v, out) == -1) {
		fprintf(stderr,
		        "vigilctl: %s: '%s' is not a duration (e.g. 30m, 2h, "
		        "1d)\n",
		        opt, v);
		return -1;
	}
	return 0;
}

/*
 * Parses the options of create, template add and schedule add into s;
 * the positional arguments are left at argv[optind..]. Returns 0, 1 when
 * help was printed, -1 on a usage error (message printed).
 */
static int
spec_parse(int argc, char **argv, enum spec_mode mode, struct spec *s)
{
	static const struct option opts[] = {
	    {"agent", required_argument, NULL, 'a'},
	    {"target", required_argument, NULL, 't'},
	    {"all", no_argument, NULL, 'A'},
	    {"param", required_argument, NULL, 'p'},
	    {"path", required_argument, NULL, 'P'},
	    {"exclude", required_argument, NULL, 'x'},
	    {"rules", required_argument, NULL, 'r'},
	    {"pid", required_argument, NULL, 'i'},
	    {"timeout", required_argument, NULL, 'T'},
	    {"expires", required_argument, NULL, 'e'},
	    {"template", required_argument, NULL, 'm'},
	    {"cron", required_argument, NULL, 'c'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int ch, idx, ntargets;

	memset(s, 0, sizeof(*s));
	s->params = json_object();
	s->agents = json_array();
	s->labels = json_object();
	while ((ch = getopt_long(argc, argv, "h", opts, &idx)) != -1) {
		if (((ch == 'a' || ch == 't' || ch == 'A' || ch == 'm') &&
		     mode == SPEC_TEMPLATE) ||
		    (ch == 'c' && mode != SPEC_SCHEDULE)) {
			fprintf(stderr,
			        "vigilctl: --%s: not an option of this "
			        "command\n",
			        opts[idx].name);
			return -1;
		}
		switch (ch) {
		case 'a':
			if (!valid_id(optarg)) {
				fprintf(stderr,
				        "vigilctl: --agent: '%s' is not an "
				        "agent id\n",
				        optarg);
				return -1;
			}
			json_array_append_new(s->agents, json_string(optarg));
			break;
		case 't':
			if (labels_add(s->labels, optarg) == -1)
				return -1;
			break;
		case 'A':
			s->all = 1;
			break;
		case 'p':
			if (param_add(s->params, optarg) == -1)
				return -1;
			break;
		case 'P':
			if (list_add(s->params, "paths", optarg, "--path") ==
			    -1)
				return -1;
			break;
		case 'x':
			if (list_add(s->params, "exclude", optarg,
			             "--exclude") == -1)
				return -1;
			break;
		case 'i':
			if (pid_add(s->params, optarg) == -1)
				return -1;
			break;
		case 'r':
			if (list_add(s->params, "rules", optarg, "--rules") ==
			    -1)
				return -1;
			break;
		case 'T':
			if (duration_opt("--timeout", optarg, &s->timeout) ==
			    -1)
				return -1;
			break;
		case 'e':
			if (duration_opt("--expires", optarg, &s->expires) ==
			    -1)
				return -1;
			break;
		case 'm':
			if (!str_is_name(optarg)) {
				fprintf(stderr,
				        "vigilctl: --template: '%s' is not a "
				        "template name\n",
				        optarg);
				return -1;
			}
			s->tmpl = optarg;
			break;
		case 'c':
			s->cron = optarg;
			break;
		case 'h':
			task_usage(stdout);
			return 1;
		default:
			task_usage(stderr);
			return -1;
		}
	}
	ntargets = (json_array_size(s->agents) > 0) +
	           (json_object_size(s->labels) > 0) + s->all;
	if (mode != SPEC_TEMPLATE && ntargets != 1) {
		fprintf(stderr, "vigilctl: %s\n",
		        ntargets == 0
		            ? "a target is required: --agent ID, --target "
		              "K=V or --all"
		            : "--agent, --target and --all exclude each other");
		return -1;
	}
	if (mode == SPEC_SCHEDULE && (s->cron == NULL || *s->cron == '\0')) {
		fprintf(stderr, "vigilctl: --cron 'M H DOM MON DOW' is "
		                "required\n");
		return -1;
	}
	return 0;
}

/* The API's task spec: {"kind", "params", "target", "timeout",
 * "expires", "template"}, each only when given, so that a template's
 * fields stay unless the command line names them. */
static json_t *
spec_json(struct spec *s, const char *kind)
{
	json_t *o = json_object();

	if (kind != NULL)
		json_object_set_new(o, "kind", json_string(kind));
	if (json_object_size(s->params) > 0)
		json_object_set(o, "params", s->params);
	if (json_array_size(s->agents) == 1)
		json_object_set_new(
		    o, "target",
		    json_pack("{s:O}", "agent", json_array_get(s->agents, 0)));
	else if (json_array_size(s->agents) > 1)
		json_object_set_new(o, "target",
		                    json_pack("{s:O}", "agents", s->agents));
	else if (json_object_size(s->labels) > 0)
		json_object_set_new(o, "target",
		                    json_pack("{s:O}", "labels", s->labels));
	else if (s->all)
		json_object_set_new(o, "target", json_pack("{s:b}", "all", 1));
	if (s->timeout > 0)
		json_object_set_new(o, "timeout", json_integer(s->timeout));
	if (s->expires > 0)
		json_object_set_new(o, "expires", json_integer(s->expires));
	if (s->tmpl != NULL)
		json_object_set_new(o, "template", json_string(s->tmpl));
	return o;
}

static int
valid_kind(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > 32) {
		fprintf(stderr, "vigilctl: '%s' is not a task kind\n", s);
		return 0;
	}
	for (i = 0; i < n; i++) {
		if (!((s[i] >= 'a' && s[i] <= 'z') || s[i] == '-')) {
			fprintf(stderr,
			        "vigilctl: '%s' is not a task kind (see "
			        "vigilctl task kinds)\n",
			        s);
			return 0;
		}
	}
	return 1;
}

static int
task_create(int argc, char **argv)
{
	struct spec s;
	const char *kind = NULL;
	json_t *body = NULL, *j;
	int rc = 2, n;

	if ((n = spec_parse(argc, argv, SPEC_TASK, &s)) != 0) {
		rc = n == 1 ? 0 : 2;
		goto out;
	}
	if (argc - optind > 1 || (argc == optind && s.tmpl == NULL)) {
		fprintf(stderr, "vigilctl: task create: give one KIND%s\n",
		        s.tmpl ? "" : " (or --template NAME)");
		goto out;
	}
	if (argc - optind == 1) {
		kind = argv[optind];
		if (!valid_kind(kind))
			goto out;
	}
	body = spec_json(&s, kind);
	rc = 1;
	if ((j = ctl_api("POST", "/api/v1/tasks", body)) == NULL)
		goto out;
	if (ctl.json)
		ctl_print_json(j);
	else {
		n = (int)json_integer_value(json_object_get(j, "agents"));
		printf("created task %s for %d agent%s\n",
		       json_string_value(json_object_get(j, "id")), n,
		       n == 1 ? "" : "s");
	}
	json_decref(j);
	rc = 0;
out:
	json_decref(body);
	spec_free(&s);
	return rc;
}

/* --- listing and showing ------------------------------------------------ */

static void
target_str(json_t *t, char *out, size_t n)
{
	json_t *v;
	const char *k;
	struct buf b;

	if ((v = json_object_get(t, "agent")) != NULL)
		snprintf(out, n, "agent %s",
		         json_is_string(v) ? json_string_value(v) : "?");
	else if ((v = json_object_get(t, "agents")) != NULL)
		snprintf(out, n, "%zu agents", json_array_size(v));
	else if ((v = json_object_get(t, "labels")) != NULL) {
		json_t *e;

		buf_init(&b, 4096);
		json_object_foreach(v, k, e)
		{
			buf_printf(&b, "%s%s=%s", b.len ? "," : "", k,
			           json_is_string(e) ? json_string_value(e)
			                             : "?");
		}
		snprintf(out, n, "%s", b.len ? buf_cstr(&b) : "-");
		buf_free(&b);
	} else if (json_is_true(json_object_get(t, "all")))
		snprintf(out, n, "all");
	else
		snprintf(out, n, "-");
	ctl_clean(out, n > 121 ? 120 : 0);
}

static long long
count(json_t *counts, const char *state)
{
	json_t *v = json_object_get(counts, state);

	return json_is_integer(v) ? json_integer_value(v) : 0;
}

static const char *const run_states[] = {
    "queued", "dispatched", "running", "done",
    "failed", "cancelled",  "expired", NULL,
};

/* "1 queued, 2 running, 3 done": the states that have runs. */
static void
counts_str(json_t *counts, char *out, size_t n)
{
	size_t i, len = 0;

	out[0] = '\0';
	for (i = 0; run_states[i] != NULL && len < n; i++) {
		if (count(counts, run_states[i]) == 0)
			continue;
		len += (size_t)snprintf(
		    out + len, n - len, "%s%lld %s", len ? ", " : "",
		    count(counts, run_states[i]), run_states[i]);
	}
	if (out[0] == '\0')
		snprintf(out, n, "no runs");
}

static int
task_list(void)
{
	static const char *const cols[] = {
	    "id",     "kind",     "created_s", "target_s", "queued", "busy",
	    "done_n", "failed_n", "cancelled", "expired",  NULL};
	static const char *const hdrs[] = {
	    "ID",   "KIND",   "CREATED",   "TARGET",  "QUEUED", "RUNNING",
	    "DONE", "FAILED", "CANCELLED", "EXPIRED", NULL};
	json_t *j, *a, *row, *runs;
	char buf[256];
	size_t i;

	if ((j = ctl_api("GET", "/api/v1/tasks?limit=500", NULL)) == NULL)
		return 1;
	a = json_object_get(j, "items");
	if (ctl.json)
		ctl_print_json(a);
	else {
		json_array_foreach(a, i, row)
		{
			json_t *t = json_object_get(row, "created_at");

			runs = json_object_get(row, "runs");
			ctl_utc(json_is_integer(t) ? json_integer_value(t) : 0,
			        0, buf, sizeof(buf));
			json_object_set_new(row, "created_s", json_string(buf));
			target_str(json_object_get(row, "target"), buf,
			           sizeof(buf));
			json_object_set_new(row, "target_s", json_string(buf));
			json_object_set_new(
			    row, "queued", json_integer(count(runs, "queued")));
			/* Handed to the agent or reported running. */
			json_object_set_new(
			    row, "busy",
			    json_integer(count(runs, "dispatched") +
			                 count(runs, "running")));
			json_object_set_new(row, "done_n",
			                    json_integer(count(runs, "done")));
			json_object_set_new(
			    row, "failed_n",
			    json_integer(count(runs, "failed")));
			json_object_set_new(
			    row, "cancelled",
			    json_integer(count(runs, "cancelled")));
			json_object_set_new(
			    row, "expired",
			    json_integer(count(runs, "expired")));
		}
		ctl_table(a, cols, hdrs);
	}
	json_decref(j);
	return 0;
}

/* Parameters as compact JSON, with resolved rule sets shown by name. */
static void
params_str(json_t *params, char *out, size_t n)
{
	json_t *p = json_deep_copy(params), *rules, *names, *e;
	size_t i;
	char *s;

	rules = json_object_get(p, "rules");
	if (json_is_array(rules)) {
		names = json_array();
		json_array_foreach(rules, i, e)
		{
			json_array_append(
			    names,
			    json_is_object(e) ? json_object_get(e, "name") : e);
		}
		json_object_set_new(p, "rules", names);
	}
	s = p ? json_dumps(p, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	snprintf(out, n, "%s", s ? s : "{}");
	free(s);
	json_decref(p);
}

/* Done and failed runs: their result; others: their progress. */
static void
run_summary(json_t *run, char *out, size_t n, size_t max)
{
	json_t *r = json_object_get(run, "result");

	ctl_brief(json_is_object(r) ? r : json_object_get(run, "progress"), out,
	          n, max);
}

static void
runs_table(json_t *runs)
{
	static const char *const cols[] = {"agent_id", "hostname", "state",
	                                   "summary",  "reason",   NULL};
	static const char *const hdrs[] = {"AGENT",    "HOSTNAME", "STATE",
	                                   "PROGRESS", "REASON",   NULL};
	json_t *row;
	char sum[256];
	size_t i;

	json_array_foreach(runs, i, row)
	{
		run_summary(row, sum, sizeof(sum), 60);
		json_object_set_new(row, "summary", json_string(sum));
		ctl_clean_field(row, "hostname", 64);
		ctl_clean_field(row, "reason", 80);
	}
	ctl_table(runs, cols, hdrs);
}

static int
task_show(const char *id)
{
	char path[128], buf[4096];
	json_t *j, *v;

	if (!valid_id(id)) {
		fprintf(stderr, "vigilctl: '%s' is not a task id\n", id);
		return 2;
	}
	snprintf(path, sizeof(path), "/api/v1/tasks/%s", id);
	if ((j = ctl_api("GET", path, NULL)) == NULL)
		return 1;
	if (ctl.json) {
		ctl_print_json(j);
		json_decref(j);
		return 0;
	}
	printf("id:        %s\n", json_string_value(json_object_get(j, "id")));
	printf("kind:      %s\n",
	       json_string_value(json_object_get(j, "kind")));
	ctl_utc(json_integer_value(json_object_get(j, "created_at")), 0, buf,
	        sizeof(buf));
	v = json_object_get(j, "created_by");
	printf("created:   %s by %s\n", buf,
	       json_is_string(v) ? json_string_value(v) : "-");
	if (json_is_string(v = json_object_get(j, "schedule_id")))
		printf("schedule:  %s\n", json_string_value(v));
	target_str(json_object_get(j, "target"), buf, sizeof(buf));
	printf("target:    %s\n", buf);
	params_str(json_object_get(j, "params"), buf, sizeof(buf));
	printf("params:    %s\n", buf);
	printf("timeout:   %lld s\n",
	       (long long)json_integer_value(json_object_get(j, "timeout")));
	ctl_utc(json_integer_value(json_object_get(j, "expires_at")), 0, buf,
	        sizeof(buf));
	printf("expires:   %s (runs not picked up by then expire)\n", buf);
	if (json_is_integer(v = json_object_get(j, "cancelled_at"))) {
		ctl_utc(json_integer_value(v), 0, buf, sizeof(buf));
		printf("cancelled: %s\n", buf);
	}
	counts_str(json_object_get(j, "counts"), buf, sizeof(buf));
	printf("runs:      %s\n\n", buf);
	runs_table(json_object_get(j, "runs"));
	json_decref(j);
	return 0;
}

/* --- watch ------------------------------------------------------------- */

/* One update: counts, then the runs in progress (or, at the end, the
 * failed ones) by name. */
static void
watch_text(json_t *j, int final, struct buf *b)
{
	json_t *runs = json_object_get(j, "runs"), *run;
	char line[512], sum[256], host[80];
	size_t i, shown = 0, more = 0;
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(line, sizeof(line), "%H:%M:%SZ", &tm);
	buf_printf(b, "%s  %zu run%s: ", line, json_array_size(runs),
	           json_array_size(runs) == 1 ? "" : "s");
	counts_str(json_object_get(j, "counts"), line, sizeof(line));
	buf_printf(b, "%s\n", line);
	json_array_foreach(runs, i, run)
	{
		const char *st =
		    json_string_value(json_object_get(run, "state"));
		json_t *h = json_object_get(run, "hostname");
		json_t *reason = json_object_get(run, "reason");

		if (st == NULL || strcmp(st, final ? "failed" : "running") != 0)
			continue;
		if (shown == WATCH_RUN_LINES) {
			more++;
			continue;
		}
		snprintf(host, sizeof(host), "%s",
		         json_is_string(h) ? json_string_value(h)
		                           : json_string_value(json_object_get(
		                                 run, "agent_id")));
		ctl_clean(host, 64);
		if (final) {
			snprintf(sum, sizeof(sum), "%s",
			         json_is_string(reason)
			             ? json_string_value(reason)
			             : "no reason given");
			ctl_clean(sum, 120);
		} else
			run_summary(run, sum, sizeof(sum), 100);
		buf_printf(b, "  %s: %s %s\n", host, st, sum);
		shown++;
	}
	if (more > 0)
		buf_printf(b, "  ... and %zu more %s\n", more,
		           final ? "failed" : "running");
}

static int
task_watch(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"interval", required_argument, NULL, 'i'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct buf last, now;
	char path[128];
	long long interval = 2, failed, open;
	const char *id;
	json_t *j, *counts;
	int ch, rc = 2;

	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'i':
			if (str_to_ll(optarg, 1, 3600, &interval) == -1) {
				fprintf(stderr,
				        "vigilctl: --interval: '%s' is not "
				        "seconds 1..3600\n",
				        optarg);
				return 2;
			}
			break;
		case 'h':
			task_usage(stdout);
			return 0;
		default:
			task_usage(stderr);
			return 2;
		}
	}
	if (argc - optind != 1) {
		task_usage(stderr);
		return 2;
	}
	id = argv[optind];
	if (!valid_id(id)) {
		fprintf(stderr, "vigilctl: '%s' is not a task id\n", id);
		return 2;
	}
	snprintf(path, sizeof(path), "/api/v1/tasks/%s", id);
	buf_init(&last, 1 << 20);
	buf_init(&now, 1 << 20);
	for (;;) {
		if ((j = ctl_api("GET", path, NULL)) == NULL) {
			rc = 1;
			break;
		}
		counts = json_object_get(j, "counts");
		open = count(counts, "queued") + count(counts, "dispatched") +
		       count(counts, "running");
		failed = count(counts, "failed");
		buf_reset(&now);
		watch_text(j, open == 0, &now);
		/* Print only what changed; the time stamp is not a change. */
		if (!ctl.json && (last.len < 11 || now.len != last.len ||
		                  memcmp(now.data + 11, last.data + 11,
		                         now.len - 11) != 0)) {
			fputs(buf_cstr(&now), stdout);
			fflush(stdout);
			buf_reset(&last);
			buf_append(&last, now.data, now.len);
		}
		if (open == 0) {
			if (ctl.json)
				ctl_print_json(j);
			else
				printf("task %s finished: %s\n", id,
				       failed ? "some runs failed"
				              : "no run failed");
			json_decref(j);
			rc = failed ? 1 : 0;
			break;
		}
		json_decref(j);
		sleep((unsigned)interval);
	}
	buf_free(&last);
	buf_free(&now);
	return rc;
}

static int
task_cancel(const char *id)
{
	char path[128];
	json_t *j;

	if (!valid_id(id)) {
		fprintf(stderr, "vigilctl: '%s' is not a task id\n", id);
		return 2;
	}
	snprintf(path, sizeof(path), "/api/v1/tasks/%s/cancel", id);
	if ((j = ctl_api("POST", path, NULL)) == NULL)
		return 1;
	if (ctl.json)
		ctl_print_json(j);
	else
		printf("cancelled task %s (%lld runs stopped)\n", id,
		       (long long)json_integer_value(
		           json_object_get(j, "runs_cancelled")));
	json_decref(j);
	return 0;
}

static int
task_kinds(void)
{
	static const char *const cols[] = {"name", "help", "params_s", NULL};
	static const char *const hdrs[] = {"KIND", "WHAT",
	                                   "PARAMETERS (* required)", NULL};
	json_t *j, *a, *row, *p;
	struct buf b;
	size_t i, k;

	if ((j = ctl_api("GET", "/api/v1/task-kinds", NULL)) == NULL)
		return 1;
	a = json_object_get(j, "kinds");
	if (ctl.json)
		ctl_print_json(a);
	else {
		json_array_foreach(a, i, row)
		{
			buf_init(&b, 4096);
			json_array_foreach(json_object_get(row, "params"), k, p)
			{
				buf_printf(
				    &b, "%s%s%s (%s)", b.len ? ", " : "",
				    json_string_value(
				        json_object_get(p, "name")),
				    json_is_true(json_object_get(p, "required"))
				        ? "*"
				        : "",
				    json_string_value(
				        json_object_get(p, "type")));
			}
			json_object_set_new(
			    row, "params_s",
			    json_string(b.len ? buf_cstr(&b) : "-"));
			buf_free(&b);
		}
		ctl_table(a, cols, hdrs);
	}
	json_decref(j);
	return 0;
}

/* --- templates and schedules -------------------------------------------- */

static int
template_add(int argc, char **argv)
{
	struct spec s;
	json_t *body = NULL, *spec, *j;
	const char *name;
	int rc = 2, n;

	if ((n = spec_parse(argc, argv, SPEC_TEMPLATE, &s)) != 0) {
		rc = n == 1 ? 0 : 2;
		goto out;
	}
	if (argc - optind != 2) {
		fprintf(stderr, "vigilctl: task template add: give NAME and "
		                "KIND\n");
		goto out;
	}
	name = argv[optind];
	if (!str_is_name(name)) {
		fprintf(stderr,
		        "vigilctl: '%s' is not a template name (letters, "
		        "digits, '-', '_', '.'; at most 64)\n",
		        name);
		goto out;
	}
	if (!valid_kind(argv[optind + 1]))
		goto out;
	spec = spec_json(&s, argv[optind + 1]);
	body = json_pack("{s:s, s:o}", "name", name, "spec", spec);
	rc = 1;
	if (body == NULL ||
	    (j = ctl_api("POST", "/api/v1/templates", body)) == NULL)
		goto out;
	if (ctl.json)
		ctl_print_json(j);
	else
		printf("saved template %s\n", name);
	json_decref(j);
	rc = 0;
out:
	json_decref(body);
	spec_free(&s);
	return rc;
}

static int
template_list(void)
{
	static const char *const cols[] = {"name",    "kind",    "params_s",
	                                   "timeout", "expires", NULL};
	static const char *const hdrs[] = {"NAME",    "KIND",    "PARAMS",
	                                   "TIMEOUT", "EXPIRES", NULL};
	json_t *j, *a, *row, *spec;
	char buf[4096];
	size_t i;

	if ((j = ctl_api("GET", "/api/v1/templates?limit=1000", NULL)) == NULL)
		return 1;
	a = json_object_get(j, "items");
	if (ctl.json)
		ctl_print_json(a);
	else {
		json_array_foreach(a, i, row)
		{
			spec = json_object_get(row, "spec");
			json_object_set(row, "kind",
			                json_object_get(spec, "kind"));
			json_object_set(row, "timeout",
			                json_object_get(spec, "timeout"));
			json_object_set(row, "expires",
			                json_object_get(spec, "expires"));
			params_str(json_object_get(spec, "params"), buf,
			           sizeof(buf));
			ctl_clean(buf, 80);
			json_object_set_new(row, "params_s", json_string(buf));
		}
		ctl_table(a, cols, hdrs);
	}
	json_decref(j);
	return 0;
}

static int
schedule_add(int argc, char **argv)
{
	struct spec s;
	json_t *body = NULL, *task, *j;
	const char *name, *kind = NULL;
	int rc = 2, n;

	if ((n = spec_parse(argc, argv, SPEC_SCHEDULE, &s)) != 0) {
		rc = n == 1 ? 0 : 2;
		goto out;
	}
	if (argc - optind < 1 || argc - optind > 2 ||
	    (argc - optind == 1 && s.tmpl == NULL)) {
		fprintf(stderr, "vigilctl: task schedule add: give NAME and "
		                "KIND (or --template NAME)\n");
		goto out;
	}
	name = argv[optind];
	if (!str_is_name(name)) {
		fprintf(stderr,
		        "vigilctl: '%s' is not a schedule name (letters, "
		        "digits, '-', '_', '.'; at most 64)\n",
		        name);
		goto out;
	}
	if (argc - optind == 2) {
		kind = argv[optind + 1];
		if (!valid_kind(kind))
			goto out;
	}
	task = spec_json(&s, kind);
	body = json_pack("{s:s, s:s, s:o}", "name", name, "cron", s.cron,
	                 "task", task);
	rc = 1;
	if (body == NULL ||
	    (j = ctl_api("POST", "/api/v1/schedules", body)) == NULL)
		goto out;
	if (ctl.json)
		ctl_print_json(j);
	else
		printf("created schedule %s (%s)\n", name,
		       json_string_value(json_object_get(j, "id")));
	json_decref(j);
	rc = 0;
out:
	json_decref(body);
	spec_free(&s);
	return rc;
}

static int
schedule_list(void)
{
	static const char *const cols[] = {
	    "name", "cron", "kind_s", "target_s", "enabled", "last", NULL};
	static const char *const hdrs[] = {"NAME",   "CRON (UTC)", "KIND",
	                                   "TARGET", "ENABLED",    "LAST RUN",
	                                   NULL};
	json_t *j, *a, *row, *task, *k, *t;
	char buf[256];
	size_t i;

	if ((j = ctl_api("GET", "/api/v1/schedules?limit=1000", NULL)) == NULL)
		return 1;
	a = json_object_get(j, "items");
	if (ctl.json)
		ctl_print_json(a);
	else {
		json_array_foreach(a, i, row)
		{
			task = json_object_get(row, "task");
			k = json_object_get(task, "kind");
			t = json_object_get(task, "template");
			if (json_is_string(k) && json_is_string(t))
				snprintf(buf, sizeof(buf), "%s (template %s)",
				         json_string_value(k),
				         json_string_value(t));
			else if (json_is_string(t))
				snprintf(buf, sizeof(buf), "template %s",
				         json_string_value(t));
			else
				snprintf(buf, sizeof(buf), "%s",
				         json_is_string(k)
				             ? json_string_value(k)
				             : "-");
			json_object_set_new(row, "kind_s", json_string(buf));
			target_str(json_object_get(task, "target"), buf,
			           sizeof(buf));
			json_object_set_new(row, "target_s", json_string(buf));
			t = json_object_get(row, "last_run");
			ctl_utc(json_is_integer(t) ? json_integer_value(t) : 0,
			        0, buf, sizeof(buf));
			json_object_set_new(row, "last", json_string(buf));
		}
		ctl_table(a, cols, hdrs);
	}
	json_decref(j);
	return 0;
}

static int
schedule_remove(const char *name)
{
	char path[128];
	json_t *j;

	if (!str_is_name(name)) {
		fprintf(stderr, "vigilctl: '%s' is not a schedule name\n",
		        name);
		return 2;
	}
	snprintf(path, sizeof(path), "/api/v1/schedules/%s", name);
	if ((j = ctl_api("DELETE", path, NULL)) == NULL)
		return 1;
	if (ctl.json)
		ctl_print_json(j);
	else
		printf("removed schedule %s\n", name);
	json_decref(j);
	return 0;
}

int
ctl_task(int argc, char **argv)
{
	const char *sub = argc > 1 ? argv[1] : NULL;
	const char *sub2 = argc > 2 ? argv[2] : "";

	/* "--help" anywhere is a request for help, never a value. */
	if (ctl_wants_help(argc, argv)) {
		task_usage(stdout);
		return 0;
	}
	if (sub == NULL) {
		task_usage(stderr);
		return 2;
	}
	if (strcmp(sub, "create") == 0)
		return task_create(argc - 1, argv + 1);
	if (strcmp(sub, "list") == 0 && argc == 2)
		return task_list();
	if (strcmp(sub, "show") == 0 && argc == 3)
		return task_show(argv[2]);
	if (strcmp(sub, "watch") == 0)
		return task_watch(argc - 1, argv + 1);
	if (strcmp(sub, "cancel") == 0 && argc == 3)
		return task_cancel(argv[2]);
	if (strcmp(sub, "kinds") == 0 && argc == 2)
		return task_kinds();
	if (strcmp(sub, "template") == 0) {
		if (strcmp(sub2, "add") == 0)
			return template_add(argc - 2, argv + 2);
		if (strcmp(sub2, "list") == 0 && argc == 3)
			return template_list();
	}
	if (strcmp(sub, "schedule") == 0) {
		if (strcmp(sub2, "add") == 0)
			return schedule_add(argc - 2, argv + 2);
		if (strcmp(sub2, "list") == 0 && argc == 3)
			return schedule_list();
		if (strcmp(sub2, "remove") == 0 && argc == 4)
			return schedule_remove(argv[3]);
	}
	task_usage(stderr);
	return 2;
}
