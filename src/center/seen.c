/*
 * seen.c: agents' last check-in, kept in memory and written in batches.
 *
 * A heartbeat that brings nothing new but the time costs no store write of
 * its own: the time is noted here, and every [center] seen_flush one
 * transaction writes the times of every agent noted since. A heartbeat with
 * facts that changed (host name, addresses, version, source address...),
 * and one that brings an agent back online are written at once by the
 * gateway, as before. An agent's first heartbeat since the center started
 * is compared with the facts in its row (seen_prime): after a restart a
 * fleet checking in again costs no write each. A crash loses at most one
 * interval of last_seen, never an event or a fact.
 *
 * The table is keyed by agent id (ids are the center's own UUIDs, not
 * chosen by clients) with open addressing; it holds one entry per agent
 * seen since the start, so its size follows the fleet, not the traffic.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "center.h"
#include "log.h"
#include "metrics.h"
#include "store.h"

struct seen_ent {
	char *id;       /* NULL: free slot */
	long long t;    /* last check-in noted */
	uint64_t facts; /* digest of the facts last written */
	int dirty;      /* t not written yet */
};

struct seen {
	struct seen_ent *tab;
	size_t cap, n, ndirty;
	struct event *ev;
};

static struct seen *g_seen;

static uint64_t
fnv1a(const char *s, uint64_t h)
{
	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

uint64_t
seen_digest(const char *const *fields, size_t n)
{
	uint64_t h = 14695981039346656037ULL;
	size_t i;

	for (i = 0; i < n; i++) {
		h = fnv1a(fields[i] != NULL ? fields[i] : "\x01", h);
		h = fnv1a("\x1f", h); /* field separator */
	}
	return h;
}

static struct seen_ent *
slot(struct seen *s, const char *id)
{
	size_t i = (size_t)fnv1a(id, 14695981039346656037ULL) & (s->cap - 1);

	while (s->tab[i].id != NULL && strcmp(s->tab[i].id, id) != 0)
		i = (i + 1) & (s->cap - 1);
	return &s->tab[i];
}

static int
grow(struct seen *s)
{
	struct seen_ent *old = s->tab;
	size_t oldcap = s->cap, i;

	s->cap = oldcap ? oldcap * 2 : 1024;
	if ((s->tab = calloc(s->cap, sizeof(*s->tab))) == NULL) {
		s->tab = old;
		s->cap = oldcap;
		return -1;
	}
	for (i = 0; i < oldcap; i++)
		if (old[i].id != NULL)
			*slot(s, old[i].id) = old[i];
	free(old);
	return 0;
}

static void
publish(const struct seen *s)
{
	metrics_set("vigil_last_seen_pending", NULL, (double)s->ndirty);
}

struct flush_arg {
	const struct seen *s;
	size_t *idx;
};

static void
fill(void *arg, size_t i, struct store_arg *v)
{
	struct flush_arg *a = arg;
	const struct seen_ent *e = &a->s->tab[a->idx[i]];

	v[0] = S_INT(e->t);
	v[1] = S_TEXT(e->id);
	v[2] = S_INT(e->t);
}

void
seen_flush(struct center *c)
{
	struct seen *s = g_seen;
	struct flush_arg a;
	size_t i, k = 0;

	if (s == NULL || s->ndirty == 0)
		return;
	if ((a.idx = calloc(s->ndirty, sizeof(*a.idx))) == NULL)
		return; /* the next tick tries again */
	for (i = 0; i < s->cap && k < s->ndirty; i++)
		if (s->tab[i].id != NULL && s->tab[i].dirty)
			a.idx[k++] = i;
	a.s = s;
	/* A later time written by anyone else (the gateway's own write of
	 * changed facts) is never taken back. */
	if (store_begin(c->store) == 0 &&
	    store_exec_each(c->store,
	                    "UPDATE agents SET last_seen = ? WHERE id = ? AND "
	                    "(last_seen IS NULL OR last_seen < ?)",
	                    3, k, fill, &a) >= 0 &&
	    store_commit(c->store) == 0) {
		for (i = 0; i < k; i++)
			s->tab[a.idx[i]].dirty = 0;
		s->ndirty = 0;
		metrics_add("vigil_last_seen_flushes_total", NULL, 1);
	} else {
		store_rollback(c->store);
		log_warnx("seen: %zu check-in times not written (%s); kept "
		          "for the next try",
		          k, store_last_error(c->store));
	}
	free(a.idx);
	publish(s);
}

/* Never longer than poll_interval: agent lists and the offline check read
 * last_seen from the store, and an agent is online while it is within
 * three poll intervals; a time held back longer would show it offline. */
static long long
interval(const struct center *c)
{
	long long i = c->conf.seen_flush;

	return i > c->conf.poll_interval ? c->conf.poll_interval : i;
}

static void
tick(evutil_socket_t fd, short what, void *arg)
{
	struct center *c = arg;
	struct timeval tv = {1, 0};

	(void)fd;
	(void)what;
	seen_flush(c);
	if (g_seen == NULL || g_seen->ev == NULL)
		return;
	/* Re-armed each time: a reload may change either setting (0 then
	 * still flushes each second what was noted before it). */
	if (interval(c) > 0)
		tv.tv_sec = interval(c);
	event_add(g_seen->ev, &tv);
}

int
seen_init(struct center *c)
{
	struct timeval tv = {interval(c), 0};

	if ((g_seen = calloc(1, sizeof(*g_seen))) == NULL || grow(g_seen) == -1)
		return -1;
	metrics_declare("vigil_last_seen_pending", METRIC_GAUGE,
	                "agents whose last check-in waits for the next write");
	metrics_declare("vigil_last_seen_flushes_total", METRIC_COUNTER,
	                "batched writes of agents' check-in times");
	publish(g_seen);
	if (c->conf.seen_flush == 0)
		tv.tv_sec = 1; /* every heartbeat is written at once */
	if (c->conf.seen_flush > c->conf.poll_interval)
		log_warnx("seen: seen_flush (%lld s) is longer than "
		          "poll_interval (%lld s); flushing every %lld s",
		          c->conf.seen_flush, c->conf.poll_interval,
		          c->conf.poll_interval);
	g_seen->ev = evtimer_new(c->base, tick, c);
	if (g_seen->ev == NULL || event_add(g_seen->ev, &tv) == -1)
		return -1;
	return 0;
}

void
seen_shutdown(struct center *c)
{
	size_t i;

	if (g_seen == NULL)
		return;
	if (g_seen->ev != NULL)
		event_free(g_seen->ev);
	seen_flush(c);
	for (i = 0; i < g_seen->cap; i++)
		free(g_seen->tab[i].id);
	free(g_seen->tab);
	free(g_seen);
	g_seen = NULL;
}

long long
seen_last(const char *id)
{
	struct seen_ent *e;

	if (g_seen == NULL)
		return 0;
	e = slot(g_seen, id);
	return e->id != NULL ? e->t : 0;
}

int
seen_note(struct center *c, const char *id, long long now, uint64_t facts,
          int force)
{
	struct seen *s = g_seen;
	struct seen_ent *e;

	if (s == NULL)
		return 1;
	if ((s->n + 1) * 2 > s->cap && grow(s) == -1)
		return 1; /* no memory: written at once, as before */
	e = slot(s, id);
	if (e->id == NULL) {
		if ((e->id = strdup(id)) == NULL)
			return 1;
		s->n++;
		force = 1; /* first since the start: facts unknown here */
	}
	if (now > e->t)
		e->t = now;
	if (force || e->facts != facts || c->conf.seen_flush == 0) {
		if (e->dirty) {
			e->dirty = 0; /* the caller writes the time too */
			s->ndirty--;
			publish(s);
		}
		return 1;
	}
	if (!e->dirty) {
		e->dirty = 1;
		s->ndirty++;
		publish(s);
	}
	return 0;
}

int
seen_prime(const char *id, uint64_t facts)
{
	struct seen *s = g_seen;
	struct seen_ent *e;

	if (s == NULL)
		return -1;
	if ((s->n + 1) * 2 > s->cap && grow(s) == -1)
		return -1;
	e = slot(s, id);
	if (e->id != NULL)
		return 0; /* noted already: its digest is newer */
	if ((e->id = strdup(id)) == NULL)
		return -1;
	s->n++;
	e->facts = facts;
	return 0;
}

void
seen_wrote(const char *id, uint64_t facts)
{
	struct seen_ent *e;

	if (g_seen == NULL)
		return;
	e = slot(g_seen, id);
	if (e->id != NULL)
		e->facts = facts;
}
