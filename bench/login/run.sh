#!/bin/bash
# Cost of an admin login (argon2id verify, session row) against a plain
# API-key request, on a real vigild over loopback. One curl process sends
# the N requests of a kind over one kept-alive TLS connection, so the
# difference between the lines is the login's own cost: the time the admin
# listener's event loop is busy per login.
#   N=50 bench/login/run.sh [BUILD_DIR]
set -euo pipefail
B=$(cd "${1:-build}" && pwd)
N=${N:-50}
T=$(mktemp -d /tmp/vigil-bench-login.XXXXXX)
trap 'kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true; rm -rf "$T"' EXIT
"$B/vigilctl" pki init --dir "$T/pki" --domain bench.vigil.test --san 127.0.0.1 >/dev/null
cat >"$T/vigild.conf" <<CONF
[center]
fqdn = bench.vigil.test
user = root
pki_dir = $T/pki
data_dir = $T/data
[gateway]
listen = 127.0.0.1
port = 0
[admin]
listen = 127.0.0.1
port = 0
login_rate = 100000
CONF
"$B/vigild" -d -c "$T/vigild.conf" >"$T/vigild.log" 2>&1 &
PID=$!
for _ in $(seq 1 100); do [ -s "$T/data/vigild.ports" ] && break; sleep 0.1; done
ADM=$(sed -E 's/.*"admin": ([0-9]+).*/\1/' "$T/data/vigild.ports")
export VIGIL_SERVER=https://127.0.0.1:$ADM VIGIL_CA=$T/pki/ca.crt
export VIGIL_API_KEY=$(cat "$T/data/admin.key")
echo 'bench password 1' | "$B/vigilctl" user add bench --role readonly --password-stdin >/dev/null

# run PATH [curl args]: microseconds per request, N requests on one
# connection (the best of 3 rounds: the machine is shared).
run() {
	local p=$1 start end best=0 r us
	shift
	for r in 1 2 3; do
		start=$(date +%s%N)
		curl -sS --cacert "$VIGIL_CA" "$@" \
			$(for _ in $(seq 1 "$N"); do echo "$VIGIL_SERVER$p"; done) >/dev/null
		end=$(date +%s%N)
		us=$(((end - start) / N / 1000))
		[ "$best" -eq 0 ] || [ "$us" -lt "$best" ] && best=$us
	done
	echo "$best"
}
health_us=$(run /api/v1/health)
get_us=$(run /api/v1/session -H "Authorization: Bearer $VIGIL_API_KEY")
login_us=$(run /api/v1/login -d '{"username": "bench", "password": "bench password 1"}')
bad_us=$(run /api/v1/login -d '{"username": "nobody", "password": "bench password 1"}')
echo "N=$N requests of each kind over one TLS connection, best of 3"
printf 'GET /api/v1/health (no credentials): %6d us/request\n' "$health_us"
printf 'GET /api/v1/session with an API key: %6d us/request\n' "$get_us"
printf 'POST /api/v1/login, right password:  %6d us/request (+%d us)\n' "$login_us" $((login_us - get_us))
printf 'POST /api/v1/login, unknown user:    %6d us/request (+%d us)\n' "$bad_us" $((bad_us - get_us))
