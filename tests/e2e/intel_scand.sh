#!/bin/bash
# vigil-scand with vigil-inteld (docs/inteld.md, "Consumers"): inteld on
# loopback holds a MISP feed and a STIX 2.1 bundle written here; scand
# presents a client certificate of the deployment CA. A sample whose
# SHA-256 is in the MISP feed and that no rule matches is reported as a
# Reputation finding with inteld's verdict (sync and async); a rule's
# finding carries the verdict too (malicious from the bundle, unknown
# otherwise); a clean unknown sample stays []. With inteld stopped the
# findings say the verdict is unavailable and the known-bad sample is no
# finding any more: scand answers without it, never hangs.
. "$(dirname "$0")/lib.sh"

SCAND=$BIN/vigil-scand
PKI=$T/pki
DATA=$T/scand
make_pki "$PKI"
. "$(dirname "$0")/intel.inc"

openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-subj /CN=scand -keyout "$T/client.key" -out "$T/client.csr" 2>/dev/null
openssl x509 -req -in "$T/client.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" \
	-CAcreateserial -days 2 -out "$T/client.crt" 2>/dev/null
chmod 600 "$T/client.key"

start_intel
printf 'known bad, no rule %s\n' "$RANDOM$RANDOM" >"$T/bad.bin"
printf 'x VIGIL-TEST-MARKER-7d1f3a %s\n' "$RANDOM" >"$T/marker.bin"
printf 'x VIGIL-TEST-MARKER-7d1f3a other %s\n' "$RANDOM" >"$T/marker2.bin"
printf 'nothing to see %s\n' "$RANDOM" >"$T/clean.txt"
BAD=$(sha256sum "$T/bad.bin" | cut -c1-64)
import_misp misp "$BAD"
import_stix stix "$(sha256sum "$T/marker.bin" | cut -c1-64)"

cat >"$T/scand.conf" <<EOC
[scand]
data_dir = $DATA
rules = $SRC/tests/data/scan/markers.yar
threads = 2
log_level = debug
[http]
listen = 127.0.0.1
port = 0
[intel]
url = https://127.0.0.1:$IPORT
ca = $PKI/ca.crt
cert = $T/client.crt
key = $T/client.key
timeout = 3s
EOC
# -n checks [intel]: a client key others can read is refused.
chmod 644 "$T/client.key"
"$SCAND" -n -c "$T/scand.conf" >"$T/check.out" 2>&1 &&
	fail "vigil-scand -n accepted a readable client key"
expect_contains "$(cat "$T/check.out")" "$T/client.key"
chmod 600 "$T/client.key"
"$SCAND" -d -c "$T/scand.conf" >>"$T/scand.log" 2>&1 &
SCAND_PID=$!
PIDS+=("$SCAND_PID")
wait_for 10 "vigil-scand to listen" test -s "$DATA/vigil-scand.ports"
HP=$(sed -E 's/.*"http": ([0-9]+).*/\1/' "$DATA/vigil-scand.ports")
U=http://127.0.0.1:$HP/api/v1
check() { curl -sS -F "file=@$T/$1" "$U/check?source=host-a"; }

# 1. A known-bad sample no rule matches: a Reputation finding.
out=$(check bad.bin)
[ "$(jq -r 'length' <<<"$out")" = 1 ] || fail "bad.bin: $out"
[ "$(jq -r '.[0].reasons[0].signature.kind' <<<"$out")" = Reputation ] ||
	fail "bad.bin kind: $out"
[ "$(jq -r '"\(.[0].intel.verdict) \(.[0].intel.sources | join(","))"' <<<"$out")" = \
	"malicious misp" ] || fail "bad.bin verdict: $out"
[ "$(jq -r '.[0].subject.hashes.sha256' <<<"$out")" = "$BAD" ] ||
	fail "bad.bin hash: $out"
[ "$(jq -r '.[0].meta.level' <<<"$out")" = Alert ] || fail "bad.bin level: $out"
pass "a known-bad sample without a rule match: a Reputation finding, verdict malicious (misp)"

# 2. Rule findings carry the verdict; a clean unknown sample stays [].
out=$(check marker.bin)
[ "$(jq -r '"\(.[0].reasons[0].signature.kind) \(.[0].intel.verdict) \(.[0].intel.sources | join(","))"' <<<"$out")" = \
	"YARA Rule malicious stix" ] || fail "marker.bin: $out"
out=$(check marker2.bin)
[ "$(jq -r '"\(.[0].reasons[0].signature.kind) \(.[0].intel.verdict)"' <<<"$out")" = \
	"YARA Rule unknown" ] || fail "marker2.bin: $out"
[ "$(check clean.txt)" = "[]" ] || fail "clean.txt"
pass "rule findings carry inteld's verdict (stix: malicious; unknown); a clean sample stays []"

# 3. Async: the same verdict in the stored result.
id=$(curl -sS -F "file=@$T/bad.bin" "$U/checkAsync" | jq -r .id)
done_async() {
	out=$(curl -sS "$U/getAsyncResults?id=$id")
	[ "$(jq -r .status <<<"$out")" = "Sample analysis complete" ]
}
wait_for 20 "the async result" done_async
[ "$(jq -r '"\(.result[0].reasons[0].signature.kind) \(.result[0].intel.verdict)"' <<<"$out")" = \
	"Reputation malicious" ] || fail "async: $out"
st=$(curl -sS "$U/status")
[ "$(jq -c '.intel | [.up, .lookups, .failed, .reputation_findings]' <<<"$st")" = \
	"[true,5,0,2]" ] || fail "status: $st"
pass "async: the Reputation finding stored with its verdict; counters in /status"

# 4. inteld down: answers without a verdict, marked so.
stop_intel
out=$(check marker.bin)
[ "$(jq -r '"\(.[0].reasons[0].signature.kind) \(.[0].intel.verdict)"' <<<"$out")" = \
	"YARA Rule null" ] || fail "marker.bin without inteld: $out"
expect_contains "$(jq -r .[0].intel.unavailable <<<"$out")" "cannot connect"
[ "$(check bad.bin)" = "[]" ] || fail "bad.bin without inteld"
[ "$(curl -sS "$U/status" | jq -c '.intel | [.up, .failed]')" = "[false,2]" ] ||
	fail "intel still up: $(curl -sS "$U/status")"
pass "inteld down: findings marked 'unavailable', no verdict invented"
kill -TERM "$SCAND_PID"
wait "$SCAND_PID" || fail "vigil-scand did not stop cleanly"
