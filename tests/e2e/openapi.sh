#!/bin/bash
# The OpenAPI document served at /api/v1/openapi.json matches the code:
# every admin route (vigild --list-routes) is documented with the role it
# needs, and every documented operation is a route. The served document is
# docs/openapi.json, which scripts/openapi.py writes. Each operation has an
# operationId, a summary, responses with the Error schema for errors, and
# the security its role implies (public: none). The check is shown to fail
# for a route missing from the document, an operation without a route and
# a wrong role. With the validator scripts/install-deps installs from npm
# (@apidevtools/swagger-parser), the document is also validated against
# the OpenAPI 3.0 schema; without it that step is skipped with a message.
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
	echo "skip: @apidevtools/swagger-parser is not installed" \
		"(scripts/install-deps installs it from the npm registry);" \
		"schema validation skipped"
fi
