#!/bin/bash
# [syslog] worker = yes (the default; docs/development.md, "The syslog
# worker"): the syslog listener's sockets are bound by vigild, but the
# messages are received, framed and parsed in a syslog worker process; the
# core stores what it sends. Checked from outside: the worker runs as the
# configured user with no capabilities, NoNewPrivs and a seccomp filter,
# and holds no file at all (only its sockets); the core holds no syslog
# socket but the two it bound for restarts; messages over UDP and TCP
# become events; kill -9 of the worker gets it restarted (counted), under
# the same sandbox, and messages over both transports are stored again.
. "$(dirname "$0")/lib.sh"

PKI=$T/pki
DATA=$T/data
make_pki "$PKI"
# As root, the worker runs as nobody (worker_conf).
worker_conf "$T/vigild.conf" "[syslog]" "enable = yes" "listen = 127.0.0.1" \
	"udp_port = 0" "tcp_port = 0"
start_center "$T/vigild.conf" "$DATA"
SU=$(sed -E 's/.*"syslog_udp": ([0-9]+).*/\1/' "$DATA/vigild.ports")
ST=$(sed -E 's/.*"syslog_tcp": ([0-9]+).*/\1/' "$DATA/vigild.ports")
[ "$SU" -gt 0 ] && [ "$ST" -gt 0 ] || fail "listener ports: $(cat "$DATA/vigild.ports")"
expect_contains "$(cat "$T/vigild.log")" "(in the syslog worker)"

sl_worker() { center_children --syslog-worker; } # the core's child that is the syslog worker
one_worker() { [ "$(sl_worker | wc -l)" = 1 ]; }
sandboxed() { # PID: the syslog worker's user, capabilities, seccomp, files
	local l
	worker_sandboxed "syslog worker" "$1" "$RUN_AS"
	# Sockets and its event loop's own descriptors only, besides 0-2
	# (where vigild -d logs): no file of the center's (the store, keys,
	# certificates).
	for l in /proc/"$1"/fd/*; do
		case "${l##*/}" in 0 | 1 | 2) continue ;; esac
		l=$(readlink "$l" || true)
		case "$l" in
		socket:* | pipe:* | anon_inode:* | /dev/null | "") ;;
		*) fail "syslog worker $1 holds $l" ;;
		esac
	done
}
wait_for 20 "the syslog worker" one_worker
W=$(sl_worker)
sandboxed "$W"
pass "the syslog worker ($W) runs as $RUN_AS without capabilities, NoNewPrivs, under seccomp, with no file"

# The core's syslog sockets: the two it bound (kept to restart the
# worker), and no connection of a sender.
core_tcp_conns() { established "$CENTER_PID" "$ST"; }

events() { api GET "/api/v1/events?agent=syslog:127.0.0.1&limit=1000&${1:-}"; }
count() { [ "$(events | grep -o '"seq":' | wc -l)" -ge "$1" ]; }
exec 7<>"/dev/tcp/127.0.0.1/$ST"
printf '<13>1 2026-12-08T01:00:00Z host tool - - - held open by the sender\n' >&7
logger --server 127.0.0.1 --port "$SU" --udp --rfc5424 -t scanner \
	--msgid FIND "udp before the kill"
wait_for 10 "two events" count 2
expect_contains "$(events "q=held%20open")" '"transport":"tcp"'
expect_contains "$(events "q=udp%20before")" '"msgid":"FIND"'
[ "$(established "$W" "$ST")" = 1 ] ||
	fail "the worker holds $(established "$W" "$ST") syslog connections, not the sender's one"
[ "$(core_tcp_conns)" = 0 ] || fail "the core holds $(core_tcp_conns) syslog connections"
pass "udp and tcp messages stored through the worker; the core holds no sender's connection"

# Whatever a sender puts in a message (NUL bytes, invalid UTF-8, control
# characters), the worker's batch is one the core takes: the worker lives on.
python3 - "$SU" "$ST" <<'PY'
import socket, sys
udp, tcp = int(sys.argv[1]), int(sys.argv[2])
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.sendto(b"<13>1 2026-12-08T01:00:00Z h nul - - - a\x00b\xff\x01c", ("127.0.0.1", udp))
u.sendto(b"<13>nul3164 a\x00b", ("127.0.0.1", udp))
s = socket.create_connection(("127.0.0.1", tcp))
s.sendall(b"<13>1 2026-12-08T01:00:00Z h nul - - - tcp\x00nul\n")
s.close()
PY
wait_for 10 "five events" count 5
[ "$(sl_worker)" = "$W" ] || fail "the syslog worker $W was replaced: $(tail -5 "$T/vigild.log")"
expect_contains "$(events "type=syslog&q=nul")" '"app_name":"nul"'
pass "NUL bytes, invalid UTF-8 and control characters in messages: stored, the worker lives on"

# --- kill -9: restarted, counted, the same sandbox, messages stored -------------
kill -9 "$W"
exec 7>&-
gone_and_back() { one_worker && [ "$(sl_worker)" != "$W" ]; }
wait_for 20 "a new syslog worker" gone_and_back
W2=$(sl_worker)
sandboxed "$W2"
m=$(api GET /metrics)
[ "$(metric_value "$m" vigil_syslog_worker_restarts_total)" = 1 ] ||
	fail "restarts: $(grep syslog_worker <<<"$m" || true)"
logger --server 127.0.0.1 --port "$SU" --udp --rfc3164 -t after "udp after the kill"
logger --server 127.0.0.1 --port "$ST" --tcp --octet-count --rfc5424 -t after \
	"tcp after the kill"
wait_for 10 "seven events" count 7
expect_contains "$(events "q=udp%20after")" '"app_name":"after"'
expect_contains "$(events "q=tcp%20after")" '"transport":"tcp"'
expect_contains "$(cat "$T/vigild.log")" "syslog worker 0 (pid $W) killed by signal 9; restarting it"
pass "kill -9: the syslog worker ($W2) is restarted, counted and sandboxed; udp and tcp stored again"

# A client holding connections open: 16 from one address at most (the
# 17th refused), and with all 256 taken (16 each from 16 addresses of
# 127.0.0.0/8) a new sender still gets in: the connection read from least
# recently makes room.
python3 - "$ST" "$T/held" <<'PY' &
import socket, sys, time
port, flag = int(sys.argv[1]), sys.argv[2]
held = []
for a in range(2, 18):
    for _ in range(16):
        s = socket.socket()
        s.bind(("127.0.0.%d" % a, 0))
        s.connect(("127.0.0.1", port))
        # a message without its line feed: cut short when closed
        s.sendall(b"<13>1 - h held - - - cut short by a new sender")
        held.append(s)
s = socket.socket()
s.bind(("127.0.0.2", 0))
s.connect(("127.0.0.1", port))
held.append(s)
open(flag, "w").close()
time.sleep(30)
PY
PIDS+=($!)
wait_for 20 "256 connections held" test -e "$T/held"
refused() { grep -qF "syslog: 16 connections from 127.0.0.2 open already; refusing another" "$T/vigild.log"; }
wait_for 10 "the 17th connection from one address refused" refused
python3 - "$ST" <<'PY'
import socket, sys
s = socket.socket()
s.bind(("127.0.0.99", 0))
s.connect(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"<13>1 - h newconn - - - a new sender, all 256 taken\n")
s.close()
PY
newcomer() { [ "$(api GET "/api/v1/events?agent=syslog:127.0.0.99" | grep -o '"seq":' | wc -l)" = 1 ]; }
wait_for 10 "the new sender's message" newcomer
expect_contains "$(cat "$T/vigild.log")" "syslog: 256 connections open; closing the one read from least recently"
# The closed connection's message, cut short, is kept raw with the reason.
cut=$(api GET "/api/v1/events?type=syslog_raw&q=cut%20short")
expect_contains "$cut" '"error":"connection closed for a new sender (all connections taken) inside a message"'
expect_contains "$cut" '"raw":"<13>1 - h held - - - cut short by a new sender"'
pass "connections held open: 16 an address, and a new sender gets in when all 256 are taken (the closed one's partial message kept raw)"

# SIGHUP: [syslog] changes only on restart (said so); the worker goes on
# with the settings it started with, and so does the core's check of what
# it sends.
sed -i 's/^tcp_port = 0$/tcp_port = 0\nmax_message = 480/' "$T/vigild.conf"
grep -q '^max_message = 480$' "$T/vigild.conf" || fail "config not changed"
kill -HUP "$CENTER_PID"
reloaded() { grep -qF "[syslog] changes only on restart" "$T/vigild.log"; }
wait_for 10 "the reload's warning" reloaded
# 8,000 bytes: more than the core would take from a worker with a
# max_message of 480 (6 * 480 + 4096), within the 64k it started with.
python3 - "$ST" <<'PY'
import socket, sys
body = b"<13>1 - h hup - - - " + b"long" * 2000
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(str(len(body)).encode() + b" " + body)
s.close()
PY
wait_for 10 "eight events" count 8
[ "$(sl_worker)" = "$W2" ] || fail "the syslog worker was replaced after SIGHUP"
expect_contains "$(events "q=longlong")" '"app_name":"hup"'
pass "SIGHUP: [syslog] kept until a restart, the worker lives on, an 8,000-byte message stored whole"

stop_center
expect_contains "$(cat "$T/vigild.log")" "stopped"
pass "the center stops with its syslog worker"
