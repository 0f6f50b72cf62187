#!/bin/bash
# Strict input on the admin API: every mutating route (taken from the
# route tables in the source, so a new route without a case fails here)
# answers unknown members, wrong types, missing members and bodies where
# none belong with 400 and {"error": {"code", "message", "field"}} naming
# the member; never a 500, and the center keeps serving.
. "$(dirname "$0")/lib.sh"

standard_center

COVERED=()
CALL=api # or sess: with the session cookie and CSRF token of a user
sess() {
	local m=$1 p=$2
	shift 2
	curl -sS --cacert "$PKI/ca.crt" -H "Cookie: $C" -H "X-CSRF-Token: $X" \
		-X "$m" "https://127.0.0.1:$ADM$p" "$@"
}
# expect400 "METHOD ROUTE" PATH BODY FIELD
expect400() {
	local route=$1 path=$2 body=$3 field=$4 m code
	m=${route%% *}
	code=$($CALL "$m" "$path" -o "$T/out.json" -w '%{http_code}' \
		-H 'Content-Type: application/json' --data-binary "$body")
	[ "$code" = 400 ] || fail "$m $path $body: status $code: $(cat "$T/out.json")"
	grep -qF "\"field\":\"$field\"" "$T/out.json" ||
		fail "$m $path $body: field '$field' not named: $(cat "$T/out.json")"
	grep -qF '"code":"' "$T/out.json" || fail "no error code: $(cat "$T/out.json")"
	COVERED+=("$route")
}

R="POST /api/v1/tokens"
expect400 "$R" /api/v1/tokens '{"uses": 1, "colour": "red"}' colour
expect400 "$R" /api/v1/tokens '{"uses": "many"}' uses
expect400 "$R" /api/v1/tokens '{"uses": 1.5}' uses
expect400 "$R" /api/v1/tokens '{"expires": true}' expires
expect400 "$R" /api/v1/tokens '{"labels": ["a"]}' labels
expect400 "$R" /api/v1/tokens '{"uses": 0}' uses
expect400 "$R" /api/v1/tokens '{"labels": {"a b": "c"}}' labels

R="DELETE /api/v1/tokens/"
expect400 "$R" /api/v1/tokens/tok_x '{"force": true}' force

R="POST /api/v1/agents/"
expect400 "$R" /api/v1/agents/00000000-0000-0000-0000-000000000000/revoke \
	'{"reason": "lost"}' reason

R="PUT /api/v1/agents/"
expect400 "$R" /api/v1/agents/00000000-0000-0000-0000-000000000000/labels \
	'{"labels": {"a": "b"}, "x": 1}' x
expect400 "$R" /api/v1/agents/00000000-0000-0000-0000-000000000000/labels \
	'{"labels": ["a"]}' labels
expect400 "$R" /api/v1/agents/00000000-0000-0000-0000-000000000000/labels '{}' labels

R="PUT /api/v1/findings/"
expect400 "$R" /api/v1/findings/a/1 '{"status": "resolved", "x": 1}' x
expect400 "$R" /api/v1/findings/a/1 '{"status": 1}' status
expect400 "$R" /api/v1/findings/a/1 '{"comment": "c"}' status
expect400 "$R" /api/v1/findings/a/1 '{"status": "closed"}' status

R="POST /api/v1/enrollments/"
expect400 "$R" /api/v1/enrollments/x/approve '{"labels": {}}' labels
expect400 "$R" /api/v1/enrollments/x/reject '{"why": 1}' why

R="POST /api/v1/rules"
expect400 "$R" /api/v1/rules '{"name": "x", "kind": "yara"}' content
expect400 "$R" /api/v1/rules '{"name": "x", "kind": "yara", "content": 5}' content
expect400 "$R" /api/v1/rules '{"name": "x", "kind": "yara", "content": "", "tags": []}' tags
expect400 "$R" /api/v1/rules '{"name": "a/b", "kind": "yara", "content": "x"}' name
expect400 "$R" /api/v1/rules '{"name": "x", "kind": "zip", "content": "x"}' kind
expect400 "$R" /api/v1/rules '{"name": "x", "kind": "yara", "content": "rule x { condition: nonsense }"}' content

R="DELETE /api/v1/rules/"
expect400 "$R" /api/v1/rules/x '{"all": true}' all

R="POST /api/v1/tasks"
expect400 "$R" /api/v1/tasks '{"kind": 5}' kind
expect400 "$R" /api/v1/tasks '{"kind": "inventory", "target": {"all": true}, "priority": 1}' priority
expect400 "$R" /api/v1/tasks '{"kind": "inventory", "target": "all"}' target
expect400 "$R" /api/v1/tasks '{"kind": "inventory", "target": {"all": true}, "timeout": []}' timeout
expect400 "$R" /api/v1/tasks '{"kind": "scan", "params": {"paths": ["/"], "depth": 3}, "target": {"all": true}}' params.depth

R="POST /api/v1/tasks/"
expect400 "$R" /api/v1/tasks/x/cancel '{"now": true}' now

R="POST /api/v1/templates"
expect400 "$R" /api/v1/templates '{"name": 1, "spec": {}}' name
expect400 "$R" /api/v1/templates '{"name": "t"}' spec
expect400 "$R" /api/v1/templates '{"name": "t", "spec": {"kind": "inventory"}, "x": 1}' x

R="POST /api/v1/schedules"
expect400 "$R" /api/v1/schedules '{"name": "s", "cron": 5, "task": {}}' cron
expect400 "$R" /api/v1/schedules '{"name": "s", "cron": "* * *", "task": {"kind": "inventory", "target": {"all": true}}}' cron
expect400 "$R" /api/v1/schedules '{"name": "s", "cron": "@daily", "task": {}, "enabled": true}' enabled

R="DELETE /api/v1/schedules/"
expect400 "$R" /api/v1/schedules/s '{"x": 1}' x

R="PUT /api/v1/settings"
expect400 "$R" /api/v1/settings '{"colour": "red"}' colour
expect400 "$R" /api/v1/settings '{"require_approval": 1}' require_approval
expect400 "$R" /api/v1/settings '{"sample_archive_password": ""}' sample_archive_password
expect400 "$R" /api/v1/settings '{"sample_archive_password": "a\u0001b"}' sample_archive_password

R="POST /api/v1/users"
expect400 "$R" /api/v1/users '{"name": "u1", "password": "long enough pw", "role": "analyst", "x": 1}' x
expect400 "$R" /api/v1/users '{"name": 1, "password": "long enough pw", "role": "analyst"}' name
expect400 "$R" /api/v1/users '{"name": "u1", "password": "long enough pw", "role": "chief"}' role
expect400 "$R" /api/v1/users '{"name": "u1", "role": "analyst"}' password

echo 'correct horse battery' | "$CTL" user add bob --role analyst \
	--password-stdin >/dev/null || fail "user add"
R="PUT /api/v1/users/"
expect400 "$R" /api/v1/users/bob '{"disabled": "yes"}' disabled
expect400 "$R" /api/v1/users/bob '{"role": 3}' role
expect400 "$R" /api/v1/users/bob '{"colour": "red"}' colour
R="DELETE /api/v1/users/"
expect400 "$R" /api/v1/users/bob '{"x": 1}' x

R="POST /api/v1/keys"
expect400 "$R" /api/v1/keys '{"role": 5}' role
expect400 "$R" /api/v1/keys '{"label": "a", "expires": []}' expires
expect400 "$R" /api/v1/keys '{"scope": "all"}' scope
R="DELETE /api/v1/keys/"
expect400 "$R" /api/v1/keys/nokey '{"x": 1}' x

R="POST /api/v1/forward"
expect400 "$R" /api/v1/forward '{"name": "x", "host": "h", "colour": 1}' colour
expect400 "$R" /api/v1/forward '{"name": "x", "host": 5}' host
expect400 "$R" /api/v1/forward '{"name": "x", "host": "h", "port": "514"}' port
R="POST /api/v1/forward/"
expect400 "$R" /api/v1/forward/x/test '{"x": 1}' x
R="DELETE /api/v1/forward/"
expect400 "$R" /api/v1/forward/x '{"x": 1}' x

R="POST /api/v1/login"
expect400 "$R" /api/v1/login '{"username": "bob", "password": "x", "extra": 1}' extra
expect400 "$R" /api/v1/login '{"username": 1, "password": "x"}' username
expect400 "$R" /api/v1/login '{"username": "bob"}' password

# The session routes, as a logged-in user.
curl -sS -D "$T/h" -o "$T/b" --cacert "$PKI/ca.crt" \
	-d '{"username": "bob", "password": "correct horse battery"}' \
	"https://127.0.0.1:$ADM/api/v1/login" >/dev/null
C=$(sed -nE 's/^[Ss]et-[Cc]ookie: (vigil_session=[0-9a-f]+);.*/\1/p' "$T/h")
X=$(sed -nE 's/.*"csrf_token": *"([0-9a-f]+)".*/\1/p' "$T/b")
[ -n "$C" ] && [ -n "$X" ] || fail "login: $(cat "$T/b")"
CALL=sess
R="POST /api/v1/session/password"
expect400 "$R" /api/v1/session/password '{"old": "correct horse battery", "new": 5}' new
expect400 "$R" /api/v1/session/password '{"old": "correct horse battery", "new": "long enough pw", "x": 1}' x
R="POST /api/v1/session/totp"
expect400 "$R" /api/v1/session/totp '{"x": 1}' x
R="POST /api/v1/session/totp/confirm"
expect400 "$R" /api/v1/session/totp/confirm '{"code": 123456}' code
expect400 "$R" /api/v1/session/totp/confirm '{"code": "123456", "x": 1}' x
R="DELETE /api/v1/session/totp"
expect400 "$R" /api/v1/session/totp '{"code": 123456}' code
R="POST /api/v1/logout"
expect400 "$R" /api/v1/logout '{"x": 1}' x
CALL=api

# The collector's and the master's routes (vigild roles of their own), the
# update mirror's and the rollouts': a plain center checks their bodies
# all the same.
CASE=/api/v1/collector/cases/0123456789abcdef/baseline
R="PUT /api/v1/collector/cases/"
expect400 "$R" $CASE '{"action": "suppress", "colour": 1}' colour
expect400 "$R" $CASE '{"action": 5}' action
R="DELETE /api/v1/collector/cases/"
expect400 "$R" $CASE '{"x": 1}' x
R="POST /api/v1/master/tasks"
expect400 "$R" /api/v1/master/tasks '{"colour": 1}' colour
expect400 "$R" /api/v1/master/tasks '{"centers": "a", "task": {}}' centers
R="POST /api/v1/master/rules"
expect400 "$R" /api/v1/master/rules '{"colour": 1}' colour
expect400 "$R" /api/v1/master/rules '{"name": "x", "kind": "yara", "content": 5}' content
R="POST /api/v1/master/intel"
expect400 "$R" /api/v1/master/intel '{"colour": 1}' colour
expect400 "$R" /api/v1/master/intel '{"name": 5, "content": "x"}' name
R="POST /api/v1/rollouts"
expect400 "$R" /api/v1/rollouts '{"colour": 1}' colour
expect400 "$R" /api/v1/rollouts '{"target": 5}' target
R="DELETE /api/v1/rollouts/"
expect400 "$R" /api/v1/rollouts/x '{"x": 1}' x
R="PUT /api/v1/rule-pins/"
expect400 "$R" /api/v1/rule-pins/base.yar '{"colour": 1}' colour
expect400 "$R" /api/v1/rule-pins/base.yar '{"version": 5}' version
R="DELETE /api/v1/rule-pins/"
expect400 "$R" /api/v1/rule-pins/base.yar '{"x": 1}' x
R="POST /api/v1/updates/refresh"
expect400 "$R" /api/v1/updates/refresh '{"x": 1}' x

# Every mutating route in the route tables has a case above.
missing=""
while read -r route; do
	found=0
	for c in "${COVERED[@]}"; do [ "$c" = "$route" ] && found=1; done
	[ $found -eq 1 ] || missing="$missing [$route]"
done < <(grep -hoE '\{"(POST|PUT|DELETE)", "/api/v1/[^"]*"' "$SRC"/src/center/*.c |
	sed -E 's/\{"([A-Z]+)", "([^"]*)"/\1 \2/' | sort -u)
[ -z "$missing" ] || fail "mutating routes without a strict input case:$missing"
pass "unknown members, wrong types, missing members: 400 naming the field on every mutating route"

# Not JSON, not an object, deeply nested: 400, never a 500.
for body in 'nope' '[1, 2]' '"x"' '{"uses": 1' "$(printf '%0.s[' $(seq 1 5000))"; do
	code=$(api POST /api/v1/tokens -o "$T/out.json" -w '%{http_code}' --data-binary "$body")
	[ "$code" = 400 ] || fail "body '${body:0:20}': status $code: $(cat "$T/out.json")"
done
pass "malformed bodies: 400"

# The center is still serving, and none of the above created anything.
expect_contains "$(api GET /api/v1/tokens)" '"items":[]'
expect_contains "$(api GET /api/v1/tasks)" '"items":[]'
grep -q '"status":500' <<<"$(api GET "/api/v1/audit?limit=1000")" &&
	fail "a 500 was recorded"
pass "nothing created, no 500 anywhere"
