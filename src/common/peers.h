/*
 * peers: open connections counted by client address, for a per-address
 * connection limit (http.c, hstream.c). An address is an IPv4 address
 * (also when it arrives IPv4-mapped on a dual-stack socket) or an IPv6
 * /64, which one host or site usually holds whole. A hash table of
 * counts; an entry goes with its last connection.
 */
#ifndef VIGIL_PEERS_H
#define VIGIL_PEERS_H

#include <stddef.h>

#include <netinet/in.h>
#include <sys/socket.h>

#define PEERS_KEYLEN (INET6_ADDRSTRLEN + 4) /* "2001:db8::/64" */

struct peers;

struct peers *peers_new(void);
void peers_free(struct peers *p);
/* The key of sa (never NULL), e.g. "192.0.2.1", "2001:db8:1:2::/64";
 * "" for another family. n >= PEERS_KEYLEN. */
void peers_key(const struct sockaddr *sa, char *key, size_t n);
/* Connections counted for key. */
int peers_count(const struct peers *p, const char *key);
/* One more for key; -1 when out of memory. */
int peers_add(struct peers *p, const char *key);
/* One less for key, which must have been added. */
void peers_del(struct peers *p, const char *key);

#endif
