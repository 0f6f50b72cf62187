#!/bin/bash
# [gateway] workers = 2 (docs/development.md, "Processes and users"): two
# gateway worker processes hold the agent connections and relay every
# request to the core. Checked from outside: the workers run as the
# configured user with no capabilities and a seccomp filter, the core holds no agent connection,
# real agents on both workers enroll, long-poll, send events and get a task
# for all of them; kill -9 of a worker gets it restarted, its agents back
# and the next task done, and every event stays stored exactly once; a
# certificate of the wrong role or from an unknown CA is refused by a
# worker's handshake.
. "$(dirname "$0")/lib.sh"

export VIGIL_GW_WORKERS=2
NAGENTS=6
PKI=$T/pki
DATA=$T/data
make_pki "$PKI"
# As root, the workers run as nobody (worker_conf).
worker_conf "$T/vigild.conf" "poll_interval = 2s"
start_center "$T/vigild.conf" "$DATA"

workers() { center_children --gateway-worker; } # the core's children that are gateway workers
nworkers() { [ "$(workers | wc -l)" = "$1" ]; }
wait_for 20 "two gateway workers" nworkers 2
read -r W1 W2 <<<"$(workers | tr '\n' ' ')"
for w in $W1 $W2; do worker_sandboxed "gateway worker" "$w" "$RUN_AS"; done
pass "two gateway workers run as $RUN_AS without capabilities, under seccomp"

# Established gateway connections held by a process: its socket inodes
# matched against /proc/net/tcp (state 01) on the gateway port.
conns() { established "$1" "$GW"; }

TOKEN=$(new_token --uses $NAGENTS --label os=linux)
S=$T/files
mkdir -p "$S"
chmod 755 "$S"
for i in $(seq 1 200); do printf 'x VIGIL-GW-MARKER %d\n' "$i" >"$S/f$i"; done
printf 'rule gw_marker { meta: score = 90 strings: $m = "VIGIL-GW-MARKER" condition: $m }\n' >"$T/gw.yar"
"$CTL" rules add gwmark "$T/gw.yar" >/dev/null || fail "rules add"

export VIGIL_MACHINE_ID_FILE
for i in $(seq 1 $NAGENTS); do
	VIGIL_MACHINE_ID_FILE=$(machine_id w$i)
	"$AGENT" enroll --server "https://127.0.0.1:$GW" --token "$TOKEN" \
		--ca "$PKI/ca.crt" --data-dir "$T/a$i" >"$T/enroll$i.log" 2>&1 ||
		fail "enroll $i: $(cat "$T/enroll$i.log")"
done
pass "$NAGENTS agents enrolled through the workers"

start_agent() {
	VIGIL_MACHINE_ID_FILE=$T/machine-id-w$1 \
		"$AGENT" run --data-dir "$T/a$1" >>"$T/agent$1.log" 2>&1 &
	PIDS+=("$!")
}
# Each worker accepts on a socket of its own on the gateway port
# (SO_REUSEPORT): the kernel spreads new connections over them. With one
# shared socket, 198 of 200 connections went to one of the two workers.
python3 - "$GW" 200 "$T/spread" <<'PY' &
import os, socket, sys, time
port, n, flag = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
held = [socket.create_connection(("127.0.0.1", port)) for _ in range(n)]
open(flag + ".ready", "w").close()
deadline = time.time() + 30
while not os.path.exists(flag + ".done") and time.time() < deadline:
    time.sleep(0.05)
PY
SPREAD_PID=$!
PIDS+=("$SPREAD_PID")
wait_for 20 "200 connections made" test -e "$T/spread.ready"
accepted() { [ $(($(conns "$W1") + $(conns "$W2"))) -ge 200 ]; }
wait_for 20 "the workers accepting 200 connections" accepted
n1=$(conns "$W1")
n2=$(conns "$W2")
touch "$T/spread.done"
wait "$SPREAD_PID" 2>/dev/null || true
echo "200 connections: worker $W1 $n1, worker $W2 $n2"
[ "$n1" -ge 50 ] && [ "$n2" -ge 50 ] ||
	fail "200 connections split $n1/$n2 over the two workers"
pass "connections spread over both workers' sockets ($n1/$n2 of 200)"

for i in $(seq 1 $NAGENTS); do start_agent "$i"; done
held_all() { [ $(($(conns "$W1") + $(conns "$W2"))) -ge $NAGENTS ]; }
wait_for 30 "the workers holding $NAGENTS agents" held_all
[ "$(conns "$CENTER_PID")" = 0 ] ||
	fail "the core holds $(conns "$CENTER_PID") agent connections"
echo "connections: worker $W1 $(conns "$W1"), worker $W2 $(conns "$W2"), core 0"
all_online() {
	[ "$("$CTL" --json agent list --state online | grep -c '"id"' || true)" = $NAGENTS ]
}
wait_for 30 "all agents online" all_online
pass "agents held by the workers, none on the core; agent list shows them online"

# The workers report their counts every second.
gw_metrics() {
	local m
	m=$(api GET /metrics)
	[ "$(metric_value "$m" 'vigil_connections{listener="gateway"}')" -ge $NAGENTS ] &&
		[ "$(metric_value "$m" 'vigil_tls_handshakes_total{listener="gateway",kind="full"}')" -ge $NAGENTS ]
}
wait_for 20 "the workers' connections and handshakes in /metrics" gw_metrics
pass "/metrics sums the workers' connections and handshakes"

# A task for all agents: held polls on both workers answered, runs done,
# events stored.
task_done() { # task_done ID: every run done
	local out
	out=$(api GET "/api/v1/tasks/$1")
	grep -q "\"counts\":{\"done\":$NAGENTS}" <<<"$out"
}
new_scan() {
	api POST /api/v1/tasks -d "{\"kind\": \"scan\", \"params\": {\"paths\": [\"$S\"], \"rules\": [\"gwmark\"]}, \"target\": {\"all\": true}, \"timeout\": \"1h\"}" |
		sed -nE 's/.*"id": ?"([^"]*)".*/\1/p' | head -1
}
TID=$(new_scan)
[ -n "$TID" ] || fail "no task created"
wait_for 60 "the scan task done by all $NAGENTS agents" task_done "$TID"
pass "a task for all agents reached the agents on the workers"

q() { db "$1"; }
spool_acked() { sed -nE 's/.*"acked": ?([0-9]+).*/\1/p' "$T/a$1/spool/spool.state"; }
agent_id() { openssl x509 -in "$T/a$1/agent.crt" -noout -subject | sed -nE 's/.*CN ?= ?([0-9a-f-]{36}).*/\1/p'; }
events_in() { # events_in TASK: every agent's 200 findings of it stored
	[ "$(q "SELECT COUNT(*) FROM (SELECT agent_id FROM events WHERE task_id = '$1' AND data LIKE '%VIGIL-GW-MARKER%' GROUP BY agent_id HAVING COUNT(*) >= 200) AS per_agent")" = $NAGENTS ]
}
wait_for 60 "the findings of all agents stored" events_in "$TID"
pass "events of agents on the workers stored"

# kill -9 one worker while the agents poll: restarted, its agents back.
ACKED=()
for i in $(seq 1 $NAGENTS); do ACKED[i]=$(spool_acked "$i"); done
# (the worker holding more agents: the kernel chose where they went)
if [ "$(conns "$W2")" -gt "$(conns "$W1")" ]; then
	read -r W1 W2 <<<"$W2 $W1"
fi
ON_W1=$(conns "$W1")
[ "$ON_W1" -ge 1 ] || fail "worker $W1 holds no agent before the kill"
kill -9 "$W1"
restarted() {
	local w
	w=$(workers | tr '\n' ' ')
	[ "$(wc -w <<<"$w")" = 2 ] && ! grep -qw "$W1" <<<"$w"
}
wait_for 30 "worker $W1 restarted" restarted
grep -q "gateway worker [0-9] (pid $W1) killed by signal 9; restarting it" "$T/vigild.log" ||
	fail "the restart is not logged"
[ "$(metric_value "$(api GET /metrics)" vigil_gateway_worker_restarts_total)" = 1 ] ||
	fail "restarts counted: $(metric_value "$(api GET /metrics)" vigil_gateway_worker_restarts_total)"
TID2=$(new_scan)
[ -n "$TID2" ] || fail "no task created after the kill"
wait_for 90 "the next task done by all $NAGENTS agents after the kill" task_done "$TID2"
wait_for 30 "all agents online after the kill" all_online
pass "worker killed with -9: restarted (logged, counted), its $ON_W1 agents back, next task done"

# Nothing acknowledged lost, nothing stored twice: per agent, sequence
# numbers 1..N exactly once, and at least what was acked before the kill.
wait_for 60 "the second scan's findings stored" events_in "$TID2"
for i in $(seq 1 $NAGENTS); do
	a=$(agent_id "$i")
	r=$(q "SELECT COUNT(*), MIN(seq), MAX(seq), COUNT(DISTINCT seq) FROM events WHERE agent_id = '$a'")
	IFS='|' read -r c mn mx d <<<"$r"
	[ "$mn" = 1 ] && [ "$c" = "$mx" ] && [ "$c" = "$d" ] ||
		fail "agent $i ($a): events (count|min|max|distinct) $r"
	[ "$c" -ge "${ACKED[i]}" ] ||
		fail "agent $i ($a): ${ACKED[i]} events acked before the kill, $c stored"
done
pass "every acknowledged event stored exactly once across the kill"

# Refused in a worker's handshake, as in-process: a certificate of another
# role from this CA, and one from an unknown CA.
C=$T/certs
"$CTL" pki issue --dir "$PKI" --out "$C" --role scand --name scand.example.org \
	--san 127.0.0.1 --usage both >"$T/o" 2>&1 || fail "pki issue: $(cat "$T/o")"
code=$(gw_status POST /v1/heartbeat --cert "$C/scand-scand.example.org.crt" \
	--key "$C/scand-scand.example.org.key" -H 'Content-Type: application/json' \
	-d '{"facts": {"hostname": "h"}}')
[ "$code" = 000 ] || fail "a scand certificate got HTTP $code from a worker"
grep -q "vigild-gw.*refused the certificate of scand.example.org from 127.0.0.1: a certificate of role scand may not be used here" \
	"$T/vigild.log" || fail "refusal not logged by a worker: $(grep refused "$T/vigild.log" | tail -2)"
make_pki "$T/other" other.vigil.test
"$CTL" pki issue --dir "$T/other" --out "$T/oc" --role scand --name intruder.example.org \
	--san 127.0.0.1 --usage both >"$T/o" 2>&1 || fail "pki issue: $(cat "$T/o")"
code=$(gw_status POST /v1/heartbeat --cert "$T/oc/scand-intruder.example.org.crt" \
	--key "$T/oc/scand-intruder.example.org.key" -H 'Content-Type: application/json' \
	-d '{"facts": {"hostname": "h"}}')
[ "$code" = 000 ] || fail "a certificate of an unknown CA got HTTP $code from a worker"
failures() { # failures REASON N: the workers' refusals reach /metrics
	[ "$(metric_value "$(api GET /metrics)" "vigil_tls_handshake_failures_total{reason=\"$1\"}")" = "$2" ]
}
wait_for 20 "wrong_role counted in /metrics" failures wrong_role 1
wait_for 20 "unknown_ca counted in /metrics" failures unknown_ca 1
pass "wrong-role and unknown-CA certificates refused in a worker's handshake (logged, counted)"

# A burst of refused handshakes is reported at once (at most every 50 ms
# a worker); it must not hold back the workers' report every second: the
# handshakes done after it reach /metrics within seconds. (A report made
# active on the 1 s persistent timer put its next run off by 1 s each.)
for i in $(seq 1 60); do # paced: each one reported on its own
	gw_status POST /v1/heartbeat --cert "$C/scand-scand.example.org.crt" \
		--key "$C/scand-scand.example.org.key" -d '{}' >/dev/null
	sleep 0.06
done
wait_for 20 "the burst counted in /metrics" failures wrong_role 61
HS='vigil_tls_handshakes_total{listener="gateway",kind="full"}'
h0=$(metric_value "$(api GET /metrics)" "$HS")
for i in 1 2 3 4 5; do
	code=$(gw_status POST /v1/heartbeat --cert "$T/a6/agent.crt" --key "$T/a6/agent.key" \
		-H 'Content-Type: application/json' -d '{}')
	[ "$code" = 400 ] || fail "a request after the burst: HTTP $code $(cat "$T/gw-body")"
done
wait_for 10 "the handshakes after the burst in /metrics (the workers' report each second)" \
	metric_at_least "$HS" $((${h0%.*} + 5))
pass "a burst of refused handshakes does not hold back the workers' report each second"

# SIGHUP: the core reloads and each worker swaps its TLS context (reading
# the files again under its seccomp filter), its connections kept.
read -r W1 W2 <<<"$(workers | tr '\n' ' ')"
kill -HUP "$CENTER_PID"
reloaded() { [ "$(grep -c 'vigild-gw: INFO: gateway worker [0-9]*: TLS context reloaded' "$T/vigild.log")" = 2 ]; }
wait_for 20 "both workers reloading their TLS context" reloaded
[ "$(workers | tr '\n' ' ')" = "$W1 $W2 " ] || fail "workers changed on SIGHUP: $(workers | tr '\n' ' ')"
[ "$(metric_value "$(api GET /metrics)" vigil_gateway_worker_restarts_total)" = 1 ] ||
	fail "a worker died on SIGHUP"
TID3=$(new_scan)
wait_for 60 "a task done by all agents after SIGHUP" task_done "$TID3"
pass "SIGHUP: workers reload their TLS context without a restart; agents served"

# Revocation: the core tells the workers, which refuse the certificate at
# the handshake as the in-process gateway does (counted by reason).
RID=$(agent_id 6)
"$CTL" agent revoke "$RID" | grep -q revoked || fail "revoke"
hb6() {
	curl -sS -o /dev/null -w '%{http_code}' --cacert "$PKI/ca.crt" \
		--cert "$T/a6/agent.crt" --key "$T/a6/agent.key" \
		-H 'Content-Type: application/json' -d '{"facts": {"hostname": "h"}}' \
		"https://127.0.0.1:$GW/v1/heartbeat" 2>/dev/null || true
}
for i in 1 2 3 4; do # whichever worker takes the connection
	code=$(hb6)
	[ "$code" = 000 ] || fail "revoked certificate got HTTP $code from a worker"
done
revoked_n() {
	[ "$(metric_value "$(api GET /metrics)" 'vigil_tls_handshake_failures_total{reason="revoked"}')" -ge 4 ]
}
wait_for 20 "revoked handshakes counted" revoked_n
pass "a revoked agent is refused at a worker's handshake (counted)"
