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
#include "log.h"
#include "store.h"

/* Shortest agent certificate lifetime: config bound and key process check. */
#define CENTER_MIN_CERT_LIFETIME 30

struct center_conf {
	/* [center] */
	char *fqdn;
	char *data_dir;
	char *pki_dir;
	int require_approval;
	long long agent_cert_lifetime; /* seconds */
	long long poll_interval;       /* seconds */
	int log_dest;                  /* enum log_dest */
	int log_level;                 /* enum log_level */
	/* [gateway] */
	char *gw_listen;
	long long gw_port;
	long long gw_max_body;
	long long gw_timeout;
	long long gw_max_conns;
	long long enroll_rate; /* attempts per source address per minute */
	long long max_long_polls;
	/* [admin] */
	char *adm_listen;
	long long adm_port;
	long long adm_max_body;
	long long adm_timeout;
};

/* Paths derived from pki_dir. */
struct center_paths {
	char ca_crt[4096], ca_key[4096], server_crt[4096], server_key[4096];
	char db[4096], admin_key[4096], ports[4096];
};

struct center {
	const char *conf_path;
	struct center_conf conf;
	struct center_paths paths;
	struct event_base *base;
	struct store *store;
	X509 *ca;          /* the CA certificate (public part only) */
	char ca_pem[8192]; /* PEM of ca, sent to agents */
	SSL_CTX *gw_ctx, *adm_ctx;
	struct http_server *gw, *adm;
	int gw_port, adm_port; /* bound ports */
	int keyfd;             /* socketpair to the key process */
	pid_t keypid;
	uint64_t keyseq;
	struct ratelimit *enroll_rl;
	struct event *ev_term, *ev_int, *ev_hup, *ev_chld, *ev_keyrestart;
	long long key_started, key_backoff;        /* key process restarts */
	struct event *ev_stop;                     /* graceful stop */
	struct http_route *gw_routes, *adm_routes; /* merged tables */
	struct waiter **waiters; /* held task polls by agent */
	int nwaiters;
	struct event *ev_tick;
	long long last_sched_minute;
	long long stopping; /* when the stop began */
	long long started;
};

/* conf.c */
extern const struct cfg_key center_conf_keys[];
int center_conf_load(const char *path, struct center_conf *c, struct buf *err);
void center_conf_free(struct center_conf *c);
void center_paths_init(const struct center_conf *c, struct center_paths *p);
/* The start checks behind `vigild -n`: returns the number of errors;
 * warnings are logged but do not count. bind_ports: also check that the
 * listen ports can be bound. */
int center_check(const struct center_conf *c, const struct center_paths *p,
                 int bind_ports);

/* keyproc.c */
int keyproc_start(struct center *c, struct buf *err);
void keyproc_stop(struct center *c);
/* main.c: restart after the key process died, with backoff. */
void keyproc_restart_later(struct center *c);
/* Signs csr_pem for agent uuid cn; PEM certificate into out. -1 with a
 * message in err (CSR problems are the caller's 400). */
int keyproc_sign(struct center *c, const char *csr_pem, const char *cn,
                 long long lifetime, struct buf *out, struct buf *err);

/* db.c */
extern const char *const center_migrations[];
extern const size_t center_nmigrations;
int db_is_revoked(struct store *s, const char *serial);
/* Records a newly issued certificate and returns 0. */
int db_add_cert(struct store *s, const char *agent_id, X509 *cert);
json_t *db_agent_json(struct store_rows *r); /* row of AGENT_COLUMNS */
#define AGENT_COLUMNS                                                          \
	"id, status, hostname, fqdn, os, kernel, arch, ips, macs, "            \
	"machine_id, agent_version, labels, enrolled_at, last_seen, "          \
	"cert_serial, cert_not_after, cloned_from, clone_detected_at"

/* gateway.c / admin.c */
extern const struct http_route gateway_routes[];
extern const struct http_route admin_routes[];
void gateway_done(const char *route, int status, void *arg);
void admin_done(const char *route, int status, void *arg);
/* 0 when the request carries a valid API key, else replies 401. */
int admin_authorize(struct http_req *r);
/* Creates the bootstrap admin API key at first start. */
int admin_bootstrap_key(struct center *c, struct buf *err);

/* tasks.c */
extern const struct http_route tasks_gateway_routes[];
extern const struct http_route tasks_admin_routes[];
int tasks_init(struct center *c);
void tasks_shutdown(struct center *c); /* answers held polls */
void tasks_wake(struct center *c, const char *agent);
int tasks_create(struct center *c, json_t *spec, const char *by,
                 const char *schedule_id, char out_id[37], struct buf *err);

/* events.c */
extern const struct http_route events_gateway_routes[];
extern const struct http_route events_admin_routes[];
void events_declare_metrics(void);

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
 * vigild that wants its own wording); 0 or -1 (logged). */
int audit_append(struct center *c, const struct audit_entry *a);
/* Records the state of what r is about to change (steals before). */
void audit_before(struct http_req *r, json_t *before);
/* The same from the one row sql (one '?' for id) returns, if any. */
void audit_before_row(struct http_req *r, const char *sql, const char *id);
/* The admin server's reply hook: one entry per authorized change. */
void audit_reply_hook(struct http_req *r, int status, const void *body,
                      size_t len);
/* Called after each append with the entry (hash included); for the
 * forwarders. */
void audit_set_sink(void (*fn)(json_t *entry, void *arg), void *arg);
json_t *audit_row_json(struct store_rows *q); /* row of AUDIT_COLUMNS */
void audit_declare_metrics(void);

/* settings.c: runtime settings changed through the API. */
extern const struct http_route settings_admin_routes[];
int settings_require_approval(struct center *c);
char *settings_sample_password(struct center *c); /* malloc'd */

/* ratelimit.c: token bucket per source address, fixed memory. */
struct ratelimit *ratelimit_new(double per_minute, double burst);
void ratelimit_free(struct ratelimit *rl);
/* 1 when allowed, 0 when over the limit (*retry_after set, seconds). */
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

#endif
