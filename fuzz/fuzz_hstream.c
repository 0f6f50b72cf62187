/*
 * Fuzz target for src/common/hstream.c, the streaming HTTP/1.1 server: the
 * input is what a client sends on one connection (a socketpair), then it
 * shuts its side. Requests go to three routes: a GET that answers at once,
 * a POST whose body is counted and answered at its end, and a POST that
 * answers 413 from its body callback after 10 bytes. Besides crashes and
 * leaks it checks that whatever the server sends is HTTP/1.1 responses,
 * and that every request handed to a handler is answered exactly once
 * (hs_reply_* frees it: ASan reports a second reply or a lost one).
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* Compiled in so libFuzzer instruments the server (see fuzz_ioc.c). */
#include "hstream.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct event_base *fz_base;
static struct hs_server *fz_srv;
static unsigned long long fz_body;

static void
fz_get(struct hs_req *r)
{
	hs_reply_json(r, 200,
	              json_pack("{s:s?,s:s?}", "q", hs_req_query(r, "q"), "h",
	                        hs_req_header(r, "X-H")));
}

static int
fz_count(struct hs_req *r, const uint8_t *p, size_t n, void *arg)
{
	(void)r;
	(void)p;
	(void)arg;
	if (n == 0)
		abort();
	fz_body += n;
	return 0;
}

static void
fz_end(struct hs_req *r, int ok, void *arg)
{
	(void)arg;
	hs_reply_json(r, ok ? 200 : 400, json_pack("{s:I}", "n", fz_body));
}

static void
fz_post(struct hs_req *r)
{
	fz_body = 0;
	hs_req_body(r, fz_count, fz_end, NULL);
}

static int
fz_cap(struct hs_req *r, const uint8_t *p, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	fz_body += n;
	if (fz_body > 10) {
		hs_reply_msg(r, 413, "over");
		return -1;
	}
	return 0;
}

static void
fz_capped(struct hs_req *r)
{
	fz_body = 0;
	hs_req_body(r, fz_cap, fz_end, NULL);
}

static const struct hs_route fz_routes[] = {
    {"GET", "/a", fz_get, 0},
    {"POST", "/b", fz_post, 0},
    {"POST", "/c", fz_capped, 0},
    {NULL, NULL, NULL, 0},
};

static void
fz_init(void)
{
	struct hs_limits lim;

	memset(&lim, 0, sizeof(lim));
	lim.max_body = 4096;
	lim.max_headers = 2048;
	lim.max_conns = 4;
	lim.read_size = 61; /* many pieces per input */
	if ((fz_base = event_base_new()) == NULL ||
	    (fz_srv = hs_server_new(fz_base, NULL, fz_routes, NULL, &lim)) ==
	        NULL)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_un sa;
	char out[4096];
	ssize_t n;
	size_t off = 0, got = 0;
	int sv[2], i;

	if (fz_srv == NULL)
		fz_init();
	if (size > 32768)
		return 0;
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1)
		abort();
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	fcntl(sv[1], F_SETFL, O_NONBLOCK);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	hs_accept(NULL, sv[0], (struct sockaddr *)&sa, (int)sizeof(sa), fz_srv);
	for (i = 0; i < 200 && hs_server_conns(fz_srv) > 0; i++) {
		if (off < size) {
			n = write(sv[1], data + off, size - off);
			if (n > 0)
				off += (size_t)n;
			if (off == size)
				shutdown(sv[1], SHUT_WR);
		} else if (size == 0 && i == 0)
			shutdown(sv[1], SHUT_WR);
		event_base_loop(fz_base, EVLOOP_NONBLOCK);
		while ((n = read(sv[1], out + got, sizeof(out) - got)) > 0) {
			if (got == 0 && memcmp(out, "HTTP/1.1 ", 9) != 0)
				abort();
			got += (size_t)n;
			if (got == sizeof(out))
				got = 1; /* checked the start; keep draining */
		}
	}
	/* Whatever is still open (a linger, a stuck request) ends here. */
	while (fz_srv->conns != NULL)
		conn_free(fz_srv->conns);
	event_base_loop(fz_base, EVLOOP_NONBLOCK);
	close(sv[1]);
	return 0;
}
