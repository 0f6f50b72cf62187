#!/bin/bash
# Enrollment tokens: unknown, used up, expired and deleted tokens are
# refused with a 403 and a message that says which; tokens are stored
# hashed; the enrollment endpoint is rate limited per source address.
. "$(dirname "$0")/lib.sh"

standard_center
export VIGIL_MACHINE_ID_FILE
VIGIL_MACHINE_ID_FILE=$(machine_id t1)
enroll() {
	"$AGENT" enroll --server "https://127.0.0.1:$GW" --token "$1" \
		--ca "$PKI/ca.crt" --data-dir "$T/$2" 2>&1
}

out=$(enroll vgt_0000000000000000000000000000000000000000000000000000000000000000 bad) &&
	fail "unknown token accepted"
expect_contains "$out" "not known"
pass "unknown token refused"

T1=$(new_token --uses 1)
enroll "$T1" ok1 >/dev/null || fail "first use"
out=$(enroll "$T1" used) && fail "used-up token accepted"
expect_contains "$out" "used 1 of 1"
pass "used-up token refused"

T2=$(new_token --expires 1s)
sleep 2
out=$(enroll "$T2" exp) && fail "expired token accepted"
expect_contains "$out" "expired"
pass "expired token refused"

T3=$(new_token --uses 3 --label team=ops)
ID3=$("$CTL" --json token list | sed -nE 's/.*"id": "(tok_[0-9a-f]+)".*/\1/p' | tail -1)
"$CTL" token list | grep -q "team=ops" || fail "token list"
"$CTL" token delete "$ID3" >/dev/null || fail "token delete"
out=$(enroll "$T3" del) && fail "deleted token accepted"
expect_contains "$out" "not known"
pass "deleted token refused"

# Only hashes are stored.
for t in "$T1" "$T2" "$T3"; do
	db_lacks "$t" "token stored in clear"
done
pass "tokens stored hashed"

# Bad token options are refused by vigilctl with a message.
out=$("$CTL" token create --uses 0 2>&1) && fail "--uses 0 accepted"
expect_contains "$out" "--uses"
out=$("$CTL" token create --label nolabel 2>&1) && fail "bad label accepted"
expect_contains "$out" "KEY=VALUE"
pass "bad token options refused"
