/*
 * check: `vigil-agent check`, the agent's self-diagnosis. One line per
 * check, "ok" or "FAIL" first, in the order a problem would be looked for:
 * is there an identity, does the center answer, does its certificate verify
 * against the pinned CA, is our certificate good and accepted, is the clock
 * right. It changes nothing (no renewal, no re-enrollment).
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/x509.h>

#include "agent.h"
#include "buf.h"
#include "doctor.h"
#include "httpc.h"
#include "log.h"
#include "pki.h"
#include "tls.h"

#define EXPIRY_WARN_DAYS 7
#define CLOCK_MAX_SKEW   60

static const char check_usage[] =
    "usage: vigil-agent check [--data-dir DIR] [--all [options]]\n"
    "\n"
    "Checks, one line each (\"ok\", \"info\", \"warn\" or \"FAIL\"): the\n"
    "enrollment, that the center answers over HTTPS (GET /v1/ping), that\n"
    "its certificate verifies against the pinned CA, that the client\n"
    "certificate is valid for more than 7 days and accepted (a heartbeat),\n"
    "and that the clock is within 60 s of the center's (time from a\n"
    "verified answer only). With --all, also the network requirements:\n"
    "the center's name, the gateway port, proxies (environment, reachable,\n"
    "authentication scheme), the CA's expiry, NTP, the optional ports, the\n"
    "SIEM, ICMP. Exit status: 0 all ok, 1 warnings, 2 a failure.\n"
    "\n"
    "  --data-dir DIR           default $VIGIL_AGENT_DATA_DIR or "
    "/var/lib/vigil-agent\n"
    "  --all                    check the whole network requirements sheet\n"
    "With --all (--proxy and --proxy-user-file default to the enrolled\n"
    "ones):\n";

static struct doctor dr;

/* One line of the plain checks: ok or FAIL, the fix in the sentence. */
#define line(ok, what, ...)                                                    \
	doctor_report(&dr, (ok) ? DOCTOR_OK : DOCTOR_FAIL, what, NULL, -1,     \
	              __VA_ARGS__)

static const char *
str_or(json_t *o, const char *name)
{
	const char *s = json_string_value(json_object_get(o, name));

	return s != NULL ? s : "?";
}

/* GET /v1/ping; returns 0 with the center's clock in *t when answered. */
static int
ping(struct agent_state *st, int insecure, long long *t, long *status,
     char *msg, size_t msglen, char *service, size_t slen)
{
	struct httpc_opts o;
	struct httpc_resp r;
	struct buf url;
	json_t *j = NULL, *v;
	int ret = -1;

	*t = 0;
	*status = 0;
	httpc_resp_init(&r);
	buf_init(&url, 4096);
	agent_httpc_opts(st, 0, &o);
	o.insecure = insecure;
	if (insecure)
		o.ca_file = NULL;
	if (buf_printf(&url, "%s/v1/ping", st->server) == -1) {
		snprintf(msg, msglen, "out of memory");
		goto fail;
	}
	if (httpc_request(&o, "GET", buf_cstr(&url), NULL, NULL, 0, &r)) {
		snprintf(msg, msglen, "%s", r.errmsg);
		goto fail;
	}
	*status = r.status;
	j = json_loadb((const char *)r.body.data, r.body.len, 0, NULL);
	if ((v = json_object_get(j, "time")) != NULL && json_is_integer(v))
		*t = json_integer_value(v);
	snprintf(service, slen, "%s %s", str_or(j, "service"),
	         str_or(j, "version"));
	ret = 0;
fail:
	json_decref(j);
	httpc_resp_free(&r);
	buf_free(&url);
	return ret;
}

static void
check_center(struct agent_state *st, long long *center_time,
             long long *unverified_time)
{
	char msg[1024], service[128], fp[65];
	struct buf err;
	long status;
	long long t;
	X509 *ca;

	*center_time = *unverified_time = 0;
	buf_init(&err, 1024);
	if (agent_load_proxy_user(st) == -1) {
		line(0, "center reachable",
		     "the proxy credentials in %s "
		     "cannot be used",
		     st->proxy_user_file);
		line(0, "center certificate", "not checked");
		goto done;
	}
	/* Reachability first, without verification, so that a TLS problem
	 * is not reported as "unreachable". */
	if (ping(st, 1, &t, &status, msg, sizeof(msg), service,
	         sizeof(service)) == -1) {
		line(0, "center reachable", "%s", msg);
		line(0, "center certificate",
		     "not checked (the center does "
		     "not answer)");
		goto done;
	}
	line(1, "center reachable", "%s answers HTTP %ld (%s)", st->server,
	     status, service);
	/* The time of that answer is not used for the clock check: nobody
	 * vouched for it. It is only quoted when verification fails, since
	 * a wrong clock is a common reason for that. */
	*unverified_time = t;
	if (ping(st, 0, &t, &status, msg, sizeof(msg), service,
	         sizeof(service)) == -1) {
		line(0, "center certificate", "%s", msg);
		goto done;
	}
	*center_time = t;
	if ((ca = tls_load_cert(st->p_ca, &err)) != NULL) {
		tls_fingerprint(ca, fp);
		X509_free(ca);
	} else {
		snprintf(fp, sizeof(fp), "?");
	}
	line(1, "center certificate",
	     "verifies against the pinned CA (%s, "
	     "SHA-256 %s)",
	     st->p_ca, fp);
done:
	buf_free(&err);
}

/* The certificate on disk: present, ours, not expired, not about to.
 * Returns 1 when it can still be used for the heartbeat. */
static int
check_client_cert(struct agent_state *st)
{
	struct buf err;
	X509 *x = NULL;
	EVP_PKEY *k = NULL;
	long long na, left;
	char when[64];
	struct tm tm;
	time_t tna;
	int usable = 0;

	buf_init(&err, 1024);
	if ((x = tls_load_cert(st->p_crt, &err)) == NULL ||
	    (k = tls_load_key(st->p_key, &err)) == NULL) {
		line(0, "client certificate", "%s", buf_cstr(&err));
		goto fail;
	}
	if (!pki_key_matches(x, k)) {
		line(0, "client certificate", "%s does not belong to %s",
		     st->p_crt, st->p_key);
		goto fail;
	}
	na = tls_not_after(x);
	tna = (time_t)na;
	if (gmtime_r(&tna, &tm) == NULL ||
	    strftime(when, sizeof(when), "%Y-%m-%d %H:%M UTC", &tm) == 0)
		snprintf(when, sizeof(when), "@%lld", na);
	left = na - (long long)time(NULL);
	if (left <= 0) {
		line(0, "client certificate",
		     "expired on %s; enroll again "
		     "(vigil-agent enroll --force ...)",
		     when);
	} else if (left < EXPIRY_WARN_DAYS * 86400LL) {
		line(0, "client certificate",
		     "expires on %s, in less than %d "
		     "days, and was not renewed: is `vigil-agent run` "
		     "running?",
		     when, EXPIRY_WARN_DAYS);
		usable = 1;
	} else {
		line(1, "client certificate",
		     "agent %s, valid until %s (%lld "
		     "days)",
		     st->agent_id, when, left / 86400);
		usable = 1;
	}
fail:
	X509_free(x);
	EVP_PKEY_free(k);
	buf_free(&err);
	return usable;
}

static void
check_heartbeat(struct agent_state *st, long long *center_time)
{
	struct center_reply rep;
	int renew;
	long long t;

	switch (agent_heartbeat(st, &renew, &t, &rep)) {
	case HB_OK:
		line(1, "heartbeat", "accepted by the center%s",
		     renew ? " (it asks for renewal: `vigil-agent run` will do "
		             "it)"
		           : "");
		if (t != 0)
			*center_time = t;
		break;
	case HB_CLONE:
		line(0, "heartbeat",
		     "%s; `vigil-agent run` enrolls this "
		     "machine as a new agent",
		     rep.msg);
		break;
	default:
		line(0, "heartbeat", "%s", rep.msg);
		break;
	}
	center_reply_free(&rep);
}

static void
check_clock(long long center_time, long long unverified_time)
{
	long long skew;

	if (center_time == 0 && unverified_time != 0) {
		skew = (long long)time(NULL) - unverified_time;
		line(0, "clock",
		     "not checked: no verified connection to the center "
		     "(an unverified answer puts this clock %lld s %s it; if "
		     "the certificate check failed as expired or not yet "
		     "valid, fix the time first)",
		     skew < 0 ? -skew : skew, skew < 0 ? "behind" : "ahead of");
		return;
	}
	if (center_time == 0) {
		line(0, "clock",
		     "not checked (no time from a verified connection to "
		     "the center)");
		return;
	}
	skew = (long long)time(NULL) - center_time;
	if (skew < CLOCK_MAX_SKEW && skew > -CLOCK_MAX_SKEW)
		line(1, "clock", "within %lld s of the center's",
		     skew < 0 ? -skew : skew);
	else
		line(0, "clock",
		     "%lld s %s the center's; certificates can "
		     "appear expired or not yet valid: fix the time (NTP)",
		     skew < 0 ? -skew : skew, skew < 0 ? "behind" : "ahead of");
}

/* "https://HOST[:PORT]" into host and port. */
static int
server_hostport(const char *url, char *host, size_t hostlen, int *port)
{
	if (strncmp(url, "https://", 8) != 0)
		return -1;
	return doctor_hostport(url + 8, 443, host, hostlen, port);
}

/* The network requirements before the center is asked anything: its name,
 * the way to it (directly or through the proxy), the proxies. */
static void
check_network(struct agent_state *st, const char *proxy, const char *puser,
              const char *host, int port)
{
	doctor_check_name(&dr, "center name", host, 0);
	if (proxy == NULL)
		doctor_check_tcp(&dr, "gateway", "this agent -> center", host,
		                 port);
	doctor_check_env_proxy(&dr, proxy);
	if (proxy != NULL)
		doctor_check_proxy(&dr, proxy, puser, host, port);
	(void)st;
}

int
cmd_check(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"data-dir", required_argument, NULL, 'd'},
	    {"help", no_argument, NULL, 'h'},
	    {"all", no_argument, NULL, 'a'},
	    DOCTOR_LONG_OPTIONS,
	    {NULL, 0, NULL, 0},
	};
	struct agent_state st;
	struct doctor_opts o;
	const char *dir = agent_default_dir();
	long long center_time = 0, unverified_time = 0;
	char proxy[512] = "", host[256];
	int c, r, enrolled, all = 0, port = 443, sheet_opts = 0;

	doctor_opts_init(&o);
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			dir = optarg;
			break;
		case 'a':
			all = 1;
			break;
		case 'h':
			fputs(check_usage, stdout);
			fputs(doctor_opts_help, stdout);
			return 0;
		default:
			if ((r = doctor_opt(&o, c, optarg)) == 1) {
				sheet_opts += c != DOCTOR_OPT_BASE + 11;
				break;
			}
			if (r == 0) {
				fputs(check_usage, stderr);
				fputs(doctor_opts_help, stderr);
			}
			return 2;
		}
	}
	if (optind != argc) {
		log_warnx("check: unexpected argument '%s'", argv[optind]);
		return 2;
	}
	if (sheet_opts > 0 && !all) {
		log_warnx("check: the network options need --all");
		return 2;
	}
	if (agent_state_init(&st, dir) == -1)
		return 2;
	doctor_init(&dr, o.json, o.timeout);
	if (agent_state_load(&st) == -1) {
		line(0, "enrollment", "no usable state in %s", st.dir);
		agent_state_free(&st);
		return doctor_finish(&dr);
	}
	/* --proxy and --proxy-user-file try another way to the center than
	 * the enrolled one, without changing it. */
	if (o.proxy != NULL && agent_set_str(&st.proxy, o.proxy) == -1)
		fatalx("cmd_check: out of memory");
	if (o.proxy_user_file != NULL &&
	    agent_set_str(&st.proxy_user_file, o.proxy_user_file) == -1)
		fatalx("cmd_check: out of memory");
	enrolled = st.agent_id != NULL && agent_file_exists(st.p_crt);
	if (st.proxy != NULL)
		httpc_proxy_display(st.proxy, proxy, sizeof(proxy));
	if (st.request_id != NULL)
		line(0, "enrollment", "request %s awaits approval at %s",
		     st.request_id, st.server);
	else if (!enrolled)
		line(0, "enrollment", "no certificate in %s", st.dir);
	else
		line(1, "enrollment", "agent %s with %s%s%s", st.agent_id,
		     st.server, st.proxy ? " via proxy " : "", proxy);
	if (all &&
	    server_hostport(st.server, host, sizeof(host), &port) == -1) {
		line(0, "center name", "%s is not an https:// URL", st.server);
		all = 0;
	}
	if (all) {
		if (st.proxy_user_file != NULL &&
		    agent_load_proxy_user(&st) == -1)
			line(0, "proxy credentials",
			     "%s cannot be used (it must be user:password, "
			     "mode 0600)",
			     st.proxy_user_file);
		check_network(&st, st.proxy, st.proxy_user, host, port);
	}
	check_center(&st, &center_time, &unverified_time);
	if (all)
		doctor_check_expiry(&dr, "CA certificate", st.p_ca);
	if (enrolled && check_client_cert(&st))
		check_heartbeat(&st, &center_time);
	else if (enrolled)
		line(0, "heartbeat",
		     "not tried (no usable client "
		     "certificate)");
	check_clock(center_time, unverified_time);
	if (all) {
		doctor_check_ntp(&dr, &o);
		doctor_check_matrix(&dr, &o);
		doctor_check_siem(&dr, &o);
		if (o.icmp)
			doctor_check_icmp(&dr, host);
	}
	agent_state_free(&st);
	return doctor_finish(&dr);
}
