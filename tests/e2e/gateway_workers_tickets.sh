#!/bin/bash
# TLS 1.3 resumption through gateway workers ([gateway] workers = 2,
# session_tickets): the core owns the ticket keys (data_dir/tickets.key,
# which the workers cannot read) and sends them to every worker
# (GWRELAY_TICKET_KEYS), so a ticket issued by one worker resumes on the
# other, on a worker restarted after kill -9 and after the center
# restarts; a ticket of a certificate replaced by a renewal gets a full
# handshake (GWRELAY_STALE), a revoked agent's is refused, and rotated
# keys reach both workers. Seen from outside with openssl s_client, which
# the kernel sends to one worker's socket or the other's: the other is
# stopped (SIGSTOP) while it connects, and a connection that waits on the
# stopped one is made again. Counted in /metrics as in-process.
. "$(dirname "$0")/lib.sh"

export VIGIL_GW_WORKERS=2
standard_center

workers() { center_children --gateway-worker; } # the core's children that are gateway workers
nworkers() { [ "$(workers | wc -l)" = "$1" ]; }
# The seccomp filter is loaded once a worker listens and has its settings.
find_workers() {
	local w
	wait_for 20 "two gateway workers" nworkers 2
	read -r W1 W2 <<<"$(workers | tr '\n' ' ')"
	for w in $W1 $W2; do wait_for 10 "worker $w listening" seccomp_on "$w"; done
}
find_workers

TOKEN=$(new_token)
export VIGIL_MACHINE_ID_FILE
VIGIL_MACHINE_ID_FILE=$(machine_id k1)
"$AGENT" enroll --server "https://127.0.0.1:$GW" --token "$TOKEN" \
	--ca "$PKI/ca.crt" --data-dir "$T/a" >"$T/enroll.log" 2>&1 ||
	fail "enroll: $(cat "$T/enroll.log")"
ID=$(db "SELECT id FROM agents")
CRT=$T/a/agent.crt
KEY=$T/a/agent.key

# ping OUT VIA [s_client options...]: one request over a new connection
# with the agent's certificate ($CRT, $KEY), accepted by worker VIA (the
# other one stopped meanwhile); OUT gets s_client's report and the answer.
ping() {
	local out=$1 via=$2 other
	shift 2
	other=$W1
	[ "$via" = "$W1" ] && other=$W2
	kill -STOP "$other"
	# Each worker accepts on a socket of its own (SO_REUSEPORT): a
	# connection the kernel hashes to the stopped one waits in that
	# socket's queue. It is given up after 1 s and made again, from
	# another source port (20 tries: each lands on VIA at even odds).
	for try in $(seq 1 20); do
		printf 'GET /v1/ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' |
			timeout 1 openssl s_client -connect "127.0.0.1:$GW" -tls1_3 \
				-CAfile "$PKI/ca.crt" -cert "$CRT" -key "$KEY" -ign_eof \
				"$@" >"$out" 2>"$out.err" && break
		[ "${PIPESTATUS[1]}" = 124 ] || break
	done
	kill -CONT "$other"
}
resumed() { grep -q 'Reused, TLSv1.3' "$1"; }
answered() { grep -q 'HTTP/1.1 200 OK' "$1"; }
new_ticket() { grep -q 'New Session Ticket arrived' "$1" && [ -s "$2" ]; }
handshakes() { # handshakes KIND: the workers' sum in /metrics
	metric_value "$(api GET /metrics)" "vigil_tls_handshakes_total{listener=\"gateway\",kind=\"$1\"}"
}

ping "$T/first" "$W1" -sess_out "$T/sess"
answered "$T/first" || fail "first request: $(tail -20 "$T/first")"
resumed "$T/first" && fail "the first connection claims to be resumed"
new_ticket "$T/first" "$T/sess" ||
	fail "worker $W1 issued no session ticket: $(grep -E '^(New|Reused)|Ticket' "$T/first")"
pass "a worker's full handshake issues a session ticket"

ping "$T/other" "$W2" -sess_in "$T/sess"
resumed "$T/other" ||
	fail "worker $W1's ticket not resumed on worker $W2: $(grep -E '^(New|Reused)' "$T/other")"
answered "$T/other" || fail "resumed request: $(tail -20 "$T/other")"
ping "$T/same" "$W1" -sess_in "$T/sess"
resumed "$T/same" || fail "not resumed on worker $W1: $(grep -E '^(New|Reused)' "$T/same")"
counted() { [ "$(handshakes resumed)" -ge 2 ]; }
wait_for 10 "2 resumed handshakes in /metrics" counted
pass "a ticket from one worker resumes on both (counted: $(handshakes resumed) resumed, $(handshakes full) full)"

# The agent itself: its requests share one TLS session cache (httpc.c),
# so after its first full handshake it resumes, whichever worker takes
# the connection.
r0=$(handshakes resumed)
"$AGENT" run --data-dir "$T/a" >"$T/agent.log" 2>&1 &
APID=$!
PIDS+=("$APID")
agent_resumes() { [ "$(handshakes resumed)" -ge $((r0 + 2)) ]; }
wait_for 30 "the running agent to resume its session" agent_resumes
kill "$APID"
wait "$APID" 2>/dev/null || true
pass "the running agent resumes its TLS session through the workers"

# kill -9: the restarted worker gets the keys from the core.
kill -9 "$W1"
OLD=$W1
restarted() { nworkers 2 && ! workers | grep -qx "$OLD"; }
wait_for 30 "worker $OLD restarted" restarted
find_workers
[ "$W1" != "$OLD" ] && [ "$W2" != "$OLD" ] ||
	fail "workers after the kill: $W1 $W2 (killed $OLD)"
for w in $W1 $W2; do
	ping "$T/restarted-$w" "$w" -sess_in "$T/sess"
	resumed "$T/restarted-$w" ||
		fail "not resumed on worker $w after a worker restart: $(grep -E '^(New|Reused)' "$T/restarted-$w")"
done
pass "the ticket resumes on the worker restarted after kill -9 and on the other"

# A renewal replaces the certificate: the old one's ticket gets a full
# handshake (which still admits it, as in-process: valid, not revoked),
# the new one's resumes.
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-keyout "$T/new.key" -subj "/CN=$ID" -out "$T/new.csr" 2>/dev/null ||
	fail "openssl req"
jq -n --rawfile c "$T/new.csr" '{csr: $c}' >"$T/renew.json"
code=$(gw_status POST /v1/renew --cert "$CRT" --key "$KEY" \
	-H 'Content-Type: application/json' --data-binary "@$T/renew.json")
[ "$code" = 200 ] || fail "renewal: HTTP $code: $(cat "$T/gw-body")"
jq -r .certificate "$T/gw-body" >"$T/new.crt"
OLD_SERIAL=$(openssl x509 -in "$CRT" -noout -serial | cut -d= -f2)
NEW_SERIAL=$(openssl x509 -in "$T/new.crt" -noout -serial | cut -d= -f2)
[ "$(db "SELECT cert_serial FROM agents WHERE id = '$ID'")" = "$NEW_SERIAL" ] ||
	fail "the store's current certificate is not the renewed one"
for w in $W1 $W2; do
	ping "$T/replaced-$w" "$w" -sess_in "$T/sess"
	resumed "$T/replaced-$w" &&
		fail "worker $w resumed the session of the replaced certificate $OLD_SERIAL"
	answered "$T/replaced-$w" ||
		fail "full handshake with the replaced certificate: $(tail -20 "$T/replaced-$w")"
done
cp "$T/new.crt" "$T/a/new.crt"
CRT=$T/a/new.crt
KEY=$T/new.key
ping "$T/renewed" "$W2" -sess_out "$T/sess-new"
new_ticket "$T/renewed" "$T/sess-new" || fail "no ticket for the renewed certificate"
ping "$T/renewed2" "$W1" -sess_in "$T/sess-new"
resumed "$T/renewed2" || fail "the renewed certificate's ticket not resumed"
pass "after a renewal the replaced certificate's ticket gets a full handshake on both workers; the new one's resumes"

# The center restarts with the same key file: tickets issued before it
# resume, the replaced certificate's still does not (the core sends the
# serials of replaced certificates to each worker that starts).
stop_center
start_center "$T/vigild.conf" "$DATA"
find_workers
for w in $W1 $W2; do
	ping "$T/restart-$w" "$w" -sess_in "$T/sess-new"
	resumed "$T/restart-$w" ||
		fail "not resumed on worker $w after the center restarted: $(grep -E '^(New|Reused)' "$T/restart-$w")"
	answered "$T/restart-$w" || fail "request after a restart: $(tail -20 "$T/restart-$w")"
done
CRT=$T/a/agent.crt
KEY=$T/a/agent.key
for w in $W1 $W2; do
	ping "$T/replaced2-$w" "$w" -sess_in "$T/sess"
	resumed "$T/replaced2-$w" &&
		fail "worker $w resumed the replaced certificate's session after a restart"
done
CRT=$T/a/new.crt
KEY=$T/new.key
pass "after the center restarted tickets resume on both workers; the replaced certificate's does not"

# Revoked: the ticket is not honoured, the full handshake refuses it.
"$CTL" agent revoke "$ID" | grep -q revoked || fail revoke
for w in $W1 $W2; do
	ping "$T/revoked-$w" "$w" -sess_in "$T/sess-new"
	resumed "$T/revoked-$w" && fail "worker $w resumed a revoked agent's session"
	answered "$T/revoked-$w" && fail "worker $w answered a revoked agent's request"
done
refused() {
	[ "$(metric_value "$(api GET /metrics)" 'vigil_tls_handshake_failures_total{reason="revoked"}')" -ge 2 ]
}
wait_for 10 "2 revoked handshakes in /metrics" refused
pass "a revoked agent's ticket is refused by both workers (full handshake, revoked)"

# The core checks a resumed session's certificate like any other: one
# revoked where the workers were not told (in the store here, as another
# node of a shared database would) still resumes at a worker, and its
# request is refused by the core (401, cert_revoked) once the core's
# revocation answer for it (kept 5 s) is renewed; then the workers learn it.
VIGIL_MACHINE_ID_FILE=$(machine_id k4)
"$AGENT" enroll --server "https://127.0.0.1:$GW" --token "$(new_token)" \
	--ca "$PKI/ca.crt" --data-dir "$T/x" >"$T/enroll4.log" 2>&1 ||
	fail "enroll: $(cat "$T/enroll4.log")"
CRT=$T/x/agent.crt
KEY=$T/x/agent.key
ping "$T/x1" "$W1" -sess_out "$T/sess-x"
new_ticket "$T/x1" "$T/sess-x" || fail "no ticket for agent x"
SX=$(openssl x509 -in "$CRT" -noout -serial | cut -d= -f2)
db "UPDATE certs SET revoked_at = $(date +%s) WHERE serial = '$SX'"
refused_by_core() {
	ping "$T/x2" "$W2" -sess_in "$T/sess-x"
	resumed "$T/x2" ||
		fail "the ticket was not resumed before the core refused a request: $(grep -E '^(New|Reused)' "$T/x2")"
	! answered "$T/x2" && grep -q 'HTTP/1.1 401' "$T/x2" && grep -q cert_revoked "$T/x2"
}
wait_for 30 "the core to refuse the resumed session's request" refused_by_core
for w in $W1 $W2; do
	ping "$T/x3-$w" "$w" -sess_in "$T/sess-x"
	resumed "$T/x3-$w" && fail "worker $w resumed a certificate the core found revoked"
	answered "$T/x3-$w" && fail "worker $w answered a certificate the core found revoked"
done
pass "a resumed session's certificate is checked by the core (401 cert_revoked), then refused by both workers"

# Rotation: with a 5 s lifetime the core makes a new sealing key (written
# to tickets.key) and sends it: tickets from both workers are then sealed
# with it (a ticket starts with its key's 16-byte name).
VIGIL_MACHINE_ID_FILE=$(machine_id k2)
"$AGENT" enroll --server "https://127.0.0.1:$GW" --token "$(new_token)" \
	--ca "$PKI/ca.crt" --data-dir "$T/b" >"$T/enroll2.log" 2>&1 ||
	fail "enroll: $(cat "$T/enroll2.log")"
CRT=$T/b/agent.crt
KEY=$T/b/agent.key
GW_PORT=$GW ADM_PORT=$ADM write_conf "$T/vigild.conf" "$PKI" "$DATA" \
	"[gateway]" "session_tickets = 5s"
stop_center
start_center "$T/vigild.conf" "$DATA"
find_workers
keyname() { od -An -tx1 -j "$1" -N16 "$DATA/tickets.key" | tr -d ' \n'; }
ticket_name() {
	openssl sess_id -in "$1" -noout -text |
		awk '/TLS session ticket:/ { getline; print; exit }' |
		sed -E 's/^ *[0-9a-f]{4} - //' | cut -c1-47 | tr -d -- ' -'
}
ping "$T/before" "$W1" -sess_out "$T/sess-before"
new_ticket "$T/before" "$T/sess-before" || fail "no ticket before the rotation"
K1=$(ticket_name "$T/sess-before")
[ "$K1" = "$(keyname 0)" ] || [ "$K1" = "$(keyname 80)" ] ||
	fail "ticket sealed with $K1, not a key of the file ($(keyname 0) $(keyname 80))"
rotated() { [ "$(keyname 0)" != "$K1" ]; }
wait_for 30 "the ticket keys to rotate" rotated
for w in $W1 $W2; do
	ping "$T/rot-$w" "$w" -sess_out "$T/sess-rot-$w"
	new_ticket "$T/rot-$w" "$T/sess-rot-$w" || fail "no ticket from worker $w after the rotation"
	n=$(ticket_name "$T/sess-rot-$w")
	[ "$n" != "$K1" ] || fail "worker $w still seals with the key rotated out ($K1)"
	[ "$n" = "$(keyname 0)" ] || [ "$n" = "$(keyname 80)" ] ||
		fail "worker $w sealed with $n, not a key of the file ($(keyname 0) $(keyname 80))"
done
grep -q "session ticket keys rotated; sent to the gateway workers" "$T/vigild.log" ||
	fail "the rotation is not logged"
grep -qi "$K1" "$T/vigild.log" && fail "a ticket key's name is in the log"
pass "rotated keys reach both workers (tickets sealed with the new key)"

# On PostgreSQL another node may renew an agent (its center shares the
# store, not this core's relay): the core finds such renewals in the store
# (every tenth of the lifetime here) and the workers stop resuming the
# replaced certificate. Made here as that node would, in the store.
if [ "$VIGIL_STORE" = pg ]; then
	ID_B=$(openssl x509 -in "$CRT" -noout -subject | sed -nE 's/.*CN ?= ?([0-9a-f-]{36}).*/\1/p')
	S_B=$(db "SELECT cert_serial FROM agents WHERE id = '$ID_B'")
	ping "$T/pg1" "$W1" -sess_out "$T/sess-pg"
	ping "$T/pg2" "$W2" -sess_in "$T/sess-pg"
	resumed "$T/pg2" || fail "not resumed before the other node's renewal"
	db "INSERT INTO certs (serial, agent_id, not_after, issued_at) SELECT 'AB' || serial, agent_id, not_after, $(date +%s) FROM certs WHERE serial = '$S_B'"
	db "UPDATE agents SET cert_serial = 'AB' || cert_serial WHERE id = '$ID_B'"
	not_resumed_on() { # not_resumed_on WORKER: a fresh ticket is not honoured
		ping "$T/pg3" "$1" -sess_out "$T/sess-pg3"
		ping "$T/pg4" "$1" -sess_in "$T/sess-pg3"
		answered "$T/pg4" && ! resumed "$T/pg4"
	}
	wait_for 30 "worker $W1 to learn of the other node's renewal" not_resumed_on "$W1"
	wait_for 10 "worker $W2 to learn of the other node's renewal" not_resumed_on "$W2"
	pass "a renewal made through another node (shared store) reaches the workers"
	# The rest with an agent nobody renewed.
	VIGIL_MACHINE_ID_FILE=$(machine_id k3)
	"$AGENT" enroll --server "https://127.0.0.1:$GW" --token "$(new_token)" \
		--ca "$PKI/ca.crt" --data-dir "$T/c" >"$T/enroll3.log" 2>&1 ||
		fail "enroll: $(cat "$T/enroll3.log")"
	CRT=$T/c/agent.crt
	KEY=$T/c/agent.key
fi

# SIGHUP: the workers' new TLS contexts get the keys of the core's new
# one (here with the default lifetime again), and session_tickets = 0
# reloaded turns resumption off in both workers.
reloads() { grep -c "TLS context reloaded" "$T/vigild.log" || true; }
reloaded() { [ "$(reloads)" -ge "$1" ]; }
confs() { grep -c "configuration reloaded" "$T/vigild.log" || true; }
conf_done() { [ "$(confs)" -ge "$1" ]; }
sighup() { # sighup [center keys...]: rewrites the config, waits for both
	local n c
	n=$(reloads)
	c=$(confs)
	GW_PORT=$GW ADM_PORT=$ADM write_conf "$T/vigild.conf" "$PKI" "$DATA" "$@"
	kill -HUP "$CENTER_PID"
	wait_for 20 "the reload" conf_done $((c + 1))
	wait_for 20 "both workers to reload" reloaded $((n + 2))
}
sighup
ping "$T/hup1" "$W1" -sess_out "$T/sess-hup"
new_ticket "$T/hup1" "$T/sess-hup" || fail "no ticket after a reload"
openssl sess_id -in "$T/sess-hup" -noout -text | grep -q 'lifetime hint: 43200 ' ||
	fail "the reloaded lifetime (12 h) is not the ticket's: $(openssl sess_id -in "$T/sess-hup" -noout -text | grep 'lifetime hint')"
ping "$T/hup2" "$W2" -sess_in "$T/sess-hup"
resumed "$T/hup2" || fail "not resumed after a reload: $(grep -E '^(New|Reused)' "$T/hup2")"
pass "after SIGHUP both workers seal and open tickets with the core's keys"

sighup "[gateway]" "session_tickets = 0"
for w in $W1 $W2; do
	ping "$T/off-$w" "$w" -sess_in "$T/sess-hup" -sess_out "$T/sess-off-$w"
	answered "$T/off-$w" || fail "request with tickets off: $(tail -20 "$T/off-$w")"
	resumed "$T/off-$w" && fail "worker $w resumed a session with session_tickets = 0"
	grep -q 'New Session Ticket arrived' "$T/off-$w" &&
		fail "worker $w issued a ticket although session_tickets = 0"
done
pass "session_tickets = 0 (reloaded): no ticket from the workers, none resumed"
