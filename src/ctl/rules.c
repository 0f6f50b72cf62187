/*
 * rules.c: `vigilctl rules add|list|remove`. A rule set is a YARA source
 * or an IOC list, sent as text; the center compiles or parses it and
 * refuses it, with the compiler's errors and warnings, unless it is clean.
 * Agents fetch rule sets by content hash, which is the ID printed here.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "ctl.h"
#include "httpc.h"
#include "tls.h"

#define RULES_MAX_FILE (16u * 1024 * 1024)

static void
rules_usage(FILE *f)
{
	fprintf(f,
	        "usage: vigilctl rules add NAME FILE [--kind yara|ioc]\n"
	        "       vigilctl rules list\n"
	        "       vigilctl rules remove NAME\n"
	        "       vigilctl rules versions [NAME]\n"
	        "       vigilctl rules pin NAME VERSION\n"
	        "       vigilctl rules unpin NAME\n"
	        "  versions     the versions of rule sets that arrived by "
	        "signed update\n"
	        "  pin          hold a rule set that arrives by update at "
	        "VERSION\n"
	        "  unpin        follow the update repository again\n"
	        "  --kind KIND  yara or ioc; default yara for a FILE ending in "
	        ".yar or .yara,\n"
	        "               else ioc\n");
}

/* The center's rule: 1..64 bytes, no '/' or white space. */
static int
ruleset_name_ok(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n <= 64 && strpbrk(s, "/ \t\r\n") == NULL;
}

static const char *
kind_of(const char *file)
{
	const char *dot = strrchr(file, '.');

	if (dot != NULL && strchr(dot, '/') == NULL &&
	    (strcasecmp(dot, ".yar") == 0 || strcasecmp(dot, ".yara") == 0))
		return "yara";
	return "ioc";
}

static int
rules_add(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"kind", required_argument, NULL, 'k'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *kind = NULL, *name, *file;
	struct buf content, err;
	json_t *body = NULL, *text, *j;
	int ch, rc = 2;

	buf_init(&content, RULES_MAX_FILE);
	buf_init(&err, 1024);
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'k':
			if (strcmp(optarg, "yara") != 0 &&
			    strcmp(optarg, "ioc") != 0) {
				fprintf(stderr,
				        "vigilctl: --kind: must be yara or "
				        "ioc\n");
				goto out;
			}
			kind = optarg;
			break;
		case 'h':
			rules_usage(stdout);
			rc = 0;
			goto out;
		default:
			rules_usage(stderr);
			goto out;
		}
	}
	if (argc - optind != 2) {
		rules_usage(stderr);
		goto out;
	}
	name = argv[optind];
	file = argv[optind + 1];
	if (!ruleset_name_ok(name)) {
		fprintf(stderr,
		        "vigilctl: rules add: '%s' is not a rule set name "
		        "(1..64 characters, no '/' or white space)\n",
		        name);
		goto out;
	}
	if (kind == NULL)
		kind = kind_of(file);
	rc = 1;
	if (tls_read_file(file, RULES_MAX_FILE, &content, &err) == -1) {
		fprintf(stderr, "vigilctl: %s\n", buf_cstr(&err));
		goto out;
	}
	if (content.len == 0 || memchr(content.data, '\0', content.len)) {
		fprintf(stderr, "vigilctl: %s: %s\n", file,
		        content.len ? "holds NUL bytes: not a text file"
		                    : "empty");
		goto out;
	}
	/* JSON strings are UTF-8; jansson refuses anything else. */
	if ((text = json_stringn((const char *)content.data, content.len)) ==
	    NULL) {
		fprintf(stderr, "vigilctl: %s: not UTF-8 text\n", file);
		goto out;
	}
	body = json_pack("{s:s, s:s, s:o}", "name", name, "kind", kind,
	                 "content", text);
	if (body == NULL ||
	    (j = ctl_api("POST", "/api/v1/rules", body)) == NULL)
		goto out;
	if (ctl.json)
		ctl_print_json(j);
	else
		printf(
		    "added %s rule set %s (%lld bytes): %s\n", kind, name,
		    (long long)json_integer_value(json_object_get(j, "size")),
		    json_string_value(json_object_get(j, "id")));
	json_decref(j);
	rc = 0;
out:
	json_decref(body);
	buf_free(&content);
	buf_free(&err);
	return rc;
}

static int
rules_list(void)
{
	static const char *const cols[] = {"name",   "kind",    "size",
	                                   "source", "version", "pinned",
	                                   "added",  "id",      NULL};
	static const char *const hdrs[] = {"NAME",   "KIND",         "SIZE",
	                                   "SOURCE", "VERSION",      "PINNED",
	                                   "ADDED",  "ID (SHA-256)", NULL};
	json_t *j, *a, *row;
	size_t i;

	if ((j = ctl_api("GET", "/api/v1/rules?limit=1000", NULL)) == NULL)
		return 1;
	a = json_object_get(j, "items");
	if (ctl.json)
		ctl_print_json(a);
	else {
		json_array_foreach(a, i, row)
		{
			json_t *t = json_object_get(row, "created_at");
			char when[32];

			ctl_utc(json_is_integer(t) ? json_integer_value(t) : 0,
			        0, when, sizeof(when));
			json_object_set_new(row, "added", json_string(when));
		}
		ctl_table(a, cols, hdrs);
	}
	json_decref(j);
	return 0;
}

static int
rules_remove(const char *name)
{
	struct buf path;
	json_t *j;
	int rc = 1;

	if (!ruleset_name_ok(name)) {
		fprintf(stderr, "vigilctl: '%s' is not a rule set name\n",
		        name);
		return 2;
	}
	buf_init(&path, 1024);
	buf_puts(&path, "/api/v1/rules/");
	httpc_urlenc(&path, name);
	if ((j = ctl_api("DELETE", buf_cstr(&path), NULL)) != NULL) {
		if (ctl.json)
			ctl_print_json(j);
		else
			printf("removed rule set %s\n", name);
		json_decref(j);
		rc = 0;
	}
	buf_free(&path);
	return rc;
}

static int
rules_versions(const char *name)
{
	static const char *const cols[] = {
	    "name", "version", "current", "pinned", "target", "id", NULL};
	static const char *const hdrs[] = {"NAME",   "VERSION", "CURRENT",
	                                   "PINNED", "TARGET",  "ID (SHA-256)",
	                                   NULL};
	struct buf path;
	json_t *j, *a, *row;
	size_t i;

	buf_init(&path, 1024);
	buf_puts(&path, "/api/v1/rule-versions");
	if (name != NULL) {
		buf_puts(&path, "?name=");
		httpc_urlenc(&path, name);
	}
	j = ctl_api("GET", buf_cstr(&path), NULL);
	buf_free(&path);
	if (j == NULL)
		return 1;
	a = json_object_get(j, "items");
	if (ctl.json)
		ctl_print_json(a);
	else {
		json_array_foreach(a, i, row)
		{
			json_object_set_new(
			    row, "current",
			    json_string(
			        json_is_true(json_object_get(row, "current"))
			            ? "yes"
			            : ""));
			json_object_set_new(
			    row, "pinned",
			    json_string(
			        json_is_true(json_object_get(row, "pinned"))
			            ? "yes"
			            : ""));
		}
		ctl_table(a, cols, hdrs);
	}
	json_decref(j);
	return 0;
}

static int
rules_pin(const char *name, const char *version)
{
	struct buf path;
	json_t *j, *body = NULL;
	int rc = 1;

	if (!ruleset_name_ok(name)) {
		fprintf(stderr, "vigilctl: '%s' is not a rule set name\n",
		        name);
		return 2;
	}
	buf_init(&path, 1024);
	buf_puts(&path, "/api/v1/rule-pins/");
	httpc_urlenc(&path, name);
	if (version != NULL)
		body = json_pack("{s:s}", "version", version);
	if ((j = ctl_api(version ? "PUT" : "DELETE", buf_cstr(&path), body)) !=
	    NULL) {
		if (ctl.json)
			ctl_print_json(j);
		else if (version != NULL)
			printf("rule set %s pinned at version %s\n", name,
			       version);
		else
			printf("rule set %s follows the update repository "
			       "again (version %s)\n",
			       name,
			       json_string_value(json_object_get(j, "version"))
			           ?: "-");
		json_decref(j);
		rc = 0;
	}
	json_decref(body);
	buf_free(&path);
	return rc;
}

int
ctl_rules(int argc, char **argv)
{
	const char *sub = argc > 1 ? argv[1] : NULL;

	/* "--help" anywhere is a request for help, never a value. */
	if (ctl_wants_help(argc, argv)) {
		rules_usage(stdout);
		return 0;
	}
	if (sub == NULL) {
		rules_usage(stderr);
		return 2;
	}
	if (strcmp(sub, "add") == 0)
		return rules_add(argc - 1, argv + 1);
	if (strcmp(sub, "list") == 0 && argc == 2)
		return rules_list();
	if (strcmp(sub, "remove") == 0 && argc == 3)
		return rules_remove(argv[2]);
	if (strcmp(sub, "versions") == 0 && argc <= 3)
		return rules_versions(argc == 3 ? argv[2] : NULL);
	if (strcmp(sub, "pin") == 0 && argc == 4)
		return rules_pin(argv[2], argv[3]);
	if (strcmp(sub, "unpin") == 0 && argc == 3)
		return rules_pin(argv[2], NULL);
	rules_usage(stderr);
	return 2;
}
