#!/bin/bash
# A TLS forwarding target's client key must be its own: the CA's private
# key or the server certificate's (by path or as a copy elsewhere) is
# refused, through the API and in the targets file, so the main process
# never loads the CA key that only the key process may hold.
. "$(dirname "$0")/lib.sh"

standard_center
cp "$PKI/ca.key" "$T/copy.key"
chmod 600 "$T/copy.key"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-keyout "$T/own.key" -out "$T/own.crt" -subj /CN=fwd -days 30 2>/dev/null
chmod 600 "$T/own.key"

add() { # NAME CERT KEY: HTTP status of POST /api/v1/forward
	curl -sS -o "$T/add" -w '%{http_code}' --cacert "$PKI/ca.crt" \
		-H "Authorization: Bearer $VIGIL_API_KEY" -X POST \
		"https://127.0.0.1:$ADM/api/v1/forward" -d "{\"name\":\"$1\",
		\"transport\":\"tls\",\"host\":\"127.0.0.1\",\"port\":6514,
		\"ca_file\":\"$PKI/ca.crt\",\"cert_file\":\"$2\",\"key_file\":\"$3\"}"
}
for k in "ca:$PKI/ca.crt:$PKI/ca.key" "copy:$PKI/ca.crt:$T/copy.key" \
	"srv:$PKI/server.crt:$PKI/server.key"; do
	IFS=: read -r n crt key <<<"$k"
	c=$(add "$n" "$crt" "$key")
	[ "$c" = 400 ] || fail "target $n with key $key: $c $(cat "$T/add")"
	expect_contains "$(cat "$T/add")" "key_file"
done
n=$(db "SELECT count(*) FROM forward_targets")
[ "$n" = 0 ] || fail "$n refused targets stored"
pass "the CA's and the server's keys are refused as client keys (API)"

c=$(add own "$T/own.crt" "$T/own.key")
[ "$c" = 201 ] || fail "a key of its own is refused: $c $(cat "$T/add")"
pass "a key of the target's own is taken"

cat >"$T/targets" <<EOT
[siem]
transport = tls
host = 127.0.0.1
ca_file = $PKI/ca.crt
cert_file = $PKI/ca.crt
key_file = $T/copy.key
EOT
write_conf "$T/check.conf" "$PKI" "$DATA" "[forward]" "targets = $T/targets"
if "$VIGILD" -n -c "$T/check.conf" >"$T/check.out" 2>&1; then
	fail "vigild -n accepts the CA key in the targets file"
fi
expect_contains "$(cat "$T/check.out")" "key_file"
pass "the targets file is refused too"
