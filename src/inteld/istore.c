/*
 * istore.c: see istore.h. Records are packed (memcpy in and out: LMDB
 * gives no alignment):
 *   u8 version (1), verdict, score, kind; i64 first_seen, last_seen,
 *   expires, added; u16 tags, reference, text lengths; then the bytes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "istore.h"
#include "log.h"

#define REC_HDR 42

struct istore {
	MDB_env *env;
	MDB_dbi ind, src, feeds, meta;
};

/*
 * Each thread that reads has a read transaction of its own, kept between
 * uses (mdb_txn_reset, then mdb_txn_renew: the reader slot stays, so a
 * lookup takes no lock). The environment is opened MDB_NOTLS, so LMDB
 * itself keys nothing to the thread; this is Vigil's own per-thread
 * state. A renewed transaction sees the last committed write, whole.
 */
struct ireader {
	struct istore *s;
	MDB_txn *txn;
	int reading;
};
static __thread struct ireader tl_rd;

struct iwtxn {
	struct istore *s;
	MDB_txn *txn;
	uint64_t plen[2][129];
	int plen_dirty;
	/* entries added to one source, written to meta at the commit (or
	 * when another source changes): saves a read and a write of the
	 * counter per indicator of an import */
	char csrc[80];
	long long cdelta;
};

static int count_add(struct iwtxn *w, const char *source, long long d);
static int count_flush(struct iwtxn *w);

static int
lmdb_err(struct buf *err, const char *what, int rc)
{
	if (err != NULL)
		buf_printf(err, "lmdb: %s: %s", what, mdb_strerror(rc));
	else
		log_warnx("istore: %s: %s", what, mdb_strerror(rc));
	return -1;
}

int
istore_open(const char *dir, long long map_size, struct istore **out,
            struct buf *err)
{
	struct istore *s;
	MDB_txn *t = NULL;
	int rc;

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		buf_printf(err, "out of memory");
		return -1;
	}
	if ((rc = mdb_env_create(&s->env)) != 0 ||
	    (rc = mdb_env_set_maxdbs(s->env, 8)) != 0 ||
	    (rc = mdb_env_set_mapsize(s->env, (size_t)map_size)) != 0) {
		lmdb_err(err, "environment", rc);
		goto fail;
	}
	if ((rc = mdb_env_open(s->env, dir, MDB_NOTLS, 0600)) != 0) {
		buf_printf(err, "lmdb: %s: %s", dir, mdb_strerror(rc));
		goto fail;
	}
	if ((rc = mdb_txn_begin(s->env, NULL, 0, &t)) != 0 ||
	    (rc = mdb_dbi_open(t, "ind", MDB_CREATE, &s->ind)) != 0 ||
	    (rc = mdb_dbi_open(t, "src", MDB_CREATE, &s->src)) != 0 ||
	    (rc = mdb_dbi_open(t, "feeds", MDB_CREATE, &s->feeds)) != 0 ||
	    (rc = mdb_dbi_open(t, "meta", MDB_CREATE, &s->meta)) != 0 ||
	    (rc = mdb_txn_commit(t)) != 0) {
		if (t != NULL && rc != 0)
			mdb_txn_abort(t);
		lmdb_err(err, "opening the databases", rc);
		goto fail;
	}
	/* Readers left behind by a process that died hold no pages. */
	mdb_reader_check(s->env, NULL);
	*out = s;
	return 0;
fail:
	mdb_env_close(s->env);
	free(s);
	return -1;
}

void
istore_read_release(struct istore *s)
{
	if (tl_rd.s != s)
		return;
	if (tl_rd.txn != NULL)
		mdb_txn_abort(tl_rd.txn);
	memset(&tl_rd, 0, sizeof(tl_rd));
}

void
istore_close(struct istore *s)
{
	if (s == NULL)
		return;
	istore_read_release(s);
	mdb_env_close(s->env);
	free(s);
}

int
istore_read_begin(struct istore *s)
{
	int rc;

	if (tl_rd.s != s) {
		/* another store's reader (unit tests open several) */
		if (tl_rd.reading)
			fatalx("%s: nested read", __func__);
		if (tl_rd.txn != NULL)
			mdb_txn_abort(tl_rd.txn);
		memset(&tl_rd, 0, sizeof(tl_rd));
		tl_rd.s = s;
	}
	if (tl_rd.reading)
		fatalx("%s: nested read", __func__);
	if (tl_rd.txn == NULL)
		rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &tl_rd.txn);
	else
		rc = mdb_txn_renew(tl_rd.txn);
	if (rc != 0) {
		if (tl_rd.txn != NULL) {
			mdb_txn_abort(tl_rd.txn);
			tl_rd.txn = NULL;
		}
		return lmdb_err(NULL, "read transaction", rc);
	}
	tl_rd.reading = 1;
	return 0;
}

void
istore_read_end(struct istore *s)
{
	if (tl_rd.s != s)
		return;
	if (tl_rd.reading)
		mdb_txn_reset(tl_rd.txn);
	tl_rd.reading = 0;
}

/* ---- records ---------------------------------------------------------- */

struct rec_view {
	int verdict, score, kind;
	long long first, last, expires, added;
	struct strv tags, ref, text;
};

static int
rec_decode(const MDB_val *v, struct rec_view *r)
{
	const uint8_t *p = v->mv_data;
	int64_t t[4];
	uint16_t l[3];

	if (v->mv_size < REC_HDR || p[0] != 1)
		return -1;
	r->verdict = p[1];
	r->score = p[2];
	r->kind = p[3];
	memcpy(t, p + 4, sizeof(t));
	memcpy(l, p + 36, sizeof(l));
	r->first = t[0];
	r->last = t[1];
	r->expires = t[2];
	r->added = t[3];
	if ((size_t)REC_HDR + l[0] + l[1] + l[2] != v->mv_size)
		return -1;
	r->tags = strv_make((const char *)p + REC_HDR, l[0]);
	r->ref = strv_make((const char *)p + REC_HDR + l[0], l[1]);
	r->text = strv_make((const char *)p + REC_HDR + l[0] + l[1], l[2]);
	return 0;
}

static size_t
rec_encode(const struct intel_rec *r, long long now, uint8_t *out, size_t cap)
{
	int64_t t[4] = {r->first_seen, r->last_seen, r->expires, now};
	size_t tl = strlen(r->tags), rl = strlen(r->reference),
	       xl = strlen(r->ind.text);
	uint16_t l[3] = {(uint16_t)tl, (uint16_t)rl, (uint16_t)xl};

	if (REC_HDR + tl + rl + xl > cap)
		return 0;
	out[0] = 1;
	out[1] = (uint8_t)r->verdict;
	out[2] = (uint8_t)r->score;
	out[3] = (uint8_t)r->ind.kind;
	memcpy(out + 4, t, sizeof(t));
	memcpy(out + 36, l, sizeof(l));
	memcpy(out + REC_HDR, r->tags, tl);
	memcpy(out + REC_HDR + tl, r->reference, rl);
	memcpy(out + REC_HDR + tl + rl, r->ind.text, xl);
	return REC_HDR + tl + rl + xl;
}

/* ---- lookups ---------------------------------------------------------- */

struct match {
	char source[80];
	int site;     /* 1 allow, 2 block */
	int spec;     /* specificity: prefix length, labels */
	int priority; /* feeds */
	struct rec_view r;
};

#define MAX_MATCHES                                                            \
	256 /* sources listed in one answer; the probes go most specific first \
	     */

static int
feed_priority(struct istore *s, MDB_txn *t, const char *name)
{
	MDB_val k = {strlen(name), (void *)name}, v;
	int32_t p;

	if (mdb_get(t, s->feeds, &k, &v) != 0 || v.mv_size < 4)
		return 0;
	memcpy(&p, v.mv_data, 4);
	return p;
}

/* Every live entry under body; appends to m. */
static int
probe(struct istore *s, MDB_txn *t, MDB_cursor *c, const uint8_t *body,
      size_t n, int spec, long long now, struct match *m, int *nm)
{
	uint8_t kb[INTEL_KEY_MAX + 1];
	MDB_val k, v;
	int rc;

	memcpy(kb, body, n);
	kb[n] = 0;
	k.mv_data = kb;
	k.mv_size = n + 1;
	rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
	while (rc == 0 && k.mv_size > n + 1 &&
	       memcmp(k.mv_data, kb, n + 1) == 0) {
		struct match *x = &m[*nm];
		size_t sl = k.mv_size - n - 1;

		if (*nm < MAX_MATCHES && sl < sizeof(x->source) &&
		    rec_decode(&v, &x->r) == 0 &&
		    (x->r.expires == 0 || x->r.expires > now)) {
			memcpy(x->source, (const char *)k.mv_data + n + 1, sl);
			x->source[sl] = '\0';
			x->site = strcmp(x->source, ISTORE_ALLOW) == 0   ? 1
			          : strcmp(x->source, ISTORE_BLOCK) == 0 ? 2
			                                                 : 0;
			x->spec = spec;
			x->priority =
			    x->site ? 0 : feed_priority(s, t, x->source);
			(*nm)++;
		}
		rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
	}
	if (rc != 0 && rc != MDB_NOTFOUND)
		return lmdb_err(NULL, "lookup", rc);
	return 0;
}

static int
read_plen(struct istore *s, MDB_txn *t, uint64_t plen[2][129])
{
	MDB_val k = {4, "plen"}, v;

	if (mdb_get(t, s->meta, &k, &v) == 0 &&
	    v.mv_size == sizeof(uint64_t) * 2 * 129)
		memcpy(plen, v.mv_data, v.mv_size);
	else
		memset(plen, 0, sizeof(uint64_t) * 2 * 129);
	return 0;
}

/* Is a better than b as the deciding match? */
static int
better(const struct match *a, const struct match *b)
{
	if (!!a->site != !!b->site)
		return a->site != 0; /* the site's lists beat every feed */
	if (a->spec != b->spec)
		return a->spec > b->spec; /* longest prefix, deepest domain */
	if (a->site)
		return a->site > b->site; /* block beats allow */
	if (a->priority != b->priority)
		return a->priority > b->priority;
	if (a->r.verdict != b->r.verdict)
		return a->r.verdict > b->r.verdict;
	return a->r.score > b->r.score;
}

static json_t *
tags_json(struct strv t)
{
	json_t *a = json_array();

	while (t.len > 0) {
		struct strv one = strv_split(&t, ',');

		if (one.len)
			json_array_append_new(a, json_stringn(one.p, one.len));
	}
	return a;
}

static json_t *
match_json(const struct match *x)
{
	json_t *o = json_object();

	json_object_set_new(o, "source", json_string(x->source));
	json_object_set_new(o, "matched",
	                    json_stringn(x->r.text.p, x->r.text.len));
	json_object_set_new(o, "verdict",
	                    json_string(intel_verdict_name(x->r.verdict)));
	json_object_set_new(o, "score", json_integer(x->r.score));
	json_object_set_new(o, "tags", tags_json(x->r.tags));
	if (!x->site)
		json_object_set_new(o, "priority", json_integer(x->priority));
	json_object_set_new(o, "first_seen",
	                    x->r.first ? json_integer(x->r.first)
	                               : json_null());
	json_object_set_new(o, "last_seen",
	                    x->r.last ? json_integer(x->r.last) : json_null());
	json_object_set_new(o, "expires",
	                    x->r.expires ? json_integer(x->r.expires)
	                                 : json_null());
	json_object_set_new(o, "reference",
	                    json_stringn(x->r.ref.p, x->r.ref.len));
	json_object_set_new(o, "added", json_integer(x->r.added));
	return o;
}

static int
cmp_match(const void *a, const void *b)
{
	const struct match *x = a, *y = b;

	return better(x, y) ? -1 : better(y, x) ? 1 : 0;
}

/* Every entry matching q, best first, in m (MAX_MATCHES): their count,
 * or -1 when the store failed (logged). The record views point into the
 * read transaction: use them before istore_read_end. */
static int
lookup_matches(struct istore *s, const struct intel_ind *q, long long now,
               struct match *m)
{
	MDB_cursor *c = NULL;
	int nm = 0, i, rc;

	if ((rc = mdb_cursor_open(tl_rd.txn, s->ind, &c)) != 0) {
		lmdb_err(NULL, "cursor", rc);
		goto fail;
	}
	if (q->kind == INTEL_IP) {
		uint64_t plen[2][129];
		uint8_t kb[19];
		int p, f = q->family == 4 ? 0 : 1;

		read_plen(s, tl_rd.txn, plen);
		for (p = q->prefix; p >= 0; p--) {
			if (plen[f][p] == 0)
				continue;
			intel_ip_key(q->family, q->addr, p, kb);
			if (probe(s, tl_rd.txn, c, kb, 19, p, now, m, &nm) ==
			    -1)
				goto fail;
		}
	} else if (q->kind == INTEL_DOMAIN) {
		uint8_t kb[INTEL_KEY_MAX];
		const char *d = q->text;
		int labels = 1;

		for (i = 0; q->text[i]; i++)
			labels += q->text[i] == '.';
		while (d != NULL) {
			size_t n = strlen(d);

			kb[0] = 'd';
			memcpy(kb + 1, d, n);
			if (probe(s, tl_rd.txn, c, kb, n + 1, labels, now, m,
			          &nm) == -1)
				goto fail;
			labels--;
			d = strchr(d, '.');
			if (d != NULL)
				d++;
		}
	} else if (probe(s, tl_rd.txn, c, q->key, q->keylen, 0, now, m, &nm) ==
	           -1)
		goto fail;
	mdb_cursor_close(c);
	qsort(m, (size_t)nm, sizeof(m[0]), cmp_match);
	return nm;
fail:
	if (c != NULL)
		mdb_cursor_close(c);
	return -1;
}

json_t *
istore_lookup(struct istore *s, const struct intel_ind *q, long long now)
{
	struct match m[MAX_MATCHES];
	json_t *o, *srcs;
	int nm, i, own = 0;

	if (!tl_rd.reading || tl_rd.s != s) {
		if (istore_read_begin(s) == -1)
			return NULL;
		own = 1;
	}
	if ((nm = lookup_matches(s, q, now, m)) == -1) {
		if (own)
			istore_read_end(s);
		return NULL;
	}
	o = json_object();
	json_object_set_new(o, "indicator", json_string(q->text));
	json_object_set_new(o, "type", json_string(intel_kind_name(q->kind)));
	if (nm == 0) {
		json_object_set_new(o, "verdict", json_string("unknown"));
		json_object_set_new(o, "score", json_null());
		json_object_set_new(o, "decided_by", json_null());
	} else {
		json_object_set_new(
		    o, "verdict",
		    json_string(intel_verdict_name(m[0].r.verdict)));
		json_object_set_new(o, "score", json_integer(m[0].r.score));
		json_object_set_new(o, "decided_by", json_string(m[0].source));
	}
	srcs = json_array();
	for (i = 0; i < nm; i++)
		json_array_append_new(srcs, match_json(&m[i]));
	json_object_set_new(o, "sources", srcs);
	if (own)
		istore_read_end(s);
	return o;
}

/* ---- answers as JSON text ------------------------------------------- */

/* A JSON string of n bytes at p, as jansson's json_dumps writes it
 * (JSON_COMPACT): '"' and '\\' escaped, control characters as \b \f \n
 * \r \t or \u00XX, UTF-8 as it is; a byte that is not part of valid
 * UTF-8 becomes U+FFFD (jansson would refuse the whole string). */
static void
put_str(struct buf *b, const char *p, size_t n)
{
	const uint8_t *u = (const uint8_t *)p;
	size_t i = 0, run = 0;

	buf_putc(b, '"');
	while (i < n) {
		uint8_t c = u[i];
		size_t len = 0;

		if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
			i++;
			run++;
			continue;
		}
		buf_append(b, u + i - run, run);
		run = 0;
		if (c < 0x80) {
			static const char hex[] = "0123456789ABCDEF";
			char e[7] = {'\\',        'u',         '0', '0',
			             hex[c >> 4], hex[c & 15], 0};

			switch (c) {
			case '"':
				buf_puts(b, "\\\"");
				break;
			case '\\':
				buf_puts(b, "\\\\");
				break;
			case '\b':
				buf_puts(b, "\\b");
				break;
			case '\f':
				buf_puts(b, "\\f");
				break;
			case '\n':
				buf_puts(b, "\\n");
				break;
			case '\r':
				buf_puts(b, "\\r");
				break;
			case '\t':
				buf_puts(b, "\\t");
				break;
			default:
				buf_puts(b, e);
			}
			i++;
			continue;
		}
		/* UTF-8: the sequence's length, its continuation bytes, no
		 * overlong form, no surrogate, at most U+10FFFF */
		if (c >= 0xc2 && c <= 0xdf)
			len = 2;
		else if (c >= 0xe0 && c <= 0xef)
			len = 3;
		else if (c >= 0xf0 && c <= 0xf4)
			len = 4;
		if (len != 0 && i + len <= n) {
			size_t k;
			int ok = 1;

			for (k = 1; k < len; k++)
				ok &= (u[i + k] & 0xc0) == 0x80;
			if (ok && len == 3 &&
			    ((c == 0xe0 && u[i + 1] < 0xa0) ||
			     (c == 0xed && u[i + 1] >= 0xa0)))
				ok = 0;
			if (ok && len == 4 &&
			    ((c == 0xf0 && u[i + 1] < 0x90) ||
			     (c == 0xf4 && u[i + 1] >= 0x90)))
				ok = 0;
			if (ok) {
				buf_append(b, u + i, len);
				i += len;
				continue;
			}
		}
		buf_puts(b, "\xef\xbf\xbd");
		i++;
	}
	buf_append(b, u + i - run, run);
	buf_putc(b, '"');
}

static void
put_time(struct buf *b, const char *name, long long t)
{
	if (t)
		buf_printf(b, ",\"%s\":%lld", name, t);
	else
		buf_printf(b, ",\"%s\":null", name);
}

static void
put_match(struct buf *b, const struct match *x)
{
	struct strv t = x->r.tags;
	int first = 1;

	buf_puts(b, "{\"source\":");
	put_str(b, x->source, strlen(x->source));
	buf_puts(b, ",\"matched\":");
	put_str(b, x->r.text.p, x->r.text.len);
	buf_printf(b, ",\"verdict\":\"%s\",\"score\":%d,\"tags\":[",
	           intel_verdict_name(x->r.verdict), x->r.score);
	while (t.len > 0) {
		struct strv one = strv_split(&t, ',');

		if (one.len == 0)
			continue;
		if (!first)
			buf_putc(b, ',');
		first = 0;
		put_str(b, one.p, one.len);
	}
	buf_putc(b, ']');
	if (!x->site)
		buf_printf(b, ",\"priority\":%d", x->priority);
	put_time(b, "first_seen", x->r.first);
	put_time(b, "last_seen", x->r.last);
	put_time(b, "expires", x->r.expires);
	buf_puts(b, ",\"reference\":");
	put_str(b, x->r.ref.p, x->r.ref.len);
	buf_printf(b, ",\"added\":%lld}", x->r.added);
}

int
istore_lookup_text(struct istore *s, const struct intel_ind *q, long long now,
                   struct buf *out, int *verdict)
{
	struct match m[MAX_MATCHES];
	int nm, i, own = 0;

	if (!tl_rd.reading || tl_rd.s != s) {
		if (istore_read_begin(s) == -1)
			return -1;
		own = 1;
	}
	if ((nm = lookup_matches(s, q, now, m)) == -1) {
		if (own)
			istore_read_end(s);
		return -1;
	}
	buf_puts(out, "{\"indicator\":");
	put_str(out, q->text, strlen(q->text));
	buf_printf(out, ",\"type\":\"%s\"", intel_kind_name(q->kind));
	if (nm == 0)
		buf_puts(out, ",\"verdict\":\"unknown\",\"score\":null,"
		              "\"decided_by\":null");
	else {
		buf_printf(out,
		           ",\"verdict\":\"%s\",\"score\":%d,"
		           "\"decided_by\":",
		           intel_verdict_name(m[0].r.verdict), m[0].r.score);
		put_str(out, m[0].source, strlen(m[0].source));
	}
	buf_puts(out, ",\"sources\":[");
	for (i = 0; i < nm; i++) {
		if (i > 0)
			buf_putc(out, ',');
		put_match(out, &m[i]);
	}
	buf_puts(out, "]}");
	*verdict = nm == 0 ? -1 : m[0].r.verdict;
	if (own)
		istore_read_end(s);
	return 0;
}

static json_t *
feed_json(const MDB_val *k, const MDB_val *v)
{
	json_t *o;
	int32_t p;

	if (v->mv_size < 4)
		return NULL;
	memcpy(&p, v->mv_data, 4);
	o = json_loadb((const char *)v->mv_data + 4, v->mv_size - 4, 0, NULL);
	if (o == NULL)
		return NULL;
	json_object_set_new(o, "name", json_stringn(k->mv_data, k->mv_size));
	json_object_set_new(o, "priority", json_integer(p));
	return o;
}

/* A feed as the API shows it: the MISP events map (for delta imports)
 * only counted. */
static json_t *
feed_public(json_t *o)
{
	json_t *ev = json_object_get(o, "misp_events");

	if (ev != NULL) {
		json_object_set_new(
		    o, "misp_events_known",
		    json_integer((json_int_t)json_object_size(ev)));
		json_object_del(o, "misp_events");
	}
	return o;
}

static long long
count_in(struct istore *s, MDB_txn *t, const char *source)
{
	char kb[100];
	MDB_val k, v;
	uint64_t n;

	k.mv_size = (size_t)snprintf(kb, sizeof(kb), "n:%s", source);
	k.mv_data = kb;
	if (mdb_get(t, s->meta, &k, &v) != 0 || v.mv_size != sizeof(n))
		return 0;
	memcpy(&n, v.mv_data, sizeof(n));
	return (long long)n;
}

json_t *
istore_feeds(struct istore *s)
{
	MDB_cursor *c;
	MDB_val k, v;
	json_t *a = json_array();
	int rc;

	if (istore_read_begin(s) == -1)
		return NULL;
	if (mdb_cursor_open(tl_rd.txn, s->feeds, &c) == 0) {
		for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
		     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
			json_t *o = feed_public(feed_json(&k, &v));
			char nm[80];

			if (o == NULL || k.mv_size >= sizeof(nm)) {
				json_decref(o);
				continue;
			}
			memcpy(nm, k.mv_data, k.mv_size);
			nm[k.mv_size] = '\0';
			json_object_set_new(
			    o, "indicators",
			    json_integer(count_in(s, tl_rd.txn, nm)));
			json_array_append_new(a, o);
		}
		mdb_cursor_close(c);
	}
	istore_read_end(s);
	return a;
}

json_t *
istore_feed_get(struct istore *s, const char *name)
{
	MDB_val k = {strlen(name), (void *)name}, v;
	json_t *o = NULL;

	if (istore_read_begin(s) == -1)
		return NULL;
	if (mdb_get(tl_rd.txn, s->feeds, &k, &v) == 0 &&
	    (o = feed_public(feed_json(&k, &v))) != NULL)
		json_object_set_new(o, "indicators",
		                    json_integer(count_in(s, tl_rd.txn, name)));
	istore_read_end(s);
	return o;
}

json_t *
istore_list_source(struct istore *s, const char *source, size_t max)
{
	char kb[100];
	size_t n = strlen(source) + 1;
	MDB_cursor *c;
	MDB_val k, v, iv;
	json_t *a = json_array();
	int rc;

	if (n >= sizeof(kb) || istore_read_begin(s) == -1)
		return a;
	memcpy(kb, source, n);
	k.mv_data = kb;
	k.mv_size = n;
	if (mdb_cursor_open(tl_rd.txn, s->src, &c) == 0) {
		for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
		     rc == 0 && k.mv_size > n &&
		     memcmp(k.mv_data, kb, n) == 0 && json_array_size(a) < max;
		     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
			uint8_t ik[INTEL_KEY_MAX + 100];
			size_t bl = k.mv_size - n;
			struct match x;
			MDB_val ikv;

			if (bl + n > sizeof(ik))
				continue;
			memcpy(ik, (uint8_t *)k.mv_data + n, bl);
			ik[bl] = 0;
			memcpy(ik + bl + 1, source, n - 1);
			ikv.mv_data = ik;
			ikv.mv_size = bl + n;
			if (mdb_get(tl_rd.txn, s->ind, &ikv, &iv) != 0 ||
			    rec_decode(&iv, &x.r) != 0)
				continue;
			snprintf(x.source, sizeof(x.source), "%s", source);
			x.site = 1;
			x.spec = 0;
			x.priority = 0;
			{
				json_t *o = match_json(&x);

				json_object_set_new(
				    o, "indicator",
				    json_stringn(x.r.text.p, x.r.text.len));
				json_object_set_new(
				    o, "type",
				    json_string(intel_kind_name(x.r.kind)));
				json_object_del(o, "matched");
				json_array_append_new(a, o);
			}
		}
		mdb_cursor_close(c);
	}
	istore_read_end(s);
	return a;
}

json_t *
istore_stats(struct istore *s)
{
	MDB_stat st;
	MDB_envinfo ei;
	MDB_cursor *c;
	MDB_val k, v;
	json_t *o = json_object(), *by = json_object();
	int rc;

	if (istore_read_begin(s) == -1)
		return o;
	if (mdb_stat(tl_rd.txn, s->ind, &st) == 0)
		json_object_set_new(o, "indicators",
		                    json_integer((json_int_t)st.ms_entries));
	if (mdb_cursor_open(tl_rd.txn, s->meta, &c) == 0) {
		k.mv_data = "n:";
		k.mv_size = 2;
		for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
		     rc == 0 && k.mv_size > 2 &&
		     memcmp(k.mv_data, "n:", 2) == 0;
		     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
			uint64_t n;
			char nm[100];

			if (v.mv_size != sizeof(n) ||
			    k.mv_size - 2 >= sizeof(nm))
				continue;
			memcpy(&n, v.mv_data, sizeof(n));
			memcpy(nm, (char *)k.mv_data + 2, k.mv_size - 2);
			nm[k.mv_size - 2] = '\0';
			json_object_set_new(by, nm,
			                    json_integer((json_int_t)n));
		}
		mdb_cursor_close(c);
	}
	json_object_set_new(o, "by_source", by);
	if (mdb_env_info(s->env, &ei) == 0 && mdb_env_stat(s->env, &st) == 0) {
		json_object_set_new(o, "map_size",
		                    json_integer((json_int_t)ei.me_mapsize));
		json_object_set_new(
		    o, "used_bytes",
		    json_integer((json_int_t)(ei.me_last_pgno + 1) *
		                 st.ms_psize));
	}
	istore_read_end(s);
	return o;
}

/* ---- the writer ------------------------------------------------------ */

struct iwtxn *
istore_write_begin(struct istore *s, struct buf *err)
{
	struct iwtxn *w;
	MDB_val k = {4, "plen"}, v;
	int rc;

	if ((w = calloc(1, sizeof(*w))) == NULL) {
		buf_printf(err, "out of memory");
		return NULL;
	}
	w->s = s;
	if ((rc = mdb_txn_begin(s->env, NULL, 0, &w->txn)) != 0) {
		lmdb_err(err, "write transaction", rc);
		free(w);
		return NULL;
	}
	if (mdb_get(w->txn, s->meta, &k, &v) == 0 &&
	    v.mv_size == sizeof(w->plen))
		memcpy(w->plen, v.mv_data, sizeof(w->plen));
	return w;
}

int
istore_write_commit(struct iwtxn *w, struct buf *err)
{
	MDB_val k = {4, "plen"}, v = {sizeof(w->plen), w->plen};
	int rc;

	if (count_flush(w) == -1) {
		buf_printf(err, "lmdb: counts (see the log)");
		istore_write_abort(w);
		return -1;
	}
	if (w->plen_dirty &&
	    (rc = mdb_put(w->txn, w->s->meta, &k, &v, 0)) != 0) {
		lmdb_err(err, "prefix counts", rc);
		istore_write_abort(w);
		return -1;
	}
	rc = mdb_txn_commit(w->txn);
	free(w);
	if (rc != 0)
		return lmdb_err(err, "commit", rc);
	return 0;
}

void
istore_write_abort(struct iwtxn *w)
{
	if (w == NULL)
		return;
	mdb_txn_abort(w->txn);
	free(w);
}

static int
count_flush(struct iwtxn *w)
{
	long long d = w->cdelta;

	if (w->csrc[0] == '\0' || d == 0)
		return 0;
	w->cdelta = 0;
	return count_add(w, w->csrc, d);
}

/* Counts one more (or less) entry of source, in memory for now. */
static int
count_note(struct iwtxn *w, const char *source, long long d)
{
	if (strcmp(w->csrc, source) != 0) {
		if (count_flush(w) == -1 || strlen(source) >= sizeof(w->csrc))
			return count_add(w, source, d);
		snprintf(w->csrc, sizeof(w->csrc), "%s", source);
	}
	w->cdelta += d;
	return 0;
}

static int
count_add(struct iwtxn *w, const char *source, long long d)
{
	char kb[100];
	MDB_val k, v;
	uint64_t n = 0;
	int rc;

	k.mv_size = (size_t)snprintf(kb, sizeof(kb), "n:%s", source);
	k.mv_data = kb;
	if (mdb_get(w->txn, w->s->meta, &k, &v) == 0 && v.mv_size == sizeof(n))
		memcpy(&n, v.mv_data, sizeof(n));
	n = (uint64_t)((long long)n + d);
	if (n == 0)
		rc = mdb_del(w->txn, w->s->meta, &k, NULL);
	else {
		v.mv_data = &n;
		v.mv_size = sizeof(n);
		rc = mdb_put(w->txn, w->s->meta, &k, &v, 0);
	}
	if (rc != 0 && rc != MDB_NOTFOUND)
		return lmdb_err(NULL, "count", rc);
	return 0;
}

long long
istore_count(struct iwtxn *w, const char *source)
{
	if (count_flush(w) == -1)
		return -1;
	return count_in(w->s, w->txn, source);
}

static void
plen_note(struct iwtxn *w, const uint8_t *body, size_t n, int d)
{
	if (n == 19 && body[0] == 'i') {
		w->plen[body[1] == 4 ? 0 : 1][body[18] % 129] += (uint64_t)d;
		w->plen_dirty = 1;
	}
}

int
istore_put(struct iwtxn *w, const char *source, const struct intel_rec *r,
           long long now)
{
	uint8_t ik[INTEL_KEY_MAX + 100], sk[INTEL_KEY_MAX + 100],
	    val[REC_HDR + sizeof(r->tags) + sizeof(r->reference) +
	        INTEL_TEXT_MAX + 1];
	size_t sl = strlen(source), kl = r->ind.keylen;
	MDB_val k, v;
	int rc, isnew = 1;

	if (sl + kl + 1 > sizeof(ik))
		fatalx("%s: key too long", __func__);
	memcpy(ik, r->ind.key, kl);
	ik[kl] = 0;
	memcpy(ik + kl + 1, source, sl);
	memcpy(sk, source, sl);
	sk[sl] = 0;
	memcpy(sk + sl + 1, r->ind.key, kl);
	k.mv_data = sk;
	k.mv_size = sl + 1 + kl;
	v.mv_data = "";
	v.mv_size = 0;
	rc = mdb_put(w->txn, w->s->src, &k, &v, MDB_NOOVERWRITE);
	if (rc == MDB_KEYEXIST)
		isnew = 0;
	else if (rc != 0)
		return lmdb_err(NULL, "put (src)", rc);
	k.mv_data = ik;
	k.mv_size = kl + 1 + sl;
	v.mv_data = val;
	if ((v.mv_size = rec_encode(r, now, val, sizeof(val))) == 0)
		fatalx("%s: record too long", __func__);
	if ((rc = mdb_put(w->txn, w->s->ind, &k, &v, 0)) != 0)
		return lmdb_err(NULL, "put (ind)", rc);
	if (isnew) {
		plen_note(w, r->ind.key, kl, 1);
		if (count_note(w, source, 1) == -1)
			return -1;
	}
	return isnew;
}

int
istore_del(struct iwtxn *w, const char *source, const struct intel_ind *q)
{
	uint8_t ik[INTEL_KEY_MAX + 100], sk[INTEL_KEY_MAX + 100];
	size_t sl = strlen(source), kl = q->keylen;
	MDB_val k;
	int rc;

	memcpy(sk, source, sl);
	sk[sl] = 0;
	memcpy(sk + sl + 1, q->key, kl);
	k.mv_data = sk;
	k.mv_size = sl + 1 + kl;
	rc = mdb_del(w->txn, w->s->src, &k, NULL);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return lmdb_err(NULL, "del (src)", rc);
	memcpy(ik, q->key, kl);
	ik[kl] = 0;
	memcpy(ik + kl + 1, source, sl);
	k.mv_data = ik;
	k.mv_size = kl + 1 + sl;
	if ((rc = mdb_del(w->txn, w->s->ind, &k, NULL)) != 0 &&
	    rc != MDB_NOTFOUND)
		return lmdb_err(NULL, "del (ind)", rc);
	plen_note(w, q->key, kl, -1);
	if (count_note(w, source, -1) == -1)
		return -1;
	return 1;
}

long long
istore_del_source(struct iwtxn *w, const char *source)
{
	uint8_t kb[100], ik[INTEL_KEY_MAX + 100];
	size_t n = strlen(source) + 1;
	MDB_cursor *c;
	MDB_val k, v, key;
	long long removed = 0;
	int rc;

	if (n >= sizeof(kb))
		return 0;
	memcpy(kb, source, n);
	if ((rc = mdb_cursor_open(w->txn, w->s->src, &c)) != 0)
		return lmdb_err(NULL, "cursor", rc);
	k.mv_data = kb;
	k.mv_size = n;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
	     rc == 0 && k.mv_size > n && memcmp(k.mv_data, kb, n) == 0;
	     /* after mdb_cursor_del, MDB_NEXT gives the entry that moved
	      * into place (GET_CURRENT fails at the end of a page) */
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		size_t bl = k.mv_size - n;

		memcpy(ik, (uint8_t *)k.mv_data + n, bl);
		plen_note(w, ik, bl, -1);
		ik[bl] = 0;
		memcpy(ik + bl + 1, source, n - 1);
		key.mv_data = ik;
		key.mv_size = bl + n;
		if ((rc = mdb_del(w->txn, w->s->ind, &key, NULL)) != 0 &&
		    rc != MDB_NOTFOUND)
			break;
		if ((rc = mdb_cursor_del(c, 0)) != 0)
			break;
		removed++;
	}
	mdb_cursor_close(c);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return lmdb_err(NULL, "removing a source", rc);
	if (count_flush(w) == -1 ||
	    count_add(w, source, -count_in(w->s, w->txn, source)) == -1)
		return -1;
	return removed;
}

int
istore_feed_put(struct iwtxn *w, const char *name, json_t *rec)
{
	json_t *copy = json_copy(rec);
	char *txt;
	uint8_t *val;
	size_t n;
	int32_t p =
	    (int32_t)json_integer_value(json_object_get(rec, "priority"));
	MDB_val k = {strlen(name), (void *)name}, v;
	int rc;

	json_object_del(copy, "priority");
	json_object_del(copy, "name");
	json_object_del(copy, "indicators");
	txt = json_dumps(copy, JSON_COMPACT);
	json_decref(copy);
	if (txt == NULL)
		return -1;
	n = strlen(txt);
	if ((val = malloc(n + 4)) == NULL) {
		free(txt);
		return -1;
	}
	memcpy(val, &p, 4);
	memcpy(val + 4, txt, n);
	free(txt);
	v.mv_data = val;
	v.mv_size = n + 4;
	rc = mdb_put(w->txn, w->s->feeds, &k, &v, 0);
	free(val);
	if (rc != 0)
		return lmdb_err(NULL, "feed", rc);
	return 0;
}

json_t *
istore_feed_wget(struct iwtxn *w, const char *name)
{
	MDB_val k = {strlen(name), (void *)name}, v;
	json_t *o;

	if (mdb_get(w->txn, w->s->feeds, &k, &v) != 0)
		return NULL;
	if ((o = feed_json(&k, &v)) != NULL)
		json_object_set_new(o, "indicators",
		                    json_integer(istore_count(w, name)));
	return o;
}

int
istore_feed_del(struct iwtxn *w, const char *name)
{
	MDB_val k = {strlen(name), (void *)name};
	int rc;

	if (istore_del_source(w, name) == -1)
		return -1;
	rc = mdb_del(w->txn, w->s->feeds, &k, NULL);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return lmdb_err(NULL, "feed", rc);
	return 1;
}

/* ---- bulk changes (imports) ------------------------------------------- */

/* An entry in the arena: u8 op, u16 body length, u16 record length, the
 * key body, the record (puts only). */
#define BOP_PUT    1
#define BOP_DEL    2
#define BOP_INSERT 0x80 /* apply: not in the store yet */
#define BENT_HDR   5

struct bent {
	uint64_t pfx; /* the body's first 8 bytes, big-endian: most
	                 comparisons end here */
	size_t off;   /* in the arena; also the order given */
};

struct ibulk {
	uint8_t *a;
	size_t n, cap;
	struct bent *e;
	size_t ne, ecap;
	long long now;
	const int *cancel; /* istore_bulk_set_cancel */
	unsigned long ticks;
};

void
istore_bulk_set_cancel(struct ibulk *b, const int *flag)
{
	b->cancel = flag;
}

/* Checked every 1024 entries: an import given up (the daemon stopping). */
static int
bulk_cancelled(struct ibulk *b)
{
	return (++b->ticks & 1023) == 0 && b->cancel != NULL &&
	       __atomic_load_n(b->cancel, __ATOMIC_RELAXED);
}

struct ibulk *
istore_bulk_new(long long now)
{
	struct ibulk *b = calloc(1, sizeof(*b));

	if (b != NULL)
		b->now = now;
	return b;
}

void
istore_bulk_free(struct ibulk *b)
{
	if (b == NULL)
		return;
	free(b->a);
	free(b->e);
	free(b);
}

size_t
istore_bulk_size(const struct ibulk *b)
{
	return b->cap + b->ecap * sizeof(struct bent);
}

static int
bulk_add(struct ibulk *b, int op, const uint8_t *body, size_t bl,
         const uint8_t *rec, size_t rl)
{
	size_t need = BENT_HDR + bl + rl, i;
	uint16_t l[2] = {(uint16_t)bl, (uint16_t)rl};
	uint64_t pfx = 0;
	uint8_t *p;

	if (b->n + need > b->cap) {
		size_t cap = b->cap ? b->cap : 1 << 20;

		while (b->n + need > cap)
			cap *= 2;
		if ((p = realloc(b->a, cap)) == NULL)
			return -1;
		b->a = p;
		b->cap = cap;
	}
	if (b->ne == b->ecap) {
		size_t cap = b->ecap ? b->ecap * 2 : 1 << 14;
		struct bent *e = realloc(b->e, cap * sizeof(*e));

		if (e == NULL)
			return -1;
		b->e = e;
		b->ecap = cap;
	}
	p = b->a + b->n;
	p[0] = (uint8_t)op;
	memcpy(p + 1, l, sizeof(l));
	memcpy(p + BENT_HDR, body, bl);
	if (rl)
		memcpy(p + BENT_HDR + bl, rec, rl);
	for (i = 0; i < 8; i++)
		pfx = pfx << 8 | (i < bl ? body[i] : 0);
	b->e[b->ne].pfx = pfx;
	b->e[b->ne].off = b->n;
	b->ne++;
	b->n += need;
	return 0;
}

int
istore_bulk_put(struct ibulk *b, const struct intel_rec *r)
{
	uint8_t val[REC_HDR + sizeof(r->tags) + sizeof(r->reference) +
	            INTEL_TEXT_MAX + 1];
	size_t vl = rec_encode(r, b->now, val, sizeof(val));

	if (vl == 0)
		fatalx("%s: record too long", __func__);
	return bulk_add(b, BOP_PUT, r->ind.key, r->ind.keylen, val, vl);
}

int
istore_bulk_del(struct ibulk *b, const struct intel_ind *q)
{
	return bulk_add(b, BOP_DEL, q->key, q->keylen, NULL, 0);
}

static void
bent_view(const struct ibulk *b, const struct bent *e, int *op,
          const uint8_t **body, size_t *bl, const uint8_t **rec, size_t *rl)
{
	const uint8_t *p = b->a + e->off;
	uint16_t l[2];

	memcpy(l, p + 1, sizeof(l));
	*op = p[0];
	*body = p + BENT_HDR;
	*bl = l[0];
	*rec = p + BENT_HDR + l[0];
	*rl = l[1];
}

/* LMDB's default key order: bytes, then the shorter first. */
static int
keycmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
	int c = memcmp(a, b, al < bl ? al : bl);

	if (c != 0)
		return c;
	return al < bl ? -1 : al > bl ? 1 : 0;
}

static int
bent_cmp(const void *x, const void *y, void *arg)
{
	const struct ibulk *sort_bulk = arg;
	const struct bent *a = x, *b = y;
	const uint8_t *ab, *bb, *r;
	size_t al, bl, rl;
	int op, c;

	if (a->pfx != b->pfx)
		return a->pfx < b->pfx ? -1 : 1;
	bent_view(sort_bulk, a, &op, &ab, &al, &r, &rl);
	bent_view(sort_bulk, b, &op, &bb, &bl, &r, &rl);
	if ((c = keycmp(ab, al, bb, bl)) != 0)
		return c;
	return a->off < b->off ? -1 : a->off > b->off ? 1 : 0;
}

/* Sorts and keeps the last of each key. */
static void
bulk_sort(struct ibulk *b)
{
	size_t i, o = 0;

	if (b->ne > 1)
		qsort_r(b->e, b->ne, sizeof(b->e[0]), bent_cmp, b);
	for (i = 0; i < b->ne; i++) {
		const uint8_t *ab, *bb, *r;
		size_t al, bl, rl;
		int op;

		if (i + 1 < b->ne && b->e[i].pfx == b->e[i + 1].pfx) {
			bent_view(b, &b->e[i], &op, &ab, &al, &r, &rl);
			bent_view(b, &b->e[i + 1], &op, &bb, &bl, &r, &rl);
			if (keycmp(ab, al, bb, bl) == 0)
				continue; /* a later one follows */
		}
		b->e[o++] = b->e[i];
	}
	b->ne = o;
}

/* The same record but for the time it was added (bytes 28 to 35). */
static int
rec_same(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
	return al == bl && al >= REC_HDR && memcmp(a, b, 28) == 0 &&
	       memcmp(a + 36, b + 36, al - 36) == 0;
}

#define LAST_PAST  ((size_t)-1) /* past the last key: append */
#define LAST_NEVER ((size_t)-2) /* appending failed: insert */

/* Puts k/v through cursor c, appending once the keys go past the
 * database's last key (last, *lastl; LAST_PAST once past it). */
static int
put_sorted(MDB_cursor *c, MDB_val *k, MDB_val *v, const uint8_t *last,
           size_t *lastl)
{
	int rc;

	if (*lastl < LAST_NEVER &&
	    keycmp(k->mv_data, k->mv_size, last, *lastl) > 0)
		*lastl = LAST_PAST;
	if (*lastl == LAST_PAST) {
		rc = mdb_cursor_put(c, k, v, MDB_APPEND);
		if (rc != MDB_KEYEXIST)
			return rc;
		/* not in LMDB's order after all: insert from here on */
		*lastl = LAST_NEVER;
	}
	return mdb_cursor_put(c, k, v, 0);
}

static int
last_key(MDB_cursor *c, uint8_t *out, size_t cap, size_t *outl)
{
	MDB_val k, v;
	int rc = mdb_cursor_get(c, &k, &v, MDB_LAST);

	if (rc == MDB_NOTFOUND) {
		*outl = LAST_PAST; /* empty: every key appends */
		return 0;
	}
	if (rc != 0)
		return rc;
	if (k.mv_size > cap)
		fatalx("%s: key of %zu bytes", __func__, k.mv_size);
	memcpy(out, k.mv_data, k.mv_size);
	*outl = k.mv_size;
	return 0;
}

int
istore_bulk_apply(struct iwtxn *w, const char *source, struct ibulk *b,
                  int replace, ibulk_keep keep, void *karg,
                  struct ibulk_counts *cnt)
{
	uint8_t sk[INTEL_KEY_MAX + 100], ik[INTEL_KEY_MAX + 100],
	    lasti[INTEL_KEY_MAX + 100], lasts[INTEL_KEY_MAX + 100],
	    old[INTEL_KEY_MAX];
	size_t sl = strlen(source), n = sl + 1, i = 0, lastil, lastsl;
	MDB_cursor *cs = NULL, *ci = NULL;
	MDB_val k, v, key, val;
	const uint8_t *body, *rec;
	size_t bl, rl;
	int op, rc, c;

	memset(cnt, 0, sizeof(*cnt));
	if (n + INTEL_KEY_MAX > sizeof(sk))
		fatalx("%s: source name too long", __func__);
	bulk_sort(b);
	if ((rc = mdb_cursor_open(w->txn, w->s->src, &cs)) != 0 ||
	    (rc = mdb_cursor_open(w->txn, w->s->ind, &ci)) != 0)
		goto fail;
	memcpy(sk, source, n);

	/* 1. The source's entries as they are, in the same order as the
	 * bulk's: removed, changed, unchanged, kept. */
	k.mv_data = sk;
	k.mv_size = n;
	for (rc = mdb_cursor_get(cs, &k, &v, MDB_SET_RANGE);
	     rc == 0 && k.mv_size > n && memcmp(k.mv_data, sk, n) == 0;) {
		size_t ol = k.mv_size - n;

		if (bulk_cancelled(b)) {
			rc = ECANCELED;
			goto fail;
		}
		if (ol > sizeof(old)) {
			rc = mdb_cursor_get(cs, &k, &v, MDB_NEXT);
			continue;
		}
		memcpy(old, (const uint8_t *)k.mv_data + n, ol);
		c = 1;
		while (i < b->ne) {
			bent_view(b, &b->e[i], &op, &body, &bl, &rec, &rl);
			if ((c = keycmp(body, bl, old, ol)) >= 0)
				break;
			if (op == BOP_PUT)
				b->a[b->e[i].off] |= BOP_INSERT;
			i++;
		}
		memcpy(ik, old, ol);
		ik[ol] = 0;
		memcpy(ik + ol + 1, source, sl);
		key.mv_data = ik;
		key.mv_size = ol + 1 + sl;
		if (i < b->ne && c == 0 && op == BOP_PUT) {
			i++;
			rc = mdb_get(w->txn, w->s->ind, &key, &val);
			if (rc == 0 &&
			    rec_same(val.mv_data, val.mv_size, rec, rl)) {
				cnt->unchanged++;
			} else {
				val.mv_data = (void *)rec;
				val.mv_size = rl;
				if ((rc = mdb_put(w->txn, w->s->ind, &key, &val,
				                  0)) != 0)
					goto fail;
				cnt->changed++;
			}
			rc = mdb_cursor_get(cs, &k, &v, MDB_NEXT);
			continue;
		}
		if (i < b->ne && c == 0)
			i++; /* a BOP_DEL of this entry */
		else {
			struct rec_view x;
			int keepit = !replace;

			if (replace && keep != NULL &&
			    mdb_get(w->txn, w->s->ind, &key, &val) == 0 &&
			    rec_decode(&val, &x) == 0)
				keepit = keep(karg, x.ref.p, x.ref.len) == 1;
			if (keepit) {
				cnt->kept++;
				rc = mdb_cursor_get(cs, &k, &v, MDB_NEXT);
				continue;
			}
		}
		if ((rc = mdb_del(w->txn, w->s->ind, &key, NULL)) != 0 &&
		    rc != MDB_NOTFOUND)
			goto fail;
		plen_note(w, old, ol, -1);
		if ((rc = mdb_cursor_del(cs, 0)) != 0)
			goto fail;
		cnt->removed++;
		/* after mdb_cursor_del, MDB_NEXT gives the entry that moved
		 * into place */
		rc = mdb_cursor_get(cs, &k, &v, MDB_NEXT);
	}
	if (rc != 0 && rc != MDB_NOTFOUND)
		goto fail;
	for (; i < b->ne; i++)
		if (b->a[b->e[i].off] == BOP_PUT)
			b->a[b->e[i].off] |= BOP_INSERT;

	/* 2. The new entries, in key order, appended past the last key. */
	if ((rc = last_key(ci, lasti, sizeof(lasti), &lastil)) != 0 ||
	    (rc = last_key(cs, lasts, sizeof(lasts), &lastsl)) != 0)
		goto fail;
	for (i = 0; i < b->ne; i++) {
		bent_view(b, &b->e[i], &op, &body, &bl, &rec, &rl);
		if (op != (BOP_PUT | BOP_INSERT))
			continue;
		if (bulk_cancelled(b)) {
			rc = ECANCELED;
			goto fail;
		}
		memcpy(sk + n, body, bl);
		k.mv_data = sk;
		k.mv_size = n + bl;
		v.mv_data = "";
		v.mv_size = 0;
		if ((rc = put_sorted(cs, &k, &v, lasts, &lastsl)) != 0)
			goto fail;
		memcpy(ik, body, bl);
		ik[bl] = 0;
		memcpy(ik + bl + 1, source, sl);
		key.mv_data = ik;
		key.mv_size = bl + 1 + sl;
		val.mv_data = (void *)rec;
		val.mv_size = rl;
		if ((rc = put_sorted(ci, &key, &val, lasti, &lastil)) != 0)
			goto fail;
		plen_note(w, body, bl, 1);
		cnt->added++;
	}
	mdb_cursor_close(cs);
	mdb_cursor_close(ci);
	if (count_flush(w) == -1 ||
	    count_add(w, source, cnt->added - cnt->removed) == -1)
		return -1;
	return 0;
fail:
	if (cs != NULL)
		mdb_cursor_close(cs);
	if (ci != NULL)
		mdb_cursor_close(ci);
	return lmdb_err(NULL, "bulk change", rc);
}

/* ---- walks (exports) ---------------------------------------------------- */

struct iiter {
	struct istore *s;
	MDB_txn *txn;
	MDB_cursor *c;
	char source[80];
	size_t n;
	int started;
};

struct iiter *
istore_iter_new(struct istore *s, const char *source)
{
	struct iiter *it;
	int rc;

	if (strlen(source) >= sizeof(it->source) ||
	    (it = calloc(1, sizeof(*it))) == NULL)
		return NULL;
	it->s = s;
	snprintf(it->source, sizeof(it->source), "%s", source);
	it->n = strlen(source) + 1;
	if ((rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &it->txn)) != 0 ||
	    (rc = mdb_cursor_open(it->txn, s->src, &it->c)) != 0) {
		lmdb_err(NULL, "export", rc);
		istore_iter_free(it);
		return NULL;
	}
	return it;
}

void
istore_iter_free(struct iiter *it)
{
	if (it == NULL)
		return;
	if (it->c != NULL)
		mdb_cursor_close(it->c);
	if (it->txn != NULL)
		mdb_txn_abort(it->txn);
	free(it);
}

int
istore_iter_next(struct iiter *it, struct intel_rec *r, long long *added)
{
	uint8_t ik[INTEL_KEY_MAX + 100];
	MDB_val k, v, key, val;
	struct rec_view x;
	int rc;

	for (;;) {
		if (!it->started) {
			k.mv_data = it->source;
			k.mv_size = it->n;
			rc = mdb_cursor_get(it->c, &k, &v, MDB_SET_RANGE);
			it->started = 1;
		} else
			rc = mdb_cursor_get(it->c, &k, &v, MDB_NEXT);
		if (rc == MDB_NOTFOUND ||
		    (rc == 0 && (k.mv_size <= it->n ||
		                 memcmp(k.mv_data, it->source, it->n) != 0)))
			return 0;
		if (rc != 0)
			return lmdb_err(NULL, "export", rc);
		if (k.mv_size - it->n > INTEL_KEY_MAX)
			continue;
		memcpy(ik, (const uint8_t *)k.mv_data + it->n,
		       k.mv_size - it->n);
		ik[k.mv_size - it->n] = 0;
		memcpy(ik + k.mv_size - it->n + 1, it->source, it->n - 1);
		key.mv_data = ik;
		key.mv_size = k.mv_size;
		if ((rc = mdb_get(it->txn, it->s->ind, &key, &val)) != 0 ||
		    rec_decode(&val, &x) != 0 || x.text.len > INTEL_TEXT_MAX)
			continue; /* (a record out of step: not exported) */
		memset(r, 0, sizeof(*r));
		r->ind.kind = x.kind;
		memcpy(r->ind.text, x.text.p, x.text.len);
		r->verdict = x.verdict;
		r->score = x.score;
		snprintf(r->tags, sizeof(r->tags), "%.*s", (int)x.tags.len,
		         x.tags.p);
		snprintf(r->reference, sizeof(r->reference), "%.*s",
		         (int)x.ref.len, x.ref.p);
		r->first_seen = x.first;
		r->last_seen = x.last;
		r->expires = x.expires;
		*added = x.added;
		return 1;
	}
}
