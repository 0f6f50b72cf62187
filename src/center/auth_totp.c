/*
 * auth_totp.c: what the logged-in user does to its own credentials: TOTP
 * enrollment, confirmation and removal, and the password change.
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

void
auth_totp_enroll(struct http_req *r)
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
	               S_TEXT(secret), S_TEXT(name));
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
	if (auth_check_fields(r, j, known, known) == -1)
		goto out;
	if ((code = auth_jstr(j, "code")) == NULL) {
		http_reply_error(r, 400, "bad_request", "code: required");
		goto out;
	}
	q = store_query(c->store,
	                confirm ? "SELECT totp_pending, totp_last FROM users "
	                          "WHERE name = ?"
	                        : "SELECT totp_secret, totp_last FROM users "
	                          "WHERE name = ?",
	                S_TEXT(name));
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
	               S_INT(step), S_TEXT(name)) != 1) {
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

void
auth_totp_confirm(struct http_req *r)
{
	totp_code_req(r, 1);
}

void
auth_totp_disable(struct http_req *r)
{
	totp_code_req(r, 0);
}

void
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
	if (auth_check_fields(r, j, known, known) == -1)
		goto out;
	if (auth_jstr(j, "old") == NULL || auth_jstr(j, "new") == NULL) {
		http_reply_error(r, 400, "bad_request", "old, new: required");
		goto out;
	}
	auth_user_load(c, name, &u);
	if (u.central) {
		http_reply_error(r, 400, "central_user",
		                 "%s is a user of the master: change the "
		                 "password there",
		                 name);
		goto out;
	}
	if (!u.local) {
		http_reply_error(r, 400, "not_local",
		                 "%s is a directory (LDAP) user: change the "
		                 "password there",
		                 name);
		goto out;
	}
	if (!pw_verify(u.hash, auth_jstr(j, "old"))) {
		http_reply_error(r, 403, "bad_password",
		                 "old: not the current password");
		goto out;
	}
	if (auth_password_field(r, auth_jstr(j, "new"), hash, sizeof(hash)) ==
	    -1)
		goto out;
	if (store_exec(c->store, "UPDATE users SET hash = ? WHERE name = ?",
	               S_TEXT(hash), S_TEXT(name)) != 1) {
		http_reply_error(r, 500, "store", "cannot update the user");
		goto out;
	}
	log_info("auth: %s changed their password", name);
	http_reply_json(r, 200, json_pack("{s:s}", "user", name));
out:
	explicit_bzero(hash, sizeof(hash));
	auth_user_wipe(&u);
	json_decref(j);
}
