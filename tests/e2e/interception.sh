#!/bin/bash
# TLS interception: a second CA serving the center's name (what an
# intercepting proxy does). The agent pinned to the real CA must refuse,
# naming the issuer it was shown, the CA it expected, and that interception
# is not supported; nothing is enrolled.
. "$(dirname "$0")/lib.sh"

standard_center
TOKEN=$(new_token)
REAL_GW=$GW

# The impostor: another CA, another center answering for the same name.
make_pki "$T/evil"
PG_DB=evil write_conf "$T/evil.conf" "$T/evil" "$T/evildata"
sed -i 's/^\[center\]$/[center]\nrequire_approval = no/' "$T/evil.conf"
"$VIGILD" -d -c "$T/evil.conf" >>"$T/evil.log" 2>&1 &
PIDS+=($!)
for i in $(seq 1 100); do [ -s "$T/evildata/vigild.ports" ] && break; sleep 0.1; done
EVIL_GW=$(sed -E 's/.*"gateway": ([0-9]+).*/\1/' "$T/evildata/vigild.ports")

export VIGIL_MACHINE_ID_FILE
VIGIL_MACHINE_ID_FILE=$(machine_id i1)
out=$("$AGENT" enroll --server "https://127.0.0.1:$EVIL_GW" --token "$TOKEN" \
	--ca "$PKI/ca.crt" --data-dir "$T/agent" 2>&1) &&
	fail "enrolled through an intercepting server"
echo "$out"
expect_contains "$out" "interception is not supported"
CA_SUBJ=$(openssl x509 -in "$PKI/ca.crt" -noout -subject -nameopt RFC2253 | sed 's/^subject=//')
expect_contains "$out" "$CA_SUBJ"
[ ! -f "$T/agent/agent.crt" ] || fail "a certificate was saved"
n=$(curl -sS --cacert "$T/evil/ca.crt" -H "Authorization: Bearer $(cat "$T/evildata/admin.key")" \
	"https://127.0.0.1:$(sed -E 's/.*"admin": ([0-9]+).*/\1/' "$T/evildata/vigild.ports")/api/v1/agents" | grep -c '"id"' || true)
[ "$n" -eq 0 ] || fail "the impostor got an enrollment"
pass "interception refused with a clear message"

# Fingerprint pinning catches the same impostor.
FP=$("$CTL" pki show --dir "$PKI" --json | sed -nE 's/.*"fingerprint_sha256": "([0-9a-f:]+)".*/\1/p' | head -1)
out=$("$AGENT" enroll --server "https://127.0.0.1:$EVIL_GW" --token "$TOKEN" \
	--ca-fingerprint "$FP" --data-dir "$T/agent-fp" 2>&1) &&
	fail "fingerprint pin accepted the impostor"
expect_contains "$out" "fingerprint"
pass "fingerprint pin refuses the impostor"

# And the real center still works for the same agent.
"$AGENT" enroll --server "https://127.0.0.1:$REAL_GW" --token "$TOKEN" \
	--ca "$PKI/ca.crt" --data-dir "$T/agent" >/dev/null 2>&1 || fail "real enroll"
pass "real center enrolls"
