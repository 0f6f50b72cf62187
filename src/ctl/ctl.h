/*
 * ctl.h: shared parts of vigilctl (util.c): global options (--server,
 * --ca, --key-file, --json), the admin API call helpers and output; and
 * the subcommands' entry points, one file each, which main.c's table
 * names. util.c calls no subcommand.
 */
#ifndef VIGIL_CTL_H
#define VIGIL_CTL_H

#include <jansson.h>

struct ctl_opts {
	const char *server;   /* https://host:8443 */
	const char *ca;       /* CA that signed the center's certificate */
	const char *key_file; /* file with the API key */
	int key_file_given;   /* --key-file: VIGIL_API_KEY does not count */
	int json;
	int server_given; /* --server or VIGIL_SERVER */
};

extern struct ctl_opts ctl;

/* Calls the admin API; on success returns the parsed reply (NULL body ->
 * empty object). On failure prints "vigilctl: ..." and returns NULL. */
json_t *ctl_api(const char *method, const char *path, json_t *body);
/* A request with a body of any type (ctype) and a timeout in seconds;
 * returns the parsed JSON reply whatever its status (in *status), or
 * NULL after printing why (no reply, or not JSON). */
json_t *ctl_api_raw(const char *method, const char *path, const char *ctype,
                    const void *body, size_t len, long timeout, long *status);
/* GETs a list endpoint page after page (following next_cursor) and
 * returns the items of all pages, at most max (0: all); NULL after an
 * error (printed). */
json_t *ctl_api_all(const char *path, size_t max);
/* GETs path into a new file (created 0600, never over an existing one;
 * removed again on failure), or to stdout when file is "-"; 0, or -1
 * after printing why. */
int ctl_download(const char *path, const char *file);
/* ctl_api with an explicit key (or NULL for none) and extra header lines;
 * cookie (may be NULL) gets the reply's first Set-Cookie "name=value". */
json_t *ctl_call(const char *method, const char *path, json_t *body,
                 const char *key, const char *const *headers, char *cookie,
                 size_t cookie_len);
/* $XDG_CONFIG_HOME/vigil/api.key (or ~/.config/vigil/api.key): where
 * `vigilctl login` keeps its key. -1 when neither variable is set. */
int ctl_login_key_path(char *out, size_t n);
/* A password: one line into out (size n), newline removed; without echo
 * from a terminal, or from standard input when from_stdin. */
int ctl_read_password(const char *prompt, int from_stdin, char *out, size_t n);
/* Prints rows (array of objects) as a table with the given columns. */
void ctl_table(json_t *rows, const char *const *cols, const char *const *hdrs);
/* Prints j as indented JSON. */
void ctl_print_json(json_t *j);
/* "5m ago" / "never" */
void ctl_ago(long long t, char *out, size_t n);

struct buf;

/* "2026-11-23 10:00Z", or with secs "2026-11-23 10:00:05";
 * "-" for 0. */
void ctl_utc(long long t, int secs, char *out, size_t n);
/* 1 when "--help" or "-h" is among argv[1..]: help, never a value. */
int ctl_wants_help(int argc, char **argv);
/* --since: unix seconds, or an age (30m, 24h, 7d) counted back from now;
 * -1 after a message. */
int ctl_since(const char *arg, long long *out);
/* Appends "?name=v" or "&name=v", v URL-encoded, when v is not NULL. */
void ctl_query_add(struct buf *q, const char *name, const char *v);
/* 1 when v has 1..max characters; else 0 after a message naming --opt. */
int ctl_length_ok(const char *opt, const char *v, size_t max);
/* Makes s (from an agent) safe for a terminal: control characters become
 * '?'; then cuts it to max bytes with "..." (max 0: no cut). */
void ctl_clean(char *s, size_t max);
/* ctl_clean() applied to the string member key of row, if any. */
void ctl_clean_field(json_t *row, const char *key, size_t max);
/* An object's members as "k=v k=v", cleaned and cut to max; "-" if none. */
void ctl_brief(json_t *o, char *out, size_t n, size_t max);
/* A one-line summary of a row's "data" into out (size n). */
typedef void (*ctl_summary_fn)(json_t *data, char *out, size_t n);
/* A string member of a row and the length it is cut to. */
struct ctl_cut {
	const char *key;
	size_t max;
};
/* Prints a list of events or findings: as JSON with --json, else as a
 * table of cols after adding "time_utc" (from "time") and "summary" (from
 * "data") to each row and cleaning the members clean names ({NULL, 0}
 * ends it; clean may be NULL). */
void ctl_print_rows(json_t *rows, ctl_summary_fn summary,
                    const struct ctl_cut *clean, const char *const *cols,
                    const char *const *hdrs);

int ctl_agent(int argc, char **argv);
int ctl_token(int argc, char **argv);
int ctl_task(int argc, char **argv);
int ctl_rules(int argc, char **argv);
int ctl_events(int argc, char **argv);
int ctl_findings(int argc, char **argv);
int ctl_samples(int argc, char **argv);
int ctl_audit(int argc, char **argv);
int ctl_doctor(int argc, char **argv);
int ctl_store(int argc, char **argv);
int ctl_settings(int argc, char **argv);
int ctl_nodes(int argc, char **argv);
int ctl_forward(int argc, char **argv);
int ctl_collector(int argc, char **argv);
int ctl_master(int argc, char **argv);
int ctl_user(int argc, char **argv);
int ctl_key(int argc, char **argv);
int ctl_login(int argc, char **argv);
int ctl_intel(int argc, char **argv);
int ctl_update(int argc, char **argv);
int ctl_logout(int argc, char **argv);
int ctl_totp_self(int argc, char **argv); /* argv[0]: enroll | confirm */

/* A login session of a user (login.c): hdrs carry its cookie and CSRF
 * token for ctl_call. */
struct ctl_session {
	char cookie[600];
	char csrf[160];
	char role[16];
	const char *hdrs[3];
};
/* Asks for the password; 0 when logged in, -1 after a message. */
int ctl_session_open(struct ctl_session *s, const char *user, int from_stdin,
                     const char *totp);
/* Logs out (when open) and wipes s. */
void ctl_session_close(struct ctl_session *s);

/* The audit hash chain of a database (audit.c): 0 intact, 1 broken (why),
 * -1 unreadable. */
struct buf;
struct store;
struct hashchain;
int ctl_audit_chain(struct store *s, struct hashchain *h, struct buf *why);

#endif
