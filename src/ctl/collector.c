/*
 * collector.c: `vigilctl collector centers|agents|cases|case|baseline|
 * unbaseline|search` against an analysis collector's admin API
 * (/api/v1/collector/..., docs/collector.md). Case fields and event data
 * come from other centers' agents: cleaned before they reach a terminal.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "ctl.h"
#include "httpc.h"

static void
collector_usage(FILE *f)
{
	fprintf(f,
	        "usage: vigilctl collector centers\n"
	        "       vigilctl collector agents [--center NAME] [--limit N]\n"
	        "       vigilctl collector cases [--baseline yes|no] [--limit "
	        "N]\n"
	        "       vigilctl collector case ID\n"
	        "       vigilctl collector samples [--limit N]\n"
	        "       vigilctl collector baseline ID suppress|lower "
	        "[--reason TEXT]\n"
	        "       vigilctl collector unbaseline ID\n"
	        "       vigilctl collector search [TEXT] [--center NAME] "
	        "[--agent ID] [--type T]\n"
	        "                                 [--case ID] [--suppressed "
	        "no|yes|all] [--limit N]\n"
	        "  centers     the centers that feed the collector\n"
	        "  agents      their agents (asset inventory)\n"
	        "  cases       findings grouped across hosts and centers "
	        "(same rule and path, or hash)\n"
	        "  samples     sample contents (each SHA-256 once) and where "
	        "they were seen\n"
	        "  baseline    mark a case expected: new occurrences are "
	        "suppressed (stored, not\n"
	        "              counted) or lowered to level info; audited\n"
	        "  search      every center's events, newest first (TEXT: in "
	        "the data, host name or agent id)\n");
}

/* ctl_query_add() on a buffer that holds the path before the query. */
static void
qadd(struct buf *path, const char *name, const char *v)
{
	if (v == NULL)
		return;
	buf_printf(path, "%c%s=", strchr(buf_cstr(path), '?') ? '&' : '?',
	           name);
	httpc_urlenc(path, v);
}

static void
event_summary(json_t *data, char *out, size_t n)
{
	ctl_brief(data, out, n, 80);
}

static int
print_list(json_t *r, const char *member, const char *const *cols,
           const char *const *hdrs)
{
	json_t *rows = json_object_get(r, member), *row;
	size_t i;

	if (ctl.json) {
		ctl_print_json(rows);
		return 0;
	}
	json_array_foreach(rows, i, row)
	{
		const char *k;
		json_t *v;

		json_object_foreach(row, k, v)
		{
			if (json_is_string(v))
				ctl_clean_field(row, k, 60);
		}
		(void)k;
	}
	ctl_table(rows, cols, hdrs);
	return 0;
}

static int
run_get(struct buf *path, const char *member, const char *const *cols,
        const char *const *hdrs)
{
	json_t *r = ctl_api("GET", buf_cstr(path), NULL);
	int rc = 1;

	if (r != NULL)
		rc = print_list(r, member, cols, hdrs);
	json_decref(r);
	return rc;
}

/* Flattens each case's baseline for the table. */
static void
cases_flat(json_t *rows)
{
	json_t *row;
	size_t i;

	json_array_foreach(rows, i, row)
	{
		json_t *b = json_object_get(row, "baseline");
		const char *key =
		    json_string_value(json_object_get(row, "rule")) ? "rule"
		                                                    : "sha256";

		json_object_set_new(
		    row, "baseline_action",
		    json_string(
		        json_is_object(b)
		            ? json_string_value(json_object_get(b, "action"))
		            : "-"));
		json_object_set(row, "what", json_object_get(row, key));
	}
}

int
ctl_collector(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"center", required_argument, NULL, 'c'},
	    {"agent", required_argument, NULL, 'a'},
	    {"type", required_argument, NULL, 't'},
	    {"case", required_argument, NULL, 'C'},
	    {"suppressed", required_argument, NULL, 's'},
	    {"baseline", required_argument, NULL, 'b'},
	    {"reason", required_argument, NULL, 'r'},
	    {"limit", required_argument, NULL, 'n'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *center = NULL, *agent = NULL, *type = NULL, *cs = NULL;
	const char *sup = NULL, *bl = NULL, *reason = NULL, *limit = NULL;
	const char *sub;
	struct buf path;
	int ch, rc = 2;

	if (argc < 2 || ctl_wants_help(argc, argv)) {
		collector_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	/* The subcommand is argv[0] of what getopt sees. */
	argc--;
	argv++;
	sub = argv[0];
	optind = 0;
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			center = optarg;
			break;
		case 'a':
			agent = optarg;
			break;
		case 't':
			type = optarg;
			break;
		case 'C':
			cs = optarg;
			break;
		case 's':
			sup = optarg;
			break;
		case 'b':
			bl = optarg;
			break;
		case 'r':
			reason = optarg;
			break;
		case 'n':
			limit = optarg;
			break;
		default:
			collector_usage(stderr);
			return 2;
		}
	}
	buf_init(&path, 8192);
	if (strcmp(sub, "centers") == 0 && optind == argc) {
		static const char *const cols[] = {
		    "name", "connected", "events", "agents", "addr", NULL};
		static const char *const hdrs[] = {
		    "CENTER", "CONNECTED", "EVENTS", "AGENTS", "ADDRESS", NULL};

		buf_puts(&path, "/api/v1/collector/centers");
		rc = run_get(&path, "centers", cols, hdrs);
	} else if (strcmp(sub, "agents") == 0 && optind == argc) {
		static const char *const cols[] = {"center", "hostname",
		                                   "agent_id", NULL};
		static const char *const hdrs[] = {"CENTER", "HOST", "AGENT",
		                                   NULL};

		buf_puts(&path, "/api/v1/collector/agents");
		qadd(&path, "center", center);
		qadd(&path, "limit", limit);
		rc = run_get(&path, "agents", cols, hdrs);
	} else if (strcmp(sub, "cases") == 0 && optind == argc) {
		static const char *const cols[] = {
		    "id",   "hosts",      "centers",
		    "hits", "suppressed", "baseline_action",
		    "what", "path",       NULL};
		static const char *const hdrs[] = {
		    "CASE",     "HOSTS",     "CENTERS", "HITS", "SUPPRESSED",
		    "BASELINE", "RULE/HASH", "PATH",    NULL};
		json_t *r;

		buf_puts(&path, "/api/v1/collector/cases");
		qadd(&path, "baseline", bl);
		qadd(&path, "limit", limit);
		if ((r = ctl_api("GET", buf_cstr(&path), NULL)) == NULL)
			rc = 1;
		else {
			if (!ctl.json)
				cases_flat(json_object_get(r, "cases"));
			rc = print_list(r, "cases", cols, hdrs);
		}
		json_decref(r);
	} else if (strcmp(sub, "samples") == 0 && optind == argc) {
		json_t *r, *row;
		size_t i;

		buf_puts(&path, "/api/v1/collector/samples");
		qadd(&path, "limit", limit);
		if ((r = ctl_api("GET", buf_cstr(&path), NULL)) == NULL)
			rc = 1;
		else if (ctl.json) {
			ctl_print_json(json_object_get(r, "samples"));
			rc = 0;
		} else {
			json_array_foreach(json_object_get(r, "samples"), i,
			                   row)
			    printf(
			        "%s %10lld bytes  %s  seen %zu times\n",
			        json_string_value(
			            json_object_get(row, "sha256")),
			        (long long)json_integer_value(
			            json_object_get(row, "size")),
			        json_is_true(json_object_get(row, "stored"))
			            ? "stored "
			            : "pending",
			        json_array_size(json_object_get(row, "seen")));
			rc = 0;
		}
		json_decref(r);
	} else if (strcmp(sub, "case") == 0 && optind + 1 == argc) {
		json_t *r;

		buf_printf(&path, "/api/v1/collector/cases/%s", argv[optind]);
		if ((r = ctl_api("GET", buf_cstr(&path), NULL)) != NULL) {
			ctl_print_json(r);
			rc = 0;
		} else
			rc = 1;
		json_decref(r);
	} else if ((strcmp(sub, "baseline") == 0 && optind + 2 == argc) ||
	           (strcmp(sub, "unbaseline") == 0 && optind + 1 == argc)) {
		int set = strcmp(sub, "baseline") == 0;
		json_t *body = NULL, *r;

		buf_printf(&path, "/api/v1/collector/cases/%s/baseline",
		           argv[optind]);
		if (set)
			body = json_pack("{s:s, s:s?}", "action",
			                 argv[optind + 1], "reason", reason);
		r = ctl_api(set ? "PUT" : "DELETE", buf_cstr(&path), body);
		json_decref(body);
		if (r != NULL) {
			if (ctl.json)
				ctl_print_json(r);
			else
				printf("case %s: %s\n", argv[optind],
				       set ? "baselined" : "baseline removed");
			rc = 0;
		} else
			rc = 1;
		json_decref(r);
	} else if (strcmp(sub, "search") == 0 && optind + 1 >= argc) {
		static const char *const cols[] = {
		    "time_utc", "center", "agent_id", "seq",
		    "type",     "level",  "summary",  NULL};
		static const char *const hdrs[] = {
		    "TIME (UTC)", "CENTER", "AGENT", "SEQ",
		    "TYPE",       "LEVEL",  "DATA",  NULL};
		static const struct ctl_cut cut[] = {
		    {"center", 40}, {"hostname", 40}, {NULL, 0}};
		json_t *r;

		buf_puts(&path, "/api/v1/collector/search");
		qadd(&path, "q", optind < argc ? argv[optind] : NULL);
		qadd(&path, "center", center);
		qadd(&path, "agent", agent);
		qadd(&path, "type", type);
		qadd(&path, "case", cs);
		qadd(&path, "suppressed", sup);
		qadd(&path, "limit", limit);
		if ((r = ctl_api("GET", buf_cstr(&path), NULL)) != NULL) {
			ctl_print_rows(json_object_get(r, "events"),
			               event_summary, cut, cols, hdrs);
			rc = 0;
		} else
			rc = 1;
		json_decref(r);
	} else {
		collector_usage(stderr);
		rc = 2;
	}
	buf_free(&path);
	return rc;
}
