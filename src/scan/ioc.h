/*
 * ioc: parser of IOC files (hash and filename indicators, one per line, see
 * docs/ioc-format.md). No I/O: bytes in, entries out, or every bad line
 * reported as "name:line: message". Filename patterns are checked for
 * size and compiled (POSIX extended regex, case-insensitive) here, so a
 * set that parsed is ready for scanning. A fuzz target (fuzz/fuzz_ioc.c).
 */
#ifndef VIGIL_SCAN_IOC_H
#define VIGIL_SCAN_IOC_H

#include <stddef.h>
#include <stdint.h>
#include <regex.h>

#include "buf.h"

#define IOC_MAX_LINE    4096 /* bytes per line, without the newline */
#define IOC_MAX_PATTERN 1024 /* bytes of a filename regex */
#define IOC_MAX_DESC    1024 /* bytes of a description */
#define IOC_MAX_ERRORS  20   /* lines quoted in err; the rest are counted */
#define IOC_SCORE_MIN   1
#define IOC_SCORE_MAX   100

enum ioc_type { IOC_MD5 = 0, IOC_SHA1, IOC_SHA256, IOC_FILENAME };
#define IOC_NHASH 3 /* the hash types are 0 .. IOC_NHASH - 1 */

struct ioc {
	enum ioc_type type;
	int score;
	unsigned line;      /* in the source it came from */
	uint8_t digest[32]; /* hash types: ioc_digest_len(type) bytes */
	char *pattern;      /* IOC_FILENAME: the regex as written */
	regex_t *re;        /* IOC_FILENAME: compiled, REG_EXTENDED|REG_ICASE */
	char *desc;         /* never NULL, may be "" */
};

struct ioc_set {
	struct ioc *v;
	size_t n, cap;
};

void ioc_set_init(struct ioc_set *s);
void ioc_set_free(struct ioc_set *s);

/*
 * Parses one IOC file and appends its entries to s. name is used in error
 * messages only. On any bad line returns -1 with one "name:line: message\n"
 * per bad line (at most IOC_MAX_ERRORS, then a count) appended to err, and
 * s left as it was before the call: a file with an error is refused as a
 * whole, like a YARA rule file.
 */
int ioc_parse(const uint8_t *p, size_t len, const char *name, struct ioc_set *s,
              struct buf *err);

/* "md5", "sha1", "sha256", "filename". */
const char *ioc_type_name(enum ioc_type t);
/* 16, 20, 32 for the hash types, 0 for IOC_FILENAME. */
size_t ioc_digest_len(enum ioc_type t);

#endif
