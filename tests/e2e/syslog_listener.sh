#!/bin/bash
# The center's syslog listener: messages sent with logger(1) over UDP and
# TCP (newline and octet-counted framing), RFC 5424 with structured data
# and RFC 3164, become events searchable through the events API and are
# forwarded to a real rsyslogd like any other event; malformed messages and
# unframeable streams are kept as raw events and counted, never dropped;
# a real rsyslogd relays into the listener with omfwd (tcp and udp).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/rsyslog.inc"

# VIGIL_SYSLOG_WORKER=0 (CTest's PostgreSQL pass): the listener in vigild
# itself; else the default, the syslog worker (e2e/syslog_worker).
standard_center "[syslog]" "enable = yes" "listen = 127.0.0.1" \
	"udp_port = 0" "tcp_port = 0" \
	${VIGIL_SYSLOG_WORKER:+"worker = $VIGIL_SYSLOG_WORKER"}
if [ "${VIGIL_SYSLOG_WORKER:-1}" = 0 ]; then
	! grep -qF "(in the syslog worker)" "$T/vigild.log" ||
		fail "[syslog] worker = 0, yet a syslog worker"
else
	expect_contains "$(cat "$T/vigild.log")" "(in the syslog worker)"
fi
SU=$(sed -E 's/.*"syslog_udp": ([0-9]+).*/\1/' "$DATA/vigild.ports")
ST=$(sed -E 's/.*"syslog_tcp": ([0-9]+).*/\1/' "$DATA/vigild.ports")
[ "$SU" -gt 0 ] && [ "$ST" -gt 0 ] || fail "listener ports: $(cat "$DATA/vigild.ports")"

RS=$T/rs
rs_start "$RS" "module(load=\"imtcp\")
input(type=\"imtcp\" port=\"0\" address=\"127.0.0.1\" listenPortFileName=\"$RS/p\" ruleset=\"r\")
ruleset(name=\"r\") { action(type=\"omfile\" file=\"$RS/out\" template=\"fields\") }"
"$CTL" forward add siem --transport tcp --host 127.0.0.1 --port "$(cat "$RS/p")" \
	--type syslog --type syslog_raw >/dev/null || fail "add target"

events() { api GET "/api/v1/events?agent=syslog:127.0.0.1&limit=1000&${1:-}"; }
wait_events() { # wait_events N: N events from the listener
	local i
	for i in $(seq 1 100); do
		[ "$(events | grep -o '"seq":' | wc -l)" -ge "$1" ] && return 0
		sleep 0.1
	done
	fail "expected $1 syslog events: $(events)"
}

logger --server 127.0.0.1 --port "$SU" --udp --rfc5424 -t scanner \
	--msgid FIND --sd-id 'hit@32473' --sd-param 'file="/tmp/x \"y\" \]z"' \
	--sd-param 'rule="EICAR"' "udp five four two four"
logger --server 127.0.0.1 --port "$ST" --tcp --rfc3164 -t tool -p auth.err \
	"tcp three one six four"
logger --server 127.0.0.1 --port "$ST" --tcp --octet-count --rfc5424 \
	-t counted -p local3.warning "octet counted message"
wait_events 3

e=$(events "q=five%20four")
expect_contains "$e" '"type":"syslog"'
expect_contains "$e" '"format":"rfc5424"'
expect_contains "$e" '"app_name":"scanner"'
expect_contains "$e" '"msgid":"FIND"'
expect_contains "$e" '"hit@32473":{"file":"/tmp/x \"y\" ]z","rule":"EICAR"}'
expect_contains "$e" '"message":"udp five four two four"'
expect_contains "$e" '"transport":"udp"'
e=$(events "q=three%20one")
expect_contains "$e" '"format":"rfc3164"'
expect_contains "$e" '"app_name":"tool"'
expect_contains "$e" '"severity":3'
expect_contains "$e" '"level":"warning"'
expect_contains "$e" '"message":"tcp three one six four"'
expect_contains "$(events "q=octet%20counted")" '"app_name":"counted"'
pass "udp and tcp, rfc5424 (with structured data) and rfc3164, octet-counted and newline: events"

# Malformed: no PRI, a broken header; then a stream that cannot be framed.
printf 'no pri at all\n<13>1 yesterday h a - - - x\n' >"$T/bad.txt"
python3 - "$ST" "$SU" "$T/bad.txt" <<'PY'
import socket, sys
tcp, udp, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
s = socket.create_connection(("127.0.0.1", tcp))
s.sendall(open(path, "rb").read())
s.close()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.sendto(b"<999>bad pri \xff\xfe", ("127.0.0.1", udp))
s = socket.create_connection(("127.0.0.1", tcp))
s.sendall(b"12x this is not an octet count")
s.close()
PY
wait_events 7
raw=$(events "type=syslog_raw")
[ "$(grep -o '"seq":' <<<"$raw" | wc -l)" = 4 ] || fail "raw events: $raw"
expect_contains "$raw" '"raw":"no pri at all"'
expect_contains "$raw" '"error":"no PRI'
expect_contains "$raw" '"raw":"<13>1 yesterday h a - - - x"'
expect_contains "$raw" '"error":"timestamp: not an RFC 5424 timestamp"'
expect_contains "$raw" '"error":"bad PRI'
expect_contains "$raw" "\"raw\":\"<999>bad pri $(printf '\xef\xbf\xbd\xef\xbf\xbd')\""
expect_contains "$raw" '"raw":"12x this is not an octet count"'
expect_contains "$raw" 'cannot frame the stream'
m=$(curl -sS --cacert "$PKI/ca.crt" "https://127.0.0.1:$ADM/metrics" -H "Authorization: Bearer $VIGIL_API_KEY")
expect_contains "$m" 'vigil_syslog_messages_total{transport="tcp",result="malformed"} 3'
expect_contains "$m" 'vigil_syslog_messages_total{transport="udp",result="malformed"} 1'
expect_contains "$m" 'vigil_syslog_messages_total{transport="udp",result="parsed"} 1'
pass "malformed messages kept raw and counted"

# A real rsyslogd relaying to the listener: omfwd over TCP with octet
# counting (RFC 5424) and over UDP (its traditional format, RFC 3164).
RR=$T/relay
rs_start "$RR" "module(load=\"imtcp\")
input(type=\"imtcp\" port=\"0\" address=\"127.0.0.1\" listenPortFileName=\"$RR/p\")
action(type=\"omfwd\" target=\"127.0.0.1\" port=\"$ST\" protocol=\"tcp\" TCP_Framing=\"octet-counted\" template=\"RSYSLOG_SyslogProtocol23Format\")
action(type=\"omfwd\" target=\"127.0.0.1\" port=\"$SU\" protocol=\"udp\" template=\"RSYSLOG_ForwardFormat\")"
logger --server 127.0.0.1 --port "$(cat "$RR/p")" --tcp --rfc5424 -t relayed \
	--msgid RLY -p daemon.notice "relayed by rsyslog"
wait_events 9
e=$(events "q=relayed%20by")
[ "$(grep -o '"seq":' <<<"$e" | wc -l)" = 2 ] || fail "relayed: $e"
expect_contains "$e" '"format":"rfc5424"'
expect_contains "$e" '"msgid":"RLY"'
expect_contains "$e" '"format":"rfc3164"'
expect_contains "$e" '"app_name":"relayed"'
expect_contains "$e" '"level":"notice"'
pass "rsyslog omfwd (tcp octet-counted rfc5424, udp rfc3164) into the listener"

# Forwarded like any other event, in order.
wait_lines "$RS/out" 9
expect_contains "$(sed -n 1p "$RS/out")" "|vigil|-|syslog|"
expect_contains "$(sed -n 1p "$RS/out")" 'udp five four two four'
# HOSTNAME is the sender's address.
expect_contains "$(sed -n 1p "$RS/out")" "127.0.0.1|vigil|-|syslog|"
expect_contains "$(sed -n 4p "$RS/out")" "|vigil|-|syslog_raw|"
seqs=$(sed -nE 's/.* seq="([0-9]+)".*/\1/p' "$RS/out" | tr '\n' ' ')
[ "$seqs" = "1 2 3 4 5 6 7 8 9 " ] || fail "forwarded: $seqs"
pass "received syslog forwarded to the SIEM"

# Messages at max_message (64k), their structured data and text all
# control characters: each event stays about three times the message
# (U+FFFD; it was six, \u0001 each), and the events list pages them
# within what the admin API answers (it answered 500: a page over the
# admin worker's channel limit). Every event comes once, following
# next_cursor.
python3 - "$ST" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
for i in range(40):
    body = b'<13>1 - h big - - [a b="' + b"\x01" * 40000 + b'"] ' + b"\x02" * 25000
    body = body[:65536]
    s.sendall(str(len(body)).encode() + b" " + body)
s.close()
PY
# list_all: pages through the listener's events (limit 1000); sets n
# (events) and pages; fails on any answer but 200.
list_all() {
	local cur="" code
	n=0
	pages=0
	while :; do
		code=$(api GET "/api/v1/events?agent=syslog:127.0.0.1&limit=1000${cur:+&cursor=$cur}" \
			-o "$T/page" -w '%{http_code}')
		[ "$code" = 200 ] || fail "events list: $code $(head -c 300 "$T/page")"
		n=$((n + $(grep -o '"seq":' "$T/page" | wc -l)))
		pages=$((pages + 1))
		cur=$(grep -oE '"next_cursor": *"[^"]+"' "$T/page" | sed -E 's/.*"([^"]+)"$/\1/' || true)
		[ -n "$cur" ] || break
		[ "$pages" -lt 50 ] || fail "more than 50 pages"
	done
}
all_listed() { list_all; [ "$n" -ge 49 ]; }
wait_for 20 "49 events listed" all_listed
[ "$n" = 49 ] || fail "listed $n events of 49 in $pages pages"
[ "$pages" -gt 1 ] || fail "49 events of about 190 KB in one page"
big=$(api GET "/api/v1/events?agent=syslog:127.0.0.1&q=big&limit=1" | wc -c)
[ "$big" -lt 250000 ] || fail "one event of a 64k message takes $big bytes"
pass "64k messages of control characters: events of ${big} bytes, listed whole in $pages pages"
