/*
 * forward.h: what the forwarding files share (forward.c runs the targets'
 * connections, forward_target.c reads and checks target specs and the
 * targets file, forward_api.c is /api/v1/forward). Private to them.
 */
#ifndef VIGIL_FORWARD_H
#define VIGIL_FORWARD_H

#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <openssl/ssl.h>

#include "buf.h"
#include "center.h"
#include "events.h"
#include "syslogfmt.h"

#define C(r)         ((struct center *)(r)->arg)
#define FWD_BATCH    2000 /* events read per query */
#define FWD_ROUNDS   8    /* batches per callback before yielding */
#define FWD_UDP_MAX  65000
#define FWD_MAXTYPES 16
#define FWD_STALL    60 /* seconds without write progress */
#define FWD_SYNC     5  /* shared database: seconds between target syncs */

/* FWD_COLLECTOR: the analysis collector (docs/collector.md): TLS with the
 * center's role certificate, JSON frames, and the cursor saved when the
 * collector acknowledges a batch (not when it is written). */
enum { FWD_UDP, FWD_TCP, FWD_TLS, FWD_COLLECTOR, FWD_NTRANSPORTS };
extern const char *const transports[];

enum { ST_IDLE, ST_CONNECTING, ST_UP, ST_BACKOFF };

struct fwd_target {
	struct center *c;
	char name[65];
	int transport;
	char host[256];
	int port;
	struct syslogfmt_opts fmt;
	int framing;
	char types[FWD_MAXTYPES][EVENT_MAX_TYPE + 1];
	int ntypes;
	int min_rank;
	char *ca, *cert, *key;
	SSL_CTX *ctx;
	struct bufferevent *bev;
	int udp_fd;
	int state;
	long long cursor;    /* saved: last event handled */
	long long sent_upto; /* in the output buffer, not yet drained */
	long long backoff;
	struct event *ev_retry, *ev_pump;
	double sent, dropped, errors;
	char last_error[512];
	long long connected_at;
	struct evdns_getaddrinfo_request *dns_req; /* resolving */
	struct evutil_addrinfo *addrs, *ai;        /* resolved; being tried */
	int from_config;     /* defined in [forward] targets, not the API */
	int seen;            /* forward_reload(): still in the store */
	long long agents_at; /* collector: agents sent up to this last_seen */
	int refused;         /* collector: this connection was refused */
	long long smp_at;    /* collector: samples offered up to this */
	char smp_sha[65];    /* (received_at, sha256) on this connection */
	/* This node serves the target (its lease, node.c): always on
	 * SQLite; on PostgreSQL one node at a time. */
	int held;
	long long lease_until; /* held: when the lease last taken ends */
};

struct fwd {
	struct fwd_target **t;
	size_t n;
	struct buf msg, out;
	struct event *ev_tick; /* catches events stored by any path */
	struct evdns_base *dns;
	unsigned long ticks;
};

/* forward.c */
long long max_event_id(struct center *c);
void target_free(struct fwd_target *t);
struct fwd_target *target_new(struct center *c, json_t *spec, long long cursor,
                              struct buf *err);
struct fwd_target *find(struct fwd *f, const char *name);
int add_running(struct fwd_target *t);
void remove_running(struct fwd *f, size_t i);

/* forward_target.c */
extern const char *const spec_keys[];
int target_from_json(const char *fqdn, const char *pki_dir, json_t *j,
                     struct fwd_target *t, struct buf *err);
json_t *target_spec(const struct fwd_target *t);
json_t *tfile_load(const char *path, const char *fqdn, const char *pki_dir,
                   struct buf *err);
int tfile_sync(struct center *c, struct buf *err);

#endif
