/*
 * cookie.c: one cookie out of a Cookie header; see cookie.h.
 */
#include <string.h>

#include "cookie.h"

static int
cookie_octet(unsigned char c)
{
	return c == 0x21 || (c >= 0x23 && c <= 0x2b) ||
	       (c >= 0x2d && c <= 0x3a) || (c >= 0x3c && c <= 0x5b) ||
	       (c >= 0x5d && c <= 0x7e);
}

int
cookie_get(const char *hdr, size_t len, const char *name, char *out, size_t n)
{
	size_t nl = strlen(name), i = 0, s, e, k;

	if (hdr == NULL || n == 0 || nl == 0)
		return -1;
	while (i < len) {
		/* One pair: from i to the next ';' (or the end). */
		while (i < len && (hdr[i] == ' ' || hdr[i] == '\t'))
			i++;
		s = i;
		while (i < len && hdr[i] != ';')
			i++;
		e = i;
		if (i < len)
			i++; /* the ';' */
		if (e - s <= nl || memcmp(hdr + s, name, nl) != 0 ||
		    hdr[s + nl] != '=')
			continue;
		s += nl + 1;
		while (e > s && (hdr[e - 1] == ' ' || hdr[e - 1] == '\t'))
			e--;
		if (e - s >= 2 && hdr[s] == '"' && hdr[e - 1] == '"') {
			s++;
			e--;
		}
		if (e - s >= n)
			return -1;
		for (k = s; k < e; k++)
			if (!cookie_octet((unsigned char)hdr[k]))
				return -1;
		memcpy(out, hdr + s, e - s);
		out[e - s] = '\0';
		return (int)(e - s);
	}
	return -1;
}
