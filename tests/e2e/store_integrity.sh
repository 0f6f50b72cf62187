#!/bin/bash
# A damaged or lost database is never served as if it were fine:
#  - vigild refuses to start on a database that fails SQLite's quick_check
#    (one page of the audit table overwritten), naming the file and the
#    way back; started anyway (store_check = no), every request that
#    touches the damaged table answers 503 and the log names the table,
#    and `vigilctl audit verify` fails instead of "intact: 0 entries";
#  - a missing or empty vigil.db in a used data directory is refused and
#    admin.key is never overwritten;
#  - `vigilctl store backup` of the running center, `store restore` of it
#    with the center stopped, and the audit chain verifies afterwards.
. "$(dirname "$0")/lib.sh"
# What is damaged here is SQLite's file; PostgreSQL's own checks and
# backups are the database administrator's (docs/store.md).
[ "$VIGIL_STORE" = sqlite ] || skip "SQLite only: damages and restores the vigil.db file"

standard_center
for i in 1 2 3 4 5 6; do "$CTL" token create --uses 1 >/dev/null; done
n_api=$(api GET '/api/v1/audit?limit=200' | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["items"]))')
[ "$n_api" -ge 6 ] || fail "expected audit entries, got $n_api"
KEY_SUM=$(sha256sum <"$DATA/admin.key")

# Backup while the center runs; the copy holds what the API shows.
"$CTL" store backup --data-dir "$DATA" "$T/backup.db" >"$T/backup.log" 2>&1 ||
	fail "store backup: $(cat "$T/backup.log")"
n_bak=$(sqlite3 "$T/backup.db" 'SELECT COUNT(*) FROM audit')
[ "$n_bak" = "$n_api" ] || fail "backup holds $n_bak audit entries, the API showed $n_api"
"$CTL" store check "$T/backup.db" | grep -q ': ok$' || fail "store check of the backup"
out=$("$CTL" store backup --data-dir "$DATA" "$T/backup.db" 2>&1) && fail "backup overwrote an existing file"
expect_contains "$out" "exists"
pass "online backup: $n_bak audit entries, checked"

# Damage one page of the audit table.
stop_center
root=$(sqlite3 "$DATA/vigil.db" "SELECT rootpage FROM sqlite_master WHERE name='audit'")
psize=$(sqlite3 "$DATA/vigil.db" 'PRAGMA page_size')
[ -z "$(ls "$DATA"/vigil.db-wal 2>/dev/null)" ] || [ ! -s "$DATA/vigil.db-wal" ] ||
	fail "the WAL was not checkpointed at stop"
cp "$DATA/vigil.db" "$T/good.db"
dd if=/dev/urandom of="$DATA/vigil.db" bs="$psize" seek=$((root - 1)) count=1 conv=notrunc 2>/dev/null
rc=0
"$VIGILD" -d -c "$T/vigild.conf" >"$T/start-damaged.log" 2>&1 || rc=$?
[ "$rc" -ne 0 ] || fail "vigild started on a damaged database"
out=$(cat "$T/start-damaged.log")
expect_contains "$out" "$DATA/vigil.db is damaged: not starting"
expect_contains "$out" "vigilctl store restore"
pass "a damaged database is refused at start, naming the file and the restore"

# Started anyway, to reach what is readable: 503, never an empty list.
echo "store_check = no" >"$T/nocheck"
sed '/^\[center\]/r '"$T/nocheck" "$T/vigild.conf" >"$T/nocheck.conf"
: >"$T/vigild.log"
start_center "$T/nocheck.conf" "$DATA"
code=$(curl -sS -o "$T/audit.json" -w '%{http_code}' --cacert "$PKI/ca.crt" \
	-H "Authorization: Bearer $VIGIL_API_KEY" "https://127.0.0.1:$ADM/api/v1/audit")
cat "$T/audit.json"; echo
[ "$code" = 503 ] || fail "GET /api/v1/audit on a damaged table answered $code"
grep -q '"store_unreadable"' "$T/audit.json" || fail "503 without the store_unreadable code"
grep -q 'store: table audit: ' "$T/vigild.log" || fail "the log does not name the table: $(grep store: "$T/vigild.log" | tail -3)"
rc=0
out=$("$CTL" audit verify 2>&1) || rc=$?
echo "$out"
[ "$rc" -ne 0 ] || fail "audit verify passed on a damaged audit table"
if grep -q 'intact' <<<"$out"; then fail "audit verify said intact"; fi
v=$(api GET /metrics | sed -nE 's/^vigil_store_read_failures_total ([0-9.e+]+)$/\1/p')
[ -n "$v" ] && awk -v v="$v" 'BEGIN { exit !(v >= 2) }' || fail "vigil_store_read_failures_total is '$v', want >= 2"
code=$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$PKI/ca.crt" \
	-H "Authorization: Bearer $VIGIL_API_KEY" "https://127.0.0.1:$ADM/api/v1/agents")
[ "$code" = 200 ] || fail "an undamaged table answered $code"
pass "reads of the damaged table answer 503 (table named in the log, metric $v), audit verify fails; other tables still served"
stop_center

# Restore: refused while the center runs, then done, then the chain holds.
start_center "$T/nocheck.conf" "$DATA"
out=$("$CTL" store restore --data-dir "$DATA" "$T/backup.db" 2>&1) && fail "restore ran under a running center"
expect_contains "$out" "is running"
stop_center
printf 'not a database' >"$T/junk.db"
out=$("$CTL" store restore --data-dir "$DATA" "$T/junk.db" 2>&1) && fail "restored a file that is no database"
expect_contains "$out" "not a sound database"
"$CTL" store restore --data-dir "$DATA" "$T/backup.db" >"$T/restore.log" 2>&1 ||
	fail "restore: $(cat "$T/restore.log")"
ls "$DATA"/vigil.db.before-restore-* >/dev/null || fail "the damaged database was not kept aside"
start_center "$T/vigild.conf" "$DATA"
out=$("$CTL" audit verify 2>&1) || fail "audit verify after restore: $out"
expect_contains "$out" "intact"
expect_contains "$out" "$n_bak"
[ "$(sha256sum <"$DATA/admin.key")" = "$KEY_SUM" ] || fail "admin.key changed"
pass "restore from the backup: $out"
stop_center

# A lost or empty database in a used data directory.
for what in empty missing; do
	mv "$DATA/vigil.db" "$T/keep.db"
	rm -f "$DATA/vigil.db-wal" "$DATA/vigil.db-shm"
	[ "$what" = empty ] && : >"$DATA/vigil.db"
	rc=0
	"$VIGILD" -d -c "$T/vigild.conf" >"$T/start-$what.log" 2>&1 || rc=$?
	[ "$rc" -ne 0 ] || fail "vigild started with a $what database in a used data directory"
	expect_contains "$(cat "$T/start-$what.log")" "$DATA/vigil.db is $what, but this data directory has been used"
	[ "$(sha256sum <"$DATA/admin.key")" = "$KEY_SUM" ] || fail "admin.key was overwritten ($what db)"
	rm -f "$DATA/vigil.db"
	mv "$T/keep.db" "$DATA/vigil.db"
done
pass "a missing or empty vigil.db in a used data directory is refused; admin.key kept"
