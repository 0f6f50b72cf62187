/*
 * Tests of src/scand/engine.c, vigil-scand's worker pool: an upload goes
 * (as the event loop sends it, receive() below) through the multipart
 * parser to a 0600 sample file and is scanned into
 * Thunderstorm findings; malformed and oversized uploads fail with 400 and
 * 413 and leave no file behind; a second upload of the same content is
 * answered from the cache (unless a filename IOC matches the new name);
 * reserved threads never take queued async samples; pool_stop hands back
 * the jobs not started.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "engine.c"
#include "sandbox.c"
#include "thor.c"
#include "upload.c"

static struct event_base *base;
static struct pool *pool;
static char dir[] = "/tmp/vigil-scand-test.XXXXXX";
static struct job *done_list;
static int ndone;

static void
on_done(evutil_socket_t fd, short what, void *arg)
{
	struct job *j, *next;

	(void)fd;
	(void)what;
	(void)arg;
	for (j = pool_take_done(pool); j != NULL; j = next) {
		next = j->next;
		j->next = done_list;
		done_list = j;
		ndone++;
	}
}

static void
wait_for(int n)
{
	while (ndone < n)
		event_base_loop(base, EVLOOP_ONCE);
}

static struct job *
take(void)
{
	struct job *j = done_list;

	assert_non_null(j);
	done_list = j->next;
	ndone--;
	return j;
}

/* What the event loop does (api.c): the body through upload.c into a
 * sample file; with cut >= 0 the body ends after cut bytes of content. */
static struct job *
receive(const char *name, const char *content, size_t len, const char *ctype,
        long cut)
{
	struct job *j = calloc(1, sizeof(*j));
	struct upload *u;
	char head[512];

	assert_non_null(j);
	j->kind = JOB_CHECK;
	j->source = strdup("unit");
	snprintf(head, sizeof(head),
	         "--BND\r\nContent-Disposition: form-data; name=\"file\"; "
	         "filename=\"%s\"\r\n\r\n",
	         name);
	u = upload_new(j, ctype, dir, 4096, 1, NULL, 0);
	assert_non_null(u);
	if (upload_feed(u, (const uint8_t *)head, strlen(head)) == 0 &&
	    upload_feed(u, (const uint8_t *)content,
	                cut >= 0 ? (size_t)cut : len) == 0 &&
	    (cut >= 0 ||
	     upload_feed(u, (const uint8_t *)"\r\n--BND--\r\n", 11) == 0))
		(void)upload_finish(u);
	upload_free(u);
	return j;
}

static struct job *
upload(const char *name, const char *content, size_t len)
{
	struct job *j = receive(name, content, len,
	                        "multipart/form-data; boundary=BND", -1);

	assert_int_equal(j->status, 0);
	return j;
}

static int
count_files(void)
{
	char cmd[200];
	FILE *f;
	int n = -1;

	snprintf(cmd, sizeof(cmd), "ls -A %s | wc -l", dir);
	f = popen(cmd, "r");
	assert_non_null(f);
	assert_int_equal(fscanf(f, "%d", &n), 1);
	pclose(f);
	return n;
}

static int
setup(void **state)
{
	const char *data = getenv("VIGIL_TEST_DATA");
	char y[4096], i[4096];
	const char *paths[2] = {y, i};
	struct scan_bundle *b = NULL;
	struct scan_src *src;
	struct buf err, *bufs;
	struct sandbox sb;
	int rfd;

	(void)state;
	assert_non_null(data);
	snprintf(y, sizeof(y), "%s/scan/markers.yar", data);
	snprintf(i, sizeof(i), "%s/scan/markers.ioc", data);
	buf_init(&err, 65536);
	assert_int_equal(scan_srcs_read(paths, 2, &src, &bufs, &err), 0);
	assert_int_equal(scan_bundle_new(src, 2, &b, &err), 0);
	rfd = sandbox_rules_pack(src, 2, b, &err);
	assert_true(rfd >= 0);
	scan_srcs_free(src, bufs, 2);
	buf_free(&err);
	assert_non_null(mkdtemp(dir));
	base = event_base_new();
	pool = pool_new(2, 1, base, on_done, NULL);
	assert_non_null(pool);
	pool_set_limits(pool, 4096, 0, dir);
	pool_cache_size(pool, 10);
	/* Scanned by worker processes as in the daemon (as nobody when the
	 * tests run as root). */
	memset(&sb, 0, sizeof(sb));
	buf_init(&err, 1024);
	assert_int_equal(sandbox_user(NULL, &sb, &err), 0);
	buf_free(&err);
	sb.timeout = 60;
	sb.memory = 256LL << 20;
	pool_set_sandbox(pool, &sb);
	assert_int_equal(pool_set_bundle(pool, b, rfd), 0);
	scan_bundle_free(b);
	close(rfd);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	free(pool_stop(pool)); /* nothing left: NULL */
	pool_free(pool);
	event_base_free(base);
	rmdir(dir);
	return 0;
}

static void
test_check_finding(void **state)
{
	static const char marker[] = "..VIGIL-TEST-MARKER-7d1f3a..";
	struct job *j;
	json_t *f;

	(void)state;
	pool_push(pool, upload("C:\\x\\m.bin", marker, sizeof(marker) - 1));
	wait_for(1);
	j = take();
	assert_int_equal(j->status, 0);
	assert_int_equal(j->size, (long long)sizeof(marker) - 1);
	assert_int_equal(json_array_size(j->findings), 1);
	f = json_array_get(j->findings, 0);
	assert_string_equal(json_string_value(json_object_get(f, "type")),
	                    "THOR finding");
	assert_string_equal(json_string_value(json_object_get(
	                        json_object_get(f, "subject"), "path")),
	                    "C:\\x\\m.bin");
	assert_int_equal(json_integer_value(json_object_get(f, "reason_count")),
	                 1);
	assert_int_equal(j->cache_hit, 0);
	job_free(j);
	assert_int_equal(count_files(), 0); /* deleted after the scan */

	/* Same content, another name: from the cache. */
	pool_push(pool, upload("other.bin", marker, sizeof(marker) - 1));
	wait_for(1);
	j = take();
	assert_int_equal(j->cache_hit, 1);
	f = json_array_get(j->findings, 0);
	assert_string_equal(json_string_value(json_object_get(
	                        json_object_get(f, "subject"), "path")),
	                    "other.bin");
	job_free(j);

	/* A name that matches a filename IOC is scanned again. */
	pool_push(pool, upload("/a/evil-tool.exe", marker, sizeof(marker) - 1));
	wait_for(1);
	j = take();
	assert_int_equal(j->cache_hit, 0);
	f = json_array_get(j->findings, 0);
	assert_int_equal(json_integer_value(json_object_get(f, "reason_count")),
	                 2);
	job_free(j);
}

static void
test_bad_uploads(void **state)
{
	char big[5000];
	struct job *j;

	(void)state;
	memset(big, 'a', sizeof(big));
	j = receive("big", big, sizeof(big),
	            "multipart/form-data; boundary=BND", -1);
	assert_int_equal(j->status, 413);
	assert_non_null(strstr(j->errmsg, "max_upload"));
	job_free(j);

	j = receive("x", "abc", 3, "text/plain", -1);
	assert_int_equal(j->status, 400);
	assert_non_null(strstr(j->errmsg, "multipart"));
	job_free(j);

	j = receive("x", "abc", 3, "multipart/form-data; boundary=BND", 1);
	assert_int_equal(j->status, 400); /* truncated */
	job_free(j);

	j = receive("x", "abc", 3, "multipart/form-data; boundary=OTHER", -1);
	assert_int_equal(j->status, 400);
	job_free(j);
	assert_int_equal(count_files(), 0);
}

static void
test_reserved_threads(void **state)
{
	struct job *j;
	char path[4200];
	FILE *f;
	int i, n = 8;

	(void)state;
	/* Queued samples (async): only the unreserved thread (1) runs
	 * them, however many there are. */
	for (i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/q%d", dir, i);
		f = fopen(path, "w");
		assert_non_null(f);
		fprintf(f, "sample %d\n", i);
		fclose(f);
		j = calloc(1, sizeof(*j));
		j->kind = JOB_SCAN;
		j->id = i + 1;
		j->path = strdup(path);
		j->name = strdup("q.txt");
		j->source = strdup("unit");
		pool_push(pool, j);
	}
	wait_for(n);
	for (i = 0; i < n; i++) {
		j = take();
		assert_int_equal(j->status, 0);
		assert_int_equal(j->worker, 1);
		assert_int_equal(json_array_size(j->findings), 0);
		job_free(j);
	}
	assert_int_equal(count_files(), 0);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_check_finding),
	    cmocka_unit_test(test_bad_uploads),
	    cmocka_unit_test(test_reserved_threads),
	};

	/* The scan workers are this program again (sandbox.c). */
	sandbox_worker_run(argc, argv);
	scan_init();
	return cmocka_run_group_tests(tests, setup, teardown);
}
