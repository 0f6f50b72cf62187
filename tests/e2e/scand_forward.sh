#!/bin/bash
# vigil-scand's findings to syslog, into a real vigild's syslog listener:
# samples with findings (a sync check and an async one) arrive as events of
# type "syslog" in the center's events API, over TCP (RFC 5424) and UDP
# (JSON); clean samples send nothing; the status counters say what was
# sent; SIGHUP switches the output. With the receiver down, checks are answered as ever, messages past
# the queue are counted as dropped, and the queue is delivered once the
# receiver is back.
. "$(dirname "$0")/lib.sh"

SCAND=$BIN/vigil-scand
SDATA=$T/scand
RULES="$SRC/tests/data/scan/markers.yar $SRC/tests/data/scan/markers.ioc"

standard_center "[syslog]" "enable = yes" "listen = 127.0.0.1" \
	"udp_port = 0" "tcp_port = 0"
SU=$(sed -E 's/.*"syslog_udp": ([0-9]+).*/\1/' "$DATA/vigild.ports")
ST=$(sed -E 's/.*"syslog_tcp": ([0-9]+).*/\1/' "$DATA/vigild.ports")
[ "$SU" -gt 0 ] && [ "$ST" -gt 0 ] || fail "listener ports: $(cat "$DATA/vigild.ports")"

# scand_conf TRANSPORT PORT FORMAT [extra syslog keys]
scand_conf() {
	cat >"$T/scand.conf" <<EOC
[scand]
data_dir = $SDATA
rules = $RULES
threads = 2
max_upload = 1M
log_level = debug
[http]
listen = 127.0.0.1
port = 0
[syslog]
enable = yes
transport = $1
host = 127.0.0.1
port = $2
format = $3
${4:-}
EOC
}

start_scand() {
	local i
	rm -f "$SDATA/vigil-scand.ports"
	"$SCAND" -d -c "$T/scand.conf" >>"$T/scand.log" 2>&1 &
	SCAND_PID=$!
	PIDS+=("$SCAND_PID")
	for i in $(seq 1 100); do
		[ -s "$SDATA/vigil-scand.ports" ] && break
		kill -0 "$SCAND_PID" 2>/dev/null ||
			fail "vigil-scand exited at start: $(tail -5 "$T/scand.log")"
		sleep 0.1
	done
	[ -s "$SDATA/vigil-scand.ports" ] || fail "vigil-scand did not start"
	HP=$(sed -E 's/.*"http": ([0-9]+).*/\1/' "$SDATA/vigil-scand.ports")
	U=http://127.0.0.1:$HP/api/v1
}

stop_scand() {
	kill -TERM "$SCAND_PID"
	wait "$SCAND_PID" || fail "vigil-scand did not stop cleanly"
}

jget() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
events() { api GET "/api/v1/events?type=syslog&limit=1000&${1:-}"; }
wait_events() { # wait_events N [query]
	local i
	for i in $(seq 1 100); do
		[ "$(events "${2:-}" | grep -o '"agent_id":"syslog:' | wc -l)" -ge "$1" ] && return 0
		sleep 0.1
	done
	fail "expected $1 syslog events: $(events "${2:-}")"
}
check() { # check FILE NAME SOURCE: sync check, prints the body
	curl -sS -F "file=@$1;filename=$2" "$U/check?source=$3"
}

printf 'x VIGIL-TEST-MARKER-7d1f3a y\n' >"$T/marker.bin"
printf 'VIGIL-HASH-SAMPLE-MD5\n' >"$T/hash.txt"
printf 'nothing to see\n' >"$T/clean.txt"

# 1. TCP, RFC 5424: a sync finding, an async one, a clean file.
scand_conf tcp "$ST" rfc5424
"$SCAND" -n -c "$T/scand.conf" >/dev/null || fail "-n rejected [syslog]"
start_scand
expect_contains "$(check "$T/marker.bin" 'C:\Temp\m.bin' host-a)" Vigil_Test_Marker
[ "$(check "$T/clean.txt" clean.txt host-a)" = "[]" ] || fail "clean file"
id=$(curl -sS -F "file=@$T/hash.txt;filename=h.txt" "$U/checkAsync?source=host-b" |
	jget 'd["id"]')
wait_events 2
e=$(events "q=Vigil_Test_Marker")
expect_contains "$e" '"transport":"tcp"'
expect_contains "$e" '"format":"rfc5424"'
expect_contains "$e" '"app_name":"vigil"'
expect_contains "$e" '"msgid":"finding"'
expect_contains "$e" '"level":"alert"'
expect_contains "$e" '\"source\":\"host-a\"'
expect_contains "$e" 'C:\\\\Temp\\\\m.bin'
e=$(events "q=host-b")
expect_contains "$e" "\\\"scan_id\\\":$id"
expect_contains "$e" '\"file\":\"h.txt\"'
st=$(curl -sS "$U/status")
[ "$(jget 'd["syslog_sent"]' <<<"$st")" = 2 ] || fail "sent: $st"
[ "$(jget 'd["syslog_dropped"]' <<<"$st")" = 0 ] || fail "dropped: $st"
[ "$(events | grep -o '"agent_id":"syslog:' | wc -l)" = 2 ] || fail "clean file sent: $(events)"
pass "tcp rfc5424: sync and async findings are events in the center; clean files send nothing"

# 2. SIGHUP to UDP, JSON: the counters go on.
scand_conf udp "$SU" json
kill -HUP "$SCAND_PID"
for i in $(seq 1 100); do
	grep -q "syslog output reconfigured" "$T/scand.log" && break
	sleep 0.1
done
grep -q "syslog output reconfigured" "$T/scand.log" || fail "no reload: $(tail -5 "$T/scand.log")"
expect_contains "$(check "$T/marker.bin" udp.bin host-c)" Vigil_Test_Marker
wait_events 1 "q=host-c"
e=$(events "q=host-c")
expect_contains "$e" '"transport":"udp"'
expect_contains "$e" '\"agent_id\":\"vigil-scand\"'
expect_contains "$e" '\"file\":\"udp.bin\"'
[ "$(curl -sS "$U/status" | jget 'd["syslog_sent"]')" = 3 ] || fail "udp sent"
stop_scand
pass "SIGHUP to udp json: finding is an event in the center, counters go on"

# 3. Receiver down (the center stopped): checks go on, the queue fills,
# what does not fit is counted as dropped.
stop_center
scand_conf tcp "$ST" rfc5424 "queue = 4096"
start_scand
for i in $(seq 1 12); do
	expect_contains "$(check "$T/marker.bin" "down-$i-$(head -c 300 /dev/zero | tr '\0' a)" host-d)" \
		Vigil_Test_Marker
done
st=$(curl -sS "$U/status")
[ "$(jget 'd["syslog_sent"]' <<<"$st")" = 0 ] || fail "sent while down: $st"
[ "$(jget 'd["syslog_queued"]' <<<"$st")" -gt 0 ] || fail "queued: $st"
[ "$(jget 'd["syslog_dropped"]' <<<"$st")" -gt 0 ] || fail "dropped: $st"
[ $(($(jget 'd["syslog_queued"]+d["syslog_dropped"]' <<<"$st"))) = 12 ] ||
	fail "queued + dropped: $st"
queued=$(jget 'd["syslog_queued"]' <<<"$st")
pass "receiver down: checks answered, queue bounded, overflow counted as dropped"

# 4. The center comes back on the same port: the queue is delivered.
write_conf "$T/vigild.conf" "$PKI" "$DATA" "[syslog]" "enable = yes" \
	"listen = 127.0.0.1" "udp_port = $SU" "tcp_port = $ST"
start_center "$T/vigild.conf" "$DATA"
for i in $(seq 1 150); do
	st=$(curl -sS "$U/status")
	[ "$(jget 'd["syslog_queued"]' <<<"$st")" = 0 ] && break
	sleep 0.1
done
[ "$(jget 'd["syslog_sent"]' <<<"$st")" = "$queued" ] || fail "after reconnect: $st"
wait_events "$queued" "q=host-d"
stop_scand
pass "receiver back: the $queued queued messages arrive as events"
