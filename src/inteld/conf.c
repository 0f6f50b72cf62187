/*
 * conf.c: vigil-inteld.conf, one table of keys (see
 * docs/man/vigil-inteld.conf.5). Ports may be 0 (any free port; the chosen
 * ones are written to vigil-inteld.ports in the data directory).
 */
#include <stddef.h>
#include <string.h>

#include "inteld.h"

#define OFF(f) offsetof(struct inteld_conf, f)

const struct cfg_key inteld_conf_keys[] = {
    {"inteld", "data_dir", CFG_STR, "/var/lib/vigil-inteld", 0, 0,
     OFF(data_dir), 0, NULL, "the indicator store (LMDB) and the ports file"},
    {"inteld", "map_size", CFG_SIZE, "16G", 1LL << 20, 1LL << 40, OFF(map_size),
     0, NULL,
     "largest size of the store (address space, not disk: the file grows "
     "as it fills); about 250 bytes per indicator"},
    {"inteld", "max_import", CFG_SIZE, "512M", 1024, 16LL << 30,
     OFF(max_import), 0, NULL,
     "largest feed file accepted by an import (413 beyond); held in "
     "memory while it is imported"},
    {"inteld", "max_batch", CFG_INT, "10000", 1, 1000000, OFF(max_batch), 0,
     NULL, "indicators in one batch lookup"},
    {"inteld", "default_priority", CFG_INT, "50", 0, 1000,
     OFF(default_priority), 0, NULL,
     "priority of a feed added without one (higher wins)"},
    {"inteld", "timeout", CFG_DURATION, "300s", 1, 86400, OFF(timeout), 0, NULL,
     "idle time after which a connection is closed; also the longest an "
     "import may take before its client is cut off (the import finishes)"},
    {"inteld", "handshake_timeout", CFG_DURATION, "10s", 1, 3600,
     OFF(handshake_timeout), 0, NULL,
     "total time from the connection to the end of the TLS handshake"},
    {"inteld", "request_timeout", CFG_DURATION, "600s", 1, 86400,
     OFF(request_timeout), 0, NULL,
     "total time for a request (line, headers, body: an import's whole "
     "upload), from the connection or the previous reply"},
    {"inteld", "max_connections", CFG_INT, "1024", 1, 100000, OFF(max_conns), 0,
     NULL, "open connections per listener"},
    {"inteld", "max_connections_per_addr", CFG_INT, "0", 0, 100000,
     OFF(max_per_addr), 0, NULL,
     "open connections from one client address; 0 = no limit"},
    {"inteld", "log", CFG_ENUM, "auto", 0, 0, OFF(log_dest), 0,
     "stderr|syslog|json|auto",
     "where vigil-inteld logs; auto: syslog when daemonized, stderr with -d"},
    {"inteld", "log_level", CFG_ENUM, "info", 0, 0, OFF(log_level), 0,
     "warn|info|debug", "log verbosity"},
    {"server", "threads", CFG_INT, "0", 0, INTELD_MAX_THREADS, OFF(threads), 0,
     NULL,
     "event-loop threads answering requests, all on the same ports; 0 = "
     "one per CPU"},
    {"https", "enable", CFG_BOOL, "yes", 0, 0, OFF(https_enable), 0, NULL,
     "serve HTTPS (needs cert and key)"},
    {"https", "listen", CFG_STR, "0.0.0.0", 0, 0, OFF(https_listen), 0, NULL,
     "address of the HTTPS listener"},
    {"https", "port", CFG_INT, "10443", 0, 65535, OFF(https_port), 0, NULL,
     "HTTPS port (0 = any free port)"},
    {"https", "cert", CFG_STR, NULL, 0, 0, OFF(cert), 0, NULL,
     "server certificate (PEM, chain after the leaf)"},
    {"https", "key", CFG_STR, NULL, 0, 0, OFF(key), 0, NULL,
     "server private key (PEM, not readable by others)"},
    {"https", "client_ca", CFG_STR, NULL, 0, 0, OFF(client_ca), 0, NULL,
     "the deployment CA: a client certificate it signed is accepted in "
     "place of an API key"},
    {"https", "cert_role", CFG_ENUM, "lookup", 0, 0, OFF(cert_role), 0,
     "lookup|admin", "role granted to a client certificate from client_ca"},
    {"http", "enable", CFG_BOOL, "no", 0, 0, OFF(http_enable), 0, NULL,
     "serve plain HTTP as well (API keys travel in clear: loopback only)"},
    {"http", "listen", CFG_STR, "127.0.0.1", 0, 0, OFF(http_listen), 0, NULL,
     "address of the plain HTTP listener"},
    {"http", "port", CFG_INT, "10080", 0, 65535, OFF(http_port), 0, NULL,
     "plain HTTP port (0 = any free port)"},
    {"auth", "keys", CFG_STR, NULL, 0, 0, OFF(keys), 0, NULL,
     "API keys, blank-separated NAME:ROLE:SHA256 (ROLE lookup or admin; "
     "SHA256 of the key in hex, never the key)"},
    {"auth", "keys_file", CFG_STR, NULL, 0, 0, OFF(keys_file), 0, NULL,
     "file of more keys, one NAME:ROLE:SHA256 a line; re-read on SIGHUP"},
    {NULL, NULL, 0, NULL, 0, 0, 0, 0, NULL, NULL},
};

int
inteld_conf_load(const char *path, struct inteld_conf *c, struct buf *err)
{
	memset(c, 0, sizeof(*c));
	if (cfg_load_file(inteld_conf_keys, c, path, err) == -1)
		return -1;
	if (c->https_enable && (c->cert == NULL || c->key == NULL)) {
		buf_printf(err, "%s: [https] enable = yes needs cert and key\n",
		           path);
		return -1;
	}
	if (!c->http_enable && !c->https_enable) {
		buf_printf(err, "%s: both [http] and [https] are disabled\n",
		           path);
		return -1;
	}
	return 0;
}

void
inteld_conf_free(struct inteld_conf *c)
{
	cfg_free(inteld_conf_keys, c);
}
