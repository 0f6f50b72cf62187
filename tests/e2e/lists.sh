#!/bin/bash
# List endpoints: keyset pages with an opaque cursor cover every row once,
# even when rows arrive while a client pages; filters (labels, time
# ranges, rule, level, agent, text) and sorting; a bad limit, sort,
# cursor or parameter gets 400 with "field" naming it.
. "$(dirname "$0")/lib.sh"

standard_center
TOKEN=$(new_token --uses 2 --label site=berlin)
export VIGIL_MACHINE_ID_FILE
VIGIL_MACHINE_ID_FILE=$(machine_id l1)
"$AGENT" enroll --server "https://127.0.0.1:$GW" --token "$TOKEN" \
	--ca "$PKI/ca.crt" --data-dir "$T/a" >/dev/null 2>&1 || fail enroll
AID=$("$CTL" --json agent list | sed -nE 's/.*"id": "([0-9a-f-]{36})".*/\1/p' | head -1)
[ -n "$AID" ] || fail "no agent"

agent() { # agent METHOD PATH [curl args]
	local m=$1 p=$2
	shift 2
	curl -sS --cacert "$PKI/ca.crt" --cert "$T/a/agent.crt" --key "$T/a/agent.key" \
		-X "$m" "https://127.0.0.1:$GW$p" "$@"
}
cursor_of() { sed -nE 's/.*"next_cursor":"([0-9a-f]+)".*/\1/p'; }
seqs_of() { grep -oE '"seq":[0-9]+' | cut -d: -f2; }

# 25 events: times 1795000001.., odd ones alerts of rule r_odd.
events() { # events FIRST LAST
	local i sep="" b='{"events": ['
	for i in $(seq "$1" "$2"); do
		if [ $((i % 2)) -eq 1 ]; then
			b="$b$sep{\"seq\": $i, \"time\": $((1795000000 + i)), \"type\": \"finding\", \"level\": \"alert\", \"data\": {\"path\": \"/tmp/f$i\", \"rule\": \"r_odd\"}}"
		else
			b="$b$sep{\"seq\": $i, \"time\": $((1795000000 + i)), \"type\": \"finding\", \"level\": \"notice\", \"data\": {\"path\": \"/tmp/f$i\", \"rule\": \"r_even\"}}"
		fi
		sep=", "
	done
	agent POST /v1/events -d "$b]}" >/dev/null
}
events 1 25

# Page by 7 in ascending agent time; 5 more events arrive after page one.
all=""
out=$(api GET "/api/v1/events?agent=$AID&sort=time&limit=7")
all="$all $(seqs_of <<<"$out")"
c=$(cursor_of <<<"$out")
events 26 30
pages=1
while [ -n "$c" ]; do
	out=$(api GET "/api/v1/events?agent=$AID&sort=time&limit=7&cursor=$c")
	all="$all $(seqs_of <<<"$out")"
	c=$(cursor_of <<<"$out")
	pages=$((pages + 1))
	[ $pages -le 10 ] || fail "paging does not end"
done
got=$(tr ' ' '\n' <<<"$all" | grep . | tr '\n' ' ')
[ "$got" = "$(seq 1 30 | tr '\n' ' ')" ] || fail "pages: $got"
[ $pages -eq 5 ] || fail "30 events in pages of 7: $pages pages"
pass "events: keyset pages in order, each row once, rows added meanwhile included"

# Descending default (newest received first) reaches every row once too.
all=""
c=""
for i in $(seq 1 10); do
	out=$(api GET "/api/v1/events?agent=$AID&limit=4${c:+&cursor=$c}")
	all="$all $(seqs_of <<<"$out")"
	c=$(cursor_of <<<"$out")
	[ -n "$c" ] || break
done
n=$(tr ' ' '\n' <<<"$all" | grep -c . || true)
u=$(tr ' ' '\n' <<<"$all" | grep . | sort -u | wc -l)
[ "$n" -eq 30 ] && [ "$u" -eq 30 ] || fail "default order: $n rows, $u unique"
pass "events: default order pages every row once"

# Filters.
out=$(api GET "/api/v1/events?rule=r_odd&limit=100")
[ "$(seqs_of <<<"$out" | wc -l)" -eq 15 ] || fail "rule filter: $out"
grep -q '"r_even"' <<<"$out" && fail "rule filter let r_even through"
out=$(api GET "/api/v1/events?level=notice&time_from=1795000010&time_to=1795000020")
[ "$(seqs_of <<<"$out" | sort -n | tr '\n' ' ')" = "10 12 14 16 18 " ] ||
	fail "level + time range: $(seqs_of <<<"$out" | tr '\n' ' ')"
out=$(api GET "/api/v1/events?q=/tmp/f17%22&agent=$AID")
[ "$(seqs_of <<<"$out")" = 17 ] || fail "text search: $out"
out=$("$CTL" --json events --type finding --limit 3)
[ "$(seqs_of <<<"$(tr -d ' \n' <<<"$out")" | wc -l)" -eq 3 ] || fail "vigilctl events --limit"
out=$("$CTL" --json events --rule r_odd --limit 100 | tr -d ' \n')
[ "$(seqs_of <<<"$out" | wc -l)" -eq 15 ] || fail "vigilctl events --rule"
pass "events: rule, level, time range, agent and text filters"

# Agents: labels, status, time ranges, sort.
out=$(api GET "/api/v1/agents?label=site=berlin")
expect_contains "$out" "\"id\":\"$AID\""
out=$(api GET "/api/v1/agents?label=site=paris")
expect_contains "$out" '"items":[]'
out=$(api GET "/api/v1/agents?status=active&sort=-last_seen&enrolled_at_from=1")
expect_contains "$out" "\"id\":\"$AID\""
expect_contains "$(api GET "/api/v1/agents?last_seen_from=1")" '"items":[]'
"$AGENT" run --once --data-dir "$T/a" >/dev/null 2>&1 || fail "agent run"
expect_contains "$(api GET "/api/v1/agents?last_seen_from=1")" "\"id\":\"$AID\""
expect_contains "$(api GET "/api/v1/agents?status=revoked")" '"items":[]'
"$CTL" agent list --label site=berlin | grep -q "$AID" || fail "agent list --label"
"$CTL" agent list --label site=paris | grep -q "$AID" && fail "agent list --label matched another site"
"$CTL" agent list --search "${AID:0:8}" | grep -q "$AID" || fail "agent list --search"
pass "agents: label, status, last_seen / enrolled_at ranges, sort"

# Tasks by agent and paging.
for i in 1 2 3; do
	api POST /api/v1/tasks -d "{\"kind\": \"inventory\", \"target\": {\"agent\": \"$AID\"}}" >/dev/null
done
out=$(api GET "/api/v1/tasks?agent=$AID&limit=2")
[ "$(grep -oE '"kind":"inventory"' <<<"$out" | wc -l)" -eq 2 ] || fail "tasks page: $out"
c=$(cursor_of <<<"$out")
[ -n "$c" ] || fail "tasks: no next_cursor"
out=$(api GET "/api/v1/tasks?agent=$AID&limit=2&cursor=$c")
[ "$(grep -oE '"kind":"inventory"' <<<"$out" | wc -l)" -eq 1 ] || fail "tasks page 2: $out"
expect_contains "$out" '"next_cursor":null'
expect_contains "$(api GET "/api/v1/tasks?agent=nobody")" '"items":[]'
pass "tasks: filter by agent, pages"

expect_contains "$(api GET "/api/v1/samples?limit=5")" '"items":[]'

# Tokens, enrollment requests and notices are lists too.
new_token --uses 1 --label team=red >/dev/null
new_token --uses 1 --label team=blue >/dev/null
out=$(api GET "/api/v1/tokens?limit=1")
[ "$(grep -oE '"id":"tok_' <<<"$out" | wc -l)" -eq 1 ] || fail "tokens limit=1: $out"
expect_contains "$out" '"next_cursor":"'
out=$(api GET "/api/v1/tokens?label=team=blue")
expect_contains "$out" '"team":"blue"'
grep -q '"team":"red"' <<<"$out" && fail "token label filter"
expect_contains "$(api GET /api/v1/enrollments)" '"items":[]'
expect_contains "$(api GET "/api/v1/enrollments?status=approved&sort=-created_at")" '"items":['
expect_contains "$(api GET "/api/v1/notices?kind=clone_detected")" '"items":[]'
api POST /api/v1/rules -d '{"name": "r1", "kind": "ioc", "content": "sha256;0000000000000000000000000000000000000000000000000000000000000000;80;x\n"}' >/dev/null
expect_contains "$(api GET "/api/v1/rules?kind=ioc")" '"name":"r1"'
expect_contains "$(api GET "/api/v1/rules?kind=yara")" '"items":[]'
pass "tokens, enrollments, notices and rule sets page and filter"

# Bad parameters: 400 naming the field, never a 500.
bad() { # bad PATH FIELD
	local code
	code=$(api GET "$1" -o "$T/bad.json" -w '%{http_code}')
	[ "$code" = 400 ] || fail "$1: status $code: $(cat "$T/bad.json")"
	expect_contains "$(cat "$T/bad.json")" "\"field\":\"$2\""
}
bad "/api/v1/events?limit=0" limit
bad "/api/v1/events?limit=10001" limit
bad "/api/v1/agents?limit=1001" limit
bad "/api/v1/audit?limit=abc" limit
bad "/api/v1/tasks?sort=params" sort
bad "/api/v1/events?sort=-nothing" sort
bad "/api/v1/events?cursor=zz" cursor
bad "/api/v1/events?cursor=7b7d" cursor
c=$(api GET "/api/v1/events?sort=time&limit=1" | cursor_of)
bad "/api/v1/events?sort=-time&cursor=$c" cursor
bad "/api/v1/agents?colour=red" colour
bad "/api/v1/agents?label=nolabel" label
bad "/api/v1/agents?state=asleep" state
bad "/api/v1/events?time_from=yesterday" time_from
bad "/api/v1/events?rule=a%20b" rule
bad "/api/v1/samples?size=1" size
bad "/api/v1/enrollments?status=maybe" status
bad "/api/v1/tokens?sort=uses" sort
bad "/api/v1/notices?time_from=x" time_from
bad "/api/v1/rules?sort=size" sort
bad "/api/v1/templates?kind=scan" kind
bad "/api/v1/schedules?limit=-1" limit
pass "bad limit, sort, cursor and parameters: 400 naming the field"

# Keyset paging over NULLs and ties: 60 agents written into the store with
# missing and repeated host names, OS and last_seen; for every sort field,
# both directions, pages of 7 return each agent exactly once, in the order
# the store gives for (sort value with NULL as ''/0, id).
stop_center
db "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL
	SELECT i + 1 FROM c WHERE i < 60)
	INSERT INTO agents (id, status, hostname, os, labels, enrolled_at,
	last_seen) SELECT '00000000-0000-0000-0000-' ||
	substr(CAST(1000000000000 + i AS TEXT), 2),
	CASE WHEN i % 5 = 0 THEN 'revoked' ELSE 'active' END,
	CASE WHEN i % 4 = 0 THEN NULL ELSE 'host' || (i % 6) END,
	CASE WHEN i % 3 = 0 THEN NULL ELSE 'os' || (i % 2) END, '{}',
	1795000000 + (i % 7), CASE WHEN i % 2 = 0 THEN NULL ELSE 1795000000 + (i % 9) END
	FROM c"
start_center "$T/vigild.conf" "$DATA"
for sort in id hostname os status last_seen enrolled_at; do
	case $sort in
	hostname | os) key="COALESCE($sort, '')" ;;
	last_seen) key="COALESCE($sort, 0)" ;;
	*) key=$sort ;;
	esac
	for dir in "" "-"; do
		order=ASC
		[ -n "$dir" ] && order=DESC
		want=$(db "SELECT id FROM agents ORDER BY $key $order, id $order" | tr '\n' ' ')
		got=""
		c=""
		for i in $(seq 1 20); do
			out=$(api GET "/api/v1/agents?sort=$dir$sort&limit=7${c:+&cursor=$c}")
			got="$got$(grep -oE '"id":"[0-9a-f-]{36}"' <<<"$out" | cut -d'"' -f4 | tr '\n' ' ')"
			c=$(cursor_of <<<"$out")
			[ -n "$c" ] || break
		done
		[ "$got" = "$want" ] || fail "sort=$dir$sort: pages differ from the full order
got:  $got
want: $want"
	done
done
pass "keyset pages over NULLs and ties: every agent once, in order, for every sort"

# The state filter (online, offline, revoked) is part of the query: every
# page holds `limit` matching agents (it was applied to each page after
# the fact, so a page could come back empty with more matches behind it).
# Two agents are seen "now" (an hour ahead, so the test cannot age them);
# the enrolled agent an hour ago (else its last request, seconds ago,
# could turn offline between the store's answer below and the API's).
db "UPDATE agents SET last_seen = $(($(date +%s) + 3600)) WHERE id IN
	('00000000-0000-0000-0000-000000000057', '00000000-0000-0000-0000-000000000059')"
db "UPDATE agents SET last_seen = $(($(date +%s) - 3600)) WHERE id = '$AID'"
ids_of() { grep -oE '"id":"[0-9a-f-]{36}"' | cut -d'"' -f4 | tr '\n' ' ' || true; }
walk() { # walk QUERY LIMIT: the ids of every page, in order
	local c="" out ids="" i
	for i in $(seq 1 100); do
		out=$(api GET "/api/v1/agents?$1&sort=id&limit=$2${c:+&cursor=$c}")
		ids="$ids$(ids_of <<<"$out")"
		c=$(cursor_of <<<"$out")
		[ -n "$c" ] || break
	done
	echo "$ids"
}
first=$(api GET "/api/v1/agents?state=revoked&sort=id&limit=2" | ids_of)
[ "$first" = "00000000-0000-0000-0000-000000000005 00000000-0000-0000-0000-000000000010 " ] ||
	fail "state=revoked, limit 2: first page '$first'"
NOW=$(date +%s)
for state in revoked online offline; do
	case $state in
	revoked) where="status = 'revoked'" ;;
	online) where="status = 'active' AND last_seen >= $NOW - 6" ;;
	offline) where="status = 'active' AND (last_seen IS NULL OR last_seen < $NOW - 6)" ;;
	esac
	want=$(db "SELECT id FROM agents WHERE $where ORDER BY id" | tr '\n' ' ')
	[ -n "$want" ] || fail "no $state agent in the store"
	got=$(walk "state=$state" 3)
	[ "$got" = "$want" ] || fail "state=$state: pages differ
got:  $got
want: $want"
done
pass "state filters: full pages of matching agents only (revoked, online, offline)"
