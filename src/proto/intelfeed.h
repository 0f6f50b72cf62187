/*
 * intelfeed: the parsers of the threat-intelligence feed formats
 * vigil-inteld imports, pure (bytes in, no I/O): CSV with a header naming
 * the columns, plain lists (one indicator a line), MISP feeds (the
 * manifest.json + one JSON file per event layout, sent as one JSON object
 * of file name -> content, or a single event file) and STIX 2.1 bundles.
 * Each entry found is normalised (intelnorm) and handed to the sink; each
 * entry that cannot be used is noted with where it is and why, either as
 * rejected (it claims to be an indicator and is broken: a bad value, a
 * wrong type) or as skipped (well formed but not something inteld holds:
 * an unsupported STIX pattern, a MISP attribute type or to_ids false).
 * A problem with the file as a whole (bad JSON, a truncated file, a CSV
 * without an indicator column, an event the manifest lists missing)
 * fails the parse: -1 with the reason, and the caller keeps the old set.
 * Each parser is a fuzz target (fuzz/fuzz_intelfeed.c).
 */
#ifndef VIGIL_INTELFEED_H
#define VIGIL_INTELFEED_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "intelnorm.h"

enum intel_verdict {
	INTEL_UNKNOWN = 0,
	INTEL_BENIGN,
	INTEL_SUSPICIOUS,
	INTEL_MALICIOUS,
};

const char *intel_verdict_name(int v);
/* "benign" ... "malicious"; -1 when unknown. */
int intel_verdict_parse(const char *s, size_t n);
/* Replaces each byte of s that is not part of valid UTF-8 with '?' (the
 * text goes into JSON, and a cut may split a character). */
void intel_utf8_clean(char *s);
/* Unix seconds, or ISO 8601 / RFC 3339 ("2026-01-02", "...T03:04:05Z",
 * fractions, "+01:00"): 0 and *out, or -1. */
int intel_time_parse(const char *s, size_t n, long long *out);

struct intel_rec {
	struct intel_ind ind;
	int verdict;                              /* enum intel_verdict */
	int score;                                /* 0..100 */
	char tags[512];                           /* comma-separated */
	long long first_seen, last_seen, expires; /* unix seconds; 0 = none */
	char reference[256];
};

enum intel_format {
	INTEL_FMT_CSV,
	INTEL_FMT_LIST,
	INTEL_FMT_MISP,
	INTEL_FMT_STIX,
	INTEL_FMT_N
};
const char *intel_format_name(enum intel_format f);
enum intel_format intel_format_parse(const char *s); /* INTEL_FMT_N */

struct intel_feedopts {
	int verdict;       /* for entries that carry none (list, CSV) */
	int score;         /* -1: by verdict (100, 50, 0) */
	long long expires; /* for entries that carry none; 0 = never */
	char tags[128];    /* added to every entry */
};

struct intel_sink {
	/* One entry; -1 stops the parse (the store failed): the parser
	 * returns -1 with "stopped" in err. */
	int (*add)(void *arg, const struct intel_rec *r);
	/* skipped 0: rejected; where: "line 7", "event <uuid> attribute
	 * <uuid>", "objects[3] (indicator--...)"; value may be NULL. */
	void (*note)(void *arg, int skipped, const char *where,
	             const char *value, const char *why);
	void *arg;
	/* Optional (NULL: not asked), for delta imports. del gets the
	 * indicators of a revoked STIX object (instead of their being
	 * skipped); -1 stops as add does. event is asked about each event
	 * a MISP manifest lists, with the manifest's "timestamp" (0 when it
	 * has none): 1 passes over the event (its file need not be there),
	 * 0 reads it. */
	int (*del)(void *arg, const struct intel_rec *r);
	int (*event)(void *arg, const char *uuid, long long timestamp);
};

int intelfeed_parse(enum intel_format f, const uint8_t *p, size_t n,
                    const struct intel_feedopts *o, const struct intel_sink *s,
                    struct buf *err);

#endif
