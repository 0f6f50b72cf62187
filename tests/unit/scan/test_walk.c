/*
 * Tests of src/scan/walk.c: exclusions, the size limit, symlinks (loops
 * included) never followed, FIFOs never opened, unreadable files and
 * directories counted and reported but never fatal, pseudo file systems
 * skipped, the depth limit, cancellation, and the pacing caps (files/s,
 * MB/s, CPU share), loosely timed so the suite stays quick and stable.
 */
#include <errno.h>
#include <grp.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "buf.h"
#include "scan.h"
#include "scan_test.h"

#define MARKER "VIGIL-TEST-MARKER-7d1f3a"

static struct scan_bundle *markers;

struct collect {
	struct buf found;  /* "path\n" per result */
	struct buf errors; /* "what errno path\n" per error */
	unsigned nresults;
	unsigned progress_calls;
	int final_seen;
	struct walk_stats last;
	atomic_int *cancel_on_result; /* set on the first result */
	int stop_on_result;           /* on_result returns 1 */
};

static void
on_progress(const struct walk_stats *st, const char *path, void *arg)
{
	struct collect *c = arg;

	c->progress_calls++;
	/* counters only ever grow */
	assert_true(st->seen >= c->last.seen);
	assert_true(st->scanned >= c->last.scanned);
	c->last = *st;
	if (path == NULL)
		c->final_seen = 1;
}

static int
on_result(const struct scan_result *r, void *arg)
{
	struct collect *c = arg;

	c->nresults++;
	(void)buf_printf(&c->found, "%s\n", r->path);
	if (c->cancel_on_result != NULL)
		atomic_store(c->cancel_on_result, 1);
	return c->stop_on_result;
}

static void
on_error(const char *path, const char *what, int err, void *arg)
{
	struct collect *c = arg;

	(void)buf_printf(&c->errors, "%s %d %s\n", what, err, path);
}

static void
collect_init(struct collect *c, struct walk_opts *o)
{
	memset(c, 0, sizeof(*c));
	buf_init(&c->found, 0);
	buf_init(&c->errors, 0);
	memset(o, 0, sizeof(*o));
	o->progress = on_progress;
	o->on_result = on_result;
	o->on_error = on_error;
	o->arg = c;
}

static void
collect_free(struct collect *c)
{
	buf_free(&c->found);
	buf_free(&c->errors);
}

/* Does found hold root + rel as one line? */
static int
found(const struct collect *c, const char *root, const char *rel)
{
	char line[PATH_MAX + 2];

	snprintf(line, sizeof(line), "%s/%s\n", root, rel);
	return strstr(buf_cstr(&c->found), line) != NULL;
}

static int
run(const char *root, const struct walk_opts *o, struct walk_stats *st)
{
	struct scan_ctx *c;
	const char *paths[1] = {root};
	int rc;

	assert_int_equal(scan_ctx_new(markers, NULL, &c), 0);
	rc = walk_run(c, paths, 1, o, st);
	scan_ctx_free(c);
	return rc;
}

static void
mkdir_p(const char *root, const char *rel)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/%s", root, rel);
	assert_int_equal(mkdir(p, 0755), 0);
}

static void
symlink_at(const char *root, const char *rel, const char *target)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/%s", root, rel);
	assert_int_equal(symlink(target, p), 0);
}

/* The tree most tests walk: see the expectations in test_tree. */
static char *
make_tree(void)
{
	char *root = test_tmpdir(), p[PATH_MAX];
	static char big[200 * 1000];

	mkdir_p(root, "a");
	test_write(root, "a/marker.txt", "x " MARKER " x", 28);
	test_write(root, "a/clean.txt", "clean", 5);
	symlink_at(root, "a/up", "..");
	symlink_at(root, "loop", ".");
	symlink_at(root, "link.txt", "a/marker.txt");
	memset(big, '.', sizeof(big));
	memcpy(big + 10, MARKER, strlen(MARKER));
	test_write(root, "big.bin", big, sizeof(big));
	mkdir_p(root, "skip");
	test_write(root, "skip/marker2.txt", MARKER, strlen(MARKER));
	test_write(root, "x.log", MARKER, strlen(MARKER));
	snprintf(p, sizeof(p), "%s/fifo", root);
	assert_int_equal(mkfifo(p, 0600), 0);
	test_write(root, "evil-tool.exe", "clean", 5);
	mkdir_p(root, "deep");
	mkdir_p(root, "deep/1");
	mkdir_p(root, "deep/1/2");
	mkdir_p(root, "deep/1/2/3");
	mkdir_p(root, "deep/1/2/3/4");
	test_write(root, "deep/1/2/3/4/marker.txt", MARKER, strlen(MARKER));
	return root;
}

static void
test_tree(void **state)
{
	static const char *const excl[] = {"*/skip", "*.log"};
	struct collect c;
	struct walk_opts o;
	struct walk_stats st;
	char *root = make_tree();

	(void)state;
	alarm(60); /* a followed FIFO or symlink loop would hang here */
	collect_init(&c, &o);
	o.exclude = excl;
	o.nexclude = 2;
	o.max_size = 100 * 1000;
	assert_int_equal(run(root, &o, &st), 0);
	alarm(0);

	assert_true(found(&c, root, "a/marker.txt"));
	assert_true(found(&c, root, "evil-tool.exe")); /* filename IOC */
	assert_true(found(&c, root, "deep/1/2/3/4/marker.txt"));
	assert_false(found(&c, root, "skip/marker2.txt"));
	assert_false(found(&c, root, "x.log"));
	assert_false(found(&c, root, "big.bin"));
	assert_false(found(&c, root, "link.txt"));
	assert_false(found(&c, root, "loop/a/marker.txt"));
	assert_false(found(&c, root, "a/up/a/marker.txt"));
	assert_int_equal(c.nresults, 3);

	assert_int_equal(st.scanned, 4); /* marker, clean, evil, deep */
	assert_int_equal(st.matched, 3);
	assert_int_equal(st.findings, 3);
	assert_int_equal(st.too_big, 1);
	assert_int_equal(st.excluded, 2);
	assert_int_equal(st.special, 4); /* up, loop, link.txt, fifo */
	assert_int_equal(st.errors, 0);
	assert_int_equal(st.dirs, 7); /* root, a, deep, 1, 2, 3, 4 */
	assert_int_equal(st.bytes, 28 + 5 + 5 + strlen(MARKER));
	assert_int_equal(buf_cstr(&c.errors)[0], '\0');
	/* the final progress report, with the final numbers */
	assert_true(c.final_seen);
	assert_int_equal(c.last.scanned, st.scanned);

	/* a root given with trailing slashes names paths the same way */
	{
		char slashed[PATH_MAX];
		struct collect c2;
		struct walk_opts o2;

		collect_init(&c2, &o2);
		snprintf(slashed, sizeof(slashed), "%s//", root);
		o2.exclude = excl;
		o2.nexclude = 2;
		assert_int_equal(run(slashed, &o2, &st), 0);
		assert_true(found(&c2, root, "a/marker.txt"));
		collect_free(&c2);
	}
	collect_free(&c);
	test_rmtree(root);
}

static void
test_depth_and_report_all(void **state)
{
	struct collect c;
	struct walk_opts o;
	struct walk_stats st;
	char *root = make_tree();

	(void)state;
	collect_init(&c, &o);
	o.max_depth = 3; /* root, deep, deep/1 */
	o.report_all = 1;
	assert_int_equal(run(root, &o, &st), 0);
	assert_false(found(&c, root, "deep/1/2/3/4/marker.txt"));
	assert_int_equal(st.errors, 1);
	assert_non_null(strstr(buf_cstr(&c.errors), "depth "));
	assert_non_null(strstr(buf_cstr(&c.errors), "/deep/1/2\n"));
	/* report_all: every scanned file, clean ones too */
	assert_true(found(&c, root, "a/clean.txt"));
	assert_int_equal(c.nresults, st.scanned);
	collect_free(&c);
	test_rmtree(root);
}

/*
 * Unreadable files and directories. Root reads everything, so the walk
 * runs in a child that drops to nobody when the tests run as root; the
 * child sends back its numbers.
 */
struct unreadable_out {
	struct walk_stats st;
	int rc;
	char errors[1024];
	int found_readable;
};

static void
test_unreadable(void **state)
{
	struct unreadable_out out;
	struct collect c;
	struct walk_opts o;
	char *root = test_tmpdir(), p[PATH_MAX];
	int fds[2], status;
	pid_t pid;

	(void)state;
	assert_int_equal(chmod(root, 0755), 0);
	test_write(root, "readable.txt", MARKER, strlen(MARKER));
	snprintf(p, sizeof(p), "%s",
	         test_write(root, "secret.txt", MARKER, strlen(MARKER)));
	assert_int_equal(chmod(p, 0), 0);
	mkdir_p(root, "locked");
	test_write(root, "locked/inner.txt", MARKER, strlen(MARKER));
	snprintf(p, sizeof(p), "%s/locked", root);
	assert_int_equal(chmod(p, 0), 0);

	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(fds[0]);
		memset(&out, 0, sizeof(out));
		if (geteuid() == 0 &&
		    (setgroups(0, NULL) == -1 || setgid(65534) == -1 ||
		     setuid(65534) == -1))
			_exit(3);
		collect_init(&c, &o);
		out.rc = run(root, &o, &out.st);
		snprintf(out.errors, sizeof(out.errors), "%s",
		         buf_cstr(&c.errors));
		out.found_readable = found(&c, root, "readable.txt");
		if (write(fds[1], &out, sizeof(out)) != sizeof(out))
			_exit(4);
		_exit(0);
	}
	close(fds[1]);
	assert_int_equal(read(fds[0], &out, sizeof(out)), sizeof(out));
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

	assert_int_equal(out.rc, 0); /* never fatal */
	assert_true(out.found_readable);
	assert_int_equal(out.st.scanned, 1);
	assert_int_equal(out.st.errors, 2);
	snprintf(p, sizeof(p), "open %d %s/secret.txt\n", EACCES, root);
	assert_non_null(strstr(out.errors, p));
	snprintf(p, sizeof(p), "opendir %d %s/locked\n", EACCES, root);
	assert_non_null(strstr(out.errors, p));
	test_rmtree(root);
}

static char *
make_flat(unsigned n, size_t size)
{
	char *root = test_tmpdir(), name[32], *data = malloc(size);
	unsigned i;

	assert_non_null(data);
	memset(data, 'q', size);
	if (size >= strlen(MARKER))
		memcpy(data, MARKER, strlen(MARKER));
	for (i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "f%02u.txt", i);
		test_write(root, name, data, size);
	}
	free(data);
	return root;
}

static void
test_cancel(void **state)
{
	struct collect c;
	struct walk_opts o;
	struct walk_stats st;
	atomic_int cancel;
	char *root = make_flat(30, 64);

	(void)state;
	/* cancelled from a callback: the walk stops at the next file */
	atomic_init(&cancel, 0);
	collect_init(&c, &o);
	o.cancel = &cancel;
	c.cancel_on_result = &cancel;
	assert_int_equal(run(root, &o, &st), -ECANCELED);
	assert_int_equal(st.matched, 1);
	assert_int_equal(st.scanned, 1);
	assert_true(c.final_seen);
	collect_free(&c);

	/* on_result asking to stop does the same */
	collect_init(&c, &o);
	c.stop_on_result = 1;
	assert_int_equal(run(root, &o, &st), -ECANCELED);
	assert_int_equal(st.scanned, 1);
	collect_free(&c);

	/* cancelled before it starts: nothing is read */
	atomic_store(&cancel, 1);
	collect_init(&c, &o);
	o.cancel = &cancel;
	assert_int_equal(run(root, &o, &st), -ECANCELED);
	assert_int_equal(st.scanned, 0);
	collect_free(&c);

	/* cancelled while it sleeps under a rate cap: promptly */
	{
		struct timespec t0, t1;

		atomic_store(&cancel, 0);
		collect_init(&c, &o);
		o.cancel = &cancel;
		o.files_per_sec = 0.5; /* 2 s per file */
		c.cancel_on_result = &cancel;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		assert_int_equal(run(root, &o, &st), -ECANCELED);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		assert_true(t1.tv_sec - t0.tv_sec < 2);
		assert_int_equal(st.scanned, 1);
		collect_free(&c);
	}
	test_rmtree(root);
}

static void
test_rate_files(void **state)
{
	struct collect c;
	struct walk_opts o;
	struct walk_stats st;
	char *root = make_flat(20, 64);

	(void)state;
	collect_init(&c, &o);
	o.files_per_sec = 10;
	o.progress_ms = 100;
	assert_int_equal(run(root, &o, &st), 0);
	assert_int_equal(st.scanned, 20);
	/* 20 files at 10 per second: 1.9 s at least, loosely bounded */
	assert_true(st.elapsed >= 1.5);
	assert_true(st.elapsed < 10.0);
	/* progress while it paced, at a bounded rate, and at the end */
	assert_true(c.progress_calls >= 5);
	assert_true(c.progress_calls <= 2 + (unsigned)(st.elapsed * 10) + 1);
	assert_true(c.final_seen);
	collect_free(&c);
	test_rmtree(root);
}

static void
test_rate_bytes(void **state)
{
	struct collect c;
	struct walk_opts o;
	struct walk_stats st;
	char *root = make_flat(5, 200 * 1000);

	(void)state;
	collect_init(&c, &o);
	o.mb_per_sec = 2; /* 1 MB in total: the last file waits 0.4 s */
	assert_int_equal(run(root, &o, &st), 0);
	assert_int_equal(st.scanned, 5);
	assert_int_equal(st.bytes, 1000 * 1000);
	assert_true(st.elapsed >= 0.35);
	assert_true(st.elapsed < 10.0);
	collect_free(&c);
	test_rmtree(root);
}

static double
thread_cpu(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
test_rate_cpu(void **state)
{
	struct collect c;
	struct walk_opts o;
	struct walk_stats st;
	char *root = make_flat(10, 2u << 20);
	double cpu;

	(void)state;
	collect_init(&c, &o);
	o.cpu_percent = 10;
	o.nice = 5;
	o.io_idle = 1;
	cpu = thread_cpu();
	assert_int_equal(run(root, &o, &st), 0);
	cpu = thread_cpu() - cpu;
	assert_int_equal(st.scanned, 10);
	/* at 10 % of a core the walk takes ~10x its CPU time; the last
	 * file's time is never paid back, so only half is asserted */
	assert_true(st.elapsed >= 5.0 * cpu);
	collect_free(&c);
	test_rmtree(root);
}

static void
test_roots(void **state)
{
	struct collect c;
	struct walk_opts o;
	struct walk_stats st;
	char *root = make_tree(), p[PATH_MAX];
	struct scan_ctx *ctx;
	const char *two[2];

	(void)state;
	alarm(30);
	/* a file as the root */
	collect_init(&c, &o);
	snprintf(p, sizeof(p), "%s/a/marker.txt", root);
	assert_int_equal(run(p, &o, &st), 0);
	assert_int_equal(st.scanned, 1);
	assert_int_equal(st.matched, 1);
	collect_free(&c);

	/* a FIFO as the root is not opened */
	collect_init(&c, &o);
	snprintf(p, sizeof(p), "%s/fifo", root);
	assert_int_equal(run(p, &o, &st), 0);
	assert_int_equal(st.special, 1);
	assert_int_equal(st.scanned, 0);
	collect_free(&c);

	/* pseudo file systems are not walked */
	collect_init(&c, &o);
	assert_int_equal(run("/proc", &o, &st), 0);
	assert_int_equal(st.other_fs, 1);
	assert_int_equal(st.scanned, 0);
	assert_int_equal(st.dirs, 0);
	collect_free(&c);

	/* a missing root is an error, counted, and the next root runs */
	collect_init(&c, &o);
	snprintf(p, sizeof(p), "%s/a", root);
	two[0] = "/no/such/root";
	two[1] = p;
	assert_int_equal(scan_ctx_new(markers, NULL, &ctx), 0);
	assert_int_equal(walk_run(ctx, two, 2, &o, &st), 0);
	assert_int_equal(st.errors, 1);
	assert_int_equal(st.scanned, 2);
	assert_non_null(strstr(buf_cstr(&c.errors), "stat 2 /no/such/root"));

	/* bad options */
	o.nice = 20;
	assert_int_equal(walk_run(ctx, two, 2, &o, &st), -EINVAL);
	o.nice = 0;
	o.cpu_percent = 101;
	assert_int_equal(walk_run(ctx, two, 2, &o, &st), -EINVAL);
	o.cpu_percent = 0;
	o.files_per_sec = -1;
	assert_int_equal(walk_run(ctx, two, 2, &o, &st), -EINVAL);
	scan_ctx_free(ctx);
	collect_free(&c);
	alarm(0);
	test_rmtree(root);
}

static int
setup(void **state)
{
	(void)state;
	markers = test_markers();
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	scan_bundle_free(markers);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_tree),
	    cmocka_unit_test(test_depth_and_report_all),
	    cmocka_unit_test(test_unreadable),
	    cmocka_unit_test(test_cancel),
	    cmocka_unit_test(test_rate_files),
	    cmocka_unit_test(test_rate_bytes),
	    cmocka_unit_test(test_rate_cpu),
	    cmocka_unit_test(test_roots),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
