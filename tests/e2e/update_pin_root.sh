#!/bin/bash
# Agents without a pinned update root (docs/updates.md, "Agents without a
# pinned root"): an agent enrolled before its center had [updates] root
# pinned nothing and takes no updates. The center shows it (the agent
# listing's update_root, "no root" in vigilctl agent list, the mirror's
# agents_without_root); `vigil-agent pin-root` on the host pins a root
# from a file, refusing a forged one, a file of another
# SHA-256 than the operator expects, and any root that would replace the
# pinned one other than its successor; the agent then verifies and
# applies the updates.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/updates.inc"
command -v jq >/dev/null || skip "jq missing (scripts/install-deps installs it)"
cd "$T"

upd_repo "$T/repo" "$T/keys"
printf 'rule pinned_later { strings: $a = "PIN-ROOT-MARKER" condition: $a }\n' >p.yar
upd_publish "$T/repo" "$T/keys" rules/p.yar 1.0 p.yar

# A center without [updates]: the agent enrolls and pins nothing.
standard_center
TOKEN=$(new_token)
export VIGIL_MACHINE_ID_FILE
VIGIL_MACHINE_ID_FILE=$(machine_id p1)
"$AGENT" enroll --server "https://127.0.0.1:$GW" --token "$TOKEN" \
	--ca "$PKI/ca.crt" --data-dir "$T/a" >"$T/enroll.log" 2>&1 ||
	fail "enroll: $(cat "$T/enroll.log")"
[ -e "$T/a/update-root.json" ] && fail "an update root was pinned without [updates]"

# The center gets [updates] (the same gateway port: the agent's center).
stop_center
sed -i "0,/^port = 0\$/s//port = $GW/" "$T/vigild.conf"
sed -i "s|^\[gateway\]|[updates]\nroot = $T/repo/1.root.json\ndir = $T/repo\ninterval = 1h\n[gateway]|" "$T/vigild.conf"
start_center "$T/vigild.conf" "$DATA"
served() { [ "$(upd_field '.served.roles.targets.version // 0')" = 1 ]; }
wait_for 20 "the repository verified ($(upd_status))" served
"$AGENT" run --once --data-dir "$T/a" >"$T/once.log" 2>&1 || fail "run --once: $(cat "$T/once.log")"
grep -q "verified from the pinned root" "$T/once.log" && fail "an agent without a root took updates"
AID=$("$CTL" --json agent list | jq -r '.[0].id')
[ "$(api GET "/api/v1/agents/$AID" | jq -r .update_root)" = false ] ||
	fail "update_root: $(api GET "/api/v1/agents/$AID")"
"$CTL" agent list | grep "$AID" | grep -q "no root" || fail "agent list: $("$CTL" agent list)"
[ "$(upd_field .agents_without_root)" = 1 ] || fail "agents_without_root: $(upd_status)"
expect_contains "$("$CTL" update mirror)" "agents:    1 without a pinned update root take no updates"
pass "an agent without a pinned root is shown (update_root false, \"no root\", agents_without_root 1)"

# Refused: a forged root (a signed field changed), a file of another
# SHA-256 than expected; nothing is pinned.
jq '.signed.expires = "2099-01-01T00:00:00Z"' "$T/repo/1.root.json" >forged.json
"$AGENT" pin-root --file forged.json --data-dir "$T/a" >"$T/pin.log" 2>&1 &&
	fail "a forged root was pinned"
expect_contains "$(cat "$T/pin.log")" "forged.json is not a root this agent can pin (bad-signature)"
"$AGENT" pin-root --file "$T/repo/1.root.json" --sha256 "$(printf x | sha256sum | cut -c1-64)" \
	--data-dir "$T/a" >"$T/pin.log" 2>&1 && fail "a root of another SHA-256 was pinned"
expect_contains "$(cat "$T/pin.log")" "has SHA-256 $(sha256sum "$T/repo/1.root.json" | cut -c1-64), not the"
U keygen --dir "$T/old-keys" >/dev/null 2>&1 || fail "keygen"
U root --repo "$T/old" --root-key "$T/old-keys/root.key" --targets-key "$T/old-keys/targets.pub" \
	--snapshot-key "$T/old-keys/snapshot.pub" --timestamp-key "$T/old-keys/timestamp.pub" \
	>/dev/null 2>&1 || fail "another repository's root"
[ -e "$T/a/update-root.json" ] && fail "something was pinned"
pass "pin-root refuses a forged root and a file of another SHA-256; nothing pinned"

# Pinned from the file the operator means; again: a no-op.
"$AGENT" pin-root --file "$T/repo/1.root.json" --sha256 "$(sha256sum "$T/repo/1.root.json" | cut -c1-64)" \
	--data-dir "$T/a" >"$T/pin.log" 2>&1 || fail "pin-root: $(cat "$T/pin.log")"
expect_contains "$(cat "$T/pin.log")" "pinned update root version 1"
cmp "$T/a/update-root.json" "$T/repo/1.root.json" || fail "pinned other bytes"
[ "$(stat -c %a "$T/a/update-root.json")" = 644 ] || fail "mode $(stat -c %a "$T/a/update-root.json")"
"$AGENT" pin-root --file "$T/repo/1.root.json" --data-dir "$T/a" >"$T/pin.log" 2>&1 ||
	fail "pin-root again: $(cat "$T/pin.log")"
expect_contains "$(cat "$T/pin.log")" "is pinned already"
"$AGENT" run --once --data-dir "$T/a" >"$T/once.log" 2>&1 || fail "run --once: $(cat "$T/once.log")"
expect_contains "$(cat "$T/once.log")" "verified from the pinned root: root v1, targets v1, 1 rule set(s) applied"
[ "$(api GET "/api/v1/agents/$AID" | jq -r .update_root)" = true ] ||
	fail "update_root: $(api GET "/api/v1/agents/$AID")"
[ "$(upd_field .agents_without_root)" = 0 ] || fail "agents_without_root: $(upd_status)"
"$CTL" agent list | grep "$AID" | grep -q "t1 (1 rule sets)" || fail "agent list: $("$CTL" agent list)"
pass "pin-root pinned the root; the agent then verified and applied the update"

# A pinned root is replaced only by its successor: another root (of
# version 1, or a later one of another repository) is refused.
"$AGENT" pin-root --file "$T/old/1.root.json" --data-dir "$T/a" >"$T/pin.log" 2>&1 &&
	fail "another root replaced the pinned one"
expect_contains "$(cat "$T/pin.log")" "already pins root version 1; $T/old/1.root.json (version 1) is not its successor (threshold"
U root --repo "$T/old" --root-key "$T/old-keys/root.key" >/dev/null 2>&1 || fail "old root 2"
"$AGENT" pin-root --file "$T/old/2.root.json" --data-dir "$T/a" >"$T/pin.log" 2>&1 &&
	fail "another repository's root 2 replaced the pinned one"
expect_contains "$(cat "$T/pin.log")" "is not its successor (threshold"
cmp "$T/a/update-root.json" "$T/repo/1.root.json" || fail "the pinned root changed"
U root --repo "$T/repo" --root-key "$T/keys/root.key" >"$T/root2.log" 2>&1 || fail "root 2: $(cat "$T/root2.log")"
"$AGENT" pin-root --file "$T/repo/2.root.json" --data-dir "$T/a" >"$T/pin.log" 2>&1 ||
	fail "the successor was refused: $(cat "$T/pin.log")"
expect_contains "$(cat "$T/pin.log")" "pinned update root version 2"
cmp "$T/a/update-root.json" "$T/repo/2.root.json" || fail "the successor was not pinned"
pass "a pinned root is replaced only by its successor"
