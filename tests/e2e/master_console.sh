#!/bin/bash
# The master's console page (web/src/pages/master.tsx) in a real chromium
# driven by playwright-core (web/tests/master.mjs): a master serving the
# built console manages center a (management port, one enrolled agent, an
# inventory task pushed from the master, a rule set pushed to both) and
# center "down" (nothing listens there). An analyst sees both centers,
# the agent, the task, and the push applied on a and pending on "down".
. "$(dirname "$0")/lib.sh"

WEB=$SRC/web
[ -f "$WEB/dist/index.html" ] ||
	skip "web console not built (make console, after scripts/install-deps)"
[ -d "$WEB/node_modules/playwright-core" ] && [ -d "$WEB/node_modules/axe-core" ] ||
	skip "web/node_modules lacks playwright-core or axe-core (make console, after scripts/install-deps)"
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
[ -x "$CHROMIUM" ] || skip "chromium not installed (scripts/install-deps)"

PKI=$T/pki
make_pki "$PKI"
"$CTL" pki issue --dir "$PKI" --role master --name master.vigil.test >/dev/null ||
	fail "issue master certificate"

# Center a with its management port and one enrolled agent, on SQLite
# (the master is the one on the store under test, as in e2e/master).
VIGIL_STORE=sqlite write_conf "$T/a.conf" "$PKI" "$T/a"
printf '[manage]\nenable = yes\nlisten = 127.0.0.1\nport = 0\n' >>"$T/a.conf"
VIGIL_STORE=sqlite start_center "$T/a.conf" "$T/a"
A_MG=$(sed -E 's/.*"manage": ([0-9]+).*/\1/' "$T/a/vigild.ports")
VIGIL_MACHINE_ID_FILE=$(machine_id mc) "$AGENT" enroll --server "https://127.0.0.1:$GW" \
	--token "$(new_token --uses 1)" --ca "$PKI/ca.crt" --data-dir "$T/agent" \
	>"$T/enroll.log" 2>&1 || fail "enroll: $(cat "$T/enroll.log")"
DOWN=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

write_conf "$T/m.conf" "$PKI" "$T/m" "role = master"
sed -i "/^\[admin\]\$/a console_dir = $WEB/dist" "$T/m.conf"
cat >>"$T/m.conf" <<EOC
[master]
cert_file = $PKI/master-master.vigil.test.crt
key_file = $PKI/master-master.vigil.test.key
centers = a=https://127.0.0.1:$A_MG, down=https://127.0.0.1:$DOWN
EOC
start_center "$T/m.conf" "$T/m"
ANALYST_PW=master-analyst-pw-$RANDOM$RANDOM
printf '%s' "$ANALYST_PW" | "$CTL" user add analyst --role analyst --password-stdin >/dev/null ||
	fail "user add"
echo '{"kind": "inventory", "target": {"all": true}}' | "$CTL" master push - --center a |
	grep -q "created master task" || fail "push"
printf 'rule console_push { strings: $m = "CONSOLE-PUSH" condition: $m }\n' >"$T/push.yar"
"$CTL" master rules pushed "$T/push.yar" | grep -q "as push" || fail "push rules"

SPKI=$(openssl x509 -in "$PKI/server.crt" -pubkey -noout |
	openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64)
SHOTS=$BIN/console-shots-master
rm -rf "$SHOTS"
BASE="https://127.0.0.1:$ADM" SPKI=$SPKI ANALYST_PW=$ANALYST_PW \
	SHOTS=$SHOTS CHROMIUM=$CHROMIUM \
	timeout 120 node "$WEB/tests/master.mjs" 2>&1 | tee "$T/browser.log"
rc=${PIPESTATUS[0]}
[ "$rc" -eq 0 ] || fail "browser scenario failed (rc $rc); screenshots in $SHOTS"
pass "the master page: centers (one down), agents and tasks across centers; screenshots in $SHOTS"
