/*
 * update.c: `vigilctl update`, the offline commands that make and carry a
 * signed update repository (docs/updates.md): keygen (Ed25519 role keys,
 * 0600), root (a first root, or the next one for a key rotation), publish
 * (add an artifact and re-sign targets, snapshot, timestamp), sign
 * (refresh versions and expiry), verify and status, export and import
 * (one file that carries the repository into an air-gapped site; import
 * verifies everything before it writes anything). The checks themselves
 * are src/proto/tuf.c's, the same ones the center's mirror and the agent
 * will run.
 *
 * Repository layout (DIR):
 *   N.root.json     every root, version N (the chain a client walks)
 *   root.json       the newest root (a copy)
 *   targets.json, snapshot.json, timestamp.json
 *   targets/SHA256  artifacts, named by their SHA-256 (hex) only
 */
#include <dirent.h>
#include <stdarg.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "buf.h"
#include "ctl.h"
#include "httpc.h"
#include "tls.h"
#include "tuf.h"
#include "updc.h"

#define UPD_MAX_KEYS     64
#define UPD_MAX_ROOTS    1000
#define UPD_MAX_ARTIFACT (1LL << 30)
/* An export holds every artifact base64-encoded in one JSON document. */
#define UPD_MAX_EXPORT (3LL << 30)
#define UPD_FORMAT     "vigil-update-export"

/* Default lifetimes in days (timestamp: hours). */
#define DEF_ROOT_DAYS    365
#define DEF_TARGETS_DAYS 90
#define DEF_SNAP_DAYS    30
#define DEF_TS_HOURS     24

static const char *cmd = "update";

static void
usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: vigilctl update keygen --dir KEYDIR [--role ROLE] [--name "
	    "NAME] [--force]\n"
	    "       vigilctl update root --repo DIR --root-key FILE... "
	    "[--old-root-key FILE]...\n"
	    "              [--targets-key FILE]... [--snapshot-key FILE]... "
	    "[--timestamp-key FILE]...\n"
	    "              [--threshold ROLE=N]... [--days N]\n"
	    "       vigilctl update publish --repo DIR --keys KEYDIR --kind "
	    "KIND --name NAME\n"
	    "              --version V [--platform P] FILE\n"
	    "       vigilctl update sign --repo DIR --keys KEYDIR [--role "
	    "targets|snapshot|timestamp]\n"
	    "       vigilctl update verify --repo DIR [--root FILE]\n"
	    "       vigilctl update status --repo DIR [--root FILE] [--json]\n"
	    "       vigilctl update export --repo DIR --out FILE\n"
	    "       vigilctl update import --in FILE --repo DIR [--root FILE]\n"
	    "       vigilctl update mirror [--refresh]\n"
	    "       vigilctl update rollout start TARGET [--label K=V]... "
	    "[--percent N]\n"
	    "              [--max-failure-rate N] [--probation SECS]\n"
	    "       vigilctl update rollout list | stop ID\n"
	    "\n"
	    "  keygen   make Ed25519 role keys (0600); keep the root key "
	    "offline\n"
	    "  root     write the first root, or the next one (key "
	    "rotation)\n"
	    "  publish  add an artifact and re-sign targets, snapshot, "
	    "timestamp\n"
	    "  sign     re-sign (new versions and expiry) from a role down\n"
	    "  verify   check the whole repository and every artifact\n"
	    "  status   versions, expiry, what is due, the artifacts\n"
	    "  export   write the repository as one file\n"
	    "  import   verify an export file, then write it into DIR\n"
	    "  mirror   the center's update mirror (admin API): what it "
	    "serves, the last\n"
	    "           check and why it was refused; --refresh checks the "
	    "upstream now\n"
	    "  rollout  upgrade agents to an agent binary the mirror serves, "
	    "in stages\n"
	    "           (labels, a percentage), halted when too many roll "
	    "back\n"
	    "\n"
	    "Common options: --targets-days N, --snapshot-days N, "
	    "--timestamp-hours N\n"
	    "(publish, sign), --at TIME (verify, status, import: check as of "
	    "TIME,\n"
	    "YYYY-MM-DDTHH:MM:SSZ). See docs/updates.md.\n");
}

static void uerr(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void
uerr(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "vigilctl: update %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ---- files ---- */

static void
path_of(char *out, size_t n, const char *dir, const char *name)
{
	snprintf(out, n, "%s/%s", dir, name);
}

/* dir/name into out (up to max); 1 when it does not exist. */
static int
read_in(const char *dir, const char *name, size_t max, struct buf *out)
{
	char p[PATH_MAX];
	struct buf err;
	struct stat st;
	int rc;

	path_of(p, sizeof(p), dir, name);
	if (lstat(p, &st) == -1 && errno == ENOENT)
		return 1;
	if (lstat(p, &st) == 0 && !S_ISREG(st.st_mode)) {
		uerr("%s is not a regular file (links are refused)", p);
		return -1;
	}
	buf_init(&err, 1024);
	buf_reset(out);
	if ((rc = tls_read_file(p, max, out, &err)) == -1)
		uerr("%s", buf_cstr(&err));
	buf_free(&err);
	return rc;
}

static int
write_out(const char *dir, const char *name, const void *p, size_t n, int mode)
{
	char path[PATH_MAX];
	struct buf err;
	int rc;

	path_of(path, sizeof(path), dir, name);
	buf_init(&err, 1024);
	if ((rc = tls_write_file(path, p, n, mode, &err)) == -1)
		uerr("%s", buf_cstr(&err));
	buf_free(&err);
	return rc;
}

static int
mkdir_ok(const char *dir, int mode)
{
	struct stat st;

	if (mkdir(dir, mode) == 0)
		return 0;
	if (errno == EEXIST && lstat(dir, &st) == 0 && S_ISDIR(st.st_mode))
		return 0;
	uerr("%s: %s", dir,
	     errno == EEXIST ? "exists and is not a directory"
	                     : strerror(errno));
	return -1;
}

/*
 * A set of files written together (an import): each is written under a
 * temporary name next to its destination and fsynced (stage_write); only
 * when every one is written are they renamed into place, in the order
 * staged (stage_commit). stage_abort removes the temporaries, so a
 * failure (a full disk) changes nothing.
 */
struct stage {
	char (*tmp)[PATH_MAX];
	char (*dst)[PATH_MAX];
	size_t n, cap;
};

static int
stage_write(struct stage *st, const char *dir, const char *name, const void *p,
            size_t n, int mode)
{
	const uint8_t *b = p;
	struct stat sb;
	size_t off = 0;
	ssize_t w;
	int fd;

	if (st->n == st->cap) {
		size_t cap = st->cap ? 2 * st->cap : 16;
		void *t = realloc(st->tmp, cap * sizeof(*st->tmp)),
		     *d = t == NULL ? NULL
		                    : realloc(st->dst, cap * sizeof(*st->dst));

		if (t != NULL)
			st->tmp = t;
		if (d == NULL) {
			uerr("out of memory");
			return -1;
		}
		st->dst = d;
		st->cap = cap;
	}
	path_of(st->dst[st->n], PATH_MAX, dir, name);
	if (lstat(st->dst[st->n], &sb) == 0 && !S_ISREG(sb.st_mode)) {
		uerr("%s is not a regular file (links are refused)",
		     st->dst[st->n]);
		return -1;
	}
	snprintf(st->tmp[st->n], PATH_MAX, "%s/.%s.import.XXXXXX", dir, name);
	if ((fd = mkostemp(st->tmp[st->n], O_CLOEXEC)) == -1) {
		uerr("%s: %s", st->tmp[st->n], strerror(errno));
		return -1;
	}
	while (off < n) {
		if ((w = write(fd, b + off, n - off)) == -1) {
			if (errno == EINTR)
				continue;
			break;
		}
		off += (size_t)w;
	}
	if (off < n || fchmod(fd, (mode_t)mode) == -1 || fsync(fd) == -1) {
		uerr("%s: %s", st->tmp[st->n], strerror(errno));
		close(fd);
		unlink(st->tmp[st->n]);
		return -1;
	}
	if (close(fd) == -1) {
		uerr("%s: %s", st->tmp[st->n], strerror(errno));
		unlink(st->tmp[st->n]);
		return -1;
	}
	st->n++;
	return 0;
}

static void
stage_abort(struct stage *st)
{
	for (size_t i = 0; i < st->n; i++)
		unlink(st->tmp[i]);
	st->n = 0;
}

/* fsyncs the directory of path unless it is last (then updated). */
static void
sync_parent(const char *path, char last[PATH_MAX])
{
	char d[PATH_MAX], *sl;
	int fd;

	snprintf(d, sizeof(d), "%s", path);
	if ((sl = strrchr(d, '/')) != NULL)
		*sl = '\0';
	if (strcmp(d, last) == 0)
		return;
	snprintf(last, PATH_MAX, "%s", d);
	if ((fd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) != -1) {
		fsync(fd);
		close(fd);
	}
}

/* Renames every staged file into place, in order; -1 (naming the file)
 * when one cannot be: the files before it are in place. */
static int
stage_commit(struct stage *st)
{
	char last[PATH_MAX] = "";

	for (size_t i = 0; i < st->n; i++)
		if (rename(st->tmp[i], st->dst[i]) == -1) {
			uerr("%s: rename: %s", st->dst[i], strerror(errno));
			for (size_t j = i; j < st->n; j++)
				unlink(st->tmp[j]);
			st->n = 0;
			return -1;
		}
	for (size_t i = 0; i < st->n; i++)
		sync_parent(st->dst[i], last);
	st->n = 0;
	return 0;
}

static void
stage_free(struct stage *st)
{
	stage_abort(st);
	free(st->tmp);
	free(st->dst);
}

/* ---- keys ---- */

static EVP_PKEY *
load_private(const char *path)
{
	struct buf err;
	EVP_PKEY *k;

	buf_init(&err, 1024);
	if ((k = tls_load_key(path, &err)) == NULL)
		uerr("%s", buf_cstr(&err));
	else if (EVP_PKEY_get_id(k) != EVP_PKEY_ED25519) {
		uerr("%s: not an Ed25519 key (make one with 'vigilctl update "
		     "keygen')",
		     path);
		EVP_PKEY_free(k);
		k = NULL;
	}
	buf_free(&err);
	return k;
}

/* A public key from a .pub file, or the public half of a .key file. */
static EVP_PKEY *
load_public(const char *path)
{
	struct buf pem, err;
	EVP_PKEY *k = NULL;
	BIO *b;

	buf_init(&pem, 64 * 1024);
	buf_init(&err, 1024);
	if (tls_read_file(path, 64 * 1024, &pem, &err) == -1) {
		uerr("%s", buf_cstr(&err));
		goto done;
	}
	if (strstr(buf_cstr(&pem), "PRIVATE KEY") != NULL) {
		k = load_private(path);
		goto done;
	}
	if ((b = BIO_new_mem_buf(pem.data, (int)pem.len)) != NULL) {
		k = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL);
		BIO_free(b);
	}
	ERR_clear_error();
	if (k == NULL || EVP_PKEY_get_id(k) != EVP_PKEY_ED25519) {
		uerr("%s: not an Ed25519 public key", path);
		EVP_PKEY_free(k);
		k = NULL;
	}
done:
	buf_free(&pem);
	buf_free(&err);
	return k;
}

/* Every *.key in dir (private keys). */
static int
load_keydir(const char *dir, EVP_PKEY **keys, size_t *n)
{
	struct dirent *de;
	char p[PATH_MAX];
	DIR *d;

	*n = 0;
	if ((d = opendir(dir)) == NULL) {
		uerr("%s: %s", dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		size_t l = strlen(de->d_name);

		if (l < 5 || strcmp(de->d_name + l - 4, ".key") != 0)
			continue;
		if (*n == UPD_MAX_KEYS)
			break;
		path_of(p, sizeof(p), dir, de->d_name);
		if ((keys[*n] = load_private(p)) == NULL) {
			closedir(d);
			return -1;
		}
		(*n)++;
	}
	closedir(d);
	return 0;
}

static void
free_keys(EVP_PKEY **keys, size_t n)
{
	for (size_t i = 0; i < n; i++)
		EVP_PKEY_free(keys[i]);
}

/* The keys among have that role r of t lists; -1 when fewer than its
 * threshold. */
static int
role_signers(struct tuf_trust *t, int r, EVP_PKEY **have, size_t nhave,
             EVP_PKEY **out, size_t *nout, const char *keydir)
{
	char id[65];

	*nout = 0;
	for (size_t i = 0; i < nhave; i++) {
		if (tuf_keyid(have[i], id) == -1)
			continue;
		for (size_t j = 0; j < t->roles[r].n; j++)
			if (strcmp(t->roles[r].ids[j], id) == 0)
				out[(*nout)++] = have[i];
	}
	if ((long long)*nout < t->roles[r].threshold) {
		uerr("the %s role needs %lld signature%s and %s holds %zu of "
		     "its keys",
		     tuf_role_name(r), t->roles[r].threshold,
		     t->roles[r].threshold == 1 ? "" : "s", keydir, *nout);
		return -1;
	}
	return 0;
}

/* ---- reading a repository (a directory or an export) ---- */

struct source {
	const char *dir;  /* or */
	json_t *exp;      /* an export document */
	const char *file; /* the export's file name (messages) */
};

/* Metadata file name into out; 1 when absent. */
static int
src_get(const struct source *s, const char *name, struct buf *out)
{
	if (s->dir != NULL)
		return read_in(s->dir, name, TUF_MAX_TARGETS, out);
	{
		json_t *m =
		    json_object_get(json_object_get(s->exp, "metadata"), name);

		if (m == NULL)
			return 1;
		buf_reset(out);
		buf_append(out, json_string_value(m), json_string_length(m));
		return out->failed ? -1 : 0;
	}
}

static long long opt_now = -1;

static long long
now_is(void)
{
	return opt_now >= 0 ? opt_now : (long long)time(NULL);
}

static void
say_refused(const char *what, int rc, struct buf *err)
{
	uerr("%s refused (%s): %s", what, tuf_err_name(rc), buf_cstr(err));
}

/*
 * Verifies the repository in s into t: starting from pinned (a root the
 * caller trusts; NULL: the repository's own 1.root.json, trusted on first
 * use), each newer N.root.json in turn, then timestamp, snapshot and
 * targets as of now_is(). When prior is non-NULL the metadata is fed on
 * top of that trust state instead (an import into a repository that
 * already holds some: rollback is then refused).
 */
static int
verify_source(const struct source *s, const struct buf *pinned,
              struct tuf_trust *t, int fed, struct buf *err)
{
	struct buf b;
	char name[64];
	int rc = -1, r;

	buf_init(&b, TUF_MAX_TARGETS);
	if (!fed) {
		if (pinned != NULL)
			r = tuf_trust_init(t, (const uint8_t *)pinned->data,
			                   pinned->len, err);
		else if ((r = src_get(s, "1.root.json", &b)) != 0) {
			uerr("no 1.root.json in the repository");
			goto done;
		} else
			r = tuf_trust_init(t, (const uint8_t *)b.data, b.len,
			                   err);
		if (r != TUF_OK) {
			say_refused("the trusted root", r, err);
			goto done;
		}
	}
	for (long long v = t->meta[TUF_ROOT].version + 1; v <= UPD_MAX_ROOTS;
	     v++) {
		snprintf(name, sizeof(name), "%lld.root.json", v);
		if ((r = src_get(s, name, &b)) == 1)
			break;
		if (r == -1)
			goto done;
		buf_reset(err);
		if ((r = tuf_update_root(t, (const uint8_t *)b.data, b.len,
		                         err)) != TUF_OK) {
			say_refused(name, r, err);
			goto done;
		}
	}
	buf_reset(err);
	if ((r = tuf_root_fresh(t, now_is(), err)) != TUF_OK) {
		say_refused("root.json", r, err);
		goto done;
	}
	{
		static const char *const files[] = {
		    "timestamp.json", "snapshot.json", "targets.json"};
		static int (*const fn[])(struct tuf_trust *, const uint8_t *,
		                         size_t, long long, struct buf *) = {
		    tuf_update_timestamp, tuf_update_snapshot,
		    tuf_update_targets};

		for (int i = 0; i < 3; i++) {
			if ((r = src_get(s, files[i], &b)) == 1) {
				if (s->exp != NULL)
					uerr("the export %s holds no %s (not "
					     "an export of a published "
					     "repository, or cut short)",
					     s->file != NULL ? s->file : "file",
					     files[i]);
				else
					uerr("no %s in the repository (run "
					     "'vigilctl update publish' first)",
					     files[i]);
				goto done;
			}
			if (r == -1)
				goto done;
			buf_reset(err);
			if ((r = fn[i](t, (const uint8_t *)b.data, b.len,
			               now_is(), err)) != TUF_OK) {
				say_refused(files[i], r, err);
				goto done;
			}
		}
	}
	rc = 0;
done:
	buf_free(&b);
	return rc;
}

struct each_ctx {
	const char *dir;
	struct buf *err;
	int bad;
	json_t *list;
};

static void
each_check(const struct tuf_target *tg, void *arg)
{
	struct each_ctx *c = arg;

	if (c->bad)
		return;
	if (updc_target_check(c->dir, tg, c->err) == -1) {
		uerr("%s", buf_cstr(c->err));
		c->bad = 1;
	}
}

static int
load_pinned(const char *path, struct buf *out)
{
	struct buf err;
	int rc;

	buf_init(out, TUF_MAX_ROOT);
	if (path == NULL)
		return 0;
	buf_init(&err, 1024);
	if ((rc = tls_read_file(path, TUF_MAX_ROOT, out, &err)) == -1)
		uerr("%s", buf_cstr(&err));
	buf_free(&err);
	return rc;
}

/* ---- options shared by several commands ---- */

struct opts {
	const char *repo, *keys, *root, *in, *out, *kind, *name, *version,
	    *platform, *role, *dir;
	const char *root_keys[UPD_MAX_KEYS], *old_root_keys[UPD_MAX_KEYS],
	    *role_keys[TUF_NROLES][UPD_MAX_KEYS];
	size_t n_root_keys, n_old_root_keys, n_role_keys[TUF_NROLES];
	long long threshold[TUF_NROLES];
	long long days, targets_days, snap_days, ts_hours;
	int json, force;
	char *file;
};

enum {
	O_REPO = 256,
	O_KEYS,
	O_ROOT,
	O_IN,
	O_OUT,
	O_KIND,
	O_NAME,
	O_VERSION,
	O_PLATFORM,
	O_ROLE,
	O_DIR,
	O_ROOTKEY,
	O_OLDROOTKEY,
	O_TGKEY,
	O_SNKEY,
	O_TSKEY,
	O_THRESHOLD,
	O_DAYS,
	O_TGDAYS,
	O_SNDAYS,
	O_TSHOURS,
	O_AT,
	O_JSON,
	O_FORCE,
};

static const struct option longopts[] = {
    {"repo", required_argument, NULL, O_REPO},
    {"keys", required_argument, NULL, O_KEYS},
    {"root", required_argument, NULL, O_ROOT},
    {"in", required_argument, NULL, O_IN},
    {"out", required_argument, NULL, O_OUT},
    {"kind", required_argument, NULL, O_KIND},
    {"name", required_argument, NULL, O_NAME},
    {"version", required_argument, NULL, O_VERSION},
    {"platform", required_argument, NULL, O_PLATFORM},
    {"role", required_argument, NULL, O_ROLE},
    {"dir", required_argument, NULL, O_DIR},
    {"root-key", required_argument, NULL, O_ROOTKEY},
    {"old-root-key", required_argument, NULL, O_OLDROOTKEY},
    {"targets-key", required_argument, NULL, O_TGKEY},
    {"snapshot-key", required_argument, NULL, O_SNKEY},
    {"timestamp-key", required_argument, NULL, O_TSKEY},
    {"threshold", required_argument, NULL, O_THRESHOLD},
    {"days", required_argument, NULL, O_DAYS},
    {"targets-days", required_argument, NULL, O_TGDAYS},
    {"snapshot-days", required_argument, NULL, O_SNDAYS},
    {"timestamp-hours", required_argument, NULL, O_TSHOURS},
    {"at", required_argument, NULL, O_AT},
    {"json", no_argument, NULL, O_JSON},
    {"force", no_argument, NULL, O_FORCE},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int
role_of(const char *s)
{
	for (int r = 0; r < TUF_NROLES; r++)
		if (strcmp(s, tuf_role_name(r)) == 0)
			return r;
	return -1;
}

static int
num(const char *opt, const char *arg, long long lo, long long hi,
    long long *out)
{
	if (str_to_ll(arg, lo, hi, out) == -1) {
		uerr("%s '%s': a number from %lld to %lld", opt, arg, lo, hi);
		return -1;
	}
	return 0;
}

static int
add_opt(const char **list, size_t *n, const char *v)
{
	if (*n == UPD_MAX_KEYS) {
		uerr("at most %d keys per option", UPD_MAX_KEYS);
		return -1;
	}
	list[(*n)++] = v;
	return 0;
}

/* 0, 1 (--help printed), or 2 (usage error). */
static int
parse(int argc, char **argv, struct opts *o)
{
	int ch, r;
	char *eq;

	memset(o, 0, sizeof(*o));
	o->days = DEF_ROOT_DAYS;
	o->targets_days = DEF_TARGETS_DAYS;
	o->snap_days = DEF_SNAP_DAYS;
	o->ts_hours = DEF_TS_HOURS;
	o->json = ctl.json;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (ch) {
		case O_REPO:
			o->repo = optarg;
			break;
		case O_KEYS:
			o->keys = optarg;
			break;
		case O_ROOT:
			o->root = optarg;
			break;
		case O_IN:
			o->in = optarg;
			break;
		case O_OUT:
			o->out = optarg;
			break;
		case O_KIND:
			o->kind = optarg;
			break;
		case O_NAME:
			o->name = optarg;
			break;
		case O_VERSION:
			o->version = optarg;
			break;
		case O_PLATFORM:
			o->platform = optarg;
			break;
		case O_ROLE:
			o->role = optarg;
			break;
		case O_DIR:
			o->dir = optarg;
			break;
		case O_ROOTKEY:
			if (add_opt(o->root_keys, &o->n_root_keys, optarg))
				return 2;
			break;
		case O_OLDROOTKEY:
			if (add_opt(o->old_root_keys, &o->n_old_root_keys,
			            optarg))
				return 2;
			break;
		case O_TGKEY:
		case O_SNKEY:
		case O_TSKEY:
			r = ch == O_TGKEY   ? TUF_TARGETS
			    : ch == O_SNKEY ? TUF_SNAPSHOT
			                    : TUF_TIMESTAMP;
			if (add_opt(o->role_keys[r], &o->n_role_keys[r],
			            optarg))
				return 2;
			break;
		case O_THRESHOLD:
			if ((eq = strchr(optarg, '=')) == NULL) {
				uerr("--threshold '%s': ROLE=N", optarg);
				return 2;
			}
			*eq = '\0';
			if ((r = role_of(optarg)) == -1) {
				uerr("--threshold: no role '%s' (root, "
				     "targets, snapshot, timestamp)",
				     optarg);
				return 2;
			}
			if (num("--threshold", eq + 1, 1, UPD_MAX_KEYS,
			        &o->threshold[r]))
				return 2;
			break;
		case O_DAYS:
			if (num("--days", optarg, 1, 3650, &o->days))
				return 2;
			break;
		case O_TGDAYS:
			if (num("--targets-days", optarg, 1, 3650,
			        &o->targets_days))
				return 2;
			break;
		case O_SNDAYS:
			if (num("--snapshot-days", optarg, 1, 3650,
			        &o->snap_days))
				return 2;
			break;
		case O_TSHOURS:
			if (num("--timestamp-hours", optarg, 1, 24 * 365,
			        &o->ts_hours))
				return 2;
			break;
		case O_AT:
			if (tuf_parse_time(optarg, &opt_now) == -1) {
				uerr("--at '%s': YYYY-MM-DDTHH:MM:SSZ", optarg);
				return 2;
			}
			break;
		case O_JSON:
			o->json = 1;
			break;
		case O_FORCE:
			o->force = 1;
			break;
		case 'h':
			usage(stdout);
			return 1;
		default:
			uerr("%s %s",
			     ch == ':' ? "option needs a value:"
			               : "unknown option",
			     argv[optind - 1]);
			return 2;
		}
	}
	if (optind < argc)
		o->file = argv[optind++];
	if (optind < argc) {
		uerr("unexpected argument '%s'", argv[optind]);
		return 2;
	}
	return 0;
}

static int
need(const char *v, const char *opt)
{
	if (v == NULL) {
		uerr("%s is required", opt);
		return -1;
	}
	return 0;
}

/* ---- keygen ---- */

static int
write_key_pair(const char *dir, const char *base, int force)
{
	char kname[300], pname[300], p[PATH_MAX], id[65];
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	struct buf pem;
	struct stat st;
	BIO *b = NULL;
	BUF_MEM *bm;
	int rc = -1;

	buf_init(&pem, 0);
	snprintf(kname, sizeof(kname), "%s.key", base);
	snprintf(pname, sizeof(pname), "%s.pub", base);
	path_of(p, sizeof(p), dir, kname);
	if (!force && lstat(p, &st) == 0) {
		uerr("%s already exists (--force replaces it: metadata it "
		     "signed then needs a new root)",
		     p);
		goto done;
	}
	if (k == NULL || tls_key_to_pem(k, &pem) == -1 ||
	    write_out(dir, kname, pem.data, pem.len, 0600) == -1)
		goto done;
	if ((b = BIO_new(BIO_s_mem())) == NULL ||
	    PEM_write_bio_PUBKEY(b, k) != 1)
		goto done;
	BIO_get_mem_ptr(b, &bm);
	if (write_out(dir, pname, bm->data, bm->length, 0644) == -1)
		goto done;
	tuf_keyid(k, id);
	printf("  %-22s key ID %s\n", kname, id);
	rc = 0;
done:
	if (pem.data != NULL)
		explicit_bzero(pem.data, pem.cap);
	buf_free(&pem);
	BIO_free(b);
	EVP_PKEY_free(k);
	ERR_clear_error();
	return rc;
}

static int
do_keygen(struct opts *o)
{
	char base[200];
	int r;

	if (o->role != NULL && role_of(o->role) == -1) {
		uerr("--role '%s': root, targets, snapshot or timestamp",
		     o->role);
		return 2;
	}
	if (need(o->dir, "--dir") == -1 || mkdir_ok(o->dir, 0700) == -1)
		return 2;
	if (o->name != NULL && !str_is_name(o->name)) {
		uerr("--name '%s': letters, digits, '-', '_' and '.'", o->name);
		return 2;
	}
	printf("Ed25519 keys in %s (private .key mode 0600, public .pub):\n",
	       o->dir);
	for (r = 0; r < TUF_NROLES; r++) {
		if (o->role != NULL && strcmp(o->role, tuf_role_name(r)) != 0)
			continue;
		snprintf(base, sizeof(base), "%s%s%s", tuf_role_name(r),
		         o->name ? "-" : "", o->name ? o->name : "");
		if (write_key_pair(o->dir, base, o->force) == -1)
			return 1;
	}
	if (o->role == NULL || strcmp(o->role, "root") == 0)
		printf("The root key signs every other key: move root*.key to "
		       "an offline medium\nnow and bring it back only to sign "
		       "a new root ('vigilctl update root').\n");
	return 0;
}

/* ---- root ---- */

static int
add_role_keys(json_t *keys, json_t *roles, int r, EVP_PKEY **pubs, size_t n,
              long long th)
{
	json_t *ids = json_array();
	char id[65];

	for (size_t i = 0; i < n; i++) {
		tuf_keyid(pubs[i], id);
		json_array_append_new(ids, json_string(id));
		json_object_set_new(keys, id, tuf_key_json(pubs[i]));
	}
	if (th > (long long)n) {
		uerr("--threshold %s=%lld but the role has %zu key%s",
		     tuf_role_name(r), th, n, n == 1 ? "" : "s");
		json_decref(ids);
		return -1;
	}
	json_object_set_new(roles, tuf_role_name(r),
	                    json_pack("{s:o, s:I}", "keyids", ids, "threshold",
	                              (json_int_t)th));
	return 0;
}

static int
do_root(struct opts *o)
{
	EVP_PKEY *newroot[UPD_MAX_KEYS], *old[UPD_MAX_KEYS],
	    *pubs[TUF_NROLES][UPD_MAX_KEYS], *signers[2 * UPD_MAX_KEYS];
	size_t nnew = 0, nold = 0, npub[TUF_NROLES] = {0}, ns = 0;
	struct tuf_trust t;
	struct buf b, err;
	json_t *sig = NULL, *env = NULL, *keys = NULL, *roles = NULL;
	char exp[21], name[64], *s = NULL;
	long long version = 1;
	int have = 0, rc = 1, r;

	memset(&t, 0, sizeof(t));
	buf_init(&b, TUF_MAX_ROOT);
	buf_init(&err, 4096);
	if (need(o->repo, "--repo") == -1 ||
	    (o->n_root_keys == 0 && need(NULL, "--root-key") == -1))
		return 2;
	if (mkdir_ok(o->repo, 0755) == -1)
		goto done;
	/* The current root, verified from 1.root.json up. */
	if ((r = read_in(o->repo, "1.root.json", TUF_MAX_ROOT, &b)) == -1)
		goto done;
	if (r == 0) {
		struct source src = {o->repo, NULL};

		if (tuf_trust_init(&t, (const uint8_t *)b.data, b.len, &err) !=
		    TUF_OK) {
			uerr("1.root.json: %s", buf_cstr(&err));
			goto done;
		}
		for (long long v = 2; v <= UPD_MAX_ROOTS; v++) {
			snprintf(name, sizeof(name), "%lld.root.json", v);
			if ((r = src_get(&src, name, &b)) == 1)
				break;
			buf_reset(&err);
			if (r == -1 ||
			    (r = tuf_update_root(&t, (const uint8_t *)b.data,
			                         b.len, &err)) != TUF_OK) {
				say_refused(name, r, &err);
				goto done;
			}
		}
		have = 1;
		version = t.meta[TUF_ROOT].version + 1;
	}
	for (size_t i = 0; i < o->n_root_keys; i++)
		if ((newroot[nnew++] = load_private(o->root_keys[i])) == NULL)
			goto done;
	for (size_t i = 0; i < o->n_old_root_keys; i++)
		if ((old[nold++] = load_private(o->old_root_keys[i])) == NULL)
			goto done;
	keys = json_object();
	roles = json_object();
	for (r = 0; r < TUF_NROLES; r++) {
		long long th = o->threshold[r];

		if (r == TUF_ROOT) {
			if (add_role_keys(keys, roles, r, newroot, nnew,
			                  th ? th : 1) == -1)
				goto done;
			continue;
		}
		for (size_t i = 0; i < o->n_role_keys[r]; i++)
			if ((pubs[r][npub[r]++] =
			         load_public(o->role_keys[r][i])) == NULL)
				goto done;
		if (npub[r] == 0 && have) {
			/* Unchanged: the current root's keys for it. */
			json_t *cur = t.meta[TUF_ROOT].signed_, *id;
			json_t *cr = json_object_get(
			    json_object_get(cur, "roles"), tuf_role_name(r));
			size_t i;

			json_array_foreach(json_object_get(cr, "keyids"), i, id)
			{
				json_object_set(
				    keys, json_string_value(id),
				    json_object_get(
				        json_object_get(cur, "keys"),
				        json_string_value(id)));
			}
			json_object_set_new(
			    roles, tuf_role_name(r),
			    json_pack(
			        "{s:O, s:I}", "keyids",
			        json_object_get(cr, "keyids"), "threshold",
			        (json_int_t)(th ? th
			                        : json_integer_value(
			                              json_object_get(
			                                  cr, "threshold")))));
			continue;
		}
		if (npub[r] == 0) {
			uerr("--%s-key is required for the first root",
			     tuf_role_name(r));
			goto done;
		}
		if (add_role_keys(keys, roles, r, pubs[r], npub[r],
		                  th ? th : 1) == -1)
			goto done;
	}
	tuf_format_time(now_is() + o->days * 86400, exp);
	sig = json_pack("{s:s, s:s, s:I, s:s, s:O, s:O}", "_type", "root",
	                "spec_version", "1.0", "version", (json_int_t)version,
	                "expires", exp, "keys", keys, "roles", roles);
	/* Signed by the new root keys and, for a rotation, by the current
	 * root's (given with --old-root-key, or the same files). */
	for (size_t i = 0; i < nnew; i++)
		signers[ns++] = newroot[i];
	for (size_t i = 0; i < nold; i++)
		signers[ns++] = old[i];
	if ((env = tuf_sign(sig, signers, ns, &err)) == NULL) {
		uerr("%s", buf_cstr(&err));
		goto done;
	}
	s = json_dumps(env, JSON_INDENT(1) | JSON_SORT_KEYS);
	/* Check before writing: what a client would say of it. */
	buf_reset(&err);
	if (have) {
		if ((r = tuf_update_root(&t, (const uint8_t *)s, strlen(s),
		                         &err)) != TUF_OK) {
			say_refused("the new root", r, &err);
			uerr("a new root needs the current root's threshold "
			     "of signatures (--old-root-key) and its own");
			goto done;
		}
	} else {
		tuf_trust_free(&t);
		if ((r = tuf_trust_init(&t, (const uint8_t *)s, strlen(s),
		                        &err)) != TUF_OK) {
			say_refused("the new root", r, &err);
			goto done;
		}
	}
	snprintf(name, sizeof(name), "%lld.root.json", version);
	if (write_out(o->repo, name, s, strlen(s), 0644) == -1 ||
	    write_out(o->repo, "root.json", s, strlen(s), 0644) == -1)
		goto done;
	printf("Wrote %s/%s (root version %lld, expires %s).\n", o->repo, name,
	       version, exp);
	if (have)
		printf("Re-sign with the new keys: 'vigilctl update sign "
		       "--role targets'.\n");
	rc = 0;
done:
	tuf_trust_free(&t);
	free_keys(newroot, nnew);
	free_keys(old, nold);
	for (r = 0; r < TUF_NROLES; r++)
		free_keys(pubs[r], npub[r]);
	json_decref(sig);
	json_decref(env);
	json_decref(keys);
	json_decref(roles);
	free(s);
	buf_free(&b);
	buf_free(&err);
	return rc;
}

/* The versions found in the repository's files, verified or not: new
 * metadata continues above them, so a client that saw them never reads
 * the next as a rollback (after a key rotation the old files no longer
 * verify, but their versions still count). */
static long long floor_v[TUF_NROLES];

static void
note_floor(int r, const struct buf *b)
{
	json_t *doc = json_loadb((const char *)b->data, b->len, 0, NULL);
	long long v = json_integer_value(
	    json_object_get(json_object_get(doc, "signed"), "version"));

	if (v > floor_v[r])
		floor_v[r] = v;
	json_decref(doc);
}

/* ---- sign and publish ---- */

static char *
sign_role(struct tuf_trust *t, int r, json_t *sig, EVP_PKEY **have,
          size_t nhave, const char *keydir)
{
	EVP_PKEY *use[UPD_MAX_KEYS];
	struct buf err;
	json_t *env;
	char *s = NULL;
	size_t n;

	if (role_signers(t, r, have, nhave, use, &n, keydir) == -1)
		return NULL;
	buf_init(&err, 1024);
	if ((env = tuf_sign(sig, use, n, &err)) == NULL)
		uerr("%s", buf_cstr(&err));
	else
		s = json_dumps(env, JSON_INDENT(1) | JSON_SORT_KEYS);
	json_decref(env);
	buf_free(&err);
	return s;
}

static json_t *
meta_entry(long long version, const char *data)
{
	uint8_t h[32];
	unsigned int hl;
	char hex[65];

	EVP_Digest(data, strlen(data), h, &hl, EVP_sha256(), NULL);
	hex_encode(h, 32, hex);
	return json_pack("{s:I, s:I, s:{s:s}}", "version", (json_int_t)version,
	                 "length", (json_int_t)strlen(data), "hashes", "sha256",
	                 hex);
}

/*
 * Re-signs from role `from` down: targets (with tgs as its targets, or
 * the trusted ones), snapshot, timestamp, each one version up; writes the
 * files timestamp last, so a reader never sees a timestamp naming a
 * snapshot that is not there yet.
 */
static int
resign(struct opts *o, struct tuf_trust *t, int from, json_t *tgs)
{
	EVP_PKEY *have[UPD_MAX_KEYS];
	size_t nhave = 0;
	char *tj = NULL, *sj = NULL, *xj = NULL, exp[21];
	json_t *sig = NULL, *empty = json_object();
	long long now = now_is(), tv, sv, xv;
	struct buf b;
	int rc = 1;

	buf_init(&b, TUF_MAX_TARGETS);
	if (load_keydir(o->keys, have, &nhave) == -1)
		goto done;
	tv = t->meta[TUF_TARGETS].version;
	sv = t->meta[TUF_SNAPSHOT].version;
	xv = t->meta[TUF_TIMESTAMP].version;
	if (floor_v[TUF_TARGETS] > tv && from == TUF_TARGETS)
		tv = floor_v[TUF_TARGETS];
	if (floor_v[TUF_SNAPSHOT] > sv && from <= TUF_SNAPSHOT)
		sv = floor_v[TUF_SNAPSHOT];
	if (floor_v[TUF_TIMESTAMP] > xv)
		xv = floor_v[TUF_TIMESTAMP];
	if (from == TUF_TARGETS) {
		tuf_format_time(now + o->targets_days * 86400, exp);
		if (tgs == NULL)
			tgs = json_object_get(t->meta[TUF_TARGETS].signed_,
			                      "targets");
		sig = json_pack("{s:s, s:s, s:I, s:s, s:O}", "_type", "targets",
		                "spec_version", "1.0", "version",
		                (json_int_t)(++tv), "expires", exp, "targets",
		                tgs != NULL ? tgs : empty);
		if ((tj = sign_role(t, TUF_TARGETS, sig, have, nhave,
		                    o->keys)) == NULL)
			goto done;
		json_decref(sig);
		sig = NULL;
	} else {
		if (read_in(o->repo, "targets.json", TUF_MAX_TARGETS, &b) != 0)
			goto done;
		tj = strndup((const char *)b.data, b.len);
	}
	if (from <= TUF_SNAPSHOT) {
		tuf_format_time(now + o->snap_days * 86400, exp);
		sig = json_pack("{s:s, s:s, s:I, s:s, s:{s:o}}", "_type",
		                "snapshot", "spec_version", "1.0", "version",
		                (json_int_t)(++sv), "expires", exp, "meta",
		                "targets.json", meta_entry(tv, tj));
		if ((sj = sign_role(t, TUF_SNAPSHOT, sig, have, nhave,
		                    o->keys)) == NULL)
			goto done;
		json_decref(sig);
		sig = NULL;
	} else {
		if (read_in(o->repo, "snapshot.json", TUF_MAX_SNAPSHOT, &b) !=
		    0)
			goto done;
		sj = strndup((const char *)b.data, b.len);
	}
	tuf_format_time(now + o->ts_hours * 3600, exp);
	sig = json_pack("{s:s, s:s, s:I, s:s, s:{s:o}}", "_type", "timestamp",
	                "spec_version", "1.0", "version", (json_int_t)(++xv),
	                "expires", exp, "meta", "snapshot.json",
	                meta_entry(sv, sj));
	if ((xj = sign_role(t, TUF_TIMESTAMP, sig, have, nhave, o->keys)) ==
	    NULL)
		goto done;
	if ((from == TUF_TARGETS &&
	     write_out(o->repo, "targets.json", tj, strlen(tj), 0644) == -1) ||
	    (from <= TUF_SNAPSHOT &&
	     write_out(o->repo, "snapshot.json", sj, strlen(sj), 0644) == -1) ||
	    write_out(o->repo, "timestamp.json", xj, strlen(xj), 0644) == -1)
		goto done;
	printf("Signed: targets v%lld, snapshot v%lld, timestamp v%lld "
	       "(expires %s).\n",
	       tv, sv, xv, exp);
	rc = 0;
done:
	free_keys(have, nhave);
	json_decref(empty);
	json_decref(sig);
	free(tj);
	free(sj);
	free(xj);
	buf_free(&b);
	return rc;
}

/*
 * The repository's trust state for signing: its own chain verified, but
 * missing or expired timestamp/snapshot/targets are fine (that is what
 * re-signing is for). The role files that do verify set the versions to
 * continue from.
 */
/* The targets of targets.json when the chain to it could not be followed
 * (its timestamp or snapshot signed by keys a new root no longer lists):
 * the publisher's own list, carried into the next signing instead of
 * being dropped. NULL otherwise. */
static json_t *carried_tgs;

static void
carry_targets(struct opts *o)
{
	char p[PATH_MAX];
	json_error_t je;
	json_t *doc, *tg;

	json_decref(carried_tgs);
	carried_tgs = NULL;
	path_of(p, sizeof(p), o->repo, "targets.json");
	if ((doc = json_load_file(p, JSON_REJECT_DUPLICATES, &je)) == NULL)
		return;
	tg = json_object_get(json_object_get(doc, "signed"), "targets");
	if (json_is_object(tg)) {
		carried_tgs = json_deep_copy(tg);
		printf("Carried over the %zu target(s) of targets.json (the "
		       "metadata above it was signed by keys the root no "
		       "longer lists).\n",
		       json_object_size(tg));
	}
	json_decref(doc);
}

static int
load_for_signing(struct opts *o, struct tuf_trust *t)
{
	static const char *const files[] = {"timestamp.json", "snapshot.json",
	                                    "targets.json"};
	static int (*const fn[])(struct tuf_trust *, const uint8_t *, size_t,
	                         long long, struct buf *) = {
	    tuf_update_timestamp, tuf_update_snapshot, tuf_update_targets};
	struct source src = {o->repo, NULL};
	struct buf b, err;
	char name[64];
	int r, rc = -1;

	buf_init(&b, TUF_MAX_TARGETS);
	buf_init(&err, 4096);
	memset(t, 0, sizeof(*t));
	if ((r = src_get(&src, "1.root.json", &b)) != 0) {
		if (r == 1)
			uerr("%s has no root: run 'vigilctl update root' "
			     "first",
			     o->repo);
		goto done;
	}
	if ((r = tuf_trust_init(t, (const uint8_t *)b.data, b.len, &err)) !=
	    TUF_OK) {
		say_refused("1.root.json", r, &err);
		goto done;
	}
	for (long long v = 2; v <= UPD_MAX_ROOTS; v++) {
		snprintf(name, sizeof(name), "%lld.root.json", v);
		if ((r = src_get(&src, name, &b)) == 1)
			break;
		buf_reset(&err);
		if (r == -1 || (r = tuf_update_root(t, (const uint8_t *)b.data,
		                                    b.len, &err)) != TUF_OK) {
			say_refused(name, r, &err);
			goto done;
		}
	}
	/* Versions continue from what is there, expired or not: checked as
	 * of the moment each was signed would be better, but expiry is all
	 * that an old date changes, so check as of the epoch. */
	static const int roles[] = {TUF_TIMESTAMP, TUF_SNAPSHOT, TUF_TARGETS};

	for (int i = 0; i < 3; i++)
		if (src_get(&src, files[i], &b) == 0)
			note_floor(roles[i], &b);
	for (int i = 0; i < 3; i++) {
		if ((r = src_get(&src, files[i], &b)) != 0)
			break;
		buf_reset(&err);
		if ((r = fn[i](t, (const uint8_t *)b.data, b.len, 0, &err)) !=
		    TUF_OK) {
			/* Metadata signed by keys the root no longer
			 * lists is simply replaced; the list of targets
			 * is kept. */
			if (r == TUF_E_THRESHOLD || r == TUF_E_SIGNATURE) {
				if (i < 2)
					carry_targets(o);
				break;
			}
			say_refused(files[i], r, &err);
			goto done;
		}
	}
	rc = 0;
done:
	buf_free(&b);
	buf_free(&err);
	return rc;
}

static int
do_sign(struct opts *o)
{
	struct tuf_trust t;
	int from = TUF_TIMESTAMP, rc;

	if (need(o->repo, "--repo") == -1 || need(o->keys, "--keys") == -1)
		return 2;
	if (o->role != NULL &&
	    ((from = role_of(o->role)) == -1 || from == TUF_ROOT)) {
		uerr("--role '%s': targets, snapshot or timestamp (a root is "
		     "signed with 'vigilctl update root')",
		     o->role);
		return 2;
	}
	if (load_for_signing(o, &t) == -1)
		return 1;
	/* A role whose metadata did not verify is re-signed too. */
	if (t.meta[TUF_TARGETS].signed_ == NULL)
		from = TUF_TARGETS;
	else if (t.meta[TUF_SNAPSHOT].signed_ == NULL && from > TUF_SNAPSHOT)
		from = TUF_SNAPSHOT;
	rc = resign(o, &t, from,
	            t.meta[TUF_TARGETS].signed_ == NULL ? carried_tgs : NULL);
	tuf_trust_free(&t);
	json_decref(carried_tgs);
	carried_tgs = NULL;
	return rc;
}

static int
copy_artifact(const char *src, const char *repo, json_t **entry, char hex[65])
{
	char dir[PATH_MAX], name[80];
	uint8_t h[32];
	unsigned int hl;
	struct buf data, err;
	int rc = -1;

	buf_init(&data, (size_t)UPD_MAX_ARTIFACT);
	buf_init(&err, 1024);
	if (tls_read_file(src, (size_t)UPD_MAX_ARTIFACT, &data, &err) == -1) {
		uerr("%s", buf_cstr(&err));
		goto done;
	}
	EVP_Digest(data.data, data.len, h, &hl, EVP_sha256(), NULL);
	hex_encode(h, 32, hex);
	path_of(dir, sizeof(dir), repo, "targets");
	snprintf(name, sizeof(name), "%s", hex);
	if (mkdir_ok(dir, 0755) == -1 ||
	    write_out(dir, name, data.data, data.len, 0644) == -1)
		goto done;
	*entry = json_pack("{s:I, s:{s:s}}", "length", (json_int_t)data.len,
	                   "hashes", "sha256", hex);
	rc = 0;
done:
	buf_free(&data);
	buf_free(&err);
	return rc;
}

static int
do_publish(struct opts *o)
{
	static const char *const kinds[] = {"rules", "intel", "agent"};
	struct tuf_trust t;
	json_t *tgs = NULL, *entry = NULL;
	char hex[65];
	int rc = 1, ok = 0;

	if (need(o->repo, "--repo") == -1 || need(o->keys, "--keys") == -1 ||
	    need(o->kind, "--kind") == -1 || need(o->name, "--name") == -1 ||
	    need(o->version, "--version") == -1 ||
	    need(o->file, "FILE (the artifact)") == -1)
		return 2;
	for (size_t i = 0; i < 3; i++)
		ok |= strcmp(o->kind, kinds[i]) == 0;
	if (!ok) {
		uerr("--kind '%s': rules (YARA or IOC rule sets), intel "
		     "(feeds for vigil-inteld) or agent (an agent binary)",
		     o->kind);
		return 2;
	}
	if (!tuf_name_ok(o->name, strlen(o->name))) {
		uerr("--name '%s' is refused: '/'-separated parts of "
		     "[A-Za-z0-9._-], none empty, none starting with '.' or "
		     "'-' (no '..', no absolute path), at most %d bytes",
		     o->name, TUF_MAX_NAME);
		return 2;
	}
	if (strcmp(o->kind, "agent") == 0 && o->platform == NULL) {
		uerr("an agent binary needs --platform (e.g. linux-x86_64)");
		return 2;
	}
	if (!str_is_name(o->version) ||
	    (o->platform != NULL && !str_is_name(o->platform))) {
		uerr("--version and --platform: letters, digits, '-', '_', "
		     "'.'");
		return 2;
	}
	if (load_for_signing(o, &t) == -1)
		return 1;
	tgs = json_deep_copy(
	    t.meta[TUF_TARGETS].signed_ != NULL
	        ? json_object_get(t.meta[TUF_TARGETS].signed_, "targets")
	        : carried_tgs);
	json_decref(carried_tgs);
	carried_tgs = NULL;
	if (tgs == NULL)
		tgs = json_object();
	if (copy_artifact(o->file, o->repo, &entry, hex) == -1)
		goto done;
	json_object_set_new(entry, "custom",
	                    json_pack("{s:s, s:s, s:s}", "kind", o->kind,
	                              "platform",
	                              o->platform ? o->platform : "any",
	                              "version", o->version));
	json_object_set_new(tgs, o->name, entry);
	printf("Added %s (%s %s, %s, sha256 %s).\n", o->name, o->kind,
	       o->version, o->platform ? o->platform : "any", hex);
	rc = resign(o, &t, TUF_TARGETS, tgs);
done:
	json_decref(tgs);
	tuf_trust_free(&t);
	return rc;
}

/* ---- verify and status ---- */

static int
verify_repo(struct opts *o, struct tuf_trust *t, int artifacts)
{
	struct source src = {o->repo, NULL};
	struct each_ctx c;
	struct buf pinned, err;
	int rc = -1;

	memset(t, 0, sizeof(*t));
	buf_init(&err, 4096);
	if (load_pinned(o->root, &pinned) == -1)
		goto done;
	if (verify_source(&src, o->root ? &pinned : NULL, t, 0, &err) == -1)
		goto done;
	if (artifacts) {
		memset(&c, 0, sizeof(c));
		c.dir = o->repo;
		c.err = &err;
		buf_reset(&err);
		tuf_target_each(t, each_check, &c);
		if (c.bad)
			goto done;
	}
	rc = 0;
done:
	buf_free(&pinned);
	buf_free(&err);
	return rc;
}

static void
count_target(const struct tuf_target *tg, void *arg)
{
	(void)tg;
	(*(int *)arg)++;
}

static int
do_verify(struct opts *o)
{
	struct tuf_trust t;
	int n = 0;

	if (need(o->repo, "--repo") == -1)
		return 2;
	if (o->root == NULL)
		fprintf(stderr, "vigilctl: update verify: warning: no --root: "
		                "trusting the repository's own 1.root.json\n");
	if (verify_repo(o, &t, 1) == -1) {
		tuf_trust_free(&t);
		return 1;
	}
	tuf_target_each(&t, count_target, &n);
	printf("OK: root v%lld, timestamp v%lld, snapshot v%lld, targets "
	       "v%lld, %d artifact%s verified\n",
	       t.meta[TUF_ROOT].version, t.meta[TUF_TIMESTAMP].version,
	       t.meta[TUF_SNAPSHOT].version, t.meta[TUF_TARGETS].version, n,
	       n == 1 ? "" : "s");
	tuf_trust_free(&t);
	return 0;
}

static void
list_target(const struct tuf_target *tg, void *arg)
{
	char hex[65];

	hex_encode(tg->sha256, 32, hex);
	json_array_append_new(
	    arg, json_pack("{s:s, s:s?, s:s?, s:s?, s:I, s:s}", "name",
	                   tg->name, "kind", tg->kind, "platform", tg->platform,
	                   "version", tg->version, "length",
	                   (json_int_t)tg->length, "sha256", hex));
}

static int
do_status(struct opts *o)
{
	/* Due: less than this much of its life left (seconds). */
	static const long long due[TUF_NROLES] = {30 * 86400, 7 * 86400,
	                                          3 * 86400, 6 * 3600};
	struct tuf_trust t;
	json_t *out = json_object(), *roles = json_array(),
	       *arts = json_array(), *v;
	long long now = now_is();
	char when[21];
	int bad = 0, ndue = 0;
	size_t i;

	if (need(o->repo, "--repo") == -1) {
		json_decref(out);
		json_decref(roles);
		json_decref(arts);
		return 2;
	}
	/* Status must show an expired repository too: read it as of the
	 * epoch for the versions, then judge expiry here. */
	{
		long long saved = opt_now;

		opt_now = 0;
		bad = verify_repo(o, &t, 0) == -1;
		opt_now = saved;
	}
	for (int r = 0; r < TUF_NROLES; r++) {
		const char *state;

		if (t.meta[r].signed_ == NULL)
			continue;
		tuf_format_time(t.meta[r].expires, when);
		if (now >= t.meta[r].expires)
			state = "EXPIRED";
		else if (t.meta[r].expires - now < due[r])
			state = "due";
		else
			state = "ok";
		ndue += strcmp(state, "ok") != 0;
		json_array_append_new(
		    roles, json_pack("{s:s, s:I, s:s, s:I, s:s}", "role",
		                     tuf_role_name(r), "version",
		                     (json_int_t)t.meta[r].version, "expires",
		                     when, "seconds_left",
		                     (json_int_t)(t.meta[r].expires - now),
		                     "state", state));
	}
	tuf_target_each(&t, list_target, arts);
	json_object_set_new(out, "repo", json_string(o->repo));
	json_object_set_new(out, "verified", json_boolean(!bad));
	json_object_set_new(out, "roles", roles);
	json_object_set_new(out, "targets", arts);
	if (o->json) {
		ctl_print_json(out);
	} else {
		printf("%-10s %8s  %-20s  %-12s %s\n", "ROLE", "VERSION",
		       "EXPIRES", "LEFT", "STATE");
		json_array_foreach(roles, i, v)
		{
			long long left = json_integer_value(
			    json_object_get(v, "seconds_left"));
			char l[32];

			if (left < 0)
				snprintf(l, sizeof(l), "-");
			else if (left < 2 * 86400)
				snprintf(l, sizeof(l), "%lld h", left / 3600);
			else
				snprintf(l, sizeof(l), "%lld d", left / 86400);
			printf("%-10s %8lld  %-20s  %-12s %s\n",
			       json_string_value(json_object_get(v, "role")),
			       (long long)json_integer_value(
			           json_object_get(v, "version")),
			       json_string_value(json_object_get(v, "expires")),
			       l,
			       json_string_value(json_object_get(v, "state")));
		}
		printf("\n%-40s %-6s %-14s %-12s %s\n", "TARGET", "KIND",
		       "PLATFORM", "VERSION", "BYTES");
		json_array_foreach(arts, i, v)
		{
			printf(
			    "%-40s %-6s %-14s %-12s %lld\n",
			    json_string_value(json_object_get(v, "name")),
			    json_string_value(json_object_get(v, "kind")),
			    json_string_value(json_object_get(v, "platform")),
			    json_string_value(json_object_get(v, "version")),
			    (long long)json_integer_value(
			        json_object_get(v, "length")));
		}
		if (ndue > 0)
			printf("\n%d role%s due or expired: 'vigilctl update "
			       "sign' (timestamp, snapshot, targets) or "
			       "'update root' renews them.\n",
			       ndue, ndue == 1 ? " is" : "s are");
	}
	json_decref(out);
	tuf_trust_free(&t);
	return bad ? 1 : 0;
}

/* ---- export and import ---- */

static char *
b64(const uint8_t *p, size_t n)
{
	char *out = malloc(4 * ((n + 2) / 3) + 1);

	if (out != NULL)
		EVP_EncodeBlock((unsigned char *)out, p, (int)n);
	return out;
}

/* Strict base64 (no whitespace, padding only at the end) into a new
 * buffer *out of *n bytes (free()). */
static int
unb64(const char *s, size_t len, uint8_t **out, size_t *n)
{
	size_t pad = 0;

	*out = NULL;
	if (len % 4 != 0 || len > (size_t)UPD_MAX_ARTIFACT / 3 * 4 + 4)
		return -1;
	if (len > 0 && s[len - 1] == '=')
		pad++;
	if (len > 1 && s[len - 2] == '=')
		pad++;
	if ((*out = malloc(len / 4 * 3 + 1)) == NULL)
		return -1;
	if (EVP_DecodeBlock(*out, (const unsigned char *)s, (int)len) < 0) {
		free(*out);
		*out = NULL;
		return -1;
	}
	*n = len / 4 * 3 - pad;
	return 0;
}

struct exp_ctx {
	const char *dir;
	json_t *arts;
	int bad;
};

static void
export_one(const struct tuf_target *tg, void *arg)
{
	struct exp_ctx *c = arg;
	char hex[65], p[PATH_MAX], *e;
	struct buf data, err;

	if (c->bad)
		return;
	hex_encode(tg->sha256, 32, hex);
	if (json_object_get(c->arts, hex) != NULL)
		return;
	snprintf(p, sizeof(p), "%s/targets/%s", c->dir, hex);
	buf_init(&data, (size_t)tg->length + 1);
	buf_init(&err, 1024);
	if (tls_read_file(p, (size_t)tg->length, &data, &err) == -1 ||
	    (e = b64((const uint8_t *)data.data, data.len)) == NULL) {
		uerr("%s", buf_cstr(&err));
		c->bad = 1;
	} else {
		json_object_set_new(c->arts, hex, json_string(e));
		free(e);
	}
	buf_free(&data);
	buf_free(&err);
}

static int
do_export(struct opts *o)
{
	static const char *const files[] = {"timestamp.json", "snapshot.json",
	                                    "targets.json"};
	struct source src;
	struct tuf_trust t;
	struct exp_ctx c;
	json_t *doc = NULL, *meta;
	struct buf b;
	char name[64], *s = NULL;
	int rc = 1;

	if (need(o->repo, "--repo") == -1 || need(o->out, "--out") == -1)
		return 2;
	buf_init(&b, TUF_MAX_TARGETS);
	/* Never carry a repository that would be refused at the far end. */
	if (verify_repo(o, &t, 1) == -1) {
		uerr("%s does not verify; nothing exported", o->repo);
		goto done;
	}
	src.dir = o->repo;
	src.exp = NULL;
	doc = json_pack("{s:s, s:i, s:{}, s:{}}", "format", UPD_FORMAT,
	                "format_version", 1, "metadata", "artifacts");
	meta = json_object_get(doc, "metadata");
	for (long long v = 1; v <= t.meta[TUF_ROOT].version; v++) {
		snprintf(name, sizeof(name), "%lld.root.json", v);
		if (src_get(&src, name, &b) != 0)
			goto done;
		json_object_set_new(meta, name,
		                    json_stringn((const char *)b.data, b.len));
	}
	for (int i = 0; i < 3; i++) {
		if (src_get(&src, files[i], &b) != 0)
			goto done;
		json_object_set_new(meta, files[i],
		                    json_stringn((const char *)b.data, b.len));
	}
	c.dir = o->repo;
	c.arts = json_object_get(doc, "artifacts");
	c.bad = 0;
	tuf_target_each(&t, export_one, &c);
	if (c.bad)
		goto done;
	if ((s = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS)) == NULL ||
	    write_out(o->out[0] == '/' ? "" : ".", o->out, s, strlen(s),
	              0644) == -1)
		goto done;
	printf("Exported %s to %s (root v%lld, timestamp v%lld, %zu "
	       "artifact%s, %zu bytes).\n",
	       o->repo, o->out, t.meta[TUF_ROOT].version,
	       t.meta[TUF_TIMESTAMP].version, json_object_size(c.arts),
	       json_object_size(c.arts) == 1 ? "" : "s", strlen(s));
	rc = 0;
done:
	tuf_trust_free(&t);
	json_decref(doc);
	free(s);
	buf_free(&b);
	return rc;
}

/* 1 when s is 64 lowercase hex digits: an artifact's only name on disk. */
static int
is_sha_name(const char *s)
{
	if (strlen(s) != 64)
		return 0;
	for (size_t i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		      (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

/* Metadata names an export may carry: N.root.json and the three. */
static int
is_meta_name(const char *s)
{
	size_t d = strspn(s, "0123456789");

	if (strcmp(s, "timestamp.json") == 0 ||
	    strcmp(s, "snapshot.json") == 0 || strcmp(s, "targets.json") == 0)
		return 1;
	return d > 0 && d < 5 && s[0] != '0' &&
	       strcmp(s + d, ".root.json") == 0;
}

struct imp_ctx {
	json_t *arts;
	struct buf *err;
	json_t *used;
	int bad;
};

static void
import_check(const struct tuf_target *tg, void *arg)
{
	struct imp_ctx *c = arg;
	struct tuf_reader r;
	uint8_t *data = NULL;
	size_t n = 0;
	char hex[65];
	json_t *a;

	if (c->bad)
		return;
	hex_encode(tg->sha256, 32, hex);
	if ((a = json_object_get(c->arts, hex)) == NULL || !json_is_string(a)) {
		uerr("the export lacks artifact %s (%s)", tg->name, hex);
		c->bad = 1;
		return;
	}
	if (unb64(json_string_value(a), json_string_length(a), &data, &n) ==
	    -1) {
		uerr("artifact %s: not base64", tg->name);
		c->bad = 1;
		goto done;
	}
	tuf_reader_init(&r, tg);
	buf_reset(c->err);
	if (tuf_reader_feed(&r, data, n, c->err) != TUF_OK ||
	    tuf_reader_finish(&r, c->err) != TUF_OK) {
		uerr("refused: %s", buf_cstr(c->err));
		c->bad = 1;
	}
	tuf_reader_free(&r);
	json_object_set(c->used, hex, json_true());
done:
	free(data);
}

/* signed.version of a root document, or 0. */
static long long
root_version(const struct buf *b)
{
	json_t *doc = json_loadb((const char *)b->data, b->len, 0, NULL);
	long long v = json_integer_value(
	    json_object_get(json_object_get(doc, "signed"), "version"));

	json_decref(doc);
	return v;
}

/*
 * A first import pinned on root version base > 1: the export's roots 1 ..
 * base-1 are verified as a client would walk them, from its 1.root.json,
 * and must lead to the pinned root (signed by the threshold of the one
 * before it). They are then the site's chain up to the pin (the site
 * starts its later walks from 1.root.json).
 */
static int
chain_to_pin(json_t *meta, long long base, const struct buf *pinned)
{
	struct tuf_trust c;
	struct buf err;
	char name[64];
	json_t *v;
	int rc = -1, r;

	memset(&c, 0, sizeof(c));
	buf_init(&err, 4096);
	for (long long n = 1; n <= base; n++) {
		snprintf(name, sizeof(name), "%lld.root.json", n);
		v = json_object_get(meta, name);
		if (n < base && v == NULL) {
			uerr("refused: the export lacks %s, so the roots "
			     "before the pinned version %lld cannot be "
			     "verified",
			     name, base);
			goto done;
		}
		buf_reset(&err);
		if (n == 1)
			r = tuf_trust_init(
			    &c, (const uint8_t *)json_string_value(v),
			    json_string_length(v), &err);
		else if (n < base)
			r = tuf_update_root(
			    &c, (const uint8_t *)json_string_value(v),
			    json_string_length(v), &err);
		else
			r = tuf_update_root(&c, pinned->data, pinned->len,
			                    &err);
		if (r != TUF_OK) {
			uerr("refused: the export's roots 1.root.json to "
			     "%lld.root.json do not lead to the pinned root "
			     "(version %lld), at %s: %s: %s",
			     base - 1, base, n < base ? name : "the pin",
			     tuf_err_name(r), buf_cstr(&err));
			goto done;
		}
	}
	rc = 0;
done:
	tuf_trust_free(&c);
	buf_free(&err);
	return rc;
}

/*
 * The roots of an export that the chain walk did not verify: those at or
 * below base (the root version trusted before the import). Each must be
 * byte for byte what the site holds (fed) or, at the pinned version, the
 * --root file; below a pin, they must lead to it (chain_to_pin). Every
 * N.root.json above top (the verified end of the chain) was not verified
 * either: refused.
 */
static int
import_roots_check(struct opts *o, json_t *meta, int fed, long long base,
                   long long top, const struct buf *pinned)
{
	struct buf have;
	const char *k;
	json_t *v;
	int rc = -1, r;

	buf_init(&have, TUF_MAX_ROOT);
	if (!fed && base > 1 && chain_to_pin(meta, base, pinned) == -1)
		goto done;
	json_object_foreach(meta, k, v)
	{
		long long n;
		const char *p = json_string_value(v);
		size_t len = json_string_length(v);

		if (strstr(k, ".root.json") == NULL)
			continue;
		n = strtoll(k, NULL, 10);
		if (n > top) {
			uerr("refused: %s in the export was not verified (the "
			     "root chain stops at version %lld)",
			     k, top);
			goto done;
		}
		if (n > base)
			continue;
		if (fed) {
			if ((r = read_in(o->repo, k, TUF_MAX_ROOT, &have)) ==
			    -1)
				goto done;
			if (r == 1 || have.len != len ||
			    memcmp(have.data, p, len) != 0) {
				uerr("refused: %s in the export differs from "
				     "the %s/%s this site trusts (a root is "
				     "never replaced)",
				     k, o->repo, k);
				goto done;
			}
		} else if (n == base && (pinned->len != len ||
		                         memcmp(pinned->data, p, len) != 0)) {
			uerr("refused: %s in the export differs from the "
			     "pinned root %s",
			     k, o->root);
			goto done;
		}
	}
	rc = 0;
done:
	buf_free(&have);
	return rc;
}

static int
do_import(struct opts *o)
{
	struct tuf_trust t;
	struct source src;
	struct imp_ctx c;
	struct buf file, pinned, err, b;
	uint8_t *data = NULL;
	size_t dn;
	json_error_t je;
	json_t *doc = NULL, *meta, *arts, *v;
	struct stage st = {NULL, NULL, 0, 0};
	const char *k;
	char dir[PATH_MAX];
	long long base;
	int rc = 1, fed = 0, r, made_repo = 0, made_targets = 0;

	if (need(o->in, "--in") == -1 || need(o->repo, "--repo") == -1)
		return 2;
	memset(&t, 0, sizeof(t));
	buf_init(&file, (size_t)UPD_MAX_EXPORT);
	buf_init(&err, 4096);
	buf_init(&b, TUF_MAX_TARGETS);
	buf_init(&pinned, TUF_MAX_ROOT);
	c.used = json_object();
	if (load_pinned(o->root, &pinned) == -1)
		goto done;
	if (tls_read_file(o->in, (size_t)UPD_MAX_EXPORT, &file, &err) == -1) {
		uerr("%s", buf_cstr(&err));
		goto done;
	}
	if ((doc = json_loadb((const char *)file.data, file.len,
	                      JSON_REJECT_DUPLICATES, &je)) == NULL) {
		uerr("%s is not an export file: %s", o->in, je.text);
		goto done;
	}
	buf_free(&file);
	meta = json_object_get(doc, "metadata");
	arts = json_object_get(doc, "artifacts");
	if (!json_is_object(meta) || !json_is_object(arts) ||
	    json_integer_value(json_object_get(doc, "format_version")) != 1 ||
	    strcmp(json_string_value(json_object_get(doc, "format")) ?: "",
	           UPD_FORMAT) != 0) {
		uerr("%s is not a %s file (version 1)", o->in, UPD_FORMAT);
		goto done;
	}
	/* Names first: nothing the export carries may name a path. */
	json_object_foreach(meta, k, v)
	{
		if (!is_meta_name(k) || !json_is_string(v)) {
			uerr("refused: metadata entry '%.80s' in the export "
			     "(only N.root.json, timestamp.json, "
			     "snapshot.json, targets.json; no paths)",
			     k);
			goto done;
		}
	}
	json_object_foreach(arts, k, v)
	{
		if (!is_sha_name(k)) {
			uerr("refused: artifact name '%.80s' in the export is "
			     "not a SHA-256 (a path such as '../x' or '/x' "
			     "is never written)",
			     k);
			goto done;
		}
	}
	/* What the destination already trusts is the floor: an older
	 * export is a rollback. --root only starts a first import. */
	if ((r = read_in(o->repo, "1.root.json", TUF_MAX_ROOT, &b)) == -1)
		goto done;
	if (r == 0) {
		struct source here = {o->repo, NULL};
		long long saved = opt_now;

		if (o->root != NULL)
			fprintf(stderr,
			        "vigilctl: update import: note: %s already "
			        "holds a repository; it is the starting point, "
			        "not --root\n",
			        o->repo);
		/* Its timestamp has likely expired since the last import:
		 * only its versions matter here. */
		opt_now = 0;
		r = verify_source(&here, NULL, &t, 0, &err);
		opt_now = saved;
		if (r == -1) {
			uerr("the repository in %s does not verify; fix or "
			     "remove it first",
			     o->repo);
			goto done;
		}
		fed = 1;
	} else if (o->root == NULL) {
		uerr("%s holds no trusted root: give the root this site "
		     "trusts with --root FILE (the 1.root.json you received "
		     "with the keys' fingerprints)",
		     o->repo);
		goto done;
	}
	/* The root version trusted before this import: export roots at or
	 * below it are never verified by the chain walk. */
	base = fed ? t.meta[TUF_ROOT].version : root_version(&pinned);
	src.dir = NULL;
	src.exp = doc;
	src.file = o->in;
	buf_reset(&err);
	if (verify_source(&src, !fed ? &pinned : NULL, &t, fed, &err) == -1) {
		uerr("%s refused; nothing was written", o->in);
		goto done;
	}
	c.arts = arts;
	c.err = &err;
	c.bad = 0;
	tuf_target_each(&t, import_check, &c);
	if (c.bad) {
		uerr("%s refused; nothing was written", o->in);
		goto done;
	}
	json_object_foreach(arts, k, v)
	{
		if (json_object_get(c.used, k) == NULL) {
			uerr("refused: artifact %.64s is in the export but "
			     "not in the signed targets",
			     k);
			goto done;
		}
	}
	/* Roots the chain walk did not verify (at or below the trusted
	 * version) are never written, and must be what this site holds. */
	if (import_roots_check(o, meta, fed, base, t.meta[TUF_ROOT].version,
	                       &pinned) == -1) {
		uerr("%s refused; nothing was written", o->in);
		goto done;
	}
	/* Everything verified. Every file goes under a temporary name
	 * first (fsynced); only when all are written are they renamed into
	 * place: artifacts, new roots, root.json, targets, snapshot,
	 * timestamp last. */
	made_repo = access(o->repo, F_OK) != 0;
	if (mkdir_ok(o->repo, 0755) == -1)
		goto done;
	path_of(dir, sizeof(dir), o->repo, "targets");
	made_targets = access(dir, F_OK) != 0;
	if (mkdir_ok(dir, 0755) == -1)
		goto failed;
	json_object_foreach(arts, k, v)
	{
		free(data);
		if (unb64(json_string_value(v), json_string_length(v), &data,
		          &dn) == -1 ||
		    stage_write(&st, dir, k, data, dn, 0644) == -1)
			goto failed;
	}
	{
		long long top = t.meta[TUF_ROOT].version;
		char name[64];

		/* A first import: the roots that lead to the pin
		 * (chain_to_pin), then the pinned root itself. */
		for (long long n = 1; !fed && n < base; n++) {
			snprintf(name, sizeof(name), "%lld.root.json", n);
			v = json_object_get(meta, name);
			if (stage_write(&st, o->repo, name,
			                json_string_value(v),
			                json_string_length(v), 0644) == -1)
				goto failed;
		}
		if (!fed) {
			snprintf(name, sizeof(name), "%lld.root.json", base);
			if (stage_write(&st, o->repo, name, pinned.data,
			                pinned.len, 0644) == -1)
				goto failed;
		}
		for (long long n = base + 1; n <= top; n++) {
			snprintf(name, sizeof(name), "%lld.root.json", n);
			v = json_object_get(meta, name);
			if (stage_write(&st, o->repo, name,
			                json_string_value(v),
			                json_string_length(v), 0644) == -1)
				goto failed;
		}
		if (!fed || top > base) {
			snprintf(name, sizeof(name), "%lld.root.json", top);
			v = json_object_get(meta, name);
			if ((v != NULL &&
			     stage_write(&st, o->repo, "root.json",
			                 json_string_value(v),
			                 json_string_length(v), 0644) == -1) ||
			    (v == NULL &&
			     stage_write(&st, o->repo, "root.json", pinned.data,
			                 pinned.len, 0644) == -1))
				goto failed;
		}
	}
	{
		static const char *const files[] = {
		    "targets.json", "snapshot.json", "timestamp.json"};

		for (int i = 0; i < 3; i++) {
			v = json_object_get(meta, files[i]);
			if (stage_write(&st, o->repo, files[i],
			                json_string_value(v),
			                json_string_length(v), 0644) == -1)
				goto failed;
		}
	}
	if (stage_commit(&st) == -1) {
		uerr("%s: the import was cut short while renaming files into "
		     "place; run the same import again",
		     o->repo);
		goto done;
	}
	printf("Imported %s into %s: root v%lld, timestamp v%lld, snapshot "
	       "v%lld, targets v%lld, %zu artifact%s, all verified.\n",
	       o->in, o->repo, t.meta[TUF_ROOT].version,
	       t.meta[TUF_TIMESTAMP].version, t.meta[TUF_SNAPSHOT].version,
	       t.meta[TUF_TARGETS].version, json_object_size(arts),
	       json_object_size(arts) == 1 ? "" : "s");
	rc = 0;
	goto done;
failed:
	stage_abort(&st);
	if (made_targets)
		rmdir(dir);
	if (made_repo)
		rmdir(o->repo);
	uerr("writing into %s failed (temporary files removed): nothing was "
	     "changed there; %s is still as it was before this import",
	     o->repo, o->repo);
done:
	stage_free(&st);
	tuf_trust_free(&t);
	json_decref(doc);
	json_decref(c.used);
	buf_free(&file);
	buf_free(&pinned);
	buf_free(&err);
	free(data);
	buf_free(&b);
	return rc;
}

/* vigilctl update mirror [--refresh]: the center's mirror, by the admin
 * API (the only subcommand that talks to a center). */
static int
mirror(int argc, char **argv)
{
	json_t *j, *s, *r;
	const char *role;
	size_t i;

	cmd = "mirror";
	if (argc == 2 && strcmp(argv[1], "--refresh") == 0) {
		if ((j = ctl_api("POST", "/api/v1/updates/refresh", NULL)) ==
		    NULL)
			return 1;
		json_decref(j);
		printf("refresh asked for; see 'vigilctl update mirror'\n");
		return 0;
	}
	if (argc != 1) {
		usage(stderr);
		return 2;
	}
	if ((j = ctl_api("GET", "/api/v1/updates", NULL)) == NULL)
		return 1;
	if (ctl.json) {
		ctl_print_json(j);
		json_decref(j);
		return 0;
	}
	if (!json_is_true(json_object_get(j, "enabled"))) {
		printf("no update mirror: [updates] root is not set in "
		       "vigild.conf\n");
		json_decref(j);
		return 0;
	}
	printf("mode:      %s %s\n",
	       json_string_value(json_object_get(j, "mode")),
	       json_string_value(json_object_get(j, "upstream"))
	           ?: json_string_value(json_object_get(j, "dir")));
	s = json_object_get(j, "served");
	if (!json_is_object(s))
		printf("served:    nothing verified yet\n");
	else
		json_object_foreach(json_object_get(s, "roles"), role, r)
		    printf("%-10s v%lld, expires %s\n", role,
		           (long long)json_integer_value(
		               json_object_get(r, "version")),
		           json_string_value(json_object_get(r, "expires")));
	json_array_foreach(json_object_get(s, "targets"), i, r)
	    printf("target     %s (%s %s)\n",
	           json_string_value(json_object_get(r, "name")),
	           json_string_value(json_object_get(r, "kind")) ?: "-",
	           json_string_value(json_object_get(r, "version")) ?: "-");
	if (json_is_string(json_object_get(j, "last_error")))
		printf("refused:   %s\n",
		       json_string_value(json_object_get(j, "last_error")));
	json_array_foreach(
	    json_object_get(json_object_get(j, "intel"), "imported"), i, r)
	    printf("intel      %s imported into vigil-inteld's feed %s\n",
	           json_string_value(json_object_get(r, "name")),
	           json_string_value(json_object_get(r, "feed")));
	if (json_is_string(
	        json_object_get(json_object_get(j, "intel"), "error")))
		printf("intel:     %s\n",
		       json_string_value(json_object_get(
		           json_object_get(j, "intel"), "error")));
	if (json_integer_value(json_object_get(j, "agents_without_root")) > 0)
		printf("agents:    %lld without a pinned update root take no "
		       "updates ('vigilctl agent list': UPDATES \"no root\"; "
		       "vigil-agent pin-root on each)\n",
		       (long long)json_integer_value(
		           json_object_get(j, "agents_without_root")));
	json_decref(j);
	return 0;
}

/* vigilctl update rollout start|list|stop (admin API). */
static int
rollout(int argc, char **argv)
{
	static const char *const cols[] = {
	    "id",       "version", "platform", "percent", "state",  "chosen",
	    "upgraded", "failed",  "refused",  "pending", "reason", NULL};
	static const char *const hdrs[] = {"ID",       "VERSION",    "PLATFORM",
	                                   "PERCENT",  "STATE",      "CHOSEN",
	                                   "UPGRADED", "FAILED",     "REFUSED",
	                                   "PENDING",  "WHY HALTED", NULL};
	json_t *j, *body, *labels;
	int i;

	cmd = "rollout";
	if (argc == 2 && strcmp(argv[1], "list") == 0) {
		if ((j = ctl_api("GET", "/api/v1/rollouts", NULL)) == NULL)
			return 1;
		if (ctl.json)
			ctl_print_json(json_object_get(j, "items"));
		else
			ctl_table(json_object_get(j, "items"), cols, hdrs);
		json_decref(j);
		return 0;
	}
	if (argc == 3 && strcmp(argv[1], "stop") == 0) {
		struct buf p;

		buf_init(&p, 256);
		buf_puts(&p, "/api/v1/rollouts/");
		httpc_urlenc(&p, argv[2]);
		j = ctl_api("DELETE", buf_cstr(&p), NULL);
		buf_free(&p);
		if (j == NULL)
			return 1;
		printf("rollout %s stopped\n", argv[2]);
		json_decref(j);
		return 0;
	}
	if (argc < 3 || strcmp(argv[1], "start") != 0) {
		usage(stderr);
		return 2;
	}
	labels = json_object();
	body = json_pack("{s:s, s:o}", "target", argv[2], "labels", labels);
	for (i = 3; i < argc; i++) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		long long n;

		if (v == NULL) {
			uerr("%s needs a value", o);
			json_decref(body);
			return 2;
		}
		i++;
		if (strcmp(o, "--label") == 0) {
			const char *eq = strchr(v, '=');

			if (eq == NULL || eq == v) {
				uerr("--label '%s' is not KEY=VALUE", v);
				json_decref(body);
				return 2;
			}
			{
				char key[128];

				snprintf(key, sizeof(key), "%.*s",
				         (int)(eq - v), v);
				json_object_set_new(labels, key,
				                    json_string(eq + 1));
			}
			continue;
		}
		if (num(o, v, 0, 86400, &n) != 0) {
			json_decref(body);
			return 2;
		}
		if (strcmp(o, "--percent") == 0)
			json_object_set_new(body, "percent", json_integer(n));
		else if (strcmp(o, "--max-failure-rate") == 0)
			json_object_set_new(body, "max_failure_rate",
			                    json_integer(n));
		else if (strcmp(o, "--probation") == 0)
			json_object_set_new(body, "probation", json_integer(n));
		else {
			uerr("unknown option '%s'", o);
			json_decref(body);
			return 2;
		}
	}
	j = ctl_api("POST", "/api/v1/rollouts", body);
	json_decref(body);
	if (j == NULL)
		return 1;
	if (ctl.json)
		ctl_print_json(j);
	else
		printf("rollout %s: %s version %s (%s)\n",
		       json_string_value(json_object_get(j, "id")), argv[2],
		       json_string_value(json_object_get(j, "version")),
		       json_string_value(json_object_get(j, "platform")));
	json_decref(j);
	return 0;
}

int
ctl_update(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(struct opts *);
	} subs[] = {
	    {"keygen", do_keygen},   {"root", do_root},
	    {"publish", do_publish}, {"sign", do_sign},
	    {"verify", do_verify},   {"status", do_status},
	    {"export", do_export},   {"import", do_import},
	};
	struct opts o;
	int rc;

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "mirror") == 0)
		return mirror(argc - 1, argv + 1);
	if (strcmp(argv[1], "rollout") == 0)
		return rollout(argc - 1, argv + 1);
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		if (strcmp(argv[1], subs[i].name) != 0)
			continue;
		cmd = subs[i].name;
		optind = 0;
		if ((rc = parse(argc - 1, argv + 1, &o)) != 0)
			return rc == 1 ? 0 : 2;
		if (o.file != NULL && subs[i].fn != do_publish) {
			uerr("unexpected argument '%s'", o.file);
			return 2;
		}
		return subs[i].fn(&o);
	}
	fprintf(stderr, "vigilctl: update: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
