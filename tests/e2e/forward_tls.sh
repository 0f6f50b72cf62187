#!/bin/bash
# SIEM forwarding over TLS (RFC 5425) and UDP to a real rsyslogd: the
# receiver (rsyslog's ossl netstream driver) demands a client certificate,
# the center verifies the receiver against the configured CA and name;
# a receiver whose certificate does not verify gets nothing and the reason
# is shown; UDP delivers (best effort).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/rsyslog.inc"

standard_center
enroll_agent
# The receiver's certificate: the test PKI's server certificate (names
# 127.0.0.1); the forwarder's client certificate: the agent's, same CA.
OTHER=$T/other
make_pki "$OTHER" other.vigil.test
UDP_PORT=$(free_udp_port)
RS=$T/rs
rs_start "$RS" "global(DefaultNetstreamDriver=\"ossl\" DefaultNetstreamDriverCAFile=\"$PKI/ca.crt\" DefaultNetstreamDriverCertFile=\"$PKI/server.crt\" DefaultNetstreamDriverKeyFile=\"$PKI/server.key\")
module(load=\"imtcp\" StreamDriver.Name=\"ossl\" StreamDriver.Mode=\"1\" StreamDriver.AuthMode=\"x509/certvalid\")
module(load=\"imudp\")
input(type=\"imtcp\" port=\"0\" address=\"127.0.0.1\" listenPortFileName=\"$RS/tls.port\" ruleset=\"tls\")
input(type=\"imudp\" port=\"$UDP_PORT\" address=\"127.0.0.1\" ruleset=\"udp\")
ruleset(name=\"tls\") { action(type=\"omfile\" file=\"$RS/tls.out\" template=\"fields\") }
ruleset(name=\"udp\") { action(type=\"omfile\" file=\"$RS/udp.out\" template=\"fields\") }"
TLS_PORT=$(cat "$RS/tls.port")

# Client certificate without its key: refused when added.
expect_contains "$("$CTL" forward add x --transport tls --host 127.0.0.1 --port "$TLS_PORT" --tls-ca "$PKI/ca.crt" --tls-cert "$T/a/agent.crt" 2>&1 || true)" "both the certificate and the key"
expect_contains "$("$CTL" forward add x --transport tls --host 127.0.0.1 --port "$TLS_PORT" --tls-ca "$T/nonexistent.crt" 2>&1 || true)" "nonexistent.crt"

"$CTL" forward add siem --transport tls --host 127.0.0.1 --port "$TLS_PORT" \
	--tls-ca "$PKI/ca.crt" --tls-cert "$T/a/agent.crt" \
	--tls-key "$T/a/agent.key" --type finding >/dev/null ||
	fail "add tls target"
# Same receiver, but trusting another CA: must not connect.
"$CTL" forward add wrongca --transport tls --host 127.0.0.1 --port "$TLS_PORT" \
	--tls-ca "$OTHER/ca.crt" --tls-cert "$T/a/agent.crt" \
	--tls-key "$T/a/agent.key" >/dev/null || fail "add wrongca target"
# Right CA, wrong name: the certificate does not name "localhost"... it
# does not; 127.0.0.2 is not in it either.
"$CTL" forward add wrongname --transport tls --host localhost --port "$TLS_PORT" \
	--tls-ca "$PKI/ca.crt" --tls-cert "$T/a/agent.crt" \
	--tls-key "$T/a/agent.key" >/dev/null || fail "add wrongname target"
# Findings only: the center's audit entries are events too.
"$CTL" forward add udp --host 127.0.0.1 --port "$UDP_PORT" --format rfc5424 \
	--type finding >/dev/null || fail "add udp target"

out=$(post_events "$(events_range 1 50)")
expect_contains "$out" '"stored":50'
wait_lines "$RS/tls.out" 50
wait_lines "$RS/udp.out" 50
seqs=$(sed -nE 's/.* seq="([0-9]+)".*/\1/p' "$RS/tls.out" | tr '\n' ' ')
[ "$seqs" = "$(seq 1 50 | tr '\n' ' ')" ] || fail "tls: $seqs"
expect_contains "$(sed -n 1p "$RS/tls.out")" "|vigil|-|finding|129|[vigil@32473 agent=\"$AID\" seq=\"1\" level=\"alert\"]|{\"n\":1}"
expect_contains "$(sed -n 1p "$RS/udp.out")" "|vigil|-|finding|129|[vigil@32473 agent=\"$AID\" seq=\"1\" level=\"alert\"]|{\"n\":1}"
pass "tls (client certificate, receiver verified) and udp deliver, field by field"

list=$(api GET /api/v1/forward)
wrong=$(python3 -c 'import json,sys; t=[t for t in json.load(sys.stdin)["targets"] if t["name"]==sys.argv[1]][0]; print(t["state"], t["sent"], t["lag_events"], t["last_error"])' wrongca <<<"$list")
expect_contains "$wrong" "does not verify against $OTHER/ca.crt"
case $wrong in backoff*|connecting*) ;; *) fail "wrongca: $wrong" ;; esac
wrong=$(python3 -c 'import json,sys; t=[t for t in json.load(sys.stdin)["targets"] if t["name"]==sys.argv[1]][0]; print(t["state"], t["sent"], t["lag_events"], t["last_error"])' wrongname <<<"$list")
expect_contains "$wrong" "does not verify"
expect_contains "$("$CTL" forward test wrongca 2>&1 || true)" "not connected"
[ "$(wc -l <"$RS/tls.out")" = 50 ] || fail "a target with the wrong CA delivered"
pass "receivers that do not verify (wrong CA, wrong name) get nothing; the reason is shown"

expect_contains "$("$CTL" forward test siem)" "Vigil forwarding test"
expect_contains "$("$CTL" forward test udp)" "Vigil forwarding test"
wait_lines "$RS/tls.out" 51
wait_lines "$RS/udp.out" 51
expect_contains "$(tail -1 "$RS/tls.out")" "|test|133|"
pass "forward test over tls and udp"

m=$(curl -sS --cacert "$PKI/ca.crt" "https://127.0.0.1:$ADM/metrics" -H "Authorization: Bearer $VIGIL_API_KEY")
expect_contains "$m" 'vigil_forward_sent_total{target="siem"} 50'
expect_contains "$m" 'vigil_forward_lag_events{target="siem"} 0'
expect_contains "$m" 'vigil_forward_connected{target="siem"} 1'
# Its lag counts the 50 findings and the center's audit entries since.
lag=$(sed -nE 's/^vigil_forward_lag_events\{target="wrongca"\} ([0-9]+)$/\1/p' <<<"$m")
[ -n "$lag" ] && [ "$lag" -ge 50 ] || fail "wrongca lag: '$lag'"
pass "metrics: sent, lag, connected"

# Outage over TLS: the receiver stops, events are stored, it comes back on
# the same port: all arrive, in order, once.
rs_stop
sleep 1
post_events "$(events_range 51 150)" >/dev/null
sleep 1
expect_contains "$("$CTL" forward test siem 2>&1 || true)" "not connected"
RS2=$T/rs2
rs_start "$RS2" "global(DefaultNetstreamDriver=\"ossl\" DefaultNetstreamDriverCAFile=\"$PKI/ca.crt\" DefaultNetstreamDriverCertFile=\"$PKI/server.crt\" DefaultNetstreamDriverKeyFile=\"$PKI/server.key\")
module(load=\"imtcp\" StreamDriver.Name=\"ossl\" StreamDriver.Mode=\"1\" StreamDriver.AuthMode=\"x509/certvalid\")
input(type=\"imtcp\" port=\"$TLS_PORT\" address=\"127.0.0.1\" ruleset=\"tls\")
ruleset(name=\"tls\") { action(type=\"omfile\" file=\"$RS2/tls.out\" template=\"fields\") }"
wait_lines "$RS2/tls.out" 100
sleep 1
seqs=$(sed -nE 's/.* seq="([0-9]+)".*/\1/p' "$RS2/tls.out" | tr '\n' ' ')
[ "$seqs" = "$(seq 51 150 | tr '\n' ' ')" ] || fail "tls after the outage: $seqs"
pass "tls outage: 100 events arrived after the receiver came back, in order, once"
