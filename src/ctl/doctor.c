/*
 * doctor.c: `vigilctl doctor`, run on the center's host: the network
 * requirements sheet checked from the center's side (src/common/doctor.c
 * holds the checks, shared with `vigil-agent check --all`). It reads the
 * few keys of vigild.conf it needs (vigild -n checks the whole file) and,
 * when the center runs, the ports it bound from vigild.ports; it changes
 * nothing.
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>
#include <jansson.h>

#include "buf.h"
#include "ctl.h"
#include "doctor.h"
#include "tls.h"

#define DEFAULT_CONF "/etc/vigil/vigild.conf"

struct center_view {
	char *fqdn;
	char *pki_dir;
	char *data_dir;
	char *gw_listen;
	char *adm_listen;
	long long gw_port;
	long long adm_port;
	char *fwd_targets; /* [forward] targets: the SIEMs, or NULL */
};

/* One section of the forwarding targets file, as far as the doctor
 * cares: where it sends. */
struct siem_target {
	char name[65];
	char transport[8];
	char host[256];
	long long port;
};

struct siem_list {
	struct siem_target t[DOCTOR_MAX_LIST];
	size_t n;
	int more; /* sections past DOCTOR_MAX_LIST, not checked */
};

static void
doctor_usage(FILE *f)
{
	fprintf(f,
	        "usage: vigilctl doctor [-c FILE] [options]\n"
	        "\n"
	        "Checks the network requirements from the center's host, one "
	        "line each\n"
	        "(ok, info, warn or FAIL, what was found, the fix): the FQDN "
	        "resolves and\n"
	        "the server certificate names it, certificate and CA expiry, "
	        "the gateway\n"
	        "and console ports, the certificate agents see (TLS "
	        "interception),\n"
	        "proxies, the clock against NTP, the optional ports, the "
	        "SIEM.\n"
	        "Exit status: 0 all ok, 1 warnings, 2 a failure.\n"
	        "\n"
	        "  -c, --config FILE        vigild.conf (default %s)\n"
	        "%s",
	        DEFAULT_CONF, doctor_opts_help);
}

static int
set(char **dst, const char *v)
{
	free(*dst);
	return (*dst = strdup(v)) != NULL;
}

static int
conf_handler(void *arg, const char *section, const char *name,
             const char *value)
{
	struct center_view *c = arg;
	long long v;

	if (strcmp(section, "center") == 0) {
		if (strcmp(name, "fqdn") == 0)
			return set(&c->fqdn, value);
		if (strcmp(name, "pki_dir") == 0)
			return set(&c->pki_dir, value);
		if (strcmp(name, "data_dir") == 0)
			return set(&c->data_dir, value);
	} else if (strcmp(section, "forward") == 0 &&
	           strcmp(name, "targets") == 0) {
		return set(&c->fwd_targets, value);
	} else if (strcmp(section, "gateway") == 0 ||
	           strcmp(section, "admin") == 0) {
		int gw = section[0] == 'g';

		if (strcmp(name, "listen") == 0)
			return set(gw ? &c->gw_listen : &c->adm_listen, value);
		if (strcmp(name, "port") == 0) {
			if (str_to_ll(value, 0, 65535, &v) == -1)
				return 0;
			*(gw ? &c->gw_port : &c->adm_port) = v;
		}
	}
	return 1; /* the other keys are vigild's business */
}

static int
target_handler(void *arg, const char *section, const char *name,
               const char *value)
{
	struct siem_list *l = arg;
	struct siem_target *t;
	long long v;

	if (l->n == 0 || strcmp(l->t[l->n - 1].name, section) != 0) {
		if (l->n == DOCTOR_MAX_LIST) {
			l->more = 1;
			return 1;
		}
		t = &l->t[l->n++];
		snprintf(t->name, sizeof(t->name), "%s", section);
		snprintf(t->transport, sizeof(t->transport), "udp");
		t->port = 0;
	}
	t = &l->t[l->n - 1];
	if (strcmp(name, "transport") == 0)
		snprintf(t->transport, sizeof(t->transport), "%s", value);
	else if (strcmp(name, "host") == 0)
		snprintf(t->host, sizeof(t->host), "%s", value);
	else if (strcmp(name, "port") == 0 &&
	         str_to_ll(value, 1, 65535, &v) == 0)
		t->port = v;
	return 1;
}

/* The SIEMs the center forwards to from its targets file: UDP and TCP get
 * a test message (added to o->siem, strings kept in store), TLS a timed
 * connection. Targets added through the API live in the database and are
 * not seen here. */
static void
config_siems(struct doctor *d, const char *file, struct doctor_opts *o,
             char store[][300])
{
	struct siem_list l;
	char name[128];
	size_t i;
	int r, tls;

	memset(&l, 0, sizeof(l));
	if ((r = ini_parse(file, target_handler, &l)) != 0) {
		doctor_report(d, DOCTOR_FAIL, "SIEM targets",
		              "check it with vigild -n", -1, "%s: %s %d", file,
		              r < 0 ? "cannot be read"
		                    : "does not parse at line",
		              r < 0 ? 0 : r);
		return;
	}
	for (i = 0; i < l.n; i++) {
		tls = strcmp(l.t[i].transport, "tls") == 0;
		if (l.t[i].port == 0)
			l.t[i].port = tls ? 6514 : 514;
		if (tls) {
			snprintf(name, sizeof(name), "SIEM %s (TLS syslog)",
			         l.t[i].name);
			doctor_check_tcp(d, name, "center -> SIEM", l.t[i].host,
			                 (int)l.t[i].port);
			continue;
		}
		if (o->nsiem == DOCTOR_MAX_LIST)
			break;
		snprintf(store[o->nsiem], 300, "%s://%s%s%s:%lld",
		         l.t[i].transport, strchr(l.t[i].host, ':') ? "[" : "",
		         l.t[i].host, strchr(l.t[i].host, ':') ? "]" : "",
		         l.t[i].port);
		o->siem[o->nsiem] = store[o->nsiem];
		o->nsiem++;
	}
	if (l.more)
		doctor_report(d, DOCTOR_INFO, "SIEM targets", NULL, -1,
		              "only the first %d targets of %s are checked",
		              DOCTOR_MAX_LIST, file);
}

static void
view_free(struct center_view *c)
{
	free(c->fqdn);
	free(c->pki_dir);
	free(c->data_dir);
	free(c->gw_listen);
	free(c->adm_listen);
	free(c->fwd_targets);
}

/* The wildcard addresses mean "every interface": connect to the name. */
static const char *
dial_host(const char *listen, const char *fqdn)
{
	if (strcmp(listen, "0.0.0.0") == 0 || strcmp(listen, "::") == 0 ||
	    strcmp(listen, "*") == 0 || *listen == '\0')
		return fqdn;
	return listen;
}

/* The running center's ports (vigild.ports), when port 0 was configured
 * or the center runs: what it really bound. */
static void
running_ports(struct center_view *c, int *from_file)
{
	char p[PATH_MAX];
	json_t *j, *v;

	*from_file = 0;
	snprintf(p, sizeof(p), "%s/vigild.ports", c->data_dir);
	if ((j = json_load_file(p, 0, NULL)) == NULL)
		return;
	if ((v = json_object_get(j, "gateway")) != NULL && json_is_integer(v))
		c->gw_port = json_integer_value(v);
	if ((v = json_object_get(j, "admin")) != NULL && json_is_integer(v))
		c->adm_port = json_integer_value(v);
	*from_file = 1;
	json_decref(j);
}

/* The user:password of a proxy-user file (0600), or NULL after a report. */
static char *
read_proxy_user(struct doctor *d, const char *file)
{
	struct buf b, err;
	char *s = NULL;

	buf_init(&b, 4096);
	buf_init(&err, 1024);
	if (tls_check_key_perms(file, &err) == -1 ||
	    tls_read_file(file, 4096, &b, &err) == -1) {
		doctor_report(d, DOCTOR_FAIL, "proxy credentials",
		              "chmod 600 the file, owned by this user", -1,
		              "%s", buf_cstr(&err));
		goto done;
	}
	b.len = strcspn(buf_cstr(&b), "\r\n");
	if ((s = strdup(buf_cstr(&b))) == NULL || strchr(s, ':') == NULL) {
		doctor_report(d, DOCTOR_FAIL, "proxy credentials",
		              "write user:password on the file's first line",
		              -1, "%s holds no user:password", file);
		free(s);
		s = NULL;
	}
done:
	if (b.data != NULL)
		explicit_bzero(b.data, b.cap);
	buf_free(&b);
	buf_free(&err);
	return s;
}

int
ctl_doctor(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"help", no_argument, NULL, 'h'},
	    DOCTOR_LONG_OPTIONS,
	    {NULL, 0, NULL, 0},
	};
	struct center_view c = {NULL, NULL, NULL, NULL, NULL, 443, 8443, NULL};
	const char *conf = DEFAULT_CONF;
	struct doctor_opts o;
	struct doctor d;
	char p[PATH_MAX], ca[PATH_MAX], url[600];
	static char siem_store[DOCTOR_MAX_LIST][300];
	char *puser = NULL;
	int ch, r, from_file;

	doctor_opts_init(&o);
	o.json = ctl.json;
	while ((ch = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			conf = optarg;
			break;
		case 'h':
			doctor_usage(stdout);
			return 0;
		default:
			if ((r = doctor_opt(&o, ch, optarg)) == 1)
				break;
			if (r == 0)
				doctor_usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "vigilctl: doctor: unexpected argument '%s'\n",
		        argv[optind]);
		return 2;
	}
	doctor_init(&d, o.json, o.timeout);
	if ((r = ini_parse(conf, conf_handler, &c)) != 0) {
		if (r < 0)
			doctor_report(&d, DOCTOR_FAIL, "configuration",
			              "give the center's configuration with -c "
			              "FILE",
			              -1, "%s cannot be read", conf);
		else
			doctor_report(&d, DOCTOR_FAIL, "configuration",
			              "check it with vigild -n -c FILE", -1,
			              "%s: line %d does not parse", conf, r);
		goto done;
	}
	if ((c.pki_dir == NULL && !set(&c.pki_dir, "/etc/vigil/pki")) ||
	    (c.data_dir == NULL && !set(&c.data_dir, "/var/lib/vigil")) ||
	    (c.gw_listen == NULL && !set(&c.gw_listen, "0.0.0.0")) ||
	    (c.adm_listen == NULL && !set(&c.adm_listen, "127.0.0.1"))) {
		fprintf(stderr, "vigilctl: out of memory\n");
		return 2;
	}
	if (c.fqdn == NULL) {
		doctor_report(&d, DOCTOR_FAIL, "center name",
		              "set fqdn in [center] to the name agents connect "
		              "to",
		              -1, "%s has no fqdn", conf);
		goto done;
	}
	running_ports(&c, &from_file);

	/* The name, and the certificate that must carry it. */
	doctor_check_name(&d, "center name", c.fqdn, 1);
	snprintf(p, sizeof(p), "%s/server.crt", c.pki_dir);
	snprintf(ca, sizeof(ca), "%s/ca.crt", c.pki_dir);
	doctor_check_san(&d, "server certificate names", p, c.fqdn);
	doctor_check_expiry(&d, "CA certificate", ca);
	doctor_check_expiry(&d, "server certificate", p);

	/* The ports the center listens on. */
	if (c.gw_port == 0)
		doctor_report(&d, DOCTOR_FAIL, "port gateway",
		              "start vigild (port 0 is chosen at start)", -1,
		              "port 0 in %s and the center does not run", conf);
	else
		doctor_check_tcp(&d, "gateway", "agents -> center",
		                 dial_host(c.gw_listen, c.fqdn),
		                 (int)c.gw_port);
	if (c.adm_port == 0)
		doctor_report(&d, DOCTOR_FAIL, "port console/API",
		              "start vigild (port 0 is chosen at start)", -1,
		              "port 0 in %s and the center does not run", conf);
	else
		doctor_check_tcp(&d, "console/API", "admins -> center",
		                 dial_host(c.adm_listen, c.fqdn),
		                 (int)c.adm_port);

	/* What agents see: through the proxy they use, if any. */
	doctor_check_env_proxy(&d, o.proxy);
	if (o.proxy_user_file != NULL &&
	    (puser = read_proxy_user(&d, o.proxy_user_file)) == NULL)
		goto done;
	if (o.proxy != NULL && c.gw_port != 0)
		doctor_check_proxy(&d, o.proxy, puser, c.fqdn, (int)c.gw_port);
	if (c.gw_port != 0) {
		snprintf(url, sizeof(url), "https://%s%s%s:%lld/v1/ping",
		         strchr(c.fqdn, ':') ? "[" : "", c.fqdn,
		         strchr(c.fqdn, ':') ? "]" : "", c.gw_port);
		doctor_check_tls(&d, "center certificate (as agents see it)",
		                 url, ca, o.proxy, puser);
	}

	doctor_check_ntp(&d, &o);
	doctor_check_matrix(&d, &o);
	if (c.fwd_targets != NULL)
		config_siems(&d, c.fwd_targets, &o, siem_store);
	doctor_check_siem(&d, &o);
	if (o.icmp)
		doctor_check_icmp(&d, c.fqdn);
done:
	if (puser != NULL) {
		explicit_bzero(puser, strlen(puser));
		free(puser);
	}
	view_free(&c);
	return doctor_finish(&d);
}
