/*
 * Fuzz target: the feed parsers (src/proto/intelfeed.c). The first byte
 * picks the format (CSV, list, MISP, STIX), the rest is the file. Besides
 * crashes it checks the promises: every entry handed over is normalised
 * (its kind set, its score 0..100, its verdict known), every note says
 * where and why, and a failed parse says why.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "intelfeed.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
	return 0;
}

static void
note(void *arg, int skipped, const char *where, const char *value,
     const char *why)
{
	(void)arg;
	(void)skipped;
	(void)value;
	if (where == NULL || why == NULL || why[0] == '\0')
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct intel_feedopts o = {INTEL_MALICIOUS, -1, 0, "fuzz"};
	struct intel_sink s = {add, note, NULL};
	struct buf err;

	if (size < 1)
		return 0;
	buf_init(&err, 4096);
	if (intelfeed_parse((enum intel_format)(data[0] % INTEL_FMT_N),
	                    data + 1, size - 1, &o, &s, &err) == -1 &&
	    err.len == 0)
		abort();
	buf_free(&err);
	return 0;
}
