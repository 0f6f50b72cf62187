#!/bin/bash
# The web console in a real browser: chromium (Debian's) driven by
# playwright-core (web/tests/console.mjs) against this vigild, serving the
# built console (web/dist), with a pending agent, a directory to scan and a
# real rsyslogd to forward to. The browser logs in with TOTP, approves the
# agent, relabels it, uploads rules, scans the label group and watches the
# task finish live, triages the finding, sees vigil-inteld's verdict on
# it (a MISP feed holds the file's hash) and filters by it, downloads its
# sample, adds a forwarding target and sends a test message, creates an
# analyst, checks
# the audit log and its chain, and logs in as the analyst to see what that
# role may do. axe-core checks every page; any CSP violation, request to
# another origin or script error fails. Screenshots: $VIGIL_BIN/console-shots.
. "$(dirname "$0")/lib.sh"

WEB=$SRC/web
[ -f "$WEB/dist/index.html" ] ||
	skip "web console not built (make console, after scripts/install-deps)"
[ -d "$WEB/node_modules/playwright-core" ] && [ -d "$WEB/node_modules/axe-core" ] ||
	skip "web/node_modules lacks playwright-core or axe-core (make console, after scripts/install-deps)"
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
[ -x "$CHROMIUM" ] || skip "chromium not installed (scripts/install-deps)"
command -v 7z >/dev/null || skip "7z not installed (scripts/install-deps)"

PKI=$T/pki
DATA=$T/data
make_pki "$PKI"
# vigil-inteld with a MISP feed holding the scanned file's SHA-256: the
# finding gets a verdict, shown on the findings page.
. "$(dirname "$0")/intel.inc"
start_intel
write_conf "$T/vigild.conf" "$PKI" "$DATA" "require_approval = yes"
echo "console_dir = $WEB/dist" >>"$T/vigild.conf"
cat >>"$T/vigild.conf" <<EOC
[intel]
url = https://127.0.0.1:$IPORT
ca = $PKI/ca.crt
api_key_file = $T/intel.key
EOC
start_center "$T/vigild.conf" "$DATA"

# An admin with two-factor on, set up through the API as a user would.
ADMIN_PW=console-admin-pw-$RANDOM$RANDOM
printf '%s' "$ADMIN_PW" | "$CTL" user add admin --role admin --password-stdin >/dev/null ||
	fail "user add"
J=$T/cookies
curl -sS --cacert "$PKI/ca.crt" -c "$J" -o "$T/login.json" \
	-H 'Content-Type: application/json' \
	-d "{\"username\": \"admin\", \"password\": \"$ADMIN_PW\"}" \
	"https://127.0.0.1:$ADM/api/v1/login" || fail "login"
CSRF=$(sed -nE 's/.*"csrf_token":"([0-9a-f]+)".*/\1/p' "$T/login.json")
[ -n "$CSRF" ] || fail "no csrf_token: $(cat "$T/login.json")"
capi() {
	curl -sS --cacert "$PKI/ca.crt" -b "$J" -H "X-CSRF-Token: $CSRF" \
		-H 'Content-Type: application/json' -X "$1" \
		"https://127.0.0.1:$ADM$2" "${@:3}"
}
SECRET=$(capi POST /api/v1/session/totp | sed -nE 's/.*"secret":"([A-Z2-7=]+)".*/\1/p')
[ -n "$SECRET" ] || fail "no TOTP secret"
STEP=$(($(date +%s) / 30))
CODE=$(oathtool --totp -b "$SECRET")
out=$(capi POST /api/v1/session/totp/confirm -d "{\"code\": \"$CODE\"}")
expect_contains "$out" '"totp":true'
capi POST /api/v1/logout >/dev/null

# A pending agent (approved in the browser, which then starts it).
TOKEN=$(new_token --uses 1)
MID=$(machine_id console1)
out=$(VIGIL_MACHINE_ID_FILE=$MID "$AGENT" enroll --server "https://127.0.0.1:$GW" \
	--token "$TOKEN" --ca "$PKI/ca.crt" --data-dir "$T/a" 2>&1) || fail "enroll: $out"
expect_contains "$out" "pending"
HOST=$("$CTL" --json agent pending | sed -nE 's/.*"hostname": "([^"]+)".*/\1/p' | head -1)
[ -n "$HOST" ] || fail "no pending hostname: $("$CTL" --json agent pending)"

mkdir -p "$T/scan"
printf 'x VIGIL-CONSOLE-MARKER x\n' >"$T/scan/hit.txt"
printf 'nothing here\n' >"$T/scan/clean.txt"
import_misp misp "$(sha256sum "$T/scan/hit.txt" | cut -c1-64)"

. "$SRC/tests/e2e/rsyslog.inc"
RS=$T/rs
rs_start "$RS" "module(load=\"imtcp\")
input(type=\"imtcp\" port=\"0\" address=\"127.0.0.1\" listenPortFileName=\"$RS/p.port\" ruleset=\"r\")
ruleset(name=\"r\") { action(type=\"omfile\" file=\"$RS/out\" template=\"raw\") }"

# The browser trusts exactly the center's key (SPKI pin), no CA import.
SPKI=$(openssl x509 -in "$PKI/server.crt" -pubkey -noout |
	openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64)

SHOTS=$BIN/console-shots
rm -rf "$SHOTS"
BASE="https://127.0.0.1:$ADM" SPKI=$SPKI ADMIN_PW=$ADMIN_PW \
	TOTP_SECRET=$SECRET TOTP_USED_STEP=$STEP PENDING_HOST=$HOST \
	AGENT_BIN=$AGENT AGENT_DIR=$T/a AGENT_LOG=$T/agent.log MACHINE_ID_FILE=$MID SCAN_DIR=$T/scan \
	RS_PORT=$(cat "$RS/p.port") RS_OUT=$RS/out SHOTS=$SHOTS CHROMIUM=$CHROMIUM \
	timeout 300 node "$WEB/tests/console.mjs" 2>&1 | tee "$T/browser.log"
rc=${PIPESTATUS[0]}
[ "$rc" -eq 0 ] || fail "browser scenario failed (rc $rc); screenshots in $SHOTS"
pass "screenshots of every page in $SHOTS"
