#!/bin/bash
# `vigild -n` and every start check more than syntax: each problem is named
# with the file and the fix.
. "$(dirname "$0")/lib.sh"

PKI=$T/pki
make_pki "$PKI"
write_conf "$T/ok.conf" "$PKI" "$T/data"
out=$("$VIGILD" -n -c "$T/ok.conf" 2>&1) || fail "good config: $out"
expect_contains "$out" "configuration OK"
# and warns of nothing (on PostgreSQL, checking [store] url once warned
# that the store's metric was used before it was declared).
if grep -q "WARN" <<<"$out"; then fail "warnings on a good config: $out"; fi
pass "good config passes, without a warning"

printf '[center]\nfqdn = x.example.org\nbogus = 1\n[gateway]\nport = 70000\n' >"$T/bad.conf"
out=$("$VIGILD" -n -c "$T/bad.conf" 2>&1) && fail "bad config passed"
echo "$out"
expect_contains "$out" "bad.conf:3"
expect_contains "$out" "bogus"
expect_contains "$out" "bad.conf:5"
expect_contains "$out" "70000"
pass "syntax errors with file:line"

# Server certificate for another name.
sed "s/^fqdn = .*/fqdn = other.example.org/" "$T/ok.conf" >"$T/name.conf"
out=$("$VIGILD" -n -c "$T/name.conf" 2>&1) && fail "wrong fqdn passed"
expect_contains "$out" "does not name other.example.org"
pass "FQDN not in the certificate"

# Key that does not match the certificate.
make_pki "$T/pki2"
cp -a "$PKI" "$T/pki3"
cp "$T/pki2/server.key" "$T/pki3/server.key"
sed "s#^pki_dir = .*#pki_dir = $T/pki3#" "$T/ok.conf" >"$T/key.conf"
out=$("$VIGILD" -n -c "$T/key.conf" 2>&1) && fail "mismatched key passed"
expect_contains "$out" "does not belong to"
pass "mismatched key"

# Server certificate from another CA.
cp -a "$PKI" "$T/pki4"
cp "$T/pki2/server.crt" "$T/pki2/server.key" "$T/pki4/"
sed "s#^pki_dir = .*#pki_dir = $T/pki4#" "$T/ok.conf" >"$T/chain.conf"
out=$("$VIGILD" -n -c "$T/chain.conf" 2>&1) && fail "foreign chain passed"
expect_contains "$out" "does not verify against the CA"
pass "chain from another CA"

# Keys others can read.
cp -a "$PKI" "$T/pki5"
chmod 644 "$T/pki5/server.key"
sed "s#^pki_dir = .*#pki_dir = $T/pki5#" "$T/ok.conf" >"$T/perm.conf"
out=$("$VIGILD" -n -c "$T/perm.conf" 2>&1) && fail "readable key passed"
expect_contains "$out" "chmod 600"
pass "readable key refused"

# Node names go into the nodes' messages: no spaces or odd characters;
# node_url is an https URL of a host.
sed "0,/^\[center\]/s//[center]\nnode_name = node one/" "$T/ok.conf" >"$T/node.conf"
out=$("$VIGILD" -n -c "$T/node.conf" 2>&1) && fail "a node_name with a space passed"
expect_contains "$out" "[center] node_name = node one: 1 to 100 of"
sed "0,/^\[center\]/s//[center]\nnode_url = http:\/\/vigil.example.org/" "$T/ok.conf" >"$T/nurl.conf"
out=$("$VIGILD" -n -c "$T/nurl.conf" 2>&1) && fail "an http node_url passed"
expect_contains "$out" "[center] node_url = http://vigil.example.org: give it as https://HOST[:PORT]"
pass "bad node_name and node_url refused by -n"

# CA key belongs to another CA: the key process says so.
cp -a "$PKI" "$T/pki6"
cp "$T/pki2/ca.key" "$T/pki6/ca.key"
sed "s#^pki_dir = .*#pki_dir = $T/pki6#" "$T/ok.conf" >"$T/cakey.conf"
out=$("$VIGILD" -n -c "$T/cakey.conf" 2>&1) && fail "wrong CA key passed"
expect_contains "$out" "does not belong to"
pass "wrong CA key"

# A port already in use by another running center (another data
# directory; a port held by the center of the same configuration passes,
# see config_check_running.sh).
start_center "$T/ok.conf" "$T/data"
P=$GW
GW_PORT=$P write_conf "$T/busy.conf" "$PKI" "$T/data-other"
out=$("$VIGILD" -n -c "$T/busy.conf" 2>&1) && fail "busy port passed"
expect_contains "$out" "127.0.0.1:$P: cannot bind"
pass "busy port named"

# Missing PKI: the fix is named.
sed "s#^pki_dir = .*#pki_dir = $T/nope#" "$T/ok.conf" >"$T/nopki.conf"
out=$("$VIGILD" -n -c "$T/nopki.conf" 2>&1) && fail "missing PKI passed"
expect_contains "$out" "vigilctl pki init"
pass "missing PKI explained"
