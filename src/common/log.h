/*
 * log: the one logging module (after OpenBSD's log.c). In the foreground
 * messages go to stderr as text; as a daemon either to syslog or as JSON
 * lines ({"ts","level","prog","msg"}) on stderr, which the service manager
 * collects. Messages start with the function or subsystem name.
 */
#ifndef VIGIL_LOG_H
#define VIGIL_LOG_H

#include <stdarg.h>

enum log_level { LOG_LVL_WARN = 0, LOG_LVL_INFO = 1, LOG_LVL_DEBUG = 2 };
enum log_dest {
	LOG_DEST_STDERR = 0,
	LOG_DEST_SYSLOG,
	LOG_DEST_JSON,
	LOG_DEST_AUTO /* syslog when daemonized, else stderr */
};

/* prog: program name shown in every line (and the syslog ident). */
void log_init(const char *prog, enum log_dest dest, enum log_level level);
void log_setlevel(enum log_level level);
enum log_level log_getlevel(void);
/* Parses "warn", "info", "debug"; -1 on anything else. */
int log_parse_level(const char *s, enum log_level *out);
/* Parses "stderr", "syslog", "json", "auto"; -1 on anything else. */
int log_parse_dest(const char *s, enum log_dest *out);
/* What LOG_DEST_AUTO means for a daemon in the foreground or not; any
 * other destination is returned as it is (an explicit choice is kept in
 * the foreground too, as under systemd). */
enum log_dest log_dest_for(enum log_dest d, int foreground);

/* log_warn appends ": strerror(errno)"; the x variants do not. */
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void vlog(enum log_level level, int with_errno, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
/* fatal/fatalx: log at warn level and exit(1). For broken invariants use
 * fatalx("%s: ...", __func__). */
void fatal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

#endif
