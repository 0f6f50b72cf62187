#!/bin/bash
# `vigild -n` on the configuration of a running center: its own ports are
# held by that center, which is the usual "check, then reload" and must
# pass (saying so); a port held by another program still fails, and a
# second vigild on the same data directory names the running one; a
# stopping center removes only its own vigild.ports. The
# default connection limit fits the descriptor limit found, without a
# warning; asking for more than the limit allows warns.
. "$(dirname "$0")/lib.sh"

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

PKI=$T/pki
DATA=$T/data
make_pki "$PKI"
GW_PORT=$(free_port) ADM_PORT=$(free_port) write_conf "$T/vigild.conf" "$PKI" "$DATA"
start_center "$T/vigild.conf" "$DATA"

rc=0
out=$("$VIGILD" -n -c "$T/vigild.conf" 2>&1) || rc=$?
echo "$out"
[ "$rc" -eq 0 ] || fail "vigild -n failed on the running center's own configuration"
expect_contains "$out" "configuration OK"
expect_contains "$out" "[gateway] 127.0.0.1:$GW: held by the running vigild (pid $CENTER_PID) of this configuration"
expect_contains "$out" "[admin] 127.0.0.1:$ADM: held by the running vigild (pid $CENTER_PID)"
[ -s "$DATA/vigild.ports" ] || fail "vigild -n removed the running center's vigild.ports"
pass "vigild -n passes on the ports of its own running center, and says so"

# The check-then-reload idiom works.
"$VIGILD" -n -c "$T/vigild.conf" >/dev/null 2>&1 && kill -HUP "$CENTER_PID"
kill -0 "$CENTER_PID" || fail "the center died on reload"
curl -sS -o /dev/null --cacert "$PKI/ca.crt" "https://127.0.0.1:$GW/v1/ping" ||
	fail "the center does not answer after reload"
pass "vigild -n && kill -HUP"

rc=0
out=$("$VIGILD" -d -c "$T/vigild.conf" 2>&1) || rc=$?
echo "$out"
[ "$rc" -ne 0 ] || fail "a second vigild started on the same data directory"
expect_contains "$out" "already running with this data directory (pid $CENTER_PID)"
kill -0 "$CENTER_PID" || fail "the running center died"
pass "a second vigild names the running one"

# Another program's port: still an error, with the usual advice.
python3 -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
print(s.getsockname()[1], flush=True)
sys.stdin.read()
' >"$T/holder.port" < <(while kill -0 $$ 2>/dev/null; do sleep 1; done) &
PIDS+=($!)
for _ in $(seq 1 100); do [ -s "$T/holder.port" ] && break; sleep 0.05; done
HELD=$(cat "$T/holder.port")
[ -n "$HELD" ] || fail "no port from the holder"
sed "0,/^port = .*/s//port = $HELD/" "$T/vigild.conf" >"$T/other.conf"
out=$("$VIGILD" -n -c "$T/other.conf" 2>&1) && fail "a port held by another program passed"
expect_contains "$out" "127.0.0.1:$HELD: cannot bind"
expect_contains "$out" "another program has this port"
pass "a port held by another program still fails the check"

# A center that stops after another one started on the same data
# directory (scripts/demo started again while the old center drains) leaves
# the newer center's vigild.ports alone.
sed -E "s/\"pid\": [0-9]+/\"pid\": $$/" "$DATA/vigild.ports" >"$T/ports.other"
cp "$T/ports.other" "$DATA/vigild.ports"
stop_center
cmp -s "$T/ports.other" "$DATA/vigild.ports" ||
	fail "the stopping center removed or changed another vigild's vigild.ports"
pass "a stopping center leaves a vigild.ports that is not its own"

# Descriptor limit: the default fits whatever limit is found.
hard=$(ulimit -Hn)
[ "$hard" != unlimited ] || exit 77
out=$("$VIGILD" -n -v -c "$T/vigild.conf" 2>&1) || fail "check failed: $out"
if grep -q 'file descriptor limit' <<<"$out"; then
	echo "$out"
	fail "the default configuration warns about the descriptor limit"
fi
# Kept back: 100 for the center itself, 256 for the admin API and 256 for
# its live update streams ([admin] max_streams default).
expect_contains "$out" "gateway connection limit $((hard - 612)) (descriptor limit $hard less 612)"
pass "default max_conns fits the descriptor limit ($((hard - 612))), no warning"

sed "0,/^\[gateway\]/s//[gateway]\nmax_conns = $((hard + 5000))/" "$T/vigild.conf" >"$T/big.conf"
out=$("$VIGILD" -n -c "$T/big.conf" 2>&1) || true
expect_contains "$out" "max_conns = $((hard + 5000)) is more than the file descriptor limit ($hard) allows"
pass "asking for more than the limit allows warns"
