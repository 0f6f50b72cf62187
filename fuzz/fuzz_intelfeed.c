/*
 * Fuzz target: the feed parsers (src/proto/intelfeed.c). The first byte
 * picks the format (CSV, list, MISP, STIX) and, from its bit 4, the
 * delta sink (revoked STIX objects handed to del, MISP events asked about
 * and every other one passed over), the rest is the file. Besides
 * crashes it checks the promises: every entry handed over is normalised
 * (its kind set, its score 0..100, its verdict known), every note says
 * where and why, everything that goes into JSON is UTF-8, and a failed
 * parse says why.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "intelfeed.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* 1 when s is valid UTF-8 (jansson refuses the others). */
static int
utf8(const char *s)
{
	json_t *j = json_string(s);

	json_decref(j);
	return j != NULL;
}

static int
add(void *arg, const struct intel_rec *r)
{
	(void)arg;
	if (r->ind.kind == INTEL_ANY || r->ind.kind >= INTEL_NKINDS ||
	    r->score < 0 || r->score > 100 || r->verdict < INTEL_BENIGN ||
	    r->verdict > INTEL_MALICIOUS ||
	    memchr(r->tags, '\0', sizeof(r->tags)) == NULL ||
	    memchr(r->reference, '\0', sizeof(r->reference)) == NULL)
		abort();
	/* what goes into JSON answers is UTF-8 */
	if (!utf8(r->tags) || !utf8(r->reference))
		abort();
	return 0;
}

static void
note(void *arg, int skipped, const char *where, const char *value,
     const char *why)
{
	json_t *j;

	(void)arg;
	(void)skipped;

	if (where == NULL || why == NULL || why[0] == '\0')
		abort();
	/* the report is JSON: every piece must be UTF-8 */
	j = json_pack("{s:s, s:s, s:s?}", "where", where, "why", why, "value",
	              value);
	if (j == NULL)
		abort();
	json_decref(j);
}

/* MISP events of a delta: every other one passed over; the uuid is a
 * manifest key (a C string). */
static int
event(void *arg, const char *uuid, long long ts)
{
	int *n = arg;

	(void)ts;
	if (uuid == NULL)
		abort();
	return (*n)++ % 2;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct intel_feedopts o = {INTEL_MALICIOUS, -1, 0, "fuzz"};
	struct intel_sink s = {add, note, NULL, NULL, NULL};
	struct buf err;
	int nev = 0;

	if (size < 1)
		return 0;
	if (data[0] & 0x10) {
		s.del = add;
		s.event = event;
		s.arg = &nev;
	}
	buf_init(&err, 4096);
	if (intelfeed_parse((enum intel_format)(data[0] % INTEL_FMT_N),
	                    data + 1, size - 1, &o, &s, &err) == -1 &&
	    err.len == 0)
		abort();
	buf_free(&err);
	return 0;
}
