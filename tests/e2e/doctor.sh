#!/bin/bash
# vigilctl doctor on a real center: each requirement of the network sheet
# broken once on loopback, and the exact line the doctor prints for it; the
# all-ok run exits 0 and --json parses. The center's name resolves through
# nss_wrapper (a hosts file of the test's own, for the doctor only), the
# SIEM is a real rsyslogd, the NTP server a small UDP responder with a
# skewed clock (a party we cannot run skewed here).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/rsyslog.inc"
. "$(dirname "$0")/doctor.inc"

standard_center
CONF=$T/vigild.conf

# 1. Everything configured is fine: exit 0, nothing worse than info.
ntp_start 0
rc=0
out=$(doctor -c "$CONF" --ntp "127.0.0.1:$NTP_PORT") || rc=$?
echo "$out"
[ "$rc" -eq 0 ] || fail "all-ok run exited $rc"
expect_line "$out" "ok   center name: $DOMAIN resolves to 127.0.0.1 in "
expect_line "$out" "ok   server certificate names: $PKI/server.crt names $DOMAIN (DNS:$DOMAIN, IP:127.0.0.1, IP:::1)"
expect_line "$out" "ok   port $GW/tcp gateway (agents -> center): 127.0.0.1:$GW accepted the connection in "
expect_line "$out" "ok   port $ADM/tcp console/API (admins -> center): 127.0.0.1:$ADM accepted the connection in "
expect_line "$out" "ok   center certificate (as agents see it): https://$DOMAIN:$GW/v1/ping verifies against the pinned CA $PKI/ca.crt: no TLS interception (HTTP 200 in "
expect_line "$out" "ok   clock (NTP 127.0.0.1:$NTP_PORT): within "
expect_line "$out" "info port 9443/tcp scan service HTTPS (clients -> vigil-scand): not configured (--scand HOST[:PORT])"
expect_line "$out" "info port 5443/tcp management backend (master -> center): not configured (--master HOST[:PORT])"
expect_line "$out" "info port 7443/tcp analysis collector (center -> collector): not configured (--collector HOST[:PORT])"
expect_line "$out" "info SIEM (514/udp or tcp): not configured (--siem [udp|tcp://]HOST[:PORT])"
if grep -qE '^(warn|FAIL)' <<<"$out"; then fail "a warning in the all-ok run"; fi
pass "all ok: exit 0"

# The same as JSON, one object per check, for monitoring systems.
rc=0
json=$(doctor -c "$CONF" --ntp "127.0.0.1:$NTP_PORT" --json) || rc=$?
[ "$rc" -eq 0 ] || fail "--json exited $rc"
python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["status"] == "ok" and d["exit"] == 0, d
gw = "port %s/tcp gateway (agents -> center)" % sys.argv[1]
c = [c for c in d["checks"] if c["check"] == gw]
assert len(c) == 1, [c["check"] for c in d["checks"]]
assert c[0]["status"] == "ok" and isinstance(c[0]["ms"], int), c
assert all(c["status"] in ("ok", "info") for c in d["checks"]), d
' "$GW" <<<"$json" || fail "--json: $json"
[ "$(grep -c '"check"' <<<"$json")" -eq "$(grep -c . <<<"$out")" ] ||
	fail "--json has not one object per line of the text output"
LD_PRELOAD=$NSSW NSS_WRAPPER_HOSTS=$T/hosts "$CTL" --json doctor -c "$CONF" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["exit"] == 0' ||
	fail "vigilctl --json doctor"
pass "--json: one object per check, parsed by python3"

# 2. A skewed clock: the NTP server is an hour ahead (we are behind).
ntp_stop
ntp_start 3600
rc=0
out=$(doctor -c "$CONF" --ntp "127.0.0.1:$NTP_PORT") || rc=$?
[ "$rc" -eq 2 ] || fail "skew: exit $rc"
expect_line "$out" "FAIL clock (NTP 127.0.0.1:$NTP_PORT): this clock is 3600."
expect_contains "$out" " s behind 127.0.0.1:$NTP_PORT (stratum 2, "
expect_contains "$out" "; fix: synchronize this host's clock (systemd-timesyncd, chrony)"
ntp_stop
ntp_start -20
rc=0
out=$(doctor -c "$CONF" --ntp "127.0.0.1:$NTP_PORT") || rc=$?
[ "$rc" -eq 1 ] || fail "small skew: exit $rc"
expect_line "$out" "warn clock (NTP 127.0.0.1:$NTP_PORT): this clock is 20."
expect_contains "$out" " s ahead of 127.0.0.1:$NTP_PORT"
ntp_stop
# A port without NTP server: refused at once (ICMP), not a timeout.
out=$(doctor -c "$CONF" --ntp "127.0.0.1:$NTP_PORT" --timeout 2) || true
expect_line "$out" "FAIL clock (NTP 127.0.0.1:$NTP_PORT): port unreachable: no NTP server there; fix: "
pass "clock skew against NTP: fail at an hour, warn at 20 s"

# 3. A closed port of the matrix, and an open one, each timed.
CLOSED=$(free_udp_port) # nothing listens on it over TCP either
rc=0
out=$(doctor -c "$CONF" --scand "127.0.0.1:$CLOSED" --scand-http "127.0.0.1:$ADM" \
	--master "127.0.0.1:$GW") || rc=$?
[ "$rc" -eq 2 ] || fail "closed port: exit $rc"
expect_line "$out" "FAIL port $CLOSED/tcp scan service HTTPS (clients -> vigil-scand): 127.0.0.1:$CLOSED: connection refused after "
expect_contains "$out" "; fix: start the service, or open the port in the firewalls on the way"
expect_line "$out" "ok   port $ADM/tcp scan service HTTP (clients -> vigil-scand): 127.0.0.1:$ADM accepted the connection in "
expect_line "$out" "ok   port $GW/tcp management backend (master -> center): 127.0.0.1:$GW accepted the connection in "
pass "closed port named, with the time it took"

# 4. The SIEM: a test message to a real rsyslogd, over UDP and TCP, found
# there; and a port where nothing listens.
RS=$T/rs
UDP=$(free_udp_port)
rs_start "$RS" "module(load=\"imudp\") module(load=\"imtcp\")
input(type=\"imudp\" port=\"$UDP\" address=\"127.0.0.1\" ruleset=\"r\")
input(type=\"imtcp\" port=\"0\" address=\"127.0.0.1\" listenPortFileName=\"$RS/tcp.port\" ruleset=\"r\")
ruleset(name=\"r\") { action(type=\"omfile\" file=\"$RS/out\" template=\"fields\") }"
TCP=$(cat "$RS/tcp.port")
out=$(doctor -c "$CONF" --siem "127.0.0.1:$UDP" --siem "tcp://127.0.0.1:$TCP") ||
	fail "siem: exit $?: $out"
echo "$out" | grep SIEM
expect_line "$out" "ok   SIEM 127.0.0.1:$UDP/udp: test message sent in "
expect_line "$out" "ok   SIEM 127.0.0.1:$TCP/tcp: test message sent in "
for n in $(grep -oE 'Vigil doctor test message [0-9a-f]{12}' <<<"$out" | awk '{print $5}'); do
	wait_for 10 "rsyslog to write test message $n" grep -qF "|vigil-doctor|-|-|13|-|Vigil doctor test message $n" "$RS/out"
done
[ "$(grep -c "Vigil doctor test message" "$RS/out")" -eq 2 ] || { cat "$RS/out" >&2; false; } ||
	fail "rsyslog got $(grep -c 'Vigil doctor test message' "$RS/out") test messages"
# The same SIEMs as the center's forwarding targets file names them, and a
# TLS one that is down (connected to, not written to).
cat >"$T/targets" <<EOF
[rs-udp]
transport = udp
host = 127.0.0.1
port = $UDP
format = rfc5424
[rs-tcp]
transport = tcp
host = 127.0.0.1
port = $TCP
[rs-tls]
transport = tls
host = 127.0.0.1
port = $CLOSED
ca_file = $PKI/ca.crt
EOF
{ cat "$CONF"; printf '[forward]\ntargets = %s\n' "$T/targets"; } >"$T/fwd.conf"
rc=0
out=$(doctor -c "$T/fwd.conf") || rc=$?
[ "$rc" -eq 2 ] || fail "siem targets: exit $rc: $out"
expect_line "$out" "ok   SIEM 127.0.0.1:$UDP/udp: test message sent in "
expect_line "$out" "ok   SIEM 127.0.0.1:$TCP/tcp: test message sent in "
expect_line "$out" "FAIL port $CLOSED/tcp SIEM rs-tls (TLS syslog) (center -> SIEM): 127.0.0.1:$CLOSED: connection refused after "
for n in $(grep -oE 'Vigil doctor test message [0-9a-f]{12}' <<<"$out" | awk '{print $5}'); do
	wait_for 10 "rsyslog to write test message $n" grep -qF "|vigil-doctor|-|-|13|-|Vigil doctor test message $n" "$RS/out"
done
[ "$(grep -c "Vigil doctor test message" "$RS/out")" -eq 4 ] ||
	fail "rsyslog got $(grep -c 'Vigil doctor test message' "$RS/out") test messages, not 4"
rs_stop
rc=0
out=$(doctor -c "$CONF" --siem "udp://127.0.0.1:$UDP" --siem "tcp://127.0.0.1:$TCP") || rc=$?
[ "$rc" -eq 2 ] || fail "siem down: exit $rc"
expect_line "$out" "FAIL SIEM 127.0.0.1:$UDP/udp: port unreachable: nothing listens there (ICMP); fix: "
expect_line "$out" "FAIL SIEM 127.0.0.1:$TCP/tcp: connection refused after "
pass "SIEM (given and from the targets file): test messages reach rsyslog over UDP and TCP; a dead one is named"

# 5. Wrong SAN: a PKI whose server certificate lacks the center's name.
make_pki "$T/other" other.vigil.test
sed "s#^pki_dir = .*#pki_dir = $T/other#" "$CONF" >"$T/other.conf"
rc=0
out=$(doctor -c "$T/other.conf") || rc=$?
[ "$rc" -eq 2 ] || fail "wrong SAN: exit $rc"
expect_line "$out" "FAIL server certificate names: $T/other/server.crt does not name $DOMAIN: it names DNS:other.vigil.test, IP:127.0.0.1, IP:::1; fix: reissue the server certificate with the name"
# The center serves the right certificate; checked against the other CA
# it is what an intercepting proxy looks like.
expect_line "$out" "FAIL center certificate (as agents see it): https://$DOMAIN:$GW: the server's certificate was issued by "
pass "a server certificate without the name"

# 6. Expired and expiring certificates (signed by the real CA).
mkdir -m 700 "$T/exp"
cp "$PKI"/* "$T/exp/"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-keyout "$T/exp/x.key" -subj "/CN=$DOMAIN" -out "$T/exp/x.csr" 2>/dev/null
printf 'subjectAltName=DNS:%s\n' "$DOMAIN" >"$T/exp/san"
openssl x509 -req -in "$T/exp/x.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" \
	-days -1 -extfile "$T/exp/san" -out "$T/exp/server.crt" 2>/dev/null ||
	fail "openssl: expired certificate"
sed "s#^pki_dir = .*#pki_dir = $T/exp#" "$CONF" >"$T/exp.conf"
rc=0
out=$(doctor -c "$T/exp.conf") || rc=$?
[ "$rc" -eq 2 ] || fail "expired: exit $rc"
expect_line "$out" "FAIL server certificate: $T/exp/server.crt (CN=$DOMAIN) expired on "
expect_contains "$out" "; fix: renew it"
openssl x509 -req -in "$T/exp/x.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" \
	-days 10 -extfile "$T/exp/san" -out "$T/exp/server.crt" 2>/dev/null ||
	fail "openssl: expiring certificate"
rc=0
out=$(doctor -c "$T/exp.conf") || rc=$?
[ "$rc" -eq 1 ] || fail "expiring: exit $rc: $out"
expect_line "$out" "warn server certificate: $T/exp/server.crt (CN=$DOMAIN) expires on "
grep -qE ', in (9|10) days; fix: renew it before it expires$' <<<"$out" ||
	fail "expiring: $out"
pass "expired certificate fails, one expiring within 30 days warns"

# 7. A bare IP where a name is required, and a name that does not resolve.
sed "s#^fqdn = .*#fqdn = 127.0.0.1#" "$CONF" >"$T/ip.conf"
out=$(doctor -c "$T/ip.conf") || true
expect_line "$out" "FAIL center name: 127.0.0.1 is an IP address, not a DNS name; fix: give the center a DNS name"
sed "s#^fqdn = .*#fqdn = nowhere.vigil.test#" "$CONF" >"$T/nx.conf"
out=$(doctor -c "$T/nx.conf") || true
expect_line "$out" "FAIL center name: nowhere.vigil.test does not resolve ("
pass "the center's name: a bare IP and an unknown name"

# 8. The center stopped: its ports are closed. vigild.ports goes with it,
# so port 0 is reported as such, and the ports it had are given instead.
stop_center
out=$(doctor -c "$CONF") || true
expect_line "$out" "FAIL port gateway: port 0 in $CONF and the center does not run; fix: start vigild"
awk -v gw="$GW" -v adm="$ADM" '/^\[gateway\]/ { s = gw } /^\[admin\]/ { s = adm }
	/^port = 0$/ { print "port = " s; next } { print }' "$CONF" >"$T/fixed.conf"
rc=0
out=$(doctor -c "$T/fixed.conf") || rc=$?
[ "$rc" -eq 2 ] || fail "stopped center: exit $rc"
expect_line "$out" "FAIL port $GW/tcp gateway (agents -> center): 127.0.0.1:$GW: connection refused after "
pass "a stopped center's ports"

# 9. ICMP (optional): as root through a raw socket; as a user outside
# net.ipv4.ping_group_range a warning that says why.
if [ "$(id -u)" = 0 ]; then
	out=$(doctor -c "$T/fixed.conf" --icmp) || true
	expect_line "$out" "ok   ICMP echo $DOMAIN: echo reply in "
	range=$(tr '\t' ' ' </proc/sys/net/ipv4/ping_group_range)
	gid=$(id -g nobody)
	if awk -v g="$gid" '{ exit !(g < $1 || g > $2) }' /proc/sys/net/ipv4/ping_group_range; then
		chmod 755 "$T"
		out=$(runuser -u nobody -- env LD_PRELOAD="$NSSW" NSS_WRAPPER_HOSTS="$T/hosts" \
			"$CTL" doctor -c "$T/fixed.conf" --icmp 2>&1) || true
		chmod 700 "$T"
		expect_line "$out" "warn ICMP echo $DOMAIN: not permitted: a ping socket needs a group in net.ipv4.ping_group_range (now $range), a raw one CAP_NET_RAW (Permission denied)"
	fi
	pass "ICMP: echo reply, or a warning naming the sysctl"
fi
