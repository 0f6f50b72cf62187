#!/bin/bash
# [gateway] workers: a burst of file replies (update artifacts, each one's
# descriptor passed with its reply) waiting on a worker's channel. The
# worker read everything there before handling any of it, keeping every
# descriptor that came along in a queue of 64; the 65th made it take the
# channel for broken and exit, dropping all its agents (an update rollout
# to a fleet is such a burst). Made certain here: the core is stopped
# while the worker relays 100 downloads, the worker is stopped while the
# core answers the 70 or more that reached it, and both go on: every
# download must complete, the worker must live on.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/updates.inc"
command -v jq >/dev/null || skip "jq missing (scripts/install-deps installs it)"
command -v ss >/dev/null || skip "ss missing (iproute2)"
N=100

cd "$T"
upd_repo "$T/repo" "$T/keys"
cp "$T/repo/1.root.json" "$T/pinned-root.json"
head -c 5000 /dev/urandom | od -An -tx1 | tr -d ' \n' |
	sed 's/^/rule big { strings: $a = "/; s/$/" condition: $a }\n/' >art.yar
upd_publish "$T/repo" "$T/keys" rules/big.yar 1.0 art.yar
PKI=$T/pki
DATA=$T/data
make_pki "$PKI"
upstream_start "$T/repo" "$PKI/server.crt" "$PKI/server.key"
export VIGIL_GW_WORKERS=1
write_conf "$T/vigild.conf" "$PKI" "$DATA" "[updates]" \
	"root = $T/pinned-root.json" "upstream = https://127.0.0.1:$UP_PORT/" \
	"ca = $PKI/ca.crt" "interval = 1h"
start_center "$T/vigild.conf" "$DATA"
served() { [ "$(upd_field '.served.roles.targets.version // 0')" = 1 ]; }
wait_for 30 "the first mirror of the upstream" served

workers() { center_children --gateway-worker; } # the core's children that are gateway workers
nworkers() { [ "$(workers | wc -l)" = 1 ]; }
wait_for 20 "a gateway worker" nworkers
W=$(workers)

TOKEN=$(new_token)
VIGIL_MACHINE_ID_FILE=$(machine_id files) "$AGENT" enroll \
	--server "https://127.0.0.1:$GW" --token "$TOKEN" --ca "$PKI/ca.crt" \
	--data-dir "$T/a" >"$T/enroll.log" 2>&1 || fail "enroll: $(cat "$T/enroll.log")"
SHA=$(sha256sum art.yar | cut -c1-64)
URL="https://127.0.0.1:$GW/v1/updates/targets/$SHA"
acurl() { curl -sS --fail --cacert "$PKI/ca.crt" --cert "$T/a/agent.crt" --key "$T/a/agent.key" "$@"; }
acurl -o one.yar "$URL" || fail "one download"
cmp one.yar art.yar || fail "the gateway served other bytes"

# Bytes waiting on the unix socket of process $1 (its Recv-Q).
recvq() {
	ss -xpn 2>/dev/null | awk -v p="pid=$1," 'index($0, p) { n += $3 } END { print n + 0 }'
}
DER=$(openssl x509 -in "$T/a/agent.crt" -outform der | wc -c)
kill -STOP "$CENTER_PID"
at_exit "kill -CONT $CENTER_PID $W"
mkdir dl
CURLS=()
for i in $(seq 1 $N); do
	acurl -o "dl/$i" "$URL" 2>"dl/$i.err" &
	CURLS+=($!)
done
# At least Q requests relayed (each message holds the agent's certificate;
# the rest may wait in the worker for room on the channel): more than the
# 64 descriptors the worker used to queue.
Q=70
relayed() { [ "$(recvq "$CENTER_PID")" -ge $((Q * DER)) ]; }
wait_for 60 "$Q requests relayed to the stopped core" relayed
kill -STOP "$W"
kill -CONT "$CENTER_PID"
# The core has read them all and answered: its side is empty and the
# worker's holds at least a reply header per request.
answered() { [ "$(recvq "$CENTER_PID")" = 0 ] && [ "$(recvq "$W")" -ge $((Q * 100)) ]; }
wait_for 60 "the core's file replies queued to the stopped worker" answered
kill -CONT "$W"
bad=0
for i in $(seq 1 $N); do
	wait "${CURLS[$((i - 1))]}" || bad=$((bad + 1))
done
[ "$bad" = 0 ] || fail "$bad of $N downloads failed: $(cat dl/1.err; tail -3 "$T/vigild.log")"
for i in $(seq 1 $N); do
	cmp -s "dl/$i" art.yar || fail "download $i: other bytes"
done
[ "$(workers)" = "$W" ] || fail "worker $W replaced by $(workers)"
if grep -E "gateway worker 0 .*(killed|exited)" "$T/vigild.log"; then
	fail "the worker ended"
fi
pass "$N file replies queued at once on a worker's channel: all served, the worker lives on"
