#!/usr/bin/env python3
# openapi-inteld.py: writes docs/openapi-inteld.json, the OpenAPI 3 document
# vigil-inteld serves at GET /api/v1/openapi.json (embedded at build time
# by cmake/embed.cmake, like the center's docs/openapi.json).
#
#   python3 scripts/openapi-inteld.py > docs/openapi-inteld.json
#
# One op(...) per operation of src/inteld/api.c's route table (the
# handlers behind a prefix route each have theirs: feeds/{name}, its
# import and export). The e2e test `inteld-openapi` checks the committed
# document against `vigil-inteld --list-routes`, calls every documented
# operation on a live daemon, and checks this script still writes exactly
# docs/openapi-inteld.json. To add a route: add an op(...) below, run the
# command above, rebuild, and run `ctest -R inteld-openapi`.
import json

S = {"type": "string"}
I = {"type": "integer"}
B = {"type": "boolean"}
NULL_I = {"type": "integer", "nullable": True}
NULL_S = {"type": "string", "nullable": True}
NAME = {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"}
VERDICT = {"type": "string", "enum": ["malicious", "suspicious", "benign"]}
KIND = {"type": "string", "enum": ["md5", "sha1", "sha256", "ip", "domain", "url"]}


def ref(name):
    return {"$ref": "#/components/schemas/" + name}


def obj(props, required=()):
    o = {"type": "object", "properties": props}
    if required:
        o["required"] = list(required)
    return o


SCHEMAS = {
    "Error": obj({"error": obj({"code": S, "message": S}, ["code", "message"])}, ["error"]),
    "Source": obj({
        "source": S, "matched": S, "verdict": VERDICT, "score": I, "tags": {"type": "array", "items": S},
        "priority": I, "first_seen": NULL_I, "last_seen": NULL_I, "expires": NULL_I,
        "reference": S, "added": I}),
    "Answer": obj({
        "indicator": S, "type": KIND,
        "verdict": {"type": "string", "enum": ["malicious", "suspicious", "benign", "unknown"]},
        "score": NULL_I, "decided_by": NULL_S,
        "sources": {"type": "array", "items": ref("Source")}},
        ["indicator", "type", "verdict", "sources"]),
    "Feed": obj({
        "name": NAME, "priority": {"type": "integer", "minimum": 0, "maximum": 1000},
        "description": S, "indicators": I, "added": I, "format": S, "imported_at": I,
        "last_rejected": I, "last_skipped": I,
        "misp_events_known": {"type": "integer", "description": "events of the last MISP "
                              "import, kept for the next delta"}},
        ["name", "priority"]),
    "Note": obj({"where": S, "value": S, "why": S}, ["where", "why"]),
    "ImportReport": obj({
        "feed": S, "format": S, "mode": {"type": "string", "enum": ["full", "delta"]},
        "result": {"type": "string", "enum": ["imported", "failed"]}, "error": S,
        "entries": I, "indicators": I, "replaced": I,
        "added": I, "changed": I, "unchanged": I, "removed": I, "kept": I, "revoked": I,
        "events": obj({"added": I, "changed": I, "unchanged": I, "removed": I}),
        "rejected_total": I, "skipped_total": I,
        "rejected": {"type": "array", "items": ref("Note")},
        "skipped": {"type": "array", "items": ref("Note")}},
        ["feed", "format", "result", "entries", "indicators"]),
    "ListEntry": obj({
        "indicator": S, "type": KIND, "source": S, "verdict": VERDICT, "score": I,
        "expires": NULL_I, "reference": S, "added": I}),
}

ERRDESC = {"400": "bad request", "401": "no or a wrong key or certificate",
           "403": "the role does not allow it", "404": "not found",
           "413": "too many indicators", "422": "the import failed; the old set is kept",
           "500": "internal error", "503": "the store failed",
           "507": "the store is full or memory ran out; the old set is kept"}


def op(method, path, oid, summary, role, ok, errors=(), params=(), body=None,
       okcode="200", okdesc="OK", extra_ok=None, ctype="application/json",
       content=None):
    o = {"operationId": oid, "summary": summary, "x-vigil-role": role}
    if params:
        o["parameters"] = list(params)
    if body is not None:
        o["requestBody"] = body
    res = {okcode: {"description": okdesc}}
    if content is not None:
        res[okcode]["content"] = content
    elif ok is not None:
        res[okcode]["content"] = {ctype: {"schema": ok}}
    if extra_ok:
        res.update(extra_ok)
    errs = list(errors)
    if role == "public":
        o["security"] = []
    else:
        errs += ["401", "403"]
    for e in sorted(set(errs)):
        res[e] = {"description": ERRDESC[e],
                  "content": {"application/json": {"schema": ref("Error")}}}
    o["responses"] = res
    PATHS.setdefault(path, {})[method.lower()] = o


def q(name, desc, schema=S, required=False):
    return {"name": name, "in": "query", "required": required, "description": desc,
            "schema": schema}


def p(name, desc, schema=NAME):
    return {"name": name, "in": "path", "required": True, "description": desc, "schema": schema}


def jbody(schema, desc=None):
    b = {"required": True, "content": {"application/json": {"schema": schema}}}
    if desc:
        b["description"] = desc
    return b


PATHS = {}
op("GET", "/api/v1/health", "health", "Liveness", "public", obj({"status": S}))
op("GET", "/api/v1/version", "version", "Version and start time", "lookup",
   obj({"version": S, "started": I}))
op("GET", "/api/v1/openapi.json", "openapi", "This document", "lookup", {"type": "object"})
op("GET", "/api/v1/lookup", "lookup", "Look one indicator up", "lookup", ref("Answer"),
   ["400", "503"],
   [q(k, f"the indicator, as {k}") for k in ("sha256", "sha1", "md5", "ip", "domain", "url")] +
   [q("indicator", "the indicator, its kind detected")])
op("POST", "/api/v1/lookup", "lookup_batch", "Look up to max_batch indicators up", "lookup",
   obj({"results": {"type": "array", "items": {"oneOf": [
       ref("Answer"), obj({"input": {}, "error": S}, ["input", "error"])]}}}, ["results"]),
   ["400", "413", "503"],
   body=jbody({"type": "array", "items": {"oneOf": [S, obj({"type": KIND, "value": S}, ["value"])]}},
              "indicators: strings (kind detected) or {type, value}; answers in the same order"))
op("GET", "/api/v1/stats", "stats", "Entries in all and by source, the store's size", "lookup",
   obj({"indicators": I, "by_source": {"type": "object", "additionalProperties": I},
        "map_size": I, "used_bytes": I}))
op("GET", "/metrics", "metrics", "Prometheus metrics", "lookup", {"type": "string"},
   ctype="text/plain")
op("GET", "/api/v1/feeds", "feeds", "The feeds", "lookup",
   obj({"feeds": {"type": "array", "items": ref("Feed")}}, ["feeds"]), ["503"])
op("POST", "/api/v1/feeds", "feed_add", "Add a feed or change one", "admin", ref("Feed"),
   ["400", "500"],
   body=jbody(obj({"name": NAME, "priority": {"type": "integer", "minimum": 0, "maximum": 1000},
                   "description": S}, ["name"])),
   extra_ok={"201": {"description": "added",
                     "content": {"application/json": {"schema": ref("Feed")}}}},
   okdesc="changed")
FEED = p("name", "the feed")
op("GET", "/api/v1/feeds/{name}", "feed", "One feed", "lookup", ref("Feed"), ["404"], [FEED])
op("DELETE", "/api/v1/feeds/{name}", "feed_delete", "Remove a feed and its indicators", "admin",
   obj({"removed": S}), ["404", "500"], [FEED])
op("POST", "/api/v1/feeds/{name}/import", "feed_import",
   "Import a feed file (atomic: the old set or the new one)", "admin", ref("ImportReport"),
   ["400", "404", "422", "500", "507"],
   [FEED,
    q("format", "the file's format",
      {"type": "string", "enum": ["csv", "list", "misp", "stix"]}, True),
    q("mode", "full replaces the feed; delta (misp: the default, by the manifest's event "
      "timestamps; stix: revoked objects remove) keeps what the file does not name",
      {"type": "string", "enum": ["full", "delta"]}),
    q("verdict", "for entries that carry none", VERDICT),
    q("score", "for entries that carry none", {"type": "integer", "minimum": 0, "maximum": 100}),
    q("ttl", "entries expire this long after the import (90, 30m, 12h, 7d)"),
    q("tags", "added to every entry"),
    q("strict", "1: any rejected entry fails the import")],
   body={"required": True, "description": "the feed file; for misp a JSON object of file name "
         "to content (manifest.json and <uuid>.json), or one event",
         "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
   extra_ok=None)
PATHS["/api/v1/feeds/{name}/import"]["post"]["responses"]["422"]["content"] = {
    "application/json": {"schema": {"oneOf": [ref("Error"), ref("ImportReport")]}}}
PATHS["/api/v1/feeds/{name}/import"]["post"]["responses"]["507"]["content"] = {
    "application/json": {"schema": {"oneOf": [ref("Error"), ref("ImportReport")]}}}
op("GET", "/api/v1/feeds/{name}/export", "feed_export",
   "Export a feed (streamed): CSV with the importer's columns, or a STIX 2.1 bundle", "lookup",
   None, ["400", "404", "500"],
   [FEED, q("format", "csv (default) or stix", {"type": "string", "enum": ["csv", "stix"]})],
   content={"text/csv": {"schema": {"type": "string"}},
            "application/stix+json;version=2.1": {"schema": {"type": "object"}}})
LIST = p("list", "the site's list", {"type": "string", "enum": ["allow", "block"]})
op("GET", "/api/v1/lists/{list}", "list", "The entries of the allow or block list", "lookup",
   obj({"entries": {"type": "array", "items": ref("ListEntry")}}), ["400", "404"],
   [LIST, q("limit", "at most this many (default 1000)",
            {"type": "integer", "minimum": 1, "maximum": 1000000})])
op("POST", "/api/v1/lists/{list}", "list_add", "Add entries to the allow or block list", "admin",
   obj({"list": S, "added": I}), ["400", "404", "500"], [LIST],
   body=jbody(obj({"indicator": S, "indicators": {"type": "array", "items": S},
                   "comment": S, "expires": {"type": "integer", "description": "unix seconds"}})))
op("DELETE", "/api/v1/lists/{list}", "list_delete", "Remove one entry of the allow or block list",
   "admin", obj({"list": S, "removed": I}), ["400", "404", "500"],
   [LIST, q("indicator", "the entry", required=True)])

DOC = {
    "openapi": "3.0.3",
    "info": {"title": "vigil-inteld API", "version": "1",
             "description": "The local threat-intelligence reputation service "
                            "(docs/inteld.md). Roles: lookup and admin (x-vigil-role)."},
    "servers": [{"url": "https://localhost:10443"}],
    "security": [{"bearer": []}, {"apiKey": []}],
    "components": {
        "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key",
                       "description": "or, instead of a key, a client certificate of "
                                      "the deployment CA (its role is cert_role)"}},
        "schemas": SCHEMAS},
    "paths": PATHS,
}
print(json.dumps(DOC, indent=1, sort_keys=True))
