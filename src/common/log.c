/*
 * log: the one logging module of every Vigil program (after OpenBSD's
 * log.c). A program calls log_init() once with its name, where messages go
 * and how verbose to be; everything else calls log_warn/log_warnx/log_info/
 * log_debug, or fatal/fatalx for a broken invariant.
 *
 * Three destinations:
 *   stderr  "prog: LEVEL: msg" lines, for the foreground and for vigilctl;
 *   syslog  openlog(prog) + syslog() with the matching priority;
 *   json    one {"ts","level","prog","msg"} object per line on stderr, for
 *           service managers that collect structured logs. jansson does the
 *           escaping, so a message holding quotes or control characters
 *           (peer-supplied names, paths) cannot break the line format.
 *
 * Logging never fails the caller: if formatting or allocation fails the
 * message is degraded (format string instead of text, text instead of JSON)
 * but something is still written. errno is preserved across every call so
 * log_warn() can sit between a failing call and code that inspects errno.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include <jansson.h>

#include "log.h"

/*
 * syslog keeps the ident pointer given to openlog(), so the program name is
 * copied into storage that lives as long as the process.
 */
static char log_prog[64] = "vigil";
static enum log_dest log_dest = LOG_DEST_STDERR;
static enum log_level log_level = LOG_LVL_INFO;

static const char *const level_names[] = {"warn", "info", "debug"};
static const char *const level_upper[] = {"WARN", "INFO", "DEBUG"};

void
log_init(const char *prog, enum log_dest dest, enum log_level level)
{
	const char *slash;

	if (prog != NULL) {
		/* argv[0] may be a path; only its last component is useful. */
		slash = strrchr(prog, '/');
		if (slash != NULL && slash[1] != '\0')
			prog = slash + 1;
		snprintf(log_prog, sizeof(log_prog), "%s", prog);
	}
	if (dest == LOG_DEST_AUTO) /* unresolved (log_dest_for): a terminal */
		dest = LOG_DEST_STDERR;
	if (log_dest == LOG_DEST_SYSLOG && dest != LOG_DEST_SYSLOG)
		closelog();
	log_dest = dest;
	log_setlevel(level);
	if (dest == LOG_DEST_SYSLOG)
		openlog(log_prog, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	tzset(); /* syslog and gmtime_r may need it after a chroot */
}

void
log_setlevel(enum log_level level)
{
	if (level < LOG_LVL_WARN)
		level = LOG_LVL_WARN;
	if (level > LOG_LVL_DEBUG)
		level = LOG_LVL_DEBUG;
	log_level = level;
}

enum log_level
log_getlevel(void)
{
	return log_level;
}

int
log_parse_level(const char *s, enum log_level *out)
{
	size_t i;

	if (s == NULL)
		return -1;
	for (i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

int
log_parse_dest(const char *s, enum log_dest *out)
{
	if (s == NULL)
		return -1;
	if (strcmp(s, "stderr") == 0)
		*out = LOG_DEST_STDERR;
	else if (strcmp(s, "syslog") == 0)
		*out = LOG_DEST_SYSLOG;
	else if (strcmp(s, "json") == 0)
		*out = LOG_DEST_JSON;
	else if (strcmp(s, "auto") == 0)
		*out = LOG_DEST_AUTO;
	else
		return -1;
	return 0;
}

enum log_dest
log_dest_for(enum log_dest d, int foreground)
{
	if (d != LOG_DEST_AUTO)
		return d;
	return foreground ? LOG_DEST_STDERR : LOG_DEST_SYSLOG;
}

/* RFC 3339 UTC with milliseconds: 2024-05-01T12:34:56.789Z */
static void
log_timestamp(char *out, size_t outlen)
{
	struct timespec ts;
	struct tm tm;
	char sec[32];
	unsigned int ms;

	if (clock_gettime(CLOCK_REALTIME, &ts) == -1 ||
	    gmtime_r(&ts.tv_sec, &tm) == NULL ||
	    strftime(sec, sizeof(sec), "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
		snprintf(out, outlen, "1970-01-01T00:00:00.000Z");
		return;
	}
	ms = (unsigned int)(ts.tv_nsec / 1000000L) % 1000;
	snprintf(out, outlen, "%s.%03uZ", sec, ms);
}

/*
 * Length of the valid UTF-8 sequence at s (n bytes left), or 0 if the bytes
 * there do not start one (overlong forms and surrogates included).
 */
static size_t
log_utf8_len(const unsigned char *s, size_t n)
{
	size_t len, i;
	unsigned int cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		cp = s[0] & 0x07;
	} else
		return 0;
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/*
 * jansson refuses strings that are not UTF-8. Messages can carry bytes a
 * peer sent, so rather than losing the line, each byte that does not
 * start a valid sequence is replaced with '?' and the conversion retried.
 */
static json_t *
log_json_string(const char *msg)
{
	json_t *s;
	unsigned char *copy;
	size_t i, n, len;

	if ((s = json_string(msg)) != NULL)
		return s;
	if ((copy = (unsigned char *)strdup(msg)) == NULL)
		return NULL;
	len = strlen(msg);
	for (i = 0; i < len; i += n) {
		if ((n = log_utf8_len(copy + i, len - i)) == 0) {
			copy[i] = '?';
			n = 1;
		}
	}
	s = json_string((const char *)copy);
	free(copy);
	return s;
}

static int
log_emit_json(enum log_level level, const char *msg)
{
	char ts[64];
	json_t *obj = NULL, *jmsg = NULL;
	char *line = NULL;
	int rc = -1;

	log_timestamp(ts, sizeof(ts));
	if ((jmsg = log_json_string(msg)) == NULL)
		goto fail;
	/* "o" steals the reference to jmsg, even when json_pack fails. */
	obj = json_pack("{s:s, s:s, s:s, s:o}", "ts", ts, "level",
	                level_names[level], "prog", log_prog, "msg", jmsg);
	jmsg = NULL;
	if (obj == NULL)
		goto fail;
	if ((line = json_dumps(obj, JSON_COMPACT)) == NULL)
		goto fail;
	/* One call per line keeps concurrent writers from interleaving. */
	fprintf(stderr, "%s\n", line);
	rc = 0;
fail:
	free(line);
	json_decref(obj);
	json_decref(jmsg);
	return rc;
}

static void
log_emit(enum log_level level, const char *msg)
{
	int prio;

	switch (log_dest) {
	case LOG_DEST_SYSLOG:
		prio = level == LOG_LVL_WARN   ? LOG_WARNING
		       : level == LOG_LVL_INFO ? LOG_INFO
		                               : LOG_DEBUG;
		/* One record per line: syslog receivers end a message at a
		 * newline or escape it, and each line should be found by a
		 * search on its own. */
		for (;;) {
			const char *nl = strchr(msg, '\n');
			int n = nl != NULL ? (int)(nl - msg) : (int)strlen(msg);

			if (n > 0)
				syslog(prio, "%.*s", n, msg);
			if (nl == NULL)
				return;
			msg = nl + 1;
		}
	case LOG_DEST_JSON:
		if (log_emit_json(level, msg) == 0)
			return;
		break; /* out of memory: plain text is better than nothing */
	case LOG_DEST_STDERR:
	case LOG_DEST_AUTO:
		break;
	}
	fprintf(stderr, "%s: %s: %s\n", log_prog, level_upper[level], msg);
}

void
vlog(enum log_level level, int with_errno, const char *fmt, va_list ap)
{
	int saved_errno = errno;
	char *msg = NULL, *full = NULL;

	if (level < LOG_LVL_WARN || level > LOG_LVL_DEBUG)
		level = LOG_LVL_WARN;
	if (level > log_level)
		goto out;
	if (vasprintf(&msg, fmt, ap) == -1) {
		msg = NULL;
		log_emit(level, fmt); /* better the format than nothing */
		goto out;
	}
	if (with_errno) {
		if (asprintf(&full, "%s: %s", msg, strerror(saved_errno)) ==
		    -1) {
			full = NULL;
			log_emit(level, msg);
			goto out;
		}
		log_emit(level, full);
	} else
		log_emit(level, msg);
out:
	free(full);
	free(msg);
	errno = saved_errno;
}

void
log_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_LVL_WARN, 1, fmt, ap);
	va_end(ap);
}

void
log_warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_LVL_WARN, 0, fmt, ap);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_LVL_INFO, 0, fmt, ap);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list ap;

	/* Checked here too so debug calls in hot paths cost no formatting. */
	if (log_level < LOG_LVL_DEBUG)
		return;
	va_start(ap, fmt);
	vlog(LOG_LVL_DEBUG, 0, fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_LVL_WARN, 1, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_LVL_WARN, 0, fmt, ap);
	va_end(ap);
	exit(1);
}
