/*
 * vigilctl: the administrator's command line. Offline PKI commands run on
 * the center host; everything else is a client of the admin API. This file
 * holds the subcommand table, the global options and the API helper.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "ctl.h"
#include "ctl_pki.h"
#include "httpc.h"
#include "log.h"
#include "tls.h"

struct ctl_opts ctl;
static int key_file_given;

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
    {"forward", ctl_forward,
     "add, list, remove and test SIEM forwarding targets"},
    {"user", ctl_user, "add, list, change and remove admin users"},
    {"key", ctl_key, "create, list and revoke API keys"},
    {"login", ctl_login, "log in as a user and keep an API key for later"},
    {"logout", ctl_logout, "revoke and remove the key 'login' stored"},
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

static char *
read_key(void)
{
	const char *env = getenv("VIGIL_API_KEY");
	struct buf b, err;
	char *k;
	size_t n;

	/* An explicit --key-file wins over the environment. */
	if (!key_file_given && env != NULL && *env != '\0')
		return strdup(env);
	buf_init(&b, 4096);
	buf_init(&err, 1024);
	if (tls_check_key_perms(ctl.key_file, &err) == -1 ||
	    tls_read_file(ctl.key_file, 4096, &b, &err) == -1) {
		fprintf(stderr, "vigilctl: API key: %s\n", buf_cstr(&err));
		buf_free(&b);
		buf_free(&err);
		return NULL;
	}
	buf_free(&err);
	k = buf_steal(&b, &n);
	while (n > 0 &&
	       (k[n - 1] == '\n' || k[n - 1] == '\r' || k[n - 1] == ' '))
		k[--n] = '\0';
	return k;
}

json_t *
ctl_call(const char *method, const char *path, json_t *body, const char *key,
         const char *const *headers, char *cookie, size_t cookie_len)
{
	struct httpc_opts o;
	struct httpc_resp resp;
	json_t *j = NULL, *e;
	char url[2048], *b = NULL;
	json_error_t je;

	memset(&o, 0, sizeof(o));
	o.ca_file = ctl.ca;
	o.bearer = key;
	o.headers = headers;
	o.timeout_secs = 30;
	snprintf(url, sizeof(url), "%s%s", ctl.server, path);
	if (body != NULL)
		b = json_dumps(body, JSON_COMPACT);
	httpc_resp_init(&resp);
	if (httpc_request(&o, method, url, NULL, b, b ? strlen(b) : 0, &resp) ==
	    -1) {
		fprintf(stderr, "vigilctl: %s\n", resp.errmsg);
		goto out;
	}
	j = resp.body.len ? json_loadb((const char *)resp.body.data,
	                               resp.body.len, 0, &je)
	                  : json_object();
	if (resp.status >= 400 || j == NULL) {
		e = json_object_get(json_object_get(j, "error"), "message");
		fprintf(stderr, "vigilctl: %s %s: %ld %s\n", method, path,
		        resp.status,
		        json_is_string(e) ? json_string_value(e)
		                          : "unexpected reply from the center");
		json_decref(j);
		j = NULL;
	}
	if (j != NULL && cookie != NULL)
		snprintf(cookie, cookie_len, "%s", resp.cookie);
out:
	explicit_bzero(resp.cookie, sizeof(resp.cookie));
	if (b != NULL)
		explicit_bzero(b, strlen(b));
	free(b);
	httpc_resp_free(&resp);
	return j;
}

json_t *
ctl_api(const char *method, const char *path, json_t *body)
{
	json_t *j;
	char *key;

	if ((key = read_key()) == NULL)
		return NULL;
	j = ctl_call(method, path, body, key, NULL, NULL, 0);
	explicit_bzero(key, strlen(key));
	free(key);
	return j;
}

int
ctl_download(const char *path, const char *file)
{
	struct httpc_opts o;
	struct httpc_resp resp;
	char url[2048], *key;
	json_t *j, *e;
	FILE *f = NULL;
	int fd, rc = -1;

	if ((key = read_key()) == NULL)
		return -1;
	/* Never over an existing file; the archive may hold malware. */
	if ((fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) ==
	        -1 ||
	    (f = fdopen(fd, "wb")) == NULL) {
		fprintf(stderr, "vigilctl: %s: %s\n", file, strerror(errno));
		if (fd != -1) {
			close(fd);
			unlink(file);
		}
		goto out;
	}
	memset(&o, 0, sizeof(o));
	o.ca_file = ctl.ca;
	o.bearer = key;
	o.timeout_secs = 3600;
	o.sink = f;
	snprintf(url, sizeof(url), "%s%s", ctl.server, path);
	httpc_resp_init(&resp);
	if (httpc_request(&o, "GET", url, NULL, NULL, 0, &resp) == -1)
		fprintf(stderr, "vigilctl: %s\n", resp.errmsg);
	else if (resp.status != 200) {
		j = json_loadb((const char *)resp.body.data, resp.body.len, 0,
		               NULL);
		e = json_object_get(json_object_get(j, "error"), "message");
		fprintf(stderr, "vigilctl: GET %s: %ld %s\n", path, resp.status,
		        json_is_string(e) ? json_string_value(e)
		                          : "unexpected reply from the center");
		json_decref(j);
	} else
		rc = 0;
	httpc_resp_free(&resp);
	if (fclose(f) != 0 && rc == 0) {
		fprintf(stderr, "vigilctl: %s: %s\n", file, strerror(errno));
		rc = -1;
	}
	if (rc == -1)
		unlink(file);
out:
	explicit_bzero(key, strlen(key));
	free(key);
	return rc;
}

json_t *
ctl_api_all(const char *path, size_t max)
{
	struct buf p;
	json_t *all = json_array(), *j, *it;
	const char *next;
	size_t i;

	buf_init(&p, 8192);
	buf_puts(&p, path);
	for (;;) {
		if ((j = ctl_api("GET", buf_cstr(&p), NULL)) == NULL) {
			json_decref(all);
			all = NULL;
			break;
		}
		json_array_foreach(json_object_get(j, "items"), i, it)
		{
			if (max == 0 || json_array_size(all) < max)
				json_array_append(all, it);
		}
		next = json_string_value(json_object_get(j, "next_cursor"));
		if (next == NULL || (max != 0 && json_array_size(all) >= max)) {
			json_decref(j);
			break;
		}
		buf_reset(&p);
		buf_printf(&p, "%s%ccursor=", path,
		           strchr(path, '?') ? '&' : '?');
		httpc_urlenc(&p, next);
		json_decref(j);
	}
	buf_free(&p);
	return all;
}

/* Labels as "k=v,k=v", lists as "a,b": what an operator types. */
static void
labels_cell(json_t *v, char *out, size_t n)
{
	struct buf b;
	const char *k;
	json_t *e;
	size_t i;

	buf_init(&b, n > 0 ? n - 1 : 0);
	if (json_is_object(v)) {
		json_object_foreach(v, k, e)
		{
			buf_printf(&b, "%s%s=%s", b.len ? "," : "", k,
			           json_is_string(e) ? json_string_value(e)
			                             : "?");
		}
	} else {
		json_array_foreach(v, i, e)
		{
			buf_printf(&b, "%s%s", b.len ? "," : "",
			           json_is_string(e) ? json_string_value(e)
			                             : "?");
		}
	}
	snprintf(out, n, "%s", b.len ? buf_cstr(&b) : "-");
	buf_free(&b);
}

static void
cell(json_t *v, char *out, size_t n)
{
	if (json_is_string(v))
		snprintf(out, n, "%s", json_string_value(v));
	else if (json_is_integer(v))
		snprintf(out, n, "%lld", (long long)json_integer_value(v));
	else if (json_is_true(v))
		snprintf(out, n, "yes");
	else if (json_is_false(v))
		snprintf(out, n, "no");
	else if (json_is_null(v) || v == NULL)
		snprintf(out, n, "-");
	else if (json_is_object(v) || json_is_array(v))
		labels_cell(v, out, n);
	else {
		char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

		snprintf(out, n, "%s", s ? s : "?");
		free(s);
	}
}

void
ctl_table(json_t *rows, const char *const *cols, const char *const *hdrs)
{
	size_t ncol = 0, i, j, w[32];
	char c[256];
	json_t *row;

	while (cols[ncol] != NULL && ncol < 32)
		ncol++;
	for (j = 0; j < ncol; j++)
		w[j] = strlen(hdrs[j]);
	json_array_foreach(rows, i, row)
	{
		for (j = 0; j < ncol; j++) {
			cell(json_object_get(row, cols[j]), c, sizeof(c));
			if (strlen(c) > w[j])
				w[j] = strlen(c);
		}
	}
	for (j = 0; j < ncol; j++)
		printf("%-*s%s", j + 1 < ncol ? (int)w[j] : 0, hdrs[j],
		       j + 1 < ncol ? "  " : "\n");
	json_array_foreach(rows, i, row)
	{
		for (j = 0; j < ncol; j++) {
			cell(json_object_get(row, cols[j]), c, sizeof(c));
			printf("%-*s%s", j + 1 < ncol ? (int)w[j] : 0, c,
			       j + 1 < ncol ? "  " : "\n");
		}
	}
}

void
ctl_print_json(json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);

	if (s != NULL)
		printf("%s\n", s);
	free(s);
}

void
ctl_ago(long long t, char *out, size_t n)
{
	long long d = (long long)time(NULL) - t;

	if (t <= 0)
		snprintf(out, n, "never");
	else if (d < 120)
		snprintf(out, n, "%llds ago", d < 0 ? 0 : d);
	else if (d < 7200)
		snprintf(out, n, "%lldm ago", d / 60);
	else if (d < 172800)
		snprintf(out, n, "%lldh ago", d / 3600);
	else
		snprintf(out, n, "%lldd ago", d / 86400);
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
	ctl.ca = getenv("VIGIL_CA");
	/* Global options come before the command ("+" stops at it). */
	while ((ch = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (ch) {
		case 's':
			ctl.server = optarg;
			break;
		case 'C':
			ctl.ca = optarg;
			break;
		case 'k':
			ctl.key_file = optarg;
			key_file_given = 1;
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
