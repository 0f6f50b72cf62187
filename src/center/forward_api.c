/*
 * forward_api.c: /api/v1/forward: list the targets with their state, add
 * one, remove one, send a test message through one.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <ini.h>
#include <openssl/err.h>

#include "center.h"
#include "forward.h"
#include "events.h"
#include "metrics.h"
#include "schema.h"
#include "syslogfmt.h"
#include "tls.h"

static json_t *
target_status(const struct fwd_target *t)
{
	static const char *const states[] = {"idle", "connecting", "up",
	                                     "backoff"};
	json_t *o = target_spec(t);
	long long lag = max_event_id(t->c) - t->cursor;

	json_object_set_new(o, "state", json_string(states[t->state]));
	json_object_set_new(o, "source",
	                    json_string(t->from_config ? "config" : "api"));
	json_object_set_new(o, "cursor", json_integer(t->cursor));
	json_object_set_new(o, "lag_events", json_integer(lag < 0 ? 0 : lag));
	json_object_set_new(o, "sent", json_integer((json_int_t)t->sent));
	json_object_set_new(o, "dropped", json_integer((json_int_t)t->dropped));
	json_object_set_new(o, "errors", json_integer((json_int_t)t->errors));
	json_object_set_new(o, "last_error",
	                    t->last_error[0] ? json_string(t->last_error)
	                                     : json_null());
	return o;
}

/* GET /api/v1/forward */
static void
adm_forward_list(struct http_req *r)
{
	json_t *a;
	size_t i;

	if (admin_authorize(r) == -1)
		return;
	a = json_array();
	for (i = 0; i < C(r)->fwd->n; i++)
		json_array_append_new(a, target_status(C(r)->fwd->t[i]));
	http_reply_json(r, 200, json_pack("{s:o}", "targets", a));
}

static void
forward_add_committed(void *arg, int committed)
{
	struct fwd_target *t = arg;

	if (!committed) {
		log_info("forward: target %s not added (rolled back)", t->name);
		target_free(t);
	} else if (add_running(t) == -1) {
		log_warnx("forward: target %s stored but not started (out of "
		          "memory); it starts with the next start or reload",
		          t->name);
		target_free(t);
	}
}

struct fwd_removal {
	struct center *c;
	char name[80];
};

/* Stops the removed target once its removal is committed. */
static void
forward_remove_committed(void *arg, int committed)
{
	struct fwd_removal *rm = arg;
	struct fwd *f = rm->c->fwd;
	size_t i;

	for (i = 0; committed && f != NULL && i < f->n; i++)
		if (strcmp(f->t[i]->name, rm->name) == 0) {
			remove_running(f, i);
			break;
		}
	free(rm);
}

/* POST /api/v1/forward */
static void
adm_forward_add(struct http_req *r)
{
	struct center *c = C(r);
	struct fwd_target *t = NULL;
	const char *from, *k;
	json_t *body, *spec = NULL, *v;
	struct buf err;
	long long cursor;
	char *s = NULL;
	size_t i;

	if (admin_authorize(r) == -1)
		return;
	if ((body = http_req_json(r)) == NULL)
		return;
	buf_init(&err, 1024);
	json_object_foreach(body, k, v)
	{
		for (i = 0; spec_keys[i] && strcmp(spec_keys[i], k) != 0; i++)
			;
		if (spec_keys[i] == NULL) {
			http_reply_error(r, 400, "bad_request",
			                 "%.64s: unknown field", k);
			goto out;
		}
	}
	from = json_string_value(json_object_get(body, "from"));
	if (from != NULL && strcmp(from, "now") != 0 &&
	    strcmp(from, "start") != 0) {
		http_reply_error(r, 400, "bad_request",
		                 "from: now (events stored from now on, the "
		                 "default) or start (every stored event)");
		goto out;
	}
	cursor = from && strcmp(from, "start") == 0 ? 0 : max_event_id(c);
	if ((t = target_new(c, body, cursor, &err)) == NULL) {
		http_reply_error(r, 400, "bad_request", "%s", buf_cstr(&err));
		goto out;
	}
	if (find(c->fwd, t->name) != NULL) {
		http_reply_error(r, 409, "exists",
		                 "a forwarding target named %s exists already",
		                 t->name);
		goto out;
	}
	spec = target_spec(t);
	s = json_dumps(spec, JSON_COMPACT);
	if (s == NULL ||
	    store_exec(c->store,
	               "INSERT INTO forward_targets (name, spec, cursor, "
	               "created_at, source) VALUES (?, ?, ?, ?, 'api')",
	               S_TEXT(t->name), S_TEXT(s), S_INT(cursor),
	               S_INT(time(NULL))) != 1) {
		http_reply_error(r, 409, "exists",
		                 "a forwarding target named %s exists already",
		                 t->name);
		goto out;
	}
	log_info("forward: target %s added (%s %s:%d, %s)", t->name,
	         transports[t->transport], t->host, t->port,
	         syslogfmt_format_name(t->fmt.format));
	/* It starts once the row and its audit entry are committed (the
	 * reply commits them); rolled back, it is freed unstarted. */
	v = target_status(t);
	store_after_commit(c->store, forward_add_committed, t);
	t = NULL;
	http_reply_json(r, 201, v);
out:
	target_free(t);
	free(s);
	json_decref(spec);
	json_decref(body);
	buf_free(&err);
}

/* Sends one test message through the target's connection. */
static void
forward_test(struct http_req *r, struct fwd_target *t)
{
	struct syslogfmt_event e;
	char data[256];
	struct buf *m = &C(r)->fwd->msg;

	snprintf(data, sizeof(data),
	         "{\"message\":\"Vigil forwarding test\",\"target\":\"%s\"}",
	         t->name);
	memset(&e, 0, sizeof(e));
	e.agent_id = "center";
	e.time = (long long)time(NULL);
	e.type = "test";
	e.level = "notice";
	e.data = data;
	if (t->transport == FWD_COLLECTOR) {
		http_reply_error(r, 400, "not_syslog",
		                 "%s is a collector target: its state, lag and "
		                 "last error show whether the collector takes "
		                 "the events (no syslog test message)",
		                 t->name);
		return;
	}
	if (t->state != ST_UP) {
		http_reply_error(
		    r, 502, "not_connected", "%s is not connected to %s:%d: %s",
		    t->name, t->host, t->port,
		    t->last_error[0] ? t->last_error : "connecting");
		return;
	}
	buf_reset(m);
	if (syslogfmt_format(&t->fmt, &e, m) == -1)
		goto fail;
	if (t->transport == FWD_UDP) {
		if (send(t->udp_fd, m->data, m->len, 0) == -1) {
			http_reply_error(r, 502, "send_failed", "%s: %s:%d: %s",
			                 t->name, t->host, t->port,
			                 strerror(errno));
			return;
		}
	} else {
		struct buf fr;

		buf_init(&fr, 1 << 20);
		if (syslogfmt_frame(t->framing, m->data, m->len, &fr) == -1 ||
		    bufferevent_write(t->bev, fr.data, fr.len) == -1) {
			buf_free(&fr);
			goto fail;
		}
		buf_free(&fr);
	}
	http_reply_json(r, 200,
	                json_pack("{s:s, s:b, s:s}", "name", t->name, "sent", 1,
	                          "message", buf_cstr(m)));
	return;
fail:
	http_reply_error(r, 500, "internal", "cannot queue the test message");
}

/* DELETE /api/v1/forward/NAME, POST /api/v1/forward/NAME/test */
static void
adm_forward_one(struct http_req *r)
{
	struct center *c = C(r);
	struct fwd_target *t;
	char name[80];
	const char *slash = strchr(r->rest, '/');
	size_t n = slash ? (size_t)(slash - r->rest) : strlen(r->rest);
	struct fwd_removal *rm;

	if (admin_authorize(r) == -1 || schema_no_body(r) == -1)
		return;
	if (n == 0 || n >= sizeof(name)) {
		http_reply_error(r, 404, "not_found", "no such target");
		return;
	}
	memcpy(name, r->rest, n);
	name[n] = '\0';
	if ((t = find(c->fwd, name)) == NULL) {
		http_reply_error(r, 404, "not_found",
		                 "no forwarding target %.64s", name);
		return;
	}
	if (strcmp(r->method, "POST") == 0) {
		if (slash == NULL || strcmp(slash, "/test") != 0) {
			http_reply_error(r, 404, "not_found",
			                 "POST /api/v1/forward/NAME/test");
			return;
		}
		forward_test(r, t);
		return;
	}
	if (slash != NULL) {
		http_reply_error(r, 404, "not_found", "no such target");
		return;
	}
	if (t->from_config) {
		http_reply_error(r, 409, "from_config",
		                 "%s is defined in %s; remove it there and "
		                 "reload vigild (SIGHUP)",
		                 name, c->conf.fwd_targets);
		return;
	}
	if (store_exec(c->store, "DELETE FROM forward_targets WHERE name = ?",
	               S_TEXT(name)) < 0) {
		http_reply_error(r, 503, "store_busy", "store busy; retry");
		return;
	}
	log_info("forward: target %s removed", name);
	/* It stops once the removal and its audit entry are committed. */
	if ((rm = calloc(1, sizeof(*rm))) == NULL)
		fatalx("%s: out of memory", __func__);
	rm->c = c;
	memcpy(rm->name, name, n + 1);
	store_after_commit(c->store, forward_remove_committed, rm);
	http_reply_json(r, 200,
	                json_pack("{s:s, s:b}", "name", name, "deleted", 1));
}

const struct http_route forward_admin_routes[] = {
    {"GET", "/api/v1/forward", adm_forward_list, 0, "forward", 0,
     ROLE_READONLY},
    {"POST", "/api/v1/forward", adm_forward_add, 0, "forward", 0, ROLE_ADMIN},
    /* .../NAME/test: sends one test message */
    {"POST", "/api/v1/forward/", adm_forward_one, HTTP_ROUTE_PREFIX,
     "forward_target", 0, ROLE_OPERATOR},
    {"DELETE", "/api/v1/forward/", adm_forward_one, HTTP_ROUTE_PREFIX,
     "forward_target", 0, ROLE_ADMIN},
    {NULL, NULL, NULL, 0, NULL, 0},
};
