/*
 * gwrelay: encoder and decoder of the gateway relay's payloads (see
 * gwrelay.h for the format). Pure: no I/O, no allocation in the decoder.
 */
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
