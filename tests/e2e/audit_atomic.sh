#!/bin/bash
# A change and its audit entry commit together, or neither does. A trigger
# added to the center's real database (SQLite, or PostgreSQL) refuses the audit entry of one
# action; that change must then be answered with an error (never 2xx), be
# absent from the database and from vigild's memory (a forwarding target
# neither stored nor running, a deleted one still there, a login without a
# session or cookie), leave no write transaction open, and leave the hash
# chain intact; the log says why; once the trigger is gone the next change
# works and is audited.
. "$(dirname "$0")/lib.sh"

standard_center
U=https://127.0.0.1:$ADM
echo 'correct horse battery' |
	"$CTL" user add bob --role operator --password-stdin >/dev/null ||
	fail "user add"

count() {
	db "SELECT COUNT(*) FROM $1"
}
# req METHOD PATH [curl args...]: status into S, body in $T/r, headers $T/h
req() {
	local m=$1 p=$2
	shift 2
	S=$(curl -sS -D "$T/h" -o "$T/r" -w '%{http_code}' --cacert "$PKI/ca.crt" \
		-H 'Content-Type: application/json' -X "$m" "$U$p" "$@")
}
auth=(-H "Authorization: Bearer $VIGIL_API_KEY")
# refused STATUS WHAT: the reply is the audit error, not a success.
refused() {
	[ "$S" = 500 ] || fail "$1: status $S, expected 500: $(cat "$T/r")"
	expect_contains "$(cat "$T/r")" '"code":"audit_failed"'
	expect_contains "$(cat "$T/r")" 'not made'
}
# No write transaction is left open: another connection can write.
writable() {
	if [ "$VIGIL_STORE" = pg ]; then
		# vigild's writers' lock (src/common/store_pg.h) is free, within
		# the 5 s that sqlite3 waits below: the node's own heartbeat
		# and lease writes take it for a moment every second or two.
		lock_free() {
			[ "$(db "SELECT pg_try_advisory_xact_lock(7335406)")" = t ]
		}
		wait_for 5 "vigild's writers' lock (database still locked by vigild)" lock_free
		return
	fi
	db "BEGIN IMMEDIATE; ROLLBACK;" || fail "database still locked by vigild"
}

entries=$(count audit)

# 1. An enrollment token: nothing stored, 500 with a clear message.
db_refuse_audit token.create
tokens=$(count tokens)
req POST /api/v1/tokens "${auth[@]}" -d '{"uses": 1}'
refused "token create"
[ "$(count tokens)" = "$tokens" ] || fail "token stored without its entry"
[ "$(count audit)" = "$entries" ] || fail "audit entry count changed"
writable
wait_for 5 "the log naming the failure" grep -q \
	'audit: cannot record token.create.*audit entry refused by the test' \
	"$T/vigild.log"
grep -q 'token.create.*rolled back' "$T/vigild.log" ||
	fail "log does not say the change was rolled back: $(grep audit: "$T/vigild.log")"
v=$(metric_value "$(api GET /metrics)" vigil_audit_failures_total)
[ "$v" = 1 ] || fail "vigil_audit_failures_total = '$v', expected 1"
db_allow_audit
pass "a change whose entry cannot be written answers 500 and is not stored"

# 2. A forwarding target: in the database and in memory, or in neither.
spec='{"name": "siem", "transport": "udp", "host": "127.0.0.1", "port": 9}'
db_refuse_audit forward.create
req POST /api/v1/forward "${auth[@]}" -d "$spec"
refused "forward add"
[ "$(db "SELECT COUNT(*) FROM forward_targets WHERE name = 'siem'")" = 0 ] ||
	fail "target stored without its entry"
req GET /api/v1/forward "${auth[@]}"
grep -q '"siem"' "$T/r" && fail "target running without its entry: $(cat "$T/r")"
writable
db_allow_audit
req POST /api/v1/forward "${auth[@]}" -d "$spec"
[ "$S" = 201 ] || fail "forward add: $S: $(cat "$T/r")"
db_refuse_audit forward_target.delete
req DELETE /api/v1/forward/siem "${auth[@]}"
refused "forward remove"
[ "$(db "SELECT COUNT(*) FROM forward_targets WHERE name = 'siem'")" = 1 ] ||
	fail "target deleted without its entry"
req GET /api/v1/forward "${auth[@]}"
grep -q '"siem"' "$T/r" || fail "target stopped without its entry: $(cat "$T/r")"
db_allow_audit
pass "a forwarding target is added or removed with its entry, or not at all"

# 3. A login: no session row, no cookie.
db_refuse_audit login
sessions=$(count sessions)
req POST /api/v1/login -d '{"username": "bob", "password": "correct horse battery"}'
refused "login"
grep -qi '^set-cookie:' "$T/h" && fail "cookie set: $(cat "$T/h")"
[ "$(count sessions)" = "$sessions" ] || fail "session stored without its entry"
writable
db_allow_audit
pass "a login whose entry cannot be written opens no session"

# 4. The chain is intact, and the next change works and is audited.
out=$("$CTL" audit verify) || fail "verify: $out"
expect_contains "$out" "audit log intact: $((entries + 1)) entries"
req POST /api/v1/tokens "${auth[@]}" -d '{"uses": 1}'
[ "$S" = 201 ] || fail "token create after the trigger: $S: $(cat "$T/r")"
id=$(sed -nE 's/.*"id": *"(tok_[0-9a-f]+)".*/\1/p' "$T/r")
[ "$(db "SELECT COUNT(*) FROM tokens WHERE id = '$id'")" = 1 ] ||
	fail "token $id not stored"
[ "$(db "SELECT action || ' ' || target FROM audit ORDER BY id DESC LIMIT 1")" = \
	"token.create $id" ] || fail "token $id not audited"
out=$("$CTL" audit verify) || fail "verify: $out"
expect_contains "$out" "audit log intact: $((entries + 2)) entries"
out=$("$CTL" audit verify --db "$(db_target)") || fail "verify --db: $out"
pass "the chain verifies and the next change is stored and audited"
