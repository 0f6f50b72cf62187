/*
 * doctor: the checks of the network requirements sheet, shared by
 * `vigilctl doctor` (on the center) and `vigil-agent check --all` (on an
 * endpoint). Each check prints one line, "ok", "info", "warn" or "FAIL",
 * the requirement, what was found and, unless ok, the fix; or, with
 * --json, becomes one object of a document printed at the end. The exit
 * status is 0 when nothing is worse than info, 1 with warnings, 2 with a
 * failure. The checks change nothing. Parsing of what comes off the wire
 * (SNTP, a proxy's answer) is in src/proto/netcheck.c.
 */
#ifndef VIGIL_DOCTOR_H
#define VIGIL_DOCTOR_H

#include <getopt.h>
#include <stddef.h>

#include <jansson.h>

enum doctor_level {
	DOCTOR_OK = 0,
	DOCTOR_INFO, /* not configured, nothing to check: not a problem */
	DOCTOR_WARN,
	DOCTOR_FAIL,
};

#define DOCTOR_SKEW_WARN   5  /* seconds of clock skew for a warning */
#define DOCTOR_SKEW_FAIL   60 /* and for a failure */
#define DOCTOR_EXPIRY_WARN 30 /* days before a certificate expires */
#define DOCTOR_MAX_LIST    8  /* --ntp, --siem given at most so often */
#define DOCTOR_TIMEOUT     5  /* seconds per network check, default */

/* The optional parts of the port matrix, one option each. */
enum doctor_port {
	DOCTOR_SCAND = 0,  /* 9443/tcp */
	DOCTOR_SCAND_HTTP, /* 8080/tcp */
	DOCTOR_INTEL,      /* 10443/tcp */
	DOCTOR_UPDATES,    /* 18443/tcp */
	DOCTOR_MASTER,     /* 5443/tcp */
	DOCTOR_COLLECTOR,  /* 7443/tcp */
	DOCTOR_NPORTS,
};

/* What both commands take on their command line. */
struct doctor_opts {
	const char *ntp[DOCTOR_MAX_LIST]; /* HOST[:PORT] */
	size_t nntp;
	const char *siem[DOCTOR_MAX_LIST]; /* [udp|tcp://]HOST[:PORT] */
	size_t nsiem;
	const char *port[DOCTOR_NPORTS]; /* HOST[:PORT], NULL: not configured */
	const char *proxy;               /* --proxy URL */
	const char *proxy_user_file;     /* --proxy-user-file FILE */
	int icmp;
	int json;
	long timeout;
};

/* Option codes for getopt_long (beyond any character). */
#define DOCTOR_OPT_BASE 0x1000
#define DOCTOR_LONG_OPTIONS                                                    \
	{"ntp", required_argument, NULL, DOCTOR_OPT_BASE + 0},                 \
	    {"siem", required_argument, NULL, DOCTOR_OPT_BASE + 1},            \
	    {"scand", required_argument, NULL, DOCTOR_OPT_BASE + 2},           \
	    {"scand-http", required_argument, NULL, DOCTOR_OPT_BASE + 3},      \
	    {"intel", required_argument, NULL, DOCTOR_OPT_BASE + 4},           \
	    {"updates", required_argument, NULL, DOCTOR_OPT_BASE + 5},         \
	    {"master", required_argument, NULL, DOCTOR_OPT_BASE + 6},          \
	    {"collector", required_argument, NULL, DOCTOR_OPT_BASE + 7},       \
	    {"proxy", required_argument, NULL, DOCTOR_OPT_BASE + 8},           \
	    {"proxy-user-file", required_argument, NULL, DOCTOR_OPT_BASE + 9}, \
	    {"icmp", no_argument, NULL, DOCTOR_OPT_BASE + 10},                 \
	    {"json", no_argument, NULL, DOCTOR_OPT_BASE + 11},                 \
	{                                                                      \
		"timeout", required_argument, NULL, DOCTOR_OPT_BASE + 12       \
	}

/* The help of those options, for both usage texts. */
extern const char doctor_opts_help[];

void doctor_opts_init(struct doctor_opts *o);
/* 1 when c was one of DOCTOR_LONG_OPTIONS (taken into o), 0 when it is not
 * ours, -1 after a message on stderr about a bad value. */
int doctor_opt(struct doctor_opts *o, int c, const char *arg);

struct doctor {
	int json;
	long timeout;
	enum doctor_level worst;
	json_t *checks; /* the objects, with --json */
};

void doctor_init(struct doctor *d, int json, long timeout);
/*
 * One check's line: level, requirement (name), what was found, the fix
 * (NULL for none; never shown for ok), and the time it took in
 * milliseconds (-1: not measured). found is printf-formatted.
 */
void doctor_report(struct doctor *d, enum doctor_level level, const char *name,
                   const char *fix, long ms, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
/* Prints the JSON document (with --json) and returns the exit status:
 * 0 all ok, 1 warnings, 2 a failure. Frees what d holds. */
int doctor_finish(struct doctor *d);

/* The checks. */

/* host is a name that resolves; an IP address is a failure when a name is
 * required (the center's FQDN), a warning otherwise. */
void doctor_check_name(struct doctor *d, const char *what, const char *host,
                       int name_required);
/* The certificate in file names host in its subjectAltName. */
void doctor_check_san(struct doctor *d, const char *what, const char *file,
                      const char *host);
/* The certificate in file is valid now and for DOCTOR_EXPIRY_WARN more
 * days. */
void doctor_check_expiry(struct doctor *d, const char *what, const char *file);
/* A TCP connection to host:port, timed; dir says who connects to whom. */
void doctor_check_tcp(struct doctor *d, const char *what, const char *dir,
                      const char *host, int port);
/* The optional ports of o: each one given is connected to, each one not
 * given is an info line. */
void doctor_check_matrix(struct doctor *d, const struct doctor_opts *o);
/* HTTPS GET url over a connection verified against ca (through proxy when
 * not NULL): a certificate from another issuer is TLS interception, named
 * as such. */
void doctor_check_tls(struct doctor *d, const char *what, const char *url,
                      const char *ca, const char *proxy,
                      const char *proxy_user);
/* An SNTP query to each of o's NTP servers. */
void doctor_check_ntp(struct doctor *d, const struct doctor_opts *o);
/* http_proxy, https_proxy, no_proxy in the environment, against the proxy
 * configured (NULL: none). */
void doctor_check_env_proxy(struct doctor *d, const char *configured);
/* The proxy itself: reachable, the authentication schemes it asks for
 * when opening a tunnel to host:port, and that proxy_user (NULL: none) is
 * accepted when it asks for Basic. */
void doctor_check_proxy(struct doctor *d, const char *proxy,
                        const char *proxy_user, const char *host, int port);
/* A test message to each SIEM target of o. */
void doctor_check_siem(struct doctor *d, const struct doctor_opts *o);
/* ICMP echo to host through a ping socket. */
void doctor_check_icmp(struct doctor *d, const char *host);

/* Splits "HOST[:PORT]" or "[V6]:PORT"; defport when no port. 0 or -1. */
int doctor_hostport(const char *s, int defport, char *host, size_t hostlen,
                    int *port);

#endif
