/*
 * inteld.h: state shared by the parts of vigil-inteld, the local
 * threat-intelligence reputation service (docs/inteld.md). [server]
 * threads event-loop threads (struct ithread) each own an HTTPS (and
 * optional plain HTTP) server on the same port (SO_REUSEPORT: the kernel
 * spreads the connections) and answer lookups from the store's readers,
 * each with its own LMDB read transaction; the first of them is the main
 * thread, which also takes the signals. One writer thread (writer.c)
 * makes every change to the store: feed imports, feed and list edits. A
 * request that changes something is deferred, handed to the writer as a
 * job, and answered by the thread that took it when the job comes back
 * (over a pipe to the main thread, then to its own thread), so lookups go
 * on while an import of millions of indicators runs.
 */
#ifndef VIGIL_INTELD_H
#define VIGIL_INTELD_H

#include <pthread.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <jansson.h>
#include <openssl/ssl.h>

#include "buf.h"
#include "config.h"
#include "http.h"
#include "intelfeed.h"
#include "istore.h"
#include "log.h"

/* Route roles (struct http_route.role; 0 is the strictest). A principal
 * with role R may use routes whose role is R or higher. */
enum {
	ROLE_ADMIN = 0,
	ROLE_LOOKUP = 1,
	ROLE_PUBLIC = 2,
};

struct inteld_conf {
	/* [inteld] */
	char *data_dir;
	long long map_size;
	long long max_import;
	long long max_batch;
	long long timeout;
	long long handshake_timeout;
	long long request_timeout;
	long long max_conns;
	long long max_per_addr;
	long long default_priority;
	long long threads; /* [server] threads; 0 = one per CPU */
	int log_dest, log_level;
	/* [https] */
	int https_enable;
	char *https_listen;
	long long https_port;
	char *cert, *key, *client_ca;
	int cert_role; /* 0 lookup, 1 admin */
	/* [http] */
	int http_enable;
	char *http_listen;
	long long http_port;
	/* [auth] */
	char *keys;
	char *keys_file;
};

extern const struct cfg_key inteld_conf_keys[];
int inteld_conf_load(const char *path, struct inteld_conf *c, struct buf *err);
void inteld_conf_free(struct inteld_conf *c);

/* An API key: its SHA-256 and the role it grants. */
struct inteld_key {
	char name[65];
	int role;
	unsigned char hash[32];
};

/* auth.c: keys from [auth] keys and keys_file ("name:role:sha256hex",
 * blank- or line-separated, '#' comments). */
int inteld_keys_load(const struct inteld_conf *c, struct inteld_key **keys,
                     size_t *n, struct buf *err);
int inteld_authorize(struct http_req *r);
/* What client certificate x may do: ROLE_ADMIN, ROLE_LOOKUP, or -1 with
 * the reason in *why. cert_role is [https] cert_role (1 admin), used only
 * for certificates without a role extension. */
int inteld_cert_role(X509 *x, int cert_role, const char **why);

enum wjob_kind {
	WJ_IMPORT,
	WJ_FEED_ADD,
	WJ_FEED_DEL,
	WJ_LIST_ADD,
	WJ_LIST_DEL,
};

struct wjob {
	struct wjob *next;
	enum wjob_kind kind;
	struct http_req *req; /* deferred; answered with status + reply */
	char feed[80];        /* feed name, or the list's source */
	enum intel_format fmt;
	struct intel_feedopts opts;
	int strict;
	int delta; /* WJ_IMPORT: keep what the file does not name (STIX
	              revoked objects remove); MISP: events by timestamp */
	long long default_priority; /* WJ_FEED_ADD of a new feed */
	struct evbuffer *body;      /* WJ_IMPORT: the feed file (taken over) */
	json_t *arg;                /* WJ_FEED_ADD: the record; WJ_LIST_*: the
	                               entries */
	int status;
	json_t *reply;
	double t_start;
	struct ithread *owner; /* the thread whose connection waits */
};

struct writer;
struct writer *writer_start(struct istore *st, struct event_base *base,
                            void (*done)(struct wjob *j, void *arg), void *arg);
void writer_push(struct writer *w, struct wjob *j);
/* Finishes the job under way and the queue, then stops; jobs done from
 * now on go to late (the loop no longer runs to answer them). */
void writer_stop_with(struct writer *w,
                      void (*late)(struct wjob *j, void *arg));
int writer_busy(struct writer *w);
/* Asks the job under way (an import) to give up: its write transaction
 * is aborted, the store keeps what it had; the job answers 503. */
void writer_cancel(struct writer *w);
void wjob_free(struct wjob *j);

#define INTELD_MAX_THREADS 64

/* One event-loop thread: its base, its servers, and what the main
 * thread hands it (ev_ctl, under mu). */
struct ithread {
	struct inteld *d;
	int idx;
	pthread_t th;
	int started;
	struct event_base *base;
	struct http_server *https, *http;
	struct event *ev_ctl, *ev_stop;
	pthread_mutex_t mu;
	SSL_CTX *new_ctx;  /* reload: the TLS context for new connections */
	int ctl_stop;      /* stop listening and wind down */
	struct wjob *done; /* jobs back from the writer, to answer here */
};

struct inteld {
	const char *conf_path;
	struct inteld_conf conf;
	char ports_path[4096];
	struct event_base *base; /* the main thread's: th[0].base */
	struct istore *store;
	struct writer *writer;
	int nthreads;
	struct ithread *th;
	SSL_CTX *ssl_ctx;
	int https_port, http_port;
	/* keys, nkeys and conf.cert_role change on SIGHUP: read under lock */
	pthread_rwlock_t lock;
	struct inteld_key *keys;
	size_t nkeys;
	long long started, stopping;
	struct event *ev_term, *ev_int, *ev_hup;
	int inflight; /* jobs with the writer (atomic) */
};

/* The thread and the daemon of a request. */
#define REQ_T(r) ((struct ithread *)(r)->arg)
#define REQ_D(r) (REQ_T(r)->d)

/* api.c */
extern const struct http_route inteld_routes[];
void inteld_job_done(struct wjob *j, void *arg);
void inteld_job_answer(struct wjob *j);
void inteld_declare_metrics(void);
void inteld_http_done(const char *route, int status, void *arg);

/* export.c: GET /api/v1/feeds/NAME/export?format=csv|stix, streamed. */
void inteld_export(struct http_req *r, const char *feed);

#endif
