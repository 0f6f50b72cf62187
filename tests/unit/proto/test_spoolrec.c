/*
 * Tests of src/proto/spoolrec.c, the spool's record codec: CRC32C against
 * published vectors, the exact header layout (the on-disk format must not
 * drift), round trips, every prefix of a record is partial (-2), every
 * flipped bit is an error (-1, never partial: a damaged length must not pass
 * for a torn tail), limits, and finding the next record after damage.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "spoolrec.h"

#define PAYLOAD "{\"type\":\"test\",\"i\":1}"

static void
test_crc32c_vectors(void **state)
{
	uint8_t zeros[32], ones[32], inc[32];

	(void)state;
	memset(zeros, 0, sizeof(zeros));
	memset(ones, 0xff, sizeof(ones));
	for (int i = 0; i < 32; i++)
		inc[i] = (uint8_t)i;
	/* RFC 3720 (iSCSI), appendix B.4, and the usual check value. */
	assert_int_equal(spoolrec_crc32c(0, "123456789", 9), 0xe3069283u);
	assert_int_equal(spoolrec_crc32c(0, zeros, 32), 0x8a9136aau);
	assert_int_equal(spoolrec_crc32c(0, ones, 32), 0x62a8ab43u);
	assert_int_equal(spoolrec_crc32c(0, inc, 32), 0x46dd794eu);
	assert_int_equal(spoolrec_crc32c(0, "", 0), 0);
	/* Incremental use gives the same value. */
	assert_int_equal(
	    spoolrec_crc32c(spoolrec_crc32c(0, "1234", 4), "56789", 5),
	    0xe3069283u);
}

static void
test_header_layout(void **state)
{
	uint8_t hdr[SPOOLREC_HDR];
	const uint8_t *p = (const uint8_t *)PAYLOAD;
	size_t len = strlen(PAYLOAD);
	uint32_t crc;

	(void)state;
	assert_int_equal(spoolrec_encode_header(hdr, SPOOLREC_GAP,
	                                        0x0102030405060708ull, p, len),
	                 0);
	assert_memory_equal(hdr, "\xd5VSR", 4);
	assert_int_equal(hdr[4], 1);            /* version */
	assert_int_equal(hdr[5], SPOOLREC_GAP); /* kind */
	assert_int_equal(hdr[6], 0);
	assert_int_equal(hdr[7], 0);
	assert_int_equal(hdr[8], len); /* length, little-endian */
	assert_int_equal(hdr[9] | hdr[10] | hdr[11], 0);
	for (int i = 0; i < 8; i++) /* seq, little-endian */
		assert_int_equal(hdr[12 + i], 8 - i);
	crc = spoolrec_crc32c(0, p, len);
	assert_int_equal(hdr[20] | hdr[21] << 8 | hdr[22] << 16 |
	                     (uint32_t)hdr[23] << 24,
	                 crc);
	crc = spoolrec_crc32c(0, hdr, 24);
	assert_int_equal(hdr[24] | hdr[25] << 8 | hdr[26] << 16 |
	                     (uint32_t)hdr[27] << 24,
	                 crc);
}

static void
encode_one(struct buf *b, uint8_t kind, uint64_t seq, const char *payload)
{
	assert_int_equal(spoolrec_encode(b, kind, seq, (const uint8_t *)payload,
	                                 strlen(payload)),
	                 0);
}

static void
test_round_trip(void **state)
{
	struct spoolrec rec;
	struct buf b;
	const char *why = NULL;
	ssize_t n;

	(void)state;
	buf_init(&b, 1 << 20);
	encode_one(&b, SPOOLREC_EVENT, 42, PAYLOAD);
	encode_one(&b, SPOOLREC_GAP, 43, "{}");
	encode_one(&b, SPOOLREC_EVENT, 44, "");
	n = spoolrec_decode(b.data, b.len, 1024, &rec, &why);
	assert_int_equal(n, SPOOLREC_HDR + strlen(PAYLOAD));
	assert_int_equal(rec.kind, SPOOLREC_EVENT);
	assert_int_equal(rec.seq, 42);
	assert_int_equal(rec.len, strlen(PAYLOAD));
	assert_ptr_equal(rec.payload, b.data + SPOOLREC_HDR);
	assert_memory_equal(rec.payload, PAYLOAD, rec.len);
	assert_int_equal(
	    spoolrec_decode(b.data + n, b.len - (size_t)n, 1024, &rec, &why),
	    SPOOLREC_HDR + 2);
	assert_int_equal(rec.kind, SPOOLREC_GAP);
	assert_int_equal(rec.seq, 43);
	n += SPOOLREC_HDR + 2;
	/* An empty payload is a record too. */
	assert_int_equal(
	    spoolrec_decode(b.data + n, b.len - (size_t)n, 1024, &rec, &why),
	    SPOOLREC_HDR);
	assert_int_equal(rec.seq, 44);
	assert_int_equal(rec.len, 0);
	/* The header alone decodes without the payload. */
	assert_int_equal(
	    spoolrec_decode_header(b.data, SPOOLREC_HDR, 1024, &rec, &why),
	    SPOOLREC_HDR);
	assert_int_equal(rec.seq, 42);
	assert_null(rec.payload);
	buf_free(&b);
}

static void
test_every_prefix_partial(void **state)
{
	struct spoolrec rec;
	struct buf b;
	const char *why;
	size_t i;

	(void)state;
	buf_init(&b, 1 << 20);
	encode_one(&b, SPOOLREC_EVENT, 7, PAYLOAD);
	for (i = 0; i < b.len; i++) {
		why = NULL;
		assert_int_equal(spoolrec_decode(b.data, i, 1024, &rec, &why),
		                 -2);
		assert_non_null(why);
		assert_null(rec.payload);
	}
	assert_int_equal(spoolrec_decode(b.data, b.len, 1024, &rec, &why),
	                 (ssize_t)b.len);
	buf_free(&b);
}

static void
test_every_bit_flip_error(void **state)
{
	struct spoolrec rec;
	struct buf b;
	const char *why;
	size_t i;
	int bit;

	(void)state;
	buf_init(&b, 1 << 20);
	encode_one(&b, SPOOLREC_EVENT, 7, PAYLOAD);
	for (i = 0; i < b.len; i++) {
		for (bit = 0; bit < 8; bit++) {
			b.data[i] ^= (uint8_t)(1 << bit);
			why = NULL;
			/* Followed by plenty of bytes, as in the middle of a
			 * file: still an error, not a wait for more. */
			assert_int_equal(
			    spoolrec_decode(b.data, b.len, 1024, &rec, &why),
			    -1);
			assert_non_null(why);
			b.data[i] ^= (uint8_t)(1 << bit);
		}
	}
	buf_free(&b);
}

static void
test_damaged_length_is_error(void **state)
{
	struct spoolrec rec;
	struct buf b;
	const char *why = NULL;

	(void)state;
	buf_init(&b, 1 << 20);
	encode_one(&b, SPOOLREC_EVENT, 7, PAYLOAD);
	/* A length grown by damage, with the file ending right after the
	 * header: the header checksum says no before the length is used. */
	b.data[10] = 0x40;
	assert_int_equal(
	    spoolrec_decode(b.data, SPOOLREC_HDR + 3, 1024, &rec, &why), -1);
	assert_string_equal(why, "header checksum mismatch");
	buf_free(&b);
}

static void
test_limits(void **state)
{
	uint8_t hdr[SPOOLREC_HDR];
	struct spoolrec rec;
	struct buf b;
	const char *why = NULL;

	(void)state;
	buf_init(&b, 1 << 20);
	assert_int_equal(
	    spoolrec_encode(&b, SPOOLREC_EVENT, 0, (const uint8_t *)"x", 1),
	    -1);
	assert_int_equal(spoolrec_encode(&b, 0, 1, (const uint8_t *)"x", 1),
	                 -1);
	assert_int_equal(spoolrec_encode(&b, 3, 1, (const uint8_t *)"x", 1),
	                 -1);
	assert_int_equal(spoolrec_encode_header(hdr, SPOOLREC_EVENT, 1,
	                                        (const uint8_t *)"x",
	                                        SPOOLREC_MAX_PAYLOAD + 1u),
	                 -1);
	assert_int_equal(b.len, 0);
	/* A full buffer: -1, and nothing half-appended. */
	{
		struct buf small;

		buf_init(&small, SPOOLREC_HDR + 3);
		assert_int_equal(spoolrec_encode(&small, SPOOLREC_EVENT, 1,
		                                 (const uint8_t *)"abcd", 4),
		                 -1);
		assert_int_equal(small.len, 0);
		buf_free(&small);
	}
	/* The caller's payload limit: refused as soon as the header is in,
	 * however little of the payload has arrived. */
	encode_one(&b, SPOOLREC_EVENT, 9, PAYLOAD);
	assert_int_equal(spoolrec_decode(b.data, SPOOLREC_HDR, 4, &rec, &why),
	                 -1);
	assert_string_equal(why, "payload length over the limit");
	assert_int_equal(
	    spoolrec_decode(b.data, b.len, strlen(PAYLOAD), &rec, &why),
	    (ssize_t)b.len);
	buf_free(&b);
}

static void
test_garbage_prefix(void **state)
{
	struct spoolrec rec;
	const char *why = NULL;
	uint8_t zeros[64];

	(void)state;
	memset(zeros, 0, sizeof(zeros));
	assert_int_equal(
	    spoolrec_decode(zeros, sizeof(zeros), 1024, &rec, &why), -1);
	assert_string_equal(why, "bad magic");
	/* Even one byte that cannot start a record is an error. */
	assert_int_equal(spoolrec_decode(zeros, 1, 1024, &rec, &why), -1);
	assert_int_equal(
	    spoolrec_decode((const uint8_t *)"\xd5V", 2, 1024, &rec, &why), -2);
	assert_int_equal(spoolrec_decode(zeros, 0, 1024, &rec, &why), -2);
	/* Right magic, unknown version or kind: error before the header is
	 * complete. */
	assert_int_equal(spoolrec_decode((const uint8_t *)"\xd5VSR\x02", 5,
	                                 1024, &rec, &why),
	                 -1);
	assert_int_equal(spoolrec_decode((const uint8_t *)"\xd5VSR\x01\x09", 6,
	                                 1024, &rec, &why),
	                 -1);
	assert_string_equal(why, "unknown record kind");
}

static void
test_find_magic(void **state)
{
	struct spoolrec rec;
	struct buf b;
	size_t first, c;

	(void)state;
	buf_init(&b, 1 << 20);
	encode_one(&b, SPOOLREC_EVENT, 1, PAYLOAD);
	first = b.len;
	encode_one(&b, SPOOLREC_EVENT, 2, PAYLOAD);
	assert_int_equal(spoolrec_find_magic(b.data, b.len, 0), 0);
	/* Damage the first record: the search from just after its start
	 * lands on the second, which decodes. */
	b.data[SPOOLREC_HDR + 2] ^= 0x55;
	assert_int_equal(spoolrec_decode(b.data, b.len, 1024, &rec, NULL), -1);
	c = spoolrec_find_magic(b.data, b.len, 1);
	assert_int_equal(c, first);
	assert_true(spoolrec_decode(b.data + c, b.len - c, 1024, &rec, NULL) >
	            0);
	assert_int_equal(rec.seq, 2);
	assert_int_equal(spoolrec_find_magic(b.data, b.len, first + 1), b.len);
	assert_int_equal(spoolrec_find_magic(b.data, b.len, b.len + 5), b.len);
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_crc32c_vectors),
	    cmocka_unit_test(test_header_layout),
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_every_prefix_partial),
	    cmocka_unit_test(test_every_bit_flip_error),
	    cmocka_unit_test(test_damaged_length_is_error),
	    cmocka_unit_test(test_limits),
	    cmocka_unit_test(test_garbage_prefix),
	    cmocka_unit_test(test_find_magic),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
