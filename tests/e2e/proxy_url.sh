#!/bin/bash
# Proxy settings an agent may be given wrongly, through a real squid with
# Basic auth: credentials in the --proxy URL are refused with a sentence
# (never echoed), a wrong password in the credentials file is reported as
# "refused the credentials (HTTP 407)", `vigil-agent check` never prints a
# proxy password (even one left in an older state.json), and check takes
# the center's time only from a verified connection.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/squid.sh"

chmod 711 "$T" # squid runs as an unprivileged user and must reach its dir
standard_center
TOKEN=$(new_token --uses 5)
export VIGIL_MACHINE_ID_FILE
VIGIL_MACHINE_ID_FILE=$(machine_id p1)
at_exit 'squid_stop "$T/sq"'
squid_start "$T/sq" basic vigil 's3cret:pw' || fail "squid did not start"
PX=http://127.0.0.1:$SQUID_PORT

# 1. Credentials in the URL: refused before anything is sent.
rc=0
out=$("$AGENT" enroll --server "https://127.0.0.1:$GW" --token "$TOKEN" \
	--ca "$PKI/ca.crt" --data-dir "$T/a" \
	--proxy "http://vigil:s3cret:pw@127.0.0.1:$SQUID_PORT" 2>&1) || rc=$?
echo "$out"
[ "$rc" -ne 0 ] || fail "enrolled with credentials in the proxy URL"
expect_contains "$out" "credentials in the proxy URL are not accepted"
expect_contains "$out" "--proxy-user-file"
if grep -q 's3cret' <<<"$out"; then fail "the message repeats the password"; fi
[ ! -e "$T/a/state.json" ] || fail "a state was written for a refused URL"
pass "credentials in the proxy URL refused, password not repeated"

out=$("$AGENT" enroll --server "https://127.0.0.1:$GW" --token "$TOKEN" \
	--ca "$PKI/ca.crt" --data-dir "$T/a" --proxy "http://127.0.0.1" 2>&1) &&
	fail "a proxy URL without a port was accepted"
expect_contains "$out" "no port"
pass "a proxy URL without a port refused"

# 2. A wrong password in the credentials file: the proxy's 407 in words.
printf 'vigil:wrong' >"$T/bad-cred"
chmod 600 "$T/bad-cred"
out=$("$AGENT" enroll --server "https://127.0.0.1:$GW" --token "$TOKEN" \
	--ca "$PKI/ca.crt" --data-dir "$T/a" --proxy "$PX" \
	--proxy-user-file "$T/bad-cred" 2>&1) && fail "enrolled with a wrong proxy password"
echo "$out"
expect_contains "$out" "refused the credentials (HTTP 407)"
pass "wrong proxy password reported as a 407 refusal"

# 3. The right credentials; then a state from an older version with the
# password inside the URL: check refuses it and never prints it.
printf 'vigil:s3cret:pw' >"$T/cred"
chmod 600 "$T/cred"
"$AGENT" enroll --server "https://127.0.0.1:$GW" --token "$TOKEN" \
	--ca "$PKI/ca.crt" --data-dir "$T/a" --proxy "$PX" \
	--proxy-user-file "$T/cred" >"$T/enroll.log" 2>&1 ||
	fail "enroll through the proxy: $(cat "$T/enroll.log")"
out=$("$AGENT" check --data-dir "$T/a" 2>&1) || fail "check failed: $out"
echo "$out"
expect_contains "$out" "via proxy $PX"
python3 - "$T/a/state.json" "$SQUID_PORT" <<'PY'
import json, sys
p, port = sys.argv[1], sys.argv[2]
s = json.load(open(p))
s["proxy"] = "http://vigil:s3cret:pw@127.0.0.1:%s" % port
json.dump(s, open(p, "w"))
PY
rc=0
out=$("$AGENT" check --data-dir "$T/a" 2>&1) || rc=$?
echo "$out"
[ "$rc" -ne 0 ] || fail "check passed with credentials in the stored proxy URL"
if grep -q 's3cret' <<<"$out"; then fail "check printed the proxy password"; fi
expect_contains "$out" "via proxy $PX"
expect_contains "$out" "credentials in the proxy URL are not accepted"
pass "check never prints a proxy password"

# 4. The clock: with the pinned CA replaced, the center cannot be verified,
# and its (unverified) time must not make the clock "ok".
VIGIL_MACHINE_ID_FILE=$(machine_id p2)
"$AGENT" enroll --server "https://127.0.0.1:$GW" --token "$TOKEN" \
	--ca "$PKI/ca.crt" --data-dir "$T/b" >"$T/enroll-b.log" 2>&1 ||
	fail "direct enroll: $(cat "$T/enroll-b.log")"
out=$("$AGENT" check --data-dir "$T/b" 2>&1) || fail "check failed: $out"
expect_contains "$out" "ok   clock: within"
make_pki "$T/other"
[ -f "$T/b/ca.pem" ] || fail "no pinned CA file at $T/b/ca.pem"
cp "$T/other/ca.crt" "$T/b/ca.pem"
rc=0
out=$("$AGENT" check --data-dir "$T/b" 2>&1) || rc=$?
echo "$out"
[ "$rc" -ne 0 ] || fail "check passed against a foreign CA"
expect_contains "$out" "FAIL center certificate"
if grep -q '^ok   clock' <<<"$out"; then
	fail "the clock was declared fine from an unverified connection"
fi
expect_contains "$out" "FAIL clock: not checked: no verified connection"
pass "the clock is taken only from a verified connection"
