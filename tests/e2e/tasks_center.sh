#!/bin/bash
# The center's side of tasks and events, driven with curl as the agent:
# rule sets checked on upload, a task for a label group dispatched through
# a held long poll in well under a second, progress and results recorded,
# cancel and timeout, event batches stored exactly once (resent batches
# deduplicated), samples content-addressed and checked.
. "$(dirname "$0")/lib.sh"

standard_center
TOKEN=$(new_token --uses 3 --label os=linux --label site=berlin)
export VIGIL_MACHINE_ID_FILE
VIGIL_MACHINE_ID_FILE=$(machine_id k1)
"$AGENT" enroll --server "https://127.0.0.1:$GW" --token "$TOKEN" \
	--ca "$PKI/ca.crt" --data-dir "$T/a" >/dev/null 2>&1 || fail enroll
AID=$("$CTL" --json agent list | sed -nE 's/.*"id": "([0-9a-f-]{36})".*/\1/p' | head -1)

agent() { # agent METHOD PATH [curl args]
	local m=$1 p=$2
	shift 2
	curl -sS --cacert "$PKI/ca.crt" --cert "$T/a/agent.crt" --key "$T/a/agent.key" \
		-X "$m" "https://127.0.0.1:$GW$p" "$@"
}
json_str() { sed -nE "s/.*\"$1\": ?\"([^\"]*)\".*/\1/p" | head -1; }

# Rule sets: a broken one is refused with the line, a good one stored.
out=$(api POST /api/v1/rules -d '{"name": "bad", "kind": "yara", "content": "rule x { condition: nonsense }"}')
expect_contains "$out" "bad_rules"
out=$(api POST /api/v1/rules -d '{"name": "test", "kind": "yara", "content": "rule vigil_test { strings: $a = \"VIGIL-TEST-MARKER\" condition: $a }"}')
RID=$(echo "$out" | json_str id)
[ ${#RID} -eq 64 ] || fail "rule set not stored: $out"
out=$(api POST /api/v1/rules -d '{"name": "iocs", "kind": "ioc", "content": "sha256;0000000000000000000000000000000000000000000000000000000000000000;80;test\n"}')
expect_contains "$out" '"kind":"ioc"'
[ "$(agent GET "/v1/rules/$RID")" = 'rule vigil_test { strings: $a = "VIGIL-TEST-MARKER" condition: $a }' ] ||
	fail "agent cannot fetch the rule set by hash"
pass "rule sets checked on upload and served by hash"

# A held poll is answered as soon as a task arrives.
agent GET "/v1/tasks?wait=20" -o "$T/poll.json" -w '%{time_total}\n' >"$T/poll.time" &
POLL=$!
held() { [ "$(metric_value "$(api GET /metrics)" vigil_long_polls)" = 1 ]; }
wait_for 20 "the center to hold the poll" held
t0=$(date +%s.%N)
out=$(api POST /api/v1/tasks -d '{"kind": "scan", "params": {"paths": ["/tmp"], "rules": ["test"]}, "target": {"labels": {"os": "linux"}}, "timeout": "1h"}')
TID=$(echo "$out" | json_str id)
expect_contains "$out" '"agents":1'
wait "$POLL"
t1=$(date +%s.%N)
lat=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}')
echo "dispatch latency: ${lat}s"
awk -v l="$lat" 'BEGIN {exit !(l < 1.0)}' || fail "task took ${lat}s to reach a waiting agent"
expect_contains "$(cat "$T/poll.json")" "$TID"
[ "$(metric_value "$(api GET /metrics)" vigil_long_polls)" = 0 ] ||
	fail "the poll is still counted as held"
expect_contains "$(cat "$T/poll.json")" "$RID"
pass "held poll answered when the task was created (${lat}s)"

# Nothing more queued: an immediate poll is empty.
expect_contains "$(agent GET "/v1/tasks?wait=0")" '"tasks":[]'
# Unknown kinds, params and targets are refused with the field named.
expect_contains "$(api POST /api/v1/tasks -d '{"kind": "format-disk", "target": {"all": true}}')" "kind:"
expect_contains "$(api POST /api/v1/tasks -d '{"kind": "scan", "params": {"paths": ["/"], "depth": 3}, "target": {"all": true}}')" "params.depth"
expect_contains "$(api POST /api/v1/tasks -d '{"kind": "inventory", "target": {"labels": {"site": "paris"}}}')" "matches no"
pass "bad task specs refused"

# Progress, then done with a result.
expect_contains "$(agent POST "/v1/tasks/$TID" -d '{"state": "running", "progress": {"files": 10}}')" '"cancel":false'
agent POST "/v1/tasks/$TID" -d '{"state": "done", "result": {"files": 42, "findings": 1}}' >/dev/null
show=$(api GET "/api/v1/tasks/$TID")
expect_contains "$show" '"state":"done"'
expect_contains "$show" '"files":42'
expect_contains "$(agent POST "/v1/tasks/$TID" -d '{"state": "running"}')" "already done"
pass "progress and result recorded"

# Cancel: the agent learns it on its next report.
T2=$(api POST /api/v1/tasks -d "{\"kind\": \"inventory\", \"target\": {\"agent\": \"$AID\"}}" | json_str id)
agent GET "/v1/tasks?wait=0" >/dev/null
api POST "/api/v1/tasks/$T2/cancel" >/dev/null
expect_contains "$(agent POST "/v1/tasks/$T2" -d '{"state": "running"}')" '"cancel":true'
expect_contains "$(api GET "/api/v1/tasks/$T2")" '"state":"cancelled"'
pass "cancel reaches the agent"

# Timeout: a dispatched run not finished in time fails with a reason.
T3=$(api POST /api/v1/tasks -d "{\"kind\": \"inventory\", \"target\": {\"agent\": \"$AID\"}, \"timeout\": 1}" | json_str id)
agent GET "/v1/tasks?wait=0" >/dev/null
sleep 3
expect_contains "$(api GET "/api/v1/tasks/$T3")" '"reason":"timed out"'
pass "timeout"

# Events: stored once even when the batch is sent again.
batch='{"events": [{"seq": 1, "time": 1795000000, "type": "finding", "level": "alert", "task_id": "'$TID'", "data": {"path": "/tmp/x", "score": 90, "rule": "vigil_test"}}, {"seq": 2, "time": 1795000001, "type": "progress", "data": {"files": 5}}]}'
expect_contains "$(agent POST /v1/events -d "$batch")" '"stored":2'
expect_contains "$(agent POST /v1/events -d "$batch")" '"duplicates":2'
# The agent's events; the center's audit entries are events of its own.
n=$(db "SELECT COUNT(*) FROM events WHERE agent_id <> 'center'")
[ "$n" = 2 ] || fail "expected 2 events stored, found $n"
expect_contains "$(api GET "/api/v1/events?level=alert&q=vigil_test")" '"seq":1'
expect_contains "$(agent POST /v1/events -d '{"events": [{"seq": 0, "time": 1, "type": "x"}]}')" "events[0].seq"
pass "events stored exactly once; searchable"

# Refused batches (checked by the parser thread) get 400 with the field
# named, and nothing of them is stored; the stored data is the compact
# text of what was checked; events by task are found.
code=$(agent POST /v1/events -o "$T/bad.json" -w '%{http_code}' \
	-d '{"events": [{"seq": 3, "time": 1, "type": "x"}, {"seq": 4, "time": 1, "type": "x", "data": [1]}]}')
[ "$code" = 400 ] || fail "bad batch: HTTP $code, want 400"
expect_contains "$(cat "$T/bad.json")" "events[1].data: must be an object"
expect_contains "$(agent POST /v1/events -d '{"events": [')" "invalid JSON"
[ "$(db "SELECT COUNT(*) FROM events WHERE agent_id <> 'center'")" = 2 ] || fail "a refused batch was stored"
expect_contains "$(agent POST /v1/events -d '{"events": [{"seq": 5, "time": 1, "type": "x", "data": { "r" : 0.5 , "s": "\u00e9" }}]}')" '"stored":1'
[ "$(db "SELECT data FROM events WHERE seq = 5 AND agent_id <> 'center'")" = '{"r":0.5,"s":"é"}' ] ||
	fail "stored data is not the compact text"
expect_contains "$(api GET "/api/v1/events?task=$TID")" '"rule":"vigil_test"'
expect_contains "$(api GET /metrics)" 'vigil_event_batches_total{result="bad"} 3'
pass "refused batches: 400, nothing stored; data stored compact; events by task"

# Samples: checked against their hash, stored 0600 by content.
printf 'VIGIL-TEST-MARKER sample' >"$T/sample"
H=$(sha256sum "$T/sample" | cut -d' ' -f1)
CT=$("$CTL" task create collect --agent "$AID" --param path=/tmp/x |
	sed -nE 's/^created task ([0-9a-f-]{36}) .*/\1/p')
agent GET /v1/tasks >/dev/null # dispatched: the agent may now answer it
expect_contains "$(agent POST "/v1/samples?sha256=$H&task=$CT&path=/tmp/x" --data-binary @"$T/sample")" "\"sha256\":\"$H\""
[ "$(stat -c %a "$DATA/samples/${H:0:2}/$H")" = 600 ] || fail "sample not 0600"
cmp "$T/sample" "$DATA/samples/${H:0:2}/$H" || fail "sample content differs"
expect_contains "$(agent POST "/v1/samples?sha256=$(printf '%064d' 1)&task=$CT" --data-binary @"$T/sample")" "bad_digest"
expect_contains "$(api GET /api/v1/samples)" "$H"
pass "samples content-addressed and verified"

m=$(api GET /metrics)
expect_contains "$m" "vigil_events_stored_total 3"
expect_contains "$m" "vigil_events_duplicate_total 2"
# three tasks above, and the collect task the sample answered
[ "$(metric_value "$m" vigil_tasks_dispatched_total)" = 4 ] ||
	fail "tasks dispatched: $(metric_value "$m" vigil_tasks_dispatched_total)"
pass "metrics"

# A run handed out but never acknowledged (the poll's reply was lost) is
# sent again after 30 s; one the agent reported running is not.
T5=$(api POST /api/v1/tasks -d "{\"kind\": \"inventory\", \"target\": {\"agent\": \"$AID\"}}" | json_str id)
expect_contains "$(agent GET "/v1/tasks?wait=0")" "$T5"
T6=$(api POST /api/v1/tasks -d "{\"kind\": \"inventory\", \"target\": {\"agent\": \"$AID\"}}" | json_str id)
expect_contains "$(agent GET "/v1/tasks?wait=0")" "$T6"
agent POST "/v1/tasks/$T6" -d '{"state": "running"}' >/dev/null
expect_contains "$(agent GET "/v1/tasks?wait=0")" '"tasks":[]'
sleep 31
again=$(agent GET "/v1/tasks?wait=0")
expect_contains "$again" "$T5"
grep -q "$T6" <<<"$again" && fail "a running task was sent again"
pass "unacknowledged runs are sent again after 30 s"

# Reports that arrive together are committed together and each answered
# once it is durable: 12 runs handed out in one poll, their 12 final
# reports sent at once, every one 200 and recorded; a report on a task
# this agent never had is 404.
for i in $(seq 1 12); do
	api POST /api/v1/tasks -d "{\"kind\": \"inventory\", \"target\": {\"agent\": \"$AID\"}}" | json_str id
	echo
done >"$T/burst.ids"
[ "$(wc -l <"$T/burst.ids")" = 12 ] || fail "burst tasks: $(cat "$T/burst.ids")"
agent GET "/v1/tasks?wait=0" >"$T/burst.poll"
pids=()
while read -r id; do
	grep -q "$id" "$T/burst.poll" || fail "task $id not handed out: $(cat "$T/burst.poll")"
	agent POST "/v1/tasks/$id" -d '{"state": "done", "result": {"n": 1}}' >"$T/burst.$id" &
	pids+=("$!")
done <"$T/burst.ids"
for p in "${pids[@]}"; do wait "$p" || fail "a report got no answer"; done
while read -r id; do
	expect_contains "$(cat "$T/burst.$id")" '"cancel":false'
	expect_contains "$(api GET "/api/v1/tasks/$id")" '"state":"done"'
done <"$T/burst.ids"
expect_contains "$(agent POST /v1/tasks/00000000-0000-4000-8000-000000000000 -d '{"state": "running"}')" '"code":"not_found"'
pass "12 reports at once: each answered 200 and recorded; an unknown task 404"
