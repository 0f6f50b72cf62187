/*
 * settings.c: the few runtime settings an administrator changes through
 * the API (GET/PUT /api/v1/settings) without editing vigild.conf and
 * reloading. Each has a type, a check and a default (for
 * require_approval: the config file's value); a value set through the API
 * is stored in the settings table and wins over the default until it is
 * reset with null. Changes are audited like every PUT (before / after).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "center.h"
#include "schema.h"

#define C(r) ((struct center *)(r)->arg)

#define SAMPLE_PASSWORD_DEFAULT "infected"

enum { SET_BOOL = 1, SET_STRING };

struct setting {
	const char *name;
	int type;
	size_t max; /* strings: longest value */
};

static const struct setting settings[] = {
    {"require_approval", SET_BOOL, 0},
    {"sample_archive_password", SET_STRING, 128},
    {NULL, 0, 0},
};

static const struct schema_field settings_schema[] = {
    {"require_approval", SCH_BOOL | SCH_NULL, 0},
    {"sample_archive_password", SCH_STRING | SCH_NULL, 0},
    {NULL, 0, 0},
};

static json_t *
setting_default(struct center *c, const struct setting *s)
{
	if (strcmp(s->name, "require_approval") == 0)
		return json_boolean(c->conf.require_approval);
	return json_string(SAMPLE_PASSWORD_DEFAULT);
}

/* The stored value (a JSON text) of name, or NULL for the default. */
static json_t *
setting_stored(struct center *c, const char *name)
{
	struct store_rows *q;
	json_t *v = NULL;

	q = store_query(c->store, "SELECT value FROM settings WHERE name = ?",
	                S_TEXT(name));
	if (q != NULL && store_next(q) == 1)
		v = json_loads(store_text(q, 0), JSON_DECODE_ANY, NULL);
	store_done(q);
	return v;
}

static json_t *
setting_value(struct center *c, const struct setting *s)
{
	json_t *v = setting_stored(c, s->name);

	/* A stored value of the wrong type (edited by hand) is ignored. */
	if (v != NULL && ((s->type == SET_BOOL && !json_is_boolean(v)) ||
	                  (s->type == SET_STRING && !json_is_string(v)))) {
		log_warnx("settings: stored %s has the wrong type; using the "
		          "default",
		          s->name);
		json_decref(v);
		v = NULL;
	}
	return v != NULL ? v : setting_default(c, s);
}

int
settings_require_approval(struct center *c)
{
	json_t *v = setting_value(c, &settings[0]);
	int on = json_is_true(v);

	json_decref(v);
	return on;
}

char *
settings_sample_password(struct center *c)
{
	json_t *v = setting_value(c, &settings[1]);
	char *s = dup_or_null(json_string_value(v));

	json_decref(v);
	return s;
}

/* {"settings": {name: value}, "defaults": {name: value}, "set": [names
 * stored through the API]} */
static json_t *
settings_json(struct center *c)
{
	json_t *o = json_object(), *d = json_object(), *set = json_array(), *v;
	const struct setting *s;

	for (s = settings; s->name != NULL; s++) {
		json_object_set_new(o, s->name, setting_value(c, s));
		json_object_set_new(d, s->name, setting_default(c, s));
		if ((v = setting_stored(c, s->name)) != NULL)
			json_array_append_new(set, json_string(s->name));
		json_decref(v);
	}
	return json_pack("{s:o, s:o, s:o}", "settings", o, "defaults", d, "set",
	                 set);
}

static void
adm_settings(struct http_req *r)
{
	if (admin_authorize(r) == -1)
		return;
	http_reply_json(r, 200, settings_json(C(r)));
}

static int
password_ok(const char *p)
{
	size_t i, n = strlen(p);

	if (n == 0 || n > 128)
		return 0;
	for (i = 0; i < n; i++)
		if ((unsigned char)p[i] < 0x20 || (unsigned char)p[i] > 0x7e)
			return 0;
	return 1;
}

static void
adm_settings_put(struct http_req *r)
{
	struct center *c = C(r);
	json_t *body, *v, *old;
	const char *k;
	char *text;
	int bad = 0;

	if (admin_authorize(r) == -1)
		return;
	if ((body = schema_body(r, settings_schema)) == NULL)
		return;
	/* null resets to the default; the schema allowed only the type */
	v = json_object_get(body, "sample_archive_password");
	if (json_is_string(v) && !password_ok(json_string_value(v))) {
		http_reply_error_field(
		    r, 400, "bad_request", "sample_archive_password",
		    "sample_archive_password: 1 to 128 printable ASCII "
		    "characters");
		goto out;
	}
	old = settings_json(c);
	audit_before(r, json_incref(json_object_get(old, "settings")));
	json_decref(old);
	if (store_begin(c->store) == -1) {
		http_reply_error(r, 503, "store_busy", "store busy; retry");
		goto out;
	}
	json_object_foreach(body, k, v)
	{
		text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
		if (text == NULL ||
		    store_exec(c->store, "DELETE FROM settings WHERE name = ?",
		               S_TEXT(k)) < 0)
			bad = 1;
		else if (!json_is_null(v) &&
		         store_exec(
		             c->store,
		             "INSERT INTO settings (name, value, updated_at) "
		             "VALUES (?, ?, ?)",
		             S_TEXT(k), S_TEXT(text), S_INT(time(NULL))) != 1)
			bad = 1;
		free(text);
	}
	if (bad || store_commit(c->store) == -1) {
		store_rollback(c->store);
		http_reply_error(r, 500, "store", "cannot store the settings");
		goto out;
	}
	log_info("settings: changed by %s from %s", r->who, r->peer_addr);
	http_reply_json(r, 200, settings_json(c));
out:
	json_decref(body);
}

const struct http_route settings_admin_routes[] = {
    {"GET", "/api/v1/settings", adm_settings, 0, "settings", 0, ROLE_ADMIN},
    {"PUT", "/api/v1/settings", adm_settings_put, 0, "settings", 0, ROLE_ADMIN},
    {NULL, NULL, NULL, 0, NULL, 0, 0},
};
