#!/bin/bash
# The whole loop with a real agent: an operator runs a YARA + IOC scan on
# a label group, watches it finish, and reads every finding; then
# inventory, collect (sample upload), quarantine and restore, and
# kill-process with its pid-reuse guard.
. "$(dirname "$0")/lib.sh"

standard_center
TOKEN=$(new_token --uses 2 --label os=linux --label site=berlin)
export VIGIL_MACHINE_ID_FILE
VIGIL_MACHINE_ID_FILE=$(machine_id g1)
"$AGENT" enroll --server "https://127.0.0.1:$GW" --token "$TOKEN" \
	--ca "$PKI/ca.crt" --data-dir "$T/a" >/dev/null 2>&1 || fail enroll
"$AGENT" run --data-dir "$T/a" >"$T/agent.log" 2>&1 &
APID=$!
PIDS+=("$APID")

# Files to find: a YARA hit, a hash IOC hit, a filename IOC hit, clean.
S=$T/scanroot
mkdir -p "$S/sub" "$S/skip"
printf 'hello VIGIL-E2E-MARKER world\n' >"$S/sub/yara-hit.txt"
printf 'hash ioc content\n' >"$S/hash-hit.bin"
printf 'clean\n' >"$S/evil_dropper.sh"
printf 'VIGIL-E2E-MARKER but excluded\n' >"$S/skip/excluded.txt"
printf 'clean\n' >"$S/clean.txt"
H=$(sha256sum "$S/hash-hit.bin" | cut -d' ' -f1)
cat >"$T/test.yar" <<'YAR'
rule vigil_e2e_marker {
  meta:
    description = "end-to-end test marker"
    score = 85
  strings:
    $m = "VIGIL-E2E-MARKER"
  condition:
    $m
}
YAR
printf 'sha256;%s;70;e2e hash ioc\nfilename;evil_dropper\\.sh$;65;e2e filename ioc\n' "$H" >"$T/test.ioc"
"$CTL" rules add e2e-yara "$T/test.yar" >/dev/null || fail "rules add yara"
"$CTL" rules add e2e-ioc "$T/test.ioc" --kind ioc >/dev/null || fail "rules add ioc"

out=$("$CTL" task create scan --target os=linux --path "$S" --exclude "*/skip" --timeout 5m)
TID=$(echo "$out" | sed -nE 's/^created task ([0-9a-f-]{36}) .*/\1/p')
[ -n "$TID" ] || fail "task create: $out"
timeout 60 "$CTL" task watch "$TID" --interval 1 >"$T/watch.log" 2>&1 ||
	fail "scan did not finish cleanly: $(cat "$T/watch.log"; "$CTL" task show "$TID")"
pass "scan task done"

# Every finding arrives (the sender may trail the task's end briefly).
for i in $(seq 1 50); do
	n=$("$CTL" --json events --task "$TID" --type finding | grep -c '"seq"' || true)
	[ "$n" -ge 3 ] && break
	sleep 0.2
done
ev=$("$CTL" --json events --task "$TID" --type finding)
[ "$n" -eq 3 ] || fail "expected 3 findings, got $n: $ev"
expect_contains "$ev" "yara-hit.txt"
expect_contains "$ev" "vigil_e2e_marker"
expect_contains "$ev" "hash-hit.bin"
expect_contains "$ev" "evil_dropper.sh"
grep -q "excluded.txt" <<<"$ev" && fail "excluded path was scanned"
expect_contains "$("$CTL" --json events --task "$TID" --level alert)" "yara-hit.txt"
show=$("$CTL" --json task show "$TID")
expect_contains "$show" '"findings": 3'
pass "YARA, hash and filename IOC findings stored with levels; exclusion honoured"

# Process memory: a process holding a marker (built at run time and
# exported, so it is only in that process's memory: bash execs sleep with
# it in the environment) is found by a memory-only scan.
"$CTL" task create scan --target os=linux >"$T/nopath.out" 2>&1 &&
	fail "a scan without paths or memory was accepted"
expect_contains "$(cat "$T/nopath.out")" "params.paths: required unless params.memory"
cat >"$T/mem.yar" <<'YAR'
rule vigil_e2e_memory {
  meta:
    score = 90
  strings:
    $m = "VIGIL-MEM-MARKER-42"
  condition:
    $m
}
YAR
"$CTL" rules add e2e-mem "$T/mem.yar" >/dev/null || fail "rules add mem"
bash -c 'm=$(printf "VIGIL-MEM-%s-%s" MARKER 42); export m; sleep 120' &
MPID=$!
PIDS+=("$MPID")
# The marker exists only once bash has built it and exec'd sleep with it
# in the environment: scanned before that (a loaded machine), the
# process holds no marker yet.
wait_for 20 "the marker process" grep -qa VIGIL-MEM-MARKER-42 "/proc/$MPID/environ"
MT=$("$CTL" task create scan --target os=linux --rules e2e-mem --param memory=true \
	--pid "$MPID" --pid 1 --timeout 5m |
	sed -nE 's/^created task ([0-9a-f-]{36}) .*/\1/p')
[ -n "$MT" ] || fail "memory scan task not created"
timeout 120 "$CTL" task watch "$MT" --interval 1 >"$T/mwatch.log" 2>&1 ||
	fail "memory scan did not finish: $("$CTL" task show "$MT")"
# The finding comes through the agent's event spool, after the task's
# result: on a loaded machine that can take more than a few seconds.
mem_finding() {
	mev=$("$CTL" --json events --task "$MT" --type finding)
	grep -qE "\"pid\": $MPID([^0-9]|$)" <<<"$mev"
}
wait_for 60 "the finding of process $MPID with the marker" mem_finding
expect_contains "$mev" '"type": "process"'
expect_contains "$mev" "vigil_e2e_memory"
# Only the processes asked for: the marker process and pid 1 (if it has
# an executable in this container).
show=$("$CTL" --json task show "$MT")
grep -qE '"processes": [12],' <<<"$show" || fail "expected 1 or 2 processes scanned: $show"
out=$("$CTL" task create scan --target os=linux --param memory=true --pid x 2>&1) &&
	fail "--pid x accepted"
expect_contains "$out" "not a process id"
kill "$MPID" 2>/dev/null || true
pass "memory scan finds the process holding the marker"

# Inventory.
IT=$("$CTL" task create inventory --all | sed -nE 's/^created task ([0-9a-f-]{36}) .*/\1/p')
timeout 30 "$CTL" task watch "$IT" --interval 1 >/dev/null || fail "inventory failed"
# The inventory is an event of its own, uploaded after the result: on a
# loaded machine it can take a while.
inventory_stored() {
	inv=$("$CTL" --json events --task "$IT" --type inventory --limit 1)
	grep -q '"packages"' <<<"$inv"
}
wait_for 60 "the inventory event" inventory_stored
expect_contains "$inv" '"processes"'
expect_contains "$inv" "vigil-agent"
expect_contains "$inv" "\"home\": \"$(getent passwd root | cut -d: -f6)\""
pass "inventory"

# Collect: the file arrives as a sample with the same bytes.
CT=$("$CTL" task create collect --all --param path="$S/sub/yara-hit.txt" | sed -nE 's/^created task ([0-9a-f-]{36}) .*/\1/p')
timeout 30 "$CTL" task watch "$CT" --interval 1 >/dev/null || fail "collect failed: $("$CTL" task show "$CT")"
YH=$(sha256sum "$S/sub/yara-hit.txt" | cut -d' ' -f1)
cmp "$S/sub/yara-hit.txt" "$DATA/samples/${YH:0:2}/$YH" || fail "sample differs"
pass "collect uploads a sample"

# Quarantine and restore.
QT=$("$CTL" task create quarantine --all --param path="$S/hash-hit.bin" | sed -nE 's/^created task ([0-9a-f-]{36}) .*/\1/p')
timeout 30 "$CTL" task watch "$QT" --interval 1 >/dev/null || fail "quarantine failed: $("$CTL" task show "$QT")"
[ ! -e "$S/hash-hit.bin" ] || fail "file still in place after quarantine"
QID=$("$CTL" --json task show "$QT" | sed -nE 's/.*"id": "([0-9a-f]{32})".*/\1/p' | head -1)
[ -n "$QID" ] || fail "no quarantine id"
[ "$(stat -c %a "$T/a/quarantine/$QID.bin")" = 600 ] || fail "quarantined file not 0600"
RT=$("$CTL" task create restore --all --param id="$QID" | sed -nE 's/^created task ([0-9a-f-]{36}) .*/\1/p')
timeout 30 "$CTL" task watch "$RT" --interval 1 >/dev/null || fail "restore failed: $("$CTL" task show "$RT")"
[ "$(sha256sum "$S/hash-hit.bin" | cut -d' ' -f1)" = "$H" ] || fail "restored file differs"
pass "quarantine and restore"

# kill-process: refused when the start time does not match, done when it does.
sleep 300 &
VICTIM=$!
PIDS+=("$VICTIM")
ST=$(awk '{sub(/.*\) /, ""); print $20}' "/proc/$VICTIM/stat")
KT=$("$CTL" task create kill-process --all --param pid="$VICTIM" --param start_time=$((ST + 1)) | sed -nE 's/^created task ([0-9a-f-]{36}) .*/\1/p')
timeout 30 "$CTL" task watch "$KT" --interval 1 >/dev/null && fail "kill with a wrong start time succeeded"
kill -0 "$VICTIM" || fail "the guard did not protect the process"
expect_contains "$("$CTL" task show "$KT")" "a different process now"
KT=$("$CTL" task create kill-process --all --param pid="$VICTIM" --param start_time="$ST" | sed -nE 's/^created task ([0-9a-f-]{36}) .*/\1/p')
timeout 30 "$CTL" task watch "$KT" --interval 1 >/dev/null || fail "kill failed: $("$CTL" task show "$KT")"
wait "$VICTIM" 2>/dev/null || true
kill -0 "$VICTIM" 2>/dev/null && fail "process still alive"
pass "kill-process guarded by start time"
