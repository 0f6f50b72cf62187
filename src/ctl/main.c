/*
 * vigilctl: the administrator's command line. Offline PKI commands run on
 * the center host; everything else is a client of the admin API. This file
 * holds the subcommand table and parses the global options; what the
 * subcommands share is in util.c.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "ctl_pki.h"
#include "httpc.h"
#include "log.h"

static const struct {
	const char *name;
	int (*fn)(int, char **);
	const char *help;
} cmds[] = {
    {"pki", ctl_pki, "create and inspect the deployment PKI (offline)"},
    {"agent", ctl_agent, "list, show, approve, reject and revoke agents"},
    {"token", ctl_token, "create, list and delete enrollment tokens"},
    {"task", ctl_task, "create, watch and cancel tasks; templates, schedules"},
    {"rules", ctl_rules, "add, list and remove YARA and IOC rule sets"},
    {"events", ctl_events, "search the events agents reported"},
    {"findings", ctl_findings, "list findings and set their triage state"},
    {"samples", ctl_samples, "list and download the files agents uploaded"},
    {"audit", ctl_audit, "list and verify the audit log of changes"},
    {"settings", ctl_settings, "show and change the center's runtime settings"},
    {"nodes", ctl_nodes, "list the vigild nodes sharing the center's database"},
    {"forward", ctl_forward,
     "add, list, remove and test SIEM forwarding targets"},
    {"collector", ctl_collector,
     "cases, baselines, centers and search on an analysis collector"},
    {"master", ctl_master,
     "centers, agents and tasks across centers, on a master"},
    {"user", ctl_user, "add, list, change and remove admin users"},
    {"key", ctl_key, "create, list and revoke API keys"},
    {"login", ctl_login, "log in as a user and keep an API key for later"},
    {"logout", ctl_logout, "revoke and remove the key 'login' stored"},
    {"doctor", ctl_doctor,
     "check the network requirements from the center's host"},
    {"intel", ctl_intel,
     "look up, import and list threat intelligence (vigil-inteld)"},
    {"update", ctl_update,
     "make, sign, carry and check signed update repositories (offline)"},
    {"store", ctl_store,
     "back up, restore and check the center's database (offline)"},
};

static void
usage(FILE *f)
{
	size_t i;

	fprintf(f,
	        "usage: vigilctl [--server URL] [--ca FILE] [--key-file FILE] "
	        "[--json] COMMAND ...\n\n"
	        "commands:\n");
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		fprintf(f, "  %-8s %s\n", cmds[i].name, cmds[i].help);
	fprintf(
	    f, "\noptions (for commands that use the admin API):\n"
	       "  --server URL     admin API (env VIGIL_SERVER, default "
	       "https://127.0.0.1:8443)\n"
	       "  --ca FILE        CA certificate of the deployment (env "
	       "VIGIL_CA, default /etc/vigil/pki/ca.crt)\n"
	       "  --key-file FILE  file holding the API key (env VIGIL_API_KEY "
	       "holds the key itself; default the key 'vigilctl login' "
	       "stored, else /var/lib/vigil/admin.key)\n"
	       "  --json           print JSON instead of tables\n"
	       "  -h, --help       this help\n"
	       "  --version        print the version\n"
	       "\nRun 'vigilctl COMMAND --help' for a command's options.\n");
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"server", required_argument, NULL, 's'},
	    {"ca", required_argument, NULL, 'C'},
	    {"key-file", required_argument, NULL, 'k'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	size_t i;
	int ch, rc, sub;

	log_init("vigilctl", LOG_DEST_STDERR, LOG_LVL_WARN);
	ctl.server = getenv("VIGIL_SERVER");
	ctl.server_given = ctl.server != NULL;
	ctl.ca = getenv("VIGIL_CA");
	/* Global options come before the command ("+" stops at it). */
	while ((ch = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (ch) {
		case 's':
			ctl.server = optarg;
			ctl.server_given = 1;
			break;
		case 'C':
			ctl.ca = optarg;
			break;
		case 'k':
			ctl.key_file = optarg;
			ctl.key_file_given = 1;
			break;
		case 'j':
			ctl.json = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("vigilctl %s\n", VIGIL_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (ctl.server == NULL)
		ctl.server = "https://127.0.0.1:8443";
	if (ctl.ca == NULL)
		ctl.ca = "/etc/vigil/pki/ca.crt";
	if (ctl.key_file == NULL) {
		/* The key `vigilctl login` stored, when there is one. */
		static char login_key[4096];

		if (ctl_login_key_path(login_key, sizeof(login_key)) == 0 &&
		    access(login_key, F_OK) == 0)
			ctl.key_file = login_key;
		else
			ctl.key_file = "/var/lib/vigil/admin.key";
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	sub = optind;
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (strcmp(argv[sub], cmds[i].name) == 0) {
			httpc_global_init();
			/* The subcommand parses its own options from its
			 * own argv[0]; optind = 0 re-initialises getopt. */
			optind = 0;
			rc = cmds[i].fn(argc - sub, argv + sub);
			httpc_global_cleanup();
			return rc;
		}
	}
	fprintf(stderr, "vigilctl: unknown command '%s'\n", argv[sub]);
	usage(stderr);
	return 2;
}
