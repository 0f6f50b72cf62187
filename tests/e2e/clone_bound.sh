#!/bin/bash
# A certificate is no enrollment token: copies of one agent's data
# directory on other machines re-enroll with its certificate at most
# [gateway] clone_limit times (default 1); further copies are refused with
# a clear message and must use a token. Every clone, made or refused,
# leaves a notice and an audit entry. clone_policy = token refuses all.
. "$(dirname "$0")/lib.sh"

standard_center
TOKEN=$(new_token)
export VIGIL_MACHINE_ID_FILE
VIGIL_MACHINE_ID_FILE=$(machine_id orig)
"$AGENT" enroll --server "https://127.0.0.1:$GW" --token "$TOKEN" \
	--ca "$PKI/ca.crt" --data-dir "$T/orig" >"$T/enroll.log" 2>&1 ||
	fail "enroll: $(cat "$T/enroll.log")"
"$AGENT" run --once --data-dir "$T/orig" >/dev/null 2>&1 || fail "orig heartbeat"
ORIG=$(db "SELECT id FROM agents")
db "UPDATE agents SET labels = '{\"site\":\"hq\"}' WHERE id = '$ORIG'"

for i in 1 2 3 4 5; do
	cp -a "$T/orig" "$T/copy$i"
	VIGIL_MACHINE_ID_FILE=$(machine_id "copy$i")
	"$AGENT" run --once --data-dir "$T/copy$i" >"$T/copy$i.log" 2>&1 || true
done
n=$(db "SELECT count(*) FROM agents WHERE cloned_from = '$ORIG'")
[ "$n" = 1 ] || fail "$n of 5 copies became agents with the original's certificate, want 1"
[ "$(db "SELECT count(*) FROM agents")" = 2 ] || fail "agents: $(db "SELECT id, cloned_from FROM agents")"
grep -q "clone_refused\|clone_limit" "$T/copy5.log" ||
	fail "the refused copy was not told why: $(cat "$T/copy5.log")"
pass "one clone enrolled, four refused"

n=$(db "SELECT count(*) FROM notices WHERE kind = 'clone_enrolled' AND agent_id = '$ORIG'")
[ "$n" = 1 ] || fail "clone_enrolled notices: $n"
n=$(db "SELECT count(*) FROM notices WHERE kind = 'clone_refused' AND agent_id = '$ORIG'")
[ "$n" -ge 4 ] || fail "clone_refused notices: $n, want 4 or more"
n=$(db "SELECT count(*) FROM audit WHERE action = 'agent.clone' AND who = 'agent:$ORIG' AND status = 201")
[ "$n" = 1 ] || fail "audit entries of the clone made: $n"
n=$(db "SELECT count(*) FROM audit WHERE action = 'agent.clone' AND who = 'agent:$ORIG' AND status = 403")
[ "$n" -ge 4 ] || fail "audit entries of clones refused: $n"
pass "a notice and an audit entry for every clone, made or refused"

# The clone's own certificate counts against the same original.
CLONE=$(db "SELECT id FROM agents WHERE cloned_from = '$ORIG'")
for i in 1 2 3 4 5; do
	if [ "$(grep -o "$CLONE" "$T/copy$i/state.json" 2>/dev/null | head -1)" = "$CLONE" ]; then
		cp -a "$T/copy$i" "$T/grand"
	fi
done
[ -d "$T/grand" ] || fail "no copy holds the clone's identity"
VIGIL_MACHINE_ID_FILE=$(machine_id grand)
"$AGENT" run --once --data-dir "$T/grand" >/dev/null 2>&1 || true
n=$(db "SELECT count(*) FROM agents")
[ "$n" = 2 ] || fail "a clone of the clone enrolled: $n agents"
pass "a clone of the clone is refused too"

# clone_policy = token: none.
stop_center
GW_PORT=$GW write_conf "$T/vigild.conf" "$PKI" "$DATA" "[gateway]" "clone_policy = token"
start_center "$T/vigild.conf" "$DATA"
cp -a "$T/orig" "$T/copy6"
VIGIL_MACHINE_ID_FILE=$(machine_id copy6)
"$AGENT" run --once --data-dir "$T/copy6" >"$T/copy6.log" 2>&1 || true
n=$(db "SELECT count(*) FROM agents")
[ "$n" = 2 ] || fail "clone_policy = token let a clone enroll: $n agents"
n=$(db "SELECT count(*) FROM audit WHERE action = 'agent.clone' AND status = 403
	AND error LIKE '%clone_policy = token%'")
[ "$n" = 1 ] || fail "not refused for clone_policy = token: $(db "SELECT error FROM audit WHERE action = 'agent.clone'")"
pass "clone_policy = token refuses every clone"
