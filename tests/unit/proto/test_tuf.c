/*
 * Unit tests for tuf.c: a repository built in memory (keys, root,
 * timestamp, snapshot, targets) is verified, then each attack of issue 15
 * that concerns metadata is tried and must be refused with its own error:
 * freeze, rollback, mix-and-match, arbitrary and endless artifacts and
 * metadata, forged and missing signatures, too few for a threshold, key
 * rotation through root, traversal in target names.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tuf.h"

#define DAY 86400LL

static EVP_PKEY *kroot[3], *ktargets[3], *ksnap, *kts, *kts2;
static long long now;

/* Each role's keys in a root: NULL-terminated arrays. */
struct rootspec {
	EVP_PKEY **root, **targets, **snap, **ts;
	int th_root, th_targets;
};

static EVP_PKEY *
genkey(void)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");

	assert_non_null(k);
	return k;
}

static char *
exp_in(long long secs)
{
	static char s[21];

	tuf_format_time(now + secs, s);
	return s;
}

static json_t *
rolejs(EVP_PKEY **keys, int th, json_t *allkeys)
{
	json_t *ids = json_array();
	char id[65];

	for (int i = 0; keys[i] != NULL; i++) {
		assert_int_equal(tuf_keyid(keys[i], id), 0);
		json_array_append_new(ids, json_string(id));
		json_object_set_new(allkeys, id, tuf_key_json(keys[i]));
	}
	return json_pack("{s:o, s:i}", "keyids", ids, "threshold", th);
}

static json_t *
root_signed(long long version, const struct rootspec *s, long long expires)
{
	json_t *keys = json_object(), *roles = json_object();

	json_object_set_new(roles, "root",
	                    rolejs(s->root, s->th_root ? s->th_root : 1, keys));
	json_object_set_new(
	    roles, "targets",
	    rolejs(s->targets, s->th_targets ? s->th_targets : 1, keys));
	json_object_set_new(roles, "snapshot", rolejs(s->snap, 1, keys));
	json_object_set_new(roles, "timestamp", rolejs(s->ts, 1, keys));
	return json_pack("{s:s, s:s, s:I, s:s, s:o, s:o}", "_type", "root",
	                 "spec_version", "1.0", "version", (json_int_t)version,
	                 "expires", exp_in(expires), "keys", keys, "roles",
	                 roles);
}

/* The signed envelope of sig (taken) as bytes; *len its length. */
static uint8_t *
seal(json_t *sig, EVP_PKEY **keys, size_t n, size_t *len)
{
	struct buf err;
	json_t *env;
	char *s;

	buf_init(&err, 1024);
	assert_non_null(env = tuf_sign(sig, keys, n, &err));
	json_decref(sig);
	s = json_dumps(env, JSON_INDENT(1));
	json_decref(env);
	*len = strlen(s);
	buf_free(&err);
	return (uint8_t *)s;
}

static json_t *
meta_entry(long long version, const uint8_t *data, size_t len)
{
	uint8_t h[32];
	unsigned int hl;
	char hex[65];

	EVP_Digest(data, len, h, &hl, EVP_sha256(), NULL);
	hex_encode(h, 32, hex);
	return json_pack("{s:I, s:I, s:{s:s}}", "version", (json_int_t)version,
	                 "length", (json_int_t)len, "hashes", "sha256", hex);
}

static const uint8_t artifact[] = "rule demo { condition: true }\n";

static uint8_t *
make_targets(long long version, long long expires, const char *name,
             EVP_PKEY **keys, size_t n, size_t *len)
{
	json_t *t = meta_entry(1, artifact, sizeof(artifact) - 1);

	json_object_del(t, "version");
	json_object_set_new(t, "custom",
	                    json_pack("{s:s, s:s, s:s}", "kind", "rules",
	                              "platform", "any", "version", "1.0"));
	return seal(json_pack("{s:s, s:s, s:I, s:s, s:{s:o}}", "_type",
	                      "targets", "spec_version", "1.0", "version",
	                      (json_int_t)version, "expires", exp_in(expires),
	                      "targets", name, t),
	            keys, n, len);
}

static uint8_t *
make_snapshot(long long version, long long expires, long long tv,
              const uint8_t *targets, size_t tlen, size_t *len)
{
	return seal(json_pack("{s:s, s:s, s:I, s:s, s:{s:o}}", "_type",
	                      "snapshot", "spec_version", "1.0", "version",
	                      (json_int_t)version, "expires", exp_in(expires),
	                      "meta", "targets.json",
	                      meta_entry(tv, targets, tlen)),
	            &ksnap, 1, len);
}

static uint8_t *
make_timestamp(long long version, long long expires, long long sv,
               const uint8_t *snap, size_t slen, EVP_PKEY *key, size_t *len)
{
	return seal(json_pack("{s:s, s:s, s:I, s:s, s:{s:o}}", "_type",
	                      "timestamp", "spec_version", "1.0", "version",
	                      (json_int_t)version, "expires", exp_in(expires),
	                      "meta", "snapshot.json",
	                      meta_entry(sv, snap, slen)),
	            &key, 1, len);
}

static EVP_PKEY *r1[] = {NULL, NULL}, *tg1[] = {NULL, NULL},
                *sn1[] = {NULL, NULL}, *ts1[] = {NULL, NULL};

static struct rootspec
spec1(void)
{
	struct rootspec s = {r1, tg1, sn1, ts1, 1, 1};

	r1[0] = kroot[0];
	tg1[0] = ktargets[0];
	sn1[0] = ksnap;
	ts1[0] = kts;
	return s;
}

/* A trust state with root v1 and the whole chain at versions v. */
struct chain {
	uint8_t *root, *ts, *snap, *tg;
	size_t lroot, lts, lsnap, ltg;
};

static void
chain_make(struct chain *c, long long v)
{
	struct rootspec s = spec1();

	c->root = seal(root_signed(1, &s, 365 * DAY), kroot, 1, &c->lroot);
	c->tg =
	    make_targets(v, 30 * DAY, "rules/base.yar", ktargets, 1, &c->ltg);
	c->snap = make_snapshot(v, 7 * DAY, v, c->tg, c->ltg, &c->lsnap);
	c->ts = make_timestamp(v, DAY, v, c->snap, c->lsnap, kts, &c->lts);
}

static void
chain_free(struct chain *c)
{
	free(c->root);
	free(c->ts);
	free(c->snap);
	free(c->tg);
}

static void
trust(struct tuf_trust *t, struct chain *c, struct buf *err)
{
	assert_int_equal(tuf_trust_init(t, c->root, c->lroot, err), TUF_OK);
	assert_int_equal(tuf_root_fresh(t, now, err), TUF_OK);
	assert_int_equal(tuf_update_timestamp(t, c->ts, c->lts, now, err),
	                 TUF_OK);
	assert_int_equal(tuf_update_snapshot(t, c->snap, c->lsnap, now, err),
	                 TUF_OK);
	assert_int_equal(tuf_update_targets(t, c->tg, c->ltg, now, err),
	                 TUF_OK);
}

#define EXPECT(call, code, words)                                              \
	do {                                                                   \
		buf_reset(&err);                                               \
		assert_int_equal((call), (code));                              \
		if (strstr(buf_cstr(&err), (words)) == NULL)                   \
			fail_msg("message \"%s\" lacks \"%s\"",                \
			         buf_cstr(&err), (words));                     \
	} while (0)

static void
test_happy_path(void **state)
{
	struct tuf_trust t;
	struct tuf_target tg;
	struct tuf_reader r;
	struct chain c;
	struct buf err;

	(void)state;
	buf_init(&err, 4096);
	chain_make(&c, 1);
	trust(&t, &c, &err);
	assert_int_equal(tuf_target_get(&t, "rules/base.yar", &tg, &err),
	                 TUF_OK);
	assert_int_equal(tg.length, sizeof(artifact) - 1);
	assert_string_equal(tg.kind, "rules");
	assert_string_equal(tg.platform, "any");
	assert_int_equal(tuf_reader_init(&r, &tg), 0);
	assert_int_equal(tuf_reader_feed(&r, artifact, 10, &err), TUF_OK);
	assert_int_equal(
	    tuf_reader_feed(&r, artifact + 10, sizeof(artifact) - 11, &err),
	    TUF_OK);
	assert_int_equal(tuf_reader_finish(&r, &err), TUF_OK);
	tuf_reader_free(&r);
	EXPECT(tuf_target_get(&t, "rules/other.yar", &tg, &err), TUF_E_NOTFOUND,
	       "no target named");
	/* The same metadata again is accepted (nothing changed). */
	assert_int_equal(tuf_update_timestamp(&t, c.ts, c.lts, now, &err),
	                 TUF_OK);
	tuf_trust_free(&t);
	chain_free(&c);
	buf_free(&err);
}

static void
test_order(void **state)
{
	struct tuf_trust t;
	struct chain c;
	struct buf err;

	(void)state;
	buf_init(&err, 4096);
	chain_make(&c, 1);
	assert_int_equal(tuf_trust_init(&t, c.root, c.lroot, &err), TUF_OK);
	EXPECT(tuf_update_snapshot(&t, c.snap, c.lsnap, now, &err), TUF_E_ORDER,
	       "before a trusted timestamp");
	EXPECT(tuf_update_targets(&t, c.tg, c.ltg, now, &err), TUF_E_ORDER,
	       "before a trusted snapshot");
	tuf_trust_free(&t);
	chain_free(&c);
	buf_free(&err);
}

/* Freeze: expired timestamp, snapshot, targets, root. */
static void
test_freeze(void **state)
{
	struct tuf_trust t;
	struct chain c;
	struct buf err;
	uint8_t *old;
	size_t lold;

	(void)state;
	buf_init(&err, 4096);
	chain_make(&c, 1);
	assert_int_equal(tuf_trust_init(&t, c.root, c.lroot, &err), TUF_OK);
	/* A day later the timestamp has expired. */
	EXPECT(tuf_update_timestamp(&t, c.ts, c.lts, now + DAY, &err),
	       TUF_E_EXPIRED, "timestamp metadata version 1 expired at");
	old = make_timestamp(1, -60, 1, c.snap, c.lsnap, kts, &lold);
	EXPECT(tuf_update_timestamp(&t, old, lold, now, &err), TUF_E_EXPIRED,
	       "frozen");
	free(old);
	assert_int_equal(tuf_update_timestamp(&t, c.ts, c.lts, now, &err),
	                 TUF_OK);
	EXPECT(tuf_update_snapshot(&t, c.snap, c.lsnap, now + 8 * DAY, &err),
	       TUF_E_EXPIRED, "snapshot metadata version 1 expired");
	assert_int_equal(tuf_update_snapshot(&t, c.snap, c.lsnap, now, &err),
	                 TUF_OK);
	EXPECT(tuf_update_targets(&t, c.tg, c.ltg, now + 31 * DAY, &err),
	       TUF_E_EXPIRED, "targets metadata version 1 expired");
	EXPECT(tuf_root_fresh(&t, now + 366 * DAY, &err), TUF_E_EXPIRED,
	       "root metadata version 1 expired");
	tuf_trust_free(&t);
	chain_free(&c);
	buf_free(&err);
}

/* Rollback: older timestamp, a timestamp naming an older snapshot, older
 * targets, an older root. */
static void
test_rollback(void **state)
{
	struct tuf_trust t;
	struct chain c1, c2;
	struct buf err;
	uint8_t *ts;
	size_t lts;

	(void)state;
	buf_init(&err, 4096);
	chain_make(&c1, 1);
	chain_make(&c2, 2);
	trust(&t, &c2, &err);
	EXPECT(tuf_update_timestamp(&t, c1.ts, c1.lts, now, &err),
	       TUF_E_ROLLBACK,
	       "timestamp metadata version 1 is older than the trusted "
	       "version 2");
	/* A new timestamp (v3) naming the old snapshot v1. */
	ts = make_timestamp(3, DAY, 1, c1.snap, c1.lsnap, kts, &lts);
	EXPECT(tuf_update_timestamp(&t, ts, lts, now, &err), TUF_E_ROLLBACK,
	       "names snapshot version 1, older than the trusted version 2");
	free(ts);
	/* A snapshot v3 that lists targets v1: the targets went back. */
	{
		uint8_t *sn, *ts3;
		size_t lsn, lts3;

		sn = make_snapshot(3, 7 * DAY, 1, c1.tg, c1.ltg, &lsn);
		ts3 = make_timestamp(3, DAY, 3, sn, lsn, kts, &lts3);
		assert_int_equal(tuf_update_timestamp(&t, ts3, lts3, now, &err),
		                 TUF_OK);
		EXPECT(tuf_update_snapshot(&t, sn, lsn, now, &err),
		       TUF_E_ROLLBACK,
		       "targets.json goes from version 2 to 1 (rollback)");
		free(sn);
		free(ts3);
	}
	tuf_trust_free(&t);
	/* An older root than the trusted one. */
	{
		struct rootspec s = spec1();
		uint8_t *r2, *r1b;
		size_t l2, l1b;

		r2 = seal(root_signed(2, &s, 365 * DAY), kroot, 1, &l2);
		r1b = seal(root_signed(1, &s, 365 * DAY), kroot, 1, &l1b);
		assert_int_equal(tuf_trust_init(&t, c1.root, c1.lroot, &err),
		                 TUF_OK);
		assert_int_equal(tuf_update_root(&t, r2, l2, &err), TUF_OK);
		EXPECT(tuf_update_root(&t, r1b, l1b, &err), TUF_E_ROLLBACK,
		       "root metadata version 1 is not newer");
		tuf_trust_free(&t);
		free(r2);
		free(r1b);
	}
	chain_free(&c1);
	chain_free(&c2);
	buf_free(&err);
}

/* Mix-and-match: a snapshot or targets other than the one named. */
static void
test_mix_and_match(void **state)
{
	struct tuf_trust t;
	struct chain c1, c2;
	struct buf err;

	(void)state;
	buf_init(&err, 4096);
	chain_make(&c1, 1);
	chain_make(&c2, 2);
	assert_int_equal(tuf_trust_init(&t, c1.root, c1.lroot, &err), TUF_OK);
	assert_int_equal(tuf_update_timestamp(&t, c2.ts, c2.lts, now, &err),
	                 TUF_OK);
	EXPECT(tuf_update_snapshot(&t, c1.snap, c1.lsnap, now, &err),
	       TUF_E_MIXMATCH,
	       "snapshot.json is version 1 but the trusted metadata names "
	       "version 2");
	assert_int_equal(tuf_update_snapshot(&t, c2.snap, c2.lsnap, now, &err),
	                 TUF_OK);
	EXPECT(tuf_update_targets(&t, c1.tg, c1.ltg, now, &err), TUF_E_MIXMATCH,
	       "different snapshots");
	/* Same version, other content (signed by the right key): the hash
	 * the snapshot declares tells. */
	{
		uint8_t *tg;
		size_t ltg;

		tg = make_targets(2, 29 * DAY, "rules/base.yar", ktargets, 1,
		                  &ltg);
		EXPECT(tuf_update_targets(&t, tg, ltg, now, &err),
		       ltg > c2.ltg ? TUF_E_TOOBIG : TUF_E_HASH,
		       "targets.json");
		free(tg);
	}
	tuf_trust_free(&t);
	chain_free(&c1);
	chain_free(&c2);
	buf_free(&err);
}

/* Arbitrary and endless artifacts and metadata. */
static void
test_artifacts(void **state)
{
	struct tuf_trust t;
	struct tuf_target tg;
	struct tuf_reader r;
	struct chain c;
	struct buf err;
	uint8_t forged[sizeof(artifact)];

	(void)state;
	buf_init(&err, 4096);
	chain_make(&c, 1);
	trust(&t, &c, &err);
	assert_int_equal(tuf_target_get(&t, "rules/base.yar", &tg, &err), 0);
	/* Same length, one byte changed. */
	memcpy(forged, artifact, sizeof(artifact));
	forged[0] ^= 1;
	tuf_reader_init(&r, &tg);
	assert_int_equal(tuf_reader_feed(&r, forged, tg.length, &err), 0);
	EXPECT(tuf_reader_finish(&r, &err), TUF_E_HASH,
	       "SHA-256 differs from the signed one");
	tuf_reader_free(&r);
	/* Short. */
	tuf_reader_init(&r, &tg);
	assert_int_equal(tuf_reader_feed(&r, artifact, 3, &err), 0);
	EXPECT(tuf_reader_finish(&r, &err), TUF_E_LENGTH, "3 bytes of the");
	tuf_reader_free(&r);
	/* Endless: the byte past the declared length is refused. */
	tuf_reader_init(&r, &tg);
	assert_int_equal(tuf_reader_feed(&r, artifact, tg.length, &err), 0);
	EXPECT(tuf_reader_feed(&r, "x", 1, &err), TUF_E_TOOBIG, "endless data");
	tuf_reader_free(&r);
	tuf_trust_free(&t);

	/* Endless metadata: a snapshot longer than the timestamp says,
	 * refused before it is parsed; metadata beyond the role's cap. */
	assert_int_equal(tuf_trust_init(&t, c.root, c.lroot, &err), 0);
	assert_int_equal(tuf_update_timestamp(&t, c.ts, c.lts, now, &err), 0);
	{
		uint8_t *big = malloc(c.lsnap + 100);

		memcpy(big, c.snap, c.lsnap);
		memset(big + c.lsnap, ' ', 100);
		EXPECT(tuf_update_snapshot(&t, big, c.lsnap + 100, now, &err),
		       TUF_E_TOOBIG, "more than the");
		free(big);
	}
	{
		size_t n = TUF_MAX_TIMESTAMP + 1;
		uint8_t *big = malloc(n);

		memset(big, ' ', n);
		EXPECT(tuf_update_timestamp(&t, big, n, now, &err),
		       TUF_E_TOOBIG, "more than the 65536 allowed");
		free(big);
	}
	tuf_trust_free(&t);
	chain_free(&c);
	buf_free(&err);
}

/* Bad and missing signatures. */
static void
test_signatures(void **state)
{
	struct tuf_trust t;
	struct chain c;
	struct buf err;
	json_t *doc;
	char *s;

	(void)state;
	buf_init(&err, 4096);
	chain_make(&c, 1);
	assert_int_equal(tuf_trust_init(&t, c.root, c.lroot, &err), 0);
	/* Changed after signing: the signature no longer verifies. */
	doc = json_loadb((const char *)c.ts, c.lts, 0, NULL);
	json_object_set_new(json_object_get(doc, "signed"), "version",
	                    json_integer(9));
	s = json_dumps(doc, 0);
	EXPECT(tuf_update_timestamp(&t, (uint8_t *)s, strlen(s), now, &err),
	       TUF_E_SIGNATURE, "does not verify");
	free(s);
	/* No signatures at all. */
	json_object_set_new(doc, "signatures", json_array());
	s = json_dumps(doc, 0);
	EXPECT(tuf_update_timestamp(&t, (uint8_t *)s, strlen(s), now, &err),
	       TUF_E_THRESHOLD, "0 valid signatures of the 1");
	free(s);
	json_decref(doc);
	/* Signed by a key the root does not give the timestamp role (the
	 * snapshot key). */
	{
		uint8_t *ts;
		size_t lts;

		ts = make_timestamp(1, DAY, 1, c.snap, c.lsnap, ksnap, &lts);
		EXPECT(tuf_update_timestamp(&t, ts, lts, now, &err),
		       TUF_E_THRESHOLD, "0 valid signatures");
		free(ts);
	}
	/* Garbage where a signature should be. */
	doc = json_loadb((const char *)c.ts, c.lts, 0, NULL);
	json_object_set_new(
	    json_array_get(json_object_get(doc, "signatures"), 0), "sig",
	    json_string("zz"));
	s = json_dumps(doc, 0);
	EXPECT(tuf_update_timestamp(&t, (uint8_t *)s, strlen(s), now, &err),
	       TUF_E_SIGNATURE, "not 64 bytes of hex");
	free(s);
	json_decref(doc);
	tuf_trust_free(&t);
	chain_free(&c);
	buf_free(&err);
}

/* Thresholds: targets needs 2 of 3 keys. */
static void
test_threshold(void **state)
{
	struct rootspec s = spec1();
	EVP_PKEY *tgk[] = {ktargets[0], ktargets[1], ktargets[2], NULL};
	EVP_PKEY *twice[] = {ktargets[0], ktargets[0]};
	struct tuf_trust t;
	struct buf err;
	uint8_t *root, *tg, *sn, *ts;
	size_t lroot, ltg, lsn, lts;

	(void)state;
	buf_init(&err, 4096);
	s.targets = tgk;
	s.th_targets = 2;
	root = seal(root_signed(1, &s, 365 * DAY), kroot, 1, &lroot);
	for (int round = 0; round < 3; round++) {
		if (round == 0)
			tg = make_targets(1, DAY, "a", ktargets, 1, &ltg);
		else if (round == 1)
			tg = make_targets(1, DAY, "a", twice, 2, &ltg);
		else
			tg = make_targets(1, DAY, "a", ktargets + 1, 2, &ltg);
		sn = make_snapshot(1, DAY, 1, tg, ltg, &lsn);
		ts = make_timestamp(1, DAY, 1, sn, lsn, kts, &lts);
		assert_int_equal(tuf_trust_init(&t, root, lroot, &err), 0);
		assert_int_equal(tuf_update_timestamp(&t, ts, lts, now, &err),
		                 0);
		assert_int_equal(tuf_update_snapshot(&t, sn, lsn, now, &err),
		                 0);
		if (round < 2)
			/* One key, or one key twice: one of two. */
			EXPECT(tuf_update_targets(&t, tg, ltg, now, &err),
			       TUF_E_THRESHOLD,
			       "1 valid signature of the 2 its threshold");
		else
			assert_int_equal(
			    tuf_update_targets(&t, tg, ltg, now, &err), 0);
		tuf_trust_free(&t);
		free(tg);
		free(sn);
		free(ts);
	}
	/* A root whose threshold exceeds its keys is malformed. */
	s.th_targets = 4;
	free(root);
	root = seal(root_signed(1, &s, 365 * DAY), kroot, 1, &lroot);
	EXPECT(tuf_trust_init(&t, root, lroot, &err), TUF_E_FORMAT,
	       "threshold 4 of 3 keys");
	free(root);
	buf_free(&err);
}

/* A compromised timestamp key, rotated out through root v2. */
static void
test_rotation(void **state)
{
	struct rootspec s1 = spec1(), s2 = spec1();
	EVP_PKEY *newroot[] = {kroot[1], kroot[2], NULL};
	EVP_PKEY *newts[] = {kts2, NULL};
	EVP_PKEY *both[] = {kroot[0], kroot[1], kroot[2]};
	struct tuf_trust t;
	struct chain c;
	struct buf err;
	uint8_t *r2, *r3, *ts, *bad;
	size_t l2, l3, lts, lbad;

	(void)state;
	buf_init(&err, 4096);
	chain_make(&c, 5);
	(void)s1;
	s2.root = newroot;
	s2.th_root = 2;
	s2.ts = newts;
	trust(&t, &c, &err);

	/* Signed by the new root keys only: the old root did not agree. */
	bad = seal(root_signed(2, &s2, 365 * DAY), both + 1, 2, &lbad);
	EXPECT(tuf_update_root(&t, bad, lbad, &err), TUF_E_THRESHOLD,
	       "by the trusted root's keys");
	free(bad);
	/* Signed by the old root key and one new one: its own threshold of
	 * two is not met. */
	bad = seal(root_signed(2, &s2, 365 * DAY), both, 2, &lbad);
	EXPECT(tuf_update_root(&t, bad, lbad, &err), TUF_E_THRESHOLD,
	       "by its own keys");
	free(bad);
	/* Skipping version 2. */
	bad = seal(root_signed(3, &s2, 365 * DAY), both, 3, &lbad);
	EXPECT(tuf_update_root(&t, bad, lbad, &err), TUF_E_CHAIN,
	       "skips version 2");
	free(bad);
	/* Root v2 by the old key and both new ones: accepted. */
	r2 = seal(root_signed(2, &s2, 365 * DAY), both, 3, &l2);
	assert_int_equal(tuf_update_root(&t, r2, l2, &err), TUF_OK);
	/* The old timestamp key's metadata no longer counts, even newer. */
	ts = make_timestamp(6, DAY, 5, c.snap, c.lsnap, kts, &lts);
	EXPECT(tuf_update_timestamp(&t, ts, lts, now, &err), TUF_E_THRESHOLD,
	       "0 valid signatures");
	free(ts);
	/* The new key's is taken, even at a lower version: the versions the
	 * old key vouched for were forgotten with it. */
	ts = make_timestamp(1, DAY, 5, c.snap, c.lsnap, kts2, &lts);
	assert_int_equal(tuf_update_timestamp(&t, ts, lts, now, &err), TUF_OK);
	free(ts);
	/* Root v3 must now satisfy v2's threshold (2 of the new keys): the
	 * old root key alone no longer can. */
	r3 = seal(root_signed(3, &s1, 365 * DAY), kroot, 1, &l3);
	EXPECT(tuf_update_root(&t, r3, l3, &err), TUF_E_THRESHOLD,
	       "by the trusted root's keys");
	free(r3);
	free(r2);
	tuf_trust_free(&t);
	chain_free(&c);
	buf_free(&err);
}

static void
test_names(void **state)
{
	static const char *const good[] = {"a", "rules/base.yar",
	                                   "agent/linux-x86_64/vigil-agent-1.2",
	                                   "x_y-z.1"};
	static const char *const bad[] = {
	    "",     "/etc/passwd", "../x",    "a/../b", "a/./b",
	    "a//b", "a/",          ".hidden", "-rf",    "a\\b",
	    "a b",  "ü",           "a/..",    "..",     "."};
	struct tuf_trust t;
	struct rootspec s = spec1();
	struct buf err;
	uint8_t *root, *tg, *sn, *ts;
	size_t lroot, ltg, lsn, lts;
	char longname[TUF_MAX_NAME + 2];

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_true(tuf_name_ok(good[i], strlen(good[i])));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (tuf_name_ok(bad[i], strlen(bad[i])))
			fail_msg("name \"%s\" accepted", bad[i]);
	assert_false(tuf_name_ok("a\0b", 3));
	memset(longname, 'a', sizeof(longname));
	longname[sizeof(longname) - 1] = '\0';
	assert_false(tuf_name_ok(longname, strlen(longname)));

	/* Signed metadata naming a traversal is refused as a whole. */
	buf_init(&err, 4096);
	root = seal(root_signed(1, &s, 365 * DAY), kroot, 1, &lroot);
	tg = make_targets(1, DAY, "../../etc/cron.d/x", ktargets, 1, &ltg);
	sn = make_snapshot(1, DAY, 1, tg, ltg, &lsn);
	ts = make_timestamp(1, DAY, 1, sn, lsn, kts, &lts);
	assert_int_equal(tuf_trust_init(&t, root, lroot, &err), 0);
	assert_int_equal(tuf_update_timestamp(&t, ts, lts, now, &err), 0);
	assert_int_equal(tuf_update_snapshot(&t, sn, lsn, now, &err), 0);
	EXPECT(tuf_update_targets(&t, tg, ltg, now, &err), TUF_E_NAME,
	       "target name \"../../etc/cron.d/x\" is refused");
	tuf_trust_free(&t);
	free(root);
	free(tg);
	free(sn);
	free(ts);
	buf_free(&err);
}

/* Malformed metadata: each refused as a format error. */
static void
test_format(void **state)
{
	struct tuf_trust t;
	struct chain c;
	struct buf err;
	json_t *doc;
	char *s;

	(void)state;
	buf_init(&err, 4096);
	chain_make(&c, 1);
	EXPECT(tuf_trust_init(&t, (const uint8_t *)"{", 1, &err), TUF_E_FORMAT,
	       "not JSON");
	EXPECT(tuf_trust_init(&t, c.ts, c.lts, &err), TUF_E_FORMAT,
	       "expected root metadata, got _type \"timestamp\"");
	/* Duplicate keys. */
	s = "{\"signed\": {}, \"signed\": {}, \"signatures\": []}";
	EXPECT(tuf_trust_init(&t, (const uint8_t *)s, strlen(s), &err),
	       TUF_E_FORMAT, "duplicate");
	/* A key listed under an ID that is not its hash. */
	doc = json_loadb((const char *)c.root, c.lroot, 0, NULL);
	{
		json_t *keys =
		    json_object_get(json_object_get(doc, "signed"), "keys");
		const char *id = NULL;
		json_t *v;
		void *tmp;

		json_object_foreach_safe(keys, tmp, id, v)
		{
			json_object_set(keys, "00ff", v);
			break;
		}
	}
	s = json_dumps(doc, 0);
	EXPECT(tuf_trust_init(&t, (uint8_t *)s, strlen(s), &err), TUF_E_FORMAT,
	       "is not the SHA-256 of its key");
	free(s);
	/* A real number inside signed. */
	json_object_set_new(json_object_get(doc, "signed"), "x",
	                    json_real(1.5));
	s = json_dumps(doc, 0);
	EXPECT(tuf_trust_init(&t, (uint8_t *)s, strlen(s), &err), TUF_E_FORMAT,
	       "real numbers");
	free(s);
	json_decref(doc);
	/* A bad date. */
	assert_int_equal(tuf_parse_time("2026-02-31T00:00:00Z", &now), -1);
	assert_int_equal(tuf_parse_time("2026-02-28T00:00:00", &now), -1);
	chain_free(&c);
	buf_free(&err);
}

/* The canonical form is exactly jansson's compact, sorted output. */
/* One key written twice, its public value once in upper case: two key
 * IDs, one key. It must never count twice towards a threshold: hex is
 * lower case only (keys, signatures, hashes). */
static void
test_key_case(void **state)
{
	struct rootspec s = spec1();
	struct tuf_trust t;
	struct chain c;
	struct buf err;
	json_t *sig, *keys, *k0, *ku, *doc;
	char id0[65], idu[65], *canon, *str;
	uint8_t h[32], *root;
	unsigned int hl;
	size_t lroot;

	(void)state;
	buf_init(&err, 4096);
	sig = root_signed(1, &s, 365 * DAY);
	keys = json_object_get(sig, "keys");
	assert_int_equal(tuf_keyid(ktargets[0], id0), 0);
	k0 = json_object_get(keys, id0);
	ku = json_deep_copy(k0);
	{
		char up[65];
		const char *pub = json_string_value(
		    json_object_get(json_object_get(k0, "keyval"), "public"));

		for (int i = 0; i < 64; i++)
			up[i] = (char)((pub[i] >= 'a' && pub[i] <= 'f')
			                   ? pub[i] - 'a' + 'A'
			                   : pub[i]);
		up[64] = '\0';
		json_object_set_new(json_object_get(ku, "keyval"), "public",
		                    json_string(up));
	}
	canon = tuf_canonical(ku);
	EVP_Digest(canon, strlen(canon), h, &hl, EVP_sha256(), NULL);
	free(canon);
	hex_encode(h, 32, idu);
	assert_string_not_equal(id0, idu);
	json_object_set_new(keys, idu, ku);
	json_object_set_new(
	    json_object_get(sig, "roles"), "targets",
	    json_pack("{s:[s, s], s:i}", "keyids", id0, idu, "threshold", 2));
	root = seal(sig, kroot, 1, &lroot);
	EXPECT(tuf_trust_init(&t, root, lroot, &err), TUF_E_FORMAT,
	       "lower-case hex");
	free(root);

	/* A signature in upper-case hex. */
	chain_make(&c, 1);
	assert_int_equal(tuf_trust_init(&t, c.root, c.lroot, &err), TUF_OK);
	doc = json_loadb((const char *)c.ts, c.lts, 0, NULL);
	{
		json_t *s0 =
		    json_array_get(json_object_get(doc, "signatures"), 0);
		char *up =
		    strdup(json_string_value(json_object_get(s0, "sig")));

		for (char *p = up; *p; p++)
			if (*p >= 'a' && *p <= 'f')
				*p = (char)(*p - 'a' + 'A');
		json_object_set_new(s0, "sig", json_string(up));
		free(up);
	}
	str = json_dumps(doc, 0);
	EXPECT(tuf_update_timestamp(&t, (uint8_t *)str, strlen(str), now, &err),
	       TUF_E_SIGNATURE, "lower-case");
	free(str);
	json_decref(doc);
	/* A hash in upper-case hex (the timestamp's snapshot entry). */
	{
		json_t *sg;
		uint8_t *ts;
		size_t lts;
		char *up;

		doc = json_loadb((const char *)c.ts, c.lts, 0, NULL);
		sg = json_incref(json_object_get(doc, "signed"));
		json_decref(doc);
		{
			json_t *hs = json_object_get(
			    json_object_get(
			        json_object_get(json_object_get(sg, "meta"),
			                        "snapshot.json"),
			        "hashes"),
			    "sha256");

			up = strdup(json_string_value(hs));
		}
		for (char *p = up; *p; p++)
			if (*p >= 'a' && *p <= 'f')
				*p = (char)(*p - 'a' + 'A');
		json_object_set_new(
		    json_object_get(json_object_get(json_object_get(sg, "meta"),
		                                    "snapshot.json"),
		                    "hashes"),
		    "sha256", json_string(up));
		free(up);
		ts = seal(sg, &kts, 1, &lts);
		EXPECT(tuf_update_timestamp(&t, ts, lts, now, &err),
		       TUF_E_FORMAT, "bad length or sha256");
		free(ts);
	}
	tuf_trust_free(&t);
	chain_free(&c);
	buf_free(&err);
}

static void
test_canonical(void **state)
{
	json_t *v = json_pack("{s:i, s:s, s:[i, {s:b, s:n}]}", "b", 1, "a",
	                      "x\"y", "c", 2, "z", 1, "y");
	char *s = tuf_canonical(v);
	long long t;

	(void)state;
	assert_string_equal(s, "{\"a\":\"x\\\"y\",\"b\":1,\"c\":[2,{\"y\":null,"
	                       "\"z\":true}]}");
	free(s);
	json_decref(v);
	v = json_pack("{s:f}", "a", 1.0);
	assert_null(tuf_canonical(v));
	json_decref(v);
	assert_int_equal(tuf_parse_time("2026-12-06T20:00:00Z", &t), 0);
	{
		char out[21];

		tuf_format_time(t, out);
		assert_string_equal(out, "2026-12-06T20:00:00Z");
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_happy_path),
	    cmocka_unit_test(test_order),
	    cmocka_unit_test(test_freeze),
	    cmocka_unit_test(test_rollback),
	    cmocka_unit_test(test_mix_and_match),
	    cmocka_unit_test(test_artifacts),
	    cmocka_unit_test(test_signatures),
	    cmocka_unit_test(test_threshold),
	    cmocka_unit_test(test_rotation),
	    cmocka_unit_test(test_names),
	    cmocka_unit_test(test_format),
	    cmocka_unit_test(test_canonical),
	    cmocka_unit_test(test_key_case),
	};
	int rc;

	now = (long long)time(NULL);
	for (int i = 0; i < 3; i++) {
		kroot[i] = genkey();
		ktargets[i] = genkey();
	}
	ksnap = genkey();
	kts = genkey();
	kts2 = genkey();
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	for (int i = 0; i < 3; i++) {
		EVP_PKEY_free(kroot[i]);
		EVP_PKEY_free(ktargets[i]);
	}
	EVP_PKEY_free(ksnap);
	EVP_PKEY_free(kts);
	EVP_PKEY_free(kts2);
	return rc;
}
