/*
 * api.c: vigil-scand's HTTP API, compatible with THOR Thunderstorm (served
 * under /api/v1/ and the older /api/), and the event loop's side of the
 * work: the store (async queue, results, cache, history), handing queued
 * samples to the pool and taking finished jobs back.
 *
 * Uploads stream in: the handler sets body callbacks that feed upload.c
 * as bytes arrive (to the sample file, or memory for a small sync check),
 * and when the body is complete hands the job to the pool; the reply
 * waits for the job. A sync check is answered when its scan comes back.
 * An async upload is answered with its id only once its row is
 * committed: an id the client holds is never lost, and a restart rescans
 * every sample still queued (or caught scanning by the stop).
 *
 * Errors are {"message": ...} as Thunderstorm sends them.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <yara.h>

#include "metrics.h"
#include "scand.h"

static const char migration_1[] =
    "CREATE TABLE samples ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " status TEXT NOT NULL," /* queued, scanning, done, failed */
    " path TEXT NOT NULL,"
    " name TEXT NOT NULL,"
    " source TEXT NOT NULL,"
    " sha256 TEXT,"
    " size INTEGER NOT NULL,"
    " received INTEGER NOT NULL,"
    " finished INTEGER,"
    " result TEXT);"
    "CREATE INDEX samples_status ON samples (status, id);"
    "CREATE TABLE cache ("
    " key TEXT PRIMARY KEY," /* sha256:ruleversion */
    " result TEXT NOT NULL,"
    " used INTEGER NOT NULL);"
    "CREATE TABLE history ("
    " kind TEXT NOT NULL," /* sample, queue */
    " minute INTEGER NOT NULL,"
    " n INTEGER NOT NULL,"
    " PRIMARY KEY (kind, minute));";

/* Scan ids: one sequence for sync checks and async samples, so a scan_id
 * names one scan only, across restarts too (ids.next is reserved ahead in
 * blocks, scand_next_id). */
static const char migration_2[] =
    "CREATE TABLE ids ("
    " name TEXT PRIMARY KEY,"
    " next INTEGER NOT NULL);"
    "INSERT INTO ids (name, next) SELECT 'scan', COALESCE(MAX(id), 0) + 1 "
    "FROM samples;";

static const char *const scand_migrations[] = {migration_1, migration_2};

#define ID_BLOCK 1000

/*
 * The next scan id. Ids are reserved ID_BLOCK at a time in the store (one
 * write per block, not per scan); a restart starts after the reserved
 * block, so an id handed out before it is never handed out again (the
 * rest of that block is skipped). When the reservation cannot be written,
 * the ids still go on from memory (and a log line says so).
 */
long long
scand_next_id(struct scand *s)
{
	if (s->next_id >= s->id_limit) {
		if (store_exec(s->store,
		               "UPDATE ids SET next = ? WHERE name = 'scan'",
		               S_INT(s->next_id + ID_BLOCK)) != 1)
			log_warnx("scand: cannot reserve scan ids: an id may "
			          "repeat after a restart");
		s->id_limit = s->next_id + ID_BLOCK;
	}
	return s->next_id++;
}

static int
ids_load(struct scand *s)
{
	struct store_rows *rows;
	long long next = 1;

	/* Never behind a sample's id (rows written by an older version). */
	if ((rows = store_query(
	         s->store, "SELECT MAX(next) FROM (SELECT next FROM ids "
	                   "WHERE name = 'scan' UNION ALL SELECT "
	                   "COALESCE(MAX(id), 0) + 1 FROM samples)")) == NULL)
		return -1;
	if (store_next(rows) == 1)
		next = store_int(rows, 0);
	store_done(rows);
	s->next_id = s->id_limit = next > 0 ? next : 1;
	return 0;
}

int
scand_db_open(struct scand *s, struct buf *err)
{
	struct store_rows *rows;
	int n;

	s->store = store_open(s->db_path, scand_migrations, 2, err);
	if (s->store == NULL)
		return -1;
	if (ids_load(s) == -1) {
		buf_printf(err, "%s: cannot read the scan ids", s->db_path);
		return -1;
	}
	/* Scans cut short by a stop are done again. */
	n = store_exec(s->store,
	               "UPDATE samples SET status = 'queued' WHERE status = "
	               "'scanning'");
	if (n > 0)
		log_info("scand: %d samples caught scanning by the last stop "
		         "are queued again",
		         n);
	if (s->conf.cache_size > 0 &&
	    (rows = store_query(s->store,
	                        "SELECT key, result FROM cache ORDER BY used "
	                        "DESC LIMIT ?",
	                        S_INT(s->conf.cache_size))) != NULL) {
		while (store_next(rows) == 1)
			pool_cache_load(s->pool, store_text(rows, 0),
			                store_text(rows, 1));
		store_done(rows);
	}
	return 0;
}

#define reply_msg hs_reply_msg

/*
 * History counts are kept per minute in memory and written when the
 * minute changes or someone asks: one write per minute, not one per
 * sample (each write is a transaction with an fsync on the loop thread).
 * Minutes older than HIST_KEEP are dropped then.
 */
#define HIST_SAMPLE 0
#define HIST_QUEUE  1
#define HIST_DENIED 2
#define HIST_KEEP   (30LL * 24 * 60) /* minutes: 30 days */

static const char *const hist_kinds[3] = {"sample", "queue", "denied"};

void
scand_history_flush(struct scand *s)
{
	int k;

	for (k = 0; k < 3; k++) {
		if (s->hist_n[k] == 0)
			continue;
		store_exec(
		    s->store,
		    "INSERT INTO history (kind, minute, n) VALUES (?, ?, "
		    "?) ON CONFLICT (kind, minute) DO UPDATE SET n = "
		    "history.n + excluded.n",
		    S_TEXT(hist_kinds[k]), S_INT(s->hist_minute),
		    S_INT(s->hist_n[k]));
		s->hist_n[k] = 0;
	}
}

static void
history_add(struct scand *s, int kind)
{
	long long m = (long long)time(NULL) / 60;

	if (m != s->hist_minute) {
		scand_history_flush(s);
		store_exec(s->store, "DELETE FROM history WHERE minute <= ?",
		           S_INT(m - HIST_KEEP));
		s->hist_minute = m;
	}
	s->hist_n[kind]++;
}

/* Requests refused: an upload over max_upload, without the API key, or
 * while stopping, and what the server refuses itself (hs_limits). */
void
scand_refused(void *arg, int status)
{
	(void)status;
	history_add(arg, HIST_DENIED);
}

/* Thunderstorm's pretty parameter, a boolean as Go parses one. */
static int
want_pretty(struct hs_req *r)
{
	static const char *const yes[] = {"1",    "t",    "T",
	                                  "true", "TRUE", "True"};
	const char *v = hs_req_query(r, "pretty");
	size_t i;

	for (i = 0; v != NULL && i < sizeof(yes) / sizeof(yes[0]); i++)
		if (strcmp(v, yes[i]) == 0)
			return 1;
	return 0;
}

/*
 * Every handler's first step: ?pretty=true indents its JSON (errors
 * included), and the optional API key, "Authorization: Bearer KEY" or
 * "X-API-Key", is checked.
 */
static int
auth_ok(struct scand *s, struct hs_req *r)
{
	const char *h, *k = NULL;

	if (want_pretty(r))
		hs_req_json_indent(r, 2);
	if (s->api_key_len == 0)
		return 1;
	if ((h = hs_req_header(r, "Authorization")) != NULL &&
	    strncasecmp(h, "Bearer ", 7) == 0)
		k = h + 7;
	else
		k = hs_req_header(r, "X-API-Key");
	if (k != NULL && strlen(k) == s->api_key_len &&
	    CRYPTO_memcmp(k, s->api_key, s->api_key_len) == 0)
		return 1;
	history_add(s, HIST_DENIED);
	reply_msg(r, 401,
	          "this service needs an API key (Authorization: Bearer KEY "
	          "or X-API-Key: KEY)");
	return 0;
}

/*
 * A stop refuses new uploads with 503 and says when to come back: a
 * restart takes seconds, and the collectors wait as long as Retry-After
 * says (30 s without it).
 */
static void
refuse_stopping(struct hs_req *r)
{
	history_add(hs_req_arg(r), HIST_DENIED);
	hs_req_add_header(r, "Retry-After", SCAND_RETRY_AFTER);
	reply_msg(r, 503, "the service is shutting down; retry in %s s",
	          SCAND_RETRY_AFTER);
}

/*
 * An upload streams: body bytes go to upload.c as they arrive (to a file
 * under samples/, or to memory for a small sync check, see scand.h), the
 * size cap answers 413 as soon as it is passed; once the body is complete
 * the job goes to the pool (scan, or the async queue).
 */
struct upctx {
	struct scand *s;
	struct job *j;
	struct upload *u;
};

static void
upctx_free(struct upctx *x)
{
	upload_free(x->u);
	job_free(x->j);
	free(x);
}

static int
up_data(struct hs_req *r, const uint8_t *p, size_t n, void *arg)
{
	struct upctx *x = arg;

	if (upload_feed(x->u, p, n) == 0)
		return 0;
	if (x->j->status == 413)
		history_add(x->s, HIST_DENIED);
	reply_msg(r, x->j->status, "%s", x->j->errmsg);
	upctx_free(x);
	return -1;
}

static void
up_end(struct hs_req *r, int ok, void *arg)
{
	struct upctx *x = arg;
	struct scand *s = x->s;
	struct job *j = x->j;

	if (!ok) {
		reply_msg(r, 400, "the upload was cut short");
		upctx_free(x);
		return;
	}
	if (upload_finish(x->u) == -1) {
		if (j->status == 413)
			history_add(s, HIST_DENIED);
		reply_msg(r, j->status, "%s", j->errmsg);
		upctx_free(x);
		return;
	}
	upload_free(x->u);
	free(x);
	j->req = r;
	s->inflight_req++;
	pool_push(s->pool, j);
}

static void
upload(struct hs_req *r, enum job_kind kind)
{
	struct scand *s = hs_req_arg(r);
	const char *src = hs_req_query(r, "source");
	const char *ct = hs_req_header(r, "Content-Type");
	long long clen = hs_req_content_length(r);
	struct upctx *x = NULL;
	struct job *j;
	uint8_t *mem = NULL;
	size_t memcap = 0;

	if (!auth_ok(s, r))
		return;
	if (s->stopping) {
		refuse_stopping(r);
		return;
	}
	if (src != NULL) {
		json_t *t = json_string(src);

		if (t == NULL) {
			reply_msg(r, 400, "source must be UTF-8 text");
			return;
		}
		json_decref(t);
	}
	/* A sync check that is not kept, of a known small size, is received
	 * into memory and scanned from there (no write, read and unlink). */
	if (kind == JOB_CHECK && !s->conf.keep_samples && clen > 0 &&
	    clen <= (long long)SCAND_MEM_SAMPLE) {
		memcap = (size_t)clen;
		if ((mem = malloc(memcap)) == NULL)
			memcap = 0;
	}
	if ((x = calloc(1, sizeof(*x))) == NULL ||
	    (j = calloc(1, sizeof(*j))) == NULL) {
		free(x);
		free(mem);
		reply_msg(r, 500, "out of memory");
		return;
	}
	x->s = s;
	x->j = j;
	j->kind = kind;
	j->mem_owned = mem;
	if ((j->source = strdup(
	         src != NULL && src[0] != '\0' ? src : hs_req_peer(r))) ==
	    NULL) {
		upctx_free(x);
		reply_msg(r, 500, "out of memory");
		return;
	}
	s->checks++;
	/* The scan_id of a sync check's finding, or the async sample's id:
	 * one sequence for both. */
	j->id = scand_next_id(s);
	x->u = upload_new(j, ct, s->samples_dir, s->conf.max_upload,
	                  s->conf.cache_size > 0 || s->conf.keep_samples ||
	                      s->intel != NULL,
	                  mem, memcap);
	if (x->u == NULL || j->status != 0) {
		reply_msg(r, j->status != 0 ? j->status : 500, "%s",
		          j->status != 0 ? j->errmsg : "out of memory");
		upctx_free(x);
		return;
	}
	hs_req_body(r, up_data, up_end, x);
}

static void
h_check(struct hs_req *r)
{
	upload(r, JOB_CHECK);
}

static void
h_check_async(struct hs_req *r)
{
	upload(r, JOB_RECEIVE);
}

static const char *
status_text(const char *st)
{
	if (strcmp(st, "done") == 0)
		return "Sample analysis complete";
	if (strcmp(st, "scanning") == 0)
		return "Sample analysis in progress";
	if (strcmp(st, "failed") == 0)
		return "Sample analysis failed";
	return "Waiting for sample analysis";
}

static void
h_results(struct hs_req *r)
{
	struct scand *s = hs_req_arg(r);
	const char *q = hs_req_query(r, "id");
	struct store_rows *rows;
	long long id;
	json_t *o, *res;
	json_error_t jerr;
	const char *st, *text;

	if (!auth_ok(s, r))
		return;
	if (q == NULL || str_to_ll(q, 1, INT64_MAX, &id) == -1) {
		reply_msg(r, 400,
		          "id must be a positive integer (the id "
		          "checkAsync returned)");
		return;
	}
	if ((rows = store_query(s->store,
	                        "SELECT status, result FROM samples WHERE "
	                        "id = ?",
	                        S_INT(id))) == NULL) {
		reply_msg(r, 500, "database error");
		return;
	}
	if (store_next(rows) != 1) {
		store_done(rows);
		reply_msg(r, 400,
		          "unknown id %lld (never issued, or its result "
		          "expired)",
		          id);
		return;
	}
	st = store_text(rows, 0);
	o = json_pack("{s:s}", "status", status_text(st ? st : ""));
	if (st != NULL &&
	    (strcmp(st, "done") == 0 || strcmp(st, "failed") == 0)) {
		text = store_text(rows, 1);
		res = text != NULL ? json_loads(text, 0, &jerr) : NULL;
		if (strcmp(st, "failed") == 0 && json_is_object(res)) {
			json_object_set(o, "message",
			                json_object_get(res, "message"));
			json_decref(res);
			res = json_array();
		}
		json_object_set_new(o, "result", res ? res : json_array());
	}
	store_done(rows);
	hs_reply_json(r, 200, o);
}

static long long
count_queued(struct scand *s)
{
	struct store_rows *rows;
	long long n = 0;

	if ((rows = store_query(s->store,
	                        "SELECT COUNT(*) FROM samples WHERE status IN "
	                        "('queued', 'scanning')")) != NULL) {
		if (store_next(rows) == 1)
			n = store_int(rows, 0);
		store_done(rows);
	}
	return n;
}

/* Milliseconds as THOR reports them: whole numbers. */
static json_int_t
avg_ms(double total, long long n)
{
	return n > 0 ? (json_int_t)(total / (double)n + 0.5) : 0;
}

static void
h_status(struct hs_req *r)
{
	struct scand *s = hs_req_arg(r);
	long long sent, queued, dropped;
	json_t *o;

	if (!auth_ok(s, r))
		return;
	fwd_counters(s->fwd, &sent, &queued, &dropped);
	o = json_pack(
	    "{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:b,s:b,s:I,s:I,s:I}",
	    "scanned_samples", (json_int_t)s->scanned, "queued_async_requests",
	    (json_int_t)count_queued(s), "avg_scan_time_milliseconds",
	    avg_ms(s->scan_ms_total, s->scanned), "avg_wait_time_milliseconds",
	    avg_ms(s->wait_ms_total, s->scanned), "uptime_seconds",
	    (json_int_t)((long long)time(NULL) - s->started), "cache_hits",
	    (json_int_t)s->cache_hits, "cache_misses",
	    (json_int_t)s->cache_misses, "cache_entries",
	    (json_int_t)pool_cache_entries(s->pool), "async_on_hold",
	    s->conf.hold_async, "syslog_enabled", s->fwd != NULL, "syslog_sent",
	    (json_int_t)sent, "syslog_queued", (json_int_t)queued,
	    "syslog_dropped", (json_int_t)dropped);
	if (s->intel != NULL) /* intel.c's counters */
		json_object_set_new(
		    o, "intel",
		    json_pack(
		        "{s:b, s:I, s:I, s:I}", "up",
		        metrics_get("vigil_scand_intel_up", NULL) == 1,
		        "lookups",
		        (json_int_t)metrics_get(
		            "vigil_scand_intel_lookups_total", "result=\"ok\""),
		        "failed",
		        (json_int_t)metrics_get(
		            "vigil_scand_intel_lookups_total",
		            "result=\"failed\""),
		        "reputation_findings",
		        (json_int_t)metrics_get(
		            "vigil_scand_reputation_findings_total", NULL)));
	hs_reply_json(r, 200, o);
}

/*
 * The build time as THOR's info gives it ("2026-01-07 04:02:31"), from the
 * compiler's __DATE__ and __TIME__ (which honour SOURCE_DATE_EPOCH, so
 * reproducible builds stay reproducible).
 */
static void
build_time(char *out, size_t n)
{
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	const char *d = __DATE__; /* "Dec  6 2026" */
	int mon;

	for (mon = 0; mon < 12; mon++)
		if (strncmp(months + 3 * mon, d, 3) == 0)
			break;
	mon = mon % 12 + 1;
	snprintf(out, n, "%.4s-%02d-%c%c %s", d + 7, mon,
	         d[4] == ' ' ? '0' : d[4], d[5], __TIME__);
}

/*
 * Static facts. The fields the Thunderstorm API requires, with Vigil's
 * values: version_info under THOR's keys (thor: the scanner's version,
 * build, signatures: the rule set version, sigma: none), and a license
 * that does not exist: Vigil needs none, so it never expires and nothing
 * limits the scan speed. Then Vigil's own details.
 */
static void
h_info(struct hs_req *r)
{
	struct scand *s = hs_req_arg(r);
	struct scan_bundle_info bi;
	json_t *args = json_array(), *o;
	char yv[32], built[32];
	int i;

	if (!auth_ok(s, r))
		return;
	scan_bundle_info(s->bundle, &bi);
	for (i = 0; i < s->argc; i++)
		json_array_append_new(args, json_string(s->argv[i]));
	snprintf(yv, sizeof(yv), "%d.%d.%d", YR_MAJOR_VERSION, YR_MINOR_VERSION,
	         YR_MICRO_VERSION);
	build_time(built, sizeof(built));
	o = json_pack(
	    "{s:{s:s,s:s,s:s,s:s,s:s,s:s},s:o,s:s,s:s,s:I,s:I,"
	    "s:s,s:{s:s,s:i,s:I,s:I,s:I,s:I},s:I,s:I,s:b}",
	    "version_info", "thor", VIGIL_VERSION, "build", built, "signatures",
	    bi.version, "sigma", "", "vigil-scand", VIGIL_VERSION, "yara", yv,
	    "arguments", args ? args : json_array(), "license_expiration",
	    "9999-12-31T23:59:59Z", "license_owner",
	    "Vigil (free software, no license key)", "scan_speed_limitation",
	    (json_int_t)0, "threads", (json_int_t)s->conf.threads, "product",
	    "vigil-scand", "rule_set", "version", bi.version, "yara_rules",
	    (int)bi.yara_rules, "md5_iocs", (json_int_t)bi.hash_iocs[IOC_MD5],
	    "sha1_iocs", (json_int_t)bi.hash_iocs[IOC_SHA1], "sha256_iocs",
	    (json_int_t)bi.hash_iocs[IOC_SHA256], "filename_iocs",
	    (json_int_t)bi.filename_iocs, "sync_threads",
	    (json_int_t)s->conf.sync_threads, "max_upload_bytes",
	    (json_int_t)s->conf.max_upload, "keep_samples",
	    s->conf.keep_samples);
	hs_reply_json(r, 200, o);
}

/*
 * One history parameter as THOR reads it: absent gives def, a value that
 * is no integer is an error (-1), and a value out of range gives def too
 * (aggregate below 1 is 1, a limit of 0 or less is "everything"). Values
 * above max are max.
 */
static int
hist_param(struct hs_req *r, const char *name, long long def, long long max,
           long long *out)
{
	const char *v = hs_req_query(r, name);
	long long n;

	*out = def;
	if (v == NULL)
		return 0;
	if (str_to_ll(v, INT64_MIN, INT64_MAX, &n) == -1)
		return -1;
	if (n >= 1)
		*out = n < max ? n : max;
	return 0;
}

/*
 * {"YYYY-MM-DD HH:MM": count, ...} (UTC), as Thunderstorm answers: one key
 * for every bucket of aggregate minutes, zeros included, from the bucket
 * holding the first minute asked for to the current one. limit minutes
 * back, or by default everything: since the oldest minute recorded (or
 * the start, if that is earlier). At most HIST_KEEP minutes are kept.
 */
static void
history(struct hs_req *r, int kind)
{
	struct scand *s = hs_req_arg(r);
	long long agg, lim, now = (long long)time(NULL) / 60, first, b;
	struct store_rows *rows;
	json_t *o;
	char key[32];
	time_t t;
	struct tm tm;
	int more;

	if (!auth_ok(s, r))
		return;
	if (hist_param(r, "aggregate", 1, HIST_KEEP, &agg) == -1 ||
	    hist_param(r, "limit", 0, HIST_KEEP, &lim) == -1) {
		reply_msg(r, 400,
		          "aggregate and limit must be integers (minutes)");
		return;
	}
	scand_history_flush(s);
	if (lim > 0) {
		first = now - lim + 1;
	} else {
		first = s->started / 60;
		if ((rows = store_query(s->store,
		                        "SELECT MIN(minute) FROM history WHERE "
		                        "kind = ?",
		                        S_TEXT(hist_kinds[kind]))) != NULL) {
			if (store_next(rows) == 1 &&
			    store_text(rows, 0) != NULL &&
			    store_int(rows, 0) < first)
				first = store_int(rows, 0);
			store_done(rows);
		}
	}
	if (first < now - HIST_KEEP + 1)
		first = now - HIST_KEEP + 1;
	first = first / agg * agg;
	if ((o = json_object()) == NULL ||
	    (rows = store_query(s->store,
	                        "SELECT minute, n FROM history WHERE kind = ? "
	                        "AND minute >= ? ORDER BY minute",
	                        S_TEXT(hist_kinds[kind]), S_INT(first))) ==
	        NULL) {
		json_decref(o);
		reply_msg(r, 500, "database error");
		return;
	}
	more = store_next(rows) == 1;
	for (b = first; b <= now; b += agg) {
		json_int_t sum = 0;

		while (more && store_int(rows, 0) < b + agg) {
			sum += store_int(rows, 1);
			more = store_next(rows) == 1;
		}
		t = (time_t)(b * 60);
		gmtime_r(&t, &tm);
		strftime(key, sizeof(key), "%Y-%m-%d %H:%M", &tm);
		if (json_object_set_new(o, key, json_integer(sum)) == -1) {
			store_done(rows);
			json_decref(o);
			reply_msg(r, 500, "out of memory");
			return;
		}
	}
	store_done(rows);
	hs_reply_json(r, 200, o);
}

static void
h_queue_history(struct hs_req *r)
{
	history(r, HIST_QUEUE);
}

static void
h_sample_history(struct hs_req *r)
{
	history(r, HIST_SAMPLE);
}

static void
h_denied_history(struct hs_req *r)
{
	history(r, HIST_DENIED);
}

/* Bodies are capped by the server (max_upload plus room for the
 * multipart framing) and, for the sample itself, by upload.c. */
#define API_ROUTES(p)                                                          \
	{"POST", p "check", h_check, 0},                                       \
	    {"POST", p "checkAsync", h_check_async, 0},                        \
	    {"GET", p "getAsyncResults", h_results, 0},                        \
	    {"GET", p "status", h_status, 0}, {"GET", p "info", h_info, 0},    \
	    {"GET", p "queueHistory", h_queue_history, 0},                     \
	    {"GET", p "deniedHistory", h_denied_history, 0},                   \
	{                                                                      \
		"GET", p "sampleHistory", h_sample_history, 0                  \
	}

const struct hs_route scand_routes[] = {
    API_ROUTES("/api/v1/"),
    API_ROUTES("/api/"),
    {NULL, NULL, NULL, 0},
};

/* ---- the loop's side of the pool ------------------------------------- */

void
scand_dispatch(struct scand *s)
{
	struct store_rows *rows;
	struct job *list = NULL, *j;
	long long room;
	int async_threads = (int)(s->conf.threads - s->conf.sync_threads);

	if (s->conf.hold_async || s->stopping || async_threads <= 0)
		return;
	room = 2LL * async_threads - s->inflight_async;
	if (room <= 0)
		return;
	if ((rows = store_query(s->store,
	                        "SELECT id, path, name, source, sha256 FROM "
	                        "samples WHERE status = 'queued' ORDER BY id "
	                        "LIMIT ?",
	                        S_INT(room))) == NULL)
		return;
	while (store_next(rows) == 1) {
		if ((j = calloc(1, sizeof(*j))) == NULL)
			break;
		j->kind = JOB_SCAN;
		j->id = store_int(rows, 0);
		j->path = strdup(store_text(rows, 1));
		j->name = strdup(store_text(rows, 2));
		j->source = strdup(store_text(rows, 3));
		if (store_text(rows, 4) != NULL)
			snprintf(j->sha256, sizeof(j->sha256), "%s",
			         store_text(rows, 4));
		if (j->path == NULL || j->name == NULL || j->source == NULL) {
			job_free(j);
			break;
		}
		j->next = list;
		list = j;
	}
	store_done(rows);
	while ((j = list) != NULL) {
		list = j->next;
		store_exec(
		    s->store,
		    "UPDATE samples SET status = 'scanning' WHERE id = ?",
		    S_INT(j->id));
		s->inflight_async++;
		pool_push(s->pool, j);
	}
}

static void
cache_persist(struct scand *s, struct job *j)
{
	if (j->cache_put == NULL || s->conf.cache_size == 0)
		return;
	store_exec(s->store,
	           "INSERT INTO cache (key, result, used) VALUES (?, ?, ?) "
	           "ON CONFLICT (key) DO UPDATE SET used = excluded.used",
	           S_TEXT(j->cache_key), S_TEXT(j->cache_put),
	           S_INT(time(NULL)));
	if (++s->cache_puts % 100 == 0)
		store_exec(
		    s->store,
		    "DELETE FROM cache WHERE key NOT IN (SELECT key FROM "
		    "cache ORDER BY used DESC LIMIT ?)",
		    S_INT(s->conf.cache_size));
}

static void
count_scan(struct scand *s, struct job *j)
{
	s->scanned++;
	s->scan_ms_total += (j->t_end - j->t_start) * 1000.0;
	s->wait_ms_total += (j->t_start - j->t_queued) * 1000.0;
	if (j->cache_hit)
		s->cache_hits++;
	else
		s->cache_misses++;
	history_add(s, HIST_SAMPLE);
	cache_persist(s, j);
}

/*
 * A finished job in two steps: its database work (all jobs of one wake-up
 * in one transaction, so one fsync, not one per sample, holds the loop),
 * then, after the commit, its reply: an async id is only ever handed out
 * once its row is durable.
 */
static void
finish_db(struct scand *s, struct job *j)
{
	char *text;
	json_t *e;

	if (j->status != 0) {
		if (j->kind != JOB_SCAN)
			return;
		log_warnx("scand: sample %lld: %s", j->id, j->errmsg);
		e = json_pack("{s:s}", "message", j->errmsg);
		text = e ? json_dumps(e, JSON_COMPACT) : NULL;
		json_decref(e);
		store_exec(s->store,
		           "UPDATE samples SET status = 'failed', result = ?, "
		           "finished = ? WHERE id = ?",
		           S_TEXT(text), S_INT(time(NULL)), S_INT(j->id));
		free(text);
		return;
	}
	switch (j->kind) {
	case JOB_CHECK:
		count_scan(s, j);
		fwd_findings(s->fwd, j->findings, j->source, j->id);
		break;
	case JOB_RECEIVE:
		if (store_exec(s->store,
		               "INSERT INTO samples (id, status, path, name, "
		               "source, sha256, size, received) VALUES (?, "
		               "'queued', ?, ?, ?, ?, ?, ?)",
		               S_INT(j->id), S_TEXT(j->path), S_TEXT(j->name),
		               S_TEXT(j->source), S_TEXT(j->sha256),
		               S_INT(j->size), S_INT(time(NULL))) != 1)
			j->id = 0;
		if (j->id > 0)
			history_add(s, HIST_QUEUE);
		break;
	case JOB_SCAN:
		count_scan(s, j);
		fwd_findings(s->fwd, j->findings, j->source, j->id);
		text = json_dumps(j->findings, JSON_COMPACT);
		store_exec(s->store,
		           "UPDATE samples SET status = 'done', result = ?, "
		           "finished = ? WHERE id = ?",
		           S_TEXT(text != NULL ? text : "[]"),
		           S_INT(time(NULL)), S_INT(j->id));
		free(text);
		/* Every 100 scans, the finished results beyond the newest
		 * max_results go (ids have gaps: sync checks share them). */
		if (s->scanned % 100 == 0)
			store_exec(
			    s->store,
			    "DELETE FROM samples WHERE status IN ('done', "
			    "'failed') AND id NOT IN (SELECT id FROM samples "
			    "WHERE status IN ('done', 'failed') ORDER BY id "
			    "DESC "
			    "LIMIT ?)",
			    S_INT(s->conf.max_results));
		break;
	}
}

static void
finish_reply(struct scand *s, struct job *j)
{
	switch (j->kind) {
	case JOB_CHECK:
		s->inflight_req--;
		if (j->status != 0) {
			reply_msg(j->req, j->status, "%s", j->errmsg);
			break;
		}
		log_debug("scand: check %s from %s: %zu findings", j->name,
		          j->source, json_array_size(j->findings));
		hs_reply_json(j->req, 200, j->findings);
		j->findings = NULL;
		break;
	case JOB_RECEIVE:
		s->inflight_req--;
		if (j->status != 0) {
			reply_msg(j->req, j->status, "%s", j->errmsg);
			break;
		}
		if (j->id <= 0) {
			unlink(j->path);
			reply_msg(j->req, 500,
			          "cannot queue the sample (database error)");
			break;
		}
		hs_reply_json(j->req, 200, json_pack("{s:I}", "id", j->id));
		break;
	case JOB_SCAN:
		s->inflight_async--;
		break;
	}
}

void
scand_done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct scand *s = arg;
	struct job *list;

	(void)fd;
	(void)what;
	/* Samples that get inteld's verdict first come back through
	 * intel.c. */
	if ((list = sintel_take(s, pool_take_done(s->pool))) == NULL) {
		scand_dispatch(s);
		return;
	}
	scand_finish_jobs(s, list);
}

void
scand_finish_jobs(struct scand *s, struct job *list)
{
	struct job *j;
	int tx;

	tx = store_begin(s->store) == 0;
	for (j = list; j != NULL; j = j->next)
		finish_db(s, j);
	if (tx && store_commit(s->store) == -1) {
		/* Nothing was recorded: the uploads fail, the samples are
		 * scanned again after a restart (they are still queued). */
		store_rollback(s->store);
		for (j = list; j != NULL; j = j->next)
			if (j->kind == JOB_RECEIVE && j->status == 0)
				j->id = 0;
	}
	while ((j = list) != NULL) {
		list = j->next;
		finish_reply(s, j);
		job_free(j);
	}
	scand_dispatch(s);
}

/* After pool_stop: finished jobs are recorded, unstarted uploads told to
 * come back, unstarted queued samples stay queued. */
void
scand_answer_leftovers(struct scand *s, struct job *list)
{
	struct job *j;

	while ((j = list) != NULL) {
		list = j->next;
		if (j->t_end > 0) {
			finish_db(s, j);
			finish_reply(s, j);
			job_free(j);
			continue;
		}
		if (j->kind == JOB_SCAN)
			store_exec(s->store,
			           "UPDATE samples SET status = 'queued' WHERE "
			           "id = ?",
			           S_INT(j->id));
		else
			refuse_stopping(j->req);
		job_free(j);
	}
}
