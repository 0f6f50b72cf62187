#!/bin/bash
# Enrollment and heartbeats through a real squid (HTTP CONNECT) with Basic
# authentication; wrong credentials and an NTLM-only proxy are refused with
# a message that says what to change. The CONNECTs are in squid's log.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/squid.sh"

chmod 711 "$T" # squid runs as an unprivileged user and must reach its dir
standard_center
TOKEN=$(new_token --uses 3)
export VIGIL_MACHINE_ID_FILE
VIGIL_MACHINE_ID_FILE=$(machine_id x1)
cleanup_squid() {
	squid_stop "$T/sq-basic" 2>/dev/null || true
	squid_stop "$T/sq-ntlm" 2>/dev/null || true
}
at_exit cleanup_squid

squid_start "$T/sq-basic" basic vigil 's3cret:pw' || fail "squid (basic) did not start"
BASIC=$SQUID_PORT

out=$("$AGENT" enroll --server "https://127.0.0.1:$GW" --token "$TOKEN" \
	--ca "$PKI/ca.crt" --data-dir "$T/a" --proxy "http://127.0.0.1:$BASIC" \
	--proxy-user 'vigil:wrong' 2>&1) && fail "enrolled with wrong proxy credentials"
echo "$out"
expect_contains "$out" "refused the credentials (HTTP 407)"
pass "wrong proxy credentials refused with a message"

printf 'vigil:s3cret:pw' >"$T/proxy-cred"
chmod 600 "$T/proxy-cred"
"$AGENT" enroll --server "https://127.0.0.1:$GW" --token "$TOKEN" \
	--ca "$PKI/ca.crt" --data-dir "$T/a" --proxy "http://127.0.0.1:$BASIC" \
	--proxy-user-file "$T/proxy-cred" >"$T/enroll.log" 2>&1 ||
	fail "enroll through the proxy: $(cat "$T/enroll.log")"
"$AGENT" run --once --data-dir "$T/a" >"$T/run.log" 2>&1 ||
	fail "heartbeat through the proxy: $(cat "$T/run.log")"
connects() { grep -c "CONNECT 127.0.0.1:$GW" "$T/sq-basic/access.log" 2>/dev/null || true; }
two_connects() { [ "$(connects)" -ge 2 ]; }
wait_for 10 "two CONNECTs in squid's log (found $(connects))" two_connects
n=$(connects)
grep -q " vigil " "$T/sq-basic/access.log" || fail "squid did not log the authenticated user"
"$CTL" agent list | grep -q online || fail "agent not online"
pass "enroll and heartbeat through squid with Basic auth ($n CONNECTs)"

squid_start "$T/sq-ntlm" ntlm || fail "squid (ntlm) did not start"
out=$("$AGENT" enroll --server "https://127.0.0.1:$GW" --token "$TOKEN" \
	--ca "$PKI/ca.crt" --data-dir "$T/b" --proxy "http://127.0.0.1:$SQUID_PORT" \
	--proxy-user 'vigil:s3cret:pw' 2>&1) && fail "enrolled through an NTLM proxy"
echo "$out"
expect_contains "$out" "NTLM"
expect_contains "$out" "only Basic"
pass "NTLM proxy refused with a clear message"
