/*
 * db.c: the center's schema (numbered migrations, applied by store_open)
 * and the few queries more than one part of vigild needs. The SQL stays in
 * the portable subset PostgreSQL also accepts.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "center.h"
#include "metrics.h"
#include "store_pg.h"
#include "tls.h"

static const char migration_1[] =
    "CREATE TABLE agents ("
    " id TEXT PRIMARY KEY,"
    " status TEXT NOT NULL,"
    " hostname TEXT, fqdn TEXT, os TEXT, kernel TEXT, arch TEXT,"
    " ips TEXT, macs TEXT, machine_id TEXT, agent_version TEXT,"
    " labels TEXT NOT NULL,"
    " enrolled_at BIGINT NOT NULL,"
    " last_seen BIGINT,"
    " cert_serial TEXT, cert_not_after BIGINT,"
    " cloned_from TEXT, clone_detected_at BIGINT,"
    " token_id TEXT, source_addr TEXT);"
    "CREATE TABLE certs ("
    " serial TEXT PRIMARY KEY,"
    " agent_id TEXT NOT NULL,"
    " not_after BIGINT NOT NULL,"
    " issued_at BIGINT NOT NULL,"
    " revoked_at BIGINT);"
    "CREATE INDEX certs_agent ON certs (agent_id);"
    "CREATE TABLE tokens ("
    " id TEXT PRIMARY KEY,"
    " hash TEXT NOT NULL UNIQUE,"
    " max_uses BIGINT NOT NULL,"
    " used BIGINT NOT NULL,"
    " expires_at BIGINT,"
    " labels TEXT NOT NULL,"
    " created_at BIGINT NOT NULL);"
    "CREATE TABLE enrollments ("
    " id TEXT PRIMARY KEY,"
    " status TEXT NOT NULL,"
    " agent_id TEXT NOT NULL,"
    " csr TEXT NOT NULL,"
    " facts TEXT NOT NULL,"
    " labels TEXT NOT NULL,"
    " token_id TEXT, source_addr TEXT, cloned_from TEXT,"
    " created_at BIGINT NOT NULL,"
    " decided_at BIGINT,"
    " certificate TEXT);"
    "CREATE INDEX enrollments_status ON enrollments (status);"
    "CREATE TABLE api_keys ("
    " id TEXT PRIMARY KEY,"
    " hash TEXT NOT NULL UNIQUE,"
    " role TEXT NOT NULL,"
    " label TEXT,"
    " created_at BIGINT NOT NULL,"
    " expires_at BIGINT,"
    " revoked_at BIGINT);"
    "CREATE TABLE notices ("
    " id INTEGER PRIMARY KEY,"
    " time BIGINT NOT NULL,"
    " kind TEXT NOT NULL,"
    " agent_id TEXT,"
    " message TEXT NOT NULL);";

/* Tasks, their per-agent runs, events, samples, rule sets, templates and
 * schedules (the tasks and events issue). */
static const char migration_2[] =
    "CREATE TABLE rulesets ("
    " name TEXT PRIMARY KEY,"
    " id TEXT NOT NULL,"
    " kind TEXT NOT NULL,"
    " content TEXT NOT NULL,"
    " size BIGINT NOT NULL,"
    " created_at BIGINT NOT NULL);"
    "CREATE INDEX rulesets_id ON rulesets (id);"
    "CREATE TABLE tasks ("
    " id TEXT PRIMARY KEY,"
    " kind TEXT NOT NULL,"
    " params TEXT NOT NULL,"
    " target TEXT NOT NULL,"
    " created_at BIGINT NOT NULL,"
    " created_by TEXT,"
    " timeout BIGINT NOT NULL,"
    " expires_at BIGINT NOT NULL,"
    " cancelled_at BIGINT,"
    " schedule_id TEXT);"
    "CREATE TABLE task_runs ("
    " task_id TEXT NOT NULL,"
    " agent_id TEXT NOT NULL,"
    " state TEXT NOT NULL,"
    " progress TEXT, result TEXT, reason TEXT,"
    " updated_at BIGINT NOT NULL,"
    " dispatched_at BIGINT, started_at BIGINT, finished_at BIGINT,"
    " PRIMARY KEY (task_id, agent_id));"
    "CREATE INDEX task_runs_agent ON task_runs (agent_id, state);"
    "CREATE INDEX task_runs_state ON task_runs (state);"
    "CREATE TABLE events ("
    " agent_id TEXT NOT NULL,"
    " seq BIGINT NOT NULL,"
    " time BIGINT NOT NULL,"
    " received_at BIGINT NOT NULL,"
    " type TEXT NOT NULL,"
    " level TEXT,"
    " task_id TEXT,"
    " data TEXT NOT NULL,"
    " PRIMARY KEY (agent_id, seq));"
    "CREATE INDEX events_received ON events (received_at);"
    "CREATE INDEX events_task ON events (task_id);"
    "CREATE TABLE samples ("
    " sha256 TEXT PRIMARY KEY,"
    " size BIGINT NOT NULL,"
    " agent_id TEXT, task_id TEXT, path TEXT,"
    " received_at BIGINT NOT NULL);"
    "CREATE TABLE templates ("
    " name TEXT PRIMARY KEY,"
    " spec TEXT NOT NULL,"
    " created_at BIGINT NOT NULL);"
    "CREATE TABLE schedules ("
    " id TEXT PRIMARY KEY,"
    " name TEXT NOT NULL UNIQUE,"
    " cron TEXT NOT NULL,"
    " spec TEXT NOT NULL,"
    " enabled BIGINT NOT NULL,"
    " last_run BIGINT,"
    " created_at BIGINT NOT NULL);";

/* Forwarding targets (the SIEM forwarding issue): spec is the target as
 * JSON (the API's fields), cursor the rowid of the last event it handled,
 * source "api" or "config" (the [forward] targets file). */
static const char migration_forward[] = "CREATE TABLE forward_targets ("
                                        " name TEXT PRIMARY KEY,"
                                        " spec TEXT NOT NULL,"
                                        " cursor BIGINT NOT NULL,"
                                        " created_at BIGINT NOT NULL,"
                                        " source TEXT NOT NULL);";

/* Admin users, login sessions, API key owners (auth.c). Sessions, CSRF
 * tokens and keys are stored as SHA-256 hashes only; the TOTP secret must
 * be readable to check codes. */
static const char migration_3[] =
    "CREATE TABLE users ("
    " name TEXT PRIMARY KEY,"
    " role TEXT NOT NULL,"
    " source TEXT NOT NULL,"
    " hash TEXT,"
    " disabled BIGINT NOT NULL,"
    " failures BIGINT NOT NULL,"
    " locked_until BIGINT,"
    " totp_secret TEXT, totp_pending TEXT, totp_last BIGINT,"
    " created_at BIGINT NOT NULL,"
    " updated_at BIGINT,"
    " last_login BIGINT);"
    "CREATE TABLE sessions ("
    " hash TEXT PRIMARY KEY,"
    " user_name TEXT NOT NULL,"
    " role TEXT NOT NULL,"
    " csrf_hash TEXT NOT NULL,"
    " created_at BIGINT NOT NULL,"
    " last_seen BIGINT NOT NULL,"
    " source_addr TEXT);"
    "CREATE INDEX sessions_user ON sessions (user_name);"
    "ALTER TABLE api_keys ADD COLUMN owner TEXT;"
    "ALTER TABLE api_keys ADD COLUMN last_used BIGINT;";

/* The audit log (audit.c; hash chained, append only) and runtime
 * settings changed through the API (settings.c). */
static const char migration_audit[] =
    "CREATE TABLE audit ("
    " id BIGINT PRIMARY KEY,"
    " time BIGINT NOT NULL,"
    " who TEXT NOT NULL,"
    " addr TEXT NOT NULL,"
    " action TEXT NOT NULL,"
    " target TEXT,"
    " status BIGINT NOT NULL,"
    " before_json TEXT, after_json TEXT, request_json TEXT,"
    " error TEXT,"
    " prev_hash TEXT NOT NULL,"
    " hash TEXT NOT NULL);"
    "CREATE INDEX audit_time ON audit (time);"
    "CREATE INDEX audit_action ON audit (action);"
    "CREATE TABLE settings ("
    " name TEXT PRIMARY KEY,"
    " value TEXT NOT NULL,"
    " updated_at BIGINT NOT NULL);";

/* Event ingestion (docs/performance.md, "Event ingestion"): most events
 * belong to no task, so the task index only holds those that do; one
 * index entry less per stored event. Queries on "task_id = ?" still use
 * it (the equality implies NOT NULL). */
static const char migration_events_task[] =
    "DROP INDEX events_task;"
    "CREATE INDEX events_task ON events (task_id) WHERE task_id IS NOT "
    "NULL;";

/* Triage of findings (events of type finding): one row per finding an
 * analyst marked; a finding without one is new. The partial index serves
 * the findings list (newest first) and costs nothing for other events. */
static const char migration_findings[] =
    "CREATE TABLE finding_triage ("
    " agent_id TEXT NOT NULL,"
    " seq BIGINT NOT NULL,"
    " status TEXT NOT NULL,"
    " comment TEXT,"
    " updated_by TEXT NOT NULL,"
    " updated_at BIGINT NOT NULL,"
    " PRIMARY KEY (agent_id, seq));"
    "CREATE INDEX finding_triage_status ON finding_triage (status);"
    "CREATE INDEX events_findings ON events (received_at) WHERE type = "
    "'finding';";

/* Live updates (stream.c): the agents whose last heartbeat just aged past
 * the online line, found once a second while a console is open, are a
 * range of this index rather than a scan of the fleet. */
static const char migration_agents_last_seen[] =
    "CREATE INDEX agents_last_seen ON agents (last_seen);";

/* The web console at a million findings (docs/performance.md, "Web
 * console"). The findings list sorted by level: the sort and keyset
 * expressions of query.c, indexed as they are written, so that a page is
 * an index range instead of a sort of every finding (1.5 s to 15 ms). The
 * findings index by time also holds the level (and the type, without
 * which SQLite does not see it as covering), so that the dashboard's
 * histogram (findings.c) counts from the index alone. */
static const char migration_findings_level[] =
    "CREATE INDEX events_findings_level ON events ((COALESCE(level, '')), "
    "((agent_id || '/' || CAST(seq AS TEXT)))) WHERE type = 'finding';"
    "DROP INDEX events_findings;"
    "CREATE INDEX events_findings ON events (received_at, level, type) "
    "WHERE type = 'finding';";

/* vigil-inteld's verdicts (intel.c): one row per event it was asked
 * about (verdict unknown when nothing matched; sources the contributing
 * indicators as JSON), the level a finding had before a malicious verdict
 * raised it, and the enrichment's cursor (rowid of the last event
 * handled): events after it are pending. */
static const char migration_intel[] = "CREATE TABLE event_intel ("
                                      " agent_id TEXT NOT NULL,"
                                      " seq BIGINT NOT NULL,"
                                      " verdict TEXT NOT NULL,"
                                      " score BIGINT,"
                                      " sources TEXT NOT NULL,"
                                      " level_before TEXT,"
                                      " checked_at BIGINT NOT NULL,"
                                      " PRIMARY KEY (agent_id, seq));"
                                      "CREATE TABLE intel_state ("
                                      " name TEXT PRIMARY KEY,"
                                      " cursor BIGINT NOT NULL);";

/* The forwarders' cursors are positions in the events' insertion order:
 * SQLite's rowid, and on PostgreSQL a column of that name, numbered by
 * an identity (in commit order: writers take one lock, store_pg.h). The
 * column comes after the other events migrations so that their text
 * stays the one both back ends run. */
static const char migration_events_rowid[] =
    "-- sqlite\n"
    "SELECT 1;\n"
    "-- postgresql\n"
    "ALTER TABLE events ADD COLUMN rowid BIGINT GENERATED BY DEFAULT AS "
    "IDENTITY;"
    "CREATE UNIQUE INDEX events_rowid ON events (rowid);";

/* The analysis collector (collector.c, [center] role = collector): the
 * centers that feed it, their events keyed by (center, agent, seq) so a
 * batch sent again is stored once, their agents (asset inventory), and
 * findings grouped into cases (id: the first 16 hex digits of the
 * SHA-256 of the case key) with the hosts seen in each, and where each
 * sample was seen (its content goes, once, to samples). Empty on a
 * center. */
static const char migration_collector[] =
    "CREATE TABLE coll_centers ("
    " name TEXT PRIMARY KEY,"
    " first_seen BIGINT NOT NULL,"
    " last_seen BIGINT NOT NULL,"
    " events BIGINT NOT NULL,"
    " addr TEXT);"
    "CREATE TABLE coll_events ("
    " center TEXT NOT NULL,"
    " agent_id TEXT NOT NULL,"
    " seq BIGINT NOT NULL,"
    " time BIGINT NOT NULL,"
    " received_at BIGINT NOT NULL,"
    " type TEXT NOT NULL,"
    " level TEXT,"
    " orig_level TEXT,"
    " task_id TEXT,"
    " hostname TEXT,"
    " data TEXT NOT NULL,"
    " case_id TEXT,"
    " suppressed BIGINT NOT NULL,"
    " PRIMARY KEY (center, agent_id, seq));"
    "CREATE INDEX coll_events_received ON coll_events (received_at);"
    "CREATE INDEX coll_events_case ON coll_events (case_id) WHERE case_id "
    "IS NOT NULL;"
    "CREATE TABLE coll_agents ("
    " center TEXT NOT NULL,"
    " agent_id TEXT NOT NULL,"
    " hostname TEXT,"
    " data TEXT NOT NULL,"
    " updated_at BIGINT NOT NULL,"
    " PRIMARY KEY (center, agent_id));"
    "CREATE TABLE coll_cases ("
    " id TEXT PRIMARY KEY,"
    " case_key TEXT NOT NULL UNIQUE,"
    " rule TEXT,"
    " path TEXT,"
    " sha256 TEXT,"
    " first_seen BIGINT NOT NULL,"
    " last_seen BIGINT NOT NULL,"
    " hits BIGINT NOT NULL,"
    " suppressed BIGINT NOT NULL,"
    " baseline TEXT,"
    " baseline_reason TEXT,"
    " baseline_by TEXT,"
    " baseline_at BIGINT);"
    "CREATE INDEX coll_cases_last ON coll_cases (last_seen);"
    "CREATE TABLE coll_case_hosts ("
    " case_id TEXT NOT NULL,"
    " center TEXT NOT NULL,"
    " agent_id TEXT NOT NULL,"
    " hostname TEXT,"
    " first_seen BIGINT NOT NULL,"
    " last_seen BIGINT NOT NULL,"
    " PRIMARY KEY (case_id, center, agent_id));"
    "CREATE TABLE coll_samples ("
    " sha256 TEXT NOT NULL,"
    " center TEXT NOT NULL,"
    " agent_id TEXT NOT NULL,"
    " task_id TEXT,"
    " path TEXT,"
    " size BIGINT NOT NULL,"
    " received_at BIGINT NOT NULL,"
    " PRIMARY KEY (sha256, center, agent_id));";

/* The master (master.c): which task of which center a master task is. */
static const char migration_master[] = "CREATE TABLE master_tasks ("
                                       " id TEXT NOT NULL,"
                                       " center TEXT NOT NULL,"
                                       " task_id TEXT,"
                                       " created_at BIGINT NOT NULL,"
                                       " created_by TEXT NOT NULL,"
                                       " spec TEXT NOT NULL,"
                                       " error TEXT,"
                                       " PRIMARY KEY (id, center));";

/* Several vigild nodes on one PostgreSQL database (node.c,
 * docs/scale-out.md): each node's heartbeat, the leases that give one
 * node at a time a piece of work (a forwarding target), and the rate
 * limits' buckets shared by the nodes. Created on SQLite too (one node
 * there: no rows are written). */
static const char migration_nodes[] =
    "CREATE TABLE nodes ("
    " name TEXT PRIMARY KEY,"
    " address TEXT,"
    " started_at BIGINT NOT NULL,"
    " last_seen BIGINT NOT NULL,"
    " agents BIGINT NOT NULL,"
    " leases BIGINT NOT NULL);"
    "CREATE TABLE leases ("
    " name TEXT PRIMARY KEY,"
    " node TEXT NOT NULL,"
    " expires_at BIGINT NOT NULL);"
    "CREATE TABLE rate_buckets ("
    " name TEXT PRIMARY KEY,"
    " millitokens BIGINT NOT NULL,"
    " last BIGINT NOT NULL);"
    "CREATE INDEX rate_buckets_last ON rate_buckets (last);";

/* Signed updates (issue 15): rule sets that arrive by update, every
 * version of them and the operator's pin; the update versions an agent
 * runs. */
static const char migration_updates[] =
    "ALTER TABLE rulesets ADD COLUMN source TEXT;"
    "ALTER TABLE rulesets ADD COLUMN version TEXT;"
    "ALTER TABLE rulesets ADD COLUMN pinned TEXT;"
    "CREATE TABLE ruleset_versions ("
    " name TEXT NOT NULL,"
    " version TEXT NOT NULL,"
    " id TEXT NOT NULL,"
    " kind TEXT NOT NULL,"
    " content TEXT NOT NULL,"
    " size BIGINT NOT NULL,"
    " received_at BIGINT NOT NULL,"
    " target TEXT NOT NULL,"
    " PRIMARY KEY (name, version));"
    "ALTER TABLE agents ADD COLUMN updates TEXT;"
    "CREATE TABLE rollouts ("
    " id TEXT PRIMARY KEY,"
    " target TEXT NOT NULL,"
    " version TEXT NOT NULL,"
    " sha256 TEXT NOT NULL,"
    " platform TEXT NOT NULL,"
    " labels TEXT NOT NULL,"
    " percent BIGINT NOT NULL,"
    " max_failure_rate BIGINT NOT NULL,"
    " probation BIGINT NOT NULL,"
    " state TEXT NOT NULL,"
    " reason TEXT,"
    " created_at BIGINT NOT NULL,"
    " created_by TEXT);";

/* File samples shared by the nodes of one PostgreSQL database
 * (sampleshare.c): each sample's content in 1 MiB parts, base64. Created
 * on SQLite too (one node there: no rows are written). */
static const char migration_sample_parts[] = "CREATE TABLE sample_parts ("
                                             " sha256 TEXT NOT NULL,"
                                             " part BIGINT NOT NULL,"
                                             " data TEXT NOT NULL,"
                                             " PRIMARY KEY (sha256, part));";

/* Preferred nodes (node.c): the URL of each node's gateway for agents
 * ([center] node_url). */
static const char migration_node_url[] = "ALTER TABLE nodes ADD COLUMN url "
                                         "TEXT;";

/* The master's pushes of rule sets and IOC lists (master.c): what was
 * pushed, and per center whether it is pending (not yet delivered: the
 * center was unreachable), applied (the version the center stored) or
 * failed (why). */
static const char migration_master_push[] =
    "CREATE TABLE master_pushes ("
    " id TEXT PRIMARY KEY,"
    " seq BIGINT NOT NULL,"
    " kind TEXT NOT NULL,"
    " name TEXT NOT NULL,"
    " sha256 TEXT NOT NULL,"
    " content TEXT NOT NULL,"
    " created_at BIGINT NOT NULL,"
    " created_by TEXT NOT NULL);"
    "CREATE TABLE master_push_centers ("
    " push_id TEXT NOT NULL,"
    " center TEXT NOT NULL,"
    " state TEXT NOT NULL,"
    " version TEXT,"
    " error TEXT,"
    " attempts BIGINT NOT NULL,"
    " updated_at BIGINT NOT NULL,"
    " PRIMARY KEY (push_id, center));"
    "CREATE INDEX master_push_centers_state ON master_push_centers "
    "(state);";

/* A collector forwards what it stores (forward.c) by a rowid cursor, as
 * a center forwards its events: PostgreSQL gets coll_events its rowid. */
static const char migration_coll_rowid[] =
    "-- sqlite\n"
    "SELECT 1;\n"
    "-- postgresql\n"
    "ALTER TABLE coll_events ADD COLUMN rowid BIGINT GENERATED BY DEFAULT "
    "AS IDENTITY;"
    "CREATE UNIQUE INDEX coll_events_rowid ON coll_events (rowid);";

/* The SHA-256 of each issued certificate's DER (db_add_cert): the core
 * takes a certificate a gateway worker relays as genuine when its bytes
 * are those of one this deployment issued, instead of verifying its chain
 * and signature again (gwproc.c). NULL for certificates issued before. */
static const char migration_cert_digest[] = "ALTER TABLE certs ADD COLUMN "
                                            "der_sha256 TEXT;";

/* /metrics counts agents by status and by version on every scrape: with
 * this index (and agents_last_seen for the online ones) those are counts
 * over indexes, not scans of the table with sorts (admin.c, adm_metrics). */
static const char migration_agents_counts[] =
    "CREATE INDEX agents_status_version ON agents (status, agent_version);";

/* The core finds a relayed certificate's record by its bytes' SHA-256
 * (gwproc.c, gwp_cert_recorded), before it has parsed it. */
static const char migration_cert_digest_index[] =
    "CREATE INDEX certs_der_sha256 ON certs (der_sha256);";

const char *const center_migrations[] = {migration_1,
                                         migration_2,
                                         migration_forward,
                                         migration_3,
                                         migration_audit,
                                         migration_events_task,
                                         migration_findings,
                                         migration_agents_last_seen,
                                         migration_findings_level,
                                         migration_intel,
                                         migration_events_rowid,
                                         migration_collector,
                                         migration_master,
                                         migration_nodes,
                                         migration_updates,
                                         migration_sample_parts,
                                         migration_node_url,
                                         migration_master_push,
                                         migration_coll_rowid,
                                         migration_cert_digest,
                                         migration_agents_counts,
                                         migration_cert_digest_index};
const size_t center_nmigrations =
    sizeof(center_migrations) / sizeof(center_migrations[0]);

int
db_is_revoked(struct store *s, const char *serial)
{
	struct store_rows *r;
	int revoked = 0;

	r = store_query(
	    s,
	    "SELECT c.revoked_at, a.status FROM certs c "
	    "LEFT JOIN agents a ON a.id = c.agent_id WHERE c.serial = ?",
	    S_TEXT(serial));
	if (r == NULL)
		return 1; /* fail closed */
	/* A certificate this center has no record of (a restored backup, a
	 * CA key used elsewhere) is refused too: fail closed. */
	revoked = 1;
	if (store_next(r) == 1) {
		const char *st = store_text(r, 1);
		revoked = !store_isnull(r, 0) ||
		          (st != NULL && strcmp(st, "revoked") == 0);
	}
	store_done(r);
	return revoked;
}

int
db_is_current_cert(struct store *s, const char *agent_id, const char *serial)
{
	struct store_rows *r;
	int current;

	r = store_query(s,
	                "SELECT 1 FROM agents WHERE id = ? AND cert_serial = ? "
	                "AND status = 'active'",
	                S_TEXT(agent_id), S_TEXT(serial));
	current = r != NULL && store_next(r) == 1;
	store_done(r);
	return current;
}

int
db_add_cert(struct store *s, const char *agent_id, X509 *cert)
{
	char *serial = tls_serial_hex(cert), *cn = tls_subject_cn(cert);
	char digest[65];
	int rc;

	if (serial == NULL) {
		free(cn);
		return -1;
	}
	/* The digest stands for the certificate's identity (gwproc.c):
	 * kept only when the record says what the certificate does, its
	 * CN being the agent's id as the key process writes it. */
	tls_fingerprint(cert, digest);
	if (cn == NULL || strcmp(cn, agent_id) != 0)
		digest[0] = '\0';
	free(cn);
	rc = store_exec(
	    s,
	    "INSERT INTO certs (serial, agent_id, not_after, issued_at, "
	    "der_sha256) VALUES (?, ?, ?, ?, ?)",
	    S_TEXT(serial), S_TEXT(agent_id), S_INT(tls_not_after(cert)),
	    S_INT(time(NULL)), S_TEXT(digest[0] != '\0' ? digest : NULL));
	if (rc == 1)
		rc = store_exec(
		    s,
		    "UPDATE agents SET cert_serial = ?, cert_not_after = ? "
		    "WHERE id = ?",
		    S_TEXT(serial), S_INT(tls_not_after(cert)),
		    S_TEXT(agent_id));
	free(serial);
	return rc == 1 ? 0 : -1;
}

static json_t *
json_text_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

static json_t *
json_parsed(const char *s, json_t *dflt)
{
	json_t *j = s ? json_loads(s, 0, NULL) : NULL;

	if (j == NULL)
		return dflt;
	json_decref(dflt);
	return j;
}

json_t *
db_agent_json(struct store_rows *r)
{
	static const char *const textcols[] = {
	    "id", "status", "hostname", "fqdn", "os", "kernel", "arch"};
	json_t *o = json_object();
	size_t i;

	for (i = 0; i < sizeof(textcols) / sizeof(textcols[0]); i++)
		json_object_set_new(o, textcols[i],
		                    json_text_or_null(store_text(r, (int)i)));
	json_object_set_new(o, "ips",
	                    json_parsed(store_text(r, 7), json_array()));
	json_object_set_new(o, "macs",
	                    json_parsed(store_text(r, 8), json_array()));
	json_object_set_new(o, "machine_id",
	                    json_text_or_null(store_text(r, 9)));
	json_object_set_new(o, "agent_version",
	                    json_text_or_null(store_text(r, 10)));
	json_object_set_new(o, "labels",
	                    json_parsed(store_text(r, 11), json_object()));
	json_object_set_new(o, "enrolled_at", json_integer(store_int(r, 12)));
	json_object_set_new(
	    o, "last_seen",
	    store_isnull(r, 13) ? json_null() : json_integer(store_int(r, 13)));
	json_object_set_new(o, "cert_serial",
	                    json_text_or_null(store_text(r, 14)));
	json_object_set_new(
	    o, "cert_not_after",
	    store_isnull(r, 15) ? json_null() : json_integer(store_int(r, 15)));
	json_object_set_new(o, "cloned_from",
	                    json_text_or_null(store_text(r, 16)));
	json_object_set_new(
	    o, "clone_detected_at",
	    store_isnull(r, 17) ? json_null() : json_integer(store_int(r, 17)));
	json_object_set_new(o, "updates",
	                    json_parsed(store_text(r, 18), json_null()));
	/* An agent reports its updates only once it pinned an update root:
	 * without one it takes no updates (vigil-agent pin-root). */
	json_object_set_new(
	    o, "update_root",
	    json_boolean(json_is_object(json_object_get(o, "updates"))));
	return o;
}

/*
 * Opens the center's database, refusing what must not be served:
 * - a missing or empty vigil.db in a data directory that has been used
 *   (admin.key exists): creating a new one would silently forget every
 *   agent, key and audit entry, and write a new admin key over the old;
 * - a database that fails SQLite's quick_check (a damaged page), which
 *   would otherwise be read as fewer rows than it holds.
 * Each refusal names the file and the way back (restore a backup).
 */
const char *
center_store_target(const struct center *c)
{
	return c->conf.store_url != NULL ? c->conf.store_url : c->paths.db;
}

const char *
center_store_name(const struct center *c)
{
	return c->conf.store_url != NULL ? store_pg_redact(c->conf.store_url)
	                                 : c->paths.db;
}

int
center_store_open(struct center *c, struct buf *err)
{
	struct timespec t0, t1;
	struct stat st;
	int used = access(c->paths.admin_key, F_OK) == 0;

	if (c->conf.store_url != NULL) {
		/* PostgreSQL: its own checks and backups (pg_dump); what
		 * the database holds is the operator's to keep. */
		if ((c->store = store_open(c->conf.store_url, center_migrations,
		                           center_nmigrations, err)) == NULL)
			return -1;
		log_info("store: PostgreSQL %s, schema version %d",
		         center_store_name(c), store_schema_version(c->store));
		return 0;
	}
	if (used && (stat(c->paths.db, &st) == -1 || st.st_size == 0)) {
		buf_printf(err,
		           "%s is %s, but this data directory has been used "
		           "(%s exists): the database was lost. Not starting, "
		           "so that nothing is re-created over it. Restore the "
		           "last backup (vigilctl store restore BACKUP "
		           "--data-dir %s; see docs/guide.md, \"Backup and "
		           "restore\"); or, to start an empty center here on "
		           "purpose, move %s away first",
		           c->paths.db,
		           stat(c->paths.db, &st) == -1 ? "missing" : "empty",
		           c->paths.admin_key, c->conf.data_dir,
		           c->paths.admin_key);
		return -1;
	}
	if ((c->store = store_open(c->paths.db, center_migrations,
	                           center_nmigrations, err)) == NULL)
		goto damaged;
	if (!c->conf.store_check) {
		log_warnx("store: %s: not checked at start ([center] "
		          "store_check = no)",
		          c->paths.db);
		return 0;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (store_quick_check(c->store, c->paths.db, err) == -1) {
		store_close(c->store);
		c->store = NULL;
		goto damaged;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	log_info("store: %s: integrity check passed in %.2f s", c->paths.db,
	         (double)(t1.tv_sec - t0.tv_sec) +
	             (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	return 0;
damaged:
	buf_printf(err,
	           ". The database %s is damaged: not starting. Restore the "
	           "last backup (vigilctl store restore BACKUP --data-dir %s; "
	           "see docs/guide.md, \"Backup and restore\")",
	           c->paths.db, c->conf.data_dir);
	return -1;
}

static void
store_check_tick(evutil_socket_t fd, short what, void *arg)
{
	struct center *c = arg;
	struct timeval tv = {c->conf.store_check_interval, 0};
	struct buf err;
	int ok;

	(void)fd;
	(void)what;
	buf_init(&err, 4096);
	ok = store_quick_check(c->store, center_store_name(c), &err) == 0;
	metrics_set("vigil_store_integrity_ok", NULL, ok);
	if (!ok)
		log_warnx("store: %s: integrity check failed: %s; restore the "
		          "last backup (vigilctl store restore, docs/guide.md)",
		          center_store_name(c), buf_cstr(&err));
	buf_free(&err);
	evtimer_add(c->ev_storecheck, &tv);
}

int
center_store_check_start(struct center *c)
{
	struct timeval tv = {c->conf.store_check_interval, 0};

	metrics_declare("vigil_store_integrity_ok", METRIC_GAUGE,
	                "1 when the last check of the database (at start, "
	                "then every store_check_interval) found it sound");
	metrics_set("vigil_store_integrity_ok", NULL, 1);
	if ((c->ev_storecheck = evtimer_new(c->base, store_check_tick, c)) ==
	    NULL)
		return -1;
	return evtimer_add(c->ev_storecheck, &tv);
}
