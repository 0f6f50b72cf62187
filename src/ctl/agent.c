/*
 * agent.c: `vigilctl agent list|show|pending|approve|reject|revoke|label`.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "ctl.h"
#include "httpc.h"

static void
agent_usage(FILE *f)
{
	fprintf(
	    f, "usage: vigilctl agent list [--state online|offline|revoked] "
	       "[--label KEY=VALUE]\n"
	       "                           [--search TEXT]\n"
	       "       vigilctl agent show AGENT_ID\n"
	       "       vigilctl agent pending\n"
	       "       vigilctl agent approve REQUEST_ID\n"
	       "       vigilctl agent reject REQUEST_ID\n"
	       "       vigilctl agent revoke AGENT_ID\n"
	       "       vigilctl agent label AGENT_ID [KEY=VALUE ...] [--remove "
	       "KEY ...] [--replace]\n"
	       "  label: sets (KEY=VALUE) and removes (--remove KEY) labels of "
	       "the agent;\n"
	       "         --replace starts from no labels instead of the "
	       "agent's\n");
}

/* The signed updates an agent runs, in a few characters: "t3 (2 rule
 * sets)", "t3, refused" when its last check was refused, "no root" when
 * it pinned no update root (it takes no updates: vigil-agent pin-root). */
static const char *
updates_brief(json_t *row)
{
	static char s[64];
	json_t *u = json_object_get(row, "updates");

	if (!json_is_object(u))
		return "no root";
	snprintf(s, sizeof(s), "t%lld (%zu rule sets)%s",
	         (long long)json_integer_value(json_object_get(u, "targets")),
	         json_array_size(json_object_get(u, "rules")),
	         json_is_string(json_object_get(u, "error")) ? ", refused"
	                                                     : "");
	return s;
}

static int
agent_list(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"state", required_argument, NULL, 's'},
	    {"label", required_argument, NULL, 'l'},
	    {"search", required_argument, NULL, 'q'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	static const char *const cols[] = {
	    "id",   "hostname", "state", "os",     "ips",
	    "seen", "version",  "upd",   "labels", NULL};
	static const char *const hdrs[] = {
	    "ID",        "HOSTNAME", "STATE",   "OS",     "IPS",
	    "LAST SEEN", "VERSION",  "UPDATES", "LABELS", NULL};
	char ago[32];
	struct buf path;
	json_t *a, *row;
	size_t i;
	int ch, rc = 2;

	buf_init(&path, 4096);
	buf_puts(&path, "/api/v1/agents?limit=1000");

	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 's':
			if (strcmp(optarg, "online") != 0 &&
			    strcmp(optarg, "offline") != 0 &&
			    strcmp(optarg, "revoked") != 0) {
				fprintf(stderr, "vigilctl: --state: must be "
				                "online, offline or revoked\n");
				goto out;
			}
			buf_printf(&path, "&state=%s", optarg);
			break;
		case 'l':
			if (strchr(optarg, '=') == NULL) {
				fprintf(stderr,
				        "vigilctl: --label: '%s' is "
				        "not KEY=VALUE\n",
				        optarg);
				goto out;
			}
			buf_puts(&path, "&label=");
			httpc_urlenc(&path, optarg);
			break;
		case 'q':
			buf_puts(&path, "&q=");
			httpc_urlenc(&path, optarg);
			break;
		case 'h':
			agent_usage(stdout);
			rc = 0;
			goto out;
		default:
			agent_usage(stderr);
			goto out;
		}
	}
	rc = 1;
	if ((a = ctl_api_all(buf_cstr(&path), 0)) == NULL)
		goto out;
	rc = 0;
	if (ctl.json) {
		ctl_print_json(a);
	} else {
		json_array_foreach(a, i, row)
		{
			json_t *seen = json_object_get(row, "last_seen");

			ctl_ago(json_is_integer(seen) ? json_integer_value(seen)
			                              : 0,
			        ago, sizeof(ago));
			json_object_set_new(row, "seen", json_string(ago));
			json_object_set(row, "version",
			                json_object_get(row, "agent_version"));
			json_object_set_new(row, "upd",
			                    json_string(updates_brief(row)));
		}
		ctl_table(a, cols, hdrs);
	}
	json_decref(a);
out:
	buf_free(&path);
	return rc;
}

static int
agent_pending(void)
{
	static const char *const cols[] = {
	    "id", "hostname", "source_addr", "machine_id", "cloned_from", NULL};
	static const char *const hdrs[] = {"REQUEST",    "HOSTNAME", "FROM",
	                                   "MACHINE ID", "CLONE OF", NULL};
	json_t *j, *a, *row;
	size_t i;

	if ((j = ctl_api("GET", "/api/v1/enrollments?status=pending&limit=1000",
	                 NULL)) == NULL)
		return 1;
	a = json_object_get(j, "items");
	if (ctl.json)
		ctl_print_json(a);
	else {
		json_array_foreach(a, i, row)
		{
			json_t *f = json_object_get(row, "facts");

			json_object_set(row, "hostname",
			                json_object_get(f, "hostname"));
			json_object_set(row, "machine_id",
			                json_object_get(f, "machine_id"));
		}
		ctl_table(a, cols, hdrs);
	}
	json_decref(j);
	return 0;
}

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

static int
agent_action(const char *what, const char *fmt, const char *id,
             const char *done)
{
	char path[256];
	json_t *j;

	if (!valid_id(id)) {
		fprintf(stderr, "vigilctl: %s: '%s' is not an id\n", what, id);
		return 2;
	}
	snprintf(path, sizeof(path), fmt, id);
	if ((j = ctl_api(strcmp(what, "show") == 0 ? "GET" : "POST", path,
	                 NULL)) == NULL)
		return 1;
	if (ctl.json || done == NULL)
		ctl_print_json(j);
	else
		printf("%s %s\n", done, id);
	json_decref(j);
	return 0;
}

/* agent label ID [K=V ...] [--remove K ...] [--replace]: the agent's
 * labels changed and sent back whole (PUT replaces them). */
static int
agent_label(int argc, char **argv)
{
	char path[256], *k = NULL;
	const char *eq;
	json_t *j = NULL, *labels = NULL, *body = NULL, *r;
	int i, replace = 0, rc = 2;

	if (argc < 3 || !valid_id(argv[2])) {
		fprintf(stderr, "vigilctl: label: expected an agent id\n");
		agent_usage(stderr);
		return 2;
	}
	for (i = 3; i < argc; i++)
		if (strcmp(argv[i], "--replace") == 0)
			replace = 1;
	snprintf(path, sizeof(path), "/api/v1/agents/%s", argv[2]);
	if (replace)
		labels = json_object();
	else {
		if ((j = ctl_api("GET", path, NULL)) == NULL)
			return 1;
		labels = json_deep_copy(json_object_get(j, "labels"));
		if (!json_is_object(labels)) {
			json_decref(labels);
			labels = json_object();
		}
	}
	for (i = 3; i < argc; i++) {
		if (strcmp(argv[i], "--replace") == 0)
			continue;
		if (strcmp(argv[i], "--remove") == 0) {
			if (++i == argc) {
				fprintf(stderr, "vigilctl: label: --remove "
				                "needs a KEY\n");
				goto out;
			}
			json_object_del(labels, argv[i]);
			continue;
		}
		if ((eq = strchr(argv[i], '=')) == NULL || eq == argv[i]) {
			fprintf(stderr,
			        "vigilctl: label: '%s' is not KEY=VALUE\n",
			        argv[i]);
			goto out;
		}
		free(k);
		if ((k = strndup(argv[i], (size_t)(eq - argv[i]))) == NULL)
			goto out;
		json_object_set_new(labels, k, json_string(eq + 1));
	}
	body = json_pack("{s:O}", "labels", labels);
	snprintf(path, sizeof(path), "/api/v1/agents/%s/labels", argv[2]);
	rc = 1;
	if ((r = ctl_api("PUT", path, body)) == NULL)
		goto out;
	if (ctl.json)
		ctl_print_json(json_object_get(r, "labels"));
	else {
		char b[1024];

		ctl_brief(json_object_get(r, "labels"), b, sizeof(b), 900);
		printf("labels of agent %s: %s\n", argv[2], b);
	}
	json_decref(r);
	rc = 0;
out:
	free(k);
	json_decref(body);
	json_decref(labels);
	json_decref(j);
	return rc;
}

int
ctl_agent(int argc, char **argv)
{
	const char *sub = argc > 1 ? argv[1] : NULL;

	/* "--help" anywhere is a request for help, never a value. */
	if (ctl_wants_help(argc, argv)) {
		agent_usage(stdout);
		return 0;
	}

	if (sub == NULL || strcmp(sub, "--help") == 0 ||
	    strcmp(sub, "-h") == 0) {
		agent_usage(sub ? stdout : stderr);
		return sub ? 0 : 2;
	}
	if (strcmp(sub, "list") == 0)
		return agent_list(argc - 1, argv + 1);
	if (strcmp(sub, "pending") == 0 && argc == 2)
		return agent_pending();
	if (strcmp(sub, "label") == 0)
		return agent_label(argc, argv);
	if (argc != 3) {
		agent_usage(stderr);
		return 2;
	}
	if (strcmp(sub, "show") == 0)
		return agent_action(sub, "/api/v1/agents/%s", argv[2], NULL);
	if (strcmp(sub, "approve") == 0)
		return agent_action(sub, "/api/v1/enrollments/%s/approve",
		                    argv[2], "approved enrollment request");
	if (strcmp(sub, "reject") == 0)
		return agent_action(sub, "/api/v1/enrollments/%s/reject",
		                    argv[2], "rejected enrollment request");
	if (strcmp(sub, "revoke") == 0)
		return agent_action(sub, "/api/v1/agents/%s/revoke", argv[2],
		                    "revoked agent");
	agent_usage(stderr);
	return 2;
}
