/*
 * Tests of src/scand/sandbox.c: the scan workers' seccomp allow-list lets
 * a process read and answer on its socket but kills it (SIGSYS) on
 * anything else tried (open, socket, execve, a write to another
 * descriptor); a worker scans a sample passed as a descriptor and
 * answers the engine's JSON; a worker killed mid-job costs that job a
 * 500 and the next one gets a fresh worker; a worker past scan_timeout
 * is killed and the job gets 504.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox.c"

enum { TRY_READ, TRY_OPEN, TRY_SOCKET, TRY_EXECVE, TRY_WRITE, TRY_FORK };

/* Forks a child that loads the filter and tries one thing; its wait
 * status. */
static int
try_in_filter(int what)
{
	int sp[2], st, fd;
	char c = 'x';
	pid_t pid;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	if ((pid = fork()) == 0) {
		close(sp[0]);
		if (sandbox_filter_load(sp[1]) == -1)
			_exit(2);
		switch (what) {
		case TRY_READ:
			/* Allowed: read and sendmsg on its socket. */
			if (read(sp[1], &c, 1) != 1 ||
			    proc_send(sp[1], 7, 0, NULL, 0) != 0)
				_exit(3);
			break;
		case TRY_OPEN:
			fd = open("/etc/passwd", O_RDONLY);
			_exit(fd >= 0 ? 4 : 5);
		case TRY_SOCKET:
			_exit(socket(AF_INET, SOCK_STREAM, 0) >= 0 ? 4 : 5);
		case TRY_EXECVE:
			execl("/bin/true", "true", (char *)NULL);
			_exit(5);
		case TRY_WRITE:
			/* stderr is not its socket. */
			_exit(write(2, "", 0) == 0 ? 4 : 5);
		case TRY_FORK:
			_exit(fork() >= 0 ? 4 : 5);
		}
		/* exit_group is allowed: a clean exit. */
		_exit(0);
	}
	close(sp[1]);
	if (what == TRY_READ) {
		struct proc_hdr h;

		assert_int_equal(write(sp[0], "y", 1), 1);
		assert_int_equal(proc_recv(sp[0], &h, NULL, 0), 0);
		assert_int_equal(h.type, 7);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	close(sp[0]);
	return st;
}

static void
test_filter_allows_its_socket(void **state)
{
	int st = try_in_filter(TRY_READ);

	(void)state;
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

static void
test_filter_kills(void **state)
{
	static const int what[] = {TRY_OPEN, TRY_SOCKET, TRY_EXECVE, TRY_WRITE,
	                           TRY_FORK};
	size_t i;
	int st;

	(void)state;
	for (i = 0; i < sizeof(what) / sizeof(what[0]); i++) {
		st = try_in_filter(what[i]);
		if (!WIFSIGNALED(st))
			fail_msg("attempt %d: not killed (status %d)", what[i],
			         st);
		assert_int_equal(WTERMSIG(st), SIGSYS);
	}
}

static const char unit_rules[] =
    "rule marker { strings: $a = \"VIGIL-UNIT-MARKER\" condition: $a }\n";

/* The bundle, and its sources packed for the workers in *rfd. */
static struct scan_bundle *
bundle(int *rfd)
{
	struct scan_src src = {SCAN_SRC_YARA, "unit.yar",
	                       (const uint8_t *)unit_rules,
	                       sizeof(unit_rules) - 1};
	struct scan_bundle *b = NULL;
	struct buf err;

	buf_init(&err, 65536);
	if (scan_bundle_new(&src, 1, &b, &err) != 0)
		fprintf(stderr, "%s", buf_cstr(&err));
	*rfd = sandbox_rules_pack(&src, 1, &err);
	if (*rfd == -1)
		fprintf(stderr, "%s", buf_cstr(&err));
	buf_free(&err);
	return b;
}

static int
sample_fd(const char *text)
{
	char path[] = "/tmp/vigil-sandbox-test.XXXXXX";
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	return fd;
}

static pid_t victim;

static void
test_worker_scans_and_dies_alone(void **state)
{
	int rfd;
	struct scan_bundle *b = bundle(&rfd);
	struct sbproc w = {.pid = -1, .fd = -1};
	struct sandbox sb;
	struct scan_opts o;
	struct buf err, json;
	struct job j;
	int fd;

	(void)state;
	assert_non_null(b);
	memset(&sb, 0, sizeof(sb));
	buf_init(&err, 1024);
	assert_int_equal(sandbox_user(NULL, &sb, &err), 0);
	buf_free(&err);
	sb.timeout = 30;
	sb.memory = 256LL << 20;
	scan_opts_default(&o);
	assert_int_equal(
	    sandbox_spawn(&w, rfd, scan_bundle_version(b), &o, &sb), 0);

	/* A sample as a descriptor: the marker is found. */
	memset(&j, 0, sizeof(j));
	fd = sample_fd("xx VIGIL-UNIT-MARKER xx");
	assert_int_equal(sandbox_scan(&w, &sb, fd, -1, "s1", &json, &j), 0);
	assert_non_null(strstr(buf_cstr(&json), "\"marker\""));
	buf_free(&json);

	/* The worker dies while busy (here: before it answers): that job
	 * fails with 500 and says why; the worker is gone. */
	victim = w.pid;
	assert_int_equal(kill(victim, SIGSEGV), 0);
	memset(&j, 0, sizeof(j));
	assert_int_equal(sandbox_scan(&w, &sb, fd, -1, "s2", &json, &j), -1);
	buf_free(&json);
	assert_int_equal(j.status, 500);
	assert_non_null(strstr(j.errmsg, "died"));
	assert_int_equal(w.pid, -1);
	assert_int_equal(kill(victim, 0), -1); /* reaped */

	/* A fresh one scans the next sample. */
	assert_int_equal(
	    sandbox_spawn(&w, rfd, scan_bundle_version(b), &o, &sb), 0);
	memset(&j, 0, sizeof(j));
	assert_int_equal(sandbox_scan(&w, &sb, fd, -1, "s3", &json, &j), 0);
	buf_free(&json);
	close(fd);
	sandbox_stop(&w);
	scan_bundle_free(b);
	close(rfd);
}

static void
test_worker_timeout(void **state)
{
	int rfd;
	struct scan_bundle *b = bundle(&rfd);
	struct sbproc w = {.pid = -1, .fd = -1};
	struct sandbox sb;
	struct scan_opts o;
	struct buf err, json;
	struct job j;
	double t0;
	int fd;

	(void)state;
	memset(&sb, 0, sizeof(sb));
	buf_init(&err, 1024);
	assert_int_equal(sandbox_user(NULL, &sb, &err), 0);
	buf_free(&err);
	sb.timeout = 1;
	sb.memory = 256LL << 20;
	scan_opts_default(&o);
	assert_int_equal(
	    sandbox_spawn(&w, rfd, scan_bundle_version(b), &o, &sb), 0);
	/* A worker that stops answering (SIGSTOP: as a hung libyara). */
	assert_int_equal(kill(w.pid, SIGSTOP), 0);
	fd = sample_fd("abcde");
	memset(&j, 0, sizeof(j));
	t0 = mono_now();
	assert_int_equal(sandbox_scan(&w, &sb, fd, -1, "hang", &json, &j), -1);
	buf_free(&json);
	assert_true(mono_now() - t0 < 3.0);
	assert_int_equal(j.status, 504);
	assert_non_null(strstr(j.errmsg, "timed out"));
	assert_int_equal(w.pid, -1);
	close(fd);
	scan_bundle_free(b);
	close(rfd);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_filter_allows_its_socket),
	    cmocka_unit_test(test_filter_kills),
	    cmocka_unit_test(test_worker_scans_and_dies_alone),
	    cmocka_unit_test(test_worker_timeout),
	};

	/* The workers sandbox_spawn starts are this program again. */
	sandbox_worker_run(argc, argv);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
