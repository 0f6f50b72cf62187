#!/bin/bash
# The center and its agents with vigil-inteld (docs/inteld.md,
# "Consumers"): inteld on loopback holds a MISP feed and a STIX 2.1 bundle
# written here. An enrolled agent scans a directory on a center without
# any rule set: the files whose SHA-256s are in the feeds become findings
# of kind Reputation. With a rule set: a file whose SHA-256 is in the MISP
# feed and that no rule matches becomes a finding of kind Reputation; a file a rule matches and whose hash is in the STIX bundle
# gets the center's verdict, its level raised to alert. Both show in the
# API and in `vigilctl findings`. Then inteld stops: new findings are
# stored without a verdict (pending), a scan goes on without reputation
# and counts it; inteld starts again and the pending findings get their
# verdict. No sleeps: each wait is a condition with a deadline.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/intel.inc"

PKI=$T/pki
DATA=$T/data
make_pki "$PKI"
start_intel

mkdir -p "$T/scan"
printf 'reputation only %s\n' "$RANDOM$RANDOM" >"$T/scan/bad.bin"
printf 'x VIGIL-INTEL-MARKER %s\n' "$RANDOM" >"$T/scan/marked.txt"
printf 'nothing here\n' >"$T/scan/clean.txt"
BAD=$(sha256sum "$T/scan/bad.bin" | cut -c1-64)
MARKED=$(sha256sum "$T/scan/marked.txt" | cut -c1-64)
LATE=$(printf 'late %s' "$RANDOM" | sha256sum | cut -c1-64)
import_misp misp "$BAD" "$LATE"
import_stix stix "$MARKED"

write_conf "$T/vigild.conf" "$PKI" "$DATA"
cat >>"$T/vigild.conf" <<EOC
[intel]
url = https://127.0.0.1:$IPORT
ca = $PKI/ca.crt
api_key_file = $T/intel.key
timeout = 3s
cache_ttl = 1h
# the smallest cache: hashes of one request share its slots
cache_size = 16
EOC
# -n checks [intel]: an API key file others can read is refused.
chmod 644 "$T/intel.key"
"$VIGILD" -n -c "$T/vigild.conf" >"$T/check.out" 2>&1 &&
	fail "vigild -n accepted a readable API key file"
expect_contains "$(cat "$T/check.out")" "$T/intel.key"
chmod 600 "$T/intel.key"
start_center "$T/vigild.conf" "$DATA"

TOKEN=$(new_token --uses 1 --label site=intel)
VIGIL_MACHINE_ID_FILE=$(machine_id i1) "$AGENT" enroll \
	--server "https://127.0.0.1:$GW" --token "$TOKEN" --ca "$PKI/ca.crt" \
	--data-dir "$T/a" >"$T/enroll.log" 2>&1 || fail "enroll: $(cat "$T/enroll.log")"
AID=$("$CTL" --json agent list | sed -nE 's/.*"id": "([0-9a-f-]{36})".*/\1/p' | head -1)
[ -n "$AID" ] || fail "no agent"
VIGIL_MACHINE_ID_FILE=$T/machine-id-i1 "$AGENT" run --data-dir "$T/a" \
	>"$T/agent.log" 2>&1 &
PIDS+=("$!")

# scan [DIR]: runs a scan of DIR ($T/scan) to its end; its id in TID.
scan() {
	local out
	out=$("$CTL" task create scan --target site=intel --path "${1:-$T/scan}" --timeout 5m)
	TID=$(sed -nE 's/^created task ([0-9a-f-]{36}) .*/\1/p' <<<"$out")
	[ -n "$TID" ] || fail "task create: $out"
	timeout 60 "$CTL" task watch "$TID" --interval 1 >"$T/watch.log" 2>&1 ||
		fail "scan did not finish: $(cat "$T/watch.log"; "$CTL" task show "$TID")"
}
nfindings() { # nfindings TASK N: the task has N findings stored
	[ "$(api GET "/api/v1/findings?task=$1" | jq '.items | length')" = "$2" ]
}
# finding_of TASK NAME: the task's finding for the file NAME (JSON).
finding_of() {
	api GET "/api/v1/findings?task=$1" |
		jq -c --arg n "$T/scan/$2" '.items[] | select(.data.subject.path == $n)'
}
enriched() { # enriched TASK NAME VERDICT
	[ "$(finding_of "$1" "$2" | jq -r '.intel.verdict // "-"')" = "$3" ]
}

kinds() { # kinds TASK NAME: the kinds of the reasons of NAME's finding
	finding_of "$1" "$2" | jq -r '[.data.reasons[].signature.kind] | join(",")'
}

# 1. No rule set on the center at all: a scan by reputation only. Both
# files whose hashes are in a feed (MISP, STIX) become Reputation findings.
scan
wait_for 20 "two findings of the scan" nfindings "$TID" 2
[ "$(kinds "$TID" bad.bin) $(kinds "$TID" marked.txt)" = "Reputation Reputation" ] ||
	fail "reputation-only scan: $(api GET "/api/v1/findings?task=$TID")"
show=$("$CTL" --json task show "$TID")
[ "$(jq -c '[.. | objects | select(has("reputation")) | .reputation | .checked, .malicious, .unchecked]' <<<"$show" | head -1)" = "[3,2,0]" ] ||
	fail "scan summary: $show"
pass "a scan without any rule set: files in the MISP feed and the STIX bundle are Reputation findings"

# 2. With a rule set: a file no rule matches, its hash in the MISP feed.
printf 'rule vigil_intel_marker { meta: score = 50 strings: $m = "VIGIL-INTEL-MARKER" condition: $m }\n' >"$T/m.yar"
"$CTL" rules add marker "$T/m.yar" >/dev/null || fail "rules add"
scan
wait_for 20 "two findings of the scan" nfindings "$TID" 2
[ "$(kinds "$TID" marked.txt)" = "YARA Rule" ] || fail "marked.txt: $(finding_of "$TID" marked.txt)"
f=$(finding_of "$TID" bad.bin)
[ -n "$f" ] || fail "no finding for bad.bin: $(api GET "/api/v1/findings?task=$TID")"
[ "$(jq -r '[.data.reasons[].signature.kind] | join(",")' <<<"$f")" = Reputation ] ||
	fail "bad.bin: not a Reputation finding: $f"
[ "$(jq -r '"\(.data.intel.verdict) \(.data.intel.score) \(.data.intel.sources | join(","))"' <<<"$f")" = \
	"malicious 75 misp" ] || fail "bad.bin: verdict in the finding: $f"
[ "$(jq -r .level <<<"$f")" = alert ] || fail "bad.bin: level: $f"
finding_of "$TID" clean.txt | grep -q . && fail "clean.txt became a finding"
show=$("$CTL" --json task show "$TID")
[ "$(jq -c '[.. | objects | select(has("reputation")) | .reputation | .checked, .malicious, .unchecked]' <<<"$show" | head -1)" = "[3,2,0]" ] ||
	fail "scan summary: $show"
pass "a file no rule matches, its hash in the MISP feed: a Reputation finding (3 checked, 2 malicious)"

# 3. The center's verdict on every finding: the rule's finding raised.
wait_for 20 "the rule's finding enriched" enriched "$TID" marked.txt malicious
f=$(finding_of "$TID" marked.txt)
[ "$(jq -r '"\(.level) \(.intel.level_before) \(.intel.score) \(.intel.sources[0].sources | join(",")) \(.intel.sources[0].indicator)"' <<<"$f")" = \
	"alert notice 100 stix $MARKED" ] || fail "marked.txt enrichment: $f"
wait_for 20 "the Reputation finding enriched" enriched "$TID" bad.bin malicious
out=$("$CTL" findings list --agent "$AID")
expect_contains "$(head -1 <<<"$out")" VERDICT
[ "$(grep -c ' malicious ' <<<"$out")" -ge 2 ] || fail "vigilctl findings: $out"
[ "$(api GET "/api/v1/findings?verdict=malicious&task=$TID" | jq '.items | length')" = 2 ] ||
	fail "?verdict=malicious"
m=$(api GET /metrics)
[ "$(metric_value "$m" vigil_intel_up)" = 1 ] || fail "vigil_intel_up: $m"
[ "$(metric_value "$m" vigil_intel_pending)" = 0 ] ||
	fail "pending: $(metric_value "$m" vigil_intel_pending)"
v=$(metric_value "$m" 'vigil_intel_lookups_total{for="agents",result="ok"}')
[ "${v:-0}" -ge 3 ] || fail "agent lookups: $v"
pass "findings enriched (level notice raised to alert), shown by the API and vigilctl; metrics"

# 4. inteld down: findings stored without a verdict, nothing waits.
stop_intel
agentreq() {
	curl -sS --cacert "$PKI/ca.crt" --cert "$T/a/agent.crt" \
		--key "$T/a/agent.key" -X POST "https://127.0.0.1:$GW$1" "${@:2}"
}
now=$(date +%s)
out=$(agentreq /v1/events -d "{\"events\": [
 {\"seq\": 90001, \"time\": $now, \"type\": \"finding\", \"level\": \"notice\",
  \"data\": {\"path\": \"/tmp/late.bin\", \"rule\": \"late\", \"sha256\": \"$LATE\"}},
 {\"seq\": 90002, \"time\": $now, \"type\": \"connection\", \"level\": \"info\",
  \"data\": {\"remote_ip\": \"203.0.113.66\", \"port\": 443}}]}")
expect_contains "$out" '"stored":2'
f=$(api GET "/api/v1/findings?agent=$AID&seq=90001")
[ "$(jq -r '.items[0].intel' <<<"$f")" = null ] || fail "verdict without inteld: $f"
[ "$(jq -r '.items[0].level' <<<"$f")" = notice ] || fail "level: $f"
pending() { [ "$(metric_value "$(api GET /metrics)" vigil_intel_pending)" -ge 2 ]; }
wait_for 20 "events pending while inteld is down" pending
[ "$(metric_value "$(api GET /metrics)" vigil_intel_up)" = 0 ] || fail "inteld up?"
code=$(agentreq /v1/reputation -o "$T/rep" -w '%{http_code}' -d "{\"sha256\": [\"$LATE\"]}")
[ "$code" = 503 ] || fail "reputation without inteld: $code $(cat "$T/rep")"
# Files the center's cache does not know (those it knows are answered
# from it for cache_ttl, inteld or not).
mkdir -p "$T/scan2"
printf 'one %s\n' "$RANDOM" >"$T/scan2/one"
printf 'two %s\n' "$RANDOM" >"$T/scan2/two"
scan "$T/scan2"
show=$("$CTL" --json task show "$TID")
[ "$(jq -c '[.. | objects | select(has("reputation")) | .reputation | .checked, .unchecked]' <<<"$show" | head -1)" = "[0,2]" ] ||
	fail "scan without inteld: $show"
expect_contains "$(jq -c '.. | objects | select(has("reputation")) | .reputation.error' <<<"$show" | head -1)" "503"
pass "inteld down: findings stored unenriched (pending), a scan goes on and counts 2 unchecked"

# 5. inteld back (same port): the pending finding gets its verdict.
start_intel "$IPORT"
late_enriched() {
	[ "$(api GET "/api/v1/findings?agent=$AID&seq=90001" | jq -r '.items[0].intel.verdict')" = malicious ]
}
wait_for 60 "the finding stored while inteld was down enriched" late_enriched
f=$(api GET "/api/v1/findings?agent=$AID&seq=90001")
[ "$(jq -r '"\(.items[0].level) \(.items[0].intel.level_before)"' <<<"$f")" = "alert notice" ] ||
	fail "late finding: $f"
[ "$(db "SELECT verdict || ' ' || sources FROM event_intel WHERE seq = 90002")" = \
	"malicious [{\"verdict\":\"malicious\",\"score\":75,\"sources\":[\"misp\"],\"indicator\":\"203.0.113.66\",\"type\":\"ip\"}]" ] ||
	fail "the event's address: $(db "SELECT * FROM event_intel WHERE seq = 90002")"
wait_for 20 "nothing pending" bash -c "[ \"\$(curl -sS --cacert $PKI/ca.crt -H 'Authorization: Bearer $VIGIL_API_KEY' https://127.0.0.1:$ADM/metrics | awk '/^vigil_intel_pending /{print \$2}')\" = 0 ]"
pass "inteld back: the pending finding and the event's address got their verdict"
