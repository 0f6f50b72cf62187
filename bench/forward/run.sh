#!/bin/bash
# The forwarding benchmark (docs/performance.md, "Forwarding"): N events
# preloaded into a center's store are forwarded to a real rsyslogd on
# 127.0.0.1 over TCP, then over TLS (RFC 5425); the time runs from adding
# the target (--from start) until the receiver's file holds all N lines.
# In the same run, for comparison, an rsyslogd relay receives the same N
# messages (the receiver's copy of Vigil's output, sent as fast as one
# socket can) and forwards them with omfwd over TCP (octet counting) to an
# identical receiver. Prints messages/s and the sender's CPU seconds.
#
#   bench/forward/run.sh [BUILD_DIR] [--events N] [--format F] [--keep]
#
# BUILD_DIR holds vigild and vigilctl (default: ./build). N defaults to
# 200000. Everything runs in a temporary directory, removed at the end
# unless --keep.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
BUILD=$SRC/build
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then
	BUILD=$(cd "$1" && pwd)
	shift
fi
N=200000
FORMAT=rfc5424
KEEP=0
while [ $# -gt 0 ]; do
	case "$1" in
	--events) N=$2; shift 2 ;;
	--format) FORMAT=$2; shift 2 ;;
	--keep) KEEP=1; shift ;;
	-h | --help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
	esac
done
case "$N" in '' | *[!0-9]*) echo "run.sh: --events: a number" >&2; exit 2 ;; esac
for b in vigild vigilctl; do
	[ -x "$BUILD/$b" ] || { echo "run.sh: $BUILD/$b missing; run make" >&2; exit 2; }
done
RSYSLOGD=/usr/sbin/rsyslogd
W=$(mktemp -d /tmp/vigil-fwdbench.XXXXXX)
PIDS=()
cleanup() {
	for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]:-}"; do [ -n "$p" ] && wait "$p" 2>/dev/null || true; done
	[ $KEEP = 1 ] && echo "kept: $W" || rm -rf "$W"
}
trap cleanup EXIT

now() { date +%s.%N; }
cpu() { # CPU seconds (user + system) of a pid
	awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$1/stat"
}

# rs NAME BODY: an rsyslogd with the given inputs/actions; prints its pid
# file's port once listening.
rs() {
	local d=$W/$1 i
	mkdir -p "$d"
	cat >"$d/rsyslog.conf" <<RS
global(workDirectory="$d" maxMessageSize="128k" parser.escapeControlCharactersOnReceive="off"
  DefaultNetstreamDriverCAFile="$W/pki/ca.crt" DefaultNetstreamDriverCertFile="$W/pki/server.crt"
  DefaultNetstreamDriverKeyFile="$W/pki/server.key")
main_queue(queue.size="200000" queue.dequeueBatchSize="1024")
template(name="raw" type="string" string="%rawmsg%\\n")
$2
RS
	"$RSYSLOGD" -n -C -f "$d/rsyslog.conf" -i "$d/pid" >"$d/log" 2>&1 &
	PIDS+=($!)
	eval "RS_PID_$1=$!"
	for i in $(seq 1 100); do [ -s "$d/port" ] && break; sleep 0.1; done
	[ -s "$d/port" ] || { echo "run.sh: rsyslogd $1 did not start: $(cat "$d/log")" >&2; exit 1; }
}
OUT='action(type="omfile" file="OUTFILE" template="raw" ioBufferSize="1m" flushOnTXEnd="on" asyncWriting="off")'

wait_lines() { # FILE N: until FILE has N lines (at most 600 s)
	local deadline=$(($(date +%s) + 600))
	while [ ! -f "$1" ] || [ "$(wc -l <"$1")" -lt "$2" ]; do
		[ "$(date +%s)" -lt $deadline ] || { echo "run.sh: $1: $(wc -l <"$1" 2>/dev/null) of $2 lines after 600 s" >&2; exit 1; }
		sleep 0.02
	done
}

echo "== setup: $N events into a fresh center store"
"$BUILD/vigilctl" pki init --dir "$W/pki" --domain bench.vigil.test --san 127.0.0.1 >/dev/null
cat >"$W/vigild.conf" <<CONF
[center]
fqdn = bench.vigil.test
user = root
pki_dir = $W/pki
data_dir = $W/data
[gateway]
listen = 127.0.0.1
port = 0
[admin]
listen = 127.0.0.1
port = 0
CONF
start_center() {
	rm -f "$W/data/vigild.ports"
	"$BUILD/vigild" -d -c "$W/vigild.conf" >>"$W/vigild.log" 2>&1 &
	CPID=$!
	PIDS+=($CPID)
	for i in $(seq 1 100); do [ -s "$W/data/vigild.ports" ] && break; sleep 0.1; done
	ADM=$(sed -E 's/.*"admin": ([0-9]+).*/\1/' "$W/data/vigild.ports")
	export VIGIL_SERVER=https://127.0.0.1:$ADM VIGIL_CA=$W/pki/ca.crt
	export VIGIL_API_KEY
	VIGIL_API_KEY=$(cat "$W/data/admin.key")
}
start_center
kill -TERM $CPID; wait $CPID || true
sqlite3 "$W/data/vigil.db" <<SQL
INSERT INTO agents (id, status, hostname, labels, enrolled_at)
  VALUES ('bench-agent', 'active', 'host1.example.org', '{}', 0);
WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < $N)
INSERT INTO events (agent_id, seq, time, received_at, type, level, task_id, data)
  SELECT 'bench-agent', i, 1795449648 + i / 1000, 1795449648, 'finding', 'alert', 'task-1',
         '{"rule":"EICAR","path":"/home/user/downloads/file-' || i || '.exe","score":90}'
  FROM c;
SQL
start_center

rs recv_tcp "module(load=\"imtcp\" MaxSessions=\"10\")
input(type=\"imtcp\" port=\"0\" address=\"127.0.0.1\" listenPortFileName=\"$W/recv_tcp/port\")
${OUT/OUTFILE/$W/recv_tcp/out}"
rs recv_tls "module(load=\"imtcp\" StreamDriver.Name=\"ossl\" StreamDriver.Mode=\"1\" StreamDriver.AuthMode=\"anon\")
input(type=\"imtcp\" port=\"0\" address=\"127.0.0.1\" listenPortFileName=\"$W/recv_tls/port\")
${OUT/OUTFILE/$W/recv_tls/out}"

run_vigil() { # NAME TRANSPORT PORT [tls options]
	local name=$1 tr=$2 port=$3 t0 t1 c0 c1
	shift 3
	c0=$(cpu $CPID)
	t0=$(now)
	"$BUILD/vigilctl" forward add "$name" --transport "$tr" --host 127.0.0.1 \
		--port "$port" --format "$FORMAT" --from start "$@" >/dev/null
	wait_lines "$W/recv_$tr/out" "$N"
	t1=$(now)
	c1=$(cpu $CPID)
	"$BUILD/vigilctl" forward remove "$name" >/dev/null
	awk -v n="$N" -v a="$t0" -v b="$t1" -v c0="$c0" -v c1="$c1" -v tr="$tr" -v f="$FORMAT" 'BEGIN {
		printf "vigild -> rsyslog  %-4s %-8s %8d msgs  %6.2f s  %9.0f msgs/s  vigild CPU %6.2f s  (%.0f msgs per CPU-second)\n",
		tr, f, n, b - a, n / (b - a), c1 - c0, ((c1 - c0) > 0 ? n / (c1 - c0) : 0) }'
}

echo "== vigild forwarding (format $FORMAT)"
run_vigil tcp tcp "$(cat "$W/recv_tcp/port")"
run_vigil tls tls "$(cat "$W/recv_tls/port")" --tls-ca "$W/pki/ca.crt"
# Same message count and content (the TCP receiver's copy) for the relay.
[ "$(sort "$W/recv_tcp/out" | uniq | wc -l)" = "$N" ] || echo "run.sh: warning: duplicates in the TCP copy"

echo "== rsyslog relay: sender -> rsyslogd (imtcp) -> omfwd tcp -> rsyslogd"
rs recv_relay "module(load=\"imtcp\")
input(type=\"imtcp\" port=\"0\" address=\"127.0.0.1\" listenPortFileName=\"$W/recv_relay/port\")
${OUT/OUTFILE/$W/recv_relay/out}"
rs relay "module(load=\"imtcp\")
input(type=\"imtcp\" port=\"0\" address=\"127.0.0.1\" listenPortFileName=\"$W/relay/port\")
action(type=\"omfwd\" target=\"127.0.0.1\" port=\"$(cat "$W/recv_relay/port")\" protocol=\"tcp\" TCP_Framing=\"octet-counted\" template=\"RSYSLOG_SyslogProtocol23Format\")"
c0=$(cpu "$RS_PID_relay")
t0=$(now)
python3 - "$(cat "$W/relay/port")" "$W/recv_tcp/out" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
with open(sys.argv[2], "rb") as f:
    while True:
        b = f.read(1 << 20)
        if not b:
            break
        s.sendall(b)
s.close()
PY
wait_lines "$W/recv_relay/out" "$N"
t1=$(now)
c1=$(cpu "$RS_PID_relay")
awk -v n="$N" -v a="$t0" -v b="$t1" -v c0="$c0" -v c1="$c1" 'BEGIN {
	printf "rsyslog relay      tcp  rfc5424  %8d msgs  %6.2f s  %9.0f msgs/s  relay CPU  %6.2f s  (%.0f msgs per CPU-second)\n",
	n, b - a, n / (b - a), c1 - c0, ((c1 - c0) > 0 ? n / (c1 - c0) : 0) }'
echo "== machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); rsyslogd $("$RSYSLOGD" -v | head -1 | awk '{print $2}'); vigil $(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo '?')"
