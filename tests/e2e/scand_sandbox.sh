#!/bin/bash
# vigil-scand's scan workers, seen from outside (docs/scand.md "Scan
# workers"): every worker runs as the unprivileged user (the test runs as
# root, so the switch is real), with Seccomp: 2, no capabilities (effective
# and bounding set), no_new_privs and its rlimits, as a fresh program image
# (exec'd: its own command line, one thread, its own address-space layout,
# no descriptor of the parent's, not its environment); a config asking for root workers, or for
# a user that does not exist, is refused. A worker killed with -9 or -SEGV in the middle of a
# sample (it holds the sample's descriptor, tests/data/scan/loop.yar keeps
# it busy) fails that sample only, promptly, with the documented 500 (sync
# check) or a failed async result, while a check on the other worker is
# answered; a worker past scan_timeout is killed and its sample gets 504;
# each time a new worker takes over and the next sample scans fine. The
# seccomp filter's kill of a forbidden system call is proven by
# tests/unit/scand/test_sandbox.c.
. "$(dirname "$0")/lib.sh"

SCAND=$BIN/vigil-scand
DATA=$T/scand
RULES="$SRC/tests/data/scan/markers.yar $SRC/tests/data/scan/loop.yar"
TIMEOUT=6

if [ "$(id -u)" = 0 ]; then
	if getent passwd _vigil >/dev/null; then WUSER=_vigil; else WUSER=nobody; fi
	WUID=$(id -u "$WUSER")
else
	WUSER=$(id -un)
	WUID=$(id -u)
fi

write_conf_scand() { # extra [scand] lines
	cat >"$T/scand.conf" <<EOC
[scand]
data_dir = $DATA
rules = $RULES
threads = 2
sync_threads = 1
cache_size = 0
scan_timeout = ${TIMEOUT}s
$1
[http]
listen = 127.0.0.1
port = 0
EOC
}

# Workers as root are refused, at -n already; so is a user that does not
# exist (no silent fallback to another one: only the default, _vigil, falls
# back to nobody when it is missing, as on this test machine unless the
# package created it).
if [ "$(id -u)" = 0 ]; then
	write_conf_scand "user = root"
	if "$SCAND" -n -c "$T/scand.conf" >"$T/check.out" 2>&1; then
		fail "vigil-scand -n accepted user = root"
	fi
	expect_contains "$(cat "$T/check.out")" "refusing to run scan workers as root"
	write_conf_scand "user = vigil-no-such-user"
	if "$SCAND" -n -c "$T/scand.conf" >"$T/check.out" 2>&1; then
		fail "vigil-scand -n accepted a user that does not exist"
	fi
	expect_contains "$(cat "$T/check.out")" "user = vigil-no-such-user: no such user"
	pass "user = root and a missing user are refused"
fi

# The worker mode is not for people: without its socket it says so.
if "$SCAND" --scan-worker >"$T/worker.out" 2>&1; then
	fail "vigil-scand --scan-worker ran without its socket"
fi
expect_contains "$(cat "$T/worker.out")" "started by vigil-scand only"

write_conf_scand ""
# Something of the service's environment no worker may see.
VIGIL_TEST_SECRET=do-not-pass "$SCAND" -d -c "$T/scand.conf" >>"$T/scand.log" 2>&1 &
SCAND_PID=$!
PIDS+=("$SCAND_PID")
ports_ready() {
	kill -0 "$SCAND_PID" 2>/dev/null ||
		fail "vigil-scand exited at start: $(tail -5 "$T/scand.log")"
	[ -s "$DATA/vigil-scand.ports" ]
}
wait_for 15 "vigil-scand to start" ports_ready
HP=$(sed -E 's/.*"http": ([0-9]+).*/\1/' "$DATA/vigil-scand.ports")
U=http://127.0.0.1:$HP/api/v1

req() {
	BODY=$(curl -sS -o - -w '\n%{http_code}' "$@") || true
	CODE=${BODY##*$'\n'}
	BODY=${BODY%$'\n'*}
}
jget() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
workers() { pgrep -P "$SCAND_PID" | sort -n; }
two_workers() { [ "$(workers | wc -l)" = 2 ]; }
field() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
stack_of() { awk '$6 == "[stack]" { print $1 }' "/proc/$1/maps"; }

# A worker locks itself down right after it starts (it builds the rules
# first), before it reads its first job: a replacement just started (slow
# under ASan) may not be there yet, so wait until every worker has its
# filter before looking closer.
locked_down() {
	local w
	for w in $(workers); do
		[ "$(field "$w" Seccomp 2>/dev/null)" = 2 ] || return 1
	done
}

# Every worker: the user, seccomp filter mode, no capabilities, no way to
# gain any, its limits, a fresh image (exec'd, not forked).
check_workers() { # what
	local w n=0
	wait_for 20 "$1: every worker locked down" locked_down
	for w in $(workers); do
		n=$((n + 1))
		[ "$(field "$w" Seccomp)" = 2 ] || fail "$1: worker $w: Seccomp $(field "$w" Seccomp)"
		[ "$(field "$w" CapEff)" = 0000000000000000 ] ||
			fail "$1: worker $w: CapEff $(field "$w" CapEff)"
		[ "$(field "$w" CapPrm)" = 0000000000000000 ] ||
			fail "$1: worker $w: CapPrm $(field "$w" CapPrm)"
		[ "$(field "$w" CapBnd)" = 0000000000000000 ] ||
			fail "$1: worker $w: CapBnd $(field "$w" CapBnd)"
		[ "$(field "$w" NoNewPrivs)" = 1 ] || fail "$1: worker $w: NoNewPrivs"
		uids=$(awk '$1 == "Uid:" { print $2, $3, $4, $5 }' "/proc/$w/status")
		[ "$uids" = "$WUID $WUID $WUID $WUID" ] || fail "$1: worker $w: Uid $uids"
		[ "$(ps -o user= -p "$w" | tr -d ' ')" = "$WUSER" ] ||
			fail "$1: worker $w: ps user $(ps -o user= -p "$w")"
		grep -Eq '^Max file size +0 +0 ' "/proc/$w/limits" ||
			fail "$1: worker $w: RLIMIT_FSIZE: $(grep 'file size' "/proc/$w/limits")"
		grep -Eq '^Max open files +8 +8 ' "/proc/$w/limits" ||
			fail "$1: worker $w: RLIMIT_NOFILE: $(grep 'open files' "/proc/$w/limits")"
		grep -Eq '^Max address space +[0-9]+ +[0-9]+ ' "/proc/$w/limits" ||
			fail "$1: worker $w: no RLIMIT_AS"
		grep -Eq '^Max cpu time +[0-9]+ +[0-9]+ ' "/proc/$w/limits" ||
			fail "$1: worker $w: no RLIMIT_CPU"
		# A fresh program image, not a fork of the threaded service:
		# its own command line, one thread, its own layout.
		[ "$(tr '\0' ' ' <"/proc/$w/cmdline")" = "vigil-scand --scan-worker " ] ||
			fail "$1: worker $w: cmdline $(tr '\0' ' ' <"/proc/$w/cmdline")"
		[ "$(field "$w" Threads)" = 1 ] || fail "$1: worker $w: Threads $(field "$w" Threads)"
		if [ "$(cat /proc/sys/kernel/randomize_va_space)" != 0 ]; then
			[ "$(stack_of "$w")" != "$(stack_of "$SCAND_PID")" ] ||
				fail "$1: worker $w: the parent's address-space layout"
		fi
		! tr '\0' '\n' <"/proc/$w/environ" | grep -q VIGIL_TEST_SECRET ||
			fail "$1: worker $w: the service's environment"
		# Nothing open but 0-2 and its socket (a sample's descriptor
		# only while it scans one).
		nfd=$(ls "/proc/$w/fd" | grep -cvE '^[0-3]$') || true
		[ "$nfd" = 0 ] || fail "$1: worker $w: $(ls -l "/proc/$w/fd")"
	done
	[ "$n" = 2 ] || fail "$1: $n workers"
	# The parent itself is still root (it binds and owns the data).
	[ "$(awk '$1 == "Uid:" { print $2 }' "/proc/$SCAND_PID/status")" = "$(id -u)" ] ||
		fail "$1: the parent's uid changed"
}

wait_for 15 "two scan workers" two_workers
check_workers "at start"
pass "2 workers as $WUSER (uid $WUID): Seccomp 2, no capabilities, no_new_privs, rlimits"

printf 'x VIGIL-TEST-MARKER-7d1f3a y\n' >"$T/marker.bin"
# Content-Length below 8 MB: received into memory, passed as a memfd.
head -c 2000000 /dev/urandom >"$T/slow-mem.bin"
# Above: streamed to samples/, passed as the open file.
head -c 12000000 /dev/urandom >"$T/slow-file.bin"

marker_ok() { # what
	req -F "file=@$T/marker.bin" "$U/check"
	[ "$CODE" = 200 ] || fail "$1: marker check: $CODE $BODY"
	[ "$(jget 'd[0]["reasons"][0]["signature"]["rule_name"]' <<<"$BODY")" = \
		Vigil_Test_Marker ] || fail "$1: marker check: $BODY"
}
marker_ok "before"

# The worker (one of them) that holds a sample's descriptor: it is scanning.
BUSY=""
busy_worker() {
	local w
	for w in $(workers); do
		if ls -l "/proc/$w/fd" 2>/dev/null | grep -Eq 'memfd:vigil-sample|/samples/'; then
			BUSY=$w
			return 0
		fi
	done
	return 1
}

# kill_mid_scan SIGNAL FILE: a sync check of FILE, its worker killed with
# SIGNAL while it scans; the check's answer in $CODE/$BODY, seconds from the
# kill to the answer in $LAT.
kill_mid_scan() {
	local sig=$1 file=$2 old t0 t1
	old=$(workers | tr '\n' ' ')
	(curl -sS -o "$T/slow.body" -w '%{http_code}' -F "file=@$file" \
		"$U/check" >"$T/slow.code" 2>&1 || true) &
	local cpid=$!
	wait_for 10 "a worker scanning $(basename "$file")" busy_worker
	# The other worker is free: a check meanwhile is answered.
	marker_ok "while $BUSY is busy"
	t0=$(date +%s.%N)
	kill -"$sig" "$BUSY"
	wait "$cpid"
	t1=$(date +%s.%N)
	LAT=$(awk "BEGIN { printf \"%.2f\", $t1 - $t0 }")
	CODE=$(cat "$T/slow.code")
	BODY=$(cat "$T/slow.body")
	# A new worker replaces the dead one, sandboxed as the first.
	replaced() { two_workers && ! workers | grep -qx "$BUSY"; }
	wait_for 10 "a new worker after killing $BUSY" replaced
	check_workers "after kill -$sig"
	[ "$(workers | tr '\n' ' ')" != "$old" ] || fail "workers unchanged"
}

# 1. kill -9 mid-scan of a file-backed sample.
kill_mid_scan KILL "$T/slow-file.bin"
[ "$CODE" = 500 ] || fail "kill -9: $CODE $BODY"
expect_contains "$(jget 'd["message"]' <<<"$BODY")" "scan worker died on this sample (killed by signal 9"
awk "BEGIN { exit !($LAT < 3) }" || fail "kill -9: answered after $LAT s"
marker_ok "after kill -9"
pass "kill -9 mid-scan: that check gets 500 after $LAT s; the other worker answered meanwhile; the next scans fine"

# 2. kill -SEGV mid-scan of a sample held in memory (a memfd).
kill_mid_scan SEGV "$T/slow-mem.bin"
[ "$CODE" = 500 ] || fail "kill -SEGV: $CODE $BODY"
expect_contains "$(jget 'd["message"]' <<<"$BODY")" "killed by signal 11"
awk "BEGIN { exit !($LAT < 3) }" || fail "kill -SEGV: answered after $LAT s"
marker_ok "after kill -SEGV"
pass "kill -SEGV mid-scan: that check gets 500 after $LAT s; the next scans fine"

# 3. An async sample whose worker is killed: the result says failed, why.
req -F "file=@$T/slow-mem.bin" "$U/checkAsync"
[ "$CODE" = 200 ] || fail "checkAsync: $CODE $BODY"
AID=$(jget 'd["id"]' <<<"$BODY")
wait_for 10 "a worker scanning the async sample" busy_worker
kill -KILL "$BUSY"
async_failed() {
	req "$U/getAsyncResults?id=$AID"
	[ "$(jget 'd["status"]' <<<"$BODY")" = "Sample analysis failed" ]
}
wait_for 5 "the async result to fail" async_failed
expect_contains "$(jget 'd["message"]' <<<"$BODY")" "scan worker died on this sample"
wait_for 10 "two workers again" two_workers
marker_ok "after the async kill"
pass "async sample whose worker is killed: failed, with the reason"

# 4. A sample that keeps its worker past scan_timeout: 504, the worker
# killed and replaced, the service healthy.
old=$(workers | tr '\n' ' ')
t0=$(date +%s.%N)
req -F "file=@$T/slow-mem.bin" "$U/check"
t1=$(date +%s.%N)
took=$(awk "BEGIN { printf \"%.1f\", $t1 - $t0 }")
[ "$CODE" = 504 ] || fail "timeout: $CODE $BODY"
expect_contains "$(jget 'd["message"]' <<<"$BODY")" "scan timed out after $TIMEOUT s"
awk "BEGIN { exit !($took >= $TIMEOUT && $took < $TIMEOUT + 4) }" ||
	fail "timeout: answered after $took s (scan_timeout ${TIMEOUT}s)"
wait_for 10 "two workers after the timeout" two_workers
[ "$(workers | tr '\n' ' ')" != "$old" ] || fail "the timed-out worker was not replaced"
check_workers "after the timeout"
req "$U/status"
[ "$CODE" = 200 ] || fail "status after the timeout: $CODE $BODY"
marker_ok "after the timeout"
expect_contains "$(cat "$T/scand.log")" "scan worker killed after $TIMEOUT s (scan_timeout)"
pass "sample past scan_timeout: 504 after $took s, worker replaced, service healthy"

# 5. A reload replaces every worker (new rules, new processes).
old=$(workers | tr '\n' ' ')
kill -HUP "$SCAND_PID"
new_set() { two_workers && [ -z "$(comm -12 <(echo "$old" | tr ' ' '\n' | sed '/^$/d' | sort) <(workers | sort))" ]; }
wait_for 15 "the workers to be replaced on SIGHUP" new_set
check_workers "after SIGHUP"
marker_ok "after SIGHUP"
pass "SIGHUP: both workers replaced"

last=$(workers)
kill -TERM "$SCAND_PID"
wait "$SCAND_PID" || fail "vigil-scand did not stop cleanly"
for w in $last; do
	[ ! -d "/proc/$w" ] || fail "worker $w outlived vigil-scand"
done
pass "stop: no worker left behind"
