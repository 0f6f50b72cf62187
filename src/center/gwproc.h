/*
 * gwproc: vigild's gateway worker processes ([gateway] workers = N). The
 * core (the vigild process: store, tasks, admin API) spawns N workers that
 * hold the agent connections and relay each request over a socketpair
 * (gwworker.c); the core answers them through the same route table and
 * handlers as in-process requests (http_server_relay) and restarts a
 * worker that dies. docs/development.md, "Processes and users".
 */
#ifndef VIGIL_CENTER_GWPROC_H
#define VIGIL_CENTER_GWPROC_H

#include <sys/types.h>

#include <seccomp.h>

#include "buf.h"

struct center;

/* The syslog worker ([syslog] enable and worker): receives and parses
 * on the sockets syslogin_start bound; the core stores (syslogin.c). 0,
 * or -1 with err set. */
int gwproc_syslog_start(struct center *c, struct buf *err);

/* With [gateway] workers >= 1: takes over the gateway's listening socket
 * (the core stops accepting on it) and starts the workers. 0 when there
 * are none to start. */
int gwproc_start(struct center *c, struct buf *err);
/* With [admin] worker = yes: the same for the admin listener, one admin
 * worker (vigild --admin-worker). 0 when off. */
int gwproc_admin_start(struct center *c, struct buf *err);
/* SIGCHLD: 1 when pid was a worker, gateway or admin (then restarted
 * with backoff). */
int gwproc_reaped(struct center *c, pid_t pid, int status);
/* An agent was revoked: the workers refuse its certificates at the
 * handshake from now on (as the in-process gateway's revoked_cb does). */
void gwproc_agent_revoked(struct center *c, const char *agent_id);
/* An agent's certificate was replaced (a renewal): the workers honour no
 * session ticket of its older ones (as the in-process gateway's stale_cb). */
void gwproc_agent_certs_changed(struct center *c, const char *agent_id);
/* SIGHUP, once c->gw_ctx is the new context: the workers reload their
 * TLS context and get its session ticket keys; connections stay. */
void gwproc_reload(struct center *c);
/* Stops every worker (SIGTERM, then waits briefly). */
void gwproc_stop(struct center *c);
/* A graceful stop: each worker stops accepting, closes its idle
 * connections and each other one after its reply (GWRELAY_DRAIN). */
void gwproc_drain(struct center *c);
/* What the workers report (summed, for /metrics): open connections, TLS
 * handshakes (resumed 0/1), connections closed for reason why. */
long long gwproc_conns(const struct center *c);
unsigned long gwproc_tls(const struct center *c, int resumed);
unsigned long gwproc_closed(const struct center *c, int why);
int gwproc_running(const struct center *c);
/* The admin worker's report: open connections, and connections closed
 * for reason why. */
long long gwproc_admin_conns(const struct center *c);
unsigned long gwproc_admin_closed(const struct center *c, int why);

/* The worker's entry point (vigild --gateway-worker, or --admin-worker:
 * the role comes with its settings). Never returns. */
int gwworker_main(int admin) __attribute__((noreturn));
/* The worker's seccomp allow-list, loaded once it listens. */
int gwworker_sandbox(struct buf *err);
/* Sets no_new_privs and loads f (released either way): 0, or -1 and err.
 * The core's deny-list (coresandbox.c) and the workers' allow-list. */
int sandbox_load(scmp_filter_ctx f, struct buf *err);
/*
 * Landlock: from now on the process may open files only for reading,
 * and only below the directories of the n paths given (its certificate,
 * key and CA: read again on a reload; rules on the directories, as a
 * renewal replaces the files). 1 restricted, 0 when the kernel has no
 * Landlock (logged by the caller), -1 with err.
 */
int gwworker_landlock(const char *const *paths, size_t n, struct buf *err);

#endif
