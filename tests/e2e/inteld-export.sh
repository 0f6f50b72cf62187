#!/bin/bash
# vigil-inteld export: a feed of every indicator kind (tags, times, an
# expiry, a reference with a comma, a URL with a quote) exported as CSV and
# imported into a new feed gives the same entries (the second export is
# the first, byte for byte) and the same lookups; the STIX 2.1 export is a
# bundle of indicator objects that imports back with the same verdicts and
# scores; `vigilctl intel export` writes both; an unknown feed or format is
# refused. And delta imports: a MISP feed whose manifest changes (events
# added, changed, left out) and a STIX bundle with revoked objects in
# mode=delta change only what they name, with the counts in the report.
. "$(dirname "$0")/lib.sh"

INTELD=$BIN/vigil-inteld
DATA=$T/inteld
PKI=$T/pki
make_pki "$PKI"
command -v jq >/dev/null || skip "jq missing (scripts/install-deps installs it)"

ADMIN_KEY=admin-$RANDOM$RANDOM$RANDOM
LOOKUP_KEY=lookup-$RANDOM$RANDOM$RANDOM
h() { printf %s "$1" | sha256sum | cut -c1-64; }
cat >"$T/inteld.conf" <<EOC
[inteld]
data_dir = $DATA
map_size = 1G
log_level = debug
[https]
listen = 127.0.0.1
port = 0
cert = $PKI/server.crt
key = $PKI/server.key
[auth]
keys = ops:admin:$(h "$ADMIN_KEY") reader:lookup:$(h "$LOOKUP_KEY")
EOC
"$INTELD" -d -c "$T/inteld.conf" >>"$T/inteld.log" 2>&1 &
INTELD_PID=$!
PIDS+=("$INTELD_PID")
wait_for 10 "vigil-inteld listening" test -s "$DATA/vigil-inteld.ports"
P=$(jq -r .https "$DATA/vigil-inteld.ports")
U=https://127.0.0.1:$P/api/v1

req() {
	BODY=$(curl -sS --cacert "$PKI/ca.crt" -o - -w '\n%{http_code}' "$@") ||
		true
	CODE=${BODY##*$'\n'}
	BODY=${BODY%$'\n'*}
}
A=(-H "Authorization: Bearer $ADMIN_KEY")
L=(-H "X-API-Key: $LOOKUP_KEY")
add_feed() {
	req "${A[@]}" -X POST -d "{\"name\": \"$1\", \"priority\": $2}" "$U/feeds"
	[ "$CODE" = 201 ] || fail "add feed $1: $CODE $BODY"
}
# import FEED FORMAT FILE [query]: the report in $BODY, 200 expected.
import() {
	req "${A[@]}" -X POST --data-binary "@$3" \
		"$U/feeds/$1/import?format=$2${4:+&$4}"
	[ "$CODE" = 200 ] || fail "import $3 into $1: $CODE $BODY"
}
# answer QUERY: "verdict score decided_by" of a single lookup.
answer() {
	req "${L[@]}" "$U/lookup?$1"
	[ "$CODE" = 200 ] || fail "lookup $1: $CODE $BODY"
	jq -r '"\(.verdict) \(.score) \(.decided_by)"' <<<"$BODY"
}
expect_answer() {
	local got
	got=$(answer "$1")
	[ "$got" = "$2" ] || fail "lookup $1: expected '$2', got '$got': $BODY"
}

# 1. A feed of every kind, written as CSV.
FUTURE=$(($(date +%s) + 86400 * 30))
cat >"$T/src.csv" <<EOF2
indicator,type,verdict,score,tags,first_seen,last_seen,expires,reference
$(printf 'a%.0s' {1..64}),sha256,malicious,95,ransomware;lockbit,1700000000,1700000500,,"case 7, host 3"
$(printf 'b%.0s' {1..40}),,suspicious,60,,,,$FUTURE,
$(printf 'c%.0s' {1..32}),md5,benign,0,goodware,,,,vendor list
10.20.0.0/16,ip,malicious,80,scanner,1700000000,,,
2001:db8::/32,ip,suspicious,55,,,,,
198.51.100.7,,malicious,100,c2,,,,
evil.example,domain,malicious,90,phishing,,,,"says ""who"""
http://bad.example/a'b?x=1,url,malicious,70,,,,,
EOF2
add_feed src 50
import src csv "$T/src.csv"
[ "$(jq .indicators <<<"$BODY")" = 8 ] || fail "src import: $BODY"

# 2. CSV export -> import into a new feed: the same entries.
req "${L[@]}" -D "$T/h.txt" "$U/feeds/src/export?format=csv"
[ "$CODE" = 200 ] || fail "export csv: $CODE $BODY"
grep -qi '^content-type: text/csv' "$T/h.txt" || fail "export csv: $(cat "$T/h.txt")"
printf "%s" "$BODY" >"$T/export1.csv"
[ "$(head -1 "$T/export1.csv")" = "indicator,type,verdict,score,tags,first_seen,last_seen,expires,reference" ] ||
	fail "csv header: $(head -1 "$T/export1.csv")"
[ "$(wc -l <"$T/export1.csv")" = 9 ] || fail "csv export: $(cat "$T/export1.csv")"
expect_contains "$(cat "$T/export1.csv")" '"case 7, host 3"'
expect_contains "$(cat "$T/export1.csv")" "ransomware;lockbit,1700000000,1700000500,,"
add_feed copy 40
import copy csv "$T/export1.csv"
[ "$(jq -c '[.indicators, .rejected_total, .skipped_total]' <<<"$BODY")" = "[8,0,0]" ] ||
	fail "re-import of the export: $BODY"
req "${L[@]}" "$U/feeds/copy/export?format=csv"
printf "%s" "$BODY" >"$T/export2.csv"
cmp -s "$T/export1.csv" "$T/export2.csv" ||
	fail "export of the re-import differs: $(diff "$T/export1.csv" "$T/export2.csv")"
req "${A[@]}" -X DELETE "$U/feeds/src"
expect_answer "sha256=$(printf 'a%.0s' {1..64})" "malicious 95 copy"
expect_answer "ip=10.20.3.4" "malicious 80 copy"
expect_answer "domain=x.evil.example" "malicious 90 copy"
expect_answer "md5=$(printf 'c%.0s' {1..32})" "benign 0 copy"
expect_answer "url=HTTP://BAD.example:80/a'b?x=1" "malicious 70 copy"
req "${L[@]}" "$U/lookup?sha1=$(printf 'b%.0s' {1..40})"
[ "$(jq .sources[0].expires <<<"$BODY")" = "$FUTURE" ] || fail "expiry lost: $BODY"
pass "CSV export imports back as the same entries (export of the copy identical)"

# 3. STIX export: a bundle of indicators that imports back.
req "${L[@]}" -D "$T/h.txt" "$U/feeds/copy/export?format=stix"
[ "$CODE" = 200 ] || fail "export stix: $CODE $BODY"
printf "%s" "$BODY" >"$T/export.stix.json"
jq -e '.type == "bundle" and (.objects | length) == 8 and
	all(.objects[]; .type == "indicator" and .spec_version == "2.1" and
	    (.id | test("^indicator--[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")) and
	    .pattern_type == "stix" and (.created | test("Z$")) and (.modified | test("Z$")))' \
	"$T/export.stix.json" >/dev/null || fail "stix bundle: $BODY"
jq -e '[.objects[] | select(.name == "'"$(printf 'b%.0s' {1..40})"'")][0] |
	.pattern == "[file:hashes.'"'SHA-1'"' = '"'$(printf 'b%.0s' {1..40})'"']" and
	.valid_until != null and .indicator_types == ["anomalous-activity"] and .confidence == 60' \
	"$T/export.stix.json" >/dev/null || fail "stix sha1 object: $(jq -c '.objects[1]' "$T/export.stix.json")"
jq -e '[.objects[] | select(.name | startswith("http"))][0].pattern == "[url:value = '"'http://bad.example/a\\\\'b?x=1'"']"' \
	"$T/export.stix.json" >/dev/null || fail "stix url pattern: $(jq -c '[.objects[].pattern]' "$T/export.stix.json")"
add_feed fromstix 30
import fromstix stix "$T/export.stix.json"
[ "$(jq -c '[.indicators, .rejected_total, .skipped_total]' <<<"$BODY")" = "[8,0,0]" ] ||
	fail "re-import of the stix export: $BODY"
req "${A[@]}" -X DELETE "$U/feeds/copy"
expect_answer "sha256=$(printf 'a%.0s' {1..64})" "malicious 95 fromstix"
expect_answer "sha1=$(printf 'b%.0s' {1..40})" "suspicious 60 fromstix"
expect_answer "ip=2001:db8:1::9" "suspicious 55 fromstix"
expect_answer "domain=a.evil.example" "malicious 90 fromstix"
expect_answer "url=http://bad.example/a'b?x=1" "malicious 70 fromstix"
expect_answer "md5=$(printf 'c%.0s' {1..32})" "benign 0 fromstix"
pass "STIX 2.1 export: indicator objects with patterns, ids, times, valid_until; imports back"

# 4. vigilctl intel export, and refusals.
export VIGIL_INTEL_SERVER=https://127.0.0.1:$P VIGIL_API_KEY=$LOOKUP_KEY
"$BIN/vigilctl" --ca "$PKI/ca.crt" intel export fromstix --format csv -o "$T/ctl.csv" ||
	fail "vigilctl intel export -o"
[ "$(wc -l <"$T/ctl.csv")" = 9 ] || fail "vigilctl export: $(cat "$T/ctl.csv")"
"$BIN/vigilctl" --ca "$PKI/ca.crt" intel export fromstix --format stix >"$T/ctl.json" ||
	fail "vigilctl intel export to stdout"
jq -e '.objects | length == 8' "$T/ctl.json" >/dev/null || fail "vigilctl stix: $(head -c 300 "$T/ctl.json")"
if "$BIN/vigilctl" --ca "$PKI/ca.crt" intel export nosuch -o "$T/no.csv" 2>"$T/err"; then
	fail "export of a missing feed succeeded"
fi
[ ! -e "$T/no.csv" ] || fail "a failed export left its file"
expect_contains "$(cat "$T/err")" "no feed nosuch"
req "${L[@]}" "$U/feeds/fromstix/export?format=xml"
[ "$CODE" = 400 ] || fail "export format=xml: $CODE"
pass "vigilctl intel export (file and stdout); unknown feed 404, unknown format 400"

# 5. MISP delta: events by the manifest's timestamps.
# misp_event UUID TS VALUE...: one event file's JSON, one attribute each.
misp_event() {
	local uuid=$1 ts=$2 a="" v i=0
	shift 2
	for v in "$@"; do
		i=$((i + 1))
		a="$a${a:+,}{\"uuid\": \"$uuid-a$i\", \"type\": \"domain\", \"value\": \"$v\", \"to_ids\": true, \"timestamp\": \"$ts\"}"
	done
	echo "{\"Event\": {\"uuid\": \"$uuid\", \"info\": \"e2e\", \"threat_level_id\": \"1\", \"timestamp\": \"$ts\", \"Attribute\": [$a]}}"
}
EA=11111111-0000-4000-8000-00000000000a
EB=11111111-0000-4000-8000-00000000000b
EC=11111111-0000-4000-8000-00000000000c
ED=11111111-0000-4000-8000-00000000000d
cat >"$T/misp1.json" <<EOF2
{"manifest.json": {"$EA": {"timestamp": "1700000000", "info": "a"},
                   "$EB": {"timestamp": "1700000000", "info": "b"},
                   "$EC": {"timestamp": "1700000000", "info": "c"}},
 "$EA.json": $(misp_event $EA 1700000000 a1.misp.example a2.misp.example),
 "$EB.json": $(misp_event $EB 1700000000 b1.misp.example b2.misp.example),
 "$EC.json": $(misp_event $EC 1700000000 c1.misp.example)}
EOF2
add_feed misp 50
import misp misp "$T/misp1.json"
[ "$(jq -c '[.mode, .indicators, .events]' <<<"$BODY")" = '["delta",5,{"added":3,"changed":0,"unchanged":0,"removed":0}]' ] ||
	fail "first misp import: $BODY"
# A unchanged (and its file left out), B changed (b2 gone, b3 new), C left
# the manifest, D new.
cat >"$T/misp2.json" <<EOF2
{"manifest.json": {"$EA": {"timestamp": "1700000000", "info": "a"},
                   "$EB": {"timestamp": "1700000900", "info": "b"},
                   "$ED": {"timestamp": "1700000900", "info": "d"}},
 "$EB.json": $(misp_event $EB 1700000900 b1.misp.example b3.misp.example),
 "$ED.json": $(misp_event $ED 1700000900 d1.misp.example)}
EOF2
# a broken delta (D's file missing) changes nothing
jq "del(.\"$ED.json\")" "$T/misp2.json" >"$T/misp-broken.json"
req "${A[@]}" -X POST --data-binary "@$T/misp-broken.json" "$U/feeds/misp/import?format=misp"
[ "$CODE" = 422 ] || fail "broken misp delta: $CODE $BODY"
expect_answer "domain=c1.misp.example" "malicious 100 misp"
import misp misp "$T/misp2.json"
[ "$(jq -c '[.mode, .events, .added, .changed, .unchanged, .removed, .kept, .indicators]' <<<"$BODY")" = \
	'["delta",{"added":1,"changed":1,"unchanged":1,"removed":1},2,1,0,2,2,5]' ] ||
	fail "misp delta: $BODY"
expect_answer "domain=a1.misp.example" "malicious 100 misp"
expect_answer "domain=a2.misp.example" "malicious 100 misp"
expect_answer "domain=b1.misp.example" "malicious 100 misp"
expect_answer "domain=b3.misp.example" "malicious 100 misp"
expect_answer "domain=d1.misp.example" "malicious 100 misp"
expect_answer "domain=b2.misp.example" "unknown null null"
expect_answer "domain=c1.misp.example" "unknown null null"
# mode=full reads every event again: A's file is needed
req "${A[@]}" -X POST --data-binary "@$T/misp2.json" "$U/feeds/misp/import?format=misp&mode=full"
[ "$CODE" = 422 ] || fail "misp mode=full without A's file: $CODE $BODY"
expect_contains "$BODY" "lists event $EA"
pass "MISP delta: unchanged events kept (file not needed), changed replaced, gone removed, new added; a broken delta changes nothing"

# 6. STIX delta: revoked objects remove, the rest stays.
stix_ind() {
	echo "{\"type\": \"indicator\", \"spec_version\": \"2.1\", \"id\": \"indicator--$1\", \"created\": \"2026-01-01T00:00:00.000Z\", \"modified\": \"2026-01-02T00:00:00.000Z\", \"pattern\": \"[domain-name:value = '$2']\", \"pattern_type\": \"stix\", \"valid_from\": \"2026-01-01T00:00:00Z\"${3:+, \"revoked\": true}}"
}
I1=22222222-0000-4000-8000-000000000001
I2=22222222-0000-4000-8000-000000000002
I3=22222222-0000-4000-8000-000000000003
echo "{\"type\": \"bundle\", \"id\": \"bundle--$I1\", \"objects\": [$(stix_ind $I1 x1.stix.example), $(stix_ind $I2 x2.stix.example)]}" >"$T/stix1.json"
echo "{\"type\": \"bundle\", \"id\": \"bundle--$I2\", \"objects\": [$(stix_ind $I2 x2.stix.example revoked), $(stix_ind $I3 x3.stix.example)]}" >"$T/stix2.json"
add_feed stix 50
import stix stix "$T/stix1.json"
import stix stix "$T/stix2.json" "mode=delta"
[ "$(jq -c '[.mode, .added, .removed, .kept, .revoked, .indicators]' <<<"$BODY")" = '["delta",1,1,1,1,2]' ] ||
	fail "stix delta: $BODY"
expect_answer "domain=x1.stix.example" "malicious 100 stix"
expect_answer "domain=x2.stix.example" "unknown null null"
expect_answer "domain=x3.stix.example" "malicious 100 stix"
# without mode=delta the bundle is the whole set: x1 goes, the revoked is skipped
import stix stix "$T/stix2.json"
[ "$(jq -c '[.mode, .removed, .indicators, .skipped[0].why]' <<<"$BODY")" = '["full",1,1,"revoked"]' ] ||
	fail "stix full: $BODY"
expect_answer "domain=x1.stix.example" "unknown null null"
req "${A[@]}" -X POST --data-binary "@$T/src.csv" "$U/feeds/stix/import?format=csv&mode=delta"
[ "$CODE" = 400 ] || fail "csv mode=delta: $CODE $BODY"
pass "STIX delta: revoked objects removed, the rest kept; full mode replaces; CSV has no delta"

# A graceful stop exits 0 (in the sanitizer build: no leak, no error).
kill -TERM "${PIDS[-1]}"
wait "${PIDS[-1]}" || fail "vigil-inteld did not stop cleanly: $(tail -5 "$T/inteld.log")"
