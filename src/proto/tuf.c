/*
 * tuf: TUF-style update metadata, parsed and verified (see tuf.h and
 * docs/updates.md). Everything from outside is untrusted until its
 * signatures are counted against keys the trust state already holds; the
 * order of checks follows the TUF specification's client workflow, with
 * the version comparisons made before the hash comparisons where both
 * would fail, so the message names the attack (metadata from another
 * snapshot) rather than its symptom (a different hash).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/err.h>

#include "tuf.h"

static const char *const role_names[TUF_NROLES] = {"root", "targets",
                                                   "snapshot", "timestamp"};
static const size_t role_max[TUF_NROLES] = {
    TUF_MAX_ROOT, TUF_MAX_TARGETS, TUF_MAX_SNAPSHOT, TUF_MAX_TIMESTAMP};

const char *
tuf_role_name(int role)
{
	return role >= 0 && role < TUF_NROLES ? role_names[role] : "?";
}

const char *
tuf_err_name(int e)
{
	switch (e) {
	case TUF_OK:
		return "ok";
	case TUF_E_FORMAT:
		return "format";
	case TUF_E_TOOBIG:
		return "too-big";
	case TUF_E_SIGNATURE:
		return "bad-signature";
	case TUF_E_THRESHOLD:
		return "threshold";
	case TUF_E_EXPIRED:
		return "expired";
	case TUF_E_ROLLBACK:
		return "rollback";
	case TUF_E_MIXMATCH:
		return "mix-and-match";
	case TUF_E_HASH:
		return "hash";
	case TUF_E_LENGTH:
		return "length";
	case TUF_E_NAME:
		return "name";
	case TUF_E_CHAIN:
		return "root-chain";
	case TUF_E_ORDER:
		return "order";
	case TUF_E_NOTFOUND:
		return "not-found";
	}
	return "?";
}

/* ---- times ---- */

int
tuf_parse_time(const char *s, long long *out)
{
	int v[6], lim[6][2] = {{1970, 9999}, {1, 12}, {1, 31},
	                       {0, 23},      {0, 59}, {0, 59}};
	static const char sep[] = "--T::Z";
	static const int width[] = {4, 2, 2, 2, 2, 2};
	struct tm tm;
	time_t t;

	if (s == NULL || strlen(s) != 20)
		return -1;
	for (int i = 0, pos = 0; i < 6; i++) {
		v[i] = 0;
		for (int j = 0; j < width[i]; j++, pos++) {
			if (s[pos] < '0' || s[pos] > '9')
				return -1;
			v[i] = v[i] * 10 + (s[pos] - '0');
		}
		if (s[pos++] != sep[i] || v[i] < lim[i][0] || v[i] > lim[i][1])
			return -1;
	}
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = v[0] - 1900;
	tm.tm_mon = v[1] - 1;
	tm.tm_mday = v[2];
	tm.tm_hour = v[3];
	tm.tm_min = v[4];
	tm.tm_sec = v[5];
	if ((t = timegm(&tm)) == (time_t)-1)
		return -1;
	/* timegm normalises 31 February; a date that moved is not one. */
	if (tm.tm_mday != v[2] || tm.tm_mon != v[1] - 1)
		return -1;
	*out = (long long)t;
	return 0;
}

void
tuf_format_time(long long t, char out[21])
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL ||
	    strftime(out, 21, "%Y-%m-%dT%H:%M:%SZ", &tm) != 20)
		snprintf(out, 21, "invalid");
}

/* ---- canonical JSON ---- */

static int
canon_ok(const json_t *v, int depth)
{
	const char *k;
	json_t *e;
	size_t i;

	if (depth > TUF_MAX_DEPTH)
		return 0;
	switch (json_typeof(v)) {
	case JSON_REAL:
		/* Reals have more than one spelling: never signed. */
		return 0;
	case JSON_OBJECT:
		json_object_foreach((json_t *)v, k, e)
		{
			if (!canon_ok(e, depth + 1))
				return 0;
		}
		return 1;
	case JSON_ARRAY:
		json_array_foreach(v, i, e)
		{
			if (!canon_ok(e, depth + 1))
				return 0;
		}
		return 1;
	default:
		return 1;
	}
}

char *
tuf_canonical(const json_t *v)
{
	if (v == NULL || !canon_ok(v, 0))
		return NULL;
	return json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
}

/* ---- keys ---- */

/* Lower-case hex only (keys, signatures, hashes): one value, one
 * spelling, so a key cannot hide under a second key ID. */
static int
lowhex(int c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ? hex_value(c)
	                                                        : -1;
}

static int
unhex(const char *s, uint8_t *out, size_t n)
{
	if (s == NULL || strlen(s) != 2 * n)
		return -1;
	for (size_t i = 0; i < n; i++) {
		int hi = lowhex((unsigned char)s[2 * i]),
		    lo = lowhex((unsigned char)s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (uint8_t)(hi * 16 + lo);
	}
	return 0;
}

json_t *
tuf_key_json(EVP_PKEY *pub)
{
	uint8_t raw[32];
	size_t n = sizeof(raw);
	char hex[65];

	if (pub == NULL || EVP_PKEY_get_id(pub) != EVP_PKEY_ED25519 ||
	    EVP_PKEY_get_raw_public_key(pub, raw, &n) != 1 || n != 32) {
		ERR_clear_error();
		return NULL;
	}
	hex_encode(raw, 32, hex);
	return json_pack("{s:s, s:s, s:{s:s}}", "keytype", "ed25519", "scheme",
	                 "ed25519", "keyval", "public", hex);
}

static int
keyid_of(const json_t *kj, char out[65])
{
	char *c = tuf_canonical(kj);
	uint8_t h[32];
	unsigned int hl;

	if (c == NULL)
		return -1;
	EVP_Digest(c, strlen(c), h, &hl, EVP_sha256(), NULL);
	free(c);
	hex_encode(h, 32, out);
	return 0;
}

int
tuf_keyid(EVP_PKEY *pub, char out[65])
{
	json_t *kj = tuf_key_json(pub);
	int rc;

	if (kj == NULL)
		return -1;
	rc = keyid_of(kj, out);
	json_decref(kj);
	return rc;
}

/* The key a root lists: exactly keytype, scheme, keyval.public. */
static EVP_PKEY *
key_parse(const json_t *kj)
{
	const char *kt, *sch, *pub;
	uint8_t raw[32];
	EVP_PKEY *k;

	if (json_unpack((json_t *)kj, "{s:s, s:s, s:{s:s !} !}", "keytype", &kt,
	                "scheme", &sch, "keyval", "public", &pub) != 0)
		return NULL;
	if (strcmp(kt, "ed25519") != 0 || strcmp(sch, "ed25519") != 0 ||
	    unhex(pub, raw, 32) == -1)
		return NULL;
	if ((k = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw,
	                                     32)) == NULL)
		ERR_clear_error();
	return k;
}

static void
keys_free(struct tuf_key *keys, size_t n, struct tuf_rolekeys *roles)
{
	for (size_t i = 0; i < n; i++)
		EVP_PKEY_free(keys[i].pk);
	free(keys);
	for (int r = 0; r < TUF_NROLES; r++) {
		free(roles[r].ids);
		roles[r].ids = NULL;
		roles[r].n = 0;
	}
}

static EVP_PKEY *
key_find(struct tuf_key *keys, size_t n, const char *id)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(keys[i].id, id) == 0)
			return keys[i].pk;
	return NULL;
}

/* ---- envelopes ---- */

/* Parses data as {"signed": {...}, "signatures": [...]} of role. */
static int
envelope(const uint8_t *data, size_t len, int role, json_t **doc, json_t **sig,
         json_t **sigs, long long *version, long long *expires, struct buf *err)
{
	json_error_t je;
	const char *type, *exp, *spec;
	json_int_t ver;

	*doc = NULL;
	if (len > role_max[role]) {
		buf_printf(err,
		           "%s metadata is %zu bytes, more than the %zu "
		           "allowed",
		           role_names[role], len, role_max[role]);
		return TUF_E_TOOBIG;
	}
	/* Duplicate keys would let two readers see two documents. */
	*doc = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, &je);
	if (*doc == NULL) {
		buf_printf(err, "%s metadata is not JSON: %s (line %d)",
		           role_names[role], je.text, je.line);
		return TUF_E_FORMAT;
	}
	if (json_unpack(*doc, "{s:o, s:o !}", "signed", sig, "signatures",
	                sigs) != 0 ||
	    !json_is_object(*sig) || !json_is_array(*sigs)) {
		buf_printf(err,
		           "%s metadata: expected exactly \"signed\" (object) "
		           "and \"signatures\" (array)",
		           role_names[role]);
		goto bad;
	}
	if (json_unpack(*sig, "{s:s, s:s, s:I, s:s}", "_type", &type,
	                "spec_version", &spec, "version", &ver, "expires",
	                &exp) != 0) {
		buf_printf(err,
		           "%s metadata: _type, spec_version, version and "
		           "expires are required",
		           role_names[role]);
		goto bad;
	}
	if (strcmp(type, role_names[role]) != 0) {
		buf_printf(err, "expected %s metadata, got _type \"%.20s\"",
		           role_names[role], type);
		goto bad;
	}
	if (strncmp(spec, "1.", 2) != 0) {
		buf_printf(err,
		           "%s metadata: spec_version \"%.20s\" is not 1.x",
		           role_names[role], spec);
		goto bad;
	}
	if (ver < 1) {
		buf_printf(err, "%s metadata: version %lld is not positive",
		           role_names[role], (long long)ver);
		goto bad;
	}
	if (tuf_parse_time(exp, expires) == -1) {
		buf_printf(err,
		           "%s metadata: expires \"%.40s\" is not "
		           "YYYY-MM-DDTHH:MM:SSZ",
		           role_names[role], exp);
		goto bad;
	}
	if (!canon_ok(*sig, 0)) {
		buf_printf(err,
		           "%s metadata: real numbers or nesting deeper than "
		           "%d cannot be signed",
		           role_names[role], TUF_MAX_DEPTH);
		goto bad;
	}
	*version = ver;
	return TUF_OK;
bad:
	json_decref(*doc);
	*doc = NULL;
	return TUF_E_FORMAT;
}

/*
 * Counts valid signatures of signed_ by the keys rk names (from keys).
 * A signature by one of those keys that does not verify is refused as
 * such (a forgery, never just not counted); signatures by other keys are
 * ignored; one key counts once.
 */
static int
check_sigs(const json_t *signed_, const json_t *sigs, struct tuf_key *keys,
           size_t nkeys, const struct tuf_rolekeys *rk, const char *what,
           struct buf *err)
{
	char *canon = tuf_canonical(signed_);
	uint8_t counted[TUF_MAX_KEYS][32];
	long long good = 0;
	json_t *s;
	size_t i;
	int rc = TUF_E_FORMAT;

	if (canon == NULL) {
		buf_printf(err, "%s: cannot be put in canonical form", what);
		return TUF_E_FORMAT;
	}
	if (json_array_size(sigs) > 4 * TUF_MAX_KEYS) {
		buf_printf(err, "%s: too many signatures", what);
		goto done;
	}
	json_array_foreach(sigs, i, s)
	{
		const char *id, *hex;
		uint8_t raw[64];
		size_t slot;
		EVP_PKEY *pk;
		EVP_MD_CTX *md;
		int ok;

		if (json_unpack(s, "{s:s, s:s !}", "keyid", &id, "sig", &hex) !=
		    0) {
			buf_printf(err,
			           "%s: a signature is not {\"keyid\", "
			           "\"sig\"}",
			           what);
			goto done;
		}
		for (slot = 0; slot < rk->n; slot++)
			if (strcmp(rk->ids[slot], id) == 0)
				break;
		if (slot == rk->n)
			continue;
		if ((pk = key_find(keys, nkeys, id)) == NULL)
			continue;
		if (unhex(hex, raw, 64) == -1) {
			buf_printf(err,
			           "%s: the signature by key %.16s is not 64 "
			           "bytes of hex (lower-case)",
			           what, id);
			rc = TUF_E_SIGNATURE;
			goto done;
		}
		if ((md = EVP_MD_CTX_new()) == NULL)
			goto done;
		ok = EVP_DigestVerifyInit(md, NULL, NULL, NULL, pk) == 1 &&
		     EVP_DigestVerify(md, raw, 64, (const uint8_t *)canon,
		                      strlen(canon)) == 1;
		EVP_MD_CTX_free(md);
		ERR_clear_error();
		if (!ok) {
			buf_printf(
			    err,
			    "%s: the signature by key %.16s does not "
			    "verify (forged, or the metadata was changed "
			    "after signing)",
			    what, id);
			rc = TUF_E_SIGNATURE;
			goto done;
		}
		/* Distinct public keys count, not key IDs: one key under
		 * two IDs still counts once. */
		{
			uint8_t pub[32];
			size_t pl = sizeof(pub);
			long long j;

			if (EVP_PKEY_get_raw_public_key(pk, pub, &pl) != 1 ||
			    pl != 32) {
				ERR_clear_error();
				continue;
			}
			for (j = 0; j < good; j++)
				if (memcmp(counted[j], pub, 32) == 0)
					break;
			if (j == good && good < TUF_MAX_KEYS)
				memcpy(counted[good++], pub, 32);
		}
	}
	if (good < rk->threshold) {
		buf_printf(err,
		           "%s: %lld valid signature%s of the %lld its "
		           "threshold requires",
		           what, good, good == 1 ? "" : "s", rk->threshold);
		rc = TUF_E_THRESHOLD;
		goto done;
	}
	rc = TUF_OK;
done:
	free(canon);
	return rc;
}

/* ---- root ---- */

/* The keys and roles of a root's signed part into keys/roles. */
static int
root_parse(const json_t *sig, struct tuf_key **keys, size_t *nkeys,
           struct tuf_rolekeys *roles, struct buf *err)
{
	json_t *jkeys, *jroles, *kj;
	const char *id;
	int r;

	*keys = NULL;
	*nkeys = 0;
	memset(roles, 0, sizeof(*roles) * TUF_NROLES);
	if (json_unpack((json_t *)sig, "{s:o, s:o}", "keys", &jkeys, "roles",
	                &jroles) != 0 ||
	    !json_is_object(jkeys) || !json_is_object(jroles)) {
		buf_puts(err, "root metadata: \"keys\" and \"roles\" objects "
		              "are required");
		return TUF_E_FORMAT;
	}
	if (json_object_size(jkeys) > TUF_NROLES * TUF_MAX_KEYS) {
		buf_puts(err, "root metadata: too many keys");
		return TUF_E_FORMAT;
	}
	if ((*keys = calloc(json_object_size(jkeys) + 1, sizeof(**keys))) ==
	    NULL)
		return TUF_E_FORMAT;
	json_object_foreach(jkeys, id, kj)
	{
		char want[65];
		EVP_PKEY *pk = key_parse(kj);

		if (pk == NULL) {
			buf_printf(err,
			           "root metadata: key %.16s is not an Ed25519 "
			           "key (keyval.public: 64 lower-case hex "
			           "digits)",
			           id);
			goto fail;
		}
		/* The ID must be the key's own hash: two IDs for one key
		 * would let one key count twice towards a threshold. */
		if (keyid_of(kj, want) == -1 || strcmp(want, id) != 0) {
			EVP_PKEY_free(pk);
			buf_printf(err,
			           "root metadata: key ID %.16s is not the "
			           "SHA-256 of its key",
			           id);
			goto fail;
		}
		snprintf((*keys)[*nkeys].id, 65, "%s", id);
		(*keys)[(*nkeys)++].pk = pk;
	}
	for (r = 0; r < TUF_NROLES; r++) {
		json_t *jr = json_object_get(jroles, role_names[r]), *ids, *v;
		json_int_t th;
		size_t i;

		if (jr == NULL ||
		    json_unpack(jr, "{s:o, s:I !}", "keyids", &ids, "threshold",
		                &th) != 0 ||
		    !json_is_array(ids)) {
			buf_printf(
			    err,
			    "root metadata: role %s needs \"keyids\" and "
			    "\"threshold\"",
			    role_names[r]);
			goto fail;
		}
		if (json_array_size(ids) == 0 ||
		    json_array_size(ids) > TUF_MAX_KEYS || th < 1 ||
		    th > (json_int_t)json_array_size(ids)) {
			buf_printf(err,
			           "root metadata: role %s: threshold %lld of "
			           "%zu keys (1..%d keys, threshold 1..keys)",
			           role_names[r], (long long)th,
			           json_array_size(ids), TUF_MAX_KEYS);
			goto fail;
		}
		roles[r].threshold = th;
		if ((roles[r].ids = calloc(json_array_size(ids),
		                           sizeof(*roles[r].ids))) == NULL)
			goto fail;
		json_array_foreach(ids, i, v)
		{
			const char *s = json_string_value(v);

			if (s == NULL || key_find(*keys, *nkeys, s) == NULL) {
				buf_printf(err,
				           "root metadata: role %s names a key "
				           "that is not listed",
				           role_names[r]);
				goto fail;
			}
			for (size_t j = 0; j < roles[r].n; j++)
				if (strcmp(roles[r].ids[j], s) == 0) {
					buf_printf(
					    err,
					    "root metadata: role %s names "
					    "key %.16s twice",
					    role_names[r], s);
					goto fail;
				}
			snprintf(roles[r].ids[roles[r].n++], 65, "%s", s);
		}
	}
	if (json_object_size(jroles) != TUF_NROLES) {
		buf_puts(err, "root metadata: roles other than root, targets, "
		              "snapshot and timestamp");
		goto fail;
	}
	return TUF_OK;
fail:
	keys_free(*keys, *nkeys, roles);
	*keys = NULL;
	*nkeys = 0;
	return TUF_E_FORMAT;
}

static void
digest(const uint8_t *data, size_t len, uint8_t out[32])
{
	unsigned int hl;

	EVP_Digest(data, len, out, &hl, EVP_sha256(), NULL);
}

static void
meta_set(struct tuf_meta *m, json_t *doc, json_t *sig, long long version,
         long long expires, const uint8_t *data, size_t len)
{
	json_decref(m->signed_);
	m->signed_ = json_incref(sig);
	json_decref(doc);
	m->version = version;
	m->expires = expires;
	m->length = len;
	digest(data, len, m->sha256);
}

static void
meta_clear(struct tuf_meta *m)
{
	json_decref(m->signed_);
	memset(m, 0, sizeof(*m));
}

int
tuf_trust_init(struct tuf_trust *t, const uint8_t *root, size_t len,
               struct buf *err)
{
	json_t *doc, *sig, *sigs;
	long long ver, exp;
	int rc;

	memset(t, 0, sizeof(*t));
	if ((rc = envelope(root, len, TUF_ROOT, &doc, &sig, &sigs, &ver, &exp,
	                   err)) != TUF_OK)
		return rc;
	if ((rc = root_parse(sig, &t->keys, &t->nkeys, t->roles, err)) !=
	    TUF_OK)
		goto fail;
	if ((rc = check_sigs(sig, sigs, t->keys, t->nkeys, &t->roles[TUF_ROOT],
	                     "root metadata", err)) != TUF_OK) {
		keys_free(t->keys, t->nkeys, t->roles);
		t->keys = NULL;
		t->nkeys = 0;
		goto fail;
	}
	meta_set(&t->meta[TUF_ROOT], doc, sig, ver, exp, root, len);
	return TUF_OK;
fail:
	json_decref(doc);
	return rc;
}

void
tuf_trust_free(struct tuf_trust *t)
{
	for (int r = 0; r < TUF_NROLES; r++)
		meta_clear(&t->meta[r]);
	keys_free(t->keys, t->nkeys, t->roles);
	t->keys = NULL;
	t->nkeys = 0;
}

static int
same_keys(const struct tuf_rolekeys *a, const struct tuf_rolekeys *b)
{
	if (a->n != b->n || a->threshold != b->threshold)
		return 0;
	for (size_t i = 0; i < a->n; i++) {
		size_t j;

		for (j = 0; j < b->n && strcmp(a->ids[i], b->ids[j]) != 0; j++)
			;
		if (j == b->n)
			return 0;
	}
	return 1;
}

int
tuf_update_root(struct tuf_trust *t, const uint8_t *data, size_t len,
                struct buf *err)
{
	struct tuf_rolekeys roles[TUF_NROLES];
	struct tuf_key *keys = NULL;
	size_t nkeys = 0;
	json_t *doc, *sig, *sigs;
	long long ver, exp, cur = t->meta[TUF_ROOT].version;
	int rc;

	if (t->meta[TUF_ROOT].signed_ == NULL) {
		buf_puts(err, "no trusted root to start from");
		return TUF_E_ORDER;
	}
	if ((rc = envelope(data, len, TUF_ROOT, &doc, &sig, &sigs, &ver, &exp,
	                   err)) != TUF_OK)
		return rc;
	/* The old root's threshold first: a root it did not sign is not
	 * worth reading further. */
	if ((rc = check_sigs(sig, sigs, t->keys, t->nkeys, &t->roles[TUF_ROOT],
	                     "new root metadata, by the trusted root's keys",
	                     err)) != TUF_OK)
		goto fail;
	if ((rc = root_parse(sig, &keys, &nkeys, roles, err)) != TUF_OK)
		goto fail;
	if ((rc = check_sigs(sig, sigs, keys, nkeys, &roles[TUF_ROOT],
	                     "new root metadata, by its own keys", err)) !=
	    TUF_OK)
		goto fail_keys;
	if (ver <= cur) {
		buf_printf(err,
		           "root metadata version %lld is not newer than the "
		           "trusted version %lld (rollback)",
		           ver, cur);
		rc = TUF_E_ROLLBACK;
		goto fail_keys;
	}
	if (ver != cur + 1) {
		buf_printf(err,
		           "root metadata version %lld skips version %lld: "
		           "each root must be verified in turn",
		           ver, cur + 1);
		rc = TUF_E_CHAIN;
		goto fail_keys;
	}
	/* New timestamp or snapshot keys: what the old keys vouched for is
	 * no longer a floor (TUF 5.3.11). */
	if (!same_keys(&roles[TUF_TIMESTAMP], &t->roles[TUF_TIMESTAMP]) ||
	    !same_keys(&roles[TUF_SNAPSHOT], &t->roles[TUF_SNAPSHOT])) {
		meta_clear(&t->meta[TUF_TIMESTAMP]);
		meta_clear(&t->meta[TUF_SNAPSHOT]);
	}
	keys_free(t->keys, t->nkeys, t->roles);
	t->keys = keys;
	t->nkeys = nkeys;
	memcpy(t->roles, roles, sizeof(roles));
	meta_set(&t->meta[TUF_ROOT], doc, sig, ver, exp, data, len);
	return TUF_OK;
fail_keys:
	keys_free(keys, nkeys, roles);
fail:
	json_decref(doc);
	return rc;
}

static int
fresh(const struct tuf_meta *m, int role, long long now, struct buf *err)
{
	char when[21];

	if (now >= m->expires) {
		tuf_format_time(m->expires, when);
		buf_printf(err,
		           "%s metadata version %lld expired at %s (a frozen "
		           "or stale repository)",
		           role_names[role], m->version, when);
		return TUF_E_EXPIRED;
	}
	return TUF_OK;
}

int
tuf_root_fresh(struct tuf_trust *t, long long now, struct buf *err)
{
	if (t->meta[TUF_ROOT].signed_ == NULL) {
		buf_puts(err, "no trusted root");
		return TUF_E_ORDER;
	}
	return fresh(&t->meta[TUF_ROOT], TUF_ROOT, now, err);
}

/* ---- timestamp, snapshot, targets ---- */

/* meta[file] of a snapshot or timestamp: version, length, sha256. */
static int
meta_ref(const json_t *sig, const char *file, long long *version,
         long long *length, uint8_t sha[32], struct buf *err)
{
	json_t *m = json_object_get(json_object_get(sig, "meta"), file);
	json_int_t v, l = -1;
	const char *h = NULL;

	if (m == NULL ||
	    json_unpack(m, "{s:I, s?I, s?{s:s}}", "version", &v, "length", &l,
	                "hashes", "sha256", &h) != 0 ||
	    v < 1) {
		buf_printf(err, "no valid meta entry for %s", file);
		return -1;
	}
	if ((l != -1 && l < 0) || (h != NULL && unhex(h, sha, 32) == -1)) {
		buf_printf(err, "meta entry for %s: bad length or sha256",
		           file);
		return -1;
	}
	*version = v;
	*length = l;
	if (h == NULL)
		memset(sha, 0, 32);
	return h != NULL ? 1 : 0;
}

/* The common part of timestamp, snapshot and targets. */
static int
role_verify(struct tuf_trust *t, int role, const uint8_t *data, size_t len,
            json_t **doc, json_t **sig, long long *ver, long long *exp,
            struct buf *err)
{
	json_t *sigs;
	char what[40];
	int rc;

	if (t->meta[TUF_ROOT].signed_ == NULL) {
		buf_puts(err, "no trusted root");
		return TUF_E_ORDER;
	}
	if ((rc = envelope(data, len, role, doc, sig, &sigs, ver, exp, err)) !=
	    TUF_OK)
		return rc;
	snprintf(what, sizeof(what), "%s metadata", role_names[role]);
	if ((rc = check_sigs(*sig, sigs, t->keys, t->nkeys, &t->roles[role],
	                     what, err)) != TUF_OK) {
		json_decref(*doc);
		*doc = NULL;
	}
	return rc;
}

int
tuf_update_timestamp(struct tuf_trust *t, const uint8_t *data, size_t len,
                     long long now, struct buf *err)
{
	struct tuf_meta *cur = &t->meta[TUF_TIMESTAMP], m;
	json_t *doc, *sig;
	long long ver, exp, sv, sl;
	uint8_t sh[32];
	int rc;

	if ((rc = role_verify(t, TUF_TIMESTAMP, data, len, &doc, &sig, &ver,
	                      &exp, err)) != TUF_OK)
		return rc;
	if (meta_ref(sig, "snapshot.json", &sv, &sl, sh, err) != 1 || sl < 0) {
		buf_puts(err, " (timestamp must give the snapshot's version, "
		              "length and sha256)");
		rc = TUF_E_FORMAT;
		goto fail;
	}
	if (cur->signed_ != NULL && ver < cur->version) {
		buf_printf(err,
		           "timestamp metadata version %lld is older than the "
		           "trusted version %lld (rollback)",
		           ver, cur->version);
		rc = TUF_E_ROLLBACK;
		goto fail;
	}
	if (t->meta[TUF_SNAPSHOT].signed_ != NULL &&
	    sv < t->meta[TUF_SNAPSHOT].version) {
		buf_printf(err,
		           "timestamp names snapshot version %lld, older than "
		           "the trusted version %lld (rollback)",
		           sv, t->meta[TUF_SNAPSHOT].version);
		rc = TUF_E_ROLLBACK;
		goto fail;
	}
	memset(&m, 0, sizeof(m));
	m.version = ver;
	m.expires = exp;
	if ((rc = fresh(&m, TUF_TIMESTAMP, now, err)) != TUF_OK)
		goto fail;
	meta_set(cur, doc, sig, ver, exp, data, len);
	return TUF_OK;
fail:
	json_decref(doc);
	return rc;
}

/* Checks data against what parent's meta[file] declares. */
static int
check_ref(const char *file, long long v, long long declared_v, long long dl,
          const uint8_t dh[32], int has_hash, const uint8_t *data, size_t len,
          struct buf *err)
{
	uint8_t h[32];

	if (v != declared_v) {
		buf_printf(err,
		           "%s is version %lld but the trusted metadata names "
		           "version %lld (metadata from different snapshots)",
		           file, v, declared_v);
		return TUF_E_MIXMATCH;
	}
	if (dl >= 0 && (long long)len != dl) {
		buf_printf(err, "%s is %zu bytes, %lld declared", file, len,
		           dl);
		return (long long)len > dl ? TUF_E_TOOBIG : TUF_E_LENGTH;
	}
	if (has_hash) {
		digest(data, len, h);
		if (CRYPTO_memcmp(h, dh, 32) != 0) {
			buf_printf(err,
			           "%s does not have the SHA-256 the trusted "
			           "metadata declares",
			           file);
			return TUF_E_HASH;
		}
	}
	return TUF_OK;
}

/* Cheap length check before parsing: more than declared is refused at
 * once (endless data). */
static int
pre_length(const char *file, long long dl, size_t len, struct buf *err)
{
	if (dl >= 0 && (long long)len > dl) {
		buf_printf(err,
		           "%s is %zu bytes, more than the %lld declared "
		           "(endless data)",
		           file, len, dl);
		return TUF_E_TOOBIG;
	}
	return TUF_OK;
}

int
tuf_update_snapshot(struct tuf_trust *t, const uint8_t *data, size_t len,
                    long long now, struct buf *err)
{
	struct tuf_meta *cur = &t->meta[TUF_SNAPSHOT], m;
	json_t *doc, *sig, *jm, *e;
	long long ver, exp, dv, dl, tv, tl;
	uint8_t dh[32], th[32];
	const char *file;
	int rc, hh;

	if (t->meta[TUF_TIMESTAMP].signed_ == NULL) {
		buf_puts(err, "snapshot before a trusted timestamp");
		return TUF_E_ORDER;
	}
	hh = meta_ref(t->meta[TUF_TIMESTAMP].signed_, "snapshot.json", &dv, &dl,
	              dh, err);
	if ((rc = pre_length("snapshot.json", dl, len, err)) != TUF_OK)
		return rc;
	if ((rc = role_verify(t, TUF_SNAPSHOT, data, len, &doc, &sig, &ver,
	                      &exp, err)) != TUF_OK)
		return rc;
	if ((rc = check_ref("snapshot.json", ver, dv, dl, dh, hh, data, len,
	                    err)) != TUF_OK)
		goto fail;
	jm = json_object_get(sig, "meta");
	if (!json_is_object(jm) ||
	    meta_ref(sig, "targets.json", &tv, &tl, th, err) == -1) {
		buf_puts(err, " (snapshot must name targets.json)");
		rc = TUF_E_FORMAT;
		goto fail;
	}
	/* Nothing the trusted snapshot listed may vanish or go back. */
	if (cur->signed_ != NULL) {
		json_object_foreach(json_object_get(cur->signed_, "meta"), file,
		                    e)
		{
			json_t *n = json_object_get(jm, file);
			long long ov = json_integer_value(
			              json_object_get(e, "version")),
			          nv = json_integer_value(
			              json_object_get(n, "version"));

			if (n == NULL || nv < ov) {
				buf_printf(err,
				           "snapshot: %s goes from version "
				           "%lld to %lld (rollback)",
				           file, ov, n == NULL ? 0 : nv);
				rc = TUF_E_ROLLBACK;
				goto fail;
			}
		}
		if (ver < cur->version) {
			buf_printf(err,
			           "snapshot metadata version %lld is older "
			           "than the trusted version %lld (rollback)",
			           ver, cur->version);
			rc = TUF_E_ROLLBACK;
			goto fail;
		}
	}
	memset(&m, 0, sizeof(m));
	m.version = ver;
	m.expires = exp;
	if ((rc = fresh(&m, TUF_SNAPSHOT, now, err)) != TUF_OK)
		goto fail;
	meta_set(cur, doc, sig, ver, exp, data, len);
	return TUF_OK;
fail:
	json_decref(doc);
	return rc;
}

/* One target entry: name, length, sha256, optional custom strings. */
static int
target_parse(const char *name, const json_t *e, struct tuf_target *out,
             struct buf *err)
{
	json_int_t l;
	const char *h;
	json_t *custom = NULL;

	memset(out, 0, sizeof(*out));
	if (!tuf_name_ok(name, strlen(name))) {
		buf_printf(err,
		           "target name \"%.*s\" is refused (absolute, "
		           "\"..\", \".\", an empty part, or a character "
		           "outside [A-Za-z0-9._-/])",
		           TUF_MAX_NAME, name);
		return TUF_E_NAME;
	}
	if (json_unpack((json_t *)e, "{s:I, s:{s:s}, s?o}", "length", &l,
	                "hashes", "sha256", &h, "custom", &custom) != 0 ||
	    l < 0 || unhex(h, out->sha256, 32) == -1 ||
	    (custom != NULL && !json_is_object(custom))) {
		buf_printf(err,
		           "target %s: needs length and hashes.sha256 (and "
		           "custom, if any, an object)",
		           name);
		return TUF_E_FORMAT;
	}
	out->name = name;
	out->length = l;
	out->kind = json_string_value(json_object_get(custom, "kind"));
	out->platform = json_string_value(json_object_get(custom, "platform"));
	out->version = json_string_value(json_object_get(custom, "version"));
	return TUF_OK;
}

int
tuf_update_targets(struct tuf_trust *t, const uint8_t *data, size_t len,
                   long long now, struct buf *err)
{
	struct tuf_meta *cur = &t->meta[TUF_TARGETS], m;
	struct tuf_target tg;
	json_t *doc, *sig, *jt, *e;
	long long ver, exp, dv, dl;
	uint8_t dh[32];
	const char *name;
	int rc, hh;

	if (t->meta[TUF_SNAPSHOT].signed_ == NULL) {
		buf_puts(err, "targets before a trusted snapshot");
		return TUF_E_ORDER;
	}
	hh = meta_ref(t->meta[TUF_SNAPSHOT].signed_, "targets.json", &dv, &dl,
	              dh, err);
	if ((rc = pre_length("targets.json", dl, len, err)) != TUF_OK)
		return rc;
	if ((rc = role_verify(t, TUF_TARGETS, data, len, &doc, &sig, &ver, &exp,
	                      err)) != TUF_OK)
		return rc;
	if (cur->signed_ != NULL && ver < cur->version) {
		buf_printf(err,
		           "targets metadata version %lld is older than the "
		           "trusted version %lld (rollback)",
		           ver, cur->version);
		rc = TUF_E_ROLLBACK;
		goto fail;
	}
	if ((rc = check_ref("targets.json", ver, dv, dl, dh, hh, data, len,
	                    err)) != TUF_OK)
		goto fail;
	jt = json_object_get(sig, "targets");
	if (!json_is_object(jt) || json_object_size(jt) > TUF_MAX_TARGETS_N) {
		buf_printf(err,
		           "targets metadata: \"targets\" must be an "
		           "object of at most %d entries",
		           TUF_MAX_TARGETS_N);
		rc = TUF_E_FORMAT;
		goto fail;
	}
	json_object_foreach(jt, name, e)
	{
		if ((rc = target_parse(name, e, &tg, err)) != TUF_OK)
			goto fail;
	}
	memset(&m, 0, sizeof(m));
	m.version = ver;
	m.expires = exp;
	if ((rc = fresh(&m, TUF_TARGETS, now, err)) != TUF_OK)
		goto fail;
	meta_set(cur, doc, sig, ver, exp, data, len);
	return TUF_OK;
fail:
	json_decref(doc);
	return rc;
}

int
tuf_target_get(struct tuf_trust *t, const char *name, struct tuf_target *out,
               struct buf *err)
{
	json_t *jt, *e;
	const char *k;

	if (t->meta[TUF_TARGETS].signed_ == NULL) {
		buf_puts(err, "no trusted targets metadata");
		return TUF_E_ORDER;
	}
	jt = json_object_get(t->meta[TUF_TARGETS].signed_, "targets");
	/* The key stored in the object, so out->name outlives name. */
	json_object_foreach(jt, k, e)
	{
		if (strcmp(k, name) == 0)
			return target_parse(k, e, out, err);
	}
	buf_printf(err, "no target named %.*s", TUF_MAX_NAME, name);
	return TUF_E_NOTFOUND;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void
tuf_target_each(struct tuf_trust *t,
                void (*fn)(const struct tuf_target *tg, void *arg), void *arg)
{
	json_t *jt = json_object_get(t->meta[TUF_TARGETS].signed_, "targets");
	const char **names, *k;
	struct tuf_target tg;
	struct buf err;
	size_t n = 0;
	json_t *e;

	if (jt == NULL ||
	    (names = calloc(json_object_size(jt) + 1, sizeof(*names))) == NULL)
		return;
	json_object_foreach(jt, k, e)
	{
		names[n++] = k;
	}
	qsort(names, n, sizeof(*names), cmp_str);
	buf_init(&err, 1024);
	for (size_t i = 0; i < n; i++)
		if (target_parse(names[i], json_object_get(jt, names[i]), &tg,
		                 &err) == TUF_OK)
			fn(&tg, arg);
	buf_free(&err);
	free(names);
}

/* ---- artifacts ---- */

int
tuf_reader_init(struct tuf_reader *r, const struct tuf_target *tg)
{
	memset(r, 0, sizeof(*r));
	if ((r->md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(r->md, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(r->md);
		r->md = NULL;
		return -1;
	}
	r->want = tg->length;
	memcpy(r->sha256, tg->sha256, 32);
	snprintf(r->name, sizeof(r->name), "%s", tg->name);
	return 0;
}

int
tuf_reader_feed(struct tuf_reader *r, const void *p, size_t n, struct buf *err)
{
	if ((unsigned long long)n > (unsigned long long)(r->want - r->got)) {
		buf_printf(err,
		           "artifact %s: more than the %lld bytes declared "
		           "(endless data)",
		           r->name, r->want);
		return TUF_E_TOOBIG;
	}
	EVP_DigestUpdate(r->md, p, n);
	r->got += (long long)n;
	return TUF_OK;
}

int
tuf_reader_finish(struct tuf_reader *r, struct buf *err)
{
	uint8_t h[32];
	unsigned int hl;

	if (r->got != r->want) {
		buf_printf(err, "artifact %s: %lld bytes of the %lld declared",
		           r->name, r->got, r->want);
		return TUF_E_LENGTH;
	}
	EVP_DigestFinal_ex(r->md, h, &hl);
	if (CRYPTO_memcmp(h, r->sha256, 32) != 0) {
		buf_printf(err,
		           "artifact %s: SHA-256 differs from the signed "
		           "one (a forged or damaged artifact)",
		           r->name);
		return TUF_E_HASH;
	}
	return TUF_OK;
}

void
tuf_reader_free(struct tuf_reader *r)
{
	EVP_MD_CTX_free(r->md);
	r->md = NULL;
}

/* ---- names ---- */

int
tuf_name_ok(const char *name, size_t len)
{
	size_t part = 0;

	if (name == NULL || len == 0 || len > TUF_MAX_NAME ||
	    memchr(name, '\0', len) != NULL)
		return 0;
	for (size_t i = 0; i <= len; i++) {
		char c = i < len ? name[i] : '/';

		if (c == '/') {
			/* Empty (leading '/', "//", trailing '/'), or a
			 * part starting with '.' ("." and ".." among
			 * them) or '-' (read as an option). */
			if (part == 0)
				return 0;
			part = 0;
			continue;
		}
		if (part == 0 && (c == '.' || c == '-'))
			return 0;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '-'))
			return 0;
		part++;
	}
	return 1;
}

/* ---- signing ---- */

json_t *
tuf_sign(json_t *signed_, EVP_PKEY *const *keys, size_t n, struct buf *err)
{
	char *canon = tuf_canonical(signed_);
	json_t *sigs = json_array(), *env = NULL;

	if (canon == NULL || sigs == NULL) {
		buf_puts(err, "sign: the metadata has no canonical form");
		goto fail;
	}
	for (size_t i = 0; i < n; i++) {
		uint8_t sig[64];
		size_t sl = sizeof(sig);
		char id[65], hex[129];
		EVP_MD_CTX *md = EVP_MD_CTX_new();
		int ok;

		if (tuf_keyid(keys[i], id) == -1) {
			EVP_MD_CTX_free(md);
			buf_puts(err, "sign: not an Ed25519 key");
			goto fail;
		}
		ok = md != NULL &&
		     EVP_DigestSignInit(md, NULL, NULL, NULL, keys[i]) == 1 &&
		     EVP_DigestSign(md, sig, &sl, (const uint8_t *)canon,
		                    strlen(canon)) == 1 &&
		     sl == 64;
		EVP_MD_CTX_free(md);
		if (!ok) {
			ERR_clear_error();
			buf_puts(err, "sign: Ed25519 signing failed (is it a "
			              "private key?)");
			goto fail;
		}
		hex_encode(sig, 64, hex);
		json_array_append_new(
		    sigs, json_pack("{s:s, s:s}", "keyid", id, "sig", hex));
	}
	env = json_pack("{s:O, s:O}", "signed", signed_, "signatures", sigs);
fail:
	json_decref(sigs);
	free(canon);
	return env;
}
