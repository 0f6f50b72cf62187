/*
 * istore: vigil-inteld's indicator store on LMDB (docs/inteld.md says
 * why): many lock-free readers (the event loop answering lookups) and one
 * writer (the writer thread: imports, feed and list changes), each write
 * one transaction, so a reader sees the set before it or after it, never
 * half.
 *
 * Named databases:
 *   ind   key body (intelnorm's intel_ind.key) 0x00 source -> record
 *   src   source 0x00 key body -> "" (a source's entries, for replacing
 *         a feed and listing the site lists)
 *   feeds name -> int32 priority + JSON of the rest
 *   meta  "plen" -> uint64[2][129]: entries per IPv4 / IPv6 prefix length
 *         (a lookup probes only lengths that exist); "n:<source>" ->
 *         uint64 entries of that source
 * Sources are feed names ([A-Za-z0-9._-]) and the site's lists
 * "site:allow" and "site:block".
 */
#ifndef VIGIL_ISTORE_H
#define VIGIL_ISTORE_H

#include <jansson.h>
#include <lmdb.h>

#include "buf.h"
#include "intelfeed.h"

#define ISTORE_ALLOW "site:allow"
#define ISTORE_BLOCK "site:block"

struct istore;

int istore_open(const char *dir, long long map_size, struct istore **out,
                struct buf *err);
void istore_close(struct istore *s);

/*
 * Readers (any thread: each has a read transaction of its own, kept
 * between uses; a thread that read calls istore_read_release before it
 * ends, istore_close does it for the calling thread). istore_lookup answers one
 * indicator: {"indicator", "type", "verdict", "score", "decided_by",
 * "sources": [...]}, verdict "unknown" when nothing matched; NULL when the
 * store failed (logged). Lookups between istore_read_begin and _end share
 * one snapshot (a batch).
 */
int istore_read_begin(struct istore *s);
void istore_read_end(struct istore *s);
void istore_read_release(struct istore *s);
json_t *istore_lookup(struct istore *s, const struct intel_ind *q,
                      long long now);
/* The same answer as istore_lookup, written to out as JSON text (as
 * json_dumps(JSON_COMPACT) would write it) without building it: lookups
 * answer from this. *verdict: the verdict (intelfeed.h), -1 unknown.
 * 0, or -1 when the store failed (logged). */
int istore_lookup_text(struct istore *s, const struct intel_ind *q,
                       long long now, struct buf *out, int *verdict);
/* Entries of a source (site lists): [{indicator, type, ...}], at most max. */
json_t *istore_list_source(struct istore *s, const char *source, size_t max);
/* Feeds: [{name, priority, description, indicators, ...}]. */
json_t *istore_feeds(struct istore *s);
/* One feed's record (new reference) or NULL. */
json_t *istore_feed_get(struct istore *s, const char *name);
/* {"indicators": total, "by_source": {...}, "by_kind": {...}}. */
json_t *istore_stats(struct istore *s);

/* The writer (one thread). Every change happens inside a transaction. */
struct iwtxn;
struct iwtxn *istore_write_begin(struct istore *s, struct buf *err);
int istore_write_commit(struct iwtxn *w, struct buf *err);
void istore_write_abort(struct iwtxn *w);
/* 1 new, 0 replaced an entry of the same source, -1 store failure. */
int istore_put(struct iwtxn *w, const char *source, const struct intel_rec *r,
               long long now);
/* 1 removed, 0 none, -1 failure. */
int istore_del(struct iwtxn *w, const char *source, const struct intel_ind *q);
/* Removes every entry of source; the number removed or -1. */
long long istore_del_source(struct iwtxn *w, const char *source);
/* Entries source holds in w's view. */
long long istore_count(struct iwtxn *w, const char *source);

/*
 * A bulk change of one source (an import): the entries are gathered in
 * memory (istore_bulk_put, _del), then istore_bulk_apply sorts them in
 * the store's key order and writes them inside w in that order, appending
 * (MDB_APPEND) past the database's last key. Writing in key order keeps
 * LMDB's dirty pages few: inserted in a feed's own order, a large import
 * touches pages all over the tree and LMDB spills them over and over
 * (docs/performance.md). A key given twice: the last one counts.
 * With replace, entries of source the bulk does not hold are removed (a
 * full import); without, they stay (a delta) and only _del removes.
 * Unchanged entries (the same record but for the time it was added) are
 * not written again.
 */
struct ibulk;
struct ibulk_counts {
	long long added, changed, unchanged, removed, kept;
};
struct ibulk *istore_bulk_new(long long now);
void istore_bulk_free(struct ibulk *b);
int istore_bulk_put(struct ibulk *b, const struct intel_rec *r);
int istore_bulk_del(struct ibulk *b, const struct intel_ind *q);
/* istore_bulk_apply gives up (-1, ECANCELED logged) once *flag is set
 * (read atomically; the caller aborts its transaction). */
void istore_bulk_set_cancel(struct ibulk *b, const int *flag);
/* Bytes the bulk holds (its arena and index). */
size_t istore_bulk_size(const struct ibulk *b);
/* keep (may be NULL), with replace: asked about each entry the bulk does
 * not hold, with the entry's reference; 1 keeps it (a MISP event that did
 * not change). */
typedef int (*ibulk_keep)(void *arg, const char *ref, size_t len);
int istore_bulk_apply(struct iwtxn *w, const char *source, struct ibulk *b,
                      int replace, ibulk_keep keep, void *karg,
                      struct ibulk_counts *c);
/* A walk over a source's entries in key order, in a snapshot of its own
 * (the environment is opened MDB_NOTLS, so it may stay open across turns
 * of the event loop while other reads come and go): an export. _next
 * fills r (indicator text and kind, not its key; the record's fields)
 * and *added: 1, 0 at the end, -1 when the store failed. */
struct iiter;
struct iiter *istore_iter_new(struct istore *s, const char *source);
int istore_iter_next(struct iiter *it, struct intel_rec *r, long long *added);
void istore_iter_free(struct iiter *it);

/* Feed records: the JSON (borrowed) is stored with its "priority". */
int istore_feed_put(struct iwtxn *w, const char *name, json_t *rec);
json_t *istore_feed_wget(struct iwtxn *w, const char *name);
int istore_feed_del(struct iwtxn *w, const char *name);

#endif
