#!/bin/bash
# vigil-scand with large uploads: bodies stream to disk as they arrive
# (src/common/hstream.c), never whole into memory. A 300 MB upload against
# a 200 MB max_upload gets a JSON 413 without the body being sent
# (Content-Length) or as soon as the cap is passed (chunked), over HTTP and
# HTTPS; a 150 MB
# upload (Content-Length and chunked) is received whole while the daemon's
# peak RSS (VmHWM) stays far below the upload's size; a 20 MB sync check
# streamed to a file finds the marker at its very end.
. "$(dirname "$0")/lib.sh"

SCAND=$BIN/vigil-scand
DATA=$T/scand
RULES="$SRC/tests/data/scan/markers.yar $SRC/tests/data/scan/markers.ioc"
PKI=$T/pki
make_pki "$PKI"

# Async samples stay queued (hold_async): this measures receiving, not
# scanning (the engine reads a sample whole to scan it).
cat >"$T/scand.conf" <<EOC
[scand]
data_dir = $DATA
rules = $RULES
threads = 2
sync_threads = 1
max_upload = 200M
hold_async = yes
[http]
listen = 127.0.0.1
port = 0
[https]
enable = yes
listen = 127.0.0.1
port = 0
cert = $PKI/server.crt
key = $PKI/server.key
EOC

"$SCAND" -d -c "$T/scand.conf" >>"$T/scand.log" 2>&1 &
SCAND_PID=$!
PIDS+=("$SCAND_PID")
for i in $(seq 1 100); do
	[ -s "$DATA/vigil-scand.ports" ] && break
	kill -0 "$SCAND_PID" 2>/dev/null ||
		fail "vigil-scand exited at start: $(tail -5 "$T/scand.log")"
	sleep 0.1
done
[ -s "$DATA/vigil-scand.ports" ] || fail "vigil-scand did not start"
HP=$(sed -E 's/.*"http": ([0-9]+).*/\1/' "$DATA/vigil-scand.ports")
SP=$(sed -E 's/.*"https": ([0-9]+).*/\1/' "$DATA/vigil-scand.ports")
U=http://127.0.0.1:$HP/api/v1

req() {
	BODY=$(curl -sS -o - -w '\n%{http_code}' "$@") || true
	CODE=${BODY##*$'\n'}
	BODY=${BODY%$'\n'*}
}
jget() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
hwm_kb() { awk '/^VmHWM:/ { print $2 }' "/proc/$SCAND_PID/status"; }

# Sparse files: no disk space used on the client's side.
truncate -s 300M "$T/big300"
truncate -s 150M "$T/big150"
printf 'VIGIL-TEST-MARKER-7d1f3a' |
	dd of="$T/big150" bs=1 seek=$((150 * 1024 * 1024 - 30)) conv=notrunc 2>/dev/null
truncate -s 20M "$T/big20"
printf 'VIGIL-TEST-MARKER-7d1f3a' |
	dd of="$T/big20" bs=1 seek=$((20 * 1024 * 1024 - 30)) conv=notrunc 2>/dev/null

# 1. 300 MB with Content-Length: 413 from the headers alone.
t0=$(date +%s.%N)
req -F "file=@$T/big300" "$U/check"
t1=$(date +%s.%N)
[ "$CODE" = 413 ] || fail "300 MB check: $CODE $BODY"
expect_contains "$(jget 'd["message"]' <<<"$BODY")" "larger than the limit"
echo "# 300 MB (Content-Length): 413 after $(awk "BEGIN { printf \"%.2f\", $t1 - $t0 }") s"

# 2. 300 MB chunked: 413 once the cap is passed, and the connection closed.
t0=$(date +%s.%N)
req -H 'Transfer-Encoding: chunked' -F "file=@$T/big300" "$U/checkAsync"
t1=$(date +%s.%N)
[ "$CODE" = 413 ] || fail "300 MB chunked: $CODE $BODY"
expect_contains "$(jget 'd["message"]' <<<"$BODY")" "limit"
echo "# 300 MB (chunked): 413 after $(awk "BEGIN { printf \"%.2f\", $t1 - $t0 }") s"
n=$(find "$DATA/samples" -type f | wc -l)
[ "$n" = 0 ] || fail "refused uploads left $n files in samples/"
pass "300 MB against max_upload 200M: JSON 413 (Content-Length and chunked), nothing left on disk"

# 3. 150 MB, Content-Length and chunked: received whole, queued.
for mode in length chunked; do
	h=()
	[ "$mode" = chunked ] && h=(-H 'Transfer-Encoding: chunked')
	req "${h[@]}" -F "file=@$T/big150" "$U/checkAsync"
	[ "$CODE" = 200 ] || fail "150 MB ($mode): $CODE $BODY"
	id=$(jget 'd["id"]' <<<"$BODY")
	[ "$id" -gt 0 ] || fail "150 MB ($mode): no id: $BODY"
done
sizes=$(find "$DATA/samples" -type f -printf '%s\n' | sort -u)
[ "$sizes" = $((150 * 1024 * 1024)) ] || fail "sample sizes on disk: $sizes"
hwm=$(hwm_kb)
echo "# VmHWM after two 150 MB uploads: $hwm kB"
[ "$hwm" -lt $((48 * 1024)) ] || fail "VmHWM $hwm kB: the upload was held in memory"
pass "150 MB uploads (Content-Length, chunked) streamed to disk; VmHWM $((hwm / 1024)) MB"

# 4. 300 MB over HTTPS: the same 413s. (After the VmHWM check: in the
# sanitizer build, ASan's quarantine keeps 256 MB of freed TLS buffers.)
req --cacert "$PKI/ca.crt" -F "file=@$T/big300" "https://127.0.0.1:$SP/api/v1/check"
[ "$CODE" = 413 ] || fail "300 MB over HTTPS: $CODE $BODY"
req --cacert "$PKI/ca.crt" -H 'Transfer-Encoding: chunked' \
	-F "file=@$T/big300" "https://127.0.0.1:$SP/api/v1/check"
[ "$CODE" = 413 ] || fail "300 MB chunked over HTTPS: $CODE $BODY"
expect_contains "$(jget 'd["message"]' <<<"$BODY")" "limit"
pass "300 MB over HTTPS (Content-Length, chunked): JSON 413"

# 5. A 20 MB sync check goes through a file; the marker at its end is found.
req -F "file=@$T/big20;filename=big20.bin" "$U/check"
[ "$CODE" = 200 ] || fail "20 MB check: $CODE $BODY"
[ "$(jget 'd[0]["reasons"][0]["signature"]["rule_name"]' <<<"$BODY")" = \
	Vigil_Test_Marker ] || fail "20 MB check: $BODY"
pass "20 MB sync check streamed to a file: marker at the end found"

kill -TERM "$SCAND_PID"
wait "$SCAND_PID" || fail "vigil-scand did not stop cleanly"
