#!/bin/bash
# Events are never lost and never stored twice: kill -9 the agent while it
# sends, kill -9 the center while it ingests, stop the center for a while,
# and corrupt a spool segment. After each, the center holds the agent's
# events with sequence numbers 1..N exactly once (COUNT = MAX, MIN = 1),
# where N is the last seq the agent's spool issued (read from its
# spool.state after a clean stop, so a loss at the spool's tail shows), and
# a corrupt record is reported by a gap event instead of vanishing. The
# agent's kill is proven to land mid-batch: events were being stored, the
# scan was not over, and the spool held events the center had not acked.
. "$(dirname "$0")/lib.sh"

NFILES=${VIGIL_LOSS_FILES:-3000}
standard_center "poll_interval = 2s"
TOKEN=$(new_token --label os=linux)
export VIGIL_MACHINE_ID_FILE
VIGIL_MACHINE_ID_FILE=$(machine_id l1)
"$AGENT" enroll --server "https://127.0.0.1:$GW" --token "$TOKEN" \
	--ca "$PKI/ca.crt" --data-dir "$T/a" >/dev/null 2>&1 || fail enroll
AID=$("$CTL" --json agent list | sed -nE 's/.*"id": "([0-9a-f-]{36})".*/\1/p' | head -1)
GW_PORT=$GW ADM_PORT=$ADM write_conf "$T/vigild.conf" "$PKI" "$DATA" "poll_interval = 2s"

S=$T/files
mkdir -p "$S"
for i in $(seq 1 "$NFILES"); do printf 'x VIGIL-LOSS-MARKER %d\n' "$i" >"$S/f$i"; done
printf 'rule loss_marker { meta: score = 90 strings: $m = "VIGIL-LOSS-MARKER" condition: $m }\n' >"$T/loss.yar"
"$CTL" rules add loss "$T/loss.yar" >/dev/null || fail "rules add"

start_agent() {
	"$AGENT" run --data-dir "$T/a" >>"$T/agent.log" 2>&1 &
	APID=$!
	PIDS+=("$APID")
}
q() { db "$1"; }
# Waits until the center's event count for the agent stops changing and
# the agent's spool has nothing left to send.
settle() {
	local prev=-1 n i
	for i in $(seq 1 150); do
		n=$(q "SELECT COUNT(*) FROM events WHERE agent_id = '$AID'")
		if [ "$n" = "$prev" ] && [ "$n" -gt 0 ]; then
			return 0
		fi
		prev=$n
		sleep 1
	done
	return 1
}
check_exactly_once() {
	local r
	r=$(q "SELECT COUNT(*), MIN(seq), MAX(seq), COUNT(DISTINCT seq) FROM events WHERE agent_id = '$AID'")
	echo "events (count|min|max|distinct): $r"
	IFS='|' read -r c mn mx d <<<"$r"
	[ "$mn" = 1 ] || fail "$1: first event missing (min seq $mn)"
	[ "$c" = "$mx" ] || fail "$1: $c events stored for seq 1..$mx: lost or duplicated"
	[ "$c" = "$d" ] || fail "$1: duplicates"
}
# spool_field DIR NAME: a number from the agent's spool.state (saved at
# every acknowledgement and at a clean stop).
spool_field() {
	sed -nE "s/.*\"$2\": ?([0-9]+).*/\1/p" "$1/spool/spool.state"
}
# check_tail WHAT DIR: stops the agent cleanly, reads the last seq its
# spool issued, restarts it and waits until every seq up to that one is
# stored exactly once: an event lost at the spool's tail fails here.
check_tail() {
	local issued r
	kill -TERM "$APID"
	wait "$APID" 2>/dev/null || true
	issued=$(($(spool_field "$2" next_seq) - 1))
	[ "$issued" -gt 0 ] || fail "$1: no seq issued?"
	"$AGENT" run --data-dir "$2" >>"$T/agent.log" 2>&1 &
	APID=$!
	PIDS+=("$APID")
	tail_in() {
		r=$(q "SELECT COUNT(*), COUNT(DISTINCT seq) FROM events WHERE agent_id = '$AID' AND seq <= $issued")
		[ "$r" = "$issued|$issued" ]
	}
	wait_for 120 "$1: seqs 1..$issued stored (have $(q "SELECT COUNT(*) FROM events WHERE agent_id = '$AID' AND seq <= $issued"))" tail_in
	echo "$1: all $issued seqs the spool issued are stored"
}
findings() { q "SELECT COUNT(*) FROM events WHERE agent_id = '$AID' AND task_id = '$1' AND type = 'finding'"; }
scan_task() {
	"$CTL" task create scan --agent "$AID" --path "$S" --param files_per_sec="$1" \
		--timeout 10m | sed -nE 's/^created task ([0-9a-f-]{36}) .*/\1/p'
}
# wait_findings TASK N: waits until N findings of TASK are stored, as long
# as their count keeps growing (a scan under ASan on a loaded machine
# can take minutes; a stall of 60 s, or 15 minutes in all, is a failure).
wait_findings() {
	local n last=-1 since=$SECONDS start=$SECONDS
	while [ $((SECONDS - start)) -lt 900 ]; do
		n=$(findings "$1")
		[ "$n" -ge "$2" ] && return 0
		if [ "$n" != "$last" ]; then
			last=$n
			since=$SECONDS
		fi
		[ $((SECONDS - since)) -lt 60 ] || return 1
		sleep 1
	done
	return 1
}

# 1. kill -9 the agent while it scans and sends. Proven mid-batch below;
# when the kill landed between batches (the scan slower than the sending,
# on a loaded machine: everything issued was stored and acked), the agent
# is started again and killed during a new scan, up to four times.
start_agent
for attempt in 1 2 3 4; do
	T1=$(scan_task 1000)
	# Kill once findings are being stored, with the scan not over.
	flowing() { [ "$(findings "$T1")" -ge 50 ]; }
	wait_for 60 "findings of scan $attempt being stored" flowing
	kill -9 "$APID"
	wait "$APID" 2>/dev/null || true
	n1=$(findings "$T1")
	m1=$(q "SELECT MAX(seq) FROM events WHERE agent_id = '$AID'")
	# The state is the one saved at the last ack the agent recorded.
	issued=$(($(spool_field "$T/a" next_seq) - 1))
	acked=$(spool_field "$T/a" acked)
	echo "at kill $attempt: $n1 findings stored (max seq $m1); spool at its last ack: issued $issued, acked $acked"
	[ "$n1" -lt "$NFILES" ] || fail "the scan was over before the kill"
	# Mid-batch: the center had stored events whose ack the agent never
	# recorded, or the spool held events the center did not have yet.
	if [ "$m1" -gt "$acked" ] || [ "$issued" -gt "$m1" ]; then
		break
	fi
	[ "$attempt" -lt 4 ] ||
		fail "the kill did not land mid-batch in 4 tries (last: stored up to $m1, acked $acked, issued $issued)"
	start_agent
done
start_agent
settle || fail "events did not settle after the agent restart"
check_exactly_once "agent kill -9"
check_tail "agent kill -9" "$T/a"
pass "agent killed mid-batch: every spooled event stored exactly once"

# 2. kill -9 the center while it ingests; the scan goes on.
T2=$(scan_task 1000)
sleep 1.5
kill -9 "$CENTER_PID"
wait "$CENTER_PID" 2>/dev/null || true
sleep 2
start_center "$T/vigild.conf" "$DATA"
wait_findings "$T2" "$NFILES" || fail "only $(findings "$T2") of $NFILES findings after a center crash"
settle || true
[ "$(findings "$T2")" = "$NFILES" ] || fail "$(findings "$T2") findings stored for $NFILES files"
check_exactly_once "center kill -9"
check_tail "center kill -9" "$T/a"
pass "center killed mid-ingest: all $NFILES findings stored exactly once"

# 3. The center down for a while: the agent spools, then delivers.
T3=$(scan_task 2000)
sleep 0.5
stop_center
sleep 6
start_center "$T/vigild.conf" "$DATA"
wait_findings "$T3" "$NFILES" || fail "only $(findings "$T3") of $NFILES findings after an outage"
settle || true
[ "$(findings "$T3")" = "$NFILES" ] || fail "$(findings "$T3") findings for $NFILES files"
check_exactly_once "center outage"
pass "center outage: all $NFILES findings delivered after the restart"
# The run's final report is retried until the center is back.
timeout 60 "$CTL" task watch "$T3" --interval 1 >/dev/null ||
	fail "task not reported done after the outage: $("$CTL" task show "$T3")"
check_tail "center outage" "$T/a"

# 4. A corrupt spool segment: the rest is delivered, the loss reported.
# A second agent of its own, so nothing earlier is queued before its scan.
kill -TERM "$APID"
wait "$APID" 2>/dev/null || true
VIGIL_MACHINE_ID_FILE=$(machine_id l2)
"$AGENT" enroll --server "https://127.0.0.1:$GW" --token "$(new_token)" \
	--ca "$PKI/ca.crt" --data-dir "$T/b" >/dev/null 2>&1 || fail "enroll 2"
AID=$("$CTL" --json agent list | grep -o '"id": "[0-9a-f-]*"' | grep -v "$AID" | head -1 | cut -d'"' -f4)
"$AGENT" run --data-dir "$T/b" >>"$T/agent.log" 2>&1 &
APID=$!
PIDS+=("$APID")
sleep 2
T4=$(scan_task 0)
# Stop the center once the agent has the rules and is scanning.
for i in $(seq 1 100); do
	ls "$T/b/rules/"* >/dev/null 2>&1 && break
	sleep 0.1
done
stop_center
# The scan finishes into the spool (each finding is fsync'd; slow under
# ASan on a busy machine).
for i in $(seq 1 360); do
	grep -q "task $T4: scan done" "$T/agent.log" && break
	sleep 0.5
done
grep -q "task $T4: scan done" "$T/agent.log" || fail "the scan did not finish"
kill -TERM "$APID"
wait "$APID" 2>/dev/null || true
# The newest segment ends with this scan's findings, none delivered yet.
seg=$(ls "$T/b/spool"/seg-*.log | sort | tail -1)
size=$(stat -c %s "$seg")
[ "$size" -gt 262144 ] || fail "newest spool segment too small to corrupt ($size bytes)"
printf '\xff%.0s' $(seq 1 64) | dd of="$seg" bs=1 seek=$((size - 131072)) conv=notrunc status=none
start_center "$T/vigild.conf" "$DATA"
"$AGENT" run --data-dir "$T/b" >>"$T/agent.log" 2>&1 &
APID=$!
PIDS+=("$APID")
settle || fail "events did not settle after the corruption"
gaps=$(q "SELECT COUNT(*) FROM events WHERE agent_id = '$AID' AND type = 'gap'")
[ "$gaps" -ge 1 ] || fail "no gap event for the corrupt record"
lost=$(q "SELECT data FROM events WHERE agent_id = '$AID' AND type = 'gap'" | grep -o '"lost":[0-9]*' | cut -d: -f2 | awk '{s += $1} END {print s + 0}')
f4=$(findings "$T4")
echo "corrupt segment: $f4 findings delivered, $lost reported lost"
[ "$f4" -lt "$NFILES" ] || fail "nothing was lost to the corruption?"
[ $((f4 + lost)) -ge "$NFILES" ] || fail "$f4 delivered + $lost reported < $NFILES: a silent loss"
grep -q "corrupt record" "$T/agent.log" || fail "the agent did not report the corruption"
r=$(q "SELECT COUNT(*), MAX(seq) FROM events WHERE agent_id = '$AID'")
echo "second agent (count|max): $r; lost $lost"
[ $(( ${r%%|*} + lost )) -eq "${r##*|}" ] || fail "stored + reported lost != issued"
pass "corrupt spool segment skipped with a report, the rest delivered"
