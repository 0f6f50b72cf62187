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

#include "auth.h"
#include "center.h"
#include "cookie.h"
#include "metrics.h"
#include "schema.h"

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

int
auth_valid_name(const char *s)
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
int
auth_cookie_session(struct http_req *r, char out[SECRET_HEX_LEN + 1])
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

/*
 * The role the API key stored under hash grants now, ROLE_NONE when it
 * grants none (unknown, revoked, expired, its owner disabled or
 * removed); id and last_used (may be NULL) get the key's. A key whose
 * owner's role was lowered acts with the lower role.
 */
static int
key_lookup(struct center *c, const char *hash, long long now, char *id,
           size_t idn, long long *last_used)
{
	struct store_rows *q;
	int role = ROLE_NONE, ok = 0;

	q = store_query(
	    c->store,
	    "SELECT k.id, k.role, k.owner, u.disabled, k.last_used, u.role "
	    "FROM api_keys k LEFT JOIN users u ON k.owner LIKE 'user:%' AND "
	    "u.name = substr(k.owner, 6) "
	    "WHERE k.hash = ? AND k.revoked_at IS NULL AND "
	    "(k.expires_at IS NULL OR k.expires_at > ?)",
	    S_TEXT(hash), S_INT(now));
	if (q != NULL && store_next(q) == 1) {
		const char *owner = store_text(q, 2);
		int by_user = owner != NULL && strncmp(owner, "user:", 5) == 0;

		if (id != NULL)
			snprintf(id, idn, "%s",
			         store_text(q, 0) ? store_text(q, 0) : "?");
		role = role_parse(store_text(q, 1));
		if (by_user && role_parse(store_text(q, 5)) < role)
			role = role_parse(store_text(q, 5));
		if (last_used != NULL)
			*last_used = store_isnull(q, 4) ? 0 : store_int(q, 4);
		ok =
		    role != ROLE_NONE &&
		    (!by_user || (!store_isnull(q, 3) && store_int(q, 3) == 0));
	}
	store_done(q);
	return ok ? role : ROLE_NONE;
}

/* Identifies the caller by API key; 0, -1 after replying. */
static int
key_principal(struct http_req *r, const char *key)
{
	struct center *c = C(r);
	char hash[65], id[64] = "";
	long long now = (long long)time(NULL), last_used = 0;
	int role;

	if (strlen(key) > 256)
		return reply_401(r, "API key not valid");
	sha256_hex(key, strlen(key), hash);
	role = key_lookup(c, hash, now, id, sizeof(id), &last_used);
	if (role == ROLE_NONE)
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
		           S_INT(now), S_TEXT(id));
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
	                S_TEXT(hash));
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
		store_exec(c->store, "DELETE FROM sessions WHERE hash = ?",
		           S_TEXT(hash));
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
		           S_INT(now), S_TEXT(hash));
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
	if (auth_cookie_session(r, sid) == 0)
		return session_principal(r, sid);
	return reply_401(r, "authentication required: log in (POST "
	                    "/api/v1/login) or send an API key "
	                    "(Authorization: Bearer <key>); the bootstrap key "
	                    "is in the center's data directory (admin.key)");
}

int
auth_credential(struct http_req *r, int *is_key, char hash[65])
{
	const char *h = http_req_header(r, "Authorization");
	char sid[SECRET_HEX_LEN + 1];

	if (h != NULL) {
		if (strncmp(h, "Bearer ", 7) != 0 || strlen(h + 7) > 256)
			return -1;
		*is_key = 1;
		sha256_hex(h + 7, strlen(h + 7), hash);
		return 0;
	}
	if (auth_cookie_session(r, sid) == -1)
		return -1;
	*is_key = 0;
	sha256_hex(sid, strlen(sid), hash);
	explicit_bzero(sid, sizeof(sid));
	return 0;
}

int
auth_recheck(struct center *c, int is_key, const char *hash)
{
	struct store_rows *q;
	long long now = (long long)time(NULL), created = 0, seen = 0;
	int role = ROLE_NONE;

	if (is_key)
		return key_lookup(c, hash, now, NULL, 0, NULL);
	/* A session row goes at logout and when its user is changed,
	 * disabled or removed (auth_users.c); the timeouts are checked
	 * here as the authorizer checks them, without counting this as
	 * the session's use. */
	q = store_query(c->store,
	                "SELECT role, created_at, last_seen FROM sessions "
	                "WHERE hash = ?",
	                S_TEXT(hash));
	if (q != NULL && store_next(q) == 1) {
		role = role_parse(store_text(q, 0));
		created = store_int(q, 1);
		seen = store_int(q, 2);
	}
	store_done(q);
	if (now - seen >= c->conf.session_idle ||
	    now - created >= c->conf.session_lifetime)
		return ROLE_NONE;
	return role;
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
	/* Nearly full disk: no new data, reads go on (space.c). */
	if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0 &&
	    space_refuse(r, 0) == -1)
		return -1;
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

const struct http_route auth_admin_routes[] = {
    {"POST", "/api/v1/login", auth_login, 0, "login", 16384, ROLE_PUBLIC},
    {"POST", "/api/v1/logout", auth_logout, 0, "logout", 0, ROLE_READONLY},
    {"GET", "/api/v1/session", auth_session, 0, "session", 0, ROLE_READONLY},
    {"POST", "/api/v1/session/password", auth_password, 0, "password", 16384,
     ROLE_READONLY},
    {"POST", "/api/v1/session/totp", auth_totp_enroll, 0, "totp", 0,
     ROLE_READONLY},
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
