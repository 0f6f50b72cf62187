/*
 * intelnorm: the normalisers of threat-intelligence indicators, pure (bytes
 * in, no I/O): file hashes (MD5, SHA-1, SHA-256), IPv4 / IPv6 addresses and
 * CIDR ranges, domain names (lowercase, no trailing dot, IDNA to its ASCII
 * form through libidn2) and URLs (RFC 3986 section 6 normalisation). Every
 * indicator vigil-inteld stores or is asked about goes through here first,
 * so the same thing written two ways is one key. Each function is fuzzed
 * (fuzz/fuzz_intelnorm.c).
 */
#ifndef VIGIL_INTELNORM_H
#define VIGIL_INTELNORM_H

#include <stddef.h>
#include <stdint.h>

enum intel_kind {
	INTEL_ANY = 0, /* detect from the text (intel_parse) */
	INTEL_MD5,
	INTEL_SHA1,
	INTEL_SHA256,
	INTEL_IP,
	INTEL_DOMAIN,
	INTEL_URL,
	INTEL_NKINDS
};

#define INTEL_TEXT_MAX 2048 /* longest normalised text (URLs) */
#define INTEL_KEY_MAX  260  /* longest store key body (a domain + kind) */

/* A normalised indicator. */
struct intel_ind {
	enum intel_kind kind;
	char text[INTEL_TEXT_MAX + 1]; /* canonical text: lowercase hex,
	                                  "10.0.0.0/8", "2001:db8::/32",
	                                  "evil.example", the URL */
	int family;                    /* IP: 4 or 6 */
	uint8_t addr[16];              /* IP: network address (host bits 0) */
	int prefix;                    /* IP: 0..32 or 0..128 */
	uint8_t key[INTEL_KEY_MAX];    /* the store's key body, see intel_key */
	size_t keylen;
};

/* "md5", "sha1", "sha256", "ip", "domain", "url" (and "any"). */
const char *intel_kind_name(enum intel_kind k);
/* Parses a name as above (also "ipv4", "ipv6", "cidr", "hostname",
 * "sha-256" ...); INTEL_NKINDS when unknown. */
enum intel_kind intel_kind_parse(const char *s);

/*
 * Normalises n bytes at s as an indicator of kind k (INTEL_ANY: a hash by
 * its length, an address or range, a URL when it has "scheme://", else a
 * domain). Leading and trailing blanks are ignored. Returns 0 with *out
 * filled, or -1 with a short reason in why (size whyn).
 */
int intel_parse(enum intel_kind k, const char *s, size_t n,
                struct intel_ind *out, char *why, size_t whyn);

/* The single normalisers intel_parse uses; same contract. */
int intel_norm_hash(const char *s, size_t n, enum intel_kind want,
                    struct intel_ind *out, char *why, size_t whyn);
int intel_norm_ip(const char *s, size_t n, struct intel_ind *out, char *why,
                  size_t whyn);
int intel_norm_domain(const char *s, size_t n, struct intel_ind *out, char *why,
                      size_t whyn);
int intel_norm_url(const char *s, size_t n, struct intel_ind *out, char *why,
                   size_t whyn);

/*
 * The store key body of an IP range: 'i', the family (4/6), the 16 address
 * bytes masked to prefix, the prefix. Used for the longest-prefix probes
 * (one per prefix length present). out needs 19 bytes; returns the length.
 */
size_t intel_ip_key(int family, const uint8_t addr[16], int prefix,
                    uint8_t *out);

#endif
