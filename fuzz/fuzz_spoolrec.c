/*
 * Fuzz target for src/proto/spoolrec.c, the decoder of the agent's spool
 * records: the bytes of a segment file after a crash or on a bad disk.
 * Walks the input the way the spool scans a segment (decode, and after
 * damage search for the next magic) and checks the promises made to it:
 * never a read past the input, a consumed length that matches the header,
 * a payload inside the input, a reason for every failure, and a canonical
 * format (re-encoding a decoded record gives back the same bytes). The input
 * is also used as a payload: it must round-trip, and the record cut short
 * by one byte must read as partial, never as a record or an error.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "spoolrec.h"

#define MAX_PAYLOAD 65536

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_segment(const uint8_t *data, size_t size, struct buf *enc)
{
	struct spoolrec rec, hdr;
	const char *why;
	size_t off = 0, next;
	ssize_t r;

	while (off < size) {
		why = NULL;
		r = spoolrec_decode(data + off, size - off, MAX_PAYLOAD, &rec,
		                    &why);
		if (r == -2) {
			if (why == NULL || rec.payload != NULL)
				abort();
			break;
		}
		if (r == -1) {
			if (why == NULL || rec.payload != NULL)
				abort();
			next = spoolrec_find_magic(data, size, off + 1);
			if (next <= off || next > size)
				abort();
			if (next < size && memcmp(data + next, SPOOLREC_MAGIC,
			                          SPOOLREC_MAGIC_LEN) != 0)
				abort();
			off = next;
			continue;
		}
		if (r != (ssize_t)(SPOOLREC_HDR + rec.len) ||
		    (size_t)r > size - off || rec.len > MAX_PAYLOAD ||
		    rec.payload != data + off + SPOOLREC_HDR || rec.seq == 0 ||
		    (rec.kind != SPOOLREC_EVENT && rec.kind != SPOOLREC_GAP))
			abort();
		/* The header alone says the same. */
		if (spoolrec_decode_header(data + off, size - off, MAX_PAYLOAD,
		                           &hdr, NULL) != SPOOLREC_HDR ||
		    hdr.seq != rec.seq || hdr.len != rec.len ||
		    hdr.kind != rec.kind)
			abort();
		buf_reset(enc);
		if (spoolrec_encode(enc, rec.kind, rec.seq, rec.payload,
		                    rec.len) != 0 ||
		    enc->len != (size_t)r ||
		    memcmp(enc->data, data + off, (size_t)r) != 0)
			abort();
		off += (size_t)r;
	}
}

static void
check_round_trip(const uint8_t *data, size_t size, struct buf *enc)
{
	struct spoolrec rec;
	uint64_t seq = 1;
	size_t i;

	for (i = 0; i < size && i < 8; i++)
		seq = seq * 131 + data[i];
	if (seq == 0)
		seq = 1;
	buf_reset(enc);
	if (spoolrec_encode(enc, SPOOLREC_EVENT, seq, data, size) != 0)
		abort();
	if (spoolrec_decode(enc->data, enc->len, MAX_PAYLOAD, &rec, NULL) !=
	        (ssize_t)enc->len ||
	    rec.seq != seq || rec.len != size ||
	    (size > 0 && memcmp(rec.payload, data, size) != 0))
		abort();
	if (spoolrec_decode(enc->data, enc->len - 1, MAX_PAYLOAD, &rec, NULL) !=
	    -2)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf enc;

	buf_init(&enc, SPOOLREC_HDR + MAX_PAYLOAD + 1024);
	check_segment(data, size, &enc);
	if (size <= MAX_PAYLOAD)
		check_round_trip(data, size, &enc);
	buf_free(&enc);
	return 0;
}
