#!/bin/bash
# An agent uploads a sample only for a collect task of its own that is
# under way: without a task, with a task id that is no UUID
# (task=../../x), for an unknown task, for another kind of task, for
# another agent's collect task, or with a NUL byte in the query, the
# upload is refused and nothing is stored; the right task is accepted; a
# per-agent quota ([gateway] sample_quota) refuses the upload that would
# exceed it with 413.
. "$(dirname "$0")/lib.sh"

PKI=$T/pki
DATA=$T/data
make_pki "$PKI"
write_conf "$T/vigild.conf" "$PKI" "$DATA"
sed -i 's/^\[gateway\]$/[gateway]\nsample_quota = 100K/' "$T/vigild.conf"
start_center "$T/vigild.conf" "$DATA"
TOKEN=$(new_token --uses 2)
for a in a b; do
	VIGIL_MACHINE_ID_FILE=$(machine_id "sp-$a") "$AGENT" enroll \
		--server "https://127.0.0.1:$GW" --token "$TOKEN" --ca "$PKI/ca.crt" \
		--data-dir "$T/$a" >"$T/enroll-$a.log" 2>&1 || fail "enroll $a: $(cat "$T/enroll-$a.log")"
done
ID_A=$(sed -nE 's/.*"agent_id": "([^"]+)".*/\1/p' "$T/a/state.json")
ID_B=$(sed -nE 's/.*"agent_id": "([^"]+)".*/\1/p' "$T/b/state.json")

# as AGENT METHOD PATH [curl args]: a gateway call with that agent's cert.
as() {
	local a=$1 m=$2 p=$3
	shift 3
	curl -sS -o "$T/body" -w '%{http_code}' --cacert "$PKI/ca.crt" \
		--cert "$T/$a/agent.crt" --key "$T/$a/agent.key" -X "$m" \
		"https://127.0.0.1:$GW$p" "$@"
}
task() { # task KIND AGENT_ID [params]: creates it, prints its id
	"$CTL" task create "$1" --agent "$2" "${@:3}" |
		sed -nE 's/^created task ([0-9a-f-]{36}) .*/\1/p'
}
nsamples() { db 'SELECT COUNT(*) FROM samples'; }

head -c 20000 /dev/urandom >"$T/s1"
S1=$(sha256sum "$T/s1" | cut -d' ' -f1)
up() { # up AGENT QUERY: uploads s1 with that query, prints the status
	as "$1" POST "/v1/samples?sha256=$S1$2" --data-binary @"$T/s1"
}
refused() { # refused WANT AGENT QUERY WHAT
	local code
	code=$(up "$2" "$3")
	[ "$code" = "$1" ] || fail "$4: answered $code ($(cat "$T/body")), want $1"
	[ "$(nsamples)" = 0 ] || fail "$4: a sample was stored"
	[ ! -e "$DATA/samples/${S1:0:2}/$S1" ] || fail "$4: the file was written"
	pass "$4: $1 $(sed -nE 's/.*"code":"([^"]+)".*/\1/p' "$T/body"), nothing stored"
}

CA=$(task collect "$ID_A" --param path=/etc/hostname)
CB=$(task collect "$ID_B" --param path=/etc/hostname)
SA=$(task inventory "$ID_A")
[ -n "$CA" ] && [ -n "$CB" ] && [ -n "$SA" ] || fail "tasks not created"
# Each agent polls: its runs become dispatched.
[ "$(as a GET '/v1/tasks')" = 200 ] || fail "poll a: $(cat "$T/body")"
[ "$(as b GET '/v1/tasks')" = 200 ] || fail "poll b: $(cat "$T/body")"

refused 400 a "&path=/tmp/x" "no task"
refused 400 a "&task=../../x&path=/tmp/x" "task=../../x"
refused 403 a "&task=$(cat /proc/sys/kernel/random/uuid)&path=/tmp/x" "unknown task"
refused 403 a "&task=$SA&path=/tmp/x" "an inventory task"
refused 403 a "&task=$CB&path=/tmp/x" "another agent's collect task"
refused 400 a "&task=$CA&path=/tmp/x%00.txt" "a NUL byte in the path"

code=$(up a "&task=$CA&path=/tmp/x")
[ "$code" = 200 ] || fail "the collect task's upload answered $code: $(cat "$T/body")"
[ "$(db "SELECT agent_id || ' ' || task_id FROM samples WHERE sha256 = '$S1'")" = "$ID_A $CA" ] ||
	fail "the sample is not recorded for agent a and its task"
pass "the upload for agent a's own collect task is stored"

# Quota: 100K per agent; a 90000-byte sample on top of 20000 is over.
head -c 90000 /dev/urandom >"$T/s2"
S2=$(sha256sum "$T/s2" | cut -d' ' -f1)
code=$(as a POST "/v1/samples?sha256=$S2&task=$CA&path=/tmp/y" --data-binary @"$T/s2")
[ "$code" = 413 ] || fail "over the quota answered $code: $(cat "$T/body")"
expect_contains "$(cat "$T/body")" "sample_quota"
[ "$(nsamples)" = 1 ] || fail "a sample over the quota was stored"
pass "the upload over the per-agent quota: 413 sample_quota"
