#!/bin/bash
# Started as root, vigild gives up root once its ports are bound and its
# key process runs ([center] user; docs/development.md, "Processes and
# users"): checked from outside in /proc, with strace for who opens the CA
# key, and by doing the work after the drop (enrolling an agent, which the
# key process signs; a SIGHUP reload that re-reads the certificates; a
# killed key process replaced by its root monitor, signing again).
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || skip "needs root to start vigild as root"
command -v strace >/dev/null || skip "strace missing (scripts/install-deps installs it)"
RUN_AS=nobody
RUN_UID=$(id -u $RUN_AS)
chmod 711 "$T" # nobody must reach the data and PKI directories below
PKI=$T/pki
DATA=$T/data
make_pki "$PKI"

# A user that does not exist: -n names it, and vigild does not start.
write_conf "$T/bad.conf" "$PKI" "$DATA" "user = vigil-no-such-user"
"$VIGILD" -n -c "$T/bad.conf" >"$T/n.log" 2>&1 && fail "-n accepted a missing user"
expect_contains "$(cat "$T/n.log")" "[center] user: there is no user vigil-no-such-user on this host"
pass "-n names a [center] user that does not exist"

write_conf "$T/vigild.conf" "$PKI" "$DATA" "user = $RUN_AS"
chmod 644 "$T/vigild.conf"
strace -f -qq -e trace=openat,open -o "$T/strace" \
	"$VIGILD" -d -c "$T/vigild.conf" >>"$T/vigild.log" 2>&1 &
STRACE_PID=$!
PIDS+=("$STRACE_PID")
# vigild, not strace, gets the stop at the end (strace only detaches).
at_exit "pkill -TERM -P $STRACE_PID -x vigild"
wait_for 30 "vigild listening" test -s "$DATA/vigild.ports"
# strace's child is vigild; vigild's child is the key monitor (forked, not
# a worker: VIGIL_GW_WORKERS and VIGIL_ADMIN_WORKER add worker children),
# and its child the key process.
CENTER_PID=$(pgrep -P "$STRACE_PID" -x vigild)
MON_PID=$(for p in $(pgrep -P "$CENTER_PID" -x vigild); do
	tr '\0' ' ' <"/proc/$p/cmdline" | grep -q -- '-worker' || echo "$p"
done)
KEY_PID=$(pgrep -P "$MON_PID" -x vigild)
[ -n "$CENTER_PID" ] && [ -n "$MON_PID" ] && [ -n "$KEY_PID" ] ||
	fail "processes: vigild '$CENTER_PID', key monitor '$MON_PID', key process '$KEY_PID'"
GW=$(sed -E 's/.*"gateway": ([0-9]+).*/\1/' "$DATA/vigild.ports")
ADM=$(sed -E 's/.*"admin": ([0-9]+).*/\1/' "$DATA/vigild.ports")
export VIGIL_SERVER="https://127.0.0.1:$ADM" VIGIL_CA="$PKI/ca.crt"
export VIGIL_API_KEY
VIGIL_API_KEY=$(cat "$DATA/admin.key")

status() { awk -v k="$2:" '$1 == k { $1 = ""; print substr($0, 2) }' "/proc/$1/status"; }
# (awk joins the fields with single spaces)
[ "$(status "$CENTER_PID" Uid)" = "$RUN_UID $RUN_UID $RUN_UID $RUN_UID" ] ||
	fail "vigild's uids: $(status "$CENTER_PID" Uid)"
[ "$(status "$CENTER_PID" Groups)" = "$(id -g $RUN_AS)" ] ||
	fail "vigild's groups: '$(status "$CENTER_PID" Groups)'"
[ "$(status "$CENTER_PID" CapEff)" = 0000000000000000 ] ||
	fail "vigild keeps capabilities $(status "$CENTER_PID" CapEff)"
[ "$(status "$CENTER_PID" CapPrm)" = 0000000000000000 ] ||
	fail "vigild may take capabilities back: $(status "$CENTER_PID" CapPrm)"
[ "$(status "$CENTER_PID" NoNewPrivs)" = 1 ] || fail "NoNewPrivs not set"
# The core's seccomp deny-list (src/center/coresandbox.c).
[ "$(status "$CENTER_PID" Seccomp)" = 2 ] ||
	fail "vigild's core has no seccomp filter: Seccomp $(status "$CENTER_PID" Seccomp)"
[ "$(ps -o user= -p "$CENTER_PID")" = "$RUN_AS" ] ||
	fail "ps shows $(ps -o user= -p "$CENTER_PID")"
[ "$(ps -o user= -p "$KEY_PID")" = root ] ||
	fail "the key process runs as $(ps -o user= -p "$KEY_PID")"
[ "$(ps -o user= -p "$MON_PID")" = root ] ||
	fail "the key monitor runs as $(ps -o user= -p "$MON_PID")"
grep -q "vigild: running as $RUN_AS (uid $RUN_UID)" "$T/vigild.log" ||
	fail "the drop is not logged"
pass "vigild runs as $RUN_AS with no capabilities; the key process as root"

# What it writes is its own; the CA key is root's and unreadable to it.
if [ "$VIGIL_STORE" = sqlite ]; then
	[ "$(stat -c %U "$DATA/vigil.db")" = "$RUN_AS" ] || fail "vigil.db owner $(stat -c %U "$DATA/vigil.db")"
else
	[ ! -e "$DATA/vigil.db" ] || fail "a vigil.db beside [store] url"
fi
[ "$(stat -c %U "$DATA/admin.key")" = "$RUN_AS" ] || fail "admin.key owner"
[ "$(stat -c %U:%a "$PKI/ca.key")" = root:600 ] || fail "ca.key is $(stat -c %U:%a "$PKI/ca.key")"
[ "$(stat -c %U "$PKI/server.key")" = "$RUN_AS" ] || fail "server.key owner"
# Only the key process ever opened the CA key.
openers=$(awk '/ca\.key"/ && !/ENOENT/ { print $1 }' "$T/strace" | sort -u)
[ "$openers" = "$KEY_PID" ] ||
	fail "ca.key opened by pids '$openers' (key process $KEY_PID): $(grep 'ca\.key"' "$T/strace")"
pass "store and keys owned by $RUN_AS; only the key process opened ca.key"

# The work goes on after the drop: an agent enrolls (the key process signs
# its certificate) and checks in; SIGHUP re-reads config and certificates.
export VIGIL_MACHINE_ID_FILE
VIGIL_MACHINE_ID_FILE=$(machine_id p1)
TOKEN=$(new_token --uses 1)
"$AGENT" enroll --server "https://127.0.0.1:$GW" --token "$TOKEN" \
	--ca "$PKI/ca.crt" --data-dir "$T/a" >"$T/o" 2>&1 || fail "enroll: $(cat "$T/o")"
"$AGENT" run --once --data-dir "$T/a" >"$T/o" 2>&1 || fail "heartbeat: $(cat "$T/o")"
"$CTL" agent list | grep -q online || fail "agent not online: $("$CTL" agent list)"
kill -HUP "$CENTER_PID"
wait_for 10 "the reload" grep -q "configuration reloaded" "$T/vigild.log"
grep -q "keeping the old" "$T/vigild.log" && fail "reload failed: $(grep 'keeping the old' "$T/vigild.log")"
"$AGENT" run --once --data-dir "$T/a" >"$T/o" 2>&1 || fail "heartbeat after reload: $(cat "$T/o")"
pass "enrollment signed, heartbeat served and SIGHUP reload done after the drop"

# The key process dies after the drop: its monitor (still root) starts a
# new one, which reads the CA key again, and vigild takes the new channel:
# the next enrollment is signed.
kill -KILL "$KEY_PID"
new_key() {
	NEW_KEY=$(pgrep -P "$MON_PID" -x vigild)
	[ -n "$NEW_KEY" ] && [ "$NEW_KEY" != "$KEY_PID" ]
}
wait_for 30 "a new key process" new_key
[ "$(ps -o user= -p "$NEW_KEY")" = root ] ||
	fail "the new key process runs as $(ps -o user= -p "$NEW_KEY")"
VIGIL_MACHINE_ID_FILE=$(machine_id p2)
TOKEN=$(new_token --uses 1)
"$AGENT" enroll --server "https://127.0.0.1:$GW" --token "$TOKEN" \
	--ca "$PKI/ca.crt" --data-dir "$T/b" >"$T/o" 2>&1 ||
	fail "enroll after the key process was killed: $(cat "$T/o"; tail -5 "$T/vigild.log")"
openers=$(awk '/ca\.key"/ && !/ENOENT/ { print $1 }' "$T/strace" | sort -u | tr '\n' ' ')
[ "$openers" = "$(printf '%s\n' "$KEY_PID" "$NEW_KEY" | sort -u | tr '\n' ' ')" ] ||
	fail "ca.key opened by pids '$openers' (key processes $KEY_PID, $NEW_KEY)"
grep -q "the key process exited (signal 9); starting a new one" "$T/vigild.log" ||
	fail "the restart is not logged"
pass "a killed key process is replaced by its root monitor ($NEW_KEY); enrollment signed again; only key processes opened ca.key"

kill -TERM "$CENTER_PID"
wait "$STRACE_PID" || true
grep -q "vigild: stopped\|shutting down" "$T/vigild.log" || fail "no graceful stop"
pass "graceful stop"
