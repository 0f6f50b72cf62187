/*
 * agent.h: what the files of vigil-agent share. main.c dispatches to one
 * file per subcommand (enroll.c, run.c, check.c); state.c owns the data
 * directory, facts.c describes the host, gateway.c speaks the gateway
 * protocol (docs/protocol.md) on top of httpc.
 *
 * The data directory (default /var/lib/vigil-agent, mode 0700):
 *   state.json   0600  server URL, agent_id, proxy, proxy credentials file,
 *                      poll interval, request_id while approval is pending
 *   agent.key    0600  the agent's EC P-256 key; made here, never sent
 *   agent.crt    0644  its client certificate (subject CN = agent UUID)
 *   ca.pem       0644  the pinned deployment CA, the only trust anchor
 *   pending.key  0600  the key of a request awaiting approval, or of a
 *                      renewal in flight
 *   pending.crt  0644  only between receiving a certificate and moving it
 *                      into place; finished on the next start if a crash
 *                      interrupts that
 *   proxy-user   0600  "user:password" when given with --proxy-user
 *   reports.json 0600  final task reports not yet taken by the center and
 *                      the ids of the tasks received lately (work.c)
 *   lock               flock()ed by enroll and run: one writer at a time
 */
#ifndef VIGIL_AGENT_H
#define VIGIL_AGENT_H

#include <limits.h>
#include <stddef.h>

#include <jansson.h>

#include "buf.h"
#include "httpc.h"

#define AGENT_DEFAULT_DATA_DIR "/var/lib/vigil-agent"
#define AGENT_DATA_DIR_ENV     "VIGIL_AGENT_DATA_DIR"
#define AGENT_DEFAULT_POLL     60
#define AGENT_MIN_POLL         1 /* the center's own minimum for poll_interval */
#define AGENT_MAX_POLL         86400
#define AGENT_TIMEOUT          30 /* seconds per request */

struct agent_state {
	char dir[PATH_MAX];
	char p_state[PATH_MAX];
	char p_key[PATH_MAX];
	char p_crt[PATH_MAX];
	char p_ca[PATH_MAX];
	char p_pkey[PATH_MAX]; /* pending.key */
	char p_pcrt[PATH_MAX]; /* pending.crt */
	char p_lock[PATH_MAX];
	char p_proxy_user[PATH_MAX];

	char *server;          /* "https://host[:port]", no trailing '/' */
	char *preferred;       /* the node enrollment assigned (several
	                          centers on one database), tried before
	                          server; NULL: none */
	char *agent_id;        /* NULL until enrolled */
	char *proxy;           /* NULL: direct */
	char *proxy_user_file; /* NULL: no proxy credentials */
	char *request_id;      /* pending enrollment, else NULL */
	long long poll_interval;
	long long retry_after;

	char *proxy_user; /* the secret, loaded on demand, wiped on free */
	int lock_fd;
};

/* state.c */
/* Nonzero once the agent is stopping: every request in flight aborts. */
extern volatile int agent_abort;

const char *agent_default_dir(void);
int agent_state_init(struct agent_state *st, const char *dir);
void agent_state_free(struct agent_state *st);
int agent_dir_create(struct agent_state *st);
int agent_lock(struct agent_state *st);
int agent_state_exists(const struct agent_state *st);
int agent_state_load(struct agent_state *st);
int agent_state_save(const struct agent_state *st);
int agent_set_str(char **dst, const char *src);
int agent_file_exists(const char *path);
int agent_load_proxy_user(struct agent_state *st);
void agent_httpc_opts(const struct agent_state *st, int with_cert,
                      struct httpc_opts *o);
int agent_new_pending_key(struct agent_state *st, char **csr_pem);
void agent_drop_pending_key(struct agent_state *st);
int agent_install_identity(struct agent_state *st, json_t *reply,
                           const char *expect_id);
int agent_cert_times(const struct agent_state *st, long long *not_before,
                     long long *not_after);
int agent_check_server_url(const char *url, char **out);
/* Keeps the node an enrollment reply assigned (NULL/empty: none, or
 * the same as server): checked like --server. */
void agent_take_preferred(struct agent_state *st, const char *url);
/* A copy of the assigned node's URL into out: 1, or 0 when none. Safe
 * while another thread replaces it. */
int agent_preferred_get(const struct agent_state *st, char *out, size_t n);

/* facts.c */
json_t *facts_collect(struct buf *err);

/* gateway.c */
struct center_reply {
	long status;           /* 0 when no answer */
	json_t *json;          /* parsed body, or NULL */
	long long retry_after; /* the reply's Retry-After (s), -1 if none */
	char msg[1400];        /* the failure, as the operator should read it */
};

enum enroll_result {
	ENROLL_DONE = 0,    /* certificate installed */
	ENROLL_PENDING = 1, /* waiting for an administrator */
	ENROLL_FAILED = -1, /* try again later */
	ENROLL_FINAL = -2,  /* rejected or forgotten: enroll anew */
};

enum hb_result {
	HB_OK = 0,
	HB_CLONE = 1, /* the center saw this identity on another machine */
	HB_FAILED = -1,
};

int center_call(struct agent_state *st, int with_cert, int insecure,
                const char *method, const char *path, json_t *body,
                struct center_reply *rep);
void center_reply_free(struct center_reply *rep);
int agent_enroll_send(struct agent_state *st, const char *token, int with_cert);
int agent_enroll_poll(struct agent_state *st);
int agent_heartbeat(struct agent_state *st, int *renew, long long *center_time,
                    struct center_reply *rep);
int agent_renew(struct agent_state *st);
int agent_renew_due(const struct agent_state *st);

/* updates.c: signed updates checked from the root pinned at enrollment */
#define AGENT_UPDATE_INTERVAL 300 /* seconds between checks (run) */
int agent_updates_pin(struct agent_state *st, const char *root_json);
int agent_updates_check(struct agent_state *st);
int agent_updates_due(long long interval);
/* What the heartbeat reports (NULL when no root is pinned). */
json_t *agent_updates_report(const struct agent_state *st);
/* The verified bytes of an applied rule set by SHA-256 (hex); -1 when it
 * is not among them. */
int agent_updates_rules(struct agent_state *st, const char *sha,
                        struct buf *out);

/* Fetches (into DATA/updates) the target name of that SHA-256, kind and
 * platform, after a check; only one this agent verified itself. */
int agent_updates_fetch(struct agent_state *st, const char *name,
                        const char *sha, const char *kind, const char *platform,
                        struct buf *err);

/* upgrade.c: the agent replacing its own binary */
extern char **agent_argv; /* a copy of main's arguments, for exec */
const char *agent_binary_sha256(void); /* of /proc/self/exe, or NULL */
const char *agent_platform(void);      /* "linux-x86_64" */
/* An upgrade the center asked for ({"target", "sha256", "version",
 * "probation"}): returns only when it was not made (0: nothing to do;
 * -1: refused or failed, logged). */
int agent_upgrade(struct agent_state *st, json_t *req);
/* 1 when agent_upgrade(st, req) would try it: not the binary running,
 * not one rolled back before, and the binary not the package's (unless
 * agent_upgrade_packaged). A packaged binary's refusal is recorded (for
 * the heartbeat) and logged once. */
int agent_upgrade_wanted(struct agent_state *st, json_t *req);
void agent_upgrade_checked_in(struct agent_state *st);
/* The last upgrade's failure: state "rolled_back" or "refused" in
 * DATA/upgrade-result.json; fills sha (the binary) and why; 0 when
 * there is one of that state. */
int agent_upgrade_result(const struct agent_state *st, char failed[65],
                         char *why, size_t n);
int agent_upgrade_refusal(const struct agent_state *st, char sha[65], char *why,
                          size_t n);
/* run --upgrade-packaged: replace a binary the package installed too. */
extern int agent_upgrade_packaged;
/* run --supervised: a service manager restarts the agent when it exits
 * (systemd's Restart=always): a watchdog that rolls back restores the
 * previous binary and exits instead of starting it itself. */
extern int agent_supervised;

/* the subcommands */
int cmd_enroll(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_set_server(int argc, char **argv);
int cmd_pin_root(int argc, char **argv);

#endif
