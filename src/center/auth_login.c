/*
 * auth_login.c: logging in and out (argon2id passwords, optional TOTP,
 * per-source rate limit, lockout after repeated failures), the session
 * answer, and the helpers the other admin-user files share (auth.h).
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

/* --- login -------------------------------------------------------------- */

const char *
auth_jstr(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* Refuses members not in known (NULL-terminated) and non-string values
 * among strs; 0 when fine, -1 after replying 400. */
int
auth_check_fields(struct http_req *r, json_t *j, const char *const *known,
                  const char *const *strs)
{
	const char *k;
	json_t *v;
	size_t i;

	json_object_foreach(j, k, v)
	{
		for (i = 0; known[i] != NULL; i++)
			if (strcmp(k, known[i]) == 0)
				break;
		if (known[i] == NULL) {
			http_reply_error(r, 400, "bad_request",
			                 "%.64s: unknown field", k);
			return -1;
		}
	}
	for (i = 0; strs[i] != NULL; i++) {
		v = json_object_get(j, strs[i]);
		if (v != NULL && !json_is_string(v)) {
			http_reply_error(r, 400, "bad_request",
			                 "%s: must be a string", strs[i]);
			return -1;
		}
	}
	return 0;
}

void
auth_user_load(struct center *c, const char *name, struct user *u)
{
	struct store_rows *q;

	memset(u, 0, sizeof(*u));
	q = store_query(c->store,
	                "SELECT name, role, hash, totp_secret, totp_last, "
	                "locked_until, failures, disabled, source FROM users "
	                "WHERE name = ?",
	                S_TEXT(name));
	if (q != NULL && store_next(q) == 1) {
		u->found = 1;
		snprintf(u->name, sizeof(u->name), "%s", store_text(q, 0));
		snprintf(u->role, sizeof(u->role), "%s",
		         store_text(q, 1) ? store_text(q, 1) : "");
		snprintf(u->hash, sizeof(u->hash), "%s",
		         store_text(q, 2) ? store_text(q, 2) : "");
		snprintf(u->totp, sizeof(u->totp), "%s",
		         store_text(q, 3) ? store_text(q, 3) : "");
		u->totp_last = store_isnull(q, 4) ? 0 : store_int(q, 4);
		u->locked_until = store_isnull(q, 5) ? 0 : store_int(q, 5);
		u->failures = store_int(q, 6);
		u->disabled = store_int(q, 7) != 0;
		/* A central user (the master's, manage.c) logs in with
		 * the password hash the master sent, as a local one. */
		u->central = store_text(q, 8) != NULL &&
		             strcmp(store_text(q, 8), "master") == 0;
		u->local =
		    u->central || (store_text(q, 8) != NULL &&
		                   strcmp(store_text(q, 8), "local") == 0);
	}
	store_done(q);
}

void
auth_user_wipe(struct user *u)
{
	explicit_bzero(u, sizeof(*u));
}

static void
login_failed(struct center *c, struct user *u, const char *addr)
{
	long long now = (long long)time(NULL);

	metrics_add("vigil_admin_login_failures_total", NULL, 1);
	if (!u->found)
		return;
	if (u->failures + 1 >= c->conf.login_max_failures) {
		store_exec(c->store,
		           "UPDATE users SET failures = 0, locked_until = ? "
		           "WHERE name = ?",
		           S_INT(now + c->conf.lockout), S_TEXT(u->name));
		log_warnx("auth: user %s locked for %lld s after %lld failed "
		          "logins (last from %s)",
		          u->name, c->conf.lockout, u->failures + 1, addr);
	} else
		store_exec(c->store,
		           "UPDATE users SET failures = failures + 1 WHERE "
		           "name = ?",
		           S_TEXT(u->name));
}

/* A directory user is recorded at its first login (so an admin can see
 * and disable it) and its role refreshed from its groups at each. */
static int
ldap_user_record(struct center *c, struct user *u, const char *name, int role)
{
	long long now = (long long)time(NULL);

	if (u->found && u->local)
		return -1; /* not reached: local users never ask LDAP */
	if (!u->found &&
	    store_exec(c->store,
	               "INSERT INTO users (name, role, source, disabled, "
	               "failures, created_at) SELECT ?, ?, 'ldap', 0, 0, ? "
	               "WHERE NOT EXISTS (SELECT 1 FROM users WHERE name = ?)",
	               S_TEXT(name), S_TEXT(role_name(role)), S_INT(now),
	               S_TEXT(name)) < 0)
		return -1;
	if (store_exec(c->store,
	               "UPDATE users SET role = ? WHERE name = ? AND source = "
	               "'ldap'",
	               S_TEXT(role_name(role)), S_TEXT(name)) != 1)
		return -1;
	auth_user_load(c, name, u);
	return u->found && !u->local ? 0 : -1;
}

void
auth_login(struct http_req *r)
{
	static const char *const known[] = {"username", "password", "totp",
	                                    NULL};
	struct center *c = C(r);
	struct user u;
	json_t *j;
	const char *name, *pw, *code;
	char sid[SECRET_HEX_LEN + 1], csrf[SECRET_HEX_LEN + 1], sh[65], ch[65];
	char cookie[256];
	long long now = (long long)time(NULL), step = 0;
	int retry = 0, ok;

	memset(&u, 0, sizeof(u));
	if (!ratelimit_take(c->login_rl, r->peer_addr, now, &retry)) {
		char ra[16];

		snprintf(ra, sizeof(ra), "%d", retry);
		http_set_header(r, "Retry-After", ra);
		http_reply_error(r, 429, "rate_limited",
		                 "too many login attempts from %s; retry in "
		                 "%d s",
		                 r->peer_addr, retry);
		return;
	}
	if ((j = http_req_json(r)) == NULL)
		return;
	if (auth_check_fields(r, j, known, known) == -1)
		goto out;
	name = auth_jstr(j, "username");
	pw = auth_jstr(j, "password");
	code = auth_jstr(j, "totp");
	if (name == NULL || pw == NULL) {
		http_reply_error(r, 400, "bad_request", "%s: required",
		                 name == NULL ? "username" : "password");
		goto out;
	}
	/* Who the audit log names for this attempt, failed or not. */
	snprintf(r->who, sizeof(r->who), "user:%.64s", name);
	if (strlen(pw) > 1024) {
		http_reply_error(r, 400, "bad_request", "password: too long");
		goto out;
	}
	if (auth_valid_name(name))
		auth_user_load(c, name, &u);
	/* The same work and the same answer whether or not the user exists,
	 * is disabled or is locked: nothing tells which. Users not found
	 * locally (or known from an earlier LDAP login) ask the directory. */
	if (u.local || c->conf.ldap_uri == NULL || !auth_valid_name(name))
		ok = pw_verify(u.local ? u.hash : c->dummy_hash, pw);
	else {
		struct buf err;
		int role;

		buf_init(&err, 1024);
		role = ldapauth_login(&c->conf, name, pw, &err);
		if (role == LDAPAUTH_DOWN) {
			log_warnx("auth: ldap: %s (login of %s from %s)",
			          buf_cstr(&err), name, r->peer_addr);
			buf_free(&err);
			http_reply_error(r, 503, "identity_source",
			                 "the directory (LDAP) cannot be used "
			                 "now; see the center's log");
			goto out;
		}
		buf_free(&err);
		if (role == LDAPAUTH_NOROLE)
			log_warnx("auth: ldap: %s authenticated, but none of "
			          "its groups maps to a role; refused",
			          name);
		ok = role > ROLE_NONE;
		if (ok && ldap_user_record(c, &u, name, role) == -1) {
			http_reply_error(r, 500, "store",
			                 "cannot record the user");
			goto out;
		}
	}
	if (!u.found || u.disabled || u.locked_until > now || !ok) {
		if (u.found && u.locked_until > now)
			log_warnx("auth: login for locked user %s from %s",
			          u.name, r->peer_addr);
		else if (u.found && !u.disabled)
			login_failed(c, &u, r->peer_addr);
		else
			metrics_add("vigil_admin_login_failures_total", NULL,
			            1);
		http_reply_error(r, 401, "login_failed", GENERIC_LOGIN);
		goto out;
	}
	if (u.totp[0] != '\0') {
		if (code == NULL || *code == '\0') {
			/* The password was right: ask for the second factor
			 * without counting a failure. */
			http_reply_error(r, 401, "totp_required",
			                 "a two-factor code is required (field "
			                 "totp)");
			goto out;
		}
		step = totp_check(u.totp, code, now, u.totp_last);
		if (step < 0) {
			if (step == -2)
				log_warnx("auth: replayed TOTP code for %s "
				          "from %s",
				          u.name, r->peer_addr);
			login_failed(c, &u, r->peer_addr);
			http_reply_error(r, 401, "login_failed",
			                 step == -2 ? "two-factor code already "
			                              "used; wait for the next "
			                              "one"
			                            : GENERIC_LOGIN);
			goto out;
		}
	}
	random_hex(sid, 32);
	random_hex(csrf, 32);
	sha256_hex(sid, SECRET_HEX_LEN, sh);
	sha256_hex(csrf, SECRET_HEX_LEN, ch);
	if (store_exec(c->store,
	               "INSERT INTO sessions (hash, user_name, role, "
	               "csrf_hash, created_at, last_seen, source_addr) VALUES "
	               "(?, ?, ?, ?, ?, ?, ?)",
	               S_TEXT(sh), S_TEXT(u.name), S_TEXT(u.role), S_TEXT(ch),
	               S_INT(now), S_INT(now), S_TEXT(r->peer_addr)) != 1 ||
	    store_exec(c->store,
	               "UPDATE users SET failures = 0, locked_until = NULL, "
	               "last_login = ?, totp_last = CASE WHEN ? > 0 THEN ? "
	               "ELSE totp_last END WHERE name = ?",
	               S_INT(now), S_INT(step), S_INT(step),
	               S_TEXT(u.name)) != 1) {
		http_reply_error(r, 500, "store", "cannot record the session");
		goto out;
	}
	/* Old sessions past their lifetime go at each login. */
	store_exec(c->store, "DELETE FROM sessions WHERE created_at < ?",
	           S_INT(now - c->conf.session_lifetime));
	snprintf(cookie, sizeof(cookie),
	         COOKIE "=%s; Path=/; Max-Age=%lld; Secure; HttpOnly; "
	                "SameSite=Strict",
	         sid, c->conf.session_lifetime);
	http_set_header(r, "Set-Cookie", cookie);
	/* The CSRF token again, readable by the console's script (not
	 * HttpOnly) so that a reload or a second tab can send it; alone it
	 * is no credential, and another origin can neither read nor send
	 * it (SameSite=Strict). */
	snprintf(cookie, sizeof(cookie),
	         CSRF_COOKIE "=%s; Path=/; Max-Age=%lld; Secure; "
	                     "SameSite=Strict",
	         csrf, c->conf.session_lifetime);
	http_add_header(r, "Set-Cookie", cookie);
	log_info("auth: user %s logged in from %s", u.name, r->peer_addr);
	http_reply_json(
	    r, 200,
	    json_pack("{s:s, s:s, s:s, s:I, s:I}", "user", u.name, "role",
	              u.role, "csrf_token", csrf, "idle_timeout",
	              (json_int_t)c->conf.session_idle, "expires_at",
	              (json_int_t)(now + c->conf.session_lifetime)));
out:
	explicit_bzero(sid, sizeof(sid));
	explicit_bzero(csrf, sizeof(csrf));
	explicit_bzero(cookie, sizeof(cookie));
	auth_user_wipe(&u);
	json_decref(j);
}

void
auth_logout(struct http_req *r)
{
	char sid[SECRET_HEX_LEN + 1], h[65];

	if (schema_no_body(r) == -1)
		return;
	if (auth_cookie_session(r, sid) == 0) {
		sha256_hex(sid, strlen(sid), h);
		store_exec(C(r)->store, "DELETE FROM sessions WHERE hash = ?",
		           S_TEXT(h));
		stream_recheck(C(r));
	}
	http_set_header(r, "Set-Cookie",
	                COOKIE "=; Path=/; Max-Age=0; Secure; HttpOnly; "
	                       "SameSite=Strict");
	http_add_header(r, "Set-Cookie",
	                CSRF_COOKIE "=; Path=/; Max-Age=0; Secure; "
	                            "SameSite=Strict");
	http_reply_json(r, 200, json_pack("{s:b}", "logged_out", 1));
}

void
auth_session(struct http_req *r)
{
	json_t *o =
	    json_pack("{s:s, s:s}", "who", r->who, "role", role_name(r->role));

	if (strncmp(r->who, "user:", 5) == 0) {
		struct store_rows *q = store_query(
		    C(r)->store,
		    "SELECT totp_secret IS NOT NULL FROM users WHERE name = ?",
		    S_TEXT(r->who + 5));

		json_object_set_new(o, "user", json_string(r->who + 5));
		if (q != NULL && store_next(q) == 1)
			json_object_set_new(o, "totp",
			                    json_boolean(store_int(q, 0)));
		store_done(q);
	}
	http_reply_json(r, 200, o);
}
