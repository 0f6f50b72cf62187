/*
 * Fuzz target: the indicator normalisers (src/proto/intelnorm.c). The
 * first byte picks the kind, the rest is the text. Besides crashes it
 * checks the promises: a normalised indicator is NUL-terminated within
 * its buffer, its key fits, and normalising the normalised text again
 * gives the same key and text (normal forms are fixed points).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "intelnorm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct intel_ind a, b;
	enum intel_kind k;
	char why[200];
	size_t n;

	if (size < 1)
		return 0;
	k = (enum intel_kind)(data[0] % INTEL_NKINDS);
	if (intel_parse(k, (const char *)data + 1, size - 1, &a, why,
	                sizeof(why)) == -1) {
		if (memchr(why, '\0', sizeof(why)) == NULL || why[0] == '\0')
			abort();
		return 0;
	}
	n = strnlen(a.text, sizeof(a.text));
	if (n == sizeof(a.text) || a.keylen == 0 || a.keylen > INTEL_KEY_MAX ||
	    a.kind == INTEL_ANY || a.kind >= INTEL_NKINDS)
		abort();
	if (intel_parse(a.kind, a.text, n, &b, why, sizeof(why)) == -1)
		abort();
	if (b.keylen != a.keylen || memcmp(a.key, b.key, a.keylen) != 0 ||
	    strcmp(a.text, b.text) != 0)
		abort();
	return 0;
}
