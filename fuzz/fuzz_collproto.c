/*
 * Fuzz target: the collector feed's frame finder and message parser and
 * the case key (src/proto/collproto.c). Besides crashes it checks the
 * promises: a frame lies inside the input, a parsed message has a known
 * kind and NUL-terminated fields, a chunk's content is within its limit,
 * and every case key is NUL-terminated.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "collproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *msg;
	size_t need, mlen;
	struct coll_msg m;
	struct buf err;
	long n;

	n = collproto_frame(data, size, &need, &msg, &mlen);
	if (n > 0 &&
	    (msg < data || msg + mlen > data + size || (size_t)n > size))
		abort();
	buf_init(&err, 4096);
	if (collproto_parse(data, size, &m, &err) == 0) {
		char key[COLL_MAX_KEY + 1], rule[COLL_MAX_RULE + 1];
		char path[COLL_MAX_PATH + 1], sha[65];

		if (m.kind < COLL_EVENT || m.kind > COLL_CHUNK ||
		    memchr(m.agent_id, '\0', sizeof(m.agent_id)) == NULL ||
		    (m.kind == COLL_CHUNK &&
		     (m.bin == NULL || m.binlen > COLL_CHUNK_MAX ||
		      strlen(m.sha256) != 64)))
			abort();
		if (m.kind == COLL_EVENT &&
		    (collproto_case_key(m.data, key, rule, path, sha) != 0 ||
		     strlen(key) > COLL_MAX_KEY))
			abort();
		collproto_free(&m);
	} else if (err.len == 0)
		abort();
	buf_free(&err);
	return 0;
}
