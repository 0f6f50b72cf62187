/*
 * settings.c: `vigilctl settings [show] | set NAME VALUE | reset NAME`,
 * the center's runtime settings (GET/PUT /api/v1/settings).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

static void
settings_usage(FILE *f)
{
	fprintf(f, "usage: vigilctl settings [show]\n"
	           "       vigilctl settings set NAME VALUE\n"
	           "       vigilctl settings reset NAME\n"
	           "settings:\n"
	           "  require_approval         yes or no: new agents wait for "
	           "approval\n"
	           "                           (default: vigild.conf)\n"
	           "  sample_archive_password  password of sample downloads "
	           "(default 'infected')\n");
}

static int
settings_show(void)
{
	static const char *const cols[] = {"name", "value", "default", "source",
	                                   NULL};
	static const char *const hdrs[] = {"NAME", "VALUE", "DEFAULT", "SOURCE",
	                                   NULL};
	json_t *j, *rows, *set, *v, *e;
	const char *k;
	size_t i;
	int api;

	if ((j = ctl_api("GET", "/api/v1/settings", NULL)) == NULL)
		return 1;
	if (ctl.json) {
		ctl_print_json(j);
		json_decref(j);
		return 0;
	}
	rows = json_array();
	set = json_object_get(j, "set");
	json_object_foreach(json_object_get(j, "settings"), k, v)
	{
		char *vs = json_dumps(v, JSON_ENCODE_ANY);
		char *ds = json_dumps(
		    json_object_get(json_object_get(j, "defaults"), k),
		    JSON_ENCODE_ANY);

		api = 0;
		json_array_foreach(set, i, e)
		{
			if (json_is_string(e) &&
			    strcmp(json_string_value(e), k) == 0)
				api = 1;
		}
		json_array_append_new(
		    rows, json_pack("{s:s, s:s, s:s, s:s}", "name", k, "value",
		                    vs ? vs : "?", "default", ds ? ds : "?",
		                    "source", api ? "api" : "default"));
		free(vs);
		free(ds);
	}
	ctl_table(rows, cols, hdrs);
	json_decref(rows);
	json_decref(j);
	return 0;
}

static int
settings_put(const char *name, json_t *value)
{
	json_t *body = json_object(), *j;

	json_object_set_new(body, name, value);
	j = ctl_api("PUT", "/api/v1/settings", body);
	json_decref(body);
	if (j == NULL)
		return 1;
	if (ctl.json)
		ctl_print_json(j);
	else {
		char *vs = json_dumps(
		    json_object_get(json_object_get(j, "settings"), name),
		    JSON_ENCODE_ANY);

		printf("%s = %s\n", name, vs ? vs : "?");
		free(vs);
	}
	json_decref(j);
	return 0;
}

int
ctl_settings(int argc, char **argv)
{
	json_t *v;

	/* "--help" anywhere is a request for help, never a value. */
	if (ctl_wants_help(argc, argv)) {
		settings_usage(stdout);
		return 0;
	}
	if (argc == 1 || (argc == 2 && strcmp(argv[1], "show") == 0))
		return settings_show();
	if (argc == 4 && strcmp(argv[1], "set") == 0) {
		if (strcmp(argv[2], "require_approval") == 0) {
			if (strcmp(argv[3], "yes") == 0 ||
			    strcmp(argv[3], "true") == 0)
				v = json_true();
			else if (strcmp(argv[3], "no") == 0 ||
			         strcmp(argv[3], "false") == 0)
				v = json_false();
			else {
				fprintf(stderr, "vigilctl: require_approval: "
				                "yes or no\n");
				return 2;
			}
		} else
			v = json_string(argv[3]);
		if (v == NULL) {
			fprintf(stderr, "vigilctl: %s: not valid UTF-8\n",
			        argv[2]);
			return 2;
		}
		return settings_put(argv[2], v);
	}
	if (argc == 3 && strcmp(argv[1], "reset") == 0)
		return settings_put(argv[2], json_null());
	settings_usage(stderr);
	return 2;
}
