/*
 * ctl.h: shared parts of vigilctl: global options (--server, --ca,
 * --key-file, --json), the admin API call helper and table output.
 */
#ifndef VIGIL_CTL_H
#define VIGIL_CTL_H

#include <jansson.h>

struct ctl_opts {
	const char *server;   /* https://host:8443 */
	const char *ca;       /* CA that signed the center's certificate */
	const char *key_file; /* file with the API key */
	int json;
};

extern struct ctl_opts ctl;

/* Calls the admin API; on success returns the parsed reply (NULL body ->
 * empty object). On failure prints "vigilctl: ..." and returns NULL. */
json_t *ctl_api(const char *method, const char *path, json_t *body);
/* Prints rows (array of objects) as a table with the given columns. */
void ctl_table(json_t *rows, const char *const *cols, const char *const *hdrs);
/* Prints j as indented JSON. */
void ctl_print_json(json_t *j);
/* "5m ago" / "never" */
void ctl_ago(long long t, char *out, size_t n);

int ctl_agent(int argc, char **argv);
int ctl_token(int argc, char **argv);

#endif
