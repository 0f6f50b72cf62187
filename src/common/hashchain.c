/*
 * hashchain.c: canonical serialization and SHA-256 links of audit log
 * entries (see hashchain.h and docs/audit.md). Jansson's sorted compact
 * dump is the canonical form: it is deterministic, and integers and
 * strings (all an entry holds, apart from quoted request bodies) survive a
 * parse and dump unchanged, so a chain read back from the API verifies.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "hashchain.h"

int
hashchain_hash(json_t *entry, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	json_t *copy = NULL;
	char *text = NULL;
	int rc = -1;

	if (!json_is_object(entry) || (copy = json_copy(entry)) == NULL)
		goto fail;
	json_object_del(copy, "hash");
	if ((text = json_dumps(copy, JSON_COMPACT | JSON_SORT_KEYS |
	                                 JSON_ENSURE_ASCII)) == NULL)
		goto fail;
	if (EVP_Digest(text, strlen(text), md, &mdlen, EVP_sha256(), NULL) !=
	        1 ||
	    mdlen != 32)
		goto fail;
	hex_encode(md, mdlen, out);
	rc = 0;
fail:
	free(text);
	json_decref(copy);
	return rc;
}

void
hashchain_init(struct hashchain *h)
{
	memset(h, 0, sizeof(*h));
	memcpy(h->last_hash, HASHCHAIN_ZERO, 65);
}

int
hashchain_next(struct hashchain *h, json_t *entry, struct buf *why)
{
	json_t *jid = json_object_get(entry, "id");
	const char *prev =
	    json_string_value(json_object_get(entry, "prev_hash"));
	const char *hash = json_string_value(json_object_get(entry, "hash"));
	char want[65];
	long long id;

	if (!json_is_integer(jid) || prev == NULL || hash == NULL) {
		buf_printf(why,
		           "entry after id %lld: id, prev_hash or hash "
		           "missing",
		           h->last_id);
		return -1;
	}
	id = json_integer_value(jid);
	if (id != h->last_id + 1) {
		buf_printf(why,
		           "entry %lld: expected id %lld (entries missing or "
		           "reordered)",
		           id, h->last_id + 1);
		return -1;
	}
	if (strcmp(prev, h->last_hash) != 0) {
		buf_printf(why,
		           "entry %lld: prev_hash does not match the hash of "
		           "entry %lld",
		           id, h->last_id);
		return -1;
	}
	if (hashchain_hash(entry, want) == -1) {
		buf_printf(why, "entry %lld: cannot be serialized", id);
		return -1;
	}
	if (strcmp(want, hash) != 0) {
		buf_printf(why,
		           "entry %lld: content does not match its hash "
		           "(modified after it was written)",
		           id);
		return -1;
	}
	h->last_id = id;
	memcpy(h->last_hash, want, 65);
	h->checked++;
	return 0;
}
