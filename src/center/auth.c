/*
 * auth.c: who may use the admin API. The admin server's authorizer
 * (auth_authorize) runs before every handler: it identifies the caller by a
 * bearer API key or a session cookie (with its CSRF token on anything but
 * GET), then compares the caller's role with the one the route declares,
 * answering 401 or 403 itself. Handlers never decide on roles.
 *
 * Also here: login (argon2id passwords, optional TOTP, per-source rate
 * limit, lockout after repeated failures), sessions with idle and absolute
 * timeouts, local users, and API keys. Session ids, CSRF tokens and API
 * keys are random 256-bit values stored as SHA-256 hashes only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "center.h"
#include "cookie.h"
#include "metrics.h"
#include "schema.h"

#define C(r)           ((struct center *)(r)->arg)
#define COOKIE         "vigil_session"
#define GENERIC_LOGIN  "invalid username, password or code"
#define NAME_MAX_LEN   64
#define LABEL_MAX_LEN  128
#define SECRET_HEX_LEN 64

int
auth_init(struct center *c)
{
	c->login_rl = ratelimit_new((double)c->conf.login_rate,
	                            (double)c->conf.login_rate);
	if (c->login_rl == NULL)
		return -1;
	metrics_declare("vigil_admin_login_failures_total", METRIC_COUNTER,
	                "failed logins (wrong password or code, unknown, "
	                "disabled or locked user)");
	/* Unknown users are checked against this, so a login takes as long
	 * whether or not the name exists. */
	return pw_hash("vigil-no-such-user", c->dummy_hash,
	               sizeof(c->dummy_hash));
}

static int
valid_name(const char *s)
{
	size_t n = strlen(s), i;

	if (n == 0 || n > NAME_MAX_LEN)
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '-' ||
		      s[i] == '_' || s[i] == '.' || s[i] == '@'))
			return 0;
	return 1;
}

/* The session id from the Cookie header: 64 lowercase hex digits. */
static int
cookie_session(struct http_req *r, char out[SECRET_HEX_LEN + 1])
{
	const char *h = http_req_header(r, "Cookie");
	size_t i;

	if (h == NULL || cookie_get(h, strlen(h), COOKIE, out,
	                            SECRET_HEX_LEN + 1) != SECRET_HEX_LEN)
		return -1;
	for (i = 0; i < SECRET_HEX_LEN; i++)
		if (!((out[i] >= '0' && out[i] <= '9') ||
		      (out[i] >= 'a' && out[i] <= 'f')))
			return -1;
	return 0;
}

static int
reply_401(struct http_req *r, const char *msg)
{
	metrics_add("vigil_admin_auth_failures_total", NULL, 1);
	http_set_header(r, "WWW-Authenticate", "Bearer");
	http_reply_error(r, 401, "unauthorized", "%s", msg);
	return -1;
}

/* Identifies the caller by API key; 0, -1 after replying. */
static int
key_principal(struct http_req *r, const char *key)
{
	struct center *c = C(r);
	struct store_rows *q;
	char hash[65], id[64] = "";
	long long now = (long long)time(NULL), last_used = 0;
	int role = ROLE_NONE, ok = 0;

	if (strlen(key) > 256)
		return reply_401(r, "API key not valid");
	sha256_hex(key, strlen(key), hash);
	/* A key whose owner was disabled or removed stops working; one
	 * whose owner's role was lowered acts with the lower role. */
	q = store_query(
	    c->store,
	    "SELECT k.id, k.role, k.owner, u.disabled, k.last_used, u.role "
	    "FROM api_keys k LEFT JOIN users u ON k.owner LIKE 'user:%' AND "
	    "u.name = substr(k.owner, 6) "
	    "WHERE k.hash = ? AND k.revoked_at IS NULL AND "
	    "(k.expires_at IS NULL OR k.expires_at > ?)",
	    "si", hash, now);
	if (q != NULL && store_next(q) == 1) {
		const char *owner = store_text(q, 2);
		int by_user = owner != NULL && strncmp(owner, "user:", 5) == 0;

		snprintf(id, sizeof(id), "%s",
		         store_text(q, 0) ? store_text(q, 0) : "?");
		role = role_parse(store_text(q, 1));
		if (by_user && role_parse(store_text(q, 5)) < role)
			role = role_parse(store_text(q, 5));
		last_used = store_isnull(q, 4) ? 0 : store_int(q, 4);
		ok =
		    role != ROLE_NONE &&
		    (!by_user || (!store_isnull(q, 3) && store_int(q, 3) == 0));
	}
	store_done(q);
	if (!ok)
		return reply_401(
		    r, "API key not valid (unknown, revoked or expired, or its "
		       "owner is disabled)");
	snprintf(r->who, sizeof(r->who), "key:%s", id);
	r->role = role;
	/* A write per request would cost a synced commit each: last_used
	 * is kept to the minute. */
	if (last_used < now - 60)
		store_exec(c->store,
		           "UPDATE api_keys SET last_used = ? WHERE id = ?",
		           "is", now, id);
	return 0;
}

/* Identifies the caller by session cookie; checks CSRF on changes. */
static int
session_principal(struct http_req *r, const char *sid)
{
	struct center *c = C(r);
	struct store_rows *q;
	char hash[65], csrf[65], user[NAME_MAX_LEN + 1] = "";
	const char *tok;
	long long now = (long long)time(NULL), created = 0, seen = 0;
	int role = ROLE_NONE, found = 0;

	sha256_hex(sid, strlen(sid), hash);
	q = store_query(c->store,
	                "SELECT user_name, role, csrf_hash, created_at, "
	                "last_seen FROM sessions WHERE hash = ?",
	                "s", hash);
	if (q != NULL && store_next(q) == 1 && store_text(q, 0) != NULL &&
	    store_text(q, 2) != NULL) {
		found = 1;
		snprintf(user, sizeof(user), "%s", store_text(q, 0));
		role = role_parse(store_text(q, 1));
		snprintf(csrf, sizeof(csrf), "%s", store_text(q, 2));
		created = store_int(q, 3);
		seen = store_int(q, 4);
	}
	store_done(q);
	if (!found)
		return reply_401(r,
		                 "session not valid (logged out or expired); "
		                 "log in again");
	if (now - seen >= c->conf.session_idle ||
	    now - created >= c->conf.session_lifetime) {
		store_exec(c->store, "DELETE FROM sessions WHERE hash = ?", "s",
		           hash);
		return reply_401(r,
		                 now - created >= c->conf.session_lifetime
		                     ? "session expired (lifetime reached); "
		                       "log in again"
		                     : "session expired (idle too long); log "
		                       "in again");
	}
	/* A cookie rides along on any request the browser makes, a custom
	 * header does not: changes need the CSRF token as well. */
	if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0) {
		char th[65];

		tok = http_req_header(r, "X-CSRF-Token");
		if (tok == NULL || strlen(tok) != SECRET_HEX_LEN) {
			http_reply_error(r, 403, "csrf",
			                 "missing or malformed X-CSRF-Token "
			                 "header (the csrf_token from login)");
			return -1;
		}
		sha256_hex(tok, strlen(tok), th);
		if (CRYPTO_memcmp(th, csrf, 64) != 0) {
			http_reply_error(r, 403, "csrf",
			                 "X-CSRF-Token does not match this "
			                 "session");
			return -1;
		}
	}
	/* At most one write a second per session. */
	if (seen < now)
		store_exec(c->store,
		           "UPDATE sessions SET last_seen = ? WHERE hash = ?",
		           "is", now, hash);
	snprintf(r->who, sizeof(r->who), "user:%s", user);
	r->role = role;
	return 0;
}

/* Sets r->who and r->role from the request's credentials. */
static int
identify(struct http_req *r)
{
	const char *h = http_req_header(r, "Authorization");
	char sid[SECRET_HEX_LEN + 1];

	if (h != NULL) {
		if (strncmp(h, "Bearer ", 7) != 0)
			return reply_401(r, "Authorization: only 'Bearer <API "
			                    "key>' is accepted");
		return key_principal(r, h + 7);
	}
	if (cookie_session(r, sid) == 0)
		return session_principal(r, sid);
	return reply_401(r, "authentication required: log in (POST "
	                    "/api/v1/login) or send an API key "
	                    "(Authorization: Bearer <key>); the bootstrap key "
	                    "is in the center's data directory (admin.key)");
}

int
auth_authorize(struct http_req *r)
{
	int need = role_needed(r->route);

	r->who[0] = '\0';
	r->role = ROLE_NONE;
	if (need == ROLE_PUBLIC)
		return 0;
	if (identify(r) == -1)
		return -1;
	if (r->role < need) {
		http_reply_error(r, 403, "forbidden",
		                 "%s %s needs the %s role (%s has %s)",
		                 r->method, r->route->path, role_name(need),
		                 r->who, role_name(r->role));
		r->role = ROLE_NONE;
		return -1;
	}
	return 0;
}

int
admin_authorize(struct http_req *r)
{
	/* The authorizer already ran for every admin route. */
	if (r->role > ROLE_NONE)
		return 0;
	if (identify(r) == -1)
		return -1;
	return 0;
}

/* --- login -------------------------------------------------------------- */

static const char *
jstr(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* Refuses members not in known (NULL-terminated) and non-string values
 * among strs; 0 when fine, -1 after replying 400. */
static int
check_fields(struct http_req *r, json_t *j, const char *const *known,
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

struct user {
	char name[NAME_MAX_LEN + 1];
	char role[16];
	char hash[PW_HASH_MAX];
	char totp[64];
	long long totp_last, locked_until, failures;
	int disabled, found, local;
};

static void
user_load(struct center *c, const char *name, struct user *u)
{
	struct store_rows *q;

	memset(u, 0, sizeof(*u));
	q = store_query(c->store,
	                "SELECT name, role, hash, totp_secret, totp_last, "
	                "locked_until, failures, disabled, source FROM users "
	                "WHERE name = ?",
	                "s", name);
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
		u->local = store_text(q, 8) != NULL &&
		           strcmp(store_text(q, 8), "local") == 0;
	}
	store_done(q);
}

static void
user_wipe(struct user *u)
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
		           "is", now + c->conf.lockout, u->name);
		log_warnx("auth: user %s locked for %lld s after %lld failed "
		          "logins (last from %s)",
		          u->name, c->conf.lockout, u->failures + 1, addr);
	} else
		store_exec(c->store,
		           "UPDATE users SET failures = failures + 1 WHERE "
		           "name = ?",
		           "s", u->name);
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
	               "ssis", name, role_name(role), now, name) < 0)
		return -1;
	if (store_exec(c->store,
	               "UPDATE users SET role = ? WHERE name = ? AND source = "
	               "'ldap'",
	               "ss", role_name(role), name) != 1)
		return -1;
	user_load(c, name, u);
	return u->found && !u->local ? 0 : -1;
}

static void
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
	if (check_fields(r, j, known, known) == -1)
		goto out;
	name = jstr(j, "username");
	pw = jstr(j, "password");
	code = jstr(j, "totp");
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
	if (valid_name(name))
		user_load(c, name, &u);
	/* The same work and the same answer whether or not the user exists,
	 * is disabled or is locked: nothing tells which. Users not found
	 * locally (or known from an earlier LDAP login) ask the directory. */
	if (u.local || c->conf.ldap_uri == NULL || !valid_name(name))
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
	               "ssssiis", sh, u.name, u.role, ch, now, now,
	               r->peer_addr) != 1 ||
	    store_exec(c->store,
	               "UPDATE users SET failures = 0, locked_until = NULL, "
	               "last_login = ?, totp_last = CASE WHEN ? > 0 THEN ? "
	               "ELSE totp_last END WHERE name = ?",
	               "iiis", now, step, step, u.name) != 1) {
		http_reply_error(r, 500, "store", "cannot record the session");
		goto out;
	}
	/* Old sessions past their lifetime go at each login. */
	store_exec(c->store, "DELETE FROM sessions WHERE created_at < ?", "i",
	           now - c->conf.session_lifetime);
	snprintf(cookie, sizeof(cookie),
	         COOKIE "=%s; Path=/; Max-Age=%lld; Secure; HttpOnly; "
	                "SameSite=Strict",
	         sid, c->conf.session_lifetime);
	http_set_header(r, "Set-Cookie", cookie);
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
	user_wipe(&u);
	json_decref(j);
}

static void
auth_logout(struct http_req *r)
{
	char sid[SECRET_HEX_LEN + 1], h[65];

	if (schema_no_body(r) == -1)
		return;
	if (cookie_session(r, sid) == 0) {
		sha256_hex(sid, strlen(sid), h);
		store_exec(C(r)->store, "DELETE FROM sessions WHERE hash = ?",
		           "s", h);
	}
	http_set_header(r, "Set-Cookie",
	                COOKIE "=; Path=/; Max-Age=0; Secure; HttpOnly; "
	                       "SameSite=Strict");
	http_reply_json(r, 200, json_pack("{s:b}", "logged_out", 1));
}

static void
auth_session(struct http_req *r)
{
	json_t *o =
	    json_pack("{s:s, s:s}", "who", r->who, "role", role_name(r->role));

	if (strncmp(r->who, "user:", 5) == 0) {
		struct store_rows *q = store_query(
		    C(r)->store,
		    "SELECT totp_secret IS NOT NULL FROM users WHERE name = ?",
		    "s", r->who + 5);

		json_object_set_new(o, "user", json_string(r->who + 5));
		if (q != NULL && store_next(q) == 1)
			json_object_set_new(o, "totp",
			                    json_boolean(store_int(q, 0)));
		store_done(q);
	}
	http_reply_json(r, 200, o);
}

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

static void
adm_users(struct http_req *r)
{
	struct store_rows *q;
	json_t *a;

	q = store_query(C(r)->store,
	                "SELECT " USER_COLUMNS " FROM users ORDER BY name",
	                NULL);
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

static int
role_field(struct http_req *r, json_t *j, int *role)
{
	const char *s = jstr(j, "role");

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

static int
password_field(struct http_req *r, const char *pw, char *hash, size_t n)
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

static void
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
	if (check_fields(r, j, known, known) == -1 ||
	    role_field(r, j, &role) == -1)
		goto out;
	name = jstr(j, "name");
	pw = jstr(j, "password");
	if (name == NULL || !valid_name(name)) {
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
	if (password_field(r, pw, hash, sizeof(hash)) == -1)
		goto out;
	n = store_exec(c->store,
	               "INSERT INTO users (name, role, source, hash, disabled, "
	               "failures, created_at) SELECT ?, ?, 'local', ?, 0, 0, ? "
	               "WHERE NOT EXISTS (SELECT 1 FROM users WHERE name = ?)",
	               "sssis", name, role_name(role), hash,
	               (long long)time(NULL), name);
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
	                "s", name);
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
	store_exec(c->store, "DELETE FROM sessions WHERE user_name = ?", "s",
	           name);
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
	                "s", name);
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
	if (check_fields(r, j, known, strs) == -1 ||
	    (has_role = role_field(r, j, &role)) == -1)
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
	if (jstr(j, "password") != NULL &&
	    password_field(r, jstr(j, "password"), hash, sizeof(hash)) == -1)
		goto out;
	if (store_begin(c->store) == -1) {
		http_reply_error(r, 503, "store_busy", "store busy; retry");
		goto out;
	}
	n = store_exec(c->store,
	               "UPDATE users SET updated_at = ? WHERE name = ?", "is",
	               (long long)time(NULL), name);
	if (n == 1 && has_role) {
		n = store_exec(c->store,
		               "UPDATE users SET role = ? WHERE name = ?", "ss",
		               role_name(role), name);
		end = 1;
	}
	if (n == 1 && (v = json_object_get(j, "disabled")) != NULL) {
		n = store_exec(c->store,
		               "UPDATE users SET disabled = ? WHERE name = ?",
		               "is", (long long)json_is_true(v), name);
		end |= json_is_true(v);
	}
	if (n == 1 && hash[0] != '\0') {
		n = store_exec(
		    c->store,
		    "UPDATE users SET hash = ?, failures = 0, "
		    "locked_until = NULL WHERE name = ? AND source = "
		    "'local'",
		    "ss", hash, name);
		end = 1;
	}
	if (n == 1 && json_is_true(json_object_get(j, "unlock")))
		n = store_exec(c->store,
		               "UPDATE users SET failures = 0, locked_until = "
		               "NULL WHERE name = ?",
		               "s", name);
	if (n == 1 && json_object_get(j, "totp") != NULL)
		n = store_exec(c->store,
		               "UPDATE users SET totp_secret = NULL, "
		               "totp_pending = NULL WHERE name = ?",
		               "s", name);
	if (n == 1 && end)
		n = store_exec(c->store,
		               "DELETE FROM sessions WHERE user_name = ?", "s",
		               name) >= 0
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
	n = store_exec(c->store, "DELETE FROM users WHERE name = ?", "s", name);
	if (n != 1) {
		http_reply_error(r, 404, "not_found", "no user %s", name);
		return;
	}
	end_sessions(c, name);
	log_info("auth: user %s removed by %s", name, r->who);
	http_reply_json(r, 200,
	                json_pack("{s:s, s:b}", "name", name, "deleted", 1));
}

/* /api/v1/users/<name> */
static void
adm_user(struct http_req *r)
{
	char name[NAME_MAX_LEN + 1];
	const char *action = http_req_rest_id(r, name, sizeof(name));

	if (action == NULL || *action != '\0' || !valid_name(name)) {
		http_reply_error(r, 404, "not_found", "no such user");
		return;
	}
	if (strcmp(r->method, "GET") == 0)
		user_show(r, name);
	else if (strcmp(r->method, "PUT") == 0)
		user_update(r, name);
	else if (schema_no_body(r) == 0)
		user_delete(r, name);
}

/* --- TOTP enrollment (for the logged-in user) --------------------------- */

static const char *
self_user(struct http_req *r)
{
	if (strncmp(r->who, "user:", 5) != 0) {
		http_reply_error(
		    r, 400, "not_a_user",
		    "this acts on the logged-in user; %s is an API "
		    "key",
		    r->who);
		return NULL;
	}
	return r->who + 5;
}

static void
totp_enroll(struct http_req *r)
{
	struct center *c = C(r);
	const char *name = self_user(r);
	char secret[64], uri[512];
	int n;

	if (name == NULL || schema_no_body(r) == -1)
		return;
	if (totp_new_secret(secret, sizeof(secret)) == -1) {
		http_reply_error(r, 500, "internal_error",
		                 "cannot make a secret");
		return;
	}
	n = store_exec(c->store,
	               "UPDATE users SET totp_pending = ? WHERE name = ? AND "
	               "source = 'local' AND totp_secret IS NULL",
	               "ss", secret, name);
	if (n != 1) {
		http_reply_error(r, 409, "totp_active",
		                 "two-factor is already on for %s (or the user "
		                 "is not local); turn it off first",
		                 name);
		goto out;
	}
	snprintf(uri, sizeof(uri),
	         "otpauth://totp/Vigil:%s?secret=%s&issuer=Vigil&algorithm="
	         "SHA1&digits=6&period=30",
	         name, secret);
	/* Shown once: confirm with a code to turn it on. */
	http_reply_json(r, 200,
	                json_pack("{s:s, s:s}", "secret", secret, "uri", uri));
out:
	explicit_bzero(secret, sizeof(secret));
	explicit_bzero(uri, sizeof(uri));
}

static void
totp_code_req(struct http_req *r, int confirm)
{
	static const char *const known[] = {"code", NULL};
	struct center *c = C(r);
	const char *name = self_user(r), *code;
	struct store_rows *q;
	char secret[64] = "";
	long long last = 0, step, now = (long long)time(NULL);
	json_t *j;

	if (name == NULL || (j = http_req_json(r)) == NULL)
		return;
	if (check_fields(r, j, known, known) == -1)
		goto out;
	if ((code = jstr(j, "code")) == NULL) {
		http_reply_error(r, 400, "bad_request", "code: required");
		goto out;
	}
	q = store_query(c->store,
	                confirm ? "SELECT totp_pending, totp_last FROM users "
	                          "WHERE name = ?"
	                        : "SELECT totp_secret, totp_last FROM users "
	                          "WHERE name = ?",
	                "s", name);
	if (q != NULL && store_next(q) == 1 && store_text(q, 0) != NULL) {
		snprintf(secret, sizeof(secret), "%s", store_text(q, 0));
		last = store_isnull(q, 1) ? 0 : store_int(q, 1);
	}
	store_done(q);
	if (secret[0] == '\0') {
		http_reply_error(r, 409, "totp_state",
		                 confirm
		                     ? "no two-factor enrollment under way; "
		                       "start one first"
		                     : "two-factor is not on");
		goto out;
	}
	if ((step = totp_check(secret, code, now, last)) < 0) {
		http_reply_error(r, 400, "bad_code",
		                 step == -2 ? "code: already used"
		                            : "code: not valid now");
		goto out;
	}
	if (store_exec(c->store,
	               confirm ? "UPDATE users SET totp_secret = totp_pending, "
	                         "totp_pending = NULL, totp_last = ? WHERE "
	                         "name = ?"
	                       : "UPDATE users SET totp_secret = NULL, "
	                         "totp_last = ? WHERE name = ?",
	               "is", step, name) != 1) {
		http_reply_error(r, 500, "store", "cannot update the user");
		goto out;
	}
	log_info("auth: two-factor %s for %s", confirm ? "on" : "off", name);
	http_reply_json(r, 200,
	                json_pack("{s:s, s:b}", "user", name, "totp", confirm));
out:
	explicit_bzero(secret, sizeof(secret));
	json_decref(j);
}

static void
auth_totp_confirm(struct http_req *r)
{
	totp_code_req(r, 1);
}

static void
auth_totp_disable(struct http_req *r)
{
	totp_code_req(r, 0);
}

static void
auth_password(struct http_req *r)
{
	static const char *const known[] = {"old", "new", NULL};
	struct center *c = C(r);
	const char *name = self_user(r);
	struct user u;
	char hash[PW_HASH_MAX] = "";
	json_t *j;

	memset(&u, 0, sizeof(u));
	if (name == NULL || (j = http_req_json(r)) == NULL)
		return;
	if (check_fields(r, j, known, known) == -1)
		goto out;
	if (jstr(j, "old") == NULL || jstr(j, "new") == NULL) {
		http_reply_error(r, 400, "bad_request", "old, new: required");
		goto out;
	}
	user_load(c, name, &u);
	if (!u.local) {
		http_reply_error(r, 400, "not_local",
		                 "%s is a directory (LDAP) user: change the "
		                 "password there",
		                 name);
		goto out;
	}
	if (!pw_verify(u.hash, jstr(j, "old"))) {
		http_reply_error(r, 403, "bad_password",
		                 "old: not the current password");
		goto out;
	}
	if (password_field(r, jstr(j, "new"), hash, sizeof(hash)) == -1)
		goto out;
	if (store_exec(c->store, "UPDATE users SET hash = ? WHERE name = ?",
	               "ss", hash, name) != 1) {
		http_reply_error(r, 500, "store", "cannot update the user");
		goto out;
	}
	log_info("auth: %s changed their password", name);
	http_reply_json(r, 200, json_pack("{s:s}", "user", name));
out:
	explicit_bzero(hash, sizeof(hash));
	user_wipe(&u);
	json_decref(j);
}

/* --- API keys ----------------------------------------------------------- */

static void
adm_keys(struct http_req *r)
{
	struct store_rows *q;
	json_t *a;
	int all = r->role >= ROLE_ADMIN;

	/* Admins see every key; others the keys they made (and a key
	 * itself). */
	q = store_query(C(r)->store,
	                all ? "SELECT id, role, label, owner, created_at, "
	                      "expires_at, revoked_at, last_used FROM api_keys "
	                      "ORDER BY created_at, id"
	                    : "SELECT id, role, label, owner, created_at, "
	                      "expires_at, revoked_at, last_used FROM api_keys "
	                      "WHERE owner = ? OR 'key:' || id = ? ORDER BY "
	                      "created_at, id",
	                all ? NULL : "ss", r->who, r->who);
	if (q == NULL) {
		http_reply_error(r, 500, "store", "store unavailable");
		return;
	}
	a = json_array();
	while (store_next(q) == 1) {
		json_t *o = json_pack(
		    "{s:s, s:s, s:s?, s:s?, s:I}", "id", store_text(q, 0),
		    "role", store_text(q, 1), "label", store_text(q, 2),
		    "owner", store_text(q, 3), "created_at",
		    (json_int_t)store_int(q, 4));
		int c;

		for (c = 5; c <= 7; c++) {
			static const char *const k[] = {
			    "expires_at", "revoked_at", "last_used"};
			json_object_set_new(
			    o, k[c - 5],
			    store_isnull(q, c) ? json_null()
			                       : json_integer(store_int(q, c)));
		}
		json_array_append_new(a, o);
	}
	store_done(q);
	http_reply_json(r, 200, json_pack("{s:o}", "keys", a));
}

static void
adm_key_create(struct http_req *r)
{
	static const char *const known[] = {"role", "label", "expires", NULL};
	static const char *const strs[] = {"role", "label", NULL};
	struct center *c = C(r);
	json_t *j, *v;
	const char *label;
	char key[4 + SECRET_HEX_LEN + 1], hash[65], id[4 + 16 + 1];
	long long now = (long long)time(NULL), expires = 0;
	int role = r->role;

	if ((j = http_req_json(r)) == NULL)
		return;
	if (check_fields(r, j, known, strs) == -1 ||
	    role_field(r, j, &role) == -1)
		goto out;
	if (role > r->role) {
		http_reply_error(r, 403, "forbidden",
		                 "role: %s cannot create a key with more than "
		                 "its own role (%s)",
		                 r->who, role_name(r->role));
		goto out;
	}
	label = jstr(j, "label");
	if (label != NULL &&
	    (strlen(label) == 0 || strlen(label) > LABEL_MAX_LEN)) {
		http_reply_error(r, 400, "bad_request",
		                 "label: 1-%d characters", LABEL_MAX_LEN);
		goto out;
	}
	if ((v = json_object_get(j, "expires")) != NULL) {
		if (json_is_integer(v))
			expires = json_integer_value(v);
		else if (!json_is_string(v) ||
		         str_to_duration(json_string_value(v), &expires) == -1)
			expires = -1;
		if (expires < 1 || expires > 3650LL * 86400) {
			http_reply_error(
			    r, 400, "bad_request",
			    "expires: seconds or a duration such as "
			    "30m, 24h, 90d; at most 10 years");
			goto out;
		}
	}
	memcpy(key, "vgk_", 4);
	random_hex(key + 4, 32);
	memcpy(id, "key_", 4);
	random_hex(id + 4, 8);
	sha256_hex(key, strlen(key), hash);
	if (store_exec(
	        c->store,
	        "INSERT INTO api_keys (id, hash, role, label, created_at, "
	        "owner, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
	        expires ? "ssssisi" : "ssssisn", id, hash, role_name(role),
	        label, now, r->who, now + expires) != 1) {
		http_reply_error(r, 500, "store", "cannot store the key");
		goto out;
	}
	log_info("auth: API key %s (%s) created by %s", id, role_name(role),
	         r->who);
	/* The key itself is shown once, here. */
	http_reply_json(
	    r, 201,
	    json_pack("{s:s, s:s, s:s, s:s?, s:o}", "id", id, "key", key,
	              "role", role_name(role), "label", label, "expires_at",
	              expires ? json_integer(now + expires) : json_null()));
out:
	explicit_bzero(key, sizeof(key));
	json_decref(j);
}

static void
adm_key_revoke(struct http_req *r)
{
	int n;

	if (schema_no_body(r) == -1)
		return;
	if (strlen(r->rest) == 0 || strlen(r->rest) > 64) {
		http_reply_error(r, 404, "not_found", "no such key");
		return;
	}
	n = store_exec(C(r)->store,
	               r->role >= ROLE_ADMIN
	                   ? "UPDATE api_keys SET revoked_at = ? WHERE id = ? "
	                     "AND revoked_at IS NULL"
	                   : "UPDATE api_keys SET revoked_at = ? WHERE id = ? "
	                     "AND revoked_at IS NULL AND (owner = ? OR "
	                     "'key:' || id = ?)",
	               r->role >= ROLE_ADMIN ? "is" : "isss",
	               (long long)time(NULL), r->rest, r->who, r->who);
	if (n != 1) {
		http_reply_error(r, 404, "not_found",
		                 "no active key %.64s of yours", r->rest);
		return;
	}
	log_info("auth: API key %s revoked by %s", r->rest, r->who);
	http_reply_json(r, 200,
	                json_pack("{s:s, s:b}", "id", r->rest, "revoked", 1));
}

const struct http_route auth_admin_routes[] = {
    {"POST", "/api/v1/login", auth_login, 0, "login", 16384, ROLE_PUBLIC},
    {"POST", "/api/v1/logout", auth_logout, 0, "logout", 0, ROLE_READONLY},
    {"GET", "/api/v1/session", auth_session, 0, "session", 0, ROLE_READONLY},
    {"POST", "/api/v1/session/password", auth_password, 0, "password", 16384,
     ROLE_READONLY},
    {"POST", "/api/v1/session/totp", totp_enroll, 0, "totp", 0, ROLE_READONLY},
    {"POST", "/api/v1/session/totp/confirm", auth_totp_confirm, 0, "totp", 1024,
     ROLE_READONLY},
    {"DELETE", "/api/v1/session/totp", auth_totp_disable, 0, "totp", 1024,
     ROLE_READONLY},
    {"GET", "/api/v1/users", adm_users, 0, "users", 0, ROLE_ADMIN},
    {"POST", "/api/v1/users", adm_user_create, 0, "users", 16384, ROLE_ADMIN},
    {"GET", "/api/v1/users/", adm_user, HTTP_ROUTE_PREFIX, "user", 0,
     ROLE_ADMIN},
    {"PUT", "/api/v1/users/", adm_user, HTTP_ROUTE_PREFIX, "user", 16384,
     ROLE_ADMIN},
    {"DELETE", "/api/v1/users/", adm_user, HTTP_ROUTE_PREFIX, "user", 0,
     ROLE_ADMIN},
    {"GET", "/api/v1/keys", adm_keys, 0, "keys", 0, ROLE_READONLY},
    {"POST", "/api/v1/keys", adm_key_create, 0, "keys", 16384, ROLE_READONLY},
    {"DELETE", "/api/v1/keys/", adm_key_revoke, HTTP_ROUTE_PREFIX, "key", 0,
     ROLE_READONLY},
    {NULL, NULL, NULL, 0, NULL, 0, 0},
};
