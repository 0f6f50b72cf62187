#!/bin/bash
# vigil-scand against THOR's own formats: findings checked field by field
# against THOR's JSON log v3 (NextronSystems/jsonlog: "THOR finding",
# subject "file", reasons with signature and matched strings whose field
# is a JSON pointer that must resolve in the subject, context present),
# the Thunderstorm API's info / status / history shapes, and the details
# of multipart uploads that THOR (Go's mime/multipart) gets right.
. "$(dirname "$0")/lib.sh"

SCAND=$BIN/vigil-scand
DATA=$T/scand

cat >"$T/extra.yar" <<'EOR'
rule Vigil_Test_Binary
{
	meta:
		score = 70
		author = "Vigil tests"
		modified = "2025-02-03"
		reference = "https://example.invalid/a, https://example.invalid/b"
		origin = "external"
	strings:
		$b = { 00 FF 56 49 47 42 49 4E }
		$w = "VIGWIDE" wide
	condition:
		any of them
}
EOR

cat >"$T/scand.conf" <<EOC
[scand]
data_dir = $DATA
rules = $SRC/tests/data/scan/markers.yar $SRC/tests/data/scan/markers.ioc $T/extra.yar
threads = 2
sync_threads = 1
max_upload = 64K
[http]
listen = 127.0.0.1
port = 0
EOC

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
	U=http://127.0.0.1:$HP/api/v1
}

# req curl-args...: status in $CODE, body in $BODY, headers in $T/h.
req() {
	BODY=$(curl -sS -D "$T/h" -o - -w '\n%{http_code}' "$@") || true
	CODE=${BODY##*$'\n'}
	BODY=${BODY%$'\n'*}
}

# py EXPR: evaluates a Python expression over the JSON body d (stdin);
# it must be true, else the script fails naming what.
py() {
	BODY_JSON=$BODY python3 -c 'import json, os, sys
d = json.loads(os.environ["BODY_JSON"])
sys.exit(0 if eval(sys.argv[1]) else 1)' "$1" || fail "$2: $1: $BODY"
}

# The checks a client built on THOR's jsonlog (v3) applies to a finding.
cat >"$T/thor_v3.py" <<'EOP'
import json, sys

def fail(msg):
    print("not THOR v3: " + msg, file=sys.stderr)
    sys.exit(1)

def resolve(obj, ptr):
    if not ptr.startswith("/"):
        fail("field %r is not a JSON pointer" % ptr)
    for tok in ptr[1:].split("/"):
        tok = tok.replace("~1", "/").replace("~0", "~")
        if isinstance(obj, dict) and tok in obj:
            obj = obj[tok]
        elif isinstance(obj, list) and tok.isdigit() and int(tok) < len(obj):
            obj = obj[int(tok)]
        else:
            fail("field %r does not resolve in the subject" % ptr)
    return obj

findings = json.load(sys.stdin)
if not isinstance(findings, list):
    fail("not a list")
for f in findings:
    for k in ("type", "meta", "message", "subject", "score", "reasons",
              "reason_count", "context", "log_version"):
        if k not in f:
            fail("finding lacks %s" % k)
    if f["type"] != "THOR finding" or f["log_version"] != "v3.0.0":
        fail("type/log_version")
    if f["context"] is not None and not isinstance(f["context"], list):
        fail("context is neither null nor a list")
    m = f["meta"]
    for k in ("time", "level", "module", "scan_id", "hostname"):
        if not isinstance(m.get(k), str):
            fail("meta.%s is not a string" % k)
    s = f["subject"]
    if s.get("type") != "file":
        fail("subject type")
    if s.get("exists") not in ("yes", "no", "unknown", "disappeared",
                                "expansion_infeasible", "nonlocal",
                                "excluded"):
        fail("subject.exists %r is not one of THOR's values" % s.get("exists"))
    for k in ("path", "extension", "magic_header"):
        if not isinstance(s.get(k), str):
            fail("subject.%s is not a string" % k)
    if not isinstance(s.get("size"), int):
        fail("subject.size")
    if "permissions" not in s:
        fail("subject.permissions missing")
    fb = s.get("first_bytes")
    if not isinstance(fb, dict) or set(fb) != {"hex", "ascii"}:
        fail("first_bytes")
    want = "".join(chr(b) for b in bytes.fromhex(fb["hex"]) if 0x20 <= b <= 0x7e)
    if fb["ascii"] != want:
        fail("first_bytes.ascii %r is not the printable bytes %r" % (fb["ascii"], want))
    if "content" in s:
        c = s["content"]
        if c.get("type") != "sparse data" or not isinstance(c.get("length"), int):
            fail("content is not sparse data")
        last = -1
        for e in c.get("elements") or []:
            if not isinstance(e.get("offset"), int) or not isinstance(e.get("data"), str):
                fail("content element")
            if e["offset"] <= last:
                fail("content elements not ordered and apart")
            last = e["offset"] + len(e["data"]) - 1
    if f["reason_count"] != len(f["reasons"]):
        fail("reason_count")
    for r in f["reasons"]:
        if r.get("type") != "reason" or not isinstance(r.get("summary"), str):
            fail("reason header")
        g = r["signature"]
        if not isinstance(g.get("score"), int):
            fail("signature.score")
        if g.get("kind") not in ("YARA Rule", "Hash IOC", "Filename IOC"):
            fail("signature.kind")
        if g.get("origin") not in ("internal", "custom", "external"):
            fail("signature.origin %r" % g.get("origin"))
        ref = g.get("reference")
        if ref is not None and not (isinstance(ref, list) and all(isinstance(x, str) for x in ref)):
            fail("signature.reference is not a list of strings: %r" % (ref,))
        for k in ("date", "rule_name", "description", "author", "id"):
            if k in g and not (isinstance(g[k], str) and g[k] != ""):
                fail("signature.%s present but empty or not a string" % k)
        for k in ("tags", "false_positives"):
            if k in g and not (isinstance(g[k], list) and g[k]):
                fail("signature.%s present but empty" % k)
        for mt in r["matched"] or []:
            if not isinstance(mt.get("data"), str):
                fail("matched.data")
            if "field" in mt:
                resolve(s, mt["field"])
print("ok")
EOP
thor_v3() { python3 "$T/thor_v3.py" <<<"$BODY" >/dev/null || fail "$1: $BODY"; }

start_scand

printf 'x VIGIL-TEST-MARKER-7d1f3a y\n' >"$T/marker.bin"
printf 'VIGIL-HASH-SAMPLE-MD5\n' >"$T/hash.txt"
printf 'nothing to see\n' >"$T/clean.txt"
printf 'ab\000\377VIGBIN cd' >"$T/binary.bin"
printf 'V\000I\000G\000W\000I\000D\000E\000' >"$T/wide.bin"

# 1. A YARA finding, field by field as THOR writes it.
req -F "file=@$T/marker.bin;filename=/srv/marker.bin" "$U/check?source=host-a"
[ "$CODE" = 200 ] || fail "check: $CODE $BODY"
thor_v3 "YARA finding"
py 'd[0]["subject"]["exists"] == "yes"' "subject.exists as THOR writes it"
py 'd[0]["context"] is None' "context present, null as THOR writes it"
py 'd[0]["subject"]["first_bytes"]["ascii"] == "x VIGIL-TEST-MARKER-"' "first_bytes.ascii"
sig='d[0]["reasons"][0]["signature"]'
py "$sig[\"reference\"] == [\"https://example.invalid/vigil/test-marker\"]" "reference as a list"
py "$sig[\"origin\"] == \"custom\"" "origin of an operator's rule"
py "$sig[\"date\"] == \"2024-01-01\"" "date from the rule's meta"
py "$sig[\"author\"] == \"Vigil tests\"" "author from the rule's meta"
py 'd[0]["reasons"][0]["matched"][0]["field"] == "/content"' "matched field as a JSON pointer"
py '{"offset": 2, "data": "VIGIL-TEST-MARKER-7d1f3a"} in d[0]["subject"]["content"]["elements"]' "content elements"
py 'd[0]["subject"]["content"]["length"] == 29' "content length"

# Binary and wide matches: data as THOR renders it (Latin-1 code points
# for other bytes, UTF-16 decoded when that gives plain text); reference
# split into a list; origin, date (modified) and author from the meta.
req -F "file=@$T/binary.bin;filename=binary.bin" "$U/check"
thor_v3 "binary match"
py 'd[0]["reasons"][0]["matched"][0]["data"] == "\u0000\u00ffVIGBIN"' "binary match data"
py 'd[0]["reasons"][0]["signature"]["reference"] == ["https://example.invalid/a", "https://example.invalid/b"]' "reference list"
py 'd[0]["reasons"][0]["signature"]["origin"] == "external"' "origin from the meta"
py 'd[0]["reasons"][0]["signature"]["date"] == "2025-02-03"' "date from modified"
req -F "file=@$T/wide.bin;filename=wide.bin" "$U/check"
thor_v3 "wide match"
py 'd[0]["reasons"][0]["matched"][0]["data"] == "VIGWIDE"' "wide match data"

# Hash and filename IOCs: pointers into the subject; the regex of a
# filename IOC is its rule name, as written in the IOC file.
req -F "file=@$T/hash.txt;filename=C:\\Temp\\abcdefgh.ps1" "$U/check"
thor_v3 "IOC findings"
py '[m["field"] for r in d[0]["reasons"] for m in r["matched"] if r["signature"]["kind"] == "Hash IOC"] == ["/hashes/md5"]' "hash IOC field"
py '[m["field"] for r in d[0]["reasons"] for m in r["matched"] if r["signature"]["kind"] == "Filename IOC"] == ["/path"]' "filename IOC field"
py '[r["signature"]["rule_name"] for r in d[0]["reasons"] if r["signature"]["kind"] == "Filename IOC"] == [r"\\Temp\\[a-z]{8}\.ps1$"]' "filename IOC rule name not double-escaped"
py 'd[0]["subject"]["path"] == "C:\\Temp\\abcdefgh.ps1"' "Windows path"
pass "findings match THOR's JSON log v3 field for field"

# 2. status and info as the Thunderstorm API defines them.
req "$U/status"
py 'all(isinstance(d[k], int) and not isinstance(d[k], bool) for k in ("scanned_samples", "queued_async_requests", "avg_scan_time_milliseconds", "avg_wait_time_milliseconds"))' "status integers"
req "$U/info"
py 'isinstance(d["license_expiration"], str) and d["license_expiration"].endswith("Z")' "license_expiration"
py 'isinstance(d["license_owner"], str) and d["license_owner"] != ""' "license_owner"
py 'd["scan_speed_limitation"] == 0' "scan_speed_limitation"
py 'isinstance(d["threads"], int) and isinstance(d["arguments"], list)' "threads, arguments"
py 'all(isinstance(d["version_info"][k], str) for k in ("thor", "build", "signatures", "sigma"))' "version_info keys"
py '__import__("re").fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", d["version_info"]["build"])' "version_info.build as THOR writes it"
python3 -c 'import datetime, sys; datetime.datetime.strptime(sys.argv[1], "%Y-%m-%dT%H:%M:%SZ")' \
	"$(BODY_JSON=$BODY python3 -c 'import json, os; print(json.loads(os.environ["BODY_JSON"])["license_expiration"])')" ||
	fail "license_expiration is not an ISO 8601 date: $BODY"
pass "status and info carry the fields the Thunderstorm API requires"

# 3. pretty=true is honoured, everywhere.
req "$U/status?pretty=true"
case $BODY in *$'\n'*) ;; *) fail "pretty=true: $BODY" ;; esac
req "$U/status"
case $BODY in *$'\n'*) fail "not pretty: $BODY" ;; esac
req -F "file=@$T/marker.bin" "$U/check?pretty=true"
case $BODY in *$'\n'*) ;; *) fail "check?pretty=true: $BODY" ;; esac
py 'd[0]["type"] == "THOR finding"' "pretty check"
pass "pretty=true"

# 4. Histories: every bucket, zeros included, THOR's defaults for values
# out of range, 400 for a value that is no integer; deniedHistory counts
# refused uploads.
for h in sampleHistory queueHistory deniedHistory; do
	req "$U/$h?limit=5"
	[ "$CODE" = 200 ] || fail "$h: $CODE $BODY"
	py 'len(d) == 5 and all(isinstance(v, int) for v in d.values())' "$h: 5 one-minute buckets"
	py '(lambda ks: all((__import__("datetime").datetime.strptime(b, "%Y-%m-%d %H:%M") - __import__("datetime").datetime.strptime(a, "%Y-%m-%d %H:%M")).seconds == 60 for a, b in zip(ks, ks[1:])))(sorted(d))' "$h: consecutive minutes"
	req "$U/$h?aggregate=0&limit=-3"
	[ "$CODE" = 200 ] || fail "$h out of range: $CODE $BODY"
	py 'len(d) >= 1' "$h: defaults for out-of-range values"
	req "$U/$h?aggregate=x"
	[ "$CODE" = 400 ] || fail "$h aggregate=x: $CODE $BODY"
done
req "$U/sampleHistory?aggregate=60&limit=120"
py 'len(d) in (2, 3) and sum(d.values()) >= 5' "sampleHistory, hourly"
req "$U/deniedHistory?limit=5"
d0=$(BODY_JSON=$BODY python3 -c 'import json, os; print(sum(json.loads(os.environ["BODY_JSON"]).values()))')
head -c 70000 /dev/zero >"$T/big.bin"
req -F "file=@$T/big.bin" "$U/check"
[ "$CODE" = 413 ] || fail "oversize: $CODE"
req "$U/deniedHistory?limit=5"
py "sum(d.values()) == $d0 + 1" "deniedHistory counts the refused upload"
head -c 300000 /dev/zero >"$T/huge.bin"
req -F "file=@$T/huge.bin" "$U/checkAsync"
[ "$CODE" = 413 ] || fail "oversize by Content-Length: $CODE"
req "$U/deniedHistory"
py "sum(d.values()) == $d0 + 2 and len(d) >= 1" "deniedHistory counts what the server refuses itself"
pass "histories: every bucket, THOR's defaults, deniedHistory"

# 5. Scan ids are unique across sync and async checks (and restarts).
ids=()
for i in 1 2; do
	req -F "file=@$T/marker.bin" "$U/checkAsync"
	ids+=("$(BODY_JSON=$BODY python3 -c 'import json, os; print(json.loads(os.environ["BODY_JSON"])["id"])')")
	req -F "file=@$T/marker.bin" "$U/check"
	ids+=("$(BODY_JSON=$BODY python3 -c 'import json, os; print(json.loads(os.environ["BODY_JSON"])[0]["meta"]["scan_id"])')")
done
for id in "${ids[0]}" "${ids[2]}"; do
	for i in $(seq 1 100); do
		req "$U/getAsyncResults?id=$id"
		py 'True' "poll"
		case $BODY in *"analysis complete"*) break ;; esac
		sleep 0.1
	done
	BODY=$(BODY_JSON=$BODY python3 -c 'import json, os; print(json.dumps(json.loads(os.environ["BODY_JSON"])["result"]))')
	thor_v3 "async result"
	py "d[0][\"meta\"][\"scan_id\"] == \"$id\"" "async scan_id"
done
kill -TERM "$SCAND_PID"
wait "$SCAND_PID" || fail "vigil-scand did not stop cleanly"
start_scand
req -F "file=@$T/marker.bin" "$U/check"
ids+=("$(BODY_JSON=$BODY python3 -c 'import json, os; print(json.loads(os.environ["BODY_JSON"])[0]["meta"]["scan_id"])')")
req -F "file=@$T/marker.bin" "$U/checkAsync"
ids+=("$(BODY_JSON=$BODY python3 -c 'import json, os; print(json.loads(os.environ["BODY_JSON"])["id"])')")
[ "$(printf '%s\n' "${ids[@]}" | sort -u | wc -l)" = 6 ] ||
	fail "scan ids not unique: ${ids[*]}"
pass "scan ids unique across sync and async checks and a restart: ${ids[*]}"

# 6. Multipart as Go's reader (THOR's) reads it: two file parts are
# refused; filename*= (RFC 5987 / 2231) is understood; backslash escapes
# of a quoted filename are undone where Go undoes them (before a special
# character), a lone backslash before a letter stays (MSIE's paths).
mp() { # mp BOUNDARY-BODY-FILE: POST it to check
	req -X POST -H 'Content-Type: multipart/form-data; boundary=zz' \
		--data-binary "@$1" "$U/check"
}
printf -- '--zz\r\nContent-Disposition: form-data; name="file"; filename="a.bin"\r\n\r\nVIGIL-TEST-MARKER-7d1f3a\r\n--zz\r\nContent-Disposition: form-data; name="file"; filename="b.bin"\r\n\r\nclean\r\n--zz--\r\n' >"$T/two.mp"
mp "$T/two.mp"
[ "$CODE" = 400 ] || fail "two file parts: $CODE $BODY"
expect_contains "$BODY" '"message"'
printf -- '--zz\r\nContent-Disposition: form-data; name="file"; filename="fallback.bin"; filename*=UTF-8'"''"'%%E2%%82%%AC%%20sample.bin\r\n\r\nVIGIL-TEST-MARKER-7d1f3a\r\n--zz--\r\n' >"$T/ext.mp"
mp "$T/ext.mp"
[ "$CODE" = 200 ] || fail "filename*: $CODE $BODY"
py 'd[0]["subject"]["path"] == "\u20ac sample.bin"' "filename* decoded"
printf -- '--zz\r\nContent-Disposition: form-data; name="file"; filename="C:\\\\Users\\\\x\\\\a \\"q\\".exe"\r\n\r\nVIGIL-TEST-MARKER-7d1f3a\r\n--zz--\r\n' >"$T/esc.mp"
mp "$T/esc.mp"
py 'd[0]["subject"]["path"] == "C:\\Users\\x\\a \"q\".exe"' "Go-escaped backslashes undone"
printf -- '--zz\r\nContent-Disposition: form-data; name="file"; filename="C:\\Temp\\b.exe"\r\n\r\nVIGIL-TEST-MARKER-7d1f3a\r\n--zz--\r\n' >"$T/msie.mp"
mp "$T/msie.mp"
py 'd[0]["subject"]["path"] == "C:\\Temp\\b.exe"' "plain Windows path kept"
pass "multipart: two files refused, filename*= and Go's escapes understood"

# 7. HTTP details: Allow on 405, Retry-After on the shutdown 503.
req "$U/check"
[ "$CODE" = 405 ] || fail "GET check: $CODE $BODY"
grep -qi '^Allow: POST' "$T/h" || fail "405 without Allow: $(cat "$T/h")"
req -X POST "$U/status"
[ "$CODE" = 405 ] || fail "POST status: $CODE $BODY"
grep -qi '^Allow: GET' "$T/h" || fail "405 without Allow: $(cat "$T/h")"
# A request whose headers are still arriving when the stop begins is
# answered 503 with Retry-After.
python3 - "$HP" "$SCAND_PID" >"$T/stop.out" <<'EOP' || fail "shutdown 503: $(cat "$T/stop.out")"
import os, signal, socket, sys, time
port, pid = int(sys.argv[1]), int(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port), timeout=10)
body = b'--zz\r\nContent-Disposition: form-data; name="file"; filename="x"\r\n\r\nabc\r\n--zz--\r\n'
s.sendall(b"POST /api/v1/check HTTP/1.1\r\nHost: x\r\n")
time.sleep(0.3)
os.kill(pid, signal.SIGTERM)
time.sleep(0.5)
s.sendall(b"Content-Type: multipart/form-data; boundary=zz\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
resp = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    resp += chunk
print(resp.decode(errors="replace"))
head = resp.split(b"\r\n\r\n", 1)[0].lower()
sys.exit(0 if head.startswith(b"http/1.1 503") and b"\r\nretry-after: " in head else 1)
EOP
wait "$SCAND_PID" || fail "vigil-scand did not stop cleanly"
pass "405 names the allowed method; the shutdown 503 says when to retry"
