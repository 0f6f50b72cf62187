/*
 * Unit tests of a gateway worker's Landlock restriction
 * (src/center/gwsandbox.c, gwworker_landlock): in a child process, after
 * the call, a file below the allowed directories opens for reading (also
 * one put there afterwards, as a renewal does), and nothing opens for
 * writing there; a file of the same user elsewhere (the core's database,
 * say) does not open at all. Skipped where the kernel has no Landlock.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "../../../src/center/gwsandbox.c"

static char root[] = "/tmp/vigil-landlock.XXXXXX";
static char pki[PATH_MAX], data[PATH_MAX];
static int to_parent[2], to_child[2];

static void
put(const char *dir, const char *name)
{
	char p[PATH_MAX + 64];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	assert_non_null(f = fopen(p, "w"));
	fputs("x\n", f);
	fclose(f);
}

/* Opens dir/name with flags: 0, or the errno. */
static int
try_open(const char *dir, const char *name, int flags)
{
	char p[PATH_MAX + 64];
	int fd;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	if ((fd = open(p, flags | O_CLOEXEC, 0600)) == -1)
		return errno;
	close(fd);
	return 0;
}

/* Runs in the child: each failed expectation is a distinct exit code. */
static int
child(void)
{
	char cert[PATH_MAX + 32], key[PATH_MAX + 32], ca[PATH_MAX + 32];
	const char *files[3] = {cert, key, ca};
	struct buf err;
	int r;

	snprintf(cert, sizeof(cert), "%s/server.crt", pki);
	snprintf(key, sizeof(key), "%s/server.key", pki);
	snprintf(ca, sizeof(ca), "%s/ca.crt", pki);
	buf_init(&err, 256);
	if ((r = gwworker_landlock(files, 3, &err)) == 0)
		return 77; /* no Landlock here */
	if (r != 1)
		return 10;
	if (try_open(pki, "server.crt", O_RDONLY) != 0)
		return 11;
	if (try_open(pki, "ca.crt", O_RDONLY) != 0)
		return 12;
	if (try_open(pki, "server.crt", O_WRONLY) != EACCES)
		return 13;
	if (try_open(pki, "new.crt", O_WRONLY | O_CREAT) != EACCES)
		return 14;
	if (try_open(data, "vigil.db", O_RDONLY) != EACCES)
		return 15;
	if (try_open("/etc", "hostname", O_RDONLY) != EACCES)
		return 16;
	/* A file the parent puts below afterwards (a renewed certificate,
	 * renamed into place) opens too: the rule is on the directory. */
	if (write(to_parent[1], "r", 1) != 1 || read(to_child[0], &r, 1) != 1)
		return 18;
	return try_open(pki, "renewed.crt", O_RDONLY) == 0 ? 0 : 17;
}

static void
test_landlock(void **state)
{
	pid_t pid;
	int st;

	(void)state;
	assert_non_null(mkdtemp(root));
	snprintf(pki, sizeof(pki), "%s/pki", root);
	snprintf(data, sizeof(data), "%s/data", root);
	assert_int_equal(mkdir(pki, 0700), 0);
	assert_int_equal(mkdir(data, 0700), 0);
	put(pki, "server.crt");
	put(pki, "server.key");
	put(pki, "ca.crt");
	put(data, "vigil.db");
	assert_int_equal(pipe(to_parent), 0);
	assert_int_equal(pipe(to_child), 0);
	if ((pid = fork()) == 0)
		_exit(child());
	/* The child is restricted now (or gave up): the renewal. */
	if (read(to_parent[0], &st, 1) == 1) {
		put(pki, "renewed.crt");
		assert_int_equal(write(to_child[1], "r", 1), 1);
	}
	close(to_child[1]);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	{
		static const char *const left[] = {
		    "pki/server.crt", "pki/server.key",
		    "pki/ca.crt",     "pki/renewed.crt",
		    "data/vigil.db",  "pki",
		    "data",           ""};
		char p[PATH_MAX + 64];
		size_t i;

		for (i = 0; i < sizeof(left) / sizeof(left[0]); i++) {
			snprintf(p, sizeof(p), "%s/%s", root, left[i]);
			if (unlink(p) == -1)
				(void)rmdir(p);
		}
	}
	assert_true(WIFEXITED(st));
	if (WEXITSTATUS(st) == 77)
		skip();
	assert_int_equal(WEXITSTATUS(st), 0);
}

/* In the child, under the workers' seccomp allow-list: 0 when a local
 * stream socket (PostgreSQL's, D-Bus's...) cannot be reached and a
 * datagram one (syslog(3)'s /dev/log) can; else the step that failed. */
static int
unix_child(const char *stream_path, const char *dgram_path)
{
	struct sockaddr_un sa;
	struct buf err;
	int fd;

	buf_init(&err, 256);
	if (gwworker_sandbox(&err) == -1)
		return 10;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	/* A stream socket: refused (EACCES), not a kill. */
	if (socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0) != -1 ||
	    errno != EACCES)
		return 11;
	if (socket(AF_UNIX, SOCK_SEQPACKET, 0) != -1 || errno != EACCES)
		return 12;
	/* A datagram one, as syslog(3) makes: it reaches /dev/log's
	 * kind, not a stream listener. */
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		return 13;
	memcpy(sa.sun_path, stream_path, strlen(stream_path) + 1);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != -1)
		return 14;
	memcpy(sa.sun_path, dgram_path, strlen(dgram_path) + 1);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1 ||
	    send(fd, "x", 1, 0) != 1)
		return 15;
	close(fd);
	return 0;
}

/*
 * The workers' allow-list keeps socket(AF_UNIX) for syslog(3), which
 * sends on a datagram socket to /dev/log. A worker that could make a
 * stream socket could connect to any local service that trusts the
 * center's user by its uid (PostgreSQL over its socket with peer
 * authentication: the store); it may make datagram ones only.
 */
static void
test_unix_sockets(void **state)
{
	char dir[] = "/tmp/vigil-unix.XXXXXX", sp[64], dp[64];
	struct sockaddr_un sa;
	int ls, ds, st;
	pid_t pid;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(sp, sizeof(sp), "%s/stream", dir);
	snprintf(dp, sizeof(dp), "%s/dgram", dir);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	assert_true((ls = socket(AF_UNIX, SOCK_STREAM, 0)) >= 0);
	memcpy(sa.sun_path, sp, strlen(sp) + 1);
	assert_int_equal(bind(ls, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(ls, 4), 0);
	assert_true((ds = socket(AF_UNIX, SOCK_DGRAM, 0)) >= 0);
	memcpy(sa.sun_path, dp, strlen(dp) + 1);
	assert_int_equal(bind(ds, (struct sockaddr *)&sa, sizeof(sa)), 0);
	if ((pid = fork()) == 0)
		_exit(unix_child(sp, dp));
	assert_int_equal(waitpid(pid, &st, 0), pid);
	close(ls);
	close(ds);
	unlink(sp);
	unlink(dp);
	rmdir(dir);
	if (WIFSIGNALED(st))
		fail_msg("the worker was killed by signal %d", WTERMSIG(st));
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_landlock),
	    cmocka_unit_test(test_unix_sockets),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
