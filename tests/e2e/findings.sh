#!/bin/bash
# Agent labels and findings triage. An operator relabels an enrolled agent
# (vigilctl agent label): a task aimed at the new label reaches it, one at
# the old label matches nothing, bad labels are refused naming the field,
# and the change is audited with the labels before. Findings (events of
# type finding, posted through the gateway with the agent's certificate)
# are listed with triage state new; an analyst sets a state and comment
# (vigilctl findings set), the list filters by state, rule, level and
# text and pages; other events are no findings; unknown findings, bad
# states and a readonly key are refused; each change is audited with the
# state before.
. "$(dirname "$0")/lib.sh"

standard_center
TOKEN=$(new_token --uses 1 --label site=berlin)
VIGIL_MACHINE_ID_FILE=$(machine_id f1) "$AGENT" enroll \
	--server "https://127.0.0.1:$GW" --token "$TOKEN" --ca "$PKI/ca.crt" \
	--data-dir "$T/a" >"$T/enroll.log" 2>&1 || fail "enroll: $(cat "$T/enroll.log")"
AID=$("$CTL" --json agent list | sed -nE 's/.*"id": "([0-9a-f-]{36})".*/\1/p' | head -1)
[ -n "$AID" ] || fail "no agent"

# --- labels ---------------------------------------------------------------
out=$("$CTL" agent label "$AID" site=hamburg role=web) || fail "agent label: $out"
expect_contains "$out" "labels of agent $AID:"
expect_contains "$out" "site=hamburg"
expect_contains "$(api GET "/api/v1/agents/$AID")" '"labels":{"role":"web","site":"hamburg"}'
out=$(api POST /api/v1/tasks -d '{"kind": "inventory", "target": {"labels": {"site": "berlin"}}}')
expect_contains "$out" "matches no"
expect_contains "$(api GET "/api/v1/agents?label=site=hamburg")" "$AID"
grep -q "$AID" <<<"$(api GET "/api/v1/agents?label=site=berlin")" &&
	fail "agent still listed under its old label"

# A real scan aimed at the new label runs on the agent and finds a file.
VIGIL_MACHINE_ID_FILE=$T/machine-id-f1 "$AGENT" run --data-dir "$T/a" \
	>"$T/agent.log" 2>&1 &
PIDS+=("$!")
mkdir -p "$T/scan"
printf 'x VIGIL-FINDINGS-MARKER x\n' >"$T/scan/hit.txt"
printf 'rule vigil_findings_marker { meta: score = 85 strings: $m = "VIGIL-FINDINGS-MARKER" condition: $m }\n' >"$T/m.yar"
"$CTL" rules add marker "$T/m.yar" >/dev/null || fail "rules add"
out=$("$CTL" task create scan --target site=hamburg --path "$T/scan" --timeout 5m)
TID=$(sed -nE 's/^created task ([0-9a-f-]{36}) .*/\1/p' <<<"$out")
[ -n "$TID" ] || fail "task create: $out"
timeout 60 "$CTL" task watch "$TID" --interval 1 >"$T/watch.log" 2>&1 ||
	fail "scan did not finish: $(cat "$T/watch.log")"
for i in $(seq 1 50); do
	out=$(api GET "/api/v1/findings?task=$TID")
	grep -q '"seq"' <<<"$out" && break
	sleep 0.2
done
FSEQ=$(sed -nE 's/.*"seq":([0-9]+).*/\1/p' <<<"$out" | head -1)
[ -n "$FSEQ" ] || fail "no finding of the scan: $out"
expect_contains "$out" "hit.txt"
expect_contains "$out" '"status":"new"'
pass "a relabelled agent is reached by its new labels (a real scan ran), not its old ones"

out=$("$CTL" --json agent label "$AID" --remove role) || fail "label --remove: $out"
expect_contains "$(api GET "/api/v1/agents/$AID")" '"labels":{"site":"hamburg"}'
out=$("$CTL" --json agent label "$AID" --replace zone=dmz) || fail "label --replace: $out"
expect_contains "$(api GET "/api/v1/agents/$AID")" '"labels":{"zone":"dmz"}'
pass "labels removed and replaced"

code=$(api PUT "/api/v1/agents/$AID/labels" -o "$T/o" -w '%{http_code}' \
	-d '{"labels": {"a b": "c"}}')
[ "$code" = 400 ] || fail "bad label key: $code $(cat "$T/o")"
expect_contains "$(cat "$T/o")" '"field":"labels"'
code=$(api PUT "/api/v1/agents/$AID/labels" -o "$T/o" -w '%{http_code}' \
	-d '{"labels": {"k": 5}}')
[ "$code" = 400 ] || fail "non-string label: $code $(cat "$T/o")"
code=$(api PUT /api/v1/agents/nope/labels -o "$T/o" -w '%{http_code}' \
	-d '{"labels": {}}')
[ "$code" = 404 ] || fail "unknown agent: $code $(cat "$T/o")"
"$CTL" agent label "$AID" novalue >/dev/null 2>&1 && fail "label without '=' accepted"
expect_contains "$(api GET "/api/v1/agents/$AID")" '"labels":{"zone":"dmz"}'
pass "bad labels and unknown agents refused; labels unchanged"

out=$(api GET "/api/v1/audit?action=agent.labels&status=200&sort=id")
expect_contains "$out" "\"target\":\"$AID\""
expect_contains "$out" '"before":{"id":"'"$AID"'","labels":{"site":"berlin"}}'
pass "label changes audited with the labels before"

# --- findings -------------------------------------------------------------
agent() { # agent METHOD PATH [curl args]
	local m=$1 p=$2
	shift 2
	curl -sS --cacert "$PKI/ca.crt" --cert "$T/a/agent.crt" \
		--key "$T/a/agent.key" -X "$m" "https://127.0.0.1:$GW$p" "$@"
}
# Findings as other agents' scans report them (sequence numbers far above
# the running agent's own).
now=$(date +%s)
out=$(agent POST /v1/events -d "{\"events\": [
 {\"seq\": 1001, \"time\": $now, \"type\": \"finding\", \"level\": \"alert\",
  \"data\": {\"path\": \"/tmp/evil.bin\", \"rule\": \"eicar\", \"score\": 100}},
 {\"seq\": 1002, \"time\": $now, \"type\": \"finding\", \"level\": \"warning\",
  \"data\": {\"path\": \"/tmp/odd.sh\", \"rule\": \"suspicious_shell\", \"score\": 60}},
 {\"seq\": 1003, \"time\": $now, \"type\": \"inventory\", \"level\": \"info\",
  \"data\": {\"packages\": 3}}]}")
expect_contains "$out" '"stored":3'

out=$(api GET /api/v1/findings)
expect_contains "$out" '"seq":1001,'
expect_contains "$out" '"seq":1002,'
grep -q '"seq":1003,' <<<"$out" && fail "an inventory event listed as a finding: $out"
[ "$(grep -o '"status":"new"' <<<"$out" | wc -l)" = 3 ] || fail "not all new: $out"
pass "findings (the scan's and the posted ones) listed, each new"

# An analyst triages; a readonly key may not.
for role in analyst readonly; do
	"$CTL" --json key create --role $role --label "f-$role" >"$T/k" || fail "key"
	declare "KEY_$role=$(sed -nE 's/.*"key": *"([^"]+)".*/\1/p' "$T/k")"
done
out=$(VIGIL_API_KEY=$KEY_analyst "$CTL" findings set "$AID" "$FSEQ" acknowledged \
	--comment "looking into it") || fail "findings set: $out"
expect_contains "$out" "finding $AID/$FSEQ: acknowledged"
rc=0
out=$(VIGIL_API_KEY=$KEY_readonly "$CTL" findings set "$AID" 1002 resolved 2>&1) || rc=$?
[ $rc -ne 0 ] || fail "readonly set a finding: $out"
expect_contains "$out" "needs the analyst role"
out=$("$CTL" findings list --status acknowledged)
expect_contains "$out" "STATUS"
expect_contains "$out" "acknowledged"
expect_contains "$out" "hit.txt"
grep -q suspicious_shell <<<"$out" && fail "status filter ignored: $out"
out=$("$CTL" --json findings list --status new)
expect_contains "$out" '"seq": 1001,'
expect_contains "$out" '"seq": 1002,'
grep -q "\"seq\": $FSEQ," <<<"$out" && fail "acknowledged finding listed as new: $out"
out=$("$CTL" --json findings list --agent "$AID" --query "looking into")
expect_contains "$out" '"comment": "looking into it"'
expect_contains "$out" "\"triaged_by\": \"key:"
expect_contains "$out" "\"task_id\": \"$TID\""
pass "an analyst sets state and comment; lists filter by state and text"

out=$("$CTL" --json findings set "$AID" "$FSEQ" resolved) || fail "set resolved: $out"
expect_contains "$out" '"status": "resolved"'
expect_contains "$out" '"comment": null'
out=$(api GET "/api/v1/audit?action=finding.update&sort=id")
expect_contains "$out" "\"target\":\"$AID/$FSEQ\""
expect_contains "$out" '"before":{"status":"new"}'
expect_contains "$out" '"before":{"comment":"looking into it","status":"acknowledged"'
pass "triage changes audited with the state before"

out=$(api GET "/api/v1/findings?rule=suspicious_shell")
expect_contains "$out" '"seq":1002,'
grep -q '"seq":1001,' <<<"$out" && fail "rule filter ignored: $out"
out=$(api GET "/api/v1/findings?level=alert&status=new")
expect_contains "$out" '"seq":1001,'
grep -q '"seq":1002,' <<<"$out" && fail "level filter ignored: $out"
expect_contains "$(api GET "/api/v1/findings?received_at_from=$((now + 3600))")" '"items":[]'
out=$(api GET "/api/v1/findings?rule=vigil_findings_marker")
expect_contains "$out" "\"seq\":$FSEQ,"
grep -q '"seq":1001,' <<<"$out" && fail "rule filter matched another rule: $out"
expect_contains "$(api GET "/api/v1/findings?rule=vigil%25findings_marker")" '"items":[]'
expect_contains "$(api GET "/api/v1/findings?rule=vigil_findings")" '"items":[]'
seen="" cur="" pages=0
while :; do
	p=$(api GET "/api/v1/findings?limit=1&sort=-received_at${cur:+&cursor=$cur}")
	seen="$seen $(sed -nE 's/.*"seq":([0-9]+).*/\1/p' <<<"$p")"
	pages=$((pages + 1))
	cur=$(sed -nE 's/.*"next_cursor":"([^"]+)".*/\1/p' <<<"$p")
	[ -n "$cur" ] && [ $pages -lt 10 ] || break
done
[ "$(tr ' ' '\n' <<<"$seen" | grep -c .)" = 3 ] && [ $pages = 3 ] ||
	fail "paged by one: '$seen' over $pages pages"
for q in 1001 1002 "$FSEQ"; do
	grep -qw "$q" <<<"$seen" || fail "paging skipped $q: '$seen'"
done
pass "findings filter by rule, level, time and page by cursor"

# The histogram (the dashboard's chart): counts by level per bucket, as
# the store holds them (three buckets of 20 s, the newest finding in the
# last); an empty window; bad parameters name themselves.
M=$(db "SELECT MAX(received_at) FROM events WHERE type = 'finding'")
from=$((M - 50)) to=$((M + 10))
h=$(api GET "/api/v1/findings/histogram?received_at_from=$from&received_at_to=$to&buckets=3")
in_window() { # in_window LEVEL_CONDITION FROM TO
	db "SELECT COUNT(*) FROM events WHERE type = 'finding' AND $1 AND received_at >= $2 AND received_at < $3"
}
for lvl in alert warning; do
	want="[$(in_window "level = '$lvl'" "$from" $((M - 30))),$(in_window "level = '$lvl'" $((M - 30)) $((M - 10))),$(in_window "level = '$lvl'" $((M - 10)) "$to")]"
	expect_contains "$h" "\"$lvl\":$want"
done
expect_contains "$h" "\"total\":$(in_window "1 = 1" "$from" "$to")"
expect_contains "$h" "\"from\":$from,\"to\":$to,\"step\":20,\"buckets\":3"
[ "$(in_window "1 = 1" $((M - 10)) "$to")" -ge 1 ] || fail "no finding in the last bucket"
h=$(api GET "/api/v1/findings/histogram?received_at_from=$((now + 3600))&received_at_to=$((now + 7200))")
expect_contains "$h" '"total":0,"levels":{}'
for bad in "buckets=0 buckets" "buckets=1001 buckets" "received_at_from=x received_at_from" \
	"received_at_from=$now&received_at_to=$now received_at_from"; do
	set -- $bad
	code=$(api GET "/api/v1/findings/histogram?$1" -o "$T/o" -w '%{http_code}')
	[ "$code" = 400 ] && grep -q "\"field\":\"$2\"" "$T/o" || fail "histogram $1: $code $(cat "$T/o")"
done
# Past 16 levels (written straight into the store; the gateway accepts
# four), the rest count as "other".
db "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 20)
	INSERT INTO events (agent_id, seq, time, received_at, type, level, data)
	SELECT 'hist-agent', i, 1000 + i, 1000 + i, 'finding', 'lvl' || i, '{}' FROM c"
h=$(api GET "/api/v1/findings/histogram?received_at_from=1000&received_at_to=1100&buckets=1")
expect_contains "$h" '"total":20,'
expect_contains "$h" '"lvl16":[1],"other":[4]}'
pass "findings histogram: counts by level and bucket as stored; bad parameters refused"

# Refusals: not a finding, unknown, bad state, bad body; never a 500.
for c in "$AID/1003 acknowledged 404" "$AID/99999 acknowledged 404" \
	"nope/1001 acknowledged 404" "$AID/x acknowledged 404" \
	"$AID/1002 closed 400"; do
	set -- $c
	code=$(api PUT "/api/v1/findings/$1" -o "$T/o" -w '%{http_code}' \
		-d "{\"status\": \"$2\"}")
	[ "$code" = "$3" ] || fail "PUT $1 $2: $code, want $3: $(cat "$T/o")"
done
code=$(api PUT "/api/v1/findings/$AID/1002" -o "$T/o" -w '%{http_code}' \
	-d '{"status": "resolved", "comment": 7}')
[ "$code" = 400 ] && grep -q '"field":"comment"' "$T/o" || fail "comment 7: $code $(cat "$T/o")"
code=$(api GET "/api/v1/findings?status=closed" -o "$T/o" -w '%{http_code}')
[ "$code" = 400 ] && grep -q '"field":"status"' "$T/o" || fail "status=closed: $code"
"$CTL" findings set "$AID" 1002 closed >/dev/null 2>&1 && fail "vigilctl accepted state closed"
expect_contains "$(api GET "/api/v1/findings?status=new")" '"seq":1002,'
pass "bad findings, states and bodies refused; nothing changed"
