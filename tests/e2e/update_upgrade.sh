#!/bin/bash
# Agent upgrades by signed update (docs/updates.md, "Agent upgrades"): an
# agent binary published with vigilctl and carried into the site is rolled
# out to the agents with a label; the agent checks it from its pinned
# root, stages it next to its binary, switches and checks in with the new
# one, which the rollout counts. A broken binary (it exits at once) rolled
# out next is switched to, fails to check in, and the agent rolls back to
# the previous binary by itself and reports why; the rollout halts.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/updates.inc"
command -v jq >/dev/null || skip "jq missing (scripts/install-deps installs it)"
cd "$T"
PLAT=linux-$(uname -m)
NAME=agent/$PLAT/vigil-agent

# The agent runs from a copy: the upgrade replaces the binary it runs.
mkdir -p "$T/bin"
cp "$AGENT" "$T/bin/vigil-agent"
cp "$AGENT" v2-agent
printf '\nvigil upgrade test v2\n' >>v2-agent # another SHA-256, same program
printf '#!/bin/sh\nexit 3\n' >broken-agent

upd_repo "$T/repo" "$T/keys"
cp "$T/repo/1.root.json" "$T/pinned-root.json"
U publish --repo "$T/repo" --keys "$T/keys/online" --kind agent --platform "$PLAT" \
	--name "$NAME" --version 2.0 v2-agent >"$T/publish.log" 2>&1 ||
	fail "publish: $(cat "$T/publish.log")"
carry() { # export the repository and import it at the site
	U export --repo "$T/repo" --out "$T/site.export" >/dev/null || fail "export"
	U import --in "$T/site.export" --repo "$T/site" --root "$T/pinned-root.json" \
		>"$T/import.log" 2>&1 || fail "import: $(cat "$T/import.log")"
}
carry

PKI=$T/pki
DATA=$T/data
make_pki "$PKI"
write_conf "$T/vigild.conf" "$PKI" "$DATA" "[updates]" \
	"root = $T/pinned-root.json" "dir = $T/site" "interval = 1h"
start_center "$T/vigild.conf" "$DATA"
served() { [ "$(upd_field '.served.roles.targets.version // 0')" = "$1" ]; }
wait_for 20 "the repository verified" served 1

TOKEN=$(new_token --label site=berlin)
export VIGIL_MACHINE_ID_FILE
VIGIL_MACHINE_ID_FILE=$(machine_id g1)
"$T/bin/vigil-agent" enroll --server "https://127.0.0.1:$GW" --token "$TOKEN" \
	--ca "$PKI/ca.crt" --data-dir "$T/a" >"$T/enroll.log" 2>&1 ||
	fail "enroll: $(cat "$T/enroll.log")"
"$T/bin/vigil-agent" run --data-dir "$T/a" --update-interval 1 >"$T/agent.log" 2>&1 &
PIDS+=("$!")
# The agent that comes back after a rollback runs under another process
# id, which it writes into its upgrade result.
at_exit 'p=$(jq -r ".pid // empty" "$T/a/upgrade-result.json" 2>/dev/null); [ -n "$p" ] && kill "$p"'
AID=$("$CTL" --json agent list | jq -r '.[0].id')
binary() { api GET "/api/v1/agents/$AID" | jq -r '.updates.binary // ""'; }
reports() { [ "$(binary)" = "$(sha256sum "$AGENT" | cut -c1-64)" ]; }
wait_for 20 "the agent's report of its binary" reports

# A rollout to another label leaves it alone.
# ro ID FIELD: a field of one rollout (vigilctl update rollout list)
ro() { "$CTL" --json update rollout list | jq -r --arg id "$1" ".[] | select(.id == \$id) | .$2"; }
"$CTL" update rollout start "$NAME" --label site=paris >"$T/ro0.log" 2>&1 ||
	fail "rollout start: $(cat "$T/ro0.log")"
RO0=$(sed -nE 's/^rollout ([0-9a-f-]{36}): .*/\1/p' "$T/ro0.log")
[ "$(ro "$RO0" chosen)" = 0 ] || fail "paris chose the berlin agent"
"$CTL" update rollout stop "$RO0" >/dev/null || fail "rollout stop"

# Version 2 to the berlin agents: switched to and proven.
"$CTL" update rollout start "$NAME" --label site=berlin --percent 100 --probation 20 \
	>"$T/ro1.log" 2>&1 || fail "rollout start: $(cat "$T/ro1.log")"
expect_contains "$(cat "$T/ro1.log")" "version 2.0 ($PLAT)"
RO1=$(sed -nE 's/^rollout ([0-9a-f-]{36}): .*/\1/p' "$T/ro1.log")
upgraded() { [ "$(ro "$RO1" upgraded)" = 1 ]; }
wait_for 30 "the agent upgraded" upgraded
cmp "$T/bin/vigil-agent" v2-agent || fail "the new binary is not in place"
cmp "$T/bin/vigil-agent.prev" "$AGENT" || fail "the previous binary was not kept"
[ "$(binary)" = "$(sha256sum v2-agent | cut -c1-64)" ] || fail "the agent does not report the new binary"
[ ! -e "$T/a/upgrade.probation" ] || fail "the probation did not end"
expect_contains "$(cat "$T/agent.log")" "checked in; the upgrade is done"
pass "an agent upgraded by a staged rollout (label), proven by its check-in"

# A broken binary: switched to, it never checks in; the agent rolls back.
U publish --repo "$T/repo" --keys "$T/keys/online" --kind agent --platform "$PLAT" \
	--name "$NAME" --version 3.0 broken-agent >"$T/publish.log" 2>&1 ||
	fail "publish 3.0: $(cat "$T/publish.log")"
carry
upd_refresh
served 2 || fail "3.0 not served: $(upd_status)"
"$CTL" update rollout start "$NAME" --label site=berlin --max-failure-rate 0 --probation 15 \
	>"$T/ro2.log" 2>&1 || fail "rollout start: $(cat "$T/ro2.log")"
RO2=$(sed -nE 's/^rollout ([0-9a-f-]{36}): .*/\1/p' "$T/ro2.log")
halted() { [ "$(ro "$RO2" state)" = halted ]; }
wait_for 30 "the rollout of the broken binary halted ($("$CTL" update rollout list 2>&1))" halted
cmp "$T/bin/vigil-agent" v2-agent || fail "the previous binary was not restored"
[ "$(ro "$RO2" failed)" = 1 ] || fail "failure not counted"
expect_contains "$("$CTL" update rollout list)" "rolled back"
expect_contains "$(api GET "/api/v1/agents/$AID" | jq -r .updates.upgrade_error)" \
	"the new agent (version 3.0) exited before it checked in; rolled back to the previous binary"
online() { [ "$(binary)" = "$(sha256sum v2-agent | cut -c1-64)" ] && "$CTL" agent list | grep -q online; }
wait_for 20 "the rolled-back agent checking in" online
pass "a broken agent binary rolled back by the agent itself; the rollout halted"

# A binary that runs but never checks in: stopped at the end of its
# probation and rolled back; the agent never tries it again.
printf '#!/bin/sh\nexec sleep 300\n' >silent-agent
U publish --repo "$T/repo" --keys "$T/keys/online" --kind agent --platform "$PLAT" \
	--name "$NAME" --version 4.0 silent-agent >"$T/publish.log" 2>&1 ||
	fail "publish 4.0: $(cat "$T/publish.log")"
carry
upd_refresh
served 3 || fail "4.0 not served: $(upd_status)"
"$CTL" update rollout start "$NAME" --label site=berlin --max-failure-rate 100 --probation 5 \
	>"$T/ro3.log" 2>&1 || fail "rollout start: $(cat "$T/ro3.log")"
RO3=$(sed -nE 's/^rollout ([0-9a-f-]{36}): .*/\1/p' "$T/ro3.log")
failed3() { [ "$(ro "$RO3" failed)" = 1 ]; }
wait_for 30 "the silent binary rolled back ($(tail -3 "$T/agent.log"))" failed3
expect_contains "$(api GET "/api/v1/agents/$AID" | jq -r .updates.upgrade_error)" \
	"the new agent (version 4.0) did not check in within its probation"
cmp "$T/bin/vigil-agent" v2-agent || fail "the previous binary was not restored"
[ "$(ro "$RO3" state)" = active ] || fail "halted below its failure rate"
wait_for 20 "the rolled-back agent checking in" online
# Tried once, never again: the agent's next checks in with the same
# binary (the rollout keeps naming 4.0).
n=$(grep -c "staged over" "$T/agent.log")
seen=$(api GET "/api/v1/agents/$AID" | jq -r .updates.checked_at)
later() { [ "$(api GET "/api/v1/agents/$AID" | jq -r .updates.checked_at)" -gt "$seen" ]; }
wait_for 10 "a later check-in" later
[ "$(grep -c "staged over" "$T/agent.log")" = "$n" ] || fail "the rolled-back binary was tried again"
pass "a binary that never checks in stopped at the end of its probation, rolled back, not retried"
