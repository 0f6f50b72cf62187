/*
 * intel.c: the center's use of vigil-inteld (docs/inteld.md, "Consumers"),
 * through its HTTP API only (src/common/intelc.c). Two threads, each with
 * its own client, so that neither the gateway nor the event path ever
 * waits for inteld:
 *
 *   enrichment  follows the stored events in rowid order from a cursor
 *               kept in the store (intel_state), as the forwarders do.
 *               For each batch of events it collects the indicators in
 *               their data (md5 / sha1 / sha256 members, IP address
 *               literals, domain-like members), asks inteld in one batch
 *               and, in one transaction, records a verdict per event in
 *               event_intel, raises the level of a finding whose verdict
 *               is malicious to alert (the level before is kept), and
 *               moves the cursor. When inteld cannot be reached the cursor
 *               stays: the events stay pending (stored, shown without a
 *               verdict) and are enriched once inteld answers again, after
 *               a restart of the center too. Nothing waits for it.
 *   reputation  answers agents' POST /v1/reputation (up to 1000 SHA-256s)
 *               through a bounded in-memory cache with a TTL; the gateway
 *               defers the request and this thread asks inteld about the
 *               misses only. The answer goes back to the loop through a
 *               pipe, like the ingest threads' (ingest.c).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "center.h"
#include "intelc.h"
#include "metrics.h"

#define C(r) ((struct center *)(r)->arg)

#define ENRICH_EVENTS    500  /* events read per round */
#define ENRICH_PER_EVENT 32   /* indicators taken from one event */
#define ENRICH_RETRY_MAX 10   /* seconds between tries while inteld is down */
#define REP_MAX_HASHES   1000 /* per agent request */
#define REP_MAX_QUEUED   64   /* requests waiting for the thread */
#define REP_PAUSE        5    /* seconds without asking after a failure */
#define ENRICH_LEVEL     "alert"

struct rep_job {
	struct rep_job *next;
	struct http_req *req; /* deferred; answered on the loop */
	char (*sha)[65];
	size_t n;
	json_t *reply; /* 200 body, or NULL: 503 with err */
	char err[512];
};

struct cache_ent {
	char sha[65];
	long long expires;
	json_t *brief; /* {"verdict", "score", "sources"} */
};

struct intel {
	struct center *c;
	struct intelc *enrich_ic, *rep_ic;
	struct store *store; /* the enrichment thread's own connection */
	pthread_t enrich_thr, rep_thr;
	int enrich_started, rep_started;
	pthread_mutex_t lock;
	pthread_cond_t enrich_cond, rep_cond;
	int stop, kicked;
	struct rep_job *todo, **todo_tail;
	size_t queued;
	struct rep_job *done, **done_tail;
	int wake[2];
	struct event *ev_done;
	struct cache_ent *cache;
	size_t ncache;
	long long ttl;
	long long cursor;
	int down; /* the enrichment thread's last lookup failed */
	/* the reputation thread's: after a failed lookup, requests are
	 * answered 503 at once until then, so that a hung inteld cannot
	 * keep agents' requests waiting one timeout after another */
	long long rep_down_until;
	char rep_down_why[400];
	/* SIGHUP (intel_reload): new clients and cache settings, under
	 * lock; each thread takes its own before its next round or job */
	struct intelc *new_enrich_ic, *new_rep_ic;
	long long new_ttl;
	size_t new_ncache;
};

void
intel_declare_metrics(void)
{
	metrics_declare("vigil_intel_up", METRIC_GAUGE,
	                "1 when vigil-inteld answered the last request");
	metrics_declare("vigil_intel_lookups_total", METRIC_COUNTER,
	                "indicators asked of vigil-inteld, by user and result");
	metrics_declare("vigil_intel_pending", METRIC_GAUGE,
	                "stored events not yet checked with vigil-inteld");
	metrics_declare("vigil_intel_enriched_total", METRIC_COUNTER,
	                "events given a verdict, by verdict");
	metrics_declare("vigil_intel_cache_total", METRIC_COUNTER,
	                "reputation answers from the cache (hit) or inteld");
}

/* --- indicators in event data ------------------------------------------ */

static int
hex_len_ok(const char *s, size_t n)
{
	size_t i;

	if (strlen(s) != n)
		return 0;
	for (i = 0; i < n; i++)
		if (hex_value((unsigned char)s[i]) < 0)
			return 0;
	return 1;
}

static int
domain_like(const char *s)
{
	size_t n = strlen(s), i;
	int dot = 0, alpha = 0;

	if (n < 4 || n > 253 || s[0] == '.' || s[0] == '-')
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '.')
			dot = 1;
		else if ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'z')
			alpha = 1;
		else if (!(ch >= '0' && ch <= '9') && ch != '-' && ch != '_')
			return 0;
	}
	return dot && alpha;
}

static int
ip_literal(const char *s)
{
	unsigned char a[16];

	return inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1;
}

static const char *const domain_keys[] = {"domain", "hostname", "host", "fqdn",
                                          "query",  "qname",    "dns",  NULL};

static void
add_ind(json_t *list, const char *type, const char *value)
{
	json_t *e;
	size_t i;

	if (json_array_size(list) >= ENRICH_PER_EVENT)
		return;
	json_array_foreach(
	    list, i,
	    e) if (strcmp(json_string_value(json_object_get(e, "type")),
	                  type) == 0 &&
	           strcmp(json_string_value(json_object_get(e, "value")),
	                  value) == 0) return;
	json_array_append_new(
	    list, json_pack("{s:s, s:s}", "type", type, "value", value));
}

static void
collect(json_t *v, const char *key, int depth, json_t *list)
{
	const char *k, *s;
	json_t *x;
	size_t i;

	if (depth > 6)
		return;
	if (json_is_object(v)) {
		json_object_foreach(v, k, x) collect(x, k, depth + 1, list);
		return;
	}
	if (json_is_array(v)) {
		json_array_foreach(v, i, x) collect(x, key, depth + 1, list);
		return;
	}
	if ((s = json_string_value(v)) == NULL)
		return;
	if (key != NULL && strcmp(key, "md5") == 0 && hex_len_ok(s, 32))
		add_ind(list, "md5", s);
	else if (key != NULL && strcmp(key, "sha1") == 0 && hex_len_ok(s, 40))
		add_ind(list, "sha1", s);
	else if (key != NULL && strcmp(key, "sha256") == 0 && hex_len_ok(s, 64))
		add_ind(list, "sha256", s);
	else if (strlen(s) <= 45 && ip_literal(s))
		add_ind(list, "ip", s);
	else if (key != NULL && domain_like(s)) {
		const char *const *p;

		for (p = domain_keys; *p != NULL; p++)
			if (strcmp(*p, key) == 0) {
				add_ind(list, "domain", s);
				break;
			}
	}
}

/* --- enrichment ------------------------------------------------------- */

struct ev {
	char *agent, *type, *level;
	long long rowid, seq;
	size_t first, n; /* its indicators in the batch */
};

static long long
max_rowid(struct store *s)
{
	struct store_rows *r;
	long long id = 0;

	r = store_query(s, "SELECT MAX(rowid) FROM events");
	if (r != NULL && store_next(r) == 1 && !store_isnull(r, 0))
		id = store_int(r, 0);
	store_done(r);
	return id;
}

static void
set_up(int up)
{
	metrics_set("vigil_intel_up", NULL, up);
}

/* Records the verdicts of one round and moves the cursor: 0, or -1 when
 * the transaction failed (the round is done again). */
static int
enrich_store(struct intel *g, struct ev *evs, size_t nev, json_t *res,
             long long upto)
{
	size_t i, k;
	int ok = 1;

	if (store_begin(g->store) == -1)
		return -1;
	for (i = 0; ok && i < nev; i++) {
		struct ev *e = &evs[i];
		json_t *srcs, *a;
		static const char *const names[] = {"unknown", "benign",
		                                    "suspicious", "malicious"};
		const char *worst;
		long long score = -1;
		int wrank = 0;
		char *sj;

		/* A finding without indicators is recorded as checked
		 * (unknown); other such events are not. */
		if (e->n == 0 && strcmp(e->type, "finding") != 0)
			continue;
		if ((srcs = json_array()) == NULL) {
			ok = 0;
			break;
		}
		for (k = e->first; k < e->first + e->n; k++) {
			json_t *b, *sc;
			int rank;
			long long s;

			a = json_array_get(res, k);
			if ((b = intelc_brief(a)) == NULL)
				continue;
			rank = intelc_verdict_rank(
			    json_string_value(json_object_get(b, "verdict")));
			sc = json_object_get(b, "score");
			s = json_is_integer(sc) ? json_integer_value(sc) : -1;
			if (rank > 0) {
				json_object_set(
				    b, "indicator",
				    json_object_get(a, "indicator"));
				json_object_set(b, "type",
				                json_object_get(a, "type"));
				json_array_append(srcs, b);
			}
			if (rank > wrank || (rank == wrank && s > score)) {
				wrank = rank;
				score = s;
			}
			json_decref(b);
		}
		worst = names[wrank];
		if (wrank == 0)
			score = -1;
		sj = json_dumps(srcs, JSON_COMPACT);
		json_decref(srcs);
		if (sj == NULL) {
			ok = 0;
			break;
		}
		if (store_exec(
		        g->store,
		        "INSERT INTO event_intel (agent_id, seq, verdict, "
		        "score, sources, level_before, checked_at) VALUES "
		        "(?, ?, ?, ?, ?, ?, ?) ON CONFLICT (agent_id, seq) "
		        "DO UPDATE SET verdict = excluded.verdict, score = "
		        "excluded.score, sources = excluded.sources, "
		        "checked_at = excluded.checked_at",
		        S_TEXT(e->agent), S_INT(e->seq), S_TEXT(worst),
		        score >= 0 ? S_INT(score) : S_NULL, S_TEXT(sj),
		        S_TEXT(e->level), S_INT(time(NULL))) < 0)
			ok = 0;
		free(sj);
		if (ok && strcmp(worst, "malicious") == 0 &&
		    strcmp(e->type, "finding") == 0 &&
		    store_exec(g->store,
		               "UPDATE events SET level = ? WHERE agent_id = ? "
		               "AND seq = ?",
		               S_TEXT(ENRICH_LEVEL), S_TEXT(e->agent),
		               S_INT(e->seq)) < 0)
			ok = 0;
		if (ok) {
			char l[64];

			snprintf(l, sizeof(l), "verdict=\"%s\"", worst);
			metrics_add("vigil_intel_enriched_total", l, 1);
		}
	}
	if (ok && store_exec(g->store,
	                     "INSERT INTO intel_state (name, cursor) VALUES "
	                     "('enrich', ?) ON CONFLICT (name) DO UPDATE SET "
	                     "cursor = excluded.cursor",
	                     S_INT(upto)) < 0)
		ok = 0;
	if (!ok || store_commit(g->store) == -1) {
		store_rollback(g->store);
		return -1;
	}
	g->cursor = upto;
	return 0;
}

/* One round: 1 when events were handled, 0 when there were none, -1 when
 * inteld or the store failed (the cursor stays). */
static int
enrich_round(struct intel *g)
{
	struct store_rows *r;
	struct ev evs[ENRICH_EVENTS];
	json_t *inds = json_array(), *res = NULL;
	size_t nev = 0, i;
	long long upto = g->cursor;
	struct buf err;
	int rc = -1;

	buf_init(&err, 2048);
	memset(evs, 0, sizeof(evs));
	r = store_query(g->store,
	                "SELECT rowid, agent_id, seq, type, level, data FROM "
	                "events WHERE rowid > ? ORDER BY rowid LIMIT ?",
	                S_INT(g->cursor), S_INT(ENRICH_EVENTS));
	if (r == NULL)
		goto out;
	while (nev < ENRICH_EVENTS && store_next(r) == 1) {
		struct ev *e = &evs[nev++];
		json_t *d, *one;
		size_t k;
		json_t *x;

		e->rowid = store_int(r, 0);
		e->agent = strdup(store_text(r, 1));
		e->seq = store_int(r, 2);
		e->type = strdup(store_text(r, 3));
		e->level = store_text(r, 4) ? strdup(store_text(r, 4)) : NULL;
		upto = e->rowid;
		e->first = json_array_size(inds);
		if (e->agent == NULL || e->type == NULL)
			goto out;
		/* the center's own audit entries name no threat */
		if (strcmp(e->agent, "center") == 0)
			continue;
		d = json_loads(store_text(r, 5), 0, NULL);
		one = json_array();
		collect(d, NULL, 0, one);
		json_array_foreach(one, k, x) json_array_append(inds, x);
		e->n = json_array_size(one);
		json_decref(one);
		json_decref(d);
	}
	store_done(r);
	r = NULL;
	if (nev == 0) {
		rc = 0;
		goto out;
	}
	if (json_array_size(inds) > 0) {
		if (intelc_lookup(g->enrich_ic, inds, &res, &err) == -1) {
			metrics_add("vigil_intel_lookups_total",
			            "for=\"events\",result=\"failed\"",
			            (double)json_array_size(inds));
			if (!g->down)
				log_warnx(
				    "intel: events wait for a verdict: %s",
				    buf_cstr(&err));
			set_up(0);
			g->down = 1;
			goto out;
		}
		metrics_add("vigil_intel_lookups_total",
		            "for=\"events\",result=\"ok\"",
		            (double)json_array_size(inds));
		if (g->down)
			log_info("intel: vigil-inteld %s answers",
			         intelc_url(g->enrich_ic));
		set_up(1);
		g->down = 0;
	}
	if (enrich_store(g, evs, nev, res, upto) == -1)
		goto out;
	rc = 1;
out:
	store_done(r);
	for (i = 0; i < nev; i++) {
		free(evs[i].agent);
		free(evs[i].type);
		free(evs[i].level);
	}
	json_decref(inds);
	json_decref(res);
	buf_free(&err);
	metrics_set("vigil_intel_pending", NULL,
	            (double)(max_rowid(g->store) - g->cursor));
	return rc;
}

static void *
enrich_main(void *arg)
{
	struct intel *g = arg;
	int retry = 1, rc;

	for (;;) {
		struct timespec ts;

		struct intelc *old = NULL;

		pthread_mutex_lock(&g->lock);
		if (g->stop) {
			pthread_mutex_unlock(&g->lock);
			break;
		}
		g->kicked = 0;
		if (g->new_enrich_ic != NULL) {
			old = g->enrich_ic;
			g->enrich_ic = g->new_enrich_ic;
			g->new_enrich_ic = NULL;
			g->down = 0;
			retry = 1;
		}
		pthread_mutex_unlock(&g->lock);
		intelc_free(old);
		rc = enrich_round(g);
		if (rc == 1) {
			retry = 1;
			continue;
		}
		pthread_mutex_lock(&g->lock);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += rc == -1 ? retry : 5;
		/* New events wake an idle thread; a failed round waits for
		 * its retry (doubling up to ENRICH_RETRY_MAX) whatever comes.
		 */
		while (!g->stop && g->new_enrich_ic == NULL &&
		       (rc == -1 || !g->kicked))
			if (pthread_cond_timedwait(&g->enrich_cond, &g->lock,
			                           &ts) == ETIMEDOUT)
				break;
		pthread_mutex_unlock(&g->lock);
		if (rc == -1 && (retry *= 2) > ENRICH_RETRY_MAX)
			retry = ENRICH_RETRY_MAX;
	}
	return NULL;
}

void
intel_kick(struct center *c)
{
	struct intel *g = c->intel;

	if (g == NULL || !g->enrich_started)
		return;
	pthread_mutex_lock(&g->lock);
	g->kicked = 1;
	pthread_cond_signal(&g->enrich_cond);
	pthread_mutex_unlock(&g->lock);
}

/* --- reputation for agents ------------------------------------------- */

static struct cache_ent *
cache_slot(struct intel *g, const char *sha)
{
	unsigned long long h = 0;
	int i;

	for (i = 0; i < 16; i++)
		h = h << 4 | (unsigned)hex_value((unsigned char)sha[i]);
	return &g->cache[h % g->ncache];
}

/* Answers one request: hits from the cache, the misses from inteld (one
 * batch), each answer put in the request's own slot, then cached. Two
 * hashes of one request may share a cache slot: the answer never comes
 * back out of the cache, so they cannot be mixed up. */
static void
rep_answer(struct intel *g, struct rep_job *j)
{
	json_t *miss = json_array(), *res = NULL, *out = json_array();
	size_t *where = calloc(j->n ? j->n : 1, sizeof(*where));
	long long now = (long long)time(NULL);
	size_t i, nmiss = 0;
	struct buf err;

	buf_init(&err, 1024);
	if (miss == NULL || out == NULL || where == NULL) {
		snprintf(j->err, sizeof(j->err), "out of memory");
		goto out;
	}
	for (i = 0; i < j->n; i++) {
		struct cache_ent *ce = cache_slot(g, j->sha[i]);

		if (ce->brief != NULL && ce->expires > now &&
		    strcmp(ce->sha, j->sha[i]) == 0) {
			json_array_append_new(out, json_deep_copy(ce->brief));
			continue;
		}
		json_array_append_new(out, json_null());
		where[nmiss++] = i;
		json_array_append_new(miss,
		                      json_pack("{s:s, s:s}", "type", "sha256",
		                                "value", j->sha[i]));
	}
	metrics_add("vigil_intel_cache_total", "result=\"hit\"",
	            (double)(j->n - nmiss));
	metrics_add("vigil_intel_cache_total", "result=\"miss\"",
	            (double)nmiss);
	if (nmiss > 0 && now < g->rep_down_until) {
		snprintf(j->err, sizeof(j->err), "%s", g->rep_down_why);
		goto out;
	}
	if (nmiss > 0) {
		if (intelc_lookup(g->rep_ic, miss, &res, &err) == -1) {
			metrics_add("vigil_intel_lookups_total",
			            "for=\"agents\",result=\"failed\"",
			            (double)nmiss);
			set_up(0);
			snprintf(j->err, sizeof(j->err), "%s", buf_cstr(&err));
			snprintf(g->rep_down_why, sizeof(g->rep_down_why), "%s",
			         buf_cstr(&err));
			g->rep_down_until = now + REP_PAUSE;
			goto out;
		}
		metrics_add("vigil_intel_lookups_total",
		            "for=\"agents\",result=\"ok\"", (double)nmiss);
		for (i = 0; i < nmiss; i++) {
			struct cache_ent *ce = cache_slot(g, j->sha[where[i]]);
			json_t *b = intelc_brief(json_array_get(res, i));

			if (b == NULL)
				b = json_pack("{s:s, s:n, s:[]}", "verdict",
				              "unknown", "score", "sources");
			json_array_set_new(out, where[i], json_deep_copy(b));
			json_decref(ce->brief);
			ce->brief = b;
			memcpy(ce->sha, j->sha[where[i]], 65);
			ce->expires = now + g->ttl;
		}
	}
	for (i = 0; i < j->n; i++) {
		json_t *o = json_array_get(out, i);

		if (!json_is_object(o)) {
			snprintf(j->err, sizeof(j->err), "out of memory");
			goto out;
		}
		json_object_set_new(o, "sha256", json_string(j->sha[i]));
	}
	j->reply = json_pack("{s:O}", "results", out);
out:
	json_decref(out);
	json_decref(miss);
	json_decref(res);
	free(where);
	buf_free(&err);
}

/* The reputation thread takes a reloaded [intel]: the old client goes,
 * and the cache is emptied (its answers came from the old settings) and
 * sized anew. */
static void
rep_reconf(struct intel *g, struct intelc *old, size_t ncache)
{
	struct cache_ent *nc;
	size_t i;

	intelc_free(old);
	g->rep_down_until = 0;
	for (i = 0; i < g->ncache; i++) {
		json_decref(g->cache[i].brief);
		g->cache[i].brief = NULL;
	}
	if (ncache != g->ncache && (nc = calloc(ncache, sizeof(*nc))) != NULL) {
		free(g->cache);
		g->cache = nc;
		g->ncache = ncache;
	}
}

static void *
rep_main(void *arg)
{
	struct intel *g = arg;
	struct rep_job *j;

	pthread_mutex_lock(&g->lock);
	for (;;) {
		while (g->todo == NULL && !g->stop)
			pthread_cond_wait(&g->rep_cond, &g->lock);
		if ((j = g->todo) == NULL)
			break;
		g->todo = j->next;
		if (g->todo == NULL)
			g->todo_tail = &g->todo;
		j->next = NULL;
		if (g->new_rep_ic != NULL) {
			struct intelc *old = g->rep_ic;
			size_t ncache = g->new_ncache;

			g->rep_ic = g->new_rep_ic;
			g->new_rep_ic = NULL;
			g->ttl = g->new_ttl;
			pthread_mutex_unlock(&g->lock);
			rep_reconf(g, old, ncache);
			pthread_mutex_lock(&g->lock);
		}
		pthread_mutex_unlock(&g->lock);
		if (!g->stop)
			rep_answer(g, j);
		else
			snprintf(j->err, sizeof(j->err), "center stopping");
		pthread_mutex_lock(&g->lock);
		g->queued--;
		*g->done_tail = j;
		g->done_tail = &j->next;
		if (write(g->wake[1], "x", 1) == -1 && errno != EAGAIN)
			log_warn("intel: wake the loop");
	}
	pthread_mutex_unlock(&g->lock);
	return NULL;
}

static void
rep_done(evutil_socket_t fd, short what, void *arg)
{
	struct intel *g = arg;
	struct rep_job *jobs, *j, *next;
	char drain[256];

	(void)what;
	while (read(fd, drain, sizeof(drain)) > 0)
		;
	pthread_mutex_lock(&g->lock);
	jobs = g->done;
	g->done = NULL;
	g->done_tail = &g->done;
	pthread_mutex_unlock(&g->lock);
	for (j = jobs; j != NULL; j = next) {
		next = j->next;
		if (j->reply != NULL)
			http_reply_json(j->req, 200, j->reply);
		else {
			http_set_header(j->req, "Retry-After", "30");
			http_reply_error(j->req, 503, "intel_unavailable",
			                 "reputation unavailable: %s", j->err);
		}
		free(j->sha);
		free(j);
	}
}

/* POST /v1/reputation {"sha256": [up to 1000 hex SHA-256s]} */
static void
gw_reputation(struct http_req *r)
{
	struct center *c = C(r);
	struct intel *g = c->intel;
	struct rep_job *j = NULL;
	json_t *body, *a, *e;
	char *id;
	size_t i, k;
	int full;

	if ((id = peer_agent_id(r)) == NULL)
		return;
	free(id);
	if ((body = http_req_json(r)) == NULL)
		return;
	a = json_object_get(body, "sha256");
	if (!json_is_array(a) || json_array_size(a) == 0 ||
	    json_array_size(a) > REP_MAX_HASHES ||
	    json_object_size(body) != 1) {
		http_reply_error(r, 400, "bad_request",
		                 "expected {\"sha256\": [1 to %d SHA-256s]}",
		                 REP_MAX_HASHES);
		goto out;
	}
	if (g == NULL || g->rep_ic == NULL) {
		http_reply_error(r, 503, "intel_unavailable",
		                 "this center has no vigil-inteld ([intel] "
		                 "url)");
		goto out;
	}
	if ((j = calloc(1, sizeof(*j))) == NULL ||
	    (j->sha = calloc(json_array_size(a), sizeof(*j->sha))) == NULL) {
		http_reply_error(r, 503, "busy", "out of memory");
		goto out;
	}
	json_array_foreach(a, i, e)
	{
		const char *s = json_string_value(e);

		if (s == NULL || !hex_len_ok(s, 64)) {
			http_reply_error(r, 400, "bad_request",
			                 "sha256[%zu]: not a SHA-256 (64 hex "
			                 "digits)",
			                 i);
			goto out;
		}
		for (k = 0; k < 64; k++)
			j->sha[i][k] = (char)(s[k] | 0x20);
		j->sha[i][64] = '\0';
	}
	j->n = json_array_size(a);
	pthread_mutex_lock(&g->lock);
	full = g->stop || g->queued >= REP_MAX_QUEUED;
	pthread_mutex_unlock(&g->lock);
	if (full || (j->req = http_req_defer(r)) == NULL) {
		http_set_header(r, "Retry-After", "5");
		http_reply_error(r, 503, "busy", "reputation queue full");
		goto out;
	}
	pthread_mutex_lock(&g->lock);
	g->queued++;
	*g->todo_tail = j;
	g->todo_tail = &j->next;
	pthread_cond_signal(&g->rep_cond);
	pthread_mutex_unlock(&g->lock);
	j = NULL;
out:
	if (j != NULL)
		free(j->sha);
	free(j);
	json_decref(body);
}

const struct http_route intel_gateway_routes[] = {
    {"POST", "/v1/reputation", gw_reputation, HTTP_ROUTE_CERT, "reputation",
     1u << 20},
    {NULL, NULL, NULL, 0, NULL, 0, 0},
};

/* --- start and stop --------------------------------------------------- */

int
intel_start(struct center *c, struct buf *err)
{
	struct intelc_conf cf = c->conf.intel;
	struct store_rows *r;
	struct intel *g;

	set_up(0);
	if (cf.url == NULL)
		return 0;
	if (cf.ca == NULL)
		cf.ca = c->paths.ca_crt;
	if ((g = calloc(1, sizeof(*g))) == NULL) {
		buf_printf(err, "out of memory");
		return -1;
	}
	g->c = c;
	g->wake[0] = g->wake[1] = -1;
	g->todo_tail = &g->todo;
	g->done_tail = &g->done;
	g->ttl = c->conf.intel_cache_ttl;
	g->ncache = (size_t)c->conf.intel_cache_size;
	pthread_mutex_init(&g->lock, NULL);
	pthread_cond_init(&g->enrich_cond, NULL);
	pthread_cond_init(&g->rep_cond, NULL);
	c->intel = g;
	if (intelc_new(&cf, &g->enrich_ic, err) == -1 ||
	    intelc_new(&cf, &g->rep_ic, err) == -1)
		return -1;
	if ((g->cache = calloc(g->ncache, sizeof(*g->cache))) == NULL) {
		buf_printf(err, "out of memory for the reputation cache");
		return -1;
	}
	if ((g->store = store_open(center_store_target(c), center_migrations,
	                           center_nmigrations, err)) == NULL)
		return -1;
	r = store_query(g->store,
	                "SELECT cursor FROM intel_state WHERE name = 'enrich'");
	if (r != NULL && store_next(r) == 1)
		g->cursor = store_int(r, 0);
	store_done(r);
	if (pipe2(g->wake, O_NONBLOCK | O_CLOEXEC) == -1) {
		buf_printf(err, "pipe: %s", strerror(errno));
		return -1;
	}
	if ((g->ev_done = event_new(c->base, g->wake[0], EV_READ | EV_PERSIST,
	                            rep_done, g)) == NULL ||
	    event_add(g->ev_done, NULL) == -1) {
		buf_printf(err, "cannot watch the reputation pipe");
		return -1;
	}
	if (pthread_create(&g->enrich_thr, NULL, enrich_main, g) != 0) {
		buf_printf(err, "cannot start the enrichment thread");
		return -1;
	}
	g->enrich_started = 1;
	if (pthread_create(&g->rep_thr, NULL, rep_main, g) != 0) {
		buf_printf(err, "cannot start the reputation thread");
		return -1;
	}
	g->rep_started = 1;
	log_info("intel: asking vigil-inteld %s (events from rowid %lld on)",
	         intelc_url(g->enrich_ic), g->cursor);
	return 0;
}

void
intel_stop(struct center *c)
{
	struct intel *g = c->intel;
	size_t i;

	if (g == NULL)
		return;
	pthread_mutex_lock(&g->lock);
	g->stop = 1;
	pthread_cond_broadcast(&g->enrich_cond);
	pthread_cond_broadcast(&g->rep_cond);
	pthread_mutex_unlock(&g->lock);
	if (g->enrich_started)
		pthread_join(g->enrich_thr, NULL);
	if (g->rep_started)
		pthread_join(g->rep_thr, NULL);
	if (g->wake[0] != -1)
		rep_done(g->wake[0], EV_READ, g);
	if (g->ev_done)
		event_free(g->ev_done);
	if (g->wake[0] != -1) {
		close(g->wake[0]);
		close(g->wake[1]);
	}
	for (i = 0; g->cache != NULL && i < g->ncache; i++)
		json_decref(g->cache[i].brief);
	free(g->cache);
	store_close(g->store);
	intelc_free(g->enrich_ic);
	intelc_free(g->rep_ic);
	intelc_free(g->new_enrich_ic);
	intelc_free(g->new_rep_ic);
	pthread_cond_destroy(&g->enrich_cond);
	pthread_cond_destroy(&g->rep_cond);
	pthread_mutex_destroy(&g->lock);
	free(g);
	c->intel = NULL;
}

/* SIGHUP: c->conf holds the new configuration, old the one before. A
 * change of [intel] is applied without a restart and without touching a
 * connection: new clients go to the threads (each takes its own before
 * its next request to inteld), a url set now starts the threads, a url
 * removed stops them (the events wait with their cursor as when inteld
 * is down). A section that does not check out keeps the clients as they
 * were. */
void
intel_reload(struct center *c, const struct center_conf *old)
{
	struct intel *g = c->intel;
	struct intelc_conf cf = c->conf.intel, of = old->intel;
	struct intelc *e = NULL, *r = NULL;
	struct buf err;

	if (cf.ca == NULL)
		cf.ca = c->paths.ca_crt;
	if (of.ca == NULL)
		of.ca = c->paths.ca_crt;
	if (intelc_conf_same(&cf, &of) &&
	    c->conf.intel_cache_ttl == old->intel_cache_ttl &&
	    c->conf.intel_cache_size == old->intel_cache_size &&
	    (g != NULL) == (cf.url != NULL))
		return;
	buf_init(&err, 2048);
	if (cf.url == NULL) {
		if (g != NULL) {
			log_info("intel: reload: [intel] url removed: no "
			         "more verdicts (events wait with their "
			         "cursor)");
			intel_stop(c);
			set_up(0);
		}
		goto out;
	}
	if (g == NULL) {
		if (intel_start(c, &err) == -1) {
			log_warnx("intel: reload: [intel]: %s; no verdicts",
			          buf_cstr(&err));
			intel_stop(c);
			set_up(0);
		}
		goto out;
	}
	if (intelc_new(&cf, &e, &err) == -1 ||
	    intelc_new(&cf, &r, &err) == -1) {
		log_warnx("intel: reload: %s; keeping the [intel] settings "
		          "in use",
		          buf_cstr(&err));
		intelc_free(e);
		intelc_free(r);
		goto out;
	}
	log_info("intel: reload: asking vigil-inteld %s from now on",
	         intelc_url(e));
	pthread_mutex_lock(&g->lock);
	intelc_free(g->new_enrich_ic);
	intelc_free(g->new_rep_ic);
	g->new_enrich_ic = e;
	g->new_rep_ic = r;
	g->new_ttl = c->conf.intel_cache_ttl;
	g->new_ncache = (size_t)c->conf.intel_cache_size;
	g->kicked = 1;
	pthread_cond_broadcast(&g->enrich_cond);
	pthread_mutex_unlock(&g->lock);
out:
	buf_free(&err);
}
