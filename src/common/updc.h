/*
 * updc: the client side of signed updates (docs/updates.md), shared by the
 * center's mirror and the agent. It reads a repository from a directory
 * or over HTTPS (httpc: a pinned CA, an optional client certificate and
 * proxy), feeds what it reads through the checks of src/proto/tuf.c in
 * TUF's order and keeps the bytes of what verified, so that a caller can
 * serve or store exactly the metadata it checked. Artifacts are checked
 * while they arrive (never a byte past the declared length) and stored
 * under their SHA-256 only after they verified.
 */
#ifndef VIGIL_UPDC_H
#define VIGIL_UPDC_H

#include <stddef.h>

#include "buf.h"
#include "httpc.h"
#include "tuf.h"

#define UPDC_MAX_ROOTS 1000 /* versions of root walked, at most */

/* The bytes of one verified repository state. */
struct updc_set {
	struct buf *roots;    /* N.root.json newer than the trust anchor */
	long long root_first; /* version of roots[0] */
	size_t nroots;
	struct buf timestamp, snapshot, targets;
	long long version[TUF_NROLES];
};

/* Where a repository is read from: a directory, a base URL
 * ("https://host:port/path/", ending in '/') with its client options, or
 * a set verified before (metadata only). */
struct updc_src {
	const char *dir;
	const char *url;
	const struct httpc_opts *http;
	const struct updc_set *set;
};

void updc_set_init(struct updc_set *s);
void updc_set_free(struct updc_set *s);

/*
 * Reads the repository of src into t (already started from a pinned root
 * and perhaps fed an earlier state): each newer root, then timestamp,
 * snapshot and targets as of now. On success out (when non-NULL) holds
 * the bytes that verified: newer roots are appended to out->roots, the
 * other three replaced (so a caller that fed t an earlier set first
 * passes a copy of that set's roots and gets the whole chain). -1 with one
 * sentence in err, which names the file and TUF's error (tuf_err_name) when a
 * check refused it; *tuf_rc (when non-NULL) gets that error, 0 for I/O
 * failures.
 */
int updc_refresh(struct tuf_trust *t, const struct updc_src *src, long long now,
                 struct updc_set *out, int *tuf_rc, struct buf *err);

/* Starts t from the root file anchor (bytes in anchor_out when non-NULL). */
int updc_trust_from_file(struct tuf_trust *t, const char *anchor,
                         struct buf *anchor_out, struct buf *err);

/* dir/targets/HEX of tg into path (PATH_MAX). */
void updc_target_path(const char *dir, const struct tuf_target *tg, char *path,
                      size_t n);
/* 0 when dir/targets/HEX holds tg's bytes (checked). */
int updc_target_check(const char *dir, const struct tuf_target *tg,
                      struct buf *err);
/* Makes dir/targets/HEX hold tg: kept when it already verifies, else
 * read from src (checked while it arrives) into a temporary file that
 * is renamed into place only when it verified. */
int updc_target_fetch(const struct updc_src *src, const struct tuf_target *tg,
                      const char *dir, struct buf *err);

/* Writes the metadata of set into dir (each file atomically, roots
 * first, timestamp last). */
int updc_set_write(const struct updc_set *set, const char *dir,
                   struct buf *err);

#endif
