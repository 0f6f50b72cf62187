/*
 * buf: growable byte buffers with a hard cap, and string views. Every piece
 * of data carries its length; nothing off the wire is assumed to be
 * NUL-terminated. Appending past the cap fails cleanly (-1, errno ENOBUFS)
 * and the error sticks (curl's dynbuf): every later append fails too, so a
 * dropped middle piece can never pass unnoticed. The place that uses the
 * result checks it once, with buf_ok() or buf_steal() (NULL).
 */
#ifndef VIGIL_BUF_H
#define VIGIL_BUF_H

#include <stddef.h>
#include <stdint.h>

struct buf {
	uint8_t *data; /* always NUL-terminated when non-NULL (not in len) */
	size_t len;
	size_t cap;
	size_t max; /* hard cap on len */
	int failed; /* an append failed; sticky until buf_reset/buf_free */
};

#define BUF_MAX_DEFAULT (16u * 1024 * 1024)

void buf_init(struct buf *b, size_t max);
void buf_free(struct buf *b);  /* frees and re-inits with the same max */
void buf_reset(struct buf *b); /* len = 0 and no error, keeps memory */
/* Rolls back to len (at most the current length) and clears the error: for
 * a builder that handled a failed piece by leaving it out whole. */
void buf_setlen(struct buf *b, size_t len);
/* 0 when every append since init/reset succeeded; else -1 with errno set
 * (ENOBUFS or ENOMEM). */
int buf_ok(const struct buf *b);
int buf_append(struct buf *b, const void *p, size_t n);
int buf_puts(struct buf *b, const char *s);
int buf_putc(struct buf *b, int c);
int buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The contents as a C string ("" for an empty buffer); valid until the next
 * change. */
const char *buf_cstr(const struct buf *b);
/* Hands the memory to the caller (NUL-terminated, must free()); the buffer
 * is left empty. Returns NULL on allocation failure, or when an append
 * failed (the buffer is then emptied and reset). */
char *buf_steal(struct buf *b, size_t *len);

/* String view: pointer + length, never owns memory. */
struct strv {
	const char *p;
	size_t len;
};

struct strv strv_make(const char *p, size_t len);
struct strv strv_cstr(const char *s);
int strv_eq(struct strv a, const char *s);     /* exact, case-sensitive */
int strv_casceq(struct strv a, const char *s); /* ASCII case-insensitive */
int strv_startswith(struct strv a, const char *prefix);
struct strv strv_trim(struct strv a); /* ASCII whitespace */
/* Splits *s at the first sep: returns the head, *s becomes the rest (after
 * sep); when sep is absent the head is all of *s and *s becomes empty. */
struct strv strv_split(struct strv *s, char sep);
/* Base-10 integer in [min, max], whole view, no sign unless min < 0. */
int strv_to_ll(struct strv s, long long min, long long max, long long *out);
/* malloc'd NUL-terminated copy, NULL on failure. */
char *strv_dup(struct strv s);

/* strtoll with full-string and range checks; the replacement for atoi. */
int str_to_ll(const char *s, long long min, long long max, long long *out);
/* 1 when s (at most max bytes read) is a canonical UUID: 8-4-4-4-12
 * lowercase hex digits, as agent and task ids are. */
int str_is_uuid(const char *s, size_t max);
/* 1 when s is a name as the center accepts them for templates, schedules
 * and forwarding targets: 1..64 of [A-Za-z0-9._-]. */
int str_is_name(const char *s);
/* The same character rule for the n bytes at s, 1..max of them (labels,
 * label filters). */
int str_name_ok(const char *s, size_t n, size_t max);
/* Duration "90", "30s", "15m", "12h", "7d", "2w" to seconds (> 0). */
int str_to_duration(const char *s, long long *secs);
/* Size "512", "64k", "16M", "2G" (binary multiples) to bytes. */
int str_to_size(const char *s, long long *bytes);
/* Value of one hex digit (either case), -1 for anything else. */
int hex_value(int c);
/* Percent-decodes a URL path of n bytes into a new string (%XY with two
 * hex digits; anything else stays as it is). NULL when out of memory or
 * when it holds an encoded NUL, which would cut the path short in every C
 * string API later on. */
char *path_decode(const char *raw, size_t n);
/* Lowercase hex of n bytes into out (2n+1 bytes). */
void hex_encode(const uint8_t *p, size_t n, char *out);

#endif
