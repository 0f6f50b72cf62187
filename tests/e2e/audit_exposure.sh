#!/bin/bash
# Secrets and audit entries do not leak through the side doors: a secret
# setting (the sample-archive password) is redacted in the audit entry of
# the next change too (its "before"), in the stored entry and in the event
# made of it; a key whose role GET /api/v1/audit refuses does not read
# audit entries through GET /api/v1/events either (type=audit, q=, or no
# filter at all).
. "$(dirname "$0")/lib.sh"

standard_center
PW=Sekrit-Archive-Pw-4711

api PUT /api/v1/settings -d "{\"sample_archive_password\":\"$PW\"}" >"$T/s1"
api PUT /api/v1/settings -d '{"require_approval":true}' >"$T/s2"
n=$(db "SELECT count(*) FROM audit WHERE action = 'settings.update'")
[ "$n" = 2 ] || fail "settings changes in the audit log: $n, want 2"
n=$(db "SELECT count(*) FROM audit WHERE
	COALESCE(before_json, '') || COALESCE(after_json, '') ||
	COALESCE(request_json, '') LIKE '%$PW%'")
[ "$n" = 0 ] || fail "the password is in $n audit entries: $(db "SELECT before_json FROM audit WHERE action = 'settings.update'")"
n=$(db "SELECT count(*) FROM audit WHERE action =
	'settings.update' AND before_json LIKE '%sample_archive_password%redacted%'")
[ "$n" = 2 ] || fail "the changes' before does not show the password redacted"
n=$(db "SELECT count(*) FROM events WHERE type = 'audit'
	AND data LIKE '%$PW%'")
[ "$n" = 0 ] || fail "the password is in $n audit events"
api GET "/api/v1/audit?limit=100" >"$T/a"
if grep -qF "$PW" "$T/a"; then fail "GET /api/v1/audit shows the password"; fi
pass "the archive password is redacted in every audit entry and event"

RO=$("$CTL" --json key create --role readonly | jq -r .key)
ro() {
	curl -sS -o "$T/ro" -w '%{http_code}' --cacert "$PKI/ca.crt" \
		-H "Authorization: Bearer $RO" "https://127.0.0.1:$ADM$1"
}
[ "$(ro /api/v1/audit)" = 403 ] || fail "readonly reads /api/v1/audit"
n=$(api GET "/api/v1/events?type=audit&limit=100" | jq '.items | length')
[ "$n" -ge 3 ] || fail "the admin sees $n audit events, want at least 3"
for q in "type=audit" "q=settings" "" "agent=center" "sort=type"; do
	c=$(ro "/api/v1/events?limit=1000&$q")
	[ "$c" = 200 ] || fail "events?$q answers $c to readonly"
	n=$(jq '[.items[] | select(.type == "audit")] | length' "$T/ro")
	[ "$n" = 0 ] || fail "readonly reads $n audit events through /api/v1/events?$q"
done
pass "a readonly key reads no audit event through /api/v1/events"
