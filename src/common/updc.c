/*
 * updc.c: reading and checking a signed update repository (updc.h). The
 * checks are all tuf.c's; this file only fetches bytes (a directory or
 * HTTPS through httpc), keeps those that verified and writes artifacts
 * in a way that never leaves an unchecked byte under a final name.
 */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tls.h"
#include "updc.h"

void
updc_set_init(struct updc_set *s)
{
	memset(s, 0, sizeof(*s));
	buf_init(&s->timestamp, TUF_MAX_TIMESTAMP);
	buf_init(&s->snapshot, TUF_MAX_SNAPSHOT);
	buf_init(&s->targets, TUF_MAX_TARGETS);
}

void
updc_set_free(struct updc_set *s)
{
	for (size_t i = 0; i < s->nroots; i++)
		buf_free(&s->roots[i]);
	free(s->roots);
	buf_free(&s->timestamp);
	buf_free(&s->snapshot);
	buf_free(&s->targets);
	memset(s, 0, sizeof(*s));
}

/* name of src into out (at most max bytes): 0, 1 when absent, -1. */
static int
src_get(const struct updc_src *src, const char *name, size_t max,
        struct buf *out, struct buf *err)
{
	char p[PATH_MAX];
	struct stat st;

	buf_reset(out);
	if (src->set != NULL) {
		const struct updc_set *set = src->set;
		const struct buf *b = NULL;
		long long v;
		char *end;

		if (strcmp(name, "timestamp.json") == 0)
			b = &set->timestamp;
		else if (strcmp(name, "snapshot.json") == 0)
			b = &set->snapshot;
		else if (strcmp(name, "targets.json") == 0)
			b = &set->targets;
		else if ((v = strtoll(name, &end, 10)) > 0 &&
		         strcmp(end, ".root.json") == 0 && set->nroots > 0 &&
		         v >= set->root_first &&
		         v < set->root_first + (long long)set->nroots)
			b = &set->roots[v - set->root_first];
		if (b == NULL || b->len == 0)
			return 1;
		buf_append(out, b->data, b->len);
		return out->failed ? -1 : 0;
	}
	if (src->dir != NULL) {
		snprintf(p, sizeof(p), "%s/%s", src->dir, name);
		if (lstat(p, &st) == -1 && errno == ENOENT)
			return 1;
		if (lstat(p, &st) == 0 && !S_ISREG(st.st_mode)) {
			buf_printf(err,
			           "%s is not a regular file (links are "
			           "refused)",
			           p);
			return -1;
		}
		return tls_read_file(p, max, out, err);
	}
	{
		struct httpc_resp resp;
		int rc = -1;

		snprintf(p, sizeof(p), "%s%s", src->url, name);
		httpc_resp_init(&resp);
		if (httpc_request(src->http, "GET", p, NULL, NULL, 0, &resp) ==
		    -1)
			buf_printf(err, "%s", resp.errmsg);
		else if (resp.status == 404)
			rc = 1;
		else if (resp.status != 200)
			buf_printf(err, "%s: HTTP %ld", p, resp.status);
		else if (resp.body.len > max)
			buf_printf(err,
			           "%s: %zu bytes, more than the %zu allowed "
			           "(endless data)",
			           name, resp.body.len, max);
		else {
			buf_append(out, resp.body.data, resp.body.len);
			rc = out->failed ? -1 : 0;
		}
		httpc_resp_free(&resp);
		return rc;
	}
}

static void
refused(struct buf *err, const char *file, int rc, const char *msg)
{
	char m[1024];

	snprintf(m, sizeof(m), "%s", msg);
	buf_reset(err);
	buf_printf(err, "%s refused (%s): %s", file, tuf_err_name(rc), m);
}

int
updc_refresh(struct tuf_trust *t, const struct updc_src *src, long long now,
             struct updc_set *out, int *tuf_rc, struct buf *err)
{
	static const char *const files[] = {"timestamp.json", "snapshot.json",
	                                    "targets.json"};
	static const size_t maxes[] = {TUF_MAX_TIMESTAMP, TUF_MAX_SNAPSHOT,
	                               TUF_MAX_TARGETS};
	static int (*const fn[])(struct tuf_trust *, const uint8_t *, size_t,
	                         long long, struct buf *) = {
	    tuf_update_timestamp, tuf_update_snapshot, tuf_update_targets};
	struct buf b, msg;
	char name[64];
	int rc = -1, r;

	if (tuf_rc != NULL)
		*tuf_rc = 0;
	buf_init(&b, TUF_MAX_TARGETS);
	buf_init(&msg, 2048);
	for (long long v = t->meta[TUF_ROOT].version + 1; v <= UPDC_MAX_ROOTS;
	     v++) {
		snprintf(name, sizeof(name), "%lld.root.json", v);
		if ((r = src_get(src, name, TUF_MAX_ROOT, &b, err)) == 1)
			break;
		if (r == -1)
			goto done;
		buf_reset(&msg);
		if ((r = tuf_update_root(t, (const uint8_t *)b.data, b.len,
		                         &msg)) != TUF_OK) {
			refused(err, name, r, buf_cstr(&msg));
			goto tuf;
		}
		if (out != NULL) {
			struct buf *nr = realloc(out->roots, (out->nroots + 1) *
			                                         sizeof(*nr));

			if (nr == NULL) {
				buf_puts(err, "out of memory");
				goto done;
			}
			out->roots = nr;
			if (out->nroots == 0)
				out->root_first = v;
			buf_init(&nr[out->nroots], TUF_MAX_ROOT);
			buf_append(&nr[out->nroots], b.data, b.len);
			out->nroots++;
		}
	}
	buf_reset(&msg);
	if ((r = tuf_root_fresh(t, now, &msg)) != TUF_OK) {
		refused(err, "root.json", r, buf_cstr(&msg));
		goto tuf;
	}
	for (int i = 0; i < 3; i++) {
		if ((r = src_get(src, files[i], maxes[i], &b, err)) == 1) {
			buf_printf(err, "no %s in the repository", files[i]);
			goto done;
		}
		if (r == -1)
			goto done;
		buf_reset(&msg);
		if ((r = fn[i](t, (const uint8_t *)b.data, b.len, now, &msg)) !=
		    TUF_OK) {
			refused(err, files[i], r, buf_cstr(&msg));
			goto tuf;
		}
		if (out != NULL) {
			struct buf *d = i == 0   ? &out->timestamp
			                : i == 1 ? &out->snapshot
			                         : &out->targets;

			buf_reset(d);
			buf_append(d, b.data, b.len);
			if (d->failed) {
				buf_puts(err, "out of memory");
				goto done;
			}
		}
	}
	if (out != NULL)
		for (int i = 0; i < TUF_NROLES; i++)
			out->version[i] = t->meta[i].version;
	rc = 0;
	goto done;
tuf:
	if (tuf_rc != NULL)
		*tuf_rc = r;
done:
	buf_free(&b);
	buf_free(&msg);
	return rc;
}

int
updc_trust_from_file(struct tuf_trust *t, const char *anchor,
                     struct buf *anchor_out, struct buf *err)
{
	struct buf b, msg;
	int r, rc = -1;

	buf_init(&b, TUF_MAX_ROOT);
	buf_init(&msg, 1024);
	if (tls_read_file(anchor, TUF_MAX_ROOT, &b, err) == -1)
		goto out;
	if ((r = tuf_trust_init(t, (const uint8_t *)b.data, b.len, &msg)) !=
	    TUF_OK) {
		buf_printf(err, "the pinned root %s refused (%s): %s", anchor,
		           tuf_err_name(r), buf_cstr(&msg));
		goto out;
	}
	if (anchor_out != NULL) {
		buf_reset(anchor_out);
		buf_append(anchor_out, b.data, b.len);
	}
	rc = 0;
out:
	buf_free(&b);
	buf_free(&msg);
	return rc;
}

void
updc_target_path(const char *dir, const struct tuf_target *tg, char *path,
                 size_t n)
{
	char hex[65];

	hex_encode(tg->sha256, 32, hex);
	snprintf(path, n, "%s/targets/%s", dir, hex);
}

int
updc_target_check(const char *dir, const struct tuf_target *tg, struct buf *err)
{
	char p[PATH_MAX];
	uint8_t chunk[65536];
	struct tuf_reader r;
	ssize_t n;
	int fd, rc = -1;

	updc_target_path(dir, tg, p, sizeof(p));
	if ((fd = open(p, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1) {
		buf_printf(err, "artifact %s: %s: %s", tg->name, p,
		           strerror(errno));
		return -1;
	}
	if (tuf_reader_init(&r, tg) == -1) {
		close(fd);
		buf_puts(err, "out of memory");
		return -1;
	}
	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		if (tuf_reader_feed(&r, chunk, (size_t)n, err) != TUF_OK)
			goto done;
	if (n == -1) {
		buf_printf(err, "%s: %s", p, strerror(errno));
		goto done;
	}
	if (tuf_reader_finish(&r, err) == TUF_OK)
		rc = 0;
done:
	tuf_reader_free(&r);
	close(fd);
	return rc;
}

/* The download sink: every byte goes through the reader first. */
struct sink {
	struct tuf_reader r;
	int fd;
	int refused;
	struct buf msg;
};

static ssize_t
sink_write(void *cookie, const char *p, size_t n)
{
	struct sink *s = cookie;
	size_t off = 0;
	ssize_t w;

	if (s->refused)
		return 0;
	if (tuf_reader_feed(&s->r, p, n, &s->msg) != TUF_OK) {
		s->refused = 1;
		errno = EFBIG;
		return 0;
	}
	while (off < n) {
		if ((w = write(s->fd, p + off, n - off)) == -1) {
			if (errno == EINTR)
				continue;
			return 0;
		}
		off += (size_t)w;
	}
	return (ssize_t)n;
}

static int
mkdirs(const char *dir, struct buf *err)
{
	char p[PATH_MAX];
	struct stat st;

	snprintf(p, sizeof(p), "%s/targets", dir);
	if ((mkdir(dir, 0755) == -1 && errno != EEXIST) ||
	    (mkdir(p, 0755) == -1 && errno != EEXIST)) {
		buf_printf(err, "%s: %s", p, strerror(errno));
		return -1;
	}
	if (lstat(p, &st) == -1 || !S_ISDIR(st.st_mode)) {
		buf_printf(err, "%s is not a directory", p);
		return -1;
	}
	return 0;
}

int
updc_target_fetch(const struct updc_src *src, const struct tuf_target *tg,
                  const char *dir, struct buf *err)
{
	char dst[PATH_MAX], tmp[PATH_MAX], url[PATH_MAX], hex[65];
	struct sink s;
	struct buf ignore;
	FILE *f = NULL;
	int rc = -1;
	cookie_io_functions_t io = {.write = sink_write};

	buf_init(&ignore, 4096);
	if (updc_target_check(dir, tg, &ignore) == 0) {
		buf_free(&ignore);
		return 0;
	}
	buf_free(&ignore);
	if (src->dir != NULL && strcmp(src->dir, dir) == 0)
		return updc_target_check(dir, tg, err);
	if (mkdirs(dir, err) == -1)
		return -1;
	memset(&s, 0, sizeof(s));
	buf_init(&s.msg, 1024);
	s.fd = -1;
	updc_target_path(dir, tg, dst, sizeof(dst));
	snprintf(tmp, sizeof(tmp), "%s/targets/.fetch.XXXXXX", dir);
	if (tuf_reader_init(&s.r, tg) == -1) {
		buf_puts(err, "out of memory");
		buf_free(&s.msg);
		return -1;
	}
	if ((s.fd = mkostemp(tmp, O_CLOEXEC)) == -1) {
		buf_printf(err, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	if ((f = fopencookie(&s, "w", io)) == NULL) {
		buf_printf(err, "out of memory");
		goto out;
	}
	setvbuf(f, NULL, _IONBF, 0);
	hex_encode(tg->sha256, 32, hex);
	if (src->dir != NULL) {
		char from[PATH_MAX];
		uint8_t chunk[65536];
		ssize_t n;
		int in;

		snprintf(from, sizeof(from), "%s/targets/%s", src->dir, hex);
		if ((in = open(from, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) ==
		    -1) {
			buf_printf(err, "artifact %s: %s: %s", tg->name, from,
			           strerror(errno));
			goto out;
		}
		while ((n = read(in, chunk, sizeof(chunk))) > 0)
			if (fwrite(chunk, 1, (size_t)n, f) != (size_t)n)
				break;
		close(in);
	} else {
		struct httpc_opts o = *src->http;
		struct httpc_resp resp;

		snprintf(url, sizeof(url), "%stargets/%s", src->url, hex);
		o.sink = f;
		httpc_resp_init(&resp);
		if (httpc_request(&o, "GET", url, NULL, NULL, 0, &resp) == -1 &&
		    !s.refused) {
			buf_printf(err, "artifact %s: %s", tg->name,
			           resp.errmsg);
			httpc_resp_free(&resp);
			goto out;
		}
		if (!s.refused && resp.status != 200) {
			buf_printf(err, "artifact %s: %s: HTTP %ld", tg->name,
			           url, resp.status);
			httpc_resp_free(&resp);
			goto out;
		}
		httpc_resp_free(&resp);
	}
	if (s.refused) {
		buf_printf(err, "artifact refused (too-big): %s",
		           buf_cstr(&s.msg));
		goto out;
	}
	buf_reset(&s.msg);
	if (tuf_reader_finish(&s.r, &s.msg) != TUF_OK) {
		buf_printf(err, "artifact refused: %s", buf_cstr(&s.msg));
		goto out;
	}
	if (fsync(s.fd) == -1 || fchmod(s.fd, 0644) == -1 ||
	    rename(tmp, dst) == -1) {
		buf_printf(err, "%s: %s", dst, strerror(errno));
		goto out;
	}
	tmp[0] = '\0';
	rc = 0;
out:
	if (f != NULL)
		fclose(f);
	if (s.fd != -1)
		close(s.fd);
	if (tmp[0] != '\0' && s.fd != -1)
		unlink(tmp);
	tuf_reader_free(&s.r);
	buf_free(&s.msg);
	return rc;
}

static int
put(const char *dir, const char *name, const struct buf *b, struct buf *err)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return tls_write_file(p, b->data, b->len, 0644, err);
}

int
updc_set_write(const struct updc_set *set, const char *dir, struct buf *err)
{
	char name[64];

	if (mkdirs(dir, err) == -1)
		return -1;
	for (size_t i = 0; i < set->nroots; i++) {
		snprintf(name, sizeof(name), "%lld.root.json",
		         set->root_first + (long long)i);
		if (put(dir, name, &set->roots[i], err) == -1)
			return -1;
	}
	if (set->nroots > 0 &&
	    put(dir, "root.json", &set->roots[set->nroots - 1], err) == -1)
		return -1;
	if (put(dir, "targets.json", &set->targets, err) == -1 ||
	    put(dir, "snapshot.json", &set->snapshot, err) == -1 ||
	    put(dir, "timestamp.json", &set->timestamp, err) == -1)
		return -1;
	return 0;
}
