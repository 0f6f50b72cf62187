#!/bin/bash
# vigil-inteld end to end: real feeds written here in each format (CSV, a
# plain list, a MISP feed directory, a STIX 2.1 bundle), broken ones among
# them (bad JSON, wrong types, an unknown STIX pattern, a truncated file,
# lines that are no indicator): the report names each rejected entry and a
# broken import leaves the old set. Lookups of every kind (CIDR longest
# prefix, parent domains, normalised URLs), precedence (site lists over
# feeds, feed priority), expiry, batch lookups in order, roles (API keys and
# a client certificate), SIGHUP, graceful stop and restart; and lookups
# running while a large import replaces a feed never see half of it.
. "$(dirname "$0")/lib.sh"

INTELD=$BIN/vigil-inteld
DATA=$T/inteld
PKI=$T/pki
make_pki "$PKI"
command -v jq >/dev/null || skip "jq missing (scripts/install-deps installs it)"
command -v python3 >/dev/null ||
	skip "python3 missing (scripts/install-deps installs it)"

openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-subj /CN=center -keyout "$T/client.key" -out "$T/client.csr" 2>/dev/null
openssl x509 -req -in "$T/client.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" \
	-CAcreateserial -days 2 -out "$T/client.crt" 2>/dev/null

ADMIN_KEY=admin-$RANDOM$RANDOM$RANDOM
LOOKUP_KEY=lookup-$RANDOM$RANDOM$RANDOM
LATE_KEY=late-$RANDOM$RANDOM$RANDOM
h() { printf %s "$1" | sha256sum | cut -c1-64; }
echo "# keys of the test" >"$T/keys"
echo "reader:lookup:$(h "$LOOKUP_KEY")" >>"$T/keys"

write_inteld_conf() {
	cat >"$T/inteld.conf" <<EOC
[inteld]
data_dir = $DATA
map_size = 1G
max_batch = 1000
log_level = debug
$EXTRA
[server]
threads = 2
[https]
listen = 127.0.0.1
port = 0
cert = $PKI/server.crt
key = $PKI/server.key
client_ca = $PKI/ca.crt
[auth]
keys = ops:admin:$(h "$ADMIN_KEY")
keys_file = $T/keys
EOC
}

start_inteld() {
	local i
	rm -f "$DATA/vigil-inteld.ports"
	"$INTELD" -d -c "$T/inteld.conf" >>"$T/inteld.log" 2>&1 &
	INTELD_PID=$!
	PIDS+=("$INTELD_PID")
	for i in $(seq 1 100); do
		[ -s "$DATA/vigil-inteld.ports" ] && break
		kill -0 "$INTELD_PID" 2>/dev/null ||
			fail "vigil-inteld exited at start: $(tail -5 "$T/inteld.log")"
		sleep 0.1
	done
	[ -s "$DATA/vigil-inteld.ports" ] || fail "vigil-inteld did not start"
	P=$(jq -r .https "$DATA/vigil-inteld.ports")
	U=https://127.0.0.1:$P/api/v1
}

stop_inteld() {
	kill -TERM "$INTELD_PID"
	wait "$INTELD_PID" || fail "vigil-inteld did not stop cleanly"
}

# req curl-args...: status in $CODE, body in $BODY (TLS against the test CA).
req() {
	BODY=$(curl -sS --cacert "$PKI/ca.crt" -o - -w '\n%{http_code}' "$@") ||
		true
	CODE=${BODY##*$'\n'}
	BODY=${BODY%$'\n'*}
}
A=(-H "Authorization: Bearer $ADMIN_KEY")
L=(-H "X-API-Key: $LOOKUP_KEY")

# import FEED FORMAT FILE [query]: the report in $BODY, status in $CODE.
import() {
	req "${A[@]}" -X POST --data-binary "@$3" \
		"$U/feeds/$1/import?format=$2${4:+&$4}"
}
# verdict QUERY: "verdict decided_by" of a single lookup.
verdict() {
	req "${L[@]}" "$U/lookup?$1"
	[ "$CODE" = 200 ] || fail "lookup $1: $CODE $BODY"
	jq -r '"\(.verdict) \(.decided_by)"' <<<"$BODY"
}
expect_verdict() {
	local got
	got=$(verdict "$1")
	[ "$got" = "$2" ] || fail "lookup $1: expected '$2', got '$got': $BODY"
}
add_feed() {
	req "${A[@]}" -X POST -d "{\"name\": \"$1\", \"priority\": $2}" "$U/feeds"
	[ "$CODE" = 201 ] || [ "$CODE" = 200 ] || fail "add feed $1: $CODE $BODY"
}

# 0. -n names a bad key and accepts a good configuration.
EXTRA="" write_inteld_conf
echo "bad:root:$(h x)" >>"$T/keys"
if "$INTELD" -n -c "$T/inteld.conf" >"$T/check.out" 2>&1; then
	fail "vigil-inteld -n accepted a key with an unknown role"
fi
expect_contains "$(cat "$T/check.out")" "$T/keys: key bad: the role is lookup or admin"
sed -i '/^bad:/d' "$T/keys"
"$INTELD" -n -c "$T/inteld.conf" >"$T/check.out" 2>&1 ||
	fail "vigil-inteld -n: $(cat "$T/check.out")"
expect_contains "$(cat "$T/check.out")" "configuration OK (2 API keys)"
pass "-n: a bad key named, a good configuration OK"
start_inteld

# 1. Who may do what.
req "$U/lookup?ip=192.0.2.1"
[ "$CODE" = 401 ] || fail "no credentials: $CODE $BODY"
req -H "Authorization: Bearer wrong" "$U/lookup?ip=192.0.2.1"
[ "$CODE" = 401 ] || fail "wrong key: $CODE $BODY"
req "${L[@]}" -X POST -d '{"name": "x"}' "$U/feeds"
[ "$CODE" = 403 ] || fail "lookup key adding a feed: $CODE $BODY"
req --cert "$T/client.crt" --key "$T/client.key" "$U/lookup?ip=192.0.2.1"
[ "$CODE" = 200 ] || fail "client certificate lookup: $CODE $BODY"
[ "$(jq -r .verdict <<<"$BODY")" = unknown ] || fail "empty store: $BODY"
req --cert "$T/client.crt" --key "$T/client.key" -X POST \
	--data-binary 'x.example' "$U/feeds/x/import?format=list"
[ "$CODE" = 403 ] || fail "client certificate importing: $CODE $BODY"
req "$U/health"
[ "$CODE" = 200 ] || fail "health: $CODE"
pass "roles: 401 without or with a wrong key, 403 for lookup-only, cert looks up"

add_feed csvfeed 10
add_feed listfeed 20
add_feed mispfeed 30
add_feed stixfeed 40

# 2. CSV with a header; broken lines named in the report.
NOW=$(date +%s)
SHA_A=$(printf a | sha256sum | cut -c1-64)
MD5_B=$(printf b | md5sum | cut -c1-32)
SHA1_C=$(printf c | sha1sum | cut -c1-40)
cat >"$T/feed.csv" <<EOF
indicator,type,verdict,score,tags,expires,reference
$SHA_A,sha256,malicious,90,"ransomware;loader",,case-1
$MD5_B,md5,suspicious,60,,,
$SHA1_C,,malicious,,,,
10.0.0.0/8,ip,malicious,70,,,
10.1.0.0/16,ip,benign,0,,,
2001:db8::/32,ip,suspicious,50,,,
Evil.Example.,domain,malicious,80,,,
HTTP://Bad.Example:80/a/./b/../c?q=1,url,malicious,,,,
old.example,domain,malicious,,,$((NOW - 3600)),
soon.example,domain,malicious,,,$((NOW + 3600)),
not-a-hash,sha256,malicious,,,,
192.0.2.1,ip,evil,,,,
192.0.2.2,ip,malicious,500,,,
"unterminated.example,domain,malicious,,,,
EOF
import csvfeed csv "$T/feed.csv"
[ "$CODE" = 200 ] || fail "csv import: $CODE $BODY"
[ "$(jq -r .result <<<"$BODY")" = imported ] || fail "csv result: $BODY"
[ "$(jq .indicators <<<"$BODY")" = 10 ] || fail "csv count: $BODY"
[ "$(jq .rejected_total <<<"$BODY")" = 4 ] || fail "csv rejected: $BODY"
[ "$(jq -r '.rejected[] | "\(.where): \(.why)"' <<<"$BODY")" = "line 12: not a SHA-256 (64 hex digits)
line 13: verdict: not malicious, suspicious or benign
line 14: score: not a number 0..100
line 15: unterminated quoted field (truncated file?)" ] || fail "csv report: $BODY"
pass "csv: 10 indicators, each broken line named with its reason"

# 3. Lookups of each kind, CIDR longest prefix, parent domains, URLs.
expect_verdict "sha256=$(tr a-f A-F <<<"$SHA_A")" "malicious csvfeed"
req "${L[@]}" "$U/lookup?sha256=$SHA_A"
[ "$(jq -r '.sources[0].tags | join(",")' <<<"$BODY")" = "ransomware,loader" ] ||
	fail "tags: $BODY"
[ "$(jq -r '.sources[0].reference' <<<"$BODY")" = case-1 ] || fail "ref: $BODY"
[ "$(jq .score <<<"$BODY")" = 90 ] || fail "score: $BODY"
expect_verdict "md5=$MD5_B" "suspicious csvfeed"
expect_verdict "sha1=$SHA1_C" "malicious csvfeed"
expect_verdict "ip=10.200.1.1" "malicious csvfeed"
expect_verdict "ip=10.1.2.3" "benign csvfeed"
req "${L[@]}" "$U/lookup?ip=10.1.2.3"
[ "$(jq -r '[.sources[].matched] | join(" ")' <<<"$BODY")" = "10.1.0.0/16 10.0.0.0/8" ] ||
	fail "longest prefix first: $BODY"
expect_verdict "ip=10.1.0.0/20" "benign csvfeed"
expect_verdict "ip=11.0.0.1" "unknown null"
expect_verdict "ip=2001:db8:1::5" "suspicious csvfeed"
expect_verdict "ip=::ffff:10.9.9.9" "malicious csvfeed"
expect_verdict "domain=a.b.EVIL.example" "malicious csvfeed"
expect_verdict "domain=evil.example." "malicious csvfeed"
expect_verdict "domain=notevil.example" "unknown null"
expect_verdict "url=http%3A%2F%2Fbad.example%2Fa%2Fc%3Fq%3D1" "malicious csvfeed"
expect_verdict "url=http%3A%2F%2Fbad.example%2Fa%2Fc" "unknown null"
expect_verdict "domain=old.example" "unknown null"
expect_verdict "domain=soon.example" "malicious csvfeed"
req "${L[@]}" "$U/lookup?sha256=xyz"
[ "$CODE" = 400 ] || fail "bad hash lookup: $CODE"
expect_contains "$BODY" "not a SHA-256"
pass "lookups: hashes, CIDR longest prefix, IPv6, parent domains, URLs, expiry"

# 4. A plain list; a line that is no indicator.
printf '# list\nc2.evil.example\n198.51.100.0/24\nthis is not one\n\n%s\n' \
	"$SHA_A" >"$T/feed.txt"
import listfeed list "$T/feed.txt" "verdict=suspicious&score=40&tags=from-list"
[ "$CODE" = 200 ] || fail "list import: $CODE $BODY"
[ "$(jq .indicators <<<"$BODY")" = 3 ] || fail "list count: $BODY"
[ "$(jq -r '.rejected[0] | "\(.where) \(.value)"' <<<"$BODY")" = \
	"line 4 this is not one" ] || fail "list report: $BODY"
# the deeper entry (c2.evil.example) wins over its parent of another feed
expect_verdict "domain=x.c2.evil.example" "suspicious listfeed"
# same hash in two feeds: higher priority (listfeed 20) wins over csvfeed 10
expect_verdict "sha256=$SHA_A" "suspicious listfeed"
req "${L[@]}" "$U/lookup?sha256=$SHA_A"
[ "$(jq '.sources | length' <<<"$BODY")" = 2 ] || fail "both sources: $BODY"
add_feed csvfeed 25
expect_verdict "sha256=$SHA_A" "malicious csvfeed"
# a change names only what changes; the rest stays
req "${A[@]}" -X POST -d '{"name": "csvfeed", "description": "from csv"}' "$U/feeds"
[ "$CODE" = 200 ] || fail "feed change: $CODE $BODY"
req "${L[@]}" "$U/feeds/csvfeed"
[ "$(jq -r '"\(.priority) \(.description) \(.indicators) \(.format)"' <<<"$BODY")" = \
	"25 from csv 10 csv" ] || fail "feed after change: $BODY"
pass "list: imported with defaults; precedence by specificity, then priority"

# 5. A MISP feed directory (manifest.json + one file per event).
mkdir -p "$T/misp"
cat >"$T/misp/manifest.json" <<'EOF'
{"5f6e7d8c-0000-4000-8000-000000000001": {"info": "campaign", "threat_level_id": "1"}}
EOF
cat >"$T/misp/5f6e7d8c-0000-4000-8000-000000000001.json" <<EOF
{"Event": {"uuid": "5f6e7d8c-0000-4000-8000-000000000001", "info": "campaign",
 "threat_level_id": "1", "Tag": [{"name": "tlp:green"}],
 "Attribute": [
  {"uuid": "a-1", "type": "md5", "category": "Payload delivery",
   "to_ids": true, "value": "$(printf m | md5sum | cut -c1-32)"},
  {"uuid": "a-2", "type": "ip-dst", "to_ids": false, "value": "203.0.113.5"},
  {"uuid": "a-3", "type": "domain|ip", "to_ids": true,
   "value": "misp.example|203.0.113.9"},
  {"uuid": "a-4", "type": "url", "to_ids": true, "value": 17},
  {"uuid": "a-5", "type": "sha256", "to_ids": "yes", "value": "$SHA_A"},
  {"uuid": "a-6", "type": "text", "to_ids": true, "value": "note"}],
 "Object": [{"name": "file", "Attribute": [
  {"uuid": "a-7", "type": "sha1", "to_ids": true,
   "value": "$(printf o | sha1sum | cut -c1-40)"}]}]}}
EOF
misp_body() {
	python3 - "$1" >"$2" <<'EOF'
import json, os, sys
d = sys.argv[1]
out = {}
for f in sorted(os.listdir(d)):
    with open(os.path.join(d, f)) as fh:
        out[f] = json.load(fh)
print(json.dumps(out))
EOF
}
misp_body "$T/misp" "$T/misp.json"
import mispfeed misp "$T/misp.json"
[ "$CODE" = 200 ] || fail "misp import: $CODE $BODY"
[ "$(jq .indicators <<<"$BODY")" = 4 ] || fail "misp count: $BODY"
[ "$(jq -r '[.rejected[] | "\(.where): \(.why)"] | join("; ")' <<<"$BODY")" = \
	"event 5f6e7d8c-0000-4000-8000-000000000001 attribute a-4: value: not a string; event 5f6e7d8c-0000-4000-8000-000000000001 attribute a-5: to_ids: not true or false" ] ||
	fail "misp rejected: $BODY"
[ "$(jq -r '[.skipped[] | .why] | join("; ")' <<<"$BODY")" = \
	"to_ids is false; attribute type text not held" ] || fail "misp skipped: $BODY"
expect_verdict "md5=$(printf m | md5sum | cut -c1-32)" "malicious mispfeed"
expect_verdict "ip=203.0.113.9" "malicious mispfeed"
expect_verdict "ip=203.0.113.5" "unknown null"
expect_verdict "domain=www.misp.example" "malicious mispfeed"
expect_verdict "sha1=$(printf o | sha1sum | cut -c1-40)" "malicious mispfeed"
req "${L[@]}" "$U/lookup?domain=misp.example"
[ "$(jq -r '.sources[0].reference' <<<"$BODY")" = \
	"misp:event/5f6e7d8c-0000-4000-8000-000000000001/attribute/a-3" ] ||
	fail "misp reference: $BODY"
pass "misp: attributes mapped by type, to_ids honoured, wrong types named"

# A truncated MISP feed (an event file cut short): nothing replaced.
head -c 200 "$T/misp/5f6e7d8c-0000-4000-8000-000000000001.json" >"$T/cut.json"
import mispfeed misp "$T/cut.json"
[ "$CODE" = 422 ] || fail "truncated misp: $CODE $BODY"
expect_contains "$(jq -r .error <<<"$BODY")" "misp: not valid JSON"
# a feed directory missing an event the manifest lists
mkdir "$T/misp2"
cp "$T/misp/manifest.json" "$T/misp2/"
misp_body "$T/misp2" "$T/misp2.json"
import mispfeed misp "$T/misp2.json"
[ "$CODE" = 422 ] || fail "misp missing event: $CODE $BODY"
expect_contains "$(jq -r .error <<<"$BODY")" \
	"the manifest lists event 5f6e7d8c-0000-4000-8000-000000000001 but"
expect_verdict "ip=203.0.113.9" "malicious mispfeed"
pass "misp: a truncated file and a missing event fail whole, old set kept"

# 6. A STIX 2.1 bundle; unknown patterns reported as skipped.
cat >"$T/bundle.json" <<EOF
{"type": "bundle", "id": "bundle--0001", "objects": [
 {"type": "identity", "spec_version": "2.1", "id": "identity--0001", "name": "x"},
 {"type": "indicator", "spec_version": "2.1", "id": "indicator--0001",
  "pattern_type": "stix", "valid_from": "2026-01-01T00:00:00Z", "confidence": 85,
  "pattern": "[file:hashes.'SHA-256' = '$(printf s | sha256sum | cut -c1-64)'] OR [url:value = 'https://stix.example:443/x/../dl']"},
 {"type": "indicator", "spec_version": "2.1", "id": "indicator--0002",
  "pattern_type": "stix", "valid_from": "2026-01-01T00:00:00Z",
  "pattern": "[ipv6-addr:value = '2001:db8:5::/48'] OR [domain-name:value = 'stix.example']"},
 {"type": "indicator", "spec_version": "2.1", "id": "indicator--0003",
  "pattern_type": "stix", "valid_from": "2026-01-01T00:00:00Z",
  "pattern": "[process:command_line = 'evil.exe -x']"},
 {"type": "indicator", "spec_version": "2.1", "id": "indicator--0004",
  "pattern_type": "stix", "valid_from": "2026-01-01T00:00:00Z",
  "pattern": ["not", "a", "string"]},
 {"type": "indicator", "spec_version": "2.1", "id": "indicator--0005",
  "pattern_type": "stix", "valid_from": "2026-01-01T00:00:00Z",
  "pattern": "[ipv4-addr:value = '999.1.1.1']"}
]}
EOF
import stixfeed stix "$T/bundle.json"
[ "$CODE" = 200 ] || fail "stix import: $CODE $BODY"
[ "$(jq .indicators <<<"$BODY")" = 4 ] || fail "stix count: $BODY"
[ "$(jq -r '.skipped[0].where' <<<"$BODY")" = "objects[3] (indicator--0003)" ] ||
	fail "stix skipped: $BODY"
expect_contains "$(jq -r '.skipped[0].why' <<<"$BODY")" \
	"object path process:command_line is not a file hash"
[ "$(jq -r '[.rejected[] | "\(.where): \(.why)"] | join("; ")' <<<"$BODY")" = \
	"objects[4] (indicator--0004): pattern: not a string; objects[5] (indicator--0005): not an IP address or CIDR range" ] ||
	fail "stix rejected: $BODY"
expect_verdict "sha256=$(printf s | sha256sum | cut -c1-64)" "malicious stixfeed"
expect_verdict "url=https://STIX.example/dl" "malicious stixfeed"
expect_verdict "ip=2001:db8:5:1::1" "malicious stixfeed"
# deeper than 2001:db8::/32 of csvfeed: the /48 of stixfeed decides
req "${L[@]}" "$U/lookup?ip=2001:db8:5::1"
[ "$(jq -r '[.sources[].source] | join(" ")' <<<"$BODY")" = "stixfeed csvfeed" ] ||
	fail "ipv6 sources: $BODY"
# bad JSON and a truncated bundle: nothing replaced
printf '{"type": "bundle", "objects": [' >"$T/cut-bundle.json"
import stixfeed stix "$T/cut-bundle.json"
[ "$CODE" = 422 ] || fail "truncated stix: $CODE $BODY"
printf '{"type": "bundle", "objects": [}]}' >"$T/bad.json"
import stixfeed stix "$T/bad.json"
[ "$CODE" = 422 ] || fail "bad json stix: $CODE $BODY"
expect_contains "$(jq -r .error <<<"$BODY")" "stix: not valid JSON at line 1"
expect_verdict "domain=stix.example" "malicious stixfeed"
# strict: a rejected entry fails the whole import
import stixfeed stix "$T/bundle.json" "strict=1"
[ "$CODE" = 422 ] || fail "strict stix: $CODE $BODY"
expect_contains "$(jq -r .error <<<"$BODY")" "strict: 2 entries rejected"
expect_verdict "domain=stix.example" "malicious stixfeed"
# a broken CSV (no indicator column) keeps the old csv set
printf 'ioc_value,kind\n1.2.3.4,ip\n' >"$T/bad.csv"
import csvfeed csv "$T/bad.csv"
[ "$CODE" = 422 ] || fail "csv without indicator column: $CODE $BODY"
expect_verdict "ip=10.200.1.1" "malicious csvfeed"
pass "stix: patterns held, others skipped, broken bundles fail whole"

# 7. Re-importing replaces the feed's set.
printf 'c2.evil.example\n' >"$T/feed2.txt"
import listfeed list "$T/feed2.txt"
[ "$(jq .replaced <<<"$BODY")" = 3 ] || fail "replaced: $BODY"
expect_verdict "ip=198.51.100.7" "unknown null"
expect_verdict "domain=c2.evil.example" "malicious listfeed"
pass "re-import replaces the feed's indicators"

# 8. Site lists beat every feed; removing the entry restores the feed.
req "${A[@]}" -X POST -d '{"indicator": "bad.example", "comment": "ours"}' \
	"$U/lists/allow"
[ "$CODE" = 200 ] || fail "allow: $CODE $BODY"
expect_verdict "url=http://bad.example/a/c?q=1" "malicious csvfeed"
expect_verdict "domain=www.bad.example" "benign site:allow"
req "${A[@]}" -X POST -d '{"indicators": ["10.1.2.0/24"]}' "$U/lists/block"
expect_verdict "ip=10.1.2.3" "malicious site:block"
req "${A[@]}" -X POST -d '{"indicator": "10.1.2.3"}' "$U/lists/allow"
expect_verdict "ip=10.1.2.3" "benign site:allow"
expect_verdict "ip=10.1.2.4" "malicious site:block"
req "${A[@]}" "$U/lists/block"
[ "$(jq -r '.entries[0].indicator' <<<"$BODY")" = "10.1.2.0/24" ] ||
	fail "block list: $BODY"
req "${A[@]}" -X DELETE "$U/lists/block?indicator=10.1.2.0/24"
[ "$CODE" = 200 ] || fail "unblock: $CODE $BODY"
expect_verdict "ip=10.1.2.4" "benign csvfeed"
req "${A[@]}" -X DELETE "$U/lists/block?indicator=10.1.2.0/24"
[ "$CODE" = 404 ] || fail "unblock twice: $CODE $BODY"
req "${A[@]}" -X POST -d "{\"indicator\": \"gone.example\", \"expires\": $(($(date +%s) + 2))}" \
	"$U/lists/block"
expect_verdict "domain=gone.example" "malicious site:block"
wait_for 10 "the block entry to expire" \
	bash -c "[ \"\$(curl -s --cacert $PKI/ca.crt -H 'X-API-Key: $LOOKUP_KEY' \
	'$U/lookup?domain=gone.example' | jq -r .verdict)\" = unknown ]"
pass "site lists: allow and block beat feeds, most specific entry, expiry"

# 9. Batch: answers in order, errors in place, a limit.
req "${L[@]}" -X POST -d "[\"10.200.0.1\", {\"type\": \"md5\", \"value\": \"$MD5_B\"}, \"not one\", {\"type\": \"domain\", \"value\": \"x.evil.example\"}, 7, \"198.51.100.1\"]" \
	"$U/lookup"
[ "$CODE" = 200 ] || fail "batch: $CODE $BODY"
[ "$(jq -r '[.results[] | .verdict // "error"] | join(" ")' <<<"$BODY")" = \
	"malicious suspicious error malicious error unknown" ] || fail "batch: $BODY"
python3 -c 'import json; print(json.dumps(["10.0.0.1"] * 1001))' >"$T/big.json"
req "${L[@]}" -X POST --data-binary "@$T/big.json" "$U/lookup"
[ "$CODE" = 413 ] || fail "batch over max_batch: $CODE"
pass "batch: in order, errors in place, max_batch enforced"

# 10. Lookups while a large import replaces a feed: old set or new, never half.
N=200000
python3 - "$T" "$N" <<'EOF'
import sys
t, n = sys.argv[1], int(sys.argv[2])
for name, p in (("old", "o"), ("new", "n")):
    with open(f"{t}/big-{name}.txt", "w") as f:
        for i in range(n):
            f.write(f"{p}{i}.big.example\n")
EOF
add_feed big 5
import big list "$T/big-old.txt"
[ "$(jq .indicators <<<"$BODY")" = $N ] || fail "big import: $BODY"
PROBE="[\"o0.big.example\", \"o$((N - 1)).big.example\", \"n0.big.example\", \"n$((N - 1)).big.example\"]"
curl -sS --cacert "$PKI/ca.crt" "${A[@]}" -X POST --data-binary "@$T/big-new.txt" \
	"$U/feeds/big/import?format=list" >"$T/big-report.json" &
IMP=$!
during=0 states=""
while kill -0 "$IMP" 2>/dev/null; do
	s=$(curl -sS --cacert "$PKI/ca.crt" "${L[@]}" -X POST -d "$PROBE" "$U/lookup" |
		jq -r '[.results[].verdict] | join(" ")')
	kill -0 "$IMP" 2>/dev/null && during=$((during + 1))
	case "$s" in
	"malicious malicious unknown unknown" | "unknown unknown malicious malicious") ;;
	*) fail "a lookup during the import saw a half set: $s" ;;
	esac
	states="$states|$s"
done
wait "$IMP" || fail "big import request"
[ "$(jq -r .result "$T/big-report.json")" = imported ] || fail "$(cat "$T/big-report.json")"
[ "$during" -gt 0 ] || fail "no lookup was answered while the import ran"
expect_contains "$states" "malicious malicious unknown unknown"
s=$(curl -sS --cacert "$PKI/ca.crt" "${L[@]}" -X POST -d "$PROBE" "$U/lookup" |
	jq -r '[.results[].verdict] | join(" ")')
[ "$s" = "unknown unknown malicious malicious" ] || fail "after import: $s"
pass "$during lookups answered during a $N-line import, none saw a half set"

# 11. Feeds list, stats, metrics.
req "${L[@]}" "$U/feeds"
[ "$(jq -r '[.feeds[] | "\(.name)=\(.indicators)"] | join(" ")' <<<"$BODY")" = \
	"big=$N csvfeed=10 listfeed=1 mispfeed=4 stixfeed=4" ] || fail "feeds: $BODY"
req "${L[@]}" "$U/stats"
[ "$(jq .by_source.big <<<"$BODY")" = $N ] || fail "stats: $BODY"
req "${L[@]}" "https://127.0.0.1:$P/metrics"
[ "$(metric_value "$BODY" 'vigil_intel_imports_total{format="stix",result="failed"}')" = 3 ] ||
	fail "metrics: $(grep imports_total <<<"$BODY")"
[ "$(metric_value "$BODY" 'vigil_intel_indicators{source="big"}')" = $N ] ||
	fail "metrics: $(grep intel_indicators <<<"$BODY")"
# lookups are counted on every thread (atomic counters)
[ "$(metric_value "$BODY" 'vigil_intel_lookups_total{type="ip",verdict="malicious"}')" -gt 0 ] ||
	fail "metrics: $(grep lookups_total <<<"$BODY")"
pass "feeds, stats and /metrics count what is held"

# 12. Removing a feed removes its indicators.
req "${A[@]}" -X DELETE "$U/feeds/big"
[ "$CODE" = 200 ] || fail "remove feed: $CODE $BODY"
expect_verdict "domain=n0.big.example" "unknown null"
req "${A[@]}" -X DELETE "$U/feeds/big"
[ "$CODE" = 404 ] || fail "remove twice: $CODE"
[ "$(jq -r .error.code <<<"$BODY")" = not_found ] || fail "remove twice: $BODY"
pass "removing a feed removes its indicators"

# 13. vigilctl intel: a MISP feed directory, lookups, feeds, lists, stats.
export VIGIL_INTEL_SERVER=https://127.0.0.1:$P VIGIL_API_KEY=$ADMIN_KEY
ctl() { "$CTL" --ca "$PKI/ca.crt" "$@"; }
ctl intel feeds add ctlmisp --priority 60 >"$T/ctl.out" ||
	fail "ctl feeds add: $(cat "$T/ctl.out")"
ctl intel import ctlmisp "$T/misp" --format misp >"$T/ctl.out" ||
	fail "ctl import misp dir: $(cat "$T/ctl.out")"
expect_contains "$(cat "$T/ctl.out")" "ctlmisp: imported 4 indicators (replaced 0); 2 rejected, 2 skipped"
expect_contains "$(cat "$T/ctl.out")" "ctlmisp: delta import: 4 added, 0 changed, 0 unchanged, 0 removed, 0 kept"
expect_contains "$(cat "$T/ctl.out")" "rejected event 5f6e7d8c-0000-4000-8000-000000000001 attribute a-4: value: not a string"
cp -r "$T/misp" "$T/misp-broken"
head -c 100 "$T/misp/manifest.json" >"$T/misp-broken/manifest.json"
printf '{"Event": ' >"$T/misp-broken/5f6e7d8c-0000-4000-8000-000000000001.json"
if ctl intel import ctlmisp "$T/misp-broken" --format misp >"$T/ctl.out" 2>&1; then
	fail "ctl imported a broken MISP directory"
fi
expect_contains "$(cat "$T/ctl.out")" "5f6e7d8c-0000-4000-8000-000000000001.json: not valid JSON"
ctl intel lookup 203.0.113.9 nothing.example >"$T/ctl.out" || true
expect_contains "$(cat "$T/ctl.out")" "203.0.113.9  ip  malicious (100)  by ctlmisp"
expect_contains "$(cat "$T/ctl.out")" "nothing.example  domain  unknown"
set +e
ctl intel lookup 203.0.113.9 >/dev/null; st1=$?
ctl intel lookup 192.0.2.99 >/dev/null; st0=$?
ctl intel lookup "not one" >/dev/null; st2=$?
set -e
[ "$st1 $st0 $st2" = "1 0 2" ] || fail "ctl lookup exit codes: $st1 $st0 $st2"
ctl intel block add 192.0.2.99 --comment "ctl test" >"$T/ctl.out" ||
	fail "ctl block add: $(cat "$T/ctl.out")"
ctl --json intel lookup 192.0.2.99 | jq -e '.[0].decided_by == "site:block"' >/dev/null ||
	fail "ctl block add had no effect"
ctl intel block list >"$T/ctl.out"
expect_contains "$(cat "$T/ctl.out")" "192.0.2.99"
ctl intel block remove 192.0.2.99 >/dev/null || fail "ctl block remove"
ctl --json intel lookup 192.0.2.99 | jq -e '.[0].verdict == "unknown"' >/dev/null ||
	fail "ctl block remove had no effect"
ctl intel feeds >"$T/ctl.out"
grep -Eq '^ctlmisp +60 +4 +misp' "$T/ctl.out" || fail "ctl feeds: $(cat "$T/ctl.out")"
ctl intel stats >"$T/ctl.out"
expect_contains "$(cat "$T/ctl.out")" "  ctlmisp: 4"
ctl intel import listfeed "$T/feed2.txt" --format list --verdict benign \
	--score 5 --ttl 1h >"$T/ctl.out" || fail "ctl import list: $(cat "$T/ctl.out")"
req "${L[@]}" "$U/lookup?domain=c2.evil.example"
[ "$(jq -r '"\(.verdict) \(.score) \(.sources[0].expires > now)"' <<<"$BODY")" = \
	"benign 5 true" ] || fail "ctl import options: $BODY"
ctl intel feeds remove ctlmisp >/dev/null || fail "ctl feeds remove"
expect_verdict "ip=203.0.113.9" "malicious mispfeed"
pass "vigilctl intel: MISP directory import, lookup, block, feeds, stats"

# 14. SIGHUP re-reads the keys; graceful stop; the store survives a restart.
req -H "X-API-Key: $LATE_KEY" "$U/lookup?ip=10.0.0.1"
[ "$CODE" = 401 ] || fail "late key before HUP: $CODE"
echo "late:lookup:$(h "$LATE_KEY")" >>"$T/keys"
kill -HUP "$INTELD_PID"
wait_for 10 "the new key after SIGHUP" bash -c \
	"[ \"\$(curl -s -o /dev/null -w '%{http_code}' --cacert $PKI/ca.crt -H 'X-API-Key: $LATE_KEY' '$U/lookup?ip=10.0.0.1')\" = 200 ]"
# The server certificate too, in every thread ([server] threads = 2): a
# dozen new connections, spread over the threads by the kernel, all get
# the new one.
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-subj /CN=inteld-renewed -keyout "$T/server2.key" -out "$T/server2.csr" 2>/dev/null
chmod 600 "$T/server2.key"
printf 'subjectAltName=IP:127.0.0.1\n' >"$T/san.ext"
openssl x509 -req -in "$T/server2.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" \
	-CAcreateserial -days 2 -extfile "$T/san.ext" -out "$T/server2.crt" 2>/dev/null
sed -i -e "s|^cert = .*|cert = $T/server2.crt|" -e "s|^key = .*|key = $T/server2.key|" \
	"$T/inteld.conf"
served() {
	openssl s_client -connect "127.0.0.1:$P" </dev/null 2>/dev/null |
		openssl x509 -noout -subject 2>/dev/null
}
case $(served) in
*inteld-renewed* | "") fail "before SIGHUP: $(served)" ;;
esac
kill -HUP "$INTELD_PID"
renewed() {
	local i n=0
	for i in $(seq 1 12); do
		case $(served) in *inteld-renewed*) n=$((n + 1)) ;; esac
	done
	[ "$n" = 12 ]
}
wait_for 10 "the new certificate on every connection" renewed
stop_inteld
[ ! -e "$DATA/vigil-inteld.ports" ] || fail "ports file left after stop"
start_inteld
expect_verdict "domain=a.evil.example" "malicious csvfeed"
expect_verdict "ip=10.1.2.3" "benign site:allow"
stop_inteld
pass "SIGHUP reloads keys and, in every thread, the certificate; stop is clean; the store survives a restart"
