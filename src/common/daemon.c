/*
 * daemon.c: detaching with a readiness pipe, readiness for systemd
 * (sd_notify, for units of Type=notify, which run the daemons in the
 * foreground), and the data directory check (see daemon.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "daemon.h"

static int ready_fd = -1;

int
daemon_detach(void)
{
	int p[2], devnull;
	pid_t pid;
	char b;

	if (pipe(p) == -1)
		return -1;
	if ((pid = fork()) == -1)
		return -1;
	if (pid > 0) {
		ssize_t n;

		close(p[1]);
		/* The byte arrives only after a successful start; a failed
		 * start closes the pipe without it. */
		while ((n = read(p[0], &b, 1)) == -1 && errno == EINTR)
			;
		_exit(n == 1 && b == 'R' ? 0 : 1);
	}
	close(p[0]);
	ready_fd = p[1];
	if (setsid() == -1 || chdir("/") == -1)
		return -1;
	if ((devnull = open("/dev/null", O_RDWR)) != -1) {
		dup2(devnull, STDIN_FILENO);
		dup2(devnull, STDOUT_FILENO);
		if (devnull > STDERR_FILENO)
			close(devnull);
	}
	return 0;
}

void
daemon_ready(int close_stderr)
{
	int devnull;

	/* A no-op unless started by systemd with NOTIFY_SOCKET set. */
	(void)sd_notify(0, "READY=1");
	if (ready_fd == -1)
		return;
	while (write(ready_fd, "R", 1) == -1 && errno == EINTR)
		;
	close(ready_fd);
	ready_fd = -1;
	if (close_stderr && (devnull = open("/dev/null", O_RDWR)) != -1) {
		dup2(devnull, STDERR_FILENO);
		if (devnull > STDERR_FILENO)
			close(devnull);
	}
}

int
daemon_ensure_dir(const char *dir, struct buf *err)
{
	struct stat st;

	if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
		buf_printf(err, "%s: cannot create: %s", dir, strerror(errno));
		return -1;
	}
	if (stat(dir, &st) == -1 || !S_ISDIR(st.st_mode)) {
		buf_printf(err, "%s: not a directory", dir);
		return -1;
	}
	return 0;
}
