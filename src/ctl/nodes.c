/*
 * nodes.c: `vigilctl nodes`, the vigild nodes that share the center's
 * database (GET /api/v1/nodes; docs/scale-out.md).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ctl.h"

int
ctl_nodes(int argc, char **argv)
{
	static const char *const cols[] = {
	    "name", "state", "heartbeat", "agents", "leases", "address", NULL};
	static const char *const hdrs[] = {
	    "NAME", "STATE", "HEARTBEAT", "AGENTS", "LEASES", "ADDRESS", NULL};
	json_t *j, *rows, *n;
	long long now = (long long)time(NULL);
	size_t i;

	if (argc > 1 &&
	    (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		printf("usage: vigilctl nodes\n"
		       "the vigild nodes sharing the center's database, "
		       "with their last heartbeat,\n"
		       "the agents they hold and the leases (forwarding "
		       "targets) they serve\n");
		return 0;
	}
	if (argc > 1) {
		fprintf(stderr, "usage: vigilctl nodes\n");
		return 2;
	}
	if ((j = ctl_api("GET", "/api/v1/nodes", NULL)) == NULL)
		return 1;
	if (ctl.json) {
		ctl_print_json(j);
		json_decref(j);
		return 0;
	}
	rows = json_array();
	json_array_foreach(json_object_get(j, "nodes"), i, n)
	{
		char hb[32], name[300];
		long long age = now - json_integer_value(
		                          json_object_get(n, "last_heartbeat"));

		snprintf(hb, sizeof(hb), "%llds ago", age < 0 ? 0 : age);
		snprintf(name, sizeof(name), "%s%s",
		         json_string_value(json_object_get(n, "name")),
		         json_is_true(json_object_get(n, "self")) ? " *" : "");
		json_array_append_new(
		    rows,
		    json_pack(
		        "{s:s, s:s, s:s, s:O, s:O, s:O}", "name", name, "state",
		        json_is_true(json_object_get(n, "alive")) ? "up"
		                                                  : "down",
		        "heartbeat", hb, "agents", json_object_get(n, "agents"),
		        "leases", json_object_get(n, "leases"), "address",
		        json_object_get(n, "address")));
	}
	ctl_table(rows, cols, hdrs);
	json_decref(rows);
	json_decref(j);
	return 0;
}
