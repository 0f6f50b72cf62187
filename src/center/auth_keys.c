/*
 * auth_keys.c: API keys (/api/v1/keys): list, create and revoke. A key is
 * a random 256-bit value shown once and stored as its SHA-256 hash only.
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

/* --- API keys ----------------------------------------------------------- */

void
adm_keys(struct http_req *r)
{
	struct store_rows *q;
	json_t *a;
	int all = r->role >= ROLE_ADMIN;

	/* Admins see every key; others the keys they made (and a key
	 * itself). */
	q = store_query(
	    C(r)->store,
	    "SELECT id, role, label, owner, created_at, expires_at, "
	    "revoked_at, last_used FROM api_keys WHERE ? = 1 OR "
	    "owner = ? OR 'key:' || id = ? ORDER BY created_at, id",
	    S_INT(all), S_TEXT(r->who), S_TEXT(r->who));
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

void
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
	if (auth_check_fields(r, j, known, strs) == -1 ||
	    auth_role_field(r, j, &role) == -1)
		goto out;
	if (role > r->role) {
		http_reply_error(r, 403, "forbidden",
		                 "role: %s cannot create a key with more than "
		                 "its own role (%s)",
		                 r->who, role_name(r->role));
		goto out;
	}
	label = auth_jstr(j, "label");
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
	        S_TEXT(id), S_TEXT(hash), S_TEXT(role_name(role)),
	        S_TEXT(label), S_INT(now), S_TEXT(r->who),
	        expires ? S_INT(now + expires) : S_NULL) != 1) {
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

void
adm_key_revoke(struct http_req *r)
{
	int n, made;

	if (schema_no_body(r) == -1)
		return;
	if (strlen(r->rest) == 0 || strlen(r->rest) > 64) {
		http_reply_error(r, 404, "not_found", "no such key");
		return;
	}
	if (store_begin(C(r)->store) == -1) {
		http_reply_error(r, 503, "store_busy", "store busy; retry");
		return;
	}
	n = store_exec(C(r)->store,
	               "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND "
	               "revoked_at IS NULL AND (? = 1 OR owner = ? OR "
	               "'key:' || id = ?)",
	               S_INT(time(NULL)), S_TEXT(r->rest),
	               S_INT(r->role >= ROLE_ADMIN), S_TEXT(r->who),
	               S_TEXT(r->who));
	if (n != 1) {
		store_rollback(C(r)->store);
		http_reply_error(r, 404, "not_found",
		                 "no active key %.64s of yours", r->rest);
		return;
	}
	/* Keys made with this key, and theirs: a stolen key cannot leave
	 * successors behind once it is revoked. */
	made = store_exec(C(r)->store,
	                  "UPDATE api_keys SET revoked_at = ? WHERE revoked_at "
	                  "IS NULL AND id IN (WITH RECURSIVE made(id) AS "
	                  "(SELECT id FROM api_keys WHERE owner = 'key:' || ? "
	                  "UNION SELECT k.id FROM api_keys k JOIN made ON "
	                  "k.owner = 'key:' || made.id) SELECT id FROM made)",
	                  S_INT(time(NULL)), S_TEXT(r->rest));
	if (made < 0) {
		store_rollback(C(r)->store);
		http_reply_error(r, 503, "store_busy", "store busy; retry");
		return;
	}
	if (store_commit(C(r)->store) == -1) {
		store_rollback(C(r)->store);
		http_reply_error(r, 503, "store_busy", "store busy; retry");
		return;
	}
	stream_recheck(C(r));
	log_info("auth: API key %s revoked by %s, with %d key%s it made",
	         r->rest, r->who, made, made == 1 ? "" : "s");
	http_reply_json(r, 200,
	                json_pack("{s:s, s:b, s:i}", "id", r->rest, "revoked",
	                          1, "keys_made_revoked", made));
}
