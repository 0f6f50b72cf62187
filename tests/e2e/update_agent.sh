#!/bin/bash
# Agents and signed updates (docs/updates.md, "Agents"): an air-gapped
# site imports an export made with vigilctl into the center's update
# directory; the center verifies it and makes its rule set its own; an
# enrolled agent pins the update root at enrollment, verifies the
# repository itself from that root, applies the rule set, reports the
# versions it runs (agent listing), and a scan with the rule set finds a
# file only that rule matches. Then the center serves a repository of
# another root: the agent refuses it, says why in its heartbeat, keeps its
# rule sets, and a scan with the other root's rule set is refused.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/updates.inc"
command -v jq >/dev/null || skip "jq missing (scripts/install-deps installs it)"
cd "$T"

# The publisher, offline: a rule set nobody added by hand.
upd_repo "$T/repo" "$T/keys"
cp "$T/repo/1.root.json" "$T/pinned-root.json"
printf 'rule only_by_update { meta: score = 80 strings: $a = "VIGIL-UPDATE-MARKER" condition: $a }\n' >upd.yar
upd_publish "$T/repo" "$T/keys" rules/upd.yar 2026.12.07 upd.yar
U export --repo "$T/repo" --out site.vigil-update >"$T/export.log" 2>&1 ||
	fail "export: $(cat "$T/export.log")"
U import --in site.vigil-update --repo "$T/site" --root "$T/pinned-root.json" \
	>"$T/import.log" 2>&1 || fail "import: $(cat "$T/import.log")"

PKI=$T/pki
DATA=$T/data
make_pki "$PKI"
write_conf "$T/vigild.conf" "$PKI" "$DATA" "[updates]" \
	"root = $T/pinned-root.json" "dir = $T/site" "interval = 1h"
start_center "$T/vigild.conf" "$DATA"
served() { [ "$(upd_field '.served.roles.targets.version // 0')" = 1 ]; }
wait_for 20 "the imported repository verified ($(upd_status))" served
[ "$(upd_field .mode)" = import ] || fail "mode: $(upd_status)"
has_rules() { "$CTL" --json rules list | jq -e '.[] | select(.name == "upd.yar" and .source == "update")' >/dev/null; }
wait_for 10 "the rule set upd.yar" has_rules
pass "an imported export verified by the center; its rule set is the center's"

TOKEN=$(new_token)
export VIGIL_MACHINE_ID_FILE
VIGIL_MACHINE_ID_FILE=$(machine_id u1)
"$AGENT" enroll --server "https://127.0.0.1:$GW" --token "$TOKEN" \
	--ca "$PKI/ca.crt" --data-dir "$T/a" >"$T/enroll.log" 2>&1 ||
	fail "enroll: $(cat "$T/enroll.log")"
cmp "$T/a/update-root.json" "$T/pinned-root.json" || fail "update root not pinned"
"$AGENT" run --once --data-dir "$T/a" >"$T/once.log" 2>&1 || fail "run --once: $(cat "$T/once.log")"
expect_contains "$(cat "$T/once.log")" "verified from the pinned root: root v1, targets v1, 1 rule set(s) applied"
AID=$("$CTL" --json agent list | jq -r '.[0].id // .items[0].id')
agent_updates() { api GET "/api/v1/agents/$AID" | jq -c .updates; }
[ "$(agent_updates | jq -r '.targets')" = 1 ] || fail "agent updates: $(agent_updates)"
[ "$(agent_updates | jq -r '.rules[0].name + " " + .rules[0].version')" = "rules/upd.yar 2026.12.07" ] ||
	fail "agent rule versions: $(agent_updates)"
"$CTL" --json agent list | jq -e '.. | objects | select(.updates?.targets == 1)' >/dev/null ||
	fail "the agent listing does not show the versions"
"$CTL" agent list | grep -q "t1 (1 rule sets)" || fail "agent list: $("$CTL" agent list)"
pass "the agent verified the repository from its pinned root and reports the versions it runs"

# A scan with the rule set that arrived by update finds the marker.
mkdir -p "$T/scan"
printf 'x VIGIL-UPDATE-MARKER x\n' >"$T/scan/hit.txt"
"$AGENT" run --data-dir "$T/a" >"$T/agent.log" 2>&1 &
APID=$!
PIDS+=("$APID")
out=$("$CTL" task create scan --agent "$AID" --path "$T/scan" --rules upd.yar --timeout 5m)
TID=$(sed -nE 's/^created task ([0-9a-f-]{36}) .*/\1/p' <<<"$out")
[ -n "$TID" ] || fail "task create: $out"
timeout 40 "$CTL" task watch "$TID" --interval 1 >"$T/watch.log" 2>&1 ||
	fail "scan: $(cat "$T/watch.log")"
finding() { api GET "/api/v1/findings?task=$TID" | grep -q only_by_update; }
wait_for 10 "the finding of rule only_by_update" finding
expect_contains "$(api GET "/api/v1/findings?task=$TID")" hit.txt
pass "a finding from a rule that only arrived by update"
kill "$APID"
wait "$APID" 2>/dev/null || true

# The center now serves a repository of another root (a compromised or
# misconfigured center): the agent refuses it.
stop_center
sed -i "0,/^port = 0\$/s//port = $GW/" "$T/vigild.conf" # the agent's center
upd_repo "$T/evil" "$T/evil-keys"
printf 'rule evil_rule { condition: true }\n' >evil.yar
upd_publish "$T/evil" "$T/evil-keys" rules/evil.yar 9.9 evil.yar
U sign --repo "$T/evil" --keys "$T/evil-keys/online" >/dev/null
sed -i "s|^root = .*|root = $T/evil/1.root.json|; s|^dir = .*|dir = $T/evil|" "$T/vigild.conf"
start_center "$T/vigild.conf" "$DATA"
served2() { [ "$(upd_field ".served.roles.timestamp.version // 0")" = 2 ]; }
wait_for 20 "the other repository served" served2
"$AGENT" run --once --data-dir "$T/a" >"$T/once2.log" 2>&1 || true
expect_contains "$(cat "$T/once2.log")" "timestamp.json refused (threshold)"
expect_contains "$(cat "$T/once2.log")" "keeping the rule sets applied before"
expect_contains "$(agent_updates | jq -r .error)" "timestamp.json refused"
[ "$(agent_updates | jq -r '.rules[0].sha256')" = "$(sha256sum upd.yar | cut -c1-64)" ] ||
	fail "the agent's rule sets changed: $(agent_updates)"
cmp "$T/a/update-root.json" "$T/pinned-root.json" || fail "the pinned root was replaced"
"$CTL" agent list | grep -q "t1 (1 rule sets), refused" || fail "agent list: $("$CTL" agent list)"
pass "metadata of another root refused by the agent although its center serves it"

has_evil() { "$CTL" --json rules list | jq -e '.[] | select(.name == "evil.yar")' >/dev/null; }
wait_for 10 "the center's rule set evil.yar" has_evil
"$AGENT" run --data-dir "$T/a" >"$T/agent2.log" 2>&1 &
PIDS+=("$!")
out=$("$CTL" task create scan --agent "$AID" --path "$T/scan" --rules evil.yar --timeout 5m)
TID=$(sed -nE 's/^created task ([0-9a-f-]{36}) .*/\1/p' <<<"$out")
timeout 40 "$CTL" task watch "$TID" --interval 1 >"$T/watch2.log" 2>&1 || true
expect_contains "$(api GET "/api/v1/tasks/$TID")" "not among those this agent verified from its pinned update root"
api GET "/api/v1/findings?task=$TID" | grep -q evil_rule && fail "the forged rule set ran"
pass "a scan with the other root's rule set refused by the agent"
