#!/bin/bash
# The master center (docs/master.md): two centers with running agents open
# their management port (5443) to a master (a vigild with [center] role =
# master), all with role certificates. The master lists both with health,
# version and agent counts, lists their agents with the center named, and
# pushes an inventory task that runs on the agents of both, followed to the
# end. A certificate of another role is refused on 5443 with the reason; a
# master of another major protocol version is refused by a center, and a
# center of another major version by the master, each message naming both
# versions (that newer center is a small Python stand-in: a vigild of
# another version cannot be run here); a center that is down is shown
# unreachable while the other is still managed.
. "$(dirname "$0")/lib.sh"

PKI=$T/pki
make_pki "$PKI"
"$CTL" pki issue --dir "$PKI" --role master --name master.vigil.test >/dev/null ||
	fail "issue master certificate"
"$CTL" pki issue --dir "$PKI" --role scand --name scand.vigil.test >/dev/null ||
	fail "issue scand certificate"
"$CTL" pki issue --dir "$PKI" --role center --name newer.vigil.test \
	--san 127.0.0.1 >/dev/null || fail "issue newer center certificate"

# start_node NAME CONF DATA: vigild -d; NAME_PID, NAME_GW, NAME_ADM,
# NAME_MG and NAME_KEY.
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
	eval "${name}_MG=$(sed -E 's/.*"manage": ([0-9]+).*/\1/' "$data/vigild.ports")"
	eval "${name}_KEY=$(cat "$data/admin.key")"
	if [ "$VIGIL_STORE" = pg ] && [ "$name" = M ]; then
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

# The master on the store under test (VIGIL_STORE=pg: PostgreSQL), the
# centers on SQLite, their own databases.
for n in A B; do
	lc=$(tr A-Z a-z <<<"$n")
	VIGIL_STORE=sqlite write_conf "$T/$lc.conf" "$PKI" "$T/$lc"
	printf '[manage]\nenable = yes\nlisten = 127.0.0.1\nport = 0\n' >>"$T/$lc.conf"
	start_node "$n" "$T/$lc.conf" "$T/$lc"
	eval "mg=\$${n}_MG gw=\$${n}_GW"
	[ "$mg" -gt 0 ] || fail "$n: no management port"
	token=$(on "$n" --json token create --uses 1 | sed -nE 's/.*"token": "([^"]+)".*/\1/p')
	VIGIL_MACHINE_ID_FILE=$(machine_id "$lc") "$AGENT" enroll \
		--server "https://127.0.0.1:$gw" --token "$token" \
		--ca "$PKI/ca.crt" --data-dir "$T/agent-$lc" >"$T/enroll-$lc.log" 2>&1 ||
		fail "enroll on $n: $(cat "$T/enroll-$lc.log")"
	VIGIL_MACHINE_ID_FILE=$T/machine-id-$lc "$AGENT" run --data-dir "$T/agent-$lc" \
		>"$T/agent-$lc.log" 2>&1 &
	PIDS+=("$!")
done

# A center of a newer major version: answers hello with protocol 2.0.
cat >"$T/newer.py" <<'PY'
import http.server, json, ssl, sys
d = sys.argv[1]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"center": "newer.vigil.test", "version": "9.0.0",
                           "protocol": "2.0"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(d + "/center-newer.vigil.test.crt", d + "/center-newer.vigil.test.key")
ctx.load_verify_locations(d + "/ca.crt")
ctx.verify_mode = ssl.CERT_REQUIRED
srv = http.server.HTTPServer(("127.0.0.1", 0), H)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
open(sys.argv[2], "w").write(str(srv.server_address[1]))
srv.serve_forever()
PY
python3 "$T/newer.py" "$PKI" "$T/newer.port" >"$T/newer.log" 2>&1 &
PIDS+=("$!")
wait_for 10 "the newer center stand-in" test -s "$T/newer.port"
NEWER=$(cat "$T/newer.port")

write_conf "$T/m.conf" "$PKI" "$T/m" "role = master"
cat >>"$T/m.conf" <<EOF
[master]
cert_file = $PKI/master-master.vigil.test.crt
key_file = $PKI/master-master.vigil.test.key
centers = a=https://127.0.0.1:$A_MG, b=https://127.0.0.1:$B_MG, newer=https://127.0.0.1:$NEWER
EOF
"$VIGILD" -n -c "$T/m.conf" >"$T/m-check.log" 2>&1 || fail "vigild -n: $(cat "$T/m-check.log")"
start_node M "$T/m.conf" "$T/m"

# Wrong role on 5443: refused in the handshake, the reason logged; no
# certificate: no handshake; the admin API key is no credential there.
out=$(curl -sS --cacert "$PKI/ca.crt" --cert "$PKI/scand-scand.vigil.test.crt" \
	--key "$PKI/scand-scand.vigil.test.key" -H "Vigil-Manage-Protocol: 1.0" \
	-w ' %{http_code}' "https://127.0.0.1:$A_MG/manage/v1/status" 2>/dev/null || true)
[ "$out" = " 000" ] || fail "a scand certificate was answered on 5443: $out"
grep -q "a certificate of role scand may not be used here; a center's management port accepts master certificates only" \
	"$T/A.log" || fail "5443 refusal not logged: $(grep tls: "$T/A.log" | tail -2)"
curl -sS --cacert "$PKI/ca.crt" -H "Authorization: Bearer $A_KEY" \
	"https://127.0.0.1:$A_MG/manage/v1/status" >"$T/nocert.out" 2>&1 &&
	fail "5443 answered a client without a certificate: $(cat "$T/nocert.out")"
pass "5443 refuses a scand certificate (in the handshake, logged) and a client without one"

# A master of another major version is refused by the center.
out=$(curl -sS --cacert "$PKI/ca.crt" --cert "$PKI/master-master.vigil.test.crt" \
	--key "$PKI/master-master.vigil.test.key" -H "Vigil-Manage-Protocol: 2.0" \
	-w ' %{http_code}' "https://127.0.0.1:$A_MG/manage/v1/status")
expect_contains "$out" "this center speaks management protocol 1.0"
expect_contains "$out" "the master speaks 2.0"
expect_contains "$out" " 409"
pass "a center refuses a master of another major version, naming both"

wait_for 20 "both agents online" sh -c "VIGIL_SERVER=https://127.0.0.1:$M_ADM VIGIL_CA=$PKI/ca.crt VIGIL_API_KEY=$M_KEY $CTL --json master centers | python3 -c '
import json, sys
c = {x[\"name\"]: x for x in json.load(sys.stdin)}
sys.exit(0 if all(c[n].get(\"agents\", {}).get(\"online\") == 1 for n in \"ab\") else 1)'"
centers=$(on M --json master centers)
python3 - "$centers" <<'PY' || fail "master centers: $centers"
import json, sys
c = {x["name"]: x for x in json.loads(sys.argv[1])}
for n in "ab":
    x = c[n]
    assert x["reachable"] is True and x["status"] == "ok", x
    assert x["protocol"] == "1.0" and x["version"], x
    assert x["agents"] == {"total": 1, "online": 1}, x
x = c["newer"]
assert x["reachable"] is True and x["status"] == "error", x
for s in ("incompatible", "management protocol 2.0 (vigild 9.0.0)",
          "this master 1.0", "upgrade the master"):
    assert s in x["error"], x["error"]
PY
pass "the master lists both centers (health, version, agents) and refuses the newer one, naming both versions"

agents=$(on M --json master agents)
[ "$(python3 -c 'import json,sys; print(sorted(a["center"] for a in json.load(sys.stdin)["agents"]))' <<<"$agents")" = "['a', 'b']" ] ||
	fail "master agents: $agents"
expect_contains "$agents" '"center": "newer"'
pass "agents across centers, each with its center"

echo '{"kind": "inventory", "target": {"all": true}, "timeout": "5m"}' >"$T/task.json"
out=$(on M master push "$T/task.json" --center a --center b)
MT=$(sed -nE 's/^created master task ([0-9a-f-]{36})$/\1/p' <<<"$out")
[ -n "$MT" ] || fail "push: $out"
done_both() {
	on M --json master task "$MT" | python3 -c '
import json, sys
t = json.load(sys.stdin)
c = {x["center"]: x for x in t["centers"]}
sys.exit(0 if sorted(c) == ["a", "b"] and all(
    x.get("total") == 1 and x.get("finished") == 1 for x in c.values()) else 1)'
}
wait_for 40 "the task to finish on both centers" done_both
st=$(on M --json master task "$MT")
[ "$(grep -c '"done": 1' <<<"$st")" = 2 ] || fail "task runs: $st"
for n in A B; do
	expect_contains "$(on "$n" --json task list)" '"created_by": "master:master.vigil.test"'
done
pass "a task pushed from the master ran on the agents of both centers, followed to the end"

# Findings and tasks across centers, each row naming its center: a
# finding posted through each center's gateway with its agent's
# certificate.
for n in A B; do
	lc=$(tr A-Z a-z <<<"$n")
	eval "gw=\$${n}_GW"
	curl -sS --cacert "$PKI/ca.crt" --cert "$T/agent-$lc/agent.crt" \
		--key "$T/agent-$lc/agent.key" -X POST "https://127.0.0.1:$gw/v1/events" \
		-d "{\"events\": [{\"seq\": 900001, \"time\": $(date +%s), \"type\": \"finding\", \"level\": \"alert\", \"data\": {\"rule\": \"FromCenter$n\"}}]}" |
		grep -q '"stored"' || fail "post a finding to $n"
done
out=$(on M --json master findings)
python3 - "$out" <<'PY' || fail "master findings: $out"
import json, sys
f = json.loads(sys.argv[1])
got = sorted((x["center"], x["data"].get("rule")) for x in f["findings"]
             if str(x["data"].get("rule", "")).startswith("FromCenter"))
assert got == [("a", "FromCenterA"), ("b", "FromCenterB")], got
assert [e["center"] for e in f["errors"]] == ["newer"], f["errors"]
PY
out=$(on M --json master tasks)
python3 - "$out" <<'PY' || fail "master tasks: $out"
import json, sys
t = json.loads(sys.argv[1])
got = sorted((x["center"], x["kind"], x["created_by"], x["finished"]) for x in t["tasks"])
assert got == [("a", "inventory", "master:master.vigil.test", 1),
               ("b", "inventory", "master:master.vigil.test", 1)], got
PY
pass "findings and tasks across centers, each with its center"

# Center B stops: shown unreachable; A is still managed.
kill -TERM "$B_PID"
wait "$B_PID" || true
centers=$(on M --json master centers)
python3 - "$centers" <<'PY' || fail "after B stopped: $centers"
import json, sys
c = {x["name"]: x for x in json.loads(sys.argv[1])}
assert c["b"]["reachable"] is False and "unreachable" in c["b"]["error"], c["b"]
assert c["a"]["status"] == "ok", c["a"]
PY
pass "a center that is down is shown unreachable; the other is still managed"
