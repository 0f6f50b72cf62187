/*
 * priv.h: giving up root. A daemon started as root looks up the user it
 * should run as, hands that user the files it must write, and then drops
 * every root privilege for good (docs/development.md, "Processes and
 * users").
 */
#ifndef VIGIL_PRIV_H
#define VIGIL_PRIV_H

#include <sys/types.h>

#include "buf.h"

/* The uid and primary gid of user; -1 with a message naming what to do
 * (create it, or configure another) in err. */
int priv_lookup(const char *user, const char *setting, uid_t *uid, gid_t *gid,
                struct buf *err);

/* Makes path, and when it is a directory everything below it, owned by
 * uid:gid. Symbolic links are changed themselves, never followed; other
 * file systems below path are not entered. A file of several links that
 * is not uid's already is refused: root must not hand uid a file (say
 * /etc/shadow) that uid linked into its own directory. -1 with err on the
 * first failure. */
int priv_chown_tree(const char *path, uid_t uid, gid_t gid, struct buf *err);

/* Makes one file owned by uid:gid (not following a symbolic link). */
int priv_chown(const char *path, uid_t uid, gid_t gid, struct buf *err);

/*
 * Drops root for good: supplementary groups replaced by gid, real,
 * effective and saved gid and uid set to gid and uid, no new privileges
 * through exec; then checks that root cannot be taken back. -1 with err
 * (the caller must exit: a half-dropped process is not safe to run).
 */
int priv_drop(uid_t uid, gid_t gid, struct buf *err);

#endif
