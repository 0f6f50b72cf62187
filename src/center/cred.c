/*
 * cred.c: the pure parts of admin authentication, kept free of the store
 * and the HTTP server so unit tests reach them directly: the role ladder,
 * argon2id password hashes (libargon2) and RFC 6238 TOTP codes (liboath).
 * auth.c builds login, sessions and API keys on top.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <argon2.h>
#include <liboath/oath.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "center.h"

static const char *const role_names[] = {
    [ROLE_NONE] = "none",       [ROLE_READONLY] = "readonly",
    [ROLE_ANALYST] = "analyst", [ROLE_OPERATOR] = "operator",
    [ROLE_ADMIN] = "admin",
};

int
role_parse(const char *s)
{
	int i;

	if (s == NULL)
		return ROLE_NONE;
	for (i = ROLE_READONLY; i <= ROLE_ADMIN; i++)
		if (strcmp(s, role_names[i]) == 0)
			return i;
	return ROLE_NONE;
}

const char *
role_name(int role)
{
	if (role == ROLE_PUBLIC)
		return "public";
	if (role < ROLE_NONE || role > ROLE_ADMIN)
		return "none";
	return role_names[role];
}

int
role_needed(const struct http_route *rt)
{
	/* 0, the value of a route written without a role, is admin-only:
	 * a route added without thinking about roles is safe. */
	if (rt->role == ROLE_NONE || rt->role > ROLE_ADMIN ||
	    rt->role < ROLE_PUBLIC)
		return ROLE_ADMIN;
	return rt->role;
}

/*
 * argon2id with t = 2 passes over m = 19 MiB, one lane: the OWASP
 * password-storage recommendation (2023) for argon2id. It costs ~20-40 ms
 * here, paid on the event loop at each login, which the per-source login
 * rate limit keeps bounded; more memory would make a burst of logins a
 * memory problem for the center. A 16-byte random salt; the encoded string
 * carries the parameters, so raising them later keeps old hashes valid.
 */
#define PW_T    2
#define PW_M    19456 /* KiB */
#define PW_P    1
#define PW_SALT 16
#define PW_LEN  32

int
pw_hash(const char *pw, char *out, size_t n)
{
	uint8_t salt[PW_SALT];
	size_t need =
	    argon2_encodedlen(PW_T, PW_M, PW_P, PW_SALT, PW_LEN, Argon2_id);
	int rc;

	if (n < need || RAND_bytes(salt, sizeof(salt)) != 1)
		return -1;
	rc = argon2id_hash_encoded(PW_T, PW_M, PW_P, pw, strlen(pw), salt,
	                           sizeof(salt), PW_LEN, out, n);
	return rc == ARGON2_OK ? 0 : -1;
}

int
pw_verify(const char *encoded, const char *pw)
{
	if (encoded == NULL || strncmp(encoded, "$argon2id$", 10) != 0)
		return 0;
	return argon2id_verify(encoded, pw, strlen(pw)) == ARGON2_OK;
}

int
pw_acceptable(const char *pw, const char **why)
{
	size_t n = strlen(pw);

	if (n < 10) {
		*why = "password: at least 10 characters";
		return 0;
	}
	if (n > 256) {
		*why = "password: at most 256 characters";
		return 0;
	}
	return 1;
}

int
totp_new_secret(char *b32, size_t n)
{
	char raw[TOTP_SECRET_BYTES], *enc = NULL;
	size_t len = 0;
	int rc = -1;

	if (RAND_bytes((unsigned char *)raw, sizeof(raw)) != 1 ||
	    oath_init() != OATH_OK)
		return -1;
	if (oath_base32_encode(raw, sizeof(raw), &enc, &len) == OATH_OK &&
	    len < n) {
		memcpy(b32, enc, len);
		b32[len] = '\0';
		rc = 0;
	}
	OPENSSL_cleanse(raw, sizeof(raw));
	if (enc != NULL) {
		OPENSSL_cleanse(enc, len);
		free(enc);
	}
	return rc;
}

long long
totp_check(const char *b32, const char *code, long long now,
           long long last_step)
{
	char *raw = NULL, want[7];
	size_t rawlen = 0, i, n = strlen(code);
	long long step, found = -1;

	if (n != 6)
		return -1;
	for (i = 0; i < n; i++)
		if (code[i] < '0' || code[i] > '9')
			return -1;
	if (oath_init() != OATH_OK ||
	    oath_base32_decode(b32, strlen(b32), &raw, &rawlen) != OATH_OK)
		return -1;
	/* TOTP_WINDOW steps of 30 s either side absorb clock skew and
	 * typing time. Every step is computed (no early exit). */
	for (step = now / 30 - TOTP_WINDOW; step <= now / 30 + TOTP_WINDOW;
	     step++) {
		if (oath_totp_generate(raw, rawlen, (time_t)(step * 30), 30, 0,
		                       6, want) != OATH_OK)
			break;
		if (CRYPTO_memcmp(want, code, 6) == 0 && found == -1)
			found = step;
	}
	OPENSSL_cleanse(raw, rawlen);
	free(raw);
	OPENSSL_cleanse(want, sizeof(want));
	if (found == -1)
		return -1;
	/* A code of a step already used (or older) is a replay. */
	return found > last_step ? found : -2;
}

int
list_has(const char *list, const char *name)
{
	const char *p = list, *e, *s;
	size_t n = strlen(name);

	while (p != NULL && *p != '\0') {
		e = strchr(p, ';');
		if (e == NULL)
			e = p + strlen(p);
		s = p;
		while (s < e && (*s == ' ' || *s == '\t'))
			s++;
		while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if ((size_t)(e - s) == n && n > 0 &&
		    strncasecmp(s, name, n) == 0)
			return 1;
		p = strchr(p, ';');
		if (p != NULL)
			p++;
	}
	return 0;
}

int
ldap_filter_escape(const char *in, char *out, size_t n)
{
	size_t o = 0;

	for (; *in != '\0'; in++) {
		unsigned char ch = (unsigned char)*in;

		if (ch == '*' || ch == '(' || ch == ')' || ch == '\\' ||
		    ch < 0x20 || ch == 0x7f) {
			if (o + 3 >= n)
				return -1;
			snprintf(out + o, 4, "\\%02x", ch);
			o += 3;
		} else {
			if (o + 1 >= n)
				return -1;
			out[o++] = (char)ch;
		}
	}
	if (o >= n)
		return -1;
	out[o] = '\0';
	return 0;
}

int
ldap_dn_escape(const char *in, char *out, size_t n)
{
	size_t o = 0, i, len = strlen(in);

	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)in[i];
		int esc = strchr(",+\"\\<>;=", ch) != NULL ||
		          (i == 0 && (ch == ' ' || ch == '#')) ||
		          (i == len - 1 && ch == ' ');

		if (ch < 0x20 || ch == 0x7f) {
			if (o + 3 >= n)
				return -1;
			snprintf(out + o, 4, "\\%02x", ch);
			o += 3;
			continue;
		}
		if (o + (esc ? 2 : 1) >= n)
			return -1;
		if (esc)
			out[o++] = '\\';
		out[o++] = (char)ch;
	}
	if (o >= n)
		return -1;
	out[o] = '\0';
	return 0;
}

int
fill_template(const char *tmpl, const char *val, char *out, size_t n)
{
	const char *p = strstr(tmpl, "%s");
	int k;

	/* Exactly one %s and no other '%': the template is never a format
	 * string. */
	if (p == NULL || strchr(p + 2, '%') != NULL ||
	    memchr(tmpl, '%', (size_t)(p - tmpl)) != NULL)
		return -1;
	k = snprintf(out, n, "%.*s%s%s", (int)(p - tmpl), tmpl, val, p + 2);
	return k >= 0 && (size_t)k < n ? 0 : -1;
}
