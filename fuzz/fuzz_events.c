/*
 * Fuzz target: the parsers of event batches and task status reports
 * (src/proto/events.c). Besides crashes it checks the promises: a parsed
 * batch is sorted with unique sequence numbers and data within the limit.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "events.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct event_batch b;
	struct task_status_in st;
	struct buf err;
	size_t i;

	buf_init(&err, 4096);
	if (events_parse(data, size, &b, &err) == 0) {
		if (b.n == 0 || b.n > EVENTS_MAX_BATCH)
			abort();
		for (i = 0; i < b.n; i++) {
			if (b.ev[i].seq == 0 || b.ev[i].data == NULL ||
			    strlen(b.ev[i].data) > EVENT_MAX_DATA)
				abort();
			if (i > 0 && b.ev[i].seq <= b.ev[i - 1].seq)
				abort();
		}
		event_batch_free(&b);
	} else if (err.len == 0)
		abort();
	buf_reset(&err);
	if (task_status_parse(data, size, &st, &err) == 0)
		task_status_free(&st);
	else if (err.len == 0)
		abort();
	buf_free(&err);
	return 0;
}
