#!/bin/bash
# Forwarding targets from the [forward] targets file: `vigild -n` names
# what is wrong in it; its targets start with the center, keep their
# cursors across restarts, cannot be removed through the API, and are
# removed when they leave the file.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/rsyslog.inc"

RS=$T/rs
PKI=$T/pki
DATA=$T/data
make_pki "$PKI"
rs_start "$RS" "module(load=\"imtcp\")
input(type=\"imtcp\" port=\"0\" address=\"127.0.0.1\" listenPortFileName=\"$RS/p\")
action(type=\"omfile\" file=\"$RS/out\" template=\"fields\")"
P=$(cat "$RS/p")

cat >"$T/targets.conf" <<TF
[siem]
transport = tcp
host = 127.0.0.1
port = 99999
colour = blue
[other]
transport = tls
host = 127.0.0.1
TF
write_conf "$T/vigild.conf" "$PKI" "$DATA" "[forward]" "targets = $T/targets.conf"
out=$("$VIGILD" -n -c "$T/vigild.conf" 2>&1 || true)
expect_contains "$out" "targets.conf: [siem] colour: unknown key"
expect_contains "$out" "targets.conf: [siem] port: 1..65535"
expect_contains "$out" "targets.conf: [other] ca_file: required for tls"
expect_contains "$out" "checks above failed"
pass "vigild -n names the problems of the targets file"

cat >"$T/targets.conf" <<TF
# SIEM collector
[siem]
transport = tcp
host = 127.0.0.1
port = $P
format = rfc5424
types = finding, gap
min_level = warning
from = start
TF
expect_contains "$("$VIGILD" -n -c "$T/vigild.conf" 2>&1)" "configuration OK"
start_center "$T/vigild.conf" "$DATA"
enroll_agent
post_events "$(events_range 1 20)" >/dev/null
post_events "$(events_range 21 30 progress info)" >/dev/null
wait_lines "$RS/out" 20
list=$(api GET /api/v1/forward)
expect_contains "$list" '"source":"config"'
expect_contains "$list" '"types":["finding","gap"]'
expect_contains "$("$CTL" forward remove siem 2>&1 || true)" "is defined in $T/targets.conf"
expect_contains "$("$CTL" forward add siem --host 127.0.0.1 2>&1 || true)" "exists"
pass "targets file: started with the center, filters applied, not removable through the API"

# Restart: the cursor is kept (nothing twice), new events follow.
stop_center
start_center "$T/vigild.conf" "$DATA"
post_events "$(events_range 31 35)" >/dev/null
wait_lines "$RS/out" 25
sleep 1
seqs=$(sed -nE 's/.* seq="([0-9]+)".*/\1/p' "$RS/out" | tr '\n' ' ')
[ "$seqs" = "$(seq 1 20 | tr '\n' ' ')$(seq 31 35 | tr '\n' ' ')" ] || fail "after restart: $seqs"
pass "cursor of a file target kept across a restart"

# Gone from the file: gone from the center.
echo "# no targets" >"$T/targets.conf"
stop_center
start_center "$T/vigild.conf" "$DATA"
expect_contains "$(api GET /api/v1/forward)" '"targets":[]'
pass "a target removed from the file is removed"
