/*
 * upgrade.c: the agent replacing its own binary (docs/updates.md, "Agent
 * upgrades"). The center names an agent artifact in a heartbeat reply
 * when a rollout selects this agent; the agent then
 *
 *   1. takes the artifact only from its own verified update repository
 *      (updates.c: checked from the root pinned at enrollment; the hash
 *      the center names must be the signed one for this platform);
 *   2. stages it next to the running binary (EXE.new, fsync'd), keeps the
 *      running one as EXE.prev (a hard link) and renames EXE.new over EXE;
 *   3. leaves a watchdog behind (a forked copy of the old program) and
 *      executes the new binary with the same arguments. The new agent is
 *      on probation (DATA/upgrade.probation) until its first accepted
 *      heartbeat, which ends it. Should the new agent exit, or fail to
 *      check in before the deadline, the watchdog stops it, renames
 *      EXE.prev back over EXE, records why in DATA/upgrade-result.json and
 *      becomes the agent again with the previous binary, which reports
 *      the failure and never tries that artifact again.
 *
 * The watchdog does no allocation after the fork (it may be forked from
 * a process that had threads): stat, open, write, rename, kill, execv.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "agent.h"
#include "log.h"
#include "tls.h"
#include "updc.h"

#define UPG_MAX_BINARY (512u << 20)

char **agent_argv; /* main.c: a copy of main's arguments */
int agent_upgrade_packaged;
int agent_supervised;

/* Where the Debian package says it installed the binary: the marker
 * PREFIX/lib/vigil-agent/packaged for EXE = PREFIX/bin/vigil-agent
 * (debian/vigil-agent.install), or EXE listed in dpkg's file list of
 * vigil-agent (read only). 1 with why filled when packaged. */
static int
packaged(const char *exe, char *why, size_t n)
{
	static const char list[] = "/var/lib/dpkg/info/vigil-agent.list";
	char marker[PATH_MAX + 64], line[PATH_MAX + 2];
	const char *s1, *s2 = NULL;
	FILE *f;
	size_t len = strlen(exe);

	/* PREFIX is the directory above the binary's directory. */
	if ((s1 = strrchr(exe, '/')) != NULL) {
		for (const char *p = exe; p < s1; p++)
			if (*p == '/')
				s2 = p;
	}
	if (s2 != NULL) {
		snprintf(marker, sizeof(marker),
		         "%.*s/lib/vigil-agent/packaged", (int)(s2 - exe), exe);
		if (access(marker, F_OK) == 0) {
			snprintf(
			    why, n,
			    "%.160s was installed by the vigil-agent package "
			    "(%.160s): upgrade the package instead (apt "
			    "install "
			    "vigil-agent=VERSION), or run the agent with "
			    "--upgrade-packaged",
			    exe, marker);
			return 1;
		}
	}
	if ((f = fopen(list, "re")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, exe, len) == 0 &&
		    (line[len] == '\n' || line[len] == '\0')) {
			fclose(f);
			snprintf(
			    why, n,
			    "%.160s was installed by the vigil-agent package "
			    "(%s lists it): upgrade the package instead "
			    "(apt install vigil-agent=VERSION), or run the "
			    "agent with --upgrade-packaged",
			    exe, list);
			return 1;
		}
	}
	fclose(f);
	return 0;
}

static void
write_refusal(const struct agent_state *st, const char *sha,
              const char *version, const char *why)
{
	char p[PATH_MAX + 32];
	struct buf err;
	json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:I}", "state", "refused",
	                      "sha256", sha, "version", version, "reason", why,
	                      "time", (json_int_t)time(NULL));
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;

	buf_init(&err, 512);
	snprintf(p, sizeof(p), "%s/upgrade-result.json", st->dir);
	if (s != NULL && tls_write_file(p, s, strlen(s), 0644, &err) == -1)
		log_warnx("upgrade: %s", buf_cstr(&err));
	free(s);
	json_decref(j);
	buf_free(&err);
}

int
agent_upgrade_wanted(struct agent_state *st, json_t *req)
{
	const char *name = json_string_value(json_object_get(req, "target"));
	const char *sha = json_string_value(json_object_get(req, "sha256"));
	const char *ver = json_string_value(json_object_get(req, "version"));
	char failed[65] = "", why[600], prior[600], exe[PATH_MAX];
	ssize_t n;

	if (name == NULL || sha == NULL || strlen(sha) != 64 || ver == NULL)
		return 0;
	if (agent_binary_sha256() != NULL &&
	    strcmp(agent_binary_sha256(), sha) == 0)
		return 0; /* already running it */
	if (agent_upgrade_result(st, failed, why, sizeof(why)) == 0 &&
	    strcmp(failed, sha) == 0)
		return 0; /* tried and rolled back: never again */
	if (agent_upgrade_packaged)
		return 1;
	if ((n = readlink("/proc/self/exe", exe, sizeof(exe) - 1)) <= 0)
		return 1; /* agent_upgrade says why */
	exe[n] = '\0';
	if (!packaged(exe, why, sizeof(why)))
		return 1;
	/* Recorded and logged once per binary asked for. */
	if (agent_upgrade_refusal(st, failed, prior, sizeof(prior)) != 0 ||
	    strcmp(failed, sha) != 0) {
		log_warnx("upgrade: %s version %s refused: %s", name, ver, why);
		write_refusal(st, sha, ver, why);
	}
	return 0;
}

static char self_sha[65];

const char *
agent_binary_sha256(void)
{
	struct buf b, err;
	uint8_t md[32];
	unsigned int n = sizeof(md);

	if (self_sha[0] != '\0')
		return self_sha;
	buf_init(&b, UPG_MAX_BINARY);
	buf_init(&err, 256);
	if (tls_read_file("/proc/self/exe", UPG_MAX_BINARY, &b, &err) == 0) {
		EVP_Digest(b.data, b.len, md, &n, EVP_sha256(), NULL);
		hex_encode(md, sizeof(md), self_sha);
	}
	buf_free(&b);
	buf_free(&err);
	return self_sha[0] != '\0' ? self_sha : NULL;
}

const char *
agent_platform(void)
{
	static char p[96];
	struct utsname u;

	if (p[0] == '\0' && uname(&u) == 0)
		snprintf(p, sizeof(p), "linux-%s", u.machine);
	return p;
}

static void
dpath(const struct agent_state *st, const char *name, char *out, size_t n)
{
	snprintf(out, n, "%s/%s", st->dir, name);
}

/* After an accepted heartbeat: the probation, if any, has ended well. */
void
agent_upgrade_checked_in(struct agent_state *st)
{
	char p[PATH_MAX + 32], r[PATH_MAX + 32], s[512];
	struct buf err;
	int n;

	dpath(st, "upgrade.probation", p, sizeof(p));
	if (!agent_file_exists(p))
		return;
	buf_init(&err, 512);
	dpath(st, "upgrade-result.json", r, sizeof(r));
	n = snprintf(
	    s, sizeof(s),
	    "{\"state\": \"ok\", \"sha256\": \"%s\", \"time\": %lld}\n",
	    agent_binary_sha256() ? agent_binary_sha256() : "",
	    (long long)time(NULL));
	if (tls_write_file(r, s, (size_t)n, 0644, &err) == -1)
		log_warnx("upgrade: %s", buf_cstr(&err));
	if (unlink(p) == -1)
		log_warn("upgrade: %s", p);
	log_info("upgrade: this agent (%s) checked in; the upgrade is done",
	         VIGIL_VERSION);
	buf_free(&err);
}

static int result_of(const struct agent_state *st, const char *state,
                     char failed[65], char *why, size_t n);

int
agent_upgrade_result(const struct agent_state *st, char failed[65], char *why,
                     size_t n)
{
	return result_of(st, "rolled_back", failed, why, n);
}

static int packaged(const char *exe, char *why, size_t n);

/* A refusal stands while its reason does: not once the agent runs with
 * --upgrade-packaged, or its binary is no longer the package's. */
int
agent_upgrade_refusal(const struct agent_state *st, char sha[65], char *why,
                      size_t n)
{
	char exe[PATH_MAX], tmp[8];
	ssize_t k;

	if (result_of(st, "refused", sha, why, n) != 0 ||
	    agent_upgrade_packaged)
		return -1;
	if ((k = readlink("/proc/self/exe", exe, sizeof(exe) - 1)) <= 0)
		return 0;
	exe[k] = '\0';
	return packaged(exe, tmp, sizeof(tmp)) ? 0 : -1;
}

/* The result of the last upgrade, for the heartbeat: when it is in that
 * state, fills failed (its SHA-256) and why; 0 when there is one. */
static int
result_of(const struct agent_state *st, const char *state, char failed[65],
          char *why, size_t n)
{
	char p[PATH_MAX + 32];
	json_error_t je;
	json_t *j;
	const char *s, *w;
	int rc = -1;

	dpath(st, "upgrade-result.json", p, sizeof(p));
	if ((j = json_load_file(p, 0, &je)) == NULL)
		return -1;
	s = json_string_value(json_object_get(j, "sha256"));
	w = json_string_value(json_object_get(j, "reason"));
	if (strcmp(json_string_value(json_object_get(j, "state")) ?: "",
	           state) == 0 &&
	    s != NULL && strlen(s) == 64) {
		snprintf(failed, 65, "%s", s);
		snprintf(why, n, "%s", w ? w : state);
		for (char *c = why; *c; c++)
			if ((unsigned char)*c < 0x20)
				*c = ' ';
		rc = 0;
	}
	json_decref(j);
	return rc;
}

/* ---- the watchdog (no allocation from here on) ---- */

static int
is_gone(pid_t pid)
{
	char p[64], b[256];
	ssize_t n;
	int fd;
	char *rp;

	snprintf(p, sizeof(p), "/proc/%ld/stat", (long)pid);
	if ((fd = open(p, O_RDONLY | O_CLOEXEC)) == -1)
		return 1;
	n = read(fd, b, sizeof(b) - 1);
	close(fd);
	if (n <= 0)
		return 1;
	b[n] = '\0';
	/* "pid (comm) S ...": the state after the last ')'. */
	if ((rp = strrchr(b, ')')) == NULL || rp[1] == '\0')
		return 0;
	return rp[2] == 'Z' || rp[2] == 'X';
}

static void
write_result(const char *path, const char *sha, const char *version,
             const char *why)
{
	char tmp[PATH_MAX + 48], s[1024];
	int fd, n;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	n = snprintf(s, sizeof(s),
	             "{\"state\": \"rolled_back\", \"sha256\": \"%s\", "
	             "\"version\": \"%s\", \"reason\": \"%s\", \"time\": "
	             "%lld, \"pid\": %ld}\n",
	             sha, version, why, (long long)time(NULL), (long)getpid());
	if (n < 0 || (size_t)n >= sizeof(s))
		return;
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) ==
	    -1)
		return;
	if (write(fd, s, (size_t)n) == n && fsync(fd) == 0) {
		close(fd);
		rename(tmp, path);
		return;
	}
	close(fd);
	unlink(tmp);
}

static void __attribute__((noreturn))
watchdog(pid_t agent, const char *probation, const char *result,
         const char *exe, const char *prev, const char *sha,
         const char *version, long long deadline, int supervised)
{
	struct stat sb;
	struct timespec ts = {0, 200 * 1000 * 1000};
	char why[256];

	for (;;) {
		if (stat(probation, &sb) == -1)
			_exit(0); /* it checked in */
		if (is_gone(agent)) {
			snprintf(
			    why, sizeof(why),
			    "the new agent (version %s) exited before it "
			    "checked in; rolled back to the previous binary",
			    version);
			break;
		}
		if ((long long)time(NULL) >= deadline) {
			snprintf(why, sizeof(why),
			         "the new agent (version %s) did not check in "
			         "within its probation; rolled back to the "
			         "previous binary",
			         version);
			kill(agent, SIGKILL);
			break;
		}
		nanosleep(&ts, NULL);
	}
	{
		char line[512];
		int n =
		    snprintf(line, sizeof(line),
		             "vigil-agent: WARN: upgrade: watchdog: %s\n", why);

		if (n > 0 && (size_t)n < sizeof(line) &&
		    write(2, line, (size_t)n) == -1)
			n = 0;
	}
	if (rename(prev, exe) == -1)
		_exit(1);
	write_result(result, sha, version, why);
	unlink(probation);
	/* Under a service manager that restarts the agent, it starts the
	 * previous binary (in its unit, where it belongs); a second agent
	 * started here would only find the first one's lock. */
	if (supervised)
		_exit(0);
	execv(exe, agent_argv);
	_exit(127);
}

/* ---- the switch ---- */

int
agent_upgrade(struct agent_state *st, json_t *req)
{
	const char *name = json_string_value(json_object_get(req, "target"));
	const char *sha = json_string_value(json_object_get(req, "sha256"));
	const char *ver = json_string_value(json_object_get(req, "version"));
	json_t *pj = json_object_get(req, "probation");
	long long probation =
	    json_is_integer(pj) ? json_integer_value(pj) : 120;
	char exe[PATH_MAX], next[PATH_MAX + 8], prev[PATH_MAX + 8];
	char prob[PATH_MAX + 32], result[PATH_MAX + 32], src[PATH_MAX + 96];
	char dl[32];
	struct buf bin, err;
	struct stat sb;
	ssize_t n;
	pid_t me, wd;
	int rc = -1, fd;

	if (!agent_upgrade_wanted(st, req))
		return 0;
	if (probation < 5 || probation > 86400)
		probation = 120;
	buf_init(&bin, UPG_MAX_BINARY);
	buf_init(&err, 2048);
	/* Only what this agent verified itself. */
	if (agent_updates_fetch(st, name, sha, "agent", agent_platform(),
	                        &err) == -1) {
		log_warnx("upgrade: %s: %s; not upgrading", name,
		          buf_cstr(&err));
		goto out;
	}
	if ((n = readlink("/proc/self/exe", exe, sizeof(exe) - 1)) <= 0) {
		log_warn("upgrade: /proc/self/exe");
		goto out;
	}
	exe[n] = '\0';
	snprintf(next, sizeof(next), "%s.new", exe);
	snprintf(prev, sizeof(prev), "%s.prev", exe);
	snprintf(src, sizeof(src), "%s/updates/targets/%s", st->dir, sha);
	if (tls_read_file(src, UPG_MAX_BINARY, &bin, &err) == -1) {
		log_warnx("upgrade: %s", buf_cstr(&err));
		goto out;
	}
	/* Staged next to the running binary: the rename is then atomic. */
	unlink(next);
	if ((fd = open(next,
	               O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
	               0755)) == -1 ||
	    write(fd, bin.data, bin.len) != (ssize_t)bin.len ||
	    fsync(fd) == -1 || fchmod(fd, 0755) == -1) {
		log_warn("upgrade: staging %s", next);
		if (fd != -1)
			close(fd);
		unlink(next);
		goto out;
	}
	close(fd);
	if (lstat(exe, &sb) == -1 || !S_ISREG(sb.st_mode)) {
		log_warnx("upgrade: %s is not a regular file", exe);
		unlink(next);
		goto out;
	}
	unlink(prev);
	if (link(exe, prev) == -1) {
		log_warn("upgrade: keeping the running binary as %s", prev);
		unlink(next);
		goto out;
	}
	dpath(st, "upgrade.probation", prob, sizeof(prob));
	dpath(st, "upgrade-result.json", result, sizeof(result));
	snprintf(dl, sizeof(dl), "%lld\n", (long long)time(NULL) + probation);
	if (tls_write_file(prob, dl, strlen(dl), 0644, &err) == -1) {
		log_warnx("upgrade: %s", buf_cstr(&err));
		unlink(next);
		goto out;
	}
	if (rename(next, exe) == -1) {
		log_warn("upgrade: rename %s", next);
		unlink(next);
		unlink(prob);
		goto out;
	}
	log_info("upgrade: %s version %s staged over %s (the previous one "
	         "kept as %s); starting it, %lld s to check in",
	         name, ver, exe, prev, probation);
	me = getpid();
	fflush(NULL);
	if ((wd = fork()) == -1) {
		log_warn("upgrade: fork");
		rename(prev, exe);
		unlink(prob);
		goto out;
	}
	if (wd == 0) {
		if (st->lock_fd != -1)
			close(st->lock_fd); /* the new agent takes the lock */
		watchdog(me, prob, result, exe, prev, sha, ver,
		         (long long)time(NULL) + probation, agent_supervised);
	}
	if (st->lock_fd != -1) {
		close(st->lock_fd);
		st->lock_fd = -1;
	}
	execv(exe, agent_argv);
	log_warn("upgrade: exec %s", exe);
	rc = -1;
out:
	buf_free(&bin);
	buf_free(&err);
	return rc;
}
