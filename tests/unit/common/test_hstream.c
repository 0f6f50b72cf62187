/*
 * Unit tests for hstream.c, the streaming HTTP/1.1 server: a real server
 * on 127.0.0.1 (ephemeral port, plain HTTP; TLS is covered by e2e/scand)
 * driven by a client thread over raw sockets, so the tests can send what
 * curl would not: pipelined requests, chunked bodies cut anywhere,
 * oversized headers, garbage, half requests.
 *
 * The event loop runs on the test's thread until the client thread is
 * done (it writes a byte to a pipe the loop watches).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "buf.h"
#include "hstream.h"

#define MAX_BODY 100000

static struct event_base *base;
static struct hs_server *srv;
static int port;
static int done_pipe[2];
static struct event *done_ev;

/* What the handlers saw. */
static unsigned long long body_bytes, body_sum;
static int ends_ok, ends_bad, data_calls;
static struct hs_req *held; /* a request answered later */

/* --- handlers ------------------------------------------------------------ */

static void
h_ping(struct hs_req *r)
{
	const char *q = hs_req_query(r, "x");

	hs_reply_json(r, 200,
	              json_pack("{s:s,s:s?}", "path", hs_req_path(r), "x", q));
}

static int
count_data(struct hs_req *r, const uint8_t *p, size_t n, void *arg)
{
	size_t i;

	(void)r;
	(void)arg;
	data_calls++;
	body_bytes += n;
	for (i = 0; i < n; i++)
		body_sum += p[i];
	return 0;
}

static void
count_end(struct hs_req *r, int ok, void *arg)
{
	(void)arg;
	if (ok)
		ends_ok++;
	else
		ends_bad++;
	hs_reply_json(r, 200, json_pack("{s:I}", "bytes", body_bytes));
}

static int uploads; /* h_upload calls */

static void
h_upload(struct hs_req *r)
{
	uploads++;
	body_bytes = body_sum = 0;
	hs_req_body(r, count_data, count_end, NULL);
}

/* The application's own cap: 413 from the body callback. */
static int
cap_data(struct hs_req *r, const uint8_t *p, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	body_bytes += n;
	if (body_bytes > 1000) {
		hs_reply_msg(r, 413, "over %d", 1000);
		return -1;
	}
	return 0;
}

static void
h_capped(struct hs_req *r)
{
	body_bytes = 0;
	hs_req_body(r, cap_data, count_end, NULL);
}

static void
later_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	hs_reply_json(held, 202, json_pack("{s:b}", "later", 1));
	held = NULL;
}

static int stop_in_later; /* test_stop: the server stops meanwhile */

static void
h_later(struct hs_req *r)
{
	struct timeval tv = {0, 50000};

	held = r;
	event_base_once(base, -1, EV_TIMEOUT, later_cb, NULL, &tv);
	if (stop_in_later)
		hs_server_stop_listening(srv);
}

static const struct hs_route routes[] = {
    {"GET", "/ping", h_ping, 0},
    {"POST", "/upload", h_upload, 0},
    {"POST", "/capped", h_capped, 0},
    {"GET", "/later", h_later, 0},
    {NULL, NULL, NULL, 0},
};

/* --- the client thread ----------------------------------------------------
 */

struct client {
	const char *req; /* sent first */
	size_t req_len;
	size_t extra; /* then this many 'a' bytes (0: none) */
	int shut;     /* shut the write side after sending */
	int abort;    /* close without reading */
	char resp[1 << 20];
	size_t resp_len;
	int sock;
	int crowd; /* do not wait for other connections to end first */
};

static int
client_connect(void)
{
	struct sockaddr_in sa;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd == -1 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1)
		return -1;
	return fd;
}

static void *
client_main(void *arg)
{
	struct client *c = arg;
	char junk[8192];
	size_t left = c->extra, k;
	ssize_t n;
	int fd = c->sock >= 0 ? c->sock : client_connect();

	memset(junk, 'a', sizeof(junk));
	if (fd != -1) {
		if (c->req_len > 0)
			(void)!write(fd, c->req, c->req_len);
		/* The server may stop reading (and close) early. */
		while (left > 0) {
			k = left < sizeof(junk) ? left : sizeof(junk);
			if ((n = send(fd, junk, k, MSG_NOSIGNAL)) <= 0)
				break;
			left -= (size_t)n;
		}
		if (c->shut)
			shutdown(fd, SHUT_WR);
		while (!c->abort && c->resp_len < sizeof(c->resp) - 1 &&
		       (n = read(fd, c->resp + c->resp_len,
		                 sizeof(c->resp) - 1 - c->resp_len)) > 0)
			c->resp_len += (size_t)n;
		close(fd);
	}
	c->resp[c->resp_len] = '\0';
	(void)!write(done_pipe[1], "x", 1);
	return NULL;
}

static void
on_client_done(evutil_socket_t fd, short what, void *arg)
{
	char b;

	(void)what;
	(void)arg;
	(void)!read(fd, &b, 1);
	event_base_loopbreak(base);
}

/* Runs one client to the end; the response is in c->resp. */
static void
run(struct client *c)
{
	pthread_t t;

	if (c->req_len == 0 && c->req != NULL)
		c->req_len = strlen(c->req);
	/* Connections of the previous client end first (max_conns is 2). */
	while (!c->crowd && hs_server_conns(srv) > 0)
		event_base_loop(base, EVLOOP_ONCE);
	assert_int_equal(pthread_create(&t, NULL, client_main, c), 0);
	event_base_dispatch(base);
	pthread_join(t, NULL);
}

static int
count(const char *hay, const char *needle)
{
	int n = 0;

	while ((hay = strstr(hay, needle)) != NULL) {
		n++;
		hay += strlen(needle);
	}
	return n;
}

/* --- fixture ------------------------------------------------------------- */

static int
setup(void **state)
{
	struct hs_limits lim;
	struct buf err;

	(void)state;
	base = event_base_new();
	memset(&lim, 0, sizeof(lim));
	lim.max_body = MAX_BODY;
	lim.max_headers = 2048;
	lim.header_secs = 1;
	lim.idle_secs = 5;
	lim.max_conns = 2;
	lim.read_size = 7; /* every boundary case of the parser gets hit */
	srv = hs_server_new(base, NULL, routes, NULL, &lim);
	assert_non_null(srv);
	buf_init(&err, 1024);
	assert_int_equal(hs_server_bind(srv, "127.0.0.1", 0, &port, &err), 0);
	buf_free(&err);
	assert_int_equal(pipe(done_pipe), 0);
	done_ev = event_new(base, done_pipe[0], EV_READ | EV_PERSIST,
	                    on_client_done, NULL);
	event_add(done_ev, NULL);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	hs_server_free(srv);
	event_free(done_ev);
	close(done_pipe[0]);
	close(done_pipe[1]);
	event_base_free(base);
	return 0;
}

/* --- tests --------------------------------------------------------------- */

/* Two pipelined GETs and a close: both answered, in order, on one
 * connection; the query and the decoded path reach the handler. */
static void
test_pipelined(void **state)
{
	struct client c = {.sock = -1};

	(void)state;
	c.req = "GET /ping?x=1 HTTP/1.1\r\nHost: a\r\n\r\n"
	        "GET /p%69ng?x=two HTTP/1.1\r\nHost: a\r\n\r\n"
	        "GET /ping HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
	run(&c);
	assert_int_equal(count(c.resp, "HTTP/1.1 200 OK"), 3);
	assert_non_null(strstr(c.resp, "\"x\":\"1\""));
	assert_true(strstr(c.resp, "\"x\":\"1\"") <
	            strstr(c.resp, "\"x\":\"two\""));
	assert_non_null(strstr(c.resp, "Connection: close"));
}

/* Many pipelined requests in one go (3000, about 700 KB of replies): each
 * waits its turn, none is lost. */
static void
test_many_pipelined(void **state)
{
	static struct client c;
	struct buf b;
	int i;

	(void)state;
	memset(&c, 0, sizeof(c));
	c.sock = -1;
	buf_init(&b, 1 << 20);
	for (i = 0; i < 3000; i++)
		buf_printf(&b, "GET /ping?x=%d HTTP/1.1\r\nHost: a\r\n\r\n", i);
	buf_puts(&b, "GET /ping?x=last HTTP/1.1\r\nConnection: close\r\n\r\n");
	c.req = buf_cstr(&b);
	run(&c);
	assert_int_equal(count(c.resp, "HTTP/1.1 200 OK"), 3001);
	assert_non_null(strstr(c.resp, "\"x\":\"2999\""));
	assert_non_null(strstr(c.resp, "\"x\":\"last\""));
	buf_free(&b);
}

/* A body with Content-Length, read in 7-byte pieces: every byte reaches
 * the handler, which answers once, after the end. */
static void
test_content_length(void **state)
{
	struct client c = {.sock = -1};

	(void)state;
	c.req = "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n"
	        "Connection: close\r\n\r\n";
	c.extra = 5000;
	ends_ok = 0;
	run(&c);
	assert_non_null(strstr(c.resp, "HTTP/1.1 200"));
	assert_non_null(strstr(c.resp, "{\"bytes\":5000}"));
	assert_int_equal(body_sum, 5000ULL * 'a');
	assert_int_equal(ends_ok, 1);
	assert_true(data_calls > 1);
}

/* Chunked: decoded (chunk framing not passed on), then a keep-alive GET. */
static void
test_chunked(void **state)
{
	struct client c = {.sock = -1};

	(void)state;
	c.req = "POST /upload HTTP/1.1\r\nHost: a\r\n"
	        "Transfer-Encoding: chunked\r\n\r\n"
	        "5\r\nhello\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n"
	        "GET /ping HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
	run(&c);
	assert_non_null(strstr(c.resp, "{\"bytes\":21}"));
	assert_non_null(strstr(c.resp, "\"path\":\"/ping\""));
}

/* Content-Length over the limit: 413 before any of the body is read, and
 * the connection is closed. */
static void
test_too_large_declared(void **state)
{
	struct client c = {.sock = -1};

	(void)state;
	c.req = "POST /upload HTTP/1.1\r\nHost: a\r\n"
	        "Content-Length: 300000000\r\n\r\n";
	body_bytes = 0;
	run(&c);
	assert_non_null(strstr(c.resp, "HTTP/1.1 413"));
	assert_non_null(strstr(c.resp, "{\"message\":\"request body larger"));
	assert_non_null(strstr(c.resp, "Connection: close"));
	assert_int_equal(body_bytes, 0);
}

/* Chunked past the server's limit, and a handler's own cap: 413 as soon
 * as it is passed, though the client goes on sending. */
static void
test_too_large_streamed(void **state)
{
	struct client c = {.sock = -1}, d = {.sock = -1};
	char req[256];

	(void)state;
	snprintf(req, sizeof(req),
	         "POST /upload HTTP/1.1\r\nHost: a\r\n"
	         "Transfer-Encoding: chunked\r\n\r\n%x\r\n",
	         MAX_BODY * 3);
	c.req = req;
	c.extra = MAX_BODY * 3;
	c.shut = 1;
	ends_bad = 0;
	run(&c);
	assert_non_null(strstr(c.resp, "HTTP/1.1 413"));
	assert_int_equal(ends_bad, 1); /* the handler was told */
	assert_true(body_bytes <= MAX_BODY);

	d.req = "POST /capped HTTP/1.1\r\nHost: a\r\nContent-Length: 50000\r\n"
	        "\r\n";
	d.extra = 50000;
	d.shut = 1;
	run(&d);
	assert_non_null(strstr(d.resp, "HTTP/1.1 413"));
	assert_non_null(strstr(d.resp, "{\"message\":\"over 1000\"}"));
	assert_true(body_bytes < 50000);
}

/* Errors of the server's own: JSON, never a crash. */
static void
test_errors(void **state)
{
	struct client c = {.sock = -1};
	char big[4096];

	(void)state;
	c.req = "GET /nope HTTP/1.1\r\nHost: a\r\n\r\n";
	run(&c);
	assert_non_null(strstr(c.resp, "HTTP/1.1 404"));
	assert_non_null(strstr(c.resp, "{\"message\":"));

	memset(&c, 0, sizeof(c));
	c.sock = -1;
	c.req = "DELETE /ping HTTP/1.1\r\nHost: a\r\n\r\n";
	run(&c);
	assert_non_null(strstr(c.resp, "HTTP/1.1 405"));

	memset(&c, 0, sizeof(c));
	c.sock = -1;
	c.req = "GET /ping HTTP/1.1\r\nHo\001st: a\r\n\r\n";
	run(&c);
	assert_non_null(strstr(c.resp, "HTTP/1.1 400"));
	assert_non_null(strstr(c.resp, "malformed request"));

	memset(&c, 0, sizeof(c));
	c.sock = -1;
	memset(big, 'b', sizeof(big));
	memcpy(big, "GET /ping HTTP/1.1\r\nX: ", 23);
	c.req = big;
	c.req_len = sizeof(big);
	c.shut = 1;
	run(&c);
	assert_non_null(strstr(c.resp, "HTTP/1.1 431"));

	memset(&c, 0, sizeof(c));
	c.sock = -1;
	c.req = "GET /ping HTTP/1.1\r\nHost: a\r\n"; /* never ends */
	run(&c);
	assert_non_null(strstr(c.resp, "HTTP/1.1 408"));
}

/* A reply given later (from another event): the pipelined request behind
 * it waits its turn. */
static void
test_deferred(void **state)
{
	struct client c = {.sock = -1};

	(void)state;
	c.req = "GET /later HTTP/1.1\r\nHost: a\r\n\r\n"
	        "GET /ping HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
	run(&c);
	assert_non_null(strstr(c.resp, "HTTP/1.1 202"));
	assert_true(strstr(c.resp, "HTTP/1.1 202") <
	            strstr(c.resp, "HTTP/1.1 200"));
}

/* A client that goes away in the middle of a body: the handler hears of
 * it (ok = 0); nothing is left open. */
static void
test_client_gone(void **state)
{
	struct client c = {.sock = -1};

	(void)state;
	c.req = "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 9000\r\n"
	        "\r\n";
	c.extra = 100;
	c.abort = 1;
	ends_bad = 0;
	run(&c);
	while (hs_server_conns(srv) > 0)
		event_base_loop(base, EVLOOP_ONCE);
	assert_int_equal(ends_bad, 1);
}

/* At max_conns (2), a new connection closes the oldest one not being
 * answered; when both are receiving uploads, the new one is closed. */
static void
test_max_conns(void **state)
{
	struct client c = {.sock = -1};
	const char *up = "POST /upload HTTP/1.1\r\nHost: a\r\n"
	                 "Content-Length: 9000\r\n\r\nabc";
	char b1;
	int a, b, n0;

	(void)state;
	while (hs_server_conns(srv) > 0) /* those of earlier tests */
		event_base_loop(base, EVLOOP_ONCE);
	a = client_connect();
	b = client_connect();
	assert_true(a >= 0 && b >= 0);
	while (hs_server_conns(srv) < 2)
		event_base_loop(base, EVLOOP_ONCE);
	c.req = "GET /ping HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
	c.crowd = 1;
	run(&c);
	assert_non_null(strstr(c.resp, "HTTP/1.1 200"));
	assert_int_equal(read(a, &b1, 1), 0); /* the oldest, closed */
	assert_int_equal(hs_server_closed(srv, HS_CLOSED_EVICTED), 1);
	close(a);
	close(b);
	while (hs_server_conns(srv) > 0)
		event_base_loop(base, EVLOOP_ONCE);

	/* Two uploads in progress: neither is pushed out. */
	n0 = uploads;
	a = client_connect();
	b = client_connect();
	assert_true(a >= 0 && b >= 0);
	assert_int_equal(write(a, up, strlen(up)), (ssize_t)strlen(up));
	assert_int_equal(write(b, up, strlen(up)), (ssize_t)strlen(up));
	while (uploads < n0 + 2)
		event_base_loop(base, EVLOOP_ONCE);
	memset(&c, 0, sizeof(c));
	c.sock = -1;
	c.req = "GET /ping HTTP/1.1\r\nConnection: close\r\n\r\n";
	c.crowd = 1;
	run(&c);
	assert_int_equal(c.resp_len, 0);
	assert_int_equal(hs_server_closed(srv, HS_CLOSED_FULL), 1);
	assert_int_equal(hs_server_conns(srv), 2);
	close(a);
	close(b);
	while (hs_server_conns(srv) > 0)
		event_base_loop(base, EVLOOP_ONCE);
	memset(&c, 0, sizeof(c));
	c.sock = -1;
	c.req = "GET /ping HTTP/1.1\r\nConnection: close\r\n\r\n";
	run(&c);
	assert_non_null(strstr(c.resp, "HTTP/1.1 200"));
}

/* A server of its own (the fixture's stays as it is). */
static struct hs_server *
own_server(const struct hs_limits *lim, int *p)
{
	struct hs_server *s = hs_server_new(base, NULL, routes, NULL, lim);
	struct buf err;

	assert_non_null(s);
	buf_init(&err, 1024);
	assert_int_equal(hs_server_bind(s, "127.0.0.1", 0, p, &err), 0);
	buf_free(&err);
	return s;
}

static int
connect_to(int p)
{
	int save = port, fd;

	port = p;
	fd = client_connect();
	port = save;
	assert_true(fd >= 0);
	return fd;
}

/* Runs the loop while fd is open, sending drip (if any) every 0.1 s;
 * what arrives goes to out. 1 once the server closed fd, 0 after limit
 * seconds. */
static int
until_closed(int fd, const char *drip, struct buf *out, double limit)
{
	struct timeval tv = {0, 100000};
	struct timespec t0, t;
	char b[4096];
	ssize_t n;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(fcntl(fd, F_SETFL, O_NONBLOCK), 0);
	for (;;) {
		while ((n = read(fd, b, sizeof(b))) > 0)
			if (out != NULL)
				assert_int_equal(buf_append(out, b, (size_t)n),
				                 0);
		if (n == 0 || (n == -1 && errno != EAGAIN))
			return 1;
		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((double)(t.tv_sec - t0.tv_sec) > limit)
			return 0;
		if (drip != NULL)
			(void)send(fd, drip, strlen(drip), MSG_NOSIGNAL);
		event_base_loopexit(base, &tv);
		event_base_dispatch(base);
	}
}

/*
 * The deadlines are totals, and the idle timeout (30 s here) never has
 * to act: an idle connection is closed by the header deadline, a body
 * sent a byte at a time by the body deadline (408), and a kept-alive
 * connection gets a new header deadline after each reply.
 */
static void
test_deadlines(void **state)
{
	struct hs_limits lim = {.max_body = MAX_BODY,
	                        .max_headers = 2048,
	                        .header_secs = 1,
	                        .body_secs = 1,
	                        .idle_secs = 30,
	                        .max_conns = 8};
	const char *up = "POST /upload HTTP/1.1\r\nHost: a\r\n"
	                 "Content-Length: 9000\r\n\r\n";
	struct hs_server *s;
	struct buf got;
	int p, fd, bad = ends_bad;

	(void)state;
	s = own_server(&lim, &p);
	fd = connect_to(p);
	assert_true(until_closed(fd, NULL, NULL, 10));
	close(fd);
	assert_int_equal(hs_server_closed(s, HS_CLOSED_HEADER), 1);

	buf_init(&got, 0);
	fd = connect_to(p);
	assert_int_equal(write(fd, up, strlen(up)), (ssize_t)strlen(up));
	assert_true(until_closed(fd, "a", &got, 10));
	close(fd);
	assert_non_null(strstr(buf_cstr(&got), "HTTP/1.1 408"));
	assert_int_equal(hs_server_closed(s, HS_CLOSED_BODY), 1);
	assert_int_equal(ends_bad, bad + 1);

	buf_setlen(&got, 0);
	fd = connect_to(p);
	assert_int_equal(write(fd, "GET /ping HTTP/1.1\r\n\r\n", 22), 22);
	assert_true(until_closed(fd, NULL, &got, 10));
	close(fd);
	assert_non_null(strstr(buf_cstr(&got), "HTTP/1.1 200"));
	assert_int_equal(hs_server_closed(s, HS_CLOSED_HEADER), 2);
	buf_free(&got);
	hs_server_free(s);
}

/* One address gets max_per_addr connections, the next is closed. */
static void
test_per_addr(void **state)
{
	struct hs_limits lim = {.max_body = MAX_BODY,
	                        .max_headers = 2048,
	                        .header_secs = 30,
	                        .idle_secs = 30,
	                        .max_conns = 8,
	                        .max_per_addr = 2};
	struct hs_server *s;
	int p, a, b, c;

	(void)state;
	s = own_server(&lim, &p);
	a = connect_to(p);
	b = connect_to(p);
	c = connect_to(p);
	assert_true(until_closed(c, NULL, NULL, 5));
	assert_int_equal(hs_server_conns(s), 2);
	assert_int_equal(hs_server_closed(s, HS_CLOSED_PER_ADDR), 1);
	close(a);
	close(b);
	close(c);
	hs_server_free(s);
}

/* Stopping (the last test: the server listens no more): a kept-alive
 * connection with a request in progress gets its reply, with
 * "Connection: close", and is closed; an idle one is closed at once. */
static void
test_stop(void **state)
{
	struct client c = {.sock = -1}, d = {.sock = -1};
	int idle;

	(void)state;
	idle = client_connect();
	assert_true(idle >= 0);
	while (hs_server_conns(srv) < 1)
		event_base_loop(base, EVLOOP_ONCE);
	c.req = "GET /later HTTP/1.1\r\nHost: a\r\n\r\n"; /* keep-alive */
	c.crowd = 1;
	stop_in_later = 1;
	run(&c);
	assert_int_equal(count(c.resp, "HTTP/1.1 202"), 1);
	assert_non_null(strstr(c.resp, "Connection: close"));
	while (hs_server_conns(srv) > 0)
		event_base_loop(base, EVLOOP_ONCE);
	/* The idle one was closed: EOF. */
	assert_int_equal(read(idle, d.resp, 1), 0);
	close(idle);
	d.req = "GET /ping HTTP/1.1\r\n\r\n";
	d.crowd = 1;
	run(&d);
	assert_int_equal(d.resp_len, 0); /* nobody listens */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pipelined),
	    cmocka_unit_test(test_many_pipelined),
	    cmocka_unit_test(test_content_length),
	    cmocka_unit_test(test_chunked),
	    cmocka_unit_test(test_too_large_declared),
	    cmocka_unit_test(test_too_large_streamed),
	    cmocka_unit_test(test_errors),
	    cmocka_unit_test(test_deferred),
	    cmocka_unit_test(test_client_gone),
	    cmocka_unit_test(test_max_conns),
	    cmocka_unit_test(test_deadlines),
	    cmocka_unit_test(test_per_addr),
	    cmocka_unit_test(test_stop),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
