/*
 * syslogparse: parser of syslog messages received by the center's optional
 * listener (untrusted input, no I/O): RFC 6587 stream framing (octet
 * counting or newline, told apart by the first byte of each frame), RFC
 * 5424 messages with structured data, and RFC 3164 (BSD) messages. Bytes in,
 * a checked struct or a message naming what is wrong out. Fuzz target:
 * fuzz/fuzz_syslog.c.
 */
#ifndef VIGIL_PROTO_SYSLOGPARSE_H
#define VIGIL_PROTO_SYSLOGPARSE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "buf.h"

/*
 * Finds the next message in a stream buffer. A frame starting with a digit
 * is octet-counted ("LEN SP MSG", LEN at most max); any other is ended by
 * LF (a CR before it and NUL bytes after it are not part of the message).
 * Returns the bytes consumed (> 0) with *msg and *msglen set, -2 when more
 * bytes are needed, -1 when the stream cannot be framed any more (bad or
 * oversized length, a line longer than max): the connection should close.
 */
long syslogparse_frame(const uint8_t *p, size_t len, size_t max,
                       const uint8_t **msg, size_t *msglen);

/*
 * Parses one message (a datagram or a frame). RFC 5424 when "<PRI>1 "
 * starts it, else RFC 3164; a 3164 message whose header is not as the RFC
 * says keeps the rest as its content (RFC 3164 4.3.3). Returns a JSON object
 * for the event's data:
 *   {"format": "rfc5424", "facility": 4, "severity": 2, "timestamp": "...",
 *    "hostname": "...", "app_name": "...", "procid": "...", "msgid": "...",
 *    "structured_data": {"id@1": {"param": "value"}}, "message": "..."}
 * (absent fields are null; "-" is absent), with *severity and *time (unix
 * seconds from the timestamp, 0 when it has none or a 3164 one). Returns
 * NULL with a message in err when the message is malformed: no or a bad
 * PRI, a broken RFC 5424 header or structured data, invalid UTF-8 where
 * RFC 5424 requires it, empty.
 */
json_t *syslogparse_message(const uint8_t *p, size_t len, int *severity,
                            long long *time, struct buf *err);

/* The raw bytes as a JSON string: invalid UTF-8 and control characters
 * other than tab become U+FFFD, so a malformed message can be kept. */
json_t *syslogparse_raw_string(const uint8_t *p, size_t len);

#endif
