#!/bin/bash
# metrics-cost.sh: what one GET /metrics costs at fleet scale
# (docs/performance.md, "What a /metrics scrape costs"). Starts a center
# on a copy of the fleet benchmark's cached store of N enrolled agents
# (run.sh --agents N makes it, in $FLEET_CACHE/nN), marks every agent
# seen now (so they all count online), times 20 scrapes with curl after
# one to warm up, prints the median and the fastest, and stops the center.
# Nothing connects as an agent: the figure is the core's own count of
# the store, plus one admin request over TLS.
#
#   bench/fleet/metrics-cost.sh BUILD_DIR [N]     (N: 100000)
set -euo pipefail

BUILD=$(cd "${1:?usage: metrics-cost.sh BUILD_DIR [N]}" && pwd)
N=${2:-100000}
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${FLEET_CACHE:-/tmp/vigil-fleet-cache}/n$N
[ -f "$CACHE/complete" ] || {
	echo "metrics-cost.sh: no cached store of $N agents in $CACHE;" \
		"make it with: bench/fleet/run.sh $BUILD --agents $N" >&2
	exit 1
}
W=$(mktemp -d /tmp/vigil-metrics-cost.XXXXXX)
trap '"$HERE/center.sh" stop "$W/data" >/dev/null 2>&1 || true; rm -rf "$W"' EXIT
cp -a "$CACHE/pki" "$W/pki"
mkdir -m 700 "$W/data"
cp "$CACHE/vigil.db" "$W/data/vigil.db"
install -m 600 "$CACHE/admin.key" "$W/data/admin.key"
sqlite3 "$W/data/vigil.db" "UPDATE agents SET last_seen = $(date +%s)"
cat >"$W/vigild.conf" <<EOF
[center]
fqdn = center.vigil.test
pki_dir = $W/pki
data_dir = $W/data
user = root
poll_interval = 60s
[gateway]
listen = 127.0.0.1
port = 0
workers = 1
[admin]
listen = 127.0.0.1
port = 0
EOF
"$HERE/center.sh" start "$BUILD/vigild" "$W/vigild.conf" "$W/data" "$W/vigild.log" >/dev/null
ADM=$(sed -nE 's/.*"admin": ([0-9]+).*/\1/p' "$W/data/vigild.ports")
KEY=$(cat "$W/data/admin.key")
scrape() {
	curl -sS -o "$W/metrics" -w '%{time_total}\n' --cacert "$W/pki/ca.crt" \
		-H "Authorization: Bearer $KEY" "https://127.0.0.1:$ADM/metrics"
}
scrape >/dev/null
for _ in $(seq 1 20); do scrape; done | sort -n >"$W/times"
printf 'GET /metrics with %d agents (20 scrapes): median %.1f ms, fastest %.1f ms\n' \
	"$N" "$(awk 'NR == 10 { print $1 * 1000 }' "$W/times")" \
	"$(awk 'NR == 1 { print $1 * 1000 }' "$W/times")"
grep '^vigil_agents{' "$W/metrics"
