/*
 * keyproc.c: the key process. Forked before any listener exists, it is the
 * only process that ever loads the CA private key. It answers two typed,
 * size-checked requests over its socketpair: PING (startup check that the
 * key loads and matches the CA certificate) and SIGN (a CSR and the agent
 * UUID to certify). The network-facing process never holds the key, so a
 * bug in request parsing cannot leak it.
 *
 * Calls are synchronous: signing one EC P-256 certificate takes well under
 * a millisecond, far less than the network round trip of the request that
 * asked for it.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/pem.h>

#include "center.h"
#include "pki.h"
#include "proc.h"
#include "tls.h"

enum {
	KP_PING = 1,
	KP_SIGN,
	KP_OK = 100,
	KP_ERR,
};

/* SIGN payload: fixed header, then the CSR PEM (not NUL-terminated). */
struct kp_sign {
	int64_t lifetime;
	char cn[40]; /* UUID, NUL-terminated */
};

#define KP_MAX_CSR 8192

struct kp_args {
	const char *ca_crt, *ca_key;
};

static int
kp_reply_err(int fd, uint64_t id, const char *msg)
{
	return proc_send(fd, KP_ERR, id, msg, strlen(msg));
}

static int
kp_valid_cn(const char *cn, size_t max)
{
	size_t i, n = strnlen(cn, max);

	if (n == 0 || n == max)
		return 0;
	for (i = 0; i < n; i++)
		if (!((cn[i] >= '0' && cn[i] <= '9') ||
		      (cn[i] >= 'a' && cn[i] <= 'f') || cn[i] == '-'))
			return 0;
	return 1;
}

static int
kp_sign(int fd, uint64_t id, const uint8_t *p, size_t len, X509 *ca,
        EVP_PKEY *key)
{
	struct kp_sign hdr;
	struct buf err, pem;
	X509_REQ *csr = NULL;
	X509 *cert = NULL;
	int rc;

	if (len < sizeof(hdr) || len - sizeof(hdr) > KP_MAX_CSR)
		return kp_reply_err(fd, id, "malformed signing request");
	memcpy(&hdr, p, sizeof(hdr));
	if (!kp_valid_cn(hdr.cn, sizeof(hdr.cn)) ||
	    hdr.lifetime < CENTER_MIN_CERT_LIFETIME)
		return kp_reply_err(fd, id, "malformed signing request");
	buf_init(&err, 1024);
	buf_init(&pem, 16384);
	csr =
	    tls_csr_from_pem((const char *)p + sizeof(hdr), len - sizeof(hdr));
	if (csr == NULL)
		buf_puts(&err, "CSR is not a PEM certificate request");
	else
		cert = pki_sign_client(ca, key, csr, hdr.cn,
		                       (long long)hdr.lifetime, &err);
	if (cert != NULL && tls_cert_to_pem(cert, &pem) == 0)
		rc = proc_send(fd, KP_OK, id, pem.data, pem.len);
	else
		rc = kp_reply_err(fd, id,
		                  err.len ? buf_cstr(&err) : "signing failed");
	X509_free(cert);
	X509_REQ_free(csr);
	buf_free(&pem);
	buf_free(&err);
	return rc;
}

static int
kp_main(int fd, void *arg)
{
	const struct kp_args *a = arg;
	struct proc_hdr h;
	struct buf msg, err;
	EVP_PKEY *key = NULL;
	X509 *ca = NULL;
	int rc = 1;

	/* The parent handles signals; the key process just follows its
	 * socket and exits on EOF. */
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	buf_init(&msg, KP_MAX_CSR + 1024);
	buf_init(&err, 2048);
	if ((ca = tls_load_cert(a->ca_crt, &err)) == NULL ||
	    (key = tls_load_key(a->ca_key, &err)) == NULL) {
		/* Reported in reply to the parent's PING. */
	} else if (!pki_key_matches(ca, key)) {
		buf_printf(&err, "%s does not belong to %s", a->ca_key,
		           a->ca_crt);
		EVP_PKEY_free(key);
		key = NULL;
	}
	for (;;) {
		int r = proc_recv(fd, &h, &msg,
		                  KP_MAX_CSR + sizeof(struct kp_sign));

		if (r == 1) {
			rc = 0;
			break;
		}
		if (r == -1)
			break;
		if (key == NULL) {
			if (kp_reply_err(fd, h.id, buf_cstr(&err)) == -1)
				break;
			continue;
		}
		switch (h.type) {
		case KP_PING:
			r = proc_send(fd, KP_OK, h.id, "ok", 2);
			break;
		case KP_SIGN:
			r = kp_sign(fd, h.id, msg.data, msg.len, ca, key);
			break;
		default:
			r = kp_reply_err(fd, h.id, "unknown request");
		}
		if (r == -1)
			break;
	}
	EVP_PKEY_free(key);
	X509_free(ca);
	buf_free(&msg);
	buf_free(&err);
	return rc;
}

static int
kp_call(struct center *c, uint32_t type, const void *p, size_t len,
        struct buf *out, struct buf *err)
{
	struct proc_hdr h;
	uint64_t id = ++c->keyseq;

	if (c->keyfd == -1) {
		buf_puts(err, "key process is not running");
		return -1;
	}
	if (proc_send(c->keyfd, type, id, p, len) == -1 ||
	    proc_recv(c->keyfd, &h, out, PROC_MAX_MSG) != 0 || h.id != id) {
		/* A broken channel cannot be resynchronised. */
		log_warnx("keyproc: channel to the key process failed");
		close(c->keyfd);
		c->keyfd = -1;
		buf_puts(err, "key process is not running");
		return -1;
	}
	if (h.type != KP_OK) {
		buf_append(err, out->data, out->len);
		buf_reset(out);
		return -1;
	}
	return 0;
}

int
keyproc_start(struct center *c, struct buf *err)
{
	static struct kp_args args;
	struct buf out;
	int rc;

	args.ca_crt = c->paths.ca_crt;
	args.ca_key = c->paths.ca_key;
	c->keypid = proc_fork(&c->keyfd, kp_main, &args);
	if (c->keypid == -1) {
		buf_printf(err, "cannot fork the key process: %s",
		           strerror(errno));
		return -1;
	}
	buf_init(&out, 1024);
	rc = kp_call(c, KP_PING, NULL, 0, &out, err);
	buf_free(&out);
	if (rc == -1)
		keyproc_stop(c);
	return rc;
}

void
keyproc_stop(struct center *c)
{
	if (c->keyfd != -1) {
		close(c->keyfd);
		c->keyfd = -1;
	}
	if (c->keypid > 0) {
		waitpid(c->keypid, NULL, 0);
		c->keypid = 0;
	}
}

int
keyproc_sign(struct center *c, const char *csr_pem, const char *cn,
             long long lifetime, struct buf *out, struct buf *err)
{
	struct kp_sign hdr;
	struct buf req;
	size_t n = strlen(csr_pem);
	int rc;

	if (n > KP_MAX_CSR || strlen(cn) >= sizeof(hdr.cn)) {
		buf_puts(err, "CSR too large");
		return -1;
	}
	memset(&hdr, 0, sizeof(hdr));
	hdr.lifetime = lifetime;
	memcpy(hdr.cn, cn, strlen(cn));
	buf_init(&req, sizeof(hdr) + n);
	if (buf_append(&req, &hdr, sizeof(hdr)) == -1 ||
	    buf_append(&req, csr_pem, n) == -1) {
		buf_free(&req);
		buf_puts(err, "out of memory");
		return -1;
	}
	rc = kp_call(c, KP_SIGN, req.data, req.len, out, err);
	buf_free(&req);
	return rc;
}
