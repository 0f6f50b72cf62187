/*
 * enroll: parser of the agent's enrollment and heartbeat bodies (untrusted
 * input, no I/O). Bytes in, a checked struct out, or an error message that
 * names the offending field. A fuzz target (fuzz/fuzz_enroll.c).
 */
#ifndef VIGIL_PROTO_ENROLL_H
#define VIGIL_PROTO_ENROLL_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define FACT_MAX_STR     256 /* hostname, os, kernel, ... */
#define FACT_MAX_ADDRS   64  /* ips[], macs[] entries */
#define ENROLL_MAX_CSR   8192
#define ENROLL_MAX_TOKEN 128

struct host_facts {
	char *hostname, *fqdn, *os, *kernel, *arch, *machine_id, *agent_version;
	char *ips[FACT_MAX_ADDRS];
	size_t nips;
	char *macs[FACT_MAX_ADDRS];
	size_t nmacs;
	/* Heartbeat only: the signed updates the agent runs, as checked
	 * compact JSON (updates_parse), or NULL. */
	char *updates;
};

struct enroll_req {
	char *token; /* NULL when absent (re-enrollment with a client cert) */
	char *csr;   /* PEM text */
	struct host_facts facts;
};

/*
 * Parses an enroll body {"token", "csr", "facts": {...}}. Required: csr,
 * facts.hostname, facts.machine_id (32-64 hex chars or a UUID). Unknown
 * fields are rejected; strings must be valid UTF-8 without control
 * characters and within the limits above; ips must parse as IPv4/IPv6,
 * macs as aa:bb:cc:dd:ee:ff. Returns 0, or -1 with a one-line message in err
 * such as "facts.ips[2]: not an IP address".
 */
int enroll_parse(const uint8_t *p, size_t len, struct enroll_req *out,
                 struct buf *err);
/* Parses a heartbeat body {"facts": {...}, "updates": {...}} with the
 * same rules. updates (optional) is {"root", "timestamp", "snapshot",
 * "targets": versions (integers >= 0), "checked_at": time, "error": text
 * up to 512 bytes, "rules": [{"name" (up to 200), "version" (up to 64),
 * "sha256" (64 hex)}], at most 256, "binary", "upgrade_failed" and
 * "upgrade_refused": SHA-256s (up to 64 printable characters),
 * "upgrade_error": text up to
 * 512 bytes}; nothing else. */
int heartbeat_parse(const uint8_t *p, size_t len, struct host_facts *out,
                    struct buf *err);
void enroll_req_free(struct enroll_req *r);
void host_facts_free(struct host_facts *f);

#endif
