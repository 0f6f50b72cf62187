/*
 * keyproc.c: the key process. Forked (by the key monitor, below) before
 * vigild gives up root, it is the
 * only process that ever loads the CA private key. It answers two typed,
 * size-checked requests over its socketpair: PING (startup check that the
 * key loads and matches the CA certificate) and SIGN (a CSR and the agent
 * UUID to certify). The network-facing process never holds the key, so a
 * bug in request parsing cannot leak it.
 *
 * Nor can that process make it sign anything: the key process keeps its
 * own policy, fixed at fork from the configuration (a subject that is a
 * canonical UUID, 8-4-4-4-12 lowercase hex; a lifetime no longer than
 * [center] agent_cert_lifetime), and appends one JSON line per certificate
 * it issued (serial, subject, validity, the requester the parent named) to
 * <data_dir>/issued-certs.log before handing the certificate out; a
 * certificate it cannot log is not issued.
 *
 * Calls are synchronous: signing one EC P-256 certificate takes well under
 * a millisecond, far less than the network round trip of the request that
 * asked for it.
 *
 * The key monitor: vigild's own child, forked while vigild is still root,
 * that keeps root and does nothing but start the key process and hand
 * vigild the channel to it (KM_CHANNEL, the descriptor riding along). When
 * the key process dies, the monitor starts a new one (at once; when that
 * one too dies within a minute, after 5 s doubling to 5 min) and
 * hands over the new channel: vigild, which no longer has root, could not
 * start a key process that reads the root-owned CA key. vigild takes a new
 * channel when the one it has fails. The monitor exits when vigild closes
 * its end.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
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
	KM_CHANNEL = 200, /* monitor -> vigild: a key process's channel */
};

#define KM_BACKOFF_MIN 5   /* seconds */
#define KM_BACKOFF_MAX 300 /* seconds */

/* SIGN payload: fixed header, then the CSR PEM (not NUL-terminated). */
struct kp_sign {
	int64_t lifetime;
	char cn[40];         /* UUID, NUL-terminated */
	char requester[128]; /* for the log, NUL-terminated */
};

#define KP_MAX_CSR 8192

struct kp_args {
	const char *ca_crt, *ca_key;
	long long max_lifetime;
	char log_path[4200];
};

static int
kp_reply_err(int fd, uint64_t id, const char *msg)
{
	return proc_send(fd, KP_ERR, id, msg, strlen(msg));
}

static int
kp_valid_requester(const char *s, size_t max)
{
	size_t i, n = strnlen(s, max);

	if (n == 0 || n == max)
		return 0;
	for (i = 0; i < n; i++)
		if (s[i] < 0x20 || s[i] > 0x7e)
			return 0;
	return 1;
}

/* Appends the issued certificate's line to the log; -1 when it cannot. */
static int
kp_log(int logfd, X509 *cert, const char *requester)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
	char *serial = bn ? BN_bn2hex(bn) : NULL, *subject = NULL, *line;
	BIO *b = BIO_new(BIO_s_mem());
	json_t *j = NULL;
	long n;
	int rc = -1;

	if (serial == NULL || b == NULL ||
	    X509_NAME_print_ex(b, X509_get_subject_name(cert), 0,
	                       XN_FLAG_RFC2253) < 0 ||
	    (n = BIO_get_mem_data(b, &subject)) < 0)
		goto out;
	j = json_pack("{s:I, s:s, s:s%, s:I, s:I, s:s}", "time",
	              (json_int_t)time(NULL), "serial", serial, "subject",
	              subject, (size_t)n, "not_before",
	              (json_int_t)tls_not_before(cert), "not_after",
	              (json_int_t)tls_not_after(cert), "requester", requester);
	if (j == NULL || (line = json_dumps(j, JSON_COMPACT)) == NULL)
		goto out;
	n = (long)strlen(line);
	line[n] = '\n'; /* json_dumps leaves room: its NUL */
	/* One write with O_APPEND: lines never interleave. */
	rc = write(logfd, line, (size_t)n + 1) == n + 1 && fsync(logfd) == 0
	         ? 0
	         : -1;
	free(line);
out:
	json_decref(j);
	BIO_free(b);
	OPENSSL_free(serial);
	BN_free(bn);
	return rc;
}

/*
 * The log lives in the data directory, which belongs to [center] user,
 * and this process is root: a compromised vigild could have put a
 * symbolic link (or a hard link, or a FIFO) there in its place, to have
 * root create or append to a file of its choice (/etc/nologin, a file in
 * /etc/sudoers.d). Only a regular file of one link is taken, never
 * followed. The descriptor, or -1 with errno set.
 */
static int
kp_log_open(const struct kp_args *a)
{
	struct stat st;
	int fd;

	if ((fd = open(a->log_path,
	               O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW |
	                   O_NONBLOCK,
	               0600)) == -1)
		return -1;
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) || st.st_nlink != 1) {
		close(fd);
		errno = EPERM;
		return -1;
	}
	return fd;
}

static int
kp_sign(int fd, uint64_t id, const uint8_t *p, size_t len, X509 *ca,
        EVP_PKEY *key, const struct kp_args *a, int logfd)
{
	struct kp_sign hdr;
	struct buf err, pem;
	X509_REQ *csr = NULL;
	X509 *cert = NULL;
	int rc;

	if (len < sizeof(hdr) || len - sizeof(hdr) > KP_MAX_CSR)
		return kp_reply_err(fd, id, "malformed signing request");
	memcpy(&hdr, p, sizeof(hdr));
	if (!str_is_uuid(hdr.cn, sizeof(hdr.cn)) ||
	    !kp_valid_requester(hdr.requester, sizeof(hdr.requester)) ||
	    hdr.lifetime < CENTER_MIN_CERT_LIFETIME)
		return kp_reply_err(fd, id, "malformed signing request");
	if (hdr.lifetime > a->max_lifetime)
		return kp_reply_err(
		    fd, id,
		    "lifetime out of range: longer than the key "
		    "process allows ([center] "
		    "agent_cert_lifetime)");
	buf_init(&err, 1024);
	buf_init(&pem, 16384);
	csr =
	    tls_csr_from_pem((const char *)p + sizeof(hdr), len - sizeof(hdr));
	if (csr == NULL)
		buf_puts(&err, "CSR is not a PEM certificate request");
	else
		cert = pki_sign_client(ca, key, csr, hdr.cn,
		                       (long long)hdr.lifetime, &err);
	if (cert != NULL && kp_log(logfd, cert, hdr.requester) == -1) {
		buf_reset(&err);
		buf_puts(&err, "cannot append to the issued-certificates log; "
		               "nothing issued");
		X509_free(cert);
		cert = NULL;
	}
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
	int rc = 1, logfd = -1;

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
			/* Opened at the first signing: the data directory
			 * may not exist yet when vigild -n checks the key. */
			if (logfd == -1 && (logfd = kp_log_open(a)) == -1) {
				char m[4400];

				snprintf(
				    m, sizeof(m),
				    "%s: cannot open the issued-certificates "
				    "log: %s; nothing issued",
				    a->log_path, strerror(errno));
				r = kp_reply_err(fd, h.id, m);
				break;
			}
			r = kp_sign(fd, h.id, msg.data, msg.len, ca, key, a,
			            logfd);
			break;
		default:
			r = kp_reply_err(fd, h.id, "unknown request");
		}
		if (r == -1)
			break;
	}
	if (logfd != -1)
		close(logfd);
	EVP_PKEY_free(key);
	X509_free(ca);
	buf_free(&msg);
	buf_free(&err);
	return rc;
}

/*
 * Waits up to ms for vigild's end of the monitor's socket to be readable
 * (a message, or EOF): 1 when it is, 0 when not, -1 when it failed.
 */
static int
km_wait(int fd, int ms)
{
	struct pollfd p;
	int r;

	p.fd = fd;
	p.events = POLLIN;
	p.revents = 0;
	while ((r = poll(&p, 1, ms)) == -1 && errno == EINTR)
		;
	return r;
}

/* Sleeps secs, or less when vigild goes away: 1 then. */
static int
km_sleep(int mfd, long long secs)
{
	time_t end = time(NULL) + (time_t)secs;

	while (time(NULL) < end)
		if (km_wait(mfd, 1000) != 0)
			return 1;
	return 0;
}

/* Does nothing: a handler (not SIG_DFL, which ignores SIGCHLD) is what
 * makes the death interrupt ppoll below. */
static void
km_on_chld(int sig)
{
	(void)sig;
}

/*
 * Waits for the key process k to exit (1, its status in *st) or for
 * vigild to go away or write to the monitor (0). SIGCHLD is blocked but
 * while waiting in ppoll, so a death is seen at once.
 */
static int
km_wait_child(int mfd, pid_t k, int *st, const sigset_t *waitmask)
{
	struct timespec ts = {1, 0};
	struct pollfd p;

	for (;;) {
		if (waitpid(k, st, WNOHANG) == k)
			return 1;
		p.fd = mfd;
		p.events = POLLIN;
		p.revents = 0;
		if (ppoll(&p, 1, &ts, waitmask) == 1)
			return 0;
	}
}

/* The key monitor (see the top of the file). Returns when vigild is gone. */
static int
km_main(int mfd, void *arg)
{
	struct sigaction sa;
	sigset_t chld, waitmask;
	long long backoff = 0;
	int strikes = 0;
	time_t started;
	pid_t k;
	int kfd, st;

	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = km_on_chld;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGCHLD, &sa, NULL);
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, &waitmask);
	sigdelset(&waitmask, SIGCHLD);
	for (;;) {
		started = time(NULL);
		if ((k = proc_fork(&kfd, kp_main, arg)) == -1) {
			log_warnx("keyproc: cannot fork the key process: %s",
			          strerror(errno));
		} else {
			int sent =
			    proc_send_fd(mfd, KM_CHANNEL, 0, NULL, 0, kfd);

			close(kfd);
			/* Until the key process dies, or vigild goes. */
			if (sent == 0 && km_wait_child(mfd, k, &st, &waitmask))
				k = -1;
			if (k != -1) {
				kill(k, SIGKILL);
				waitpid(k, NULL, 0);
				return 0;
			}
			log_warnx("keyproc: the key process exited (%s %d); "
			          "starting a new one",
			          WIFSIGNALED(st) ? "signal" : "status",
			          WIFSIGNALED(st) ? WTERMSIG(st)
			                          : WEXITSTATUS(st));
		}
		/* At once; again within a minute: 5 s, doubling. */
		if (time(NULL) - started >= 60)
			strikes = 0;
		backoff = strikes == 0  ? 0
		          : strikes < 8 ? KM_BACKOFF_MIN << (strikes - 1)
		                        : KM_BACKOFF_MAX;
		strikes++;
		if (backoff > KM_BACKOFF_MAX)
			backoff = KM_BACKOFF_MAX;
		if (backoff) {
			log_warnx("keyproc: starting the key process in %lld s",
			          backoff);
			if (km_sleep(mfd, backoff))
				return 0;
		}
	}
}

/*
 * Takes the next key process channel the monitor hands over, waiting up to
 * ms for it: 0, or -1 (none came; the monitor's socket broke).
 */
static int
km_take(struct center *c, int ms)
{
	struct proc_hdr h;
	struct buf msg;
	int fd = -1, r;

	if (c->monfd == -1 || km_wait(c->monfd, ms) != 1)
		return -1;
	buf_init(&msg, 64);
	r = proc_recv_fd(c->monfd, &h, &msg, 0, &fd);
	buf_free(&msg);
	if (r != 0 || h.type != KM_CHANNEL || fd == -1) {
		if (fd != -1)
			close(fd);
		log_warnx("keyproc: the key monitor's channel failed");
		close(c->monfd);
		c->monfd = -1;
		return -1;
	}
	if (c->keyfd != -1)
		close(c->keyfd);
	c->keyfd = fd;
	return 0;
}

/* One request and its answer on the current channel; -1 with the channel
 * closed when it broke (a broken channel cannot be resynchronised). */
static int
kp_call1(struct center *c, uint32_t type, const void *p, size_t len,
         struct proc_hdr *h, struct buf *out)
{
	uint64_t id = ++c->keyseq;

	if (c->keyfd == -1)
		return -1;
	if (proc_send(c->keyfd, type, id, p, len) == -1 ||
	    proc_recv(c->keyfd, h, out, PROC_MAX_MSG) != 0 || h->id != id) {
		close(c->keyfd);
		c->keyfd = -1;
		buf_reset(out);
		return -1;
	}
	return 0;
}

static int
kp_call(struct center *c, uint32_t type, const void *p, size_t len,
        struct buf *out, struct buf *err)
{
	struct proc_hdr h;
	int tries;

	/* A dead key process: take the channel to the one the monitor
	 * started instead (a few: channels to processes that died too may
	 * be queued before it). */
	for (tries = 0; kp_call1(c, type, p, len, &h, out) == -1; tries++) {
		if (tries == 0 && c->keyfd == -1 && c->keyseq > 1)
			log_warnx("keyproc: channel to the key process "
			          "failed; taking the new one");
		/* The monitor starts the new one at once: a short wait,
		 * as this blocks vigild's event loop. */
		if (tries == 4 || (km_take(c, 500) == -1 && c->monfd == -1)) {
			buf_puts(err, "key process is not running");
			return -1;
		}
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
	args.max_lifetime = c->conf.agent_cert_lifetime;
	if (c->conf.data_dir == NULL ||
	    snprintf(args.log_path, sizeof(args.log_path),
	             "%s/issued-certs.log",
	             c->conf.data_dir) >= (int)sizeof(args.log_path)) {
		buf_puts(err, "no data directory for the issued-certificates "
		              "log");
		return -1;
	}
	if (c->monfd != -1)
		close(c->monfd);
	if (c->keyfd != -1)
		close(c->keyfd);
	c->monfd = c->keyfd = -1;
	c->keypid = proc_fork(&c->monfd, km_main, &args);
	if (c->keypid == -1) {
		buf_printf(err, "cannot fork the key process: %s",
		           strerror(errno));
		return -1;
	}
	buf_init(&out, 1024);
	if (km_take(c, 10000) == -1) {
		buf_puts(err, "the key monitor did not start a key process");
		rc = -1;
	} else
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
	if (c->monfd != -1) {
		close(c->monfd);
		c->monfd = -1;
	}
	if (c->keypid > 0) {
		waitpid(c->keypid, NULL, 0);
		c->keypid = 0;
	}
}

int
keyproc_sign(struct center *c, const char *csr_pem, const char *cn,
             long long lifetime, const char *requester, struct buf *out,
             struct buf *err)
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
	/* Cut to fit: it only names the request in the log. */
	snprintf(hdr.requester, sizeof(hdr.requester), "%s", requester);
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
