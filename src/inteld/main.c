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

#include <event2/thread.h>

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

/* Hands the thread what the main thread has for it (under t->mu) and
 * wakes it; t->ev_ctl runs thread_ctl there. */
static void
thread_poke(struct ithread *t)
{
	event_active(t->ev_ctl, EV_READ, 0);
}

static void
reload(struct inteld *d)
{
	struct inteld_conf nc;
	struct inteld_key *keys, *old;
	size_t nkeys, nold;
	SSL_CTX *ctx = NULL;
	struct buf err;
	int i;

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
	if (d->th[0].https != NULL && nc.https_enable &&
	    (ctx = make_ssl(&nc, &err)) == NULL) {
		log_warnx("inteld: reload: [https]: %s; keeping the old "
		          "configuration",
		          buf_cstr(&err));
		free(keys);
		inteld_conf_free(&nc);
		goto out;
	}
	if (ctx != NULL) {
		/* Each thread swaps its server's context itself. */
		for (i = 0; i < d->nthreads; i++) {
			struct ithread *t = &d->th[i];

			SSL_CTX_up_ref(ctx);
			pthread_mutex_lock(&t->mu);
			SSL_CTX_free(t->new_ctx);
			t->new_ctx = ctx;
			pthread_mutex_unlock(&t->mu);
			thread_poke(t);
		}
		SSL_CTX_free(d->ssl_ctx);
		d->ssl_ctx = ctx;
	}
	pthread_rwlock_wrlock(&d->lock);
	old = d->keys;
	nold = d->nkeys;
	d->keys = keys;
	d->nkeys = nkeys;
	pthread_rwlock_unlock(&d->lock);
	if (old != NULL)
		explicit_bzero(old, nold * sizeof(*old));
	free(old);
	/* What can change without a restart. */
	__atomic_store_n(&d->conf.max_batch, nc.max_batch, __ATOMIC_RELAXED);
	__atomic_store_n(&d->conf.default_priority, nc.default_priority,
	                 __ATOMIC_RELAXED);
	__atomic_store_n(&d->conf.cert_role, nc.cert_role, __ATOMIC_RELAXED);
	log_setlevel(g_verbose ? LOG_LVL_DEBUG : nc.log_level);
	log_info("inteld: reloaded; %zu API keys", nkeys);
	inteld_conf_free(&nc);
out:
	buf_free(&err);
}

static int
thread_conns(const struct ithread *t)
{
	return (t->https ? http_server_conns(t->https) : 0) +
	       (t->http ? http_server_conns(t->http) : 0);
}

/* Each thread ends its loop once nothing is left for it: no change with
 * the writer and none of its connections open (the main thread, which
 * relays the writer's answers, waits for every thread's), or at the
 * grace time. */
static void
stop_tick(evutil_socket_t fd, short what, void *arg)
{
	struct ithread *t = arg;
	struct inteld *d = t->d;
	struct timeval tv = {0, 100000};
	int i, open = thread_conns(t);

	(void)fd;
	(void)what;
	if (t->idx == 0)
		for (i = 1; i < d->nthreads; i++)
			open += thread_conns(&d->th[i]);
	if ((__atomic_load_n(&d->inflight, __ATOMIC_RELAXED) == 0 &&
	     open == 0) ||
	    (long long)time(NULL) - d->stopping >= STOP_GRACE) {
		event_base_loopexit(t->base, NULL);
		return;
	}
	evtimer_add(t->ev_stop, &tv);
}

static void
thread_stop(struct ithread *t)
{
	if (t->https)
		http_server_stop_listening(t->https);
	if (t->http)
		http_server_stop_listening(t->http);
	if (t->ev_stop == NULL &&
	    (t->ev_stop = evtimer_new(t->base, stop_tick, t)) == NULL) {
		event_base_loopexit(t->base, NULL);
		return;
	}
	stop_tick(-1, 0, t);
}

/* What the main thread handed this thread: a new TLS context, the stop,
 * the writer's answers to its requests (in the order they came). */
static void
thread_ctl(evutil_socket_t fd, short what, void *arg)
{
	struct ithread *t = arg;
	struct wjob *list, *j, *rev = NULL;
	SSL_CTX *ctx;
	int stop;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&t->mu);
	ctx = t->new_ctx;
	t->new_ctx = NULL;
	stop = t->ctl_stop;
	t->ctl_stop = 0;
	list = t->done;
	t->done = NULL;
	pthread_mutex_unlock(&t->mu);
	if (ctx != NULL) {
		if (t->https)
			http_server_set_ssl_ctx(t->https, ctx);
		SSL_CTX_free(ctx);
	}
	while ((j = list) != NULL) {
		list = j->next;
		j->next = rev;
		rev = j;
	}
	while ((j = rev) != NULL) {
		rev = j->next;
		j->next = NULL;
		inteld_job_answer(j);
	}
	if (stop)
		thread_stop(t);
}

static void *
thread_main(void *arg)
{
	struct ithread *t = arg;

	event_base_dispatch(t->base);
	istore_read_release(t->d->store);
	return NULL;
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct inteld *d = arg;
	int i;

	(void)what;
	if (sig == SIGHUP) {
		reload(d);
		return;
	}
	if (d->stopping) {
		log_info("inteld: signal %d again: stopping now%s", (int)sig,
		         writer_busy(d->writer) ? "; the change under way is "
		                                  "abandoned (the store keeps "
		                                  "what it had)"
		                                : "");
		writer_cancel(d->writer);
		for (i = 0; i < d->nthreads; i++)
			event_base_loopexit(d->th[i].base, NULL);
		return;
	}
	log_info("inteld: signal %d: shutting down (%d changes in flight; "
	         "the same signal again abandons them)",
	         (int)sig, __atomic_load_n(&d->inflight, __ATOMIC_RELAXED));
	d->stopping = (long long)time(NULL);
	for (i = 1; i < d->nthreads; i++) {
		pthread_mutex_lock(&d->th[i].mu);
		d->th[i].ctl_stop = 1;
		pthread_mutex_unlock(&d->th[i].mu);
		thread_poke(&d->th[i]);
	}
	thread_stop(&d->th[0]);
}

static int
write_ports(struct inteld *d, struct buf *err)
{
	char t[128];
	int n;

	n = snprintf(t, sizeof(t),
	             "{\"https\": %d, \"http\": %d, \"pid\": %ld}\n",
	             d->th[0].https ? d->https_port : 0,
	             d->th[0].http ? d->http_port : 0, (long)getpid());
	return tls_write_file(d->ports_path, t, (size_t)n, 0644, err);
}

/* Jobs the writer finished after the loops ended (or abandoned): the
 * answer is queued on its connection, which http_server_free then closes;
 * replying frees the deferred request. */
static void
late_done(struct wjob *j, void *arg)
{
	(void)arg;
	log_info("inteld: a change finished during the stop (status %d)",
	         j->status);
	inteld_job_answer(j);
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
	int ch, check_only = 0, rc = 1, i;

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
	/* Before any base: bases made now have locks, so one thread may wake
	 * another's (event_active, event_base_loopexit). */
	if (evthread_use_pthreads() == -1)
		fatalx("vigil-inteld: libevent without thread support");
	if (pthread_rwlock_init(&d.lock, NULL) != 0)
		fatalx("vigil-inteld: rwlock");
	d.nthreads = (int)d.conf.threads;
	if (d.nthreads == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);

		d.nthreads = n < 1                    ? 1
		             : n > INTELD_MAX_THREADS ? INTELD_MAX_THREADS
		                                      : (int)n;
	}
	if ((d.th = calloc((size_t)d.nthreads, sizeof(*d.th))) == NULL)
		fatalx("vigil-inteld: out of memory");
	memset(&lim, 0, sizeof(lim));
	lim.max_body = (size_t)d.conf.max_import;
	lim.max_headers = 16384;
	lim.timeout_secs = (int)d.conf.timeout;
	/* The limits are the daemon's: each thread gets its share. */
	lim.max_conns = (int)((d.conf.max_conns + d.nthreads - 1) / d.nthreads);
	lim.max_per_addr =
	    (int)((d.conf.max_per_addr + d.nthreads - 1) / d.nthreads);
	lim.handshake_timeout = (int)d.conf.handshake_timeout;
	lim.request_timeout = (int)d.conf.request_timeout;
	for (i = 0; i < d.nthreads; i++) {
		struct ithread *t = &d.th[i];
		int hs = (int)d.conf.https_port, hp = (int)d.conf.http_port;

		/* the first binds as if alone (a port already held is an
		 * error), the others join it */
		lim.reuseport = d.nthreads == 1 ? 0 : i == 0 ? 1 : 2;

		t->d = &d;
		t->idx = i;
		pthread_mutex_init(&t->mu, NULL);
		if ((t->base = event_base_new()) == NULL ||
		    (t->ev_ctl = event_new(t->base, -1, EV_READ | EV_PERSIST,
		                           thread_ctl, t)) == NULL)
			fatalx("vigil-inteld: out of memory");
		/* Every thread listens on the ports the first one got. */
		if (i > 0) {
			hs = d.https_port;
			hp = d.http_port;
		}
		if (d.conf.https_enable) {
			t->https =
			    http_server_new(t->base, d.ssl_ctx, inteld_routes,
			                    t, &lim, inteld_http_done);
			if (t->https == NULL)
				fatalx("vigil-inteld: cannot create the HTTPS "
				       "server");
			http_server_set_authorizer(t->https, inteld_authorize);
			if (http_server_bind(t->https, d.conf.https_listen, hs,
			                     &d.https_port, &err) == -1) {
				log_warnx("vigil-inteld: [https] %s",
				          buf_cstr(&err));
				goto out;
			}
		}
		if (d.conf.http_enable) {
			t->http = http_server_new(t->base, NULL, inteld_routes,
			                          t, &lim, inteld_http_done);
			if (t->http == NULL)
				fatalx("vigil-inteld: cannot create the HTTP "
				       "server");
			http_server_set_authorizer(t->http, inteld_authorize);
			if (http_server_bind(t->http, d.conf.http_listen, hp,
			                     &d.http_port, &err) == -1) {
				log_warnx("vigil-inteld: [http] %s",
				          buf_cstr(&err));
				goto out;
			}
		}
	}
	d.base = d.th[0].base;
	if ((d.writer = writer_start(d.store, d.base, inteld_job_done, &d)) ==
	    NULL)
		fatalx("vigil-inteld: cannot start the writer");
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
	log_info("vigil-inteld: HTTPS %s:%d, HTTP %s:%d; %d threads; %zu API "
	         "keys",
	         d.th[0].https ? d.conf.https_listen : "off", d.https_port,
	         d.th[0].http ? d.conf.http_listen : "off", d.http_port,
	         d.nthreads, d.nkeys);
	for (i = 1; i < d.nthreads; i++) {
		if (pthread_create(&d.th[i].th, NULL, thread_main, &d.th[i]) !=
		    0)
			fatalx("vigil-inteld: cannot start thread %d", i);
		d.th[i].started = 1;
	}
	event_base_dispatch(d.base);
	istore_read_release(d.store);
	rc = 0;
out:
	/* The other threads stop too (if they have not: the grace time or
	 * a second signal ended the main loop). */
	for (i = 1; d.th != NULL && i < d.nthreads; i++)
		if (d.th[i].started) {
			event_base_loopexit(d.th[i].base, NULL);
			pthread_join(d.th[i].th, NULL);
		}
	if (d.writer != NULL) {
		struct writer *w = d.writer;

		/* The writer finishes its queue (unless cancelled); answers
		 * go nowhere now. */
		writer_stop_with(w, late_done);
	}
	for (i = 0; d.th != NULL && i < d.nthreads; i++) {
		struct ithread *t = &d.th[i];
		struct wjob *j;

		/* answers handed to a thread after its loop ended */
		while ((j = t->done) != NULL) {
			t->done = j->next;
			late_done(j, NULL);
		}
		if (t->https)
			http_server_free(t->https);
		if (t->http)
			http_server_free(t->http);
		if (t->ev_stop)
			event_free(t->ev_stop);
		if (t->ev_ctl)
			event_free(t->ev_ctl);
		SSL_CTX_free(t->new_ctx);
		if (i == 0 && d.ev_term) {
			event_free(d.ev_term);
			event_free(d.ev_int);
			event_free(d.ev_hup);
		}
		if (t->base)
			event_base_free(t->base);
		if (t->base)
			pthread_mutex_destroy(&t->mu);
	}
	free(d.th);
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
