/*
 * gateway: the agent's side of the gateway protocol (docs/protocol.md):
 * enrollment and its polling, heartbeats, certificate renewal. Every call
 * goes through httpc with the pinned CA; every failure ends up as one
 * sentence in center_reply.msg, the center's own error message included
 * as it is, because that message is written for the operator.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "agent.h"
#include "buf.h"
#include "httpc.h"
#include "log.h"

static void set_msg(struct center_reply *rep, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
set_msg(struct center_reply *rep, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(rep->msg, sizeof(rep->msg), fmt, ap);
	va_end(ap);
	/* It carries the center's words to a terminal or a log line: no
	 * control characters. */
	for (char *c = rep->msg; *c != '\0'; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = ' ';
}

void
center_reply_free(struct center_reply *rep)
{
	json_decref(rep->json);
	rep->json = NULL;
	rep->status = 0;
	rep->msg[0] = '\0';
}

/*
 * Describes a reply that is not a success: the center's error code and
 * message when it sent the documented shape, else the status and the
 * start of the body (printable characters only).
 */
static void
describe_error(struct center_reply *rep, const char *what,
               const struct buf *body)
{
	json_t *e = json_object_get(rep->json, "error");
	const char *code = json_string_value(json_object_get(e, "code"));
	const char *msg = json_string_value(json_object_get(e, "message"));
	char snip[160];
	size_t i, n;

	if (code != NULL || msg != NULL) {
		set_msg(rep, "%s: the center answered %ld %s: %s", what,
		        rep->status, code != NULL ? code : "error",
		        msg != NULL ? msg : "(no message)");
		return;
	}
	n = body->len < sizeof(snip) - 1 ? body->len : sizeof(snip) - 1;
	for (i = 0; i < n; i++)
		snip[i] = body->data[i] >= 0x20 && body->data[i] < 0x7f
		              ? (char)body->data[i]
		              : ' ';
	snip[n] = '\0';
	set_msg(rep, "%s: the center answered HTTP %ld%s%s", what, rep->status,
	        n > 0 ? ": " : "", snip);
}

/* The error code of a reply in the documented error shape, or "". */
static const char *
error_code(const struct center_reply *rep)
{
	const char *c = json_string_value(
	    json_object_get(json_object_get(rep->json, "error"), "code"));

	return c != NULL ? c : "";
}

/*
 * One request to the center. Returns 0 when the center answered (any
 * status; rep->json holds a JSON body), -1 when it could not be reached
 * (rep->msg says why). body may be NULL.
 */
/*
 * The assigned node (st->preferred) is used while it answers; when a
 * request to it gets no answer at all, the agent goes to st->server (the
 * balancer in front of every node) at once and for PREFERRED_AWAY
 * seconds, then tries its node again. The threads share when to try
 * again.
 */
#define PREFERRED_AWAY 300

static _Atomic long long preferred_back; /* unix time */

int
center_call(struct agent_state *st, int with_cert, int insecure,
            const char *method, const char *path, json_t *body,
            struct center_reply *rep)
{
	struct httpc_opts o;
	struct httpc_resp r;
	struct buf url;
	char *text = NULL, pref[600];
	const char *base = st->server;
	int ret = -1;

	memset(rep, 0, sizeof(*rep));
	rep->retry_after = -1;
	httpc_resp_init(&r);
	buf_init(&url, 4096);
	if (agent_load_proxy_user(st) == -1) {
		set_msg(rep, "%s %s: the proxy credentials cannot be read",
		        method, path);
		goto fail;
	}
	agent_httpc_opts(st, with_cert, &o);
	o.insecure = insecure;
	if ((long long)time(NULL) >= preferred_back &&
	    agent_preferred_get(st, pref, sizeof(pref)))
		base = pref;
again:
	buf_reset(&url);
	if (buf_printf(&url, "%s%s", base, path) == -1 ||
	    (text == NULL && body != NULL &&
	     (text = json_dumps(body, JSON_COMPACT)) == NULL)) {
		set_msg(rep, "%s %s: out of memory", method, path);
		goto fail;
	}
	log_debug("gateway: %s %s", method, buf_cstr(&url));
	if (httpc_request(&o, method, buf_cstr(&url), NULL, text,
	                  text != NULL ? strlen(text) : 0, &r) == -1) {
		if (base != st->server && !agent_abort) {
			log_warnx("gateway: the assigned node %s does not "
			          "answer (%s); using %s for %d s",
			          base, r.errmsg, st->server, PREFERRED_AWAY);
			preferred_back = (long long)time(NULL) + PREFERRED_AWAY;
			base = st->server;
			httpc_resp_free(&r);
			httpc_resp_init(&r);
			goto again;
		}
		set_msg(rep, "%s", r.errmsg);
		goto fail;
	}
	rep->status = r.status;
	rep->retry_after = r.retry_after;
	if (r.body.len > 0)
		rep->json =
		    json_loadb((const char *)r.body.data, r.body.len, 0, NULL);
	if (rep->status < 200 || rep->status > 299)
		describe_error(rep, path, &r.body);
	ret = 0;
fail:
	/* The body may carry an enrollment token. */
	if (text != NULL)
		explicit_bzero(text, strlen(text));
	free(text);
	buf_free(&url);
	httpc_resp_free(&r);
	return ret;
}

static long long
reply_int(json_t *o, const char *name, long long def)
{
	json_t *v = json_object_get(o, name);

	return json_is_integer(v) ? json_integer_value(v) : def;
}

/* Keeps what a 202 says and logs it. */
static int
note_pending(struct agent_state *st, json_t *reply)
{
	const char *id =
	    json_string_value(json_object_get(reply, "request_id"));
	long long ra = reply_int(reply, "retry_after", 10);

	if (id == NULL || id[0] == '\0' || strlen(id) > 64 ||
	    strpbrk(id, "/?#%. ") != NULL) {
		log_warnx("enroll: the center's pending reply has no usable "
		          "request_id");
		return -1;
	}
	if (agent_set_str(&st->request_id, id) == -1)
		return -1;
	st->retry_after = ra < 1 ? 1 : ra > 3600 ? 3600 : ra;
	return agent_state_save(st);
}

/*
 * POST /v1/enroll with a new key. token NULL with with_cert set is the
 * re-enrollment of a cloned identity (the current certificate proves who
 * asks). Returns an enroll_result.
 */
int
agent_enroll_send(struct agent_state *st, const char *token, int with_cert)
{
	struct center_reply rep;
	struct buf err;
	json_t *facts = NULL, *body = NULL;
	char *csr = NULL;
	int ret = ENROLL_FAILED;

	memset(&rep, 0, sizeof(rep));
	buf_init(&err, 1024);
	if ((facts = facts_collect(&err)) == NULL) {
		log_warnx("enroll: %s", buf_cstr(&err));
		goto fail;
	}
	if (agent_new_pending_key(st, &csr) == -1)
		goto fail;
	body = json_pack("{s:s*, s:s, s:O}", "token", token, "csr", csr,
	                 "facts", facts);
	if (body == NULL) {
		log_warnx("enroll: out of memory");
		goto fail;
	}
	if (center_call(st, with_cert, 0, "POST", "/v1/enroll", body, &rep) ==
	    -1) {
		log_warnx("enroll: %s", rep.msg);
		goto fail;
	}
	if (rep.status == 201) {
		if (agent_install_identity(st, rep.json, NULL) == -1)
			goto fail;
		log_info("enroll: enrolled as agent %s", st->agent_id);
		ret = ENROLL_DONE;
	} else if (rep.status == 202) {
		if (note_pending(st, rep.json) == -1)
			goto fail;
		log_info("enroll: request %s is waiting for approval by an "
		         "administrator",
		         st->request_id);
		ret = ENROLL_PENDING;
	} else {
		log_warnx("enroll: %s", rep.msg);
		ret = rep.status >= 400 && rep.status < 500 && rep.status != 429
		          ? ENROLL_FINAL
		          : ENROLL_FAILED;
	}
fail:
	if (ret != ENROLL_PENDING)
		agent_drop_pending_key(st);
	/* jansson holds a copy of the token; it is spent, wipe it. */
	if (token != NULL && body != NULL) {
		char *t =
		    (char *)json_string_value(json_object_get(body, "token"));

		if (t != NULL)
			explicit_bzero(t, strlen(t));
	}
	center_reply_free(&rep);
	json_decref(body);
	json_decref(facts);
	free(csr);
	buf_free(&err);
	return ret;
}

/* GET /v1/enroll/<request_id>. Returns an enroll_result. */
int
agent_enroll_poll(struct agent_state *st)
{
	struct center_reply rep;
	char path[128];
	int ret = ENROLL_FAILED;

	if (st->request_id == NULL)
		return ENROLL_FINAL;
	snprintf(path, sizeof(path), "/v1/enroll/%s", st->request_id);
	if (center_call(st, 0, 0, "GET", path, NULL, &rep) == -1) {
		log_warnx("enroll: %s", rep.msg);
		goto fail;
	}
	switch (rep.status) {
	case 201:
		if (agent_install_identity(st, rep.json, NULL) == 0) {
			log_info("enroll: approved; enrolled as agent %s",
			         st->agent_id);
			ret = ENROLL_DONE;
		}
		break;
	case 202:
		st->retry_after =
		    reply_int(rep.json, "retry_after", st->retry_after);
		if (st->retry_after < 1 || st->retry_after > 3600)
			st->retry_after = 10;
		log_debug("enroll: request %s still pending", st->request_id);
		ret = ENROLL_PENDING;
		break;
	case 403:
	case 404:
		/* Rejected or forgotten: this request is over. */
		log_warnx("enroll: request %s: %s", st->request_id, rep.msg);
		log_warnx("enroll: enroll again with `vigil-agent enroll "
		          "--force ...`");
		free(st->request_id);
		st->request_id = NULL;
		agent_drop_pending_key(st);
		(void)agent_state_save(st);
		ret = ENROLL_FINAL;
		break;
	default:
		log_warnx("enroll: %s", rep.msg);
		break;
	}
fail:
	center_reply_free(&rep);
	return ret;
}

/*
 * POST /v1/heartbeat. On success *renew says whether the center asks for a
 * new certificate and *center_time is its clock (0 if absent).
 */
int
agent_heartbeat(struct agent_state *st, int *renew, long long *center_time,
                struct center_reply *rep)
{
	struct buf err;
	json_t *facts = NULL, *body = NULL;
	long long pi;
	int ret = HB_FAILED;

	*renew = 0;
	*center_time = 0;
	memset(rep, 0, sizeof(*rep));
	buf_init(&err, 1024);
	if ((facts = facts_collect(&err)) == NULL) {
		set_msg(rep, "heartbeat: %s", buf_cstr(&err));
		goto fail;
	}
	if ((body = json_pack("{s:O, s:o*}", "facts", facts, "updates",
	                      agent_updates_report(st))) == NULL) {
		set_msg(rep, "heartbeat: no memory");
		goto fail;
	}
	if (center_call(st, 1, 0, "POST", "/v1/heartbeat", body, rep) == -1)
		goto fail;
	if (rep->status == 409 &&
	    strcmp(error_code(rep), "clone_detected") == 0) {
		ret = HB_CLONE;
		goto fail;
	}
	if (rep->status != 200)
		goto fail;
	*renew = json_is_true(json_object_get(rep->json, "renew"));
	*center_time = reply_int(rep->json, "time", 0);
	pi = reply_int(rep->json, "poll_interval", st->poll_interval);
	pi = pi < AGENT_MIN_POLL   ? AGENT_MIN_POLL
	     : pi > AGENT_MAX_POLL ? AGENT_MAX_POLL
	                           : pi;
	if (pi != st->poll_interval) {
		st->poll_interval = pi;
		(void)agent_state_save(st);
	}
	ret = HB_OK;
fail:
	json_decref(body);
	json_decref(facts);
	buf_free(&err);
	return ret;
}

/* Two thirds of the certificate's lifetime have passed. */
int
agent_renew_due(const struct agent_state *st)
{
	long long nb, na;

	if (agent_cert_times(st, &nb, &na) == -1)
		return 0;
	return (long long)time(NULL) >= nb + (na - nb) / 3 * 2;
}

/* POST /v1/renew with a new key; replaces key and certificate. */
int
agent_renew(struct agent_state *st)
{
	struct center_reply rep;
	json_t *body = NULL;
	char *csr = NULL;
	int ret = -1;

	memset(&rep, 0, sizeof(rep));
	if (agent_new_pending_key(st, &csr) == -1)
		goto fail;
	if ((body = json_pack("{s:s}", "csr", csr)) == NULL)
		goto fail;
	if (center_call(st, 1, 0, "POST", "/v1/renew", body, &rep) == -1 ||
	    rep.status != 200) {
		log_warnx("renew: %s", rep.msg);
		goto fail;
	}
	if (agent_install_identity(st, rep.json, st->agent_id) == -1)
		goto fail;
	log_info("renew: new certificate for agent %s installed", st->agent_id);
	ret = 0;
fail:
	if (ret == -1)
		agent_drop_pending_key(st);
	center_reply_free(&rep);
	json_decref(body);
	free(csr);
	return ret;
}
