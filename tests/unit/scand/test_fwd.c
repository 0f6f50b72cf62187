/*
 * Tests of src/scand/fwd.c, vigil-scand's findings to syslog: over UDP a
 * finding becomes one datagram in the chosen format (source, file, rules,
 * the severity from the level) and a message too large for a datagram is
 * dropped and counted; over TCP messages wait in the bounded queue while
 * the connection is not up (what does not fit is counted as dropped) and
 * go out octet-counted once it is, or one per line with newline framing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <cmocka.h>

#include "fwd.c"

/* A socket of type on 127.0.0.1, any port; *port gets it. */
static int
local_socket(int type, int *port)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	struct timeval tv = {10, 0}; /* only so a broken test cannot hang */
	int fd = socket(AF_INET, type, 0);

	assert_true(fd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	*port = ntohs(sa.sin_port);
	return fd;
}

static void
conf(struct scand_conf *c, int transport, int port, int format)
{
	memset(c, 0, sizeof(*c));
	c->syslog_enable = 1;
	c->syslog_transport = transport;
	c->syslog_host = (char *)"127.0.0.1";
	c->syslog_port = port;
	c->syslog_format = format;
	c->syslog_facility = 16;
	c->syslog_queue = 4096;
}

static json_t *
findings(const char *path)
{
	json_t *f = json_pack(
	    "[{s:s,s:{s:s},s:s,s:{s:s,s:{s:s},s:i},s:i,s:[{s:{s:s}}]}]", "type",
	    "THOR finding", "meta", "level", "Alert", "message",
	    "Malicious file found", "subject", "path", path, "hashes", "sha256",
	    "ab12", "size", 29, "score", 85, "reasons", "signature",
	    "rule_name", "Vigil_Test_Marker");

	assert_non_null(f);
	return f;
}

static void
test_udp(void **state)
{
	struct event_base *base = event_base_new();
	struct scand_conf c;
	struct buf err;
	struct fwd *f;
	json_t *fs;
	char dg[70000], *big;
	long long sent, queued, dropped;
	ssize_t n;
	int port, fd = local_socket(SOCK_DGRAM, &port);

	(void)state;
	buf_init(&err, 4096);
	conf(&c, 0, port, SYSLOGFMT_JSON);
	f = fwd_new(base, &c, NULL, &err);
	assert_non_null(f);
	fs = findings("C:\\Temp\\m.bin");
	fwd_findings(f, fs, "host-a", 7);
	json_decref(fs);
	n = recv(fd, dg, sizeof(dg) - 1, 0);
	assert_true(n > 0);
	dg[n] = '\0';
	assert_non_null(strstr(dg, "<129>1 ")); /* local0, alert */
	assert_non_null(strstr(dg, "\"agent_id\":\"vigil-scand\""));
	assert_non_null(strstr(dg, "\"type\":\"finding\""));
	assert_non_null(strstr(dg, "\"level\":\"alert\""));
	assert_non_null(strstr(dg, "\"source\":\"host-a\""));
	assert_non_null(strstr(dg, "\"scan_id\":7"));
	assert_non_null(strstr(dg, "\"file\":\"C:\\\\Temp\\\\m.bin\""));
	assert_non_null(strstr(dg, "\"rules\":[\"Vigil_Test_Marker\"]"));
	fwd_counters(f, &sent, &queued, &dropped);
	assert_int_equal(sent, 1);
	assert_int_equal(dropped, 0);

	/* Larger than a datagram: dropped, counted, nothing sent. */
	big = malloc(70001);
	assert_non_null(big);
	memset(big, 'a', 70000);
	big[70000] = '\0';
	fs = findings(big);
	fwd_findings(f, fs, "host-a", 8);
	json_decref(fs);
	free(big);
	fwd_counters(f, &sent, &queued, &dropped);
	assert_int_equal(sent, 1);
	assert_int_equal(dropped, 1);
	fwd_free(f);
	event_base_free(base);
	close(fd);
	buf_free(&err);
}

static void
test_tcp(void **state)
{
	struct event_base *base = event_base_new();
	struct scand_conf c;
	struct buf err;
	struct fwd *f;
	json_t *fs = findings("/tmp/x");
	long long sent, queued, dropped;
	char got[4096];
	size_t have = 0;
	ssize_t n;
	int port, i, cfd, lfd = local_socket(SOCK_STREAM, &port);

	(void)state;
	buf_init(&err, 4096);
	assert_int_equal(listen(lfd, 4), 0);
	conf(&c, 1, port, SYSLOGFMT_RFC5424);
	f = fwd_new(base, &c, NULL, &err);
	assert_non_null(f);
	/* Not connected before the loop runs: queued up to 4096 bytes. */
	for (i = 0; i < 40; i++)
		fwd_findings(f, fs, "host-b", i);
	fwd_counters(f, &sent, &queued, &dropped);
	assert_int_equal(sent, 0);
	assert_true(queued > 0);
	assert_true(dropped > 0);
	assert_int_equal(queued + dropped, 40);
	assert_true(evbuffer_get_length(f->pending) <= 4096);

	/* The loop connects and hands the queue over. */
	while (!f->connected)
		event_base_loop(base, EVLOOP_ONCE);
	fwd_counters(f, &sent, &queued, &dropped);
	assert_int_equal(queued, 0);
	assert_int_equal(sent + dropped, 40);
	while (evbuffer_get_length(bufferevent_get_output(f->bev)) > 0)
		event_base_loop(base, EVLOOP_ONCE);
	cfd = accept(lfd, NULL, NULL);
	assert_true(cfd >= 0);
	while (have < 200 &&
	       (n = recv(cfd, got + have, sizeof(got) - 1 - have, 0)) > 0)
		have += (size_t)n;
	got[have] = '\0';
	/* RFC 6587 octet counting: "LEN <PRI>1 ..." */
	assert_true(got[0] >= '1' && got[0] <= '9');
	assert_non_null(strstr(got, " <129>1 "));
	assert_non_null(strstr(got, "vigil - finding"));
	json_decref(fs);
	fwd_free(f);
	event_base_free(base);
	close(cfd);
	close(lfd);
	buf_free(&err);
}

static int
lines(const char *p, size_t n)
{
	int k = 0;

	while (n-- > 0)
		k += *p++ == '\n';
	return k;
}

/* Newline framing: messages end with LF, no length in front. */
static void
test_tcp_newline(void **state)
{
	struct event_base *base = event_base_new();
	struct scand_conf c;
	struct buf err;
	struct fwd *f;
	json_t *fs = findings("/tmp/y");
	char got[4096];
	size_t have = 0;
	ssize_t n;
	int port, cfd, lfd = local_socket(SOCK_STREAM, &port);

	(void)state;
	buf_init(&err, 4096);
	assert_int_equal(listen(lfd, 4), 0);
	conf(&c, 1, port, SYSLOGFMT_RFC3164);
	c.syslog_framing = SYSLOGFMT_NEWLINE;
	f = fwd_new(base, &c, NULL, &err);
	assert_non_null(f);
	fwd_findings(f, fs, "host-c", 1);
	fwd_findings(f, fs, "host-c", 2);
	while (!f->connected ||
	       evbuffer_get_length(bufferevent_get_output(f->bev)) > 0)
		event_base_loop(base, EVLOOP_ONCE);
	cfd = accept(lfd, NULL, NULL);
	assert_true(cfd >= 0);
	while (lines(got, have) < 2) {
		n = recv(cfd, got + have, sizeof(got) - 1 - have, 0);
		assert_true(n > 0);
		have += (size_t)n;
	}
	got[have] = '\0';
	assert_int_equal(got[have - 1], '\n');
	assert_memory_equal(got, "<129>", 5); /* no octet count */
	assert_non_null(strstr(got, "\n<129>"));
	assert_non_null(strstr(got, "\"scan_id\":1"));
	assert_non_null(strstr(got, "\"scan_id\":2"));
	json_decref(fs);
	fwd_free(f);
	event_base_free(base);
	close(cfd);
	close(lfd);
	buf_free(&err);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_udp),
	    cmocka_unit_test(test_tcp),
	    cmocka_unit_test(test_tcp_newline),
	};

	log_init("test_fwd", LOG_DEST_STDERR, LOG_LVL_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
