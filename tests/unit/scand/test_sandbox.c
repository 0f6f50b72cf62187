/*
 * Tests of src/scand/sandbox.c: the scan workers' seccomp allow-list lets
 * a process read and answer on its socket but kills it (SIGSYS) on
 * anything else tried (open, socket, execve, a write to another
 * descriptor); the rules pack the workers build their bundle from comes
 * back as it went in and a damaged one is refused; a worker told another
 * version than its sources make refuses to start, one whose saved YARA
 * rules do not load compiles the sources instead; a worker (this program
 * again, exec'd) scans a sample passed as a descriptor and
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
	*rfd = b != NULL ? sandbox_rules_pack(&src, 1, b, &err) : -1;
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

/* The rules pack: what goes in comes out, and makes the same bundle (same
 * version and counts) without compiling the YARA rules again; a pack cut
 * anywhere, or with a byte more, or a name without its NUL, is refused;
 * YARA sources without their saved rules are refused. */
static void
test_rules_pack(void **state)
{
	static const char ioc[] =
	    "md5;d41d8cd98f00b204e9800998ecf8427e;50;empty\n";
	struct scan_src in[2] = {
	    {SCAN_SRC_YARA, "a.yar", (const uint8_t *)unit_rules,
	     sizeof(unit_rules) - 1},
	    {SCAN_SRC_IOC, "b.ioc", (const uint8_t *)ioc, sizeof(ioc) - 1}};
	struct scan_src *out;
	struct scan_bundle *b, *b2;
	struct scan_bundle_info i1, i2;
	const uint8_t *y;
	struct buf err;
	struct stat st;
	uint8_t *p, *q;
	size_t n, cut, ylen;
	int fd;

	(void)state;
	buf_init(&err, 4096);
	assert_int_equal(scan_bundle_new(in, 2, &b, &err), 0);
	assert_true((fd = sandbox_rules_pack(in, 2, b, &err)) >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	/* Sealed: nobody writes to it after the fact. */
	assert_int_equal(write(fd, "x", 1), -1);
	assert_non_null(p = malloc((size_t)st.st_size + 1));
	assert_int_equal(pread(fd, p, (size_t)st.st_size, 0), st.st_size);
	close(fd);
	assert_int_equal(
	    sw_rules_unpack(p, (size_t)st.st_size, &out, &n, &y, &ylen), 0);
	assert_int_equal(n, 2);
	assert_true(ylen > 0);
	assert_int_equal(out[0].type, SCAN_SRC_YARA);
	assert_string_equal(out[0].name, "a.yar");
	assert_int_equal(out[0].len, sizeof(unit_rules) - 1);
	assert_memory_equal(out[0].data, unit_rules, out[0].len);
	assert_int_equal(out[1].type, SCAN_SRC_IOC);
	assert_string_equal(out[1].name, "b.ioc");
	assert_memory_equal(out[1].data, ioc, sizeof(ioc) - 1);
	assert_int_equal(scan_bundle_new_saved(out, n, y, ylen, &b2, &err), 0);
	scan_bundle_info(b, &i1);
	scan_bundle_info(b2, &i2);
	assert_string_equal(i1.version, i2.version);
	assert_int_equal(i2.yara_rules, 1);
	assert_int_equal(i2.hash_iocs[IOC_MD5], 1);
	scan_bundle_free(b2);
	/* YARA sources, no saved rules: refused. */
	assert_int_equal(scan_bundle_new_saved(out, n, y, 0, &b2, &err), -1);
	free(out);
	scan_bundle_free(b);
	buf_free(&err);
	for (cut = 0; cut < (size_t)st.st_size; cut++) {
		/* A copy of exactly cut bytes, so ASan sees any overread. */
		assert_non_null(q = malloc(cut + 1));
		memcpy(q, p, cut);
		if (sw_rules_unpack(q, cut, &out, &n, &y, &ylen) == 0)
			fail_msg("a pack cut to %zu bytes was accepted", cut);
		free(q);
	}
	p[st.st_size] = 0;
	assert_int_equal(
	    sw_rules_unpack(p, (size_t)st.st_size + 1, &out, &n, &y, &ylen),
	    -1);
	/* The first name's NUL (16 + 16 + "a.yar") made a letter. */
	p[16 + 16 + 5] = 'x';
	assert_int_equal(
	    sw_rules_unpack(p, (size_t)st.st_size, &out, &n, &y, &ylen), -1);
	free(p);
}

/* A worker whose sources do not make the version it was told refuses to
 * start (and is reaped): both ends must scan with the same rules. */
static void
test_worker_other_rules(void **state)
{
	int rfd;
	struct scan_bundle *b = bundle(&rfd);
	struct sbproc w = {.pid = -1, .fd = -1};
	struct sandbox sb;
	struct scan_opts o;
	struct buf err;

	(void)state;
	memset(&sb, 0, sizeof(sb));
	buf_init(&err, 1024);
	assert_int_equal(sandbox_user(NULL, &sb, &err), 0);
	buf_free(&err);
	sb.timeout = 30;
	sb.memory = 256LL << 20;
	scan_opts_default(&o);
	assert_int_equal(sandbox_spawn(&w, rfd, "0123", &o, &sb), -1);
	assert_int_equal(w.pid, -1);
	assert_int_equal(waitpid(-1, NULL, WNOHANG), -1); /* none left */
	/* The right one starts. */
	assert_int_equal(
	    sandbox_spawn(&w, rfd, scan_bundle_version(b), &o, &sb), 0);
	sandbox_stop(&w);
	scan_bundle_free(b);
	close(rfd);
}

/* Saved YARA rules this libyara does not load (as after an upgrade of the
 * library under a running service): the worker compiles the sources and
 * scans as usual. */
static void
test_worker_saved_rules_unusable(void **state)
{
	int rfd, bad, fd;
	struct scan_bundle *b = bundle(&rfd);
	struct sbproc w = {.pid = -1, .fd = -1};
	const uint8_t *y;
	struct scan_src *src;
	struct sandbox sb;
	struct scan_opts o;
	struct buf err, json;
	struct stat st;
	struct job j;
	uint8_t *p;
	size_t n, ylen;

	(void)state;
	assert_int_equal(fstat(rfd, &st), 0);
	assert_non_null(p = malloc((size_t)st.st_size));
	assert_int_equal(pread(rfd, p, (size_t)st.st_size, 0), st.st_size);
	assert_int_equal(
	    sw_rules_unpack(p, (size_t)st.st_size, &src, &n, &y, &ylen), 0);
	assert_true(ylen > 4);
	free(src);
	p[y - p] ^= 0xff; /* libyara's file magic */
	assert_true((bad = memfd_create("bad-rules", MFD_CLOEXEC)) >= 0);
	assert_int_equal(write(bad, p, (size_t)st.st_size), st.st_size);
	free(p);
	memset(&sb, 0, sizeof(sb));
	buf_init(&err, 1024);
	assert_int_equal(sandbox_user(NULL, &sb, &err), 0);
	buf_free(&err);
	sb.timeout = 30;
	sb.memory = 256LL << 20;
	scan_opts_default(&o);
	assert_int_equal(
	    sandbox_spawn(&w, bad, scan_bundle_version(b), &o, &sb), 0);
	memset(&j, 0, sizeof(j));
	fd = sample_fd("xx VIGIL-UNIT-MARKER xx");
	assert_int_equal(sandbox_scan(&w, &sb, fd, -1, "s1", &json, &j), 0);
	assert_non_null(strstr(buf_cstr(&json), "\"marker\""));
	buf_free(&json);
	close(fd);
	sandbox_stop(&w);
	scan_bundle_free(b);
	close(bad);
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
	    cmocka_unit_test(test_rules_pack),
	    cmocka_unit_test(test_worker_other_rules),
	    cmocka_unit_test(test_worker_saved_rules_unusable),
	};

	/* The workers sandbox_spawn starts are this program again. */
	sandbox_worker_run(argc, argv);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
