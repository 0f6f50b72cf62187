/*
 * config: loads an INI file into a caller's struct, driven by one table of
 * keys (struct cfg_key) that gives each key its type, default, bounds and
 * help text. The same table produces the reference printed by
 * --help-config (cfg_describe), so the documentation cannot drift from
 * what the parser accepts.
 *
 * inih does the INI syntax (sections, "name = value", comments). It only
 * reports the first syntax error and, as built by Debian, does not pass
 * line numbers to the handler, while an operator running `vigild -n` wants
 * every problem with its line. So inih is fed through a reader callback
 * that hands it exactly one line per call: the reader counts lines, checks
 * each one's syntax itself (reporting and blanking bad lines so inih never
 * sees them) and validates section headers; the handler then checks keys
 * and values with the reader's current line number.
 *
 * Every problem is appended to the caller's error buffer as
 * "file:line: message" and parsing continues, so one run shows them all.
 * Tables end with an entry whose name is NULL. A numeric key whose min and
 * max are both 0 is unbounded (within what its type allows).
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "buf.h"
#include "config.h"
#include "log.h"

/* Reading a config file larger than this is a mistake, not a config. */
#define CFG_MAX_FILE (1024 * 1024)
/* Past this many problems the rest are noise from one root cause. */
#define CFG_MAX_ERRORS 50

struct cfg_state {
	const struct cfg_key *table;
	size_t nkeys;
	void *dst;
	const char *name; /* file name for messages */
	struct buf *err;
	int nerrors;
	int *seen; /* per key: line where the file set it, 0 if not */

	/* reader position */
	const char *text;
	size_t len, off;
	int lineno;
	int section_known; /* the current section exists in the table */
};

/* Appends "file:line: message" (or "file: message" for line 0). */
static void cfg_error(struct cfg_state *st, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
cfg_error(struct cfg_state *st, int line, const char *fmt, ...)
{
	char *msg = NULL;
	va_list ap;

	st->nerrors++;
	if (st->err == NULL || st->nerrors > CFG_MAX_ERRORS + 1)
		return;
	if (st->nerrors == CFG_MAX_ERRORS + 1) {
		buf_printf(st->err, "%s: too many errors, giving up\n",
		           st->name);
		return;
	}
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) == -1)
		msg = NULL;
	va_end(ap);
	if (line > 0)
		buf_printf(st->err, "%s:%d: %s\n", st->name, line,
		           msg != NULL ? msg : fmt);
	else
		buf_printf(st->err, "%s: %s\n", st->name,
		           msg != NULL ? msg : fmt);
	free(msg);
}

static int
cfg_is_space(int c)
{
	/* The same set as isspace() in the C locale, which inih uses. */
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
	       c == '\f';
}

/*
 * inih's find_chars_or_comment: the first char of chars, or the start of an
 * inline comment (';' after whitespace), or the end of the string.
 */
static const char *
cfg_find(const char *s, const char *chars)
{
	int was_space = 0;

	while (*s != '\0' && (chars == NULL || strchr(chars, *s) == NULL) &&
	       !(was_space && *s == ';')) {
		was_space = cfg_is_space((unsigned char)*s);
		s++;
	}
	return s;
}

/* "[gateway] port" for messages; "port" for keys outside any section. */
static const char *
cfg_keyname(const char *section, const char *name, char *out, size_t outlen)
{
	if (section[0] != '\0')
		snprintf(out, outlen, "[%s] %s", section, name);
	else
		snprintf(out, outlen, "%s", name);
	return out;
}

static int
cfg_section_exists(const struct cfg_state *st, const char *section, size_t len)
{
	size_t i;

	for (i = 0; i < st->nkeys; i++)
		if (strlen(st->table[i].section) == len &&
		    memcmp(st->table[i].section, section, len) == 0)
			return 1;
	return 0;
}

/* Comma-separated list of what is allowed, for "unknown" messages. */
static void
cfg_list_sections(const struct cfg_state *st, struct buf *out)
{
	size_t i, j;

	for (i = 0; i < st->nkeys; i++) {
		if (st->table[i].section[0] == '\0')
			continue;
		for (j = 0; j < i; j++)
			if (strcmp(st->table[j].section,
			           st->table[i].section) == 0)
				break;
		if (j < i)
			continue;
		buf_printf(out, "%s[%s]", out->len > 0 ? ", " : "",
		           st->table[i].section);
	}
}

static void
cfg_list_keys(const struct cfg_state *st, const char *section, struct buf *out)
{
	size_t i;

	for (i = 0; i < st->nkeys; i++)
		if (strcmp(st->table[i].section, section) == 0)
			buf_printf(out, "%s%s", out->len > 0 ? ", " : "",
			           st->table[i].name);
}

/*
 * Checks one line the way inih will read it; returns 0 for a line inih may
 * see, -1 (after reporting) for one it must not. Also tracks whether the
 * current section is known so keys in an unknown one are not each reported.
 */
static int
cfg_check_line(struct cfg_state *st, const char *line)
{
	const char *end, *p;
	struct buf known;

	if (*line == '\0' || *line == ';' || *line == '#')
		return 0;
	if (*line == '[') {
		end = cfg_find(line + 1, "]");
		if (*end != ']') {
			cfg_error(st, st->lineno,
			          "section header without closing ']'");
			return -1;
		}
		for (p = end + 1; cfg_is_space((unsigned char)*p); p++)
			;
		if (*p != '\0' && *p != ';' && *p != '#') {
			cfg_error(st, st->lineno,
			          "unexpected text after section header");
			return -1;
		}
		st->section_known =
		    cfg_section_exists(st, line + 1, (size_t)(end - line - 1));
		if (!st->section_known) {
			buf_init(&known, 4096);
			cfg_list_sections(st, &known);
			cfg_error(st, st->lineno,
			          "unknown section [%.*s] (known: %s)",
			          (int)(end - line - 1), line + 1,
			          known.len > 0 ? buf_cstr(&known) : "none");
			buf_free(&known);
		}
		/* inih still sees the header so its section tracking follows
		 * ours; keys under it are not reported one by one. */
		return 0;
	}
	end = cfg_find(line, "=:");
	if (*end != '=' && *end != ':') {
		cfg_error(
		    st, st->lineno,
		    "expected \"name = value\", \"[section]\" or a comment");
		return -1;
	}
	if (end == line) {
		cfg_error(st, st->lineno, "missing key name before '%c'", *end);
		return -1;
	}
	return 0;
}

/*
 * ini_reader: hands inih one whole line per call (never more, so the line
 * count stays exact), with leading whitespace removed so inih never takes
 * an indented line for a continuation of the previous value. Lines that are
 * bad or too long for inih's buffer are reported and replaced by an empty
 * line.
 */
static char *
cfg_reader(char *str, int num, void *stream)
{
	struct cfg_state *st = stream;
	const char *line, *nl;
	size_t len, max;

	if (st->off >= st->len || num < 2)
		return NULL;
	line = st->text + st->off;
	nl = memchr(line, '\n', st->len - st->off);
	len = nl != NULL ? (size_t)(nl - line) : st->len - st->off;
	st->off += len + (nl != NULL ? 1 : 0);
	st->lineno++;
	str[0] = '\0';

	/* A UTF-8 byte order mark is harmless; drop it here, not in inih. */
	if (st->lineno == 1 && len >= 3 &&
	    memcmp(line, "\xEF\xBB\xBF", 3) == 0) {
		line += 3;
		len -= 3;
	}
	if (memchr(line, '\0', len) != NULL) {
		cfg_error(st, st->lineno, "line contains a NUL byte");
		return str;
	}
	while (len > 0 && cfg_is_space((unsigned char)line[0])) {
		line++;
		len--;
	}
	while (len > 0 && cfg_is_space((unsigned char)line[len - 1]))
		len--;
	/* inih needs room for "\r\n\0" beyond the longest line it reads. */
	max = num > 3 ? (size_t)num - 3 : 0;
	if (len > max) {
		cfg_error(st, st->lineno, "line too long (at most %zu bytes)",
		          max);
		return str;
	}
	memcpy(str, line, len);
	str[len] = '\0';
	if (cfg_check_line(st, str) == -1)
		str[0] = '\0';
	return str;
}

static void *
cfg_slot(const struct cfg_state *st, const struct cfg_key *k)
{
	return (char *)st->dst + k->offset;
}

/* Default bounds of the numeric types when the table gives none. */
static void
cfg_bounds(const struct cfg_key *k, long long *min, long long *max)
{
	if (k->min != 0 || k->max != 0) {
		*min = k->min;
		*max = k->max;
		return;
	}
	*min = k->type == CFG_INT ? LLONG_MIN : k->type == CFG_DURATION ? 1 : 0;
	*max = LLONG_MAX;
}

/* Renders seconds or bytes in the largest unit that divides them, the way
 * an operator would write them in the file: 3600 -> "1h", 65536 -> "64k". */
static const char *
cfg_fmt_scaled(const struct cfg_key *k, long long v, char *out, size_t len)
{
	static const char dunits[] = "wdhm";
	static const long long dmult[] = {604800, 86400, 3600, 60};
	static const char sunits[] = "TGMk";
	static const long long smult[] = {1LL << 40, 1LL << 30, 1LL << 20,
	                                  1LL << 10};
	const char *units = k->type == CFG_DURATION ? dunits : sunits;
	const long long *mult = k->type == CFG_DURATION ? dmult : smult;
	size_t i;

	if (k->type == CFG_DURATION || k->type == CFG_SIZE) {
		for (i = 0; i < 4; i++) {
			if (v != 0 && v % mult[i] == 0) {
				snprintf(out, len, "%lld%c", v / mult[i],
				         units[i]);
				return out;
			}
		}
		if (k->type == CFG_DURATION) {
			snprintf(out, len, "%llds", v);
			return out;
		}
	}
	snprintf(out, len, "%lld", v);
	return out;
}

static int
cfg_parse_bool(const char *v, int *out)
{
	static const char *const yes[] = {"yes", "true", "on", "1"};
	static const char *const no[] = {"no", "false", "off", "0"};
	size_t i;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strv_casceq(strv_cstr(v), yes[i])) {
			*out = 1;
			return 0;
		}
		if (strv_casceq(strv_cstr(v), no[i])) {
			*out = 0;
			return 0;
		}
	}
	return -1;
}

static int
cfg_parse_enum(const char *choices, const char *v, int *out)
{
	struct strv all = strv_cstr(choices);
	int i = 0;

	do {
		if (strv_eq(strv_split(&all, '|'), v)) {
			*out = i;
			return 0;
		}
		i++;
	} while (all.len > 0);
	return -1;
}

/*
 * Parses v for key k and stores it. On a bad value writes a message (the
 * part after "file:line: ") into msg and returns -1 with dst untouched.
 */
static int
cfg_set(struct cfg_state *st, const struct cfg_key *k, const char *v,
        struct buf *msg)
{
	long long n, min, max;
	int b;
	char lo[32], hi[32], got[32];
	char **sp;

	switch (k->type) {
	case CFG_STR:
		sp = cfg_slot(st, k);
		free(*sp);
		if ((*sp = strdup(v)) == NULL) {
			buf_printf(msg, "out of memory");
			return -1;
		}
		return 0;
	case CFG_BOOL:
		if (cfg_parse_bool(v, &b) == -1) {
			buf_printf(
			    msg,
			    "'%s' is not a boolean (use yes/no, true/false, "
			    "on/off or 1/0)",
			    v);
			return -1;
		}
		*(int *)cfg_slot(st, k) = b;
		return 0;
	case CFG_ENUM:
		if (k->choices == NULL)
			fatalx("%s: enum key %s has no choices", __func__,
			       k->name);
		if (cfg_parse_enum(k->choices, v, &b) == -1) {
			buf_printf(msg, "'%s' is not one of %s", v, k->choices);
			return -1;
		}
		*(int *)cfg_slot(st, k) = b;
		return 0;
	case CFG_INT:
		/* An integer key may name one word (its choices) that
		 * stands for -1, such as "auto": its reader decides. */
		if (k->choices != NULL && strcmp(v, k->choices) == 0) {
			*(long long *)cfg_slot(st, k) = -1;
			return 0;
		}
		if (str_to_ll(v, LLONG_MIN, LLONG_MAX, &n) == -1) {
			buf_printf(msg, "'%s' is not an integer%s", v,
			           errno == ERANGE ? " (too large)" : "");
			return -1;
		}
		break;
	case CFG_DURATION:
		/* 0 where the key allows it (min 0): "off" or "at once". */
		cfg_bounds(k, &min, &max);
		if (min == 0 && (strcmp(v, "0") == 0 || strcmp(v, "0s") == 0))
			n = 0;
		else if (str_to_duration(v, &n) == -1) {
			if (errno == ERANGE)
				buf_printf(
				    msg,
				    "'%s' is out of range (a duration is at "
				    "least 1s and fits in 64 bits)",
				    v);
			else
				buf_printf(
				    msg,
				    "'%s' is not a duration (a number of "
				    "seconds, or with a unit: 30s, 15m, 12h, "
				    "7d, 2w)",
				    v);
			return -1;
		}
		break;
	case CFG_SIZE:
		if (str_to_size(v, &n) == -1) {
			if (errno == ERANGE)
				buf_printf(msg, "'%s' is too large", v);
			else
				buf_printf(
				    msg,
				    "'%s' is not a size (a number of bytes, "
				    "or with a unit: 64k, 16M, 2G, 1T)",
				    v);
			return -1;
		}
		break;
	default:
		fatalx("%s: key %s has unknown type %d", __func__, k->name,
		       (int)k->type);
	}
	cfg_bounds(k, &min, &max);
	if (n < min || n > max) {
		buf_printf(msg, "%s is out of range %s..%s",
		           cfg_fmt_scaled(k, n, got, sizeof(got)),
		           cfg_fmt_scaled(k, min, lo, sizeof(lo)),
		           cfg_fmt_scaled(k, max, hi, sizeof(hi)));
		return -1;
	}
	*(long long *)cfg_slot(st, k) = n;
	return 0;
}

/* ini_handler: called by inih for every "name = value" it read. */
static int
cfg_handler(void *user, const char *section, const char *name,
            const char *value)
{
	struct cfg_state *st = user;
	const struct cfg_key *k = NULL;
	struct buf msg, known;
	char kn[256];
	size_t i;

	if (!st->section_known)
		return 1; /* the header was reported already */
	cfg_keyname(section, name, kn, sizeof(kn));
	for (i = 0; i < st->nkeys; i++) {
		if (strcmp(st->table[i].section, section) == 0 &&
		    strcmp(st->table[i].name, name) == 0) {
			k = &st->table[i];
			break;
		}
	}
	if (k == NULL) {
		buf_init(&known, 4096);
		cfg_list_keys(st, section, &known);
		if (known.len > 0)
			cfg_error(st, st->lineno,
			          "%s: unknown key (allowed here: %s)", kn,
			          buf_cstr(&known));
		else
			cfg_error(
			    st, st->lineno,
			    "%s: unknown key (keys belong in a [section])", kn);
		buf_free(&known);
		return 1;
	}
	if (st->seen[i] != 0) {
		cfg_error(st, st->lineno,
		          "%s: duplicate key (first set on "
		          "line %d)",
		          kn, st->seen[i]);
		return 1;
	}
	st->seen[i] = st->lineno;
	buf_init(&msg, 4096);
	if (cfg_set(st, k, value, &msg) == -1)
		cfg_error(st, st->lineno, "%s: %s", kn, buf_cstr(&msg));
	buf_free(&msg);
	/* Nonzero: the problem was reported here, inih need not record it. */
	return 1;
}

/* Zeroes every member, then applies the table's defaults. */
static void
cfg_defaults(struct cfg_state *st)
{
	const struct cfg_key *k;
	struct buf msg;
	size_t i;

	for (i = 0; i < st->nkeys; i++) {
		k = &st->table[i];
		switch (k->type) {
		case CFG_STR:
			*(char **)cfg_slot(st, k) = NULL;
			break;
		case CFG_BOOL:
		case CFG_ENUM:
			*(int *)cfg_slot(st, k) = 0;
			break;
		default:
			*(long long *)cfg_slot(st, k) = 0;
			break;
		}
	}
	buf_init(&msg, 4096);
	for (i = 0; i < st->nkeys; i++) {
		k = &st->table[i];
		if (k->def == NULL)
			continue;
		buf_reset(&msg);
		/* A default the table itself cannot parse is a bug. */
		if (cfg_set(st, k, k->def, &msg) == -1)
			fatalx("%s: default of [%s] %s: %s", __func__,
			       k->section, k->name, buf_cstr(&msg));
	}
	buf_free(&msg);
}

static size_t
cfg_count(const struct cfg_key *table)
{
	size_t n = 0;

	while (table[n].name != NULL)
		n++;
	return n;
}

int
cfg_load_mem(const struct cfg_key *table, void *dst, const char *name,
             const char *text, size_t len, struct buf *err)
{
	struct cfg_state st;
	char kn[256];
	size_t i;
	int rc;

	memset(&st, 0, sizeof(st));
	st.table = table;
	st.nkeys = cfg_count(table);
	st.dst = dst;
	st.name = name != NULL ? name : "(config)";
	st.err = err;
	st.text = text != NULL ? text : "";
	st.len = text != NULL ? len : 0;
	/* Keys before any [section] are checked (and reported) one by one. */
	st.section_known = 1;

	cfg_defaults(&st);
	if ((st.seen = calloc(st.nkeys + 1, sizeof(*st.seen))) == NULL) {
		cfg_error(&st, 0, "out of memory");
		goto fail;
	}
	rc = ini_parse_stream(cfg_reader, &st, cfg_handler, &st);
	if (rc == -2)
		cfg_error(&st, 0, "out of memory");
	/* Other nonzero results are lines cfg_reader already reported. */
	for (i = 0; i < st.nkeys; i++) {
		if (table[i].required && st.seen[i] == 0)
			cfg_error(&st, 0, "missing required key %s",
			          cfg_keyname(table[i].section, table[i].name,
			                      kn, sizeof(kn)));
	}
	if (st.nerrors > 0)
		goto fail;
	free(st.seen);
	return 0;
fail:
	free(st.seen);
	return -1;
}

int
cfg_load_file(const struct cfg_key *table, void *dst, const char *path,
              struct buf *err)
{
	struct buf text;
	FILE *fp = NULL;
	char chunk[8192];
	size_t n;
	int rc;

	buf_init(&text, CFG_MAX_FILE);
	if ((fp = fopen(path, "r")) == NULL) {
		if (err != NULL)
			buf_printf(err, "%s: %s\n", path, strerror(errno));
		goto fail;
	}
	while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0) {
		if (buf_append(&text, chunk, n) == -1) {
			if (err != NULL)
				buf_printf(err, "%s: %s\n", path,
				           errno == ENOBUFS
				               ? "file too large (over 1 MiB)"
				               : strerror(errno));
			goto fail;
		}
	}
	if (ferror(fp)) {
		if (err != NULL)
			buf_printf(err, "%s: read error\n", path);
		goto fail;
	}
	fclose(fp);
	rc = cfg_load_mem(table, dst, path, buf_cstr(&text), text.len, err);
	buf_free(&text);
	return rc;
fail:
	if (fp != NULL)
		fclose(fp);
	buf_free(&text);
	/* The caller still calls cfg_free: give it defaults to free. */
	cfg_load_mem(table, dst, path, "", 0, NULL);
	return -1;
}

void
cfg_free(const struct cfg_key *table, void *dst)
{
	char **sp;
	size_t i;

	for (i = 0; table[i].name != NULL; i++) {
		if (table[i].type != CFG_STR)
			continue;
		sp = (char **)((char *)dst + table[i].offset);
		free(*sp);
		*sp = NULL;
	}
}

static const char *
cfg_type_name(enum cfg_type t)
{
	switch (t) {
	case CFG_STR:
		return "string";
	case CFG_INT:
		return "integer";
	case CFG_BOOL:
		return "boolean (yes/no)";
	case CFG_DURATION:
		return "duration (90, 30s, 15m, 12h, 7d, 2w)";
	case CFG_SIZE:
		return "size (512, 64k, 16M, 2G)";
	case CFG_ENUM:
		return "one of";
	}
	return "?";
}

static void
cfg_describe_key(const struct cfg_key *k, struct buf *out)
{
	char lo[32], hi[32];

	if (k->help != NULL)
		buf_printf(out, "# %s\n", k->help);
	buf_printf(out, "# type: %s", cfg_type_name(k->type));
	if (k->type == CFG_ENUM && k->choices != NULL)
		buf_printf(out, " %s", k->choices);
	if (k->type == CFG_INT && k->choices != NULL)
		buf_printf(out, " or %s", k->choices);
	/* Unbounded keys (min = max = 0) have no range worth printing. */
	if ((k->type == CFG_INT || k->type == CFG_DURATION ||
	     k->type == CFG_SIZE) &&
	    (k->min != 0 || k->max != 0))
		buf_printf(out, ", range: %s..%s",
		           cfg_fmt_scaled(k, k->min, lo, sizeof(lo)),
		           cfg_fmt_scaled(k, k->max, hi, sizeof(hi)));
	if (k->def != NULL)
		buf_printf(out, ", default: %s", k->def);
	if (k->required)
		buf_printf(out, ", required");
	/* Commented out, so the reference is itself a valid file. */
	if (k->def != NULL)
		buf_printf(out, "\n#%s = %s\n\n", k->name, k->def);
	else
		buf_printf(out, "\n#%s =\n\n", k->name);
}

void
cfg_describe(const struct cfg_key *table, struct buf *out)
{
	size_t i, j, n = cfg_count(table);

	/* Keys outside any section must come before the first header. */
	for (i = 0; i < n; i++)
		if (table[i].section[0] == '\0')
			cfg_describe_key(&table[i], out);
	/* Then sections in order of first appearance, each with all its
	 * keys, even if the table interleaves them. */
	for (i = 0; i < n; i++) {
		if (table[i].section[0] == '\0')
			continue;
		for (j = 0; j < i; j++)
			if (strcmp(table[j].section, table[i].section) == 0)
				break;
		if (j < i)
			continue;
		buf_printf(out, "[%s]\n\n", table[i].section);
		for (j = i; j < n; j++)
			if (strcmp(table[j].section, table[i].section) == 0)
				cfg_describe_key(&table[j], out);
	}
}
