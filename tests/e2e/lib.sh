# Shared helpers of the end-to-end scenarios: a temporary directory, a PKI
# made with vigilctl, a real vigild on 127.0.0.1 with ephemeral ports, and
# cleanup of every process started, whatever happens. Sourced, not run.
set -euo pipefail

BIN=${VIGIL_BIN:?VIGIL_BIN must point at the build directory}
SRC=${VIGIL_SRC:?VIGIL_SRC must point at the source tree}
VIGILD=$BIN/vigild
AGENT=$BIN/vigil-agent
CTL=$BIN/vigilctl
DOMAIN=center.vigil.test

T=$(mktemp -d /tmp/vigil-e2e.XXXXXX)
chmod 700 "$T"
PIDS=()
AT_EXIT=()

# at_exit CMD: CMD (a shell string) runs first when the scenario exits,
# before the processes are stopped and $T removed. Use it instead of a trap
# of one's own: a trap that runs commands before cleanup hands cleanup
# their status, and a failed scenario then exits 0.
at_exit() {
	AT_EXIT+=("$1")
}

cleanup() {
	local rc=$? h
	for h in "${AT_EXIT[@]:-}"; do
		[ -n "$h" ] && { eval "$h"; } >/dev/null 2>&1 || true
	done
	for p in "${PIDS[@]:-}"; do
		[ -n "$p" ] && kill "$p" 2>/dev/null || true
	done
	for p in "${PIDS[@]:-}"; do
		[ -n "$p" ] && wait "$p" 2>/dev/null || true
	done
	# The database goes last: nothing of the scenario runs any more.
	if [ "$VIGIL_STORE" = pg ]; then pg_stop; fi
	if [ $rc -ne 0 ] && [ $rc -ne 77 ]; then
		echo "--- $0 failed (rc $rc); logs:" >&2
		for f in "$T"/*.log; do
			[ -f "$f" ] || continue
			echo "--- $f" >&2
			tail -n 40 "$f" >&2
		done
	fi
	rm -rf "$T"
	exit $rc
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

pass() {
	echo "ok: $*"
}

# expect_contains FILE_OR_STRING NEEDLE: fails showing the text otherwise.
expect_contains() {
	if ! grep -qF -- "$2" <<<"$1"; then
		echo "--- text:" >&2
		echo "$1" >&2
		fail "expected to find: $2"
	fi
}

# skip WHY: the scenario cannot run here. Exit 77 is CTest's SKIP_RETURN_CODE,
# so it is reported as skipped, never as passed; name scripts/install-deps in
# WHY when it installs the missing piece (scripts/run-checks then fails).
skip() {
	echo "skip: $*"
	exit 77
}

# VIGIL_STORE=pg (CTest's e2e-pg/NAME): the same scenario with the center
# on PostgreSQL. write_conf starts a throwaway cluster (pg.inc) the first
# time and points [store] url at it; db and db_lacks read it with psql.
VIGIL_STORE=${VIGIL_STORE:-sqlite}
if [ "$VIGIL_STORE" = pg ]; then
	# shellcheck source=pg.inc
	. "$SRC/tests/e2e/pg.inc"
fi

# pg_ensure: the cluster of this scenario, started once.
pg_ensure() {
	[ -n "${PG_URL:-}" ] || pg_start
}

# db SQL...: runs SQL on the center's database through sqlite3. New rows sit
# in vigil.db-wal until a checkpoint, so the vigil.db file alone is never
# searched; sqlite3 reads the WAL as the center does. On PostgreSQL, psql
# with the same output (columns separated by |, no header).
db() {
	if [ "$VIGIL_STORE" = pg ]; then
		pg_sql -c "$1"
		return
	fi
	sqlite3 -batch -cmd ".timeout 5000" "$DATA/vigil.db" "$@"
}

# db_refuse_audit ACTION: from now on the store refuses to write an audit
# entry of ACTION (a trigger raising an error), as a full disk or a lost
# database would; db_allow_audit takes the trigger away.
db_refuse_audit() {
	if [ "$VIGIL_STORE" = pg ]; then
		db "CREATE FUNCTION test_audit_refuse() RETURNS trigger AS \$\$
		    BEGIN RAISE EXCEPTION 'audit entry refused by the test';
		    END \$\$ LANGUAGE plpgsql;
		    CREATE TRIGGER test_audit_refuse BEFORE INSERT ON audit
		    FOR EACH ROW WHEN (NEW.action = '$1')
		    EXECUTE FUNCTION test_audit_refuse()"
		return
	fi
	db "CREATE TRIGGER test_audit_refuse BEFORE INSERT ON audit
	    WHEN NEW.action = '$1'
	    BEGIN SELECT RAISE(ABORT, 'audit entry refused by the test'); END"
}

db_allow_audit() {
	if [ "$VIGIL_STORE" = pg ]; then
		db "DROP TRIGGER test_audit_refuse ON audit;
		    DROP FUNCTION test_audit_refuse()"
		return
	fi
	db "DROP TRIGGER test_audit_refuse"
}

# db_target: what vigilctl opens for the center's database (the SQLite
# file, or the PostgreSQL URL).
db_target() {
	if [ "$VIGIL_STORE" = pg ]; then
		echo "$PG_URL"
	else
		echo "$DATA/vigil.db"
	fi
}

# db_lacks NEEDLE WHAT: fails with WHAT if NEEDLE occurs anywhere in the
# database's content (a full dump through sqlite3, the WAL included).
db_lacks() {
	local dump
	if [ "$VIGIL_STORE" = pg ]; then
		dump=$("$PGBIN/pg_dump" -d "$PG_URL") || fail "pg_dump"
	else
		dump=$(sqlite3 -batch "$DATA/vigil.db" .dump) || fail "sqlite3 .dump"
	fi
	grep -q '^CREATE TABLE' <<<"$dump" || fail "empty database dump"
	if grep -qF -- "$1" <<<"$dump"; then
		grep -F -- "$1" <<<"$dump" | head -3 >&2
		fail "$2"
	fi
	return 0
}

# metric_value TEXT SERIES: the value of one series (name with its labels,
# exactly as exposed) in a /metrics body; empty when absent.
metric_value() {
	awk -v s="$2" 'index($0, s " ") == 1 { print substr($0, length(s) + 2) }' \
		<<<"$1"
}

# metric_at_least NAME MIN: /metrics shows NAME (with its labels) at MIN
# or more. With gateway workers their counters reach /metrics with their
# next report, so a scenario waits for them: wait_for 10 WHAT
# metric_at_least NAME MIN.
metric_at_least() {
	local v
	v=$(metric_value "$(api GET /metrics)" "$1")
	[ -n "$v" ] && [ "${v%.*}" -ge "$2" ]
}

# wait_metric SERIES VALUE: waits (10 s at most) for /metrics to show
# SERIES at exactly VALUE. A worker's counters (handshake failures,
# closes) reach the core's /metrics a moment after the client saw the
# refusal, so an exact count is waited for, never read once.
wait_metric() {
	local end=$((SECONDS + 10)) v
	until v=$(metric_value "$(api GET /metrics)" "$1") && [ "$v" = "$2" ]; do
		[ "$SECONDS" -lt "$end" ] ||
			fail "waited 10s for $1 to reach $2: it shows '$v'"
		sleep 0.1
	done
}

# center_children FLAG: the pids of the center's children started with
# FLAG on their command line (--gateway-worker, --admin-worker,
# --syslog-worker), one a line.
center_children() {
	local p
	for p in $(ps -o pid= --ppid "$CENTER_PID"); do
		tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null |
			grep -q -- "$1" && echo "$p"
	done
	return 0
}

# proc_status PID KEY: a field of /proc/PID/status (Uid, CapEff,
# NoNewPrivs, Seccomp...), as the kernel writes it.
proc_status() {
	awk -v k="$2:" '$1 == k { $1 = ""; print substr($0, 2) }' "/proc/$1/status"
}

# worker_conf CONF [lines...]: write_conf for a scenario that checks its
# workers' user: started as root the center runs as [center] user = nobody
# (RUN_AS), as it does after its drop (and $T is made enterable for it);
# as anyone else, as that user.
worker_conf() {
	local conf=$1
	shift
	if [ "$(id -u)" = 0 ]; then
		RUN_AS=nobody
		chmod 711 "$T"
		write_conf "$conf" "$PKI" "$DATA" "user = $RUN_AS" "$@"
	else
		RUN_AS=$(id -un)
		write_conf "$conf" "$PKI" "$DATA" "$@"
	fi
}

# established PID PORT: how many established TCP connections on local
# port PORT the process PID holds (its socket inodes matched against
# /proc/net/tcp, state 01).
established() {
	local port inodes
	port=$(printf ':%04X' "$2")
	inodes=$(ls -l "/proc/$1/fd" 2>/dev/null | sed -nE 's/.*socket:\[([0-9]+)\]$/\1/p')
	[ -n "$inodes" ] || { echo 0; return; }
	awk -v p="$port" 'NR > 1 && $4 == "01" && substr($2, length($2) - 4) == p { print $10 }' \
		/proc/net/tcp | { grep -Fxf <(echo "$inodes") || true; } | wc -l
}

# seccomp_on PID: the process runs under a seccomp filter.
seccomp_on() { [ "$(proc_status "$1" Seccomp)" = 2 ]; }

# worker_sandboxed WHAT PID USER: a worker of the center runs as USER (all
# four uids), without capabilities, with NoNewPrivs, and (waited for: it
# is loaded once the worker listens) under its seccomp filter.
worker_sandboxed() {
	local what=$1 pid=$2 user=$3 uid
	uid=$(id -u "$user")
	[ "$(ps -o user= -p "$pid")" = "$user" ] ||
		fail "$what $pid runs as $(ps -o user= -p "$pid")"
	[ "$(proc_status "$pid" Uid)" = "$uid $uid $uid $uid" ] ||
		fail "$what $pid uids: $(proc_status "$pid" Uid)"
	[ "$(proc_status "$pid" CapEff)" = 0000000000000000 ] ||
		fail "$what $pid keeps capabilities $(proc_status "$pid" CapEff)"
	[ "$(proc_status "$pid" NoNewPrivs)" = 1 ] ||
		fail "$what $pid: NoNewPrivs not set"
	wait_for 10 "$what $pid under seccomp" seccomp_on "$pid"
}

# wait_for SECONDS WHAT CMD...: runs CMD every 0.1 s until it succeeds;
# fails naming WHAT once SECONDS have passed. Used instead of fixed sleeps.
wait_for() {
	local secs=$1 what=$2 end
	shift 2
	end=$((SECONDS + secs))
	until "$@"; do
		[ "$SECONDS" -lt "$end" ] ||
			fail "waited ${secs}s for $what"
		sleep 0.1
	done
}

# make_pki DIR [DOMAIN]
make_pki() {
	"$CTL" pki init --dir "$1" --domain "${2:-$DOMAIN}" --san 127.0.0.1 \
		--san ::1 >"$T/pki-$(basename "$1").log" 2>&1 ||
		fail "pki init: $(cat "$T/pki-$(basename "$1").log")"
}

# write_conf FILE PKI_DIR DATA_DIR [extra center keys...]
# On PostgreSQL every center of the scenario is on the database "vigil"
# (one center, several nodes), or with PG_DB=NAME on a database of its own.
write_conf() {
	local f=$1 pki=$2 data=$3 url=
	shift 3
	if [ "$VIGIL_STORE" = pg ]; then
		pg_ensure
		url=$PG_URL
		if [ -n "${PG_DB:-}" ]; then
			url=$(pg_db_url "$PG_DB") || fail "database $PG_DB"
		fi
	fi
	{
		echo "[center]"
		echo "fqdn = $DOMAIN"
		echo "pki_dir = $pki"
		echo "data_dir = $data"
		case " $* " in
		*"poll_interval ="*) ;;
		*) echo "poll_interval = 2s" ;;
		esac
		# The tests run as root and keep it (e2e/privsep gives it up).
		case " $* " in
		*"user ="*) ;;
		*) echo "user = root" ;;
		esac
		for kv in "$@"; do echo "$kv"; done
		# [store] before the others: scenarios append [admin] keys
		# at the end of the file.
		if [ "$VIGIL_STORE" = pg ]; then
			echo "[store]"
			echo "url = $url"
		fi
		echo "[gateway]"
		echo "listen = 127.0.0.1"
		echo "port = ${GW_PORT:-0}"
		# VIGIL_GW_WORKERS=N runs any scenario with N gateway worker
		# processes (e2e/gateway_workers.sh sets it); unset, the
		# default (auto: one per core). CTest's PostgreSQL pass sets
		# 0, so each scenario also runs with the gateway in-process.
		if [ -n "${VIGIL_GW_WORKERS:-}" ]; then
			echo "workers = $VIGIL_GW_WORKERS"
		fi
		echo "[admin]"
		echo "listen = 127.0.0.1"
		echo "port = ${ADM_PORT:-0}"
		# VIGIL_ADMIN_WORKER=1 or 0: the admin API and console in an
		# admin worker process or in vigild itself; unset, the
		# default (yes). e2e/admin_worker.sh sets 1, CTest's
		# PostgreSQL pass 0.
		if [ -n "${VIGIL_ADMIN_WORKER:-}" ]; then
			echo "worker = $VIGIL_ADMIN_WORKER"
		fi
	} >"$f"
}

# start_center CONF DATA_DIR: starts vigild -d, waits for its ports file,
# sets GW, ADM (ports), CENTER_PID and the vigilctl environment.
start_center() {
	local conf=$1 data=$2 i
	rm -f "$data/vigild.ports"
	"$VIGILD" -d -c "$conf" >>"$T/vigild.log" 2>&1 &
	CENTER_PID=$!
	PIDS+=("$CENTER_PID")
	for i in $(seq 1 100); do
		[ -s "$data/vigild.ports" ] && break
		kill -0 "$CENTER_PID" 2>/dev/null ||
			fail "vigild exited at start: $(tail -5 "$T/vigild.log")"
		sleep 0.1
	done
	[ -s "$data/vigild.ports" ] || fail "vigild did not start"
	if [ "$VIGIL_STORE" = pg ]; then
		grep -q "store: PostgreSQL" "$T/vigild.log" ||
			fail "vigild is not on PostgreSQL"
	fi
	GW=$(sed -E 's/.*"gateway": ([0-9]+).*/\1/' "$data/vigild.ports")
	ADM=$(sed -E 's/.*"admin": ([0-9]+).*/\1/' "$data/vigild.ports")
	export VIGIL_SERVER="https://127.0.0.1:$ADM"
	export VIGIL_CA="$PKI/ca.crt"
	export VIGIL_API_KEY
	VIGIL_API_KEY=$(cat "$data/admin.key")
}

stop_center() {
	kill -TERM "$CENTER_PID"
	wait "$CENTER_PID" || true
}

# A standard setup: PKI in $T/pki, data in $T/data, config $T/vigild.conf.
standard_center() {
	PKI=$T/pki
	DATA=$T/data
	make_pki "$PKI"
	write_conf "$T/vigild.conf" "$PKI" "$DATA" "$@"
	start_center "$T/vigild.conf" "$DATA"
}

new_token() {
	"$CTL" --json token create "$@" | sed -nE 's/.*"token": "([^"]+)".*/\1/p'
}

# api METHOD PATH [curl args...]: raw admin API call, prints the body.
api() {
	local m=$1 p=$2
	shift 2
	curl -sS --cacert "$PKI/ca.crt" -H "Authorization: Bearer $VIGIL_API_KEY" \
		-X "$m" "https://127.0.0.1:$ADM$p" "$@"
}

# gw_status METHOD PATH [curl args...]: HTTP status of a gateway request.
gw_status() {
	local m=$1 p=$2
	shift 2
	curl -sS -o "$T/gw-body" -w '%{http_code}' --cacert "$PKI/ca.crt" \
		-X "$m" "https://127.0.0.1:$GW$p" "$@" || true
}

machine_id() {
	printf '%s' "$1" | sha256sum | cut -c1-32 >"$T/machine-id-$1"
	echo "$T/machine-id-$1"
}
