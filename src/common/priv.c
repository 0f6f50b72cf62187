/*
 * priv.c: giving up root (priv.h).
 */
#include <errno.h>
#include <ftw.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "priv.h"

int
priv_lookup(const char *user, const char *setting, uid_t *uid, gid_t *gid,
            struct buf *err)
{
	struct passwd pw, *res = NULL;
	char sbuf[4096];
	int e;

	if (user == NULL || *user == '\0') {
		buf_printf(err, "%s: no user named", setting);
		return -1;
	}
	e = getpwnam_r(user, &pw, sbuf, sizeof(sbuf), &res);
	if (res == NULL) {
		if (e != 0)
			buf_printf(err, "%s: looking up user %s: %s", setting,
			           user, strerror(e));
		else
			buf_printf(
			    err,
			    "%s: there is no user %s on this host; create "
			    "it (adduser --system --group "
			    "--no-create-home %s; the Debian packages "
			    "do) or name another unprivileged user",
			    setting, user, user);
		return -1;
	}
	*uid = pw.pw_uid;
	*gid = pw.pw_gid;
	return 0;
}

int
priv_chown(const char *path, uid_t uid, gid_t gid, struct buf *err)
{
	if (lchown(path, uid, gid) == -1) {
		buf_printf(err, "%s: cannot hand it to uid %ld: %s", path,
		           (long)uid, strerror(errno));
		return -1;
	}
	return 0;
}

/* nftw has no user argument: the walk is single-threaded and short. */
static struct {
	uid_t uid;
	gid_t gid;
	int err;
	char path[4096];
} walk;

static int
walk_one(const char *path, const struct stat *st, int type, struct FTW *f)
{
	(void)f;
	(void)type;
	if (st->st_uid == walk.uid && st->st_gid == walk.gid)
		return 0;
	/* A hard link put there by uid (where the kernel allows it:
	 * fs.protected_hardlinks = 0) to someone else's file: lchown would
	 * change that file. */
	if (!S_ISDIR(st->st_mode) && !S_ISLNK(st->st_mode) &&
	    st->st_nlink > 1 && st->st_uid != walk.uid) {
		walk.err = EMLINK;
		snprintf(walk.path, sizeof(walk.path),
		         "%.3000s (a file of %lu links, owned by uid %ld: "
		         "not handed over; copy it there if it belongs)",
		         path, (unsigned long)st->st_nlink, (long)st->st_uid);
		return 1;
	}
	if (lchown(path, walk.uid, walk.gid) == -1) {
		walk.err = errno;
		strncpy(walk.path, path, sizeof(walk.path) - 1);
		return 1;
	}
	return 0;
}

int
priv_chown_tree(const char *path, uid_t uid, gid_t gid, struct buf *err)
{
	int rc;

	walk.uid = uid;
	walk.gid = gid;
	walk.err = 0;
	walk.path[0] = '\0';
	rc = nftw(path, walk_one, 16, FTW_PHYS | FTW_MOUNT);
	if (rc == 0)
		return 0;
	if (rc == -1 && walk.err == 0) {
		buf_printf(err, "%s: %s", path, strerror(errno));
		return -1;
	}
	buf_printf(err, "%s: cannot hand it to uid %ld: %s", walk.path,
	           (long)uid, strerror(walk.err));
	return -1;
}

int
priv_drop(uid_t uid, gid_t gid, struct buf *err)
{
	if (uid == 0) {
		buf_puts(err, "refusing to \"drop\" to uid 0");
		return -1;
	}
	if (setgroups(1, &gid) == -1 || setresgid(gid, gid, gid) == -1 ||
	    setresuid(uid, uid, uid) == -1) {
		buf_printf(err, "cannot become uid %ld gid %ld: %s", (long)uid,
		           (long)gid, strerror(errno));
		return -1;
	}
	/* Nothing this process execs may gain privileges either. */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1) {
		buf_printf(err, "PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
		return -1;
	}
	/* Root must be gone for good, not only from the effective ids. */
	if (setuid(0) != -1 || seteuid(0) != -1 || getuid() != uid ||
	    geteuid() != uid || getegid() != gid) {
		buf_puts(err, "root could be taken back after dropping it");
		return -1;
	}
	return 0;
}
