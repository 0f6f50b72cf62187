/*
 * events.c: what agents send back (events, samples) and what they fetch
 * (rule sets), plus the admin side of both.
 *
 * Events carry a per-agent sequence number; batches are parsed and stored
 * by threads of their own (ingest.c) with "ON CONFLICT DO NOTHING" on (agent,
 * seq), so a batch sent again after a lost reply is not stored twice, and the
 * acknowledgement is sent only after the commit (WAL, synchronous=FULL):
 * an acknowledged event is on disk.
 *
 * Samples are content-addressed by SHA-256 under data_dir/samples, size
 * capped, written 0600 and never executed. Rule sets are checked (YARA
 * compiled, IOCs parsed; warnings refuse a rule set too) when uploaded and
 * served to agents by content hash.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/http.h>
#include <openssl/evp.h>
#include <zip.h>

#include "center.h"
#include "query.h"
#include "schema.h"
#include "events.h"
#include "metrics.h"
#include "scan.h"
#include "tls.h"

#define C(r) ((struct center *)(r)->arg)

static int
hex64_ok(const char *s)
{
	size_t i;

	if (strlen(s) != 64)
		return 0;
	for (i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		      (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

/* POST /v1/events */
static void
gw_events(struct http_req *r)
{
	struct center *c = C(r);
	const uint8_t *body;
	long long now = (long long)time(NULL);
	size_t len;
	char *id;

	if ((id = peer_agent_id(r)) == NULL)
		return;
	if (space_refuse(r, 1) == -1) {
		free(id);
		return;
	}
	body = http_req_body(r, &len);
	/* Parsed, stored and answered by the ingest threads (ingest.c). */
	if (ingest_submit(c, r, id, body, len, now) == 0)
		return;
	/* Queue full or stopping: the agent keeps the batch, sends it again.
	 * A full queue (about 200,000 events) drains in about 2 s. */
	free(id);
	http_set_header(r, "Retry-After", "2");
	http_reply_error(r, 503, "store_busy", "store busy; send again");
}

static int
mkdir_p2(const char *base, const char *sub, char *out, size_t n)
{
	if ((size_t)snprintf(out, n, "%s/samples", base) >= n ||
	    (mkdir(out, 0700) == -1 && errno != EEXIST))
		return -1;
	if ((size_t)snprintf(out, n, "%s/samples/%.2s", base, sub) >= n ||
	    (mkdir(out, 0700) == -1 && errno != EEXIST))
		return -1;
	return 0;
}

/*
 * What an agent may upload: a sample only for a collect task of its own
 * whose run is under way (dispatched or running), so an agent's key cannot
 * fill the center's disk on its own initiative; no NUL byte anywhere in
 * the query (evhttp would cut the path there silently); and at most
 * [gateway] sample_quota bytes of samples per agent. 0, or -1 after
 * replying.
 */
static int
sample_allowed(struct http_req *r, const char *agent, const char *task,
               size_t len)
{
	struct center *c = C(r);
	const char *raw = http_req_raw_query(r);
	struct store_rows *q;
	unsigned long mark = store_errors(c->store);
	long long used = 0;
	int ok = 0;

	if (raw != NULL && strcasestr(raw, "%00") != NULL) {
		http_reply_error(r, 400, "bad_request",
		                 "the query holds a NUL byte (%%00)");
		return -1;
	}
	if (task == NULL || !str_is_uuid(task, 64)) {
		http_reply_error_field(r, 400, "bad_request", "task",
		                       "task: required, the id of the collect "
		                       "task this sample answers");
		return -1;
	}
	q = store_query(c->store,
	                "SELECT 1 FROM task_runs r JOIN tasks t ON t.id = "
	                "r.task_id WHERE r.task_id = ? AND r.agent_id = ? AND "
	                "t.kind = 'collect' AND r.state IN ('dispatched', "
	                "'running')",
	                S_TEXT(task), S_TEXT(agent));
	ok = q != NULL && store_next(q) == 1;
	store_done(q);
	if (!ok && store_errors(c->store) == mark) {
		log_warnx("samples: agent %s sent a sample for task %s, which "
		          "is not a collect task of its own under way; refused",
		          agent, task);
		http_reply_error(r, 403, "no_collect_task",
		                 "no collect task %s under way for this agent",
		                 task);
		return -1;
	}
	q = store_query(c->store,
	                "SELECT COALESCE(SUM(size), 0) FROM samples WHERE "
	                "agent_id = ?",
	                S_TEXT(agent));
	if (q != NULL && store_next(q) == 1)
		used = store_int(q, 0);
	store_done(q);
	if (store_errors(c->store) != mark) {
		http_reply_error(r, 503, "store_busy", "store busy; retry");
		return -1;
	}
	if (used + (long long)len > c->conf.sample_quota) {
		log_warnx("samples: agent %s is over its quota (%lld + %zu > "
		          "%lld bytes)",
		          agent, used, len, c->conf.sample_quota);
		http_reply_error(r, 413, "sample_quota",
		                 "this agent's samples would exceed the quota "
		                 "of %lld bytes ([gateway] sample_quota); "
		                 "delete samples or raise it",
		                 c->conf.sample_quota);
		return -1;
	}
	return 0;
}

/* POST /v1/samples?sha256=HEX&task=ID[&path=P]: the body is the file. */
static void
gw_sample(struct http_req *r)
{
	struct center *c = C(r);
	const char *want = http_req_query(r, "sha256");
	const char *task = http_req_query(r, "task");
	const char *path = http_req_query(r, "path");
	const uint8_t *body;
	char got[65], dir[4096], file[4200], *id;
	struct buf err;
	struct stat st;
	size_t len;

	buf_init(&err, 1024);
	if ((id = peer_agent_id(r)) == NULL)
		goto out;
	if (want == NULL || !hex64_ok(want)) {
		http_reply_error(r, 400, "bad_request",
		                 "sha256: required, 64 lowercase hex digits");
		goto out;
	}
	if ((task != NULL && strlen(task) > 64) ||
	    (path != NULL && strlen(path) > 4096)) {
		http_reply_error(r, 400, "bad_request",
		                 "task or path too long");
		goto out;
	}
	body = http_req_body(r, &len);
	if (sample_allowed(r, id, task, len) == -1)
		goto out;
	sha256_hex(body, len, got);
	if (strcmp(got, want) != 0) {
		http_reply_error(r, 400, "bad_digest",
		                 "the body's SHA-256 is %s, not %s: the upload "
		                 "was damaged; send it again",
		                 got, want);
		goto out;
	}
	if (mkdir_p2(c->conf.data_dir, got, dir, sizeof(dir)) == -1) {
		log_warn("samples: %s", dir);
		http_reply_error(r, 503, "store_busy", "cannot store samples");
		goto out;
	}
	snprintf(file, sizeof(file), "%s/%s", dir, got);
	/* Content-addressed: a sample already here is the same bytes. */
	if (stat(file, &st) == -1 &&
	    tls_write_file(file, body, len, 0600, &err) == -1) {
		log_warnx("samples: %s", buf_cstr(&err));
		http_reply_error(r, 503, "store_busy",
		                 "cannot store the sample");
		goto out;
	}
	/* Several nodes: the content in the database first, then the row
	 * that makes it known to every node. */
	if (sample_share(c, got, body, len) == -1) {
		http_reply_error(r, 503, "store_busy", "store busy; retry");
		goto out;
	}
	if (store_exec(c->store,
	               "INSERT INTO samples (sha256, size, agent_id, task_id, "
	               "path, received_at) VALUES (?, ?, ?, ?, ?, ?) "
	               "ON CONFLICT (sha256) DO NOTHING",
	               S_TEXT(got), S_INT(len), S_TEXT(id), S_TEXT(task),
	               S_TEXT(path), S_INT(time(NULL))) < 0) {
		http_reply_error(r, 503, "store_busy", "store busy; retry");
		goto out;
	}
	metrics_add("vigil_samples_received_total", NULL, 1);
	http_reply_json(
	    r, 200,
	    json_pack("{s:s, s:I}", "sha256", got, "size", (json_int_t)len));
out:
	free(id);
	buf_free(&err);
}

/* GET /v1/rules/<sha256>: a rule set by content hash (agents cache). */
static void
gw_rules(struct http_req *r)
{
	struct store_rows *q;
	int found = 0;

	if (!hex64_ok(r->rest)) {
		http_reply_error(r, 404, "not_found", "no such rule set");
		return;
	}
	q = store_query(C(r)->store,
	                "SELECT kind, name, content FROM rulesets WHERE id = ? "
	                "LIMIT 1",
	                S_TEXT(r->rest));
	if (q != NULL && store_next(q) == 1) {
		found = 1;
		http_set_header(r, "X-Vigil-Rules-Kind", store_text(q, 0));
		http_set_header(r, "X-Vigil-Rules-Name", store_text(q, 1));
		http_reply_text(r, 200, "text/plain; charset=utf-8",
		                store_text(q, 2), strlen(store_text(q, 2)));
	}
	store_done(q);
	if (!found)
		http_reply_error(r, 404, "not_found", "no rule set %.64s",
		                 r->rest);
}

/* --- admin -------------------------------------------------------------- */

/* POST /api/v1/rules {"name", "kind": "yara"|"ioc", "content"} */
static const struct schema_field rules_schema[] = {
    {"name", SCH_STRING, 1},
    {"kind", SCH_STRING, 1},
    {"content", SCH_STRING, 1},
    {NULL, 0, 0},
};

/* Checks a rule set before it is stored or pushed (also the master's,
 * master.c): 0, or 400 with the error code, the member at fault and why. */
int
rules_check(const char *name, const char *kind, const char *content,
            const char **code, const char **field, struct buf *err)
{
	size_t len = strlen(content);

	*field = NULL;
	*code = "bad_request";
	if (strlen(name) == 0 || strlen(name) > 64 ||
	    strpbrk(name, "/ \t\n") != NULL) {
		*field = "name";
		buf_puts(err, "name: 1 to 64 characters without '/' or white "
		              "space");
		return 400;
	}
	if (strcmp(kind, "yara") == 0 || strcmp(kind, "ioc") == 0) {
		struct buf why;
		int bad;

		buf_init(&why, 8192);
		bad = strcmp(kind, "yara") == 0
		          ? scan_rules_check(content, len, &why)
		          : scan_ioc_check(content, len, &why);
		if (bad == -1) {
			*code = "bad_rules";
			*field = "content";
			buf_printf(err, "%s set %s refused: %s",
			           strcmp(kind, "yara") == 0 ? "rule" : "IOC",
			           name, buf_cstr(&why));
			buf_free(&why);
			return 400;
		}
		buf_free(&why);
		return 0;
	}
	*field = "kind";
	buf_puts(err, "kind: must be yara or ioc");
	return 400;
}

/* Checks and stores a rule set (shared by POST /api/v1/rules and the
 * master's push, manage.c): 0 with its SHA-256 in id, or an HTTP status
 * with the error code, the member at fault (or NULL) and why. */
int
rules_put(struct center *c, const char *name, const char *kind,
          const char *content, char id[65], const char **code,
          const char **field, struct buf *err)
{
	size_t len = strlen(content);
	int st;

	if ((st = rules_check(name, kind, content, code, field, err)) != 0)
		return st;
	sha256_hex(content, len, id);
	if (store_begin(c->store) == -1)
		goto busy;
	/* Adding under an existing name replaces that rule set. */
	if (store_exec(c->store, "DELETE FROM rulesets WHERE name = ?",
	               S_TEXT(name)) < 0 ||
	    store_exec(c->store,
	               "INSERT INTO rulesets (id, name, kind, content, size, "
	               "created_at) VALUES (?, ?, ?, ?, ?, ?)",
	               S_TEXT(id), S_TEXT(name), S_TEXT(kind), S_TEXT(content),
	               S_INT(len), S_INT(time(NULL))) < 0 ||
	    store_commit(c->store) == -1) {
		store_rollback(c->store);
		goto busy;
	}
	return 0;
busy:
	*code = "store_busy";
	buf_puts(err, "store busy; retry");
	return 503;
}

static void
adm_rules_add(struct http_req *r)
{
	struct center *c = C(r);
	json_t *body;
	const char *name, *kind, *content, *code, *field;
	struct buf err;
	char id[65];
	int st;

	if (admin_authorize(r) == -1)
		return;
	if ((body = schema_body(r, rules_schema)) == NULL)
		return;
	buf_init(&err, 8192);
	name = json_string_value(json_object_get(body, "name"));
	kind = json_string_value(json_object_get(body, "kind"));
	content = json_string_value(json_object_get(body, "content"));
	st = rules_put(c, name, kind, content, id, &code, &field, &err);
	if (st != 0) {
		if (field != NULL && strcmp(field, "kind") != 0)
			http_reply_error_field(r, st, code, field, "%s",
			                       buf_cstr(&err));
		else
			http_reply_error(r, st, code, "%s", buf_cstr(&err));
		goto out;
	}
	log_info("rules: %s rule set %s (%s, %zu bytes) added by %s", kind,
	         name, id, strlen(content), r->peer_addr);
	http_reply_json(r, 201,
	                json_pack("{s:s, s:s, s:s, s:I}", "id", id, "name",
	                          name, "kind", kind, "size",
	                          (json_int_t)strlen(content)));
out:
	json_decref(body);
	buf_free(&err);
}

static const struct query_field rule_fields[] = {
    {"name", "name", QF_TEXT, QF_EQ | QF_SORT},
    {"id", "id", QF_TEXT, QF_EQ},
    {"kind", "kind", QF_TEXT, QF_EQ | QF_SORT},
    {"created_at", "created_at", QF_INT, QF_SORT | QF_RANGE},
    {NULL, NULL, 0, 0},
};

static const struct query_spec rule_spec = {
    .table = "rulesets",
    .columns = "id, name, kind, size, created_at, source, version, pinned",
    .fields = rule_fields,
    .key = "name",
    .key_type = QF_TEXT,
    .default_sort = "name",
};

static json_t *
rule_item(struct store_rows *q, void *arg)
{
	(void)arg;
	return json_pack("{s:s, s:s, s:s, s:I, s:I, s:s, s:s?, s:s?}", "id",
	                 store_text(q, 0), "name", store_text(q, 1), "kind",
	                 store_text(q, 2), "size", (json_int_t)store_int(q, 3),
	                 "created_at", (json_int_t)store_int(q, 4), "source",
	                 store_isnull(q, 5) ? "admin" : store_text(q, 5),
	                 "version", store_text(q, 6), "pinned",
	                 store_text(q, 7));
}

static void
adm_rules(struct http_req *r)
{
	if (admin_authorize(r) == -1)
		return;
	query_reply(r, C(r)->store, &rule_spec, rule_item, NULL);
}

static void
adm_rules_delete(struct http_req *r)
{
	if (admin_authorize(r) == -1 || schema_no_body(r) == -1)
		return;
	audit_before_row(r,
	                 "SELECT name, id, kind, size, created_at FROM "
	                 "rulesets WHERE name = ?",
	                 r->rest);
	if (store_exec(C(r)->store, "DELETE FROM rulesets WHERE name = ?",
	               S_TEXT(r->rest)) != 1) {
		http_reply_error(r, 404, "not_found", "no rule set %.64s",
		                 r->rest);
		return;
	}
	log_info("rules: rule set %s removed by %s", r->rest, r->peer_addr);
	http_reply_json(r, 200,
	                json_pack("{s:s, s:b}", "name", r->rest, "deleted", 1));
}

/*
 * GET /api/v1/events: a list (query.c), newest received first. The older
 * parameters since / until (received_at, both inclusive) still work.
 */
static const struct query_field event_fields[] = {
    {"agent", "agent_id", QF_TEXT, QF_EQ},
    {"task", "task_id", QF_TEXT, QF_EQ},
    {"type", "type", QF_TEXT, QF_EQ | QF_SORT},
    {"level", "level", QF_TEXT, QF_EQ | QF_SORT | QF_NULL},
    {"rule", "data", QF_TEXT, QF_MEMBER},
    {"received_at", "received_at", QF_INT, QF_SORT | QF_RANGE},
    {"time", "time", QF_INT, QF_SORT | QF_RANGE},
    {"since", "received_at", QF_INT, QF_GE},
    {"until", "received_at", QF_INT, QF_LE},
    {"agent_id", "agent_id", QF_TEXT, QF_SORT},
    {NULL, NULL, 0, 0},
};

/* (agent_id, seq) is the key; as one text value it orders consistently,
 * which is all a keyset tie breaker needs. */
static const struct query_spec event_spec = {
    .table = "events",
    .columns = "agent_id, seq, time, received_at, type, level, task_id, "
               "data",
    .fields = event_fields,
    .key = "(agent_id || '/' || CAST(seq AS TEXT))",
    .key_type = QF_TEXT,
    .default_sort = "-received_at",
    .search = "data",
    .max_limit = 10000,
};

static json_t *
event_item(struct store_rows *q, void *arg)
{
	json_t *d = json_loads(store_text(q, 7), 0, NULL);

	(void)arg;
	return json_pack("{s:s, s:I, s:I, s:I, s:s, s:s?, s:s?, s:o}",
	                 "agent_id", store_text(q, 0), "seq",
	                 (json_int_t)store_int(q, 1), "time",
	                 (json_int_t)store_int(q, 2), "received_at",
	                 (json_int_t)store_int(q, 3), "type", store_text(q, 4),
	                 "level", store_text(q, 5), "task_id", store_text(q, 6),
	                 "data", d ? d : json_object());
}

/* Audit entries are also stored as events of type "audit" (for the
 * forwarders): they are shown here only to callers that GET /api/v1/audit
 * would admit, whatever the filters. */
static const struct query_spec event_spec_noaudit = {
    .table = "events",
    .columns = "agent_id, seq, time, received_at, type, level, task_id, "
               "data",
    .fields = event_fields,
    .key = "(agent_id || '/' || CAST(seq AS TEXT))",
    .key_type = QF_TEXT,
    .default_sort = "-received_at",
    .search = "data",
    .where = "type <> 'audit'",
    .max_limit = 10000,
};

/* The role GET /api/v1/audit needs (audit.c's route table decides). */
static int
audit_read_role(void)
{
	const struct http_route *rt;

	for (rt = audit_admin_routes; rt->path != NULL; rt++)
		if (strcmp(rt->method, "GET") == 0 &&
		    strcmp(rt->path, "/api/v1/audit") == 0)
			return rt->role;
	fatalx("audit_read_role: no GET /api/v1/audit route");
}

static void
adm_events(struct http_req *r)
{
	if (admin_authorize(r) == -1)
		return;
	query_reply(r, C(r)->store,
	            r->role >= audit_read_role() ? &event_spec
	                                         : &event_spec_noaudit,
	            event_item, NULL);
}

static const struct query_field sample_fields[] = {
    {"sha256", "sha256", QF_TEXT, QF_EQ | QF_SORT},
    {"agent", "agent_id", QF_TEXT, QF_EQ},
    {"task", "task_id", QF_TEXT, QF_EQ},
    {"size", "size", QF_INT, QF_SORT},
    {"received_at", "received_at", QF_INT, QF_SORT | QF_RANGE},
    {NULL, NULL, 0, 0},
};

static const struct query_spec sample_spec = {
    .table = "samples",
    .columns = "sha256, size, agent_id, task_id, path, received_at",
    .fields = sample_fields,
    .key = "sha256",
    .key_type = QF_TEXT,
    .default_sort = "-received_at",
    .search = "COALESCE(path, '')",
};

static json_t *
sample_item(struct store_rows *q, void *arg)
{
	(void)arg;
	return json_pack("{s:s, s:I, s:s?, s:s?, s:s?, s:I}", "sha256",
	                 store_text(q, 0), "size", (json_int_t)store_int(q, 1),
	                 "agent_id", store_text(q, 2), "task_id",
	                 store_text(q, 3), "path", store_text(q, 4),
	                 "received_at", (json_int_t)store_int(q, 5));
}

/* Archives left behind by a center that died while making one. */
static void
sample_tmp_cleanup(const char *data_dir)
{
	char dir[4200], path[4500];
	struct dirent *de;
	struct stat st;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/samples", data_dir);
	if ((d = opendir(dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, ".download-", 10) != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (stat(path, &st) == 0 && st.st_mtime < time(NULL) - 3600)
			unlink(path);
	}
	closedir(d);
}

/* 0 when the file holds the bytes its name promises. */
int
sample_check(const char *path, const char *sha, struct buf *err)
{
	unsigned char md[EVP_MAX_MD_SIZE], chunk[65536];
	unsigned int mdlen = 0;
	char hex[65];
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	FILE *f = fopen(path, "rb");
	size_t n;
	int rc = -1;

	if (ctx == NULL || f == NULL ||
	    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
		buf_printf(err, "%s: %s", path, strerror(errno));
		goto out;
	}
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		if (EVP_DigestUpdate(ctx, chunk, n) != 1)
			goto out;
	if (ferror(f) || EVP_DigestFinal_ex(ctx, md, &mdlen) != 1) {
		buf_printf(err, "%s: read error", path);
		goto out;
	}
	hex_encode(md, mdlen, hex);
	if (strcmp(hex, sha) != 0) {
		buf_printf(err, "the stored file hashes to %s: damaged on disk",
		           hex);
		goto out;
	}
	rc = 0;
out:
	if (f != NULL)
		fclose(f);
	EVP_MD_CTX_free(ctx);
	return rc;
}

/* Writes an AES-256 encrypted ZIP holding the sample sha (entry name:
 * the hash) to a file in the samples directory and returns it open,
 * already unlinked; libzip reads the sample from disk as it writes, so
 * memory stays bounded whatever the sample's size. */
static int
sample_archive(struct center *c, const char *sha, const char *password, int *fd,
               size_t *len, struct buf *err)
{
	char src[4200], tmp[4200];
	zip_t *za = NULL;
	zip_source_t *zs = NULL;
	zip_int64_t idx;
	struct stat st;
	int zerr = 0, tfd = -1, rc = -1;

	*fd = -1;
	/* Received by another node: taken from the database. */
	if (sample_local(c, sha, src, sizeof(src), err) == -1)
		return -1;
	if (sample_check(src, sha, err) == -1)
		return -1;
	sample_tmp_cleanup(c->conf.data_dir);
	snprintf(tmp, sizeof(tmp), "%s/samples/.download-XXXXXX",
	         c->conf.data_dir);
	if ((tfd = mkstemp(tmp)) == -1) {
		buf_printf(err, "%s: %s", tmp, strerror(errno));
		return -1;
	}
	close(tfd);
	if ((za = zip_open(tmp, ZIP_CREATE | ZIP_TRUNCATE, &zerr)) == NULL) {
		zip_error_t ze;

		zip_error_init_with_code(&ze, zerr);
		buf_printf(err, "zip_open: %s", zip_error_strerror(&ze));
		zip_error_fini(&ze);
		goto fail;
	}
	if ((zs = zip_source_file(za, src, 0, 0)) == NULL ||
	    (idx = zip_file_add(za, sha, zs, ZIP_FL_ENC_UTF_8)) < 0) {
		buf_printf(err, "zip: %s", zip_strerror(za));
		zip_source_free(zs);
		goto fail;
	}
	/* Stored, not deflated: the event loop encrypts, it need not
	 * compress too. */
	if (zip_set_file_compression(za, (zip_uint64_t)idx, ZIP_CM_STORE, 0) ==
	        -1 ||
	    zip_file_set_encryption(za, (zip_uint64_t)idx, ZIP_EM_AES_256,
	                            password) == -1) {
		buf_printf(err, "zip: %s", zip_strerror(za));
		goto fail;
	}
	if (zip_close(za) == -1) {
		buf_printf(err, "zip_close: %s", zip_strerror(za));
		goto fail;
	}
	za = NULL;
	if ((tfd = open(tmp, O_RDONLY | O_CLOEXEC)) == -1 ||
	    fstat(tfd, &st) == -1) {
		buf_printf(err, "%s: %s", tmp, strerror(errno));
		goto fail;
	}
	*fd = tfd;
	*len = (size_t)st.st_size;
	tfd = -1;
	rc = 0;
fail:
	if (za != NULL)
		zip_discard(za);
	if (tfd != -1)
		close(tfd);
	unlink(tmp);
	return rc;
}

static void
sample_download(struct http_req *r, const char *sha)
{
	struct center *c = C(r);
	struct audit_entry a;
	struct store_rows *q;
	struct buf err;
	char disp[128], *pw = NULL;
	size_t len = 0;
	int fd = -1, known;

	buf_init(&err, 1024);
	q = store_query(c->store, "SELECT size FROM samples WHERE sha256 = ?",
	                S_TEXT(sha));
	known = q != NULL && store_next(q) == 1;
	store_done(q);
	if (!known) {
		http_reply_error(r, 404, "not_found", "no sample %s", sha);
		goto out;
	}
	if ((pw = settings_sample_password(c)) == NULL ||
	    sample_archive(c, sha, pw, &fd, &len, &err) == -1) {
		log_warnx("samples: %s: cannot make the archive: %s", sha,
		          buf_cstr(&err));
		http_reply_error(r, 500, "archive_failed",
		                 "cannot make the archive of sample %s: %s",
		                 sha, buf_cstr(&err));
		goto out;
	}
	/* Who took a copy of a malware sample is worth an entry too. */
	memset(&a, 0, sizeof(a));
	a.who = r->who;
	a.addr = r->peer_addr;
	a.action = "sample.download";
	a.target = sha;
	a.status = 200;
	if (audit_append(c, &a) == -1) {
		/* Served and recorded, or neither. */
		close(fd);
		http_reply_error(r, 500, "audit_failed",
		                 "sample %s not served: its audit entry could "
		                 "not be written; the center's log says why",
		                 sha);
		goto out;
	}
	snprintf(disp, sizeof(disp), "attachment; filename=\"%s.zip\"", sha);
	http_set_header(r, "Content-Disposition", disp);
	http_reply_file(r, 200, "application/zip", fd, len);
out:
	if (pw != NULL)
		explicit_bzero(pw, strlen(pw));
	free(pw);
	buf_free(&err);
}

/* GET /api/v1/samples/<sha256> and /api/v1/samples/<sha256>/download */
static void
adm_sample(struct http_req *r)
{
	struct store_rows *q;
	json_t *o = NULL;
	char sha[80];
	const char *action;

	if (admin_authorize(r) == -1)
		return;
	if ((action = http_req_rest_id(r, sha, sizeof(sha))) == NULL ||
	    !hex64_ok(sha)) {
		http_reply_error_field(r, 400, "bad_request", "sha256",
		                       "sha256: 64 lowercase hex digits");
		return;
	}
	if (strcmp(action, "/download") == 0) {
		sample_download(r, sha);
		return;
	}
	if (*action != '\0') {
		http_reply_error(r, 404, "not_found", "no such resource");
		return;
	}
	q = store_query(C(r)->store,
	                "SELECT sha256, size, agent_id, task_id, path, "
	                "received_at FROM samples WHERE sha256 = ?",
	                S_TEXT(sha));
	if (q != NULL && store_next(q) == 1)
		o = sample_item(q, NULL);
	store_done(q);
	if (o == NULL)
		http_reply_error(r, 404, "not_found", "no sample %s", sha);
	else
		http_reply_json(r, 200, o);
}

static void
adm_samples(struct http_req *r)
{
	if (admin_authorize(r) == -1)
		return;
	query_reply(r, C(r)->store, &sample_spec, sample_item, NULL);
}

void
events_declare_metrics(void)
{
	metrics_declare("vigil_events_stored_total", METRIC_COUNTER,
	                "events stored (new)");
	metrics_declare("vigil_events_duplicate_total", METRIC_COUNTER,
	                "events received again and not stored twice");
	metrics_declare("vigil_event_batches_total", METRIC_COUNTER,
	                "event batches by result");
	metrics_declare("vigil_samples_received_total", METRIC_COUNTER,
	                "sample uploads accepted");
}

const struct http_route events_gateway_routes[] = {
    {"POST", "/v1/events", gw_events, HTTP_ROUTE_CERT, "events", 16u << 20},
    {"POST", "/v1/samples", gw_sample, HTTP_ROUTE_CERT, "samples", 0},
    {"GET", "/v1/rules/", gw_rules, HTTP_ROUTE_CERT | HTTP_ROUTE_PREFIX,
     "rules", 1024},
    {NULL, NULL, NULL, 0, NULL, 0, 0},
};

const struct http_route events_admin_routes[] = {
    {"POST", "/api/v1/rules", adm_rules_add, 0, "rules", 0, ROLE_OPERATOR},
    {"GET", "/api/v1/rules", adm_rules, 0, "rules", 0, ROLE_READONLY},
    {"DELETE", "/api/v1/rules/", adm_rules_delete, HTTP_ROUTE_PREFIX, "rule", 0,
     ROLE_OPERATOR},
    {"GET", "/api/v1/events", adm_events, 0, "events", 0, ROLE_READONLY},
    {"GET", "/api/v1/samples", adm_samples, 0, "samples", 0, ROLE_READONLY},
    {"GET", "/api/v1/samples/", adm_sample, HTTP_ROUTE_PREFIX, "sample", 0,
     ROLE_ANALYST},
    {NULL, NULL, NULL, 0, NULL, 0, 0},
};
