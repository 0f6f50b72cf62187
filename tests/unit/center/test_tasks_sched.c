/*
 * Schedules fire once per matching minute, however many vigild nodes
 * share the store (docs/scale-out.md): two centers on one database run
 * the schedules of the same minute, the second while the first is between
 * its two schedules, and each schedule makes one task. Against a real
 * SQLite file (the claim is one conditional UPDATE, the same SQL on both
 * back ends, serialised by the writers' lock on PostgreSQL).
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

#include "../../../src/center/cron.c"
#include "../../../src/center/db.c"
#include "../../../src/center/tasks.c"
#include "../../../src/center/tasks_sched.c"
#include "../../../src/center/util.c"

/* The admin handlers of tasks*.c are not called here: what they use
 * from elsewhere is stubbed, as are the live streams. */
#include "tasks_admin_stubs.h"

/* Called by tasks_create once a task is committed: there the test lets
 * the other node run the same minute's schedules (the interleaving of
 * two nodes that both found the schedules due). */
static struct center *g_other;
static long long g_other_now;

void
stream_emit_id(struct center *c, const char *type, const char *id)
{
	struct center *o = g_other;

	(void)c;
	(void)type;
	(void)id;
	if (o != NULL) {
		g_other = NULL;
		tasks_run_schedules(o, g_other_now);
	}
}

/* One node on SQLite: no held polls, nothing to notify. */
void
tasks_status_resume(struct center *c)
{
	(void)c;
}

int
tasks_hand_out(struct center *c, const char *agent, const char *task,
               const char *body, size_t len, long long now)
{
	(void)c;
	(void)agent;
	(void)task;
	(void)body;
	(void)len;
	(void)now;
	return 0;
}

void
node_task_created(struct center *c, const char *task_id)
{
	(void)c;
	(void)task_id;
}

static void
test_fires_once(void **state)
{
	struct center a, b;
	struct store_rows *q;
	struct buf err;
	char dir[64] = "/tmp/vigil-sched.XXXXXX", path[128];
	long long minute = 1796000040 - 1796000040 % 60;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/vigil.db", dir);
	buf_init(&err, 1024);
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	a.store = store_open(path, center_migrations, center_nmigrations, &err);
	b.store = store_open(path, center_migrations, center_nmigrations, &err);
	assert_non_null(a.store);
	assert_non_null(b.store);
	assert_int_equal(
	    store_exec(a.store,
	               "INSERT INTO agents (id, status, labels, enrolled_at) "
	               "VALUES ('ag1', 'active', '{}', 1)"),
	    1);
	assert_int_equal(
	    store_exec(a.store,
	               "INSERT INTO schedules (id, name, cron, spec, enabled, "
	               "created_at) SELECT 's' || n, 'every' || n, "
	               "'* * * * *', '{\"kind\": \"inventory\", \"target\": "
	               "{\"all\": true}}', 1, 1 FROM (SELECT 1 AS n UNION "
	               "SELECT 2)"),
	    2);
	/* Node a finds both due; after its first task, node b runs the
	 * same minute (it finds the second still due). */
	g_other = &b;
	g_other_now = minute + 2;
	tasks_run_schedules(&a, minute + 1);
	q = store_query(b.store, "SELECT schedule_id, COUNT(*) FROM tasks "
	                         "GROUP BY schedule_id ORDER BY 1");
	assert_int_equal(store_next(q), 1);
	assert_string_equal(store_text(q, 0), "s1");
	assert_int_equal(store_int(q, 1), 1);
	assert_int_equal(store_next(q), 1);
	assert_string_equal(store_text(q, 0), "s2");
	assert_int_equal(store_int(q, 1), 1);
	assert_int_equal(store_next(q), 0);
	store_done(q);
	/* The next minute fires each again, once. */
	tasks_run_schedules(&b, minute + 61);
	tasks_run_schedules(&a, minute + 62);
	q = store_query(a.store, "SELECT COUNT(*) FROM tasks");
	assert_int_equal(store_next(q), 1);
	assert_int_equal(store_int(q, 0), 4);
	store_done(q);
	store_close(a.store);
	store_close(b.store);
	buf_free(&err);
	snprintf(path, sizeof(path), "rm -rf '%s'", dir);
	assert_int_equal(system(path), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fires_once),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
