/*
 * collector.c: the analysis collector (docs/collector.md). A vigild with
 * [center] role = collector also listens on [collector] port (7443) for
 * the feeds of other centers: mutual TLS against the deployment CA, and
 * only certificates of role center are served (anything else gets one
 * "error ..." line and is closed). Each center's "collector" forwarding
 * target (forward.c) sends its stored events in batches, each ended by a
 * commit frame (src/proto/collproto.h); a batch is stored in one
 * transaction, keyed by (center, agent, seq) so a batch sent again after
 * a lost ack is stored once, and only then acknowledged ("ack ROWID"), and
 * only the ack moves the center's cursor: nothing is lost while the
 * collector is down or restarts. The center is named by its certificate's
 * CN, never by anything it sends.
 *
 * Analysis, at store time: a finding joins its case (rule + normalised
 * path, else SHA-256; collproto_case_key()), which counts hits, hosts and
 * first / last seen. A case with a baseline (set through the admin API,
 * audited like every change) suppresses new occurrences (stored, marked
 * suppressed, not counted) or lowers them to level info. The admin routes
 * below list centers, assets, cases and search every center's events.
 *
 * Runs on the center's event loop like the forwarders: batches are
 * bounded (the center sends at most 2000 events per commit) and written
 * in one transaction each.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/listener.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "center.h"
#include "collproto.h"
#include "metrics.h"
#include "pki.h"
#include "query.h"
#include "schema.h"
#include "tls.h"

#define C(r)              ((struct center *)(r)->arg)
#define COLL_MAX_CONNS    256
#define COLL_MAX_PENDING  (32u << 20) /* bytes of one batch before commit */
#define COLL_HANDSHAKE    10          /* seconds to finish the handshake */
#define COLL_REASON_MAX   1024
#define COLL_SEARCH_LIMIT 1000

#define COLL_MAX_WANTS 256 /* samples asked for, per connection */

struct coll_conn {
	struct collector *co;
	struct bufferevent *bev;
	char center[256]; /* CN of the center's certificate; "" before */
	char addr[64];
	struct coll_msg *pend;
	size_t npend, cap, pend_bytes;
	int closing;
	/* Samples: the ones to ask for, and the one arriving. */
	char wants[COLL_MAX_WANTS][65];
	long long want_size[COLL_MAX_WANTS];
	int nwants;
	char cur[65]; /* "" when none */
	long long cur_size, cur_got;
	int cur_fd;
	char cur_tmp[4200];
	EVP_MD_CTX *md;
	struct coll_conn *prev, *next;
};

struct collector {
	struct center *c;
	SSL_CTX *ctx;
	struct evconnlistener *lis;
	struct coll_conn *conns;
	int nconns;
};

static void
pend_clear(struct coll_conn *k)
{
	size_t i;

	for (i = 0; i < k->npend; i++)
		collproto_free(&k->pend[i]);
	k->npend = 0;
	k->pend_bytes = 0;
}

static void
conn_free(struct coll_conn *k)
{
	struct collector *co = k->co;

	if (k->prev)
		k->prev->next = k->next;
	else
		co->conns = k->next;
	if (k->next)
		k->next->prev = k->prev;
	co->nconns--;
	pend_clear(k);
	if (k->cur_fd != -1) {
		close(k->cur_fd);
		unlink(k->cur_tmp);
	}
	EVP_MD_CTX_free(k->md);
	free(k->pend);
	if (k->bev)
		bufferevent_free(k->bev);
	free(k);
}

static void event_cb(struct bufferevent *bev, short what, void *arg);

static void
closed_when_written(struct bufferevent *bev, void *arg)
{
	(void)bev;
	conn_free(arg);
}

/* Tells the peer why (one "error" line) and closes once it is written. */
static void
refuse(struct coll_conn *k, const char *why)
{
	log_warnx("collector: %s%s%s: %s", k->addr, k->center[0] ? " " : "",
	          k->center, why);
	metrics_add("vigil_collector_refused_total", NULL, 1);
	k->closing = 1;
	pend_clear(k);
	bufferevent_disable(k->bev, EV_READ);
	evbuffer_add_printf(bufferevent_get_output(k->bev), "error %s\n", why);
	/* Freed once the line is written, or by event_cb when the peer
	 * goes first or does not read it within the timeout. */
	{
		struct timeval tv = {COLL_HANDSHAKE, 0};

		bufferevent_set_timeouts(k->bev, NULL, &tv);
	}
	bufferevent_setcb(k->bev, NULL, closed_when_written, event_cb, k);
}

/* The case of a finding just stored: joins or opens it, applies its
 * baseline; -1 on a store failure. */
static int
coll_case(struct store *s, const char *center, const struct coll_msg *m,
          long long now)
{
	char key[COLL_MAX_KEY + 1], rule[COLL_MAX_RULE + 1];
	char path[COLL_MAX_PATH + 1], sha[65], hex[65], id[17];
	const char *level = m->level[0] ? m->level : NULL;
	struct store_rows *q;
	char baseline[16] = "";
	int suppressed = 0;

	(void)now;
	if (collproto_case_key(m->data, key, rule, path, sha) == -1)
		return 0;
	sha256_hex(key, strlen(key), hex);
	memcpy(id, hex, 16);
	id[16] = '\0';
	if (store_exec(s,
	               "INSERT INTO coll_cases (id, case_key, rule, path, "
	               "sha256, first_seen, last_seen, hits, suppressed) "
	               "VALUES (?, ?, ?, ?, ?, ?, ?, 0, 0) ON CONFLICT (id) "
	               "DO NOTHING",
	               S_TEXT(id), S_TEXT(key), S_TEXT(rule[0] ? rule : NULL),
	               S_TEXT(path[0] ? path : NULL),
	               S_TEXT(sha[0] ? sha : NULL), S_INT(m->time),
	               S_INT(m->time)) < 0)
		return -1;
	q = store_query(s, "SELECT baseline FROM coll_cases WHERE id = ?",
	                S_TEXT(id));
	if (q == NULL)
		return -1;
	if (store_next(q) == 1 && store_text(q, 0) != NULL)
		snprintf(baseline, sizeof(baseline), "%s", store_text(q, 0));
	store_done(q);
	if (strcmp(baseline, "suppress") == 0) {
		suppressed = 1;
		if (store_exec(
		        s,
		        "UPDATE coll_cases SET suppressed = suppressed + "
		        "1 WHERE id = ?",
		        S_TEXT(id)) < 0)
			return -1;
	} else {
		if (strcmp(baseline, "lower") == 0)
			level = "info";
		if (store_exec(s,
		               "UPDATE coll_cases SET hits = hits + 1, "
		               "first_seen = CASE WHEN first_seen > ? THEN ? "
		               "ELSE first_seen END, last_seen = CASE WHEN "
		               "last_seen < ? THEN ? ELSE last_seen END WHERE "
		               "id = ?",
		               S_INT(m->time), S_INT(m->time), S_INT(m->time),
		               S_INT(m->time), S_TEXT(id)) < 0 ||
		    store_exec(
		        s,
		        "INSERT INTO coll_case_hosts (case_id, center, "
		        "agent_id, hostname, first_seen, last_seen) VALUES "
		        "(?, ?, ?, ?, ?, ?) ON CONFLICT (case_id, center, "
		        "agent_id) DO UPDATE SET hostname = "
		        "COALESCE(excluded.hostname, "
		        "coll_case_hosts.hostname), last_seen = CASE WHEN "
		        "coll_case_hosts.last_seen < excluded.last_seen "
		        "THEN excluded.last_seen ELSE "
		        "coll_case_hosts.last_seen END",
		        S_TEXT(id), S_TEXT(center), S_TEXT(m->agent_id),
		        S_TEXT(m->hostname[0] ? m->hostname : NULL),
		        S_INT(m->time), S_INT(m->time)) < 0)
			return -1;
	}
	return store_exec(s,
	                  "UPDATE coll_events SET case_id = ?, suppressed = ?, "
	                  "level = ? WHERE center = ? AND agent_id = ? AND seq "
	                  "= ?",
	                  S_TEXT(id), S_INT(suppressed), S_TEXT(level),
	                  S_TEXT(center), S_TEXT(m->agent_id),
	                  S_INT(m->seq)) < 0
	           ? -1
	           : 0;
}

/* Stores the batch held for k in one transaction: the number of new
 * events (those already stored are skipped), or -1 (rolled back). */
static long long
store_batch(struct coll_conn *k)
{
	struct store *s = k->co->c->store;
	long long now = (long long)time(NULL), added = 0;
	size_t i;
	int n;

	if (store_begin(s) == -1)
		return -1;
	for (i = 0; i < k->npend; i++) {
		const struct coll_msg *m = &k->pend[i];
		char *data = json_dumps(m->data, JSON_COMPACT);

		if (data == NULL)
			goto fail;
		n = store_exec(
		    s,
		    "INSERT INTO coll_events (center, agent_id, seq, "
		    "time, received_at, type, level, orig_level, "
		    "task_id, hostname, data, case_id, suppressed) "
		    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, 0) "
		    "ON CONFLICT (center, agent_id, seq) DO NOTHING",
		    S_TEXT(k->center), S_TEXT(m->agent_id), S_INT(m->seq),
		    S_INT(m->time), S_INT(now), S_TEXT(m->type),
		    S_TEXT(m->level[0] ? m->level : NULL),
		    S_TEXT(m->level[0] ? m->level : NULL),
		    S_TEXT(m->task_id[0] ? m->task_id : NULL),
		    S_TEXT(m->hostname[0] ? m->hostname : NULL), S_TEXT(data));
		free(data);
		if (n < 0)
			goto fail;
		if (n == 0)
			continue; /* sent again: stored already */
		added++;
		if (strcmp(m->type, "finding") == 0 &&
		    coll_case(s, k->center, m, now) == -1)
			goto fail;
	}
	if (store_exec(s,
	               "INSERT INTO coll_centers (name, first_seen, last_seen, "
	               "events, addr) VALUES (?, ?, ?, ?, ?) ON CONFLICT "
	               "(name) DO UPDATE SET last_seen = excluded.last_seen, "
	               "events = coll_centers.events + excluded.events, addr "
	               "= excluded.addr",
	               S_TEXT(k->center), S_INT(now), S_INT(now), S_INT(added),
	               S_TEXT(k->addr)) < 0)
		goto fail;
	if (store_commit(s) == -1)
		return -1;
	return added;
fail:
	store_rollback(s);
	return -1;
}

static int
store_agent(struct coll_conn *k, const struct coll_msg *m)
{
	char *data = json_dumps(m->data, JSON_COMPACT);
	int n;

	if (data == NULL)
		return -1;
	n = store_exec(k->co->c->store,
	               "INSERT INTO coll_agents (center, agent_id, hostname, "
	               "data, updated_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT "
	               "(center, agent_id) DO UPDATE SET hostname = "
	               "excluded.hostname, data = excluded.data, updated_at = "
	               "excluded.updated_at",
	               S_TEXT(k->center), S_TEXT(m->agent_id),
	               S_TEXT(m->hostname[0] ? m->hostname : NULL),
	               S_TEXT(data), S_INT(time(NULL)));
	free(data);
	return n < 0 ? -1 : 0;
}

/* data_dir/samples/XX (made when missing) into out; -1 on failure. */
static int
sample_dir(struct center *c, const char *sha, char *out, size_t n)
{
	snprintf(out, n, "%s/samples", c->conf.data_dir);
	if (mkdir(out, 0700) == -1 && errno != EEXIST)
		return -1;
	snprintf(out, n, "%s/samples/%.2s", c->conf.data_dir, sha);
	if (mkdir(out, 0700) == -1 && errno != EEXIST)
		return -1;
	return 0;
}

static int
sample_held(struct center *c, const char *sha)
{
	char file[4200];
	struct stat st;

	snprintf(file, sizeof(file), "%s/samples/%.2s/%s", c->conf.data_dir,
	         sha, sha);
	return stat(file, &st) == 0;
}

/* 1 when sha is arriving on some connection: asked for once. */
static int
arriving(struct collector *co, const char *sha)
{
	struct coll_conn *k;

	for (k = co->conns; k != NULL; k = k->next)
		if (k->cur[0] != '\0' && k->cur_fd != -1 &&
		    strcmp(k->cur, sha) == 0)
			return 1;
	return 0;
}

/* Asks for the next wanted sample, if none is arriving. */
static void
want_next(struct coll_conn *k)
{
	while (k->cur[0] == '\0' && k->nwants > 0) {
		struct center *c = k->co->c;
		char dir[4096];

		k->nwants--;
		memcpy(k->cur, k->wants[k->nwants], 65);
		k->cur_size = k->want_size[k->nwants];
		k->cur_got = 0;
		if (sample_held(c, k->cur) || arriving(k->co, k->cur) ||
		    sample_dir(c, k->cur, dir, sizeof(dir)) == -1) {
			k->cur[0] = '\0';
			continue;
		}
		snprintf(k->cur_tmp, sizeof(k->cur_tmp),
		         "%s/samples/.collector-XXXXXX", c->conf.data_dir);
		if ((k->cur_fd = mkstemp(k->cur_tmp)) == -1 ||
		    (k->md == NULL && (k->md = EVP_MD_CTX_new()) == NULL) ||
		    EVP_DigestInit_ex(k->md, EVP_sha256(), NULL) != 1) {
			log_warn("collector: %s", k->cur_tmp);
			if (k->cur_fd != -1) {
				close(k->cur_fd);
				unlink(k->cur_tmp);
				k->cur_fd = -1;
			}
			k->cur[0] = '\0';
			return;
		}
		evbuffer_add_printf(bufferevent_get_output(k->bev), "want %s\n",
		                    k->cur);
	}
}

/* An offer: the sighting is recorded; content not held yet is asked
 * for. */
static int
sample_offer(struct coll_conn *k, const struct coll_msg *m)
{
	struct center *c = k->co->c;
	int i;

	if (store_exec(
	        c->store,
	        "INSERT INTO coll_samples (sha256, center, agent_id, "
	        "task_id, path, size, received_at) VALUES (?, ?, ?, ?, "
	        "?, ?, ?) ON CONFLICT (sha256, center, agent_id) DO "
	        "NOTHING",
	        S_TEXT(m->sha256), S_TEXT(k->center), S_TEXT(m->agent_id),
	        S_TEXT(m->task_id[0] ? m->task_id : NULL),
	        S_TEXT(json_string_value(json_object_get(m->data, "path"))),
	        S_INT(m->size), S_INT(m->time)) < 0)
		return -1;
	if (sample_held(c, m->sha256) || arriving(k->co, m->sha256))
		return 0;
	for (i = 0; i < k->nwants; i++)
		if (strcmp(k->wants[i], m->sha256) == 0)
			return 0;
	if (k->nwants == COLL_MAX_WANTS)
		return 0; /* offered again on the next connection */
	memcpy(k->wants[k->nwants], m->sha256, 65);
	k->want_size[k->nwants++] = m->size;
	want_next(k);
	return 0;
}

/* A chunk of the sample arriving; -1 after refusing the connection. */
static int
sample_chunk(struct coll_conn *k, const struct coll_msg *m)
{
	struct center *c = k->co->c;
	unsigned char md[32];
	char got[65], dir[4096], file[4200];
	unsigned int mdlen = 0;
	struct store_rows *q;
	size_t i;

	if (k->cur[0] == '\0' || strcmp(m->sha256, k->cur) != 0 ||
	    m->id != k->cur_got ||
	    k->cur_got + (long long)m->binlen > k->cur_size) {
		refuse(k, "a sample chunk that was not asked for, out of order "
		          "or beyond the sample's size");
		return -1;
	}
	if (m->binlen > 0 &&
	    (write(k->cur_fd, m->bin, m->binlen) != (ssize_t)m->binlen ||
	     EVP_DigestUpdate(k->md, m->bin, m->binlen) != 1)) {
		log_warn("collector: %s", k->cur_tmp);
		refuse(k, "cannot store the sample (sent again later)");
		return -1;
	}
	k->cur_got += (long long)m->binlen;
	if (!m->end)
		return 0;
	EVP_DigestFinal_ex(k->md, md, &mdlen);
	for (i = 0; i < 32; i++)
		snprintf(got + 2 * i, 3, "%02x", md[i]);
	close(k->cur_fd);
	k->cur_fd = -1;
	if (k->cur_got != k->cur_size || strcmp(got, k->cur) != 0) {
		log_warnx("collector: %s: sample %s arrived as %lld bytes with "
		          "SHA-256 %s; dropped",
		          k->center, k->cur, k->cur_got, got);
		unlink(k->cur_tmp);
	} else if (sample_dir(c, k->cur, dir, sizeof(dir)) == -1 ||
	           (snprintf(file, sizeof(file), "%s/%s", dir, k->cur),
	            rename(k->cur_tmp, file)) == -1) {
		log_warn("collector: %s", file);
		unlink(k->cur_tmp);
	} else {
		/* The content, once, in the center's own samples table:
		 * listed and downloaded like any sample. */
		q = store_query(c->store,
		                "SELECT agent_id, task_id, path, received_at "
		                "FROM coll_samples WHERE sha256 = ? ORDER BY "
		                "received_at LIMIT 1",
		                S_TEXT(k->cur));
		if (q != NULL && store_next(q) == 1)
			store_exec(
			    c->store,
			    "INSERT INTO samples (sha256, size, agent_id, "
			    "task_id, path, received_at) VALUES (?, ?, ?, "
			    "?, ?, ?) ON CONFLICT (sha256) DO NOTHING",
			    S_TEXT(k->cur), S_INT(k->cur_size),
			    S_TEXT(store_text(q, 0)), S_TEXT(store_text(q, 1)),
			    S_TEXT(store_text(q, 2)), S_INT(time(NULL)));
		store_done(q);
		metrics_add("vigil_collector_samples_total", NULL, 1);
		log_info("collector: sample %s (%lld bytes) from %s", k->cur,
		         k->cur_size, k->center);
	}
	k->cur[0] = '\0';
	want_next(k);
	return 0;
}

/* One message of the feed; -1 after refusing the connection. */
static int
handle(struct coll_conn *k, const uint8_t *p, size_t n)
{
	struct coll_msg m;
	struct buf err;
	long long added;

	buf_init(&err, 512);
	if (collproto_parse(p, n, &m, &err) == -1) {
		buf_printf(&err, " (a %zu-byte message)", n);
		refuse(k, buf_cstr(&err));
		buf_free(&err);
		return -1;
	}
	buf_free(&err);
	switch (m.kind) {
	case COLL_EVENT:
		if (k->pend_bytes + n > COLL_MAX_PENDING) {
			collproto_free(&m);
			refuse(k, "a batch over 32 MiB without a commit");
			return -1;
		}
		if (k->npend == k->cap) {
			size_t nc = k->cap ? k->cap * 2 : 256;
			struct coll_msg *np =
			    realloc(k->pend, nc * sizeof(*np));

			if (np == NULL) {
				collproto_free(&m);
				refuse(k, "out of memory; send again later");
				return -1;
			}
			k->pend = np;
			k->cap = nc;
		}
		k->pend[k->npend++] = m;
		k->pend_bytes += n;
		return 0;
	case COLL_AGENT:
		if (store_agent(k, &m) == -1)
			log_warnx("collector: %s: agent %s not stored",
			          k->center, m.agent_id);
		collproto_free(&m);
		return 0;
	case COLL_SAMPLE:
		if (sample_offer(k, &m) == -1) {
			collproto_free(&m);
			refuse(k, "cannot record the sample (offered again "
			          "later)");
			return -1;
		}
		collproto_free(&m);
		return 0;
	case COLL_CHUNK:
		if (space_is_low()) {
			collproto_free(&m);
			refuse(k, "the collector's disk is nearly full; the "
			          "sample is not stored (offered again later)");
			return -1;
		}
		if (sample_chunk(k, &m) == -1) {
			collproto_free(&m);
			return -1;
		}
		collproto_free(&m);
		return 0;
	case COLL_COMMIT:
		if (space_is_low()) {
			refuse(k, "the collector's disk is nearly full; the "
			          "batch is not stored (sent again later)");
			return -1;
		}
		if ((added = store_batch(k)) < 0) {
			refuse(k, "cannot store the batch (sent again later)");
			return -1;
		}
		metrics_add("vigil_collector_events_total", NULL,
		            (double)added);
		if (added > 0)
			forward_kick(k->co->c); /* on to the SIEMs */
		metrics_add("vigil_collector_duplicates_total", NULL,
		            (double)((long long)k->npend - added));
		pend_clear(k);
		evbuffer_add_printf(bufferevent_get_output(k->bev),
		                    "ack %lld\n", m.id);
		return 0;
	}
	collproto_free(&m);
	return 0;
}

static void
read_cb(struct bufferevent *bev, void *arg)
{
	struct coll_conn *k = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	while (!k->closing) {
		size_t len = evbuffer_get_length(in), need, mlen;
		const uint8_t *p, *msg;
		long used;

		if (len == 0)
			return;
		p = evbuffer_pullup(in, (ssize_t)(len < 16 ? len : 16));
		used =
		    collproto_frame(p, len < 16 ? len : 16, &need, &msg, &mlen);
		if (used == -2 && need > 0 && len >= need) {
			p = evbuffer_pullup(in, (ssize_t)need);
			used = collproto_frame(p, need, &need, &msg, &mlen);
		}
		if (used == -2)
			return;
		if (used < 0) {
			refuse(k, "the feed is not octet-counted frames");
			return;
		}
		if (handle(k, msg, mlen) == -1)
			return;
		evbuffer_drain(in, (size_t)used);
	}
}

static void
event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct coll_conn *k = arg;

	if (what & BEV_EVENT_CONNECTED) {
		SSL *ssl = bufferevent_openssl_get_ssl(bev);
		X509 *x = ssl ? SSL_get0_peer_certificate(ssl) : NULL;
		struct buf why;
		char *cn;

		buf_init(&why, 512);
		if (pki_role_allowed(x, PKI_ROLE_BIT(PKI_ROLE_CENTER),
		                     "the analysis collector", &why) == -1) {
			refuse(k, buf_cstr(&why));
			buf_free(&why);
			return;
		}
		buf_free(&why);
		if ((cn = tls_subject_cn(x)) == NULL || *cn == '\0' ||
		    strlen(cn) >= sizeof(k->center)) {
			free(cn);
			refuse(k, "the center's certificate has no usable CN");
			return;
		}
		snprintf(k->center, sizeof(k->center), "%s", cn);
		free(cn);
		/* A center's feed may be quiet for long: no read timeout. */
		bufferevent_set_timeouts(bev, NULL, NULL);
		log_info("collector: center %s connected from %s", k->center,
		         k->addr);
		return;
	}
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
		if (k->center[0])
			log_info("collector: center %s disconnected%s",
			         k->center,
			         k->npend ? " (its last batch was not "
			                    "committed; it sends it again)"
			                  : "");
		else if (!(what & BEV_EVENT_EOF))
			log_warnx("collector: %s: handshake failed", k->addr);
		conn_free(k);
	}
}

static void
addr_text(const struct sockaddr *sa, char *out, size_t n)
{
	const void *a =
	    sa->sa_family == AF_INET6
	        ? (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr
	        : (const void *)&((const struct sockaddr_in *)sa)->sin_addr;

	if (inet_ntop(sa->sa_family, a, out, (socklen_t)n) == NULL)
		snprintf(out, n, "?");
}

static void
accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
          int salen, void *arg)
{
	struct collector *co = arg;
	struct coll_conn *k;
	struct timeval hs = {COLL_HANDSHAKE, 0};
	SSL *ssl;

	(void)l;
	(void)salen;
	if (co->nconns >= COLL_MAX_CONNS ||
	    (k = calloc(1, sizeof(*k))) == NULL) {
		evutil_closesocket(fd);
		return;
	}
	k->co = co;
	k->cur_fd = -1;
	addr_text(sa, k->addr, sizeof(k->addr));
	if ((ssl = SSL_new(co->ctx)) == NULL ||
	    (k->bev = bufferevent_openssl_socket_new(
	         co->c->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
	         BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		SSL_free(ssl);
		evutil_closesocket(fd);
		free(k);
		return;
	}
	k->next = co->conns;
	if (co->conns)
		co->conns->prev = k;
	co->conns = k;
	co->nconns++;
	bufferevent_openssl_set_allow_dirty_shutdown(k->bev, 1);
	bufferevent_set_timeouts(k->bev, &hs, NULL);
	bufferevent_setcb(k->bev, read_cb, NULL, event_cb, k);
	bufferevent_enable(k->bev, EV_READ | EV_WRITE);
}

int
collector_check(const struct center_conf *cf, const char *ca_crt)
{
	struct buf err;
	SSL_CTX *ctx;
	X509 *x;
	int nerr = 0;

	if (cf->coll_cert == NULL || cf->coll_key == NULL) {
		log_warnx("check: [center] role = collector needs [collector] "
		          "cert_file and key_file (vigilctl pki issue --role "
		          "collector --name FQDN)");
		return 1;
	}
	buf_init(&err, 1024);
	if ((x = tls_load_cert(cf->coll_cert, &err)) == NULL) {
		log_warnx("check: [collector] cert_file: %s", buf_cstr(&err));
		nerr++;
	} else if (pki_cert_role(x) != PKI_ROLE_COLLECTOR) {
		log_warnx("check: [collector] cert_file: %s is not a "
		          "collector's certificate (role %s); issue one with "
		          "vigilctl pki issue --role collector",
		          cf->coll_cert,
		          pki_role_name(pki_cert_role(x))
		              ? pki_role_name(pki_cert_role(x))
		              : "none");
		nerr++;
	}
	X509_free(x);
	buf_reset(&err);
	if (nerr == 0 && (ctx = tls_server_ctx(cf->coll_cert, cf->coll_key,
	                                       ca_crt, TLS_CLIENT_REQUIRED,
	                                       NULL, NULL, &err)) == NULL) {
		log_warnx("check: [collector]: %s", buf_cstr(&err));
		nerr++;
	} else if (nerr == 0)
		SSL_CTX_free(ctx);
	buf_free(&err);
	return nerr;
}

int
collector_start(struct center *c, struct buf *err)
{
	struct collector *co;
	struct evutil_addrinfo hints, *ai = NULL;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char port[16];

	metrics_declare("vigil_collector_events_total", METRIC_COUNTER,
	                "events stored by the collector (each once)");
	metrics_declare("vigil_collector_duplicates_total", METRIC_COUNTER,
	                "events a center sent again that were stored already");
	metrics_declare("vigil_collector_samples_total", METRIC_COUNTER,
	                "sample contents stored by the collector (each "
	                "SHA-256 once)");
	metrics_declare("vigil_collector_refused_total", METRIC_COUNTER,
	                "collector connections refused (wrong role, bad "
	                "frames, store failures)");
	if (c->conf.role != CENTER_ROLE_COLLECTOR)
		return 0;
	if (c->conf.coll_cert == NULL || c->conf.coll_key == NULL) {
		buf_puts(err, "[center] role = collector needs [collector] "
		              "cert_file and key_file");
		return -1;
	}
	if ((co = c->coll = calloc(1, sizeof(*co))) == NULL)
		return -1;
	co->c = c;
	if ((co->ctx = tls_server_ctx(c->conf.coll_cert, c->conf.coll_key,
	                              c->paths.ca_crt, TLS_CLIENT_REQUIRED,
	                              NULL, NULL, err)) == NULL)
		return -1;
	/* Centers only (docs/pki.md, "Who accepts whom"): another role's
	 * certificate fails the handshake, logged and counted as
	 * wrong_role; event_cb checks again once connected. */
	tls_server_roles(co->ctx, PKI_ROLE_BIT(PKI_ROLE_CENTER),
	                 "the analysis collector");
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST;
	snprintf(port, sizeof(port), "%lld", c->conf.coll_port);
	if (evutil_getaddrinfo(c->conf.coll_listen, port, &hints, &ai) != 0 ||
	    ai == NULL) {
		buf_printf(err, "[collector] listen: %s: not an address",
		           c->conf.coll_listen);
		return -1;
	}
	co->lis = evconnlistener_new_bind(
	    c->base, accept_cb, co,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
	    128, ai->ai_addr, (int)ai->ai_addrlen);
	evutil_freeaddrinfo(ai);
	if (co->lis == NULL) {
		buf_printf(err, "[collector] %s:%lld: %s", c->conf.coll_listen,
		           c->conf.coll_port, strerror(errno));
		return -1;
	}
	if (getsockname(evconnlistener_get_fd(co->lis), (struct sockaddr *)&ss,
	                &sl) == 0)
		c->coll_port =
		    ntohs(ss.ss_family == AF_INET6
		              ? ((struct sockaddr_in6 *)&ss)->sin6_port
		              : ((struct sockaddr_in *)&ss)->sin_port);
	log_info("collector: accepting centers' feeds on %s:%d",
	         c->conf.coll_listen, c->coll_port);
	return 0;
}

void
collector_stop(struct center *c)
{
	struct collector *co = c->coll;

	if (co == NULL)
		return;
	if (co->lis)
		evconnlistener_free(co->lis);
	while (co->conns)
		conn_free(co->conns);
	SSL_CTX_free(co->ctx);
	free(co);
	c->coll = NULL;
}

/* ---- admin API ---- */

static json_t *
case_json(struct store_rows *q)
{
	json_t *o = json_pack(
	    "{s:s, s:s?, s:s?, s:s?, s:I, s:I, s:I, s:I, s:I, s:I}", "id",
	    store_text(q, 0), "rule", store_text(q, 1), "path",
	    store_text(q, 2), "sha256", store_text(q, 3), "first_seen",
	    (json_int_t)store_int(q, 4), "last_seen",
	    (json_int_t)store_int(q, 5), "hits", (json_int_t)store_int(q, 6),
	    "suppressed", (json_int_t)store_int(q, 7), "hosts",
	    (json_int_t)store_int(q, 12), "centers",
	    (json_int_t)store_int(q, 13));

	if (o == NULL)
		return NULL;
	json_object_set_new(o, "baseline",
	                    store_isnull(q, 8)
	                        ? json_null()
	                        : json_pack("{s:s, s:s?, s:s?, s:I}", "action",
	                                    store_text(q, 8), "reason",
	                                    store_text(q, 9), "by",
	                                    store_text(q, 10), "at",
	                                    (json_int_t)store_int(q, 11)));
	return o;
}

#define CASE_COLUMNS                                                           \
	"c.id, c.rule, c.path, c.sha256, c.first_seen, c.last_seen, c.hits, "  \
	"c.suppressed, c.baseline, c.baseline_reason, c.baseline_by, "         \
	"c.baseline_at, (SELECT COUNT(*) FROM coll_case_hosts h WHERE "        \
	"h.case_id = c.id), (SELECT COUNT(DISTINCT h.center) FROM "            \
	"coll_case_hosts h WHERE h.case_id = c.id)"

/* ?limit=N&cursor=C (query.h, offset pages): -1 after replying 400. */
static int
limit_arg(struct http_req *r, long long *limit, long long *offset)
{
	return query_page_args(r, COLL_SEARCH_LIMIT, limit, offset);
}

/* The page's reply: the list under its own member (as before) and, as
 * the center's lists answer, under "items" with "next_cursor". */
static json_t *
page_reply(const char *member, json_t *arr, long long limit, long long offset)
{
	json_t *next = query_page_next(arr, limit, offset);

	return json_pack("{s:O, s:O, s:o}", member, arr, "items", arr,
	                 "next_cursor", next);
}

/* GET /api/v1/collector/cases[?baseline=yes|no&min_hosts=N&limit=N] */
static void
adm_cases(struct http_req *r)
{
	struct center *c = C(r);
	const char *bl = http_req_query(r, "baseline");
	long long limit, offset;
	int want = -1;
	struct store_rows *q;
	json_t *arr = json_array();

	if (limit_arg(r, &limit, &offset) == -1)
		goto out;
	if (bl != NULL) {
		if (strcmp(bl, "yes") == 0)
			want = 1;
		else if (strcmp(bl, "no") == 0)
			want = 0;
		else {
			http_reply_error_field(r, 400, "bad_request",
			                       "baseline",
			                       "baseline: yes or no");
			goto out;
		}
	}
	q = store_query(c->store,
	                "SELECT " CASE_COLUMNS " FROM coll_cases c WHERE (? = "
	                "-1 OR (? = 1) = (c.baseline IS NOT NULL)) ORDER BY "
	                "c.last_seen DESC, c.id LIMIT ? OFFSET ?",
	                S_INT(want), S_INT(want), S_INT(limit + 1),
	                S_INT(offset));
	if (q == NULL) {
		http_reply_error(r, 500, "store", "store unavailable");
		goto out;
	}
	while (store_next(q) == 1)
		json_array_append_new(arr, case_json(q));
	store_done(q);
	http_reply_json(r, 200, page_reply("cases", arr, limit, offset));
out:
	json_decref(arr);
}

static json_t *
case_get(struct center *c, const char *id)
{
	struct store_rows *q;
	json_t *o = NULL, *hosts;

	q = store_query(c->store,
	                "SELECT " CASE_COLUMNS " FROM coll_cases c WHERE c.id "
	                "= ?",
	                S_TEXT(id));
	if (q != NULL && store_next(q) == 1)
		o = case_json(q);
	store_done(q);
	if (o == NULL)
		return NULL;
	hosts = json_array();
	q = store_query(c->store,
	                "SELECT center, agent_id, hostname, first_seen, "
	                "last_seen FROM coll_case_hosts WHERE case_id = ? "
	                "ORDER BY center, agent_id LIMIT 1000",
	                S_TEXT(id));
	while (q != NULL && store_next(q) == 1)
		json_array_append_new(
		    hosts,
		    json_pack("{s:s, s:s, s:s?, s:I, s:I}", "center",
		              store_text(q, 0), "agent_id", store_text(q, 1),
		              "hostname", store_text(q, 2), "first_seen",
		              (json_int_t)store_int(q, 3), "last_seen",
		              (json_int_t)store_int(q, 4)));
	store_done(q);
	json_object_set_new(o, "host_list", hosts);
	return o;
}

static const struct schema_field baseline_schema[] = {
    {"action", SCH_STRING, 1},
    {"reason", SCH_STRING | SCH_NULL, 0},
    {NULL, 0, 0},
};

/* GET /api/v1/collector/cases/ID, PUT and DELETE .../ID/baseline */
static void
adm_case(struct http_req *r)
{
	struct center *c = C(r);
	char id[17];
	const char *rest = http_req_rest_id(r, id, sizeof(id));
	const char *action, *reason;
	long long now = (long long)time(NULL);
	json_t *o, *j = NULL;
	int n;

	/* A change's body is checked first: a bad one is a 400 naming its
	 * member whatever the case (e2e/strict_input). */
	if (strcmp(r->method, "PUT") == 0 &&
	    (j = schema_body(r, baseline_schema)) == NULL)
		return;
	if (strcmp(r->method, "DELETE") == 0 && schema_no_body(r) == -1)
		return;
	if (rest == NULL || strlen(id) != 16 || (o = case_get(c, id)) == NULL) {
		http_reply_error(r, 404, "not_found", "no such case");
		goto out;
	}
	if (strcmp(r->method, "GET") == 0 && *rest == '\0') {
		http_reply_json(r, 200, o);
		return;
	}
	if (strcmp(rest, "/baseline") != 0 || strcmp(r->method, "GET") == 0) {
		json_decref(o);
		http_reply_error(r, 404, "not_found",
		                 "expected /api/v1/collector/cases/ID or "
		                 "/api/v1/collector/cases/ID/baseline");
		goto out;
	}
	if (strcmp(r->method, "DELETE") == 0) {
		audit_before(r, o);
		n = store_exec(c->store,
		               "UPDATE coll_cases SET baseline = NULL, "
		               "baseline_reason = NULL, baseline_by = ?, "
		               "baseline_at = ? WHERE id = ?",
		               S_TEXT(r->who), S_INT(now), S_TEXT(id));
		goto reply;
	}
	action = json_string_value(json_object_get(j, "action"));
	reason = json_string_value(json_object_get(j, "reason"));
	if (strcmp(action, "suppress") != 0 && strcmp(action, "lower") != 0) {
		json_decref(o);
		http_reply_error_field(
		    r, 400, "bad_request", "action",
		    "action: suppress (new occurrences are "
		    "stored but not counted) or lower (their "
		    "level becomes info)");
		goto out;
	}
	if (reason != NULL && strlen(reason) > COLL_REASON_MAX) {
		json_decref(o);
		http_reply_error_field(r, 400, "bad_request", "reason",
		                       "reason: at most %d bytes",
		                       COLL_REASON_MAX);
		goto out;
	}
	audit_before(r, o);
	n = store_exec(c->store,
	               "UPDATE coll_cases SET baseline = ?, baseline_reason = "
	               "?, baseline_by = ?, baseline_at = ? WHERE id = ?",
	               S_TEXT(action), S_TEXT(reason), S_TEXT(r->who),
	               S_INT(now), S_TEXT(id));
reply:
	if (n != 1) {
		http_reply_error(r, 500, "store", "cannot store the baseline");
		goto out;
	}
	log_info("collector: case %s baseline %s by %s", id,
	         j ? json_string_value(json_object_get(j, "action"))
	           : "removed",
	         r->who);
	if ((o = case_get(c, id)) == NULL)
		http_reply_error(r, 500, "store", "cannot read the case");
	else
		http_reply_json(r, 200, o);
out:
	json_decref(j);
}

/* GET /api/v1/collector/centers */
static void
adm_centers(struct http_req *r)
{
	struct center *c = C(r);
	struct store_rows *q;
	json_t *arr = json_array();
	struct coll_conn *k;

	q = store_query(c->store,
	                "SELECT name, first_seen, last_seen, events, addr, "
	                "(SELECT COUNT(*) FROM coll_agents a WHERE a.center = "
	                "n.name) FROM coll_centers n ORDER BY name");
	if (q == NULL) {
		json_decref(arr);
		http_reply_error(r, 500, "store", "store unavailable");
		return;
	}
	while (store_next(q) == 1) {
		int up = 0;

		for (k = c->coll ? c->coll->conns : NULL; k; k = k->next)
			if (!k->closing &&
			    strcmp(k->center, store_text(q, 0)) == 0)
				up = 1;
		json_array_append_new(
		    arr,
		    json_pack("{s:s, s:I, s:I, s:I, s:s?, s:I, s:b}", "name",
		              store_text(q, 0), "first_seen",
		              (json_int_t)store_int(q, 1), "last_seen",
		              (json_int_t)store_int(q, 2), "events",
		              (json_int_t)store_int(q, 3), "addr",
		              store_text(q, 4), "agents",
		              (json_int_t)store_int(q, 5), "connected", up));
	}
	store_done(q);
	http_reply_json(r, 200, json_pack("{s:o}", "centers", arr));
}

/* GET /api/v1/collector/agents[?center=NAME&limit=N]: the inventory */
static void
adm_agents(struct http_req *r)
{
	struct center *c = C(r);
	const char *center = http_req_query(r, "center");
	long long limit, offset;
	struct store_rows *q;
	json_t *arr;

	if (limit_arg(r, &limit, &offset) == -1)
		return;
	q = store_query(c->store,
	                "SELECT center, agent_id, hostname, data, updated_at "
	                "FROM coll_agents WHERE (? = 0 OR center = ?) "
	                "ORDER BY center, hostname, agent_id LIMIT ? OFFSET ?",
	                S_INT(center != NULL), S_TEXT(center), S_INT(limit + 1),
	                S_INT(offset));
	if (q == NULL) {
		http_reply_error(r, 500, "store", "store unavailable");
		return;
	}
	arr = json_array();
	while (store_next(q) == 1) {
		json_t *a = json_loads(store_text(q, 3), 0, NULL);

		json_array_append_new(
		    arr,
		    json_pack("{s:s, s:s, s:s?, s:I, s:o}", "center",
		              store_text(q, 0), "agent_id", store_text(q, 1),
		              "hostname", store_text(q, 2), "updated_at",
		              (json_int_t)store_int(q, 4), "agent",
		              a ? a : json_object()));
	}
	store_done(q);
	http_reply_json(r, 200, page_reply("agents", arr, limit, offset));
	json_decref(arr);
}

/* GET /api/v1/collector/search?q=TEXT&center=&agent=&type=&case=
 * &suppressed=yes|no|all&limit=N: every center's events, newest first.
 * q is a substring of the data, the host name or the agent id. */
static void
adm_search(struct http_req *r)
{
	struct center *c = C(r);
	const char *text = http_req_query(r, "q");
	const char *center = http_req_query(r, "center");
	const char *agent = http_req_query(r, "agent");
	const char *type = http_req_query(r, "type");
	const char *cs = http_req_query(r, "case");
	const char *sup = http_req_query(r, "suppressed");
	char *like = NULL;
	long long limit, offset;
	int want_sup = 0; /* 0 no, 1 yes, -1 all */
	struct store_rows *q;
	json_t *arr;
	size_t i, k = 0;

	if (limit_arg(r, &limit, &offset) == -1)
		return;
	if (sup != NULL) {
		if (strcmp(sup, "no") == 0)
			want_sup = 0;
		else if (strcmp(sup, "yes") == 0)
			want_sup = 1;
		else if (strcmp(sup, "all") == 0)
			want_sup = -1;
		else {
			http_reply_error_field(r, 400, "bad_request",
			                       "suppressed",
			                       "suppressed: no (default), yes "
			                       "or all");
			return;
		}
	}
	if (text != NULL) {
		/* A LIKE pattern: %, _ and \ in the text match themselves. */
		if (strlen(text) > 256 ||
		    (like = malloc(2 * strlen(text) + 3)) == NULL) {
			http_reply_error_field(r, 400, "bad_request", "q",
			                       "q: at most 256 bytes");
			return;
		}
		like[k++] = '%';
		for (i = 0; text[i]; i++) {
			if (text[i] == '%' || text[i] == '_' || text[i] == '\\')
				like[k++] = '\\';
			like[k++] = text[i];
		}
		like[k++] = '%';
		like[k] = '\0';
	}
	q = store_query(
	    c->store,
	    "SELECT center, agent_id, seq, time, received_at, type, level, "
	    "orig_level, task_id, hostname, data, case_id, suppressed FROM "
	    "coll_events WHERE (? = 0 OR data LIKE ? ESCAPE '\\' OR "
	    "hostname LIKE ? ESCAPE '\\' OR agent_id LIKE ? ESCAPE '\\') AND "
	    "(? = 0 OR center = ?) AND (? = 0 OR agent_id = ?) AND (? = 0 OR "
	    "type = ?) AND (? = 0 OR case_id = ?) AND (? = -1 OR suppressed = "
	    "?) ORDER BY received_at DESC, center, agent_id, seq DESC LIMIT ? "
	    "OFFSET ?",
	    S_INT(like != NULL), S_TEXT(like), S_TEXT(like), S_TEXT(like),
	    S_INT(center != NULL), S_TEXT(center), S_INT(agent != NULL),
	    S_TEXT(agent), S_INT(type != NULL), S_TEXT(type), S_INT(cs != NULL),
	    S_TEXT(cs), S_INT(want_sup), S_INT(want_sup), S_INT(limit + 1),
	    S_INT(offset));
	free(like);
	if (q == NULL) {
		http_reply_error(r, 500, "store", "store unavailable");
		return;
	}
	arr = json_array();
	while (store_next(q) == 1) {
		json_t *d = json_loads(store_text(q, 10), 0, NULL);

		json_array_append_new(
		    arr,
		    json_pack(
		        "{s:s, s:s, s:I, s:I, s:I, s:s, s:s?, s:s?, "
		        "s:s?, s:s?, s:o, s:s?, s:b}",
		        "center", store_text(q, 0), "agent_id",
		        store_text(q, 1), "seq", (json_int_t)store_int(q, 2),
		        "time", (json_int_t)store_int(q, 3), "received_at",
		        (json_int_t)store_int(q, 4), "type", store_text(q, 5),
		        "level", store_text(q, 6), "orig_level",
		        store_text(q, 7), "task_id", store_text(q, 8),
		        "hostname", store_text(q, 9), "data",
		        d ? d : json_object(), "case_id", store_text(q, 11),
		        "suppressed", (int)store_int(q, 12)));
	}
	store_done(q);
	http_reply_json(r, 200, page_reply("events", arr, limit, offset));
	json_decref(arr);
}

/* GET /api/v1/collector/samples[?sha256=HEX&limit=N]: each content
 * once, with where it was seen. */
static void
adm_samples(struct http_req *r)
{
	struct center *c = C(r);
	const char *sha = http_req_query(r, "sha256");
	long long limit, offset;
	struct store_rows *q;
	json_t *arr, *cur = NULL, *seen = NULL;
	char last[65] = "";

	if (limit_arg(r, &limit, &offset) == -1)
		return;
	q = store_query(
	    c->store,
	    "SELECT s.sha256, s.size, s.center, s.agent_id, s.path, "
	    "s.received_at, (SELECT COUNT(*) FROM samples x WHERE x.sha256 = "
	    "s.sha256) FROM coll_samples s WHERE s.sha256 IN (SELECT sha256 "
	    "FROM coll_samples WHERE (? = 0 OR sha256 = ?) GROUP BY sha256 "
	    "ORDER BY MAX(received_at) DESC, sha256 LIMIT ? OFFSET ?) ORDER "
	    "BY (SELECT MAX(y.received_at) FROM coll_samples y WHERE y.sha256 "
	    "= s.sha256) DESC, s.sha256, s.center, s.agent_id",
	    S_INT(sha != NULL), S_TEXT(sha), S_INT(limit + 1), S_INT(offset));
	if (q == NULL) {
		http_reply_error(r, 500, "store", "store unavailable");
		return;
	}
	arr = json_array();
	while (store_next(q) == 1) {
		if (strcmp(last, store_text(q, 0)) != 0) {
			snprintf(last, sizeof(last), "%s", store_text(q, 0));
			seen = json_array();
			cur = json_pack("{s:s, s:I, s:b, s:o}", "sha256", last,
			                "size", (json_int_t)store_int(q, 1),
			                "stored", store_int(q, 6) > 0, "seen",
			                seen);
			json_array_append_new(arr, cur);
		}
		json_array_append_new(
		    seen,
		    json_pack("{s:s, s:s, s:s?, s:I}", "center",
		              store_text(q, 2), "agent_id", store_text(q, 3),
		              "path", store_text(q, 4), "received_at",
		              (json_int_t)store_int(q, 5)));
	}
	store_done(q);
	http_reply_json(r, 200, page_reply("samples", arr, limit, offset));
	json_decref(arr);
}

const struct http_route collector_admin_routes[] = {
    {"GET", "/api/v1/collector/samples", adm_samples, 0, "collector_samples", 0,
     ROLE_READONLY},
    {"GET", "/api/v1/collector/centers", adm_centers, 0, "collector_centers", 0,
     ROLE_READONLY},
    {"GET", "/api/v1/collector/agents", adm_agents, 0, "collector_agents", 0,
     ROLE_READONLY},
    {"GET", "/api/v1/collector/cases", adm_cases, 0, "collector_cases", 0,
     ROLE_READONLY},
    {"GET", "/api/v1/collector/cases/", adm_case, HTTP_ROUTE_PREFIX,
     "collector_case", 0, ROLE_READONLY},
    {"PUT", "/api/v1/collector/cases/", adm_case, HTTP_ROUTE_PREFIX,
     "collector_baseline", 16384, ROLE_ANALYST},
    {"DELETE", "/api/v1/collector/cases/", adm_case, HTTP_ROUTE_PREFIX,
     "collector_baseline", 0, ROLE_ANALYST},
    {"GET", "/api/v1/collector/search", adm_search, 0, "collector_search", 0,
     ROLE_READONLY},
    {NULL, NULL, NULL, 0, NULL, 0, 0},
};
