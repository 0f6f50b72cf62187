#!/bin/bash
# Enrollment with a token (CA pinned by file and by fingerprint), heartbeat,
# `vigilctl agent list` showing the agent online, `vigil-agent check`, the
# key stored 0600 and never sent, and the metrics that count it all.
. "$(dirname "$0")/lib.sh"

standard_center
TOKEN=$(new_token --uses 2 --label site=berlin --label os=linux)
[ -n "$TOKEN" ] || fail "no token"

export VIGIL_MACHINE_ID_FILE
VIGIL_MACHINE_ID_FILE=$(machine_id a1)
"$AGENT" enroll --server "https://127.0.0.1:$GW" --token "$TOKEN" \
	--ca "$PKI/ca.crt" --data-dir "$T/agent1" >"$T/enroll1.log" 2>&1 ||
	fail "enroll with --ca: $(cat "$T/enroll1.log")"
pass "enrolled with --ca"
[ "$(stat -c %a "$T/agent1/agent.key")" = 600 ] || fail "agent.key not 0600"
pass "agent key is 0600"

FP=$("$CTL" pki show --dir "$PKI" --json | sed -nE 's/.*"fingerprint_sha256": "([0-9a-f:]+)".*/\1/p' | head -1)
[ -n "$FP" ] || fail "no CA fingerprint from pki show"
VIGIL_MACHINE_ID_FILE=$(machine_id a2)
"$AGENT" enroll --server "https://127.0.0.1:$GW" --token "$TOKEN" \
	--ca-fingerprint "$FP" --data-dir "$T/agent2" >"$T/enroll2.log" 2>&1 ||
	fail "enroll with --ca-fingerprint: $(cat "$T/enroll2.log")"
pass "enrolled with --ca-fingerprint"

# A wrong fingerprint stops before anything is sent.
out=$("$AGENT" enroll --server "https://127.0.0.1:$GW" --token "$TOKEN" \
	--ca-fingerprint "$(printf '%064d' 0)" --data-dir "$T/agent3" 2>&1) &&
	fail "enroll with a wrong fingerprint succeeded"
expect_contains "$out" "fingerprint"
pass "wrong fingerprint refused"

VIGIL_MACHINE_ID_FILE=$T/machine-id-a1
"$AGENT" run --once --data-dir "$T/agent1" >"$T/run1.log" 2>&1 ||
	fail "heartbeat: $(cat "$T/run1.log")"
pass "heartbeat accepted"

# The heartbeat's reply and the addresses as stored, byte for byte (the
# center writes both without jansson when nothing needs escaping).
A1=$(db "SELECT id FROM agents WHERE machine_id = '$(cat "$T/machine-id-a1")'")
MID1=$(cat "$T/machine-id-a1")
hb=$(curl -sS --cacert "$PKI/ca.crt" --cert "$T/agent1/agent.crt" \
	--key "$T/agent1/agent.key" -H 'Content-Type: application/json' \
	-d '{"facts": {"hostname": "h1", "machine_id": "'"$MID1"'", "ips": ["10.1.2.3", "FE80::1"], "macs": ["AA:BB:CC:DD:EE:FF"]}}' \
	"https://127.0.0.1:$GW/v1/heartbeat")
[[ "$hb" =~ ^\{\"agent_id\":\"$A1\",\"time\":[0-9]+,\"poll_interval\":2,\"renew\":false\}$ ]] ||
	fail "heartbeat reply: $hb"
[ "$(db "SELECT ips || ' ' || macs FROM agents WHERE id = '$A1'")" = \
	'["10.1.2.3","FE80::1"] ["aa:bb:cc:dd:ee:ff"]' ] ||
	fail "stored: $(db "SELECT ips, macs FROM agents WHERE id = '$A1'")"
pass "heartbeat reply and stored addresses are compact JSON"
"$AGENT" run --once --data-dir "$T/agent1" >"$T/run1.log" 2>&1 ||
	fail "heartbeat: $(cat "$T/run1.log")"

list=$("$CTL" agent list)
echo "$list"
expect_contains "$list" "online"
expect_contains "$list" "site=berlin"
n=$("$CTL" --json agent list | grep -c '"id"')
[ "$n" -eq 2 ] || fail "expected 2 agents, got $n"
online=$("$CTL" --json agent list --state online | grep -c '"id"' || true)
[ "$online" -eq 1 ] || fail "expected 1 online agent, got $online"
pass "vigilctl agent list shows the agent online"

# The center never saw a private key: only the CSR went out.
[ "$(db "SELECT count(*) FROM certs")" -ge 2 ] || fail "no certificates stored"
db_lacks "PRIVATE KEY" "a private key reached the center"
pass "no private key in the center's store"

"$AGENT" check --data-dir "$T/agent1" >"$T/check.log" 2>&1 ||
	fail "check: $(cat "$T/check.log")"
cat "$T/check.log"
pass "vigil-agent check"

m=$(api GET /metrics)
expect_contains "$m" 'vigil_enrollments_total{result="enrolled"} 2'
[ "$(metric_value "$m" vigil_heartbeats_total)" -ge 1 ] ||
	fail "heartbeats: $(metric_value "$m" vigil_heartbeats_total)"
expect_contains "$m" 'route="heartbeat",status="200"'
expect_contains "$m" 'vigil_agents{state="online"} 1'
expect_contains "$m" 'vigil_store_seconds_count'
pass "metrics"

# Agents by version (the dashboard's card), as the store holds them; text
# an agent sent that is no version label counts as "other", and a version
# no agent reports any more drops to 0.
V=$(db "SELECT agent_version FROM agents WHERE status = 'active' GROUP BY 1")
[ "$(wc -l <<<"$V")" = 1 ] && [ -n "$V" ] || fail "versions in the store: '$V'"
expect_contains "$m" "vigil_agent_versions{version=\"$V\"} 2"
db "UPDATE agents SET agent_version = 'x\"} 9' WHERE id = (SELECT MIN(id) FROM agents)"
m=$(api GET /metrics)
expect_contains "$m" "vigil_agent_versions{version=\"$V\"} 1"
expect_contains "$m" 'vigil_agent_versions{version="other"} 1'
db "UPDATE agents SET agent_version = '9.9.9'"
m=$(api GET /metrics)
expect_contains "$m" 'vigil_agent_versions{version="9.9.9"} 2'
expect_contains "$m" "vigil_agent_versions{version=\"$V\"} 0"
expect_contains "$m" 'vigil_agent_versions{version="other"} 0'
pass "metrics: agents by version, odd text as other, gone versions at 0"

# Agents by state, as agent_state has them: online is active and seen
# within three poll intervals, every other status counts as revoked,
# also one seen a moment ago.
agents_are() { # agents_are ONLINE OFFLINE REVOKED
	m=$(api GET /metrics)
	expect_contains "$m" "vigil_agents{state=\"online\"} $1"
	expect_contains "$m" "vigil_agents{state=\"offline\"} $2"
	expect_contains "$m" "vigil_agents{state=\"revoked\"} $3"
}
agents_are 1 1 0
db "UPDATE agents SET status = 'revoked', last_seen = $(date +%s) WHERE id <> '$A1'"
agents_are 1 0 1
pass "metrics: agents online, offline and revoked (a revoked agent seen lately is not online)"

# Ping needs no certificate.
[ "$(gw_status GET /v1/ping)" = 200 ] || fail "ping"
expect_contains "$(cat "$T/gw-body")" '"service":"vigild"'
# Heartbeat needs one.
[ "$(gw_status POST /v1/heartbeat -d '{}')" = 401 ] || fail "heartbeat without cert"
pass "ping open, heartbeat needs a certificate"
