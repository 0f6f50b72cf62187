#!/bin/bash
# Intelligence feeds pushed from the master (docs/master.md, "Pushing
# intelligence feeds"): center a imports feeds into its vigil-inteld with
# a certificate of role update ([updates] intel_cert), center b has no
# such credential. A feed pushed to both is applied on a (inteld's feed
# then holds its indicator, a malicious verdict) and failed on b with
# why; a bad feed name is refused at once.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/intel.inc"

PKI=$T/pki
make_pki "$PKI"
"$CTL" pki issue --dir "$PKI" --role master --name master.vigil.test >/dev/null ||
	fail "issue master certificate"
"$CTL" pki issue --dir "$PKI" --out "$T/certs" --role update --name upd.vigil.test \
	--usage client >"$T/issue.log" 2>&1 || fail "pki issue: $(cat "$T/issue.log")"
start_intel

start_node() {
	local name=$1 conf=$2 data=$3 pid
	rm -f "$data/vigild.ports"
	"$VIGILD" -d -c "$conf" >>"$T/$name.log" 2>&1 &
	pid=$!
	PIDS+=("$pid")
	wait_for 10 "$name to start" test -s "$data/vigild.ports"
	eval "${name}_ADM=$(sed -E 's/.*"admin": ([0-9]+).*/\1/' "$data/vigild.ports")"
	eval "${name}_MG=$(sed -E 's/.*"manage": ([0-9]+).*/\1/' "$data/vigild.ports")"
	eval "${name}_KEY=$(cat "$data/admin.key")"
}
on() {
	local name=$1 adm key
	shift
	eval "adm=\$${name}_ADM key=\$${name}_KEY"
	VIGIL_SERVER="https://127.0.0.1:$adm" VIGIL_CA="$PKI/ca.crt" \
		VIGIL_API_KEY="$key" "$CTL" "$@"
}

VIGIL_STORE=sqlite write_conf "$T/a.conf" "$PKI" "$T/a" "[updates]" \
	"intel_cert = $T/certs/update-upd.vigil.test.crt" \
	"intel_key = $T/certs/update-upd.vigil.test.key" \
	"[intel]" "url = https://127.0.0.1:$IPORT" "ca = $PKI/ca.crt" \
	"api_key_file = $T/intel.key" "timeout = 3s"
VIGIL_STORE=sqlite write_conf "$T/b.conf" "$PKI" "$T/b"
for n in a b; do
	printf '[manage]\nenable = yes\nlisten = 127.0.0.1\nport = 0\n' >>"$T/$n.conf"
	start_node "$(tr a-z A-Z <<<"$n")" "$T/$n.conf" "$T/$n"
done
write_conf "$T/m.conf" "$PKI" "$T/m" "role = master"
cat >>"$T/m.conf" <<EOF
[master]
cert_file = $PKI/master-master.vigil.test.crt
key_file = $PKI/master-master.vigil.test.key
centers = a=https://127.0.0.1:$A_MG, b=https://127.0.0.1:$B_MG
EOF
start_node M "$T/m.conf" "$T/m"

BAD=$(printf 'master feed %s' "$RANDOM$RANDOM" | sha256sum | cut -c1-64)
printf '%s\n' "$BAD" >"$T/pushed-feed.list"
out=$(on M master intel "$T/pushed-feed.list") || fail "master intel: $out"
PUSH=$(sed -nE 's/^pushed intel feed pushed-feed.list \([0-9a-f]{64}\) as push ([0-9a-f-]{36})$/\1/p' <<<"$out")
[ -n "$PUSH" ] || fail "master intel: $out"
settled() {
	on M --json master pushes "$PUSH" | python3 -c '
import json, sys
c = {x["center"]: x for x in json.load(sys.stdin)["centers"]}
sys.exit(0 if c["a"]["state"] == "applied" and c["b"]["state"] == "failed" else 1)'
}
wait_for 30 "the feed applied on a, failed on b" settled
st=$(on M --json master pushes "$PUSH")
python3 - "$st" "$(sha256sum "$T/pushed-feed.list" | cut -c1-64)" <<'PY' || fail "push: $st"
import json, sys
p = json.loads(sys.argv[1])
c = {x["center"]: x for x in p["centers"]}
assert p["kind"] == "intel" and p["name"] == "pushed-feed.list", p
assert c["a"]["version"] == sys.argv[2], c["a"]
assert "HTTP 409" in c["b"]["error"] and "intel_cert" in c["b"]["error"], c["b"]
PY
feed=$(curl -sS --cacert "$PKI/ca.crt" -H "Authorization: Bearer $ILOOKUP" "$IU/feeds/pushed-feed")
[ "$(jq -r '.indicators // .feed.indicators' <<<"$feed")" = 1 ] || fail "inteld's feed: $feed"
expect_contains "$feed" "pushed by master:master.vigil.test"
v=$(curl -sS --cacert "$PKI/ca.crt" -H "Authorization: Bearer $ILOOKUP" "$IU/lookup?sha256=$BAD")
expect_contains "$v" '"malicious"'
out=$(curl -sS --cacert "$PKI/ca.crt" -H "Authorization: Bearer $A_KEY" \
	"https://127.0.0.1:$A_ADM/api/v1/audit?action=intel.import")
expect_contains "$out" '"who":"master:master.vigil.test"'
expect_contains "$out" '"target":"pushed-feed"'
pass "a feed pushed from the master is in a's vigil-inteld (its hash malicious), audited there; b, without the credential, failed with why"

out=$(on M master intel "$T/pushed-feed.list" --name 'bad name.exe' 2>&1) && fail "a bad feed name was taken: $out"
expect_contains "$out" "FEED.csv"
pass "a bad feed name is refused"
