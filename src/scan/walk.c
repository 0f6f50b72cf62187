/*
 * walk: the file system walker behind scheduled scans.
 *
 * Directories are opened relative to their parent (openat with
 * O_NOFOLLOW|O_DIRECTORY), so a directory swapped for a symlink while we
 * walk is refused by the kernel instead of followed; symlinks below a root
 * are never followed at all, which also rules out symlink loops, and bind
 * mount loops are caught by comparing each directory with its ancestors.
 * Only regular files are opened: d_type (or fstatat) must say so first, the
 * open is O_NOFOLLOW|O_NONBLOCK (a FIFO swapped in at the last moment opens
 * without waiting for a writer) and fstat on the open descriptor decides.
 * Pseudo file systems (proc, sysfs, cgroup, debugfs, ...) are recognised by
 * statfs's f_type when a walk crosses into another file system.
 *
 * Endpoints must stay usable while they are scanned: the thread lowers its
 * CPU and I/O priority, and three caps pace the walk by sleeping: files per
 * second, MB per second (token buckets on a virtual clock) and a share of
 * one core measured with the thread's CPU clock. Sleeps are cut into short
 * slices so cancellation and progress reports stay prompt.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "buf.h"
#include "log.h"
#include "scan.h"

#define WALK_PATH_MAX      (64u * 1024) /* longer paths are an error */
#define WALK_DEPTH_DEFAULT 64
#define WALK_DEPTH_MAX     1024
#define PACE_SLICE         0.05 /* seconds per sleep slice */
#define CPU_WINDOW         10.0 /* seconds of CPU accounting memory */

#define IOPRIO_CLASS_IDLE  3
#define IOPRIO_CLASS_SHIFT 13
#define IOPRIO_WHO_PROCESS 1

struct frame {
	DIR *d;
	size_t pathlen;
	dev_t dev;
	ino_t ino;
};

struct walker {
	struct scan_ctx *c;
	const struct walk_opts *o;
	struct walk_stats *st;
	struct buf path;
	uint64_t max_size;
	unsigned progress_ms;
	int max_depth;
	dev_t root_dev;
	struct frame *stack;
	size_t depth;
	double start, last_progress;
	double next_file, next_bytes; /* earliest start of the next file */
	double cpu0, wall0;           /* CPU accounting window */
	int stop;                     /* -ECANCELED once cancelled */
};

/* Pseudo file systems: nothing in them is a file anyone put there. */
static const unsigned long pseudo_fs[] = {
    0x9fa0,     /* proc */
    0x62656572, /* sysfs */
    0x1cd1,     /* devpts */
    0x27e0eb,   /* cgroup */
    0x63677270, /* cgroup2 */
    0x64626720, /* debugfs */
    0x74726163, /* tracefs */
    0x73636673, /* securityfs */
    0xf97cff8c, /* selinuxfs */
    0x43415d53, /* smackfs */
    0x5a3c69f0, /* apparmorfs */
    0xcafe4a11, /* bpf */
    0x6165676c, /* pstore */
    0xde5e81e4, /* efivarfs */
    0x62656570, /* configfs */
    0x65735543, /* fusectl */
    0x42494e4d, /* binfmt_misc */
    0x19800202, /* mqueue */
    0x958458f6, /* hugetlbfs */
    0x0187,     /* autofs: looking inside triggers mounts */
    0x6e736673, /* nsfs */
    0x67596969, /* rpc_pipefs */
    0x6e667364, /* nfsd */
    0x9fa2,     /* usbdevfs */
    0xabba1974, /* xenfs */
    0x50495045, /* pipefs */
    0x534f434b, /* sockfs */
};

/* Network and FUSE file systems, skipped with skip_remote. */
static const unsigned long remote_fs[] = {
    0x6969,     /* nfs */
    0x517b,     /* smb */
    0xff534d42, /* cifs */
    0xfe534d42, /* smb2 */
    0x5346414f, /* afs */
    0x6b414653, /* kafs */
    0x73757245, /* coda */
    0x00c36400, /* ceph */
    0x01021997, /* 9p */
    0x65735546, /* fuse (sshfs, ...) */
    0x01161970, /* gfs2 */
    0x7461636f, /* ocfs2 */
    0x0bd00bd0, /* lustre */
};

static int
fs_in(unsigned long t, const unsigned long *set, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (set[i] == t)
			return 1;
	return 0;
}

static int
cancelled(struct walker *w)
{
	if (w->stop == 0 && w->o->cancel != NULL && atomic_load(w->o->cancel))
		w->stop = -ECANCELED;
	return w->stop != 0;
}

static void
progress(struct walker *w, int force)
{
	double now;

	if (w->o->progress == NULL)
		return;
	now = mono_now();
	if (!force && (now - w->last_progress) * 1000.0 < w->progress_ms)
		return;
	w->last_progress = now;
	w->st->elapsed = now - w->start;
	w->o->progress(w->st, force ? NULL : buf_cstr(&w->path), w->o->arg);
}

/* Sleeps until the monotonic time until, in slices, staying responsive. */
static void
pace_until(struct walker *w, double until)
{
	double now;

	while (!cancelled(w) && (now = mono_now()) < until) {
		double left = until - now;
		struct timespec ts;

		if (left > PACE_SLICE)
			left = PACE_SLICE;
		ts.tv_sec = (time_t)left;
		ts.tv_nsec = (long)((left - (double)ts.tv_sec) * 1e9);
		nanosleep(&ts, NULL);
		progress(w, 0);
	}
}

/* Before a file is read: wait for the file, byte and CPU budgets. */
static void
pace_before(struct walker *w)
{
	const struct walk_opts *o = w->o;
	double now = mono_now();

	if (o->files_per_sec > 0) {
		/* each file takes a slot of 1/rate seconds; an idle spell
		 * saves no credit, so a burst never follows it */
		if (w->next_file > now)
			pace_until(w, w->next_file);
		now = mono_now();
		w->next_file = (w->next_file > now ? w->next_file : now) +
		               1.0 / o->files_per_sec;
	}
	if (o->mb_per_sec > 0 && w->next_bytes > now)
		pace_until(w, w->next_bytes);
	if (o->cpu_percent > 0) {
		double cpu = thread_cpu_now() - w->cpu0;
		double due = w->wall0 + cpu * 100.0 / o->cpu_percent;

		if (due > mono_now())
			pace_until(w, due);
		now = mono_now();
		if (now - w->wall0 > CPU_WINDOW) {
			w->wall0 = now;
			w->cpu0 = thread_cpu_now();
		}
	}
}

/* After a file was read: charge its bytes. */
static void
pace_after(struct walker *w, uint64_t bytes)
{
	double now;

	if (w->o->mb_per_sec <= 0)
		return;
	now = mono_now();
	if (w->next_bytes < now)
		w->next_bytes = now;
	w->next_bytes += (double)bytes / (w->o->mb_per_sec * 1e6);
}

static void
walk_error(struct walker *w, const char *what, int err)
{
	w->st->errors++;
	log_debug("walk: %s: %s: %s", buf_cstr(&w->path), what,
	          strcmp(what, "yara") == 0 ? "libyara error" : strerror(err));
	if (w->o->on_error != NULL)
		w->o->on_error(buf_cstr(&w->path), what, err, w->o->arg);
}

static int
excluded(struct walker *w)
{
	size_t i;

	for (i = 0; i < w->o->nexclude; i++)
		if (fnmatch(w->o->exclude[i], buf_cstr(&w->path), 0) == 0)
			return 1;
	return 0;
}

/* Hands a result to the caller; a nonzero answer stops the walk. */
static void
report(struct walker *w, const struct scan_result *r)
{
	if (r->nfindings > 0) {
		w->st->matched++;
		w->st->findings += r->nfindings;
	}
	if (w->o->on_result != NULL && (r->nfindings > 0 || w->o->report_all))
		if (w->o->on_result(r, w->o->arg) != 0)
			w->stop = -ECANCELED;
}

/* What is left for a file we cannot or will not read: its name. */
static void
check_name(struct walker *w, const struct stat *sb)
{
	struct scan_result r;

	if (scan_path(w->c, buf_cstr(&w->path), sb, &r) == 0)
		report(w, &r);
	scan_result_free(&r);
}

static int
open_noatime(int dirfd, const char *name, int flags)
{
	int fd = openat(dirfd, name, flags | O_NOATIME);

	if (fd == -1 && errno == EPERM)
		fd = openat(dirfd, name, flags);
	return fd;
}

/* Scans an open file (fd is closed here) unless it must be skipped. */
static void
file_fd(struct walker *w, int fd)
{
	struct scan_result r;
	struct stat sb;
	int rc;

	if (fstat(fd, &sb) == -1) {
		walk_error(w, "fstat", errno);
		goto done;
	}
	if (!S_ISREG(sb.st_mode)) {
		w->st->special++;
		goto done;
	}
	if (w->o->one_fs && sb.st_dev != w->root_dev) {
		w->st->other_fs++;
		goto done;
	}
	if ((uint64_t)sb.st_size > w->max_size) {
		w->st->too_big++;
		check_name(w, &sb);
		goto done;
	}
	pace_before(w);
	if (cancelled(w))
		goto done;
	rc = scan_fd(w->c, fd, buf_cstr(&w->path), &sb, &r);
	if (rc < 0) {
		walk_error(w, rc == -ENOMEM ? "scan" : "read", -rc);
	} else {
		w->st->scanned++;
		w->st->bytes += r.scanned;
		if (r.flags & SCAN_RES_YARA_ERR)
			walk_error(w, "yara", r.yara_error);
		report(w, &r);
		pace_after(w, r.scanned);
	}
	scan_result_free(&r);
	if (w->o->drop_cache)
		(void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
done:
	close(fd);
}

static void
do_file(struct walker *w, int dirfd, const char *name)
{
	int fd;

	fd = open_noatime(dirfd, name,
	                  O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC |
	                      O_NOCTTY);
	if (fd == -1) {
		if (errno == ELOOP) { /* became a symlink since readdir */
			w->st->special++;
			return;
		}
		walk_error(w, "open", errno);
		check_name(w, NULL);
		return;
	}
	file_fd(w, fd);
}

/* Sets the path to the directory at depth's path plus "/name". */
static int
path_push(struct walker *w, size_t parentlen, const char *name)
{
	buf_setlen(&w->path, parentlen);
	if ((parentlen == 0 || w->path.data[parentlen - 1] != '/') &&
	    buf_putc(&w->path, '/') == -1)
		return -1;
	if (buf_puts(&w->path, name) == -1) {
		buf_setlen(&w->path, parentlen);
		return -1;
	}
	return 0;
}

/*
 * Takes over fd (a directory) and pushes it, unless it must not be
 * entered: another file system with one_fs, a pseudo or (skip_remote)
 * network file system, an ancestor again (bind mount loop), too deep.
 */
static void
enter_dir(struct walker *w, int fd, int is_root)
{
	struct statfs sf;
	struct stat sb;
	struct frame *f;
	DIR *d;
	size_t i;

	if (fstat(fd, &sb) == -1) {
		walk_error(w, "fstat", errno);
		close(fd);
		return;
	}
	if (is_root)
		w->root_dev = sb.st_dev;
	if (is_root || sb.st_dev != w->stack[w->depth - 1].dev) {
		if (!is_root && w->o->one_fs) {
			w->st->other_fs++;
			close(fd);
			return;
		}
		if (fstatfs(fd, &sf) == 0 &&
		    (fs_in((unsigned long)sf.f_type, pseudo_fs,
		           sizeof(pseudo_fs) / sizeof(pseudo_fs[0])) ||
		     (w->o->skip_remote &&
		      fs_in((unsigned long)sf.f_type, remote_fs,
		            sizeof(remote_fs) / sizeof(remote_fs[0]))))) {
			w->st->other_fs++;
			close(fd);
			return;
		}
	}
	for (i = 0; i < w->depth; i++) {
		if (w->stack[i].dev == sb.st_dev &&
		    w->stack[i].ino == sb.st_ino) {
			w->st->special++; /* a loop through a bind mount */
			close(fd);
			return;
		}
	}
	if (w->depth >= (size_t)w->max_depth) {
		walk_error(w, "depth", ELOOP);
		close(fd);
		return;
	}
	if ((d = fdopendir(fd)) == NULL) {
		walk_error(w, "opendir", errno);
		close(fd);
		return;
	}
	f = &w->stack[w->depth++];
	f->d = d;
	f->pathlen = w->path.len;
	f->dev = sb.st_dev;
	f->ino = sb.st_ino;
	w->st->dirs++;
}

static void
walk_entry(struct walker *w, struct frame *top, struct dirent *de)
{
	int dfd = dirfd(top->d), fd;
	unsigned char type = de->d_type;
	struct stat sb;

	w->st->seen++;
	if (path_push(w, top->pathlen, de->d_name) == -1) {
		walk_error(w, "path", ENAMETOOLONG);
		return;
	}
	if (excluded(w)) {
		w->st->excluded++;
		return;
	}
	if (type == DT_UNKNOWN) {
		if (fstatat(dfd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) == -1) {
			walk_error(w, "stat", errno);
			return;
		}
		type = S_ISDIR(sb.st_mode)   ? DT_DIR
		       : S_ISREG(sb.st_mode) ? DT_REG
		                             : DT_LNK; /* any non-file */
	}
	if (type == DT_REG) {
		do_file(w, dfd, de->d_name);
	} else if (type == DT_DIR) {
		fd = open_noatime(dfd, de->d_name,
		                  O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		                      O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
		if (fd == -1 && (errno == ELOOP || errno == ENOTDIR))
			w->st->special++;
		else if (fd == -1)
			walk_error(w, "opendir", errno);
		else
			enter_dir(w, fd, 0);
	} else
		w->st->special++;
}

static void
walk_tree(struct walker *w)
{
	struct dirent *de;

	while (w->depth > 0 && !cancelled(w)) {
		struct frame *top = &w->stack[w->depth - 1];

		errno = 0;
		if ((de = readdir(top->d)) == NULL) {
			buf_setlen(&w->path, top->pathlen);
			if (errno != 0)
				walk_error(w, "readdir", errno);
			closedir(top->d);
			w->depth--;
			continue;
		}
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		walk_entry(w, top, de);
		progress(w, 0);
	}
	while (w->depth > 0)
		closedir(w->stack[--w->depth].d);
}

static void
walk_root(struct walker *w, const char *root)
{
	struct stat sb, fsb;
	size_t len = strlen(root);
	int fd;

	while (len > 1 && root[len - 1] == '/')
		len--;
	buf_reset(&w->path);
	if (buf_append(&w->path, root, len) == -1) {
		walk_error(w, "path", ENAMETOOLONG);
		return;
	}
	w->st->seen++;
	if (excluded(w)) {
		w->st->excluded++;
		return;
	}
	/* A root may be a symlink (configured by an administrator); its type
	 * is checked before anything is opened. */
	if (stat(buf_cstr(&w->path), &sb) == -1) {
		walk_error(w, "stat", errno);
		return;
	}
	if (!S_ISDIR(sb.st_mode) && !S_ISREG(sb.st_mode)) {
		w->st->special++;
		return;
	}
	fd = open_noatime(AT_FDCWD, buf_cstr(&w->path),
	                  O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd == -1) {
		walk_error(w, "open", errno);
		if (S_ISREG(sb.st_mode))
			check_name(w, &sb);
		return;
	}
	if (fstat(fd, &fsb) == -1 || fsb.st_dev != sb.st_dev ||
	    fsb.st_ino != sb.st_ino) {
		w->st->special++; /* replaced between stat and open */
		close(fd);
		return;
	}
	if (S_ISREG(fsb.st_mode)) {
		w->root_dev = fsb.st_dev;
		file_fd(w, fd);
		return;
	}
	enter_dir(w, fd, 1);
	walk_tree(w);
}

static void
lower_priority(const struct walk_opts *o)
{
	pid_t tid = (pid_t)syscall(SYS_gettid);
	int cur;

	/* On Linux the nice value and the I/O priority belong to the
	 * thread; addressing it by tid keeps the rest of the process as
	 * it was. */
	if (o->nice > 0) {
		errno = 0;
		cur = getpriority(PRIO_PROCESS, (id_t)tid);
		if (errno == 0 &&
		    setpriority(PRIO_PROCESS, (id_t)tid,
		                cur + o->nice > 19 ? 19 : cur + o->nice) == -1)
			log_debug("walk: setpriority: %s", strerror(errno));
	}
	if (o->io_idle &&
	    syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, (int)tid,
	            IOPRIO_CLASS_IDLE << IOPRIO_CLASS_SHIFT) == -1)
		log_debug("walk: ioprio_set: %s", strerror(errno));
}

int
walk_run(struct scan_ctx *c, const char *const *paths, size_t n,
         const struct walk_opts *o, struct walk_stats *st)
{
	struct walker w;
	uint64_t cmax = scan_ctx_opts(c)->max_size;
	size_t i;

	memset(st, 0, sizeof(*st));
	if (o->nice < 0 || o->nice > 19 || o->files_per_sec < 0 ||
	    o->mb_per_sec < 0 || o->cpu_percent < 0 || o->cpu_percent > 100 ||
	    o->max_depth < 0 || o->max_depth > WALK_DEPTH_MAX ||
	    (o->nexclude > 0 && o->exclude == NULL))
		return -EINVAL;
	memset(&w, 0, sizeof(w));
	w.c = c;
	w.o = o;
	w.st = st;
	w.max_size = o->max_size > 0 && o->max_size < cmax ? o->max_size : cmax;
	w.progress_ms = o->progress_ms > 0 ? o->progress_ms : 1000;
	w.max_depth = o->max_depth > 0 ? o->max_depth : WALK_DEPTH_DEFAULT;
	buf_init(&w.path, WALK_PATH_MAX);
	if ((w.stack = calloc((size_t)w.max_depth, sizeof(*w.stack))) == NULL)
		return -ENOMEM;
	lower_priority(o);
	w.start = w.last_progress = w.wall0 = mono_now();
	w.cpu0 = thread_cpu_now();
	for (i = 0; i < n && !cancelled(&w); i++)
		walk_root(&w, paths[i]);
	st->elapsed = mono_now() - w.start;
	scan_ctx_trim(c);
	buf_reset(&w.path);
	progress(&w, 1);
	free(w.stack);
	buf_free(&w.path);
	return w.stop;
}
