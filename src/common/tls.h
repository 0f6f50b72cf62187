/*
 * tls: OpenSSL 3 contexts and file helpers shared by every program.
 * Servers: TLS 1.2 minimum, client certificates none / optional / required
 * against the deployment CA, an optional revocation hook consulted during
 * the handshake. Clients: pinned to one CA file, never the system store.
 * Private keys are refused when group or others can read them.
 */
#ifndef VIGIL_TLS_H
#define VIGIL_TLS_H

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "buf.h"

enum tls_client_auth {
	TLS_CLIENT_NONE = 0,
	TLS_CLIENT_OPTIONAL, /* verified if presented, else anonymous */
	TLS_CLIENT_REQUIRED,
};

/* Return 1 when the (already chain-verified) leaf certificate is revoked. */
typedef int (*tls_revoked_fn)(X509 *leaf, void *arg);

/*
 * Server context from PEM files. ca may be NULL when auth is NONE.
 * revoked/arg may be NULL. Errors (with the file name and what to do) go to
 * err. Returns NULL on failure.
 */
SSL_CTX *tls_server_ctx(const char *cert, const char *key, const char *ca,
                        enum tls_client_auth auth, tls_revoked_fn revoked,
                        void *arg, struct buf *err);
/*
 * Client certificates of the roles in mask only (PKI_ROLE_BIT of enum
 * pki_role, pki.h; the NONE bit admits certificates without a role): a
 * chain-verified leaf of another role, or with a malformed one, fails the
 * handshake with reason "wrong_role", logged with its subject, the peer and
 * what service accepts. Without a call every role is accepted. -1 when ctx
 * is not from tls_server_ctx.
 */
int tls_server_roles(SSL_CTX *ctx, unsigned mask, const char *service);
/*
 * TLS 1.3 resumption by session tickets on a context from tls_server_ctx:
 * keyfile holds the ticket keys (made 0600 when missing, rotated every
 * lifetime seconds, the previous key kept for one more). A resumed session
 * is refused (a full handshake instead) when its client certificate has
 * expired, the revocation hook says it is revoked, or stale (may be NULL)
 * returns 1 for it (a certificate since replaced). -1 with err.
 */
int tls_server_tickets(SSL_CTX *ctx, const char *keyfile, long long lifetime,
                       tls_revoked_fn stale, void *stale_arg, struct buf *err);
/*
 * The same keys in another process (the center's gateway workers, which
 * may not read the key file): tls_server_tickets_export copies the keys
 * of a context set up by tls_server_tickets into out (1 or 2 keys of
 * TLS_TICKET_KEY_LEN bytes, the sealing one first: secrets, never to be
 * logged), rotating them first when they are lifetime old (written to the
 * file, as a handshake there would); *rotated is when the sealing key was
 * made. -1 when ctx has no tickets. tls_server_tickets_set installs such
 * keys on a context from tls_server_ctx (again to replace them: the old
 * ones are wiped); it never rotates them, their owner sends new ones.
 * len 0 turns resumption off. stale as for tls_server_tickets. -1 with err.
 */
#define TLS_TICKET_KEY_LEN  80
#define TLS_TICKET_KEYS_MAX (2 * TLS_TICKET_KEY_LEN)
int tls_server_tickets_export(SSL_CTX *ctx, long long now,
                              unsigned char out[TLS_TICKET_KEYS_MAX],
                              size_t *len, long long *lifetime,
                              long long *rotated);
int tls_server_tickets_set(SSL_CTX *ctx, const unsigned char *keys, size_t len,
                           long long lifetime, tls_revoked_fn stale,
                           void *stale_arg, struct buf *err);
/* Client context trusting only ca; optional client cert + key. */
SSL_CTX *tls_client_ctx(const char *ca, const char *cert, const char *key,
                        struct buf *err);

/* 0 when path is a regular file that only its owner can read or write;
 * -1 with a message naming the file and the chmod that fixes it. */
int tls_check_key_perms(const char *path, struct buf *err);
/* Loading helpers; NULL/-1 with a message in err. tls_load_key checks
 * permissions first. */
EVP_PKEY *tls_load_key(const char *path, struct buf *err);
X509 *tls_load_cert(const char *path, struct buf *err);
STACK_OF(X509) * tls_load_certs(const char *path, struct buf *err);
X509 *tls_cert_from_pem(const char *pem, size_t len);
X509_REQ *tls_csr_from_pem(const char *pem, size_t len);
/* PEM encodings appended to out. */
int tls_cert_to_pem(X509 *x, struct buf *out);
int tls_key_to_pem(EVP_PKEY *k, struct buf *out);
int tls_csr_to_pem(X509_REQ *r, struct buf *out);

/* Writes data to path with mode (0600 for keys) via a temp file + rename,
 * fsync'd. Refuses to follow a symlink at path. */
int tls_write_file(const char *path, const void *data, size_t len, int mode,
                   struct buf *err);
/* Reads a whole file (up to max bytes) into out. */
int tls_read_file(const char *path, size_t max, struct buf *out,
                  struct buf *err);

/* SHA-256 of the DER encoding, as 64 lowercase hex chars + NUL. */
void tls_fingerprint(X509 *x, char out[65]);
/* Normalises a user-given fingerprint (any case, optional ':' separators,
 * optional "sha256:" prefix) to 64 lowercase hex chars; -1 if malformed. */
int tls_parse_fingerprint(const char *in, char out[65]);
/* One-line RFC 2253 name (malloc'd), e.g. "CN=Vigil CA,O=Vigil". */
char *tls_name(const X509_NAME *n);
/* CN of the subject (malloc'd) or NULL. */
char *tls_subject_cn(X509 *x);
/* Serial as uppercase hex (malloc'd). */
char *tls_serial_hex(X509 *x);
/* notAfter as unix time; -1 on error. */
long long tls_not_after(X509 *x);
long long tls_not_before(X509 *x);
/* Readable explanation of an X509_V_ERR_* code, with the usual cause. */
const char *tls_verify_error_text(long code);
/* Appends OpenSSL's error queue to err ("; "-separated) and clears it. */
void tls_errors(struct buf *err);

/* Called (if set) once per failed server-side handshake with a short
 * reason such as "unknown_ca", "revoked", "no_client_cert_required",
 * "certificate_expired", "handshake" (other). For the metrics. */
void tls_set_failure_hook(void (*fn)(const char *reason));

/* True when x's subjectAltName has a DNS name equal to host (case-
 * insensitive, no wildcards) or an IP address equal to host. */
int tls_cert_names_host(X509 *x, const char *host);

#endif
