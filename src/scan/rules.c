/*
 * rules: rule sets and rule bundles. YARA sources are compiled by libyara
 * with every error *and* warning reported with its line and refused (a
 * warning such as "$a is slowing down scanning" would make every endpoint
 * crawl); IOC sources are parsed by ioc.c. A bundle holds the compiled
 * rules, a hash table per digest type and the filename regexes, and is
 * named by the SHA-256 of its sources so results can be cached per version.
 * A bundle never changes once built; scan contexts in any number of threads
 * share it through a reference count.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <yara.h>

#include "buf.h"
#include "ioc.h"
#include "log.h"
#include "scan.h"
#include "scan_int.h"
#include "tls.h"

#define COMPILE_MAX_MSGS 50           /* messages listed per compile */
#define RULE_FILE_MAX    (256u << 20) /* bytes per rule file */

EVP_MD *scan_md[IOC_NHASH];

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_rc = -1;

static void
init_once_fn(void)
{
	static const char *const names[IOC_NHASH] = {"MD5", "SHA1", "SHA256"};
	int i, rc;

	if ((rc = yr_initialize()) != ERROR_SUCCESS) {
		log_warnx("scan_init: yr_initialize failed (%d)", rc);
		return;
	}
	for (i = 0; i < IOC_NHASH; i++) {
		if ((scan_md[i] = EVP_MD_fetch(NULL, names[i], NULL)) == NULL) {
			log_warnx("scan_init: digest %s unavailable", names[i]);
			return;
		}
	}
	init_rc = 0;
}

int
scan_init(void)
{
	if (pthread_once(&init_once, init_once_fn) != 0)
		return -1;
	return init_rc;
}

/* ---- YARA compilation ------------------------------------------------- */

struct ycomp {
	struct buf *err;
	const char *name; /* source being compiled */
	unsigned errors, warnings, listed;
};

static void
ycomp_cb(int level, const char *file, int line, const YR_RULE *rule,
         const char *msg, void *arg)
{
	struct ycomp *y = arg;
	int warn = level == YARA_ERROR_LEVEL_WARNING;

	(void)file; /* NULL for strings; the source's name is in y */
	(void)rule;
	if (warn)
		y->warnings++;
	else
		y->errors++;
	if (y->err == NULL || y->listed++ >= COMPILE_MAX_MSGS)
		return;
	(void)buf_printf(y->err, "%s:%d: %s: %s\n", y->name, line,
	                 warn ? "warning" : "error", msg);
}

/*
 * Compiles the YARA sources among src into *out (NULL when there are
 * none). libyara's compiler cannot take more input after a source with
 * errors, so checking stops there, and says so.
 */
static int
yara_compile(const struct scan_src *src, size_t n, YR_RULES **out,
             unsigned *nrules, struct buf *err)
{
	YR_COMPILER *comp = NULL;
	YR_RULES *rules = NULL;
	YR_RULE *rule;
	struct ycomp y = {err, NULL, 0, 0, 0};
	char *text = NULL;
	size_t i, nyara = 0;
	int rc = -1;

	*out = NULL;
	*nrules = 0;
	for (i = 0; i < n; i++)
		if (src[i].type == SCAN_SRC_YARA)
			nyara++;
	if (nyara == 0)
		return 0;
	if (yr_compiler_create(&comp) != ERROR_SUCCESS) {
		(void)buf_printf(err, "yara: out of memory\n");
		return -1;
	}
	yr_compiler_set_callback(comp, ycomp_cb, &y);
	/* A rule file must not read other files on the center or an agent:
	 * without an include callback libyara answers "includes are
	 * disabled". */
	yr_compiler_set_include_callback(comp, NULL, NULL, NULL);
	if (yr_compiler_define_string_variable(comp, SCAN_EXT_FILENAME, "") ||
	    yr_compiler_define_string_variable(comp, SCAN_EXT_FILEPATH, "") ||
	    yr_compiler_define_string_variable(comp, SCAN_EXT_EXTENSION, "") ||
	    yr_compiler_define_string_variable(comp, SCAN_EXT_FILETYPE, "")) {
		(void)buf_printf(err, "yara: out of memory\n");
		goto done;
	}
	for (i = 0; i < n; i++) {
		const struct scan_src *s = &src[i];
		const char *name = s->name != NULL ? s->name : "rules";

		if (s->type != SCAN_SRC_YARA)
			continue;
		if (s->len > 0 && memchr(s->data, '\0', s->len) != NULL) {
			(void)buf_printf(err, "%s: NUL byte in rule text\n",
			                 name);
			y.errors++;
			continue;
		}
		free(text);
		if ((text = malloc(s->len + 1)) == NULL) {
			(void)buf_printf(err, "%s: out of memory\n", name);
			y.errors++;
			goto done;
		}
		if (s->len > 0)
			memcpy(text, s->data, s->len);
		text[s->len] = '\0';
		y.name = name;
		if (yr_compiler_add_string(comp, text, NULL) != 0) {
			if (--nyara > 0)
				(void)buf_printf(err,
				                 "%s: errors; the rule files "
				                 "after it were not checked\n",
				                 name);
			break;
		}
		nyara--;
	}
	if (y.listed > COMPILE_MAX_MSGS)
		(void)buf_printf(err, "yara: %u more errors and warnings\n",
		                 y.listed - COMPILE_MAX_MSGS);
	if (y.errors > 0 || y.warnings > 0)
		goto done;
	if (yr_compiler_get_rules(comp, &rules) != ERROR_SUCCESS) {
		(void)buf_printf(err, "yara: out of memory\n");
		goto done;
	}
	yr_rules_foreach(rules, rule)
	{
		(*nrules)++;
	}
	*out = rules;
	rc = 0;
done:
	free(text);
	yr_compiler_destroy(comp);
	return rc;
}

int
scan_rules_check(const char *text, size_t len, struct buf *err)
{
	struct scan_src s = {SCAN_SRC_YARA, "rules", (const uint8_t *)text,
	                     len};
	YR_RULES *rules;
	unsigned n;

	if (scan_init() == -1) {
		(void)buf_printf(err, "rules: YARA unavailable\n");
		return -1;
	}
	if (yara_compile(&s, 1, &rules, &n, err) == -1)
		return -1;
	if (rules != NULL)
		yr_rules_destroy(rules);
	return 0;
}

int
scan_ioc_check(const char *text, size_t len, struct buf *err)
{
	struct ioc_set s;
	int rc;

	ioc_set_init(&s);
	rc = ioc_parse((const uint8_t *)text, len, "iocs", &s, err);
	ioc_set_free(&s);
	return rc;
}

/* ---- hash tables ------------------------------------------------------ */

/*
 * Digests are uniform, but IOC values are whatever the file says, so the
 * whole digest is mixed with a per-bundle random seed: crafted values
 * cannot pile up in one probe chain.
 */
static size_t
digest_hash(const uint8_t *d, size_t n, uint64_t seed)
{
	uint64_t h = seed ^ (n * 0x9e3779b97f4a7c15ull), w;
	size_t i;

	for (i = 0; i < n; i += 8) {
		w = 0;
		memcpy(&w, d + i, n - i < 8 ? n - i : 8);
		h ^= w;
		h *= 0xff51afd7ed558ccdull;
		h ^= h >> 33;
	}
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 29;
	return (size_t)h;
}

static int
tab_build(struct scan_bundle *b, enum ioc_type t)
{
	struct hash_tab *tab = &b->tab[t];
	size_t i, count = 0, size = 16, dlen = ioc_digest_len(t);

	for (i = 0; i < b->iocs.n; i++)
		if (b->iocs.v[i].type == t)
			count++;
	if (count == 0)
		return 0;
	while (size < 2 * count) {
		if (size > SIZE_MAX / 4 / sizeof(uint32_t))
			return -1;
		size *= 2;
	}
	if ((tab->slot = calloc(size, sizeof(uint32_t))) == NULL)
		return -1;
	tab->mask = size - 1;
	for (i = 0; i < b->iocs.n; i++) {
		size_t h;

		if (b->iocs.v[i].type != t)
			continue;
		h = digest_hash(b->iocs.v[i].digest, dlen, b->seed) & tab->mask;
		while (tab->slot[h] != 0)
			h = (h + 1) & tab->mask;
		tab->slot[h] = (uint32_t)(i + 1);
	}
	b->hash_types |= 1u << t;
	return 0;
}

size_t
bundle_hash_next(const struct scan_bundle *b, enum ioc_type t, const uint8_t *d,
                 size_t *pos)
{
	const struct hash_tab *tab = &b->tab[t];
	size_t dlen = ioc_digest_len(t), h;
	uint32_t s;

	if (tab->slot == NULL)
		return 0;
	if (*pos == SIZE_MAX)
		h = digest_hash(d, dlen, b->seed) & tab->mask;
	else
		h = (*pos + 1) & tab->mask;
	for (; (s = tab->slot[h]) != 0; h = (h + 1) & tab->mask) {
		if (memcmp(b->iocs.v[s - 1].digest, d, dlen) == 0) {
			*pos = h;
			return s;
		}
	}
	*pos = h;
	return 0;
}

void
bundle_ioc_source(const struct scan_bundle *b, size_t i, char *out,
                  size_t outsz)
{
	size_t k;

	for (k = 0; k < b->nsrcs; k++) {
		if (i >= b->srcs[k].first && i < b->srcs[k].end) {
			snprintf(out, outsz, "%s:%u", b->srcs[k].name,
			         b->iocs.v[i].line);
			return;
		}
	}
	snprintf(out, outsz, "?:%u", i < b->iocs.n ? b->iocs.v[i].line : 0);
}

/* ---- bundles ---------------------------------------------------------- */

static int
bundle_version(const struct scan_src *src, size_t n, char *out)
{
	EVP_MD_CTX *md;
	uint8_t d[32], hdr[9];
	unsigned int dl = 0;
	size_t i, k;
	int rc = -1;

	if ((md = EVP_MD_CTX_new()) == NULL)
		return -1;
	if (EVP_DigestInit_ex(md, scan_md[IOC_SHA256], NULL) != 1)
		goto done;
	/* type and length before each source: no two different bundles
	 * hash the same bytes */
	for (i = 0; i < n; i++) {
		uint64_t len = src[i].len;

		hdr[0] = (uint8_t)src[i].type;
		for (k = 0; k < 8; k++)
			hdr[1 + k] = (uint8_t)(len >> (8 * k));
		if (EVP_DigestUpdate(md, hdr, sizeof(hdr)) != 1 ||
		    (src[i].len > 0 &&
		     EVP_DigestUpdate(md, src[i].data, src[i].len) != 1))
			goto done;
	}
	if (EVP_DigestFinal_ex(md, d, &dl) != 1 || dl != sizeof(d))
		goto done;
	hex_encode(d, sizeof(d), out);
	rc = 0;
done:
	EVP_MD_CTX_free(md);
	return rc;
}

static void
bundle_destroy(struct scan_bundle *b)
{
	size_t i;

	if (b->rules != NULL)
		yr_rules_destroy(b->rules);
	ioc_set_free(&b->iocs);
	for (i = 0; i < IOC_NHASH; i++)
		free(b->tab[i].slot);
	free(b->fname);
	for (i = 0; i < b->nsrcs; i++)
		free(b->srcs[i].name);
	free(b->srcs);
	free(b);
}

/* libyara's save and load streams: to a descriptor, from memory. */
struct ystream {
	int fd;
	int failed;
	const uint8_t *p;
	size_t len, off;
};

static size_t
ys_write(const void *ptr, size_t size, size_t count, void *arg)
{
	struct ystream *y = arg;
	const uint8_t *c = ptr;
	size_t left;
	ssize_t w;

	if (size == 0 || count > SIZE_MAX / size) {
		y->failed = 1;
		return 0;
	}
	for (left = size * count; left > 0 && !y->failed;) {
		if ((w = write(y->fd, c, left)) == -1) {
			if (errno != EINTR)
				y->failed = 1;
			continue;
		}
		c += w;
		left -= (size_t)w;
	}
	return y->failed ? 0 : count;
}

static size_t
ys_read(void *ptr, size_t size, size_t count, void *arg)
{
	struct ystream *y = arg;
	size_t n;

	if (size == 0)
		return 0;
	/* Whole items only, as fread. */
	n = (y->len - y->off) / size;
	if (n > count)
		n = count;
	memcpy(ptr, y->p + y->off, n * size);
	y->off += n * size;
	return n;
}

int
scan_bundle_save_yara(const struct scan_bundle *b, int fd)
{
	struct ystream y = {fd, 0, NULL, 0, 0};
	YR_STREAM st;

	if (b->rules == NULL)
		return 0;
	st.user_data = &y;
	st.read = NULL;
	st.write = ys_write;
	if (yr_rules_save_stream(b->rules, &st) != ERROR_SUCCESS || y.failed)
		return -1;
	return 0;
}

/* The YARA rules libyara saved into p: 0, or -1 (err). */
static int
yara_load(const uint8_t *p, size_t len, YR_RULES **out, unsigned *nrules,
          struct buf *err)
{
	struct ystream y = {-1, 0, p, len, 0};
	YR_RULES *rules = NULL;
	YR_RULE *rule;
	YR_STREAM st;

	*out = NULL;
	*nrules = 0;
	st.user_data = &y;
	st.read = ys_read;
	st.write = NULL;
	if (yr_rules_load_stream(&st, &rules) != ERROR_SUCCESS) {
		(void)buf_printf(err, "yara: the saved rules do not load\n");
		return -1;
	}
	if (y.off != len) {
		yr_rules_destroy(rules);
		(void)buf_printf(err, "yara: bytes after the saved rules\n");
		return -1;
	}
	yr_rules_foreach(rules, rule)
	{
		(*nrules)++;
	}
	*out = rules;
	return 0;
}

int
scan_bundle_new(const struct scan_src *src, size_t n, struct scan_bundle **out,
                struct buf *err)
{
	return scan_bundle_new_saved(src, n, NULL, 0, out, err);
}

int
scan_bundle_new_saved(const struct scan_src *src, size_t n,
                      const uint8_t *saved, size_t slen,
                      struct scan_bundle **out, struct buf *err)
{
	struct scan_bundle *b;
	size_t i, k, nyara = 0;
	int bad = 0;

	if (scan_init() == -1) {
		(void)buf_printf(err, "scan: YARA or OpenSSL digests "
		                      "unavailable\n");
		return -1;
	}
	if ((b = calloc(1, sizeof(*b))) == NULL)
		goto nomem;
	atomic_init(&b->refs, 1);
	ioc_set_init(&b->iocs);
	if (n > 0 && (b->srcs = calloc(n, sizeof(*b->srcs))) == NULL)
		goto nomem;
	for (i = 0; i < n; i++) {
		const char *name = src[i].name != NULL ? src[i].name : "rules";

		if ((b->srcs[i].name = strdup(name)) == NULL)
			goto nomem;
		b->nsrcs++;
		b->srcs[i].first = b->iocs.n;
		if (src[i].type == SCAN_SRC_IOC &&
		    ioc_parse(src[i].data, src[i].len, name, &b->iocs, err) ==
		        -1)
			bad = 1;
		else if (src[i].type != SCAN_SRC_IOC &&
		         src[i].type != SCAN_SRC_YARA) {
			(void)buf_printf(err, "%s: unknown source type\n",
			                 name);
			bad = 1;
		}
		b->srcs[i].end = b->iocs.n;
	}
	for (i = 0; i < n; i++)
		if (src[i].type == SCAN_SRC_YARA)
			nyara++;
	if (saved == NULL) {
		if (yara_compile(src, n, &b->rules, &b->nrules, err) == -1)
			bad = 1;
	} else if ((nyara > 0) != (slen > 0)) {
		(void)buf_printf(err, "yara: the saved rules do not match the "
		                      "sources\n");
		bad = 1;
	} else if (slen > 0 &&
	           yara_load(saved, slen, &b->rules, &b->nrules, err) == -1)
		bad = 1;
	if (bad)
		goto fail;
	if (b->iocs.n >= UINT32_MAX) {
		(void)buf_printf(err, "scan: too many IOCs\n");
		goto fail;
	}
	if (getrandom(&b->seed, sizeof(b->seed), 0) != sizeof(b->seed))
		b->seed = 0x5851f42d4c957f2dull ^ (uint64_t)(uintptr_t)b;
	for (i = 0; i < IOC_NHASH; i++)
		if (tab_build(b, (enum ioc_type)i) == -1)
			goto nomem;
	for (i = 0; i < b->iocs.n; i++)
		if (b->iocs.v[i].type == IOC_FILENAME)
			b->nfname++;
	if (b->nfname > 0 &&
	    (b->fname = calloc(b->nfname, sizeof(*b->fname))) == NULL)
		goto nomem;
	for (i = 0, k = 0; i < b->iocs.n; i++)
		if (b->iocs.v[i].type == IOC_FILENAME)
			b->fname[k++] = i;
	if (bundle_version(src, n, b->version) == -1)
		goto nomem;
	*out = b;
	return 0;
nomem:
	(void)buf_printf(err, "scan: out of memory\n");
fail:
	if (b != NULL)
		bundle_destroy(b);
	return -1;
}

static int
src_type_of(const char *path, enum scan_src_type *t)
{
	const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');

	if (dot == NULL || (slash != NULL && dot < slash))
		return -1;
	if (strcasecmp(dot, ".yar") == 0 || strcasecmp(dot, ".yara") == 0)
		*t = SCAN_SRC_YARA;
	else if (strcasecmp(dot, ".ioc") == 0 || strcasecmp(dot, ".txt") == 0)
		*t = SCAN_SRC_IOC;
	else
		return -1;
	return 0;
}

int
scan_srcs_read(const char *const *paths, size_t n, struct scan_src **srcp,
               struct buf **datap, struct buf *err)
{
	struct scan_src *src = NULL;
	struct buf *data = NULL;
	size_t i;
	int bad = 0;

	*srcp = NULL;
	*datap = NULL;
	if (n > 0 && ((src = calloc(n, sizeof(*src))) == NULL ||
	              (data = calloc(n, sizeof(*data))) == NULL)) {
		(void)buf_printf(err, "scan: out of memory\n");
		free(src);
		return -1;
	}
	for (i = 0; i < n; i++)
		buf_init(&data[i], RULE_FILE_MAX);
	for (i = 0; i < n; i++) {
		if (src_type_of(paths[i], &src[i].type) == -1) {
			(void)buf_printf(err,
			                 "%s: unknown rule file type (expected "
			                 ".yar, .yara, .ioc or .txt)\n",
			                 paths[i]);
			bad = 1;
			continue;
		}
		if (tls_read_file(paths[i], RULE_FILE_MAX, &data[i], err) ==
		    -1) {
			(void)buf_putc(err, '\n');
			bad = 1;
			continue;
		}
		src[i].name = paths[i];
		src[i].data = data[i].data;
		src[i].len = data[i].len;
	}
	if (bad) {
		scan_srcs_free(src, data, n);
		return -1;
	}
	*srcp = src;
	*datap = data;
	return 0;
}

void
scan_srcs_free(struct scan_src *src, struct buf *data, size_t n)
{
	size_t i;

	if (data != NULL)
		for (i = 0; i < n; i++)
			buf_free(&data[i]);
	free(data);
	free(src);
}

int
scan_bundle_load(const char *const *paths, size_t n, struct scan_bundle **out,
                 struct buf *err)
{
	struct scan_src *src;
	struct buf *data;
	int rc;

	if (scan_srcs_read(paths, n, &src, &data, err) == -1)
		return -1;
	rc = scan_bundle_new(src, n, out, err);
	scan_srcs_free(src, data, n);
	return rc;
}

struct scan_bundle *
scan_bundle_ref(struct scan_bundle *b)
{
	atomic_fetch_add(&b->refs, 1);
	return b;
}

void
scan_bundle_free(struct scan_bundle *b)
{
	if (b == NULL)
		return;
	if (atomic_fetch_sub(&b->refs, 1) == 1)
		bundle_destroy(b);
}

void
scan_bundle_info(const struct scan_bundle *b, struct scan_bundle_info *out)
{
	size_t i;

	memset(out, 0, sizeof(*out));
	memcpy(out->version, b->version, sizeof(out->version));
	out->yara_rules = b->nrules;
	for (i = 0; i < b->iocs.n; i++) {
		if (b->iocs.v[i].type == IOC_FILENAME)
			out->filename_iocs++;
		else
			out->hash_iocs[b->iocs.v[i].type]++;
	}
}

const char *
scan_bundle_version(const struct scan_bundle *b)
{
	return b->version;
}
