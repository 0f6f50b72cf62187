/*
 * Tests of the core's side of the syslog worker (src/center/syslogin.c,
 * syslogin_relayed) against a worker that is compromised: what it sends
 * over its channel (GWRELAY_SYSLOG) is stored only when every record is
 * well formed, all of a batch or nothing, in a real SQLite store; the
 * sender's address, port and transport in the stored event are the ones
 * of the record's fields, whatever its data claims.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../../src/center/db.c"
#include "../../../src/center/syslogin.c"

/* forward.c, intel.c: nothing to forward or match here. */
void
forward_kick(struct center *c)
{
	(void)c;
}

void
intel_kick(struct center *c)
{
	(void)c;
}

/* gwsandbox.c: the worker's sandbox is not loaded here. */
int
gwworker_landlock(const char *const *paths, size_t n, struct buf *err)
{
	(void)paths;
	(void)n;
	(void)err;
	return 0;
}

int
gwworker_sandbox(struct buf *err)
{
	(void)err;
	return 0;
}

struct fx {
	char dir[64], db[128];
	struct center c;
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct buf err;

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/vigil-test-syslogin.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->db, sizeof(f->db), "%s/vigil.db", f->dir);
	buf_init(&err, 1024);
	f->c.store =
	    store_open(f->db, center_migrations, center_nmigrations, &err);
	if (f->c.store == NULL)
		fail_msg("store_open: %s", buf_cstr(&err));
	f->c.conf.sl_max_message = 65536;
	buf_free(&err);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	char cmd[128];

	store_close(f->c.store);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", f->dir);
	free(f);
	return 0;
}

static void
put_rec(struct buf *b, uint32_t transport, const char *addr, uint32_t port,
        uint32_t sev, uint64_t t, uint32_t kind, const char *data)
{
	struct gwrelay_slrec r = {
	    transport,           port, sev, kind, t, {addr, strlen(addr)},
	    {data, strlen(data)}};

	gwrelay_put_syslog(b, &r);
}

static long long
events(struct fx *f)
{
	struct store_rows *q =
	    store_query(f->c.store, "SELECT COUNT(*) FROM events");
	long long n = -1;

	if (q != NULL && store_next(q) == 1)
		n = store_int(q, 0);
	store_done(q);
	return n;
}

/* A well-formed batch: every record an event of its sender, numbered per
 * sender, with the record's address, port and transport. */
static void
test_stored(void **state)
{
	struct fx *f = *state;
	struct store_rows *q;
	struct buf b;
	long long now = (long long)time(NULL);
	json_t *d;
	int i;

	buf_init(&b, 1 << 20);
	gwrelay_put_u32(&b, 3);
	/* Its data claims another source and transport: not taken. */
	put_rec(&b, GWRELAY_SL_UDP, "192.0.2.7", 51514, 3, 1796000000,
	        GWRELAY_SL_PARSED,
	        "{\"message\":\"one\",\"source\":\"10.9.9.9:1\","
	        "\"transport\":\"tcp\"}");
	put_rec(&b, GWRELAY_SL_TCP, "2001:db8::1", 6514, 6, 0, GWRELAY_SL_RAW,
	        "{\"error\":\"no PRI\",\"raw\":\"two\"}");
	put_rec(&b, GWRELAY_SL_UDP, "192.0.2.7", 51514, 6, 1796000001,
	        GWRELAY_SL_PARSED, "{\"message\":\"three\"}");
	assert_int_equal(buf_ok(&b), 0);
	assert_int_equal(syslogin_relayed(&f->c, b.data, b.len), 0);
	assert_int_equal(events(f), 3);
	q = store_query(f->c.store,
	                "SELECT agent_id, seq, time, type, level, data FROM "
	                "events ORDER BY rowid");
	assert_non_null(q);
	for (i = 0; store_next(q) == 1; i++) {
		d = json_loads(store_text(q, 5), 0, NULL);
		assert_non_null(d);
		switch (i) {
		case 0:
			assert_string_equal(store_text(q, 0),
			                    "syslog:192.0.2.7");
			assert_int_equal(store_int(q, 1), 1);
			assert_int_equal(store_int(q, 2), 1796000000);
			assert_string_equal(store_text(q, 3), "syslog");
			assert_string_equal(store_text(q, 4), "warning");
			assert_string_equal(
			    json_string_value(json_object_get(d, "source")),
			    "192.0.2.7:51514");
			assert_string_equal(
			    json_string_value(json_object_get(d, "transport")),
			    "udp");
			assert_string_equal(
			    json_string_value(json_object_get(d, "message")),
			    "one");
			break;
		case 1:
			assert_string_equal(store_text(q, 0),
			                    "syslog:2001:db8::1");
			assert_int_equal(store_int(q, 1), 1);
			/* No time in the message: when it was received. */
			assert_true(store_int(q, 2) >= now);
			assert_string_equal(store_text(q, 3), "syslog_raw");
			assert_string_equal(store_text(q, 4), "warning");
			assert_string_equal(
			    json_string_value(json_object_get(d, "source")),
			    "2001:db8::1:6514");
			assert_string_equal(
			    json_string_value(json_object_get(d, "transport")),
			    "tcp");
			break;
		case 2:
			assert_string_equal(store_text(q, 0),
			                    "syslog:192.0.2.7");
			assert_int_equal(store_int(q, 1), 2);
			assert_string_equal(store_text(q, 4), "info");
			break;
		}
		json_decref(d);
	}
	store_done(q);
	assert_int_equal(i, 3);
	buf_free(&b);
}

/* A batch with one bad record is refused whole (the worker is then
 * stopped): nothing of it is stored. */
static void
test_refused(void **state)
{
	struct fx *f = *state;
	const char *bad[] = {"[1,2]",   "\"text\"", "null", "{\"a\":1,\"a\":2}",
	                     "{\"a\":", "{} {}"};
	struct buf b;
	size_t i;

	buf_init(&b, 1 << 20);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		buf_reset(&b);
		gwrelay_put_u32(&b, 2);
		put_rec(&b, GWRELAY_SL_UDP, "192.0.2.7", 514, 6, 0,
		        GWRELAY_SL_PARSED, "{\"message\":\"fine\"}");
		put_rec(&b, GWRELAY_SL_UDP, "192.0.2.7", 514, 6, 0,
		        GWRELAY_SL_PARSED, bad[i]);
		if (syslogin_relayed(&f->c, b.data, b.len) != -1)
			fail_msg("data %s was taken", bad[i]);
		assert_int_equal(events(f), 0);
	}
	/* Data larger than an honest worker makes of a message of
	 * max_message (every byte escaped, six each, and the fields): the
	 * core does not even parse it. */
	{
		size_t most = 6 * 480 + 4096, k;
		char *d = malloc(most + 2);

		assert_non_null(d);
		f->c.conf.sl_max_message = 480;
		for (k = 0; k < 2; k++) {
			size_t dl = most + k;

			memset(d, ' ', dl);
			d[0] = '{';
			d[dl - 1] = '}';
			d[dl] = '\0';
			buf_reset(&b);
			gwrelay_put_u32(&b, 1);
			put_rec(&b, GWRELAY_SL_UDP, "192.0.2.7", 514, 6, 0,
			        GWRELAY_SL_PARSED, d);
			assert_int_equal(syslogin_relayed(&f->c, b.data, b.len),
			                 k == 0 ? 0 : -1);
			assert_int_equal(events(f), 1);
		}
		free(d);
		f->c.conf.sl_max_message = 65536;
		assert_int_equal(store_exec(f->c.store, "DELETE FROM events"),
		                 1);
	}
	/* A sender "address" that is none. */
	buf_reset(&b);
	gwrelay_put_u32(&b, 1);
	put_rec(&b, GWRELAY_SL_UDP, "center", 514, 6, 0, GWRELAY_SL_PARSED,
	        "{}");
	assert_int_equal(syslogin_relayed(&f->c, b.data, b.len), -1);
	assert_int_equal(events(f), 0);
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_stored, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
	};

	log_init("test_syslogin", LOG_DEST_STDERR, LOG_LVL_WARN);
	metrics_declare("vigil_syslog_messages_total", METRIC_COUNTER,
	                "syslog messages received by the listener");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
