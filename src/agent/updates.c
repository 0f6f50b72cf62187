/*
 * updates.c: the agent's side of signed updates (docs/updates.md,
 * "Agents"). At enrollment the agent pins the update root its center
 * hands out (update-root.json); from then on it checks every update
 * itself, from that root, in TUF's order (src/common/updc.c), whatever
 * its center serves: a center that serves metadata of another root, an
 * older version or a forged artifact is refused like any mirror.
 *
 * DIR/updates holds the metadata that verified (the floor for rollback
 * across restarts) and the rule sets by SHA-256; DIR/updates/applied.json
 * names the rule sets the agent runs. It is written last, in one rename,
 * so a scan sees the old set or the new one, never a mix. Scans take a
 * rule set that arrived by update only from there (agent_updates_rules).
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "agent.h"
#include "log.h"
#include "tls.h"
#include "updc.h"

static pthread_mutex_t upd_lock = PTHREAD_MUTEX_INITIALIZER;
static long long upd_last; /* time of the last check */

#define P (PATH_MAX + 32)

static void
paths(const struct agent_state *st, char *root, char *dir, char *applied)
{
	snprintf(root, P, "%s/update-root.json", st->dir);
	snprintf(dir, P, "%s/updates", st->dir);
	snprintf(applied, P, "%s/updates/applied.json", st->dir);
}

int
agent_updates_pin(struct agent_state *st, const char *root_json)
{
	char root[P], dir[P], applied[P];
	struct tuf_trust t;
	struct buf err;
	int rc = -1, r;

	if (root_json == NULL)
		return 0;
	paths(st, root, dir, applied);
	if (agent_file_exists(root)) {
		log_info("install: keeping the update root pinned before (%s)",
		         root);
		return 0;
	}
	buf_init(&err, 1024);
	memset(&t, 0, sizeof(t));
	if ((r = tuf_trust_init(&t, (const uint8_t *)root_json,
	                        strlen(root_json), &err)) != TUF_OK) {
		log_warnx("install: the center's update root is refused (%s): "
		          "%s; updates stay off",
		          tuf_err_name(r), buf_cstr(&err));
		goto out;
	}
	if (tls_write_file(root, root_json, strlen(root_json), 0644, &err) ==
	    -1) {
		log_warnx("install: %s", buf_cstr(&err));
		goto out;
	}
	log_info("install: pinned the update root (version %lld)",
	         t.meta[TUF_ROOT].version);
	rc = 0;
out:
	tuf_trust_free(&t);
	buf_free(&err);
	return rc;
}

struct apply_ctx {
	const struct updc_src *src;
	const char *dir;
	struct buf *err;
	json_t *rules;
	int bad;
};

static void
take_rules(const struct tuf_target *tg, void *arg)
{
	struct apply_ctx *a = arg;
	char hex[65];

	if (a->bad || tg->kind == NULL || strcmp(tg->kind, "rules") != 0)
		return;
	if (updc_target_fetch(a->src, tg, a->dir, a->err) == -1) {
		a->bad = 1;
		return;
	}
	hex_encode(tg->sha256, 32, hex);
	json_array_append_new(
	    a->rules, json_pack("{s:s, s:s, s:s}", "name", tg->name, "version",
	                        tg->version ? tg->version : "", "sha256", hex));
}

static void
note_error(const char *applied_dir, const char *msg)
{
	char p[P + 16];
	struct buf err;
	json_t *j = json_pack("{s:s, s:I}", "error", msg, "checked_at",
	                      (json_int_t)time(NULL));
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;

	buf_init(&err, 512);
	snprintf(p, sizeof(p), "%s/error.json", applied_dir);
	if (s != NULL)
		tls_write_file(p, s, strlen(s), 0644, &err);
	free(s);
	json_decref(j);
	buf_free(&err);
}

static int
check_locked(struct agent_state *st)
{
	char root[P], dir[P], applied[P], url[PATH_MAX];
	char errp[P + 16];
	struct tuf_trust t;
	struct updc_set set;
	struct updc_src local, remote;
	struct httpc_opts ho;
	struct apply_ctx ac;
	struct buf err;
	json_t *out = NULL;
	char *s = NULL;
	int rc = -1, tr = 0;

	paths(st, root, dir, applied);
	if (!agent_file_exists(root))
		return 0; /* the center hands out no update root */
	buf_init(&err, 4096);
	memset(&t, 0, sizeof(t));
	updc_set_init(&set);
	if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
		buf_printf(&err, "%s: %s", dir, strerror(errno));
		goto out;
	}
	if (updc_trust_from_file(&t, root, NULL, &err) == -1)
		goto out;
	/* What verified before: the floor (expiry no longer matters). */
	memset(&local, 0, sizeof(local));
	local.dir = dir;
	snprintf(errp, sizeof(errp), "%s/timestamp.json", dir);
	if (agent_file_exists(errp) &&
	    updc_refresh(&t, &local, 0, &set, NULL, &err) == -1) {
		log_warnx("updates: the copy verified before is refused now "
		          "(%s); starting again from the pinned root",
		          buf_cstr(&err));
		tuf_trust_free(&t);
		updc_set_free(&set);
		updc_set_init(&set);
		buf_reset(&err);
		if (updc_trust_from_file(&t, root, NULL, &err) == -1)
			goto out;
	}
	agent_load_proxy_user(st);
	agent_httpc_opts(st, 1, &ho);
	snprintf(url, sizeof(url), "%s/v1/updates/", st->server);
	memset(&remote, 0, sizeof(remote));
	remote.url = url;
	remote.http = &ho;
	buf_reset(&err);
	if (updc_refresh(&t, &remote, (long long)time(NULL), &set, &tr, &err) ==
	    -1)
		goto out;
	memset(&ac, 0, sizeof(ac));
	ac.src = &remote;
	ac.dir = dir;
	ac.err = &err;
	ac.rules = json_array();
	tuf_target_each(&t, take_rules, &ac);
	if (ac.bad) {
		json_decref(ac.rules);
		goto out;
	}
	if (updc_set_write(&set, dir, &err) == -1) {
		json_decref(ac.rules);
		goto out;
	}
	out = json_pack("{s:I, s:I, s:I, s:I, s:I, s:o}", "root",
	                (json_int_t)t.meta[TUF_ROOT].version, "timestamp",
	                (json_int_t)t.meta[TUF_TIMESTAMP].version, "snapshot",
	                (json_int_t)t.meta[TUF_SNAPSHOT].version, "targets",
	                (json_int_t)t.meta[TUF_TARGETS].version, "checked_at",
	                (json_int_t)time(NULL), "rules", ac.rules);
	if (out == NULL || (s = json_dumps(out, JSON_INDENT(1))) == NULL ||
	    tls_write_file(applied, s, strlen(s), 0644, &err) == -1)
		goto out;
	snprintf(errp, sizeof(errp), "%s/error.json", dir);
	unlink(errp);
	log_info("updates: verified from the pinned root: root v%lld, "
	         "targets v%lld, %zu rule set(s) applied",
	         t.meta[TUF_ROOT].version, t.meta[TUF_TARGETS].version,
	         json_array_size(json_object_get(out, "rules")));
	rc = 0;
out:
	if (rc == -1 && err.len > 0) {
		log_warnx("updates: %s; keeping the rule sets applied before",
		          buf_cstr(&err));
		note_error(dir, buf_cstr(&err));
	}
	free(s);
	json_decref(out);
	updc_set_free(&set);
	tuf_trust_free(&t);
	buf_free(&err);
	return rc;
}

int
agent_updates_check(struct agent_state *st)
{
	int rc;

	pthread_mutex_lock(&upd_lock);
	rc = check_locked(st);
	upd_last = (long long)time(NULL);
	pthread_mutex_unlock(&upd_lock);
	return rc;
}

int
agent_updates_due(long long interval)
{
	long long last;

	pthread_mutex_lock(&upd_lock);
	last = upd_last;
	pthread_mutex_unlock(&upd_lock);
	return last == 0 || (long long)time(NULL) - last >= interval;
}

struct fetch_ctx {
	const char *name, *sha, *kind, *platform;
	const struct updc_src *src;
	const char *dir;
	struct buf *err;
	int found, rc;
};

static void
fetch_match(const struct tuf_target *tg, void *arg)
{
	struct fetch_ctx *f = arg;
	char hex[65];

	hex_encode(tg->sha256, 32, hex);
	if (f->found || strcmp(tg->name, f->name) != 0 ||
	    strcmp(hex, f->sha) != 0 || tg->kind == NULL ||
	    strcmp(tg->kind, f->kind) != 0 || tg->platform == NULL ||
	    strcmp(tg->platform, f->platform) != 0)
		return;
	f->found = 1;
	f->rc = updc_target_fetch(f->src, tg, f->dir, f->err);
}

int
agent_updates_fetch(struct agent_state *st, const char *name, const char *sha,
                    const char *kind, const char *platform, struct buf *err)
{
	char root[P], dir[P], applied[P], url[PATH_MAX];
	struct tuf_trust t;
	struct updc_src local, remote;
	struct httpc_opts ho;
	struct fetch_ctx fc;
	int rc = -1;

	if (agent_updates_check(st) == -1) {
		buf_puts(err, "the update check failed (see above)");
		return -1;
	}
	paths(st, root, dir, applied);
	pthread_mutex_lock(&upd_lock);
	memset(&t, 0, sizeof(t));
	memset(&local, 0, sizeof(local));
	local.dir = dir;
	if (updc_trust_from_file(&t, root, NULL, err) == -1 ||
	    updc_refresh(&t, &local, 0, NULL, NULL, err) == -1)
		goto out;
	agent_httpc_opts(st, 1, &ho);
	snprintf(url, sizeof(url), "%s/v1/updates/", st->server);
	memset(&remote, 0, sizeof(remote));
	remote.url = url;
	remote.http = &ho;
	memset(&fc, 0, sizeof(fc));
	fc.name = name;
	fc.sha = sha;
	fc.kind = kind;
	fc.platform = platform;
	fc.src = &remote;
	fc.dir = dir;
	fc.err = err;
	tuf_target_each(&t, fetch_match, &fc);
	if (!fc.found)
		buf_printf(
		    err,
		    "no %s target of that SHA-256 for %s in the update "
		    "repository this agent verified from its pinned root",
		    kind, platform);
	else
		rc = fc.rc;
out:
	tuf_trust_free(&t);
	pthread_mutex_unlock(&upd_lock);
	return rc;
}

static json_t *
load_json(const char *path)
{
	json_error_t je;

	return json_load_file(path, JSON_REJECT_DUPLICATES, &je);
}

json_t *
agent_updates_report(const struct agent_state *st)
{
	char root[P], dir[P], applied[P];
	char errp[P + 16];
	json_t *a, *e, *r, *out;
	size_t i;

	paths(st, root, dir, applied);
	if (!agent_file_exists(root))
		return NULL;
	pthread_mutex_lock(&upd_lock);
	a = load_json(applied);
	snprintf(errp, sizeof(errp), "%s/error.json", dir);
	e = load_json(errp);
	pthread_mutex_unlock(&upd_lock);
	out = json_object();
	if (a != NULL) {
		static const char *const ints[] = {
		    "root", "timestamp", "snapshot", "targets", "checked_at"};

		for (i = 0; i < 5; i++)
			if (json_is_integer(json_object_get(a, ints[i])))
				json_object_set(out, ints[i],
				                json_object_get(a, ints[i]));
		r = json_array();
		json_t *x;
		json_array_foreach(json_object_get(a, "rules"), i, x)
		{
			if (i >= 256)
				break;
			json_array_append_new(
			    r, json_pack("{s:s, s:s, s:s}", "name",
			                 json_string_value(
			                     json_object_get(x, "name")),
			                 "version",
			                 json_string_value(
			                     json_object_get(x, "version")),
			                 "sha256",
			                 json_string_value(
			                     json_object_get(x, "sha256"))));
		}
		json_object_set_new(out, "rules", r);
	}
	{
		char failed[65], why[513];

		if (agent_binary_sha256() != NULL)
			json_object_set_new(out, "binary",
			                    json_string(agent_binary_sha256()));
		if (agent_upgrade_result(st, failed, why, sizeof(why)) == 0) {
			json_object_set_new(out, "upgrade_failed",
			                    json_string(failed));
			json_object_set_new(out, "upgrade_error",
			                    json_string(why));
		} else if (agent_upgrade_refusal(st, failed, why,
		                                 sizeof(why)) == 0) {
			json_object_set_new(out, "upgrade_refused",
			                    json_string(failed));
			json_object_set_new(out, "upgrade_error",
			                    json_string(why));
		}
	}
	if (e != NULL && json_is_string(json_object_get(e, "error"))) {
		char m[513];

		snprintf(m, sizeof(m), "%s",
		         json_string_value(json_object_get(e, "error")));
		for (char *p = m; *p; p++)
			if ((unsigned char)*p < 0x20)
				*p = ' ';
		json_object_set_new(out, "error", json_string(m));
	}
	json_decref(a);
	json_decref(e);
	return out;
}

int
agent_updates_rules(struct agent_state *st, const char *sha, struct buf *out)
{
	char root[P], dir[P], applied[P];
	char p[P + 80];
	struct buf err;
	json_t *a, *x;
	size_t i;
	int found = 0, rc = -1;

	paths(st, root, dir, applied);
	pthread_mutex_lock(&upd_lock);
	if ((a = load_json(applied)) != NULL)
		json_array_foreach(json_object_get(a, "rules"), i, x)
		{
			const char *h =
			    json_string_value(json_object_get(x, "sha256"));

			if (h != NULL && strcmp(h, sha) == 0)
				found = 1;
		}
	json_decref(a);
	if (found) {
		uint8_t md[32];
		unsigned int n = sizeof(md);
		char got[65];

		buf_init(&err, 512);
		snprintf(p, sizeof(p), "%s/targets/%s", dir, sha);
		buf_reset(out);
		if (tls_read_file(p, 256u << 20, out, &err) == 0) {
			EVP_Digest(out->data, out->len, md, &n, EVP_sha256(),
			           NULL);
			hex_encode(md, sizeof(md), got);
			rc = strcmp(got, sha) == 0 ? 0 : -1;
		}
		buf_free(&err);
	}
	pthread_mutex_unlock(&upd_lock);
	return rc;
}
