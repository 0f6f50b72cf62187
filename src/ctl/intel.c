/*
 * intel.c: `vigilctl intel lookup|import|export|feeds|allow|block|stats`, the
 * client of vigil-inteld's API (docs/inteld.md). The server is --server
 * when given, else VIGIL_INTEL_SERVER, else https://127.0.0.1:10443; the
 * key and CA options are the global ones. A MISP feed directory
 * (manifest.json + one JSON file per event) is read here, each file
 * checked, and sent as one JSON object of file name -> content, so the
 * import stays one request and one transaction on the server.
 */
#include <dirent.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "buf.h"
#include "ctl.h"
#include "httpc.h"
#include "tls.h"

#define INTEL_MAX_FILE (1024LL * 1024 * 1024)

static void
intel_usage(FILE *f)
{
	fprintf(f,
	        "usage: vigilctl intel lookup INDICATOR... [--type TYPE]\n"
	        "       vigilctl intel import FEED FILE|DIR --format "
	        "csv|list|misp|stix\n"
	        "                [--verdict V] [--score N] [--ttl DURATION] "
	        "[--tags T] [--strict]\n"
	        "                [--mode full|delta]\n"
	        "       vigilctl intel export FEED [--format csv|stix] "
	        "[-o FILE]\n"
	        "       vigilctl intel feeds [list]\n"
	        "       vigilctl intel feeds add NAME [--priority N] "
	        "[--description TEXT]\n"
	        "       vigilctl intel feeds remove NAME\n"
	        "       vigilctl intel allow|block list\n"
	        "       vigilctl intel allow|block add INDICATOR... "
	        "[--comment TEXT] [--ttl DURATION]\n"
	        "       vigilctl intel allow|block remove INDICATOR\n"
	        "       vigilctl intel stats\n"
	        "  The server: --server, else VIGIL_INTEL_SERVER, else "
	        "https://127.0.0.1:10443.\n"
	        "  --type TYPE      sha256, sha1, md5, ip, domain or url "
	        "(default: detected)\n"
	        "  --format FMT     the feed file's format; misp takes a "
	        "directory\n"
	        "  --verdict V      malicious (default), suspicious or benign, "
	        "for entries\n"
	        "                   that carry none (lists, CSV)\n"
	        "  --score N        0..100 for entries that carry none\n"
	        "  --ttl DURATION   entries expire after this (30m, 12h, 7d)\n"
	        "  --strict         any rejected entry fails the whole import\n"
	        "  --mode M         full replaces the feed; delta (misp: the "
	        "default) keeps\n"
	        "                   what the file does not name\n"
	        "  -o FILE          export: write a new FILE (default: "
	        "standard output)\n"
	        "  --priority N     0..1000, higher wins among feeds\n");
}

/* GET path and print its array member: JSON with --json, else a table. */
static int
intel_print_rows(const char *path, const char *member, const char *const *cols,
                 const char *const *hdrs)
{
	json_t *r;

	if ((r = ctl_api("GET", path, NULL)) == NULL)
		return 2;
	if (ctl.json)
		ctl_print_json(json_object_get(r, member));
	else
		ctl_table(json_object_get(r, member), cols, hdrs);
	json_decref(r);
	return 0;
}

static void
set_server(void)
{
	const char *e = getenv("VIGIL_INTEL_SERVER");

	if (!ctl.server_given)
		ctl.server = e != NULL && *e ? e : "https://127.0.0.1:10443";
}

static void
print_answer(json_t *a, int *worst)
{
	const char *v = json_string_value(json_object_get(a, "verdict"));
	json_t *s, *e = json_object_get(a, "error");
	size_t i;

	if (e != NULL) {
		char *in = json_dumps(json_object_get(a, "input"),
		                      JSON_ENCODE_ANY | JSON_COMPACT);

		printf("%s  error: %s\n", in ? in : "?", json_string_value(e));
		free(in);
		*worst = 2;
		return;
	}
	printf("%s  %s  %s", json_string_value(json_object_get(a, "indicator")),
	       json_string_value(json_object_get(a, "type")), v ? v : "?");
	if (json_is_integer(json_object_get(a, "score")))
		printf(" (%lld)", (long long)json_integer_value(
		                      json_object_get(a, "score")));
	if (json_is_string(json_object_get(a, "decided_by")))
		printf("  by %s",
		       json_string_value(json_object_get(a, "decided_by")));
	printf("\n");
	json_array_foreach(json_object_get(a, "sources"), i, s)
	{
		char ref[200];

		snprintf(
		    ref, sizeof(ref), "%s",
		    json_is_string(json_object_get(s, "reference"))
		        ? json_string_value(json_object_get(s, "reference"))
		        : "");
		ctl_clean(ref, 120);
		printf(
		    "    %s: %s %s (%lld)%s%s\n",
		    json_string_value(json_object_get(s, "source")),
		    json_string_value(json_object_get(s, "matched")),
		    json_string_value(json_object_get(s, "verdict")),
		    (long long)json_integer_value(json_object_get(s, "score")),
		    ref[0] ? "  " : "", ref);
	}
	if (v != NULL && strcmp(v, "malicious") == 0 && *worst < 1)
		*worst = 1;
}

static int
intel_lookup(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"type", required_argument, NULL, 't'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *type = NULL;
	json_t *body, *r, *res, *a;
	long status;
	char *txt;
	size_t i;
	int ch, worst = 0, rc = 2;

	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 't':
			type = optarg;
			break;
		case 'h':
			intel_usage(stdout);
			return 0;
		default:
			intel_usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		intel_usage(stderr);
		return 2;
	}
	body = json_array();
	for (i = (size_t)optind; i < (size_t)argc; i++)
		json_array_append_new(body,
		                      type ? json_pack("{s:s, s:s}", "type",
		                                       type, "value", argv[i])
		                           : json_string(argv[i]));
	txt = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	if (txt == NULL)
		return 2;
	r = ctl_api_raw("POST", "/api/v1/lookup", "application/json", txt,
	                strlen(txt), 60, &status);
	free(txt);
	if (r == NULL)
		return 2;
	if (status != 200) {
		fprintf(stderr, "vigilctl: lookup: %ld %s\n", status,
		        json_string_value(json_object_get(
		            json_object_get(r, "error"), "message")));
		json_decref(r);
		return 2;
	}
	res = json_object_get(r, "results");
	if (ctl.json)
		ctl_print_json(res);
	else
		json_array_foreach(res, i, a) print_answer(a, &worst);
	if (ctl.json)
		json_array_foreach(res, i, a)
		{
			if (json_object_get(a, "error"))
				worst = 2;
		}
	rc = worst; /* 1: something is malicious */
	json_decref(r);
	return rc;
}

/* A MISP feed directory as one JSON object: {"manifest.json": ...,
 * "<uuid>.json": ...}. Every file must be JSON: a broken one is named
 * here and nothing is sent. */
static char *
misp_dir(const char *dir, size_t *len)
{
	json_t *o = json_object();
	struct dirent *de;
	DIR *d;
	char *out = NULL;
	int bad = 0;

	if ((d = opendir(dir)) == NULL) {
		perror(dir);
		json_decref(o);
		return NULL;
	}
	while ((de = readdir(d)) != NULL) {
		size_t n = strlen(de->d_name);
		char path[4096];
		json_error_t je;
		json_t *j;

		if (n < 6 || strcmp(de->d_name + n - 5, ".json") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if ((j = json_load_file(path, JSON_REJECT_DUPLICATES, &je)) ==
		    NULL) {
			fprintf(stderr,
			        "vigilctl: %s: not valid JSON (line %d column "
			        "%d: %s); nothing imported\n",
			        path, je.line, je.column, je.text);
			bad = 1;
			continue;
		}
		json_object_set_new(o, de->d_name, j);
	}
	closedir(d);
	if (!bad && json_object_get(o, "manifest.json") == NULL) {
		fprintf(stderr,
		        "vigilctl: %s: no manifest.json (a MISP feed directory "
		        "holds manifest.json and one <uuid>.json per event)\n",
		        dir);
		bad = 1;
	}
	if (!bad && (out = json_dumps(o, JSON_COMPACT)) != NULL)
		*len = strlen(out);
	json_decref(o);
	return out;
}

static void
print_notes(json_t *list, const char *what)
{
	json_t *e;
	size_t i;

	json_array_foreach(list, i, e)
	{
		char v[200];

		snprintf(v, sizeof(v), "%s",
		         json_is_string(json_object_get(e, "value"))
		             ? json_string_value(json_object_get(e, "value"))
		             : "");
		ctl_clean(v, 80);
		printf("  %s %s%s%s: %s\n", what,
		       json_string_value(json_object_get(e, "where")),
		       v[0] ? " " : "", v,
		       json_string_value(json_object_get(e, "why")));
	}
}

static int
intel_import(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"format", required_argument, NULL, 'f'},
	    {"verdict", required_argument, NULL, 'v'},
	    {"score", required_argument, NULL, 's'},
	    {"ttl", required_argument, NULL, 't'},
	    {"tags", required_argument, NULL, 'g'},
	    {"strict", no_argument, NULL, 'S'},
	    {"mode", required_argument, NULL, 'm'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *fmt = NULL, *feed, *file;
	struct buf q, content, err;
	char *body = NULL;
	size_t len = 0;
	long status;
	json_t *r = NULL;
	struct stat st;
	int ch, rc = 2;

	buf_init(&q, 8192);
	buf_init(&content, (size_t)INTEL_MAX_FILE);
	buf_init(&err, 1024);
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'f':
			fmt = optarg;
			ctl_query_add(&q, "format", optarg);
			break;
		case 'v':
			ctl_query_add(&q, "verdict", optarg);
			break;
		case 's':
			ctl_query_add(&q, "score", optarg);
			break;
		case 't':
			ctl_query_add(&q, "ttl", optarg);
			break;
		case 'g':
			ctl_query_add(&q, "tags", optarg);
			break;
		case 'S':
			ctl_query_add(&q, "strict", "1");
			break;
		case 'm':
			ctl_query_add(&q, "mode", optarg);
			break;
		case 'h':
			intel_usage(stdout);
			rc = 0;
			goto out;
		default:
			intel_usage(stderr);
			goto out;
		}
	}
	if (argc - optind != 2 || fmt == NULL) {
		fprintf(stderr, "vigilctl: intel import FEED FILE --format "
		                "FMT\n");
		goto out;
	}
	feed = argv[optind];
	file = argv[optind + 1];
	if (!str_is_name(feed)) {
		fprintf(stderr, "vigilctl: FEED: 1 to 64 of A-Z a-z 0-9 . _ "
		                "-\n");
		goto out;
	}
	if (stat(file, &st) == 0 && S_ISDIR(st.st_mode)) {
		if (strcmp(fmt, "misp") != 0) {
			fprintf(stderr,
			        "vigilctl: %s: a directory is a MISP "
			        "feed (--format misp)\n",
			        file);
			goto out;
		}
		if ((body = misp_dir(file, &len)) == NULL)
			goto out;
	} else {
		if (tls_read_file(file, (size_t)INTEL_MAX_FILE, &content,
		                  &err) == -1) {
			fprintf(stderr, "vigilctl: %s\n", buf_cstr(&err));
			goto out;
		}
		body = buf_steal(&content, &len);
		if (body == NULL)
			goto out;
	}
	{
		char path[300];

		snprintf(path, sizeof(path), "/api/v1/feeds/%s/import%s", feed,
		         buf_cstr(&q));
		r = ctl_api_raw("POST", path, "application/octet-stream", body,
		                len, 3600, &status);
	}
	if (r == NULL)
		goto out;
	if (ctl.json)
		ctl_print_json(r);
	else if (json_object_get(r, "result") == NULL)
		fprintf(stderr, "vigilctl: import: %ld %s\n", status,
		        json_string_value(json_object_get(
		            json_object_get(r, "error"), "message")));
	else {
		if (status == 200) {
			json_t *ev = json_object_get(r, "events");

#define N(o, k) ((long long)json_integer_value(json_object_get(o, k)))
			printf("%s: imported %lld indicators (replaced %lld); "
			       "%lld rejected, %lld skipped\n",
			       feed, N(r, "indicators"), N(r, "replaced"),
			       N(r, "rejected_total"), N(r, "skipped_total"));
			printf(
			    "%s: %s import: %lld added, %lld changed, "
			    "%lld unchanged, %lld removed, %lld kept\n",
			    feed, json_string_value(json_object_get(r, "mode")),
			    N(r, "added"), N(r, "changed"), N(r, "unchanged"),
			    N(r, "removed"), N(r, "kept"));
			if (ev != NULL)
				printf("%s: MISP events: %lld added, %lld "
				       "changed, %lld unchanged, %lld "
				       "removed\n",
				       feed, N(ev, "added"), N(ev, "changed"),
				       N(ev, "unchanged"), N(ev, "removed"));
#undef N
		} else
			printf("%s: import failed, the old set is kept: %s\n",
			       feed,
			       json_string_value(json_object_get(r, "error")));
		print_notes(json_object_get(r, "rejected"), "rejected");
		print_notes(json_object_get(r, "skipped"), "skipped");
	}
	rc = status == 200 ? 0 : 1;
out:
	json_decref(r);
	free(body);
	buf_free(&q);
	buf_free(&content);
	buf_free(&err);
	return rc;
}

static int
intel_export(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"format", required_argument, NULL, 'f'},
	    {"output", required_argument, NULL, 'o'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *fmt = "csv", *out = "-";
	char path[300];
	int ch;

	while ((ch = getopt_long(argc, argv, "ho:", opts, NULL)) != -1) {
		switch (ch) {
		case 'f':
			fmt = optarg;
			break;
		case 'o':
			out = optarg;
			break;
		case 'h':
			intel_usage(stdout);
			return 0;
		default:
			intel_usage(stderr);
			return 2;
		}
	}
	if (argc - optind != 1 || !str_is_name(argv[optind]) ||
	    (strcmp(fmt, "csv") != 0 && strcmp(fmt, "stix") != 0)) {
		fprintf(stderr, "vigilctl: intel export FEED [--format "
		                "csv|stix] [-o FILE]\n");
		return 2;
	}
	snprintf(path, sizeof(path), "/api/v1/feeds/%s/export?format=%s",
	         argv[optind], fmt);
	return ctl_download(path, out) == 0 ? 0 : 1;
}

static int
intel_feeds(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"priority", required_argument, NULL, 'p'},
	    {"description", required_argument, NULL, 'd'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *sub = argc > 1 && argv[1][0] != '-' ? argv[1] : "list";
	long long prio = -1;
	const char *desc = NULL;
	json_t *r, *body;
	int ch;

	if (argc > 1 && argv[1][0] != '-') {
		argc--;
		argv++;
	}
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'p':
			if (str_to_ll(optarg, 0, 1000, &prio) == -1) {
				fprintf(stderr, "vigilctl: --priority: "
				                "0..1000\n");
				return 2;
			}
			break;
		case 'd':
			desc = optarg;
			break;
		case 'h':
			intel_usage(stdout);
			return 0;
		default:
			intel_usage(stderr);
			return 2;
		}
	}
	if (strcmp(sub, "list") == 0) {
		static const char *const cols[] = {"name",        "priority",
		                                   "indicators",  "format",
		                                   "description", NULL};
		static const char *const hdrs[] = {
		    "NAME", "PRIORITY", "INDICATORS", "FORMAT", "DESCRIPTION"};

		return intel_print_rows("/api/v1/feeds", "feeds", cols, hdrs);
	}
	if (optind >= argc) {
		intel_usage(stderr);
		return 2;
	}
	if (strcmp(sub, "add") == 0) {
		body = json_pack("{s:s}", "name", argv[optind]);
		if (prio >= 0)
			json_object_set_new(body, "priority",
			                    json_integer(prio));
		if (desc != NULL)
			json_object_set_new(body, "description",
			                    json_string(desc));
		r = ctl_api("POST", "/api/v1/feeds", body);
		json_decref(body);
		if (r == NULL)
			return 2;
		printf("feed %s: priority %lld\n", argv[optind],
		       (long long)json_integer_value(
		           json_object_get(r, "priority")));
		json_decref(r);
		return 0;
	}
	if (strcmp(sub, "remove") == 0) {
		char path[200];

		if (!str_is_name(argv[optind])) {
			fprintf(stderr, "vigilctl: no such feed\n");
			return 2;
		}
		snprintf(path, sizeof(path), "/api/v1/feeds/%s", argv[optind]);
		if ((r = ctl_api("DELETE", path, NULL)) == NULL)
			return 2;
		printf("feed %s removed with its indicators\n", argv[optind]);
		json_decref(r);
		return 0;
	}
	intel_usage(stderr);
	return 2;
}

/* argv[0] is "allow" or "block". */
static int
intel_list(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"comment", required_argument, NULL, 'c'},
	    {"ttl", required_argument, NULL, 't'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *list = argv[0];
	const char *sub = argc > 1 && argv[1][0] != '-' ? argv[1] : "list";
	const char *comment = NULL;
	long long ttl = 0;
	char path[600];
	json_t *r, *body, *a;
	struct buf q;
	int ch, i;

	if (argc > 1 && argv[1][0] != '-') {
		argc--;
		argv++;
	}
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			comment = optarg;
			break;
		case 't':
			if (str_to_duration(optarg, &ttl) == -1) {
				fprintf(stderr, "vigilctl: --ttl: a duration "
				                "(30m, 12h, 7d)\n");
				return 2;
			}
			break;
		case 'h':
			intel_usage(stdout);
			return 0;
		default:
			intel_usage(stderr);
			return 2;
		}
	}
	snprintf(path, sizeof(path), "/api/v1/lists/%s", list);
	if (strcmp(sub, "list") == 0) {
		static const char *const cols[] = {
		    "indicator", "type", "reference", "expires", NULL};
		static const char *const hdrs[] = {"INDICATOR", "TYPE",
		                                   "COMMENT", "EXPIRES"};

		return intel_print_rows(path, "entries", cols, hdrs);
	}
	if (optind >= argc) {
		intel_usage(stderr);
		return 2;
	}
	if (strcmp(sub, "add") == 0) {
		a = json_array();
		for (i = optind; i < argc; i++)
			json_array_append_new(a, json_string(argv[i]));
		body = json_pack("{s:o}", "indicators", a);
		if (comment != NULL)
			json_object_set_new(body, "comment",
			                    json_string(comment));
		if (ttl > 0)
			json_object_set_new(body, "expires",
			                    json_integer(time(NULL) + ttl));
		r = ctl_api("POST", path, body);
		json_decref(body);
		if (r == NULL)
			return 2;
		printf(
		    "%s list: %lld added\n", list,
		    (long long)json_integer_value(json_object_get(r, "added")));
		json_decref(r);
		return 0;
	}
	if (strcmp(sub, "remove") == 0) {
		buf_init(&q, 8192);
		ctl_query_add(&q, "indicator", argv[optind]);
		if (buf_ok(&q) == 0 &&
		    (size_t)snprintf(path, sizeof(path), "/api/v1/lists/%s%s",
		                     list, buf_cstr(&q)) < sizeof(path))
			r = ctl_api("DELETE", path, NULL);
		else
			r = NULL;
		buf_free(&q);
		if (r == NULL)
			return 2;
		printf("%s list: %s removed\n", list, argv[optind]);
		json_decref(r);
		return 0;
	}
	intel_usage(stderr);
	return 2;
}

static int
intel_stats(void)
{
	json_t *r = ctl_api("GET", "/api/v1/stats", NULL), *v;
	const char *k;

	if (r == NULL)
		return 2;
	if (ctl.json)
		ctl_print_json(r);
	else {
		printf("entries: %lld\n",
		       (long long)json_integer_value(
		           json_object_get(r, "indicators")));
		json_object_foreach(json_object_get(r, "by_source"), k, v)
		    printf("  %s: %lld\n", k, (long long)json_integer_value(v));
		printf("store: %lld of %lld bytes used\n",
		       (long long)json_integer_value(
		           json_object_get(r, "used_bytes")),
		       (long long)json_integer_value(
		           json_object_get(r, "map_size")));
	}
	json_decref(r);
	return 0;
}

int
ctl_intel(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "--help") == 0) {
		intel_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	set_server();
	if (strcmp(argv[1], "lookup") == 0)
		return intel_lookup(argc - 1, argv + 1);
	if (strcmp(argv[1], "import") == 0)
		return intel_import(argc - 1, argv + 1);
	if (strcmp(argv[1], "export") == 0)
		return intel_export(argc - 1, argv + 1);
	if (strcmp(argv[1], "feeds") == 0)
		return intel_feeds(argc - 1, argv + 1);
	if (strcmp(argv[1], "allow") == 0 || strcmp(argv[1], "block") == 0)
		return intel_list(argc - 1, argv + 1);
	if (strcmp(argv[1], "stats") == 0)
		return intel_stats();
	fprintf(stderr, "vigilctl: intel: unknown command '%s'\n", argv[1]);
	intel_usage(stderr);
	return 2;
}
