/*
 * console.c: serves the web console (web/, built into web/dist) on the
 * admin listener. The files are read into memory when vigild starts (and
 * again on SIGHUP) from [admin] console_dir; a request can only ever get
 * one of those files, never a path of its own making, so there is no
 * traversal to get wrong. Hashed assets (/assets/NAME-HASH.js) are cached
 * for a year, everything else revalidated by ETag. Any other GET of a path
 * without a file extension is one of the console's pages: index.html.
 * Text files are also kept gzip-compressed (zlib) and sent so to clients
 * that accept it.
 *
 * Every answer carries a CSP that allows scripts, styles, images and
 * connections of this origin only (no inline script or style), and
 * frame-ancestors 'none'; http.c adds HSTS, nosniff and no-referrer.
 */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "center.h"
#include "tls.h"

#define C(r) ((struct center *)(r)->arg)

#define CONSOLE_MAX_FILES 512
#define CONSOLE_MAX_FILE  (8u << 20)
#define CONSOLE_MAX_TOTAL (64u << 20)
#define CONSOLE_MAX_DEPTH 4

#define CONSOLE_CSP                                                            \
	"default-src 'self'; script-src 'self'; style-src 'self'; "            \
	"img-src 'self' data:; font-src 'self'; connect-src 'self'; "          \
	"object-src 'none'; base-uri 'none'; form-action 'self'; "             \
	"frame-ancestors 'none'"

struct console_file {
	char *path; /* "/index.html", "/assets/index-abc123.js" */
	char *data;
	size_t len;
	char *gz; /* gzip of data, or NULL when it would not be smaller */
	size_t gzlen;
	const char *ctype;
	char etag[24];
	int immutable;
};

struct console {
	struct console_file *f;
	size_t n;
	size_t total;
	const struct console_file *index;
};

static const struct {
	const char *ext;
	const char *ctype;
	int text;
} console_types[] = {
    {".html", "text/html; charset=utf-8", 1},
    {".js", "text/javascript; charset=utf-8", 1},
    {".css", "text/css; charset=utf-8", 1},
    {".svg", "image/svg+xml", 1},
    {".json", "application/json", 1},
    {".txt", "text/plain; charset=utf-8", 1},
    {".png", "image/png", 0},
    {".ico", "image/x-icon", 0},
    {".woff2", "font/woff2", 0},
};

static int
console_type(const char *name, const char **ctype)
{
	size_t i, nl = strlen(name), el;

	for (i = 0; i < sizeof(console_types) / sizeof(console_types[0]); i++) {
		el = strlen(console_types[i].ext);
		if (nl > el &&
		    strcmp(name + nl - el, console_types[i].ext) == 0) {
			*ctype = console_types[i].ctype;
			return console_types[i].text;
		}
	}
	return -1;
}

/* Names of the files we serve: what Vite writes, nothing else. */
static int
console_name_ok(const char *s)
{
	if (*s == '\0' || *s == '.')
		return 0;
	for (; *s != '\0'; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '-' || *s == '_' ||
		      *s == '.'))
			return 0;
	return 1;
}

static void
console_gzip(struct console_file *f)
{
	z_stream z;
	uLong cap = compressBound((uLong)f->len) + 32;

	memset(&z, 0, sizeof(z));
	if ((f->gz = malloc(cap)) == NULL)
		return;
	if (deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) !=
	    Z_OK)
		goto fail;
	z.next_in = (Bytef *)f->data;
	z.avail_in = (uInt)f->len;
	z.next_out = (Bytef *)f->gz;
	z.avail_out = (uInt)cap;
	if (deflate(&z, Z_FINISH) != Z_STREAM_END) {
		deflateEnd(&z);
		goto fail;
	}
	f->gzlen = z.total_out;
	deflateEnd(&z);
	if (f->gzlen < f->len)
		return;
fail:
	free(f->gz);
	f->gz = NULL;
	f->gzlen = 0;
}

static int
console_add(struct console *cs, const char *full, const char *rel,
            const char *ctype, int text, struct buf *err)
{
	struct console_file *f;
	struct buf data;
	char hex[65];

	if (cs->n == CONSOLE_MAX_FILES) {
		buf_printf(err, "more than %d files", CONSOLE_MAX_FILES);
		return -1;
	}
	buf_init(&data, CONSOLE_MAX_FILE);
	if (tls_read_file(full, CONSOLE_MAX_FILE, &data, err) == -1) {
		buf_free(&data);
		return -1;
	}
	if (cs->total + data.len > CONSOLE_MAX_TOTAL) {
		buf_free(&data);
		buf_printf(err, "more than %u MiB of files",
		           CONSOLE_MAX_TOTAL >> 20);
		return -1;
	}
	f = &cs->f[cs->n];
	memset(f, 0, sizeof(*f));
	f->len = data.len;
	if ((f->data = buf_steal(&data, NULL)) == NULL ||
	    (f->path = strdup(rel)) == NULL) {
		free(f->data);
		buf_printf(err, "out of memory");
		return -1;
	}
	f->ctype = ctype;
	sha256_hex(f->data, f->len, hex);
	snprintf(f->etag, sizeof(f->etag), "\"%.20s\"", hex);
	f->immutable = strncmp(rel, "/assets/", 8) == 0;
	if (text)
		console_gzip(f);
	cs->total += f->len;
	cs->n++;
	if (strcmp(rel, "/index.html") == 0)
		cs->index = f;
	return 0;
}

static int
console_walk(struct console *cs, const char *dir, const char *rel, int depth,
             struct buf *err)
{
	DIR *d;
	struct dirent *e;
	struct stat st;
	char full[4096], sub[1024];
	const char *ctype;
	int text, rc = 0;

	if ((d = opendir(dir)) == NULL) {
		buf_printf(err, "%s: %s", dir, strerror(errno));
		return -1;
	}
	while (rc == 0 && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		if (!console_name_ok(e->d_name))
			continue;
		if ((size_t)snprintf(full, sizeof(full), "%s/%s", dir,
		                     e->d_name) >= sizeof(full) ||
		    (size_t)snprintf(sub, sizeof(sub), "%s/%s", rel,
		                     e->d_name) >= sizeof(sub))
			continue;
		if (lstat(full, &st) == -1)
			continue;
		if (S_ISDIR(st.st_mode)) {
			if (depth < CONSOLE_MAX_DEPTH)
				rc =
				    console_walk(cs, full, sub, depth + 1, err);
			continue;
		}
		if (!S_ISREG(st.st_mode) ||
		    (text = console_type(e->d_name, &ctype)) == -1)
			continue;
		rc = console_add(cs, full, sub, ctype, text, err);
	}
	closedir(d);
	return rc;
}

void
console_free(struct console *cs)
{
	size_t i;

	if (cs == NULL)
		return;
	for (i = 0; i < cs->n; i++) {
		free(cs->f[i].path);
		free(cs->f[i].data);
		free(cs->f[i].gz);
	}
	free(cs->f);
	free(cs);
}

int
console_load(const char *dir, struct console **out, struct buf *err)
{
	struct console *cs;

	*out = NULL;
	if ((cs = calloc(1, sizeof(*cs))) == NULL ||
	    (cs->f = calloc(CONSOLE_MAX_FILES, sizeof(*cs->f))) == NULL) {
		free(cs);
		buf_printf(err, "out of memory");
		return -1;
	}
	if (console_walk(cs, dir, "", 0, err) == -1) {
		console_free(cs);
		return -1;
	}
	if (cs->index == NULL) {
		console_free(cs);
		buf_printf(err,
		           "%s/index.html: missing (build it with `make "
		           "console`)",
		           dir);
		return -1;
	}
	*out = cs;
	return 0;
}

/* 1 when dir is set and exists but cannot be served; a missing directory
 * only means the console is not installed (the API works without it). */
int
console_check(const char *dir)
{
	struct console *cs;
	struct buf err;
	struct stat st;
	int bad = 0;

	if (dir == NULL || *dir == '\0' || stat(dir, &st) == -1)
		return 0;
	buf_init(&err, 1024);
	if (console_load(dir, &cs, &err) == -1) {
		log_warnx("check: [admin] console_dir: %s", buf_cstr(&err));
		bad = 1;
	}
	console_free(cs);
	buf_free(&err);
	return bad;
}

int
console_apply(struct center *c)
{
	const char *dir = c->conf.adm_console;
	struct console *cs = NULL;
	struct buf err;
	struct stat st;
	int rc = 0;

	if (dir == NULL || *dir == '\0') {
		console_free(c->console);
		c->console = NULL;
		log_info("vigild: web console off ([admin] console_dir empty)");
		return 0;
	}
	if (stat(dir, &st) == -1) {
		console_free(c->console);
		c->console = NULL;
		log_info("vigild: no web console at %s (not installed); the "
		         "admin API works without it",
		         dir);
		return 0;
	}
	buf_init(&err, 1024);
	if (console_load(dir, &cs, &err) == -1) {
		log_warnx("vigild: web console %s: %s%s", dir, buf_cstr(&err),
		          c->console != NULL ? "; keeping the files loaded "
		                               "before"
		                             : "");
		rc = -1;
	} else {
		console_free(c->console);
		c->console = cs;
		log_info("vigild: web console: %zu files from %s", cs->n, dir);
	}
	buf_free(&err);
	return rc;
}

size_t
console_nfiles(const struct console *cs)
{
	return cs != NULL ? cs->n : 0;
}

static const struct console_file *
console_find(const struct console *cs, const char *path)
{
	size_t i;

	for (i = 0; i < cs->n; i++)
		if (strcmp(cs->f[i].path, path) == 0)
			return &cs->f[i];
	return NULL;
}

/* A page of the console: a path whose last segment has no dot. */
static int
console_is_page(const char *path)
{
	const char *last = strrchr(path, '/');

	return last != NULL && strchr(last, '.') == NULL;
}

static int
accepts_gzip(struct http_req *r)
{
	const char *ae = http_req_header(r, "Accept-Encoding");
	const char *p, *q;

	if (ae == NULL || (p = strstr(ae, "gzip")) == NULL)
		return 0;
	q = p + 4;
	while (*q == ' ')
		q++;
	/* "gzip;q=0" refuses it */
	return !(strncmp(q, ";q=", 3) == 0 && strtod(q + 3, NULL) == 0.0);
}

void
console_serve(struct http_req *r)
{
	static const char absent[] =
	    "The web console is not installed on this center: build it "
	    "(make console) and set [admin] console_dir, see "
	    "docs/console.md. The admin API is under /api/v1/.\n";
	struct center *c = C(r);
	const struct console_file *f = NULL;
	const char *inm;

	/* The API and metrics keep their JSON 404. */
	if (strncmp(r->path, "/api/", 5) == 0 || strcmp(r->path, "/api") == 0 ||
	    strcmp(r->path, "/metrics") == 0)
		return;
	if (c->console == NULL) {
		http_set_header(r, "Content-Security-Policy",
		                "default-src 'none'; frame-ancestors 'none'");
		http_reply_text(r, 404, "text/plain; charset=utf-8", absent,
		                sizeof(absent) - 1);
		return;
	}
	if (strcmp(r->path, "/") == 0 || strcmp(r->path, "/index.html") == 0)
		f = c->console->index;
	else if ((f = console_find(c->console, r->path)) == NULL &&
	         console_is_page(r->path))
		f = c->console->index;
	http_set_header(r, "Content-Security-Policy", CONSOLE_CSP);
	http_set_header(r, "Cross-Origin-Opener-Policy", "same-origin");
	http_set_header(r, "Cross-Origin-Resource-Policy", "same-origin");
	if (f == NULL) {
		http_reply_text(r, 404, "text/plain; charset=utf-8",
		                "no such file\n", 13);
		return;
	}
	http_set_header(r, "Cache-Control",
	                f->immutable ? "public, max-age=31536000, immutable"
	                             : "no-cache");
	http_set_header(r, "ETag", f->etag);
	http_set_header(r, "Vary", "Accept-Encoding");
	if ((inm = http_req_header(r, "If-None-Match")) != NULL &&
	    strstr(inm, f->etag) != NULL) {
		http_reply_text(r, 304, f->ctype, "", 0);
		return;
	}
	if (f->gz != NULL && accepts_gzip(r)) {
		http_set_header(r, "Content-Encoding", "gzip");
		http_reply_text(r, 200, f->ctype, f->gz, f->gzlen);
	} else
		http_reply_text(r, 200, f->ctype, f->data, f->len);
}
