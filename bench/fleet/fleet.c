/*
 * fleet.c: the fleet load generator (bench/fleet, docs/performance.md).
 *
 * Simulates N agents against a real vigild on loopback, speaking the agent
 * gateway protocol of docs/protocol.md over one keep-alive TLS connection
 * per agent with its own EC P-256 key and client certificate. Two modes:
 *
 *   fleet enroll  makes N key pairs and CSRs, enrolls them with real
 *                 POST /v1/enroll requests (a token of --uses N), and writes
 *                 the identities (agents.txt + agents.pem) to --ids DIR;
 *   fleet run     loads those identities and runs the phases below, then
 *                 prints the figures (and a JSON line with --json FILE).
 *
 * Phases of a run, each with its own deadline (the program always exits by
 * itself; a global alarm is the last resort):
 *
 *   connect    every agent connects (at most --connect-parallel handshakes
 *              in flight), sends a heartbeat, then long-polls
 *              GET /v1/tasks?wait=W. Done when the center's
 *              vigil_long_polls gauge reaches N.
 *   hold       --hold seconds of held polls (longer than W, so each poll
 *              times out and is sent again once); connections sampled.
 *   dispatch   --tasks rounds of POST /api/v1/tasks {"kind": "inventory",
 *              "target": {"all": true}}; each agent records when the task
 *              reached it and reports it done; latency p50/p99 from the
 *              admin POST returning (and from it being sent).
 *   heartbeat  --hb-secs of closed-loop heartbeats by every agent.
 *   events     every agent sends --events-per-agent events in batches of
 *              --batch with its own sequence numbers; a batch is resent
 *              until acknowledged. Then the store is checked (sqlite3,
 *              read-only, and the admin API): stored == sent.
 *   restart    SIGTERM to the center, --restart-cmd starts it again on the
 *              same ports; time until all N agents poll again. Agents
 *              follow vigil-agent's task poller (docs/protocol.md):
 *              Retry-After +-10 % when told, else a backoff of 1 s
 *              doubling to 30 s, each wait a random point in the upper
 *              half of its step.
 *
 * Worker threads (--threads) each run a libevent loop over their share of
 * the agents; the main thread steers the phases, calls the admin API with
 * blocking requests and reads the center's /proc entries. File descriptors:
 * one per agent plus a few; the center needs the same number, so N is
 * bounded by RLIMIT_NOFILE of both processes (see docs/performance.md).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sqlite3.h>

#define MAX_ROUNDS     16
#define MAX_PENDING    8
#define MAX_HEAD       65536
#define MAX_BODY       (64u << 20)
#define READ_TIMEOUT   60 /* seconds without a byte while waiting */
#define ENROLL_RETRIES 20
#define ADMIN_TIMEOUT  120 /* a task for 20,000 agents takes ~15 s */

/* --- options ------------------------------------------------------------ */

static struct {
	int enroll; /* mode */
	const char *host;
	int gw_port, adm_port;
	/* A second vigild node on the same PostgreSQL database: agents of
	 * odd index connect to it; the gauges are summed over both. */
	int gw_port2, adm_port2;
	const char *ca, *fqdn, *admin_key_file, *token, *ids, *db;
	const char *ports_file, *restart_cmd, *json_out;
	int agents, threads, src_addrs, connect_par, enroll_par;
	int events_per_agent, batch, rounds, wait, hold, hb_secs;
	int backoff_min, backoff_max, max_time;
	int connect_timeout, round_timeout, events_timeout, restart_timeout;
	int center_pid, skip_restart;
	int no_resume;    /* --no-resume: every connection a full handshake */
	int first;        /* --first K: skip the first K identities (several
	                     load generators on disjoint agents) */
	int connect_only; /* --connect-only: connect and hold, then stop */
	const char *barrier; /* --barrier DIR: wait there for the others */
	int barrier_n;       /* --generators G of them */
	/* Connect pacing (every connection attempt of a run, first ones and
	 * reconnects): at most connect_rate new connections per second
	 * (0 = no limit), and a window of handshakes in flight between 1
	 * and connect_par that adapts to the latency of an agent's admission
	 * (connect() until its first heartbeat is answered: AIMD toward
	 * hs_target seconds; 0 = a fixed window of connect_par). */
	double connect_rate, hs_target;
	int no_pace_reconnects; /* reconnects bypass the pacing */
	/* Several load generators on one center (run.sh --generators):
	 * the leader posts the tasks and restarts the center; followers
	 * (--follower) take the times from files in --barrier DIR. */
	int follower;
	int total_agents; /* agents of all generators (center gauges) */
	int stop_timeout; /* restart: seconds for the center to exit */
} O = {
    .host = "127.0.0.1",
    .fqdn = "center.vigil.test",
    .agents = 200,
    .threads = 2,
    .src_addrs = 0, /* auto: parse_args */
    .connect_par = 256,
    .hs_target = 5,
    .enroll_par = 64,
    .events_per_agent = 100,
    .batch = 100,
    .rounds = 3,
    .wait = 25,
    .hold = 30,
    .hb_secs = 10,
    .backoff_min = 1,
    .backoff_max = 30,
    .max_time = 1200,
    .connect_timeout = 300,
    .round_timeout = 120,
    .events_timeout = 600,
    .restart_timeout = 180,
    .stop_timeout = 120,
};

/* --- small helpers ------------------------------------------------------ */

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double g_t0; /* program start, for log lines */

static void __attribute__((format(printf, 1, 2))) say(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "[%7.2f] ", now_s() - g_t0);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void __attribute__((format(printf, 1, 2), noreturn))
die(const char *fmt, ...)
{
	va_list ap;

	fputs("fleet: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void
sleep_s(double s)
{
	struct timespec ts;

	if (s <= 0)
		return;
	ts.tv_sec = (time_t)s;
	ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* A random point in [0, 1]. */
static double
unit_rand(void)
{
	uint32_t r;

	RAND_bytes((unsigned char *)&r, sizeof(r));
	return (double)r / 4294967295.0;
}

/* secs +-10 %, like vigil-agent's jitter (continuous here). */
static double
jitter(double secs)
{
	return secs * (0.9 + 0.2 * unit_rand());
}

/* vigil-agent's task poller after a failure (src/agent/work.c): the
 * backoff doubles from --backoff-min to --backoff-max, and the wait is a
 * random point in the upper half of it. */
static double
next_backoff(double *b)
{
	*b = *b == 0 ? O.backoff_min : *b * 2;
	if (*b > O.backoff_max)
		*b = O.backoff_max;
	return *b * (0.5 + 0.5 * unit_rand());
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* q in [0,1] of sorted v[n] (nearest rank). */
static double
quantile(const double *v, size_t n, double q)
{
	size_t i;

	if (n == 0)
		return NAN;
	i = (size_t)ceil(q * (double)n);
	if (i > 0)
		i--;
	if (i >= n)
		i = n - 1;
	return v[i];
}

/* --- HTTP/1.1 response parsing (no I/O) ------------------------------- */

struct resp {
	int status;
	long long clen; /* -1 = none */
	int chunked;
	int close;
	int retry_after; /* -1 = none */
};

/* Parses a response head p[0..n) that ends with CRLF CRLF. 0 or -1. */
static int
head_parse(const char *p, size_t n, struct resp *r)
{
	const char *e = p + n, *l, *nl;

	memset(r, 0, sizeof(*r));
	r->clen = -1;
	r->retry_after = -1;
	if (n < 12 || memcmp(p, "HTTP/1.", 7) != 0)
		return -1;
	r->status = atoi(p + 9); /* "HTTP/1.1 200" */
	if (r->status < 100 || r->status > 599)
		return -1;
	if (p[7] == '0')
		r->close = 1;
	for (l = memchr(p, '\n', n); l != NULL && l + 1 < e; l = nl) {
		const char *s = l + 1, *colon, *v;
		size_t klen;

		nl = memchr(s, '\n', (size_t)(e - s));
		if (nl == NULL)
			break;
		colon = memchr(s, ':', (size_t)(nl - s));
		if (colon == NULL)
			continue;
		klen = (size_t)(colon - s);
		for (v = colon + 1; v < nl && (*v == ' ' || *v == '\t'); v++)
			;
		if (klen == 14 && strncasecmp(s, "Content-Length", 14) == 0)
			r->clen = strtoll(v, NULL, 10);
		else if (klen == 17 &&
		         strncasecmp(s, "Transfer-Encoding", 17) == 0)
			r->chunked = strncasecmp(v, "chunked", 7) == 0;
		else if (klen == 10 && strncasecmp(s, "Connection", 10) == 0)
			r->close = strncasecmp(v, "close", 5) == 0;
		else if (klen == 11 && strncasecmp(s, "Retry-After", 11) == 0)
			r->retry_after = atoi(v);
	}
	if (r->clen < -1 || r->clen > (long long)MAX_BODY)
		return -1;
	return 0;
}

/*
 * Moves one chunked body from in to out. 1 = complete, 0 = need more,
 * -1 = malformed. *st keeps the chunk bytes still expected (-1 = a size
 * line is next).
 */
static int
chunked_take(struct evbuffer *in, struct evbuffer *out, long long *st)
{
	struct evbuffer_ptr pos;
	char line[32];
	size_t n;

	for (;;) {
		if (*st > 0) {
			n = evbuffer_get_length(in);
			if (n < (size_t)*st + 2)
				return 0;
			evbuffer_remove_buffer(in, out, (size_t)*st);
			evbuffer_drain(in, 2);
			*st = -1;
			if (evbuffer_get_length(out) > MAX_BODY)
				return -1;
		}
		pos = evbuffer_search(in, "\r\n", 2, NULL);
		if (pos.pos < 0)
			return evbuffer_get_length(in) > 64 ? -1 : 0;
		if ((size_t)pos.pos >= sizeof(line))
			return -1;
		evbuffer_copyout(in, line, (size_t)pos.pos);
		line[pos.pos] = '\0';
		*st = strtoll(line, NULL, 16);
		if (*st < 0)
			return -1;
		if (*st == 0) {
			/* "0\r\n" then (no trailers) "\r\n" */
			if (evbuffer_get_length(in) < (size_t)pos.pos + 4)
				return 0;
			evbuffer_drain(in, (size_t)pos.pos + 4);
			*st = -1;
			return 1;
		}
		evbuffer_drain(in, (size_t)pos.pos + 2);
	}
}

/* --- admin API: blocking HTTPS, one connection per call ------------------ */

static SSL_CTX *g_admin_ctx;
static char g_admin_key[256];
static double g_admin_max; /* slowest admin call since the last mark */
static int g_adm_second;   /* admin_call to the second node */

struct reply {
	int status;
	char *body; /* NUL-terminated, malloc'd */
	size_t len;
};

static void
reply_free(struct reply *r)
{
	free(r->body);
	memset(r, 0, sizeof(*r));
}

/* Sends one request; 0 with *out filled, or -1 with a message on stderr. */
static int
admin_call(const char *method, const char *path, const char *body,
           struct reply *out)
{
	struct sockaddr_in sa;
	struct timeval tv = {ADMIN_TIMEOUT, 0};
	struct evbuffer *in = NULL, *bodybuf = NULL;
	struct evbuffer_ptr pos;
	struct resp r;
	SSL *ssl = NULL;
	char req[1024], buf[16384], *head;
	size_t blen = body ? strlen(body) : 0;
	int fd = -1, n, rc = -1;
	long long st = -1;
	double t0 = now_s();

	memset(out, 0, sizeof(*out));
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		goto fail;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port =
	    htons((uint16_t)(g_adm_second ? O.adm_port2 : O.adm_port));
	inet_pton(AF_INET, O.host, &sa.sin_addr);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
		fprintf(stderr, "fleet: admin %s %s: connect: %s\n", method,
		        path, strerror(errno));
		goto fail;
	}
	if ((ssl = SSL_new(g_admin_ctx)) == NULL)
		goto fail;
	SSL_set1_host(ssl, O.fqdn);
	SSL_set_fd(ssl, fd);
	if (SSL_connect(ssl) != 1) {
		fprintf(stderr, "fleet: admin %s %s: TLS handshake failed\n",
		        method, path);
		ERR_print_errors_fp(stderr);
		goto fail;
	}
	n = snprintf(req, sizeof(req),
	             "%s %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer "
	             "%s\r\nConnection: close\r\nContent-Type: "
	             "application/json\r\nContent-Length: %zu\r\n\r\n",
	             method, path, O.fqdn, g_admin_key, blen);
	if (n < 0 || (size_t)n >= sizeof(req) || SSL_write(ssl, req, n) != n ||
	    (blen > 0 && SSL_write(ssl, body, (int)blen) != (int)blen)) {
		fprintf(stderr, "fleet: admin %s %s: write failed\n", method,
		        path);
		goto fail;
	}
	in = evbuffer_new();
	bodybuf = evbuffer_new();
	while ((n = SSL_read(ssl, buf, sizeof(buf))) > 0)
		evbuffer_add(in, buf, (size_t)n);
	pos = evbuffer_search(in, "\r\n\r\n", 4, NULL);
	if (pos.pos < 0) {
		fprintf(stderr, "fleet: admin %s %s: no complete reply\n",
		        method, path);
		goto fail;
	}
	head = (char *)evbuffer_pullup(in, pos.pos + 4);
	if (head_parse(head, (size_t)pos.pos + 4, &r) == -1)
		goto fail;
	evbuffer_drain(in, (size_t)pos.pos + 4);
	if (r.chunked) {
		if (chunked_take(in, bodybuf, &st) != 1)
			goto fail;
	} else
		evbuffer_add_buffer(bodybuf, in);
	out->status = r.status;
	out->len = evbuffer_get_length(bodybuf);
	if ((out->body = malloc(out->len + 1)) == NULL)
		goto fail;
	evbuffer_remove(bodybuf, out->body, out->len);
	out->body[out->len] = '\0';
	rc = 0;
fail:
	if (now_s() - t0 > g_admin_max)
		g_admin_max = now_s() - t0;
	if (ssl != NULL) {
		SSL_shutdown(ssl);
		SSL_free(ssl);
	}
	if (fd != -1)
		close(fd);
	if (in)
		evbuffer_free(in);
	if (bodybuf)
		evbuffer_free(bodybuf);
	return rc;
}

/* Value of a metric line "name value" (name may carry {labels}); NAN. */
static double
metric_get(const char *text, const char *name)
{
	size_t n = strlen(name);
	const char *p = text;

	while (p != NULL && *p) {
		if (strncmp(p, name, n) == 0 && p[n] == ' ')
			return strtod(p + n + 1, NULL);
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return NAN;
}

struct center_metrics {
	double long_polls, gw_conns, heartbeats, events_stored, events_dup;
};

static int
metrics_read_one(struct center_metrics *m)
{
	struct reply r;

	m->long_polls = m->gw_conns = m->heartbeats = NAN;
	m->events_stored = m->events_dup = NAN;
	if (admin_call("GET", "/metrics", NULL, &r) == -1)
		return -1;
	if (r.status != 200) {
		reply_free(&r);
		return -1;
	}
	m->long_polls = metric_get(r.body, "vigil_long_polls");
	m->gw_conns =
	    metric_get(r.body, "vigil_connections{listener=\"gateway\"}");
	m->heartbeats = metric_get(r.body, "vigil_heartbeats_total");
	m->events_stored = metric_get(r.body, "vigil_events_stored_total");
	m->events_dup = metric_get(r.body, "vigil_events_duplicate_total");
	reply_free(&r);
	return 0;
}

/* The center's gauges and counters: of its one node, or summed over
 * both (--admin-port2). */
static int
metrics_read(struct center_metrics *m)
{
	struct center_metrics m2;
	int rc;

	if (metrics_read_one(m) == -1)
		return -1;
	if (O.adm_port2 <= 0)
		return 0;
	g_adm_second = 1;
	rc = metrics_read_one(&m2);
	g_adm_second = 0;
	if (rc == -1)
		return -1;
	m->long_polls += m2.long_polls;
	m->gw_conns += m2.gw_conns;
	m->heartbeats += m2.heartbeats;
	m->events_stored += m2.events_stored;
	m->events_dup += m2.events_dup;
	return 0;
}

/* --- the center's process ------------------------------------------------ */

struct proc_sample {
	double cpu;      /* utime + stime, seconds: vigild and its workers */
	double core_cpu; /* vigild's own (the core) */
	long hwm_kb;     /* VmHWM */
	long rss_kb;     /* VmRSS */
	int alive;
};

static int proc_read1(int pid, struct proc_sample *s);

/*
 * The center's figures: vigild itself plus its gateway workers
 * ([gateway] workers, run.sh --workers): children whose command line
 * says --gateway-worker. CPU and RSS are summed; VmHWM too (each
 * process's own peak: an upper bound of the peak of the sum).
 */
static int
proc_read(int pid, struct proc_sample *s)
{
	struct proc_sample w;
	struct dirent *de;
	char path[300], buf[512], *p;
	DIR *d;
	FILE *f;
	size_t n;
	int child, ppid;

	if (proc_read1(pid, s) == -1)
		return -1;
	s->core_cpu = s->cpu;
	if ((d = opendir("/proc")) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		if ((child = atoi(de->d_name)) <= 0 || child == pid)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/stat", child);
		if ((f = fopen(path, "r")) == NULL)
			continue;
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[n] = '\0';
		if ((p = strrchr(buf, ')')) == NULL ||
		    sscanf(p + 2, "%*c %d", &ppid) != 1 || ppid != pid)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/cmdline", child);
		if ((f = fopen(path, "r")) == NULL)
			continue;
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[n] = '\0';
		/* argv[0] "vigild", argv[1] "--gateway-worker" */
		if (memmem(buf, n, "--gateway-worker", 16) == NULL ||
		    proc_read1(child, &w) == -1)
			continue;
		s->cpu += w.cpu;
		s->hwm_kb += w.hwm_kb;
		s->rss_kb += w.rss_kb;
	}
	closedir(d);
	return 0;
}

static int
proc_read1(int pid, struct proc_sample *s)
{
	char path[64], buf[4096], *p;
	unsigned long long ut = 0, stt = 0;
	FILE *f;
	size_t n;

	memset(s, 0, sizeof(*s));
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* after "pid (comm) ": state is field 3, utime 14, stime 15 */
	if ((p = strrchr(buf, ')')) == NULL)
		return -1;
	if (sscanf(p + 2,
	           "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut,
	           &stt) != 2)
		return -1;
	s->alive = p[2] != 'Z' && p[2] != 'X';
	s->cpu = (double)(ut + stt) / (double)sysconf(_SC_CLK_TCK);
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(buf, sizeof(buf), f) != NULL) {
		if (strncmp(buf, "VmHWM:", 6) == 0)
			s->hwm_kb = strtol(buf + 6, NULL, 10);
		else if (strncmp(buf, "VmRSS:", 6) == 0)
			s->rss_kb = strtol(buf + 6, NULL, 10);
	}
	fclose(f);
	return 0;
}

static int
ports_pid(void)
{
	char buf[256], *p;
	FILE *f;
	size_t n;

	if (O.ports_file == NULL || (f = fopen(O.ports_file, "r")) == NULL)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	if ((p = strstr(buf, "\"pid\":")) == NULL)
		return 0;
	return atoi(p + 6);
}

/* --- agents ------------------------------------------------------------- */

enum mode { M_POLL, M_HEARTBEAT, M_EVENTS, M_STOP };
enum req { R_NONE, R_ENROLL, R_HB, R_POLL, R_STATUS, R_EVENTS };

struct worker;

struct agent {
	struct worker *w;
	int idx;
	char id[40];
	char mid[33];
	EVP_PKEY *key;
	X509 *cert;
	struct bufferevent *bev;
	struct event *timer;
	SSL_SESSION *sess; /* the last ticket, as vigil-agent keeps it */
	int connected;     /* TLS established */
	int ever;          /* has been connected once */
	int req;           /* request in flight */
	int head_done;
	struct resp rsp;
	long long chunk_st;
	struct evbuffer *body;
	double backoff;
	int need_hb;
	int dead; /* gave up (unexpected reply) */
	int polling;
	int enroll_tries;
	int nrx;
	double rx[MAX_ROUNDS];
	double t_conn;   /* last time TLS got established */
	double t_try;    /* last connect() */
	double t_back;   /* first connect() after the restart's SIGTERM */
	double hs_first; /* first handshake: connect() to established */
	char pending[MAX_PENDING][40];
	int npending;
	uint64_t ev_acked; /* events 1..ev_acked acknowledged */
	int ev_done;
	int ev_n;    /* events in the batch in flight */
	int counted; /* counts in w->inflight (a connection attempt whose
	                handshake is not over, or an enrollment) */
	int queued;  /* waits in w->q for the pacing to let it connect */
};

struct worker {
	int idx;
	pthread_t th;
	struct event_base *base;
	SSL_CTX *ctx;
	struct event *wake;
	struct event *pump; /* worker_pump from the loop, never recursively */
	struct agent **a;
	size_t n;
	size_t next;  /* next agent to connect / enroll the first time */
	int inflight; /* handshakes or enrollments in progress */
	int par;      /* enroll: enrollments in flight */
	size_t done;  /* enroll: finished (ok or failed) */
	int stopped;
	/* Connect pacing (run): agents that want to reconnect wait in q
	 * (a ring of n) and go before the first connections. */
	struct agent **q;
	size_t qhead, qlen;
	double win, win_max; /* handshakes in flight allowed (AIMD) */
	int slow_start;      /* win doubles per round trip until a backoff */
	double t_dec;        /* last decrease of win */
	double lat_avg;      /* admission latency, moving average */
	_Atomic long long lat_ms;      /* the same for the progress lines */
	double rate, tokens, t_refill; /* token bucket: connects per second */
	struct event *tick;            /* pumps while the bucket refills */
};

static struct agent *g_agents;
/* When the restart phase sent SIGTERM (0 before): agents note their first
 * connect() after it, the generator's own spread of the return. */
static _Atomic double g_t_term;
static struct worker *g_workers;
static _Atomic int g_mode = M_POLL;
static struct sockaddr_in g_gw, g_gw2;

/* counters (relaxed atomics: read by the main thread) */
static _Atomic long long st_connected, st_polling, st_handshakes, st_conn_fail,
    st_disconnects, st_hb_ok, st_poll_empty, st_tasks_rx, st_status_ok,
    st_status_other, st_ev_batches, st_ev_acked, st_ev_stored, st_ev_dup,
    st_ev_done, st_503, st_429, st_other, st_enrolled, st_enroll_fail,
    st_enroll_retry, st_dead, st_resumed;
static _Atomic int g_errs_shown;
/* Pacing: the sum of the workers' windows (x100), the lowest seen after
 * the first backoff, and the number of backoffs, for the log. */
static _Atomic long long st_win_x100, st_win_cuts;

#define INC(c)    atomic_fetch_add_explicit(&(c), 1, memory_order_relaxed)
#define DEC(c)    atomic_fetch_sub_explicit(&(c), 1, memory_order_relaxed)
#define ADD(c, v) atomic_fetch_add_explicit(&(c), (v), memory_order_relaxed)
#define GET(c)    atomic_load_explicit(&(c), memory_order_relaxed)

static void agent_next(struct agent *a);
static void agent_connect(struct agent *a);
static void agent_connect_paced(struct agent *a);
static void worker_pump(struct worker *w);
static void pace_feedback(struct worker *w, double latency, int failed);

static const char *const req_names[] = {"none", "enroll", "heartbeat",
                                        "poll", "status", "events"};

static void
show_error(struct agent *a, const char *what, int status, const char *body,
           size_t len)
{
	if (atomic_fetch_add(&g_errs_shown, 1) >= 10)
		return;
	say("agent %d (%s): %s: HTTP %d: %.*s", a->idx, a->id, what, status,
	    (int)(len > 300 ? 300 : len), body ? body : "");
}

static void
agent_close(struct agent *a)
{
	if (a->bev != NULL) {
		bufferevent_free(a->bev);
		a->bev = NULL;
	}
	if (a->connected) {
		a->connected = 0;
		DEC(st_connected);
	}
	if (a->polling) {
		a->polling = 0;
		DEC(st_polling);
	}
	a->req = R_NONE;
	a->head_done = 0;
	evbuffer_drain(a->body, evbuffer_get_length(a->body));
}

static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct agent *a = arg;

	(void)fd;
	(void)what;
	if (a->dead || GET(g_mode) == M_STOP)
		return;
	if (a->bev == NULL)
		agent_connect_paced(a);
	else if (a->req == R_NONE)
		agent_next(a);
}

static void
agent_later(struct agent *a, double secs)
{
	struct timeval tv;

	tv.tv_sec = (time_t)secs;
	tv.tv_usec = (suseconds_t)((secs - (double)tv.tv_sec) * 1e6);
	evtimer_add(a->timer, &tv);
}

/* Leaves w->inflight (first connection or enrollment over). */
static void
agent_uncount(struct agent *a)
{
	if (a->counted) {
		a->counted = 0;
		a->w->inflight--;
	}
}

/* An enrollment is over, well or not. */
static void
enroll_finish(struct agent *a, int ok)
{
	agent_close(a);
	agent_uncount(a);
	if (ok)
		INC(st_enrolled);
	else {
		INC(st_enroll_fail);
		a->dead = 1;
	}
	a->w->done++;
	event_active(a->w->pump, EV_READ, 0);
}

/* Connection lost or refused: vigil-agent's backoff, then reconnect. */
static void
agent_lost(struct agent *a)
{
	int was_enroll = O.enroll;

	agent_close(a);
	if (a->dead || GET(g_mode) == M_STOP)
		return;
	if (was_enroll) {
		if (++a->enroll_tries > ENROLL_RETRIES) {
			enroll_finish(a, 0);
			return;
		}
		INC(st_enroll_retry);
		agent_later(a, jitter(1));
		return;
	}
	if (a->counted) /* lost before its first heartbeat was answered */
		pace_feedback(a->w, now_s() - a->t_try, 1);
	agent_uncount(a);
	event_active(a->w->pump, EV_READ, 0);
	agent_later(a, next_backoff(&a->backoff));
}

static void
send_request(struct agent *a, int req, const char *method, const char *path,
             struct evbuffer *body, int conn_close)
{
	struct evbuffer *out = bufferevent_get_output(a->bev);
	size_t blen = body ? evbuffer_get_length(body) : 0;

	a->req = req;
	a->head_done = 0;
	evbuffer_add_printf(out,
	                    "%s %s HTTP/1.1\r\nHost: %s\r\n%s%s"
	                    "Content-Length: %zu\r\n\r\n",
	                    method, path, O.fqdn,
	                    blen ? "Content-Type: application/json\r\n" : "",
	                    conn_close ? "Connection: close\r\n" : "", blen);
	if (body)
		evbuffer_add_buffer(out, body);
}

static void
add_facts(struct evbuffer *b, const struct agent *a)
{
	evbuffer_add_printf(
	    b,
	    "{\"hostname\": \"fleet-%05d\", \"fqdn\": "
	    "\"fleet-%05d.bench.vigil.test\", \"os\": \"Debian GNU/Linux 12 "
	    "(bookworm)\", \"kernel\": \"6.1.0-18-amd64\", \"arch\": "
	    "\"x86_64\", \"ips\": [\"10.%d.%d.%d\"], \"machine_id\": \"%s\", "
	    "\"agent_version\": \"0.1.0-fleet\"}",
	    a->idx, a->idx, (a->idx >> 16) & 255, (a->idx >> 8) & 255,
	    a->idx & 255, a->mid);
}

static void
send_heartbeat(struct agent *a)
{
	struct evbuffer *b = evbuffer_new();

	evbuffer_add_printf(b, "{\"facts\": ");
	add_facts(b, a);
	evbuffer_add_printf(b, "}");
	send_request(a, R_HB, "POST", "/v1/heartbeat", b, 0);
	evbuffer_free(b);
}

static void
send_poll(struct agent *a)
{
	char path[64];

	snprintf(path, sizeof(path), "/v1/tasks?wait=%d", O.wait);
	send_request(a, R_POLL, "GET", path, NULL, 0);
	a->polling = 1;
	INC(st_polling);
}

static void
send_status(struct agent *a)
{
	struct evbuffer *b = evbuffer_new();
	char path[80];

	snprintf(path, sizeof(path), "/v1/tasks/%s", a->pending[0]);
	evbuffer_add_printf(b, "{\"state\": \"done\", \"result\": "
	                       "{\"processes\": 123, \"bench\": true}}");
	send_request(a, R_STATUS, "POST", path, b, 0);
	evbuffer_free(b);
}

static void
send_events(struct agent *a)
{
	struct evbuffer *b = evbuffer_new();
	uint64_t s, first = a->ev_acked + 1;
	uint64_t last = a->ev_acked + (uint64_t)O.batch;
	long long t = (long long)time(NULL);

	if (last > (uint64_t)O.events_per_agent)
		last = (uint64_t)O.events_per_agent;
	a->ev_n = (int)(last - first + 1);
	evbuffer_add(b, "{\"events\": [", 12);
	for (s = first; s <= last; s++)
		evbuffer_add_printf(
		    b,
		    "%s{\"seq\": %" PRIu64 ", \"time\": %lld, \"type\": "
		    "\"file.change\", \"level\": \"info\", \"data\": "
		    "{\"path\": \"/var/lib/fleet/%d/file-%" PRIu64 "\", "
		    "\"size\": %" PRIu64 ", \"sha256\": "
		    "\"00000000000000000000000000000000000000000000000000000000"
		    "%08" PRIx64 "\"}}",
		    s == first ? "" : ", ", s, t, a->idx, s, s * 37,
		    (uint64_t)a->idx * 1000003u + s);
	evbuffer_add(b, "]}", 2);
	send_request(a, R_EVENTS, "POST", "/v1/events", b, 0);
	evbuffer_free(b);
}

static void
agent_next(struct agent *a)
{
	int mode = GET(g_mode);

	if (a->bev == NULL || !a->connected || a->req != R_NONE || a->dead)
		return;
	if (mode == M_STOP) {
		agent_close(a);
		return;
	}
	if (a->npending > 0)
		send_status(a);
	else if (a->need_hb || mode == M_HEARTBEAT)
		send_heartbeat(a);
	else if (mode == M_EVENTS && !a->ev_done)
		send_events(a);
	else
		send_poll(a);
}

/* --- enrollment ---------------------------------------------------------- */

/* Appends s as the inside of a JSON string (PEM: only \n needs escaping). */
static void
add_json_str(struct evbuffer *b, const char *s)
{
	for (; *s; s++) {
		if (*s == '\n')
			evbuffer_add(b, "\\n", 2);
		else if (*s == '"' || *s == '\\') {
			evbuffer_add(b, "\\", 1);
			evbuffer_add(b, s, 1);
		} else if ((unsigned char)*s >= 0x20)
			evbuffer_add(b, s, 1);
	}
}

static char *
make_csr(EVP_PKEY *key)
{
	X509_REQ *r = X509_REQ_new();
	BIO *mem = BIO_new(BIO_s_mem());
	char *pem = NULL, *p;
	long n;

	if (r == NULL || mem == NULL || X509_REQ_set_version(r, 0) != 1 ||
	    X509_NAME_add_entry_by_txt(
	        X509_REQ_get_subject_name(r), "CN", MBSTRING_ASC,
	        (const unsigned char *)"fleet", -1, -1, 0) != 1 ||
	    X509_REQ_set_pubkey(r, key) != 1 ||
	    X509_REQ_sign(r, key, EVP_sha256()) <= 0 ||
	    PEM_write_bio_X509_REQ(mem, r) != 1)
		goto out;
	n = BIO_get_mem_data(mem, &p);
	if ((pem = malloc((size_t)n + 1)) != NULL) {
		memcpy(pem, p, (size_t)n);
		pem[n] = '\0';
	}
out:
	BIO_free(mem);
	X509_REQ_free(r);
	return pem;
}

static void
send_enroll(struct agent *a)
{
	struct evbuffer *b = evbuffer_new();
	char *csr = make_csr(a->key);

	if (csr == NULL)
		die("cannot make a CSR");
	evbuffer_add_printf(b, "{\"token\": \"%s\", \"csr\": \"", O.token);
	add_json_str(b, csr);
	evbuffer_add_printf(b, "\", \"facts\": ");
	add_facts(b, a);
	evbuffer_add_printf(b, "}");
	send_request(a, R_ENROLL, "POST", "/v1/enroll", b, 1);
	evbuffer_free(b);
	free(csr);
}

static void
on_enrolled(struct agent *a, const char *body, size_t len)
{
	json_t *j = json_loadb(body, len, 0, NULL);
	const char *id = json_string_value(json_object_get(j, "agent_id"));
	const char *pem = json_string_value(json_object_get(j, "certificate"));
	BIO *mem;

	if (id == NULL || pem == NULL || strlen(id) >= sizeof(a->id)) {
		show_error(a, "enroll: reply without agent_id/certificate", 201,
		           body, len);
		json_decref(j);
		enroll_finish(a, 0);
		return;
	}
	snprintf(a->id, sizeof(a->id), "%s", id);
	mem = BIO_new_mem_buf(pem, -1);
	a->cert = PEM_read_bio_X509(mem, NULL, NULL, NULL);
	BIO_free(mem);
	json_decref(j);
	enroll_finish(a, a->cert != NULL);
}

/* --- replies ---------------------------------------------------------------
 */

static void
on_poll(struct agent *a, const char *body, size_t len, double t)
{
	json_t *j = json_loadb(body, len, 0, NULL), *tasks, *e;
	size_t i;

	tasks = json_object_get(j, "tasks");
	if (!json_is_array(tasks)) {
		show_error(a, "poll: no tasks array", 200, body, len);
		INC(st_other);
		json_decref(j);
		return;
	}
	if (json_array_size(tasks) == 0)
		INC(st_poll_empty);
	json_array_foreach(tasks, i, e)
	{
		const char *id = json_string_value(json_object_get(e, "id"));

		if (id == NULL || strlen(id) >= sizeof(a->pending[0]))
			continue;
		if (a->nrx < MAX_ROUNDS)
			a->rx[a->nrx] = t;
		a->nrx++;
		INC(st_tasks_rx);
		if (a->npending < MAX_PENDING)
			snprintf(a->pending[a->npending++],
			         sizeof(a->pending[0]), "%s", id);
	}
	json_decref(j);
}

static int
on_events(struct agent *a, const char *body, size_t len)
{
	json_t *j = json_loadb(body, len, 0, NULL);
	json_t *ack = json_object_get(j, "ack");
	json_t *stored = json_object_get(j, "stored");
	json_t *dup = json_object_get(j, "duplicates");
	uint64_t last = a->ev_acked + (uint64_t)a->ev_n;

	if (!json_is_integer(ack) || !json_is_integer(stored) ||
	    !json_is_integer(dup) ||
	    (uint64_t)json_integer_value(ack) != last ||
	    json_integer_value(stored) + json_integer_value(dup) != a->ev_n) {
		json_decref(j);
		return -1;
	}
	ADD(st_ev_stored, json_integer_value(stored));
	ADD(st_ev_dup, json_integer_value(dup));
	ADD(st_ev_acked, a->ev_n);
	INC(st_ev_batches);
	a->ev_acked = last;
	if (a->ev_acked >= (uint64_t)O.events_per_agent && !a->ev_done) {
		a->ev_done = 1;
		INC(st_ev_done);
	}
	json_decref(j);
	return 0;
}

/* One whole reply to the request in flight. */
static void
on_reply(struct agent *a, const char *body, size_t len)
{
	int st = a->rsp.status, req = a->req;
	double t = now_s();

	a->req = R_NONE;
	if (a->polling) {
		a->polling = 0;
		DEC(st_polling);
	}
	if (st == 429 || st == 503) {
		double ra = a->rsp.retry_after >= 0 ? a->rsp.retry_after : 5;
		double w;

		if (st == 503)
			INC(st_503);
		else
			INC(st_429);
		if (a->counted && req != R_ENROLL) {
			/* Told to wait before it was admitted: a backoff. */
			pace_feedback(a->w, t - a->t_try, 1);
			agent_uncount(a);
			event_active(a->w->pump, EV_READ, 0);
		}
		if (req == R_ENROLL) {
			agent_close(a);
			agent_later(a, jitter(ra));
			return;
		}
		/* The poller's backoff grows with every failure; the wait
		 * is the Retry-After when there is one. */
		w = next_backoff(&a->backoff);
		if (a->rsp.close)
			agent_close(a);
		agent_later(a, a->rsp.retry_after >= 0 ? jitter(ra) : w);
		return;
	}
	switch (req) {
	case R_ENROLL:
		if (st == 201) {
			on_enrolled(a, body, len);
			return;
		}
		if (st == 500 && ++a->enroll_tries <= ENROLL_RETRIES) {
			INC(st_enroll_retry);
			agent_close(a);
			agent_later(a, jitter(1));
			return;
		}
		show_error(a, "enroll", st, body, len);
		enroll_finish(a, 0);
		return;
	case R_HB:
		if (st != 200)
			goto unexpected;
		INC(st_hb_ok);
		if (a->counted) {
			pace_feedback(a->w, t - a->t_try, 0);
			agent_uncount(a);
			event_active(a->w->pump, EV_READ, 0);
		}
		a->need_hb = 0;
		a->backoff = 0;
		break;
	case R_POLL:
		if (st != 200)
			goto unexpected;
		on_poll(a, body, len, t);
		break;
	case R_STATUS:
		if (st == 200)
			INC(st_status_ok);
		else if (st == 404 || st == 409) {
			INC(st_status_other);
			show_error(a, "task status", st, body, len);
		} else
			goto unexpected;
		memmove(a->pending[0], a->pending[1],
		        sizeof(a->pending[0]) * (MAX_PENDING - 1));
		a->npending--;
		break;
	case R_EVENTS:
		if (st != 200 || on_events(a, body, len) == -1)
			goto unexpected;
		break;
	default:
		goto unexpected;
	}
	if (a->rsp.close) {
		agent_close(a);
		agent_later(a, 0.1);
		return;
	}
	agent_next(a);
	return;
unexpected:
	INC(st_other);
	INC(st_dead);
	show_error(a, req_names[req], st, body, len);
	a->dead = 1;
	agent_close(a);
}

static void
read_cb(struct bufferevent *bev, void *arg)
{
	struct agent *a = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer_ptr pos;
	size_t len;
	char *p;
	int r;

	while (a->bev == bev) {
		if (a->req == R_NONE) {
			if (evbuffer_get_length(in) > 0) {
				INC(st_other);
				say("agent %d: bytes from the center with no "
				    "request in flight",
				    a->idx);
				agent_lost(a);
			}
			return;
		}
		if (!a->head_done) {
			pos = evbuffer_search(in, "\r\n\r\n", 4, NULL);
			if (pos.pos < 0) {
				if (evbuffer_get_length(in) > MAX_HEAD)
					goto bad;
				return;
			}
			p = (char *)evbuffer_pullup(in, pos.pos + 4);
			if (head_parse(p, (size_t)pos.pos + 4, &a->rsp) == -1)
				goto bad;
			evbuffer_drain(in, (size_t)pos.pos + 4);
			a->head_done = 1;
			a->chunk_st = -1;
		}
		if (a->rsp.chunked) {
			if ((r = chunked_take(in, a->body, &a->chunk_st)) == 0)
				return;
			if (r == -1)
				goto bad;
		} else if (a->rsp.clen >= 0) {
			if (evbuffer_get_length(in) < (size_t)a->rsp.clen)
				return;
			evbuffer_remove_buffer(in, a->body,
			                       (size_t)a->rsp.clen);
		} else
			goto bad;
		a->head_done = 0;
		len = evbuffer_get_length(a->body);
		evbuffer_add(a->body, "", 1); /* NUL for messages */
		p = (char *)evbuffer_pullup(a->body, -1);
		on_reply(a, p, len);
		if (a->bev != bev)
			return;
		evbuffer_drain(a->body, len + 1);
	}
	return;
bad:
	INC(st_other);
	say("agent %d: malformed HTTP reply", a->idx);
	agent_lost(a);
}

static void
event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct agent *a = arg;
	unsigned long e;

	if (what & BEV_EVENT_CONNECTED) {
		a->connected = 1;
		a->t_conn = now_s();
		INC(st_connected);
		INC(st_handshakes);
		if (SSL_session_reused(bufferevent_openssl_get_ssl(bev)))
			INC(st_resumed);
		if (O.enroll) {
			send_enroll(a);
			return;
		}
		if (!a->ever)
			a->hs_first = a->t_conn - a->t_try;
		a->ever = 1;
		a->need_hb = 1;
		/* Still in the window until its first heartbeat is answered
		 * (on_reply): so the pacing follows the center's whole
		 * admission of an agent, not the handshake alone. */
		agent_next(a);
		return;
	}
	if (!a->connected) {
		int err = EVUTIL_SOCKET_ERROR();

		INC(st_conn_fail);
		e = bufferevent_get_openssl_error(bev);
		if (atomic_fetch_add(&g_errs_shown, 1) < 10)
			say("agent %d: connection failed before TLS was up "
			    "(%s%s%s; errno %d %s; TLS %s) after %.2f s",
			    a->idx, what & BEV_EVENT_EOF ? "EOF" : "",
			    what & BEV_EVENT_ERROR ? "error" : "",
			    what & BEV_EVENT_TIMEOUT ? "timeout" : "", err,
			    strerror(err), e ? ERR_error_string(e, NULL) : "-",
			    now_s() - a->t_try);
	} else
		INC(st_disconnects);
	agent_lost(a);
}

/* --- connections ------------------------------------------------------------
 */

static void
agent_connect(struct agent *a)
{
	struct worker *w = a->w;
	struct sockaddr_in src;
	struct timeval rt = {READ_TIMEOUT, 0};
	SSL *ssl = NULL;
	int fd, one = 1;

	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	                 0)) == -1) {
		if (atomic_fetch_add(&g_errs_shown, 1) < 10)
			say("agent %d: socket: %s", a->idx, strerror(errno));
		goto fail;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (O.src_addrs > 1) {
		setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
		           sizeof(one));
		memset(&src, 0, sizeof(src));
		src.sin_family = AF_INET;
		src.sin_addr.s_addr =
		    htonl(0x7f000001u + (uint32_t)(a->idx % O.src_addrs));
		if (bind(fd, (struct sockaddr *)&src, sizeof(src)) == -1) {
			if (atomic_fetch_add(&g_errs_shown, 1) < 10)
				say("agent %d: bind: %s", a->idx,
				    strerror(errno));
			goto fail;
		}
	}
	a->t_try = now_s();
	if (a->t_back == 0 &&
	    atomic_load_explicit(&g_t_term, memory_order_relaxed) > 0)
		a->t_back = a->t_try;
	if (connect(fd,
	            (struct sockaddr *)(O.gw_port2 > 0 && a->idx % 2 ? &g_gw2
	                                                             : &g_gw),
	            sizeof(g_gw)) == -1 &&
	    errno != EINPROGRESS)
		goto fail;
	if ((ssl = SSL_new(w->ctx)) == NULL)
		goto fail;
	SSL_set1_host(ssl, O.fqdn);
	SSL_set_app_data(ssl, a);
	if (a->sess != NULL && !O.no_resume)
		SSL_set_session(ssl, a->sess);
	if (!O.enroll && (SSL_use_certificate(ssl, a->cert) != 1 ||
	                  SSL_use_PrivateKey(ssl, a->key) != 1))
		die("agent %d: cannot use its key and certificate", a->idx);
	a->bev = bufferevent_openssl_socket_new(w->base, fd, ssl,
	                                        BUFFEREVENT_SSL_CONNECTING,
	                                        BEV_OPT_CLOSE_ON_FREE);
	if (a->bev == NULL) {
		SSL_free(ssl);
		goto fail;
	}
	fd = -1;
	bufferevent_openssl_set_allow_dirty_shutdown(a->bev, 1);
	bufferevent_setcb(a->bev, read_cb, NULL, event_cb, a);
	bufferevent_set_timeouts(a->bev, &rt, &rt);
	bufferevent_enable(a->bev, EV_READ | EV_WRITE);
	return;
fail:
	if (fd != -1)
		close(fd);
	INC(st_conn_fail);
	agent_lost(a);
}

/*
 * The window of agents being admitted (connect(), TLS handshake, first
 * heartbeat answered) follows their latency the way TCP's congestion
 * window follows loss: it doubles per round trip (+1 per admission)
 * until the first backoff, then grows by one per window; an admission
 * slower than --connect-target, or one that failed (the center cut the
 * handshake at its handshake_timeout, refused the connection, answered
 * 503, or the reply did not come), cuts it to 70 %, at most once per
 * target interval. So the load generators do not pile up handshakes and
 * heartbeats that the center (on the same CPUs) cannot finish before its
 * timeouts, which would make agents reconnect and add work.
 */
static void
pace_feedback(struct worker *w, double latency, int failed)
{
	double t, old = w->win;

	if (O.enroll || O.hs_target <= 0)
		return;
	/* The latency's moving average, so that one slow admission among
	 * many (a store flush) does not cut the window. */
	if (!failed)
		w->lat_avg = w->lat_avg == 0 ? latency
		                             : 0.9 * w->lat_avg + 0.1 * latency;
	if (failed || w->lat_avg > O.hs_target) {
		t = now_s();
		if (t - w->t_dec < O.hs_target)
			return;
		w->t_dec = t;
		w->slow_start = 0;
		w->win = fmax(2, w->win * 0.7);
		INC(st_win_cuts);
	} else if (w->slow_start)
		w->win = fmin(w->win_max, w->win + 1);
	else
		w->win = fmin(w->win_max, w->win + 1 / w->win);
	ADD(st_win_x100, (long long)(w->win * 100) - (long long)(old * 100));
	atomic_store_explicit(&w->lat_ms, (long long)(w->lat_avg * 1000),
	                      memory_order_relaxed);
}

/* Whether the token bucket allows one more connection now (and takes
 * the token). */
static int
pace_token(struct worker *w)
{
	double t;

	if (w->rate <= 0)
		return 1;
	t = now_s();
	w->tokens = fmin(fmax(1, w->rate / 20),
	                 w->tokens + (t - w->t_refill) * w->rate);
	w->t_refill = t;
	if (w->tokens < 1)
		return 0;
	w->tokens -= 1;
	return 1;
}

/* A connection (a reconnect) through the pacing: queued, and started by
 * worker_pump when the window and the rate allow. */
static void
agent_connect_paced(struct agent *a)
{
	struct worker *w = a->w;

	if (O.no_pace_reconnects || O.enroll) {
		agent_connect(a);
		return;
	}
	if (a->queued)
		return;
	a->queued = 1;
	w->q[(w->qhead + w->qlen++) % w->n] = a;
	worker_pump(w);
}

static void
worker_pump(struct worker *w)
{
	struct agent *a;
	int limit = O.enroll ? w->par : (int)w->win;

	while (w->inflight < limit && (w->qlen > 0 || w->next < w->n) &&
	       GET(g_mode) != M_STOP) {
		if (!O.enroll && !pace_token(w))
			break;
		if (w->qlen > 0) {
			a = w->q[w->qhead];
			w->qhead = (w->qhead + 1) % w->n;
			w->qlen--;
			a->queued = 0;
			if (a->bev != NULL || a->dead)
				continue;
		} else
			a = w->a[w->next++];
		a->counted = 1;
		w->inflight++;
		if (O.enroll && a->key == NULL &&
		    (a->key = EVP_EC_gen("P-256")) == NULL)
			die("cannot generate an EC P-256 key");
		agent_connect(a);
	}
	if (O.enroll && w->done == w->n)
		event_base_loopexit(w->base, NULL);
}

static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	(void)fd;
	(void)what;
	if (w->qlen > 0 || w->next < w->n)
		worker_pump(w);
}

static void
pump_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	worker_pump(arg);
}

static void
wake_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	int mode = GET(g_mode);
	size_t i;

	(void)fd;
	(void)what;
	for (i = 0; i < w->n; i++) {
		struct agent *a = w->a[i];

		if (mode == M_STOP) {
			evtimer_del(a->timer);
			agent_close(a);
		} else if (a->req == R_NONE && a->connected &&
		           !evtimer_pending(a->timer, NULL))
			agent_next(a);
	}
	if (mode == M_STOP) {
		if (w->tick != NULL)
			evtimer_del(w->tick);
		event_base_loopexit(w->base, NULL);
	}
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;

	worker_pump(w);
	event_base_loop(w->base, O.enroll ? 0 : EVLOOP_NO_EXIT_ON_EMPTY);
	return NULL;
}

/* A ticket arrived (TLS 1.3 sends them after the handshake): the agent
 * keeps the newest for its next connection. */
static int
new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
	struct agent *a = SSL_get_app_data(ssl);

	if (a == NULL || O.enroll)
		return 0;
	/* A copy: OpenSSL marks the connection's own session not resumable
	 * when that connection ends in an error (the center going away). */
	SSL_SESSION_free(a->sess);
	a->sess = SSL_SESSION_dup(sess);
	return 0;
}

static SSL_CTX *
client_ctx(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL ||
	    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_load_verify_locations(ctx, O.ca, NULL) != 1)
		die("%s: cannot load the CA", O.ca);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	/* As vigil-agent (src/common/tls.c): the certificate alone, not
	 * the CA the center has already. */
	SSL_CTX_set_mode(ctx,
	                 SSL_MODE_RELEASE_BUFFERS | SSL_MODE_NO_AUTO_CHAIN);
	SSL_CTX_set_session_cache_mode(
	    ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(ctx, new_session_cb);
	return ctx;
}

static void
workers_start(void)
{
	int t, i;

	g_workers = calloc((size_t)O.threads, sizeof(*g_workers));
	for (t = 0; t < O.threads; t++) {
		struct worker *w = &g_workers[t];

		w->idx = t;
		if ((w->base = event_base_new()) == NULL)
			die("event_base_new failed");
		w->ctx = client_ctx();
		w->wake = event_new(w->base, -1, 0, wake_cb, w);
		w->pump = event_new(w->base, -1, 0, pump_cb, w);
		w->a = calloc((size_t)O.agents / (size_t)O.threads + 1,
		              sizeof(*w->a));
		w->par = (O.enroll ? O.enroll_par : O.connect_par) / O.threads;
		if (w->par < 1)
			w->par = O.agents; /* 0 = no limit */
		w->q = calloc((size_t)O.agents / (size_t)O.threads + 1,
		              sizeof(*w->q));
		w->win_max = w->par;
		/* Without adaptation the window is --connect-parallel. */
		w->win = O.hs_target > 0 ? fmin(w->win_max, 8) : w->win_max;
		w->slow_start = 1;
		ADD(st_win_x100, (long long)(w->win * 100));
		w->rate = O.connect_rate / O.threads;
		w->t_refill = now_s();
		if (!O.enroll) {
			struct timeval tv = {0, 20000};

			w->tick =
			    event_new(w->base, -1, EV_PERSIST, tick_cb, w);
			evtimer_add(w->tick, &tv);
		}
	}
	for (i = 0; i < O.agents; i++) {
		struct agent *a = &g_agents[i];
		struct worker *w = &g_workers[i % O.threads];

		a->w = w;
		a->timer = evtimer_new(w->base, timer_cb, a);
		a->body = evbuffer_new();
		w->a[w->n++] = a;
	}
	for (t = 0; t < O.threads; t++)
		if (pthread_create(&g_workers[t].th, NULL, worker_main,
		                   &g_workers[t]) != 0)
			die("pthread_create failed");
}

static void
workers_wake(void)
{
	int t;

	for (t = 0; t < O.threads; t++)
		event_active(g_workers[t].wake, EV_READ, 0);
}

static void
workers_join(void)
{
	int t;

	for (t = 0; t < O.threads; t++)
		pthread_join(g_workers[t].th, NULL);
}

/* --- identities ------------------------------------------------------------
 */

static void
ids_path(char *out, size_t n, const char *file)
{
	if ((size_t)snprintf(out, n, "%s/%s", O.ids, file) >= n)
		die("--ids: path too long");
}

static int
ids_save(void)
{
	char p1[4096], p2[4096];
	FILE *txt;
	BIO *pem;
	int i, n = 0;

	mkdir(O.ids, 0700);
	ids_path(p1, sizeof(p1), "agents.txt");
	ids_path(p2, sizeof(p2), "agents.pem");
	if ((txt = fopen(p1, "w")) == NULL ||
	    (pem = BIO_new_file(p2, "w")) == NULL)
		die("%s: cannot write: %s", O.ids, strerror(errno));
	chmod(p2, 0600);
	for (i = 0; i < O.agents; i++) {
		struct agent *a = &g_agents[i];

		if (a->dead || a->cert == NULL)
			continue;
		fprintf(txt, "%d %s %s\n", n++, a->id, a->mid);
		PEM_write_bio_PrivateKey(pem, a->key, NULL, NULL, 0, NULL,
		                         NULL);
		PEM_write_bio_X509(pem, a->cert);
	}
	if (fclose(txt) != 0 || BIO_flush(pem) != 1)
		die("%s: write failed", O.ids);
	BIO_free(pem);
	return n;
}

static void
ids_load(void)
{
	char p1[4096], p2[4096], line[256];
	FILE *txt;
	BIO *pem;
	int i, idx;

	ids_path(p1, sizeof(p1), "agents.txt");
	ids_path(p2, sizeof(p2), "agents.pem");
	if ((txt = fopen(p1, "r")) == NULL ||
	    (pem = BIO_new_file(p2, "r")) == NULL)
		die("%s: no identities (run fleet enroll first)", O.ids);
	/* Skipped identities are not parsed: a key and a certificate each,
	 * so two "-----END " lines per identity. */
	for (i = 0; i < O.first; i++)
		if (fgets(line, sizeof(line), txt) == NULL)
			die("%s: fewer than --first %d identities", p1,
			    O.first);
	for (i = 0; i < 2 * O.first;) {
		char l[256];

		if (BIO_gets(pem, l, sizeof(l)) <= 0)
			die("%s: fewer than --first %d identities", p2,
			    O.first);
		if (strncmp(l, "-----END ", 9) == 0)
			i++;
	}
	for (i = 0; i < O.agents; i++) {
		struct agent *a = &g_agents[i];

		if (fgets(line, sizeof(line), txt) == NULL ||
		    sscanf(line, "%d %39s %32s", &idx, a->id, a->mid) != 3)
			die("%s: holds %d identities, %d wanted; enroll more",
			    p1, i, O.agents);
		a->idx = i;
		if ((a->key = PEM_read_bio_PrivateKey(pem, NULL, NULL, NULL)) ==
		        NULL ||
		    (a->cert = PEM_read_bio_X509(pem, NULL, NULL, NULL)) ==
		        NULL)
			die("%s: identity %d unreadable", p2, i);
	}
	fclose(txt);
	BIO_free(pem);
}

/* --- phases of a run -------------------------------------------------------
 */

struct mark {
	const char *name;
	double t;
	struct proc_sample c; /* the center */
	double self_cpu;      /* this program */
	double admin_max;     /* slowest admin API call in the phase */
};

#define MAX_MARKS 16
static struct mark g_marks[MAX_MARKS];
static int g_nmarks;
static int g_pid; /* the center's pid (changes at the restart) */

static double
self_cpu(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void
mark(const char *name)
{
	struct mark *m;

	if (g_nmarks == MAX_MARKS)
		return;
	m = &g_marks[g_nmarks++];
	m->name = name;
	m->t = now_s();
	proc_read(g_pid, &m->c);
	m->self_cpu = self_cpu();
	m->admin_max = g_admin_max;
	g_admin_max = 0;
}

static int
alive_agents(void)
{
	return O.agents - (int)GET(st_dead);
}

/* The held polls the center's gauge must show: this generator's live
 * agents, or with several generators (--total-agents) all of them (less
 * the ones this one gave up; the others' are not known here). */
static int
gauge_want(void)
{
	return O.total_agents > 0 ? O.total_agents - (int)GET(st_dead)
	                          : alive_agents();
}

static void
progress(void)
{
	long long lat = 0;
	int t;

	for (t = 0; t < O.threads; t++)
		lat = lat > GET(g_workers[t].lat_ms) ? lat
		                                     : GET(g_workers[t].lat_ms);
	say("  %lld connected, %lld polling, %lld handshakes (%lld resumed), "
	    "%lld failed attempts, %lld disconnects, %lld 503; window %.0f "
	    "admissions in flight (%lld cuts), admission latency %.2f s",
	    GET(st_connected), GET(st_polling), GET(st_handshakes),
	    GET(st_resumed), GET(st_conn_fail), GET(st_disconnects),
	    GET(st_503), (double)GET(st_win_x100) / 100, GET(st_win_cuts),
	    (double)lat / 1000);
}

/* Waits until all live agents hold a poll, agent side and (if center)
 * center side. */
static int
wait_polling(double deadline, double *gauge_out, int center)
{
	struct center_metrics m;
	double next_scrape = 0, next_say = now_s() + 10;

	*gauge_out = NAN;
	while (now_s() < deadline) {
		if (now_s() >= next_say) {
			next_say += 10;
			progress();
		}
		if (GET(st_polling) >= alive_agents() && !center)
			return 0;
		if (GET(st_polling) >= alive_agents() &&
		    now_s() >= next_scrape) {
			next_scrape = now_s() + 0.5;
			if (metrics_read(&m) == 0) {
				*gauge_out = m.long_polls;
				if (m.long_polls >= gauge_want())
					return 0;
			}
		}
		sleep_s(0.05);
	}
	return -1;
}

/* --- several load generators (run.sh --generators) ------------------------
 *
 * They share the machine, so CLOCK_MONOTONIC times compare between them.
 * They meet at barriers (a file NAME.FIRST each in --barrier DIR, with
 * a line of figures) and the leader hands out what it did (the task it
 * posted and when, the restart) as files written whole (rename).
 */

static void
gen_path(char *out, size_t n, const char *name, int who)
{
	if (who >= 0)
		snprintf(out, n, "%s/%s.%d", O.barrier, name, who);
	else
		snprintf(out, n, "%s/%s", O.barrier, name);
}

static void
gen_write(const char *name, int who, const char *text)
{
	char path[4096], tmp[4200];
	FILE *f;

	gen_path(path, sizeof(path), name, who);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if ((f = fopen(tmp, "w")) == NULL || fputs(text, f) == EOF ||
	    fclose(f) != 0 || rename(tmp, path) == -1)
		die("%s: cannot write: %s", path, strerror(errno));
}

/* The first line of a leader's file, waiting for it until deadline. */
static int
gen_read(const char *name, char *buf, size_t n, double deadline)
{
	char path[4096];
	FILE *f;

	gen_path(path, sizeof(path), name, -1);
	while (now_s() < deadline) {
		if ((f = fopen(path, "r")) != NULL) {
			int ok = fgets(buf, (int)n, f) != NULL;

			fclose(f);
			if (ok)
				return 0;
		}
		sleep_s(0.02);
	}
	say("%s: not written by the leader in time", path);
	return -1;
}

/* Says this generator reached NAME (with a line of figures), waits until
 * all --barrier-n have, or deadline. Returns how many had. */
static int
barrier(const char *name, const char *line, double deadline)
{
	char path[4096], prefix[128];
	struct dirent *de;
	size_t pl;
	DIR *d;
	int n;

	snprintf(prefix, sizeof(prefix), "%s.", name);
	pl = strlen(prefix);
	gen_write(name, O.first, line ? line : "\n");
	for (;;) {
		n = 0;
		if ((d = opendir(O.barrier)) != NULL) {
			while ((de = readdir(d)) != NULL)
				n += strncmp(de->d_name, prefix, pl) == 0 &&
				     strstr(de->d_name, ".tmp") == NULL;
			closedir(d);
		}
		if (n >= O.barrier_n || now_s() > deadline)
			break;
		sleep_s(0.05);
	}
	if (n < O.barrier_n)
		say("barrier %s: only %d of %d load generators", name, n,
		    O.barrier_n);
	(void)path;
	return n;
}

/* Calls fn on every line of every generator's NAME.* file. */
static void
barrier_lines(const char *name, void (*fn)(const char *line, void *arg),
              void *arg)
{
	char path[4096], prefix[128], *line = NULL;
	struct dirent *de;
	size_t pl, cap = 0;
	DIR *d;
	FILE *f;

	snprintf(prefix, sizeof(prefix), "%s.", name);
	pl = strlen(prefix);
	if ((d = opendir(O.barrier)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, prefix, pl) != 0 ||
		    strstr(de->d_name, ".tmp") != NULL)
			continue;
		snprintf(path, sizeof(path), "%s/%s", O.barrier, de->d_name);
		if ((f = fopen(path, "r")) == NULL)
			continue;
		while (getline(&line, &cap, f) > 0)
			fn(line, arg);
		fclose(f);
	}
	closedir(d);
	free(line);
}

static struct {
	double hs_p50, hs_p99, hs_max;
	double connect_secs, handshakes_per_s, conn_gauge_min, polls_gauge_min;
	double hold_conn_min;
	long rss_hold_kb;
	int rounds_done;
	double lat_ret_p50, lat_ret_p99, lat_ret_max, lat_sent_p50,
	    lat_sent_p99, lat_sent_max, post_secs_max;
	long long lat_missing, lat_n;
	int lat_nagents;
	double hb_per_s;
	double hb_cpu_us; /* center CPU (all its processes) per heartbeat */
	double ev_secs, ev_per_s;
	long long ev_sent, ev_acked, ev_stored_acks, ev_dup_acks, db_events,
	    db_agents, db_agents_complete, api_checked, api_ok;
	double ev_center_stored;
	int restart_ok;
	double stop_secs, start_secs, back_secs, back_from_listen_secs,
	    reconn_p50, reconn_p99, reconn_max;
	/* first connect() of each agent after SIGTERM, from the center
	 * listening again: the load generator's spread (Retry-After,
	 * backoff and jitter), not the center's */
	double try_first, try_p50, try_last;
	long long try_early; /* of them before the center listened */
	long long reconn_n, all_handshakes, all_resumed;
	/* several generators: summed from their "held" files */
	int gens;
	long long gen_handshakes, gen_fails, gen_conn_min_sum;
	double gen_hs_p99_max, gen_connect_secs_max;
	double cpu1, cpu1_secs, cpu2, cpu2_secs;
	long hwm1_kb, hwm2_kb;
} R;

static void
phase_connect(void)
{
	double t0 = now_s(), gauge;

	say("connect: %d agents, at most %d admissions in flight%s, %s",
	    O.agents, O.connect_par,
	    O.hs_target > 0 ? " (adapting to their latency)" : "",
	    O.connect_rate > 0 ? "paced" : "no rate limit");
	if (O.connect_rate > 0)
		say("connect: at most %.0f new connections/s", O.connect_rate);
	if (wait_polling(t0 + O.connect_timeout, &gauge, !O.follower) == -1)
		say("connect: DEADLINE after %d s: %lld connected, %lld "
		    "polling, center holds %.0f polls",
		    O.connect_timeout, GET(st_connected), GET(st_polling),
		    gauge);
	R.connect_secs = now_s() - t0;
	R.handshakes_per_s = (double)GET(st_handshakes) / R.connect_secs;
	{
		double *hs = calloc((size_t)O.agents, sizeof(double));
		size_t n = 0;
		int i;

		for (i = 0; i < O.agents; i++)
			if (g_agents[i].ever)
				hs[n++] = g_agents[i].hs_first;
		qsort(hs, n, sizeof(double), cmp_double);
		R.hs_p50 = quantile(hs, n, 0.5);
		R.hs_p99 = quantile(hs, n, 0.99);
		R.hs_max = n ? hs[n - 1] : NAN;
		free(hs);
	}
	say("connect: %lld connected, %lld polling (center: %.0f) in %.1f s "
	    "(%.0f handshakes/s, %lld failed attempts; connect() to TLS "
	    "established p50 %.3f s p99 %.3f s max %.3f s)",
	    GET(st_connected), GET(st_polling), gauge, R.connect_secs,
	    R.handshakes_per_s, GET(st_conn_fail), R.hs_p50, R.hs_p99,
	    R.hs_max);
	mark("connect");
}

static void
phase_hold(void)
{
	double t0 = now_s(), end = t0 + O.hold;
	struct center_metrics m;
	struct proc_sample ps;

	R.conn_gauge_min = R.polls_gauge_min = R.hold_conn_min = 1e18;
	say("hold: %d s of held polls (wait=%d)", O.hold, O.wait);
	while (now_s() < end) {
		sleep_s(1);
		if (metrics_read(&m) == 0) {
			R.conn_gauge_min = fmin(R.conn_gauge_min, m.gw_conns);
			R.polls_gauge_min =
			    fmin(R.polls_gauge_min, m.long_polls);
		}
		R.hold_conn_min =
		    fmin(R.hold_conn_min, (double)GET(st_connected));
	}
	proc_read(g_pid, &ps);
	R.rss_hold_kb = ps.rss_kb;
	say("hold: connections min %.0f (center) / %.0f (agents), held polls "
	    "min %.0f, center RSS %.0f MiB",
	    R.conn_gauge_min, R.hold_conn_min, R.polls_gauge_min,
	    (double)ps.rss_kb / 1024);
	mark("hold");
}

static int
post_task(char *id, size_t idlen, int *nagents)
{
	struct reply r;
	json_t *j;
	int rc = -1;

	if (admin_call("POST", "/api/v1/tasks",
	               "{\"kind\": \"inventory\", \"target\": {\"all\": "
	               "true}, \"timeout\": \"1h\"}",
	               &r) == -1)
		return -1;
	j = json_loadb(r.body, r.len, 0, NULL);
	if (r.status == 201 && json_is_string(json_object_get(j, "id"))) {
		snprintf(id, idlen, "%s",
		         json_string_value(json_object_get(j, "id")));
		*nagents =
		    (int)json_integer_value(json_object_get(j, "agents"));
		rc = 0;
	} else
		say("dispatch: POST /api/v1/tasks: HTTP %d: %.300s", r.status,
		    r.body);
	json_decref(j);
	reply_free(&r);
	return rc;
}

struct lat_merge {
	double *ret, *sent;
	size_t n, cap;
	long long missing;
};

/* A line of a generator's "lat" file: "r RET SENT" (one receipt) or
 * "m MISSING". */
static void
lat_line(const char *line, void *arg)
{
	struct lat_merge *L = arg;
	double r, se;
	long long m;

	if (sscanf(line, "r %lf %lf", &r, &se) == 2) {
		if (L->n == L->cap) {
			L->cap = L->cap ? 2 * L->cap : 65536;
			L->ret = realloc(L->ret, L->cap * sizeof(double));
			L->sent = realloc(L->sent, L->cap * sizeof(double));
			if (L->ret == NULL || L->sent == NULL)
				die("out of memory");
		}
		L->ret[L->n] = r;
		L->sent[L->n++] = se;
	} else if (sscanf(line, "m %lld", &m) == 1)
		L->missing += m;
}

/*
 * With several generators (--barrier): all of them wait until their own
 * agents poll and meet; the leader waits for the center's gauge of all
 * agents, posts the task and writes "taskK" (when the POST was sent and
 * returned); each generator takes its own agents' receipts against those
 * times, and at the end writes them all to "lat.FIRST", which the leader
 * merges for the figures.
 */
static void
phase_dispatch(void)
{
	struct lat_merge L = {0};
	int multi = O.barrier != NULL;
	int k, i, nagents = 0;
	char line[256], name[32];

	for (k = 0; k < O.rounds; k++) {
		double t_sent, t_ret, deadline, gauge;
		long long want = (long long)alive_agents() * (k + 1);
		char id[64] = "";

		if (multi) {
			if (wait_polling(now_s() + O.round_timeout, &gauge,
			                 0) == -1)
				say("dispatch %d: only %lld agents polling",
				    k + 1, GET(st_polling));
			snprintf(name, sizeof(name), "poll%d", k);
			barrier(name, NULL, now_s() + O.round_timeout);
		}
		if (!O.follower &&
		    wait_polling(now_s() + O.round_timeout, &gauge, 1) == -1)
			say("dispatch %d: only %lld agents polling (center: "
			    "%.0f); dispatching anyway",
			    k + 1, GET(st_polling), gauge);
		if (k == O.rounds - 1 && !multi)
			atomic_store(&g_mode, M_HEARTBEAT);
		snprintf(name, sizeof(name), "task%d", k);
		if (O.follower) {
			if (gen_read(name, line, sizeof(line),
			             now_s() + 2 * O.round_timeout) == -1 ||
			    sscanf(line, "%lf %lf %63s %d", &t_sent, &t_ret, id,
			           &nagents) != 4)
				break;
		} else {
			t_sent = now_s();
			if (post_task(id, sizeof(id), &nagents) == -1) {
				if (multi)
					gen_write(name, -1, "failed\n");
				break;
			}
			t_ret = now_s();
			if (multi) {
				snprintf(line, sizeof(line),
				         "%.6f %.6f %s %d\n", t_sent, t_ret, id,
				         nagents);
				gen_write(name, -1, line);
			}
		}
		R.post_secs_max = fmax(R.post_secs_max, t_ret - t_sent);
		deadline = t_ret + O.round_timeout;
		while (GET(st_tasks_rx) < want && now_s() < deadline)
			sleep_s(0.01);
		for (i = 0; i < O.agents; i++) {
			struct agent *a = &g_agents[i];

			if (a->nrx > k && k < MAX_ROUNDS) {
				lat_line("r 0 0", &L); /* makes room */
				L.ret[L.n - 1] = a->rx[k] - t_ret;
				L.sent[L.n - 1] = a->rx[k] - t_sent;
			} else if (!a->dead)
				L.missing++;
		}
		say("dispatch %d: task %s for %d agents; POST took %.3f s; "
		    "%lld/%lld received here",
		    k + 1, id, nagents, t_ret - t_sent, GET(st_tasks_rx), want);
		while (GET(st_status_ok) + GET(st_status_other) < want &&
		       now_s() < deadline)
			sleep_s(0.01);
		R.rounds_done++;
	}
	if (multi) {
		/* This generator's receipts for the leader, then all of
		 * them merged. */
		struct evbuffer *b = evbuffer_new();
		size_t j;

		evbuffer_add_printf(b, "m %lld\n", L.missing);
		for (j = 0; j < L.n; j++)
			evbuffer_add_printf(b, "r %.6f %.6f\n", L.ret[j],
			                    L.sent[j]);
		evbuffer_add(b, "", 1);
		gen_write("lat", O.first, (const char *)evbuffer_pullup(b, -1));
		evbuffer_free(b);
		barrier("dispatched", NULL, now_s() + O.round_timeout);
		free(L.ret);
		free(L.sent);
		memset(&L, 0, sizeof(L));
		barrier_lines("lat", lat_line, &L);
	}
	qsort(L.ret, L.n, sizeof(double), cmp_double);
	qsort(L.sent, L.n, sizeof(double), cmp_double);
	R.lat_missing = L.missing;
	R.lat_ret_p50 = quantile(L.ret, L.n, 0.5);
	R.lat_ret_p99 = quantile(L.ret, L.n, 0.99);
	R.lat_ret_max = L.n ? L.ret[L.n - 1] : NAN;
	R.lat_sent_p50 = quantile(L.sent, L.n, 0.5);
	R.lat_sent_p99 = quantile(L.sent, L.n, 0.99);
	R.lat_sent_max = L.n ? L.sent[L.n - 1] : NAN;
	R.lat_n = (long long)L.n;
	R.lat_nagents = nagents;
	say("dispatch: %zu receipts%s; after the POST returned p50 %.3f s "
	    "p99 %.3f s max %.3f s; after it was sent p50 %.3f s p99 %.3f s "
	    "max %.3f s; %lld missing",
	    L.n, multi ? " (all generators)" : "", R.lat_ret_p50, R.lat_ret_p99,
	    R.lat_ret_max, R.lat_sent_p50, R.lat_sent_p99, R.lat_sent_max,
	    R.lat_missing);
	free(L.ret);
	free(L.sent);
	mark("dispatch");
}

static void
phase_heartbeat(void)
{
	struct proc_sample p0, p1;
	long long h0, h1;
	double t0, t1;

	/* Counted by the agents (200 replies): the center's counter can
	 * only be read through the admin API, which answers late under this
	 * load, so its window would be uncertain. */
	say("heartbeat: %d s of closed-loop heartbeats", O.hb_secs);
	proc_read(g_pid, &p0);
	h0 = GET(st_hb_ok);
	t0 = now_s();
	sleep_s(O.hb_secs);
	h1 = GET(st_hb_ok);
	t1 = now_s();
	proc_read(g_pid, &p1);
	R.hb_per_s = (double)(h1 - h0) / (t1 - t0);
	R.hb_cpu_us =
	    h1 > h0 ? (p1.cpu - p0.cpu) * 1e6 / (double)(h1 - h0) : (double)NAN;
	say("heartbeat: %.0f/s acknowledged, %.1f us of center CPU each",
	    R.hb_per_s, R.hb_cpu_us);
	mark("heartbeat");
}

static long long
db_count(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	long long v = -1;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		say("verify: %s: %s", sql, sqlite3_errmsg(db));
		return -1;
	}
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static void
verify_events(void)
{
	char sql[512], path[160];
	struct center_metrics m;
	sqlite3 *db = NULL;
	int i, k;

	if (metrics_read(&m) == 0)
		R.ev_center_stored = m.events_stored;
	if (O.db != NULL && sqlite3_open_v2(O.db, &db, SQLITE_OPEN_READONLY,
	                                    NULL) == SQLITE_OK) {
		sqlite3_busy_timeout(db, 30000);
		/* Agent "center" holds the center's own audit entries. */
		R.db_events = db_count(db, "SELECT COUNT(*) FROM events "
		                           "WHERE agent_id <> 'center'");
		R.db_agents = db_count(db, "SELECT COUNT(DISTINCT agent_id) "
		                           "FROM events WHERE agent_id <> "
		                           "'center'");
		snprintf(sql, sizeof(sql),
		         "SELECT COUNT(*) FROM (SELECT agent_id FROM events "
		         "WHERE agent_id <> 'center' GROUP BY agent_id HAVING "
		         "COUNT(*) = %d AND MIN(seq) "
		         "= 1 AND MAX(seq) = %d)",
		         O.events_per_agent, O.events_per_agent);
		R.db_agents_complete = db_count(db, sql);
	} else
		R.db_events = R.db_agents = R.db_agents_complete = -1;
	sqlite3_close(db);
	/* The admin API, for a few agents spread over the fleet. */
	for (k = 0; k < 5 && k < O.agents; k++) {
		struct reply r;
		json_t *j;

		i = (int)((long long)k * O.agents / 5);
		snprintf(path, sizeof(path),
		         "/api/v1/events?agent=%s&limit=10000", g_agents[i].id);
		R.api_checked++;
		if (admin_call("GET", path, NULL, &r) == -1)
			continue;
		j = json_loadb(r.body, r.len, 0, NULL);
		if (r.status == 200 &&
		    (long long)json_array_size(json_object_get(j, "items")) ==
		        (O.events_per_agent < 10000 ? O.events_per_agent
		                                    : 10000))
			R.api_ok++;
		else
			say("verify: agent %s: admin API shows %zu events",
			    g_agents[i].id,
			    json_array_size(json_object_get(j, "items")));
		json_decref(j);
		reply_free(&r);
	}
	say("verify: sent %lld, acknowledged %lld (stored %lld + duplicates "
	    "%lld); store holds %lld events of %lld agents, %lld agents with "
	    "exactly seq 1..%d; center counter %.0f; admin API %lld/%lld "
	    "agents complete",
	    R.ev_sent, R.ev_acked, R.ev_stored_acks, R.ev_dup_acks, R.db_events,
	    R.db_agents, R.db_agents_complete, O.events_per_agent,
	    R.ev_center_stored, R.api_ok, R.api_checked);
}

static void
phase_events(void)
{
	double t0, deadline;
	long long want;

	want = alive_agents();
	say("events: %d per agent in batches of %d (%lld events)",
	    O.events_per_agent, O.batch, want * O.events_per_agent);
	atomic_store(&g_mode, M_EVENTS);
	workers_wake();
	t0 = now_s();
	deadline = t0 + O.events_timeout;
	while (GET(st_ev_done) < want && now_s() < deadline)
		sleep_s(0.01);
	R.ev_secs = now_s() - t0;
	R.ev_sent = want * O.events_per_agent;
	R.ev_acked = GET(st_ev_acked);
	R.ev_stored_acks = GET(st_ev_stored);
	R.ev_dup_acks = GET(st_ev_dup);
	R.ev_per_s = (double)R.ev_stored_acks / R.ev_secs;
	say("events: %lld acknowledged in %.2f s: %.0f events/s stored, %lld "
	    "batches, %lld answered 503",
	    R.ev_acked, R.ev_secs, R.ev_per_s, GET(st_ev_batches), GET(st_503));
	mark("events");
	verify_events();
}

/* A line of a generator's "reconn" file: "c SECS" (an agent connected
 * again SECS after the SIGTERM) or "h HANDSHAKES RESUMED". */
static void
reconn_line(const char *line, void *arg)
{
	struct lat_merge *L = arg;
	long long h, r;

	if (line[0] == 'c') {
		lat_line("r 0 0", L);
		L->ret[L->n - 1] = strtod(line + 2, NULL);
	} else if (sscanf(line, "h %lld %lld", &h, &r) == 2) {
		R.all_handshakes += h;
		R.all_resumed += r;
	}
}

/*
 * With several generators: all meet once their agents poll; the leader
 * stops and starts the center as alone, writes "term" (when it sent
 * SIGTERM and when the center listened again) and, once the center's
 * gauge shows every agent polling, "restarted"; each generator then
 * writes its agents' reconnect times ("reconn.FIRST") for the leader.
 */
static void
phase_restart(void)
{
	struct center_metrics m;
	struct proc_sample ps;
	struct lat_merge L = {0};
	double t_term = 0, t_exit, t_up = 0, deadline, gauge = NAN, *tries;
	int i, oldpid = g_pid, multi = O.barrier != NULL;
	char line[256];

	if (multi) {
		if (wait_polling(now_s() + O.round_timeout, &gauge, 0) == -1)
			say("restart: only %lld agents polling here",
			    GET(st_polling));
		barrier("prerestart", NULL, now_s() + O.round_timeout);
	}
	if (!O.follower &&
	    wait_polling(now_s() + O.round_timeout, &gauge, 1) == -1)
		say("restart: only %lld agents polling before the restart "
		    "(center: %.0f)",
		    GET(st_polling), gauge);
	if (O.follower) {
		if (gen_read("term", line, sizeof(line),
		             now_s() + O.round_timeout + 60) == -1 ||
		    sscanf(line, "%lf %lf", &t_term, &t_up) != 2)
			return;
		if (gen_read("restarted", line, sizeof(line),
		             t_up + O.restart_timeout + 30) == -1)
			return;
		R.restart_ok = strncmp(line, "ok", 2) == 0;
		goto reconnects;
	}
	proc_read(g_pid, &ps);
	R.hwm1_kb = ps.hwm_kb;
	R.cpu1 = ps.cpu;
	mark("before restart");
	say("restart: SIGTERM to the center (pid %d), %lld agents polling "
	    "here",
	    g_pid, GET(st_polling));
	t_term = now_s();
	atomic_store(&g_t_term, t_term);
	if (kill(g_pid, SIGTERM) == -1) {
		say("restart: kill: %s", strerror(errno));
		goto out;
	}
	while (proc_read(g_pid, &ps) == 0 && ps.alive &&
	       now_s() - t_term < O.stop_timeout)
		sleep_s(0.01);
	t_exit = now_s();
	R.stop_secs = t_exit - t_term;
	if (ps.alive) {
		say("restart: the center did not stop within %d s "
		    "(--stop-timeout)",
		    O.stop_timeout);
		goto out;
	}
	if (system(O.restart_cmd) != 0) {
		say("restart: %s failed", O.restart_cmd);
		goto out;
	}
	t_up = now_s();
	R.start_secs = t_up - t_exit;
	g_pid = ports_pid();
	if (multi) {
		snprintf(line, sizeof(line), "%.6f %.6f\n", t_term, t_up);
		gen_write("term", -1, line);
	}
	say("restart: stopped in %.2f s, started again in %.2f s (pid %d)",
	    R.stop_secs, R.start_secs, g_pid);
	deadline = t_up + O.restart_timeout;
	{
		double next_say = now_s() + 10, next_scrape = 0;

		/* Scraped every 0.25 s at most (it was every 0.1 s and
		 * more): a scrape costs the center's core counts over
		 * every agent, about 15 ms at 100,000 (50 before the
		 * indexes of migration 21), and the phase measures the
		 * agents' return, not the benchmark's scrapes. */
		while (now_s() < deadline) {
			int all = GET(st_polling) >= alive_agents();

			if (now_s() >= next_say) {
				next_say += 10;
				progress();
				say("  center: %.0f polls held", gauge);
			}
			if ((all || multi) && now_s() >= next_scrape) {
				next_scrape = now_s() + 0.25;
				if (metrics_read(&m) == 0) {
					gauge = m.long_polls;
					if (all && gauge >= gauge_want())
						break;
				}
			}
			sleep_s(0.05);
		}
	}
	if (g_pid == oldpid || gauge < gauge_want()) {
		say("restart: DEADLINE: %lld connected, %lld polling here, "
		    "center holds %.0f polls after %.0f s",
		    GET(st_connected), GET(st_polling), gauge,
		    now_s() - t_term);
		R.back_secs = NAN;
	} else {
		R.restart_ok = 1;
		R.back_secs = now_s() - t_term;
		R.back_from_listen_secs = now_s() - t_up;
	}
out:
	if (multi) {
		if (t_up == 0)
			gen_write("term", -1, "0 0\n");
		gen_write("restarted", -1, R.restart_ok ? "ok\n" : "failed\n");
	}
reconnects:
	for (i = 0; i < O.agents; i++)
		if (g_agents[i].connected && g_agents[i].t_conn > t_term) {
			lat_line("r 0 0", &L);
			L.ret[L.n - 1] = g_agents[i].t_conn - t_term;
		}
	R.all_handshakes = GET(st_handshakes);
	R.all_resumed = GET(st_resumed);
	if (multi) {
		struct evbuffer *b = evbuffer_new();
		size_t j;

		evbuffer_add_printf(b, "h %lld %lld\n", GET(st_handshakes),
		                    GET(st_resumed));
		for (j = 0; j < L.n; j++)
			evbuffer_add_printf(b, "c %.6f\n", L.ret[j]);
		evbuffer_add(b, "", 1);
		gen_write("reconn", O.first,
		          (const char *)evbuffer_pullup(b, -1));
		evbuffer_free(b);
		barrier("restartdone", NULL, now_s() + 60);
		free(L.ret);
		memset(&L, 0, sizeof(L));
		R.all_handshakes = R.all_resumed = 0;
		barrier_lines("reconn", reconn_line, &L);
	}
	qsort(L.ret, L.n, sizeof(double), cmp_double);
	R.reconn_p50 = quantile(L.ret, L.n, 0.5);
	R.reconn_p99 = quantile(L.ret, L.n, 0.99);
	R.reconn_max = L.n ? L.ret[L.n - 1] : NAN;
	R.reconn_n = (long long)L.n;
	free(L.ret);
	/* The first connect() of each of this generator's agents after
	 * SIGTERM (noted only where SIGTERM is sent: the leader). */
	if (!O.follower && t_up > 0 &&
	    (tries = malloc((size_t)O.agents * sizeof(double))) != NULL) {
		size_t nt = 0;

		R.try_early = 0;
		for (i = 0; i < O.agents; i++)
			if (!g_agents[i].dead && g_agents[i].t_back > 0) {
				tries[nt++] = g_agents[i].t_back - t_up;
				R.try_early += g_agents[i].t_back < t_up;
			}
		qsort(tries, nt, sizeof(double), cmp_double);
		R.try_first = nt ? tries[0] : NAN;
		R.try_p50 = quantile(tries, nt, 0.5);
		R.try_last = nt ? tries[nt - 1] : NAN;
		free(tries);
		say("restart: this generator's agents' first reconnect "
		    "attempts came %.2f to %.2f s (p50 %.2f s) after the "
		    "center listened, %lld of them before (the generator's "
		    "spread: Retry-After, backoff, jitter)",
		    R.try_first, R.try_last, R.try_p50, R.try_early);
	}
	if (O.follower)
		say("restart: the leader says %s; reconnects of %lld agents "
		    "(all generators) p50 %.2f s p99 %.2f s max %.2f s after "
		    "SIGTERM",
		    R.restart_ok ? "ok" : "FAILED", R.reconn_n, R.reconn_p50,
		    R.reconn_p99, R.reconn_max);
	else
		say("restart: %s: %lld agents polling again %.2f s after "
		    "SIGTERM "
		    "(%.2f s after the center listened); reconnects p50 %.2f s "
		    "p99 "
		    "%.2f s max %.2f s after SIGTERM (%lld agents%s); %lld of "
		    "%lld TLS "
		    "handshakes resumed in all",
		    R.restart_ok ? "ok" : "FAILED", (long long)gauge_want(),
		    R.back_secs, R.back_from_listen_secs, R.reconn_p50,
		    R.reconn_p99, R.reconn_max, R.reconn_n,
		    multi ? ", all generators" : "", R.all_resumed,
		    R.all_handshakes);
	if (!O.follower)
		mark("restart");
}

/* One JSON member; NaN (not measured) is null. */
static void
jnum(FILE *f, const char *k, double v)
{
	if (isnan(v) || isinf(v))
		fprintf(f, ", \"%s\": null", k);
	else
		fprintf(f, ", \"%s\": %.10g", k, v);
}

/* One line of the targets table: the figure, the target, and whether it
 * is met; a figure not measured in this run (NaN) says so. */
static void
target_line(const char *what, const char *fig, double v, const char *target,
            int met)
{
	printf("%-30s %-22s %-34s %s\n", what, isnan(v) ? "-" : fig, target,
	       isnan(v) ? "not measured in this run"
	       : met    ? "met"
	                : "NOT MET");
}

/*
 * The process-model targets (docs/performance.md, "The process-model
 * targets"), each against this run's figure. The 100,000-agent targets
 * (all held, RSS, restart in 90 s) are judged at the run's size; the
 * events target at 10,000 agents.
 */
static void
report_targets(void)
{
	int total = O.total_agents > 0 ? O.total_agents : O.agents;
	int ok = R.ev_acked == R.ev_sent && R.ev_sent > 0 &&
	         (O.db == NULL || R.db_events == R.ev_sent);
	/* connections held over the hold (the polls gauge dips as each
	 * 25 s poll ends and is sent again) */
	double held = R.conn_gauge_min < 1e17 ? R.conn_gauge_min : NAN;
	double rss = R.rss_hold_kb > 0 ? (double)R.rss_hold_kb / 1024 : NAN;
	double back = R.restart_ok ? R.back_from_listen_secs : NAN;
	double back_target = total > 10000 ? 90 : 10;
	double ev = R.gens > 0 || R.ev_secs <= 0 ? NAN : R.ev_per_s;
	double hb = R.gens > 0 ? NAN : R.hb_cpu_us;
	char fig[64], tgt[64];

	printf("\n== against the targets (docs/performance.md) ==\n");
	snprintf(fig, sizeof(fig), "%.0f of %d", held, total);
	target_line("agents connected, held", fig, held, "all held",
	            held >= total);
	snprintf(fig, sizeof(fig), "%.0f MiB", rss);
	target_line("center RSS, all processes", fig, rss, "under 4096 MiB",
	            rss < 4096);
	snprintf(fig, sizeof(fig), "%.3f s", R.lat_sent_p99);
	snprintf(tgt, sizeof(tgt), "under 1 s (task for all %d)", total);
	target_line("dispatch p99 from POST sent", fig,
	            R.rounds_done > 0 ? R.lat_sent_p99 : NAN, tgt,
	            R.lat_sent_p99 < 1 && R.lat_missing == 0);
	snprintf(fig, sizeof(fig), "%.1f us", hb);
	target_line("center CPU per heartbeat", fig, hb, "at most 30 us",
	            hb <= 30);
	snprintf(fig, sizeof(fig), "%.2f s", back);
	snprintf(tgt, sizeof(tgt), "within %.0f s of listening", back_target);
	target_line("restart: all back", fig, back, tgt, back <= back_target);
	snprintf(fig, sizeof(fig), "%.0f/s%s", ev, ok ? "" : " (LOSS)");
	target_line("events stored durably", fig, ev,
	            "250,000/s at 10,000, none lost", ev >= 250000 && ok);
}

static void
report(void)
{
	struct proc_sample ps;
	FILE *f;
	int i;

	if (proc_read(g_pid, &ps) == 0) {
		R.hwm2_kb = ps.hwm_kb;
		R.cpu2 = ps.cpu;
	}
	printf("\n== fleet: %d agents, %d threads, %d source addresses ==\n",
	       O.agents, O.threads, O.src_addrs);
	printf("agents connected        %lld of %d (held polls, center gauge "
	       "min during hold: %.0f; gateway connections min %.0f)\n",
	       (long long)R.hold_conn_min, O.agents, R.polls_gauge_min,
	       R.conn_gauge_min);
	printf("connect phase           %.1f s, %.0f TLS handshakes/s, %lld "
	       "failed attempts; handshake p50 %.3f s p99 %.3f s max %.3f s\n",
	       R.connect_secs, R.handshakes_per_s, GET(st_conn_fail), R.hs_p50,
	       R.hs_p99, R.hs_max);
	if (R.gens > 0) {
		printf("load generators         %d with %d agents in all: %lld "
		       "handshakes, %lld failed attempts, handshake p99 up to "
		       "%.3f s; connected (sum of their minimums over the "
		       "hold) %lld; the slowest was connected after %.1f s\n",
		       R.gens, O.total_agents, R.gen_handshakes, R.gen_fails,
		       R.gen_hs_p99_max, R.gen_conn_min_sum,
		       R.gen_connect_secs_max);
		printf("dispatch receipts       %lld of %lld (all generators; "
		       "the task was for %d agents)\n",
		       R.lat_n, (long long)O.total_agents * R.rounds_done,
		       R.lat_nagents);
	}
	if (R.gens > 0)
		printf("heartbeats, events      not measured (not split across "
		       "load generators)\n");
	else {
		printf("heartbeats/s            %.0f (closed loop, every "
		       "agent), %.1f us of center CPU each\n",
		       R.hb_per_s, R.hb_cpu_us);
		printf("events/s stored         %.0f (%lld events in %.2f s, "
		       "batches "
		       "of %d)\n",
		       R.ev_per_s, R.ev_stored_acks, R.ev_secs, O.batch);
		printf(
		    "events check            sent %lld, acked %lld, in store "
		    "%lld "
		    "(%lld/%d agents complete), admin API %lld/%lld: %s\n",
		    R.ev_sent, R.ev_acked, R.db_events, R.db_agents_complete,
		    alive_agents(), R.api_ok, R.api_checked,
		    O.db == NULL
		        ? (R.ev_acked == R.ev_sent && R.api_ok == R.api_checked
		               ? "acknowledged (no --db: the store is checked "
		                 "by run.sh)"
		               : "MISMATCH")
		    : R.db_events == R.ev_sent && R.ev_acked == R.ev_sent &&
		            R.db_agents_complete == alive_agents()
		        ? "nothing lost"
		        : "MISMATCH");
	}
	printf("task dispatch latency   p50 %.3f s, p99 %.3f s, max %.3f s "
	       "after the admin POST returned (%d rounds; %lld missing)\n",
	       R.lat_ret_p50, R.lat_ret_p99, R.lat_ret_max, R.rounds_done,
	       R.lat_missing);
	printf("                        p50 %.3f s, p99 %.3f s, max %.3f s "
	       "after it was sent (POST took up to %.3f s)\n",
	       R.lat_sent_p50, R.lat_sent_p99, R.lat_sent_max, R.post_secs_max);
	printf("center peak RSS         %.0f MiB (VmHWM before the restart), "
	       "%.0f MiB after it\n",
	       (double)R.hwm1_kb / 1024, (double)R.hwm2_kb / 1024);
	printf("restart                 %s: all back %.2f s after SIGTERM "
	       "(stop %.2f s, start %.2f s, then %.2f s); reconnect p50 "
	       "%.2f p99 %.2f max %.2f s\n",
	       R.restart_ok ? "ok" : (O.skip_restart ? "skipped" : "FAILED"),
	       R.back_secs, R.stop_secs, R.start_secs, R.back_from_listen_secs,
	       R.reconn_p50, R.reconn_p99, R.reconn_max);
	if (R.restart_ok && !O.follower && !isnan(R.try_first))
		printf("                        center listening -> all back "
		       "%.2f s; the agents' first attempts %.2f to %.2f s "
		       "after it (%lld before it; the leader's agents)\n",
		       R.back_from_listen_secs, R.try_first, R.try_last,
		       R.try_early);
	printf("TLS resumptions         %lld of %lld handshakes%s%s\n",
	       R.all_handshakes ? R.all_resumed : GET(st_resumed),
	       R.all_handshakes ? R.all_handshakes : GET(st_handshakes),
	       O.no_resume ? " (--no-resume)" : "",
	       R.gens > 0 ? " (all generators, counted after the restart)"
	                  : "");
	printf("errors                  %lld unexpected replies, %lld 503, "
	       "%lld 429, %lld agents given up, %lld disconnects\n",
	       GET(st_other), GET(st_503), GET(st_429), GET(st_dead),
	       GET(st_disconnects));
	printf("\nphase            secs   center CPU s (%%)   of it core s   "
	       "fleet CPU s (%%)   center RSS MiB   slowest admin call s\n");
	for (i = 1; i < g_nmarks; i++) {
		struct mark *a = &g_marks[i - 1], *b = &g_marks[i];
		double d = b->t - a->t;
		double cc = b->c.cpu - a->c.cpu;
		double core = b->c.core_cpu - a->c.core_cpu;

		if (strcmp(b->name, "restart") == 0) {
			cc = b->c.cpu; /* a new process */
			core = b->c.core_cpu;
		}
		printf("%-15s %6.1f   %7.1f (%5.0f%%)    %8.1f       %7.1f "
		       "(%5.0f%%)   %8.0f   %8.2f\n",
		       b->name, d, cc, 100 * cc / d, core,
		       b->self_cpu - a->self_cpu,
		       100 * (b->self_cpu - a->self_cpu) / d,
		       (double)b->c.rss_kb / 1024, b->admin_max);
	}
	if (g_nmarks > 1) {
		struct mark *a = &g_marks[0], *b = &g_marks[g_nmarks - 1];

		R.cpu1_secs = b->t - a->t;
	}
	if (!O.follower)
		report_targets();
	fflush(stdout);
	if (O.json_out == NULL || (f = fopen(O.json_out, "w")) == NULL)
		return;
	fprintf(f, "{\"agents\": %d, \"threads\": %d", O.agents, O.threads);
	jnum(f, "connected_min", R.hold_conn_min);
	jnum(f, "polls_gauge_min", R.polls_gauge_min);
	jnum(f, "connect_secs", R.connect_secs);
	jnum(f, "handshakes_per_s", R.handshakes_per_s);
	jnum(f, "heartbeats_per_s", R.hb_per_s);
	jnum(f, "heartbeat_cpu_us", R.hb_cpu_us);
	jnum(f, "events_per_s", R.ev_per_s);
	jnum(f, "events_sent", (double)R.ev_sent);
	jnum(f, "events_acked", (double)R.ev_acked);
	jnum(f, "events_in_store", (double)R.db_events);
	jnum(f, "dispatch_p50", R.lat_ret_p50);
	jnum(f, "dispatch_p99", R.lat_ret_p99);
	jnum(f, "dispatch_sent_p50", R.lat_sent_p50);
	jnum(f, "dispatch_sent_p99", R.lat_sent_p99);
	jnum(f, "center_hwm_mib", (double)R.hwm1_kb / 1024);
	jnum(f, "restart_back_secs", R.restart_ok ? R.back_secs : (double)NAN);
	jnum(f, "restart_back_from_listen_secs",
	     R.restart_ok ? R.back_from_listen_secs : (double)NAN);
	jnum(f, "restart_tries_first",
	     R.restart_ok ? R.try_first : (double)NAN);
	jnum(f, "restart_tries_last", R.restart_ok ? R.try_last : (double)NAN);
	jnum(f, "generators", (double)R.gens);
	jnum(f, "total_agents", (double)O.total_agents);
	jnum(f, "connect_slowest_secs", R.gen_connect_secs_max);
	jnum(f, "dispatch_receipts", (double)R.lat_n);
	jnum(f, "restart_from_listen_secs",
	     R.restart_ok ? R.back_from_listen_secs : (double)NAN);
	jnum(f, "hold_rss_mib", (double)R.rss_hold_kb / 1024);
	jnum(f, "tls_resumed", (double)GET(st_resumed));
	jnum(f, "tls_handshakes", (double)GET(st_handshakes));
	jnum(f, "errors", (double)GET(st_other));
	fprintf(f, "}\n");
	fclose(f);
}

/* --- main ------------------------------------------------------------------
 */

static void
on_alarm(int sig)
{
	static const char msg[] = "fleet: --max-time reached; giving up\n";

	(void)sig;
	(void)!write(2, msg, sizeof(msg) - 1);
	_exit(3);
}

static const char usage[] =
    "usage: fleet enroll|run [options]\n"
    "  --gw-port P --admin-port P   the center's ports (127.0.0.1)\n"
    "  --ca FILE                    deployment CA (pki_dir/ca.crt)\n"
    "  --fqdn NAME                  the center's name (default "
    "center.vigil.test)\n"
    "  --ids DIR                    identities (written by enroll)\n"
    "  --agents N                   simulated agents (default 200)\n"
    "  --threads T                  worker threads (default 2)\n"
    "  --src-addrs K                source addresses 127.0.0.1..K "
    "(default: one per\n"
    "                               4,000 agents of the fleet, at least "
    "4)\n"
    "enroll: --token T --parallel P (default 64)\n"
    "run:    --admin-key FILE --center-pid PID --ports-file FILE\n"
    "        --gw-port2 P --admin-port2 P (a second vigild node on the "
    "same\n"
    "        PostgreSQL: odd agents connect to it, gauges summed)\n"
    "        --restart-cmd CMD (starts the center again, waits until it "
    "listens)\n"
    "        --db FILE (vigil.db, read-only check) --json FILE\n"
    "        --events-per-agent M (100) --batch B (100) --tasks R (3; 0 = "
    "no\n"
    "        dispatch phase)\n"
    "        --wait W (25) --hold S (30) --hb-secs S (10)\n"
    "        --first K (skip the first K identities: several load "
    "generators)\n"
    "        --connect-only (connect and hold phases only)\n"
    "        --barrier DIR --barrier-n G (several generators: hold "
    "together)\n"
    "        --connect-parallel P (256; 0 = no limit): the most agents "
    "being\n"
    "        admitted at once; the window adapts below it "
    "(--connect-target)\n"
    "        --connect-rate R (new connections per second; 0 = no limit)\n"
    "        --connect-target S (5; the window shrinks when an agent's "
    "admission\n"
    "        (connect() to its first heartbeat answered) takes longer "
    "or fails,\n"
    "        grows otherwise; 0 = fixed window)\n"
    "        --no-pace-reconnects (reconnects skip rate and window)\n"
    "        --follower --total-agents N (several generators: the "
    "leader\n"
    "        posts tasks and restarts the center; all of them measure)\n"
    "        --no-restart\n"
    "        --no-resume (every connection a full TLS handshake; "
    "agents resume)\n"
    "        --connect-timeout S --round-timeout S --events-timeout S\n"
    "        --restart-timeout S --max-time S (1200) --backoff-min S (1)\n"
    "        --backoff-max S (30)\n"
    "        --stop-timeout S (120: for the center to exit at the restart; "
    "it\n"
    "        answers every held poll first)\n";

static void
parse_args(int argc, char **argv)
{
	enum {
		o_gw = 256,
		o_adm,
		o_ca,
		o_fqdn,
		o_ids,
		o_agents,
		o_threads,
		o_src,
		o_token,
		o_par,
		o_key,
		o_pid,
		o_ports,
		o_restart,
		o_db,
		o_json,
		o_epa,
		o_batch,
		o_tasks,
		o_wait,
		o_hold,
		o_first,
		o_conly,
		o_barrier,
		o_barrier_n,
		o_hb,
		o_cpar,
		o_norestart,
		o_noresume,
		o_ct,
		o_rt,
		o_et,
		o_rst,
		o_max,
		o_bmin,
		o_bmax,
		o_gw2,
		o_adm2,
		o_crate,
		o_hst,
		o_nopace,
		o_follower,
		o_total,
		o_stopt,
	};
	static const struct option lo[] = {
	    {"gw-port", 1, NULL, o_gw},
	    {"gw-port2", 1, NULL, o_gw2},
	    {"admin-port2", 1, NULL, o_adm2},
	    {"admin-port", 1, NULL, o_adm},
	    {"ca", 1, NULL, o_ca},
	    {"fqdn", 1, NULL, o_fqdn},
	    {"ids", 1, NULL, o_ids},
	    {"agents", 1, NULL, o_agents},
	    {"threads", 1, NULL, o_threads},
	    {"src-addrs", 1, NULL, o_src},
	    {"token", 1, NULL, o_token},
	    {"parallel", 1, NULL, o_par},
	    {"admin-key", 1, NULL, o_key},
	    {"center-pid", 1, NULL, o_pid},
	    {"ports-file", 1, NULL, o_ports},
	    {"restart-cmd", 1, NULL, o_restart},
	    {"db", 1, NULL, o_db},
	    {"json", 1, NULL, o_json},
	    {"events-per-agent", 1, NULL, o_epa},
	    {"batch", 1, NULL, o_batch},
	    {"tasks", 1, NULL, o_tasks},
	    {"wait", 1, NULL, o_wait},
	    {"hold", 1, NULL, o_hold},
	    {"first", 1, NULL, o_first},
	    {"connect-only", 0, NULL, o_conly},
	    {"barrier", 1, NULL, o_barrier},
	    {"barrier-n", 1, NULL, o_barrier_n},
	    {"hb-secs", 1, NULL, o_hb},
	    {"connect-parallel", 1, NULL, o_cpar},
	    {"no-restart", 0, NULL, o_norestart},
	    {"no-resume", 0, NULL, o_noresume},
	    {"connect-timeout", 1, NULL, o_ct},
	    {"round-timeout", 1, NULL, o_rt},
	    {"events-timeout", 1, NULL, o_et},
	    {"restart-timeout", 1, NULL, o_rst},
	    {"max-time", 1, NULL, o_max},
	    {"backoff-min", 1, NULL, o_bmin},
	    {"backoff-max", 1, NULL, o_bmax},
	    {"connect-rate", 1, NULL, o_crate},
	    {"connect-target", 1, NULL, o_hst},
	    {"no-pace-reconnects", 0, NULL, o_nopace},
	    {"follower", 0, NULL, o_follower},
	    {"total-agents", 1, NULL, o_total},
	    {"stop-timeout", 1, NULL, o_stopt},
	    {"help", 0, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int c;

	if (argc < 2 ||
	    (strcmp(argv[1], "enroll") != 0 && strcmp(argv[1], "run") != 0)) {
		fputs(usage, stderr);
		exit(2);
	}
	O.enroll = strcmp(argv[1], "enroll") == 0;
	optind = 2;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case o_gw:
			O.gw_port = atoi(optarg);
			break;
		case o_adm:
			O.adm_port = atoi(optarg);
			break;
		case o_gw2:
			O.gw_port2 = atoi(optarg);
			break;
		case o_adm2:
			O.adm_port2 = atoi(optarg);
			break;
		case o_ca:
			O.ca = optarg;
			break;
		case o_fqdn:
			O.fqdn = optarg;
			break;
		case o_ids:
			O.ids = optarg;
			break;
		case o_agents:
			O.agents = atoi(optarg);
			break;
		case o_threads:
			O.threads = atoi(optarg);
			break;
		case o_src:
			O.src_addrs = atoi(optarg);
			break;
		case o_token:
			O.token = optarg;
			break;
		case o_par:
			O.enroll_par = atoi(optarg);
			break;
		case o_key:
			O.admin_key_file = optarg;
			break;
		case o_pid:
			O.center_pid = atoi(optarg);
			break;
		case o_ports:
			O.ports_file = optarg;
			break;
		case o_restart:
			O.restart_cmd = optarg;
			break;
		case o_db:
			O.db = optarg;
			break;
		case o_json:
			O.json_out = optarg;
			break;
		case o_epa:
			O.events_per_agent = atoi(optarg);
			break;
		case o_batch:
			O.batch = atoi(optarg);
			break;
		case o_tasks:
			O.rounds = atoi(optarg);
			break;
		case o_wait:
			O.wait = atoi(optarg);
			break;
		case o_hold:
			O.hold = atoi(optarg);
			break;
		case o_first:
			O.first = atoi(optarg);
			break;
		case o_conly:
			O.connect_only = 1;
			break;
		case o_barrier:
			O.barrier = optarg;
			break;
		case o_barrier_n:
			O.barrier_n = atoi(optarg);
			break;
		case o_hb:
			O.hb_secs = atoi(optarg);
			break;
		case o_cpar:
			O.connect_par = atoi(optarg);
			break;
		case o_norestart:
			O.skip_restart = 1;
			break;
		case o_noresume:
			O.no_resume = 1;
			break;
		case o_ct:
			O.connect_timeout = atoi(optarg);
			break;
		case o_rt:
			O.round_timeout = atoi(optarg);
			break;
		case o_et:
			O.events_timeout = atoi(optarg);
			break;
		case o_rst:
			O.restart_timeout = atoi(optarg);
			break;
		case o_max:
			O.max_time = atoi(optarg);
			break;
		case o_bmin:
			O.backoff_min = atoi(optarg);
			break;
		case o_bmax:
			O.backoff_max = atoi(optarg);
			break;
		case o_crate:
			O.connect_rate = atof(optarg);
			break;
		case o_hst:
			O.hs_target = atof(optarg);
			break;
		case o_nopace:
			O.no_pace_reconnects = 1;
			break;
		case o_follower:
			O.follower = 1;
			break;
		case o_total:
			O.total_agents = atoi(optarg);
			break;
		case o_stopt:
			O.stop_timeout = atoi(optarg);
			break;
		case 'h':
			fputs(usage, stdout);
			exit(0);
		default:
			fputs(usage, stderr);
			exit(2);
		}
	}
	/* Source addresses: with few of them, connect() searches a nearly
	 * full ephemeral port range for every connection (the kernel's
	 * __inet_check_established took 63 % of a generator's CPU at
	 * 100,000 agents over 4 addresses, 25,000 ports each of 28,232):
	 * the generator's limit, not the center's. Real agents come from
	 * addresses of their own. */
	if (O.src_addrs == 0) {
		int fleet =
		    O.total_agents > O.agents ? O.total_agents : O.agents;

		O.src_addrs = (fleet + 3999) / 4000;
		if (O.src_addrs < 4)
			O.src_addrs = 4;
		if (O.src_addrs > 250)
			O.src_addrs = 250;
	}
	if (O.gw_port <= 0 || O.ca == NULL || O.ids == NULL || O.agents < 1 ||
	    O.threads < 1 || O.src_addrs < 1 || O.src_addrs > 250)
		die("--gw-port, --ca, --ids and a positive --agents are "
		    "needed");
	if (O.enroll && O.token == NULL)
		die("enroll: --token is needed");
	if (!O.enroll &&
	    (O.adm_port <= 0 || O.admin_key_file == NULL || O.center_pid <= 0 ||
	     O.rounds < 0 || O.rounds > MAX_ROUNDS || O.batch < 1 ||
	     O.batch > 1000 || O.events_per_agent < 1 ||
	     (!O.skip_restart && !O.follower &&
	      (O.restart_cmd == NULL || !O.ports_file))))
		die("run: --admin-port, --admin-key, --center-pid, --tasks "
		    "0..%d, --batch 1..1000, --events-per-agent >= 1, and "
		    "--restart-cmd with --ports-file (or --no-restart) are "
		    "needed",
		    MAX_ROUNDS);
	if (O.threads > O.agents)
		O.threads = O.agents;
	if (O.follower && O.barrier == NULL)
		die("--follower needs --barrier DIR");
	if (O.connect_rate < 0 || O.hs_target < 0)
		die("--connect-rate and --connect-target: 0 or more");
}

/* Raises RLIMIT_NOFILE as far as allowed; N agents need N + a few. */
static void
raise_nofile(void)
{
	struct rlimit rl;
	/* Enrolling holds at most --parallel connections at once. */
	rlim_t need = (rlim_t)(O.enroll ? O.enroll_par : O.agents) + 64;

	getrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_max < need) {
		struct rlimit want = {need, need};

		if (setrlimit(RLIMIT_NOFILE, &want) == 0)
			rl = want;
	}
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	getrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < need)
		die("%d agents need %llu file descriptors, RLIMIT_NOFILE "
		    "allows %llu and cannot be raised here (no "
		    "CAP_SYS_RESOURCE?); use --agents %llu or fewer",
		    O.agents, (unsigned long long)need,
		    (unsigned long long)rl.rlim_cur,
		    (unsigned long long)(rl.rlim_cur - 64));
}

static void
run_enroll(void)
{
	double t0 = now_s(), t1;
	int i, n;

	for (i = 0; i < O.agents; i++) {
		unsigned char r[16];
		int k;

		g_agents[i].idx = i;
		RAND_bytes(r, sizeof(r));
		for (k = 0; k < 16; k++)
			snprintf(g_agents[i].mid + 2 * k, 3, "%02x", r[k]);
	}
	say("enroll: %d agents, %d in parallel", O.agents, O.enroll_par);
	workers_start();
	workers_join();
	t1 = now_s();
	n = ids_save();
	printf("enrolled %lld agents in %.1f s: %.0f enrollments/s (%lld "
	       "failed, %lld retried); identities in %s\n",
	       GET(st_enrolled), t1 - t0, (double)GET(st_enrolled) / (t1 - t0),
	       GET(st_enroll_fail), GET(st_enroll_retry), O.ids);
	if (n != O.agents)
		exit(1);
}

/* A line of a generator's "held" file: its connect and hold figures. */
static void
held_line(const char *line, void *arg)
{
	long long h, f, c;
	double p99, secs;

	(void)arg;
	if (sscanf(line, "g %lld %lld %lld %lf %lf", &h, &f, &c, &p99, &secs) !=
	    5)
		return;
	R.gen_handshakes += h;
	R.gen_fails += f;
	R.gen_conn_min_sum += c;
	R.gen_hs_p99_max = fmax(R.gen_hs_p99_max, p99);
	R.gen_connect_secs_max = fmax(R.gen_connect_secs_max, secs);
	R.gens++;
}

static void
run_run(void)
{
	char buf[256];
	FILE *f;
	size_t n;

	if ((f = fopen(O.admin_key_file, "r")) == NULL)
		die("%s: %s", O.admin_key_file, strerror(errno));
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	snprintf(g_admin_key, sizeof(g_admin_key), "%s", buf);
	g_admin_ctx = client_ctx();
	g_pid = O.center_pid;
	ids_load();
	say("run: %d agents loaded from %s", O.agents, O.ids);
	mark("start");
	workers_start();
	phase_connect();
	if (O.barrier != NULL)
		barrier("ready", NULL, now_s() + O.connect_timeout);
	phase_hold();
	if (O.barrier != NULL) {
		char line[256];

		snprintf(line, sizeof(line), "g %lld %lld %lld %.4f %.2f\n",
		         GET(st_handshakes), GET(st_conn_fail),
		         (long long)R.hold_conn_min, R.hs_p99, R.connect_secs);
		barrier("held", line, now_s() + O.round_timeout);
		barrier_lines("held", held_line, NULL);
		say("all %d load generators: %lld handshakes, %lld failed "
		    "attempts, handshake p99 up to %.3f s, connected (sum of "
		    "each one's minimum over the hold) %lld",
		    R.gens, R.gen_handshakes, R.gen_fails, R.gen_hs_p99_max,
		    R.gen_conn_min_sum);
	}
	if (O.connect_only) {
		/* One of several load generators (run.sh --generators):
		 * the other phases act on every agent of the center. */
		atomic_store(&g_mode, M_STOP);
		workers_wake();
		workers_join();
		say("connect-only: %d agents (identities %d..%d) done",
		    O.agents, O.first, O.first + O.agents - 1);
		return;
	}
	if (O.rounds > 0)
		phase_dispatch();
	else if (O.barrier == NULL) /* as after the last task round */
		atomic_store(&g_mode, M_HEARTBEAT);
	if (O.barrier == NULL) {
		phase_heartbeat();
		phase_events();
	} else
		say("heartbeat and events phases: not split across load "
		    "generators (skipped)");
	if (!O.skip_restart)
		phase_restart();
	else {
		struct proc_sample ps;

		proc_read(g_pid, &ps);
		R.hwm1_kb = ps.hwm_kb;
	}
	atomic_store(&g_mode, M_STOP);
	workers_wake();
	workers_join();
	if (O.follower)
		say("follower: %d agents (identities %d..%d) done; %lld "
		    "handshakes (%lld resumed), %lld failed attempts",
		    O.agents, O.first, O.first + O.agents - 1,
		    GET(st_handshakes), GET(st_resumed), GET(st_conn_fail));
	else
		report();
}

int
main(int argc, char **argv)
{
	g_t0 = now_s();
	parse_args(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGALRM, on_alarm);
	alarm((unsigned)O.max_time);
	raise_nofile();
	if (evthread_use_pthreads() != 0)
		die("evthread_use_pthreads failed");
	memset(&g_gw, 0, sizeof(g_gw));
	g_gw.sin_family = AF_INET;
	g_gw.sin_port = htons((uint16_t)O.gw_port);
	if (inet_pton(AF_INET, O.host, &g_gw.sin_addr) != 1)
		die("bad host");
	g_gw2 = g_gw;
	g_gw2.sin_port = htons((uint16_t)O.gw_port2);
	if ((g_agents = calloc((size_t)O.agents, sizeof(*g_agents))) == NULL)
		die("out of memory");
	if (O.enroll)
		run_enroll();
	else
		run_run();
	return 0;
}
