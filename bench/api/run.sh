#!/bin/bash
# Admin API benchmark (docs/performance.md, "Admin API"): list pages over a
# large event table (first page vs. a deep page, a filtered search, a full
# walk by cursor), the findings list with triage states, audited changes per second, `vigilctl audit verify`
# over the API and over the database file, and sample archive downloads.
# Prints its figures; never part of the test run.
#
#   bench/api/run.sh [BUILD_DIR] [--events N] [--changes M] [--sample-mib S]
#
# BUILD_DIR holds vigild and vigilctl (default $VIGIL_BIN, else ./build).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
BIN=${VIGIL_BIN:-$SRC/build}
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then
	BIN=$(cd "$1" && pwd)
	shift
fi
EVENTS=200000
CHANGES=2000
SAMPLE_MIB=32
while [ $# -gt 0 ]; do
	case $1 in
	--events) EVENTS=$2; shift 2 ;;
	--changes) CHANGES=$2; shift 2 ;;
	--sample-mib) SAMPLE_MIB=$2; shift 2 ;;
	*) echo "usage: $0 [BUILD_DIR] [--events N] [--changes M] [--sample-mib S]" >&2; exit 2 ;;
	esac
done
VIGILD=$BIN/vigild CTL=$BIN/vigilctl AGENT=$BIN/vigil-agent
T=$(mktemp -d /tmp/vigil-apibench.XXXXXX)
PID=""
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$T"' EXIT

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

"$CTL" pki init --dir "$T/pki" --domain bench.vigil.test --san 127.0.0.1 >/dev/null
cat >"$T/vigild.conf" <<EOF
[center]
fqdn = bench.vigil.test
user = root
pki_dir = $T/pki
data_dir = $T/data
[gateway]
listen = 127.0.0.1
port = 0
max_body = $((SAMPLE_MIB + 1))M
[admin]
listen = 127.0.0.1
port = 0
EOF
start() {
	rm -f "$T/data/vigild.ports"
	"$VIGILD" -d -c "$T/vigild.conf" >>"$T/vigild.log" 2>&1 &
	PID=$!
	for _ in $(seq 1 100); do
		[ -s "$T/data/vigild.ports" ] && break
		sleep 0.1
	done
	GW=$(sed -E 's/.*"gateway": ([0-9]+).*/\1/' "$T/data/vigild.ports")
	ADM=$(sed -E 's/.*"admin": ([0-9]+).*/\1/' "$T/data/vigild.ports")
	export VIGIL_SERVER=https://127.0.0.1:$ADM VIGIL_CA=$T/pki/ca.crt
	VIGIL_API_KEY=$(cat "$T/data/admin.key")
	export VIGIL_API_KEY
}
stop() { kill -TERM "$PID"; wait "$PID" || true; PID=""; }
api() { # api PATH [curl args]: prints the body
	local p=$1
	shift
	curl -sS --cacert "$T/pki/ca.crt" -H "Authorization: Bearer $VIGIL_API_KEY" \
		"https://127.0.0.1:$ADM$p" "$@"
}
timed() { # timed PATH: seconds for one GET
	api "$1" -o /dev/null -w '%{time_total}'
}

echo "== setup: $EVENTS events in the store"
start
stop
sqlite3 "$T/data/vigil.db" "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL
	SELECT i + 1 FROM c WHERE i < $EVENTS)
	INSERT INTO events (agent_id, seq, time, received_at, type, level,
	task_id, data) SELECT 'agent-' || (i % 100), i, 1795000000 + i,
	1795000000 + i, 'finding', CASE WHEN i % 2 THEN 'alert' ELSE 'notice' END,
	NULL, '{\"path\":\"/srv/f' || i || '\",\"rule\":\"r' || (i % 50) || '\"}'
	FROM c"
start

echo "== list pages (limit 1000, default order: newest received first)"
first=$(timed "/api/v1/events?limit=1000")
deep=$(timed "/api/v1/events?limit=1000&received_at_to=$((1795000000 + EVENTS / 10))")
echo "first page:                        ${first} s"
echo "page 90 % deep (by range):         ${deep} s"
echo "filtered (rule=r7, limit 100):     $(timed "/api/v1/events?rule=r7&limit=100") s"
echo "text search (q=/srv/f1999):        $(timed "/api/v1/events?q=/srv/f1999&limit=100") s"
t0=$(now)
pages=0
c=""
last=""
while :; do
	out=$(api "/api/v1/events?limit=1000${c:+&cursor=$c}")
	pages=$((pages + 1))
	c=$(sed -nE 's/.*"next_cursor":"([0-9a-f]+)".*/\1/p' <<<"$out")
	[ -n "$c" ] || break
	last=$c
done
t1=$(now)
echo "last page again, by its cursor:    $(timed "/api/v1/events?limit=1000&cursor=$last") s"
echo "first page sorted by agent time (no index): $(timed "/api/v1/events?limit=1000&sort=time") s"
echo "full walk by cursor: $pages pages of 1000 in $(secs "$t0" "$t1") s" \
	"($(awk -v n="$EVENTS" -v s="$(secs "$t0" "$t1")" 'BEGIN { printf "%.0f", n / s }') events/s)"

echo "== findings list (every event is a finding; 1 % triaged as resolved)"
sqlite3 "$T/data/vigil.db" "INSERT INTO finding_triage (agent_id, seq, status,
	comment, updated_by, updated_at) SELECT agent_id, seq, 'resolved', 'bench',
	'key:bench', 1795000000 FROM events WHERE seq % 100 = 0"
echo "first page (limit 1000):           $(timed "/api/v1/findings?limit=1000") s"
echo "status=new (limit 1000):           $(timed "/api/v1/findings?status=new&limit=1000") s"
echo "status=resolved (limit 1000):      $(timed "/api/v1/findings?status=resolved&limit=1000") s"
echo "rule=r7 (limit 100):               $(timed "/api/v1/findings?rule=r7&limit=100") s"
echo "agent=agent-7 (limit 100):         $(timed "/api/v1/findings?agent=agent-7&limit=100") s"

echo "== audited changes: $CHANGES token creations, 8 in parallel"
{
	for i in $(seq 1 "$CHANGES"); do
		echo "url = \"https://127.0.0.1:$ADM/api/v1/tokens\""
		echo "data = \"{\\\"uses\\\": $((i % 100 + 1))}\""
		echo "output = /dev/null"
	done
} >"$T/curl.cfg"
t0=$(now)
curl -sS -Z --no-progress-meter --parallel-max 8 --cacert "$T/pki/ca.crt" \
	-H "Authorization: Bearer $VIGIL_API_KEY" -K "$T/curl.cfg"
t1=$(now)
n=$(sqlite3 "$T/data/vigil.db" "SELECT COUNT(*) FROM audit")
echo "$n audit entries; $(awk -v n="$CHANGES" -v s="$(secs "$t0" "$t1")" 'BEGIN { printf "%.0f", n / s }') changes/s (each with its audit entry)"

t0=$(now)
"$CTL" audit verify
t1=$(now)
echo "audit verify through the API: $(secs "$t0" "$t1") s"
t0=$(now)
"$CTL" audit verify --db "$T/data/vigil.db"
t1=$(now)
echo "audit verify of the database file: $(secs "$t0" "$t1") s"

echo "== sample download: $SAMPLE_MIB MiB"
TOKEN=$("$CTL" --json token create | sed -nE 's/.*"token": "([^"]+)".*/\1/p')
printf 'bench' | sha256sum | cut -c1-32 >"$T/machine-id"
VIGIL_MACHINE_ID_FILE=$T/machine-id "$AGENT" enroll --server "https://127.0.0.1:$GW" \
	--token "$TOKEN" --ca "$T/pki/ca.crt" --data-dir "$T/agent" >"$T/enroll.log" 2>&1 ||
	{ cat "$T/enroll.log"; exit 1; }
head -c $((SAMPLE_MIB * 1048576)) /dev/urandom >"$T/sample.bin"
SHA=$(sha256sum "$T/sample.bin" | cut -d' ' -f1)
curl -sS --cacert "$T/pki/ca.crt" --cert "$T/agent/agent.crt" --key "$T/agent/agent.key" \
	-X POST "https://127.0.0.1:$GW/v1/samples?sha256=$SHA" \
	--data-binary @"$T/sample.bin" -o /dev/null
rss0=$(awk '/VmHWM/ { print $2 }' "/proc/$PID/status")
t0=$(now)
(cd "$T" && "$CTL" samples download "$SHA" >/dev/null)
t1=$(now)
rss1=$(awk '/VmHWM/ { print $2 }' "/proc/$PID/status")
echo "download: $(secs "$t0" "$t1") s ($(awk -v m="$SAMPLE_MIB" -v s="$(secs "$t0" "$t1")" 'BEGIN { printf "%.0f", m / s }') MiB/s);" \
	"vigild peak RSS ${rss0} kB before, ${rss1} kB after"
stop
