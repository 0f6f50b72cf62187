/*
 * multipart: a streaming multipart/form-data parser (RFC 7578, RFC 2046
 * section 5.1) for vigil-scand's uploads. No I/O: bytes go in, in chunks of
 * any size (a boundary may be split anywhere between two chunks); events
 * come out through callbacks: a part begins (its form field name and
 * filename), spans of the part's data, the part ends. Nothing is buffered
 * but one part's headers (bounded) and at most one boundary's length of
 * held-back bytes, so a sample of any size passes through in constant
 * memory. A fuzz target (fuzz/fuzz_multipart.c).
 *
 * Errors are named in p->err ("multipart: ...") and are final: after -1
 * every further call returns -1 and no callback runs again.
 */
#ifndef VIGIL_PROTO_MULTIPART_H
#define VIGIL_PROTO_MULTIPART_H

#include <stddef.h>
#include <stdint.h>

#define MP_MAX_BOUNDARY 70   /* RFC 2046 */
#define MP_MAX_HEADERS  8192 /* bytes of one part's header block */
#define MP_MAX_NAME     4096 /* field name and filename, decoded */
#define MP_MAX_PARTS    64

struct mp_callbacks {
	/* A part starts; filename is NULL when the part has none. */
	int (*on_part)(void *arg, const char *name, const char *filename);
	/* Data of the current part (never empty). */
	int (*on_data)(void *arg, const uint8_t *p, size_t n);
	/* The current part ended (its final delimiter was seen). */
	int (*on_part_end)(void *arg);
	/* Any callback returning nonzero stops the parser with an error
	 * ("stopped by the receiver"). */
};

enum mp_state {
	MP_PREAMBLE = 0,
	MP_AFTER_DELIM, /* "--" (end) or transport padding + CRLF */
	MP_AFTER_DELIM_LF,
	MP_AFTER_DELIM_DASH,
	MP_HEADERS,
	MP_BODY,
	MP_DONE,
	MP_ERROR,
};

struct mp_parser {
	enum mp_state state;
	/* "\r\n--" + boundary */
	uint8_t delim[MP_MAX_BOUNDARY + 4];
	size_t dlen;
	size_t match; /* delimiter bytes matched and held back */
	uint8_t hdr[MP_MAX_HEADERS];
	size_t hlen;
	unsigned parts;
	const struct mp_callbacks *cb;
	void *arg;
	char err[160];
};

/*
 * Prepares p for a body whose Content-Type header value is ctype
 * ("multipart/form-data; boundary=..."). -1 with p->err set when it is not
 * multipart/form-data or the boundary is missing or invalid.
 */
int mp_init(struct mp_parser *p, const char *ctype,
            const struct mp_callbacks *cb, void *arg);
/* Feeds the next bytes of the body: 0, or -1 with p->err set. Bytes after
 * the closing delimiter (the epilogue) are ignored. */
int mp_feed(struct mp_parser *p, const uint8_t *data, size_t len);
/* The body ended: 0 when the closing delimiter was seen, else -1
 * ("truncated"). */
int mp_finish(struct mp_parser *p);

#endif
