#!/bin/bash
# vigil-scand end to end, with curl as the Thunderstorm client: sync checks
# with Content-Length and chunked uploads, findings from YARA, hash and
# filename IOCs, the result cache, malformed and oversized uploads, unknown
# ids, HTTPS with the test PKI (and a required client certificate), the API
# key, kept samples, async checks, SIGHUP rule reload, and a restart with
# samples still queued (they are scanned after the restart, none lost).
. "$(dirname "$0")/lib.sh"

SCAND=$BIN/vigil-scand
DATA=$T/scand
PKI=$T/pki
RULES="$SRC/tests/data/scan/markers.yar $SRC/tests/data/scan/markers.ioc"
make_pki "$PKI"

# A client certificate from the deployment CA, for require_client_cert.
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-subj /CN=collector -keyout "$T/client.key" -out "$T/client.csr" \
	2>/dev/null
openssl x509 -req -in "$T/client.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" \
	-CAcreateserial -days 2 -out "$T/client.crt" 2>/dev/null

write_scand_conf() {
	cat >"$T/scand.conf" <<EOC
[scand]
data_dir = $DATA
rules = $RULES $*
threads = 3
sync_threads = 1
max_upload = 1M
log_level = debug
$HOLD
[http]
listen = 127.0.0.1
port = 0
[https]
enable = yes
listen = 127.0.0.1
port = 0
cert = $PKI/server.crt
key = $PKI/server.key
client_ca = $PKI/ca.crt
$REQUIRE
EOC
}

start_scand() {
	local i
	rm -f "$DATA/vigil-scand.ports"
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
}

stop_scand() {
	kill -TERM "$SCAND_PID"
	wait "$SCAND_PID" || fail "vigil-scand did not stop cleanly"
}

# req OUT_VAR curl-args...: status in $CODE, body in $BODY.
req() {
	BODY=$(curl -sS -o - -w '\n%{http_code}' "$@") || true
	CODE=${BODY##*$'\n'}
	BODY=${BODY%$'\n'*}
}

jget() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }

# -n names what is wrong: a broken rule file, a bad key.
HOLD="" REQUIRE="" write_scand_conf "$SRC/tests/data/scan/broken.yar"
if "$SCAND" -n -c "$T/scand.conf" >"$T/check.out" 2>&1; then
	fail "vigil-scand -n accepted broken rules"
fi
expect_contains "$(cat "$T/check.out")" "broken.yar"
HOLD="threads = many" REQUIRE="" write_scand_conf
if "$SCAND" -n -c "$T/scand.conf" >"$T/check.out" 2>&1; then
	fail "vigil-scand -n accepted a bad value"
fi
expect_contains "$(cat "$T/check.out")" "scand.conf:"
HOLD="" REQUIRE="" write_scand_conf
"$SCAND" -n -c "$T/scand.conf" >"$T/check.out" 2>&1 ||
	fail "vigil-scand -n: $(cat "$T/check.out")"
pass "vigil-scand -n: broken rules and bad values named, good config OK"
start_scand

printf 'x VIGIL-TEST-MARKER-7d1f3a y\n' >"$T/marker.bin"
printf 'VIGIL-HASH-SAMPLE-MD5\n' >"$T/hash.txt"
printf 'nothing to see\n' >"$T/clean.txt"

# 1. Sync check, Content-Length: a YARA finding in Thunderstorm's shape.
req -F "file=@$T/marker.bin;filename=C:\\Temp\\marker.bin" "$U/check?source=host-a"
[ "$CODE" = 200 ] || fail "check: $CODE $BODY"
[ "$(jget 'd[0]["type"]' <<<"$BODY")" = "THOR finding" ] || fail "type: $BODY"
[ "$(jget 'd[0]["meta"]["level"]' <<<"$BODY")" = Alert ] || fail "level: $BODY"
[ "$(jget 'd[0]["meta"]["hostname"]' <<<"$BODY")" = host-a ] || fail "hostname: $BODY"
[ "$(jget 'd[0]["subject"]["path"]' <<<"$BODY")" = 'C:\Temp\marker.bin' ] ||
	fail "path: $BODY"
[ "$(jget 'd[0]["reasons"][0]["signature"]["kind"]' <<<"$BODY")" = "YARA Rule" ] ||
	fail "kind: $BODY"
[ "$(jget 'd[0]["reasons"][0]["signature"]["rule_name"]' <<<"$BODY")" = \
	Vigil_Test_Marker ] || fail "rule: $BODY"
[ "$(jget 'd[0]["reasons"][0]["matched"][0]["offset"]' <<<"$BODY")" = 2 ] ||
	fail "offset: $BODY"
[ "$(jget 'd[0]["subject"]["hashes"]["sha256"]' <<<"$BODY")" = \
	"$(sha256sum <"$T/marker.bin" | cut -c1-64)" ] || fail "sha256: $BODY"
pass "check (Content-Length): YARA finding"

# 2. Chunked upload, old /api/ prefix: hash IOC + filename IOC.
req -H 'Transfer-Encoding: chunked' \
	-F "file=@$T/hash.txt;filename=/opt/evil-tool.exe" "http://127.0.0.1:$HP/api/check"
[ "$CODE" = 200 ] || fail "chunked check: $CODE $BODY"
kinds=$(jget '",".join(sorted(r["signature"]["kind"] for r in d[0]["reasons"]))' <<<"$BODY")
[ "$kinds" = "Filename IOC,Hash IOC" ] || fail "kinds: $kinds: $BODY"
[ "$(jget 'd[0]["reason_count"]' <<<"$BODY")" = 2 ] || fail "reason_count: $BODY"
pass "check (chunked, /api/): hash and filename IOC findings"

# 3. Clean file: []. Then the same marker file again: from the cache.
req -F "file=@$T/clean.txt" "$U/check"
[ "$CODE" = 200 ] && [ "$BODY" = "[]" ] || fail "clean: $CODE $BODY"
hits0=$(curl -sS "$U/status" | jget 'd["cache_hits"]')
req -F "file=@$T/marker.bin;filename=again.bin" "$U/check?source=host-b"
[ "$(jget 'd[0]["subject"]["path"]' <<<"$BODY")" = again.bin ] || fail "cached path: $BODY"
[ "$(jget 'd[0]["meta"]["hostname"]' <<<"$BODY")" = host-b ] || fail "cached host: $BODY"
hits1=$(curl -sS "$U/status" | jget 'd["cache_hits"]')
[ "$hits1" -eq $((hits0 + 1)) ] || fail "cache hits $hits0 -> $hits1"
pass "clean file gives []; second check of a file answered from the cache"

# 3b. A cached result carries only this request's name and host, whatever
# the bytes of the name: non-UTF-8 names come back escaped (\xNN), never
# as the earlier client's path.
for nm in $'caf\xe9.bin' $'\xff\xfe.bin'; do
	hits0=$(curl -sS "$U/status" | jget 'd["cache_hits"]')
	req -F "file=@$T/marker.bin;filename=$nm" "$U/check?source=host-c"
	[ "$CODE" = 200 ] || fail "non-UTF-8 name: $CODE $BODY"
	want=$(printf '%s' "$nm" | python3 -c 'import sys; print("".join(chr(b) if 0x20 <= b < 0x7f and b != 0x5c else "\\x%02x" % b for b in sys.stdin.buffer.read()))')
	[ "$(jget 'd[0]["subject"]["path"]' <<<"$BODY")" = "$want" ] ||
		fail "cached non-UTF-8 path (want $want): $BODY"
	[ "$(jget 'd[0]["meta"]["hostname"]' <<<"$BODY")" = host-c ] ||
		fail "cached non-UTF-8 host: $BODY"
	hits1=$(curl -sS "$U/status" | jget 'd["cache_hits"]')
	[ "$hits1" -eq $((hits0 + 1)) ] || fail "not from the cache: $hits0 -> $hits1"
done
pass "a cached result with a non-UTF-8 name carries this request's own name, escaped"

# 4. Bad input: 400 / 413 with {"message": ...}; the service lives on.
req -X POST -H 'Content-Type: multipart/form-data; boundary=zz' \
	--data-binary $'--zz\r\nBroken\r\n\r\nx' "$U/check"
[ "$CODE" = 400 ] || fail "malformed multipart: $CODE $BODY"
expect_contains "$BODY" '"message"'
req -X POST -H 'Content-Type: application/json' --data-binary '{}' "$U/check"
[ "$CODE" = 400 ] || fail "not multipart: $CODE $BODY"
req -F "other=@$T/clean.txt" "$U/check"
[ "$CODE" = 400 ] || fail "no file field: $CODE $BODY"
expect_contains "$BODY" 'no form field named \"file\"'
head -c $((1024 * 1024 + 1)) /dev/zero >"$T/big.bin"
req -F "file=@$T/big.bin" "$U/check"
[ "$CODE" = 413 ] || fail "oversize: $CODE $BODY"
expect_contains "$BODY" 'max_upload'
req "$U/getAsyncResults?id=424242"
[ "$CODE" = 400 ] || fail "unknown id: $CODE $BODY"
expect_contains "$BODY" '"message":"unknown id 424242'
req "$U/getAsyncResults?id=abc"
[ "$CODE" = 400 ] || fail "bad id: $CODE $BODY"
long=$(head -c 5000 /dev/zero | tr '\0' a)
req -F "file=@$T/clean.txt;filename=$long" "$U/check"
[ "$CODE" = 400 ] || fail "5000-byte filename: $CODE $BODY"
req -F "file=@$T/clean.txt" "$U/check?source=%ff%fe"
[ "$CODE" = 400 ] || fail "non-UTF-8 source: $CODE $BODY"
printf 'GARBAGE\r\n\r\n' | timeout 5 bash -c "cat > /dev/tcp/127.0.0.1/$HP" || true
req "$U/status"
[ "$CODE" = 200 ] || fail "service gone after bad input: $CODE $BODY"
ls "$DATA/samples" | grep -q . && fail "samples left behind: $(ls "$DATA/samples")"
pass "malformed multipart, missing field, long filename -> 400; oversize -> 413; unknown id -> 400; garbage survived"

# 5. HTTPS with the test PKI.
req --cacert "$PKI/ca.crt" -F "file=@$T/marker.bin" "https://127.0.0.1:$SP/api/v1/check"
[ "$CODE" = 200 ] || fail "https check: $CODE $BODY"
expect_contains "$BODY" Vigil_Test_Marker
pass "HTTPS check"

# 6. Async: id at once, then the result.
req -F "file=@$T/hash.txt" "$U/checkAsync?source=host-c"
[ "$CODE" = 200 ] || fail "checkAsync: $CODE $BODY"
id=$(jget 'd["id"]' <<<"$BODY")
for i in $(seq 1 100); do
	req "$U/getAsyncResults?id=$id"
	[ "$(jget 'd["status"]' <<<"$BODY")" = "Sample analysis complete" ] && break
	sleep 0.1
done
[ "$(jget 'd["result"][0]["reasons"][0]["signature"]["kind"]' <<<"$BODY")" = \
	"Hash IOC" ] || fail "async result: $BODY"
[ "$(jget 'd["result"][0]["meta"]["scan_id"]' <<<"$BODY")" = "$id" ] ||
	fail "scan_id: $BODY"
pass "checkAsync + getAsyncResults"

# 7. SIGHUP: new rules and hold_async without a restart.
cat >"$T/extra.yar" <<'EOR'
rule Vigil_Test_Reloaded
{
	meta:
		score = 90
	strings:
		$r = "VIGIL-RELOAD-MARK"
	condition:
		$r
}
EOR
printf 'VIGIL-RELOAD-MARK\n' >"$T/reload.txt"
v0=$(curl -sS "$U/info" | jget 'd["rule_set"]["version"]')
HOLD="hold_async = yes" REQUIRE="" write_scand_conf "$T/extra.yar"
kill -HUP "$SCAND_PID"
for i in $(seq 1 50); do
	v1=$(curl -sS "$U/info" | jget 'd["rule_set"]["version"]')
	[ "$v1" != "$v0" ] && break
	sleep 0.1
done
[ "$v1" != "$v0" ] || fail "SIGHUP did not load the new rules"
req -F "file=@$T/reload.txt" "$U/check"
expect_contains "$BODY" Vigil_Test_Reloaded
pass "SIGHUP reloads the rules"

# 8. Restart with a queue: samples queued on hold, the service stopped,
# started again without the hold: all of them are scanned.
ids=()
for f in marker.bin hash.txt reload.txt clean.txt; do
	req -F "file=@$T/$f" "$U/checkAsync"
	[ "$CODE" = 200 ] || fail "checkAsync $f: $CODE $BODY"
	ids+=("$(jget 'd["id"]' <<<"$BODY")")
done
req "$U/getAsyncResults?id=${ids[0]}"
[ "$(jget 'd["status"]' <<<"$BODY")" = "Waiting for sample analysis" ] ||
	fail "held sample: $BODY"
[ "$(curl -sS "$U/status" | jget 'd["queued_async_requests"]')" = 4 ] ||
	fail "status does not show 4 queued: $(curl -sS "$U/status")"
[ "$(find "$DATA/samples" -type f -perm 0600 | wc -l)" = 4 ] ||
	fail "queued samples not on disk as 0600: $(ls -l "$DATA/samples")"
stop_scand
HOLD="" REQUIRE="" write_scand_conf "$T/extra.yar"
start_scand
for id in "${ids[@]}"; do
	for i in $(seq 1 100); do
		req "$U/getAsyncResults?id=$id"
		[ "$(jget 'd["status"]' <<<"$BODY")" = "Sample analysis complete" ] && break
		sleep 0.1
	done
	[ "$(jget 'd["status"]' <<<"$BODY")" = "Sample analysis complete" ] ||
		fail "sample $id not scanned after the restart: $BODY"
done
req "$U/getAsyncResults?id=${ids[2]}"
expect_contains "$BODY" Vigil_Test_Reloaded
req "$U/getAsyncResults?id=${ids[3]}"
[ "$(jget 'd["result"]' <<<"$BODY")" = "[]" ] || fail "clean async: $BODY"
[ -z "$(ls "$DATA/samples")" ] || fail "samples left behind: $(ls "$DATA/samples")"
hist=$(curl -sS "$U/queueHistory?aggregate=60&limit=120")
[ "$(jget 'sum(d.values())' <<<"$hist")" -ge 5 ] || fail "queueHistory: $hist"
pass "samples queued at a stop are scanned after the restart"
stop_scand

# 9. Required client certificate and API key.
umask 077
echo "k3y-$RANDOM$RANDOM" >"$T/api.key"
HOLD="api_key_file = $T/api.key
keep_samples = yes" REQUIRE="require_client_cert = yes" write_scand_conf
start_scand
S=https://127.0.0.1:$SP/api/v1
code=$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$PKI/ca.crt" \
	"$S/status" 2>/dev/null || true)
[ "$code" = 000 ] || fail "HTTPS without a client certificate: $code"
req --cacert "$PKI/ca.crt" --cert "$T/client.crt" --key "$T/client.key" "$S/status"
[ "$CODE" = 401 ] || fail "no API key: $CODE $BODY"
req --cacert "$PKI/ca.crt" --cert "$T/client.crt" --key "$T/client.key" \
	-H "Authorization: Bearer $(cat "$T/api.key")" -F "file=@$T/marker.bin" "$S/check"
[ "$CODE" = 200 ] || fail "client cert + key: $CODE $BODY"
expect_contains "$BODY" Vigil_Test_Marker
kept=$DATA/samples/$(sha256sum <"$T/marker.bin" | cut -c1-64)
[ "$(stat -c %a "$kept" 2>/dev/null)" = 600 ] ||
	fail "keep_samples: $kept missing or not 0600: $(ls -l "$DATA/samples")"
pass "client certificate required; API key required; sample kept 0600"
stop_scand
