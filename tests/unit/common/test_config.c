/*
 * Tests of src/common/config.c: defaults, every key type, bounds, unknown
 * sections and keys, duplicates, missing required keys, and that every
 * problem in a file is reported with its own line number.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "buf.h"
#include "config.h"

struct tcfg {
	char *name;
	long long port;
	long long offset;
	int tls;
	long long timeout;
	long long max_body;
	int dest;
	char *cert;
	long long any;
	long long workers;
};

#define OFF(m) offsetof(struct tcfg, m)

static const struct cfg_key table[] = {
    {"", "name", CFG_STR, "vigil", 0, 0, OFF(name), 0, NULL, "instance name"},
    {"gateway", "port", CFG_INT, "8443", 0, 65535, OFF(port), 0, NULL,
     "TCP port of the agent gateway"},
    {"gateway", "offset", CFG_INT, "-1", -10, 10, OFF(offset), 0, NULL,
     "a signed number"},
    {"gateway", "tls", CFG_BOOL, "yes", 0, 0, OFF(tls), 0, NULL, "use TLS"},
    {"gateway", "timeout", CFG_DURATION, "30s", 1, 3600, OFF(timeout), 0, NULL,
     "idle timeout"},
    {"gateway", "max_body", CFG_SIZE, "1M", 1024, 16 * 1024 * 1024,
     OFF(max_body), 0, NULL, "largest request body"},
    {"log", "dest", CFG_ENUM, "stderr", 0, 0, OFF(dest), 0,
     "stderr|syslog|json", "where logs go"},
    {"tls", "cert", CFG_STR, NULL, 0, 0, OFF(cert), 1, NULL,
     "server certificate (PEM)"},
    {"tls", "any", CFG_INT, "0", 0, 0, OFF(any), 0, NULL, "unbounded"},
    {"tls", "workers", CFG_INT, "0", 0, 8, OFF(workers), 0, "auto",
     "a number or auto"},
    {NULL, NULL, 0, NULL, 0, 0, 0, 0, NULL, NULL},
};

/* Loads text; returns cfg_load_mem's result, errors in *err. */
static int
load(const char *text, struct tcfg *c, struct buf *err)
{
	memset(c, 0xa5, sizeof(*c)); /* garbage the loader must overwrite */
	buf_init(err, 0);
	return cfg_load_mem(table, c, "t.conf", text, strlen(text), err);
}

static void
test_defaults(void **state)
{
	struct tcfg c;
	struct buf err;

	(void)state;
	assert_int_equal(load("[tls]\ncert = /etc/vigil/cert.pem\n", &c, &err),
	                 0);
	assert_string_equal(buf_cstr(&err), "");
	assert_string_equal(c.name, "vigil");
	assert_int_equal(c.port, 8443);
	assert_int_equal(c.offset, -1);
	assert_int_equal(c.tls, 1);
	assert_int_equal(c.timeout, 30);
	assert_int_equal(c.max_body, 1024 * 1024);
	assert_int_equal(c.dest, 0);
	assert_string_equal(c.cert, "/etc/vigil/cert.pem");
	assert_int_equal(c.any, 0);
	cfg_free(table, &c);
	assert_null(c.name);
	assert_null(c.cert);
	buf_free(&err);
}

static void
test_every_type(void **state)
{
	struct tcfg c;
	struct buf err;
	const char *text = "\xEF\xBB\xBF"
	                   "name = center-1 ; inline comment\n"
	                   "# a comment\n"
	                   "; another\n"
	                   "\n"
	                   "[gateway]\r\n"
	                   "  port = 0\r\n"
	                   "offset=-10\n"
	                   "tls: off\n"
	                   "timeout = 1h\n"
	                   "max_body = 16M\n"
	                   "[log] ; trailing comment\n"
	                   "dest = json\n"
	                   "[tls]\n"
	                   "cert = /a b/c;d\n"
	                   "any = -9223372036854775808\n";

	(void)state;
	assert_int_equal(load(text, &c, &err), 0);
	assert_string_equal(buf_cstr(&err), "");
	assert_string_equal(c.name, "center-1");
	assert_int_equal(c.port, 0);
	assert_int_equal(c.offset, -10);
	assert_int_equal(c.tls, 0);
	assert_int_equal(c.timeout, 3600);
	assert_int_equal(c.max_body, 16 * 1024 * 1024);
	assert_int_equal(c.dest, 2);
	assert_string_equal(c.cert, "/a b/c;d");
	assert_true(c.any == -9223372036854775807LL - 1);
	cfg_free(table, &c);
	buf_free(&err);
}

static void
test_bools(void **state)
{
	static const char *const yes[] = {"yes", "true", "on",
	                                  "1",   "YES",  "True"};
	static const char *const no[] = {"no", "false", "off", "0", "OFF"};
	char text[128];
	struct tcfg c;
	struct buf err;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		snprintf(text, sizeof(text),
		         "[gateway]\ntls = %s\n[tls]\ncert=x\n", yes[i]);
		assert_int_equal(load(text, &c, &err), 0);
		assert_int_equal(c.tls, 1);
		cfg_free(table, &c);
		buf_free(&err);
	}
	for (i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		snprintf(text, sizeof(text),
		         "[gateway]\ntls = %s\n[tls]\ncert=x\n", no[i]);
		assert_int_equal(load(text, &c, &err), 0);
		assert_int_equal(c.tls, 0);
		cfg_free(table, &c);
		buf_free(&err);
	}
	assert_int_equal(
	    load("[gateway]\ntls = maybe\n[tls]\ncert=x\n", &c, &err), -1);
	assert_string_equal(
	    buf_cstr(&err),
	    "t.conf:2: [gateway] tls: 'maybe' is not a boolean (use yes/no, "
	    "true/false, on/off or 1/0)\n");
	cfg_free(table, &c);
	buf_free(&err);
}

/* One bad value per case, with the exact message expected. */
static void
test_bad_values(void **state)
{
	static const struct {
		const char *line, *msg;
	} cases[] = {
	    {"port = 70000", "[gateway] port: 70000 is out of range 0..65535"},
	    {"port = -1", "[gateway] port: -1 is out of range 0..65535"},
	    {"port = 80x", "[gateway] port: '80x' is not an integer"},
	    {"port =", "[gateway] port: '' is not an integer"},
	    {"port = 99999999999999999999",
	     "[gateway] port: '99999999999999999999' is not an integer "
	     "(too large)"},
	    {"offset = 11", "[gateway] offset: 11 is out of range -10..10"},
	    {"timeout = 2h", "[gateway] timeout: 2h is out of range 1s..1h"},
	    {"timeout = 0", "[gateway] timeout: '0' is out of range (a "
	                    "duration is at least 1s and fits in 64 bits)"},
	    {"timeout = 5 minutes",
	     "[gateway] timeout: '5 minutes' is not a duration (a number of "
	     "seconds, or with a unit: 30s, 15m, 12h, 7d, 2w)"},
	    {"max_body = 32M", "[gateway] max_body: 32M is out of range "
	                       "1k..16M"},
	    {"max_body = 100", "[gateway] max_body: 100 is out of range "
	                       "1k..16M"},
	    {"max_body = 1Q", "[gateway] max_body: '1Q' is not a size (a "
	                      "number of bytes, or with a unit: 64k, 16M, "
	                      "2G, 1T)"},
	    {"max_body = 99999999T", "[gateway] max_body: '99999999T' is too "
	                             "large"},
	};
	char text[256], want[512];
	struct tcfg c;
	struct buf err;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(text, sizeof(text), "[tls]\ncert=x\n[gateway]\n%s\n",
		         cases[i].line);
		snprintf(want, sizeof(want), "t.conf:4: %s\n", cases[i].msg);
		assert_int_equal(load(text, &c, &err), -1);
		assert_string_equal(buf_cstr(&err), want);
		/* The default survives a bad value. */
		assert_int_equal(c.port, 8443);
		cfg_free(table, &c);
		buf_free(&err);
	}
}

/* An integer key that names a word ("auto") reads it as -1, outside its
 * bounds; any other word, a prefix of it too, is an error. */
static void
test_int_word(void **state)
{
	struct tcfg c;
	struct buf err;

	(void)state;
	assert_int_equal(load("[tls]\ncert=x\nworkers = auto\n", &c, &err), 0);
	assert_int_equal(c.workers, -1);
	cfg_free(table, &c);
	buf_free(&err);

	assert_int_equal(load("[tls]\ncert=x\nworkers = 3\n", &c, &err), 0);
	assert_int_equal(c.workers, 3);
	cfg_free(table, &c);
	buf_free(&err);

	assert_int_equal(load("[tls]\ncert=x\nworkers = aut\n", &c, &err), -1);
	assert_string_equal(buf_cstr(&err), "t.conf:3: [tls] workers: 'aut' is "
	                                    "not an integer\n");
	cfg_free(table, &c);
	buf_free(&err);

	/* The word is the key's own: another integer key refuses it. */
	assert_int_equal(load("[tls]\ncert=x\nany = auto\n", &c, &err), -1);
	cfg_free(table, &c);
	buf_free(&err);
}

static void
test_enum(void **state)
{
	struct tcfg c;
	struct buf err;

	(void)state;
	assert_int_equal(
	    load("[tls]\ncert=x\n[log]\ndest = syslog\n", &c, &err), 0);
	assert_int_equal(c.dest, 1);
	cfg_free(table, &c);
	buf_free(&err);

	assert_int_equal(
	    load("[tls]\ncert=x\n[log]\ndest = Syslog\n", &c, &err), -1);
	assert_string_equal(buf_cstr(&err), "t.conf:4: [log] dest: 'Syslog' is "
	                                    "not one of stderr|syslog|json\n");
	cfg_free(table, &c);
	buf_free(&err);

	/* A prefix of a choice is not a choice. */
	assert_int_equal(load("[tls]\ncert=x\n[log]\ndest = std\n", &c, &err),
	                 -1);
	cfg_free(table, &c);
	buf_free(&err);
}

static void
test_missing_required(void **state)
{
	struct tcfg c;
	struct buf err;

	(void)state;
	assert_int_equal(load("[gateway]\nport = 1\n", &c, &err), -1);
	assert_string_equal(buf_cstr(&err),
	                    "t.conf: missing required key [tls] cert\n");
	cfg_free(table, &c);
	buf_free(&err);

	/* An empty file: only the required key is missing. */
	assert_int_equal(load("", &c, &err), -1);
	assert_string_equal(buf_cstr(&err),
	                    "t.conf: missing required key [tls] cert\n");
	cfg_free(table, &c);
	buf_free(&err);
}

static void
test_all_errors_reported(void **state)
{
	struct tcfg c;
	struct buf err;
	const char *text = "colour = blue\n"         /* 1 */
	                   "[gateway]\n"             /* 2 */
	                   "port = 70000\n"          /* 3 */
	                   "tls = yes\n"             /* 4 */
	                   "tls = no\n"              /* 5 */
	                   "bogus = 1\n"             /* 6 */
	                   "this line is nonsense\n" /* 7 */
	                   "[nosuch]\n"              /* 8 */
	                   "x = 1\n"                 /* 9 */
	                   "y = 2\n"                 /* 10 */
	                   "[log\n"                  /* 11 */
	                   "[log] junk\n"            /* 12 */
	                   "[log]\n"                 /* 13 */
	                   "dest = file\n"           /* 14 */
	                   " = 3\n"                  /* 15 */
	                   "[gateway]\n"             /* 16 */
	                   "timeout = 0s\n";         /* 17 */

	(void)state;
	assert_int_equal(load(text, &c, &err), -1);
	assert_string_equal(
	    buf_cstr(&err),
	    "t.conf:1: colour: unknown key (allowed here: name)\n"
	    "t.conf:3: [gateway] port: 70000 is out of range 0..65535\n"
	    "t.conf:5: [gateway] tls: duplicate key (first set on line 4)\n"
	    "t.conf:6: [gateway] bogus: unknown key (allowed here: port, "
	    "offset, tls, timeout, max_body)\n"
	    "t.conf:7: expected \"name = value\", \"[section]\" or a comment\n"
	    "t.conf:8: unknown section [nosuch] (known: [gateway], [log], "
	    "[tls])\n"
	    "t.conf:11: section header without closing ']'\n"
	    "t.conf:12: unexpected text after section header\n"
	    "t.conf:14: [log] dest: 'file' is not one of stderr|syslog|json\n"
	    "t.conf:15: missing key name before '='\n"
	    "t.conf:17: [gateway] timeout: '0s' is out of range (a duration "
	    "is at least 1s and fits in 64 bits)\n"
	    "t.conf: missing required key [tls] cert\n");
	/* The good line between the bad ones still took effect. */
	assert_int_equal(c.tls, 1);
	cfg_free(table, &c);
	buf_free(&err);
}

static void
test_duplicate_across_sections(void **state)
{
	struct tcfg c;
	struct buf err;

	(void)state;
	/* Reopening a section is fine; setting a key twice is not. */
	assert_int_equal(load("[gateway]\nport=1\n[tls]\ncert=a\n[gateway]\n"
	                      "tls=no\nport=2\n[tls]\ncert=b\n",
	                      &c, &err),
	                 -1);
	assert_string_equal(
	    buf_cstr(&err),
	    "t.conf:7: [gateway] port: duplicate key (first set on line 2)\n"
	    "t.conf:9: [tls] cert: duplicate key (first set on line 4)\n");
	/* The first value is kept. */
	assert_int_equal(c.port, 1);
	assert_string_equal(c.cert, "a");
	cfg_free(table, &c);
	buf_free(&err);
}

static void
test_odd_lines(void **state)
{
	struct tcfg c;
	struct buf err, text;
	size_t i;

	(void)state;
	/* A line longer than inih's buffer is one error on the right line,
	 * and the lines after it keep their numbers. */
	buf_init(&text, 0);
	buf_puts(&text, "[tls]\ncert = ");
	for (i = 0; i < 300; i++)
		buf_putc(&text, 'a');
	buf_puts(&text, "\n[gateway]\nport = x\n");
	assert_int_equal(load(buf_cstr(&text), &c, &err), -1);
	assert_string_equal(buf_cstr(&err),
	                    "t.conf:2: line too long (at most 197 bytes)\n"
	                    "t.conf:4: [gateway] port: 'x' is not an integer\n"
	                    "t.conf: missing required key [tls] cert\n");
	cfg_free(table, &c);
	buf_free(&err);
	buf_free(&text);

	/* A NUL byte inside the text: cfg_load_mem takes a length. */
	memset(&c, 0, sizeof(c));
	buf_init(&err, 0);
	assert_int_equal(cfg_load_mem(table, &c, "t.conf",
	                              "[tls]\ncert=x\nport\0=1\n", 20, &err),
	                 -1);
	assert_string_equal(buf_cstr(&err),
	                    "t.conf:3: line contains a NUL byte\n");
	cfg_free(table, &c);
	buf_free(&err);

	/* No final newline; indented lines are keys, not continuations. */
	assert_int_equal(load("[tls]\n  cert = x\n  any = 5", &c, &err), 0);
	assert_string_equal(c.cert, "x");
	assert_int_equal(c.any, 5);
	cfg_free(table, &c);
	buf_free(&err);
}

static void
test_too_many_errors(void **state)
{
	struct tcfg c;
	struct buf err, text;
	size_t i, lines = 0;
	const char *p;

	(void)state;
	buf_init(&text, 0);
	for (i = 0; i < 500; i++)
		buf_puts(&text, "junk\n");
	assert_int_equal(load(buf_cstr(&text), &c, &err), -1);
	for (p = buf_cstr(&err); *p != '\0'; p++)
		if (*p == '\n')
			lines++;
	assert_int_equal(lines, 51);
	assert_non_null(strstr(buf_cstr(&err), "too many errors"));
	cfg_free(table, &c);
	buf_free(&err);
	buf_free(&text);
}

static void
test_file(void **state)
{
	char path[] = "/tmp/vigil-test-config-XXXXXX";
	const char *text = "[tls]\ncert = /c.pem\n[gateway]\nport = 1\n";
	struct tcfg c;
	struct buf err;
	int fd;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);

	buf_init(&err, 0);
	assert_int_equal(cfg_load_file(table, &c, path, &err), 0);
	assert_string_equal(c.cert, "/c.pem");
	assert_int_equal(c.port, 1);
	cfg_free(table, &c);
	unlink(path);

	/* A missing file is one error naming it; dst is still freeable. */
	assert_int_equal(cfg_load_file(table, &c, path, &err), -1);
	assert_non_null(strstr(buf_cstr(&err), path));
	assert_non_null(strstr(buf_cstr(&err), "No such file"));
	assert_string_equal(c.name, "vigil");
	cfg_free(table, &c);
	buf_free(&err);
}

static void
test_describe(void **state)
{
	struct buf out, err;
	struct tcfg c;
	const char *s;

	(void)state;
	buf_init(&out, 0);
	cfg_describe(table, &out);
	s = buf_cstr(&out);
	/* Keys outside sections first, then each section once. */
	assert_true(strncmp(s, "# instance name\n", 16) == 0);
	assert_non_null(strstr(s, "[gateway]\n"));
	assert_non_null(strstr(s, "# TCP port of the agent gateway\n"
	                          "# type: integer, range: 0..65535, default: "
	                          "8443\n#port = 8443\n"));
	assert_non_null(strstr(s, "range: 1s..1h, default: 30s"));
	assert_non_null(strstr(s, "range: 1k..16M, default: 1M"));
	assert_non_null(strstr(s, "one of stderr|syslog|json, default: "
	                          "stderr"));
	assert_non_null(strstr(s, "# type: string, required\n#cert =\n"));
	assert_null(strstr(strstr(s, "[gateway]") + 1, "[gateway]"));

	/* The reference is itself a valid file (all keys commented). */
	buf_init(&err, 0);
	memset(&c, 0, sizeof(c));
	assert_int_equal(
	    cfg_load_mem(table, &c, "ref", buf_cstr(&out), out.len, &err), -1);
	assert_string_equal(buf_cstr(&err),
	                    "ref: missing required key [tls] cert\n");
	cfg_free(table, &c);
	buf_free(&err);
	buf_free(&out);
}

static void
test_no_root_keys(void **state)
{
	static const struct cfg_key small[] = {
	    {"s", "k", CFG_INT, "1", 0, 9, 0, 0, NULL, "only key"},
	    {0},
	};
	const char *text = "k = 2\n[s]\nk = 3\n";
	long long v = -1;
	struct buf err;

	(void)state;
	buf_init(&err, 0);
	assert_int_equal(
	    cfg_load_mem(small, &v, "s.conf", text, strlen(text), &err), -1);
	assert_string_equal(
	    buf_cstr(&err),
	    "s.conf:1: k: unknown key (keys belong in a [section])\n");
	assert_int_equal(v, 3);
	buf_free(&err);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_every_type),
	    cmocka_unit_test(test_bools),
	    cmocka_unit_test(test_bad_values),
	    cmocka_unit_test(test_enum),
	    cmocka_unit_test(test_int_word),
	    cmocka_unit_test(test_missing_required),
	    cmocka_unit_test(test_all_errors_reported),
	    cmocka_unit_test(test_duplicate_across_sections),
	    cmocka_unit_test(test_odd_lines),
	    cmocka_unit_test(test_too_many_errors),
	    cmocka_unit_test(test_file),
	    cmocka_unit_test(test_describe),
	    cmocka_unit_test(test_no_root_keys),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
