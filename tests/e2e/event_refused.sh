#!/bin/bash
# An event the center refuses for good (here: a field an older center does
# not know, and data over the 64 KiB limit) must not hold back the agent's
# spool. The agent sets it aside in <data dir>/refused/<seq>.json, sends a
# "refused" event with the center's reason under the same seq instead, and
# every other event, before and after it, is stored exactly once.
# The events are written into the spool as segment records in the
# documented format (docs/spool.md), as a newer agent would have spooled
# them, while the agent is stopped.
. "$(dirname "$0")/lib.sh"

standard_center "poll_interval = 2s"
TOKEN=$(new_token)
export VIGIL_MACHINE_ID_FILE
VIGIL_MACHINE_ID_FILE=$(machine_id r1)
"$AGENT" enroll --server "https://127.0.0.1:$GW" --token "$TOKEN" \
	--ca "$PKI/ca.crt" --data-dir "$T/a" >/dev/null 2>&1 || fail enroll
AID=$("$CTL" --json agent list | sed -nE 's/.*"id": "([0-9a-f-]{36})".*/\1/p' | head -1)
[ -n "$AID" ] || fail "no agent id"

start_agent() {
	"$AGENT" run --data-dir "$T/a" >>"$T/agent.log" 2>&1 &
	APID=$!
	PIDS+=("$APID")
}
stop_agent() {
	kill -TERM "$APID"
	wait "$APID" || true
}

# The agent runs once, so its spool exists (an idle agent spools nothing:
# the next seq is 1 unless the state file says otherwise).
start_agent
wait_for 60 "the agent's spool" test -d "$T/a/spool"
stop_agent
N=1
if [ -f "$T/a/spool/spool.state" ]; then
	N=$(sed -nE 's/.*"next_seq": ?([0-9]+).*/\1/p' "$T/a/spool/spool.state")
fi
[ -n "$N" ] || fail "no next_seq in spool.state"

# Five events from seq N: good, unknown field, good, 70 KB of data, good.
python3 - "$T/a/spool" "$N" "$T/originals" <<'PY'
import json, os, struct, sys, time

def crc32c(b):
    crc = 0xFFFFFFFF
    for x in b:
        crc ^= x
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF

d, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
now = int(time.time())
events = [
    {"time": now, "type": "refusal_before", "data": {"i": 1}},
    {"time": now, "type": "probe", "data": {}, "colour": "blue"},
    {"time": now, "type": "refusal_middle", "data": {"i": 2}},
    {"time": now, "type": "bulky", "data": {"blob": "x" * 70000}},
    {"time": now, "type": "refusal_after", "data": {"i": 3}},
]
os.makedirs(out, exist_ok=True)
seg = b""
for i, e in enumerate(events):
    p = json.dumps(e, separators=(",", ":")).encode()
    with open(os.path.join(out, str(n + i)), "wb") as f:
        f.write(p)
    h = b"\xd5VSR" + struct.pack("<BBHIQI", 1, 1, 0, len(p), n + i, crc32c(p))
    seg += h + struct.pack("<I", crc32c(h)) + p
path = os.path.join(d, "seg-%020d.log" % n)
with open(path, "wb") as f:
    f.write(seg)
os.chmod(path, 0o600)
PY

start_agent
last_stored() { [ "$(db "SELECT COUNT(*) FROM events WHERE agent_id = '$AID' AND seq = $((N + 4))")" = 1 ]; }
wait_for 60 "the event after the refused ones (seq $((N + 4)))" last_stored

row() { db "SELECT type, level FROM events WHERE agent_id = '$AID' AND seq = $1"; }
[ "$(row "$N")" = "refusal_before|" ] || fail "seq $N: $(row "$N")"
[ "$(row $((N + 2)))" = "refusal_middle|" ] || fail "seq $((N + 2)): $(row $((N + 2)))"
[ "$(row $((N + 4)))" = "refusal_after|" ] || fail "seq $((N + 4)): $(row $((N + 4)))"
for s in $((N + 1)) $((N + 3)); do
	[ "$(row "$s")" = "refused|warning" ] || fail "seq $s stored as '$(row "$s")', not as a refused event"
done
d1=$(db "SELECT data FROM events WHERE agent_id = '$AID' AND seq = $((N + 1))")
echo "seq $((N + 1)): $d1"
expect_contains "$d1" "colour: unknown field"
expect_contains "$d1" '"type":"probe"'
expect_contains "$d1" "\"kept\":\"refused/$(printf %020d $((N + 1))).json\""
d3=$(db "SELECT data FROM events WHERE agent_id = '$AID' AND seq = $((N + 3))")
echo "seq $((N + 3)): $d3"
expect_contains "$d3" "larger than 65536 bytes"
expect_contains "$d3" '"type":"bulky"'
pass "refused events are stored as 'refused' with the center's reason; the others as they were"

for s in $((N + 1)) $((N + 3)); do
	f=$T/a/refused/$(printf %020d "$s").json
	cmp -s "$f" "$T/originals/$s" || fail "$f does not hold the original event"
	[ "$(stat -c %a "$f")" = 600 ] || fail "$f mode $(stat -c %a "$f")"
done
pass "the originals are kept in the agent's refused/ directory (0600)"

c=$(db "SELECT COUNT(*), COUNT(DISTINCT seq), MIN(seq), MAX(seq) FROM events WHERE agent_id = '$AID'")
IFS='|' read -r cnt dis mn mx <<<"$c"
[ "$cnt" = "$dis" ] && [ "$mn" = 1 ] && [ "$cnt" = "$mx" ] ||
	fail "events count|distinct|min|max = $c: lost or duplicated"
n1=$(grep -c "event $((N + 1)) (probe" "$T/agent.log" || true)
n3=$(grep -c "event $((N + 3)) (bulky" "$T/agent.log" || true)
[ "$n1" = 1 ] && [ "$n3" = 1 ] || fail "refusals logged $n1 and $n3 times, not once each"
stop_agent
acked=$(sed -nE 's/.*"acked": ?([0-9]+).*/\1/p' "$T/a/spool/spool.state")
[ "$acked" -ge $((N + 4)) ] || fail "spool acked $acked < $((N + 4))"
pass "every event stored once (seq 1..$mx), each refusal logged once, spool acknowledged to $acked"
