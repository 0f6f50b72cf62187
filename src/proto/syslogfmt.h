/*
 * syslogfmt: turns one stored event into a syslog message in one of the
 * formats SIEMs read (RFC 5424 with structured data, RFC 3164, CEF, LEEF
 * 2.0, JSON) and frames it for a stream transport (RFC 6587 octet
 * counting, or one message per line). Pure: no I/O, no clock, no locale;
 * the forwarder (src/center/forward.c) feeds it rows of the events table.
 * Samples of every format are in docs/forwarding.md.
 */
#ifndef VIGIL_PROTO_SYSLOGFMT_H
#define VIGIL_PROTO_SYSLOGFMT_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

enum syslogfmt_format {
	SYSLOGFMT_RFC5424 = 0,
	SYSLOGFMT_RFC3164,
	SYSLOGFMT_CEF,
	SYSLOGFMT_LEEF,
	SYSLOGFMT_JSON,
};

enum syslogfmt_framing {
	SYSLOGFMT_OCTET = 0, /* RFC 6587 3.4.1: "LEN SP MSG" */
	SYSLOGFMT_NEWLINE,   /* RFC 6587 3.4.2: "MSG LF" (old receivers) */
};

/* The structured-data ID of Vigil's SD-ELEMENT in RFC 5424 messages.
 * 32473 is the private enterprise number IANA reserves for examples
 * (RFC 5612); documented in docs/forwarding.md. */
#define SYSLOGFMT_SDID "vigil@32473"

struct syslogfmt_event {
	const char *agent_id;
	long long seq;
	long long time; /* unix seconds, the agent's clock */
	const char *type;
	const char *level;    /* alert, warning, notice, info or NULL */
	const char *task_id;  /* NULL when none */
	const char *data;     /* compact JSON object text */
	const char *hostname; /* the agent's host name, NULL when unknown */
};

struct syslogfmt_opts {
	enum syslogfmt_format format;
	int facility;            /* 0..23; RFC 5424 table (16 = local0) */
	const char *center_host; /* HOSTNAME when the event has none */
	const char *version;     /* product version in CEF and LEEF */
};

/* Format names as used in the API and docs: "rfc5424", "rfc3164", "cef",
 * "leef", "json". -1 for an unknown name. */
int syslogfmt_format_parse(const char *name);
const char *syslogfmt_format_name(int format);

/* Syslog severity (RFC 5424 table 2) of a Vigil level: alert 1, warning 4,
 * notice 5, anything else (info, none) 6. */
int syslogfmt_severity(const char *level);
/* Rank of a level for "minimum level" filters: info (or none) 0, notice 1,
 * warning 2, alert 3; -1 for an unknown name. */
int syslogfmt_level_rank(const char *level);

/* Appends the message (without framing) to out. -1 when out is full. */
int syslogfmt_format(const struct syslogfmt_opts *o,
                     const struct syslogfmt_event *e, struct buf *out);

/* Appends msg framed for a stream. Newline framing cannot carry a line
 * feed inside a message: each LF in msg is sent as a space there. */
int syslogfmt_frame(enum syslogfmt_framing f, const uint8_t *msg, size_t len,
                    struct buf *out);

#endif
