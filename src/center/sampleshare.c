/*
 * sampleshare.c: file samples shared by the nodes of one PostgreSQL
 * database (docs/scale-out.md). A node keeps the samples it received in
 * data_dir/samples, as a center on SQLite does; on PostgreSQL it also
 * writes each sample's content into the table sample_parts (1 MiB parts,
 * base64 text: the store binds text and integers only), before the
 * samples row that makes the sample known, so every node that sees the
 * row finds the content. A node asked for a sample it does not hold on
 * disk (a download, forwarding to a collector) writes it into its own
 * data_dir/samples from those parts, part by part (memory stays bounded),
 * and checks its SHA-256 before anything uses it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "center.h"

#define PART_BYTES (1u << 20)

/* Part `part` of sample sha: n bytes at p, base64 in text. */
static int
share_part(struct store *s, const char *sha, long long part, const uint8_t *p,
           size_t n, char *text)
{
	EVP_EncodeBlock((unsigned char *)text, p, (int)n);
	/* A part stored by an earlier try (the same bytes: the name is
	 * their hash) stays. */
	return store_exec(s,
	                  "INSERT INTO sample_parts (sha256, part, data) "
	                  "VALUES (?, ?, ?) ON CONFLICT (sha256, part) DO "
	                  "NOTHING",
	                  S_TEXT(sha), S_INT(part), S_TEXT(text)) < 0
	           ? -1
	           : 0;
}

int
sample_share(struct center *c, const char *sha, const uint8_t *p, size_t len)
{
	char *text;
	size_t off, n;
	long long part;
	int rc = 0;

	if (!store_is_pg(c->store))
		return 0;
	if ((text = malloc(4 * ((PART_BYTES + 2) / 3) + 1)) == NULL)
		return -1;
	for (off = 0, part = 0; rc == 0 && (off < len || part == 0);
	     off += n, part++) {
		n = len - off < PART_BYTES ? len - off : PART_BYTES;
		rc = share_part(c->store, sha, part, p + off, n, text);
	}
	free(text);
	return rc;
}

long long
sample_share_file(struct store *s, const char *sha, const char *path,
                  struct buf *err)
{
	unsigned char *raw = malloc(PART_BYTES);
	char *text = malloc(4 * ((PART_BYTES + 2) / 3) + 1);
	long long part = 0, rc = -1;
	FILE *f = NULL;
	size_t n;

	if (raw == NULL || text == NULL) {
		buf_puts(err, "out of memory");
		goto out;
	}
	if ((f = fopen(path, "rb")) == NULL) {
		buf_printf(err, "%s: %s", path, strerror(errno));
		goto out;
	}
	do {
		n = fread(raw, 1, PART_BYTES, f);
		if (ferror(f)) {
			buf_printf(err, "%s: read error", path);
			goto out;
		}
		if (n == 0 && part > 0)
			break;
		if (share_part(s, sha, part, raw, n, text) == -1) {
			buf_printf(err, "%s", store_last_error(s));
			goto out;
		}
		part++;
	} while (n == PART_BYTES);
	rc = part;
out:
	if (f != NULL)
		fclose(f);
	free(raw);
	free(text);
	return rc;
}

/* Decodes base64 text into out (room for its length * 3 / 4); the byte
 * count, or -1 when it is not base64. */
static long
b64_decode(const char *in, unsigned char *out)
{
	size_t n = strlen(in), pad = 0;
	int got;

	if (n % 4 != 0)
		return -1;
	if (n >= 1 && in[n - 1] == '=')
		pad++;
	if (n >= 2 && in[n - 2] == '=')
		pad++;
	if ((got = EVP_DecodeBlock(out, (const unsigned char *)in, (int)n)) <
	        0 ||
	    (size_t)got < pad)
		return -1;
	return (long)((size_t)got - pad);
}

int
sample_local(struct center *c, const char *sha, char *path, size_t pathlen,
             struct buf *err)
{
	char dir[4200], tmp[4300];
	struct store_rows *q;
	struct stat st;
	unsigned char *raw = NULL;
	long long part, total = 0;
	long n;
	int fd = -1, rc = -1, more;

	snprintf(path, pathlen, "%s/samples/%.2s/%s", c->conf.data_dir, sha,
	         sha);
	if (stat(path, &st) == 0)
		return 0;
	if (!store_is_pg(c->store)) {
		buf_printf(err, "sample file missing: %s", strerror(errno));
		return -1;
	}
	snprintf(dir, sizeof(dir), "%s/samples", c->conf.data_dir);
	(void)mkdir(dir, 0700);
	snprintf(dir, sizeof(dir), "%s/samples/%.2s", c->conf.data_dir, sha);
	(void)mkdir(dir, 0700);
	snprintf(tmp, sizeof(tmp), "%s/samples/.fetch-XXXXXX",
	         c->conf.data_dir);
	if ((fd = mkstemp(tmp)) == -1) {
		buf_printf(err, "%s: %s", tmp, strerror(errno));
		return -1;
	}
	if ((raw = malloc(PART_BYTES + 3)) == NULL) {
		buf_puts(err, "out of memory");
		goto out;
	}
	for (part = 0;; part++) {
		q = store_query(
		    c->store,
		    "SELECT data FROM sample_parts WHERE sha256 = ? "
		    "AND part = ?",
		    S_TEXT(sha), S_INT(part));
		more = q != NULL && store_next(q) == 1;
		n = more ? (store_text(q, 0) != NULL &&
		                    strlen(store_text(q, 0)) <=
		                        4 * ((PART_BYTES + 2) / 3)
		                ? b64_decode(store_text(q, 0), raw)
		                : -1)
		         : 0;
		store_done(q);
		if (q == NULL) {
			buf_puts(err, "the database did not answer");
			goto out;
		}
		if (!more)
			break;
		if (n < 0) {
			buf_printf(err, "part %lld in the database is damaged",
			           part);
			goto out;
		}
		if (write(fd, raw, (size_t)n) != n) {
			buf_printf(err, "%s: %s", tmp, strerror(errno));
			goto out;
		}
		total += n;
	}
	if (part == 0) {
		buf_puts(err, "neither on this node nor in the database");
		goto out;
	}
	if (fsync(fd) == -1 || close(fd) == -1) {
		fd = -1;
		buf_printf(err, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	fd = -1;
	if (sample_check(tmp, sha, err) == -1)
		goto out;
	if (rename(tmp, path) == -1) {
		buf_printf(err, "%s: %s", path, strerror(errno));
		goto out;
	}
	log_info("samples: %s (%lld bytes) fetched from the database into "
	         "this node's data directory",
	         sha, total);
	rc = 0;
out:
	if (fd != -1)
		close(fd);
	if (rc == -1)
		unlink(tmp);
	free(raw);
	return rc;
}
