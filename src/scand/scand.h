/*
 * scand.h: state shared by the parts of vigil-scand, the file-scan service
 * that speaks THOR Thunderstorm's API. One event loop thread owns the HTTP
 * servers and the store (SQLite: the async queue, results, the result
 * cache, history); a pool of worker threads (engine.c) parses uploads,
 * writes samples to disk and scans them with the shared engine (src/scan).
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
#include "config.h"
#include "http.h"
#include "log.h"
#include "scan.h"
#include "store.h"

struct scand_conf {
	/* [scand] */
	char *data_dir;
	char *rules; /* whitespace-separated rule files */
	long long threads, sync_threads;
	long long max_upload;
	int keep_samples;
	int hold_async;
	long long cache_size;
	long long max_results;
	char *api_key_file;
	long long max_conns;
	long long timeout;
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
	struct http_req *req;  /* deferred; CHECK and RECEIVE */
	struct evbuffer *body; /* the upload; CHECK and RECEIVE */
	char *ctype;
	char *source;
	long long id; /* SCAN */
	char *path;   /* the sample file */
	uint8_t *mem; /* or the sample itself (sync checks, see engine.c;
	                 the worker's buffer, valid while it runs the job) */
	size_t mem_len;
	char *name; /* its original path (the part's filename) */
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
 * Sync checks of samples up to this size that are not kept are scanned
 * from memory: evhttp (libevent 2.1) has read the whole body into memory
 * before the handler runs, so a round trip through the disk would only
 * add a write, a read and an unlink per sample.
 */
#define SCAND_MEM_SAMPLE (64u * 1024 * 1024)

/* Uploads are read from the socket in pieces of this size. */
#define SCAND_READ_SIZE (256u * 1024)

struct pool;

/* engine.c */
struct pool *pool_new(int threads, int sync_threads, struct event_base *base,
                      void (*on_done)(evutil_socket_t, short, void *),
                      void *arg);
/* Takes a reference to b for new scans; running scans finish with theirs. */
void pool_set_bundle(struct pool *p, struct scan_bundle *b);
void pool_set_limits(struct pool *p, long long max_upload, int keep_samples,
                     const char *samples_dir);
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
double mono_now(void);

struct scand {
	const char *conf_path;
	char **argv;
	int argc;
	struct scand_conf conf;
	char db_path[4096], ports_path[4096], samples_dir[4096];
	struct event_base *base;
	struct store *store;
	struct pool *pool;
	struct scan_bundle *bundle;
	struct http_server *http, *https;
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
	long long hist_minute, hist_n[2]; /* samples, queued; not yet written */
};

/* api.c */
extern const struct http_route scand_routes[];
void scand_done_cb(evutil_socket_t fd, short what, void *arg);
int scand_db_open(struct scand *s, struct buf *err);
void scand_dispatch(struct scand *s);
void scand_history_flush(struct scand *s);
void scand_answer_leftovers(struct scand *s, struct job *list);

#endif
