/*
 * Fuzz target for src/scan/ioc.c: arbitrary bytes as an IOC file. Besides
 * crashes, leaks and hangs (regcomp included: the parser bounds what it
 * hands to regcomp) it checks the parser's contract: a success yields only
 * entries within the documented limits, a failure always says why and
 * leaves the set exactly as it was.
 */
#include <regex.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "ioc.h"

/* The parser itself, compiled into this file: -fsanitize=fuzzer
 * instruments only the target's own translation unit, and without the
 * parser's edges libFuzzer would be searching blind. The library's ioc.o
 * is then never pulled in, so nothing is defined twice. */
#include "ioc.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_entry(const struct ioc *e)
{
	if (e->score < IOC_SCORE_MIN || e->score > IOC_SCORE_MAX ||
	    e->line == 0 || e->desc == NULL || strlen(e->desc) > IOC_MAX_DESC)
		abort();
	switch (e->type) {
	case IOC_MD5:
	case IOC_SHA1:
	case IOC_SHA256:
		if (e->pattern != NULL || e->re != NULL)
			abort();
		break;
	case IOC_FILENAME:
		if (e->pattern == NULL || e->re == NULL ||
		    strlen(e->pattern) == 0 ||
		    strlen(e->pattern) > IOC_MAX_PATTERN)
			abort();
		/* a compiled pattern must be usable */
		(void)regexec(e->re, "/tmp/Vigil/evil-tool.exe", 0, NULL, 0);
		break;
	default:
		abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ioc_set s;
	struct buf err;
	size_t i, n;

	ioc_set_init(&s);
	buf_init(&err, 64 * 1024);
	if (ioc_parse(data, size, "fuzz.ioc", &s, &err) == 0) {
		for (i = 0; i < s.n; i++)
			check_entry(&s.v[i]);
		/* appending the same file again doubles the set */
		n = s.n;
		if (ioc_parse(data, size, "fuzz.ioc", &s, &err) != 0 ||
		    s.n != 2 * n)
			abort();
	} else {
		if (err.len == 0 || s.n != 0)
			abort(); /* a failure must say why, and add nothing */
	}
	ioc_set_free(&s);
	buf_free(&err);
	return 0;
}
