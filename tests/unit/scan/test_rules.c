/*
 * Tests of src/scan/rules.c: YARA errors and warnings refused with their
 * line numbers, includes refused, bundles from mixed sources with every
 * source's problems reported, the content version, loading rule files.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "scan.h"
#include "scan_test.h"

static void
test_check_clean(void **state)
{
	struct buf err;
	size_t len;
	char *text = test_slurp(test_data("markers.yar"), &len);

	(void)state;
	buf_init(&err, 0);
	assert_int_equal(scan_rules_check(text, len, &err), 0);
	assert_int_equal(err.len, 0);
	/* an empty rule set is fine too */
	assert_int_equal(scan_rules_check("", 0, &err), 0);
	buf_free(&err);
	free(text);
}

static void
test_check_error(void **state)
{
	struct buf err;
	size_t len;
	char *text = test_slurp(test_data("broken.yar"), &len);
	static const char undef[] = "rule a {\n condition:\n  b\n}\n";

	(void)state;
	buf_init(&err, 0);
	assert_int_equal(scan_rules_check(text, len, &err), -1);
	assert_non_null(strstr(buf_cstr(&err), "rules:7: error: syntax error"));
	buf_reset(&err);
	assert_int_equal(scan_rules_check(undef, sizeof(undef) - 1, &err), -1);
	assert_non_null(strstr(buf_cstr(&err), "rules:3: error: undefined "
	                                       "identifier \"b\""));
	buf_free(&err);
	free(text);
}

static void
test_check_warning(void **state)
{
	struct buf err;
	size_t len;
	char *text = test_slurp(test_data("slow.yar"), &len);
	static const char dep[] =
	    "rule ep {\n condition:\n  entrypoint == 0\n}\n";

	(void)state;
	buf_init(&err, 0);
	/* compiles, but a slow string is a warning, and warnings refuse */
	assert_int_equal(scan_rules_check(text, len, &err), -1);
	assert_non_null(strstr(buf_cstr(&err), "rules:12: warning: "));
	assert_non_null(strstr(buf_cstr(&err), "may slow down scanning"));
	assert_null(strstr(buf_cstr(&err), "error:"));
	buf_reset(&err);
	assert_int_equal(scan_rules_check(dep, sizeof(dep) - 1, &err), -1);
	assert_non_null(strstr(buf_cstr(&err), "rules:3: warning: "));
	buf_free(&err);
	free(text);
}

static void
test_check_include_and_nul(void **state)
{
	struct buf err;
	static const char inc[] = "include \"/etc/passwd\"\n"
	                          "rule a { condition: true }\n";
	static const char nul[] = "rule a { condition: true }\n\0rule b {}";

	(void)state;
	buf_init(&err, 0);
	assert_int_equal(scan_rules_check(inc, sizeof(inc) - 1, &err), -1);
	assert_non_null(strstr(buf_cstr(&err), "includes are disabled"));
	buf_reset(&err);
	assert_int_equal(scan_rules_check(nul, sizeof(nul) - 1, &err), -1);
	assert_non_null(strstr(buf_cstr(&err), "NUL byte"));
	buf_free(&err);
}

static void
test_ioc_check(void **state)
{
	struct buf err;
	static const char bad[] = "md5;abc;50;x\n";
	static const char good[] = "md5;00112233445566778899aabbccddeeff;50\n";

	(void)state;
	buf_init(&err, 0);
	assert_int_equal(scan_ioc_check(good, sizeof(good) - 1, &err), 0);
	assert_int_equal(scan_ioc_check(bad, sizeof(bad) - 1, &err), -1);
	assert_non_null(strstr(buf_cstr(&err), "iocs:1: md5: expected 32"));
	buf_free(&err);
}

static void
test_bundle_info_version(void **state)
{
	struct scan_bundle *b1, *b2, *b3;
	struct scan_bundle_info info;
	struct scan_src src[2];
	struct buf err;
	size_t ylen, ilen;
	char *yar = test_slurp(test_data("markers.yar"), &ylen);
	char *ioc = test_slurp(test_data("markers.ioc"), &ilen);
	char v1[65];

	(void)state;
	buf_init(&err, 0);
	src[0] = (struct scan_src){SCAN_SRC_YARA, "markers.yar",
	                           (const uint8_t *)yar, ylen};
	src[1] = (struct scan_src){SCAN_SRC_IOC, "markers.ioc",
	                           (const uint8_t *)ioc, ilen};
	assert_int_equal(scan_bundle_new(src, 2, &b1, &err), 0);
	scan_bundle_info(b1, &info);
	assert_int_equal(info.yara_rules, 5);
	assert_int_equal(info.hash_iocs[IOC_MD5], 1);
	assert_int_equal(info.hash_iocs[IOC_SHA1], 1);
	assert_int_equal(info.hash_iocs[IOC_SHA256], 2);
	assert_int_equal(info.filename_iocs, 3);
	assert_int_equal(strlen(info.version), 64);
	assert_string_equal(info.version, scan_bundle_version(b1));
	memcpy(v1, info.version, sizeof(v1));

	/* same sources, same version; the names do not count */
	src[0].name = "renamed.yar";
	assert_int_equal(scan_bundle_new(src, 2, &b2, &err), 0);
	assert_string_equal(scan_bundle_version(b2), v1);
	scan_bundle_free(b2);

	/* one byte less, another version */
	src[1].len--;
	assert_int_equal(scan_bundle_new(src, 2, &b3, &err), 0);
	assert_string_not_equal(scan_bundle_version(b3), v1);
	scan_bundle_free(b3);
	src[1].len++;

	/* references: the bundle outlives the first free */
	assert_ptr_equal(scan_bundle_ref(b1), b1);
	scan_bundle_free(b1);
	assert_string_equal(scan_bundle_version(b1), v1);
	scan_bundle_free(b1);

	/* an empty bundle is valid */
	assert_int_equal(scan_bundle_new(NULL, 0, &b2, &err), 0);
	scan_bundle_info(b2, &info);
	assert_int_equal(info.yara_rules, 0);
	assert_int_equal(info.filename_iocs, 0);
	scan_bundle_free(b2);
	assert_int_equal(err.len, 0);
	buf_free(&err);
	free(yar);
	free(ioc);
}

static void
test_bundle_all_errors(void **state)
{
	struct scan_bundle *b = (struct scan_bundle *)0x1;
	struct scan_src src[3];
	struct buf err;
	size_t l1, l2, l3;
	char *ioc = test_slurp(test_data("broken.ioc"), &l1);
	char *slow = test_slurp(test_data("slow.yar"), &l2);
	char *good = test_slurp(test_data("markers.yar"), &l3);
	const char *e;

	(void)state;
	buf_init(&err, 0);
	src[0] = (struct scan_src){SCAN_SRC_YARA, "markers.yar",
	                           (const uint8_t *)good, l3};
	src[1] = (struct scan_src){SCAN_SRC_IOC, "broken.ioc",
	                           (const uint8_t *)ioc, l1};
	src[2] = (struct scan_src){SCAN_SRC_YARA, "slow.yar",
	                           (const uint8_t *)slow, l2};
	assert_int_equal(scan_bundle_new(src, 3, &b, &err), -1);
	assert_ptr_equal(b, (struct scan_bundle *)0x1); /* untouched */
	e = buf_cstr(&err);
	assert_non_null(strstr(e, "broken.ioc:2: "));
	assert_non_null(strstr(e, "slow.yar:12: warning: "));
	assert_null(strstr(e, "markers.yar:"));

	/* rule names are one namespace across files */
	buf_reset(&err);
	src[1] = src[0];
	src[1].name = "again.yar";
	assert_int_equal(scan_bundle_new(src, 2, &b, &err), -1);
	assert_non_null(strstr(buf_cstr(&err), "again.yar:"));
	assert_non_null(strstr(buf_cstr(&err), "duplicated identifier"));
	buf_free(&err);
	free(ioc);
	free(slow);
	free(good);
}

static void
test_bundle_load(void **state)
{
	struct scan_bundle *b = NULL;
	struct buf err;
	char p1[PATH_MAX], p2[PATH_MAX];
	const char *paths[2] = {p1, p2};
	char *dir = test_tmpdir();

	(void)state;
	buf_init(&err, 0);
	snprintf(p1, sizeof(p1), "%s", test_data("markers.yar"));
	snprintf(p2, sizeof(p2), "%s", test_data("markers.ioc"));
	assert_int_equal(scan_bundle_load(paths, 2, &b, &err), 0);
	scan_bundle_free(b);

	snprintf(p2, sizeof(p2), "%s/rules.exe", dir);
	test_write(dir, "rules.exe", "x", 1);
	assert_int_equal(scan_bundle_load(paths, 2, &b, &err), -1);
	assert_non_null(strstr(buf_cstr(&err), "unknown rule file type"));
	buf_reset(&err);
	snprintf(p2, sizeof(p2), "%s/missing.yar", dir);
	assert_int_equal(scan_bundle_load(paths, 2, &b, &err), -1);
	assert_non_null(strstr(buf_cstr(&err), "missing.yar"));
	buf_free(&err);
	test_rmtree(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_check_clean),
	    cmocka_unit_test(test_check_error),
	    cmocka_unit_test(test_check_warning),
	    cmocka_unit_test(test_check_include_and_nul),
	    cmocka_unit_test(test_ioc_check),
	    cmocka_unit_test(test_bundle_info_version),
	    cmocka_unit_test(test_bundle_all_errors),
	    cmocka_unit_test(test_bundle_load),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
