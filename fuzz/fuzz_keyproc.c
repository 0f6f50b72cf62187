/*
 * Fuzz target for the key process's SIGN request (src/center/keyproc.c):
 * the payload vigild's network process sends, which the key process must
 * treat as hostile (a compromised vigild writes whatever it likes). The
 * key process parses the fixed header and the CSR, applies its own policy
 * (a canonical UUID subject, a printable requester, a lifetime within its
 * cap) and signs. Besides crashes and leaks it checks the promise: a
 * certificate is issued only for a request that satisfies that policy,
 * and each issued certificate is logged first.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "../src/center/keyproc.c"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static X509 *ca;
static EVP_PKEY *cakey;
static struct kp_args args;
static int sp[2] = {-1, -1}, log_fd = -1;
static char log_path[] = "/tmp/vigil-fuzz-keyproc.XXXXXX";

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if ((cakey = pki_genkey()) == NULL ||
	    (ca = pki_make_ca(cakey, "fuzz CA", 30)) == NULL)
		abort();
	args.max_lifetime = 90LL * 86400;
	/* The reply comes back on the socketpair. The log is a real file
	 * (fsync fails on /dev/null, and a certificate that cannot be
	 * logged is not issued), unlinked, emptied at every run. */
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp) == -1 ||
	    (log_fd = mkstemp(log_path)) == -1 || unlink(log_path) == -1)
		abort();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kp_sign hdr;
	struct proc_hdr h;
	struct buf reply;
	X509 *cert;
	char cn[64];

	if (ftruncate(log_fd, 0) == -1)
		abort();
	if (kp_sign(sp[0], 7, data, size, ca, cakey, &args, log_fd) == -1)
		abort();
	buf_init(&reply, 4096);
	if (proc_recv(sp[1], &h, &reply, PROC_MAX_MSG) != 0 || h.id != 7 ||
	    (h.type != KP_OK && h.type != KP_ERR))
		abort(); /* one well-formed answer per request */
	if (h.type == KP_OK) {
		/* Issued: the request met the key process's policy, and the
		 * certificate names the UUID asked for. */
		if (size < sizeof(hdr))
			abort();
		memcpy(&hdr, data, sizeof(hdr));
		if (!str_is_uuid(hdr.cn, sizeof(hdr.cn)) ||
		    hdr.lifetime < CENTER_MIN_CERT_LIFETIME ||
		    hdr.lifetime > args.max_lifetime ||
		    !kp_valid_requester(hdr.requester, sizeof(hdr.requester)))
			abort();
		if ((cert = tls_cert_from_pem((const char *)reply.data,
		                              reply.len)) == NULL)
			abort();
		if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert),
		                              NID_commonName, cn,
		                              sizeof(cn)) < 0 ||
		    strcmp(cn, hdr.cn) != 0 ||
		    pki_verify_signed_by(cert, ca) != 0)
			abort();
		X509_free(cert);
	}
	buf_free(&reply);
	return 0;
}
