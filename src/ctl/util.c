/*
 * util.c: what vigilctl's subcommands share, and nothing else: the global
 * options, the admin API calls (one request, every page of a list, a
 * download), the API key's places, reading a password, and output (tables,
 * JSON, times, query strings, strings from agents made safe for a
 * terminal). It calls no subcommand, so each command file depends on this
 * one and on no other: a change to one command cannot reach another.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "ctl.h"
#include "httpc.h"
#include "tls.h"

struct ctl_opts ctl;

static char *
read_key(void)
{
	const char *env = getenv("VIGIL_API_KEY");
	struct buf b, err;
	char *k;
	size_t n;

	/* An explicit --key-file wins over the environment. */
	if (!ctl.key_file_given && env != NULL && *env != '\0')
		return strdup(env);
	buf_init(&b, 4096);
	buf_init(&err, 1024);
	if (tls_check_key_perms(ctl.key_file, &err) == -1 ||
	    tls_read_file(ctl.key_file, 4096, &b, &err) == -1) {
		fprintf(stderr, "vigilctl: API key: %s\n", buf_cstr(&err));
		buf_free(&b);
		buf_free(&err);
		return NULL;
	}
	buf_free(&err);
	k = buf_steal(&b, &n);
	while (n > 0 &&
	       (k[n - 1] == '\n' || k[n - 1] == '\r' || k[n - 1] == ' '))
		k[--n] = '\0';
	return k;
}

json_t *
ctl_call(const char *method, const char *path, json_t *body, const char *key,
         const char *const *headers, char *cookie, size_t cookie_len)
{
	struct httpc_opts o;
	struct httpc_resp resp;
	json_t *j = NULL, *e;
	char url[2048], *b = NULL;
	json_error_t je;

	memset(&o, 0, sizeof(o));
	o.ca_file = ctl.ca;
	o.bearer = key;
	o.headers = headers;
	o.timeout_secs = 30;
	snprintf(url, sizeof(url), "%s%s", ctl.server, path);
	if (body != NULL)
		b = json_dumps(body, JSON_COMPACT);
	httpc_resp_init(&resp);
	if (httpc_request(&o, method, url, NULL, b, b ? strlen(b) : 0, &resp) ==
	    -1) {
		fprintf(stderr, "vigilctl: %s\n", resp.errmsg);
		goto out;
	}
	j = resp.body.len ? json_loadb((const char *)resp.body.data,
	                               resp.body.len, 0, &je)
	                  : json_object();
	if (resp.status >= 400 || j == NULL) {
		e = json_object_get(json_object_get(j, "error"), "message");
		fprintf(stderr, "vigilctl: %s %s: %ld %s\n", method, path,
		        resp.status,
		        json_is_string(e) ? json_string_value(e)
		                          : "unexpected reply from the center");
		json_decref(j);
		j = NULL;
	}
	if (j != NULL && cookie != NULL)
		snprintf(cookie, cookie_len, "%s", resp.cookie);
out:
	explicit_bzero(resp.cookie, sizeof(resp.cookie));
	if (b != NULL)
		explicit_bzero(b, strlen(b));
	free(b);
	httpc_resp_free(&resp);
	return j;
}

json_t *
ctl_api_raw(const char *method, const char *path, const char *ctype,
            const void *body, size_t len, long timeout, long *status)
{
	struct httpc_opts o;
	struct httpc_resp resp;
	json_t *j = NULL;
	char url[4096], *key;

	*status = 0;
	if ((key = read_key()) == NULL)
		return NULL;
	memset(&o, 0, sizeof(o));
	o.ca_file = ctl.ca;
	o.bearer = key;
	o.timeout_secs = timeout;
	snprintf(url, sizeof(url), "%s%s", ctl.server, path);
	httpc_resp_init(&resp);
	if (httpc_request(&o, method, url, ctype, body, len, &resp) == -1)
		fprintf(stderr, "vigilctl: %s\n", resp.errmsg);
	else {
		*status = resp.status;
		j = json_loadb((const char *)resp.body.data, resp.body.len, 0,
		               NULL);
		if (j == NULL)
			fprintf(stderr,
			        "vigilctl: %s %s: %ld and a reply that is not "
			        "JSON\n",
			        method, path, resp.status);
	}
	explicit_bzero(key, strlen(key));
	free(key);
	httpc_resp_free(&resp);
	return j;
}

json_t *
ctl_api(const char *method, const char *path, json_t *body)
{
	json_t *j;
	char *key;

	if ((key = read_key()) == NULL)
		return NULL;
	j = ctl_call(method, path, body, key, NULL, NULL, 0);
	explicit_bzero(key, strlen(key));
	free(key);
	return j;
}

int
ctl_download(const char *path, const char *file)
{
	struct httpc_opts o;
	struct httpc_resp resp;
	char url[2048], *key;
	json_t *j, *e;
	FILE *f = NULL;
	int fd, rc = -1;

	if ((key = read_key()) == NULL)
		return -1;
	if (strcmp(file, "-") == 0) {
		fd = -1;
		f = stdout;
	} else if ((fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
	                      0600)) == -1 ||
	           (f = fdopen(fd, "wb")) == NULL) {
		fprintf(stderr, "vigilctl: %s: %s\n", file, strerror(errno));
		if (fd != -1) {
			close(fd);
			unlink(file);
		}
		goto out;
	}
	memset(&o, 0, sizeof(o));
	o.ca_file = ctl.ca;
	o.bearer = key;
	o.timeout_secs = 3600;
	o.sink = f;
	snprintf(url, sizeof(url), "%s%s", ctl.server, path);
	httpc_resp_init(&resp);
	if (httpc_request(&o, "GET", url, NULL, NULL, 0, &resp) == -1)
		fprintf(stderr, "vigilctl: %s\n", resp.errmsg);
	else if (resp.status != 200) {
		j = json_loadb((const char *)resp.body.data, resp.body.len, 0,
		               NULL);
		e = json_object_get(json_object_get(j, "error"), "message");
		fprintf(stderr, "vigilctl: GET %s: %ld %s\n", path, resp.status,
		        json_is_string(e) ? json_string_value(e)
		                          : "unexpected reply from the center");
		json_decref(j);
	} else
		rc = 0;
	httpc_resp_free(&resp);
	if ((f == stdout ? fflush(f) : fclose(f)) != 0 && rc == 0) {
		fprintf(stderr, "vigilctl: %s: %s\n", file, strerror(errno));
		rc = -1;
	}
	if (rc == -1 && f != stdout)
		unlink(file);
out:
	explicit_bzero(key, strlen(key));
	free(key);
	return rc;
}

json_t *
ctl_api_all(const char *path, size_t max)
{
	struct buf p;
	json_t *all = json_array(), *j, *it;
	const char *next;
	size_t i;

	buf_init(&p, 8192);
	buf_puts(&p, path);
	for (;;) {
		if ((j = ctl_api("GET", buf_cstr(&p), NULL)) == NULL) {
			json_decref(all);
			all = NULL;
			break;
		}
		json_array_foreach(json_object_get(j, "items"), i, it)
		{
			if (max == 0 || json_array_size(all) < max)
				json_array_append(all, it);
		}
		next = json_string_value(json_object_get(j, "next_cursor"));
		if (next == NULL || (max != 0 && json_array_size(all) >= max)) {
			json_decref(j);
			break;
		}
		buf_reset(&p);
		buf_printf(&p, "%s%ccursor=", path,
		           strchr(path, '?') ? '&' : '?');
		httpc_urlenc(&p, next);
		json_decref(j);
	}
	buf_free(&p);
	return all;
}

/* Labels as "k=v,k=v", lists as "a,b": what an operator types. */
static void
labels_cell(json_t *v, char *out, size_t n)
{
	struct buf b;
	const char *k;
	json_t *e;
	size_t i;

	buf_init(&b, n > 0 ? n - 1 : 0);
	if (json_is_object(v)) {
		json_object_foreach(v, k, e)
		{
			buf_printf(&b, "%s%s=%s", b.len ? "," : "", k,
			           json_is_string(e) ? json_string_value(e)
			                             : "?");
		}
	} else {
		json_array_foreach(v, i, e)
		{
			buf_printf(&b, "%s%s", b.len ? "," : "",
			           json_is_string(e) ? json_string_value(e)
			                             : "?");
		}
	}
	snprintf(out, n, "%s", b.len ? buf_cstr(&b) : "-");
	buf_free(&b);
}

static void
cell(json_t *v, char *out, size_t n)
{
	if (json_is_string(v))
		snprintf(out, n, "%s", json_string_value(v));
	else if (json_is_integer(v))
		snprintf(out, n, "%lld", (long long)json_integer_value(v));
	else if (json_is_true(v))
		snprintf(out, n, "yes");
	else if (json_is_false(v))
		snprintf(out, n, "no");
	else if (json_is_null(v) || v == NULL)
		snprintf(out, n, "-");
	else if (json_is_object(v) || json_is_array(v))
		labels_cell(v, out, n);
	else {
		char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

		snprintf(out, n, "%s", s ? s : "?");
		free(s);
	}
}

void
ctl_table(json_t *rows, const char *const *cols, const char *const *hdrs)
{
	size_t ncol = 0, i, j, w[32];
	char c[256];
	json_t *row;

	while (cols[ncol] != NULL && ncol < 32)
		ncol++;
	for (j = 0; j < ncol; j++)
		w[j] = strlen(hdrs[j]);
	json_array_foreach(rows, i, row)
	{
		for (j = 0; j < ncol; j++) {
			cell(json_object_get(row, cols[j]), c, sizeof(c));
			if (strlen(c) > w[j])
				w[j] = strlen(c);
		}
	}
	for (j = 0; j < ncol; j++)
		printf("%-*s%s", j + 1 < ncol ? (int)w[j] : 0, hdrs[j],
		       j + 1 < ncol ? "  " : "\n");
	json_array_foreach(rows, i, row)
	{
		for (j = 0; j < ncol; j++) {
			cell(json_object_get(row, cols[j]), c, sizeof(c));
			printf("%-*s%s", j + 1 < ncol ? (int)w[j] : 0, c,
			       j + 1 < ncol ? "  " : "\n");
		}
	}
}

void
ctl_print_json(json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);

	if (s != NULL)
		printf("%s\n", s);
	free(s);
}

void
ctl_ago(long long t, char *out, size_t n)
{
	long long d = (long long)time(NULL) - t;

	if (t <= 0)
		snprintf(out, n, "never");
	else if (d < 120)
		snprintf(out, n, "%llds ago", d < 0 ? 0 : d);
	else if (d < 7200)
		snprintf(out, n, "%lldm ago", d / 60);
	else if (d < 172800)
		snprintf(out, n, "%lldh ago", d / 3600);
	else
		snprintf(out, n, "%lldd ago", d / 86400);
}

void
ctl_utc(long long t, int secs, char *out, size_t n)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t <= 0 || gmtime_r(&tt, &tm) == NULL) {
		snprintf(out, n, "-");
		return;
	}
	strftime(out, n, secs ? "%Y-%m-%d %H:%M:%S" : "%Y-%m-%d %H:%MZ", &tm);
}

int
ctl_wants_help(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++)
		if (strcmp(argv[i], "--help") == 0 ||
		    strcmp(argv[i], "-h") == 0)
			return 1;
	return 0;
}

int
ctl_since(const char *arg, long long *out)
{
	/* A plain number is a time; with a unit, an age. */
	if (str_to_ll(arg, 0, 1LL << 62, out) == 0)
		return 0;
	if (str_to_duration(arg, out) == -1 || *out > (long long)time(NULL)) {
		fprintf(stderr,
		        "vigilctl: --since: '%s' is neither a duration (30m, "
		        "24h, 7d) nor unix seconds\n",
		        arg);
		return -1;
	}
	*out = (long long)time(NULL) - *out;
	return 0;
}

void
ctl_clean(char *s, size_t max)
{
	unsigned char *r = (unsigned char *)s, *w = (unsigned char *)s;
	size_t len, cut;

	/* C0 controls, DEL and the UTF-8 encodings of C1 controls (which
	 * some terminals obey, e.g. U+009B as CSI) become '?'. */
	while (*r != '\0') {
		if (*r < 0x20 || *r == 0x7f) {
			*w++ = '?';
			r++;
		} else if (r[0] == 0xc2 && r[1] >= 0x80 && r[1] <= 0x9f) {
			*w++ = '?';
			r += 2;
		} else
			*w++ = *r++;
	}
	*w = '\0';
	if (max < 4 || (len = strlen(s)) <= max)
		return;
	/* Cut on a character boundary, never inside a UTF-8 sequence. */
	cut = max - 3;
	while (cut > 0 && ((unsigned char)s[cut] & 0xc0) == 0x80)
		cut--;
	memcpy(s + cut, "...", 4);
}

void
ctl_clean_field(json_t *row, const char *key, size_t max)
{
	json_t *v = json_object_get(row, key);
	char *s;

	if (!json_is_string(v) || (s = strdup(json_string_value(v))) == NULL)
		return;
	ctl_clean(s, max);
	json_object_set_new(row, key, json_string(s));
	free(s);
}

void
ctl_brief(json_t *o, char *out, size_t n, size_t max)
{
	struct buf b;
	const char *k;
	json_t *v;
	char *s;

	buf_init(&b, 8192);
	if (json_is_object(o)) {
		json_object_foreach(o, k, v)
		{
			if (json_is_string(v))
				buf_printf(&b, "%s%s=%s", b.len ? " " : "", k,
				           json_string_value(v));
			else {
				s = json_dumps(v,
				               JSON_COMPACT | JSON_ENCODE_ANY);
				buf_printf(&b, "%s%s=%s", b.len ? " " : "", k,
				           s ? s : "?");
				free(s);
			}
			if (b.len > max)
				break;
		}
	}
	snprintf(out, n, "%s", b.len ? buf_cstr(&b) : "-");
	buf_free(&b);
	ctl_clean(out, max);
}

void
ctl_query_add(struct buf *q, const char *name, const char *v)
{
	if (v == NULL)
		return;
	buf_printf(q, "%c%s=", q->len ? '&' : '?', name);
	httpc_urlenc(q, v);
}

int
ctl_length_ok(const char *opt, const char *v, size_t max)
{
	if (strlen(v) == 0 || strlen(v) > max) {
		fprintf(stderr, "vigilctl: --%s: must be 1..%zu characters\n",
		        opt, max);
		return 0;
	}
	return 1;
}

int
ctl_login_key_path(char *out, size_t n)
{
	const char *x = getenv("XDG_CONFIG_HOME"), *h = getenv("HOME");
	int k;

	if (x != NULL && *x == '/')
		k = snprintf(out, n, "%s/vigil/api.key", x);
	else if (h != NULL && *h == '/')
		k = snprintf(out, n, "%s/.config/vigil/api.key", h);
	else
		return -1;
	return k > 0 && (size_t)k < n ? 0 : -1;
}

int
ctl_read_password(const char *prompt, int from_stdin, char *out, size_t n)
{
	struct termios old, noecho;
	int tty = !from_stdin && isatty(STDIN_FILENO);
	size_t len;
	char *ok;

	if (!from_stdin && !tty) {
		fprintf(stderr, "vigilctl: no terminal to ask for the "
		                "password; use --password-stdin\n");
		return -1;
	}
	if (tty) {
		fprintf(stderr, "%s", prompt);
		tcgetattr(STDIN_FILENO, &old);
		noecho = old;
		noecho.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &noecho);
	}
	ok = fgets(out, (int)n, stdin);
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
		fprintf(stderr, "\n");
	}
	if (ok == NULL) {
		fprintf(stderr, "vigilctl: no password given\n");
		return -1;
	}
	len = strlen(out);
	while (len > 0 && (out[len - 1] == '\n' || out[len - 1] == '\r'))
		out[--len] = '\0';
	return 0;
}

void
ctl_print_rows(json_t *rows, ctl_summary_fn summary,
               const struct ctl_cut *clean, const char *const *cols,
               const char *const *hdrs)
{
	const struct ctl_cut *c;
	json_t *row;
	size_t i;

	if (ctl.json) {
		ctl_print_json(rows);
		return;
	}
	json_array_foreach(rows, i, row)
	{
		json_t *t = json_object_get(row, "time");
		char when[32], sum[512];

		ctl_utc(json_is_integer(t) ? json_integer_value(t) : 0, 1, when,
		        sizeof(when));
		summary(json_object_get(row, "data"), sum, sizeof(sum));
		json_object_set_new(row, "time_utc", json_string(when));
		json_object_set_new(row, "summary", json_string(sum));
		for (c = clean; c != NULL && c->key != NULL; c++)
			ctl_clean_field(row, c->key, c->max);
	}
	ctl_table(rows, cols, hdrs);
}
