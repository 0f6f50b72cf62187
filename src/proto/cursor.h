/*
 * cursor: the page cursor of the admin API's list endpoints. Clients
 * treat it as opaque and send it back, so it is untrusted input: parsed
 * here with no I/O and checked member by member. It is the hex of a small
 * JSON object {"s": sort, "v": sort value, "k": key value} whose values
 * are strings or integers. Fuzz target: fuzz/fuzz_cursor.c.
 */
#ifndef VIGIL_PROTO_CURSOR_H
#define VIGIL_PROTO_CURSOR_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "buf.h"

#define CURSOR_MAX_HEX   2048 /* characters of a cursor */
#define CURSOR_MAX_SORT  127  /* bytes of the sort it was made for */
#define CURSOR_MAX_VALUE 512  /* bytes of a string value */

struct cursor {
	char sort[CURSOR_MAX_SORT + 1];
	json_t *v; /* value of the sort column: string or integer */
	json_t *k; /* value of the key: string or integer */
};

/* The cursor text (malloc'd), or NULL when the values do not fit. */
char *cursor_encode(const char *sort, json_t *v, json_t *k);
/* 0 with c filled (cursor_free it), or -1 with a message in err. */
int cursor_decode(const uint8_t *p, size_t n, struct cursor *c,
                  struct buf *err);
void cursor_free(struct cursor *c);

#endif
