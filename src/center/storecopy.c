/*
 * storecopy.c: `vigild --store-copy FILE -c CONF`, the move of a whole
 * SQLite store into the PostgreSQL database of [store] url. A vigild
 * subcommand rather than a vigilctl one: vigild owns the schema (its
 * migrations create the target's tables at the version the copy must
 * match) and reads the configuration that names the database, with its
 * TLS and password settings; the copy is made by the binary that will
 * then serve it.
 *
 * The center must be stopped. The source is brought to this version's
 * schema first (what starting vigild on it would do), the target is
 * created by the same migrations and must hold no rows. Every table is
 * copied in rowid order, in one transaction on the target: a failed copy
 * leaves it empty. The events keep their rowid (the forwarding targets'
 * cursors point into it) and the identity counters continue after the
 * copied rows, and the file samples' content is added from the data
 * directory (sampleshare.c). Then the copy is checked: the rows of every table
 * are counted on both sides, and the audit hash chain is verified again on the
 * target, entry by entry, and must end in the source's last hash.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "center.h"
#include "hashchain.h"
#include "store_pg.h"

#define COPY_PAGE 2000
#define COPY_COLS 64

struct copy_table {
	char name[64];
	long long rows;
};

/* The tables of the source, but schema_migrations (made by the target's
 * own migrations). */
static int
source_tables(struct store *src, struct copy_table **out, size_t *n,
              struct buf *err)
{
	struct store_rows *r;
	struct copy_table *t = NULL, *nt;
	size_t cap = 0;
	int step;

	*n = 0;
	r = store_query(src, "SELECT name FROM sqlite_master WHERE type = "
	                     "'table' AND name NOT LIKE 'sqlite_%' AND name "
	                     "<> 'schema_migrations' ORDER BY name");
	if (r == NULL)
		goto fail;
	while ((step = store_next(r)) == 1) {
		if (*n == cap) {
			cap = cap ? cap * 2 : 32;
			if ((nt = realloc(t, cap * sizeof(*t))) == NULL)
				break;
			t = nt;
		}
		snprintf(t[*n].name, sizeof(t[*n].name), "%s",
		         store_text(r, 0));
		t[*n].rows = 0;
		(*n)++;
	}
	store_done(r);
	if (step != 0)
		goto fail;
	*out = t;
	return 0;
fail:
	buf_printf(err, "cannot list the source's tables");
	free(t);
	return -1;
}

static long long
count_rows(struct store *s, const char *table)
{
	struct store_rows *r;
	char sql[128];
	long long n = -1;

	snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM %s", table);
	if ((r = store_query(s, sql)) != NULL && store_next(r) == 1)
		n = store_int(r, 0);
	store_done(r);
	return n;
}

/*
 * Copies one table, COPY_PAGE rows at a time by rowid. The events' rowid
 * goes into the column of that name on PostgreSQL.
 */
static int
copy_table(struct store *src, struct store *dst, struct copy_table *t,
           struct buf *err)
{
	struct store_arg v[COPY_COLS + 1];
	struct store_rows *r;
	struct buf sel, ins;
	long long after = -1;
	int keep_rowid = strcmp(t->name, "events") == 0;
	int ncols, k, first, got, rc = -1, step;

	buf_init(&sel, 4096);
	buf_init(&ins, 8192);
	buf_printf(&sel,
	           "SELECT rowid, * FROM %s WHERE rowid > ? ORDER BY rowid "
	           "LIMIT %d",
	           t->name, COPY_PAGE);
	do {
		if ((r = store_query(src, buf_cstr(&sel), S_INT(after))) ==
		    NULL)
			goto out;
		got = 0;
		while ((step = store_next(r)) == 1) {
			ncols = store_ncols(r);
			if (ncols - 1 > COPY_COLS) {
				buf_printf(err, "%s: too many columns",
				           t->name);
				store_done(r);
				goto out;
			}
			if (ins.len == 0) {
				/* The statement, from the first row's shape. */
				buf_printf(&ins, "INSERT INTO %s (", t->name);
				first = keep_rowid ? 0 : 1;
				for (k = first; k < ncols; k++)
					buf_printf(&ins, "%s%s",
					           k > first ? ", " : "",
					           store_colname(r, k));
				buf_puts(&ins, ") VALUES (");
				for (k = first; k < ncols; k++)
					buf_puts(&ins, k > first ? ", ?" : "?");
				buf_puts(&ins, ")");
				if (buf_ok(&ins) != 0)
					goto out;
			}
			first = keep_rowid ? 0 : 1;
			for (k = first; k < ncols; k++) {
				if (store_isnull(r, k))
					v[k - first] = S_NULL;
				else if (store_isint(r, k))
					v[k - first] = S_INT(store_int(r, k));
				else
					v[k - first] = S_TEXT(store_text(r, k));
			}
			after = store_int(r, 0);
			if (store_exec_args(dst, buf_cstr(&ins), v,
			                    (size_t)(ncols - first)) != 1) {
				buf_printf(err, "%s: row %lld: %s", t->name,
				           after, store_last_error(dst));
				store_done(r);
				goto out;
			}
			got++;
			t->rows++;
		}
		store_done(r);
		if (step == -1) {
			buf_printf(err, "%s: cannot be read: %s", t->name,
			           store_last_error(src));
			goto out;
		}
	} while (got == COPY_PAGE);
	rc = 0;
out:
	buf_free(&sel);
	buf_free(&ins);
	return rc;
}

/* Identity columns continue after the copied rows. */
static int
reset_identities(struct store *dst, struct buf *err)
{
	struct store_rows *r;
	char tables[32][64], columns[32][64], sql[1024];
	int n = 0, i, step;

	r = store_query(dst, "SELECT table_name, column_name FROM "
	                     "information_schema.columns WHERE table_schema "
	                     "= current_schema() AND is_identity = 'YES'");
	if (r == NULL)
		return -1;
	while ((step = store_next(r)) == 1 && n < 32) {
		snprintf(tables[n], sizeof(tables[n]), "%s", store_text(r, 0));
		snprintf(columns[n], sizeof(columns[n]), "%s",
		         store_text(r, 1));
		n++;
	}
	store_done(r);
	for (i = 0; i < n; i++) {
		snprintf(sql, sizeof(sql),
		         "SELECT setval(pg_get_serial_sequence('%.63s', "
		         "'%.63s'), COALESCE(MAX(%.63s), 0) + 1, false) FROM "
		         "%.63s",
		         tables[i], columns[i], columns[i], tables[i]);
		if ((r = store_query(dst, sql)) == NULL || store_next(r) != 1) {
			store_done(r);
			buf_printf(err, "%s.%s: cannot set its counter",
			           tables[i], columns[i]);
			return -1;
		}
		store_done(r);
	}
	return 0;
}

/* The audit chain of s: 0 intact (h says how long and its last hash), 1
 * broken (why), -1 unreadable. */
static int
audit_chain(struct store *s, struct hashchain *h, struct buf *why)
{
	struct store_rows *r;
	long long after = -1, got;
	json_t *e;
	int step, broken = 0;

	hashchain_init(h);
	do {
		r = store_query(s,
		                "SELECT " AUDIT_COLUMNS
		                " FROM audit WHERE id > "
		                "? ORDER BY id LIMIT 5000",
		                S_INT(after));
		if (r == NULL)
			return -1;
		got = 0;
		while ((step = store_next(r)) == 1) {
			got++;
			after = store_int(r, 0);
			e = audit_row_json(r);
			if (e == NULL || hashchain_next(h, e, why) == -1) {
				if (e == NULL)
					buf_puts(why, "out of memory");
				json_decref(e);
				broken = 1;
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

/*
 * Several nodes share one PostgreSQL database, and so the samples: their
 * content goes into sample_parts (sampleshare.c) from this center's data
 * directory. A sample whose file is missing there is named and left out
 * (its row stays: the file may come back). The parts written, or -1.
 */
static long long
share_samples(struct center *c, struct store *src, struct store *dst,
              struct buf *err)
{
	struct store_rows *r;
	char path[4400];
	long long parts = 0, p, shared = 0, missing = 0;
	int step;

	r = store_query(src, "SELECT sha256 FROM samples ORDER BY sha256");
	if (r == NULL) {
		buf_printf(err, "samples: %s", store_last_error(src));
		return -1;
	}
	while ((step = store_next(r)) == 1) {
		const char *sha = store_text(r, 0);
		struct stat st;

		if (sha == NULL || strlen(sha) != 64)
			continue;
		snprintf(path, sizeof(path), "%s/samples/%.2s/%s",
		         c->conf.data_dir, sha, sha);
		if (stat(path, &st) == -1) {
			log_warnx("store copy: sample %s: no file %s; its "
			          "content is not copied",
			          sha, path);
			missing++;
			continue;
		}
		if ((p = sample_share_file(dst, sha, path, err)) < 0) {
			store_done(r);
			return -1;
		}
		parts += p;
		shared++;
	}
	store_done(r);
	if (step == -1) {
		buf_printf(err, "samples: %s", store_last_error(src));
		return -1;
	}
	printf("samples          %lld shared from %s/samples (%lld parts)%s\n",
	       shared, c->conf.data_dir, parts,
	       missing ? ", some missing: see the log" : "");
	return parts;
}

int
center_store_copy(struct center *c, const char *from, struct buf *err)
{
	struct store *src = NULL, *dst = NULL;
	struct copy_table *t = NULL;
	struct hashchain hs, hd;
	struct buf why;
	struct stat st;
	size_t n = 0, i;
	long long m, parts = 0;
	int rc = -1, a;

	buf_init(&why, 1024);
	if (c->conf.store_url == NULL) {
		buf_printf(err,
		           "%s: no [store] url: name the PostgreSQL "
		           "database to copy into there",
		           c->conf_path);
		goto out;
	}
	if (stat(from, &st) == -1 || st.st_size == 0) {
		buf_printf(err, "%s: no SQLite database there", from);
		goto out;
	}
	if ((src = store_open(from, center_migrations, center_nmigrations,
	                      err)) == NULL ||
	    store_quick_check(src, from, err) == -1)
		goto out;
	if ((dst = store_open(c->conf.store_url, center_migrations,
	                      center_nmigrations, err)) == NULL)
		goto out;
	if (source_tables(src, &t, &n, err) == -1)
		goto out;
	for (i = 0; i < n; i++) {
		if ((m = count_rows(dst, t[i].name)) != 0) {
			buf_printf(err,
			           "%s: table %s %s; copy only into a new, "
			           "empty database",
			           center_store_name(c), t[i].name,
			           m < 0 ? "is missing" : "holds rows already");
			goto out;
		}
	}
	if (store_begin(dst) == -1) {
		buf_printf(err, "%s: %s", center_store_name(c),
		           store_last_error(dst));
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (copy_table(src, dst, &t[i], err) == -1) {
			store_rollback(dst);
			goto out;
		}
		log_info("store copy: %s: %lld rows", t[i].name, t[i].rows);
	}
	if (reset_identities(dst, err) == -1 ||
	    (parts = share_samples(c, src, dst, err)) < 0) {
		store_rollback(dst);
		goto out;
	}
	if (store_commit(dst) == -1) {
		buf_printf(err, "%s: commit: %s", center_store_name(c),
		           store_last_error(dst));
		goto out;
	}
	/* The check, on what is committed. */
	for (i = 0; i < n; i++) {
		long long ns = count_rows(src, t[i].name);
		long long nd = count_rows(dst, t[i].name);

		/* The samples' content, added from the data directory. */
		if (strcmp(t[i].name, "sample_parts") == 0)
			nd -= parts;
		if (ns != nd || nd != t[i].rows) {
			buf_printf(err,
			           "table %s: %lld rows in the source, %lld "
			           "copied, %lld in the target",
			           t[i].name, ns, t[i].rows, nd);
			goto out;
		}
		printf("%-16s %lld rows\n", t[i].name, nd);
	}
	if ((a = audit_chain(src, &hs, &why)) != 0) {
		buf_printf(err, "the source's audit chain is %s: %s",
		           a < 0 ? "unreadable" : "broken", buf_cstr(&why));
		goto out;
	}
	if ((a = audit_chain(dst, &hd, &why)) != 0 ||
	    hd.checked != hs.checked ||
	    strcmp(hd.last_hash, hs.last_hash) != 0) {
		buf_printf(err,
		           "the copied audit chain does not verify: %s (%lld "
		           "entries, last hash %s; the source: %lld, %s)",
		           a < 0 ? "unreadable" : buf_cstr(&why), hd.checked,
		           hd.last_hash, hs.checked, hs.last_hash);
		goto out;
	}
	printf("audit chain verified on the target: %lld entries, last hash "
	       "%s\n",
	       hd.checked, hd.last_hash);
	printf("copied %s into %s (schema version %d)\n", from,
	       center_store_name(c), store_schema_version(dst));
	rc = 0;
out:
	free(t);
	store_close(src);
	store_close(dst);
	buf_free(&why);
	return rc;
}
