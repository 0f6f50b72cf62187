/*
 * kinds.c: what the agent does for each kind of task; one function and one
 * row of kinds[] each, matching the center's table in src/center/tasks.c.
 *
 *   scan          YARA + hash + filename IOC scan of paths (src/scan), with
 *                 findings as events and progress reports
 *   collect       upload a file as a sample (content-addressed)
 *   inventory     processes, listening sockets, users, installed packages
 *   kill-process  SIGKILL a pid, only if its start time still matches
 *   quarantine    move a file into the agent's quarantine, with metadata
 *   restore       put a quarantined file back
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "log.h"
#include "reputation.h"
#include "scan.h"
#include "tls.h"
#include "taskrun.h"

#define COLLECT_MAX_DEFAULT (32LL << 20)

/* Outcome of a handler: result (owned) or a failure reason. */
struct outcome {
	json_t *result;
	char reason[512];
};

static int failf(struct outcome *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
failf(struct outcome *o, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(o->reason, sizeof(o->reason), fmt, ap);
	va_end(ap);
	return -1;
}

static long long
pint(json_t *params, const char *k, long long dflt)
{
	json_t *v = json_object_get(params, k);

	return json_is_integer(v) ? (long long)json_integer_value(v) : dflt;
}

static const char *
pstr(json_t *params, const char *k)
{
	return json_string_value(json_object_get(params, k));
}

/* --- scan ------------------------------------------------------------- */

struct scan_job {
	struct task_run *run;
	struct walk_stats last;
	long long last_report;
	unsigned findings_spooled;
	struct rep_batch *rep; /* NULL: no reputation checks */
};

/* Fetches a rule set by content hash, from the cache or the center, and
 * checks that the bytes are the ones the hash names. */
static int
fetch_rules(struct task_run *run, const char *id, int from_update,
            struct buf *out, struct outcome *o)
{
	char dir[PATH_MAX + 8], file[PATH_MAX + 80], got[65], url[PATH_MAX];
	struct httpc_opts ho;
	struct httpc_resp r;
	struct buf err;
	uint8_t md[32];
	unsigned int mdlen = sizeof(md);
	int rc = -1;

	buf_init(&err, 1024);
	/* A rule set that arrived by update: only the copy verified from
	 * the pinned update root will do, never the center's word. */
	if (agent_updates_rules(run->st, id, out) == 0) {
		buf_free(&err);
		return 0;
	}
	if (from_update) {
		if (agent_updates_check(run->st) == 0 &&
		    agent_updates_rules(run->st, id, out) == 0) {
			buf_free(&err);
			return 0;
		}
		failf(o,
		      "rule set %s arrived by update but is not among those "
		      "this agent verified from its pinned update root; "
		      "refused (the agent's log says why)",
		      id);
		buf_free(&err);
		return -1;
	}
	snprintf(dir, sizeof(dir), "%s/rules", run->st->dir);
	snprintf(file, sizeof(file), "%s/%s", dir, id);
	if (tls_read_file(file, 256u << 20, out, &err) == 0) {
		EVP_Digest(out->data, out->len, md, &mdlen, EVP_sha256(), NULL);
		hex_encode(md, sizeof(md), got);
		if (strcmp(got, id) == 0) {
			buf_free(&err);
			return 0;
		}
		buf_reset(out);
	}
	httpc_resp_init(&r);
	agent_httpc_opts(run->st, 1, &ho);
	snprintf(url, sizeof(url), "%s/v1/rules/%s", run->st->server, id);
	/* A center restarting right after it sent the task: retry a while
	 * (30 s) before failing the scan. */
	for (int tries = 0; tries < 10 && !taskrun_stopping(run); tries++) {
		if ((httpc_request(&ho, "GET", url, NULL, NULL, 0, &r) == 0 &&
		     r.status != 503) ||
		    tries == 9)
			break;
		httpc_resp_free(&r);
		httpc_resp_init(&r);
		sleep(3);
	}
	if (r.status != 200) {
		failf(o, "rule set %s: %s", id,
		      r.status ? "the center does not have it" : r.errmsg);
		goto out;
	}
	EVP_Digest(r.body.data, r.body.len, md, &mdlen, EVP_sha256(), NULL);
	hex_encode(md, sizeof(md), got);
	if (strcmp(got, id) != 0) {
		failf(o, "rule set %s: received content with hash %s", id, got);
		goto out;
	}
	if (buf_append(out, r.body.data, r.body.len) == -1) {
		failf(o, "rule set %s: too large", id);
		goto out;
	}
	if ((mkdir(dir, 0700) == 0 || errno == EEXIST) &&
	    tls_write_file(file, r.body.data, r.body.len, 0600, &err) == -1)
		log_warnx("scan: cannot cache rule set %s: %s", id,
		          buf_cstr(&err));
	rc = 0;
out:
	httpc_resp_free(&r);
	buf_free(&err);
	return rc;
}

static int
scan_on_result(const struct scan_result *r, void *arg)
{
	struct scan_job *j = arg;
	json_t *d;

	/* Every file hashed goes to the reputation check; one with a rule
	 * finding is already a finding. */
	rep_add(j->rep, r, r->level != SCAN_LEVEL_NONE);
	if (r->level == SCAN_LEVEL_NONE)
		return 0;
	if ((d = scan_result_to_json(r)) == NULL)
		return 0;
	if (taskrun_event(j->run, "finding", scan_level_name(r->level), d) == 0)
		j->findings_spooled++;
	json_decref(d);
	return 0;
}

static json_t *
stats_json(const struct walk_stats *s)
{
	return json_pack(
	    "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f}", "seen",
	    (json_int_t)s->seen, "dirs", (json_int_t)s->dirs, "files",
	    (json_int_t)s->scanned, "bytes", (json_int_t)s->bytes, "matched",
	    (json_int_t)s->matched, "findings", (json_int_t)s->findings,
	    "too_big", (json_int_t)s->too_big, "errors", (json_int_t)s->errors,
	    "elapsed", s->elapsed);
}

static void
scan_progress(const struct walk_stats *st, const char *path, void *arg)
{
	struct scan_job *j = arg;
	long long now = (long long)time(NULL);
	json_t *p;

	(void)path;
	j->last = *st;
	if (now - j->last_report < 2)
		return;
	j->last_report = now;
	p = stats_json(st);
	/* The reply may carry a cancellation: it sets run->cancel, which
	 * the walker checks. */
	taskrun_report(j->run, "running", p, NULL, NULL);
	json_decref(p);
}

/*
 * The memory of every process but our own (params.memory), or of those
 * listed in params.pids: YARA over
 * /proc/PID/mem through libyara, filename IOCs against the executable's
 * path. Kernel threads (no executable) are skipped; a process we may not
 * read (no root, Yama) is counted, not fatal. Each process is stopped by
 * ptrace while it is scanned.
 */
/* 1 when pid is to be scanned: every pid, or one of params.pids. */
static int
pid_wanted(json_t *pids, int pid)
{
	size_t i;
	json_t *e;

	if (json_array_size(pids) == 0)
		return 1;
	json_array_foreach(pids, i,
	                   e) if (json_integer_value(e) == pid) return 1;
	return 0;
}

static int
scan_processes(struct scan_ctx *ctx, struct scan_job *job, json_t *stats)
{
	json_t *pids = json_object_get(job->run->params, "pids");
	long long scanned = 0, denied = 0, findings = 0;
	struct scan_result r;
	struct dirent *de;
	char link[64], exe[4096];
	pid_t self = getpid();
	ssize_t n;
	DIR *d;
	json_t *j;
	int pid, rc;

	if ((d = opendir("/proc")) == NULL)
		return -errno;
	while ((de = readdir(d)) != NULL) {
		if (atomic_load(job->run->cancel)) {
			closedir(d);
			return -ECANCELED;
		}
		if (de->d_name[0] < '1' || de->d_name[0] > '9' ||
		    strspn(de->d_name, "0123456789") != strlen(de->d_name) ||
		    strlen(de->d_name) > 9)
			continue;
		pid = (int)strtol(de->d_name, NULL, 10);
		if (pid == self || !pid_wanted(pids, pid))
			continue;
		snprintf(link, sizeof(link), "/proc/%d/exe", pid);
		if ((n = readlink(link, exe, sizeof(exe) - 1)) <= 0) {
			if (errno == EACCES || errno == EPERM)
				denied++;
			continue; /* kernel thread, or gone */
		}
		exe[n] = '\0';
		rc = scan_proc(ctx, pid, exe, &r);
		if (rc == -EPERM || rc == -EIO)
			denied++;
		else if (rc == 0) {
			scanned++;
			if (r.level != SCAN_LEVEL_NONE &&
			    (j = scan_result_to_json(&r)) != NULL) {
				json_object_set_new(j, "type",
				                    json_string("process"));
				json_object_set_new(j, "process",
				                    json_pack("{s:i, s:s}",
				                              "pid", pid, "exe",
				                              exe));
				if (taskrun_event(job->run, "finding",
				                  scan_level_name(r.level),
				                  j) == 0)
					job->findings_spooled++;
				findings++;
				json_decref(j);
			}
		}
		scan_result_free(&r);
	}
	closedir(d);
	json_object_set_new(stats, "processes", json_integer(scanned));
	json_object_set_new(stats, "processes_denied", json_integer(denied));
	json_object_set_new(stats, "process_findings", json_integer(findings));
	return 0;
}

static int
do_scan(struct task_run *run, struct outcome *o)
{
	json_t *rules = json_object_get(run->params, "rules"), *e;
	json_t *paths = json_object_get(run->params, "paths");
	json_t *excl = json_object_get(run->params, "exclude");
	struct scan_src *src = NULL;
	struct buf *bodies = NULL, err;
	struct scan_bundle *bundle = NULL;
	struct scan_ctx *ctx = NULL;
	struct scan_opts so;
	struct walk_opts wo;
	struct walk_stats ws;
	struct scan_job job;
	const char **pv = NULL, **ev = NULL;
	size_t nr = json_array_size(rules), i, np, ne;
	int rc = -1, wr;

	buf_init(&err, 8192);
	memset(&wo, 0, sizeof(wo));
	memset(&job, 0, sizeof(job));
	job.run = run;
	/* Without rule sets a scan checks the files' reputation only. */
	if (nr == 0 &&
	    json_is_false(json_object_get(run->params, "reputation")))
		return failf(o, "no rule sets in the task, and reputation off");
	src = calloc(nr + 1, sizeof(*src));
	bodies = calloc(nr + 1, sizeof(*bodies));
	if (src == NULL || bodies == NULL) {
		failf(o, "out of memory");
		goto out;
	}
	json_array_foreach(rules, i, e)
	{
		const char *id = json_string_value(json_object_get(e, "id"));
		const char *kind =
		    json_string_value(json_object_get(e, "kind"));

		buf_init(&bodies[i], 256u << 20);
		if (id == NULL || kind == NULL) {
			failf(o, "rules[%zu]: malformed", i);
			goto out;
		}
		if (fetch_rules(run, id,
		                json_is_true(json_object_get(e, "update")),
		                &bodies[i], o) == -1)
			goto out;
		src[i].type =
		    strcmp(kind, "yara") == 0 ? SCAN_SRC_YARA : SCAN_SRC_IOC;
		src[i].name = json_string_value(json_object_get(e, "name"));
		src[i].data = bodies[i].data;
		src[i].len = bodies[i].len;
	}
	if (scan_bundle_new(src, nr, &bundle, &err) == -1) {
		failf(o, "rules do not compile here: %.400s", buf_cstr(&err));
		goto out;
	}
	scan_opts_default(&so);
	if (json_object_get(run->params, "max_size") != NULL)
		so.max_size = (uint64_t)pint(run->params, "max_size", 0);
	/* Reputation (on unless params.reputation is false): every file's
	 * SHA-256, checked with the center in batches. */
	if (!json_is_false(json_object_get(run->params, "reputation")) &&
	    (job.rep = rep_new(run, &so, &job.findings_spooled)) != NULL) {
		so.hashes |= SCAN_HASH_SHA256;
		wo.report_all = 1;
	}
	if (scan_ctx_new(bundle, &so, &ctx) != 0) {
		failf(o, "cannot set up the scanner");
		goto out;
	}
	np = json_array_size(paths);
	ne = json_array_size(excl);
	pv = calloc(np + 1, sizeof(*pv));
	ev = calloc(ne + 1, sizeof(*ev));
	if (pv == NULL || ev == NULL) {
		failf(o, "out of memory");
		goto out;
	}
	json_array_foreach(paths, i, e) pv[i] = json_string_value(e);
	json_array_foreach(excl, i, e) ev[i] = json_string_value(e);
	wo.exclude = ev;
	wo.nexclude = ne;
	wo.one_fs = json_is_true(json_object_get(run->params, "one_fs"));
	wo.nice = (int)pint(run->params, "nice", 10);
	wo.files_per_sec = (double)pint(run->params, "files_per_sec", 0);
	wo.mb_per_sec = (double)pint(run->params, "mb_per_sec", 0);
	wo.progress_ms = 1000;
	wo.progress = scan_progress;
	wo.on_result = scan_on_result;
	wo.arg = &job;
	wo.cancel = run->cancel;
	taskrun_report(run, "running", NULL, NULL, NULL);
	memset(&ws, 0, sizeof(ws));
	wr = np > 0 ? walk_run(ctx, pv, np, &wo, &ws) : 0;
	o->result = stats_json(&ws);
	rep_finish(job.rep, o->result); /* the files' last batch */
	job.rep = NULL;
	if (wr == 0 && json_is_true(json_object_get(run->params, "memory")))
		wr = scan_processes(ctx, &job, o->result);
	json_object_set_new(o->result, "ruleset_version",
	                    json_string(scan_bundle_version(bundle)));
	if (wr == -ECANCELED) {
		failf(o, "cancelled after %llu files",
		      (unsigned long long)ws.scanned);
		goto out;
	}
	if (wr != 0) {
		failf(o, "scan failed: %s", strerror(-wr));
		goto out;
	}
	rc = 0;
out:
	rep_finish(job.rep, NULL);
	scan_ctx_free(ctx);
	scan_bundle_free(bundle);
	for (i = 0; bodies != NULL && i < nr; i++)
		buf_free(&bodies[i]);
	free(bodies);
	free(src);
	free(pv);
	free(ev);
	buf_free(&err);
	return rc;
}

/* --- collect ---------------------------------------------------------- */

static int
do_collect(struct task_run *run, struct outcome *o)
{
	const char *path = pstr(run->params, "path");
	long long max = pint(run->params, "max_size", COLLECT_MAX_DEFAULT);
	struct httpc_opts ho;
	struct httpc_resp r;
	struct buf data, url;
	uint8_t md[32];
	unsigned int mdlen = sizeof(md);
	char hex[65];
	struct stat st;
	ssize_t n;
	int fd = -1, rc = -1;

	buf_init(&data, (size_t)max + 1);
	buf_init(&url, 16384);
	httpc_resp_init(&r);
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)) ==
	    -1) {
		failf(o, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		failf(o, "%s: not a regular file", path);
		goto out;
	}
	if (st.st_size > max) {
		failf(o, "%s: %lld bytes, more than max_size %lld", path,
		      (long long)st.st_size, max);
		goto out;
	}
	for (;;) {
		uint8_t chunk[65536];

		if ((n = read(fd, chunk, sizeof(chunk))) == 0)
			break;
		if (n == -1) {
			if (errno == EINTR)
				continue;
			failf(o, "%s: read: %s", path, strerror(errno));
			goto out;
		}
		if (buf_append(&data, chunk, (size_t)n) == -1) {
			failf(o, "%s: grew past max_size while read", path);
			goto out;
		}
	}
	EVP_Digest(data.data, data.len, md, &mdlen, EVP_sha256(), NULL);
	hex_encode(md, sizeof(md), hex);
	if (buf_printf(&url, "%s/v1/samples?sha256=%s&task=%s&path=",
	               run->st->server, hex, run->id) == -1 ||
	    httpc_urlenc(&url, path) == -1) {
		failf(o, "%s: path too long", path);
		goto out;
	}
	agent_httpc_opts(run->st, 1, &ho);
	ho.timeout_secs = 600;
	if (httpc_request(&ho, "POST", buf_cstr(&url),
	                  "application/octet-stream", data.data, data.len,
	                  &r) == -1 ||
	    r.status != 200) {
		failf(o, "upload of %s failed: %s", path,
		      r.status ? (const char *)buf_cstr(&r.body) : r.errmsg);
		goto out;
	}
	o->result = json_pack("{s:s, s:s, s:I}", "path", path, "sha256", hex,
	                      "size", (json_int_t)data.len);
	rc = 0;
out:
	if (fd != -1)
		close(fd);
	httpc_resp_free(&r);
	buf_free(&data);
	buf_free(&url);
	return rc;
}

/* --- inventory -------------------------------------------------------- */

/* Field 22 of /proc/PID/stat: start time in clock ticks since boot. The
 * command name (field 2) may hold spaces and parentheses: parse after the
 * last ')'. */
static int
proc_start_time(int pid, long long *start, char *comm, size_t commlen)
{
	char path[64], line[4096], *rp, *lp;
	FILE *f;
	int i;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if ((f = fopen(path, "re")) == NULL)
		return -1;
	if (fgets(line, sizeof(line), f) == NULL) {
		fclose(f);
		return -1;
	}
	fclose(f);
	if ((lp = strchr(line, '(')) == NULL ||
	    (rp = strrchr(line, ')')) == NULL || rp < lp)
		return -1;
	if (comm != NULL)
		snprintf(comm, commlen, "%.*s", (int)(rp - lp - 1), lp + 1);
	/* After ") " comes field 3; field 22 is 19 fields further. */
	rp += 2;
	for (i = 3; i < 22 && rp != NULL; i++) {
		rp = strchr(rp, ' ');
		if (rp != NULL)
			rp++;
	}
	if (rp == NULL)
		return -1;
	rp[strcspn(rp, " \n")] = '\0';
	return str_to_ll(rp, 0, 1LL << 62, start);
}

static json_t *
inv_processes(void)
{
	json_t *a = json_array();
	struct dirent *de;
	DIR *d;

	if ((d = opendir("/proc")) == NULL)
		return a;
	while ((de = readdir(d)) != NULL) {
		long long pid, start;
		char comm[256], exe[PATH_MAX], path[64];
		ssize_t n;
		struct stat st;

		if (str_to_ll(de->d_name, 1, 1LL << 22, &pid) == -1 ||
		    proc_start_time((int)pid, &start, comm, sizeof(comm)) == -1)
			continue;
		snprintf(path, sizeof(path), "/proc/%lld/exe", pid);
		n = readlink(path, exe, sizeof(exe) - 1);
		exe[n > 0 ? n : 0] = '\0';
		snprintf(path, sizeof(path), "/proc/%lld", pid);
		json_array_append_new(
		    a, json_pack(
		           "{s:I, s:s, s:s, s:I, s:I}", "pid", (json_int_t)pid,
		           "name", comm, "exe", exe, "start_time",
		           (json_int_t)start, "uid",
		           (json_int_t)(stat(path, &st) == 0 ? st.st_uid : 0)));
	}
	closedir(d);
	return a;
}

/* Listening TCP sockets and bound UDP sockets from /proc/net. */
static void
inv_sockets_file(json_t *a, const char *file, const char *proto,
                 int listen_only)
{
	char line[512];
	FILE *f;

	if ((f = fopen(file, "re")) == NULL)
		return;
	if (fgets(line, sizeof(line), f) == NULL) { /* header */
		fclose(f);
		return;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		char local[128], remote[128];
		unsigned state, port;
		unsigned long inode;
		int uid;

		if (sscanf(line, "%*d: %127s %127s %x %*s %*s %*s %d %*d %lu",
		           local, remote, &state, &uid, &inode) != 5)
			continue;
		if (listen_only && state != 0x0A) /* TCP_LISTEN */
			continue;
		{
			char *colon = strrchr(local, ':');

			if (colon == NULL ||
			    sscanf(colon + 1, "%x", &port) != 1)
				continue;
			*colon = '\0';
		}
		json_array_append_new(
		    a, json_pack("{s:s, s:s, s:i, s:i, s:I}", "proto", proto,
		                 "address_hex", local, "port", (int)port, "uid",
		                 uid, "inode", (json_int_t)inode));
	}
	fclose(f);
}

static json_t *
inv_users(void)
{
	json_t *a = json_array();
	char line[1024];
	FILE *f;

	if ((f = fopen("/etc/passwd", "re")) == NULL)
		return a;
	while (fgets(line, sizeof(line), f) != NULL) {
		char *rest = line, *name, *pw, *uid, *gid, *gecos, *home, *sh;
		long long u, g;

		/* strsep keeps empty fields (an empty GECOS is common). */
		line[strcspn(line, "\n")] = '\0';
		name = strsep(&rest, ":");
		pw = strsep(&rest, ":");
		uid = strsep(&rest, ":");
		gid = strsep(&rest, ":");
		gecos = strsep(&rest, ":");
		home = strsep(&rest, ":");
		sh = strsep(&rest, ":");
		(void)pw;
		(void)gecos;
		if (name == NULL || uid == NULL || gid == NULL ||
		    str_to_ll(uid, 0, 1LL << 32, &u) == -1 ||
		    str_to_ll(gid, 0, 1LL << 32, &g) == -1)
			continue;
		json_array_append_new(
		    a,
		    json_pack("{s:s, s:I, s:I, s:s, s:s}", "name", name, "uid",
		              (json_int_t)u, "gid", (json_int_t)g, "home",
		              home ? home : "", "shell", sh ? sh : ""));
	}
	fclose(f);
	return a;
}

/* Installed packages from dpkg's status file (Debian family). */
static json_t *
inv_packages(void)
{
	json_t *a = json_array();
	char line[4096], pkg[256] = "", ver[256] = "", status[256] = "";
	FILE *f;

	if ((f = fopen("/var/lib/dpkg/status", "re")) == NULL)
		return a;
	for (;;) {
		int eof = fgets(line, sizeof(line), f) == NULL;

		if (eof || line[0] == '\n') {
			if (pkg[0] && strstr(status, "installed") != NULL &&
			    strstr(status, "not-installed") == NULL)
				json_array_append_new(
				    a, json_pack("{s:s, s:s}", "name", pkg,
				                 "version", ver));
			pkg[0] = ver[0] = status[0] = '\0';
			if (eof)
				break;
			continue;
		}
		line[strcspn(line, "\n")] = '\0';
		if (strncmp(line, "Package: ", 9) == 0)
			snprintf(pkg, sizeof(pkg), "%.255s", line + 9);
		else if (strncmp(line, "Version: ", 9) == 0)
			snprintf(ver, sizeof(ver), "%.255s", line + 9);
		else if (strncmp(line, "Status: ", 8) == 0)
			snprintf(status, sizeof(status), "%.255s", line + 8);
	}
	fclose(f);
	return a;
}

static int
do_inventory(struct task_run *run, struct outcome *o)
{
	json_t *inv, *socks = json_array();

	inv_sockets_file(socks, "/proc/net/tcp", "tcp", 1);
	inv_sockets_file(socks, "/proc/net/tcp6", "tcp6", 1);
	inv_sockets_file(socks, "/proc/net/udp", "udp", 0);
	inv_sockets_file(socks, "/proc/net/udp6", "udp6", 0);
	inv = json_pack("{s:o, s:o, s:o, s:o}", "processes", inv_processes(),
	                "listening", socks, "users", inv_users(), "packages",
	                inv_packages());
	if (inv == NULL)
		return failf(o, "out of memory");
	/* The inventory itself is an event (it may be large); the result
	 * only counts. */
	if (taskrun_event(run, "inventory", "info", inv) == -1) {
		json_decref(inv);
		return failf(o, "cannot spool the inventory");
	}
	o->result = json_pack(
	    "{s:I, s:I, s:I, s:I}", "processes",
	    (json_int_t)json_array_size(json_object_get(inv, "processes")),
	    "listening",
	    (json_int_t)json_array_size(json_object_get(inv, "listening")),
	    "users", (json_int_t)json_array_size(json_object_get(inv, "users")),
	    "packages",
	    (json_int_t)json_array_size(json_object_get(inv, "packages")));
	json_decref(inv);
	return 0;
}

/* --- kill-process ----------------------------------------------------- */

static int
do_kill(struct task_run *run, struct outcome *o)
{
	long long pid = pint(run->params, "pid", 0);
	long long want = pint(run->params, "start_time", -1), have;
	char comm[256] = "";

	if (pid <= 1)
		return failf(o, "pid %lld: refused", pid);
	if (proc_start_time((int)pid, &have, comm, sizeof(comm)) == -1)
		return failf(o, "pid %lld: no such process", pid);
	/* The pid may have been reused since the operator looked. */
	if (have != want)
		return failf(o,
		             "pid %lld (%s) started at %lld, not %lld: a "
		             "different process now; nothing killed",
		             pid, comm, have, want);
	if (kill((pid_t)pid, SIGKILL) == -1)
		return failf(o, "pid %lld (%s): %s", pid, comm,
		             strerror(errno));
	taskrun_event(run, "response", "notice",
	              json_pack("{s:s, s:I, s:s}", "action", "kill-process",
	                        "pid", (json_int_t)pid, "name", comm));
	o->result =
	    json_pack("{s:I, s:s}", "pid", (json_int_t)pid, "name", comm);
	return 0;
}

/* --- quarantine / restore --------------------------------------------- */

static int
copy_fd(int in, int out)
{
	uint8_t b[65536];
	ssize_t n;

	while ((n = read(in, b, sizeof(b))) != 0) {
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (write(out, b, (size_t)n) != n)
			return -1;
	}
	return fsync(out);
}

/* Moves src to dst (0600): rename, or copy + unlink across file systems. */
static int
move_file(const char *src, const char *dst, struct outcome *o)
{
	int in, out, rc;

	if (rename(src, dst) == 0)
		return chmod(dst, 0600);
	if (errno != EXDEV)
		return failf(o, "%s: %s", src, strerror(errno));
	if ((in = open(src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1)
		return failf(o, "%s: %s", src, strerror(errno));
	if ((out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) ==
	    -1) {
		close(in);
		return failf(o, "%s: %s", dst, strerror(errno));
	}
	rc = copy_fd(in, out);
	close(in);
	if (close(out) == -1 || rc == -1) {
		unlink(dst);
		return failf(o, "copying %s: %s", src, strerror(errno));
	}
	if (unlink(src) == -1) {
		unlink(dst);
		return failf(o, "%s: %s", src, strerror(errno));
	}
	return 0;
}

static int
do_quarantine(struct task_run *run, struct outcome *o)
{
	const char *path = pstr(run->params, "path");
	char dir[PATH_MAX + 16], dst[PATH_MAX + 64], meta[PATH_MAX + 80];
	char id[33], hex[65];
	uint8_t rnd[16], md[32];
	unsigned int mdlen = sizeof(md);
	struct buf data, err;
	struct stat st;
	json_t *m = NULL;
	char *ms = NULL;
	int rc = -1;

	buf_init(&data, 1u << 30);
	buf_init(&err, 1024);
	if (lstat(path, &st) == -1 || !S_ISREG(st.st_mode)) {
		failf(o, "%s: not a regular file", path);
		goto out;
	}
	if (tls_read_file(path, 1u << 30, &data, &err) == -1) {
		failf(o, "%s", buf_cstr(&err));
		goto out;
	}
	EVP_Digest(data.data, data.len, md, &mdlen, EVP_sha256(), NULL);
	hex_encode(md, sizeof(md), hex);
	if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
		failf(o, "no randomness");
		goto out;
	}
	hex_encode(rnd, sizeof(rnd), id);
	snprintf(dir, sizeof(dir), "%s/quarantine", run->st->dir);
	if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
		failf(o, "%s: %s", dir, strerror(errno));
		goto out;
	}
	snprintf(dst, sizeof(dst), "%s/%s.bin", dir, id);
	snprintf(meta, sizeof(meta), "%s/%s.json", dir, id);
	m = json_pack("{s:s, s:s, s:s, s:I, s:i, s:i, s:i, s:I, s:I}", "id", id,
	              "path", path, "sha256", hex, "size",
	              (json_int_t)st.st_size, "mode", (int)(st.st_mode & 07777),
	              "uid", (int)st.st_uid, "gid", (int)st.st_gid, "mtime",
	              (json_int_t)st.st_mtime, "quarantined_at",
	              (json_int_t)time(NULL));
	ms = json_dumps(m, JSON_INDENT(2));
	/* Metadata first: a crash between the two leaves a record of where
	 * the file was, never an anonymous file. */
	if (ms == NULL ||
	    tls_write_file(meta, ms, strlen(ms), 0600, &err) == -1) {
		failf(o, "%s", buf_cstr(&err));
		goto out;
	}
	if (move_file(path, dst, o) == -1) {
		unlink(meta);
		goto out;
	}
	taskrun_event(run, "response", "notice",
	              json_pack("{s:s, s:s, s:s, s:s}", "action", "quarantine",
	                        "path", path, "sha256", hex, "quarantine_id",
	                        id));
	o->result = json_incref(m);
	rc = 0;
out:
	free(ms);
	json_decref(m);
	buf_free(&data);
	buf_free(&err);
	return rc;
}

static int
do_restore(struct task_run *run, struct outcome *o)
{
	const char *id = pstr(run->params, "id");
	char meta[PATH_MAX + 80], bin[PATH_MAX + 80];
	json_t *m = NULL;
	const char *path;
	struct buf text, err;
	struct stat st;
	size_t i;
	int rc = -1;

	buf_init(&text, 65536);
	buf_init(&err, 1024);
	for (i = 0; id[i] != '\0'; i++)
		if (!((id[i] >= '0' && id[i] <= '9') ||
		      (id[i] >= 'a' && id[i] <= 'f')))
			return failf(o, "id: not a quarantine id");
	snprintf(meta, sizeof(meta), "%s/quarantine/%s.json", run->st->dir, id);
	snprintf(bin, sizeof(bin), "%s/quarantine/%s.bin", run->st->dir, id);
	if (tls_read_file(meta, 65536, &text, &err) == -1 ||
	    (m = json_loadb((const char *)text.data, text.len, 0, NULL)) ==
	        NULL ||
	    (path = json_string_value(json_object_get(m, "path"))) == NULL) {
		failf(o, "no quarantined file %s", id);
		goto out;
	}
	if (lstat(path, &st) == 0) {
		failf(o, "%s exists again; not overwritten", path);
		goto out;
	}
	if (move_file(bin, path, o) == -1)
		goto out;
	if (chmod(path, (mode_t)json_integer_value(
	                    json_object_get(m, "mode"))) == -1 ||
	    chown(path, (uid_t)json_integer_value(json_object_get(m, "uid")),
	          (gid_t)json_integer_value(json_object_get(m, "gid"))) == -1)
		log_warn("restore: %s: mode or owner", path);
	unlink(meta);
	taskrun_event(run, "response", "notice",
	              json_pack("{s:s, s:s, s:s}", "action", "restore", "path",
	                        path, "quarantine_id", id));
	o->result = json_pack("{s:s, s:s}", "id", id, "path", path);
	rc = 0;
out:
	json_decref(m);
	buf_free(&text);
	buf_free(&err);
	return rc;
}

/* --- the table ---------------------------------------------------------- */

static const struct {
	const char *name;
	int (*fn)(struct task_run *, struct outcome *);
} kinds[] = {
    {"scan", do_scan},
    {"collect", do_collect},
    {"inventory", do_inventory},
    {"kill-process", do_kill},
    {"quarantine", do_quarantine},
    {"restore", do_restore},
};

void
kinds_run(struct task_run *run)
{
	struct outcome o;
	size_t i;
	int rc = -1;

	memset(&o, 0, sizeof(o));
	log_info("task %s: %s started", run->id, run->kind);
	/* Tells the center the task arrived (else it sends it again). */
	taskrun_report(run, "running", NULL, NULL, NULL);
	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strcmp(kinds[i].name, run->kind) == 0)
			break;
	if (i == sizeof(kinds) / sizeof(kinds[0]))
		failf(&o, "this agent (version %s) does not know task kind %s",
		      VIGIL_VERSION, run->kind);
	else
		rc = kinds[i].fn(run, &o);
	if (rc == 0) {
		log_info("task %s: %s done", run->id, run->kind);
		taskrun_report(run, "done", NULL, o.result, NULL);
	} else {
		log_warnx("task %s: %s failed: %s", run->id, run->kind,
		          o.reason);
		taskrun_report(run, "failed", NULL, o.result, o.reason);
	}
	json_decref(o.result);
}
