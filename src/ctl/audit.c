/*
 * audit.c: `vigilctl audit list|verify`. verify recomputes the hash chain
 * (hashchain.c, docs/audit.md) either from the admin API or straight from
 * the center's database file (read only), and names the first entry that
 * does not check out: a row changed, removed or reordered in the database.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "ctl.h"
#include "hashchain.h"
#include "httpc.h"
#include "store.h"

static void
audit_usage(FILE *f)
{
	fprintf(f,
	        "usage: vigilctl audit list [--who WHO] [--action ACTION] "
	        "[--target ID]\n"
	        "                           [--since DURATION|UNIXTIME] "
	        "[--limit N]\n"
	        "       vigilctl audit verify [--db FILE|URL]\n"
	        "  list        newest entries first (default 50, at most "
	        "1000)\n"
	        "  verify      recompute the hash chain from the API, or with "
	        "--db from\n"
	        "              the center's database file (vigil.db); exit "
	        "status 1 when\n"
	        "              an entry was changed, removed or reordered\n");
}

static int
audit_list(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"who", required_argument, NULL, 'w'},
	    {"action", required_argument, NULL, 'a'},
	    {"target", required_argument, NULL, 't'},
	    {"limit", required_argument, NULL, 'l'},
	    {"since", required_argument, NULL, 's'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	static const char *const cols[] = {"id",     "when",   "who",    "addr",
	                                   "action", "target", "status", NULL};
	static const char *const hdrs[] = {"ID",     "TIME",   "WHO",    "FROM",
	                                   "ACTION", "TARGET", "STATUS", NULL};
	const char *who = NULL, *action = NULL, *target = NULL;
	long long limit = 50, since = -1;
	struct buf path;
	json_t *j = NULL, *a, *row;
	size_t i;
	int ch, rc = 2;

	buf_init(&path, 4096);
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'w':
			who = optarg;
			break;
		case 'a':
			action = optarg;
			break;
		case 't':
			target = optarg;
			break;
		case 'l':
			if (str_to_ll(optarg, 1, 1000, &limit) == -1) {
				fprintf(stderr, "vigilctl: --limit: must be "
				                "1..1000\n");
				goto out;
			}
			break;
		case 's':
			if (ctl_since(optarg, &since) == -1)
				goto out;
			break;
		case 'h':
			audit_usage(stdout);
			rc = 0;
			goto out;
		default:
			audit_usage(stderr);
			goto out;
		}
	}
	if (optind != argc) {
		audit_usage(stderr);
		goto out;
	}
	buf_printf(&path, "/api/v1/audit?limit=%lld", limit);
	ctl_query_add(&path, "who", who);
	ctl_query_add(&path, "action", action);
	ctl_query_add(&path, "target", target);
	if (since >= 0)
		buf_printf(&path, "&time_from=%lld", since);
	rc = 1;
	if ((j = ctl_api("GET", buf_cstr(&path), NULL)) == NULL)
		goto out;
	a = json_object_get(j, "items");
	if (ctl.json)
		ctl_print_json(a);
	else {
		json_array_foreach(a, i, row)
		{
			json_t *t = json_object_get(row, "time");
			char when[32];

			ctl_utc(json_is_integer(t) ? json_integer_value(t) : 0,
			        1, when, sizeof(when));
			json_object_set_new(row, "when", json_string(when));
			ctl_clean_field(row, "who", 40);
			ctl_clean_field(row, "target", 40);
		}
		ctl_table(a, cols, hdrs);
	}
	rc = 0;
out:
	json_decref(j);
	buf_free(&path);
	return rc;
}

static int
audit_verify_report(struct hashchain *h, int broken, struct buf *why)
{
	if (broken) {
		fprintf(stderr, "vigilctl: audit log broken: %s\n",
		        buf_cstr(why));
		fprintf(stderr, "vigilctl: %lld entries before it verified\n",
		        h->checked);
		return 1;
	}
	if (ctl.json) {
		json_t *o = json_pack("{s:b, s:I, s:s}", "ok", 1, "entries",
		                      (json_int_t)h->checked, "last_hash",
		                      h->last_hash);

		ctl_print_json(o);
		json_decref(o);
	} else
		printf("audit log intact: %lld entries, last hash %s\n",
		       h->checked, h->last_hash);
	return 0;
}

static int
audit_verify_api(void)
{
	struct hashchain h;
	struct buf path, why;
	json_t *j = NULL, *e;
	const char *next;
	size_t i;
	int rc = 1, broken = 0;

	hashchain_init(&h);
	buf_init(&path, 8192);
	buf_init(&why, 1024);
	buf_puts(&path, "/api/v1/audit?sort=id&limit=1000");
	for (;;) {
		if ((j = ctl_api("GET", buf_cstr(&path), NULL)) == NULL)
			goto out;
		json_array_foreach(json_object_get(j, "items"), i, e)
		{
			if (hashchain_next(&h, e, &why) == -1) {
				broken = 1;
				break;
			}
		}
		next = json_string_value(json_object_get(j, "next_cursor"));
		if (broken || next == NULL)
			break;
		buf_reset(&path);
		buf_puts(&path, "/api/v1/audit?sort=id&limit=1000&cursor=");
		httpc_urlenc(&path, next);
		json_decref(j);
		j = NULL;
	}
	rc = audit_verify_report(&h, broken, &why);
out:
	json_decref(j);
	buf_free(&path);
	buf_free(&why);
	return rc;
}

/* One row of the audit table as the API would show it. */
static json_t *
audit_db_row(struct store_rows *r)
{
	static const char *const js[] = {"before", "after", "request"};
	json_t *o = json_object(), *v;
	const char *t;
	int c;

	json_object_set_new(o, "id", json_integer(store_int(r, 0)));
	json_object_set_new(o, "time", json_integer(store_int(r, 1)));
	json_object_set_new(o, "who", json_string(store_text(r, 2)));
	json_object_set_new(o, "addr", json_string(store_text(r, 3)));
	json_object_set_new(o, "action", json_string(store_text(r, 4)));
	t = store_text(r, 5);
	json_object_set_new(o, "target", t ? json_string(t) : json_null());
	json_object_set_new(o, "status", json_integer(store_int(r, 6)));
	for (c = 7; c <= 9; c++) {
		t = store_text(r, c);
		v = t == NULL ? json_null()
		              : json_loads(t, JSON_DECODE_ANY, NULL);
		if (v == NULL)
			v = json_string(t); /* unparsable: tampered */
		json_object_set_new(o, js[c - 7], v);
	}
	t = store_text(r, 10);
	json_object_set_new(o, "error", t ? json_string(t) : json_null());
	t = store_text(r, 11);
	json_object_set_new(o, "prev_hash", json_string(t ? t : ""));
	t = store_text(r, 12);
	json_object_set_new(o, "hash", json_string(t ? t : ""));
	return o;
}

/*
 * The chain of the audit table in s, read in pages of ids, into h (made
 * by hashchain_init). 0 when every entry checks out, 1 when one does not
 * (why says which), -1 when the table cannot be read.
 */
int
ctl_audit_chain(struct store *s, struct hashchain *h, struct buf *why)
{
	struct store_rows *r;
	long long after = -1, got;
	json_t *e;
	int step = 0, broken = 0;

	do {
		r = store_query(
		    s,
		    "SELECT id, time, who, addr, action, target, "
		    "status, before_json, after_json, request_json, "
		    "error, prev_hash, hash FROM audit WHERE id > ? "
		    "ORDER BY id LIMIT 5000",
		    S_INT(after));
		if (r == NULL)
			return -1;
		got = 0;
		while ((step = store_next(r)) == 1) {
			got++;
			after = store_int(r, 0);
			e = audit_db_row(r);
			if (e == NULL || hashchain_next(h, e, why) == -1) {
				if (e == NULL)
					buf_puts(why, "out of memory");
				broken = 1;
				json_decref(e);
				break;
			}
			json_decref(e);
		}
		store_done(r);
		if (step == -1)
			return -1;
	} while (!broken && got == 5000);
	return broken;
}

static int
audit_verify_db(const char *path)
{
	struct hashchain h;
	struct store *s;
	struct buf why, err;
	int rc = 1, broken;

	hashchain_init(&h);
	buf_init(&why, 1024);
	buf_init(&err, 1024);
	if ((s = store_open_readonly(path, &err)) == NULL) {
		fprintf(stderr, "vigilctl: %s\n", buf_cstr(&err));
		goto out;
	}
	if ((broken = ctl_audit_chain(s, &h, &why)) == -1) {
		fprintf(stderr, "vigilctl: %s: %s\n", path,
		        store_last_error(s));
		goto out;
	}
	rc = audit_verify_report(&h, broken, &why);
out:
	store_close(s);
	buf_free(&why);
	buf_free(&err);
	return rc;
}

static int
audit_verify(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"db", required_argument, NULL, 'd'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *db = NULL;
	int ch;

	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'd':
			db = optarg;
			break;
		case 'h':
			audit_usage(stdout);
			return 0;
		default:
			audit_usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		audit_usage(stderr);
		return 2;
	}
	return db != NULL ? audit_verify_db(db) : audit_verify_api();
}

int
ctl_audit(int argc, char **argv)
{
	if (argc < 2) {
		audit_usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		audit_usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "list") == 0)
		return audit_list(argc - 1, argv + 1);
	if (strcmp(argv[1], "verify") == 0)
		return audit_verify(argc - 1, argv + 1);
	fprintf(stderr, "vigilctl: audit: unknown command '%s'\n", argv[1]);
	audit_usage(stderr);
	return 2;
}
