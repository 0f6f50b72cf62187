/*
 * events.c: `vigilctl events` (search what agents reported) and `vigilctl
 * samples` (files they uploaded). Event data, host names and paths come from
 * agents, so every string of theirs is stripped of control characters before it
 * is printed in a table.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "ctl.h"
#include "httpc.h"

#define SUMMARY_MAX 80

static void
events_usage(FILE *f)
{
	fprintf(f,
	        "usage: vigilctl events [--agent ID] [--task ID] [--type TYPE] "
	        "[--level LEVEL]\n"
	        "                       [--rule NAME] [--since "
	        "DURATION|UNIXTIME] [--query TEXT]\n"
	        "                       [--limit N]\n"
	        "  --agent ID        events of this agent\n"
	        "  --task ID         events of this task\n"
	        "  --type TYPE       events of this type, e.g. finding\n"
	        "  --level LEVEL     alert, warning, notice or info\n"
	        "  --rule NAME       findings of this rule\n"
	        "  --since WHEN      received since: a duration back from now "
	        "(30m, 24h, 7d)\n"
	        "                    or unix seconds\n"
	        "  --query TEXT      text that the event's data contains\n"
	        "  --limit N         at most N events, 1..10000 (default "
	        "100), newest first\n");
}

/* path + rule/score when the data has a path, else compact JSON. */
static void
event_summary(json_t *d, char *out, size_t n)
{
	json_t *path = json_object_get(d, "path");
	json_t *rule = json_object_get(d, "rule");
	json_t *score = json_object_get(d, "score");
	json_t *subject = json_object_get(d, "subject");
	char p[SUMMARY_MAX + 1], *s;
	size_t len;

	/* A scan finding: subject.path, the first reason's rule. */
	if (json_is_object(subject)) {
		json_t *r0 = json_array_get(json_object_get(d, "reasons"), 0);

		path = json_object_get(subject, "path");
		rule = json_object_get(json_object_get(r0, "signature"),
		                       "rule_name");
	}

	if (json_is_string(path)) {
		/* The end of a long path says most: keep it. */
		s = (char *)json_string_value(path);
		len = strlen(s);
		if (len > 60) {
			s += len - 57;
			while (((unsigned char)*s & 0xc0) == 0x80)
				s++;
			snprintf(p, sizeof(p), "...%s", s);
		} else
			snprintf(p, sizeof(p), "%s", s);
		if (json_is_string(rule) && json_is_integer(score))
			snprintf(out, n, "%s rule=%.64s score=%lld", p,
			         json_string_value(rule),
			         (long long)json_integer_value(score));
		else if (json_is_string(rule))
			snprintf(out, n, "%s rule=%.64s", p,
			         json_string_value(rule));
		else if (json_is_integer(score))
			snprintf(out, n, "%s score=%lld", p,
			         (long long)json_integer_value(score));
		else
			snprintf(out, n, "%s", p);
		ctl_clean(out, 0);
		return;
	}
	s = json_dumps(d, JSON_COMPACT | JSON_ENCODE_ANY);
	snprintf(out, n, "%s", s ? s : "-");
	free(s);
	ctl_clean(out, SUMMARY_MAX);
}

int
ctl_events(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"agent", required_argument, NULL, 'a'},
	    {"task", required_argument, NULL, 't'},
	    {"type", required_argument, NULL, 'T'},
	    {"level", required_argument, NULL, 'l'},
	    {"rule", required_argument, NULL, 'r'},
	    {"since", required_argument, NULL, 's'},
	    {"query", required_argument, NULL, 'q'},
	    {"limit", required_argument, NULL, 'n'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	static const char *const cols[] = {"time_utc", "agent_id", "level",
	                                   "type",     "summary",  NULL};
	static const char *const hdrs[] = {"TIME (UTC)", "AGENT",   "LEVEL",
	                                   "TYPE",       "SUMMARY", NULL};
	/* A repeated option replaces the earlier value. */
	const char *agent = NULL, *task = NULL, *type = NULL, *level = NULL;
	const char *text = NULL, *rule = NULL;
	long long since = -1, limit = 0;
	struct buf q, path;
	json_t *j;
	int ch, rc = 2;

	/* "--help" anywhere is a request for help, never a value. */
	if (ctl_wants_help(argc, argv)) {
		events_usage(stdout);
		return 0;
	}
	buf_init(&q, 4096);
	buf_init(&path, 4200);
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'a':
			if (!ctl_length_ok("agent", agent = optarg, 64))
				goto out;
			break;
		case 't':
			if (!ctl_length_ok("task", task = optarg, 64))
				goto out;
			break;
		case 'T':
			if (!ctl_length_ok("type", type = optarg, 32))
				goto out;
			break;
		case 'l':
			if (strcmp(optarg, "alert") != 0 &&
			    strcmp(optarg, "warning") != 0 &&
			    strcmp(optarg, "notice") != 0 &&
			    strcmp(optarg, "info") != 0) {
				fprintf(stderr,
				        "vigilctl: --level: must be alert, "
				        "warning, notice or info\n");
				goto out;
			}
			level = optarg;
			break;
		case 's':
			if (ctl_since(optarg, &since) == -1)
				goto out;
			break;
		case 'q':
			if (!ctl_length_ok("query", text = optarg, 256))
				goto out;
			break;
		case 'r':
			if (!ctl_length_ok("rule", rule = optarg, 128))
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
		default:
			events_usage(stderr);
			goto out;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "vigilctl: events: unexpected argument '%s'\n",
		        argv[optind]);
		events_usage(stderr);
		goto out;
	}
	ctl_query_add(&q, "agent", agent);
	ctl_query_add(&q, "task", task);
	ctl_query_add(&q, "type", type);
	ctl_query_add(&q, "level", level);
	ctl_query_add(&q, "rule", rule);
	ctl_query_add(&q, "q", text);
	if (since >= 0)
		buf_printf(&q, "%csince=%lld", q.len ? '&' : '?', since);
	if (limit > 0)
		buf_printf(&q, "%climit=%lld", q.len ? '&' : '?', limit);
	buf_printf(&path, "/api/v1/events%s", buf_cstr(&q));
	rc = 1;
	if ((j = ctl_api("GET", buf_cstr(&path), NULL)) == NULL)
		goto out;
	ctl_print_rows(json_object_get(j, "items"), event_summary, NULL, cols,
	               hdrs);
	json_decref(j);
	rc = 0;
out:
	buf_free(&q);
	buf_free(&path);
	return rc;
}

static void
samples_usage(FILE *f)
{
	fprintf(f,
	        "usage: vigilctl samples [list] [--agent ID] [--limit N]\n"
	        "       vigilctl samples show SHA256\n"
	        "       vigilctl samples download SHA256 [--output FILE]\n"
	        "  list      files uploaded by agents, newest first (default "
	        "1000)\n"
	        "  download  the file inside an AES-256 encrypted ZIP "
	        "(default\n"
	        "            SHA256.zip; password: the center's\n"
	        "            sample_archive_password setting, default "
	        "'infected')\n");
}

static int
samples_list(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"agent", required_argument, NULL, 'a'},
	    {"limit", required_argument, NULL, 'l'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	static const char *const cols[] = {
	    "sha256", "size", "agent_id", "task_id", "when", "path", NULL};
	static const char *const hdrs[] = {"SHA256",   "SIZE", "AGENT", "TASK",
	                                   "RECEIVED", "PATH", NULL};
	const char *agent = NULL;
	long long limit = 1000;
	struct buf path;
	json_t *j = NULL, *a, *row;
	size_t i;
	int ch, rc = 2;

	buf_init(&path, 4096);
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'a':
			agent = optarg;
			break;
		case 'l':
			if (str_to_ll(optarg, 1, 1000, &limit) == -1) {
				fprintf(stderr, "vigilctl: --limit: must be "
				                "1..1000\n");
				goto out;
			}
			break;
		case 'h':
			samples_usage(stdout);
			rc = 0;
			goto out;
		default:
			samples_usage(stderr);
			goto out;
		}
	}
	if (optind != argc) {
		samples_usage(stderr);
		goto out;
	}
	buf_printf(&path, "/api/v1/samples?limit=%lld", limit);
	if (agent != NULL) {
		buf_puts(&path, "&agent=");
		httpc_urlenc(&path, agent);
	}
	rc = 1;
	if ((j = ctl_api("GET", buf_cstr(&path), NULL)) == NULL)
		goto out;
	a = json_object_get(j, "items");
	if (ctl.json)
		ctl_print_json(a);
	else {
		json_array_foreach(a, i, row)
		{
			json_t *t = json_object_get(row, "received_at");
			char when[32];

			ctl_utc(json_is_integer(t) ? json_integer_value(t) : 0,
			        0, when, sizeof(when));
			json_object_set_new(row, "when", json_string(when));
			ctl_clean_field(row, "task_id", 0);
			ctl_clean_field(row, "path", 0);
		}
		ctl_table(a, cols, hdrs);
	}
	rc = 0;
out:
	json_decref(j);
	buf_free(&path);
	return rc;
}

static int
sha_ok(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		      (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return i == 64;
}

static int
samples_download(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"output", required_argument, NULL, 'o'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *out = NULL, *sha;
	char def[80], path[160];
	int ch;

	while ((ch = getopt_long(argc, argv, "ho:", opts, NULL)) != -1) {
		switch (ch) {
		case 'o':
			out = optarg;
			break;
		case 'h':
			samples_usage(stdout);
			return 0;
		default:
			samples_usage(stderr);
			return 2;
		}
	}
	if (optind != argc - 1) {
		samples_usage(stderr);
		return 2;
	}
	sha = argv[optind];
	if (!sha_ok(sha)) {
		fprintf(stderr,
		        "vigilctl: '%s' is not a SHA-256 (64 lowercase "
		        "hex digits)\n",
		        sha);
		return 2;
	}
	if (out == NULL) {
		snprintf(def, sizeof(def), "%s.zip", sha);
		out = def;
	}
	snprintf(path, sizeof(path), "/api/v1/samples/%s/download", sha);
	if (ctl_download(path, out) == -1)
		return 1;
	if (ctl.json) {
		json_t *o = json_pack("{s:s, s:s}", "file", out, "sha256", sha);

		ctl_print_json(o);
		json_decref(o);
	} else
		printf("wrote %s: an AES-256 encrypted ZIP holding %s; the "
		       "password is the center's sample_archive_password "
		       "setting ('vigilctl settings')\n",
		       out, sha);
	return 0;
}

int
ctl_samples(int argc, char **argv)
{
	json_t *j;
	char path[160];

	if (argc >= 2 &&
	    (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		samples_usage(stdout);
		return 0;
	}
	if (argc == 1 || argv[1][0] == '-')
		return samples_list(argc, argv);
	if (strcmp(argv[1], "list") == 0)
		return samples_list(argc - 1, argv + 1);
	if (strcmp(argv[1], "download") == 0)
		return samples_download(argc - 1, argv + 1);
	if (strcmp(argv[1], "show") == 0 && argc == 3) {
		if (!sha_ok(argv[2])) {
			fprintf(stderr, "vigilctl: '%s' is not a SHA-256\n",
			        argv[2]);
			return 2;
		}
		snprintf(path, sizeof(path), "/api/v1/samples/%s", argv[2]);
		if ((j = ctl_api("GET", path, NULL)) == NULL)
			return 1;
		ctl_print_json(j);
		json_decref(j);
		return 0;
	}
	samples_usage(stderr);
	return 2;
}
