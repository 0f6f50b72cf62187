#!/bin/bash
# [gateway] workers: requests from the network that HTTP parsing lets
# through but the relay to the core does not carry (an absolute-form URI,
# an empty header name) are the client's error: the worker answers 400
# itself. Before, the worker relayed them, the core took the message for a
# protocol error of a hostile worker and killed it with every connection
# it held; one request from anyone, without a certificate, every few
# seconds kept the agent gateway down.
. "$(dirname "$0")/lib.sh"

export VIGIL_GW_WORKERS=1
standard_center

workers() { center_children --gateway-worker; } # the core's children that are gateway workers
nworkers() { [ "$(workers | wc -l)" = "$1" ]; }
wait_for 20 "a gateway worker" nworkers 1
W=$(workers)

# raw REQUEST: sends it over TLS without a client certificate; prints the
# status line of the answer (empty when the connection just closed).
raw() {
	printf "$1" | timeout 10 openssl s_client -quiet -connect "127.0.0.1:$GW" \
		-CAfile "$PKI/ca.crt" 2>/dev/null | head -n 1 | tr -d '\r' || true
}

for req in 'GET https://127.0.0.1/v1/ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' \
	'GET /v1/ping HTTP/1.1\r\nHost: x\r\n: empty-name\r\nConnection: close\r\n\r\n'; do
	got=$(raw "$req")
	[ "$got" = "HTTP/1.1 400 Bad Request" ] ||
		fail "request $(printf '%q' "$req") answered '$got', not 400"
done
pass "an absolute-form URI and an empty header name are answered 400 by the worker"

# The worker lives on: a valid request is served by the same process and
# the core logged no protocol error nor restart.
got=$(raw 'GET /v1/no-such-route HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
[ "$got" = "HTTP/1.1 404 Not Found" ] || fail "a request after them: '$got'"
[ "$(workers)" = "$W" ] || fail "worker $W replaced by $(workers)"
if grep -E "protocol error|gateway worker 0 .*(killed|exited)" "$T/vigild.log"; then
	fail "the core stopped the worker"
fi
r=$(metric_value "$(api GET /metrics)" vigil_gateway_worker_restarts_total)
# (not in /metrics before the first restart)
[ -z "$r" ] || [ "$r" = 0 ] || fail "worker restarts: $r"
pass "the worker (pid $W) kept running; no restart"
