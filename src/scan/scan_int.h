/*
 * scan_int: what the engine's own files share and nobody else sees: the
 * bundle's layout, the digest algorithms fetched once, the YARA external
 * variables every rule set may use.
 */
#ifndef VIGIL_SCAN_INT_H
#define VIGIL_SCAN_INT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <yara.h>

#include "ioc.h"
#include "scan.h"

/* Externals defined for every rule set (THOR's names), set per file. */
#define SCAN_EXT_FILENAME  "filename"
#define SCAN_EXT_FILEPATH  "filepath"
#define SCAN_EXT_EXTENSION "extension"
#define SCAN_EXT_FILETYPE  "filetype"

/* Open-addressing table of one hash type: slot = index + 1 into the IOC
 * array, 0 = empty; linear probing; load factor at most 1/2. */
struct hash_tab {
	uint32_t *slot;
	size_t mask; /* size - 1; slot == NULL when the type has no IOC */
};

struct bundle_src {
	char *name;
	size_t first, end; /* its IOCs: iocs.v[first .. end) */
};

struct scan_bundle {
	atomic_int refs;
	YR_RULES *rules; /* NULL without YARA sources */
	unsigned nrules;
	struct ioc_set iocs;
	struct hash_tab tab[IOC_NHASH];
	size_t *fname; /* indexes of the filename IOCs */
	size_t nfname;
	struct bundle_src *srcs;
	size_t nsrcs;
	uint64_t seed;
	unsigned hash_types; /* SCAN_HASH_* that have IOCs */
	char version[65];
};

/* MD5, SHA-1, SHA-256 by enum ioc_type, fetched by scan_init(). */
extern EVP_MD *scan_md[IOC_NHASH];

/*
 * Walks the IOCs whose digest equals d: *pos starts at SIZE_MAX; returns
 * the IOC's index + 1, or 0 when there are no more.
 */
size_t bundle_hash_next(const struct scan_bundle *b, enum ioc_type t,
                        const uint8_t *d, size_t *pos);
/* "name:line" of IOC i into out. */
void bundle_ioc_source(const struct scan_bundle *b, size_t i, char *out,
                       size_t outsz);

#endif
