/*
 * events: parsers of what agents send about their work (untrusted input,
 * no I/O): event batches and task status reports. Bytes in, a checked
 * struct out, or a message naming the offending field. Fuzz target:
 * fuzz/fuzz_events.c.
 */
#ifndef VIGIL_PROTO_EVENTS_H
#define VIGIL_PROTO_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "buf.h"

#define EVENTS_MAX_BATCH 1000  /* events per POST /v1/events */
#define EVENT_MAX_DATA   65536 /* bytes of one event's data, as JSON */
/* An inventory (every process, socket, user and package of a host) is
 * one event: a busy server's is well over 64 KiB. */
#define EVENT_MAX_INVENTORY (4 * 1024 * 1024)
#define EVENT_MAX_TYPE      32

/* The most bytes of data an event of this type may carry. */
size_t event_max_data(const char *type);

struct event_in {
	uint64_t seq;                  /* per-agent sequence number, >= 1 */
	long long time;                /* agent's clock, unix seconds */
	char type[EVENT_MAX_TYPE + 1]; /* [a-z0-9_.-]+: finding, gap, ... */
	char level[16];                /* "", alert, warning, notice, info */
	char task_id[64];              /* "" or the task it belongs to */
	char *data;                    /* compact JSON object, in the text */
};

struct event_batch {
	struct event_in *ev;
	size_t n;
	uint64_t max_seq;
	char *text; /* every event's data, NUL-separated (one malloc'd block) */
};

/*
 * {"events": [{"seq": 1, "time": 1795000000, "type": "finding",
 *   "level": "alert", "task_id": "...", "data": {...}}, ...]}
 * Sequence numbers must be unique within the batch. Returns 0 or -1 with a
 * message such as "events[3].seq: must be a positive integer"; -2 when
 * memory ran out, which is no fault of the batch (answer it "send again",
 * not refused: an agent sets aside an event a refusal names).
 */
int events_parse(const uint8_t *p, size_t len, struct event_batch *out,
                 struct buf *err);
void event_batch_free(struct event_batch *b);

enum task_state_in {
	TASK_IN_RUNNING = 1,
	TASK_IN_DONE,
	TASK_IN_FAILED,
};

struct task_status_in {
	enum task_state_in state;
	char *progress; /* compact JSON object or NULL */
	char *result;   /* compact JSON object or NULL */
	char reason[512];
};

/* {"state": "running"|"done"|"failed", "progress": {...},
 *  "result": {...}, "reason": "..."}; reason required for failed. */
int task_status_parse(const uint8_t *p, size_t len, struct task_status_in *out,
                      struct buf *err);
void task_status_free(struct task_status_in *s);

#endif
