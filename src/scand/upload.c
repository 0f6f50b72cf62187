/*
 * upload.c: receiving one upload, piece by piece. The request body's bytes
 * go through the streaming multipart parser (src/proto/multipart.c); the
 * "file" part goes to a 0600 file under samples/ (or into a caller's
 * buffer, for sync checks scanned from memory), hashed with SHA-256 when
 * the cache or keeping needs it. The size cap is checked on every piece,
 * so a sample over max_upload fails (413) as soon as it passes the limit,
 * whatever the body's length; nothing but the parser's bounded state is
 * held between pieces. Fed by the event loop straight from the streaming
 * server's body callbacks (api.c, src/common/hstream.c) as bytes arrive.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "multipart.h"
#include "scand.h"

struct upload {
	struct job *j;
	struct mp_parser mp;
	int fd;
	int in_file, seen_file;
	int failed, finished;
	uint8_t *mem; /* the sample goes here (memcap bytes), not to a file */
	size_t memcap;
	long long size, max_upload;
	char dir[4096];
	EVP_MD_CTX *md;
	char tmp[4200];
};

static void
up_fail(struct upload *u, int status, const char *msg, int err)
{
	struct job *j = u->j;

	if (j->status != 0)
		return;
	j->status = status;
	if (err != 0)
		snprintf(j->errmsg, sizeof(j->errmsg), "%s: %s", msg,
		         strerror(err));
	else
		snprintf(j->errmsg, sizeof(j->errmsg), "%s", msg);
}

static int
up_part(void *arg, const char *name, const char *filename)
{
	struct upload *u = arg;

	u->in_file = 0;
	if (strcmp(name, "file") != 0)
		return 0;
	/* One sample per request, as Thunderstorm has it: a second file is
	 * refused, not silently dropped. */
	if (u->seen_file) {
		up_fail(u, 400,
		        "more than one form field named \"file\" (send one "
		        "sample per request)",
		        0);
		return -1;
	}
	u->seen_file = u->in_file = 1;
	free(u->j->name);
	u->j->name = strdup(filename != NULL && filename[0] != '\0' ? filename
	                                                            : "sample");
	if (u->j->name == NULL) {
		up_fail(u, 500, "out of memory", 0);
		return -1;
	}
	if (u->mem != NULL)
		return 0;
	snprintf(u->tmp, sizeof(u->tmp), "%s/upload-XXXXXX", u->dir);
	if ((u->fd = mkstemp(u->tmp)) == -1) {
		up_fail(u, 500, "cannot store the sample", errno);
		u->tmp[0] = '\0';
		return -1;
	}
	fchmod(u->fd, 0600);
	return 0;
}

static int
up_data(void *arg, const uint8_t *d, size_t n)
{
	struct upload *u = arg;
	ssize_t w;

	if (!u->in_file)
		return 0;
	u->size += (long long)n;
	if (u->size > u->max_upload) {
		u->j->status = 413;
		snprintf(u->j->errmsg, sizeof(u->j->errmsg),
		         "sample larger than the limit of %lld bytes "
		         "(max_upload)",
		         u->max_upload);
		return -1;
	}
	if (u->md != NULL)
		EVP_DigestUpdate(u->md, d, n);
	if (u->mem != NULL) {
		if (u->j->mem_len + n > u->memcap) {
			up_fail(u, 500, "sample larger than its buffer", 0);
			return -1;
		}
		memcpy(u->mem + u->j->mem_len, d, n);
		u->j->mem_len += n;
		return 0;
	}
	while (n > 0) {
		if ((w = write(u->fd, d, n)) == -1) {
			if (errno == EINTR)
				continue;
			up_fail(u, 500, "cannot store the sample", errno);
			return -1;
		}
		d += w;
		n -= (size_t)w;
	}
	return 0;
}

static int
up_end(void *arg)
{
	struct upload *u = arg;

	u->in_file = 0;
	return 0;
}

static const struct mp_callbacks up_cbs = {up_part, up_data, up_end};

struct upload *
upload_new(struct job *j, const char *ctype, const char *dir,
           long long max_upload, int digest, uint8_t *mem, size_t memcap)
{
	struct upload *u;

	if ((u = calloc(1, sizeof(*u))) == NULL) {
		j->status = 500;
		snprintf(j->errmsg, sizeof(j->errmsg), "out of memory");
		return NULL;
	}
	u->j = j;
	u->fd = -1;
	u->max_upload = max_upload;
	u->mem = mem;
	u->memcap = memcap;
	snprintf(u->dir, sizeof(u->dir), "%s", dir);
	if (mem != NULL) {
		j->mem = mem;
		j->mem_len = 0;
	}
	if (digest && ((u->md = EVP_MD_CTX_new()) == NULL ||
	               EVP_DigestInit_ex(u->md, EVP_sha256(), NULL) != 1)) {
		up_fail(u, 500, "out of memory", 0);
		u->failed = 1;
		return u;
	}
	if (mp_init(&u->mp, ctype != NULL ? ctype : "", &up_cbs, u) == -1) {
		up_fail(u, 400, u->mp.err, 0);
		u->failed = 1;
	}
	return u;
}

int
upload_feed(struct upload *u, const uint8_t *p, size_t n)
{
	if (u->failed)
		return -1;
	if (mp_feed(&u->mp, p, n) == -1) {
		up_fail(u, 400, u->mp.err, 0); /* unless a callback set one */
		u->failed = 1;
		return -1;
	}
	return 0;
}

int
upload_finish(struct upload *u)
{
	struct job *j = u->j;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;

	if (u->failed)
		return -1;
	if (mp_finish(&u->mp) == -1) {
		up_fail(u, 400, u->mp.err, 0);
		goto fail;
	}
	if (!u->seen_file) {
		up_fail(u, 400, "no form field named \"file\" in the upload",
		        0);
		goto fail;
	}
	if (u->md != NULL) {
		EVP_DigestFinal_ex(u->md, md, &mdlen);
		hex_encode(md, mdlen, j->sha256);
	}
	j->size = u->size;
	if (u->mem == NULL && (j->path = strdup(u->tmp)) == NULL) {
		up_fail(u, 500, "out of memory", 0);
		goto fail;
	}
	u->finished = 1;
	return 0;
fail:
	u->failed = 1;
	return -1;
}

void
upload_free(struct upload *u)
{
	if (u == NULL)
		return;
	if (u->fd != -1)
		close(u->fd);
	if (!u->finished && u->tmp[0] != '\0')
		unlink(u->tmp);
	EVP_MD_CTX_free(u->md);
	free(u);
}
