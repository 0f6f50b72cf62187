/*
 * events.c: parsers of event batches and task status reports from agents.
 * Strict: unknown fields, wrong types, oversize data and duplicate
 * sequence numbers are refused with a message naming the field. The data
 * of an event stays JSON (re-serialised compactly, so what is stored is
 * exactly what was checked).
 *
 * A batch is parsed inside a jsonarena (jansson's many small allocations
 * come from one block) and the events' data are written one after another
 * into one text block, so a batch of any size costs a handful of mallocs.
 */
#include <stdlib.h>
#include <string.h>

#include "events.h"
#include "jsonarena.h"

/* The events' data texts, while the batch is parsed: offsets, since the
 * block may move as it grows. */
struct text {
	char *p;
	size_t len, cap;
	size_t *off; /* per event */
};

/* Appends v's compact text and a NUL; its offset goes to t->off[i]. */
size_t
event_max_data(const char *type)
{
	return strcmp(type, "inventory") == 0 ? EVENT_MAX_INVENTORY
	                                      : EVENT_MAX_DATA;
}

static int
text_dump(struct text *t, json_t *v, size_t i, size_t max)
{
	size_t n;
	char *np;

	for (;;) {
		n = json_dumpb(v, t->p + t->len, t->cap - t->len, JSON_COMPACT);
		if (n == 0)
			return -1;
		if (n < t->cap - t->len)
			break; /* room for the NUL too */
		if (n > max)
			break; /* refused by the caller: no need to keep it */
		if ((np = realloc(t->p, 2 * t->cap + n + 1)) == NULL)
			return -1;
		t->p = np;
		t->cap = 2 * t->cap + n + 1;
	}
	t->off[i] = t->len;
	if (n <= max) {
		t->p[t->len + n] = '\0';
		t->len += n + 1;
	}
	return (int)(n > max);
}

static int
word_ok(const char *s, size_t max, int allow_empty)
{
	size_t i, n = strlen(s);

	if ((n == 0 && !allow_empty) || n > max)
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
		      s[i] == '-' || s[i] == '.'))
			return 0;
	return 1;
}

static int
level_ok(const char *s)
{
	static const char *const levels[] = {"alert", "warning", "notice",
	                                     "info", NULL};
	size_t i;

	for (i = 0; levels[i] != NULL; i++)
		if (strcmp(s, levels[i]) == 0)
			return 1;
	return 0;
}

/* Copies a string member into dst (size n) after checking it. */
static int
get_word(json_t *o, const char *k, char *dst, size_t n, size_t i,
         struct buf *err)
{
	json_t *v = json_object_get(o, k);

	if (v == NULL)
		return 0;
	if (!json_is_string(v) || !word_ok(json_string_value(v), n - 1, 1)) {
		buf_printf(err,
		           "events[%zu].%s: must be a string of a-z, 0-9, "
		           "'_', '-', '.' (at most %zu)",
		           i, k, n - 1);
		return -1;
	}
	memcpy(dst, json_string_value(v), strlen(json_string_value(v)) + 1);
	return 0;
}

static int
parse_one(json_t *o, size_t i, struct event_in *e, struct text *t,
          struct buf *err)
{
	int big;

	const char *k;
	json_t *v;

	if (!json_is_object(o)) {
		buf_printf(err, "events[%zu]: must be an object", i);
		return -1;
	}
	json_object_foreach(o, k, v)
	{
		if (strcmp(k, "seq") != 0 && strcmp(k, "time") != 0 &&
		    strcmp(k, "type") != 0 && strcmp(k, "level") != 0 &&
		    strcmp(k, "task_id") != 0 && strcmp(k, "data") != 0) {
			buf_printf(err, "events[%zu].%.64s: unknown field", i,
			           k);
			return -1;
		}
	}
	v = json_object_get(o, "seq");
	if (!json_is_integer(v) || json_integer_value(v) < 1) {
		buf_printf(err, "events[%zu].seq: must be a positive integer",
		           i);
		return -1;
	}
	e->seq = (uint64_t)json_integer_value(v);
	v = json_object_get(o, "time");
	if (!json_is_integer(v) || json_integer_value(v) < 0) {
		buf_printf(err, "events[%zu].time: must be unix seconds", i);
		return -1;
	}
	e->time = (long long)json_integer_value(v);
	v = json_object_get(o, "type");
	if (!json_is_string(v) ||
	    !word_ok(json_string_value(v), EVENT_MAX_TYPE, 0)) {
		buf_printf(err,
		           "events[%zu].type: required, a-z 0-9 '_' '-' '.', "
		           "at most %d",
		           i, EVENT_MAX_TYPE);
		return -1;
	}
	memcpy(e->type, json_string_value(v), strlen(json_string_value(v)) + 1);
	if (get_word(o, "level", e->level, sizeof(e->level), i, err) == -1 ||
	    get_word(o, "task_id", e->task_id, sizeof(e->task_id), i, err) ==
	        -1)
		return -1;
	if (e->level[0] != '\0' && !level_ok(e->level)) {
		buf_printf(err,
		           "events[%zu].level: must be alert, warning, notice "
		           "or info",
		           i);
		return -1;
	}
	v = json_object_get(o, "data");
	if (v != NULL && !json_is_object(v)) {
		buf_printf(err, "events[%zu].data: must be an object", i);
		return -1;
	}
	if (v == NULL)
		v = json_object(); /* {} */
	else
		json_incref(v);
	big = text_dump(t, v, i, event_max_data(e->type));
	json_decref(v);
	if (big == -1) {
		/* Ours, not the event's: -2, so that the batch is not
		 * refused as if this event were at fault. */
		buf_puts(err, "out of memory");
		return -2;
	}
	if (big) {
		buf_printf(err, "events[%zu].data: larger than %zu bytes", i,
		           event_max_data(e->type));
		return -1;
	}
	return 0;
}

static int
cmp_seq(const void *a, const void *b)
{
	uint64_t x = ((const struct event_in *)a)->seq;
	uint64_t y = ((const struct event_in *)b)->seq;

	return x < y ? -1 : x > y;
}

static int
parse_batch(const uint8_t *p, size_t len, struct event_batch *out,
            struct text *t, struct buf *err)
{
	json_error_t je;
	json_t *root, *a, *o;
	size_t i, n;
	int rc = -1;

	root = json_loadb((const char *)p, len, JSON_REJECT_DUPLICATES, &je);
	if (root == NULL) {
		buf_printf(err, "body: invalid JSON at line %d column %d: %s",
		           je.line, je.column, je.text);
		return -1;
	}
	a = json_object_get(root, "events");
	if (!json_is_object(root) || json_object_size(root) != 1 ||
	    !json_is_array(a)) {
		buf_puts(err, "body: must be {\"events\": [...]}");
		goto fail;
	}
	n = json_array_size(a);
	if (n == 0 || n > EVENTS_MAX_BATCH) {
		buf_printf(err, "events: between 1 and %d events per batch",
		           EVENTS_MAX_BATCH);
		goto fail;
	}
	/* The compact data is about as long as the body, usually less. */
	t->cap = len + 64;
	if ((out->ev = calloc(n, sizeof(*out->ev))) == NULL ||
	    (t->off = calloc(n, sizeof(*t->off))) == NULL ||
	    (t->p = malloc(t->cap)) == NULL) {
		buf_puts(err, "out of memory");
		rc = -2;
		goto fail;
	}
	json_array_foreach(a, i, o)
	{
		out->n = i + 1;
		if ((rc = parse_one(o, i, &out->ev[i], t, err)) != 0)
			goto fail;
		if (out->ev[i].seq > out->max_seq)
			out->max_seq = out->ev[i].seq;
	}
	json_decref(root);
	return 0;
fail:
	json_decref(root);
	return rc;
}

int
events_parse(const uint8_t *p, size_t len, struct event_batch *out,
             struct buf *err)
{
	struct json_arena ar;
	struct text t = {NULL, 0, 0, NULL};
	size_t i;
	int rc;

	memset(out, 0, sizeof(*out));
	/* Room for what jansson makes of a body like the agents' (about 7
	 * times its size); past that, malloc. */
	json_arena_open(&ar, len < (1u << 20) ? 12 * len + 4096 : 16u << 20);
	rc = parse_batch(p, len, out, &t, err);
	json_arena_close(&ar);
	out->text = t.p;
	if (rc != 0)
		goto fail;
	for (i = 0; i < out->n; i++)
		out->ev[i].data = t.p + t.off[i];
	free(t.off);
	t.off = NULL;
	qsort(out->ev, out->n, sizeof(*out->ev), cmp_seq);
	for (i = 1; i < out->n; i++) {
		if (out->ev[i].seq == out->ev[i - 1].seq) {
			buf_printf(err, "events: seq %llu appears twice",
			           (unsigned long long)out->ev[i].seq);
			goto fail;
		}
	}
	return 0;
fail:
	free(t.off);
	event_batch_free(out);
	return rc == -2 ? -2 : -1;
}

void
event_batch_free(struct event_batch *b)
{
	free(b->text);
	free(b->ev);
	memset(b, 0, sizeof(*b));
}

static int
json_member(json_t *root, const char *k, char **dst, struct buf *err)
{
	json_t *v = json_object_get(root, k);

	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_object(v)) {
		buf_printf(err, "%s: must be an object", k);
		return -1;
	}
	if ((*dst = json_dumps(v, JSON_COMPACT)) == NULL) {
		buf_puts(err, "out of memory");
		return -1;
	}
	if (strlen(*dst) > EVENT_MAX_DATA) {
		buf_printf(err, "%s: larger than %d bytes", k, EVENT_MAX_DATA);
		return -1;
	}
	return 0;
}

int
task_status_parse(const uint8_t *p, size_t len, struct task_status_in *out,
                  struct buf *err)
{
	json_error_t je;
	json_t *root, *v;
	const char *k, *st;

	memset(out, 0, sizeof(*out));
	root = json_loadb((const char *)p, len, JSON_REJECT_DUPLICATES, &je);
	if (root == NULL) {
		buf_printf(err, "body: invalid JSON at line %d column %d: %s",
		           je.line, je.column, je.text);
		return -1;
	}
	if (!json_is_object(root)) {
		buf_puts(err, "body: must be an object");
		goto fail;
	}
	json_object_foreach(root, k, v)
	{
		if (strcmp(k, "state") != 0 && strcmp(k, "progress") != 0 &&
		    strcmp(k, "result") != 0 && strcmp(k, "reason") != 0) {
			buf_printf(err, "%.64s: unknown field", k);
			goto fail;
		}
	}
	v = json_object_get(root, "state");
	st = json_is_string(v) ? json_string_value(v) : "";
	if (strcmp(st, "running") == 0)
		out->state = TASK_IN_RUNNING;
	else if (strcmp(st, "done") == 0)
		out->state = TASK_IN_DONE;
	else if (strcmp(st, "failed") == 0)
		out->state = TASK_IN_FAILED;
	else {
		buf_puts(err, "state: must be running, done or failed");
		goto fail;
	}
	if (json_member(root, "progress", &out->progress, err) == -1 ||
	    json_member(root, "result", &out->result, err) == -1)
		goto fail;
	v = json_object_get(root, "reason");
	if (v != NULL) {
		if (!json_is_string(v) ||
		    strlen(json_string_value(v)) >= sizeof(out->reason)) {
			buf_printf(err,
			           "reason: must be a string of at most %zu",
			           sizeof(out->reason) - 1);
			goto fail;
		}
		memcpy(out->reason, json_string_value(v),
		       strlen(json_string_value(v)) + 1);
	}
	if (out->state == TASK_IN_FAILED && out->reason[0] == '\0') {
		buf_puts(err, "reason: required when state is failed");
		goto fail;
	}
	json_decref(root);
	return 0;
fail:
	json_decref(root);
	task_status_free(out);
	return -1;
}

void
task_status_free(struct task_status_in *s)
{
	free(s->progress);
	free(s->result);
	s->progress = s->result = NULL;
}
