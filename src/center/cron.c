/*
 * cron.c: the five-field cron syntax of recurring scans ("minute hour
 * day-of-month month day-of-week", UTC): '*', numbers, ranges a-b, lists
 * a,b and steps "*" + "/n" or a-b/n; day-of-week 0-7 (0 and 7 are Sunday). As
 * in Vixie cron, when both day fields are restricted a day matches if
 * either does. Also the usual shorthands @hourly, @daily, @weekly,
 * @monthly.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "center.h"

static int
cron_field(const char *s, size_t n, int lo, int hi, uint64_t *bits,
           struct buf *err, const char *what)
{
	char part[64];
	size_t i = 0;

	*bits = 0;
	while (i < n) {
		size_t j = i, plen;
		long long a, b, step = 1;
		char *slash, *dash;

		while (j < n && s[j] != ',')
			j++;
		plen = j - i;
		if (plen == 0 || plen >= sizeof(part))
			goto bad;
		memcpy(part, s + i, plen);
		part[plen] = '\0';
		if ((slash = strchr(part, '/')) != NULL) {
			*slash = '\0';
			if (str_to_ll(slash + 1, 1, hi - lo + 1, &step) == -1)
				goto bad;
		}
		if (strcmp(part, "*") == 0) {
			a = lo;
			b = hi;
		} else if ((dash = strchr(part, '-')) != NULL) {
			*dash = '\0';
			if (str_to_ll(part, lo, hi, &a) == -1 ||
			    str_to_ll(dash + 1, lo, hi, &b) == -1 || a > b)
				goto bad;
		} else {
			if (str_to_ll(part, lo, hi, &a) == -1)
				goto bad;
			b = slash ? hi : a;
		}
		for (; a <= b; a += step)
			*bits |= 1ULL << a;
		i = j + 1;
	}
	if (*bits == 0)
		goto bad;
	return 0;
bad:
	buf_printf(err,
	           "%s: '%.*s' is not a valid field (%d-%d, *, a-b, a,b, "
	           "*/n)",
	           what, (int)n, s, lo, hi);
	return -1;
}

int
cron_parse(const char *spec, struct cron *c, struct buf *err)
{
	static const char *const what[] = {"minute", "hour", "day of month",
	                                   "month", "day of week"};
	static const int lo[] = {0, 0, 1, 1, 0}, hi[] = {59, 23, 31, 12, 7};
	uint64_t *fields[5];
	const char *p = spec;
	int f;

	memset(c, 0, sizeof(*c));
	if (strcmp(spec, "@hourly") == 0)
		spec = p = "0 * * * *";
	else if (strcmp(spec, "@daily") == 0 || strcmp(spec, "@midnight") == 0)
		spec = p = "0 0 * * *";
	else if (strcmp(spec, "@weekly") == 0)
		spec = p = "0 0 * * 0";
	else if (strcmp(spec, "@monthly") == 0)
		spec = p = "0 0 1 * *";
	fields[0] = &c->min;
	fields[1] = &c->hour;
	fields[2] = &c->dom;
	fields[3] = &c->mon;
	fields[4] = &c->dow;
	for (f = 0; f < 5; f++) {
		const char *e;

		while (*p == ' ' || *p == '\t')
			p++;
		e = p;
		while (*e != '\0' && *e != ' ' && *e != '\t')
			e++;
		if (e == p) {
			buf_printf(
			    err,
			    "cron '%.64s': needs five fields: minute hour "
			    "day-of-month month day-of-week",
			    spec);
			return -1;
		}
		if (cron_field(p, (size_t)(e - p), lo[f], hi[f], fields[f], err,
		               what[f]) == -1)
			return -1;
		p = e;
	}
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p != '\0') {
		buf_printf(err, "cron '%.64s': more than five fields", spec);
		return -1;
	}
	if (c->dow & (1ULL << 7))
		c->dow |= 1ULL; /* 7 is Sunday too */
	c->dom_star = (c->dom == 0xfffffffeULL);
	c->dow_star = ((c->dow & 0x7f) == 0x7f);
	return 0;
}

int
cron_match(const struct cron *c, long long t)
{
	time_t tt = (time_t)t;
	struct tm tm;
	int dom, dow;

	gmtime_r(&tt, &tm);
	if (!(c->min & (1ULL << tm.tm_min)) ||
	    !(c->hour & (1ULL << tm.tm_hour)) ||
	    !(c->mon & (1ULL << (tm.tm_mon + 1))))
		return 0;
	dom = (c->dom & (1ULL << tm.tm_mday)) != 0;
	dow = (c->dow & (1ULL << tm.tm_wday)) != 0;
	if (c->dom_star || c->dow_star)
		return dom && dow;
	return dom || dow;
}
