/*
 * gwrelay: encoder and decoder of the gateway relay's payloads (see
 * gwrelay.h for the format). Pure: no I/O, no allocation in the decoder.
 */
#include <arpa/inet.h>
#include <string.h>

#include "gwrelay.h"

int
gwrelay_serial_ok(const uint8_t *p, size_t len)
{
	size_t i;

	if (len == 0 || len > 128)
		return -1;
	for (i = 0; i < len; i++)
		if (!((p[i] >= '0' && p[i] <= '9') ||
		      (p[i] >= 'A' && p[i] <= 'F') ||
		      (p[i] >= 'a' && p[i] <= 'f')))
			return -1;
	return 0;
}

void
gwrelay_put_u32(struct buf *out, uint32_t v)
{
	uint8_t b[4];

	b[0] = (uint8_t)v;
	b[1] = (uint8_t)(v >> 8);
	b[2] = (uint8_t)(v >> 16);
	b[3] = (uint8_t)(v >> 24);
	buf_append(out, b, sizeof(b));
}

void
gwrelay_put_u64(struct buf *out, uint64_t v)
{
	gwrelay_put_u32(out, (uint32_t)v);
	gwrelay_put_u32(out, (uint32_t)(v >> 32));
}

void
gwrelay_put_str(struct buf *out, const void *p, size_t len)
{
	if (len > UINT32_MAX) {
		/* cannot be framed: make the buffer fail (errors stick) */
		buf_append(out, NULL, (size_t)-1);
		return;
	}
	gwrelay_put_u32(out, (uint32_t)len);
	if (len > 0)
		buf_append(out, p, len);
}

struct rd {
	const uint8_t *p;
	size_t len, off;
};

static int
rd_u32(struct rd *r, uint32_t *v)
{
	if (r->len - r->off < 4)
		return -1;
	*v = (uint32_t)r->p[r->off] | (uint32_t)r->p[r->off + 1] << 8 |
	     (uint32_t)r->p[r->off + 2] << 16 |
	     (uint32_t)r->p[r->off + 3] << 24;
	r->off += 4;
	return 0;
}

static int
rd_u64(struct rd *r, uint64_t *v)
{
	uint32_t lo, hi;

	if (rd_u32(r, &lo) == -1 || rd_u32(r, &hi) == -1)
		return -1;
	*v = (uint64_t)hi << 32 | lo;
	return 0;
}

static int
rd_bytes(struct rd *r, struct strv *v)
{
	uint32_t n;

	if (rd_u32(r, &n) == -1 || r->len - r->off < n)
		return -1;
	v->p = (const char *)r->p + r->off;
	v->len = n;
	r->off += n;
	return 0;
}

/* A string that may become a C string or a header: no NUL, CR, LF. */
static int
rd_str(struct rd *r, struct strv *v)
{
	size_t i;

	if (rd_bytes(r, v) == -1)
		return -1;
	for (i = 0; i < v->len; i++)
		if (v->p[i] == '\0' || v->p[i] == '\r' || v->p[i] == '\n')
			return -1;
	return 0;
}

static int
rd_headers(struct rd *r, struct gwrelay_hdr *h, size_t *n, const char **why)
{
	uint32_t count, i;

	if (rd_u32(r, &count) == -1) {
		*why = "truncated header count";
		return -1;
	}
	if (count > GWRELAY_MAX_HEADERS) {
		*why = "too many headers";
		return -1;
	}
	for (i = 0; i < count; i++) {
		if (rd_str(r, &h[i].name) == -1 ||
		    rd_str(r, &h[i].value) == -1) {
			*why = "bad header";
			return -1;
		}
		if (h[i].name.len == 0) {
			*why = "empty header name";
			return -1;
		}
	}
	*n = count;
	return 0;
}

int
gwrelay_req_decode(const uint8_t *p, size_t len, struct gwrelay_req *out,
                   const char **why)
{
	struct rd r = {p, len, 0};

	memset(out, 0, sizeof(*out));
	if (rd_str(&r, &out->method) == -1 || out->method.len == 0 ||
	    out->method.len > 16) {
		*why = "bad method";
		return -1;
	}
	if (rd_str(&r, &out->uri) == -1 || out->uri.len == 0 ||
	    out->uri.p[0] != '/') {
		*why = "bad uri";
		return -1;
	}
	if (rd_str(&r, &out->peer_addr) == -1 || out->peer_addr.len > 63) {
		*why = "bad peer address";
		return -1;
	}
	if (rd_bytes(&r, &out->cert) == -1) {
		*why = "bad certificate";
		return -1;
	}
	if (rd_headers(&r, out->headers, &out->nheaders, why) == -1)
		return -1;
	if (rd_bytes(&r, &out->body) == -1) {
		*why = "bad body";
		return -1;
	}
	if (r.off != len) {
		*why = "bytes after the body";
		return -1;
	}
	return 0;
}

int
gwrelay_reply_decode(const uint8_t *p, size_t len, struct gwrelay_reply *out,
                     const char **why)
{
	struct rd r = {p, len, 0};

	memset(out, 0, sizeof(*out));
	if (rd_u32(&r, &out->status) == -1 || out->status < 100 ||
	    out->status > 599) {
		*why = "bad status";
		return -1;
	}
	if (rd_headers(&r, out->headers, &out->nheaders, why) == -1)
		return -1;
	if (rd_bytes(&r, &out->body) == -1) {
		*why = "bad body";
		return -1;
	}
	if (r.off != len) {
		*why = "bytes after the body";
		return -1;
	}
	return 0;
}

int
gwrelay_stream_start_decode(const uint8_t *p, size_t len,
                            struct gwrelay_reply *out, uint64_t *max_queued,
                            const char **why)
{
	struct rd r;
	uint64_t q;

	if (gwrelay_reply_decode(p, len, out, why) == -1)
		return -1;
	r.p = (const uint8_t *)out->body.p;
	r.len = out->body.len;
	r.off = 0;
	if (r.len != 8 || rd_u64(&r, &q) == -1 || q == 0 ||
	    q > GWRELAY_MAX_QUEUED) {
		*why = "bad stream queue bound";
		return -1;
	}
	*max_queued = q;
	return 0;
}

int
gwrelay_stream_len_ok(uint32_t type, size_t len)
{
	switch (type) {
	case GWRELAY_STREAM_CHUNK:
		return len >= 1 && len <= GWRELAY_MAX_CHUNK ? 0 : -1;
	case GWRELAY_STREAM_END:
		return len == 0 ? 0 : -1;
	case GWRELAY_STREAM_GONE:
		return len == 1 ? 0 : -1;
	default:
		return -1;
	}
}

int
gwrelay_gone_decode(const uint8_t *p, size_t len, int *slow)
{
	if (gwrelay_stream_len_ok(GWRELAY_STREAM_GONE, len) == -1 ||
	    (p[0] != GWRELAY_GONE_LEFT && p[0] != GWRELAY_GONE_SLOW))
		return -1;
	*slow = p[0] == GWRELAY_GONE_SLOW;
	return 0;
}

int
gwrelay_stats_decode(const uint8_t *p, size_t len, struct gwrelay_stats *out,
                     const char **why)
{
	struct rd r = {p, len, 0};
	uint32_t n;
	size_t i;

	memset(out, 0, sizeof(*out));
	for (i = 0; i < GWRELAY_NSTATS; i++)
		if (rd_u64(&r, &out->v[i]) == -1) {
			*why = "truncated statistics";
			return -1;
		}
	if (rd_u32(&r, &n) == -1 || n > GWRELAY_MAX_REASONS) {
		*why = "bad reason count";
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (rd_str(&r, &out->reason[i]) == -1 ||
		    out->reason[i].len == 0 || out->reason[i].len > 63 ||
		    rd_u64(&r, &out->failures[i]) == -1) {
			*why = "bad failure reason";
			return -1;
		}
	}
	out->nreasons = n;
	if (r.off != len) {
		*why = "bytes after the statistics";
		return -1;
	}
	return 0;
}

int
gwrelay_tickets_decode(const uint8_t *p, size_t len,
                       struct gwrelay_tickets *out, const char **why)
{
	struct rd r = {p, len, 0};

	memset(out, 0, sizeof(*out));
	if (rd_u64(&r, &out->lifetime) == -1 ||
	    out->lifetime > (uint64_t)GWRELAY_MAX_TICKET_LIFETIME) {
		*why = "bad ticket lifetime";
		return -1;
	}
	if (rd_bytes(&r, &out->keys) == -1 ||
	    (out->keys.len != 0 && out->keys.len != GWRELAY_TICKET_KEY_LEN &&
	     out->keys.len != 2 * GWRELAY_TICKET_KEY_LEN)) {
		*why = "bad ticket keys";
		return -1;
	}
	if ((out->keys.len == 0) != (out->lifetime == 0)) {
		*why = "ticket keys without a lifetime, or the reverse";
		return -1;
	}
	if (r.off != len) {
		*why = "bytes after the ticket keys";
		return -1;
	}
	return 0;
}

void
gwrelay_put_syslog(struct buf *out, const struct gwrelay_slrec *r)
{
	gwrelay_put_u32(out, r->transport);
	gwrelay_put_str(out, r->addr.p, r->addr.len);
	gwrelay_put_u32(out, r->port);
	gwrelay_put_u32(out, r->sev);
	gwrelay_put_u64(out, r->time);
	gwrelay_put_u32(out, r->kind);
	gwrelay_put_str(out, r->data.p, r->data.len);
}

int
gwrelay_syslog_decode(const uint8_t *p, size_t len, struct gwrelay_slrec *recs,
                      size_t *n, const char **why)
{
	struct rd r = {p, len, 0};
	struct gwrelay_slrec *m;
	uint8_t bin[16];
	char addr[64];
	uint32_t count;
	size_t i;

	*n = 0;
	if (rd_u32(&r, &count) == -1 || count == 0 ||
	    count > GWRELAY_MAX_SYSLOG) {
		*why = "bad syslog message count";
		return -1;
	}
	for (i = 0; i < count; i++) {
		m = &recs[i];
		memset(m, 0, sizeof(*m));
		if (rd_u32(&r, &m->transport) == -1 ||
		    (m->transport != GWRELAY_SL_UDP &&
		     m->transport != GWRELAY_SL_TCP)) {
			*why = "bad syslog transport";
			return -1;
		}
		if (rd_str(&r, &m->addr) == -1 || m->addr.len == 0 ||
		    m->addr.len >= sizeof(addr)) {
			*why = "bad syslog sender address";
			return -1;
		}
		memcpy(addr, m->addr.p, m->addr.len);
		addr[m->addr.len] = '\0';
		if (strcmp(addr, "unknown") != 0 &&
		    inet_pton(AF_INET, addr, bin) != 1 &&
		    inet_pton(AF_INET6, addr, bin) != 1) {
			*why = "syslog sender address is not an address";
			return -1;
		}
		if (rd_u32(&r, &m->port) == -1 || m->port > 65535 ||
		    rd_u32(&r, &m->sev) == -1 || m->sev > 7 ||
		    rd_u64(&r, &m->time) == -1 ||
		    m->time > (uint64_t)GWRELAY_MAX_SL_TIME ||
		    rd_u32(&r, &m->kind) == -1 ||
		    (m->kind != GWRELAY_SL_PARSED &&
		     m->kind != GWRELAY_SL_RAW)) {
			*why = "bad syslog message fields";
			return -1;
		}
		if (rd_str(&r, &m->data) == -1 || m->data.len == 0 ||
		    m->data.len > GWRELAY_MAX_SL_DATA) {
			*why = "bad syslog message data";
			return -1;
		}
	}
	if (r.off != len) {
		*why = "bytes after the syslog messages";
		return -1;
	}
	*n = count;
	return 0;
}
