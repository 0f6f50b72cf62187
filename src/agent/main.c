/*
 * vigil-agent: the endpoint agent. main() sets up logging and libcurl and
 * hands over to one of the subcommands in the table below, each in its own
 * file (enroll.c, run.c, check.c, setserver.c, pinroot.c). Global options come
 * before the subcommand; each subcommand has its own --help.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "httpc.h"
#include "log.h"

struct subcmd {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
};

static const struct subcmd subcmds[] = {
    {"enroll", cmd_enroll,
     "join a center (makes the key, gets a "
     "certificate)"},
    {"run", cmd_run, "heartbeats, renewal; the agent's main loop"},
    {"check", cmd_check, "diagnose the connection to the center"},
    {"set-server", cmd_set_server,
     "point the agent at its center's new "
     "address"},
    {"pin-root", cmd_pin_root,
     "pin the signed-update root (an agent that has "
     "none)"},
};

static void
usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: vigil-agent [-v] [--log stderr|syslog|json] "
	           "COMMAND [options]\n"
	           "       vigil-agent COMMAND --help\n"
	           "       vigil-agent --version\n\ncommands:\n");
	for (i = 0; i < sizeof(subcmds) / sizeof(subcmds[0]); i++)
		fprintf(f, "  %-10s %s\n", subcmds[i].name, subcmds[i].summary);
	fprintf(f, "\noptions:\n"
	           "  -v, --verbose   debug messages\n"
	           "  --log DEST      where messages go (default stderr)\n"
	           "\nenvironment:\n"
	           "  VIGIL_AGENT_DATA_DIR   the data directory (default "
	           "/var/lib/vigil-agent)\n");
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"verbose", no_argument, NULL, 'v'},
	    {"log", required_argument, NULL, 'l'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	enum log_level level = LOG_LVL_INFO;
	enum log_dest dest = LOG_DEST_STDERR;
	size_t i;
	int c, rc;

	/* The arguments as given (getopt reorders them), for an upgraded
	 * binary to be started with (upgrade.c). */
	if ((agent_argv = calloc((size_t)argc + 1, sizeof(*agent_argv))) ==
	    NULL)
		return 1;
	for (c = 0; c < argc; c++)
		if ((agent_argv[c] = strdup(argv[c])) == NULL)
			return 1;
	/* '+': stop at the subcommand; its options are its own. */
	while ((c = getopt_long(argc, argv, "+vh", opts, NULL)) != -1) {
		switch (c) {
		case 'v':
			level = LOG_LVL_DEBUG;
			break;
		case 'l':
			if (log_parse_dest(optarg, &dest) == -1) {
				fprintf(stderr,
				        "vigil-agent: --log %s: "
				        "stderr, syslog or json\n",
				        optarg);
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("vigil-agent %s\n", VIGIL_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[optind], "help") == 0) {
		usage(stdout);
		return 0;
	}
	log_init("vigil-agent", dest, level);
	for (i = 0; i < sizeof(subcmds) / sizeof(subcmds[0]); i++) {
		if (strcmp(argv[optind], subcmds[i].name) != 0)
			continue;
		if (httpc_global_init() == -1)
			fatalx("%s: libcurl initialisation failed", __func__);
		rc = subcmds[i].fn(argc - optind, argv + optind);
		httpc_global_cleanup();
		return rc;
	}
	fprintf(stderr, "vigil-agent: unknown command '%s'\n", argv[optind]);
	usage(stderr);
	return 2;
}
