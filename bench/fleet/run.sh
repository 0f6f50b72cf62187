#!/bin/bash
# The fleet benchmark (docs/performance.md, "Fleet"): builds the load
# generator (fleet.c, against OpenSSL, libevent, jansson and SQLite through
# pkg-config; bench/ is not part of the CMake build), stands up a center on
# 127.0.0.1 with a fresh PKI and data directory, enrolls N simulated agents
# and runs every phase of fleet.c against it: connect, hold, task dispatch,
# heartbeats, events, center restart. Everything is bounded in time.
#
#   bench/fleet/run.sh [BUILD_DIR] [--agents N] [--events-per-agent M]
#                      [--batch B] [--threads T] [--fresh] [--keep]
#                      [--workers W] [--generators G]
#                      [--work DIR] [any other `fleet run` option]
#
# BUILD_DIR holds vigild and vigilctl (default: $VIGIL_BIN, else ./build,
# else a RelWithDebInfo build is made in /tmp/vigil-fleet-build).
#
# Enrolled identities are cached per N in $FLEET_CACHE (default
# /tmp/vigil-fleet-cache/nN): the PKI, a copy of the store taken right
# after enrollment (sqlite3 .backup), the admin key and the agents' keys
# and certificates. A later run with the same N starts from that copy and
# skips enrollment; --fresh enrolls again (and measures enrollment).
#
# --workers W: [gateway] workers = W (gateway worker processes; the
# center's CPU and RSS figures then include them).
# --generators G: G load generator processes with N/G agents each (one
# process holds at most its descriptor limit of connections), at the
# same time. They meet at barriers (files in the run directory); the
# first one (the leader) posts the tasks and restarts the center, each
# one reports its agents' task receipts and reconnect times, and the
# leader prints the merged figures. Phases run: connect, hold, dispatch,
# restart (heartbeats and events are not split across generators).
#
# Connect pacing (each `fleet run`; docs/performance.md, "Connect
# pacing"): --connect-rate R caps new connections per second, in all
# (run.sh gives each generator R/G; 0 = no cap, the default);
# --connect-parallel P is the most agents being admitted at once per
# generator (256: connect(), TLS handshake, first heartbeat answered);
# --connect-target S (5 s) makes that window adapt below P: it shrinks
# to 70 % when an admission takes longer than S or fails (handshake cut,
# 503, connection lost), and grows again while they are faster (0 =
# fixed P);
# --no-pace-reconnects lets reconnects (after the restart) skip both.
#
# FLEET_CENTER_CONF: lines appended to the center's configuration (to
# compare settings: seen_flush = 0, session_tickets = 0, ...).
#
# --store pg: the center on a throwaway PostgreSQL 15 (tests/e2e/pg.inc:
# initdb + pg_ctl on a free loopback port), enrolled afresh every run (the
# cache holds SQLite stores); the events are checked with psql after the
# run. --nodes 2 (with --store pg): a second vigild node on the same
# database; odd agents connect to it, tasks are created on the first
# (their dispatch to the second node's agents goes through LISTEN/NOTIFY),
# the gauges are summed, and the restart phase is skipped.
#
# File descriptors: the center and the load generator each hold one per
# agent plus a few dozen. Both get RLIMIT_NOFILE raised to the hard limit;
# N is refused when N + 64 exceeds it.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
BUILD=""
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then
	BUILD=$1
	shift
fi
N=20000
M=100
FRESH=0
KEEP=0
WORK=${FLEET_WORK:-/tmp/vigil-fleet}
PASS=()
STORE=sqlite
NODES=1
WORKERS=0
GENS=1
RATE=0
while [ $# -gt 0 ]; do
	case "$1" in
	--store) STORE=$2; shift 2 ;;
	--nodes) NODES=$2; shift 2 ;;
	--workers) WORKERS=$2; shift 2 ;;
	--generators) GENS=$2; shift 2 ;;
	--agents) N=$2; shift 2 ;;
	--events-per-agent) M=$2; shift 2 ;;
	--fresh) FRESH=1; shift ;;
	--keep) KEEP=1; shift ;;
	--work) WORK=$2; shift 2 ;;
	--connect-rate) RATE=$2; shift 2 ;;
	-h | --help)
		sed -n '2,42p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*) PASS+=("$1"); shift ;;
	esac
done
case "$N" in '' | *[!0-9]*) echo "run.sh: --agents: a number" >&2; exit 2 ;; esac
case "$GENS" in '' | *[!0-9]* | 0) echo "run.sh: --generators: a number, 1 or more" >&2; exit 2 ;; esac
# Per generator: the cap is shared out.
GRATE=$(awk -v r="$RATE" -v g="$GENS" 'BEGIN { if (r !~ /^[0-9]+(\.[0-9]+)?$/) exit 1; printf "%g", r / g }') ||
	{ echo "run.sh: --connect-rate: connections per second, a number" >&2; exit 2; }
case "$STORE:$NODES" in
sqlite:1 | pg:1 | pg:2) ;;
*) echo "run.sh: --store sqlite|pg, --nodes 1|2 (2 only with pg)" >&2; exit 2 ;;
esac

# --- binaries ---------------------------------------------------------
if [ -z "$BUILD" ]; then
	if [ -n "${VIGIL_BIN:-}" ]; then
		BUILD=$VIGIL_BIN
	elif [ -x "$SRC/build/vigild" ]; then
		BUILD=$SRC/build
	else
		BUILD=/tmp/vigil-fleet-build
		cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
		cmake --build "$BUILD" -j2 --target vigild vigilctl >/dev/null
	fi
fi
BUILD=$(cd "$BUILD" && pwd)
for b in vigild vigilctl; do
	[ -x "$BUILD/$b" ] || { echo "run.sh: $BUILD/$b missing" >&2; exit 1; }
done
mkdir -p "$WORK"
# One run per work directory at a time: a second one would wipe the
# first one's center.
exec 9>"$WORK/.lock"
flock -n 9 || { echo "run.sh: another run is using $WORK (--work DIR)" >&2; exit 1; }
CC=${CC:-cc}
# shellcheck disable=SC2046
"$CC" -std=c17 -O2 -g -Wall -Wextra -Wshadow -Wmissing-prototypes \
	-o "$WORK/fleet" "$HERE/fleet.c" \
	$(pkg-config --cflags --libs libevent_openssl libevent_pthreads openssl \
		jansson sqlite3) -lm -lpthread

# --- file descriptors -----------------------------------------------------
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)
PERPROC=$((N - (GENS - 1) * (N / GENS)))
[ "$WORKERS" -gt 0 ] && [ $((N / WORKERS)) -gt "$PERPROC" ] && PERPROC=$((N / WORKERS))
[ "$WORKERS" = 0 ] && PERPROC=$N
if [ "$NOFILE" != unlimited ] && [ $((PERPROC + 64)) -gt "$NOFILE" ]; then
	echo "run.sh: $N agents need $((N + 64)) file descriptors in the center" \
		"and in the load generator; the hard limit here is $NOFILE and" \
		"cannot be raised (no CAP_SYS_RESOURCE?). Use --agents" \
		"$((NOFILE - 64)) or fewer." >&2
	exit 2
fi

# --- a center -----------------------------------------------------------------
RUN=$WORK/run
CACHE=${FLEET_CACHE:-/tmp/vigil-fleet-cache}/n$N
PKI=$RUN/pki
DATA=$RUN/data
DATA2=$RUN/data2
CONF=$RUN/vigild.conf
LOG=$RUN/vigild.log
rm -rf "$RUN"
mkdir -p "$RUN"
chmod 700 "$RUN"

cleanup() {
	local rc=$?
	"$HERE/center.sh" stop "$DATA" || true
	[ "$NODES" = 1 ] || "$HERE/center.sh" stop "$DATA2" || true
	[ "$STORE" = sqlite ] || pg_stop
	if [ "$rc" -ne 0 ] && [ -f "$LOG" ]; then
		echo "--- run.sh failed (rc $rc); center log tail:" >&2
		tail -n 30 "$LOG" >&2
	fi
	[ "$KEEP" = 1 ] || rm -rf "$DATA"
	exit $rc
}
trap cleanup EXIT

if [ "$STORE" = pg ]; then
	fail() { echo "run.sh: $*" >&2; exit 1; }
	skip() { fail "$@"; }
	# shellcheck source=../../tests/e2e/pg.inc
	. "$SRC/tests/e2e/pg.inc"
	pg_start
	echo "store: PostgreSQL 15 on 127.0.0.1:$PG_PORT ($PG_DIR)"
	FRESH=1
fi
CACHED=0
if [ "$FRESH" = 0 ] && [ -f "$CACHE/complete" ]; then
	CACHED=1
	cp -a "$CACHE/pki" "$PKI"
	mkdir -m 700 "$DATA"
	cp "$CACHE/vigil.db" "$DATA/vigil.db"
	install -m 600 "$CACHE/admin.key" "$DATA/admin.key"
else
	"$BUILD/vigilctl" pki init --dir "$PKI" --domain center.vigil.test \
		--san 127.0.0.1 >"$RUN/pki.log" 2>&1
fi

write_conf() { # gateway port, admin port [conf file, data dir, node]
	cat >"${3:-$CONF}" <<-EOF
		[center]
		fqdn = center.vigil.test
		pki_dir = $PKI
		data_dir = ${4:-$DATA}
		node_name = ${5:-a}
		user = root
		require_approval = no
		poll_interval = 60s
		log_level = info
		[gateway]
		listen = 127.0.0.1
		port = $1
		timeout = 30s
		max_conns = $(( WORKERS > 0 ? 0 : N + 1000 ))
		max_long_polls = $((N + 1000))
		enroll_rate = 100000
		workers = $WORKERS
		[admin]
		listen = 127.0.0.1
		port = $2
	EOF
	# Extra center settings to compare, e.g.
	# FLEET_CENTER_CONF=$'[center]\nseen_flush = 0'
	[ "$STORE" = sqlite ] || printf '[store]\nurl = %s\n' "$PG_URL" >>"${3:-$CONF}"
	[ -z "${FLEET_CENTER_CONF:-}" ] || printf '%s\n' "$FLEET_CENTER_CONF" >>"${3:-$CONF}"
}
# Ephemeral ports the first time, then the same ports for the restart.
write_conf 0 0
PID=$("$HERE/center.sh" start "$BUILD/vigild" "$CONF" "$DATA" "$LOG")
GW=$(sed -nE 's/.*"gateway": ([0-9]+).*/\1/p' "$DATA/vigild.ports")
ADM=$(sed -nE 's/.*"admin": ([0-9]+).*/\1/p' "$DATA/vigild.ports")
write_conf "$GW" "$ADM"
echo "center: pid $PID, gateway 127.0.0.1:$GW, admin 127.0.0.1:$ADM," \
	"fd limit $NOFILE, data $DATA"

COMMON=(--gw-port "$GW" --ca "$PKI/ca.crt" --agents "$N")
NODE2=()
if [ "$NODES" = 2 ]; then
	mkdir -m 700 "$DATA2"
	write_conf 0 0 "$RUN/vigild2.conf" "$DATA2" b
	PID2=$("$HERE/center.sh" start "$BUILD/vigild" "$RUN/vigild2.conf" "$DATA2" "$RUN/vigild2.log")
	GW2=$(sed -nE 's/.*"gateway": ([0-9]+).*/\1/p' "$DATA2/vigild.ports")
	ADM2=$(sed -nE 's/.*"admin": ([0-9]+).*/\1/p' "$DATA2/vigild.ports")
	echo "node b: pid $PID2, gateway 127.0.0.1:$GW2, admin 127.0.0.1:$ADM2"
	NODE2=(--gw-port2 "$GW2" --admin-port2 "$ADM2" --no-restart)
fi
if [ "$CACHED" = 0 ]; then
	export VIGIL_SERVER="https://127.0.0.1:$ADM" VIGIL_CA="$PKI/ca.crt"
	VIGIL_API_KEY=$(cat "$DATA/admin.key")
	export VIGIL_API_KEY
	TOKEN=$("$BUILD/vigilctl" --json token create --uses "$N" |
		sed -nE 's/.*"token": "([^"]+)".*/\1/p')
	[ -n "$TOKEN" ] || { echo "run.sh: no token" >&2; exit 1; }
	rm -rf "$RUN/ids"
	"$WORK/fleet" enroll "${COMMON[@]}" --ids "$RUN/ids" --token "$TOKEN" \
		--parallel 64
	# The store as it is after enrollment, for later runs with this N.
	if [ "$STORE" = sqlite ]; then
		rm -rf "$CACHE"
		mkdir -p "$CACHE"
		sqlite3 "$DATA/vigil.db" ".backup '$CACHE/vigil.db'"
		cp -a "$PKI" "$CACHE/pki"
		cp -a "$RUN/ids" "$CACHE/ids"
		install -m 600 "$DATA/admin.key" "$CACHE/admin.key"
		touch "$CACHE/complete"
	fi
	IDS=$RUN/ids
else
	echo "enroll: $N identities from $CACHE (--fresh to enroll again)"
	IDS=$CACHE/ids
fi

netstat_snap() {
	nstat -az 2>/dev/null | awk '/^(TcpExtListenOverflows|TcpExtListenDrops|TcpExtTCPReqQFullDoCookies|TcpRetransSegs) / {print $1, $2}'
}
NSTAT0=$(netstat_snap)
echo "load before the run: $(uptime)"
DBARG=()
[ "$STORE" = pg ] || DBARG=(--db "$DATA/vigil.db")
rc=0
if [ "$GENS" -gt 1 ]; then
	G_PIDS=()
	mkdir -p "$RUN/barrier"
	for g in $(seq 0 $((GENS - 1))); do
		ROLE=(--follower)
		[ "$g" != 0 ] || ROLE=(--restart-cmd "'$HERE/center.sh' start '$BUILD/vigild' '$CONF' '$DATA' '$LOG' >/dev/null" \
			--json "$WORK/result-n$N.json")
		# The last one takes the remainder of N / G too.
		NG=$((N / GENS))
		[ "$g" != $((GENS - 1)) ] || NG=$((N - g * (N / GENS)))
		"$WORK/fleet" run --gw-port "$GW" --ca "$PKI/ca.crt" \
			--agents "$NG" --first $((g * (N / GENS))) \
			--total-agents "$N" \
			--ids "$IDS" --admin-port "$ADM" --admin-key "$DATA/admin.key" \
			--center-pid "$PID" --ports-file "$DATA/vigild.ports" \
			--barrier "$RUN/barrier" --barrier-n "$GENS" \
			--connect-rate "$GRATE" "${ROLE[@]}" "${PASS[@]}" \
			>"$RUN/gen$g.log" 2>&1 &
		G_PIDS+=("$!")
	done
	for p in "${G_PIDS[@]}"; do wait "$p" || rc=1; done
	for g in $(seq 1 $((GENS - 1))); do
		echo "--- generator $g (follower)"
		grep -vE '^\[ *[0-9.]+\]   ' "$RUN/gen$g.log" || true
	done
	echo "--- generator 0 (leader)"
	cat "$RUN/gen0.log"
	echo "load after the run: $(uptime)"
	echo "center log: $(grep -c '' "$LOG") lines, $(grep -ciE 'warn|error|fatal' "$LOG" || true) warnings/errors" \
		"(kept in $LOG)"
	join -a1 <(echo "$NSTAT0" | sort) <(netstat_snap | sort) |
		awk '{printf "%s%s +%d", (NR > 1 ? ", " : "kernel (loopback) over the run: "), $1, $3 - $2} END {print ""}'
	exit $rc
fi
"$WORK/fleet" run "${COMMON[@]}" --ids "$IDS" --admin-port "$ADM" \
	--admin-key "$DATA/admin.key" --center-pid "$PID" \
	--ports-file "$DATA/vigild.ports" "${DBARG[@]}" "${NODE2[@]}" \
	--connect-rate "$GRATE" \
	--restart-cmd "'$HERE/center.sh' start '$BUILD/vigild' '$CONF' '$DATA' '$LOG' >/dev/null" \
	--events-per-agent "$M" --json "$WORK/result-n$N.json" "${PASS[@]}" || rc=$?
if [ "$STORE" = pg ]; then
	# The events check fleet does on SQLite, with psql.
	M_SENT=$(pg_sql -c "SELECT COUNT(*) FROM events WHERE agent_id <> 'center'")
	M_COMPLETE=$(pg_sql -c "SELECT COUNT(*) FROM (SELECT agent_id FROM events WHERE agent_id <> 'center' GROUP BY agent_id HAVING COUNT(*) = $M AND MIN(seq) = 1 AND MAX(seq) = $M) x")
	echo "events in PostgreSQL    $M_SENT ($M_COMPLETE/$N agents with exactly seq 1..$M)"
	[ "$M_SENT" = $((N * M)) ] && [ "$M_COMPLETE" = "$N" ] || rc=1
fi
echo "center log: $(grep -c '' "$LOG") lines, $(grep -ciE 'warn|error|fatal' "$LOG" || true) warnings/errors" \
	"(kept in $LOG)"
grep -iE 'fatal|assert|sanitizer' "$LOG" | head -5 || true
# Kernel counters over the run: accept queue overflows mean SYNs or ACKs
# dropped at the gateway's listener (clients retry after 1 s, 3 s, ...).
join -a1 <(echo "$NSTAT0" | sort) <(netstat_snap | sort) |
	awk '{printf "%s%s +%d", (NR > 1 ? ", " : "kernel (loopback) over the run: "), $1, $3 - $2} END {print ""}'
exit $rc
