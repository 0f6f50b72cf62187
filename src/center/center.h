/*
 * center.h: state shared by the parts of vigild. One process runs the event
 * loop (gateway + admin listeners + store); a forked key process holds the
 * CA private key and signs certificates on request (keyproc.c).
 */
#ifndef VIGIL_CENTER_H
#define VIGIL_CENTER_H

#include <event2/event.h>
#include <jansson.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/types.h>

#include "buf.h"
#include "config.h"
#include "http.h"
#include "intelc.h"
#include "log.h"
#include "store.h"

/* Shortest agent certificate lifetime: config bound and key process check. */
#define CENTER_MIN_CERT_LIFETIME 30
/* Admin listener connections at once, besides live update streams (in
 * the core, or in the admin worker). */
#define ADMIN_MAX_CONNS 256

struct center_conf {
	/* [center] */
	char *fqdn;
	char *data_dir;
	char *pki_dir;
	char *user; /* run as, when started as root */
	int require_approval;
	long long agent_cert_lifetime;  /* seconds */
	long long poll_interval;        /* seconds */
	int store_check;                /* quick_check at start */
	long long store_check_interval; /* seconds between checks; 0 = off */
	char *store_url;                /* [store] url: PostgreSQL, or NULL */
	char *node_name; /* [center] node_name: this node on a shared store */
	char *node_url;  /* [center] node_url: its gateway, for agents */
	long long node_lease; /* seconds before a dead node's work moves */
	long long seen_flush; /* seconds between last_seen writes; 0 = each */
	long long min_free_space; /* bytes; below it, no new data */
	int log_dest;             /* enum log_dest */
	int log_level;            /* enum log_level */
	/* [gateway] */
	char *gw_listen;
	long long gw_port;
	long long gw_max_body;
	long long gw_timeout;
	long long gw_max_conns;
	long long gw_handshake_timeout;
	long long gw_tickets; /* session ticket lifetime; 0 = no resumption */
	long long gw_request_timeout;
	long long gw_max_per_addr;
	long long gw_workers;  /* gateway worker processes (0 = none) */
	long long enroll_rate; /* attempts per source address per minute */
	int clone_policy;      /* enum clone_policy */
	long long clone_limit; /* clones per original agent without a token */
	long long max_long_polls;
	long long sample_quota; /* bytes of samples per agent */
	/* [admin] */
	char *adm_listen;
	long long adm_port;
	long long adm_max_body;
	long long adm_timeout;
	char *adm_console; /* directory of the built web console, "" = none */
	long long adm_handshake_timeout;
	long long adm_request_timeout;
	long long adm_max_per_addr;
	int adm_worker; /* the admin listener in an admin worker process */
	/* [syslog] */
	int sl_enable;
	char *sl_listen;
	long long sl_udp_port;
	long long sl_tcp_port;
	long long sl_max_message;
	int sl_worker;
	/* [forward] */
	char *fwd_targets; /* file of forwarding targets, or NULL */
	/* [center] role, [collector] (docs/collector.md) */
	int role; /* enum center_role */
	char *coll_listen;
	long long coll_port;
	char *coll_cert, *coll_key;
	/* [manage] (a center's port for its master), [master] */
	int mg_enable;
	char *mg_listen;
	long long mg_port;
	char *ms_cert, *ms_key, *ms_centers;
	long long login_rate;         /* login attempts per source per minute */
	long long login_max_failures; /* consecutive failures before lockout */
	long long lockout;            /* seconds an account stays locked */
	long long session_idle;       /* seconds */
	long long session_lifetime;   /* seconds */
	long long max_streams;        /* live update streams, all in all */
	long long stream_keepalive;   /* seconds */
	long long stream_queue;       /* bytes waiting for one stream */
	/* [ldap] (optional identity source; off while uri is NULL) */
	char *ldap_uri;
	char *ldap_ca_file;
	int ldap_starttls;
	long long ldap_timeout;
	char *ldap_user_dn;       /* "uid=%s,ou=people,dc=example,dc=org" */
	char *ldap_search_base;   /* or: find the user's DN by search */
	char *ldap_search_filter; /* "(uid=%s)" */
	char *ldap_bind_dn;       /* for that search; NULL = anonymous */
	char *ldap_bind_password_file;
	char *ldap_group_base;
	char *ldap_group_filter; /* "(member=%s)", %s = the user's DN */
	char *ldap_groups[5];    /* by role: ';'-separated CNs or DNs */
	/* [intel] (vigil-inteld; off while url is NULL) */
	struct intelc_conf intel;
	long long intel_cache_ttl;  /* seconds a reputation answer is kept */
	long long intel_cache_size; /* answers kept, at most */
	/* [updates] (the update mirror, updates.c; off while root is NULL) */
	char *upd_root;     /* the pinned root.json (trust anchor) */
	char *upd_upstream; /* https://HOST:PORT/PATH/, or NULL: imports */
	char *upd_dir;      /* the verified repository; "" = data_dir/updates */
	char *upd_ca, *upd_cert, *upd_key;
	char *upd_proxy, *upd_proxy_user_file;
	long long upd_interval; /* seconds between upstream checks */
	long long upd_timeout;  /* seconds for one upstream request */
	char *upd_listen;       /* own listener, or NULL: gateway only */
	long long upd_port;
	/* inteld's admin credential for feeds by update ([intel] url) */
	char *upd_intel_cert, *upd_intel_key, *upd_intel_api_key_file;
};

enum center_role {
	CENTER_ROLE_CENTER,
	CENTER_ROLE_COLLECTOR,
	CENTER_ROLE_MASTER
};

/* The management protocol between a master and its centers (manage.c,
 * master.c): MAJOR.MINOR; a master manages only centers of its major. */
#define VIGIL_MANAGE_PROTOCOL "1.0"

/* Paths derived from pki_dir. */
enum clone_policy { CLONE_LIMIT, CLONE_TOKEN, CLONE_ALLOW };

struct center_paths {
	char ca_crt[4096], ca_key[4096], server_crt[4096], server_key[4096];
	char db[4096], admin_key[4096], ports[4096], tickets[4096];
};

struct center {
	const char *conf_path;
	struct center_conf conf;
	struct center_paths paths;
	struct event_base *base;
	struct store *store;
	struct fwd *fwd;   /* forward.c: the running targets */
	X509 *ca;          /* the CA certificate (public part only) */
	char ca_pem[8192]; /* PEM of ca, sent to agents */
	SSL_CTX *gw_ctx, *adm_ctx;
	struct http_server *gw, *adm;
	int gw_port, adm_port; /* bound ports */
	int keyfd;             /* socketpair to the key process */
	int monfd;             /* socketpair to the key monitor, which
	                          hands over keyfd (keyproc.c) */
	pid_t keypid;          /* the key monitor */
	struct gwproc *gwp;    /* gateway workers (gwproc.c) or NULL */
	int gw_lfd[64];        /* listening sockets of gateway workers 1..n-1
	                          (SO_REUSEPORT; worker 0 takes the first) */
	int gw_nlfd;
	struct gwproc *admp; /* the admin worker (gwproc.c) or NULL */
	struct gwproc *slp;  /* the syslog worker (gwproc.c) or NULL */
	int foreground;      /* vigild -d */
	int dropped;         /* gave up root for [center] user */
	uint64_t keyseq;
	struct ratelimit *enroll_rl;
	struct ratelimit *login_rl;
	struct store *rl_store;  /* PostgreSQL: the limiters' own connection */
	struct console *console; /* the web console's files, or NULL */
	struct streams *streams; /* stream.c: live update streams */
	char dummy_hash[128];    /* verified against for unknown users */
	struct event *ev_term, *ev_int, *ev_hup, *ev_chld, *ev_keyrestart;
	long long key_started, key_backoff;        /* key process restarts */
	struct event *ev_stop;                     /* graceful stop */
	struct event *ev_storecheck;               /* periodic quick_check */
	struct http_route *gw_routes, *adm_routes; /* merged tables */
	struct waiter **waiters; /* held task polls by agent */
	size_t waiter_buckets;   /* of waiters: a power of 2 */
	int nwaiters;
	/* agents with new runs of a task, to be woken a slice per loop
	 * turn (tasks.c), oldest task first */
	struct wake_batch *wake_head, **wake_tail;
	struct event *ev_wake;
	/* task status reports waiting for this turn's commit (tasks_poll.c) */
	struct status_job *status_head, **status_tail;
	size_t nstatus;
	struct event *ev_status;
	struct event *ev_tick;
	long long last_sched_minute;
	struct ingest *ingest;        /* event batch writer thread */
	struct intel *intel;          /* intel.c: vigil-inteld threads */
	int sl_udp_port, sl_tcp_port; /* bound syslog listener ports */
	struct collector *coll;       /* collector.c, role collector only */
	int coll_port;                /* its bound port */
	SSL_CTX *mg_ctx;              /* manage.c: the master's port */
	struct http_server *mg;
	int mg_port;
	long long stopping;        /* when the stop began */
	double stop_t0;            /* the same, mono_now() */
	long long replied_changes; /* store_changes() after the last
	                              admin change was answered */
	long long started;
	struct node *node;     /* node.c: this node among those on the store */
	struct updates *upd;   /* updates.c: the mirror, or NULL */
	struct master *master; /* master.c, role master only */
};

/* conf.c */
extern const struct cfg_key center_conf_keys[];
int center_conf_load(const char *path, struct center_conf *c, struct buf *err);
void center_conf_free(struct center_conf *c);
void center_paths_init(const struct center_conf *c, struct center_paths *p);
/* The start checks behind `vigild -n`: returns the number of errors;
 * warnings are logged but do not count. The listen ports must be free;
 * with check_only (-n), a port held by the running vigild of this
 * configuration (found through its vigild.ports) passes, and says so. */
int center_check(const struct center_conf *c, const struct center_paths *p,
                 int check_only);

/* keyproc.c */
int keyproc_start(struct center *c, struct buf *err);
/* coresandbox.c: the core's seccomp deny-list, loaded once root is
 * dropped; -1 and err when it cannot be loaded. */
int core_sandbox(struct buf *err);
void keyproc_stop(struct center *c);
/* main.c: restart after the key process died, with backoff. */
void keyproc_restart_later(struct center *c);
/* Signs csr_pem for agent uuid cn; PEM certificate into out. -1 with a
 * message in err (CSR problems are the caller's 400). */
int keyproc_sign(struct center *c, const char *csr_pem, const char *cn,
                 long long lifetime, const char *requester, struct buf *out,
                 struct buf *err);

/* seen.c: agents' last check-in in memory, written in batches */
int seen_init(struct center *c);
void seen_flush(struct center *c);
void seen_shutdown(struct center *c); /* flushes */
uint64_t seen_digest(const char *const *fields, size_t n);
/* Notes a heartbeat at now with facts of this digest: 1 when the caller
 * must write the row now (then seen_wrote once it is written), 0 when the
 * time waits for the next flush. force: write now (back online). */
int seen_note(struct center *c, const char *id, long long now, uint64_t facts,
              int force);
void seen_wrote(const char *id, uint64_t facts);
/* An agent not noted since the start, with the digest of the facts its
 * row holds: a first heartbeat that brings the same is then batched. */
int seen_prime(const char *id, uint64_t facts);
long long seen_last(const char *id); /* noted time, or 0 */

/* db.c */
extern const char *const center_migrations[];
/* Opens c->store after refusing a lost or damaged database (see db.c). */
int center_store_open(struct center *c, struct buf *err);
/* What store_open opens: [store] url, or the SQLite file in data_dir. */
const char *center_store_target(const struct center *c);
/* The same for messages (no password). */
const char *center_store_name(const struct center *c);
/* vigild --store-copy (storecopy.c): the SQLite database from into the
 * empty PostgreSQL database of [store] url, checked. */
int center_store_copy(struct center *c, const char *from, struct buf *err);
/* Runs the store's quick_check every [center] store_check_interval and
 * publishes vigil_store_integrity_ok; -1 when the timer cannot be set. */
int center_store_check_start(struct center *c);
extern const size_t center_nmigrations;
int db_is_revoked(struct store *s, const char *serial);
/* 1 when serial is the latest certificate of the active agent agent_id. */
int db_is_current_cert(struct store *s, const char *agent_id,
                       const char *serial);
/* Records a newly issued certificate and returns 0. */
int db_add_cert(struct store *s, const char *agent_id, X509 *cert);
json_t *db_agent_json(struct store_rows *r); /* row of AGENT_COLUMNS */
#define AGENT_COLUMNS                                                          \
	"id, status, hostname, fqdn, os, kernel, arch, ips, macs, "            \
	"machine_id, agent_version, labels, enrolled_at, last_seen, "          \
	"cert_serial, cert_not_after, cloned_from, clone_detected_at, updates"

/* updates.c: the update mirror (docs/updates.md) */
extern const struct http_route updates_gateway_routes[];
extern const struct http_route updates_admin_routes[];
int updates_check(const struct center_conf *cf);      /* errors of vigild -n */
int updates_start(struct center *c, struct buf *err); /* before drop */
int updates_run(struct center *c, struct buf *err);   /* after */
int updates_listen(struct center *c, const struct http_limits *l,
                   struct buf *err);
int updates_port(struct center *c); /* the own listener's, or 0 */
void updates_stop(struct center *c);
/* The pinned root handed to agents at enrollment, or NULL. */
const char *updates_anchor(struct center *c);
/* The served target name ({name, kind, version, platform, length,
 * sha256}, a new reference), or NULL. */
json_t *updates_target(struct center *c, const char *name);

/* rollout.c: staged agent upgrades */
extern const struct http_route rollout_admin_routes[];
struct host_facts;
/* {"target", "sha256", "version", "probation"} when a rollout tells this
 * agent to upgrade, else NULL. May halt a rollout. */
json_t *rollout_heartbeat(struct center *c, const char *agent_id,
                          const struct host_facts *f);

/* openapi_json.c, generated from docs/openapi.json (cmake/embed.cmake) */
extern const unsigned char openapi_json[];
extern const size_t openapi_json_len;
/*
 * Roles of admin users and API keys, in rising order of privilege; each
 * role can do everything the ones below it can. A route's role field
 * names the least role it needs: ROLE_NONE (0, a route written without
 * one) means ROLE_ADMIN; ROLE_PUBLIC needs no authentication.
 */
enum role {
	ROLE_PUBLIC = -1,
	ROLE_NONE = 0,
	ROLE_READONLY = 1, /* read everything */
	ROLE_ANALYST = 2,  /* + manage findings */
	ROLE_OPERATOR = 3, /* + run tasks, manage agents, tokens, rules */
	ROLE_ADMIN = 4,    /* + users, everyone's API keys, settings */
};

/* cred.c: pure pieces (unit tested) */
int role_parse(const char *s); /* ROLE_NONE when not a role name */
const char *role_name(int role);
int role_needed(const struct http_route *rt);
#define PW_HASH_MAX 128
int pw_hash(const char *pw, char *out, size_t n);   /* argon2id, encoded */
int pw_verify(const char *encoded, const char *pw); /* 1 when it matches */
int pw_acceptable(const char *pw, const char **why);
#define TOTP_SECRET_BYTES 20 /* 160 bits, RFC 4226's recommendation */
#define TOTP_WINDOW       1  /* steps accepted either side of now */
int totp_new_secret(char *b32, size_t n); /* base32, n >= 40 */
/* The time step of code when valid at now and newer than last_step; -2 for
 * a replay (valid but step <= last_step); -1 when not valid. */
long long totp_check(const char *b32, const char *code, long long now,
                     long long last_step);

/* Whether name is in a ';'-separated list (ASCII case-insensitive, blanks
 * around items ignored). ';', not ',': items may be DNs. */
int list_has(const char *list, const char *name);
/* RFC 4515 filter value and RFC 4514 DN value escaping; -1 when out (size
 * n) is too small. */
int ldap_filter_escape(const char *in, char *out, size_t n);
int ldap_dn_escape(const char *in, char *out, size_t n);
/* Fills into the %s of a one-%s template; -1 when not exactly one %s or
 * too long. */
int fill_template(const char *tmpl, const char *val, char *out, size_t n);

/* ldapauth.c: LDAP / LDAPS identity source */
#define LDAPAUTH_BAD    -1 /* wrong password or unknown user */
#define LDAPAUTH_DOWN   -2 /* the directory cannot be used; see err */
#define LDAPAUTH_NOROLE 0  /* authenticated, but no group maps to a role */
/* Binds as the user and maps its groups to the highest role. */
int ldapauth_login(const struct center_conf *cf, const char *name,
                   const char *pw, struct buf *err);
/* Config checks for `vigild -n` and start: the number of errors. */
int ldapauth_check(const struct center_conf *cf);

/* console.c: the web console's files, served on the admin listener. */
struct console;
/* Reads the files of dir into *out; -1 with the reason in err. */
int console_load(const char *dir, struct console **out, struct buf *err);
void console_free(struct console *cs);
size_t console_nfiles(const struct console *cs);
/* (Re)loads [admin] console_dir into c->console; -1 when it exists but
 * cannot be served (the old files are kept then). */
int console_apply(struct center *c);
/* The admin listener's fallback: GET/HEAD of paths no route knows. */
void console_serve(struct http_req *r);
/* 1 when [admin] console_dir exists but is not a servable console. */
int console_check(const char *dir);

/* auth.c: the admin server's authorizer, login, sessions, users, keys */
extern const struct http_route auth_admin_routes[];
int auth_init(struct center *c);
int auth_authorize(struct http_req *r);
/* The credential r carries (API key or session cookie) as the SHA-256
 * (hex) it is stored under: 0, or -1 when it carries none. */
int auth_credential(struct http_req *r, int *is_key, char hash[65]);
/* The role that credential grants now; ROLE_NONE when it grants none any
 * more (revoked, expired, logged out, its user changed or disabled).
 * Changes nothing (not even the session's idle time). */
int auth_recheck(struct center *c, int is_key, const char *hash);

/* gateway.c / admin.c */
extern const struct http_route gateway_routes[];
extern const struct http_route admin_routes[];
void gateway_done(const char *route, int status, void *arg);
void admin_done(const char *route, int status, void *arg);
/* 0 when the request is authenticated (by the authorizer already, or by
 * a valid API key or session now), else replies 401/403 and returns -1.
 * Kept for handlers that check for themselves; the route's role is what
 * the authorizer enforces before any handler runs. */
int admin_authorize(struct http_req *r);
/* Creates the bootstrap admin API key at first start. */
int admin_bootstrap_key(struct center *c, struct buf *err);
int admin_gate(struct http_req *r);
int admin_reply_check(struct http_req *r);
void admin_handler_done(struct http_req *r);

/* tasks.c; the routes in tasks_poll.c and tasks_admin.c (see tasks.h) */
extern const struct http_route tasks_gateway_routes[];
extern const struct http_route tasks_admin_routes[];
int tasks_init(struct center *c);
void tasks_shutdown(struct center *c); /* answers held polls */
/* tasks.c: queues the agents with new runs of task to be woken, a slice
 * per turn of the event loop; takes over the array and its strings. */
void tasks_wake_queue(struct center *c, const char *task, char **agents,
                      size_t n);
void tasks_wake_drop(struct center *c); /* forgets the queue (a stop) */
/* tasks_poll.c: answers agent's held poll with its queued run of task,
 * body the reply made for it: 1 when handed out (the run was queued and
 * the poll held), else 0. */
int tasks_hand_out(struct center *c, const char *agent, const char *task,
                   const char *body, size_t len, long long now);
/* Commits and answers the task status reports queued (at a stop). */
void tasks_status_flush(struct center *c);
/* The wake queue is empty: the reports held for it are applied. */
void tasks_status_resume(struct center *c);
/* 1 when this node holds a task poll of agent. */
int tasks_holds(struct center *c, const char *agent);

/* node.c: several nodes on one PostgreSQL database (docs/scale-out.md).
 * On SQLite there is one node: every lease is held. */
int node_init(struct center *c);      /* after the ports are bound */
void node_shutdown(struct center *c); /* hands its leases over */
const char *node_name(const struct center *c);
/* 1 when url is https://HOST[:PORT] (what [center] node_url takes). */
int node_url_ok(const char *url);
/* The node a new agent is assigned (malloc'd URL), or NULL: none of the
 * live nodes set [center] node_url. */
char *node_preferred(struct center *c);
/* The name node_init gives this node (once the gateway port is bound). */
void node_name_of(const struct center *c, char *out, size_t n);
/* 1 when this node holds (took or renewed) the lease name, 0 when
 * another node does. */
int node_lease(struct center *c, const char *name);
void node_release(struct center *c, const char *name);
/* In the transaction that creates task_id: tells the other nodes once
 * it commits. */
void node_task_created(struct center *c, const char *task_id);
/* The nodes as the API shows them (GET /api/v1/nodes); NULL on a store
 * failure. */
/* Several nodes: live updates go to the other nodes' consoles too. */
int node_shares_streams(const struct center *c);
void node_stream_notify(struct center *c, const char *kind, const char *data);
json_t *node_list(struct center *c);
int tasks_create(struct center *c, json_t *spec, const char *by,
                 const char *schedule_id, char out_id[37], struct buf *err);

/* events.c */
/* Checks and stores rule set name (kind "yara" or "ioc"): 0 with its
 * SHA-256 in id, or an HTTP status, an error code, the member at fault
 * (or NULL) and why in err. */
int rules_check(const char *name, const char *kind, const char *content,
                const char **code, const char **field, struct buf *err);
int rules_put(struct center *c, const char *name, const char *kind,
              const char *content, char id[65], const char **code,
              const char **field, struct buf *err);
extern const struct http_route events_gateway_routes[];
extern const struct http_route events_admin_routes[];
void events_declare_metrics(void);
/* 0 when the file at path holds the bytes whose SHA-256 is sha (hex). */
int sample_check(const char *path, const char *sha, struct buf *err);

/* sampleshare.c: samples shared by the nodes of one PostgreSQL database */
/* On PostgreSQL, stores the sample's content in the database (before its
 * samples row is written); 0, or -1 (logged by the store). Nothing to do
 * on SQLite. */
int sample_share(struct center *c, const char *sha, const uint8_t *p,
                 size_t len);
/* The same from the sample's file at path into the store s (vigild
 * --store-copy): the number of parts written, or -1 with err. */
long long sample_share_file(struct store *s, const char *sha, const char *path,
                            struct buf *err);
/* The sample's file in this node's data directory, into path: 0 when it
 * is there, or was written there from the database (checked); else -1
 * with why in err. */
int sample_local(struct center *c, const char *sha, char *path, size_t pathlen,
                 struct buf *err);

/* findings.c: triage state of findings (events of type finding) */
extern const struct http_route findings_admin_routes[];

/* audit.c: the append-only, hash-chained audit log of admin changes. */
struct audit_entry {
	const char *who, *addr, *action, *target; /* target may be NULL */
	int status;                               /* HTTP status */
	json_t *before, *after, *request;         /* borrowed; may be NULL */
	const char *error;                        /* message when it failed */
};
#define AUDIT_COLUMNS                                                          \
	"id, time, who, addr, action, target, status, before_json, "           \
	"after_json, request_json, error, prev_hash, hash"
extern const struct http_route audit_admin_routes[];
/* Appends one entry (changes made outside an HTTP request, or by part of
 * vigild that wants its own wording); 0 or -1 (logged). Inside a
 * transaction or unit of c->store the entry is part of it: committed
 * with the change or not at all (and forwarded only once committed). */
int audit_append(struct center *c, const struct audit_entry *a);
/* Records the state of what r is about to change (steals before). */
void audit_before(struct http_req *r, json_t *before);
/* The same from the one row sql (one '?' for id) returns, if any. */
void audit_before_row(struct http_req *r, const char *sql, const char *id);
/* The admin server's reply hook: one entry per authorized change, in
 * the request's unit of work (admin_gate), committed with the change; when
 * the entry or the commit fails, the change is rolled back and the reply
 * replaced by an error (500, 503 busy, 507 disk full): -1. */
int audit_reply_hook(struct http_req *r, int status, const void *body,
                     size_t len);
/* Called after each append with the entry (hash included); for the
 * forwarders. */
void audit_set_sink(void (*fn)(json_t *entry, void *arg), void *arg);
json_t *audit_row_json(struct store_rows *q); /* row of AUDIT_COLUMNS */
void audit_declare_metrics(void);

/* space.c: free space in the data directory ([center] min_free_space). */
void space_declare_metrics(void);
int space_free(const char *dir, long long *out);
int space_check_start(struct center *c, struct buf *err);
int space_init(struct center *c);
void space_shutdown(void);
int space_is_low(void);
/* While space is low: 507 (admin) or 503 + Retry-After (agent), -1. */
int space_refuse(struct http_req *r, int agent);

/* settings.c: runtime settings changed through the API. */
extern const struct http_route settings_admin_routes[];
int settings_require_approval(struct center *c);
char *settings_sample_password(struct center *c); /* malloc'd */
/* intel.c: vigil-inteld's verdicts. An enrichment thread follows the
 * stored events with a cursor kept in the store and records the verdict
 * on each one's hashes, addresses and domains; a reputation thread answers
 * agents' POST /v1/reputation through a cache. Both do nothing without
 * [intel] url. */
int intel_start(struct center *c, struct buf *err);
/* SIGHUP: applies a changed [intel] (c->conf is the new configuration,
 * old the one before). */
void intel_reload(struct center *c, const struct center_conf *old);
void intel_kick(struct center *c); /* new events stored */
void intel_stop(struct center *c);
void intel_declare_metrics(void);
extern const struct http_route intel_gateway_routes[];
/* ingest.c: event batches parsed by a parser thread and stored by a
 * writer thread (group commit). */
int ingest_start(struct center *c, struct buf *err);
/* Takes agent (malloc'd) and a copy of the body, and defers r, answered
 * once the batch is committed (or refused by the parser, 400): 0. -1 when
 * the queue is full or stopping (nothing taken; reply 503). */
int ingest_submit(struct center *c, struct http_req *r, char *agent,
                  const uint8_t *body, size_t len, long long now);
/* Stores what is queued, answers it, ends the thread. */
void ingest_stop(struct center *c);

/* forward.c: SIEM forwarding over syslog (docs/forwarding.md). */
extern const struct http_route forward_admin_routes[];
int forward_init(struct center *c);
/* Checks the [forward] targets file (vigild -n): -1 with the problems. */
int forward_check_file(const char *path, const char *fqdn, const char *pki_dir,
                       struct buf *err);
void forward_shutdown(struct center *c);
/* SIGHUP: applies the targets file again; a broken one changes nothing
 * (-1, logged). */
int forward_reload(struct center *c);
/* New events were stored: targets that are up send them soon. */
void forward_kick(struct center *c);
/* Stores entry (a JSON object) as an event of type "audit" from agent_id
 * "center" and forwards it like any other event: the hook for the audit
 * log. 0 or -1. */
int forward_audit(struct center *c, json_t *entry);

/* collector.c: the analysis collector's feed listener (7443) and its
 * admin routes (cases, baselines, search). */
extern const struct http_route collector_admin_routes[];
int collector_start(struct center *c, struct buf *err);
void collector_stop(struct center *c);
/* -n: the listener's certificate and key; the number of errors. */
int collector_check(const struct center_conf *cf, const char *ca_crt);

/* manage.c: a center's management port for its master (5443). */
int manage_start(struct center *c, struct buf *err);
void manage_stop(struct center *c);
/* MAJOR of a "MAJOR.MINOR" protocol version, -1 when it is none. */
int manage_proto_major(const char *v);
/* master.c: role master, its admin routes. */
extern const struct http_route master_admin_routes[];
int master_check(const struct center_conf *cf);
/* updates.c: the client that imports feeds into the center's inteld
 * ([intel] url, [updates] intel_cert or intel_api_key_file); 0 with
 * *out NULL when no such credential is set. */
int updates_intel_client(const struct center_conf *cf, struct intelc **out,
                         struct buf *err);
/* manage.c: imports pushed by the master still running (joined). */
void manage_intel_stop(struct center *c);
/* Its calls to centers (threads) and push deliveries; 0 or -1. */
int master_start(struct center *c);
void master_stop(struct center *c); /* answers what waits, joins */

/* stream.c: live updates on the admin API (GET /api/v1/stream). */
extern const struct http_route stream_admin_routes[];
void stream_declare_metrics(void);
/* Tells the open streams that an object of kind type changed: data is
 * {"id": ...} or, for findings, {"agent_id": ..., "seq": ...} (stolen).
 * Coalesced: one event per type and id at most every 250 ms, the latest
 * data winning. Cheap when no stream is open. */
void stream_emit(struct center *c, const char *type, json_t *data);
/* (type is a literal: inside a transaction, an admin request's say, the
 * event waits for the commit and is dropped when it is rolled back.) */
void stream_emit_id(struct center *c, const char *type, const char *id);
/* An event another node of the database sent (node.c): to this node's
 * streams, as it is. */
void stream_remote(struct center *c, const char *type, const char *data);
/* Credentials may have ended (logout, key revoked, user changed): every
 * stream's are checked again at once (after the current request). */
void stream_recheck(struct center *c);
/* Ends every stream (stop and shutdown). */
void stream_shutdown(struct center *c);

/* syslogin.c: the optional syslog listener ([syslog] enable). */
int syslogin_start(struct center *c, struct buf *err);
void syslogin_stop(struct center *c);
/* With [syslog] worker = yes: the bound sockets, for the syslog worker
 * (gwproc.c), -1 each when the listener is off or runs in the core. */
void syslogin_fds(const struct center *c, int *udp, int *tcp);
/* A GWRELAY_SYSLOG payload from the syslog worker: its messages stored
 * in one transaction. 0, or -1 when it is malformed (the worker is then
 * stopped). */
int syslogin_relayed(struct center *c, const uint8_t *p, size_t len);
/* vigild --syslog-worker (spawned by gwproc.c, settings and sockets on
 * descriptor 3). */
int syslogworker_main(void) __attribute__((noreturn));

/* ratelimit.c: token bucket per source address, fixed memory. */
struct ratelimit *ratelimit_new(double per_minute, double burst);
void ratelimit_free(struct ratelimit *rl);
/* 1 when allowed, 0 when over the limit (*retry_after set, seconds). */
/* Several nodes on one PostgreSQL: the buckets live in the store s (a
 * connection of the limiters' own), one per kind and source. */
void ratelimit_share(struct ratelimit *rl, struct store *s, const char *kind);
int ratelimit_take(struct ratelimit *rl, const char *addr, long long now,
                   int *retry_after);
void ratelimit_set_rate(struct ratelimit *rl, double per_minute);

/* cron.c: five-field cron specs (UTC). */
struct cron {
	uint64_t min, hour, dom, mon, dow; /* bit n set = value n allowed */
	int dom_star, dow_star;
};
int cron_parse(const char *spec, struct cron *c, struct buf *err);
int cron_match(const struct cron *c, long long unix_time);

/* util */
void random_uuid(char out[37]);

void random_hex(char *out, size_t nbytes); /* 2*nbytes + 1 */
void sha256_hex(const void *p, size_t n, char out[65]);
json_t *facts_to_json(const void *facts); /* struct host_facts * */
char *dup_or_null(const char *s);
json_t *strs_json(char *const *v, size_t n); /* JSON array of strings */
/* The agent's UUID: CN of the verified client certificate (malloc'd), or
 * NULL after replying 403. Identity never comes from a request body. */
char *peer_agent_id(struct http_req *r);
/* tls_not_after of a client certificate, read once per certificate */
long long peer_not_after(X509 *x);

#endif
