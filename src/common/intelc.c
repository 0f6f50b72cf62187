/*
 * intelc.c: batch lookups against vigil-inteld (intelc.h) on the tree's
 * HTTPS client (httpc). A request is made of the configured section alone;
 * nothing here keeps a connection or state between lookups, so a restarted
 * inteld is simply reached again by the next call.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "httpc.h"
#include "intelc.h"
#include "log.h"
#include "pki.h"
#include "tls.h"

struct intelc {
	struct httpc_opts ho;
	char *url;             /* .../api/v1/lookup */
	char *base;            /* as configured, for messages */
	char *bearer;          /* the API key, or NULL */
	char *ca, *cert, *key; /* copies: the configuration may be reloaded */
};

int
intelc_verdict_rank(const char *v)
{
	if (v == NULL)
		return 0;
	if (strcmp(v, "malicious") == 0)
		return 3;
	if (strcmp(v, "suspicious") == 0)
		return 2;
	if (strcmp(v, "benign") == 0)
		return 1;
	return 0;
}

static char *
load_key(const char *path, struct buf *err)
{
	struct buf b;
	struct strv s;
	char *k = NULL;

	buf_init(&b, 4096);
	if (tls_check_key_perms(path, err) == -1 ||
	    tls_read_file(path, 4096, &b, err) == -1)
		goto out;
	s = strv_trim(strv_make((const char *)b.data, b.len));
	if (s.len == 0 || memchr(s.p, '\n', s.len) != NULL) {
		buf_printf(err, "%s: expected one API key on one line", path);
		goto out;
	}
	k = strv_dup(s);
out:
	if (b.data != NULL)
		explicit_bzero(b.data, b.len);
	buf_free(&b);
	return k;
}

static int
same_str(const char *a, const char *b)
{
	return (a == NULL && b == NULL) ||
	       (a != NULL && b != NULL && strcmp(a, b) == 0);
}

int
intelc_conf_same(const struct intelc_conf *a, const struct intelc_conf *b)
{
	return same_str(a->url, b->url) && same_str(a->ca, b->ca) &&
	       same_str(a->cert, b->cert) && same_str(a->key, b->key) &&
	       same_str(a->api_key_file, b->api_key_file) &&
	       a->timeout == b->timeout;
}

int
intelc_new(const struct intelc_conf *cf, struct intelc **out, struct buf *err)
{
	struct intelc *ic = NULL;
	size_t n;

	*out = NULL;
	if (cf->url == NULL || cf->url[0] == '\0')
		return 0;
	if (strncasecmp(cf->url, "https://", 8) != 0 || cf->url[8] == '\0') {
		buf_printf(err, "[intel] url: %s: not https://HOST:PORT",
		           cf->url);
		return -1;
	}
	if (cf->ca == NULL) {
		buf_printf(err, "[intel] ca: required with url");
		return -1;
	}
	if ((cf->cert == NULL) != (cf->key == NULL)) {
		buf_printf(err, "[intel] cert and key go together");
		return -1;
	}
	if (cf->cert == NULL && cf->api_key_file == NULL) {
		buf_printf(err, "[intel] needs cert and key (a client "
		                "certificate of the deployment CA) or "
		                "api_key_file");
		return -1;
	}
	if (cf->key != NULL && tls_check_key_perms(cf->key, err) == -1)
		return -1;
	if ((ic = calloc(1, sizeof(*ic))) == NULL)
		goto oom;
	if (cf->api_key_file != NULL &&
	    (ic->bearer = load_key(cf->api_key_file, err)) == NULL)
		goto fail;
	n = strlen(cf->url);
	while (n > 8 && cf->url[n - 1] == '/')
		n--;
	if ((ic->base = strndup(cf->url, n)) == NULL ||
	    (ic->url = malloc(n + sizeof("/api/v1/lookup"))) == NULL)
		goto oom;
	memcpy(ic->url, cf->url, n);
	memcpy(ic->url + n, "/api/v1/lookup", sizeof("/api/v1/lookup"));
	if ((ic->ca = strdup(cf->ca)) == NULL ||
	    (cf->cert != NULL && (ic->cert = strdup(cf->cert)) == NULL) ||
	    (cf->key != NULL && (ic->key = strdup(cf->key)) == NULL))
		goto oom;
	ic->ho.ca_file = ic->ca;
	ic->ho.cert_file = ic->cert;
	ic->ho.key_file = ic->key;
	ic->ho.bearer = ic->bearer;
	ic->ho.timeout_secs = (long)cf->timeout;
	/* vigil-inteld's own certificate, or the center's when it shares the
	 * center's host (docs/pki.md): not another component's. */
	ic->ho.server_roles = PKI_ROLE_BIT(PKI_ROLE_INTEL) |
	                      PKI_ROLE_BIT(PKI_ROLE_CENTER) |
	                      PKI_ROLE_BIT(PKI_ROLE_NONE);
	ic->ho.server_what = "a client of vigil-inteld";
	*out = ic;
	return 0;
oom:
	buf_printf(err, "out of memory");
fail:
	intelc_free(ic);
	return -1;
}

void
intelc_free(struct intelc *ic)
{
	if (ic == NULL)
		return;
	if (ic->bearer != NULL)
		explicit_bzero(ic->bearer, strlen(ic->bearer));
	free(ic->bearer);
	free(ic->url);
	free(ic->base);
	free(ic->ca);
	free(ic->cert);
	free(ic->key);
	free(ic);
}

const char *
intelc_url(const struct intelc *ic)
{
	return ic->base;
}
/* Why a request to vigil-inteld got no answer, for the operator. */
static void
transport_error(const struct intelc *ic, const struct httpc_resp *r,
                struct buf *err)
{
	if (r->err == HTTPC_ERR_CONNECT)
		buf_printf(err,
		           "vigil-inteld %s: cannot connect; is it running and "
		           "its port open from this host?",
		           ic->base);
	else
		buf_printf(err, "vigil-inteld %s: %s", ic->base, r->errmsg);
}

int
intelc_lookup(struct intelc *ic, json_t *indicators, json_t **results,
              struct buf *err)
{
	struct httpc_resp r;
	json_t *j = NULL, *a;
	char *body;
	int rc = -1;

	*results = NULL;
	if (json_array_size(indicators) > INTELC_MAX_BATCH) {
		buf_printf(err, "vigil-inteld %s: more than %d indicators",
		           ic->base, INTELC_MAX_BATCH);
		return -1;
	}
	if ((body = json_dumps(indicators, JSON_COMPACT)) == NULL) {
		buf_printf(err, "out of memory");
		return -1;
	}
	httpc_resp_init(&r);
	if (httpc_request(&ic->ho, "POST", ic->url, "application/json", body,
	                  strlen(body), &r) == -1) {
		transport_error(ic, &r, err);
		goto out;
	}
	if (r.status != 200) {
		json_t *e;
		const char *m = NULL;

		j = json_loadb((const char *)r.body.data, r.body.len, 0, NULL);
		e = json_object_get(j, "error");
		m = json_string_value(json_object_get(e, "message"));
		buf_printf(err, "vigil-inteld %s answered %ld: %s", ic->base,
		           r.status, m != NULL ? m : "(no message)");
		goto out;
	}
	j = json_loadb((const char *)r.body.data, r.body.len, 0, NULL);
	a = json_object_get(j, "results");
	if (!json_is_array(a) ||
	    json_array_size(a) != json_array_size(indicators)) {
		buf_printf(err,
		           "vigil-inteld %s: the answer is not %zu results "
		           "in order",
		           ic->base, json_array_size(indicators));
		goto out;
	}
	*results = json_incref(a);
	rc = 0;
out:
	json_decref(j);
	httpc_resp_free(&r);
	free(body);
	return rc;
}

json_t *
intelc_brief(json_t *ans)
{
	json_t *o, *srcs, *s;
	const char *v = json_string_value(json_object_get(ans, "verdict"));
	size_t i;

	if (v == NULL)
		return NULL;
	if ((o = json_object()) == NULL || (srcs = json_array()) == NULL) {
		json_decref(o);
		return NULL;
	}
	json_object_set_new(o, "verdict", json_string(v));
	json_object_set(o, "score",
	                json_object_get(ans, "score") != NULL
	                    ? json_object_get(ans, "score")
	                    : json_null());
	json_array_foreach(json_object_get(ans, "sources"), i, s)
	{
		const char *n = json_string_value(json_object_get(s, "source"));

		if (n != NULL)
			json_array_append_new(srcs, json_string(n));
	}
	json_object_set_new(o, "sources", srcs);
	return o;
}

/* One request to inteld under /api/v1; 0 with the parsed reply when the
 * status is 2xx, -1 with one sentence in err. */
static int
call(struct intelc *ic, const char *path, const char *ctype, const void *body,
     size_t len, json_t **reply, struct buf *err)
{
	struct httpc_resp r;
	struct buf url;
	json_t *j;
	int rc = -1;

	*reply = NULL;
	buf_init(&url, 1024);
	buf_printf(&url, "%s/api/v1%s", ic->base, path);
	httpc_resp_init(&r);
	if (httpc_request(&ic->ho, "POST", buf_cstr(&url), ctype, body, len,
	                  &r) == -1) {
		transport_error(ic, &r, err);
		goto out;
	}
	j = json_loadb((const char *)r.body.data, r.body.len, 0, NULL);
	if (r.status < 200 || r.status > 299) {
		const char *m = json_string_value(
		    json_object_get(json_object_get(j, "error"), "message"));

		buf_printf(err, "vigil-inteld %s answered %ld to POST %s: %s",
		           ic->base, r.status, path,
		           m != NULL ? m : "(no message)");
		json_decref(j);
		goto out;
	}
	*reply = j;
	rc = 0;
out:
	httpc_resp_free(&r);
	buf_free(&url);
	return rc;
}

int
intelc_feed_import(struct intelc *ic, const char *feed, const char *desc,
                   const char *format, const void *body, size_t len,
                   json_t **report, struct buf *err)
{
	json_t *add, *reply = NULL;
	char *s;
	struct buf path;
	int rc;

	*report = NULL;
	if (!str_is_name(feed)) {
		buf_printf(err, "feed name %.80s: 1 to 64 of A-Z a-z 0-9 . _ -",
		           feed);
		return -1;
	}
	/* The feed first: inteld imports only into a feed that exists, and
	 * adding one that does keeps its priority (members not given). */
	add = json_pack("{s:s, s:s}", "name", feed, "description", desc);
	s = add != NULL ? json_dumps(add, JSON_COMPACT) : NULL;
	json_decref(add);
	if (s == NULL) {
		buf_puts(err, "out of memory");
		return -1;
	}
	rc = call(ic, "/feeds", "application/json", s, strlen(s), &reply, err);
	free(s);
	json_decref(reply);
	if (rc == -1)
		return -1;
	buf_init(&path, 256);
	buf_printf(&path, "/feeds/%s/import?format=%s", feed, format);
	rc = call(ic, buf_cstr(&path), "application/octet-stream", body, len,
	          report, err);
	buf_free(&path);
	return rc;
}

const char *
intelc_feed_format(const char *name, char *feed, size_t n)
{
	const char *b = strrchr(name, '/'), *dot;

	b = b != NULL ? b + 1 : name;
	if ((dot = strrchr(b, '.')) == NULL || dot == b ||
	    (size_t)(dot - b) >= n)
		return NULL;
	snprintf(feed, n, "%.*s", (int)(dot - b), b);
	if (strcmp(dot, ".csv") == 0)
		return "csv";
	if (strcmp(dot, ".txt") == 0 || strcmp(dot, ".list") == 0)
		return "list";
	if (strcmp(dot, ".json") == 0)
		return "stix";
	return NULL;
}
