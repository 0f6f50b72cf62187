/*
 * scan: the scan engine shared by vigil-agent (scheduled file scans), the
 * center (checking uploaded rule sets) and vigil-scand (samples over HTTP).
 *
 *   rule bundle   YARA rules (libyara) + hash IOCs (MD5/SHA-1/SHA-256, a
 *                 hash table) + filename IOCs (regex), immutable once
 *                 loaded, reference counted, shared by any number of threads,
 *                 named by a content version (SHA-256 of its sources).
 *   scan context  one per thread: a YARA scanner, digest contexts and a
 *                 read buffer. Reads each file once into the buffer (up to
 *                 max_size, so a file truncated while read cannot SIGBUS us
 *                 as an mmap could) and feeds the digests and YARA from it.
 *   result        the subject (path, size, times, hashes, first bytes,
 *                 magic header) and its findings with score and level; laid
 *                 out so vigil-scand can render Thunderstorm's JSON.
 *   walker        walks directories without following symlinks or opening
 *                 anything but regular files, skips pseudo file systems,
 *                 honours exclusions, size, CPU and I/O limits, reports
 *                 progress and can be cancelled (walk.c).
 *
 * Everything returns 0 on success and -1 or a negative errno on failure;
 * messages meant for a person go to a struct buf.
 */
#ifndef VIGIL_SCAN_H
#define VIGIL_SCAN_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>

#include "buf.h"
#include "ioc.h"

/* libyara is initialised once per process (thread-safe, idempotent); every
 * entry point below calls it, so calling it is optional. */
int scan_init(void);

/* ---- rule sets -------------------------------------------------------- */

/*
 * Compiles YARA source text (need not be NUL-terminated; an embedded NUL is
 * an error) and throws the result away. Errors *and* warnings are reported,
 * one per line, as "rules:LINE: error: MESSAGE" or "rules:LINE: warning:
 * MESSAGE"; either refuses the set (a "slowing down scanning" warning means
 * every endpoint crawls). include directives are refused. Returns 0 when
 * clean, -1 otherwise. This is what the center runs on upload.
 */
int scan_rules_check(const char *text, size_t len, struct buf *err);
/* The same for an IOC file: "iocs:LINE: message" per bad line. */
int scan_ioc_check(const char *text, size_t len, struct buf *err);

enum scan_src_type { SCAN_SRC_YARA = 0, SCAN_SRC_IOC };

struct scan_src {
	enum scan_src_type type;
	const char *name; /* used in messages: "name:line: ..." */
	const uint8_t *data;
	size_t len;
};

struct scan_bundle;

struct scan_bundle_info {
	char version[65]; /* hex SHA-256 over the sources, in order */
	unsigned yara_rules;
	size_t hash_iocs[IOC_NHASH]; /* by enum ioc_type */
	size_t filename_iocs;
};

/*
 * Builds a bundle from sources (any mix, any order; all YARA sources go into
 * one namespace, so rule names must be unique across them). Every source is
 * checked; all errors and warnings are appended to err as above, and any of
 * them refuses the bundle (-1, *out untouched). An empty bundle is valid.
 */
int scan_bundle_new(const struct scan_src *src, size_t n,
                    struct scan_bundle **out, struct buf *err);
/*
 * For a process that must build the same bundle as another without
 * compiling the YARA rules again (vigil-scand's scan workers):
 * scan_bundle_save_yara writes b's compiled YARA rules as libyara saves
 * them to fd (nothing when b has none; 0, or -1 on a write or libyara
 * error); scan_bundle_new_saved is scan_bundle_new for the same sources
 * with those saved bytes (saved != NULL, slen 0 when there are no YARA
 * sources) loaded instead of compiling the YARA sources. IOC sources are
 * parsed and the version computed from src as always. The saved bytes are
 * trusted to be what the same sources compile to: they are libyara's
 * internal format, never to be taken from an untrusted party.
 */
int scan_bundle_save_yara(const struct scan_bundle *b, int fd);
int scan_bundle_new_saved(const struct scan_src *src, size_t n,
                          const uint8_t *saved, size_t slen,
                          struct scan_bundle **out, struct buf *err);
/* Reads rule files: *.yar / *.yara are YARA, *.ioc / *.txt are IOC files,
 * anything else is refused. Files up to 256 MiB each. */
int scan_bundle_load(const char *const *paths, size_t n,
                     struct scan_bundle **out, struct buf *err);
/*
 * What scan_bundle_load does before scan_bundle_new: the files read into
 * sources (src[i].name is paths[i], src[i].data points into data[i]),
 * with the same errors. For a process that hands the sources on to another
 * that builds the very same bundle (vigil-scand's scan workers). Free both
 * with scan_srcs_free.
 */
int scan_srcs_read(const char *const *paths, size_t n, struct scan_src **src,
                   struct buf **data, struct buf *err);
void scan_srcs_free(struct scan_src *src, struct buf *data, size_t n);
struct scan_bundle *scan_bundle_ref(struct scan_bundle *b);
void scan_bundle_free(struct scan_bundle *b); /* drops one reference */
void scan_bundle_info(const struct scan_bundle *b,
                      struct scan_bundle_info *out);
const char *scan_bundle_version(const struct scan_bundle *b);

/* ---- results ---------------------------------------------------------- */

enum scan_level {
	SCAN_LEVEL_NONE = 0, /* no finding */
	SCAN_LEVEL_INFO,     /* findings, total score below notice */
	SCAN_LEVEL_NOTICE,
	SCAN_LEVEL_WARNING,
	SCAN_LEVEL_ALERT,
};

enum scan_kind { SCAN_KIND_YARA = 0, SCAN_KIND_HASH, SCAN_KIND_FILENAME };

#define SCAN_HASH_MD5    (1u << IOC_MD5)
#define SCAN_HASH_SHA1   (1u << IOC_SHA1)
#define SCAN_HASH_SHA256 (1u << IOC_SHA256)
#define SCAN_HASH_ALL    (SCAN_HASH_MD5 | SCAN_HASH_SHA1 | SCAN_HASH_SHA256)

#define SCAN_FIRST_BYTES 20

struct scan_opts {
	uint64_t max_size;          /* bytes read per file; default 64 MiB */
	int timeout;                /* YARA seconds per file; default 60 */
	int alert, warning, notice; /* score thresholds; default 80/60/40 */
	int yara_score;             /* rules without meta score; default 75 */
	unsigned max_strings; /* matched strings kept per rule; default 8 */
	unsigned max_data;    /* bytes kept per matched string; default 64 */
	/*
	 * Digests computed for every file (SCAN_HASH_*). The ones the hash
	 * IOCs need are always computed, and all three for a file with a
	 * finding, from the same read; default 0 keeps clean files cheap.
	 * vigil-scand caching by SHA-256 sets SCAN_HASH_SHA256 or ALL.
	 */
	unsigned hashes;
	/*
	 * 1: libyara does not catch SIGSEGV/SIGBUS during a scan (its
	 * YR_TRYCATCH, meant for files mapped while another process cuts
	 * them). This engine never hands libyara a mapping that can shrink,
	 * so a fault there is a bug: vigil-scand's sandboxed workers set it
	 * so the process dies and its sample gets an error, instead of
	 * scanning on after a wild memory access. Default 0.
	 */
	int no_trycatch;
};

/* One matched string (YARA), or the subject's field an IOC matched. */
struct scan_string {
	const char *field;  /* "content", "path", "md5", "sha1", "sha256" */
	char *identifier;   /* YARA "$s1"; NULL for IOCs */
	uint64_t offset;    /* in the content, or in the path */
	uint32_t match_len; /* whole match; data may be shorter */
	uint8_t *data;      /* first min(match_len, max_data) bytes */
	size_t len;
};

struct scan_meta {
	char *key, *value; /* YARA meta, integers and booleans as text */
};

struct scan_finding {
	enum scan_kind kind;
	int score;
	char *rule;        /* rule name, or the IOC value (hex / regex) */
	char *description; /* meta description, or the IOC's; may be NULL */
	char *reference;   /* meta reference; may be NULL */
	char *author;      /* meta author; may be NULL */
	char *source;      /* IOC "file:line"; NULL for YARA */
	char **tags;
	size_t ntags;
	struct scan_meta *meta;
	size_t nmeta;
	struct scan_string *matched;
	size_t nmatched;
	int more_matches; /* matches were left out (max_strings) */
};

/* result flags */
#define SCAN_RES_NOT_READ                                                      \
	0x01                    /* larger than max_size: only the path checked \
	                         */
#define SCAN_RES_CHANGED   0x02 /* size changed while it was read */
#define SCAN_RES_TRUNCATED 0x04 /* grew past max_size while read: cut */
#define SCAN_RES_YARA_ERR  0x08 /* YARA failed (yara_error); IOCs ran */

struct scan_result {
	char *path;       /* as given (a name for buffers) */
	char *extension;  /* ".exe" from the last path element; "" if none */
	int exists;       /* 1 for files, 0 for buffers */
	uint64_t size;    /* file size (stat), or bytes scanned for buffers */
	uint64_t scanned; /* bytes read and scanned */
	struct timespec mtime, ctime, atime; /* zero for buffers */
	unsigned hashes;                     /* SCAN_HASH_* valid below */
	char md5[33], sha1[41], sha256[65];
	uint8_t first[SCAN_FIRST_BYTES];
	size_t nfirst;
	const char *magic; /* "ELF", "EXE", "ZIP", ...; "" when unknown */
	int flags;         /* SCAN_RES_* */
	int yara_error;    /* libyara ERROR_* when SCAN_RES_YARA_ERR */
	int score;         /* combined, 0..100 */
	enum scan_level level;
	struct scan_finding *findings; /* highest score first */
	size_t nfindings;
	const char *version; /* bundle version (valid while the bundle is) */
};

void scan_opts_default(struct scan_opts *o);
/* Level of a score under o's thresholds (NONE for score <= 0). */
enum scan_level scan_level_of(int score, const struct scan_opts *o);
const char *scan_level_name(enum scan_level l); /* "alert", ... "none" */
const char *scan_kind_name(enum scan_kind k);   /* "YARA Rule", ... */
/* Combined score of several findings: 100 * (1 - prod(1 - s_i / 100)),
 * rounded; one finding keeps its score, more only ever raise it. */
int scan_score_combine(const int *scores, size_t n);

void scan_result_free(struct scan_result *r); /* and zeroes it */
/* "7f454c46..." (2 * nfirst chars) and the printable ASCII with '.' for
 * the rest; out must hold 2 * SCAN_FIRST_BYTES + 1 bytes. */
void scan_first_bytes_hex(const struct scan_result *r, char *out);
void scan_first_bytes_ascii(const struct scan_result *r, char *out);
/*
 * A neutral JSON rendering, close to Thunderstorm's result so vigil-scand
 * maps it 1:1: {"type": "file", "subject": {path, exists, extension,
 * magic_header, hashes, first_bytes, size, modified, changed, accessed},
 * "score", "level", "reasons": [{summary, signature: {score, kind,
 * rule_name, tags, description, reference, author, meta}, matched: [{data,
 * hex, offset, field, identifier}]}], "ruleset_version", "flags": [...]}.
 * Binary data is rendered printable (\xNN for other bytes, the backslash
 * doubled); text from the rule files (rule names, a filename IOC's regex,
 * meta) keeps its backslashes as written. NULL on allocation failure.
 */
json_t *scan_result_to_json(const struct scan_result *r);
/*
 * A JSON string of a path or name as scan_result_to_json renders it: kept
 * when it is valid UTF-8 without control bytes or backslashes, else with
 * the backslash doubled and other bytes as \xNN. NULL on allocation
 * failure.
 */
json_t *scan_json_text(const char *s);

/* ---- scanning --------------------------------------------------------- */

struct scan_ctx;

/* A context for one thread; holds a reference to b. o may be NULL for the
 * defaults; bad thresholds (not 0 < notice <= warning <= alert <= 100) or
 * sizes give -EINVAL. */
int scan_ctx_new(struct scan_bundle *b, const struct scan_opts *o,
                 struct scan_ctx **out);
void scan_ctx_free(struct scan_ctx *c);
const struct scan_opts *scan_ctx_opts(const struct scan_ctx *c);
/* The read buffer grows to the largest file read (at most max_size) and
 * stays, so big files in a row cost no fresh pages; this frees it when it
 * is over 8 MiB. walk_run calls it at its end; call it after a batch. */
void scan_ctx_trim(struct scan_ctx *c);

/*
 * Scans an open file: fd must be a regular file (else -EINVAL); the
 * caller's stat st may be passed to save an fstat (NULL to fstat here).
 * Reads from offset 0 with pread, so fd's position is left as it was.
 * Returns 0 with r filled, or -errno when the file could not be read (r
 * then holds path and stat data). Either way r is initialised and must be
 * freed with scan_result_free.
 */
int scan_fd(struct scan_ctx *c, int fd, const char *path, const struct stat *st,
            struct scan_result *r);
/* Opens path (O_NOFOLLOW: a symlink is -ELOOP; non-blocking, so a FIFO
 * never hangs; O_NOATIME where allowed, so the access time stays as
 * evidence) and scans it if it is a regular file. */
int scan_file(struct scan_ctx *c, const char *path, struct scan_result *r);
/* Checks only the filename IOCs against path (no read): what is left to
 * do for a file that cannot be opened or is over max_size. st may be NULL;
 * when given, size and times are filled from it. Sets SCAN_RES_NOT_READ. */
int scan_path(struct scan_ctx *c, const char *path, const struct stat *st,
              struct scan_result *r);
/* Scans a buffer (vigil-scand's samples); name is the reported path. Only
 * the first max_size bytes are scanned (SCAN_RES_TRUNCATED). */
int scan_mem(struct scan_ctx *c, const uint8_t *p, size_t len, const char *name,
             struct scan_result *r);

/*
 * Scans the memory of process pid with the YARA rules; the filename IOCs
 * are checked against name (the executable's path, which is also the
 * reported path). libyara reads /proc/PID/maps and /proc/PID/mem after
 * attaching with ptrace, so the process is stopped while it is scanned,
 * and it takes root or CAP_SYS_PTRACE (and Yama's ptrace_scope) to be
 * permitted: -EPERM otherwise, -EIO when its memory could not be read.
 * r->exists and r->size are 0. Returns 0 with r filled, or -errno; r must
 * be freed with scan_result_free either way.
 */
int scan_proc(struct scan_ctx *c, int pid, const char *name,
              struct scan_result *r);

/* ---- walking ---------------------------------------------------------- */

struct walk_stats {
	uint64_t seen;    /* directory entries looked at */
	uint64_t dirs;    /* directories entered */
	uint64_t scanned; /* regular files scanned */
	uint64_t bytes;   /* bytes scanned */
	uint64_t matched; /* files with at least one finding */
	uint64_t findings;
	uint64_t excluded; /* by pattern */
	uint64_t too_big;  /* over max_size (path still checked) */
	uint64_t special;  /* symlinks, devices, FIFOs, sockets */
	uint64_t other_fs; /* mount points not entered */
	uint64_t errors;   /* per-file/dir failures (EACCES, ...) */
	double elapsed;    /* seconds */
};

/*
 * Exclusions are fnmatch(3) patterns (flags 0) matched against the full
 * path, where "*" also matches "/": "/var/cache", "*.iso" and "* /.git"
 * (without the space) do what they say. A matching directory is not
 * entered.
 */
struct walk_opts {
	const char *const *exclude;
	size_t nexclude;
	uint64_t max_size;    /* skip content over this; 0: the context's */
	int one_fs;           /* stay on each root's file system */
	int skip_remote;      /* do not enter NFS, CIFS/SMB, FUSE, ... */
	int max_depth;        /* directory depth; default 64 */
	int nice;             /* 0..19 added to the thread's nice value */
	int io_idle;          /* I/O priority class idle for the thread */
	double files_per_sec; /* 0: unlimited */
	double mb_per_sec;    /* MB = 10^6 bytes; 0: unlimited */
	int cpu_percent;      /* of one core, 1..100; 0: unlimited */
	int drop_cache;       /* POSIX_FADV_DONTNEED after each file */
	int report_all;       /* on_result for every file, not only hits */
	unsigned progress_ms; /* progress interval; default 1000 */
	/* Called at most every progress_ms and once at the end. */
	void (*progress)(const struct walk_stats *st, const char *path,
	                 void *arg);
	/* Files with findings (or all with report_all); r is valid during
	 * the call. A nonzero return stops the walk (-ECANCELED). */
	int (*on_result)(const struct scan_result *r, void *arg);
	/* Per-file/dir errors: what is "open", "read", "opendir", "yara",
	 * ...; err is an errno or, for "yara", a libyara code. */
	void (*on_error)(const char *path, const char *what, int err,
	                 void *arg);
	void *arg;
	const atomic_int *cancel; /* nonzero: stop soon (-ECANCELED) */
};

/*
 * Walks each path (a directory, or a single file; the roots themselves may
 * be symlinks, nothing below them is followed). nice and io_idle apply to
 * the calling thread and stay in effect afterwards (an unprivileged thread
 * cannot raise its priority back), so run scans in a thread of their own.
 * Returns 0, -ECANCELED when cancelled, or -EINVAL for bad options; per-file
 * problems are counted in st->errors and passed to on_error, never fatal.
 */
int walk_run(struct scan_ctx *c, const char *const *paths, size_t n,
             const struct walk_opts *o, struct walk_stats *st);

#endif
