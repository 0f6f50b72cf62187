#!/bin/bash
# Survive a node (docs/scale-out.md): two vigild nodes on one PostgreSQL
# 15 behind Debian's haproxy (TCP mode, health checks) on loopback, real
# agents (vigil-agent run) polling tasks and sending their events through
# it, a real rsyslog receiving the SIEM forwarding. One node is killed
# (-9): the agents reconnect through haproxy to the other, a task created
# during the outage (through haproxy's admin frontend: the API keeps
# answering) reaches every agent, every event is in the store once with
# no gap in any agent's numbers, and at rsyslog once and in order per
# agent. Prints the time to recover (the kill to the last agent's run of
# the new task done).
#
# The node killed is the one that does not serve the forwarding target:
# a kill of the node that does moves its lease (e2e/multinode), and a batch
# written to the receiver but not yet recorded as sent when the node died
# is sent again by the next one (docs/forwarding.md).
# Always on PostgreSQL, whatever VIGIL_STORE says.
export VIGIL_STORE=pg
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/rsyslog.inc"

HAPROXY=${HAPROXY:-/usr/sbin/haproxy}
[ -x "$HAPROXY" ] || skip "haproxy missing (scripts/install-deps installs it)"
NAGENTS=${SURVIVE_AGENTS:-40}

PKI=$T/pki
make_pki "$PKI"
start_node() { # NAME: sets GW_<NAME>, ADM_<NAME>, PID_<NAME>
	local n=$1 data=$T/data-$1 i
	write_conf "$T/$n.conf" "$PKI" "$data" "node_name = $n" \
		"node_lease = 3s"
	# All the agents enroll from 127.0.0.1 (the limit holds across
	# the nodes).
	printf '[gateway]\nenroll_rate = 1000\n' >>"$T/$n.conf"
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
start_node a
VIGIL_API_KEY=$(cat "$T/data-a/admin.key")
export VIGIL_API_KEY VIGIL_CA="$PKI/ca.crt"
start_node b

# haproxy in front: one frontend for agents, one for the admin API.
HGW=$(pg_free_port)
HADM=$(pg_free_port)
cat >"$T/haproxy.cfg" <<EOF
global
	maxconn 4000
defaults
	mode tcp
	timeout connect 2s
	timeout client 90s
	timeout server 90s
	retries 3
	option redispatch 1
frontend gw
	bind 127.0.0.1:$HGW
	default_backend gw
backend gw
	balance roundrobin
	server a 127.0.0.1:$GW_a check inter 300ms fall 2 rise 2
	server b 127.0.0.1:$GW_b check inter 300ms fall 2 rise 2
frontend adm
	bind 127.0.0.1:$HADM
	default_backend adm
backend adm
	balance roundrobin
	server a 127.0.0.1:$ADM_a check inter 300ms fall 2 rise 2
	server b 127.0.0.1:$ADM_b check inter 300ms fall 2 rise 2
EOF
"$HAPROXY" -c -f "$T/haproxy.cfg" >/dev/null || fail "haproxy config"
"$HAPROXY" -db -f "$T/haproxy.cfg" >>"$T/haproxy.log" 2>&1 &
PIDS+=("$!")
export VIGIL_SERVER="https://127.0.0.1:$HADM"
ADM=$HADM
wait_for 10 "haproxy" "$CTL" nodes

# The SIEM.
RS=$T/rs
rs_start "$RS" "module(load=\"imtcp\")
input(type=\"imtcp\" port=\"0\" address=\"127.0.0.1\" listenPortFileName=\"$RS/p\" ruleset=\"r\")
ruleset(name=\"r\") { action(type=\"omfile\" file=\"$RS/out\" template=\"fields\") }"
"$CTL" forward add siem --transport tcp --host 127.0.0.1 \
	--port "$(cat "$RS/p")" --format json >/dev/null || fail "forward add"

# The agents, enrolled and running through haproxy.
TOKEN=$(new_token --uses "$NAGENTS")
for i in $(seq 1 "$NAGENTS"); do
	VIGIL_MACHINE_ID_FILE=$(machine_id "s$i") "$AGENT" enroll \
		--server "https://127.0.0.1:$HGW" --token "$TOKEN" \
		--ca "$PKI/ca.crt" --data-dir "$T/ag$i" >"$T/enroll-$i.out" 2>&1 ||
		fail "enroll $i: $(cat "$T/enroll-$i.out")"
	VIGIL_MACHINE_ID_FILE=$T/machine-id-s$i "$AGENT" run \
		--data-dir "$T/ag$i" >"$T/ag$i.out" 2>&1 &
	PIDS+=("$!")
done
polls() { # polls NODE: task polls it holds
	metric_value "$(curl -sS --cacert "$PKI/ca.crt" -H "Authorization: Bearer $VIGIL_API_KEY" \
		"https://127.0.0.1:$(eval echo "\$ADM_$1")/metrics")" vigil_long_polls
}
all_polling() { [ $(($(polls a) + $(polls b))) -eq "$NAGENTS" ]; }
wait_for 40 "$NAGENTS agents polling" all_polling
echo "agents: node a holds $(polls a), node b $(polls b)"
[ "$(polls a)" -gt 0 ] && [ "$(polls b)" -gt 0 ] ||
	fail "haproxy did not spread the agents"

# done_runs TASK: runs of the task done.
done_runs() {
	db "SELECT COUNT(*) FROM task_runs WHERE task_id = '$1' AND state = 'done'"
}
# Every scan finds the five marked files: findings (events) from every
# agent.
S=$T/scanroot
mkdir -p "$S"
for i in 1 2 3 4 5; do printf 'x SURVIVE-MARKER %d\n' "$i" >"$S/hit$i.txt"; done
printf 'rule survive_marker { strings: $m = "SURVIVE-MARKER" condition: $m }\n' >"$T/m.yar"
"$CTL" rules add marker "$T/m.yar" >/dev/null || fail "rules add"
task() { # task: a scan by every agent; prints its id
	"$CTL" task create scan --all --path "$S" |
		sed -nE 's/^created task ([0-9a-f-]{36}) .*/\1/p'
}
all_done() { [ "$(done_runs "$1")" = "$NAGENTS" ]; }
T1=$(task)
[ -n "$T1" ] || fail "task create"
wait_for 40 "task 1 done by every agent" all_done "$T1"
pass "$NAGENTS agents behind haproxy on two nodes ran a task"

# Kill the node that does not serve the forwarding target.
H=$(db "SELECT node FROM leases WHERE name = 'forward:siem'")
case $H in a) X=b ;; b) X=a ;; *) fail "lease held by '$H'" ;; esac
before=$(polls "$X")
# A scan under way (agents sending its findings) when the node dies.
T2=$(task)
[ -n "$T2" ] || fail "task create"
started() { [ "$(db "SELECT COUNT(*) FROM events WHERE task_id = '$T2'")" -gt 0 ]; }
wait_for 20 "the first findings of task 2" started
kill -9 "$(eval echo "\$PID_$X")"
t0=$(date +%s.%N)
# Gone once reaped (a big process, under ASan, takes a moment to die, and
# meanwhile its listening socket still takes connections it never
# answers). The API keeps answering through haproxy, at once.
wait "$(eval echo "\$PID_$X")" 2>/dev/null || true
T3=$(task)
[ -n "$T3" ] || fail "task create through haproxy right after the kill"
t_api=$(date +%s.%N)
wait_for 45 "task 3 (created during the outage) done by every agent" all_done "$T3"
t1=$(date +%s.%N)
wait_for 30 "task 2 (under way at the kill) done by every agent" all_done "$T2"
moved() { [ "$(polls "$H")" = "$NAGENTS" ]; }
wait_for 30 "every agent polling node $H" moved
rec=$(python3 -c "print(f'{$t1 - $t0:.1f}')")
echo "node $X (holding $before agents) killed: API answered after" \
	"$(python3 -c "print(f'{$t_api - $t0:.2f}')") s; every agent ran the" \
	"new task after $rec s (recovery time)"
pass "the agents of node $X reconnected to node $H and got the task created during the outage"

# Events: each agent's numbers in the store have no gap (and the primary
# key allows no duplicate); rsyslog has the same, once, in order.
db "SELECT agent_id, seq FROM events WHERE agent_id NOT LIKE 'center%' ORDER BY agent_id, seq" >"$T/stored"
n=$(wc -l <"$T/stored")
[ "$n" -ge $((NAGENTS * 15)) ] || fail "only $n events stored"
python3 - "$T/stored" <<'EOF' || fail "a gap in an agent's events in the store"
import sys, collections
seqs = collections.defaultdict(list)
for l in open(sys.argv[1]):
    a, s = l.strip().split("|")
    seqs[a].append(int(s))
bad = {a: s for a, s in seqs.items() if s != list(range(s[0], s[0] + len(s)))}
sys.exit(1 if bad else 0)
EOF
synced() { [ "$(db "SELECT cursor FROM forward_targets WHERE name = 'siem'")" = "$(db "SELECT MAX(rowid) FROM events")" ]; }
wait_for 20 "forwarding to catch up" synced
python3 - "$T/stored" "$RS/out" <<'EOF' || fail "rsyslog did not get each event once in order"
import json, sys, collections
want = collections.defaultdict(list)
for l in open(sys.argv[1]):
    a, s = l.strip().split("|")
    want[a].append(int(s))
got = collections.defaultdict(list)
for l in open(sys.argv[2]):
    m = json.loads(l.split("|", 6)[6])
    if not m["agent_id"].startswith("center"):
        got[m["agent_id"]].append(m["seq"])
for a in want:
    if got[a] != want[a]:
        print(a, "stored", want[a][:20], "rsyslog", got[a][:20])
        sys.exit(1)
if set(got) != set(want):
    sys.exit(1)
print(f"{sum(map(len, got.values()))} events of {len(got)} agents at rsyslog, once, in order")
EOF
pass "every event stored once without gaps, and at rsyslog once in order per agent"
