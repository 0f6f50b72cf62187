#!/bin/bash
# The Debian packages (scripts/make-deb) built from this build tree,
# installed on this machine with dpkg, and removed again:
#  - lintian finds nothing that is not explained in an override;
#  - files, the _vigil system user, owners and modes are as documented;
#  - the units pass `systemd-analyze verify`, and their exposure scores
#    (`systemd-analyze security --offline`) are printed and bounded;
#  - each daemon's -n passes with the shipped example configuration (after
#    the PKI is made as the docs say), and each unit's ExecStart line runs
#    as its User with its capabilities (vigild: as root, dropping to
#    _vigil itself) and reports readiness over NOTIFY_SOCKET; an agent
#    enrolled as the docs say checks in;
#  - an upgrade keeps a changed configuration and the data;
#  - remove keeps configuration and data, purge removes them.
# It changes the machine (packages, a system user), so it refuses to run
# where Vigil packages are installed already.
set -euo pipefail
BIN=${VIGIL_BIN:?VIGIL_BIN must point at the build directory}
SRC=${VIGIL_SRC:?VIGIL_SRC must point at the source tree}
T=$(mktemp -d /tmp/vigil-deb.XXXXXX)
chmod 755 "$T"
PIDS=()
PKGS="vigild vigil-agent vigil-scand vigil-inteld vigilctl"

fail() {
	echo "FAIL: $*" >&2
	exit 1
}
pass() { echo "ok: $*"; }

cleanup() {
	local rc=$? p
	for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]:-}"; do [ -n "$p" ] && wait "$p" 2>/dev/null || true; done
	if [ "${INSTALLED:-0}" = 1 ]; then
		dpkg -P --force-all $PKGS >/dev/null 2>&1 || true
	fi
	if [ $rc -ne 0 ]; then
		for f in "$T"/*.log; do
			[ -f "$f" ] && { echo "--- $f" >&2; tail -n 30 "$f" >&2; }
		done
	fi
	rm -rf "$T"
	exit $rc
}
trap cleanup EXIT

[ "$(id -u)" -eq 0 ] || fail "installs packages: run as root"

# One run at a time on a machine (two checkouts' suites may run together),
# and this test's packages carry versions of their own (~pkgtest), so that
# what an interrupted run left installed is known as ours and purged, while
# packages an operator installed are never touched.
exec 9>/var/lock/vigil-pkg-test.lock
flock -w 600 9 || fail "another run of this test held /var/lock/vigil-pkg-test.lock for 10 minutes"
V1=0.1.0~pkgtest1
V2=0.1.0~pkgtest2
for p in $PKGS; do
	st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	case "$st" in
	"" | not-installed) continue ;;
	esac
	v=$(dpkg-query -W -f='${Version}' "$p")
	case "$v" in
	*~pkgtest*) dpkg -P --force-all $PKGS >"$T/leftover.log" 2>&1 ||
		fail "purging an interrupted run's packages: $(tail -3 "$T/leftover.log")"
		echo "note: purged packages an interrupted run of this test left ($p $v, $st)" ;;
	*) [ "$st" = config-files ] ||
		fail "$p $v is installed on this machine ($st); this test installs and purges the packages, remove it first" ;;
	esac
done

# Build: twice, as a version and as a later one for the upgrade.
VIGIL_DEB_VERSION=$V1 bash "$SRC/scripts/make-deb" "$BIN" "$T/v1" \
	>"$T/make-deb.log" 2>&1 || fail "make-deb: $(tail -5 "$T/make-deb.log")"
VIGIL_DEB_VERSION=$V2 bash "$SRC/scripts/make-deb" "$BIN" "$T/v2" \
	>"$T/make-deb2.log" 2>&1 || fail "make-deb $V2: $(tail -5 "$T/make-deb2.log")"
debs() { for p in $PKGS; do ls "$1/${p}_"*.deb; done; }
pass "packages built: $(cd "$T/v1" && echo $(for p in $PKGS; do ls "${p}_"*.deb; done))"

# The web console ships with vigild, where its default console_dir points.
dpkg-deb -c "$(ls "$T/v1"/vigild_*.deb)" >"$T/vigild-contents.log"
grep -qE ' \./usr/share/vigil/console/index\.html$' "$T/vigild-contents.log" ||
	fail "vigild's package lacks /usr/share/vigil/console/index.html"
grep -qE ' \./usr/share/vigil/console/assets/index-[^/]+\.js$' "$T/vigild-contents.log" ||
	fail "vigild's package lacks the console's JavaScript (/usr/share/vigil/console/assets/index-*.js)"
pass "vigild ships the web console in /usr/share/vigil/console"

# lintian: every remaining tag is an error here unless overridden.
lintian --tag-display-limit 0 $(debs "$T/v1") >"$T/lintian.log" 2>&1 || true
if grep -E '^[EW]: ' "$T/lintian.log"; then fail "lintian tags above"; fi
pass "lintian clean"

# Install.
INSTALLED=1
dpkg -i $(debs "$T/v1") >"$T/dpkg-i.log" 2>&1 || fail "dpkg -i: $(tail -5 "$T/dpkg-i.log")"
for f in /usr/sbin/vigild /usr/sbin/vigil-scand /usr/bin/vigil-agent \
	/usr/bin/vigilctl /usr/share/man/man8/vigild.8.gz \
	/usr/share/man/man5/vigild.conf.5.gz /usr/share/man/man8/vigil-agent.8.gz \
	/usr/share/man/man8/vigilctl.8.gz /usr/share/man/man8/vigil-scand.8.gz \
	/usr/share/man/man5/vigil-scand.conf.5.gz /etc/vigil/vigild.conf \
	/etc/vigil/vigil-scand.conf /lib/systemd/system/vigild.service \
	/lib/systemd/system/vigil-scand.service /lib/systemd/system/vigil-agent.service \
	/usr/sbin/vigil-inteld /usr/share/man/man8/vigil-inteld.8.gz \
	/usr/share/man/man5/vigil-inteld.conf.5.gz /etc/vigil/vigil-inteld.conf \
	/lib/systemd/system/vigil-inteld.service /usr/lib/vigil-agent/packaged; do
	[ -e "$f" ] || fail "$f not installed"
done
dpkg-query -W -f='${Conffiles}\n' vigild | grep -q ' /etc/vigil/vigild.conf ' ||
	fail "/etc/vigil/vigild.conf is not a conffile"
dpkg-query -W -f='${Conffiles}\n' vigil-inteld | grep -q ' /etc/vigil/vigil-inteld.conf ' ||
	fail "/etc/vigil/vigil-inteld.conf is not a conffile"
uid=$(id -u _vigil) || fail "no _vigil user"
[ "$uid" -lt 1000 ] || fail "_vigil is not a system user (uid $uid)"
[ "$(getent passwd _vigil | cut -d: -f7)" = /usr/sbin/nologin ] ||
	fail "_vigil has a login shell: $(getent passwd _vigil | cut -d: -f7)"
for d in /var/lib/vigil /var/lib/vigil-scand /var/lib/vigil-inteld; do
	[ "$(stat -c '%U:%G %a' "$d")" = "_vigil:_vigil 700" ] ||
		fail "$d is $(stat -c '%U:%G %a' "$d"), want _vigil:_vigil 700"
done
# The PKI is root's: _vigil may read it (the center's certificate), not
# change it, and never read the CA key.
[ "$(stat -c '%U:%G %a' /etc/vigil/pki)" = "root:_vigil 750" ] ||
	fail "/etc/vigil/pki is $(stat -c '%U:%G %a' /etc/vigil/pki), want root:_vigil 750"
pass "files, conffiles, the _vigil system user (uid $uid) and private directories"

# Units.
for u in vigild vigil-scand vigil-inteld vigil-agent; do
	systemd-analyze verify "/lib/systemd/system/$u.service" >"$T/verify-$u.log" 2>&1 ||
		fail "systemd-analyze verify $u: $(cat "$T/verify-$u.log")"
	score=$(systemd-analyze security --offline=true "/lib/systemd/system/$u.service" 2>&1 |
		sed -nE 's/.*Overall exposure level for [^:]*: ([0-9.]+).*/\1/p')
	[ -n "$score" ] || fail "no exposure score for $u"
	echo "exposure of $u.service: $score"
	max=2.0
	[ "$u" = vigil-agent ] && max=5.5 # root by design, see docs/install.md
	# Started as root to keep the CA key from the network-facing process;
	# vigild itself drops to _vigil (checked below), which the offline
	# score cannot see (docs/install.md).
	[ "$u" = vigild ] && max=2.5
	awk -v s="$score" -v m="$max" 'BEGIN { exit !(s <= m) }' ||
		fail "$u.service exposure $score is above $max: was hardening removed?"
done
pass "units verify; exposure within bounds"

# ExecStart of a unit, with its user, its capabilities, and a notify
# socket: runs it in the background and waits for READY=1.
unit_start() {
	local u=$1 cmd user caps sock
	cmd=$(sed -nE 's/^ExecStart=//p' "/lib/systemd/system/$u.service")
	user=$(sed -nE 's/^User=//p' "/lib/systemd/system/$u.service")
	caps=$(sed -nE 's/^AmbientCapabilities=CAP_//p' "/lib/systemd/system/$u.service" | tr 'A-Z' 'a-z')
	sock=$T/notify-$u
	python3 - "$sock" >"$T/notify-$u.out" 2>&1 <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(60)
while True:
    msg = s.recv(4096).decode()
    print(msg, flush=True)
    if "READY=1" in msg.split("\n"):
        break
PY
	local npid=$!
	for _ in $(seq 1 100); do [ -S "$sock" ] && break; sleep 0.05; done
	chmod 777 "$sock"
	if [ -n "$user" ]; then
		NOTIFY_SOCKET=$sock setpriv --reuid "$user" --regid "$user" --init-groups \
			${caps:+--inh-caps +$caps --ambient-caps +$caps} -- $cmd >"$T/$u.log" 2>&1 &
	else
		NOTIFY_SOCKET=$sock $cmd >"$T/$u.log" 2>&1 &
	fi
	UNIT_PID=$!
	PIDS+=("$UNIT_PID")
	wait "$npid" || fail "$u: no READY=1 on the notify socket: $(tail -5 "$T/$u.log")"
	grep -qx 'READY=1' "$T/notify-$u.out" || fail "$u: notify said $(cat "$T/notify-$u.out")"
}

if [ "$(cat /proc/1/comm)" = systemd ]; then
	echo "note: systemd is PID 1, but this test still runs the units' ExecStart lines directly, so it behaves the same everywhere"
else
	echo "note: systemd is not PID 1 here: running the units' ExecStart lines directly (as their User, with their capabilities and a notify socket)"
fi

# The center, as docs/install.md says: PKI made as root, -n, start.
vigilctl pki init --dir /etc/vigil/pki \
	--domain vigil.example.org --san 127.0.0.1 >"$T/pki.log" 2>&1 ||
	fail "pki init: $(cat "$T/pki.log")"
[ "$(stat -c '%U %a' /etc/vigil/pki/ca.key)" = "root 600" ] ||
	fail "ca.key is $(stat -c '%U %a' /etc/vigil/pki/ca.key), want root 600"
chown _vigil:_vigil /etc/vigil/pki/server.key /etc/vigil/pki/server.crt
vigild -n -c /etc/vigil/vigild.conf \
	>"$T/vigild-n.log" 2>&1 || fail "vigild -n with the shipped config: $(cat "$T/vigild-n.log")"
grep -q 'configuration OK' "$T/vigild-n.log" || fail "vigild -n: $(cat "$T/vigild-n.log")"
runuser -u _vigil -- vigil-scand -n -c /etc/vigil/vigil-scand.conf >"$T/scand-n.log" 2>&1 ||
	fail "vigil-scand -n with the shipped config: $(cat "$T/scand-n.log")"
runuser -u _vigil -- vigil-inteld -n -c /etc/vigil/vigil-inteld.conf >"$T/inteld-n.log" 2>&1 ||
	fail "vigil-inteld -n with the shipped config: $(cat "$T/inteld-n.log")"
pass "vigild -n, vigil-scand -n and vigil-inteld -n pass with the shipped configurations"

unit_start vigild
CENTER=$UNIT_PID
curl -sSf -o /dev/null --cacert /etc/vigil/pki/ca.crt https://127.0.0.1:443/v1/ping ||
	fail "the center does not answer on 443"
[ "$(stat -c %U /var/lib/vigil/vigil.db)" = _vigil ] || fail "vigil.db not owned by _vigil"
ps -o user= -p "$CENTER" | grep -qx _vigil || fail "vigild does not run as _vigil"
grep -qx 'CapEff:[[:space:]]*0000000000000000' "/proc/$CENTER/status" ||
	fail "vigild kept capabilities: $(grep CapEff "/proc/$CENTER/status")"
KEYPROC=$(pgrep -P "$CENTER" -u root | head -1)
[ -n "$KEYPROC" ] || fail "no key process (a root child of vigild)"
runuser -u _vigil -- cat /etc/vigil/pki/ca.key >/dev/null 2>&1 &&
	fail "_vigil can read the CA key"
runuser -u _vigil -- touch /etc/vigil/pki/ca.crt 2>/dev/null &&
	fail "_vigil can change the CA certificate"
pass "vigild started from its unit's ExecStart as root: runs as _vigil without capabilities, its key process ($KEYPROC) as root; _vigil cannot read ca.key or change ca.crt"

# The shipped config runs the agent and admin connections in sandboxed
# workers ([gateway] workers = auto, [admin] worker = yes): one gateway
# worker per core and one admin worker, children of vigild as _vigil with
# no capabilities and a seccomp filter; the core has its own filter.
status() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
[ "$(status "$CENTER" Seccomp)" = 2 ] || fail "vigild's core has no seccomp filter"
NGW=0 NADM=0
for w in $(pgrep -P "$CENTER" -u _vigil); do
	case "$(tr '\0' ' ' <"/proc/$w/cmdline")" in
	*--gateway-worker*) NGW=$((NGW + 1)) ;;
	*--admin-worker*) NADM=$((NADM + 1)) ;;
	*) continue ;;
	esac
	[ "$(status "$w" Seccomp)" = 2 ] || fail "worker $w: Seccomp $(status "$w" Seccomp)"
	[ "$(status "$w" CapEff)" = 0000000000000000 ] || fail "worker $w: CapEff $(status "$w" CapEff)"
	[ "$(status "$w" NoNewPrivs)" = 1 ] || fail "worker $w: no NoNewPrivs"
done
[ "$NGW" = "$(nproc)" ] || fail "$NGW gateway workers, want one per core ($(nproc))"
[ "$NADM" = 1 ] || fail "$NADM admin workers, want 1"
curl -sS -o /dev/null -w '%{http_code}' --cacert /etc/vigil/pki/ca.crt \
	https://127.0.0.1:8443/api/v1/agents >"$T/adm.code" 2>"$T/adm.err" || true
[ "$(cat "$T/adm.code")" = 401 ] ||
	fail "the admin API through its worker: $(cat "$T/adm.code") $(cat "$T/adm.err")"
pass "$NGW gateway workers (one per core) and 1 admin worker as _vigil: Seccomp 2, no capabilities, NoNewPrivs; the core filtered too; the admin API answers through its worker"

unit_start vigil-scand
curl -sSf -o /dev/null http://127.0.0.1:8080/api/v1/status || fail "vigil-scand does not answer"
pass "vigil-scand started from its unit's ExecStart, ready, answers on 8080"

unit_start vigil-inteld
ps -o user= -p "$UNIT_PID" | grep -qx _vigil || fail "vigil-inteld does not run as _vigil"
# No credentials: 401, from a server that verifies against the shipped CA.
code=$(curl -sS -o /dev/null -w '%{http_code}' --cacert /etc/vigil/pki/ca.crt \
	https://127.0.0.1:10443/api/v1/stats) || fail "vigil-inteld does not answer on 10443"
[ "$code" = 401 ] || fail "vigil-inteld answered $code without credentials, want 401"
pass "vigil-inteld started from its unit's ExecStart as _vigil, ready, answers on 10443 (401 without credentials)"

# Agent roll-out as docs/install.md scripts it.
export VIGIL_SERVER=https://127.0.0.1:8443 VIGIL_CA=/etc/vigil/pki/ca.crt
KEY=$(cat /var/lib/vigil/admin.key)
TOKEN=$(VIGIL_API_KEY=$KEY vigilctl --json token create --uses 1 |
	sed -nE 's/.*"token": "([^"]+)".*/\1/p')
FP=$(vigilctl pki show --dir /etc/vigil/pki --json |
	sed -nE 's/.*"fingerprint_sha256": "([0-9a-f:]+)".*/\1/p' | head -1)
printf '%s' deb-test-machine | sha256sum | cut -c1-32 >"$T/machine-id"
export VIGIL_MACHINE_ID_FILE=$T/machine-id
vigil-agent enroll --server https://127.0.0.1:443 --token "$TOKEN" \
	--ca-fingerprint "$FP" >"$T/enroll.log" 2>&1 || fail "enroll: $(cat "$T/enroll.log")"
[ -f /var/lib/vigil-agent/state.json ] || fail "the agent's state is not in /var/lib/vigil-agent"
cmd=$(sed -nE 's/^ExecStart=//p' /lib/systemd/system/vigil-agent.service)
$cmd >"$T/agent.log" 2>&1 &
PIDS+=($!)
ok=0
for _ in $(seq 1 100); do
	if VIGIL_API_KEY=$KEY vigilctl agent list 2>/dev/null | grep -q online; then ok=1; break; fi
	sleep 0.1
done
[ $ok = 1 ] || fail "the packaged agent is not online: $(tail -5 "$T/agent.log")"
pass "agent installed, enrolled and run as its unit says: online"

# Reload (ExecReload = SIGHUP) keeps it running.
kill -HUP "$CENTER"
curl -sSf -o /dev/null --cacert /etc/vigil/pki/ca.crt https://127.0.0.1:443/v1/ping ||
	fail "the center does not answer after SIGHUP"
for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
PIDS=()
pass "reload and stop"

# Upgrade: a changed configuration and the data are kept.
echo "# changed by the administrator" >>/etc/vigil/vigild.conf
# The PKI as earlier packages left it: all _vigil's.
chown _vigil:_vigil /etc/vigil/pki /etc/vigil/pki/ca.key /etc/vigil/pki/ca.crt
chmod 700 /etc/vigil/pki
sum=$(sha256sum /etc/vigil/vigild.conf /var/lib/vigil/admin.key /etc/vigil/pki/ca.key)
dpkg -i $(debs "$T/v2") >"$T/dpkg-up.log" 2>&1 </dev/null || fail "upgrade: $(tail -5 "$T/dpkg-up.log")"
[ "$(dpkg-query -W -f='${Version}' vigild)" = "$V2" ] || fail "not upgraded"
[ "$sum" = "$(sha256sum /etc/vigil/vigild.conf /var/lib/vigil/admin.key /etc/vigil/pki/ca.key)" ] ||
	fail "the upgrade changed the configuration, the admin key or the CA key"
[ -s /var/lib/vigil/vigil.db ] || fail "the database is gone after the upgrade"
[ "$(stat -c '%U:%G %a' /etc/vigil/pki)" = "root:_vigil 750" ] ||
	fail "after the upgrade /etc/vigil/pki is $(stat -c '%U:%G %a' /etc/vigil/pki)"
[ "$(stat -c '%U:%G' /etc/vigil/pki/ca.key)" = root:root ] ||
	fail "after the upgrade ca.key is $(stat -c '%U:%G' /etc/vigil/pki/ca.key)"
pass "upgrade to $V2 keeps the changed configuration, the keys and the data; the CA key moves to root"

# Remove keeps configuration and data; purge removes them.
dpkg -r $PKGS >"$T/dpkg-r.log" 2>&1 || fail "dpkg -r: $(tail -5 "$T/dpkg-r.log")"
[ ! -e /usr/sbin/vigild ] || fail "vigild still installed after remove"
for f in /etc/vigil/vigild.conf /var/lib/vigil/vigil.db /etc/vigil/pki/ca.key /var/lib/vigil-agent/state.json; do
	[ -e "$f" ] || fail "$f removed by dpkg -r (only purge may)"
done
pass "remove keeps configuration, keys and data"
dpkg -P $PKGS >"$T/dpkg-p.log" 2>&1 || fail "dpkg -P: $(tail -5 "$T/dpkg-p.log")"
INSTALLED=0
for f in /etc/vigil /var/lib/vigil /var/lib/vigil-scand /var/lib/vigil-inteld /var/lib/vigil-agent; do
	[ ! -e "$f" ] || fail "$f left after purge"
done
pass "purge removes configuration and data"
