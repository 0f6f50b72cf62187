#!/bin/bash
# [intel] reloaded on SIGHUP by vigild and vigil-scand, without a restart
# and without closing a connection: both start with an API key inteld does
# not know (every lookup refused: the center's finding stays without a
# verdict, scand's sample is marked unavailable); the key file named in
# [intel] changes and SIGHUP applies it: the pending finding gets its
# verdict, the same sample becomes a Reputation finding. An HTTP
# keep-alive connection opened before each SIGHUP still answers after it.
# Then [intel] url removed from scand's config: SIGHUP stops its lookups.
. "$(dirname "$0")/lib.sh"

SCAND=$BIN/vigil-scand
PKI=$T/pki
DATA=$T/center
SDATA=$T/scand
make_pki "$PKI"
. "$(dirname "$0")/intel.inc"

start_intel
printf 'known bad %s\n' "$RANDOM$RANDOM" >"$T/bad.bin"
BAD=$(sha256sum "$T/bad.bin" | cut -c1-64)
import_misp misp "$BAD"
printf 'not-a-key-of-inteld-%s\n' "$RANDOM" >"$T/wrong.key"
chmod 600 "$T/wrong.key"

# keepalive URL PID LOG LINE [CURL-ARGS]: one keep-alive connection (python's
# http.client) asks URL, the daemon PID gets SIGHUP, and once LOG says
# LINE the same connection asks again: both answered, no reconnection.
keepalive() {
	python3 - "$@" <<'PY' || fail "keep-alive across SIGHUP: $1"
import http.client, os, signal, ssl, sys, time, urllib.parse
url, pid, log, line = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
hdrs = dict(h.split(": ", 1) for h in sys.argv[5:])
u = urllib.parse.urlsplit(url)
if u.scheme == "https":
    ctx = ssl.create_default_context(cafile=os.environ["CAFILE"])
    c = http.client.HTTPSConnection(u.hostname, u.port, context=ctx, timeout=10)
else:
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
def get():
    c.request("GET", u.path, headers=hdrs)
    r = c.getresponse()
    r.read()
    assert r.status == 200, r.status
get()
sock = c.sock
n = open(log).read().count(line)
os.kill(pid, signal.SIGHUP)
end = time.time() + 20
while open(log).read().count(line) <= n:
    assert time.time() < end, "no reload logged"
    time.sleep(0.1)
get()
assert c.sock is sock, "reconnected"
PY
}
export CAFILE=$PKI/ca.crt

# --- vigild -----------------------------------------------------------
center_conf() { # center_conf KEYFILE
	write_conf "$T/vigild.conf" "$PKI" "$DATA"
	cat >>"$T/vigild.conf" <<EOC
[intel]
url = https://127.0.0.1:$IPORT
ca = $PKI/ca.crt
api_key_file = $1
timeout = 3s
EOC
}
center_conf "$T/wrong.key"
start_center "$T/vigild.conf" "$DATA"
TOKEN=$(new_token --uses 1)
VIGIL_MACHINE_ID_FILE=$(machine_id r1) "$AGENT" enroll \
	--server "https://127.0.0.1:$GW" --token "$TOKEN" --ca "$PKI/ca.crt" \
	--data-dir "$T/a" >"$T/enroll.log" 2>&1 || fail "enroll: $(cat "$T/enroll.log")"
AID=$("$CTL" --json agent list | sed -nE 's/.*"id": "([0-9a-f-]{36})".*/\1/p' | head -1)
now=$(date +%s)
out=$(curl -sS --cacert "$PKI/ca.crt" --cert "$T/a/agent.crt" --key "$T/a/agent.key" \
	-X POST "https://127.0.0.1:$GW/v1/events" -d "{\"events\": [
 {\"seq\": 1, \"time\": $now, \"type\": \"finding\", \"level\": \"notice\",
  \"data\": {\"path\": \"/tmp/bad.bin\", \"rule\": \"r\", \"sha256\": \"$BAD\"}}]}")
expect_contains "$out" '"stored":1'
refused() { grep -q "intel: events wait for a verdict: .*401" "$T/vigild.log"; }
wait_for 20 "the center's lookups refused (unknown key)" refused
verdict() { api GET "/api/v1/findings?agent=$AID&seq=1" | jq -r '.items[0].intel.verdict'; }
[ "$(verdict)" = null ] || fail "a verdict with a wrong key: $(verdict)"

center_conf "$T/intel.key"
keepalive "https://127.0.0.1:$ADM/api/v1/findings" "$CENTER_PID" "$T/vigild.log" \
	"intel: reload: asking vigil-inteld" "Authorization: Bearer $VIGIL_API_KEY"
enriched() { [ "$(verdict)" = malicious ]; }
wait_for 30 "the pending finding enriched after SIGHUP" enriched
pass "vigild: SIGHUP applies a changed [intel] api_key_file; the pending finding gets its verdict; a keep-alive connection stays"

# --- vigil-scand ------------------------------------------------------
scand_conf() { # scand_conf KEYFILE|none
	cat >"$T/scand.conf" <<EOC
[scand]
data_dir = $SDATA
rules = $SRC/tests/data/scan/markers.yar
threads = 1
[http]
listen = 127.0.0.1
port = 0
EOC
	[ "$1" = none ] || cat >>"$T/scand.conf" <<EOC
[intel]
url = https://127.0.0.1:$IPORT
ca = $PKI/ca.crt
api_key_file = $1
timeout = 3s
EOC
}
scand_conf "$T/wrong.key"
"$SCAND" -d -c "$T/scand.conf" >>"$T/scand.log" 2>&1 &
SCAND_PID=$!
PIDS+=("$SCAND_PID")
wait_for 10 "vigil-scand to listen" test -s "$SDATA/vigil-scand.ports"
HP=$(sed -E 's/.*"http": ([0-9]+).*/\1/' "$SDATA/vigil-scand.ports")
U=http://127.0.0.1:$HP/api/v1
check() { curl -sS -F "file=@$T/bad.bin" "$U/check?source=host-a"; }
[ "$(check)" = "[]" ] || fail "scand with a wrong key: $(check)"

scand_conf "$T/intel.key"
keepalive "$U/status" "$SCAND_PID" "$T/scand.log" "scand: reload: samples checked with vigil-inteld"
out=$(check)
[ "$(jq -r '"\(.[0].reasons[0].signature.kind) \(.[0].intel.verdict)"' <<<"$out")" = \
	"Reputation malicious" ] || fail "scand after SIGHUP: $out"
pass "vigil-scand: SIGHUP applies a changed [intel] api_key_file: the sample is a Reputation finding; a keep-alive connection stays"

scand_conf none
keepalive "$U/status" "$SCAND_PID" "$T/scand.log" "scand: reload: [intel] url removed"
[ "$(check)" = "[]" ] || fail "scand without [intel]: $(check)"
[ "$(curl -sS "$U/status" | jq -c .intel)" = null ] ||
	fail "status: $(curl -sS "$U/status" | jq -c .intel)"
pass "vigil-scand: [intel] removed on SIGHUP: no more lookups"

kill -TERM "$SCAND_PID"
wait "$SCAND_PID" || fail "vigil-scand did not stop cleanly"
stop_center
stop_intel
