/*
 * Tests of src/agent/spool.c, the agent's event spool, on real files in a
 * temporary directory. A crash is simulated by dropping the spool without
 * spool_close (no state saved, locks released as at process death), by
 * editing segment files the way a crash or a bad disk would leave them, and
 * for real by SIGKILLing a child that appends in a loop. A full disk is
 * simulated with the pwrite hook and, in a child, with RLIMIT_FSIZE.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "../../../src/agent/spool.c"

static char tmp[64];
static char dir[128];

static int
setup(void **state)
{
	(void)state;
	snprintf(tmp, sizeof(tmp), "/tmp/vigil-spool.XXXXXX");
	if (mkdtemp(tmp) == NULL)
		return -1;
	snprintf(dir, sizeof(dir), "%s/spool", tmp);
	spool_pwrite = pwrite;
	spool_fdatasync = fdatasync;
	return 0;
}

static int
teardown(void **state)
{
	char cmd[256];

	(void)state;
	spool_pwrite = pwrite;
	spool_fdatasync = fdatasync;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	return system(cmd);
}

static struct spool_config
small_cfg(uint64_t segment, uint64_t max_bytes, size_t max_event)
{
	struct spool_config c;

	c.segment_bytes = segment;
	c.max_bytes = max_bytes;
	c.max_event = max_event;
	return c;
}

static struct spool *
open_ok(const struct spool_config *c)
{
	struct spool *sp;
	struct buf err;

	buf_init(&err, 4096);
	sp = spool_open(dir, c, &err);
	if (sp == NULL)
		print_error("spool_open: %s\n", buf_cstr(&err));
	assert_non_null(sp);
	buf_free(&err);
	return sp;
}

/* The process dies here: no state saved, no sync beyond what append did,
 * fds (and the lock) gone. */
static void
crash(struct spool *sp)
{
	spool_free(sp);
}

static size_t
payload(char *out, size_t outlen, uint64_t i, size_t pad)
{
	int n;

	n = snprintf(out, outlen,
	             "{\"type\":\"test\",\"i\":%llu,\"pad\":\"%*s\"}",
	             (unsigned long long)i, (int)pad, "");
	assert_true(n > 0 && (size_t)n < outlen);
	return (size_t)n;
}

static uint64_t
append_i(struct spool *sp, uint64_t i, size_t pad)
{
	char p[2048];
	size_t n = payload(p, sizeof(p), i, pad);
	uint64_t seq = 0;

	if (spool_append(sp, p, n, &seq) != 0) {
		print_error("append: %s\n", spool_error(sp));
		fail();
	}
	return seq;
}

/* The "i" of an event's JSON, or -1 for something else (a gap). */
static long long
event_i(const struct spool_event *e)
{
	json_t *o = json_loadb((const char *)e->data, e->len, 0, NULL);
	json_t *v = o != NULL ? json_object_get(o, "i") : NULL;
	long long i = json_is_integer(v) ? json_integer_value(v) : -1;

	json_decref(o);
	return i;
}

static json_int_t
gap_field(const struct spool_event *e, const char *key)
{
	json_t *o = json_loadb((const char *)e->data, e->len, 0, NULL);
	json_t *v;
	json_int_t r;

	assert_non_null(o);
	v = json_object_get(o, key);
	assert_true(json_is_integer(v));
	r = json_integer_value(v);
	json_decref(o);
	return r;
}

static int
gap_reason_is(const struct spool_event *e, const char *reason)
{
	json_t *o = json_loadb((const char *)e->data, e->len, 0, NULL);
	int r;

	assert_non_null(o);
	r = strcmp(json_string_value(json_object_get(o, "type")),
	           "spool.gap") == 0 &&
	    strcmp(json_string_value(json_object_get(o, "reason")), reason) ==
	        0;
	json_decref(o);
	return r;
}

static size_t
peek_all(struct spool *sp, struct spool_batch *b)
{
	int n = spool_peek_batch(sp, 1000000, SIZE_MAX, b);

	if (n < 0)
		print_error("peek: %s\n", spool_error(sp));
	assert_true(n >= 0);
	assert_int_equal((size_t)n, b->n);
	return b->n;
}

static int
count_segments(void)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		if (seg_parse_name(de->d_name) != 0)
			n++;
	closedir(d);
	return n;
}

/* Path of the oldest (newest = 0) or newest (newest = 1) segment file. */
static void
segment_path(int newest, char *out, size_t outlen)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	uint64_t best = 0, b;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		if ((b = seg_parse_name(de->d_name)) == 0)
			continue;
		if (best == 0 || (newest ? b > best : b < best))
			best = b;
	}
	closedir(d);
	assert_true(best != 0);
	snprintf(out, outlen, "%s/" SEG_PREFIX "%020llu" SEG_SUFFIX, dir,
	         (unsigned long long)best);
}

static off_t
file_size(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return st.st_size;
}

static void
append_bytes(const char *path, const void *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_APPEND);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, p, n), (ssize_t)n);
	close(fd);
}

static void
xor_byte(const char *path, off_t off, uint8_t x)
{
	uint8_t c;
	int fd = open(path, O_RDWR);

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &c, 1, off), 1);
	c ^= x;
	assert_int_equal(pwrite(fd, &c, 1, off), 1);
	close(fd);
}

struct capture {
	FILE *tmp;
	int saved;
};

static void
capture_start(struct capture *c)
{
	fflush(stderr);
	c->tmp = tmpfile();
	assert_non_null(c->tmp);
	c->saved = dup(STDERR_FILENO);
	assert_true(c->saved >= 0);
	assert_true(dup2(fileno(c->tmp), STDERR_FILENO) >= 0);
}

static char *
capture_end(struct capture *c)
{
	char *out;
	long n;

	fflush(stderr);
	assert_true(dup2(c->saved, STDERR_FILENO) >= 0);
	close(c->saved);
	assert_int_equal(fseek(c->tmp, 0, SEEK_END), 0);
	n = ftell(c->tmp);
	rewind(c->tmp);
	out = calloc(1, (size_t)n + 1);
	assert_non_null(out);
	assert_int_equal(fread(out, 1, (size_t)n, c->tmp), (size_t)n);
	fclose(c->tmp);
	return out;
}

static void
test_append_reopen(void **state)
{
	struct spool_config c = small_cfg(2048, 1 << 20, 1024);
	struct spool_batch b;
	struct spool_stats st;
	struct spool *sp;
	uint64_t i;

	(void)state;
	sp = open_ok(&c);
	assert_int_equal(spool_next_seq(sp), 1);
	for (i = 1; i <= 200; i++)
		assert_int_equal(append_i(sp, i, 30), i);
	spool_close(sp);
	assert_true(count_segments() > 5); /* it rotated */

	sp = open_ok(&c);
	spool_stats(sp, &st);
	assert_int_equal(st.next_seq, 201);
	assert_int_equal(st.pending, 200);
	assert_int_equal(st.acked, 0);
	assert_int_equal(st.segments, (uint64_t)count_segments());
	spool_batch_init(&b);
	assert_int_equal(peek_all(sp, &b), 200);
	for (i = 0; i < 200; i++) {
		assert_int_equal(b.ev[i].seq, i + 1);
		assert_int_equal(b.ev[i].kind, SPOOLREC_EVENT);
		assert_int_equal(event_i(&b.ev[i]), (long long)i + 1);
	}
	/* Peeking is idempotent until an ack. */
	assert_int_equal(peek_all(sp, &b), 200);
	assert_int_equal(b.ev[0].seq, 1);
	assert_int_equal(append_i(sp, 201, 30), 201);
	spool_batch_free(&b);
	spool_close(sp);
}

static void
test_seq_after_crash(void **state)
{
	struct spool_config c = small_cfg(2048, 1 << 20, 1024);
	struct spool_batch b;
	struct spool_stats st;
	struct spool *sp;
	char path[256], seg[256];
	uint64_t i;

	(void)state;
	spool_batch_init(&b);
	sp = open_ok(&c);
	for (i = 1; i <= 10; i++)
		append_i(sp, i, 10);
	crash(sp);
	sp = open_ok(&c);
	assert_int_equal(spool_next_seq(sp), 11);
	assert_int_equal(peek_all(sp, &b), 10);
	for (i = 11; i <= 40; i++)
		assert_int_equal(append_i(sp, i, 10), i);
	assert_int_equal(spool_ack(sp, 40), 0);
	crash(sp);

	/* Everything acknowledged and the older segments deleted: the
	 * sequence still goes on. */
	sp = open_ok(&c);
	spool_stats(sp, &st);
	assert_int_equal(st.next_seq, 41);
	assert_int_equal(st.pending, 0);
	assert_int_equal(st.segments, 1);
	assert_int_equal(peek_all(sp, &b), 0);
	crash(sp);

	/* The state file lost as well: the records of the newest segment
	 * carry the sequence (what is there is sent again, allowed). */
	snprintf(path, sizeof(path), "%s/" STATE_NAME, dir);
	assert_int_equal(unlink(path), 0);
	sp = open_ok(&c);
	assert_int_equal(spool_next_seq(sp), 41);
	assert_true(peek_all(sp, &b) > 0);
	assert_int_equal(b.ev[b.n - 1].seq, 40);
	crash(sp);

	/* A crash right after a rotation (to a name past seqs burned by
	 * failed writes) leaves an empty newest segment: its name alone
	 * carries the sequence. */
	assert_int_equal(unlink(path), 0);
	snprintf(seg, sizeof(seg), "%s/" SEG_PREFIX "%020d" SEG_SUFFIX, dir,
	         48);
	i = (uint64_t)open(seg, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true((int)i >= 0);
	close((int)i);
	sp = open_ok(&c);
	assert_int_equal(spool_next_seq(sp), 48);
	assert_int_equal(append_i(sp, 48, 10), 48);
	spool_close(sp);
	sp = open_ok(&c);
	assert_int_equal(spool_next_seq(sp), 49);
	spool_close(sp);
	spool_batch_free(&b);
}

static void
test_torn_tail(void **state)
{
	struct spool_config c = small_cfg(65536, 1 << 20, 1024);
	struct spool_batch b;
	struct spool_stats st;
	struct capture cap;
	struct spool *sp;
	struct buf rec;
	char seg[256], want[512], *log;
	uint8_t zeros[600];
	off_t size;
	uint64_t i;

	(void)state;
	spool_batch_init(&b);
	buf_init(&rec, 4096);
	sp = open_ok(&c);
	for (i = 1; i <= 5; i++)
		append_i(sp, i, 20);
	crash(sp);
	segment_path(1, seg, sizeof(seg));
	size = file_size(seg);

	/* A crash while writing record 6, before its header was whole. */
	assert_int_equal(spoolrec_encode(&rec, SPOOLREC_EVENT, 6,
	                                 (const uint8_t *)"{\"i\":6}", 7),
	                 0);
	append_bytes(seg, rec.data, 20);
	capture_start(&cap);
	sp = open_ok(&c);
	log = capture_end(&cap);
	snprintf(want, sizeof(want), "%s: unfinished record at offset %lld",
	         strrchr(seg, '/') + 1, (long long)size);
	assert_non_null(strstr(log, want));
	assert_non_null(strstr(log, "never reported as stored"));
	free(log);
	assert_int_equal(file_size(seg), size);
	spool_stats(sp, &st);
	assert_int_equal(st.torn_tails, 1);
	assert_int_equal(st.corrupt_regions, 0);
	assert_int_equal(st.gap_events, 0);
	assert_int_equal(peek_all(sp, &b), 5);
	/* Its seq never reached the disk: it is free. */
	assert_int_equal(append_i(sp, 6, 20), 6);
	crash(sp);

	/* A tail of zeros (the size grew, the data never came). */
	size = file_size(seg);
	memset(zeros, 0, sizeof(zeros));
	append_bytes(seg, zeros, sizeof(zeros));
	sp = open_ok(&c);
	assert_int_equal(file_size(seg), size);
	assert_int_equal(peek_all(sp, &b), 6);
	assert_int_equal(spool_next_seq(sp), 7);
	crash(sp);

	/* A whole header whose payload is missing or damaged: seq 7 reached
	 * the disk, so it is never handed out again, and a gap says so. */
	buf_reset(&rec);
	assert_int_equal(spoolrec_encode(&rec, SPOOLREC_EVENT, 7,
	                                 (const uint8_t *)"{\"i\":7}", 7),
	                 0);
	append_bytes(seg, rec.data, SPOOLREC_HDR + 3);
	capture_start(&cap);
	sp = open_ok(&c);
	log = capture_end(&cap);
	assert_non_null(strstr(log, "its seq 7 is not used again"));
	free(log);
	assert_int_equal(peek_all(sp, &b), 7);
	for (i = 0; i < 6; i++) {
		assert_int_equal(b.ev[i].seq, i + 1);
		assert_int_equal(b.ev[i].kind, SPOOLREC_EVENT);
	}
	assert_int_equal(b.ev[6].seq, 8);
	assert_int_equal(b.ev[6].kind, SPOOLREC_GAP);
	assert_true(gap_reason_is(&b.ev[6], "torn"));
	assert_int_equal(gap_field(&b.ev[6], "first_seq"), 7);
	assert_int_equal(gap_field(&b.ev[6], "last_seq"), 7);
	assert_int_equal(gap_field(&b.ev[6], "lost"), 1);
	assert_int_equal(append_i(sp, 7, 20), 9);
	spool_stats(sp, &st);
	assert_int_equal(st.torn_tails, 3); /* kept in the state file */
	assert_int_equal(st.gap_events, 1);
	spool_close(sp);

	/* Nothing more to repair, nothing reported twice. */
	sp = open_ok(&c);
	spool_stats(sp, &st);
	assert_int_equal(st.torn_tails, 3);
	assert_int_equal(st.gap_events, 1);
	assert_int_equal(peek_all(sp, &b), 8);
	spool_close(sp);
	spool_batch_free(&b);
	buf_free(&rec);
}

/* Offset of the record with seq in a segment file, found by decoding. */
static off_t
rec_off(const char *path, uint64_t seq)
{
	struct spoolrec rec;
	struct buf b, err;
	size_t off = 0;
	ssize_t n;

	buf_init(&b, 1 << 24);
	buf_init(&err, 1024);
	assert_int_equal(tls_read_file(path, 1 << 24, &b, &err), 0);
	while (off < b.len) {
		n = spoolrec_decode(b.data + off, b.len - off, 1 << 20, &rec,
		                    NULL);
		assert_true(n > 0);
		if (rec.seq == seq)
			break;
		off += (size_t)n;
	}
	assert_true(off < b.len);
	buf_free(&b);
	buf_free(&err);
	return (off_t)off;
}

static void
test_corrupt_middle(void **state)
{
	struct spool_config c = small_cfg(65536, 1 << 20, 1024);
	struct spool_batch b;
	struct spool_stats st;
	struct capture cap;
	struct spool *sp;
	char seg[256], want[512], *log;
	off_t off5, off8;
	uint64_t i;
	size_t k;

	(void)state;
	spool_batch_init(&b);
	sp = open_ok(&c);
	for (i = 1; i <= 10; i++)
		append_i(sp, i, 20);
	spool_close(sp);
	segment_path(1, seg, sizeof(seg));
	off5 = rec_off(seg, 5);
	off8 = rec_off(seg, 8);

	/* A payload byte of record 5, and the length field of record 8 (a
	 * damaged length must not pass for a torn tail). */
	xor_byte(seg, off5 + SPOOLREC_HDR + 3, 0x20);
	xor_byte(seg, off8 + 9, 0x01);
	capture_start(&cap);
	sp = open_ok(&c);
	log = capture_end(&cap);
	snprintf(want, sizeof(want),
	         "%s: corrupt record at offset %lld (payload checksum "
	         "mismatch)",
	         strrchr(seg, '/') + 1, (long long)off5);
	assert_non_null(strstr(log, want));
	snprintf(want, sizeof(want),
	         "%s: corrupt record at offset %lld (header checksum "
	         "mismatch)",
	         strrchr(seg, '/') + 1, (long long)off8);
	assert_non_null(strstr(log, want));
	free(log);

	spool_stats(sp, &st);
	assert_int_equal(st.corrupt_regions, 2);
	assert_int_equal(st.corrupt_events, 2);
	assert_int_equal(st.gap_events, 2);
	assert_int_equal(st.torn_tails, 0);
	assert_int_equal(peek_all(sp, &b), 10);
	{
		const uint64_t seqs[] = {1, 2, 3, 4, 6, 7, 9, 10, 11, 12};

		for (k = 0; k < 10; k++)
			assert_int_equal(b.ev[k].seq, seqs[k]);
		for (k = 0; k < 8; k++) {
			assert_int_equal(b.ev[k].kind, SPOOLREC_EVENT);
			assert_int_equal(event_i(&b.ev[k]), (long long)seqs[k]);
		}
	}
	assert_int_equal(b.ev[8].kind, SPOOLREC_GAP);
	assert_true(gap_reason_is(&b.ev[8], "corrupt"));
	assert_int_equal(gap_field(&b.ev[8], "first_seq"), 5);
	assert_int_equal(gap_field(&b.ev[8], "last_seq"), 5);
	assert_int_equal(gap_field(&b.ev[8], "lost"), 1);
	assert_int_equal(gap_field(&b.ev[8], "offset"), off5);
	assert_int_equal(b.ev[9].kind, SPOOLREC_GAP);
	assert_int_equal(gap_field(&b.ev[9], "first_seq"), 8);
	assert_int_equal(gap_field(&b.ev[9], "last_seq"), 8);
	spool_close(sp);

	/* Reported once: a restart skips the damage quietly. */
	capture_start(&cap);
	sp = open_ok(&c);
	log = capture_end(&cap);
	assert_null(strstr(log, "corrupt record"));
	free(log);
	spool_stats(sp, &st);
	assert_int_equal(st.corrupt_regions, 2);
	assert_int_equal(st.gap_events, 2);
	assert_int_equal(peek_all(sp, &b), 10);
	assert_int_equal(b.ev[9].seq, 12);
	assert_int_equal(spool_next_seq(sp), 13);
	spool_close(sp);
	spool_batch_free(&b);
}

static void
test_corrupt_older_segment(void **state)
{
	struct spool_config c = small_cfg(2048, 1 << 20, 1024);
	struct spool_batch b;
	struct spool_stats st;
	struct spool *sp;
	char seg[256];
	size_t n, k, gaps = 0, events = 0;
	uint64_t i, last_seq = 0;

	(void)state;
	spool_batch_init(&b);
	sp = open_ok(&c);
	for (i = 1; i <= 60; i++)
		append_i(sp, i, 20);
	spool_close(sp);
	/* The oldest segment's last bytes turned to garbage: its last record
	 * is lost, the segments after it are delivered. */
	segment_path(0, seg, sizeof(seg));
	xor_byte(seg, file_size(seg) - 2, 0xff);
	sp = open_ok(&c);
	n = peek_all(sp, &b);
	for (k = 0; k < n; k++) {
		assert_true(b.ev[k].seq > last_seq);
		last_seq = b.ev[k].seq;
		if (b.ev[k].kind == SPOOLREC_GAP) {
			gaps++;
			assert_int_equal(gap_field(&b.ev[k], "lost"), 1);
			assert_int_equal(gap_field(&b.ev[k], "first_seq"),
			                 gap_field(&b.ev[k], "last_seq"));
			assert_true(gap_field(&b.ev[k], "first_seq") > 1);
		} else
			events++;
	}
	assert_int_equal(gaps, 1);
	assert_int_equal(events, 59);
	assert_int_equal(b.ev[n - 1].kind, SPOOLREC_GAP);
	spool_stats(sp, &st);
	assert_int_equal(st.corrupt_events, 1);
	spool_close(sp);
	spool_batch_free(&b);
}

static void
test_corrupt_while_open(void **state)
{
	struct spool_config c = small_cfg(65536, 1 << 20, 1024);
	struct spool_batch b;
	struct spool_stats st;
	struct spool *sp;
	char seg[256];
	uint64_t i;

	(void)state;
	spool_batch_init(&b);
	sp = open_ok(&c);
	for (i = 1; i <= 10; i++)
		append_i(sp, i, 20);
	segment_path(1, seg, sizeof(seg));
	/* Bit rot after open: found when reading, skipped, reported. */
	xor_byte(seg, rec_off(seg, 3) + SPOOLREC_HDR + 1, 0x01);
	assert_int_equal(peek_all(sp, &b), 9);
	assert_int_equal(b.ev[2].seq, 4);
	assert_int_equal(peek_all(sp, &b), 10);
	assert_int_equal(b.ev[9].kind, SPOOLREC_GAP);
	assert_int_equal(gap_field(&b.ev[9], "first_seq"), 3);
	spool_stats(sp, &st);
	assert_int_equal(st.corrupt_events, 1);
	assert_int_equal(st.pending, 10);
	assert_int_equal(spool_ack(sp, 11), 0);
	spool_stats(sp, &st);
	assert_int_equal(st.pending, 0);
	spool_close(sp);
	spool_batch_free(&b);
}

static void
test_overflow(void **state)
{
	struct spool_config c = small_cfg(2048, 8192, 256);
	struct spool_batch b;
	struct spool_stats st;
	struct capture cap;
	struct spool *sp;
	uint8_t *seen;
	uint64_t i, n, last, s, lost_sum = 0, gap_first = 0;
	size_t k, visible = 0;
	char *log;

	(void)state;
	spool_batch_init(&b);
	sp = open_ok(&c);
	capture_start(&cap);
	for (i = 1; i <= 300; i++) {
		append_i(sp, i, 60);
		spool_stats(sp, &st);
		assert_true(st.bytes <= c.max_bytes);
	}
	log = capture_end(&cap);
	assert_non_null(strstr(log, "is full"));
	free(log);

	last = spool_next_seq(sp) - 1;
	seen = calloc(last + 1, 1);
	assert_non_null(seen);
	n = peek_all(sp, &b);
	assert_true(n > 0 && b.ev[0].seq > 1);
	/* Every seq ever issued is either still here, or inside the range of
	 * a gap event that is here; the counter counts exactly the rest. */
	for (k = 0; k < n; k++) {
		assert_int_equal(seen[b.ev[k].seq], 0);
		seen[b.ev[k].seq] = 1;
		visible++;
	}
	for (k = 0; k < n; k++) {
		if (b.ev[k].kind != SPOOLREC_GAP)
			continue;
		assert_true(gap_reason_is(&b.ev[k], "overflow"));
		assert_int_equal(gap_field(&b.ev[k], "first_seq"), 1);
		assert_true(gap_field(&b.ev[k], "lost") > 0);
		assert_true(gap_field(&b.ev[k], "lost") <=
		            gap_field(&b.ev[k], "last_seq"));
		lost_sum += (uint64_t)gap_field(&b.ev[k], "lost");
		for (s = (uint64_t)gap_field(&b.ev[k], "first_seq");
		     s <= (uint64_t)gap_field(&b.ev[k], "last_seq"); s++) {
			assert_true(seen[s] != 1);
			seen[s] = 2;
		}
	}
	for (s = 1; s <= last; s++)
		assert_true(seen[s] != 0);
	spool_stats(sp, &st);
	assert_int_equal(st.dropped_events, last - visible);
	assert_true(lost_sum <= st.dropped_events);
	assert_true(st.gap_events >= 1);
	free(seen);

	/* Acknowledged events are not lost when dropped: the next gap starts
	 * after the acknowledged position. */
	assert_int_equal(spool_ack(sp, b.ev[2].seq), 0);
	s = b.ev[2].seq;
	for (i = 0; i < 200; i++)
		append_i(sp, 1000 + i, 60);
	spool_close(sp);
	sp = open_ok(&c);
	n = peek_all(sp, &b);
	for (k = 0; k < n; k++)
		if (b.ev[k].kind == SPOOLREC_GAP)
			gap_first = (uint64_t)gap_field(&b.ev[k], "first_seq");
	assert_int_equal(gap_first, s + 1);
	spool_close(sp);
	spool_batch_free(&b);
}

static void
test_ack_deletes_segments(void **state)
{
	struct spool_config c = small_cfg(2048, 1 << 20, 1024);
	struct spool_batch b;
	struct spool_stats st;
	struct spool *sp;
	int before, after;
	uint64_t i;

	(void)state;
	spool_batch_init(&b);
	sp = open_ok(&c);
	for (i = 1; i <= 100; i++)
		append_i(sp, i, 20);
	before = count_segments();
	assert_true(before > 4);
	assert_int_equal(spool_ack(sp, 50), 0);
	after = count_segments();
	assert_true(after < before);
	spool_stats(sp, &st);
	assert_int_equal(st.pending, 50);
	assert_int_equal(st.segments, (uint64_t)after);
	assert_int_equal(peek_all(sp, &b), 50);
	assert_int_equal(b.ev[0].seq, 51);
	/* What is left holds something unacknowledged, except the newest. */
	{
		char seg[256];

		segment_path(0, seg, sizeof(seg));
		assert_true(seg_parse_name(strrchr(seg, '/') + 1) <= 51);
	}
	/* Less than before: nothing; more than issued: refused. */
	assert_int_equal(spool_ack(sp, 10), 0);
	assert_int_equal(spool_ack(sp, 101), -1);
	assert_int_equal(errno, EINVAL);
	assert_non_null(strstr(spool_error(sp), "last seq issued is 100"));
	assert_int_equal(spool_ack(sp, 60), 0);
	crash(sp);

	/* The acknowledged position survived: no resend. */
	sp = open_ok(&c);
	assert_int_equal(peek_all(sp, &b), 40);
	assert_int_equal(b.ev[0].seq, 61);
	assert_int_equal(spool_ack(sp, 100), 0);
	assert_int_equal(count_segments(), 1); /* the active one stays */
	spool_stats(sp, &st);
	assert_int_equal(st.pending, 0);
	assert_int_equal(peek_all(sp, &b), 0);
	assert_int_equal(append_i(sp, 101, 20), 101);
	assert_int_equal(peek_all(sp, &b), 1);
	spool_close(sp);
	spool_batch_free(&b);
}

static void
test_peek_limits(void **state)
{
	struct spool_batch b;
	struct spool *sp;
	char p[128];
	uint64_t i;

	(void)state;
	spool_batch_init(&b);
	sp = open_ok(NULL);
	for (i = 1; i <= 10; i++) {
		memset(p, 'a' + (int)i, 100);
		assert_int_equal(spool_append(sp, p, 100, NULL), 0);
	}
	assert_int_equal(spool_peek_batch(sp, 3, SIZE_MAX, &b), 3);
	assert_int_equal(b.ev[0].seq, 1);
	assert_int_equal(b.ev[2].seq, 3);
	assert_int_equal(b.bytes, 300);
	assert_int_equal(spool_peek_batch(sp, 100, 250, &b), 2);
	assert_int_equal(b.bytes, 200);
	assert_int_equal(b.ev[1].data[0], 'a' + 2);
	assert_int_equal(b.ev[1].len, 100);
	/* One event larger than max_bytes still comes, alone. */
	assert_int_equal(spool_peek_batch(sp, 100, 50, &b), 1);
	assert_int_equal(b.ev[0].seq, 1);
	assert_int_equal(spool_peek_batch(sp, 0, SIZE_MAX, &b), 0);
	assert_int_equal(spool_ack(sp, 2), 0);
	assert_int_equal(spool_peek_batch(sp, 3, 300, &b), 3);
	assert_int_equal(b.ev[0].seq, 3);
	assert_int_equal(b.ev[2].seq, 5);
	for (i = 0; i < 3; i++) {
		assert_int_equal(b.ev[i].data[0], 'a' + 3 + (int)i);
		assert_int_equal(b.ev[i].data[99], 'a' + 3 + (int)i);
	}
	spool_close(sp);
	spool_batch_free(&b);
}

static void
test_second_opener(void **state)
{
	struct spool *sp, *sp2;
	struct buf err;
	pid_t pid;
	int status;

	(void)state;
	buf_init(&err, 4096);
	sp = open_ok(NULL);
	sp2 = spool_open(dir, NULL, &err);
	assert_null(sp2);
	assert_non_null(strstr(buf_cstr(&err), "in use by another process"));
	/* Another process, too. */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct buf e;

		buf_init(&e, 4096);
		_exit(spool_open(dir, NULL, &e) == NULL &&
		              strstr(buf_cstr(&e), "in use") != NULL
		          ? 0
		          : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* The refused opener touched nothing: the holder carries on. */
	assert_int_equal(append_i(sp, 1, 5), 1);
	spool_close(sp);
	sp = open_ok(NULL);
	assert_int_equal(spool_next_seq(sp), 2);
	spool_close(sp);
	buf_free(&err);
}

/* The disk fills up after fake_room more bytes. */
static long fake_room = -1;
static int fake_sync_fail;
static int sync_count;

static ssize_t
fake_pwrite(int fd, const void *p, size_t n, off_t off)
{
	if (fake_room < 0)
		return pwrite(fd, p, n, off);
	if (fake_room == 0) {
		errno = ENOSPC;
		return -1;
	}
	if ((long)n > fake_room)
		n = (size_t)fake_room;
	fake_room -= (long)n;
	return pwrite(fd, p, n, off);
}

static int
fake_fdatasync(int fd)
{
	sync_count++;
	if (fake_sync_fail > 0) {
		fake_sync_fail--;
		errno = EIO;
		return -1;
	}
	return fdatasync(fd);
}

static void
test_full_disk(void **state)
{
	struct spool_config c = small_cfg(65536, 1 << 20, 1024);
	struct spool_iov v[5];
	struct spool_batch b;
	struct spool *sp;
	char seg[256], p[5][128];
	uint64_t seqs[5], i;
	size_t done;
	off_t size;

	(void)state;
	spool_batch_init(&b);
	spool_pwrite = fake_pwrite;
	spool_fdatasync = fake_fdatasync;
	sp = open_ok(&c);
	for (i = 1; i <= 5; i++)
		append_i(sp, i, 20);
	segment_path(1, seg, sizeof(seg));
	size = file_size(seg);

	/* Half a record fits, then ENOSPC. */
	fake_room = 30;
	{
		char big[200];
		size_t n = payload(big, sizeof(big), 6, 100);

		assert_int_equal(spool_append(sp, big, n, NULL), -1);
		assert_int_equal(errno, ENOSPC);
	}
	assert_non_null(strstr(spool_error(sp), "No space left on device"));
	assert_non_null(strstr(spool_error(sp), "write"));
	assert_int_equal(file_size(seg), size); /* no half record left */
	assert_int_equal(peek_all(sp, &b), 5);
	fake_room = -1;
	/* The failed event cost no seq. */
	assert_int_equal(append_i(sp, 6, 20), 6);

	/* A batch that fails in its third event: the first two are kept. */
	for (i = 0; i < 5; i++) {
		v[i].data = p[i];
		v[i].len = payload(p[i], sizeof(p[i]), 7 + i, 20);
	}
	fake_room = (long)(2 * (SPOOLREC_HDR + v[0].len) + 10);
	done = 99;
	assert_int_equal(spool_append_many(sp, v, 5, seqs, &done), -1);
	assert_int_equal(errno, ENOSPC);
	assert_int_equal(done, 2);
	assert_int_equal(seqs[0], 7);
	assert_int_equal(seqs[1], 8);
	fake_room = -1;

	/* A failing fdatasync: the event is taken back, its seq is never
	 * used again, and appending goes on in a new segment. */
	fake_sync_fail = 1;
	assert_int_equal(spool_append(sp, p[0], v[0].len, &i), -1);
	assert_int_equal(errno, EIO);
	assert_non_null(strstr(spool_error(sp), "fdatasync"));
	assert_int_equal(append_i(sp, 100, 20), 10);
	crash(sp);

	spool_pwrite = pwrite;
	spool_fdatasync = fdatasync;
	sp = open_ok(&c);
	assert_int_equal(peek_all(sp, &b), 9);
	{
		const uint64_t want[] = {1, 2, 3, 4, 5, 6, 7, 8, 10};

		for (i = 0; i < 9; i++)
			assert_int_equal(b.ev[i].seq, want[i]);
	}
	assert_int_equal(event_i(&b.ev[8]), 100);
	assert_int_equal(spool_next_seq(sp), 11);
	spool_close(sp);
	spool_batch_free(&b);
}

static void
test_rlimit_fsize(void **state)
{
	struct spool_config c = small_cfg(65536, 1 << 20, 1024);
	struct spool_batch b;
	struct spool *sp;
	pid_t pid;
	int status;
	uint64_t i;

	(void)state;
	sp = open_ok(&c);
	spool_close(sp); /* the directory and state exist */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct rlimit rl, small;
		char seg[256], p[1024];
		struct buf e;
		uint64_t s;
		size_t n;

		/* A real EFBIG from the kernel instead of a signal. */
		signal(SIGXFSZ, SIG_IGN);
		buf_init(&e, 4096);
		sp = spool_open(dir, &c, &e);
		if (sp == NULL)
			_exit(2);
		for (i = 1; i <= 3; i++) {
			n = payload(p, sizeof(p), i, 400);
			if (spool_append(sp, p, n, &s) != 0 || s != i)
				_exit(3);
		}
		segment_path(1, seg, sizeof(seg));
		getrlimit(RLIMIT_FSIZE, &rl);
		small = rl;
		small.rlim_cur = (rlim_t)file_size(seg) + 100;
		if (setrlimit(RLIMIT_FSIZE, &small) != 0)
			_exit(4);
		n = payload(p, sizeof(p), 4, 400);
		if (spool_append(sp, p, n, &s) != -1 || errno != EFBIG ||
		    strstr(spool_error(sp), "File too large") == NULL)
			_exit(5);
		if ((uint64_t)file_size(seg) != sp->segs[0].size)
			_exit(6);
		if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
			_exit(7);
		if (spool_append(sp, p, n, &s) != 0 || s != 4)
			_exit(8);
		spool_close(sp);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	spool_batch_init(&b);
	sp = open_ok(&c);
	assert_int_equal(peek_all(sp, &b), 4);
	for (i = 0; i < 4; i++) {
		assert_int_equal(b.ev[i].seq, i + 1);
		assert_int_equal(event_i(&b.ev[i]), (long long)i + 1);
	}
	spool_close(sp);
	spool_batch_free(&b);
}

static void
test_ack_disk_full(void **state)
{
	struct spool_config c = small_cfg(2048, 1 << 20, 1024);
	struct spool_batch b;
	struct spool *sp;
	pid_t pid;
	int status;
	size_t k;

	(void)state;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct spool_stats st;
		struct rlimit rl;
		struct buf e;
		char p[256];
		uint64_t i, s;
		int before;

		signal(SIGXFSZ, SIG_IGN);
		buf_init(&e, 4096);
		if ((sp = spool_open(dir, &c, &e)) == NULL)
			_exit(2);
		for (i = 1; i <= 60; i++)
			if (spool_append(sp, p, payload(p, sizeof(p), i, 20),
			                 &s) != 0)
				_exit(3);
		if (spool_ack(sp, 10) != 0)
			_exit(4);
		before = count_segments();
		/* Now not even the small state file can be written. */
		getrlimit(RLIMIT_FSIZE, &rl);
		rl.rlim_cur = 1;
		if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
			_exit(5);
		if (spool_ack(sp, 50) != 0)
			_exit(6);
		spool_stats(sp, &st);
		if (st.acked != 50 || st.pending != 10 ||
		    count_segments() >= before)
			_exit(7);
		_exit(0); /* a crash before the next save */
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	/* The saved position is the older one: some acknowledged events
	 * come again (bounded by that one ack), none is missing. */
	spool_batch_init(&b);
	sp = open_ok(&c);
	assert_true(peek_all(sp, &b) >= 10);
	assert_true(b.ev[0].seq > 10 && b.ev[0].seq <= 51);
	for (k = 0; k < b.n; k++)
		assert_int_equal(b.ev[k].seq, b.ev[0].seq + k);
	assert_int_equal(b.ev[b.n - 1].seq, 60);
	spool_close(sp);
	spool_batch_free(&b);
}

static void
test_kill9(void **state)
{
	struct spool_config c = small_cfg(4096, 64 << 20, 1024);
	struct spool_batch b;
	struct spool *sp;
	uint64_t *rep = NULL, pair[2], next_i = 1, acked = 0;
	size_t nrep = 0, caprep = 0, k, j, n, m, torn, idx[4096];
	unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
	int round, fds[2], status;
	pid_t pid;

	(void)state;
	print_message("test_kill9: seed %u\n", seed);
	srand(seed);
	spool_batch_init(&b);
	for (round = 0; round < 5; round++) {
		size_t base = nrep, target = 20 + (size_t)(rand() % 300);

		assert_int_equal(pipe(fds), 0);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			struct buf e;
			char p[256];
			uint64_t i = next_i, s;

			close(fds[0]);
			buf_init(&e, 4096);
			if ((sp = spool_open(dir, &c, &e)) == NULL)
				_exit(2);
			for (;; i++) {
				size_t len =
				    payload(p, sizeof(p), i, (size_t)(i % 50));

				if (spool_append(sp, p, len, &s) != 0)
					_exit(3);
				pair[0] = s;
				pair[1] = i;
				if (write(fds[1], pair, sizeof(pair)) !=
				    (ssize_t)sizeof(pair))
					_exit(4);
			}
		}
		close(fds[1]);
		/* Read reports until the target, then kill at a random
		 * moment shortly after. */
		for (;;) {
			ssize_t r = read(fds[0], pair, sizeof(pair));

			if (r == 0)
				break;
			assert_int_equal(r, (ssize_t)sizeof(pair));
			assert_int_equal(
			    grow(&rep, &caprep, nrep + 1, sizeof(*rep) * 2), 0);
			rep[2 * nrep] = pair[0];
			rep[2 * nrep + 1] = pair[1];
			nrep++;
			if (nrep - base == target) {
				usleep((useconds_t)(rand() % 3000));
				kill(pid, SIGKILL);
			}
		}
		close(fds[0]);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

		sp = open_ok(&c);
		n = peek_all(sp, &b);
		assert_true(n <= sizeof(idx) / sizeof(idx[0]));
		torn = 0;
		/* A kill in the middle of a write can leave a record whose
		 * header made it: its seq is then reported lost by a gap
		 * (its append never returned, so it was never reported
		 * here). Those are set aside, at most one per kill. */
		for (k = 0, m = 0; k < n; k++) {
			if (b.ev[k].kind == SPOOLREC_GAP) {
				assert_true(gap_reason_is(&b.ev[k], "torn"));
				torn++;
				continue;
			}
			idx[m++] = k;
		}
		assert_true(torn <= (size_t)round + 1);
		/* Exactly the reported events above the acknowledged
		 * position, in order, each once with its payload; after them
		 * at most the one stored just before the kill whose report
		 * was never written. */
		for (j = 0; j < nrep && rep[2 * j] <= acked; j++)
			;
		assert_true(m == nrep - j || m == nrep - j + 1);
		for (k = 0; j < nrep; j++, k++) {
			assert_int_equal(b.ev[idx[k]].seq, rep[2 * j]);
			assert_int_equal(event_i(&b.ev[idx[k]]),
			                 (long long)rep[2 * j + 1]);
		}
		for (j = 1; j < n; j++)
			assert_true(b.ev[j].seq > b.ev[j - 1].seq);
		next_i = rep[2 * nrep - 1] + 1;
		if (k < m) {
			k = idx[k];
			assert_true(b.ev[k].seq > rep[2 * (nrep - 1)]);
			assert_int_equal(event_i(&b.ev[k]), (long long)next_i);
			assert_int_equal(
			    grow(&rep, &caprep, nrep + 1, sizeof(*rep) * 2), 0);
			rep[2 * nrep] = b.ev[k].seq;
			rep[2 * nrep + 1] = next_i;
			nrep++;
			next_i++;
		}
		/* No seq is ever handed out twice. */
		assert_true(spool_next_seq(sp) > rep[2 * (nrep - 1)]);
		/* Acknowledge some, as a center would. */
		if (n > 0) {
			acked = b.ev[(size_t)rand() % n].seq;
			assert_int_equal(spool_ack(sp, acked), 0);
		}
		spool_close(sp);
	}
	free(rep);
	spool_batch_free(&b);
}

static void
test_batch_one_sync(void **state)
{
	struct spool_iov v[50];
	char p[50][64];
	uint64_t seqs[50];
	struct spool *sp;
	size_t done, i;

	(void)state;
	spool_fdatasync = fake_fdatasync;
	sp = open_ok(NULL);
	for (i = 0; i < 50; i++) {
		v[i].data = p[i];
		v[i].len = payload(p[i], sizeof(p[i]), i + 1, 0);
	}
	sync_count = 0;
	assert_int_equal(spool_append_many(sp, v, 50, seqs, &done), 0);
	assert_int_equal(done, 50);
	assert_int_equal(sync_count, 1);
	for (i = 0; i < 50; i++)
		assert_int_equal(seqs[i], i + 1);
	sync_count = 0;
	for (i = 0; i < 3; i++)
		assert_int_equal(spool_append(sp, p[i], v[i].len, NULL), 0);
	assert_int_equal(sync_count, 3);
	spool_close(sp);
}

static void
test_limits_and_config(void **state)
{
	struct spool_config c = small_cfg(2048, 1 << 20, 1024);
	struct spool *sp;
	struct buf err;
	char big[2000];

	(void)state;
	buf_init(&err, 4096);
	sp = open_ok(&c);
	memset(big, 'x', sizeof(big));
	assert_int_equal(spool_append(sp, big, 1025, NULL), -1);
	assert_int_equal(errno, EMSGSIZE);
	assert_non_null(strstr(spool_error(sp), "max_event"));
	assert_int_equal(spool_next_seq(sp), 1);
	assert_int_equal(spool_append(sp, big, 1024, NULL), 0);
	spool_close(sp);

	c = small_cfg(2048, 3000, 256);
	assert_null(spool_open(dir, &c, &err));
	assert_non_null(strstr(buf_cstr(&err), "two segments"));
	buf_reset(&err);
	c = small_cfg(2048, 1 << 20, 1600);
	assert_null(spool_open(dir, &c, &err));
	assert_non_null(strstr(buf_cstr(&err), "max_event"));
	buf_free(&err);
}

static void
test_permissions(void **state)
{
	struct spool *sp;
	struct stat st;
	char path[256];
	mode_t old;

	(void)state;
	old = umask(0);
	assert_int_equal(mkdir(dir, 0755), 0);
	sp = open_ok(NULL);
	append_i(sp, 1, 5);
	spool_close(sp);
	umask(old);
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	segment_path(1, path, sizeof(path));
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	snprintf(path, sizeof(path), "%s/" STATE_NAME, dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
}

static void
test_state_damaged(void **state)
{
	struct spool_batch b;
	struct capture cap;
	struct spool *sp;
	char path[256], *log;
	uint64_t i;

	(void)state;
	spool_batch_init(&b);
	sp = open_ok(NULL);
	for (i = 1; i <= 5; i++)
		append_i(sp, i, 5);
	assert_int_equal(spool_ack(sp, 3), 0);
	spool_close(sp);
	snprintf(path, sizeof(path), "%s/" STATE_NAME, dir);
	assert_int_equal(truncate(path, 7), 0);
	capture_start(&cap);
	sp = open_ok(NULL);
	log = capture_end(&cap);
	assert_non_null(strstr(log, "unreadable"));
	free(log);
	/* Sent again rather than lost; the sequence goes on. */
	assert_int_equal(peek_all(sp, &b), 5);
	assert_int_equal(spool_next_seq(sp), 6);
	spool_close(sp);
	spool_batch_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_append_reopen, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_seq_after_crash, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_torn_tail, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_corrupt_middle, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_corrupt_older_segment, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_corrupt_while_open, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_overflow, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ack_deletes_segments, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_peek_limits, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_second_opener, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_full_disk, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rlimit_fsize, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ack_disk_full, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_kill9, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_batch_one_sync, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_limits_and_config, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_permissions, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_state_damaged, setup,
	                                    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
