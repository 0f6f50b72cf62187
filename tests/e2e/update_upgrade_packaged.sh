#!/bin/bash
# Agent upgrades and the Debian package (docs/updates.md, "Agents
# installed by the package"): a binary the vigil-agent package installed
# (the marker PREFIX/lib/vigil-agent/packaged, here in a temporary prefix;
# the .deb is not installed) is not replaced behind dpkg's back: the
# agent refuses the upgrade, reports why, and the rollout counts it as
# refused, not pending or failed. With --upgrade-packaged it upgrades.
# Under a service manager (--supervised, as the unit runs it) a watchdog
# that rolls back a broken binary restores the previous one and exits,
# leaving the restart to the service manager: no second agent outside the
# unit.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/updates.inc"
command -v jq >/dev/null || skip "jq missing (scripts/install-deps installs it)"
cd "$T"
PLAT=linux-$(uname -m)
NAME=agent/$PLAT/vigil-agent

P=$T/prefix
mkdir -p "$P/bin" "$P/lib/vigil-agent"
cp "$AGENT" "$P/bin/vigil-agent"
printf 'installed by the vigil-agent package\n' >"$P/lib/vigil-agent/packaged"
cp "$AGENT" v2-agent
printf '\nvigil upgrade test v2\n' >>v2-agent
printf '#!/bin/sh\nexit 3\n' >broken-agent
V1=$(sha256sum "$AGENT" | cut -c1-64)
V2=$(sha256sum v2-agent | cut -c1-64)

upd_repo "$T/repo" "$T/keys"
U publish --repo "$T/repo" --keys "$T/keys/online" --kind agent --platform "$PLAT" \
	--name "$NAME" --version 2.0 v2-agent >"$T/publish.log" 2>&1 ||
	fail "publish: $(cat "$T/publish.log")"
PKI=$T/pki
DATA=$T/data
make_pki "$PKI"
write_conf "$T/vigild.conf" "$PKI" "$DATA" "[updates]" \
	"root = $T/repo/1.root.json" "dir = $T/repo" "interval = 1h"
start_center "$T/vigild.conf" "$DATA"
served() { [ "$(upd_field '.served.roles.targets.version // 0')" = "$1" ]; }
wait_for 20 "the repository verified" served 1

TOKEN=$(new_token --label site=berlin)
export VIGIL_MACHINE_ID_FILE
VIGIL_MACHINE_ID_FILE=$(machine_id k1)
"$P/bin/vigil-agent" enroll --server "https://127.0.0.1:$GW" --token "$TOKEN" \
	--ca "$PKI/ca.crt" --data-dir "$T/a" >"$T/enroll.log" 2>&1 ||
	fail "enroll: $(cat "$T/enroll.log")"
start_agent() {
	"$P/bin/vigil-agent" run --data-dir "$T/a" --update-interval 1 "$@" >>"$T/agent.log" 2>&1 &
	APID=$!
	PIDS+=("$APID")
}
stop_agent() { kill "$APID" 2>/dev/null || true; wait "$APID" 2>/dev/null || true; }
start_agent
AID=$("$CTL" --json agent list | jq -r '.[0].id')
upd() { api GET "/api/v1/agents/$AID" | jq -r ".updates.$1 // \"\""; }
reports() { [ "$(upd binary)" = "$V1" ]; }
wait_for 20 "the agent's report of its binary" reports

ro() { "$CTL" --json update rollout list | jq -r --arg id "$1" ".[] | select(.id == \$id) | .$2"; }
"$CTL" update rollout start "$NAME" --label site=berlin --probation 20 >"$T/ro1.log" 2>&1 ||
	fail "rollout start: $(cat "$T/ro1.log")"
RO1=$(sed -nE 's/^rollout ([0-9a-f-]{36}): .*/\1/p' "$T/ro1.log")
refused() { [ "$(ro "$RO1" refused)" = 1 ]; }
wait_for 30 "the packaged agent's refusal ($("$CTL" update rollout list 2>&1))" refused
[ "$(upd upgrade_refused)" = "$V2" ] || fail "upgrade_refused: $(api GET "/api/v1/agents/$AID")"
expect_contains "$(upd upgrade_error)" "$P/bin/vigil-agent was installed by the vigil-agent package ($P/lib/vigil-agent/packaged): upgrade the package instead"
[ "$(ro "$RO1" pending)" = 0 ] && [ "$(ro "$RO1" failed)" = 0 ] && [ "$(ro "$RO1" state)" = active ] ||
	fail "rollout: $("$CTL" --json update rollout list)"
cmp "$P/bin/vigil-agent" "$AGENT" || fail "the packaged binary was replaced"
[ ! -e "$P/bin/vigil-agent.prev" ] && [ ! -e "$P/bin/vigil-agent.new" ] || fail "an upgrade was staged"
expect_contains "$("$CTL" update rollout list)" "REFUSED"
# Refused once, logged once, while the rollout keeps naming it.
seen=$(upd checked_at)
later() { [ "$(upd checked_at)" -gt "$seen" ]; }
wait_for 10 "a later check-in" later
[ "$(grep -c "refused: $P/bin/vigil-agent was installed by the vigil-agent package" "$T/agent.log")" = 1 ] ||
	fail "the refusal was not logged once: $(grep refused "$T/agent.log")"
pass "a packaged agent refuses the upgrade, says why; the rollout counts it refused"

# Another binary rolled out to it: refused as well (its own record), the
# agent still running.
cp "$AGENT" v21-agent
printf '\nvigil upgrade test v2.1\n' >>v21-agent
U publish --repo "$T/repo" --keys "$T/keys/online" --kind agent --platform "$PLAT" \
	--name "$NAME-21" --version 2.1 v21-agent >"$T/publish.log" 2>&1 ||
	fail "publish 2.1: $(cat "$T/publish.log")"
upd_refresh
served 2 || fail "2.1 not served: $(upd_status)"
"$CTL" update rollout start "$NAME-21" --label site=berlin --probation 20 >"$T/ro21.log" 2>&1 ||
	fail "rollout start: $(cat "$T/ro21.log")"
RO21=$(sed -nE 's/^rollout ([0-9a-f-]{36}): .*/\1/p' "$T/ro21.log")
refused21() { [ "$(ro "$RO21" refused)" = 1 ]; }
wait_for 30 "the refusal of 2.1 ($("$CTL" update rollout list 2>&1))" refused21
[ "$(upd upgrade_refused)" = "$(sha256sum v21-agent | cut -c1-64)" ] || fail "upgrade_refused: $(upd upgrade_refused)"
kill -0 "$APID" || fail "the agent died: $(tail -5 "$T/agent.log")"
"$CTL" update rollout stop "$RO21" >/dev/null || fail "rollout stop"
[ "$(grep -c "version 2.1 refused: $P/bin/vigil-agent was installed by the vigil-agent package" "$T/agent.log")" = 1 ] ||
	fail "2.1's refusal not logged once: $(grep refused "$T/agent.log")"
pass "a second binary rolled out to the packaged agent is refused too"

# Configured otherwise: --upgrade-packaged replaces it.
stop_agent
start_agent --upgrade-packaged --supervised
upgraded() { [ "$(ro "$RO1" upgraded)" = 1 ]; }
wait_for 30 "the agent upgraded with --upgrade-packaged" upgraded
cmp "$P/bin/vigil-agent" v2-agent || fail "the new binary is not in place"
[ "$(ro "$RO1" refused)" = 0 ] || fail "still counted refused"
pass "with --upgrade-packaged the packaged binary is upgraded"

# Supervised: a broken binary is rolled back by the watchdog, which then
# exits; the service manager (here: the test) starts the agent again.
U publish --repo "$T/repo" --keys "$T/keys/online" --kind agent --platform "$PLAT" \
	--name "$NAME" --version 3.0 broken-agent >"$T/publish.log" 2>&1 ||
	fail "publish 3.0: $(cat "$T/publish.log")"
upd_refresh
served 3 || fail "3.0 not served: $(upd_status)"
"$CTL" update rollout start "$NAME" --label site=berlin --max-failure-rate 0 --probation 15 \
	>"$T/ro2.log" 2>&1 || fail "rollout start: $(cat "$T/ro2.log")"
RO2=$(sed -nE 's/^rollout ([0-9a-f-]{36}): .*/\1/p' "$T/ro2.log")
rolled_back() { [ "$(jq -r .state "$T/a/upgrade-result.json" 2>/dev/null)" = rolled_back ]; }
wait_for 30 "the watchdog's rollback ($(tail -2 "$T/agent.log"))" rolled_back
cmp "$P/bin/vigil-agent" v2-agent || fail "the previous binary was not restored"
WD=$(jq -r .pid "$T/a/upgrade-result.json")
gone() { ! kill -0 "$WD" 2>/dev/null && ! kill -0 "$APID" 2>/dev/null; }
wait_for 10 "the watchdog ($WD) and the agent ($APID) to exit" gone
pgrep -f "$P/bin/vigil-agent run" >/dev/null && fail "an agent runs outside the service manager: $(pgrep -af "$P/bin/vigil-agent")"
start_agent --upgrade-packaged --supervised
halted() { [ "$(ro "$RO2" state)" = halted ]; }
wait_for 30 "the rollout of the broken binary halted" halted
expect_contains "$(upd upgrade_error)" "the new agent (version 3.0) exited before it checked in; rolled back to the previous binary"
[ "$(upd binary)" = "$V2" ] || fail "the restarted agent runs $(upd binary)"
pass "supervised: the watchdog restores the previous binary and exits; the restarted agent reports the rollback"
