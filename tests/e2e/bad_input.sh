#!/bin/bash
# Bad input from the network: oversized bodies get 413, malformed JSON 400
# with a message saying where, bad CSRs and wrong key types 400 naming the
# problem, unknown admin fields 400; the center keeps serving and what was
# accepted before is still there.
. "$(dirname "$0")/lib.sh"

standard_center
TOKEN=$(new_token --uses 5)
export VIGIL_MACHINE_ID_FILE
VIGIL_MACHINE_ID_FILE=$(machine_id b1)
"$AGENT" enroll --server "https://127.0.0.1:$GW" --token "$TOKEN" \
	--ca "$PKI/ca.crt" --data-dir "$T/a" >/dev/null 2>&1 || fail enroll

# 1 MiB body on the gateway (limit 64k).
head -c 1048576 /dev/zero | tr '\0' 'a' >"$T/big"
code=$(gw_status POST /v1/enroll -H 'Content-Type: application/json' --data-binary @"$T/big")
[ "$code" = 413 ] || fail "oversized body: $code"
pass "oversized body 413"

code=$(gw_status POST /v1/enroll -H 'Content-Type: application/json' -d '{"token": "x", "csr": ')
[ "$code" = 400 ] || fail "malformed JSON: $code"
body=$(cat "$T/gw-body")
echo "$body"
expect_contains "$body" '"code":"bad_request"'
expect_contains "$body" 'invalid JSON at'
pass "malformed JSON 400 with position"

code=$(gw_status POST /v1/enroll -H 'Content-Type: application/json' \
	-d "{\"token\": \"$TOKEN\", \"csr\": \"junk\", \"facts\": {\"hostname\": \"h\", \"machine_id\": \"$(cat "$VIGIL_MACHINE_ID_FILE")\"}}")
[ "$code" = 400 ] || fail "junk CSR: $code"
expect_contains "$(cat "$T/gw-body")" "bad_csr"
pass "junk CSR 400 bad_csr"

openssl req -new -newkey rsa:2048 -nodes -keyout "$T/rsa.key" -subj /CN=x -out "$T/rsa.csr" 2>/dev/null
CSR=$(awk '{printf "%s\\n", $0}' "$T/rsa.csr")
code=$(gw_status POST /v1/enroll -H 'Content-Type: application/json' \
	-d "{\"token\": \"$TOKEN\", \"csr\": \"$CSR\", \"facts\": {\"hostname\": \"h\", \"machine_id\": \"$(cat "$VIGIL_MACHINE_ID_FILE")\"}}")
[ "$code" = 400 ] || fail "RSA CSR: $code"
expect_contains "$(cat "$T/gw-body")" "bad_key_type"
expect_contains "$(cat "$T/gw-body")" "P-256"
pass "RSA key refused with bad_key_type"

code=$(gw_status POST /v1/enroll -H 'Content-Type: application/json' \
	-d '{"token": "x", "csr": "y", "facts": {"hostname": "h", "machine_id": "0123456789abcdef0123456789abcdef", "ips": ["not-an-ip"]}}')
[ "$code" = 400 ] || fail "bad ip: $code"
expect_contains "$(cat "$T/gw-body")" "ips"
pass "bad field named in the message"

out=$(api POST /api/v1/tokens -d '{"uses": 1, "colour": "red"}')
expect_contains "$out" "colour: unknown field"
out=$(api POST /api/v1/tokens -d '{"uses": "many"}')
expect_contains "$out" "uses:"
code=$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$PKI/ca.crt" \
	-H "Authorization: Bearer vgk_wrong" "https://127.0.0.1:$ADM/api/v1/agents")
[ "$code" = 401 ] || fail "wrong API key: $code"
code=$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$PKI/ca.crt" \
	"https://127.0.0.1:$ADM/api/v1/agents")
[ "$code" = 401 ] || fail "no API key: $code"
pass "admin API refuses bad fields and keys"

# Garbage at the TLS port and a half-open connection do not hurt.
head -c 4096 /dev/urandom | timeout 5 bash -c "cat > /dev/tcp/127.0.0.1/$GW" 2>/dev/null || true
kill -0 "$CENTER_PID" || fail "center died"
"$AGENT" run --once --data-dir "$T/a" >/dev/null 2>&1 || fail "heartbeat after bad input"
[ "$("$CTL" --json agent list | grep -c '"id"')" -eq 1 ] || fail "agent lost"
pass "center still serving, nothing lost"
