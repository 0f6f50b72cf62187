/*
 * Fuzz target for the gateway relay (src/proto/gwrelay.c and proc.c's
 * framing for event loops): what a compromised gateway worker could send
 * the core, and the core a worker. The input is read as a stream of
 * frames (proc_frame with a small limit, as the core reads its channel)
 * and each payload decoded as a request, a reply, statistics, the
 * streaming messages (the admin worker's live updates), session ticket
 * keys and syslog messages (the syslog worker's). Checks
 * the promises: no read past the input, a frame never longer than the
 * input or the limit, every view inside its payload, strings without NUL,
 * CR or LF, counts within their bounds, and a decoded request that
 * re-encodes to the very same bytes (one canonical form).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "gwrelay.h"
#include "proc.h"

#define MAX_MSG 65536

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
inside(struct strv v, const uint8_t *p, size_t len)
{
	if (v.len > 0 && ((const uint8_t *)v.p < p ||
	                  (const uint8_t *)v.p + v.len > p + len))
		abort();
}

static void
clean(struct strv v)
{
	if (memchr(v.p, '\0', v.len) || memchr(v.p, '\r', v.len) ||
	    memchr(v.p, '\n', v.len))
		abort();
}

static void
check_payload(const uint8_t *p, size_t len)
{
	struct gwrelay_req rq;
	struct gwrelay_reply rp;
	struct gwrelay_stats st;
	struct gwrelay_tickets tk;
	struct buf again;
	const char *why = NULL;
	uint64_t q = 0;
	uint32_t t;
	size_t i;

	if (gwrelay_req_decode(p, len, &rq, &why) == 0) {
		inside(rq.method, p, len);
		inside(rq.uri, p, len);
		inside(rq.peer_addr, p, len);
		inside(rq.cert, p, len);
		inside(rq.body, p, len);
		clean(rq.method);
		clean(rq.uri);
		clean(rq.peer_addr);
		if (rq.nheaders > GWRELAY_MAX_HEADERS)
			abort();
		buf_init(&again, len + 1);
		gwrelay_put_str(&again, rq.method.p, rq.method.len);
		gwrelay_put_str(&again, rq.uri.p, rq.uri.len);
		gwrelay_put_str(&again, rq.peer_addr.p, rq.peer_addr.len);
		gwrelay_put_str(&again, rq.cert.p, rq.cert.len);
		gwrelay_put_u32(&again, (uint32_t)rq.nheaders);
		for (i = 0; i < rq.nheaders; i++) {
			inside(rq.headers[i].name, p, len);
			inside(rq.headers[i].value, p, len);
			clean(rq.headers[i].name);
			clean(rq.headers[i].value);
			gwrelay_put_str(&again, rq.headers[i].name.p,
			                rq.headers[i].name.len);
			gwrelay_put_str(&again, rq.headers[i].value.p,
			                rq.headers[i].value.len);
		}
		gwrelay_put_str(&again, rq.body.p, rq.body.len);
		if (buf_ok(&again) == -1 || again.len != len ||
		    memcmp(again.data, p, len) != 0)
			abort();
		buf_free(&again);
	} else if (why == NULL)
		abort();
	why = NULL;
	if (gwrelay_reply_decode(p, len, &rp, &why) == 0) {
		if (rp.status < 100 || rp.status > 599 ||
		    rp.nheaders > GWRELAY_MAX_HEADERS)
			abort();
		inside(rp.body, p, len);
		for (i = 0; i < rp.nheaders; i++) {
			clean(rp.headers[i].name);
			clean(rp.headers[i].value);
		}
	} else if (why == NULL)
		abort();
	why = NULL;
	if (gwrelay_stream_start_decode(p, len, &rp, &q, &why) == 0) {
		if (rp.status < 100 || rp.status > 599 ||
		    rp.nheaders > GWRELAY_MAX_HEADERS || rp.body.len != 8 ||
		    q == 0 || q > GWRELAY_MAX_QUEUED)
			abort();
		inside(rp.body, p, len);
		for (i = 0; i < rp.nheaders; i++) {
			clean(rp.headers[i].name);
			clean(rp.headers[i].value);
		}
	} else if (why == NULL)
		abort();
	for (t = 0; t <= GWRELAY_STREAM_GONE + 1; t++)
		if (gwrelay_stream_len_ok(t, len) == 0 &&
		    (t < GWRELAY_STREAM_CHUNK || t > GWRELAY_STREAM_GONE ||
		     (t == GWRELAY_STREAM_CHUNK &&
		      (len == 0 || len > GWRELAY_MAX_CHUNK)) ||
		     (t == GWRELAY_STREAM_END && len != 0) ||
		     (t == GWRELAY_STREAM_GONE && len != 1)))
			abort();
	{
		int slow = -1;

		if (gwrelay_gone_decode(p, len, &slow) == 0 &&
		    (len != 1 || p[0] > 1 || slow != p[0]))
			abort();
	}
	/* Syslog messages (the syslog worker's): counts, fields and
	 * views within their bounds, the address one inet_pton takes. */
	why = NULL;
	{
		static struct gwrelay_slrec sl[GWRELAY_MAX_SYSLOG];
		size_t nsl = 0;

		if (gwrelay_syslog_decode(p, len, sl, &nsl, &why) == 0) {
			if (nsl == 0 || nsl > GWRELAY_MAX_SYSLOG)
				abort();
			for (i = 0; i < nsl; i++) {
				inside(sl[i].addr, p, len);
				inside(sl[i].data, p, len);
				clean(sl[i].addr);
				clean(sl[i].data);
				if (sl[i].transport > 1 || sl[i].kind > 1 ||
				    sl[i].port > 65535 || sl[i].sev > 7 ||
				    sl[i].addr.len == 0 ||
				    sl[i].addr.len > 63 ||
				    sl[i].data.len == 0 ||
				    sl[i].data.len > GWRELAY_MAX_SL_DATA)
					abort();
			}
		} else if (why == NULL || nsl != 0)
			abort();
	}
	/* A serial (GWRELAY_REVOKED): hex digits only, 1..128. */
	if (gwrelay_serial_ok(p, len) == 0) {
		if (len == 0 || len > 128)
			abort();
		for (i = 0; i < len; i++)
			if (!strchr("0123456789ABCDEFabcdef", p[i]) ||
			    p[i] == '\0')
				abort();
	}
	why = NULL;
	if (gwrelay_stats_decode(p, len, &st, &why) == 0) {
		if (st.nreasons > GWRELAY_MAX_REASONS)
			abort();
		for (i = 0; i < st.nreasons; i++) {
			inside(st.reason[i], p, len);
			clean(st.reason[i]);
			if (st.reason[i].len == 0 || st.reason[i].len > 63)
				abort();
		}
	} else if (why == NULL)
		abort();
	/* Ticket keys (GWRELAY_TICKET_KEYS): 0, 1 or 2 keys, a lifetime
	 * exactly when there are keys, one canonical form. */
	why = NULL;
	if (gwrelay_tickets_decode(p, len, &tk, &why) == 0) {
		inside(tk.keys, p, len);
		if (tk.lifetime > (uint64_t)GWRELAY_MAX_TICKET_LIFETIME ||
		    (tk.keys.len != 0 &&
		     tk.keys.len != GWRELAY_TICKET_KEY_LEN &&
		     tk.keys.len != 2 * GWRELAY_TICKET_KEY_LEN) ||
		    (tk.keys.len == 0) != (tk.lifetime == 0))
			abort();
		buf_init(&again, len + 1);
		gwrelay_put_u64(&again, tk.lifetime);
		gwrelay_put_str(&again, tk.keys.p, tk.keys.len);
		if (buf_ok(&again) == -1 || again.len != len ||
		    memcmp(again.data, p, len) != 0)
			abort();
		buf_free(&again);
	} else if (why == NULL)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proc_hdr hdr;
	size_t off = 0;
	int rc;

	/* The whole input as one payload, then as a stream of frames. */
	check_payload(data, size);
	while (off < size) {
		rc = proc_frame(data + off, size - off, MAX_MSG, &hdr);
		if (rc != 1)
			break;
		if (hdr.len > MAX_MSG || sizeof(hdr) + hdr.len > size - off)
			abort();
		check_payload(data + off + sizeof(hdr), hdr.len);
		off += sizeof(hdr) + hdr.len;
	}
	return 0;
}
