#!/bin/bash
# API keys made with an API key: revoking the maker revokes every key it
# made, and theirs, at once (docs/admin-api.md, "API keys"); the audit log
# names the maker of each key.
. "$(dirname "$0")/lib.sh"

standard_center

# mk KEY ROLE: creates a key with KEY; prints "id key".
mk() {
	curl -sS --cacert "$PKI/ca.crt" -H "Authorization: Bearer $1" \
		-X POST "https://127.0.0.1:$ADM/api/v1/keys" \
		-d "{\"role\":\"$2\"}" >"$T/mk"
	printf '%s %s\n' "$(jq -r .id "$T/mk")" "$(jq -r .key "$T/mk")"
}

code() {
	curl -sS -o /dev/null -w '%{http_code}' --cacert "$PKI/ca.crt" \
		-H "Authorization: Bearer $1" "https://127.0.0.1:$ADM/api/v1/session"
}

read -r AID AKEY < <(mk "$VIGIL_API_KEY" operator)
read -r BID BKEY < <(mk "$AKEY" operator)
read -r CID CKEY < <(mk "$BKEY" readonly)
read -r DID DKEY < <(mk "$VIGIL_API_KEY" readonly)
for k in "$AKEY" "$BKEY" "$CKEY" "$DKEY"; do
	[ "$(code "$k")" = 200 ] || fail "a new key does not work"
done
pass "a chain of keys: admin -> A -> B -> C, and D beside it"

owner=$(db "SELECT owner FROM api_keys WHERE id = '$BID'")
[ "$owner" = "key:$AID" ] || fail "owner of B: '$owner', want key:$AID"
n=$(db "SELECT count(*) FROM audit WHERE
	who = 'key:$AID' AND action = 'key.create' AND target = '$BID'")
[ "$n" = 1 ] || fail "the audit log does not say A created B: $(db "SELECT who, action, target FROM audit")"
pass "the audit log names the key that made B"

api DELETE "/api/v1/keys/$AID" >"$T/rev"
expect_contains "$(cat "$T/rev")" '"revoked"'
for k in "$AKEY" "$BKEY" "$CKEY"; do
	c=$(code "$k")
	[ "$c" = 401 ] || fail "a key made (directly or not) by a revoked key answers $c"
done
[ "$(code "$DKEY")" = 200 ] || fail "a key not made by A was revoked too"
n=$(db "SELECT count(*) FROM api_keys WHERE revoked_at IS NOT NULL AND id IN ('$AID','$BID','$CID')")
[ "$n" = 3 ] || fail "revoked in the store: $n of 3"
pass "revoking A revoked B and C, not D"
