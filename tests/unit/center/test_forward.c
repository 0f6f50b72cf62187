/*
 * Tests of src/center/forward*.c without the network: target specs checked
 * field by field (API bodies and the targets file), the type and level
 * filters, and the audit-log hook storing entries as forwardable events.
 * Delivery itself is tested against a real rsyslogd in tests/e2e/forward_*.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../../src/center/db.c"
#include "../../../src/center/forward.c"
#include "../../../src/center/forward_api.c"
#include "../../../src/center/forward_target.c"
#include "../../../src/center/util.c"

/* node.c: the tests run on SQLite, one node that holds every lease. */
const char *
node_name(const struct center *c)
{
	(void)c;
	return "test";
}

int
node_lease(struct center *c, const char *name)
{
	(void)c;
	(void)name;
	return 1;
}

void
node_release(struct center *c, const char *name)
{
	(void)c;
	(void)name;
}

/* sampleshare.c: the tests on SQLite hold no shared samples. */
int
sample_local(struct center *c, const char *sha, char *path, size_t pathlen,
             struct buf *err)
{
	(void)c;
	(void)sha;
	(void)path;
	(void)pathlen;
	buf_puts(err, "no samples in this test");
	return -1;
}

/* admin.c is not linked here; no handler is called. */
int
admin_authorize(struct http_req *r)
{
	(void)r;
	return -1;
}

/* Nor schema.c (the handlers check request bodies with it). */
int
schema_no_body(struct http_req *r)
{
	(void)r;
	return -1;
}

static int
check_spec(const char *json, const char *want_err)
{
	json_error_t je;
	json_t *j = json_loads(json, 0, &je);
	struct fwd_target t;
	struct buf err;
	int rc;

	assert_non_null(j);
	memset(&t, 0, sizeof(t));
	buf_init(&err, 1024);
	rc = target_from_json("center.example.org", NULL, j, &t, &err);
	if (want_err != NULL) {
		assert_int_equal(rc, -1);
		if (strstr(buf_cstr(&err), want_err) == NULL)
			fail_msg("%s: got \"%s\", want \"%s\"", json,
			         buf_cstr(&err), want_err);
	} else if (rc != 0)
		fail_msg("%s: %s", json, buf_cstr(&err));
	SSL_CTX_free(t.ctx);
	free(t.ca);
	free(t.cert);
	free(t.key);
	free((char *)t.fmt.center_host);
	buf_free(&err);
	json_decref(j);
	return rc;
}

static void
test_specs(void **state)
{
	struct fwd_target t;
	struct buf err;
	json_t *j;

	(void)state;
	check_spec("{\"name\": \"a\", \"host\": \"h\"}", NULL);
	check_spec("{\"host\": \"h\"}", "name:");
	check_spec("{\"name\": \"a/b\", \"host\": \"h\"}", "name:");
	check_spec("{\"name\": \"a\"}", "host:");
	check_spec(
	    "{\"name\": \"a\", \"host\": \"h\", \"transport\": \"sctp\"}",
	    "transport:");
	check_spec("{\"name\": \"a\", \"host\": \"h\", \"port\": 0}", "port:");
	check_spec("{\"name\": \"a\", \"host\": \"h\", \"port\": \"514\"}",
	           "port:");
	check_spec("{\"name\": \"a\", \"host\": \"h\", \"format\": \"xml\"}",
	           "format:");
	check_spec("{\"name\": \"a\", \"host\": \"h\", \"framing\": \"lf\"}",
	           "framing:");
	check_spec("{\"name\": \"a\", \"host\": \"h\", \"facility\": 24}",
	           "facility:");
	check_spec("{\"name\": \"a\", \"host\": \"h\", \"min_level\": \"x\"}",
	           "min_level:");
	check_spec("{\"name\": \"a\", \"host\": \"h\", \"types\": \"finding\"}",
	           "types:");
	check_spec("{\"name\": \"a\", \"host\": \"h\", \"types\": [1]}",
	           "types:");
	check_spec("{\"name\": \"a\", \"host\": \"h\", \"transport\": \"tls\"}",
	           "ca_file: required");
	check_spec("{\"name\": \"a\", \"host\": \"h\", \"ca_file\": \"/x\"}",
	           "only for tls");
	check_spec("{\"name\": \"a\", \"host\": \"h\", \"transport\": \"tls\", "
	           "\"ca_file\": \"/nonexistent/ca.crt\"}",
	           "/nonexistent/ca.crt");

	/* Defaults: udp 514, rfc5424, octet, local0, every type and level;
	 * tls defaults to 6514. */
	j = json_pack("{s:s, s:s}", "name", "d", "host", "h");
	memset(&t, 0, sizeof(t));
	buf_init(&err, 1024);
	assert_int_equal(target_from_json("c", NULL, j, &t, &err), 0);
	assert_int_equal(t.transport, FWD_UDP);
	assert_int_equal(t.port, 514);
	assert_int_equal(t.fmt.format, SYSLOGFMT_RFC5424);
	assert_int_equal(t.framing, SYSLOGFMT_OCTET);
	assert_int_equal(t.fmt.facility, 16);
	assert_int_equal(t.ntypes, 0);
	assert_int_equal(t.min_rank, 0);
	free((char *)t.fmt.center_host);
	json_decref(j);
	buf_free(&err);
}

static void
test_filters(void **state)
{
	struct fwd_target t;

	(void)state;
	memset(&t, 0, sizeof(t));
	assert_true(wanted(&t, "progress", NULL));
	t.min_rank = syslogfmt_level_rank("warning");
	assert_false(wanted(&t, "finding", "info"));
	assert_false(wanted(&t, "finding", NULL));
	assert_false(wanted(&t, "finding", "notice"));
	assert_true(wanted(&t, "finding", "warning"));
	assert_true(wanted(&t, "finding", "alert"));
	snprintf(t.types[0], sizeof(t.types[0]), "finding");
	snprintf(t.types[1], sizeof(t.types[1]), "gap");
	t.ntypes = 2;
	assert_true(wanted(&t, "gap", "alert"));
	assert_false(wanted(&t, "progress", "alert"));
}

static char *
write_tmp(const char *text)
{
	char *path = strdup("/tmp/vigil-test-forward.XXXXXX");
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

static void
test_targets_file(void **state)
{
	struct buf err;
	json_t *specs, *s;
	char *path;

	(void)state;
	buf_init(&err, 4096);
	path = write_tmp("; comment\n[siem]\ntransport = tcp\nhost = 10.0.0.5\n"
	                 "port = 1514\ntypes = finding, gap ,\n"
	                 "min_level = warning\n[ops]\nhost = 10.0.0.6\n");
	specs = tfile_load(path, "c", NULL, &err);
	assert_non_null(specs);
	s = json_object_get(specs, "siem");
	assert_int_equal(json_integer_value(json_object_get(s, "port")), 1514);
	assert_int_equal(json_array_size(json_object_get(s, "types")), 2);
	assert_string_equal(
	    json_string_value(json_array_get(json_object_get(s, "types"), 1)),
	    "gap");
	assert_true(json_is_true(json_object_get(s, "from_config")));
	assert_non_null(json_object_get(specs, "ops"));
	json_decref(specs);
	unlink(path);
	free(path);

	path = write_tmp("host = x\n[a]\nhost = h\nhost = h2\ncolor = red\n"
	                 "[b]\nhost = h\nport = 70000\nfrom = yesterday\n"
	                 "[c]\nthis line is not ini\n");
	assert_null(tfile_load(path, "c", NULL, &err));
	assert_non_null(strstr(buf_cstr(&err), "host: outside a [target]"));
	assert_non_null(strstr(buf_cstr(&err), "[a] host: given twice"));
	assert_non_null(strstr(buf_cstr(&err), "[a] color: unknown key"));
	assert_non_null(strstr(buf_cstr(&err), "[b] port: 1..65535"));
	assert_non_null(strstr(buf_cstr(&err), ":11: not a [section]"));
	unlink(path);
	free(path);
	buf_reset(&err);
	assert_int_equal(
	    forward_check_file("/nonexistent/targets", "c", NULL, &err), -1);
	assert_non_null(strstr(buf_cstr(&err), "cannot read"));
	buf_free(&err);
}

static void
test_audit_hook(void **state)
{
	char dir[] = "/tmp/vigil-test-fwdaudit.XXXXXX", db[128];
	struct center c;
	struct buf err;
	struct store_rows *r;
	json_t *entry;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(db, sizeof(db), "%s/vigil.db", dir);
	memset(&c, 0, sizeof(c));
	buf_init(&err, 1024);
	c.store = store_open(db, center_migrations, center_nmigrations, &err);
	assert_non_null(c.store);
	entry = json_pack("{s:s, s:s, s:s}", "actor", "admin", "action",
	                  "agent.revoke", "note", "a \"quoted\" ]value");
	assert_int_equal(forward_audit(&c, entry), 0);
	assert_int_equal(forward_audit(&c, entry), 0);
	r = store_query(c.store,
	                "SELECT seq, type, level, data FROM events WHERE "
	                "agent_id = 'center' ORDER BY rowid");
	assert_int_equal(store_next(r), 1);
	assert_int_equal(store_int(r, 0), 1);
	assert_string_equal(store_text(r, 1), "audit");
	assert_string_equal(store_text(r, 2), "notice");
	assert_non_null(
	    strstr(store_text(r, 3), "\"action\":\"agent.revoke\""));
	assert_int_equal(store_next(r), 1);
	assert_int_equal(store_int(r, 0), 2);
	assert_int_equal(store_next(r), 0);
	store_done(r);
	json_decref(entry);
	store_close(c.store);
	unlink(db);
	{
		char p[160];

		snprintf(p, sizeof(p), "%s-wal", db);
		unlink(p);
		snprintf(p, sizeof(p), "%s-shm", db);
		unlink(p);
	}
	rmdir(dir);
	buf_free(&err);
	metrics_reset();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_specs),
	    cmocka_unit_test(test_filters),
	    cmocka_unit_test(test_targets_file),
	    cmocka_unit_test(test_audit_hook),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
