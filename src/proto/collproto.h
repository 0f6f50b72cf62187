/*
 * collproto: the messages a center's "collector" forwarding target sends
 * to the analysis collector on 7443 (docs/collector.md), parsed with no
 * I/O: the collector takes them from a TLS stream whose peer is a center,
 * but a center is still another host, so every field is checked. Also the
 * pure part of the collector's analysis: the case key of a finding (rule
 * and normalised path, else SHA-256). Fuzz target: fuzz/fuzz_collproto.c.
 *
 * Each message is one octet-counted frame (RFC 6587 3.4.1, "LEN SP MSG")
 * holding one compact JSON object:
 *   {"kind":"event","id":ROWID,"agent_id":"...","seq":N,"time":T,
 *    "type":"finding","level":"alert","task_id":null,"hostname":null,
 *    "data":{...}}
 *   {"kind":"agent","agent":{...}}          an agent's inventory row
 *   {"kind":"commit","upto":ROWID}          end of a batch: ack it
 *   {"kind":"sample","sha256":HEX,"size":N,"agent_id":"...","task_id":null,
 *    "path":null,"received_at":T}          a sample the center holds
 *   {"kind":"chunk","sha256":HEX,"offset":N,"data":BASE64,"end":false}
 * The collector answers with lines: "ack ROWID\n" once everything up to
 * that commit is stored, "want HEX\n" for a sample whose content it
 * lacks (the center then sends its chunks), or "error MESSAGE\n" before
 * it closes.
 */
#ifndef VIGIL_PROTO_COLLPROTO_H
#define VIGIL_PROTO_COLLPROTO_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "buf.h"

#define COLL_MAX_FRAME (65536 + 8192) /* an event's data and its fields */
#define COLL_MAX_AGENT 128            /* bytes of an agent id */
#define COLL_MAX_KEY   1400           /* bytes of a case key */
#define COLL_MAX_RULE  256
#define COLL_MAX_PATH  1024

#define COLL_CHUNK_MAX 49152 /* bytes of sample content per chunk */

enum coll_kind {
	COLL_EVENT = 1,
	COLL_AGENT,
	COLL_COMMIT,
	COLL_SAMPLE, /* a sample the center holds (an offer) */
	COLL_CHUNK   /* a piece of a sample's content the collector asked for */
};

struct coll_msg {
	int kind;
	long long id; /* event: the center's rowid; commit: upto */
	char agent_id[COLL_MAX_AGENT + 1];
	long long seq, time;
	char type[33];
	char level[16];     /* "" when none */
	char task_id[64];   /* "" when none */
	char hostname[256]; /* "" when unknown */
	json_t *data;       /* event: its data; agent: the agent object;
	                       sample: the offer (path, task_id) */
	char sha256[65];    /* sample, chunk: 64 lowercase hex digits */
	long long size;     /* sample: its size */
	uint8_t *bin;       /* chunk: the content, decoded (malloc'd) */
	size_t binlen;
	int end; /* chunk: the last one */
};

/*
 * Finds the next octet-counted frame ("LEN SP MSG", LEN 1 to
 * COLL_MAX_FRAME without leading zeros) in p[0..len). Returns the bytes it
 * takes (> 0) with *msg and *msglen set; -2 when more bytes are needed,
 * *need then the bytes the frame takes in all when known (else 0); -1
 * when the stream cannot be a frame.
 */
long collproto_frame(const uint8_t *p, size_t len, size_t *need,
                     const uint8_t **msg, size_t *msglen);

/* 0 with m filled (collproto_free it), or -1 with a message in err. */
int collproto_parse(const uint8_t *p, size_t n, struct coll_msg *m,
                    struct buf *err);
void collproto_free(struct coll_msg *m);

/*
 * A finding's case: rule (data.rule, or the first reason's
 * signature.rule_name), path (data.path or data.subject.path) and SHA-256
 * (data.sha256 or data.subject.hashes.sha256) read from its data. The key
 * is "rule:RULE|path:NORMALISED" when it names a rule, else
 * "sha256:HASH", else "rule:|path:NORMALISED". Normalised: '\' as '/',
 * lower case, the user's folder under /home/, /Users/ or C:/Users/ as '*',
 * runs of digits as '#'. Every output is NUL-terminated; rule, path and
 * sha256 are "" when absent. 0, or -1 when the data is not an object.
 */
int collproto_case_key(const json_t *data, char key[COLL_MAX_KEY + 1],
                       char rule[COLL_MAX_RULE + 1],
                       char path[COLL_MAX_PATH + 1], char sha256[65]);
/* The normalised form of path into out (size n). */
void collproto_norm_path(const char *path, char *out, size_t n);

#endif
