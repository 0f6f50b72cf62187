#!/bin/bash
# Roles: every admin route declares the role it needs (vigild
# --list-routes). With an API key of each role, every route answers 403
# exactly when the role is below the route's, and never 401 or 500; without
# credentials every route but the public ones answers 401. API keys cannot
# be made with more than their maker's role; revoked and expired keys stop
# working at once.
. "$(dirname "$0")/lib.sh"

standard_center

rank() {
	case $1 in
	readonly) echo 1 ;; analyst) echo 2 ;; operator) echo 3 ;;
	admin) echo 4 ;; public) echo 0 ;; *) fail "unknown role $1" ;;
	esac
}

# status KEY METHOD PATH [curl args]: HTTP status ("" key = none).
status() {
	local k=$1 m=$2 p=$3
	shift 3
	local auth=()
	[ -n "$k" ] && auth=(-H "Authorization: Bearer $k")
	curl -sS -o "$T/body" -w '%{http_code}' --cacert "$PKI/ca.crt" \
		"${auth[@]}" -X "$m" "https://127.0.0.1:$ADM$p" "$@"
}

declare -A KEY KID
for role in readonly analyst operator admin; do
	"$CTL" --json key create --role $role --label "walk-$role" >"$T/k"
	KEY[$role]=$(sed -nE 's/.*"key": *"([^"]+)".*/\1/p' "$T/k")
	KID[$role]=$(sed -nE 's/.*"id": *"([^"]+)".*/\1/p' "$T/k")
	[ -n "${KEY[$role]}" ] || fail "cannot create a $role key"
done
pass "a key of each role"

"$VIGILD" --list-routes >"$T/routes"
[ "$(wc -l <"$T/routes")" -ge 30 ] || fail "too few routes: $(cat "$T/routes")"
n=0
while read -r method path need; do
	p=${path//\*/x}
	body=()
	[ "$method" != GET ] && body=(-H 'Content-Type: application/json' -d '{}')
	# The live update stream stays open: its status and headers only.
	[ "$p" = /api/v1/stream ] && body=(-I)
	# Logging out a key is harmless; skip nothing.
	s=$(status "" "$method" "$p" "${body[@]}")
	if [ "$need" = public ]; then
		[ "$s" != 401 ] && [ "$s" != 403 ] ||
			fail "$method $p is public but got $s without credentials"
	else
		[ "$s" = 401 ] || fail "$method $p without credentials: $s, want 401"
	fi
	for role in readonly analyst operator admin; do
		s=$(status "${KEY[$role]}" "$method" "$p" "${body[@]}")
		[ "$s" = 500 ] && fail "$method $p as $role: 500 $(cat "$T/body")"
		[ "$s" = 401 ] && fail "$method $p as $role: 401 $(cat "$T/body")"
		if [ "$(rank "$role")" -lt "$(rank "$need")" ]; then
			[ "$s" = 403 ] ||
				fail "$method $p needs $need; $role got $s, want 403"
			grep -q "needs the $need role" "$T/body" ||
				fail "403 does not name the role: $(cat "$T/body")"
		else
			[ "$s" != 403 ] ||
				fail "$method $p needs $need; $role refused: $(cat "$T/body")"
		fi
	done
	n=$((n + 1))
done <"$T/routes"
pass "role walk over $n routes"

# A key cannot make a key above its own role.
s=$(status "${KEY[analyst]}" POST /api/v1/keys -d '{"role": "operator"}')
[ "$s" = 403 ] || fail "analyst made an operator key: $s"
s=$(status "${KEY[analyst]}" POST /api/v1/keys -d '{"role": "readonly"}')
[ "$s" = 201 ] || fail "analyst cannot make a readonly key: $s"
pass "no key above its maker's role"

# Keys are listed without the secret, and stored hashed.
api GET /api/v1/keys >"$T/keys"
grep -q "walk-operator" "$T/keys" || fail "key list: $(cat "$T/keys")"
grep -qF "${KEY[operator]}" "$T/keys" && fail "key list shows a secret"
for role in readonly analyst operator admin; do
	db_lacks "${KEY[$role]}" "key stored in clear"
done
pass "keys listed without secrets, stored hashed"

# A non-admin sees only its own keys.
out=$(curl -sS --cacert "$PKI/ca.crt" -H "Authorization: Bearer ${KEY[analyst]}" \
	"https://127.0.0.1:$ADM/api/v1/keys")
grep -q walk-operator <<<"$out" && fail "analyst sees others' keys: $out"
pass "non-admins see their own keys only"

# Revocation and expiry take effect at once.
"$CTL" key list | grep -E "^${KID[operator]} +operator +walk-operator +key:[^ ]+ +active +never" >/dev/null ||
	fail "key list: $("$CTL" key list)"
"$CTL" key revoke "${KID[operator]}" >/dev/null || fail "key revoke"
"$CTL" key list | grep -E "^${KID[operator]} .* revoked " >/dev/null ||
	fail "revoked key listed as: $("$CTL" key list)"
s=$(status "${KEY[operator]}" GET /api/v1/agents)
[ "$s" = 401 ] || fail "revoked key still works: $s"
grep -q "revoked" "$T/body" || fail "revoked: $(cat "$T/body")"
# Expiry: 3 s leaves room for a loaded machine (ASan) between the
# creation and the first use; then the key must stop working by itself.
short=$(api POST /api/v1/keys -d '{"role": "readonly", "expires": 3}' |
	sed -nE 's/.*"key": *"([^"]+)".*/\1/p')
made=$SECONDS
s=$(status "$short" GET /api/v1/agents)
[ "$s" = 200 ] || [ $((SECONDS - made)) -ge 2 ] ||
	fail "fresh key refused: $s $(cat "$T/body")"
key_expired() { [ "$(status "$short" GET /api/v1/agents)" = 401 ]; }
wait_for 15 "the 3 s key to expire" key_expired
pass "revoked and expired keys refused"

# Health is public and says only that the center is up.
s=$(status "" GET /api/v1/health)
[ "$s" = 200 ] || fail "health: $s"
pass "health is public"
