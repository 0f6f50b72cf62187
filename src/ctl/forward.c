/*
 * forward.c: `vigilctl forward add|list|remove|test`, the SIEM forwarding
 * targets of the center (docs/forwarding.md). The center checks every
 * field; this only turns options into the API's JSON.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "ctl.h"

static void
forward_usage(FILE *f)
{
	fprintf(f,
	        "usage: vigilctl forward add NAME --host HOST [--port PORT] "
	        "[--transport udp|tcp|tls]\n"
	        "           [--format rfc5424|rfc3164|cef|leef|json] "
	        "[--framing octet|newline]\n"
	        "           [--facility N] [--type TYPE]... [--min-level "
	        "LEVEL] [--from now|start]\n"
	        "           [--tls-ca FILE] [--tls-cert FILE --tls-key "
	        "FILE]\n"
	        "       vigilctl forward list\n"
	        "       vigilctl forward remove NAME\n"
	        "       vigilctl forward test NAME\n"
	        "  --host HOST        the receiver (name or address)\n"
	        "  --port PORT        default 514 (udp, tcp), 6514 (tls)\n"
	        "  --transport T      udp (default, best effort), tcp or tls\n"
	        "  --format F         message format (default rfc5424)\n"
	        "  --framing F        tcp/tls: octet counting (default) or "
	        "newline\n"
	        "  --facility N       syslog facility 0..23 (default 16, "
	        "local0)\n"
	        "  --type TYPE        forward only these event types "
	        "(repeatable)\n"
	        "  --min-level LEVEL  info, notice, warning or alert\n"
	        "  --from WHEN        now (default): events stored from now "
	        "on; start: all\n"
	        "  --tls-ca FILE      CA that signed the receiver's "
	        "certificate (tls)\n"
	        "  --tls-cert FILE    client certificate (tls, optional)\n"
	        "  --tls-key FILE     its private key\n");
}

static int
forward_add(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"host", required_argument, NULL, 'H'},
	    {"port", required_argument, NULL, 'p'},
	    {"transport", required_argument, NULL, 't'},
	    {"format", required_argument, NULL, 'f'},
	    {"framing", required_argument, NULL, 'F'},
	    {"facility", required_argument, NULL, 'a'},
	    {"type", required_argument, NULL, 'y'},
	    {"min-level", required_argument, NULL, 'l'},
	    {"from", required_argument, NULL, 'w'},
	    {"tls-ca", required_argument, NULL, 'C'},
	    {"tls-cert", required_argument, NULL, 'c'},
	    {"tls-key", required_argument, NULL, 'k'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	json_t *body = json_object(), *types = json_array(), *j;
	long long v;
	int ch, rc = 2;

	if (argc < 2 || argv[1][0] == '-') {
		forward_usage(stderr);
		goto out;
	}
	json_object_set_new(body, "name", json_string(argv[1]));
	argc--;
	argv++;
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		const char *key = NULL;

		switch (ch) {
		case 'H':
			key = "host";
			break;
		case 't':
			key = "transport";
			break;
		case 'f':
			key = "format";
			break;
		case 'F':
			key = "framing";
			break;
		case 'l':
			key = "min_level";
			break;
		case 'w':
			key = "from";
			break;
		case 'C':
			key = "ca_file";
			break;
		case 'c':
			key = "cert_file";
			break;
		case 'k':
			key = "key_file";
			break;
		case 'y':
			json_array_append_new(types, json_string(optarg));
			break;
		case 'p':
		case 'a':
			if (str_to_ll(optarg, 0, 65535, &v) == -1) {
				fprintf(stderr,
				        "vigilctl: --%s: '%s' is not a "
				        "number\n",
				        ch == 'p' ? "port" : "facility",
				        optarg);
				goto out;
			}
			json_object_set_new(body,
			                    ch == 'p' ? "port" : "facility",
			                    json_integer(v));
			break;
		case 'h':
			forward_usage(stdout);
			rc = 0;
			goto out;
		default:
			forward_usage(stderr);
			goto out;
		}
		if (key != NULL)
			json_object_set_new(body, key, json_string(optarg));
	}
	if (optind != argc) {
		forward_usage(stderr);
		goto out;
	}
	if (json_array_size(types) > 0)
		json_object_set(body, "types", types);
	rc = 1;
	if ((j = ctl_api("POST", "/api/v1/forward", body)) == NULL)
		goto out;
	if (ctl.json)
		ctl_print_json(j);
	else
		printf(
		    "forwarding target %s added: %s %s:%lld, %s\n",
		    json_string_value(json_object_get(j, "name")),
		    json_string_value(json_object_get(j, "transport")),
		    json_string_value(json_object_get(j, "host")),
		    (long long)json_integer_value(json_object_get(j, "port")),
		    json_string_value(json_object_get(j, "format")));
	json_decref(j);
	rc = 0;
out:
	json_decref(types);
	json_decref(body);
	return rc;
}

static int
forward_list(void)
{
	static const char *const cols[] = {
	    "name", "dest",    "format", "framing",    "state", "lag_events",
	    "sent", "dropped", "errors", "last_error", NULL};
	static const char *const hdrs[] = {
	    "NAME", "DESTINATION", "FORMAT", "FRAMING",    "STATE", "LAG",
	    "SENT", "DROPPED",     "ERRORS", "LAST ERROR", NULL};
	json_t *j, *a, *row;
	size_t i;

	if ((j = ctl_api("GET", "/api/v1/forward", NULL)) == NULL)
		return 1;
	a = json_object_get(j, "targets");
	if (ctl.json)
		ctl_print_json(a);
	else {
		json_array_foreach(a, i, row)
		{
			char dest[400];

			snprintf(
			    dest, sizeof(dest), "%s://%s:%lld",
			    json_string_value(
			        json_object_get(row, "transport")),
			    json_string_value(json_object_get(row, "host")),
			    (long long)json_integer_value(
			        json_object_get(row, "port")));
			json_object_set_new(row, "dest", json_string(dest));
			if (!json_is_string(json_object_get(row, "last_error")))
				json_object_set_new(row, "last_error",
				                    json_string("-"));
			ctl_clean_field(row, "last_error", 60);
		}
		ctl_table(a, cols, hdrs);
	}
	json_decref(j);
	return 0;
}

static int
forward_one(const char *method, const char *name, const char *suffix)
{
	char path[160];
	json_t *j;

	if (strlen(name) > 64 || strchr(name, '/') || strchr(name, '?')) {
		fprintf(stderr, "vigilctl: '%s' is not a target name\n", name);
		return 2;
	}
	snprintf(path, sizeof(path), "/api/v1/forward/%s%s", name, suffix);
	if ((j = ctl_api(method, path, NULL)) == NULL)
		return 1;
	if (ctl.json)
		ctl_print_json(j);
	else if (*suffix)
		printf("test message sent to %s:\n%s\n", name,
		       json_string_value(json_object_get(j, "message")));
	else
		printf("forwarding target %s removed\n", name);
	json_decref(j);
	return 0;
}

int
ctl_forward(int argc, char **argv)
{
	const char *sub = argc > 1 ? argv[1] : NULL;

	/* "--help" anywhere is a request for help, never a value. */
	if (ctl_wants_help(argc, argv)) {
		forward_usage(stdout);
		return 0;
	}
	if (sub == NULL) {
		forward_usage(stderr);
		return 2;
	}
	if (strcmp(sub, "add") == 0)
		return forward_add(argc - 1, argv + 1);
	if (strcmp(sub, "list") == 0 && argc == 2)
		return forward_list();
	if (strcmp(sub, "remove") == 0 && argc == 3)
		return forward_one("DELETE", argv[2], "");
	if (strcmp(sub, "test") == 0 && argc == 3)
		return forward_one("POST", argv[2], "/test");
	forward_usage(stderr);
	return 2;
}
