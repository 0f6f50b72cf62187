/*
 * login.c: `vigilctl login`. Logs in as a user (password, and a TOTP code
 * when two-factor is on), uses the session once to create an API key of
 * the user's role, logs the session out and keeps the key in the user's
 * config directory (0600), where later commands find it. A key rather than
 * the session: sessions end when idle, a command line is used in bursts.
 * `vigilctl logout` revokes that key and removes the file.
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
ctl_session_open(struct ctl_session *s, const char *user, int from_stdin,
                 const char *totp)
{
	char pw[1024] = "", cookie[512] = "";
	json_t *body, *j = NULL;
	const char *csrf;
	int rc = -1;

	memset(s, 0, sizeof(*s));
	if (ctl_read_password("Password: ", from_stdin, pw, sizeof(pw)) == -1)
		return -1;
	body = json_pack("{s:s, s:s}", "username", user, "password", pw);
	if (totp != NULL)
		json_object_set_new(body, "totp", json_string(totp));
	if ((j = ctl_call("POST", "/api/v1/login", body, NULL, NULL, cookie,
	                  sizeof(cookie))) == NULL)
		goto out;
	csrf = json_string_value(json_object_get(j, "csrf_token"));
	if (cookie[0] == '\0' || csrf == NULL ||
	    (size_t)snprintf(s->cookie, sizeof(s->cookie), "Cookie: %s",
	                     cookie) >= sizeof(s->cookie) ||
	    (size_t)snprintf(s->csrf, sizeof(s->csrf), "X-CSRF-Token: %s",
	                     csrf) >= sizeof(s->csrf)) {
		fprintf(stderr, "vigilctl: login: the center sent no usable "
		                "session\n");
		goto out;
	}
	snprintf(s->role, sizeof(s->role), "%s",
	         json_string_value(json_object_get(j, "role"))
	             ? json_string_value(json_object_get(j, "role"))
	             : "?");
	s->hdrs[0] = s->cookie;
	s->hdrs[1] = s->csrf;
	s->hdrs[2] = NULL;
	rc = 0;
out:
	explicit_bzero(pw, sizeof(pw));
	explicit_bzero(cookie, sizeof(cookie));
	json_decref(j);
	json_decref(body);
	return rc;
}

void
ctl_session_close(struct ctl_session *s)
{
	if (s->hdrs[0] != NULL)
		json_decref(ctl_call("POST", "/api/v1/logout", NULL, NULL,
		                     s->hdrs, NULL, 0));
	explicit_bzero(s, sizeof(*s));
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
	char path[4096], host[128] = "?";
	struct ctl_session sess;
	json_t *body = NULL, *k = NULL;
	struct buf err;
	long long expires = 30 * 86400;
	int ch, rc = 2, from_stdin = 0;

	memset(&sess, 0, sizeof(sess));
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
	if (ctl_session_open(&sess, user, from_stdin, totp) == -1)
		goto out;
	(void)gethostname(host, sizeof(host) - 1);
	body = json_pack("{s:s+, s:I}", "label", "vigilctl login on ", host,
	                 "expires", (json_int_t)expires);
	if ((k = ctl_call("POST", "/api/v1/keys", body, NULL, sess.hdrs, NULL,
	                  0)) == NULL)
		goto out;
	if (make_parent(path) == -1 ||
	    tls_write_file(path, json_string_value(json_object_get(k, "key")),
	                   strlen(json_string_value(json_object_get(k, "key"))),
	                   0600, &err) == -1) {
		fprintf(stderr,
		        "vigilctl: login: %s: cannot store the key%s%s\n", path,
		        err.len ? ": " : "", buf_cstr(&err));
		goto out;
	}
	printf("logged in as %s (%s); API key %s stored in %s\n", user,
	       json_string_value(json_object_get(k, "role")),
	       json_string_value(json_object_get(k, "id")), path);
	rc = 0;
out:
	ctl_session_close(&sess);
	json_decref(k);
	json_decref(body);
	buf_free(&err);
	return rc;
}

/* `vigilctl user totp enroll|confirm`: for oneself, in a password
 * session (two-factor is a matter of the person, not of an API key). */
int
ctl_totp_self(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"user", required_argument, NULL, 'u'},
	    {"password-stdin", no_argument, NULL, 'p'},
	    {NULL, 0, NULL, 0},
	};
	const char *user = getenv("USER"), *sub = argv[0], *code = NULL;
	struct ctl_session sess;
	json_t *j = NULL, *body = NULL;
	int ch, from_stdin = 0, rc = 2, confirm = strcmp(sub, "confirm") == 0;

	memset(&sess, 0, sizeof(sess));
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch == 'u')
			user = optarg;
		else if (ch == 'p')
			from_stdin = 1;
		else
			return 2;
	}
	if (confirm && optind + 1 == argc)
		code = argv[optind++];
	if (optind != argc || (confirm && code == NULL) || user == NULL ||
	    *user == '\0')
		return 2;
	rc = 1;
	if (ctl_session_open(&sess, user, from_stdin, NULL) == -1)
		goto out;
	if (confirm) {
		body = json_pack("{s:s}", "code", code);
		if ((j = ctl_call("POST", "/api/v1/session/totp/confirm", body,
		                  NULL, sess.hdrs, NULL, 0)) == NULL)
			goto out;
		printf("two-factor is on for %s: log in with --totp CODE\n",
		       user);
	} else {
		if ((j = ctl_call("POST", "/api/v1/session/totp", NULL, NULL,
		                  sess.hdrs, NULL, 0)) == NULL)
			goto out;
		if (ctl.json)
			ctl_print_json(j);
		else
			printf(
			    "secret %s\n%s\nAdd it to an authenticator app "
			    "(it is shown only now), then turn two-factor on "
			    "with:\n  vigilctl user totp confirm CODE\n",
			    json_string_value(json_object_get(j, "secret")),
			    json_string_value(json_object_get(j, "uri")));
	}
	rc = 0;
out:
	ctl_session_close(&sess);
	json_decref(j);
	json_decref(body);
	return rc;
}

/* `vigilctl logout`: revokes the key `vigilctl login` stored and removes
 * the file. */
int
ctl_logout(int argc, char **argv)
{
	char path[4096], *key = NULL;
	struct buf b, err;
	json_t *j = NULL;
	const char *who;
	size_t n;
	int rc = 1;

	if (argc > 1) {
		fprintf(argc == 2 && (strcmp(argv[1], "--help") == 0 ||
		                      strcmp(argv[1], "-h") == 0)
		            ? stdout
		            : stderr,
		        "usage: vigilctl logout\n"
		        "  revokes the API key 'vigilctl login' stored and "
		        "removes it\n");
		return argc == 2 && (strcmp(argv[1], "--help") == 0 ||
		                     strcmp(argv[1], "-h") == 0)
		           ? 0
		           : 2;
	}
	buf_init(&b, 4096);
	buf_init(&err, 1024);
	if (ctl_login_key_path(path, sizeof(path)) == -1 ||
	    tls_read_file(path, 4096, &b, &err) == -1) {
		fprintf(stderr, "vigilctl: logout: no stored key (%s)\n",
		        err.len ? buf_cstr(&err) : "no HOME");
		goto out;
	}
	key = buf_steal(&b, &n);
	while (n > 0 && (key[n - 1] == '\n' || key[n - 1] == ' '))
		key[--n] = '\0';
	/* The key's own id: who it is to the center. */
	if ((j = ctl_call("GET", "/api/v1/session", NULL, key, NULL, NULL,
	                  0)) != NULL &&
	    (who = json_string_value(json_object_get(j, "who"))) != NULL &&
	    strncmp(who, "key:", 4) == 0 && strlen(who) < 100) {
		char p[128];

		snprintf(p, sizeof(p), "/api/v1/keys/%s", who + 4);
		json_decref(ctl_call("DELETE", p, NULL, key, NULL, NULL, 0));
	}
	/* The file goes either way: a key the center no longer accepts is
	 * of no use. */
	if (unlink(path) == -1) {
		fprintf(stderr, "vigilctl: logout: %s: %s\n", path,
		        strerror(errno));
		goto out;
	}
	printf("logged out: key revoked and %s removed\n", path);
	rc = 0;
out:
	if (key != NULL) {
		explicit_bzero(key, strlen(key));
		free(key);
	}
	json_decref(j);
	buf_free(&b);
	buf_free(&err);
	return rc;
}
