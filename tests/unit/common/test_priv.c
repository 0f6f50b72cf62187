/*
 * Unit tests of src/common/priv.c's priv_chown_tree, which vigild runs as
 * root on its data directory before it gives up root (the directory is
 * [center] user's): everything below is handed over, symbolic links
 * themselves, and a hard link to a file of someone else (made by that
 * user where fs.protected_hardlinks = 0) is refused, the file left as it
 * was. Needs root (chown); skipped otherwise.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "priv.h"

#define TO 65534 /* nobody */

static char root[] = "/tmp/vigil-priv.XXXXXX";
static char data[PATH_MAX], outside[PATH_MAX];

static void
put(const char *path)
{
	FILE *f;

	assert_non_null(f = fopen(path, "w"));
	fputs("x\n", f);
	fclose(f);
}

static uid_t
owner(const char *path)
{
	struct stat st;

	assert_int_equal(lstat(path, &st), 0);
	return st.st_uid;
}

static void
test_handed_over(void **state)
{
	char p[PATH_MAX + 32], l[PATH_MAX + 32];
	struct buf err;

	(void)state;
	snprintf(p, sizeof(p), "%s/sub/file", data);
	snprintf(l, sizeof(l), "%s/link", data);
	put(p);
	assert_int_equal(symlink(outside, l), 0);
	buf_init(&err, 1024);
	if (priv_chown_tree(data, TO, TO, &err) == -1)
		fail_msg("priv_chown_tree: %s", buf_cstr(&err));
	assert_int_equal(owner(data), TO);
	assert_int_equal(owner(p), TO);
	assert_int_equal(owner(l), TO);
	/* The symbolic link was changed, not what it points at. */
	assert_int_equal(owner(outside), 0);
	unlink(l);
	unlink(p);
	buf_free(&err);
}

static void
test_hard_link_refused(void **state)
{
	char l[PATH_MAX + 32];
	struct buf err;

	(void)state;
	snprintf(l, sizeof(l), "%s/sub/shadow", data);
	assert_int_equal(link(outside, l), 0);
	buf_init(&err, 1024);
	if (priv_chown_tree(data, TO, TO, &err) == 0 || owner(outside) != 0)
		fail_msg("a hard link to root's %s in the tree: it now "
		         "belongs to uid %ld",
		         outside, (long)owner(outside));
	assert_non_null(strstr(buf_cstr(&err), "links"));
	unlink(l);
	buf_free(&err);
}

static int
setup(void **state)
{
	char sub[PATH_MAX + 8];

	(void)state;
	if (geteuid() != 0)
		return 0;
	assert_non_null(mkdtemp(root));
	snprintf(data, sizeof(data), "%s/data", root);
	snprintf(outside, sizeof(outside), "%s/outside", root);
	snprintf(sub, sizeof(sub), "%s/sub", data);
	assert_int_equal(mkdir(data, 0700), 0);
	assert_int_equal(mkdir(sub, 0700), 0);
	put(outside);
	return 0;
}

static int
teardown(void **state)
{
	char sub[PATH_MAX + 8];

	(void)state;
	if (geteuid() != 0)
		return 0;
	snprintf(sub, sizeof(sub), "%s/sub", data);
	rmdir(sub);
	rmdir(data);
	unlink(outside);
	rmdir(root);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_handed_over),
	    cmocka_unit_test(test_hard_link_refused),
	};

	if (geteuid() != 0) {
		fprintf(stderr, "test_priv: needs root (chown); skipped\n");
		return 77;
	}
	return cmocka_run_group_tests(tests, setup, teardown);
}
