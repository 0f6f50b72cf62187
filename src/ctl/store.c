/*
 * store.c: `vigilctl store backup|restore|check`, run on the center's host
 * against the database file itself, not through the API: a backup is
 * SQLite's online backup of one consistent snapshot (the running center
 * keeps writing meanwhile), a restore puts a checked backup in place of a
 * lost or damaged database while the center is stopped.
 *
 * A center on PostgreSQL ([store] url) is backed up the way PostgreSQL
 * is: pg_dump (or the operator's base backups and WAL archive). backup
 * and restore given --url say so and do nothing; check given a URL checks
 * that the database answers (PostgreSQL checks its own pages).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "buf.h"
#include "ctl.h"
#include "store.h"

#define DEFAULT_DATA_DIR "/var/lib/vigil"

static const char *g_url; /* --url: the center is on PostgreSQL */

static void
store_usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: vigilctl store backup [--data-dir DIR | --url URL] FILE\n"
	    "       vigilctl store restore [--data-dir DIR | --url URL] FILE\n"
	    "       vigilctl store check FILE|URL\n"
	    "\n"
	    "Run on the center's host, on the database file itself.\n"
	    "  backup   consistent copy of DIR/vigil.db into the new FILE,\n"
	    "           while the center runs; the copy is checked\n"
	    "  restore  checks FILE, then puts it in place of DIR/vigil.db\n"
	    "           (the old one is kept as vigil.db.before-restore-T);\n"
	    "           the center must be stopped\n"
	    "  check    SQLite's quick_check of a database or backup file;\n"
	    "           for a PostgreSQL URL, that the database answers\n"
	    "\n"
	    "  --data-dir DIR   the center's data directory (default %s)\n"
	    "  --url URL        the center is on PostgreSQL ([store] url): "
	    "prints\n"
	    "                   how to back it up or restore it (pg_dump)\n"
	    "Moving a SQLite store into PostgreSQL: vigild --store-copy "
	    "(vigild(8)).\n",
	    DEFAULT_DATA_DIR);
}

/* Parses [--data-dir DIR] FILE. */
/* A center on PostgreSQL: its backups are PostgreSQL's. */
static int
pg_answer(const char *what, const char *url, const char *file)
{
	fprintf(stderr,
	        "vigilctl: store %s: the center's database is PostgreSQL "
	        "(%s);\n"
	        "vigilctl makes no copies of it. Use PostgreSQL's own tools "
	        "(docs/store.md):\n",
	        what, store_redact_url(url));
	if (strcmp(what, "backup") == 0)
		fprintf(stderr,
		        "  pg_dump --format=custom --file=%s 'URL'\n"
		        "(or base backups with WAL archiving, pg_basebackup, "
		        "for point-in-time recovery)\n",
		        file);
	else
		fprintf(stderr,
		        "  pg_restore --clean --if-exists --dbname='URL' %s\n"
		        "with every vigild node stopped\n",
		        file);
	return 1;
}

static int
args(int argc, char **argv, const char **dir, const char **file)
{
	static const struct option opts[] = {
	    {"data-dir", required_argument, NULL, 'd'},
	    {"url", required_argument, NULL, 'u'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int ch;

	*dir = DEFAULT_DATA_DIR;
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'd':
			*dir = optarg;
			break;
		case 'u':
			g_url = optarg;
			break;
		case 'h':
			store_usage(stdout);
			exit(0);
		default:
			store_usage(stderr);
			return -1;
		}
	}
	if (optind != argc - 1) {
		store_usage(stderr);
		return -1;
	}
	*file = argv[optind];
	return 0;
}

/* The pid of a vigild running on dir (its vigild.ports), or 0. */
static long
running_vigild(const char *dir)
{
	char path[4096];
	json_t *j;
	long pid;

	snprintf(path, sizeof(path), "%s/vigild.ports", dir);
	if ((j = json_load_file(path, 0, NULL)) == NULL)
		return 0;
	pid = (long)json_integer_value(json_object_get(j, "pid"));
	json_decref(j);
	if (pid > 1 && (kill((pid_t)pid, 0) == 0 || errno == EPERM))
		return pid;
	return 0;
}

static int
store_backup(int argc, char **argv)
{
	const char *dir, *file;
	char db[4096];
	struct buf err;
	int rc = 1;

	if (args(argc, argv, &dir, &file) == -1)
		return 2;
	if (g_url != NULL)
		return pg_answer("backup", g_url, file);
	snprintf(db, sizeof(db), "%s/vigil.db", dir);
	buf_init(&err, 4096);
	umask(077);
	if (store_backup_file(db, file, &err) == -1) {
		fprintf(stderr, "vigilctl: store backup: %s\n", buf_cstr(&err));
		goto out;
	}
	printf("backup of %s written to %s (checked)\n", db, file);
	rc = 0;
out:
	buf_free(&err);
	return rc;
}

/* Copies src to the new file dst (0600), synced. */
static int
copy_file(const char *src, const char *dst, struct buf *err)
{
	char b[65536];
	ssize_t n;
	int in, out, rc = -1;

	if ((in = open(src, O_RDONLY | O_CLOEXEC)) == -1) {
		buf_printf(err, "%s: %s", src, strerror(errno));
		return -1;
	}
	if ((out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) ==
	    -1) {
		buf_printf(err, "%s: %s", dst, strerror(errno));
		close(in);
		return -1;
	}
	while ((n = read(in, b, sizeof(b))) > 0)
		if (write(out, b, (size_t)n) != n)
			break;
	if (n == 0 && fsync(out) == 0)
		rc = 0;
	else
		buf_printf(err, "%s: %s", dst, strerror(errno));
	close(in);
	if (close(out) == -1)
		rc = -1;
	if (rc == -1)
		(void)unlink(dst);
	return rc;
}

static int
store_restore(int argc, char **argv)
{
	const char *dir, *file, *side[] = {"", "-wal", "-shm"};
	char db[4096], tmp[4200], from[4200], to[4200];
	struct buf err;
	struct stat st;
	long pid;
	time_t now = time(NULL);
	size_t i;
	int rc = 1;

	if (args(argc, argv, &dir, &file) == -1)
		return 2;
	if (g_url != NULL)
		return pg_answer("restore", g_url, file);
	buf_init(&err, 4096);
	snprintf(db, sizeof(db), "%s/vigil.db", dir);
	if ((pid = running_vigild(dir)) != 0) {
		fprintf(stderr,
		        "vigilctl: store restore: vigild (pid %ld) is running "
		        "on %s; stop it first\n",
		        pid, dir);
		goto out;
	}
	if (store_check_file(file, &err) == -1) {
		fprintf(stderr,
		        "vigilctl: store restore: %s is not a sound "
		        "database: %s\n",
		        file, buf_cstr(&err));
		goto out;
	}
	snprintf(tmp, sizeof(tmp), "%s.restore-tmp", db);
	(void)unlink(tmp);
	umask(077);
	if (copy_file(file, tmp, &err) == -1) {
		fprintf(stderr, "vigilctl: store restore: %s\n",
		        buf_cstr(&err));
		goto out;
	}
	/* The restored file belongs to whoever owns the data directory
	 * (the _vigil user of the packages). */
	if (stat(dir, &st) == 0 && chown(tmp, st.st_uid, st.st_gid) == -1)
		fprintf(stderr, "vigilctl: store restore: chown %s: %s\n", tmp,
		        strerror(errno));
	for (i = 0; i < sizeof(side) / sizeof(side[0]); i++) {
		snprintf(from, sizeof(from), "%s%s", db, side[i]);
		snprintf(to, sizeof(to), "%s.before-restore-%lld%s", db,
		         (long long)now, side[i]);
		if (rename(from, to) == 0)
			printf("kept the old %s as %s\n", from, to);
		else if (errno != ENOENT) {
			fprintf(stderr, "vigilctl: store restore: %s: %s\n",
			        from, strerror(errno));
			(void)unlink(tmp);
			goto out;
		}
	}
	if (rename(tmp, db) == -1) {
		fprintf(stderr, "vigilctl: store restore: %s: %s\n", db,
		        strerror(errno));
		goto out;
	}
	printf("restored %s from %s; start the center and run "
	       "`vigilctl audit verify`\n",
	       db, file);
	rc = 0;
out:
	buf_free(&err);
	return rc;
}

static int
store_check(int argc, char **argv)
{
	struct buf err;
	int rc;

	if (argc != 2 || argv[1][0] == '-') {
		store_usage(argc == 2 ? stdout : stderr);
		return argc == 2 ? 0 : 2;
	}
	buf_init(&err, 4096);
	if (store_is_url(argv[1])) {
		struct store *s = store_open_readonly(argv[1], &err);

		rc = s == NULL ? -1
		               : store_quick_check(s, store_redact_url(argv[1]),
		                                   &err);
		store_close(s);
		if (rc == 0)
			printf("%s: ok (PostgreSQL answers; it checks its own "
			       "pages)\n",
			       store_redact_url(argv[1]));
		else
			fprintf(stderr, "vigilctl: store check: %s\n",
			        buf_cstr(&err));
		buf_free(&err);
		return rc == 0 ? 0 : 1;
	}
	rc = store_check_file(argv[1], &err);
	if (rc == 0)
		printf("%s: ok\n", argv[1]);
	else
		fprintf(stderr, "vigilctl: store check: %s\n", buf_cstr(&err));
	buf_free(&err);
	return rc == 0 ? 0 : 1;
}

int
ctl_store(int argc, char **argv)
{
	const char *sub = argc > 1 ? argv[1] : NULL;

	if (sub == NULL) {
		store_usage(stderr);
		return 2;
	}
	if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 ||
	    strcmp(sub, "help") == 0) {
		store_usage(stdout);
		return 0;
	}
	optind = 0;
	if (strcmp(sub, "backup") == 0)
		return store_backup(argc - 1, argv + 1);
	if (strcmp(sub, "restore") == 0)
		return store_restore(argc - 1, argv + 1);
	if (strcmp(sub, "check") == 0)
		return store_check(argc - 1, argv + 1);
	fprintf(stderr, "vigilctl: store: unknown command '%s'\n", sub);
	store_usage(stderr);
	return 2;
}
