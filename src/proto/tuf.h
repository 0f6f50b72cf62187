/*
 * tuf: signed update metadata in the manner of The Update Framework
 * (docs/updates.md). Four roles: root (the keys and thresholds of every
 * role, rotated by a new root signed by the old one's threshold and its
 * own), targets (each artifact's name, length, SHA-256 and kind), snapshot
 * (the version of targets.json) and timestamp (the version of
 * snapshot.json; short expiry, so a frozen repository shows). Ed25519
 * signatures through OpenSSL 3 over the canonical JSON of the "signed"
 * object (tuf_canonical).
 *
 * The verifier keeps a trust state (struct tuf_trust) that starts from a
 * pinned root and is fed metadata in TUF's order: each newer root, then
 * timestamp, snapshot, targets. Each step refuses with a specific error
 * (enum tuf_err) and a message naming what was wrong; a refused step
 * leaves the trust state as it was. No I/O here: bytes in, a verdict out,
 * so the center's mirror and the agent use the same checks, and the
 * parser is a fuzz target (fuzz/fuzz_tuf.c).
 */
#ifndef VIGIL_TUF_H
#define VIGIL_TUF_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "buf.h"

enum tuf_role {
	TUF_ROOT = 0,
	TUF_TARGETS,
	TUF_SNAPSHOT,
	TUF_TIMESTAMP,
	TUF_NROLES,
};

enum tuf_err {
	TUF_OK = 0,
	TUF_E_FORMAT = -1,    /* not well-formed metadata of this role */
	TUF_E_TOOBIG = -2,    /* more bytes than allowed or declared */
	TUF_E_SIGNATURE = -3, /* a signature of a role key does not verify */
	TUF_E_THRESHOLD = -4, /* fewer valid signatures than the threshold */
	TUF_E_EXPIRED = -5,   /* past its expiry (freeze) */
	TUF_E_ROLLBACK = -6,  /* older than what is already trusted */
	TUF_E_MIXMATCH = -7,  /* not the version its parent role names */
	TUF_E_HASH = -8,      /* SHA-256 differs from the declared one */
	TUF_E_LENGTH = -9,    /* fewer bytes than declared */
	TUF_E_NAME = -10,     /* a target name that could escape a directory */
	TUF_E_CHAIN = -11,    /* a root that skips a version */
	TUF_E_ORDER = -12,    /* a step before the one it depends on */
	TUF_E_NOTFOUND = -13, /* no such target */
};

/* Size limits of metadata files (refused beyond, TUF_E_TOOBIG). */
#define TUF_MAX_ROOT      (512 * 1024)
#define TUF_MAX_TIMESTAMP (64 * 1024)
#define TUF_MAX_SNAPSHOT  (1024 * 1024)
#define TUF_MAX_TARGETS   (16 * 1024 * 1024)
/* Keys per role, targets per repository, target name length. */
#define TUF_MAX_KEYS      32
#define TUF_MAX_TARGETS_N 100000
#define TUF_MAX_NAME      200
/* Nesting of JSON inside "signed" (custom fields included). */
#define TUF_MAX_DEPTH 16

struct tuf_key {
	char id[65]; /* SHA-256 of the key's canonical JSON, hex */
	EVP_PKEY *pk;
};

struct tuf_rolekeys {
	char (*ids)[65];
	size_t n;
	long long threshold;
};

/* One trusted metadata file: its signed part and what the checks use. */
struct tuf_meta {
	json_t *signed_; /* NULL until trusted */
	long long version;
	long long expires;
	uint8_t sha256[32]; /* of the whole file as received */
	size_t length;
};

struct tuf_trust {
	struct tuf_meta meta[TUF_NROLES];
	/* From the trusted root. */
	struct tuf_key *keys;
	size_t nkeys;
	struct tuf_rolekeys roles[TUF_NROLES];
};

/* A target as the trusted targets metadata describes it (pointers into
 * the trust state; valid until it changes). */
struct tuf_target {
	const char *name;
	long long length;
	uint8_t sha256[32];
	const char *kind, *platform, *version; /* from "custom", or NULL */
};

const char *tuf_role_name(int role);
const char *tuf_err_name(int err);

/* Starts a trust state from a pinned root (trusted as given: it must be
 * signed by its own root threshold, expiry is checked by
 * tuf_root_fresh). */
int tuf_trust_init(struct tuf_trust *t, const uint8_t *root, size_t len,
                   struct buf *err);
void tuf_trust_free(struct tuf_trust *t);

/* The next root: version exactly the trusted one + 1 (TUF_E_CHAIN when
 * it skips, TUF_E_ROLLBACK when not newer), signed by the trusted root's
 * threshold AND its own. When the timestamp or snapshot keys change, the
 * trusted timestamp and snapshot are forgotten (so a compromised key's
 * fast-forwarded versions do not block the repository for good). */
int tuf_update_root(struct tuf_trust *t, const uint8_t *data, size_t len,
                    struct buf *err);
/* After the last root: TUF_E_EXPIRED when it has expired at now. */
int tuf_root_fresh(struct tuf_trust *t, long long now, struct buf *err);

int tuf_update_timestamp(struct tuf_trust *t, const uint8_t *data, size_t len,
                         long long now, struct buf *err);
int tuf_update_snapshot(struct tuf_trust *t, const uint8_t *data, size_t len,
                        long long now, struct buf *err);
int tuf_update_targets(struct tuf_trust *t, const uint8_t *data, size_t len,
                       long long now, struct buf *err);

/* The trusted description of name, TUF_E_NOTFOUND, or TUF_E_ORDER before
 * targets are trusted. */
int tuf_target_get(struct tuf_trust *t, const char *name,
                   struct tuf_target *out, struct buf *err);
/* Calls fn for each trusted target (sorted by name). */
void tuf_target_each(struct tuf_trust *t,
                     void (*fn)(const struct tuf_target *tg, void *arg),
                     void *arg);

/* An artifact checked while it arrives: feed refuses the first byte past
 * the declared length (TUF_E_TOOBIG, endless data), finish refuses a short
 * one (TUF_E_LENGTH) or another hash (TUF_E_HASH). */
struct tuf_reader {
	EVP_MD_CTX *md;
	long long want, got;
	uint8_t sha256[32];
	char name[TUF_MAX_NAME + 1];
};
int tuf_reader_init(struct tuf_reader *r, const struct tuf_target *tg);
int tuf_reader_feed(struct tuf_reader *r, const void *p, size_t n,
                    struct buf *err);
int tuf_reader_finish(struct tuf_reader *r, struct buf *err);
void tuf_reader_free(struct tuf_reader *r);

/* 1 when name may name a target: 1..TUF_MAX_NAME bytes of [A-Za-z0-9._-]
 * in '/'-separated parts, none empty, "." or "..", none starting with
 * '-' or '.', no leading '/'. */
int tuf_name_ok(const char *name, size_t len);

/* Canonical form of v: json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS)
 * after checking that v holds no real numbers and nests at most
 * TUF_MAX_DEPTH deep. NULL when it does not qualify. free() the result. */
char *tuf_canonical(const json_t *v);

/* Signing side (vigilctl update). */
json_t *tuf_key_json(EVP_PKEY *pub);
int tuf_keyid(EVP_PKEY *pub, char out[65]);
/* {"signed": signed_, "signatures": [...]} signed by each of keys. */
json_t *tuf_sign(json_t *signed_, EVP_PKEY *const *keys, size_t n,
                 struct buf *err);

/* "YYYY-MM-DDTHH:MM:SSZ" <-> seconds since the epoch. */
int tuf_parse_time(const char *s, long long *out);
void tuf_format_time(long long t, char out[21]);

#endif
