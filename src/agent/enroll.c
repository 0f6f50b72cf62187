/*
 * enroll: `vigil-agent enroll`, joining a center (docs/protocol.md,
 * POST /v1/enroll). The CA is pinned first, by file or by fingerprint, and
 * nothing else is sent before the server verifies against it. The key is
 * made here and stays in the data directory; the center gets a CSR. When
 * the center wants an administrator's approval, the request id is saved
 * and `enroll --resume` or `run` picks it up later.
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/x509.h>

#include "agent.h"
#include "buf.h"
#include "httpc.h"
#include "log.h"
#include "tls.h"

#define CA_MAX (256 * 1024)

static const char enroll_usage[] =
    "usage: vigil-agent enroll --server URL (--token T | --token-file FILE)\n"
    "           (--ca FILE | --ca-fingerprint SHA256) [--data-dir DIR]\n"
    "           [--proxy URL] [--proxy-user USER:PASS | --proxy-user-file "
    "FILE]\n"
    "           [--wait SECS] [--force]\n"
    "       vigil-agent enroll --resume [--data-dir DIR] [--wait SECS]\n"
    "\n"
    "Makes this host's key (EC P-256, kept in the data directory, never\n"
    "sent), and asks the center for a client certificate with an\n"
    "enrollment token.\n"
    "\n"
    "  --server URL           the center's gateway, https://HOST[:PORT]\n"
    "  --token T              enrollment token (vgt_...)\n"
    "  --token-file FILE      read the token from FILE (keeps it out of ps)\n"
    "  --ca FILE              pin the deployment CA from FILE (PEM)\n"
    "  --ca-fingerprint FP    fetch the CA from the center and pin it if its\n"
    "                         SHA-256 fingerprint is FP; stop otherwise\n"
    "  --data-dir DIR         default $VIGIL_AGENT_DATA_DIR or "
    "/var/lib/vigil-agent\n"
    "  --proxy URL            HTTP CONNECT proxy, http://HOST:PORT\n"
    "  --proxy-user U:P       Basic credentials for the proxy (stored 0600)\n"
    "  --proxy-user-file FILE read them from FILE (must be mode 0600)\n"
    "  --wait SECS            wait up to SECS for an administrator's\n"
    "                         approval (default 0: save the request, exit)\n"
    "  --resume               continue a pending request\n"
    "  --force                replace an existing enrollment\n"
    "\n"
    "Exit status: 0 when enrolled, or when the request awaits approval and\n"
    "--wait is 0; 1 on failure or when --wait ran out.\n";

struct enroll_args {
	const char *server, *token_file, *ca_file, *ca_fp, *dir, *proxy;
	const char *proxy_user_file;
	char *token, *proxy_user; /* copies, wiped on exit */
	long long wait;
	int resume, force;
};

static void
wipe_free(char **s)
{
	if (*s != NULL) {
		explicit_bzero(*s, strlen(*s));
		free(*s);
		*s = NULL;
	}
}

/* Copies a secret from argv and blanks argv, so ps no longer shows it. */
static char *
take_secret(char *arg)
{
	char *c = strdup(arg);

	if (c == NULL)
		fatal("strdup");
	explicit_bzero(arg, strlen(arg));
	return c;
}

static int
read_token_file(struct enroll_args *a)
{
	struct buf raw, err;
	struct strv v;
	int ret = -1;

	buf_init(&raw, 4096);
	buf_init(&err, 1024);
	if (tls_read_file(a->token_file, 4096, &raw, &err) == -1) {
		log_warnx("--token-file: %s", buf_cstr(&err));
		goto fail;
	}
	v = strv_trim(strv_make((const char *)raw.data, raw.len));
	if (v.len == 0 || (a->token = strv_dup(v)) == NULL) {
		log_warnx("--token-file %s: empty", a->token_file);
		goto fail;
	}
	ret = 0;
fail:
	if (raw.data != NULL)
		explicit_bzero(raw.data, raw.cap);
	buf_free(&raw);
	buf_free(&err);
	return ret;
}

static int
parse_args(int argc, char **argv, struct enroll_args *a)
{
	enum {
		O_SERVER = 256,
		O_TOKEN,
		O_TOKEN_FILE,
		O_CA,
		O_CA_FP,
		O_DIR,
		O_PROXY,
		O_PROXY_USER,
		O_PROXY_USER_FILE,
		O_WAIT,
		O_RESUME,
		O_FORCE
	};
	static const struct option opts[] = {
	    {"server", required_argument, NULL, O_SERVER},
	    {"token", required_argument, NULL, O_TOKEN},
	    {"token-file", required_argument, NULL, O_TOKEN_FILE},
	    {"ca", required_argument, NULL, O_CA},
	    {"ca-fingerprint", required_argument, NULL, O_CA_FP},
	    {"data-dir", required_argument, NULL, O_DIR},
	    {"proxy", required_argument, NULL, O_PROXY},
	    {"proxy-user", required_argument, NULL, O_PROXY_USER},
	    {"proxy-user-file", required_argument, NULL, O_PROXY_USER_FILE},
	    {"wait", required_argument, NULL, O_WAIT},
	    {"resume", no_argument, NULL, O_RESUME},
	    {"force", no_argument, NULL, O_FORCE},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	char perr[768];
	int c;

	a->dir = agent_default_dir();
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case O_SERVER:
			a->server = optarg;
			break;
		case O_TOKEN:
			wipe_free(&a->token);
			a->token = take_secret(optarg);
			break;
		case O_TOKEN_FILE:
			a->token_file = optarg;
			break;
		case O_CA:
			a->ca_file = optarg;
			break;
		case O_CA_FP:
			a->ca_fp = optarg;
			break;
		case O_DIR:
			a->dir = optarg;
			break;
		case O_PROXY:
			a->proxy = optarg;
			break;
		case O_PROXY_USER:
			wipe_free(&a->proxy_user);
			a->proxy_user = take_secret(optarg);
			break;
		case O_PROXY_USER_FILE:
			a->proxy_user_file = optarg;
			break;
		case O_WAIT:
			if (str_to_ll(optarg, 0, 7 * 86400, &a->wait) == -1) {
				log_warnx("--wait %s: give seconds, 0 to "
				          "604800",
				          optarg);
				return -1;
			}
			break;
		case O_RESUME:
			a->resume = 1;
			break;
		case O_FORCE:
			a->force = 1;
			break;
		case 'h':
			fputs(enroll_usage, stdout);
			exit(0);
		default:
			fputs(enroll_usage, stderr);
			return -1;
		}
	}
	if (optind != argc) {
		log_warnx("enroll: unexpected argument '%s'", argv[optind]);
		return -1;
	}
	if (a->resume) {
		if (a->server || a->token || a->token_file || a->ca_file ||
		    a->ca_fp || a->proxy || a->proxy_user ||
		    a->proxy_user_file || a->force) {
			log_warnx("enroll: --resume takes only --data-dir and "
			          "--wait");
			return -1;
		}
		return 0;
	}
	if (a->server == NULL || (a->token == NULL && a->token_file == NULL)) {
		log_warnx("enroll: --server and --token (or --token-file) are "
		          "required; see --help");
		return -1;
	}
	if (a->token != NULL && a->token_file != NULL) {
		log_warnx("enroll: give --token or --token-file, not both");
		return -1;
	}
	if ((a->ca_file == NULL) == (a->ca_fp == NULL)) {
		log_warnx("enroll: give exactly one of --ca FILE and "
		          "--ca-fingerprint SHA256: the agent trusts only the "
		          "deployment CA");
		return -1;
	}
	if (a->proxy_user != NULL && a->proxy_user_file != NULL) {
		log_warnx("enroll: give --proxy-user or --proxy-user-file, not "
		          "both");
		return -1;
	}
	if ((a->proxy_user != NULL || a->proxy_user_file != NULL) &&
	    a->proxy == NULL) {
		log_warnx("enroll: proxy credentials without --proxy");
		return -1;
	}
	if (a->proxy_user != NULL && strchr(a->proxy_user, ':') == NULL) {
		log_warnx("enroll: --proxy-user takes USER:PASSWORD");
		return -1;
	}
	if (a->proxy != NULL &&
	    httpc_proxy_check(a->proxy, perr, sizeof(perr)) == -1) {
		log_warnx("enroll: --proxy: %s", perr);
		return -1;
	}
	if (a->token_file != NULL && read_token_file(a) == -1)
		return -1;
	return 0;
}

/* Pins the CA given as a file: every certificate in it, re-encoded. */
static int
pin_ca_file(struct agent_state *st, const char *file)
{
	STACK_OF(X509) *certs = NULL;
	struct buf pem, err;
	char fp[65];
	int i, ret = -1;

	buf_init(&pem, CA_MAX);
	buf_init(&err, 1024);
	if ((certs = tls_load_certs(file, &err)) == NULL ||
	    sk_X509_num(certs) == 0) {
		log_warnx("--ca: %s", err.len ? buf_cstr(&err)
		                              : "no "
		                                "certificate");
		goto fail;
	}
	for (i = 0; i < sk_X509_num(certs); i++)
		if (tls_cert_to_pem(sk_X509_value(certs, i), &pem) == -1)
			goto fail;
	if (tls_write_file(st->p_ca, pem.data, pem.len, 0644, &err) == -1) {
		log_warnx("--ca: %s", buf_cstr(&err));
		goto fail;
	}
	tls_fingerprint(sk_X509_value(certs, 0), fp);
	log_info("enroll: pinned the CA from %s (SHA-256 %s)", file, fp);
	ret = 0;
fail:
	sk_X509_pop_free(certs, X509_free);
	buf_free(&pem);
	buf_free(&err);
	return ret;
}

/*
 * Fetches GET /v1/ca without verification (there is nothing to verify
 * against yet) and pins it only if its fingerprint is the one the operator
 * gave: the fingerprint, not the connection, is what authenticates it.
 */
static int
pin_ca_fingerprint(struct agent_state *st, const char *given)
{
	struct httpc_opts o;
	struct httpc_resp r;
	struct buf url, pem, err;
	X509 *ca = NULL;
	char want[65], got[65];
	char *name = NULL;
	int ret = -1;

	httpc_resp_init(&r);
	buf_init(&url, 4096);
	buf_init(&pem, CA_MAX);
	buf_init(&err, 1024);
	if (tls_parse_fingerprint(given, want) == -1) {
		log_warnx("--ca-fingerprint %s: not a SHA-256 fingerprint (64 "
		          "hex digits, ':' separators allowed)",
		          given);
		goto fail;
	}
	if (agent_load_proxy_user(st) == -1)
		goto fail;
	agent_httpc_opts(st, 0, &o);
	o.insecure = 1;
	o.ca_file = NULL;
	if (buf_printf(&url, "%s/v1/ca", st->server) == -1)
		goto fail;
	if (httpc_request(&o, "GET", buf_cstr(&url), NULL, NULL, 0, &r)) {
		log_warnx("enroll: fetching the CA: %s", r.errmsg);
		goto fail;
	}
	if (r.status != 200 ||
	    (ca = tls_cert_from_pem((const char *)r.body.data, r.body.len)) ==
	        NULL) {
		log_warnx("enroll: %s answered %ld without a CA certificate; "
		          "is this a Vigil center?",
		          buf_cstr(&url), r.status);
		goto fail;
	}
	tls_fingerprint(ca, got);
	name = tls_name(X509_get_subject_name(ca));
	if (CRYPTO_memcmp(want, got, 64) != 0) {
		log_warnx(
		    "enroll: the CA presented by %s ('%s') has SHA-256 "
		    "fingerprint %s, not %s as given with --ca-fingerprint. "
		    "Refusing to enroll: check the fingerprint the center's "
		    "administrator gave you; if it is right, something between "
		    "this host and the center is intercepting TLS, which is "
		    "not supported.",
		    st->server, name != NULL ? name : "?", got, want);
		goto fail;
	}
	if (tls_cert_to_pem(ca, &pem) == -1 ||
	    tls_write_file(st->p_ca, pem.data, pem.len, 0644, &err) == -1) {
		log_warnx("enroll: %s", buf_cstr(&err));
		goto fail;
	}
	log_info("enroll: pinned the center's CA '%s' (SHA-256 %s)",
	         name != NULL ? name : "?", got);
	ret = 0;
fail:
	X509_free(ca);
	free(name);
	httpc_resp_free(&r);
	buf_free(&url);
	buf_free(&pem);
	buf_free(&err);
	return ret;
}

/* Stores the proxy settings in the state (credentials by file name). */
static int
setup_proxy(struct agent_state *st, struct enroll_args *a)
{
	struct buf err;
	char real[PATH_MAX];
	int ret = -1;

	buf_init(&err, 1024);
	if (agent_set_str(&st->proxy, a->proxy) == -1)
		goto fail;
	if (a->proxy_user != NULL) {
		if (tls_write_file(st->p_proxy_user, a->proxy_user,
		                   strlen(a->proxy_user), 0600, &err) == -1) {
			log_warnx("enroll: %s", buf_cstr(&err));
			goto fail;
		}
		if (agent_set_str(&st->proxy_user_file, st->p_proxy_user))
			goto fail;
	} else {
		(void)unlink(st->p_proxy_user);
		if (a->proxy_user_file != NULL &&
		    realpath(a->proxy_user_file, real) == NULL) {
			log_warn("--proxy-user-file %s", a->proxy_user_file);
			goto fail;
		}
		if (agent_set_str(&st->proxy_user_file,
		                  a->proxy_user_file != NULL ? real : NULL) ==
		    -1)
			goto fail;
	}
	/* Read it now: a bad file should stop enrollment, not the first
	 * heartbeat. */
	if (agent_load_proxy_user(st) == -1)
		goto fail;
	ret = 0;
fail:
	buf_free(&err);
	return ret;
}

/* Polls a pending request until it is decided or `wait` seconds pass. */
static int
wait_approval(struct agent_state *st, long long wait, int r)
{
	time_t deadline = time(NULL) + (time_t)wait;
	long long left, nap;

	while (r == ENROLL_PENDING || r == ENROLL_FAILED) {
		left = (long long)(deadline - time(NULL));
		if (left <= 0)
			break;
		nap = st->retry_after < left ? st->retry_after : left;
		log_debug("enroll: next poll in %lld s", nap);
		sleep((unsigned)nap);
		r = agent_enroll_poll(st);
	}
	return r;
}

static int
report(struct agent_state *st, int r, long long wait)
{
	switch (r) {
	case ENROLL_DONE:
		printf("enrolled: agent %s with %s (data in %s); start it with "
		       "`vigil-agent run`\n",
		       st->agent_id, st->server, st->dir);
		return 0;
	case ENROLL_PENDING:
		printf(
		    "pending: request %s awaits approval by an administrator "
		    "of %s; `vigil-agent enroll --resume` or `vigil-agent "
		    "run` continues once it is approved\n",
		    st->request_id, st->server);
		if (wait > 0) {
			log_warnx("enroll: not approved within %lld s", wait);
			return 1;
		}
		return 0;
	default:
		log_warnx("enroll: not enrolled");
		return 1;
	}
}

static int
resume(struct agent_state *st, long long wait)
{
	int r;

	if (agent_state_load(st) == -1)
		return 1;
	if (st->request_id == NULL) {
		if (st->agent_id != NULL && agent_file_exists(st->p_crt)) {
			printf("enrolled: agent %s with %s; nothing pending\n",
			       st->agent_id, st->server);
			return 0;
		}
		log_warnx("enroll: nothing pending in %s; enroll with --server "
		          "and --token",
		          st->dir);
		return 1;
	}
	r = agent_enroll_poll(st);
	if (wait > 0)
		r = wait_approval(st, wait, r);
	return report(st, r, wait);
}

int
cmd_enroll(int argc, char **argv)
{
	struct enroll_args a;
	struct agent_state st;
	char *server = NULL;
	int lock, r, rc = 1;

	memset(&a, 0, sizeof(a));
	if (agent_state_init(&st, agent_default_dir()) == -1)
		return 1;
	if (parse_args(argc, argv, &a) == -1 ||
	    (!a.resume && agent_check_server_url(a.server, &server) == -1)) {
		rc = 2;
		goto fail;
	}
	if (agent_state_init(&st, a.dir) == -1 || agent_dir_create(&st) == -1 ||
	    agent_lock(&st) == -1)
		goto fail;
	if (a.resume) {
		rc = resume(&st, a.wait);
		goto fail;
	}
	/* A rejected or failed attempt leaves a state without identity or
	 * request: that one may simply be overwritten. */
	if (agent_state_exists(&st) && !a.force) {
		if (agent_state_load(&st) == -1) {
			log_warnx("enroll: use --force to replace the state in "
			          "%s",
			          st.dir);
			goto fail;
		}
		if (st.request_id != NULL) {
			log_warnx(
			    "enroll: request %s is already pending in "
			    "%s; continue it with --resume, or start over "
			    "with --force",
			    st.request_id, st.dir);
			goto fail;
		}
		if (st.agent_id != NULL && agent_file_exists(st.p_crt)) {
			log_warnx("enroll: %s already holds the enrollment of "
			          "agent %s; use --force to replace it",
			          st.dir, st.agent_id);
			goto fail;
		}
	}
	/* Start from nothing (a --force run forgets the old settings), but
	 * keep holding the lock. */
	lock = st.lock_fd;
	st.lock_fd = -1;
	agent_state_free(&st);
	if (agent_state_init(&st, a.dir) == -1) {
		close(lock);
		goto fail;
	}
	st.lock_fd = lock;
	st.server = server;
	server = NULL;
	if (setup_proxy(&st, &a) == -1)
		goto fail;
	if (a.ca_file != NULL ? pin_ca_file(&st, a.ca_file)
	                      : pin_ca_fingerprint(&st, a.ca_fp))
		goto fail;
	r = agent_enroll_send(&st, a.token, 0);
	if (r == ENROLL_PENDING && a.wait > 0)
		r = wait_approval(&st, a.wait, r);
	rc = report(&st, r, a.wait);
fail:
	wipe_free(&a.token);
	wipe_free(&a.proxy_user);
	free(server);
	agent_state_free(&st);
	return rc;
}
