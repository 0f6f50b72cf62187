/*
 * Tests of src/center/intel.c and src/common/intelc.c without inteld:
 * which members of an event's data become indicators, the verdict summary
 * and ranks, [intel] sections refused with their reason, and one round's
 * storage (a verdict per event, a malicious finding raised to alert with
 * its level before, the cursor saved) in a real store. Asking a real
 * inteld is tests/e2e/intel_center's and intel_scand's.
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
#include "../../../src/center/intel.c"
#include "../../../src/center/util.c"
#include "../../../src/common/intelc.c"

/* node.c: the tests run on SQLite, one node (the name is not used). */
void
node_name_of(const struct center *c, char *out, size_t n)
{
	(void)c;
	snprintf(out, n, "test");
}

static json_t *
inds_of(const char *data)
{
	json_t *d = json_loads(data, 0, NULL), *l = json_array();

	assert_non_null(d);
	collect(d, NULL, 0, l);
	json_decref(d);
	return l;
}

static char *
dump(json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT);

	json_decref(j);
	return s;
}

static void
test_collect(void **state)
{
	char *s;
	const char *sha = "9431128bcc8c6a39803b329ad2702ec30a2df4d0240f1c03f3b4"
	                  "357232acde32";
	char data[1024];

	(void)state;
	snprintf(data, sizeof(data),
	         "{\"subject\": {\"path\": \"/tmp/x\", \"hashes\": "
	         "{\"sha256\": \"%s\", \"md5\": \"not-a-hash\"}}, "
	         "\"remote_ip\": \"203.0.113.9\", \"peers\": [\"2001:db8::1\", "
	         "\"203.0.113.9\"], \"hostname\": \"evil.example\", "
	         "\"comment\": \"evil.example\", \"port\": 443, \"sha1\": 5}",
	         sha);
	s = dump(inds_of(data));
	assert_string_equal(
	    s,
	    "[{\"type\":\"sha256\",\"value\":\"9431128bcc8c6a39803b329ad2702e"
	    "c30a2df4d0240f1c03f3b4357232acde32\"},{\"type\":\"ip\","
	    "\"value\":\"203.0.113.9\"},{\"type\":\"ip\",\"value\":"
	    "\"2001:db8::1\"},{\"type\":\"domain\",\"value\":"
	    "\"evil.example\"}]");
	free(s);
	/* nothing that is no indicator */
	s = dump(inds_of("{\"host\": \"localhost\", \"ip\": \"999.1.1.1\", "
	                 "\"md5\": \"00112233445566778899aabbccddeeff0\"}"));
	assert_string_equal(s, "[]");
	free(s);
}

static void
test_collect_cap(void **state)
{
	struct buf b;
	json_t *l;
	int i;

	(void)state;
	buf_init(&b, 1 << 16);
	buf_puts(&b, "{\"a\": [");
	for (i = 0; i < 100; i++)
		buf_printf(&b, "%s\"10.0.0.%d\"", i ? "," : "", i);
	buf_puts(&b, "]}");
	l = inds_of(buf_cstr(&b));
	assert_int_equal(json_array_size(l), ENRICH_PER_EVENT);
	json_decref(l);
	buf_free(&b);
}

static void
test_brief(void **state)
{
	json_t *a = json_loads(
	    "{\"indicator\": \"x\", \"verdict\": \"malicious\", \"score\": 80,"
	    " \"sources\": [{\"source\": \"misp\"}, {\"source\": "
	    "\"site:block\"}]}",
	    0, NULL);
	json_t *e = json_loads("{\"input\": 7, \"error\": \"no\"}", 0, NULL);
	char *s;

	(void)state;
	s = dump(intelc_brief(a));
	assert_string_equal(s, "{\"verdict\":\"malicious\",\"score\":80,"
	                       "\"sources\":[\"misp\",\"site:block\"]}");
	free(s);
	assert_null(intelc_brief(e));
	assert_int_equal(intelc_verdict_rank("malicious"), 3);
	assert_int_equal(intelc_verdict_rank("suspicious"), 2);
	assert_int_equal(intelc_verdict_rank("benign"), 1);
	assert_int_equal(intelc_verdict_rank("unknown"), 0);
	assert_int_equal(intelc_verdict_rank(NULL), 0);
	json_decref(a);
	json_decref(e);
}

static void
conf_refused(struct intelc_conf *cf, const char *why)
{
	struct intelc *ic = (struct intelc *)1;
	struct buf err;

	buf_init(&err, 1024);
	assert_int_equal(intelc_new(cf, &ic, &err), -1);
	assert_null(ic);
	if (strstr(buf_cstr(&err), why) == NULL)
		fail_msg("expected '%s' in '%s'", why, buf_cstr(&err));
	buf_free(&err);
}

static void
test_conf(void **state)
{
	char key[] = "/tmp/vigil-test-intel-XXXXXX";
	struct intelc_conf cf;
	struct intelc *ic = NULL;
	struct buf err;
	int fd;

	(void)state;
	memset(&cf, 0, sizeof(cf));
	buf_init(&err, 1024);
	assert_int_equal(intelc_new(&cf, &ic, &err), 0); /* no url: off */
	assert_null(ic);
	cf.url = "http://intel.example:10443";
	conf_refused(&cf, "not https://HOST:PORT");
	cf.url = "https://intel.example:10443/";
	conf_refused(&cf, "ca: required");
	cf.ca = "/etc/vigil/pki/ca.crt";
	conf_refused(&cf, "needs cert and key");
	cf.cert = "/x.crt";
	conf_refused(&cf, "cert and key go together");
	cf.cert = NULL;
	fd = mkstemp(key);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "k3y\n", 4), 4);
	close(fd);
	cf.api_key_file = key;
	assert_int_equal(chmod(key, 0644), 0);
	conf_refused(&cf, key);
	assert_int_equal(chmod(key, 0600), 0);
	assert_int_equal(intelc_new(&cf, &ic, &err), 0);
	assert_non_null(ic);
	assert_string_equal(intelc_url(ic), "https://intel.example:10443");
	assert_string_equal(ic->bearer, "k3y");
	intelc_free(ic);
	unlink(key);
	buf_free(&err);
}

/* One round stored: verdicts per event, the level rule, the cursor. */
static void
test_enrich_store(void **state)
{
	char dir[] = "/tmp/vigil-test-intel-XXXXXX", path[256];
	struct intel g;
	struct buf err;
	struct store_rows *r;
	struct ev evs[3];
	json_t *res;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/vigil.db", dir);
	buf_init(&err, 1024);
	memset(&g, 0, sizeof(g));
	g.store = store_open(path, center_migrations, center_nmigrations, &err);
	assert_non_null(g.store);
	assert_int_equal(
	    store_exec(g.store,
	               "INSERT INTO events (agent_id, seq, time, received_at, "
	               "type, level, data) VALUES ('a', 1, 1, 1, 'finding', "
	               "'notice', '{}'), ('a', 2, 1, 1, 'finding', 'notice', "
	               "'{}'), ('a', 3, 1, 1, 'connection', 'info', '{}')"),
	    3);
	memset(evs, 0, sizeof(evs));
	evs[0] = (struct ev){"a", "finding", "notice", 1, 1, 0, 2};
	evs[1] = (struct ev){"a", "finding", "notice", 2, 2, 2, 1};
	evs[2] = (struct ev){"a", "connection", "info", 3, 3, 3, 1};
	res = json_loads(
	    "[{\"indicator\": \"h1\", \"type\": \"sha256\", \"verdict\": "
	    "\"suspicious\", \"score\": 90, \"sources\": [{\"source\": "
	    "\"f\"}]},"
	    " {\"indicator\": \"h2\", \"type\": \"md5\", \"verdict\": "
	    "\"malicious\", \"score\": 60, \"sources\": [{\"source\": \"g\"}]},"
	    " {\"indicator\": \"h3\", \"type\": \"sha256\", \"verdict\": "
	    "\"unknown\", \"score\": null, \"sources\": []},"
	    " {\"indicator\": \"1.2.3.4\", \"type\": \"ip\", \"verdict\": "
	    "\"malicious\", \"score\": 100, \"sources\": [{\"source\": \"g\"}]}"
	    "]",
	    0, NULL);
	assert_non_null(res);
	assert_int_equal(enrich_store(&g, evs, 3, res, 3), 0);
	assert_int_equal(g.cursor, 3);
	r = store_query(g.store,
	                "SELECT e.seq, e.level, i.verdict, COALESCE(i.score, "
	                "-1), i.level_before, i.sources FROM events e JOIN "
	                "event_intel i ON i.agent_id = e.agent_id AND i.seq = "
	                "e.seq ORDER BY e.seq");
	assert_non_null(r);
	/* the worst verdict decides, not the higher score */
	assert_int_equal(store_next(r), 1);
	assert_string_equal(store_text(r, 1), "alert");
	assert_string_equal(store_text(r, 2), "malicious");
	assert_int_equal(store_int(r, 3), 60);
	assert_string_equal(store_text(r, 4), "notice");
	assert_non_null(strstr(store_text(r, 5), "\"indicator\":\"h1\""));
	/* unknown: recorded as checked, level kept */
	assert_int_equal(store_next(r), 1);
	assert_string_equal(store_text(r, 1), "notice");
	assert_string_equal(store_text(r, 2), "unknown");
	assert_int_equal(store_int(r, 3), -1);
	assert_string_equal(store_text(r, 5), "[]");
	/* an event that is no finding keeps its level */
	assert_int_equal(store_next(r), 1);
	assert_string_equal(store_text(r, 1), "info");
	assert_string_equal(store_text(r, 2), "malicious");
	assert_int_equal(store_next(r), 0);
	store_done(r);
	r = store_query(g.store,
	                "SELECT cursor FROM intel_state WHERE name = 'enrich'");
	assert_int_equal(store_next(r), 1);
	assert_int_equal(store_int(r, 0), 3);
	store_done(r);
	json_decref(res);
	store_close(g.store);
	buf_free(&err);
	snprintf(path, sizeof(path), "rm -rf '%s'", dir);
	assert_int_equal(system(path), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_collect),
	    cmocka_unit_test(test_collect_cap),
	    cmocka_unit_test(test_brief),
	    cmocka_unit_test(test_conf),
	    cmocka_unit_test(test_enrich_store),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
