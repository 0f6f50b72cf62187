/*
 * spool: the agent's on-disk event spool (docs/spool.md). Every event gets
 * a per-agent sequence number and is made durable here before it is sent;
 * it stays until the center acknowledges it. Append-only segment files of
 * checksummed records (src/proto/spoolrec.h), a small state file with the
 * acknowledged position, a bound on the bytes used (the oldest events give
 * way, and a gap event says which), and recovery from torn tails and corrupt
 * records at open.
 *
 * One process writes a spool at a time (flock on the directory); the API is
 * not thread-safe. Calls that fail return -1 with errno set and the reason
 * in spool_error(); they do not log it themselves. Corruption found while
 * reading is not a failure: it is logged (log_warnx, naming file and offset),
 * counted in the stats and reported to the center as a gap event.
 */
#ifndef VIGIL_AGENT_SPOOL_H
#define VIGIL_AGENT_SPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "spoolrec.h"

#define SPOOL_DEFAULT_MAX_BYTES (64ull * 1024 * 1024)
#define SPOOL_DEFAULT_SEGMENT   (4ull * 1024 * 1024)
#define SPOOL_DEFAULT_MAX_EVENT (256u * 1024)
#define SPOOL_MIN_SEGMENT       1024
#define SPOOL_MAX_SEGMENT       (256ull * 1024 * 1024)
/* Room kept in each segment and in the bound for one gap record. */
#define SPOOL_GAP_RESERVE (SPOOLREC_HDR + 484)

struct spool_config {
	uint64_t max_bytes;     /* all segments together; >= 2 segments */
	uint64_t segment_bytes; /* rotation size of a segment file */
	size_t max_event;       /* largest payload accepted by append */
};

struct spool_stats {
	uint64_t next_seq; /* the seq the next record will get */
	uint64_t acked;    /* everything <= acked is acknowledged */
	uint64_t pending;  /* records (events and gaps) not yet acknowledged */
	uint64_t bytes;    /* size of all segment files */
	uint64_t segments;
	/* Lifetime counters, kept in the state file across restarts. */
	uint64_t dropped_events;  /* unacknowledged records lost to overflow */
	uint64_t corrupt_events;  /* records lost to corruption */
	uint64_t corrupt_regions; /* damaged stretches skipped */
	uint64_t corrupt_bytes;
	uint64_t gap_events; /* gap records written */
	uint64_t torn_tails; /* unfinished records truncated at open */
	uint64_t torn_bytes;
};

struct spool_event {
	uint64_t seq;
	uint8_t kind;        /* SPOOLREC_EVENT or SPOOLREC_GAP */
	const uint8_t *data; /* valid until the next peek into the batch */
	size_t len;
};

/* What spool_append_many takes: one payload (an event's JSON). */
struct spool_iov {
	const void *data;
	size_t len;
};

struct spool_batch {
	struct spool_event *ev;
	size_t n;
	size_t bytes; /* sum of ev[i].len */
	size_t cap;   /* private */
	struct buf data;
};

struct spool;

/* Defaults: 64 MiB in 4 MiB segments, events up to 256 KiB. */
void spool_config_default(struct spool_config *c);

/*
 * Opens (creating when missing, mode 0700) the spool in dir and takes its
 * lock; a second opener is refused with a message saying that another
 * process holds it. Recovers from a crash: a torn tail of the newest
 * segment is truncated, corrupt records are skipped (logged, counted, a gap
 * event appended), fully acknowledged segments are deleted. c may be NULL
 * for the defaults. NULL on failure, with the reason in err.
 */
struct spool *spool_open(const char *dir, const struct spool_config *c,
                         struct buf *err);
/* Saves the state and releases the lock. NULL is accepted. */
void spool_close(struct spool *sp);

/*
 * Appends one event and returns once it is durable (fdatasync). *seq (may
 * be NULL) receives its sequence number. When the spool is full the oldest
 * segments are dropped first and a gap event is written before this one.
 * -1 when the event is too large (EMSGSIZE) or cannot be written (ENOSPC,
 * EIO, ...): nothing already in the spool is lost, and a failed event does
 * not use up a sequence number unless the failure left its bytes behind.
 */
int spool_append(struct spool *sp, const void *data, size_t len, uint64_t *seq);
/*
 * Appends n events with one fdatasync for the batch (plus one per segment
 * rotation or overflow within it). seqs (may be NULL) receives n sequence
 * numbers: increasing, consecutive unless a gap event was written between
 * two of them. On failure -1, and *done (may be NULL) says how many leading
 * events of the batch are durable anyway (seqs[0..*done) valid).
 */
int spool_append_many(struct spool *sp, const struct spool_iov *ev, size_t n,
                      uint64_t *seqs, size_t *done);

void spool_batch_init(struct spool_batch *b);
void spool_batch_free(struct spool_batch *b);
/*
 * Fills b with the oldest unacknowledged records, in order: at most
 * max_events, and at most max_bytes of payload, except that the first
 * record is returned even when it alone is larger (else it would block the
 * spool). Peeking again without an ack returns the same records. Returns
 * the number of records (0: nothing to send) or -1.
 */
int spool_peek_batch(struct spool *sp, size_t max_events, size_t max_bytes,
                     struct spool_batch *b);
/*
 * The center has stored everything up to upto_seq: persists that (state
 * file, written atomically) and deletes the segments whose records are all
 * acknowledged (never the newest one, which keeps the sequence going).
 * Acknowledging less than before is a no-op; more than was ever issued is
 * an error (EINVAL). When the state cannot be saved (full disk) the
 * acknowledgement still holds in memory and the segments are still deleted
 * (logged); a crash before the next save resends what it covered.
 */
int spool_ack(struct spool *sp, uint64_t upto_seq);

void spool_stats(const struct spool *sp, struct spool_stats *st);
/* The sequence number the next record will get. */
uint64_t spool_next_seq(const struct spool *sp);
/* The reason of the last failure ("" when none). */
const char *spool_error(const struct spool *sp);

#endif
