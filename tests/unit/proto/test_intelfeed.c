/*
 * Unit tests of the feed parsers: what each format yields (kinds,
 * verdicts, scores, tags, times, references), what it rejects or skips
 * and with which reason, and which faults fail a file as a whole.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "intelfeed.h"

#define MAXR 32

static struct intel_rec got[MAXR];
static int ngot, nrej, nskip;
static char notes[MAXR][300];
static struct buf err;

static int
add(void *arg, const struct intel_rec *r)
{
	(void)arg;
	if (ngot < MAXR)
		got[ngot] = *r;
	ngot++;
	return 0;
}

static void
note(void *arg, int skipped, const char *where, const char *value,
     const char *why)
{
	(void)arg;
	if (nrej + nskip < MAXR)
		snprintf(notes[nrej + nskip], sizeof(notes[0]), "%s %s: %s: %s",
		         skipped ? "skip" : "reject", where,
		         value ? value : "-", why);
	if (skipped)
		nskip++;
	else
		nrej++;
}

static int
parse(enum intel_format f, const char *text)
{
	struct intel_feedopts o = {INTEL_MALICIOUS, -1, 0, ""};
	struct intel_sink s = {add, note, NULL};

	ngot = nrej = nskip = 0;
	buf_free(&err);
	buf_init(&err, 4096);
	return intelfeed_parse(f, (const uint8_t *)text, strlen(text), &o, &s,
	                       &err);
}

static void
test_list(void **state)
{
	(void)state;
	assert_int_equal(parse(INTEL_FMT_LIST,
	                       "# comment\n"
	                       "evil.example\r\n"
	                       "\n"
	                       "10.0.0.0/8\n"
	                       "not an indicator\n"
	                       "D41D8CD98F00B204E9800998ECF8427E"),
	                 0);
	assert_int_equal(ngot, 3);
	assert_int_equal(got[0].ind.kind, INTEL_DOMAIN);
	assert_int_equal(got[0].verdict, INTEL_MALICIOUS);
	assert_int_equal(got[0].score, 100);
	assert_int_equal(got[1].ind.kind, INTEL_IP);
	assert_string_equal(got[2].ind.text,
	                    "d41d8cd98f00b204e9800998ecf8427e");
	assert_int_equal(nrej, 1);
	assert_string_equal(notes[0], "reject line 5: not an indicator: not an "
	                              "indicator (no hash, address, range, "
	                              "domain or URL)");
}

static void
test_csv(void **state)
{
	(void)state;
	assert_int_equal(
	    parse(INTEL_FMT_CSV,
	          "type,indicator,verdict,score,tags,first_seen,expires,"
	          "reference,extra\n"
	          "domain,Bad.Example,suspicious,40,\"a;b,c\",2026-01-02,"
	          "2030-01-01T00:00:00Z,ref-1,x\n"
	          "sha256,abc,malicious,,,,,,\n"
	          "ip,192.0.2.1,evil,,,,,,\n"
	          "ip,192.0.2.2,,101,,,,,\n"
	          "ip,192.0.2.3,,,,yesterday,,,\n"
	          "ipv6,\"2001:db8::/32\",benign,,,,,,\n"
	          "\"url\",\"http://x.example/\"\"q\"\"\n"),
	    0);
	assert_int_equal(ngot, 2);
	assert_string_equal(got[0].ind.text, "bad.example");
	assert_int_equal(got[0].verdict, INTEL_SUSPICIOUS);
	assert_int_equal(got[0].score, 40);
	assert_string_equal(got[0].tags, "a,b,c");
	assert_int_equal(got[0].first_seen, 1767312000);
	assert_int_equal(got[0].expires, 1893456000);
	assert_string_equal(got[0].reference, "ref-1");
	assert_string_equal(got[1].ind.text, "2001:db8::/32");
	assert_int_equal(got[1].verdict, INTEL_BENIGN);
	assert_int_equal(got[1].score, 0);
	assert_int_equal(nskip, 1); /* the column "extra" */
	assert_int_equal(nrej, 5);
	assert_string_equal(notes[1], "reject line 3: abc: not a SHA-256 (64 "
	                              "hex digits)");
	assert_string_equal(notes[2], "reject line 4: evil: verdict: not "
	                              "malicious, suspicious or benign");
	assert_string_equal(notes[3],
	                    "reject line 5: 101: score: not a number 0..100");
	assert_string_equal(notes[4], "reject line 6: yesterday: first_seen: "
	                              "not a time (unix seconds or ISO 8601)");
	assert_string_equal(notes[5], "reject line 8: -: unterminated quoted "
	                              "field (truncated file?)");
	assert_int_equal(parse(INTEL_FMT_CSV, "type,value2\nip,1.2.3.4\n"), -1);
	assert_string_equal(buf_cstr(&err),
	                    "csv: line 1: the header names no indicator column "
	                    "(indicator, value or ioc)");
	assert_int_equal(parse(INTEL_FMT_CSV, ""), -1);
}

static const char misp_feed[] =
    "{\"manifest.json\": {\"e1\": {\"info\": \"x\"}},"
    " \"e1.json\": {\"Event\": {\"uuid\": \"e1\", \"threat_level_id\": \"1\","
    "  \"Tag\": [{\"name\": \"tlp:amber\"}],"
    "  \"Attribute\": ["
    "   {\"uuid\": \"a1\", \"type\": \"sha256\", \"to_ids\": true,"
    "    \"category\": \"Payload delivery\", \"timestamp\": \"1700000000\","
    "    \"value\": "
    "\"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\"},"
    "   {\"uuid\": \"a2\", \"type\": \"ip-dst\", \"to_ids\": false,"
    "    \"value\": \"192.0.2.9\"},"
    "   {\"uuid\": \"a3\", \"type\": \"domain|ip\", \"to_ids\": true,"
    "    \"value\": \"c2.example|198.51.100.7\"},"
    "   {\"uuid\": \"a4\", \"type\": \"comment\", \"to_ids\": true,"
    "    \"value\": \"hello\"},"
    "   {\"uuid\": \"a5\", \"type\": \"md5\", \"to_ids\": \"yes\","
    "    \"value\": \"d41d8cd98f00b204e9800998ecf8427e\"},"
    "   {\"uuid\": \"a6\", \"type\": \"url\", \"to_ids\": true,"
    "    \"value\": 42}],"
    "  \"Object\": [{\"Attribute\": [{\"uuid\": \"a7\", \"type\": "
    "\"filename|md5\", \"to_ids\": true, \"value\": "
    "\"x.exe|d41d8cd98f00b204e9800998ecf8427e\"}]}]}},"
    " \"stray.json\": {\"Event\": {}}}";

static void
test_misp(void **state)
{
	(void)state;
	assert_int_equal(parse(INTEL_FMT_MISP, misp_feed), 0);
	assert_int_equal(ngot, 4);
	assert_int_equal(got[0].ind.kind, INTEL_SHA256);
	assert_int_equal(got[0].score, 100);
	assert_string_equal(got[0].tags, "tlp:amber,Payload delivery");
	assert_int_equal(got[0].first_seen, 1700000000);
	assert_string_equal(got[0].reference, "misp:event/e1/attribute/a1");
	assert_string_equal(got[1].ind.text, "c2.example");
	assert_string_equal(got[2].ind.text, "198.51.100.7");
	assert_int_equal(got[3].ind.kind, INTEL_MD5);
	assert_int_equal(nrej, 2);
	assert_int_equal(nskip, 3);
	assert_string_equal(notes[0],
	                    "skip event e1 attribute a2: 192.0.2.9: to_ids is "
	                    "false");
	assert_string_equal(notes[1], "skip event e1 attribute a4: hello: "
	                              "attribute type comment not held");
	assert_string_equal(notes[2], "reject event e1 attribute a5: "
	                              "d41d8cd98f00b204e9800998ecf8427e: "
	                              "to_ids: not true or false");
	assert_string_equal(notes[3], "reject event e1 attribute a6: -: value: "
	                              "not a string");
	assert_string_equal(notes[4],
	                    "skip stray.json: -: not in the manifest");
	/* a feed copied in part */
	assert_int_equal(parse(INTEL_FMT_MISP,
	                       "{\"manifest.json\": {\"e1\": {}, \"e2\": {}},"
	                       " \"e1.json\": {\"Event\": {}}}"),
	                 -1);
	assert_string_equal(buf_cstr(&err),
	                    "misp: the manifest lists event e2 but e2.json is "
	                    "missing or not an object");
	assert_int_equal(ngot, 0);
	/* truncated */
	assert_int_equal(parse(INTEL_FMT_MISP, "{\"Event\": {\"uuid\": "), -1);
	assert_non_null(strstr(buf_cstr(&err), "misp: not valid JSON"));
}

static void
test_stix(void **state)
{
	(void)state;
	assert_int_equal(
	    parse(INTEL_FMT_STIX,
	          "{\"type\": \"bundle\", \"id\": \"bundle--1\", \"objects\": ["
	          " {\"type\": \"identity\", \"id\": \"identity--1\"},"
	          " {\"type\": \"indicator\", \"id\": \"indicator--1\","
	          "  \"pattern_type\": \"stix\", \"confidence\": 80,"
	          "  \"indicator_types\": [\"malicious-activity\"],"
	          "  \"valid_from\": \"2026-01-01T00:00:00.000Z\","
	          "  \"valid_until\": \"2027-01-01T00:00:00Z\","
	          "  \"pattern\": \"[file:hashes.'SHA-256' = "
	          "'E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B785"
	          "2B855"
	          "'] OR [domain-name:value = 'evil.example' OR url:value = "
	          "'http://evil.example/x']\"},"
	          " {\"type\": \"indicator\", \"id\": \"indicator--2\","
	          "  \"pattern_type\": \"stix\","
	          "  \"pattern\": \"[process:name = 'evil.exe']\"},"
	          " {\"type\": \"indicator\", \"id\": \"indicator--3\","
	          "  \"pattern_type\": \"stix\","
	          "  \"pattern\": \"[ipv4-addr:value = '10.0.0.1' AND "
	          "ipv4-addr:value = '10.0.0.2']\"},"
	          " {\"type\": \"indicator\", \"id\": \"indicator--4\","
	          "  \"pattern_type\": \"sigma\", \"pattern\": \"x\"},"
	          " {\"type\": \"indicator\", \"id\": \"indicator--5\","
	          "  \"pattern\": 7},"
	          " {\"type\": \"indicator\", \"id\": \"indicator--6\","
	          "  \"indicator_types\": [\"benign\"],"
	          "  \"pattern\": \"[ipv6-addr:value = '2001:db8::/48']\"},"
	          " {\"type\": \"indicator\", \"id\": \"indicator--7\","
	          "  \"pattern\": \"[ipv4-addr:value = '10.0.0.300']\"}"
	          "]}"),
	    0);
	assert_int_equal(ngot, 4);
	assert_int_equal(got[0].ind.kind, INTEL_SHA256);
	assert_int_equal(got[0].score, 80);
	assert_int_equal(got[0].first_seen, 1767225600);
	assert_int_equal(got[0].expires, 1798761600);
	assert_string_equal(got[0].reference, "stix:indicator--1");
	assert_string_equal(got[0].tags, "malicious-activity");
	assert_string_equal(got[1].ind.text, "evil.example");
	assert_string_equal(got[2].ind.text, "http://evil.example/x");
	assert_string_equal(got[3].ind.text, "2001:db8::/48");
	assert_int_equal(got[3].verdict, INTEL_BENIGN);
	assert_int_equal(nskip, 3);
	assert_int_equal(nrej, 2);
	assert_string_equal(notes[0],
	                    "skip objects[2] (indicator--2): [process:name = "
	                    "'evil.exe']: pattern not held: object path "
	                    "process:name is not a file hash, address, domain "
	                    "or URL");
	assert_non_null(strstr(notes[1], "AND / FOLLOWEDBY"));
	assert_string_equal(notes[2], "skip objects[4] (indicator--4): x: "
	                              "pattern_type sigma not held");
	assert_string_equal(notes[3], "reject objects[5] (indicator--5): -: "
	                              "pattern: not a string");
	assert_string_equal(notes[4], "reject objects[7] (indicator--7): "
	                              "10.0.0.300: not an IP address or CIDR "
	                              "range");
	assert_int_equal(parse(INTEL_FMT_STIX, "{\"type\": \"bundle\"}"), -1);
	assert_int_equal(parse(INTEL_FMT_STIX, "{\"type\": \"bundle\", "
	                                       "\"objects\": [{\"type\": "),
	                 -1);
}

/* What goes into the JSON report and answers is UTF-8, whatever the
 * file held. */
static void
test_utf8(void **state)
{
	(void)state;
	assert_int_equal(parse(INTEL_FMT_CSV, "indicator,tags,reference,x\xff\n"
	                                      "evil.example,a\xff"
	                                      "b;\xc3\xa4,r\xc3,\n"
	                                      "\xc3(,,,\n"),
	                 0);
	assert_int_equal(ngot, 1);
	assert_string_equal(got[0].tags, "a?b,\xc3\xa4");
	assert_string_equal(got[0].reference, "r?");
	assert_string_equal(notes[0], "skip line 1 column 4: x?: unknown "
	                              "column, ignored");
	assert_non_null(strstr(notes[1], "reject line 3: ?(: "));
	{
		/* overlong, surrogate (found by fuzz_intelfeed), valid */
		char a[] =
		    "\xf0\x86\x8f\x9a|\xed\xa0\x80|\xf0\x9f\x98\x80|\xe0\x80";

		intel_utf8_clean(a);
		assert_string_equal(a, "????|???|\xf0\x9f\x98\x80|??");
	}
}

static void
test_time(void **state)
{
	long long t;

	(void)state;
	assert_int_equal(intel_time_parse("1700000000", 10, &t), 0);
	assert_int_equal(t, 1700000000);
	assert_int_equal(intel_time_parse("2026-01-01T01:00:00+01:00", 25, &t),
	                 0);
	assert_int_equal(t, 1767225600);
	assert_int_equal(intel_time_parse("2026-13-01", 10, &t), -1);
	assert_int_equal(intel_time_parse("2026-01-01T", 11, &t), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_list), cmocka_unit_test(test_csv),
	    cmocka_unit_test(test_misp), cmocka_unit_test(test_stix),
	    cmocka_unit_test(test_utf8), cmocka_unit_test(test_time),
	};
	int rc;

	buf_init(&err, 4096);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	buf_free(&err);
	return rc;
}
