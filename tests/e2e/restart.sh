#!/bin/bash
# Center restart: a running agent keeps retrying while the center is down
# and checks in again once it is back; SIGHUP reloads the configuration;
# the store survives the restart.
. "$(dirname "$0")/lib.sh"

standard_center
TOKEN=$(new_token)
export VIGIL_MACHINE_ID_FILE
VIGIL_MACHINE_ID_FILE=$(machine_id s1)
"$AGENT" enroll --server "https://127.0.0.1:$GW" --token "$TOKEN" \
	--ca "$PKI/ca.crt" --data-dir "$T/a" >/dev/null 2>&1 || fail enroll
"$AGENT" run --data-dir "$T/a" >"$T/agent.log" 2>&1 &
APID=$!
PIDS+=("$APID")

hb_count() {
	api GET /metrics | sed -nE 's/^vigil_heartbeats_total ([0-9.]+)$/\1/p' | cut -d. -f1
}
wait_hb() {
	local i
	for i in $(seq 1 100); do
		[ "${1:-0}" -lt "$(hb_count || echo 0)" ] && return 0
		sleep 0.2
	done
	return 1
}
wait_hb 0 || fail "no heartbeat from the running agent"
pass "agent checking in"

# Restart on the same ports.
GW_PORT=$GW ADM_PORT=$ADM write_conf "$T/vigild.conf" "$PKI" "$DATA"
tries() { grep -c "next attempt in" "$T/agent.log" || true; }
N0=$(tries)
stop_center
retried() { [ "$(tries)" -ge $((N0 + 2)) ]; }
wait_for 60 "the agent to retry twice while the center is down" retried
kill -0 "$APID" || fail "agent exited while the center was down"
start_center "$T/vigild.conf" "$DATA"
wait_hb 0 || fail "agent did not come back after the restart"
"$CTL" agent list | grep -q online || fail "agent not online after restart"
pass "agent reconnected after a center restart"

# SIGHUP: a bad config is refused and the old one kept; a good one applied.
cp "$T/vigild.conf" "$T/good.conf"
echo "nonsense = 1" >>"$T/vigild.conf"
kill -HUP "$CENTER_PID"
wait_for 10 "the bad reload to be reported" grep -q "reload failed" "$T/vigild.log"
kill -0 "$CENTER_PID" || fail "center died on a bad reload"
sed 's/^poll_interval = .*/poll_interval = 7s/' "$T/good.conf" >"$T/vigild.conf"
kill -HUP "$CENTER_PID"
wait_for 10 "the reload" grep -q "configuration reloaded" "$T/vigild.log"
out=$(curl -sS --cacert "$PKI/ca.crt" --cert "$T/a/agent.crt" --key "$T/a/agent.key" \
	-d "{\"facts\": {\"hostname\": \"h\", \"machine_id\": \"$(cat "$VIGIL_MACHINE_ID_FILE")\"}}" \
	"https://127.0.0.1:$GW/v1/heartbeat")
expect_contains "$out" '"poll_interval":7'
pass "SIGHUP reload"

kill -TERM "$APID"
wait "$APID" || fail "agent did not stop cleanly on SIGTERM"
pass "agent stops on SIGTERM"
