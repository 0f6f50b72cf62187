#!/bin/bash
# Heartbeats that bring nothing new but the time are not written one by
# one: the center notes them and writes every agent's time at once each
# [center] seen_flush (seen.c). Checked from the store itself: a second
# heartbeat leaves last_seen alone until the flush (or a graceful stop)
# writes it, and so does the first one after a restart; the pending count
# is published; with a short interval the time arrives on its own.
. "$(dirname "$0")/lib.sh"

standard_center "seen_flush = 60s" "poll_interval = 60s"
TOKEN=$(new_token)
export VIGIL_MACHINE_ID_FILE
VIGIL_MACHINE_ID_FILE=$(machine_id s1)
"$AGENT" enroll --server "https://127.0.0.1:$GW" --token "$TOKEN" \
	--ca "$PKI/ca.crt" --data-dir "$T/agent" >"$T/enroll.log" 2>&1 ||
	fail "enroll: $(cat "$T/enroll.log")"
AID=$(db "SELECT id FROM agents")

# beat: one heartbeat by the agent.
beat() {
	"$AGENT" run --once --data-dir "$T/agent" >"$T/run.log" 2>&1 ||
		fail "heartbeat: $(cat "$T/run.log")"
}
# next_second T: returns once the clock has passed second T.
next_second() {
	while [ "$(date +%s)" -le "$1" ]; do sleep 0.05; done
}
seen() { db "SELECT last_seen FROM agents WHERE id = '$AID'"; }
pending() {
	metric_value "$(api GET /metrics)" vigil_last_seen_pending
}

beat
t1=$(seen)
[ -n "$t1" ] || fail "the first heartbeat was not written"
pass "the first heartbeat since the start is written at once ($t1)"

next_second "$t1"
beat
t2=$(date +%s)
[ "$(seen)" = "$t1" ] ||
	fail "the second heartbeat was written at once: $(seen), not $t1"
[ "$(pending)" = 1 ] || fail "pending check-ins: '$(pending)', not 1"
pass "a heartbeat with the same facts waits for the flush (1 pending)"

stop_center
s=$(seen)
[ "$s" -ge "$((t2 - 1))" ] && [ "$s" -gt "$t1" ] ||
	fail "after a graceful stop last_seen is $s (first $t1, second ~$t2)"
pass "a graceful stop writes the pending time ($s)"

# After a restart the center knows no agent's facts from memory: the
# first heartbeat is compared with the agent's row, and one that brings
# nothing new but the time waits for the flush too (a fleet coming back
# after a restart costs no write per agent).
GW_PORT=$GW ADM_PORT=$ADM write_conf "$T/vigild.conf" "$PKI" "$DATA" \
	"seen_flush = 60s" "poll_interval = 60s"
start_center "$T/vigild.conf" "$DATA"
next_second "$s"
beat
[ "$(seen)" = "$s" ] ||
	fail "the first heartbeat after a restart was written at once: $(seen), not $s"
[ "$(pending)" = 1 ] || fail "pending after a restart: '$(pending)', not 1"
pass "the first heartbeat after a restart, same facts, waits for the flush"
stop_center
s=$(seen)

GW_PORT=$GW ADM_PORT=$ADM write_conf "$T/vigild.conf" "$PKI" "$DATA" \
	"seen_flush = 1s" "poll_interval = 60s"
start_center "$T/vigild.conf" "$DATA"
beat
t3=$(seen)
next_second "$t3"
beat
t4=$(date +%s)
flushed() { [ "$(seen)" -ge "$((t4 - 1))" ] && [ "$(seen)" -gt "$t3" ] &&
	[ "$(pending)" = 0 ]; }
wait_for 10 "the flush to write last_seen" flushed
m=$(api GET /metrics)
[ "$(metric_value "$m" vigil_last_seen_flushes_total)" -ge 1 ] ||
	fail "flushes: $(metric_value "$m" vigil_last_seen_flushes_total)"
"$CTL" agent list | grep -q online || fail "agent not online: $("$CTL" agent list)"
pass "with seen_flush = 1s the time is written within the interval"

# A flush interval longer than the agents' poll interval would show agents
# that check in on time as offline: it is held to poll_interval.
stop_center
GW_PORT=$GW ADM_PORT=$ADM write_conf "$T/vigild.conf" "$PKI" "$DATA" \
	"seen_flush = 30s" "poll_interval = 2s"
start_center "$T/vigild.conf" "$DATA"
grep -q "seen_flush (30 s) is longer than poll_interval (2 s)" "$T/vigild.log" ||
	fail "no warning about seen_flush > poll_interval"
for i in 1 2 3 4 5; do
	beat
	t=$(date +%s)
	next_second "$((t + 1))"
done
"$CTL" --json agent list --state online | grep -q "\"$AID\"" ||
	fail "an agent checking in every 2 s is not online: $("$CTL" agent list)"
pass "seen_flush longer than poll_interval is held to it (agent online)"
