#!/bin/bash
# vigilctl's task, rules, events and samples commands against a real
# center, with curl acting as the enrolled agent: rule sets checked on
# upload (the compiler's message shown), tasks created for a label group
# and for one agent, shown while running, watched until done (exit 0) or
# failed (exit 1), cancelled; templates and schedules; events and samples
# searched; --json output parses; bad options exit 2 with a message.
. "$(dirname "$0")/lib.sh"

standard_center
TOKEN=$(new_token --uses 1 --label os=linux --label site=berlin)
export VIGIL_MACHINE_ID_FILE
VIGIL_MACHINE_ID_FILE=$(machine_id ct1)
"$AGENT" enroll --server "https://127.0.0.1:$GW" --token "$TOKEN" \
	--ca "$PKI/ca.crt" --data-dir "$T/a" >/dev/null 2>&1 || fail enroll
AID=$("$CTL" --json agent list | sed -nE 's/.*"id": "([0-9a-f-]{36})".*/\1/p' | head -1)
[ -n "$AID" ] || fail "no agent id"

agent() { # agent METHOD PATH [curl args]
	local m=$1 p=$2
	shift 2
	curl -sS --cacert "$PKI/ca.crt" --cert "$T/a/agent.crt" --key "$T/a/agent.key" \
		-X "$m" "https://127.0.0.1:$GW$p" "$@"
}

command -v python3 >/dev/null 2>&1 && python3 -c '' 2>/dev/null ||
	skip "no python3 (scripts/install-deps installs it) to parse --json output"

# json_ok WHAT: standard input is JSON.
json_ok() {
	python3 -c 'import json,sys; json.load(sys.stdin)' ||
		fail "$1: --json output does not parse"
}

# usage_err WHAT ARGS...: vigilctl ARGS exits 2 with a message on stderr.
usage_err() {
	local what=$1 rc=0 err
	shift
	"$CTL" "$@" >"$T/out" 2>"$T/err" || rc=$?
	err=$(cat "$T/err")
	[ "$rc" = 2 ] || fail "$what: exit $rc, not 2 ($err)"
	grep -q "vigilctl\|usage" "$T/err" || fail "$what: no message"
}

# --- rule sets ---------------------------------------------------------------

echo 'rule vigil_test { strings: $a = "VIGIL-TEST-MARKER" condition: $a }' >"$T/test.yar"
out=$("$CTL" rules add test "$T/test.yar") || fail "rules add test: $out"
expect_contains "$out" "added yara rule set test"
expect_contains "$out" "$(sha256sum "$T/test.yar" | cut -d' ' -f1)"
echo 'rule x { condition: nonsense }' >"$T/bad.yara"
rc=0
out=$("$CTL" rules add bad "$T/bad.yara" 2>&1) || rc=$?
[ "$rc" = 1 ] || fail "broken rule set: exit $rc: $out"
expect_contains "$out" "refused"
expect_contains "$out" "nonsense"
printf 'sha256;%064d;80;test\n' 0 >"$T/iocs.txt"
out=$("$CTL" rules add iocs "$T/iocs.txt") || fail "rules add iocs: $out"
expect_contains "$out" "added ioc rule set iocs"
# --kind wins over the extension.
printf 'sha256;%064d;70;more\n' 1 >"$T/more.yar"
out=$("$CTL" rules add more "$T/more.yar" --kind ioc) || fail "--kind ioc: $out"
expect_contains "$out" "added ioc rule set more"
out=$("$CTL" rules list)
expect_contains "$out" "ID (SHA-256)"
expect_contains "$out" "test"
expect_contains "$out" "iocs"
grep -qw bad <<<"$out" && fail "refused rule set listed"
"$CTL" --json rules list | json_ok "rules list"
"$CTL" rules remove more >/dev/null || fail "rules remove"
grep -qw more <<<"$("$CTL" rules list)" && fail "removed rule set listed"
"$CTL" rules remove more 2>"$T/err" && fail "removing twice succeeded"
expect_contains "$(cat "$T/err")" "no rule set more"
"$CTL" rules add x "$T/missing.yar" 2>"$T/err" && fail "missing file accepted"
expect_contains "$(cat "$T/err")" "missing.yar"
pass "rules add (yara, broken yara refused with the compiler's message, ioc), list, remove"

# --- tasks -------------------------------------------------------------------

out=$("$CTL" task create scan --target os=linux,site=berlin --path /tmp \
	--exclude '*.iso' --rules test --param max_size=1000000 \
	--param one_fs=true --timeout 1h --expires 2h) || fail "task create: $out"
expect_contains "$out" "for 1 agent"
TID=$(sed -nE 's/^created task ([0-9a-f-]{36}) .*/\1/p' <<<"$out")
[ -n "$TID" ] || fail "no task id in: $out"
out=$("$CTL" --json task create inventory --agent "$AID")
json_ok "task create" <<<"$out"
T2=$(sed -nE 's/.*"id": "([0-9a-f-]{36})".*/\1/p' <<<"$out")
[ -n "$T2" ] || fail "no task id in: $out"
out=$("$CTL" task create inventory --target os=windows 2>&1) && fail "target matching nothing accepted"
expect_contains "$out" "matches no"

out=$("$CTL" task list)
expect_contains "$out" "QUEUED"
expect_contains "$out" "$TID"
expect_contains "$out" "os=linux,site=berlin"
expect_contains "$out" "agent $AID"
"$CTL" --json task list | json_ok "task list"
out=$("$CTL" task show "$TID")
expect_contains "$out" "kind:      scan"
expect_contains "$out" '"paths":["/tmp"]'
expect_contains "$out" '"rules":["test"]'
expect_contains "$out" '"max_size":1000000'
expect_contains "$out" '"one_fs":true'
expect_contains "$out" "1 queued"
expect_contains "$out" "$AID"
"$CTL" --json task show "$TID" | json_ok "task show"
pass "task create (--target, --agent), list, show"

# The agent picks both up and reports progress on the scan.
polled=$(agent GET "/v1/tasks?wait=0")
expect_contains "$polled" "$TID"
expect_contains "$polled" "$T2"
agent POST "/v1/tasks/$TID" -d '{"state": "running", "progress": {"files": 10}}' >/dev/null
out=$("$CTL" task show "$TID")
expect_contains "$out" "running"
expect_contains "$out" "files=10"
HOST=$(api GET "/api/v1/agents/$AID" | sed -nE 's/.*"hostname": ?"([^"]*)".*/\1/p' | head -1)
[ -n "$HOST" ] || fail "no hostname for $AID"
expect_contains "$out" "$(cut -c1-20 <<<"$HOST")"

# watch follows it until done, then exits 0.
timeout 60 "$CTL" task watch "$TID" --interval 1 >"$T/watch1" 2>&1 &
W=$!
sleep 1.5
agent POST "/v1/tasks/$TID" -d '{"state": "done", "result": {"files": 42, "findings": 1}}' >/dev/null
rc=0
wait "$W" || rc=$?
[ "$rc" = 0 ] || fail "watch of a done task: exit $rc: $(cat "$T/watch1")"
expect_contains "$(cat "$T/watch1")" "1 running"
expect_contains "$(cat "$T/watch1")" "files=10"
expect_contains "$(cat "$T/watch1")" "1 done"
expect_contains "$(cat "$T/watch1")" "no run failed"
expect_contains "$("$CTL" task show "$TID")" "files=42 findings=1"
pass "task watch exits 0 when the run is done"

agent POST "/v1/tasks/$T2" -d '{"state": "failed", "reason": "inventory: permission denied"}' >/dev/null
rc=0
timeout 60 "$CTL" task watch "$T2" --interval 1 >"$T/watch2" 2>&1 || rc=$?
[ "$rc" = 1 ] || fail "watch of a failed task: exit $rc: $(cat "$T/watch2")"
expect_contains "$(cat "$T/watch2")" "1 failed"
expect_contains "$(cat "$T/watch2")" "permission denied"
"$CTL" --json task watch "$T2" >"$T/watch2.json" && fail "--json watch: exit 0"
json_ok "task watch" <"$T/watch2.json"
pass "task watch exits 1 when a run failed"

T3=$("$CTL" task create inventory --all | sed -nE 's/^created task ([0-9a-f-]{36}) .*/\1/p')
[ -n "$T3" ] || fail "task create --all"
out=$("$CTL" task cancel "$T3") || fail "task cancel: $out"
expect_contains "$out" "cancelled task $T3 (1 runs stopped)"
expect_contains "$("$CTL" task show "$T3")" "1 cancelled"
"$CTL" task cancel "$T3" 2>"$T/err" && fail "cancelled twice"
expect_contains "$(cat "$T/err")" "409"
timeout 30 "$CTL" task watch "$T3" >/dev/null || fail "watch of a cancelled task failed"
pass "task cancel"

out=$("$CTL" task kinds)
expect_contains "$out" "kill-process"
expect_contains "$out" "paths (list of strings)"
expect_contains "$out" "pid* (integer)"
"$CTL" --json task kinds | json_ok "task kinds"

out=$("$CTL" task template add weekly scan --path /home --rules test --timeout 2h) ||
	fail "template add: $out"
expect_contains "$out" "saved template weekly"
out=$("$CTL" task template list)
expect_contains "$out" "weekly"
expect_contains "$out" '"paths":["/home"]'
"$CTL" --json task template list | json_ok "template list"
out=$("$CTL" task create --template weekly --agent "$AID") || fail "create from template: $out"
T4=$(sed -nE 's/^created task ([0-9a-f-]{36}) .*/\1/p' <<<"$out")
out=$("$CTL" task show "$T4")
expect_contains "$out" "kind:      scan"
expect_contains "$out" '"paths":["/home"]'
expect_contains "$out" "timeout:   7200 s"
"$CTL" task cancel "$T4" >/dev/null

out=$("$CTL" task schedule add nightly --cron '0 3 * * *' scan --target site=berlin \
	--path /srv) || fail "schedule add: $out"
expect_contains "$out" "created schedule nightly"
"$CTL" task schedule add weekly-run --cron '@weekly' --template weekly --all >/dev/null ||
	fail "schedule add --template"
out=$("$CTL" task schedule list)
expect_contains "$out" "0 3 * * *"
expect_contains "$out" "site=berlin"
expect_contains "$out" "template weekly"
"$CTL" --json task schedule list | json_ok "schedule list"
out=$("$CTL" task schedule add broken --cron '61 * * * *' scan --all --path / 2>&1) &&
	fail "bad cron accepted"
expect_contains "$out" "cron"
"$CTL" task schedule remove nightly >/dev/null || fail "schedule remove"
grep -q nightly <<<"$("$CTL" task schedule list)" && fail "removed schedule listed"
"$CTL" task schedule remove nightly 2>/dev/null && fail "removed twice"
pass "task kinds, templates and schedules"

# --- events and samples --------------------------------------------------------

now=$(date +%s)
batch='{"events": [
 {"seq": 1, "time": '$now', "type": "finding", "level": "alert", "task_id": "'$TID'",
  "data": {"path": "/tmp/evil", "score": 90, "rule": "vigil_test"}},
 {"seq": 2, "time": '$now', "type": "progress", "data": {"files": 5, "note": "a b&c=d"}},
 {"seq": 3, "time": '$now', "type": "finding", "level": "warning",
  "data": {"path": "/tmp/\u001b[31mred"}}]}'
expect_contains "$(agent POST /v1/events -d "$batch")" '"stored":3'
out=$("$CTL" events)
expect_contains "$out" "TIME (UTC)"
expect_contains "$out" "/tmp/evil rule=vigil_test score=90"
expect_contains "$out" '{"files":5,"note":"a b&c=d"}'
grep -q $'\e' <<<"$out" && fail "events printed a terminal escape from an agent"
out=$("$CTL" events --level alert --task "$TID" --agent "$AID" --type finding --since 1h)
expect_contains "$out" "/tmp/evil"
grep -q progress <<<"$out" && fail "filters not applied"
out=$("$CTL" events --query 'a b&c=d')
expect_contains "$out" "progress"
grep -q evil <<<"$out" && fail "--query not applied"
[ "$("$CTL" events --limit 1 | wc -l)" = 2 ] || fail "--limit 1"
[ "$("$CTL" events --since $((now + 3600)) | wc -l)" = 1 ] || fail "--since UNIX"
"$CTL" --json events --type finding | json_ok "events"

printf 'VIGIL-TEST-MARKER sample' >"$T/sample"
H=$(sha256sum "$T/sample" | cut -d' ' -f1)
CT=$("$CTL" task create collect --agent "$AID" --param path=/tmp/evil |
	sed -nE 's/^created task ([0-9a-f-]{36}) .*/\1/p')
agent GET /v1/tasks >/dev/null # dispatched: the agent may now answer it
agent POST "/v1/samples?sha256=$H&task=$CT&path=/tmp/evil" --data-binary @"$T/sample" >/dev/null
out=$("$CTL" samples)
expect_contains "$out" "$H"
expect_contains "$out" "/tmp/evil"
"$CTL" --json samples | json_ok "samples"
pass "events (filters, URL-encoded query, control characters removed) and samples"

# --- usage errors -------------------------------------------------------------

usage_err "no task subcommand" task
usage_err "unknown subcommand" task frobnicate
usage_err "no kind" task create --all
usage_err "no target" task create scan --path /
usage_err "two targets" task create scan --all --agent "$AID"
usage_err "bad agent id" task create scan --agent 'Not An Id'
usage_err "bad label" task create scan --target nolabel
usage_err "bad param" task create scan --all --param noequals
usage_err "list as param" task create scan --all --param paths=/
usage_err "bad duration" task create scan --all --timeout soon
usage_err "unknown option" task create scan --all --frobnicate
usage_err "target on template" task template add t scan --all
usage_err "no cron" task schedule add s scan --all
usage_err "bad schedule name" task schedule remove 'a/b'
usage_err "bad task id" task show '../x'
usage_err "bad interval" task watch "$TID" --interval 0
usage_err "bad kind option" rules add x "$T/test.yar" --kind zip
usage_err "bad rule name" rules add 'a b' "$T/test.yar"
usage_err "rules add without file" rules add x
usage_err "bad level" events --level loud
usage_err "bad limit" events --limit 0
usage_err "bad since" events --since yesterday
usage_err "unknown events option" events --frobnicate
usage_err "samples argument" samples extra
out=$("$CTL" task show --help) || fail "--help after a subcommand"
expect_contains "$out" "usage:"
pass "bad options exit 2 with a message"
