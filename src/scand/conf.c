/*
 * conf.c: vigil-scand.conf, one table of keys (see
 * docs/man/vigil-scand.conf.5). Ports may be 0 (any free port; the chosen
 * ones are written to vigil-scand.ports in the data directory).
 */
#include <stddef.h>
#include <string.h>

#include "scand.h"

#define OFF(f) offsetof(struct scand_conf, f)

const struct cfg_key scand_conf_keys[] = {
    {"scand", "data_dir", CFG_STR, "/var/lib/vigil-scand", 0, 0, OFF(data_dir),
     0, NULL, "database (queue, results, cache) and the samples directory"},
    {"scand", "rules", CFG_STR, "", 0, 0, OFF(rules), 0, NULL,
     "rule files, separated by blanks: *.yar/*.yara (YARA), *.ioc/*.txt "
     "(hash and filename IOCs); reloaded on SIGHUP"},
    {"scand", "threads", CFG_INT, "0", 0, 256, OFF(threads), 0, NULL,
     "scanning threads, each with its own sandboxed scan worker process "
     "(0 = one per CPU, at least 2)"},
    {"scand", "sync_threads", CFG_INT, "0", 0, 256, OFF(sync_threads), 0, NULL,
     "threads reserved for synchronous checks (0 = a quarter, at least 1)"},
    {"scand", "user", CFG_STR, NULL, 0, 0, OFF(user), 0, NULL,
     "user the scan worker processes run as when vigil-scand starts as "
     "root (default: _vigil if it exists, else nobody; never root)"},
    {"scand", "scan_timeout", CFG_DURATION, "5m", 1, 86400, OFF(scan_timeout),
     0, NULL,
     "wall-clock time a scan worker has for one sample; past it the worker "
     "is killed and the sample gets an error (504)"},
    {"scand", "worker_memory", CFG_SIZE, "1G", 64LL << 20, 1LL << 40,
     OFF(worker_memory), 0, NULL,
     "address space a scan worker may add to what it inherits (RLIMIT_AS); "
     "it reads a sample whole, so keep it above max_upload"},
    {"scand", "max_upload", CFG_SIZE, "200M", 1024, 4LL << 30, OFF(max_upload),
     0, NULL, "largest sample accepted (413 beyond)"},
    {"scand", "keep_samples", CFG_BOOL, "no", 0, 0, OFF(keep_samples), 0, NULL,
     "keep samples after scanning (samples/<sha256>, mode 0600)"},
    {"scand", "hold_async", CFG_BOOL, "no", 0, 0, OFF(hold_async), 0, NULL,
     "accept and queue async samples but do not scan them yet "
     "(maintenance); SIGHUP applies a change"},
    {"scand", "cache_size", CFG_INT, "10000", 0, 10000000, OFF(cache_size), 0,
     NULL, "results cached by SHA-256 and rule version (0 = no cache)"},
    {"scand", "max_results", CFG_INT, "100000", 100, 100000000,
     OFF(max_results), 0, NULL,
     "async results kept for getAsyncResults; the oldest go first"},
    {"scand", "api_key_file", CFG_STR, NULL, 0, 0, OFF(api_key_file), 0, NULL,
     "if set, requests need this key (Authorization: Bearer KEY or "
     "X-API-Key); the file must not be readable by others"},
    {"scand", "max_connections", CFG_INT, "128", 1, 100000, OFF(max_conns), 0,
     NULL,
     "open connections per listener; request bodies are held in memory "
     "(see docs/scand.md), so this times max_upload bounds that memory"},
    {"scand", "max_connections_per_addr", CFG_INT, "32", 0, 100000,
     OFF(max_per_addr), 0, NULL,
     "open connections per listener from one client address (IPv4, or "
     "IPv6 /64); 0 = no limit"},
    {"scand", "timeout", CFG_DURATION, "60s", 1, 3600, OFF(timeout), 0, NULL,
     "idle time: a connection silent this long is closed"},
    {"scand", "handshake_timeout", CFG_DURATION, "10s", 1, 3600,
     OFF(handshake_timeout), 0, NULL,
     "total time from the connection to the end of the TLS handshake"},
    {"scand", "request_timeout", CFG_DURATION, "20s", 1, 3600,
     OFF(request_timeout), 0, NULL,
     "total time for a request line and headers, from the connection or "
     "the previous reply (408, or closed when nothing came)"},
    {"scand", "body_timeout", CFG_DURATION, "10m", 1, 86400, OFF(body_timeout),
     0, NULL,
     "total time for a request body (an upload) after its headers (408)"},
    {"scand", "log", CFG_ENUM, "auto", 0, 0, OFF(log_dest), 0,
     "stderr|syslog|json|auto",
     "where vigil-scand logs; auto: syslog when daemonized, stderr with -d"},
    {"scand", "log_level", CFG_ENUM, "info", 0, 0, OFF(log_level), 0,
     "warn|info|debug", "log verbosity"},
    {"http", "enable", CFG_BOOL, "yes", 0, 0, OFF(http_enable), 0, NULL,
     "serve plain HTTP"},
    {"http", "listen", CFG_STR, "0.0.0.0", 0, 0, OFF(http_listen), 0, NULL,
     "address of the HTTP listener"},
    {"http", "port", CFG_INT, "8080", 0, 65535, OFF(http_port), 0, NULL,
     "HTTP port (0 = any free port)"},
    {"https", "enable", CFG_BOOL, "no", 0, 0, OFF(https_enable), 0, NULL,
     "serve HTTPS (needs cert and key)"},
    {"https", "listen", CFG_STR, "0.0.0.0", 0, 0, OFF(https_listen), 0, NULL,
     "address of the HTTPS listener"},
    {"https", "port", CFG_INT, "9443", 0, 65535, OFF(https_port), 0, NULL,
     "HTTPS port (0 = any free port)"},
    {"https", "cert", CFG_STR, NULL, 0, 0, OFF(cert), 0, NULL,
     "server certificate (PEM, chain after the leaf)"},
    {"https", "key", CFG_STR, NULL, 0, 0, OFF(key), 0, NULL,
     "server private key (PEM, not readable by others)"},
    {"https", "client_ca", CFG_STR, NULL, 0, 0, OFF(client_ca), 0, NULL,
     "CA that client certificates must chain to"},
    {"https", "require_client_cert", CFG_BOOL, "no", 0, 0,
     OFF(require_client_cert), 0, NULL,
     "refuse HTTPS clients without a certificate from client_ca"},
    {"syslog", "enable", CFG_BOOL, "no", 0, 0, OFF(syslog_enable), 0, NULL,
     "send every sample with findings to a syslog receiver (best effort)"},
    {"syslog", "transport", CFG_ENUM, "udp", 0, 0, OFF(syslog_transport), 0,
     "udp|tcp", "udp: one datagram per message; tcp: octet-counted"},
    {"syslog", "host", CFG_STR, NULL, 0, 0, OFF(syslog_host), 0, NULL,
     "receiver's address or host name"},
    {"syslog", "port", CFG_INT, "514", 1, 65535, OFF(syslog_port), 0, NULL,
     "receiver's port"},
    {"syslog", "framing", CFG_ENUM, "octet", 0, 0, OFF(syslog_framing), 0,
     "octet|newline",
     "tcp: RFC 6587 octet counting, or one message per line (LF)"},
    {"syslog", "format", CFG_ENUM, "rfc5424", 0, 0, OFF(syslog_format), 0,
     "rfc5424|rfc3164|cef|leef|json",
     "message format (as the center's forwarder, docs/forwarding.md)"},
    {"syslog", "facility", CFG_INT, "16", 0, 23, OFF(syslog_facility), 0, NULL,
     "syslog facility number (16 = local0)"},
    {"syslog", "queue", CFG_SIZE, "1M", 4096, 1LL << 30, OFF(syslog_queue), 0,
     NULL,
     "tcp: bytes of messages held while the receiver is slow or down; "
     "beyond, messages are dropped and counted"},
    INTELC_CFG_KEYS(OFF(intel), ""),
    {NULL, NULL, 0, NULL, 0, 0, 0, 0, NULL, NULL},
};

int
scand_conf_load(const char *path, struct scand_conf *c, struct buf *err)
{
	memset(c, 0, sizeof(*c));
	if (cfg_load_file(scand_conf_keys, c, path, err) == -1)
		return -1;
	if (c->https_enable && (c->cert == NULL || c->key == NULL)) {
		buf_printf(err, "%s: [https] enable = yes needs cert and key\n",
		           path);
		return -1;
	}
	if (c->require_client_cert && c->client_ca == NULL) {
		buf_printf(err,
		           "%s: [https] require_client_cert needs client_ca\n",
		           path);
		return -1;
	}
	if (c->syslog_enable && c->syslog_host == NULL) {
		buf_printf(err, "%s: [syslog] enable = yes needs host\n", path);
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
scand_conf_free(struct scand_conf *c)
{
	cfg_free(scand_conf_keys, c);
}
