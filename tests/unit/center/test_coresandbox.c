/*
 * Unit tests of the core's seccomp deny-list (src/center/coresandbox.c):
 * in a child process, after core_sandbox, the closed interfaces fail
 * (namespaces by unshare and by clone's flags, bpf, userfaultfd,
 * keyctl, mount, perf_event_open, process_vm_readv; ptrace outside ASan)
 * while what the core does keeps working: threads, fork and execve,
 * sockets, files written and renamed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../../src/center/coresandbox.c"
#include "../../../src/center/gwsandbox.c"

static void *
thread_main(void *arg)
{
	return arg;
}

static int
clone_child(void *arg)
{
	(void)arg;
	_exit(0);
}

/* Each failed expectation is a distinct exit code. */
static int
child(void)
{
	static char stack[65536];
	char tmp[] = "/tmp/vigil-coresb.XXXXXX", p[64], q[64];
	struct iovec lo, re;
	pthread_t t;
	void *ret;
	pid_t pid;
	int st, fd;
	struct buf err;

	buf_init(&err, 128);
	if (core_sandbox(&err) == -1)
		return 10;
	/* Closed. */
	if (unshare(CLONE_NEWUSER) != -1 || errno != EPERM)
		return 11;
	if (unshare(CLONE_NEWNET) != -1 || errno != EPERM)
		return 12;
	if (clone(clone_child, stack + sizeof(stack), CLONE_NEWUSER | SIGCHLD,
	          NULL) != -1 ||
	    errno != EPERM)
		return 13;
	if (syscall(SYS_bpf, 0, NULL, 0) != -1 || errno != EPERM)
		return 14;
	if (syscall(SYS_userfaultfd, 0) != -1 || errno != EPERM)
		return 15;
	if (syscall(SYS_keyctl, 0, 0, 0, 0, 0) != -1 || errno != EPERM)
		return 16;
	if (mount("none", "/tmp", "tmpfs", 0, NULL) != -1 || errno != EPERM)
		return 17;
	if (syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0) != -1 ||
	    errno != EPERM)
		return 18;
	lo.iov_base = p;
	lo.iov_len = sizeof(p);
	re.iov_base = q;
	re.iov_len = sizeof(q);
	if (process_vm_readv(getppid(), &lo, 1, &re, 1, 0) != -1 ||
	    errno != EPERM)
		return 19;
	if (syscall(SYS_io_uring_setup, 1, NULL) != -1 || errno != ENOSYS)
		return 20;
#ifndef CORE_ASAN
	if (ptrace(PTRACE_ATTACH, getppid(), NULL, NULL) != -1 ||
	    errno != EPERM)
		return 21;
#endif
	/* Still open: threads (clone3 falls back to clone), fork, execve,
	 * sockets, files. */
	if (pthread_create(&t, NULL, thread_main, p) != 0 ||
	    pthread_join(t, &ret) != 0 || ret != p)
		return 30;
	if ((pid = fork()) == 0) {
		execl("/bin/true", "true", (char *)NULL);
		_exit(1);
	}
	if (pid == -1 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) ||
	    WEXITSTATUS(st) != 0)
		return 31;
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return 32;
	close(fd);
	if ((fd = mkstemp(tmp)) == -1)
		return 33;
	close(fd);
	snprintf(p, sizeof(p), "%s.n", tmp);
	if (rename(tmp, p) == -1 || unlink(p) == -1)
		return 34;
	return 0;
}

static void
test_deny_list(void **state)
{
	pid_t pid;
	int st;

	(void)state;
	if ((pid = fork()) == 0)
		_exit(child());
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_deny_list),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
