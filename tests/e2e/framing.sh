#!/bin/bash
# Requests whose framing is broken or hostile get a prompt, specific answer
# on the admin port (each one used to get none within 20 s, or a wrong
# one): a Content-Length past 2^63 or of 20 digits (413 without reading a
# body), Transfer-Encoding other than chunked (501), Content-Length headers
# that disagree (400), Expect: 100-continue with a body over the limit
# (413 before the body is sent), an unknown expectation (417). A request
# with good framing still works after them. The client waits at most 10 s
# for each answer: no answer is a failure, not a slow pass.
. "$(dirname "$0")/lib.sh"

standard_center

# send NAME WANT REQUEST: one request on a fresh TLS connection; the status
# of the first answer must be WANT.
send() {
	local name=$1 want=$2 req=$3 got
	got=$(python3 - "$ADM" "$PKI/ca.crt" "$req" "$VIGIL_API_KEY" <<'PY'
import socket, ssl, sys
port, ca, req, key = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
req = req.replace("KEY", key).encode().decode("unicode_escape").encode("latin-1")
ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = False
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10),
                    server_hostname="center.vigil.test")
s.sendall(req)
buf = b""
try:
    while b"\r\n" not in buf:
        d = s.recv(4096)
        if not d:
            break
        buf += d
except socket.timeout:
    print("no answer within 10 s")
    sys.exit(0)
print(buf.split(b"\r\n")[0].decode(errors="replace") or "closed without an answer")
PY
)
	case "$got" in
	"HTTP/1.1 $want "*) pass "$name: $got" ;;
	*) fail "$name: want $want, got: $got" ;;
	esac
}

A='Authorization: Bearer KEY\r\n'
send "Content-Length 2^63" 413 "POST /api/v1/tokens HTTP/1.1\r\nHost: x\r\n${A}Content-Length: 9223372036854775808\r\n\r\n"
send "Content-Length of 20 digits" 413 "POST /api/v1/tokens HTTP/1.1\r\nHost: x\r\n${A}Content-Length: 99999999999999999999\r\n\r\n"
send "Content-Length 2^63 on GET" 413 "GET /api/v1/agents HTTP/1.1\r\nHost: x\r\n${A}Content-Length: 9223372036854775808\r\n\r\n"
send "Transfer-Encoding: gzip, chunked" 501 "POST /api/v1/tokens HTTP/1.1\r\nHost: x\r\n${A}Transfer-Encoding: gzip, chunked\r\nContent-Type: application/json\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
send "two Transfer-Encoding headers" 400 "POST /api/v1/tokens HTTP/1.1\r\nHost: x\r\n${A}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
send "Content-Length headers that disagree" 400 "POST /api/v1/tokens HTTP/1.1\r\nHost: x\r\n${A}Content-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}x"
send "Expect: 100-continue, 10 MB, body held back" 413 "POST /api/v1/tokens HTTP/1.1\r\nHost: x\r\n${A}Expect: 100-continue\r\nContent-Length: 10000000\r\n\r\n"
send "Expect: something else" 417 "POST /api/v1/tokens HTTP/1.1\r\nHost: x\r\n${A}Expect: teapot\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
send "Expect: 100-continue within the limit" 100 "POST /api/v1/tokens HTTP/1.1\r\nHost: x\r\n${A}Expect: 100-continue\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n"
send "good framing still works" 201 "POST /api/v1/tokens HTTP/1.1\r\nHost: x\r\n${A}Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
send "equal Content-Length headers" 201 "POST /api/v1/tokens HTTP/1.1\r\nHost: x\r\n${A}Content-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}"
"$CTL" agent list >/dev/null || fail "the center does not answer vigilctl afterwards"
pass "the center answers normally afterwards"
