#!/bin/bash
# Audit log: every mutating admin route (taken from the route tables in
# the source, so a new route without a case here fails the test) appends
# an entry with the right action, who and where; secrets never reach it;
# the API cannot change it; `vigilctl audit verify` finds a row changed or
# removed in the SQLite file (from the API and from the file); no route
# writes after its reply, outside the transaction of its entry.
. "$(dirname "$0")/lib.sh"

standard_center "require_approval = yes"

count() {
	"$CTL" --json audit list --limit 1000 | grep -c '"hash"' || true
}

last_action() {
	"$CTL" --json audit list --limit 1 |
		sed -nE 's/^ *"action": "([^"]+)".*/\1/p' | head -1
}

COVERED=()
# step "METHOD PATH" ACTION COMMAND...: runs the command, then expects one
# more audit entry whose action is ACTION.
step() {
	local route=$1 action=$2 before after got
	shift 2
	before=$(count)
	"$@" >"$T/step.out" 2>&1 || fail "$route ($action): $(cat "$T/step.out")"
	after=$(count)
	[ "$after" -eq $((before + 1)) ] ||
		fail "$route ($action): audit entries $before -> $after"
	got=$(last_action)
	[ "$got" = "$action" ] || fail "$route: action '$got', expected '$action'"
	COVERED+=("$route")
}

TOKEN=$("$CTL" --json token create --uses 5 | sed -nE 's/.*"token": "([^"]+)".*/\1/p')
[ -n "$TOKEN" ] || fail "token create"
[ "$(last_action)" = token.create ] || fail "token create not audited"
COVERED+=("POST /api/v1/tokens")

enroll() {
	VIGIL_MACHINE_ID_FILE=$(machine_id "$1") "$AGENT" enroll \
		--server "https://127.0.0.1:$GW" --token "$TOKEN" \
		--ca "$PKI/ca.crt" --data-dir "$T/$1" >"$T/enroll-$1.log" 2>&1 ||
		fail "enroll $1: $(cat "$T/enroll-$1.log")"
	"$CTL" --json agent pending | sed -nE 's/.*"id": "([0-9a-f-]{36})".*/\1/p' | head -1
}
REQ=$(enroll a1)
step "POST /api/v1/enrollments/" enrollment.approve "$CTL" agent approve "$REQ"
REQ=$(enroll a2)
step "POST /api/v1/enrollments/" enrollment.reject "$CTL" agent reject "$REQ"
AID=$("$CTL" --json agent list | sed -nE 's/.*"id": "([0-9a-f-]{36})".*/\1/p' | head -1)
[ -n "$AID" ] || fail "no agent"

printf 'rule t { strings: $a = "audit-test-string" condition: $a }\n' >"$T/t.yar"
step "POST /api/v1/rules" rule.create "$CTL" rules add t "$T/t.yar"
step "POST /api/v1/templates" template.create \
	"$CTL" task template add weekly inventory
step "POST /api/v1/schedules" schedule.create \
	"$CTL" task schedule add nightly --cron '0 3 * * *' inventory --all
step "DELETE /api/v1/schedules/" schedule.delete \
	"$CTL" task schedule remove nightly
step "POST /api/v1/tasks" task.create "$CTL" task create inventory --all
TID=$("$CTL" --json task list | sed -nE 's/.*"id": "([0-9a-f-]{36})".*/\1/p' | head -1)
step "POST /api/v1/tasks/" task.cancel "$CTL" task cancel "$TID"
step "DELETE /api/v1/rules/" rule.delete "$CTL" rules remove t
TOKID=$("$CTL" --json token list | sed -nE 's/.*"id": "(tok_[0-9a-f]+)".*/\1/p' | head -1)
step "DELETE /api/v1/tokens/" token.delete "$CTL" token delete "$TOKID"
step "PUT /api/v1/agents/" agent.labels "$CTL" agent label "$AID" site=x
# The approved agent collects its certificate and reports a finding.
VIGIL_MACHINE_ID_FILE=$T/machine-id-a1 "$AGENT" enroll --resume \
	--data-dir "$T/a1" >"$T/resume.log" 2>&1 || fail "resume: $(cat "$T/resume.log")"
curl -sS --cacert "$PKI/ca.crt" --cert "$T/a1/agent.crt" --key "$T/a1/agent.key" \
	"https://127.0.0.1:$GW/v1/events" -d '{"events": [{"seq": 1, "time": 1795000000,
	"type": "finding", "level": "alert", "data": {"path": "/x"}}]}' >/dev/null
step "PUT /api/v1/findings/" finding.update \
	"$CTL" findings set "$AID" 1 false_positive --comment "test file"
step "POST /api/v1/agents/" agent.revoke "$CTL" agent revoke "$AID"
step "PUT /api/v1/settings" settings.update \
	"$CTL" settings set require_approval no

# Users, API keys, logins, sessions, two-factor.
step "POST /api/v1/users" user.create sh -c \
	"echo 'correct horse battery' | '$CTL' user add alice --role operator --password-stdin"
step "PUT /api/v1/users/" user.update "$CTL" user set alice --role analyst
step "POST /api/v1/keys" key.create "$CTL" key create --label audit-test
KID=$(api GET /api/v1/keys | python3 -c 'import json, sys
j = json.load(sys.stdin)
j = j["keys"]
print([k["id"] for k in j if k.get("label") == "audit-test"][0])') ||
	fail "no key audit-test"
step "DELETE /api/v1/keys/" key.delete "$CTL" key revoke "$KID"

U=https://127.0.0.1:$ADM
# hstep "METHOD PATH" ACTION STATUS CURL_ARGS...: one request with curl,
# answered STATUS and recorded as one more entry with ACTION.
hstep() {
	local route=$1 action=$2 want=$3 before s got
	shift 3
	before=$(count)
	s=$(curl -sS -D "$T/h" -o "$T/r" -w '%{http_code}' --cacert "$PKI/ca.crt" \
		-H 'Content-Type: application/json' "$@")
	[ "$s" = "$want" ] || fail "$route: status $s, expected $want: $(cat "$T/r")"
	[ "$(count)" -eq $((before + 1)) ] || fail "$route ($action): not audited"
	got=$(last_action)
	[ "$got" = "$action" ] || fail "$route: action '$got', expected '$action'"
	COVERED+=("$route")
}
hstep "POST /api/v1/login" login 401 \
	-d '{"username": "alice", "password": "not her password"}' "$U/api/v1/login"
out=$(api GET "/api/v1/audit?action=login&limit=1")
expect_contains "$out" '"who":"user:alice"'
expect_contains "$out" '"status":401'
expect_contains "$out" '"password":"[redacted]"'
hstep "POST /api/v1/login" login 200 \
	-d '{"username": "alice", "password": "correct horse battery"}' "$U/api/v1/login"
out=$(api GET "/api/v1/audit?action=login&limit=1")
expect_contains "$out" '"who":"user:alice"'
expect_contains "$out" '"status":200'
expect_contains "$out" '"csrf_token":"[redacted]"'
C=$(sed -nE 's/^[Ss]et-[Cc]ookie: (vigil_session=[0-9a-f]+);.*/\1/p' "$T/h")
X=$(sed -nE 's/.*"csrf_token": *"([0-9a-f]+)".*/\1/p' "$T/r")
[ -n "$C" ] && [ -n "$X" ] || fail "no session: $(cat "$T/r")"
S=(-H "Cookie: $C" -H "X-CSRF-Token: $X")
hstep "POST /api/v1/session/password" password.create 200 "${S[@]}" \
	-d '{"old": "correct horse battery", "new": "another long password"}' \
	"$U/api/v1/session/password"
hstep "POST /api/v1/session/totp" totp.create 200 "${S[@]}" -X POST \
	"$U/api/v1/session/totp"
SECRET=$(sed -nE 's/.*"secret": *"([A-Z2-7]+)".*/\1/p' "$T/r")
[ -n "$SECRET" ] || fail "no totp secret: $(cat "$T/r")"
hstep "POST /api/v1/session/totp/confirm" totp.confirm 200 "${S[@]}" \
	-d "{\"code\": \"$(oathtool --totp -b "$SECRET")\"}" \
	"$U/api/v1/session/totp/confirm"
next=$(oathtool --totp -b "$SECRET" --now "$(date -u -d '+30 seconds' '+%Y-%m-%d %H:%M:%S UTC')")
hstep "DELETE /api/v1/session/totp" totp.delete 200 "${S[@]}" -X DELETE \
	-d "{\"code\": \"$next\"}" "$U/api/v1/session/totp"
hstep "POST /api/v1/logout" logout 200 "${S[@]}" -X POST "$U/api/v1/logout"
for w in "correct horse" "another long password" "$SECRET" "$next"; do
	db_lacks "$w" "secret '$w' stored in the database"
done
out=$(api GET "/api/v1/audit?who=user:alice&limit=100")
expect_contains "$out" '"action":"logout"'
expect_contains "$out" '"action":"totp.confirm"'
pass "logins (failed and not) and session changes are audited under the user"
step "DELETE /api/v1/users/" user.delete "$CTL" user remove alice

# Forwarding targets; every audit entry is also an event of type audit,
# forwarded like any event: here to a real rsyslogd.
. "$SRC/tests/e2e/rsyslog.inc"
RS=$T/rs
rs_start "$RS" "module(load=\"imtcp\")
input(type=\"imtcp\" port=\"0\" address=\"127.0.0.1\" listenPortFileName=\"$RS/a.port\" ruleset=\"a\")
ruleset(name=\"a\") { action(type=\"omfile\" file=\"$RS/a.out\" template=\"raw\") }"
step "POST /api/v1/forward" forward.create "$CTL" forward add siem \
	--transport tcp --host 127.0.0.1 --port "$(cat "$RS/a.port")" \
	--format json --type audit
step "POST /api/v1/forward/" forward_target.test "$CTL" forward test siem
wait_lines "$RS/a.out" 2
grep '"type":"audit"' "$RS/a.out" | grep -q '"action":"forward.create"' ||
	fail "audit entry not forwarded: $(cat "$RS/a.out")"
step "DELETE /api/v1/forward/" forward_target.delete "$CTL" forward remove siem
rs_stop
out=$(api GET "/api/v1/events?type=audit&agent=center&limit=1000")
expect_contains "$out" '"action":"user.delete"'
expect_contains "$out" '"action":"forward_target.delete"'
pass "audit entries are events of type audit and reach a syslog receiver"

# A refused change is recorded too, with its status and message.
before=$(count)
api POST /api/v1/agents/nope/revoke >/dev/null
[ "$(count)" -eq $((before + 1)) ] || fail "failed change not audited"
out=$(api GET "/api/v1/audit?limit=1")
expect_contains "$out" '"status":404'
expect_contains "$out" '"error":"no active agent nope'
pass "failed changes are audited with status and message"

# The collector's and the master's routes (their own roles of vigild,
# e2e/collector and e2e/master): on a plain center they refuse, audited.
K=(-H "Authorization: Bearer $VIGIL_API_KEY")
hstep "PUT /api/v1/collector/cases/" collector_baseline.update 404 "${K[@]}" \
	-X PUT -d '{"action": "suppress", "reason": "x"}' "$U/api/v1/collector/cases/abc"
hstep "DELETE /api/v1/collector/cases/" collector_baseline.delete 404 "${K[@]}" \
	-X DELETE "$U/api/v1/collector/cases/abc"
hstep "POST /api/v1/master/tasks" master_push.create 400 "${K[@]}" \
	-d '{"nonsense": 1}' "$U/api/v1/master/tasks"
hstep "POST /api/v1/master/rules" master_rule.create 400 "${K[@]}" \
	-d '{"nonsense": 1}' "$U/api/v1/master/rules"
hstep "POST /api/v1/master/intel" master_intel.create 400 "${K[@]}" \
	-d '{"nonsense": 1}' "$U/api/v1/master/intel"
# Signed updates: this center mirrors nothing, so each is refused, and
# audited all the same (updates.c, rollout.c).
B=(-H "Authorization: Bearer $VIGIL_API_KEY")
hstep "POST /api/v1/updates/refresh" updates_refresh.create 409 "${B[@]}" -X POST \
	"$U/api/v1/updates/refresh"
hstep "PUT /api/v1/rule-pins/" rule_pin.update 404 "${B[@]}" -X PUT \
	-d '{"version": "1.0"}' "$U/api/v1/rule-pins/base.yar"
hstep "DELETE /api/v1/rule-pins/" rule_pin.delete 404 "${B[@]}" -X DELETE \
	"$U/api/v1/rule-pins/base.yar"
hstep "POST /api/v1/rollouts" rollout.create 404 "${B[@]}" \
	-d '{"target": "agent/linux-x86_64/vigil-agent"}' "$U/api/v1/rollouts"
hstep "DELETE /api/v1/rollouts/" rollout.delete 404 "${B[@]}" -X DELETE \
	"$U/api/v1/rollouts/nope"

# Every mutating route in the route tables was exercised above.
missing=""
while read -r route; do
	found=0
	for c in "${COVERED[@]}"; do [ "$c" = "$route" ] && found=1; done
	[ $found -eq 1 ] || missing="$missing [$route]"
done < <(grep -hoE '\{"(POST|PUT|DELETE)", "/api/v1/[^"]*"' "$SRC"/src/center/*.c |
	sed -E 's/\{"([A-Z]+)", "([^"]*)"/\1 \2/' | sort -u)
[ -z "$missing" ] || fail "mutating routes without an audit case:$missing"
pass "every mutating route appends an entry with the right action"

# Who, where, before / after; the token itself is never stored.
out=$(api GET "/api/v1/audit?action=agent.revoke&status=200")
expect_contains "$out" '"who":"key:'
expect_contains "$out" '"addr":"127.0.0.1"'
expect_contains "$out" "\"target\":\"$AID\""
expect_contains "$out" '"before":{"cert_serial":'
expect_contains "$out" '"status":"revoked"'
out=$(api GET "/api/v1/audit?action=token.create")
expect_contains "$out" '"token":"[redacted]"'
db_lacks "$TOKEN" "token stored in the audit log"
pass "entries carry who, where, target, before and after; secrets redacted"

# Filters and table output.
out=$("$CTL" audit list --action rule.create --since 1h)
expect_contains "$out" "rule.create"
grep -q "token.delete" <<<"$out" && fail "filter by action ignored"
out=$(api GET "/api/v1/audit?sort=-id&limit=2")
expect_contains "$out" '"next_cursor":"'
pass "audit list filters and pages"

# The API offers no way to change or delete entries.
code=$(api DELETE /api/v1/audit -o /dev/null -w '%{http_code}')
[ "$code" = 405 ] || fail "DELETE /api/v1/audit: $code"
code=$(api PUT /api/v1/audit -o /dev/null -w '%{http_code}' -d '{}')
[ "$code" = 405 ] || fail "PUT /api/v1/audit: $code"
code=$(api DELETE /api/v1/audit/1 -o /dev/null -w '%{http_code}')
[ "$code" = 404 ] || [ "$code" = 405 ] || fail "DELETE /api/v1/audit/1: $code"
pass "the audit log cannot be changed through the API"

out=$("$CTL" audit verify) || fail "verify of an intact log: $out"
expect_contains "$out" "audit log intact"
out=$("$CTL" audit verify --db "$(db_target)") || fail "verify --db: $out"
expect_contains "$out" "audit log intact"
pass "an intact chain verifies (API and database file)"

# Tampering: one field of entry 3 changed in the SQLite file.
db "UPDATE audit SET who = 'key:someone-else' WHERE id = 3"
rc=0
out=$("$CTL" audit verify 2>&1) || rc=$?
[ $rc -eq 1 ] || fail "tampered log verified (API): rc $rc: $out"
expect_contains "$out" "entry 3: content does not match its hash"
rc=0
out=$("$CTL" audit verify --db "$(db_target)" 2>&1) || rc=$?
[ $rc -eq 1 ] || fail "tampered log verified (db): rc $rc: $out"
expect_contains "$out" "entry 3:"
pass "a changed entry is found (API and database file)"

# An entry removed, and one whose hash was recomputed to hide a change.
db "UPDATE audit SET who = (SELECT who FROM audit WHERE id = 2) WHERE id = 3"
"$CTL" audit verify >/dev/null || fail "restored row does not verify"
db "DELETE FROM audit WHERE id = 5"
rc=0
out=$("$CTL" audit verify --db "$(db_target)" 2>&1) || rc=$?
[ $rc -eq 1 ] || fail "removed entry not found: $out"
expect_contains "$out" "entry 6: expected id 5"
db "UPDATE audit SET id = 5 WHERE id = 6"
rc=0
out=$("$CTL" audit verify --db "$(db_target)" 2>&1) || rc=$?
[ $rc -eq 1 ] || fail "renumbered entry not found: $out"
expect_contains "$out" "entry 5:"
pass "a removed or renumbered entry is found"

# Every route above made its change inside its request's transaction,
# committed with its entry: none wrote after its reply (vigild says so).
if grep -q "after its reply" "$T/vigild.log"; then
	grep "after its reply" "$T/vigild.log" >&2
	fail "a route wrote outside its audited change"
fi
pass "no route writes after its reply, outside its audited change"
