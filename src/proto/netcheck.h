/*
 * netcheck: the two answers from the network that the doctor checks read
 * (untrusted input, no I/O): an SNTP server's reply (RFC 4330) and an HTTP
 * proxy's answer to CONNECT, of which only the status and the
 * authentication schemes offered in Proxy-Authenticate matter. Bytes in, a
 * checked struct or a sentence naming what is wrong out. Used by
 * src/common/doctor.c; fuzz target: fuzz/fuzz_netcheck.c.
 */
#ifndef VIGIL_PROTO_NETCHECK_H
#define VIGIL_PROTO_NETCHECK_H

#include <stddef.h>
#include <stdint.h>

#define SNTP_LEN 48 /* an SNTP packet without extensions */

/* Seconds from 1900 (NTP's era 0) to 1970 (Unix). */
#define SNTP_UNIX_OFFSET 2208988800ULL

struct sntp_reply {
	int leap;        /* 3: the server's clock is not synchronized */
	int version;     /* 1..4 */
	int stratum;     /* 1..15 (0 is a kiss-o'-death, refused) */
	double receive;  /* T2: when the request arrived, Unix seconds */
	double transmit; /* T3: when the reply left, Unix seconds */
};

/* A client request (version 4, mode 3) whose transmit timestamp is now
 * (Unix seconds); the server echoes it as the originate timestamp. */
void sntp_request(uint8_t pkt[SNTP_LEN], double now);

/*
 * Checks a reply to req: at least 48 bytes, mode 4 (server), version 1 to
 * 4, the originate timestamp equal to req's transmit timestamp (else it
 * answers someone else, or is forged), a synchronized server (leap != 3,
 * stratum 1..15; stratum 0 is a kiss-o'-death whose code is quoted), a
 * nonzero transmit time. 0 with r filled, or -1 with a sentence in why.
 */
int sntp_parse(const uint8_t *p, size_t len, const uint8_t req[SNTP_LEN],
               struct sntp_reply *r, char *why, size_t whylen);

/* The clock offset of RFC 4330 section 5, ((T2 - T1) + (T3 - T4)) / 2:
 * positive when the server is ahead of this clock. t1 and t4 are the local
 * send and receive times. */
double sntp_offset(const struct sntp_reply *r, double t1, double t4);

/* Schemes seen in Proxy-Authenticate. */
#define PROXYAUTH_BASIC     0x1
#define PROXYAUTH_NTLM      0x2
#define PROXYAUTH_NEGOTIATE 0x4 /* Negotiate or Kerberos */
#define PROXYAUTH_OTHER     0x8

struct proxy_answer {
	int status;       /* 100..599 */
	unsigned schemes; /* PROXYAUTH_*, from every Proxy-Authenticate */
};

/*
 * The head of a proxy's answer to CONNECT: "HTTP/1.x NNN reason", header
 * lines, an empty line. Returns the length of the head (> 0) with a
 * filled, -2 when the empty line has not arrived yet, -1 when it is not
 * an HTTP response (a bad status line, a header line without a colon, a
 * bare CR or a NUL).
 */
long proxy_answer_parse(const uint8_t *p, size_t len, struct proxy_answer *a);

/* "Basic, NTLM" for the schemes set, "none" when none is. */
void proxy_schemes_text(unsigned schemes, char *out, size_t outlen);

#endif
