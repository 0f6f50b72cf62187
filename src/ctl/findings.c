/*
 * findings.c: `vigilctl findings list|set`: the findings agents reported
 * with their triage state (new, acknowledged, false_positive, resolved),
 * and setting that state with a comment (GET /api/v1/findings, PUT
 * /api/v1/findings/AGENT_ID/SEQ). Finding data comes from agents: it is
 * cleaned of control characters before it reaches a terminal.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "ctl.h"
#include "httpc.h"

static void
finding_summary(json_t *data, char *out, size_t n)
{
	ctl_brief(data, out, n, 80);
}

static void
findings_usage(FILE *f)
{
	fprintf(
	    f, "usage: vigilctl findings [list] [--status STATUS] [--agent ID] "
	       "[--level LEVEL]\n"
	       "                         [--rule NAME] [--since "
	       "DURATION|UNIXTIME] [--query TEXT]\n"
	       "                         [--verdict VERDICT]\n"
	       "                         [--limit N]\n"
	       "       vigilctl findings set AGENT_ID SEQ STATUS [--comment "
	       "TEXT]\n"
	       "  STATUS is new, acknowledged, false_positive or resolved\n"
	       "  --status STATUS   findings in this triage state\n"
	       "  --agent ID        findings of this agent\n"
	       "  --level LEVEL     alert, warning, notice or info\n"
	       "  --rule NAME       findings of this rule\n"
	       "  --since WHEN      received since: a duration back from now "
	       "(30m, 24h, 7d)\n"
	       "                    or unix seconds\n"
	       "  --query TEXT      text the finding's data or comment "
	       "contains\n"
	       "  --verdict V       vigil-inteld's verdict: malicious, "
	       "suspicious, benign, unknown\n"
	       "  --limit N         at most N findings, 1..10000 (default "
	       "100), newest first\n"
	       "  --comment TEXT    set: the comment (replaces the one "
	       "before; none without it)\n");
}

static int
status_ok(const char *s)
{
	return strcmp(s, "new") == 0 || strcmp(s, "acknowledged") == 0 ||
	       strcmp(s, "false_positive") == 0 || strcmp(s, "resolved") == 0;
}

static int
findings_list(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"status", required_argument, NULL, 'S'},
	    {"agent", required_argument, NULL, 'a'},
	    {"level", required_argument, NULL, 'l'},
	    {"rule", required_argument, NULL, 'r'},
	    {"since", required_argument, NULL, 's'},
	    {"query", required_argument, NULL, 'q'},
	    {"limit", required_argument, NULL, 'n'},
	    {"verdict", required_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	static const char *const cols[] = {"time_utc", "agent_id", "seq",
	                                   "level",    "status",   "verdict",
	                                   "summary",  NULL};
	static const char *const hdrs[] = {"TIME (UTC)", "AGENT",  "SEQ",
	                                   "LEVEL",      "STATUS", "VERDICT",
	                                   "DATA",       NULL};
	static const struct ctl_cut cut[] = {
	    {"agent_id", 64}, {"level", 16}, {NULL, 0}};
	const char *status = NULL, *agent = NULL, *level = NULL, *rule = NULL;
	const char *text = NULL, *verdict = NULL;
	long long since = -1, limit = 0;
	json_t *it;
	size_t i;
	struct buf q, path;
	json_t *j;
	int ch, rc = 2;

	buf_init(&q, 4096);
	buf_init(&path, 4200);
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'S':
			if (!status_ok(status = optarg)) {
				fprintf(stderr, "vigilctl: --status: must be "
				                "new, acknowledged, "
				                "false_positive or resolved\n");
				goto out;
			}
			break;
		case 'a':
			if (!ctl_length_ok("agent", agent = optarg, 64))
				goto out;
			break;
		case 'l':
			if (!ctl_length_ok("level", level = optarg, 32))
				goto out;
			break;
		case 'r':
			if (!ctl_length_ok("rule", rule = optarg, 128))
				goto out;
			break;
		case 's':
			if (ctl_since(optarg, &since) == -1)
				goto out;
			break;
		case 'q':
			if (!ctl_length_ok("query", text = optarg, 256))
				goto out;
			break;
		case 'v':
			if (!ctl_length_ok("verdict", verdict = optarg, 32))
				goto out;
			break;
		case 'n':
			if (str_to_ll(optarg, 1, 10000, &limit) == -1) {
				fprintf(stderr,
				        "vigilctl: --limit: '%s' is not a "
				        "number 1..10000\n",
				        optarg);
				goto out;
			}
			break;
		case 'h':
			findings_usage(stdout);
			rc = 0;
			goto out;
		default:
			findings_usage(stderr);
			goto out;
		}
	}
	if (optind != argc) {
		fprintf(stderr,
		        "vigilctl: findings: unexpected argument '%s'\n",
		        argv[optind]);
		goto out;
	}
	ctl_query_add(&q, "status", status);
	ctl_query_add(&q, "agent", agent);
	ctl_query_add(&q, "level", level);
	ctl_query_add(&q, "rule", rule);
	ctl_query_add(&q, "q", text);
	ctl_query_add(&q, "verdict", verdict);
	if (since >= 0)
		buf_printf(&q, "%creceived_at_from=%lld", q.len ? '&' : '?',
		           since);
	if (limit > 0)
		buf_printf(&q, "%climit=%lld", q.len ? '&' : '?', limit);
	buf_printf(&path, "/api/v1/findings%s", buf_cstr(&q));
	rc = 1;
	if ((j = ctl_api("GET", buf_cstr(&path), NULL)) == NULL)
		goto out;
	/* vigil-inteld's verdict: "-" while it has not been asked */
	json_array_foreach(json_object_get(j, "items"), i, it)
	{
		const char *v = json_string_value(
		    json_object_get(json_object_get(it, "intel"), "verdict"));

		json_object_set_new(it, "verdict", json_string(v ? v : "-"));
	}
	ctl_print_rows(json_object_get(j, "items"), finding_summary, cut, cols,
	               hdrs);
	json_decref(j);
	rc = 0;
out:
	buf_free(&q);
	buf_free(&path);
	return rc;
}

static int
findings_set(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"comment", required_argument, NULL, 'c'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *comment = NULL, *agent, *st;
	long long seq;
	struct buf path;
	json_t *body = NULL, *r;
	int ch, rc = 2;

	buf_init(&path, 4096);
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			if (strlen(comment = optarg) > 4096) {
				fprintf(stderr, "vigilctl: --comment: at most "
				                "4096 bytes\n");
				goto out;
			}
			break;
		case 'h':
			findings_usage(stdout);
			rc = 0;
			goto out;
		default:
			findings_usage(stderr);
			goto out;
		}
	}
	if (argc - optind != 3) {
		findings_usage(stderr);
		goto out;
	}
	agent = argv[optind];
	st = argv[optind + 2];
	if (!ctl_length_ok("agent", agent, 64) || strchr(agent, '/') != NULL) {
		fprintf(stderr, "vigilctl: set: '%s' is not an agent id\n",
		        agent);
		goto out;
	}
	if (str_to_ll(argv[optind + 1], 0, 1LL << 62, &seq) == -1) {
		fprintf(stderr,
		        "vigilctl: set: '%s' is not a sequence number\n",
		        argv[optind + 1]);
		goto out;
	}
	if (!status_ok(st)) {
		fprintf(stderr, "vigilctl: set: STATUS must be new, "
		                "acknowledged, false_positive or resolved\n");
		goto out;
	}
	body = json_pack("{s:s, s:s?}", "status", st, "comment", comment);
	buf_puts(&path, "/api/v1/findings/");
	httpc_urlenc(&path, agent);
	buf_printf(&path, "/%lld", seq);
	rc = 1;
	if ((r = ctl_api("PUT", buf_cstr(&path), body)) == NULL)
		goto out;
	if (ctl.json)
		ctl_print_json(r);
	else
		printf("finding %s/%lld: %s\n", agent, seq, st);
	json_decref(r);
	rc = 0;
out:
	json_decref(body);
	buf_free(&path);
	return rc;
}

int
ctl_findings(int argc, char **argv)
{
	const char *sub = argc > 1 ? argv[1] : NULL;

	if (sub != NULL &&
	    (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0)) {
		findings_usage(stdout);
		return 0;
	}
	if (sub != NULL && strcmp(sub, "set") == 0)
		return findings_set(argc - 1, argv + 1);
	if (sub != NULL && strcmp(sub, "list") == 0)
		return findings_list(argc - 1, argv + 1);
	return findings_list(argc, argv);
}
