/*
 * Tests of src/common/log.c: the text and JSON line formats, level
 * filtering, errno handling and fatalx's exit status. stderr is pointed at
 * a temporary file around each logging call and read back.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "log.h"

struct capture {
	FILE *tmp;
	int saved;
};

static void
capture_start(struct capture *c)
{
	fflush(stderr);
	c->tmp = tmpfile();
	assert_non_null(c->tmp);
	c->saved = dup(STDERR_FILENO);
	assert_true(c->saved >= 0);
	assert_true(dup2(fileno(c->tmp), STDERR_FILENO) >= 0);
}

/* Restores stderr and returns what was written (malloc'd). */
static char *
capture_end(struct capture *c)
{
	char *out;
	long n;

	fflush(stderr);
	assert_true(dup2(c->saved, STDERR_FILENO) >= 0);
	close(c->saved);
	assert_int_equal(fseek(c->tmp, 0, SEEK_END), 0);
	n = ftell(c->tmp);
	assert_true(n >= 0);
	rewind(c->tmp);
	out = calloc(1, (size_t)n + 1);
	assert_non_null(out);
	assert_int_equal(fread(out, 1, (size_t)n, c->tmp), (size_t)n);
	fclose(c->tmp);
	return out;
}

/* Checks one JSON line and returns the parsed object. */
static json_t *
parse_line(const char *line, const char *level)
{
	json_error_t jerr;
	json_t *obj;
	const char *ts;

	obj = json_loads(line, 0, &jerr);
	if (obj == NULL)
		fail_msg("not JSON: %s (%s)", line, jerr.text);
	assert_true(json_is_object(obj));
	assert_int_equal(json_object_size(obj), 4);
	assert_string_equal(json_string_value(json_object_get(obj, "level")),
	                    level);
	assert_string_equal(json_string_value(json_object_get(obj, "prog")),
	                    "vigiltest");
	ts = json_string_value(json_object_get(obj, "ts"));
	assert_non_null(ts);
	/* 2024-05-01T12:34:56.789Z */
	assert_int_equal(strlen(ts), 24);
	assert_int_equal(ts[4], '-');
	assert_int_equal(ts[10], 'T');
	assert_int_equal(ts[13], ':');
	assert_int_equal(ts[19], '.');
	assert_int_equal(ts[23], 'Z');
	assert_true(strncmp(ts, "20", 2) == 0);
	return obj;
}

static void
test_text_format(void **state)
{
	struct capture c;
	char *out;

	(void)state;
	log_init("/usr/sbin/vigiltest", LOG_DEST_STDERR, LOG_LVL_INFO);
	capture_start(&c);
	log_warnx("gateway: listening on port %d", 8443);
	log_info("store: %s", "opened");
	out = capture_end(&c);
	assert_string_equal(out, "vigiltest: WARN: gateway: listening on port "
	                         "8443\nvigiltest: INFO: store: opened\n");
	free(out);
}

static void
test_level_filter(void **state)
{
	struct capture c;
	char *out;

	(void)state;
	log_init("vigiltest", LOG_DEST_STDERR, LOG_LVL_WARN);
	assert_int_equal(log_getlevel(), LOG_LVL_WARN);
	capture_start(&c);
	log_info("hidden info");
	log_debug("hidden debug");
	log_warnx("shown");
	out = capture_end(&c);
	assert_string_equal(out, "vigiltest: WARN: shown\n");
	free(out);

	log_setlevel(LOG_LVL_DEBUG);
	capture_start(&c);
	log_debug("now %s", "visible");
	out = capture_end(&c);
	assert_string_equal(out, "vigiltest: DEBUG: now visible\n");
	free(out);

	log_setlevel(LOG_LVL_INFO);
	capture_start(&c);
	log_debug("hidden again");
	out = capture_end(&c);
	assert_string_equal(out, "");
	free(out);
}

static void
test_warn_errno(void **state)
{
	struct capture c;
	char *out;

	(void)state;
	log_init("vigiltest", LOG_DEST_STDERR, LOG_LVL_INFO);
	capture_start(&c);
	errno = ENOENT;
	log_warn("open %s", "/nonexistent");
	/* Logging must not clobber errno for the caller. */
	assert_int_equal(errno, ENOENT);
	out = capture_end(&c);
	assert_string_equal(out, "vigiltest: WARN: open /nonexistent: No such "
	                         "file or directory\n");
	free(out);
}

static void
test_json_lines(void **state)
{
	struct capture c;
	char *out, *nl, *second;
	json_t *obj;

	(void)state;
	log_init("vigiltest", LOG_DEST_JSON, LOG_LVL_DEBUG);
	capture_start(&c);
	log_info("hello %d", 42);
	errno = EACCES;
	log_warn("quote \" backslash \\ newline \n tab \t bell \a end");
	out = capture_end(&c);

	/* Exactly two lines, each a complete object. */
	nl = strchr(out, '\n');
	assert_non_null(nl);
	*nl = '\0';
	second = nl + 1;
	nl = strchr(second, '\n');
	assert_non_null(nl);
	*nl = '\0';
	assert_string_equal(nl + 1, "");

	obj = parse_line(out, "info");
	assert_string_equal(json_string_value(json_object_get(obj, "msg")),
	                    "hello 42");
	json_decref(obj);

	obj = parse_line(second, "warn");
	assert_string_equal(
	    json_string_value(json_object_get(obj, "msg")),
	    "quote \" backslash \\ newline \n tab \t bell \a end: Permission "
	    "denied");
	json_decref(obj);
	free(out);
	log_init("vigiltest", LOG_DEST_STDERR, LOG_LVL_INFO);
}

static void
test_json_invalid_utf8(void **state)
{
	struct capture c;
	char *out;
	json_t *obj;

	(void)state;
	log_init("vigiltest", LOG_DEST_JSON, LOG_LVL_INFO);
	capture_start(&c);
	/* A peer-supplied name with broken UTF-8 must not cost the line. */
	log_warnx("agent name %s", "bad\xff\xfe utf8 caf\xc3\xa9");
	out = capture_end(&c);
	assert_true(strlen(out) > 0 && out[strlen(out) - 1] == '\n');
	out[strlen(out) - 1] = '\0';
	obj = parse_line(out, "warn");
	assert_string_equal(json_string_value(json_object_get(obj, "msg")),
	                    "agent name bad?? utf8 caf\xc3\xa9");
	json_decref(obj);
	free(out);
	log_init("vigiltest", LOG_DEST_STDERR, LOG_LVL_INFO);
}

static void
test_parse(void **state)
{
	enum log_level l;
	enum log_dest d;

	(void)state;
	assert_int_equal(log_parse_level("warn", &l), 0);
	assert_int_equal(l, LOG_LVL_WARN);
	assert_int_equal(log_parse_level("info", &l), 0);
	assert_int_equal(l, LOG_LVL_INFO);
	assert_int_equal(log_parse_level("debug", &l), 0);
	assert_int_equal(l, LOG_LVL_DEBUG);
	assert_int_equal(log_parse_level("DEBUG", &l), -1);
	assert_int_equal(log_parse_level("", &l), -1);
	assert_int_equal(log_parse_level(NULL, &l), -1);
	assert_int_equal(log_parse_dest("stderr", &d), 0);
	assert_int_equal(d, LOG_DEST_STDERR);
	assert_int_equal(log_parse_dest("syslog", &d), 0);
	assert_int_equal(d, LOG_DEST_SYSLOG);
	assert_int_equal(log_parse_dest("json", &d), 0);
	assert_int_equal(d, LOG_DEST_JSON);
	assert_int_equal(log_parse_dest("file", &d), -1);
}

static void
test_fatalx_exits(void **state)
{
	pid_t pid;
	int status, fd;

	(void)state;
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		fd = open("/dev/null", O_WRONLY);
		if (fd >= 0)
			dup2(fd, STDERR_FILENO);
		fatalx("%s: broken invariant", __func__);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_text_format),
	    cmocka_unit_test(test_level_filter),
	    cmocka_unit_test(test_warn_errno),
	    cmocka_unit_test(test_json_lines),
	    cmocka_unit_test(test_json_invalid_utf8),
	    cmocka_unit_test(test_parse),
	    cmocka_unit_test(test_fatalx_exits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
