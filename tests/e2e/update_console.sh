#!/bin/bash
# The console's Updates page (web/src/pages/updates.tsx) and the agent
# page's update state in a real chromium driven by playwright-core
# (web/tests/updates.mjs): a center mirroring a repository with an agent
# binary that exits at once; agent A (pinned root, label site=berlin) got
# that binary in a rollout, rolled it back and so halted the rollout;
# agent B pinned no root. A second rollout (to site=paris) is active. An
# operator sees the mirror (one agent without a root), the halted rollout
# with its progress and why, stops the active one with its button, sees
# each agent's update state (pinned or none) and B's page saying it takes
# no updates.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/updates.inc"

WEB=$SRC/web
[ -f "$WEB/dist/index.html" ] ||
	skip "web console not built (make console, after scripts/install-deps)"
[ -d "$WEB/node_modules/playwright-core" ] && [ -d "$WEB/node_modules/axe-core" ] ||
	skip "web/node_modules lacks playwright-core or axe-core (make console, after scripts/install-deps)"
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
[ -x "$CHROMIUM" ] || skip "chromium not installed (scripts/install-deps)"
command -v jq >/dev/null || skip "jq missing (scripts/install-deps installs it)"
cd "$T"
PLAT=linux-$(uname -m)
NAME=agent/$PLAT/vigil-agent

mkdir -p "$T/bin"
cp "$AGENT" "$T/bin/vigil-agent"
printf '#!/bin/sh\nexit 3\n' >broken-agent
upd_repo "$T/repo" "$T/keys"
U publish --repo "$T/repo" --keys "$T/keys/online" --kind agent --platform "$PLAT" \
	--name "$NAME" --version 3.0 broken-agent >"$T/publish.log" 2>&1 ||
	fail "publish: $(cat "$T/publish.log")"
PKI=$T/pki
DATA=$T/data
make_pki "$PKI"
write_conf "$T/vigild.conf" "$PKI" "$DATA" "[updates]" \
	"root = $T/repo/1.root.json" "dir = $T/repo" "interval = 1h"
sed -i "/^\[admin\]\$/a console_dir = $WEB/dist" "$T/vigild.conf"
start_center "$T/vigild.conf" "$DATA"
served() { [ "$(upd_field '.served.roles.targets.version // 0')" = 1 ]; }
wait_for 20 "the repository verified" served

export VIGIL_MACHINE_ID_FILE
VIGIL_MACHINE_ID_FILE=$(machine_id uc-a)
"$T/bin/vigil-agent" enroll --server "https://127.0.0.1:$GW" --token "$(new_token --label site=berlin)" \
	--ca "$PKI/ca.crt" --data-dir "$T/a" >"$T/enroll.log" 2>&1 || fail "enroll a: $(cat "$T/enroll.log")"
AID=$("$CTL" --json agent list | jq -r '.[0].id')
# B: its root removed before its first heartbeat, as an agent enrolled
# before [updates] was set.
VIGIL_MACHINE_ID_FILE=$(machine_id uc-b) "$AGENT" enroll --server "https://127.0.0.1:$GW" \
	--token "$(new_token --label site=other)" --ca "$PKI/ca.crt" --data-dir "$T/b" \
	>"$T/enroll.log" 2>&1 || fail "enroll b: $(cat "$T/enroll.log")"
rm "$T/b/update-root.json"
VIGIL_MACHINE_ID_FILE=$T/machine-id-uc-b "$AGENT" run --once --data-dir "$T/b" >"$T/b.log" 2>&1 ||
	fail "b: $(cat "$T/b.log")"
BID=$("$CTL" --json agent list | jq -r --arg a "$AID" '.[] | select(.id != $a) | .id')

"$T/bin/vigil-agent" run --data-dir "$T/a" --update-interval 1 >"$T/agent.log" 2>&1 &
PIDS+=("$!")
at_exit 'p=$(jq -r ".pid // empty" "$T/a/upgrade-result.json" 2>/dev/null); [ -n "$p" ] && kill "$p"'
ro() { "$CTL" --json update rollout list | jq -r --arg id "$1" ".[] | select(.id == \$id) | .$2"; }
"$CTL" update rollout start "$NAME" --label site=berlin --max-failure-rate 0 --probation 15 \
	>"$T/ro1.log" 2>&1 || fail "rollout start: $(cat "$T/ro1.log")"
RO1=$(sed -nE 's/^rollout ([0-9a-f-]{36}): .*/\1/p' "$T/ro1.log")
halted() { [ "$(ro "$RO1" state)" = halted ]; }
wait_for 40 "the rollout halted ($("$CTL" update rollout list 2>&1))" halted
"$CTL" update rollout start "$NAME" --label site=paris >"$T/ro2.log" 2>&1 ||
	fail "rollout start: $(cat "$T/ro2.log")"
RO2=$(sed -nE 's/^rollout ([0-9a-f-]{36}): .*/\1/p' "$T/ro2.log")
[ "$(upd_field .agents_without_root)" = 1 ] || fail "agents_without_root: $(upd_status)"

OP_PW=update-operator-pw-$RANDOM$RANDOM
printf '%s' "$OP_PW" | "$CTL" user add op --role operator --password-stdin >/dev/null ||
	fail "user add"
SPKI=$(openssl x509 -in "$PKI/server.crt" -pubkey -noout |
	openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64)
SHOTS=$BIN/console-shots-updates
rm -rf "$SHOTS"
BASE="https://127.0.0.1:$ADM" SPKI=$SPKI OP_PW=$OP_PW AGENT_B=$BID \
	SHOTS=$SHOTS CHROMIUM=$CHROMIUM \
	timeout 120 node "$WEB/tests/updates.mjs" 2>&1 | tee "$T/browser.log"
rc=${PIPESTATUS[0]}
[ "$rc" -eq 0 ] || fail "browser scenario failed (rc $rc); screenshots in $SHOTS"
[ "$(ro "$RO2" state)" = stopped ] || fail "the rollout stopped in the browser is $(ro "$RO2" state)"
pass "the Updates page: mirror, rollouts (halted with why, one stopped in the browser), agents' update state; screenshots in $SHOTS"
