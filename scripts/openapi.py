#!/usr/bin/env python3
# openapi.py: writes docs/openapi.json, the OpenAPI 3 document vigild serves
# at GET /api/v1/openapi.json (embedded at build time by cmake/embed.cmake).
#
#   python3 scripts/openapi.py > docs/openapi.json
#
# One op(...) call per admin route operation (listop(...) for a paged list,
# from its query_spec in src/center/*.c), written from the handler
# (fields, status codes, role). The e2e test `openapi` checks the committed
# document against `vigild --list-routes` (every route documented with its
# role, every documented operation a route) and that this script still
# writes exactly docs/openapi.json. To add a route: add an op(...) below
# next to its neighbours, run the command above, rebuild, and run
# `ctest -R openapi`.
import json
import sys

S = {"type": "string"}
I = {"type": "integer"}
B = {"type": "boolean"}
OBJ = {"type": "object"}
NULL_I = {"type": "integer", "nullable": True}
NULL_S = {"type": "string", "nullable": True}
DURATION = {"oneOf": [{"type": "integer", "minimum": 1}, {"type": "string", "example": "7d"}],
            "description": "seconds, or a duration such as 30m, 24h, 7d"}
LABELS = {"type": "object", "additionalProperties": {"type": "string"}}
ROLE = {"type": "string", "enum": ["admin", "operator", "analyst", "readonly"]}


def ref(name):
    return {"$ref": "#/components/schemas/" + name}


def obj(props, required=(), closed=False, **extra):
    o = {"type": "object", "properties": props}
    if required:
        o["required"] = list(required)
    if closed:
        o["additionalProperties"] = False
    o.update(extra)
    return o


def listof(key, name):
    return obj({key: {"type": "array", "items": ref(name)}}, [key])


FINDING_STATUS = {"type": "string",
                  "enum": ["new", "acknowledged", "false_positive", "resolved"]}

FORWARD_SPEC = {
    "name": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"},
    "transport": {"type": "string", "enum": ["udp", "tcp", "tls", "collector"],
                  "default": "udp",
                  "description": "collector: an analysis collector (docs/collector.md)"},
    "host": S,
    "port": {"type": "integer", "minimum": 1, "maximum": 65535,
             "description": "default 514, 6514 for tls, 7443 for collector"},
    "format": {"type": "string", "enum": ["rfc5424", "rfc3164", "cef", "leef", "json"],
               "default": "rfc5424"},
    "framing": {"type": "string", "enum": ["octet", "newline"], "default": "octet"},
    "facility": {"type": "integer", "minimum": 0, "maximum": 23, "default": 16},
    "types": {"type": "array", "maxItems": 16, "items": S,
              "description": "event types to forward (default all)"},
    "min_level": {"type": "string", "enum": ["info", "notice", "warning", "alert"],
                  "default": "info"},
    "ca_file": dict(NULL_S, description="required for tls and collector; a path on the "
                    "center host"),
    "cert_file": dict(NULL_S, description="collector: required, a certificate of role "
                      "center"),
    "key_file": NULL_S,
}

BASELINE_ACTION = {"type": "string", "enum": ["suppress", "lower"]}

TASK_SPEC_PROPS = {
    "kind": {"type": "string",
             "enum": ["scan", "collect", "inventory", "kill-process", "quarantine", "restore"]},
    "params": dict(OBJ, description="checked against the kind's table (GET /api/v1/task-kinds)"),
    "target": ref("Target"),
    "timeout": dict(DURATION, description="1 s to 7 days, default 1 h, from dispatch"),
    "expires": dict(DURATION, description="1 s to 30 days, default 1 d, from creation"),
    "template": dict(S, description="a template whose spec is the base"),
}

SCHEMAS = {
    "Error": obj({"error": obj({
        "code": dict(S, example="bad_request"),
        "message": dict(S, description="names the offending field"),
        "field": dict(S, description="the body member or query parameter at fault, "
                      "when one is to blame, e.g. limit, cursor, sort, params.paths")},
        ["code", "message"])}, ["error"]),
    "Agent": obj({
        "id": S, "status": {"type": "string", "enum": ["active", "revoked"]},
        "state": {"type": "string", "enum": ["online", "offline", "revoked"]},
        "hostname": S, "fqdn": S, "os": S, "kernel": S, "arch": S,
        "ips": {"type": "array", "items": S}, "macs": {"type": "array", "items": S},
        "machine_id": S, "agent_version": S, "labels": LABELS,
        "enrolled_at": I, "last_seen": NULL_I, "cert_serial": NULL_S,
        "cert_not_after": NULL_I, "cloned_from": NULL_S, "clone_detected_at": NULL_I,
        "updates": {"nullable": True, "type": "object",
                    "description": "the signed updates the agent runs, as it verified "
                    "them from the root it pinned at enrollment (docs/updates.md): "
                    "root, timestamp, snapshot, targets (versions), checked_at, "
                    "rules [{name, version, sha256}], error (why the last check "
                    "was refused); null when it pinned none"},
        "update_root": dict(B, description="whether the agent pinned an update root "
                            "(it reports its updates); false: it takes no updates "
                            "until one is pinned (vigil-agent pin-root, "
                            "docs/updates.md)")}),
    "Enrollment": obj({
        "id": S, "status": {"type": "string", "enum": ["pending", "approved", "rejected"]},
        "agent_id": S, "facts": OBJ, "labels": LABELS, "token_id": NULL_S,
        "source_addr": NULL_S, "cloned_from": NULL_S, "created_at": I}),
    "Token": obj({
        "id": S, "uses": I, "used": I, "expires_at": NULL_I, "labels": LABELS,
        "created_at": I}),
    "Notice": obj({"id": I, "time": I, "kind": dict(S, example="clone_detected"),
                   "agent_id": NULL_S, "message": S}),
    "User": obj({
        "name": S, "role": ROLE, "source": {"type": "string", "enum": ["local", "ldap"]},
        "disabled": B, "totp": B, "locked_until": NULL_I, "created_at": I,
        "last_login": NULL_I}),
    "ApiKey": obj({
        "id": S, "role": ROLE, "label": NULL_S,
        "owner": dict(NULL_S, description="user:NAME or key:ID that made it"), "created_at": I,
        "expires_at": NULL_I, "revoked_at": NULL_I, "last_used": NULL_I}),
    "Target": obj({
        "agent": S, "agents": {"type": "array", "items": S}, "labels": LABELS,
        "all": {"type": "boolean", "enum": [True]}},
        description="exactly one of agent, agents, labels, all",
        minProperties=1, maxProperties=1, additionalProperties=False),
    "TaskSpec": obj(TASK_SPEC_PROPS, closed=True),
    "Task": obj({
        "id": S, "kind": S, "params": OBJ, "target": ref("Target"), "created_at": I,
        "created_by": dict(NULL_S, description="the client's address, or schedule"),
        "timeout": I, "expires_at": I, "cancelled_at": NULL_I, "schedule_id": NULL_S,
        "runs": dict(OBJ, additionalProperties=I, description="runs by state")}),
    "TaskDetail": obj({
        "id": S, "kind": S, "params": OBJ, "target": ref("Target"), "created_at": I,
        "created_by": NULL_S, "timeout": I, "expires_at": I, "cancelled_at": NULL_I,
        "schedule_id": NULL_S,
        "counts": dict(OBJ, additionalProperties=I, description="runs by state"),
        "runs": {"type": "array", "items": ref("TaskRun")}}),
    "TaskRun": obj({
        "agent_id": S, "hostname": NULL_S,
        "state": {"type": "string", "enum": ["queued", "dispatched", "running", "done",
                                             "failed", "cancelled", "expired"]},
        "progress": {"nullable": True}, "result": {"nullable": True}, "reason": NULL_S,
        "updated_at": I, "dispatched_at": NULL_I, "started_at": NULL_I,
        "finished_at": NULL_I}),
    "TaskKind": obj({"name": S, "help": S, "params": {"type": "array", "items": obj({
        "name": S, "type": {"type": "string",
                            "enum": ["string", "integer", "boolean", "list of strings", "list of integers"]},
        "required": B})}}),
    "Template": obj({"name": S, "spec": ref("TemplateSpec")}),
    "TemplateSpec": obj({k: TASK_SPEC_PROPS[k] for k in ("kind", "params", "timeout", "expires")},
                        ["kind"]),
    "Schedule": obj({"id": S, "name": S, "cron": S, "task": ref("TaskSpec"),
                     "enabled": B, "last_run": NULL_I}),
    "RuleSet": obj({"id": dict(S, description="SHA-256 of the content"), "name": S,
                    "kind": {"type": "string", "enum": ["yara", "ioc"]}, "size": I,
                    "created_at": I,
                    "source": {"type": "string", "enum": ["admin", "update"],
                               "description": "update: arrived by signed update"},
                    "version": dict(NULL_S, description="the update's version"),
                    "pinned": dict(NULL_S, description="the version an operator "
                                   "pinned it at")}),
    "RuleVersion": obj({"name": S, "version": S,
                        "id": dict(S, description="SHA-256 of the content"),
                        "kind": {"type": "string", "enum": ["yara", "ioc"]}, "size": I,
                        "received_at": I,
                        "target": dict(S, description="the target name in the update "
                                       "repository"),
                        "current": B, "pinned": B}),
    "Rollout": obj({
        "id": S, "target": S, "version": S, "sha256": S, "platform": S,
        "labels": LABELS, "percent": I, "max_failure_rate": I, "probation": I,
        "state": {"type": "string", "enum": ["active", "halted", "stopped"]},
        "reason": dict(NULL_S, description="why it halted"),
        "created_at": I, "created_by": NULL_S,
        "chosen": dict(I, description="agents it chose (labels, percentage, "
                       "platform)"),
        "upgraded": dict(I, description="chosen agents that report running "
                         "the binary"),
        "failed": dict(I, description="chosen agents that rolled it back"),
        "refused": dict(I, description="chosen agents that will not replace their "
                        "binary: the vigil-agent package installed it (upgrade the "
                        "package; docs/updates.md)"),
        "pending": I}),
    "UpdateStatus": obj({
        "enabled": B, "mode": {"type": "string", "enum": ["upstream", "import"]},
        "upstream": NULL_S, "dir": S, "anchor_version": I,
        "served": {"nullable": True, "type": "object",
                   "description": "the verified state served: roles {root, targets, "
                   "snapshot, timestamp: {version, expires}}, verified_at, targets "
                   "[{name, kind, version, platform, length, sha256}]"},
        "attempts": I, "last_attempt": I, "last_ok": I,
        "last_error": dict(NULL_S, description="why the last check was refused"),
        "last_check": dict(NULL_S, description="the TUF check that refused it "
                           "(expired, rollback, hash, threshold, ...)"),
        "listener_port": dict(I, description="the update listener's port, -1 when "
                              "none"),
        "agents_without_root": dict(NULL_I, description="active agents that pinned "
                                    "no update root and so take no updates "
                                    "(vigil-agent pin-root)"),
        "intel": {"type": "object",
                  "description": "intelligence feeds by update imported into "
                  "vigil-inteld: enabled (an [updates] intel_* credential is set), "
                  "imported [{name, sha256, feed, format, at, report}] (since "
                  "the center started), error (why the last one was not "
                  "imported; tried again at the next check)"}}, ["enabled"]),
    "Event": obj({"agent_id": dict(S, description="center for the audit log's entries"),
                  "seq": I, "time": dict(I, description="the agent's clock"),
                  "received_at": I,
                  "type": dict(S, description="audit: an entry of the audit log "
                               "(agent center)"),
                  "level": NULL_S, "task_id": NULL_S, "data": OBJ}),
    "Finding": obj({"agent_id": S, "seq": I, "time": dict(I, description="the agent's clock"),
                    "received_at": I, "level": NULL_S, "task_id": NULL_S, "data": OBJ,
                    "status": FINDING_STATUS, "comment": NULL_S,
                    "triaged_by": dict(NULL_S, description="user:NAME or key:ID"),
                    "triaged_at": NULL_I,
                    "intel": {"nullable": True, "type": "object",
                              "description": "vigil-inteld's verdict on the finding's hashes, "
                              "addresses and domains; null until it was asked",
                              "properties": {
                                  "verdict": {"type": "string", "enum": [
                                      "malicious", "suspicious", "benign", "unknown"]},
                                  "score": NULL_I,
                                  "sources": {"type": "array", "items": OBJ},
                                  "level_before": NULL_S, "checked_at": I}}}),
    "AuditEntry": obj({
        "id": I, "time": I, "who": dict(S, description="user:NAME or key:ID"), "addr": S,
        "action": dict(S, example="task.create"), "target": NULL_S,
        "status": dict(I, description="the HTTP status of the answer"),
        "before": {"nullable": True, "description": "the state before (redacted)"},
        "after": {"nullable": True, "description": "the answer (redacted)"},
        "request": {"nullable": True, "description": "the request body (redacted)"},
        "error": NULL_S, "prev_hash": S,
        "hash": dict(S, description="SHA-256 over the entry and prev_hash")}),
    "Settings": obj({"require_approval": B,
                     "sample_archive_password": dict(S, minLength=1, maxLength=128)}),
    "Sample": obj({"sha256": S, "size": I, "agent_id": NULL_S, "task_id": NULL_S,
                   "path": NULL_S, "received_at": I}),
    "Case": obj({"id": dict(S, description="16 hex digits"), "rule": NULL_S, "path": NULL_S,
                 "sha256": NULL_S, "first_seen": I, "last_seen": I,
                 "hits": dict(I, description="occurrences counted (not suppressed)"),
                 "suppressed": dict(I, description="occurrences a baseline suppressed"),
                 "hosts": I, "centers": I,
                 "baseline": dict(obj({"action": BASELINE_ACTION, "reason": NULL_S,
                                       "by": NULL_S, "at": I}), nullable=True),
                 "host_list": {"type": "array", "description": "GET of one case only",
                               "items": obj({"center": S, "agent_id": S,
                                             "hostname": NULL_S, "first_seen": I,
                                             "last_seen": I})}}),
    "CollectorEvent": obj({"center": S, "agent_id": S, "seq": I, "time": I,
                           "received_at": I, "type": S, "level": NULL_S,
                           "orig_level": NULL_S, "task_id": NULL_S, "hostname": NULL_S,
                           "data": OBJ, "case_id": NULL_S, "suppressed": B}),
    "ForwardTarget": obj(dict(FORWARD_SPEC, **{
        "state": {"type": "string", "enum": ["idle", "connecting", "up", "backoff"]},
        "source": {"type": "string", "enum": ["api", "config"]},
        "cursor": dict(I, description="the last event (row id) written"),
        "lag_events": dict(I, description="events stored but not yet written"),
        "sent": I, "dropped": I, "errors": I, "last_error": NULL_S})),
}

ERROR_TEXT = {
    "400": "bad request: malformed JSON, a missing, unknown or invalid field or "
           "query parameter, or a body on a route that takes none (field names it)",
    "401": "no credentials, or bad ones",
    "403": "the caller's role is too low, or a session request without its "
           "X-CSRF-Token",
    "404": "no such resource",
    "409": "conflict with the current state",
    "413": "request body too large",
    "429": "rate limited (Retry-After says when to retry)",
    "500": "the center failed (store unavailable; or, audit_failed, the "
           "change's audit entry could not be written: nothing was changed)",
    "502": "the forwarding target cannot be reached",
    "503": "store busy or identity source unavailable; retry",
    "507": "insufficient_storage: the center's disk is full or below [center] "
           "min_free_space; nothing was changed",
}

doc = {
    "openapi": "3.0.3",
    "info": {
        "title": "Vigil admin API",
        "version": "1",
        "description": "REST API of the Vigil management center (vigild), served on "
        "the admin listener (default 127.0.0.1:8443, HTTPS). See docs/admin-api.md for "
        "the prose reference. Every operation names the least role it needs in "
        "x-vigil-role (public: no credentials). Errors are "
        "{\"error\": {\"code\", \"message\", \"field\"?}} with a 4xx or 5xx status.",
    },
    "servers": [{"url": "https://localhost:8443"}],
    "tags": [{"name": n} for n in ("auth", "users", "keys", "center", "agents", "tokens",
                                   "tasks", "rules", "events", "forward", "audit",
                                   "collector", "master")],
    "components": {
        "securitySchemes": {
            "apiKey": {"type": "http", "scheme": "bearer",
                       "description": "API key: Authorization: Bearer vgk_..."},
            "session": {"type": "apiKey", "in": "cookie", "name": "vigil_session",
                        "description": "Session cookie set by POST /api/v1/login"},
            "csrf": {"type": "apiKey", "in": "header", "name": "X-CSRF-Token",
                     "description": "The csrf_token of POST /api/v1/login; needed with "
                     "the session cookie on every request other than GET/HEAD"},
        },
        "schemas": SCHEMAS,
    },
    "security": [{"apiKey": []}, {"session": [], "csrf": []}],
    "paths": {},
}


def op(opid, method, path, tag, summary, role, ok=None, status="200", body=None,
       query=(), errors=(), desc=None, ctype="application/json", nobody=True):
    """One operation. ok: success schema; body: request schema; query:
    (name, schema, description); errors: status codes beyond the ones
    every operation of its kind has."""
    o = {"operationId": opid, "summary": summary, "tags": [tag], "x-vigil-role": role}
    if desc:
        o["description"] = desc
    params = [{"name": seg[1:-1], "in": "path", "required": True, "schema": S}
              for seg in path.split("/") if seg.startswith("{")]
    params += [{"name": n, "in": "query", "required": False, "schema": s, "description": d}
               for n, s, d in query]
    if params:
        o["parameters"] = params
    if body is not None:
        o["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    res = {status: {"description": "success"}}
    if ok is not None:
        res[status]["content"] = {ctype: {"schema": ok}}
    codes = set(errors)
    if role != "public":
        codes |= {"401", "403"}
    if body is not None or query:
        codes |= {"400"}
    if method != "GET":
        # a change commits with its audit entry or not at all
        # (docs/audit.md): 500 or 503 audit_failed, 507 disk full
        codes |= {"500", "503", "507"}
    if body is not None or (method != "GET" and nobody):
        # a route that takes no body refuses one (400, or 413 when large)
        codes |= {"400", "413"}
    if "{" in path:
        codes |= {"404"}
    for c in sorted(codes):
        res[c] = {"description": ERROR_TEXT[c],
                  "content": {"application/json": {"schema": ref("Error")}}}
    o["responses"] = res
    if role == "public":
        o["security"] = []
    elif method == "GET":
        o["security"] = [{"apiKey": []}, {"session": []}]
    doc["paths"].setdefault(path, {})[method.lower()] = o


TEXT = dict(S, maxLength=256)
TIME = {"type": "integer"}
LABELQ = dict(S, pattern="^[A-Za-z0-9._-]+=[A-Za-z0-9._-]+$")


def listop(opid, path, tag, summary, role, item, filters=(), ranges=(), sorts=(),
           default=None, search=None, max_limit=1000, desc=None):
    """A paged list (src/center/query.c): limit, cursor, sort, the filters
    (name, schema, description), the ranges <name>_from/_to, q when the
    spec has a search; {"items": [...], "next_cursor": ...}."""
    query = [("limit", {"type": "integer", "minimum": 1, "maximum": max_limit,
                        "default": 100}, "items per page"),
             ("cursor", S, "the next_cursor of the previous page, as given (opaque); "
              "valid only with the sort it was made for"),
             ("sort", {"type": "string", "enum": [p + f for f in sorts for p in ("", "-")],
                       "default": default or sorts[0]},
              "sort field; a leading - sorts descending")]
    query += list(filters)
    for r in ranges:
        query += [(r + "_from", TIME, f"{r} at or after (Unix seconds)"),
                  (r + "_to", TIME, f"{r} before (Unix seconds)")]
    if search:
        query.append(("q", TEXT, "substring of " + search))
    ok = obj({"items": {"type": "array", "items": ref(item)},
              "next_cursor": dict(NULL_S, description="the cursor of the next page; "
                                  "null on the last page")},
             ["items", "next_cursor"])
    op(opid, "GET", path, tag, summary, role, ok, query=query, errors=["500"], desc=desc)


# --- authentication (src/center/auth.c) -----------------------------------
op("login", "POST", "/api/v1/login", "auth", "Log in: sets the session cookie", "public",
   obj({"user": S, "role": ROLE, "csrf_token": S, "idle_timeout": I, "expires_at": I}),
   body=obj({"username": S, "password": dict(S, maxLength=1024), "totp": S},
            ["username", "password"], closed=True),
   errors=["401", "429", "500", "503"],
   desc="Sets the cookie vigil_session (Secure; HttpOnly; SameSite=Strict). 401 "
   "login_failed alike for an unknown user, a wrong password, a disabled or locked "
   "account; 401 totp_required when two-factor is on and no code was sent; 503 "
   "identity_source when the LDAP directory cannot be used.")
op("logout", "POST", "/api/v1/logout", "auth", "End the session and clear the cookie",
   "readonly", obj({"logged_out": B}))
op("getSession", "GET", "/api/v1/session", "auth", "Who am I", "readonly",
   obj({"who": dict(S, description="user:NAME or key:ID"), "role": ROLE, "user": S,
        "totp": B}, ["who", "role"]))
op("getStream", "GET", "/api/v1/stream", "auth",
   "Live updates: server-sent events while the connection stays open", "readonly",
   dict(S, description="text/event-stream: 'event: KIND' and 'data: JSON' lines"),
   ctype="text/event-stream", errors=["429", "503"],
   desc="Stays open, sending one event per change (coalesced: at most one per "
   "kind and object every 250 ms): task {\"id\"} (created, cancelled, a run's "
   "state or progress), agent {\"id\"} (enrolled, approved, revoked, labels, "
   "back online), finding {\"agent_id\", \"seq\"} (stored), enrollment {\"id\"} "
   "(a pending request arrived or was decided); {} when too many objects of one "
   "kind changed at once (reload them all). A comment line (': keepalive') "
   "every [admin] stream_keepalive (20 s), when the credentials are checked "
   "again: the stream ends with its session or key, or when its role changes. "
   "429 too_many_streams beyond [admin] max_streams in all or 8 per user or "
   "key (Retry-After); 503 while the center stops. See docs/admin-api.md, "
   "\"Live updates\".")
op("changePassword", "POST", "/api/v1/session/password", "auth",
   "Change one's own password (local users)", "readonly", obj({"user": S}),
   body=obj({"old": S, "new": dict(S, minLength=10, maxLength=256)}, ["old", "new"],
            closed=True),
   errors=["500"],
   desc="400 not_a_user for an API key, not_local for a directory user; 403 "
   "bad_password when old is not the current password.")
op("startTotp", "POST", "/api/v1/session/totp", "auth",
   "Start two-factor enrollment (secret shown once)", "readonly",
   obj({"secret": dict(S, description="base32"), "uri": dict(S, description="otpauth://")}),
   errors=["400", "409", "500"],
   desc="400 not_a_user for an API key; 409 totp_active when two-factor is on already.")
op("confirmTotp", "POST", "/api/v1/session/totp/confirm", "auth",
   "A current code turns two-factor on", "readonly", obj({"user": S, "totp": B}),
   body=obj({"code": S}, ["code"], closed=True), errors=["409", "500"],
   desc="400 bad_code for a wrong or replayed code; 409 totp_state when no "
   "enrollment is under way.")
op("disableTotp", "DELETE", "/api/v1/session/totp", "auth",
   "Turn one's own two-factor off (needs a current code)", "readonly",
   obj({"user": S, "totp": B}), body=obj({"code": S}, ["code"], closed=True),
   errors=["409", "500"], desc="409 totp_state when two-factor is not on.")

# --- users and API keys (src/center/auth.c) -------------------------------
op("listUsers", "GET", "/api/v1/users", "users", "Users", "admin", listof("users", "User"),
   errors=["500"])
op("createUser", "POST", "/api/v1/users", "users", "Create a local user", "admin",
   obj({"name": S, "role": ROLE}), status="201",
   body=obj({"name": {"type": "string", "pattern": "^[A-Za-z0-9._@-]{1,64}$"},
             "password": dict(S, minLength=10, maxLength=256), "role": ROLE},
            ["name", "password", "role"], closed=True),
   errors=["409", "500"], desc="409 exists for a name in use.")
op("getUser", "GET", "/api/v1/users/{name}", "users", "One user", "admin", ref("User"))
op("updateUser", "PUT", "/api/v1/users/{name}", "users", "Change a user", "admin",
   ref("User"),
   body=obj({"role": ROLE, "disabled": B, "password": dict(S, minLength=10, maxLength=256),
             "unlock": dict(B, description="end a lockout"),
             "totp": {"type": "boolean", "enum": [False],
                      "description": "false turns two-factor off"}}, closed=True),
   errors=["409", "500", "503"],
   desc="Ends the user's sessions on a change of role, password or when disabled. "
   "409 last_admin: the last enabled admin cannot be demoted or disabled.")
op("deleteUser", "DELETE", "/api/v1/users/{name}", "users", "Remove a user", "admin",
   obj({"name": S, "deleted": B}), errors=["409"],
   desc="409 last_admin: not the last enabled admin.")
op("listKeys", "GET", "/api/v1/keys", "keys", "API keys (never the key itself)", "readonly",
   listof("keys", "ApiKey"), errors=["500"],
   desc="Admins see every key; others the keys they made (and a key itself).")
op("createKey", "POST", "/api/v1/keys", "keys", "Create an API key (shown once)", "readonly",
   obj({"id": S, "key": dict(S, description="vgk_..., shown only this once"), "role": ROLE,
        "label": NULL_S, "expires_at": NULL_I}), status="201",
   body=obj({"role": dict(ROLE, description="at most the caller's (default: the caller's)"),
             "label": dict(S, minLength=1), "expires": DURATION}, closed=True),
   errors=["500"], desc="403 forbidden for a role above the caller's.")
op("revokeKey", "DELETE", "/api/v1/keys/{id}", "keys",
   "Revoke an API key (one the caller made, the calling key, or any for "
   "admins), and with it every key made with it, recursively",
   "readonly", obj({"id": S, "revoked": B, "keys_made_revoked": I}),
   errors=["503"])

# --- center, agents, enrollment (src/center/admin.c) ----------------------
op("health", "GET", "/api/v1/health", "center", "Status, version, uptime, FQDN, key process",
   "public", obj({"status": dict(S, enum=["ok"]), "version": S, "uptime": I, "fqdn": S,
                  "key_process": B,
                  "role": dict(S, enum=["center", "collector", "master"],
                               description="[center] role")}))
op("getVersion", "GET", "/api/v1/version", "center",
   "Version, library versions, database schema version", "readonly",
   obj({"version": S,
        "build": obj({"compiler": S, "openssl": S, "libevent": S, "jansson": S,
                      "libzip": S}, ["compiler", "openssl", "libevent", "jansson", "libzip"]),
        "schema_version": dict(I, description="migrations applied"),
        "schema_latest": dict(I, description="migrations this vigild knows")},
       ["version", "build", "schema_version", "schema_latest"]))
NODE = obj({
    "name": dict(S, description="[center] node_name, or host:gateway port"),
    "address": dict(S, description="the gateway's and the admin API's listen addresses"),
    "started_at": dict(I, description="Unix time the node started"),
    "last_heartbeat": dict(I, description="Unix time of its last heartbeat (every 2 s)"),
    "alive": dict(B, description="its heartbeat is at most node_lease + 2 s old"),
    "agents": dict(I, description="task polls it held open (its agents) at its last heartbeat"),
    "leases": dict(I, description="leases it holds (forwarding targets it serves)"),
    "self": dict(B, description="the node that answered"),
    "url": dict(S, description="[center] node_url with its port: where agents assigned this node reach it (absent when unset)")},
    ["name", "address", "started_at", "last_heartbeat", "alive", "agents", "leases", "self"])
op("listNodes", "GET", "/api/v1/nodes", "center",
   "The vigild nodes sharing the database (on SQLite, this one)", "readonly",
   obj({"nodes": {"type": "array", "items": NODE},
        "self": dict(S, description="the name of the node that answered"),
        "shared": dict(B, description="true on PostgreSQL (several nodes possible)")},
       ["nodes", "self", "shared"]),
   errors=["503"], desc="docs/scale-out.md")
SETTINGS_REPLY = obj({
    "settings": dict(ref("Settings"), description="the values in force"),
    "defaults": dict(ref("Settings"), description="the values without the API's"),
    "set": {"type": "array", "items": {"type": "string", "enum": [
        "require_approval", "sample_archive_password"]},
        "description": "the settings stored through the API"}},
    ["settings", "defaults", "set"])
op("getSettings", "GET", "/api/v1/settings", "center", "Runtime settings", "admin",
   SETTINGS_REPLY)
op("updateSettings", "PUT", "/api/v1/settings", "center",
   "Change runtime settings (null: back to the default)", "admin", SETTINGS_REPLY,
   body=obj({"require_approval": dict(B, nullable=True),
             "sample_archive_password": dict(S, nullable=True, minLength=1, maxLength=128,
                                             pattern="^[ -~]+$")}, closed=True),
   errors=["500", "503"],
   desc="Any subset of the settings; null resets one to its default. Audited as "
   "settings.update (the password redacted).")
op("getOpenApi", "GET", "/api/v1/openapi.json", "center", "This document", "readonly", OBJ)
listop("listAgents", "/api/v1/agents", "agents", "Enrolled agents", "readonly", "Agent",
       filters=[("id", TEXT, "agent id"),
                ("status", {"type": "string", "enum": ["active", "revoked"]}, "status"),
                ("hostname", TEXT, "host name"), ("os", TEXT, "operating system"),
                ("label", LABELQ, "KEY=VALUE: agents with this label"),
                ("state", {"type": "string", "enum": ["online", "offline", "revoked"]},
                 "only agents in this state (computed: a page may hold fewer than "
                 "limit items)")],
       ranges=["last_seen", "enrolled_at"],
       sorts=["hostname", "id", "status", "os", "last_seen", "enrolled_at"],
       search="hostname, FQDN, id, addresses")
op("getAgent", "GET", "/api/v1/agents/{id}", "agents", "One agent", "readonly", ref("Agent"))
op("setAgentLabels", "PUT", "/api/v1/agents/{id}/labels", "agents",
   "Replace the agent's labels", "operator", ref("Agent"),
   body=obj({"labels": dict(LABELS, maxProperties=32)}, ["labels"], closed=True),
   errors=["500"],
   desc="Keys and values use letters, digits, '-', '_' and '.' (as a token's). "
   "Tasks aimed at labels created afterwards select the agent by the new ones. "
   "Audited as agent.labels with the labels before.")
op("revokeAgent", "POST", "/api/v1/agents/{id}/revoke", "agents",
   "Revoke every certificate of the agent", "operator",
   obj({"id": S, "status": dict(S, enum=["revoked"]), "certificates_revoked": I}),
   errors=["500", "503"], desc="404 for an unknown or already revoked agent.")
listop("listEnrollments", "/api/v1/enrollments", "agents", "Enrollment requests",
       "readonly", "Enrollment",
       filters=[("id", TEXT, "request id"),
                ("status", {"type": "string", "enum": ["pending", "approved", "rejected"]},
                 "requests in this status (without it: pending only)"),
                ("agent_id", TEXT, "agent id"), ("token_id", TEXT, "token id"),
                ("source_addr", TEXT, "the enrolling client's address")],
       ranges=["created_at"], sorts=["created_at", "id"])
op("approveEnrollment", "POST", "/api/v1/enrollments/{id}/approve", "agents",
   "Approve: sign the request's CSR", "operator",
   obj({"id": S, "status": dict(S, enum=["approved"]), "agent_id": S}), errors=["500"])
op("rejectEnrollment", "POST", "/api/v1/enrollments/{id}/reject", "agents",
   "Reject an enrollment request", "operator",
   obj({"id": S, "status": dict(S, enum=["rejected"])}))
listop("listTokens", "/api/v1/tokens", "tokens", "Enrollment tokens (never the token)",
       "readonly", "Token",
       filters=[("id", TEXT, "token id"),
                ("label", LABELQ, "KEY=VALUE: tokens with this label")],
       ranges=["created_at", "expires_at"], sorts=["created_at", "id", "expires_at"])
op("createToken", "POST", "/api/v1/tokens", "tokens", "Create an enrollment token (shown once)",
   "operator",
   obj({"id": S, "token": dict(S, description="vgt_..., shown only this once"), "uses": I,
        "expires_at": I, "labels": LABELS}), status="201",
   body=obj({"uses": {"type": "integer", "minimum": 1, "maximum": 1000000, "default": 1},
             "expires": dict(DURATION, description="1 s to 10 years, default 7 days"),
             "labels": dict(LABELS, maxProperties=32)}, closed=True),
   errors=["500"])
op("deleteToken", "DELETE", "/api/v1/tokens/{id}", "tokens", "Delete an enrollment token",
   "operator", obj({"id": S, "deleted": B}))
listop("listNotices", "/api/v1/notices", "center", "Center notices, newest first",
       "readonly", "Notice",
       filters=[("kind", TEXT, "kind, e.g. clone_detected"), ("agent", TEXT, "agent id")],
       ranges=["time"], sorts=["id"], default="-id", search="the message")
op("metrics", "GET", "/metrics", "center", "Prometheus metrics (text format)", "readonly",
   S, ctype="text/plain")

# --- tasks, templates, schedules (src/center/tasks.c) ---------------------
op("createTask", "POST", "/api/v1/tasks", "tasks", "Create a task", "operator",
   obj({"id": S, "agents": dict(I, description="agents targeted")}), status="201",
   body=ref("TaskSpec"),
   desc="400 bad_request naming the field, also when the target matches no enrolled, "
   "active agent.")
listop("listTasks", "/api/v1/tasks", "tasks", "Tasks with run counts, newest first",
       "readonly", "Task",
       filters=[("id", TEXT, "task id"), ("kind", TEXT, "kind of task"),
                ("created_by", TEXT, "the creator's address, or schedule"),
                ("schedule_id", TEXT, "tasks of this schedule"),
                ("agent", TEXT, "tasks with a run for this agent"),
                ("state", TEXT, "tasks with a run in this state")],
       ranges=["created_at"], sorts=["created_at", "id", "kind"], default="-created_at",
       search="kind, params and target (as JSON)")
op("getTask", "GET", "/api/v1/tasks/{id}", "tasks", "One task with its runs", "readonly",
   ref("TaskDetail"))
op("cancelTask", "POST", "/api/v1/tasks/{id}/cancel", "tasks", "Cancel the runs not finished",
   "operator", obj({"id": S, "runs_cancelled": I}), errors=["409", "500"],
   desc="409 nothing_to_cancel for an unknown task or one with no queued or running run.")
op("listTaskKinds", "GET", "/api/v1/task-kinds", "tasks", "Kinds of task and their parameters",
   "readonly", listof("kinds", "TaskKind"))
listop("listTemplates", "/api/v1/templates", "tasks", "Task templates", "readonly",
       "Template", filters=[("name", TEXT, "template name")], ranges=["created_at"],
       sorts=["name", "created_at"])
op("saveTemplate", "POST", "/api/v1/templates", "tasks",
   "Save a task template (replaces one of that name)", "operator", obj({"name": S}),
   status="201",
   body=obj({"name": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"},
             "spec": ref("TemplateSpec")}, ["name", "spec"], closed=True),
   errors=["500"])
listop("listSchedules", "/api/v1/schedules", "tasks", "Recurring tasks", "readonly",
       "Schedule", filters=[("name", TEXT, "schedule name"), ("id", TEXT, "schedule id")],
       ranges=["created_at"], sorts=["name", "created_at"])
op("createSchedule", "POST", "/api/v1/schedules", "tasks", "Create a schedule", "operator",
   obj({"id": S, "name": S}), status="201",
   body=obj({"name": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"},
             "cron": dict(S, description="five fields in UTC, or @hourly, @daily, "
                          "@weekly, @monthly", example="30 2 * * *"),
             "task": ref("TaskSpec")}, ["name", "cron", "task"], closed=True),
   errors=["409"], desc="409 exists for a name in use.")
op("deleteSchedule", "DELETE", "/api/v1/schedules/{name}", "tasks", "Remove a schedule",
   "operator", obj({"name": S, "deleted": B}))

# --- rule sets, events, samples (src/center/events.c) ---------------------
listop("listRules", "/api/v1/rules", "rules", "Rule sets, by name", "readonly", "RuleSet",
       filters=[("name", TEXT, "rule set name"), ("id", TEXT, "SHA-256 of the content"),
                ("kind", {"type": "string", "enum": ["yara", "ioc"]}, "kind")],
       ranges=["created_at"], sorts=["name", "kind", "created_at"])
op("addRules", "POST", "/api/v1/rules", "rules",
   "Add or replace a rule set (compiled and checked)", "operator",
   obj({"id": S, "name": S, "kind": S, "size": I}), status="201",
   body=obj({"name": {"type": "string", "minLength": 1, "maxLength": 64,
                      "pattern": "^[^/\\s]+$"},
             "kind": {"type": "string", "enum": ["yara", "ioc"]}, "content": S},
            ["name", "kind", "content"], closed=True),
   errors=["503"],
   desc="400 bad_rules quoting each compiler error or warning with its line.")
op("deleteRules", "DELETE", "/api/v1/rules/{name}", "rules", "Remove a rule set", "operator",
   obj({"name": S, "deleted": B}))

# --- signed updates (src/center/updates.c) ---------------------------------
op("getUpdates", "GET", "/api/v1/updates", "rules",
   "The update mirror: what it serves, its last check", "readonly",
   ref("UpdateStatus"),
   desc="{\"enabled\": false} when no [updates] root is configured.")
op("refreshUpdates", "POST", "/api/v1/updates/refresh", "rules",
   "Check the upstream (or the import directory) now", "operator",
   obj({"queued": B, "done_at": dict(I, description="the check asked for is done "
                                     "once attempts (GET /api/v1/updates) reaches this")}),
   status="202", nobody=True, errors=["409"],
   desc="409 not_configured without an [updates] root.")
op("listRuleVersions", "GET", "/api/v1/rule-versions", "rules",
   "Versions of the rule sets that arrived by update", "readonly",
   listof("items", "RuleVersion"), query=[("name", TEXT, "rule set name")])
op("pinRules", "PUT", "/api/v1/rule-pins/{name}", "rules",
   "Hold a rule set that arrives by update at one version", "operator",
   obj({"name": S, "pinned": S}),
   body=obj({"version": S}, ["version"], closed=True),
   desc="404 for a version that did not arrive. Audited as rule_pin.")
op("startRollout", "POST", "/api/v1/rollouts", "rules",
   "Roll an agent binary of the update repository out to agents", "operator",
   obj({"id": S, "target": S, "version": S, "sha256": S, "platform": S}),
   status="201",
   body=obj({"target": dict(S, description="an agent target the mirror serves"),
             "labels": LABELS,
             "percent": {"type": "integer", "minimum": 1, "maximum": 100,
                         "default": 100},
             "max_failure_rate": {"type": "integer", "minimum": 0, "maximum": 100,
                                  "default": 10},
             "probation": {"type": "integer", "minimum": 5, "maximum": 86400,
                           "default": 120}},
            ["target"], closed=True),
   errors=["404", "503"],
   desc="404 for a target the mirror does not serve; 400 for one that is no "
   "agent binary.")
op("listRollouts", "GET", "/api/v1/rollouts", "rules",
   "Rollouts with their progress, newest first", "readonly",
   listof("items", "Rollout"))
op("stopRollout", "DELETE", "/api/v1/rollouts/{id}", "rules", "Stop a rollout",
   "operator", obj({"id": S, "state": S}), nobody=True,
   desc="404 unless it is active or halted.")
op("unpinRules", "DELETE", "/api/v1/rule-pins/{name}", "rules",
   "Let a rule set follow the update repository again", "operator",
   obj({"name": S, "version": NULL_S}), nobody=True,
   desc="404 when it is not pinned. Audited as rule_pin.")
listop("searchEvents", "/api/v1/events", "events",
       "Search events and findings, newest first", "readonly", "Event",
       filters=[("agent", TEXT, "agent id (center: the audit log's entries)"),
                ("task", TEXT, "task id"),
                ("type", TEXT, "event type, e.g. finding, audit"),
                ("level", TEXT, "level, e.g. alert, warning, notice"),
                ("rule", dict(S, pattern="^[A-Za-z0-9._-]+$"),
                 "findings of this rule (the data's rule member)"),
                ("since", TIME, "received at or after (Unix seconds)"),
                ("until", TIME, "received at or before (Unix seconds)")],
       ranges=["received_at", "time"],
       sorts=["received_at", "time", "type", "level", "agent_id"], default="-received_at",
       search="the event data (as JSON)", max_limit=10000,
       desc="Entries of the audit log appear here too, as events of type audit from "
       "the agent center.")
listop("listFindings", "/api/v1/findings", "events",
       "Findings with their triage state, newest first", "readonly", "Finding",
       filters=[("agent", TEXT, "agent id"), ("task", TEXT, "task id"),
                ("seq", I, "the finding's sequence number (with agent: one finding)"),
                ("level", TEXT, "level, e.g. alert, warning"),
                ("rule", TEXT, "findings of this rule (the data's rule member, or "
                 "a reason's signature rule_name as in the agents' scan findings)"),
                ("status", FINDING_STATUS, "findings in this triage state"),
                ("verdict", TEXT, "vigil-inteld's verdict: malicious, suspicious, "
                 "benign or unknown")],
       ranges=["received_at", "time", "triaged_at"],
       sorts=["received_at", "time", "level", "status", "triaged_at", "agent_id"],
       default="-received_at", search="the finding's data (as JSON) and comment",
       max_limit=10000,
       desc="A finding is an event of type finding; one without a triage state is new.")
op("findingsHistogram", "GET", "/api/v1/findings/histogram", "events",
   "Findings counted by level over time (the console's chart)", "readonly",
   obj({"from": I, "to": I, "step": dict(I, description="seconds per bucket"),
        "buckets": I, "total": I,
        "levels": {"type": "object",
                   "additionalProperties": {"type": "array", "items": I},
                   "description": "per level (none: without one), a count per bucket"}},
       ["from", "to", "step", "buckets", "total", "levels"]),
   query=[("received_at_from", I, "start (Unix time, included); default 7 days before the end"),
          ("received_at_to", I, "end (Unix time, excluded); default now"),
          ("buckets", dict(I, minimum=1, maximum=1000, default=28),
           "number of buckets; step = the span / buckets, rounded up")],
   errors=["500"],
   desc="Findings received in [received_at_from, received_at_to) (at most 400 "
   "days), counted per level and bucket from an index, without reading the findings.")
op("setFinding", "PUT", "/api/v1/findings/{agent_id}/{seq}", "events",
   "Set a finding's triage state and comment", "analyst",
   obj({"agent_id": S, "seq": I, "status": FINDING_STATUS, "comment": NULL_S,
        "triaged_by": S, "triaged_at": I}),
   body=obj({"status": FINDING_STATUS,
             "comment": dict(NULL_S, maxLength=4096,
                             description="replaces the comment before; absent or "
                             "null: none")}, ["status"], closed=True),
   errors=["500"],
   desc="404 for an event that is no finding. Audited as finding.update (target "
   "AGENT_ID/SEQ) with the state before.")
listop("listSamples", "/api/v1/samples", "events", "Samples (uploaded files), newest first",
       "readonly", "Sample",
       filters=[("sha256", TEXT, "SHA-256"), ("agent", TEXT, "agent id"),
                ("task", TEXT, "task id")],
       ranges=["received_at"], sorts=["received_at", "sha256", "size"],
       default="-received_at", search="the path")
SHA_DESC = "400 bad_request for a sha256 that is not 64 lowercase hex digits."
op("getSample", "GET", "/api/v1/samples/{sha256}", "events", "One sample's metadata",
   "analyst", ref("Sample"), errors=["400"], desc=SHA_DESC)
op("downloadSample", "GET", "/api/v1/samples/{sha256}/download", "events",
   "The sample inside an AES-256 encrypted ZIP", "analyst",
   {"type": "string", "format": "binary"}, ctype="application/zip", errors=["400", "500"],
   desc="The ZIP holds one member named by the SHA-256, stored and encrypted with "
   "AES-256 under the sample_archive_password setting (GET /api/v1/settings). "
   "Content-Disposition: attachment; filename=\"SHA256.zip\". Each download is "
   "an entry of the audit log. " + SHA_DESC + " 500 archive_failed when the "
   "stored file is missing or damaged.")

# --- forwarding (src/center/forward.c) ------------------------------------
op("listForwardTargets", "GET", "/api/v1/forward", "forward",
   "Forwarding targets with lag and counters", "readonly",
   listof("targets", "ForwardTarget"))
op("addForwardTarget", "POST", "/api/v1/forward", "forward", "Add a forwarding target",
   "admin", ref("ForwardTarget"), status="201",
   body=obj(dict(FORWARD_SPEC, **{"from": {"type": "string", "enum": ["now", "start"],
                                           "default": "now"}}),
            ["name", "host"], closed=True),
   errors=["409", "500"], desc="409 exists for a name in use.")
op("deleteForwardTarget", "DELETE", "/api/v1/forward/{name}", "forward",
   "Remove a forwarding target (not one from the targets file)", "admin",
   obj({"name": S, "deleted": B}), errors=["409", "503"],
   desc="409 from_config for a target of the [forward] targets file.")
op("testForwardTarget", "POST", "/api/v1/forward/{name}/test", "forward",
   "Send one test message through the target", "operator",
   obj({"name": S, "sent": B, "message": S}), errors=["500", "502"],
   desc="502 not_connected with the last error when the target is not connected.")

# --- analysis collector (src/center/collector.c) ---------------------------
COLL_LIMIT = ("limit", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
              "at most this many")
PAGE_CURSOR = ("cursor", S, "next_cursor of the page before")


def paged(o, member):
    """The reply of an offset-paged list (src/center/query.h): the rows under
    their own member and, as the center's lists answer, under items, with
    next_cursor (null on the last page)."""
    o = json.loads(json.dumps(o))
    o["properties"]["items"] = o["properties"][member]
    o["properties"]["next_cursor"] = dict(NULL_S, description="cursor of the next page; "
                                          "null on the last")
    return o



op("listCollectorCenters", "GET", "/api/v1/collector/centers", "collector",
   "The centers that feed this collector", "readonly",
   obj({"centers": {"type": "array", "items": obj({
       "name": dict(S, description="CN of the center's certificate"), "first_seen": I,
       "last_seen": I, "events": I, "addr": NULL_S, "agents": I, "connected": B})}}),
   errors=["500"])
op("listCollectorAgents", "GET", "/api/v1/collector/agents", "collector",
   "The centers' agents (asset inventory)", "readonly",
   paged(obj({"agents": {"type": "array", "items": obj({
       "center": S, "agent_id": S, "hostname": NULL_S, "updated_at": I,
       "agent": dict(OBJ, description="the agent as its center lists it")})}}), "agents"),
   query=[("center", S, "agents of this center"), COLL_LIMIT, PAGE_CURSOR], errors=["500"])
op("listCases", "GET", "/api/v1/collector/cases", "collector",
   "Findings grouped into cases, latest first", "readonly",
   paged(listof("cases", "Case"), "cases"),
   query=[("baseline", {"type": "string", "enum": ["yes", "no"]},
           "only cases with (yes) or without (no) a baseline"), COLL_LIMIT, PAGE_CURSOR],
   errors=["500"],
   desc="A case is the findings of one rule on one normalised path (or, without a "
   "rule, of one SHA-256) across every host and center; see docs/collector.md.")
op("getCase", "GET", "/api/v1/collector/cases/{id}", "collector",
   "One case with its hosts", "readonly", ref("Case"))
op("setBaseline", "PUT", "/api/v1/collector/cases/{id}/baseline", "collector",
   "Baseline a case: its new occurrences are suppressed or lowered", "analyst",
   ref("Case"),
   body=obj({"action": BASELINE_ACTION,
             "reason": dict(NULL_S, maxLength=1024)}, ["action"], closed=True),
   desc="suppress: new occurrences are stored, marked suppressed and not counted; "
   "lower: they are counted with level info. Audited with the case before.")
op("deleteBaseline", "DELETE", "/api/v1/collector/cases/{id}/baseline", "collector",
   "Remove a case's baseline", "analyst", ref("Case"))
op("listCollectorSamples", "GET", "/api/v1/collector/samples", "collector",
   "Sample contents, each SHA-256 once, with where they were seen", "readonly",
   paged(obj({"samples": {"type": "array", "items": obj({
       "sha256": S, "size": I,
       "stored": dict(B, description="the content is here (GET "
                      "/api/v1/samples/{sha256}/download)"),
       "seen": {"type": "array", "items": obj({"center": S, "agent_id": S,
                                               "path": NULL_S, "received_at": I})}})}}),
             "samples"),
   query=[("sha256", S, "this sample only"), COLL_LIMIT, PAGE_CURSOR], errors=["500"])
op("searchCollector", "GET", "/api/v1/collector/search", "collector",
   "Every center's events, newest first", "readonly",
   paged(listof("events", "CollectorEvent"), "events"),
   query=[("q", dict(S, maxLength=256), "substring of the data, host name or agent id"),
          ("center", S, "events of this center"), ("agent", S, "of this agent"),
          ("type", S, "of this type"), ("case", S, "of this case"),
          ("suppressed", {"type": "string", "enum": ["no", "yes", "all"], "default": "no"},
           "suppressed occurrences: left out (no), only (yes) or too (all)"),
          COLL_LIMIT, PAGE_CURSOR],
   errors=["500"])

# --- master (src/center/master.c) ------------------------------------------
MASTER_RUN = obj({"center": S, "task_id": NULL_S,
                  "runs": dict(OBJ, description="runs counted by state"),
                  "state": {"type": "string", "enum": ["pending", "applied", "failed"]},
                  "total": I, "finished": I, "agents": I, "error": NULL_S})
op("listMasterCenters", "GET", "/api/v1/master/centers", "master",
   "The managed centers with health, version and agent counts", "readonly",
   obj({"centers": {"type": "array", "items": obj({
       "name": S, "url": S, "fqdn": S, "reachable": B,
       "status": {"type": "string", "enum": ["ok", "error"]},
       "version": S, "protocol": S, "uptime": I,
       "agents": obj({"total": I, "online": I}),
       "error": dict(S, description="why the center cannot be managed: "
                     "unreachable, or incompatible (both versions named)")})}}),
   errors=["404", "500"], desc="404 not_master on a vigild that is not a master.")
MASTER_PAGE = [("limit", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
                "at most this many"), PAGE_CURSOR]
op("listMasterAgents", "GET", "/api/v1/master/agents", "master",
   "Every center's agents, each with its center, by center and host name", "readonly",
   paged(obj({"agents": {"type": "array", "items": OBJ},
              "errors": {"type": "array", "items": obj({"center": S, "error": S})}}),
         "agents"),
   query=MASTER_PAGE, errors=["400", "404", "500"],
   desc="Pages reach the first 9999 rows of each center.")
op("listMasterFindings", "GET", "/api/v1/master/findings", "master",
   "Every center's findings, newest first, each with its center", "readonly",
   paged(obj({"findings": {"type": "array", "items": obj({
       "center": S, "agent_id": S, "seq": I, "time": I, "received_at": I,
       "level": NULL_S, "data": OBJ, "hostname": NULL_S})},
        "errors": {"type": "array", "items": obj({"center": S, "error": S})}}), "findings"),
   query=MASTER_PAGE, errors=["400", "404", "500"],
   desc="Pages reach the first 9999 rows of each center.")
op("listMasterTasks", "GET", "/api/v1/master/tasks", "master",
   "Every center's tasks, newest first, each with its center", "readonly",
   paged(obj({"tasks": {"type": "array", "items": obj({
       "center": S, "id": S, "kind": S, "created_at": I, "created_by": NULL_S,
       "total": I, "finished": I})},
        "errors": {"type": "array", "items": obj({"center": S, "error": S})}}), "tasks"),
   query=MASTER_PAGE, errors=["400", "404", "500"],
   desc="Pages reach the first 9999 rows of each center.")
op("pushMasterTask", "POST", "/api/v1/master/tasks", "master",
   "Create a task on chosen centers", "operator",
   obj({"id": S, "centers": {"type": "array", "items": obj({"center": S, "state": S})}}),
   status="201",
   body=obj({"centers": {"type": "array", "items": S, "nullable": True,
                         "description": "names from [master] centers; default all"},
             "task": dict(OBJ, description="a task spec as for POST /api/v1/tasks")},
            ["task"], closed=True),
   errors=["404"],
   desc="Recorded and answered at once (every center pending); created on each center "
   "off the event loop, on a center that is down when it returns.")
op("getMasterTask", "GET", "/api/v1/master/tasks/{id}", "master",
   "A master task's progress on each center", "readonly",
   obj({"id": S, "centers": {"type": "array", "items": MASTER_RUN}}),
   errors=["404", "500"])

MASTER_PUSH_CENTER = obj({
    "center": S, "state": {"type": "string", "enum": ["pending", "applied", "failed"]},
    "version": dict(NULL_S, description="applied: the SHA-256 the center stored"),
    "error": dict(NULL_S, description="failed: why; pending: why the last try did not "
                  "reach the center"),
    "attempts": I, "updated_at": I})
MASTER_PUSH = obj({"id": S, "kind": {"type": "string", "enum": ["yara", "ioc", "intel"]},
                   "name": S, "sha256": S, "created_at": I, "created_by": S,
                   "centers": {"type": "array", "items": MASTER_PUSH_CENTER}})
op("pushMasterRules", "POST", "/api/v1/master/rules", "master",
   "Push a rule set or IOC list to chosen centers", "operator",
   obj({"id": S, "name": S, "kind": S, "sha256": S,
        "centers": {"type": "array", "items": obj({"center": S, "state": S})}}),
   status="201",
   body=obj({"centers": {"type": "array", "items": S, "nullable": True,
                         "description": "names from [master] centers; default all"},
             "name": S, "kind": {"type": "string", "enum": ["yara", "ioc"]},
             "content": S}, ["name", "kind", "content"], closed=True),
   errors=["404"],
   desc="Checked as POST /api/v1/rules checks it (400 bad_rules naming the line), "
   "recorded and answered at once; delivered to each center off the event loop, "
   "to a center that is down when it returns. Follow it with GET "
   "/api/v1/master/pushes/{id}.")
op("pushMasterIntel", "POST", "/api/v1/master/intel", "master",
   "Push an intelligence feed into chosen centers' vigil-inteld", "operator",
   obj({"id": S, "name": S, "kind": dict(S, enum=["intel"]), "sha256": S,
        "centers": {"type": "array", "items": obj({"center": S, "state": S})}}),
   status="201",
   body=obj({"centers": {"type": "array", "items": S, "nullable": True,
                         "description": "names from [master] centers; default all"},
             "name": dict(S, description="FEED.csv, FEED.list (or .txt) or FEED.json "
                          "(a STIX 2.1 bundle): the feed and its format"),
             "content": S}, ["name", "content"], closed=True),
   errors=["404"],
   desc="Recorded and answered at once; each center imports it into its vigil-inteld "
   "(a full import into feed FEED) with its [updates] intel credential; a center "
   "without one fails it (409 from the center, named in the push's error).")
op("listMasterPushes", "GET", "/api/v1/master/pushes", "master",
   "The pushes of rule sets, IOC lists and intel feeds, newest first, with each "
   "center's progress",
   "readonly", obj({"items": {"type": "array", "items": MASTER_PUSH},
                    "next_cursor": dict(NULL_S, description="cursor of the next page; "
                                        "null on the last")}),
   query=MASTER_PAGE, errors=["400", "404"])
op("getMasterPush", "GET", "/api/v1/master/pushes/{id}", "master",
   "One push of a rule set, IOC list or intel feed with each center's progress",
   "readonly",
   MASTER_PUSH, errors=["404"])

# --- audit log (src/center/audit.c) ----------------------------------------
listop("listAudit", "/api/v1/audit", "audit", "The audit log of changes, newest first",
       "analyst", "AuditEntry",
       filters=[("who", TEXT, "user:NAME or key:ID"), ("addr", TEXT, "client address"),
                ("action", TEXT, "action, e.g. task.create"),
                ("target", TEXT, "the object acted on"),
                ("status", I, "HTTP status of the answer")],
       ranges=["time"], sorts=["id", "time", "who", "action"], default="-id",
       search="action, target, who and error",
       desc="Every authorized POST, PUT and DELETE, and each sample download; see "
       "docs/audit.md.")

json.dump(doc, sys.stdout, indent=1)
print()
