/*
 * spoolrec: encoder and decoder of the agent's spool records (format in
 * spoolrec.h and docs/spool.md). No I/O and no logging: the spool reads
 * segment files and decides what a failure means there (a torn tail at the
 * end of the newest segment, a corrupt record anywhere else).
 *
 * The decoder never trusts a field before the header checksum has been
 * verified, and never reads past len: a damaged length cannot make it read
 * out of bounds or ask for gigabytes that will never come.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "buf.h"
#include "spoolrec.h"

/* Offsets of the header fields. */
#define OFF_VERSION 4
#define OFF_KIND    5
#define OFF_FLAGS   6
#define OFF_LEN     8
#define OFF_SEQ     12
#define OFF_PCRC    20
#define OFF_HCRC    24

static uint32_t crc_table[256];
static int crc_ready;

/* Reflected CRC32C polynomial. The table is built on first use; the spool
 * is single-threaded and a race would only compute the same values twice. */
static void
crc_init(void)
{
	uint32_t c;
	int i, k;

	for (i = 0; i < 256; i++) {
		c = (uint32_t)i;
		for (k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
		crc_table[i] = c;
	}
	crc_ready = 1;
}

uint32_t
spoolrec_crc32c(uint32_t crc, const void *p, size_t n)
{
	const uint8_t *b = p;

	if (!crc_ready)
		crc_init();
	crc = ~crc;
	while (n-- > 0)
		crc = crc_table[(crc ^ *b++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

static void
put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void
put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void
put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t
get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t
get_le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static int
kind_known(unsigned k)
{
	return k == SPOOLREC_EVENT || k == SPOOLREC_GAP;
}

int
spoolrec_encode_header(uint8_t hdr[SPOOLREC_HDR], uint8_t kind, uint64_t seq,
                       const uint8_t *payload, size_t len)
{
	if (!kind_known(kind) || seq == 0 || len > SPOOLREC_MAX_PAYLOAD ||
	    (payload == NULL && len > 0))
		return -1;
	memcpy(hdr, SPOOLREC_MAGIC, SPOOLREC_MAGIC_LEN);
	hdr[OFF_VERSION] = SPOOLREC_VERSION;
	hdr[OFF_KIND] = kind;
	put_le16(hdr + OFF_FLAGS, 0);
	put_le32(hdr + OFF_LEN, (uint32_t)len);
	put_le64(hdr + OFF_SEQ, seq);
	put_le32(hdr + OFF_PCRC, spoolrec_crc32c(0, payload, len));
	put_le32(hdr + OFF_HCRC, spoolrec_crc32c(0, hdr, OFF_HCRC));
	return 0;
}

int
spoolrec_encode(struct buf *out, uint8_t kind, uint64_t seq,
                const uint8_t *payload, size_t len)
{
	uint8_t hdr[SPOOLREC_HDR];
	size_t old = out->len;

	if (spoolrec_encode_header(hdr, kind, seq, payload, len) == -1)
		return -1;
	if (buf_append(out, hdr, sizeof(hdr)) == -1)
		return -1;
	if (len > 0 && buf_append(out, payload, len) == -1) {
		buf_setlen(out, old);
		return -1;
	}
	return 0;
}

static ssize_t
fail(const char **why, const char *reason, ssize_t rc)
{
	if (why != NULL)
		*why = reason;
	return rc;
}

ssize_t
spoolrec_decode_header(const uint8_t *p, size_t len, size_t max_payload,
                       struct spoolrec *out, const char **why)
{
	size_t n = len < SPOOLREC_MAGIC_LEN ? len : SPOOLREC_MAGIC_LEN;
	uint32_t plen;
	uint64_t seq;

	memset(out, 0, sizeof(*out));
	if (max_payload > SPOOLREC_MAX_PAYLOAD)
		max_payload = SPOOLREC_MAX_PAYLOAD;
	/* Check what is there, so a prefix that cannot become a header is an
	 * error rather than a wait for bytes that would not help. */
	if (memcmp(p, SPOOLREC_MAGIC, n) != 0)
		return fail(why, "bad magic", -1);
	if (len > OFF_VERSION && p[OFF_VERSION] != SPOOLREC_VERSION)
		return fail(why, "unknown record version", -1);
	if (len > OFF_KIND && !kind_known(p[OFF_KIND]))
		return fail(why, "unknown record kind", -1);
	if (len > OFF_FLAGS && p[OFF_FLAGS] != 0)
		return fail(why, "reserved flags set", -1);
	if (len > OFF_FLAGS + 1 && p[OFF_FLAGS + 1] != 0)
		return fail(why, "reserved flags set", -1);
	if (len < SPOOLREC_HDR)
		return fail(why, "truncated header", -2);
	if (spoolrec_crc32c(0, p, OFF_HCRC) != get_le32(p + OFF_HCRC))
		return fail(why, "header checksum mismatch", -1);
	plen = get_le32(p + OFF_LEN);
	seq = get_le64(p + OFF_SEQ);
	if (seq == 0)
		return fail(why, "sequence number 0", -1);
	if (plen > max_payload)
		return fail(why, "payload length over the limit", -1);
	out->kind = p[OFF_KIND];
	out->seq = seq;
	out->len = plen;
	return SPOOLREC_HDR;
}

ssize_t
spoolrec_decode(const uint8_t *p, size_t len, size_t max_payload,
                struct spoolrec *out, const char **why)
{
	ssize_t rc;

	rc = spoolrec_decode_header(p, len, max_payload, out, why);
	if (rc < 0)
		return rc;
	if (len - SPOOLREC_HDR < out->len) {
		memset(out, 0, sizeof(*out));
		return fail(why, "truncated payload", -2);
	}
	if (spoolrec_crc32c(0, p + SPOOLREC_HDR, out->len) !=
	    get_le32(p + OFF_PCRC)) {
		memset(out, 0, sizeof(*out));
		return fail(why, "payload checksum mismatch", -1);
	}
	out->payload = p + SPOOLREC_HDR;
	return (ssize_t)(SPOOLREC_HDR + out->len);
}

size_t
spoolrec_find_magic(const uint8_t *p, size_t len, size_t from)
{
	const uint8_t *m;

	if (from >= len)
		return len;
	m = memmem(p + from, len - from, SPOOLREC_MAGIC, SPOOLREC_MAGIC_LEN);
	return m == NULL ? len : (size_t)(m - p);
}
