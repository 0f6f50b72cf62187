/*
 * vigil-inteld: the local threat-intelligence reputation service. Reads
 * and checks the config, opens the indicator store (LMDB) in the data
 * directory, starts the writer thread and the HTTPS (and optional plain
 * HTTP) listeners, and runs the event loop. SIGHUP re-reads the API keys
 * and the settings that need no restart; SIGTERM/SIGINT stop it
 * gracefully: listeners close, the writer finishes the job under way and
 * those queued (an import is committed whole or not at all), requests in
 * flight are answered.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "inteld.h"
#include "metrics.h"
#include "pki.h"
#include "tls.h"

#define STOP_GRACE 30

static int g_foreground, g_verbose;

static void
usage(FILE *f)
{
	fprintf(f, "usage: vigil-inteld [-dnv] -c FILE\n"
	           "       vigil-inteld --list-routes\n"
	           "  -c FILE  configuration file (see vigil-inteld.conf(5))\n"
	           "  -d       stay in the foreground and log to stderr\n"
	           "  -n       check the configuration, keys and "
	           "certificates, then exit\n"
	           "  -v       verbose (debug) logging\n"
	           "  -h       this help\n"
	           "  -V       print the version\n"
	           "  --list-routes  print METHOD PATH ROLE for every API "
	           "route (PATH*: a prefix)\n");
}

static void
inteld_event_log(int severity, const char *msg)
{
	if (severity >= EVENT_LOG_WARN)
		log_warnx("libevent: %s", msg);
	else
		log_debug("libevent: %s", msg);
}

/* Its own certificate: one issued for it, or the center's when it shares
 * the center's host and certificate, or one without a role (made before
 * roles, or by the site's own CA). */
#define OWN_ROLES                                                              \
	(PKI_ROLE_BIT(PKI_ROLE_INTEL) | PKI_ROLE_BIT(PKI_ROLE_CENTER) |        \
	 PKI_ROLE_BIT(PKI_ROLE_NONE))

static SSL_CTX *
make_ssl(const struct inteld_conf *c, struct buf *err)
{
	if (pki_check_cert_role(c->cert, OWN_ROLES,
	                        "vigil-inteld's server certificate", err) == -1)
		return NULL;
	return tls_server_ctx(c->cert, c->key, c->client_ca,
	                      c->client_ca ? TLS_CLIENT_OPTIONAL
	                                   : TLS_CLIENT_NONE,
	                      NULL, NULL, err);
}

static void
reload(struct inteld *d)
{
	struct inteld_conf nc;
	struct inteld_key *keys;
	size_t nkeys;
	SSL_CTX *ctx = NULL;
	struct buf err;

	buf_init(&err, 65536);
	log_info("inteld: SIGHUP: reloading %s", d->conf_path);
	if (inteld_conf_load(d->conf_path, &nc, &err) == -1 ||
	    inteld_keys_load(&nc, &keys, &nkeys, &err) == -1) {
		log_warnx("inteld: reload failed, keeping the old "
		          "configuration:\n%s",
		          buf_cstr(&err));
		inteld_conf_free(&nc);
		goto out;
	}
	if (d->https != NULL && nc.https_enable &&
	    (ctx = make_ssl(&nc, &err)) == NULL) {
		log_warnx("inteld: reload: [https]: %s; keeping the old "
		          "configuration",
		          buf_cstr(&err));
		free(keys);
		inteld_conf_free(&nc);
		goto out;
	}
	if (ctx != NULL) {
		http_server_set_ssl_ctx(d->https, ctx);
		SSL_CTX_free(d->ssl_ctx);
		d->ssl_ctx = ctx;
	}
	explicit_bzero(d->keys, d->nkeys * sizeof(*d->keys));
	free(d->keys);
	d->keys = keys;
	d->nkeys = nkeys;
	/* What can change without a restart. */
	d->conf.max_batch = nc.max_batch;
	d->conf.default_priority = nc.default_priority;
	d->conf.cert_role = nc.cert_role;
	log_setlevel(g_verbose ? LOG_LVL_DEBUG : nc.log_level);
	log_info("inteld: reloaded; %zu API keys", nkeys);
	inteld_conf_free(&nc);
out:
	buf_free(&err);
}

static int
conns(struct inteld *d)
{
	return (d->https ? http_server_conns(d->https) : 0) +
	       (d->http ? http_server_conns(d->http) : 0);
}

static void
stop_tick(evutil_socket_t fd, short what, void *arg)
{
	struct inteld *d = arg;
	struct timeval tv = {0, 100000};

	(void)fd;
	(void)what;
	if ((d->inflight == 0 && conns(d) == 0) ||
	    (long long)time(NULL) - d->stopping >= STOP_GRACE) {
		event_base_loopexit(d->base, NULL);
		return;
	}
	evtimer_add(d->ev_stop, &tv);
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct inteld *d = arg;

	(void)what;
	if (sig == SIGHUP) {
		reload(d);
		return;
	}
	if (d->stopping) {
		log_info("inteld: signal %d again: stopping now", (int)sig);
		event_base_loopexit(d->base, NULL);
		return;
	}
	log_info("inteld: signal %d: shutting down (%d changes in flight)",
	         (int)sig, d->inflight);
	d->stopping = (long long)time(NULL);
	if (d->https)
		http_server_stop_listening(d->https);
	if (d->http)
		http_server_stop_listening(d->http);
	if ((d->ev_stop = evtimer_new(d->base, stop_tick, d)) == NULL) {
		event_base_loopexit(d->base, NULL);
		return;
	}
	stop_tick(-1, 0, d);
}

static int
write_ports(struct inteld *d, struct buf *err)
{
	char t[128];
	int n;

	n = snprintf(t, sizeof(t),
	             "{\"https\": %d, \"http\": %d, \"pid\": %ld}\n",
	             d->https ? d->https_port : 0, d->http ? d->http_port : 0,
	             (long)getpid());
	return tls_write_file(d->ports_path, t, (size_t)n, 0644, err);
}

/* Jobs the writer finished after the loop ended: nobody to answer. */
static void
late_done(struct wjob *j, void *arg)
{
	(void)arg;
	log_info("inteld: a change finished during the stop (status %d)",
	         j->status);
	wjob_free(j);
}

static int
list_routes(void)
{
	static const char *const roles[] = {"admin", "lookup", "public"};
	const struct http_route *rt;

	for (rt = inteld_routes; rt->fn != NULL; rt++)
		printf("%s %s%s %s\n", rt->method, rt->path,
		       (rt->flags & HTTP_ROUTE_PREFIX) ? "*" : "",
		       roles[rt->role]);
	return 0;
}

int
main(int argc, char **argv)
{
	static struct inteld d;
	struct http_limits lim;
	struct buf err;
	const char *conf = NULL;
	static const struct option longopts[] = {
	    {"list-routes", no_argument, NULL, 'R'},
	    {NULL, 0, NULL, 0},
	};
	int ch, check_only = 0, rc = 1;

	while ((ch = getopt_long(argc, argv, "c:dnvhV", longopts, NULL)) !=
	       -1) {
		switch (ch) {
		case 'R':
			return list_routes();
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
			printf("vigil-inteld %s\n", VIGIL_VERSION);
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
	log_init("vigil-inteld", LOG_DEST_STDERR,
	         g_verbose ? LOG_LVL_DEBUG : LOG_LVL_INFO);
	buf_init(&err, 1 << 20);
	d.conf_path = conf;
	umask(077);
	d.started = (long long)time(NULL);
	if (inteld_conf_load(conf, &d.conf, &err) == -1) {
		fprintf(stderr, "%s", buf_cstr(&err));
		if (err.len && err.data[err.len - 1] != '\n')
			fputc('\n', stderr);
		fprintf(stderr, "vigil-inteld: %s: configuration has errors\n",
		        conf);
		goto out;
	}
	if (inteld_keys_load(&d.conf, &d.keys, &d.nkeys, &err) == -1) {
		fprintf(stderr, "%s", buf_cstr(&err));
		fprintf(stderr, "vigil-inteld: %s: the API keys have errors\n",
		        conf);
		goto out;
	}
	if ((size_t)snprintf(d.ports_path, sizeof(d.ports_path),
	                     "%s/vigil-inteld.ports",
	                     d.conf.data_dir) >= sizeof(d.ports_path)) {
		log_warnx("vigil-inteld: data_dir too long");
		goto out;
	}
	if (d.conf.https_enable &&
	    (d.ssl_ctx = make_ssl(&d.conf, &err)) == NULL) {
		log_warnx("vigil-inteld: [https]: %s", buf_cstr(&err));
		goto out;
	}
	if (d.nkeys == 0 && d.conf.client_ca == NULL)
		log_warnx("vigil-inteld: no API keys and no client_ca: only "
		          "/api/v1/health will answer");
	if (check_only) {
		printf("vigil-inteld: %s: configuration OK (%zu API keys)\n",
		       conf, d.nkeys);
		rc = 0;
		goto out;
	}
	if (daemon_ensure_dir(d.conf.data_dir, &err) == -1) {
		log_warnx("vigil-inteld: %s", buf_cstr(&err));
		goto out;
	}
	if (istore_open(d.conf.data_dir, d.conf.map_size, &d.store, &err) ==
	    -1) {
		log_warnx("vigil-inteld: store: %s", buf_cstr(&err));
		goto out;
	}
	if (!g_foreground && daemon_detach() == -1) {
		log_warn("vigil-inteld: detaching");
		goto out;
	}
	signal(SIGPIPE, SIG_IGN);
	inteld_declare_metrics();
	event_set_log_callback(inteld_event_log);
	if ((d.base = event_base_new()) == NULL)
		fatalx("vigil-inteld: out of memory");
	if ((d.writer = writer_start(d.store, d.base, inteld_job_done, &d)) ==
	    NULL)
		fatalx("vigil-inteld: cannot start the writer");
	memset(&lim, 0, sizeof(lim));
	lim.max_body = (size_t)d.conf.max_import;
	lim.max_headers = 16384;
	lim.timeout_secs = (int)d.conf.timeout;
	lim.max_conns = (int)d.conf.max_conns;
	lim.max_per_addr = (int)d.conf.max_per_addr;
	lim.handshake_timeout = (int)d.conf.handshake_timeout;
	lim.request_timeout = (int)d.conf.request_timeout;
	if (d.conf.https_enable) {
		d.https = http_server_new(d.base, d.ssl_ctx, inteld_routes, &d,
		                          &lim, inteld_http_done);
		if (d.https == NULL)
			fatalx("vigil-inteld: cannot create the HTTPS server");
		http_server_set_authorizer(d.https, inteld_authorize);
		if (http_server_bind(d.https, d.conf.https_listen,
		                     (int)d.conf.https_port, &d.https_port,
		                     &err) == -1) {
			log_warnx("vigil-inteld: [https] %s", buf_cstr(&err));
			goto out;
		}
	}
	if (d.conf.http_enable) {
		d.http = http_server_new(d.base, NULL, inteld_routes, &d, &lim,
		                         inteld_http_done);
		if (d.http == NULL)
			fatalx("vigil-inteld: cannot create the HTTP server");
		http_server_set_authorizer(d.http, inteld_authorize);
		if (http_server_bind(d.http, d.conf.http_listen,
		                     (int)d.conf.http_port, &d.http_port,
		                     &err) == -1) {
			log_warnx("vigil-inteld: [http] %s", buf_cstr(&err));
			goto out;
		}
	}
	if (write_ports(&d, &err) == -1)
		log_warnx("vigil-inteld: %s", buf_cstr(&err));
	daemon_ready(log_dest_for(d.conf.log_dest, g_foreground) ==
	             LOG_DEST_SYSLOG);
	log_init("vigil-inteld", log_dest_for(d.conf.log_dest, g_foreground),
	         g_verbose ? LOG_LVL_DEBUG : d.conf.log_level);
	d.ev_term = evsignal_new(d.base, SIGTERM, on_signal, &d);
	d.ev_int = evsignal_new(d.base, SIGINT, on_signal, &d);
	d.ev_hup = evsignal_new(d.base, SIGHUP, on_signal, &d);
	event_add(d.ev_term, NULL);
	event_add(d.ev_int, NULL);
	event_add(d.ev_hup, NULL);
	log_info("vigil-inteld: HTTPS %s:%d, HTTP %s:%d; %zu API keys",
	         d.https ? d.conf.https_listen : "off", d.https_port,
	         d.http ? d.conf.http_listen : "off", d.http_port, d.nkeys);
	event_base_dispatch(d.base);
	rc = 0;
out:
	if (d.writer != NULL) {
		struct writer *w = d.writer;

		/* The writer finishes its queue; answers go nowhere now. */
		writer_stop_with(w, late_done);
	}
	if (d.https)
		http_server_free(d.https);
	if (d.http)
		http_server_free(d.http);
	if (d.ev_stop)
		event_free(d.ev_stop);
	if (d.ev_term) {
		event_free(d.ev_term);
		event_free(d.ev_int);
		event_free(d.ev_hup);
	}
	if (d.base)
		event_base_free(d.base);
	istore_close(d.store);
	SSL_CTX_free(d.ssl_ctx);
	if (d.ports_path[0] && rc == 0 && !check_only)
		unlink(d.ports_path);
	if (d.keys != NULL)
		explicit_bzero(d.keys, d.nkeys * sizeof(*d.keys));
	free(d.keys);
	inteld_conf_free(&d.conf);
	metrics_reset();
	buf_free(&err);
	return rc;
}
