/*
 * Fuzz target: TUF metadata (src/proto/tuf.c). The first byte picks the
 * role the rest is read as: a pinned root (tuf_trust_init), or a new root,
 * timestamp, snapshot or targets fed to a trust state that already holds
 * a real root (signed once at start-up with a fixed key), so parsing runs
 * up to and past the signature checks. Besides crashes it checks the
 * promises: a refusal always says why, and a refused step leaves the
 * trusted versions as they were.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *root;
static size_t rootlen;

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
	EVP_PKEY_free(k);
	buf_free(&err);
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
	role = data[0] % 5;
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
