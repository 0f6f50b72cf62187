/*
 * spoolrec: the record format of the agent's on-disk event spool
 * (src/agent/spool.c, docs/spool.md). Encoder and decoder only, no I/O:
 * bytes in; a record, partial (-2) or error (-1) out. What the decoder reads
 * comes off a disk that may have been torn by a crash or corrupted, so it is
 * treated like bytes off the wire. A fuzz target (fuzz/fuzz_spoolrec.c).
 *
 * A record is a 28-byte header followed by the payload (an event's JSON):
 *
 *   off size field
 *     0    4 magic    d5 56 53 52 ("\xd5VSR")
 *     4    1 version  1
 *     5    1 kind     1 event, 2 gap
 *     6    2 flags    0 (reserved)
 *     8    4 length   payload bytes
 *    12    8 seq      per-agent sequence number, >= 1
 *    20    4 pcrc     CRC32C of the payload
 *    24    4 hcrc     CRC32C of bytes 0..23
 *
 * Integers are little-endian. The header has its own checksum so that a
 * damaged length is caught before it is believed: a corrupt record in the
 * middle of a file can then never pass for a torn tail.
 */
#ifndef VIGIL_PROTO_SPOOLREC_H
#define VIGIL_PROTO_SPOOLREC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"

#define SPOOLREC_HDR       28
#define SPOOLREC_VERSION   1
#define SPOOLREC_MAGIC     "\xd5VSR"
#define SPOOLREC_MAGIC_LEN 4
/* The hard limit of the format; readers may ask for less. */
#define SPOOLREC_MAX_PAYLOAD (16u * 1024 * 1024)

enum spoolrec_kind {
	SPOOLREC_EVENT = 1, /* an event, payload as given by the agent */
	SPOOLREC_GAP = 2,   /* the spool lost events; payload says which */
};

struct spoolrec {
	uint8_t kind;
	uint64_t seq;
	const uint8_t *payload; /* points into the decoded bytes */
	size_t len;
};

/* CRC32C (Castagnoli, as in iSCSI and ext4). crc: 0 to start, or the value
 * returned for the bytes before p. */
uint32_t spoolrec_crc32c(uint32_t crc, const void *p, size_t n);

/*
 * Writes the header of a record holding payload (len bytes) into hdr.
 * Returns 0, or -1 for an unknown kind, seq 0 or a payload over
 * SPOOLREC_MAX_PAYLOAD.
 */
int spoolrec_encode_header(uint8_t hdr[SPOOLREC_HDR], uint8_t kind,
                           uint64_t seq, const uint8_t *payload, size_t len);
/* Appends a whole record (header + payload) to out; -1 as above or when out
 * is full. out is unchanged on failure. */
int spoolrec_encode(struct buf *out, uint8_t kind, uint64_t seq,
                    const uint8_t *payload, size_t len);

/*
 * Checks the header at p (len bytes available): magic, version, kind, flags,
 * seq, length <= max_payload, header checksum. Returns SPOOLREC_HDR with
 * out->kind, seq and len set (payload NULL); -2 when len < SPOOLREC_HDR and
 * the bytes so far could still begin a header; -1 otherwise. why (may be
 * NULL) receives a static one-line reason on -1 and -2.
 */
ssize_t spoolrec_decode_header(const uint8_t *p, size_t len, size_t max_payload,
                               struct spoolrec *out, const char **why);
/*
 * Decodes one whole record at p: the header as above, then the payload and
 * its checksum. Returns the bytes consumed (SPOOLREC_HDR + out->len) with
 * out->payload pointing into p; -2 when more bytes are needed (a torn tail
 * when p ends the file); -1 when the bytes cannot be a record.
 */
ssize_t spoolrec_decode(const uint8_t *p, size_t len, size_t max_payload,
                        struct spoolrec *out, const char **why);

/* Offset of the first magic at or after from in p[0..len), or len when
 * there is none. Used to find the next record after damaged bytes. */
size_t spoolrec_find_magic(const uint8_t *p, size_t len, size_t from);

#endif
