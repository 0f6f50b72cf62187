#!/bin/bash
# Two vigild nodes on one PostgreSQL 15 (docs/scale-out.md): both appear in
# GET /api/v1/nodes and vigilctl nodes; a login session made on one works
# on the other, and login attempts are counted across both; a task created
# through node A
# reaches an agent whose long poll node B holds at once (LISTEN/NOTIFY,
# measured, and far below the poll's 20 s wait); admin changes made on
# both nodes at once keep the audit log one unbroken hash chain; a
# forwarding target is served by one node (its lease), and when that node
# is killed (-9) the other takes the lease over and delivers what was
# stored meanwhile to a real rsyslog, in order, each event once; a file
# sample received by one node is downloaded through the other; a console
# on one node sees live updates of changes made through the other. Always
# on PostgreSQL, whatever VIGIL_STORE says.
export VIGIL_STORE=pg
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/rsyslog.inc"

PKI=$T/pki
make_pki "$PKI"

# start_node NAME: vigild with [center] node_name = NAME and its own data
# directory and log; sets GW_<NAME>, ADM_<NAME>, PID_<NAME>.
start_node() {
	local n=$1 data=$T/data-$1 i
	write_conf "$T/$n.conf" "$PKI" "$data" "node_name = $n" \
		"node_lease = 3s" "[admin]" "login_rate = 4"
	"$VIGILD" -d -c "$T/$n.conf" >>"$T/vigild-$n.log" 2>&1 &
	eval "PID_$n=$!"
	PIDS+=("$!")
	for i in $(seq 1 100); do
		[ -s "$data/vigild.ports" ] && break
		sleep 0.1
	done
	[ -s "$data/vigild.ports" ] || fail "node $n did not start"
	eval "GW_$n=$(sed -E 's/.*"gateway": ([0-9]+).*/\1/' "$data/vigild.ports")"
	eval "ADM_$n=$(sed -E 's/.*"admin": ([0-9]+).*/\1/' "$data/vigild.ports")"
}
# on NAME CMD...: runs CMD with vigilctl and api pointed at node NAME.
on() {
	local n=$1
	shift
	ADM=$(eval echo "\$ADM_$n") GW=$(eval echo "\$GW_$n") \
		VIGIL_SERVER="https://127.0.0.1:$(eval echo "\$ADM_$n")" "$@"
}

start_node a
VIGIL_API_KEY=$(cat "$T/data-a/admin.key")
export VIGIL_API_KEY VIGIL_CA="$PKI/ca.crt"
start_node b
# The second node found the database set up: no key of its own.
[ ! -e "$T/data-b/admin.key" ] || fail "node b made a second admin key"

# --- both nodes visible ------------------------------------------------
nodes_up() {
	[ "$(on b api GET /api/v1/nodes | python3 -c 'import json,sys; print(sum(n["alive"] for n in json.load(sys.stdin)["nodes"]))')" = 2 ]
}
wait_for 10 "two live nodes" nodes_up
out=$(on a "$CTL" nodes)
expect_contains "$out" "a *"
expect_contains "$out" "up"
grep -q "^b " <<<"$out" || fail "node b missing: $out"
# Each node's gauges are set at its heartbeat (every 2 s).
metric_is() { # metric_is NODE SERIES VALUE
	[ "$(metric_value "$(on "$1" api GET /metrics)" "$2")" = "$3" ]
}
wait_for 10 "vigil_nodes_alive 2 on node a" metric_is a vigil_nodes_alive 2
metric_is a vigil_node_listening 1 || fail "node a does not listen"
metric_is a 'vigil_node_heartbeat_age_seconds{node="b"}' 0 ||
	metric_is a 'vigil_node_heartbeat_age_seconds{node="b"}' 1 ||
	metric_is a 'vigil_node_heartbeat_age_seconds{node="b"}' 2 ||
	fail "node b's heartbeat as node a sees it"
pass "two nodes in the API, vigilctl and metrics"

# --- a session made on node a works on node b ----------------------
echo 'correct horse battery' | on a "$CTL" user add alice --role operator \
	--password-stdin >/dev/null || fail "user add"
login() { # login NODE USER PASS: HTTP status; headers in $T/h
	curl -sS -D "$T/h" -o /dev/null -w '%{http_code}' --cacert "$PKI/ca.crt" \
		-H 'Content-Type: application/json' \
		-d "{\"username\": \"$2\", \"password\": \"$3\"}" \
		"https://127.0.0.1:$(eval echo "\$ADM_$1")/api/v1/login"
}
[ "$(login a alice 'correct horse battery')" = 200 ] || fail "login on node a"
COOKIE=$(sed -nE 's/^[Ss]et-[Cc]ookie: (vigil_session=[0-9a-f]+);.*/\1/p' "$T/h")
[ -n "$COOKIE" ] || fail "no session cookie"
st=$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$PKI/ca.crt" \
	-H "Cookie: $COOKIE" "https://127.0.0.1:$ADM_b/api/v1/agents")
[ "$st" = 200 ] || fail "node b answered $st to node a's session"
pass "a session made on node a works on node b"

# --- login attempts are limited across the nodes -------------------
# Four a minute from this address (login_rate), whichever node counts
# them: the one above, and three failed ones on both nodes.
for n in b a b; do
	[ "$(login $n nobody wrong)" = 401 ] ||
		fail "login attempt on node $n not answered 401"
done
[ "$(login a nobody wrong)" = 429 ] || fail "a fifth login attempt was not refused"
[ "$(login b nobody wrong)" = 429 ] || fail "a sixth login attempt was not refused"
pass "login rate limit shared by the nodes"

# --- a task created on A reaches an agent polling B ------------------
token=$(on a new_token --uses 1)
VIGIL_MACHINE_ID_FILE=$(machine_id mn) "$AGENT" enroll \
	--server "https://127.0.0.1:$GW_a" --token "$token" \
	--ca "$PKI/ca.crt" --data-dir "$T/a" >"$T/enroll.log" 2>&1 ||
	fail "enroll: $(cat "$T/enroll.log")"
AID=$(on a "$CTL" --json agent list | sed -nE 's/.*"id": "([0-9a-f-]{36})".*/\1/p' | head -1)
GW=$GW_b
agent_poll() { # the agent's long poll on node B, 20 s at most
	curl -sS --max-time 30 --cacert "$PKI/ca.crt" --cert "$T/a/agent.crt" \
		--key "$T/a/agent.key" "https://127.0.0.1:$GW_b/v1/tasks?wait=20"
}
agent_poll >/dev/null # nothing queued: answered at once
agent_poll >"$T/poll.out" &
POLL=$!
held() { [ "$(metric_value "$(on b api GET /metrics)" vigil_long_polls)" = 1 ]; }
wait_for 10 "node b holding the poll" held
t0=$(date +%s.%N)
on a "$CTL" task create inventory --agent "$AID" >/dev/null || fail "task create"
wait "$POLL" || fail "poll failed"
t1=$(date +%s.%N)
el=$(python3 -c "print(f'{$t1 - $t0:.3f}')")
expect_contains "$(cat "$T/poll.out")" '"kind":"inventory"'
echo "task created on node a reached the agent on node b in $el s"
python3 -c "import sys; sys.exit(0 if $el < 2 else 1)" ||
	fail "took $el s: not woken by the notification"
[ "$(metric_value "$(on b api GET /metrics)" vigil_node_notifications_total)" -ge 1 ] ||
	fail "node b got no notification"
pass "task from node a to an agent on node b in $el s (notification)"

# --- live console updates from node A on a console connected to B ----
curl -sSN --max-time 60 --cacert "$PKI/ca.crt" -H "Authorization: Bearer $VIGIL_API_KEY" \
	"https://127.0.0.1:$ADM_b/api/v1/stream" >"$T/stream-b" 2>&1 &
STREAM=$!
PIDS+=("$STREAM")
wait_for 10 "the stream on node b" grep -q "vigil live updates" "$T/stream-b"
TID=$(on a "$CTL" task create inventory --agent "$AID" |
	sed -nE 's/^created task ([0-9a-f-]{36}) .*/\1/p')
[ -n "$TID" ] || fail "task create on node a"
streamed() { grep -A1 '^event: task$' "$T/stream-b" | grep -q "\"id\":\"$TID\""; }
wait_for 10 "the task's live update on node b's stream" streamed
[ "$(grep -c "\"id\":\"$TID\"" "$T/stream-b")" = 1 ] ||
	fail "the task's event reached node b's stream $(grep -c "$TID" "$T/stream-b") times"
kill "$STREAM" 2>/dev/null || true
pass "a task created through node a shows at once on a console connected to node b"

# --- a sample received by node A is downloaded through node B --------
head -c 2500000 /dev/urandom >"$T/sample.bin" # three parts of 1 MiB
SHA=$(sha256sum "$T/sample.bin" | cut -d' ' -f1)
CT=$(on a "$CTL" task create collect --agent "$AID" --param path=/tmp/x.bin |
	sed -nE 's/^created task ([0-9a-f-]{36}) .*/\1/p')
[ -n "$CT" ] || fail "collect task not created"
curl -sS -o /dev/null --max-time 30 --cacert "$PKI/ca.crt" --cert "$T/a/agent.crt" \
	--key "$T/a/agent.key" "https://127.0.0.1:$GW_a/v1/tasks" || fail "poll"
curl -sS --cacert "$PKI/ca.crt" --cert "$T/a/agent.crt" --key "$T/a/agent.key" \
	-X POST "https://127.0.0.1:$GW_a/v1/samples?sha256=$SHA&task=$CT&path=/tmp/x.bin" \
	--data-binary @"$T/sample.bin" >"$T/up.json"
expect_contains "$(cat "$T/up.json")" "$SHA"
[ -e "$T/data-b/samples/${SHA:0:2}/$SHA" ] && fail "node b holds the sample before asked"
code=$(on b api GET "/api/v1/samples/$SHA/download" -o "$T/s.zip" -w '%{http_code}')
[ "$code" = 200 ] || fail "download through node b: $code $(head -c 300 "$T/s.zip")"
mkdir "$T/sx"
7z x -pinfected -o"$T/sx" "$T/s.zip" </dev/null >"$T/7z.log" 2>&1 || fail "7z x: $(cat "$T/7z.log")"
[ "$(sha256sum "$T/sx/$SHA" | cut -d' ' -f1)" = "$SHA" ] || fail "the sample from node b differs"
grep -q "samples: $SHA (2500000 bytes) fetched from the database" "$T/vigild-b.log" ||
	fail "node b did not say it fetched the sample"
# A damaged part is refused with a clear error, never served.
rm -f "$T/data-b/samples/${SHA:0:2}/$SHA"
db "UPDATE sample_parts SET data = 'AAAA' || substr(data, 5) WHERE sha256 = '$SHA' AND part = 1" >/dev/null
code=$(on b api GET "/api/v1/samples/$SHA/download" -o "$T/e.json" -w '%{http_code}')
[ "$code" = 500 ] || fail "damaged sample served: $code"
expect_contains "$(cat "$T/e.json")" "damaged"
[ -e "$T/data-b/samples/${SHA:0:2}/$SHA" ] && fail "a damaged copy was kept"
pass "a sample received by node a is downloaded through node b (from the database, checked); a damaged copy is refused"

# --- the audit chain with writers on both nodes at once -------------
before=$(db "SELECT COUNT(*) FROM audit")
jobs=()
for i in $(seq 1 15); do
	on a "$CTL" token create --label "n=a$i" >/dev/null &
	jobs+=($!)
	on b "$CTL" token create --label "n=b$i" >/dev/null &
	jobs+=($!)
done
for j in "${jobs[@]}"; do wait "$j" || fail "a token creation failed"; done
after=$(db "SELECT COUNT(*) FROM audit")
[ $((after - before)) -eq 30 ] || fail "audit entries: $before -> $after"
out=$("$CTL" audit verify --db "$PG_URL" 2>&1) || fail "audit verify: $out"
[ "$(db "SELECT COUNT(DISTINCT prev_hash) FROM audit")" = "$after" ] ||
	fail "two entries chained to the same predecessor"
pass "audit chain unbroken after 30 concurrent changes on two nodes"

# --- a forwarding target's lease moves when its node dies -----------
RS=$T/rs
rs_start "$RS" "module(load=\"imtcp\")
input(type=\"imtcp\" port=\"0\" address=\"127.0.0.1\" listenPortFileName=\"$RS/p\" ruleset=\"r\")
ruleset(name=\"r\") { action(type=\"omfile\" file=\"$RS/out\" template=\"fields\") }"
on a "$CTL" forward add siem --transport tcp --host 127.0.0.1 \
	--port "$(cat "$RS/p")" --format json --type finding >/dev/null ||
	fail "forward add"
post() { # post NODE FROM TO
	curl -sS --cacert "$PKI/ca.crt" --cert "$T/a/agent.crt" \
		--key "$T/a/agent.key" -X POST \
		"https://127.0.0.1:$(eval echo "\$GW_$1")/v1/events" \
		-d "$(events_range "$2" "$3")"
}
expect_contains "$(post b 1 100)" '"stored":100'
holder() { db "SELECT node FROM leases WHERE name = 'forward:siem'"; }
held_by_one() { [ -n "$(holder)" ]; }
wait_for 15 "a holder of the lease" held_by_one
wait_lines "$RS/out" 100
H=$(holder)
# Everything it sent is recorded as sent before it dies.
saved() { [ "$(db "SELECT cursor FROM forward_targets WHERE name = 'siem'")" = "$(db "SELECT MAX(rowid) FROM events WHERE type = 'finding'")" ]; }
wait_for 10 "the cursor saved" saved
case $H in a) O=b ;; b) O=a ;; *) fail "lease held by '$H'" ;; esac
kill -9 "$(eval echo "\$PID_$H")"
t0=$(date +%s.%N)
expect_contains "$(post "$O" 101 300)" '"stored":200'
moved() { [ "$(holder)" = "$O" ]; }
wait_for 20 "the lease to move to node $O" moved
wait_lines "$RS/out" 300
t1=$(date +%s.%N)
echo "node $H killed: node $O delivers again after $(python3 -c "print(f'{$t1 - $t0:.1f}')") s"
seqs=$(cut -d'|' -f7- "$RS/out" | python3 -c '
import json, sys
print(" ".join(str(json.loads(l)["seq"]) for l in sys.stdin if l.strip()))')
[ "$seqs" = "$(seq -s ' ' 1 300)" ] ||
	fail "at rsyslog, not 1..300 once in order: $(head -c 300 <<<"$seqs")"
pass "lease moved from node $H to node $O; 300 events at rsyslog in order, once"
