/*
 * tls: OpenSSL 3 contexts and the certificate/key file helpers every Vigil
 * program shares (see tls.h). The server side is where the trust model is
 * enforced: the center's listeners verify agent certificates against the
 * deployment CA, consult the revocation hook from inside the handshake (so a
 * revoked agent never gets an HTTP request parsed), and report why each
 * handshake failed so an operator can tell "wrong CA" from "expired" in the
 * metrics. Clients trust exactly one CA file, never the system store: the
 * deployment CA is private and a public CA must not be able to vouch for a
 * center.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "pki.h"
#include "tls.h"

/* Certificates and CSRs are small; this bounds what a bad path can make us
 * read (a key file pointed at /dev/zero, a huge log given as a cert). */
#define TLS_PEM_MAX (1024 * 1024)

/* Per-context state the verify callback needs; freed with the SSL_CTX. */
struct tls_server_state {
	tls_revoked_fn revoked;
	void *arg;
	/* Session tickets (tls_server_tickets): keys[0] seals new tickets,
	 * keys[1] (when nkeys is 2) still opens the ones sealed before the
	 * last rotation. */
	struct ticket_key {
		unsigned char name[16], aes[32], hmac[32];
	} keys[2]; /* TLS_TICKET_KEY_LEN each */
	int nkeys;
	long long rotated, lifetime;
	char keyfile[4096];   /* "" when the keys came from memory */
	tls_revoked_fn stale; /* a ticket for this leaf is not honoured */
	void *stale_arg;
	unsigned roles;   /* PKI_ROLE_BIT mask accepted; 0 = any */
	char service[64]; /* who refuses, for the log */
};
_Static_assert(sizeof(struct ticket_key) == TLS_TICKET_KEY_LEN,
               "ticket keys cross processes as TLS_TICKET_KEY_LEN bytes");

static void (*failure_hook)(const char *reason);

static pthread_once_t ex_once = PTHREAD_ONCE_INIT;
static int ctx_ex_idx = -1; /* SSL_CTX -> struct tls_server_state */
static int ssl_ex_idx = -1; /* SSL -> const char * failure reason */

/* Marks an SSL whose failure was already reported, so that a handshake is
 * counted once even when several alerts fly. */
static const char reported[] = "reported";

static void
server_state_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
                  long argl, void *argp)
{
	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	/* The ticket keys go with it: never left in freed memory. */
	if (ptr != NULL)
		OPENSSL_cleanse(ptr, sizeof(struct tls_server_state));
	free(ptr);
}

static void
ex_init(void)
{
	ctx_ex_idx =
	    SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, server_state_free);
	ssl_ex_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

void
tls_set_failure_hook(void (*fn)(const char *reason))
{
	failure_hook = fn;
}

void
tls_errors(struct buf *err)
{
	unsigned long e;
	const char *data, *reason;
	int flags, first = 1;
	char line[256];

	if (err == NULL) {
		ERR_clear_error();
		return;
	}
	while ((e = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0) {
		if (first && err->len > 0)
			buf_puts(err, ": ");
		else if (!first)
			buf_puts(err, "; ");
		first = 0;
		/* The bare reason reads better than the packed error code. */
		if ((reason = ERR_reason_error_string(e)) != NULL) {
			buf_puts(err, reason);
		} else {
			ERR_error_string_n(e, line, sizeof(line));
			buf_puts(err, line);
		}
		if ((flags & ERR_TXT_STRING) && data != NULL && *data != '\0')
			buf_printf(err, " (%s)", data);
	}
}

/*
 * Permission check on an open file (fstat), so the file judged is the file
 * read: checking a path and then opening it again would race with a swap.
 */
static int
check_mode(const char *path, const struct stat *st, struct buf *err)
{
	unsigned mode = (unsigned)(st->st_mode & 07777);

	if (!S_ISREG(st->st_mode)) {
		buf_printf(err, "%s: not a regular file", path);
		return -1;
	}
	if ((st->st_mode & 077) == 0)
		return 0;
	buf_printf(
	    err, "%s: %s by group or others (mode %04o); run: chmod 600 %s",
	    path, (st->st_mode & 044) ? "readable" : "writable or executable",
	    mode, path);
	return -1;
}

int
tls_check_key_perms(const char *path, struct buf *err)
{
	struct stat st;

	if (stat(path, &st) == -1) {
		buf_printf(err, "%s: %s", path, strerror(errno));
		return -1;
	}
	return check_mode(path, &st, err);
}

/* Reads up to max bytes of an open descriptor into out. */
static int
read_fd(int fd, const char *path, size_t max, struct buf *out, struct buf *err)
{
	uint8_t chunk[4096];
	size_t total = 0;
	ssize_t n;

	for (;;) {
		n = read(fd, chunk, sizeof(chunk));
		if (n == -1) {
			if (errno == EINTR)
				continue;
			buf_printf(err, "%s: read: %s", path, strerror(errno));
			goto fail;
		}
		if (n == 0)
			break;
		if ((size_t)n > max - total) {
			buf_printf(err, "%s: larger than %zu bytes", path, max);
			goto fail;
		}
		if (buf_append(out, chunk, (size_t)n) == -1) {
			buf_printf(err, "%s: %s", path, strerror(errno));
			goto fail;
		}
		total += (size_t)n;
	}
	explicit_bzero(chunk, sizeof(chunk));
	return 0;
fail:
	/* The chunk may hold part of a private key. */
	explicit_bzero(chunk, sizeof(chunk));
	return -1;
}

int
tls_read_file(const char *path, size_t max, struct buf *out, struct buf *err)
{
	int fd, rc;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) == -1) {
		buf_printf(err, "%s: %s", path, strerror(errno));
		return -1;
	}
	rc = read_fd(fd, path, max, out, err);
	close(fd);
	return rc;
}

/* Never prompt on a terminal for a pass phrase: daemons have none to give. */
static int
no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

static BIO *
mem_bio(const void *p, size_t len)
{
	if (len > INT_MAX)
		return NULL;
	return BIO_new_mem_buf(p, (int)len);
}

EVP_PKEY *
tls_load_key(const char *path, struct buf *err)
{
	struct buf pem;
	struct stat st;
	EVP_PKEY *key = NULL;
	BIO *bio = NULL;
	int fd = -1;

	buf_init(&pem, TLS_PEM_MAX);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) == -1) {
		buf_printf(err, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if (fstat(fd, &st) == -1) {
		buf_printf(err, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if (check_mode(path, &st, err) == -1)
		goto fail;
	if (read_fd(fd, path, TLS_PEM_MAX, &pem, err) == -1)
		goto fail;
	if ((bio = mem_bio(pem.data, pem.len)) == NULL)
		goto fail_ssl;
	key = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
	if (key == NULL) {
		ERR_clear_error();
		buf_printf(
		    err,
		    "%s: no usable PEM private key (not PEM, or encrypted "
		    "with a pass phrase)",
		    path);
		goto fail;
	}
	BIO_free(bio);
	close(fd);
	if (pem.data != NULL)
		explicit_bzero(pem.data, pem.cap);
	buf_free(&pem);
	return key;
fail_ssl:
	buf_printf(err, "%s", path);
	tls_errors(err);
fail:
	BIO_free(bio);
	if (fd != -1)
		close(fd);
	if (pem.data != NULL)
		explicit_bzero(pem.data, pem.cap);
	buf_free(&pem);
	return NULL;
}

STACK_OF(X509) * tls_load_certs(const char *path, struct buf *err)
{
	STACK_OF(X509) *sk = NULL;
	struct buf pem;
	X509 *x = NULL;
	BIO *bio = NULL;
	unsigned long e;

	buf_init(&pem, TLS_PEM_MAX);
	if (tls_read_file(path, TLS_PEM_MAX, &pem, err) == -1)
		goto fail;
	if ((bio = mem_bio(pem.data, pem.len)) == NULL ||
	    (sk = sk_X509_new_null()) == NULL) {
		buf_printf(err, "%s", path);
		tls_errors(err);
		goto fail;
	}
	ERR_clear_error();
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		if (sk_X509_push(sk, x) == 0) {
			X509_free(x);
			buf_printf(err, "%s: out of memory", path);
			goto fail;
		}
	}
	/* The loop ends on "no start line" at the end of the data; anything
	 * else is a damaged certificate. */
	e = ERR_peek_last_error();
	if (ERR_GET_LIB(e) != ERR_LIB_PEM ||
	    ERR_GET_REASON(e) != PEM_R_NO_START_LINE) {
		buf_printf(err, "%s: bad PEM certificate", path);
		tls_errors(err);
		goto fail;
	}
	ERR_clear_error();
	if (sk_X509_num(sk) == 0) {
		buf_printf(err, "%s: no PEM certificate in the file", path);
		goto fail;
	}
	BIO_free(bio);
	buf_free(&pem);
	return sk;
fail:
	sk_X509_pop_free(sk, X509_free);
	BIO_free(bio);
	buf_free(&pem);
	return NULL;
}

X509 *
tls_load_cert(const char *path, struct buf *err)
{
	STACK_OF(X509) * sk;
	X509 *x;

	if ((sk = tls_load_certs(path, err)) == NULL)
		return NULL;
	/* The first certificate is the leaf; any chain after it is ignored. */
	x = sk_X509_shift(sk);
	sk_X509_pop_free(sk, X509_free);
	return x;
}

X509 *
tls_cert_from_pem(const char *pem, size_t len)
{
	X509 *x = NULL;
	BIO *bio;

	if ((bio = mem_bio(pem, len)) != NULL) {
		x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
		BIO_free(bio);
	}
	/* No err buffer to report into: leave the queue clean for the next
	 * SSL_get_error() on this thread. */
	if (x == NULL)
		ERR_clear_error();
	return x;
}

X509_REQ *
tls_csr_from_pem(const char *pem, size_t len)
{
	X509_REQ *r = NULL;
	BIO *bio;

	if ((bio = mem_bio(pem, len)) != NULL) {
		r = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL);
		BIO_free(bio);
	}
	if (r == NULL)
		ERR_clear_error();
	return r;
}

static void
bio_wipe(BIO *bio)
{
	char *p;
	long n;

	if (bio != NULL && (n = BIO_get_mem_data(bio, &p)) > 0)
		explicit_bzero(p, (size_t)n);
}

/* Appends what a memory BIO holds to out. */
static int
bio_to_buf(BIO *bio, struct buf *out)
{
	char *p;
	long n;

	n = BIO_get_mem_data(bio, &p);
	if (n <= 0)
		return -1;
	return buf_append(out, p, (size_t)n);
}

int
tls_cert_to_pem(X509 *x, struct buf *out)
{
	BIO *bio;
	int rc = -1;

	if ((bio = BIO_new(BIO_s_mem())) == NULL)
		goto fail;
	if (PEM_write_bio_X509(bio, x) != 1)
		goto fail;
	rc = bio_to_buf(bio, out);
fail:
	BIO_free(bio);
	if (rc == -1)
		ERR_clear_error();
	return rc;
}

int
tls_key_to_pem(EVP_PKEY *k, struct buf *out)
{
	BIO *bio;
	int rc = -1;

	if ((bio = BIO_new(BIO_s_mem())) == NULL)
		goto fail;
	/* PKCS#8, unencrypted: the file's mode protects it, not a pass
	 * phrase a daemon would have to store next to it. */
	if (PEM_write_bio_PrivateKey(bio, k, NULL, NULL, 0, NULL, NULL) != 1)
		goto fail;
	rc = bio_to_buf(bio, out);
fail:
	/* A failed or partial write may still hold key bytes. */
	bio_wipe(bio);
	BIO_free(bio);
	if (rc == -1)
		ERR_clear_error();
	return rc;
}

int
tls_csr_to_pem(X509_REQ *r, struct buf *out)
{
	BIO *bio;
	int rc = -1;

	if ((bio = BIO_new(BIO_s_mem())) == NULL)
		goto fail;
	if (PEM_write_bio_X509_REQ(bio, r) != 1)
		goto fail;
	rc = bio_to_buf(bio, out);
fail:
	BIO_free(bio);
	if (rc == -1)
		ERR_clear_error();
	return rc;
}

/* fsync of the directory makes the rename itself durable. */
static int
sync_dir(const char *path)
{
	char dir[PATH_MAX];
	const char *slash;
	size_t n;
	int fd, rc;

	if ((slash = strrchr(path, '/')) == NULL) {
		dir[0] = '.';
		n = 1;
	} else {
		n = slash == path ? 1 : (size_t)(slash - path);
		if (n >= sizeof(dir))
			return -1;
		memcpy(dir, path, n);
	}
	dir[n] = '\0';
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

int
tls_write_file(const char *path, const void *data, size_t len, int mode,
               struct buf *err)
{
	char tmp[PATH_MAX];
	unsigned char rnd[6];
	char hex[13];
	const uint8_t *p = data;
	struct stat st;
	size_t off = 0;
	ssize_t n;
	int fd = -1, tries;

	/* A symlink planted at the destination must not redirect a key. rename
	 * would replace the link rather than follow it, but refusing makes the
	 * surprise visible instead of silently dropping the link. */
	if (lstat(path, &st) == 0) {
		if (S_ISLNK(st.st_mode)) {
			buf_printf(err,
			           "%s: is a symbolic link; refusing to "
			           "write through it",
			           path);
			return -1;
		}
		if (!S_ISREG(st.st_mode)) {
			buf_printf(err, "%s: exists and is not a regular file",
			           path);
			return -1;
		}
	} else if (errno != ENOENT) {
		buf_printf(err, "%s: %s", path, strerror(errno));
		return -1;
	}

	/* The temp file lives in the same directory so rename is atomic, and
	 * is created with its final mode: it never exists with wider access.
	 * O_EXCL refuses a name someone raced us to. */
	for (tries = 0; tries < 8; tries++) {
		if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
			buf_printf(err, "%s: no random bytes", path);
			tls_errors(err);
			return -1;
		}
		for (size_t i = 0; i < sizeof(rnd); i++)
			snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
		if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%s", path,
		                     hex) >= sizeof(tmp)) {
			buf_printf(err, "%s: path too long", path);
			return -1;
		}
		fd = open(tmp,
		          O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		          (mode_t)mode);
		if (fd != -1 || errno != EEXIST)
			break;
	}
	if (fd == -1) {
		buf_printf(err, "%s: %s", tmp, strerror(errno));
		return -1;
	}
	/* The umask may have narrowed the mode; set exactly what was asked
	 * (certificates must stay readable by the daemon's user). */
	if (fchmod(fd, (mode_t)mode) == -1) {
		buf_printf(err, "%s: chmod: %s", tmp, strerror(errno));
		goto fail;
	}
	while (off < len) {
		n = write(fd, p + off, len - off);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			buf_printf(err, "%s: write: %s", tmp, strerror(errno));
			goto fail;
		}
		off += (size_t)n;
	}
	if (fsync(fd) == -1) {
		buf_printf(err, "%s: fsync: %s", tmp, strerror(errno));
		goto fail;
	}
	if (close(fd) == -1) {
		fd = -1;
		buf_printf(err, "%s: close: %s", tmp, strerror(errno));
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) == -1) {
		buf_printf(err, "%s: rename: %s", path, strerror(errno));
		goto fail;
	}
	if (sync_dir(path) == -1) {
		buf_printf(err, "%s: fsync of directory: %s", path,
		           strerror(errno));
		return -1;
	}
	return 0;
fail:
	if (fd != -1)
		close(fd);
	unlink(tmp);
	return -1;
}

void
tls_fingerprint(X509 *x, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	out[0] = '\0';
	if (X509_digest(x, EVP_sha256(), md, &n) != 1 || n != 32) {
		ERR_clear_error();
		return;
	}
	for (unsigned int i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

int
tls_parse_fingerprint(const char *in, char out[65])
{
	static const char *const prefixes[] = {
	    "sha256 fingerprint=", /* openssl x509 -fingerprint -sha256 */
	    "sha256:",
	    "sha256=",
	};
	static const char digits[] = "0123456789abcdef";
	const char *p = in, *end;
	size_t n = 0, len;
	int colons;

	out[0] = '\0';
	while (*p == ' ' || *p == '\t')
		p++;
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		len = strlen(prefixes[i]);
		if (strncasecmp(p, prefixes[i], len) == 0) {
			p += len;
			break;
		}
	}
	end = p + strlen(p);
	while (end > p && (end[-1] == ' ' || end[-1] == '\t' ||
	                   end[-1] == '\n' || end[-1] == '\r'))
		end--;
	/* Separators are all-or-nothing ("AB:CD:..." or "abcd..."), so a
	 * digit dropped in copying cannot be masked by a stray colon. */
	colons = memchr(p, ':', (size_t)(end - p)) != NULL;
	while (p < end) {
		int hi, lo;

		if (n == 64)
			goto fail;
		if ((hi = hex_value(p[0])) == -1 || p + 1 >= end ||
		    (lo = hex_value(p[1])) == -1)
			goto fail;
		out[n++] = digits[hi];
		out[n++] = digits[lo];
		p += 2;
		if (colons && p < end) {
			if (*p != ':')
				goto fail;
			if (++p == end)
				goto fail;
		}
	}
	if (n != 64)
		goto fail;
	out[64] = '\0';
	return 0;
fail:
	out[0] = '\0';
	return -1;
}

char *
tls_name(const X509_NAME *n)
{
	BIO *bio;
	char *p, *s = NULL;
	long len;

	if ((bio = BIO_new(BIO_s_mem())) == NULL)
		goto done;
	/* RFC 2253 order (most specific first), UTF-8 kept as is rather than
	 * escaped byte by byte. */
	if (X509_NAME_print_ex(bio, n, 0,
	                       XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) < 0)
		goto done;
	len = BIO_get_mem_data(bio, &p);
	if (len < 0)
		goto done;
	s = strndup(len > 0 ? p : "", (size_t)len);
done:
	BIO_free(bio);
	ERR_clear_error();
	return s;
}

char *
tls_subject_cn(X509 *x)
{
	const X509_NAME *name = X509_get_subject_name(x);
	const ASN1_STRING *data;
	unsigned char *utf8 = NULL;
	char *s = NULL;
	int idx, len;

	idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
	if (idx < 0)
		return NULL;
	data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
	if ((len = ASN1_STRING_to_UTF8(&utf8, data)) < 0) {
		ERR_clear_error();
		return NULL;
	}
	/* The CN is an agent's identity: a NUL inside it could make two
	 * different certificates look like the same agent to C string code. */
	if (memchr(utf8, '\0', (size_t)len) == NULL)
		s = strndup((char *)utf8, (size_t)len);
	OPENSSL_free(utf8);
	return s;
}

char *
tls_serial_hex(X509 *x)
{
	BIGNUM *bn;
	char *hex, *s = NULL;

	bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	if (bn == NULL)
		goto done;
	if ((hex = BN_bn2hex(bn)) != NULL) {
		s = strdup(hex);
		OPENSSL_free(hex);
	}
	BN_free(bn);
done:
	ERR_clear_error();
	return s;
}

static long long
asn1_time_unix(const ASN1_TIME *t)
{
	struct tm tm;

	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1) {
		ERR_clear_error();
		return -1;
	}
	return (long long)timegm(&tm);
}

long long
tls_not_after(X509 *x)
{
	return asn1_time_unix(X509_get0_notAfter(x));
}

long long
tls_not_before(X509 *x)
{
	return asn1_time_unix(X509_get0_notBefore(x));
}

const char *
tls_verify_error_text(long code)
{
	switch (code) {
	case X509_V_OK:
		return "ok";
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
		return "the certificate was issued by a CA this side does not "
		       "trust (wrong CA file, or the peer belongs to another "
		       "deployment)";
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
		return "the certificate is self-signed and not the trusted CA "
		       "(a test certificate, or the wrong file configured)";
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
		return "the certificate was issued by a CA this side does not "
		       "trust (the peer sent its CA along, but that is not the "
		       "CA configured here: wrong CA file, or the peer belongs "
		       "to another deployment)";
	case X509_V_ERR_CERT_HAS_EXPIRED:
		return "the certificate has expired (renew it, or check this "
		       "machine's clock)";
	case X509_V_ERR_CERT_NOT_YET_VALID:
		return "the certificate is not valid yet (check the clocks: "
		       "this machine or the issuer's is wrong)";
	case X509_V_ERR_CERT_REVOKED:
		return "the certificate has been revoked by an administrator";
	case X509_V_ERR_HOSTNAME_MISMATCH:
		return "the certificate does not name the host connected to "
		       "(connect with a name in its subjectAltName, or reissue "
		       "it with --san)";
	case X509_V_ERR_IP_ADDRESS_MISMATCH:
		return "the certificate does not name the IP address connected "
		       "to (reissue it with --san for that address)";
	case X509_V_ERR_CERT_SIGNATURE_FAILURE:
		return "the certificate's signature does not verify (damaged, "
		       "or signed by a different key with the same CA name)";
	case X509_V_ERR_INVALID_PURPOSE:
		return "the certificate is not meant for this use (a client "
		       "certificate used as a server's, or the reverse)";
	case X509_V_ERR_INVALID_CA:
		return "a certificate in the chain is not allowed to act as a "
		       "CA";
	case X509_V_ERR_CERT_CHAIN_TOO_LONG:
	case X509_V_ERR_PATH_LENGTH_EXCEEDED:
		return "the certificate chain is longer than allowed";
	case X509_V_ERR_ERROR_IN_CERT_NOT_BEFORE_FIELD:
	case X509_V_ERR_ERROR_IN_CERT_NOT_AFTER_FIELD:
		return "the certificate has a malformed validity date";
	case X509_V_ERR_EE_KEY_TOO_SMALL:
	case X509_V_ERR_CA_KEY_TOO_SMALL:
	case X509_V_ERR_CA_MD_TOO_WEAK:
		return "the certificate uses a key or hash too weak for the "
		       "security level";
	default:
		return X509_verify_cert_error_string(code);
	}
}

/* Short metric label for a verification error seen by the server. */
static const char *
verify_reason(int code)
{
	switch (code) {
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
		return "unknown_ca";
	case X509_V_ERR_CERT_HAS_EXPIRED:
		return "certificate_expired";
	case X509_V_ERR_CERT_NOT_YET_VALID:
		return "certificate_not_yet_valid";
	case X509_V_ERR_CERT_REVOKED:
		return "revoked";
	case X509_V_ERR_INVALID_PURPOSE:
		return "wrong_purpose";
	default:
		return "bad_certificate";
	}
}

/*
 * 1 when leaf's role is not one st accepts, logged with the peer, its
 * subject and the roles that are: a deployment certificate of the wrong
 * role is an operator's mistake (or an attempt) that should be found in
 * the log, not guessed from a handshake failure.
 */
static int
refuse_role(SSL *ssl, X509 *leaf, const struct tls_server_state *st)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char addr[INET6_ADDRSTRLEN] = "?", *cn;
	struct buf why;
	int fd = SSL_get_fd(ssl);

	buf_init(&why, 1024);
	if (pki_role_allowed(leaf, st->roles, st->service, &why) == 0) {
		buf_free(&why);
		return 0;
	}
	if (fd >= 0 && getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) {
		if (ss.ss_family == AF_INET)
			inet_ntop(AF_INET,
			          &((struct sockaddr_in *)&ss)->sin_addr, addr,
			          sizeof(addr));
		else if (ss.ss_family == AF_INET6)
			inet_ntop(AF_INET6,
			          &((struct sockaddr_in6 *)&ss)->sin6_addr,
			          addr, sizeof(addr));
	}
	cn = tls_subject_cn(leaf);
	log_warnx("tls: refused the certificate of %s from %s: %s",
	          cn ? cn : "(no CN)", addr, buf_cstr(&why));
	free(cn);
	buf_free(&why);
	return 1;
}

static int
server_verify_cb(int ok, X509_STORE_CTX *sctx)
{
	struct tls_server_state *st;
	SSL *ssl;

	ssl = X509_STORE_CTX_get_ex_data(sctx,
	                                 SSL_get_ex_data_X509_STORE_CTX_idx());
	if (ssl == NULL)
		return ok;
	if (!ok) {
		/* First error wins: it is the cause, later ones are echoes. */
		if (SSL_get_ex_data(ssl, ssl_ex_idx) == NULL)
			SSL_set_ex_data(ssl, ssl_ex_idx,
			                (void *)verify_reason(
			                    X509_STORE_CTX_get_error(sctx)));
		return 0;
	}
	/* Consult revocation only for the leaf, and only once the whole chain
	 * has verified: an unverified certificate's serial means nothing. */
	if (X509_STORE_CTX_get_error_depth(sctx) != 0 ||
	    X509_STORE_CTX_get_error(sctx) != X509_V_OK)
		return ok;
	st = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ctx_ex_idx);
	if (st != NULL && st->roles != 0 &&
	    refuse_role(ssl, X509_STORE_CTX_get_current_cert(sctx), st)) {
		X509_STORE_CTX_set_error(sctx,
		                         X509_V_ERR_APPLICATION_VERIFICATION);
		SSL_set_ex_data(ssl, ssl_ex_idx, (void *)"wrong_role");
		return 0;
	}
	if (st == NULL || st->revoked == NULL)
		return ok;
	if (st->revoked(X509_STORE_CTX_get_current_cert(sctx), st->arg) == 1) {
		X509_STORE_CTX_set_error(sctx, X509_V_ERR_CERT_REVOKED);
		SSL_set_ex_data(ssl, ssl_ex_idx, (void *)"revoked");
		return 0;
	}
	return ok;
}

static void
report_failure(SSL *ssl, const char *reason)
{
	const char *recorded = SSL_get_ex_data(ssl, ssl_ex_idx);

	if (recorded == reported)
		return;
	SSL_set_ex_data(ssl, ssl_ex_idx, (void *)reported);
	if (recorded != NULL)
		reason = recorded;
	if (failure_hook != NULL)
		failure_hook(reason);
}

/*
 * A failed handshake shows as a fatal alert, sent by us (we rejected the
 * peer) or received (the peer rejected us). Handshakes abandoned without an
 * alert (port scans, load balancer TCP checks) are deliberately not counted:
 * they would drown the real failures in the metrics.
 */
static void
server_info_cb(const SSL *cssl, int where, int ret)
{
	SSL *ssl = (SSL *)cssl; /* ex_data setters want a non-const SSL */
	unsigned long e;
	int desc;

	if (!(where & SSL_CB_ALERT) || (ret >> 8) != SSL3_AL_FATAL)
		return;
	if (!SSL_is_server(ssl) || !SSL_in_init(ssl))
		return;
	desc = ret & 0xff;
	if (where & SSL_CB_READ) {
		switch (desc) {
		case SSL_AD_UNKNOWN_CA:
		case SSL_AD_BAD_CERTIFICATE:
		case SSL_AD_CERTIFICATE_EXPIRED:
		case SSL_AD_CERTIFICATE_UNKNOWN:
		case SSL_AD_CERTIFICATE_REVOKED:
			report_failure(ssl, "peer_rejected_certificate");
			break;
		default:
			report_failure(ssl, "peer_alert");
			break;
		}
		return;
	}
	e = ERR_peek_last_error();
	if (desc == SSL_AD_CERTIFICATE_REQUIRED ||
	    (ERR_GET_LIB(e) == ERR_LIB_SSL &&
	     ERR_GET_REASON(e) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE))
		report_failure(ssl, "no_client_cert");
	else if (desc == SSL_AD_PROTOCOL_VERSION)
		report_failure(ssl, "protocol_version");
	else
		report_failure(ssl, "handshake");
}

/* Settings shared by both sides: modern protocol and AEAD-only suites. */
static int
ctx_common(SSL_CTX *ctx, struct buf *err)
{
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1)
		goto fail;
	/* TLS 1.2: forward secrecy and AEAD only. TLS 1.3 suites are all
	 * fine and stay at OpenSSL's defaults. */
	if (SSL_CTX_set_cipher_list(
	        ctx, "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL") != 1)
		goto fail;
	SSL_CTX_set_options(ctx,
	                    SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
	/* An idle connection (an agent's held poll) keeps no record buffers:
	 * OpenSSL frees its 16 KiB-plus read and write buffers whenever they
	 * are empty and takes new ones for the next record (measured in
	 * docs/performance.md, "Memory per held connection"). */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	/* Send the chain the certificate file holds and nothing more.
	 * Otherwise OpenSSL completes the chain from the trusted CAs: an
	 * agent then sends the deployment CA along with its certificate on
	 * every connection, and the gateway parses that copy and keeps it
	 * as long as the connection lives (about 2 KiB per held agent,
	 * docs/performance.md), although it trusts the same CA already. */
	SSL_CTX_set_mode(ctx, SSL_MODE_NO_AUTO_CHAIN);
	return 0;
fail:
	buf_puts(err, "TLS settings");
	tls_errors(err);
	return -1;
}

/* Certificate chain + key, checked to belong together. */
static int
ctx_use_cert_key(SSL_CTX *ctx, const char *cert, const char *key,
                 struct buf *err)
{
	EVP_PKEY *pk = NULL;
	X509 *leaf;

	/* Fail with our own message for missing files rather than OpenSSL's
	 * "system lib". */
	if (access(cert, R_OK) == -1) {
		buf_printf(err, "%s: %s", cert, strerror(errno));
		goto fail;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		buf_printf(err, "%s: cannot use as a certificate chain", cert);
		tls_errors(err);
		goto fail;
	}
	if ((pk = tls_load_key(key, err)) == NULL)
		goto fail;
	leaf = SSL_CTX_get0_certificate(ctx);
	if (leaf == NULL || EVP_PKEY_eq(X509_get0_pubkey(leaf), pk) != 1) {
		ERR_clear_error();
		buf_printf(
		    err,
		    "%s does not match the certificate in %s (a key and a "
		    "certificate from different runs of pki init?)",
		    key, cert);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey(ctx, pk) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		buf_printf(err, "%s: cannot use the key", key);
		tls_errors(err);
		goto fail;
	}
	EVP_PKEY_free(pk);
	return 0;
fail:
	EVP_PKEY_free(pk);
	return -1;
}

SSL_CTX *
tls_server_ctx(const char *cert, const char *key, const char *ca,
               enum tls_client_auth auth, tls_revoked_fn revoked, void *arg,
               struct buf *err)
{
	static const unsigned char sid_ctx[] = "vigil";
	struct tls_server_state *st = NULL;
	STACK_OF(X509_NAME) * names;
	SSL_CTX *ctx = NULL;
	int mode;

	if (pthread_once(&ex_once, ex_init) != 0 || ctx_ex_idx < 0 ||
	    ssl_ex_idx < 0) {
		buf_puts(err, "TLS: cannot allocate ex_data indexes");
		goto fail;
	}
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		buf_puts(err, "TLS server context");
		tls_errors(err);
		goto fail;
	}
	if (ctx_common(ctx, err) == -1)
		goto fail;
	SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
	if (ctx_use_cert_key(ctx, cert, key, err) == -1)
		goto fail;

	if ((st = calloc(1, sizeof(*st))) == NULL) {
		buf_printf(err, "TLS server context: %s", strerror(errno));
		goto fail;
	}
	st->revoked = revoked;
	st->arg = arg;
	if (SSL_CTX_set_ex_data(ctx, ctx_ex_idx, st) != 1) {
		buf_puts(err, "TLS server context");
		tls_errors(err);
		goto fail;
	}
	st = NULL; /* owned by ctx now, freed by server_state_free */
	SSL_CTX_set_info_callback(ctx, server_info_cb);

	/* No resumption unless tls_server_tickets turns it on (a resumed
	 * session skips certificate verification; the ticket callback there
	 * repeats the revocation and expiry checks). Set before any return:
	 * listeners without client certificates too. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	SSL_CTX_set_num_tickets(ctx, 0);
	if (auth == TLS_CLIENT_NONE) {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
		return ctx;
	}
	if (ca == NULL) {
		buf_puts(err, "TLS server: client certificates need a CA file");
		goto fail;
	}
	if (access(ca, R_OK) == -1) {
		buf_printf(err, "%s: %s", ca, strerror(errno));
		goto fail;
	}
	/* Only the deployment CA: the context's store starts empty and the
	 * system's default paths are never loaded. */
	if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
		buf_printf(err, "%s: cannot load as a CA file", ca);
		tls_errors(err);
		goto fail;
	}
	/* Tell clients which CA we accept, so one holding several
	 * certificates picks the right one. */
	if ((names = SSL_load_client_CA_file(ca)) == NULL) {
		buf_printf(err, "%s: no CA certificate in the file", ca);
		tls_errors(err);
		goto fail;
	}
	SSL_CTX_set_client_CA_list(ctx, names);
	/* Required by OpenSSL whenever clients are verified, or a resumed
	 * session fails with "session id context uninitialized". */
	if (SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1) !=
	    1) {
		buf_puts(err, "TLS session id context");
		tls_errors(err);
		goto fail;
	}

	mode = SSL_VERIFY_PEER;
	if (auth == TLS_CLIENT_REQUIRED)
		mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
	SSL_CTX_set_verify(ctx, mode, server_verify_cb);
	/* Agent certificate -> deployment CA: two levels, a little slack. */
	SSL_CTX_set_verify_depth(ctx, 4);
	return ctx;
fail:
	free(st);
	SSL_CTX_free(ctx);
	return NULL;
}

/*
 * Session tickets. A ticket carries the session's secrets and the client's
 * certificate, sealed with the server's ticket key: whoever holds that key
 * can mint a session for any agent, so the key file is as secret as the
 * server key (0600, beside the store). Keys rotate every lifetime; the
 * previous key opens older tickets for one more lifetime, then they need a
 * full handshake. Written whole (temporary file, fsync, rename).
 */
static int
tickets_save(const struct tls_server_state *st, struct buf *err)
{
	char tmp[4200];
	int fd, ok;

	snprintf(tmp, sizeof(tmp), "%s.tmp", st->keyfile);
	(void)unlink(tmp); /* a leftover, or a link someone put there */
	if ((fd =
	         open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	              0600)) == -1) {
		buf_printf(err, "%s: %s", tmp, strerror(errno));
		return -1;
	}
	ok = write(fd, st->keys, sizeof(st->keys[0]) * (size_t)st->nkeys) ==
	         (ssize_t)(sizeof(st->keys[0]) * (size_t)st->nkeys) &&
	     fsync(fd) == 0;
	if (close(fd) == -1 || !ok || rename(tmp, st->keyfile) == -1) {
		buf_printf(err, "%s: %s", st->keyfile, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* A new sealing key; the current one becomes the previous. */
static int
tickets_rotate(struct tls_server_state *st, long long now, struct buf *err)
{
	struct ticket_key k;

	if (RAND_bytes((unsigned char *)&k, sizeof(k)) != 1) {
		buf_puts(err, "session ticket key: no random bytes");
		return -1;
	}
	if (st->nkeys > 0) {
		st->keys[1] = st->keys[0];
		st->nkeys = 2;
	} else
		st->nkeys = 1;
	st->keys[0] = k;
	OPENSSL_cleanse(&k, sizeof(k));
	st->rotated = now;
	return tickets_save(st, err);
}

static int
tickets_load(struct tls_server_state *st, struct buf *err)
{
	struct stat sb;
	ssize_t n;
	int fd;

	if ((fd = open(st->keyfile, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1) {
		if (errno == ENOENT)
			return tickets_rotate(st, (long long)time(NULL), err);
		if (errno == ELOOP)
			buf_printf(err,
			           "%s: a symbolic link; refused (the ticket "
			           "keys must be a file of their own)",
			           st->keyfile);
		else
			buf_printf(err, "%s: %s", st->keyfile, strerror(errno));
		return -1;
	}
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode) ||
	    (sb.st_mode & 077) != 0) {
		close(fd);
		buf_printf(err,
		           "%s: not a regular file readable by its owner "
		           "only (chmod 600 %s, or remove it: a new key is "
		           "made and agents do one full handshake)",
		           st->keyfile, st->keyfile);
		return -1;
	}
	n = read(fd, st->keys, sizeof(st->keys));
	close(fd);
	if (n != (ssize_t)sizeof(st->keys[0]) &&
	    n != (ssize_t)sizeof(st->keys)) {
		buf_printf(err,
		           "%s: not a session ticket key file (%zd bytes); "
		           "remove it and a new one is made",
		           st->keyfile, n);
		return -1;
	}
	st->nkeys = n == (ssize_t)sizeof(st->keys) ? 2 : 1;
	st->rotated = (long long)sb.st_mtime;
	if ((long long)time(NULL) - st->rotated >= st->lifetime)
		return tickets_rotate(st, (long long)time(NULL), err);
	return 0;
}

static int
ticket_mac_init(EVP_MAC_CTX *hctx, const struct ticket_key *k)
{
	OSSL_PARAM params[] = {
	    OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY,
	                                      (void *)k->hmac, sizeof(k->hmac)),
	    OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
	                                     (char *)"SHA256", 0),
	    OSSL_PARAM_construct_end()};

	return EVP_MAC_CTX_set_params(hctx, params) == 1 ? 0 : -1;
}

/* OpenSSL's ticket key callback: 1 sealed/opened, 2 opened with the
 * previous key (send a fresh ticket), 0 unknown key (full handshake),
 * -1 error. */
static int
ticket_key_cb(SSL *ssl, unsigned char name[16], unsigned char *iv,
              EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
	struct tls_server_state *st =
	    SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ctx_ex_idx);
	long long now = (long long)time(NULL);
	struct buf err;
	int i;

	if (st == NULL || st->nkeys == 0)
		return enc ? -1 : 0;
	if (enc) {
		/* Keys from memory (tls_server_tickets_set) are rotated by
		 * their owner, who sends the new ones. */
		if (st->keyfile[0] != '\0' &&
		    now - st->rotated >= st->lifetime) {
			/* Rotated in memory even when the file cannot be
			 * written: a restart then costs one full handshake. */
			buf_init(&err, 256);
			(void)tickets_rotate(st, now, &err);
			buf_free(&err);
		}
		memcpy(name, st->keys[0].name, 16);
		if (RAND_bytes(iv, 16) != 1 ||
		    EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL,
		                       st->keys[0].aes, iv) != 1 ||
		    ticket_mac_init(hctx, &st->keys[0]) == -1)
			return -1;
		return 1;
	}
	for (i = 0; i < st->nkeys; i++)
		if (CRYPTO_memcmp(name, st->keys[i].name, 16) == 0)
			break;
	if (i == st->nkeys)
		return 0;
	if (EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, st->keys[i].aes,
	                       iv) != 1 ||
	    ticket_mac_init(hctx, &st->keys[i]) == -1)
		return -1;
	return i == 0 ? 1 : 2;
}

/* Every resumption is checked like a full handshake's end: a ticket whose
 * client certificate has expired or been revoked since is ignored, and the
 * full handshake that follows refuses the certificate. */
static SSL_TICKET_RETURN
ticket_open_cb(SSL *ssl, SSL_SESSION *ss, const unsigned char *keyname,
               size_t keyname_len, SSL_TICKET_STATUS status, void *arg)
{
	struct tls_server_state *st = arg;
	X509 *peer;

	(void)ssl;
	(void)keyname;
	(void)keyname_len;
	switch (status) {
	case SSL_TICKET_SUCCESS:
	case SSL_TICKET_SUCCESS_RENEW:
		break;
	case SSL_TICKET_EMPTY:
	case SSL_TICKET_NO_DECRYPT:
		return SSL_TICKET_RETURN_IGNORE_RENEW;
	default:
		return SSL_TICKET_RETURN_ABORT;
	}
	if ((peer = SSL_SESSION_get0_peer(ss)) != NULL) {
		if (X509_cmp_current_time(X509_get0_notAfter(peer)) <= 0)
			return SSL_TICKET_RETURN_IGNORE_RENEW;
		if (st->revoked != NULL && st->revoked(peer, st->arg) == 1)
			return SSL_TICKET_RETURN_IGNORE;
		if (st->stale != NULL && st->stale(peer, st->stale_arg) == 1)
			return SSL_TICKET_RETURN_IGNORE_RENEW;
	}
	return status == SSL_TICKET_SUCCESS_RENEW ? SSL_TICKET_RETURN_USE_RENEW
	                                          : SSL_TICKET_RETURN_USE;
}

int
tls_server_roles(SSL_CTX *ctx, unsigned mask, const char *service)
{
	struct tls_server_state *st = SSL_CTX_get_ex_data(ctx, ctx_ex_idx);

	if (st == NULL)
		return -1;
	st->roles = mask;
	snprintf(st->service, sizeof(st->service), "%s", service);
	return 0;
}

/* Resumption on, with st's keys and checks. */
static int
tickets_enable(SSL_CTX *ctx, struct tls_server_state *st, struct buf *err)
{
	SSL_CTX_clear_options(ctx, SSL_OP_NO_TICKET);
	SSL_CTX_set_num_tickets(ctx, 1);
	SSL_CTX_set_timeout(ctx, (long)st->lifetime);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER |
	                                        SSL_SESS_CACHE_NO_INTERNAL);
	if (SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_key_cb) != 1 ||
	    SSL_CTX_set_session_ticket_cb(ctx, NULL, ticket_open_cb, st) != 1) {
		buf_puts(err, "session tickets");
		tls_errors(err);
		return -1;
	}
	return 0;
}

int
tls_server_tickets(SSL_CTX *ctx, const char *keyfile, long long lifetime,
                   tls_revoked_fn stale, void *stale_arg, struct buf *err)
{
	struct tls_server_state *st = SSL_CTX_get_ex_data(ctx, ctx_ex_idx);

	if (st == NULL || lifetime <= 0) {
		buf_puts(err, "session tickets: not a server context");
		return -1;
	}
	snprintf(st->keyfile, sizeof(st->keyfile), "%s", keyfile);
	st->lifetime = lifetime;
	st->stale = stale;
	st->stale_arg = stale_arg;
	if (tickets_load(st, err) == -1)
		return -1;
	return tickets_enable(ctx, st, err);
}

int
tls_server_tickets_export(SSL_CTX *ctx, long long now,
                          unsigned char out[TLS_TICKET_KEYS_MAX], size_t *len,
                          long long *lifetime, long long *rotated)
{
	struct tls_server_state *st = SSL_CTX_get_ex_data(ctx, ctx_ex_idx);
	struct buf err;

	*len = 0;
	if (st == NULL || st->nkeys == 0)
		return -1;
	/* Due: rotated as the next ticket sealed here would rotate them
	 * (ticket_key_cb), written to the file. */
	if (st->keyfile[0] != '\0' && now - st->rotated >= st->lifetime) {
		buf_init(&err, 256);
		(void)tickets_rotate(st, now, &err);
		buf_free(&err);
	}
	*len = sizeof(st->keys[0]) * (size_t)st->nkeys;
	memcpy(out, st->keys, *len);
	*lifetime = st->lifetime;
	*rotated = st->rotated;
	return 0;
}

int
tls_server_tickets_set(SSL_CTX *ctx, const unsigned char *keys, size_t len,
                       long long lifetime, tls_revoked_fn stale,
                       void *stale_arg, struct buf *err)
{
	struct tls_server_state *st = SSL_CTX_get_ex_data(ctx, ctx_ex_idx);

	if (st == NULL) {
		buf_puts(err, "session tickets: not a server context");
		return -1;
	}
	if (len != 0 &&
	    ((len != TLS_TICKET_KEY_LEN && len != 2 * TLS_TICKET_KEY_LEN) ||
	     lifetime <= 0)) {
		buf_printf(err,
		           "session tickets: %zu bytes of keys, lifetime "
		           "%lld: not what tls_server_tickets_export makes",
		           len, lifetime);
		return -1;
	}
	OPENSSL_cleanse(st->keys, sizeof(st->keys));
	st->nkeys = 0;
	st->keyfile[0] = '\0';
	if (len == 0) {
		/* Off: no ticket sealed, none opened (ticket_key_cb). */
		SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
		SSL_CTX_set_num_tickets(ctx, 0);
		return 0;
	}
	memcpy(st->keys, keys, len);
	st->nkeys = (int)(len / TLS_TICKET_KEY_LEN);
	st->lifetime = lifetime;
	st->rotated = (long long)time(NULL);
	st->stale = stale;
	st->stale_arg = stale_arg;
	return tickets_enable(ctx, st, err);
}

SSL_CTX *
tls_client_ctx(const char *ca, const char *cert, const char *key,
               struct buf *err)
{
	SSL_CTX *ctx = NULL;

	if (ca == NULL) {
		buf_puts(err, "TLS client: a CA file is required");
		goto fail;
	}
	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		buf_puts(err, "TLS client context");
		tls_errors(err);
		goto fail;
	}
	if (ctx_common(ctx, err) == -1)
		goto fail;
	if (access(ca, R_OK) == -1) {
		buf_printf(err, "%s: %s", ca, strerror(errno));
		goto fail;
	}
	/* Trust exactly this file. SSL_CTX_set_default_verify_paths is never
	 * called: a public CA must not be able to impersonate the center. */
	if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
		buf_printf(err, "%s: cannot load as a CA file", ca);
		tls_errors(err);
		goto fail;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_verify_depth(ctx, 4);
	if (cert != NULL || key != NULL) {
		if (cert == NULL || key == NULL) {
			buf_puts(err, "TLS client: a client certificate needs "
			              "both the certificate and the key");
			goto fail;
		}
		if (ctx_use_cert_key(ctx, cert, key, err) == -1)
			goto fail;
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

int
tls_cert_names_host(X509 *x, const char *host)
{
	unsigned char addr[16];
	int rc;

	if (host == NULL || *host == '\0')
		return 0;
	if (inet_pton(AF_INET, host, addr) == 1 ||
	    inet_pton(AF_INET6, host, addr) == 1)
		rc = X509_check_ip_asc(x, host, 0);
	else
		/* subjectAltName only: the subject CN is never taken as a
		 * host name (RFC 6125), and wildcards are never issued by
		 * pki init, so none are accepted. */
		rc = X509_check_host(x, host, strlen(host),
		                     X509_CHECK_FLAG_NO_WILDCARDS |
		                         X509_CHECK_FLAG_NEVER_CHECK_SUBJECT,
		                     NULL);
	ERR_clear_error();
	return rc == 1;
}
