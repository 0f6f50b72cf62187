/*
 * Fuzz target: the syslog listener's parser (src/proto/syslogparse.c).
 * Besides crashes it checks the promises: frames lie inside the input and
 * within the limit, a parsed message is a JSON object that serialises (so
 * all its text is valid UTF-8), a refused one says why, and the raw form
 * of any input is a valid JSON string.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "syslogparse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *m;
	size_t n, off = 0;
	struct buf err;
	long long t;
	int sev;
	long r;
	json_t *o;
	char *s;

	buf_init(&err, 4096);
	while (off < size) {
		r = syslogparse_frame(data + off, size - off, 1024, &m, &n);
		if (r == -1 || r == -2)
			break;
		if (r <= 0 || (size_t)r > size - off || m < data + off ||
		    m + n > data + off + (size_t)r || n > 1024)
			abort();
		off += (size_t)r;
		buf_reset(&err);
		o = syslogparse_message(m, n, &sev, &t, &err);
		if (o == NULL) {
			if (err.len == 0)
				abort();
			continue;
		}
		if (!json_is_object(o) || sev < 0 || sev > 7 ||
		    (s = json_dumps(o, JSON_COMPACT)) == NULL)
			abort();
		free(s);
		json_decref(o);
	}
	o = syslogparse_raw_string(data, size);
	if (o == NULL || (s = json_dumps(o, JSON_ENCODE_ANY)) == NULL)
		abort();
	free(s);
	json_decref(o);
	buf_free(&err);
	return 0;
}
