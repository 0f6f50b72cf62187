/*
 * Tests of src/proto/multipart.c, the streaming multipart/form-data parser
 * behind vigil-scand's uploads: the same body fed whole, byte by byte and
 * split at every position gives the same parts and data (boundaries split
 * across chunks), data that looks almost like a delimiter passes through,
 * and each kind of malformed body fails with a named error.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "multipart.h"

struct sink {
	struct buf log; /* "[name|filename]data</>" per part */
	int stop_on_data;
};

static int
on_part(void *arg, const char *name, const char *filename)
{
	struct sink *s = arg;

	buf_printf(&s->log, "[%s|%s]", name, filename ? filename : "(none)");
	return 0;
}

static int
on_data(void *arg, const uint8_t *p, size_t n)
{
	struct sink *s = arg;

	assert_true(n > 0);
	if (s->stop_on_data)
		return 1;
	buf_append(&s->log, p, n);
	return 0;
}

static int
on_end(void *arg)
{
	struct sink *s = arg;

	buf_puts(&s->log, "</>");
	return 0;
}

static const struct mp_callbacks cbs = {on_part, on_data, on_end};

#define CT "multipart/form-data; boundary=XyZ-123"

/* Data with near-delimiters: "\r\n--XyZ-12" then not the end, a lone CR,
 * "\r\r\n--XyZ" and the boundary without its CRLF in front. */
static const char body[] = "preamble to ignore\r\n"
                           "--XyZ-123\r\n"
                           "Content-Disposition: form-data; name=\"file\"; "
                           "filename=\"C:\\Windows\\evil \\\"q\\\".exe\"\r\n"
                           "Content-Type: application/octet-stream\r\n"
                           "\r\n"
                           "ab\r\n--XyZ-12x\rcd\r\r\n--XyZ--XyZ-123 tail\r\n"
                           "--XyZ-123  \r\n"
                           "content-disposition: form-data; name=note\r\n"
                           "\r\n"
                           "hello\r\n"
                           "--XyZ-123--\r\nepilogue\r\n--XyZ-123\r\n";

static const char expect[] = "[file|C:\\Windows\\evil \"q\".exe]"
                             "ab\r\n--XyZ-12x\rcd\r\r\n--XyZ--XyZ-123 tail</>"
                             "[note|(none)]hello</>";

static void
run(const char *ct, const char *b, size_t len, size_t chunk, struct sink *s,
    int *rc_feed, int *rc_finish, struct mp_parser *p)
{
	size_t off;

	buf_init(&s->log, 1 << 20);
	assert_int_equal(mp_init(p, ct, &cbs, s), 0);
	*rc_feed = 0;
	for (off = 0; off < len && *rc_feed == 0; off += chunk)
		*rc_feed = mp_feed(p, (const uint8_t *)b + off,
		                   len - off < chunk ? len - off : chunk);
	*rc_finish = mp_finish(p);
}

static void
test_whole_and_bytewise(void **state)
{
	struct mp_parser p;
	struct sink s = {0};
	int rf, rn;
	size_t chunk;

	(void)state;
	for (chunk = 1; chunk <= sizeof(body); chunk++) {
		run(CT, body, sizeof(body) - 1, chunk, &s, &rf, &rn, &p);
		assert_int_equal(rf, 0);
		assert_int_equal(rn, 0);
		assert_string_equal(buf_cstr(&s.log), expect);
		buf_free(&s.log);
	}
}

static void
test_every_split(void **state)
{
	struct mp_parser p;
	struct sink s = {0};
	size_t cut, len = sizeof(body) - 1;

	(void)state;
	for (cut = 0; cut <= len; cut++) {
		buf_init(&s.log, 1 << 20);
		assert_int_equal(mp_init(&p, CT, &cbs, &s), 0);
		assert_int_equal(mp_feed(&p, (const uint8_t *)body, cut), 0);
		assert_int_equal(
		    mp_feed(&p, (const uint8_t *)body + cut, len - cut), 0);
		assert_int_equal(mp_finish(&p), 0);
		assert_string_equal(buf_cstr(&s.log), expect);
		buf_free(&s.log);
	}
}

static void
test_binary_and_empty(void **state)
{
	struct mp_parser p;
	struct sink s = {0};
	uint8_t big[3000];
	struct buf b;
	size_t i;
	int rf, rn;

	(void)state;
	for (i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 7 + (i >> 3));
	big[100] = '\r';
	big[101] = '\n';
	big[102] = '-';
	buf_init(&b, 1 << 20);
	buf_puts(&b, "--b\r\nContent-Disposition: form-data; name=\"file\"; "
	             "filename=\"x\"\r\n\r\n");
	buf_append(&b, big, sizeof(big));
	buf_puts(&b, "\r\n--b\r\nContent-Disposition: form-data; name=e\r\n"
	             "\r\n\r\n--b--");
	run("multipart/form-data;boundary=\"b\"", (const char *)b.data, b.len,
	    7, &s, &rf, &rn, &p);
	assert_int_equal(rf, 0);
	assert_int_equal(rn, 0);
	assert_int_equal(s.log.len, strlen("[file|x]") + sizeof(big) +
	                                strlen("</>[e|(none)]</>"));
	assert_memory_equal(s.log.data + strlen("[file|x]"), big, sizeof(big));
	buf_free(&s.log);
	buf_free(&b);
}

static void
expect_error(const char *ct, const char *b, const char *needle)
{
	struct mp_parser p;
	struct sink s = {0};
	int rf = 0, rn = 0;

	buf_init(&s.log, 1 << 20);
	if (mp_init(&p, ct, &cbs, &s) == 0) {
		rf = mp_feed(&p, (const uint8_t *)b, strlen(b));
		rn = mp_finish(&p);
		assert_true(rf == -1 || rn == -1);
		/* errors are final */
		assert_int_equal(mp_feed(&p, (const uint8_t *)"x", 1), -1);
	}
	if (strstr(p.err, needle) == NULL)
		fail_msg("error \"%s\" does not contain \"%s\"", p.err, needle);
	buf_free(&s.log);
}

static void
test_errors(void **state)
{
	char longb[120];

	(void)state;
	expect_error(NULL, "", "no Content-Type");
	expect_error("application/json", "", "not multipart/form-data");
	expect_error("multipart/form-data", "", "no boundary");
	expect_error("multipart/form-data; boundary=", "", "1 to 70");
	memset(longb, 'a', sizeof(longb));
	memcpy(longb, "multipart/form-data; boundary=", 30);
	longb[119] = '\0';
	expect_error(longb, "", "too long");
	expect_error("multipart/form-data; boundary=a\x01", "", "invalid");
	expect_error(CT, "no delimiter at all", "no boundary found");
	expect_error(CT,
	             "--XyZ-123\r\nContent-Disposition: form-data; "
	             "name=file\r\n\r\ndata without end",
	             "truncated");
	expect_error(CT, "--XyZ-123x\r\n", "malformed delimiter");
	expect_error(CT, "--XyZ-123\r\nBroken header\r\n\r\n", "colon");
	expect_error(CT, "--XyZ-123\r\nContent-Type: a/b\r\n\r\nx\r\n",
	             "without Content-Disposition");
	expect_error(CT, "--XyZ-123\r\nContent-Disposition: attachment\r\n\r\n",
	             "not form-data");
	expect_error(CT,
	             "--XyZ-123\r\nContent-Disposition: form-data; "
	             "name=\"unterminated\r\n\r\n",
	             "malformed");
}

/* The filename a part with this Content-Disposition parameter list
 * reports, as Go's mime/multipart (THOR's reader) would. */
static void
expect_filename(const char *params, const char *want)
{
	struct mp_parser p;
	struct sink s = {0};
	char b[1024], got[600];
	int rf, rn;

	snprintf(b, sizeof(b),
	         "--XyZ-123\r\nContent-Disposition: form-data; name=file; "
	         "%s\r\n\r\nx\r\n--XyZ-123--\r\n",
	         params);
	run(CT, b, strlen(b), strlen(b), &s, &rf, &rn, &p);
	assert_int_equal(rf, 0);
	assert_int_equal(rn, 0);
	snprintf(got, sizeof(got), "[file|%s]x</>", want);
	assert_string_equal(buf_cstr(&s.log), got);
	buf_free(&s.log);
}

static void
test_filename_params(void **state)
{
	(void)state;
	/* Go's writer escapes backslashes and quotes; a backslash before a
	 * letter is a plain one (browsers, curl) */
	expect_filename("filename=\"C:\\\\Temp\\\\a \\\"q\\\".exe\"",
	                "C:\\Temp\\a \"q\".exe");
	expect_filename("filename=\"C:\\Temp\\b.exe\"", "C:\\Temp\\b.exe");
	expect_filename("filename=\"a\\;b\\=c\"", "a;b=c");
	/* filename* wins when it decodes, in either order */
	expect_filename("filename=\"f.bin\"; "
	                "filename*=UTF-8''%E2%82%AC%20x.bin",
	                "\xe2\x82\xac x.bin");
	expect_filename("filename*=utf-8'en'a%2Fb; filename=f.bin", "a/b");
	/* continuations, the first extended */
	expect_filename(
	    "filename*0*=UTF-8''%C3%A9t%C3%A9-; filename*1=part.txt",
	    "\xc3\xa9t\xc3\xa9-part.txt");
	/* unusable: another charset, a bad escape, a NUL, out of order */
	expect_filename("filename=f.bin; filename*=ISO-8859-1''%E9", "f.bin");
	expect_filename("filename=f.bin; filename*=UTF-8''%G1", "f.bin");
	expect_filename("filename=f.bin; filename*=UTF-8''a%00b", "f.bin");
	expect_filename("filename=f.bin; filename*1=x; filename*0=y", "f.bin");
}

static void
test_header_limit_and_stop(void **state)
{
	struct mp_parser p;
	struct sink s = {0};
	struct buf b;
	size_t i;

	(void)state;
	buf_init(&b, 1 << 20);
	buf_puts(&b, "--XyZ-123\r\nX: ");
	for (i = 0; i < MP_MAX_HEADERS; i++)
		buf_putc(&b, 'a');
	buf_init(&s.log, 1 << 20);
	assert_int_equal(mp_init(&p, CT, &cbs, &s), 0);
	assert_int_equal(mp_feed(&p, b.data, b.len), -1);
	assert_non_null(strstr(p.err, "longer than"));
	buf_free(&b);
	buf_free(&s.log);

	/* A receiver that says stop (disk full, too large) stops it. */
	s.stop_on_data = 1;
	buf_init(&s.log, 1 << 20);
	assert_int_equal(mp_init(&p, CT, &cbs, &s), 0);
	assert_int_equal(mp_feed(&p, (const uint8_t *)body, sizeof(body) - 1),
	                 -1);
	assert_non_null(strstr(p.err, "stopped"));
	buf_free(&s.log);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_whole_and_bytewise),
	    cmocka_unit_test(test_every_split),
	    cmocka_unit_test(test_binary_and_empty),
	    cmocka_unit_test(test_errors),
	    cmocka_unit_test(test_filename_params),
	    cmocka_unit_test(test_header_limit_and_stop),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
