#!/bin/bash
# A graceful stop does not wait for agents: a task poll held when the stop
# begins, and one that arrives while the center stops, are answered at
# once (503 shutting_down, Retry-After, Connection: close), not held for
# their wait until the stop's grace cuts the connection with no answer; an
# idle keep-alive connection is closed; new connections are refused; the
# stop ends when the connections are gone.
. "$(dirname "$0")/lib.sh"

standard_center
TOKEN=$(new_token)
export VIGIL_MACHINE_ID_FILE
VIGIL_MACHINE_ID_FILE=$(machine_id p1)
"$AGENT" enroll --server "https://127.0.0.1:$GW" --token "$TOKEN" \
	--ca "$PKI/ca.crt" --data-dir "$T/a" >"$T/enroll.log" 2>&1 ||
	fail "enroll: $(cat "$T/enroll.log")"

# Three connections with the agent's certificate: "idle" has had a request
# answered and waits; "poll" has sent the first part of a long poll
# (wait=20, longer than the stop's 5 s grace) and sends the rest once the
# center is stopping; "held" has sent a whole long poll before the stop,
# which the center holds. Each prints what it received until the center
# closed it.
cat >"$T/client.py" <<'EOF'
import os, socket, ssl, sys, time
d, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ctx = ssl.create_default_context(cafile=os.environ["CA"])
ctx.check_hostname = False
ctx.load_cert_chain(d + "/agent.crt", d + "/agent.key")
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)))
s.settimeout(30)
got = b""
if mode == "idle":
    s.sendall(b"GET /v1/ping HTTP/1.1\r\nHost: x\r\n\r\n")
    while b'"vigild"' not in got:
        got += s.recv(65536)
    got = b""
elif mode == "held":
    s.sendall(b"GET /v1/tasks?wait=20 HTTP/1.1\r\nHost: x\r\n\r\n")
else:
    s.sendall(b"GET /v1/tasks?wait=20 HTTP/1.1\r\nHost: x\r\n")
open(os.environ["T"] + "/ready-" + mode, "w").close()
if mode == "poll":
    end = time.time() + 30
    while not os.path.exists(os.environ["T"] + "/go") and time.time() < end:
        time.sleep(0.05)
    s.sendall(b"\r\n")
try:
    while True:
        b = s.recv(65536)
        if not b:
            break
        got += b
except (ssl.SSLError, OSError) as e:
    got += ("\n[error: %s]" % e).encode()
sys.stdout.write(got.decode(errors="replace") + "\n[closed]\n")
EOF
export CA=$PKI/ca.crt T
python3 "$T/client.py" "$T/a" "$GW" idle >"$T/idle.out" 2>&1 &
PIDS+=("$!")
python3 "$T/client.py" "$T/a" "$GW" poll >"$T/poll.out" 2>&1 &
PIDS+=("$!")
python3 "$T/client.py" "$T/a" "$GW" held >"$T/held.out" 2>&1 &
PIDS+=("$!")
ready() {
	[ -e "$T/ready-idle" ] && [ -e "$T/ready-poll" ] &&
		[ -e "$T/ready-held" ]
}
wait_for 20 "the three connections" ready
# The poll's first line must be read by the center before it stops, and
# the held poll be held.
three_conns() {
	api GET /metrics >"$T/m.txt" &&
		grep -q '^vigil_connections{listener="gateway"} 3$' "$T/m.txt" &&
		grep -q '^vigil_long_polls 1$' "$T/m.txt"
}
wait_for 10 "three gateway connections, one poll held" three_conns

kill -TERM "$CENTER_PID"
stopping() { grep -q "shutting down" "$T/vigild.log"; }
wait_for 10 "the center to begin its stop" stopping
# While it stops (the poll's connection holds the stop open), a new
# connection is refused at once, to the gateway and to the admin API:
# with workers it used to be queued on the core's copy of a listening
# socket that nobody would accept from again, and the client waited
# until the center had exited.
refused_while_stopping() {
	! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null &&
		! grep -q "every connection closed\|grace of" "$T/vigild.log"
}
wait_for 4 "new gateway connections refused during the stop" refused_while_stopping "$GW"
wait_for 4 "new admin connections refused during the stop" refused_while_stopping "$ADM"
pass "new connections refused while the center stops"
touch "$T/go"
closed() { grep -q '\[closed\]' "$1"; }
# expect_shutting_down FILE: what a client printed holds the stop's 503.
expect_shutting_down() {
	local out
	out=$(cat "$1")
	expect_contains "$out" "HTTP/1.1 503"
	expect_contains "$out" '"code":"shutting_down"'
	expect_contains "$out" "Retry-After: 5"
	expect_contains "$out" "Connection: close"
}
wait_for 30 "the poll's answer" closed "$T/poll.out"
expect_shutting_down "$T/poll.out"
pass "a poll sent while the center stops: 503 shutting_down, then closed"

wait_for 10 "the idle connection to be closed" closed "$T/idle.out"
[ "$(grep -v '^\[closed\]$' "$T/idle.out" | tr -d '\n')" = "" ] ||
	fail "the idle connection received: $(cat "$T/idle.out")"
pass "an idle keep-alive connection closed by the stop, nothing sent on it"

# A poll held when the stop began: its 503 closes the connection as well
# (with gateway workers it used to keep it open, and the stop waited its
# whole grace for the agent to leave).
wait_for 10 "the held poll's answer" closed "$T/held.out"
expect_shutting_down "$T/held.out"
pass "a poll held when the stop began: 503 shutting_down, then closed"

wait "$CENTER_PID" || true
grep -q "vigild: signal 15: shutting down" "$T/vigild.log" ||
	fail "no stop in the log"
# The stop ended because the connections were gone, not by its grace.
grep -q "vigild: every connection closed" "$T/vigild.log" ||
	fail "the stop did not end with its connections: $(grep -i 'grace\|connection' "$T/vigild.log" | tail -3)"
pass "the center stopped once every connection was closed"
