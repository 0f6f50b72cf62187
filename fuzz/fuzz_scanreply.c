/*
 * Fuzz target for what vigil-scand's parent takes from a scan worker
 * (src/scand/sandbox.c): the worker runs libyara on hostile samples, so it
 * is the untrusted side of its socketpair. The input is used twice:
 *   - as the byte stream on the socket: proc_recv_fd reads messages until
 *     the stream ends or is refused, never past PROC_MAX_MSG, never
 *     holding a descriptor it did not get;
 *   - as a worker's result (the engine's neutral JSON, SW_RESULT): parsed
 *     and rendered as THOR findings (thor_render), as engine.c does.
 * Neither may crash, read out of bounds or leak.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proc.h"
#include "thor.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_stream(const uint8_t *data, size_t size)
{
	struct proc_hdr h;
	struct buf msg;
	size_t off = 0;
	ssize_t n;
	int sp[2], fd, rc;

	/* A socket buffer holds the stream: at most what one write takes. */
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp) == -1)
		abort();
	while (off < size && off < 128 * 1024) {
		n = write(sp[0], data + off, size - off);
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	shutdown(sp[0], SHUT_WR);
	buf_init(&msg, PROC_MAX_MSG);
	for (;;) {
		rc = proc_recv_fd(sp[1], &h, &msg, PROC_MAX_MSG, &fd);
		if (rc != 0)
			break;
		if (fd != -1 || h.len > PROC_MAX_MSG || msg.len != h.len)
			abort();
	}
	if (rc == -1 && fd != -1)
		abort();
	buf_free(&msg);
	close(sp[0]);
	close(sp[1]);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_error_t jerr;
	json_t *o, *f;

	check_stream(data, size);
	o = json_loadb((const char *)data, size, 0, &jerr);
	if (json_is_object(o)) {
		f = thor_render(o, "C:\\sample.exe", "fuzz", 1);
		if (f != NULL && !json_is_array(f))
			abort();
		json_decref(f);
	}
	json_decref(o);
	return 0;
}
