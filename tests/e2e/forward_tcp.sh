#!/bin/bash
# SIEM forwarding over TCP to a real rsyslogd on loopback: every format,
# both framings, checked field by field as rsyslog parsed them; per-target
# filters; the `forward test` command; an outage (receiver stopped, events
# stored meanwhile, receiver back: all arrive, in order, once); cursors
# survive a center restart; bad target specs are refused with the field
# named.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/rsyslog.inc"

standard_center
enroll_agent
RS=$T/rs
inputs=''
for f in rfc5424 rfc3164 cef leef json nl filt; do
	inputs+="input(type=\"imtcp\" port=\"0\" address=\"127.0.0.1\" listenPortFileName=\"$RS/$f.port\" ruleset=\"$f\")
ruleset(name=\"$f\") { action(type=\"omfile\" file=\"$RS/$f.out\" template=\"fields\") action(type=\"omfile\" file=\"$RS/$f.raw\" template=\"raw\") }
"
done
rs_start "$RS" "module(load=\"imtcp\")
$inputs"
port() { cat "$RS/$1.port"; }

# Bad specs: the field is named; nothing is added.
expect_contains "$("$CTL" forward add bad --host 127.0.0.1 --transport carrier-pigeon 2>&1 || true)" "transport"
expect_contains "$("$CTL" forward add bad --host 127.0.0.1 --format xml 2>&1 || true)" "format"
expect_contains "$("$CTL" forward add bad --host 127.0.0.1 --transport tls 2>&1 || true)" "ca_file"
expect_contains "$(api POST /api/v1/forward -d '{"name": "x", "host": "h", "colour": 1}')" "colour: unknown field"
expect_contains "$(api POST /api/v1/forward -d '{"name": "a b", "host": "h"}')" "name:"
expect_contains "$(api POST /api/v1/forward -d '[1')" "error"
pass "bad target specs refused"

# The agent's event types only: the center's own audit entries (one per
# target added here) are events too (e2e/audit forwards those).
AT=(--type finding --type progress --type gap)
for f in rfc5424 rfc3164 cef leef json; do
	"$CTL" forward add "$f" --transport tcp --host 127.0.0.1 \
		--port "$(port "$f")" --format "$f" "${AT[@]}" >/dev/null ||
		fail "add $f"
done
"$CTL" forward add nl --transport tcp --host 127.0.0.1 --port "$(port nl)" \
	--framing newline "${AT[@]}" >/dev/null || fail "add nl"
"$CTL" forward add filt --transport tcp --host 127.0.0.1 --port "$(port filt)" \
	--type finding --type gap --min-level warning >/dev/null || fail "add filt"
expect_contains "$("$CTL" forward add nl --host 127.0.0.1 2>&1 || true)" "exists"
list=$("$CTL" forward list)
expect_contains "$list" "rfc5424"
expect_contains "$list" "newline"

# Events: an alert finding with characters every format must escape, a
# progress event at info level, a warning gap.
out=$(post_events '{"events": [{"seq": 1, "time": 1795449648, "type": "finding", "level": "alert", "task_id": "task-1.a_b", "data": {"rule": "EICAR", "path": "/tmp/a b|c=d\\e]"}}, {"seq": 2, "time": 1795449649, "type": "progress", "level": "info", "data": {"files": 5}}, {"seq": 3, "time": 1795449650, "type": "gap", "level": "warning", "data": {"lost": 2}}]}')
expect_contains "$out" '"stored":3'

for f in rfc5424 rfc3164 cef leef json nl; do wait_lines "$RS/$f.out" 3; done
wait_lines "$RS/filt.out" 2

# RFC 5424: every header field and the SD parameters as rsyslog parsed them.
l1=$(sed -n 1p "$RS/rfc5424.out")
HN=$(api GET "/api/v1/agents/$AID" | python3 -c "import json,sys; print(json.load(sys.stdin)[\"hostname\"])")
[ "$(cut -d"|" -f1-5 <<<"$l1")" = "$HN|vigil|-|finding|129" ] ||
	fail "rfc5424 parsed as: $l1"
expect_contains "$l1" "[vigil@32473 agent=\"$AID\" seq=\"1\" level=\"alert\" task=\"task-1.a_b\"]"
expect_contains "$(sed -n 2p "$RS/rfc5424.out")" "|vigil|-|progress|134|[vigil@32473 agent=\"$AID\" seq=\"2\" level=\"info\"]|{\"files\":5}"
expect_contains "$(sed -n 3p "$RS/rfc5424.out")" "|vigil|-|gap|132|"
pass "rfc5424: header, structured data and escaping as rsyslog parsed them"

# RFC 3164: tag vigil, content with the fields.
l1=$(sed -n 1p "$RS/rfc3164.out")
expect_contains "$l1" "|vigil|-|-|129|-| type=finding agent=$AID seq=1 level=alert task=task-1.a_b {\"rule\":\"EICAR\""
pass "rfc3164 parsed"

# CEF: header and extension escaping, checked on the raw message.
r1=$(sed -n 1p "$RS/cef.raw")
expect_contains "$r1" "CEF:0|Vigil|Vigil|"
expect_contains "$r1" "|finding|Vigil finding|10|rt=1795449648000 "
expect_contains "$r1" "cs1Label=agent cs1=$AID cn1Label=seq cn1=1 cs2Label=level cs2=alert cs3Label=task cs3=task-1.a_b msg={\"rule\":\"EICAR\",\"path\":\"/tmp/a b|c\\=d\\\\\\\\e]\"}"
expect_contains "$(sed -n 2p "$RS/cef.raw")" "|progress|Vigil progress|3|"
pass "cef escaping as received"

# LEEF 2.0: tab-delimited attributes.
r1=$(sed -n 1p "$RS/leef.raw")
expect_contains "$r1" "LEEF:2.0|Vigil|Vigil|"
expect_contains "$r1" "|finding|x09|devTime=2026-11-23T16:00:48Z"
expect_contains "$r1" "$(printf '\tagent=%s\tseq=1\tlevel=alert\ttask=task-1.a_b\tdata=' "$AID")"
pass "leef 2.0 as received"

# JSON: MSG is one JSON object that parses and has the fields.
m=$(sed -n 1p "$RS/json.out" | cut -d'|' -f7-)
python3 -c 'import json,sys; o=json.loads(sys.argv[1]); assert o["seq"]==1 and o["type"]=="finding" and o["level"]=="alert" and o["task_id"]=="task-1.a_b" and o["data"]["path"]=="/tmp/a b|c=d\\e]", o' "$m" ||
	fail "json message: $m"
expect_contains "$(sed -n 1p "$RS/json.out")" "|vigil|-|finding|129|-|"
pass "json: one object per message"

# Newline framing reaches rsyslog as separate messages too.
expect_contains "$(sed -n 3p "$RS/nl.out")" "|vigil|-|gap|132|"
# Filters: types finding+gap, level >= warning: the progress event is out.
[ "$(wc -l <"$RS/filt.out")" = 2 ] || fail "filter let through: $(cat "$RS/filt.out")"
expect_contains "$(sed -n 2p "$RS/filt.out")" "|gap|"
pass "newline framing; type and level filters"

# forward test: one message through the target's connection.
out=$("$CTL" forward test rfc5424)
expect_contains "$out" "sent"
wait_lines "$RS/rfc5424.out" 4
expect_contains "$(sed -n 4p "$RS/rfc5424.out")" "|vigil|-|test|133|[vigil@32473 agent=\"center\" seq=\"0\" level=\"notice\"]|{\"message\":\"Vigil forwarding test\",\"target\":\"rfc5424\"}"
expect_contains "$("$CTL" forward test nosuch 2>&1 || true)" "no forwarding target"
pass "forward test"

# Outage: stop the receiver, store events, start it again on the same
# ports: everything arrives in order, once.
P5424=$(port rfc5424)
rs_stop
sleep 1
post_events "$(events_range 10 209)" >/dev/null
post_events "$(events_range 210 409 progress info)" >/dev/null
sleep 1
lag=$(api GET /api/v1/forward | python3 -c 'import json,sys; print([t for t in json.load(sys.stdin)["targets"] if t["name"]=="rfc5424"][0]["lag_events"])')
[ "$lag" -ge 400 ] || fail "lag while the receiver is down: $lag"
expect_contains "$("$CTL" forward test rfc5424 2>&1 || true)" "not connected"
m=$(curl -sS --cacert "$PKI/ca.crt" "https://127.0.0.1:$ADM/metrics" -H "Authorization: Bearer $VIGIL_API_KEY")
expect_contains "$m" 'vigil_forward_connected{target="rfc5424"} 0'
expect_contains "$m" 'vigil_forward_errors_total{target="rfc5424"}'
RS2=$T/rs2
rs_start "$RS2" "module(load=\"imtcp\")
input(type=\"imtcp\" port=\"$P5424\" address=\"127.0.0.1\" listenPortFileName=\"$RS2/rfc5424.port\" ruleset=\"r\")
ruleset(name=\"r\") { action(type=\"omfile\" file=\"$RS2/rfc5424.out\" template=\"fields\") }"
wait_lines "$RS2/rfc5424.out" 400
sleep 1
seqs=$(sed -nE 's/.* seq="([0-9]+)".*/\1/p' "$RS2/rfc5424.out" | tr '\n' ' ')
[ "$seqs" = "$(seq 10 409 | tr '\n' ' ')" ] || fail "after the outage: $seqs"
lag=$(api GET /api/v1/forward | python3 -c 'import json,sys; print([t for t in json.load(sys.stdin)["targets"] if t["name"]=="rfc5424"][0]["lag_events"])')
[ "$lag" = 0 ] || fail "lag after recovery: $lag"
pass "outage: 400 events arrived after the receiver came back, in order, once"

# The cursor is persistent: a restarted center sends nothing twice.
stop_center
start_center "$T/vigild.conf" "$DATA"
post_events "$(events_range 410 410)" >/dev/null
wait_lines "$RS2/rfc5424.out" 401
sleep 1
[ "$(wc -l <"$RS2/rfc5424.out")" = 401 ] || fail "duplicates after restart"
expect_contains "$(tail -1 "$RS2/rfc5424.out")" 'seq="410"'
pass "cursor kept across a center restart"

# Remove.
expect_contains "$("$CTL" forward remove nl)" "removed"
expect_contains "$("$CTL" forward remove nl 2>&1 || true)" "no forwarding target"
[ "$(api GET /api/v1/forward | grep -o '"name"' | wc -l)" = 6 ] || fail "remove"
pass "remove"
