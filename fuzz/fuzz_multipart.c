/*
 * Fuzz target for src/proto/multipart.c: the first input byte picks a
 * chunk size, the rest is a multipart body with boundary "b0und". Besides
 * crashes and leaks it checks the parser's contract: feeding the body in
 * chunks gives exactly the events of feeding it whole (a split boundary is
 * never missed nor invented), callbacks only run while the parser is good,
 * and an error always says why.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

/* Compiled in so libFuzzer instruments the parser (see fuzz_ioc.c). */
#include "multipart.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
f_part(void *arg, const char *name, const char *filename)
{
	struct buf *b = arg;

	if (strlen(name) >= MP_MAX_NAME ||
	    (filename != NULL && strlen(filename) >= MP_MAX_NAME))
		abort();
	buf_printf(b, "[P%s|%s]", name, filename ? filename : "-");
	return 0;
}

static int
f_data(void *arg, const uint8_t *p, size_t n)
{
	if (n == 0)
		abort();
	buf_append(arg, p, n);
	return 0;
}

static int
f_end(void *arg)
{
	buf_puts(arg, "[E]");
	return 0;
}

static const struct mp_callbacks f_cbs = {f_part, f_data, f_end};

static int
f_run(const uint8_t *d, size_t n, size_t chunk, struct buf *out,
      struct mp_parser *p)
{
	size_t off;
	int rc = 0;

	if (mp_init(p, "multipart/form-data; boundary=b0und", &f_cbs, out) != 0)
		abort();
	for (off = 0; off < n && rc == 0; off += chunk)
		rc = mp_feed(p, d + off, n - off < chunk ? n - off : chunk);
	if (rc == 0)
		rc = mp_finish(p);
	if (rc != 0 && (p->err[0] == '\0' || p->state != MP_ERROR))
		abort();
	return rc;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct mp_parser p1, p2;
	struct buf a, b;
	size_t chunk;
	int r1, r2;

	if (size < 1)
		return 0;
	chunk = (size_t)data[0] % 17 + 1;
	data++;
	size--;
	buf_init(&a, 1 << 24);
	buf_init(&b, 1 << 24);
	r1 = f_run(data, size, size ? size : 1, &a, &p1);
	r2 = f_run(data, size, chunk, &b, &p2);
	/* Same verdict; on success the same events (on failure the chunked
	 * run may have passed on data a little past the whole run's). */
	if (r1 != r2 ||
	    (r1 == 0 && (a.len != b.len ||
	                 (a.len > 0 && memcmp(a.data, b.data, a.len) != 0))))
		abort();
	buf_free(&a);
	buf_free(&b);
	return 0;
}
