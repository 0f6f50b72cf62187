/*
 * jsonarena: jansson's allocations served from one block while a parse is
 * open (no I/O). A batch of events makes tens of thousands of small
 * allocations in jansson (objects, hash tables, keys, strings), all freed
 * together when the batch is done; taking them from a block that is
 * dropped at once costs far less than malloc and free each (see
 * docs/performance.md, "Event ingestion").
 *
 * json_arena_install() sets jansson's allocation functions, once per
 * process (later calls do nothing): outside an open arena, and on its own
 * thread only, they are malloc and free, so jansson values made anywhere
 * else are unaffected. Between json_arena_open() and json_arena_close(),
 * the calling thread's jansson allocations come from the arena, or from
 * malloc once it is full; freeing them is free of cost. Every jansson
 * value made inside must be released before json_arena_close().
 */
#ifndef VIGIL_PROTO_JSONARENA_H
#define VIGIL_PROTO_JSONARENA_H

#include <stddef.h>

struct json_arena {
	char *base; /* NULL: no block, every allocation goes to malloc */
	size_t cap, used;
	int owned; /* base was malloc'd by json_arena_open */
};

void json_arena_install(void);
/* Opens an arena of cap bytes on the calling thread (one at a time). */
void json_arena_open(struct json_arena *a, size_t cap);
/* The same on the caller's block (a small parse: a buffer on the stack
 * costs no malloc at all); it must outlive json_arena_close(). */
void json_arena_open_buf(struct json_arena *a, void *block, size_t cap);
void json_arena_close(struct json_arena *a);

#endif
