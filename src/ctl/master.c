/*
 * master.c: `vigilctl master centers|agents|push|task|rules|pushes` against a
 * master center's admin API (/api/v1/master/..., docs/master.md). Agent fields
 * come from other centers' agents: cleaned before they reach a terminal.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "ctl.h"
#include "httpc.h"
#include "tls.h"

#define MASTER_MAX_RULES (16u * 1024 * 1024)

static void
master_usage(FILE *f)
{
	fprintf(f,
	        "usage: vigilctl master centers\n"
	        "       vigilctl master agents [--limit N]\n"
	        "       vigilctl master findings [--limit N]\n"
	        "       vigilctl master tasks [--limit N]\n"
	        "       vigilctl master push FILE|- [--center NAME]...\n"
	        "       vigilctl master task ID\n"
	        "       vigilctl master rules NAME FILE [--kind yara|ioc] "
	        "[--center NAME]...\n"
	        "       vigilctl master intel FILE [--name FEED.EXT] "
	        "[--center NAME]...\n"
	        "       vigilctl master pushes [ID]\n"
	        "  centers  the managed centers: reachable, health, version, "
	        "agents\n"
	        "  agents   every center's agents, each with its center (all, "
	        "or the first N)\n"
	        "  findings every center's findings, newest first, with its "
	        "center (default\n"
	        "           the newest 100; --limit 0: all)\n"
	        "  tasks    every center's tasks, newest first (as findings)\n"
	        "  push     create the task spec in FILE (JSON, as for POST "
	        "/api/v1/tasks) on the\n"
	        "           chosen centers (default all); prints the master "
	        "task's id\n"
	        "  task     a master task's progress on each center\n"
	        "  rules    push the YARA rule set (or IOC list, --kind ioc or "
	        "a .ioc file)\n"
	        "           in FILE as rule set NAME to the chosen centers "
	        "(default all);\n"
	        "           a center that is down gets it when it returns\n"
	        "  intel    push the intelligence feed in FILE (FEED.csv, "
	        "FEED.list or .txt,\n"
	        "           FEED.json: STIX 2.1; --name to name it otherwise) "
	        "into each\n"
	        "           chosen center's vigil-inteld\n"
	        "  pushes   the pushes of rule sets and each center's progress "
	        "(pending,\n"
	        "           applied with the version, failed with why), or one "
	        "push\n");
}

/* GETs every page of a master list (its rows under member and items,
 * next_cursor) up to max rows (0: all): {member: rows, "errors": the
 * first page's}, or NULL after an error (printed). */
static json_t *
master_pages(const char *path, const char *member, long long max)
{
	struct buf p;
	json_t *rows = json_array(), *errs = NULL, *j, *it;
	const char *next;
	size_t i;

	buf_init(&p, 1024);
	buf_printf(&p, "%s?limit=%lld", path,
	           max > 0 && max < 1000 ? max : 1000LL);
	for (;;) {
		if ((j = ctl_api("GET", buf_cstr(&p), NULL)) == NULL) {
			json_decref(rows);
			json_decref(errs);
			buf_free(&p);
			return NULL;
		}
		if (errs == NULL)
			errs = json_incref(json_object_get(j, "errors"));
		json_array_foreach(json_object_get(j, "items"), i, it)
		{
			if (max == 0 || (long long)json_array_size(rows) < max)
				json_array_append(rows, it);
		}
		next = json_string_value(json_object_get(j, "next_cursor"));
		if (next == NULL ||
		    (max != 0 && (long long)json_array_size(rows) >= max)) {
			json_decref(j);
			break;
		}
		buf_reset(&p);
		buf_printf(&p, "%s?limit=%lld&cursor=", path,
		           max > 0 && max < 1000 ? max : 1000LL);
		httpc_urlenc(&p, next);
		json_decref(j);
	}
	buf_free(&p);
	return json_pack("{s:o, s:o}", member, rows, "errors",
	                 errs ? errs : json_array());
}

static void
clean_rows(json_t *rows)
{
	json_t *row, *v;
	const char *k;
	size_t i;

	json_array_foreach(rows, i, row)
	{
		json_object_foreach(row, k, v)
		{
			if (json_is_string(v))
				ctl_clean_field(row, k, 60);
		}
	}
}

int
ctl_master(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"center", required_argument, NULL, 'c'},
	    {"kind", required_argument, NULL, 'k'},
	    {"limit", required_argument, NULL, 'n'},
	    {"name", required_argument, NULL, 'N'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	json_t *centers = json_array(), *r = NULL;
	const char *sub, *kind = NULL, *fname = NULL;
	long long limit = -1;
	char *end;
	int ch, rc = 2;

	if (argc < 2 || ctl_wants_help(argc, argv)) {
		master_usage(argc < 2 ? stderr : stdout);
		json_decref(centers);
		return argc < 2 ? 2 : 0;
	}
	argc--;
	argv++;
	sub = argv[0];
	optind = 0;
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (ch == 'N') {
			fname = optarg;
			continue;
		}
		if (ch == 'n') {
			limit = strtoll(optarg, &end, 10);
			if (*optarg == '\0' || *end != '\0' || limit < 0) {
				fprintf(stderr, "vigilctl: --limit: a number "
				                "(0: all)\n");
				goto out;
			}
			continue;
		}
		if (ch == 'k' && (strcmp(optarg, "yara") == 0 ||
		                  strcmp(optarg, "ioc") == 0)) {
			kind = optarg;
			continue;
		}
		if (ch != 'c') {
			master_usage(stderr);
			goto out;
		}
		json_array_append_new(centers, json_string(optarg));
	}
	if (strcmp(sub, "centers") == 0 && optind == argc) {
		static const char *const cols[] = {
		    "name",     "reachable", "status", "version",
		    "protocol", "error",     NULL};
		static const char *const hdrs[] = {
		    "CENTER",   "REACHABLE", "STATUS", "VERSION",
		    "PROTOCOL", "ERROR",     NULL};
		json_t *rows, *row;
		size_t i;

		if ((r = ctl_api("GET", "/api/v1/master/centers", NULL)) ==
		    NULL) {
			rc = 1;
			goto out;
		}
		rows = json_object_get(r, "centers");
		if (ctl.json)
			ctl_print_json(rows);
		else {
			clean_rows(rows);
			json_array_foreach(rows, i, row)
			{
				json_t *a = json_object_get(row, "agents");

				if (a != NULL)
					printf(
					    "%s: %lld agents, %lld online\n",
					    json_string_value(
					        json_object_get(row, "name")),
					    (long long)json_integer_value(
					        json_object_get(a, "total")),
					    (long long)json_integer_value(
					        json_object_get(a, "online")));
			}
			ctl_table(rows, cols, hdrs);
		}
		rc = 0;
	} else if (strcmp(sub, "agents") == 0 && optind == argc) {
		static const char *const cols[] = {"center", "id", "hostname",
		                                   "status", NULL};
		static const char *const hdrs[] = {"CENTER", "AGENT", "HOST",
		                                   "STATUS", NULL};

		if ((r = master_pages("/api/v1/master/agents", "agents",
		                      limit < 0 ? 0 : limit)) == NULL) {
			rc = 1;
			goto out;
		}
		if (ctl.json)
			ctl_print_json(r);
		else {
			clean_rows(json_object_get(r, "agents"));
			ctl_table(json_object_get(r, "agents"), cols, hdrs);
			clean_rows(json_object_get(r, "errors"));
			if (json_array_size(json_object_get(r, "errors")))
				ctl_print_json(json_object_get(r, "errors"));
		}
		rc = 0;
	} else if ((strcmp(sub, "findings") == 0 ||
	            strcmp(sub, "tasks") == 0) &&
	           optind == argc) {
		static const char *const fcols[] = {"center", "agent_id", "seq",
		                                    "level",  "hostname", NULL};
		static const char *const fhdrs[] = {"CENTER", "AGENT", "SEQ",
		                                    "LEVEL",  "HOST",  NULL};
		static const char *const tcols[] = {
		    "center",   "id",    "kind", "created_by",
		    "finished", "total", NULL};
		static const char *const thdrs[] = {
		    "CENTER", "TASK", "KIND", "BY", "FINISHED", "RUNS", NULL};
		int f = strcmp(sub, "findings") == 0;

		r = master_pages(f ? "/api/v1/master/findings"
		                   : "/api/v1/master/tasks",
		                 sub, limit < 0 ? 100 : limit);
		if (r == NULL) {
			rc = 1;
			goto out;
		}
		if (ctl.json)
			ctl_print_json(r);
		else {
			clean_rows(json_object_get(r, sub));
			ctl_table(json_object_get(r, sub), f ? fcols : tcols,
			          f ? fhdrs : thdrs);
			clean_rows(json_object_get(r, "errors"));
			if (json_array_size(json_object_get(r, "errors")))
				ctl_print_json(json_object_get(r, "errors"));
		}
		rc = 0;
	} else if (strcmp(sub, "push") == 0 && optind + 1 == argc) {
		json_error_t je;
		json_t *spec, *body;

		spec = strcmp(argv[optind], "-") == 0
		           ? json_loadf(stdin, 0, &je)
		           : json_load_file(argv[optind], 0, &je);
		if (spec == NULL) {
			fprintf(stderr, "vigilctl: master push: %s: %s\n",
			        argv[optind], je.text);
			rc = 1;
			goto out;
		}
		body = json_pack("{s:o}", "task", spec);
		if (json_array_size(centers) > 0)
			json_object_set(body, "centers", centers);
		r = ctl_api("POST", "/api/v1/master/tasks", body);
		json_decref(body);
		if (r == NULL) {
			rc = 1;
			goto out;
		}
		if (ctl.json)
			ctl_print_json(r);
		else
			printf("created master task %s\n",
			       json_string_value(json_object_get(r, "id")));
		rc = 0;
	} else if (strcmp(sub, "task") == 0 && optind + 1 == argc) {
		struct buf path;

		buf_init(&path, 512);
		buf_printf(&path, "/api/v1/master/tasks/%s", argv[optind]);
		r = ctl_api("GET", buf_cstr(&path), NULL);
		buf_free(&path);
		if (r == NULL) {
			rc = 1;
			goto out;
		}
		ctl_print_json(r);
		rc = 0;
	} else if (strcmp(sub, "rules") == 0 && optind + 2 == argc) {
		const char *file = argv[optind + 1];
		size_t fl = strlen(file);
		struct buf content, err;
		json_t *body, *text;

		if (kind == NULL)
			kind = fl > 4 && strcmp(file + fl - 4, ".ioc") == 0
			           ? "ioc"
			           : "yara";
		buf_init(&content, 65536);
		buf_init(&err, 512);
		rc = 1;
		if (tls_read_file(file, MASTER_MAX_RULES, &content, &err) ==
		    -1) {
			fprintf(stderr, "vigilctl: %s\n", buf_cstr(&err));
			text = NULL;
		} else if ((text = json_stringn((const char *)content.data,
		                                content.len)) == NULL)
			fprintf(stderr, "vigilctl: %s: not UTF-8 text\n", file);
		buf_free(&content);
		buf_free(&err);
		if (text == NULL)
			goto out;
		body = json_pack("{s:s, s:s, s:o}", "name", argv[optind],
		                 "kind", kind, "content", text);
		if (json_array_size(centers) > 0)
			json_object_set(body, "centers", centers);
		r = ctl_api("POST", "/api/v1/master/rules", body);
		json_decref(body);
		if (r == NULL)
			goto out;
		if (ctl.json)
			ctl_print_json(r);
		else
			printf("pushed %s set %s (%s) as push %s\n", kind,
			       argv[optind],
			       json_string_value(json_object_get(r, "sha256")),
			       json_string_value(json_object_get(r, "id")));
		rc = 0;
	} else if (strcmp(sub, "intel") == 0 && optind + 1 == argc) {
		const char *file = argv[optind], *base = strrchr(file, '/');
		struct buf content, err;
		json_t *body, *text = NULL;

		buf_init(&content, 65536);
		buf_init(&err, 512);
		rc = 1;
		if (tls_read_file(file, MASTER_MAX_RULES, &content, &err) == -1)
			fprintf(stderr, "vigilctl: %s\n", buf_cstr(&err));
		else if ((text = json_stringn((const char *)content.data,
		                              content.len)) == NULL)
			fprintf(stderr, "vigilctl: %s: not UTF-8 text\n", file);
		buf_free(&content);
		buf_free(&err);
		if (text == NULL)
			goto out;
		body = json_pack("{s:s, s:o}", "name",
		                 fname  ? fname
		                 : base ? base + 1
		                        : file,
		                 "content", text);
		if (json_array_size(centers) > 0)
			json_object_set(body, "centers", centers);
		r = ctl_api("POST", "/api/v1/master/intel", body);
		json_decref(body);
		if (r == NULL)
			goto out;
		if (ctl.json)
			ctl_print_json(r);
		else
			printf("pushed intel feed %s (%s) as push %s\n",
			       json_string_value(json_object_get(r, "name")),
			       json_string_value(json_object_get(r, "sha256")),
			       json_string_value(json_object_get(r, "id")));
		rc = 0;
	} else if (strcmp(sub, "pushes") == 0 && optind + 1 >= argc) {
		struct buf path;

		buf_init(&path, 512);
		buf_puts(&path, "/api/v1/master/pushes");
		if (optind < argc)
			buf_printf(&path, "/%s", argv[optind]);
		r = ctl_api("GET", buf_cstr(&path), NULL);
		buf_free(&path);
		if (r == NULL) {
			rc = 1;
			goto out;
		}
		if (ctl.json || optind < argc)
			ctl_print_json(r);
		else {
			json_t *p, *x;
			size_t i, k;

			json_array_foreach(json_object_get(r, "items"), i, p)
			{
				printf(
				    "%s  %s %s (%.12s)\n",
				    json_string_value(json_object_get(p, "id")),
				    json_string_value(
				        json_object_get(p, "kind")),
				    json_string_value(
				        json_object_get(p, "name")),
				    json_string_value(
				        json_object_get(p, "sha256")));
				clean_rows(json_object_get(p, "centers"));
				json_array_foreach(
				    json_object_get(p, "centers"), k, x)
				{
					const char *e = json_string_value(
					    json_object_get(x, "error"));

					printf(
					    "    %-20s %-8s %s\n",
					    json_string_value(
					        json_object_get(x, "center")),
					    json_string_value(
					        json_object_get(x, "state")),
					    e ? e : "");
				}
			}
		}
		rc = 0;
	} else
		master_usage(stderr);
out:
	json_decref(r);
	json_decref(centers);
	return rc;
}
