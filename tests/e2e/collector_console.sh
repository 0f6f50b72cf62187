#!/bin/bash
# The collector's console page (web/src/pages/collector.tsx) in a real
# chromium driven by playwright-core (web/tests/collector.mjs), against a
# collector vigild serving the built console. Its store (SQLite or
# PostgreSQL) holds what two centers' feeds leave, written with db
# (e2e/collector tests the feed itself): a case of one rule on 50 hosts,
# and 51 events of two centers.
# An analyst suppresses, clears and lowers the case and searches.
. "$(dirname "$0")/lib.sh"

WEB=$SRC/web
[ -f "$WEB/dist/index.html" ] ||
	skip "web console not built (make console, after scripts/install-deps)"
[ -d "$WEB/node_modules/playwright-core" ] && [ -d "$WEB/node_modules/axe-core" ] ||
	skip "web/node_modules lacks playwright-core or axe-core (make console, after scripts/install-deps)"
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
[ -x "$CHROMIUM" ] || skip "chromium not installed (scripts/install-deps)"

PKI=$T/pki
DATA=$T/data
make_pki "$PKI"
"$CTL" pki issue --dir "$PKI" --role collector --name coll.vigil.test \
	--san 127.0.0.1 >/dev/null || fail "issue collector certificate"
write_conf "$T/vigild.conf" "$PKI" "$DATA" "role = collector"
cat >>"$T/vigild.conf" <<EOC
console_dir = $WEB/dist
[collector]
listen = 127.0.0.1
port = 0
cert_file = $PKI/collector-coll.vigil.test.crt
key_file = $PKI/collector-coll.vigil.test.key
EOC
# console_dir belongs to [admin]: move it there.
sed -i '/^console_dir = /d' "$T/vigild.conf"
sed -i "/^\[admin\]\$/a console_dir = $WEB/dist" "$T/vigild.conf"
start_center "$T/vigild.conf" "$DATA"

ANALYST_PW=collector-analyst-pw-$RANDOM$RANDOM
printf '%s' "$ANALYST_PW" | "$CTL" user add analyst --role analyst --password-stdin >/dev/null ||
	fail "user add"

CASE=0123456789abcdef
now=$(date +%s)
sql="BEGIN;
INSERT INTO coll_centers (name, first_seen, last_seen, events, addr) VALUES ('a.vigil.test', $now, $now, 50, '127.0.0.1'), ('b.vigil.test', $now, $now, 1, '127.0.0.1');
INSERT INTO coll_cases (id, case_key, rule, path, sha256, first_seen, last_seen, hits, suppressed) VALUES ('$CASE', 'rule:Mimikatz|path:c:/users/*/m#.exe', 'Mimikatz', 'C:\\Users\\u1\\m1.exe', NULL, $now, $now, 51, 0);"
for i in $(seq 1 51); do
	c=a.vigil.test
	[ "$i" -eq 51 ] && c=b.vigil.test
	aid=00000000-0000-4000-8000-$(printf %012d "$i")
	sql+="INSERT INTO coll_events (center, agent_id, seq, time, received_at, type, level, orig_level, data, case_id, suppressed, hostname) VALUES ('$c', '$aid', 1, $now, $now, 'finding', 'alert', 'alert', '{\"rule\":\"Mimikatz\",\"path\":\"C:\\\\Users\\\\u$i\\\\m$i.exe\"}', '$CASE', 0, 'host$i');"
	[ "$i" -le 50 ] && sql+="INSERT INTO coll_case_hosts (case_id, center, agent_id, hostname, first_seen, last_seen) VALUES ('$CASE', '$c', '$aid', 'host$i', $now, $now);"
done
sql+="UPDATE coll_cases SET hits = 50 WHERE id = '$CASE'; COMMIT;"
db "$sql"
[ "$(db "SELECT COUNT(*) FROM coll_case_hosts")" = 50 ] || fail "case hosts not written"

SPKI=$(openssl x509 -in "$PKI/server.crt" -pubkey -noout |
	openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64)
SHOTS=$BIN/console-shots-collector
rm -rf "$SHOTS"
BASE="https://127.0.0.1:$ADM" SPKI=$SPKI ANALYST_PW=$ANALYST_PW CASE=$CASE \
	SHOTS=$SHOTS CHROMIUM=$CHROMIUM \
	timeout 120 node "$WEB/tests/collector.mjs" 2>&1 | tee "$T/browser.log"
rc=${PIPESTATUS[0]}
[ "$rc" -eq 0 ] || fail "browser scenario failed (rc $rc); screenshots in $SHOTS"
# The baseline changes are in the audit log, by the analyst.
[ "$(db "SELECT COUNT(*) FROM audit WHERE who = 'user:analyst' AND action LIKE '%collector%' AND status = 200")" -ge 3 ] ||
	fail "audit: $(db "SELECT who, action, status FROM audit ORDER BY id DESC LIMIT 5")"
pass "the collector page: cases, baselines (audited), search; screenshots in $SHOTS"
