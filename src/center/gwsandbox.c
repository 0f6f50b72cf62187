/*
 * gwsandbox.c: the seccomp allow-list of a gateway worker (gwworker.c),
 * loaded once it listens and before the first connection is accepted. A
 * worker parses TLS and HTTP from the network; what it may do after that
 * is what serving connections takes and nothing else: accept and talk on
 * the sockets it holds, map memory (never executable), read its time and
 * random bytes, send syslog lines, open files read-only (its certificate,
 * key and CA again on a reload: SIGHUP), and exit. No execve, fork, clone,
 * ptrace, kill of another process, bind, listen, socket but a datagram
 * one of AF_UNIX (syslog(3): no local stream service, such as PostgreSQL's
 * socket, can be reached), or file writes by path. Any other system
 * call kills the worker (SCMP_ACT_KILL_PROCESS); the core restarts it and
 * logs the signal (SIGSYS).
 *
 * [gateway] workers run without the list when VIGIL_GW_NO_SECCOMP is set
 * in vigild's environment (debugging only: strace, gdb).
 *
 * Before the list, Landlock (gwworker_landlock) narrows what a worker may
 * open to the directories of its TLS files, read-only: a worker that
 * runs as the same user as the core cannot read the core's database, its
 * session ticket keys or anything else of that user's.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/landlock.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "gwproc.h"

static int
gws_allow(scmp_filter_ctx f, const char *name, unsigned n,
          const struct scmp_arg_cmp *arg)
{
	int nr = seccomp_syscall_resolve_name(name);

	if (nr == __NR_SCMP_ERROR)
		return 0; /* not on this architecture */
	return seccomp_rule_add_array(f, SCMP_ACT_ALLOW, nr, n, arg) == 0 ? 0
	                                                                  : -1;
}

int
sandbox_load(scmp_filter_ctx f, struct buf *err)
{
	int rc = -1;

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
		buf_printf(err, "no_new_privs: %s", strerror(errno));
	else if (seccomp_load(f) != 0)
		buf_printf(err, "loading the seccomp filter failed");
	else
		rc = 0;
	seccomp_release(f);
	return rc;
}

int
gwworker_sandbox(struct buf *err)
{
	static const char *const plain[] = {
	    /* the event loop and its sockets */
	    "epoll_wait", "epoll_pwait", "epoll_pwait2", "epoll_ctl", "poll",
	    "ppoll", "select", "pselect6", "accept", "accept4", "read", "readv",
	    "pread64", "write", "writev", "recvfrom", "recvmsg", "sendto",
	    "sendmsg", "sendfile", "shutdown", "close", "setsockopt",
	    "getsockopt", "getsockname", "getpeername", "fcntl", "ioctl",
	    "lseek", "fstat", "newfstatat", "statx", "getdents64", "access",
	    "faccessat", "faccessat2", "readlink", "readlinkat",
	    /* memory */
	    "munmap", "mremap", "madvise", "brk", "futex",
	    /* time, randomness, identity */
	    "clock_gettime", "clock_getres", "gettimeofday", "time",
	    "clock_nanosleep", "nanosleep", "getrandom", "getpid", "gettid",
	    "getuid", "geteuid", "getgid", "getegid", "getrusage",
	    "sched_yield", "uname",
	    /* signals and the end */
	    "rt_sigreturn", "rt_sigprocmask", "rt_sigaction", "sigaltstack",
	    "restart_syscall", "exit", "exit_group"};
	struct scmp_arg_cmp a[1], b[2];
	scmp_filter_ctx f;
	size_t i;

	if (getenv("VIGIL_GW_NO_SECCOMP") != NULL)
		return 0;
	if ((f = seccomp_init(SCMP_ACT_KILL_PROCESS)) == NULL) {
		buf_printf(err, "seccomp_init failed");
		return -1;
	}
	for (i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
		if (gws_allow(f, plain[i], 0, NULL) == -1)
			goto fail;
	/* Memory, never executable. */
	a[0] = SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0);
	if (gws_allow(f, "mmap", 1, a) == -1 ||
	    gws_allow(f, "mprotect", 1, a) == -1)
		goto fail;
	/* Files read-only (the TLS files again on a reload). */
	a[0] = SCMP_A2(SCMP_CMP_MASKED_EQ, O_ACCMODE | O_CREAT | O_TRUNC,
	               O_RDONLY);
	if (gws_allow(f, "openat", 1, a) == -1)
		goto fail;
	a[0] = SCMP_A1(SCMP_CMP_MASKED_EQ, O_ACCMODE | O_CREAT | O_TRUNC,
	               O_RDONLY);
	if (gws_allow(f, "open", 1, a) == -1)
		goto fail;
	/* syslog(3): a datagram socket to /dev/log, and only that kind: a
	 * stream socket could reach any local service that trusts this
	 * user by its uid (PostgreSQL's socket with peer authentication:
	 * the store). Stream and seqpacket ones are refused (EACCES), not a
	 * kill: glibc's syslog makes a stream socket when /dev/log is one
	 * (its datagram connect fails), and that syslog line is lost. */
	b[0] = SCMP_A0(SCMP_CMP_EQ, AF_UNIX);
	b[1] = SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, SOCK_DGRAM);
	if (gws_allow(f, "socket", 2, b) == -1 ||
	    gws_allow(f, "connect", 0, NULL) == -1)
		goto fail;
	b[1] = SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, SOCK_STREAM);
	if (seccomp_rule_add_array(f, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(socket),
	                           2, b) != 0)
		goto fail;
	b[1] = SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, SOCK_SEQPACKET);
	if (seccomp_rule_add_array(f, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(socket),
	                           2, b) != 0)
		goto fail;
	/* abort() signals itself, and only itself. */
	a[0] = SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)getpid());
	if (gws_allow(f, "tgkill", 1, a) == -1)
		goto fail;
	return sandbox_load(f, err);
fail:
	buf_printf(err, "building the seccomp filter failed");
	seccomp_release(f);
	return -1;
}

/* Landlock's rights this file knows of; the kernel's ABI says which it
 * handles (newer headers than Debian 12's name the later ones). */
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15)
#endif
#ifndef LANDLOCK_CREATE_RULESET_VERSION
#define LANDLOCK_CREATE_RULESET_VERSION (1U << 0)
#endif

int
gwworker_landlock(const char *const *paths, size_t n, struct buf *err)
{
	struct landlock_ruleset_attr attr;
	struct landlock_path_beneath_attr rule;
	char dir[PATH_MAX], *slash;
	long abi;
	size_t i;
	int rs, fd, rc = -1;

	abi = syscall(SYS_landlock_create_ruleset, NULL, 0,
	              LANDLOCK_CREATE_RULESET_VERSION);
	if (abi < 1)
		return 0;
	memset(&attr, 0, sizeof(attr));
	attr.handled_access_fs = (LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1;
	if (abi >= 2)
		attr.handled_access_fs |= LANDLOCK_ACCESS_FS_REFER;
	if (abi >= 3)
		attr.handled_access_fs |= LANDLOCK_ACCESS_FS_TRUNCATE;
	if (abi >= 5)
		attr.handled_access_fs |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
	/* The first fields of the struct are those of ABI 1: its size
	 * then is what every kernel with Landlock takes. */
	rs = (int)syscall(SYS_landlock_create_ruleset, &attr,
	                  sizeof(attr.handled_access_fs), 0);
	if (rs == -1) {
		buf_printf(err, "landlock_create_ruleset: %s", strerror(errno));
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (paths[i] == NULL)
			continue;
		snprintf(dir, sizeof(dir), "%s", paths[i]);
		if ((slash = strrchr(dir, '/')) == NULL)
			snprintf(dir, sizeof(dir), ".");
		else if (slash == dir)
			dir[1] = '\0';
		else
			*slash = '\0';
		if ((fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC)) == -1) {
			buf_printf(err, "%s: %s", dir, strerror(errno));
			goto out;
		}
		memset(&rule, 0, sizeof(rule));
		rule.allowed_access = LANDLOCK_ACCESS_FS_READ_FILE;
		rule.parent_fd = fd;
		if (syscall(SYS_landlock_add_rule, rs,
		            LANDLOCK_RULE_PATH_BENEATH, &rule, 0) == -1) {
			buf_printf(err, "landlock_add_rule %s: %s", dir,
			           strerror(errno));
			close(fd);
			goto out;
		}
		close(fd);
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1 ||
	    syscall(SYS_landlock_restrict_self, rs, 0) == -1) {
		buf_printf(err, "landlock_restrict_self: %s", strerror(errno));
		goto out;
	}
	rc = 1;
out:
	close(rs);
	return rc;
}
