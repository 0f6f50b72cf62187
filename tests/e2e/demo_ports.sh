#!/bin/bash
# scripts/demo started again with other ports: the demo agent follows the
# center (vigil-agent set-server) and is online at the new gateway port.
# set-server verifies the new address before saving it: another
# deployment's center, or nothing at all, leaves the agent as it was.
. "$(dirname "$0")/lib.sh"

# A free port below the kernel's ephemeral range: a port picked with
# bind(0) comes from that range, where any outgoing connection of the
# other tests running meanwhile may take it before the demo binds it.
free_port() {
	python3 - <<'PY'
import random, socket
lo = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
for _ in range(200):
    p = random.randrange(10000, max(lo, 10001))
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        continue
    finally:
        s.close()
    print(p)
    break
PY
}

D=$T/demo
demo() {
	VIGIL_DEMO_DIR=$D VIGIL_DEMO_GW=$1 VIGIL_DEMO_ADMIN=$2 \
		bash "$SRC/scripts/demo" "${@:3}" >>"$T/demo.log" 2>&1 ||
		fail "scripts/demo $*: $(tail -20 "$T/demo.log")"
}
at_exit 'VIGIL_DEMO_DIR=$D bash "$SRC/scripts/demo" stop'

# online AGENT_DIR ADMIN_PORT: the demo agent is listed online (deadline).
online() {
	local i
	for i in $(seq 1 150); do
		if VIGIL_SERVER=https://127.0.0.1:$2 VIGIL_CA=$D/pki/ca.crt \
			"$CTL" --key-file "$D/data/admin.key" agent list 2>/dev/null |
			grep -q online; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}

G1=$(free_port) A1=$(free_port)
demo "$G1" "$A1"
online "$D/agent" "$A1" || fail "demo agent not online on the first ports"
id=$(sed -nE 's/.*"agent_id": "([^"]+)".*/\1/p' "$D/agent/state.json")
pass "demo on $G1/$A1, agent $id online"

G2=$(free_port) A2=$(free_port)
demo "$G2" "$A2"
grep -q "\"server\": \"https://127.0.0.1:$G2\"" "$D/agent/state.json" ||
	fail "the agent still points at $(sed -nE 's/.*"server": "([^"]+)".*/\1/p' "$D/agent/state.json")"
online "$D/agent" "$A2" || fail "demo agent not online after the ports changed"
id2=$(sed -nE 's/.*"agent_id": "([^"]+)".*/\1/p' "$D/agent/state.json")
[ "$id" = "$id2" ] || fail "the agent re-enrolled ($id -> $id2) instead of following"
pass "started again on $G2/$A2: the same agent follows and is online"

# set-server refuses what it cannot verify and changes nothing.
cp "$D/agent/state.json" "$T/state.before"
out=$("$AGENT" set-server --server "https://127.0.0.1:$(free_port)" \
	--data-dir "$D/agent" 2>&1) && fail "set-server accepted a dead address"
echo "$out"
expect_contains "$out" "the agent keeps https://127.0.0.1:$G2"
cmp -s "$D/agent/state.json" "$T/state.before" || fail "state changed after a refused set-server"

PKI=$T/pki
make_pki "$PKI"
write_conf "$T/other.conf" "$PKI" "$T/other"
start_center "$T/other.conf" "$T/other"
out=$("$AGENT" set-server --server "https://127.0.0.1:$GW" \
	--data-dir "$D/agent" 2>&1) && fail "set-server accepted another deployment's center"
echo "$out"
expect_contains "$out" "the agent keeps https://127.0.0.1:$G2"
cmp -s "$D/agent/state.json" "$T/state.before" || fail "state changed after a refused set-server"
pass "set-server refuses a dead address and a foreign center, state unchanged"
