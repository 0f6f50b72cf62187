/*
 * gwrelay: the payloads vigild's gateway workers and its core exchange
 * (src/center/gwproc.c, docs/development.md "Processes and users"), inside
 * proc.c's typed frames. Encoder and decoder only, no I/O: the decoder
 * reads what another process sent, one that faces the network and may be
 * compromised, so it is treated as bytes off the wire (fuzz/fuzz_gwrelay.c).
 *
 * Every field is a 4-byte little-endian length followed by that many bytes;
 * counts and numbers are little-endian too. A request (worker to core):
 *
 *   method, uri, peer address, client certificate (DER, may be empty),
 *   u32 header count (<= GWRELAY_MAX_HEADERS), that many name/value pairs,
 *   body
 *
 * A reply (core to worker): u32 status, u32 header count, the pairs, body
 * (for a file reply the body is 8 bytes: the file's length; the file itself
 * rides along as a descriptor). Statistics (worker to core): GWRELAY_NSTATS
 * u64 counters, then u32 n (<= GWRELAY_MAX_REASONS) pairs of a TLS
 * handshake failure reason (a string of at most 63 bytes) and its u64
 * count since the worker started.
 *
 * Streaming replies (the admin worker: the console's live updates,
 * text/event-stream): GWRELAY_STREAM_START (core to worker) is a reply
 * whose body is 8 bytes, the most the worker may hold unwritten for that
 * client (u64, at most GWRELAY_MAX_QUEUED) before it closes the
 * connection; then GWRELAY_STREAM_CHUNK payloads (raw bytes, 1 to
 * GWRELAY_MAX_CHUNK) and one empty GWRELAY_STREAM_END, all with the
 * request's id. The worker answers GWRELAY_STREAM_GONE when the client
 * went away (one byte: GWRELAY_GONE_LEFT) or did not read what was sent
 * or sent bytes of its own (GWRELAY_GONE_SLOW), once per stream; chunks
 * that cross it are dropped.
 *
 * Session ticket keys (core to worker, GWRELAY_TICKET_KEYS): u64 ticket
 * lifetime in seconds (1 to GWRELAY_MAX_TICKET_LIFETIME; 0 with no keys:
 * resumption off), then the keys as one field of 0, 1 or 2 times
 * GWRELAY_TICKET_KEY_LEN bytes (tls_server_tickets_export's form, the
 * sealing key first).
 *
 * Syslog messages (the syslog worker to the core, GWRELAY_SYSLOG): u32 n
 * (1 to GWRELAY_MAX_SYSLOG), then n records: u32 transport
 * (GWRELAY_SL_UDP, GWRELAY_SL_TCP), the sender's numeric address (an IPv4
 * or IPv6 address as inet_ntop writes it, or "unknown"), u32 its port
 * (<= 65535), u32 severity (0 to 7), u64 the message's time (Unix
 * seconds up to GWRELAY_MAX_SL_TIME, 0 when it had none), u32 kind
 * (GWRELAY_SL_PARSED, GWRELAY_SL_RAW: the message did not parse or
 * frame), and the event's
 * data, a JSON object (1 to GWRELAY_MAX_SL_DATA bytes; the core checks
 * that it is one). Strings (method, uri, address, header names
 * and values) never contain NUL, CR or LF; anything else about a payload that
 * does not add up (a length past the end, bytes left over) is an error.
 */
#ifndef VIGIL_PROTO_GWRELAY_H
#define VIGIL_PROTO_GWRELAY_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define GWRELAY_MAX_HEADERS 128
#define GWRELAY_MAX_REASONS 32
#define GWRELAY_MAX_CHUNK   (1u << 20)
#define GWRELAY_MAX_QUEUED  (64ull << 20)
#define GWRELAY_GONE_LEFT   0
#define GWRELAY_GONE_SLOW   1

/* GWRELAY_TICKET_KEYS: one key is TLS_TICKET_KEY_LEN (tls.h) bytes. */
#define GWRELAY_TICKET_KEY_LEN      80
#define GWRELAY_MAX_TICKET_LIFETIME (30LL * 86400)

/* Message types on a worker's channel (struct proc_hdr.type). */
enum gwrelay_type {
	GWRELAY_INIT = 1,       /* core -> worker: JSON settings + listen fd */
	GWRELAY_REQ = 2,        /* worker -> core: a request, id = its id */
	GWRELAY_REPLY = 3,      /* core -> worker: the reply to id */
	GWRELAY_REPLY_FILE = 4, /* the same with a file descriptor */
	GWRELAY_STATS = 5,      /* worker -> core: counters */
	GWRELAY_TLS_RELOAD = 6, /* core -> worker: reload the TLS context */
	GWRELAY_REVOKED = 7,    /* core -> worker: a revoked serial (hex) */
	GWRELAY_STREAM_START = 8, /* core -> worker: a streaming reply's head */
	GWRELAY_STREAM_CHUNK = 9, /* core -> worker: a piece of its body */
	GWRELAY_STREAM_END = 10,  /* core -> worker: its end */
	GWRELAY_STREAM_GONE = 11, /* worker -> core: its client went away */
	GWRELAY_TICKET_KEYS = 12, /* core -> worker: session ticket keys */
	GWRELAY_STALE = 13,       /* core -> worker: a serial no longer its
	                           * agent's current certificate (hex) */
	GWRELAY_DRAIN = 14,       /* core -> worker: vigild stops: accept
	                           * nothing more, close idle connections,
	                           * close each after its reply (empty) */
	GWRELAY_SYSLOG = 15,      /* syslog worker -> core: messages */
	GWRELAY_LISTEN = 16       /* core -> syslog worker: the TCP listening
	                           * socket (empty; the descriptor rides
	                           * along), after GWRELAY_INIT's UDP one */
};

#define GWRELAY_MAX_SYSLOG  64
#define GWRELAY_MAX_SL_DATA (8u << 20)
/* A whole GWRELAY_SYSLOG payload: the data and the records' fields. */
#define GWRELAY_MAX_SL_MSG (GWRELAY_MAX_SL_DATA + (1u << 20))
/* The latest time a message may carry: an RFC 5424 timestamp can say at
 * most 9999-12-31T23:59:60-23:59, a day past 9999-12-31T23:59:59Z
 * (253402300799); two days of room. */
#define GWRELAY_MAX_SL_TIME (253402300799LL + 2 * 86400)
#define GWRELAY_SL_UDP      0
#define GWRELAY_SL_TCP      1
#define GWRELAY_SL_PARSED   0
#define GWRELAY_SL_RAW      1

struct gwrelay_slrec {
	uint32_t transport, port, sev, kind;
	uint64_t time;
	struct strv addr, data;
};

struct gwrelay_hdr {
	struct strv name, value;
};

struct gwrelay_req {
	struct strv method, uri, peer_addr, cert, body;
	size_t nheaders;
	struct gwrelay_hdr headers[GWRELAY_MAX_HEADERS];
};

struct gwrelay_reply {
	uint32_t status;
	size_t nheaders;
	struct gwrelay_hdr headers[GWRELAY_MAX_HEADERS];
	struct strv body;
};

/* Worker counters, summed by the core for /metrics. */
enum gwrelay_stat {
	GWRELAY_ST_CONNS,    /* open connections (a gauge) */
	GWRELAY_ST_TLS_FULL, /* handshakes, full */
	GWRELAY_ST_TLS_RESUMED,
	GWRELAY_ST_CLOSED0, /* + enum http_close_reason, 5 of them */
	GWRELAY_NSTATS = GWRELAY_ST_CLOSED0 + 5
};

/* A certificate serial as tls_serial_hex writes it: 1 to 128 hex
 * digits. 0 when p[0..len) is one. */
int gwrelay_serial_ok(const uint8_t *p, size_t len);

/* Encoders append to out (errors stick in out, see buf_ok). */
void gwrelay_put_str(struct buf *out, const void *p, size_t len);
void gwrelay_put_u32(struct buf *out, uint32_t v);
void gwrelay_put_u64(struct buf *out, uint64_t v);

/* Decoders: 0 with *out filled (views into p), -1 with *why set. */
int gwrelay_req_decode(const uint8_t *p, size_t len, struct gwrelay_req *out,
                       const char **why);
int gwrelay_reply_decode(const uint8_t *p, size_t len,
                         struct gwrelay_reply *out, const char **why);
/* GWRELAY_STREAM_START: the reply's head and *max_queued. */
int gwrelay_stream_start_decode(const uint8_t *p, size_t len,
                                struct gwrelay_reply *out, uint64_t *max_queued,
                                const char **why);
/* The size rule of the other stream messages (chunk, end, gone): 0 when
 * a payload of len bytes is one of type. */
int gwrelay_stream_len_ok(uint32_t type, size_t len);
/* GWRELAY_STREAM_GONE: 0 with *slow (1: GWRELAY_GONE_SLOW), or -1. */
int gwrelay_gone_decode(const uint8_t *p, size_t len, int *slow);
struct gwrelay_stats {
	uint64_t v[GWRELAY_NSTATS];
	size_t nreasons;
	struct strv reason[GWRELAY_MAX_REASONS];
	uint64_t failures[GWRELAY_MAX_REASONS];
};
int gwrelay_stats_decode(const uint8_t *p, size_t len,
                         struct gwrelay_stats *out, const char **why);
struct gwrelay_tickets {
	uint64_t lifetime; /* 0: resumption off */
	struct strv keys;  /* secrets: never logged */
};
int gwrelay_tickets_decode(const uint8_t *p, size_t len,
                           struct gwrelay_tickets *out, const char **why);

/* One record of a GWRELAY_SYSLOG payload (after its u32 count). */
void gwrelay_put_syslog(struct buf *out, const struct gwrelay_slrec *r);
/* GWRELAY_SYSLOG: 0 with recs[0..*n) filled (views into p; recs holds
 * GWRELAY_MAX_SYSLOG), or -1 with *why set. The address is checked
 * (inet_pton), the data only for its length. */
int gwrelay_syslog_decode(const uint8_t *p, size_t len,
                          struct gwrelay_slrec *recs, size_t *n,
                          const char **why);

#endif
