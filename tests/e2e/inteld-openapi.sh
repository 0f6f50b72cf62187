#!/bin/bash
# vigil-inteld's OpenAPI document matches the code: the document served at
# /api/v1/openapi.json is docs/openapi-inteld.json, which
# scripts/openapi-inteld.py writes; every route of `vigil-inteld
# --list-routes` is documented with the role it needs and every documented
# operation is a route; each operation has an operationId, a summary, a
# success response, errors with the Error schema, and the security its
# role implies. Then every documented operation is called on a live
# daemon (one example request each: an operation without one fails the
# test) and its status and Content-Type must be documented ones. The
# check is shown to fail for a route missing from the document, an
# operation without a route and a wrong role.
. "$(dirname "$0")/lib.sh"

INTELD=$BIN/vigil-inteld
DATA=$T/inteld
PKI=$T/pki
make_pki "$PKI"
command -v jq >/dev/null || skip "jq missing (scripts/install-deps installs it)"
command -v python3 >/dev/null || skip "python3 missing (scripts/install-deps installs it)"

ADMIN_KEY=admin-$RANDOM$RANDOM$RANDOM
h() { printf %s "$1" | sha256sum | cut -c1-64; }
cat >"$T/inteld.conf" <<EOC
[inteld]
data_dir = $DATA
map_size = 256M
[https]
listen = 127.0.0.1
port = 0
cert = $PKI/server.crt
key = $PKI/server.key
[auth]
keys = ops:admin:$(h "$ADMIN_KEY")
EOC
"$INTELD" -d -c "$T/inteld.conf" >>"$T/inteld.log" 2>&1 &
PIDS+=("$!")
wait_for 10 "vigil-inteld listening" test -s "$DATA/vigil-inteld.ports"
P=$(jq -r .https "$DATA/vigil-inteld.ports")
U=https://127.0.0.1:$P

curl -sS --fail --cacert "$PKI/ca.crt" -H "X-API-Key: $ADMIN_KEY" \
	"$U/api/v1/openapi.json" >"$T/openapi.json" || fail "GET /api/v1/openapi.json"
cmp -s "$T/openapi.json" "$SRC/docs/openapi-inteld.json" ||
	fail "served document differs from docs/openapi-inteld.json"
python3 "$SRC/scripts/openapi-inteld.py" >"$T/generated.json" ||
	fail "scripts/openapi-inteld.py failed"
cmp -s "$T/generated.json" "$SRC/docs/openapi-inteld.json" ||
	fail "docs/openapi-inteld.json is not what scripts/openapi-inteld.py writes; run" \
		"python3 scripts/openapi-inteld.py > docs/openapi-inteld.json"
"$INTELD" --list-routes >"$T/routes" || fail "vigil-inteld --list-routes"
[ "$(wc -l <"$T/routes")" -ge 10 ] || fail "routes: $(cat "$T/routes")"
pass "served document is docs/openapi-inteld.json, as scripts/openapi-inteld.py writes it"

cat >"$T/check.py" <<'PY'
import json, sys

doc = json.load(open(sys.argv[1]))
routes = [tuple(l.split()) for l in open(sys.argv[2]) if l.strip()]
errors = []
if not str(doc.get("openapi", "")).startswith("3."):
    errors.append("openapi: not a 3.x document")
ERR = {"$ref": "#/components/schemas/Error"}
if "Error" not in doc.get("components", {}).get("schemas", {}):
    errors.append("components.schemas: no Error")
ops, ids = [], set()
for path, item in doc.get("paths", {}).items():
    for method, op in item.items():
        m, where = method.upper(), f"{method.upper()} {path}"
        ops.append((m, path, op))
        res = op.get("responses") or {}
        if not any(c.startswith("2") for c in res):
            errors.append(f"{where}: no success response")
        for code, r in res.items():
            sch = r.get("content", {}).get("application/json", {}).get("schema")
            if code[0] in "45" and sch != ERR and ERR not in (sch or {}).get("oneOf", []):
                errors.append(f"{where}: response {code} is not the Error schema")
        oid = op.get("operationId")
        if not oid or oid in ids:
            errors.append(f"{where}: operationId missing or repeated")
        ids.add(oid)
        if not op.get("summary"):
            errors.append(f"{where}: no summary")
        role = op.get("x-vigil-role")
        if role not in ("public", "lookup", "admin"):
            errors.append(f"{where}: x-vigil-role {role!r}")
        elif (role == "public") != (op.get("security") == []):
            errors.append(f"{where}: security: [] must go with public, and only with it")
        elif role != "public" and not {"401", "403"} <= set(res):
            errors.append(f"{where}: needs credentials but has no 401 / 403")
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
        return path.startswith(rp[:-1]) and len(path) > len(rp) - 1
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
pass "OpenAPI document matches the route table: $(cat "$T/check.out")"

python3 - "$T/openapi.json" "$T" <<'PY'
import json, sys
src, d = sys.argv[1], sys.argv[2]
def copy():
    return json.load(open(src))
x = copy(); x["paths"].pop("/api/v1/stats")
json.dump(x, open(d + "/less.json", "w"))
x = copy(); x["paths"]["/api/v1/nonsense"] = {"get": {"operationId": "x", "summary": "x",
    "x-vigil-role": "lookup", "responses": {"200": {"description": "x"}}}}
json.dump(x, open(d + "/more.json", "w"))
x = copy(); x["paths"]["/api/v1/feeds/{name}/import"]["post"]["x-vigil-role"] = "lookup"
json.dump(x, open(d + "/role.json", "w"))
PY
for c in less:"route GET /api/v1/stats is not documented" \
	more:"documented GET /api/v1/nonsense is no route" \
	role:"POST /api/v1/feeds/{name}/import: documented role lookup, the route needs admin"; do
	python3 "$T/check.py" "$T/${c%%:*}.json" "$T/routes" >/dev/null 2>"$T/${c%%:*}.err" &&
		fail "the check passed a document with a fault (${c%%:*})"
	expect_contains "$(cat "$T/${c%%:*}.err")" "${c#*:}"
done
pass "the check fails for a missing route, an extra operation and a wrong role"

# Every documented operation, called: its status and Content-Type are
# documented. One example each, in an order that leaves what the next needs.
cat >"$T/walk.py" <<'PY'
import json, ssl, sys, urllib.request, urllib.error

doc = json.load(open(sys.argv[1]))
base, key, ca = sys.argv[2], sys.argv[3], sys.argv[4]
ctx = ssl.create_default_context(cafile=ca)
csv = b"indicator,verdict\n203.0.113.5,malicious\nevil.example,suspicious\n"
EX = [  # operationId, method, path, body
    ("health", "GET", "/api/v1/health", None),
    ("version", "GET", "/api/v1/version", None),
    ("openapi", "GET", "/api/v1/openapi.json", None),
    ("feed_add", "POST", "/api/v1/feeds", b'{"name": "walk", "priority": 10}'),
    ("feed_import", "POST", "/api/v1/feeds/walk/import?format=csv", csv),
    ("feeds", "GET", "/api/v1/feeds", None),
    ("feed", "GET", "/api/v1/feeds/walk", None),
    ("lookup", "GET", "/api/v1/lookup?ip=203.0.113.5", None),
    ("lookup_batch", "POST", "/api/v1/lookup", b'["evil.example", {"type": "md5", "value": "x"}]'),
    ("feed_export", "GET", "/api/v1/feeds/walk/export?format=stix", None),
    ("stats", "GET", "/api/v1/stats", None),
    ("metrics", "GET", "/metrics", None),
    ("list_add", "POST", "/api/v1/lists/block", b'{"indicator": "198.51.100.1"}'),
    ("list", "GET", "/api/v1/lists/block", None),
    ("list_delete", "DELETE", "/api/v1/lists/block?indicator=198.51.100.1", None),
    ("feed_delete", "DELETE", "/api/v1/feeds/walk", None),
]
ops = {op["operationId"]: op for item in doc["paths"].values() for op in item.values()}
errors = []
missing = set(ops) - {e[0] for e in EX}
if missing:
    errors.append(f"no example request for {sorted(missing)}")
for oid, m, path, body in EX:
    op = ops.get(oid)
    if op is None:
        errors.append(f"{oid}: not documented")
        continue
    req = urllib.request.Request(base + path, data=body, method=m,
                                 headers={"X-API-Key": key})
    try:
        r = urllib.request.urlopen(req, context=ctx, timeout=30)
        st, ct, data = r.status, r.headers.get("Content-Type", ""), r.read()
    except urllib.error.HTTPError as e:
        st, ct, data = e.code, e.headers.get("Content-Type", ""), e.read()
    res = op["responses"].get(str(st))
    if res is None:
        errors.append(f"{oid}: {m} {path}: status {st} not documented ({data[:200]!r})")
        continue
    if st >= 300:
        errors.append(f"{oid}: {m} {path}: {st} {data[:200]!r}")
    docs = res.get("content", {})
    if docs and ct.split(";")[0].strip() not in [c.split(";")[0] for c in docs]:
        errors.append(f"{oid}: Content-Type {ct} not among {list(docs)}")
    print(f"{oid}: {st} {ct}")
for e in errors:
    print("walk:", e, file=sys.stderr)
sys.exit(1 if errors else 0)
PY
python3 "$T/walk.py" "$T/openapi.json" "$U" "$ADMIN_KEY" "$PKI/ca.crt" >"$T/walk.out" 2>&1 ||
	fail "walk through the API: $(cat "$T/walk.out")"
# a sub-path the document does not name is no route
code=$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$PKI/ca.crt" \
	-H "X-API-Key: $ADMIN_KEY" "$U/api/v1/feeds/walk/nonsense")
[ "$code" = 404 ] || fail "GET /api/v1/feeds/walk/nonsense: $code"
pass "every documented operation called: statuses and Content-Types documented"

# A graceful stop exits 0 (in the sanitizer build: no leak, no error).
kill -TERM "${PIDS[-1]}"
wait "${PIDS[-1]}" || fail "vigil-inteld did not stop cleanly: $(tail -5 "$T/inteld.log")"
