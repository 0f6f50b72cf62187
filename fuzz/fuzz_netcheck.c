/*
 * Fuzz target for src/proto/netcheck.c: an SNTP reply and a proxy's answer
 * to CONNECT, both straight off the network. Checks the promises: never a
 * read past the input (an exact-size heap copy), a head length within the
 * input, a status in 100..599, only known scheme bits, and offsets that are
 * numbers for every reply accepted.
 */
#include <assert.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "netcheck.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t req[SNTP_LEN], *p;
	struct proxy_answer a;
	struct sntp_reply r;
	char why[256], t[64];
	long n;

	if ((p = malloc(size ? size : 1)) == NULL)
		return 0;
	memcpy(p, data, size);
	n = proxy_answer_parse(p, size, &a);
	assert(n == -1 || n == -2 || (n > 0 && (size_t)n <= size));
	if (n > 0) {
		assert(a.status >= 100 && a.status <= 599);
		assert((a.schemes & ~0xfu) == 0);
		proxy_schemes_text(a.schemes, t, sizeof(t));
		assert(strlen(t) < sizeof(t));
	}
	/* The request the reply must answer: its own originate field, so
	 * that the deeper checks are reached too. */
	memset(req, 0, sizeof(req));
	if (size >= SNTP_LEN)
		memcpy(req + 40, p + 24, 8);
	if (sntp_parse(p, size, req, &r, why, sizeof(why)) == 0) {
		assert(r.stratum >= 1 && r.stratum <= 15);
		assert(!isnan(sntp_offset(&r, 1.0e9, 1.0e9)));
	} else {
		assert(strlen(why) < sizeof(why));
	}
	free(p);
	return 0;
}
