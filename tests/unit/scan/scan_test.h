/*
 * Helpers shared by the scan engine's tests: a scratch directory, files in
 * it, the test data (tests/data/scan, found through VIGIL_TEST_DATA) and a
 * bundle of the harmless marker rules. Static inline so each test uses
 * what it needs without unused-function warnings.
 */
#ifndef VIGIL_TEST_SCAN_H
#define VIGIL_TEST_SCAN_H

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "scan.h"
#include "tls.h"

static inline const char *
test_data_dir(void)
{
	const char *d = getenv("VIGIL_TEST_DATA");

	return d != NULL && d[0] != '\0' ? d : "tests/data";
}

/* "$VIGIL_TEST_DATA/scan/name" into a static buffer. */
static inline const char *
test_data(const char *name)
{
	static char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/scan/%s", test_data_dir(), name);
	return path;
}

/* Whole file into a malloc'd buffer (NUL-terminated); aborts on failure. */
static inline char *
test_slurp(const char *path, size_t *len)
{
	struct buf b, err;
	char *s;

	buf_init(&b, 0);
	buf_init(&err, 0);
	if (tls_read_file(path, 1u << 24, &b, &err) == -1) {
		fprintf(stderr, "%s\n", buf_cstr(&err));
		abort();
	}
	s = buf_steal(&b, len);
	buf_free(&err);
	if (s == NULL)
		abort();
	return s;
}

static inline char *
test_tmpdir(void)
{
	char *d = strdup("/tmp/vigil-scan-test.XXXXXX");

	if (d == NULL || mkdtemp(d) == NULL)
		abort();
	return d;
}

/* dir/name with the given contents; returns the path (static buffer). */
static inline const char *
test_write(const char *dir, const char *name, const void *data, size_t len)
{
	static char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((f = fopen(path, "wb")) == NULL)
		abort();
	if (len > 0 && fwrite(data, 1, len, f) != len)
		abort();
	if (fclose(f) != 0)
		abort();
	return path;
}

static inline int
test_rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	if (flag == FTW_DP || flag == FTW_D)
		(void)rmdir(p);
	else
		(void)unlink(p);
	return 0;
}

static inline int
test_chmod_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)ftw;
	if (flag != FTW_SL && !S_ISLNK(sb->st_mode))
		(void)chmod(p, 0700);
	return 0;
}

static inline void
test_rmtree(char *dir)
{
	if (dir == NULL)
		return;
	(void)nftw(dir, test_chmod_one, 16, FTW_PHYS);
	(void)nftw(dir, test_rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(dir);
}

/* The marker rules and IOCs from tests/data/scan; aborts on failure. */
static inline struct scan_bundle *
test_markers(void)
{
	struct scan_bundle *b = NULL;
	struct buf err;
	char yar[PATH_MAX], ioc[PATH_MAX];
	const char *paths[2] = {yar, ioc};

	snprintf(yar, sizeof(yar), "%s", test_data("markers.yar"));
	snprintf(ioc, sizeof(ioc), "%s", test_data("markers.ioc"));
	buf_init(&err, 0);
	if (scan_bundle_load(paths, 2, &b, &err) == -1) {
		fprintf(stderr, "test_markers: %s\n", buf_cstr(&err));
		abort();
	}
	buf_free(&err);
	return b;
}

static inline int
test_has_finding(const struct scan_result *r, const char *rule)
{
	size_t i;

	for (i = 0; i < r->nfindings; i++)
		if (r->findings[i].rule != NULL &&
		    strcmp(r->findings[i].rule, rule) == 0)
			return 1;
	return 0;
}

static inline const struct scan_finding *
test_finding(const struct scan_result *r, const char *rule)
{
	size_t i;

	for (i = 0; i < r->nfindings; i++)
		if (r->findings[i].rule != NULL &&
		    strcmp(r->findings[i].rule, rule) == 0)
			return &r->findings[i];
	return NULL;
}

#endif
