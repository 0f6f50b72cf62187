/*
 * syslogfmt: one event in, one syslog message out (formats in syslogfmt.h
 * and docs/forwarding.md). Every field that comes from an agent (host name,
 * task id, event data) is escaped the way its format's specification says,
 * so nothing an agent sends can add a field, end a message or forge a
 * header:
 *
 *   RFC 5424  header fields: PRINTUSASCII only (others become '_'), length
 *             capped; PARAM-VALUE: '"', '\' and ']' get a backslash (6.3.3).
 *   RFC 3164  HOSTNAME and TAG: no spaces or control characters.
 *   CEF       header: '\' and '|' get a backslash; extension values: '\'
 *             and '=' get a backslash, CR and LF become \r and \n.
 *   LEEF 2.0  header as CEF; attribute values: '\' gets a backslash, the
 *             delimiter (tab) becomes \t, CR and LF become \r and \n.
 *   JSON      jansson does it.
 *
 * CEF and LEEF ride behind an RFC 3164 header, as ArcSight and QRadar
 * expect; JSON behind an RFC 5424 header with no structured data, so the
 * receiver has a full timestamp and the event type as MSGID.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "syslogfmt.h"

static const char *const format_names[] = {"rfc5424", "rfc3164", "cef", "leef",
                                           "json"};

int
syslogfmt_format_parse(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(format_names) / sizeof(format_names[0]); i++)
		if (strcmp(name, format_names[i]) == 0)
			return (int)i;
	return -1;
}

const char *
syslogfmt_format_name(int format)
{
	if (format < 0 ||
	    (size_t)format >= sizeof(format_names) / sizeof(format_names[0]))
		return "?";
	return format_names[format];
}

int
syslogfmt_level_rank(const char *level)
{
	if (level == NULL || *level == '\0' || strcmp(level, "info") == 0)
		return 0;
	if (strcmp(level, "notice") == 0)
		return 1;
	if (strcmp(level, "warning") == 0)
		return 2;
	if (strcmp(level, "alert") == 0)
		return 3;
	return -1;
}

int
syslogfmt_severity(const char *level)
{
	static const int sev[] = {6, 5, 4, 1};
	int r = syslogfmt_level_rank(level);

	return r < 0 ? 6 : sev[r];
}

/* CEF severity 0..10 and LEEF sev 1..10 of a level. */
static int
sev10(const char *level)
{
	static const int sev[] = {3, 5, 7, 10};
	int r = syslogfmt_level_rank(level);

	return r < 0 ? 3 : sev[r];
}

/* An RFC 5424 header field: PRINTUSASCII, at most max bytes, "-" when
 * empty. RFC 3164 fields follow the same rule (no spaces). */
static int
put_field(struct buf *out, const char *s, size_t max)
{
	size_t i, n = 0;

	if (s == NULL || *s == '\0')
		return buf_putc(out, '-');
	for (i = 0; s[i] != '\0' && n < max; i++, n++) {
		unsigned char ch = (unsigned char)s[i];

		if (buf_putc(out, ch >= 33 && ch <= 126 ? ch : '_') == -1)
			return -1;
	}
	return 0;
}

/* Backslash before each byte in special; CR, LF and (when tab) TAB as \r,
 * \n, \t. */
static int
put_escaped(struct buf *out, const char *s, const char *special, int ctl)
{
	char stop[16];
	const char *p = s;

	/* Copy runs of ordinary bytes at once: this is the hot path. */
	snprintf(stop, sizeof(stop), "%s%s%s", special, ctl ? "\r\n" : "",
	         ctl > 1 ? "\t" : "");
	while (*p != '\0') {
		size_t n = strcspn(p, stop);
		int rc;

		if (n > 0 && buf_append(out, p, n) == -1)
			return -1;
		p += n;
		if (*p == '\0')
			break;
		if (*p == '\n')
			rc = buf_puts(out, "\\n");
		else if (*p == '\r')
			rc = buf_puts(out, "\\r");
		else if (*p == '\t')
			rc = buf_puts(out, "\\t");
		else
			rc = buf_printf(out, "\\%c", *p);
		if (rc == -1)
			return -1;
		p++;
	}
	return 0;
}

static const char *
host_of(const struct syslogfmt_opts *o, const struct syslogfmt_event *e)
{
	return e->hostname && *e->hostname ? e->hostname : o->center_host;
}

static int
pri(const struct syslogfmt_opts *o, const struct syslogfmt_event *e)
{
	int fac = o->facility >= 0 && o->facility <= 23 ? o->facility : 16;

	return fac * 8 + syslogfmt_severity(e->level);
}

static void
utc(long long t, struct tm *tm)
{
	time_t tt = (time_t)t;

	if (gmtime_r(&tt, tm) == NULL)
		memset(tm, 0, sizeof(*tm));
}

/* "<PRI>1 2026-11-23T16:00:48Z HOST vigil - MSGID " */
static int
header5424(const struct syslogfmt_opts *o, const struct syslogfmt_event *e,
           struct buf *out)
{
	struct tm tm;

	utc(e->time, &tm);
	if (buf_printf(out, "<%d>1 %04d-%02d-%02dT%02d:%02d:%02dZ ", pri(o, e),
	               tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	               tm.tm_min, tm.tm_sec) == -1 ||
	    put_field(out, host_of(o, e), 255) == -1 ||
	    buf_puts(out, " vigil - ") == -1 ||
	    put_field(out, e->type, 32) == -1)
		return -1;
	return buf_putc(out, ' ');
}

/* "<PRI>Nov 23 16:00:48 HOST " (RFC 3164 4.1.2: day space-padded). */
static int
header3164(const struct syslogfmt_opts *o, const struct syslogfmt_event *e,
           struct buf *out)
{
	static const char *const mon[] = {"Jan", "Feb", "Mar", "Apr",
	                                  "May", "Jun", "Jul", "Aug",
	                                  "Sep", "Oct", "Nov", "Dec"};
	struct tm tm;

	utc(e->time, &tm);
	if (buf_printf(out, "<%d>%s %2d %02d:%02d:%02d ", pri(o, e),
	               mon[tm.tm_mon % 12], tm.tm_mday, tm.tm_hour, tm.tm_min,
	               tm.tm_sec) == -1 ||
	    put_field(out, host_of(o, e), 255) == -1)
		return -1;
	return buf_putc(out, ' ');
}

static int
sd_param(struct buf *out, const char *name, const char *v)
{
	if (v == NULL || *v == '\0')
		return 0;
	if (buf_printf(out, " %s=\"", name) == -1 ||
	    put_escaped(out, v, "\"\\]", 0) == -1)
		return -1;
	return buf_putc(out, '"');
}

static int
fmt_5424(const struct syslogfmt_opts *o, const struct syslogfmt_event *e,
         struct buf *out)
{
	char seq[32];

	snprintf(seq, sizeof(seq), "%lld", e->seq);
	if (header5424(o, e, out) == -1 ||
	    buf_puts(out, "[" SYSLOGFMT_SDID) == -1 ||
	    sd_param(out, "agent", e->agent_id) == -1 ||
	    sd_param(out, "seq", seq) == -1 ||
	    sd_param(out, "level", e->level) == -1 ||
	    sd_param(out, "task", e->task_id) == -1 ||
	    buf_puts(out, "] ") == -1)
		return -1;
	return buf_puts(out, e->data ? e->data : "{}");
}

static int
fmt_3164(const struct syslogfmt_opts *o, const struct syslogfmt_event *e,
         struct buf *out)
{
	if (header3164(o, e, out) == -1 ||
	    buf_puts(out, "vigil: type=") == -1 ||
	    put_field(out, e->type, 32) == -1 ||
	    buf_puts(out, " agent=") == -1 ||
	    put_field(out, e->agent_id, 128) == -1 ||
	    buf_printf(out, " seq=%lld", e->seq) == -1)
		return -1;
	if (e->level && *e->level &&
	    (buf_puts(out, " level=") == -1 ||
	     put_field(out, e->level, 16) == -1))
		return -1;
	if (e->task_id && *e->task_id &&
	    (buf_puts(out, " task=") == -1 ||
	     put_field(out, e->task_id, 64) == -1))
		return -1;
	if (buf_putc(out, ' ') == -1)
		return -1;
	/* Stored data is compact JSON: no raw line breaks; escape anyway. */
	return put_escaped(out, e->data ? e->data : "{}", "", 1);
}

/* CEF extension "key=value" with the value escaped (CEF 0.1, "Character
 * encoding"). */
static int
cef_ext(struct buf *out, const char *key, const char *v, int *first)
{
	if (v == NULL || *v == '\0')
		return 0;
	if (buf_printf(out, "%s%s=", *first ? "" : " ", key) == -1)
		return -1;
	*first = 0;
	return put_escaped(out, v, "\\=", 1);
}

static int
fmt_cef(const struct syslogfmt_opts *o, const struct syslogfmt_event *e,
        struct buf *out)
{
	char rt[32], seq[32];
	int first = 1;

	snprintf(rt, sizeof(rt), "%lld000", e->time);
	snprintf(seq, sizeof(seq), "%lld", e->seq);
	if (header3164(o, e, out) == -1 ||
	    buf_puts(out, "CEF:0|Vigil|Vigil|") == -1 ||
	    put_escaped(out, o->version ? o->version : "0", "\\|", 1) == -1 ||
	    buf_putc(out, '|') == -1 ||
	    put_escaped(out, e->type ? e->type : "event", "\\|", 1) == -1 ||
	    buf_puts(out, "|Vigil ") == -1 ||
	    put_escaped(out, e->type ? e->type : "event", "\\|", 1) == -1 ||
	    buf_printf(out, "|%d|", sev10(e->level)) == -1)
		return -1;
	if (cef_ext(out, "rt", rt, &first) == -1 ||
	    cef_ext(out, "dvchost", host_of(o, e), &first) == -1 ||
	    cef_ext(out, "cs1Label", "agent", &first) == -1 ||
	    cef_ext(out, "cs1", e->agent_id, &first) == -1 ||
	    cef_ext(out, "cn1Label", "seq", &first) == -1 ||
	    cef_ext(out, "cn1", seq, &first) == -1)
		return -1;
	if (e->level && *e->level &&
	    (cef_ext(out, "cs2Label", "level", &first) == -1 ||
	     cef_ext(out, "cs2", e->level, &first) == -1))
		return -1;
	if (e->task_id && *e->task_id &&
	    (cef_ext(out, "cs3Label", "task", &first) == -1 ||
	     cef_ext(out, "cs3", e->task_id, &first) == -1))
		return -1;
	return cef_ext(out, "msg", e->data ? e->data : "{}", &first);
}

/* LEEF attribute: tab, then key=value with the value escaped. */
static int
leef_attr(struct buf *out, const char *key, const char *v)
{
	if (v == NULL || *v == '\0')
		return 0;
	if (buf_printf(out, "\t%s=", key) == -1)
		return -1;
	return put_escaped(out, v, "\\", 2);
}

static int
fmt_leef(const struct syslogfmt_opts *o, const struct syslogfmt_event *e,
         struct buf *out)
{
	char seq[32], sev[8];
	struct tm tm;

	utc(e->time, &tm);
	snprintf(seq, sizeof(seq), "%lld", e->seq);
	snprintf(sev, sizeof(sev), "%d", sev10(e->level));
	/* LEEF 2.0: the sixth header field names the attribute delimiter;
	 * x09 is a tab. The first attribute follows the last '|'. */
	if (header3164(o, e, out) == -1 ||
	    buf_puts(out, "LEEF:2.0|Vigil|Vigil|") == -1 ||
	    put_escaped(out, o->version ? o->version : "0", "\\|", 1) == -1 ||
	    buf_putc(out, '|') == -1 ||
	    put_escaped(out, e->type ? e->type : "event", "\\|", 1) == -1 ||
	    buf_puts(out, "|x09|") == -1)
		return -1;
	/* Attributes start right after the header: drop leef_attr's first
	 * tab by writing the first one by hand. */
	if (buf_printf(out, "devTime=%04d-%02d-%02dT%02d:%02d:%02dZ",
	               tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	               tm.tm_min, tm.tm_sec) == -1 ||
	    leef_attr(out, "devTimeFormat", "yyyy-MM-dd'T'HH:mm:ssX") == -1 ||
	    leef_attr(out, "sev", sev) == -1 ||
	    leef_attr(out, "cat", e->type) == -1 ||
	    leef_attr(out, "identHostName", host_of(o, e)) == -1 ||
	    leef_attr(out, "agent", e->agent_id) == -1 ||
	    leef_attr(out, "seq", seq) == -1 ||
	    leef_attr(out, "level", e->level) == -1 ||
	    leef_attr(out, "task", e->task_id) == -1 ||
	    leef_attr(out, "data", e->data ? e->data : "{}") == -1)
		return -1;
	return 0;
}

static int
fmt_json(const struct syslogfmt_opts *o, const struct syslogfmt_event *e,
         struct buf *out)
{
	json_t *obj, *data = NULL;
	char *s = NULL;
	int rc = -1;

	if (e->data != NULL)
		data = json_loads(e->data, JSON_REJECT_DUPLICATES, NULL);
	if (data == NULL)
		data = e->data ? json_string(e->data) : json_object();
	obj = json_pack("{s:I, s:s?, s:s?, s:I, s:s?, s:s?, s:s?, s:o}", "time",
	                (json_int_t)e->time, "host", host_of(o, e), "agent_id",
	                e->agent_id, "seq", (json_int_t)e->seq, "type", e->type,
	                "level", e->level, "task_id", e->task_id, "data",
	                data ? data : json_null());
	if (obj == NULL)
		return -1;
	if ((s = json_dumps(obj, JSON_COMPACT)) == NULL)
		goto fail;
	if (header5424(o, e, out) == -1 || buf_puts(out, "- ") == -1 ||
	    buf_puts(out, s) == -1)
		goto fail;
	rc = 0;
fail:
	free(s);
	json_decref(obj);
	return rc;
}

int
syslogfmt_format(const struct syslogfmt_opts *o,
                 const struct syslogfmt_event *e, struct buf *out)
{
	size_t start = out->len;
	int rc;

	switch (o->format) {
	case SYSLOGFMT_RFC5424:
		rc = fmt_5424(o, e, out);
		break;
	case SYSLOGFMT_RFC3164:
		rc = fmt_3164(o, e, out);
		break;
	case SYSLOGFMT_CEF:
		rc = fmt_cef(o, e, out);
		break;
	case SYSLOGFMT_LEEF:
		rc = fmt_leef(o, e, out);
		break;
	case SYSLOGFMT_JSON:
		rc = fmt_json(o, e, out);
		break;
	default:
		rc = -1;
	}
	if (rc == -1) {
		/* Leave out as it was: no half message. */
		buf_setlen(out, start);
	}
	return rc;
}

int
syslogfmt_frame(enum syslogfmt_framing f, const uint8_t *msg, size_t len,
                struct buf *out)
{
	size_t start = out->len, i;

	if (f == SYSLOGFMT_OCTET) {
		if (buf_printf(out, "%zu ", len) == -1 ||
		    buf_append(out, msg, len) == -1)
			goto fail;
		return 0;
	}
	if (buf_append(out, msg, len) == -1 || buf_putc(out, '\n') == -1)
		goto fail;
	for (i = start; i < start + len; i++)
		if (out->data[i] == '\n')
			out->data[i] = ' ';
	return 0;
fail:
	buf_setlen(out, start);
	return -1;
}
