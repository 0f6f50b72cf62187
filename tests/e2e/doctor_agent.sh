#!/bin/bash
# vigil-agent check --all on an endpoint: the network sheet seen by an
# enrolled agent against a real center. All ok (exit 0, --json parses);
# a bare IP; the environment's proxy; real squids with Basic (ok, missing
# and wrong credentials), NTLM and Negotiate (unsupported); mitmproxy
# intercepting TLS (the issuer it shows is named), from the agent and from
# vigilctl doctor.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/squid.sh"
. "$(dirname "$0")/doctor.inc"

command -v mitmdump >/dev/null ||
	skip "mitmdump not found (Debian package mitmproxy, scripts/install-deps)"

# Squid runs as its own user when started by root: let it into $T.
chmod 711 "$T"
at_exit 'squid_stop "$T/sq-basic"; squid_stop "$T/sq-ntlm";
	squid_stop "$T/sq-nego"'

standard_center
export VIGIL_MACHINE_ID_FILE
VIGIL_MACHINE_ID_FILE=$(machine_id doctor-a)
LD_PRELOAD=$NSSW NSS_WRAPPER_HOSTS=$T/hosts "$AGENT" enroll \
	--server "https://$DOMAIN:$GW" --token "$(new_token)" --ca "$PKI/ca.crt" \
	--data-dir "$T/a" >"$T/enroll-a.log" 2>&1 ||
	fail "enroll by name: $(cat "$T/enroll-a.log")"

# 1. All ok from an endpoint that reaches its center by name.
ntp_start 0
rc=0
out=$(agent_check --data-dir "$T/a" --all --ntp "127.0.0.1:$NTP_PORT") || rc=$?
echo "$out"
[ "$rc" -eq 0 ] || fail "all-ok check exited $rc"
expect_line "$out" "ok   enrollment: agent "
expect_line "$out" "ok   center name: $DOMAIN resolves to 127.0.0.1 in "
expect_line "$out" "ok   port $GW/tcp gateway (this agent -> center): $DOMAIN:$GW accepted the connection in "
expect_line "$out" "info proxy (environment): no http_proxy, https_proxy or no_proxy set; direct connections"
expect_line "$out" "ok   center certificate: verifies against the pinned CA ($T/a/ca.pem, SHA-256 "
expect_line "$out" "ok   CA certificate: $T/a/ca.pem (CN=Vigil CA ($DOMAIN) "
expect_line "$out" "ok   heartbeat: accepted by the center"
expect_line "$out" "ok   clock: within "
expect_line "$out" "ok   clock (NTP 127.0.0.1:$NTP_PORT): within "
expect_line "$out" "info port 10443/tcp reputation service (center -> vigil-inteld): not configured (--intel HOST[:PORT])"
if grep -qE '^(warn|FAIL)' <<<"$out"; then fail "a warning in the all-ok run"; fi
agent_check --data-dir "$T/a" --all --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["status"] == "ok" and d["exit"] == 0, d
s = {c["check"]: c["status"] for c in d["checks"]}
assert s["heartbeat"] == "ok" and s["center certificate"] == "ok", s
' || fail "check --all --json"
# The plain check is unchanged: no network sheet without --all.
out=$(agent_check --data-dir "$T/a") || fail "plain check: $out"
if grep -q 'center name' <<<"$out"; then fail "plain check ran the sheet"; fi
rc=0
"$AGENT" check --data-dir "$T/a" --ntp 127.0.0.1 >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 2 ] || fail "a sheet option without --all: exit $rc"
pass "all ok from an endpoint: exit 0, --json parses"

# 2. The environment asks for a proxy that Vigil does not use.
rc=0
out=$(https_proxy=http://u:secret@127.0.0.1:3128 agent_check --data-dir "$T/a" --all) || rc=$?
[ "$rc" -eq 1 ] || fail "environment proxy: exit $rc"
expect_line "$out" "warn proxy (environment): https_proxy=http://127.0.0.1:3128 set, no proxy configured; fix: Vigil never uses the environment's proxy"
if grep -q secret <<<"$out"; then fail "the proxy password was printed"; fi
pass "environment proxy: a warning, credentials hidden"

# 3. An agent enrolled by address: works, with a warning. Squid forwards
# CONNECT only to 127.0.0.1 (it resolves no test names), so the proxy
# checks below use this agent.
VIGIL_MACHINE_ID_FILE=$(machine_id doctor-b)
"$AGENT" enroll --server "https://127.0.0.1:$GW" --token "$(new_token)" \
	--ca "$PKI/ca.crt" --data-dir "$T/b" >"$T/enroll-b.log" 2>&1 ||
	fail "enroll by address: $(cat "$T/enroll-b.log")"
rc=0
out=$(agent_check --data-dir "$T/b" --all) || rc=$?
[ "$rc" -eq 1 ] || fail "bare IP: exit $rc"
expect_line "$out" "warn center name: 127.0.0.1 is an IP address, not a DNS name; fix: enroll against the center's DNS name"
pass "a bare IP is a warning on an endpoint"

# 4. Squid with Basic: accepted with the right credentials, named without
# them or with a wrong password.
squid_start "$T/sq-basic" basic vigil 's3cret pw' || fail "squid basic"
PX=http://127.0.0.1:$SQUID_PORT
printf 'vigil:s3cret pw\n' >"$T/cred"
printf 'vigil:wrong\n' >"$T/bad"
chmod 600 "$T/cred" "$T/bad"
rc=0
out=$(agent_check --data-dir "$T/b" --all --proxy "$PX" --proxy-user-file "$T/cred") || rc=$?
echo "$out"
expect_line "$out" "ok   proxy: $PX answers CONNECT 127.0.0.1:$GW with HTTP 407 in "
expect_line "$out" "ok   proxy authentication: Basic (offered: Basic): the credentials are accepted (tunnel in "
expect_line "$out" "ok   center certificate: verifies against the pinned CA"
expect_line "$out" "info proxy (environment): none set; the configured proxy $PX is used, the environment is not"
[ "$rc" -eq 1 ] || fail "basic proxy: exit $rc (only the bare IP should warn)"
rc=0
out=$(agent_check --data-dir "$T/b" --all --proxy "$PX") || rc=$?
[ "$rc" -eq 2 ] || fail "basic without credentials: exit $rc"
expect_line "$out" "FAIL proxy authentication: the proxy asks for Basic and no credentials are configured; fix: give the proxy credentials (--proxy-user-file)"
out=$(agent_check --data-dir "$T/b" --all --proxy "$PX" --proxy-user-file "$T/bad") || true
expect_line "$out" "FAIL proxy authentication: Basic (offered: Basic): the proxy refused the credentials (HTTP 407); fix: check the proxy user name and password"
if grep -q 's3cret\|wrong' <<<"$out"; then fail "a proxy password was printed"; fi
squid_stop "$T/sq-basic" || true
pass "squid with Basic: ok, no credentials, wrong credentials"

# 5. Squid asking for NTLM only, then Negotiate only: unsupported.
squid_start "$T/sq-ntlm" ntlm || fail "squid ntlm"
rc=0
out=$(agent_check --data-dir "$T/b" --all --proxy "http://127.0.0.1:$SQUID_PORT") || rc=$?
[ "$rc" -eq 2 ] || fail "ntlm: exit $rc"
expect_line "$out" "FAIL proxy authentication: the proxy asks for NTLM; unsupported: Vigil supports Basic or none (NTLM and Negotiate are not supported); fix: configure the proxy to offer Basic to the agents"
squid_stop "$T/sq-ntlm" || true
squid_start "$T/sq-nego" negotiate || fail "squid negotiate"
out=$(agent_check --data-dir "$T/b" --all --proxy "http://127.0.0.1:$SQUID_PORT") || true
expect_line "$out" "FAIL proxy authentication: the proxy asks for Negotiate; unsupported: Vigil supports Basic or none"
squid_stop "$T/sq-nego" || true
pass "squid with NTLM or Negotiate: unsupported, named"

# 6. mitmproxy intercepting TLS: the tunnel opens, the certificate seen is
# mitmproxy's; the agent and vigilctl doctor name its issuer.
MP=$(squid_pick_port)
# mitmproxy resolves the center's name through the test's hosts file too.
LD_PRELOAD=$NSSW NSS_WRAPPER_HOSTS=$T/hosts mitmdump --listen-host 127.0.0.1 --listen-port "$MP" --ssl-insecure \
	--set confdir="$T/mitm" >"$T/mitm.log" 2>&1 &
PIDS+=($!)
# (Only the probes' own errors are silenced: a failed wait must say so.
# mitmproxy is a Python program: slow to start on a loaded machine.)
wait_for 60 "mitmproxy to listen" bash -c "exec 2>/dev/null 3<>/dev/tcp/127.0.0.1/$MP"
wait_for 30 "mitmproxy's CA certificate" bash -c "openssl x509 -in '$T/mitm/mitmproxy-ca-cert.pem' -noout 2>/dev/null"
MITM_ISSUER=$(openssl x509 -in "$T/mitm/mitmproxy-ca-cert.pem" -noout -subject -nameopt RFC2253 | sed 's/^subject=//')
rc=0
out=$(agent_check --data-dir "$T/b" --all --proxy "http://127.0.0.1:$MP") || rc=$?
echo "$out"
[ "$rc" -eq 2 ] || fail "mitmproxy: exit $rc"
expect_line "$out" "ok   proxy authentication: none asked: the tunnel opens without credentials"
expect_line "$out" "FAIL center certificate: https://127.0.0.1:$GW: the server's certificate was issued by '$MITM_ISSUER' but this agent trusts only"
expect_contains "$out" "TLS interception is not supported"
expect_line "$out" "FAIL clock: not checked: no verified connection to the center"
rc=0
out=$(doctor -c "$T/vigild.conf" --proxy "http://127.0.0.1:$MP") || rc=$?
[ "$rc" -eq 2 ] || fail "doctor via mitmproxy: exit $rc"
expect_line "$out" "ok   proxy: http://127.0.0.1:$MP answers CONNECT $DOMAIN:$GW with HTTP 200 in "
expect_line "$out" "FAIL center certificate (as agents see it): https://$DOMAIN:$GW: the server's certificate was issued by '$MITM_ISSUER' but this agent trusts only"
pass "mitmproxy: interception named with the issuer seen"
