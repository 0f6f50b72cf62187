#!/bin/bash
# require_approval: enrollment waits as a pending request until an
# administrator approves (agent gets its certificate) or rejects it.
. "$(dirname "$0")/lib.sh"

standard_center "require_approval = yes"
TOKEN=$(new_token --uses 5)

export VIGIL_MACHINE_ID_FILE
VIGIL_MACHINE_ID_FILE=$(machine_id p1)
out=$("$AGENT" enroll --server "https://127.0.0.1:$GW" --token "$TOKEN" \
	--ca "$PKI/ca.crt" --data-dir "$T/a1" 2>&1) || fail "enroll: $out"
expect_contains "$out" "pending"
pass "enrollment pending"

pend=$("$CTL" --json agent pending)
REQ=$(echo "$pend" | sed -nE 's/.*"id": "([0-9a-f-]{36})".*/\1/p' | head -1)
[ -n "$REQ" ] || fail "no pending request: $pend"
[ "$("$CTL" --json agent list | grep -c '"id"' || true)" -eq 0 ] ||
	fail "a pending agent is listed as enrolled"
"$AGENT" run --once --data-dir "$T/a1" >"$T/run-pending.log" 2>&1 &&
	fail "a pending agent completed a heartbeat"
pass "pending agent has no identity yet"

"$CTL" agent approve "$REQ" | grep -q approved || fail "approve"
"$AGENT" run --once --data-dir "$T/a1" >"$T/run1.log" 2>&1 ||
	fail "run after approval: $(cat "$T/run1.log")"
"$CTL" agent list | grep -q online || fail "approved agent not online"
pass "approved agent enrolled and online"

VIGIL_MACHINE_ID_FILE=$(machine_id p2)
"$AGENT" enroll --server "https://127.0.0.1:$GW" --token "$TOKEN" \
	--ca "$PKI/ca.crt" --data-dir "$T/a2" >/dev/null 2>&1 || fail "enroll 2"
REQ2=$("$CTL" --json agent pending | sed -nE 's/.*"id": "([0-9a-f-]{36})".*/\1/p' | head -1)
"$CTL" agent reject "$REQ2" | grep -q rejected || fail "reject"
out=$("$AGENT" run --once --data-dir "$T/a2" 2>&1) && fail "rejected agent ran"
expect_contains "$out" "rejected"
pass "rejected request refused with a message"

# Approving twice or an unknown id: 404 with a message.
out=$("$CTL" agent approve "$REQ" 2>&1) && fail "approved twice"
expect_contains "$out" "no pending enrollment request"
pass "double approval refused"
