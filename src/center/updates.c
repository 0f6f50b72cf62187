/*
 * updates.c: the center as a mirror of a signed update repository
 * (docs/updates.md, "The center as mirror").
 *
 * One thread keeps the mirror: every [updates] interval (or when an
 * operator asks, POST /api/v1/updates/refresh) it reads the upstream
 * repository over HTTPS (httpc: the configured CA only, an optional
 * client certificate, an optional HTTP CONNECT proxy with Basic auth) or,
 * without an upstream, the directory that `vigilctl update import`
 * fills. Everything goes through tuf.c's checks (updc.c) from the pinned
 * root, on top of the state served so far (so an older upstream is a
 * rollback), and every artifact is fetched and checked before anything
 * changes. Only then is the new state written to the repository
 * directory and swapped in; a refused refresh leaves the served state as
 * it was and says why (GET /api/v1/updates, the log).
 *
 * Agents read the served state on the gateway (GET /v1/updates/NAME, a
 * client certificate required) and, when [updates] listen is set, on a
 * listener of its own (default port 18443). Metadata is served from the
 * bytes that verified (memory), artifacts only when the verified targets
 * name their hash. Agents check all of it again from the root they
 * pinned at enrollment: the center is a mirror, not a trust anchor.
 *
 * Rule sets that arrive (kind "rules") become the center's rule sets on
 * the event loop (updates_apply_rules): each version is kept in
 * ruleset_versions, the current one in rulesets (source 'update') unless
 * an operator pinned another (PUT /api/v1/rule-pins/NAME), and each
 * change is an audit entry by "update".
 */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "center.h"
#include "httpc.h"
#include "intelc.h"
#include "metrics.h"
#include "pki.h"
#include "schema.h"
#include "scan.h"
#include "tls.h"
#include "updc.h"

#define C(r) ((struct center *)(r)->arg)

/* One verified state as served; replaced whole, freed when unused. */
struct upd_view {
	int refs;
	struct updc_set set; /* roots newer than the anchor, and the rest */
	json_t *targets;     /* [{name, kind, version, platform, length,
	                        sha256}] */
	long long verified_at;
	long long expires[TUF_NROLES];
};

struct updates {
	struct center *c;
	pthread_t thr;
	int started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int stop, kick;
	struct upd_view *view; /* under lock */
	struct buf anchor;     /* the pinned root's bytes */
	long long anchor_version;
	char dir[3072]; /* PATH_MAX less room for targets/SHA256 */
	struct httpc_opts ho;
	char *proxy_user;
	/* Status, under lock. */
	long long attempts, last_attempt, last_ok;
	int running; /* a refresh is being made */
	char last_error[1024];
	int last_tuf;
	/* Thread to loop: a new view whose rule sets are to be applied. */
	int wake[2];
	struct event *ev_wake;
	long long applied; /* targets version whose rules were applied */
	struct http_server *srv;
	SSL_CTX *srv_ctx; /* the listener's own: its roles (updates_listen) */
	int port;
	/* Intelligence feeds by update, imported into vigil-inteld by the
	 * mirror thread (push_intel); status under lock. */
	struct intelc *push_ic; /* NULL: no [updates] intel_* credential */
	json_t *intel_pushed;   /* [{name, sha256, feed, format, at,
	                           report}] */
	char intel_error[1024];
};

static void
view_put(struct upd_view *v)
{
	if (v == NULL || --v->refs > 0)
		return;
	updc_set_free(&v->set);
	json_decref(v->targets);
	free(v);
}

/* The served view with a reference held (NULL when none). */
static struct upd_view *
view_get(struct updates *u)
{
	struct upd_view *v;

	pthread_mutex_lock(&u->lock);
	if ((v = u->view) != NULL)
		v->refs++;
	pthread_mutex_unlock(&u->lock);
	return v;
}

static void
view_release(struct updates *u, struct upd_view *v)
{
	pthread_mutex_lock(&u->lock);
	view_put(v);
	pthread_mutex_unlock(&u->lock);
}

static void
add_target(const struct tuf_target *tg, void *arg)
{
	char hex[65];

	hex_encode(tg->sha256, 32, hex);
	json_array_append_new(
	    arg, json_pack("{s:s, s:s?, s:s?, s:s?, s:I, s:s}", "name",
	                   tg->name, "kind", tg->kind, "version", tg->version,
	                   "platform", tg->platform, "length",
	                   (json_int_t)tg->length, "sha256", hex));
}

struct fetch_ctx {
	const struct updc_src *src;
	const char *dir;
	struct buf *err;
	int bad;
};

static void
fetch_one(const struct tuf_target *tg, void *arg)
{
	struct fetch_ctx *f = arg;

	if (f->bad)
		return;
	if (updc_target_fetch(f->src, tg, f->dir, f->err) == -1)
		f->bad = 1;
}

/* A source that reads a served view (to rebuild the trust state). */
static int
feed_view(struct tuf_trust *t, const struct upd_view *v, struct buf *err)
{
	struct updc_src s;
	int r;

	memset(&s, 0, sizeof(s));
	s.set = &v->set;
	r = updc_refresh(t, &s, 0, NULL, NULL, err);
	return r;
}

/*
 * One refresh: the trust state rebuilt from the anchor and the served
 * view (the floor for rollback), then the source read on top of it, every
 * artifact fetched and checked, the result written and swapped in. -1
 * with the reason in err; nothing served changes then.
 */
static int
refresh(struct updates *u, const struct updc_src *src, long long now,
        struct buf *err)
{
	struct tuf_trust t;
	struct upd_view *old = view_get(u), *nv = NULL;
	struct fetch_ctx fc;
	int rc = -1, tr = 0;

	memset(&t, 0, sizeof(t));
	if ((nv = calloc(1, sizeof(*nv))) == NULL) {
		buf_puts(err, "out of memory");
		goto out;
	}
	nv->refs = 1;
	updc_set_init(&nv->set);
	if (tuf_trust_init(&t, (const uint8_t *)u->anchor.data, u->anchor.len,
	                   err) != TUF_OK)
		goto out;
	if (old != NULL) {
		if (feed_view(&t, old, err) == -1)
			goto out;
		/* The chain served so far stays served. */
		for (size_t i = 0; i < old->set.nroots; i++) {
			struct buf *nr =
			    realloc(nv->set.roots, (i + 1) * sizeof(*nr));

			if (nr == NULL)
				goto out;
			nv->set.roots = nr;
			buf_init(&nr[i], TUF_MAX_ROOT);
			buf_append(&nr[i], old->set.roots[i].data,
			           old->set.roots[i].len);
			nv->set.nroots = i + 1;
		}
		nv->set.root_first = old->set.root_first;
	}
	buf_reset(err);
	if (updc_refresh(&t, src, now, &nv->set, &tr, err) == -1) {
		u->last_tuf = tr;
		goto out;
	}
	memset(&fc, 0, sizeof(fc));
	fc.src = src;
	fc.dir = u->dir;
	fc.err = err;
	tuf_target_each(&t, fetch_one, &fc);
	if (fc.bad)
		goto out;
	if ((src->dir == NULL || strcmp(src->dir, u->dir) != 0) &&
	    updc_set_write(&nv->set, u->dir, err) == -1)
		goto out;
	nv->targets = json_array();
	tuf_target_each(&t, add_target, nv->targets);
	nv->verified_at = now;
	for (int i = 0; i < TUF_NROLES; i++)
		nv->expires[i] = t.meta[i].expires;
	pthread_mutex_lock(&u->lock);
	view_put(u->view);
	u->view = nv;
	pthread_mutex_unlock(&u->lock);
	nv = NULL;
	rc = 0;
out:
	tuf_trust_free(&t);
	if (old != NULL)
		view_release(u, old);
	if (nv != NULL)
		view_put(nv);
	return rc;
}

static void
note(struct updates *u, int ok, const char *msg, long long now)
{
	pthread_mutex_lock(&u->lock);
	u->attempts++;
	u->running = 0;
	u->last_attempt = now;
	if (ok) {
		u->last_ok = now;
		u->last_error[0] = '\0';
		u->last_tuf = 0;
	} else
		snprintf(u->last_error, sizeof(u->last_error), "%s", msg);
	pthread_mutex_unlock(&u->lock);
}

/* ---- intelligence feeds that arrive by update (the mirror thread) ---- */

/* The client that imports into inteld: [intel] url and ca, the
 * [updates] intel_* credential (inteld's admin role), [updates] timeout
 * (an import takes longer than a lookup). */
static int
push_client(const struct center_conf *cf, struct intelc **out, struct buf *err)
{
	struct intelc_conf ic;

	*out = NULL;
	if (cf->upd_intel_cert == NULL && cf->upd_intel_api_key_file == NULL)
		return 0;
	memset(&ic, 0, sizeof(ic));
	ic.url = cf->intel.url;
	ic.ca = cf->intel.ca;
	ic.cert = cf->upd_intel_cert;
	ic.key = cf->upd_intel_key;
	ic.api_key_file = cf->upd_intel_api_key_file;
	ic.timeout = cf->upd_timeout;
	return intelc_new(&ic, out, err);
}

int
updates_intel_client(const struct center_conf *cf, struct intelc **out,
                     struct buf *err)
{
	return push_client(cf, out, err);
}

static int
pushed_already(struct updates *u, const char *name, const char *sha)
{
	size_t i;
	json_t *p;
	int yes = 0;

	pthread_mutex_lock(&u->lock);
	json_array_foreach(u->intel_pushed, i, p)
	{
		if (strcmp(json_string_value(json_object_get(p, "name")) ?: "",
		           name) == 0 &&
		    strcmp(json_string_value(json_object_get(p, "sha256"))
		               ?: "",
		           sha) == 0)
			yes = 1;
	}
	pthread_mutex_unlock(&u->lock);
	return yes;
}

/* Every intel target of the served state not yet imported (or changed
 * since) goes to inteld, from the verified copy in dir. What failed is
 * tried again at the next round; the last error is in the status. */
static void
push_intel(struct updates *u)
{
	struct upd_view *v;
	struct buf err, body;
	json_t *tg, *report;
	size_t i;
	char feed[80], path[PATH_MAX], desc[300], errmsg[1024] = "";
	int any = 0;

	if ((v = view_get(u)) == NULL)
		return;
	buf_init(&err, 1024);
	buf_init(&body, 1u << 20);
	json_array_foreach(v->targets, i, tg)
	{
		const char *name =
		    json_string_value(json_object_get(tg, "name"));
		const char *kind =
		    json_string_value(json_object_get(tg, "kind"));
		const char *sha =
		    json_string_value(json_object_get(tg, "sha256"));
		const char *fmt;

		if (name == NULL || sha == NULL || kind == NULL ||
		    strcmp(kind, "intel") != 0 || pushed_already(u, name, sha))
			continue;
		any = 1;
		if ((fmt = intelc_feed_format(name, feed, sizeof(feed))) ==
		    NULL) {
			snprintf(errmsg, sizeof(errmsg),
			         "intel target %s: name it FEED.csv, FEED.list "
			         "(or .txt) or FEED.json (STIX 2.1): its last "
			         "part names vigil-inteld's feed and format",
			         name);
			continue;
		}
		if (u->push_ic == NULL) {
			snprintf(errmsg, sizeof(errmsg),
			         "intel target %s is not imported into "
			         "vigil-inteld: set [intel] url and [updates] "
			         "intel_cert (a certificate of role update) or "
			         "intel_api_key_file",
			         name);
			continue;
		}
		snprintf(path, sizeof(path), "%s/targets/%s", u->dir, sha);
		snprintf(
		    desc, sizeof(desc), "by signed update: %.200s %.40s", name,
		    json_string_value(json_object_get(tg, "version")) ?: "");
		buf_reset(&err);
		buf_reset(&body);
		report = NULL;
		if (tls_read_file(path, 1u << 30, &body, &err) == -1 ||
		    intelc_feed_import(u->push_ic, feed, desc, fmt, body.data,
		                       body.len, &report, &err) == -1) {
			snprintf(errmsg, sizeof(errmsg), "intel target %s: %s",
			         name, buf_cstr(&err));
			log_warnx("updates: %s; tried again at the next check",
			          errmsg);
			continue;
		}
		log_info("updates: intel target %s imported into "
		         "vigil-inteld's feed %s (%s)",
		         name, feed, fmt);
		pthread_mutex_lock(&u->lock);
		/* One entry per target name: the newest import. */
		for (size_t k = json_array_size(u->intel_pushed); k-- > 0;)
			if (strcmp(
			        json_string_value(json_object_get(
			            json_array_get(u->intel_pushed, k), "name"))
			            ?: "",
			        name) == 0)
				json_array_remove(u->intel_pushed, k);
		json_array_append_new(
		    u->intel_pushed,
		    json_pack("{s:s, s:s, s:s, s:s, s:I, s:o}", "name", name,
		              "sha256", sha, "feed", feed, "format", fmt, "at",
		              (json_int_t)time(NULL), "report",
		              report != NULL ? report : json_null()));
		pthread_mutex_unlock(&u->lock);
	}
	if (any) {
		pthread_mutex_lock(&u->lock);
		snprintf(u->intel_error, sizeof(u->intel_error), "%s", errmsg);
		pthread_mutex_unlock(&u->lock);
	}
	buf_free(&body);
	buf_free(&err);
	view_release(u, v);
}

static void *
mirror_main(void *arg)
{
	struct updates *u = arg;
	struct center *c = u->c;
	struct updc_src local, up;
	struct buf err;
	long long now;
	struct timespec ts;
	int first = 1;

	buf_init(&err, 4096);
	memset(&local, 0, sizeof(local));
	local.dir = u->dir;
	memset(&up, 0, sizeof(up));
	up.url = c->conf.upd_upstream;
	up.http = &u->ho;
	for (;;) {
		now = (long long)time(NULL);
		buf_reset(&err);
		pthread_mutex_lock(&u->lock);
		u->running = 1;
		pthread_mutex_unlock(&u->lock);
		if (first) {
			/* What was verified before a restart: the floor. */
			if (refresh(u, &local, now, &err) == 0) {
				log_info("updates: %s: serving the verified "
				         "repository (targets v%lld)",
				         u->dir,
				         u->view->set.version[TUF_TARGETS]);
				if (write(u->wake[1], "x", 1) == -1)
					log_warn("updates: wake");
			} else if (u->last_tuf == TUF_E_EXPIRED) {
				buf_reset(&err);
				if (refresh(u, &local, 0, &err) == 0)
					log_warnx(
					    "updates: %s has expired "
					    "metadata; served until a "
					    "newer verifies (agents refuse "
					    "it meanwhile)",
					    u->dir);
			} else if (c->conf.upd_upstream == NULL)
				log_warnx("updates: %s: %s", u->dir,
				          buf_cstr(&err));
			first = 0;
			if (c->conf.upd_upstream == NULL) {
				note(u, u->view != NULL, buf_cstr(&err), now);
				goto wait;
			}
			buf_reset(&err);
		}
		if (refresh(u, c->conf.upd_upstream ? &up : &local, now,
		            &err) == 0) {
			note(u, 1, NULL, now);
			log_info("updates: %s verified: root v%lld, timestamp "
			         "v%lld, snapshot v%lld, targets v%lld",
			         c->conf.upd_upstream ? c->conf.upd_upstream
			                              : u->dir,
			         u->view->set.version[TUF_ROOT],
			         u->view->set.version[TUF_TIMESTAMP],
			         u->view->set.version[TUF_SNAPSHOT],
			         u->view->set.version[TUF_TARGETS]);
			if (write(u->wake[1], "x", 1) == -1)
				log_warn("updates: wake");
		} else {
			note(u, 0, buf_cstr(&err), now);
			log_warnx("updates: %s: %s; still serving the state "
			          "verified before",
			          c->conf.upd_upstream ? c->conf.upd_upstream
			                               : u->dir,
			          buf_cstr(&err));
		}
	wait:
		push_intel(u);
		pthread_mutex_lock(&u->lock);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += c->conf.upd_interval;
		while (!u->stop && !u->kick)
			if (pthread_cond_timedwait(&u->cond, &u->lock, &ts) ==
			    ETIMEDOUT)
				break;
		u->kick = 0;
		if (u->stop) {
			pthread_mutex_unlock(&u->lock);
			break;
		}
		pthread_mutex_unlock(&u->lock);
	}
	buf_free(&err);
	return NULL;
}

/* ---- rule sets that arrive by update (on the loop) ---- */

/* The rule set name and format of a target: its last path part, yara for
 * .yar/.yara, ioc for .ioc; NULL when it is neither. */
static const char *
rule_format(const char *tname, const char **base)
{
	const char *b = strrchr(tname, '/'), *dot;

	*base = b != NULL ? b + 1 : tname;
	if ((dot = strrchr(*base, '.')) == NULL)
		return NULL;
	if (strcmp(dot, ".yar") == 0 || strcmp(dot, ".yara") == 0)
		return "yara";
	if (strcmp(dot, ".ioc") == 0)
		return "ioc";
	return NULL;
}

static void
audit_update(struct center *c, const char *action, const char *target,
             json_t *before, json_t *after, const char *error)
{
	struct audit_entry a;

	memset(&a, 0, sizeof(a));
	a.who = "update";
	a.addr = "-";
	a.action = action;
	a.target = target;
	a.status = error ? 409 : 200;
	a.before = before;
	a.after = after;
	a.error = error;
	audit_append(c, &a);
}

/* Makes the rule set name current at version (from ruleset_versions),
 * source 'update'; pinned is the pin to record (or NULL). 0, or -1. */
static int
make_current(struct center *c, const char *name, const char *version,
             const char *pinned, const char *who)
{
	struct store_rows *q;
	char *id = NULL, *kind = NULL, *content = NULL;
	long long size = 0;
	json_t *before = NULL, *after;
	int rc = -1;

	q = store_query(c->store,
	                "SELECT id, kind, content, size FROM ruleset_versions "
	                "WHERE name = ? AND version = ?",
	                S_TEXT(name), S_TEXT(version));
	if (q != NULL && store_next(q) == 1) {
		id = strdup(store_text(q, 0));
		kind = strdup(store_text(q, 1));
		content = strdup(store_text(q, 2));
		size = store_int(q, 3);
	}
	store_done(q);
	if (id == NULL || kind == NULL || content == NULL)
		goto out;
	q = store_query(c->store,
	                "SELECT id, version, pinned FROM rulesets WHERE "
	                "name = ?",
	                S_TEXT(name));
	if (q != NULL && store_next(q) == 1)
		before = json_pack("{s:s, s:s?, s:s?}", "id", store_text(q, 0),
		                   "version", store_text(q, 1), "pinned",
		                   store_text(q, 2));
	store_done(q);
	if (store_begin(c->store) == -1)
		goto out;
	if (store_exec(c->store, "DELETE FROM rulesets WHERE name = ?",
	               S_TEXT(name)) < 0 ||
	    store_exec(c->store,
	               "INSERT INTO rulesets (id, name, kind, content, size, "
	               "created_at, source, version, pinned) VALUES (?, ?, ?, "
	               "?, ?, ?, 'update', ?, ?)",
	               S_TEXT(id), S_TEXT(name), S_TEXT(kind), S_TEXT(content),
	               S_INT(size), S_INT(time(NULL)), S_TEXT(version),
	               S_TEXT(pinned)) != 1) {
		store_rollback(c->store);
		goto out;
	}
	after = json_pack("{s:s, s:s, s:s?}", "id", id, "version", version,
	                  "pinned", pinned);
	if (who == NULL)
		audit_update(c, "rules.update", name, before, after, NULL);
	json_decref(after);
	if (store_commit(c->store) == -1) {
		store_rollback(c->store);
		goto out;
	}
	log_info("rules: %s rule set %s is now version %s (%s)%s", kind, name,
	         version, id, pinned ? " (pinned)" : "");
	rc = 0;
out:
	json_decref(before);
	free(id);
	free(kind);
	free(content);
	return rc;
}

static void
apply_rule_target(struct updates *u, json_t *tg)
{
	struct center *c = u->c;
	const char *tname = json_string_value(json_object_get(tg, "name"));
	const char *ver = json_string_value(json_object_get(tg, "version"));
	const char *sha = json_string_value(json_object_get(tg, "sha256"));
	const char *base, *fmt = rule_format(tname, &base);
	struct store_rows *q;
	struct buf content, err;
	char path[PATH_MAX], why[600];
	int have = 0, pinned = 0, admin_made = 0, current = 0;

	if (ver == NULL)
		ver = sha;
	if (fmt == NULL || strlen(base) > 64) {
		snprintf(why, sizeof(why),
		         "%s: not a rule set name the center takes (NAME.yar, "
		         "NAME.yara or NAME.ioc, at most 64 characters)",
		         tname);
		log_warnx("updates: %s", why);
		return;
	}
	q = store_query(c->store,
	                "SELECT 1 FROM ruleset_versions WHERE name = ? AND "
	                "version = ? AND id = ?",
	                S_TEXT(base), S_TEXT(ver), S_TEXT(sha));
	have = q != NULL && store_next(q) == 1;
	store_done(q);
	q = store_query(
	    c->store, "SELECT source, pinned, id FROM rulesets WHERE name = ?",
	    S_TEXT(base));
	if (q != NULL && store_next(q) == 1) {
		admin_made = store_isnull(q, 0) ||
		             strcmp(store_text(q, 0), "update") != 0;
		pinned = !store_isnull(q, 1);
		current = strcmp(store_text(q, 2), sha) == 0;
	}
	store_done(q);
	if (admin_made) {
		snprintf(why, sizeof(why),
		         "rule set %s arrived by update (version %s) but an "
		         "operator's rule set has that name; not replaced",
		         base, ver);
		if (!have)
			log_warnx("updates: %s", why);
		return;
	}
	if (!have) {
		buf_init(&content, 256u << 20);
		buf_init(&err, 4096);
		snprintf(path, sizeof(path), "%s/targets/%s", u->dir, sha);
		if (tls_read_file(path, 256u << 20, &content, &err) == -1 ||
		    (strcmp(fmt, "yara") == 0
		         ? scan_rules_check((const char *)content.data,
		                            content.len, &err)
		         : scan_ioc_check((const char *)content.data,
		                          content.len, &err)) == -1 ||
		    memchr(content.data, '\0', content.len) != NULL) {
			snprintf(why, sizeof(why), "%.500s", buf_cstr(&err));
			log_warnx("updates: rule set %s version %s refused: %s",
			          base, ver, why);
			audit_update(c, "rules.update", base, NULL, NULL, why);
			buf_free(&content);
			buf_free(&err);
			return;
		}
		buf_append(&content, "", 1);
		if (store_exec(c->store,
		               "INSERT INTO ruleset_versions (name, version, "
		               "id, kind, content, size, received_at, target) "
		               "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
		               S_TEXT(base), S_TEXT(ver), S_TEXT(sha),
		               S_TEXT(fmt), S_TEXT((const char *)content.data),
		               S_INT(content.len - 1), S_INT(time(NULL)),
		               S_TEXT(tname)) != 1)
			log_warnx("updates: rule set %s version %s: %s", base,
			          ver, store_last_error(c->store));
		buf_free(&content);
		buf_free(&err);
	}
	if (!pinned && !current)
		make_current(c, base, ver, NULL, NULL);
}

static void
on_wake(evutil_socket_t fd, short ev, void *arg)
{
	struct updates *u = arg;
	struct upd_view *v;
	char b[64];
	size_t i;
	json_t *tg;

	(void)ev;
	while (read(fd, b, sizeof(b)) > 0)
		;
	if ((v = view_get(u)) == NULL)
		return;
	if (v->set.version[TUF_TARGETS] != u->applied) {
		json_array_foreach(v->targets, i, tg)
		{
			const char *k =
			    json_string_value(json_object_get(tg, "kind"));

			if (k != NULL && strcmp(k, "rules") == 0)
				apply_rule_target(u, tg);
		}
		u->applied = v->set.version[TUF_TARGETS];
	}
	view_release(u, v);
}

/* ---- serving ---- */

static int
hex64(const char *s)
{
	size_t i;

	for (i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		      (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return s[64] == '\0';
}

/* GET /v1/updates/NAME: N.root.json, root.json, timestamp.json,
 * snapshot.json, targets.json, targets/SHA256. */
static void
gw_updates(struct http_req *r)
{
	struct center *c = C(r);
	struct updates *u = c->upd;
	struct upd_view *v;
	const struct buf *b = NULL;
	const char *n = r->rest;
	char *end;
	long long ver;

	if (u == NULL) {
		http_reply_error(r, 404, "not_found",
		                 "this center mirrors no update repository");
		return;
	}
	if ((v = view_get(u)) == NULL) {
		http_reply_error(r, 404, "not_found",
		                 "no verified update repository yet");
		return;
	}
	if (strcmp(n, "timestamp.json") == 0)
		b = &v->set.timestamp;
	else if (strcmp(n, "snapshot.json") == 0)
		b = &v->set.snapshot;
	else if (strcmp(n, "targets.json") == 0)
		b = &v->set.targets;
	else if (strcmp(n, "root.json") == 0)
		b = v->set.nroots ? &v->set.roots[v->set.nroots - 1]
		                  : &u->anchor;
	else if (n[0] >= '1' && n[0] <= '9' &&
	         (ver = strtoll(n, &end, 10)) > 0 &&
	         strcmp(end, ".root.json") == 0) {
		if (ver == u->anchor_version)
			b = &u->anchor;
		else if (v->set.nroots > 0 && ver >= v->set.root_first &&
		         ver < v->set.root_first + (long long)v->set.nroots)
			b = &v->set.roots[ver - v->set.root_first];
	} else if (strncmp(n, "targets/", 8) == 0 && hex64(n + 8)) {
		size_t i;
		json_t *tg;
		int known = 0;

		json_array_foreach(v->targets, i, tg)
		{
			if (strcmp(json_string_value(
			               json_object_get(tg, "sha256")),
			           n + 8) == 0)
				known = 1;
		}
		if (known) {
			char p[PATH_MAX];
			struct stat st;
			int fd;

			snprintf(p, sizeof(p), "%s/%s", u->dir, n);
			if ((fd = open(p, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) !=
			        -1 &&
			    fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
				view_release(u, v);
				http_reply_file(r, 200,
				                "application/octet-stream", fd,
				                (size_t)st.st_size);
				return;
			}
			if (fd != -1)
				close(fd);
		}
	}
	if (b == NULL) {
		view_release(u, v);
		http_reply_error(r, 404, "not_found", "no %.80s here", n);
		return;
	}
	http_reply_text(r, 200, "application/json", b->data, b->len);
	view_release(u, v);
}

const struct http_route updates_gateway_routes[] = {
    {"GET", "/v1/updates/", gw_updates, HTTP_ROUTE_CERT | HTTP_ROUTE_PREFIX,
     "updates", 1024},
    {NULL, NULL, NULL, 0, NULL, 0, 0},
};

/* ---- admin ---- */

static json_t *
status_json(struct center *c)
{
	struct updates *u = c->upd;
	struct upd_view *v;
	json_t *o, *served = json_null();
	char up[512] = "", t[21];
	struct store_rows *q;
	long long noroot = -1;

	if (u == NULL)
		return json_pack("{s:b}", "enabled", 0);
	if ((v = view_get(u)) != NULL) {
		json_t *roles = json_object();

		for (int i = 0; i < TUF_NROLES; i++) {
			tuf_format_time(v->expires[i], t);
			json_object_set_new(
			    roles, tuf_role_name(i),
			    json_pack("{s:I, s:s}", "version",
			              (json_int_t)v->set.version[i], "expires",
			              t));
		}
		served = json_pack("{s:o, s:I, s:O}", "roles", roles,
		                   "verified_at", (json_int_t)v->verified_at,
		                   "targets", v->targets);
		view_release(u, v);
	}
	if (c->conf.upd_upstream != NULL)
		snprintf(up, sizeof(up), "%s", c->conf.upd_upstream);
	/* Agents that take no updates: they pinned no root (enrolled before
	 * [updates] root was set; vigil-agent pin-root) and so report none. */
	if ((q = store_query(c->store,
	                     "SELECT COUNT(*) FROM agents WHERE status = "
	                     "'active' AND updates IS NULL")) != NULL) {
		if (store_next(q) == 1)
			noroot = store_int(q, 0);
		store_done(q);
	}
	pthread_mutex_lock(&u->lock);
	o = json_pack(
	    "{s:b, s:s, s:s?, s:s, s:I, s:o, s:I, s:I, s:I, s:s?, "
	    "s:s?, s:i}",
	    "enabled", 1, "mode", c->conf.upd_upstream ? "upstream" : "import",
	    "upstream", c->conf.upd_upstream ? up : NULL, "dir", u->dir,
	    "anchor_version", (json_int_t)u->anchor_version, "served", served,
	    "attempts", (json_int_t)u->attempts, "last_attempt",
	    (json_int_t)u->last_attempt, "last_ok", (json_int_t)u->last_ok,
	    "last_error", u->last_error[0] ? u->last_error : NULL, "last_check",
	    u->last_tuf ? tuf_err_name(u->last_tuf) : NULL, "listener_port",
	    u->srv ? u->port : -1);
	json_object_set_new(
	    o, "intel",
	    json_pack("{s:b, s:O, s:s?}", "enabled", u->push_ic != NULL,
	              "imported", u->intel_pushed, "error",
	              u->intel_error[0] ? u->intel_error : NULL));
	pthread_mutex_unlock(&u->lock);
	json_object_set_new(o, "agents_without_root",
	                    noroot >= 0 ? json_integer(noroot) : json_null());
	return o;
}

static void
adm_updates(struct http_req *r)
{
	if (admin_authorize(r) == -1)
		return;
	http_reply_json(r, 200, status_json(C(r)));
}

static void
adm_updates_refresh(struct http_req *r)
{
	struct updates *u = C(r)->upd;
	long long n;

	if (admin_authorize(r) == -1 || schema_no_body(r) == -1)
		return;
	if (u == NULL) {
		http_reply_error(r, 409, "not_configured",
		                 "no [updates] root in the configuration: this "
		                 "center mirrors no update repository");
		return;
	}
	pthread_mutex_lock(&u->lock);
	/* The refresh asked for is done when attempts reaches n: one
	 * being made now may have read the upstream before this request. */
	n = u->attempts + (u->running ? 2 : 1);
	u->kick = 1;
	pthread_cond_signal(&u->cond);
	pthread_mutex_unlock(&u->lock);
	http_reply_json(
	    r, 202,
	    json_pack("{s:b, s:I}", "queued", 1, "done_at", (json_int_t)n));
}

/* PUT /api/v1/rule-pins/NAME {"version"} */
static const struct schema_field pin_schema[] = {
    {"version", SCH_STRING, 1},
    {NULL, 0, 0},
};

static void
adm_pin(struct http_req *r)
{
	struct center *c = C(r);
	json_t *body;
	const char *ver;
	struct store_rows *q;
	int have;

	if (admin_authorize(r) == -1)
		return;
	if ((body = schema_body(r, pin_schema)) == NULL)
		return;
	ver = json_string_value(json_object_get(body, "version"));
	q = store_query(c->store,
	                "SELECT 1 FROM ruleset_versions WHERE name = ? AND "
	                "version = ?",
	                S_TEXT(r->rest), S_TEXT(ver));
	have = q != NULL && store_next(q) == 1;
	store_done(q);
	if (!have) {
		http_reply_error(
		    r, 404, "not_found",
		    "no version %.64s of rule set %.64s arrived by "
		    "update (see vigilctl rules versions)",
		    ver, r->rest);
		goto out;
	}
	audit_before_row(r,
	                 "SELECT name, id, version, pinned FROM rulesets "
	                 "WHERE name = ?",
	                 r->rest);
	if (make_current(c, r->rest, ver, ver, r->who) == -1) {
		http_reply_error(r, 503, "store_busy", "store busy; retry");
		goto out;
	}
	http_reply_json(
	    r, 200, json_pack("{s:s, s:s}", "name", r->rest, "pinned", ver));
out:
	json_decref(body);
}

static void
adm_unpin(struct http_req *r)
{
	struct center *c = C(r);
	struct updates *u = c->upd;
	struct store_rows *q;
	char *ver = NULL;

	if (admin_authorize(r) == -1 || schema_no_body(r) == -1)
		return;
	audit_before_row(r,
	                 "SELECT name, id, version, pinned FROM rulesets "
	                 "WHERE name = ?",
	                 r->rest);
	if (store_exec(c->store,
	               "UPDATE rulesets SET pinned = NULL WHERE name = ? AND "
	               "pinned IS NOT NULL",
	               S_TEXT(r->rest)) != 1) {
		http_reply_error(r, 404, "not_found",
		                 "rule set %.64s is not pinned", r->rest);
		return;
	}
	/* Back to what the repository says now. */
	if (u != NULL) {
		struct upd_view *v = view_get(u);
		size_t i;
		json_t *tg;

		json_array_foreach(v ? v->targets : NULL, i, tg)
		{
			const char *base,
			    *tn =
			        json_string_value(json_object_get(tg, "name"));

			if (rule_format(tn, &base) != NULL &&
			    strcmp(base, r->rest) == 0)
				ver = strdup(json_string_value(
				    json_object_get(tg, "version")));
		}
		if (v != NULL)
			view_release(u, v);
	}
	if (ver == NULL) {
		q = store_query(
		    c->store,
		    "SELECT version FROM ruleset_versions WHERE "
		    "name = ? ORDER BY received_at DESC, version DESC "
		    "LIMIT 1",
		    S_TEXT(r->rest));
		if (q != NULL && store_next(q) == 1)
			ver = strdup(store_text(q, 0));
		store_done(q);
	}
	if (ver != NULL)
		make_current(c, r->rest, ver, NULL, r->who);
	http_reply_json(
	    r, 200, json_pack("{s:s, s:s?}", "name", r->rest, "version", ver));
	free(ver);
}

static void
adm_rule_versions(struct http_req *r)
{
	struct store_rows *q;
	const char *name = http_req_query(r, "name");
	json_t *items = json_array();

	if (admin_authorize(r) == -1) {
		json_decref(items);
		return;
	}
#define RV_SQL                                                                 \
	"SELECT v.name, v.version, v.id, v.kind, v.size, v.received_at, "      \
	"v.target, CASE WHEN s.id = v.id THEN 1 ELSE 0 END, s.pinned FROM "    \
	"ruleset_versions v LEFT JOIN rulesets s ON s.name = v.name "
	if (name != NULL)
		q = store_query(C(r)->store,
		                RV_SQL "WHERE v.name = ? ORDER BY v.name, "
		                       "v.received_at",
		                S_TEXT(name));
	else
		q = store_query(C(r)->store,
		                RV_SQL "ORDER BY v.name, v.received_at");
#undef RV_SQL
	while (q != NULL && store_next(q) == 1)
		json_array_append_new(
		    items,
		    json_pack(
		        "{s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:b, s:b}", "name",
		        store_text(q, 0), "version", store_text(q, 1), "id",
		        store_text(q, 2), "kind", store_text(q, 3), "size",
		        (json_int_t)store_int(q, 4), "received_at",
		        (json_int_t)store_int(q, 5), "target", store_text(q, 6),
		        "current", !store_isnull(q, 7) && store_int(q, 7) != 0,
		        "pinned",
		        !store_isnull(q, 8) &&
		            strcmp(store_text(q, 8), store_text(q, 1)) == 0));
	store_done(q);
	http_reply_json(r, 200, json_pack("{s:o}", "items", items));
}

const struct http_route updates_admin_routes[] = {
    {"GET", "/api/v1/updates", adm_updates, 0, "updates", 0, ROLE_READONLY},
    {"POST", "/api/v1/updates/refresh", adm_updates_refresh, 0,
     "updates_refresh", 0, ROLE_OPERATOR},
    {"GET", "/api/v1/rule-versions", adm_rule_versions, 0, "rule_versions", 0,
     ROLE_READONLY},
    {"PUT", "/api/v1/rule-pins/", adm_pin, HTTP_ROUTE_PREFIX, "rule_pin", 0,
     ROLE_OPERATOR},
    {"DELETE", "/api/v1/rule-pins/", adm_unpin, HTTP_ROUTE_PREFIX, "rule_pin",
     0, ROLE_OPERATOR},
    {NULL, NULL, NULL, 0, NULL, 0, 0},
};

/* ---- life ---- */

const char *
updates_anchor(struct center *c)
{
	return c->upd != NULL ? (const char *)c->upd->anchor.data : NULL;
}

json_t *
updates_target(struct center *c, const char *name)
{
	struct upd_view *v;
	json_t *tg, *out = NULL;
	size_t i;

	if (c->upd == NULL || (v = view_get(c->upd)) == NULL)
		return NULL;
	json_array_foreach(v->targets, i, tg)
	{
		if (strcmp(json_string_value(json_object_get(tg, "name")),
		           name) == 0)
			out = json_deep_copy(tg);
	}
	view_release(c->upd, v);
	return out;
}

static int
load_proxy_user(const char *file, char **out, struct buf *err)
{
	struct buf raw;
	size_t n;
	int rc = -1;

	buf_init(&raw, 4096);
	if (tls_check_key_perms(file, err) == -1 ||
	    tls_read_file(file, 4096, &raw, err) == -1)
		goto out;
	n = raw.len;
	while (n > 0 && (raw.data[n - 1] == '\n' || raw.data[n - 1] == '\r'))
		n--;
	if (n == 0 || memchr(raw.data, ':', n) == NULL ||
	    memchr(raw.data, '\n', n) != NULL) {
		buf_printf(err, "%s must hold one line user:password", file);
		goto out;
	}
	if ((*out = strndup((const char *)raw.data, n)) == NULL) {
		buf_puts(err, "out of memory");
		goto out;
	}
	rc = 0;
out:
	if (raw.data != NULL)
		explicit_bzero(raw.data, raw.cap);
	buf_free(&raw);
	return rc;
}

/* The checks of `vigild -n` for [updates]; the number of errors. */
int
updates_check(const struct center_conf *cf)
{
	struct tuf_trust t;
	struct buf err;
	char *pu = NULL, perr[512];
	int n = 0;

	if (cf->upd_root == NULL) {
		if (cf->upd_upstream != NULL) {
			log_warnx(
			    "check: [updates] upstream is set but root is "
			    "not: give the root.json this center trusts");
			n++;
		}
		return n;
	}
	buf_init(&err, 2048);
	memset(&t, 0, sizeof(t));
	if (updc_trust_from_file(&t, cf->upd_root, NULL, &err) == -1) {
		log_warnx("check: [updates] root: %s", buf_cstr(&err));
		n++;
	}
	tuf_trust_free(&t);
	if (cf->upd_upstream != NULL) {
		if (strncmp(cf->upd_upstream, "https://", 8) != 0 ||
		    cf->upd_upstream[strlen(cf->upd_upstream) - 1] != '/') {
			log_warnx("check: [updates] upstream: %s: must be an "
			          "https:// URL ending in '/'",
			          cf->upd_upstream);
			n++;
		}
		if (cf->upd_ca == NULL) {
			log_warnx("check: [updates] upstream needs ca (the CA "
			          "file that signed the upstream's "
			          "certificate; the system store is never "
			          "used)");
			n++;
		}
	}
	if ((cf->upd_cert == NULL) != (cf->upd_key == NULL)) {
		log_warnx("check: [updates] cert and key go together");
		n++;
	}
	if ((cf->upd_intel_cert == NULL) != (cf->upd_intel_key == NULL)) {
		log_warnx("check: [updates] intel_cert and intel_key go "
		          "together");
		n++;
	}
	if ((cf->upd_intel_cert != NULL ||
	     cf->upd_intel_api_key_file != NULL) &&
	    cf->intel.url == NULL) {
		log_warnx("check: [updates] intel_cert / intel_api_key_file "
		          "import feeds into vigil-inteld: set [intel] url "
		          "(and ca)");
		n++;
	} else if (cf->upd_intel_cert != NULL ||
	           cf->upd_intel_api_key_file != NULL) {
		struct intelc *ic = NULL;

		buf_reset(&err);
		if (push_client(cf, &ic, &err) == -1) {
			log_warnx("check: [updates] intel_*: %s",
			          buf_cstr(&err));
			n++;
		}
		intelc_free(ic);
	}
	if (cf->upd_proxy != NULL &&
	    httpc_proxy_check(cf->upd_proxy, perr, sizeof(perr)) == -1) {
		log_warnx("check: [updates] proxy: %s", perr);
		n++;
	}
	if (cf->upd_proxy_user_file != NULL) {
		buf_reset(&err);
		if (load_proxy_user(cf->upd_proxy_user_file, &pu, &err) == -1) {
			log_warnx("check: [updates] proxy_user_file: %s",
			          buf_cstr(&err));
			n++;
		}
		if (pu != NULL) {
			explicit_bzero(pu, strlen(pu));
			free(pu);
		}
	}
	buf_free(&err);
	return n;
}

int
updates_start(struct center *c, struct buf *err)
{
	struct updates *u;
	struct tuf_trust t;

	if (c->conf.upd_root == NULL)
		return 0;
	if (updates_check(&c->conf) > 0) {
		buf_puts(err, "see the checks above");
		return -1;
	}
	if ((u = calloc(1, sizeof(*u))) == NULL)
		fatalx("%s: out of memory", __func__);
	u->c = c;
	u->wake[0] = u->wake[1] = -1;
	pthread_mutex_init(&u->lock, NULL);
	pthread_cond_init(&u->cond, NULL);
	buf_init(&u->anchor, TUF_MAX_ROOT + 1);
	c->upd = u;
	memset(&t, 0, sizeof(t));
	if (updc_trust_from_file(&t, c->conf.upd_root, &u->anchor, err) == -1)
		return -1;
	u->anchor_version = t.meta[TUF_ROOT].version;
	tuf_trust_free(&t);
	buf_append(&u->anchor, "", 1); /* a C string for enrollment */
	u->anchor.len--;
	if (c->conf.upd_dir != NULL && c->conf.upd_dir[0] != '\0')
		snprintf(u->dir, sizeof(u->dir), "%s", c->conf.upd_dir);
	else
		snprintf(u->dir, sizeof(u->dir), "%s/updates",
		         c->conf.data_dir);
	if (c->conf.upd_proxy_user_file != NULL &&
	    load_proxy_user(c->conf.upd_proxy_user_file, &u->proxy_user, err) ==
	        -1)
		return -1;
	if (push_client(&c->conf, &u->push_ic, err) == -1)
		return -1;
	u->intel_pushed = json_array();
	u->ho.ca_file = c->conf.upd_ca;
	u->ho.cert_file = c->conf.upd_cert;
	u->ho.key_file = c->conf.upd_key;
	u->ho.proxy = c->conf.upd_proxy;
	u->ho.proxy_user = u->proxy_user;
	u->ho.timeout_secs = c->conf.upd_timeout;
	if (c->conf.upd_upstream != NULL && httpc_global_init() == -1) {
		buf_puts(err, "cannot initialise libcurl");
		return -1;
	}
	return 0;
}

/* After the privileges are dropped: the directory (owned by the user the
 * center runs as) and the mirror thread. */
int
updates_run(struct center *c, struct buf *err)
{
	struct updates *u = c->upd;

	if (u == NULL)
		return 0;
	if (mkdir(u->dir, 0755) == -1 && errno != EEXIST) {
		buf_printf(err, "dir %s: %s", u->dir, strerror(errno));
		return -1;
	}
	if (pipe2(u->wake, O_NONBLOCK | O_CLOEXEC) == -1) {
		buf_printf(err, "pipe: %s", strerror(errno));
		return -1;
	}
	if ((u->ev_wake = event_new(c->base, u->wake[0], EV_READ | EV_PERSIST,
	                            on_wake, u)) == NULL ||
	    event_add(u->ev_wake, NULL) == -1)
		fatalx("%s: event", __func__);
	if (pthread_create(&u->thr, NULL, mirror_main, u) != 0) {
		buf_puts(err, "cannot start the mirror thread");
		return -1;
	}
	u->started = 1;
	return 0;
}

/* An agent's certificate is checked against the center's records, as on
 * the gateway: revoked, or unknown to this center, it is refused in the
 * handshake. A center's certificate (vigilctl pki issue, offline) is in
 * no center's records; its role was checked before this is called. */
static int
listener_revoked(X509 *leaf, void *arg)
{
	struct center *c = arg;
	char *serial;
	int rc;

	if (pki_cert_role(leaf) == PKI_ROLE_CENTER)
		return 0;
	if ((serial = tls_serial_hex(leaf)) == NULL)
		return 1;
	rc = c->store != NULL ? db_is_revoked(c->store, serial) : 0;
	free(serial);
	return rc;
}

/*
 * The listener of its own, with the gateway's limits and a TLS context of
 * its own: a client certificate of the deployment CA is required and its
 * role must be one that fetches updates (docs/pki.md, "Who accepts
 * whom"): agent (and an agent certificate from before roles), or center,
 * a downstream center mirroring this one. Any other role fails the
 * handshake (wrong_role, logged and counted).
 */
int
updates_listen(struct center *c, const struct http_limits *l, struct buf *err)
{
	struct updates *u = c->upd;

	if (u == NULL || c->conf.upd_listen == NULL)
		return 0;
	if ((u->srv_ctx = tls_server_ctx(
	         c->paths.server_crt, c->paths.server_key, c->paths.ca_crt,
	         TLS_CLIENT_REQUIRED, listener_revoked, c, err)) == NULL)
		return -1;
	tls_server_roles(u->srv_ctx,
	                 PKI_ROLE_BIT(PKI_ROLE_AGENT) |
	                     PKI_ROLE_BIT(PKI_ROLE_NONE) |
	                     PKI_ROLE_BIT(PKI_ROLE_CENTER),
	                 "the update listener");
	if ((u->srv = http_server_new(c->base, u->srv_ctx,
	                              updates_gateway_routes, c, l, NULL)) ==
	    NULL)
		fatalx("%s: cannot create the update listener", __func__);
	if (http_server_bind(u->srv, c->conf.upd_listen, (int)c->conf.upd_port,
	                     &u->port, err) == -1)
		return -1;
	log_info("updates: serving the verified repository on %s:%d",
	         c->conf.upd_listen, u->port);
	return 0;
}

int
updates_port(struct center *c)
{
	return c->upd != NULL && c->upd->srv != NULL ? c->upd->port : 0;
}

void
updates_stop(struct center *c)
{
	struct updates *u = c->upd;

	if (u == NULL)
		return;
	if (u->started) {
		pthread_mutex_lock(&u->lock);
		u->stop = 1;
		pthread_cond_signal(&u->cond);
		pthread_mutex_unlock(&u->lock);
		pthread_join(u->thr, NULL);
	}
	if (u->srv != NULL)
		http_server_free(u->srv);
	SSL_CTX_free(u->srv_ctx);
	if (u->ev_wake != NULL)
		event_free(u->ev_wake);
	if (u->wake[0] != -1) {
		close(u->wake[0]);
		close(u->wake[1]);
	}
	view_put(u->view);
	if (u->proxy_user != NULL) {
		explicit_bzero(u->proxy_user, strlen(u->proxy_user));
		free(u->proxy_user);
	}
	buf_free(&u->anchor);
	intelc_free(u->push_ic);
	json_decref(u->intel_pushed);
	pthread_mutex_destroy(&u->lock);
	pthread_cond_destroy(&u->cond);
	free(u);
	c->upd = NULL;
}
