#!/bin/bash
# A cloned data directory (same identity, another machine id) is detected
# and reported by the center; the clone re-enrolls with its own identity
# (not while its audit entry cannot be written) and the original keeps
# working.
. "$(dirname "$0")/lib.sh"

standard_center
TOKEN=$(new_token)
export VIGIL_MACHINE_ID_FILE
VIGIL_MACHINE_ID_FILE=$(machine_id c1)
"$AGENT" enroll --server "https://127.0.0.1:$GW" --token "$TOKEN" \
	--ca "$PKI/ca.crt" --data-dir "$T/orig" >/dev/null 2>&1 || fail enroll
"$AGENT" run --once --data-dir "$T/orig" >/dev/null 2>&1 || fail "orig heartbeat"
ORIG=$("$CTL" --json agent list | sed -nE 's/.*"id": "([0-9a-f-]{36})".*/\1/p')

cp -a "$T/orig" "$T/clone"
VIGIL_MACHINE_ID_FILE=$(machine_id c2)
# First with its audit entry refused: the re-enrollment is not made.
db_refuse_audit agent.clone
"$AGENT" run --once --data-dir "$T/clone" >"$T/clone0.log" 2>&1 || true
[ "$(db "SELECT COUNT(*) FROM agents")" = 1 ] ||
	fail "clone enrolled without its audit entry: $(cat "$T/clone0.log")"
[ "$(db "SELECT COUNT(*) FROM notices WHERE kind = 'clone_enrolled'")" = 0 ] ||
	fail "notice of a re-enrollment that was not made"
grep -q "audit: cannot record agent.clone" "$T/vigild.log" ||
	fail "the center's log does not say why"
db_allow_audit
pass "a re-enrollment whose audit entry cannot be written is not made"
rc=0
"$AGENT" run --once --data-dir "$T/clone" >"$T/clone.log" 2>&1 || rc=$?
cat "$T/clone.log"
[ "$rc" -eq 0 ] || fail "the clone's run exited $rc"
grep -qi "clone" "$T/clone.log" || fail "agent did not report the clone"
n=$("$CTL" --json agent list | grep -c '"id"')
[ "$n" -eq 2 ] || fail "expected the clone to re-enroll as a second agent, got $n"
new=$("$CTL" --json agent list | grep -o '"cloned_from": "[0-9a-f-]*"' | head -1)
expect_contains "$new" "$ORIG"
notices=$(api GET /api/v1/notices)
expect_contains "$notices" "clone_detected"
pass "clone detected, reported and re-enrolled"

"$AGENT" run --once --data-dir "$T/clone" >/dev/null 2>&1 || fail "clone with its own identity"
VIGIL_MACHINE_ID_FILE=$T/machine-id-c1
"$AGENT" run --once --data-dir "$T/orig" >/dev/null 2>&1 || fail "original after clone"
[ "$(grep -o '"agent_id"[^,]*' "$T/orig/state.json" 2>/dev/null || echo x)" != \
	"$(grep -o '"agent_id"[^,]*' "$T/clone/state.json" 2>/dev/null || echo y)" ] ||
	fail "clone still shares the identity"
pass "original and clone both work with distinct identities"
