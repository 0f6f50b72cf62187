/*
 * config: INI files (parsed by inih) checked against one table of keys with
 * type, default and bounds. Unknown sections or keys, duplicates, bad values
 * and out-of-range numbers are errors reported as "file:line: message".
 * Every daemon's `-n` runs this and more.
 */
#ifndef VIGIL_CONFIG_H
#define VIGIL_CONFIG_H

#include <stddef.h>

#include "buf.h"

enum cfg_type {
	CFG_STR,      /* char *, malloc'd (NULL when no default) */
	CFG_INT,      /* long long, within [min, max] */
	CFG_BOOL,     /* int: yes/no/true/false/on/off/1/0 */
	CFG_DURATION, /* long long seconds (str_to_duration), [min, max] */
	CFG_SIZE,     /* long long bytes (str_to_size), [min, max] */
	CFG_ENUM,     /* int: index into choices ("a|b|c") */
};

struct cfg_key {
	const char *section; /* "" for keys before any [section] */
	const char *name;
	enum cfg_type type;
	const char *def; /* default as text, NULL = none (must be given if
	                    required) */
	long long min, max;
	size_t offset; /* where the value goes in the caller's struct */
	int required;
	const char *choices; /* CFG_ENUM: "stderr|syslog|json"; CFG_INT: a
	                        word read as -1 ("auto"), or NULL */
	const char *help;    /* one line, printed by --help-config */
};

/*
 * A table ends with an entry whose name is NULL ({0}). A numeric key with
 * min and max both 0 is unbounded (a duration is still at least 1s).
 *
 * Fills dst from defaults, then from the file. Returns 0, or -1 with every
 * problem found appended to err (one "file:line: message" per line).
 * On failure dst still needs cfg_free.
 */
int cfg_load_file(const struct cfg_key *table, void *dst, const char *path,
                  struct buf *err);
/* Same, from memory (name is used in messages). For tests and fuzzing. */
int cfg_load_mem(const struct cfg_key *table, void *dst, const char *name,
                 const char *text, size_t len, struct buf *err);
/* Frees the CFG_STR members. */
void cfg_free(const struct cfg_key *table, void *dst);
/* Writes a commented reference of the table (for docs and --help). */
void cfg_describe(const struct cfg_key *table, struct buf *out);

#endif
