/*
 * spool: the agent's on-disk event spool (API in spool.h, format and
 * guarantees in docs/spool.md). Events are written here, durably, before
 * they are sent, and stay until the center acknowledges them; the center
 * dedups by sequence number, so sending twice is harmless and losing is not.
 *
 * The directory holds append-only segment files "seg-<first seq>.log" of
 * spoolrec records, and "spool.state" (acknowledged position, next sequence
 * number, lifetime counters, damaged stretches already reported), replaced
 * atomically. The newest segment is the active one: appends go there, and
 * it is never deleted, so its name keeps the sequence going even if the
 * state file is lost. The sequence is also the order: seq rises with the
 * file name and with the offset inside a file.
 *
 * Crash safety rests on three orderings:
 *   - a record is written and fdatasync'd before append returns, and a new
 *     segment's directory entry is fsync'd before anything is written to it;
 *   - the acknowledged position is saved before acknowledged segments go;
 *   - a gap record is durable before the segments it reports are deleted.
 * At open every segment is verified. Bytes that do not decode at the end of
 * the newest segment are a record whose append never returned: truncated
 * (and if its header, so its seq, made it to the disk, that seq is never
 * reused and a gap event reports it). Anywhere else they are corruption:
 * skipped, logged with file and offset, counted, and reported to the center
 * as a gap event naming the lost seqs.
 *
 * Memory holds a summary per segment (seq range, record count, damaged
 * stretches), not the records: reading goes back to the files.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "buf.h"
#include "log.h"
#include "spool.h"
#include "spoolrec.h"
#include "tls.h"

#define STATE_NAME    "spool.state"
#define STATE_TMP     STATE_NAME ".tmp."
#define STATE_MAX     (4u * 1024 * 1024)
#define STATE_VERSION 1
#define SEG_PREFIX    "seg-"
#define SEG_SUFFIX    ".log"
#define SEG_DIGITS    20
#define SEG_NAME_LEN                                                           \
	(sizeof(SEG_PREFIX) - 1 + SEG_DIGITS + sizeof(SEG_SUFFIX) - 1)
#define READ_MAX (1024u * 1024 * 1024) /* largest segment we will read */
#define UNSET    UINT64_MAX

struct extent {
	uint64_t off, len;
};

struct seg {
	uint64_t base;  /* from the name: the next seq when it was created */
	uint64_t first; /* seq of the first and last valid record (0: none) */
	uint64_t last;
	uint64_t nrec; /* valid records */
	uint64_t size; /* bytes of the file that belong to the spool */
	/* From the last scan: where the first record above the acknowledged
	 * position starts, and how many records come before it. */
	uint64_t ua_off, ua_nbefore;
	struct extent *bad; /* damaged stretches, in file order */
	size_t nbad, capbad;
	char name[SEG_NAME_LEN + 1];
};

/* A damaged stretch already reported (kept in the state file, so a restart
 * does not report it again). pending: its gap record is not written yet. */
struct mark {
	uint64_t base, off;
	int pending;
};

/* A gap record still to be written for damaged bytes. */
struct note {
	const char *reason; /* "corrupt" or "torn" */
	uint64_t base, off, bytes;
	uint64_t first, last, lost;
};

struct spool {
	char dir[PATH_MAX];
	char p_state[PATH_MAX];
	int dirfd; /* holds the flock */
	int afd;   /* the active (newest) segment, read-write */
	int rfd;   /* a cached read-only fd of an older segment */
	uint64_t rfd_base;
	struct spool_config cfg;

	struct seg *segs; /* oldest first; the last one is active */
	size_t nsegs, capsegs;
	uint64_t total; /* sum of segs[].size */

	uint64_t next_seq;
	uint64_t acked;
	/* The cursor: records before it in segs[cur] are acknowledged;
	 * cur_nbefore counts them. Moved forward by ack (eagerly) and peek. */
	size_t cur;
	uint64_t cur_off, cur_nbefore;

	int unsynced;   /* the active segment has writes not yet fdatasync'd */
	int broken;     /* a write or sync of the active segment failed */
	uint64_t syncs; /* successful fdatasyncs, for batch bookkeeping */
	struct {
		uint64_t size, nrec, first, last;
	} snap; /* the active segment as of its last successful sync */

	struct spool_stats life; /* the lifetime counters */
	struct mark *marks;
	size_t nmarks, capmarks;
	struct note *notes;
	size_t nnotes, capnotes;

	struct buf rbuf;  /* a whole segment while scanning */
	struct buf wbuf;  /* the record being written */
	uint8_t *scratch; /* the record being read */
	size_t scratchcap;
	char err[768];
};

/* Tests replace these to inject a full disk or a failing sync. */
static ssize_t (*spool_pwrite)(int, const void *, size_t, off_t) = pwrite;
static int (*spool_fdatasync)(int) = fdatasync;

static int seg_scan(struct spool *, size_t, int);
static int append_records(struct spool *, uint8_t, const struct spool_iov *,
                          size_t, uint64_t *, size_t *);

/*
 * Records why a call failed: the message (with strerror(errnum) appended
 * when errnum > 0) in sp->err, errnum in errno. Returns -1.
 */
static int seterr(struct spool *sp, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
seterr(struct spool *sp, int errnum, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(sp->err, sizeof(sp->err), fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < sizeof(sp->err) && errnum > 0)
		snprintf(sp->err + n, sizeof(sp->err) - (size_t)n, ": %s",
		         strerror(errnum));
	errno = errnum > 0 ? errnum : EIO;
	return -1;
}

static int
grow(void *pp, size_t *cap, size_t need, size_t size)
{
	void **p = pp;
	size_t ncap;
	void *np;

	if (need <= *cap)
		return 0;
	ncap = *cap < 8 ? 8 : *cap;
	while (ncap < need)
		ncap *= 2;
	if ((np = reallocarray(*p, ncap, size)) == NULL)
		return -1;
	*p = np;
	*cap = ncap;
	return 0;
}

static struct seg *
active(struct spool *sp)
{
	return &sp->segs[sp->nsegs - 1];
}

static void
seg_name(char *out, uint64_t base)
{
	snprintf(out, SEG_NAME_LEN + 1, SEG_PREFIX "%020" PRIu64 SEG_SUFFIX,
	         base);
}

/* "seg-" + 20 digits + ".log" with a base >= 1, else 0. */
static uint64_t
seg_parse_name(const char *name)
{
	const char *d = name + sizeof(SEG_PREFIX) - 1;
	uint64_t v = 0;
	int i;

	if (strlen(name) != SEG_NAME_LEN ||
	    strncmp(name, SEG_PREFIX, sizeof(SEG_PREFIX) - 1) != 0 ||
	    strcmp(d + SEG_DIGITS, SEG_SUFFIX) != 0)
		return 0;
	for (i = 0; i < SEG_DIGITS; i++) {
		if (d[i] < '0' || d[i] > '9')
			return 0;
		if (v > (UINT64_MAX - (uint64_t)(d[i] - '0')) / 10)
			return 0;
		v = v * 10 + (uint64_t)(d[i] - '0');
	}
	return v;
}

static int
pwrite_full(int fd, const uint8_t *p, size_t n, uint64_t off)
{
	ssize_t w;

	while (n > 0) {
		w = spool_pwrite(fd, p, n, (off_t)off);
		if (w == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (w == 0) {
			errno = EIO;
			return -1;
		}
		p += w;
		n -= (size_t)w;
		off += (uint64_t)w;
	}
	return 0;
}

/* Reads up to n bytes at off; returns how many (short only at the end of
 * the file) or -1. */
static ssize_t
pread_full(int fd, uint8_t *p, size_t n, uint64_t off)
{
	size_t got = 0;
	ssize_t r;

	while (got < n) {
		r = pread(fd, p + got, n - got, (off_t)(off + got));
		if (r == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

/* The fd to read segs[i] with: the active one's, or a cached read-only
 * one. */
static int
seg_fd(struct spool *sp, size_t i)
{
	struct seg *s = &sp->segs[i];

	if (i + 1 == sp->nsegs)
		return sp->afd;
	if (sp->rfd != -1 && sp->rfd_base == s->base)
		return sp->rfd;
	if (sp->rfd != -1)
		close(sp->rfd);
	sp->rfd = openat(sp->dirfd, s->name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (sp->rfd == -1)
		return seterr(sp, errno, "spool: %s/%s", sp->dir, s->name);
	sp->rfd_base = s->base;
	return sp->rfd;
}

/* Index of a mark, or -1. */
static ssize_t
mark_find(const struct spool *sp, uint64_t base, uint64_t off)
{
	for (size_t i = 0; i < sp->nmarks; i++)
		if (sp->marks[i].base == base && sp->marks[i].off == off)
			return (ssize_t)i;
	return -1;
}

static int
mark_add(struct spool *sp, uint64_t base, uint64_t off, int pending)
{
	if (mark_find(sp, base, off) != -1)
		return 0;
	if (grow(&sp->marks, &sp->capmarks, sp->nmarks + 1,
	         sizeof(*sp->marks)) == -1)
		return -1;
	sp->marks[sp->nmarks].base = base;
	sp->marks[sp->nmarks].off = off;
	sp->marks[sp->nmarks].pending = pending;
	sp->nmarks++;
	return 0;
}

/*
 * The gap event's JSON. Every value is a number or a name this file made,
 * so the fixed buffer cannot be filled from outside; its size is what
 * SPOOL_GAP_RESERVE reserves.
 */
static size_t
gap_json(char *out, size_t outlen, const char *reason, uint64_t first,
         uint64_t last, uint64_t lost, const char *seg, uint64_t off,
         uint64_t bytes)
{
	int n, m = 0;

	n = snprintf(out, outlen,
	             "{\"type\":\"spool.gap\",\"reason\":\"%s\","
	             "\"first_seq\":%" PRIu64 ",\"last_seq\":%" PRIu64
	             ",\"lost\":%" PRIu64 ",\"time\":%lld",
	             reason, first, last, lost, (long long)time(NULL));
	if (n > 0 && (size_t)n < outlen)
		m = seg == NULL
		        ? snprintf(out + n, outlen - (size_t)n, "}")
		        : snprintf(out + n, outlen - (size_t)n,
		                   ",\"segment\":\"%s\",\"offset\":%" PRIu64
		                   ",\"bytes\":%" PRIu64 "}",
		                   seg, off, bytes);
	if (n < 0 || m < 0 || (size_t)n + (size_t)m >= outlen)
		fatalx("%s: gap event does not fit", __func__);
	return (size_t)n + (size_t)m;
}

/* ---- the state file ---- */

static int
save_state(struct spool *sp)
{
	json_t *o, *c, *m;
	struct buf err;
	char *s = NULL;
	int rc = -1;

	o = json_object();
	c = json_object();
	m = json_array();
	if (o == NULL || c == NULL || m == NULL)
		goto done;
	json_object_set_new(c, "dropped_events",
	                    json_integer((json_int_t)sp->life.dropped_events));
	json_object_set_new(c, "corrupt_events",
	                    json_integer((json_int_t)sp->life.corrupt_events));
	json_object_set_new(c, "corrupt_regions",
	                    json_integer((json_int_t)sp->life.corrupt_regions));
	json_object_set_new(c, "corrupt_bytes",
	                    json_integer((json_int_t)sp->life.corrupt_bytes));
	json_object_set_new(c, "gap_events",
	                    json_integer((json_int_t)sp->life.gap_events));
	json_object_set_new(c, "torn_tails",
	                    json_integer((json_int_t)sp->life.torn_tails));
	json_object_set_new(c, "torn_bytes",
	                    json_integer((json_int_t)sp->life.torn_bytes));
	for (size_t i = 0; i < sp->nmarks; i++) {
		/* A stretch whose gap is not written yet is left out: after a
		 * crash it is found and reported again. */
		if (sp->marks[i].pending)
			continue;
		json_array_append_new(
		    m, json_pack("[I, I]", (json_int_t)sp->marks[i].base,
		                 (json_int_t)sp->marks[i].off));
	}
	json_object_set_new(o, "version", json_integer(STATE_VERSION));
	json_object_set_new(o, "next_seq",
	                    json_integer((json_int_t)sp->next_seq));
	json_object_set_new(o, "acked", json_integer((json_int_t)sp->acked));
	json_object_set(o, "counters", c);
	json_object_set(o, "reported", m);
	if ((s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS)) == NULL)
		goto done;
	buf_init(&err, 1024);
	rc = tls_write_file(sp->p_state, s, strlen(s), 0600, &err);
	if (rc == -1)
		seterr(sp, 0, "spool: saving the state: %s", buf_cstr(&err));
	buf_free(&err);
done:
	if (rc == -1 && s == NULL)
		seterr(sp, ENOMEM, "spool: saving the state");
	free(s);
	json_decref(c);
	json_decref(m);
	json_decref(o);
	return rc;
}

/* A non-negative integer member (0 when absent); -1 when of another type. */
static int
get_u64(json_t *o, const char *key, uint64_t *out)
{
	json_t *v = json_object_get(o, key);

	*out = 0;
	if (v == NULL)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return -1;
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

/*
 * Loads spool.state. A missing file is a new spool (or one whose state
 * was lost: the segments still tell the sequence). A damaged one is logged
 * and ignored: everything still in the spool is then sent again, which
 * the center's dedup absorbs. Returns -1 only on a read error.
 */
static int
load_state(struct spool *sp)
{
	struct stat st;
	json_error_t jerr;
	struct buf b, err;
	json_t *o = NULL, *c, *m, *e;
	uint64_t v, base, off;
	size_t i;
	int rc = 0;

	if (fstatat(sp->dirfd, STATE_NAME, &st, AT_SYMLINK_NOFOLLOW) == -1) {
		if (errno == ENOENT)
			return 0;
		return seterr(sp, errno, "spool: %s", sp->p_state);
	}
	buf_init(&b, STATE_MAX);
	buf_init(&err, 1024);
	if (!S_ISREG(st.st_mode)) {
		log_warnx("spool: %s: not a regular file; ignored",
		          sp->p_state);
		goto done;
	}
	if (tls_read_file(sp->p_state, STATE_MAX, &b, &err) == -1) {
		rc = seterr(sp, 0, "spool: %s", buf_cstr(&err));
		goto done;
	}
	o = json_loadb((const char *)b.data, b.len, JSON_REJECT_DUPLICATES,
	               &jerr);
	if (o == NULL || !json_is_object(o)) {
		log_warnx("spool: %s: unreadable (%s); ignored, unacknowledged "
		          "events may be sent again",
		          sp->p_state, o == NULL ? jerr.text : "not an object");
		goto done;
	}
	if (get_u64(o, "version", &v) == -1 || v != STATE_VERSION ||
	    get_u64(o, "next_seq", &sp->next_seq) == -1 ||
	    get_u64(o, "acked", &sp->acked) == -1) {
		log_warnx("spool: %s: unknown version or bad field; ignored, "
		          "unacknowledged events may be sent again",
		          sp->p_state);
		sp->next_seq = sp->acked = 0;
		goto done;
	}
	if ((c = json_object_get(o, "counters")) != NULL) {
		/* Counters are informative: a bad one reads as 0. */
		get_u64(c, "dropped_events", &sp->life.dropped_events);
		get_u64(c, "corrupt_events", &sp->life.corrupt_events);
		get_u64(c, "corrupt_regions", &sp->life.corrupt_regions);
		get_u64(c, "corrupt_bytes", &sp->life.corrupt_bytes);
		get_u64(c, "gap_events", &sp->life.gap_events);
		get_u64(c, "torn_tails", &sp->life.torn_tails);
		get_u64(c, "torn_bytes", &sp->life.torn_bytes);
	}
	m = json_object_get(o, "reported");
	json_array_foreach(m, i, e)
	{
		if (!json_is_array(e) || json_array_size(e) != 2 ||
		    !json_is_integer(json_array_get(e, 0)) ||
		    !json_is_integer(json_array_get(e, 1)))
			continue;
		base = (uint64_t)json_integer_value(json_array_get(e, 0));
		off = (uint64_t)json_integer_value(json_array_get(e, 1));
		if (mark_add(sp, base, off, 0) == -1) {
			rc = seterr(sp, ENOMEM, "spool: loading the state");
			goto done;
		}
	}
done:
	json_decref(o);
	buf_free(&b);
	buf_free(&err);
	return rc;
}

/* ---- segments ---- */

/* Reads all of fd into sp->rbuf. */
static int
read_all(struct spool *sp, int fd, const char *name)
{
	uint8_t chunk[65536];
	struct stat st;
	uint64_t off = 0;
	ssize_t n;

	buf_reset(&sp->rbuf);
	if (fstat(fd, &st) == -1)
		return seterr(sp, errno, "spool: %s/%s", sp->dir, name);
	if ((uint64_t)st.st_size > READ_MAX)
		return seterr(sp, EFBIG, "spool: %s/%s: %lld bytes", sp->dir,
		              name, (long long)st.st_size);
	for (;;) {
		n = pread_full(fd, chunk, sizeof(chunk), off);
		if (n == -1)
			return seterr(sp, errno, "spool: read %s/%s", sp->dir,
			              name);
		if (n == 0)
			break;
		if (buf_append(&sp->rbuf, chunk, (size_t)n) == -1)
			return seterr(sp, ENOMEM, "spool: read %s/%s", sp->dir,
			              name);
		off += (uint64_t)n;
	}
	return 0;
}

/* A whole valid record at p[c..size) with a seq above prev? */
static int
valid_at(const uint8_t *p, size_t size, size_t c, uint64_t prev, uint64_t *seq)
{
	struct spoolrec rec;

	if (spoolrec_decode(p + c, size - c, SPOOLREC_MAX_PAYLOAD, &rec,
	                    NULL) <= 0 ||
	    rec.seq <= prev)
		return 0;
	*seq = rec.seq;
	return 1;
}

/*
 * After damaged bytes at off: the offset of the next valid record (and its
 * seq in *seq), or size when none follows. A header that checks out has a
 * trustworthy length, so the record after it is tried first; otherwise
 * every later magic is a candidate, and a candidate must decode whole
 * (two checksums) to count.
 */
static size_t
resync(const uint8_t *p, size_t size, size_t off, uint64_t prev, uint64_t *seq)
{
	struct spoolrec rec;
	size_t c;

	if (spoolrec_decode_header(p + off, size - off, SPOOLREC_MAX_PAYLOAD,
	                           &rec, NULL) == SPOOLREC_HDR) {
		c = off + SPOOLREC_HDR + rec.len;
		if (c < size && valid_at(p, size, c, prev, seq))
			return c;
	}
	for (c = spoolrec_find_magic(p, size, off + 1); c < size;
	     c = spoolrec_find_magic(p, size, c + 1))
		if (valid_at(p, size, c, prev, seq))
			return c;
	return size;
}

/* Queues a gap record for seqs first..last, lost to damaged bytes. */
static int
note_add(struct spool *sp, const char *reason, uint64_t base, uint64_t off,
         uint64_t bytes, uint64_t first, uint64_t last)
{
	struct note *n;

	if (grow(&sp->notes, &sp->capnotes, sp->nnotes + 1,
	         sizeof(*sp->notes)) == -1)
		return seterr(sp, ENOMEM, "spool: scanning");
	n = &sp->notes[sp->nnotes++];
	n->reason = reason;
	n->base = base;
	n->off = off;
	n->bytes = bytes;
	n->first = first;
	n->last = last;
	n->lost = last - first + 1;
	return 0;
}

/*
 * Damaged bytes [off, off + len) in segs[i], between the valid records
 * prev and nextseq: remembered so that reading skips them, and reported
 * (log, counters, a gap event for the seqs in between) unless the state
 * file says this was done before.
 */
static int
seg_damage(struct spool *sp, size_t i, uint64_t off, uint64_t len,
           uint64_t prev, uint64_t nextseq, const char *why)
{
	struct seg *s = &sp->segs[i];
	uint64_t lost = nextseq > prev + 1 ? nextseq - prev - 1 : 0;

	if (grow(&s->bad, &s->capbad, s->nbad + 1, sizeof(*s->bad)) == -1)
		return seterr(sp, ENOMEM, "spool: scanning %s", s->name);
	s->bad[s->nbad].off = off;
	s->bad[s->nbad].len = len;
	s->nbad++;
	if (mark_find(sp, s->base, off) != -1) {
		log_debug("spool: %s/%s: corrupt record at offset %" PRIu64
		          " (reported before): skipped",
		          sp->dir, s->name, off);
		return 0;
	}
	if (mark_add(sp, s->base, off, lost > 0) == -1)
		return seterr(sp, ENOMEM, "spool: scanning %s", s->name);
	sp->life.corrupt_regions++;
	sp->life.corrupt_bytes += len;
	sp->life.corrupt_events += lost;
	if (lost == 0) {
		log_warnx("spool: %s/%s: corrupt record at offset %" PRIu64
		          " (%s): skipped %" PRIu64 " bytes, no event lost",
		          sp->dir, s->name, off, why, len);
		return 0;
	}
	log_warnx("spool: %s/%s: corrupt record at offset %" PRIu64
	          " (%s): skipped %" PRIu64 " bytes, %" PRIu64
	          " events lost (seq %" PRIu64 "-%" PRIu64 "); a gap event "
	          "reports them",
	          sp->dir, s->name, off, why, len, lost, prev + 1, nextseq - 1);
	return note_add(sp, "corrupt", s->base, off, len, prev + 1,
	                nextseq - 1);
}

/*
 * The end of the newest segment does not decode at open. Without a whole
 * header this is a record whose write a crash interrupted: its append never
 * returned, nothing was sent, it is cut off. With a whole header its seq
 * reached the disk, and the record may even have been durable and sent (a
 * damaged disk): that seq is never handed out again (saved before the cut)
 * and a gap event reports it lost.
 */
static int
seg_torn(struct spool *sp, size_t i, int fd, uint64_t off, const uint8_t *p,
         size_t len, uint64_t prev, const char *why)
{
	struct seg *s = &sp->segs[i];
	struct spoolrec rec;

	sp->life.torn_tails++;
	sp->life.torn_bytes += len;
	if (spoolrec_decode_header(p, len, SPOOLREC_MAX_PAYLOAD, &rec, NULL) !=
	        SPOOLREC_HDR ||
	    rec.seq <= prev) {
		log_warnx("spool: %s/%s: unfinished record at offset %" PRIu64
		          " (%s): truncated %zu bytes; a crash interrupted its "
		          "write, it was never reported as stored",
		          sp->dir, s->name, off, why, len);
	} else {
		log_warnx("spool: %s/%s: unfinished record at offset %" PRIu64
		          " (%s): truncated %zu bytes; its seq %" PRIu64
		          " is not used again, a gap event reports it lost",
		          sp->dir, s->name, off, why, len, rec.seq);
		if (rec.seq >= sp->next_seq)
			sp->next_seq = rec.seq + 1;
		if (note_add(sp, "torn", s->base, off, len, rec.seq, rec.seq) ==
		    -1)
			return -1;
		if (save_state(sp) == -1) {
			/* The bytes keep the seq taken; appends move on. */
			log_warnx("%s", sp->err);
			sp->broken = 1;
			return 0;
		}
	}
	if (ftruncate(fd, (off_t)off) == -1 || spool_fdatasync(fd) == -1) {
		/* Reading stops at s->size anyway; appends move to a new
		 * segment. */
		log_warn("spool: truncate %s/%s", sp->dir, s->name);
		sp->broken = 1;
	}
	return 0;
}

/*
 * Verifies every record of segs[i] and rebuilds its summary and damaged
 * stretches. at_open: a damaged tail of the newest segment is a record a
 * crash interrupted, cut off by seg_torn. Later (bytes that changed under
 * a running spool) it is damage like any other. Afterwards the cursor, if
 * in this segment, points at the first record above the acknowledged
 * position.
 */
static int
seg_scan(struct spool *sp, size_t i, int at_open)
{
	struct seg *s = &sp->segs[i];
	int newest = i + 1 == sp->nsegs, fd;
	uint64_t prev, seq = 0, nextseq;
	struct spoolrec rec;
	const uint8_t *p;
	const char *why;
	size_t size, off = 0, next;
	ssize_t r;

	if ((fd = seg_fd(sp, i)) == -1 || read_all(sp, fd, s->name) == -1)
		return -1;
	p = sp->rbuf.data;
	size = sp->rbuf.len;
	prev = s->base - 1;
	if (i > 0 && sp->segs[i - 1].last > prev)
		prev = sp->segs[i - 1].last;
	s->first = s->last = s->nrec = 0;
	s->nbad = 0;
	s->ua_off = UNSET;
	s->ua_nbefore = 0;
	while (off < size) {
		why = "bad record";
		r = spoolrec_decode(p + off, size - off, SPOOLREC_MAX_PAYLOAD,
		                    &rec, &why);
		if (r > 0 && rec.seq > prev) {
			if (s->nrec == 0)
				s->first = rec.seq;
			if (rec.seq > sp->acked && s->ua_off == UNSET) {
				s->ua_off = off;
				s->ua_nbefore = s->nrec;
			}
			s->last = rec.seq;
			s->nrec++;
			prev = rec.seq;
			off += (size_t)r;
			continue;
		}
		if (r > 0)
			why = "sequence number not above the record before";
		next = resync(p, size, off, prev, &seq);
		if (next == size && newest && at_open) {
			if (seg_torn(sp, i, fd, off, p + off, size - off, prev,
			             why) == -1)
				return -1;
			size = off;
			break;
		}
		if (next < size)
			nextseq = seq;
		else
			nextseq = newest ? sp->next_seq : sp->segs[i + 1].base;
		if (seg_damage(sp, i, off, next - off, prev, nextseq, why) ==
		    -1)
			return -1;
		off = next;
	}
	s->size = size;
	if (s->ua_off == UNSET) {
		s->ua_off = size;
		s->ua_nbefore = s->nrec;
	}
	if (!at_open && i == sp->cur) {
		sp->cur_off = s->ua_off;
		sp->cur_nbefore = s->ua_nbefore;
	}
	return 0;
}

static const struct extent *
extent_at(const struct seg *s, uint64_t off)
{
	for (size_t k = 0; k < s->nbad; k++)
		if (s->bad[k].off == off)
			return &s->bad[k];
	return NULL;
}

/*
 * Reads the record at *off of segs[i], first stepping over known damaged
 * stretches (*off moves). Returns 1 with rec (the payload, when asked for,
 * in sp->scratch until the next read), 0 at the end of the segment, -2 when
 * the bytes there do not decode (the caller rescans), -1 on a read error.
 */
static int
seg_read(struct spool *sp, size_t i, uint64_t *off, int payload,
         struct spoolrec *rec)
{
	const struct extent *e;
	uint8_t hdr[SPOOLREC_HDR];
	struct seg *s = &sp->segs[i];
	size_t need;
	ssize_t n;
	int fd;

	while ((e = extent_at(s, *off)) != NULL)
		*off += e->len;
	if (*off >= s->size)
		return 0;
	if ((fd = seg_fd(sp, i)) == -1)
		return -1;
	if ((n = pread_full(fd, hdr, sizeof(hdr), *off)) == -1)
		return seterr(sp, errno, "spool: read %s/%s", sp->dir, s->name);
	if (spoolrec_decode_header(hdr, (size_t)n, SPOOLREC_MAX_PAYLOAD, rec,
	                           NULL) != SPOOLREC_HDR ||
	    *off + SPOOLREC_HDR + rec->len > s->size)
		return -2;
	if (!payload)
		return 1;
	need = SPOOLREC_HDR + rec->len;
	if (grow(&sp->scratch, &sp->scratchcap, need, 1) == -1)
		return seterr(sp, ENOMEM, "spool: read %s/%s", sp->dir,
		              s->name);
	if ((n = pread_full(fd, sp->scratch, need, *off)) == -1)
		return seterr(sp, errno, "spool: read %s/%s", sp->dir, s->name);
	if (spoolrec_decode(sp->scratch, (size_t)n, SPOOLREC_MAX_PAYLOAD, rec,
	                    NULL) != (ssize_t)need)
		return -2;
	return 1;
}

/* Reads the record at *off like seg_read, rescanning the segment once when
 * it finds bytes that changed since they were verified. */
static int
seg_read_checked(struct spool *sp, size_t i, uint64_t *off, int payload,
                 struct spoolrec *rec, int *rescanned)
{
	int r = seg_read(sp, i, off, payload, rec);

	if (r != -2)
		return r;
	if (!*rescanned) {
		*rescanned = 1;
		if (seg_scan(sp, i, 0) == -1)
			return -1;
		r = seg_read(sp, i, off, payload, rec);
		if (r != -2)
			return r;
	}
	return seterr(sp, EIO,
	              "spool: %s/%s: offset %" PRIu64 " is no record boundary "
	              "(was the file changed by another program?)",
	              sp->dir, sp->segs[i].name, *off);
}

/* Moves the cursor over records at or below the acknowledged position. */
static int
advance_cursor(struct spool *sp)
{
	struct spoolrec rec;
	int r, rescanned = 0;

	for (;;) {
		r = seg_read_checked(sp, sp->cur, &sp->cur_off, 0, &rec,
		                     &rescanned);
		if (r == -1)
			return -1;
		if (r == 0) {
			if (sp->cur + 1 >= sp->nsegs)
				return 0;
			sp->cur++;
			sp->cur_off = sp->cur_nbefore = 0;
			rescanned = 0;
			continue;
		}
		/* A rescan may have moved the cursor already. */
		if (rec.seq > sp->acked)
			return 0;
		sp->cur_off += SPOOLREC_HDR + rec.len;
		sp->cur_nbefore++;
	}
}

/* Records of segs[i] above the acknowledged position: how many, and the
 * last seq. */
static int
count_unacked(struct spool *sp, size_t i, uint64_t *count, uint64_t *last)
{
	struct seg *s = &sp->segs[i];
	struct spoolrec rec;
	uint64_t off = 0;
	int r, rescanned = 0;

	*count = *last = 0;
	if (s->nrec == 0 || s->last <= sp->acked)
		return 0;
	if (s->first > sp->acked) {
		*count = s->nrec;
		*last = s->last;
		return 0;
	}
	while ((r = seg_read_checked(sp, i, &off, 0, &rec, &rescanned)) == 1) {
		if (rec.seq > sp->acked) {
			*last = rec.seq;
			(*count)++;
		}
		off += SPOOLREC_HDR + rec.len;
	}
	return r;
}

/* Deletes segs[i] (never the active one) and forgets it. */
static void
drop_seg(struct spool *sp, size_t i)
{
	struct seg *s = &sp->segs[i];
	size_t k;

	if (i + 1 >= sp->nsegs)
		fatalx("%s: the active segment", __func__);
	if (sp->rfd != -1 && sp->rfd_base == s->base) {
		close(sp->rfd);
		sp->rfd = -1;
	}
	if (unlinkat(sp->dirfd, s->name, 0) == -1 && errno != ENOENT)
		log_warn("spool: unlink %s/%s", sp->dir, s->name);
	for (k = 0; k < sp->nmarks;) {
		if (sp->marks[k].base == s->base)
			sp->marks[k] = sp->marks[--sp->nmarks];
		else
			k++;
	}
	sp->total -= s->size;
	free(s->bad);
	memmove(s, s + 1, (sp->nsegs - i - 1) * sizeof(*s));
	sp->nsegs--;
	if (sp->cur > i)
		sp->cur--;
	else if (sp->cur == i)
		sp->cur_off = sp->cur_nbefore = 0;
}

/* Deletes the older segments holding nothing above the acknowledged
 * position. */
static void
drop_acked(struct spool *sp)
{
	int dropped = 0;

	for (size_t i = 0; i + 1 < sp->nsegs;) {
		if (sp->segs[i].nrec == 0 || sp->segs[i].last <= sp->acked) {
			drop_seg(sp, i);
			dropped = 1;
		} else
			i++;
	}
	if (dropped && fsync(sp->dirfd) == -1)
		log_warn("spool: fsync %s", sp->dir);
}

/* Makes a new empty segment the active one (the old active one has been
 * synced by the caller). */
static int
seg_create(struct spool *sp, uint64_t base)
{
	struct seg *s;
	char name[SEG_NAME_LEN + 1];
	int fd;

	seg_name(name, base);
	fd = openat(sp->dirfd, name,
	            O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd == -1)
		return seterr(sp, errno, "spool: create %s/%s", sp->dir, name);
	/* The umask may have narrowed the mode; never wider than 0600. */
	if (fchmod(fd, 0600) == -1 || fsync(sp->dirfd) == -1 ||
	    grow(&sp->segs, &sp->capsegs, sp->nsegs + 1, sizeof(*sp->segs)) ==
	        -1) {
		seterr(sp, errno, "spool: create %s/%s", sp->dir, name);
		close(fd);
		unlinkat(sp->dirfd, name, 0);
		return -1;
	}
	s = &sp->segs[sp->nsegs++];
	memset(s, 0, sizeof(*s));
	s->base = base;
	memcpy(s->name, name, sizeof(s->name));
	if (sp->afd != -1)
		close(sp->afd);
	sp->afd = fd;
	sp->broken = 0;
	sp->unsynced = 0;
	memset(&sp->snap, 0, sizeof(sp->snap));
	return 0;
}

/*
 * fdatasync of the active segment. When it fails nobody knows what reached
 * the disk: everything written since the last good sync is taken back, its
 * seqs are never used again, and the next append moves to a new segment.
 */
static int
sync_active(struct spool *sp)
{
	struct seg *a = active(sp);
	int e;

	if (!sp->unsynced)
		return 0;
	if (spool_fdatasync(sp->afd) == -1) {
		e = errno;
		if (ftruncate(sp->afd, (off_t)sp->snap.size) == -1)
			log_warn("spool: truncate %s/%s", sp->dir, a->name);
		sp->total -= a->size - sp->snap.size;
		a->size = sp->snap.size;
		a->nrec = sp->snap.nrec;
		a->first = sp->snap.first;
		a->last = sp->snap.last;
		if (sp->cur + 1 == sp->nsegs && sp->cur_off > a->size) {
			sp->cur_off = a->size;
			sp->cur_nbefore = a->nrec;
		}
		sp->broken = 1;
		sp->unsynced = 0;
		return seterr(sp, e, "spool: fdatasync %s/%s", sp->dir,
		              a->name);
	}
	sp->unsynced = 0;
	sp->syncs++;
	sp->snap.size = a->size;
	sp->snap.nrec = a->nrec;
	sp->snap.first = a->first;
	sp->snap.last = a->last;
	return 0;
}

static int
rotate(struct spool *sp)
{
	uint64_t base = sp->next_seq;

	if (sync_active(sp) == -1)
		return -1;
	/* An empty active segment already has this name (possible only after
	 * a failure); skipping one seq keeps names unique. */
	if (active(sp)->base == base)
		base = ++sp->next_seq;
	return seg_create(sp, base);
}

/* Writes one record at the end of the active segment, not yet synced. A
 * failed write is cut off again, so it costs no seq and leaves no bytes. */
static int
put_record(struct spool *sp, uint8_t kind, const void *data, size_t len,
           uint64_t *seq)
{
	struct seg *a = active(sp);
	uint64_t s = sp->next_seq;
	int e;

	buf_reset(&sp->wbuf);
	if (spoolrec_encode(&sp->wbuf, kind, s, data, len) == -1)
		return seterr(sp, EMSGSIZE, "spool: record of %zu bytes", len);
	if (pwrite_full(sp->afd, sp->wbuf.data, sp->wbuf.len, a->size) == -1) {
		e = errno;
		if (ftruncate(sp->afd, (off_t)a->size) == -1) {
			/* Its bytes may stay: never reuse its seq, and
			 * write nothing more behind them. */
			log_warn("spool: truncate %s/%s", sp->dir, a->name);
			sp->next_seq++;
			sp->broken = 1;
		}
		return seterr(sp, e,
		              "spool: write %s/%s at offset %" PRIu64
		              " (%zu bytes)",
		              sp->dir, a->name, a->size, sp->wbuf.len);
	}
	a->size += sp->wbuf.len;
	sp->total += sp->wbuf.len;
	if (a->nrec == 0)
		a->first = s;
	a->last = s;
	a->nrec++;
	sp->next_seq++;
	sp->unsynced = 1;
	*seq = s;
	return 0;
}

/*
 * Room for a record of need bytes: a new segment when the active one is
 * full, and when the spool is, the oldest segments go. A gap record says
 * that every unacknowledged seq up to the last one dropped is gone (that
 * range also covers earlier gap records dropped now) and how many records
 * this drop removed; it is synced before anything is deleted.
 */
static int
make_room(struct spool *sp, uint64_t need)
{
	struct seg *a = active(sp);
	uint64_t planned = sp->total, lost = 0, llast = 0, c, l, gseq;
	size_t ndrop = 0, k, glen;
	char gap[SPOOL_GAP_RESERVE - SPOOLREC_HDR];

	if (sp->broken || (a->size > 0 && a->size + need + SPOOL_GAP_RESERVE >
	                                      sp->cfg.segment_bytes))
		if (rotate(sp) == -1)
			return -1;
	while (planned + need + SPOOL_GAP_RESERVE > sp->cfg.max_bytes &&
	       ndrop + 1 < sp->nsegs)
		planned -= sp->segs[ndrop++].size;
	if (ndrop == 0)
		return 0;
	for (k = 0; k < ndrop; k++) {
		if (count_unacked(sp, k, &c, &l) == -1)
			return -1;
		if (c > 0)
			llast = l;
		lost += c;
	}
	if (lost > 0) {
		glen = gap_json(gap, sizeof(gap), "overflow", sp->acked + 1,
		                llast, lost, NULL, 0, 0);
		if (put_record(sp, SPOOLREC_GAP, gap, glen, &gseq) == -1 ||
		    sync_active(sp) == -1)
			return -1;
		sp->life.dropped_events += lost;
		sp->life.gap_events++;
		log_warnx("spool: %s is full (%" PRIu64 " bytes): dropped the "
		          "%zu oldest segments with %" PRIu64
		          " unacknowledged events (up to seq %" PRIu64
		          "); gap event %" PRIu64 " reports them",
		          sp->dir, sp->cfg.max_bytes, ndrop, lost, llast, gseq);
	}
	for (k = 0; k < ndrop; k++)
		drop_seg(sp, 0);
	if (fsync(sp->dirfd) == -1)
		log_warn("spool: fsync %s", sp->dir);
	if (save_state(sp) == -1)
		log_warnx("%s", sp->err);
	return 0;
}

static int
append_records(struct spool *sp, uint8_t kind, const struct spool_iov *ev,
               size_t n, uint64_t *seqs, size_t *done)
{
	size_t k, durable = 0;
	uint64_t syncs = sp->syncs, before, seq;
	char saved[sizeof(sp->err)];
	int e;

	if (done != NULL)
		*done = 0;
	for (k = 0; k < n; k++) {
		if (ev[k].len > sp->cfg.max_event)
			return seterr(
			    sp, EMSGSIZE,
			    "spool: event of %zu bytes is larger than "
			    "the spool's max_event (%zu)",
			    ev[k].len, sp->cfg.max_event);
		if (ev[k].data == NULL && ev[k].len > 0)
			return seterr(sp, EINVAL, "spool: event without data");
	}
	for (k = 0; k < n; k++) {
		syncs = sp->syncs;
		if (make_room(sp, SPOOLREC_HDR + ev[k].len) == -1)
			goto fail;
		/* A sync while making room covered all before this one. */
		if (sp->syncs != syncs)
			durable = k;
		if (put_record(sp, kind, ev[k].data, ev[k].len, &seq) == -1)
			goto fail;
		if (seqs != NULL)
			seqs[k] = seq;
	}
	if (sync_active(sp) == -1)
		goto out;
	durable = n;
	if (done != NULL)
		*done = n;
	return 0;
fail:
	/* A sync while making room (a rotation) covered all before this one;
	 * those written since can still be made durable. A sync that finds
	 * nothing to do proves nothing (a failed one took them back). The
	 * first error is the one reported. */
	e = errno;
	memcpy(saved, sp->err, sizeof(saved));
	if (sp->syncs != syncs)
		durable = k;
	before = sp->syncs;
	if (k > durable && sync_active(sp) == 0 && sp->syncs != before)
		durable = k;
	memcpy(sp->err, saved, sizeof(saved));
	errno = e;
out:
	if (done != NULL)
		*done = durable;
	return -1;
}

/* Writes the gap records noted for damaged stretches. On failure they stay
 * noted for the next call. */
static int
flush_notes(struct spool *sp)
{
	char gap[SPOOL_GAP_RESERVE - SPOOLREC_HDR], name[SEG_NAME_LEN + 1];
	struct spool_iov v;
	struct note n;
	uint64_t seq;
	ssize_t m;

	if (sp->nnotes == 0)
		return 0;
	while (sp->nnotes > 0) {
		/* A copy: writing may find more damage and grow the list. */
		n = sp->notes[0];
		seg_name(name, n.base);
		v.data = gap;
		v.len = gap_json(gap, sizeof(gap), n.reason, n.first, n.last,
		                 n.lost, name, n.off, n.bytes);
		if (append_records(sp, SPOOLREC_GAP, &v, 1, &seq, NULL) == -1) {
			log_warnx("spool: cannot write the gap event for %s "
			          "offset %" PRIu64 " yet: %s",
			          name, n.off, sp->err);
			return -1;
		}
		sp->life.gap_events++;
		if ((m = mark_find(sp, n.base, n.off)) != -1)
			sp->marks[m].pending = 0;
		memmove(sp->notes, sp->notes + 1,
		        (sp->nnotes - 1) * sizeof(*sp->notes));
		sp->nnotes--;
	}
	if (save_state(sp) == -1)
		log_warnx("%s", sp->err);
	return 0;
}

/* ---- opening ---- */

static int
cmp_seg(const void *a, const void *b)
{
	const struct seg *x = a, *y = b;

	return x->base < y->base ? -1 : x->base > y->base;
}

/* Finds the segment files (and removes temp files of an interrupted state
 * write). */
static int
list_segments(struct spool *sp)
{
	struct dirent *de;
	struct stat st;
	struct seg *s;
	uint64_t base;
	DIR *d;
	int fd;

	if ((fd = dup(sp->dirfd)) == -1 || (d = fdopendir(fd)) == NULL) {
		if (fd != -1)
			close(fd);
		return seterr(sp, errno, "spool: %s", sp->dir);
	}
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, STATE_TMP, sizeof(STATE_TMP) - 1) ==
		    0) {
			unlinkat(sp->dirfd, de->d_name, 0);
			continue;
		}
		if ((base = seg_parse_name(de->d_name)) == 0)
			continue;
		if (fstatat(sp->dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) ==
		        -1 ||
		    !S_ISREG(st.st_mode)) {
			log_warnx("spool: %s/%s: not a regular file; ignored",
			          sp->dir, de->d_name);
			continue;
		}
		if ((st.st_mode & 077) != 0 &&
		    fchmodat(sp->dirfd, de->d_name, 0600, 0) == -1)
			log_warn("spool: chmod %s/%s", sp->dir, de->d_name);
		if (grow(&sp->segs, &sp->capsegs, sp->nsegs + 1,
		         sizeof(*sp->segs)) == -1) {
			closedir(d);
			return seterr(sp, ENOMEM, "spool: %s", sp->dir);
		}
		s = &sp->segs[sp->nsegs++];
		memset(s, 0, sizeof(*s));
		s->base = base;
		/* seg_parse_name checked the length. */
		memcpy(s->name, de->d_name, sizeof(s->name));
	}
	closedir(d);
	if (sp->nsegs > 1)
		qsort(sp->segs, sp->nsegs, sizeof(*sp->segs), cmp_seg);
	return 0;
}

static int
check_config(struct spool *sp)
{
	const struct spool_config *c = &sp->cfg;

	if (c->segment_bytes < SPOOL_MIN_SEGMENT ||
	    c->segment_bytes > SPOOL_MAX_SEGMENT)
		return seterr(sp, EINVAL,
		              "spool: segment size %" PRIu64
		              " outside %d..%llu",
		              c->segment_bytes, SPOOL_MIN_SEGMENT,
		              (unsigned long long)SPOOL_MAX_SEGMENT);
	if (c->max_bytes / 2 < c->segment_bytes)
		return seterr(sp, EINVAL,
		              "spool: max_bytes %" PRIu64
		              " must hold at least two "
		              "segments of %" PRIu64 " bytes",
		              c->max_bytes, c->segment_bytes);
	if (c->max_event == 0 || c->max_event > SPOOLREC_MAX_PAYLOAD ||
	    c->max_event + SPOOLREC_HDR + SPOOL_GAP_RESERVE > c->segment_bytes)
		return seterr(
		    sp, EINVAL,
		    "spool: max_event %zu must be at least 1 and fit a "
		    "segment of %" PRIu64 " bytes with %d bytes to spare",
		    c->max_event, c->segment_bytes,
		    (int)(SPOOLREC_HDR + SPOOL_GAP_RESERVE));
	return 0;
}

static int
open_dir(struct spool *sp, const char *dir)
{
	struct stat st;

	if (mkdir(dir, 0700) == -1 && errno != EEXIST)
		return seterr(sp, errno, "spool: mkdir %s", dir);
	sp->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sp->dirfd == -1 || fstat(sp->dirfd, &st) == -1)
		return seterr(sp, errno, "spool: %s", dir);
	if (st.st_uid != geteuid())
		return seterr(
		    sp, EPERM,
		    "spool: %s belongs to uid %u, not to this process "
		    "(uid %u)",
		    dir, (unsigned)st.st_uid, (unsigned)geteuid());
	if ((st.st_mode & 077) != 0) {
		if (fchmod(sp->dirfd, 0700) == -1)
			return seterr(sp, errno, "spool: chmod 0700 %s", dir);
		log_warnx("spool: %s: mode %03o narrowed to 0700", dir,
		          (unsigned)(st.st_mode & 0777));
	}
	if (flock(sp->dirfd, LOCK_EX | LOCK_NB) == -1) {
		if (errno == EWOULDBLOCK)
			return seterr(sp, 0,
			              "spool: %s is in use by another process "
			              "(another vigil-agent?); a spool has one "
			              "writer, stop the other one first",
			              dir);
		return seterr(sp, errno, "spool: flock %s", dir);
	}
	return 0;
}

static void
spool_free(struct spool *sp)
{
	if (sp == NULL)
		return;
	if (sp->afd != -1)
		close(sp->afd);
	if (sp->rfd != -1)
		close(sp->rfd);
	if (sp->dirfd != -1)
		close(sp->dirfd); /* releases the lock */
	for (size_t i = 0; i < sp->nsegs; i++)
		free(sp->segs[i].bad);
	free(sp->segs);
	free(sp->marks);
	free(sp->notes);
	free(sp->scratch);
	buf_free(&sp->rbuf);
	buf_free(&sp->wbuf);
	free(sp);
}

void
spool_config_default(struct spool_config *c)
{
	c->max_bytes = SPOOL_DEFAULT_MAX_BYTES;
	c->segment_bytes = SPOOL_DEFAULT_SEGMENT;
	c->max_event = SPOOL_DEFAULT_MAX_EVENT;
}

struct spool *
spool_open(const char *dir, const struct spool_config *c, struct buf *err)
{
	struct spool *sp;
	struct seg *a;
	uint64_t next;
	size_t i, n;

	if ((sp = calloc(1, sizeof(*sp))) == NULL) {
		buf_printf(err, "spool: %s: out of memory", dir);
		return NULL;
	}
	sp->dirfd = sp->afd = sp->rfd = -1;
	buf_init(&sp->rbuf, READ_MAX);
	buf_init(&sp->wbuf, SPOOLREC_HDR + SPOOLREC_MAX_PAYLOAD);
	if (c != NULL)
		sp->cfg = *c;
	else
		spool_config_default(&sp->cfg);
	n = strlen(dir);
	while (n > 1 && dir[n - 1] == '/')
		n--;
	if (check_config(sp) == -1)
		goto fail;
	if (n >= sizeof(sp->dir) ||
	    (size_t)snprintf(sp->p_state, sizeof(sp->p_state), "%.*s/%s",
	                     (int)n, dir, STATE_NAME) >= sizeof(sp->p_state)) {
		seterr(sp, ENAMETOOLONG, "spool: %s", dir);
		goto fail;
	}
	memcpy(sp->dir, dir, n);
	sp->dir[n] = '\0';
	if (open_dir(sp, sp->dir) == -1 || load_state(sp) == -1 ||
	    list_segments(sp) == -1)
		goto fail;

	next = sp->next_seq > sp->acked ? sp->next_seq : sp->acked + 1;
	if (sp->nsegs == 0) {
		if (seg_create(sp, next) == -1)
			goto fail;
	} else {
		a = active(sp);
		sp->afd =
		    openat(sp->dirfd, a->name, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
		if (sp->afd == -1) {
			seterr(sp, errno, "spool: %s/%s", sp->dir, a->name);
			goto fail;
		}
	}
	/* The sequence continues after everything that was ever issued:
	 * the state file, the newest segment's name, the records. */
	a = active(sp);
	if (a->base > next)
		next = a->base;
	sp->next_seq = next;
	for (i = 0; i < sp->nsegs; i++) {
		if (seg_scan(sp, i, 1) == -1)
			goto fail;
		if (sp->segs[i].last >= sp->next_seq)
			sp->next_seq = sp->segs[i].last + 1;
		sp->total += sp->segs[i].size;
	}
	if (sp->acked >= sp->next_seq) {
		log_warnx("spool: %s: acknowledged position %" PRIu64
		          " is beyond the spool's last seq %" PRIu64
		          "; using that",
		          sp->p_state, sp->acked, sp->next_seq - 1);
		sp->acked = sp->next_seq - 1;
	}
	sp->cur = sp->nsegs - 1;
	for (i = 0; i < sp->nsegs; i++)
		if (sp->segs[i].ua_off < sp->segs[i].size) {
			sp->cur = i;
			break;
		}
	sp->cur_off = sp->segs[sp->cur].ua_off;
	sp->cur_nbefore = sp->segs[sp->cur].ua_nbefore;
	a = active(sp);
	sp->snap.size = a->size;
	sp->snap.nrec = a->nrec;
	sp->snap.first = a->first;
	sp->snap.last = a->last;
	drop_acked(sp);
	flush_notes(sp);
	if (save_state(sp) == -1)
		log_warnx("%s", sp->err);
	sp->err[0] = '\0';
	return sp;
fail:
	buf_printf(err, "%s", sp->err);
	spool_free(sp);
	return NULL;
}

void
spool_close(struct spool *sp)
{
	if (sp == NULL)
		return;
	if (sync_active(sp) == -1 || save_state(sp) == -1)
		log_warnx("%s", sp->err);
	spool_free(sp);
}

/* ---- the API ---- */

int
spool_append(struct spool *sp, const void *data, size_t len, uint64_t *seq)
{
	struct spool_iov v = {data, len};
	uint64_t s;

	flush_notes(sp);
	if (append_records(sp, SPOOLREC_EVENT, &v, 1, &s, NULL) == -1)
		return -1;
	if (seq != NULL)
		*seq = s;
	return 0;
}

int
spool_append_many(struct spool *sp, const struct spool_iov *ev, size_t n,
                  uint64_t *seqs, size_t *done)
{
	flush_notes(sp);
	return append_records(sp, SPOOLREC_EVENT, ev, n, seqs, done);
}

void
spool_batch_init(struct spool_batch *b)
{
	memset(b, 0, sizeof(*b));
	buf_init(&b->data, READ_MAX);
}

void
spool_batch_free(struct spool_batch *b)
{
	free(b->ev);
	buf_free(&b->data);
	spool_batch_init(b);
}

int
spool_peek_batch(struct spool *sp, size_t max_events, size_t max_bytes,
                 struct spool_batch *b)
{
	struct spoolrec rec;
	uint64_t off;
	size_t i, k, pos;
	int r, rescanned = 0;

	b->n = 0;
	b->bytes = 0;
	buf_reset(&b->data);
	if (max_events > INT_MAX)
		max_events = INT_MAX;
	if (advance_cursor(sp) == -1)
		return -1;
	i = sp->cur;
	off = sp->cur_off;
	while (b->n < max_events) {
		r = seg_read_checked(sp, i, &off, 1, &rec, &rescanned);
		if (r == -1) {
			b->n = b->bytes = 0;
			return -1;
		}
		if (r == 0) {
			if (i + 1 >= sp->nsegs)
				break;
			i++;
			off = 0;
			rescanned = 0;
			continue;
		}
		off += SPOOLREC_HDR + rec.len;
		if (rec.seq <= sp->acked)
			continue;
		if (b->n > 0 && b->bytes + rec.len > max_bytes)
			break;
		if (grow(&b->ev, &b->cap, b->n + 1, sizeof(*b->ev)) == -1 ||
		    buf_append(&b->data, rec.payload, rec.len) == -1) {
			b->n = b->bytes = 0;
			return seterr(sp, ENOMEM, "spool: peek");
		}
		b->ev[b->n].seq = rec.seq;
		b->ev[b->n].kind = rec.kind;
		b->ev[b->n].len = rec.len;
		b->bytes += rec.len;
		b->n++;
	}
	/* Payloads sit back to back in b->data, which may have moved while
	 * it grew: the pointers are set once it is complete. */
	for (k = 0, pos = 0; k < b->n; k++) {
		b->ev[k].data = b->data.data != NULL ? b->data.data + pos
		                                     : (const uint8_t *)"";
		pos += b->ev[k].len;
	}
	/* Damage found while reading is reported after the batch is copied:
	 * the gap record goes to the end, like any later record. */
	flush_notes(sp);
	return (int)b->n;
}

int
spool_ack(struct spool *sp, uint64_t upto_seq)
{
	if (upto_seq >= sp->next_seq)
		return seterr(sp, EINVAL,
		              "spool: acknowledgement up to seq %" PRIu64
		              ", but the last seq issued is %" PRIu64,
		              upto_seq, sp->next_seq - 1);
	if (upto_seq <= sp->acked)
		return 0;
	sp->acked = upto_seq;
	/* Saved before any segment goes, so that a restart resends nothing
	 * acknowledged. When it cannot be saved (a full disk) the segments go
	 * anyway: the center has their events, and space is what a full disk
	 * needs. The next save catches up; a crash before it resends what was
	 * acknowledged since the last one. */
	if (save_state(sp) == -1)
		log_warnx("%s; the acknowledgement is kept in memory", sp->err);
	if (advance_cursor(sp) == -1)
		log_warnx("%s", sp->err);
	drop_acked(sp);
	flush_notes(sp);
	return 0;
}

void
spool_stats(const struct spool *sp, struct spool_stats *st)
{
	const struct seg *c = &sp->segs[sp->cur];

	*st = sp->life;
	st->next_seq = sp->next_seq;
	st->acked = sp->acked;
	st->bytes = sp->total;
	st->segments = sp->nsegs;
	st->pending = c->nrec > sp->cur_nbefore ? c->nrec - sp->cur_nbefore : 0;
	for (size_t i = sp->cur + 1; i < sp->nsegs; i++)
		st->pending += sp->segs[i].nrec;
}

uint64_t
spool_next_seq(const struct spool *sp)
{
	return sp->next_seq;
}

const char *
spool_error(const struct spool *sp)
{
	return sp->err;
}
