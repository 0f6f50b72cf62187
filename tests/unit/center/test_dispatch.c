/*
 * A task for many agents reaches the agents whose polls are held
 * (tasks.c's wake queue, tasks_poll.c's tasks_hand_out), against a real
 * SQLite store and the gateway's real route table, the polls relayed as
 * a gateway worker relays them:
 *
 * - every held agent gets the task once, in a reply made once per slice
 *   of the fleet, and its run is marked dispatched;
 * - the loop gets its turn between slices once a turn's time for them is
 *   up (the admin API and the other agents' requests are not held while
 *   the whole fleet is answered);
 * - an agent's report on the task waits for the hand-out to the others
 *   to end (the fleet's reports must not slow it down), then it is
 *   applied and answered;
 * - an agent that took the task with a newer poll does not get it again,
 *   and a run cancelled before its agent was woken is not handed out;
 * - a poll finds the agent's queued runs by the state in the index's
 *   search, not by reading every run the agent ever had;
 * - the task's agents are taken in the order of their ids, so that each
 *   transaction writes the runs' index on the agent in a few pages.
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
#include "../../../src/center/tasks_poll.c"
#include "../../../src/center/tasks_sched.c"
#include "../../../src/center/util.c"
#include <event2/buffer.h>

#include "pki.h"

/* The admin handlers of tasks*.c are not called here: what they use
 * from elsewhere is stubbed, as are the live streams and other nodes. */
#include "tasks_admin_stubs.h"

static int emitted;

void
stream_emit_id(struct center *c, const char *type, const char *id)
{
	(void)c;
	(void)type;
	(void)id;
	emitted++;
}

void
node_task_created(struct center *c, const char *task_id)
{
	(void)c;
	(void)task_id;
}

#define NAGENTS 2500 /* more than two slices */

/* The replies, by relay id (the agent's number; + NAGENTS for a second
 * poll). */
struct reply {
	int n, status;
	char body[1024];
};
#define REPORT_ID (2 * NAGENTS) /* agent 0's report */
static struct reply replies[2 * NAGENTS + 1];

static void
on_reply(void *ctx, uint64_t id, int status, struct evkeyvalq *headers,
         struct evbuffer *body, int fd, size_t flen)
{
	struct reply *r = &replies[id];

	(void)ctx;
	(void)headers;
	(void)flen;
	assert_true(id <= REPORT_ID);
	assert_int_equal(fd, -1);
	r->n++;
	r->status = status;
	snprintf(r->body, sizeof(r->body), "%.*s",
	         (int)evbuffer_get_length(body),
	         (const char *)evbuffer_pullup(body, -1));
}

struct fx {
	char dir[64];
	struct center c;
	EVP_PKEY *key;
	X509 *cert[NAGENTS];
};

static void
agent_name(int i, char *out, size_t n)
{
	snprintf(out, n, "00000000-0000-4000-8000-%012d", i);
}

/* Agent i polls (GET /v1/tasks?wait=30) with its certificate. */
static void
poll_as(struct fx *f, int i, uint64_t id)
{
	struct http_relay_in in;

	memset(&in, 0, sizeof(in));
	in.method = "GET";
	in.uri = "/v1/tasks?wait=30";
	in.peer_addr = "192.0.2.1";
	in.peer = f->cert[i];
	in.tls = 1;
	assert_int_equal(http_server_relay(f->c.gw, &in, on_reply, NULL, id),
	                 0);
}

/* Agent i reports task running. */
static void
report_as(struct fx *f, int i, const char *task, uint64_t id)
{
	static const char body[] = "{\"state\": \"running\"}";
	struct http_relay_in in;
	char uri[128];

	snprintf(uri, sizeof(uri), "/v1/tasks/%s", task);
	memset(&in, 0, sizeof(in));
	in.method = "POST";
	in.uri = uri;
	in.peer_addr = "192.0.2.1";
	in.peer = f->cert[i];
	in.tls = 1;
	in.body = (const uint8_t *)body;
	in.body_len = sizeof(body) - 1;
	assert_int_equal(http_server_relay(f->c.gw, &in, on_reply, NULL, id),
	                 0);
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct http_limits lim;
	struct buf err;
	char path[128], name[64];
	int i, k;

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/vigil-test-dispatch.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(path, sizeof(path), "%s/vigil.db", f->dir);
	buf_init(&err, 1024);
	f->c.store =
	    store_open(path, center_migrations, center_nmigrations, &err);
	if (f->c.store == NULL)
		fail_msg("store_open: %s", buf_cstr(&err));
	buf_free(&err);
	assert_non_null(f->c.base = event_base_new());
	f->c.conf.gw_timeout = 60;
	f->c.conf.max_long_polls = 2 * NAGENTS;
	memset(&lim, 0, sizeof(lim));
	lim.max_body = 1 << 20;
	assert_non_null(f->c.gw = http_server_new(f->c.base, NULL,
	                                          tasks_gateway_routes, &f->c,
	                                          &lim, NULL));
	assert_int_equal(tasks_init(&f->c), 0);
	/* Only the CN is read: one key for all. */
	assert_non_null(f->key = pki_genkey());
	assert_int_equal(store_begin(f->c.store), 0);
	/* Enrolled in another order than their ids'. */
	for (k = 0; k < NAGENTS; k++) {
		i = (k * 7) % NAGENTS;
		agent_name(i, name, sizeof(name));
		assert_non_null(f->cert[i] = pki_make_ca(f->key, name, 30));
		assert_int_equal(
		    store_exec(f->c.store,
		               "INSERT INTO agents (id, status, labels, "
		               "enrolled_at) VALUES (?, 'active', '{}', 1)",
		               S_TEXT(name)),
		    1);
	}
	assert_int_equal(store_commit(f->c.store), 0);
	memset(replies, 0, sizeof(replies));
	emitted = 0;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	char cmd[128];
	int i;

	tasks_shutdown(&f->c);
	if (f->c.ev_tick != NULL)
		event_free(f->c.ev_tick);
	if (f->c.ev_wake != NULL)
		event_free(f->c.ev_wake);
	if (f->c.ev_status != NULL)
		event_free(f->c.ev_status);
	http_server_free(f->c.gw);
	store_close(f->c.store);
	event_base_free(f->c.base);
	for (i = 0; i < NAGENTS; i++)
		X509_free(f->cert[i]);
	EVP_PKEY_free(f->key);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static long long
count_runs(struct fx *f, const char *task, const char *state)
{
	struct store_rows *q;
	long long n = -1;

	q = store_query(f->c.store,
	                "SELECT count(*) FROM task_runs WHERE task_id = ? AND "
	                "state = ?",
	                S_TEXT(task), S_TEXT(state));
	if (q != NULL && store_next(q) == 1)
		n = store_int(q, 0);
	store_done(q);
	return n;
}

static int
answered(void)
{
	int i, n = 0;

	for (i = 0; i < NAGENTS; i++)
		n += replies[i].n;
	return n;
}

static void
test_fleet_task(void **state)
{
	struct fx *f = *state;
	struct buf err;
	char task[37], name[64], want[128];
	json_t *spec, *body, *t;
	int i, turns = 0, before;

	for (i = 0; i < NAGENTS; i++)
		poll_as(f, i, (uint64_t)i);
	assert_int_equal(f->c.nwaiters, NAGENTS);
	assert_int_equal(answered(), 0);

	buf_init(&err, 1024);
	spec = json_pack("{s:s, s:{s:b}}", "kind", "inventory", "target", "all",
	                 1);
	assert_int_equal(tasks_create(&f->c, spec, "test", NULL, task, &err),
	                 NAGENTS);
	json_decref(spec);
	buf_free(&err);
	/* Queued for waking, not answered within the admin request, in the
	 * order of the agents' ids (the store's index on them is written in
	 * neighbouring pages). */
	assert_int_equal(answered(), 0);
	assert_non_null(f->c.wake_head);
	assert_int_equal(f->c.wake_head->n, NAGENTS);
	for (i = 1; i < NAGENTS; i++)
		assert_true(strcmp(f->c.wake_head->agents[i - 1],
		                   f->c.wake_head->agents[i]) < 0);

	/* Agent 7 polls again before it is woken and takes the task with
	 * that poll; agent 9's run is cancelled before it is woken. */
	poll_as(f, 7, (uint64_t)(NAGENTS + 7));
	assert_int_equal(replies[NAGENTS + 7].n, 1);
	snprintf(want, sizeof(want), "\"id\":\"%s\"", task);
	assert_non_null(strstr(replies[NAGENTS + 7].body, want));
	agent_name(9, name, sizeof(name));
	assert_int_equal(store_exec(f->c.store,
	                            "UPDATE task_runs SET state = 'cancelled' "
	                            "WHERE task_id = ? AND agent_id = ?",
	                            S_TEXT(task), S_TEXT(name)),
	                 1);

	/* A turn of the loop answers a slice at least, and yields when its
	 * time is up (none here: one slice a turn). */
	emitted = 0;
	wake_turn_secs = 0;
	assert_int_equal(event_base_loop(f->c.base, EVLOOP_ONCE), 0);
	before = answered();
	assert_true(before > 0);
	assert_true(before <= WAKE_SLICE);
	/* Agent 0 has it and reports: its report waits for the hand-out
	 * to the others to end, then it is applied and answered. */
	assert_int_equal(replies[0].n, 1);
	report_as(f, 0, task, REPORT_ID);
	/* Meanwhile no run is timed out: the report waiting says agent 0's
	 * is running (the second's sweep, as if the timeout were over). */
	assert_int_equal(store_exec(f->c.store,
	                            "UPDATE tasks SET timeout = 0 WHERE id = ?",
	                            S_TEXT(task)),
	                 1);
	tick(-1, 0, &f->c);
	assert_int_equal(count_runs(f, task, "failed"), 0);
	assert_int_equal(
	    store_exec(f->c.store,
	               "UPDATE tasks SET timeout = 3600 WHERE id = ?",
	               S_TEXT(task)),
	    1);
	while (f->c.wake_head != NULL && turns++ < 100) {
		assert_int_equal(event_base_loop(f->c.base, EVLOOP_ONCE), 0);
		if (f->c.wake_head != NULL)
			assert_int_equal(replies[REPORT_ID].n, 0);
	}
	assert_null(f->c.wake_head);
	assert_true(turns >= 2);
	if (replies[REPORT_ID].n == 0)
		assert_int_equal(event_base_loop(f->c.base, EVLOOP_NONBLOCK),
		                 0);
	assert_int_equal(replies[REPORT_ID].n, 1);
	assert_int_equal(replies[REPORT_ID].status, 200);
	assert_int_equal(count_runs(f, task, "running"), 1);

	for (i = 0; i < NAGENTS; i++) {
		if (i == 7 || i == 9) {
			/* Its first poll stays held; nothing sent twice. */
			assert_int_equal(replies[i].n, 0);
			continue;
		}
		assert_int_equal(replies[i].n, 1);
		assert_int_equal(replies[i].status, 200);
		assert_non_null(body = json_loads(replies[i].body, 0, NULL));
		assert_int_equal(
		    json_array_size(json_object_get(body, "tasks")), 1);
		t = json_array_get(json_object_get(body, "tasks"), 0);
		assert_string_equal(json_string_value(json_object_get(t, "id")),
		                    task);
		assert_string_equal(
		    json_string_value(json_object_get(t, "kind")), "inventory");
		assert_true(json_is_object(json_object_get(t, "params")));
		assert_int_equal(
		    json_integer_value(json_object_get(t, "timeout")), 3600);
		assert_true(json_integer_value(json_object_get(t, "deadline")) >
		            time(NULL));
		json_decref(body);
	}
	assert_int_equal(count_runs(f, task, "dispatched"), NAGENTS - 2);
	assert_int_equal(count_runs(f, task, "cancelled"), 1);
	assert_int_equal(count_runs(f, task, "queued"), 0);
	assert_int_equal(f->c.nwaiters, 2);
	/* One live update a slice, not one an agent (and one for the
	 * report). */
	assert_int_equal(emitted, (NAGENTS + WAKE_SLICE - 1) / WAKE_SLICE + 1);
}

static void
test_poll_skips_history(void **state)
{
	struct fx *f = *state;
	struct store_rows *q;
	char name[64], id[64], plan[1024] = "";
	json_t *got;
	int i;

	/* Agent 3 ran 300 tasks in the past, and one is queued now. */
	agent_name(3, name, sizeof(name));
	assert_int_equal(store_begin(f->c.store), 0);
	for (i = 0; i <= 300; i++) {
		snprintf(id, sizeof(id), "task-%03d", i);
		assert_int_equal(
		    store_exec(
		        f->c.store,
		        "INSERT INTO tasks (id, kind, params, target, "
		        "created_at, created_by, timeout, expires_at) "
		        "VALUES (?, 'inventory', '{}', '{}', ?, 't', 60, "
		        "?)",
		        S_TEXT(id), S_INT(i), S_INT(time(NULL) + 3600)),
		    1);
		assert_int_equal(
		    store_exec(
		        f->c.store,
		        "INSERT INTO task_runs (task_id, agent_id, state, "
		        "updated_at) VALUES (?, ?, ?, 1)",
		        S_TEXT(id), S_TEXT(name),
		        S_TEXT(i < 300 ? "done" : "queued")),
		    1);
	}
	assert_int_equal(store_commit(f->c.store), 0);
	got = take_runs(&f->c, name);
	assert_int_equal(json_array_size(got), 1);
	assert_string_equal(
	    json_string_value(json_object_get(json_array_get(got, 0), "id")),
	    "task-300");
	json_decref(got);
	/* The search names the state: the 300 finished runs are not read. */
	q = store_query(f->c.store, "EXPLAIN QUERY PLAN " TAKE_RUNS_SQL,
	                S_TEXT(name), S_INT(0), S_INT(DISPATCH_MAX));
	while (q != NULL && store_next(q) == 1)
		if (strstr(store_text(q, 3), " r ") != NULL)
			snprintf(plan, sizeof(plan), "%s", store_text(q, 3));
	store_done(q);
	assert_non_null(
	    strstr(plan, "task_runs_agent (agent_id=? AND state=?)"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_fleet_task, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_poll_skips_history, setup,
	                                    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
