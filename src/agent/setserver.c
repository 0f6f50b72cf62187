/*
 * setserver: `vigil-agent set-server --server URL`, for a center that moved
 * (another address or port). The agent keeps its identity, key and pinned
 * CA; the new address is saved only after a heartbeat to it succeeded over
 * TLS verified against that pinned CA with the agent's own certificate, so
 * a typo or another deployment's center can never take over the agent.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "log.h"

static const char setserver_usage[] =
    "usage: vigil-agent set-server --server URL [--data-dir DIR]\n"
    "\n"
    "Points an enrolled agent at its center's new address. The new URL\n"
    "is saved only after a heartbeat to it succeeds, verified against\n"
    "the pinned CA with this agent's certificate; otherwise nothing\n"
    "changes. Restart `vigil-agent run` afterwards.\n"
    "\n"
    "  --server URL     https://HOST[:PORT] of the center's gateway\n"
    "  --data-dir DIR   default $VIGIL_AGENT_DATA_DIR or "
    "/var/lib/vigil-agent\n";

int
cmd_set_server(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"server", required_argument, NULL, 's'},
	    {"data-dir", required_argument, NULL, 'd'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct agent_state st;
	struct center_reply rep;
	const char *dir = agent_default_dir(), *url = NULL;
	char *old = NULL;
	long long t;
	int c, renew, rc = 1;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			url = optarg;
			break;
		case 'd':
			dir = optarg;
			break;
		case 'h':
			fputs(setserver_usage, stdout);
			return 0;
		default:
			fputs(setserver_usage, stderr);
			return 2;
		}
	}
	if (optind != argc || url == NULL) {
		fputs(setserver_usage, stderr);
		return 2;
	}
	if (strncmp(url, "https://", 8) != 0 || url[8] == '\0') {
		log_warnx("set-server: %s: the center's URL must be https://",
		          url);
		return 2;
	}
	if (agent_state_init(&st, dir) == -1)
		return 1;
	if (agent_state_load(&st) == -1)
		goto out;
	if (st.agent_id == NULL || !agent_file_exists(st.p_crt)) {
		log_warnx("set-server: %s: not enrolled yet; enroll with "
		          "--server %s instead",
		          st.dir, url);
		goto out;
	}
	if (strcmp(st.server, url) == 0) {
		printf("agent %s already uses %s\n", st.agent_id, url);
		rc = 0;
		goto out;
	}
	old = st.server;
	st.server = NULL;
	if (agent_set_str(&st.server, url) == -1)
		goto out;
	switch (agent_heartbeat(&st, &renew, &t, &rep)) {
	case HB_OK:
		break;
	default:
		log_warnx("set-server: %s; the agent keeps %s", rep.msg, old);
		center_reply_free(&rep);
		goto out;
	}
	center_reply_free(&rep);
	if (agent_state_save(&st) == -1)
		goto out;
	printf("agent %s: center moved from %s to %s (heartbeat accepted)\n",
	       st.agent_id, old, url);
	rc = 0;
out:
	free(old);
	agent_state_free(&st);
	return rc;
}
