#!/bin/bash
# Role certificates: `vigilctl pki issue` writes the component's role into
# its certificate, and vigil-inteld lets a certificate do what its role
# may (docs/pki.md, "Who accepts whom"): an update certificate
# administers, a scand certificate only looks up, a collector certificate
# is refused, a certificate without a role gets [https] cert_role.
. "$(dirname "$0")/lib.sh"

command -v jq >/dev/null || skip "jq missing (scripts/install-deps installs it)"
INTELD=$BIN/vigil-inteld
PKI=$T/pki
DATA=$T/inteld
make_pki "$PKI"

# Issue: names and usage checked, the role readable by pki show, files 0600.
if "$CTL" pki issue --dir "$PKI" --role admin --name x.example.org \
	>"$T/o" 2>&1; then
	fail "pki issue accepted --role admin"
fi
expect_contains "$(cat "$T/o")" "one of center, scand, intel, update, master, collector"
if "$CTL" pki issue --dir "$PKI" --role agent --name x.example.org \
	>"$T/o" 2>&1; then
	fail "pki issue accepted --role agent"
fi
expect_contains "$(cat "$T/o")" "agents get their certificate when they enroll"
if "$CTL" pki issue --dir "$PKI" --role scand --name scand >"$T/o" 2>&1; then
	fail "pki issue accepted a name that is not fully qualified"
fi
expect_contains "$(cat "$T/o")" "give a fully qualified DNS name"
for r in scand update collector; do
	"$CTL" pki issue --dir "$PKI" --out "$T/certs" --role $r \
		--name $r.example.org --san 127.0.0.1 --usage client >"$T/o" 2>&1 ||
		fail "pki issue --role $r: $(cat "$T/o")"
done
expect_contains "$(cat "$T/o")" "Issued a collector certificate (client)"
[ "$(stat -c %a "$T/certs/scand-scand.example.org.key")" = 600 ] ||
	fail "key mode $(stat -c %a "$T/certs/scand-scand.example.org.key")"
if "$CTL" pki issue --dir "$PKI" --out "$T/certs" --role scand \
	--name scand.example.org >"$T/o" 2>&1; then
	fail "pki issue overwrote a certificate without --force"
fi
expect_contains "$(cat "$T/o")" "already exists"
openssl verify -CAfile "$PKI/ca.crt" "$T/certs/update-update.example.org.crt" \
	>/dev/null || fail "the issued certificate does not verify"
openssl x509 -in "$T/certs/update-update.example.org.crt" -noout -ext \
	extendedKeyUsage | grep -q "TLS Web Client Authentication" ||
	fail "no clientAuth"
cp "$PKI/ca.crt" "$T/certs/ca.crt"
cp "$T/certs/scand-scand.example.org.crt" "$T/certs/server.crt"
cp "$T/certs/scand-scand.example.org.key" "$T/certs/server.key"
"$CTL" pki show --dir "$T/certs" --json >"$T/show.json" 2>/dev/null || true
[ "$(jq -r .server.role "$T/show.json")" = scand ] ||
	fail "pki show: role $(jq -c .server "$T/show.json")"
"$CTL" pki show --dir "$PKI" --json >"$T/show.json" 2>/dev/null ||
	fail "pki show of the center's PKI"
[ "$(jq -r .server.role "$T/show.json")" = center ] ||
	fail "the center's certificate has role $(jq -r .server.role "$T/show.json")"
pass "pki issue: roles written, names and overwrites checked"

# A certificate without a role, made by hand with openssl.
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-subj /CN=legacy -keyout "$T/legacy.key" -out "$T/legacy.csr" 2>/dev/null
openssl x509 -req -in "$T/legacy.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" \
	-CAcreateserial -days 2 -out "$T/legacy.crt" 2>/dev/null

cat >"$T/inteld.conf" <<EOC
[inteld]
data_dir = $DATA
map_size = 64M
[https]
listen = 127.0.0.1
port = 0
cert = $PKI/server.crt
key = $PKI/server.key
client_ca = $PKI/ca.crt
EOC
"$INTELD" -d -c "$T/inteld.conf" >>"$T/inteld.log" 2>&1 &
PIDS+=("$!")
wait_for 10 "vigil-inteld listening" test -s "$DATA/vigil-inteld.ports"
U=https://127.0.0.1:$(jq -r .https "$DATA/vigil-inteld.ports")/api/v1

# code CERT METHOD PATH [curl args]: the HTTP status.
code() {
	local c=$1 m=$2 p=$3
	shift 3
	curl -sS --cacert "$PKI/ca.crt" --cert "$c.crt" --key "$c.key" \
		-o "$T/body" -w '%{http_code}' -X "$m" "$@" "$U$p"
}
C=$T/certs
[ "$(code "$C/scand-scand.example.org" GET '/lookup?ip=192.0.2.1')" = 200 ] ||
	fail "scand lookup: $(cat "$T/body")"
[ "$(code "$C/scand-scand.example.org" POST /feeds -d '{"name":"f"}')" = 403 ] ||
	fail "scand adding a feed: $(cat "$T/body")"
expect_contains "$(cat "$T/body")" "role intel, update or master"
[ "$(code "$C/update-update.example.org" POST /feeds -d '{"name":"f"}')" = 201 ] ||
	fail "update adding a feed: $(cat "$T/body")"
[ "$(code "$C/collector-collector.example.org" GET '/lookup?ip=192.0.2.1')" = 403 ] ||
	fail "collector lookup: $(cat "$T/body")"
expect_contains "$(cat "$T/body")" "may not call vigil-inteld"
grep -q "cert:collector.example.org/collector refused" "$T/inteld.log" ||
	fail "the refusal is not logged: $(tail -3 "$T/inteld.log")"
[ "$(code "$T/legacy" GET '/lookup?ip=192.0.2.1')" = 200 ] ||
	fail "role-less lookup: $(cat "$T/body")"
[ "$(code "$T/legacy" POST /feeds -d '{"name":"g"}')" = 403 ] ||
	fail "role-less certificate administering under cert_role = lookup"
pass "vigil-inteld: update administers, scand looks up, collector refused"

# Other X.509 parsers read the certificates whole: Debian's python3
# cryptography (as used by mitmproxy and many SIEM tools) once refused a
# private extension under 2.25 outright; the role is a subjectAltName URI.
for f in "$PKI/server.crt" "$T/certs/update-update.example.org.crt" \
	"$T/certs/scand-scand.example.org.crt"; do
	out=$(/usr/bin/python3 - "$f" <<'PY' 2>&1
import sys
from cryptography import x509
c = x509.load_pem_x509_certificate(open(sys.argv[1], "rb").read())
san = c.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
print(" ".join(san.get_values_for_type(x509.UniformResourceIdentifier)))
PY
) || fail "python3 cryptography cannot read $f: $out"
	expect_contains "$out" "urn:vigil:role:"
done
pass "the certificates parse with python3-cryptography; role as a SAN URI"
