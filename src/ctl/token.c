/*
 * token.c: `vigilctl token create|list|delete`. The token itself is shown
 * once, at creation; the center keeps only its hash.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "ctl.h"

static void
token_usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: vigilctl token create [--uses N] [--expires DURATION] "
	    "[--label KEY=VALUE]...\n"
	    "       vigilctl token list\n"
	    "       vigilctl token delete TOKEN_ID\n"
	    "  --uses N            agents that may enroll with it (default "
	    "1)\n"
	    "  --expires DURATION  e.g. 30m, 24h, 7d (default 7d)\n"
	    "  --label KEY=VALUE   label given to agents enrolled with it\n");
}

static int
token_create(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"uses", required_argument, NULL, 'u'},
	    {"expires", required_argument, NULL, 'e'},
	    {"label", required_argument, NULL, 'l'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	json_t *body = json_object(), *labels = json_object(), *j;
	long long v;
	char *eq;
	int ch, rc = 2;

	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'u':
			if (str_to_ll(optarg, 1, 1000000, &v) == -1) {
				fprintf(stderr,
				        "vigilctl: --uses: '%s' is not "
				        "a number 1..1000000\n",
				        optarg);
				goto out;
			}
			json_object_set_new(body, "uses", json_integer(v));
			break;
		case 'e':
			if (str_to_duration(optarg, &v) == -1) {
				fprintf(stderr,
				        "vigilctl: --expires: '%s' is "
				        "not a duration (e.g. 30m, "
				        "24h, 7d)\n",
				        optarg);
				goto out;
			}
			json_object_set_new(body, "expires", json_integer(v));
			break;
		case 'l':
			if ((eq = strchr(optarg, '=')) == NULL ||
			    eq == optarg) {
				fprintf(stderr,
				        "vigilctl: --label: '%s' is not "
				        "KEY=VALUE\n",
				        optarg);
				goto out;
			}
			*eq = '\0';
			json_object_set_new(labels, optarg,
			                    json_string(eq + 1));
			*eq = '=';
			break;
		case 'h':
			token_usage(stdout);
			rc = 0;
			goto out;
		default:
			token_usage(stderr);
			goto out;
		}
	}
	if (optind != argc) {
		token_usage(stderr);
		goto out;
	}
	json_object_set(body, "labels", labels);
	rc = 1;
	if ((j = ctl_api("POST", "/api/v1/tokens", body)) == NULL)
		goto out;
	if (ctl.json)
		ctl_print_json(j);
	else
		printf("token %s (id %s)\nIt is shown only now; store it "
		       "safely. Enroll an agent with:\n  vigil-agent enroll "
		       "--server https://CENTER --token %s --ca-fingerprint "
		       "FINGERPRINT\n",
		       json_string_value(json_object_get(j, "token")),
		       json_string_value(json_object_get(j, "id")),
		       json_string_value(json_object_get(j, "token")));
	json_decref(j);
	rc = 0;
out:
	json_decref(labels);
	json_decref(body);
	return rc;
}

static int
token_list(void)
{
	static const char *const cols[] = {"id",      "uses",   "used",
	                                   "expires", "labels", NULL};
	static const char *const hdrs[] = {"ID",      "USES",   "USED",
	                                   "EXPIRES", "LABELS", NULL};
	json_t *j, *a, *row;
	size_t i;

	if ((j = ctl_api("GET", "/api/v1/tokens?limit=1000", NULL)) == NULL)
		return 1;
	a = json_object_get(j, "items");
	if (ctl.json)
		ctl_print_json(a);
	else {
		json_array_foreach(a, i, row)
		{
			json_t *e = json_object_get(row, "expires_at");
			char when[64] = "never";

			if (json_is_integer(e)) {
				time_t t = (time_t)json_integer_value(e);
				struct tm tm;

				gmtime_r(&t, &tm);
				strftime(when, sizeof(when), "%Y-%m-%d %H:%MZ",
				         &tm);
				if (t <= time(NULL))
					snprintf(when + strlen(when),
					         sizeof(when) - strlen(when),
					         " (expired)");
			}
			json_object_set_new(row, "expires", json_string(when));
		}
		ctl_table(a, cols, hdrs);
	}
	json_decref(j);
	return 0;
}

static int
token_delete(const char *id)
{
	char path[128];
	json_t *j;

	if (strlen(id) > 64 || strchr(id, '/') || strchr(id, '?')) {
		fprintf(stderr, "vigilctl: '%s' is not a token id\n", id);
		return 2;
	}
	snprintf(path, sizeof(path), "/api/v1/tokens/%s", id);
	if ((j = ctl_api("DELETE", path, NULL)) == NULL)
		return 1;
	if (ctl.json)
		ctl_print_json(j);
	else
		printf("deleted token %s\n", id);
	json_decref(j);
	return 0;
}

int
ctl_token(int argc, char **argv)
{
	const char *sub = argc > 1 ? argv[1] : NULL;

	/* "--help" anywhere is a request for help, never a value. */
	if (ctl_wants_help(argc, argv)) {
		token_usage(stdout);
		return 0;
	}

	if (sub == NULL || strcmp(sub, "--help") == 0 ||
	    strcmp(sub, "-h") == 0) {
		token_usage(sub ? stdout : stderr);
		return sub ? 0 : 2;
	}
	if (strcmp(sub, "create") == 0)
		return token_create(argc - 1, argv + 1);
	if (strcmp(sub, "list") == 0 && argc == 2)
		return token_list();
	if (strcmp(sub, "delete") == 0 && argc == 3)
		return token_delete(argv[2]);
	token_usage(stderr);
	return 2;
}
