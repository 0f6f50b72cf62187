#!/bin/bash
# Slow and idle clients cannot shut others out (issue 10).
#
# vigild's admin API: 256 TLS connections from 8 addresses (127.0.0.2-9,
# 32 each: the whole table of 256) send a header line a second and are
# reopened as soon as the server closes them, and 16 TCP connections from
# 127.0.0.10 never start TLS. While that runs, curl and vigilctl with the
# admin key from 127.0.0.1 are answered, again and again, until every
# slow connection has been closed by the server at least once (the total
# request_timeout, though each kept sending). Then the attack stops
# reopening and every slow and idle connection is closed. A 9th address
# opening 40 connections gets max_conns_per_addr (32) of them; the closes
# are counted in /metrics by reason.
#
# vigil-scand: 150 idle TCP connections on each listener (its limit is
# 128 per listener) from 5 addresses: GET /api/v1/status is answered on
# both, and every idle connection is closed by the deadlines.
#
# Waits have deadlines; nothing asserts a duration beyond "answered
# within N s".
. "$(dirname "$0")/lib.sh"

command -v python3 >/dev/null || skip "python3 is not installed"
command -v curl >/dev/null || skip "curl is not installed"
PKI=$T/pki
DATA=$T/data
make_pki "$PKI"
write_conf "$T/vigild.conf" "$PKI" "$DATA"
cat >>"$T/vigild.conf" <<EOC
handshake_timeout = 5s
request_timeout = 5s
max_conns_per_addr = 32
EOC
start_center "$T/vigild.conf" "$DATA"

# --- vigild admin API ----------------------------------------------------

cat >"$T/attack.py" <<'PY'
"""Holds slow TLS and idle TCP connections open against one port."""
import socket, ssl, subprocess, sys, threading, time

port, ca, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE


def tcp(src):
    return socket.create_connection(("127.0.0.1", port), timeout=10,
                                    source_address=(src, 0))


def tls(src):
    return ctx.wrap_socket(tcp(src), server_hostname="center.vigil.test")


def closed(s):
    """True once the server closed s (EOF or reset)."""
    s.setblocking(False)
    try:
        return s.recv(4096) == b""
    except (ssl.SSLWantReadError, BlockingIOError):
        return False
    except (OSError, ssl.SSLError):
        return True
    finally:
        s.setblocking(True)


def slow(src):
    s = tls(src)
    s.sendall(b"GET /api/v1/agents HTTP/1.1\r\nHost: x\r\n")
    return s


def wait_all_closed(conns, trickle, limit):
    """Trickles a header line a second on each until the server closed
    them all (deadline limit s); returns how many are still open."""
    left = set(range(len(conns)))
    end = time.time() + limit
    while left and time.time() < end:
        for i in list(left):
            if closed(conns[i]):
                left.discard(i)
            elif trickle:
                try:
                    conns[i].sendall(b"X-Slow: 1\r\n")
                except (OSError, ssl.SSLError):
                    left.discard(i)
        time.sleep(1)
    return len(left)


if mode == "admin":
    key, ctl = sys.argv[4], sys.argv[5]
    idle = [tcp("127.0.0.10") for _ in range(16)]
    srcs = ["127.0.0.%d" % (2 + i % 8) for i in range(256)]
    conns = [None] * 256
    for i in range(256):
        try:
            conns[i] = slow(srcs[i])
        except (OSError, ssl.SSLError) as e:
            print("slow connection %d: %r" % (i, e))
    print("opened %d slow connections" % sum(c is not None for c in conns))
    sys.stdout.flush()

    # The attack: a header line a second; a connection the server closed
    # is opened again at once. Counts the server's closes.
    stop = threading.Event()
    seen_closed = [0]
    was_closed = set()

    def attack():
        while not stop.is_set():
            for i in range(256):
                c = conns[i]
                if c is not None and not closed(c):
                    try:
                        c.sendall(b"X-Slow: 1\r\n")
                        continue
                    except (OSError, ssl.SSLError):
                        pass
                if c is not None:
                    c.close()
                    seen_closed[0] += 1
                    was_closed.add(i)
                try:
                    conns[i] = slow(srcs[i])
                except (OSError, ssl.SSLError):
                    conns[i] = None
            stop.wait(1)

    t = threading.Thread(target=attack)
    t.start()
    # Legitimate clients, one after the other, until each of the 256
    # slots has been closed by the server at least once (deadline 90 s).
    end = time.time() + 90
    rounds = ok = 0
    while len(was_closed) < 256 and time.time() < end:
        rounds += 1
        r = subprocess.run(
            ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
             "--max-time", "20", "--cacert", ca,
             "-H", "Authorization: Bearer " + key,
             "https://127.0.0.1:%d/api/v1/agents" % port],
            capture_output=True, text=True, timeout=30)
        v = subprocess.run([ctl, "--json", "agent", "list"],
                           capture_output=True, text=True, timeout=30)
        if r.stdout == "200" and v.returncode == 0:
            ok += 1
        else:
            print("round %d: curl %s %s; vigilctl rc %d %s" %
                  (rounds, r.stdout, r.stderr.strip(), v.returncode,
                   v.stderr.strip()))
    print("slots closed by the server: %d of 256 (%d closes)" %
          (len(was_closed), seen_closed[0]))
    print("legitimate rounds: %d, answered: %d" % (rounds, ok))
    stop.set()
    t.join()
    live = [c for c in conns if c is not None]
    print("slow still open: %d" % wait_all_closed(live, True, 30))
    print("idle still open: %d" % wait_all_closed(idle, False, 30))

elif mode == "peraddr":
    # 40 TCP connections from one address first, then a TLS handshake on
    # each: those past the limit were closed before it.
    raw = [tcp("127.0.0.11") for _ in range(40)]
    held = refused = 0
    for r in raw:
        try:
            ctx.wrap_socket(r, server_hostname="center.vigil.test")
            held += 1
        except (OSError, ssl.SSLError):
            refused += 1
    print("held %d, refused %d" % (held, refused))

elif mode == "idle":
    # Idle TCP connections from 5 addresses, then the status request.
    url = sys.argv[4]
    idle = [tcp("127.0.0.%d" % (2 + i % 5)) for i in range(150)]
    print("holding %d idle connections" % len(idle))
    r = subprocess.run(
        ["curl", "-sS", "-k", "-o", "/dev/null", "-w", "%{http_code}",
         "--max-time", "20", url], capture_output=True, text=True,
        timeout=30)
    print("status while held: %s %s" % (r.stdout, r.stderr.strip()))
    print("idle still open: %d" % wait_all_closed(idle, False, 30))
PY

out=$(python3 "$T/attack.py" "$ADM" "$PKI/ca.crt" admin "$VIGIL_API_KEY" \
	"$CTL" 2>&1)
echo "$out"
expect_contains "$out" "opened 256 slow connections"
expect_contains "$out" "slots closed by the server: 256 of 256"
rounds=$(sed -nE 's/^legitimate rounds: ([0-9]+), answered: ([0-9]+)$/\1 \2/p' \
	<<<"$out")
read -r n ok <<<"$rounds"
[ -n "$n" ] && [ "$n" -ge 1 ] && [ "$ok" = "$n" ] ||
	fail "a legitimate client was not answered during the attack"
expect_contains "$out" "slow still open: 0"
expect_contains "$out" "idle still open: 0"
pass "admin API answered through the attack; slow and idle clients closed"

m=$(api GET /metrics)
before=$(metric_value "$m" \
	'vigil_connections_closed_total{listener="admin",reason="per_addr_limit"}')
out=$(python3 "$T/attack.py" "$ADM" "$PKI/ca.crt" peraddr 2>&1)
echo "$out"
expect_contains "$out" "held 32, refused 8"
# (at least: a close of the phase before may reach the core's count after
# 'before' was read; the client's own tally above is exact)
wait_for 10 "8 more per_addr_limit closes counted" metric_at_least \
	'vigil_connections_closed_total{listener="admin",reason="per_addr_limit"}' \
	$((${before:-0} + 8))
m=$(api GET /metrics)
for why in request_timeout evicted; do
	v=$(metric_value "$m" \
		"vigil_connections_closed_total{listener=\"admin\",reason=\"$why\"}")
	[ -n "$v" ] && [ "$v" -gt 0 ] || fail "no $why closes counted: '$v'"
done
pass "per-address limit; closes counted by reason"

# --- vigil-scand ------------------------------------------------------------

SD=$T/scand
cat >"$T/scand.conf" <<EOC
[scand]
data_dir = $SD
rules = $SRC/tests/data/scan/markers.yar
threads = 2
sync_threads = 1
handshake_timeout = 3s
request_timeout = 3s
[http]
listen = 127.0.0.1
port = 0
[https]
enable = yes
listen = 127.0.0.1
port = 0
cert = $PKI/server.crt
key = $PKI/server.key
EOC
"$BIN/vigil-scand" -d -c "$T/scand.conf" >>"$T/scand.log" 2>&1 &
SCAND_PID=$!
PIDS+=("$SCAND_PID")
scand_up() {
	kill -0 "$SCAND_PID" 2>/dev/null ||
		fail "vigil-scand exited at start: $(tail -5 "$T/scand.log")"
	[ -s "$SD/vigil-scand.ports" ]
}
wait_for 10 "vigil-scand to start" scand_up
HP=$(sed -E 's/.*"http": ([0-9]+).*/\1/' "$SD/vigil-scand.ports")
SP=$(sed -E 's/.*"https": ([0-9]+).*/\1/' "$SD/vigil-scand.ports")

out=$(python3 "$T/attack.py" "$HP" "$PKI/ca.crt" idle \
	"http://127.0.0.1:$HP/api/v1/status" 2>&1)
echo "$out"
expect_contains "$out" "holding 150 idle connections"
expect_contains "$out" "status while held: 200"
expect_contains "$out" "idle still open: 0"
out=$(python3 "$T/attack.py" "$SP" "$PKI/ca.crt" idle \
	"https://127.0.0.1:$SP/api/v1/status" 2>&1)
echo "$out"
expect_contains "$out" "holding 150 idle connections"
expect_contains "$out" "status while held: 200"
expect_contains "$out" "idle still open: 0"
pass "vigil-scand status answered with 150 idle connections on each listener"
