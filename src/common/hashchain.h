/*
 * hashchain: the audit log's tamper evidence, shared by vigild (which
 * appends) and vigilctl (which verifies from the API or the database
 * file). Each entry is a JSON object; its "hash" is the SHA-256 of the
 * entry's canonical serialization without "hash" (compact, keys sorted,
 * non-ASCII escaped), and that serialization includes "prev_hash", the
 * hash of the entry before (64 zeros for the first). docs/audit.md
 * describes the format so that anyone can check a chain independently.
 */
#ifndef VIGIL_HASHCHAIN_H
#define VIGIL_HASHCHAIN_H

#include <jansson.h>

#include "buf.h"

#define HASHCHAIN_ZERO                                                         \
	"0000000000000000000000000000000000000000000000000000000000000000"

/* Hash of entry (its "hash" member ignored) into out; -1 when the entry
 * cannot be serialized. */
int hashchain_hash(json_t *entry, char out[65]);

/* Walks a chain in ascending id order. */
struct hashchain {
	long long last_id; /* 0 before the first entry */
	char last_hash[65];
	long long checked;
};

void hashchain_init(struct hashchain *h);
/* Checks the next entry: its id follows the last, its prev_hash is the
 * last hash, its hash is right. 0, or -1 with the reason in why. */
int hashchain_next(struct hashchain *h, json_t *entry, struct buf *why);

#endif
