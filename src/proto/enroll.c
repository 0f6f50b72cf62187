/*
 * enroll: parser of the bodies of POST /v1/enroll and POST /v1/heartbeat
 * (docs/protocol.md). The enroll body arrives before the peer is
 * authenticated, so everything here treats the input as hostile: bytes in,
 * a struct whose every string has been checked (length, no control
 * characters, the right shape for addresses and ids) out, or a one-line
 * error naming the field, which the gateway returns as a 400 bad_request.
 * No I/O and no logging: the caller decides what to log.
 *
 * jansson does the JSON (with duplicate keys rejected, so "csr" cannot be
 * smuggled past a check by sending it twice) and guarantees valid UTF-8
 * without NUL bytes; the checks beyond that are ours.
 */
#include <arpa/inet.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "buf.h"
#include "enroll.h"
#include "jsonarena.h"

/* Longest piece of a peer-chosen name repeated in an error message. */
#define ERR_NAME_MAX 64

/* What a string field may hold beyond printable text. */
enum str_kind {
	STR_TEXT,       /* any UTF-8 without control characters */
	STR_PEM,        /* printable ASCII plus line breaks */
	STR_TOKEN,      /* printable ASCII without spaces */
	STR_MACHINE_ID, /* 32-64 hex digits or a UUID, lowercased */
	STR_IP,         /* IPv4 or IPv6 (with an optional %zone) */
	STR_MAC,        /* aa:bb:cc:dd:ee:ff, lowercased */
};

struct fact_field {
	const char *name;
	size_t offset; /* of the char * in struct host_facts */
	int required;
	enum str_kind kind;
};

static const struct fact_field fact_fields[] = {
    {"hostname", offsetof(struct host_facts, hostname), 1, STR_TEXT},
    {"fqdn", offsetof(struct host_facts, fqdn), 0, STR_TEXT},
    {"os", offsetof(struct host_facts, os), 0, STR_TEXT},
    {"kernel", offsetof(struct host_facts, kernel), 0, STR_TEXT},
    {"arch", offsetof(struct host_facts, arch), 0, STR_TEXT},
    {"machine_id", offsetof(struct host_facts, machine_id), 1, STR_MACHINE_ID},
    {"agent_version", offsetof(struct host_facts, agent_version), 0, STR_TEXT},
};
#define NFACT_FIELDS (sizeof(fact_fields) / sizeof(fact_fields[0]))

/*
 * Copies a peer-chosen name (an unknown key) into out for an error
 * message: bounded, and with anything but printable ASCII replaced, so the
 * message stays one harmless line wherever it is logged or echoed.
 */
static const char *
err_name(const char *s, char *out, size_t outlen)
{
	size_t i;

	for (i = 0; s[i] != '\0' && i + 1 < outlen && i < ERR_NAME_MAX; i++)
		out[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	out[i] = '\0';
	if (s[i] != '\0' && i >= 3)
		memcpy(out + i - 3, "...", 3);
	return out;
}

static int
is_hex(int c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
	       (c >= 'A' && c <= 'F');
}

static int
to_lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* 32-64 hex digits (systemd's machine-id is 32) or a UUID. */
static int
valid_machine_id(const char *s, size_t len)
{
	size_t i;

	if (len == 36) {
		for (i = 0; i < len; i++) {
			if (i == 8 || i == 13 || i == 18 || i == 23) {
				if (s[i] != '-')
					return 0;
			} else if (!is_hex((unsigned char)s[i]))
				return 0;
		}
		return 1;
	}
	if (len < 32 || len > 64)
		return 0;
	for (i = 0; i < len; i++)
		if (!is_hex((unsigned char)s[i]))
			return 0;
	return 1;
}

static int
valid_mac(const char *s, size_t len)
{
	size_t i;

	if (len != 17)
		return 0;
	for (i = 0; i < len; i++) {
		if (i % 3 == 2) {
			if (s[i] != ':')
				return 0;
		} else if (!is_hex((unsigned char)s[i]))
			return 0;
	}
	return 1;
}

/*
 * inet_pton for either family. Link-local IPv6 addresses are commonly
 * reported with their interface ("fe80::1%eth0"), so a zone made of
 * interface-name characters is accepted after an IPv6 address.
 */
static int
valid_ip(const char *s, size_t len)
{
	unsigned char addr[sizeof(struct in6_addr)];
	char tmp[INET6_ADDRSTRLEN + 1];
	const char *pct;
	size_t i, alen;

	if (inet_pton(AF_INET, s, addr) == 1 ||
	    inet_pton(AF_INET6, s, addr) == 1)
		return 1;
	if ((pct = memchr(s, '%', len)) == NULL)
		return 0;
	alen = (size_t)(pct - s);
	/* 15 is IFNAMSIZ - 1, the longest interface name Linux allows. */
	if (alen == 0 || alen >= sizeof(tmp) || len - alen - 1 == 0 ||
	    len - alen - 1 > 15)
		return 0;
	for (i = alen + 1; i < len; i++) {
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
		      s[i] == '-' || s[i] == '.'))
			return 0;
	}
	memcpy(tmp, s, alen);
	tmp[alen] = '\0';
	return inet_pton(AF_INET6, tmp, addr) == 1;
}

/*
 * Rejects control characters: C0 and DEL anywhere (except line breaks in
 * PEM), and C1 (U+0080..U+009F, encoded C2 80..C2 9F) in text. Returns the
 * offending byte offset or -1 when the string is clean.
 */
static long
find_control(const char *s, size_t len, enum str_kind kind)
{
	size_t i;
	unsigned char c;

	for (i = 0; i < len; i++) {
		c = (unsigned char)s[i];
		if (kind == STR_PEM && (c == '\n' || c == '\r'))
			continue;
		if (c < 0x20 || c == 0x7f)
			return (long)i;
		if (kind != STR_TEXT && c >= 0x80)
			return (long)i; /* ASCII-only kinds */
		if (kind == STR_TOKEN && c == ' ')
			return (long)i;
		if (c == 0xc2 && i + 1 < len &&
		    (unsigned char)s[i + 1] >= 0x80 &&
		    (unsigned char)s[i + 1] <= 0x9f)
			return (long)i;
	}
	return -1;
}

/*
 * Checks one string value against its kind and limit and stores a malloc'd
 * copy in *out. field is the full path for messages ("facts.ips[2]").
 */
static int
take_string(json_t *v, const char *field, enum str_kind kind, size_t max,
            int required_nonempty, struct buf *err, char **out)
{
	const char *s;
	char *copy;
	size_t len, i;

	if (!json_is_string(v)) {
		buf_printf(err, "%s: must be a string", field);
		return -1;
	}
	s = json_string_value(v);
	len = json_string_length(v);
	if (len == 0 && required_nonempty) {
		buf_printf(err, "%s: must not be empty", field);
		return -1;
	}
	if (len > max) {
		buf_printf(err, "%s: too long (%zu bytes, at most %zu)", field,
		           len, max);
		return -1;
	}
	/* jansson rejects \u0000 unless asked not to; be sure anyway, since
	 * everything below relies on len == strlen. */
	if (memchr(s, '\0', len) != NULL || find_control(s, len, kind) != -1) {
		buf_printf(err, "%s: contains control characters%s", field,
		           kind == STR_TEXT ? "" : " or non-ASCII bytes");
		return -1;
	}
	switch (kind) {
	case STR_MACHINE_ID:
		if (!valid_machine_id(s, len)) {
			buf_printf(err,
			           "%s: must be 32-64 hex digits or a UUID",
			           field);
			return -1;
		}
		break;
	case STR_IP:
		if (!valid_ip(s, len)) {
			buf_printf(err, "%s: not an IP address", field);
			return -1;
		}
		break;
	case STR_MAC:
		if (!valid_mac(s, len)) {
			buf_printf(err,
			           "%s: not a MAC address (aa:bb:cc:dd:ee:ff)",
			           field);
			return -1;
		}
		break;
	default:
		break;
	}
	if ((copy = strv_dup(strv_make(s, len))) == NULL) {
		buf_printf(err, "%s: out of memory", field);
		return -1;
	}
	/* Ids are compared (clone detection), so store one spelling. */
	if (kind == STR_MACHINE_ID || kind == STR_MAC)
		for (i = 0; i < len; i++)
			copy[i] = (char)to_lower((unsigned char)copy[i]);
	*out = copy;
	return 0;
}

static int
take_addrs(json_t *arr, const char *field, enum str_kind kind, char **slots,
           size_t *n, struct buf *err)
{
	char name[64];
	json_t *v;
	size_t i;

	if (!json_is_array(arr)) {
		buf_printf(err, "%s: must be an array of strings", field);
		return -1;
	}
	if (json_array_size(arr) > FACT_MAX_ADDRS) {
		buf_printf(err, "%s: too many entries (%zu, at most %d)", field,
		           json_array_size(arr), FACT_MAX_ADDRS);
		return -1;
	}
	json_array_foreach(arr, i, v)
	{
		snprintf(name, sizeof(name), "%s[%zu]", field, i);
		if (take_string(v, name, kind, FACT_MAX_STR, 1, err,
		                &slots[*n]) == -1)
			return -1;
		(*n)++;
	}
	return 0;
}

static int
parse_facts(json_t *obj, struct host_facts *f, struct buf *err)
{
	const char *key;
	char name[ERR_NAME_MAX + 8];
	char path[64];
	json_t *v;
	size_t i;

	if (!json_is_object(obj)) {
		buf_printf(err, "facts: must be an object");
		return -1;
	}
	json_object_foreach(obj, key, v)
	{
		if (strcmp(key, "ips") == 0) {
			if (take_addrs(v, "facts.ips", STR_IP, f->ips, &f->nips,
			               err) == -1)
				return -1;
			continue;
		}
		if (strcmp(key, "macs") == 0) {
			if (take_addrs(v, "facts.macs", STR_MAC, f->macs,
			               &f->nmacs, err) == -1)
				return -1;
			continue;
		}
		for (i = 0; i < NFACT_FIELDS; i++)
			if (strcmp(key, fact_fields[i].name) == 0)
				break;
		if (i == NFACT_FIELDS) {
			buf_printf(err, "facts.%s: unknown field",
			           err_name(key, name, sizeof(name)));
			return -1;
		}
		snprintf(path, sizeof(path), "facts.%s", fact_fields[i].name);
		if (take_string(v, path, fact_fields[i].kind, FACT_MAX_STR,
		                fact_fields[i].required, err,
		                (char **)((char *)f + fact_fields[i].offset)) ==
		    -1)
			return -1;
	}
	for (i = 0; i < NFACT_FIELDS; i++) {
		if (fact_fields[i].required &&
		    *(char **)((char *)f + fact_fields[i].offset) == NULL) {
			buf_printf(err, "facts.%s: missing",
			           fact_fields[i].name);
			return -1;
		}
	}
	return 0;
}

/* Parses the body into an object, with jansson's complaint made safe to
 * echo back. */
static json_t *
load_object(const uint8_t *p, size_t len, struct buf *err)
{
	json_error_t jerr;
	json_t *root;
	char text[sizeof(jerr.text)];

	if (p == NULL && len > 0) {
		buf_printf(err, "body: missing");
		return NULL;
	}
	root = json_loadb(p != NULL ? (const char *)p : "", len,
	                  JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		/* jansson quotes input near the error: sanitize it. */
		buf_printf(err, "body: invalid JSON at byte %d: %s",
		           jerr.position,
		           err_name(jerr.text, text, sizeof(text)));
		return NULL;
	}
	if (!json_is_object(root)) {
		buf_printf(err, "body: must be a JSON object");
		json_decref(root);
		return NULL;
	}
	return root;
}

int
enroll_parse(const uint8_t *p, size_t len, struct enroll_req *out,
             struct buf *err)
{
	json_t *root = NULL, *v, *facts = NULL;
	const char *key;
	char name[ERR_NAME_MAX + 8];

	memset(out, 0, sizeof(*out));
	if ((root = load_object(p, len, err)) == NULL)
		goto fail;
	json_object_foreach(root, key, v)
	{
		if (strcmp(key, "token") == 0) {
			/* null is how an agent says "no token" when it
			 * re-enrolls with its client certificate. */
			if (json_is_null(v))
				continue;
			if (take_string(v, "token", STR_TOKEN, ENROLL_MAX_TOKEN,
			                1, err, &out->token) == -1)
				goto fail;
		} else if (strcmp(key, "csr") == 0) {
			if (take_string(v, "csr", STR_PEM, ENROLL_MAX_CSR, 1,
			                err, &out->csr) == -1)
				goto fail;
		} else if (strcmp(key, "facts") == 0) {
			facts = v;
		} else {
			buf_printf(err, "%s: unknown field",
			           err_name(key, name, sizeof(name)));
			goto fail;
		}
	}
	if (out->csr == NULL) {
		buf_printf(err, "csr: missing");
		goto fail;
	}
	if (facts == NULL) {
		buf_printf(err, "facts: missing");
		goto fail;
	}
	if (parse_facts(facts, &out->facts, err) == -1)
		goto fail;
	json_decref(root);
	return 0;
fail:
	json_decref(root);
	enroll_req_free(out);
	return -1;
}

#define UPD_MAX_RULES 256

static int
take_int(json_t *v, const char *field, struct buf *err)
{
	if (!json_is_integer(v) || json_integer_value(v) < 0) {
		buf_printf(err, "%s: must be an integer >= 0", field);
		return -1;
	}
	return 0;
}

/* The "updates" member of a heartbeat, checked member by member. */
static int
updates_parse(json_t *u, char **out, struct buf *err)
{
	json_t *v, *r, *m;
	const char *key, *rk;
	char *tmp, name[ERR_NAME_MAX + 8], field[64];
	size_t i;

	if (!json_is_object(u)) {
		buf_puts(err, "updates: must be an object");
		return -1;
	}
	json_object_foreach(u, key, v)
	{
		if (strcmp(key, "root") == 0 || strcmp(key, "timestamp") == 0 ||
		    strcmp(key, "snapshot") == 0 ||
		    strcmp(key, "targets") == 0 ||
		    strcmp(key, "checked_at") == 0) {
			snprintf(field, sizeof(field), "updates.%s", key);
			if (take_int(v, field, err) == -1)
				return -1;
		} else if (strcmp(key, "error") == 0 ||
		           strcmp(key, "upgrade_error") == 0) {
			snprintf(field, sizeof(field), "updates.%s", key);
			if (take_string(v, field, STR_TEXT, 512, 0, err,
			                &tmp) == -1)
				return -1;
			free(tmp);
		} else if (strcmp(key, "binary") == 0 ||
		           strcmp(key, "upgrade_failed") == 0 ||
		           strcmp(key, "upgrade_refused") == 0) {
			snprintf(field, sizeof(field), "updates.%s", key);
			if (take_string(v, field, STR_TOKEN, 64, 1, err,
			                &tmp) == -1)
				return -1;
			free(tmp);
		} else if (strcmp(key, "rules") == 0) {
			if (!json_is_array(v) ||
			    json_array_size(v) > UPD_MAX_RULES) {
				buf_printf(err,
				           "updates.rules: must be an array "
				           "of at most %d",
				           UPD_MAX_RULES);
				return -1;
			}
			json_array_foreach(v, i, r)
			{
				if (!json_is_object(r)) {
					buf_printf(
					    err,
					    "updates.rules[%zu]: must be "
					    "an object",
					    i);
					return -1;
				}
				json_object_foreach(r, rk, m)
				{
					size_t max =
					    strcmp(rk, "name") == 0      ? 200
					    : strcmp(rk, "version") == 0 ? 64
					    : strcmp(rk, "sha256") == 0  ? 64
					                                 : 0;

					snprintf(
					    field, sizeof(field),
					    "updates.rules[%zu].%.16s", i,
					    err_name(rk, name, sizeof(name)));
					if (max == 0) {
						buf_printf(err,
						           "%s: unknown field",
						           field);
						return -1;
					}
					if (take_string(m, field, STR_TOKEN,
					                max, 1, err,
					                &tmp) == -1)
						return -1;
					free(tmp);
				}
			}
		} else {
			buf_printf(err, "updates.%s: unknown field",
			           err_name(key, name, sizeof(name)));
			return -1;
		}
	}
	if ((*out = json_dumps(u, JSON_COMPACT | JSON_SORT_KEYS)) == NULL) {
		buf_puts(err, "updates: out of memory");
		return -1;
	}
	return 0;
}

/* A heartbeat's JSON is parsed inside an arena on the stack: a few
 * hundred bytes make dozens of small jansson allocations, all dropped
 * together (jsonarena.h); more than fits goes to malloc as usual. */
#define HB_ARENA 16384

int
heartbeat_parse(const uint8_t *p, size_t len, struct host_facts *out,
                struct buf *err)
{
	json_t *root = NULL, *v, *facts = NULL, *upd = NULL;
	const char *key;
	char name[ERR_NAME_MAX + 8];
	_Alignas(16) char block[HB_ARENA];
	struct json_arena ar;
	json_free_t jfree;
	char *u;

	memset(out, 0, sizeof(*out));
	json_arena_open_buf(&ar, block, sizeof(block));
	if ((root = load_object(p, len, err)) == NULL)
		goto fail;
	json_object_foreach(root, key, v)
	{
		if (strcmp(key, "facts") == 0) {
			facts = v;
		} else if (strcmp(key, "updates") == 0) {
			upd = v;
		} else {
			buf_printf(err, "%s: unknown field",
			           err_name(key, name, sizeof(name)));
			goto fail;
		}
	}
	if (facts == NULL) {
		buf_printf(err, "facts: missing");
		goto fail;
	}
	if (parse_facts(facts, out, err) == -1)
		goto fail;
	if (upd != NULL && updates_parse(upd, &out->updates, err) == -1)
		goto fail;
	if (out->updates != NULL) {
		/* json_dumps' text is the arena's: the caller frees a copy. */
		json_get_alloc_funcs(NULL, &jfree);
		u = strdup(out->updates);
		jfree(out->updates);
		out->updates = u;
		if (u == NULL) {
			buf_puts(err, "updates: out of memory");
			goto fail;
		}
	}
	json_decref(root);
	json_arena_close(&ar);
	return 0;
fail:
	if (out->updates != NULL) {
		json_get_alloc_funcs(NULL, &jfree);
		jfree(out->updates);
		out->updates = NULL;
	}
	json_decref(root);
	json_arena_close(&ar);
	host_facts_free(out);
	return -1;
}

void
host_facts_free(struct host_facts *f)
{
	size_t i;

	if (f == NULL)
		return;
	for (i = 0; i < NFACT_FIELDS; i++)
		free(*(char **)((char *)f + fact_fields[i].offset));
	for (i = 0; i < f->nips && i < FACT_MAX_ADDRS; i++)
		free(f->ips[i]);
	for (i = 0; i < f->nmacs && i < FACT_MAX_ADDRS; i++)
		free(f->macs[i]);
	free(f->updates);
	memset(f, 0, sizeof(*f));
}

void
enroll_req_free(struct enroll_req *r)
{
	if (r == NULL)
		return;
	free(r->token);
	free(r->csr);
	host_facts_free(&r->facts);
	r->token = NULL;
	r->csr = NULL;
}
