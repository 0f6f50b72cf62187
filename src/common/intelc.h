/*
 * intelc: the client of vigil-inteld shared by the center (enrichment of
 * findings and events, agents' reputation requests) and vigil-scand (a
 * sample's verdict). Only inteld's HTTP API: batch lookups (POST
 * /api/v1/lookup, answers in order) over HTTPS that trusts the given CA
 * only, with a client certificate of the deployment CA or an API key read
 * from a file that others cannot read. Each failure is one sentence that
 * names inteld's URL. One request at a time per struct intelc; several
 * threads take one each.
 */
#ifndef VIGIL_INTELC_H
#define VIGIL_INTELC_H

#include <stddef.h>

#include <jansson.h>

#include "buf.h"

#define INTELC_MAX_BATCH 10000 /* inteld's own limit (max_batch) */

/* The [intel] section of a daemon's configuration (each daemon's key
 * table names the keys: url, ca, cert, key, api_key_file, timeout). */
struct intelc_conf {
	char *url;          /* https://host:10443; NULL: no inteld */
	char *ca;           /* CA that signed inteld's certificate */
	char *cert, *key;   /* client certificate and key, or NULL */
	char *api_key_file; /* an API key (role lookup), or NULL */
	long long timeout;  /* seconds per request */
};

/*
 * The [intel] keys (url, ca, cert, key, api_key_file, timeout) of a
 * daemon's key table (config.h's struct cfg_key): one definition for
 * vigild and vigil-scand. BASE is the offset of the daemon's struct
 * intelc_conf in its configuration struct, CA_MORE what the help of ca
 * adds (the default the daemon gives it). Needs <stddef.h>, config.h.
 */
#define INTELC_CFG_STR_(BASE, F, HELP)                                         \
	{                                                                      \
		"intel", #F, CFG_STR, NULL, 0, 0,                              \
		    (BASE) + offsetof(struct intelc_conf, F), 0, NULL, HELP    \
	}
#define INTELC_CFG_KEYS(BASE, CA_MORE)                                         \
	INTELC_CFG_STR_(BASE, url,                                             \
	                "vigil-inteld to ask about hashes, addresses and "     \
	                "domains (https://HOST:10443); none by default; "      \
	                "SIGHUP applies a change to any [intel] key"),         \
	    INTELC_CFG_STR_(BASE, ca,                                          \
	                    "CA file that signed vigil-inteld's "              \
	                    "certificate" CA_MORE),                            \
	    INTELC_CFG_STR_(BASE, cert,                                        \
	                    "client certificate (PEM, from the deployment "    \
	                    "CA) for vigil-inteld"),                           \
	    INTELC_CFG_STR_(BASE, key, "the client certificate's key (0600)"), \
	    INTELC_CFG_STR_(BASE, api_key_file,                                \
	                    "file holding an API key of vigil-inteld (role "   \
	                    "lookup; 0600), instead of a client "              \
	                    "certificate"),                                    \
	{                                                                      \
		"intel", "timeout", CFG_DURATION, "5s", 1, 300,                \
		    (BASE) + offsetof(struct intelc_conf, timeout), 0, NULL,   \
		    "time allowed for one request to vigil-inteld"             \
	}

struct intelc;

/* 1 when a and b name the same inteld the same way (every key equal). */
int intelc_conf_same(const struct intelc_conf *a, const struct intelc_conf *b);

/* Checks the section (https URL, a CA, cert with key, the key file's
 * permissions) and loads the API key. *out NULL when no url is set.
 * -1 with the problem in err. */
int intelc_new(const struct intelc_conf *cf, struct intelc **out,
               struct buf *err);
void intelc_free(struct intelc *ic);
const char *intelc_url(const struct intelc *ic);

/*
 * Batch lookup: indicators is a JSON array of {"type", "value"} (type
 * sha256, sha1, md5, ip, domain, url) or plain strings, at most
 * INTELC_MAX_BATCH. On success *results is inteld's "results" array, one
 * answer per indicator in order ({"verdict", "score", "decided_by",
 * "sources"}, or {"input", "error"} for one that is no indicator), owned
 * by the caller. -1 with one sentence in err otherwise.
 */
int intelc_lookup(struct intelc *ic, json_t *indicators, json_t **results,
                  struct buf *err);

/*
 * Imports a feed file into inteld's feed FEED (made first when missing,
 * with the description desc): POST /api/v1/feeds, then POST
 * /api/v1/feeds/FEED/import?format=FORMAT with body. Needs inteld's admin
 * role (a certificate of role update, intel or master, or an admin API
 * key). *report is inteld's import report. -1 with one sentence in err.
 */
int intelc_feed_import(struct intelc *ic, const char *feed, const char *desc,
                       const char *format, const void *body, size_t len,
                       json_t **report, struct buf *err);

/* A summary of one answer for a finding: {"verdict", "score", "sources":
 * [names of the contributing sources]} (a new reference), or NULL for an
 * error entry. */
json_t *intelc_brief(json_t *answer);

/* The feed name and import format a feed file's name gives: its last
 * path part without the extension into feed, and "csv" for .csv, "list"
 * for .txt or .list, "stix" for .json (a STIX 2.1 bundle); NULL when it
 * is none of these (the master's pushes and the update mirror). */
const char *intelc_feed_format(const char *name, char *feed, size_t n);

/* Rank of a verdict: malicious 3, suspicious 2, benign 1, else 0. */
int intelc_verdict_rank(const char *verdict);

#endif
