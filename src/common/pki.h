/*
 * pki: the deployment's certificate authority. ECDSA P-256 keys, a CA,
 * the center's server certificate (FQDN and extra names in subjectAltName),
 * agent client certificates signed from CSRs, and CSR creation for agents.
 * Used offline by `vigilctl pki`, by the center's key process (signing) and
 * by the agent (key + CSR).
 */
#ifndef VIGIL_PKI_H
#define VIGIL_PKI_H

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "buf.h"

/* notBefore is set this far in the past so a certificate is usable at once
 * by a peer whose clock runs a little behind the issuer's; a lifetime of a
 * day or more includes it. */
#define PKI_SKEW_SECS (5 * 60)

/* New ECDSA P-256 key. */
EVP_PKEY *pki_genkey(void);

/* Self-signed CA: CN = cn, O = "Vigil", basicConstraints CA:TRUE
 * pathlen:0, keyUsage keyCertSign,cRLSign. Random 128-bit serial. */
X509 *pki_make_ca(EVP_PKEY *key, const char *cn, long long days);

/* Server certificate for the center: CN = fqdn; SAN = fqdn plus each of
 * sans[] (entries that parse as IPv4/IPv6 become IP SANs, others DNS);
 * role center; EKU serverAuth. */
X509 *pki_make_server_cert(X509 *ca, EVP_PKEY *cakey, EVP_PKEY *key,
                           const char *fqdn, const char *const *sans,
                           size_t nsans, long long days);

/* Client certificate from a CSR: the CSR's signature is verified and its key
 * must be EC P-256 (else -1 with a message); subject = CN=<cn>, O=Vigil
 * Agent (whatever the CSR asked for); role agent; EKU clientAuth;
 * lifetime_secs from
 * now (notBefore 5 minutes back for clock skew). */
X509 *pki_sign_client(X509 *ca, EVP_PKEY *cakey, X509_REQ *csr, const char *cn,
                      long long lifetime_secs, struct buf *err);

/* Checks a CSR without signing: signature valid, key EC P-256. */
int pki_check_csr(X509_REQ *csr, struct buf *err);

/* CSR for key with subject CN = cn. */
X509_REQ *pki_make_csr(EVP_PKEY *key, const char *cn);

/*
 * Roles. Each certificate a deployment issues names the component it was
 * issued to as a URI in its subjectAltName, urn:vigil:role:NAME
 * (docs/pki.md says why a SAN URI and not the subject's OU or a private
 * extension). Exactly one such URI; more, or an unknown name, is BAD.
 */
#define PKI_ROLE_URI "urn:vigil:role:"

enum pki_role {
	PKI_ROLE_BAD = -1, /* a role URI that is unknown or repeated */
	PKI_ROLE_NONE = 0, /* no role URI (certificates made before) */
	PKI_ROLE_CENTER,
	PKI_ROLE_SCAND,
	PKI_ROLE_INTEL,
	PKI_ROLE_UPDATE,
	PKI_ROLE_MASTER,
	PKI_ROLE_COLLECTOR,
	PKI_ROLE_AGENT,
};

/* "center" ... "agent"; NULL for NONE/BAD. */
const char *pki_role_name(int role);
/* The role named s, or PKI_ROLE_BAD. */
int pki_role_from_name(const char *s);
/* The role written into x, PKI_ROLE_NONE without one, PKI_ROLE_BAD when
 * there is not exactly one known role URI (or the SAN does not parse). */
int pki_cert_role(X509 *x);

/* The bit of role r in a mask of accepted roles; PKI_ROLE_BIT(PKI_ROLE_NONE)
 * admits certificates without a role (made before roles existed). */
#define PKI_ROLE_BIT(r) (1u << (unsigned)(r))
/*
 * 0 when x's role is one of mask; else -1 and err says which role x has
 * and which ones service (e.g. "the agent gateway") accepts. A malformed
 * role is never accepted.
 */
int pki_role_allowed(X509 *x, unsigned mask, const char *service,
                     struct buf *err);
/* The same for a service's own certificate file path (-1 with the path in
 * err when it cannot be read either). */
int pki_check_cert_role(const char *path, unsigned mask, const char *service,
                        struct buf *err);

#define PKI_USE_SERVER 1
#define PKI_USE_CLIENT 2

/* A component's certificate: CN = name (when it fits 64 characters), O =
 * Vigil, the role extension, SAN = name plus sans[] (IP or DNS), EKU
 * serverAuth and/or clientAuth as usage says. */
X509 *pki_issue_role(X509 *ca, EVP_PKEY *cakey, EVP_PKEY *key, int role,
                     int usage, const char *name, const char *const *sans,
                     size_t nsans, long long days);

/* 1 when cert's public key matches key. */
int pki_key_matches(X509 *cert, EVP_PKEY *key);
/* 0 when cert was signed by ca (signature + issuer name). */
int pki_verify_signed_by(X509 *cert, X509 *ca);

#endif
