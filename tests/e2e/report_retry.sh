#!/bin/bash
# Final task reports outlive a center outage without holding up the agent:
# the center stops while two queued tasks run; both finish during the
# outage, the second starting before the first one's report is delivered;
# the agent is stopped meanwhile and started with the center (the waiting
# reports and the ids of the tasks it received are kept in
# <data dir>/reports.json); both runs are reported done, and no task ran
# twice.
. "$(dirname "$0")/lib.sh"

standard_center
# Restarts keep the ports the agent knows.
GW_PORT=$GW ADM_PORT=$ADM write_conf "$T/vigild.conf" "$PKI" "$DATA"
TOKEN=$(new_token)
export VIGIL_MACHINE_ID_FILE
VIGIL_MACHINE_ID_FILE=$(machine_id rr)
"$AGENT" enroll --server "https://127.0.0.1:$GW" --token "$TOKEN" \
	--ca "$PKI/ca.crt" --data-dir "$T/a" >/dev/null 2>&1 || fail enroll
"$AGENT" run --data-dir "$T/a" >>"$T/agent.log" 2>&1 &
APID=$!
PIDS+=("$APID")
AID=$("$CTL" --json agent list | sed -nE 's/.*"id": "([0-9a-f-]{36})".*/\1/p' | head -1)
[ -n "$AID" ] || fail "no agent id"

# Two scans of about 6 s each (6 files at 1 file/s).
S=$T/scanroot
mkdir -p "$S"
for i in 1 2 3 4 5 6; do echo "file $i" >"$S/f$i.txt"; done
printf 'rule rr_none { strings: $m = "NOT-IN-ANY-FILE-42" condition: $m }\n' >"$T/rr.yar"
"$CTL" rules add rr "$T/rr.yar" >/dev/null || fail "rules add"
new_scan() {
	"$CTL" task create scan --agent "$AID" --path "$S" \
		--param files_per_sec=1 --timeout 10m |
		sed -nE 's/^created task ([0-9a-f-]{36}) .*/\1/p'
}
A=$(new_scan)
B=$(new_scan)
[ -n "$A" ] && [ -n "$B" ] || fail "task create"

# run_state TASK: the agent's run state at the center.
run_state() {
	"$CTL" --json task show "$1" | sed -nE 's/.*"state": "([a-z_ ]+)".*/\1/p' | tail -1
}
for i in $(seq 1 100); do
	[ "$(run_state "$A")" = running ] && [ "$(run_state "$B")" = dispatched ] && break
	sleep 0.1
done
[ "$(run_state "$A")" = running ] || fail "A is not running: $("$CTL" task show "$A")"
[ "$(run_state "$B")" = dispatched ] || fail "B was not handed out: $("$CTL" task show "$B")"
stop_center
pass "center stopped while task A runs and task B waits in the agent"

# wait_log TEXT: waits (up to 30 s) for TEXT in the agent's log.
wait_log() {
	local i
	for i in $(seq 1 300); do
		grep -qF -- "$1" "$T/agent.log" && return 0
		kill -0 "$APID" 2>/dev/null || fail "agent exited"
		sleep 0.1
	done
	fail "agent log lacks: $1"
}
wait_log "work: task $A: report 'done' queued"
wait_log "work: task $B: report 'done' queued"
pass "both tasks finished during the outage, their reports queued"

# The agent restarts: the reports wait in reports.json, 0600.
kill -TERM "$APID"
wait "$APID" || true
R=$T/a/reports.json
[ "$(stat -c %a "$R")" = 600 ] || fail "reports.json mode $(stat -c %a "$R")"
expect_contains "$(cat "$R")" "\"id\":\"$A\""
expect_contains "$(cat "$R")" "\"id\":\"$B\""
start_center "$T/vigild.conf" "$DATA"
"$AGENT" run --data-dir "$T/a" >>"$T/agent.log" 2>&1 &
APID=$!
PIDS+=("$APID")
wait_log "work: 2 task reports from the last run to deliver"
pass "waiting reports kept across an agent restart"

wait_log "work: task $B: report 'done' delivered"
[ "$(run_state "$A")" = done ] || fail "A: $("$CTL" task show "$A")"
[ "$(run_state "$B")" = done ] || fail "B: $("$CTL" task show "$B")"
expect_contains "$("$CTL" --json task show "$B")" '"files": 6'
pass "after the restart both runs are reported done"

# The worker did not wait for A's report before starting B.
la=$(grep -nF "work: task $A: report 'done' delivered" "$T/agent.log" | cut -d: -f1)
lb=$(grep -nF "task $B: scan started" "$T/agent.log" | head -1 | cut -d: -f1)
[ -n "$la" ] && [ -n "$lb" ] && [ "$lb" -lt "$la" ] ||
	fail "B started at line ${lb:-?}, A's report delivered at line ${la:-?}"
[ "$(grep -cF "task $A: scan started" "$T/agent.log")" -eq 1 ] || fail "A ran twice"
[ "$(grep -cF "task $B: scan started" "$T/agent.log")" -eq 1 ] || fail "B ran twice"
expect_contains "$(cat "$R")" '"reports":[]'
pass "task B started before A's report was delivered; no task ran twice"

# A task id kept in reports.json is never run again: task X, handed out
# to an agent whose file says it received X already, is ignored; task Y,
# created after it, runs (so the poll that brought X was handled).
kill -TERM "$APID"
wait "$APID" || true
# A center restart forgets the stopped agent's long poll, which would
# otherwise take X.
stop_center
start_center "$T/vigild.conf" "$DATA"
X=$("$CTL" task create scan --agent "$AID" --path "$S" |
	sed -nE 's/^created task ([0-9a-f-]{36}) .*/\1/p')
[ -n "$X" ] || fail "task create X"
printf '{"version":1,"reports":[],"seen":["%s"]}\n' "$X" >"$R"
"$AGENT" run --data-dir "$T/a" >>"$T/agent.log" 2>&1 &
APID=$!
PIDS+=("$APID")
for i in $(seq 1 100); do
	[ "$(run_state "$X")" = dispatched ] && break
	sleep 0.1
done
Y=$("$CTL" task create scan --agent "$AID" --path "$S" |
	sed -nE 's/^created task ([0-9a-f-]{36}) .*/\1/p')
wait_log "task $Y: scan done"
grep -qF "task $X:" "$T/agent.log" && fail "task X ran although reports.json lists it"
[ "$(run_state "$X")" = dispatched ] || fail "X: $("$CTL" task show "$X")"
pass "task ids kept in reports.json are not run again after a restart"

# A damaged reports.json is set aside with a clear message, not fatal.
kill -TERM "$APID"
wait "$APID" || true
echo '{"reports": [' >"$R"
"$AGENT" run --data-dir "$T/a" >>"$T/agent.log" 2>&1 &
APID=$!
PIDS+=("$APID")
wait_log "reports.json set aside as $R.corrupt"
kill -0 "$APID" || fail "agent exited on a damaged reports.json"
pass "a damaged reports.json is set aside"
