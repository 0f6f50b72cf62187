/*
 * ratelimit.c: a token bucket per source address in fixed memory. Buckets
 * live in a hashed table of RL_SLOTS entries; a new address that hashes to
 * an occupied slot takes it over once that slot's bucket is full again, so
 * an attacker cycling addresses cannot grow memory, only share buckets.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "center.h"

#define RL_SLOTS 4096

struct bucket {
	char addr[64];
	double tokens;
	long long last;
};

struct ratelimit {
	double rate; /* tokens per second */
	double burst;
	struct bucket b[RL_SLOTS];
};

static size_t
rl_hash(const char *s)
{
	size_t h = 1469598103934665603ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h % RL_SLOTS;
}

struct ratelimit *
ratelimit_new(double per_minute, double burst)
{
	struct ratelimit *rl = calloc(1, sizeof(*rl));

	if (rl == NULL)
		return NULL;
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

int
ratelimit_take(struct ratelimit *rl, const char *addr, long long now,
               int *retry_after)
{
	struct bucket *b = &rl->b[rl_hash(addr)];

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
