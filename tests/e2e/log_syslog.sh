#!/bin/bash
# Logging to syslog (issue 17): with `log = syslog`, vigild and
# vigil-scand send their lines to the local syslog daemon even in the
# foreground (-d, as under systemd), at the right severity and facility
# daemon, and no longer to standard error; the default (`auto`) keeps
# standard error with -d. The receiver is a real rsyslogd on /dev/log.
#
# glibc's syslog() writes to /dev/log, a fixed path: the test runs in a
# mount namespace of its own with a private /dev (the host's devices bound
# in), so its rsyslogd owns /dev/log there and the host is not touched.
if [ -z "${VIGIL_LOG_NS:-}" ]; then
	if ! unshare -m --propagation private true 2>/dev/null; then
		echo "skip: cannot make a mount namespace (unshare -m) here"
		exit 77
	fi
	VIGIL_LOG_NS=1 exec unshare -m --propagation private bash "$0" "$@"
fi
. "$(dirname "$0")/lib.sh"
. "$SRC/tests/e2e/rsyslog.inc"

# A private /dev: a tmpfs with the host's device nodes bound in.
mkdir "$T/dev"
mount -t tmpfs -o mode=0755 vigil-test-dev "$T/dev" || fail "tmpfs for /dev"
for n in null zero full random urandom tty; do
	[ -e "/dev/$n" ] || continue
	touch "$T/dev/$n"
	mount --bind "/dev/$n" "$T/dev/$n" || fail "bind /dev/$n"
done
for d in pts shm; do
	[ -d "/dev/$d" ] || continue
	mkdir "$T/dev/$d"
	mount --rbind "/dev/$d" "$T/dev/$d" || fail "bind /dev/$d"
done
ln -s /proc/self/fd "$T/dev/fd"
ln -s /proc/self/fd/0 "$T/dev/stdin"
ln -s /proc/self/fd/1 "$T/dev/stdout"
ln -s /proc/self/fd/2 "$T/dev/stderr"
# Moved, not bound: $T/dev is left an empty directory, so the cleanup's
# rm -r never walks into the bound devices.
mount --move "$T/dev" /dev || fail "private /dev"
mountpoint -q "$T/dev" && fail "$T/dev is still a mount point"
[ ! -e /dev/log ] || fail "/dev/log exists in the private /dev"

RS=$T/rs
mkdir -p "$RS"
rs_start "$RS" "module(load=\"imuxsock\" SysSock.Name=\"/dev/log\")
template(name=\"sev\" type=\"string\" string=\"%programname%|%syslogseverity-text%|%syslogfacility-text%|%msg%\\n\")
action(type=\"omfile\" file=\"$RS/out\" template=\"sev\")"
wait_for 10 "rsyslogd to own /dev/log" test -S /dev/log
in_syslog() { grep -qF -- "$1" "$RS/out" 2>/dev/null; }

# vigild, in the foreground, log = syslog.
PKI=$T/pki
DATA=$T/data
make_pki "$PKI"
write_conf "$T/vigild.conf" "$PKI" "$DATA" "log = syslog" \
	"[syslog]" "enable = yes" "listen = 127.0.0.1" "udp_port = 0" "tcp_port = 0"
start_center "$T/vigild.conf" "$DATA"
wait_for 20 "vigild's start line in syslog" in_syslog "vigild|info|daemon| vigild: $DOMAIN: agent gateway on 127.0.0.1:$GW"
grep -q "agent gateway on" "$T/vigild.log" &&
	fail "with log = syslog vigild still wrote to stderr: $(cat "$T/vigild.log")"
pass "vigild -d with log = syslog logs to syslog (facility daemon), not stderr"

# A worker logs to syslog too, under its seccomp filter (which lets it
# make a datagram socket to /dev/log, and no stream one): the syslog
# worker's first line, a refused 17th TCP connection from one address.
ST=$(sed -E 's/.*"syslog_tcp": ([0-9]+).*/\1/' "$DATA/vigild.ports")
python3 - "$ST" <<'PY' &
import socket, sys, time
conns = [socket.create_connection(("127.0.0.1", int(sys.argv[1]))) for _ in range(17)]
time.sleep(15)
PY
PIDS+=($!)
wait_for 20 "the syslog worker's warning in syslog" \
	grep -qE '^vigild-sl\|warning\|daemon\| syslog: 16 connections from 127.0.0.1 open already; refusing another' "$RS/out"
pass "a sandboxed worker's warning reaches syslog"

# A warning arrives as one: a reload of a broken configuration.
cp "$T/vigild.conf" "$T/vigild.conf.good"
echo "no_such_key = 1" >>"$T/vigild.conf"
kill -HUP "$CENTER_PID"
# A message of several lines is sent a record per line, each with the
# severity (the reason is on the second line here).
wait_for 20 "the reload warning in syslog" grep -qE '^vigild\|warning\|daemon\|.*no_such_key' "$RS/out"
cp "$T/vigild.conf.good" "$T/vigild.conf"
kill -0 "$CENTER_PID" || fail "vigild died on a broken reload"
pass "warnings arrive with severity warning, a record per line"
stop_center

# The default (auto) keeps standard error in the foreground.
write_conf "$T/auto.conf" "$PKI" "$DATA"
: >"$T/vigild.log"
start_center "$T/auto.conf" "$DATA"
wait_for 20 "vigild's start line on stderr" grep -q "agent gateway on 127.0.0.1:$GW" "$T/vigild.log"
in_syslog "agent gateway on 127.0.0.1:$GW" &&
	fail "log = auto with -d went to syslog"
stop_center
pass "log = auto with -d logs to stderr"

# vigil-scand, in the foreground, log = syslog.
SD=$T/scand
cat >"$T/scand.conf" <<EOC
[scand]
data_dir = $SD
rules = $SRC/tests/data/scan/markers.yar
log = syslog
[http]
listen = 127.0.0.1
port = 0
[https]
enable = no
EOC
"$BIN/vigil-scand" -d -c "$T/scand.conf" >>"$T/scand.log" 2>&1 &
PIDS+=($!)
wait_for 20 "vigil-scand's start line in syslog" grep -qE '^vigil-scand\|info\|daemon\| vigil-scand: rules ' "$RS/out"
grep -q "vigil-scand: rules" "$T/scand.log" &&
	fail "with log = syslog vigil-scand still wrote to stderr"
pass "vigil-scand -d with log = syslog logs to syslog"
