/*
 * daemon: what vigild and vigil-scand share about starting as a daemon.
 * Detaching happens in two steps: detach first (so child processes and
 * listeners belong to the daemon), but keep the starting shell waiting on
 * a pipe until the daemon says it is ready, so a failed start is still
 * seen on the terminal and in the exit status.
 */
#ifndef VIGIL_DAEMON_H
#define VIGIL_DAEMON_H

#include "buf.h"

/* Forks; the parent waits for daemon_ready and exits 0, or 1 when the
 * child ends without it. The child: new session, cwd /, stdin and stdout
 * on /dev/null. 0 in the child, -1 on failure (errno). */
int daemon_detach(void);
/* Tells the waiting shell the start succeeded, and systemd (READY=1 when
 * NOTIFY_SOCKET is set; Type=notify units run the daemon with -d).
 * Otherwise a no-op in the foreground.
 * close_stderr: also point stderr at /dev/null (logging goes to syslog;
 * with stderr or JSON logging the service manager collects stderr). */
void daemon_ready(int close_stderr);
/* Creates dir (0700) if missing; -1 with a message when it cannot or it
 * is not a directory. */
int daemon_ensure_dir(const char *dir, struct buf *err);

#endif
