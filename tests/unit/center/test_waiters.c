/*
 * Held long polls (tasks_poll.c's waiters): the table that finds an
 * agent's held poll grows with the polls held (it was a fixed 4,096
 * buckets: with 100,000 polls, chains of 25 and 7 % of the core in
 * strcmp), and every poll is found again after it grew, by its agent.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../src/center/tasks_poll.c"

/* The request handlers are not called here. */
char *
peer_agent_id(struct http_req *r)
{
	(void)r;
	return NULL;
}

void
tasks_wake_drop(struct center *c)
{
	(void)c;
}

void
stream_emit_id(struct center *c, const char *kind, const char *id)
{
	(void)c;
	(void)kind;
	(void)id;
}

/* Inserts a held poll for agent as the poll handler does. */
static struct waiter *
hold(struct center *c, const char *agent)
{
	struct waiter **slot, *w;

	waiters_grow(c);
	slot = waiter_slot(c, agent);
	assert_null(*slot);
	assert_non_null(w = calloc(1, sizeof(*w)));
	w->c = c;
	snprintf(w->agent, sizeof(w->agent), "%s", agent);
	*slot = w;
	c->nwaiters++;
	return w;
}

static void
test_grows_and_finds(void **state)
{
	static struct center c;
	static struct waiter *all[20000];
	char id[40];
	size_t longest = 0, i, n;
	int k;

	(void)state;
	memset(&c, 0, sizeof(c));
	for (k = 0; k < 20000; k++) {
		snprintf(id, sizeof(id), "%08x-0000-4000-8000-%012x", k * 7919,
		         k);
		all[k] = hold(&c, id);
	}
	assert_int_equal(c.nwaiters, 20000);
	assert_true(c.waiter_buckets >= 20000);
	assert_int_equal(c.waiter_buckets & (c.waiter_buckets - 1), 0);
	for (k = 0; k < 20000; k++) {
		assert_ptr_equal(*waiter_slot(&c, all[k]->agent), all[k]);
		assert_true(tasks_holds(&c, all[k]->agent));
	}
	assert_false(tasks_holds(&c, "not-held"));
	for (i = 0; i < c.waiter_buckets; i++) {
		struct waiter *w;

		for (n = 0, w = c.waiters[i]; w != NULL; w = w->next)
			n++;
		if (n > longest)
			longest = n;
	}
	/* A fixed 4,096 buckets would average 4.9 a chain here. */
	assert_true(longest <= 12);
	for (k = 0; k < 20000; k++)
		free(all[k]);
	free(c.waiters);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_grows_and_finds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
