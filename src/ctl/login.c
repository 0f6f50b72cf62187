/*
 * login.c: `vigilctl login`. Logs in as a user (password, and a TOTP code
 * when two-factor is on), uses the session once to create an API key of
 * the user's role, logs the session out and keeps the key in the user's
 * config directory (0600), where later commands find it. A key rather than
 * the session: sessions end when idle, a command line is used in bursts.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "ctl.h"
#include "tls.h"

static void
login_usage(FILE *f)
{
	fprintf(f,
	        "usage: vigilctl login [--user NAME] [--password-stdin] "
	        "[--totp CODE] [--expires DURATION]\n"
	        "  --user NAME       user to log in as (default: $USER)\n"
	        "  --password-stdin  read the password as one line from "
	        "standard input\n"
	        "  --totp CODE       two-factor code, when the user has it on\n"
	        "  --expires DURATION  lifetime of the stored key (default "
	        "30d)\n");
}

int
ctl_login_key_path(char *out, size_t n)
{
	const char *x = getenv("XDG_CONFIG_HOME"), *h = getenv("HOME");
	int k;

	if (x != NULL && *x == '/')
		k = snprintf(out, n, "%s/vigil/api.key", x);
	else if (h != NULL && *h == '/')
		k = snprintf(out, n, "%s/.config/vigil/api.key", h);
	else
		return -1;
	return k > 0 && (size_t)k < n ? 0 : -1;
}

/* mkdir -p of the directory holding path, new parts 0700. */
static int
make_parent(const char *path)
{
	char d[4096], *p;

	snprintf(d, sizeof(d), "%s", path);
	if ((p = strrchr(d, '/')) == NULL || p == d)
		return 0;
	*p = '\0';
	for (p = d + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(d, 0700) == -1 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return mkdir(d, 0700) == -1 && errno != EEXIST ? -1 : 0;
}

int
ctl_login(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"user", required_argument, NULL, 'u'},
	    {"password-stdin", no_argument, NULL, 'p'},
	    {"totp", required_argument, NULL, 't'},
	    {"expires", required_argument, NULL, 'e'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *user = getenv("USER"), *totp = NULL;
	char pw[1024] = "", cookie[512] = "", csrf[160] = "", path[4096];
	char line[128], host[128] = "?";
	const char *hdrs[3] = {NULL, NULL, NULL};
	json_t *body = NULL, *j = NULL, *k = NULL;
	struct buf err;
	long long expires = 30 * 86400;
	int ch, rc = 2, from_stdin = 0;

	buf_init(&err, 1024);
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'u':
			user = optarg;
			break;
		case 'p':
			from_stdin = 1;
			break;
		case 't':
			totp = optarg;
			break;
		case 'e':
			if (str_to_duration(optarg, &expires) == -1) {
				fprintf(stderr,
				        "vigilctl: --expires: '%s' is not a "
				        "duration (e.g. 8h, 30d)\n",
				        optarg);
				goto out;
			}
			break;
		case 'h':
			login_usage(stdout);
			rc = 0;
			goto out;
		default:
			login_usage(stderr);
			goto out;
		}
	}
	if (optind != argc || user == NULL || *user == '\0') {
		login_usage(stderr);
		goto out;
	}
	rc = 1;
	if (ctl_login_key_path(path, sizeof(path)) == -1) {
		fprintf(stderr, "vigilctl: login: neither XDG_CONFIG_HOME nor "
		                "HOME is set; nowhere to keep the key\n");
		goto out;
	}
	if (ctl_read_password("Password: ", from_stdin, pw, sizeof(pw)) == -1)
		goto out;
	body = json_pack("{s:s, s:s}", "username", user, "password", pw);
	if (totp != NULL)
		json_object_set_new(body, "totp", json_string(totp));
	if ((j = ctl_call("POST", "/api/v1/login", body, NULL, NULL, cookie,
	                  sizeof(cookie))) == NULL)
		goto out;
	if (cookie[0] == '\0' ||
	    json_string_value(json_object_get(j, "csrf_token")) == NULL) {
		fprintf(stderr,
		        "vigilctl: login: the center sent no session\n");
		goto out;
	}
	snprintf(line, sizeof(line), "Cookie: %s", cookie);
	snprintf(csrf, sizeof(csrf), "X-CSRF-Token: %s",
	         json_string_value(json_object_get(j, "csrf_token")));
	hdrs[0] = line;
	hdrs[1] = csrf;
	(void)gethostname(host, sizeof(host) - 1);
	json_decref(body);
	body = json_pack("{s:s+, s:I}", "label", "vigilctl login on ", host,
	                 "expires", (json_int_t)expires);
	if ((k = ctl_call("POST", "/api/v1/keys", body, NULL, hdrs, NULL, 0)) ==
	    NULL)
		goto logout;
	if (make_parent(path) == -1 ||
	    tls_write_file(path, json_string_value(json_object_get(k, "key")),
	                   strlen(json_string_value(json_object_get(k, "key"))),
	                   0600, &err) == -1) {
		fprintf(stderr,
		        "vigilctl: login: %s: cannot store the key%s%s\n", path,
		        err.len ? ": " : "", buf_cstr(&err));
		goto logout;
	}
	printf("logged in as %s (%s); API key %s stored in %s\n", user,
	       json_string_value(json_object_get(k, "role")),
	       json_string_value(json_object_get(k, "id")), path);
	rc = 0;
logout:
	json_decref(
	    ctl_call("POST", "/api/v1/logout", NULL, NULL, hdrs, NULL, 0));
out:
	explicit_bzero(pw, sizeof(pw));
	explicit_bzero(cookie, sizeof(cookie));
	explicit_bzero(line, sizeof(line));
	explicit_bzero(csrf, sizeof(csrf));
	json_decref(k);
	json_decref(j);
	json_decref(body);
	buf_free(&err);
	return rc;
}
