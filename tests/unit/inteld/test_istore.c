/*
 * Unit tests of the indicator store: entries of several sources under one
 * indicator, longest-prefix and parent-domain lookups, precedence, expiry,
 * counts, and replacing a large source in one transaction (the delete
 * loop crossing many pages).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <pthread.h>

#include "istore.c"

static char dir[] = "/tmp/vigil-istore.XXXXXX";
static struct istore *st;

static void
rec(struct intel_rec *r, const char *v, int verdict, int score)
{
	memset(r, 0, sizeof(*r));
	assert_int_equal(intel_parse(INTEL_ANY, v, strlen(v), &r->ind, NULL, 0),
	                 0);
	r->verdict = verdict;
	r->score = score;
}

static void
put(struct iwtxn *w, const char *src, const char *v, int verdict, int score,
    long long expires)
{
	struct intel_rec r;

	rec(&r, v, verdict, score);
	r.expires = expires;
	assert_true(istore_put(w, src, &r, 1000) >= 0);
}

/* "verdict decided_by" of a lookup */
static const char *
look(const char *v, long long now)
{
	static char out[200];
	struct intel_ind q;
	json_t *a;

	assert_int_equal(intel_parse(INTEL_ANY, v, strlen(v), &q, NULL, 0), 0);
	a = istore_lookup(st, &q, now);
	assert_non_null(a);
	snprintf(out, sizeof(out), "%s %s",
	         json_string_value(json_object_get(a, "verdict")),
	         json_is_string(json_object_get(a, "decided_by"))
	             ? json_string_value(json_object_get(a, "decided_by"))
	             : "-");
	json_decref(a);
	return out;
}

static void
feed(struct iwtxn *w, const char *name, int prio)
{
	json_t *f = json_pack("{s:i}", "priority", prio);

	assert_int_equal(istore_feed_put(w, name, f), 0);
	json_decref(f);
}

static void
test_precedence(void **state)
{
	struct buf err;
	struct iwtxn *w;

	(void)state;
	buf_init(&err, 1024);
	w = istore_write_begin(st, &err);
	assert_non_null(w);
	feed(w, "low", 10);
	feed(w, "high", 90);
	put(w, "low", "10.0.0.0/8", INTEL_MALICIOUS, 90, 0);
	put(w, "high", "10.1.0.0/16", INTEL_BENIGN, 0, 0);
	put(w, "low", "evil.example", INTEL_MALICIOUS, 80, 0);
	put(w, "high", "evil.example", INTEL_SUSPICIOUS, 50, 0);
	put(w, "low", "expired.example", INTEL_MALICIOUS, 80, 1500);
	put(w, ISTORE_ALLOW, "good.evil.example", INTEL_BENIGN, 0, 0);
	put(w, ISTORE_BLOCK, "10.1.2.3", INTEL_MALICIOUS, 100, 0);
	assert_int_equal(istore_write_commit(w, &err), 0);
	assert_string_equal(look("10.9.9.9", 1000), "malicious low");
	assert_string_equal(look("10.1.9.9", 1000), "benign high");
	assert_string_equal(look("10.1.2.3", 1000), "malicious site:block");
	assert_string_equal(look("11.0.0.1", 1000), "unknown -");
	assert_string_equal(look("x.evil.example", 1000), "suspicious high");
	assert_string_equal(look("a.good.evil.example", 1000),
	                    "benign site:allow");
	assert_string_equal(look("expired.example", 1000), "malicious low");
	assert_string_equal(look("expired.example", 1500), "unknown -");
	buf_free(&err);
}

static void
test_replace_large(void **state)
{
	struct buf err;
	struct iwtxn *w;
	struct intel_rec r;
	char v[80];
	long long i, n0 = 100000, n = n0;

	(void)state;
	buf_init(&err, 1024);
	w = istore_write_begin(st, &err);
	feed(w, "zz-last", 1);
	memset(&r, 0, sizeof(r));
	r.verdict = INTEL_MALICIOUS;
	r.score = 100;
	for (i = 0; i < n0; i++) {
		/* every kind, keys of several lengths */
		if (i % 4 == 0) {
			/* random keys: pages fill unevenly */
			unsigned long long x = (unsigned long long)i;
			int k;

			for (k = 0; k < 4; k++) {
				x = x * 6364136223846793005ULL +
				    1442695040888963407ULL;
				snprintf(v + 16 * k, sizeof(v) - 16 * (size_t)k,
				         "%016llx", x);
			}
		} else if (i % 4 == 1)
			snprintf(v, sizeof(v), "d%lld.example.com", i);
		else if (i % 4 == 2)
			snprintf(v, sizeof(v), "%lld.%lld.%lld.%lld",
			         10 + i % 200, (i >> 8) & 255, (i >> 16) & 255,
			         i & 255);
		else
			snprintf(v, sizeof(v),
			         "http://u%lld.example.net/p/%lld", i, i);
		assert_int_equal(
		    intel_parse(INTEL_ANY, v, strlen(v), &r.ind, NULL, 0), 0);
		assert_true(istore_put(w, "zz-last", &r, 1) >= 0);
	}
	n = istore_count(w, "zz-last");
	assert_true(n > n0 - 1000); /* a few addresses repeat */
	assert_int_equal(istore_write_commit(w, &err), 0);
	w = istore_write_begin(st, &err);
	assert_int_equal(istore_del_source(w, "zz-last"), n);
	assert_int_equal(istore_count(w, "zz-last"), 0);
	assert_int_equal(istore_count(w, "low"), 3);
	assert_int_equal(istore_write_commit(w, &err), 0);
	assert_string_equal(look("10.9.9.9", 1000), "malicious low");
	buf_free(&err);
}

static void
bput(struct ibulk *b, const char *v, int verdict, int score)
{
	struct intel_rec r;

	rec(&r, v, verdict, score);
	assert_int_equal(istore_bulk_put(b, &r), 0);
}

static void
bapply(struct ibulk *b, const char *src, int replace, struct ibulk_counts *c)
{
	struct buf err;
	struct iwtxn *w;

	buf_init(&err, 1024);
	w = istore_write_begin(st, &err);
	assert_non_null(w);
	assert_int_equal(istore_bulk_apply(w, src, b, replace, NULL, NULL, c),
	                 0);
	assert_int_equal(istore_write_commit(w, &err), 0);
	istore_bulk_free(b);
	buf_free(&err);
}

/* Bulk changes: sorted, the last of a key counts, counts of what changed,
 * replace removes what is absent, a delta keeps it, appending past the
 * last key of a database that holds other sources (before and after). */
static void
test_bulk(void **state)
{
	struct ibulk_counts c;
	struct ibulk *b;
	struct intel_ind q;
	struct buf err;
	struct iwtxn *w;
	char v[80];
	int i;

	(void)state;
	buf_init(&err, 1024);
	w = istore_write_begin(st, &err);
	feed(w, "bulk", 50);
	put(w, "aaa", "zz.example", INTEL_MALICIOUS, 10, 0);
	assert_int_equal(istore_write_commit(w, &err), 0);

	b = istore_bulk_new(2000);
	for (i = 999; i >= 0; i--) {
		snprintf(v, sizeof(v), "h%d.bulk.example", i);
		bput(b, v, INTEL_MALICIOUS, 90);
	}
	bput(b, "192.0.2.0/24", INTEL_SUSPICIOUS, 50);
	bput(b, "192.0.2.0/24", INTEL_MALICIOUS, 70); /* the last counts */
	bapply(b, "bulk", 1, &c);
	assert_int_equal(c.added, 1001);
	assert_int_equal(c.removed + c.changed + c.unchanged, 0);
	assert_string_equal(look("192.0.2.9", 3000), "malicious bulk");
	assert_string_equal(look("a.h7.bulk.example", 3000), "malicious bulk");
	assert_string_equal(look("x.zz.example", 3000), "malicious aaa");

	/* again: one changed, one new, 998 unchanged, one removed */
	b = istore_bulk_new(3000);
	for (i = 0; i < 999; i++) {
		snprintf(v, sizeof(v), "h%d.bulk.example", i);
		bput(b, v, INTEL_MALICIOUS, i == 5 ? 40 : 90);
	}
	bput(b, "192.0.2.0/24", INTEL_MALICIOUS, 70);
	bput(b, "zzz.example", INTEL_BENIGN, 0);
	bapply(b, "bulk", 1, &c);
	assert_int_equal(c.added, 1);
	assert_int_equal(c.changed, 1);
	assert_int_equal(c.unchanged, 999);
	assert_int_equal(c.removed, 1);
	assert_string_equal(look("h999.bulk.example", 3000), "unknown -");
	assert_string_equal(look("zzz.example", 3000), "benign bulk");
	w = istore_write_begin(st, &err);
	assert_int_equal(istore_count(w, "bulk"), 1001);
	istore_write_abort(w);

	/* a delta: one removed, one added, the rest kept */
	b = istore_bulk_new(4000);
	assert_int_equal(intel_parse(INTEL_ANY, "zzz.example", 11, &q, NULL, 0),
	                 0);
	assert_int_equal(istore_bulk_del(b, &q), 0);
	bput(b, "198.51.100.7", INTEL_MALICIOUS, 100);
	bapply(b, "bulk", 0, &c);
	assert_int_equal(c.added, 1);
	assert_int_equal(c.removed, 1);
	assert_int_equal(c.kept, 1000);
	assert_string_equal(look("zzz.example", 5000), "unknown -");
	assert_string_equal(look("198.51.100.7", 5000), "malicious bulk");
	assert_string_equal(look("h3.bulk.example", 5000), "malicious bulk");

	/* an empty replacement removes all */
	b = istore_bulk_new(5000);
	bapply(b, "bulk", 1, &c);
	assert_int_equal(c.removed, 1001);
	assert_string_equal(look("h3.bulk.example", 5000), "unknown -");
	assert_string_equal(look("x.zz.example", 5000), "malicious aaa");
	w = istore_write_begin(st, &err);
	assert_int_equal(istore_count(w, "bulk"), 0);
	assert_int_equal(w->plen[0][24], 0);
	istore_write_abort(w);
	buf_free(&err);
}

/* istore_lookup_text writes what json_dumps(istore_lookup, COMPACT)
 * writes, for every kind of answer: unknown, several sources, site lists,
 * times, tags and references with characters JSON escapes. */
static void
same_text(const char *v, long long now)
{
	struct intel_ind q;
	struct buf b;
	json_t *a;
	char *want;
	int verdict = 99;

	assert_int_equal(intel_parse(INTEL_ANY, v, strlen(v), &q, NULL, 0), 0);
	a = istore_lookup(st, &q, now);
	assert_non_null(a);
	want = json_dumps(a, JSON_COMPACT);
	buf_init(&b, 1 << 20);
	assert_int_equal(istore_lookup_text(st, &q, now, &b, &verdict), 0);
	assert_string_equal(buf_cstr(&b), want);
	assert_int_equal(
	    verdict, strcmp(json_string_value(json_object_get(a, "verdict")),
	                    "unknown") == 0
	                 ? -1
	                 : intel_verdict_parse(
	                       json_string_value(json_object_get(a, "verdict")),
	                       strlen(json_string_value(
	                           json_object_get(a, "verdict")))));
	free(want);
	json_decref(a);
	buf_free(&b);
}

static void
test_text(void **state)
{
	struct buf err, b;
	struct iwtxn *w;
	struct intel_rec r;
	struct intel_ind q;
	json_t *a;
	int verdict;

	(void)state;
	buf_init(&err, 1024);
	w = istore_write_begin(st, &err);
	assert_non_null(w);
	feed(w, "t1", 40);
	feed(w, "t2", 60);
	rec(&r, "text.example", INTEL_MALICIOUS, 70);
	snprintf(r.tags, sizeof(r.tags),
	         "a\"b,c\\d,tab\there,\x01ctl,caf\xc3\xa9");
	snprintf(r.reference, sizeof(r.reference), "ref \"q\" /path\n\r\b\f");
	r.first_seen = 100;
	r.last_seen = 200;
	r.expires = 9000;
	assert_true(istore_put(w, "t1", &r, 1000) >= 0);
	rec(&r, "sub.text.example", INTEL_SUSPICIOUS, 30);
	assert_true(istore_put(w, "t2", &r, 1000) >= 0);
	put(w, ISTORE_BLOCK, "192.0.2.0/24", INTEL_MALICIOUS, 100, 0);
	put(w, "t2", "192.0.2.7", INTEL_BENIGN, 0, 0);
	rec(&r, "bad-utf8.example", INTEL_MALICIOUS, 50);
	snprintf(r.reference, sizeof(r.reference), "x\xff\xc3(y\xed\xa0\x80z");
	assert_true(istore_put(w, "t1", &r, 1000) >= 0);
	assert_int_equal(istore_write_commit(w, &err), 0);
	same_text("a.sub.text.example", 1000);
	same_text("text.example", 1000);
	same_text("192.0.2.7", 1000);
	same_text("198.51.100.1", 1000);
	same_text("https://Text.Example:443/a/../b", 1000);
	same_text("text.example", 9500); /* expired */
	/* bytes that are no UTF-8: U+FFFD each (jansson would refuse the
	 * string); the answer is still JSON */
	assert_int_equal(
	    intel_parse(INTEL_ANY, "bad-utf8.example", 16, &q, NULL, 0), 0);
	buf_init(&b, 1 << 20);
	assert_int_equal(istore_lookup_text(st, &q, 1000, &b, &verdict), 0);
	assert_int_equal(verdict, INTEL_MALICIOUS);
	a = json_loads(buf_cstr(&b), 0, NULL);
	assert_non_null(a);
	assert_string_equal(
	    json_string_value(json_object_get(
	        json_array_get(json_object_get(a, "sources"), 0), "reference")),
	    "x\xef\xbf\xbd\xef\xbf\xbd(y\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdz");
	json_decref(a);
	buf_free(&b);
	buf_free(&err);
}

/* Readers on other threads (vigil-inteld's event-loop threads): each has
 * its own read transaction, kept between lookups, and sees each commit
 * whole once it is made. */
struct reader_arg {
	const char *v;
	char got[2][200];
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int step;
};

static void
look_text(const char *v, char *out, size_t n)
{
	struct intel_ind q;
	struct buf b;
	json_t *a;
	int verdict;

	buf_init(&b, 1 << 20);
	if (intel_parse(INTEL_ANY, v, strlen(v), &q, NULL, 0) == -1 ||
	    istore_lookup_text(st, &q, 1000, &b, &verdict) == -1 ||
	    (a = json_loads(buf_cstr(&b), 0, NULL)) == NULL) {
		snprintf(out, n, "failed");
		buf_free(&b);
		return;
	}
	snprintf(out, n, "%s %zu",
	         json_string_value(json_object_get(a, "verdict")),
	         json_array_size(json_object_get(a, "sources")));
	json_decref(a);
	buf_free(&b);
}

static void *
reader_main(void *arg)
{
	struct reader_arg *ra = arg;
	int i;

	for (i = 0; i < 2; i++) {
		pthread_mutex_lock(&ra->mu);
		while (ra->step != 2 * i + 1)
			pthread_cond_wait(&ra->cv, &ra->mu);
		pthread_mutex_unlock(&ra->mu);
		look_text(ra->v, ra->got[i], sizeof(ra->got[i]));
		pthread_mutex_lock(&ra->mu);
		ra->step++;
		pthread_cond_broadcast(&ra->cv);
		pthread_mutex_unlock(&ra->mu);
	}
	istore_read_release(st);
	return NULL;
}

static void
reader_step(struct reader_arg *ra)
{
	pthread_mutex_lock(&ra->mu);
	ra->step++;
	pthread_cond_broadcast(&ra->cv);
	while (ra->step % 2 == 1)
		pthread_cond_wait(&ra->cv, &ra->mu);
	pthread_mutex_unlock(&ra->mu);
}

static void
test_threads(void **state)
{
	struct reader_arg ra;
	struct buf err;
	struct iwtxn *w;
	pthread_t th;
	char here[200];

	(void)state;
	memset(&ra, 0, sizeof(ra));
	ra.v = "thr.example";
	pthread_mutex_init(&ra.mu, NULL);
	pthread_cond_init(&ra.cv, NULL);
	buf_init(&err, 1024);
	assert_int_equal(pthread_create(&th, NULL, reader_main, &ra), 0);
	reader_step(&ra); /* the thread's first lookup: nothing yet */
	w = istore_write_begin(st, &err);
	assert_non_null(w);
	put(w, "t1", "thr.example", INTEL_MALICIOUS, 90, 0);
	put(w, "t2", "thr.example", INTEL_BENIGN, 10, 0);
	/* not committed: this thread's reader does not see it either */
	look_text("thr.example", here, sizeof(here));
	assert_string_equal(here, "unknown 0");
	assert_int_equal(istore_write_commit(w, &err), 0);
	reader_step(&ra); /* its second lookup, on its kept transaction */
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_string_equal(ra.got[0], "unknown 0");
	assert_string_equal(ra.got[1], "benign 2");
	look_text("thr.example", here, sizeof(here));
	assert_string_equal(here, "benign 2");
	pthread_mutex_destroy(&ra.mu);
	pthread_cond_destroy(&ra.cv);
	buf_free(&err);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_precedence),
	    cmocka_unit_test(test_replace_large),
	    cmocka_unit_test(test_bulk),
	    cmocka_unit_test(test_text),
	    cmocka_unit_test(test_threads),
	};
	struct buf err;
	int rc;

	buf_init(&err, 1024);
	if (mkdtemp(dir) == NULL || istore_open(dir, 1LL << 30, &st, &err) != 0)
		return 1;
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	istore_close(st);
	{
		char p[300];

		snprintf(p, sizeof(p), "%s/data.mdb", dir);
		unlink(p);
		snprintf(p, sizeof(p), "%s/lock.mdb", dir);
		unlink(p);
		rmdir(dir);
	}
	buf_free(&err);
	return rc;
}
