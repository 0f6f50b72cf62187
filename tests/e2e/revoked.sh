#!/bin/bash
# A revoked agent is refused at the TLS handshake: its heartbeat never
# reaches the HTTP layer, and the failure is counted by reason.
. "$(dirname "$0")/lib.sh"

standard_center
TOKEN=$(new_token --uses 2)
export VIGIL_MACHINE_ID_FILE
VIGIL_MACHINE_ID_FILE=$(machine_id r1)
"$AGENT" enroll --server "https://127.0.0.1:$GW" --token "$TOKEN" \
	--ca "$PKI/ca.crt" --data-dir "$T/a" >/dev/null 2>&1 || fail enroll
"$AGENT" run --once --data-dir "$T/a" >/dev/null 2>&1 || fail "first heartbeat"
ID=$("$CTL" --json agent list | sed -nE 's/.*"id": "([0-9a-f-]{36})".*/\1/p' | head -1)

hb() {
	curl -sS -o /dev/null -w '%{http_code}' --cacert "$PKI/ca.crt" \
		--cert "$T/a/agent.crt" --key "$T/a/agent.key" \
		-H 'Content-Type: application/json' \
		-d "{\"facts\": {\"hostname\": \"h\", \"machine_id\": \"$(cat "$VIGIL_MACHINE_ID_FILE")\"}}" \
		"https://127.0.0.1:$GW/v1/heartbeat" 2>"$T/curl.err"
}
[ "$(hb)" = 200 ] || fail "heartbeat before revocation"
hb_requests() {
	api GET /metrics | sed -nE 's/^vigil_http_requests_total\{listener="gateway",route="heartbeat",status="[0-9]+"\} ([0-9]+).*/\1/p' |
		awk '{s += $1} END {print s + 0}'
}
before=$(hb_requests)
"$CTL" agent revoke "$ID" | grep -q revoked || fail revoke
code=$(hb) && fail "revoked certificate completed a request ($code)"
cat "$T/curl.err"
# With TLS 1.3 the client learns of the refusal on its first read; the
# center keeps the socket open long enough for that read to find the
# alert (http.c, http_linger), not a reset.
expect_contains "$(cat "$T/curl.err")" "alert certificate revoked"
wait_metric 'vigil_tls_handshake_failures_total{reason="revoked"}' 1
[ "$(hb_requests)" = "$before" ] || fail "the revoked agent's request reached HTTP"
pass "revoked agent refused at the handshake"

out=$("$AGENT" run --once --data-dir "$T/a" 2>&1) && fail "revoked agent ran"
echo "$out"
expect_contains "$out" "the center has revoked this agent's certificate; enroll again"
wait_metric 'vigil_tls_handshake_failures_total{reason="revoked"}' 2
"$CTL" agent list | grep -q revoked || fail "agent not listed as revoked"
out=$("$CTL" agent revoke "$ID" 2>&1) && fail "revoked twice"
pass "revocation counted and listed"
