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
 * EKU serverAuth. */
X509 *pki_make_server_cert(X509 *ca, EVP_PKEY *cakey, EVP_PKEY *key,
                           const char *fqdn, const char *const *sans,
                           size_t nsans, long long days);

/* Client certificate from a CSR: the CSR's signature is verified and its key
 * must be EC P-256 (else -1 with a message); subject = CN=<cn>, O=Vigil
 * Agent (whatever the CSR asked for); EKU clientAuth; lifetime_secs from
 * now (notBefore 5 minutes back for clock skew). */
X509 *pki_sign_client(X509 *ca, EVP_PKEY *cakey, X509_REQ *csr, const char *cn,
                      long long lifetime_secs, struct buf *err);

/* Checks a CSR without signing: signature valid, key EC P-256. */
int pki_check_csr(X509_REQ *csr, struct buf *err);

/* CSR for key with subject CN = cn. */
X509_REQ *pki_make_csr(EVP_PKEY *key, const char *cn);

/* 1 when cert's public key matches key. */
int pki_key_matches(X509 *cert, EVP_PKEY *key);
/* 0 when cert was signed by ca (signature + issuer name). */
int pki_verify_signed_by(X509 *cert, X509 *ca);

#endif
