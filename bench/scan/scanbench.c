/*
 * scanbench: the scan engine's throughput on a directory, for comparison
 * with the yara tool (bench/scan/run.sh builds and drives it). One thread,
 * one scan context, the walker with no caps: what a scheduled scan does,
 * minus the pacing. Reports the best of several runs over a warm cache.
 *
 * usage: scanbench [-n RUNS] [-H] DIR RULEFILE...
 *   -H  compute all three digests for every file (as vigil-scand does)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "scan.h"

static int
count_hits(const struct scan_result *r, void *arg)
{
	(void)r;
	(*(unsigned long *)arg)++;
	return 0;
}

int
main(int argc, char **argv)
{
	struct scan_bundle *b = NULL;
	struct scan_ctx *c = NULL;
	struct scan_opts so;
	struct walk_opts wo;
	struct walk_stats st, best;
	struct buf err;
	unsigned long hits = 0;
	long long n;
	int ch, runs = 3, i, all = 0;
	const char *dir;

	while ((ch = getopt(argc, argv, "n:H")) != -1) {
		if (ch == 'n' && str_to_ll(optarg, 1, 100, &n) == 0)
			runs = (int)n;
		else if (ch == 'H')
			all = 1;
		else
			goto usage;
	}
	argc -= optind;
	argv += optind;
	if (argc < 2)
		goto usage;
	dir = argv[0];
	buf_init(&err, 0);
	if (scan_bundle_load((const char *const *)argv + 1, (size_t)argc - 1,
	                     &b, &err) == -1) {
		fprintf(stderr, "scanbench: %s", buf_cstr(&err));
		return 1;
	}
	scan_opts_default(&so);
	if (all)
		so.hashes = SCAN_HASH_ALL;
	if (scan_ctx_new(b, &so, &c) != 0) {
		fprintf(stderr, "scanbench: scan_ctx_new failed\n");
		return 1;
	}
	memset(&wo, 0, sizeof(wo));
	wo.on_result = count_hits;
	wo.arg = &hits;
	memset(&best, 0, sizeof(best));
	for (i = 0; i < runs; i++) {
		hits = 0;
		if (walk_run(c, &dir, 1, &wo, &st) != 0) {
			fprintf(stderr, "scanbench: walk failed\n");
			return 1;
		}
		if (i == 0 || st.elapsed < best.elapsed)
			best = st;
	}
	printf("files=%llu bytes=%llu hits=%lu errors=%llu seconds=%.3f "
	       "MB/s=%.1f files/s=%.0f\n",
	       (unsigned long long)best.scanned, (unsigned long long)best.bytes,
	       hits, (unsigned long long)best.errors, best.elapsed,
	       (double)best.bytes / 1e6 / best.elapsed,
	       (double)best.scanned / best.elapsed);
	scan_ctx_free(c);
	scan_bundle_free(b);
	buf_free(&err);
	return 0;
usage:
	fprintf(stderr, "usage: scanbench [-n RUNS] [-H] DIR RULEFILE...\n");
	return 2;
}
