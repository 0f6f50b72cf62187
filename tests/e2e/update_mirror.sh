#!/bin/bash
# The center as update mirror (docs/updates.md): it mirrors a repository
# published with vigilctl from an HTTPS upstream (its own CA, a client
# certificate required) through a real squid with Basic auth, verifies
# the whole chain before serving anything, serves it on the gateway and
# on its own listener, and makes the rule sets that arrive its own
# (versioned, audited, pinnable). A tampered artifact, an expired
# timestamp, a rolled-back repository and a timestamp signed by a key the
# root does not name are each refused, and the state verified before is
# still served. An NTLM-only proxy is refused with a clear message.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/squid.sh"
. "$(dirname "$0")/updates.inc"
command -v jq >/dev/null || skip "jq missing (scripts/install-deps installs it)"
command -v python3 >/dev/null || skip "python3 missing"

chmod 711 "$T" # squid runs as an unprivileged user and must reach its dir
cleanup_squid() {
	squid_stop "$T/sq" 2>/dev/null || true
	squid_stop "$T/sq-ntlm" 2>/dev/null || true
}
at_exit cleanup_squid
cd "$T"

# The vendor's side: keys, a root, one rule set; an upstream with its own
# CA that wants a client certificate.
upd_repo "$T/repo" "$T/keys"
cp "$T/repo/1.root.json" "$T/pinned-root.json"
printf 'rule by_update_v1 { strings: $a = "marker-v1" condition: $a }\n' >v1.yar
upd_publish "$T/repo" "$T/keys" rules/base.yar 1.0 v1.yar
cp -a "$T/repo" "$T/repo-v1"
"$CTL" pki init --dir "$T/upki" --domain updates.vigil.test --san 127.0.0.1 \
	>"$T/upki.log" 2>&1 || fail "upstream pki: $(cat "$T/upki.log")"
"$CTL" pki issue --dir "$T/upki" --out "$T/upki/client" --role center \
	--name center.vigil.test --usage client >>"$T/upki.log" 2>&1 ||
	fail "client certificate: $(cat "$T/upki.log")"
upstream_start "$T/repo" "$T/upki/server.crt" "$T/upki/server.key" "$T/upki/ca.crt"
squid_start "$T/sq" basic mirror 's3cret:pw' || fail "squid (basic) did not start"
printf 'mirror:s3cret:pw' >"$T/proxy-cred"
chmod 600 "$T/proxy-cred"

PKI=$T/pki
DATA=$T/data
make_pki "$PKI"
write_conf "$T/vigild.conf" "$PKI" "$DATA" "[updates]" \
	"root = $T/pinned-root.json" "upstream = https://127.0.0.1:$UP_PORT/" \
	"ca = $T/upki/ca.crt" "cert = $T/upki/client/center-center.vigil.test.crt" \
	"key = $T/upki/client/center-center.vigil.test.key" \
	"proxy = http://127.0.0.1:$SQUID_PORT" "proxy_user_file = $T/proxy-cred" \
	"interval = 1h" "listen = 127.0.0.1" "port = 0"
"$VIGILD" -n -c "$T/vigild.conf" >"$T/check.log" 2>&1 || fail "vigild -n: $(cat "$T/check.log")"
start_center "$T/vigild.conf" "$DATA"
UPD=$(sed -E 's/.*"updates": ([0-9]+).*/\1/' "$DATA/vigild.ports")
[ "$UPD" -gt 0 ] || fail "no update listener port in vigild.ports"

served_targets() { upd_field '.served.roles.targets.version // 0'; }
has_v1() { [ "$(served_targets)" = 1 ]; }
wait_for 20 "the first mirror of the upstream ($(upd_status))" has_v1
grep -q "CONNECT 127.0.0.1:$UP_PORT" "$T/sq/access.log" ||
	fail "the mirror did not go through squid: $(cat "$T/sq/access.log")"
grep -q " mirror " "$T/sq/access.log" || fail "squid logged no authenticated user"
[ "$(upd_field .served.targets[0].name)" = rules/base.yar ] || fail "targets: $(upd_status)"
cmp "$DATA/updates/targets/$(sha256sum v1.yar | cut -c1-64)" v1.yar ||
	fail "the artifact was not mirrored"
pass "mirrored through squid (Basic auth) from an HTTPS upstream with a client certificate"

# Served to agents on the gateway and on its own listener, only with an
# agent certificate.
TOKEN=$(new_token)
"$AGENT" enroll --server "https://127.0.0.1:$GW" --token "$TOKEN" \
	--ca "$PKI/ca.crt" --data-dir "$T/a" >"$T/enroll.log" 2>&1 ||
	fail "enroll: $(cat "$T/enroll.log")"
cmp "$T/a/update-root.json" "$T/pinned-root.json" ||
	fail "the agent did not pin the center's update root"
st=$(gw_status GET /v1/updates/timestamp.json)
[ "$st" = 401 ] || fail "timestamp.json without a certificate: HTTP $st"
acurl() { curl -sS --fail --cacert "$PKI/ca.crt" --cert "$T/a/agent.crt" --key "$T/a/agent.key" "$@"; }
acurl "https://127.0.0.1:$GW/v1/updates/timestamp.json" >ts.json || fail "gateway timestamp"
cmp ts.json "$T/repo/timestamp.json" || fail "the gateway served other bytes"
acurl "https://127.0.0.1:$UPD/v1/updates/targets/$(sha256sum v1.yar | cut -c1-64)" >got.yar ||
	fail "artifact on the update listener"
cmp got.yar v1.yar || fail "the update listener served other bytes"
pass "served on the gateway and on its own listener ($UPD), agent certificate required"

# The rule set is the center's: listed with its source and version.
"$CTL" --json rules list >rules.json
[ "$(jq -r '.[] | select(.name == "base.yar") | .source + " " + .version' rules.json)" = "update 1.0" ] ||
	fail "rule set not taken: $(cat rules.json)"
pass "the rule set that arrived became the center's (source update, version 1.0)"

# Version 2 with a tampered artifact upstream: refused, v1 still served.
printf 'rule by_update_v2 { strings: $a = "marker-v2" condition: $a }\n' >v2.yar
upd_publish "$T/repo" "$T/keys" rules/base.yar 2.0 v2.yar
H2=$(sha256sum v2.yar | cut -c1-64)
cp "$T/repo/targets/$H2" v2.saved
printf 'rule by_update_v2 { strings: $a = "marker-XX" condition: $a }\n' >"$T/repo/targets/$H2"
upd_refresh
expect_contains "$(upd_field .last_error)" "SHA-256 differs from the signed one"
[ "$(served_targets)" = 1 ] || fail "a tampered artifact changed what is served"
acurl "https://127.0.0.1:$GW/v1/updates/timestamp.json" >ts.json
cmp ts.json "$T/repo-v1/timestamp.json" || fail "not the old timestamp served"
[ ! -e "$DATA/updates/targets/$H2" ] || fail "the tampered artifact was stored"
pass "a tampered artifact refused; the verified state still served"

cp v2.saved "$T/repo/targets/$H2"
upd_refresh
[ "$(served_targets)" = 2 ] || fail "v2 not taken: $(upd_status)"
[ "$(upd_field .last_error)" = null ] || fail "error left: $(upd_status)"
"$CTL" --json rules list >rules.json
[ "$(jq -r '.[] | select(.name == "base.yar") | .version' rules.json)" = 2.0 ] ||
	fail "rule set not updated: $(cat rules.json)"
cp -a "$T/repo" "$T/repo-v2"
pass "version 2 taken once the artifact is genuine"

# Rollback: the upstream serves version 1 again.
rm -rf "$T/repo" && cp -a "$T/repo-v1" "$T/repo"
upd_refresh
expect_contains "$(upd_field .last_error)" "rollback"
[ "$(upd_field .last_check)" = rollback ] || fail "last_check: $(upd_status)"
[ "$(served_targets)" = 2 ] || fail "rolled back"
pass "a rolled-back upstream refused"

# Freeze: a timestamp that has expired.
rm -rf "$T/repo" && cp -a "$T/repo-v2" "$T/repo"
U sign --repo "$T/repo" --keys "$T/keys/online" \
	--at "$(date -u -d '-3 hours' +%Y-%m-%dT%H:%M:%SZ)" --timestamp-hours 1 \
	>"$T/sign.log" 2>&1 || fail "sign an expired timestamp: $(cat "$T/sign.log")"
upd_refresh
expect_contains "$(upd_field .last_error)" "timestamp.json refused (expired)"
[ "$(upd_field .served.roles.timestamp.version)" = 2 ] || fail "expired timestamp served"
pass "an expired timestamp refused"

# A timestamp signed by a key the root does not name.
rm -rf "$T/repo" && cp -a "$T/repo-v2" "$T/repo"
upd_repo "$T/rogue" "$T/rogue-keys"
upd_publish "$T/rogue" "$T/rogue-keys" rules/base.yar 9.0 v1.yar
U sign --repo "$T/rogue" --keys "$T/rogue-keys/online" >/dev/null
U sign --repo "$T/rogue" --keys "$T/rogue-keys/online" >/dev/null
cp "$T/rogue/timestamp.json" "$T/repo/timestamp.json"
upd_refresh
expect_contains "$(upd_field .last_error)" "timestamp.json refused (threshold)"
[ "$(upd_field .served.roles.timestamp.version)" = 2 ] || fail "a forged timestamp served"
acurl "https://127.0.0.1:$GW/v1/updates/timestamp.json" >ts.json
cmp ts.json "$T/repo-v2/timestamp.json" || fail "not the verified timestamp served"
pass "a timestamp signed by a wrong key refused"

# Root rotation: a new root (v2) names a new timestamp key; the mirror
# walks the chain and serves both roots.
rm -rf "$T/repo" && cp -a "$T/repo-v2" "$T/repo"
U keygen --dir "$T/keys" --role timestamp --name 2 >/dev/null || fail "keygen timestamp-2"
U root --repo "$T/repo" --root-key "$T/keys/root.key" \
	--timestamp-key "$T/keys/timestamp-2.pub" >"$T/rot.log" 2>&1 || fail "rotation: $(cat "$T/rot.log")"
rm "$T/keys/online/timestamp.key"
cp "$T/keys/timestamp-2.key" "$T/keys/online/"
U sign --repo "$T/repo" --keys "$T/keys/online" >"$T/sign.log" 2>&1 || fail "sign: $(cat "$T/sign.log")"
upd_refresh
[ "$(upd_field .served.roles.root.version)" = 2 ] || fail "rotation not taken: $(upd_status)"
acurl "https://127.0.0.1:$GW/v1/updates/2.root.json" >r2.json || fail "2.root.json not served"
cmp r2.json "$T/repo/2.root.json" || fail "2.root.json differs"
acurl "https://127.0.0.1:$GW/v1/updates/1.root.json" >r1.json || fail "1.root.json not served"
cmp r1.json "$T/pinned-root.json" || fail "1.root.json differs"
pass "a root rotation walked and served (root v2, new timestamp key)"

# Pinning: the operator holds the rule set at 1.0, then lets go.
"$CTL" rules pin base.yar 1.0 >"$T/pin.log" 2>&1 || fail "pin: $(cat "$T/pin.log")"
"$CTL" --json rules list >rules.json
[ "$(jq -r '.[] | select(.name == "base.yar") | .version + " " + .pinned + " " + .id' rules.json)" = "1.0 1.0 $(sha256sum v1.yar | cut -c1-64)" ] ||
	fail "pin: $(cat rules.json)"
"$CTL" rules versions >"$T/versions.log" || fail "versions"
expect_contains "$(cat "$T/versions.log")" "2.0"
"$CTL" rules unpin base.yar >/dev/null || fail "unpin"
[ "$("$CTL" --json rules list | jq -r '.[] | select(.name == "base.yar") | .version')" = 2.0 ] ||
	fail "unpin did not return to 2.0: $("$CTL" --json rules list) $("$CTL" rules versions)"
api GET "/api/v1/audit?limit=100" >audit.json
for a in rules.update rule_pin; do
	grep -q "$a" audit.json || fail "no audit entry $a: $(head -c 2000 audit.json)"
done
pass "pin and unpin a rule set version (audited)"

# NTLM: refused with a message that says what to change.
before=$(served_targets)
stop_center
squid_start "$T/sq-ntlm" ntlm || fail "squid (ntlm) did not start"
sed -i "s|^proxy = .*|proxy = http://127.0.0.1:$SQUID_PORT|" "$T/vigild.conf"
start_center "$T/vigild.conf" "$DATA"
ntlm_said() { upd_field '.last_error // ""' | grep -q NTLM; }
wait_for 20 "the NTLM refusal ($(upd_status))" ntlm_said
expect_contains "$(upd_field .last_error)" "only Basic"
[ "$(served_targets)" = "$before" ] || fail "the verified state was not kept over a restart: $(upd_status)"
pass "an NTLM proxy refused with a clear message; the verified state kept over a restart"
