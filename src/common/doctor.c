/*
 * doctor: the checks of the network requirements sheet (see doctor.h) and
 * the one printer they share. Every network check is bounded by the
 * timeout of struct doctor and measures the time it took on the monotonic
 * clock. Bytes off the wire are parsed by src/proto/netcheck.c and never
 * formatted unchecked: names from certificates and proxies are quoted
 * through sanitized buffers.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "buf.h"
#include "clock.h"
#include "doctor.h"
#include "httpc.h"
#include "netcheck.h"
#include "tls.h"

const char doctor_opts_help[] =
    "  --ntp HOST[:PORT]        an NTP server to measure the clock against\n"
    "                           (SNTP; repeatable)\n"
    "  --siem [udp|tcp://]HOST[:PORT]\n"
    "                           a SIEM's syslog port: a test message is sent\n"
    "                           (default udp, port 514; repeatable)\n"
    "  --scand HOST[:PORT]      the scan service's HTTPS port (9443)\n"
    "  --scand-http HOST[:PORT] the scan service's HTTP port (8080)\n"
    "  --intel HOST[:PORT]      the reputation service (10443)\n"
    "  --updates HOST[:PORT]    the update repository (18443)\n"
    "  --master HOST[:PORT]     the management backend a master calls (5443)\n"
    "  --collector HOST[:PORT]  the analysis collector (7443)\n"
    "  --proxy URL              an HTTP proxy, http://HOST:PORT\n"
    "  --proxy-user-file FILE   its Basic credentials, user:password (0600)\n"
    "  --icmp                   also ping (ICMP echo through a ping socket)\n"
    "  --json                   one JSON document, an object per check\n"
    "  --timeout SECS           per network check (default 5)\n";

static const struct {
	const char *opt;
	int port;
	const char *what;
	const char *dir;
} matrix[DOCTOR_NPORTS] = {
    [DOCTOR_SCAND] = {"scand", 9443, "scan service HTTPS",
                      "clients -> vigil-scand"},
    [DOCTOR_SCAND_HTTP] = {"scand-http", 8080, "scan service HTTP",
                           "clients -> vigil-scand"},
    [DOCTOR_INTEL] = {"intel", 10443, "reputation service",
                      "center -> vigil-inteld"},
    [DOCTOR_UPDATES] = {"updates", 18443, "update repository",
                        "center -> update repository"},
    [DOCTOR_MASTER] = {"master", 5443, "management backend",
                       "master -> center"},
    [DOCTOR_COLLECTOR] = {"collector", 7443, "analysis collector",
                          "center -> collector"},
};

static const char *const level_text[] = {"ok", "info", "warn", "FAIL"};
static const char *const level_json[] = {"ok", "info", "warn", "fail"};

void
doctor_opts_init(struct doctor_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->timeout = DOCTOR_TIMEOUT;
}

int
doctor_opt(struct doctor_opts *o, int c, const char *arg)
{
	char host[256];
	long long v;
	int port, k = c - DOCTOR_OPT_BASE;

	if (k < 0 || k > 12)
		return 0;
	switch (k) {
	case 0:
	case 1:
		if ((k == 0 ? o->nntp : o->nsiem) >= DOCTOR_MAX_LIST) {
			fprintf(stderr, "--%s: at most %d\n",
			        k == 0 ? "ntp" : "siem", DOCTOR_MAX_LIST);
			return -1;
		}
		if (k == 0)
			o->ntp[o->nntp++] = arg;
		else
			o->siem[o->nsiem++] = arg;
		return 1;
	case 8:
		o->proxy = arg;
		return 1;
	case 9:
		o->proxy_user_file = arg;
		return 1;
	case 10:
		o->icmp = 1;
		return 1;
	case 11:
		o->json = 1;
		return 1;
	case 12:
		if (str_to_ll(arg, 1, 300, &v) == -1) {
			fprintf(stderr, "--timeout %s: seconds, 1 to 300\n",
			        arg);
			return -1;
		}
		o->timeout = (long)v;
		return 1;
	default:
		if (doctor_hostport(arg, matrix[k - 2].port, host, sizeof(host),
		                    &port) == -1) {
			fprintf(stderr, "--%s %s: give HOST or HOST:PORT\n",
			        matrix[k - 2].opt, arg);
			return -1;
		}
		o->port[k - 2] = arg;
		return 1;
	}
}

int
doctor_hostport(const char *s, int defport, char *host, size_t hostlen,
                int *port)
{
	const char *end, *colon;
	long long v;
	size_t n;

	if (s == NULL || *s == '\0')
		return -1;
	if (*s == '[') {
		if ((end = strchr(s, ']')) == NULL)
			return -1;
		n = (size_t)(end - s - 1);
		colon = end[1] == ':' ? end + 1 : NULL;
		if (end[1] != '\0' && colon == NULL)
			return -1;
		s++;
	} else {
		colon = strchr(s, ':');
		if (colon != NULL && strchr(colon + 1, ':') != NULL)
			colon = NULL; /* a bare IPv6 address */
		n = colon != NULL ? (size_t)(colon - s) : strlen(s);
	}
	if (n == 0 || n >= hostlen)
		return -1;
	memcpy(host, s, n);
	host[n] = '\0';
	*port = defport;
	if (colon != NULL) {
		if (str_to_ll(colon + 1, 1, 65535, &v) == -1)
			return -1;
		*port = (int)v;
	}
	return 0;
}

void
doctor_init(struct doctor *d, int json, long timeout)
{
	memset(d, 0, sizeof(*d));
	d->json = json;
	d->timeout = timeout > 0 ? timeout : DOCTOR_TIMEOUT;
	d->worst = DOCTOR_OK;
	if (json && (d->checks = json_array()) == NULL) {
		fprintf(stderr, "doctor: out of memory\n");
		exit(2);
	}
}

void
doctor_report(struct doctor *d, enum doctor_level level, const char *name,
              const char *fix, long ms, const char *fmt, ...)
{
	va_list ap, ap2;
	char *found;
	json_t *o;
	int n;

	va_start(ap, fmt);
	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap);
	found = n >= 0 ? malloc((size_t)n + 1) : NULL;
	if (found == NULL) {
		fprintf(stderr, "doctor: out of memory\n");
		exit(2);
	}
	vsnprintf(found, (size_t)n + 1, fmt, ap2);
	va_end(ap2);
	va_end(ap);
	if (level > d->worst)
		d->worst = level;
	if (level == DOCTOR_OK)
		fix = NULL;
	if (d->json) {
		o = json_pack("{s:s, s:s, s:s}", "status", level_json[level],
		              "check", name, "found", found);
		if (o != NULL && ms >= 0)
			json_object_set_new(o, "ms", json_integer(ms));
		if (o != NULL && fix != NULL)
			json_object_set_new(o, "fix", json_string(fix));
		if (o == NULL || json_array_append_new(d->checks, o) == -1) {
			fprintf(stderr, "doctor: out of memory\n");
			exit(2);
		}
	} else {
		printf("%-4s %s: %s", level_text[level], name, found);
		if (fix != NULL)
			printf("; fix: %s", fix);
		putchar('\n');
		fflush(stdout);
	}
	free(found);
}

int
doctor_finish(struct doctor *d)
{
	int rc = d->worst == DOCTOR_FAIL ? 2 : d->worst == DOCTOR_WARN ? 1 : 0;
	json_t *doc;

	if (d->json) {
		doc = json_pack("{s:s, s:i, s:O}", "status",
		                rc == 2   ? "fail"
		                : rc == 1 ? "warn"
		                          : "ok",
		                "exit", rc, "checks", d->checks);
		if (doc == NULL ||
		    json_dumpf(doc, stdout, JSON_INDENT(2)) == -1) {
			fprintf(stderr, "doctor: cannot write the JSON\n");
			rc = 2;
		}
		putchar('\n');
		fflush(stdout);
		json_decref(doc);
		json_decref(d->checks);
		d->checks = NULL;
	}
	return rc;
}

static long
ms_since(double t0)
{
	return (long)((mono_now() - t0) * 1000 + 0.5);
}

static int
is_ip(const char *host)
{
	unsigned char a[16];

	return inet_pton(AF_INET, host, a) == 1 ||
	       inet_pton(AF_INET6, host, a) == 1;
}

void
doctor_check_name(struct doctor *d, const char *what, const char *host,
                  int name_required)
{
	struct addrinfo hints, *res = NULL, *ai;
	char addr[INET6_ADDRSTRLEN + 2];
	struct buf list;
	double t0;
	int rc;

	if (is_ip(host)) {
		doctor_report(
		    d, name_required ? DOCTOR_FAIL : DOCTOR_WARN, what,
		    name_required
		        ? "give the center a DNS name (vigild.conf fqdn, "
		          "vigilctl pki init --domain NAME): agents check the "
		          "server certificate against it"
		        : "enroll against the center's DNS name: an address "
		          "breaks when the center is renumbered",
		    -1, "%s is an IP address, not a DNS name", host);
		return;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	t0 = mono_now();
	rc = getaddrinfo(host, NULL, &hints, &res);
	if (rc != 0) {
		doctor_report(d, DOCTOR_FAIL, what,
		              "add the name to DNS (or /etc/hosts on this "
		              "host)",
		              ms_since(t0), "%s does not resolve (%s)", host,
		              gai_strerror(rc));
		return;
	}
	buf_init(&list, 1024);
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if (getnameinfo(ai->ai_addr, ai->ai_addrlen, addr, sizeof(addr),
		                NULL, 0, NI_NUMERICHOST) != 0)
			continue;
		if (strstr(buf_cstr(&list), addr) != NULL)
			continue;
		(void)buf_printf(&list, "%s%s", list.len ? ", " : "", addr);
	}
	doctor_report(d, DOCTOR_OK, what, NULL, ms_since(t0),
	              "%s resolves to %s in %ld ms", host, buf_cstr(&list),
	              ms_since(t0));
	buf_free(&list);
	freeaddrinfo(res);
}

/* The subjectAltName entries of x as "DNS:a, IP:b", sanitized. */
static void
san_list(X509 *x, struct buf *out)
{
	GENERAL_NAMES *gens;
	const GENERAL_NAME *g;
	char ip[INET6_ADDRSTRLEN];
	const unsigned char *p;
	int i, n, k, len;

	gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	n = gens != NULL ? sk_GENERAL_NAME_num(gens) : 0;
	for (i = 0; i < n; i++) {
		g = sk_GENERAL_NAME_value(gens, i);
		if (g->type == GEN_DNS) {
			p = ASN1_STRING_get0_data(g->d.dNSName);
			len = ASN1_STRING_length(g->d.dNSName);
			(void)buf_puts(out, out->len ? ", DNS:" : "DNS:");
			for (k = 0; k < len; k++)
				(void)buf_putc(out, p[k] > 0x20 && p[k] < 0x7f
				                        ? p[k]
				                        : '?');
		} else if (g->type == GEN_IPADD) {
			p = ASN1_STRING_get0_data(g->d.iPAddress);
			len = ASN1_STRING_length(g->d.iPAddress);
			if (len != 4 && len != 16)
				continue;
			inet_ntop(len == 4 ? AF_INET : AF_INET6, p, ip,
			          sizeof(ip));
			(void)buf_printf(out, "%sIP:%s", out->len ? ", " : "",
			                 ip);
		}
	}
	GENERAL_NAMES_free(gens);
	if (out->len == 0)
		(void)buf_puts(out, "no subjectAltName at all");
}

void
doctor_check_san(struct doctor *d, const char *what, const char *file,
                 const char *host)
{
	struct buf err, names;
	X509 *x;

	buf_init(&err, 1024);
	buf_init(&names, 4096);
	if ((x = tls_load_cert(file, &err)) == NULL) {
		doctor_report(d, DOCTOR_FAIL, what,
		              "create the PKI (vigilctl pki init)", -1, "%s",
		              buf_cstr(&err));
		goto done;
	}
	san_list(x, &names);
	if (tls_cert_names_host(x, host))
		doctor_report(d, DOCTOR_OK, what, NULL, -1, "%s names %s (%s)",
		              file, host, buf_cstr(&names));
	else
		doctor_report(
		    d, DOCTOR_FAIL, what,
		    "reissue the server certificate with the name "
		    "(vigilctl pki init --domain NAME), or set fqdn to "
		    "a name it carries",
		    -1, "%s does not name %s: it names %s", file, host,
		    buf_cstr(&names));
done:
	X509_free(x);
	buf_free(&err);
	buf_free(&names);
}

static void
utc(long long t, char *out, size_t n)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL ||
	    strftime(out, n, "%Y-%m-%d %H:%M UTC", &tm) == 0)
		snprintf(out, n, "@%lld", t);
}

void
doctor_check_expiry(struct doctor *d, const char *what, const char *file)
{
	long long nb, na, now = (long long)time(NULL);
	char before[64], after[64];
	struct buf err;
	char *subj;
	X509 *x;

	buf_init(&err, 1024);
	if ((x = tls_load_cert(file, &err)) == NULL) {
		doctor_report(d, DOCTOR_FAIL, what, NULL, -1, "%s",
		              buf_cstr(&err));
		buf_free(&err);
		return;
	}
	nb = tls_not_before(x);
	na = tls_not_after(x);
	subj = tls_name(X509_get_subject_name(x));
	utc(nb, before, sizeof(before));
	utc(na, after, sizeof(after));
	if (nb > now)
		doctor_report(d, DOCTOR_FAIL, what,
		              "check this host's clock (NTP); if it is right, "
		              "the certificate was made on a host whose clock "
		              "is ahead",
		              -1, "%s (%s) is not valid before %s", file,
		              subj != NULL ? subj : "?", before);
	else if (na <= now)
		doctor_report(d, DOCTOR_FAIL, what,
		              "renew it (a new PKI or certificate), or check "
		              "this host's clock",
		              -1, "%s (%s) expired on %s", file,
		              subj != NULL ? subj : "?", after);
	else if (na - now < DOCTOR_EXPIRY_WARN * 86400LL)
		doctor_report(
		    d, DOCTOR_WARN, what, "renew it before it expires", -1,
		    "%s (%s) expires on %s, in %lld days", file,
		    subj != NULL ? subj : "?", after, (na - now) / 86400);
	else
		doctor_report(d, DOCTOR_OK, what, NULL, -1,
		              "%s (%s) valid until %s (%lld days)", file,
		              subj != NULL ? subj : "?", after,
		              (na - now) / 86400);
	free(subj);
	X509_free(x);
	buf_free(&err);
}

/*
 * A connected socket of type to host:port within the timeout, or -1 with
 * the reason in why. *ms is the time it took (resolving included).
 */
static int
dial(const char *host, int port, int type, long timeout, char *why,
     size_t whylen, long *ms)
{
	struct addrinfo hints, *res = NULL, *ai;
	char serv[16];
	struct pollfd pfd;
	double t0 = mono_now(), left;
	socklen_t sl;
	int fd = -1, rc, err = 0;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = type;
	snprintf(serv, sizeof(serv), "%d", port);
	if ((rc = getaddrinfo(host, serv, &hints, &res)) != 0) {
		snprintf(why, whylen, "%s does not resolve (%s)", host,
		         gai_strerror(rc));
		*ms = ms_since(t0);
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family,
		            ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
		            ai->ai_protocol);
		if (fd == -1) {
			err = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		if (errno != EINPROGRESS) {
			err = errno;
			goto next;
		}
		left = (double)timeout - (mono_now() - t0);
		pfd.fd = fd;
		pfd.events = POLLOUT;
		rc = left > 0 ? poll(&pfd, 1, (int)(left * 1000)) : 0;
		if (rc == 0) {
			err = ETIMEDOUT;
			goto next;
		}
		sl = sizeof(err);
		if (rc < 0 ||
		    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl) == -1)
			err = errno;
		if (err == 0)
			break;
	next:
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	*ms = ms_since(t0);
	if (fd == -1)
		snprintf(why, whylen, "%s",
		         err == ECONNREFUSED ? "connection refused"
		         : err == ETIMEDOUT
		             ? "no answer (timed out: a firewall dropping it?)"
		             : strerror(err));
	return fd;
}

void
doctor_check_tcp(struct doctor *d, const char *what, const char *dir,
                 const char *host, int port)
{
	char name[256], why[256];
	long ms;
	int fd;

	snprintf(name, sizeof(name), "port %d/tcp %s (%s)", port, what, dir);
	fd = dial(host, port, SOCK_STREAM, d->timeout, why, sizeof(why), &ms);
	if (fd == -1) {
		doctor_report(d, DOCTOR_FAIL, name,
		              "start the service, or open the port in the "
		              "firewalls on the way",
		              ms, "%s:%d: %s after %ld ms", host, port, why,
		              ms);
		return;
	}
	close(fd);
	doctor_report(d, DOCTOR_OK, name, NULL, ms,
	              "%s:%d accepted the connection in %ld ms", host, port,
	              ms);
}

void
doctor_check_matrix(struct doctor *d, const struct doctor_opts *o)
{
	char host[256], name[256];
	int i, port;

	for (i = 0; i < DOCTOR_NPORTS; i++) {
		if (o->port[i] == NULL) {
			snprintf(name, sizeof(name), "port %d/tcp %s (%s)",
			         matrix[i].port, matrix[i].what, matrix[i].dir);
			doctor_report(d, DOCTOR_INFO, name, NULL, -1,
			              "not configured (--%s HOST[:PORT])",
			              matrix[i].opt);
			continue;
		}
		if (doctor_hostport(o->port[i], matrix[i].port, host,
		                    sizeof(host), &port) == -1)
			continue; /* refused by doctor_opt already */
		doctor_check_tcp(d, matrix[i].what, matrix[i].dir, host, port);
	}
}

void
doctor_check_tls(struct doctor *d, const char *what, const char *url,
                 const char *ca, const char *proxy, const char *proxy_user)
{
	struct httpc_opts o;
	struct httpc_resp r;
	char px[512] = "";
	double t0;

	memset(&o, 0, sizeof(o));
	o.ca_file = ca;
	o.proxy = proxy;
	o.proxy_user = proxy_user;
	o.timeout_secs = d->timeout;
	if (proxy != NULL)
		httpc_proxy_display(proxy, px, sizeof(px));
	httpc_resp_init(&r);
	t0 = mono_now();
	if (httpc_request(&o, "GET", url, NULL, NULL, 0, &r) == -1) {
		doctor_report(d, DOCTOR_FAIL, what,
		              /* httpc's sentence says what to do */
		              r.err == HTTPC_ERR_TLS_VERIFY
		                  ? NULL
		                  : "see the proxy and port checks",
		              ms_since(t0), "%s", r.errmsg);
	} else {
		doctor_report(
		    d, DOCTOR_OK, what, NULL, ms_since(t0),
		    "%s%s%s verifies against the pinned CA %s: no TLS "
		    "interception (HTTP %ld in %ld ms)",
		    url, px[0] ? " via proxy " : "", px, ca, r.status,
		    ms_since(t0));
	}
	httpc_resp_free(&r);
}

static void
skew_report(struct doctor *d, const char *name, double skew, const char *whose,
            long ms)
{
	double a = skew < 0 ? -skew : skew;
	enum doctor_level l = a >= DOCTOR_SKEW_FAIL   ? DOCTOR_FAIL
	                      : a >= DOCTOR_SKEW_WARN ? DOCTOR_WARN
	                                              : DOCTOR_OK;

	if (l == DOCTOR_OK)
		doctor_report(d, l, name, NULL, ms, "within %.1f s of %s", a,
		              whose);
	else
		doctor_report(
		    d, l, name,
		    "synchronize this host's clock (systemd-timesyncd, "
		    "chrony): certificates look expired or not yet "
		    "valid to a wrong clock",
		    ms, "this clock is %.1f s %s %s", a,
		    skew < 0 ? "behind" : "ahead of", whose);
}

static double
wall_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
ntp_one(struct doctor *d, const char *server)
{
	uint8_t req[SNTP_LEN], resp[512];
	struct sntp_reply r;
	struct pollfd pfd;
	char host[256], name[300], why[256], whose[300];
	double t1, t4, t0 = mono_now(), left;
	ssize_t n;
	long ms;
	int fd, port;

	snprintf(name, sizeof(name), "clock (NTP %s)", server);
	if (doctor_hostport(server, 123, host, sizeof(host), &port) == -1) {
		doctor_report(d, DOCTOR_FAIL, name, "give HOST[:PORT]", -1,
		              "not a server address");
		return;
	}
	if ((fd = dial(host, port, SOCK_DGRAM, d->timeout, why, sizeof(why),
	               &ms)) == -1) {
		doctor_report(d, DOCTOR_FAIL, name, "check the NTP server name",
		              ms, "%s", why);
		return;
	}
	t1 = wall_now();
	sntp_request(req, t1);
	if (send(fd, req, sizeof(req), 0) != (ssize_t)sizeof(req)) {
		doctor_report(d, DOCTOR_FAIL, name, NULL, ms_since(t0),
		              "cannot send: %s", strerror(errno));
		close(fd);
		return;
	}
	for (;;) {
		left = (double)d->timeout - (mono_now() - t0);
		pfd.fd = fd;
		pfd.events = POLLIN;
		if (left <= 0 || poll(&pfd, 1, (int)(left * 1000)) <= 0) {
			doctor_report(d, DOCTOR_FAIL, name,
			              "allow 123/udp to the NTP server, or "
			              "configure a reachable one",
			              ms_since(t0), "no answer within %ld s",
			              d->timeout);
			break;
		}
		n = recv(fd, resp, sizeof(resp), 0);
		t4 = wall_now();
		if (n < 0) {
			doctor_report(d, DOCTOR_FAIL, name,
			              "allow 123/udp to the NTP server, or "
			              "configure a reachable one",
			              ms_since(t0), "%s",
			              errno == ECONNREFUSED
			                  ? "port unreachable: no NTP server "
			                    "there"
			                  : strerror(errno));
			break;
		}
		if (sntp_parse(resp, (size_t)n, req, &r, why, sizeof(why)) ==
		    -1) {
			doctor_report(d, DOCTOR_FAIL, name,
			              "use another NTP server", ms_since(t0),
			              "%s", why);
			break;
		}
		snprintf(whose, sizeof(whose), "%s (stratum %d, %ld ms)",
		         server, r.stratum, ms_since(t0));
		/* The offset is the server's lead: our skew is its
		 * negative. */
		skew_report(d, name, -sntp_offset(&r, t1, t4), whose,
		            ms_since(t0));
		break;
	}
	close(fd);
}

void
doctor_check_ntp(struct doctor *d, const struct doctor_opts *o)
{
	size_t i;

	if (o->nntp == 0) {
		doctor_report(d, DOCTOR_INFO, "clock (NTP)", NULL, -1,
		              "no NTP server configured (--ntp HOST)");
		return;
	}
	for (i = 0; i < o->nntp; i++)
		ntp_one(d, o->ntp[i]);
}

/* Appends "name=value" with any credentials in value hidden. */
static void
env_item(struct buf *b, const char *name, const char *v)
{
	char shown[512];

	if (strncmp(name, "no", 2) == 0 || strncmp(name, "NO", 2) == 0)
		snprintf(shown, sizeof(shown), "%.200s", v);
	else
		httpc_proxy_display(v, shown, sizeof(shown));
	(void)buf_printf(b, "%s%s=%s", b->len ? ", " : "", name, shown);
}

void
doctor_check_env_proxy(struct doctor *d, const char *configured)
{
	static const char *const vars[] = {
	    "https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY",
	    "all_proxy",   "ALL_PROXY",   "no_proxy",   "NO_PROXY"};
	struct buf found;
	const char *v;
	char px[512];
	int proxies = 0;
	size_t i;

	buf_init(&found, 4096);
	for (i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
		if ((v = getenv(vars[i])) == NULL || *v == '\0')
			continue;
		env_item(&found, vars[i], v);
		if (strstr(vars[i], "no_") == NULL &&
		    strstr(vars[i], "NO_") == NULL)
			proxies++;
	}
	if (configured != NULL)
		httpc_proxy_display(configured, px, sizeof(px));
	if (proxies > 0 && configured == NULL)
		doctor_report(
		    d, DOCTOR_WARN, "proxy (environment)",
		    "Vigil never uses the environment's proxy: if "
		    "this host needs one to reach the center, give it "
		    "with --proxy (vigil-agent enroll --proxy URL)",
		    -1, "%s set, no proxy configured", buf_cstr(&found));
	else if (configured != NULL)
		doctor_report(d, DOCTOR_INFO, "proxy (environment)", NULL, -1,
		              "%s; the configured proxy %s is used, the "
		              "environment is not",
		              found.len ? buf_cstr(&found) : "none set", px);
	else
		doctor_report(d, DOCTOR_INFO, "proxy (environment)", NULL, -1,
		              "%s; direct connections",
		              found.len ? buf_cstr(&found)
		                        : "no http_proxy, https_proxy or "
		                          "no_proxy set");
	buf_free(&found);
}

/*
 * One CONNECT host:port through the proxy at ph:pp, with Basic
 * credentials when user is not NULL. 0 with the answer in a, or -1 with
 * why. *ms: the time it took.
 */
static int
proxy_connect(struct doctor *d, const char *ph, int pp, const char *host,
              int port, const char *user, struct proxy_answer *a, char *why,
              size_t whylen, long *ms)
{
	unsigned char auth[1024];
	uint8_t in[8192];
	struct pollfd pfd;
	struct buf req;
	size_t got = 0;
	double t0 = mono_now(), left;
	long r = -2;
	ssize_t n;
	int fd, ret = -1, alen;

	buf_init(&req, 4096);
	if ((fd = dial(ph, pp, SOCK_STREAM, d->timeout, why, whylen, ms)) == -1)
		goto fail;
	(void)buf_printf(
	    &req, "CONNECT %s%s%s:%d HTTP/1.1\r\nHost: %s%s%s:%d\r\n",
	    strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "",
	    port, strchr(host, ':') ? "[" : "", host,
	    strchr(host, ':') ? "]" : "", port);
	if (user != NULL) {
		if (strlen(user) > 700) {
			snprintf(why, whylen,
			         "the proxy credentials are too "
			         "long");
			goto fail;
		}
		alen = EVP_EncodeBlock(auth, (const unsigned char *)user,
		                       (int)strlen(user));
		(void)buf_printf(&req, "Proxy-Authorization: Basic %.*s\r\n",
		                 alen, auth);
		explicit_bzero(auth, sizeof(auth));
	}
	(void)buf_puts(&req, "User-Agent: vigil-doctor\r\n\r\n");
	if (buf_ok(&req) != 0 ||
	    send(fd, req.data, req.len, MSG_NOSIGNAL) != (ssize_t)req.len) {
		snprintf(why, whylen, "cannot send the CONNECT request");
		goto fail;
	}
	while (r == -2) {
		left = (double)d->timeout - (mono_now() - t0);
		pfd.fd = fd;
		pfd.events = POLLIN;
		if (left <= 0 || poll(&pfd, 1, (int)(left * 1000)) <= 0) {
			snprintf(why, whylen,
			         "no answer to CONNECT within %ld s",
			         d->timeout);
			goto fail;
		}
		if (got == sizeof(in)) {
			snprintf(why, whylen, "an answer head over %zu bytes",
			         sizeof(in));
			goto fail;
		}
		n = recv(fd, in + got, sizeof(in) - got, 0);
		if (n <= 0) {
			snprintf(why, whylen,
			         "the proxy closed the connection "
			         "without an answer");
			goto fail;
		}
		got += (size_t)n;
		r = proxy_answer_parse(in, got, a);
	}
	if (r == -1) {
		snprintf(why, whylen,
		         "the answer is not HTTP: not an HTTP "
		         "proxy?");
		goto fail;
	}
	ret = 0;
fail:
	*ms = ms_since(t0);
	if (fd != -1)
		close(fd);
	if (req.data != NULL)
		explicit_bzero(req.data, req.len);
	buf_free(&req);
	return ret;
}

void
doctor_check_proxy(struct doctor *d, const char *proxy, const char *proxy_user,
                   const char *host, int port)
{
	static const char fix_scheme[] =
	    "configure the proxy to offer Basic to the agents (or no "
	    "authentication for the center's address)";
	struct proxy_answer a, b;
	char px[512], ph[256], why[512], schemes[128], perr[512];
	const char *hp;
	long ms, ms2;
	int pp;

	httpc_proxy_display(proxy, px, sizeof(px));
	if (httpc_proxy_check(proxy, perr, sizeof(perr)) == -1) {
		doctor_report(d, DOCTOR_FAIL, "proxy",
		              "give the proxy as http://HOST:PORT", -1, "%s",
		              perr);
		return;
	}
	hp = strstr(px, "://");
	hp = hp != NULL ? hp + 3 : px;
	if (doctor_hostport(hp, 80, ph, sizeof(ph), &pp) == -1) {
		doctor_report(d, DOCTOR_FAIL, "proxy",
		              "give the proxy as http://HOST:PORT", -1,
		              "%s: no host and port", px);
		return;
	}
	if (proxy_connect(d, ph, pp, host, port, NULL, &a, why, sizeof(why),
	                  &ms) == -1) {
		doctor_report(d, DOCTOR_FAIL, "proxy",
		              "check the proxy address and that it runs", ms,
		              "%s: %s", px, why);
		return;
	}
	doctor_report(d, DOCTOR_OK, "proxy", NULL, ms,
	              "%s answers CONNECT %s:%d with HTTP %d in %ld ms", px,
	              host, port, a.status, ms);
	proxy_schemes_text(a.schemes, schemes, sizeof(schemes));
	if (a.status == 200) {
		doctor_report(d, DOCTOR_OK, "proxy authentication", NULL, ms,
		              "none asked: the tunnel opens without "
		              "credentials");
		return;
	}
	if (a.status != 407) {
		doctor_report(d, DOCTOR_FAIL, "proxy authentication",
		              a.status == 403
		                  ? "allow CONNECT to the center's address and "
		                    "port in the proxy's rules"
		                  : "the proxy cannot reach the center: check "
		                    "the port checks from the proxy's side",
		              ms,
		              "the proxy refused the tunnel to %s:%d (HTTP %d)",
		              host, port, a.status);
		return;
	}
	if (!(a.schemes & PROXYAUTH_BASIC)) {
		doctor_report(d, DOCTOR_FAIL, "proxy authentication",
		              fix_scheme, ms,
		              "the proxy asks for %s; unsupported: Vigil "
		              "supports Basic or none (NTLM and Negotiate are "
		              "not supported)",
		              schemes);
		return;
	}
	if (proxy_user == NULL) {
		doctor_report(d, DOCTOR_FAIL, "proxy authentication",
		              "give the proxy credentials (--proxy-user-file)",
		              ms,
		              "the proxy asks for %s and no credentials are "
		              "configured",
		              schemes);
		return;
	}
	if (proxy_connect(d, ph, pp, host, port, proxy_user, &b, why,
	                  sizeof(why), &ms2) == -1) {
		doctor_report(d, DOCTOR_FAIL, "proxy authentication", NULL, ms2,
		              "%s: %s", px, why);
		return;
	}
	if (b.status == 200)
		doctor_report(d, DOCTOR_OK, "proxy authentication", NULL, ms2,
		              "Basic (offered: %s): the credentials are "
		              "accepted (tunnel in %ld ms)",
		              schemes, ms2);
	else if (b.status == 407)
		doctor_report(d, DOCTOR_FAIL, "proxy authentication",
		              "check the proxy user name and password", ms2,
		              "Basic (offered: %s): the proxy refused the "
		              "credentials (HTTP 407)",
		              schemes);
	else
		doctor_report(d, DOCTOR_FAIL, "proxy authentication",
		              "the proxy accepted the credentials but not the "
		              "tunnel: check its rules and the port checks",
		              ms2,
		              "Basic accepted, then the tunnel to %s:%d was "
		              "refused (HTTP %d)",
		              host, port, b.status);
}

static void
siem_one(struct doctor *d, const char *spec)
{
	uint8_t nonce[6];
	char host[256], name[300], why[256], msg[512], hex[16], me[256], ts[32];
	const char *hp = spec;
	struct pollfd pfd;
	struct tm tm;
	time_t now;
	int tcp = 0, fd, port, len;
	long ms;
	char c;

	if (strncmp(spec, "udp://", 6) == 0)
		hp = spec + 6;
	else if (strncmp(spec, "tcp://", 6) == 0)
		hp = spec + 6, tcp = 1;
	snprintf(name, sizeof(name), "SIEM %s", spec);
	if (strstr(hp, "://") != NULL ||
	    doctor_hostport(hp, 514, host, sizeof(host), &port) == -1) {
		doctor_report(d, DOCTOR_FAIL, name,
		              "give [udp|tcp://]HOST[:PORT]", -1,
		              "not a syslog address");
		return;
	}
	snprintf(name, sizeof(name), "SIEM %s:%d/%s", host, port,
	         tcp ? "tcp" : "udp");
	if (RAND_bytes(nonce, sizeof(nonce)) != 1)
		memset(nonce, 0, sizeof(nonce));
	snprintf(hex, sizeof(hex), "%02x%02x%02x%02x%02x%02x", nonce[0],
	         nonce[1], nonce[2], nonce[3], nonce[4], nonce[5]);
	if (gethostname(me, sizeof(me)) != 0)
		snprintf(me, sizeof(me), "-");
	me[sizeof(me) - 1] = '\0';
	now = time(NULL);
	gmtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
	/* RFC 5424, facility user, severity notice. */
	len = snprintf(msg, sizeof(msg),
	               "<13>1 %s %.200s vigil-doctor - - - Vigil doctor test "
	               "message %s%s",
	               ts, me, hex, tcp ? "\n" : "");
	if ((fd = dial(host, port, tcp ? SOCK_STREAM : SOCK_DGRAM, d->timeout,
	               why, sizeof(why), &ms)) == -1) {
		doctor_report(d, DOCTOR_FAIL, name,
		              "start the SIEM's syslog input, or open the port",
		              ms, "%s after %ld ms", why, ms);
		return;
	}
	if (send(fd, msg, (size_t)len, MSG_NOSIGNAL) != len) {
		doctor_report(d, DOCTOR_FAIL, name,
		              "start the SIEM's syslog input, or open the port",
		              ms, "cannot send: %s", strerror(errno));
		close(fd);
		return;
	}
	if (!tcp) {
		/* UDP has no answer; a closed port says so with an ICMP
		 * error, which arrives at once on a connected socket. */
		pfd.fd = fd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, 500) > 0 && recv(fd, &c, 1, 0) == -1 &&
		    errno == ECONNREFUSED) {
			doctor_report(d, DOCTOR_FAIL, name,
			              "start the SIEM's syslog input, or point "
			              "the target at it",
			              ms,
			              "port unreachable: nothing listens "
			              "there (ICMP)");
			close(fd);
			return;
		}
	}
	close(fd);
	doctor_report(d, DOCTOR_OK, name, NULL, ms,
	              "test message sent in %ld ms%s: look for \"Vigil doctor "
	              "test message %s\" in the SIEM",
	              ms, tcp ? "" : " (UDP: no error came back)", hex);
}

void
doctor_check_siem(struct doctor *d, const struct doctor_opts *o)
{
	size_t i;

	if (o->nsiem == 0) {
		doctor_report(
		    d, DOCTOR_INFO, "SIEM (514/udp or tcp)", NULL, -1,
		    "not configured (--siem [udp|tcp://]HOST[:PORT])");
		return;
	}
	for (i = 0; i < o->nsiem; i++)
		siem_one(d, o->siem[i]);
}

static unsigned short
icmp_sum(const uint8_t *p, size_t n)
{
	uint32_t s = 0;
	size_t i;

	for (i = 0; i + 1 < n; i += 2)
		s += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (n & 1)
		s += (uint32_t)p[n - 1] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (unsigned short)~s;
}

void
doctor_check_icmp(struct doctor *d, const char *host)
{
	struct addrinfo hints, *res = NULL;
	uint8_t pkt[16], in[256];
	struct pollfd pfd;
	char name[300], range[64] = "?";
	double t0 = mono_now(), left;
	unsigned short sum, id;
	size_t off, k;
	FILE *f;
	ssize_t n;
	int fd, rc, err, raw = 0;

	snprintf(name, sizeof(name), "ICMP echo %s", host);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_INET;
	hints.ai_socktype = SOCK_DGRAM;
	if ((rc = getaddrinfo(host, NULL, &hints, &res)) != 0) {
		doctor_report(d, DOCTOR_WARN, name, NULL, ms_since(t0),
		              "%s has no IPv4 address (%s)", host,
		              gai_strerror(rc));
		return;
	}
	/* A ping socket when this user's group may open one, else a raw
	 * socket, which needs CAP_NET_RAW. */
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_ICMP);
	if (fd == -1 && (errno == EACCES || errno == EPERM)) {
		err = errno;
		if ((fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC,
		                 IPPROTO_ICMP)) != -1)
			raw = 1;
		else
			errno = err;
	}
	if (fd == -1) {
		if ((f = fopen("/proc/sys/net/ipv4/ping_group_range", "r")) !=
		    NULL) {
			if (fgets(range, sizeof(range), f) != NULL)
				range[strcspn(range, "\n")] = '\0';
			for (k = 0; range[k] != '\0'; k++)
				if (range[k] == '\t')
					range[k] = ' ';
			fclose(f);
		}
		doctor_report(d, DOCTOR_WARN, name,
		              "let this user's group open ping sockets "
		              "(sysctl net.ipv4.ping_group_range), or leave "
		              "out --icmp",
		              -1,
		              "not permitted: a ping socket needs a group in "
		              "net.ipv4.ping_group_range (now %s), a raw one "
		              "CAP_NET_RAW (%s)",
		              range, strerror(errno));
		freeaddrinfo(res);
		return;
	}
	memset(pkt, 0, sizeof(pkt));
	pkt[0] = ICMP_ECHO;
	id = (unsigned short)getpid();
	pkt[4] = (uint8_t)(id >> 8); /* a ping socket sets its own */
	pkt[5] = (uint8_t)id;
	pkt[7] = 1;
	memcpy(pkt + 8, "vigil-dr", 8);
	sum = icmp_sum(pkt, sizeof(pkt));
	pkt[2] = (uint8_t)(sum >> 8);
	pkt[3] = (uint8_t)sum;
	if (sendto(fd, pkt, sizeof(pkt), 0, res->ai_addr, res->ai_addrlen) ==
	    -1) {
		doctor_report(d, DOCTOR_WARN, name, NULL, ms_since(t0),
		              "cannot send: %s", strerror(errno));
		goto done;
	}
	for (;;) {
		left = (double)d->timeout - (mono_now() - t0);
		pfd.fd = fd;
		pfd.events = POLLIN;
		if (left <= 0 || poll(&pfd, 1, (int)(left * 1000)) <= 0) {
			doctor_report(d, DOCTOR_WARN, name,
			              "ICMP is optional: only a problem where "
			              "monitoring pings the center",
			              ms_since(t0),
			              "no echo reply within %ld s", d->timeout);
			break;
		}
		n = recv(fd, in, sizeof(in), 0);
		off = 0;
		if (raw && n >= 20) {
			/* A raw socket hands over the IP header too, and every
			 * ICMP message: ours only. */
			off = (size_t)(in[0] & 0x0f) * 4;
			if ((size_t)n < off + 8 || in[off + 4] != pkt[4] ||
			    in[off + 5] != pkt[5])
				continue;
		}
		if (n >= 8 && (size_t)n >= off + 8 &&
		    in[off] == ICMP_ECHOREPLY) {
			doctor_report(d, DOCTOR_OK, name, NULL, ms_since(t0),
			              "echo reply in %ld ms (%s socket)",
			              ms_since(t0), raw ? "raw" : "ping");
			break;
		}
	}
done:
	close(fd);
	freeaddrinfo(res);
}
