/*
 * gateway.c: the agent gateway (docs/protocol.md). Enrollment with a token
 * and a CSR, polling of pending requests, heartbeats and certificate
 * renewal. The agent's identity is the CN of its verified client
 * certificate; nothing in a request body can claim another identity.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "center.h"
#include "enroll.h"
#include "gwproc.h"
#include "metrics.h"
#include "pki.h"
#include "tls.h"

#define C(r) ((struct center *)(r)->arg)

static void
enroll_count(const char *result)
{
	char labels[64];

	snprintf(labels, sizeof(labels), "result=\"%s\"", result);
	metrics_add("vigil_enrollments_total", labels, 1);
}

static void
gw_ping(struct http_req *r)
{
	json_t *o = json_pack("{s:s, s:s, s:I, s:s}", "service", "vigild",
	                      "version", VIGIL_VERSION, "time",
	                      (json_int_t)time(NULL), "fqdn", C(r)->conf.fqdn);

	http_reply_json(r, 200, o);
}

static void
gw_ca(struct http_req *r)
{
	http_reply_text(r, 200, "application/x-pem-file", C(r)->ca_pem,
	                strlen(C(r)->ca_pem));
}

/* The CSR's key must be EC P-256; other problems are "bad_csr". */
static int
check_csr(struct http_req *r, const char *pem, X509_REQ **out)
{
	X509_REQ *csr = tls_csr_from_pem(pem, strlen(pem));
	EVP_PKEY *pk;
	struct buf err;
	char group[64];
	size_t glen = 0;

	if (csr == NULL) {
		http_reply_error(r, 400, "bad_csr",
		                 "csr: not a PEM certificate signing request");
		return -1;
	}
	pk = X509_REQ_get0_pubkey(csr);
	if (pk == NULL || !EVP_PKEY_is_a(pk, "EC") ||
	    EVP_PKEY_get_utf8_string_param(pk, "group", group, sizeof(group),
	                                   &glen) != 1 ||
	    strcmp(group, "prime256v1") != 0) {
		http_reply_error(
		    r, 400, "bad_key_type",
		    "csr: the key is %s; Vigil agents use ECDSA P-256 keys",
		    pk && EVP_PKEY_get0_type_name(pk)
		        ? EVP_PKEY_get0_type_name(pk)
		        : "unreadable");
		X509_REQ_free(csr);
		return -1;
	}
	buf_init(&err, 1024);
	if (pki_check_csr(csr, &err) == -1) {
		http_reply_error(r, 400, "bad_csr", "csr: %s", buf_cstr(&err));
		buf_free(&err);
		X509_REQ_free(csr);
		return -1;
	}
	buf_free(&err);
	*out = csr;
	return 0;
}

static char *
dump(json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);

	json_decref(j);
	return s;
}

/* Issues the certificate for agent_id and records agent + cert. */
static int
issue(struct center *c, const char *agent_id, const char *csr,
      const char *requester, struct buf *pem, struct buf *err)
{
	X509 *x;

	if (keyproc_sign(c, csr, agent_id, c->conf.agent_cert_lifetime,
	                 requester, pem, err) == -1)
		return -1;
	if ((x = tls_cert_from_pem((const char *)pem->data, pem->len)) ==
	    NULL) {
		buf_puts(err, "key process returned an unreadable certificate");
		return -1;
	}
	if (db_add_cert(c->store, agent_id, x) == -1) {
		X509_free(x);
		buf_puts(err, "cannot record the certificate");
		return -1;
	}
	X509_free(x);
	/* The replaced one resumes no session through the workers either
	 * (stale_cb in-process). */
	gwproc_agent_certs_changed(c, agent_id);
	return 0;
}

static int
insert_agent(struct center *c, const char *id, const struct host_facts *f,
             const char *labels, const char *token_id, const char *addr,
             const char *cloned_from)
{
	char *ips = dump(strs_json(f->ips, f->nips));
	char *macs = dump(strs_json(f->macs, f->nmacs));
	int rc;

	rc = store_exec(
	    c->store,
	    "INSERT INTO agents (id, status, hostname, fqdn, os, kernel, arch,"
	    " ips, macs, machine_id, agent_version, labels, enrolled_at,"
	    " token_id, source_addr, cloned_from) "
	    "VALUES (?, 'active', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
	    S_TEXT(id), S_TEXT(f->hostname), S_TEXT(f->fqdn), S_TEXT(f->os),
	    S_TEXT(f->kernel), S_TEXT(f->arch), S_TEXT(ips), S_TEXT(macs),
	    S_TEXT(f->machine_id), S_TEXT(f->agent_version), S_TEXT(labels),
	    S_INT(time(NULL)), S_TEXT(token_id), S_TEXT(addr),
	    S_TEXT(cloned_from));
	free(ips);
	free(macs);
	return rc == 1 ? 0 : -1;
}

/* Consumes one use of the token; replies 403 when it cannot be used. */
static int
use_token(struct http_req *r, const char *token, char **token_id, char **labels)
{
	struct center *c = C(r);
	struct store_rows *q;
	char hash[65];
	long long max_uses, used, expires;
	int found = 0;

	sha256_hex(token, strlen(token), hash);
	q = store_query(
	    c->store,
	    "SELECT id, max_uses, used, expires_at, labels FROM tokens "
	    "WHERE hash = ?",
	    S_TEXT(hash));
	if (q == NULL) {
		http_reply_error(r, 500, "store", "store unavailable");
		return -1;
	}
	if (store_next(q) == 1) {
		found = 1;
		*token_id = dup_or_null(store_text(q, 0));
		max_uses = store_int(q, 1);
		used = store_int(q, 2);
		expires = store_isnull(q, 3) ? 0 : store_int(q, 3);
		*labels = dup_or_null(store_text(q, 4));
	}
	store_done(q);
	if (!found) {
		enroll_count("bad_token");
		http_reply_error(
		    r, 403, "bad_token",
		    "enrollment token not known to this center (mistyped, or "
		    "deleted); create one with: vigilctl token create");
		return -1;
	}
	if (*token_id == NULL || *labels == NULL) {
		http_reply_error(r, 500, "store", "store unavailable");
		goto fail;
	}
	if (expires != 0 && expires <= (long long)time(NULL)) {
		enroll_count("token_expired");
		http_reply_error(
		    r, 403, "token_expired",
		    "enrollment token %s has expired; create a new one",
		    *token_id);
		goto fail;
	}
	if (used >= max_uses ||
	    store_exec(c->store,
	               "UPDATE tokens SET used = used + 1 WHERE id = ? AND "
	               "used < max_uses",
	               S_TEXT(*token_id)) != 1) {
		enroll_count("token_used_up");
		http_reply_error(
		    r, 403, "token_used_up",
		    "enrollment token %s has been used %lld of %lld times; "
		    "create a new one or raise --uses",
		    *token_id, used, max_uses);
		goto fail;
	}
	return 0;
fail:
	free(*token_id);
	free(*labels);
	*token_id = *labels = NULL;
	return -1;
}

static void
reply_enrolled(struct http_req *r, const char *agent_id, const char *pem)
{
	struct center *c = C(r);
	char *pref = node_preferred(c);

	/* update_root: the update repository's root the agent pins (it
	 * then checks every update from it, whatever a center serves).
	 * preferred_server: the node it is assigned, by load (several
	 * nodes on one database, docs/scale-out.md). */
	http_reply_json(
	    r, 201,
	    json_pack("{s:s, s:s, s:s, s:I, s:s*, s:s*}", "agent_id", agent_id,
	              "certificate", pem, "ca", c->ca_pem, "poll_interval",
	              (json_int_t)c->conf.poll_interval, "update_root",
	              updates_anchor(c), "preferred_server", pref));
	free(pref);
}

static void
reply_pending(struct http_req *r, const char *req_id)
{
	http_set_header(r, "Retry-After", "10");
	http_reply_json(r, 202,
	                json_pack("{s:s, s:s, s:i}", "request_id", req_id,
	                          "status", "pending", "retry_after", 10));
}

/* Clones made so far from the original agent that id descends from (the
 * original itself when it is no clone), its clones' clones included. */
static long long
clone_count(struct center *c, const char *id)
{
	struct store_rows *q;
	long long n = -1;

	q = store_query(
	    c->store,
	    "WITH RECURSIVE up(id, parent) AS (SELECT id, cloned_from FROM "
	    "agents WHERE id = ? UNION SELECT a.id, a.cloned_from FROM agents "
	    "a JOIN up ON a.id = up.parent), root(id) AS (SELECT id FROM up "
	    "WHERE parent IS NULL OR parent NOT IN (SELECT id FROM agents)), "
	    "down(id) AS (SELECT a.id FROM agents a JOIN root ON "
	    "a.cloned_from = root.id UNION SELECT a.id FROM agents a JOIN down "
	    "ON a.cloned_from = down.id) SELECT count(*) FROM down",
	    S_TEXT(id));
	if (q != NULL && store_next(q) == 1)
		n = store_int(q, 0);
	store_done(q);
	return n;
}

/* A notice and an audit entry for every clone re-enrollment: a made one
 * inside the enrollment's transaction (committed with it, or neither is),
 * a refused one after it was rolled back. 0, or -1 when the entry could
 * not be written. */
static int
clone_record(struct http_req *r, const char *orig, const char *new_id,
             const char *why)
{
	struct center *c = C(r);
	struct audit_entry a;
	char who[64], msg[512];

	snprintf(who, sizeof(who), "agent:%.40s", orig);
	if (new_id != NULL)
		snprintf(
		    msg, sizeof(msg),
		    "a clone of agent %.40s (from %.46s) enrolled as agent "
		    "%.40s with its certificate and labels",
		    orig, r->peer_addr, new_id);
	else
		snprintf(msg, sizeof(msg),
		         "a clone of agent %.40s (from %.46s) was refused: %s",
		         orig, r->peer_addr, why);
	log_warnx("gateway: %s", msg);
	store_exec(c->store,
	           "INSERT INTO notices (time, kind, agent_id, message) "
	           "VALUES (?, ?, ?, ?)",
	           S_INT(time(NULL)),
	           S_TEXT(new_id ? "clone_enrolled" : "clone_refused"),
	           S_TEXT(orig), S_TEXT(msg));
	memset(&a, 0, sizeof(a));
	a.who = who;
	a.addr = r->peer_addr;
	a.action = "agent.clone";
	a.target = new_id;
	a.status = new_id ? 201 : 403;
	a.error = new_id ? NULL : why;
	return audit_append(c, &a);
}

/*
 * Re-enrollment of a clone: the caller holds a valid certificate of an
 * agent whose recorded machine id differs from the one it reports now.
 * [gateway] clone_policy bounds it: a certificate is no enrollment token,
 * so by default one original yields at most clone_limit clones (its
 * clones' clones count against the same original); beyond that, or with
 * clone_policy = token, the copy must enroll with a token.
 * Returns the old agent id (malloc'd) or NULL after replying; a refusal
 * by the policy leaves the original's id in refused and the reason in
 * why, for clone_record() once the transaction is over.
 */
static char *
clone_source(struct http_req *r, const struct host_facts *f, char **labels,
             char *refused, size_t rn, char *why, size_t wn)
{
	struct center *c = C(r);
	struct store_rows *q;
	char *cn = tls_subject_cn(r->peer), *ret = NULL;
	long long n;
	int differs = 0;

	if (cn == NULL) {
		http_reply_error(r, 403, "bad_certificate",
		                 "client certificate has no subject CN");
		return NULL;
	}
	q = store_query(
	    c->store,
	    "SELECT machine_id, labels FROM agents WHERE id = ? AND "
	    "status = 'active'",
	    S_TEXT(cn));
	if (q != NULL && store_next(q) == 1) {
		const char *mid = store_text(q, 0);
		differs = mid == NULL || strcmp(mid, f->machine_id) != 0;
		*labels = dup_or_null(store_text(q, 1));
	}
	store_done(q);
	if (!differs) {
		free(*labels);
		*labels = NULL;
		http_reply_error(
		    r, 400, "token_required",
		    "token: required (a client certificate only allows "
		    "re-enrollment of a cloned agent)");
		free(cn);
		return NULL;
	}
	if (c->conf.clone_policy == CLONE_TOKEN)
		snprintf(why, wn,
		         "clone_policy = token: a clone enrolls with a token");
	else if (c->conf.clone_policy == CLONE_LIMIT &&
	         (n = clone_count(c, cn)) != -1 && n >= c->conf.clone_limit)
		snprintf(why, wn,
		         "the original has made %lld clone%s, the most "
		         "clone_limit allows; enroll this copy with a token",
		         n, n == 1 ? "" : "s");
	if (why[0] != '\0') {
		free(*labels);
		*labels = NULL;
		http_reply_error(r, 403, "clone_refused",
		                 "re-enrollment of a clone of %s refused: %s",
		                 cn, why);
		snprintf(refused, rn, "%s", cn);
		free(cn);
		return NULL;
	}
	ret = cn;
	return ret;
}

static void
gw_enroll(struct http_req *r)
{
	struct center *c = C(r);
	struct enroll_req er;
	struct buf err, pem;
	X509_REQ *csr = NULL;
	char *token_id = NULL, *labels = NULL, *cloned_from = NULL, *facts;
	char agent_id[37], req_id[37], requester[128];
	char refused[64] = "", why[160] = "";
	const uint8_t *body;
	size_t len;
	int retry, in_tx = 0;

	memset(&er, 0, sizeof(er));
	buf_init(&err, 2048);
	buf_init(&pem, 16384);
	if (!ratelimit_take(c->enroll_rl, r->peer_addr, (long long)time(NULL),
	                    &retry)) {
		char ra[16];

		enroll_count("rate_limited");
		snprintf(ra, sizeof(ra), "%d", retry);
		http_set_header(r, "Retry-After", ra);
		http_reply_error(
		    r, 429, "rate_limited",
		    "too many enrollment attempts from %s; retry in %d s",
		    r->peer_addr, retry);
		goto out;
	}
	body = http_req_body(r, &len);
	if (enroll_parse(body, len, &er, &err) == -1) {
		enroll_count("bad_request");
		http_reply_error(r, 400, "bad_request", "%s", buf_cstr(&err));
		goto out;
	}
	if (check_csr(r, er.csr, &csr) == -1) {
		enroll_count("bad_csr");
		goto out;
	}
	/* One transaction from the token's use to the stored result: a
	 * failure later on gives the use back. */
	if (store_begin(c->store) == -1) {
		http_reply_error(r, 503, "store_busy", "store busy; retry");
		goto out;
	}
	in_tx = 1;
	if (er.token != NULL) {
		if (use_token(r, er.token, &token_id, &labels) == -1)
			goto out;
	} else if (r->peer != NULL) {
		if ((cloned_from = clone_source(r, &er.facts, &labels, refused,
		                                sizeof(refused), why,
		                                sizeof(why))) == NULL)
			goto out;
	} else {
		enroll_count("bad_request");
		http_reply_error(
		    r, 400, "bad_request",
		    "token: required; create one with: vigilctl token create");
		goto out;
	}
	random_uuid(agent_id);
	if (settings_require_approval(c)) {
		facts = dump(facts_to_json(&er.facts));
		random_uuid(req_id);
		if (store_exec(
		        c->store,
		        "INSERT INTO enrollments (id, status, agent_id, csr, "
		        "facts, labels, token_id, source_addr, cloned_from, "
		        "created_at) VALUES (?, 'pending', ?, ?, ?, ?, ?, ?, "
		        "?, ?)",
		        S_TEXT(req_id), S_TEXT(agent_id), S_TEXT(er.csr),
		        S_TEXT(facts), S_TEXT(labels), S_TEXT(token_id),
		        S_TEXT(r->peer_addr), S_TEXT(cloned_from),
		        S_INT(time(NULL))) != 1) {
			free(facts);
			http_reply_error(r, 500, "store",
			                 "cannot record the request");
			goto out;
		}
		free(facts);
		if (store_commit(c->store) == -1) {
			http_reply_error(r, 503, "store_busy",
			                 "store busy; retry");
			goto out;
		}
		in_tx = 0;
		enroll_count("pending");
		stream_emit_id(c, "enrollment", req_id);
		log_info("gateway: enrollment request %s from %s (%s) awaits "
		         "approval",
		         req_id, r->peer_addr, er.facts.hostname);
		reply_pending(r, req_id);
		goto out;
	}
	if (token_id != NULL)
		snprintf(requester, sizeof(requester),
		         "enrollment with token %.40s from %.46s", token_id,
		         r->peer_addr);
	else
		snprintf(requester, sizeof(requester),
		         "clone of agent %.40s from %.46s",
		         cloned_from ? cloned_from : "-", r->peer_addr);
	if (insert_agent(c, agent_id, &er.facts, labels, token_id, r->peer_addr,
	                 cloned_from) == -1 ||
	    issue(c, agent_id, er.csr, requester, &pem, &err) == -1) {
		log_warnx("gateway: enrollment of %s failed: %s",
		          er.facts.hostname, buf_cstr(&err));
		http_reply_error(r, 500, "issue_failed",
		                 "the center could not issue a certificate: %s",
		                 buf_cstr(&err));
		goto out;
	}
	if (cloned_from != NULL &&
	    clone_record(r, cloned_from, agent_id, NULL) == -1) {
		http_reply_error(r, 500, "audit_failed",
		                 "the re-enrollment was not made: its audit "
		                 "entry could not be written; the center's log "
		                 "says why");
		goto out;
	}
	if (store_commit(c->store) == -1) {
		http_reply_error(r, 503, "store_busy", "store busy; retry");
		goto out;
	}
	in_tx = 0;
	enroll_count(cloned_from ? "reenrolled_clone" : "enrolled");
	stream_emit_id(c, "agent", agent_id);
	log_info("gateway: enrolled agent %s (%s) from %s%s%s", agent_id,
	         er.facts.hostname, r->peer_addr,
	         cloned_from ? ", a clone of " : "",
	         cloned_from ? cloned_from : "");
	reply_enrolled(r, agent_id, buf_cstr(&pem));
out:
	if (in_tx)
		store_rollback(c->store);
	if (refused[0] != '\0')
		clone_record(r, refused, NULL, why);
	X509_REQ_free(csr);
	enroll_req_free(&er);
	free(token_id);
	free(labels);
	free(cloned_from);
	buf_free(&pem);
	buf_free(&err);
}

static void
gw_enroll_poll(struct http_req *r)
{
	struct center *c = C(r);
	struct store_rows *q;
	char *status = NULL, *agent_id = NULL, *cert = NULL;

	q = store_query(c->store,
	                "SELECT status, agent_id, certificate FROM enrollments "
	                "WHERE id = ?",
	                S_TEXT(r->rest));
	if (q != NULL && store_next(q) == 1) {
		status = dup_or_null(store_text(q, 0));
		agent_id = dup_or_null(store_text(q, 1));
		if (!store_isnull(q, 2))
			cert = dup_or_null(store_text(q, 2));
	}
	store_done(q);
	if (status == NULL)
		http_reply_error(r, 404, "unknown_request",
		                 "no enrollment request with this id");
	else if (strcmp(status, "pending") == 0)
		reply_pending(r, r->rest);
	else if (strcmp(status, "approved") == 0 && cert != NULL)
		reply_enrolled(r, agent_id, cert);
	else
		http_reply_error(
		    r, 403, "rejected",
		    "an administrator rejected this enrollment request");
	free(status);
	free(agent_id);
	free(cert);
}

static void
gw_heartbeat(struct http_req *r)
{
	struct center *c = C(r);
	struct host_facts f;
	struct store_rows *q;
	struct buf err;
	char *id = NULL, *mid = NULL, *ips = NULL, *macs = NULL;
	const uint8_t *body;
	long long not_after = 0, now = (long long)time(NULL);
	size_t len;
	int found = 0, renew, was_offline = 0;

	memset(&f, 0, sizeof(f));
	buf_init(&err, 1024);
	if ((id = peer_agent_id(r)) == NULL)
		goto out;
	body = http_req_body(r, &len);
	if (heartbeat_parse(body, len, &f, &err) == -1) {
		http_reply_error(r, 400, "bad_request", "%s", buf_cstr(&err));
		goto out;
	}
	q = store_query(
	    c->store,
	    "SELECT machine_id, cert_not_after, last_seen FROM agents WHERE "
	    "id = ? AND status = 'active'",
	    S_TEXT(id));
	if (q != NULL && store_next(q) == 1) {
		found = 1;
		/* Offline (or never seen) until now: its state changes. */
		long long last = store_isnull(q, 2) ? 0 : store_int(q, 2);

		if (seen_last(id) > last) /* noted, not written yet */
			last = seen_last(id);
		was_offline = last < now - 3 * c->conf.poll_interval;
		if (!store_isnull(q, 0))
			mid = dup_or_null(store_text(q, 0));
		not_after = store_int(q, 1);
	}
	store_done(q);
	if (!found) {
		http_reply_error(
		    r, 403, "unknown_agent",
		    "agent %s is not enrolled here (revoked or deleted)", id);
		goto out;
	}
	if (mid != NULL && f.machine_id != NULL &&
	    strcmp(mid, f.machine_id) != 0) {
		char msg[512];

		snprintf(msg, sizeof(msg),
		         "agent %s checked in from machine %s but enrolled on "
		         "machine %s: a cloned data directory",
		         id, f.machine_id, mid);
		log_warnx("gateway: %s (from %s)", msg, r->peer_addr);
		store_exec(
		    c->store,
		    "UPDATE agents SET clone_detected_at = ? WHERE id = ?",
		    S_INT(now), S_TEXT(id));
		store_exec(
		    c->store,
		    "INSERT INTO notices (time, kind, agent_id, message) "
		    "VALUES (?, 'clone_detected', ?, ?)",
		    S_INT(now), S_TEXT(id), S_TEXT(msg));
		metrics_add("vigil_clones_detected_total", NULL, 1);
		http_reply_error(
		    r, 409, "clone_detected",
		    "%s; this copy must re-enroll with its own identity", msg);
		goto out;
	}
	ips = dump(strs_json(f.ips, f.nips));
	macs = dump(strs_json(f.macs, f.nmacs));
	{
		const char *facts[] = {
		    f.hostname,   f.fqdn,   f.os, f.kernel,
		    f.arch,       ips,      macs, f.agent_version,
		    r->peer_addr, f.updates};
		uint64_t digest = seen_digest(facts, 10);

		/* Only the time is new: seen.c writes it with the others'
		 * (seen_flush). Changed facts, and an agent back online,
		 * are written now. */
		if (seen_note(c, id, now, digest, was_offline) == 1 &&
		    store_exec(
		        c->store,
		        "UPDATE agents SET last_seen = ?, hostname = ?, "
		        "fqdn = ?, os = ?, kernel = ?, arch = ?, ips = ?, "
		        "macs = ?, agent_version = ?, source_addr = ?, "
		        "updates = COALESCE(?, updates) WHERE id = ?",
		        S_INT(now), S_TEXT(f.hostname), S_TEXT(f.fqdn),
		        S_TEXT(f.os), S_TEXT(f.kernel), S_TEXT(f.arch),
		        S_TEXT(ips), S_TEXT(macs), S_TEXT(f.agent_version),
		        S_TEXT(r->peer_addr), S_TEXT(f.updates),
		        S_TEXT(id)) >= 0)
			seen_wrote(id, digest);
	}
	metrics_add("vigil_heartbeats_total", NULL, 1);
	if (was_offline) /* stream.c sends "offline" */
		stream_emit(
		    c, "agent",
		    json_pack("{s:s, s:s}", "id", id, "state", "online"));
	/* Ask for renewal once two thirds of the lifetime have passed. */
	renew = not_after != 0 &&
	        tls_not_after(r->peer) - now < c->conf.agent_cert_lifetime / 3;
	/* upgrade: a rollout chose this agent (rollout.c). */
	http_reply_json(r, 200,
	                json_pack("{s:s, s:I, s:I, s:b, s:o*}", "agent_id", id,
	                          "time", (json_int_t)now, "poll_interval",
	                          (json_int_t)c->conf.poll_interval, "renew",
	                          renew, "upgrade",
	                          rollout_heartbeat(c, id, &f)));
out:
	host_facts_free(&f);
	free(id);
	free(mid);
	free(ips);
	free(macs);
	buf_free(&err);
}

static void
gw_renew(struct http_req *r)
{
	struct center *c = C(r);
	struct store_rows *q;
	struct buf err, pem;
	X509_REQ *csr = NULL;
	json_t *j = NULL, *v;
	char *id = NULL, requester[128];
	int found = 0;

	buf_init(&err, 1024);
	buf_init(&pem, 16384);
	if ((id = peer_agent_id(r)) == NULL)
		goto out;
	if ((j = http_req_json(r)) == NULL)
		goto out;
	v = json_object_get(j, "csr");
	if (!json_is_string(v) || json_object_size(j) != 1) {
		http_reply_error(r, 400, "bad_request",
		                 "body must be {\"csr\": \"<PEM>\"}");
		goto out;
	}
	if (strlen(json_string_value(v)) > ENROLL_MAX_CSR) {
		http_reply_error(r, 400, "bad_csr", "csr: larger than %d bytes",
		                 ENROLL_MAX_CSR);
		goto out;
	}
	if (check_csr(r, json_string_value(v), &csr) == -1)
		goto out;
	q = store_query(
	    c->store, "SELECT 1 FROM agents WHERE id = ? AND status = 'active'",
	    S_TEXT(id));
	found = q != NULL && store_next(q) == 1;
	store_done(q);
	if (!found) {
		http_reply_error(r, 403, "unknown_agent",
		                 "agent %s is not enrolled here", id);
		goto out;
	}
	snprintf(requester, sizeof(requester),
	         "renewal by agent %.40s from %.46s", id, r->peer_addr);
	if (issue(c, id, json_string_value(v), requester, &pem, &err) == -1) {
		http_reply_error(r, 500, "issue_failed", "%s", buf_cstr(&err));
		goto out;
	}
	metrics_add("vigil_renewals_total", NULL, 1);
	log_info("gateway: renewed the certificate of agent %s", id);
	http_reply_json(r, 200,
	                json_pack("{s:s, s:s}", "certificate", buf_cstr(&pem),
	                          "ca", c->ca_pem));
out:
	X509_REQ_free(csr);
	json_decref(j);
	free(id);
	buf_free(&pem);
	buf_free(&err);
}

const struct http_route gateway_routes[] = {
    {"GET", "/v1/ping", gw_ping, 0, "ping", 0},
    {"GET", "/v1/ca", gw_ca, 0, "ca", 0},
    {"POST", "/v1/enroll", gw_enroll, 0, "enroll", 65536},
    {"GET", "/v1/enroll/", gw_enroll_poll, HTTP_ROUTE_PREFIX, "enroll_poll", 0},
    {"POST", "/v1/heartbeat", gw_heartbeat, HTTP_ROUTE_CERT, "heartbeat",
     65536},
    {"POST", "/v1/renew", gw_renew, HTTP_ROUTE_CERT, "renew", 65536},
    {NULL, NULL, NULL, 0, NULL, 0},
};

void
gateway_done(const char *route, int status, void *arg)
{
	char labels[128];

	(void)arg;
	snprintf(labels, sizeof(labels),
	         "listener=\"gateway\",route=\"%s\",status=\"%d\"", route,
	         status);
	metrics_add("vigil_http_requests_total", labels, 1);
}
