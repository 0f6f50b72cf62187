/*
 * Tests of src/scan/ioc.c: every line form of the IOC format, errors named
 * "file:line" and capped, a refused file leaving the set as it was, and
 * the limits that keep hostile input cheap (line length, UTF-8, regex
 * size).
 */
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "ioc.h"
#include "scan_test.h"

static int
parse(const char *text, struct ioc_set *s, struct buf *err)
{
	return ioc_parse((const uint8_t *)text, strlen(text), "t.ioc", s, err);
}

static void
test_markers_file(void **state)
{
	struct ioc_set s;
	struct buf err;
	size_t len;
	char *text = test_slurp(test_data("markers.ioc"), &len);
	static const uint8_t md5[16] = {0x6a, 0xdf, 0x67, 0xfc, 0xa7, 0x2b,
	                                0x2d, 0x7a, 0xa6, 0xdf, 0x32, 0x7f,
	                                0x27, 0x83, 0x61, 0x82};

	(void)state;
	ioc_set_init(&s);
	buf_init(&err, 0);
	assert_int_equal(
	    ioc_parse((const uint8_t *)text, len, "markers.ioc", &s, &err), 0);
	assert_int_equal(err.len, 0);
	assert_int_equal(s.n, 7);

	assert_int_equal(s.v[0].type, IOC_MD5);
	assert_int_equal(s.v[0].score, 70);
	assert_int_equal(s.v[0].line, 3);
	assert_memory_equal(s.v[0].digest, md5, 16);
	assert_string_equal(s.v[0].desc, "Test sample (MD5)");

	assert_int_equal(s.v[1].type, IOC_SHA1);
	assert_int_equal(s.v[1].score, 65);

	/* upper-case type and hex; the description keeps its ';' */
	assert_int_equal(s.v[2].type, IOC_SHA256);
	assert_int_equal(s.v[2].digest[0], 0x59);
	assert_int_equal(s.v[2].digest[31], 0xd0);
	assert_string_equal(s.v[2].desc, "Test sample (SHA-256); upper case");

	/* THOR form: the type follows from the length */
	assert_int_equal(s.v[3].type, IOC_SHA256);
	assert_int_equal(s.v[3].score, 75);
	assert_int_equal(s.v[3].line, 7);
	assert_string_equal(s.v[3].desc, "THOR-style line");

	assert_int_equal(s.v[4].type, IOC_FILENAME);
	assert_string_equal(s.v[4].pattern, "/evil[-_]tool\\.(exe|bin)$");
	assert_non_null(s.v[4].re);
	assert_int_equal(regexec(s.v[4].re, "/tmp/evil-tool.exe", 0, NULL, 0),
	                 0);
	/* case-insensitive */
	assert_int_equal(regexec(s.v[4].re, "/tmp/EVIL_TOOL.BIN", 0, NULL, 0),
	                 0);
	assert_int_not_equal(
	    regexec(s.v[4].re, "/tmp/evil-tool.exe.txt", 0, NULL, 0), 0);

	/* a backslash pair stays as written: an escaped backslash */
	assert_string_equal(s.v[5].pattern, "\\\\Temp\\\\[a-z]{8}\\.ps1$");
	assert_int_equal(
	    regexec(s.v[5].re, "C:\\Temp\\abcdefgh.ps1", 0, NULL, 0), 0);
	/* "\;" stands for a literal ';' */
	assert_string_equal(s.v[6].pattern, "/odd;name$");
	assert_int_equal(regexec(s.v[6].re, "/x/odd;name", 0, NULL, 0), 0);

	ioc_set_free(&s);
	assert_int_equal(s.n, 0);
	buf_free(&err);
	free(text);
}

static void
test_broken_file(void **state)
{
	struct ioc_set s;
	struct buf err;
	size_t len;
	char *text = test_slurp(test_data("broken.ioc"), &len);
	const char *e;

	(void)state;
	ioc_set_init(&s);
	buf_init(&err, 0);
	/* an entry already there must survive the refused file */
	assert_int_equal(
	    parse("md5;00112233445566778899aabbccddeeff;10;kept\n", &s, &err),
	    0);
	assert_int_equal(s.n, 1);
	assert_int_equal(
	    ioc_parse((const uint8_t *)text, len, "broken.ioc", &s, &err), -1);
	e = buf_cstr(&err);
	assert_non_null(strstr(e, "broken.ioc:2: md5: expected 32 hex digits"));
	assert_non_null(strstr(e, "broken.ioc:3: score '101' is not an "
	                          "integer in 1..100"));
	assert_non_null(strstr(e, "broken.ioc:4: sha256: missing score"));
	assert_non_null(strstr(e, "broken.ioc:5: unknown IOC type 'crc32'"));
	assert_non_null(strstr(e, "broken.ioc:6: filename: bad regex"));
	assert_null(strstr(e, "broken.ioc:1:"));
	assert_null(strstr(e, "broken.ioc:7:"));
	assert_null(strstr(e, "broken.ioc:8:"));
	/* refused as a whole, earlier entries intact */
	assert_int_equal(s.n, 1);
	assert_string_equal(s.v[0].desc, "kept");
	ioc_set_free(&s);
	buf_free(&err);
	free(text);
}

static void
test_line_forms(void **state)
{
	struct ioc_set s;
	struct buf err;

	(void)state;
	ioc_set_init(&s);
	buf_init(&err, 0);
	/* BOM, CRLF, indented comments, blank lines, spaces around fields,
	 * no description, no final newline */
	assert_int_equal(
	    parse("\xef\xbb\xbf# c\r\n"
	          "   # indented comment\r\n"
	          "\r\n"
	          "  sha1 ; 4d0c602b65ce86e6269270b566a47b4a7ff09d2a ; 65 \r\n"
	          "6adf67fca72b2d7aa6df327f27836182;5;THOR md5;x;y\n"
	          "filename;\\.ps1$;30;ends without newline",
	          &s, &err),
	    0);
	assert_int_equal(s.n, 3);
	assert_int_equal(s.v[0].type, IOC_SHA1);
	assert_int_equal(s.v[0].line, 4);
	assert_string_equal(s.v[0].desc, "");
	assert_int_equal(s.v[1].type, IOC_MD5);
	assert_string_equal(s.v[1].desc, "THOR md5;x;y");
	assert_int_equal(s.v[2].type, IOC_FILENAME);
	assert_int_equal(s.v[2].line, 6);
	assert_string_equal(s.v[2].desc, "ends without newline");
	/* an empty file is a valid, empty IOC file */
	assert_int_equal(parse("", &s, &err), 0);
	assert_int_equal(parse("# only comments\n\n", &s, &err), 0);
	assert_int_equal(s.n, 3);
	ioc_set_free(&s);
	buf_free(&err);
}

static void
expect_error(const char *text, size_t len, const char *msg)
{
	struct ioc_set s;
	struct buf err;

	ioc_set_init(&s);
	buf_init(&err, 0);
	if (ioc_parse((const uint8_t *)text, len, "t.ioc", &s, &err) != -1 ||
	    strstr(buf_cstr(&err), msg) == NULL) {
		fprintf(stderr, "expected '%s', got '%s'\n", msg,
		        buf_cstr(&err));
		fail();
	}
	assert_int_equal(s.n, 0);
	ioc_set_free(&s);
	buf_free(&err);
}

/* The whole literal, embedded NULs included. */
#define EXPECT(lit, msg) expect_error(lit, sizeof(lit) - 1, msg)

static void
test_errors(void **state)
{
	char longline[IOC_MAX_LINE + 64];
	char longpat[IOC_MAX_PATTERN + 64];

	(void)state;
	EXPECT("md5;00112233445566778899aabbccddeeff;0;x",
	       "t.ioc:1: score '0'");
	EXPECT("md5;00112233445566778899aabbccddeeff;-5;x",
	       "t.ioc:1: score '-5'");
	EXPECT("md5;00112233445566778899aabbccddeeff;ten;x", "score 'ten'");
	EXPECT("md5;00112233445566778899aabbccddeeff;;x",
	       "t.ioc:1: missing score");
	EXPECT("md5;0011223344556677889zaabbccddeeff;50",
	       "md5: expected 32 hex digits");
	EXPECT("sha1;00112233445566778899aabbccddeeff;50",
	       "sha1: expected 40 hex digits");
	EXPECT("0011223344556677889;50",
	       "hash of 19 hex digits (expected 32, 40 or 64)");
	EXPECT("hello world", "unknown IOC type 'hello world'");
	EXPECT("filename;;50;empty", "filename: empty pattern");
	EXPECT("filename", "filename: missing score");
	EXPECT("\n\nmd5;00112233445566778899aabbccddeeff;50;a\0b",
	       "t.ioc:3: control character 0x00");
	EXPECT("md5;00112233445566778899aabbccddeeff;50;\xc3\x28",
	       "t.ioc:1: invalid UTF-8");
	/* surrogates and overlong forms are not UTF-8 either */
	EXPECT("md5;00112233445566778899aabbccddeeff;50;\xed\xa0\x80",
	       "invalid UTF-8");
	EXPECT("md5;00112233445566778899aabbccddeeff;50;\xc0\xaf",
	       "invalid UTF-8");

	memset(longline, 'a', sizeof(longline));
	memcpy(longline, "md5;00112233445566778899aabbccddeeff;50;", 40);
	expect_error(longline, sizeof(longline), "t.ioc:1: line longer than");

	memset(longpat, 'a', sizeof(longpat));
	memcpy(longpat, "filename;", 9);
	memcpy(longpat + sizeof(longpat) - 4, ";50", 3);
	longpat[sizeof(longpat) - 1] = '\n';
	expect_error(longpat, sizeof(longpat), "pattern longer than 1024");

	/* regexes that would make regcomp build huge automata */
	EXPECT("filename;a{300};50", "repetition count above 255");
	EXPECT("filename;((a{200}){200}){200};50", "pattern too complex");
	EXPECT("filename;((((((((((((((((((((((((((((((((((a))))))))))))"
	       "))))))))))))))))))))));50",
	       "groups nested too deeply");
}

static void
test_error_cap(void **state)
{
	struct ioc_set s;
	struct buf err, text;
	size_t lines = 0;
	const char *p;
	int i;

	(void)state;
	ioc_set_init(&s);
	buf_init(&err, 0);
	buf_init(&text, 0);
	for (i = 0; i < IOC_MAX_ERRORS + 10; i++)
		assert_int_equal(buf_puts(&text, "bogus\n"), 0);
	assert_int_equal(ioc_parse(text.data, text.len, "t.ioc", &s, &err), -1);
	for (p = buf_cstr(&err); (p = strchr(p, '\n')) != NULL; p++)
		lines++;
	assert_int_equal(lines, IOC_MAX_ERRORS + 1);
	assert_non_null(strstr(buf_cstr(&err), "t.ioc: 10 more errors"));
	/* a NULL err still refuses */
	assert_int_equal(ioc_parse(text.data, text.len, "t.ioc", &s, NULL), -1);
	buf_free(&text);
	buf_free(&err);
	ioc_set_free(&s);
}

static void
test_names(void **state)
{
	(void)state;
	assert_string_equal(ioc_type_name(IOC_MD5), "md5");
	assert_string_equal(ioc_type_name(IOC_SHA1), "sha1");
	assert_string_equal(ioc_type_name(IOC_SHA256), "sha256");
	assert_string_equal(ioc_type_name(IOC_FILENAME), "filename");
	assert_int_equal(ioc_digest_len(IOC_MD5), 16);
	assert_int_equal(ioc_digest_len(IOC_SHA1), 20);
	assert_int_equal(ioc_digest_len(IOC_SHA256), 32);
	assert_int_equal(ioc_digest_len(IOC_FILENAME), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_markers_file),
	    cmocka_unit_test(test_broken_file),
	    cmocka_unit_test(test_line_forms),
	    cmocka_unit_test(test_errors),
	    cmocka_unit_test(test_error_cap),
	    cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
