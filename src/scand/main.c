/*
 * vigil-scand: the file-scan service. Reads and checks the config, loads
 * the rule files, opens the store in the data directory, starts the worker
 * pool and the HTTP and/or HTTPS listeners, and runs the event loop.
 * SIGHUP reloads the rules (and the settings that need no restart) without
 * dropping a request; SIGTERM/SIGINT stop it gracefully: listeners close,
 * checks in flight are answered, scans running finish, queued samples stay
 * queued for the next start.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "metrics.h"
#include "scand.h"
#include "pki.h"
#include "tls.h"

#define STOP_GRACE 30

static int g_foreground, g_verbose;

static void
usage(FILE *f)
{
	fprintf(f, "usage: vigil-scand [-dnv] -c FILE\n"
	           "  -c FILE  configuration file (see vigil-scand.conf(5))\n"
	           "  -d       stay in the foreground and log to stderr\n"
	           "  -n       check the configuration, rules and "
	           "certificates, then exit\n"
	           "  -v       verbose (debug) logging\n"
	           "  -h       this help\n"
	           "  -V       print the version\n");
}

static void
scand_event_log(int severity, const char *msg)
{
	if (severity >= EVENT_LOG_WARN)
		log_warnx("libevent: %s", msg);
	else
		log_debug("libevent: %s", msg);
}

/* Loads the rule files named in rules (blank-separated): the bundle, and
 * its sources packed for the scan workers in *rules_fd. */
static struct scan_bundle *
load_rules(const char *rules, int *rules_fd, struct buf *err)
{
	struct scan_bundle *b = NULL;
	struct scan_src *src = NULL;
	struct buf *data = NULL;
	char *copy, *rest, *tok;
	const char **paths = NULL;
	size_t n = 0, cap = 0;

	*rules_fd = -1;
	if ((copy = strdup(rules != NULL ? rules : "")) == NULL)
		return NULL;
	rest = copy;
	while ((tok = strsep(&rest, " \t\n")) != NULL) {
		if (*tok == '\0')
			continue;
		if (n == cap) {
			const char **np;

			cap = cap ? cap * 2 : 8;
			if ((np = realloc(paths, cap * sizeof(*np))) == NULL)
				goto out;
			paths = np;
		}
		paths[n++] = tok;
	}
	if (scan_srcs_read(paths, n, &src, &data, err) == -1)
		goto out;
	if (scan_bundle_new(src, n, &b, err) != 0) {
		b = NULL;
		goto out;
	}
	if ((*rules_fd = sandbox_rules_pack(src, n, b, err)) == -1) {
		scan_bundle_free(b);
		b = NULL;
	}
out:
	scan_srcs_free(src, data, n);
	free(paths);
	free(copy);
	return b;
}

static int
load_api_key(struct scand *s, struct buf *err)
{
	struct buf k;

	s->api_key_len = 0;
	if (s->conf.api_key_file == NULL)
		return 0;
	buf_init(&k, sizeof(s->api_key) - 1);
	if (tls_check_key_perms(s->conf.api_key_file, err) == -1 ||
	    tls_read_file(s->conf.api_key_file, sizeof(s->api_key) - 1, &k,
	                  err) == -1) {
		buf_free(&k);
		return -1;
	}
	while (k.len > 0 && isspace(k.data[k.len - 1]))
		k.len--;
	if (k.len == 0) {
		buf_printf(err, "%s: empty API key", s->conf.api_key_file);
		buf_free(&k);
		return -1;
	}
	memcpy(s->api_key, k.data, k.len);
	s->api_key_len = k.len;
	explicit_bzero(k.data, k.len);
	buf_free(&k);
	return 0;
}

/* Client certificates: the roles that submit samples (docs/pki.md, "Who
 * accepts whom"), and certificates without a role (THOR clients with
 * certificates from the site's own CA). */
#define SCAND_CLIENT_ROLES                                                     \
	(PKI_ROLE_BIT(PKI_ROLE_CENTER) | PKI_ROLE_BIT(PKI_ROLE_AGENT) |        \
	 PKI_ROLE_BIT(PKI_ROLE_MASTER) | PKI_ROLE_BIT(PKI_ROLE_NONE))

/* Its own certificate: one issued for it, or the center's when it shares
 * the center's host and certificate, or one without a role (made before
 * roles, or by the site's own CA). */
#define OWN_ROLES                                                              \
	(PKI_ROLE_BIT(PKI_ROLE_SCAND) | PKI_ROLE_BIT(PKI_ROLE_CENTER) |        \
	 PKI_ROLE_BIT(PKI_ROLE_NONE))

static SSL_CTX *
make_ssl(const struct scand_conf *c, struct buf *err)
{
	enum tls_client_auth auth = TLS_CLIENT_NONE;
	SSL_CTX *ctx;

	if (pki_check_cert_role(c->cert, OWN_ROLES,
	                        "vigil-scand's server certificate", err) == -1)
		return NULL;
	if (c->client_ca != NULL)
		auth = c->require_client_cert ? TLS_CLIENT_REQUIRED
		                              : TLS_CLIENT_OPTIONAL;
	ctx = tls_server_ctx(c->cert, c->key, c->client_ca, auth, NULL, NULL,
	                     err);
	if (ctx != NULL)
		tls_server_roles(ctx, SCAND_CLIENT_ROLES, "vigil-scand");
	return ctx;
}

static void
fill_threads(struct scand_conf *c)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	if (c->threads == 0)
		c->threads = ncpu < 2 ? 2 : ncpu;
	if (c->sync_threads == 0)
		c->sync_threads = c->threads / 4 > 0 ? c->threads / 4 : 1;
	if (c->sync_threads >= c->threads)
		c->sync_threads = c->threads - 1 > 0 ? c->threads - 1 : 1;
	if (c->threads < 2)
		c->threads = 2;
}

static int
same_str(const char *a, const char *b)
{
	return (a == NULL && b == NULL) ||
	       (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* [syslog] as in nc: a new forwarder when anything in it changed. */
static int
reload_syslog(struct scand *s, struct scand_conf *nc, struct buf *err)
{
	struct scand_conf *c = &s->conf;
	struct fwd *f = NULL;

	if (nc->syslog_enable == c->syslog_enable &&
	    (!nc->syslog_enable ||
	     (nc->syslog_transport == c->syslog_transport &&
	      same_str(nc->syslog_host, c->syslog_host) &&
	      nc->syslog_port == c->syslog_port &&
	      nc->syslog_format == c->syslog_format &&
	      nc->syslog_facility == c->syslog_facility &&
	      nc->syslog_queue == c->syslog_queue &&
	      nc->syslog_framing == c->syslog_framing)))
		return 0;
	if (nc->syslog_enable &&
	    (f = fwd_new(s->base, nc, s->fwd, err)) == NULL)
		return -1;
	fwd_free(s->fwd);
	s->fwd = f;
	c->syslog_enable = nc->syslog_enable;
	c->syslog_transport = nc->syslog_transport;
	free(c->syslog_host);
	c->syslog_host = nc->syslog_host;
	nc->syslog_host = NULL;
	c->syslog_port = nc->syslog_port;
	c->syslog_format = nc->syslog_format;
	c->syslog_facility = nc->syslog_facility;
	c->syslog_queue = nc->syslog_queue;
	c->syslog_framing = nc->syslog_framing;
	log_info("scand: syslog output %s", f != NULL ? "reconfigured" : "off");
	return 0;
}

static void
reload(struct scand *s)
{
	struct scand_conf nc;
	struct scan_bundle *b;
	struct buf err;
	int rfd;

	buf_init(&err, 65536);
	log_info("scand: SIGHUP: reloading %s", s->conf_path);
	if (scand_conf_load(s->conf_path, &nc, &err) == -1) {
		log_warnx("scand: reload failed, keeping the old configuration "
		          "and rules:\n%s",
		          buf_cstr(&err));
		scand_conf_free(&nc);
		goto out;
	}
	if ((b = load_rules(nc.rules, &rfd, &err)) == NULL) {
		log_warnx("scand: reload: the rules have errors, keeping the "
		          "old rules:\n%s",
		          buf_cstr(&err));
		scand_conf_free(&nc);
		goto out;
	}
	if (reload_syslog(s, &nc, &err) == -1) {
		log_warnx("scand: reload: %s; keeping the old configuration "
		          "and rules",
		          buf_cstr(&err));
		scan_bundle_free(b);
		close(rfd);
		scand_conf_free(&nc);
		goto out;
	}
	if (pool_set_bundle(s->pool, b, rfd) == -1) {
		log_warnx("scand: reload: keeping the old rules");
		scan_bundle_free(b);
		close(rfd);
		scand_conf_free(&nc);
		goto out;
	}
	scan_bundle_free(s->bundle);
	s->bundle = b;
	close(s->rules_fd);
	s->rules_fd = rfd;
	/* What can change without a restart. */
	s->conf.hold_async = nc.hold_async;
	s->conf.keep_samples = nc.keep_samples;
	s->conf.max_upload = nc.max_upload < s->conf.max_upload
	                         ? nc.max_upload
	                         : s->conf.max_upload;
	free(s->conf.rules);
	s->conf.rules = nc.rules;
	nc.rules = NULL;
	pool_set_limits(s->pool, s->conf.max_upload, s->conf.keep_samples,
	                s->samples_dir);
	log_info("scand: rules %s loaded%s", scan_bundle_version(b),
	         s->conf.hold_async ? "; async samples on hold" : "");
	sintel_reload(s, &nc);
	scand_conf_free(&nc);
	scand_dispatch(s);
out:
	buf_free(&err);
}

static int
conns(struct scand *s)
{
	return (s->http ? hs_server_conns(s->http) : 0) +
	       (s->https ? hs_server_conns(s->https) : 0);
}

static void
stop_tick(evutil_socket_t fd, short what, void *arg)
{
	struct scand *s = arg;
	struct timeval tv = {0, 100000};

	(void)fd;
	(void)what;
	if ((s->inflight_req == 0 && conns(s) == 0) ||
	    (long long)time(NULL) - s->stopping >= STOP_GRACE) {
		event_base_loopexit(s->base, NULL);
		return;
	}
	evtimer_add(s->ev_stop, &tv);
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct scand *s = arg;

	(void)what;
	if (sig == SIGHUP) {
		reload(s);
		return;
	}
	if (s->stopping) {
		log_info("scand: signal %d again: stopping now", (int)sig);
		event_base_loopexit(s->base, NULL);
		return;
	}
	log_info("scand: signal %d: shutting down (%d requests in flight)",
	         (int)sig, s->inflight_req);
	s->stopping = (long long)time(NULL);
	if (s->http)
		hs_server_stop_listening(s->http);
	if (s->https)
		hs_server_stop_listening(s->https);
	if ((s->ev_stop = evtimer_new(s->base, stop_tick, s)) == NULL) {
		event_base_loopexit(s->base, NULL);
		return;
	}
	stop_tick(-1, 0, s);
}

static void
join(char *out, size_t n, const char *dir, const char *file)
{
	if ((size_t)snprintf(out, n, "%s/%s", dir, file) >= n)
		fatalx("%s: path too long: %s/%s", __func__, dir, file);
}

static int
write_ports(struct scand *s, struct buf *err)
{
	char t[128];
	int n;

	n = snprintf(t, sizeof(t),
	             "{\"http\": %d, \"https\": %d, \"pid\": %ld}\n",
	             s->http ? s->http_port : 0, s->https ? s->https_port : 0,
	             (long)getpid());
	return tls_write_file(s->ports_path, t, (size_t)n, 0644, err);
}

int
main(int argc, char **argv)
{
	static struct scand s;
	struct hs_limits lim;
	struct buf err;
	const char *conf = NULL;
	int ch, check_only = 0, rc = 1;

	/* A scan worker (sandbox.c) is this program started again: it
	 * becomes one here, before anything of the service exists. */
	sandbox_worker_run(argc, argv);
	s.rules_fd = -1;
	while ((ch = getopt(argc, argv, "c:dnvhV")) != -1) {
		switch (ch) {
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
			printf("vigil-scand %s\n", VIGIL_VERSION);
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
	log_init("vigil-scand", LOG_DEST_STDERR,
	         g_verbose ? LOG_LVL_DEBUG : LOG_LVL_INFO);
	buf_init(&err, 1 << 20);
	s.conf_path = conf;
	s.argc = argc;
	s.argv = argv;
	umask(077);
	s.started = (long long)time(NULL);
	if (scand_conf_load(conf, &s.conf, &err) == -1) {
		fprintf(stderr, "%s", buf_cstr(&err));
		if (err.len && err.data[err.len - 1] != '\n')
			fputc('\n', stderr);
		fprintf(stderr, "vigil-scand: %s: configuration has errors\n",
		        conf);
		goto out;
	}
	fill_threads(&s.conf);
	join(s.db_path, sizeof(s.db_path), s.conf.data_dir, "scand.db");
	join(s.ports_path, sizeof(s.ports_path), s.conf.data_dir,
	     "vigil-scand.ports");
	join(s.samples_dir, sizeof(s.samples_dir), s.conf.data_dir, "samples");
	if (scan_init() == -1)
		fatalx("vigil-scand: cannot initialise the scan engine");
	if ((s.bundle = load_rules(s.conf.rules, &s.rules_fd, &err)) == NULL) {
		log_warnx("vigil-scand: %s: the rules have errors:\n%s", conf,
		          buf_cstr(&err));
		goto out;
	}
	if (load_api_key(&s, &err) == -1) {
		log_warnx("vigil-scand: %s", buf_cstr(&err));
		goto out;
	}
	if (sandbox_user(s.conf.user, &s.sandbox, &err) == -1) {
		log_warnx("vigil-scand: %s: %s", conf, buf_cstr(&err));
		goto out;
	}
	s.sandbox.timeout = s.conf.scan_timeout;
	s.sandbox.memory = s.conf.worker_memory;
	if (s.conf.https_enable &&
	    (s.ssl_ctx = make_ssl(&s.conf, &err)) == NULL) {
		log_warnx("vigil-scand: [https]: %s", buf_cstr(&err));
		goto out;
	}
	if (s.conf.intel.url != NULL) { /* checked here, started below */
		struct intelc *ic = NULL;

		if (intelc_new(&s.conf.intel, &ic, &err) == -1) {
			log_warnx("vigil-scand: [intel]: %s", buf_cstr(&err));
			goto out;
		}
		intelc_free(ic);
	}
	if (check_only) {
		printf("vigil-scand: %s: configuration OK (rules %s)\n", conf,
		       scan_bundle_version(s.bundle));
		rc = 0;
		goto out;
	}
	if (daemon_ensure_dir(s.conf.data_dir, &err) == -1 ||
	    daemon_ensure_dir(s.samples_dir, &err) == -1) {
		log_warnx("vigil-scand: %s", buf_cstr(&err));
		goto out;
	}
	if (!g_foreground && daemon_detach() == -1) {
		log_warn("vigil-scand: detaching");
		goto out;
	}
	signal(SIGPIPE, SIG_IGN);
	/*
	 * Upload bodies come and go in tens of megabytes: with glibc's
	 * default the heap is given back to the kernel after each and every
	 * page faulted in again for the next (a tenth of the CPU time with
	 * 50 MB samples). Keep up to 256 MiB of freed heap.
	 */
	mallopt(M_TRIM_THRESHOLD, 256 * 1024 * 1024);
	mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
	metrics_declare("vigil_store_seconds", METRIC_SUMMARY,
	                "store latency by operation");
	event_set_log_callback(scand_event_log);
	if ((s.base = event_base_new()) == NULL)
		fatalx("vigil-scand: out of memory");
	if ((s.pool = pool_new((int)s.conf.threads, (int)s.conf.sync_threads,
	                       s.base, scand_done_cb, &s)) == NULL)
		fatalx("vigil-scand: cannot start the worker threads");
	pool_set_limits(s.pool, s.conf.max_upload, s.conf.keep_samples,
	                s.samples_dir);
	pool_cache_size(s.pool, (size_t)s.conf.cache_size);
	pool_set_sandbox(s.pool, &s.sandbox);
	if (pool_set_bundle(s.pool, s.bundle, s.rules_fd) == -1)
		goto out;
	if (s.conf.syslog_enable &&
	    (s.fwd = fwd_new(s.base, &s.conf, NULL, &err)) == NULL) {
		log_warnx("vigil-scand: %s", buf_cstr(&err));
		goto out;
	}
	if (sintel_start(&s, &err) == -1) {
		log_warnx("vigil-scand: [intel]: %s", buf_cstr(&err));
		goto out;
	}
	if (scand_db_open(&s, &err) == -1) {
		log_warnx("vigil-scand: store: %s", buf_cstr(&err));
		goto out;
	}
	memset(&lim, 0, sizeof(lim));
	/* The multipart framing around the sample needs a little room. */
	lim.max_body = (unsigned long long)s.conf.max_upload + 65536;
	lim.max_headers = 16384;
	lim.handshake_secs = (int)s.conf.handshake_timeout;
	lim.header_secs = (int)s.conf.request_timeout;
	lim.body_secs = (int)s.conf.body_timeout;
	lim.idle_secs = (int)s.conf.timeout;
	lim.max_conns = (int)s.conf.max_conns;
	lim.max_per_addr = (int)s.conf.max_per_addr;
	lim.read_size = 256 * 1024;
	lim.on_refused = scand_refused;
	if (s.conf.http_enable) {
		if ((s.http = hs_server_new(s.base, NULL, scand_routes, &s,
		                            &lim)) == NULL)
			fatalx("vigil-scand: cannot create the HTTP server");
		if (hs_server_bind(s.http, s.conf.http_listen,
		                   (int)s.conf.http_port, &s.http_port,
		                   &err) == -1) {
			log_warnx("vigil-scand: [http] %s", buf_cstr(&err));
			goto out;
		}
	}
	if (s.conf.https_enable) {
		if ((s.https = hs_server_new(s.base, s.ssl_ctx, scand_routes,
		                             &s, &lim)) == NULL)
			fatalx("vigil-scand: cannot create the HTTPS server");
		if (hs_server_bind(s.https, s.conf.https_listen,
		                   (int)s.conf.https_port, &s.https_port,
		                   &err) == -1) {
			log_warnx("vigil-scand: [https] %s", buf_cstr(&err));
			goto out;
		}
	}
	if (write_ports(&s, &err) == -1)
		log_warnx("vigil-scand: %s", buf_cstr(&err));
	daemon_ready(log_dest_for(s.conf.log_dest, g_foreground) ==
	             LOG_DEST_SYSLOG);
	log_init("vigil-scand", log_dest_for(s.conf.log_dest, g_foreground),
	         g_verbose ? LOG_LVL_DEBUG : s.conf.log_level);
	s.ev_term = evsignal_new(s.base, SIGTERM, on_signal, &s);
	s.ev_int = evsignal_new(s.base, SIGINT, on_signal, &s);
	s.ev_hup = evsignal_new(s.base, SIGHUP, on_signal, &s);
	event_add(s.ev_term, NULL);
	event_add(s.ev_int, NULL);
	event_add(s.ev_hup, NULL);
	log_info("vigil-scand: rules %s; %lld threads (%lld for sync checks), "
	         "each with a scan worker process as %s; HTTP %s:%d, HTTPS "
	         "%s:%d",
	         scan_bundle_version(s.bundle), s.conf.threads,
	         s.conf.sync_threads, s.sandbox.user,
	         s.http ? s.conf.http_listen : "off", s.http_port,
	         s.https ? s.conf.https_listen : "off", s.https_port);
	scand_dispatch(&s);
	event_base_dispatch(s.base);
	rc = 0;
out:
	if (s.pool != NULL) {
		struct job *left = pool_stop(s.pool);

		if (s.store != NULL) {
			scand_answer_leftovers(&s, left);
			scand_answer_leftovers(&s, sintel_stop(&s));
			scand_history_flush(&s);
		}
	}
	sintel_stop(&s); /* nothing held when the store never opened */
	if (s.http)
		hs_server_free(s.http);
	if (s.https)
		hs_server_free(s.https);
	pool_free(s.pool);
	fwd_free(s.fwd);
	if (s.ev_stop)
		event_free(s.ev_stop);
	if (s.ev_term) {
		event_free(s.ev_term);
		event_free(s.ev_int);
		event_free(s.ev_hup);
	}
	if (s.base)
		event_base_free(s.base);
	store_close(s.store);
	SSL_CTX_free(s.ssl_ctx);
	if (s.bundle)
		scan_bundle_free(s.bundle);
	if (s.rules_fd != -1)
		close(s.rules_fd);
	if (s.ports_path[0] && rc == 0 && !check_only)
		unlink(s.ports_path);
	explicit_bzero(s.api_key, sizeof(s.api_key));
	scand_conf_free(&s.conf);
	metrics_reset();
	buf_free(&err);
	return rc;
}
