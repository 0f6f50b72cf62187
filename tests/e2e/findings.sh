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
out=$(api POST /api/v1/tasks -d '{"kind": "inventory", "target": {"labels": {"site": "hamburg"}}}')
expect_contains "$out" '"agents":1'
out=$(api POST /api/v1/tasks -d '{"kind": "inventory", "target": {"labels": {"site": "berlin"}}}')
expect_contains "$out" "matches no"
expect_contains "$(api GET "/api/v1/agents?label=site=hamburg")" "$AID"
pass "a relabelled agent is found by its new labels, not its old ones"

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
now=$(date +%s)
out=$(agent POST /v1/events -d "{\"events\": [
 {\"seq\": 1, \"time\": $now, \"type\": \"finding\", \"level\": \"alert\",
  \"data\": {\"path\": \"/tmp/evil.bin\", \"rule\": \"eicar\", \"score\": 100}},
 {\"seq\": 2, \"time\": $now, \"type\": \"finding\", \"level\": \"warning\",
  \"data\": {\"path\": \"/tmp/odd.sh\", \"rule\": \"suspicious_shell\", \"score\": 60}},
 {\"seq\": 3, \"time\": $now, \"type\": \"inventory\", \"level\": \"info\",
  \"data\": {\"packages\": 3}}]}")
expect_contains "$out" '"stored":3'

out=$(api GET /api/v1/findings)
expect_contains "$out" '"seq":1'
expect_contains "$out" '"seq":2'
grep -q '"seq":3' <<<"$out" && fail "an inventory event listed as a finding: $out"
[ "$(grep -o '"status":"new"' <<<"$out" | wc -l)" = 2 ] || fail "not both new: $out"
pass "findings listed, each new"

# An analyst triages; a readonly key may not.
for role in analyst readonly; do
	"$CTL" --json key create --role $role --label "f-$role" >"$T/k" || fail "key"
	declare "KEY_$role=$(sed -nE 's/.*"key": *"([^"]+)".*/\1/p' "$T/k")"
done
out=$(VIGIL_API_KEY=$KEY_analyst "$CTL" findings set "$AID" 1 acknowledged \
	--comment "looking into it") || fail "findings set: $out"
expect_contains "$out" "finding $AID/1: acknowledged"
rc=0
out=$(VIGIL_API_KEY=$KEY_readonly "$CTL" findings set "$AID" 2 resolved 2>&1) || rc=$?
[ $rc -ne 0 ] || fail "readonly set a finding: $out"
expect_contains "$out" "needs the analyst role"
out=$("$CTL" findings list --status acknowledged)
expect_contains "$out" "STATUS"
expect_contains "$out" "acknowledged"
expect_contains "$out" "rule=eicar"
grep -q suspicious_shell <<<"$out" && fail "status filter ignored: $out"
out=$("$CTL" --json findings list --status new)
expect_contains "$out" '"seq": 2'
grep -q '"seq": 1' <<<"$out" && fail "acknowledged finding listed as new: $out"
out=$("$CTL" --json findings list --agent "$AID" --query "looking into")
expect_contains "$out" '"comment": "looking into it"'
expect_contains "$out" "\"triaged_by\": \"key:"
pass "an analyst sets state and comment; lists filter by state and text"

out=$("$CTL" --json findings set "$AID" 1 resolved) || fail "set resolved: $out"
expect_contains "$out" '"status": "resolved"'
expect_contains "$out" '"comment": null'
out=$(api GET "/api/v1/audit?action=finding.update&sort=id")
expect_contains "$out" "\"target\":\"$AID/1\""
expect_contains "$out" '"before":{"status":"new"}'
expect_contains "$out" '"before":{"comment":"looking into it","status":"acknowledged"'
pass "triage changes audited with the state before"

expect_contains "$(api GET "/api/v1/findings?rule=suspicious_shell")" '"seq":2'
out=$(api GET "/api/v1/findings?level=alert&status=resolved")
expect_contains "$out" '"seq":1'
grep -q '"seq":2' <<<"$out" && fail "level filter ignored: $out"
expect_contains "$(api GET "/api/v1/findings?received_at_from=$((now + 3600))")" '"items":[]'
p1=$(api GET "/api/v1/findings?limit=1&sort=-received_at")
cur=$(sed -nE 's/.*"next_cursor":"([^"]+)".*/\1/p' <<<"$p1")
[ -n "$cur" ] || fail "no next page: $p1"
p2=$(api GET "/api/v1/findings?limit=1&sort=-received_at&cursor=$cur")
seq1=$(sed -nE 's/.*"seq":([0-9]+).*/\1/p' <<<"$p1")
seq2=$(sed -nE 's/.*"seq":([0-9]+).*/\1/p' <<<"$p2")
[ "$seq1$seq2" = 12 ] || [ "$seq1$seq2" = 21 ] || fail "pages: $p1 / $p2"
expect_contains "$p2" '"next_cursor":null'
pass "findings filter by rule, level, time and page by cursor"

# Refusals: not a finding, unknown, bad state, bad body; never a 500.
for c in "$AID/3 acknowledged 404" "$AID/99 acknowledged 404" \
	"nope/1 acknowledged 404" "$AID/x acknowledged 404" \
	"$AID/2 closed 400"; do
	set -- $c
	code=$(api PUT "/api/v1/findings/$1" -o "$T/o" -w '%{http_code}' \
		-d "{\"status\": \"$2\"}")
	[ "$code" = "$3" ] || fail "PUT $1 $2: $code, want $3: $(cat "$T/o")"
done
code=$(api PUT "/api/v1/findings/$AID/2" -o "$T/o" -w '%{http_code}' \
	-d '{"status": "resolved", "comment": 7}')
[ "$code" = 400 ] && grep -q '"field":"comment"' "$T/o" || fail "comment 7: $code $(cat "$T/o")"
code=$(api GET "/api/v1/findings?status=closed" -o "$T/o" -w '%{http_code}')
[ "$code" = 400 ] && grep -q '"field":"status"' "$T/o" || fail "status=closed: $code"
expect_contains "$(api GET "/api/v1/findings?status=new")" '"status":"new"'
"$CTL" findings set "$AID" 2 closed >/dev/null 2>&1 && fail "vigilctl accepted state closed"
pass "bad findings, states and bodies refused"
