/*
 * scand.h: state shared by the parts of vigil-scand, the file-scan service
 * that speaks THOR Thunderstorm's API. One event loop thread owns the HTTP
 * servers (hstream: uploads stream to disk as they arrive, upload.c) and
 * the store (SQLite: the async queue, results, the result cache, history);
 * a pool of worker threads (engine.c) has the samples scanned with the
 * shared engine (src/scan), each thread by its own sandboxed scan worker
 * process (sandbox.c).
 * Work goes to the pool as jobs and comes back to the loop over a pipe.
 */
#ifndef VIGIL_SCAND_H
#define VIGIL_SCAND_H

#include <pthread.h>
#include <stdatomic.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <jansson.h>
#include <openssl/ssl.h>

#include "buf.h"
#include "clock.h"
#include "config.h"
#include "hstream.h"
#include "intelc.h"
#include "log.h"
#include "proc.h"
#include "scan.h"
#include "store.h"

struct scand_conf {
	/* [scand] */
	char *data_dir;
	char *rules; /* whitespace-separated rule files */
	long long threads, sync_threads;
	char *user;              /* scan workers' user when run as root */
	long long scan_timeout;  /* wall clock seconds per sample */
	long long worker_memory; /* address space a worker may add */
	long long max_upload;
	int keep_samples;
	int hold_async;
	long long cache_size;
	long long max_results;
	char *api_key_file;
	long long max_conns;
	long long max_per_addr;
	long long timeout;
	long long handshake_timeout;
	long long request_timeout;
	long long body_timeout;
	int log_dest, log_level;
	/* [http] */
	int http_enable;
	char *http_listen;
	long long http_port;
	/* [https] */
	int https_enable;
	char *https_listen;
	long long https_port;
	char *cert, *key, *client_ca;
	int require_client_cert;
	/* [syslog] */
	int syslog_enable;
	int syslog_transport; /* 0 udp, 1 tcp */
	char *syslog_host;
	long long syslog_port;
	int syslog_format; /* enum syslogfmt_format */
	long long syslog_facility;
	long long syslog_queue;
	int syslog_framing; /* enum syslogfmt_framing */
	/* [intel] (vigil-inteld; off while url is NULL) */
	struct intelc_conf intel;
};

extern const struct cfg_key scand_conf_keys[];
int scand_conf_load(const char *path, struct scand_conf *c, struct buf *err);
void scand_conf_free(struct scand_conf *c);

enum job_kind {
	JOB_CHECK,   /* sync upload: receive, scan, answer */
	JOB_RECEIVE, /* async upload: receive to disk, then queued */
	JOB_SCAN,    /* a queued sample */
};

struct job {
	enum job_kind kind;
	struct job *next;
	struct hs_req *req; /* CHECK and RECEIVE: answered when done */
	char *source;
	long long id; /* SCAN */
	char *path;   /* the sample file */
	uint8_t *mem; /* or the sample itself (small sync checks) */
	size_t mem_len;
	uint8_t *mem_owned; /* the buffer behind mem, freed with the job */
	char *name;         /* its original path (the part's filename) */
	/* results */
	int status; /* 0, or the HTTP status of the error */
	char errmsg[200];
	char sha256[65];
	long long size;
	json_t *findings; /* Thunderstorm's array */
	char cache_key[140];
	char *cache_put; /* neutral result to persist in the cache */
	int cache_hit;
	int worker;                      /* index of the thread that ran it */
	double t_queued, t_start, t_end; /* monotonic seconds */
};

/*
 * Sync checks whose Content-Length is at most this, and that are not kept,
 * are received into memory and scanned from there: a round trip through
 * the disk would add a write, a read and an unlink per sample. Larger
 * ones, chunked ones and async ones stream to a file; so at most
 * max_connections times this is held in memory by uploads.
 */
#define SCAND_MEM_SAMPLE (8u * 1024 * 1024)

/* Seconds a client is told to wait (Retry-After) when a stop refuses its
 * upload with 503. */
#define SCAND_RETRY_AFTER "10"

struct pool;
struct fwd;
struct sintel;
struct upload;

/*
 * upload.c: one upload, fed in pieces of any size. upload_new never fails
 * without setting j->status (it returns NULL only when out of memory);
 * mem (memcap bytes) takes the sample instead of a file under dir. Every
 * call after a failure returns -1; j->status and j->errmsg say why (400
 * malformed, 413 over max_upload as soon as it is passed, 500). After
 * upload_finish returns 0, j->path (or j->mem/mem_len), j->name, j->size
 * and j->sha256 (when digest) are set. upload_free removes the file of an
 * upload that did not finish.
 */
struct upload *upload_new(struct job *j, const char *ctype, const char *dir,
                          long long max_upload, int digest, uint8_t *mem,
                          size_t memcap);
int upload_feed(struct upload *u, const uint8_t *p, size_t n);
int upload_finish(struct upload *u);
void upload_free(struct upload *u);

/* fwd.c: findings to syslog (best effort, on the event loop) */
/* prev (may be NULL): the forwarder this one replaces on a reload, whose
 * counters it continues. */
struct fwd *fwd_new(struct event_base *base, const struct scand_conf *c,
                    const struct fwd *prev, struct buf *err);
void fwd_free(struct fwd *f);
/* One message per finding of a sample (Thunderstorm's array). */
void fwd_findings(struct fwd *f, json_t *findings, const char *source,
                  long long scan_id);
void fwd_counters(const struct fwd *f, long long *sent, long long *queued,
                  long long *dropped);

/*
 * thor.c: findings in THOR's JSON log format v3 from the engine's neutral
 * result (scan_result_to_json): [] when nothing matched, else one "THOR
 * finding" for path name, hostname source, scan id id. NULL when out of
 * memory. The helpers render as THOR does: matched bytes (its MatchData),
 * other bytes (one code point per byte), a reference meta as a list
 * (NULL when empty), a neutral "field" as a JSON pointer (NULL unknown).
 */
json_t *thor_render(json_t *neutral, const char *name, const char *source,
                    long long id);
json_t *thor_match_json(const uint8_t *p, size_t n);
json_t *thor_bytes_json(const uint8_t *p, size_t n);
json_t *thor_reference_json(const char *ref);
const char *thor_field_pointer(const char *field);

/*
 * sandbox.c: scan worker processes. struct sandbox is fixed at start from
 * the config; each scanning thread owns one struct sbproc.
 */
struct sandbox {
	int drop; /* scand runs as root: workers switch to uid/gid */
	uid_t uid;
	gid_t gid;
	char user[64];     /* for the log */
	long long timeout; /* [scand] scan_timeout, seconds */
	long long memory;  /* [scand] worker_memory, bytes */
	char exe[256];     /* the program to run; "" = /proc/self/exe */
};

struct sbproc {
	pid_t pid; /* -1: none */
	int fd;    /* the parent's end of the socketpair */
	unsigned long gen;
	double started;   /* monotonic */
	double scan_time; /* seconds spent scanning since it started */
};

/* Resolves [scand] user (NULL: _vigil if it exists, else nobody) when
 * running as root; refuses uid or gid 0. Not root: the workers keep
 * scand's own user. */
int sandbox_user(const char *name, struct sandbox *sb, struct buf *err);
/*
 * The argument that makes vigil-scand a scan worker, its socket on
 * SANDBOX_FD. sandbox_worker_run, first thing in main: returns at once
 * unless argv is exactly {prog, SANDBOX_ARG}; then it is the worker and
 * never returns.
 */
#define SANDBOX_ARG "--scan-worker"
#define SANDBOX_FD  PROC_CHILD_FD
void sandbox_worker_run(int argc, char **argv);
/* The rule sources of b, and its YARA rules compiled, in a sealed memfd
 * for the workers, who build the same bundle from it: the descriptor, or
 * -1 with err set. */
int sandbox_rules_pack(const struct scan_src *src, size_t n,
                       const struct scan_bundle *b, struct buf *err);
/* Starts a worker (replacing w's) for the bundle of version whose sources
 * rules_fd holds (sandbox_rules_pack), with scan options o; waits for it
 * to be locked down: 0, or -1 (logged). */
int sandbox_spawn(struct sbproc *w, int rules_fd, const char *version,
                  const struct scan_opts *o, const struct sandbox *sb);
/*
 * Has w scan the open sample sfd under name: a file, or (mem_len >= 0)
 * a sealed memfd whose first mem_len bytes are scanned as a buffer. 0 with the
 * neutral JSON in json (initialised here, freed by the caller); -1 with
 * j->status and j->errmsg set: the scan failed (500), the worker died on it
 * (500, the worker is gone) or missed the deadline (504, killed).
 */
int sandbox_scan(struct sbproc *w, const struct sandbox *sb, int sfd,
                 long long mem_len, const char *name, struct buf *json,
                 struct job *j);
void sandbox_stop(struct sbproc *w); /* kills and reaps */
/* The worker's seccomp allow-list, sock its only socket (unit tests). */
int sandbox_filter_load(int sock);

/* engine.c */
struct pool *pool_new(int threads, int sync_threads, struct event_base *base,
                      void (*on_done)(evutil_socket_t, short, void *),
                      void *arg);
/* Takes a reference to b, and a copy of rules_fd (its pack, from
 * sandbox_rules_pack), for new scans; running scans finish with theirs.
 * 0, or -1 (logged) when rules_fd cannot be copied. */
int pool_set_bundle(struct pool *p, struct scan_bundle *b, int rules_fd);
void pool_set_limits(struct pool *p, long long max_upload, int keep_samples,
                     const char *samples_dir);
/* Before the first pool_set_bundle: how workers are sandboxed. */
void pool_set_sandbox(struct pool *p, const struct sandbox *sb);
void pool_push(struct pool *p, struct job *j);
/* Finished jobs, oldest first (the caller frees them with job_free). */
struct job *pool_take_done(struct pool *p);
/* Stops the workers after their current job; jobs still queued are
 * returned (oldest first) so the caller can answer them. */
struct job *pool_stop(struct pool *p);
void pool_free(struct pool *p);
int pool_cache_load(struct pool *p, const char *key, const char *text);
void pool_cache_size(struct pool *p, size_t n);
size_t pool_cache_entries(struct pool *p);
void job_free(struct job *j);

struct scand {
	const char *conf_path;
	char **argv;
	int argc;
	struct scand_conf conf;
	char db_path[4096], ports_path[4096], samples_dir[4096];
	struct event_base *base;
	struct store *store;
	struct pool *pool;
	struct fwd *fwd;      /* NULL unless [syslog] enable = yes */
	struct sintel *intel; /* NULL unless [intel] url is set */
	struct scan_bundle *bundle;
	int rules_fd; /* its pack for the scan workers (sandbox_rules_pack) */
	struct sandbox sandbox;
	struct hs_server *http, *https;
	SSL_CTX *ssl_ctx;
	int http_port, https_port;
	char api_key[256];
	size_t api_key_len;
	long long started;
	long long stopping;
	struct event *ev_term, *ev_int, *ev_hup, *ev_stop;
	/* counters */
	long long scanned, cache_hits, cache_misses;
	double scan_ms_total, wait_ms_total;
	int inflight_async; /* SCAN jobs handed to the pool */
	int inflight_req;   /* CHECK / RECEIVE jobs */
	long long cache_puts;
	long long checks;                 /* uploads received since start */
	long long next_id, id_limit;      /* scan ids (scand_next_id) */
	long long hist_minute, hist_n[3]; /* samples, queued, denied; not yet
	                                     written */
};

/* api.c */
extern const struct hs_route scand_routes[];
void scand_done_cb(evutil_socket_t fd, short what, void *arg);
/* Records and answers finished jobs (oldest first) and frees them. */
void scand_finish_jobs(struct scand *s, struct job *list);

/* intel.c: samples' verdicts from vigil-inteld, off the loop. */
int sintel_start(struct scand *s, struct buf *err);
/* Takes the finished jobs that get a verdict; returns the others. */
struct job *sintel_take(struct scand *s, struct job *list);
/* Stops the thread; returns the jobs it held, to be answered. */
struct job *sintel_stop(struct scand *s);
/* SIGHUP: a changed [intel] of nc applied (nc keeps the old settings). */
void sintel_reload(struct scand *s, struct scand_conf *nc);
int scand_db_open(struct scand *s, struct buf *err);
void scand_dispatch(struct scand *s);
/* The next scan id: sync checks and async samples share one sequence that
 * never repeats, across restarts too. */
long long scand_next_id(struct scand *s);
void scand_history_flush(struct scand *s);
/* hs_limits.on_refused: a request the server refused (deniedHistory). */
void scand_refused(void *arg, int status);
void scand_answer_leftovers(struct scand *s, struct job *list);

#endif
