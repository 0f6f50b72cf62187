#!/bin/bash
# A center's SQLite store moved into PostgreSQL (vigild --store-copy), then
# the center run on PostgreSQL: the copy reports and checks the rows of
# every table and the audit chain (verified again on the target, by vigild
# and by vigilctl audit verify --db URL); a second copy into the same,
# no longer empty database is refused. On PostgreSQL the event path keeps
# its guarantees: a batch sent again after the move is stored once (the
# agent's sequence numbers came along), new rows continue the copied
# numbering (the events' rowid, the forwarders' cursor), and a batch that
# was acknowledged is in the database even when vigild is killed (-9)
# right after; file samples' content comes along (served from the
# database without the file). Always SQLite first and PostgreSQL second, whatever
# VIGIL_STORE says.
export VIGIL_STORE=sqlite
. "$(dirname "$0")/lib.sh"
. "$SRC/tests/e2e/pg.inc"
# lib.sh stops the cluster of VIGIL_STORE=pg scenarios; this one's too.
at_exit pg_stop

standard_center
TOKEN=$(new_token --uses 2 --label site=berlin)
export VIGIL_MACHINE_ID_FILE
VIGIL_MACHINE_ID_FILE=$(machine_id c1)
"$AGENT" enroll --server "https://127.0.0.1:$GW" --token "$TOKEN" \
	--ca "$PKI/ca.crt" --data-dir "$T/a" >/dev/null 2>&1 || fail enroll
agent() { # agent METHOD PATH [curl args]
	local m=$1 p=$2
	shift 2
	curl -sS --cacert "$PKI/ca.crt" --cert "$T/a/agent.crt" \
		--key "$T/a/agent.key" -X "$m" "https://127.0.0.1:$GW$p" "$@"
}
# batch FIRST N: events FIRST .. FIRST+N-1 of the agent.
batch() {
	local i sep=""
	printf '{"events": ['
	for ((i = $1; i < $1 + $2; i++)); do
		printf '%s{"seq": %d, "time": 1795000000, "type": "finding", "level": "alert", "data": {"path": "/tmp/f%d", "rule": "r\\u00e9"}}' \
			"$sep" "$i" "$i"
		sep=", "
	done
	printf ']}'
}
expect_contains "$(agent POST /v1/events -d "$(batch 1 40)")" '"stored":40'
# A file sample (three 1 MiB parts), for a collect task.
head -c 2200000 /dev/urandom >"$T/sample.bin"
SHA=$(sha256sum "$T/sample.bin" | cut -d' ' -f1)
AID=$(sed -nE 's/.*"agent_id": "([^"]+)".*/\1/p' "$T/a/state.json")
CT=$("$CTL" task create collect --agent "$AID" --param path=/tmp/x.bin |
	sed -nE 's/^created task ([0-9a-f-]{36}) .*/\1/p')
agent GET /v1/tasks >/dev/null || fail "poll"
expect_contains "$(agent POST "/v1/samples?sha256=$SHA&task=$CT&path=/tmp/x.bin" \
	--data-binary @"$T/sample.bin")" "$SHA"
"$CTL" token create --uses 1 >/dev/null || fail "token create"
"$CTL" forward add siem --host 127.0.0.1 --port 9 --transport udp >/dev/null || fail "forward add"
sq_events=$(db "SELECT COUNT(*) FROM events")
sq_audit=$(db "SELECT COUNT(*) FROM audit")
[ "$sq_events" -ge 40 ] || fail "events not stored in SQLite: $sq_events"
[ "$sq_audit" -ge 3 ] || fail "audit entries missing in SQLite: $sq_audit"
sq_last=$(db "SELECT hash FROM audit ORDER BY id DESC LIMIT 1")
stop_center
pass "a SQLite center with $sq_events events and $sq_audit audit entries"

# Into PostgreSQL.
pg_start
cp "$T/vigild.conf" "$T/bad.conf"
printf '[store]\nurl = postgresql://vigil@127.0.0.1:1/vigil\n' >>"$T/bad.conf"
rc=0
"$VIGILD" -n -c "$T/bad.conf" >"$T/n-bad.log" 2>&1 || rc=$?
[ $rc -ne 0 ] || fail "vigild -n accepted a database that does not answer"
grep -q "check: \[store\] url: .*127.0.0.1" "$T/n-bad.log" || fail "-n: $(cat "$T/n-bad.log")"
printf '[store]\nurl = %s\n' "$PG_URL" >>"$T/vigild.conf"
"$VIGILD" -n -c "$T/vigild.conf" >"$T/n.log" 2>&1 || fail "vigild -n: $(cat "$T/n.log")"
grep -q "check: \[store\] url: postgresql://vigil@127.0.0.1:$PG_PORT/vigil answers" "$T/n.log" ||
	fail "-n did not check the database: $(cat "$T/n.log")"
pass "vigild -n checks that the database of [store] url answers"
out=$("$VIGILD" --store-copy "$DATA/vigil.db" -c "$T/vigild.conf" 2>"$T/copy.log") ||
	fail "store copy: $(cat "$T/copy.log")"
echo "$out"
expect_contains "$out" "events           $sq_events rows"
expect_contains "$out" "audit            $sq_audit rows"
expect_contains "$out" "audit chain verified on the target: $sq_audit entries, last hash $sq_last"
expect_contains "$out" "agents           1 rows"
expect_contains "$out" "samples          1 shared from $DATA/samples (3 parts)"
[ "$(pg_sql -c "SELECT COUNT(*) FROM events")" = "$sq_events" ] ||
	fail "PostgreSQL holds another number of events"
[ "$(pg_sql -c "SELECT data FROM events WHERE seq = 7 AND agent_id <> 'center'")" = \
	"$(sqlite3 "$DATA/vigil.db" "SELECT data FROM events WHERE seq = 7 AND agent_id <> 'center'")" ] ||
	fail "an event's data changed in the copy"
out=$("$CTL" audit verify --db "$PG_URL") || fail "audit verify --db URL: $out"
expect_contains "$out" "audit log intact: $sq_audit entries, last hash $sq_last"
pass "copied; rows counted and the audit chain verified on PostgreSQL"

out=$("$CTL" store check "$PG_URL") || fail "store check URL: $out"
expect_contains "$out" "ok (PostgreSQL answers"
rc=0
out=$("$CTL" store backup --url "$PG_URL" "$T/pg.backup" 2>&1) || rc=$?
[ $rc -eq 1 ] || fail "store backup --url: rc $rc"
expect_contains "$out" "pg_dump --format=custom --file=$T/pg.backup"
[ ! -e "$T/pg.backup" ] || fail "store backup --url wrote a file"
pass "vigilctl store check takes the URL; backup points at pg_dump"

rc=0
"$VIGILD" --store-copy "$DATA/vigil.db" -c "$T/vigild.conf" >"$T/copy2.out" 2>&1 || rc=$?
[ $rc -ne 0 ] || fail "a second copy into a database with rows succeeded"
grep -q "holds rows already" "$T/copy2.out" || fail "refusal: $(cat "$T/copy2.out")"
pass "a copy into a database that holds rows is refused"

# The center on PostgreSQL: the same agent, the same sequence numbers.
VIGIL_STORE=pg
start_center "$T/vigild.conf" "$DATA"
[ "$("$CTL" --json agent list | grep -c '"id"')" = 1 ] || fail "agent not listed"
expect_contains "$(agent POST /v1/events -d "$(batch 1 40)")" '"duplicates":40'
expect_contains "$(agent POST /v1/events -d "$(batch 41 10)")" '"stored":10'
[ "$(pg_sql -c "SELECT COUNT(*) FROM events WHERE agent_id <> 'center'")" = 50 ] ||
	fail "events after the move: $(pg_sql -c "SELECT COUNT(*) FROM events")"
maxcopied=$(sqlite3 "$DATA/vigil.db" "SELECT MAX(rowid) FROM events")
[ "$(pg_sql -c "SELECT MIN(rowid) FROM events WHERE seq > 40 AND agent_id <> 'center'")" -gt "$maxcopied" ] ||
	fail "new events numbered before the copied ones"
expect_contains "$(api GET /api/v1/forward)" "\"siem\""
"$CTL" token create --uses 1 >/dev/null || fail "token create on PostgreSQL"
out=$("$CTL" audit verify --db "$PG_URL") || fail "audit verify after: $out"
expect_contains "$out" "audit log intact: $((sq_audit + 1)) entries"
# The sample's content came along: a node without the file (here: the
# file moved away) serves it from the database.
mv "$DATA/samples" "$T/samples.away"
code=$(api GET "/api/v1/samples/$SHA/download" -o "$T/s.zip" -w '%{http_code}')
[ "$code" = 200 ] || fail "sample download after the move: $code $(head -c 300 "$T/s.zip")"
mkdir "$T/sx"
7z x -pinfected -o"$T/sx" "$T/s.zip" </dev/null >"$T/7z.log" 2>&1 || fail "7z x: $(cat "$T/7z.log")"
[ "$(sha256sum "$T/sx/$SHA" | cut -d' ' -f1)" = "$SHA" ] || fail "the copied sample differs"
pass "the center runs on the copy: resent batch stored once, numbering and chain continue"

# Acknowledged means committed: batches sent one after another, vigild
# killed (-9) while they go; every batch acknowledged before the kill is
# in PostgreSQL, before anything is sent again.
: >"$T/acked"
(
	for ((b = 0; b < 200; b++)); do
		first=$((1000 + b * 20))
		r=$(agent POST /v1/events -d "$(batch $first 20)" 2>/dev/null) || break
		case $r in *'"stored":20'*) echo "$first" >>"$T/acked" ;; *) echo "$r" >"$T/sender.log"; break ;; esac
	done
) &
sender=$!
PIDS+=("$sender")
acked_some() { [ "$(wc -l <"$T/acked")" -ge 5 ]; }
wait_for 30 "a few acknowledged batches" acked_some
kill -9 "$CENTER_PID"
wait "$CENTER_PID" 2>/dev/null || true
wait "$sender" 2>/dev/null || true
acked=$(wc -l <"$T/acked")
while read -r first; do
	n=$(pg_sql -c "SELECT COUNT(*) FROM events WHERE agent_id <> 'center' AND seq BETWEEN $first AND $((first + 19))")
	[ "$n" = 20 ] || fail "batch $first acknowledged but $n of 20 events stored"
done <"$T/acked"
pass "$acked batches acknowledged before kill -9, all of them committed"

start_center "$T/vigild.conf" "$DATA"
while read -r first; do
	expect_contains "$(agent POST /v1/events -d "$(batch "$first" 20)")" '"duplicates":20'
done <"$T/acked"
dups=$(pg_sql -c "SELECT COUNT(*) FROM (SELECT agent_id, seq FROM events GROUP BY agent_id, seq HAVING COUNT(*) > 1) d")
[ "$dups" = 0 ] || fail "$dups events stored twice"
pass "sent again after the restart: each stored once"
