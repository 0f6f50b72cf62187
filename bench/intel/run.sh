#!/bin/bash
# vigil-inteld benchmark (docs/performance.md, "Reputation service"): a
# generated plain list of N mixed indicators (SHA-256, MD5, IPv4, IPv6,
# CIDR ranges, domains, URLs; bench/intel/feedgen.c, fixed seed) imported
# through the API as curl or `vigilctl intel import` sends it; then single
# lookups over HTTPS keep-alive with wrk (1 connection, then 64) and batch
# lookups of 100 and of 10,000 indicators (9 in 10 in the feed). Prints
# each figure next to the issue's goal, with the machine's load average
# when it was taken (wrk and the daemon share the machine's cores with
# whatever else runs). Never part of the test run.
#
#   bench/intel/run.sh BUILD_DIR [--indicators N] [--seconds S]
#                      [--threads T] [--import-only]
#
# --threads sets [server] threads (default 0: one per CPU).
# --import-only stops after the import (and a re-import of the same list,
# which finds every entry unchanged) and the figures of both.
# N defaults to 10,000,000 (a 361 MB feed, 2.3 GB of store; the work
# directory is under $TMPDIR, default /tmp, removed at the end). Peak RSS
# counts the store's pages mapped while they were written and the feed
# held in memory during its import;
# S is the length of each wrk run (default 10). Needs wrk (Debian `wrk`,
# scripts/install-deps), curl, jq and a C compiler.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
usage() {
	echo "usage: $0 BUILD_DIR [--indicators N] [--seconds S] [--threads T] [--import-only]" >&2
	exit 2
}
[ $# -ge 1 ] && [ "${1#--}" = "$1" ] || usage
BIN=$(cd "$1" && pwd)
shift
N=10000000
SECS=10
IMPORT_ONLY=0
THREADS=0
while [ $# -gt 0 ]; do
	case $1 in
	--indicators) N=$2; shift 2 ;;
	--seconds) SECS=$2; shift 2 ;;
	--threads) THREADS=$2; shift 2 ;;
	--import-only) IMPORT_ONLY=1; shift ;;
	*) usage ;;
	esac
done
for t in wrk curl jq cc; do
	command -v "$t" >/dev/null || { echo "run.sh: $t not found (scripts/install-deps)" >&2; exit 1; }
done
[ -x "$BIN/vigil-inteld" ] && [ -x "$BIN/vigilctl" ] ||
	{ echo "run.sh: vigil-inteld or vigilctl missing in $BIN: build first" >&2; exit 1; }

T=$(mktemp -d "${TMPDIR:-/tmp}/vigil-intelbench.XXXXXX")
PID=""
cleanup() {
	if [ -n "$PID" ]; then
		kill -TERM "$PID" 2>/dev/null || true
		wait "$PID" 2>/dev/null || true
	fi
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"%.${2:-2}f\", $1 }"; }
mb() { calc "$1 / 1048576" 0; }
# goal VALUE OP LIMIT: "met" or "missed"
goal() { [ "$(calc "($1 $2 $3)" 0)" = 1 ] && echo met || echo "MISSED"; }
load() { cut -d' ' -f1 /proc/loadavg; }
cpu_of() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.1f", ($14 + $15) / hz }' "/proc/$PID/stat"; }
kb_of() { awk -v k="$1:" '$1 == k { print $2 * 1024 }' "/proc/$PID/status"; }

echo "== generating $N indicators"
cc -O2 -o "$T/feedgen" "$HERE/feedgen.c"
t0=$(now)
"$T/feedgen" "$N" "$T/feed.txt" "$T/queries.txt" "$T/batch.json"
feedsize=$(stat -c %s "$T/feed.txt")
echo "   $(calc "$(now) - $t0") s, $(mb "$feedsize") MB, $(wc -l <"$T/queries.txt") lookup queries"

"$BIN/vigilctl" pki init --dir "$T/pki" --domain intel.bench.test --san 127.0.0.1 >/dev/null
KEY=bench-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
cat >"$T/inteld.conf" <<EOF
[inteld]
data_dir = $T/data
map_size = 64G
max_import = $((feedsize / 1048576 + 64))M
log_level = warn
[server]
threads = $THREADS
[https]
listen = 127.0.0.1
port = 0
cert = $T/pki/server.crt
key = $T/pki/server.key
[auth]
keys = bench:admin:$(printf %s "$KEY" | sha256sum | cut -c1-64)
EOF
"$BIN/vigil-inteld" -d -c "$T/inteld.conf" 2>"$T/inteld.log" &
PID=$!
for _ in $(seq 1 100); do
	[ -s "$T/data/vigil-inteld.ports" ] && break
	kill -0 "$PID" 2>/dev/null || { cat "$T/inteld.log" >&2; exit 1; }
	sleep 0.1
done
[ -s "$T/data/vigil-inteld.ports" ] || { echo "run.sh: vigil-inteld did not start" >&2; exit 1; }
PORT=$(jq -r .https "$T/data/vigil-inteld.ports")
U=https://127.0.0.1:$PORT/api/v1
api() { curl -sS --fail-with-body --cacert "$T/pki/ca.crt" -H "X-API-Key: $KEY" "$@"; }
api -X POST -d '{"name": "bench", "priority": 50}' "$U/feeds" >/dev/null
rss0=$(kb_of VmRSS)

echo "== import of $N indicators (plain list, one HTTPS request)"
cpu0=$(cpu_of)
t0=$(now)
api --max-time 1800 -X POST -H 'Content-Type: text/plain' \
	--data-binary "@$T/feed.txt" "$U/feeds/bench/import?format=list" >"$T/report.json"
secs=$(calc "$(now) - $t0" 3)
jq -c '{result, entries, indicators, rejected_total, skipped_total, error} | with_entries(select(.value != null))' "$T/report.json" |
	sed 's/^/   report: /'
hwm=$(kb_of VmHWM)
rss=$(kb_of VmRSS)
disk=$(($(du -sk "$T/data" | cut -f1) * 1024))
mio=$(calc "$N / 1000000" 6)
printf '   time            %8s s    %7s s per million   goal: 10 million in < 60 s: %s\n' \
	"$secs" "$(calc "$secs / $mio")" "$(goal "$secs / $mio * 10" '<' 60)"
printf '   vigil-inteld CPU %7s s (user + system, of the daemon during the import)\n' "$(calc "$(cpu_of) - $cpu0" 1)"
printf '   disk            %8s MB   %7s MB per million (%s bytes per indicator)\n' \
	"$(mb "$disk")" "$(calc "$disk / 1048576 / $mio" 0)" "$(calc "$disk / $N" 0)"
printf '   memory (VmHWM)  %8s MB   %7s MB per million (idle before: %s MB; after: %s MB RSS, of it %s MB anonymous)\n' \
	"$(mb "$hwm")" "$(calc "$hwm / 1048576 / $mio" 0)" "$(mb "$rss0")" "$(mb "$rss")" "$(mb "$(kb_of RssAnon)")"

if [ "$IMPORT_ONLY" = 1 ]; then
	echo "== the same list again (every entry unchanged)"
	cpu0=$(cpu_of)
	t0=$(now)
	api --max-time 1800 -X POST -H 'Content-Type: text/plain' \
		--data-binary "@$T/feed.txt" "$U/feeds/bench/import?format=list" >"$T/report.json"
	secs=$(calc "$(now) - $t0" 3)
	jq -c '{result, indicators, added, changed, unchanged, removed, error} | with_entries(select(.value != null))' "$T/report.json" |
		sed 's/^/   report: /'
	printf '   time            %8s s, vigil-inteld CPU %s s, peak RSS now %s MB\n' \
		"$secs" "$(calc "$(cpu_of) - $cpu0" 1)" "$(mb "$(kb_of VmHWM)")"
	exit 0
fi

# wrk: each thread walks the query list from its own offset; done() prints
# requests, seconds, p50 and p99 in microseconds, and the failures.
cat >"$T/lookup.lua" <<'EOF'
local paths, n, i = {}, 0, 0
local counter = 0
function setup(thread)
	thread:set("id", counter)
	counter = counter + 1
end
function init(args)
	for line in io.lines(os.getenv("QUERIES")) do
		n = n + 1
		paths[n] = "/api/v1/lookup?" .. line
	end
	i = (id or 0) * 7919 % n
	wrk.headers["X-API-Key"] = os.getenv("KEY")
end
function request()
	i = i % n + 1
	return wrk.format("GET", paths[i])
end
function done(s, lat, req)
	io.write(string.format("RESULT %d %.6f %d %d %d %d\n", s.requests,
		s.duration / 1e6, lat:percentile(50), lat:percentile(99),
		s.errors.connect + s.errors.read + s.errors.write + s.errors.timeout,
		s.errors.status))
end
EOF
cat >"$T/batch.lua" <<'EOF'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-Key"] = os.getenv("KEY")
local f = io.open(os.getenv("BATCH"))
wrk.body = f:read("*a")
f:close()
function done(s, lat, req)
	io.write(string.format("RESULT %d %.6f %d %d %d %d\n", s.requests,
		s.duration / 1e6, lat:percentile(50), lat:percentile(99),
		s.errors.connect + s.errors.read + s.errors.write + s.errors.timeout,
		s.errors.status))
end
EOF
# bench LABEL SCRIPT CONNECTIONS PER_REQUEST [BATCH_FILE]
bench() {
	local th=$(($3 < 2 ? 1 : 2)) r cpu0
	cpu0=$(cpu_of)
	# wrk's own CPU time (user + system) from the subshell's `times`
	r=$(QUERIES=$T/queries.txt BATCH=${5:-$T/batch.json} KEY=$KEY \
		wrk -t "$th" -c "$3" -d "${SECS}s" --timeout 10s -s "$T/$2" \
		"https://127.0.0.1:$PORT/api/v1/lookup" | awk '$1 == "RESULT"'
	times >"$T/times"
	awk 'NR == 2 { gsub(/[ms]/, " "); print "CPU", $1 * 60 + $2 + $3 * 60 + $4 }' "$T/times")
	read -r _ reqs dur p50 p99 errs non2xx <<<"$(grep RESULT <<<"$r")"
	wcpu=$(awk '$1 == "CPU" { print $2 }' <<<"$r")
	rate=$(calc "$reqs * $4 / $dur" 0)
	# CPU per request, in microseconds: the daemon's, and wrk's
	us=$(calc "($(cpu_of) - $cpu0) * 1000000 / $reqs" 1)
	wus=$(calc "$wcpu * 1000000 / $reqs" 1)
	if [ "$4" = 1 ]; then
		printf '   %-28s %9s lookups/s  p50 %6.3f ms  p99 %6.3f ms  CPU a request: daemon %s us, wrk %s us; load %s  goal: >= 100000/s (%s), p99 < 1 ms (%s)\n' \
			"$1" "$rate" "$(calc "$p50 / 1000" 3)" "$(calc "$p99 / 1000" 3)" \
			"$us" "$wus" "$(load)" "$(goal "$rate" '>=' 100000)" "$(goal "$p99" '<' 1000)"
	else
		printf '   %-28s %9s indicators/s in %s requests/s, p50 %.2f ms  p99 %.2f ms a request, CPU a request: daemon %s us, wrk %s us; load %s\n' \
			"$1" "$rate" "$(calc "$reqs / $dur" 1)" "$(calc "$p50 / 1000" 2)" \
			"$(calc "$p99 / 1000" 2)" "$us" "$wus" "$(load)"
	fi
	[ "$errs" = 0 ] && [ "$non2xx" = 0 ] ||
		echo "   !! $errs socket errors, $non2xx answers not 2xx"
}

jq -c '.[0:100]' "$T/batch.json" >"$T/batch100.json"
api "$U/lookup?$(head -1 "$T/queries.txt")" | jq -c '{verdict, decided_by}' | sed 's/^/   first query: /'
api -X POST -H 'Content-Type: application/json' --data-binary "@$T/batch.json" "$U/lookup" |
	jq -r '"   a batch of \(.results | length): \([.results[] | select(.verdict == "malicious")] | length) malicious, \([.results[] | select(.verdict == "unknown")] | length) unknown"'
echo "== lookups, wrk $SECS s each, $(nproc) CPUs shared by wrk and vigil-inteld ([server] threads = $THREADS; 0: one per CPU)"
bench "single, 1 connection" lookup.lua 1 1
bench "single, 64 connections" lookup.lua 64 1
bench "batch 100, 1 connection" batch.lua 1 100 "$T/batch100.json"
bench "batch 100, 64 connections" batch.lua 64 100 "$T/batch100.json"
bench "batch 10000, 1 connection" batch.lua 1 10000
bench "batch 10000, 2 connections" batch.lua 2 10000
echo "   (a batch's indicators/s counts each indicator answered in a batch request; the goal of 100,000/s is about single lookups)"
printf '   vigil-inteld CPU time: %s s, peak RSS now %s MB\n' \
	"$(cpu_of)" \
	"$(mb "$(kb_of VmHWM)")"
