/*
 * sandbox.c: vigil-scand's scan worker processes. libyara runs on hostile
 * samples; a bug it has (a crash, a loop, a runaway allocation) must cost
 * that sample an error and nothing else, and an exploit of it must find
 * nothing worth having. So no sample is scanned in the network process:
 * each scanning thread of the pool (engine.c) owns one worker process and
 * hands it one sample at a time as an open descriptor (SCM_RIGHTS).
 *
 * A worker is a fresh image of vigil-scand (proc_spawn: posix_spawn of
 * /proc/self/exe with SANDBOX_ARG), not a fork: vigil-scand has threads
 * (the pool, libevent's, OpenSSL's), and a child forked from a threaded
 * process inherits every lock another thread held at that instant (malloc's,
 * a sanitizer allocator's, libyara's) with nobody left to release it; under
 * ASan such children hung before they locked down. An exec'd worker also
 * holds no copy of the parent's memory (TLS key, API key, other samples)
 * and gets its own address-space layout, so a crash cannot be used to
 * probe the parent's. Its first message (SW_INIT) brings what the parent
 * knows: the sandbox settings, the scan options, and the rule sources with
 * the YARA rules as the parent compiled them, in a sealed memfd
 * (sandbox_rules_pack), from which it builds the same bundle without
 * compiling again (same version, checked).
 *
 * Before it takes its first sample a worker, in this order:
 *   - closes every descriptor but 0-2 and its socket, builds the bundle
 *     and its scan context and scans a few bytes (so every lazy
 *     initialisation, time zone included, is done while it still may),
 *   - drops every capability from its bounding set and, when scand runs
 *     as root, becomes [scand] user (groups cleared; never root),
 *   - sets its limits: RLIMIT_AS (what it has mapped then plus
 *     worker_memory), RLIMIT_CPU (a backstop; the parent's wall clock is
 *     the real one), RLIMIT_FSIZE 0, RLIMIT_NOFILE 8, RLIMIT_NPROC 0,
 *     RLIMIT_CORE 0,
 *   - sets no_new_privs and loads a seccomp allow-list (libseccomp) that
 *     kills the process on any other system call: it may read the
 *     descriptors it holds, map memory (never executable), talk on its
 *     socket and exit; no open, socket, connect, execve, fork or kill.
 * then says READY. libyara's own SIGSEGV/SIGBUS catching is off in a
 * worker (scan_opts.no_trycatch): a fault ends the process. It answers each
 * SW_SCAN with the engine's neutral JSON (SW_PART chunks ending with SW_RESULT)
 * or SW_ERR with an errno.
 *
 * The parent side waits for the answer with a deadline ([scand]
 * scan_timeout). A worker that misses it is killed; one that dies (a
 * signal, the seccomp filter's SIGSYS) is reaped; either way the sample
 * gets an error and the thread starts a new worker. A worker that does not
 * say READY within SW_START_TIMEOUT is killed, never given a sample.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <poll.h>
#include <pwd.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proc.h"
#include "scand.h"

enum {
	SW_INIT = 1, /* parent: struct sw_init, the rules memfd */
	SW_READY,    /* worker: locked down, waiting for samples */
	SW_FAIL,     /* worker: could not start (text) */
	SW_SCAN,     /* parent: struct sw_scan + name, the sample's fd */
	SW_PART,     /* worker: a piece of the result's JSON */
	SW_RESULT,   /* worker: the last piece */
	SW_ERR,      /* worker: int32 errno, the sample could not be read */
};

/* Both ends are the same binary: plain structs are their common language,
 * the sizes still checked. */
struct sw_init {
	int32_t parent; /* pid the worker's parent must be */
	uint32_t pad;
	struct sandbox sb;
	struct scan_opts o;
	char version[65]; /* the bundle the sources must make */
};

/* The rule sources in a memfd: SW_RULES_MAGIC, uint32 count, uint32 0, then
 * per source uint32 type, uint32 name length, uint64 data length, the name,
 * the data; then uint64 length and the YARA rules as the parent compiled
 * and libyara saved them (scan_bundle_save_yara). */
#define SW_RULES_MAGIC "VGLSRC01"
#define SW_RULES_MAX   4096

struct sw_scan {
	uint32_t mem; /* 1: read len bytes of the descriptor, scan a buffer */
	uint32_t pad;
	uint64_t len;
};

#define SW_MAX_NAME   (PROC_MAX_MSG - sizeof(struct sw_scan))
#define SW_PIECE      (PROC_MAX_MSG - 1024)
#define SW_MAX_RESULT (32u * 1024 * 1024)
#define SW_NOFILE     8
/* Seconds a new worker has to say READY (it takes milliseconds). */
#define SW_START_TIMEOUT 30
/* A reply in progress may not stall longer than this between pieces. */
#define SW_STALL 5

struct sw_mem {
	uint8_t *p;
	size_t cap;
};

/* ---- the worker --------------------------------------------------------- */

static void
sw_fail(int fd, const char *what)
{
	char msg[256];

	snprintf(msg, sizeof(msg), "%s: %s", what, strerror(errno));
	(void)proc_send(fd, SW_FAIL, 0, msg, strlen(msg));
}

/* Bytes of address space this process has mapped now. */
static long long
sw_vmsize(void)
{
	char line[128];
	long long pages;
	FILE *f;
	int ok;

	if ((f = fopen("/proc/self/statm", "re")) == NULL)
		return -1;
	ok = fgets(line, sizeof(line), f) != NULL &&
	     sscanf(line, "%lld", &pages) == 1;
	fclose(f);
	return ok ? pages * sysconf(_SC_PAGESIZE) : -1;
}

static int
sw_drop_privs(const struct sandbox *sb)
{
	struct __user_cap_header_struct h;
	struct __user_cap_data_struct d[2];
	int cap;

	/* The bounding set: even a later setuid-root binary (which the
	 * filter would not let it run anyway) could not give them back. */
	for (cap = 0; cap <= 63; cap++)
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == -1 &&
		    errno != EINVAL && errno != EPERM)
			return -1;
	if (sb->drop) {
		if (setgroups(0, NULL) == -1 ||
		    setresgid(sb->gid, sb->gid, sb->gid) == -1 ||
		    setresuid(sb->uid, sb->uid, sb->uid) == -1)
			return -1;
		/* No way back. */
		if (setuid(0) == 0 || seteuid(0) == 0) {
			errno = EPERM;
			return -1;
		}
	}
	/* Non-root keeps no capabilities across setresuid, but a scand run
	 * as a user with file capabilities would: clear them outright. */
	memset(&h, 0, sizeof(h));
	memset(d, 0, sizeof(d));
	h.version = _LINUX_CAPABILITY_VERSION_3;
	if (syscall(SYS_capset, &h, d) == -1)
		return -1;
	return 0;
}

static int
sw_limits(const struct sandbox *sb, long long vm)
{
	struct rlimit rl;
	long long cpu = 2 * sb->timeout + 10;

	rl.rlim_cur = rl.rlim_max = (rlim_t)(vm + sb->memory);
	if (setrlimit(RLIMIT_AS, &rl) == -1)
		return -1;
	rl.rlim_cur = (rlim_t)cpu;
	rl.rlim_max = (rlim_t)cpu + 5;
	if (setrlimit(RLIMIT_CPU, &rl) == -1)
		return -1;
	rl.rlim_cur = rl.rlim_max = 0;
	if (setrlimit(RLIMIT_FSIZE, &rl) == -1 ||
	    setrlimit(RLIMIT_CORE, &rl) == -1)
		return -1;
	if (sb->drop && setrlimit(RLIMIT_NPROC, &rl) == -1)
		return -1;
	rl.rlim_cur = rl.rlim_max = SW_NOFILE;
	if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
		return -1;
	return 0;
}

/* An allow-list rule; a name this architecture lacks is skipped. */
static int
sw_allow(scmp_filter_ctx f, const char *name, unsigned n,
         const struct scmp_arg_cmp *arg)
{
	int nr = seccomp_syscall_resolve_name(name);

	if (nr == __NR_SCMP_ERROR)
		return 0;
	return seccomp_rule_add_array(f, SCMP_ACT_ALLOW, nr, n, arg) == 0 ? 0
	                                                                  : -1;
}

int
sandbox_filter_load(int sock)
{
	/* No arguments to check: what they can reach is already bounded
	 * (the descriptors it holds, its own memory). */
	static const char *const plain[] = {
	    "read", "pread64", "readv", "lseek", "fstat", "close", "munmap",
	    "mremap", "madvise", "brk", "futex", "exit", "exit_group",
	    "rt_sigreturn", "rt_sigprocmask", "restart_syscall",
	    "clock_gettime", "clock_getres", "gettimeofday", "time", "getpid",
	    "gettid", "getrusage", "sched_yield", "poll", "ppoll",
	    /* sanitizer runtimes, at exit */
	    "sigaltstack"};
	struct scmp_arg_cmp a[1];
	scmp_filter_ctx f;
	size_t i;
	int rc = -1;

	if ((f = seccomp_init(SCMP_ACT_KILL_PROCESS)) == NULL)
		return -1;
	for (i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
		if (sw_allow(f, plain[i], 0, NULL) == -1)
			goto out;
	/* The socket to the parent, and nothing else. */
	a[0] = SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)sock);
	if (sw_allow(f, "sendmsg", 1, a) == -1 ||
	    sw_allow(f, "recvmsg", 1, a) == -1)
		goto out;
	/* Memory, never executable. */
	a[0] = SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0);
	if (sw_allow(f, "mmap", 1, a) == -1 ||
	    sw_allow(f, "mprotect", 1, a) == -1)
		goto out;
	/* glibc's fstat is fstatat(fd, "", st, AT_EMPTY_PATH): only that
	 * form, never a path lookup. */
	a[0] = SCMP_A3(SCMP_CMP_EQ, AT_EMPTY_PATH);
	if (sw_allow(f, "newfstatat", 1, a) == -1)
		goto out;
	/* abort() signals itself, and only itself. */
	a[0] = SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)getpid());
	if (sw_allow(f, "tgkill", 1, a) == -1)
		goto out;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
		goto out;
	rc = seccomp_load(f) == 0 ? 0 : -1;
out:
	seccomp_release(f);
	return rc;
}

static int
sw_reply(int fd, uint64_t id, json_t *o)
{
	char *text;
	size_t len, off, n;
	int rc = 0;

	if ((text = json_dumps(o, JSON_COMPACT)) == NULL) {
		int32_t e = ENOMEM;

		return proc_send(fd, SW_ERR, id, &e, sizeof(e));
	}
	len = strlen(text);
	for (off = 0; rc == 0 && len - off > SW_PIECE; off += n) {
		n = SW_PIECE;
		rc = proc_send(fd, SW_PART, id, text + off, n);
	}
	if (rc == 0)
		rc = proc_send(fd, SW_RESULT, id, text + off, len - off);
	free(text);
	return rc;
}

/* The memfd's first len bytes into the worker's buffer (kept from sample
 * to sample, like the engine's own: no fresh pages per sample). */
static int
sw_read_mem(int sfd, size_t len, struct sw_mem *m)
{
	uint8_t *nb;
	size_t off = 0;
	ssize_t n;

	if (len > m->cap) {
		if ((nb = realloc(m->p, len)) == NULL)
			return -ENOMEM;
		m->p = nb;
		m->cap = len;
	}
	while (off < len) {
		n = pread(sfd, m->p + off, len - off, (off_t)off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return n == 0 ? -EIO : -errno;
		off += (size_t)n;
	}
	return 0;
}

static int
sw_scan(struct scan_ctx *ctx, int fd, uint64_t id, const struct sw_scan *q,
        const char *name, int sfd, struct sw_mem *m)
{
	struct scan_result r;
	json_t *o;
	int32_t e;
	int rc;

	memset(&r, 0, sizeof(r));
	if (q->mem) {
		/* A sealed memfd holding a small sync check. */
		if (q->len > SCAND_MEM_SAMPLE)
			rc = -EINVAL;
		else if ((rc = sw_read_mem(sfd, (size_t)q->len, m)) == 0)
			rc = scan_mem(ctx,
			              q->len > 0 ? m->p : (const uint8_t *)"",
			              (size_t)q->len, name, &r);
	} else
		rc = scan_fd(ctx, sfd, name, NULL, &r);
	if (rc != 0) {
		scan_result_free(&r);
		e = -rc;
		return proc_send(fd, SW_ERR, id, &e, sizeof(e));
	}
	o = scan_result_to_json(&r);
	scan_result_free(&r);
	if (o == NULL) {
		e = ENOMEM;
		return proc_send(fd, SW_ERR, id, &e, sizeof(e));
	}
	rc = sw_reply(fd, id, o);
	json_decref(o);
	return rc;
}

/*
 * The sources packed by sandbox_rules_pack, as views into p (which must
 * outlive them): 0, or -1 when p is not exactly such a pack. The parent
 * wrote it, yet every length is checked against what is left.
 */
static int
sw_rules_unpack(const uint8_t *p, size_t len, struct scan_src **out,
                size_t *nout, const uint8_t **yara, size_t *ylen)
{
	struct scan_src *src = NULL;
	uint32_t n, type, nlen;
	uint64_t dlen;
	size_t off, i;

	if (len < 16 || memcmp(p, SW_RULES_MAGIC, 8) != 0)
		return -1;
	memcpy(&n, p + 8, 4);
	if (n > SW_RULES_MAX)
		return -1;
	if (n > 0 && (src = calloc(n, sizeof(*src))) == NULL)
		return -1;
	for (i = 0, off = 16; i < n; i++) {
		if (len - off < 16)
			goto bad;
		memcpy(&type, p + off, 4);
		memcpy(&nlen, p + off + 4, 4);
		memcpy(&dlen, p + off + 8, 8);
		off += 16;
		/* The name is NUL-terminated in the pack. */
		if (type > SCAN_SRC_IOC || nlen == 0 || nlen > len - off ||
		    p[off + nlen - 1] != '\0' ||
		    strlen((const char *)p + off) != nlen - 1)
			goto bad;
		src[i].type = type;
		src[i].name = (const char *)p + off;
		off += nlen;
		if (dlen > len - off)
			goto bad;
		src[i].data = p + off;
		src[i].len = (size_t)dlen;
		off += (size_t)dlen;
	}
	if (len - off < 8)
		goto bad;
	memcpy(&dlen, p + off, 8);
	off += 8;
	if (dlen != len - off)
		goto bad;
	*yara = p + off;
	*ylen = (size_t)dlen;
	*out = src;
	*nout = n;
	return 0;
bad:
	free(src);
	return -1;
}

/* The bundle from the rules memfd: 0, or -1 with errno set. */
static int
sw_bundle(int rfd, const char *version, struct scan_bundle **b)
{
	struct scan_src *src = NULL;
	const uint8_t *yara;
	struct stat st;
	struct buf err;
	size_t n = 0, ylen;
	void *p = MAP_FAILED;
	int rc = -1;

	buf_init(&err, 4096);
	if (fstat(rfd, &st) == -1)
		goto out;
	if (st.st_size < 16 || (uint64_t)st.st_size > SIZE_MAX) {
		errno = EPROTO;
		goto out;
	}
	if ((p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, rfd,
	              0)) == MAP_FAILED)
		goto out;
	if (sw_rules_unpack(p, (size_t)st.st_size, &src, &n, &yara, &ylen) ==
	    -1) {
		errno = EPROTO;
		goto out;
	}
	/* The IOC files are parsed again (quick), the YARA rules loaded as
	 * the parent compiled them (a compilation can take seconds). Should
	 * this libyara not load them (a package upgrade replaced the library
	 * under a running vigil-scand), the sources compile here. */
	if (scan_bundle_new_saved(src, n, yara, ylen, b, &err) != 0 &&
	    scan_bundle_new(src, n, b, &err) != 0) {
		errno = EINVAL;
		goto out;
	}
	/* The same sources make the same version; anything else means the
	 * two ends disagree on what is being scanned with. */
	if (strcmp(scan_bundle_version(*b), version) != 0) {
		scan_bundle_free(*b);
		*b = NULL;
		errno = EPROTO;
		goto out;
	}
	rc = 0;
out:
	free(src);
	if (p != MAP_FAILED)
		munmap(p, (size_t)st.st_size);
	buf_free(&err);
	return rc;
}

static int
sw_main(int fd)
{
	struct sw_init in;
	struct scan_bundle *b = NULL;
	struct scan_ctx *ctx = NULL;
	struct scan_result r;
	struct proc_hdr h;
	struct sw_scan q;
	struct pollfd pfd;
	struct sw_mem m = {NULL, 0};
	struct buf msg;
	char *name;
	long long vm;
	json_t *o;
	int sfd, rfd, rc, busy = 0;

	/* The parent handles the signals; a worker follows its socket. */
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGXFSZ, SIG_IGN);
	prctl(PR_SET_NAME, "scand-worker", 0, 0, 0);
	/* Whatever was not close-on-exec in the parent is not the
	 * worker's. */
	if (close_range(SANDBOX_FD + 1, ~0u, 0) == -1) {
		sw_fail(fd, "closing descriptors");
		return 1;
	}
	buf_init(&msg, PROC_MAX_MSG);
	rc = proc_recv_fd(fd, &h, &msg, sizeof(in), &rfd);
	if (rc == 1)
		return 0;
	if (rc == -1 || h.type != SW_INIT || msg.len != sizeof(in) ||
	    rfd == -1) {
		errno = EPROTO;
		sw_fail(fd, "the first message");
		return 1;
	}
	memcpy(&in, msg.data, sizeof(in));
	in.version[sizeof(in.version) - 1] = '\0';
	if (sw_bundle(rfd, in.version, &b) == -1) {
		sw_fail(fd, "building the rule bundle");
		return 1;
	}
	close(rfd);
	if (scan_ctx_new(b, &in.o, &ctx) != 0) {
		errno = ENOMEM;
		sw_fail(fd, "scan context");
		return 1;
	}
	scan_bundle_free(b); /* the context holds its own reference */
	/* Everything done lazily on the first scan (the time zone that
	 * gmtime_r reads once, libyara's and jansson's first allocations)
	 * happens now, while files may still be opened. */
	tzset();
	memset(&r, 0, sizeof(r));
	if (scan_mem(ctx, (const uint8_t *)"warm-up", 7, "warm-up", &r) == 0 &&
	    (o = scan_result_to_json(&r)) != NULL)
		json_decref(o);
	scan_result_free(&r);
	(void)strerror(EIO);
	if ((vm = sw_vmsize()) < 0) {
		sw_fail(fd, "reading /proc/self/statm");
		return 1;
	}
	if (sw_drop_privs(&in.sb) == -1) {
		sw_fail(fd, "dropping privileges");
		return 1;
	}
	/* Dies with the thread that started it; set after the switch of
	 * user, which clears it. The parent may have gone meanwhile. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) == -1 ||
	    getppid() != (pid_t)in.parent) {
		sw_fail(fd, "parent-death signal");
		return 1;
	}
	if (sw_limits(&in.sb, vm) == -1) {
		sw_fail(fd, "setting resource limits");
		return 1;
	}
	/* A fault ends the worker with its own signal, which the parent
	 * reports: a handler (a sanitizer runtime installs one) could only
	 * die of the filter trying to report it. */
	signal(SIGSEGV, SIG_DFL);
	signal(SIGBUS, SIG_DFL);
	signal(SIGFPE, SIG_DFL);
	signal(SIGILL, SIG_DFL);
	if (sandbox_filter_load(fd) == -1) {
		sw_fail(fd, "loading the seccomp filter");
		return 1;
	}
	if (proc_send(fd, SW_READY, 0, NULL, 0) == -1)
		return 1;
	for (;;) {
		if (busy) {
			/* Idle for 2 s: give the read buffer back. */
			pfd.fd = fd;
			pfd.events = POLLIN;
			if (poll(&pfd, 1, 2000) == 0) {
				scan_ctx_trim(ctx);
				free(m.p);
				m.p = NULL;
				m.cap = 0;
				busy = 0;
			}
		}
		rc = proc_recv_fd(fd, &h, &msg, PROC_MAX_MSG, &sfd);
		if (rc == 1)
			return 0;
		if (rc == -1 || h.type != SW_SCAN || sfd == -1 ||
		    msg.len < sizeof(q) || msg.len - sizeof(q) > SW_MAX_NAME)
			return 1;
		memcpy(&q, msg.data, sizeof(q));
		/* buf keeps a NUL after its data. */
		name = (char *)msg.data + sizeof(q);
		if (strlen(name) != msg.len - sizeof(q))
			return 1;
		rc = sw_scan(ctx, fd, h.id, &q, name, sfd, &m);
		close(sfd);
		if (rc == -1)
			return 1;
		busy = 1;
	}
}

void
sandbox_worker_run(int argc, char **argv)
{
	struct stat st;

	if (argc != 2 || strcmp(argv[1], SANDBOX_ARG) != 0)
		return;
	/* Only ever started by sandbox_spawn, with its socket here. */
	if (fstat(SANDBOX_FD, &st) == -1 || !S_ISSOCK(st.st_mode)) {
		fprintf(stderr,
		        "%s: %s is vigil-scand's own scan worker mode, "
		        "started by vigil-scand only\n",
		        argv[0], SANDBOX_ARG);
		_exit(2);
	}
	/* _exit: no atexit handlers (a sanitizer's leak check would need
	 * system calls the filter forbids). */
	_exit(sw_main(SANDBOX_FD));
}

/* ---- the parent's side (one scanning thread) --------------------------- */

static int
sw_write_all(int fd, const void *p, size_t len)
{
	const uint8_t *c = p;
	ssize_t n;

	while (len > 0) {
		if ((n = write(fd, c, len)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		c += n;
		len -= (size_t)n;
	}
	return 0;
}

int
sandbox_user(const char *name, struct sandbox *sb, struct buf *err)
{
	struct passwd *pw;

	sb->drop = geteuid() == 0;
	if (!sb->drop) {
		/* Not root: the workers run as scand does; asking for
		 * another user cannot be honoured. */
		if (name != NULL && ((pw = getpwnam(name)) == NULL ||
		                     pw->pw_uid != geteuid())) {
			buf_printf(err,
			           "[scand] user = %s: vigil-scand runs as uid "
			           "%u and cannot switch its workers to "
			           "another user (start it as root)\n",
			           name, (unsigned)geteuid());
			return -1;
		}
		sb->uid = geteuid();
		sb->gid = getegid();
		snprintf(sb->user, sizeof(sb->user), "uid %u",
		         (unsigned)sb->uid);
		return 0;
	}
	if (name == NULL && (pw = getpwnam("_vigil")) == NULL)
		name = "nobody";
	else if (name == NULL)
		name = "_vigil";
	if ((pw = getpwnam(name)) == NULL) {
		buf_printf(err, "[scand] user = %s: no such user\n", name);
		return -1;
	}
	if (pw->pw_uid == 0 || pw->pw_gid == 0) {
		buf_printf(err,
		           "[scand] user = %s: refusing to run scan workers "
		           "as root (uid or gid 0)\n",
		           name);
		return -1;
	}
	sb->uid = pw->pw_uid;
	sb->gid = pw->pw_gid;
	snprintf(sb->user, sizeof(sb->user), "%s", name);
	return 0;
}

/* Kills the worker (if any) and reaps it; its wait status in *status. */
static void
sb_reap(struct sbproc *w, int sig, int *status)
{
	int st = 0;

	if (w->pid > 0) {
		if (sig != 0)
			kill(w->pid, sig);
		while (waitpid(w->pid, &st, 0) == -1 && errno == EINTR)
			;
	}
	if (w->fd != -1)
		close(w->fd);
	w->pid = -1;
	w->fd = -1;
	w->scan_time = 0;
	if (status != NULL)
		*status = st;
}

void
sandbox_stop(struct sbproc *w)
{
	sb_reap(w, SIGKILL, NULL);
}

/* Waits until fd is readable or the deadline passes: 1, 0 (timeout), -1. */
static int
sb_wait(int fd, double deadline)
{
	struct pollfd pfd;
	double left;
	int n;

	for (;;) {
		left = deadline - mono_now();
		if (left <= 0)
			return 0;
		pfd.fd = fd;
		pfd.events = POLLIN;
		n = poll(&pfd, 1,
		         left > 3600 ? 3600000 : (int)(left * 1000) + 1);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == 0)
			continue; /* the loop checks the deadline */
		return n > 0 ? 1 : -1;
	}
}

static void
sb_describe(int st, char *out, size_t len)
{
	if (WIFSIGNALED(st))
		snprintf(out, len, "killed by signal %d (%s)", WTERMSIG(st),
		         strsignal(WTERMSIG(st)));
	else if (WIFEXITED(st))
		snprintf(out, len, "exited with status %d", WEXITSTATUS(st));
	else
		snprintf(out, len, "ended");
}

int
sandbox_rules_pack(const struct scan_src *src, size_t n,
                   const struct scan_bundle *b, struct buf *err)
{
	uint32_t u[2];
	uint64_t dlen;
	size_t i, nlen;
	off_t at, end;
	int fd;

	if (n > SW_RULES_MAX) {
		buf_printf(err, "more than %d rule files", SW_RULES_MAX);
		return -1;
	}
	if ((fd = memfd_create("vigil-rules",
	                       MFD_CLOEXEC | MFD_ALLOW_SEALING)) == -1) {
		buf_printf(err, "memfd_create: %s", strerror(errno));
		return -1;
	}
	u[0] = (uint32_t)n;
	u[1] = 0;
	if (sw_write_all(fd, SW_RULES_MAGIC, 8) == -1 ||
	    sw_write_all(fd, u, sizeof(u)) == -1)
		goto fail;
	for (i = 0; i < n; i++) {
		nlen = strlen(src[i].name) + 1;
		u[0] = (uint32_t)src[i].type;
		u[1] = (uint32_t)nlen;
		dlen = (uint64_t)src[i].len;
		if (sw_write_all(fd, u, sizeof(u)) == -1 ||
		    sw_write_all(fd, &dlen, sizeof(dlen)) == -1 ||
		    sw_write_all(fd, src[i].name, nlen) == -1 ||
		    sw_write_all(fd, src[i].data, src[i].len) == -1)
			goto fail;
	}
	/* The length of the saved rules once they are written. */
	dlen = 0;
	if ((at = lseek(fd, 0, SEEK_CUR)) == -1 ||
	    sw_write_all(fd, &dlen, sizeof(dlen)) == -1)
		goto fail;
	if (scan_bundle_save_yara(b, fd) == -1) {
		if (errno == 0)
			errno = EIO;
		goto fail;
	}
	if ((end = lseek(fd, 0, SEEK_CUR)) == -1)
		goto fail;
	dlen = (uint64_t)(end - at) - sizeof(dlen);
	if (pwrite(fd, &dlen, sizeof(dlen), at) != (ssize_t)sizeof(dlen))
		goto fail;
	if (fcntl(fd, F_ADD_SEALS,
	          F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) ==
	    -1)
		goto fail;
	return fd;
fail:
	buf_printf(err, "packing the rules for the scan workers: %s",
	           strerror(errno));
	close(fd);
	return -1;
}

/*
 * The worker's environment: only what its runtime reads (the sanitizers'
 * options when built with them, the time zone and locale); nothing else of
 * the service's environment is handed to a process that parses hostile
 * input. At most SW_MAX_ENV - 1 entries; the strings are environ's.
 */
#define SW_MAX_ENV 16
static void
sw_env(char **out)
{
	static const char *const keep[] = {
	    "ASAN_OPTIONS=", "UBSAN_OPTIONS=", "LSAN_OPTIONS=",
	    "TZ=",           "LANG=",          "LC_ALL="};
	size_t i, k, n = 0;

	for (i = 0; environ != NULL && environ[i] != NULL; i++)
		for (k = 0; k < sizeof(keep) / sizeof(keep[0]); k++)
			if (n < SW_MAX_ENV - 1 &&
			    strncmp(environ[i], keep[k], strlen(keep[k])) == 0)
				out[n++] = environ[i];
	out[n] = NULL;
}

int
sandbox_spawn(struct sbproc *w, int rules_fd, const char *version,
              const struct scan_opts *o, const struct sandbox *sb)
{
	static char arg0[] = "vigil-scand", arg1[] = SANDBOX_ARG;
	char *argv[] = {arg0, arg1, NULL};
	char *envp[SW_MAX_ENV];
	struct sw_init in;
	struct proc_hdr h;
	struct timeval tv;
	struct buf msg;
	char how[128];
	double t0 = mono_now();
	int st, rc = -1;

	sandbox_stop(w);
	memset(&in, 0, sizeof(in));
	in.parent = (int32_t)getpid();
	in.sb = *sb;
	in.o = *o;
	/* A fault is a crash, not a scan error libyara papers over (its
	 * handlers would also need rt_sigaction). */
	in.o.no_trycatch = 1;
	snprintf(in.version, sizeof(in.version), "%s", version);
	buf_init(&msg, 1024);
	sw_env(envp);
	if ((w->pid =
	         proc_spawn(&w->fd, sb->exe[0] ? sb->exe : "/proc/self/exe",
	                    argv, envp)) == -1) {
		w->fd = -1;
		goto out;
	}
	/* A reply, once begun, must keep coming: a worker that stops in
	 * the middle of a message is as good as dead. */
	tv.tv_sec = SW_STALL;
	tv.tv_usec = 0;
	setsockopt(w->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (proc_send_fd(w->fd, SW_INIT, 0, &in, sizeof(in), rules_fd) == -1) {
		log_warn("scand: scan worker %d: sending its rules",
		         (int)w->pid);
		sb_reap(w, SIGKILL, NULL);
		goto out;
	}
	if (sb_wait(w->fd, mono_now() + SW_START_TIMEOUT) != 1) {
		log_warnx("scand: scan worker %d did not start within %d s",
		          (int)w->pid, SW_START_TIMEOUT);
		sb_reap(w, SIGKILL, NULL);
		goto out;
	}
	h.type = 0;
	if (proc_recv(w->fd, &h, &msg, 1024) != 0 || h.type != SW_READY) {
		if (h.type == SW_FAIL && msg.len > 0)
			log_warnx("scand: scan worker %d: %s", (int)w->pid,
			          buf_cstr(&msg));
		sb_reap(w, SIGKILL, &st);
		sb_describe(st, how, sizeof(how));
		log_warnx("scand: a scan worker could not start (%s)", how);
		goto out;
	}
	w->started = mono_now();
	log_debug("scand: scan worker %d ready after %.1f ms", (int)w->pid,
	          (w->started - t0) * 1000.0);
	rc = 0;
out:
	buf_free(&msg);
	return rc;
}

int
sandbox_scan(struct sbproc *w, const struct sandbox *sb, int sfd,
             long long mem_len, const char *name, struct buf *json,
             struct job *j)
{
	struct sw_scan q;
	struct proc_hdr h;
	struct buf msg;
	double t0 = mono_now(), deadline = t0 + (double)sb->timeout;
	size_t nlen = strlen(name);
	char how[128];
	int32_t e;
	int st, r, rc = -1, timed_out = 0;

	buf_init(&msg, PROC_MAX_MSG);
	buf_init(json, SW_MAX_RESULT);
	buf_reset(json);
	if (nlen > SW_MAX_NAME) {
		j->status = 400;
		snprintf(j->errmsg, sizeof(j->errmsg),
		         "the sample's name is too long");
		goto out;
	}
	memset(&q, 0, sizeof(q));
	q.mem = mem_len >= 0;
	q.len = mem_len >= 0 ? (uint64_t)mem_len : 0;
	buf_reset(&msg);
	if (buf_append(&msg, &q, sizeof(q)) == -1 ||
	    buf_append(&msg, name, nlen) == -1) {
		j->status = 500;
		snprintf(j->errmsg, sizeof(j->errmsg), "out of memory");
		goto out;
	}
	if (proc_send_fd(w->fd, SW_SCAN, 1, msg.data, msg.len, sfd) == -1)
		goto dead;
	for (;;) {
		if ((r = sb_wait(w->fd, deadline)) == 0) {
			timed_out = 1;
			goto dead;
		}
		if (r == -1 || proc_recv(w->fd, &h, &msg, PROC_MAX_MSG) != 0 ||
		    h.id != 1)
			goto dead;
		if (h.type == SW_ERR && msg.len == sizeof(e)) {
			memcpy(&e, msg.data, sizeof(e));
			j->status = 500;
			snprintf(j->errmsg, sizeof(j->errmsg),
			         "scanning the sample failed: %s", strerror(e));
			break;
		}
		if (h.type != SW_PART && h.type != SW_RESULT)
			goto dead;
		if (buf_append(json, msg.data, msg.len) == -1)
			goto dead; /* over SW_MAX_RESULT: not believable */
		if (h.type == SW_RESULT) {
			rc = 0;
			break;
		}
	}
	w->scan_time += mono_now() - t0;
	/* Its CPU limit counts its whole life: a worker that has scanned
	 * for scan_timeout seconds makes way for a fresh one before it
	 * could come near it. */
	if (w->scan_time > (double)sb->timeout)
		sandbox_stop(w);
	goto out;
dead:
	sb_reap(w, SIGKILL, &st);
	if (timed_out) {
		j->status = 504;
		snprintf(j->errmsg, sizeof(j->errmsg),
		         "scan timed out after %lld s ([scand] scan_timeout); "
		         "the sample was not scanned",
		         sb->timeout);
		log_warnx("scand: sample %s: scan worker killed after %lld s "
		          "(scan_timeout)",
		          name, sb->timeout);
	} else {
		sb_describe(st, how, sizeof(how));
		j->status = 500;
		snprintf(j->errmsg, sizeof(j->errmsg),
		         "the scan worker died on this sample (%s); the "
		         "sample was not scanned",
		         how);
		log_warnx("scand: sample %s: scan worker %s", name, how);
	}
out:
	buf_free(&msg);
	return rc;
}
