#!/bin/bash
# Intelligence feeds by signed update (docs/updates.md, "Intelligence
# feeds"): a feed file published with vigilctl as a target of kind intel
# (intel/NAME.list) is verified by the center's mirror like any artifact,
# then imported into vigil-inteld's feed NAME through inteld's import API
# with the center's certificate of role update ([updates] intel_cert);
# an indicator of it then becomes a verdict (an agent's reputation
# request through its center). A feed of another version replaces the
# feed's indicators. Without the credential the status says why nothing
# was imported.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/updates.inc"
. "$(dirname "$0")/intel.inc"
cd "$T"

PKI=$T/pki
DATA=$T/data
make_pki "$PKI"
"$CTL" pki issue --dir "$PKI" --out "$T/certs" --role update --name upd.vigil.test \
	--usage client >"$T/issue.log" 2>&1 || fail "pki issue: $(cat "$T/issue.log")"
start_intel

BAD=$(printf 'update feed %s' "$RANDOM$RANDOM" | sha256sum | cut -c1-64)
NEXT=$(printf 'update feed next %s' "$RANDOM$RANDOM" | sha256sum | cut -c1-64)
upd_repo "$T/repo" "$T/keys"
printf '%s\n' "$BAD" >feed-v1.list
U publish --repo "$T/repo" --keys "$T/keys/online" --kind intel --name intel/upd-feed.list \
	--version 1 feed-v1.list >"$T/publish.log" 2>&1 || fail "publish: $(cat "$T/publish.log")"

write_conf "$T/vigild.conf" "$PKI" "$DATA" "[updates]" \
	"root = $T/repo/1.root.json" "dir = $T/repo" "interval = 1h" \
	"intel_cert = $T/certs/update-upd.vigil.test.crt" \
	"intel_key = $T/certs/update-upd.vigil.test.key" \
	"[intel]" "url = https://127.0.0.1:$IPORT" "ca = $PKI/ca.crt" \
	"api_key_file = $T/intel.key" "timeout = 3s" "cache_ttl = 1"
"$VIGILD" -n -c "$T/vigild.conf" >"$T/check.log" 2>&1 || fail "vigild -n: $(cat "$T/check.log")"
start_center "$T/vigild.conf" "$DATA"

ifeed() { curl -sS --cacert "$PKI/ca.crt" -H "Authorization: Bearer $ILOOKUP" "$IU/feeds/upd-feed"; }
imported() { [ "$(upd_field '.intel.imported[0].sha256 // ""')" = "$(sha256sum feed-v1.list | cut -c1-64)" ]; }
wait_for 30 "the feed imported into inteld ($(upd_field .intel))" imported
[ "$(ifeed | jq -r '.indicators // .feed.indicators')" = 1 ] || fail "inteld's feed: $(ifeed)"
expect_contains "$(ifeed)" "by signed update: intel/upd-feed.list 1"
[ "$(upd_field '.intel.imported[0].feed + " " + .intel.imported[0].format')" = "upd-feed list" ] ||
	fail "status: $(upd_field .intel)"
pass "an intel target verified by the mirror was imported into vigil-inteld's feed upd-feed"

# Its indicator is a verdict: an agent asks its center.
TOKEN=$(new_token)
VIGIL_MACHINE_ID_FILE=$(machine_id n1) "$AGENT" enroll --server "https://127.0.0.1:$GW" \
	--token "$TOKEN" --ca "$PKI/ca.crt" --data-dir "$T/a" >"$T/enroll.log" 2>&1 ||
	fail "enroll: $(cat "$T/enroll.log")"
rep() {
	curl -sS --cacert "$PKI/ca.crt" --cert "$T/a/agent.crt" --key "$T/a/agent.key" \
		-X POST "https://127.0.0.1:$GW/v1/reputation" -d "{\"sha256\": [\"$1\"]}"
}
verdict() { rep "$1" | jq -r '.. | objects | select(has("verdict")) | .verdict' | head -1; }
[ "$(verdict "$BAD")" = malicious ] || fail "reputation of the feed's hash: $(rep "$BAD")"
pass "the feed's indicator is a verdict (malicious) for an agent's reputation request"

# Version 2 of the feed replaces its indicators.
printf '%s\n' "$NEXT" >feed-v2.list
U publish --repo "$T/repo" --keys "$T/keys/online" --kind intel --name intel/upd-feed.list \
	--version 2 feed-v2.list >"$T/publish.log" 2>&1 || fail "publish 2: $(cat "$T/publish.log")"
upd_refresh
imported2() { [ "$(upd_field '.intel.imported[0].sha256 // ""')" = "$(sha256sum feed-v2.list | cut -c1-64)" ]; }
wait_for 30 "version 2 imported ($(upd_field .intel))" imported2
[ "$(upd_field '.intel.imported | length')" = 1 ] || fail "imports listed: $(upd_field .intel)"
malicious_next() { [ "$(verdict "$NEXT")" = malicious ]; }
wait_for 10 "the verdict of version 2's hash" malicious_next
gone() { [ "$(verdict "$BAD")" != malicious ]; }
wait_for 10 "version 1's hash no longer malicious" gone
pass "version 2 of the feed replaced its indicators in inteld"

# Without the credential: nothing imported, and the status says why.
stop_center
sed -i '/^intel_cert = /d; /^intel_key = /d' "$T/vigild.conf"
start_center "$T/vigild.conf" "$DATA"
why() { [ -n "$(upd_field '.intel.error // ""')" ]; }
wait_for 20 "the reason in the status" why
expect_contains "$(upd_field .intel.error)" "intel target intel/upd-feed.list is not imported into vigil-inteld: set [intel] url and [updates] intel_cert"
[ "$(upd_field .intel.enabled)" = false ] || fail "status: $(upd_field .intel)"
pass "without [updates] intel_cert the status says why the feed is not imported"
