#!/bin/bash
# Roles enforced where certificates come in (docs/pki.md, "Who accepts
# whom"): the agent gateway takes agent certificates only, so a scand
# certificate from the same CA can neither enroll nor call agent routes,
# and the refusal is logged with the role; vigil-scand takes center, agent
# and master certificates and refuses a collector's; every daemon refuses
# to start (and -n names it) with a server certificate of another role.
# vigild's other listeners refuse a wrong role in the handshake too: the
# management port (master only), the update listener (agent, center) and
# the analysis collector (center only).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/updates.inc"

command -v jq >/dev/null || skip "jq missing (scripts/install-deps installs it)"
standard_center
C=$T/certs
for r in scand collector master center; do
	"$CTL" pki issue --dir "$PKI" --out "$C" --role $r --name $r.example.org \
		--san 127.0.0.1 --usage both >"$T/o" 2>&1 ||
		fail "pki issue --role $r: $(cat "$T/o")"
done
"$CTL" pki issue --dir "$PKI" --out "$C" --role intel --name "$DOMAIN" \
	--san 127.0.0.1 --usage server >"$T/o" 2>&1 || fail "pki issue: $(cat "$T/o")"
wrong_role() {
	metric_value "$(api GET /metrics)" \
		'vigil_tls_handshake_failures_total{reason="wrong_role"}'
}

# A scand certificate on the gateway: refused in the handshake, by role.
TOKEN=$(new_token --uses 1)
code=$(gw_status POST /v1/heartbeat --cert "$C/scand-scand.example.org.crt" \
	--key "$C/scand-scand.example.org.key" -H 'Content-Type: application/json' \
	-d '{"facts": {"hostname": "h"}}')
[ "$code" = 000 ] || fail "a scand certificate got HTTP $code on the gateway"
wait_metric 'vigil_tls_handshake_failures_total{reason="wrong_role"}' 1
grep -q "refused the certificate of scand.example.org from 127.0.0.1: a certificate of role scand may not be used here; the agent gateway accepts agent certificates only" \
	"$T/vigild.log" || fail "refusal not logged: $(grep tls: "$T/vigild.log" | tail -2)"

# ... nor enroll with a valid token: the token stays unused.
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-subj /CN=x -keyout "$T/x.key" -out "$T/x.csr" 2>/dev/null
body=$(jq -n --arg t "$TOKEN" --rawfile csr "$T/x.csr" \
	'{token: $t, csr: $csr, facts: {hostname: "h", machine_id: "0123456789abcdef0123456789abcdef"}}')
code=$(gw_status POST /v1/enroll --cert "$C/scand-scand.example.org.crt" \
	--key "$C/scand-scand.example.org.key" -H 'Content-Type: application/json' \
	-d "$body")
[ "$code" = 000 ] || fail "a scand certificate got HTTP $code enrolling"
wait_metric 'vigil_tls_handshake_failures_total{reason="wrong_role"}' 2
[ "$("$CTL" --json token list | jq '[.[] | select(.used > 0)] | length')" = 0 ] ||
	fail "the token was used: $("$CTL" --json token list)"

# A real agent enrolls with that token and is served.
export VIGIL_MACHINE_ID_FILE
VIGIL_MACHINE_ID_FILE=$(machine_id r1)
"$AGENT" enroll --server "https://127.0.0.1:$GW" --token "$TOKEN" \
	--ca "$PKI/ca.crt" --data-dir "$T/a" >"$T/o" 2>&1 || fail "enroll: $(cat "$T/o")"
"$AGENT" run --once --data-dir "$T/a" >"$T/o" 2>&1 || fail "heartbeat: $(cat "$T/o")"
[ "$(wrong_role)" = 2 ] || fail "the agent was counted as a wrong role"
pass "the agent gateway: scand certificate refused (logged, counted), agent served"

# The other way round: an agent refuses a server that shows another
# component's certificate from the same CA (a scand host answering at the
# center's address), before it sends anything.
SPORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
openssl s_server -quiet -accept "127.0.0.1:$SPORT" -cert "$C/scand-scand.example.org.crt" \
	-key "$C/scand-scand.example.org.key" -www >"$T/s_server.log" 2>&1 &
PIDS+=("$!")
wait_for 10 "openssl s_server" bash -c "exec 3<>/dev/tcp/127.0.0.1/$SPORT"
VIGIL_MACHINE_ID_FILE=$(machine_id r2) "$AGENT" enroll \
	--server "https://127.0.0.1:$SPORT" --token "$TOKEN" --ca "$PKI/ca.crt" \
	--data-dir "$T/b" >"$T/o" 2>&1 && fail "enrolled with a scand server"
expect_contains "$(cat "$T/o")" "is from the trusted CA but refused: a certificate of role scand may not be used here; the agent, connecting to its center, accepts center certificates only"
pass "an agent refuses a server with a scand certificate"

# vigild with a server certificate of another role: -n names it, start
# refuses it.
cp -r "$PKI" "$T/pki2"
cp "$C/intel-$DOMAIN.crt" "$T/pki2/server.crt"
cp "$C/intel-$DOMAIN.key" "$T/pki2/server.key"
write_conf "$T/v2.conf" "$T/pki2" "$T/data2"
"$VIGILD" -n -c "$T/v2.conf" >"$T/n.log" 2>&1 && fail "vigild -n accepted an intel certificate"
expect_contains "$(cat "$T/n.log")" "a certificate of role intel may not be used here; vigild's server certificate accepts center certificates only (and certificates without a role)"
"$VIGILD" -n -c "$T/vigild.conf" >"$T/n.log" 2>&1 || fail "vigild -n: $(cat "$T/n.log")"
pass "vigild -n names a server certificate of the wrong role"

# vigil-scand: own certificate checked; clients by role.
SCAND=$BIN/vigil-scand
scand_conf() {
	cat >"$T/scand.conf" <<EOC
[scand]
data_dir = $T/scand
rules = $SRC/tests/data/scan/markers.yar
[https]
enable = yes
listen = 127.0.0.1
port = 0
cert = $1.crt
key = $1.key
client_ca = $PKI/ca.crt
require_client_cert = yes
EOC
}
scand_conf "$C/collector-collector.example.org"
"$SCAND" -n -c "$T/scand.conf" >"$T/n.log" 2>&1 && fail "vigil-scand -n accepted a collector certificate"
expect_contains "$(cat "$T/n.log")" "a certificate of role collector may not be used here; vigil-scand's server certificate accepts center, scand certificates"
scand_conf "$C/scand-scand.example.org"
"$SCAND" -d -c "$T/scand.conf" >>"$T/scand.log" 2>&1 &
PIDS+=("$!")
wait_for 20 "vigil-scand listening" test -s "$T/scand/vigil-scand.ports"
SP=$(jq -r .https "$T/scand/vigil-scand.ports")
sc() {
	curl -sS -o "$T/sbody" -w '%{http_code}' --cacert "$PKI/ca.crt" \
		--cert "$1.crt" --key "$1.key" "https://127.0.0.1:$SP/api/v1/status" 2>/dev/null || true
}
[ "$(sc "$C/master-master.example.org")" = 200 ] || fail "master refused: $(cat "$T/sbody")"
[ "$(sc "$C/collector-collector.example.org")" = 000 ] || fail "collector served by vigil-scand"
grep -q "refused the certificate of collector.example.org from 127.0.0.1: a certificate of role collector may not be used here; vigil-scand accepts center, master, agent certificates (and certificates without a role)" \
	"$T/scand.log" || fail "scand refusal not logged: $(grep tls: "$T/scand.log" | tail -2)"
pass "vigil-scand: master served, collector refused and logged"

# vigil-inteld's own certificate.
cat >"$T/inteld.conf" <<EOC
[inteld]
data_dir = $T/inteld
map_size = 64M
[https]
listen = 127.0.0.1
port = 0
cert = $C/scand-scand.example.org.crt
key = $C/scand-scand.example.org.key
EOC
"$BIN/vigil-inteld" -n -c "$T/inteld.conf" >"$T/n.log" 2>&1 && fail "vigil-inteld -n accepted a scand certificate"
expect_contains "$(cat "$T/n.log")" "a certificate of role scand may not be used here; vigil-inteld's server certificate accepts center, intel certificates"
pass "vigil-inteld -n names a server certificate of the wrong role"

# vigild's management port (5443) and update listener (18443): the same
# center, restarted with [manage] and [updates] (a repository of one rule
# set, served from its directory as an import leaves it).
stop_center
upd_repo "$T/urepo" "$T/ukeys"
printf 'rule r { condition: true }\n' >"$T/r.yar"
upd_publish "$T/urepo" "$T/ukeys" rules/r.yar 1.0 "$T/r.yar"
write_conf "$T/vigild.conf" "$PKI" "$DATA" "[manage]" "enable = yes" \
	"listen = 127.0.0.1" "port = 0" "[updates]" "root = $T/urepo/1.root.json" \
	"dir = $T/urepo" "listen = 127.0.0.1" "port = 0"
: >"$T/vigild.log"
start_center "$T/vigild.conf" "$DATA"
MG=$(jq -r .manage "$DATA/vigild.ports")
UPD=$(jq -r .updates "$DATA/vigild.ports")
[ "$MG" -gt 0 ] && [ "$UPD" -gt 0 ] || fail "ports: $(cat "$DATA/vigild.ports")"
served() { [ "$(api GET /api/v1/updates | jq -r '.served.roles.timestamp.version // 0')" -ge 1 ]; }
wait_for 20 "the repository served ($(api GET /api/v1/updates))" served
# cr CERTNAME URL: HTTP status with the certificate $C/CERTNAME.{crt,key}
# (000: no HTTP answer, the handshake failed).
cr() {
	curl -sS -o "$T/cbody" -w '%{http_code}' --cacert "$PKI/ca.crt" \
		--cert "$C/$1.crt" --key "$C/$1.key" -H "Vigil-Manage-Protocol: 1.0" "$2" 2>>"$T/curl.err" || true
}
MGURL=https://127.0.0.1:$MG/manage/v1/status
code=$(cr scand-scand.example.org "$MGURL")
[ "$code" = 000 ] || fail "a scand certificate got HTTP $code on the management port: $(cat "$T/cbody")"
wait_metric 'vigil_tls_handshake_failures_total{reason="wrong_role"}' 1
grep -q "refused the certificate of scand.example.org from 127.0.0.1: a certificate of role scand may not be used here; a center's management port accepts master certificates only" \
	"$T/vigild.log" || fail "5443 refusal not logged: $(grep tls: "$T/vigild.log" | tail -2)"
code=$(cr master-master.example.org "$MGURL")
[ "$code" = 200 ] || fail "the master got HTTP $code on 5443: $(cat "$T/cbody")"
pass "5443: a scand certificate refused in the handshake (logged, counted), the master served"

TSURL=https://127.0.0.1:$UPD/v1/updates/timestamp.json
for r in scand-scand.example.org master-master.example.org \
	collector-collector.example.org; do
	code=$(cr "$r" "$TSURL")
	[ "$code" = 000 ] || fail "$r got HTTP $code on the update listener: $(cat "$T/cbody")"
done
wait_metric 'vigil_tls_handshake_failures_total{reason="wrong_role"}' 4
grep -q "refused the certificate of collector.example.org from 127.0.0.1: a certificate of role collector may not be used here; the update listener accepts center, agent certificates (and certificates without a role)" \
	"$T/vigild.log" || fail "18443 refusal not logged: $(grep tls: "$T/vigild.log" | tail -2)"
code=$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$PKI/ca.crt" "$TSURL" 2>/dev/null || true)
[ "$code" = 000 ] || fail "no certificate: HTTP $code on the update listener"
code=$(cr center-center.example.org "$TSURL")
[ "$code" = 200 ] || fail "a center (downstream mirror) got HTTP $code on 18443: $(tail -1 "$T/curl.err")"
cmp "$T/cbody" "$T/urepo/timestamp.json" || fail "18443 served other bytes to the center"
code=$(curl -sS -o "$T/cbody" -w '%{http_code}' --cacert "$PKI/ca.crt" \
	--cert "$T/a/agent.crt" --key "$T/a/agent.key" "$TSURL" || true)
[ "$code" = 200 ] || fail "the agent got HTTP $code on 18443: $(cat "$T/cbody")"
pass "18443: scand, master, collector and no certificate refused in the handshake; agent and center served"

# The analysis collector (7443): a vigild with role = collector and a
# store of its own.
PG_DB=collector write_conf "$T/coll.conf" "$PKI" "$T/coll" "role = collector"
cat >>"$T/coll.conf" <<EOC
[collector]
listen = 127.0.0.1
port = 0
cert_file = $C/collector-collector.example.org.crt
key_file = $C/collector-collector.example.org.key
EOC
"$VIGILD" -d -c "$T/coll.conf" >>"$T/coll.log" 2>&1 &
PIDS+=("$!")
wait_for 20 "the collector to start" test -s "$T/coll/vigild.ports"
CP=$(jq -r .collector "$T/coll/vigild.ports")
CADM=$(jq -r .admin "$T/coll/vigild.ports")
coll_wrong_role() {
	metric_value "$(curl -sS --cacert "$PKI/ca.crt" -H "Authorization: Bearer $(cat "$T/coll/admin.key")" \
		"https://127.0.0.1:$CADM/metrics")" \
		'vigil_tls_handshake_failures_total{reason="wrong_role"}'
}
out=$(timeout 10 openssl s_client -connect "127.0.0.1:$CP" -quiet \
	-CAfile "$PKI/ca.crt" -cert "$C/scand-scand.example.org.crt" \
	-key "$C/scand-scand.example.org.key" </dev/null 2>&1 || true)
grep -q "^ack\|^error" <<<"$out" && fail "7443 answered a scand certificate: $out"
coll_counted() { [ "$(coll_wrong_role)" = 1 ]; }
wait_for 10 "the collector to count wrong_role (now $(coll_wrong_role))" coll_counted
grep -q "refused the certificate of scand.example.org from 127.0.0.1: a certificate of role scand may not be used here; the analysis collector accepts center certificates only" \
	"$T/coll.log" || fail "7443 refusal not logged: $(grep tls: "$T/coll.log" | tail -2)"
pass "7443: a scand certificate refused in the handshake (logged, counted)"
