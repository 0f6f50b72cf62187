/*
 * auth_users.c: local admin users (/api/v1/users): list, create, show,
 * update and delete; a change of role, password or state ends the user's
 * sessions, and the last enabled admin cannot remove itself away.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "auth.h"
#include "center.h"
#include "cookie.h"
#include "metrics.h"
#include "schema.h"

/* --- users -------------------------------------------------------------- */

static json_t *
user_row(struct store_rows *q)
{
	return json_pack(
	    "{s:s, s:s, s:s, s:b, s:b, s:o, s:I, s:o}", "name",
	    store_text(q, 0), "role", store_text(q, 1), "source",
	    store_text(q, 2), "disabled", (int)store_int(q, 3), "totp",
	    (int)store_int(q, 4), "locked_until",
	    store_isnull(q, 5) ? json_null() : json_integer(store_int(q, 5)),
	    "created_at", (json_int_t)store_int(q, 6), "last_login",
	    store_isnull(q, 7) ? json_null() : json_integer(store_int(q, 7)));
}

#define USER_COLUMNS                                                           \
	"name, role, source, disabled, totp_secret IS NOT NULL, "              \
	"locked_until, created_at, last_login"

void
adm_users(struct http_req *r)
{
	struct store_rows *q;
	json_t *a;

	q = store_query(C(r)->store,
	                "SELECT " USER_COLUMNS " FROM users ORDER BY name");
	if (q == NULL) {
		http_reply_error(r, 500, "store", "store unavailable");
		return;
	}
	a = json_array();
	while (store_next(q) == 1)
		json_array_append_new(a, user_row(q));
	store_done(q);
	http_reply_json(r, 200, json_pack("{s:o}", "users", a));
}

int
auth_role_field(struct http_req *r, json_t *j, int *role)
{
	const char *s = auth_jstr(j, "role");

	if (json_object_get(j, "role") == NULL)
		return 0;
	if ((*role = role_parse(s)) == ROLE_NONE) {
		http_reply_error(
		    r, 400, "bad_request",
		    "role: must be admin, operator, analyst or readonly");
		return -1;
	}
	return 1;
}

int
auth_password_field(struct http_req *r, const char *pw, char *hash, size_t n)
{
	const char *why;

	if (!pw_acceptable(pw, &why)) {
		http_reply_error(r, 400, "bad_request", "%s", why);
		return -1;
	}
	if (pw_hash(pw, hash, n) == -1) {
		http_reply_error(r, 500, "internal_error",
		                 "cannot hash the password");
		return -1;
	}
	return 0;
}

void
adm_user_create(struct http_req *r)
{
	static const char *const known[] = {"name", "password", "role", NULL};
	struct center *c = C(r);
	json_t *j;
	const char *name, *pw;
	char hash[PW_HASH_MAX];
	int role = ROLE_NONE, n;

	if ((j = http_req_json(r)) == NULL)
		return;
	if (auth_check_fields(r, j, known, known) == -1 ||
	    auth_role_field(r, j, &role) == -1)
		goto out;
	name = auth_jstr(j, "name");
	pw = auth_jstr(j, "password");
	if (name == NULL || !auth_valid_name(name)) {
		http_reply_error(r, 400, "bad_request",
		                 "name: required, 1-64 letters, digits, '-', "
		                 "'_', '.', '@'");
		goto out;
	}
	if (pw == NULL || role == ROLE_NONE) {
		http_reply_error(r, 400, "bad_request", "%s: required",
		                 pw == NULL ? "password" : "role");
		goto out;
	}
	if (auth_password_field(r, pw, hash, sizeof(hash)) == -1)
		goto out;
	n = store_exec(c->store,
	               "INSERT INTO users (name, role, source, hash, disabled, "
	               "failures, created_at) SELECT ?, ?, 'local', ?, 0, 0, ? "
	               "WHERE NOT EXISTS (SELECT 1 FROM users WHERE name = ?)",
	               S_TEXT(name), S_TEXT(role_name(role)), S_TEXT(hash),
	               S_INT(time(NULL)), S_TEXT(name));
	explicit_bzero(hash, sizeof(hash));
	if (n == 0) {
		http_reply_error(r, 409, "exists", "user %s already exists",
		                 name);
		goto out;
	}
	if (n != 1) {
		http_reply_error(r, 500, "store", "cannot store the user");
		goto out;
	}
	log_info("auth: user %s (%s) created by %s", name, role_name(role),
	         r->who);
	http_reply_json(
	    r, 201,
	    json_pack("{s:s, s:s}", "name", name, "role", role_name(role)));
out:
	json_decref(j);
}

static void
user_show(struct http_req *r, const char *name)
{
	struct store_rows *q;
	json_t *o = NULL;

	q = store_query(C(r)->store,
	                "SELECT " USER_COLUMNS " FROM users WHERE name = ?",
	                S_TEXT(name));
	if (q != NULL && store_next(q) == 1)
		o = user_row(q);
	store_done(q);
	if (o == NULL)
		http_reply_error(r, 404, "not_found", "no user %s", name);
	else
		http_reply_json(r, 200, o);
}

/* Ends the user's sessions: after a change of role, password or state. */
static void
end_sessions(struct center *c, const char *name)
{
	store_exec(c->store, "DELETE FROM sessions WHERE user_name = ?",
	           S_TEXT(name));
	stream_recheck(c);
}

/* The last enabled admin cannot demote, disable or remove itself away. */
static int
last_admin(struct center *c, const char *name)
{
	struct store_rows *q;
	int last = 0;

	q = store_query(c->store,
	                "SELECT COUNT(*), SUM(CASE WHEN name = ? THEN 1 ELSE 0 "
	                "END) FROM users WHERE role = 'admin' AND disabled = 0",
	                S_TEXT(name));
	if (q != NULL && store_next(q) == 1)
		last = store_int(q, 0) == 1 && store_int(q, 1) == 1;
	store_done(q);
	return last;
}

static void
user_update(struct http_req *r, const char *name)
{
	static const char *const known[] = {"role", "disabled", "password",
	                                    "totp", "unlock",   NULL};
	static const char *const strs[] = {"role", "password", NULL};
	struct center *c = C(r);
	json_t *j, *v;
	char hash[PW_HASH_MAX] = "";
	int role = ROLE_NONE, has_role, n = 0, end = 0;

	if ((j = http_req_json(r)) == NULL)
		return;
	if (auth_check_fields(r, j, known, strs) == -1 ||
	    (has_role = auth_role_field(r, j, &role)) == -1)
		goto out;
	if ((v = json_object_get(j, "disabled")) != NULL &&
	    !json_is_boolean(v)) {
		http_reply_error(r, 400, "bad_request",
		                 "disabled: must be true or false");
		goto out;
	}
	if ((v = json_object_get(j, "unlock")) != NULL && !json_is_boolean(v)) {
		http_reply_error(r, 400, "bad_request",
		                 "unlock: must be true or false");
		goto out;
	}
	if ((v = json_object_get(j, "totp")) != NULL && !json_is_false(v)) {
		http_reply_error(r, 400, "bad_request",
		                 "totp: only false (to turn two-factor off)");
		goto out;
	}
	if (((has_role && role != ROLE_ADMIN) ||
	     json_is_true(json_object_get(j, "disabled"))) &&
	    last_admin(c, name)) {
		http_reply_error(r, 409, "last_admin",
		                 "%s is the last enabled admin; make another "
		                 "admin first",
		                 name);
		goto out;
	}
	if (auth_jstr(j, "password") != NULL &&
	    auth_password_field(r, auth_jstr(j, "password"), hash,
	                        sizeof(hash)) == -1)
		goto out;
	if (store_begin(c->store) == -1) {
		http_reply_error(r, 503, "store_busy", "store busy; retry");
		goto out;
	}
	n = store_exec(c->store,
	               "UPDATE users SET updated_at = ? WHERE name = ?",
	               S_INT(time(NULL)), S_TEXT(name));
	if (n == 1 && has_role) {
		n = store_exec(c->store,
		               "UPDATE users SET role = ? WHERE name = ?",
		               S_TEXT(role_name(role)), S_TEXT(name));
		end = 1;
	}
	if (n == 1 && (v = json_object_get(j, "disabled")) != NULL) {
		n = store_exec(c->store,
		               "UPDATE users SET disabled = ? WHERE name = ?",
		               S_INT(json_is_true(v)), S_TEXT(name));
		end |= json_is_true(v);
	}
	if (n == 1 && hash[0] != '\0') {
		n = store_exec(
		    c->store,
		    "UPDATE users SET hash = ?, failures = 0, "
		    "locked_until = NULL WHERE name = ? AND source = "
		    "'local'",
		    S_TEXT(hash), S_TEXT(name));
		end = 1;
	}
	if (n == 1 && json_is_true(json_object_get(j, "unlock")))
		n = store_exec(c->store,
		               "UPDATE users SET failures = 0, locked_until = "
		               "NULL WHERE name = ?",
		               S_TEXT(name));
	if (n == 1 && json_object_get(j, "totp") != NULL)
		n = store_exec(c->store,
		               "UPDATE users SET totp_secret = NULL, "
		               "totp_pending = NULL WHERE name = ?",
		               S_TEXT(name));
	if (end) /* the user's streams too, once this is done */
		stream_recheck(c);
	if (n == 1 && end)
		n = store_exec(c->store,
		               "DELETE FROM sessions WHERE user_name = ?",
		               S_TEXT(name)) >= 0
		        ? 1
		        : -1;
	if (n != 1 || store_commit(c->store) == -1) {
		store_rollback(c->store);
		if (n == 0)
			http_reply_error(r, 404, "not_found",
			                 "no local user %s", name);
		else
			http_reply_error(r, 500, "store",
			                 "cannot update the user");
		goto out;
	}
	log_info("auth: user %s updated by %s", name, r->who);
	user_show(r, name);
out:
	explicit_bzero(hash, sizeof(hash));
	json_decref(j);
}

static void
user_delete(struct http_req *r, const char *name)
{
	struct center *c = C(r);
	int n;

	if (last_admin(c, name)) {
		http_reply_error(r, 409, "last_admin",
		                 "%s is the last enabled admin; make another "
		                 "admin first",
		                 name);
		return;
	}
	n = store_exec(c->store, "DELETE FROM users WHERE name = ?",
	               S_TEXT(name));
	if (n != 1) {
		http_reply_error(r, 404, "not_found", "no user %s", name);
		return;
	}
	end_sessions(c, name);
	log_info("auth: user %s removed by %s", name, r->who);
	http_reply_json(r, 200,
	                json_pack("{s:s, s:b}", "name", name, "deleted", 1));
}

/* 1 when name is a central user (source "master", manage.c). */
static int
central_user(struct center *c, const char *name)
{
	struct store_rows *q;
	int central = 0;

	q = store_query(c->store,
	                "SELECT 1 FROM users WHERE name = ? AND source = "
	                "'master'",
	                S_TEXT(name));
	if (q != NULL && store_next(q) == 1)
		central = 1;
	store_done(q);
	return central;
}

/* /api/v1/users/<name> */
void
adm_user(struct http_req *r)
{
	char name[NAME_MAX_LEN + 1];
	const char *action = http_req_rest_id(r, name, sizeof(name));

	if (action == NULL || *action != '\0' || !auth_valid_name(name)) {
		http_reply_error(r, 404, "not_found", "no such user");
		return;
	}
	if (strcmp(r->method, "GET") == 0)
		user_show(r, name);
	else if (central_user(C(r), name))
		http_reply_error(r, 409, "central_user",
		                 "%s is a user of the master, kept by it: "
		                 "change or remove it there",
		                 name);
	else if (strcmp(r->method, "PUT") == 0)
		user_update(r, name);
	else if (schema_no_body(r) == 0)
		user_delete(r, name);
}
