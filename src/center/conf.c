/*
 * conf.c: vigild.conf (one table of keys, see docs/man/vigild.conf.5) and
 * the start checks behind `vigild -n`. The checks look for what would
 * otherwise make the center die at start or, worse, start and be useless to
 * agents: keys that do not match their certificates, a chain that does not
 * verify, a server certificate that does not name the FQDN agents connect
 * to, expiry, ports already taken. Each problem names the file and the fix.
 */
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <netdb.h>

#include <jansson.h>
#include <openssl/x509_vfy.h>

#include "center.h"
#include "config.h"
#include "intelc.h"
#include "pki.h"
#include "priv.h"
#include "tls.h"

#define OFF(f) offsetof(struct center_conf, f)
#define DAY    86400LL

const struct cfg_key center_conf_keys[] = {
    {"center", "fqdn", CFG_STR, NULL, 0, 0, OFF(fqdn), 1, NULL,
     "DNS name agents use to reach the center; must be in the server "
     "certificate"},
    {"center", "data_dir", CFG_STR, "/var/lib/vigil", 0, 0, OFF(data_dir), 0,
     NULL, "database, admin key and runtime files"},
    {"center", "pki_dir", CFG_STR, "/etc/vigil/pki", 0, 0, OFF(pki_dir), 0,
     NULL, "ca.crt, ca.key, server.crt, server.key (vigilctl pki init)"},
    {"center", "user", CFG_STR, "_vigil", 0, 0, OFF(user), 0, NULL,
     "started as root, vigild binds its ports, starts the key process "
     "(root, the only one to read ca.key) and then runs as this user; "
     "root keeps root (for tests only)"},
    {"center", "require_approval", CFG_BOOL, "no", 0, 0, OFF(require_approval),
     0, NULL, "new agents wait for an administrator's approval"},
    {"center", "agent_cert_lifetime", CFG_DURATION, "90d",
     CENTER_MIN_CERT_LIFETIME, 3650 * DAY, OFF(agent_cert_lifetime), 0, NULL,
     "lifetime of agent client certificates"},
    {"center", "store_check", CFG_BOOL, "yes", 0, 0, OFF(store_check), 0, NULL,
     "check the database (SQLite quick_check) at start and refuse to "
     "start when it is damaged; no only to reach the readable part of a "
     "damaged database (requests that touch a damaged page answer 503)"},
    {"center", "store_check_interval", CFG_DURATION, "6h", 1, 30 * DAY,
     OFF(store_check_interval), 0, NULL,
     "how often the running center checks its database "
     "(vigil_store_integrity_ok)"},
    {"store", "url", CFG_STR, NULL, 0, 0, OFF(store_url), 0, NULL,
     "PostgreSQL instead of SQLite: a libpq URL, postgresql://user@host:"
     "port/db?sslmode=verify-full&sslrootcert=FILE (password from a "
     "passfile= or PGPASSFILE, or a client certificate: sslcert=, "
     "sslkey=); unset: SQLite in data_dir/vigil.db"},
    {"center", "node_name", CFG_STR, NULL, 0, 0, OFF(node_name), 0, NULL,
     "this vigild's name among the nodes sharing one PostgreSQL database "
     "(unset: hostname:gateway port); unique per node"},
    {"center", "node_url", CFG_STR, NULL, 0, 0, OFF(node_url), 0, NULL,
     "several nodes on one PostgreSQL: the URL agents can reach this "
     "node's gateway at directly, https://HOST[:PORT] (no port: the "
     "gateway's); enrollment through any node assigns each new agent the "
     "node with the fewest agents among those that set it; unset: agents "
     "use the URL they enrolled with (the balancer)"},
    {"center", "node_lease", CFG_DURATION, "10s", 3, 300, OFF(node_lease), 0,
     NULL,
     "several nodes on one PostgreSQL: how long a node's leases "
     "(forwarding targets) outlive it before another node takes them "
     "over; the nodes' clocks must agree much better than this"},
    {"center", "seen_flush", CFG_DURATION, "1s", 0, 60, OFF(seen_flush), 0,
     NULL,
     "how often agents' check-in times are written, all at once; 0 writes "
     "every heartbeat (a crash loses at most this much of last_seen)"},
    {"center", "poll_interval", CFG_DURATION, "60s", 1, DAY, OFF(poll_interval),
     0, NULL, "how often agents check in"},
    {"center", "min_free_space", CFG_SIZE, "64M", 0, 1LL << 40,
     OFF(min_free_space), 0, NULL,
     "below this much free space in data_dir new data is refused"},
    {"center", "log", CFG_ENUM, "auto", 0, 0, OFF(log_dest), 0,
     "stderr|syslog|json|auto",
     "where vigild logs; auto: syslog when daemonized, stderr with -d"},
    {"center", "log_level", CFG_ENUM, "info", 0, 0, OFF(log_level), 0,
     "warn|info|debug", "log verbosity"},
    {"gateway", "listen", CFG_STR, "0.0.0.0", 0, 0, OFF(gw_listen), 0, NULL,
     "address of the agent gateway"},
    {"gateway", "port", CFG_INT, "443", 0, 65535, OFF(gw_port), 0, NULL,
     "port of the agent gateway (0 = any free port)"},
    {"gateway", "max_body", CFG_SIZE, "32M", 65536, 1LL << 30, OFF(gw_max_body),
     0, NULL,
     "largest request body: the sample upload limit (413 beyond); JSON "
     "requests have smaller fixed limits"},
    {"gateway", "timeout", CFG_DURATION, "30s", 1, 3600, OFF(gw_timeout), 0,
     NULL, "header read and idle connection timeout"},
    {"gateway", "max_conns", CFG_INT, "0", 0, 1000000, OFF(gw_max_conns), 0,
     NULL,
     "connection limit (0 = as many as the file descriptor limit allows, "
     "less 100 kept for the center)"},
    {"gateway", "session_tickets", CFG_DURATION, "12h", 0, 7 * DAY,
     OFF(gw_tickets), 0, NULL,
     "TLS 1.3 resumption: how long a session ticket (and each ticket key) "
     "lasts; revocation is checked on every resumption; 0 turns it off"},
    {"gateway", "handshake_timeout", CFG_DURATION, "10s", 1, 3600,
     OFF(gw_handshake_timeout), 0, NULL,
     "total time from the connection to the end of the TLS handshake"},
    {"gateway", "request_timeout", CFG_DURATION, "120s", 1, 3600,
     OFF(gw_request_timeout), 0, NULL,
     "total time for a whole request (line, headers and body: a sample "
     "upload too), from the connection or the end of the previous "
     "response; a held task poll does not count"},
    {"gateway", "max_conns_per_addr", CFG_INT, "0", 0, 1000000,
     OFF(gw_max_per_addr), 0, NULL,
     "connections open at once from one address (0 = no limit: many "
     "agents may share one address behind NAT)"},
    {"gateway", "workers", CFG_INT, "auto", 0, 64, OFF(gw_workers), 0, "auto",
     "gateway worker processes that hold the agent connections (0 = the "
     "vigild process holds them itself; auto = one per core); raise it "
     "past about 10,000 agents or when one core is busy with TLS "
     "handshakes"},
    {"gateway", "enroll_rate", CFG_INT, "30", 1, 100000, OFF(enroll_rate), 0,
     NULL, "enrollment attempts per source address per minute"},
    {"gateway", "clone_policy", CFG_ENUM, "limit", 0, 0, OFF(clone_policy), 0,
     "limit|token|allow",
     "re-enrollment of a cloned agent with its certificate: up to "
     "clone_limit per original (limit), never without a token (token), or "
     "unbounded (allow)"},
    {"gateway", "clone_limit", CFG_INT, "1", 0, 100000, OFF(clone_limit), 0,
     NULL, "clones one original agent may make without a token"},
    {"gateway", "sample_quota", CFG_SIZE, "1G", 0, 1LL << 50, OFF(sample_quota),
     0, NULL, "bytes of samples one agent may upload in all (413 beyond)"},
    {"gateway", "max_long_polls", CFG_INT, "25000", 1, 1000000,
     OFF(max_long_polls), 0, NULL,
     "task polls held open at once; beyond, agents get 503 Retry-After"},
    {"admin", "listen", CFG_STR, "127.0.0.1", 0, 0, OFF(adm_listen), 0, NULL,
     "address of the admin API"},
    {"admin", "port", CFG_INT, "8443", 0, 65535, OFF(adm_port), 0, NULL,
     "port of the admin API (0 = any free port)"},
    {"admin", "max_body", CFG_SIZE, "1M", 1024, 64LL << 20, OFF(adm_max_body),
     0, NULL, "largest request body (413 beyond)"},
    {"admin", "timeout", CFG_DURATION, "60s", 1, 3600, OFF(adm_timeout), 0,
     NULL, "header read and idle connection timeout"},
    {"admin", "console_dir", CFG_STR, VIGIL_CONSOLE_DIR, 0, 0, OFF(adm_console),
     0, NULL,
     "directory of the built web console (web/dist), served at / on the "
     "admin listener; empty: no console"},
    {"admin", "handshake_timeout", CFG_DURATION, "10s", 1, 3600,
     OFF(adm_handshake_timeout), 0, NULL,
     "total time from the connection to the end of the TLS handshake"},
    {"admin", "request_timeout", CFG_DURATION, "20s", 1, 3600,
     OFF(adm_request_timeout), 0, NULL,
     "total time for a whole request (line, headers and body), from the "
     "connection or the end of the previous response; then closed"},
    {"admin", "worker", CFG_BOOL, "yes", 0, 0, OFF(adm_worker), 0, NULL,
     "serve the admin API and console from an admin worker process (TLS "
     "and HTTP parsing there, unprivileged and sandboxed; the core "
     "answers)"},
    {"admin", "max_conns_per_addr", CFG_INT, "32", 1, 256,
     OFF(adm_max_per_addr), 0, NULL,
     "connections open at once from one client address (IPv4, or IPv6 "
     "/64), of the 256 the admin API keeps"},
    {"syslog", "enable", CFG_BOOL, "no", 0, 0, OFF(sl_enable), 0, NULL,
     "receive syslog messages (udp and tcp) and store them as events"},
    {"syslog", "listen", CFG_STR, "0.0.0.0", 0, 0, OFF(sl_listen), 0, NULL,
     "address of the syslog listener"},
    {"syslog", "udp_port", CFG_INT, "514", 0, 65535, OFF(sl_udp_port), 0, NULL,
     "syslog UDP port (0 = any free port)"},
    {"syslog", "tcp_port", CFG_INT, "514", 0, 65535, OFF(sl_tcp_port), 0, NULL,
     "syslog TCP port, octet-counted or newline framed (0 = any free "
     "port)"},
    {"syslog", "max_message", CFG_SIZE, "64k", 480, 1LL << 20,
     OFF(sl_max_message), 0, NULL,
     "longest message; longer ones are kept cut, as malformed"},
    {"syslog", "worker", CFG_BOOL, "yes", 0, 0, OFF(sl_worker), 0, NULL,
     "receive and parse the messages in a syslog worker process "
     "(unprivileged and sandboxed; the core stores what it sends)"},
    {"forward", "targets", CFG_STR, NULL, 0, 0, OFF(fwd_targets), 0, NULL,
     "file of SIEM forwarding targets, one [name] section each (see "
     "docs/forwarding.md)"},
    {"center", "role", CFG_ENUM, "center", 0, 0, OFF(role), 0,
     "center|collector|master",
     "collector: also run the analysis collector, which centers forward "
     "to over [collector] port (docs/collector.md); master: also steer "
     "the centers of [master] centers (docs/master.md)"},
    {"manage", "enable", CFG_BOOL, "no", 0, 0, OFF(mg_enable), 0, NULL,
     "listen for the master on [manage] port (mutual TLS, role master "
     "only)"},
    {"manage", "listen", CFG_STR, "0.0.0.0", 0, 0, OFF(mg_listen), 0, NULL,
     "address of the management port"},
    {"manage", "port", CFG_INT, "5443", 0, 65535, OFF(mg_port), 0, NULL,
     "the management port (0 = any free port)"},
    {"master", "cert_file", CFG_STR, NULL, 0, 0, OFF(ms_cert), 0, NULL,
     "role master: the master's certificate, of role master (vigilctl pki "
     "issue --role master)"},
    {"master", "key_file", CFG_STR, NULL, 0, 0, OFF(ms_key), 0, NULL,
     "its private key"},
    {"master", "centers", CFG_STR, NULL, 0, 0, OFF(ms_centers), 0, NULL,
     "role master: the centers it manages, NAME=https://HOST:PORT (their "
     "[manage] port), comma-separated"},
    {"collector", "listen", CFG_STR, "0.0.0.0", 0, 0, OFF(coll_listen), 0, NULL,
     "address of the collector feed (role collector)"},
    {"collector", "port", CFG_INT, "7443", 0, 65535, OFF(coll_port), 0, NULL,
     "port of the collector feed, mutual TLS, centers only (0 = any free "
     "port)"},
    {"collector", "cert_file", CFG_STR, NULL, 0, 0, OFF(coll_cert), 0, NULL,
     "the collector's certificate, of role collector (vigilctl pki issue "
     "--role collector); required with role collector"},
    {"collector", "key_file", CFG_STR, NULL, 0, 0, OFF(coll_key), 0, NULL,
     "its private key"},
    {"admin", "login_rate", CFG_INT, "10", 1, 100000, OFF(login_rate), 0, NULL,
     "login attempts per source address per minute (429 beyond)"},
    {"admin", "login_max_failures", CFG_INT, "5", 1, 1000,
     OFF(login_max_failures), 0, NULL,
     "consecutive failed logins that lock an account"},
    {"admin", "lockout", CFG_DURATION, "15m", 1, DAY, OFF(lockout), 0, NULL,
     "how long a locked account refuses logins"},
    {"admin", "session_idle", CFG_DURATION, "30m", 1, 7 * DAY,
     OFF(session_idle), 0, NULL, "a session unused this long ends"},
    {"admin", "session_lifetime", CFG_DURATION, "12h", 1, 30 * DAY,
     OFF(session_lifetime), 0, NULL,
     "a session ends this long after login, however busy"},
    {"admin", "max_streams", CFG_INT, "256", 0, 65536, OFF(max_streams), 0,
     NULL,
     "live update streams (GET /api/v1/stream) open at once, on top of "
     "the admin API's other connections; 0: none (the console polls)"},
    {"admin", "stream_keepalive", CFG_DURATION, "20s", 1, 300,
     OFF(stream_keepalive), 0, NULL,
     "a live update stream gets a comment line this often, and its "
     "credentials are checked again"},
    {"admin", "stream_queue", CFG_SIZE, "256k", 1024, 64LL << 20,
     OFF(stream_queue), 0, NULL,
     "bytes waiting for one stream's client; beyond, the client is "
     "not reading and is dropped"},
    {"ldap", "uri", CFG_STR, NULL, 0, 0, OFF(ldap_uri), 0, NULL,
     "directory to authenticate users not found locally: ldaps://host, or "
     "ldap://host with starttls (unset: no LDAP)"},
    {"ldap", "ca_file", CFG_STR, NULL, 0, 0, OFF(ldap_ca_file), 0, NULL,
     "CA certificate(s) the directory's certificate must verify against"},
    {"ldap", "starttls", CFG_BOOL, "no", 0, 0, OFF(ldap_starttls), 0, NULL,
     "upgrade an ldap:// connection with StartTLS (required to succeed)"},
    {"ldap", "timeout", CFG_DURATION, "5s", 1, 60, OFF(ldap_timeout), 0, NULL,
     "network and search time limit of each directory call"},
    {"ldap", "user_dn", CFG_STR, NULL, 0, 0, OFF(ldap_user_dn), 0, NULL,
     "DN of a user, %s = the login name, e.g. uid=%s,ou=people,dc=example,"
     "dc=org"},
    {"ldap", "search_base", CFG_STR, NULL, 0, 0, OFF(ldap_search_base), 0, NULL,
     "instead of user_dn: where to search for the user's entry"},
    {"ldap", "search_filter", CFG_STR, "(uid=%s)", 0, 0,
     OFF(ldap_search_filter), 0, NULL,
     "filter of that search, %s = the login name (escaped)"},
    {"ldap", "bind_dn", CFG_STR, NULL, 0, 0, OFF(ldap_bind_dn), 0, NULL,
     "DN to bind as for that search (unset: anonymous)"},
    {"ldap", "bind_password_file", CFG_STR, NULL, 0, 0,
     OFF(ldap_bind_password_file), 0, NULL,
     "file (0600) with bind_dn's password"},
    {"ldap", "group_base", CFG_STR, NULL, 0, 0, OFF(ldap_group_base), 0, NULL,
     "where to search for the user's groups"},
    {"ldap", "group_filter", CFG_STR, "(member=%s)", 0, 0,
     OFF(ldap_group_filter), 0, NULL,
     "filter finding the user's groups, %s = the user's DN (escaped)"},
    {"ldap", "admin_groups", CFG_STR, NULL, 0, 0, OFF(ldap_groups[ROLE_ADMIN]),
     0, NULL, "groups (CNs or DNs, separated by ';') whose members are admins"},
    {"ldap", "operator_groups", CFG_STR, NULL, 0, 0,
     OFF(ldap_groups[ROLE_OPERATOR]), 0, NULL,
     "groups whose members are operators"},
    {"ldap", "analyst_groups", CFG_STR, NULL, 0, 0,
     OFF(ldap_groups[ROLE_ANALYST]), 0, NULL,
     "groups whose members are analysts"},
    {"ldap", "readonly_groups", CFG_STR, NULL, 0, 0,
     OFF(ldap_groups[ROLE_READONLY]), 0, NULL, "groups whose members may read"},
    INTELC_CFG_KEYS(OFF(intel), "; default pki_dir/ca.crt"),
    {"intel", "cache_ttl", CFG_DURATION, "10m", 1, 7 * DAY,
     OFF(intel_cache_ttl), 0, NULL,
     "how long an answer to agents' reputation requests is kept"},
    {"intel", "cache_size", CFG_INT, "100000", 16, 10000000,
     OFF(intel_cache_size), 0, NULL,
     "reputation answers kept in memory, at most"},
    {"updates", "root", CFG_STR, NULL, 0, 0, OFF(upd_root), 0, NULL,
     "the update repository's root.json this center trusts (from the "
     "offline root key's holder); the mirror is off while unset"},
    {"updates", "upstream", CFG_STR, NULL, 0, 0, OFF(upd_upstream), 0, NULL,
     "https://HOST:PORT/PATH/ of the repository to mirror; unset: the "
     "repository in dir, filled by vigilctl update import"},
    {"updates", "dir", CFG_STR, "", 0, 0, OFF(upd_dir), 0, NULL,
     "where the verified repository is kept; default data_dir/updates"},
    {"updates", "ca", CFG_STR, NULL, 0, 0, OFF(upd_ca), 0, NULL,
     "CA file that signed the upstream's certificate (required with "
     "upstream; the system store is never used)"},
    {"updates", "cert", CFG_STR, NULL, 0, 0, OFF(upd_cert), 0, NULL,
     "client certificate (PEM) for the upstream, if it asks for one"},
    {"updates", "key", CFG_STR, NULL, 0, 0, OFF(upd_key), 0, NULL,
     "the client certificate's key (0600)"},
    {"updates", "proxy", CFG_STR, NULL, 0, 0, OFF(upd_proxy), 0, NULL,
     "HTTP CONNECT proxy to the upstream, http://HOST:PORT (Basic "
     "authentication or none; NTLM and Negotiate are refused)"},
    {"updates", "proxy_user_file", CFG_STR, NULL, 0, 0,
     OFF(upd_proxy_user_file), 0, NULL,
     "file (0600) holding USER:PASSWORD for the proxy's Basic "
     "authentication"},
    {"updates", "interval", CFG_DURATION, "5m", 1, DAY, OFF(upd_interval), 0,
     NULL, "time between two checks of the upstream (or of dir)"},
    {"updates", "timeout", CFG_DURATION, "60s", 1, 3600, OFF(upd_timeout), 0,
     NULL, "time allowed for one request to the upstream"},
    {"updates", "listen", CFG_STR, NULL, 0, 0, OFF(upd_listen), 0, NULL,
     "address of a listener of its own for update traffic (a client "
     "certificate of role agent, or center for a downstream mirror, "
     "required); unset: the gateway only"},
    {"updates", "port", CFG_INT, "18443", 0, 65535, OFF(upd_port), 0, NULL,
     "port of that listener"},
    {"updates", "intel_cert", CFG_STR, NULL, 0, 0, OFF(upd_intel_cert), 0, NULL,
     "client certificate of role update (vigilctl pki issue --role "
     "update) with which intelligence feeds that arrive by update are "
     "imported into vigil-inteld ([intel] url)"},
    {"updates", "intel_key", CFG_STR, NULL, 0, 0, OFF(upd_intel_key), 0, NULL,
     "that certificate's key (0600)"},
    {"updates", "intel_api_key_file", CFG_STR, NULL, 0, 0,
     OFF(upd_intel_api_key_file), 0, NULL,
     "file (0600) holding an admin API key of vigil-inteld, instead of "
     "intel_cert"},
    {NULL, NULL, 0, NULL, 0, 0, 0, 0, NULL, NULL},
};

int
center_conf_load(const char *path, struct center_conf *c, struct buf *err)
{
	long cores;
	int rc;

	memset(c, 0, sizeof(*c));
	rc = cfg_load_file(center_conf_keys, c, path, err);
	/* [gateway] workers = auto: one per core this machine has. */
	if (c->gw_workers == -1) {
		cores = sysconf(_SC_NPROCESSORS_ONLN);
		c->gw_workers = cores < 1 ? 1 : cores > 64 ? 64 : cores;
	}
	return rc;
}

void
center_conf_free(struct center_conf *c)
{
	cfg_free(center_conf_keys, c);
}

static void
join(char *out, size_t n, const char *dir, const char *file)
{
	if ((size_t)snprintf(out, n, "%s/%s", dir, file) >= n)
		fatalx("%s: path too long: %s/%s", __func__, dir, file);
}

void
center_paths_init(const struct center_conf *c, struct center_paths *p)
{
	join(p->ca_crt, sizeof(p->ca_crt), c->pki_dir, "ca.crt");
	join(p->ca_key, sizeof(p->ca_key), c->pki_dir, "ca.key");
	join(p->server_crt, sizeof(p->server_crt), c->pki_dir, "server.crt");
	join(p->server_key, sizeof(p->server_key), c->pki_dir, "server.key");
	join(p->db, sizeof(p->db), c->data_dir, "vigil.db");
	join(p->admin_key, sizeof(p->admin_key), c->data_dir, "admin.key");
	join(p->ports, sizeof(p->ports), c->data_dir, "vigild.ports");
	join(p->tickets, sizeof(p->tickets), c->data_dir, "tickets.key");
}

static void
check_expiry(X509 *x, const char *path, int *nerr)
{
	long long left = tls_not_after(x) - (long long)time(NULL);

	if (left <= 0) {
		log_warnx("check: %s: certificate has expired; issue a new "
		          "one (vigilctl pki init --force for a new "
		          "deployment)",
		          path);
		(*nerr)++;
	} else if (left < 30 * DAY)
		log_warnx("check: %s: certificate expires in %lld days; "
		          "renew it soon",
		          path, left / DAY);
	if (tls_not_before(x) > (long long)time(NULL))
		log_warnx("check: %s: certificate is not valid yet; is this "
		          "host's clock right?",
		          path);
}

static int
verify_chain(X509 *leaf, STACK_OF(X509) * extra, X509 *ca, const char *path)
{
	X509_STORE *st = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	int ok = -1;

	if (st == NULL || ctx == NULL || X509_STORE_add_cert(st, ca) != 1 ||
	    X509_STORE_CTX_init(ctx, st, leaf, extra) != 1)
		goto done;
	if (X509_verify_cert(ctx) == 1)
		ok = 0;
	else
		log_warnx("check: %s: does not verify against the CA: %s", path,
		          tls_verify_error_text(X509_STORE_CTX_get_error(ctx)));
done:
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(st);
	return ok;
}

/*
 * The vigild that runs with this data directory, from the vigild.ports file
 * it writes once it listens: its pid, when that process is alive and is a
 * vigild. Returns 0 and fills *pid and the ports it bound, else -1.
 */
static int
running_center(const struct center_paths *p, long *pid, long long ports[5])
{
	char exe[PATH_MAX], link[64];
	const char *base;
	json_t *j;
	ssize_t n;
	int rc = -1;

	if ((j = json_load_file(p->ports, 0, NULL)) == NULL)
		return -1;
	*pid = (long)json_integer_value(json_object_get(j, "pid"));
	ports[0] = json_integer_value(json_object_get(j, "gateway"));
	ports[1] = json_integer_value(json_object_get(j, "admin"));
	ports[2] = json_integer_value(json_object_get(j, "syslog_tcp"));
	ports[3] = json_integer_value(json_object_get(j, "collector"));
	ports[4] = json_integer_value(json_object_get(j, "manage"));
	json_decref(j);
	if (*pid <= 1 || *pid == (long)getpid())
		return -1;
	snprintf(link, sizeof(link), "/proc/%ld/exe", *pid);
	if ((n = readlink(link, exe, sizeof(exe) - 1)) <= 0)
		return -1;
	exe[n] = '\0';
	base = strrchr(exe, '/') != NULL ? strrchr(exe, '/') + 1 : exe;
	if (strncmp(base, "vigild", 6) == 0 &&
	    (base[6] == '\0' || strcmp(base + 6, " (deleted)") == 0))
		rc = 0;
	return rc;
}

/*
 * Can host:port be bound? A port held by the running vigild of this very
 * configuration (same data directory, so same vigild.ports) is fine for
 * `vigild -n` (check, then reload), and named as such when starting.
 */
static int
check_bind(const struct center_paths *p, const char *host, long long port,
           int slot, const char *what, int check_only)
{
	struct addrinfo hints, *res = NULL;
	long long held[5];
	char serv[16];
	long pid;
	int fd = -1, rc = -1, one = 1, gai, e;

	if (port == 0)
		return 0;
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST;
	snprintf(serv, sizeof(serv), "%lld", port);
	if ((gai = getaddrinfo(host, serv, &hints, &res)) != 0) {
		log_warnx("check: [%s] listen = %s: not a numeric address "
		          "(%s)",
		          what, host, gai_strerror(gai));
		return -1;
	}
	if ((fd = socket(res->ai_family, SOCK_STREAM, 0)) == -1)
		goto fail;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, res->ai_addr, res->ai_addrlen) == -1)
		goto fail;
	rc = 0;
fail:
	e = errno;
	if (rc == -1 && e == EADDRINUSE && running_center(p, &pid, held) == 0 &&
	    held[slot] == port) {
		if (check_only) {
			log_info("check: [%s] %s:%lld: held by the running "
			         "vigild (pid %ld) of this configuration; not "
			         "bound again",
			         what, host, port, pid);
			rc = 0;
		} else
			log_warnx("check: [%s] %s:%lld: held by a vigild "
			          "already running with this data directory "
			          "(pid %ld); stop it first, or reload it with "
			          "kill -HUP %ld",
			          what, host, port, pid, pid);
	} else if (rc == -1) {
		log_warnx("check: [%s] %s:%lld: cannot bind: %s%s", what, host,
		          port, strerror(e),
		          e == EADDRINUSE ? " (another program has this port; "
		                            "stop it or change the port)"
		          : e == EACCES   ? " (ports below 1024 need root or "
		                            "CAP_NET_BIND_SERVICE)"
		                          : "");
	}
	if (fd != -1)
		close(fd);
	freeaddrinfo(res);
	return rc;
}

/*
 * [store] url: a PostgreSQL URL, and with -n, a database that answers
 * (read only: -n writes nothing, and the schema is vigild's at start).
 */
static int
check_store_url(const char *url, int check_only)
{
	struct store *s;
	struct buf err;
	int bad = 0;

	if (!store_is_url(url)) {
		log_warnx("check: [store] url: %s: not a PostgreSQL URL "
		          "(postgresql://user@host:port/db?sslmode=...)",
		          store_redact_url(url));
		return 1;
	}
	if (!check_only)
		return 0;
	buf_init(&err, 4096);
	if ((s = store_open_readonly(url, &err)) == NULL ||
	    store_quick_check(s, store_redact_url(url), &err) == -1) {
		log_warnx("check: [store] url: %s", buf_cstr(&err));
		bad = 1;
	} else
		log_info("check: [store] url: %s answers",
		         store_redact_url(url));
	store_close(s);
	buf_free(&err);
	return bad;
}

int
center_check(const struct center_conf *c, const struct center_paths *p,
             int check_only)
{
	struct buf err;
	X509 *ca = NULL, *srv = NULL;
	STACK_OF(X509) *chain = NULL;
	EVP_PKEY *key = NULL;
	struct stat st;
	int nerr = ldapauth_check(c);
	uid_t uid;
	gid_t gid;

	buf_init(&err, 4096);
	if (geteuid() == 0 && strcmp(c->user, "root") != 0 &&
	    priv_lookup(c->user, "[center] user", &uid, &gid, &err) == -1) {
		log_warnx("check: %s", buf_cstr(&err));
		buf_reset(&err);
		nerr++;
	}
	if ((ca = tls_load_cert(p->ca_crt, &err)) == NULL) {
		log_warnx("check: %s; create the PKI with: vigilctl pki init "
		          "--dir %s --domain %s",
		          buf_cstr(&err), c->pki_dir, c->fqdn);
		nerr++;
		goto out;
	}
	check_expiry(ca, p->ca_crt, &nerr);
	/* The CA key is the key process's; here only its permissions are
	 * checked, the key itself is never loaded by this process. */
	buf_reset(&err);
	if (stat(p->ca_key, &st) == -1) {
		log_warnx("check: %s: %s; the key process needs the CA key "
		          "to sign agent certificates",
		          p->ca_key, strerror(errno));
		nerr++;
	} else if (tls_check_key_perms(p->ca_key, &err) == -1) {
		log_warnx("check: %s", buf_cstr(&err));
		nerr++;
	}
	buf_reset(&err);
	if ((srv = tls_load_cert(p->server_crt, &err)) == NULL ||
	    (chain = tls_load_certs(p->server_crt, &err)) == NULL) {
		log_warnx("check: %s", buf_cstr(&err));
		nerr++;
		goto out;
	}
	check_expiry(srv, p->server_crt, &nerr);
	if (verify_chain(srv, chain, ca, p->server_crt) == -1)
		nerr++;
	buf_reset(&err);
	if (pki_check_cert_role(p->server_crt,
	                        PKI_ROLE_BIT(PKI_ROLE_CENTER) |
	                            PKI_ROLE_BIT(PKI_ROLE_NONE),
	                        "vigild's server certificate", &err) == -1) {
		log_warnx("check: %s; issue one with vigilctl pki issue "
		          "--role center, or vigilctl pki init",
		          buf_cstr(&err));
		nerr++;
	}
	if (c->node_name != NULL &&
	    (c->node_name[0] == '\0' || strlen(c->node_name) > 100 ||
	     strspn(c->node_name, "abcdefghijklmnopqrstuvwxyz"
	                          "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-") !=
	         strlen(c->node_name))) {
		log_warnx("check: [center] node_name = %s: 1 to 100 of "
		          "A-Z a-z 0-9 . _ : - (it names the node in the "
		          "database, metrics and the nodes' messages)",
		          c->node_name);
		nerr++;
	}
	if (c->node_url != NULL && !node_url_ok(c->node_url)) {
		log_warnx("check: [center] node_url = %s: give it as "
		          "https://HOST[:PORT], a name the server certificate "
		          "holds",
		          c->node_url);
		nerr++;
	}
	if (!tls_cert_names_host(srv, c->fqdn)) {
		log_warnx("check: %s: does not name %s (the [center] fqdn) in "
		          "subjectAltName; agents would refuse it. Issue one "
		          "for this name: vigilctl pki init --dir %s "
		          "--domain %s --force",
		          p->server_crt, c->fqdn, c->pki_dir, c->fqdn);
		nerr++;
	}
	buf_reset(&err);
	if ((key = tls_load_key(p->server_key, &err)) == NULL) {
		log_warnx("check: %s", buf_cstr(&err));
		nerr++;
	} else if (!pki_key_matches(srv, key)) {
		log_warnx("check: %s does not belong to %s; copy the matching "
		          "pair from the same `vigilctl pki init`",
		          p->server_key, p->server_crt);
		nerr++;
	}
	if (c->fwd_targets != NULL) {
		buf_reset(&err);
		if (forward_check_file(c->fwd_targets, c->fqdn, c->pki_dir,
		                       &err) == -1) {
			log_warnx("check: %s", buf_cstr(&err));
			nerr++;
		}
	}
out:
	if (c->store_url != NULL && check_store_url(c->store_url, check_only))
		nerr++;
	if (c->intel.url != NULL) {
		struct intelc_conf ic = c->intel;
		struct intelc *cl = NULL;

		if (ic.ca == NULL)
			ic.ca = (char *)p->ca_crt;
		buf_reset(&err);
		if (intelc_new(&ic, &cl, &err) == -1) {
			log_warnx("check: %s", buf_cstr(&err));
			nerr++;
		}
		intelc_free(cl);
	}
	nerr += updates_check(c);
	if (c->adm_console != NULL && console_check(c->adm_console))
		nerr++;
	if (c->role == CENTER_ROLE_COLLECTOR)
		nerr += collector_check(c, p->ca_crt);
	if (c->role == CENTER_ROLE_MASTER)
		nerr += master_check(c);
	if (check_bind(p, c->gw_listen, c->gw_port, 0, "gateway", check_only))
		nerr++;
	if (check_bind(p, c->adm_listen, c->adm_port, 1, "admin", check_only))
		nerr++;
	if (c->sl_enable && check_bind(p, c->sl_listen, c->sl_tcp_port, 2,
	                               "syslog", check_only))
		nerr++;
	if (c->role == CENTER_ROLE_COLLECTOR &&
	    check_bind(p, c->coll_listen, c->coll_port, 3, "collector",
	               check_only))
		nerr++;
	if (c->mg_enable &&
	    check_bind(p, c->mg_listen, c->mg_port, 4, "manage", check_only))
		nerr++;
	EVP_PKEY_free(key);
	sk_X509_pop_free(chain, X509_free);
	X509_free(srv);
	X509_free(ca);
	buf_free(&err);
	return nerr;
}
