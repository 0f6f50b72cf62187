/*
 * ratelimit.c: a token bucket per source in fixed memory. A source is an
 * IPv4 address or an IPv6 /64 (one host usually owns a whole /64, so
 * counting single IPv6 addresses would hand it 2^64 buckets). Buckets live
 * in a table of RL_SLOTS entries indexed by SipHash with a random
 * per-process key (nobody can aim at another source's slot); a new source that
 * lands on an occupied slot takes it over once that bucket is full again, so an
 * attacker cycling addresses cannot grow memory, only share buckets.
 *
 * Several nodes on one PostgreSQL database share their buckets instead
 * (ratelimit_share): one row of rate_buckets per source, read and written
 * in one short transaction on a connection of the limiter's own (the
 * callers check the limit before their request writes anything, but a
 * request's unit of work may hold its transaction through a password
 * hash: the buckets must not wait for it, nor it for them). Rows of
 * buckets that have filled up again are deleted now and then. Should the
 * database fail, the bucket in memory decides.
 */
#include <stdio.h>
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "center.h"

#define RL_SLOTS 4096

struct bucket {
	char addr[64];
	double tokens;
	long long last;
};

struct ratelimit {
	uint64_t key[2]; /* hash key, random per process */
	double rate;     /* tokens per second */
	double burst;
	struct bucket b[RL_SLOTS];
	struct store *store; /* shared buckets, or NULL */
	char kind[16];
	unsigned long takes;
};

/* The source an address counts as: IPv4 as is, IPv6 as its /64. */
static void
rl_source(const char *addr, char *out, size_t n)
{
	struct in6_addr a6;

	if (strchr(addr, ':') != NULL && inet_pton(AF_INET6, addr, &a6) == 1) {
		memset(a6.s6_addr + 8, 0, 8);
		if (inet_ntop(AF_INET6, &a6, out, (socklen_t)n) != NULL) {
			snprintf(out + strlen(out), n - strlen(out), "/64");
			return;
		}
	}
	snprintf(out, n, "%s", addr);
}

/* SipHash (OpenSSL's) keyed with 128 random bits: the slot of an address
 * cannot be predicted without the key. */
static size_t
rl_hash(const struct ratelimit *rl, const char *s)
{
	unsigned char out[16];
	uint64_t h = 0;
	size_t outlen = 0;

	if (EVP_Q_mac(NULL, "SIPHASH", NULL, NULL, NULL,
	              (const unsigned char *)rl->key, sizeof(rl->key),
	              (const unsigned char *)s, strlen(s), out, sizeof(out),
	              &outlen) == NULL ||
	    outlen < sizeof(h))
		fatalx("%s: SipHash failed", __func__);
	memcpy(&h, out, sizeof(h));
	return (size_t)(h % RL_SLOTS);
}

struct ratelimit *
ratelimit_new(double per_minute, double burst)
{
	struct ratelimit *rl = calloc(1, sizeof(*rl));

	if (rl == NULL)
		return NULL;
	if (RAND_bytes((unsigned char *)rl->key, sizeof(rl->key)) != 1) {
		free(rl);
		return NULL;
	}
	rl->rate = per_minute / 60.0;
	rl->burst = burst;
	return rl;
}

void
ratelimit_set_rate(struct ratelimit *rl, double per_minute)
{
	rl->rate = per_minute / 60.0;
	rl->burst = per_minute;
}

void
ratelimit_free(struct ratelimit *rl)
{
	free(rl);
}

void
ratelimit_share(struct ratelimit *rl, struct store *s, const char *kind)
{
	rl->store = s;
	snprintf(rl->kind, sizeof(rl->kind), "%s", kind);
}

/* The shared bucket of src: 1 taken, 0 empty (*retry_after), -1 when the
 * store failed. Tokens are kept in thousandths. */
static int
take_shared(struct ratelimit *rl, const char *src, long long now,
            int *retry_after)
{
	struct store_rows *q;
	char name[96];
	double tokens = rl->burst;
	int ok, rc = -1;

	snprintf(name, sizeof(name), "%s:%s", rl->kind, src);
	if (store_begin(rl->store) == -1)
		return -1;
	q = store_query(rl->store,
	                "SELECT millitokens, last FROM rate_buckets WHERE "
	                "name = ?",
	                S_TEXT(name));
	if (q == NULL)
		goto out;
	if (store_next(q) == 1) {
		tokens = (double)store_int(q, 0) / 1000.0 +
		         (double)(now - store_int(q, 1)) * rl->rate;
		if (tokens > rl->burst)
			tokens = rl->burst;
	}
	store_done(q);
	if ((ok = tokens >= 1.0))
		tokens -= 1.0;
	else
		*retry_after = (int)((1.0 - tokens) / rl->rate) + 1;
	if (store_exec(rl->store,
	               "INSERT INTO rate_buckets (name, millitokens, last) "
	               "VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
	               "millitokens = excluded.millitokens, last = "
	               "excluded.last",
	               S_TEXT(name), S_INT((long long)(tokens * 1000.0)),
	               S_INT(now)) != 1)
		goto out;
	/* Buckets untouched long enough to be full again say nothing. */
	if (++rl->takes % 256 == 0 &&
	    store_exec(rl->store, "DELETE FROM rate_buckets WHERE last < ?",
	               S_INT(now - (long long)(rl->burst / rl->rate) - 60)) < 0)
		goto out;
	if (store_commit(rl->store) == -1)
		return -1;
	return ok;
out:
	store_rollback(rl->store);
	return rc;
}

int
ratelimit_take(struct ratelimit *rl, const char *addr, long long now,
               int *retry_after)
{
	struct bucket *b;
	char src[64];
	int shared;

	rl_source(addr, src, sizeof(src));
	addr = src;
	if (rl->store != NULL &&
	    (shared = take_shared(rl, src, now, retry_after)) != -1)
		return shared;
	b = &rl->b[rl_hash(rl, addr)];

	if (b->addr[0] == '\0' || strcmp(b->addr, addr) != 0) {
		double refill = b->tokens + (double)(now - b->last) * rl->rate;

		if (b->addr[0] != '\0' && refill < rl->burst) {
			/* Slot busy with another address: share it. */
		} else {
			snprintf(b->addr, sizeof(b->addr), "%s", addr);
			b->tokens = rl->burst;
			b->last = now;
		}
	}
	b->tokens += (double)(now - b->last) * rl->rate;
	if (b->tokens > rl->burst)
		b->tokens = rl->burst;
	b->last = now;
	if (b->tokens >= 1.0) {
		b->tokens -= 1.0;
		return 1;
	}
	*retry_after = (int)((1.0 - b->tokens) / rl->rate) + 1;
	return 0;
}
