/*
 * peers: connections per client address (see peers.h). Chained hashing
 * (FNV-1a) over a fixed bucket array: the number of distinct addresses is
 * at most the number of open connections, which a listener bounds.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>

#include "log.h"
#include "peers.h"

#define PEERS_BUCKETS 4096

struct peer {
	struct peer *next;
	int n;
	char key[PEERS_KEYLEN];
};

struct peers {
	struct peer *b[PEERS_BUCKETS];
};

struct peers *
peers_new(void)
{
	return calloc(1, sizeof(struct peers));
}

void
peers_free(struct peers *p)
{
	struct peer *e, *next;
	size_t i;

	if (p == NULL)
		return;
	for (i = 0; i < PEERS_BUCKETS; i++)
		for (e = p->b[i]; e != NULL; e = next) {
			next = e->next;
			free(e);
		}
	free(p);
}

void
peers_key(const struct sockaddr *sa, char *key, size_t n)
{
	struct in6_addr a6;
	size_t k;

	if (n < PEERS_KEYLEN)
		fatalx("%s: key buffer of %zu bytes", __func__, n);
	key[0] = '\0';
	if (sa == NULL)
		return;
	if (sa->sa_family == AF_INET) {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr,
		          key, (socklen_t)n);
	} else if (sa->sa_family == AF_INET6) {
		a6 = ((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(&a6)) {
			inet_ntop(AF_INET, &a6.s6_addr[12], key, (socklen_t)n);
		} else {
			memset(&a6.s6_addr[8], 0, 8);
			if (inet_ntop(AF_INET6, &a6, key, (socklen_t)n) ==
			    NULL) {
				key[0] = '\0';
				return;
			}
			k = strlen(key);
			snprintf(key + k, n - k, "/64");
		}
	}
}

static struct peer **
peers_slot(const struct peers *p, const char *key)
{
	struct peer *const *e;
	uint32_t h = 2166136261u;
	const char *c;

	for (c = key; *c != '\0'; c++)
		h = (h ^ (uint8_t)*c) * 16777619u;
	for (e = &p->b[h % PEERS_BUCKETS]; *e != NULL; e = &(*e)->next)
		if (strcmp((*e)->key, key) == 0)
			break;
	return (struct peer **)e;
}

int
peers_count(const struct peers *p, const char *key)
{
	struct peer *e = *peers_slot(p, key);

	return e != NULL ? e->n : 0;
}

int
peers_add(struct peers *p, const char *key)
{
	struct peer **slot = peers_slot(p, key), *e;

	if ((e = *slot) == NULL) {
		if ((e = calloc(1, sizeof(*e))) == NULL)
			return -1;
		snprintf(e->key, sizeof(e->key), "%s", key);
		*slot = e;
	}
	e->n++;
	return 0;
}

void
peers_del(struct peers *p, const char *key)
{
	struct peer **slot = peers_slot(p, key), *e = *slot;

	if (e == NULL)
		fatalx("%s: %s was never added", __func__, key);
	if (--e->n > 0)
		return;
	*slot = e->next;
	free(e);
}
