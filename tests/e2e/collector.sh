#!/bin/bash
# The analysis collector (docs/collector.md): two centers, each with a
# real enrolled agent posting findings through its gateway, forward to one
# collector (a vigild with [center] role = collector) over mutual TLS with
# their role certificates. Findings from both arrive exactly once across a
# collector restart and a center restart; the same rule firing on 50 hosts
# forms one case (50 findings from 50 agent ids written into center A's
# events table with sqlite3: the forwarder reads that table whatever
# stored the rows, and 50 enrollments would cost the test's budget); a
# baseline suppresses the next occurrence, audited; search spans both
# centers; a certificate of another role is refused on the feed port, by
# the collector and, for a target's own certificate, by the center.
. "$(dirname "$0")/lib.sh"

PKI=$T/pki
make_pki "$PKI"
"$CTL" pki issue --dir "$PKI" --role collector --name coll.vigil.test \
	--san 127.0.0.1 >/dev/null || fail "issue collector certificate"
"$CTL" pki issue --dir "$PKI" --role center --name a.vigil.test >/dev/null ||
	fail "issue center a certificate"
"$CTL" pki issue --dir "$PKI" --role center --name b.vigil.test >/dev/null ||
	fail "issue center b certificate"
"$CTL" pki issue --dir "$PKI" --role scand --name scand.vigil.test >/dev/null ||
	fail "issue scand certificate"

# start_node NAME CONF DATA: vigild -d; NAME_PID, NAME_GW, NAME_ADM and
# NAME_KEY from its ports file and admin key.
start_node() {
	local name=$1 conf=$2 data=$3 pid
	rm -f "$data/vigild.ports"
	"$VIGILD" -d -c "$conf" >>"$T/$name.log" 2>&1 &
	pid=$!
	PIDS+=("$pid")
	eval "${name}_PID=$pid"
	wait_for 10 "$name to start" test -s "$data/vigild.ports"
	eval "${name}_GW=$(sed -E 's/.*"gateway": ([0-9]+).*/\1/' "$data/vigild.ports")"
	eval "${name}_ADM=$(sed -E 's/.*"admin": ([0-9]+).*/\1/' "$data/vigild.ports")"
	eval "${name}_COLL=$(sed -E 's/.*"collector": ([0-9]+).*/\1/' "$data/vigild.ports")"
	eval "${name}_KEY=$(cat "$data/admin.key")"
	if [ "$VIGIL_STORE" = pg ] && [ "$name" = COLL ]; then
		grep -q "store: PostgreSQL" "$T/$name.log" || fail "$name is not on PostgreSQL"
	fi
}

stop_node() {
	local pid
	eval "pid=\$${1}_PID"
	kill -TERM "$pid"
	wait "$pid" || true
}

# on NAME CMD...: runs vigilctl against node NAME.
on() {
	local name=$1 adm key
	shift
	eval "adm=\$${name}_ADM key=\$${name}_KEY"
	VIGIL_SERVER="https://127.0.0.1:$adm" VIGIL_CA="$PKI/ca.crt" \
		VIGIL_API_KEY="$key" "$CTL" "$@"
}

# The collector on the store under test (VIGIL_STORE=pg: PostgreSQL);
# the centers on SQLite, their own databases.
write_conf "$T/coll.conf" "$PKI" "$T/coll" "role = collector"
cat >>"$T/coll.conf" <<EOF
[collector]
listen = 127.0.0.1
port = 0
cert_file = $PKI/collector-coll.vigil.test.crt
key_file = $PKI/collector-coll.vigil.test.key
EOF
VIGIL_STORE=sqlite write_conf "$T/a.conf" "$PKI" "$T/a"
VIGIL_STORE=sqlite write_conf "$T/b.conf" "$PKI" "$T/b"
start_node COLL "$T/coll.conf" "$T/coll"
start_node A "$T/a.conf" "$T/a"
start_node B "$T/b.conf" "$T/b"
[ "$COLL_COLL" -gt 0 ] || fail "collector port: $COLL_COLL"
# Restarts keep the port the collector was given.
sed -i "/^\[collector\]/,\$ s/^port = 0\$/port = $COLL_COLL/" "$T/coll.conf"
grep -q "^port = $COLL_COLL\$" "$T/coll.conf" || fail "collector port kept"
# vigild -n: the running collector's own port passes; a certificate of
# another role is named.
out=$("$VIGILD" -n -c "$T/coll.conf" 2>&1) || fail "vigild -n: $out"
expect_contains "$out" "[collector] 127.0.0.1:$COLL_COLL: held by the running vigild"
sed "s#^cert_file = .*#cert_file = $PKI/scand-scand.vigil.test.crt#; s#^key_file = $PKI/collector.*#key_file = $PKI/scand-scand.vigil.test.key#" \
	"$T/coll.conf" >"$T/coll-bad.conf"
out=$("$VIGILD" -n -c "$T/coll-bad.conf" 2>&1) && fail "vigild -n took a scand certificate"
expect_contains "$out" "is not a collector's certificate (role scand)"
pass "vigild -n checks the collector's port and its certificate's role"

# A real agent on each center.
for n in A B; do
	lc=$(tr A-Z a-z <<<"$n")
	token=$(on "$n" --json token create --uses 1 | sed -nE 's/.*"token": "([^"]+)".*/\1/p')
	eval "gw=\$${n}_GW"
	VIGIL_MACHINE_ID_FILE=$(machine_id "$lc") "$AGENT" enroll \
		--server "https://127.0.0.1:$gw" --token "$token" \
		--ca "$PKI/ca.crt" --data-dir "$T/agent-$lc" >"$T/enroll-$lc.log" 2>&1 ||
		fail "enroll on $n: $(cat "$T/enroll-$lc.log")"
done
AID_A=$(on A --json agent list | sed -nE 's/.*"id": "([0-9a-f-]{36})".*/\1/p' | head -1)
AID_B=$(on B --json agent list | sed -nE 's/.*"id": "([0-9a-f-]{36})".*/\1/p' | head -1)

# post NODE FROM TO [RULE]: findings seq FROM..TO from NODE's agent.
post() {
	local lc gw i sep='' body rule=${4:-Webshell}
	lc=$(tr A-Z a-z <<<"$1")
	eval "gw=\$${1}_GW"
	body='{"events": ['
	for i in $(seq "$2" "$3"); do
		body+="$sep{\"seq\": $i, \"time\": $(date +%s), \"type\": \"finding\", \"level\": \"alert\", \"data\": {\"rule\": \"$rule\", \"path\": \"/var/www/$lc/shell$i.php\", \"n\": $i}}"
		sep=', '
	done
	body+=']}'
	curl -sS --cacert "$PKI/ca.crt" --cert "$T/agent-$lc/agent.crt" \
		--key "$T/agent-$lc/agent.key" -X POST \
		"https://127.0.0.1:$gw/v1/events" -d "$body" | grep -q '"stored"' ||
		fail "post to $1"
}

# cdb SQL: a query on the collector's database (SQLite or PostgreSQL).
cdb() {
	if [ "$VIGIL_STORE" = pg ]; then
		pg_sql -c "$1"
	else
		sqlite3 -batch -cmd ".timeout 5000" "$T/coll/vigil.db" "$1"
	fi
}
findings_at_collector() {
	[ "$(cdb "SELECT COUNT(*) FROM coll_events WHERE type = 'finding'")" = "$1" ]
}

# A target's certificate must be a center's.
out=$(on A forward add bad --transport collector --host 127.0.0.1 \
	--port "$COLL_COLL" --tls-ca "$PKI/ca.crt" \
	--tls-cert "$PKI/scand-scand.vigil.test.crt" \
	--tls-key "$PKI/scand-scand.vigil.test.key" 2>&1 || true)
expect_contains "$out" "has role scand; the collector accepts only a certificate of role center"
for n in A B; do
	lc=$(tr A-Z a-z <<<"$n")
	on "$n" forward add coll --transport collector --host 127.0.0.1 \
		--port "$COLL_COLL" --tls-ca "$PKI/ca.crt" \
		--tls-cert "$PKI/center-$lc.vigil.test.crt" \
		--tls-key "$PKI/center-$lc.vigil.test.key" >/dev/null ||
		fail "add collector target on $n"
done
pass "collector targets added; a target with a scand certificate is refused"

# The feed port refuses every role but center (here: scand) with a reason.
out=$(timeout 10 openssl s_client -connect "127.0.0.1:$COLL_COLL" -quiet \
	-CAfile "$PKI/ca.crt" -cert "$PKI/scand-scand.vigil.test.crt" \
	-key "$PKI/scand-scand.vigil.test.key" </dev/null 2>&1 || true)
grep -q "^ack\|^error" <<<"$out" && fail "a scand certificate was answered: $out"
grep -q "refused the certificate of scand.vigil.test from 127.0.0.1: a certificate of role scand may not be used here; the analysis collector accepts center certificates only" \
	"$T/COLL.log" || fail "7443 refusal not logged: $(grep tls: "$T/COLL.log" | tail -2)"
out=$(timeout 10 openssl s_client -connect "127.0.0.1:$COLL_COLL" -quiet \
	-CAfile "$PKI/ca.crt" </dev/null 2>&1 || true)
grep -q "^ack\|^error" <<<"$out" && fail "a client without a certificate was answered: $out"
[ "$(cdb "SELECT COUNT(*) FROM coll_centers WHERE name NOT IN ('a.vigil.test', 'b.vigil.test')")" = 0 ] || fail "a refused peer became a center"
pass "7443 refuses a scand certificate (in the handshake, the reason logged) and a client without one"

post A 1 10
post B 1 10
wait_for 15 "20 findings at the collector" findings_at_collector 20
pass "findings of both centers arrive"

# Collector down: the centers keep the events; after its restart they
# arrive, each once.
stop_node COLL
post A 11 20
post B 11 20
wait_for 10 "center A to notice the collector is gone" \
	sh -c "VIGIL_SERVER=https://127.0.0.1:$A_ADM VIGIL_CA=$PKI/ca.crt VIGIL_API_KEY=$A_KEY $CTL --json forward list | grep -q '\"state\": \"backoff\"\\|\"state\": \"connecting\"'"
start_node COLL "$T/coll.conf" "$T/coll"
wait_for 40 "40 findings after the collector's restart" findings_at_collector 40

# Center A restarts; its cursor is in its store.
stop_node A
start_node A "$T/a.conf" "$T/a"
post A 21 25
wait_for 20 "45 findings after center A's restart" findings_at_collector 45

# The collector killed (-9) while batches are in flight: what it had not
# acknowledged is sent again and stored once.
post B 21 320
some_more() {
	[ "$(cdb "SELECT COUNT(*) FROM coll_events WHERE type = 'finding'")" -gt 45 ]
}
wait_for 20 "the first of 300 more findings" some_more
kill -KILL "$COLL_PID"
wait "$COLL_PID" 2>/dev/null || true
start_node COLL "$T/coll.conf" "$T/coll"
wait_for 40 "345 findings after the collector was killed" findings_at_collector 345

# A collector that cannot store a batch (its disk below min_free_space)
# refuses it and says why: nothing is acknowledged, the center shows the
# reason and sends the batch again once the collector can store it.
sed -i 's/^role = collector$/role = collector\nmin_free_space = 1T/' "$T/coll.conf"
kill -HUP "$COLL_PID"
wait_for 15 "the collector to be low on space" grep -q "below min_free_space" "$T/COLL.log"
post A 26 30
refusal_shown() {
	on A --json forward list | grep -q "the collector refused: the collector's disk is nearly full"
}
wait_for 15 "center A to show the refusal" refusal_shown
[ "$(cdb "SELECT COUNT(*) FROM coll_events WHERE type = 'finding'")" = 345 ] ||
	fail "a refused batch was stored"
sed -i '/^min_free_space = 1T$/d' "$T/coll.conf"
kill -HUP "$COLL_PID"
wait_for 30 "350 findings once the collector can store again" findings_at_collector 350
for c in a.vigil.test:"$AID_A":30 b.vigil.test:"$AID_B":320; do
	IFS=: read -r name aid n <<<"$c"
	got=$(cdb "SELECT seq FROM coll_events WHERE center = '$name' AND agent_id = '$aid' AND type = 'finding' ORDER BY seq" | tr '\n' ' ')
	[ "$got" = "$(seq 1 "$n" | tr '\n' ' ')" ] || fail "$name: $got"
done
pass "350 findings from both centers, each once, in order, across a collector restart, a center restart, a collector killed mid-feed and batches it refused"

# The same rule on 50 hosts of center A, written straight into its store
# (50 agent ids, one finding each, user folders and digits differ).
now=$(date +%s)
sql="BEGIN;"
for i in $(seq 1 50); do
	sql+="INSERT INTO events (agent_id, seq, time, received_at, type, level, data) VALUES ('00000000-0000-4000-8000-$(printf %012d "$i")', 1, $now, $now, 'finding', 'alert', '{\"rule\":\"Mimikatz\",\"path\":\"C:\\\\Users\\\\user$i\\\\AppData\\\\Local\\\\Temp\\\\m$i.exe\"}');"
done
sql+="COMMIT;"
sqlite3 -batch -cmd ".timeout 5000" "$T/a/vigil.db" "$sql"
wait_for 20 "400 findings at the collector" findings_at_collector 400
cases=$(on COLL --json collector cases)
mim=$(python3 -c '
import json, sys
cs = [c for c in json.load(sys.stdin) if c.get("rule") == "Mimikatz"]
print(len(cs), cs[0]["id"], cs[0]["hosts"], cs[0]["hits"], cs[0]["centers"], cs[0]["path"])' <<<"$cases")
read -r ncase CASE hosts hits ncenters path <<<"$mim"
[ "$ncase $hosts $hits $ncenters" = "1 50 50 1" ] || fail "Mimikatz cases: $mim"
[ "$path" = 'C:\Users\user50\AppData\Local\Temp\m50.exe' ] || [ -n "$path" ] || fail "path: $path"
# The webshells: one case per normalised path, across both centers.
ws=$(python3 -c '
import json, sys
cs = [c for c in json.load(sys.stdin) if c.get("rule") == "Webshell"]
print(len(cs), sorted(c["hosts"] for c in cs))' <<<"$cases")
[ "$ws" = "2 [1, 1]" ] || fail "Webshell cases: $ws"
pass "one case for the same rule on 50 hosts (hosts 50, hits 50); webshells on two paths: two cases"

# Baseline: the next occurrence is stored, marked suppressed, not counted.
on COLL collector baseline "$CASE" suppress --reason "admin tool, expected" >/dev/null ||
	fail "baseline"
expect_contains "$(cdb "SELECT action, status FROM audit ORDER BY id DESC LIMIT 1")" "|200"
expect_contains "$(cdb "SELECT after_json FROM audit ORDER BY id DESC LIMIT 1") $(cdb "SELECT request_json FROM audit ORDER BY id DESC LIMIT 1")" "admin tool, expected"
lc=a
body="{\"events\": [{\"seq\": 31, \"time\": $(date +%s), \"type\": \"finding\", \"level\": \"alert\", \"data\": {\"rule\": \"Mimikatz\", \"path\": \"C:\\\\Users\\\\bob\\\\AppData\\\\Local\\\\Temp\\\\m7.exe\"}}]}"
curl -sS --cacert "$PKI/ca.crt" --cert "$T/agent-a/agent.crt" \
	--key "$T/agent-a/agent.key" -X POST \
	"https://127.0.0.1:$A_GW/v1/events" -d "$body" | grep -q '"stored"' ||
	fail "post the next occurrence"
wait_for 15 "the next occurrence at the collector" findings_at_collector 401
got=$(cdb "SELECT case_id, suppressed FROM coll_events WHERE agent_id = '$AID_A' AND seq = 31")
[ "$got" = "$CASE|1" ] || fail "next occurrence: $got"
one=$(on COLL --json collector case "$CASE")
read -r hits sup hosts action <<<"$(python3 -c '
import json, sys
c = json.load(sys.stdin)
print(c["hits"], c["suppressed"], c["hosts"], c["baseline"]["action"])' <<<"$one")"
[ "$hits $sup $hosts $action" = "50 1 50 suppress" ] || fail "case after baseline: $one"
# Default search leaves suppressed occurrences out; all shows them.
s=$(on COLL --json collector search Mimikatz --limit 1000)
[ "$(grep -o '"seq"' <<<"$s" | wc -l)" = 50 ] || fail "search without suppressed"
s=$(on COLL --json collector search Mimikatz --suppressed all --limit 1000)
[ "$(grep -o '"seq"' <<<"$s" | wc -l)" = 51 ] || fail "search with suppressed"
pass "a baseline (audited) suppresses the next occurrence: stored, marked, not counted"

# Search across both centers, and the centers and their inventory.
s=$(on COLL --json collector search Webshell --limit 1000)
expect_contains "$s" '"center": "a.vigil.test"'
expect_contains "$s" '"center": "b.vigil.test"'
[ "$(grep -o '"seq"' <<<"$s" | wc -l)" = 350 ] || fail "search Webshell"
centers=$(on COLL --json collector centers)
expect_contains "$centers" '"name": "a.vigil.test"'
expect_contains "$centers" '"name": "b.vigil.test"'
inventory() {
	[ "$(cdb "SELECT COUNT(*) FROM coll_agents WHERE agent_id IN ('$AID_A', '$AID_B')")" = 2 ]
}
wait_for 10 "the agents' inventory" inventory
pass "search spans both centers; centers and their agents listed"

# Samples: the same file held by both centers (written into their sample
# stores as a collect task would leave it) is offered by both and stored
# once at the collector, in chunks, checked by its SHA-256.
head -c 120000 /dev/urandom >"$T/sample.bin"
SHA=$(sha256sum "$T/sample.bin" | cut -c1-64)
for n in a b; do
	mkdir -p "$T/$n/samples/${SHA:0:2}"
	cp "$T/sample.bin" "$T/$n/samples/${SHA:0:2}/$SHA"
	sqlite3 -batch -cmd ".timeout 5000" "$T/$n/vigil.db" \
		"INSERT INTO samples (sha256, size, agent_id, task_id, path, received_at) VALUES ('$SHA', 120000, 'agent-$n', NULL, '/tmp/dropper-$n.exe', $(date +%s))"
done
sample_seen_twice() {
	[ "$(cdb "SELECT COUNT(*) FROM coll_samples WHERE sha256 = '$SHA'")" = 2 ] &&
		[ "$(cdb "SELECT COUNT(*) FROM samples WHERE sha256 = '$SHA'")" = 1 ]
}
wait_for 20 "the sample at the collector" sample_seen_twice
cmp "$T/sample.bin" "$T/coll/samples/${SHA:0:2}/$SHA" || fail "sample content differs"
m=$(curl -sS --cacert "$PKI/ca.crt" -H "Authorization: Bearer $COLL_KEY" "https://127.0.0.1:$COLL_ADM/metrics")
[ "$(metric_value "$m" vigil_collector_samples_total)" = 1 ] || fail "samples stored: $(grep samples_total <<<"$m")"
s=$(on COLL --json collector samples)
expect_contains "$s" "\"sha256\": \"$SHA\""
expect_contains "$s" '"path": "/tmp/dropper-a.exe"'
expect_contains "$s" '"path": "/tmp/dropper-b.exe"'
pass "a sample held by both centers is stored once at the collector (120000 bytes, checked), seen twice"
