/*
 * node.c: several vigild nodes on one PostgreSQL database
 * (docs/scale-out.md).
 *
 * Each node has a name ([center] node_name, or hostname:gateway port) and
 * writes a row of the nodes table every NODE_BEAT seconds: its addresses,
 * the agents it holds (task polls held open) and the leases it holds. A
 * node whose row is older than [center] node_lease (and a beat) is taken
 * for dead.
 *
 * Work that must happen on one node at a time (a forwarding target) is
 * guarded by a lease: a row of the leases table naming its holder and
 * when it expires. The holder renews it every second; another node takes
 * it over once it has expired, i.e. [center] node_lease after its holder
 * stopped renewing (killed, cut off from the database). Every write on
 * PostgreSQL takes the writers' lock (store_pg.h), so a renewal and a
 * takeover never interleave, and work guarded by a lease confirms it in
 * the same statement that records its progress (forward.c's cursor).
 * Clocks of the nodes must agree (NTP) to much better than node_lease.
 *
 * A task created on one node must reach agents whose poll another node
 * holds: the creating transaction sends NOTIFY vigil_tasks with the task's
 * id (delivered when it commits, never for a rollback); every node LISTENs
 * on a connection of its own, read from the event loop, and answers the
 * polls it holds for that task. While that connection is down the node
 * looks for new tasks every second instead, and reconnects.
 *
 * On SQLite there is one node: no rows, every lease is held, no
 * notifications; the API still shows the node.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "center.h"
#include "metrics.h"
#include "tasks.h"

#define NODE_BEAT 2 /* seconds between heartbeats */
/* A lease not renewed for [center] node_lease expires; a node whose
 * heartbeat is older than that (and a beat) is taken for dead. */
#define NODE_LEASE(c) ((c)->conf.node_lease)
#define NODE_DEAD(c)  ((c)->conf.node_lease + NODE_BEAT)
#define NODE_RELISTEN 5 /* seconds between attempts to LISTEN again */
#define NODE_CHANNEL  "vigil_tasks"

struct node {
	struct center *c;
	char name[300];
	char address[300];
	char url[600]; /* [center] node_url with the port, or "" */
	long long started;
	struct event *ev_beat;
	struct store_listener *listener;
	struct event *ev_listen; /* the listener's socket */
	struct event *ev_poll;   /* fallback: every second while it is down */
	long long polled_upto;   /* tasks created before this were seen */
	long long listen_retry;  /* when to try LISTEN again */
	double notified, polled;
};

static int
multinode(const struct center *c)
{
	return c->node != NULL && store_is_pg(c->store);
}

const char *
node_name(const struct center *c)
{
	return c->node != NULL ? c->node->name : "";
}

/* --- leases ------------------------------------------------------------ */

int
node_lease(struct center *c, const char *name)
{
	long long now = (long long)time(NULL);
	int n;

	if (!store_is_pg(c->store))
		return 1;
	if (c->node == NULL)
		return 0; /* not started, or stopping */
	n = store_exec(
	    c->store,
	    "UPDATE leases SET node = ?, expires_at = ? WHERE name = "
	    "? AND (node = ? OR expires_at < ?)",
	    S_TEXT(c->node->name), S_INT(now + NODE_LEASE(c)), S_TEXT(name),
	    S_TEXT(c->node->name), S_INT(now));
	if (n == 0)
		n = store_exec(c->store,
		               "INSERT INTO leases (name, node, expires_at) "
		               "VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING",
		               S_TEXT(name), S_TEXT(c->node->name),
		               S_INT(now + NODE_LEASE(c)));
	return n == 1;
}

void
node_release(struct center *c, const char *name)
{
	if (!multinode(c))
		return;
	store_exec(c->store, "DELETE FROM leases WHERE name = ? AND node = ?",
	           S_TEXT(name), S_TEXT(c->node->name));
}

/* --- preferred nodes ------------------------------------------------- */

int
node_url_ok(const char *url)
{
	const char *host;
	size_t len;

	if (strncmp(url, "https://", 8) != 0)
		return 0;
	host = url + 8;
	len = strlen(host);
	while (len > 0 && host[len - 1] == '/')
		len--;
	return len > 0 && len <= 500 && host[0] != '/' &&
	       memchr(host, '/', len) == NULL &&
	       strpbrk(host, "?#@ \t") == NULL;
}

char *
node_preferred(struct center *c)
{
	struct store_rows *q;
	char *url = NULL;

	if (!multinode(c))
		return NULL;
	/* The live node with the fewest agents (held polls, at its last
	 * heartbeat); ties by name, so every node picks alike. */
	q = store_query(c->store,
	                "SELECT url FROM nodes WHERE url IS NOT NULL AND "
	                "last_seen >= ? ORDER BY agents, name LIMIT 1",
	                S_INT((long long)time(NULL) - 3 * NODE_BEAT));
	if (q != NULL && store_next(q) == 1 && store_text(q, 0) != NULL)
		url = strdup(store_text(q, 0));
	store_done(q);
	return url;
}

/* --- task notifications ----------------------------------------------- */

void
node_task_created(struct center *c, const char *task_id)
{
	struct store_rows *q;

	if (!multinode(c))
		return;
	/* Sent when the transaction around it commits, to every node (this
	 * one too: its own polls were answered already, the reply is
	 * empty-handed and harmless). */
	q = store_query(c->store, "SELECT pg_notify('" NODE_CHANNEL "', ?)",
	                S_TEXT(task_id));
	store_done(q);
}

/* Answers the polls this node holds for the queued runs of task_id. */
static void
wake_task(struct center *c, const char *task_id)
{
	struct store_rows *q;
	char **agents = NULL;
	size_t n = 0, cap = 0;

	if (c->nwaiters == 0)
		return;
	q = store_query(c->store,
	                "SELECT agent_id FROM task_runs WHERE task_id = ? AND "
	                "state = 'queued'",
	                S_TEXT(task_id));
	while (q != NULL && store_next(q) == 1) {
		if (!tasks_holds(c, store_text(q, 0)))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			if ((agents = realloc(agents, cap * sizeof(*agents))) ==
			    NULL)
				fatalx("%s: out of memory", __func__);
		}
		if ((agents[n++] = strdup(store_text(q, 0))) == NULL)
			fatalx("%s: out of memory", __func__);
	}
	store_done(q);
	tasks_wake_queue(c, task_id, agents, n);
}

/* "s NODE KIND DATA": a live update for the consoles (stream.c). */
#define NODE_STREAM_PREFIX "s "

int
node_shares_streams(const struct center *c)
{
	return multinode(c);
}

void
node_stream_notify(struct center *c, const char *kind, const char *data)
{
	struct store_rows *q;
	struct buf msg;

	if (!multinode(c))
		return;
	buf_init(&msg, 512);
	buf_printf(&msg, NODE_STREAM_PREFIX "%s %s %s", c->node->name, kind,
	           data);
	/* PostgreSQL takes up to 8000 bytes; an event that large (none is,
	 * today) reaches the other nodes' consoles at their next reload. */
	if (buf_ok(&msg) == 0 && msg.len < 7900) {
		q = store_query(c->store,
		                "SELECT pg_notify('" NODE_CHANNEL "', ?)",
		                S_TEXT(buf_cstr(&msg)));
		store_done(q);
	}
	buf_free(&msg);
}

/* Another node's live update: for this node's consoles. */
static void
stream_notified(struct center *c, const char *p)
{
	char node[128], kind[32];
	const char *sp1, *sp2;

	if ((sp1 = strchr(p, ' ')) == NULL ||
	    (size_t)(sp1 - p) >= sizeof(node) ||
	    (sp2 = strchr(sp1 + 1, ' ')) == NULL ||
	    (size_t)(sp2 - sp1 - 1) >= sizeof(kind))
		return;
	memcpy(node, p, (size_t)(sp1 - p));
	node[sp1 - p] = '\0';
	memcpy(kind, sp1 + 1, (size_t)(sp2 - sp1 - 1));
	kind[sp2 - sp1 - 1] = '\0';
	if (strcmp(node, c->node->name) == 0)
		return; /* sent to this node's consoles already */
	stream_remote(c, kind, sp2 + 1);
}

static void
notified(void *arg, const char *payload)
{
	struct center *c = arg;

	if (strncmp(payload, NODE_STREAM_PREFIX,
	            sizeof(NODE_STREAM_PREFIX) - 1) == 0) {
		stream_notified(c, payload + sizeof(NODE_STREAM_PREFIX) - 1);
		return;
	}
	c->node->notified++;
	metrics_set("vigil_node_notifications_total", NULL, c->node->notified);
	wake_task(c, payload);
}

/* The tasks created since the last look (fallback, and catching up on
 * what was sent while the listener was down). */
static void
poll_tasks(struct center *c)
{
	struct node *nd = c->node;
	long long now = (long long)time(NULL);
	struct store_rows *q;
	char **ids = NULL;
	size_t n = 0, i;

	q = store_query(c->store,
	                "SELECT id FROM tasks WHERE created_at >= ? ORDER BY "
	                "created_at LIMIT 1000",
	                S_INT(nd->polled_upto - 1));
	while (q != NULL && store_next(q) == 1) {
		if ((ids = realloc(ids, (n + 1) * sizeof(*ids))) == NULL ||
		    (ids[n] = strdup(store_text(q, 0))) == NULL)
			fatalx("%s: out of memory", __func__);
		n++;
	}
	if (q != NULL)
		nd->polled_upto = now;
	store_done(q);
	for (i = 0; i < n; i++) {
		wake_task(c, ids[i]);
		free(ids[i]);
	}
	free(ids);
	nd->polled++;
	metrics_set("vigil_node_task_polls_total", NULL, nd->polled);
}

static void listen_start(struct center *c);

static void
listen_stop(struct center *c)
{
	struct node *nd = c->node;

	if (nd->ev_listen != NULL) {
		event_free(nd->ev_listen);
		nd->ev_listen = NULL;
	}
	store_listener_close(nd->listener);
	nd->listener = NULL;
	metrics_set("vigil_node_listening", NULL, 0);
}

static void
listen_cb(evutil_socket_t fd, short what, void *arg)
{
	struct center *c = arg;

	(void)fd;
	(void)what;
	if (store_listener_read(c->node->listener, notified, c) == 0)
		return;
	log_warnx("node: lost the notification connection to PostgreSQL; "
	          "looking for new tasks every second until it is back");
	listen_stop(c);
	c->node->polled_upto = (long long)time(NULL) - NODE_BEAT;
	c->node->listen_retry = (long long)time(NULL) + NODE_RELISTEN;
}

static void
listen_start(struct center *c)
{
	struct node *nd = c->node;
	struct buf err;

	buf_init(&err, 1024);
	nd->listener = store_listen(c->conf.store_url, NODE_CHANNEL, &err);
	if (nd->listener == NULL) {
		log_warnx("node: LISTEN %s: %s; looking for new tasks every "
		          "second instead",
		          NODE_CHANNEL, buf_cstr(&err));
		nd->listen_retry = (long long)time(NULL) + NODE_RELISTEN;
		buf_free(&err);
		return;
	}
	buf_free(&err);
	nd->ev_listen = event_new(c->base, store_listener_fd(nd->listener),
	                          EV_READ | EV_PERSIST, listen_cb, c);
	if (nd->ev_listen == NULL || event_add(nd->ev_listen, NULL) == -1)
		fatalx("%s: cannot watch the listener", __func__);
	metrics_set("vigil_node_listening", NULL, 1);
	/* What was created while nobody listened. */
	poll_tasks(c);
}

static void
poll_cb(evutil_socket_t fd, short what, void *arg)
{
	struct center *c = arg;
	struct node *nd = c->node;

	(void)fd;
	(void)what;
	if (nd->listener != NULL)
		return;
	if ((long long)time(NULL) >= nd->listen_retry) {
		listen_start(c);
		if (nd->listener != NULL)
			return;
	}
	poll_tasks(c);
}

/* --- heartbeat and metrics ------------------------------------------- */

static void
beat(struct center *c)
{
	struct node *nd = c->node;
	long long now = (long long)time(NULL);
	struct store_rows *q;
	int leases = 0, alive = 0;

	q = store_query(c->store,
	                "SELECT COUNT(*) FROM leases WHERE node = ? AND "
	                "expires_at >= ?",
	                S_TEXT(nd->name), S_INT(now));
	if (q != NULL && store_next(q) == 1)
		leases = (int)store_int(q, 0);
	store_done(q);
	store_exec(c->store,
	           "INSERT INTO nodes (name, address, started_at, last_seen, "
	           "agents, leases, url) VALUES (?, ?, ?, ?, ?, ?, ?) ON "
	           "CONFLICT (name) DO UPDATE SET address = excluded.address, "
	           "started_at = excluded.started_at, last_seen = "
	           "excluded.last_seen, agents = excluded.agents, leases = "
	           "excluded.leases, url = excluded.url",
	           S_TEXT(nd->name), S_TEXT(nd->address), S_INT(nd->started),
	           S_INT(now), S_INT(c->nwaiters), S_INT(leases),
	           S_TEXT(nd->url[0] ? nd->url : NULL));
	q = store_query(c->store,
	                "SELECT name, last_seen, agents, leases FROM nodes "
	                "WHERE last_seen >= ?",
	                S_INT(now - 3600));
	while (q != NULL && store_next(q) == 1) {
		char l[200];
		long long age = now - store_int(q, 1);

		snprintf(l, sizeof(l), "node=\"%s\"", store_text(q, 0));
		metrics_set("vigil_node_heartbeat_age_seconds", l, (double)age);
		metrics_set("vigil_node_agents", l, (double)store_int(q, 2));
		metrics_set("vigil_node_leases", l, (double)store_int(q, 3));
		alive += age <= NODE_DEAD(c);
	}
	store_done(q);
	metrics_set("vigil_nodes_alive", NULL, alive);
}

static void
beat_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	beat(arg);
}

void
node_name_of(const struct center *c, char *out, size_t n)
{
	char host[256];

	if (c->conf.node_name != NULL) {
		snprintf(out, n, "%s", c->conf.node_name);
		return;
	}
	if (gethostname(host, sizeof(host)) == -1)
		snprintf(host, sizeof(host), "vigild");
	host[sizeof(host) - 1] = '\0';
	snprintf(out, n, "%s:%d", host, c->gw_port);
}

int
node_init(struct center *c)
{
	struct timeval tv = {NODE_BEAT, 0}, one = {1, 0};
	struct node *nd;

	if ((nd = c->node = calloc(1, sizeof(*nd))) == NULL)
		return -1;
	nd->c = c;
	nd->started = (long long)time(NULL);
	node_name_of(c, nd->name, sizeof(nd->name));
	snprintf(nd->address, sizeof(nd->address), "%s:%d %s:%d",
	         c->conf.gw_listen, c->gw_port, c->conf.adm_listen,
	         c->adm_port);
	/* No port in node_url: the gateway's. */
	if (c->conf.node_url != NULL && node_url_ok(c->conf.node_url)) {
		const char *host = c->conf.node_url + 8;
		const char *end = host + strlen(host), *colon;

		while (end > host && end[-1] == '/')
			end--;
		/* A port follows the last ':', unless that ':' is inside an
		 * IPv6 literal "[...]" (then ']' comes after it). */
		colon = memrchr(host, ':', (size_t)(end - host));
		if (colon != NULL &&
		    memchr(colon, ']', (size_t)(end - colon)) == NULL)
			snprintf(nd->url, sizeof(nd->url), "https://%.*s",
			         (int)(end - host), host);
		else
			snprintf(nd->url, sizeof(nd->url), "https://%.*s:%d",
			         (int)(end - host), host, c->gw_port);
	}
	metrics_declare("vigil_nodes_alive", METRIC_GAUGE,
	                "vigild nodes on this database whose heartbeat is "
	                "recent (PostgreSQL)");
	metrics_declare("vigil_node_heartbeat_age_seconds", METRIC_GAUGE,
	                "seconds since each node's last heartbeat");
	metrics_declare("vigil_node_agents", METRIC_GAUGE,
	                "task polls each node holds open (its agents)");
	metrics_declare("vigil_node_leases", METRIC_GAUGE,
	                "leases (forwarding targets) each node holds");
	metrics_declare("vigil_node_listening", METRIC_GAUGE,
	                "1 while this node receives task notifications "
	                "(LISTEN); 0: it looks every second instead");
	metrics_declare("vigil_node_notifications_total", METRIC_COUNTER,
	                "task notifications received from the database");
	metrics_declare("vigil_node_task_polls_total", METRIC_COUNTER,
	                "looks for new tasks while not listening");
	if (!store_is_pg(c->store))
		return 0;
	log_info("node: %s on a shared database", nd->name);
	nd->polled_upto = nd->started;
	beat(c);
	if ((nd->ev_beat = event_new(c->base, -1, EV_PERSIST, beat_cb, c)) ==
	        NULL ||
	    event_add(nd->ev_beat, &tv) == -1 ||
	    (nd->ev_poll = event_new(c->base, -1, EV_PERSIST, poll_cb, c)) ==
	        NULL ||
	    event_add(nd->ev_poll, &one) == -1)
		return -1;
	listen_start(c);
	return 0;
}

void
node_shutdown(struct center *c)
{
	struct node *nd = c->node;

	if (nd == NULL)
		return;
	if (multinode(c)) {
		/* Hand over at once rather than after the leases expire. */
		store_exec(c->store, "DELETE FROM leases WHERE node = ?",
		           S_TEXT(nd->name));
		store_exec(c->store,
		           "UPDATE nodes SET agents = 0, leases = 0, last_seen "
		           "= ? WHERE name = ?",
		           S_INT((long long)time(NULL) - NODE_DEAD(c) - 1),
		           S_TEXT(nd->name));
		listen_stop(c);
	}
	if (nd->ev_beat)
		event_free(nd->ev_beat);
	if (nd->ev_poll)
		event_free(nd->ev_poll);
	free(nd);
	c->node = NULL;
}

/* --- GET /api/v1/nodes --------------------------------------------- */

json_t *
node_list(struct center *c)
{
	long long now = (long long)time(NULL);
	struct store_rows *q;
	json_t *a = json_array();

	if (!multinode(c)) {
		json_array_append_new(
		    a, json_pack("{s:s, s:s, s:I, s:I, s:b, s:i, s:i, s:b}",
		                 "name", node_name(c), "address",
		                 c->node ? c->node->address : "", "started_at",
		                 (json_int_t)c->started, "last_heartbeat",
		                 (json_int_t)now, "alive", 1, "agents",
		                 c->nwaiters, "leases", 0, "self", 1));
		return a;
	}
	q = store_query(c->store,
	                "SELECT name, address, started_at, last_seen, agents, "
	                "leases, url FROM nodes ORDER BY name");
	if (q == NULL) {
		json_decref(a);
		return NULL;
	}
	while (store_next(q) == 1) {
		const char *name = store_text(q, 0);

		json_array_append_new(
		    a,
		    json_pack("{s:s, s:s, s:I, s:I, s:b, s:I, s:I, s:b, s:s?}",
		              "name", name, "address",
		              store_text(q, 1) ? store_text(q, 1) : "",
		              "started_at", (json_int_t)store_int(q, 2),
		              "last_heartbeat", (json_int_t)store_int(q, 3),
		              "alive", now - store_int(q, 3) <= NODE_DEAD(c),
		              "agents", (json_int_t)store_int(q, 4), "leases",
		              (json_int_t)store_int(q, 5), "self",
		              strcmp(name, c->node->name) == 0, "url",
		              store_text(q, 6)));
	}
	store_done(q);
	return a;
}
