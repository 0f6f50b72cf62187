/*
 * Tests of src/scand/upload.c, receiving one upload in pieces: a body fed
 * a byte at a time gives the same 0600 sample file and SHA-256 as one fed
 * whole; a sample over max_upload fails with 413 at the piece that passes
 * the limit, long before the body ends, and leaves no file; a body that
 * is not multipart, has no "file" field or is cut short fails with 400;
 * a sync check's sample goes into the caller's buffer.
 */
#include <dirent.h>
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

#include "upload.c"

#define CTYPE "multipart/form-data; boundary=XyZ"

static char dir[] = "/tmp/vigil-upload-test.XXXXXX";

static size_t
body(char *out, size_t cap, const char *field, const char *data, size_t n)
{
	int h =
	    snprintf(out, cap,
	             "--XyZ\r\nContent-Disposition: form-data; name=\"%s\"; "
	             "filename=\"s.bin\"\r\n\r\n",
	             field);
	size_t len = (size_t)h;

	assert_true(len + n + 16 < cap);
	memcpy(out + len, data, n);
	len += n;
	memcpy(out + len, "\r\n--XyZ--\r\n", 11);
	return len + 11;
}

static int
files_in_dir(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static void
test_bytewise(void **state)
{
	static char b[4096], sample[1000];
	struct job j;
	struct upload *u;
	struct stat st;
	size_t n, i;
	FILE *f;
	char got[1000];

	(void)state;
	for (i = 0; i < sizeof(sample); i++)
		sample[i] = (char)(i * 7);
	n = body(b, sizeof(b), "file", sample, sizeof(sample));
	memset(&j, 0, sizeof(j));
	u = upload_new(&j, CTYPE, dir, 1000, 1, NULL, 0);
	assert_non_null(u);
	for (i = 0; i < n; i++)
		assert_int_equal(upload_feed(u, (uint8_t *)b + i, 1), 0);
	assert_int_equal(upload_finish(u), 0);
	upload_free(u);
	assert_int_equal(j.status, 0);
	assert_int_equal(j.size, 1000);
	assert_string_equal(j.name, "s.bin");
	assert_int_equal(strlen(j.sha256), 64);
	assert_int_equal(stat(j.path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	f = fopen(j.path, "rb");
	assert_non_null(f);
	assert_int_equal(fread(got, 1, sizeof(got), f), sizeof(got));
	fclose(f);
	assert_memory_equal(got, sample, sizeof(sample));
	unlink(j.path);
	free(j.path);
	free(j.name);
}

static void
test_too_large_early(void **state)
{
	static char b[300000], sample[200000];
	struct job j;
	struct upload *u;
	size_t n, off = 0;
	int rc = 0;

	(void)state;
	memset(sample, 'a', sizeof(sample));
	n = body(b, sizeof(b), "file", sample, sizeof(sample));
	memset(&j, 0, sizeof(j));
	u = upload_new(&j, CTYPE, dir, 4096, 0, NULL, 0);
	assert_non_null(u);
	while (off < n && (rc = upload_feed(u, (uint8_t *)b + off, 1024)) == 0)
		off += 1024;
	assert_int_equal(rc, -1);
	/* Stopped within a piece of passing 4096 bytes of sample, not at
	 * the end of the 200 KB body. */
	assert_true(off < 4096 + 1024 + 200);
	assert_int_equal(j.status, 413);
	assert_non_null(strstr(j.errmsg, "max_upload"));
	assert_int_equal(upload_feed(u, (uint8_t *)b, 1), -1);
	assert_int_equal(upload_finish(u), -1);
	upload_free(u);
	assert_int_equal(files_in_dir(), 0);
	free(j.name);
}

static void
test_bad(void **state)
{
	static char b[4096];
	struct job j;
	struct upload *u;
	size_t n;

	(void)state;
	memset(&j, 0, sizeof(j));
	u = upload_new(&j, "application/json", dir, 4096, 0, NULL, 0);
	assert_non_null(u);
	assert_int_equal(j.status, 400);
	assert_int_equal(upload_feed(u, (uint8_t *)"x", 1), -1);
	upload_free(u);

	n = body(b, sizeof(b), "other", "abc", 3);
	memset(&j, 0, sizeof(j));
	u = upload_new(&j, CTYPE, dir, 4096, 0, NULL, 0);
	assert_int_equal(upload_feed(u, (uint8_t *)b, n), 0);
	assert_int_equal(upload_finish(u), -1);
	assert_int_equal(j.status, 400);
	assert_non_null(strstr(j.errmsg, "no form field named \"file\""));
	upload_free(u);

	n = body(b, sizeof(b), "file", "abc", 3);
	memset(&j, 0, sizeof(j));
	u = upload_new(&j, CTYPE, dir, 4096, 0, NULL, 0);
	assert_int_equal(upload_feed(u, (uint8_t *)b, n - 8), 0); /* cut */
	assert_int_equal(upload_finish(u), -1);
	assert_int_equal(j.status, 400);
	upload_free(u);
	free(j.name);
	assert_int_equal(files_in_dir(), 0);
}

static void
test_mem(void **state)
{
	static char b[4096];
	uint8_t mem[64];
	struct job j;
	struct upload *u;
	size_t n;

	(void)state;
	n = body(b, sizeof(b), "file", "in memory", 9);
	memset(&j, 0, sizeof(j));
	u = upload_new(&j, CTYPE, dir, 4096, 0, mem, sizeof(mem));
	assert_int_equal(upload_feed(u, (uint8_t *)b, n), 0);
	assert_int_equal(upload_finish(u), 0);
	upload_free(u);
	assert_null(j.path);
	assert_ptr_equal(j.mem, mem);
	assert_int_equal(j.mem_len, 9);
	assert_memory_equal(mem, "in memory", 9);
	assert_int_equal(files_in_dir(), 0);
	free(j.name);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bytewise),
	    cmocka_unit_test(test_too_large_early),
	    cmocka_unit_test(test_bad),
	    cmocka_unit_test(test_mem),
	};
	int rc;

	assert_non_null(mkdtemp(dir));
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	rmdir(dir);
	return rc;
}
