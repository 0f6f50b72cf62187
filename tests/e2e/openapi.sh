#!/bin/bash
# The OpenAPI document served at /api/v1/openapi.json matches the code:
# every admin route (vigild --list-routes) is documented with the role it
# needs, and every documented operation is a route. The served document is
# docs/openapi.json, which scripts/openapi.py writes. Each operation has an
# operationId, a summary, responses with the Error schema for errors, and
# the security its role implies (public: none). The check is shown to fail
# for a route missing from the document, an operation without a route and
# a wrong role. A walk through the live API (with an enrolled agent) calls
# every documented operation and checks each answer's status is documented,
# its Content-Type is a documented one (the sample download is a ZIP) and
# its body matches the documented schema; a body documented as taking no
# other members is refused (400) with one, and so is a body on a route
# that takes none. A list (the audit log) paged by next_cursor gives the
# same entries as one page, and bad list parameters are named in "field";
# each list documents exactly the parameters and sort fields the server
# names when it refuses an unknown one. With the validator
# scripts/install-deps installs from npm (@apidevtools/swagger-parser), the
# document is also validated against the OpenAPI 3.0 schema; without it
# that step is skipped with a message.
. "$(dirname "$0")/lib.sh"

standard_center
api GET /api/v1/openapi.json >"$T/openapi.json"
"$VIGILD" --list-routes >"$T/routes" || fail "vigild --list-routes"
[ -s "$T/routes" ] || fail "no routes listed"
cmp -s "$T/openapi.json" "$SRC/docs/openapi.json" ||
	fail "served document differs from docs/openapi.json"
python3 "$SRC/scripts/openapi.py" >"$T/generated.json" ||
	fail "scripts/openapi.py failed"
cmp -s "$T/generated.json" "$SRC/docs/openapi.json" ||
	fail "docs/openapi.json is not what scripts/openapi.py writes; run" \
		"python3 scripts/openapi.py > docs/openapi.json"
pass "served document is docs/openapi.json, as scripts/openapi.py writes it"

cat >"$T/check.py" <<'PY'
import json, sys

doc = json.load(open(sys.argv[1]))
routes = []
for line in open(sys.argv[2]):
    method, path, role = line.split()
    routes.append((method, path, role))
errors = []
if not str(doc.get("openapi", "")).startswith("3."):
    errors.append("openapi: not a 3.x document")
schemas = doc.get("components", {}).get("schemas", {})
if "Error" not in schemas:
    errors.append("components.schemas: no Error")
ERR = {"$ref": "#/components/schemas/Error"}
ops = []
ids = set()
for path, item in doc.get("paths", {}).items():
    for method, op in item.items():
        if method == "parameters":
            continue
        m = method.upper()
        ops.append((m, path, op))
        where = f"{m} {path}"
        res = op.get("responses") or {}
        if not any(c.startswith("2") for c in res):
            errors.append(f"{where}: no success response")
        for code, r in res.items():
            if code[0] in "45" and \
               r.get("content", {}).get("application/json", {}).get("schema") != ERR:
                errors.append(f"{where}: response {code} is not the Error schema")
        oid = op.get("operationId")
        if not oid or oid in ids:
            errors.append(f"{where}: operationId missing or repeated")
        ids.add(oid)
        if not op.get("summary"):
            errors.append(f"{where}: no summary")
        role = op.get("x-vigil-role")
        if role is None:
            errors.append(f"{where}: no x-vigil-role")
        elif (role == "public") != (op.get("security") == []):
            errors.append(f"{where}: security: [] must go with public, "
                          f"and only with it")
        elif role != "public" and "401" not in res:
            errors.append(f"{where}: needs credentials but has no 401")
        for seg in path.split("/"):
            if seg.startswith("{") and not any(
                    p.get("in") == "path" and p.get("name") == seg[1:-1]
                    for p in op.get("parameters", [])):
                errors.append(f"{where}: path parameter {seg} not declared")

def matches(route, m, path):
    rm, rp, _ = route
    if rm != m:
        return False
    if rp.endswith("*"):
        prefix = rp[:-1]
        return path.startswith(prefix) and len(path) > len(prefix)
    return rp == path

for r in routes:
    hit = [o for o in ops if matches(r, o[0], o[1])]
    if not hit:
        errors.append(f"route {r[0]} {r[1]} is not documented")
    for o in hit:
        if o[2].get("x-vigil-role") != r[2]:
            errors.append(f"{o[0]} {o[1]}: documented role "
                          f"{o[2].get('x-vigil-role')}, the route needs {r[2]}")
for o in ops:
    if not any(matches(r, o[0], o[1]) for r in routes):
        errors.append(f"documented {o[0]} {o[1]} is no route")
for e in errors:
    print("openapi:", e, file=sys.stderr)
print(f"{len(routes)} routes, {len(ops)} documented operations")
sys.exit(1 if errors else 0)
PY
python3 "$T/check.py" "$T/openapi.json" "$T/routes" >"$T/check.out" 2>&1 ||
	fail "OpenAPI document and route table disagree: $(cat "$T/check.out")"
cat "$T/check.out"
pass "OpenAPI document matches the route table"

# The check can fail: a copy without one documented path, a copy with an
# operation the server does not have, and a copy with a role changed are
# all refused, naming the difference.
python3 - "$T/openapi.json" "$T" <<'PY'
import json, sys
src, d = sys.argv[1], sys.argv[2]
def copy():
    return json.load(open(src))
x = copy()
x["paths"].pop("/api/v1/agents")
json.dump(x, open(d + "/less.json", "w"))
x = copy()
x["paths"]["/api/v1/nonsense"] = {"get": {"operationId": "x", "summary": "x",
    "x-vigil-role": "readonly", "responses": {"200": {"description": "x"}}}}
json.dump(x, open(d + "/more.json", "w"))
x = copy()
x["paths"]["/api/v1/tasks/{id}/cancel"]["post"]["x-vigil-role"] = "readonly"
json.dump(x, open(d + "/role.json", "w"))
x = copy()
x["paths"]["/api/v1/users"]["post"]["x-vigil-role"] = "operator"
json.dump(x, open(d + "/role2.json", "w"))
PY
python3 "$T/check.py" "$T/less.json" "$T/routes" >/dev/null 2>"$T/less.err" &&
	fail "a route missing from the document went unnoticed"
expect_contains "$(cat "$T/less.err")" "route GET /api/v1/agents is not documented"
python3 "$T/check.py" "$T/more.json" "$T/routes" >/dev/null 2>"$T/more.err" &&
	fail "a documented operation without a route went unnoticed"
expect_contains "$(cat "$T/more.err")" "documented GET /api/v1/nonsense is no route"
python3 "$T/check.py" "$T/role.json" "$T/routes" >/dev/null 2>"$T/role.err" &&
	fail "a wrong role (prefix route) went unnoticed"
expect_contains "$(cat "$T/role.err")" \
	"POST /api/v1/tasks/{id}/cancel: documented role readonly, the route needs operator"
python3 "$T/check.py" "$T/role2.json" "$T/routes" >/dev/null 2>"$T/role2.err" &&
	fail "a wrong role went unnoticed"
expect_contains "$(cat "$T/role2.err")" \
	"POST /api/v1/users: documented role operator, the route needs admin"
pass "the check catches a missing route, an extra operation and a wrong role"

# The document describes what the server does: a walk through the API
# (create, list, show, delete; refusals) checks each answer's status is one
# the operation documents and its body matches the documented schema,
# every member the server sends being documented.
# An enrolled agent that sent an event and a sample, so that the lists
# have members to check.
TOKEN=$(new_token --uses 1 --label site=berlin)
VIGIL_MACHINE_ID_FILE=$(machine_id oa1) "$AGENT" enroll \
	--server "https://127.0.0.1:$GW" --token "$TOKEN" --ca "$PKI/ca.crt" \
	--data-dir "$T/a" >"$T/enroll.log" 2>&1 || fail "enroll: $(cat "$T/enroll.log")"
agent() { # agent METHOD PATH [curl args]
	local m=$1 p=$2
	shift 2
	curl -sS --cacert "$PKI/ca.crt" --cert "$T/a/agent.crt" \
		--key "$T/a/agent.key" -X "$m" "https://127.0.0.1:$GW$p" "$@"
}
expect_contains "$(agent POST /v1/events -d '{"events": [{"seq": 1, "time": 1795000000, "type": "finding", "level": "alert", "data": {"path": "/tmp/x", "score": 90}}]}')" '"stored":1'
printf 'openapi sample' >"$T/sample"
H=$(sha256sum "$T/sample" | cut -d' ' -f1)
AID=$(sed -nE 's/.*"agent_id": "([^"]+)".*/\1/p' "$T/a/state.json")
CT=$("$CTL" task create collect --agent "$AID" --param path=/tmp/x |
	sed -nE 's/^created task ([0-9a-f-]{36}) .*/\1/p')
agent GET /v1/tasks >/dev/null
expect_contains "$(agent POST "/v1/samples?sha256=$H&task=$CT&path=/tmp/x" --data-binary @"$T/sample")" "$H"
cat >"$T/live.py" <<'PY'
import json, re, ssl, sys, urllib.parse, urllib.request, urllib.error

doc = json.load(open(sys.argv[1]))
base, ca, key, sample = sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = False
errors, seen = [], set()

def resolve(s):
    while "$ref" in s:
        s = doc["components"]["schemas"][s["$ref"].split("/")[-1]]
    return s

TYPES = {"string": str, "integer": int, "boolean": bool, "object": dict,
         "array": list, "number": (int, float)}

def check(v, s, where):
    s = resolve(s)
    if v is None:
        if not s.get("nullable"):
            errors.append(f"{where}: null, not documented as nullable")
        return
    if "oneOf" in s:
        if not any(not check_quiet(v, x) for x in s["oneOf"]):
            errors.append(f"{where}: matches none of oneOf")
        return
    t = s.get("type")
    if t and (not isinstance(v, TYPES[t]) or
              (t in ("integer", "number") and isinstance(v, bool))):
        errors.append(f"{where}: {type(v).__name__}, documented {t}")
        return
    if "enum" in s and v not in s["enum"]:
        errors.append(f"{where}: {v!r} not in {s['enum']}")
    if isinstance(v, dict):
        props = s.get("properties", {})
        for r in s.get("required", []):
            if r not in v:
                errors.append(f"{where}: required member {r} missing")
        for k, x in v.items():
            if k in props:
                check(x, props[k], f"{where}.{k}")
            elif isinstance(s.get("additionalProperties"), dict):
                check(x, s["additionalProperties"], f"{where}.{k}")
            elif props:
                errors.append(f"{where}: member {k} is not documented")
    if isinstance(v, list) and "items" in s:
        for i, x in enumerate(v):
            check(x, s["items"], f"{where}[{i}]")

def check_quiet(v, s):
    global errors
    keep, errors = errors, []
    check(v, s, "")
    bad, errors = errors, keep
    return bad

def find_op(method, path):
    for tpl, item in doc["paths"].items():
        rx = "^" + re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(tpl)) + "$"
        if method.lower() in item and re.match(rx, path):
            return tpl, item[method.lower()]
    return None, None

def call(method, path, body=None, auth=True, want=None):
    h = {"Content-Type": "application/json"}
    if auth:
        h["Authorization"] = "Bearer " + key
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method, headers=h)
    try:
        with urllib.request.urlopen(req, context=ctx) as f:
            code, raw, ctype = f.status, f.read(), f.headers.get("Content-Type", "")
    except urllib.error.HTTPError as e:
        code, raw, ctype = e.code, e.read(), e.headers.get("Content-Type", "")
    where = f"{method} {path}"
    tpl, op = find_op(method, path.split("?")[0])
    if op is None:
        errors.append(f"{where}: no documented operation")
        return None
    seen.add((method, tpl))
    if want is not None and code != want:
        errors.append(f"{where}: status {code}, the walk expects {want}: {raw[:200]!r}")
    res = op["responses"].get(str(code))
    if res is None:
        errors.append(f"{where}: status {code} is not documented")
        return None
    content = res.get("content", {})
    if content and not any(ctype.split(";")[0].strip() == t for t in content):
        errors.append(f"{where}: Content-Type {ctype!r}, documented {list(content)}")
        return None
    if "application/json" in content:
        v = json.loads(raw)
        check(v, content["application/json"]["schema"], f"{where} {code}")
        return v
    return raw

call("GET", "/api/v1/health", auth=False, want=200)
call("GET", "/api/v1/session", want=200)
call("GET", "/api/v1/openapi.json", want=200)
call("GET", "/metrics", want=200)
call("POST", "/api/v1/users", {"name": "alice", "password": "correct horse battery",
                               "role": "analyst"}, want=201)
call("POST", "/api/v1/users", {"name": "alice", "password": "correct horse battery",
                               "role": "analyst"}, want=409)
call("POST", "/api/v1/users", {"name": "bob", "password": "x", "role": "analyst",
                               "colour": "red"}, want=400)
call("GET", "/api/v1/users", want=200)
call("GET", "/api/v1/users/alice", want=200)
call("GET", "/api/v1/users/nobody", want=404)
call("PUT", "/api/v1/users/alice", {"role": "operator", "unlock": True}, want=200)
call("POST", "/api/v1/login", {"username": "alice", "password": "correct horse battery"},
     auth=False, want=200)
call("POST", "/api/v1/login", {"username": "alice", "password": "wrong password!"},
     auth=False, want=401)
call("POST", "/api/v1/session/totp", want=400)
k = call("POST", "/api/v1/keys", {"role": "readonly", "label": "ci", "expires": "1d"},
         want=201)
call("GET", "/api/v1/keys", want=200)
call("DELETE", "/api/v1/keys/" + (k or {}).get("id", "x"), want=200)
t = call("POST", "/api/v1/tokens", {"uses": 2, "labels": {"site": "berlin"}}, want=201)
call("POST", "/api/v1/tokens", {"uses": 2, "colour": "red"}, want=400)
call("GET", "/api/v1/tokens", want=200)
call("DELETE", "/api/v1/tokens/" + (t or {}).get("id", "x"), want=200)
agents = call("GET", "/api/v1/agents", want=200) or {"items": [{"id": "x"}]}
if not agents["items"]:
    errors.append("no agent enrolled: the walk needs one")
    agents["items"].append({"id": "x"})
aid = agents["items"][0]["id"]
call("GET", "/api/v1/agents?state=online&sort=-last_seen&label=site=berlin&q=127",
     want=200)
call("GET", "/api/v1/agents/" + aid, want=200)
call("PUT", "/api/v1/agents/" + aid + "/labels",
     {"labels": {"site": "berlin", "role": "web"}}, want=200)
call("PUT", "/api/v1/agents/" + aid + "/labels", {"labels": {"a b": "c"}}, want=400)
call("PUT", "/api/v1/agents/nope/labels", {"labels": {}}, want=404)
call("GET", "/api/v1/enrollments?status=approved", want=200)
call("POST", "/api/v1/enrollments/nope/reject", want=404)
task = call("POST", "/api/v1/tasks", {"kind": "inventory", "target": {"agent": aid},
                                      "timeout": "1h", "expires": 3600}, want=201)
tid = (task or {}).get("id", "x")
call("GET", "/api/v1/tasks/" + tid, want=200)
call("POST", "/api/v1/tasks/" + tid + "/cancel", want=200)
call("POST", "/api/v1/session/password", {"old": "a", "new": "b"}, want=400)
call("POST", "/api/v1/session/totp/confirm", {"code": "123456"}, want=400)
call("DELETE", "/api/v1/session/totp", {"code": "123456"}, want=400)
call("GET", "/api/v1/agents?state=sideways", want=400)
call("GET", "/api/v1/agents/nope", want=404)
call("POST", "/api/v1/agents/nope/revoke", want=404)
call("GET", "/api/v1/enrollments?status=pending", want=200)
call("POST", "/api/v1/enrollments/nope/approve", want=404)
call("GET", "/api/v1/notices", want=200)
call("POST", "/api/v1/rules", {"name": "iocs", "kind": "ioc", "content":
     "sha256;59b861d8b719ddabca32337875a22ca71ce90fd9b3373aecc0c32615932e87d0;90;x\n"},
     want=201)
call("POST", "/api/v1/rules", {"name": "bad", "kind": "yara", "content": "rule {"},
     want=400)
call("GET", "/api/v1/rules", want=200)
call("GET", "/api/v1/task-kinds", want=200)
call("POST", "/api/v1/templates", {"name": "inv", "spec": {"kind": "inventory"}},
     want=201)
call("GET", "/api/v1/templates", want=200)
call("POST", "/api/v1/schedules", {"name": "nightly", "cron": "30 2 * * *",
     "task": {"template": "inv", "target": {"all": True}}}, want=201)
call("GET", "/api/v1/schedules", want=200)
call("DELETE", "/api/v1/schedules/nightly", want=200)
call("POST", "/api/v1/tasks", {"kind": "inventory", "target": {"labels": {"site": "paris"}}},
     want=400)
call("GET", "/api/v1/tasks", want=200)
call("GET", "/api/v1/tasks/nope", want=404)
call("POST", "/api/v1/tasks/nope/cancel", want=409)
call("GET", "/api/v1/events?limit=5&since=0", want=200)
call("GET", "/api/v1/events?limit=0", want=400)
call("GET", "/api/v1/events?limit=10000&rule=x&time_from=0&sort=agent_id", want=200)
call("GET", "/api/v1/findings", want=200)
call("PUT", "/api/v1/findings/" + aid + "/1", {"status": "acknowledged",
                                               "comment": "walk"}, want=200)
call("PUT", "/api/v1/findings/" + aid + "/1", {"status": "closed"}, want=400)
call("PUT", "/api/v1/findings/" + aid + "/99", {"status": "resolved"}, want=404)
fl = call("GET", "/api/v1/findings?status=acknowledged&level=alert&triaged_at_from=0"
          "&sort=status&q=walk", want=200)
if fl is not None and len(fl["items"]) != 1:
    errors.append(f"findings: the acknowledged finding not listed: {fl}")
call("GET", "/api/v1/findings?status=closed", want=400)
call("GET", "/api/v1/samples", want=200)
call("GET", "/api/v1/samples?agent=" + aid + "&sort=size&received_at_from=0", want=200)
call("GET", "/api/v1/samples/" + sample, want=200)
call("GET", "/api/v1/samples/NOT-HEX", want=400)
call("GET", "/api/v1/samples/" + "0" * 64, want=404)
call("GET", "/api/v1/samples/" + "0" * 64 + "/download", want=404)
z = call("GET", "/api/v1/samples/" + sample + "/download", want=200)
if z is not None and (not isinstance(z, bytes) or not z.startswith(b"PK\x03\x04")):
    errors.append(f"sample download: not a ZIP: {z[:16]!r}")
call("GET", "/api/v1/version", want=200)
call("GET", "/api/v1/settings", want=200)
call("PUT", "/api/v1/settings", {"sample_archive_password": "walk-pass",
                                 "require_approval": False}, want=200)
call("PUT", "/api/v1/settings", {"sample_archive_password": ""}, want=400)
st = call("PUT", "/api/v1/settings", {"sample_archive_password": None,
                                      "require_approval": None}, want=200)
if st is not None and st.get("set") != []:
    errors.append(f"settings reset to defaults, still set: {st.get('set')}")
# A body on a route that takes none is refused.
call("POST", "/api/v1/enrollments/nope/reject", {"x": 1}, want=400)
call("DELETE", "/api/v1/tokens/nope", {"x": 1}, want=400)
# Lists: bad parameters name themselves; a paged list followed by
# next_cursor gives every entry once.
for bad, field in (("limit=0", "limit"), ("sort=bogus", "sort"), ("cursor=xyz", "cursor"),
                   ("colour=red", "colour"), ("time_from=yesterday", "time_from")):
    e = call("GET", "/api/v1/audit?" + bad, want=400)
    if e is not None and e["error"].get("field") != field:
        errors.append(f"GET /api/v1/audit?{bad}: field {e['error'].get('field')!r}, "
                      f"not {field}")
whole = call("GET", "/api/v1/audit?limit=1000", want=200) or {"items": []}
if len(whole["items"]) < 5 or whole["next_cursor"] is not None:
    errors.append(f"audit: {len(whole['items'])} entries on one page, "
                  f"next_cursor {whole['next_cursor']!r}; expected 5 or more, null")
ids, cursor, pages, first = [], None, 0, None
while pages < 1000:
    p = call("GET", "/api/v1/audit?limit=2&sort=-id" +
             ("&cursor=" + urllib.parse.quote(cursor, safe="") if cursor else ""), want=200)
    if p is None:
        break
    pages += 1
    ids += [x["id"] for x in p["items"]]
    cursor = p["next_cursor"]
    first = first or cursor
    if cursor is None:
        break
if ids != [x["id"] for x in whole["items"]] or pages < 3:
    errors.append(f"audit paged by 2 over {pages} pages: {ids}, "
                  f"not {[x['id'] for x in whole['items']]}")
e = call("GET", "/api/v1/audit?sort=time&cursor=" + urllib.parse.quote(first or "x", safe=""),
         want=400)
if e is not None and "made for sort" not in e["error"]["message"]:
    errors.append(f"a cursor of another sort: {e}")
call("GET", "/api/v1/audit?action=user.create&status=201&who=key:x&q=alice&time_from=0",
     want=200)
ev = call("GET", "/api/v1/events?type=audit&agent=center&limit=3", want=200)
if ev is not None and (not ev["items"] or ev["next_cursor"] is None):
    errors.append(f"no audit events from the agent center, or one page only: {ev}")
call("POST", "/api/v1/forward", {"name": "siem", "host": "127.0.0.1", "port": 9,
                                 "format": "json", "from": "start"}, want=201)
call("POST", "/api/v1/forward", {"name": "x", "host": "h", "colour": "red"}, want=400)
call("GET", "/api/v1/forward", want=200)
call("POST", "/api/v1/forward/siem/test")
call("DELETE", "/api/v1/forward/siem", want=200)
call("DELETE", "/api/v1/rules/iocs", want=200)
call("DELETE", "/api/v1/users/alice", want=200)
call("POST", "/api/v1/agents/" + aid + "/revoke", want=200)
call("POST", "/api/v1/logout", want=200)
# Every list documents exactly the query parameters and sort fields the
# server knows: its answers to an unknown parameter and to an unknown sort
# field list them. (The offset-paged lists of the collector and the
# master, src/center/query.h, take limit and cursor but no sort.)
lists = 0
for tpl, item in doc["paths"].items():
    o = item.get("get", {})
    params = {p["name"]: p for p in o.get("parameters", []) if p["in"] == "query"}
    if "cursor" not in params or "sort" not in params:
        continue
    lists += 1
    e = call("GET", tpl + "?nonsense_param=1", want=400)
    m = re.search(r"\(known: ([^)]*)\)", (e or {}).get("error", {}).get("message", ""))
    known = set(m.group(1).split(", ")) if m else set()
    if known != set(params):
        errors.append(f"GET {tpl}: the server knows the parameters {sorted(known)}, "
                      f"the document {sorted(params)}")
    e = call("GET", tpl + "?sort=nonsense_field", want=400)
    m = re.search(r"one of: ([^;]*);", (e or {}).get("error", {}).get("message", ""))
    known = set(m.group(1).split(", ")) if m else set()
    documented = {x.lstrip("-") for x in params["sort"]["schema"]["enum"]}
    if known != documented:
        errors.append(f"GET {tpl}: the server sorts by {sorted(known)}, "
                      f"the document {sorted(documented)}")
if lists < 10:
    errors.append(f"only {lists} paged lists documented; expected 10 or more")
# Where the document says a body takes no other members, one is refused.
closed = 0
for tpl, item in doc["paths"].items():
    for m, o in item.items():
        b = o.get("requestBody", {}).get("content", {}).get("application/json", {})
        if "{" in tpl or resolve(b.get("schema", {})).get("additionalProperties") is not False:
            continue
        closed += 1
        call(m.upper(), tpl, {"nonsense_member": 1}, auth=(o.get("security") != []),
             want=400)
if closed < 10:
    errors.append(f"only {closed} closed request bodies; expected 10 or more")
for e in errors:
    print("openapi-live:", e, file=sys.stderr)
n = sum(len(v) for v in doc["paths"].values())
print(f"{len(seen)} of {n} documented operations exercised")
sys.exit(1 if errors else 0)
PY
python3 "$T/live.py" "$T/openapi.json" "https://127.0.0.1:$ADM" "$PKI/ca.crt" \
	"$VIGIL_API_KEY" "$H" >"$T/live.out" 2>&1 ||
	fail "the server's answers differ from the document: $(cat "$T/live.out")"
pass "answers match the documented statuses and schemas: $(cat "$T/live.out")"
# ... and that walk can fail: a documented schema short of a member the
# server sends, and a status the operation does not document.
python3 - "$T/openapi.json" "$T/short.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
del d["components"]["schemas"]["Token"]["properties"]["used"]
del d["paths"]["/api/v1/tasks/{id}/cancel"]["post"]["responses"]["409"]
p = d["paths"]["/api/v1/audit"]["get"]["parameters"]
p[:] = [x for x in p if x["name"] != "addr"]
x = next(x for x in p if x["name"] == "sort")["schema"]
x["enum"] = [v for v in x["enum"] if v.lstrip("-") != "who"]
r = d["paths"]["/api/v1/samples/{sha256}/download"]["get"]["responses"]["200"]
r["content"] = {"application/json": r["content"].pop("application/zip")}
json.dump(d, open(sys.argv[2], "w"))
PY
python3 "$T/live.py" "$T/short.json" "https://127.0.0.1:$ADM" "$PKI/ca.crt" \
	"$VIGIL_API_KEY" "$H" >"$T/short.out" 2>&1 &&
	fail "an undocumented member and status went unnoticed"
expect_contains "$(cat "$T/short.out")" "GET /api/v1/tokens 200.items[0]: member used is not documented"
expect_contains "$(cat "$T/short.out")" "POST /api/v1/tasks/nope/cancel: status 409 is not documented"
expect_contains "$(cat "$T/short.out")" \
	"/download: Content-Type 'application/zip', documented ['application/json']"
expect_contains "$(cat "$T/short.out")" "GET /api/v1/audit: the server knows the parameters"
expect_contains "$(cat "$T/short.out")" "GET /api/v1/audit: the server sorts by"
pass "the walk catches an undocumented member, status, content type," \
	"list parameter and sort field"

# The route table the document is checked against is the one the server
# enforces: an operator key is refused where the document says admin.
key=$(api POST /api/v1/keys -d '{"role": "operator"}' |
	python3 -c 'import json, sys; print(json.load(sys.stdin)["key"])') ||
	fail "cannot create an operator key"
[ -n "$key" ] || fail "cannot create an operator key"
code=$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$PKI/ca.crt" \
	-H "Authorization: Bearer $key" "https://127.0.0.1:$ADM/api/v1/users")
[ "$code" = 403 ] || fail "operator key on GET /api/v1/users: $code, not 403"
code=$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$PKI/ca.crt" \
	"https://127.0.0.1:$ADM/api/v1/health")
[ "$code" = 200 ] || fail "GET /api/v1/health without credentials: $code"
pass "documented roles are enforced (admin route refused, public route open)"

# Validation against the OpenAPI 3 schema by a real validator, when
# scripts/install-deps could install it (npm, global).
V=""
if command -v node >/dev/null && command -v npm >/dev/null; then
	V=$(npm root -g 2>/dev/null)/@apidevtools/swagger-parser
fi
if [ -n "$V" ] && [ -f "$V/package.json" ]; then
	cat >"$T/validate.js" <<'JS'
const parser = require(process.argv[2]);
parser.validate(process.argv[3]).then(
	(api) => console.log(`${api.info.title}, OpenAPI ${api.openapi}`),
	(e) => { console.error(e.message); process.exit(1); });
JS
	node "$T/validate.js" "$V" "$T/openapi.json" >"$T/validate.out" 2>&1 ||
		fail "swagger-parser: $(cat "$T/validate.out")"
	pass "swagger-parser validates it: $(cat "$T/validate.out")"
	# The validator can fail: a response without its description.
	python3 - "$T/openapi.json" "$T/invalid.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
del d["paths"]["/api/v1/agents"]["get"]["responses"]["200"]["description"]
json.dump(d, open(sys.argv[2], "w"))
PY
	node "$T/validate.js" "$V" "$T/invalid.json" >"$T/invalid.out" 2>&1 &&
		fail "swagger-parser accepted a response without a description"
	expect_contains "$(cat "$T/invalid.out")" "must have required property 'description'"
	pass "swagger-parser refuses an invalid document"
else
	skip "@apidevtools/swagger-parser is not installed" \
		"(scripts/install-deps installs it from the npm registry);" \
		"the checks above passed, schema validation did not run"
fi
