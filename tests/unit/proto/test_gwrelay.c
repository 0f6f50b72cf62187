/*
 * Unit tests for src/proto/gwrelay.c, the payloads between vigild's
 * gateway workers and its core: requests, replies and statistics round
 * trip; every truncation of a valid payload, a string with CR/LF or NUL,
 * too many headers, a bad status and bytes left over are refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "gwrelay.h"

static void
put_req(struct buf *b, const char *method, const char *uri, const char *hname,
        const char *hval, const char *body)
{
	gwrelay_put_str(b, method, strlen(method));
	gwrelay_put_str(b, uri, strlen(uri));
	gwrelay_put_str(b, "127.0.0.1", 9);
	gwrelay_put_str(b, "\x30\x00", 2); /* "DER": opaque here */
	gwrelay_put_u32(b, 1);
	gwrelay_put_str(b, hname, strlen(hname));
	gwrelay_put_str(b, hval, strlen(hval));
	gwrelay_put_str(b, body, strlen(body));
}

static void
test_request(void **state)
{
	struct gwrelay_req rq;
	struct buf b;
	const char *why = NULL;
	size_t cut;

	(void)state;
	buf_init(&b, 1 << 20);
	put_req(&b, "POST", "/v1/events?x=1", "Content-Type",
	        "application/json", "{\"a\":1}");
	assert_int_equal(buf_ok(&b), 0);
	assert_int_equal(gwrelay_req_decode(b.data, b.len, &rq, &why), 0);
	assert_true(strv_eq(rq.method, "POST"));
	assert_true(strv_eq(rq.uri, "/v1/events?x=1"));
	assert_true(strv_eq(rq.peer_addr, "127.0.0.1"));
	assert_int_equal(rq.cert.len, 2);
	assert_int_equal(rq.nheaders, 1);
	assert_true(strv_eq(rq.headers[0].value, "application/json"));
	assert_true(strv_eq(rq.body, "{\"a\":1}"));
	/* Every cut short is an error, never a shorter request. */
	for (cut = 0; cut < b.len; cut++)
		assert_int_equal(gwrelay_req_decode(b.data, cut, &rq, &why),
		                 -1);
	/* A byte more: refused. */
	buf_putc(&b, 0);
	assert_int_equal(gwrelay_req_decode(b.data, b.len, &rq, &why), -1);
	assert_string_equal(why, "bytes after the body");

	/* Header injection through the relay: CR/LF in a value. */
	buf_reset(&b);
	put_req(&b, "GET", "/v1/ping", "X-A", "a\r\nX-Evil: 1", "");
	assert_int_equal(gwrelay_req_decode(b.data, b.len, &rq, &why), -1);
	buf_reset(&b);
	put_req(&b, "GET", "v1/ping", "X-A", "a", "");
	assert_int_equal(gwrelay_req_decode(b.data, b.len, &rq, &why), -1);
	assert_string_equal(why, "bad uri");
	buf_free(&b);
}

static void
test_too_many_headers(void **state)
{
	struct gwrelay_req rq;
	struct buf b;
	const char *why = NULL;
	uint32_t i;

	(void)state;
	buf_init(&b, 1 << 20);
	gwrelay_put_str(&b, "GET", 3);
	gwrelay_put_str(&b, "/", 1);
	gwrelay_put_str(&b, "", 0);
	gwrelay_put_str(&b, "", 0);
	gwrelay_put_u32(&b, GWRELAY_MAX_HEADERS + 1);
	for (i = 0; i < GWRELAY_MAX_HEADERS + 1; i++) {
		gwrelay_put_str(&b, "A", 1);
		gwrelay_put_str(&b, "b", 1);
	}
	gwrelay_put_str(&b, "", 0);
	assert_int_equal(gwrelay_req_decode(b.data, b.len, &rq, &why), -1);
	assert_string_equal(why, "too many headers");
	buf_free(&b);
}

static void
test_reply_and_stats(void **state)
{
	struct gwrelay_reply rp;
	struct gwrelay_stats st;
	struct buf b;
	const char *why = NULL;
	int i;

	(void)state;
	buf_init(&b, 1 << 20);
	gwrelay_put_u32(&b, 200);
	gwrelay_put_u32(&b, 1);
	gwrelay_put_str(&b, "Content-Type", 12);
	gwrelay_put_str(&b, "text/plain", 10);
	gwrelay_put_str(&b, "hello", 5);
	assert_int_equal(gwrelay_reply_decode(b.data, b.len, &rp, &why), 0);
	assert_int_equal(rp.status, 200);
	assert_true(strv_eq(rp.body, "hello"));
	b.data[0] = 99; /* status 99 */
	assert_int_equal(gwrelay_reply_decode(b.data, b.len, &rp, &why), -1);
	assert_string_equal(why, "bad status");

	buf_reset(&b);
	for (i = 0; i < GWRELAY_NSTATS; i++)
		gwrelay_put_u64(&b, (uint64_t)i << 33);
	gwrelay_put_u32(&b, 1);
	gwrelay_put_str(&b, "wrong_role", 10);
	gwrelay_put_u64(&b, 7);
	assert_int_equal(gwrelay_stats_decode(b.data, b.len, &st, &why), 0);
	assert_int_equal(st.v[GWRELAY_NSTATS - 1],
	                 (uint64_t)(GWRELAY_NSTATS - 1) << 33);
	assert_int_equal(st.nreasons, 1);
	assert_true(strv_eq(st.reason[0], "wrong_role"));
	assert_int_equal(st.failures[0], 7);
	assert_int_equal(gwrelay_stats_decode(b.data, b.len - 1, &st, &why),
	                 -1);
	assert_int_equal(gwrelay_serial_ok((const uint8_t *)"0A1b", 4), 0);
	assert_int_equal(gwrelay_serial_ok((const uint8_t *)"0A1g", 4), -1);
	assert_int_equal(gwrelay_serial_ok((const uint8_t *)"", 0), -1);
	assert_int_equal(gwrelay_serial_ok((const uint8_t *)"0\n", 2), -1);
	buf_free(&b);
}

static void
put_tickets(struct buf *b, uint64_t lifetime, size_t nkeys)
{
	uint8_t keys[2 * GWRELAY_TICKET_KEY_LEN];

	memset(keys, 0xa5, sizeof(keys));
	buf_reset(b);
	gwrelay_put_u64(b, lifetime);
	gwrelay_put_str(b, keys, nkeys * GWRELAY_TICKET_KEY_LEN);
}

/* Session ticket keys: 0 (off, lifetime 0), 1 or 2 keys with a lifetime
 * up to GWRELAY_MAX_TICKET_LIFETIME; anything else refused. */
static void
test_tickets(void **state)
{
	struct gwrelay_tickets tk;
	struct buf b;
	const char *why;
	size_t n, cut;

	(void)state;
	buf_init(&b, 4096);
	for (n = 0; n <= 2; n++) {
		put_tickets(&b, n == 0 ? 0 : 43200, n);
		why = NULL;
		assert_int_equal(
		    gwrelay_tickets_decode(b.data, b.len, &tk, &why), 0);
		assert_int_equal(tk.lifetime, n == 0 ? 0 : 43200);
		assert_int_equal(tk.keys.len, n * GWRELAY_TICKET_KEY_LEN);
		/* every truncation refused, with a reason */
		for (cut = 0; cut < b.len; cut++) {
			why = NULL;
			assert_int_equal(
			    gwrelay_tickets_decode(b.data, cut, &tk, &why), -1);
			assert_non_null(why);
		}
	}
	put_tickets(&b, GWRELAY_MAX_TICKET_LIFETIME, 2);
	assert_int_equal(gwrelay_tickets_decode(b.data, b.len, &tk, &why), 0);
	put_tickets(&b, GWRELAY_MAX_TICKET_LIFETIME + 1, 2);
	assert_int_equal(gwrelay_tickets_decode(b.data, b.len, &tk, &why), -1);
	assert_string_equal(why, "bad ticket lifetime");
	put_tickets(&b, 0, 1); /* keys without a lifetime */
	assert_int_equal(gwrelay_tickets_decode(b.data, b.len, &tk, &why), -1);
	put_tickets(&b, 60, 0); /* a lifetime without keys */
	assert_int_equal(gwrelay_tickets_decode(b.data, b.len, &tk, &why), -1);
	/* not a whole number of keys, or three */
	buf_reset(&b);
	gwrelay_put_u64(&b, 60);
	gwrelay_put_str(&b, "0123456789", 10);
	assert_int_equal(gwrelay_tickets_decode(b.data, b.len, &tk, &why), -1);
	assert_string_equal(why, "bad ticket keys");
	{
		uint8_t three[3 * GWRELAY_TICKET_KEY_LEN] = {0};

		buf_reset(&b);
		gwrelay_put_u64(&b, 60);
		gwrelay_put_str(&b, three, sizeof(three));
		assert_int_equal(
		    gwrelay_tickets_decode(b.data, b.len, &tk, &why), -1);
	}
	put_tickets(&b, 60, 1);
	buf_append(&b, "x", 1);
	assert_int_equal(gwrelay_tickets_decode(b.data, b.len, &tk, &why), -1);
	assert_string_equal(why, "bytes after the ticket keys");
	buf_free(&b);
}

/* Streaming replies: the head carries the queue bound (8 bytes, 1 to
 * GWRELAY_MAX_QUEUED); chunks are 1 byte to GWRELAY_MAX_CHUNK, end and
 * gone are empty. */
static void
test_stream(void **state)
{
	struct gwrelay_reply rp;
	struct buf b;
	const char *why = NULL;
	uint64_t q = 0;
	size_t cut;

	(void)state;
	buf_init(&b, 1 << 20);
	gwrelay_put_u32(&b, 200);
	gwrelay_put_u32(&b, 2);
	gwrelay_put_str(&b, "Content-Type", 12);
	gwrelay_put_str(&b, "text/event-stream", 17);
	gwrelay_put_str(&b, "Set-Cookie", 10);
	gwrelay_put_str(&b, "a=b", 3);
	gwrelay_put_str(&b, "\x00\x00\x01\x00\x00\x00\x00\x00", 8);
	assert_int_equal(
	    gwrelay_stream_start_decode(b.data, b.len, &rp, &q, &why), 0);
	assert_int_equal(q, 65536);
	assert_int_equal(rp.nheaders, 2);
	assert_true(strv_eq(rp.headers[1].value, "a=b"));
	for (cut = 0; cut < b.len; cut++)
		assert_int_equal(
		    gwrelay_stream_start_decode(b.data, cut, &rp, &q, &why),
		    -1);
	/* A bound of 0, or past the limit, is refused. */
	memset(b.data + b.len - 8, 0, 8);
	assert_int_equal(
	    gwrelay_stream_start_decode(b.data, b.len, &rp, &q, &why), -1);
	assert_string_equal(why, "bad stream queue bound");
	memset(b.data + b.len - 8, 0xff, 8);
	assert_int_equal(
	    gwrelay_stream_start_decode(b.data, b.len, &rp, &q, &why), -1);
	/* A body that is not 8 bytes. */
	buf_reset(&b);
	gwrelay_put_u32(&b, 200);
	gwrelay_put_u32(&b, 0);
	gwrelay_put_str(&b, "data", 4);
	assert_int_equal(
	    gwrelay_stream_start_decode(b.data, b.len, &rp, &q, &why), -1);

	assert_int_equal(gwrelay_stream_len_ok(GWRELAY_STREAM_CHUNK, 1), 0);
	assert_int_equal(
	    gwrelay_stream_len_ok(GWRELAY_STREAM_CHUNK, GWRELAY_MAX_CHUNK), 0);
	assert_int_equal(gwrelay_stream_len_ok(GWRELAY_STREAM_CHUNK, 0), -1);
	assert_int_equal(
	    gwrelay_stream_len_ok(GWRELAY_STREAM_CHUNK, GWRELAY_MAX_CHUNK + 1),
	    -1);
	assert_int_equal(gwrelay_stream_len_ok(GWRELAY_STREAM_END, 0), 0);
	assert_int_equal(gwrelay_stream_len_ok(GWRELAY_STREAM_END, 1), -1);
	assert_int_equal(gwrelay_stream_len_ok(GWRELAY_STREAM_GONE, 1), 0);
	assert_int_equal(gwrelay_stream_len_ok(GWRELAY_STREAM_GONE, 0), -1);
	assert_int_equal(gwrelay_stream_len_ok(GWRELAY_STREAM_GONE, 4), -1);
	{
		int slow = -1;

		assert_int_equal(
		    gwrelay_gone_decode((const uint8_t *)"\x01", 1, &slow), 0);
		assert_int_equal(slow, 1);
		assert_int_equal(
		    gwrelay_gone_decode((const uint8_t *)"\x00", 1, &slow), 0);
		assert_int_equal(slow, 0);
		assert_int_equal(
		    gwrelay_gone_decode((const uint8_t *)"\x02", 1, &slow), -1);
		assert_int_equal(
		    gwrelay_gone_decode((const uint8_t *)"\x00\x00", 2, &slow),
		    -1);
	}
	assert_int_equal(gwrelay_stream_len_ok(GWRELAY_REPLY, 0), -1);
	buf_free(&b);
}

/* One syslog record as the syslog worker writes it. */
static void
put_slrec(struct buf *b, uint32_t transport, const char *addr, uint32_t port,
          uint32_t sev, uint64_t t, uint32_t kind, const char *data)
{
	struct gwrelay_slrec r = {
	    transport,           port, sev, kind, t, {addr, strlen(addr)},
	    {data, strlen(data)}};

	gwrelay_put_syslog(b, &r);
}

/* A batch decodes field by field; what a compromised syslog worker could
 * slip past the core (a sender "address" that is none, a severity or
 * port out of range, a count of 0 or past the limit, a record cut short,
 * bytes after the last) is refused. */
static void
test_syslog(void **state)
{
	static struct gwrelay_slrec r[GWRELAY_MAX_SYSLOG];
	struct buf b;
	const char *why = NULL;
	size_t n = 99, i;
	struct {
		const char *addr;
		uint32_t transport, port, sev, kind;
		const char *data;
	} bad[] = {
	    {"syslog:../x", 0, 514, 6, 0, "{}"},
	    {"10.0.0.1; DROP", 0, 514, 6, 0, "{}"},
	    {"", 0, 514, 6, 0, "{}"},
	    {"10.0.0.1", 2, 514, 6, 0, "{}"},
	    {"10.0.0.1", 0, 65536, 6, 0, "{}"},
	    {"10.0.0.1", 0, 514, 8, 0, "{}"},
	    {"10.0.0.1", 0, 514, 6, 2, "{}"},
	    {"10.0.0.1", 0, 514, 6, 0, ""},
	    {"10.0.0.1", 0, 514, 6, 0, "{\"a\":\n1}"},
	};

	(void)state;
	buf_init(&b, 1 << 20);
	gwrelay_put_u32(&b, 3);
	put_slrec(&b, GWRELAY_SL_UDP, "192.0.2.7", 51514, 3, 1796000000,
	          GWRELAY_SL_PARSED, "{\"message\":\"x\"}");
	put_slrec(&b, GWRELAY_SL_TCP, "2001:db8::1", 0, 7, 0, GWRELAY_SL_RAW,
	          "{\"raw\":\"y\"}");
	put_slrec(&b, GWRELAY_SL_TCP, "unknown", 65535, 0, 0, GWRELAY_SL_PARSED,
	          "{}");
	assert_int_equal(buf_ok(&b), 0);
	assert_int_equal(gwrelay_syslog_decode(b.data, b.len, r, &n, &why), 0);
	assert_int_equal(n, 3);
	assert_int_equal(r[0].transport, GWRELAY_SL_UDP);
	assert_int_equal(r[0].addr.len, 9);
	assert_memory_equal(r[0].addr.p, "192.0.2.7", 9);
	assert_int_equal(r[0].port, 51514);
	assert_int_equal(r[0].sev, 3);
	assert_int_equal(r[0].time, 1796000000);
	assert_int_equal(r[0].kind, GWRELAY_SL_PARSED);
	assert_int_equal(r[0].data.len, 15);
	assert_int_equal(r[1].kind, GWRELAY_SL_RAW);
	assert_memory_equal(r[1].addr.p, "2001:db8::1", 11);
	assert_int_equal(r[2].port, 65535);
	/* Cut short anywhere, or a byte more: refused. */
	for (i = 0; i < b.len; i++) {
		why = NULL;
		assert_int_equal(gwrelay_syslog_decode(b.data, i, r, &n, &why),
		                 -1);
		assert_non_null(why);
		assert_int_equal(n, 0);
	}
	buf_append(&b, "x", 1);
	assert_int_equal(gwrelay_syslog_decode(b.data, b.len, r, &n, &why), -1);
	/* Each bad field. */
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		buf_reset(&b);
		gwrelay_put_u32(&b, 1);
		put_slrec(&b, bad[i].transport, bad[i].addr, bad[i].port,
		          bad[i].sev, 0, bad[i].kind, bad[i].data);
		why = NULL;
		if (gwrelay_syslog_decode(b.data, b.len, r, &n, &why) != -1)
			fail_msg("bad record %zu was taken", i);
		assert_non_null(why);
	}
	/* Times: up to GWRELAY_MAX_SL_TIME. */
	buf_reset(&b);
	gwrelay_put_u32(&b, 1);
	put_slrec(&b, 0, "10.0.0.1", 1, 1, GWRELAY_MAX_SL_TIME, 0, "{}");
	assert_int_equal(gwrelay_syslog_decode(b.data, b.len, r, &n, &why), 0);
	buf_reset(&b);
	gwrelay_put_u32(&b, 1);
	put_slrec(&b, 0, "10.0.0.1", 1, 1, GWRELAY_MAX_SL_TIME + 1, 0, "{}");
	assert_int_equal(gwrelay_syslog_decode(b.data, b.len, r, &n, &why), -1);
	/* Counts: none, and one past the limit. */
	buf_reset(&b);
	gwrelay_put_u32(&b, 0);
	assert_int_equal(gwrelay_syslog_decode(b.data, b.len, r, &n, &why), -1);
	buf_reset(&b);
	gwrelay_put_u32(&b, GWRELAY_MAX_SYSLOG + 1);
	for (i = 0; i < GWRELAY_MAX_SYSLOG + 1; i++)
		put_slrec(&b, 0, "10.0.0.1", 1, 1, 0, 0, "{}");
	assert_int_equal(gwrelay_syslog_decode(b.data, b.len, r, &n, &why), -1);
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_request),
	    cmocka_unit_test(test_too_many_headers),
	    cmocka_unit_test(test_reply_and_stats),
	    cmocka_unit_test(test_tickets),
	    cmocka_unit_test(test_stream),
	    cmocka_unit_test(test_syslog),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
