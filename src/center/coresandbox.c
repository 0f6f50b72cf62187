/*
 * coresandbox.c: the seccomp filter of vigild's core, loaded once root is
 * dropped (or kept, with [center] user = root in tests).
 *
 * The core runs the store (SQLite, or libpq to PostgreSQL), the admin
 * API, forwarding (sockets, TLS, syslog), the master's and the
 * collector's calls (libcurl), LDAP logins (libldap), and it starts and
 * restarts gateway workers (fork and execve of itself). What those
 * libraries call varies with their versions, the resolver and the
 * configuration, so an allow-list of every call they might make would
 * break a working center on the next library update. The filter is a
 * deny-list instead: the kernel interfaces a network service never needs
 * and that are the usual ways from a compromised process into the kernel
 * or into other processes:
 *
 *   - debugging and other processes' memory: ptrace, process_vm_readv,
 *     process_vm_writev, kcmp, perf_event_open;
 *   - new kernel attack surface: bpf, userfaultfd, io_uring, keyctl and
 *     the key calls, the new mount API;
 *   - namespaces: unshare, setns, and clone with any CLONE_NEW* flag
 *     (clone3 answers ENOSYS, so the C library falls back to clone,
 *     whose flags the filter can read);
 *   - the machine: mount, umount, pivot_root, chroot, swapon, swapoff,
 *     reboot, kexec, kernel modules, setting the clock, acct, quotactl,
 *     the kernel log (syslog(2); syslog(3) is a socket), iopl, ioperm,
 *     personality, open_by_handle_at and name_to_handle_at.
 *
 * Each answers EPERM (ENOSYS for clone3 and io_uring), so a library that
 * probes one sees it fail instead of killing the center. The filter is
 * inherited by the gateway workers, which stack their own allow-list on
 * it. An ASan build keeps ptrace: LeakSanitizer stops the process's
 * threads with it at exit.
 */
#include <errno.h>
#include <sched.h>
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include "center.h"
#include "gwproc.h"

#if defined(__SANITIZE_ADDRESS__)
#define CORE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CORE_ASAN 1
#endif
#endif

static int
core_deny(scmp_filter_ctx f, const char *name, int err, unsigned n,
          const struct scmp_arg_cmp *arg)
{
	int nr = seccomp_syscall_resolve_name(name);

	if (nr == __NR_SCMP_ERROR)
		return 0; /* not on this architecture */
	return seccomp_rule_add_array(f, SCMP_ACT_ERRNO((unsigned)err), nr, n,
	                              arg) == 0
	           ? 0
	           : -1;
}

int
core_sandbox(struct buf *err)
{
	static const char *const eperm[] = {
#ifndef CORE_ASAN
	    "ptrace",
#endif
	    "process_vm_readv",
	    "process_vm_writev",
	    "kcmp",
	    "perf_event_open",
	    "bpf",
	    "userfaultfd",
	    "keyctl",
	    "add_key",
	    "request_key",
	    "unshare",
	    "setns",
	    "mount",
	    "umount",
	    "umount2",
	    "pivot_root",
	    "chroot",
	    "fsopen",
	    "fsconfig",
	    "fsmount",
	    "fspick",
	    "move_mount",
	    "open_tree",
	    "mount_setattr",
	    "swapon",
	    "swapoff",
	    "reboot",
	    "kexec_load",
	    "kexec_file_load",
	    "init_module",
	    "finit_module",
	    "delete_module",
	    "settimeofday",
	    "clock_settime",
	    "clock_adjtime",
	    "adjtimex",
	    "acct",
	    "quotactl",
	    "quotactl_fd",
	    "syslog",
	    "iopl",
	    "ioperm",
	    "personality",
	    "open_by_handle_at",
	    "name_to_handle_at",
	    "lookup_dcookie",
	    "vhangup",
	    "uselib",
	    "nfsservctl",
	    "sysfs",
	    "ustat",
	    "_sysctl"};
	static const char *const enosys[] = {
	    "clone3", "io_uring_setup", "io_uring_enter", "io_uring_register"};
	static const scmp_datum_t newns[] = {
	    CLONE_NEWNS,  CLONE_NEWUTS, CLONE_NEWIPC,    CLONE_NEWUSER,
	    CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWCGROUP, 0x00000080 /* TIME */};
	struct scmp_arg_cmp a[1];
	scmp_filter_ctx f;
	size_t i;

	if ((f = seccomp_init(SCMP_ACT_ALLOW)) == NULL) {
		buf_printf(err, "seccomp_init failed");
		return -1;
	}
	for (i = 0; i < sizeof(eperm) / sizeof(eperm[0]); i++)
		if (core_deny(f, eperm[i], EPERM, 0, NULL) == -1)
			goto fail;
	for (i = 0; i < sizeof(enosys) / sizeof(enosys[0]); i++)
		if (core_deny(f, enosys[i], ENOSYS, 0, NULL) == -1)
			goto fail;
	/* clone with any namespace flag (its flags are the first
	 * argument on x86-64 and arm64); a rule per flag, as one
	 * masked comparison cannot say "any of these bits". */
	for (i = 0; i < sizeof(newns) / sizeof(newns[0]); i++) {
		a[0] = SCMP_A0(SCMP_CMP_MASKED_EQ, newns[i], newns[i]);
		if (core_deny(f, "clone", EPERM, 1, a) == -1)
			goto fail;
	}
	return sandbox_load(f, err);
fail:
	buf_printf(err, "building the seccomp filter failed");
	seccomp_release(f);
	return -1;
}
