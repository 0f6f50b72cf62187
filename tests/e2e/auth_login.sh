#!/bin/bash
# Login: local users with argon2id passwords log in for a session cookie
# (Secure, HttpOnly, SameSite=Strict) and a CSRF token that every change
# made with the cookie must carry. Wrong passwords and unknown users get
# the same answer; repeated failures lock the account for a while; TOTP
# two-factor is enrolled, required at login and never accepted twice;
# sessions end when idle, at their lifetime, at logout, and when the user
# is changed or disabled; logins are rate limited per source address.
. "$(dirname "$0")/lib.sh"

PKI=$T/pki
DATA=$T/data
make_pki "$PKI"
conf() {
	write_conf "$T/vigild.conf" "$PKI" "$DATA" "[admin]" \
		"login_rate = $1" "login_max_failures = 3" "lockout = 3s" \
		"session_idle = 3s" "session_lifetime = 6s"
}
conf 1000
start_center "$T/vigild.conf" "$DATA"
URL=https://127.0.0.1:$ADM

# login USER PASS [TOTP]: status; headers in $T/h, body in $T/b.
login() {
	local body
	body=$(printf '{"username": "%s", "password": "%s"%s}' "$1" "$2" \
		"${3:+, \"totp\": \"$3\"}")
	curl -sS -D "$T/h" -o "$T/b" -w '%{http_code}' --cacert "$PKI/ca.crt" \
		-H 'Content-Type: application/json' -d "$body" "$URL/api/v1/login"
}
cookie() { sed -nE 's/^[Ss]et-[Cc]ookie: (vigil_session=[0-9a-f]+);.*/\1/p' "$T/h"; }
csrf() { sed -nE 's/.*"csrf_token": *"([0-9a-f]+)".*/\1/p' "$T/b"; }
# as COOKIE CSRF METHOD PATH [curl args]: status; body in $T/r.
as() {
	local c=$1 x=$2 m=$3 p=$4
	shift 4
	local hx=()
	[ -n "$x" ] && hx=(-H "X-CSRF-Token: $x")
	curl -sS -o "$T/r" -w '%{http_code}' --cacert "$PKI/ca.crt" \
		-H "Cookie: $c" "${hx[@]}" -X "$m" "$URL$p" "$@"
}

echo 'correct horse battery' | "$CTL" user add alice --role operator \
	--password-stdin >/dev/null || fail "user add"
echo 'short' | "$CTL" user add bob --role analyst --password-stdin \
	>"$T/o" 2>&1 && fail "short password accepted"
grep -q "at least 10" "$T/o" || fail "short password: $(cat "$T/o")"
"$CTL" user list | grep -E "^alice +operator +local +no +no +never" >/dev/null ||
	fail "user list: $("$CTL" user list)"
db_lacks 'correct horse' "password stored in clear"
db "SELECT hash FROM users" | grep -q '^\$argon2id\$' ||
	fail "not an argon2id hash"
pass "users added with argon2id hashes"

[ "$(login alice 'correct horse battery')" = 200 ] || fail "login: $(cat "$T/b")"
grep -iE '^set-cookie: vigil_session=[0-9a-f]{64}; Path=/; Max-Age=6; Secure; HttpOnly; SameSite=Strict' "$T/h" >/dev/null ||
	fail "cookie flags: $(grep -i set-cookie "$T/h")"
C=$(cookie)
X=$(csrf)
[ -n "$X" ] || fail "no csrf token: $(cat "$T/b")"
[ "$(db "SELECT count(*) FROM sessions")" -ge 1 ] || fail "no session stored"
db_lacks "${C#vigil_session=}" "session id stored in clear"
pass "login sets a Secure HttpOnly SameSite=Strict cookie"

[ "$(as "$C" "" GET /api/v1/session)" = 200 ] || fail "session: $(cat "$T/r")"
grep -q '"who": *"user:alice"' "$T/r" || fail "whoami: $(cat "$T/r")"
grep -q '"role": *"operator"' "$T/r" || fail "whoami role: $(cat "$T/r")"
[ "$(as "$C" "" GET /api/v1/agents)" = 200 ] || fail "GET with cookie"
[ "$(as "$C" "" GET /api/v1/users)" = 403 ] || fail "operator reads users"
pass "session identifies the user and its role"

s=$(as "$C" "" POST /api/v1/tokens -d '{}')
[ "$s" = 403 ] || fail "change without CSRF token: $s"
grep -q "X-CSRF-Token" "$T/r" || fail "csrf message: $(cat "$T/r")"
s=$(as "$C" "0000000000000000000000000000000000000000000000000000000000000000" POST /api/v1/tokens -d '{}')
[ "$s" = 403 ] || fail "change with a wrong CSRF token: $s"
s=$(as "$C" "$X" POST /api/v1/tokens -d '{}')
[ "$s" = 201 ] || fail "change with the CSRF token: $s $(cat "$T/r")"
pass "cookie changes need the CSRF token"

[ "$(as "$C" "$X" POST /api/v1/logout)" = 200 ] || fail "logout"
[ "$(as "$C" "" GET /api/v1/session)" = 401 ] || fail "session after logout"
pass "logout ends the session"

# Wrong password and unknown user: the same answer.
[ "$(login alice 'wrong password!')" = 401 ] || fail "wrong password"
wrong=$(cat "$T/b")
[ "$(login nobody 'wrong password!')" = 401 ] || fail "unknown user"
[ "$wrong" = "$(cat "$T/b")" ] || fail "answers differ: $wrong / $(cat "$T/b")"
[ "$(login alice 'correct horse battery')" = 200 ] || fail "failures reset"
pass "wrong password and unknown user answered alike"

for i in 1 2 3; do
	[ "$(login alice "wrong $i password")" = 401 ] || fail "failure $i"
done
[ "$(login alice 'correct horse battery')" = 401 ] || fail "not locked"
[ "$wrong" = "$(cat "$T/b")" ] || fail "lockout tells: $(cat "$T/b")"
grep -q "user alice locked" "$T/vigild.log" || fail "lockout not logged"
sleep 3.2
[ "$(login alice 'correct horse battery')" = 200 ] || fail "lockout does not end"
for i in 1 2 3; do login alice "wrong $i password" >/dev/null; done
"$CTL" user set alice --unlock >/dev/null || fail "unlock"
[ "$(login alice 'correct horse battery')" = 200 ] || fail "unlock did not"
pass "lockout after 3 failures, ends after its time or by unlock"

# Idle and absolute timeouts (3 s, 6 s).
C=$(cookie)
sleep 3.2
[ "$(as "$C" "" GET /api/v1/session)" = 401 ] || fail "idle session lives"
grep -q "idle" "$T/r" || fail "idle message: $(cat "$T/r")"
login alice 'correct horse battery' >/dev/null
C=$(cookie)
# Kept busy (a request every 0.5 s, well inside the idle timeout), the
# session lives past the idle timeout and ends at its lifetime, by 12 s.
t0=$(date +%s.%N)
age() { awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}'; }
while [ "$(as "$C" "" GET /api/v1/session)" = 200 ]; do
	awk -v a="$(age)" 'BEGIN {exit !(a < 12)}' || fail "session outlived its lifetime"
	sleep 0.5
done
grep -q "lifetime" "$T/r" || fail "busy session ended early ($(age) s): $(cat "$T/r")"
awk -v a="$(age)" 'BEGIN {exit !(a >= 3.5)}' || fail "busy session ended at $(age) s"
pass "sessions end when idle and at their lifetime"

# TOTP: enroll, confirm, required, no replay, off.
login alice 'correct horse battery' >/dev/null
C=$(cookie) X=$(csrf)
[ "$(as "$C" "$X" POST /api/v1/session/totp)" = 200 ] || fail "totp enroll: $(cat "$T/r")"
SECRET=$(sed -nE 's/.*"secret": *"([A-Z2-7]+)".*/\1/p' "$T/r")
grep -q "otpauth://totp/Vigil:alice?secret=$SECRET" "$T/r" || fail "uri: $(cat "$T/r")"
[ "$(as "$C" "$X" POST /api/v1/session/totp/confirm -d '{"code": "000000"}')" = 400 ] ||
	fail "wrong confirm code accepted"
code=$(oathtool --totp -b "$SECRET")
[ "$(as "$C" "$X" POST /api/v1/session/totp/confirm -d "{\"code\": \"$code\"}")" = 200 ] ||
	fail "totp confirm: $(cat "$T/r")"
[ "$(login alice 'correct horse battery')" = 401 ] || fail "login without code"
grep -q totp_required "$T/b" || fail "no totp_required: $(cat "$T/b")"
[ "$(login alice 'correct horse battery' 123456)" = 401 ] || fail "wrong code"
next=$(oathtool --totp -b "$SECRET" --now "$(date -u -d '+30 seconds' '+%Y-%m-%d %H:%M:%S UTC')")
[ "$(login alice 'correct horse battery' "$next")" = 200 ] || fail "login with code: $(cat "$T/b")"
[ "$(login alice 'correct horse battery' "$next")" = 401 ] || fail "code replayed"
grep -q "already used" "$T/b" || fail "replay message: $(cat "$T/b")"
"$CTL" user list | grep -E "^alice +operator +local +no +yes" >/dev/null ||
	fail "2FA not listed: $("$CTL" user list)"
"$CTL" user totp off alice >/dev/null || fail "totp off"
[ "$(login alice 'correct horse battery')" = 200 ] || fail "login after totp off"
pass "TOTP enrolled, required, not replayable, turned off by an admin"

# Role change, disable and password change end sessions; disabled users
# cannot log in and their keys stop working.
C=$(cookie) X=$(csrf)
[ "$(as "$C" "$X" POST /api/v1/keys -d '{"label": "alice-auto"}')" = 201 ] || fail "key as alice"
AK=$(sed -nE 's/.*"key": *"([^"]+)".*/\1/p' "$T/r")
grep -q '"role": *"operator"' "$T/r" || fail "alice's key role: $(cat "$T/r")"
"$CTL" user set alice --role readonly >/dev/null || fail "set role"
[ "$(as "$C" "" GET /api/v1/session)" = 401 ] || fail "session survives role change"
s=$(curl -sS -o "$T/r" -w '%{http_code}' --cacert "$PKI/ca.crt" \
	-H "Authorization: Bearer $AK" -d '{}' "$URL/api/v1/tokens")
[ "$s" = 403 ] || fail "alice's operator key kept its role after her demotion: $s"
grep -q "needs the operator role" "$T/r" || fail "demoted key: $(cat "$T/r")"
"$CTL" user set alice --disable >/dev/null || fail "disable"
[ "$(login alice 'correct horse battery')" = 401 ] || fail "disabled user logs in"
s=$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$PKI/ca.crt" \
	-H "Authorization: Bearer $AK" "$URL/api/v1/agents")
[ "$s" = 401 ] || fail "disabled user's key works: $s"
"$CTL" user set alice --enable >/dev/null
echo 'another long password' | "$CTL" user passwd alice --password-stdin >/dev/null ||
	fail "passwd"
[ "$(login alice 'correct horse battery')" = 401 ] || fail "old password works"
[ "$(login alice 'another long password')" = 200 ] || fail "new password refused"
grep -q '"role": *"readonly"' "$T/b" || fail "role not changed: $(cat "$T/b")"
pass "role change, disable and new password take effect at once"

# The last admin cannot be removed or demoted.
echo 'admin password 1' | "$CTL" user add root --role admin --password-stdin >/dev/null
"$CTL" user remove root >"$T/o" 2>&1 && fail "last admin removed"
grep -q "last enabled admin" "$T/o" || fail "last admin: $(cat "$T/o")"
"$CTL" user remove alice >/dev/null || fail "remove"
[ "$(login alice 'another long password')" = 401 ] || fail "removed user logs in"
pass "users removed; the last admin stays"

# Bad input: 400 with the field named, never a 500.
for b in '{"username": 1, "password": "x"}' '{"username": "a"}' \
	'{"username": "a", "password": "b", "extra": 1}' 'not json' '[]'; do
	s=$(curl -sS -o "$T/b" -w '%{http_code}' --cacert "$PKI/ca.crt" -d "$b" "$URL/api/v1/login")
	[ "$s" = 400 ] || fail "login body $b: $s $(cat "$T/b")"
done
s=$(as "vigil_session=zz; other=1" "" GET /api/v1/session)
[ "$s" = 401 ] || fail "malformed cookie: $s"
pass "malformed logins refused with 400"

# vigilctl login keeps a key of the user's role in the config dir, 0600.
export HOME=$T/home XDG_CONFIG_HOME=
echo 'wrong password 1' | env -u VIGIL_API_KEY "$CTL" login --user root \
	--password-stdin >"$T/o" 2>&1 && fail "login with a wrong password"
grep -q "invalid username" "$T/o" || fail "wrong login: $(cat "$T/o")"
[ -e "$HOME/.config/vigil/api.key" ] && fail "key stored after a failed login"
echo 'admin password 1' | env -u VIGIL_API_KEY "$CTL" login --user root \
	--password-stdin --expires 1h >"$T/o" 2>&1 || fail "vigilctl login: $(cat "$T/o")"
grep -q "logged in as root (admin)" "$T/o" || fail "login: $(cat "$T/o")"
[ "$(stat -c %a "$HOME/.config/vigil/api.key")" = 600 ] || fail "key file mode"
env -u VIGIL_API_KEY "$CTL" user list | grep -q "^root " || fail "stored key unused"
"$CTL" key list | grep -E "vigilctl login on .* +user:root +active" >/dev/null ||
	fail "login key: $("$CTL" key list)"
pass "vigilctl login stores a key and later commands use it"

# Two-factor from the command line: enroll and confirm in a password
# session, then vigilctl login needs --totp.
echo 'tina password 1' | "$CTL" user add tina --role analyst --password-stdin >/dev/null
echo 'tina password 1' | "$CTL" user totp enroll --user tina --password-stdin >"$T/o" 2>&1 ||
	fail "totp enroll: $(cat "$T/o")"
TS=$(sed -nE 's/^secret ([A-Z2-7]+)$/\1/p' "$T/o")
grep -q "otpauth://totp/Vigil:tina?secret=$TS" "$T/o" || fail "enroll output: $(cat "$T/o")"
echo 'tina password 1' | "$CTL" user totp confirm 000000 --user tina --password-stdin >"$T/o" 2>&1 &&
	fail "wrong code confirmed"
echo 'tina password 1' | "$CTL" user totp confirm "$(oathtool --totp -b "$TS")" --user tina \
	--password-stdin >"$T/o" 2>&1 || fail "totp confirm: $(cat "$T/o")"
echo 'tina password 1' | env -u VIGIL_API_KEY "$CTL" login --user tina --password-stdin \
	>"$T/o" 2>&1 && fail "login without the code"
grep -q "two-factor code is required" "$T/o" || fail "no code: $(cat "$T/o")"
next=$(oathtool --totp -b "$TS" --now "$(date -u -d '+30 seconds' '+%Y-%m-%d %H:%M:%S UTC')")
echo 'tina password 1' | env -u VIGIL_API_KEY "$CTL" login --user tina --password-stdin \
	--totp "$next" >"$T/o" 2>&1 || fail "login with the code: $(cat "$T/o")"
grep -q "logged in as tina (analyst)" "$T/o" || fail "tina: $(cat "$T/o")"
pass "vigilctl user totp enroll/confirm, then login --totp"

env -u VIGIL_API_KEY "$CTL" logout >"$T/o" 2>&1 || fail "logout: $(cat "$T/o")"
[ -e "$HOME/.config/vigil/api.key" ] && fail "key file left after logout"
"$CTL" key list | grep -E "vigilctl login on .* +user:tina +revoked" >/dev/null ||
	fail "login key not revoked: $("$CTL" key list)"
env -u VIGIL_API_KEY "$CTL" logout >"$T/o" 2>&1 && fail "second logout succeeded"
pass "vigilctl logout revokes the stored key and removes it"

# Rate limit per source address.
stop_center
conf 3
start_center "$T/vigild.conf" "$DATA"
URL=https://127.0.0.1:$ADM
for i in 1 2 3; do login nobody 'x' >/dev/null; done
[ "$(login root 'admin password 1')" = 429 ] || fail "login not rate limited"
grep -qi '^retry-after: [0-9]' "$T/h" || fail "no Retry-After"
pass "logins rate limited per source"
