/*
 * scan: scanning one file or buffer against a bundle.
 *
 * A file is read once, with pread into the context's buffer (at most
 * max_size bytes, so memory stays bounded), and everything works on that
 * copy: the digests, the hash IOC lookups, YARA and the first bytes. A read
 * rather than an mmap because a file truncated while mapped raises SIGBUS
 * in whoever touches the lost pages, here libyara; a read just returns
 * fewer bytes (SCAN_RES_CHANGED). The copy costs about what mmap's page
 * faults cost (see bench/scan).
 *
 * Digests are computed when something needs them: the types the hash IOCs
 * use, what the caller asked for (opts.hashes), and all three for a file
 * with a finding, since the report names the file by its hashes. A clean
 * file under a YARA-only bundle costs a read and a YARA scan, as with the
 * yara tool.
 */
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <yara.h>

#include "buf.h"
#include "ioc.h"
#include "log.h"
#include "scan.h"
#include "scan_int.h"

#define BUF_ALIGN (64u * 1024) /* buffer sizes are multiples of this */
#define BUF_KEEP  (8u << 20)   /* bigger buffers are freed after a file */
#define READ_MAX  (8u << 20)   /* bytes per pread */

struct scan_ctx {
	struct scan_bundle *b;
	struct scan_opts o;
	YR_SCANNER *yr;
	EVP_MD_CTX *md;
	uint8_t *buf;
	size_t cap;
	/* while scanning */
	struct scan_result *r;
	size_t fcap;
	int nomem;
};

void
scan_opts_default(struct scan_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->max_size = 64u << 20;
	o->timeout = 60;
	o->alert = 80;
	o->warning = 60;
	o->notice = 40;
	o->yara_score = 75;
	o->max_strings = 8;
	o->max_data = 64;
	o->hashes = 0;
}

int
scan_ctx_new(struct scan_bundle *b, const struct scan_opts *o,
             struct scan_ctx **out)
{
	struct scan_ctx *c;

	if (scan_init() == -1)
		return -ENOSYS;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return -ENOMEM;
	if (o != NULL)
		c->o = *o;
	else
		scan_opts_default(&c->o);
	if (c->o.notice < 1 || c->o.notice > c->o.warning ||
	    c->o.warning > c->o.alert || c->o.alert > 100 ||
	    c->o.max_size == 0 || c->o.max_size > SIZE_MAX / 4 ||
	    c->o.timeout < 0 || c->o.yara_score < 0 || c->o.yara_score > 100 ||
	    c->o.max_data > (1u << 20) || (c->o.hashes & ~SCAN_HASH_ALL) != 0) {
		free(c);
		return -EINVAL;
	}
	if ((c->md = EVP_MD_CTX_new()) == NULL)
		goto nomem;
	if (b->rules != NULL) {
		if (yr_scanner_create(b->rules, &c->yr) != ERROR_SUCCESS)
			goto nomem;
		yr_scanner_set_timeout(c->yr, c->o.timeout);
		yr_scanner_set_flags(
		    c->yr, SCAN_FLAGS_REPORT_RULES_MATCHING |
		               (c->o.no_trycatch ? SCAN_FLAGS_NO_TRYCATCH : 0));
	}
	c->b = scan_bundle_ref(b);
	*out = c;
	return 0;
nomem:
	EVP_MD_CTX_free(c->md);
	free(c);
	return -ENOMEM;
}

void
scan_ctx_free(struct scan_ctx *c)
{
	if (c == NULL)
		return;
	if (c->yr != NULL)
		yr_scanner_destroy(c->yr);
	EVP_MD_CTX_free(c->md);
	free(c->buf);
	scan_bundle_free(c->b);
	free(c);
}

const struct scan_opts *
scan_ctx_opts(const struct scan_ctx *c)
{
	return &c->o;
}

/* ---- the subject ------------------------------------------------------ */

struct magic {
	uint16_t off;
	uint8_t len;
	const char *sig;
	const char *name;
};

/* Longest signatures first where one is a prefix of another. */
static const struct magic magics[] = {
    {0, 4,
     "\x7f"
     "ELF",
     "ELF"},
    {0, 2, "MZ", "EXE"},
    {0, 4, "\xfe\xed\xfa\xce", "MACHO"},
    {0, 4, "\xfe\xed\xfa\xcf", "MACHO"},
    {0, 4, "\xce\xfa\xed\xfe", "MACHO"},
    {0, 4, "\xcf\xfa\xed\xfe", "MACHO"},
    {0, 4, "\xca\xfe\xba\xbe", "CAFEBABE"}, /* Java class or fat Mach-O */
    {0, 4, "dex\n", "DEX"},
    {0, 4, "\0asm", "WASM"},
    {0, 8, "\x4c\0\0\0\x01\x14\x02\0", "LNK"},
    {0, 4, "%PDF", "PDF"},
    {0, 5, "{\\rtf", "RTF"},
    {0, 8, "\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "OLE"},
    {0, 4, "PK\x03\x04", "ZIP"},
    {0, 2, "\x1f\x8b", "GZIP"},
    {0, 3, "BZh", "BZIP2"},
    {0, 6,
     "\xfd"
     "7zXZ\0",
     "XZ"},
    {0, 4, "\x28\xb5\x2f\xfd", "ZSTD"},
    {0, 6, "7z\xbc\xaf\x27\x1c", "7Z"},
    {0, 6, "Rar!\x1a\x07", "RAR"},
    {0, 4, "MSCF", "CAB"},
    {257, 5, "ustar", "TAR"},
    {0, 16, "SQLite format 3\0", "SQLITE"},
    {0, 8, "\x89PNG\r\n\x1a\n", "PNG"},
    {0, 3, "\xff\xd8\xff", "JPEG"},
    {0, 4, "GIF8", "GIF"},
    {0, 5, "<?php", "PHP"},
    {0, 2, "#!", "SCRIPT"},
    {0, 10, "-----BEGIN", "PEM"},
};

static const char *
magic_of(const uint8_t *p, size_t len)
{
	size_t i;

	for (i = 0; i < sizeof(magics) / sizeof(magics[0]); i++) {
		const struct magic *m = &magics[i];

		if (len >= (size_t)m->off + m->len &&
		    memcmp(p + m->off, m->sig, m->len) == 0)
			return m->name;
	}
	return "";
}

/* ".exe" from "/a/b.c/x.exe"; "" for "x", ".bashrc" or "a/b." */
static const char *
extension_of(const char *path)
{
	const char *base = strrchr(path, '/'), *dot;

	base = base != NULL ? base + 1 : path;
	dot = strrchr(base, '.');
	if (dot == NULL || dot == base || dot[1] == '\0')
		return "";
	return dot;
}

static const char *
basename_of(const char *path)
{
	const char *base = strrchr(path, '/');

	return base != NULL ? base + 1 : path;
}

static int
result_init(struct scan_result *r, const char *path, const struct stat *st,
            const struct scan_bundle *b)
{
	memset(r, 0, sizeof(*r));
	r->magic = "";
	r->version = b->version;
	if (path == NULL)
		path = "";
	if ((r->path = strdup(path)) == NULL ||
	    (r->extension = strdup(extension_of(path))) == NULL) {
		free(r->path);
		r->path = NULL;
		return -ENOMEM;
	}
	if (st != NULL) {
		r->exists = 1;
		r->size = (uint64_t)st->st_size;
		r->mtime = st->st_mtim;
		r->ctime = st->st_ctim;
		r->atime = st->st_atim;
	}
	return 0;
}

/* ---- findings --------------------------------------------------------- */

static struct scan_finding *
finding_new(struct scan_ctx *c, enum scan_kind kind, int score)
{
	struct scan_result *r = c->r;
	struct scan_finding *f;

	if (r->nfindings == c->fcap) {
		size_t ncap = c->fcap ? c->fcap * 2 : 4;

		if (ncap > SIZE_MAX / sizeof(*f) ||
		    (f = realloc(r->findings, ncap * sizeof(*f))) == NULL) {
			c->nomem = 1;
			return NULL;
		}
		r->findings = f;
		c->fcap = ncap;
	}
	f = &r->findings[r->nfindings++];
	memset(f, 0, sizeof(*f));
	f->kind = kind;
	f->score = score;
	return f;
}

static char *
xstrdup(struct scan_ctx *c, const char *s)
{
	char *d;

	if (s == NULL)
		return NULL;
	if ((d = strdup(s)) == NULL)
		c->nomem = 1;
	return d;
}

static struct scan_string *
string_new(struct scan_ctx *c, struct scan_finding *f, const char *field,
           uint64_t offset, const uint8_t *data, size_t len, size_t mlen)
{
	struct scan_string *s;
	/* an IOC finding always shows what matched, even with max 0 */
	size_t limit = c->o.max_strings > 0 ? c->o.max_strings : 1;

	if (f->matched == NULL &&
	    (f->matched = calloc(limit, sizeof(*s))) == NULL) {
		c->nomem = 1;
		return NULL;
	}
	if (f->nmatched >= limit) {
		f->more_matches = 1;
		return NULL;
	}
	s = &f->matched[f->nmatched++];
	s->field = field;
	s->offset = offset;
	s->match_len = mlen > UINT32_MAX ? UINT32_MAX : (uint32_t)mlen;
	if (len > c->o.max_data)
		len = c->o.max_data;
	if ((s->data = malloc(len + 1)) == NULL) {
		c->nomem = 1;
		return s;
	}
	if (len > 0)
		memcpy(s->data, data, len);
	s->data[len] = '\0';
	s->len = len;
	return s;
}

static int
parse_score(const YR_META *m, int *score)
{
	long long v;

	if (m->type == META_TYPE_INTEGER)
		v = m->integer;
	else if (m->type != META_TYPE_STRING ||
	         str_to_ll(m->string, -1000000, 1000000, &v) == -1)
		return -1;
	*score = v < 0 ? 0 : v > 100 ? 100 : (int)v;
	return 0;
}

static void
yara_finding(struct scan_ctx *c, YR_SCAN_CONTEXT *yctx, YR_RULE *rule)
{
	struct scan_finding *f;
	const YR_META *m;
	const YR_STRING *s;
	const char *tag;
	size_t n;

	if ((f = finding_new(c, SCAN_KIND_YARA, c->o.yara_score)) == NULL)
		return;
	f->rule = xstrdup(c, rule->identifier);
	n = 0;
	yr_rule_tags_foreach(rule, tag)
	{
		n++;
	}
	if (n > 0 && (f->tags = calloc(n, sizeof(*f->tags))) == NULL) {
		c->nomem = 1;
		return;
	}
	yr_rule_tags_foreach(rule, tag)
	{
		f->tags[f->ntags++] = xstrdup(c, tag);
	}
	n = 0;
	yr_rule_metas_foreach(rule, m)
	{
		n++;
	}
	if (n > 0 && (f->meta = calloc(n, sizeof(*f->meta))) == NULL) {
		c->nomem = 1;
		return;
	}
	yr_rule_metas_foreach(rule, m)
	{
		struct scan_meta *sm = &f->meta[f->nmeta++];
		char num[32];

		sm->key = xstrdup(c, m->identifier);
		if (m->type == META_TYPE_STRING)
			sm->value = xstrdup(c, m->string);
		else if (m->type == META_TYPE_BOOLEAN)
			sm->value = xstrdup(c, m->integer ? "true" : "false");
		else {
			snprintf(num, sizeof(num), "%lld",
			         (long long)m->integer);
			sm->value = xstrdup(c, num);
		}
		if (strcasecmp(m->identifier, "score") == 0)
			(void)parse_score(m, &f->score);
		else if (m->type != META_TYPE_STRING)
			continue;
		else if (strcasecmp(m->identifier, "description") == 0 &&
		         f->description == NULL)
			f->description = xstrdup(c, m->string);
		else if (strcasecmp(m->identifier, "reference") == 0 &&
		         f->reference == NULL)
			f->reference = xstrdup(c, m->string);
		else if (strcasecmp(m->identifier, "author") == 0 &&
		         f->author == NULL)
			f->author = xstrdup(c, m->string);
	}
	yr_rule_strings_foreach(rule, s)
	{
		/*
		 * libyara's match lists live in its notebook allocator, which
		 * does not align them (UBSan: misaligned YR_MATCH), so each
		 * match is copied out with memcpy instead of being read in
		 * place as yr_string_matches_foreach would.
		 */
		const void *mp = yctx->matches[s->idx].head;

		while (mp != NULL && !f->more_matches && !c->nomem) {
			struct scan_string *ss;
			YR_MATCH match;

			memcpy(&match, mp, sizeof(match));
			mp = match.next;
			if (match.is_private)
				continue;
			ss = string_new(c, f, "content",
			                (uint64_t)(match.base + match.offset),
			                match.data, (size_t)match.data_length,
			                (size_t)match.match_length);
			if (ss != NULL)
				ss->identifier = xstrdup(c, s->identifier);
		}
		if (f->more_matches || c->nomem)
			break;
	}
}

static int
yara_cb(YR_SCAN_CONTEXT *yctx, int msg, void *data, void *arg)
{
	struct scan_ctx *c = arg;

	switch (msg) {
	case CALLBACK_MSG_RULE_MATCHING:
		yara_finding(c, yctx, data);
		return c->nomem ? CALLBACK_ERROR : CALLBACK_CONTINUE;
	case CALLBACK_MSG_TOO_MANY_MATCHES:
		log_debug("scan: %s: string %s has too many matches",
		          c->r->path, ((YR_STRING *)data)->identifier);
		return CALLBACK_CONTINUE;
	default:
		return CALLBACK_CONTINUE;
	}
}

static void
ioc_finding(struct scan_ctx *c, size_t idx, const char *field, uint64_t offset,
            const char *data, size_t len)
{
	const struct ioc *e = &c->b->iocs.v[idx];
	struct scan_finding *f;
	char src[512];

	if ((f = finding_new(c,
	                     e->type == IOC_FILENAME ? SCAN_KIND_FILENAME
	                                             : SCAN_KIND_HASH,
	                     e->score)) == NULL)
		return;
	bundle_ioc_source(c->b, idx, src, sizeof(src));
	f->source = xstrdup(c, src);
	f->rule = xstrdup(c, e->type == IOC_FILENAME ? e->pattern : data);
	if (e->desc[0] != '\0')
		f->description = xstrdup(c, e->desc);
	(void)string_new(c, f, field, offset, (const uint8_t *)data, len, len);
}

static void
filename_iocs(struct scan_ctx *c, const char *path)
{
	const struct scan_bundle *b = c->b;
	regmatch_t m;
	size_t i;

	for (i = 0; i < b->nfname && !c->nomem; i++) {
		const struct ioc *e = &b->iocs.v[b->fname[i]];

		if (regexec(e->re, path, 1, &m, 0) != 0)
			continue;
		if (m.rm_so < 0 || m.rm_eo < m.rm_so)
			m.rm_so = m.rm_eo = 0;
		ioc_finding(c, b->fname[i], "path", (uint64_t)m.rm_so,
		            path + m.rm_so, (size_t)(m.rm_eo - m.rm_so));
	}
}

/* Digests of p not yet in r->hashes among want. */
static int
digests(struct scan_ctx *c, const uint8_t *p, size_t len, unsigned want)
{
	struct scan_result *r = c->r;
	char *hex[IOC_NHASH] = {r->md5, r->sha1, r->sha256};
	uint8_t d[EVP_MAX_MD_SIZE];
	unsigned int dl;
	int t;

	for (t = 0; t < IOC_NHASH; t++) {
		if (!(want & (1u << t)) || (r->hashes & (1u << t)))
			continue;
		if (EVP_DigestInit_ex(c->md, scan_md[t], NULL) != 1 ||
		    (len > 0 && EVP_DigestUpdate(c->md, p, len) != 1) ||
		    EVP_DigestFinal_ex(c->md, d, &dl) != 1 ||
		    dl != ioc_digest_len((enum ioc_type)t))
			return -1;
		hex_encode(d, dl, hex[t]);
		r->hashes |= 1u << t;
	}
	return 0;
}

static void
hash_iocs(struct scan_ctx *c)
{
	struct scan_result *r = c->r;
	const char *hex[IOC_NHASH] = {r->md5, r->sha1, r->sha256};
	uint8_t d[32];
	size_t pos, idx, k, dl;
	int t;

	for (t = 0; t < IOC_NHASH; t++) {
		if (!(c->b->hash_types & (1u << t)) || !(r->hashes & (1u << t)))
			continue;
		dl = ioc_digest_len((enum ioc_type)t);
		for (k = 0; k < dl; k++) {
			unsigned hi = (unsigned)hex[t][2 * k],
			         lo = (unsigned)hex[t][2 * k + 1];

			hi = hi <= '9' ? hi - '0' : hi - 'a' + 10;
			lo = lo <= '9' ? lo - '0' : lo - 'a' + 10;
			d[k] = (uint8_t)(hi << 4 | lo);
		}
		pos = SIZE_MAX;
		while ((idx = bundle_hash_next(c->b, (enum ioc_type)t, d,
		                               &pos)) != 0 &&
		       !c->nomem)
			ioc_finding(c, idx - 1, ioc_type_name((enum ioc_type)t),
			            0, hex[t], 2 * dl);
	}
}

static int
finding_cmp(const void *a, const void *b)
{
	const struct scan_finding *x = a, *y = b;

	if (x->score != y->score)
		return x->score > y->score ? -1 : 1;
	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	return strcmp(x->rule != NULL ? x->rule : "",
	              y->rule != NULL ? y->rule : "");
}

static void
finish(struct scan_ctx *c)
{
	struct scan_result *r = c->r;
	int scores[64];
	size_t i, n;

	if (r->nfindings == 0)
		return;
	qsort(r->findings, r->nfindings, sizeof(*r->findings), finding_cmp);
	/* The top 64 decide; the rest could only add a rounding step. */
	n = r->nfindings < 64 ? r->nfindings : 64;
	for (i = 0; i < n; i++)
		scores[i] = r->findings[i].score;
	r->score = scan_score_combine(scores, n);
	r->level = scan_level_of(r->score, &c->o);
	if (r->level == SCAN_LEVEL_NONE)
		r->level = SCAN_LEVEL_INFO; /* findings, all scored 0 */
}

/*
 * Everything after the read: p/len is the content (r->size and the stat
 * data are already set). Returns 0 or -ENOMEM.
 */
static int
scan_content(struct scan_ctx *c, const uint8_t *p, size_t len)
{
	struct scan_result *r = c->r;
	int rc;

	r->scanned = len;
	r->nfirst = len < SCAN_FIRST_BYTES ? len : SCAN_FIRST_BYTES;
	if (r->nfirst > 0)
		memcpy(r->first, p, r->nfirst);
	r->magic = magic_of(p, len);
	if (digests(c, p, len, c->o.hashes | c->b->hash_types) == -1)
		return -ENOMEM;
	hash_iocs(c);
	filename_iocs(c, r->path);
	if (c->yr != NULL && !c->nomem) {
		const char *ext = r->extension;

		if (yr_scanner_define_string_variable(c->yr, SCAN_EXT_FILENAME,
		                                      basename_of(r->path)) ||
		    yr_scanner_define_string_variable(c->yr, SCAN_EXT_FILEPATH,
		                                      r->path) ||
		    yr_scanner_define_string_variable(c->yr, SCAN_EXT_EXTENSION,
		                                      ext) ||
		    yr_scanner_define_string_variable(c->yr, SCAN_EXT_FILETYPE,
		                                      r->magic))
			return -ENOMEM;
		yr_scanner_set_callback(c->yr, yara_cb, c);
		/* libyara wants a non-NULL buffer even when empty */
		rc = yr_scanner_scan_mem(
		    c->yr, len > 0 ? p : (const uint8_t *)"", len);
		if (rc != ERROR_SUCCESS && !c->nomem) {
			r->flags |= SCAN_RES_YARA_ERR;
			r->yara_error = rc;
		}
	}
	if (c->nomem)
		return -ENOMEM;
	if (r->nfindings > 0 && digests(c, p, len, SCAN_HASH_ALL) == -1)
		return -ENOMEM;
	finish(c);
	return 0;
}

static int
buf_reserve(struct scan_ctx *c, size_t want)
{
	size_t ncap, limit = (size_t)c->o.max_size + 1;

	if (want <= c->cap)
		return 0;
	if (want > SIZE_MAX - BUF_ALIGN)
		return -ENOMEM;
	/* doubling (up to what max_size needs): files that grow a little
	 * one after the other do not each cost a new buffer */
	ncap = c->cap * 2 < limit ? c->cap * 2 : limit;
	if (ncap < want)
		ncap = want;
	ncap = (ncap + BUF_ALIGN - 1) / BUF_ALIGN * BUF_ALIGN;
	/* free, then malloc: a realloc would copy bytes nobody needs */
	free(c->buf);
	c->cap = 0;
	if ((c->buf = malloc(ncap)) == NULL) {
		c->buf = NULL;
		return -ENOMEM;
	}
	c->cap = ncap;
	return 0;
}

/*
 * Reads the whole file (at most max_size bytes, plus one to notice growth)
 * into c->buf. The size seen by fstat is a hint only: the file may shrink
 * or grow while read, which is reported, never trusted.
 */
static int
read_all(struct scan_ctx *c, int fd, uint64_t hint, size_t *outlen)
{
	size_t max = (size_t)c->o.max_size, len = 0, want;
	ssize_t n;
	int rc;

	want = hint < max ? (size_t)hint + 1 : max + 1;
	if ((rc = buf_reserve(c, want)) < 0)
		return rc;
	for (;;) {
		if (len == c->cap) {
			uint8_t *p;
			size_t ncap =
			    c->cap * 2 > max + 1 ? max + 1 : c->cap * 2;

			if (len > max)
				break;
			if ((p = realloc(c->buf, ncap)) == NULL)
				return -ENOMEM;
			c->buf = p;
			c->cap = ncap;
		}
		n = pread(fd, c->buf + len,
		          c->cap - len > READ_MAX ? READ_MAX : c->cap - len,
		          (off_t)len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -errno;
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > max) {
		c->r->flags |= SCAN_RES_TRUNCATED | SCAN_RES_CHANGED;
		len = max;
	} else if (len != hint)
		c->r->flags |= SCAN_RES_CHANGED;
	*outlen = len;
	return 0;
}

static void
scan_end(struct scan_ctx *c)
{
	c->r = NULL;
	c->fcap = 0;
	c->nomem = 0;
}

/*
 * The read buffer stays as large as the largest file read so far, so a walk
 * over big files does not pay for fresh zeroed pages on each one (a 50 MB
 * file costs ~12800 page faults); walk_run trims it when it is done.
 */
void
scan_ctx_trim(struct scan_ctx *c)
{
	if (c->cap > BUF_KEEP) {
		free(c->buf);
		c->buf = NULL;
		c->cap = 0;
	}
}

int
scan_fd(struct scan_ctx *c, int fd, const char *path, const struct stat *st,
        struct scan_result *r)
{
	struct stat sb;
	size_t len = 0;
	int rc;

	if (st == NULL) {
		if (fstat(fd, &sb) == -1) {
			rc = -errno;
			if (result_init(r, path, NULL, c->b) < 0)
				return -ENOMEM;
			return rc;
		}
		st = &sb;
	}
	if (result_init(r, path, st, c->b) < 0)
		return -ENOMEM;
	if (!S_ISREG(st->st_mode))
		return -EINVAL;
	c->r = r;
	if ((uint64_t)st->st_size > c->o.max_size) {
		r->flags |= SCAN_RES_NOT_READ;
		filename_iocs(c, r->path);
		rc = c->nomem ? -ENOMEM : 0;
		if (rc == 0)
			finish(c);
	} else if ((rc = read_all(c, fd, (uint64_t)st->st_size, &len)) == 0)
		rc = scan_content(c, c->buf, len);
	scan_end(c);
	return rc;
}

int
scan_file(struct scan_ctx *c, const char *path, struct scan_result *r)
{
	int fd, rc,
	    flags = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY;

	/* O_NOATIME keeps the evidence (atime) as it was; only the owner or
	 * CAP_FOWNER may ask for it. */
	fd = open(path, flags | O_NOATIME);
	if (fd == -1 && errno == EPERM)
		fd = open(path, flags);
	if (fd == -1) {
		rc = -errno;
		if (result_init(r, path, NULL, c->b) < 0)
			return -ENOMEM;
		return rc;
	}
	rc = scan_fd(c, fd, path, NULL, r);
	close(fd);
	return rc;
}

int
scan_path(struct scan_ctx *c, const char *path, const struct stat *st,
          struct scan_result *r)
{
	int rc;

	if (result_init(r, path, st, c->b) < 0)
		return -ENOMEM;
	r->flags |= SCAN_RES_NOT_READ;
	c->r = r;
	filename_iocs(c, r->path);
	rc = c->nomem ? -ENOMEM : 0;
	if (rc == 0)
		finish(c);
	scan_end(c);
	return rc;
}

int
scan_mem(struct scan_ctx *c, const uint8_t *p, size_t len, const char *name,
         struct scan_result *r)
{
	int rc;

	if (result_init(r, name, NULL, c->b) < 0)
		return -ENOMEM;
	r->size = len;
	if (len > c->o.max_size) {
		r->flags |= SCAN_RES_TRUNCATED;
		len = (size_t)c->o.max_size;
	}
	c->r = r;
	rc = scan_content(c, p, len);
	scan_end(c);
	return rc;
}

int
scan_proc(struct scan_ctx *c, int pid, const char *name, struct scan_result *r)
{
	int rc = 0, yrc;

	if (result_init(r, name, NULL, c->b) < 0)
		return -ENOMEM;
	c->r = r;
	filename_iocs(c, r->path);
	if (c->yr != NULL && !c->nomem) {
		if (yr_scanner_define_string_variable(c->yr, SCAN_EXT_FILENAME,
		                                      basename_of(r->path)) ||
		    yr_scanner_define_string_variable(c->yr, SCAN_EXT_FILEPATH,
		                                      r->path) ||
		    yr_scanner_define_string_variable(c->yr, SCAN_EXT_EXTENSION,
		                                      r->extension) ||
		    yr_scanner_define_string_variable(c->yr, SCAN_EXT_FILETYPE,
		                                      "")) {
			rc = -ENOMEM;
			goto out;
		}
		yr_scanner_set_callback(c->yr, yara_cb, c);
		/* libyara attaches with ptrace and reads /proc/PID/mem: the
		 * process is stopped for the scan's duration. */
		yrc = yr_scanner_scan_proc(c->yr, pid);
		if (yrc == ERROR_COULD_NOT_ATTACH_TO_PROCESS) {
			rc = -EPERM;
			goto out;
		}
		if (yrc == ERROR_COULD_NOT_READ_PROCESS_MEMORY) {
			rc = -EIO;
			goto out;
		}
		if (yrc != ERROR_SUCCESS && !c->nomem) {
			r->flags |= SCAN_RES_YARA_ERR;
			r->yara_error = yrc;
		}
	}
	if (c->nomem)
		rc = -ENOMEM;
	else
		finish(c);
out:
	scan_end(c);
	return rc;
}
