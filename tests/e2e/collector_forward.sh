#!/bin/bash
# A collector forwards to SIEMs like a center does (docs/collector.md,
# "Forwarding to SIEMs"): the findings every center feeds it go to a real
# rsyslogd over TCP through the same forwarding targets (vigilctl forward
# on the collector), each with the center it came from and its case; a
# finding a baseline suppresses is not sent on, the next one is. The
# collector's lists page beyond 100 rows. VIGIL_STORE=pg: the collector on
# PostgreSQL (its coll_events rowid), the center on SQLite.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/rsyslog.inc"

PKI=$T/pki
make_pki "$PKI"
"$CTL" pki issue --dir "$PKI" --role collector --name coll.vigil.test \
	--san 127.0.0.1 >/dev/null || fail "issue collector certificate"
"$CTL" pki issue --dir "$PKI" --role center --name a.vigil.test >/dev/null ||
	fail "issue center a certificate"

start_node() {
	local name=$1 conf=$2 data=$3 pid
	rm -f "$data/vigild.ports"
	"$VIGILD" -d -c "$conf" >>"$T/$name.log" 2>&1 &
	pid=$!
	PIDS+=("$pid")
	eval "${name}_PID=$pid"
	wait_for 10 "$name to start" test -s "$data/vigild.ports"
	eval "${name}_GW=$(sed -E 's/.*"gateway": ([0-9]+).*/\1/' "$data/vigild.ports")"
	eval "${name}_ADM=$(sed -E 's/.*"admin": ([0-9]+).*/\1/' "$data/vigild.ports")"
	eval "${name}_COLL=$(sed -E 's/.*"collector": ([0-9]+).*/\1/' "$data/vigild.ports")"
	eval "${name}_KEY=$(cat "$data/admin.key")"
	if [ "$VIGIL_STORE" = pg ] && [ "$name" = COLL ]; then
		grep -q "store: PostgreSQL" "$T/$name.log" || fail "$name is not on PostgreSQL"
	fi
}
on() {
	local name=$1 adm key
	shift
	eval "adm=\$${name}_ADM key=\$${name}_KEY"
	VIGIL_SERVER="https://127.0.0.1:$adm" VIGIL_CA="$PKI/ca.crt" \
		VIGIL_API_KEY="$key" "$CTL" "$@"
}

RS=$T/rs
rs_start "$RS" "module(load=\"imtcp\")
input(type=\"imtcp\" port=\"0\" address=\"127.0.0.1\" listenPortFileName=\"$RS/json.port\" ruleset=\"json\")
ruleset(name=\"json\") { action(type=\"omfile\" file=\"$RS/json.raw\" template=\"raw\") }"

write_conf "$T/coll.conf" "$PKI" "$T/coll" "role = collector"
cat >>"$T/coll.conf" <<EOF
[collector]
listen = 127.0.0.1
port = 0
cert_file = $PKI/collector-coll.vigil.test.crt
key_file = $PKI/collector-coll.vigil.test.key
EOF
VIGIL_STORE=sqlite write_conf "$T/a.conf" "$PKI" "$T/a"
start_node COLL "$T/coll.conf" "$T/coll"
start_node A "$T/a.conf" "$T/a"

on COLL forward add siem --transport tcp --host 127.0.0.1 \
	--port "$(cat "$RS/json.port")" --format json --type finding >/dev/null ||
	fail "forward add on the collector"
on A forward add coll --transport collector --host 127.0.0.1 \
	--port "$COLL_COLL" --tls-ca "$PKI/ca.crt" \
	--tls-cert "$PKI/center-a.vigil.test.crt" \
	--tls-key "$PKI/center-a.vigil.test.key" >/dev/null ||
	fail "collector target on a"

token=$(on A --json token create --uses 1 | sed -nE 's/.*"token": "([^"]+)".*/\1/p')
VIGIL_MACHINE_ID_FILE=$(machine_id a) "$AGENT" enroll \
	--server "https://127.0.0.1:$A_GW" --token "$token" \
	--ca "$PKI/ca.crt" --data-dir "$T/agent-a" >"$T/enroll-a.log" 2>&1 ||
	fail "enroll: $(cat "$T/enroll-a.log")"
post() { # post SEQ RULE
	curl -sS --cacert "$PKI/ca.crt" --cert "$T/agent-a/agent.crt" \
		--key "$T/agent-a/agent.key" -X POST \
		"https://127.0.0.1:$A_GW/v1/events" \
		-d "{\"events\": [{\"seq\": $1, \"time\": $(date +%s), \"type\": \"finding\", \"level\": \"alert\", \"data\": {\"rule\": \"$2\", \"path\": \"/srv/$2.bin\"}}]}" |
		grep -q '"stored"' || fail "post $1"
}

post 1 Dropper
wait_lines "$RS/json.raw" 1
line=$(grep Dropper "$RS/json.raw")
CASE=$(on COLL --json collector cases | python3 -c '
import json, sys
print([c["id"] for c in json.load(sys.stdin) if c.get("rule") == "Dropper"][0])')
python3 - "$line" "$CASE" <<'PY' || fail "forwarded: $line"
import json, sys
line, case = sys.argv[1], sys.argv[2]
m = json.loads(line[line.index("{"):])
d = m["data"]
assert d["rule"] == "Dropper", m
assert d["center"] == "a.vigil.test", m
assert d["case_id"] == case, (m, case)
assert m["type"] == "finding" and m["level"] == "alert", m
PY
pass "a finding center a fed the collector reached rsyslog, with its center and case"

# A baseline suppresses the next occurrence: not sent on; what follows is.
on COLL collector baseline "$CASE" suppress --reason "expected" >/dev/null || fail "baseline"
post 2 Dropper
post 3 Other
wait_lines "$RS/json.raw" 2
[ "$(grep -c Dropper "$RS/json.raw")" = 1 ] || fail "a suppressed finding was forwarded: $(cat "$RS/json.raw")"
expect_contains "$(sed -n 2p "$RS/json.raw")" '"rule":"Other"'
expect_contains "$(sed -n 2p "$RS/json.raw")" '"center":"a.vigil.test"'
one=$(on COLL --json collector case "$CASE")
[ "$(python3 -c 'import json, sys; c = json.load(sys.stdin); print(c["hits"], c["suppressed"])' <<<"$one")" = "1 1" ] ||
	fail "the second Dropper was not suppressed: $one"
pass "a finding a baseline suppresses is stored, not forwarded; the next finding is"

# Paging beyond 100 rows, as the center's lists page: 150 more findings,
# then the search and the cases listed page by page.
body='{"events": ['
sep=''
for i in $(seq 1 150); do
	body+="$sep{\"seq\": $((100 + i)), \"time\": $(date +%s), \"type\": \"finding\", \"level\": \"warning\", \"data\": {\"rule\": \"Bulk$i\", \"path\": \"/srv/bulk$i\"}}"
	sep=', '
done
body+=']}'
curl -sS --cacert "$PKI/ca.crt" --cert "$T/agent-a/agent.crt" \
	--key "$T/agent-a/agent.key" -X POST "https://127.0.0.1:$A_GW/v1/events" \
	-d "$body" | grep -q '"stored"' || fail "post 150 findings"
coll_count() {
	[ "$(on COLL --json collector search Bulk --limit 1000 | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 150 ]
}
wait_for 30 "150 findings at the collector" coll_count
capi() {
	curl -sS --cacert "$PKI/ca.crt" -H "Authorization: Bearer $COLL_KEY" \
		"https://127.0.0.1:$COLL_ADM$1"
}
for list in "search?q=Bulk&limit=40" "cases?limit=40"; do
	cursor=''
	: >"$T/pages"
	for page in $(seq 1 20); do
		out=$(capi "/api/v1/collector/$list${cursor:+&cursor=$cursor}")
		python3 - "$out" >>"$T/pages" <<'PY' || fail "collector page: $out"
import json, sys
p = json.loads(sys.argv[1])
assert len(p["items"]) <= 40, len(p["items"])
for x in p["items"]:
    print("ROW %s" % (x.get("id") or "%s/%s/%s" % (x["center"], x["agent_id"], x["seq"])))
print("NEXT %s" % (p["next_cursor"] or ""))
PY
		cursor=$(sed -n 's/^NEXT //p' "$T/pages" | tail -1)
		[ -n "$cursor" ] || break
	done
	[ -z "$cursor" ] || fail "$list: more than 20 pages"
	rows=$(grep -c '^ROW' "$T/pages")
	uniq=$(grep '^ROW' "$T/pages" | sort -u | wc -l)
	[ "$rows" = "$uniq" ] || fail "$list: a row came twice"
	case $list in
	search*) [ "$rows" = 150 ] || fail "$list: $rows rows" ;;
	cases*) [ "$rows" = 152 ] || fail "$list: $rows rows (150 Bulk, Dropper, Other)" ;;
	esac
	[ "$(grep -c '^NEXT' "$T/pages")" -ge 4 ] || fail "$list: fewer pages than expected"
done
expect_contains "$(capi "/api/v1/collector/cases?cursor=x1")" '"field":"cursor"'
pass "the collector's search and cases page through more than 100 rows (limit, cursor, next_cursor), each row once"
