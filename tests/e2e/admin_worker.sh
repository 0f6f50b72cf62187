#!/bin/bash
# [admin] worker = yes (docs/development.md, "The admin worker"): the admin
# API and console are served by one admin worker process that holds the
# connections and does the TLS and HTTP parsing; the core answers every
# request through the admin route table. Checked from outside: the worker
# runs as the configured user with no capabilities, NoNewPrivs and a
# seccomp filter, and the core holds no admin connection; a login gets a
# session cookie (its flags intact) that reads and, with its CSRF token,
# changes; an API key works and a wrong one is refused; a rule upload
# larger than the gateway relay's usual messages is stored whole; a sample
# downloads as a file (Content-Disposition) and opens; the live stream
# receives a task event, ends when its client leaves and is counted; a
# malformed request gets 400 and a body over [admin] max_body 413 from the
# worker, which lives on; the audit log has the client's address; the
# worker's connections reach /metrics; kill -9 of the worker ends its
# streams in the core and gets it restarted (counted), under the same
# sandbox, with the API back; after SIGHUP it serves a renewed server
# certificate without a restart.
. "$(dirname "$0")/lib.sh"

command -v 7z >/dev/null || fail "7z (p7zip-full) is not installed"
export VIGIL_ADMIN_WORKER=1
PKI=$T/pki
DATA=$T/data
make_pki "$PKI"
# As root, the worker runs as nobody (worker_conf).
worker_conf "$T/vigild.conf" "[admin]" "stream_keepalive = 1s"
start_center "$T/vigild.conf" "$DATA"
U="https://127.0.0.1:$ADM"

admin_worker() { center_children --admin-worker; } # the core's child that is the admin worker
one_worker() { [ "$(admin_worker | wc -l)" = 1 ]; }
sandboxed() { worker_sandboxed "admin worker" "$1" "$RUN_AS"; }
wait_for 20 "the admin worker" one_worker
W=$(admin_worker)
sandboxed "$W"
pass "the admin worker ($W) runs as $RUN_AS without capabilities, NoNewPrivs, under seccomp"

# Established admin connections held by a process: its socket inodes
# matched against /proc/net/tcp (state 01) on the admin port.
conns() { established "$1" "$ADM"; }
metric() { metric_value "$(api GET /metrics)" "$1"; }

# --- an API key, and a wrong one ------------------------------------------------
code=$(api GET /api/v1/agents -o "$T/agents.json" -w '%{http_code}')
[ "$code" = 200 ] || fail "API key: $code $(cat "$T/agents.json")"
expect_contains "$(cat "$T/agents.json")" '"items":'
code=$(curl -sS -o "$T/e.json" -w '%{http_code}' --cacert "$PKI/ca.crt" \
	-H "Authorization: Bearer vk_wrong" "$U/api/v1/agents")
[ "$code" = 401 ] || fail "a wrong key: $code"
pass "an API key reads; a wrong one gets 401"

# --- a session cookie -------------------------------------------------------------
echo 'correct horse battery' | "$CTL" user add alice --role operator \
	--password-stdin >/dev/null || fail "user add"
code=$(curl -sS --cacert "$PKI/ca.crt" -D "$T/login.h" -o "$T/login" -w '%{http_code}' \
	-H 'Content-Type: application/json' \
	-d '{"username": "alice", "password": "correct horse battery"}' "$U/api/v1/login")
[ "$code" = 200 ] || fail "login: $code $(cat "$T/login")"
grep -iE '^set-cookie: vigil_session=[0-9a-f]{64}; Path=/; .*Secure; HttpOnly; SameSite=Strict' \
	"$T/login.h" >/dev/null || fail "cookie: $(grep -i set-cookie "$T/login.h")"
SID=$(sed -nE 's/^[Ss]et-[Cc]ookie: vigil_session=([0-9a-f]+);.*/\1/p' "$T/login.h")
CSRF=$(sed -nE 's/.*"csrf_token": *"([0-9a-f]+)".*/\1/p' "$T/login")
[ -n "$SID" ] && [ -n "$CSRF" ] || fail "no session: $(cat "$T/login")"
as() { # COOKIE CSRF METHOD PATH [curl args]: status; body in $T/r
	local c=$1 x=$2 m=$3 p=$4 hx=()
	shift 4
	[ -n "$x" ] && hx=(-H "X-CSRF-Token: $x")
	curl -sS --cacert "$PKI/ca.crt" -o "$T/r" -w '%{http_code}' \
		-H "Cookie: vigil_session=$c" "${hx[@]}" -X "$m" "$U$p" "$@"
}
[ "$(as "$SID" "" GET /api/v1/agents)" = 200 ] || fail "GET with the cookie: $(cat "$T/r")"
s=$(as "$SID" "" POST /api/v1/tokens -d '{"uses": 1}')
[ "$s" = 403 ] || fail "a change without the CSRF token: $s"
s=$(as "$SID" "$CSRF" POST /api/v1/tokens -d '{"uses": 1}')
[ "$s" = 201 ] || fail "a change with the CSRF token: $s $(cat "$T/r")"
out=$(api GET /api/v1/audit)
expect_contains "$out" '"who":"user:alice"'
expect_contains "$out" '"addr":"127.0.0.1"'
pass "a login's cookie reads, changes with its CSRF token; audited with the client's address"

# --- an upload: a rule of 600 KiB -------------------------------------------------
RULE_LEN=$(python3 - "$T/rule.json" <<'EOF'
import json, sys
src = "/* " + "x" * (600 * 1024) + " */\nrule big_upload { strings: $a = \"VIGIL-BIG-UPLOAD\" condition: $a }\n"
json.dump({"name": "big", "kind": "yara", "content": src}, open(sys.argv[1], "w"))
print(len(src))
EOF
)
code=$(api POST /api/v1/rules --data-binary @"$T/rule.json" -o "$T/rule.out" -w '%{http_code}')
[ "$code" = 201 ] || fail "rule upload: $code $(cat "$T/rule.out")"
expect_contains "$(cat "$T/rule.out")" "\"size\":$RULE_LEN"
pass "a 600 KiB rule uploads whole ($(wc -c <"$T/rule.json") bytes of body)"

# --- oversized and malformed requests: answered by the worker, which lives on ----
head -c $((2 * 1024 * 1024)) /dev/zero | tr '\0' 'a' >"$T/big.body"
code=$(api POST /api/v1/rules --data-binary @"$T/big.body" -o "$T/big.out" -w '%{http_code}' || true)
[ "$code" = 413 ] || fail "a body over max_body: $code $(cat "$T/big.out")"
code=$(python3 - "$ADM" "$PKI/ca.crt" <<'EOF'
import socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1]))),
                    server_hostname="127.0.0.1")
s.sendall(b"THIS IS NOT\x01 HTTP\r\n\r\n")
data = b""
while b"\r\n" not in data:
    b = s.recv(4096)
    if not b:
        break
    data += b
print(data.split(b"\r\n")[0].split(b" ")[1].decode() if data else "none")
EOF
)
[ "$code" = 400 ] || fail "a malformed request line: $code"
[ "$(admin_worker)" = "$W" ] || fail "the worker changed: $(admin_worker) (was $W)"
code=$(api GET /api/v1/session -o /dev/null -w '%{http_code}')
[ "$code" = 200 ] || fail "the API after bad requests: $code"
pass "a body over max_body gets 413, a malformed request 400, from the same worker"

# --- a file download: a sample ----------------------------------------------------
TOKEN=$(new_token --uses 2)
export VIGIL_MACHINE_ID_FILE
VIGIL_MACHINE_ID_FILE=$(machine_id s1)
"$AGENT" enroll --server "https://127.0.0.1:$GW" --token "$TOKEN" \
	--ca "$PKI/ca.crt" --data-dir "$T/a" >"$T/enroll.log" 2>&1 ||
	fail "enroll: $(cat "$T/enroll.log")"
head -c 3145728 /dev/urandom >"$T/sample.bin"
SHA=$(sha256sum "$T/sample.bin" | cut -d' ' -f1)
AID=$(sed -nE 's/.*"agent_id": "([^"]+)".*/\1/p' "$T/a/state.json")
CT=$("$CTL" task create collect --agent "$AID" --param path=/tmp/x.bin |
	sed -nE 's/^created task ([0-9a-f-]{36}) .*/\1/p')
[ -n "$CT" ] || fail "collect task not created"
curl -sS -o /dev/null --cacert "$PKI/ca.crt" --cert "$T/a/agent.crt" \
	--key "$T/a/agent.key" "https://127.0.0.1:$GW/v1/tasks" || fail "poll"
curl -sS --cacert "$PKI/ca.crt" --cert "$T/a/agent.crt" --key "$T/a/agent.key" \
	-X POST "https://127.0.0.1:$GW/v1/samples?sha256=$SHA&task=$CT&path=/tmp/x.bin" \
	--data-binary @"$T/sample.bin" >"$T/up.json"
expect_contains "$(cat "$T/up.json")" "$SHA"
code=$(api GET "/api/v1/samples/$SHA/download" -D "$T/dl.h" -o "$T/s.zip" -w '%{http_code}')
[ "$code" = 200 ] || fail "sample download: $code"
grep -qi "^content-disposition: attachment; filename=\"$SHA.zip\"" "$T/dl.h" ||
	fail "Content-Disposition: $(cat "$T/dl.h")"
grep -qi '^content-type: application/zip' "$T/dl.h" || fail "Content-Type: $(cat "$T/dl.h")"
7z x -pinfected -o"$T/x" "$T/s.zip" </dev/null >"$T/7z.log" 2>&1 || fail "7z x: $(cat "$T/7z.log")"
[ "$(sha256sum "$T/x/$SHA" | cut -d' ' -f1)" = "$SHA" ] || fail "the sample differs"
pass "a 3 MiB sample downloads as a file (Content-Disposition) and opens"

# --- the live stream --------------------------------------------------------------
sse() { # NAME: a stream with the API key; $T/NAME.sse.log, then EOF
	curl -sS -N -D - --cacert "$PKI/ca.crt" -H "Authorization: Bearer $VIGIL_API_KEY" \
		"$U/api/v1/stream" >"$T/$1.sse.log" 2>&1 &
	SSE_PID=$!
	(while kill -0 "$SSE_PID" 2>/dev/null; do sleep 0.1; done
	 echo EOF >>"$T/$1.sse.log") &
	PIDS+=("$!" "$SSE_PID")
}
has() { grep -qF -- "$2" "$T/$1.sse.log" 2>/dev/null; }
gauge_is() { [ "$(metric vigil_admin_streams)" = "$1" ]; }
sse one
wait_for 10 "the stream" has one ": vigil live updates"
has one "HTTP/1.1 200" || fail "stream status: $(cat "$T/one.sse.log")"
grep -qi '^content-type: text/event-stream' "$T/one.sse.log" ||
	fail "stream type: $(cat "$T/one.sse.log")"
out=$(api POST /api/v1/tasks -d "{\"kind\": \"inventory\", \"target\": {\"agent\": \"$AID\"}}")
TID=$(sed -nE 's/.*"id":"([0-9a-f-]{36})".*/\1/p' <<<"$out")
[ -n "$TID" ] || fail "task: $out"
wait_for 10 "a task event" has one "data: {\"id\":\"$TID\"}"
grep -B1 -F "data: {\"id\":\"$TID\"}" "$T/one.sse.log" | grep -q '^event: task$' ||
	fail "not a task event: $(cat "$T/one.sse.log")"
wait_for 10 "a keepalive" has one ": keepalive"
[ "$(conns "$CENTER_PID")" = 0 ] || fail "the core holds $(conns "$CENTER_PID") admin connections"
[ "$(conns "$W")" -ge 1 ] || fail "the worker holds no admin connection"
admin_conns() { [ "$(metric 'vigil_connections{listener="admin"}')" -ge 1 ]; }
wait_for 10 "the worker's connections in /metrics" admin_conns
pass "the stream gets a task event through the worker (the core holds no connection; /metrics counts the worker's)"
kill "$SSE_PID"
wait_for 10 "the stream to end in the core when its client left" gauge_is 0
[ "$(metric 'vigil_streams_closed_total{reason="client"}')" = 1 ] ||
	fail "closed streams: $(metric 'vigil_streams_closed_total{reason="client"}')"
pass "a client leaving ends its stream in the core"

# --- kill -9 of the worker ----------------------------------------------------------
sse two
wait_for 10 "a second stream" has two ": vigil live updates"
wait_for 10 "one stream open" gauge_is 1
kill -9 "$W"
other_worker() { local p; p=$(admin_worker); [ -n "$p" ] && [ "$p" != "$W" ]; }
wait_for 20 "a new admin worker" other_worker
W2=$(admin_worker)
sandboxed "$W2"
wait_for 10 "the stream to end with its client" has two EOF
wait_for 10 "the core to end the dead worker's stream" gauge_is 0
api_back() { [ "$(api GET /api/v1/session -o /dev/null -w '%{http_code}' || true)" = 200 ]; }
wait_for 20 "the API back" api_back
[ "$(metric vigil_admin_worker_restarts_total)" = 1 ] ||
	fail "restarts: $(metric vigil_admin_worker_restarts_total)"
grep -q "admin worker 0 (pid $W) killed by signal 9; restarting it" "$T/vigild.log" ||
	fail "no log line for the dead worker"
[ "$(as "$SID" "" GET /api/v1/agents)" = 200 ] || fail "the session after the restart"
pass "kill -9: the worker is restarted ($W2, sandboxed), its stream ended, the session and API back"

# --- SIGHUP: a renewed server certificate --------------------------------------
served() { # the serial of the certificate the admin port shows
	openssl s_client -connect "127.0.0.1:$ADM" -servername "$DOMAIN" </dev/null 2>/dev/null |
		openssl x509 -noout -serial | cut -d= -f2
}
"$CTL" pki issue --dir "$PKI" --role center --name "$DOMAIN" --san 127.0.0.1 \
	--out "$T/renew" >"$T/issue.log" 2>&1 || fail "pki issue: $(cat "$T/issue.log")"
NEW=$(openssl x509 -in "$T/renew/center-$DOMAIN.crt" -noout -serial | cut -d= -f2)
OLD=$(served)
[ -n "$OLD" ] && [ "$OLD" != "$NEW" ] || fail "serials: served '$OLD', new '$NEW'"
own=()
[ "$(id -u)" = 0 ] && own=(-o "$RUN_AS")
install -m 0600 "${own[@]}" "$T/renew/center-$DOMAIN.key" "$PKI/server.key.new"
install -m 0644 "${own[@]}" "$T/renew/center-$DOMAIN.crt" "$PKI/server.crt.new"
mv -f "$PKI/server.key.new" "$PKI/server.key"
mv -f "$PKI/server.crt.new" "$PKI/server.crt"
kill -HUP "$CENTER_PID"
reloaded() { grep -q "admin worker $W2: TLS context reloaded" "$T/vigild.log"; }
wait_for 10 "the worker's TLS reload" reloaded
[ "$(served)" = "$NEW" ] || fail "after SIGHUP the admin port shows $(served), not $NEW"
[ "$(admin_worker)" = "$W2" ] || fail "the worker changed on SIGHUP"
api_back || fail "the API after SIGHUP"
pass "SIGHUP: the admin worker serves the renewed certificate, without a restart"
