/*
 * forward_target.c: forwarding target specs: one checked field by field
 * (from an API body, a stored row or the targets file), shown back, and the
 * [forward] targets file read and applied to the forward_targets table.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <ini.h>
#include <openssl/err.h>

#include "center.h"
#include "forward.h"
#include "pki.h"
#include "events.h"
#include "metrics.h"
#include "schema.h"
#include "syslogfmt.h"
#include "tls.h"

/*
 * 0 when key (a client key file) is neither the deployment CA's private
 * key nor the server certificate's: by path first, so neither is ever read
 * here, then as a copy elsewhere by comparing the key with each
 * certificate's public key. The main process must never hold the CA key.
 */
static int
key_foreign(const char *pki_dir, const char *key, struct buf *err)
{
	static const char *const own[][3] = {
	    {"ca.key", "ca.crt", "the deployment CA"},
	    {"server.key", "server.crt", "the center's server certificate"}};
	char path[4096], *a, *b;
	EVP_PKEY *k = NULL;
	X509 *x;
	size_t i;
	int rc = 0;

	for (i = 0; i < 2 && rc == 0; i++) {
		snprintf(path, sizeof(path), "%s/%s", pki_dir, own[i][0]);
		a = realpath(path, NULL);
		b = realpath(key, NULL);
		if (a != NULL && b != NULL && strcmp(a, b) == 0)
			rc = -1;
		free(a);
		free(b);
		if (rc == -1)
			buf_printf(
			    err,
			    "key_file: %s is the private key of %s; a "
			    "forwarding target needs a client key of its "
			    "own",
			    key, own[i][2]);
	}
	if (rc == -1)
		return -1;
	for (i = 0; i < 2 && rc == 0; i++) {
		struct buf e;

		buf_init(&e, 1024);
		snprintf(path, sizeof(path), "%s/%s", pki_dir, own[i][1]);
		x = tls_load_cert(path, &e);
		if (x != NULL && k == NULL)
			k = tls_load_key(key, &e);
		if (x != NULL && k != NULL && pki_key_matches(x, k) == 1) {
			buf_printf(err,
			           "key_file: %s is a copy of the private key "
			           "of %s; a forwarding target needs a client "
			           "key of its own",
			           key, own[i][2]);
			rc = -1;
		}
		X509_free(x);
		buf_free(&e);
	}
	EVP_PKEY_free(k);
	return rc;
}

/* 0 when the certificate in file carries role; else -1 with why. */
static int
cert_role_is(const char *file, int role, struct buf *err)
{
	struct buf e;
	X509 *x;
	int rc = -1;

	buf_init(&e, 1024);
	if ((x = tls_load_cert(file, &e)) == NULL)
		buf_printf(err, "cert_file: %s", buf_cstr(&e));
	else if (pki_cert_role(x) != role)
		buf_printf(err,
		           "cert_file: %s has role %s; the collector accepts "
		           "only a certificate of role %s (vigilctl pki issue "
		           "--role %s)",
		           file,
		           pki_role_name(pki_cert_role(x))
		               ? pki_role_name(pki_cert_role(x))
		               : "none",
		           pki_role_name(role), pki_role_name(role));
	else
		rc = 0;
	X509_free(x);
	buf_free(&e);
	return rc;
}

/* Fills t from a JSON spec (API body or DB row turned into JSON); with
 * pki_dir, a client key of the CA or the server is refused. */
int
target_from_json(const char *fqdn, const char *pki_dir, json_t *j,
                 struct fwd_target *t, struct buf *err)
{
	const char *name = json_string_value(json_object_get(j, "name"));
	const char *tr = json_string_value(json_object_get(j, "transport"));
	const char *host = json_string_value(json_object_get(j, "host"));
	const char *fmt = json_string_value(json_object_get(j, "format"));
	const char *fr = json_string_value(json_object_get(j, "framing"));
	const char *ml = json_string_value(json_object_get(j, "min_level"));
	const char *ca = json_string_value(json_object_get(j, "ca_file"));
	const char *cert = json_string_value(json_object_get(j, "cert_file"));
	const char *key = json_string_value(json_object_get(j, "key_file"));
	json_t *port = json_object_get(j, "port");
	json_t *fac = json_object_get(j, "facility");
	json_t *types = json_object_get(j, "types"), *v;
	size_t i;
	int k;

	t->udp_fd = -1;
	if (name == NULL || !str_is_name(name)) {
		buf_puts(err, "name: 1 to 64 of [A-Za-z0-9._-]");
		return -1;
	}
	snprintf(t->name, sizeof(t->name), "%s", name);
	t->transport = FWD_UDP;
	if (tr != NULL) {
		for (k = 0;
		     k < FWD_NTRANSPORTS && strcmp(tr, transports[k]) != 0; k++)
			;
		if (k == FWD_NTRANSPORTS) {
			buf_puts(err, "transport: udp, tcp, tls or collector");
			return -1;
		}
		t->transport = k;
	}
	if (host == NULL || *host == '\0' || strlen(host) >= sizeof(t->host)) {
		buf_puts(err, "host: required, a name or address");
		return -1;
	}
	snprintf(t->host, sizeof(t->host), "%s", host);
	t->port = t->transport == FWD_TLS         ? 6514
	          : t->transport == FWD_COLLECTOR ? 7443
	                                          : 514;
	if (port != NULL) {
		if (!json_is_integer(port) || json_integer_value(port) < 1 ||
		    json_integer_value(port) > 65535) {
			buf_puts(err, "port: 1..65535");
			return -1;
		}
		t->port = (int)json_integer_value(port);
	}
	t->fmt.format = SYSLOGFMT_RFC5424;
	if (fmt != NULL) {
		if ((k = syslogfmt_format_parse(fmt)) < 0) {
			buf_puts(err,
			         "format: rfc5424, rfc3164, cef, leef or json");
			return -1;
		}
		t->fmt.format = (enum syslogfmt_format)k;
	}
	t->framing = SYSLOGFMT_OCTET;
	if (fr != NULL) {
		if (strcmp(fr, "newline") == 0)
			t->framing = SYSLOGFMT_NEWLINE;
		else if (strcmp(fr, "octet") != 0) {
			buf_puts(err, "framing: octet or newline");
			return -1;
		}
	}
	t->fmt.facility = 16;
	if (fac != NULL) {
		if (!json_is_integer(fac) || json_integer_value(fac) < 0 ||
		    json_integer_value(fac) > 23) {
			buf_puts(err, "facility: 0..23 (16 = local0)");
			return -1;
		}
		t->fmt.facility = (int)json_integer_value(fac);
	}
	t->fmt.version = VIGIL_VERSION;
	if ((t->fmt.center_host = strdup(fqdn)) == NULL)
		return -1;
	if (ml != NULL && (t->min_rank = syslogfmt_level_rank(ml)) < 0) {
		buf_puts(err, "min_level: info, notice, warning or alert");
		return -1;
	}
	if (types != NULL) {
		if (!json_is_array(types) ||
		    json_array_size(types) > FWD_MAXTYPES) {
			buf_printf(err,
			           "types: an array of at most %d event "
			           "types",
			           FWD_MAXTYPES);
			return -1;
		}
		json_array_foreach(types, i, v)
		{
			const char *s = json_string_value(v);

			if (s == NULL || *s == '\0' ||
			    strlen(s) > EVENT_MAX_TYPE) {
				buf_puts(err, "types: event type names");
				return -1;
			}
			snprintf(t->types[t->ntypes++], EVENT_MAX_TYPE + 1,
			         "%s", s);
		}
	}
	if (t->transport == FWD_COLLECTOR &&
	    (ca == NULL || cert == NULL || key == NULL)) {
		buf_puts(err,
		         "ca_file, cert_file, key_file: required for "
		         "collector (the deployment CA, and a certificate of "
		         "role center: vigilctl pki issue --role center)");
		return -1;
	}
	if (t->transport == FWD_COLLECTOR &&
	    cert_role_is(cert, PKI_ROLE_CENTER, err) == -1)
		return -1;
	if (t->transport == FWD_TLS || t->transport == FWD_COLLECTOR) {
		if (ca == NULL) {
			buf_puts(err, "ca_file: required for tls (the CA that "
			              "signed the receiver's certificate)");
			return -1;
		}
		if (key != NULL && pki_dir != NULL &&
		    key_foreign(pki_dir, key, err) == -1)
			return -1;
		if ((t->ctx = tls_client_ctx(ca, cert, key, err)) == NULL)
			return -1;
	} else if (ca || cert || key) {
		buf_puts(err, "ca_file, cert_file, key_file: only for tls and "
		              "collector");
		return -1;
	}
	t->ca = dup_or_null(ca);
	t->cert = dup_or_null(cert);
	t->key = dup_or_null(key);
	return 0;
}

json_t *
target_spec(const struct fwd_target *t)
{
	json_t *types = json_array();
	int i;

	for (i = 0; i < t->ntypes; i++)
		json_array_append_new(types, json_string(t->types[i]));
	return json_pack(
	    "{s:s, s:s, s:s, s:i, s:s, s:s, s:i, s:o, s:s, "
	    "s:s?, s:s?, s:s?}",
	    "name", t->name, "transport", transports[t->transport], "host",
	    t->host, "port", t->port, "format",
	    syslogfmt_format_name(t->fmt.format), "framing",
	    t->framing == SYSLOGFMT_NEWLINE ? "newline" : "octet", "facility",
	    t->fmt.facility, "types", types, "min_level",
	    (const char *[]){"info", "notice", "warning", "alert"}[t->min_rank],
	    "ca_file", t->ca, "cert_file", t->cert, "key_file", t->key);
}

/* Keys of a target, in the API and in the targets file. */
const char *const spec_keys[] = {
    "name",      "transport", "host",  "port",      "format",
    "framing",   "facility",  "types", "min_level", "ca_file",
    "cert_file", "key_file",  "from",  NULL};

struct tfile {
	const char *path;
	json_t *specs; /* name -> spec */
	struct buf *err;
	int bad;
};

static int
tfile_handler(void *user, const char *section, const char *name,
              const char *value)
{
	struct tfile *tf = user;
	json_t *spec, *v;
	long long n;
	size_t i;

	if (*section == '\0') {
		buf_printf(tf->err, "%s: %s: outside a [target] section\n",
		           tf->path, name);
		tf->bad = 1;
		return 1;
	}
	for (i = 0; spec_keys[i] && strcmp(spec_keys[i], name) != 0; i++)
		;
	if (spec_keys[i] == NULL || strcmp(name, "name") == 0) {
		buf_printf(tf->err, "%s: [%s] %s: unknown key\n", tf->path,
		           section, name);
		tf->bad = 1;
		return 1;
	}
	if ((spec = json_object_get(tf->specs, section)) == NULL) {
		spec =
		    json_pack("{s:s, s:b}", "name", section, "from_config", 1);
		json_object_set_new(tf->specs, section, spec);
	}
	if (json_object_get(spec, name) != NULL) {
		buf_printf(tf->err, "%s: [%s] %s: given twice\n", tf->path,
		           section, name);
		tf->bad = 1;
		return 1;
	}
	if (strcmp(name, "types") == 0) {
		struct strv rest = strv_cstr(value), one;

		v = json_array();
		while (rest.len > 0) {
			one = strv_trim(strv_split(&rest, ','));
			if (one.len > 0)
				json_array_append_new(
				    v, json_stringn(one.p, one.len));
		}
	} else if ((strcmp(name, "port") == 0 ||
	            strcmp(name, "facility") == 0) &&
	           str_to_ll(value, 0, 1000000, &n) == 0)
		v = json_integer(n);
	else
		v = json_string(value);
	json_object_set_new(spec, name, v);
	return 1;
}

/* Reads and checks the targets file: an object name -> spec, or NULL with
 * every problem in err ("file: [name] key: message" lines). */
json_t *
tfile_load(const char *path, const char *fqdn, const char *pki_dir,
           struct buf *err)
{
	struct tfile tf = {path, json_object(), err, 0};
	const char *name;
	json_t *spec;
	int rc;

	rc = ini_parse(path, tfile_handler, &tf);
	if (rc < 0) {
		buf_printf(err, "%s: cannot read: %s\n", path,
		           rc == -1 ? strerror(errno) : "out of memory");
		tf.bad = 1;
	} else if (rc > 0) {
		buf_printf(err, "%s:%d: not a [section] or key = value line\n",
		           path, rc);
		tf.bad = 1;
	}
	json_object_foreach(tf.specs, name, spec)
	{
		struct fwd_target t;
		struct buf e;
		const char *from =
		    json_string_value(json_object_get(spec, "from"));

		memset(&t, 0, sizeof(t));
		buf_init(&e, 1024);
		if (target_from_json(fqdn, pki_dir, spec, &t, &e) == -1 ||
		    (from != NULL && strcmp(from, "now") != 0 &&
		     strcmp(from, "start") != 0 &&
		     buf_puts(&e, "from: now or start") == 0)) {
			buf_printf(err, "%s: [%s] %s\n", path, name,
			           buf_cstr(&e));
			tf.bad = 1;
		}
		SSL_CTX_free(t.ctx);
		free(t.ca);
		free(t.cert);
		free(t.key);
		free((char *)t.fmt.center_host);
		buf_free(&e);
	}
	if (tf.bad) {
		json_decref(tf.specs);
		return NULL;
	}
	return tf.specs;
}

int
forward_check_file(const char *path, const char *fqdn, const char *pki_dir,
                   struct buf *err)
{
	json_t *specs = tfile_load(path, fqdn, pki_dir, err);

	json_decref(specs);
	return specs ? 0 : -1;
}

/* Brings forward_targets in line with the targets file: its targets are
 * added (cursor per their "from") or updated (cursor kept); targets that
 * came from the file and are gone from it are removed. */
int
tfile_sync(struct center *c, struct buf *err)
{
	const char *name;
	json_t *specs, *spec;
	struct store_rows *r;
	char *s;
	int rc = -1;

	if ((specs = tfile_load(c->conf.fwd_targets, c->conf.fqdn,
	                        c->conf.pki_dir, err)) == NULL)
		return -1;
	if (store_begin(c->store) == -1)
		goto out;
	r = store_query(c->store,
	                "SELECT name FROM forward_targets WHERE source = "
	                "'config'");
	while (r != NULL && store_next(r) == 1)
		if (json_object_get(specs, store_text(r, 0)) == NULL)
			json_object_set_new(specs, store_text(r, 0),
			                    json_null()); /* gone */
	store_done(r);
	json_object_foreach(specs, name, spec)
	{
		const char *from =
		    json_string_value(json_object_get(spec, "from"));
		long long cursor =
		    from && strcmp(from, "start") == 0 ? 0 : max_event_id(c);
		int n;

		if (json_is_null(spec)) {
			n = store_exec(
			    c->store,
			    "DELETE FROM forward_targets WHERE name = "
			    "?",
			    S_TEXT(name));
			log_info("forward: target %s removed (no longer in %s)",
			         name, c->conf.fwd_targets);
			if (n < 0)
				goto rollback;
			continue;
		}
		if ((s = json_dumps(spec, JSON_COMPACT)) == NULL)
			goto rollback;
		n = store_exec(c->store,
		               "UPDATE forward_targets SET spec = ?, source = "
		               "'config' WHERE name = ?",
		               S_TEXT(s), S_TEXT(name));
		if (n == 0)
			n = store_exec(
			    c->store,
			    "INSERT INTO forward_targets (name, spec, "
			    "cursor, created_at, source) VALUES (?, ?, "
			    "?, ?, 'config')",
			    S_TEXT(name), S_TEXT(s), S_INT(cursor),
			    S_INT(time(NULL)));
		free(s);
		if (n != 1)
			goto rollback;
	}
	if (store_commit(c->store) == -1)
		goto rollback;
	rc = 0;
	goto out;
rollback:
	store_rollback(c->store);
	buf_puts(err, "forward: cannot store the targets of the targets file");
out:
	json_decref(specs);
	return rc;
}
