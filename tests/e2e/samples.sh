#!/bin/bash
# Samples leave the center only inside an AES-256 encrypted ZIP: 7z
# extracts it with the password ("infected" unless the setting says
# otherwise) and the file's SHA-256 matches; a wrong password does not
# open it. Settings: GET/PUT /api/v1/settings validated and audited;
# require_approval set through the API takes effect at the next
# enrollment. GET /api/v1/version.
. "$(dirname "$0")/lib.sh"

command -v 7z >/dev/null || fail "7z (p7zip-full) is not installed"
standard_center
TOKEN=$(new_token --uses 3)
export VIGIL_MACHINE_ID_FILE
VIGIL_MACHINE_ID_FILE=$(machine_id s1)
"$AGENT" enroll --server "https://127.0.0.1:$GW" --token "$TOKEN" \
	--ca "$PKI/ca.crt" --data-dir "$T/a" >/dev/null 2>&1 || fail enroll

# A sample of 3 MiB of random bytes, uploaded as the agent for a collect
# task of its own (dispatched by its poll).
head -c 3145728 /dev/urandom >"$T/sample.bin"
SHA=$(sha256sum "$T/sample.bin" | cut -d' ' -f1)
AID=$(sed -nE 's/.*"agent_id": "([^"]+)".*/\1/p' "$T/a/state.json")
CT=$("$CTL" task create collect --agent "$AID" --param path=/tmp/x.bin |
	sed -nE 's/^created task ([0-9a-f-]{36}) .*/\1/p')
[ -n "$CT" ] || fail "collect task not created"
curl -sS -o /dev/null --cacert "$PKI/ca.crt" --cert "$T/a/agent.crt" \
	--key "$T/a/agent.key" "https://127.0.0.1:$GW/v1/tasks" || fail "poll"
curl -sS --cacert "$PKI/ca.crt" --cert "$T/a/agent.crt" --key "$T/a/agent.key" \
	-X POST "https://127.0.0.1:$GW/v1/samples?sha256=$SHA&task=$CT&path=/tmp/x.bin" \
	--data-binary @"$T/sample.bin" >"$T/up.json"
expect_contains "$(cat "$T/up.json")" "$SHA"

"$CTL" samples list | grep -q "$SHA" || fail "sample not listed"
expect_contains "$("$CTL" samples show "$SHA")" '"size": 3145728'

cd "$T"
out=$("$CTL" samples download "$SHA") || fail "download: $out"
[ -s "$T/$SHA.zip" ] || fail "no archive written"
[ "$(stat -c %a "$T/$SHA.zip")" = 600 ] || fail "archive mode $(stat -c %a "$T/$SHA.zip")"
# The sample's bytes are not in the archive in clear.
head -c 64 "$T/sample.bin" | od -An -tx1 | tr -d ' \n' >"$T/head.hex"
od -An -tx1 "$T/$SHA.zip" | tr -d ' \n' | grep -qF "$(cat "$T/head.hex")" &&
	fail "sample bytes stored in clear"
7z l -slt -pinfected "$T/$SHA.zip" >"$T/list.txt" 2>&1 || fail "7z l: $(cat "$T/list.txt")"
expect_contains "$(cat "$T/list.txt")" "AES-256"
mkdir "$T/x1"
7z x -pinfected -o"$T/x1" "$T/$SHA.zip" </dev/null >"$T/7z.log" 2>&1 || fail "7z x: $(cat "$T/7z.log")"
[ "$(sha256sum "$T/x1/$SHA" | cut -d' ' -f1)" = "$SHA" ] || fail "extracted file differs"
mkdir "$T/x2"
7z x -pwrong -o"$T/x2" "$T/$SHA.zip" </dev/null >"$T/7z2.log" 2>&1 && fail "wrong password opened the archive"
pass "download: AES-256 ZIP, password 'infected', same SHA-256; wrong password refused"

# Never over an existing file.
out=$("$CTL" samples download "$SHA" 2>&1) && fail "overwrote an existing file"
expect_contains "$out" "File exists"
expect_contains "$(api GET "/api/v1/audit?action=sample.download")" "\"target\":\"$SHA\""
pass "downloads are audited; an existing file is never overwritten"

# A download whose entry cannot be written is not served (docs/audit.md).
db_refuse_audit sample.download
code=$(api GET "/api/v1/samples/$SHA/download" -o "$T/d.out" -w '%{http_code}')
[ "$code" = 500 ] || fail "download without its entry: status $code"
expect_contains "$(cat "$T/d.out")" '"code":"audit_failed"'
db_allow_audit
pass "a download whose audit entry cannot be written is not served"

# Unknown and malformed hashes.
code=$(api GET "/api/v1/samples/$(printf '0%.0s' $(seq 1 64))/download" -o "$T/e.json" -w '%{http_code}')
[ "$code" = 404 ] || fail "unknown sample: $code"
code=$(api GET "/api/v1/samples/nothex/download" -o "$T/e.json" -w '%{http_code}')
[ "$code" = 400 ] || fail "bad hash: $code"
expect_contains "$(cat "$T/e.json")" '"field":"sha256"'
pass "unknown sample 404, malformed hash 400"

# A sample damaged on disk is refused with a message, not sent.
cp "$DATA/samples/${SHA:0:2}/$SHA" "$T/keep"
printf 'X' | dd of="$DATA/samples/${SHA:0:2}/$SHA" bs=1 seek=1000 conv=notrunc 2>/dev/null
code=$(api GET "/api/v1/samples/$SHA/download" -o "$T/e.json" -w '%{http_code}')
[ "$code" = 500 ] || fail "damaged sample: $code"
expect_contains "$(cat "$T/e.json")" "damaged on disk"
cp "$T/keep" "$DATA/samples/${SHA:0:2}/$SHA"
pass "a sample damaged on disk is not sent"

# Settings: a new archive password, validated, audited.
out=$("$CTL" settings)
expect_contains "$out" "sample_archive_password"
expect_contains "$out" '"infected"'
"$CTL" settings set sample_archive_password 's3cret!' >/dev/null || fail "settings set"
"$CTL" samples download "$SHA" --output "$T/b.zip" >/dev/null || fail "download 2"
mkdir "$T/x3" "$T/x4"
7z x -pinfected -o"$T/x3" "$T/b.zip" </dev/null >/dev/null 2>&1 && fail "old password still opens it"
7z x -p's3cret!' -o"$T/x4" "$T/b.zip" </dev/null >"$T/7z4.log" 2>&1 ||
	fail "new password does not open it: $(cat "$T/7z4.log")"
[ "$(sha256sum "$T/x4/$SHA" | cut -d' ' -f1)" = "$SHA" ] || fail "extracted file differs (2)"
for body in '{"sample_archive_password": ""}' '{"sample_archive_password": 5}' \
	'{"require_approval": "yes"}' '{"colour": 1}'; do
	code=$(api PUT /api/v1/settings -o "$T/e.json" -w '%{http_code}' -d "$body")
	[ "$code" = 400 ] || fail "settings $body: $code"
	grep -q '"field":' "$T/e.json" || fail "settings $body: no field"
done
out=$(api GET "/api/v1/audit?action=settings.update&status=200")
expect_contains "$out" '"sample_archive_password":"[redacted]"'
n=$(db "SELECT COUNT(*) FROM audit WHERE
	COALESCE(before_json, '') || COALESCE(after_json, '') ||
	COALESCE(request_json, '') LIKE '%s3cret%'")
[ "$n" = 0 ] || fail "the archive password is in the audit log"
"$CTL" settings reset sample_archive_password >/dev/null || fail "reset"
expect_contains "$("$CTL" --json settings)" '"sample_archive_password": "infected"'
pass "settings: archive password changed, validated, audited, reset"

# require_approval through the API: the next enrollment waits.
"$CTL" settings set require_approval yes >/dev/null || fail "set require_approval"
VIGIL_MACHINE_ID_FILE=$(machine_id s2)
out=$("$AGENT" enroll --server "https://127.0.0.1:$GW" --token "$TOKEN" \
	--ca "$PKI/ca.crt" --data-dir "$T/b" 2>&1) || fail "enroll 2: $out"
expect_contains "$out" "pending"
"$CTL" settings reset require_approval >/dev/null
pass "require_approval set through the API applies"

out=$(api GET /api/v1/version)
expect_contains "$out" '"version":"'
expect_contains "$out" '"schema_version":'
pass "version"
