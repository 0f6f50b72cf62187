/*
 * facts: what the agent tells the center about its host with every
 * enrollment and heartbeat (docs/protocol.md, "facts"): names, OS, kernel,
 * addresses and the machine id. The center checks them with
 * src/proto/enroll.c, so every string is made to pass that parser: valid
 * UTF-8, no control characters, at most FACT_MAX_STR bytes.
 *
 * The machine id is what tells a cloned data directory from the original
 * (the center compares it with the one the identity enrolled with), so it
 * comes from the host (/etc/machine-id), never from the data directory.
 * VIGIL_MACHINE_ID_FILE names another file, for tests that simulate a clone.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <ifaddrs.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <jansson.h>

#include "agent.h"
#include "buf.h"
#include "enroll.h"
#include "log.h"
#include "tls.h"

#define MACHINE_ID_FILE "/etc/machine-id"
#define OS_RELEASE_FILE "/etc/os-release"

/*
 * A fact string as the center's parser accepts it: control characters
 * become spaces, and the text is cut to FACT_MAX_STR - 1 bytes at a
 * character boundary. Invalid UTF-8 becomes '?'.
 */
static json_t *
fact_str(const char *s, size_t len)
{
	char out[FACT_MAX_STR];
	size_t i = 0, o = 0, n, k;
	unsigned char c;

	while (i < len && o < sizeof(out) - 1) {
		c = (unsigned char)s[i];
		if (c < 0x80) {
			out[o++] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
			i++;
			continue;
		}
		n = c >= 0xf0 && c < 0xf5   ? 4
		    : c >= 0xe0             ? 3
		    : c >= 0xc2 && c < 0xe0 ? 2
		                            : 0;
		for (k = 1; n != 0 && k < n; k++)
			if (i + k >= len ||
			    ((unsigned char)s[i + k] & 0xc0) != 0x80)
				n = 0;
		if (n == 0) {
			out[o++] = '?';
			i++;
			continue;
		}
		if (o + n > sizeof(out) - 1)
			break;
		memcpy(out + o, s + i, n);
		o += n;
		i += n;
	}
	/* Trailing blanks help nobody and the center trims nothing. */
	while (o > 0 && out[o - 1] == ' ')
		o--;
	return json_stringn(out, o);
}

static int
set_fact(json_t *facts, const char *name, const char *s)
{
	json_t *v = fact_str(s, strlen(s));

	return v == NULL ? -1 : json_object_set_new(facts, name, v);
}

/* PRETTY_NAME from os-release, unquoted; "Linux" if there is none. */
static int
os_name(char *out, size_t len)
{
	char line[512];
	FILE *f;
	char *v;
	size_t n;

	snprintf(out, len, "Linux");
	if ((f = fopen(OS_RELEASE_FILE, "re")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "PRETTY_NAME=", 12) != 0)
			continue;
		v = line + 12;
		v[strcspn(v, "\r\n")] = '\0';
		n = strlen(v);
		if (n >= 2 && (v[0] == '"' || v[0] == '\'') &&
		    v[n - 1] == v[0]) {
			v[n - 1] = '\0';
			v++;
		}
		if (v[0] != '\0')
			snprintf(out, len, "%s", v);
		break;
	}
	fclose(f);
	return 0;
}

/* The canonical name of this host, or its plain host name. */
static void
fqdn(const char *host, char *out, size_t len)
{
	struct addrinfo hints, *res = NULL;

	snprintf(out, len, "%s", host);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_flags = AI_CANONNAME;
	if (getaddrinfo(host, NULL, &hints, &res) == 0 && res != NULL &&
	    res->ai_canonname != NULL && res->ai_canonname[0] != '\0')
		snprintf(out, len, "%s", res->ai_canonname);
	if (res != NULL)
		freeaddrinfo(res);
}

/* 32-64 hex digits or a UUID, as the center's parser wants it. */
static int
machine_id_ok(const char *s)
{
	size_t i, len = strlen(s), hex = 0;

	if (len == 36) {
		for (i = 0; i < len; i++) {
			if (i == 8 || i == 13 || i == 18 || i == 23) {
				if (s[i] != '-')
					return 0;
			} else if (!isxdigit((unsigned char)s[i])) {
				return 0;
			}
		}
		return 1;
	}
	for (i = 0; i < len; i++)
		if (isxdigit((unsigned char)s[i]))
			hex++;
	return hex == len && len >= 32 && len <= 64;
}

static int
machine_id(char *out, size_t len, struct buf *err)
{
	const char *path = getenv("VIGIL_MACHINE_ID_FILE");
	struct buf raw, e;
	struct strv v;
	int ret = -1;

	if (path == NULL || path[0] == '\0')
		path = MACHINE_ID_FILE;
	buf_init(&raw, 4096);
	buf_init(&e, 1024);
	if (tls_read_file(path, 4096, &raw, &e) == -1) {
		buf_printf(
		    err,
		    "machine id: %s (the center tells cloned "
		    "machines apart by it; systemd-machine-id-setup creates "
		    "it)",
		    buf_cstr(&e));
		goto fail;
	}
	v = strv_trim(strv_make((const char *)raw.data, raw.len));
	if (v.len >= len || v.len == 0) {
		buf_printf(err, "machine id: %s is empty or too long", path);
		goto fail;
	}
	memcpy(out, v.p, v.len);
	out[v.len] = '\0';
	for (size_t i = 0; i < v.len; i++)
		out[i] = (char)tolower((unsigned char)out[i]);
	if (!machine_id_ok(out)) {
		buf_printf(err,
		           "machine id: %s does not hold 32-64 hex "
		           "digits or a UUID",
		           path);
		goto fail;
	}
	ret = 0;
fail:
	buf_free(&raw);
	buf_free(&e);
	return ret;
}

static int
array_has(json_t *a, const char *s)
{
	size_t i;
	json_t *v;

	json_array_foreach(a, i, v)
	{
		if (strcmp(json_string_value(v), s) == 0)
			return 1;
	}
	return 0;
}

static int
add_unique(json_t *a, const char *s)
{
	if (json_array_size(a) >= FACT_MAX_ADDRS || array_has(a, s))
		return 0;
	return json_array_append_new(a, json_string(s));
}

/* Addresses and MACs of every interface but loopback. IPv6 link-local
 * addresses are left out: they are the same kind on every host and carry
 * no scope here. */
static int
addresses(json_t *ips, json_t *macs)
{
	struct ifaddrs *ifa = NULL, *i;
	const struct sockaddr_ll *ll;
	const struct sockaddr_in6 *s6;
	char txt[INET6_ADDRSTRLEN];
	const unsigned char *m;
	int allzero;

	if (getifaddrs(&ifa) == -1) {
		log_warn("facts: getifaddrs");
		return -1;
	}
	for (i = ifa; i != NULL; i = i->ifa_next) {
		if (i->ifa_addr == NULL || (i->ifa_flags & IFF_LOOPBACK))
			continue;
		switch (i->ifa_addr->sa_family) {
		case AF_INET:
			inet_ntop(
			    AF_INET,
			    &((const struct sockaddr_in *)(void *)i->ifa_addr)
			         ->sin_addr,
			    txt, sizeof(txt));
			(void)add_unique(ips, txt);
			break;
		case AF_INET6:
			s6 = (const struct sockaddr_in6 *)(void *)i->ifa_addr;
			if (IN6_IS_ADDR_LINKLOCAL(&s6->sin6_addr))
				break;
			inet_ntop(AF_INET6, &s6->sin6_addr, txt, sizeof(txt));
			(void)add_unique(ips, txt);
			break;
		case AF_PACKET:
			ll = (const struct sockaddr_ll *)(void *)i->ifa_addr;
			if (ll->sll_halen != 6)
				break;
			m = ll->sll_addr;
			allzero =
			    (m[0] | m[1] | m[2] | m[3] | m[4] | m[5]) == 0;
			if (allzero)
				break;
			snprintf(txt, sizeof(txt),
			         "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1],
			         m[2], m[3], m[4], m[5]);
			(void)add_unique(macs, txt);
			break;
		default:
			break;
		}
	}
	freeifaddrs(ifa);
	return 0;
}

/*
 * The facts object of docs/protocol.md. NULL with the reason in err when a
 * required fact (host name, machine id) is missing.
 */
json_t *
facts_collect(struct buf *err)
{
	struct utsname u;
	char host[256], name[1025], os[512], mid[128];
	json_t *f = NULL, *ips = NULL, *macs = NULL;

	if (gethostname(host, sizeof(host)) == -1) {
		buf_printf(err, "facts: gethostname: %s", strerror(errno));
		goto fail;
	}
	host[sizeof(host) - 1] = '\0';
	if (machine_id(mid, sizeof(mid), err) == -1)
		goto fail;
	if (uname(&u) == -1) {
		buf_printf(err, "facts: uname: %s", strerror(errno));
		goto fail;
	}
	fqdn(host, name, sizeof(name));
	os_name(os, sizeof(os));
	f = json_object();
	ips = json_array();
	macs = json_array();
	if (f == NULL || ips == NULL || macs == NULL)
		goto nomem;
	(void)addresses(ips, macs);
	if (set_fact(f, "hostname", host) || set_fact(f, "fqdn", name) ||
	    set_fact(f, "os", os) || set_fact(f, "kernel", u.release) ||
	    set_fact(f, "arch", u.machine) || set_fact(f, "machine_id", mid) ||
	    set_fact(f, "agent_version", VIGIL_VERSION))
		goto nomem;
	if (json_object_set_new(f, "ips", ips) == -1) {
		ips = NULL;
		goto nomem;
	}
	ips = NULL;
	if (json_object_set_new(f, "macs", macs) == -1) {
		macs = NULL;
		goto nomem;
	}
	return f;
nomem:
	buf_printf(err, "facts: out of memory");
fail:
	json_decref(f);
	json_decref(ips);
	json_decref(macs);
	return NULL;
}
