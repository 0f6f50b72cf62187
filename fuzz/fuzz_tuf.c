/*
 * Fuzz target: TUF metadata (src/proto/tuf.c). The first byte picks the
 * role the rest is read as: a pinned root (tuf_trust_init), or a new root,
 * timestamp, snapshot or targets fed to a trust state that already holds
 * a real root (signed once at start-up with a fixed key), so parsing runs
 * up to and past the signature checks. Bytes 5 and 6 read the rest as
 * the "signed" object of a snapshot or targets, which the target signs
 * with that key and chains (a timestamp, and for targets a snapshot,
 * naming its version, length and hash), so the checks behind the
 * signatures (meta entries, versions, target entries and names) are
 * fuzzed too. Besides crashes it checks the promises: a refusal always
 * says why, a refused step leaves the trusted versions as they were, and
 * every target of accepted metadata has a name tuf_name_ok accepts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *root;
static size_t rootlen;
static EVP_PKEY *key;

/* A root whose every role has one key, the same fixed Ed25519 key. */
static void
make_root(void)
{
	static const uint8_t seed[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
	EVP_PKEY *k =
	    EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
	json_t *sig, *env, *keys = json_object(), *roles = json_object();
	struct buf err;
	char id[65];

	/* Kept for signed_mode (never freed: the process ends with it). */
	key = k;
	tuf_keyid(k, id);
	json_object_set_new(keys, id, tuf_key_json(k));
	for (int r = 0; r < TUF_NROLES; r++)
		json_object_set_new(
		    roles, tuf_role_name(r),
		    json_pack("{s:[s], s:i}", "keyids", id, "threshold", 1));
	sig = json_pack("{s:s, s:s, s:i, s:s, s:o, s:o}", "_type", "root",
	                "spec_version", "1.0", "version", 1, "expires",
	                "2099-01-01T00:00:00Z", "keys", keys, "roles", roles);
	buf_init(&err, 1024);
	env = tuf_sign(sig, &k, 1, &err);
	root = json_dumps(env, 0);
	rootlen = strlen(root);
	json_decref(env);
	json_decref(sig);
	buf_free(&err);
}

/* The envelope of sig (taken) signed with the fixed key, as bytes
 * (free()). */
static char *
seal(json_t *sig)
{
	struct buf err;
	json_t *env;
	char *s;

	buf_init(&err, 1024);
	env = tuf_sign(sig, &key, 1, &err);
	s = env != NULL ? json_dumps(env, 0) : NULL;
	json_decref(env);
	json_decref(sig);
	buf_free(&err);
	return s;
}

/* A meta entry naming data (length, SHA-256) at version v. */
static json_t *
ref(json_int_t v, const char *data)
{
	uint8_t h[32];
	unsigned int hl;
	char hex[65];

	EVP_Digest(data, strlen(data), h, &hl, EVP_sha256(), NULL);
	hex_encode(h, 32, hex);
	return json_pack("{s:I, s:I, s:{s:s}}", "version", v, "length",
	                 (json_int_t)strlen(data), "hashes", "sha256", hex);
}

static void
check_name(const struct tuf_target *tg, void *arg)
{
	(void)arg;
	if (!tuf_name_ok(tg->name, strlen(tg->name)) || tg->length < 0)
		abort();
}

/* Modes 5 (snapshot) and 6 (targets): data is a "signed" object. */
static void
signed_mode(int targets, const uint8_t *data, size_t size)
{
	json_t *sig =
	    json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	char *me = NULL, *sn = NULL, *ts = NULL;
	json_int_t v;
	struct tuf_trust t;
	struct buf err;
	int rc;

	if (sig == NULL)
		return;
	/* Without a positive version there is nothing to name it by. */
	if ((v = json_integer_value(json_object_get(sig, "version"))) < 1)
		goto done;
	if ((me = seal(json_incref(sig))) == NULL)
		goto done;
	if (targets)
		sn =
		    seal(json_pack("{s:s, s:s, s:i, s:s, s:{s:o}}", "_type",
		                   "snapshot", "spec_version", "1.0", "version",
		                   1, "expires", "2099-01-01T00:00:00Z", "meta",
		                   "targets.json", ref(v, me)));
	ts = seal(json_pack("{s:s, s:s, s:i, s:s, s:{s:o}}", "_type",
	                    "timestamp", "spec_version", "1.0", "version", 1,
	                    "expires", "2099-01-01T00:00:00Z", "meta",
	                    "snapshot.json",
	                    ref(targets ? 1 : v, targets ? sn : me)));
	buf_init(&err, 4096);
	if (ts == NULL ||
	    tuf_trust_init(&t, (const uint8_t *)root, rootlen, &err) != 0)
		abort();
	if (tuf_update_timestamp(&t, (const uint8_t *)ts, strlen(ts), 0,
	                         &err) != 0)
		abort();
	if (targets && tuf_update_snapshot(&t, (const uint8_t *)sn, strlen(sn),
	                                   0, &err) != 0)
		abort();
	rc = targets ? tuf_update_targets(&t, (const uint8_t *)me, strlen(me),
	                                  0, &err)
	             : tuf_update_snapshot(&t, (const uint8_t *)me, strlen(me),
	                                   0, &err);
	if (rc != TUF_OK && err.len == 0)
		abort();
	if (rc == TUF_OK && targets)
		tuf_target_each(&t, check_name, NULL);
	tuf_trust_free(&t);
	buf_free(&err);
done:
	free(me);
	free(sn);
	free(ts);
	json_decref(sig);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tuf_trust t;
	struct buf err;
	long long before[TUF_NROLES];
	int rc, role;

	if (root == NULL)
		make_root();
	if (size < 1)
		return 0;
	role = data[0] % 7;
	if (role >= 5) {
		signed_mode(role == 6, data + 1, size - 1);
		return 0;
	}
	buf_init(&err, 4096);
	if (role == 4) {
		rc = tuf_trust_init(&t, data + 1, size - 1, &err);
		if (rc != TUF_OK && err.len == 0)
			abort();
		if (rc == TUF_OK)
			tuf_trust_free(&t);
		buf_free(&err);
		return 0;
	}
	if (tuf_trust_init(&t, (const uint8_t *)root, rootlen, &err) != 0)
		abort();
	for (int r = 0; r < TUF_NROLES; r++)
		before[r] = t.meta[r].version;
	switch (role) {
	case TUF_ROOT:
		rc = tuf_update_root(&t, data + 1, size - 1, &err);
		break;
	case TUF_TIMESTAMP:
		rc = tuf_update_timestamp(&t, data + 1, size - 1, 0, &err);
		break;
	case TUF_SNAPSHOT:
		rc = tuf_update_snapshot(&t, data + 1, size - 1, 0, &err);
		break;
	default:
		rc = tuf_update_targets(&t, data + 1, size - 1, 0, &err);
		break;
	}
	if (rc != TUF_OK) {
		if (err.len == 0)
			abort();
		for (int r = 0; r < TUF_NROLES; r++)
			if (t.meta[r].version != before[r])
				abort();
	}
	tuf_trust_free(&t);
	buf_free(&err);
	return 0;
}
