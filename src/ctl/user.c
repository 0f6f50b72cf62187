/*
 * user.c: `vigilctl user ...` (admin users of the center: add, list, set,
 * passwd, remove, totp off) and `vigilctl key ...` (API keys for
 * automation: create, list, revoke). Passwords are read from a terminal
 * without echo, or one line from standard input with --password-stdin,
 * never from the command line (it shows in ps).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "ctl.h"

static void
user_usage(FILE *f)
{
	fprintf(f,
	        "usage: vigilctl user add NAME --role ROLE [--password-stdin]\n"
	        "       vigilctl user list\n"
	        "       vigilctl user set NAME [--role ROLE] [--disable | "
	        "--enable] [--unlock]\n"
	        "       vigilctl user passwd NAME [--password-stdin]\n"
	        "       vigilctl user remove NAME\n"
	        "       vigilctl user totp enroll [--user NAME] "
	        "[--password-stdin]\n"
	        "       vigilctl user totp confirm CODE [--user NAME] "
	        "[--password-stdin]\n"
	        "       vigilctl user totp off NAME\n"
	        "  --role ROLE       admin, operator, analyst or readonly\n"
	        "  --password-stdin  read the password as one line from "
	        "standard input\n"
	        "  --disable         refuse the user's logins and keys\n"
	        "  --enable          allow them again\n"
	        "  --unlock          end a lockout after failed logins\n"
	        "  --user NAME       totp enroll/confirm: who (default: "
	        "$USER), with its password\n");
}

static void
key_usage(FILE *f)
{
	fprintf(f, "usage: vigilctl key create [--role ROLE] [--label TEXT] "
	           "[--expires DURATION]\n"
	           "       vigilctl key list\n"
	           "       vigilctl key revoke KEY_ID\n"
	           "  --role ROLE          at most the caller's own (default: "
	           "the caller's)\n"
	           "  --label TEXT         what the key is for\n"
	           "  --expires DURATION   e.g. 24h, 90d (default: never)\n");
}

static int
valid_arg(const char *s)
{
	return *s != '\0' && strlen(s) <= 64 && strpbrk(s, "/?#%") == NULL;
}

static int
print_reply(json_t *j, const char *fmt, const char *arg)
{
	if (j == NULL)
		return 1;
	if (ctl.json)
		ctl_print_json(j);
	else
		printf(fmt, arg);
	json_decref(j);
	return 0;
}

/* add / set / passwd share the options. */
static int
user_change(const char *what, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"role", required_argument, NULL, 'r'},
	    {"password-stdin", no_argument, NULL, 'p'},
	    {"disable", no_argument, NULL, 'd'},
	    {"enable", no_argument, NULL, 'e'},
	    {"unlock", no_argument, NULL, 'u'},
	    {NULL, 0, NULL, 0},
	};
	json_t *body = json_object(), *j;
	char pw[1024], pw2[1024], path[128];
	int ch, rc = 2, from_stdin = 0, add = strcmp(what, "add") == 0;
	int passwd = strcmp(what, "passwd") == 0;

	pw[0] = pw2[0] = '\0';
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'r':
			if (passwd)
				goto usage;
			json_object_set_new(body, "role", json_string(optarg));
			break;
		case 'p':
			if (!add && !passwd)
				goto usage;
			from_stdin = 1;
			break;
		case 'd':
		case 'e':
			if (add || passwd)
				goto usage;
			json_object_set_new(body, "disabled",
			                    json_boolean(ch == 'd'));
			break;
		case 'u':
			if (add || passwd)
				goto usage;
			json_object_set_new(body, "unlock", json_true());
			break;
		default:
			goto usage;
		}
	}
	if (optind + 1 != argc || !valid_arg(argv[optind]))
		goto usage;
	if (add && json_object_get(body, "role") == NULL) {
		fprintf(stderr, "vigilctl: user add: --role is required\n");
		goto out;
	}
	if (add || passwd) {
		if (ctl_read_password("Password: ", from_stdin, pw,
		                      sizeof(pw)) == -1)
			goto out;
		if (!from_stdin &&
		    (ctl_read_password("Again: ", 0, pw2, sizeof(pw2)) == -1 ||
		     strcmp(pw, pw2) != 0)) {
			fprintf(stderr, "vigilctl: the passwords differ\n");
			goto out;
		}
		json_object_set_new(body, "password", json_string(pw));
	}
	rc = 1;
	if (add) {
		json_object_set_new(body, "name", json_string(argv[optind]));
		j = ctl_api("POST", "/api/v1/users", body);
		rc = print_reply(j, "added user %s\n", argv[optind]);
	} else {
		snprintf(path, sizeof(path), "/api/v1/users/%s", argv[optind]);
		j = ctl_api("PUT", path, body);
		rc = print_reply(j, "updated user %s\n", argv[optind]);
	}
	goto out;
usage:
	user_usage(stderr);
out:
	explicit_bzero(pw, sizeof(pw));
	explicit_bzero(pw2, sizeof(pw2));
	json_decref(body);
	return rc;
}

static int
user_list(void)
{
	static const char *const cols[] = {"name", "role", "source", "disabled",
	                                   "totp", "last", NULL};
	static const char *const hdrs[] = {
	    "NAME", "ROLE", "SOURCE", "DISABLED", "2FA", "LAST LOGIN", NULL};
	json_t *j, *a, *row;
	size_t i;

	if ((j = ctl_api("GET", "/api/v1/users", NULL)) == NULL)
		return 1;
	a = json_object_get(j, "users");
	if (ctl.json)
		ctl_print_json(a);
	else {
		json_array_foreach(a, i, row)
		{
			char when[32];
			json_t *t = json_object_get(row, "last_login");

			ctl_ago(json_is_integer(t) ? json_integer_value(t) : 0,
			        when, sizeof(when));
			json_object_set_new(row, "last", json_string(when));
		}
		ctl_table(a, cols, hdrs);
	}
	json_decref(j);
	return 0;
}

static int
user_remove(const char *name)
{
	char path[128];

	if (!valid_arg(name)) {
		user_usage(stderr);
		return 2;
	}
	snprintf(path, sizeof(path), "/api/v1/users/%s", name);
	return print_reply(ctl_api("DELETE", path, NULL), "removed user %s\n",
	                   name);
}

static int
user_totp_off(const char *name)
{
	json_t *body = json_pack("{s:b}", "totp", 0);
	char path[128];
	int rc;

	if (!valid_arg(name)) {
		json_decref(body);
		user_usage(stderr);
		return 2;
	}
	snprintf(path, sizeof(path), "/api/v1/users/%s", name);
	rc = print_reply(ctl_api("PUT", path, body),
	                 "two-factor turned off for %s\n", name);
	json_decref(body);
	return rc;
}

int
ctl_user(int argc, char **argv)
{
	const char *sub = argc > 1 ? argv[1] : NULL;

	if (ctl_wants_help(argc, argv) || argc < 2) {
		user_usage(sub ? stdout : stderr);
		return sub ? 0 : 2;
	}
	if (strcmp(sub, "add") == 0 || strcmp(sub, "set") == 0 ||
	    strcmp(sub, "passwd") == 0)
		return user_change(sub, argc - 1, argv + 1);
	if (strcmp(sub, "list") == 0 && argc == 2)
		return user_list();
	if (strcmp(sub, "remove") == 0 && argc == 3)
		return user_remove(argv[2]);
	if (strcmp(sub, "totp") == 0 && argc == 4 &&
	    strcmp(argv[2], "off") == 0)
		return user_totp_off(argv[3]);
	if (strcmp(sub, "totp") == 0 && argc >= 3 &&
	    (strcmp(argv[2], "enroll") == 0 ||
	     strcmp(argv[2], "confirm") == 0)) {
		int rc = ctl_totp_self(argc - 2, argv + 2);

		if (rc == 2)
			user_usage(stderr);
		return rc;
	}
	user_usage(stderr);
	return 2;
}

/* --- keys --------------------------------------------------------------- */

static int
key_create(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"role", required_argument, NULL, 'r'},
	    {"label", required_argument, NULL, 'l'},
	    {"expires", required_argument, NULL, 'e'},
	    {NULL, 0, NULL, 0},
	};
	json_t *body = json_object(), *j;
	long long v;
	int ch, rc = 2;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'r':
			json_object_set_new(body, "role", json_string(optarg));
			break;
		case 'l':
			json_object_set_new(body, "label", json_string(optarg));
			break;
		case 'e':
			if (str_to_duration(optarg, &v) == -1) {
				fprintf(stderr,
				        "vigilctl: --expires: '%s' is not a "
				        "duration (e.g. 24h, 90d)\n",
				        optarg);
				goto out;
			}
			json_object_set_new(body, "expires", json_integer(v));
			break;
		default:
			key_usage(stderr);
			goto out;
		}
	}
	if (optind != argc) {
		key_usage(stderr);
		goto out;
	}
	rc = 1;
	if ((j = ctl_api("POST", "/api/v1/keys", body)) == NULL)
		goto out;
	if (ctl.json)
		ctl_print_json(j);
	else
		printf("key %s (id %s, role %s)\nIt is shown only now; store "
		       "it safely (e.g. in a 0600 file for --key-file).\n",
		       json_string_value(json_object_get(j, "key")),
		       json_string_value(json_object_get(j, "id")),
		       json_string_value(json_object_get(j, "role")));
	json_decref(j);
	rc = 0;
out:
	json_decref(body);
	return rc;
}

static int
key_list(void)
{
	static const char *const cols[] = {"id",    "role",    "label", "owner",
	                                   "state", "expires", NULL};
	static const char *const hdrs[] = {"ID",    "ROLE",    "LABEL", "OWNER",
	                                   "STATE", "EXPIRES", NULL};
	json_t *j, *a, *row;
	size_t i;

	if ((j = ctl_api("GET", "/api/v1/keys", NULL)) == NULL)
		return 1;
	a = json_object_get(j, "keys");
	if (ctl.json)
		ctl_print_json(a);
	else {
		json_array_foreach(a, i, row)
		{
			json_t *e = json_object_get(row, "expires_at");
			long long now = (long long)time(NULL);
			char when[32] = "never";
			const char *st = "active";

			if (json_is_integer(e))
				ctl_utc(json_integer_value(e), 0, when,
				        sizeof(when));
			if (json_is_integer(json_object_get(row, "revoked_at")))
				st = "revoked";
			else if (json_is_integer(e) &&
			         json_integer_value(e) <= now)
				st = "expired";
			json_object_set_new(row, "state", json_string(st));
			json_object_set_new(row, "expires", json_string(when));
			ctl_clean_field(row, "label", 40);
		}
		ctl_table(a, cols, hdrs);
	}
	json_decref(j);
	return 0;
}

int
ctl_key(int argc, char **argv)
{
	const char *sub = argc > 1 ? argv[1] : NULL;
	char path[128];

	if (ctl_wants_help(argc, argv) || argc < 2) {
		key_usage(sub ? stdout : stderr);
		return sub ? 0 : 2;
	}
	if (strcmp(sub, "create") == 0)
		return key_create(argc - 1, argv + 1);
	if (strcmp(sub, "list") == 0 && argc == 2)
		return key_list();
	if (strcmp(sub, "revoke") == 0 && argc == 3 && valid_arg(argv[2])) {
		snprintf(path, sizeof(path), "/api/v1/keys/%s", argv[2]);
		return print_reply(ctl_api("DELETE", path, NULL),
		                   "revoked key %s\n", argv[2]);
	}
	key_usage(stderr);
	return 2;
}
