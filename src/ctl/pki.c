/*
 * pki.c: `vigilctl pki init|issue|show`, run offline on the center host.
 * init creates the deployment CA and the center's server certificate;
 * issue makes a certificate for another component, its role written into
 * it (docs/pki.md, "Roles"); show
 * prints both (with the CA fingerprint agents pin at enrollment) and checks
 * that the files still belong together. The heavy lifting is in
 * src/common/pki.c and tls.c; this file is options, validation and words.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>
#include <openssl/rand.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "buf.h"
#include "ctl.h"
#include "ctl_pki.h"
#include "pki.h"
#include "tls.h"

#define PKI_MAX_SANS    32
#define PKI_DEFAULT_CA  3650
#define PKI_DEFAULT_SRV 825
#define PKI_MAX_DAYS    36500
#define PKI_WARN_DAYS   30

static const char *const pki_files[] = {"ca.crt", "ca.key", "server.crt",
                                        "server.key"};

static void
pki_usage(FILE *f)
{
	fprintf(
	    f, "usage: vigilctl pki init --dir DIR --domain FQDN [--san "
	       "NAME|IP]... "
	       "[--ca-days N]\n"
	       "                         [--server-days N] [--force]\n"
	       "       vigilctl pki issue --dir DIR --role ROLE --name FQDN "
	       "[--san NAME|IP]...\n"
	       "                          [--usage server|client|both] [--days "
	       "N] [--out DIR] [--force]\n"
	       "       vigilctl pki show --dir DIR [--json]\n"
	       "\n"
	       "  init  create the deployment CA and the center's certificate\n"
	       "  issue a component's certificate carrying its role\n"
	       "  show  print both certificates, the CA fingerprint, and check "
	       "them\n"
	       "\n"
	       "Run 'vigilctl pki COMMAND --help' for details.\n");
}

static void
init_usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: vigilctl pki init --dir DIR --domain FQDN [--san "
	    "NAME|IP]... "
	    "[--ca-days N]\n"
	    "                         [--server-days N] [--force]\n"
	    "\n"
	    "Creates the deployment's certificate authority and the center's "
	    "server\n"
	    "certificate in DIR (created with mode 0700):\n"
	    "  ca.crt      the CA certificate (public; agents pin its "
	    "fingerprint)\n"
	    "  ca.key      the CA private key (mode 0600; signs agent "
	    "certificates)\n"
	    "  server.crt  the center's certificate followed by the CA "
	    "certificate\n"
	    "  server.key  the center's private key (mode 0600)\n"
	    "Keys are ECDSA P-256.\n"
	    "\n"
	    "  --dir DIR         where to write the files, e.g. "
	    "/etc/vigil/pki\n"
	    "  --domain FQDN     the DNS name agents connect to, e.g. "
	    "vigil.example.org;\n"
	    "                    agents verify the center's certificate "
	    "against it\n"
	    "  --san NAME|IP     another DNS name or IP address of the center "
	    "(repeatable),\n"
	    "                    e.g. --san 127.0.0.1 for a local demo\n"
	    "  --ca-days N       lifetime of the CA in days (default %d)\n"
	    "  --server-days N   lifetime of the server certificate in days "
	    "(default %d)\n"
	    "  --force           replace existing files (every enrolled agent "
	    "must then\n"
	    "                    enroll again: they trust the old CA)\n",
	    PKI_DEFAULT_CA, PKI_DEFAULT_SRV);
}

static void
show_usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: vigilctl pki show --dir DIR [--json]\n"
	    "\n"
	    "Prints the CA and server certificates in DIR (subject, issuer, "
	    "names,\n"
	    "validity, days left, SHA-256 fingerprint) and checks that the "
	    "server\n"
	    "certificate was signed by the CA and matches server.key. Warns "
	    "when a\n"
	    "certificate has fewer than %d days left. Exits 1 when a check "
	    "fails.\n"
	    "\n"
	    "  --dir DIR   the directory given to 'vigilctl pki init'\n"
	    "  --json      print one JSON object instead of text\n",
	    PKI_WARN_DAYS);
}

/* Reports a getopt error in our own words ("vigilctl: " prefix). */
static void
opt_error(const char *cmd, int ch, char **argv)
{
	const char *arg = optind > 0 ? argv[optind - 1] : "?";

	if (ch == ':')
		fprintf(stderr, "vigilctl: pki %s: option %s needs a value\n",
		        cmd, arg);
	else
		fprintf(stderr, "vigilctl: pki %s: unknown option %s\n", cmd,
		        arg);
}

static int
is_ip(const char *s)
{
	unsigned char addr[16];

	return inet_pton(AF_INET, s, addr) == 1 ||
	       inet_pton(AF_INET6, s, addr) == 1;
}

/* Letters, digits and hyphens, 1..63 long, no hyphen at either end. */
static int
label_ok(const char *p, size_t n)
{
	if (n == 0 || n > 63 || p[0] == '-' || p[n - 1] == '-')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((p[i] >= 'a' && p[i] <= 'z') ||
		      (p[i] >= 'A' && p[i] <= 'Z') ||
		      (p[i] >= '0' && p[i] <= '9') || p[i] == '-'))
			return 0;
	return 1;
}

/* A DNS name of one or more labels; *dots gets the number of dots. */
static int
dns_ok(const char *s, int *dots)
{
	const char *p = s, *dot;
	size_t len = strlen(s);

	*dots = 0;
	if (len == 0 || len > 253)
		return 0;
	for (;;) {
		dot = strchr(p, '.');
		if (!label_ok(p, dot != NULL ? (size_t)(dot - p) : strlen(p)))
			return 0;
		if (dot == NULL)
			return 1;
		(*dots)++;
		p = dot + 1;
	}
}

static void
lowercase(char *s)
{
	for (; *s != '\0'; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

/*
 * The center's name. Agents check the certificate against the name they
 * connect to, so it must be the real, fully qualified name: localhost or a
 * bare host name would only work on this machine or this LAN segment.
 */
static int
check_domain(const char *d)
{
	const char *last;
	int dots;

	if (strcasecmp(d, "localhost") == 0 ||
	    strcasecmp(d, "localhost.localdomain") == 0 ||
	    (strlen(d) > 10 &&
	     strcasecmp(d + strlen(d) - 10, ".localhost") == 0)) {
		fprintf(
		    stderr,
		    "vigilctl: pki init: --domain %s: agents on other machines "
		    "cannot reach the center by that name, and they verify "
		    "the center by the name they connect to.\n"
		    "Use the center's real DNS name (e.g. vigil.example.org). "
		    "For a local demo, add the local names as extra names:\n"
		    "  --domain vigil.example.org --san localhost --san "
		    "127.0.0.1\n",
		    d);
		return -1;
	}
	if (is_ip(d)) {
		fprintf(stderr,
		        "vigilctl: pki init: --domain %s is an IP address; "
		        "--domain takes the DNS name agents connect to (e.g. "
		        "vigil.example.org). Add IP addresses with --san %s\n",
		        d, d);
		return -1;
	}
	if (strchr(d, '*') != NULL) {
		fprintf(
		    stderr,
		    "vigilctl: pki init: --domain %s: wildcard names are not "
		    "supported; give the center's own name\n",
		    d);
		return -1;
	}
	if (d[0] != '\0' && d[strlen(d) - 1] == '.') {
		fprintf(
		    stderr,
		    "vigilctl: pki init: --domain %s: drop the trailing dot\n",
		    d);
		return -1;
	}
	if (!dns_ok(d, &dots)) {
		fprintf(stderr,
		        "vigilctl: pki init: --domain '%s' is not a valid DNS "
		        "name (labels of letters, digits and hyphens, 1 to 63 "
		        "characters, separated by dots)\n",
		        d);
		return -1;
	}
	if (dots == 0) {
		fprintf(
		    stderr,
		    "vigilctl: pki init: --domain %s is not fully qualified: "
		    "agents verify the center by the name they connect to, "
		    "so give the full DNS name (e.g. %s.example.org)\n",
		    d, d);
		return -1;
	}
	/* An all-numeric last label is an address typo, not a DNS name. */
	last = strrchr(d, '.') + 1;
	if (strspn(last, "0123456789") == strlen(last)) {
		fprintf(stderr,
		        "vigilctl: pki init: --domain %s is not a DNS name (it "
		        "looks like a mistyped IP address)\n",
		        d);
		return -1;
	}
	return 0;
}

static int
check_san(const char *s)
{
	int dots;

	if (is_ip(s))
		return 0;
	if (strchr(s, '*') != NULL) {
		fprintf(
		    stderr,
		    "vigilctl: pki init: --san %s: wildcard names are not "
		    "supported (agents do not accept them); list each name\n",
		    s);
		return -1;
	}
	if (!dns_ok(s, &dots)) {
		fprintf(
		    stderr,
		    "vigilctl: pki init: --san '%s' is neither an IP address "
		    "nor a valid DNS name\n",
		    s);
		return -1;
	}
	return 0;
}

static int
parse_days(const char *opt, const char *arg, long long *out)
{
	if (str_to_ll(arg, 1, PKI_MAX_DAYS, out) == -1) {
		fprintf(stderr,
		        "vigilctl: pki init: %s: '%s' is not a number of days "
		        "(1..%d)\n",
		        opt, arg, PKI_MAX_DAYS);
		return -1;
	}
	return 0;
}

static void
join(char *out, size_t n, const char *dir, const char *name)
{
	snprintf(out, n, "%s/%s", dir, name);
}

/* Creates dir with mode 0700, or accepts an existing directory. */
static int
make_dir(const char *dir)
{
	struct stat st;

	if (mkdir(dir, 0700) == 0) {
		/* Exactly 0700 whatever the umask: it will hold the CA key. */
		if (chmod(dir, 0700) == -1) {
			fprintf(stderr, "vigilctl: %s: chmod: %s\n", dir,
			        strerror(errno));
			return -1;
		}
		return 0;
	}
	if (errno != EEXIST) {
		fprintf(stderr, "vigilctl: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	if (stat(dir, &st) == -1 || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "vigilctl: %s: exists and is not a directory\n",
		        dir);
		return -1;
	}
	return 0;
}

/* PEM of certs (or key) written to dir/name with mode. */
static int
write_pem(const char *dir, const char *name, X509 *a, X509 *b, EVP_PKEY *k,
          int mode)
{
	char p[PATH_MAX];
	struct buf pem, err;
	int rc = -1;

	buf_init(&pem, 0);
	buf_init(&err, 1024);
	join(p, sizeof(p), dir, name);
	if ((a != NULL && tls_cert_to_pem(a, &pem) == -1) ||
	    (b != NULL && tls_cert_to_pem(b, &pem) == -1) ||
	    (k != NULL && tls_key_to_pem(k, &pem) == -1)) {
		fprintf(stderr, "vigilctl: %s: cannot encode as PEM\n", p);
		goto fail;
	}
	if (tls_write_file(p, pem.data, pem.len, mode, &err) == -1) {
		fprintf(stderr, "vigilctl: %s\n", buf_cstr(&err));
		goto fail;
	}
	rc = 0;
fail:
	/* The buffer may hold a private key. */
	if (pem.data != NULL)
		explicit_bzero(pem.data, pem.cap);
	buf_free(&pem);
	buf_free(&err);
	return rc;
}

static void
fmt_date(long long t, char *out, size_t n)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t < 0 || gmtime_r(&tt, &tm) == NULL ||
	    strftime(out, n, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		snprintf(out, n, "(invalid date)");
}

static void
fmt_iso(long long t, char *out, size_t n)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t < 0 || gmtime_r(&tt, &tm) == NULL ||
	    strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, n, "invalid");
}

/* Whole days from now until t, rounded down (negative once past). */
static long long
days_until(long long t, long long now)
{
	long long d = t - now;

	return d >= 0 ? d / 86400 : -((-d + 86399) / 86400);
}

static int
init_run(const char *dir, const char *domain, char **sans, size_t nsans,
         long long ca_days, long long srv_days)
{
	EVP_PKEY *cakey = NULL, *skey = NULL;
	X509 *ca = NULL, *srv = NULL;
	char cn[65], fp[65], when[64];
	int rc = 1;

	/* The CA's name shows the deployment it belongs to when it fits the
	 * 64 characters X.509 allows a CN, and a random tag so that two CAs
	 * made for the same domain (a rebuilt deployment, a test one) never
	 * look alike in an error message. */
	{
		uint8_t tag[4];
		char hex[9];

		if (RAND_bytes(tag, sizeof(tag)) != 1) {
			fprintf(stderr, "vigilctl: no randomness\n");
			return 1;
		}
		hex_encode(tag, sizeof(tag), hex);
		if (strlen(domain) + strlen("Vigil CA () ") + 8 <= 64)
			snprintf(cn, sizeof(cn), "Vigil CA (%s) %s", domain,
			         hex);
		else
			snprintf(cn, sizeof(cn), "Vigil CA %s", hex);
	}
	if ((cakey = pki_genkey()) == NULL || (skey = pki_genkey()) == NULL) {
		fprintf(stderr, "vigilctl: cannot generate an EC P-256 key\n");
		goto fail;
	}
	if ((ca = pki_make_ca(cakey, cn, ca_days)) == NULL) {
		fprintf(stderr, "vigilctl: cannot create the CA certificate\n");
		goto fail;
	}
	srv = pki_make_server_cert(ca, cakey, skey, domain,
	                           (const char *const *)sans, nsans, srv_days);
	if (srv == NULL) {
		fprintf(stderr,
		        "vigilctl: cannot create the server certificate\n");
		goto fail;
	}
	if (make_dir(dir) == -1)
		goto fail;
	/* Keys first: a certificate without its key is useless, and an
	 * interrupted run is redone with --force anyway. */
	if (write_pem(dir, "ca.key", NULL, NULL, cakey, 0600) == -1 ||
	    write_pem(dir, "ca.crt", ca, NULL, NULL, 0644) == -1 ||
	    write_pem(dir, "server.key", NULL, NULL, skey, 0600) == -1 ||
	    write_pem(dir, "server.crt", srv, ca, NULL, 0644) == -1)
		goto fail;

	tls_fingerprint(ca, fp);
	printf("Created the Vigil PKI in %s:\n", dir);
	fmt_date(tls_not_after(ca), when, sizeof(when));
	printf("  ca.crt      CA certificate \"%s\", valid until %s\n", cn,
	       when);
	printf("  ca.key      CA private key (mode 0600): whoever holds it "
	       "can enroll agents\n"
	       "              and impersonate the center; keep it on this "
	       "host only\n");
	fmt_date(tls_not_after(srv), when, sizeof(when));
	printf("  server.crt  center certificate for %s", domain);
	for (size_t i = 0; i < nsans; i++)
		printf(", %s", sans[i]);
	printf(",\n              valid until %s, followed by the CA "
	       "certificate\n",
	       when);
	printf("  server.key  center private key (mode 0600)\n\n");
	printf("CA fingerprint (SHA-256):\n  %s\n", fp);
	printf("Agents pin it when they enroll: --ca-fingerprint %s\n", fp);
	rc = 0;
fail:
	/* EVP_PKEY_free clears the private scalar before freeing it. */
	EVP_PKEY_free(cakey);
	EVP_PKEY_free(skey);
	X509_free(ca);
	X509_free(srv);
	return rc;
}

static int
pki_init(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"dir", required_argument, NULL, 'd'},
	    {"domain", required_argument, NULL, 'D'},
	    {"san", required_argument, NULL, 's'},
	    {"ca-days", required_argument, NULL, 'c'},
	    {"server-days", required_argument, NULL, 'S'},
	    {"force", no_argument, NULL, 'f'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	char *sans[PKI_MAX_SANS], *domain = NULL, p[PATH_MAX];
	const char *dir = NULL;
	long long ca_days = PKI_DEFAULT_CA, srv_days = PKI_DEFAULT_SRV;
	struct stat st;
	size_t nsans = 0, nexist = 0;
	int ch, force = 0, dup, rc = 2;

	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (ch) {
		case 'd':
			dir = optarg;
			break;
		case 'D':
			free(domain);
			if ((domain = strdup(optarg)) == NULL)
				goto nomem;
			break;
		case 's':
			if (nsans == PKI_MAX_SANS) {
				fprintf(stderr,
				        "vigilctl: pki init: at most %d --san "
				        "names\n",
				        PKI_MAX_SANS);
				goto out;
			}
			if (check_san(optarg) == -1)
				goto out;
			if ((sans[nsans] = strdup(optarg)) == NULL)
				goto nomem;
			/* DNS is case-insensitive; certificates read better
			 * in lower case. IPv6 text is lowered harmlessly. */
			lowercase(sans[nsans++]);
			break;
		case 'c':
			if (parse_days("--ca-days", optarg, &ca_days) == -1)
				goto out;
			break;
		case 'S':
			if (parse_days("--server-days", optarg, &srv_days) ==
			    -1)
				goto out;
			break;
		case 'f':
			force = 1;
			break;
		case 'h':
			init_usage(stdout);
			rc = 0;
			goto out;
		default:
			opt_error("init", ch, argv);
			init_usage(stderr);
			goto out;
		}
	}
	if (optind != argc) {
		fprintf(stderr,
		        "vigilctl: pki init: unexpected argument '%s'\n",
		        argv[optind]);
		init_usage(stderr);
		goto out;
	}
	if (domain == NULL) {
		fprintf(
		    stderr,
		    "vigilctl: pki init: --domain is required.\n"
		    "Agents verify the center by name, so the center's "
		    "certificate must carry the\n"
		    "DNS name agents will connect to: a fully qualified name "
		    "such as\n"
		    "vigil.example.org. Add --san for other names or IP "
		    "addresses (e.g.\n"
		    "--san 127.0.0.1 for a local demo).\n");
		goto out;
	}
	if (dir == NULL) {
		fprintf(stderr,
		        "vigilctl: pki init: --dir is required (where to write "
		        "ca.crt, ca.key, server.crt and server.key, e.g. "
		        "/etc/vigil/pki)\n");
		goto out;
	}
	if (check_domain(domain) == -1)
		goto out;
	lowercase(domain);
	if (srv_days > ca_days) {
		fprintf(stderr,
		        "vigilctl: pki init: --server-days %lld is longer than "
		        "--ca-days %lld: the server certificate cannot outlive "
		        "the CA that signed it\n",
		        srv_days, ca_days);
		goto out;
	}
	/* The domain is always in the SAN; drop repeats of it and of each
	 * other so the certificate lists every name once. */
	for (size_t i = 0; i < nsans;) {
		dup = strcmp(sans[i], domain) == 0;
		for (size_t j = 0; j < i && !dup; j++)
			dup = strcmp(sans[i], sans[j]) == 0;
		if (dup) {
			free(sans[i]);
			memmove(&sans[i], &sans[i + 1],
			        (nsans - i - 1) * sizeof(sans[0]));
			nsans--;
		} else {
			i++;
		}
	}

	rc = 1;
	/* Replacing a CA silently would cut off every enrolled agent. */
	for (size_t i = 0; i < sizeof(pki_files) / sizeof(pki_files[0]); i++) {
		join(p, sizeof(p), dir, pki_files[i]);
		if (lstat(p, &st) == 0) {
			if (!force)
				fprintf(stderr, "vigilctl: %s already exists\n",
				        p);
			nexist++;
		} else if (errno != ENOENT) {
			fprintf(stderr, "vigilctl: %s: %s\n", p,
			        strerror(errno));
			goto out;
		}
	}
	if (nexist > 0 && !force) {
		fprintf(
		    stderr,
		    "vigilctl: pki init: refusing to overwrite an existing "
		    "PKI. Agents enrolled under its CA would stop trusting "
		    "the center and must enroll again. Use --force to "
		    "replace it, or 'vigilctl pki show --dir %s' to inspect "
		    "it.\n",
		    dir);
		goto out;
	}
	rc = init_run(dir, domain, sans, nsans, ca_days, srv_days);
	goto out;
nomem:
	fprintf(stderr, "vigilctl: out of memory\n");
	rc = 1;
out:
	for (size_t i = 0; i < nsans; i++)
		free(sans[i]);
	free(domain);
	return rc;
}

static void
issue_usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: vigilctl pki issue --dir DIR --role ROLE --name FQDN "
	    "[--san NAME|IP]...\n"
	    "                          [--usage server|client|both] [--days "
	    "N] [--out DIR] [--force]\n"
	    "\n"
	    "Issues a certificate from the deployment CA in DIR (ca.crt, "
	    "ca.key) for one\n"
	    "component. Its role is written into the certificate (the "
	    "subjectAltName URI %sROLE),\n"
	    "and each service accepts only the roles that may call it "
	    "(docs/pki.md).\n"
	    "Writes OUT/ROLE-FQDN.crt (followed by the CA certificate) and "
	    "OUT/ROLE-FQDN.key\n"
	    "(mode 0600, ECDSA P-256).\n"
	    "\n"
	    "  --dir DIR       the directory given to 'vigilctl pki init'\n"
	    "  --role ROLE     center, scand, intel, update, master or "
	    "collector\n"
	    "  --name FQDN     the component's DNS name (CN and "
	    "subjectAltName)\n"
	    "  --san NAME|IP   another DNS name or IP address (repeatable)\n"
	    "  --usage U       server, client or both (default both: "
	    "serverAuth and clientAuth)\n"
	    "  --days N        lifetime in days (default %d)\n"
	    "  --out DIR       where to write the two files (default --dir)\n"
	    "  --force         replace existing files\n",
	    PKI_ROLE_URI, PKI_DEFAULT_SRV);
}

static int
check_issue_name(const char *opt, const char *d, int need_dot)
{
	int dots;

	if (is_ip(d) || strchr(d, '*') != NULL || !dns_ok(d, &dots) ||
	    (need_dot && dots == 0)) {
		fprintf(stderr,
		        "vigilctl: pki issue: %s '%s': give a fully qualified "
		        "DNS name (e.g. scand.example.org); no wildcards%s\n",
		        opt, d,
		        need_dot ? "; add IP addresses with --san" : "");
		return -1;
	}
	return 0;
}

static int
issue_run(const char *dir, const char *out, int role, int usage,
          const char *name, char **sans, size_t nsans, long long days,
          int force)
{
	char pca[PATH_MAX], pcakey[PATH_MAX], base[300], fcrt[PATH_MAX],
	    fkey[PATH_MAX], fp[65], when[64];
	EVP_PKEY *cakey = NULL, *key = NULL;
	X509 *ca = NULL, *x = NULL;
	struct buf err;
	struct stat st;
	int rc = 1;

	buf_init(&err, 4096);
	join(pca, sizeof(pca), dir, "ca.crt");
	join(pcakey, sizeof(pcakey), dir, "ca.key");
	snprintf(base, sizeof(base), "%s-%s", pki_role_name(role), name);
	snprintf(fcrt, sizeof(fcrt), "%s/%s.crt", out, base);
	snprintf(fkey, sizeof(fkey), "%s/%s.key", out, base);
	if (!force && (lstat(fcrt, &st) == 0 || lstat(fkey, &st) == 0)) {
		fprintf(stderr,
		        "vigilctl: pki issue: %s or %s already exists; "
		        "--force replaces them\n",
		        fcrt, fkey);
		goto fail;
	}
	if ((ca = tls_load_cert(pca, &err)) == NULL ||
	    (cakey = tls_load_key(pcakey, &err)) == NULL) {
		fprintf(stderr, "vigilctl: pki issue: %s\n", buf_cstr(&err));
		goto fail;
	}
	if (pki_key_matches(ca, cakey) != 1) {
		fprintf(stderr, "vigilctl: pki issue: %s does not match %s\n",
		        pcakey, pca);
		goto fail;
	}
	if (tls_not_after(ca) < (long long)time(NULL) + days * 86400) {
		fprintf(stderr,
		        "vigilctl: pki issue: --days %lld outlives the CA "
		        "(it expires in %lld days)\n",
		        days, days_until(tls_not_after(ca), time(NULL)));
		goto fail;
	}
	if ((key = pki_genkey()) == NULL ||
	    (x = pki_issue_role(ca, cakey, key, role, usage, name,
	                        (const char *const *)sans, nsans, days)) ==
	        NULL) {
		fprintf(stderr, "vigilctl: pki issue: cannot create the "
		                "certificate\n");
		goto fail;
	}
	if (make_dir(out) == -1 ||
	    write_pem(out, strrchr(fkey, '/') + 1, NULL, NULL, key, 0600) ==
	        -1 ||
	    write_pem(out, strrchr(fcrt, '/') + 1, x, ca, NULL, 0644) == -1)
		goto fail;
	tls_fingerprint(x, fp);
	fmt_date(tls_not_after(x), when, sizeof(when));
	printf("Issued a %s certificate (%s) for %s", pki_role_name(role),
	       usage == (PKI_USE_SERVER | PKI_USE_CLIENT) ? "server and client"
	       : usage == PKI_USE_SERVER                  ? "server"
	                                                  : "client",
	       name);
	for (size_t i = 0; i < nsans; i++)
		printf(", %s", sans[i]);
	printf(",\nvalid until %s:\n  %s\n  %s (mode 0600)\n"
	       "fingerprint (SHA-256): %s\n",
	       when, fcrt, fkey, fp);
	rc = 0;
fail:
	EVP_PKEY_free(cakey);
	EVP_PKEY_free(key);
	X509_free(ca);
	X509_free(x);
	buf_free(&err);
	return rc;
}

static int
pki_issue(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"dir", required_argument, NULL, 'd'},
	    {"role", required_argument, NULL, 'r'},
	    {"name", required_argument, NULL, 'n'},
	    {"san", required_argument, NULL, 's'},
	    {"usage", required_argument, NULL, 'u'},
	    {"days", required_argument, NULL, 'D'},
	    {"out", required_argument, NULL, 'o'},
	    {"force", no_argument, NULL, 'f'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	char *sans[PKI_MAX_SANS], *name = NULL;
	const char *dir = NULL, *out = NULL;
	long long days = PKI_DEFAULT_SRV;
	size_t nsans = 0;
	int ch, force = 0, role = PKI_ROLE_NONE, rc = 2;
	int usage = PKI_USE_SERVER | PKI_USE_CLIENT;

	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (ch) {
		case 'd':
			dir = optarg;
			break;
		case 'r':
			role = pki_role_from_name(optarg);
			/* Agents get theirs by enrolling: their key never
			 * leaves the host. */
			if (role == PKI_ROLE_BAD || role == PKI_ROLE_AGENT) {
				fprintf(stderr,
				        "vigilctl: pki issue: --role '%s': one "
				        "of center, scand, intel, update, "
				        "master, collector%s\n",
				        optarg,
				        role == PKI_ROLE_AGENT
				            ? " (agents get their certificate "
				              "when they enroll)"
				            : "");
				goto out;
			}
			break;
		case 'n':
			free(name);
			if ((name = strdup(optarg)) == NULL)
				goto nomem;
			lowercase(name);
			break;
		case 's':
			if (nsans == PKI_MAX_SANS) {
				fprintf(stderr,
				        "vigilctl: pki issue: at most %d --san "
				        "names\n",
				        PKI_MAX_SANS);
				goto out;
			}
			if (!is_ip(optarg) &&
			    check_issue_name("--san", optarg, 0) == -1)
				goto out;
			if ((sans[nsans] = strdup(optarg)) == NULL)
				goto nomem;
			lowercase(sans[nsans++]);
			break;
		case 'u':
			if (strcmp(optarg, "server") == 0)
				usage = PKI_USE_SERVER;
			else if (strcmp(optarg, "client") == 0)
				usage = PKI_USE_CLIENT;
			else if (strcmp(optarg, "both") == 0)
				usage = PKI_USE_SERVER | PKI_USE_CLIENT;
			else {
				fprintf(stderr,
				        "vigilctl: pki issue: --usage '%s': "
				        "server, client or both\n",
				        optarg);
				goto out;
			}
			break;
		case 'D':
			if (str_to_ll(optarg, 1, PKI_MAX_DAYS, &days) == -1) {
				fprintf(stderr,
				        "vigilctl: pki issue: --days '%s' is "
				        "not a number of days (1..%d)\n",
				        optarg, PKI_MAX_DAYS);
				goto out;
			}
			break;
		case 'o':
			out = optarg;
			break;
		case 'f':
			force = 1;
			break;
		case 'h':
			issue_usage(stdout);
			rc = 0;
			goto out;
		default:
			opt_error("issue", ch, argv);
			issue_usage(stderr);
			goto out;
		}
	}
	if (optind != argc) {
		fprintf(stderr,
		        "vigilctl: pki issue: unexpected argument '%s'\n",
		        argv[optind]);
		goto out;
	}
	if (dir == NULL || role == PKI_ROLE_NONE || name == NULL) {
		fprintf(stderr, "vigilctl: pki issue: --dir, --role and --name "
		                "are required\n");
		issue_usage(stderr);
		goto out;
	}
	if (check_issue_name("--name", name, 1) == -1)
		goto out;
	rc = issue_run(dir, out != NULL ? out : dir, role, usage, name, sans,
	               nsans, days, force);
	goto out;
nomem:
	fprintf(stderr, "vigilctl: out of memory\n");
	rc = 1;
out:
	for (size_t i = 0; i < nsans; i++)
		free(sans[i]);
	free(name);
	return rc;
}

/* subjectAltName entries as "DNS:name" / "IP:addr" strings. */
static json_t *
cert_names(X509 *x)
{
	GENERAL_NAMES *gens;
	json_t *a = json_array();
	char ip[INET6_ADDRSTRLEN], s[300];

	gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	for (int i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		const ASN1_STRING *v;

		if (g->type == GEN_DNS) {
			v = g->d.dNSName;
			snprintf(s, sizeof(s), "DNS:%.*s",
			         ASN1_STRING_length(v),
			         (const char *)ASN1_STRING_get0_data(v));
		} else if (g->type == GEN_IPADD) {
			v = g->d.iPAddress;
			if (ASN1_STRING_length(v) == 4)
				inet_ntop(AF_INET, ASN1_STRING_get0_data(v), ip,
				          sizeof(ip));
			else if (ASN1_STRING_length(v) == 16)
				inet_ntop(AF_INET6, ASN1_STRING_get0_data(v),
				          ip, sizeof(ip));
			else
				snprintf(ip, sizeof(ip), "(malformed)");
			snprintf(s, sizeof(s), "IP:%s", ip);
		} else {
			snprintf(s, sizeof(s), "(other name type %d)", g->type);
		}
		json_array_append_new(a, json_string(s));
	}
	GENERAL_NAMES_free(gens);
	ERR_clear_error();
	return a;
}

static void
key_desc(X509 *x, char *out, size_t n)
{
	EVP_PKEY *k = X509_get0_pubkey(x);
	char group[64];
	size_t len;

	if (k == NULL)
		snprintf(out, n, "unknown");
	else if (EVP_PKEY_get_base_id(k) == EVP_PKEY_EC &&
	         EVP_PKEY_get_group_name(k, group, sizeof(group), &len) == 1)
		snprintf(out, n, "ECDSA %s",
		         strcmp(group, "prime256v1") == 0 ? "P-256" : group);
	else
		snprintf(out, n, "%s %d",
		         EVP_PKEY_get0_type_name(k) != NULL
		             ? EVP_PKEY_get0_type_name(k)
		             : "unknown",
		         EVP_PKEY_get_bits(k));
	ERR_clear_error();
}

/* Everything show prints about one certificate, as JSON. */
static json_t *
cert_info(X509 *x, const char *file, long long now)
{
	char *subject = tls_name(X509_get_subject_name(x));
	char *issuer = tls_name(X509_get_issuer_name(x));
	char *serial = tls_serial_hex(x);
	long long nb = tls_not_before(x), na = tls_not_after(x);
	char fp[65], nbs[32], nas[32], key[80];
	json_t *o;

	tls_fingerprint(x, fp);
	fmt_iso(nb, nbs, sizeof(nbs));
	fmt_iso(na, nas, sizeof(nas));
	key_desc(x, key, sizeof(key));
	o = json_pack("{s:s, s:s?, s:s?, s:s?, s:s?, s:s, s:o, s:s, s:s, s:I, "
	              "s:I, s:I, s:s}",
	              "file", file, "subject", subject, "issuer", issuer,
	              "role", pki_role_name(pki_cert_role(x)), "serial", serial,
	              "key", key, "names", cert_names(x), "not_before", nbs,
	              "not_after", nas, "not_before_unix", (json_int_t)nb,
	              "not_after_unix", (json_int_t)na, "days_left",
	              (json_int_t)days_until(na, now), "fingerprint_sha256",
	              fp);
	free(subject);
	free(issuer);
	free(serial);
	return o;
}

/* Adds a check result; returns ok so callers can count failures. */
static int
add_check(json_t *checks, const char *name, int ok, const char *detail)
{
	json_array_append_new(checks, json_pack("{s:s, s:b, s:s}", "name", name,
	                                        "ok", ok, "detail", detail));
	return ok;
}

/* Validity checks and expiry warnings for one certificate. */
static int
check_validity(json_t *info, const char *what, const char *name, long long now,
               json_t *checks, json_t *warnings)
{
	long long nb = json_integer_value(
	              json_object_get(info, "not_before_unix")),
	          na = json_integer_value(
	              json_object_get(info, "not_after_unix")),
	          left = days_until(na, now);
	char msg[256];

	if (now < nb) {
		snprintf(
		    msg, sizeof(msg),
		    "the %s is not valid yet (from %s): check this machine's "
		    "clock",
		    what,
		    json_string_value(json_object_get(info, "not_before")));
		return add_check(checks, name, 0, msg);
	}
	if (now >= na) {
		snprintf(msg, sizeof(msg), "the %s expired on %s", what,
		         json_string_value(json_object_get(info, "not_after")));
		return add_check(checks, name, 0, msg);
	}
	if (left < PKI_WARN_DAYS) {
		snprintf(msg, sizeof(msg), "the %s expires in %lld day%s (%s)",
		         what, left, left == 1 ? "" : "s",
		         json_string_value(json_object_get(info, "not_after")));
		json_array_append_new(warnings, json_string(msg));
	}
	snprintf(msg, sizeof(msg), "the %s is within its validity period",
	         what);
	return add_check(checks, name, 1, msg);
}

static void
print_cert(const char *title, json_t *c)
{
	json_t *names = json_object_get(c, "names"), *v;
	char nb[40], na[40];
	size_t i;

	if (c == NULL)
		return;
	fmt_date(json_integer_value(json_object_get(c, "not_before_unix")), nb,
	         sizeof(nb));
	fmt_date(json_integer_value(json_object_get(c, "not_after_unix")), na,
	         sizeof(na));
	printf("%s (%s)\n", title,
	       json_string_value(json_object_get(c, "file")));
	printf("  subject:      %s\n",
	       json_string_value(json_object_get(c, "subject")));
	printf("  issuer:       %s\n",
	       json_string_value(json_object_get(c, "issuer")));
	printf("  serial:       %s\n",
	       json_string_value(json_object_get(c, "serial")));
	printf("  key:          %s\n",
	       json_string_value(json_object_get(c, "key")));
	if (json_string_value(json_object_get(c, "role")) != NULL)
		printf("  role:         %s\n",
		       json_string_value(json_object_get(c, "role")));
	if (json_array_size(names) > 0) {
		printf("  names:        ");
		json_array_foreach(names, i, v)
		{
			printf("%s%s", i > 0 ? ", " : "", json_string_value(v));
		}
		printf("\n");
	}
	printf("  not before:   %s\n", nb);
	printf("  not after:    %s (%lld days left)\n", na,
	       (long long)json_integer_value(json_object_get(c, "days_left")));
	printf("  fingerprint:  %s\n",
	       json_string_value(json_object_get(c, "fingerprint_sha256")));
}

static int
show_run(const char *dir, int json)
{
	char pca[PATH_MAX], pcakey[PATH_MAX], psrv[PATH_MAX], pkey[PATH_MAX];
	STACK_OF(X509) *chain = NULL;
	EVP_PKEY *skey = NULL, *cakey = NULL;
	X509 *ca = NULL, *srv = NULL;
	json_t *out, *checks, *warnings, *cai = NULL, *srvi = NULL, *v;
	long long now = (long long)time(NULL);
	struct buf err;
	struct stat st;
	size_t i;
	int bad = 0, rc;

	buf_init(&err, 4096);
	join(pca, sizeof(pca), dir, "ca.crt");
	join(pcakey, sizeof(pcakey), dir, "ca.key");
	join(psrv, sizeof(psrv), dir, "server.crt");
	join(pkey, sizeof(pkey), dir, "server.key");
	out = json_object();
	checks = json_array();
	warnings = json_array();

	/* Each file is checked on its own so one broken file does not hide
	 * what is wrong (or right) with the others. */
	if ((ca = tls_load_cert(pca, &err)) == NULL) {
		bad += !add_check(checks, "ca_readable", 0, buf_cstr(&err));
		buf_reset(&err);
	} else {
		cai = cert_info(ca, pca, now);
		if (X509_check_ca(ca) >= 1 && pki_verify_signed_by(ca, ca) == 0)
			add_check(checks, "ca_self_signed", 1,
			          "ca.crt is a self-signed CA certificate");
		else
			bad += !add_check(
			    checks, "ca_self_signed", 0,
			    "ca.crt is not a self-signed CA certificate");
		bad += !check_validity(cai, "CA certificate", "ca_valid", now,
		                       checks, warnings);
	}
	if ((chain = tls_load_certs(psrv, &err)) == NULL) {
		bad += !add_check(checks, "server_readable", 0, buf_cstr(&err));
		buf_reset(&err);
	} else {
		srv = sk_X509_value(chain, 0);
		srvi = cert_info(srv, psrv, now);
		bad += !check_validity(srvi, "server certificate",
		                       "server_valid", now, checks, warnings);
	}
	if (ca != NULL && srv != NULL) {
		if (pki_verify_signed_by(srv, ca) == 0)
			add_check(checks, "server_signed_by_ca", 1,
			          "server.crt was signed by the CA in ca.crt");
		else
			bad += !add_check(
			    checks, "server_signed_by_ca", 0,
			    "server.crt was NOT signed by the CA in ca.crt: "
			    "agents pinned to this CA will refuse the center");
		/* pki init appends the CA so clients that lack it can still
		 * build the chain; its absence is worth a note only. */
		if (sk_X509_num(chain) < 2 ||
		    X509_cmp(sk_X509_value(chain, 1), ca) != 0)
			json_array_append_new(
			    warnings,
			    json_string("server.crt does not carry the CA "
			                "certificate after the server's"));
	}
	if ((skey = tls_load_key(pkey, &err)) == NULL) {
		bad += !add_check(checks, "server_key", 0, buf_cstr(&err));
		buf_reset(&err);
	} else if (srv != NULL) {
		if (pki_key_matches(srv, skey) == 1)
			add_check(checks, "server_key", 1,
			          "server.key matches server.crt");
		else
			bad +=
			    !add_check(checks, "server_key", 0,
			               "server.key does NOT match server.crt");
	}
	/* The CA key may have been moved off this host on purpose; check
	 * it only when present. */
	if (lstat(pcakey, &st) == 0) {
		if ((cakey = tls_load_key(pcakey, &err)) == NULL) {
			bad += !add_check(checks, "ca_key", 0, buf_cstr(&err));
			buf_reset(&err);
		} else if (ca != NULL) {
			if (pki_key_matches(ca, cakey) == 1)
				add_check(checks, "ca_key", 1,
				          "ca.key matches ca.crt");
			else
				bad +=
				    !add_check(checks, "ca_key", 0,
				               "ca.key does NOT match ca.crt");
		}
	} else {
		json_array_append_new(
		    warnings,
		    json_string("ca.key is not in this directory; the center "
		                "needs it to sign agent certificates"));
	}

	json_object_set_new(out, "dir", json_string(dir));
	json_object_set_new(out, "ca", cai != NULL ? cai : json_null());
	json_object_set_new(out, "server", srvi != NULL ? srvi : json_null());
	json_object_set_new(out, "checks", checks);
	json_object_set_new(out, "warnings", warnings);
	json_object_set_new(out, "ok", json_boolean(bad == 0));

	if (json) {
		ctl_print_json(out);
	} else {
		print_cert("CA certificate", cai);
		if (cai != NULL)
			printf("  (agents pin the CA fingerprint: "
			       "--ca-fingerprint %s)\n",
			       json_string_value(
			           json_object_get(cai, "fingerprint_sha256")));
		if (cai != NULL && srvi != NULL)
			printf("\n");
		print_cert("Server certificate", srvi);
		printf("\nChecks\n");
		json_array_foreach(checks, i, v)
		{
			printf("  %-4s %s\n",
			       json_is_true(json_object_get(v, "ok")) ? "ok"
			                                              : "FAIL",
			       json_string_value(json_object_get(v, "detail")));
		}
	}
	json_array_foreach(warnings, i, v)
	{
		fprintf(stderr, "vigilctl: warning: %s\n",
		        json_string_value(v));
	}
	if (bad > 0)
		fprintf(stderr, "vigilctl: pki show: %d check%s failed\n", bad,
		        bad == 1 ? "" : "s");
	rc = bad > 0 ? 1 : 0;

	json_decref(out);
	sk_X509_pop_free(chain, X509_free);
	X509_free(ca);
	EVP_PKEY_free(skey);
	EVP_PKEY_free(cakey);
	buf_free(&err);
	return rc;
}

static int
pki_show(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"dir", required_argument, NULL, 'd'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *dir = NULL;
	int ch, json = ctl.json;

	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (ch) {
		case 'd':
			dir = optarg;
			break;
		case 'j':
			json = 1;
			break;
		case 'h':
			show_usage(stdout);
			return 0;
		default:
			opt_error("show", ch, argv);
			show_usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr,
		        "vigilctl: pki show: unexpected argument '%s'\n",
		        argv[optind]);
		show_usage(stderr);
		return 2;
	}
	if (dir == NULL) {
		fprintf(stderr, "vigilctl: pki show: --dir is required (the "
		                "directory given to 'vigilctl pki init')\n");
		return 2;
	}
	return show_run(dir, json);
}

int
ctl_pki(int argc, char **argv)
{
	const char *sub = argc > 1 ? argv[1] : NULL;

	if (sub == NULL) {
		pki_usage(stderr);
		return 2;
	}
	if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 ||
	    strcmp(sub, "help") == 0) {
		pki_usage(stdout);
		return 0;
	}
	/* Each subcommand parses from its own argv[0]; optind = 0 makes
	 * glibc's getopt start afresh. */
	optind = 0;
	if (strcmp(sub, "init") == 0)
		return pki_init(argc - 1, argv + 1);
	if (strcmp(sub, "issue") == 0)
		return pki_issue(argc - 1, argv + 1);
	if (strcmp(sub, "show") == 0)
		return pki_show(argc - 1, argv + 1);
	fprintf(stderr, "vigilctl: pki: unknown command '%s'\n", sub);
	pki_usage(stderr);
	return 2;
}
