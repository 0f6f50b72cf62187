#!/bin/bash
# The agent's task poller honours the center's Retry-After: a center that
# holds all the polls it may ([gateway] max_long_polls) answers a further
# poll 503 with Retry-After: 10, and the refused agent polls again after
# about 10 s (+-10 %), not after its own 1, 2, 4 s backoff: a fleet cut off
# at one instant must come back when and as spread as the center asks.
. "$(dirname "$0")/lib.sh"

PKI=$T/pki
DATA=$T/data
make_pki "$PKI"
write_conf "$T/base.conf" "$PKI" "$DATA"
sed "0,/^\[gateway\]/s//[gateway]\nmax_long_polls = 1/" "$T/base.conf" >"$T/vigild.conf"
start_center "$T/vigild.conf" "$DATA"

TOKEN=$(new_token --uses 2)
export VIGIL_MACHINE_ID_FILE
for a in a b; do
	VIGIL_MACHINE_ID_FILE=$(machine_id "poll-$a")
	"$AGENT" enroll --server "https://127.0.0.1:$GW" --token "$TOKEN" \
		--ca "$PKI/ca.crt" --data-dir "$T/$a" >"$T/enroll-$a.log" 2>&1 ||
		fail "enroll $a: $(cat "$T/enroll-$a.log")"
done

VIGIL_MACHINE_ID_FILE=$T/machine-id-poll-a "$AGENT" run --data-dir "$T/a" >"$T/agent-a.log" 2>&1 &
PIDS+=("$!")
wait_for 30 "agent a's poll held" metric_at_least 'vigil_long_polls' 1

refused() { metric_value "$(api GET /metrics)" 'vigil_long_polls_refused_total'; }
VIGIL_MACHINE_ID_FILE=$T/machine-id-poll-b "$AGENT" -v run --data-dir "$T/b" >"$T/agent-b.log" 2>&1 &
PIDS+=("$!")
wait_for 30 "agent b's poll refused" metric_at_least 'vigil_long_polls_refused_total' 1
t1=$(date +%s.%N)
n1=$(refused)
wait_for 40 "agent b's next poll" metric_at_least 'vigil_long_polls_refused_total' $((n1 + 1))
t2=$(date +%s.%N)
gap=$(awk -v a="$t1" -v b="$t2" 'BEGIN { printf "%.1f", b - a }')
# 10 s less 10 % jitter is 9 s; the first refusal is seen up to a poll of
# /metrics late, which only shortens the gap measured here.
awk -v g="$gap" 'BEGIN { exit !(g >= 8) }' ||
	fail "agent b polled again ${gap}s after a 503 with Retry-After: 10: $(grep -i 'busy\|poll' "$T/agent-b.log" | tail -5)"
grep -q 'center busy; polling again in \(9\|10\|11\)\.[0-9] s' "$T/agent-b.log" ||
	fail "agent b's log: $(grep -i 'busy' "$T/agent-b.log" | tail -3)"
pass "a refused poll is tried again after the center's Retry-After (${gap}s for 10 s)"
