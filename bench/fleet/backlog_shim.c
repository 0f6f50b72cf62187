/*
 * backlog_shim.c: a what-if for the fleet benchmark, not part of Vigil.
 * LD_PRELOADed into vigild, it raises every listen() backlog to 4096 (the
 * kernel caps it at net.core.somaxconn), which shows what libevent's fixed
 * backlog of 128 (evhttp_bind_socket_with_handle) costs when thousands of
 * agents reconnect at once. See docs/performance.md, "Fleet".
 *
 *   cc -shared -fPIC -O2 -o /tmp/backlog_shim.so bench/fleet/backlog_shim.c
 * -ldl LD_PRELOAD=/tmp/backlog_shim.so bench/fleet/run.sh BUILD --agents 10000
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stddef.h>
#include <sys/socket.h>

int
listen(int fd, int backlog)
{
	static int (*real)(int, int);

	(void)backlog;
	if (real == NULL)
		real = (int (*)(int, int))dlsym(RTLD_NEXT, "listen");
	return real(fd, 4096);
}
