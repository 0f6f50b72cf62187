/*
 * Tests of src/scan/scan.c and result.c: YARA findings with meta, tags and
 * matched strings; hash IOCs of each type; filename IOCs; the externals;
 * scores, levels and their thresholds; digests computed only when needed;
 * size limits; special files that must not be read or must not hang; a
 * file truncated and regrown while it is scanned; contexts in several
 * threads on one bundle; the JSON rendering.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "buf.h"
#include "scan.h"
#include "scan_test.h"

#define MARKER "VIGIL-TEST-MARKER-7d1f3a"
#define HEXMRK "VIGIL-HEX-MARK"

static struct scan_bundle *markers;
static char *tmp;

static int
setup(void **state)
{
	(void)state;
	markers = test_markers();
	tmp = test_tmpdir();
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	scan_bundle_free(markers);
	test_rmtree(tmp);
	return 0;
}

static struct scan_ctx *
ctx(const struct scan_opts *o)
{
	struct scan_ctx *c = NULL;

	assert_int_equal(scan_ctx_new(markers, o, &c), 0);
	return c;
}

static void
digest_hex(const char *alg, const void *p, size_t n, char *out)
{
	uint8_t d[EVP_MAX_MD_SIZE];
	unsigned int dl;

	assert_int_equal(
	    EVP_Digest(p, n, d, &dl, EVP_get_digestbyname(alg), NULL), 1);
	hex_encode(d, dl, out);
}

static const char *
meta_of(const struct scan_finding *f, const char *key)
{
	size_t i;

	for (i = 0; i < f->nmeta; i++)
		if (strcmp(f->meta[i].key, key) == 0)
			return f->meta[i].value;
	return NULL;
}

static void
test_yara_match(void **state)
{
	struct scan_ctx *c = ctx(NULL);
	struct scan_result r;
	const struct scan_finding *f;
	char data[300], hex[65];
	const char *path;

	(void)state;
	memset(data, 'x', sizeof(data));
	memcpy(data + 100, MARKER, strlen(MARKER));
	memcpy(data + 200, HEXMRK, strlen(HEXMRK));
	path = test_write(tmp, "sample.txt", data, sizeof(data));
	assert_int_equal(scan_file(c, path, &r), 0);
	assert_string_equal(r.path, path);
	assert_int_equal(r.exists, 1);
	assert_string_equal(r.extension, ".txt");
	assert_int_equal(r.size, sizeof(data));
	assert_int_equal(r.scanned, sizeof(data));
	assert_true(r.mtime.tv_sec > 0);
	assert_int_equal(r.flags, 0);
	assert_string_equal(r.version, scan_bundle_version(markers));

	assert_int_equal(r.nfindings, 1);
	f = &r.findings[0];
	assert_int_equal(f->kind, SCAN_KIND_YARA);
	assert_string_equal(f->rule, "Vigil_Test_Marker");
	assert_int_equal(f->score, 85);
	assert_int_equal(f->ntags, 2);
	assert_string_equal(f->tags[0], "test");
	assert_string_equal(f->tags[1], "marker");
	assert_string_equal(f->description, "Vigil test marker (harmless)");
	assert_string_equal(f->author, "Vigil tests");
	assert_string_equal(f->reference,
	                    "https://example.invalid/vigil/test-marker");
	assert_null(f->source);
	assert_string_equal(meta_of(f, "date"), "2024-01-01");
	assert_string_equal(meta_of(f, "internal"), "true");
	assert_string_equal(meta_of(f, "revision"), "3");
	assert_string_equal(meta_of(f, "score"), "85");

	assert_int_equal(f->nmatched, 2);
	assert_int_equal(f->more_matches, 0);
	assert_string_equal(f->matched[0].field, "content");
	assert_string_equal(f->matched[0].identifier, "$s1");
	assert_int_equal(f->matched[0].offset, 100);
	assert_int_equal(f->matched[0].match_len, strlen(MARKER));
	assert_int_equal(f->matched[0].len, strlen(MARKER));
	assert_memory_equal(f->matched[0].data, MARKER, strlen(MARKER));
	assert_string_equal(f->matched[1].identifier, "$s2");
	assert_int_equal(f->matched[1].offset, 200);
	assert_memory_equal(f->matched[1].data, HEXMRK, strlen(HEXMRK));

	assert_int_equal(r.score, 85);
	assert_int_equal(r.level, SCAN_LEVEL_ALERT);
	/* a file with a finding is named by all three digests */
	assert_int_equal(r.hashes, SCAN_HASH_ALL);
	digest_hex("MD5", data, sizeof(data), hex);
	assert_string_equal(r.md5, hex);
	digest_hex("SHA1", data, sizeof(data), hex);
	assert_string_equal(r.sha1, hex);
	digest_hex("SHA256", data, sizeof(data), hex);
	assert_string_equal(r.sha256, hex);
	scan_result_free(&r);
	assert_null(r.path);
	assert_int_equal(r.nfindings, 0);
	scan_ctx_free(c);
}

static void
scan_text(struct scan_ctx *c, const char *name, const char *text,
          struct scan_result *r)
{
	const char *path = test_write(tmp, name, text, strlen(text));

	assert_int_equal(scan_file(c, path, r), 0);
}

static void
test_levels_from_rules(void **state)
{
	struct scan_ctx *c = ctx(NULL);
	struct scan_result r;

	(void)state;
	scan_text(c, "weak.txt", "some VIGIL-Weak-Indicator here", &r);
	assert_int_equal(r.nfindings, 1);
	assert_string_equal(r.findings[0].rule, "Vigil_Test_Weak");
	assert_int_equal(r.score, 45);
	assert_int_equal(r.level, SCAN_LEVEL_NOTICE);
	scan_result_free(&r);

	/* no meta score: the default YARA score, 75 */
	scan_text(c, "noscore.txt", "VIGIL-NOSCORE-MARK", &r);
	assert_int_equal(r.nfindings, 1);
	assert_int_equal(r.findings[0].score, 75);
	assert_int_equal(r.level, SCAN_LEVEL_WARNING);
	scan_result_free(&r);

	/* two findings: combined 1 - 0.15 * 0.55 = 0.9175, highest first */
	scan_text(c, "both.txt", "vigil-weak-indicator " MARKER, &r);
	assert_int_equal(r.nfindings, 2);
	assert_string_equal(r.findings[0].rule, "Vigil_Test_Marker");
	assert_string_equal(r.findings[1].rule, "Vigil_Test_Weak");
	assert_int_equal(r.score, 92);
	assert_int_equal(r.level, SCAN_LEVEL_ALERT);
	scan_result_free(&r);

	/* nothing: no finding, no level; the markers bundle has hash IOCs
	 * of all three types, so all three digests were needed anyway */
	scan_text(c, "clean.txt", "nothing to see", &r);
	assert_int_equal(r.nfindings, 0);
	assert_int_equal(r.score, 0);
	assert_int_equal(r.level, SCAN_LEVEL_NONE);
	assert_int_equal(r.hashes, SCAN_HASH_ALL);
	scan_result_free(&r);
	scan_ctx_free(c);
}

static void
test_hash_iocs(void **state)
{
	static const struct {
		const char *text, *field, *hex;
		int score;
	} cases[] = {
	    {"VIGIL-HASH-SAMPLE-MD5\n", "md5",
	     "6adf67fca72b2d7aa6df327f27836182", 70},
	    {"VIGIL-HASH-SAMPLE-SHA1\n", "sha1",
	     "4d0c602b65ce86e6269270b566a47b4a7ff09d2a", 65},
	    {"VIGIL-HASH-SAMPLE-SHA256\n", "sha256",
	     "59b861d8b719ddabca32337875a22ca71ce90fd9b3373aecc0c32615932e87d0",
	     90},
	    {"VIGIL-HASH-SAMPLE-THOR\n", "sha256",
	     "eb1c5ea8dd88f44760decb3034b00bb6dcc5341cefb80ddb2143653b582dce52",
	     75},
	};
	struct scan_ctx *c = ctx(NULL);
	struct scan_result r;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct scan_finding *f;

		scan_text(c, "hashed.dat", cases[i].text, &r);
		assert_int_equal(r.nfindings, 1);
		f = &r.findings[0];
		assert_int_equal(f->kind, SCAN_KIND_HASH);
		assert_int_equal(f->score, cases[i].score);
		assert_string_equal(f->rule, cases[i].hex);
		assert_non_null(strstr(f->source, "markers.ioc:"));
		assert_non_null(f->description);
		assert_int_equal(f->nmatched, 1);
		assert_string_equal(f->matched[0].field, cases[i].field);
		assert_memory_equal(f->matched[0].data, cases[i].hex,
		                    strlen(cases[i].hex));
		assert_int_equal(r.score, cases[i].score);
		assert_int_equal(r.hashes, SCAN_HASH_ALL);
		scan_result_free(&r);
	}
	/* the same texts in memory match the same way */
	assert_int_equal(scan_mem(c, (const uint8_t *)cases[0].text,
	                          strlen(cases[0].text), "upload", &r),
	                 0);
	assert_int_equal(r.nfindings, 1);
	assert_int_equal(r.exists, 0);
	assert_string_equal(r.path, "upload");
	assert_string_equal(r.md5, cases[0].hex);
	scan_result_free(&r);
	scan_ctx_free(c);
}

/* Many IOCs (so probe chains form) and one hash listed twice. */
static void
test_hash_table(void **state)
{
	static const char text[] = "VIGIL-HASH-SAMPLE-MD5\n";
	static const char again[] =
	    "md5;6ADF67FCA72B2D7AA6DF327F27836182;40;again\n";
	struct scan_bundle *b;
	struct scan_ctx *c;
	struct scan_result r;
	struct scan_src src[2];
	struct buf iocs, err;
	unsigned i, seed = 12345;

	(void)state;
	buf_init(&iocs, 0);
	buf_init(&err, 0);
	for (i = 0; i < 20000; i++) {
		unsigned k;

		assert_int_equal(buf_puts(&iocs, "md5;"), 0);
		for (k = 0; k < 32; k++) {
			seed = seed * 1103515245u + 12345u;
			assert_int_equal(
			    buf_putc(&iocs,
			             "0123456789abcdef"[(seed >> 16) & 15]),
			    0);
		}
		assert_int_equal(buf_puts(&iocs, ";10;noise\n"), 0);
		if (i == 7777)
			assert_int_equal(
			    buf_puts(&iocs,
			             "md5;6adf67fca72b2d7aa6df327f27836182;"
			             "70;first\n"),
			    0);
	}
	src[0] =
	    (struct scan_src){SCAN_SRC_IOC, "noise.ioc", iocs.data, iocs.len};
	src[1] = (struct scan_src){SCAN_SRC_IOC, "again.ioc",
	                           (const uint8_t *)again, sizeof(again) - 1};
	assert_int_equal(scan_bundle_new(src, 2, &b, &err), 0);
	assert_int_equal(scan_ctx_new(b, NULL, &c), 0);
	assert_int_equal(
	    scan_mem(c, (const uint8_t *)text, sizeof(text) - 1, "x", &r), 0);
	assert_int_equal(r.nfindings, 2);
	assert_int_equal(r.findings[0].score, 70);
	assert_string_equal(r.findings[0].source, "noise.ioc:7779");
	assert_int_equal(r.findings[1].score, 40);
	assert_string_equal(r.findings[1].source, "again.ioc:1");
	assert_int_equal(r.score, 82); /* 1 - 0.3 * 0.6 */
	scan_result_free(&r);
	/* and a miss stays a miss */
	assert_int_equal(scan_mem(c, (const uint8_t *)"other", 5, "x", &r), 0);
	assert_int_equal(r.nfindings, 0);
	scan_result_free(&r);
	scan_ctx_free(c);
	scan_bundle_free(b);
	buf_free(&iocs);
	buf_free(&err);
}

static void
test_filename_iocs(void **state)
{
	struct scan_ctx *c = ctx(NULL);
	struct scan_result r;
	const struct scan_finding *f;

	(void)state;
	scan_text(c, "evil-tool.exe", "harmless content", &r);
	assert_int_equal(r.nfindings, 1);
	f = &r.findings[0];
	assert_int_equal(f->kind, SCAN_KIND_FILENAME);
	assert_int_equal(f->score, 60);
	assert_string_equal(f->rule, "/evil[-_]tool\\.(exe|bin)$");
	assert_string_equal(f->description, "Evil tool name");
	assert_string_equal(f->matched[0].field, "path");
	assert_int_equal(f->matched[0].offset, strlen(tmp));
	assert_int_equal(f->matched[0].len, strlen("/evil-tool.exe"));
	assert_memory_equal(f->matched[0].data, "/evil-tool.exe", 14);
	assert_int_equal(r.level, SCAN_LEVEL_WARNING);
	scan_result_free(&r);

	/* only the name: for files that cannot or will not be read */
	assert_int_equal(scan_path(c, "/no/such/dir/EVIL_TOOL.BIN", NULL, &r),
	                 0);
	assert_int_equal(r.nfindings, 1);
	assert_int_equal(r.flags & SCAN_RES_NOT_READ, SCAN_RES_NOT_READ);
	assert_int_equal(r.exists, 0);
	assert_int_equal(r.hashes, 0);
	scan_result_free(&r);
	assert_int_equal(scan_path(c, "/tmp/fine.exe", NULL, &r), 0);
	assert_int_equal(r.nfindings, 0);
	scan_result_free(&r);
	scan_ctx_free(c);
}

static void
test_externals_and_magic(void **state)
{
	struct scan_ctx *c = ctx(NULL);
	struct scan_result r;
	char data[64], hex[2 * SCAN_FIRST_BYTES + 1],
	    ascii[SCAN_FIRST_BYTES + 1];
	const char *path;

	(void)state;
	scan_text(c, "external-check.bin", "no marker at all", &r);
	assert_int_equal(r.nfindings, 1);
	assert_string_equal(r.findings[0].rule, "Vigil_Test_External");
	assert_int_equal(r.findings[0].score, 50); /* score = "50" */
	scan_result_free(&r);

	memset(data, 0, sizeof(data));
	memcpy(data,
	       "\x7f"
	       "ELF\x02\x01\x01",
	       7);
	memcpy(data + 32, "vigil-elf-marker", 16);
	path = test_write(tmp, "prog", data, sizeof(data));
	assert_int_equal(scan_file(c, path, &r), 0);
	assert_string_equal(r.magic, "ELF");
	assert_string_equal(r.extension, "");
	assert_true(test_has_finding(&r, "Vigil_Test_Magic"));
	assert_int_equal(r.nfirst, SCAN_FIRST_BYTES);
	scan_first_bytes_hex(&r, hex);
	scan_first_bytes_ascii(&r, ascii);
	assert_string_equal(hex, "7f454c46020101000000000000000000"
	                         "00000000");
	assert_string_equal(ascii, ".ELF................");
	scan_result_free(&r);

	/* the same marker without the ELF header: no match */
	memset(data, 'A', 4);
	path = test_write(tmp, "prog", data, sizeof(data));
	assert_int_equal(scan_file(c, path, &r), 0);
	assert_string_equal(r.magic, "");
	assert_false(test_has_finding(&r, "Vigil_Test_Magic"));
	scan_result_free(&r);
	scan_ctx_free(c);
}

static void
test_score_level(void **state)
{
	struct scan_opts o;
	struct scan_ctx *c;
	static const int s1[] = {80}, s2[] = {60, 60}, s3[] = {100, 10},
	                 s4[] = {-5, 0}, s5[] = {30, 30, 30};

	(void)state;
	scan_opts_default(&o);
	assert_int_equal(o.alert, 80);
	assert_int_equal(o.warning, 60);
	assert_int_equal(o.notice, 40);
	assert_int_equal(scan_level_of(0, &o), SCAN_LEVEL_NONE);
	assert_int_equal(scan_level_of(39, &o), SCAN_LEVEL_INFO);
	assert_int_equal(scan_level_of(40, &o), SCAN_LEVEL_NOTICE);
	assert_int_equal(scan_level_of(59, &o), SCAN_LEVEL_NOTICE);
	assert_int_equal(scan_level_of(60, &o), SCAN_LEVEL_WARNING);
	assert_int_equal(scan_level_of(79, &o), SCAN_LEVEL_WARNING);
	assert_int_equal(scan_level_of(80, &o), SCAN_LEVEL_ALERT);
	assert_int_equal(scan_level_of(100, &o), SCAN_LEVEL_ALERT);
	o.alert = 95;
	o.warning = 90;
	o.notice = 10;
	assert_int_equal(scan_level_of(85, &o), SCAN_LEVEL_NOTICE);
	assert_int_equal(scan_level_of(90, &o), SCAN_LEVEL_WARNING);
	assert_int_equal(scan_level_of(9, &o), SCAN_LEVEL_INFO);
	assert_string_equal(scan_level_name(SCAN_LEVEL_ALERT), "alert");
	assert_string_equal(scan_level_name(SCAN_LEVEL_NOTICE), "notice");
	assert_string_equal(scan_kind_name(SCAN_KIND_YARA), "YARA Rule");
	assert_string_equal(scan_kind_name(SCAN_KIND_HASH), "Hash IOC");
	assert_string_equal(scan_kind_name(SCAN_KIND_FILENAME), "Filename IOC");

	assert_int_equal(scan_score_combine(NULL, 0), 0);
	assert_int_equal(scan_score_combine(s1, 1), 80);
	assert_int_equal(scan_score_combine(s2, 2), 84);
	assert_int_equal(scan_score_combine(s3, 2), 100);
	assert_int_equal(scan_score_combine(s4, 2), 0);
	assert_int_equal(scan_score_combine(s5, 3), 66);

	/* a rule scored 85 is only a warning under these thresholds */
	c = ctx(&o);
	{
		struct scan_result r;

		scan_text(c, "m.txt", MARKER, &r);
		assert_int_equal(r.score, 85);
		assert_int_equal(r.level, SCAN_LEVEL_NOTICE);
		scan_result_free(&r);
	}
	scan_ctx_free(c);

	/* thresholds out of order are refused */
	o.notice = 92; /* above warning (90) */
	assert_int_equal(scan_ctx_new(markers, &o, &c), -EINVAL);
	scan_opts_default(&o);
	o.alert = 101;
	assert_int_equal(scan_ctx_new(markers, &o, &c), -EINVAL);
	scan_opts_default(&o);
	o.notice = 0;
	assert_int_equal(scan_ctx_new(markers, &o, &c), -EINVAL);
	scan_opts_default(&o);
	o.max_size = 0;
	assert_int_equal(scan_ctx_new(markers, &o, &c), -EINVAL);
}

static void
test_lazy_digests(void **state)
{
	struct scan_bundle *yonly;
	struct scan_src src;
	struct scan_opts o;
	struct scan_ctx *c;
	struct scan_result r;
	struct buf err;
	size_t len;
	char *yar = test_slurp(test_data("markers.yar"), &len);
	char hex[65];

	(void)state;
	buf_init(&err, 0);
	src = (struct scan_src){SCAN_SRC_YARA, "m.yar", (const uint8_t *)yar,
	                        len};
	assert_int_equal(scan_bundle_new(&src, 1, &yonly, &err), 0);
	assert_int_equal(scan_ctx_new(yonly, NULL, &c), 0);
	/* clean file, no hash IOCs, nothing asked for: no digests */
	scan_text(c, "clean.txt", "nothing", &r);
	assert_int_equal(r.hashes, 0);
	assert_string_equal(r.sha256, "");
	scan_result_free(&r);
	/* a finding: all three */
	scan_text(c, "m.txt", MARKER, &r);
	assert_int_equal(r.hashes, SCAN_HASH_ALL);
	scan_result_free(&r);
	scan_ctx_free(c);

	scan_opts_default(&o);
	o.hashes = SCAN_HASH_SHA256;
	assert_int_equal(scan_ctx_new(yonly, &o, &c), 0);
	scan_text(c, "clean.txt", "nothing", &r);
	assert_int_equal(r.hashes, SCAN_HASH_SHA256);
	digest_hex("SHA256", "nothing", 7, hex);
	assert_string_equal(r.sha256, hex);
	scan_result_free(&r);
	scan_ctx_free(c);
	scan_bundle_free(yonly);
	buf_free(&err);
	free(yar);
}

static void
test_limits(void **state)
{
	struct scan_opts o;
	struct scan_ctx *c;
	struct scan_result r;
	char big[2000], many[20 * 30];
	const char *path;
	size_t i;

	(void)state;
	scan_opts_default(&o);
	o.max_size = 1024;
	o.max_strings = 5;
	o.max_data = 10;
	c = ctx(&o);

	memset(big, '.', sizeof(big));
	memcpy(big + 100, MARKER, strlen(MARKER));
	/* over max_size: not read at all, but the name is still checked */
	path = test_write(tmp, "evil_tool.bin", big, sizeof(big));
	assert_int_equal(scan_file(c, path, &r), 0);
	assert_int_equal(r.flags & SCAN_RES_NOT_READ, SCAN_RES_NOT_READ);
	assert_int_equal(r.scanned, 0);
	assert_int_equal(r.size, sizeof(big));
	assert_int_equal(r.nfindings, 1);
	assert_int_equal(r.findings[0].kind, SCAN_KIND_FILENAME);
	assert_int_equal(r.hashes, 0);
	scan_result_free(&r);

	/* grew past max_size after the stat: cut at max_size */
	{
		struct stat st;
		int fd;

		assert_true((fd = open(path, O_RDONLY)) >= 0);
		assert_int_equal(fstat(fd, &st), 0);
		st.st_size = 100;
		assert_int_equal(scan_fd(c, fd, path, &st, &r), 0);
		assert_int_equal(r.flags,
		                 SCAN_RES_TRUNCATED | SCAN_RES_CHANGED);
		assert_int_equal(r.scanned, 1024);
		assert_true(test_has_finding(&r, "Vigil_Test_Marker"));
		scan_result_free(&r);
		close(fd);
	}

	/* buffers are cut at max_size */
	assert_int_equal(scan_mem(c, (uint8_t *)big, sizeof(big), "b", &r), 0);
	assert_int_equal(r.flags & SCAN_RES_TRUNCATED, SCAN_RES_TRUNCATED);
	assert_int_equal(r.scanned, 1024);
	assert_int_equal(r.size, sizeof(big));
	assert_true(test_has_finding(&r, "Vigil_Test_Marker"));
	scan_result_free(&r);
	memcpy(big + 100, "................", 16);
	memcpy(big + 1500, MARKER, strlen(MARKER));
	assert_int_equal(scan_mem(c, (uint8_t *)big, sizeof(big), "b", &r), 0);
	assert_false(test_has_finding(&r, "Vigil_Test_Marker"));
	scan_result_free(&r);

	/* matched strings and their data are capped */
	for (i = 0; i < 20; i++) {
		memset(many + 30 * i, ' ', 30);
		memcpy(many + 30 * i, MARKER, strlen(MARKER));
	}
	assert_int_equal(scan_mem(c, (uint8_t *)many, sizeof(many), "many", &r),
	                 0);
	assert_int_equal(r.nfindings, 1);
	assert_int_equal(r.findings[0].nmatched, 5);
	assert_int_equal(r.findings[0].more_matches, 1);
	assert_int_equal(r.findings[0].matched[4].offset, 120);
	assert_int_equal(r.findings[0].matched[0].len, 10);
	assert_int_equal(r.findings[0].matched[0].match_len, strlen(MARKER));
	assert_memory_equal(r.findings[0].matched[0].data, MARKER, 10);
	scan_result_free(&r);
	scan_ctx_free(c);
}

static void
test_special_files(void **state)
{
	struct scan_ctx *c = ctx(NULL);
	struct scan_result r;
	char fifo[PATH_MAX], link[PATH_MAX], target[PATH_MAX];
	int fd;

	(void)state;
	/* a FIFO without a writer must neither block nor be read */
	alarm(20);
	snprintf(fifo, sizeof(fifo), "%s/fifo", tmp);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	assert_int_equal(scan_file(c, fifo, &r), -EINVAL);
	assert_string_equal(r.path, fifo);
	scan_result_free(&r);

	/* symlinks are not followed */
	snprintf(target, sizeof(target), "%s",
	         test_write(tmp, "target.txt", MARKER, strlen(MARKER)));
	snprintf(link, sizeof(link), "%s/link.txt", tmp);
	assert_int_equal(symlink(target, link), 0);
	assert_int_equal(scan_file(c, link, &r), -ELOOP);
	scan_result_free(&r);

	assert_int_equal(scan_file(c, tmp, &r), -EINVAL); /* a directory */
	scan_result_free(&r);
	assert_int_equal(scan_file(c, "/no/such/file", &r), -ENOENT);
	assert_string_equal(r.path, "/no/such/file");
	scan_result_free(&r);

	/* scan_fd reads with pread: the caller's offset stays */
	assert_true((fd = open(target, O_RDONLY)) >= 0);
	assert_int_equal(lseek(fd, 5, SEEK_SET), 5);
	assert_int_equal(scan_fd(c, fd, target, NULL, &r), 0);
	assert_true(test_has_finding(&r, "Vigil_Test_Marker"));
	assert_int_equal(lseek(fd, 0, SEEK_CUR), 5);
	scan_result_free(&r);
	close(fd);
	alarm(0);
	scan_ctx_free(c);
}

struct churn {
	const char *path;
	const char *data;
	size_t len;
	atomic_int stop;
};

/*
 * Truncates the file and writes it back in 64 KiB pieces, again and again,
 * so a reader sees it shrink and grow under its feet.
 */
static void *
churn_main(void *arg)
{
	struct churn *ch = arg;
	int fd = open(ch->path, O_WRONLY);
	size_t n = 0, off;

	if (fd == -1)
		return NULL;
	while (!atomic_load(&ch->stop)) {
		if (ftruncate(fd, (off_t)(n++ % 2 ? ch->len / 3 : 0)) == -1)
			break;
		for (off = 0; off < ch->len; off += 65536)
			if (pwrite(fd, ch->data + off, 65536, (off_t)off) !=
			    65536)
				goto out;
	}
out:
	close(fd);
	return NULL;
}

static void
test_truncated_while_scanning(void **state)
{
	struct scan_ctx *c = ctx(NULL);
	struct scan_result r;
	struct churn ch;
	pthread_t th;
	size_t len = 4u << 20, i, changed = 0, found = 0;
	struct stat st;
	int fd;
	char *data = malloc(len);

	(void)state;
	assert_non_null(data);
	memset(data, 'z', len);
	memcpy(data + len - 100, MARKER, strlen(MARKER));
	ch.path = test_write(tmp, "churn.bin", data, len);
	ch.path = strdup(ch.path);
	ch.data = data;
	ch.len = len;
	atomic_init(&ch.stop, 0);
	assert_int_equal(pthread_create(&th, NULL, churn_main, &ch), 0);
	for (i = 0; i < 60; i++) {
		assert_int_equal(scan_file(c, ch.path, &r), 0);
		assert_true(r.scanned <= len);
		if (r.flags & SCAN_RES_CHANGED)
			changed++;
		else
			assert_int_equal(r.scanned, r.size);
		if (test_has_finding(&r, "Vigil_Test_Marker"))
			found++;
		scan_result_free(&r);
	}
	atomic_store(&ch.stop, 1);
	pthread_join(th, NULL);
	/* Whatever was seen, nothing crashed; and once the file is quiet,
	 * it scans whole again. */
	assert_int_equal(scan_file(c, ch.path, &r), 0);
	assert_int_equal(r.flags & SCAN_RES_CHANGED, 0);
	assert_int_equal(r.scanned, len);
	assert_true(test_has_finding(&r, "Vigil_Test_Marker"));
	scan_result_free(&r);

	/* The same cases without the race: a stat that no longer matches
	 * the file. Shrunk since the stat: */
	assert_true((fd = open(ch.path, O_RDONLY)) >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	st.st_size = (off_t)len * 2;
	assert_int_equal(scan_fd(c, fd, ch.path, &st, &r), 0);
	assert_int_equal(r.flags, SCAN_RES_CHANGED);
	assert_int_equal(r.scanned, len);
	assert_true(test_has_finding(&r, "Vigil_Test_Marker"));
	scan_result_free(&r);
	/* grown since the stat: read to the end all the same */
	st.st_size = 10;
	assert_int_equal(scan_fd(c, fd, ch.path, &st, &r), 0);
	assert_int_equal(r.flags, SCAN_RES_CHANGED);
	assert_int_equal(r.scanned, len);
	assert_true(test_has_finding(&r, "Vigil_Test_Marker"));
	scan_result_free(&r);
	close(fd);
	print_message("churn: %zu of 60 scans saw the file change, %zu found "
	              "the marker\n",
	              changed, found);
	free((char *)ch.path);
	free(data);
	scan_ctx_free(c);
}

struct worker {
	const char *path;
	int found;
};

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct scan_ctx *c = NULL;
	struct scan_result r;
	int i;

	if (scan_ctx_new(markers, NULL, &c) != 0)
		return NULL;
	for (i = 0; i < 50; i++) {
		if (scan_file(c, w->path, &r) == 0 &&
		    test_has_finding(&r, "Vigil_Test_Marker"))
			w->found++;
		scan_result_free(&r);
	}
	scan_ctx_free(c);
	return NULL;
}

static void
test_threads(void **state)
{
	struct worker w[4];
	pthread_t th[4];
	char path[PATH_MAX];
	int i;

	(void)state;
	snprintf(path, sizeof(path), "%s",
	         test_write(tmp, "shared.txt", "xx " MARKER " xx", 30));
	for (i = 0; i < 4; i++) {
		w[i].path = path;
		w[i].found = 0;
		assert_int_equal(
		    pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(w[i].found, 50);
	}
}

static void
test_json(void **state)
{
	struct scan_ctx *c = ctx(NULL);
	struct scan_result r;
	json_t *j, *reason, *m;
	char data[64];
	const char *path;

	(void)state;
	memset(data, 0, sizeof(data));
	memcpy(data + 8, MARKER, strlen(MARKER));
	path = test_write(tmp, "j\\son\xff.bin", data, sizeof(data));
	assert_int_equal(scan_file(c, path, &r), 0);
	assert_non_null(j = scan_result_to_json(&r));
	assert_string_equal(json_string_value(json_object_get(j, "type")),
	                    "file");
	assert_int_equal(json_integer_value(json_object_get(j, "score")), 85);
	assert_string_equal(json_string_value(json_object_get(j, "level")),
	                    "alert");
	assert_string_equal(
	    json_string_value(json_object_get(j, "ruleset_version")),
	    scan_bundle_version(markers));
	m = json_object_get(j, "subject");
	/* not UTF-8: escaped, as is the backslash */
	assert_non_null(strstr(json_string_value(json_object_get(m, "path")),
	                       "/j\\\\son\\xff.bin"));
	assert_true(json_is_true(json_object_get(m, "exists")));
	assert_string_equal(json_string_value(json_object_get(m, "extension")),
	                    ".bin");
	assert_int_equal(json_integer_value(json_object_get(m, "size")), 64);
	assert_string_equal(json_string_value(json_object_get(
	                        json_object_get(m, "hashes"), "sha256")),
	                    r.sha256);
	assert_string_equal(json_string_value(json_object_get(
	                        json_object_get(m, "first_bytes"), "ascii")),
	                    "........VIGIL-TEST-M");
	assert_non_null(json_object_get(m, "modified"));

	reason = json_array_get(json_object_get(j, "reasons"), 0);
	assert_non_null(reason);
	m = json_object_get(reason, "signature");
	assert_string_equal(json_string_value(json_object_get(m, "kind")),
	                    "YARA Rule");
	assert_string_equal(json_string_value(json_object_get(m, "rule_name")),
	                    "Vigil_Test_Marker");
	assert_int_equal(json_integer_value(json_object_get(m, "score")), 85);
	assert_int_equal(json_array_size(json_object_get(m, "tags")), 2);
	assert_string_equal(json_string_value(json_object_get(
	                        json_object_get(m, "meta"), "date")),
	                    "2024-01-01");
	assert_non_null(
	    strstr(json_string_value(json_object_get(reason, "summary")),
	           "YARA Rule Vigil_Test_Marker: Vigil test marker"));
	m = json_array_get(json_object_get(reason, "matched"), 0);
	assert_string_equal(json_string_value(json_object_get(m, "data")),
	                    MARKER);
	assert_int_equal(json_integer_value(json_object_get(m, "offset")), 8);
	assert_string_equal(json_string_value(json_object_get(m, "field")),
	                    "content");
	assert_string_equal(json_string_value(json_object_get(m, "identifier")),
	                    "$s1");
	json_decref(j);
	scan_result_free(&r);

	/* binary matched data is escaped, never raw */
	{
		struct scan_opts o;
		struct scan_ctx *c2;
		struct scan_bundle *b;
		struct scan_src src;
		struct buf err;
		static const char rule[] =
		    "rule bin { strings: $b = { 00 01 5c 41 ff 42 43 44 } "
		    "condition: $b }";
		static const uint8_t bin[] = {9,    0,   1,   '\\', 'A',
		                              0xff, 'B', 'C', 'D',  9};

		buf_init(&err, 0);
		src =
		    (struct scan_src){SCAN_SRC_YARA, "b.yar",
		                      (const uint8_t *)rule, sizeof(rule) - 1};
		assert_int_equal(scan_bundle_new(&src, 1, &b, &err), 0);
		scan_opts_default(&o);
		assert_int_equal(scan_ctx_new(b, &o, &c2), 0);
		assert_int_equal(scan_mem(c2, bin, sizeof(bin), "bin", &r), 0);
		assert_non_null(j = scan_result_to_json(&r));
		m = json_array_get(
		    json_object_get(
		        json_array_get(json_object_get(j, "reasons"), 0),
		        "matched"),
		    0);
		assert_string_equal(
		    json_string_value(json_object_get(m, "data")),
		    "\\x00\\x01\\\\A\\xffBCD");
		assert_string_equal(
		    json_string_value(json_object_get(m, "hex")),
		    "00015c41ff424344");
		assert_false(json_object_get(json_object_get(j, "subject"),
		                             "modified") != NULL);
		json_decref(j);
		scan_result_free(&r);
		scan_ctx_free(c2);
		scan_bundle_free(b);
		buf_free(&err);
	}
	scan_ctx_free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_yara_match),
	    cmocka_unit_test(test_levels_from_rules),
	    cmocka_unit_test(test_hash_iocs),
	    cmocka_unit_test(test_hash_table),
	    cmocka_unit_test(test_filename_iocs),
	    cmocka_unit_test(test_externals_and_magic),
	    cmocka_unit_test(test_score_level),
	    cmocka_unit_test(test_lazy_digests),
	    cmocka_unit_test(test_limits),
	    cmocka_unit_test(test_special_files),
	    cmocka_unit_test(test_truncated_while_scanning),
	    cmocka_unit_test(test_threads),
	    cmocka_unit_test(test_json),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
