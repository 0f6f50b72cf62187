/*
 * engine.c: vigil-scand's worker pool. Workers take jobs from two queues:
 * synchronous work (checks, and receiving async uploads) and queued async
 * samples. The first sync_threads workers take only synchronous work, so a
 * flood of async samples can never starve a check; the others prefer
 * synchronous work and otherwise scan the queue.
 *
 * A job's sample was received by the event loop as it streamed in
 * (api.c, upload.c): a 0600 file under samples/, or memory for a small
 * sync check (SCAND_MEM_SAMPLE), with its SHA-256 when the cache or
 * keeping needs it. The thread opens it (or copies the memory into a
 * sealed memfd) and hands the descriptor to its own scan worker process
 * (sandbox.c), which scans it with the current rule bundle and answers
 * the engine's neutral JSON; a worker that crashes or misses scan_timeout
 * costs that sample an error and is replaced, with a growing delay when
 * new workers keep dying at once. A new bundle replaces every worker
 * (idle ones at once, busy ones after their sample). The thread's own
 * scan context checks only names (filename IOCs on a cache hit). Results are
 * cached by (SHA-256, rule version); a cached result is used only when the
 * new name matches no filename IOC and the cached one matched none either,
 * since those depend on the name, not the content. Findings are rendered
 * as THOR writes them (thor.c). Finished jobs go to a done list and a byte
 * on a pipe wakes the event loop (api.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "scand.h"

struct cache_ent {
	char *key; /* "sha256:version:2" */
	char *text;
	unsigned long long used;
};

struct pool {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct job *sq, *sq_tail; /* sync */
	struct job *aq, *aq_tail; /* async */
	struct job *done, *done_tail;
	int stopping;
	pthread_t *th;
	int n, nsync, started;
	int pipe[2];
	struct event *ev;
	/* bundle */
	struct scan_bundle *bundle;
	int rules_fd; /* its pack for the worker processes; -1 */
	unsigned long gen;
	/* limits */
	long long max_upload;
	int keep_samples;
	char samples_dir[4096];
	struct sandbox sb;
	/* cache */
	struct cache_ent *cache;
	size_t ncache, maxcache;
	unsigned long long tick;
};

struct worker {
	struct pool *p;
	int idx;
	struct scan_ctx *ctx;
	struct scan_bundle *bundle; /* the one ctx was made from */
	int rules_fd;               /* its pack (the pool's, dup'ed) */
	unsigned long gen;
	int busy; /* ran a job since it last trimmed its context */
	struct sbproc proc;
	int fails;         /* workers in a row that failed to start or died
	                      at once */
	double next_spawn; /* monotonic: not before (backoff) */
};

/* Seconds a worker must have lived for its death on a sample to be the
 * sample's doing rather than a sign that workers cannot run at all. */
#define WORKER_MIN_LIFE    1.0
#define WORKER_MAX_BACKOFF 10.0
/* Start attempts for one sample before it is refused (503). */
#define WORKER_TRIES 3

void
job_free(struct job *j)
{
	if (j == NULL)
		return;
	free(j->mem_owned);
	free(j->source);
	free(j->path);
	free(j->name);
	json_decref(j->findings);
	free(j->cache_put);
	free(j);
}

/* ---- cache (under p->mu) ------------------------------------------------ */

static struct cache_ent *
cache_find(struct pool *p, const char *key)
{
	size_t i;

	for (i = 0; i < p->ncache; i++)
		if (strcmp(p->cache[i].key, key) == 0) {
			p->cache[i].used = ++p->tick;
			return &p->cache[i];
		}
	return NULL;
}

static void
cache_put_locked(struct pool *p, const char *key, const char *text)
{
	struct cache_ent *e;
	size_t i, old = 0;
	char *k, *t;

	if (p->maxcache == 0 || cache_find(p, key) != NULL)
		return;
	if ((k = strdup(key)) == NULL || (t = strdup(text)) == NULL) {
		free(k);
		return;
	}
	if (p->ncache >= p->maxcache) {
		for (i = 1; i < p->ncache; i++)
			if (p->cache[i].used < p->cache[old].used)
				old = i;
		e = &p->cache[old];
		free(e->key);
		free(e->text);
	} else
		e = &p->cache[p->ncache++];
	e->key = k;
	e->text = t;
	e->used = ++p->tick;
}

int
pool_cache_load(struct pool *p, const char *key, const char *text)
{
	pthread_mutex_lock(&p->mu);
	cache_put_locked(p, key, text);
	pthread_mutex_unlock(&p->mu);
	return 0;
}

void
pool_cache_size(struct pool *p, size_t n)
{
	struct cache_ent *c;

	pthread_mutex_lock(&p->mu);
	while (p->ncache > n) {
		p->ncache--;
		free(p->cache[p->ncache].key);
		free(p->cache[p->ncache].text);
	}
	if (n > p->maxcache &&
	    (c = realloc(p->cache, n * sizeof(*c))) != NULL) {
		p->cache = c;
		p->maxcache = n;
	} else if (n < p->maxcache)
		p->maxcache = n;
	pthread_mutex_unlock(&p->mu);
}

size_t
pool_cache_entries(struct pool *p)
{
	size_t n;

	pthread_mutex_lock(&p->mu);
	n = p->ncache;
	pthread_mutex_unlock(&p->mu);
	return n;
}

static int
has_filename_reason(json_t *o)
{
	json_t *r;
	size_t i;
	const char *kind;

	json_array_foreach(json_object_get(o, "reasons"), i, r)
	{
		kind = json_string_value(
		    json_object_get(json_object_get(r, "signature"), "kind"));
		if (kind != NULL && strcmp(kind, "Filename IOC") == 0)
			return 1;
	}
	return 0;
}

/* Puts the keeper's name on a sample, or removes it. */
static void
sample_done(struct pool *p, struct job *j)
{
	char dst[4200];
	int keep;

	if (j->path == NULL)
		return;
	pthread_mutex_lock(&p->mu);
	keep = p->keep_samples;
	snprintf(dst, sizeof(dst), "%s/%s", p->samples_dir, j->sha256);
	pthread_mutex_unlock(&p->mu);
	if (keep && j->sha256[0] != '\0') {
		if (rename(j->path, dst) == -1)
			log_warn("scand: keeping %s as %s", j->path, dst);
	} else if (unlink(j->path) == -1 && errno != ENOENT)
		log_warn("scand: removing %s", j->path);
}

/* The thread's scan context of the current bundle: 0, -2 while there is
 * no bundle yet, -1 when it cannot be made. */
static int
worker_ctx(struct worker *w)
{
	struct pool *p = w->p;
	struct scan_bundle *b;
	struct scan_opts o;
	unsigned long gen;
	long long max_upload;
	int rfd = -1;

	pthread_mutex_lock(&p->mu);
	gen = p->gen;
	max_upload = p->max_upload;
	if (w->ctx != NULL && gen == w->gen) {
		pthread_mutex_unlock(&p->mu);
		return 0;
	}
	b = p->bundle != NULL ? scan_bundle_ref(p->bundle) : NULL;
	if (b != NULL && p->rules_fd != -1 &&
	    (rfd = fcntl(p->rules_fd, F_DUPFD_CLOEXEC, 0)) == -1)
		log_warn("scand: worker %d: dup", w->idx);
	pthread_mutex_unlock(&p->mu);
	scan_ctx_free(w->ctx);
	w->ctx = NULL;
	scan_bundle_free(w->bundle);
	w->bundle = NULL;
	if (w->rules_fd != -1)
		close(w->rules_fd);
	w->rules_fd = -1;
	if (b == NULL)
		return -2;
	if (rfd == -1) {
		scan_bundle_free(b);
		return -1;
	}
	scan_opts_default(&o);
	o.max_size = (uint64_t)max_upload;
	/* Digests only for files with findings (the engine adds all three
	 * then); the cache key, SHA-256, was computed while receiving. */
	o.hashes = 0;
	if (scan_ctx_new(b, &o, &w->ctx) != 0) {
		scan_bundle_free(b);
		close(rfd);
		return -1;
	}
	w->bundle = b; /* the worker process builds it from rules_fd */
	w->rules_fd = rfd;
	w->gen = gen;
	return 0;
}

static void
worker_backoff(struct worker *w)
{
	double d = 0.1 * (double)(1u << (w->fails < 10 ? w->fails : 10));

	w->fails++;
	w->next_spawn =
	    mono_now() + (d < WORKER_MAX_BACKOFF ? d : WORKER_MAX_BACKOFF);
}

/* A worker process of the current context's bundle: 0, or -1 when one
 * could not be started (after waiting out the backoff). */
static int
worker_proc(struct worker *w)
{
	struct timespec ts;
	double left;

	if (w->ctx != NULL && w->proc.pid > 0 && w->proc.gen == w->gen)
		return 0;
	if ((left = w->next_spawn - mono_now()) > 0) {
		ts.tv_sec = (time_t)left;
		ts.tv_nsec = (long)((left - (double)ts.tv_sec) * 1e9);
		while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
			;
	}
	/* No context (out of memory): waits like a failed start, so the
	 * thread never spins. */
	if (w->ctx == NULL ||
	    sandbox_spawn(&w->proc, w->rules_fd, scan_bundle_version(w->bundle),
	                  scan_ctx_opts(w->ctx), &w->p->sb) == -1) {
		worker_backoff(w);
		return -1;
	}
	w->proc.gen = w->gen;
	return 0;
}

/* A sealed memory file holding the sample: the worker reads it and opens
 * nothing. */
static int
mem_fd(const uint8_t *p, size_t len)
{
	size_t off = 0;
	ssize_t n;
	int fd;

	if ((fd = memfd_create("vigil-sample",
	                       MFD_CLOEXEC | MFD_ALLOW_SEALING)) == -1)
		return -1;
	while (off < len) {
		if ((n = write(fd, p + off, len - off)) == -1) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		off += (size_t)n;
	}
	if (fcntl(fd, F_ADD_SEALS,
	          F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) ==
	    -1)
		goto fail;
	return fd;
fail:
	close(fd);
	return -1;
}

/* The sample scanned by the worker process: 0 with *out the neutral
 * result, or -1 with j->status and j->errmsg set. */
static int
scan_in_worker(struct worker *w, struct job *j, int fd, json_t **out)
{
	struct buf json;
	json_error_t jerr;
	json_t *o;
	const char *h;
	int sfd = fd, tries, rc;

	for (tries = 0; worker_proc(w) == -1; tries++)
		if (tries + 1 >= WORKER_TRIES) {
			j->status = 503;
			snprintf(j->errmsg, sizeof(j->errmsg),
			         "no scan worker could be started (see the "
			         "service's log); retry later");
			return -1;
		}
	if (j->mem != NULL && (sfd = mem_fd(j->mem, j->mem_len)) == -1) {
		j->status = 500;
		snprintf(j->errmsg, sizeof(j->errmsg), "sample: %s",
		         strerror(errno));
		return -1;
	}
	rc = sandbox_scan(&w->proc, &w->p->sb, sfd,
	                  j->mem != NULL ? (long long)j->mem_len : -1,
	                  j->name != NULL ? j->name : "", &json, j);
	if (sfd != fd)
		close(sfd);
	if (rc == -1) {
		/* Gone at once: more likely the workers than the sample. */
		if (w->proc.pid == -1 &&
		    mono_now() - w->proc.started < WORKER_MIN_LIFE)
			worker_backoff(w);
		buf_free(&json);
		return -1;
	}
	w->fails = 0;
	o = json_loadb((const char *)json.data, json.len, 0, &jerr);
	buf_free(&json);
	if (!json_is_object(o)) {
		json_decref(o);
		j->status = 500;
		snprintf(j->errmsg, sizeof(j->errmsg),
		         "the scan worker's result is not valid");
		return -1;
	}
	h = json_string_value(json_object_get(
	    json_object_get(json_object_get(o, "subject"), "hashes"),
	    "sha256"));
	if (j->sha256[0] == '\0' && h != NULL && strlen(h) == 64)
		memcpy(j->sha256, h, 65);
	*out = o;
	return 0;
}

static void
scan_job(struct worker *w, struct job *j)
{
	struct pool *p = w->p;
	struct scan_result rp;
	char *hit = NULL;
	struct stat st;
	json_t *o = NULL;
	json_error_t jerr;
	int fd = -1;

	memset(&rp, 0, sizeof(rp));
	if (worker_ctx(w) != 0) {
		j->status = 500;
		snprintf(j->errmsg, sizeof(j->errmsg),
		         "the scan engine is not ready");
		return;
	}
	if (j->mem == NULL &&
	    ((fd = open(j->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1 ||
	     fstat(fd, &st) == -1)) {
		j->status = 500;
		snprintf(j->errmsg, sizeof(j->errmsg), "sample %s: %s", j->path,
		         strerror(errno));
		goto out;
	}
	/* The cache key names the rule set version: only a context of the
	 * current bundle may look up or file results under it. */
	pthread_mutex_lock(&p->mu);
	if (j->sha256[0] != '\0' && p->bundle != NULL && w->gen == p->gen) {
		struct cache_ent *e;

		/* ":2": results of the engine's rendering since rule text
		 * keeps its backslashes; older entries never match. */
		snprintf(j->cache_key, sizeof(j->cache_key), "%s:%s:2",
		         j->sha256, scan_bundle_version(p->bundle));
		if ((e = cache_find(p, j->cache_key)) != NULL)
			hit = strdup(e->text);
	}
	pthread_mutex_unlock(&p->mu);
	if (hit != NULL) {
		o = json_loads(hit, 0, &jerr);
		free(hit);
		if (o != NULL && !has_filename_reason(o) &&
		    scan_path(w->ctx, j->name, NULL, &rp) == 0 &&
		    rp.nfindings == 0) {
			json_t *s = json_object_get(o, "subject");

			json_object_set_new(s, "extension",
			                    json_string(rp.extension));
			j->cache_hit = 1;
		} else {
			json_decref(o);
			o = NULL;
		}
		scan_result_free(&rp);
	}
	if (o == NULL) {
		if (scan_in_worker(w, j, fd, &o) == -1)
			goto out;
		if (j->cache_key[0] != '\0' &&
		    (j->cache_put = json_dumps(o, JSON_COMPACT)) != NULL) {
			pthread_mutex_lock(&p->mu);
			cache_put_locked(p, j->cache_key, j->cache_put);
			pthread_mutex_unlock(&p->mu);
		}
	}
	if ((j->findings = thor_render(o, j->name, j->source ? j->source : "",
	                               j->id)) == NULL) {
		j->status = 500;
		snprintf(j->errmsg, sizeof(j->errmsg), "out of memory");
	}
out:
	if (fd != -1)
		close(fd);
	json_decref(o);
}

static void
run_job(struct worker *w, struct job *j)
{
	j->t_start = mono_now();
	j->worker = w->idx;
	if (j->status == 0 && (j->kind == JOB_CHECK || j->kind == JOB_SCAN))
		scan_job(w, j);
	/* A queued sample goes after its scan, failed or not (a failure is
	 * final and reported); a received one stays queued unless it failed. */
	if (j->kind == JOB_CHECK || j->kind == JOB_SCAN ||
	    (j->kind == JOB_RECEIVE && j->status != 0))
		sample_done(w->p, j);
	j->mem = NULL;
	j->mem_len = 0;
	free(j->mem_owned);
	j->mem_owned = NULL;
	j->t_end = mono_now();
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct pool *p = w->p;
	struct job *j;
	int sync_only = w->idx < p->nsync, wake;

	w->proc.pid = -1;
	w->proc.fd = -1;
	for (;;) {
		/* A worker process ready before a sample needs one, and one
		 * of the new rules after a reload. */
		if (worker_ctx(w) != -2)
			(void)worker_proc(w);
		pthread_mutex_lock(&p->mu);
		for (;;) {
			if (p->stopping) {
				pthread_mutex_unlock(&p->mu);
				sandbox_stop(&w->proc);
				scan_ctx_free(w->ctx);
				scan_bundle_free(w->bundle);
				if (w->rules_fd != -1)
					close(w->rules_fd);
				free(w);
				return NULL;
			}
			if ((j = p->sq) != NULL) {
				if ((p->sq = j->next) == NULL)
					p->sq_tail = NULL;
				break;
			}
			if (!sync_only && (j = p->aq) != NULL) {
				if ((p->aq = j->next) == NULL)
					p->aq_tail = NULL;
				break;
			}
			if (p->bundle != NULL &&
			    (w->gen != p->gen || w->proc.pid <= 0))
				break; /* j is NULL: start the worker */
			if (w->busy) {
				/* Idle for 2 s: give the buffers back. */
				struct timespec ts;

				clock_gettime(CLOCK_REALTIME, &ts);
				ts.tv_sec += 2;
				if (pthread_cond_timedwait(&p->cv, &p->mu,
				                           &ts) == ETIMEDOUT) {
					w->busy = 0;
					if (w->ctx != NULL)
						scan_ctx_trim(w->ctx);
				}
				continue;
			}
			pthread_cond_wait(&p->cv, &p->mu);
		}
		pthread_mutex_unlock(&p->mu);
		if (j == NULL)
			continue;
		j->next = NULL;
		run_job(w, j);
		w->busy = 1;
		/* The loop is woken only for the first job of a batch: while
		 * the list is not empty a wake-up is already on its way (the
		 * loop empties the pipe before it takes the list). */
		pthread_mutex_lock(&p->mu);
		wake = p->done == NULL;
		if (p->done_tail != NULL)
			p->done_tail->next = j;
		else
			p->done = j;
		p->done_tail = j;
		pthread_mutex_unlock(&p->mu);
		while (wake && write(p->pipe[1], "d", 1) == -1 &&
		       errno == EINTR)
			;
	}
}

struct pool *
pool_new(int threads, int sync_threads, struct event_base *base,
         void (*on_done)(evutil_socket_t, short, void *), void *arg)
{
	struct pool *p;
	struct worker *w;
	int i;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	p->pipe[0] = p->pipe[1] = -1;
	p->rules_fd = -1;
	p->n = threads;
	p->nsync = sync_threads;
	if (pipe2(p->pipe, O_CLOEXEC | O_NONBLOCK) == -1 ||
	    (p->ev = event_new(base, p->pipe[0], EV_READ | EV_PERSIST, on_done,
	                       arg)) == NULL ||
	    event_add(p->ev, NULL) == -1 ||
	    (p->th = calloc((size_t)threads, sizeof(*p->th))) == NULL)
		goto fail;
	for (i = 0; i < threads; i++) {
		if ((w = calloc(1, sizeof(*w))) == NULL)
			goto fail;
		w->p = p;
		w->idx = i;
		w->rules_fd = -1;
		if (pthread_create(&p->th[i], NULL, worker_main, w) != 0) {
			free(w);
			goto fail;
		}
		p->started++;
	}
	return p;
fail:
	(void)pool_stop(p);
	pool_free(p);
	return NULL;
}

int
pool_set_bundle(struct pool *p, struct scan_bundle *b, int rules_fd)
{
	struct scan_bundle *old;
	int fd, oldfd;

	if ((fd = fcntl(rules_fd, F_DUPFD_CLOEXEC, 0)) == -1) {
		log_warn("scand: pool_set_bundle: dup");
		return -1;
	}
	pthread_mutex_lock(&p->mu);
	old = p->bundle;
	oldfd = p->rules_fd;
	p->bundle = scan_bundle_ref(b);
	p->rules_fd = fd;
	p->gen++;
	/* Idle threads replace their workers now. */
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	if (old != NULL)
		scan_bundle_free(old);
	if (oldfd != -1)
		close(oldfd);
	return 0;
}

void
pool_set_limits(struct pool *p, long long max_upload, int keep_samples,
                const char *samples_dir)
{
	pthread_mutex_lock(&p->mu);
	p->max_upload = max_upload;
	p->keep_samples = keep_samples;
	snprintf(p->samples_dir, sizeof(p->samples_dir), "%s", samples_dir);
	pthread_mutex_unlock(&p->mu);
}

void
pool_set_sandbox(struct pool *p, const struct sandbox *sb)
{
	pthread_mutex_lock(&p->mu);
	p->sb = *sb;
	pthread_mutex_unlock(&p->mu);
}

void
pool_push(struct pool *p, struct job *j)
{
	j->next = NULL;
	j->t_queued = mono_now();
	pthread_mutex_lock(&p->mu);
	if (j->kind == JOB_SCAN) {
		if (p->aq_tail != NULL)
			p->aq_tail->next = j;
		else
			p->aq = j;
		p->aq_tail = j;
	} else {
		if (p->sq_tail != NULL)
			p->sq_tail->next = j;
		else
			p->sq = j;
		p->sq_tail = j;
	}
	/* Any thread takes sync work: wake one. Only some take async work,
	 * and the one woken might not: wake them all. */
	if (j->kind == JOB_SCAN)
		pthread_cond_broadcast(&p->cv);
	else
		pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

struct job *
pool_take_done(struct pool *p)
{
	struct job *j;
	char b[256];

	while (read(p->pipe[0], b, sizeof(b)) > 0)
		;
	pthread_mutex_lock(&p->mu);
	j = p->done;
	p->done = p->done_tail = NULL;
	pthread_mutex_unlock(&p->mu);
	return j;
}

struct job *
pool_stop(struct pool *p)
{
	struct job *left, *t;
	int i;

	pthread_mutex_lock(&p->mu);
	p->stopping = 1;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	for (i = 0; i < p->started; i++)
		pthread_join(p->th[i], NULL);
	p->started = 0;
	/* Finished, queued sync, then queued async. */
	left = p->done;
	for (t = left; t != NULL && t->next != NULL; t = t->next)
		;
	if (t != NULL)
		t->next = p->sq;
	else
		left = p->sq;
	for (t = left; t != NULL && t->next != NULL; t = t->next)
		;
	if (t != NULL)
		t->next = p->aq;
	else
		left = p->aq;
	p->done = p->done_tail = p->sq = p->sq_tail = p->aq = p->aq_tail = NULL;
	return left;
}

void
pool_free(struct pool *p)
{
	size_t i;

	if (p == NULL)
		return;
	if (p->ev != NULL)
		event_free(p->ev);
	if (p->pipe[0] != -1)
		close(p->pipe[0]);
	if (p->pipe[1] != -1)
		close(p->pipe[1]);
	for (i = 0; i < p->ncache; i++) {
		free(p->cache[i].key);
		free(p->cache[i].text);
	}
	free(p->cache);
	if (p->bundle != NULL)
		scan_bundle_free(p->bundle);
	if (p->rules_fd != -1)
		close(p->rules_fd);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p->th);
	free(p);
}
