#!/bin/bash
# Web console benchmark (docs/performance.md, "Web console"): a center with
# 20,000 agents and 1,000,000 findings, and the console (web/dist) driven by
# a real headless chromium (playwright-core, web/bench/console.mjs): time
# from navigation to the first rows of the agents and findings pages, a
# filter change, a sort, a page change, the dashboard, and the size of the
# JavaScript and CSS shipped (raw and gzip). Each figure is printed next to
# the issue's target. Prints its figures; never part of the test run.
#
#   bench/console/run.sh [BUILD_DIR] [--agents N] [--findings M]
#
# BUILD_DIR holds vigild and vigilctl (default $VIGIL_BIN, else ./build).
# Build the console first (scripts/build-console).
#
# The store is filled by a direct SQLite bulk load into the center's own
# schema (made by starting vigild once on an empty data directory), as
# bench/api does: enrolling 20,000 agents and sending a million findings
# through the gateway would take most of an hour here and would measure the
# ingest path (bench/fleet and bench/api measure that), not the console.
# The rows are what the gateway writes: active agents (0.5 % revoked, 10 %
# not seen for an hour, so offline), findings spread over 30 days with
# three levels, 50 rules, 1 % triaged as resolved.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
BIN=${VIGIL_BIN:-$SRC/build}
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then
	BIN=$(cd "$1" && pwd)
	shift
fi
AGENTS=20000
FINDINGS=1000000
while [ $# -gt 0 ]; do
	case $1 in
	--agents) AGENTS=$2; shift 2 ;;
	--findings) FINDINGS=$2; shift 2 ;;
	*) echo "usage: $0 [BUILD_DIR] [--agents N] [--findings M]" >&2; exit 2 ;;
	esac
done
VIGILD=$BIN/vigild CTL=$BIN/vigilctl
WEB=$SRC/web
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
[ -f "$WEB/dist/index.html" ] || { echo "web/dist missing: run scripts/build-console" >&2; exit 1; }
[ -d "$WEB/node_modules/playwright-core" ] || { echo "web/node_modules missing: run scripts/build-console" >&2; exit 1; }
[ -x "$CHROMIUM" ] || { echo "$CHROMIUM missing (scripts/install-deps)" >&2; exit 1; }
T=$(mktemp -d /tmp/vigil-consolebench.XXXXXX)
PID=""
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$T"' EXIT

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

"$CTL" pki init --dir "$T/pki" --domain bench.vigil.test --san 127.0.0.1 >/dev/null
cat >"$T/vigild.conf" <<CONF
[center]
fqdn = bench.vigil.test
user = root
pki_dir = $T/pki
data_dir = $T/data
[gateway]
listen = 127.0.0.1
port = 0
[admin]
listen = 127.0.0.1
port = 0
console_dir = $WEB/dist
CONF
start() {
	rm -f "$T/data/vigild.ports"
	"$VIGILD" -d -c "$T/vigild.conf" >>"$T/vigild.log" 2>&1 &
	PID=$!
	for _ in $(seq 1 100); do
		[ -s "$T/data/vigild.ports" ] && break
		sleep 0.1
	done
	ADM=$(sed -E 's/.*"admin": ([0-9]+).*/\1/' "$T/data/vigild.ports")
	export VIGIL_SERVER=https://127.0.0.1:$ADM VIGIL_CA=$T/pki/ca.crt
	VIGIL_API_KEY=$(cat "$T/data/admin.key")
	export VIGIL_API_KEY
}
stop() { kill -TERM "$PID"; wait "$PID" || true; PID=""; }

echo "== setup: $AGENTS agents, $FINDINGS findings (direct SQLite bulk load)"
start
stop
NOW=$(date +%s)
t0=$(now)
sqlite3 "$T/data/vigil.db" <<SQL
BEGIN;
WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < $AGENTS)
INSERT INTO agents (id, status, hostname, fqdn, os, kernel, arch, ips, macs,
	machine_id, agent_version, labels, enrolled_at, last_seen, cert_serial,
	cert_not_after)
SELECT printf('%08x-0000-4000-8000-%012x', i, i),
	CASE WHEN i % 200 = 0 THEN 'revoked' ELSE 'active' END,
	printf('host-%05d', i), printf('host-%05d.bench.test', i),
	CASE WHEN i % 4 = 0 THEN 'Ubuntu 24.04' ELSE 'Debian 12' END,
	'6.1.0', 'x86_64',
	printf('["10.%d.%d.%d"]', i / 65536, (i / 256) % 256, i % 256), '[]',
	printf('%032x', i), CASE WHEN i % 3 = 0 THEN '0.9.0' ELSE '1.0.0' END,
	printf('{"role":"%s","site":"s%d"}', CASE WHEN i % 5 = 0 THEN 'db' ELSE 'web' END, i % 20),
	$NOW - 86400 * 30,
	CASE WHEN i % 10 = 0 THEN $NOW - 3600 ELSE $NOW - (i % 50) END,
	printf('%016x', i), $NOW + 86400 * 300
FROM c;
WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < $FINDINGS)
INSERT INTO events (agent_id, seq, time, received_at, type, level, task_id, data)
SELECT printf('%08x-0000-4000-8000-%012x', i % $AGENTS + 1, i % $AGENTS + 1), i,
	$NOW - 86400 * 30 + i * 86400 * 30 / $FINDINGS,
	$NOW - 86400 * 30 + i * 86400 * 30 / $FINDINGS + 1, 'finding',
	CASE i % 4 WHEN 0 THEN 'alert' WHEN 1 THEN 'warning' ELSE 'notice' END,
	NULL,
	printf('{"path":"/srv/data/f%d.bin","rule":"rule_%d","sha256":"%064x","strings":[{"id":"\$a","offset":%d}]}',
		i, i % 50, i, i % 4096)
FROM c;
INSERT INTO finding_triage (agent_id, seq, status, comment, updated_by, updated_at)
SELECT agent_id, seq, 'resolved', 'bench', 'key:bench', $NOW FROM events WHERE seq % 100 = 0;
COMMIT;
SQL
echo "loaded in $(secs "$t0" "$(now)") s; database $(du -sm "$T/data/vigil.db" | cut -f1) MiB"
start
PW=bench-pw-$RANDOM$RANDOM
printf '%s' "$PW" | "$CTL" user add bench --role admin --password-stdin >/dev/null
SPKI=$(openssl x509 -in "$T/pki/server.crt" -pubkey -noout |
	openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64)

echo "== console (headless chromium, 1366x768)"
BASE="https://127.0.0.1:$ADM" SPKI=$SPKI USER=bench PASSWORD=$PW \
	DIST=$WEB/dist CHROMIUM=$CHROMIUM AGENTS=$AGENTS FINDINGS=$FINDINGS \
	timeout 600 node "$WEB/bench/console.mjs"
stop
