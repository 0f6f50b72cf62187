/*
 * Fuzz target: the list page cursor decoder (src/proto/cursor.c). Besides
 * crashes it checks the promises: a decoded cursor has a string or
 * integer value and key within the limits, and encoding it again gives a
 * cursor that decodes to the same values.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cursor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cursor c, d;
	struct buf err;
	char *again;

	buf_init(&err, 4096);
	if (cursor_decode(data, size, &c, &err) == 0) {
		if (c.v == NULL || c.k == NULL ||
		    !(json_is_integer(c.v) || json_is_string(c.v)) ||
		    !(json_is_integer(c.k) || json_is_string(c.k)) ||
		    strlen(c.sort) > CURSOR_MAX_SORT)
			abort();
		if ((again = cursor_encode(c.sort, c.v, c.k)) != NULL) {
			buf_reset(&err);
			if (cursor_decode((const uint8_t *)again, strlen(again),
			                  &d, &err) != 0 ||
			    strcmp(c.sort, d.sort) != 0 ||
			    !json_equal(c.v, d.v) || !json_equal(c.k, d.k))
				abort();
			cursor_free(&d);
			free(again);
		}
		cursor_free(&c);
	} else if (err.len == 0)
		abort();
	buf_free(&err);
	return 0;
}
