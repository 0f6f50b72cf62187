#!/bin/bash
# A slow receiver delays delivery and loses nothing: a TCP receiver (a
# small Python program reading RFC 6587 octet-counted frames) with a tiny
# receive buffer reads nothing until the test has seen the backlog, then
# reads slowly; 15,000
# events (about 5 MB, more than the socket buffers hold) all arrive, in
# order, once, while the center's lag shows the backlog.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/rsyslog.inc"

standard_center
enroll_agent
N=15000
python3 - "$T/recv" "$N" >"$T/receiver.log" 2>&1 <<'PY' &
import os, re, socket, sys, time
out, n = sys.argv[1], int(sys.argv[2])
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
ls.bind(("127.0.0.1", 0))
ls.listen(1)
open(out + ".port", "w").write(str(ls.getsockname()[1]))
c, _ = ls.accept()
# Not reading at all until the test has seen the backlog ($T/recv.go).
end = time.time() + 120
while not os.path.exists(out + ".go") and time.time() < end:
    time.sleep(0.05)
buf, seqs, deadline = b"", [], time.time() + 60
with open(out, "w") as f:
    while len(seqs) < n and time.time() < deadline:
        d = c.recv(16384)
        if not d:
            break
        buf += d
        while True:
            sp = buf.find(b" ")
            if sp < 0:
                break
            ln = int(buf[:sp])
            if len(buf) < sp + 1 + ln:
                break
            m = buf[sp + 1:sp + 1 + ln].decode()
            buf = buf[sp + 1 + ln:]
            seqs.append(int(re.search(r' seq="(\d+)"', m).group(1)))
            f.write("%d\n" % seqs[-1])
        f.flush()
        time.sleep(0.005)           # slow
PY
PIDS+=($!)
for i in $(seq 1 100); do [ -s "$T/recv.port" ] && break; sleep 0.1; done
"$CTL" forward add slow --transport tcp --host 127.0.0.1 \
	--port "$(cat "$T/recv.port")" --type finding >/dev/null ||
	fail "add target" # findings only: audit entries are events too
for b in $(seq 0 14); do
	out=$(post_events "$(events_range $((b * 1000 + 1)) $((b * 1000 + 1000)))")
	expect_contains "$out" '"stored":1000'
done
lag=$(api GET /api/v1/forward | sed -nE 's/.*"lag_events":([0-9]+).*/\1/p')
[ "$lag" -gt 0 ] || fail "no lag while the receiver does not read: $lag"
echo "lag while the receiver is not reading: $lag events"
touch "$T/recv.go" # the receiver starts reading, slowly
wait_lines "$T/recv" "$N"
[ "$(cat "$T/recv")" = "$(seq 1 $N)" ] || fail "received out of order or twice"
for i in $(seq 1 50); do
	lag=$(api GET /api/v1/forward | sed -nE 's/.*"lag_events":([0-9]+).*/\1/p')
	[ "$lag" = 0 ] && break
	sleep 0.1
done
[ "$lag" = 0 ] || fail "lag after delivery: $lag"
pass "slow receiver: $N events, in order, once; lag back to 0"
