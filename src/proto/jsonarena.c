/*
 * jsonarena.c: a bump allocator under jansson for the duration of a parse.
 * Allocation rounds to 16 bytes (malloc's alignment here); a pointer is
 * the arena's when it lies within the open block, and free() otherwise.
 * Under AddressSanitizer the block starts poisoned and each allocation is
 * unpoisoned, with a poisoned gap after it, so overflows are still caught.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include <jansson.h>

#include "jsonarena.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ARENA_ASAN 1
#endif
#elif defined(__SANITIZE_ADDRESS__)
#define ARENA_ASAN 1
#endif

#ifdef ARENA_ASAN
#include <sanitizer/asan_interface.h>
#define ARENA_GAP 16
#else
#define ASAN_POISON_MEMORY_REGION(p, n)   ((void)(p), (void)(n))
#define ASAN_UNPOISON_MEMORY_REGION(p, n) ((void)(p), (void)(n))
#define ARENA_GAP                         0
#endif

#define ARENA_ALIGN 16

static _Thread_local struct json_arena *cur;
static pthread_once_t install_once = PTHREAD_ONCE_INIT;

static int
in_arena(const struct json_arena *a, const void *p)
{
	uintptr_t u = (uintptr_t)p, b = (uintptr_t)a->base;

	return a->base != NULL && u >= b && u - b < a->cap;
}

static void *
arena_malloc(size_t n)
{
	struct json_arena *a = cur;
	size_t need =
	    (n + ARENA_GAP + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);

	if (a != NULL && a->base != NULL && need >= n &&
	    a->cap - a->used >= need) {
		void *p = a->base + a->used;

		a->used += need;
		ASAN_UNPOISON_MEMORY_REGION(p, n);
		return p;
	}
	return malloc(n);
}

static void
arena_free(void *p)
{
	struct json_arena *a = cur;

	if (a != NULL && in_arena(a, p))
		return; /* dropped with the block */
	free(p);
}

static void
install(void)
{
	json_set_alloc_funcs(arena_malloc, arena_free);
}

void
json_arena_install(void)
{
	pthread_once(&install_once, install);
}

void
json_arena_open(struct json_arena *a, size_t cap)
{
	json_arena_install();
	a->used = 0;
	a->cap = cap;
	a->owned = 1;
	/* Without the block, jansson simply uses malloc. */
	if ((a->base = malloc(cap)) == NULL)
		a->cap = 0;
	else
		ASAN_POISON_MEMORY_REGION(a->base, cap);
	cur = a;
}

void
json_arena_open_buf(struct json_arena *a, void *block, size_t cap)
{
	json_arena_install();
	a->used = 0;
	a->cap = cap;
	a->owned = 0;
	a->base = block;
	if (a->base == NULL)
		a->cap = 0;
	else
		ASAN_POISON_MEMORY_REGION(a->base, cap);
	cur = a;
}

void
json_arena_close(struct json_arena *a)
{
	if (cur == a)
		cur = NULL;
	if (a->base != NULL)
		ASAN_UNPOISON_MEMORY_REGION(a->base, a->cap);
	if (a->owned)
		free(a->base);
	a->base = NULL;
	a->cap = a->used = 0;
}
