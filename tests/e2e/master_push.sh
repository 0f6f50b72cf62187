#!/bin/bash
# The master's pushes (docs/master.md, "Pushing rule sets"): a YARA rule
# set pushed from the master becomes the rule set of both centers, one of
# them down at push time (pending with the reason, applied when it comes
# back), and the next scan on an agent of each center uses it. Bad rule
# sets and unknown centers are refused at once. And the master's calls to
# centers do not hold its API: with a "center" that accepts TCP and never
# answers, a second request is served while the first waits, and the
# list names that center unreachable; known down, it is not called again
# for the next request, and a center that comes back is listed reachable
# again. Users made on the master log in on
# a center, also while the master is down, until removed there. The
# master's lists page beyond 100 rows. VIGIL_STORE=pg: the master on
# PostgreSQL, the centers on SQLite.
. "$(dirname "$0")/lib.sh"

PKI=$T/pki
make_pki "$PKI"
"$CTL" pki issue --dir "$PKI" --role master --name master.vigil.test >/dev/null ||
	fail "issue master certificate"

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

for n in A B; do
	lc=$(tr A-Z a-z <<<"$n")
	VIGIL_STORE=sqlite write_conf "$T/$lc.conf" "$PKI" "$T/$lc"
	printf '[manage]\nenable = yes\nlisten = 127.0.0.1\nport = 0\n' >>"$T/$lc.conf"
	start_node "$n" "$T/$lc.conf" "$T/$lc"
	eval "gw=\$${n}_GW"
	token=$(on "$n" --json token create --uses 1 | sed -nE 's/.*"token": "([^"]+)".*/\1/p')
	VIGIL_MACHINE_ID_FILE=$(machine_id "$lc") "$AGENT" enroll \
		--server "https://127.0.0.1:$gw" --token "$token" \
		--ca "$PKI/ca.crt" --data-dir "$T/agent-$lc" >"$T/enroll-$lc.log" 2>&1 ||
		fail "enroll on $n: $(cat "$T/enroll-$lc.log")"
	VIGIL_MACHINE_ID_FILE=$T/machine-id-$lc "$AGENT" run --data-dir "$T/agent-$lc" \
		>"$T/agent-$lc.log" 2>&1 &
	PIDS+=("$!")
done

# A "center" that accepts connections and never says a word.
cat >"$T/dead.py" <<'PY'
import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(64)
open(sys.argv[1], "w").write(str(s.getsockname()[1]))
held = []
while True:
    c, _ = s.accept()
    held.append(c)
PY
python3 "$T/dead.py" "$T/dead.port" >"$T/dead.log" 2>&1 &
PIDS+=("$!")
wait_for 10 "the silent center" test -s "$T/dead.port"
DEAD=$(cat "$T/dead.port")

write_conf "$T/m.conf" "$PKI" "$T/m" "role = master"
cat >>"$T/m.conf" <<EOF
[master]
cert_file = $PKI/master-master.vigil.test.crt
key_file = $PKI/master-master.vigil.test.key
centers = a=https://127.0.0.1:$A_MG, b=https://127.0.0.1:$B_MG, dead=https://127.0.0.1:$DEAD
EOF
start_node M "$T/m.conf" "$T/m"

# --- a center that never answers does not hold the API ---------------------
on M --json master centers >"$T/centers.out" 2>"$T/centers.err" &
SLOW=$!
# The first request is waiting for the silent center (up to its timeout):
# it has reached the master once the connection is there.
wait_for 10 "the master to call the silent center" sh -c \
	"ss -Htn state established '( dport = :$DEAD )' | grep -q ."
out=$(on M --json master pushes) || fail "second request: $out"
expect_contains "$out" '"items": []'
kill -0 "$SLOW" 2>/dev/null ||
	fail "the first request ended before the second was answered: the calls are not concurrent? $(cat "$T/centers.out" "$T/centers.err")"
wait "$SLOW" || fail "master centers: $(cat "$T/centers.err")"
python3 - "$T/centers.out" <<'PY' || fail "master centers: $(cat "$T/centers.out")"
import json, sys
c = {x["name"]: x for x in json.load(open(sys.argv[1]))}
assert c["dead"]["reachable"] is False, c["dead"]
assert c["dead"]["status"] == "error", c["dead"]
assert c["dead"]["error"].startswith("unreachable"), c["dead"]
for n in "ab":
    assert c[n]["reachable"] is True and c[n]["status"] == "ok", c[n]
PY
pass "a center that never answers costs its own column: the API answered meanwhile, and it is listed unreachable"

# Known down now: the next request does not call it again (it would wait
# its 10 s) but names it unreachable at once, with why and for how long.
out=$(on M --json master centers) || fail "master centers again: $out"
python3 - "$out" <<'PY' || fail "master centers, the silent center known down: $out"
import json, sys
c = {x["name"]: x for x in json.loads(sys.argv[1])}
e = c["dead"]["error"]
assert c["dead"]["reachable"] is False and e.startswith("unreachable"), c["dead"]
assert "not called for this request" in e and "down for" in e, e
for n in "ab":
    assert c[n]["reachable"] is True and c[n]["status"] == "ok", c[n]
PY
grep -q "master: center dead is down" "$T/M.log" || fail "no warning that dead is down: $(tail -5 "$T/M.log")"
pass "a center known down is listed unreachable without being called again, the reason kept; its fall is logged"

# --- a rule set pushed while center B is down -------------------------------
kill -TERM "$B_PID"
wait "$B_PID" || true
mkdir -p "$T/scan"
printf 'x VIGIL-PUSH-MARKER x\n' >"$T/scan/pushed.txt"
printf 'rule vigil_push_marker { meta: score = 85 strings: $m = "VIGIL-PUSH-MARKER" condition: $m }\n' >"$T/push.yar"
SHA=$(sha256sum "$T/push.yar" | cut -d' ' -f1)
out=$(on M master rules pushed "$T/push.yar" --center a --center b) || fail "master rules: $out"
PUSH=$(sed -nE 's/^pushed yara set pushed \([0-9a-f]{64}\) as push ([0-9a-f-]{36})$/\1/p' <<<"$out")
[ -n "$PUSH" ] || fail "master rules: $out"
expect_contains "$out" "$SHA"

state_is() { # state_is CENTER STATE: the push's state on CENTER
	on M --json master pushes "$PUSH" | python3 -c '
import json, sys
p = json.load(sys.stdin)
c = {x["center"]: x for x in p["centers"]}
sys.exit(0 if c[sys.argv[1]]["state"] == sys.argv[2] else 1)' "$1" "$2"
}
wait_for 30 "the push applied on a" state_is a applied
st=$(on M --json master pushes "$PUSH")
python3 - "$st" "$SHA" <<'PY' || fail "push while b is down: $st"
import json, sys
p = json.loads(sys.argv[1])
c = {x["center"]: x for x in p["centers"]}
assert sorted(c) == ["a", "b"], c
assert p["name"] == "pushed" and p["kind"] == "yara" and p["sha256"] == sys.argv[2], p
assert c["a"]["state"] == "applied" and c["a"]["version"] == sys.argv[2], c["a"]
assert c["b"]["state"] == "pending", c["b"]
PY
wait_for 30 "b's pending push to name why" sh -c "VIGIL_SERVER=https://127.0.0.1:$M_ADM VIGIL_CA=$PKI/ca.crt VIGIL_API_KEY=$M_KEY $CTL --json master pushes $PUSH | grep -q '\"error\": \"unreachable'"
expect_contains "$(on M master pushes)" "pending"
pass "pushed while b is down: applied on a with its version, pending on b with why"

# B comes back on the same ports: it gets the push.
VIGIL_STORE=sqlite GW_PORT=$B_GW ADM_PORT=$B_ADM write_conf "$T/b.conf" "$PKI" "$T/b"
printf '[manage]\nenable = yes\nlisten = 127.0.0.1\nport = %s\n' "$B_MG" >>"$T/b.conf"
start_node B "$T/b.conf" "$T/b"
wait_for 40 "the push applied on b once it is back" state_is b applied
b_reachable() {
	on M --json master centers | python3 -c '
import json, sys
c = {x["name"]: x for x in json.load(sys.stdin)}
sys.exit(0 if c["b"]["reachable"] is True and c["b"]["status"] == "ok" else 1)'
}
wait_for 30 "b listed reachable again" b_reachable
grep -q "master: center b answers again" "$T/M.log" || fail "no notice that b is back: $(tail -5 "$T/M.log")"
for n in A B; do
	out=$(on "$n" --json rules list)
	python3 - "$out" "$SHA" <<'PY' || fail "$n rules: $out"
import json, sys
r = json.loads(sys.argv[1])
items = r["items"] if isinstance(r, dict) else r
got = [(x["name"], x["id"]) for x in items]
assert got == [("pushed", sys.argv[2])], got
PY
	eval "adm=\$${n}_ADM key=\$${n}_KEY"
	out=$(curl -sS --cacert "$PKI/ca.crt" -H "Authorization: Bearer $key" \
		"https://127.0.0.1:$adm/api/v1/audit?action=rules.create")
	expect_contains "$out" '"who":"master:master.vigil.test"'
	expect_contains "$out" '"target":"pushed"'
done
pass "b got the push when it came back: the rule set is the same on both centers"

# The next scan on an agent of each center uses it.
printf '{"kind": "scan", "target": {"all": true}, "timeout": "5m", "params": {"paths": ["%s"], "rules": ["pushed"], "reputation": false}}\n' "$T/scan" >"$T/scan.json"
out=$(on M master push "$T/scan.json" --center a --center b)
MT=$(sed -nE 's/^created master task ([0-9a-f-]{36})$/\1/p' <<<"$out")
[ -n "$MT" ] || fail "push scan: $out"
found_both() {
	on M --json master findings | python3 -c '
import json, sys
f = json.load(sys.stdin)
c = sorted({x["center"] for x in f["findings"] if "vigil_push_marker" in json.dumps(x["data"]) and "pushed.txt" in json.dumps(x["data"])})
sys.exit(0 if c == ["a", "b"] else 1)'
}
wait_for 60 "findings of the pushed rule on both centers" found_both
pass "the next scan on an agent of each center used the pushed rule set"

# An IOC list (the kind from the file name) to center a only.
printf 'sha256;%s;90;pushed marker\nfilename;/pushed[.]txt$;60;pushed name\n' \
	"$(sha256sum "$T/scan/pushed.txt" | cut -d' ' -f1)" >"$T/push.ioc"
out=$(on M --json master rules pushed-iocs "$T/push.ioc" --center a) || fail "push iocs: $out"
IPUSH=$(python3 -c 'import json, sys; p = json.load(sys.stdin); assert p["kind"] == "ioc" and [c["center"] for c in p["centers"]] == ["a"], p; print(p["id"])' <<<"$out") ||
	fail "push iocs: $out"
PUSH=$IPUSH wait_for 30 "the IOC list applied on a" state_is a applied
ISHA=$(sha256sum "$T/push.ioc" | cut -d' ' -f1)
expect_contains "$(on A --json rules list)" "\"id\": \"$ISHA\""
expect_contains "$(on A --json rules list)" '"kind": "ioc"'
[ "$(on B --json rules list | grep -c pushed-iocs)" = 0 ] || fail "b got the IOC list pushed to a only"
pass "an IOC list pushed to a only is a's rule set, not b's"

# Refused at once: a rule set that does not compile, an unknown center.
printf 'rule broken { condition: nonsense }\n' >"$T/bad.yar"
out=$(on M master rules broken "$T/bad.yar" 2>&1) && fail "a bad rule set was pushed: $out"
expect_contains "$out" "rule set broken refused"
expect_contains "$out" "undefined identifier"
out=$(on M master rules other "$T/push.yar" --center nowhere 2>&1) && fail "pushed to an unknown center: $out"
expect_contains "$out" "no center named nowhere"
[ "$(on M --json master pushes | grep -c '"sha256"')" = 2 ] || fail "a refused push was recorded: $(on M --json master pushes)"
pass "a rule set that does not compile and an unknown center are refused, nothing recorded"

# --- paging beyond 100 rows -------------------------------------------------
# 70 findings on each center: the master's list pages through all 140
# (and what the scans found), newest first, each once.
for n in A B; do
	lc=$(tr A-Z a-z <<<"$n")
	eval "gw=\$${n}_GW"
	body='{"events": ['
	sep=''
	for i in $(seq 1 70); do
		body+="$sep{\"seq\": $((800000 + i)), \"time\": $(date +%s), \"type\": \"finding\", \"level\": \"alert\", \"data\": {\"rule\": \"Paged$n\", \"n\": $i}}"
		sep=', '
	done
	body+=']}'
	curl -sS --cacert "$PKI/ca.crt" --cert "$T/agent-$lc/agent.crt" \
		--key "$T/agent-$lc/agent.key" -X POST "https://127.0.0.1:$gw/v1/events" \
		-d "$body" | grep -q '"stored"' || fail "post findings to $n"
done
mapi() {
	curl -sS --cacert "$PKI/ca.crt" -H "Authorization: Bearer $M_KEY" \
		"https://127.0.0.1:$M_ADM$1"
}
cursor=''
: >"$T/pages"
for page in $(seq 1 20); do
	out=$(mapi "/api/v1/master/findings?limit=60${cursor:+&cursor=$cursor}")
	python3 - "$out" >>"$T/pages" <<'PY' || fail "master findings page: $out"
import json, sys
p = json.loads(sys.argv[1])
assert p["items"] == p["findings"], "items and findings differ"
assert len(p["items"]) <= 60, len(p["items"])
for x in p["items"]:
    print("%s %s %s %s" % (x["received_at"], x["center"], x["agent_id"], x["seq"]))
print("NEXT %s" % (p["next_cursor"] or ""))
PY
	cursor=$(sed -n 's/^NEXT //p' "$T/pages" | tail -1)
	[ -n "$cursor" ] || break
done
[ -z "$cursor" ] || fail "more than 20 pages"
python3 - "$T/pages" <<'PY' || fail "paging: $(cat "$T/pages")"
import sys
rows = [l.split() for l in open(sys.argv[1]) if not l.startswith("NEXT")]
pages = sum(1 for l in open(sys.argv[1]) if l.startswith("NEXT"))
keys = [(r[1], r[2], r[3]) for r in rows]
assert len(keys) == len(set(keys)), "a row came twice"
paged = [k for k in keys if int(k[2]) > 800000]
assert len(paged) == 140, len(paged)
assert sorted({k[0] for k in paged}) == ["a", "b"], paged[:3]
t = [int(r[0]) for r in rows]
assert t == sorted(t, reverse=True), "not newest first"
assert pages >= 3, pages
PY
# vigilctl reads the pages: all of them with --limit 0, 100 by default.
n=$(on M --json master findings --limit 0 | python3 -c 'import json, sys; print(sum(1 for x in json.load(sys.stdin)["findings"] if x["seq"] > 800000))')
[ "$n" = 140 ] || fail "vigilctl master findings --limit 0: $n paged rows"
n=$(on M --json master findings | python3 -c 'import json, sys; print(len(json.load(sys.stdin)["findings"]))')
[ "$n" = 100 ] || fail "vigilctl master findings: $n rows"
out=$(mapi "/api/v1/master/findings?cursor=nonsense")
expect_contains "$out" '"field":"cursor"'
pass "the master's findings page through more than 100 rows across centers (limit, cursor, next_cursor), each once, newest first"

# --- central users ----------------------------------------------------------
login() { # login NAME PASSWORD: the HTTP status of a login on center B
	curl -sS --cacert "$PKI/ca.crt" -o "$T/login.out" -w '%{http_code}' \
		-X POST "https://127.0.0.1:$B_ADM/api/v1/login" \
		-d "{\"username\": \"$1\", \"password\": \"$2\"}"
}
PW=central-pw-$RANDOM$RANDOM
printf '%s' "$PW" | on M user add central --role operator --password-stdin >/dev/null ||
	fail "user add on the master"
has_user() { # has_user NAME: center b lists NAME as the master's user
	on B --json user list | python3 -c '
import json, sys
u = json.load(sys.stdin)
u = u["users"] if isinstance(u, dict) else u
sys.exit(0 if any(x["name"] == sys.argv[1] and x["source"] == "master" for x in u) else 1)' "$1"
}
wait_for 30 "the master's user on b" has_user central
[ "$(login central "$PW")" = 200 ] || fail "central login: $(cat "$T/login.out")"
expect_contains "$(cat "$T/login.out")" '"role":"operator"'
[ "$(login central wrong-password)" = 401 ] || fail "a wrong password was accepted: $(cat "$T/login.out")"
out=$(curl -sS --cacert "$PKI/ca.crt" -H "Authorization: Bearer $B_KEY" \
	"https://127.0.0.1:$B_ADM/api/v1/audit?action=user.create&target=central")
expect_contains "$out" '"who":"master:master.vigil.test"'
out=$(curl -sS --cacert "$PKI/ca.crt" -H "Authorization: Bearer $M_KEY" \
	"https://127.0.0.1:$M_ADM/api/v1/audit?action=user.create&target=central")
expect_contains "$out" '"status":201'
# On the center it is the master's: not changed or removed there.
code=$(curl -sS --cacert "$PKI/ca.crt" -H "Authorization: Bearer $B_KEY" -o "$T/o" \
	-w '%{http_code}' -X DELETE "https://127.0.0.1:$B_ADM/api/v1/users/central")
[ "$code" = 409 ] || fail "a center removed the master's user: $code $(cat "$T/o")"
expect_contains "$(cat "$T/o")" "central_user"
# A local user of the center keeps working.
printf 'local-pw-12345678' | on B user add localop --role analyst --password-stdin >/dev/null ||
	fail "local user on b"
[ "$(login localop local-pw-12345678)" = 200 ] || fail "local login: $(cat "$T/login.out")"
pass "a user made on the master logs in on center b with its role, audited on both sides; b's own users keep working"

on M user remove central >/dev/null || fail "user remove on the master"
no_user() { ! has_user "$1"; }
wait_for 30 "the removed user gone from b" no_user central
[ "$(login central "$PW")" = 401 ] || fail "a removed user logged in: $(cat "$T/login.out")"
out=$(curl -sS --cacert "$PKI/ca.crt" -H "Authorization: Bearer $B_KEY" \
	"https://127.0.0.1:$B_ADM/api/v1/audit?action=user.delete&target=central")
expect_contains "$out" '"who":"master:master.vigil.test"'
[ "$(login localop local-pw-12345678)" = 200 ] || fail "local login after the removal: $(cat "$T/login.out")"
pass "a user removed on the master is refused on b; b's own user still logs in"

# The master away: what b was told still works.
printf '%s' "$PW" | on M user add central2 --role readonly --password-stdin >/dev/null ||
	fail "user add central2"
wait_for 30 "central2 on b" has_user central2
kill -TERM "$M_PID"
wait "$M_PID" || true
[ "$(login central2 "$PW")" = 200 ] || fail "central user locked out while the master is down: $(cat "$T/login.out")"
pass "while the master is down, its users still log in on b"
