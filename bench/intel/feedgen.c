/* Feed generator of bench/intel: N mixed indicators, one a line (the plain
 * list format), from a fixed seed, so every run imports the same feed.
 * Mix: 30 % SHA-256, 15 % MD5, 20 % IPv4, 5 % IPv6, 5 % CIDR ranges (IPv4
 * /16-/30, IPv6 /32-/64), 15 % domains, 10 % URLs.
 *
 * usage: feedgen N FEED QUERIES BATCH
 *   FEED     the list (N lines)
 *   QUERIES  query strings for single lookups (`indicator=...`, URL-encoded):
 *            up to 100,000, nine in ten taken from the feed, one in ten not
 *            in it (a miss answers "unknown")
 *   BATCH    a JSON array of 10,000 indicators for batch lookups: 9,000
 *            from the feed, the rest not in it
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t state;

static uint64_t
next(void)
{
	uint64_t z = (state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static char *
hex(char *p, int n)
{
	static const char d[] = "0123456789abcdef";
	uint64_t r = 0;

	for (int i = 0; i < n; i++) {
		if (i % 16 == 0)
			r = next();
		*p++ = d[r & 15];
		r >>= 4;
	}
	return p;
}

static char *
word(char *p, int min, int max)
{
	static const char a[] = "abcdefghijklmnopqrstuvwxyz0123456789";
	uint64_t r = next();
	int n = min + (int)(r % (uint64_t)(max - min + 1));

	r = next();
	for (int i = 0; i < n; i++) {
		*p++ = a[r % 36];
		r /= 36;
		if (r == 0)
			r = next();
	}
	return p;
}

static const char *const tlds[] = {"com", "net", "org", "info", "biz",
                                   "ru",  "cn",  "io",  "xyz",  "top"};

/* One indicator into buf (no newline); returns its length. */
static int
indicator(char *buf)
{
	char *p = buf;
	uint64_t r = next();
	unsigned kind = (unsigned)(r % 100);

	r >>= 8;
	if (kind < 30) {
		p = hex(p, 64);
	} else if (kind < 45) {
		p = hex(p, 32);
	} else if (kind < 65) {
		p +=
		    sprintf(p, "%u.%u.%u.%u", (unsigned)(1 + r % 223),
		            (unsigned)(r >> 8 & 255), (unsigned)(r >> 16 & 255),
		            (unsigned)(r >> 24 & 255));
	} else if (kind < 70) {
		uint64_t s = next();

		p += sprintf(
		    p, "2001:db8:%x:%x:%x:%x:%x:%x", (unsigned)(r & 0xffff),
		    (unsigned)(r >> 16 & 0xffff), (unsigned)(s & 0xffff),
		    (unsigned)(s >> 16 & 0xffff), (unsigned)(s >> 32 & 0xffff),
		    (unsigned)(s >> 48 & 0xffff));
	} else if (kind < 75) {
		if (r & 1) {
			unsigned len = 16 + (unsigned)(r >> 1 & 15) % 15;
			uint32_t a = (uint32_t)(next() >> 32) | 0x01000000u;

			a &= len ? ~0u << (32 - len) : 0;
			if ((a >> 24) == 0 || (a >> 24) >= 224)
				a = (a & 0x00ffffffu) | 0x0a000000u;
			p += sprintf(p, "%u.%u.%u.%u/%u", a >> 24,
			             a >> 16 & 255, a >> 8 & 255, a & 255, len);
		} else {
			unsigned len = 32 + (unsigned)(r >> 1 & 31) % 33;
			uint64_t s = next();

			if (len < 64)
				s &= ~0ULL << (64 - len);
			p += sprintf(p, "2001:%x:%x:%x::/%u",
			             (unsigned)(s >> 32 & 0xffff),
			             (unsigned)(s >> 16 & 0xffff),
			             (unsigned)(s & 0xffff), len);
		}
	} else if (kind < 90) {
		if (r & 1) {
			p = word(p, 3, 10);
			*p++ = '.';
		}
		p = word(p, 5, 14);
		p += sprintf(p, ".%s", tlds[(r >> 1) % 10]);
	} else {
		p += sprintf(p, "http%s://", (r & 1) ? "s" : "");
		p = word(p, 5, 12);
		p += sprintf(p, ".%s/", tlds[(r >> 1) % 10]);
		p = word(p, 3, 10);
		*p++ = '/';
		p = word(p, 4, 12);
		p += sprintf(p, ".php?id=%u", (unsigned)(r >> 8 & 0xffff));
	}
	*p = 0;
	return (int)(p - buf);
}

static void
urlenc(FILE *f, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_')
			fputc(c, f);
		else
			fprintf(f, "%%%02X", c);
	}
}

int
main(int argc, char **argv)
{
	char buf[256];
	long long n, every, q = 0;
	FILE *feed, *qf, *bf;
	int nb = 0;

	if (argc != 5 || (n = atoll(argv[1])) <= 0) {
		fprintf(stderr, "usage: feedgen N FEED QUERIES BATCH\n");
		return 2;
	}
	feed = fopen(argv[2], "w");
	qf = fopen(argv[3], "w");
	bf = fopen(argv[4], "w");
	if (!feed || !qf || !bf) {
		perror("feedgen");
		return 1;
	}
	static char fbuf[1 << 20];
	setvbuf(feed, fbuf, _IOFBF, sizeof(fbuf));
	every = n / 100000 > 0 ? n / 100000 : 1;
	state = 20261206;
	fputc('[', bf);
	for (long long i = 0; i < n; i++) {
		int len = indicator(buf);

		buf[len] = '\n';
		fwrite(buf, 1, (size_t)len + 1, feed);
		buf[len] = 0;
		if (i % every == 0 && q < 100000) {
			fputs("indicator=", qf);
			urlenc(qf, buf);
			fputc('\n', qf);
			q++;
			if (nb < 9000 && q % 10 != 0) {
				fprintf(bf, "%s\"%s\"", nb ? "," : "", buf);
				nb++;
			}
		}
	}
	/* misses: the same kinds, from another seed */
	state = 42;
	for (long long i = 0; i < q / 9 || nb < 10000; i++) {
		indicator(buf);
		if (i < q / 9) {
			fputs("indicator=", qf);
			urlenc(qf, buf);
			fputc('\n', qf);
		}
		if (nb < 10000) {
			fprintf(bf, "%s\"%s\"", nb ? "," : "", buf);
			nb++;
		}
	}
	fputs("]\n", bf);
	if (fclose(feed) || fclose(qf) || fclose(bf)) {
		perror("feedgen");
		return 1;
	}
	return 0;
}
