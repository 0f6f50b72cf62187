#!/bin/bash
# A nearly full disk: the data directory lives on a small tmpfs. Below
# [center] min_free_space vigild refuses to start with one message naming
# the data directory and the free space; while running, the metric shows
# it, admin changes get 507 naming the data directory, agents are told to
# send again later (503 + Retry-After), reads go on, the log says it once
# (no flood), and all is back once space is freed. Needs root to mount.
. "$(dirname "$0")/lib.sh"

MNT=$T/mnt
mkdir -p "$MNT"
if ! mount -t tmpfs -o size=32m tmpfs "$MNT" 2>/dev/null; then
	echo "skip: cannot mount a tmpfs (needs root)"
	exit 77
fi
# Unmounted before lib.sh's cleanup removes $T.
at_exit 'umount "$MNT"'

PKI=$T/pki
DATA=$MNT/data
make_pki "$PKI"
write_conf "$T/vigild.conf" "$PKI" "$DATA" "min_free_space = 8M"
start_center "$T/vigild.conf" "$DATA"

metric() {
	api GET /metrics | sed -nE "s/^$1 ([0-9.e+]+)\$/\\1/p"
}
wait_metric() {
	local i
	for i in $(seq 1 150); do
		[ "$(metric "$1")" = "$2" ] && return 0
		sleep 0.2
	done
	fail "$1 is '$(metric "$1")', expected $2"
}
wait_metric vigil_store_low_space 0
new_token >/dev/null || fail "token create with room"

# Leave about 4 MiB free: below the 8 MiB threshold, enough for SQLite.
FREE=$(($(stat -f -c '%a * %S' "$MNT")))
dd if=/dev/zero of="$MNT/filler" bs=1M count=$(((FREE >> 20) - 4)) status=none
wait_metric vigil_store_low_space 1
FB=$(metric vigil_store_free_bytes)
[ "${FB%.*}" -lt $((8 << 20)) ] || fail "vigil_store_free_bytes $FB"

CODE=$(curl -sS -o "$T/tok.json" -w '%{http_code}' --cacert "$PKI/ca.crt" \
	-H "Authorization: Bearer $VIGIL_API_KEY" -X POST -d '{}' \
	"https://127.0.0.1:$ADM/api/v1/tokens")
[ "$CODE" = 507 ] || fail "token create on a full disk: $CODE $(cat "$T/tok.json")"
expect_contains "$(cat "$T/tok.json")" "$DATA"
for i in 1 2 3 4 5; do
	"$CTL" token create >/dev/null 2>&1 && fail "token create accepted"
done
"$CTL" token list >/dev/null || fail "reads refused on a full disk"
[ "$(grep -c 'below min_free_space' "$T/vigild.log")" = 1 ] ||
	fail "low space logged $(grep -c 'below min_free_space' "$T/vigild.log") times"
pass "low space: metric 1, 507 naming $DATA, reads work, logged once"

rm -f "$MNT/filler"
wait_metric vigil_store_low_space 0
new_token >/dev/null || fail "token create after space was freed"
pass "space freed: changes accepted again"

# Start on a full disk: one clear message, not "disk I/O error".
stop_center
dd if=/dev/zero of="$MNT/filler" bs=1M count=$(((FREE >> 20) - 4)) status=none
rc=0
timeout 20 "$VIGILD" -d -c "$T/vigild.conf" >"$T/start.out" 2>&1 || rc=$?
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "vigild started on a full disk (exit $rc)"
expect_contains "$(cat "$T/start.out")" "$DATA: "
expect_contains "$(cat "$T/start.out")" "MiB) free, below [center] min_free_space"
grep -q "disk I/O error" "$T/start.out" && fail "start says disk I/O error"
pass "start on a full disk refused naming $DATA and the free space"
