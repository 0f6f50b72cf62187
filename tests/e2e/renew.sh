#!/bin/bash
# Certificates are renewed before expiry without operator help: with a
# 30-second lifetime the running agent must swap to a new certificate (new
# serial, same agent id) and keep checking in past the first one's expiry.
. "$(dirname "$0")/lib.sh"

standard_center "agent_cert_lifetime = 30s" "poll_interval = 1s"
TOKEN=$(new_token)
export VIGIL_MACHINE_ID_FILE
VIGIL_MACHINE_ID_FILE=$(machine_id n1)
"$AGENT" enroll --server "https://127.0.0.1:$GW" --token "$TOKEN" \
	--ca "$PKI/ca.crt" --data-dir "$T/a" >/dev/null 2>&1 || fail enroll
S1=$(openssl x509 -in "$T/a/agent.crt" -noout -serial)
END1=$(date -d "$(openssl x509 -in "$T/a/agent.crt" -noout -enddate | cut -d= -f2)" +%s)
"$AGENT" run --data-dir "$T/a" >"$T/agent.log" 2>&1 &
PIDS+=($!)
for i in $(seq 1 60); do
	S2=$(openssl x509 -in "$T/a/agent.crt" -noout -serial 2>/dev/null || echo "$S1")
	[ "$S2" != "$S1" ] && break
	sleep 1
done
[ "$S2" != "$S1" ] || fail "certificate not renewed"
openssl verify -CAfile "$PKI/ca.crt" "$T/a/agent.crt" >/dev/null || fail "renewed cert does not verify"
[ "$(stat -c %a "$T/a/agent.key")" = 600 ] || fail "renewed key not 0600"
pass "certificate renewed ($S1 -> $S2)"
[ "$(metric_value "$(api GET /metrics)" vigil_renewals_total)" -ge 1 ] ||
	fail "renewals: $(api GET /metrics | grep vigil_renewals_total)"

# Past the first certificate's expiry the agent still checks in: the
# heartbeat count grows after that moment, and the agent is online.
beats() { metric_value "$(api GET /metrics)" vigil_heartbeats_total; }
past_end1() { [ "$(date +%s)" -gt "$END1" ]; }
wait_for 60 "the first certificate's expiry" past_end1
B0=$(beats)
more_beats() { [ "$(beats)" -gt "$B0" ]; }
wait_for 20 "a heartbeat after the first certificate expired" more_beats
"$CTL" agent list | grep -q online || fail "agent not online after renewal"
[ "$(date +%s)" -lt "$(date -d "$(openssl x509 -in "$T/a/agent.crt" -noout -enddate | cut -d= -f2)" +%s)" ] ||
	fail "the renewed certificate expired too"
pass "agent checks in past the first certificate's expiry ($(beats) heartbeats)"
