#!/bin/bash
# Forwarding targets from the [forward] targets file: `vigild -n` names
# what is wrong in it; its targets start with the center, keep their
# cursors across restarts, cannot be removed through the API, and are
# removed when they leave the file; SIGHUP applies the file at once
# (added, changed and removed targets; a broken file changes nothing); a
# target given by host name (localhost) is resolved without blocking.
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

# hup: SIGHUP, then waits until vigild has logged the reload.
hup() {
	local n i
	n=$(grep -c "configuration reloaded" "$T/vigild.log" || true)
	kill -HUP "$CENTER_PID"
	for i in $(seq 1 100); do
		[ "$(grep -c "configuration reloaded" "$T/vigild.log" || true)" -gt "$n" ] && return 0
		sleep 0.1
	done
	fail "no reload logged"
}

# SIGHUP: [siem] moves to a second receiver, named localhost (resolved
# from /etc/hosts by evdns), keeping its cursor; [ops] is added.
rs2_dir=$T/rs2
RS1_PID=$RS_PID
rs_start "$rs2_dir" "module(load=\"imtcp\")
input(type=\"imtcp\" port=\"0\" address=\"127.0.0.1\" listenPortFileName=\"$rs2_dir/p\")
action(type=\"omfile\" file=\"$rs2_dir/out\" template=\"fields\")"
P2=$(cat "$rs2_dir/p")
cat >"$T/targets.conf" <<TF
[siem]
transport = tcp
host = localhost
port = $P2
types = finding, gap
min_level = warning
from = start
[ops]
transport = udp
host = 127.0.0.1
port = 9
TF
hup
list=$(api GET /api/v1/forward)
expect_contains "$list" "\"name\":\"ops\""
expect_contains "$list" "\"host\":\"localhost\",\"port\":$P2"
expect_contains "$(cat "$T/vigild.log")" "forward: target siem changed, restarting"
post_events "$(events_range 36 38)" >/dev/null
wait_lines "$rs2_dir/out" 3
sleep 1
seqs=$(sed -nE 's/.* seq="([0-9]+)".*/\1/p' "$rs2_dir/out" | tr '\n' ' ')
[ "$seqs" = "36 37 38 " ] || fail "after the change: $seqs"
[ "$(wc -l <"$RS/out")" -eq 25 ] || fail "the old receiver got more: $(tail -3 "$RS/out")"
pass "SIGHUP: a changed target restarts with its cursor (host localhost), a new one starts"

# A broken file is refused: errors logged, the running targets kept.
cp "$T/targets.conf" "$T/targets.good"
echo "colour = blue" >>"$T/targets.conf"
hup
expect_contains "$(cat "$T/vigild.log")" "forward: reload refused, the running targets are kept"
expect_contains "$(cat "$T/vigild.log")" "targets.conf: [ops] colour: unknown key"
list=$(api GET /api/v1/forward)
expect_contains "$list" "\"name\":\"ops\""
expect_contains "$list" "\"name\":\"siem\""
post_events "$(events_range 39 40)" >/dev/null
wait_lines "$rs2_dir/out" 5
pass "SIGHUP: a broken targets file is refused, the targets keep running"

# [ops] leaves the file: stopped and removed at once.
sed '/^\[ops\]/,$d' "$T/targets.good" >"$T/targets.conf"
hup
list=$(api GET /api/v1/forward)
case "$list" in *'"name":"ops"'*) fail "ops still running: $list" ;; esac
expect_contains "$list" "\"name\":\"siem\""
pass "SIGHUP: a target removed from the file stops"

# Gone from the file: gone from the center.
echo "# no targets" >"$T/targets.conf"
stop_center
start_center "$T/vigild.conf" "$DATA"
expect_contains "$(api GET /api/v1/forward)" '"targets":[]'
pass "a target removed from the file is removed"
