/*
 * vigild: the management center. The parent reads and checks the config,
 * forks the key process (the only holder of the CA key), opens the store,
 * binds the agent gateway and the admin API and runs the event loop.
 * SIGTERM/SIGINT stop it gracefully; SIGHUP reloads the config, the
 * server certificate and the forwarding targets file.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "center.h"
#include "clock.h"
#include "config.h"
#include "daemon.h"
#include "gwproc.h"
#include "httpc.h"
#include "metrics.h"
#include "scan.h"
#include "pki.h"
#include "priv.h"
#include "tls.h"

static void
usage(FILE *f)
{
	fprintf(f,
	        "usage: vigild [-dnv] -c FILE\n"
	        "       vigild --migrate -c FILE\n"
	        "       vigild --store-copy DB -c FILE\n"
	        "       vigild --list-routes\n"
	        "  -c FILE  configuration file (see vigild.conf(5))\n"
	        "  -d       stay in the foreground and log to stderr\n"
	        "  -n       check the configuration, certificates and ports, "
	        "then exit\n"
	        "  -v       verbose (debug) logging\n"
	        "  -h       this help\n"
	        "  -V       print the version\n"
	        "  --migrate  bring the database (SQLite or [store] url) to "
	        "this\n"
	        "           version's schema, then exit (vigild also does at "
	        "start)\n"
	        "  --store-copy DB  copy the SQLite database DB (the center "
	        "stopped)\n"
	        "           into the empty PostgreSQL database of [store] url, "
	        "then\n"
	        "           check the row counts and the audit chain there\n"
	        "  --list-routes  print METHOD PATH ROLE for every admin API "
	        "route, then exit\n");
}

static int
revoked_cb(X509 *leaf, void *arg)
{
	struct center *c = arg;
	char *serial = tls_serial_hex(leaf);
	int rc;

	if (serial == NULL)
		return 1;
	rc = db_is_revoked(c->store, serial);
	free(serial);
	return rc;
}

/* A session is resumed only with the agent's current certificate: after
 * a renewal the old one (still valid, not revoked) must not carry on
 * through tickets, or the center would keep asking for renewals. */
static int
stale_cb(X509 *leaf, void *arg)
{
	struct center *c = arg;
	char *serial = tls_serial_hex(leaf), *cn = tls_subject_cn(leaf);
	int rc;

	rc = serial == NULL || cn == NULL ||
	     !db_is_current_cert(c->store, cn, serial);
	free(serial);
	free(cn);
	return rc;
}

static void
tls_fail_cb(const char *reason)
{
	char labels[96];

	snprintf(labels, sizeof(labels), "reason=\"%s\"", reason);
	metrics_add("vigil_tls_handshake_failures_total", labels, 1);
}

/*
 * Every held task poll is a connection: take all the descriptors the hard
 * limit allows (the soft default of 1024 would cap the fleet), then size
 * the gateway to fit. [gateway] max_conns = 0 (the default) means "what
 * the limit allows, less FD_RESERVE for the database, the key process and
 * forwarders, less the admin API's connections and live update streams
 * (reserve)"; a warning only when the operator asked
 * for more than the system allows. Returns the gateway's connection limit
 * (0 = none).
 */
#define FD_RESERVE 100
static long long
fit_fd_limit(long long asked, long long reserve)
{
	struct rlimit rl;
	long long room;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return asked;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1) {
			log_warn("vigild: raising the file descriptor limit");
			(void)getrlimit(RLIMIT_NOFILE, &rl);
		}
	}
	if (rl.rlim_cur == RLIM_INFINITY)
		return asked;
	reserve += FD_RESERVE;
	room = (long long)rl.rlim_cur - reserve;
	if (room < 1)
		room = 1;
	if (asked == 0) {
		log_debug("vigild: gateway connection limit %lld (descriptor "
		          "limit %llu less %lld)",
		          room, (unsigned long long)rl.rlim_cur, reserve);
		return room;
	}
	if (asked > room)
		log_warnx(
		    "vigild: [gateway] max_conns = %lld is more than the "
		    "file descriptor limit (%llu) allows (%lld, %lld kept "
		    "for the admin API and the center itself): agents "
		    "beyond it cannot connect; raise the limit (ulimit -n, "
		    "LimitNOFILE=) or lower max_conns",
		    asked, (unsigned long long)rl.rlim_cur, room, reserve);
	return asked;
}

/* libevent's own diagnostics go through our log, not raw stderr. */
static void
vigild_event_log(int severity, const char *msg)
{
	if (severity >= EVENT_LOG_WARN)
		log_warnx("libevent: %s", msg);
	else
		log_debug("libevent: %s", msg);
}

static void
declare_metrics(void)
{
	metrics_declare("vigil_http_requests_total", METRIC_COUNTER,
	                "HTTP requests by listener, route and status");
	metrics_declare("vigil_tls_handshakes_total", METRIC_COUNTER,
	                "TLS connections that sent a request, by handshake: "
	                "full or resumed from a session ticket");
	metrics_declare("vigil_connections", METRIC_GAUGE,
	                "open connections by listener");
	metrics_declare("vigil_gateway_worker_restarts_total", METRIC_COUNTER,
	                "gateway worker processes restarted after they died "
	                "([gateway] workers)");
	metrics_declare("vigil_admin_worker_restarts_total", METRIC_COUNTER,
	                "admin worker processes restarted after they died "
	                "([admin] worker)");
	metrics_declare("vigil_syslog_worker_restarts_total", METRIC_COUNTER,
	                "syslog worker processes restarted after they died");
	metrics_declare("vigil_connections_closed_total", METRIC_COUNTER,
	                "connections the center closed or refused by "
	                "listener and reason (handshake_timeout, "
	                "request_timeout, evicted, per_addr_limit, full)");
	metrics_declare("vigil_tls_handshake_failures_total", METRIC_COUNTER,
	                "failed TLS handshakes by reason");
	metrics_declare("vigil_store_read_failures_total", METRIC_COUNTER,
	                "admin requests answered 503 because the database "
	                "could not be read completely");
	metrics_declare("vigil_enrollments_total", METRIC_COUNTER,
	                "enrollment attempts by result");
	metrics_declare("vigil_enrollments_pending", METRIC_GAUGE,
	                "enrollment requests awaiting approval");
	metrics_declare("vigil_heartbeats_total", METRIC_COUNTER,
	                "heartbeats accepted");
	metrics_declare("vigil_renewals_total", METRIC_COUNTER,
	                "agent certificates renewed");
	metrics_declare("vigil_revocations_total", METRIC_COUNTER,
	                "agents revoked");
	metrics_declare("vigil_clones_detected_total", METRIC_COUNTER,
	                "heartbeats refused because the identity was cloned");
	metrics_declare(
	    "vigil_admin_auth_failures_total", METRIC_COUNTER,
	    "admin API requests with missing or invalid credentials");
	metrics_declare("vigil_agents", METRIC_GAUGE, "agents by state");
	metrics_declare("vigil_agent_versions", METRIC_GAUGE,
	                "active agents by the version they last reported (the "
	                "32 most common; the rest as other)");
	metrics_declare("vigil_store_seconds", METRIC_SUMMARY,
	                "store latency by operation");
}

/* tickets: [gateway] session_tickets of the configuration being applied. */
static int
make_ctxs(struct center *c, long long tickets, SSL_CTX **gw, SSL_CTX **adm,
          struct buf *err)
{
	*gw = tls_server_ctx(c->paths.server_crt, c->paths.server_key,
	                     c->paths.ca_crt, TLS_CLIENT_OPTIONAL, revoked_cb,
	                     c, err);
	if (*gw == NULL)
		return -1;
	/* Agents only (docs/pki.md, "Who accepts whom"): a certificate of
	 * another role from this CA may neither enroll nor act as an agent.
	 * No role: agent certificates issued before roles existed. */
	tls_server_roles(
	    *gw, PKI_ROLE_BIT(PKI_ROLE_AGENT) | PKI_ROLE_BIT(PKI_ROLE_NONE),
	    "the agent gateway");
	if (tickets > 0 && tls_server_tickets(*gw, c->paths.tickets, tickets,
	                                      stale_cb, c, err) == -1) {
		SSL_CTX_free(*gw);
		*gw = NULL;
		return -1;
	}
	*adm = tls_server_ctx(c->paths.server_crt, c->paths.server_key, NULL,
	                      TLS_CLIENT_NONE, NULL, NULL, err);
	if (*adm == NULL) {
		SSL_CTX_free(*gw);
		*gw = NULL;
		return -1;
	}
	return 0;
}

static int
load_ca(struct center *c, struct buf *err)
{
	struct buf pem;

	X509_free(c->ca);
	if ((c->ca = tls_load_cert(c->paths.ca_crt, err)) == NULL)
		return -1;
	buf_init(&pem, sizeof(c->ca_pem) - 1);
	if (tls_cert_to_pem(c->ca, &pem) == -1) {
		buf_free(&pem);
		buf_puts(err, "CA certificate too large");
		return -1;
	}
	memcpy(c->ca_pem, pem.data, pem.len + 1);
	buf_free(&pem);
	return 0;
}

static void
apply_log(const struct center_conf *conf, int foreground, int verbose)
{
	log_init("vigild", log_dest_for(conf->log_dest, foreground),
	         verbose ? LOG_LVL_DEBUG : conf->log_level);
}

static int g_foreground, g_verbose;

static void
reload(struct center *c)
{
	struct center_conf nc, old;
	struct buf err;
	SSL_CTX *gw = NULL, *adm = NULL;

	buf_init(&err, 8192);
	log_info("vigild: SIGHUP: reloading %s", c->conf_path);
	if (center_conf_load(c->conf_path, &nc, &err) == -1) {
		log_warnx("vigild: reload failed, keeping the old "
		          "configuration:\n%s",
		          buf_cstr(&err));
		center_conf_free(&nc);
		goto out;
	}
	if (ldapauth_check(&nc) > 0) {
		log_warnx("vigild: reload failed ([ldap], see above), keeping "
		          "the old configuration");
		center_conf_free(&nc);
		goto out;
	}
	if (strcmp(nc.gw_listen, c->conf.gw_listen) != 0 ||
	    nc.gw_port != c->conf.gw_port ||
	    strcmp(nc.adm_listen, c->conf.adm_listen) != 0 ||
	    nc.adm_port != c->conf.adm_port ||
	    strcmp(nc.data_dir, c->conf.data_dir) != 0 ||
	    strcmp(nc.pki_dir, c->conf.pki_dir) != 0)
		log_warnx("vigild: listen addresses, data_dir and pki_dir "
		          "change only on restart");
	/* Keep the settings that need a restart as they are. */
	free(nc.gw_listen);
	nc.gw_listen = strdup(c->conf.gw_listen);
	nc.gw_port = c->conf.gw_port;
	free(nc.adm_listen);
	nc.adm_listen = strdup(c->conf.adm_listen);
	nc.adm_port = c->conf.adm_port;
	if (nc.adm_worker != c->conf.adm_worker)
		log_warnx("vigild: [admin] worker changes only on restart");
	nc.adm_worker = c->conf.adm_worker;
	/* [syslog]: its sockets are bound, and its worker (or the core's
	 * receiver) and the core's check of what the worker sends go by
	 * the max_message they started with. */
	if (nc.sl_enable != c->conf.sl_enable ||
	    nc.sl_worker != c->conf.sl_worker ||
	    strcmp(nc.sl_listen, c->conf.sl_listen) != 0 ||
	    nc.sl_udp_port != c->conf.sl_udp_port ||
	    nc.sl_tcp_port != c->conf.sl_tcp_port ||
	    nc.sl_max_message != c->conf.sl_max_message)
		log_warnx("vigild: [syslog] changes only on restart");
	nc.sl_enable = c->conf.sl_enable;
	nc.sl_worker = c->conf.sl_worker;
	free(nc.sl_listen);
	nc.sl_listen = strdup(c->conf.sl_listen);
	nc.sl_udp_port = c->conf.sl_udp_port;
	nc.sl_tcp_port = c->conf.sl_tcp_port;
	nc.sl_max_message = c->conf.sl_max_message;
	free(nc.data_dir);
	nc.data_dir = strdup(c->conf.data_dir);
	free(nc.pki_dir);
	nc.pki_dir = strdup(c->conf.pki_dir);
	if (make_ctxs(c, nc.gw_tickets, &gw, &adm, &err) == -1) {
		log_warnx("vigild: reload: keeping the old TLS settings "
		          "(certificates, session ticket keys): %s",
		          buf_cstr(&err));
	} else {
		http_server_set_ssl_ctx(c->gw, gw);
		http_server_set_ssl_ctx(c->adm, adm);
		SSL_CTX_free(c->gw_ctx);
		SSL_CTX_free(c->adm_ctx);
		c->gw_ctx = gw;
		c->adm_ctx = adm;
		gwproc_reload(c); /* after: it sends gw's ticket keys */
	}
	old = c->conf;
	c->conf = nc;
	apply_log(&c->conf, g_foreground, g_verbose);
	ratelimit_set_rate(c->enroll_rl, (double)c->conf.enroll_rate);
	ratelimit_set_rate(c->login_rl, (double)c->conf.login_rate);
	forward_reload(c);
	(void)console_apply(c);
	intel_reload(c, &old);
	center_conf_free(&old);
	log_info("vigild: configuration reloaded");
out:
	buf_free(&err);
}

/*
 * Restarts the key process; when it dies again within a minute of its
 * last start the restart waits (5 s, doubling to 5 min) so a key process
 * that cannot run does not spin. Signing fails with 500 meanwhile.
 */
static void
keyproc_restart_cb(evutil_socket_t fd, short what, void *arg)
{
	struct center *c = arg;
	struct buf err;

	(void)fd;
	(void)what;
	buf_init(&err, 1024);
	c->key_started = (long long)time(NULL);
	if (keyproc_start(c, &err) == -1) {
		log_warnx("vigild: key process: %s%s", buf_cstr(&err),
		          c->dropped ? " (a key process restarted after vigild "
		                       "gave up root cannot read the CA key: "
		                       "restart vigild to sign certificates "
		                       "again)"
		                     : "");
		keyproc_restart_later(c);
	} else
		log_info("vigild: key process restarted");
	buf_free(&err);
}

void
keyproc_restart_later(struct center *c)
{
	struct timeval tv = {0, 0};

	if ((long long)time(NULL) - c->key_started < 60)
		c->key_backoff = c->key_backoff ? c->key_backoff * 2 : 5;
	else
		c->key_backoff = 0;
	if (c->key_backoff > 300)
		c->key_backoff = 300;
	tv.tv_sec = c->key_backoff;
	if (c->ev_keyrestart == NULL)
		c->ev_keyrestart = evtimer_new(c->base, keyproc_restart_cb, c);
	if (c->key_backoff)
		log_warnx("vigild: restarting the key process in %lld s",
		          c->key_backoff);
	evtimer_add(c->ev_keyrestart, &tv);
}

/*
 * Graceful stop: close the listeners, let the requests in flight finish
 * (handlers reply at once, so only replies still being written and idle
 * keep-alive connections remain), and exit when no connection is left or
 * after STOP_GRACE seconds. A second signal exits at once.
 */
#define STOP_GRACE 5

static void
stop_tick(evutil_socket_t fd, short what, void *arg)
{
	struct center *c = arg;
	struct timeval tv = {0, 100000};
	long long open;

	(void)fd;
	(void)what;
	/* Connections that became idle since (a stream ended...). */
	http_server_drain(c->gw);
	http_server_drain(c->adm);
	/* Workers' connections count too (as they last reported them:
	 * a worker reports at once when it is told to drain). */
	open = http_server_conns(c->gw) + http_server_conns(c->adm) +
	       gwproc_conns(c) + gwproc_admin_conns(c);
	if (open == 0) {
		log_info("vigild: every connection closed, %lld s into the "
		         "stop",
		         (long long)time(NULL) - c->stopping);
		event_base_loopexit(c->base, NULL);
		return;
	}
	if ((long long)time(NULL) - c->stopping >= STOP_GRACE) {
		log_info("vigild: the stop's grace of %d s is over with %lld "
		         "connections open; closing them",
		         STOP_GRACE, open);
		event_base_loopexit(c->base, NULL);
		return;
	}
	evtimer_add(c->ev_stop, &tv);
}

static void
graceful_stop(struct center *c, int sig)
{
	if (c->stopping) {
		log_info("vigild: signal %d again: stopping now", sig);
		event_base_loopexit(c->base, NULL);
		return;
	}
	log_info("vigild: signal %d: shutting down (up to %d s for %lld open "
	         "connections)",
	         sig, STOP_GRACE,
	         (long long)http_server_conns(c->gw) +
	             http_server_conns(c->adm) + gwproc_conns(c) +
	             gwproc_admin_conns(c));
	c->stopping = (long long)time(NULL);
	c->stop_t0 = mono_now();
	http_server_stop_listening(c->gw);
	http_server_stop_listening(c->adm);
	if (c->mg)
		http_server_stop_listening(c->mg);
	/* Replies from now on close their connections, idle ones are
	 * closed now: the stop waits for replies in flight, not for idle
	 * keep-alive clients to leave. */
	http_server_drain(c->gw);
	http_server_drain(c->adm);
	if (c->mg)
		http_server_drain(c->mg);
	/* The workers the same, before the replies below (one channel
	 * each, in order): a worker adds Connection: close to a reply
	 * only once it drains, and a held poll's 503 that kept its
	 * connection would hold the stop for its grace. */
	gwproc_drain(c);
	/* The syslog listener stops receiving (its worker exits on the
	 * drain): its sockets close, and senders are refused rather than
	 * queued for nobody until the exit. */
	syslogin_stop(c);
	tasks_shutdown(c); /* held polls: 503, poll again after restart */
	stream_shutdown(c);
	log_info("vigild: the held requests answered %.2f s into the stop",
	         mono_now() - c->stop_t0);
	if ((c->ev_stop = evtimer_new(c->base, stop_tick, c)) == NULL) {
		event_base_loopexit(c->base, NULL);
		return;
	}
	stop_tick(-1, 0, c);
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct center *c = arg;

	(void)what;
	switch (sig) {
	case SIGHUP:
		reload(c);
		break;
	case SIGCHLD: {
		pid_t pid;
		int st;

		while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
			if (gwproc_reaped(c, pid, st))
				continue;
			if (pid == c->keypid) {
				log_warnx("vigild: the key process exited "
				          "(status %d); restarting it",
				          st);
				c->keypid = 0;
				if (c->keyfd != -1)
					close(c->keyfd);
				c->keyfd = -1;
				keyproc_restart_later(c);
			}
		}
		break;
	}
	default:
		graceful_stop(c, (int)sig);
	}
}

/* Every audit entry also becomes an event of type "audit": searchable,
 * and forwarded like any event (docs/forwarding.md). */
static void
audit_to_events(json_t *entry, void *arg)
{
	if (forward_audit(arg, entry) == -1)
		log_warnx("audit: entry %lld not stored as an event",
		          (long long)json_integer_value(
		              json_object_get(entry, "id")));
}

/* One route table per listener, from the parts' tables. */
static struct http_route *
routes_merge(const struct http_route *const *parts, size_t n)
{
	struct http_route *all;
	size_t i, k = 0, total = 1;
	const struct http_route *rt;

	for (i = 0; i < n; i++)
		for (rt = parts[i]; rt->fn != NULL; rt++)
			total++;
	if ((all = calloc(total, sizeof(*all))) == NULL)
		fatalx("%s: out of memory", __func__);
	for (i = 0; i < n; i++)
		for (rt = parts[i]; rt->fn != NULL; rt++)
			all[k++] = *rt;
	return all;
}

/* The admin API: every part's routes, in one table. */
static struct http_route *
admin_table(void)
{
	const struct http_route *admp[] = {
	    auth_admin_routes,      admin_routes,          tasks_admin_routes,
	    events_admin_routes,    forward_admin_routes,  audit_admin_routes,
	    settings_admin_routes,  findings_admin_routes, stream_admin_routes,
	    collector_admin_routes, master_admin_routes,   updates_admin_routes,
	    rollout_admin_routes};

	return routes_merge(admp, sizeof(admp) / sizeof(admp[0]));
}

static int
list_routes(void)
{
	struct http_route *all = admin_table(), *rt;

	for (rt = all; rt->fn != NULL; rt++)
		printf("%s %s%s %s\n", rt->method, rt->path,
		       (rt->flags & HTTP_ROUTE_PREFIX) ? "*" : "",
		       role_name(role_needed(rt)));
	free(all);
	return 0;
}

/* Removes the vigild.ports file if it still names this process. */
static void
unlink_own_ports(const char *path)
{
	json_t *j;
	long pid = 0;

	if ((j = json_load_file(path, 0, NULL)) == NULL)
		return;
	pid = (long)json_integer_value(json_object_get(j, "pid"));
	json_decref(j);
	if (pid == (long)getpid())
		unlink(path);
}

static int
write_ports(struct center *c, struct buf *err)
{
	char s[256];
	int n;

	n = snprintf(s, sizeof(s),
	             "{\"gateway\": %d, \"admin\": %d, \"syslog_udp\": %d, "
	             "\"syslog_tcp\": %d, \"collector\": %d, \"manage\": %d, "
	             "\"updates\": %d, \"pid\": %ld}\n",
	             c->gw_port, c->adm_port, c->sl_udp_port, c->sl_tcp_port,
	             c->coll_port, c->mg_port, updates_port(c), (long)getpid());
	return tls_write_file(c->paths.ports, s, (size_t)n, 0644, err);
}

/*
 * Started as root, vigild keeps root only for what needs it: binding the
 * ports and starting the key process, which alone reads the CA key. Then
 * [center] user gets the data directory and the center's own TLS key
 * (server.crt and server.key, re-read on SIGHUP), the PKI directory is
 * opened to its group (read and enter, never write: ca.key stays root's
 * 0600 file), and root is dropped for good. [center] user = root skips
 * this (tests only); started as anyone else, vigild already is who it
 * runs as.
 */
static int
drop_root(struct center *c, struct buf *err)
{
	struct stat st;
	uid_t uid;
	gid_t gid;

	if (geteuid() != 0)
		return 0;
	if (strcmp(c->conf.user, "root") == 0) {
		log_warnx(
		    "vigild: running as root ([center] user = root): "
		    "for tests only; a parser bug would then run as root");
		return 0;
	}
	if (priv_lookup(c->conf.user, "[center] user", &uid, &gid, err) == -1)
		return -1;
	if (priv_chown_tree(c->conf.data_dir, uid, gid, err) == -1 ||
	    priv_chown(c->paths.server_crt, uid, gid, err) == -1 ||
	    priv_chown(c->paths.server_key, uid, gid, err) == -1)
		return -1;
	if (stat(c->conf.pki_dir, &st) == -1) {
		buf_printf(err, "%s: %s", c->conf.pki_dir, strerror(errno));
		return -1;
	}
	if (st.st_gid != gid && chown(c->conf.pki_dir, (uid_t)-1, gid) == -1) {
		buf_printf(err, "%s: cannot give it to group %ld: %s",
		           c->conf.pki_dir, (long)gid, strerror(errno));
		return -1;
	}
	if ((st.st_mode & 0050) != 0050 &&
	    chmod(c->conf.pki_dir,
	          (st.st_mode & 07777 & ~(mode_t)0020) | 0050) == -1) {
		buf_printf(err, "%s: %s", c->conf.pki_dir, strerror(errno));
		return -1;
	}
	if (priv_drop(uid, gid, err) == -1)
		return -1;
	c->dropped = 1;
	log_info("vigild: running as %s (uid %ld); the key process stays root",
	         c->conf.user, (long)uid);
	return 0;
}

int
main(int argc, char **argv)
{
	static struct center c;
	struct buf err;
	struct http_limits gl = {0}, al = {0};
	const char *conf = NULL, *copy_from = NULL;
	long long gw_max_conns;
	int ch, check_only = 0, migrate_only = 0, rc = 1, wrote_ports = 0;
	double t_loop = 0, t_down = 0, t_workers = 0;
	static const struct option longopts[] = {
	    {"list-routes", no_argument, NULL, 'R'},
	    {"gateway-worker", no_argument, NULL, 'G'},
	    {"admin-worker", no_argument, NULL, 'A'},
	    {"syslog-worker", no_argument, NULL, 'S'},
	    {"migrate", no_argument, NULL, 'M'},
	    {"store-copy", required_argument, NULL, 'C'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};

	while ((ch = getopt_long(argc, argv, "c:dnvhV", longopts, NULL)) !=
	       -1) {
		switch (ch) {
		case 'R':
			return list_routes();
		case 'G':
			/* spawned by gwproc.c, settings on descriptor 3 */
			return gwworker_main(0);
		case 'A':
			return gwworker_main(1);
		case 'S':
			return syslogworker_main();
		case 'M':
			migrate_only = 1;
			break;
		case 'C':
			copy_from = optarg;
			break;
		case 'c':
			conf = optarg;
			break;
		case 'd':
			g_foreground = 1;
			break;
		case 'n':
			check_only = 1;
			break;
		case 'v':
			g_verbose = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("vigild %s\n", VIGIL_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (conf == NULL || optind != argc) {
		usage(stderr);
		return 2;
	}
	log_init("vigild", LOG_DEST_STDERR,
	         g_verbose ? LOG_LVL_DEBUG : LOG_LVL_INFO);
	buf_init(&err, 65536);
	c.conf_path = conf;
	c.keyfd = -1;
	c.monfd = -1;
	/* Everything vigild creates (store, keys, runtime files) is private. */
	umask(077);
	c.started = (long long)time(NULL);
	if (center_conf_load(conf, &c.conf, &err) == -1) {
		fprintf(stderr, "%s", buf_cstr(&err));
		if (err.len && err.data[err.len - 1] != '\n')
			fputc('\n', stderr);
		fprintf(stderr, "vigild: %s: configuration has errors\n", conf);
		goto out;
	}
	center_paths_init(&c.conf, &c.paths);
	if (copy_from != NULL) {
		if (center_store_copy(&c, copy_from, &err) == -1) {
			log_warnx("vigild: store copy: %s", buf_cstr(&err));
			goto out;
		}
		rc = 0;
		goto out;
	}
	if (migrate_only) {
		/* The migrations store_open applies, and nothing else: run
		 * before starting new nodes on a shared database. */
		if (daemon_ensure_dir(c.conf.data_dir, &err) == -1 ||
		    center_store_open(&c, &err) == -1) {
			log_warnx("vigild: store: %s", buf_cstr(&err));
			goto out;
		}
		printf("vigild: %s: schema version %d\n", center_store_name(&c),
		       store_schema_version(c.store));
		rc = 0;
		goto out;
	}
	/* With gateway workers, max_conns is each worker's (gwworker.c
	 * fits it to its own descriptor limit). */
	gw_max_conns =
	    fit_fd_limit(c.conf.gw_workers > 0 ? 0 : c.conf.gw_max_conns,
	                 ADMIN_MAX_CONNS + c.conf.max_streams);
	if (c.conf.gw_workers > 0 && c.conf.gw_max_conns > 0) {
		struct rlimit rl;

		/* Said here too, so that -n says it before the start. */
		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
		    rl.rlim_cur != RLIM_INFINITY &&
		    c.conf.gw_max_conns > (long long)rl.rlim_cur - 64)
			log_warnx("vigild: [gateway] max_conns = %lld is more "
			          "than the file descriptor limit (%llu) "
			          "allows for each gateway worker (%lld): "
			          "each holds that many at most",
			          c.conf.gw_max_conns,
			          (unsigned long long)rl.rlim_cur,
			          (long long)rl.rlim_cur - 64);
	}
	if (center_check(&c.conf, &c.paths, check_only) > 0) {
		log_warnx("vigild: %s: the checks above failed%s", conf,
		          check_only ? "" : "; not starting");
		goto out;
	}
	if (check_only) {
		/* The key check needs the key process: start and stop it. */
		if (keyproc_start(&c, &err) == -1) {
			log_warnx("check: key process: %s", buf_cstr(&err));
			goto out;
		}
		keyproc_stop(&c);
		printf("vigild: %s: configuration OK\n", conf);
		rc = 0;
		goto out;
	}
	if (daemon_ensure_dir(c.conf.data_dir, &err) == -1) {
		log_warnx("vigild: %s", buf_cstr(&err));
		goto out;
	}
	if (!g_foreground && daemon_detach() == -1) {
		log_warn("vigild: detaching");
		goto out;
	}
	signal(SIGPIPE, SIG_IGN);
	declare_metrics();
	events_declare_metrics();
	audit_declare_metrics();
	space_declare_metrics();
	stream_declare_metrics();
	intel_declare_metrics();
	if (scan_init() == -1)
		fatalx("vigild: cannot initialise the scan engine");
	/* The master calls its centers with libcurl: initialised here,
	 * before any thread. */
	if (c.conf.role == CENTER_ROLE_MASTER && httpc_global_init() == -1)
		fatalx("vigild: cannot initialise libcurl");
	event_set_log_callback(vigild_event_log);
	tls_set_failure_hook(tls_fail_cb);
	/* Fork the key process first: it inherits no store handle, socket or
	 * event base. */
	c.key_started = (long long)time(NULL);
	if (keyproc_start(&c, &err) == -1) {
		log_warnx("vigild: key process: %s", buf_cstr(&err));
		goto out;
	}
	if (space_check_start(&c, &err) == -1) {
		log_warnx("vigild: %s", buf_cstr(&err));
		goto out;
	}
	if (load_ca(&c, &err) == -1 ||
	    make_ctxs(&c, c.conf.gw_tickets, &c.gw_ctx, &c.adm_ctx, &err) ==
	        -1) {
		log_warnx("vigild: %s", buf_cstr(&err));
		goto out;
	}
	if ((c.enroll_rl = ratelimit_new((double)c.conf.enroll_rate,
	                                 (double)c.conf.enroll_rate)) == NULL ||
	    (c.base = http_event_base_new()) == NULL)
		fatalx("vigild: out of memory");
	gl.max_body = (size_t)c.conf.gw_max_body;
	gl.max_headers = 16384;
	gl.timeout_secs = (int)c.conf.gw_timeout;
	gl.max_conns = (int)gw_max_conns;
	gl.handshake_timeout = (int)c.conf.gw_handshake_timeout;
	gl.request_timeout = (int)c.conf.gw_request_timeout;
	gl.max_per_addr = (int)c.conf.gw_max_per_addr;
	/* Several gateway workers: each gets a listening socket of its own
	 * on the port (SO_REUSEPORT, made below while root), and the kernel
	 * spreads the connections over them. One shared socket left them to
	 * whichever worker woke first: 198 of 200 connections on one of two
	 * workers, which then reached its descriptor limit alone. */
	gl.reuseport = c.conf.gw_workers > 1 ? 1 : 0;
	al.max_body = (size_t)c.conf.adm_max_body;
	al.max_headers = 16384;
	al.timeout_secs = (int)c.conf.adm_timeout;
	al.max_conns = ADMIN_MAX_CONNS;
	al.handshake_timeout = (int)c.conf.adm_handshake_timeout;
	al.request_timeout = (int)c.conf.adm_request_timeout;
	al.max_per_addr = (int)c.conf.adm_max_per_addr;
	{
		const struct http_route *gwp[] = {
		    gateway_routes, tasks_gateway_routes, events_gateway_routes,
		    intel_gateway_routes, updates_gateway_routes};
		c.gw_routes = routes_merge(gwp, 5);
		c.adm_routes = admin_table();
	}
	c.gw = http_server_new(c.base, c.gw_ctx, c.gw_routes, &c, &gl,
	                       gateway_done);
	c.adm = http_server_new(c.base, c.adm_ctx, c.adm_routes, &c, &al,
	                        admin_done);
	if (c.gw == NULL || c.adm == NULL)
		fatalx("vigild: cannot create the HTTP servers");
	/* Every admin request is authorized here, by its route's role,
	 * before any handler runs; every authorized change is audited. */
	http_server_set_authorizer(c.adm, admin_gate);
	http_server_set_reply_check(c.adm, admin_reply_check);
	http_server_set_reply_hook(c.adm, audit_reply_hook);
	http_server_set_handler_done(c.adm, admin_handler_done);
	http_server_set_fallback(c.adm, console_serve);
	if (console_apply(&c) == -1)
		fatalx("vigild: [admin] console_dir: see above");
	if (http_server_bind(c.gw, c.conf.gw_listen, (int)c.conf.gw_port,
	                     &c.gw_port, &err) == -1 ||
	    http_server_bind(c.adm, c.conf.adm_listen, (int)c.conf.adm_port,
	                     &c.adm_port, &err) == -1) {
		log_warnx("vigild: %s", buf_cstr(&err));
		goto out;
	}
	for (c.gw_nlfd = 0; c.gw_nlfd + 1 < (int)c.conf.gw_workers; c.gw_nlfd++)
		if ((c.gw_lfd[c.gw_nlfd] =
		         http_server_listen_join(c.gw, &err)) == -1) {
			log_warnx("vigild: [gateway] listen: %s",
			          buf_cstr(&err));
			goto out;
		}
	if (syslogin_start(&c, &err) == -1) {
		log_warnx("vigild: %s", buf_cstr(&err));
		goto out;
	}
	/* The collector's and the management listeners bind (and load
	 * their keys) as root too. */
	if (collector_start(&c, &err) == -1) {
		log_warnx("vigild: collector: %s", buf_cstr(&err));
		goto out;
	}
	if (manage_start(&c, &err) == -1) {
		log_warnx("vigild: [manage]: %s", buf_cstr(&err));
		goto out;
	}
	/* [updates]: the root and the proxy credentials are read and the
	 * update listener bound while root; the mirror runs later. */
	if (updates_start(&c, &err) == -1 ||
	    updates_listen(&c, &gl, &err) == -1) {
		log_warnx("vigild: [updates]: %s", buf_cstr(&err));
		goto out;
	}
	/* Every port is bound and the key process runs: root is no longer
	 * needed. Everything after this, the store first, runs as
	 * [center] user. */
	if (drop_root(&c, &err) == -1) {
		log_warnx("vigild: %s", buf_cstr(&err));
		goto out;
	}
	/* The kernel interfaces a network service never needs are closed
	 * to the core (and the workers it starts): coresandbox.c. */
	if (core_sandbox(&err) == -1) {
		log_warnx("vigild: seccomp: %s", buf_cstr(&err));
		goto out;
	}
	if (center_store_open(&c, &err) == -1) {
		log_warnx("vigild: store: %s", buf_cstr(&err));
		goto out;
	}
	/* [gateway] workers and the [admin] worker: they run as the core
	 * now does; gateway workers learn the revoked certificates from the
	 * store. */
	c.foreground = g_foreground;
	if (gwproc_start(&c, &err) == -1 ||
	    gwproc_admin_start(&c, &err) == -1 ||
	    gwproc_syslog_start(&c, &err) == -1) {
		log_warnx("vigild: %s", buf_cstr(&err));
		goto out;
	}
	if (admin_bootstrap_key(&c, &err) == -1) {
		log_warnx("vigild: %s", buf_cstr(&err));
		goto out;
	}
	if (auth_init(&c) == -1)
		fatalx("vigild: cannot set up admin authentication");
	if (store_is_pg(c.store)) {
		/* Rate limits hold across the nodes of the database. */
		if ((c.rl_store =
		         store_open(c.conf.store_url, center_migrations,
		                    center_nmigrations, &err)) == NULL) {
			log_warnx("vigild: store: %s", buf_cstr(&err));
			goto out;
		}
		ratelimit_share(c.enroll_rl, c.rl_store, "enroll");
		ratelimit_share(c.login_rl, c.rl_store, "login");
	}
	if (updates_run(&c, &err) == -1) {
		log_warnx("vigild: [updates]: %s", buf_cstr(&err));
		goto out;
	}
	if (write_ports(&c, &err) == -1)
		log_warnx("vigild: %s", buf_cstr(&err));
	else
		wrote_ports = 1;
	/* Started: from here on log where the configuration says. */
	daemon_ready(log_dest_for(c.conf.log_dest, g_foreground) ==
	             LOG_DEST_SYSLOG);
	apply_log(&c.conf, g_foreground, g_verbose);
	c.ev_term = evsignal_new(c.base, SIGTERM, on_signal, &c);
	c.ev_int = evsignal_new(c.base, SIGINT, on_signal, &c);
	c.ev_hup = evsignal_new(c.base, SIGHUP, on_signal, &c);
	c.ev_chld = evsignal_new(c.base, SIGCHLD, on_signal, &c);
	event_add(c.ev_term, NULL);
	event_add(c.ev_int, NULL);
	event_add(c.ev_hup, NULL);
	event_add(c.ev_chld, NULL);
	log_info("vigild: %s: agent gateway on %s:%d, admin API on %s:%d",
	         c.conf.fqdn, c.conf.gw_listen, c.gw_port, c.conf.adm_listen,
	         c.adm_port);
	if (tasks_init(&c) == -1)
		fatalx("vigild: cannot start the task timer");
	if (space_init(&c) == -1)
		fatalx("vigild: cannot start the free space timer");
	if (ingest_start(&c, &err) == -1) {
		log_warnx("vigild: event writer: %s", buf_cstr(&err));
		goto out;
	}
	if (intel_start(&c, &err) == -1) {
		log_warnx("vigild: [intel]: %s", buf_cstr(&err));
		goto out;
	}
	if (forward_init(&c) == -1)
		fatalx("vigild: cannot start forwarding");
	if (center_store_check_start(&c) == -1)
		fatalx("vigild: cannot start the store check timer");
	if (seen_init(&c) == -1)
		fatalx("vigild: cannot start the check-in writer");
	if (node_init(&c) == -1)
		fatalx("vigild: cannot start the node's heartbeat");
	if (master_start(&c) == -1)
		fatalx("vigild: cannot start the master's calls to centers");
	audit_set_sink(audit_to_events, &c);
	event_base_dispatch(c.base);
	rc = 0;
	t_loop = mono_now();
out:
	master_stop(&c); /* answers the requests waiting for centers */
	tasks_shutdown(&c);
	seen_shutdown(&c); /* writes the check-in times noted */
	stream_shutdown(&c);
	ingest_stop(&c); /* stores and answers the batches queued */
	intel_stop(&c);
	updates_stop(&c);
	syslogin_stop(&c);
	collector_stop(&c);
	manage_stop(&c);
	audit_set_sink(NULL, NULL);
	forward_shutdown(&c);
	node_shutdown(&c); /* after forwarding: hands its leases over */
	if (c.ev_tick)
		event_free(c.ev_tick);
	if (c.ev_wake)
		event_free(c.ev_wake);
	if (c.ev_status)
		event_free(c.ev_status);
	space_shutdown();
	t_down = mono_now();
	gwproc_stop(&c);
	t_workers = mono_now();
	if (c.gw)
		http_server_free(c.gw);
	if (c.adm)
		http_server_free(c.adm);
	if (c.ev_keyrestart)
		event_free(c.ev_keyrestart);
	if (c.ev_stop)
		event_free(c.ev_stop);
	if (c.ev_storecheck)
		event_free(c.ev_storecheck);
	if (c.ev_chld) {
		event_free(c.ev_chld);
		event_free(c.ev_hup);
		event_free(c.ev_int);
		event_free(c.ev_term);
	}
	keyproc_stop(&c);
	if (c.base)
		event_base_free(c.base);
	SSL_CTX_free(c.gw_ctx);
	SSL_CTX_free(c.adm_ctx);
	X509_free(c.ca);
	store_close(c.store);
	store_close(c.rl_store);
	/* Where a long stop went (measured at 100,000 agents). */
	if (c.stop_t0 > 0)
		log_info("vigild: stopped %.2f s after the signal (the loop "
		         "left at %.2f s, the parts were shut down by %.2f s, "
		         "the workers gone by %.2f s, then the store closed)",
		         mono_now() - c.stop_t0, t_loop - c.stop_t0,
		         t_down - c.stop_t0, t_workers - c.stop_t0);
	ratelimit_free(c.enroll_rl);
	ratelimit_free(c.login_rl);
	/* Only our own: `vigild -n` must not take away the running
	 * center's file, nor a center stopping late the file of the one
	 * that started after it on the same data directory. */
	if (wrote_ports && rc == 0)
		unlink_own_ports(c.paths.ports);
	center_conf_free(&c.conf);
	metrics_reset();
	free(c.gw_routes);
	free(c.adm_routes);
	console_free(c.console);
	buf_free(&err);
	return rc;
}
