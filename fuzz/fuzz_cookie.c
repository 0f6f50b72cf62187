/*
 * Fuzz target for src/proto/cookie.c: a client's Cookie header. Checks
 * the promises: never a read past the input (which is not NUL-terminated
 * here), a result that fits the output and is NUL-terminated, only
 * cookie-octets in a value found, and a small output refused rather than
 * overrun.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cookie.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[] = {"vigil_session", "a", "x="};
	char *hdr, out[65], small[4];
	size_t i, k;
	int r;

	/* An exact-size heap copy: ASan sees any read past the end. */
	if ((hdr = malloc(size ? size : 1)) == NULL)
		return 0;
	memcpy(hdr, data, size);
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		r = cookie_get(hdr, size, names[i], out, sizeof(out));
		assert(r >= -1 && r < (int)sizeof(out));
		if (r >= 0) {
			assert(strlen(out) == (size_t)r);
			for (k = 0; k < (size_t)r; k++)
				assert(out[k] > 0x20 && out[k] < 0x7f &&
				       out[k] != ';' && out[k] != ',' &&
				       out[k] != '"' && out[k] != '\\');
		}
		r = cookie_get(hdr, size, names[i], small, sizeof(small));
		assert(r >= -1 && r < (int)sizeof(small));
	}
	free(hdr);
	return 0;
}
